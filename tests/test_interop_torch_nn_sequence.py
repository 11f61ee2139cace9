"""Tests of LDRLinear and the sequence layers of structlin.interop.torch.nn (defined in
``structlin/interop/torch/_nn_sequence.py``).

Each layer is checked against a plain-PyTorch reference written here from the math (the dense
weight, the convolution sum, S4D's kernel formula, Mamba's sequential recurrence), gradients
against central finite differences, state dicts by a round trip, and ``torch.compile``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

import structlin  # noqa: E402
from structlin.interop.torch.nn import (  # noqa: E402
    FFTLongConv,
    LDRLinear,
    MambaBlock,
    S4DLayer,
)

F64 = torch.float64
KINDS = ("toeplitz", "hankel", "subdiagonal", "cauchy", "vandermonde")


def _assert_grads_match_finite_differences(module, x, *, entries=2, eps=1e-6, rtol=1e-4,
                                           atol=1e-7, seed=0):
    """Autograd gradients of ``sum(w * module(x))`` equal central differences on a few
    entries of every parameter, and every parameter gets a nonzero gradient."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = torch.randn(module(x).shape, generator=gen, dtype=F64)

    def loss():
        return (module(x) * w).sum()

    module.zero_grad()
    loss().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().max() > 0, name
        flat, gflat = p.data.view(-1), p.grad.view(-1)
        for i in torch.randperm(flat.numel(), generator=gen)[:entries].tolist():
            old = flat[i].item()
            with torch.no_grad():
                flat[i] = old + eps
                up = loss().item()
                flat[i] = old - eps
                down = loss().item()
                flat[i] = old
            fd = (up - down) / (2 * eps)
            assert math.isclose(gflat[i].item(), fd, rel_tol=rtol, abs_tol=atol), (name, i)


def _assert_state_dict_round_trip(make, x):
    torch.manual_seed(1)
    a = make()
    torch.manual_seed(2)
    b = make()
    assert not torch.allclose(a(x), b(x))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)


def _causal_conv_reference(v, k):
    """``y[..., h, t] = sum_j k[h, j] v[..., h, t - j]`` by the Toeplitz matrix."""
    L, Lk = v.shape[-1], k.shape[-1]
    d = torch.arange(L)[:, None] - torch.arange(L)[None, :]
    T = torch.where((d >= 0) & (d < Lk), k[:, d.clamp(0, Lk - 1)], torch.zeros((), dtype=F64))
    return torch.einsum("hts,...hs->...ht", T, v)


def _centred_conv_reference(v, k):
    """``y[..., h, t] = sum_j k[h, j] v[..., h, t + (Lk - 1) // 2 - j]`` (zero outside)."""
    L, Lk = v.shape[-1], k.shape[-1]
    s = (Lk - 1) // 2
    j = torch.arange(L)[:, None] + s - torch.arange(L)[None, :]
    T = torch.where((j >= 0) & (j < Lk), k[:, j.clamp(0, Lk - 1)], torch.zeros((), dtype=F64))
    return torch.einsum("hts,...hs->...ht", T, v)


# ------------------------------------------------------------------------------- LDRLinear


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(6, 9), (9, 5)])
def test_ldr_forward_equals_dense_weight_times_x(kind, shape):
    torch.manual_seed(0)
    n_in, n_out = shape
    layer = LDRLinear(n_in, n_out, rank=2, kind=kind, dtype=F64)
    x = torch.randn(2, 3, n_in, dtype=F64)
    W = layer.to_dense()
    assert W.shape == (n_out, n_in)
    torch.testing.assert_close(layer(x), x @ W.T + layer.bias)
    # the weight is the leading block of structlin's own dense reference
    params = {k: getattr(layer, k).detach().numpy() for k in
              ("nodes", "s", "t", "subdiag_A", "subdiag_B") if hasattr(layer, k)}
    M = structlin.ldr_to_dense(layer.G.detach().numpy(), layer.H.detach().numpy(), kind,
                               **params, **layer.scalars)
    np.testing.assert_allclose(W.detach().numpy(), M[:n_out, :n_in], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["toeplitz", "subdiagonal", "cauchy"])
def test_ldr_complex_forward_and_from_dense(kind):
    torch.manual_seed(0)
    C128 = torch.complex128
    layer = LDRLinear(5, 7, rank=2, kind=kind, dtype=C128)
    x = torch.randn(3, 5, dtype=C128)
    torch.testing.assert_close(layer(x), x @ layer.to_dense().T + layer.bias)
    lin = torch.nn.Linear(7, 7, dtype=C128)
    full = LDRLinear.from_dense(lin, rank=7, kind=kind)  # rank n: exact
    torch.testing.assert_close(full.to_dense(), lin.weight)


def test_ldr_init_gives_nn_linear_weight_variance():
    torch.manual_seed(0)
    layer = LDRLinear(64, 64, rank=4, kind="toeplitz", dtype=F64)
    var = layer.to_dense().var().item()
    assert 0.5 / (3 * 64) < var < 2.0 / (3 * 64)


@pytest.mark.parametrize("kind", ["toeplitz", "subdiagonal", "cauchy"])
def test_ldr_gradients_match_finite_differences(kind):
    torch.manual_seed(0)
    layer = LDRLinear(5, 7, rank=2, kind=kind, dtype=F64)
    x = torch.randn(3, 5, dtype=F64)
    _assert_grads_match_finite_differences(layer, x)


def test_ldr_fixed_operators_are_buffers():
    layer = LDRLinear(5, 5, kind="subdiagonal", learn_operators=False, dtype=F64)
    names = {n for n, _ in layer.named_parameters()}
    assert names == {"G", "H", "bias"}
    assert set(layer.state_dict()) == {"G", "H", "bias", "subdiag_A", "subdiag_B"}


@pytest.mark.parametrize("kind", ["toeplitz", "hankel"])
def test_ldr_from_dense_recovers_a_structured_weight(kind):
    torch.manual_seed(0)
    n = 6
    c = torch.randn(2 * n - 1, dtype=F64)
    i = torch.arange(n)
    W = c[i[:, None] - i + n - 1] if kind == "toeplitz" else c[i[:, None] + i]
    lin = torch.nn.Linear(n, n, dtype=F64)
    with torch.no_grad():
        lin.weight.copy_(W)
    layer = LDRLinear.from_dense(lin, rank=2, kind=kind)
    torch.testing.assert_close(layer.to_dense(), W)
    torch.testing.assert_close(layer.bias, lin.bias)
    x = torch.randn(4, n, dtype=F64)
    torch.testing.assert_close(layer(x), lin(x))


def test_ldr_from_dense_error_falls_with_rank():
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 6, dtype=F64)
    errs = [(LDRLinear.from_dense(lin, rank=r).to_dense() - lin.weight).norm().item()
            for r in (1, 4, 8)]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 1e-10  # rank n: the whole displacement


def test_ldr_state_dict_round_trip():
    x = torch.randn(3, 5, dtype=F64)
    _assert_state_dict_round_trip(lambda: LDRLinear(5, 4, kind="subdiagonal", dtype=F64), x)


def test_ldr_errors_name_the_argument():
    layer = LDRLinear(5, 4)
    with pytest.raises(ValueError, match="in_features = 5"):
        layer(torch.randn(2, 6))
    with pytest.raises(TypeError, match=r"input has dtype torch\.float16"):
        layer(torch.randn(2, 5).half())
    with pytest.raises(TypeError, match=r"input must be a torch\.Tensor"):
        layer(np.ones((2, 5)))
    with pytest.raises(ValueError, match="kind must be one of"):
        LDRLinear(5, 4, kind="circulant")
    with pytest.raises(ValueError, match="rank must be at most n"):
        LDRLinear(5, 4, rank=6)
    with pytest.raises(TypeError, match="dtype must be"):
        LDRLinear(5, 4, dtype=torch.float16)
    with pytest.raises(TypeError, match=r"linear must be a torch\.nn\.Linear"):
        LDRLinear.from_dense(torch.nn.Conv1d(2, 2, 1))


def test_ldr_compiles_fullgraph():
    torch.manual_seed(0)
    layer = LDRLinear(6, 4, kind="toeplitz", dtype=F64)
    x = torch.randn(3, 6, dtype=F64)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), layer(x))


# ----------------------------------------------------------------------------- FFTLongConv


def _long_conv_reference(layer, u):
    k = layer.kernel
    conv = _causal_conv_reference if layer.causal else _centred_conv_reference
    D = layer.D if layer.D is not None else torch.zeros(layer.d_model, dtype=F64)
    if not layer.gated:
        v = u.transpose(1, 2)
        return (conv(v, k) + D[:, None] * v).transpose(1, 2)
    L = u.shape[1]
    z = layer.short_filter(layer.in_proj(u).transpose(1, 2))[..., :L]
    x0, x1, v = z.split(layer.d_model, dim=1)
    w = x1 * v
    y = x0 * (conv(w, k) + D[:, None] * w)
    return layer.out_proj(y.transpose(1, 2))


@pytest.mark.parametrize("gated", [True, False])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("L", [5, 12])
def test_long_conv_matches_the_convolution_sum(gated, causal, L):
    torch.manual_seed(0)
    layer = FFTLongConv(3, l_max=8, gated=gated, causal=causal, dtype=F64)
    u = torch.randn(2, L, 3, dtype=F64)
    torch.testing.assert_close(layer(u), _long_conv_reference(layer, u))


def test_long_conv_without_skip_and_random_init():
    torch.manual_seed(0)
    layer = FFTLongConv(3, l_max=6, bias=False, init="random", dtype=F64)
    assert layer.D is None
    u = torch.randn(2, 6, 3, dtype=F64)
    torch.testing.assert_close(layer(u), _long_conv_reference(layer, u))


def test_long_conv_decay_init_has_unit_norm_decaying_channels():
    layer = FFTLongConv(4, l_max=64, dtype=F64)
    k = layer.kernel.detach()
    torch.testing.assert_close(k.norm(dim=-1), torch.ones(4, dtype=F64))
    # the last channel decays fastest: its tail holds the least energy
    tail = k[:, 32:].square().sum(-1)
    assert tail[-1] < tail[0]


@pytest.mark.parametrize("gated", [True, False])
def test_long_conv_gradients_match_finite_differences(gated):
    torch.manual_seed(0)
    layer = FFTLongConv(2, l_max=6, gated=gated, dtype=F64)
    u = torch.randn(2, 6, 2, dtype=F64)
    _assert_grads_match_finite_differences(layer, u)


def test_long_conv_state_dict_round_trip():
    u = torch.randn(2, 7, 3, dtype=F64)
    _assert_state_dict_round_trip(lambda: FFTLongConv(3, l_max=7, dtype=F64), u)


def test_long_conv_errors_name_the_argument():
    layer = FFTLongConv(3, l_max=8)
    with pytest.raises(ValueError, match="d_model = 3"):
        layer(torch.randn(2, 8, 4))
    with pytest.raises(ValueError, match="u must have 3 dimensions"):
        layer(torch.randn(8, 3))
    with pytest.raises(TypeError, match=r"u has dtype torch\.bfloat16"):
        layer(torch.randn(2, 8, 3).bfloat16())
    with pytest.raises(ValueError, match="init must be"):
        FFTLongConv(3, 8, init="zeros")
    with pytest.raises(ValueError, match="l_max must be at least 1"):
        FFTLongConv(3, 0)


def test_long_conv_compiles_fullgraph():
    torch.manual_seed(0)
    layer = FFTLongConv(3, l_max=8, dtype=F64)
    u = torch.randn(2, 8, 3, dtype=F64)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(u), layer(u))


# -------------------------------------------------------------------------------- S4DLayer


def _s4d_reference(layer, u):
    """S4D's forward from the math: the ZOH kernel summed over the modes (B = 1), the causal
    convolution by a 2L-point FFT, the skip, GELU, then Conv1d(H, 2H, 1) and a GLU."""
    kp = layer.kernel
    L = u.shape[-1]
    dt = torch.exp(kp.log_dt)[:, None]
    A = -torch.exp(kp.log_A_real) + 1j * kp.A_imag
    C = kp.C[..., 0] + 1j * kp.C[..., 1]
    powers = torch.exp(dt[..., None] * A[..., None] * torch.arange(L, dtype=F64))
    K = 2 * torch.einsum("hn,hnl->hl", C * (torch.exp(dt * A) - 1) / A, powers).real
    y = torch.fft.irfft(torch.fft.rfft(u, n=2 * L) * torch.fft.rfft(K, n=2 * L), n=2 * L)
    y = F.gelu(y[..., :L] + layer.D[:, None] * u)
    conv = layer.output_linear[0]
    y = torch.einsum("oh,bhl->bol", conv.weight[..., 0], y) + conv.bias[:, None]
    a, g = y.chunk(2, dim=-2)
    return a * torch.sigmoid(g)


@pytest.mark.parametrize("init", ["S4D-Lin", "S4D-Inv"])
def test_s4d_matches_the_kernel_formula(init):
    torch.manual_seed(0)
    layer = S4DLayer(3, d_state=8, init=init, dtype=F64)
    u = torch.randn(2, 3, 11, dtype=F64)
    torch.testing.assert_close(layer(u), _s4d_reference(layer, u))


def test_s4d_init_uses_structlin_modes():
    layer = S4DLayer(2, d_state=8, init="S4D-Inv", dtype=F64)
    lam = torch.as_tensor(structlin.s4d_init(8, "inv"))
    torch.testing.assert_close(-torch.exp(layer.kernel.log_A_real[1]), lam.real)
    torch.testing.assert_close(layer.kernel.A_imag[0], lam.imag)
    dt = torch.exp(layer.kernel.log_dt)
    assert bool(((dt >= 0.001) & (dt <= 0.1)).all())


def test_s4d_untransposed_layout_is_the_transpose():
    torch.manual_seed(0)
    a = S4DLayer(3, d_state=4, dtype=F64)
    b = S4DLayer(3, d_state=4, transposed=False, dtype=F64)
    b.load_state_dict(a.state_dict())
    u = torch.randn(2, 3, 9, dtype=F64)
    torch.testing.assert_close(b(u.transpose(1, 2)), a(u).transpose(1, 2))


def test_s4d_gradients_match_finite_differences():
    torch.manual_seed(0)
    layer = S4DLayer(2, d_state=4, dtype=F64)
    u = torch.randn(2, 2, 7, dtype=F64)
    _assert_grads_match_finite_differences(layer, u)


def test_s4d_state_dict_has_s4_names_and_round_trips():
    layer = S4DLayer(3, d_state=4)
    shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert shapes == {"D": (3,), "kernel.C": (3, 2, 2), "kernel.log_dt": (3,),
                      "kernel.log_A_real": (3, 2), "kernel.A_imag": (3, 2),
                      "output_linear.0.weight": (6, 3, 1), "output_linear.0.bias": (6,)}
    u = torch.randn(2, 3, 8, dtype=F64)
    _assert_state_dict_round_trip(lambda: S4DLayer(3, d_state=4, dtype=F64), u)


def test_s4d_dropout_masks_whole_channels():
    torch.manual_seed(0)
    layer = S4DLayer(4, d_state=4, dropout=0.5, dtype=F64)
    u = torch.randn(8, 4, 6, dtype=F64)
    layer.eval()
    torch.testing.assert_close(layer(u), _s4d_reference(layer, u))
    layer.train()
    torch.manual_seed(3)
    y_train = layer(u)
    assert not torch.allclose(y_train, layer.eval()(u))


def test_s4d_errors_name_the_argument():
    layer = S4DLayer(3, d_state=4, l_max=10)
    with pytest.raises(ValueError, match=r"\(batch, d_model, L\) with d_model = 3"):
        layer(torch.randn(2, 10, 3))
    with pytest.raises(ValueError, match="above l_max = 10"):
        layer(torch.randn(2, 3, 11))
    with pytest.raises(TypeError, match=r"u has dtype torch\.float64"):
        layer(torch.randn(2, 3, 8, dtype=F64))
    with pytest.raises(ValueError, match="d_state must be even"):
        S4DLayer(3, d_state=5)
    with pytest.raises(ValueError, match="init must be one of"):
        S4DLayer(3, init="lin")


def test_s4d_compiles_fullgraph():
    torch.manual_seed(0)
    layer = S4DLayer(3, d_state=4, dtype=F64)
    u = torch.randn(2, 3, 8, dtype=F64)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(u), layer(u))
    # and the backward pass through the compiled graph
    compiled(u).square().sum().backward()
    grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    layer(u).square().sum().backward()
    for g, p in zip(grads, layer.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)


# ------------------------------------------------------------------------------ MambaBlock


def _mamba_reference(block, u):
    """Mamba's forward with the scan as its sequential recurrence ``h_t = exp(delta_t A)
    h_{t-1} + delta_t B_t u_t``, ``y_t = C_t . h_t + D u_t``, gated by ``silu(z)``."""
    L = u.shape[1]
    x, z = block.in_proj(u).transpose(1, 2).chunk(2, dim=1)
    x = F.silu(block.conv1d(x)[..., :L])
    dt, B, C = block.x_proj(x.transpose(1, 2)).split(
        [block.dt_rank, block.d_state, block.d_state], dim=-1)
    delta = F.softplus(block.dt_proj(dt)).transpose(1, 2)  # (b, d, l)
    A = -torch.exp(block.A_log)
    h = torch.zeros(u.shape[0], block.d_inner, block.d_state, dtype=F64)
    ys = []
    for t in range(L):
        dA = torch.exp(delta[:, :, t, None] * A)
        h = dA * h + delta[:, :, t, None] * B[:, None, t, :] * x[:, :, t, None]
        ys.append((h * C[:, None, t, :]).sum(-1))
    y = torch.stack(ys, dim=-1) + block.D[:, None] * x
    y = y * F.silu(z)
    return block.out_proj(y.transpose(1, 2))


def test_mamba_matches_the_sequential_scan():
    torch.manual_seed(0)
    block = MambaBlock(4, d_state=3, d_conv=3, dtype=F64)
    u = torch.randn(2, 9, 4, dtype=F64)
    torch.testing.assert_close(block(u), _mamba_reference(block, u))


def test_mamba_dt_init_is_in_range():
    block = MambaBlock(8, d_state=4, dt_min=0.01, dt_max=0.05, dtype=F64)
    dt = F.softplus(block.dt_proj.bias)
    assert bool(((dt > 0.01 - 1e-12) & (dt < 0.05 + 1e-12)).all())
    torch.testing.assert_close(-torch.exp(block.A_log[0]),
                               -torch.arange(1, 5, dtype=F64))


def test_mamba_gradients_match_finite_differences():
    torch.manual_seed(0)
    block = MambaBlock(2, d_state=2, d_conv=2, bias=True, dtype=F64)
    u = torch.randn(2, 5, 2, dtype=F64)
    _assert_grads_match_finite_differences(block, u)


def test_mamba_state_dict_has_mamba_names_and_round_trips():
    block = MambaBlock(4, d_state=3, d_conv=3)
    assert set(block.state_dict()) == {
        "in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight",
        "dt_proj.bias", "A_log", "D", "out_proj.weight"}
    u = torch.randn(2, 6, 4, dtype=F64)
    _assert_state_dict_round_trip(lambda: MambaBlock(4, d_state=3, d_conv=3, dtype=F64), u)


def test_mamba_errors_name_the_argument():
    block = MambaBlock(4, d_state=3)
    with pytest.raises(ValueError, match="d_model = 4"):
        block(torch.randn(2, 6, 5))
    with pytest.raises(ValueError, match="u must have 3 dimensions"):
        block(torch.randn(6, 4))
    with pytest.raises(TypeError, match=r"u has dtype torch\.float16"):
        block(torch.randn(2, 6, 4).half())
    with pytest.raises(ValueError, match="dt_init must be"):
        MambaBlock(4, dt_init="zero")


def test_mamba_compiles_fullgraph():
    torch.manual_seed(0)
    block = MambaBlock(4, d_state=3, dtype=F64)
    u = torch.randn(2, 6, 4, dtype=F64)
    compiled = torch.compile(block, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(u), block(u))


@pytest.mark.parametrize("make, bad, pattern", [
    (lambda: LDRLinear(5, 4), (2, 6), "in_features = 5"),
    (lambda: FFTLongConv(3, l_max=8), (2, 8, 4), "d_model = 3"),
    (lambda: S4DLayer(3, d_state=4), (2, 4, 8), "d_model = 3"),
    (lambda: MambaBlock(4, d_state=3), (2, 6, 5), "d_model = 4"),
])
def test_shape_errors_are_raised_at_trace_time(make, bad, pattern):
    # dynamo's "observed exception" carries the layer's message
    compiled = torch.compile(make(), fullgraph=True, backend="aot_eager")
    with pytest.raises((torch._dynamo.exc.Unsupported, ValueError), match=pattern):
        compiled(torch.randn(bad))
