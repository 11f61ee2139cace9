"""structlin.interop.torch as torch.library custom operators: torch.library.opcheck,
gradcheck and torch.compile (fullgraph, aot_eager; inductor once) for every operation of the
op table, fake tensors, and bad input raised at trace time."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import structlin as sl  # noqa: E402
from structlin.interop import torch as st  # noqa: E402
from structlin.interop._ops import OPS  # noqa: E402
from structlin.interop.torch import _custom  # noqa: E402

REAL, CPLX = torch.float64, torch.complex128
#: what torch.compile(fullgraph=True) raises for an error it meets while tracing: the wrapper's
#: own checks (dynamo's "observed exception") or the fake implementation's (TorchRuntimeError);
#: either carries the structlin message
TRACE_ERRORS = (torch._dynamo.exc.Unsupported, torch._dynamo.exc.TorchRuntimeError)


def _t(rng, shape, dtype=REAL):
    a = rng.standard_normal(shape)
    if dtype.is_complex:
        a = a + 1j * rng.standard_normal(shape)
    return torch.tensor(a, dtype=dtype)


def _pos(rng, shape, lo=0.2, hi=1.0):
    return torch.tensor(rng.uniform(lo, hi, shape), dtype=REAL)


@dataclass(frozen=True)
class Case:
    #: ``make(rng)``: the tensors that are differentiated, in the order ``call`` takes them
    make: Any
    #: ``call(*tensors)``: the wrapper with the other arguments filled in
    call: Any


_MASK = sl.flat_block_butterfly_mask(8, 8, 2)


def _kaleido(rng):
    return _t(rng, (1, 2, 3, 4, 2, 2)) / 2


def _toeplitz(rng):
    c = _t(rng, (5,)) / 4
    c[0] = 2.0
    r = _t(rng, (5,)) / 4
    return c, r


def _ssm_diag(rng):
    lam = torch.tensor(-0.5 - rng.uniform(0.0, 1.0, (2, 3)) + 1j * rng.standard_normal((2, 3)))
    return lam, _t(rng, (2, 3), CPLX), _t(rng, (2, 3), CPLX), _pos(rng, 2, 0.05, 0.3)


def _selective(rng):
    b, d, l, n = 1, 2, 5, 3
    return (_t(rng, (b, d, l)), _pos(rng, (b, d, l), 0.05, 0.5),
            -torch.tensor(np.exp(rng.uniform(-0.5, 0.5, (d, n)))), _t(rng, (b, n, l)),
            _t(rng, (b, n, l)), _t(rng, (d,)))


def _ssd(rng):
    b, l, h, p, n = 1, 5, 2, 2, 3
    return (_t(rng, (b, l, h, p)), -_pos(rng, (b, l, h), 0.0, 0.5), _t(rng, (b, l, 1, n)),
            _t(rng, (b, l, 1, n)), _t(rng, (b, h, p, n)))


def _ldr(rng):
    s = _pos(rng, 8, 0.0, 1.0)
    return _t(rng, (2, 8)), _t(rng, (2, 8)), _t(rng, (3, 8)), s, s + 2.0 + _pos(rng, 8)


def _toeplitz_generators(rng):
    """Generators of a diagonally dominant (well-conditioned) 4 x 4 Toeplitz matrix."""
    import scipy.linalg

    c = np.array([3.0, 0.5, 0.2, 0.1]) + rng.uniform(0.0, 0.1, 4)
    r = np.array([3.0, -0.4, 0.3, 0.1])
    return sl.ldr_compress(scipy.linalg.toeplitz(c, r), "toeplitz", 2)


def _hankel(rng):
    """A well-conditioned Hankel matrix: 2 on the anti-diagonal, small entries elsewhere."""
    c, r = _t(rng, (5,)) / 8, _t(rng, (5,)) / 8
    c[-1] = r[0] = 2.0
    return c, r


def _cauchy(rng, m=3):
    """Nodes in two disjoint intervals (a well-conditioned Cauchy matrix), and vectors."""
    return (_pos(rng, m, 1.0, 2.0), -_pos(rng, 4, 0.0, 1.0), _t(rng, (2, 4)))


#: one small case per operation of the op table
CASES: dict[str, Case] = {
    "butterfly_multiply": Case(
        lambda rng: (torch.tensor(sl.random_butterfly(8, rng=rng)), _t(rng, (3, 8))),
        lambda tw, x: st.butterfly_multiply(tw, x, transpose=True)),
    "butterfly_solve": Case(
        lambda rng: (torch.tensor(sl.random_butterfly(8, kind="orthogonal", rng=rng)),
                     _t(rng, (2, 8))),
        lambda tw, y: st.butterfly_solve(tw, y, increasing_stride=False)),
    "monarch_multiply": Case(
        lambda rng: (_t(rng, (2, 3, 3)), _t(rng, (3, 4, 2)), _t(rng, (2, 6))),
        st.monarch_multiply),
    "pixelfly_multiply": Case(
        lambda rng: (_t(rng, (int(_MASK.sum()), 2, 2)), _t(rng, (8, 2)), _t(rng, (8, 2)),
                     _t(rng, (2, 8))),
        lambda b, U, V, x: st.pixelfly_multiply(b, _MASK, U, V, x)),
    "fftconv": Case(
        lambda rng: (_t(rng, (2, 3, 6)), _t(rng, (3, 4)), _t(rng, (3,)), _t(rng, (2, 3, 6))),
        lambda u, k, D, pre: st.fftconv(u, k, D, pregate=pre, causal=False)),
    "circulant_multiply": Case(lambda rng: (_t(rng, (8,)), _t(rng, (2, 8))),
                               st.circulant_multiply),
    "toeplitz_multiply": Case(lambda rng: (_t(rng, (5,)), _t(rng, (5,)), _t(rng, (2, 5))),
                              st.toeplitz_multiply),
    "dct": Case(lambda rng: (_t(rng, (2, 8)),), lambda x: st.dct(x, 3, "ortho")),
    "dst": Case(lambda rng: (_t(rng, (2, 8)),), lambda x: st.dst(x, 2)),
    "fwht": Case(lambda rng: (_t(rng, (2, 8), CPLX),), lambda x: st.fwht(x, normalize=True)),
    "kernel_features": Case(lambda rng: (_t(rng, (2, 2)), _t(rng, (4, 2)), _pos(rng, 4)),
                            st.kernel_features),
    "kaleidoscope_multiply": Case(lambda rng: (_kaleido(rng), _t(rng, (2, 8))),
                                  st.kaleidoscope_multiply),
    "xd_multiply": Case(
        lambda rng: (_kaleido(rng), _kaleido(rng), _kaleido(rng), _t(rng, (8,)),
                     _t(rng, (2, 8))),
        st.xd_multiply),
    "ssm_kernel_diag": Case(_ssm_diag, lambda *a: st.ssm_kernel_diag(*a, 6)),
    "selective_scan": Case(_selective, lambda *a: st.selective_scan(*a, delta_softplus=True)),
    "ssd": Case(_ssd, lambda X, A, B, C, S0: st.ssd(X, A, B, C, 3, initial_states=S0)),
    "matmul_toeplitz": Case(lambda rng: (*_toeplitz(rng), _t(rng, (5,))), st.matmul_toeplitz),
    "solve_toeplitz": Case(lambda rng: (*_toeplitz(rng), _t(rng, (5, 2))),
                           lambda c, r, b: st.solve_toeplitz(c, r, b, method="levinson")),
    "ldr_multiply": Case(_ldr, lambda G, H, x, s, t: st.ldr_multiply(G, H, x, "cauchy", s=s,
                                                                      t=t)),
    "matmul_cauchy": Case(_cauchy, st.matmul_cauchy),
    "matmul_hankel": Case(lambda rng: (_t(rng, (6,)), _t(rng, (5,)), _t(rng, (5, 2))),
                          st.matmul_hankel),
    "solve_hankel": Case(lambda rng: (*_hankel(rng), _t(rng, (5,))),
                         lambda c, r, b: st.solve_hankel(c, r, b, method="gko")),
    "matmul_vandermonde": Case(lambda rng: (_t(rng, (4,)) / 2, _t(rng, (2, 4))),
                               lambda x, v: st.matmul_vandermonde(x, v, 5)),
    "solve_vandermonde": Case(lambda rng: (torch.tensor([-1.0, -0.3, 0.4, 1.1]) +
                                           _pos(rng, 4, 0.0, 0.1), _t(rng, (2, 4))),
                              lambda x, b: st.solve_vandermonde(x, b, transpose=True)),
    "ldr_solve": Case(lambda rng: (*(torch.tensor(a) for a in _toeplitz_generators(rng)),
                                   _t(rng, (2, 4))),
                      lambda G, H, b: st.ldr_solve(G, H, b, "toeplitz")),
    "solve_cauchy": Case(lambda rng: _cauchy(rng, 4), st.solve_cauchy),
}

NAMES = sorted(OPS)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _inputs(name, seed=0, grad=True):
    return tuple(t.requires_grad_(grad) for t in CASES[name].make(np.random.default_rng(seed)))


def _loss(y):
    return (y.abs() ** 2).sum() if y.is_complex() else (y * y.detach().sign()).sum()


def _operator_call(name, inputs):
    """The arguments the wrapper hands to ``torch.ops.structlin.<name>``."""
    seen = []
    saved = _custom.call

    def record(n, *args):
        if n == name:
            seen.append(tuple(args))
        return saved(n, *args)

    _custom.call = record
    try:
        CASES[name].call(*inputs)
    finally:
        _custom.call = saved
    (args,) = seen
    return args


def test_every_operation_is_a_custom_operator_with_a_case():
    assert set(CASES) == set(OPS)
    for name in OPS:
        assert getattr(torch.ops.structlin, name).default is not None
        assert getattr(torch.ops.structlin, f"{name}_vjp").default is not None
        assert name in st.__all__


@pytest.mark.parametrize("name", NAMES)
def test_opcheck(name):
    """Schema, fake implementation, autograd registration and AOT dispatch (with dynamic
    shapes), on float64 (complex128 for fwht)."""
    args = _operator_call(name, _inputs(name, seed=1))
    torch.library.opcheck(_custom.operator(name), args)
    # the VJP operator too, on the gradient of a result of the right shape and dtype
    # (first-order: its inputs do not require grad)
    y = _custom.operator(name)(*args)
    arrays = [a.detach() for a in args[0]]
    torch.library.opcheck(_custom.vjp_operator(name), (arrays, *args[1:], torch.randn_like(y)))


def test_opcheck_on_a_complex_product():
    args = _operator_call("butterfly_multiply", (
        torch.tensor(sl.random_butterfly(8, rng=2, dtype=np.complex128), requires_grad=True),
        _t(np.random.default_rng(3), (2, 8), CPLX).requires_grad_()))
    assert args[0][0].dtype == CPLX
    torch.library.opcheck(_custom.operator("butterfly_multiply"), args)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name):
    assert torch.autograd.gradcheck(CASES[name].call, _inputs(name, seed=2), eps=1e-6,
                                    atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_compile_fullgraph_aot_eager_matches_eager(name):
    """Forward and backward under torch.compile(fullgraph=True) (no graph break) equal the
    eager ones."""
    call = CASES[name].call
    eager_in, compiled_in = _inputs(name, seed=3), _inputs(name, seed=3)

    def fn(*a):
        return _loss(call(*a))

    want = fn(*eager_in)
    want.backward()
    got = torch.compile(fn, fullgraph=True, backend="aot_eager")(*compiled_in)
    got.backward()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for a, b in zip(compiled_in, eager_in, strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)


def test_dynamic_shapes_compile_once():
    """torch.compile(dynamic=True): new batch sizes reuse the graph (the fake implementation
    gives symbolic result sizes, also where out_shape broadcasts with NumPy)."""
    from torch._dynamo.utils import counters

    tw = torch.tensor(sl.random_butterfly(8, rng=8))
    c, r = _toeplitz(np.random.default_rng(9))
    f = torch.compile(lambda x: st.butterfly_multiply(tw, x), fullgraph=True,
                      backend="aot_eager", dynamic=True)
    g = torch.compile(lambda x: st.matmul_toeplitz(c, r, x), fullgraph=True,
                      backend="aot_eager", dynamic=True)
    counters.clear()
    for b in (6, 7, 9):  # sizes equal to no other size (duck sizing would tie them)
        x = torch.randn(b, 8, dtype=REAL)
        torch.testing.assert_close(f(x), st.butterfly_multiply(tw, x), rtol=0, atol=0)
        x = torch.randn(b, 5, 3, dtype=REAL)
        torch.testing.assert_close(g(x), st.matmul_toeplitz(c, r, x), rtol=0, atol=0)
    assert counters["stats"]["unique_graphs"] == 2


def test_dynamo_sees_one_graph_without_breaks():
    """A small model of three structlin operations and torch code between them."""
    tw = torch.tensor(sl.random_butterfly(8, rng=4), requires_grad=True)
    w1 = torch.randn(2, 4, 4, dtype=REAL, requires_grad=True)
    w2 = torch.randn(2, 4, 4, dtype=REAL, requires_grad=True)

    def model(x):
        h = torch.relu(st.butterfly_multiply(tw, x))
        h = st.monarch_multiply(w1, w2, h)
        return st.fwht(torch.tanh(h), normalize=True).sum()

    x = torch.randn(3, 8, dtype=REAL)
    report = torch._dynamo.explain(model)(x)
    assert report.graph_count == 1 and report.graph_break_count == 0
    ops = [n.target for g in report.graphs for n in g.graph.nodes if n.op == "call_function"]
    assert torch.ops.structlin.butterfly_multiply.default in ops
    assert torch.ops.structlin.fwht.default in ops


def test_compile_with_inductor_forward_and_backward():
    """The default backend once (a C++ compile): forward and backward match eager."""
    tw, x = _inputs("butterfly_multiply", seed=5)
    tw2, x2 = (a.detach().clone().requires_grad_() for a in (tw, x))

    def fn(a, b):
        return (torch.sin(st.butterfly_multiply(a, b, transpose=True)) * 2.0).sum()

    fn(tw, x).backward()
    t0 = time.perf_counter()
    got = torch.compile(fn, fullgraph=True)(tw2, x2)
    got.backward()
    assert time.perf_counter() - t0 < 600
    torch.testing.assert_close(got, fn(tw, x).detach())
    torch.testing.assert_close(tw2.grad, tw.grad)
    torch.testing.assert_close(x2.grad, x.grad)


def test_torch_export_keeps_the_operator_and_its_keywords():
    tw, x = _inputs("butterfly_multiply", seed=7, grad=False)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tw = torch.nn.Parameter(tw)

        def forward(self, x):
            return st.butterfly_multiply(self.tw, x, transpose=True)

    model = Model()
    exported = torch.export.export(model, (x,))
    assert "torch.ops.structlin.butterfly_multiply.default" in exported.graph_module.code
    assert "'transpose': True" in exported.graph_module.code
    torch.testing.assert_close(exported.module()(x), model(x), rtol=0, atol=0)


def test_the_examples_of_docs_interop_torch_section_run():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "interop.md").read_text()
    section = text[text.index("## PyTorch:"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"```\{code-block\} python\n(.*?)```", section, re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/interop.md (PyTorch)", "exec"), {})


def test_fake_tensors_give_shape_and_dtype_without_computing(monkeypatch):
    from torch._subclasses.fake_tensor import FakeTensorMode

    def boom(*a, **k):
        raise AssertionError("structlin ran on fake tensors")

    monkeypatch.setattr(sl, "monarch_multiply", boom)
    monkeypatch.setattr(sl, "ssm_kernel_diag", boom)
    with FakeTensorMode():
        y = st.monarch_multiply(torch.empty(2, 3, 3), torch.empty(3, 4, 2, dtype=torch.complex64),
                                torch.empty(5, 7, 6))
        assert y.shape == (5, 7, 12) and y.dtype == torch.complex64
        k = st.ssm_kernel_diag(torch.empty(4, 3, dtype=CPLX), torch.empty(4, 3, dtype=CPLX),
                               torch.empty(4, 3, dtype=CPLX), torch.empty(4), 9)
        assert k.shape == (4, 9) and k.dtype == REAL


def test_static_keywords_travel_as_literals():
    op = OPS["ssm_kernel_diag"]
    assert _custom.encode_static(op, {"L": np.int64(6), "method": "zoh"}) == \
        "{'L': 6, 'method': 'zoh'}"
    args = _ssm_diag(np.random.default_rng(6))
    np.testing.assert_array_equal(st.ssm_kernel_diag(*args, np.int64(6)).numpy(),
                                  st.ssm_kernel_diag(*args, 6).numpy())
    with pytest.raises(TypeError, match="L must be a bool, int, float, complex, str or None"):
        st.ssm_kernel_diag(*args, object())
    op = OPS["ldr_multiply"]
    assert "'f': (1+2j)" in _custom.encode_static(op, {"kind": "toeplitz", "f": 1 + 2j})


def test_double_backward_is_refused_with_a_clear_error():
    x = _inputs("dct")[0]
    (g,) = torch.autograd.grad(_loss(st.dct(x, 2)), x, create_graph=True)
    assert g.requires_grad
    with pytest.raises(RuntimeError, match="differentiable once"):
        g.sum().backward()


# ---- bad input: eager, and at trace time under torch.compile --------------------------------


def _fails_while_tracing(fn, args, pattern, monkeypatch):
    """``fn`` compiled with fullgraph=True raises an error matching ``pattern`` before any
    operator runs on real tensors (the error comes from tracing, not from the kernel)."""
    calls = []
    real = _custom.to_array
    monkeypatch.setattr(_custom, "to_array", lambda a: calls.append(1) or real(a))
    with pytest.raises(TRACE_ERRORS, match=pattern):
        torch.compile(fn, fullgraph=True, backend="aot_eager")(*args)
    assert calls == []


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_unsupported_dtype(dtype, monkeypatch):
    tw = torch.tensor(sl.random_butterfly(8, rng=0))
    x = torch.ones(2, 8, dtype=dtype)
    pattern = rf"x has dtype {dtype}; .* supports torch\.float32"
    with pytest.raises(TypeError, match=pattern):
        st.butterfly_multiply(tw, x)
    _fails_while_tracing(lambda a: st.butterfly_multiply(tw, a), (x,), pattern, monkeypatch)
    # not fullgraph: dynamo falls back to eager for the frame, and the TypeError is the eager one
    with pytest.raises(TypeError, match=pattern):
        torch.compile(lambda a: st.butterfly_multiply(tw, a), backend="aot_eager")(x)


def test_requires_grad_on_the_mask(monkeypatch):
    blocks, U, V, x = _inputs("pixelfly_multiply", grad=False)
    mask = torch.tensor(_MASK, dtype=REAL, requires_grad=True)
    pattern = "mask requires grad, but .*pixelfly_multiply does not differentiate"
    with pytest.raises(ValueError, match=pattern):
        st.pixelfly_multiply(blocks, mask, U, V, x)
    _fails_while_tracing(lambda m: st.pixelfly_multiply(blocks, m, U, V, x), (mask,), pattern,
                         monkeypatch)
    # the mask's own checks then come from structlin; a bool tensor or a NumPy mask works
    with pytest.raises(TypeError, match="mask must be a boolean array"):
        st.pixelfly_multiply(blocks, mask.detach(), U, V, x)
    y = st.pixelfly_multiply(blocks, torch.as_tensor(_MASK), U, V, x)
    np.testing.assert_array_equal(y.numpy(), st.pixelfly_multiply(blocks, _MASK, U, V, x))


def test_a_device_other_than_cpu_and_cuda(monkeypatch):
    tw = torch.tensor(sl.random_butterfly(8, rng=0))
    x = torch.empty(2, 8, dtype=REAL, device="meta")
    with pytest.raises(TypeError, match="x is on device meta; structlin runs on CPU and CUDA"):
        st.butterfly_multiply(tw, x)
    _fails_while_tracing(lambda a: st.butterfly_multiply(tw, a), (x,), "x is on device meta",
                         monkeypatch)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tensors_on_different_devices(monkeypatch):
    tw = torch.tensor(sl.random_butterfly(8, rng=0))
    x = torch.ones(2, 8, dtype=REAL, device="cuda")
    pattern = "x is on cuda:0 but an earlier argument is on cpu"
    with pytest.raises(TypeError, match=pattern):
        st.butterfly_multiply(tw, x)
    _fails_while_tracing(lambda a: st.butterfly_multiply(tw, a), (x,), pattern, monkeypatch)


def test_shapes_that_do_not_broadcast_fail_while_tracing(monkeypatch):
    """Where ``op.out_shape`` cannot combine the shapes, the fake implementation raises the
    NumPy function's own ValueError, at trace time."""
    c, x = torch.ones(2, 5, dtype=REAL), torch.ones(3, 5, 1, dtype=REAL)
    with pytest.raises(ValueError, match="must broadcast") as eager:
        st.matmul_toeplitz(c, None, x)
    _fails_while_tracing(lambda a, b: st.matmul_toeplitz(a, None, b), (c, x),
                         re.escape(str(eager.value)), monkeypatch)
    G, H = torch.ones(2, 2, 8, dtype=REAL), torch.ones(3, 2, 8, dtype=REAL)
    with pytest.raises(ValueError) as eager:
        st.ldr_multiply(G, H, torch.ones(8, dtype=REAL), "toeplitz")
    assert "G" in str(eager.value) and "H" in str(eager.value)
    _fails_while_tracing(lambda a, b: st.ldr_multiply(a, b, torch.ones(8, dtype=REAL),
                                                      "toeplitz"),
                         (G, H), re.escape(str(eager.value)), monkeypatch)


def test_shape_mismatches_fail_while_tracing(monkeypatch):
    """The ops' ``out_shape`` checks the shapes with the wording of the function's own error:
    a mismatch is raised at trace time, before any kernel, with the eager message."""
    w1, w2 = torch.ones(2, 3, 3), torch.ones(3, 4, 2)
    x = torch.ones(2, 7)
    pattern = r"x has length n_in = 7 along its last axis .* needs k\*p = 6"
    with pytest.raises(ValueError, match=pattern):
        st.monarch_multiply(w1, w2, x)
    _fails_while_tracing(lambda a: st.monarch_multiply(w1, w2, a), (x,), pattern, monkeypatch)
    tw = torch.tensor(sl.random_butterfly(8, rng=0))
    for bad, pattern in ((torch.ones(2, 4, dtype=REAL), r"twiddle must have shape \(2, 2, 2, 2\)"),
                         (torch.ones(2, 6, dtype=REAL), "power of two")):
        with pytest.raises(ValueError, match=pattern):
            st.butterfly_multiply(tw, bad)
        _fails_while_tracing(lambda a: st.butterfly_multiply(tw, a), (bad,), pattern,
                             monkeypatch)
    u, k = torch.ones(2, 3, 8, dtype=REAL), torch.ones(4, 8, dtype=REAL)
    pattern = r"k must have one kernel per channel of u, i\.e\. H = 3 rows"
    with pytest.raises(ValueError, match=pattern):
        st.fftconv(u, k)
    _fails_while_tracing(lambda a: st.fftconv(a, k), (u,), pattern, monkeypatch)


def test_a_bad_precision_fails_while_tracing(monkeypatch):
    w1, w2, x = torch.ones(2, 3, 3), torch.ones(3, 4, 2), torch.ones(2, 6)
    with pytest.raises(ValueError, match="precision must be one of") as eager:
        st.monarch_multiply(w1, w2, x, precision="bogus")
    _fails_while_tracing(lambda a: st.monarch_multiply(w1, w2, a, precision="bogus"), (x,),
                         "precision must be one of", monkeypatch)
    assert "bogus" in str(eager.value)
    x64 = x.double()
    with pytest.raises(ValueError, match="needs float32 or complex64 data"):
        st.monarch_multiply(w1.double(), w2.double(), x64, precision="tf32")
    _fails_while_tracing(
        lambda a: st.monarch_multiply(w1.double(), w2.double(), a, precision="tf32"), (x64,),
        "needs float32 or complex64 data", monkeypatch)


# ---- the overhead benchmark runs -------------------------------------------------------------


def test_benchmark_module_quick_cases_run_and_agree():
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        import bench_torch
    finally:
        sys.path.remove(str(bench))
    cases = list(bench_torch.cases(True))
    assert {c.name for c in cases} >= {"butterfly_multiply forward", "monarch_multiply forward",
                                       "fftconv forward+backward"}
    for c in cases:
        err = c.check(c.fn(), c.baseline())
        assert err < c.tol, (c.name, err)


def test_eager_calls_skip_the_dispatcher_and_traced_ones_use_the_operator(monkeypatch):
    """Plain eager calls run the operator's implementation through an autograd.Function (no
    dispatch overhead); anything PyTorch traces or transforms goes through the operator."""
    used = []
    real = dict(_custom._OVERLOADS)
    monkeypatch.setattr(_custom, "_OVERLOADS", {
        n: (lambda *a, _n=n: used.append(_n) or real[_n](*a)) for n in real})
    tw = torch.tensor(sl.random_butterfly(8, rng=11), requires_grad=True)
    x = torch.randn(3, 8, dtype=REAL)
    y = st.butterfly_multiply(tw, x)
    y.sum().backward()
    assert used == [] and tw.grad is not None
    with torch.device("cpu"):  # a __torch_function__ mode
        z = st.butterfly_multiply(tw, x)
    assert used == ["butterfly_multiply"]
    torch.testing.assert_close(z, y, rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_out_shape_refuses_exactly_what_the_function_refuses(name):
    """For every array of every op's case, one more entry along its last axis: the op's
    ``out_shape`` (what the fake implementation, hence tracing, sees) raises a ValueError
    exactly when the structlin function does, and otherwise gives the function's result
    shape. So a mismatch never waits for the first run, and a valid shape is never refused."""
    from structlin._registry import ShapeMismatch

    op = OPS[name]
    arrays, present, static = _operator_call(name, _inputs(name, seed=4))
    static = _custom._static(static)
    base = [a.detach().numpy() for a in arrays]
    checked = 0
    for i in range(len(base)):
        if base[i].ndim == 0 or base[i].dtype == np.bool_:
            continue
        grown = list(base)
        pad = np.zeros((*base[i].shape[:-1], 1), base[i].dtype)
        grown[i] = np.concatenate([base[i], pad], axis=-1)
        full = _custom._fill(grown, present)
        shapes = tuple(None if a is None else a.shape for a in full)
        try:
            with np.errstate(all="ignore"):
                want = np.shape(op.forward(full, static))
        except ValueError:
            want = None
        except np.linalg.LinAlgError:  # a valid shape whose values are singular
            continue
        try:
            got = tuple(op.out_shape(shapes, static))
        except ShapeMismatch:
            got = None
        except ValueError:  # NumPy's broadcast error: the wrappers then ask the function
            got = None
        assert (got is None) == (want is None), (name, op.arrays, shapes, got, want)
        if want is not None:
            assert got == want, (name, shapes)
        checked += 1
    assert checked >= 1
