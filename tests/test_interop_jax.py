"""structlin.interop.jax: custom_vjp wrappers over pure_callback, checked under jax.jit against
finite differences (jax.test_util.check_grads, reverse mode) and against jnp dense references
(including JAX's convention for complex cotangents); jax.vmap of every operation (over the
vectors, a parameter, everything, nested) against a loop, with the number of structlin calls
the callbacks make, and grad through vmap / vmap of grad against the loop's gradients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from scipy.linalg import toeplitz as scipy_toeplitz

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import structlin as sl  # noqa: E402
from structlin.butterfly import _reference_apply  # noqa: E402
from structlin.interop import jax as sj  # noqa: E402
from structlin.interop._ops import OPS  # noqa: E402
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


# ---- the Toeplitz / LDR family -------------------------------------------------------------


def _toeplitz_args(rng, n=5):
    """A diagonally dominant nonsymmetric Toeplitz matrix (its first column and row)."""
    c, r = 0.3 * rng.standard_normal(n), 0.3 * rng.standard_normal(n)
    c[0] = r[0] = 3.0
    return jnp.asarray(c), jnp.asarray(r)


def test_matmul_and_solve_toeplitz_equal_structlin_and_have_gradients():
    rng = np.random.default_rng(40)
    c, r = _toeplitz_args(rng)
    T = scipy_toeplitz(np.asarray(c), np.asarray(r))
    for b in (_a(rng, (5,)), _a(rng, (2, 5, 3))):
        y = jax.jit(sj.matmul_toeplitz)(c, r, b)
        assert y.shape == b.shape
        np.testing.assert_allclose(y, sl.matmul_toeplitz((np.asarray(c), np.asarray(r)),
                                                         np.asarray(b)), atol=1e-12)
        np.testing.assert_allclose(y, T @ np.asarray(b), atol=1e-12)
        x = jax.jit(lambda c, r, b: sj.solve_toeplitz(c, r, b, method="gko"))(c, r, b)
        np.testing.assert_allclose(T @ np.asarray(x), b, atol=1e-12)
        _check(sj.matmul_toeplitz, (c, r, b))
        _check(sj.solve_toeplitz, (c, r, b))
    # r omitted: r = conj(c), a Hermitian T
    cc = c.astype(jnp.complex128).at[1].add(0.2j)
    b = _a(rng, (5,), "complex128")
    np.testing.assert_allclose(sj.matmul_toeplitz(cc, None, b),
                               sl.matmul_toeplitz(np.asarray(cc), np.asarray(b)), atol=1e-12)
    _check(lambda c, b: sj.solve_toeplitz(c, None, b), (cc, b))


def test_ldr_multiply_equals_structlin_and_has_gradients():
    rng = np.random.default_rng(41)
    G, H, x = _a(rng, (2, 8)), _a(rng, (2, 8)), _a(rng, (3, 8))
    s = jnp.asarray(rng.uniform(0.0, 1.0, 8))
    t = s + 2.0 + jnp.asarray(rng.uniform(0.0, 1.0, 8))
    y = jax.jit(lambda *a: sj.ldr_multiply(*a[:3], "cauchy", s=a[3], t=a[4]))(G, H, x, s, t)
    want = sl.ldr_multiply(*_host((G, H, x)), "cauchy", s=np.asarray(s), t=np.asarray(t))
    np.testing.assert_allclose(y, want, atol=1e-12)
    _check(lambda *a: sj.ldr_multiply(*a[:3], "cauchy", s=a[3], t=a[4]), (G, H, x, s, t))
    _check(lambda *a: sj.ldr_multiply(*a, "subdiagonal", subdiag_A=s[1:], subdiag_B=t[1:],
                                      f_A=0.5, f_B=-1.0), (G, H, x))
    np.testing.assert_allclose(
        sj.ldr_multiply(G, H, x, "vandermonde", nodes=s, f=2.0),
        sl.ldr_multiply(*_host((G, H, x)), "vandermonde", nodes=np.asarray(s), f=2.0),
        atol=1e-12)


def test_toeplitz_family_errors_at_the_call():
    rng = np.random.default_rng(42)
    c, r = _toeplitz_args(rng)
    with pytest.raises(ValueError, match="method"):
        sj.solve_toeplitz(c, r, c, method="lu")
    G = _a(rng, (2, 8))
    with pytest.raises(ValueError, match="kind"):
        jax.jit(lambda G: sj.ldr_multiply(G, G, G[0], "circulant"))(G)
    with pytest.raises(ValueError, match="needs the operator parameter nodes"):
        sj.ldr_multiply(G, G, G[0], "vandermonde")
    with pytest.raises(TypeError, match="not an operator parameter"):
        sj.ldr_multiply(G, G, G[0], "toeplitz", f=1.0)
    with pytest.raises(TypeError, match="f must be a number"):
        jax.jit(lambda f: sj.ldr_multiply(G, G, G[0], "vandermonde", nodes=G[0], f=f))(1.0)


# ---- jax.vmap: one structlin call where the batch allows it --------------------------------


@dataclass(frozen=True)
class _Case:
    #: ``make(rng)``: one element's arrays in the op table's order (None where omitted)
    make: Any
    #: ``call(function, arrays)``: calls the wrapper
    call: Any


def _kaleido_tw(rng, w=1):
    return _a(rng, (w, 2, 3, 4, 2, 2))


def _pixelfly(rng):
    mask = sl.flat_block_butterfly_mask(8, 8, 2)
    return (_a(rng, (int(mask.sum()), 2, 2)), jnp.asarray(mask), _a(rng, (8, 2)),
            _a(rng, (8, 2)), _a(rng, (2, 8)))


def _ldr(rng):
    s = jnp.asarray(rng.uniform(0.0, 1.0, 8))
    return (_a(rng, (2, 8)), _a(rng, (2, 8)), _a(rng, (2, 8)), None, s,
            s + 2.0 + jnp.asarray(rng.uniform(0.0, 1.0, 8)), None, None)


def _toeplitz_generators(rng):
    """Generators of a diagonally dominant (well-conditioned) 4 x 4 Toeplitz matrix."""
    import scipy.linalg

    c = np.array([3.0, 0.5, 0.2, 0.1]) + rng.uniform(0.0, 0.1, 4)
    r = np.array([3.0, -0.4, 0.3, 0.1])
    return sl.ldr_compress(scipy.linalg.toeplitz(c, r), "toeplitz", 2)


def _hankel_args(rng):
    """A well-conditioned Hankel matrix: 2 on the anti-diagonal, small entries elsewhere."""
    c, r = np.asarray(_a(rng, (5,))) / 8, np.asarray(_a(rng, (5,))) / 8
    c[-1] = r[0] = 2.0
    return jnp.asarray(c), jnp.asarray(r)


def _cauchy_args(rng, m):
    return (jnp.asarray(rng.uniform(1.0, 2.0, m)), jnp.asarray(-rng.uniform(0.0, 1.0, 4)),
            _a(rng, (2, 4)))


CASES = {
    "butterfly_multiply": _Case(
        lambda rng: (jnp.asarray(sl.random_butterfly(8, rng=rng)), _a(rng, (2, 8))),
        lambda f, a: f(*a, transpose=True)),
    "butterfly_solve": _Case(
        lambda rng: (jnp.asarray(sl.random_butterfly(8, kind="orthogonal", rng=rng)),
                     _a(rng, (2, 8))),
        lambda f, a: f(*a)),
    "monarch_multiply": _Case(
        lambda rng: (_a(rng, (2, 3, 3)), _a(rng, (3, 4, 2)), _a(rng, (2, 6))),
        lambda f, a: f(*a)),
    "pixelfly_multiply": _Case(_pixelfly, lambda f, a: f(*a)),
    "fftconv": _Case(
        lambda rng: (_a(rng, (2, 3, 6)), _a(rng, (3, 4)), _a(rng, (3,)), _a(rng, (2, 3, 6)),
                     None),
        lambda f, a: f(a[0], a[1], a[2], pregate=a[3], causal=False)),
    "circulant_multiply": _Case(lambda rng: (_a(rng, (8,)), _a(rng, (2, 8))),
                                lambda f, a: f(*a)),
    "toeplitz_multiply": _Case(lambda rng: (_a(rng, (5,)), _a(rng, (5,)), _a(rng, (2, 5))),
                               lambda f, a: f(*a)),
    "dct": _Case(lambda rng: (_a(rng, (2, 8)),), lambda f, a: f(a[0], 3, "ortho")),
    "dst": _Case(lambda rng: (_a(rng, (2, 8)),), lambda f, a: f(a[0], 2)),
    "fwht": _Case(lambda rng: (_a(rng, (2, 8)),), lambda f, a: f(a[0], normalize=True)),
    "kernel_features": _Case(
        lambda rng: (_a(rng, (2, 2)), _a(rng, (4, 2)), jnp.asarray(rng.uniform(0.2, 1.0, 4))),
        lambda f, a: f(*a)),
    "kaleidoscope_multiply": _Case(lambda rng: (_kaleido_tw(rng), _a(rng, (2, 8))),
                                   lambda f, a: f(*a)),
    "xd_multiply": _Case(
        lambda rng: (_kaleido_tw(rng), _kaleido_tw(rng), _kaleido_tw(rng), _a(rng, (8,)),
                     _a(rng, (2, 8))),
        lambda f, a: f(*a)),
    "ssm_kernel_diag": _Case(_ssm_diag, lambda f, a: f(*a, 6)),
    "selective_scan": _Case(_selective, lambda f, a: f(*a, delta_softplus=True)),
    "ssd": _Case(lambda rng: _ssd_args(rng), lambda f, a: f(*a[:4], 3, initial_states=a[4])),
    "matmul_toeplitz": _Case(lambda rng: (*_toeplitz_args(rng), _a(rng, (5,))),
                             lambda f, a: f(*a)),
    "solve_toeplitz": _Case(lambda rng: (*_toeplitz_args(rng), _a(rng, (5, 2))),
                            lambda f, a: f(*a, method="levinson")),
    "ldr_multiply": _Case(_ldr, lambda f, a: f(*a[:3], "cauchy", s=a[4], t=a[5])),
    "matmul_cauchy": _Case(lambda rng: _cauchy_args(rng, 3), lambda f, a: f(*a)),
    "matmul_hankel": _Case(lambda rng: (_a(rng, (6,)), _a(rng, (5,)), _a(rng, (5, 2))),
                           lambda f, a: f(*a)),
    "solve_hankel": _Case(lambda rng: (*_hankel_args(rng), _a(rng, (5,))),
                          lambda f, a: f(*a, method="gko")),
    "matmul_vandermonde": _Case(lambda rng: (_a(rng, (4,)) / 2, _a(rng, (2, 4))),
                                lambda f, a: f(*a, 5)),
    "solve_vandermonde": _Case(
        lambda rng: (jnp.asarray([-1.0, -0.3, 0.4, 1.1]) + jnp.asarray(rng.uniform(0, 0.1, 4)),
                     _a(rng, (2, 4))),
        lambda f, a: f(*a, transpose=True)),
    "ldr_solve": _Case(
        lambda rng: (*(jnp.asarray(g) for g in _toeplitz_generators(rng)), _a(rng, (2, 4)),
                     None, None, None, None, None),
        lambda f, a: f(*a[:3], "toeplitz")),
    "solve_cauchy": _Case(lambda rng: _cauchy_args(rng, 4), lambda f, a: f(*a)),
}

V = 3


def test_every_operation_has_a_batch_entry_and_a_vmap_case():
    assert set(sj._BATCH) == set(OPS)
    assert set(CASES) == set(OPS)
    for name, table in sj._BATCH.items():
        assert set(table) <= set(OPS[name].arrays), name


@pytest.fixture
def calls(monkeypatch):
    """The structlin calls (forward or VJP) the callbacks make."""
    seen = []
    real = sj._run

    def run(fn, *args, **kwargs):
        def counted(arrays):
            seen.append(1)
            return fn(arrays)

        return real(counted, *args, **kwargs)

    monkeypatch.setattr(sj, "_run", run)
    return seen


def _elements(name, count, seed=50):
    """``count`` independent elements' arrays, and which of them are vectors (the mapped axes
    of those fold into structlin's batch axes) and which can be mapped at all."""
    case, op = CASES[name], OPS[name]
    elems = [case.make(np.random.default_rng(seed + i)) for i in range(count)]
    present = [a is not None for a in elems[0]]
    names = tuple(n for n, p in zip(op.arrays, present, strict=True) if p)
    shapes = tuple(a.shape for a in elems[0] if a is not None)
    if name in ("matmul_toeplitz", "solve_toeplitz") and len(shapes[-1]) == 1:
        shapes = (*shapes[:-1], (*shapes[-1], 1))  # the wrappers pass a vector as a column
    specs, _ = sj._plan(name, names, shapes)
    it = iter(specs)
    vector = [p and next(it) is not None for p in present]
    mappable = [p and np.dtype(a.dtype) != np.bool_ for p, a in zip(present, elems[0],
                                                                    strict=True)]
    return elems, vector, mappable


def _batched(elems, axes):
    """The arrays with the mapped ones stacked along axis 0 (the others from element 0)."""
    return tuple(jnp.stack([e[i] for e in elems]) if ax == 0 else elems[0][i]
                 for i, ax in enumerate(axes))


def _vmap_call(name, axes):
    case = CASES[name]
    return jax.vmap(lambda *a: case.call(getattr(sj, name), a), in_axes=tuple(axes))


@pytest.mark.parametrize("name", sorted(CASES))
def test_vmap_equals_a_loop_with_one_call_when_only_vectors_are_mapped(name, calls):
    """in_axes on the vectors (one structlin call), on a parameter (one call per element), on
    every array, and nested (two mapped axes, the outer one not leading): each equals a loop
    over the unbatched wrapper."""
    case = CASES[name]
    elems, vector, mappable = _elements(name, V)
    wrapper = getattr(sj, name)

    def loop(axes):
        return np.stack([case.call(wrapper, tuple(e[i] if ax == 0 else elems[0][i]
                                                  for i, ax in enumerate(axes)))
                         for e in elems])

    params = [i for i, (v, m) in enumerate(zip(vector, mappable, strict=True)) if m and not v]
    # a mapped parameter: one call per element, or one in all if the op has channels
    per = 1 if name in sj._CHANNELS else V
    variants = {"vectors": ([0 if v else None for v in vector], 1),
                "all": ([0 if m else None for m in mappable], per if params else 1)}
    if params:
        variants["parameter"] = ([0 if i == params[0] else None for i in range(len(vector))],
                                 per)
    for what, (axes, n_calls) in variants.items():
        calls.clear()
        y = _vmap_call(name, axes)(*_batched(elems, axes))
        assert len(calls) == n_calls, what
        np.testing.assert_allclose(y, loop(axes), rtol=1e-10, atol=1e-12, err_msg=what)
    # nested: 2 x V elements, the outer map over axis 1
    grid, _, _ = _elements(name, 2 * V, seed=60)
    axes = [0 if v else None for v in vector]
    args = tuple(jnp.stack([jnp.stack([grid[j * V + i][k] for j in range(2)])
                            for i in range(V)]) if ax == 0 else grid[0][k]
                 for k, ax in enumerate(axes))  # (V, 2, ...): outer axis 1, inner axis 0
    inner = _vmap_call(name, axes)
    outer = jax.jit(jax.vmap(inner, in_axes=tuple(1 if ax == 0 else None for ax in axes)))
    calls.clear()
    y = outer(*args)
    assert len(calls) == 1
    want = np.stack([np.stack([case.call(wrapper, tuple(grid[j * V + i][k] if ax == 0
                                                        else grid[0][k]
                                                        for k, ax in enumerate(axes)))
                               for i in range(V)]) for j in range(2)])
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_through_vmap_equals_the_loop(name, calls):
    """``grad`` of a loss over ``vmap`` (vectors mapped) in every differentiable argument, and
    ``vmap`` of ``grad`` in the vectors only (one backward call), under jit, equal the loop's."""
    case = CASES[name]
    elems, vector, mappable = _elements(name, V)
    wrapper = getattr(sj, name)
    axes = [0 if v else None for v in vector]
    args = _batched(elems, axes)
    diff = tuple(i for i, m in enumerate(mappable) if m)

    def loss(*a):
        return jnp.sum(_vmap_call(name, axes)(*a) ** 2)

    def loss_loop(*a):
        return sum(jnp.sum(case.call(wrapper, tuple(a[k][i] if ax == 0 else a[k]
                                                    for k, ax in enumerate(axes))) ** 2)
                   for i in range(V))

    calls.clear()
    got = jax.jit(jax.grad(loss, argnums=diff))(*args)
    params = any(mappable[i] and not vector[i] for i in diff)
    assert len(calls) == 1 + (V if params and name not in sj._CHANNELS else 1)
    want = jax.grad(loss_loop, argnums=diff)(*args)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-11)
    # vmap of grad in the vectors only, parameters fixed
    vec = tuple(i for i in diff if vector[i])

    def one(*a):
        return jnp.sum(case.call(wrapper, a) ** 2)

    calls.clear()
    got = jax.jit(jax.vmap(jax.grad(one, argnums=vec), in_axes=tuple(axes)))(*args)
    assert len(calls) == 2
    for i in range(V):
        w = jax.grad(one, argnums=vec)(*(a[i] if ax == 0 else a for a, ax in zip(args, axes,
                                                                                 strict=True)))
        for g, wk in zip(got, w, strict=True):
            np.testing.assert_allclose(g[i], wk, rtol=1e-9, atol=1e-11)


def test_vmap_with_complex_arrays_and_a_mapped_twiddle_keeps_jaxs_convention(calls):
    """Complex twiddles mapped with the vectors (one call per element) and a real loss: the
    gradients are JAX's (the conjugate of structlin's), equal to the loop's."""
    rng = np.random.default_rng(70)
    tws = jnp.stack([jnp.asarray(sl.random_butterfly(8, rng=i, dtype="complex128"))
                     for i in range(V)])
    xs = _a(rng, (V, 2, 8), "complex128")

    def one(t, x):
        return jnp.sum(jnp.abs(sj.butterfly_multiply(t, x, conjugate=True)) ** 2)

    got = jax.jit(jax.vmap(jax.grad(one, argnums=(0, 1))))(tws, xs)
    assert len(calls) == 2 * V
    for i in range(V):
        want = jax.grad(lambda t, x: jnp.sum(jnp.abs(_ref_butterfly(t, x, True, False, True))
                                             ** 2), argnums=(0, 1))(tws[i], xs[i])
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g[i], w, rtol=1e-10, atol=1e-12)


def test_benchmark_cases_run_and_agree_with_numpy():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import bench_jax

    cases = list(bench_jax.cases(True))
    assert len(cases) == 4
    for case in cases:
        assert case.work > 0 and case.unit == "byte"
        assert case.check(case.fn(), case.baseline()) <= case.tol, case.name


def test_the_examples_of_docs_interop_jax_section_run():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "interop.md").read_text()
    section = text[text.index("## JAX:"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"```\{code-block\} python\n(.*?)```", section, re.S)
    assert blocks
    for code in blocks:
        namespace = {}
        exec(compile(code, "docs/interop.md (JAX)", "exec"), namespace)
    assert namespace["ys"].shape == (8, 32, 1024)
