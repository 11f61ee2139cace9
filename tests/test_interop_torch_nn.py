"""The layers of structlin.interop.torch.nn: products, gradients, state dicts, projections,
the peers' weights, bad input and torch.compile.

The peers' products are re-derived here in plain PyTorch from their documented layouts
(HazyResearch/fly's ``blockdiag_butterfly_multiply`` and torch_butterfly's ``Butterfly``
twiddle), not taken from their code; ``benchmarks/bench_torch_layers.py`` runs the peers'
own modules when their sources are available.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.func import functional_call  # noqa: E402

from structlin.interop.torch.nn import (  # noqa: E402
    ButterflyLinear,
    KaleidoscopeLinear,
    MonarchLinear,
    PixelflyLinear,
)

F64 = torch.float64

#: (class, options) of every layer, small enough for gradcheck
LAYERS = [
    (MonarchLinear, {"nblocks": 4}),
    (ButterflyLinear, {}),
    (ButterflyLinear, {"increasing_stride": False, "nblocks": 2}),
    (PixelflyLinear, {"block_size": 4, "rank": 2}),
    (KaleidoscopeLinear, {"width": 2}),
]
IDS = ["monarch", "butterfly", "butterfly-dec-2blocks", "pixelfly", "kaleidoscope"]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


# ----------------------------------------------------------------- products and gradients


@pytest.mark.parametrize(("cls", "opts"), LAYERS, ids=IDS)
@pytest.mark.parametrize(("n_in", "n_out"), [(16, 16), (13, 37)])
def test_forward_equals_dense_reference_plus_bias(cls, opts, n_in, n_out):
    torch.manual_seed(0)
    layer = cls(n_in, n_out, **opts, dtype=F64)
    x = torch.randn(2, 3, n_in, dtype=F64)
    W = layer.to_dense()
    assert W.shape == (n_out, n_in)
    y = layer(x)
    assert y.shape == (2, 3, n_out)
    torch.testing.assert_close(y, x @ W.T + layer.bias, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("cls", "opts"), LAYERS, ids=IDS)
def test_gradients_match_finite_differences_for_input_and_every_parameter(cls, opts):
    torch.manual_seed(1)
    layer = cls(11, 9, **opts, dtype=F64)
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in layer.named_parameters()]
    x = torch.randn(3, 11, dtype=F64, requires_grad=True)

    def f(x, *ps):
        return functional_call(layer, dict(zip(names, ps, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize(("cls", "opts"), LAYERS, ids=IDS)
def test_every_parameter_gets_a_gradient(cls, opts):
    layer = cls(12, 20, **opts, dtype=torch.float32)
    layer(torch.randn(4, 12)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(("cls", "opts"), LAYERS, ids=IDS)
def test_state_dict_round_trip_reproduces_the_output(cls, opts):
    torch.manual_seed(2)
    a = cls(10, 24, **opts, dtype=F64)
    torch.manual_seed(3)
    b = cls(10, 24, **opts, dtype=F64)
    x = torch.randn(4, 10, dtype=F64)
    assert not torch.allclose(a(x), b(x))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)


def test_complex_layers_match_their_dense_matrix():
    torch.manual_seed(4)
    for layer in (MonarchLinear(8, 12, nblocks=2, dtype=torch.complex128),
                  ButterflyLinear(8, 12, init="ortho", dtype=torch.complex128)):
        x = torch.randn(3, 8, dtype=torch.complex128)
        torch.testing.assert_close(layer(x), x @ layer.to_dense().T + layer.bias)


def test_no_bias_and_init_options():
    torch.manual_seed(5)
    layer = ButterflyLinear(16, 16, bias=False, init="identity", dtype=F64)
    assert layer.bias is None
    x = torch.randn(2, 16, dtype=F64)
    torch.testing.assert_close(layer(x), x)
    q = ButterflyLinear(16, 16, bias=False, init="ortho", dtype=F64).to_dense()
    torch.testing.assert_close(q @ q.T, torch.eye(16, dtype=F64))
    m = MonarchLinear(16, 16, bias=False, init="ortho", dtype=F64).to_dense()
    torch.testing.assert_close(m @ m.T, torch.eye(16, dtype=F64))
    k = KaleidoscopeLinear(8, 8, bias=False, init="ortho", dtype=F64).to_dense()
    torch.testing.assert_close(k @ k.T, torch.eye(8, dtype=F64))
    # fly's uniform init: every block entry within 1/sqrt(fan_in)
    u = MonarchLinear(64, 64, nblocks=4)
    assert u.blkdiag1.abs().max() <= 1 / math.sqrt(16)
    assert 0 < u.bias.abs().max() <= 1 / math.sqrt(64)


# ----------------------------------------------------------------- from_dense


class _ScaledPermutation(KaleidoscopeLinear):
    """A K-matrix of width 1 whose dense matrix is a scaled permutation ``D P`` (which
    kaleidoscope_fit reaches exactly, by its permutation start, instead of by descent)."""

    def __init__(self, n: int) -> None:
        super().__init__(n, n, dtype=F64)
        self._dp = torch.eye(n, dtype=F64)[torch.randperm(n)] * (
            0.5 + torch.rand(n, 1, dtype=F64))

    def to_dense(self) -> torch.Tensor:
        return self._dp


def _dense_from(layer: nn.Module) -> nn.Linear:
    dense = nn.Linear(layer.in_features, layer.out_features, dtype=F64)
    with torch.no_grad():
        dense.weight.copy_(layer.to_dense())
    return dense


@pytest.mark.parametrize(
    ("layer", "opts"),
    [
        (lambda: MonarchLinear(16, 32, nblocks=4, dtype=F64), {"nblocks": 4}),
        (lambda: ButterflyLinear(16, 16, dtype=F64), {}),
        (lambda: ButterflyLinear(16, 32, increasing_stride=False, dtype=F64),
         {"increasing_stride": False}),
        (lambda: PixelflyLinear(16, 16, block_size=4, rank=0, dtype=F64),
         {"block_size": 4, "rank": 0}),
        (lambda: _ScaledPermutation(8), {"rng": 0}),
    ],
    ids=["monarch", "butterfly", "butterfly-dec-2stacks", "pixelfly", "kaleidoscope"],
)
def test_from_dense_recovers_a_matrix_of_the_class(layer, opts):
    torch.manual_seed(6)
    source = layer()
    dense = _dense_from(source)
    cls = KaleidoscopeLinear if isinstance(source, KaleidoscopeLinear) else type(source)
    fitted = cls.from_dense(dense, **opts)
    assert _rel(fitted.to_dense(), dense.weight) < 1e-10
    torch.testing.assert_close(fitted.bias, dense.bias)


def test_monarch_from_dense_is_locally_optimal():
    torch.manual_seed(7)
    dense = nn.Linear(16, 16, dtype=F64)
    layer = MonarchLinear.from_dense(dense, nblocks=4)
    err = _rel(layer.to_dense(), dense.weight)
    assert 0 < err < 1
    for _ in range(5):
        moved = MonarchLinear(16, 16, nblocks=4, dtype=F64)
        moved.load_state_dict(layer.state_dict())
        with torch.no_grad():
            for w in (moved.blkdiag1, moved.blkdiag2):
                w.add_(1e-3 * torch.randn_like(w))
        assert _rel(moved.to_dense(), dense.weight) > err


def test_pixelfly_from_dense_error_decreases_with_rank():
    torch.manual_seed(8)
    dense = nn.Linear(32, 32, dtype=F64)
    errs = [_rel(PixelflyLinear.from_dense(dense, block_size=8, rank=r).to_dense(),
                 dense.weight) for r in (0, 4, 16)]
    assert errs[0] > errs[1] > errs[2] > 0


def test_butterfly_from_dense_of_a_noisy_butterfly_is_near_the_noise():
    torch.manual_seed(9)
    dense = _dense_from(ButterflyLinear(32, 32, init="ortho", dtype=F64))
    noise = 1e-3 * torch.randn(32, 32, dtype=F64)
    with torch.no_grad():
        dense.weight.add_(noise)
    err = _rel(ButterflyLinear.from_dense(dense).to_dense(), dense.weight)
    noise_level = float(torch.linalg.norm(noise) / torch.linalg.norm(dense.weight.detach()))
    assert err < 2 * noise_level


def test_from_dense_pads_odd_sizes():
    torch.manual_seed(10)
    dense = nn.Linear(10, 6, dtype=F64)
    for layer in (MonarchLinear.from_dense(dense, nblocks=2), ButterflyLinear.from_dense(dense),
                  PixelflyLinear.from_dense(dense, block_size=2, rank=1)):
        assert layer.to_dense().shape == (6, 10)
        assert 0 < _rel(layer.to_dense(), dense.weight) < 1
        x = torch.randn(3, 10, dtype=F64)
        torch.testing.assert_close(layer(x), x @ layer.to_dense().T + dense.bias)


# ----------------------------------------------------------------- the peers' weights


def _fly_shapes(n_in: int, n_out: int, nblocks: int):
    """fly's MonarchLinear parameter shapes, from its rule (blocks of ceil(size/nblocks))."""
    ib, ob = -(-n_in // nblocks), -(-n_out // nblocks)
    if ib * nblocks < ob * nblocks:
        return (nblocks, ib, ib), (nblocks, ob, ib), ib * nblocks
    return (nblocks, ob, ib), (nblocks, ob, ob), ib * nblocks


def _fly_forward(x, blkdiag1, blkdiag2, bias, n_in_ext, n_out):
    """fly's MonarchLinear forward from its documented semantics: pad the input, view it as
    (k, p), multiply block by block by blkdiag1, view the k*q results as (r, l) and
    transpose, multiply block by block by blkdiag2, flatten the (s, l) result, truncate."""
    x = torch.nn.functional.pad(x, (0, n_in_ext - x.shape[-1]))
    k, _q, p = blkdiag1.shape
    l, s, r = blkdiag2.shape
    b = x.shape[0]
    u = torch.einsum("kqp,bkp->bkq", blkdiag1, x.reshape(b, k, p)).reshape(b, r, l)
    v = torch.einsum("lsr,blr->bsl", blkdiag2, u.transpose(1, 2))
    out = v.reshape(b, s * l)[:, :n_out]
    return out + bias if bias is not None else out


@pytest.mark.parametrize(("n_in", "n_out", "nblocks"), [(16, 16, 4), (10, 37, 4), (50, 12, 3)])
def test_monarch_loads_fly_state_dicts_unchanged(n_in, n_out, nblocks):
    torch.manual_seed(11)
    s1, s2, n_in_ext = _fly_shapes(n_in, n_out, nblocks)
    fly_state = {"blkdiag1": torch.randn(s1, dtype=F64), "blkdiag2": torch.randn(s2, dtype=F64),
                 "bias": torch.randn(n_out, dtype=F64)}
    layer = MonarchLinear(n_in, n_out, nblocks=nblocks, dtype=F64)
    layer.load_state_dict(fly_state)
    x = torch.randn(5, n_in, dtype=F64)
    want = _fly_forward(x, *fly_state.values(), n_in_ext, n_out)
    torch.testing.assert_close(layer(x), want, rtol=1e-12, atol=1e-12)

    fly_like = nn.Module()
    fly_like.in_features, fly_like.out_features = n_in, n_out
    for name, t in fly_state.items():
        setattr(fly_like, name, nn.Parameter(t.clone()))
    torch.testing.assert_close(MonarchLinear.from_fly(fly_like)(x), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("n_in", "n_out", "nblocks"), [(16, 16, 4), (50, 13, 4)])
def test_monarch_loads_fly_blockdiag_weights_exactly(n_in, n_out, nblocks):
    # fly's BlockdiagLinear: weight (nblocks, ceil(out/nblocks), ceil(in/nblocks)), the
    # block-diagonal product of the padded input, truncated
    torch.manual_seed(15)
    ib, ob = -(-n_in // nblocks), -(-n_out // nblocks)
    fly_like = nn.Module()
    fly_like.in_features, fly_like.out_features = n_in, n_out
    fly_like.weight = nn.Parameter(torch.randn(nblocks, ob, ib, dtype=F64))
    fly_like.bias = nn.Parameter(torch.randn(n_out, dtype=F64))
    layer = MonarchLinear.from_fly(fly_like)
    x = torch.randn(3, n_in, dtype=F64)
    xp = torch.nn.functional.pad(x, (0, nblocks * ib - n_in))
    want = (xp @ torch.block_diag(*fly_like.weight.detach()).T)[:, :n_out] + fly_like.bias
    torch.testing.assert_close(layer(x), want, rtol=1e-12, atol=1e-12)
    wide = nn.Module()
    wide.in_features, wide.out_features = 8, 32
    wide.weight, wide.bias = nn.Parameter(torch.randn(2, 16, 4)), None
    with pytest.raises(ValueError, match="from_dense"):
        MonarchLinear.from_fly(wide)


def _torch_butterfly_forward(twiddle, bias, x, increasing_stride, out_size):
    """torch_butterfly's Butterfly forward from its twiddle layout (nstacks, nblocks, log_n,
    n/2, 2, 2): the blocks of factor i of butterfly b act with stride 2**i (increasing) or
    2**(log_n-1-i) (decreasing), the butterflies alternate stride order, block j = a*s + c
    maps (x[t], x[t+s]) with t = 2*a*s + c; stacks concatenated, top rows kept."""
    nstacks, nblocks, log_n, half = twiddle.shape[:4]
    n = 2 * half
    x = torch.nn.functional.pad(x, (0, n - x.shape[-1]))
    outs = []
    for st in range(nstacks):
        y = x.clone()
        inc = increasing_stride
        for b in range(nblocks):
            for i in range(log_n):
                s = 1 << (i if inc else log_n - 1 - i)
                j = torch.arange(half)
                t = 2 * (j // s) * s + j % s
                tw = twiddle[st, b, i]
                y0, y1 = y[:, t], y[:, t + s]
                y = y.clone()
                y[:, t] = tw[:, 0, 0] * y0 + tw[:, 0, 1] * y1
                y[:, t + s] = tw[:, 1, 0] * y0 + tw[:, 1, 1] * y1
            inc = not inc
        outs.append(y)
    out = torch.cat(outs, dim=-1)[:, :out_size]
    return out + bias if bias is not None else out


@pytest.mark.parametrize(
    ("n_in", "n_out", "increasing", "nblocks"),
    [(16, 16, True, 1), (16, 16, False, 1), (12, 40, True, 2), (9, 5, False, 3)],
)
def test_butterfly_loads_torch_butterfly_state_dicts_unchanged(n_in, n_out, increasing, nblocks):
    torch.manual_seed(12)
    log_n = (n_in - 1).bit_length()
    n = 1 << log_n
    nstacks = -(-n_out // n)
    tb_state = {"twiddle": torch.randn(nstacks, nblocks, log_n, n // 2, 2, 2, dtype=F64),
                "bias": torch.randn(n_out, dtype=F64)}
    layer = ButterflyLinear(n_in, n_out, increasing_stride=increasing, nblocks=nblocks,
                            dtype=F64)
    layer.load_state_dict(tb_state)
    x = torch.randn(4, n_in, dtype=F64)
    want = _torch_butterfly_forward(*tb_state.values(), x, increasing, n_out)
    torch.testing.assert_close(layer(x), want, rtol=1e-12, atol=1e-12)

    tb_like = nn.Module()
    tb_like.in_size, tb_like.out_size, tb_like.increasing_stride = n_in, n_out, increasing
    for name, t in tb_state.items():
        setattr(tb_like, name, nn.Parameter(t.clone()))
    torch.testing.assert_close(ButterflyLinear.from_torch_butterfly(tb_like)(x), want,
                               rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- bad input


def test_shape_errors_name_the_argument():
    layer = MonarchLinear(16, 8)
    with pytest.raises(ValueError, match=r"input must have shape \(\.\.\., in_features\)"):
        layer(torch.randn(3, 15))
    with pytest.raises(ValueError, match="input"):
        ButterflyLinear(16, 8)(torch.randn(()))
    with pytest.raises(ValueError, match="in_features"):
        ButterflyLinear(0, 8)
    with pytest.raises(TypeError, match="nblocks"):
        MonarchLinear(16, 8, nblocks=2.0)
    with pytest.raises(ValueError, match="init"):
        ButterflyLinear(16, 8, init="xavier")
    with pytest.raises(TypeError, match="dtype"):
        MonarchLinear(16, 8, dtype=torch.float16)
    with pytest.raises(ValueError, match="rank"):
        PixelflyLinear(16, 16, block_size=4, rank=17)
    with pytest.raises(TypeError, match="linear"):
        MonarchLinear.from_dense(nn.ReLU())
    bad = nn.Module()
    bad.in_features, bad.out_features = 16, 16
    bad.blkdiag1, bad.blkdiag2 = nn.Parameter(torch.randn(4, 4, 4)), nn.Parameter(
        torch.randn(4, 4, 3))
    with pytest.raises(ValueError, match="blkdiag2"):
        MonarchLinear.from_fly(bad)
    with pytest.raises(TypeError, match="in_size"):
        ButterflyLinear.from_torch_butterfly(bad)


# ----------------------------------------------------------------- torch.compile


@pytest.mark.parametrize(("cls", "opts"), LAYERS[:2] + LAYERS[3:], ids=IDS[:2] + IDS[3:])
def test_compiled_layer_matches_eager_forward_and_backward(cls, opts):
    torch._dynamo.reset()
    torch.manual_seed(13)
    layer = cls(12, 20, **opts, dtype=F64)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    x = torch.randn(4, 12, dtype=F64, requires_grad=True)
    y = compiled(x)
    torch.testing.assert_close(y, layer(x.detach()))
    y.square().sum().backward()
    gx = x.grad.clone()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    layer.zero_grad()
    x.grad = None
    layer(x).square().sum().backward()
    torch.testing.assert_close(gx, x.grad)
    for n, p in layer.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, msg=n)


def test_compiled_shape_error_is_raised_at_trace_time():
    torch._dynamo.reset()
    compiled = torch.compile(MonarchLinear(16, 8), fullgraph=True, backend="aot_eager")
    with pytest.raises(Exception, match="in_features"):
        compiled(torch.randn(2, 15))


def test_numpy_is_not_needed_in_forward_beyond_the_interop_op(monkeypatch):
    # the layers call structlin.interop.torch's functions: replacing them is seen by forward
    import structlin.interop.torch as st

    calls = []
    real = st.butterfly_multiply

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(st, "butterfly_multiply", spy)
    ButterflyLinear(8, 24, nblocks=2)(torch.randn(2, 8))
    assert len(calls) == 3 * 2


# ----------------------------------------------------------------- the benchmark module


def test_benchmark_cases_run_and_agree_with_their_baselines(monkeypatch):
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    monkeypatch.delenv("STRUCTLIN_PEERS", raising=False)  # the peers' cases need their code
    sys.modules.pop("bench_torch_layers", None)
    import bench_torch_layers

    cases = list(bench_torch_layers.cases(True))
    assert [c.name for c in cases] == ["ButterflyLinear fwd+bwd f32 vs nn.Linear",
                                       "MonarchLinear fwd+bwd f32 vs nn.Linear"]
    for case in cases:
        assert case.check(case.fn(), case.baseline()) <= case.tol, case.name


def test_model_of_layers_compiles_with_inductor():
    # the tutorial's use: a model mixing the layers, default backend, no graph break
    torch._dynamo.reset()
    torch.manual_seed(14)
    model = nn.Sequential(MonarchLinear(20, 32, nblocks=4), nn.ReLU(), ButterflyLinear(32, 5))
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(8, 20)
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
    compiled(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
