"""structlin.interop.torch: autograd wrappers checked by torch.autograd.gradcheck (float64 and
complex128, small sizes), against the NumPy functions, and for dtype/device/layout handling."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import structlin as sl  # noqa: E402
from structlin.interop import torch as st  # noqa: E402
from tests.interop_cases import PRECISION_CASES, numpy_error  # noqa: E402

REAL, CPLX = torch.float64, torch.complex128


def _t(rng, shape, dtype=REAL, grad=True):
    a = rng.standard_normal(shape)
    if dtype.is_complex:
        a = a + 1j * rng.standard_normal(shape)
    return torch.tensor(a, dtype=dtype, requires_grad=grad)


def _gradcheck(fn, inputs):
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [REAL, CPLX], ids=["float64", "complex128"])
@pytest.mark.parametrize("flags", [(True, False, False), (False, True, False),
                                   (True, True, True), (False, False, True)])
def test_butterfly_multiply_gradcheck(dtype, flags):
    inc, tr, cj = flags
    rng = np.random.default_rng(0)
    tw = torch.tensor(sl.random_butterfly(8, rng=1, dtype=np.dtype(str(dtype)[6:])),
                      requires_grad=True)
    x = _t(rng, (3, 8), dtype)
    _gradcheck(lambda a, b: st.butterfly_multiply(a, b, increasing_stride=inc, transpose=tr,
                                                  conjugate=cj), (tw, x))


@pytest.mark.parametrize("dtype", [REAL, CPLX], ids=["float64", "complex128"])
def test_butterfly_solve_gradcheck(dtype):
    rng = np.random.default_rng(2)
    tw = torch.tensor(
        sl.random_butterfly(8, kind="orthogonal", rng=3, dtype=np.dtype(str(dtype)[6:])),
        requires_grad=True)
    y = _t(rng, (2, 8), dtype)
    _gradcheck(lambda a, b: st.butterfly_solve(a, b), (tw, y))
    _gradcheck(lambda a, b: st.butterfly_solve(a, b, increasing_stride=False, transpose=True,
                                               conjugate=True), (tw, y))


@pytest.mark.parametrize("dtype", [REAL, CPLX], ids=["float64", "complex128"])
def test_monarch_multiply_gradcheck(dtype):
    rng = np.random.default_rng(4)
    w1, w2, x = _t(rng, (2, 3, 3), dtype), _t(rng, (3, 4, 2), dtype), _t(rng, (2, 6), dtype)
    _gradcheck(st.monarch_multiply, (w1, w2, x))


@pytest.mark.parametrize("mask_kind", ["numpy", "tensor"])
def test_pixelfly_multiply_gradcheck(mask_kind):
    rng = np.random.default_rng(5)
    mask = sl.flat_block_butterfly_mask(8, 8, 2)
    m = torch.as_tensor(mask) if mask_kind == "tensor" else mask
    blocks = _t(rng, (int(mask.sum()), 2, 2))
    U, V, x = _t(rng, (8, 2)), _t(rng, (8, 2)), _t(rng, (3, 8))
    _gradcheck(lambda b, u, v, z: st.pixelfly_multiply(b, m, u, v, z), (blocks, U, V, x))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("dtype", [REAL, CPLX], ids=["float64", "complex128"])
def test_fftconv_gradcheck(causal, dtype):
    rng = np.random.default_rng(6)
    u, k, D = _t(rng, (2, 3, 7), dtype), _t(rng, (3, 5), dtype), _t(rng, (3,), dtype)
    pre, post = _t(rng, (2, 3, 7), dtype), _t(rng, (2, 3, 7), dtype)
    _gradcheck(lambda *a: st.fftconv(a[0], a[1], a[2], pregate=a[3], postgate=a[4],
                                     causal=causal), (u, k, D, pre, post))
    _gradcheck(lambda a, b: st.fftconv(a, b, causal=causal), (u, k))


def test_circulant_and_toeplitz_gradcheck():
    rng = np.random.default_rng(7)
    c, x = _t(rng, (8,)), _t(rng, (2, 8))
    _gradcheck(st.circulant_multiply, (c, x))
    col, row = _t(rng, (8,)), _t(rng, (8,))
    _gradcheck(st.toeplitz_multiply, (col, row, x))


@pytest.mark.parametrize("fn", ["dct", "dst"])
@pytest.mark.parametrize("type_", [2, 3, 4])
def test_dct_dst_gradcheck(fn, type_):
    rng = np.random.default_rng(8)
    x = _t(rng, (2, 8))
    _gradcheck(lambda a: getattr(st, fn)(a, type_, "ortho"), (x,))
    _gradcheck(lambda a: getattr(st, fn)(a, type_), (x,))


def test_fwht_gradcheck():
    x = _t(np.random.default_rng(9), (2, 16), CPLX)
    _gradcheck(lambda a: st.fwht(a, normalize=True), (x,))


def test_kernel_features_gradcheck():
    rng = np.random.default_rng(10)
    X, nodes = _t(rng, (2, 3, 2)), _t(rng, (5, 2))
    weights = torch.tensor(rng.uniform(0.2, 1.0, 5), dtype=REAL, requires_grad=True)
    _gradcheck(st.kernel_features, (X, nodes, weights))
    want = sl.kernel_features(X.detach().numpy(), nodes.detach().numpy(),
                              weights.detach().numpy())
    np.testing.assert_allclose(st.kernel_features(X, nodes, weights).detach().numpy(), want)


def test_forward_equals_the_numpy_function():
    rng = np.random.default_rng(10)
    tw, x = sl.random_butterfly(16, rng=0), rng.standard_normal((2, 3, 16))
    y = st.butterfly_multiply(torch.from_numpy(tw), torch.from_numpy(x), transpose=True)
    np.testing.assert_array_equal(y.numpy(), sl.butterfly_multiply(tw, x, transpose=True))
    u, k = rng.standard_normal((2, 3, 9)), rng.standard_normal((3, 4))
    np.testing.assert_array_equal(st.fftconv(torch.from_numpy(u), torch.from_numpy(k)).numpy(),
                                  sl.fftconv(u, k))
    np.testing.assert_allclose(st.dct(torch.from_numpy(x), 3).numpy(), sl.dct(x, 3))


def test_dtype_is_preserved_and_promoted_like_numpy():
    rng = np.random.default_rng(11)
    tw = torch.tensor(sl.random_butterfly(8, rng=0), dtype=torch.float32, requires_grad=True)
    x = torch.randn(3, 8, dtype=torch.float32, requires_grad=True)
    y = st.butterfly_multiply(tw, x)
    assert y.dtype == torch.float32 and y.device == x.device
    y.sum().backward()
    assert tw.grad.dtype == torch.float32 and x.grad.dtype == torch.float32
    xc = _t(rng, (3, 8), torch.complex64)
    tw.grad = None
    yc = st.butterfly_multiply(tw, xc)
    assert yc.dtype == torch.complex64
    yc.abs().sum().backward()
    assert tw.grad.dtype == torch.float32 and xc.grad.dtype == torch.complex64
    x64 = x.detach().double()
    assert st.butterfly_multiply(tw, x64).dtype == torch.float64


def test_non_contiguous_and_conjugated_inputs():
    rng = np.random.default_rng(12)
    tw = torch.tensor(sl.random_butterfly(8, rng=0, dtype=np.complex128))
    base = _t(rng, (8, 6), CPLX, grad=False)
    x = base.t()  # shape (6, 8), non-contiguous
    assert not x.is_contiguous()
    expected = sl.butterfly_multiply(tw.numpy(), x.numpy())
    np.testing.assert_allclose(st.butterfly_multiply(tw, x).numpy(), expected)
    xs = torch.zeros(6, 16, dtype=CPLX)
    xs[:, ::2] = x
    np.testing.assert_allclose(st.butterfly_multiply(tw, xs[:, ::2]).numpy(), expected)
    xc = x.conj()  # lazy conjugate bit
    assert xc.is_conj()
    np.testing.assert_allclose(st.butterfly_multiply(tw, xc).numpy(),
                               sl.butterfly_multiply(tw.numpy(), np.conj(x.numpy())))
    # gradients flow back through the strided view
    xg = x.clone().requires_grad_()
    st.butterfly_multiply(tw, xg[:, :].t().t()).abs().sum().backward()
    assert xg.grad.shape == x.shape


def test_only_requested_gradients_are_returned():
    rng = np.random.default_rng(13)
    w1, w2 = _t(rng, (2, 3, 3), grad=False), _t(rng, (3, 4, 2))
    x = _t(rng, (2, 6), grad=False)
    st.monarch_multiply(w1, w2, x).sum().backward()
    assert w1.grad is None and x.grad is None and w2.grad is not None


def test_unsupported_dtypes_raise_type_error():
    tw = torch.tensor(sl.random_butterfly(8, rng=0))
    for dt in (torch.float16, torch.bfloat16, torch.int64):
        with pytest.raises(TypeError, match=r"x has dtype .*float32, torch.float64"):
            st.butterfly_multiply(tw, torch.ones(2, 8, dtype=dt))
    with pytest.raises(TypeError, match=r"twiddle has dtype torch\.float16"):
        st.butterfly_multiply(tw.half(), torch.ones(2, 8))
    with pytest.raises(TypeError, match=r"must be a torch\.Tensor"):
        st.butterfly_multiply(tw, np.ones((2, 8)))


def test_unsupported_device_raises_type_error():
    tw = torch.tensor(sl.random_butterfly(8, rng=0))
    with pytest.raises(TypeError, match="meta"):
        st.butterfly_multiply(tw, torch.empty(2, 8, dtype=torch.float64, device="meta"))


def test_shape_errors_come_from_structlin():
    tw = torch.tensor(sl.random_butterfly(8, rng=0))
    with pytest.raises(ValueError, match="twiddle"):
        st.butterfly_multiply(tw, torch.ones(2, 16, dtype=torch.float64))


def test_arrays_cross_without_copies():
    a = torch.randn(4, 8, dtype=torch.float64)
    view = st._to_array(a)
    assert isinstance(view, np.ndarray)
    assert view.__array_interface__["data"][0] == a.data_ptr()
    strided = a[:, ::2]
    assert st._to_array(strided).__array_interface__["data"][0] == strided.data_ptr()
    out = np.arange(6.0)
    assert st._to_tensor(out).data_ptr() == out.__array_interface__["data"][0]


def test_double_backward_is_refused():
    rng = np.random.default_rng(14)
    x = _t(rng, (2, 8))
    y = st.fwht(x)
    (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


def test_works_inside_a_module_and_optimizer_step():
    tw = torch.nn.Parameter(torch.tensor(sl.random_butterfly(16, rng=0)))
    opt = torch.optim.SGD([tw], lr=0.1)
    x = torch.randn(32, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    target = torch.tensor(sl.fwht(x.numpy(), normalize=True))
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = (st.butterfly_multiply(tw, x) - target).square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


# ---- precision -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRECISION_CASES))
def test_precision_reaches_the_function_and_its_vjp(name, monkeypatch):
    """On CPU tensors a tensor-core precision computes in full precision; the value is handed
    to the structlin function and to its VJP (spied on)."""
    case = PRECISION_CASES[name]
    arrays = case.make(np.random.default_rng(20), np.float32)
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    case.call(getattr(st, name), ref).square().sum().backward()
    seen = []
    for fn in (name, f"{name}_vjp"):
        real = getattr(sl, fn)

        def spy(*args, _real=real, _fn=fn, **kwargs):
            seen.append((_fn, kwargs.get("precision")))
            return _real(*args, **kwargs)

        monkeypatch.setattr(sl, fn, spy)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = case.call(getattr(st, name), ts, precision=case.tensor_core)
    assert y.dtype == torch.float32
    y.square().sum().backward()
    assert seen == [(name, case.tensor_core), (f"{name}_vjp", case.tensor_core)]
    np.testing.assert_array_equal(y.detach().numpy(), case.call(getattr(st, name), ref).detach()
                                  .numpy())
    for t, r in zip(ts, ref, strict=True):
        np.testing.assert_array_equal(t.grad.numpy(), r.grad.numpy())


@pytest.mark.parametrize("name", sorted(PRECISION_CASES))
def test_precision_errors_are_the_numpy_functions(name):
    case = PRECISION_CASES[name]
    arrays = case.make(np.random.default_rng(21), np.float32)
    ts = [torch.tensor(a) for a in arrays]
    for bad in (case.refused, "bogus", None):
        with pytest.raises(ValueError, match=numpy_error(name, arrays, bad)):
            case.call(getattr(st, name), ts, precision=bad)
    doubles = tuple(a.astype(np.float64) for a in arrays)
    with pytest.raises(ValueError, match=numpy_error(name, doubles, case.tensor_core)):
        case.call(getattr(st, name), [torch.tensor(a) for a in doubles],
                  precision=case.tensor_core)


# ---- ssm family ----------------------------------------------------------------------------


def _ssm_diag(rng, dtype=CPLX, real=REAL, grad=True):
    """``(Lambda, B, C, dt)`` of ``ssm_kernel_diag``: H = 2 channels of N = 3 decaying modes."""
    H, N = 2, 3
    lam = -0.5 - rng.uniform(0.0, 1.0, (H, N)) + 1j * rng.standard_normal((H, N))
    lam = torch.tensor(lam, dtype=dtype, requires_grad=grad)
    B, C = _t(rng, (H, N), dtype, grad), _t(rng, (H, N), dtype, grad)
    dt = torch.tensor(rng.uniform(0.05, 0.3, H), dtype=real, requires_grad=grad)
    return lam, B, C, dt


def _selective(rng, dtype=REAL, grad=True, groups=None):
    """``(u, delta, A, B, C, D, z, delta_bias)`` of ``selective_scan``: (b, d, l, n) =
    (2, 4, 6, 3), B and C shared ``(b, n, l)`` (or ``(b, g, n, l)`` for ``groups``)."""
    b, d, l, n = 2, 4, 6, 3

    def t(a):
        return torch.tensor(a, dtype=dtype, requires_grad=grad)

    bc = (b, n, l) if groups is None else (b, groups, n, l)
    return (t(rng.standard_normal((b, d, l))), t(rng.uniform(0.05, 0.5, (b, d, l))),
            t(-np.exp(rng.uniform(-0.5, 0.5, (d, n)))), t(rng.standard_normal(bc)),
            t(rng.standard_normal(bc)), t(rng.standard_normal(d)),
            t(rng.standard_normal((b, d, l))), t(0.1 * rng.standard_normal(d)))


def _ssd_args(rng, dtype=REAL, grad=True, groups=2):
    """``(X, A, B, C, initial_states)`` of ``ssd``: (b, l, h, p, n) = (1, 7, 2, 3, 4)."""
    b, l, h, p, n = 1, 7, 2, 3, 4

    def t(a):
        return torch.tensor(a, dtype=dtype, requires_grad=grad)

    return (t(rng.standard_normal((b, l, h, p))), t(-rng.uniform(0.0, 0.5, (b, l, h))),
            t(rng.standard_normal((b, l, groups, n))), t(rng.standard_normal((b, l, groups, n))),
            t(rng.standard_normal((b, h, p, n))))


def _np(tensors):
    return tuple(None if t is None else t.detach().numpy() for t in tensors)


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_ssm_kernel_diag_gradcheck(method):
    """Complex Lambda, B, C and real dt; the kernel is real."""
    args = _ssm_diag(np.random.default_rng(30))
    _gradcheck(lambda *a: st.ssm_kernel_diag(*a, 9, method=method), args)
    y = st.ssm_kernel_diag(*args, 9, method=method)
    assert y.dtype == REAL and y.shape == (2, 9)
    np.testing.assert_array_equal(y.detach().numpy(),
                                  sl.ssm_kernel_diag(*_np(args), 9, method=method))


def test_ssm_kernel_diag_single_precision_in_and_out():
    args = _ssm_diag(np.random.default_rng(31), torch.complex64, torch.float32)
    y = st.ssm_kernel_diag(*args, 8)
    assert y.dtype == torch.float32
    np.testing.assert_array_equal(y.detach().numpy(), sl.ssm_kernel_diag(*_np(args), 8))
    y.square().sum().backward()
    assert [a.grad.dtype for a in args] == [torch.complex64] * 3 + [torch.float32]


@pytest.mark.parametrize("softplus", [False, True])
def test_selective_scan_gradcheck(softplus):
    """Real float64, B and C shared (b, n, l): with D, z and delta_bias, and without them."""
    args = _selective(np.random.default_rng(32))
    _gradcheck(lambda *a: st.selective_scan(*a, delta_softplus=softplus), args)
    _gradcheck(lambda *a: st.selective_scan(*a, delta_softplus=softplus), args[:5])
    for given in (args, args[:5]):
        y = st.selective_scan(*given, delta_softplus=softplus)
        assert y.dtype == REAL and y.shape == given[0].shape
        np.testing.assert_array_equal(
            y.detach().numpy(), sl.selective_scan(*_np(given), delta_softplus=softplus))


def test_selective_scan_grouped_b_c_and_only_some_optional_arguments():
    u, delta, A, B, C, D, z, bias = _selective(np.random.default_rng(33), groups=2)
    _gradcheck(lambda *a: st.selective_scan(*a[:5], z=a[5]), (u, delta, A, B, C, z))
    y = st.selective_scan(u, delta, A, B, C, D=D, delta_softplus=True)
    want = sl.selective_scan(*_np((u, delta, A, B, C)), D=D.detach().numpy(),
                             delta_softplus=True)
    np.testing.assert_array_equal(y.detach().numpy(), want)
    y.sum().backward()
    assert z.grad is None and bias.grad is None and D.grad is not None


def test_selective_scan_single_precision_in_and_out():
    args = _selective(np.random.default_rng(34), torch.float32)
    y = st.selective_scan(*args, delta_softplus=True)
    assert y.dtype == torch.float32
    np.testing.assert_array_equal(y.detach().numpy(),
                                  sl.selective_scan(*_np(args), delta_softplus=True))
    y.square().sum().backward()
    assert all(a.grad.dtype == torch.float32 for a in args)


@pytest.mark.parametrize("chunk_size", [3, 16])
def test_ssd_gradcheck(chunk_size):
    """With and without initial_states; a chunk that does not divide the length and one
    longer than it; two heads sharing one group of B and C."""
    X, A, B, C, S0 = _ssd_args(np.random.default_rng(35), groups=1)
    _gradcheck(lambda *a: st.ssd(*a, chunk_size), (X, A, B, C))
    _gradcheck(lambda *a: st.ssd(*a[:4], chunk_size, initial_states=a[4]), (X, A, B, C, S0))
    for s0 in (None, S0):
        y = st.ssd(X, A, B, C, chunk_size, initial_states=s0)
        assert y.dtype == REAL and y.shape == X.shape
        want = sl.ssd(*_np((X, A, B, C)), chunk_size,
                      initial_states=None if s0 is None else s0.detach().numpy())
        np.testing.assert_array_equal(y.detach().numpy(), want)


def test_ssd_single_precision_in_and_out():
    args = _ssd_args(np.random.default_rng(36), torch.float32)
    y = st.ssd(*args[:4], 4, initial_states=args[4])
    assert y.dtype == torch.float32
    np.testing.assert_array_equal(y.detach().numpy(),
                                  sl.ssd(*_np(args[:4]), 4, initial_states=_np(args[4:])[0]))
    y.square().sum().backward()
    assert all(a.grad.dtype == torch.float32 for a in args)


def test_selective_scan_complex_a_gradcheck():
    """Complex A with complex time-varying C and a time-invariant complex B (d, n); the
    output is real."""
    rng = np.random.default_rng(37)
    u, delta = _selective(rng)[:2]
    d, n, (b, _, l) = 4, 3, u.shape
    A = torch.tensor(-np.exp(rng.uniform(-0.5, 0.5, (d, n))) + 1j * rng.standard_normal((d, n)),
                     requires_grad=True)
    B, C = _t(rng, (d, n), CPLX), _t(rng, (b, n, l), CPLX)
    _gradcheck(st.selective_scan, (u, delta, A, B, C))
    y = st.selective_scan(u, delta, A, B, C)
    assert y.dtype == REAL
    np.testing.assert_array_equal(y.detach().numpy(), sl.selective_scan(*_np((u, delta, A, B, C))))
