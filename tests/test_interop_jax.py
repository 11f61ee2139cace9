"""structlin.interop.jax: custom_vjp wrappers over pure_callback, checked under jax.jit against
finite differences (jax.test_util.check_grads, reverse mode) and against jnp dense references
(including JAX's convention for complex cotangents)."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import structlin as sl  # noqa: E402
from structlin.butterfly import _reference_apply  # noqa: E402
from structlin.interop import jax as sj  # noqa: E402
from structlin.monarch import _reference_monarch  # noqa: E402
from tests.interop_cases import PRECISION_CASES, numpy_error  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _x64():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _a(rng, shape, dtype="float64"):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return jnp.asarray(a, dtype=dtype)


def _check(f, args):
    check_grads(jax.jit(f), args, order=1, modes=["rev"], atol=1e-5, rtol=1e-5, eps=1e-6)


def _ref_butterfly(t, x, inc, tr, cj):
    if tr:
        t, inc = jnp.swapaxes(t, -1, -2), not inc
    if cj:
        t = jnp.conj(t)
    return _reference_apply(jnp, t, x, inc)


def _compare_vjp(f, ref, args, ct):
    """Value and every cotangent of ``f`` equal those of the jnp reference ``ref``."""
    y, vjp = jax.vjp(jax.jit(f), *args)
    y_ref, vjp_ref = jax.vjp(ref, *args)
    np.testing.assert_allclose(y, y_ref, atol=1e-10)
    for g, g_ref in zip(vjp(ct), vjp_ref(ct), strict=True):
        assert g.dtype == g_ref.dtype
        np.testing.assert_allclose(g, g_ref, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
@pytest.mark.parametrize("flags", [(True, False, False), (False, True, True)])
def test_butterfly_multiply_vjp_matches_jnp_reference(dtype, flags):
    rng = np.random.default_rng(0)
    tw = jnp.asarray(sl.random_butterfly(8, rng=1, dtype=dtype))
    x, ct = _a(rng, (3, 8), dtype), _a(rng, (3, 8), dtype)
    inc, tr, cj = flags

    def f(t, x):
        return sj.butterfly_multiply(t, x, increasing_stride=inc, transpose=tr, conjugate=cj)

    _compare_vjp(f, lambda t, x: _ref_butterfly(t, x, inc, tr, cj), (tw, x), ct)
    _check(f, (tw, x))


def test_butterfly_multiply_real_twiddle_complex_input():
    """A real argument of a complex product gets a real cotangent (JAX's convention)."""
    rng = np.random.default_rng(2)
    tw = jnp.asarray(sl.random_butterfly(8, rng=3))
    x, ct = _a(rng, (2, 8), "complex128"), _a(rng, (2, 8), "complex128")
    _compare_vjp(sj.butterfly_multiply, lambda t, x: _ref_butterfly(t, x, True, False, False),
                 (tw, x), ct)


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_butterfly_solve_vjp_matches_dense_solve(dtype):
    rng = np.random.default_rng(4)
    tw = jnp.asarray(sl.random_butterfly(8, kind="orthogonal", rng=5, dtype=dtype))
    y, ct = _a(rng, (2, 8), dtype), _a(rng, (2, 8), dtype)

    def ref(t, y):
        B = _reference_apply(jnp, t, jnp.eye(8, dtype=t.dtype), True).T
        return jnp.linalg.solve(B, y.T).T

    _compare_vjp(sj.butterfly_solve, ref, (tw, y), ct)
    _check(sj.butterfly_solve, (tw, y))


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_monarch_multiply_vjp_matches_jnp_reference(dtype):
    rng = np.random.default_rng(6)
    w1, w2 = _a(rng, (2, 3, 3), dtype), _a(rng, (3, 4, 2), dtype)
    x, ct = _a(rng, (5, 6), dtype), _a(rng, (5, 12), dtype)
    _compare_vjp(sj.monarch_multiply, lambda a, b, x: _reference_monarch(jnp, a, b, x),
                 (w1, w2, x), ct)
    _check(sj.monarch_multiply, (w1, w2, x))


def test_pixelfly_multiply_gradients():
    rng = np.random.default_rng(7)
    mask = sl.flat_block_butterfly_mask(8, 8, 2)
    blocks = _a(rng, (int(mask.sum()), 2, 2))
    U, V, x = _a(rng, (8, 2)), _a(rng, (8, 2)), _a(rng, (3, 8))
    y = sj.pixelfly_multiply(blocks, mask, U, V, x)
    M = sl.pixelfly_to_dense(np.asarray(blocks), mask, np.asarray(U), np.asarray(V))
    np.testing.assert_allclose(y, np.asarray(x) @ M.T, atol=1e-12)
    _check(lambda b, u, v, z: sj.pixelfly_multiply(b, mask, u, v, z), (blocks, U, V, x))
    # a traced mask under jit is not differentiated
    f = jax.jit(lambda b, m: sj.pixelfly_multiply(b, m, U, V, x).sum())
    assert jax.grad(f)(blocks, jnp.asarray(mask)).shape == blocks.shape


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_fftconv_gradients_with_optional_arguments(causal, dtype):
    rng = np.random.default_rng(8)
    u, k, D = _a(rng, (2, 3, 7), dtype), _a(rng, (3, 4), dtype), _a(rng, (3,), dtype)
    post = _a(rng, (2, 3, 7), dtype)
    _check(lambda u, k, D, p: sj.fftconv(u, k, D, postgate=p, causal=causal), (u, k, D, post))
    _check(lambda u, k: sj.fftconv(u, k, causal=causal), (u, k))
    T = jnp.asarray(sl.fftconv_to_dense(np.asarray(k), 7, causal=causal))
    ct = _a(rng, (2, 3, 7), dtype)
    _compare_vjp(lambda u: sj.fftconv(u, k, causal=causal),
                 lambda u: jnp.einsum("hts,bhs->bht", T, u), (u,), ct)


def test_circulant_toeplitz_transforms_gradients():
    rng = np.random.default_rng(9)
    c, x = _a(rng, (8,)), _a(rng, (2, 8))
    _check(sj.circulant_multiply, (c, x))
    _check(sj.toeplitz_multiply, (_a(rng, (8,)), _a(rng, (8,)), x))
    for fn in (sj.dct, sj.dst):
        for type_ in (2, 3, 4):
            _check(lambda z, fn=fn, t=type_: fn(z, t, "ortho"), (x,))
    _check(lambda z: sj.fwht(z, normalize=True), (_a(rng, (2, 8), "complex128"),))


def test_kernel_features_gradients():
    rng = np.random.default_rng(11)
    X, nodes = _a(rng, (2, 3, 2)), _a(rng, (5, 2))
    weights = jnp.asarray(rng.uniform(0.2, 1.0, 5))
    _check(sj.kernel_features, (X, nodes, weights))
    want = sl.kernel_features(np.asarray(X), np.asarray(nodes), np.asarray(weights))
    np.testing.assert_allclose(np.asarray(jax.jit(sj.kernel_features)(X, nodes, weights)), want)


def test_forward_equals_numpy_and_keeps_dtype():
    rng = np.random.default_rng(10)
    x = np.asarray(rng.standard_normal((2, 8)), dtype=np.float32)
    y = jax.jit(lambda z: sj.dct(z, 3))(jnp.asarray(x))
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(y), sl.dct(x, 3))
    tw = jnp.asarray(sl.random_butterfly(8, rng=0), dtype=jnp.float32)
    assert sj.butterfly_multiply(tw, jnp.asarray(x, dtype=jnp.complex128)).dtype == jnp.complex128


def test_vmap_over_a_parameter_and_over_vectors():
    rng = np.random.default_rng(11)
    tws = jnp.stack([jnp.asarray(sl.random_butterfly(8, rng=i)) for i in range(3)])
    x = _a(rng, (3, 8))
    y = jax.vmap(sj.butterfly_multiply)(tws, x)
    for i in range(3):
        np.testing.assert_allclose(y[i], sl.butterfly_multiply(np.asarray(tws[i]),
                                                               np.asarray(x[i])), atol=1e-12)
    g = jax.vmap(jax.grad(lambda t, x: sj.butterfly_multiply(t, x).sum()))(tws, x)
    assert g.shape == tws.shape


def test_unsupported_dtypes_raise_type_error():
    tw = jnp.asarray(sl.random_butterfly(8, rng=0))
    for dt in (jnp.float16, jnp.bfloat16, jnp.int32):
        with pytest.raises(TypeError, match=r"x has dtype .* supports float32"):
            sj.butterfly_multiply(tw, jnp.ones((2, 8), dtype=dt))


# ---- precision -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRECISION_CASES))
def test_precision_reaches_the_function_and_its_vjp(name, monkeypatch):
    """Under jit, a tensor-core precision computes in full precision on the host; the value is
    handed to the structlin function and to its VJP (spied on)."""
    case = PRECISION_CASES[name]
    arrays = tuple(jnp.asarray(a) for a in case.make(np.random.default_rng(20), np.float32))
    n = len(arrays)

    def loss(*a, **kw):
        return jnp.sum(case.call(getattr(sj, name), a, **kw) ** 2)

    want_y = case.call(getattr(sj, name), arrays)
    want_g = jax.grad(loss, argnums=tuple(range(n)))(*arrays)
    seen = []
    for fn in (name, f"{name}_vjp"):
        real = getattr(sl, fn)

        def spy(*args, _real=real, _fn=fn, **kwargs):
            seen.append((_fn, kwargs.get("precision")))
            return _real(*args, **kwargs)

        monkeypatch.setattr(sl, fn, spy)
    y = jax.jit(lambda *a: case.call(getattr(sj, name), a, precision=case.tensor_core))(*arrays)
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(y, want_y)
    g = jax.jit(jax.grad(lambda *a: loss(*a, precision=case.tensor_core),
                         argnums=tuple(range(n))))(*arrays)
    for got, want in zip(g, want_g, strict=True):
        np.testing.assert_array_equal(got, want)
    assert (name, case.tensor_core) in seen and (f"{name}_vjp", case.tensor_core) in seen
    assert {p for _, p in seen} == {case.tensor_core}


@pytest.mark.parametrize("name", sorted(PRECISION_CASES))
def test_precision_errors_are_the_numpy_functions_at_the_call(name):
    """A bad ``precision`` raises the NumPy function's ValueError before any callback runs,
    also while tracing under jit."""
    case = PRECISION_CASES[name]
    arrays = case.make(np.random.default_rng(21), np.float32)
    js = tuple(jnp.asarray(a) for a in arrays)
    for bad in (case.refused, "bogus", None):
        with pytest.raises(ValueError, match=numpy_error(name, arrays, bad)):
            case.call(getattr(sj, name), js, precision=bad)
        with pytest.raises(ValueError, match=numpy_error(name, arrays, bad)):
            jax.jit(lambda *a, bad=bad: case.call(getattr(sj, name), a, precision=bad))(*js)
    doubles = tuple(a.astype(np.float64) for a in arrays)
    with pytest.raises(ValueError, match=f"precision='{case.tensor_core}' .*needs float32"):
        case.call(getattr(sj, name), tuple(jnp.asarray(a) for a in doubles),
                  precision=case.tensor_core)


# ---- ssm family ----------------------------------------------------------------------------


def _ssm_diag(rng, cdtype="complex128", rdtype="float64"):
    """``(Lambda, B, C, dt)`` of ``ssm_kernel_diag``: H = 2 channels of N = 3 decaying modes."""
    H, N = 2, 3
    lam = -0.5 - rng.uniform(0.0, 1.0, (H, N)) + 1j * rng.standard_normal((H, N))
    return (jnp.asarray(lam, dtype=cdtype), _a(rng, (H, N), cdtype), _a(rng, (H, N), cdtype),
            jnp.asarray(rng.uniform(0.05, 0.3, H), dtype=rdtype))


def _selective(rng, dtype="float64", groups=None):
    """``(u, delta, A, B, C, D, z, delta_bias)``: (b, d, l, n) = (2, 4, 6, 3), B and C shared
    ``(b, n, l)`` (or ``(b, g, n, l)`` for ``groups``)."""
    b, d, l, n = 2, 4, 6, 3
    bc = (b, n, l) if groups is None else (b, groups, n, l)
    arrays = (rng.standard_normal((b, d, l)), rng.uniform(0.05, 0.5, (b, d, l)),
              -np.exp(rng.uniform(-0.5, 0.5, (d, n))), rng.standard_normal(bc),
              rng.standard_normal(bc), rng.standard_normal(d), rng.standard_normal((b, d, l)),
              0.1 * rng.standard_normal(d))
    return tuple(jnp.asarray(a, dtype=dtype) for a in arrays)


def _ssd_args(rng, dtype="float64", groups=2):
    """``(X, A, B, C, initial_states)`` of ``ssd``: (b, l, h, p, n) = (1, 7, 2, 3, 4)."""
    b, l, h, p, n = 1, 7, 2, 3, 4
    arrays = (rng.standard_normal((b, l, h, p)), -rng.uniform(0.0, 0.5, (b, l, h)),
              rng.standard_normal((b, l, groups, n)), rng.standard_normal((b, l, groups, n)),
              rng.standard_normal((b, h, p, n)))
    return tuple(jnp.asarray(a, dtype=dtype) for a in arrays)


def _host(arrays):
    return tuple(np.asarray(a) for a in arrays)


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_ssm_kernel_diag_gradients(method):
    """Complex Lambda, B, C and real dt (JAX's complex convention), under jit."""
    args = _ssm_diag(np.random.default_rng(30))

    def f(*a):
        return sj.ssm_kernel_diag(*a, 9, method=method)

    _check(f, args)
    y = jax.jit(f)(*args)
    assert y.dtype == jnp.float64 and y.shape == (2, 9)
    np.testing.assert_array_equal(np.asarray(y),
                                  sl.ssm_kernel_diag(*_host(args), 9, method=method))


def test_ssm_kernel_diag_gradient_is_the_conjugate_of_structlins():
    """A real loss: JAX's gradient of a complex argument is the conjugate of PyTorch's
    convention, which :func:`structlin.ssm_kernel_diag_vjp` follows."""
    rng = np.random.default_rng(31)
    args = _ssm_diag(rng)
    ct = rng.standard_normal((2, 8))
    g = jax.grad(lambda *a: jnp.sum(sj.ssm_kernel_diag(*a, 8) * ct), argnums=(0, 1, 2, 3))(*args)
    want = sl.ssm_kernel_diag_vjp(*_host(args), 8, ct)
    for got, w in zip(g, want, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.conj(w), rtol=1e-12, atol=1e-12)


def test_ssm_kernel_diag_single_precision_in_and_out():
    args = _ssm_diag(np.random.default_rng(32), "complex64", "float32")
    y = jax.jit(lambda *a: sj.ssm_kernel_diag(*a, 8))(*args)
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(y), sl.ssm_kernel_diag(*_host(args), 8))
    g = jax.grad(lambda *a: jnp.sum(sj.ssm_kernel_diag(*a, 8) ** 2), argnums=(0, 1, 2, 3))(*args)
    assert [x.dtype for x in g] == [jnp.complex64] * 3 + [jnp.float32]


@pytest.mark.parametrize("softplus", [False, True])
def test_selective_scan_gradients(softplus):
    """Real float64, B and C shared (b, n, l): with D, z and delta_bias, and without them."""
    args = _selective(np.random.default_rng(33))

    def f(*a):
        return sj.selective_scan(*a, delta_softplus=softplus)

    _check(f, args)
    _check(f, args[:5])
    for given in (args, args[:5]):
        y = jax.jit(f)(*given)
        assert y.dtype == jnp.float64 and y.shape == given[0].shape
        np.testing.assert_array_equal(
            np.asarray(y), sl.selective_scan(*_host(given), delta_softplus=softplus))


def test_selective_scan_grouped_b_c_and_only_some_optional_arguments():
    u, delta, A, B, C, D, z, bias = _selective(np.random.default_rng(34), groups=2)
    _check(lambda *a: sj.selective_scan(*a[:5], z=a[5]), (u, delta, A, B, C, z))
    _check(lambda u, D, bias: sj.selective_scan(u, delta, A, B, C, D=D, delta_bias=bias,
                                                delta_softplus=True), (u, D, bias))
    y = jax.jit(lambda *a: sj.selective_scan(*a, D=D, delta_softplus=True))(u, delta, A, B, C)
    want = sl.selective_scan(*_host((u, delta, A, B, C)), D=np.asarray(D), delta_softplus=True)
    np.testing.assert_array_equal(np.asarray(y), want)


def test_selective_scan_single_precision_in_and_out():
    args = _selective(np.random.default_rng(35), "float32")
    y = jax.jit(lambda *a: sj.selective_scan(*a, delta_softplus=True))(*args)
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(y),
                                  sl.selective_scan(*_host(args), delta_softplus=True))
    g = jax.grad(lambda *a: jnp.sum(sj.selective_scan(*a) ** 2), argnums=tuple(range(8)))(*args)
    assert all(x.dtype == jnp.float32 for x in g)


@pytest.mark.parametrize("chunk_size", [3, 16])
def test_ssd_gradients(chunk_size):
    """With and without initial_states; a chunk that does not divide the length and one
    longer than it; two heads sharing one group of B and C."""
    X, A, B, C, S0 = _ssd_args(np.random.default_rng(36), groups=1)
    _check(lambda *a: sj.ssd(*a, chunk_size), (X, A, B, C))
    _check(lambda *a: sj.ssd(*a[:4], chunk_size, initial_states=a[4]), (X, A, B, C, S0))
    for s0 in (None, S0):
        y = jax.jit(lambda *a, s0=s0: sj.ssd(*a, chunk_size, initial_states=s0))(X, A, B, C)
        assert y.dtype == jnp.float64 and y.shape == X.shape
        want = sl.ssd(*_host((X, A, B, C)), chunk_size,
                      initial_states=None if s0 is None else np.asarray(s0))
        np.testing.assert_array_equal(np.asarray(y), want)


def test_ssd_single_precision_in_and_out():
    args = _ssd_args(np.random.default_rng(37), "float32")
    y = jax.jit(lambda *a: sj.ssd(*a[:4], 4, initial_states=a[4]))(*args)
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(y),
                                  sl.ssd(*_host(args[:4]), 4, initial_states=np.asarray(args[4])))
    g = jax.grad(lambda *a: jnp.sum(sj.ssd(*a[:4], 4, initial_states=a[4]) ** 2),
                 argnums=tuple(range(5)))(*args)
    assert all(x.dtype == jnp.float32 for x in g)
