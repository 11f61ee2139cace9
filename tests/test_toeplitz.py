"""Tests of structlin/toeplitz.py: the conformance checks of the Toeplitz product and of the
solve (a linear map of ``b``), equality with SciPy on the same (batched) inputs, Levinson
breakdown and the fallbacks of ``method="auto"``, singular systems, the reflection
coefficients against Durbin's recursion, the determinant, bad inputs and the identity
``T @ solve_toeplitz(T, b) == b``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.linalg import LinAlgError
from scipy.linalg import LinAlgWarning

import structlin.toeplitz as T
from tests import conformance as cf
from tests.strategies import random_array, tolerance

PROBE = {
    "solve_toeplitz": lambda: (((np.array([4.0, 1.0, 0.5]), np.array([4.0, 2.0, 1.0])),
                                np.array([1.0, 2.0, 3.0])), {}),
    "matmul_toeplitz": lambda: (((np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0])),
                                 np.array([1.0, 2.0])), {}),
    "toeplitz_slogdet": lambda: ((np.array([3.0, 1.0, 0.5]),), {}),
    "levinson": lambda: ((np.array([3.0, 1.0, 0.5]), np.array([1.0, 0.0, 0.0])), {}),
    "solve_toeplitz_vjp": lambda: (((np.array([4.0, 1.0, 0.5]), np.array([4.0, 2.0, 1.0])),
                                    np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 1.0])), {}),
    "matmul_toeplitz_vjp": lambda: (((np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0])),
                                     np.array([1.0, 2.0]), np.array([1.0, 0.0, 1.0])), {}),
}

N = 6


def _column(rng, n, dtype, shape=()):
    """A first column (or row) of a diagonally dominant Toeplitz matrix."""
    c = random_array(rng, (*shape, n), dtype, scale=0.5)
    c[..., 0] += n + 1.0
    return c


def _dense(c, r=None):
    c = np.asarray(c)
    r = np.conj(c) if r is None else np.asarray(r)
    return sla.toeplitz(c, r)


class TestMatmulToeplitzConformance(cf.OperatorConformance):
    """``matmul_toeplitz((c, r), x)`` as a linear map of ``x`` (a rectangular 5 x 4 ``T``),
    called on ``x[..., None]`` (SciPy's ``(..., n, k)`` layout) so that batches go through
    the batched path."""

    fake_cupy_mix = False  # fast() adds an axis to x itself

    def make_params(self, rng, dtype):
        return {"c": random_array(rng, 5, dtype), "r": random_array(rng, 4, dtype)}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, 4), dtype)

    def fast(self, p, x):
        x = np.asarray(x) if isinstance(x, list) else x
        if x.ndim == 1:
            return T.matmul_toeplitz((p["c"], p["r"]), x)
        return T.matmul_toeplitz((p["c"], p["r"]), x[..., None])[..., 0]

    def dense(self, p):
        return sla.toeplitz(p["c"], p["r"])

    def vjp(self, p, x, g):
        gc, gr, gx = T.matmul_toeplitz_vjp((p["c"], p["r"]), x[..., None], g[..., None])
        return {"c": gc, "r": gr, "x": gx[..., 0]}

    def bad_inputs(self):
        return [
            ("x of the wrong length", lambda: T.matmul_toeplitz(([1.0, 2.0], [1.0, 3.0, 4.0]),
                                                                np.ones(2)),
             ValueError, "Incompatible dimensions: x must have 3 entries"),
            ("a tuple of three", lambda: T.matmul_toeplitz(([1.0], [1.0], [1.0]), [1.0]),
             ValueError, r"tuple \(c, r\)"),
            ("batches that do not broadcast", lambda: T.matmul_toeplitz(
                np.ones((2, 3)), np.ones((3, 3, 1))), ValueError, "must broadcast"),
            ("workers not an integer", lambda: T.matmul_toeplitz([1.0], [1.0], workers=1.5),
             TypeError, "workers"),
            ("grad of the wrong shape", lambda: T.matmul_toeplitz_vjp(
                [1.0, 2.0], np.ones(2), np.ones(3)), ValueError, r"grad must have shape \(2,\)"),
        ]


class TestMatmulToeplitzHermitianConformance(TestMatmulToeplitzConformance):
    """``matmul_toeplitz(c, x)`` with ``r = conj(c)``: the gradient of ``c`` collects both
    triangles."""

    dtypes = (np.float64, np.complex128)

    def make_params(self, rng, dtype):
        return {"c_or_cr": random_array(rng, 4, dtype)}

    def fast(self, p, x):
        x = np.asarray(x) if isinstance(x, list) else x
        return T.matmul_toeplitz(p["c_or_cr"], x[..., None])[..., 0]

    def dense(self, p):
        return _dense(p["c_or_cr"])

    def vjp(self, p, x, g):
        gc, gx = T.matmul_toeplitz_vjp(p["c_or_cr"], x[..., None], g[..., None])
        return {"c_or_cr": gc, "x": gx[..., 0]}

    def bad_inputs(self):
        return []


class TestSolveToeplitzConformance(cf.OperatorConformance):
    """``solve_toeplitz((c, r), b)`` as the linear map ``b -> T^{-1} b`` (dense reference
    ``inv(T)``), differentiated in ``c``, ``r`` and ``b``."""

    fake_cupy_mix = False
    x_name = "b"
    method = "auto"

    def make_params(self, rng, dtype):
        return {"c": _column(rng, N, dtype), "r": _column(rng, N, dtype)}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, N), dtype)

    def fast(self, p, x):
        x = np.asarray(x) if isinstance(x, list) else x
        return T.solve_toeplitz((p["c"], p["r"]), x[..., None], False,
                                method=self.method)[..., 0]

    def dense(self, p):
        return np.linalg.inv(sla.toeplitz(p["c"], p["r"]))

    def vjp(self, p, x, g):
        gc, gr, gb = T.solve_toeplitz_vjp((p["c"], p["r"]), x[..., None], g[..., None], False,
                                          method=self.method)
        return {"c": gc, "r": gr, "x": gb[..., 0]}

    def bad_inputs(self):
        ok = (np.array([3.0, 1.0]), np.array([3.0, 1.0]))
        return [
            ("b of the wrong length", lambda: T.solve_toeplitz(ok, np.ones(3)), ValueError,
             "Incompatible dimensions: b must have 2 entries"),
            ("r of another length", lambda: T.solve_toeplitz(([1.0, 2.0], [1.0]), [1.0, 1.0]),
             ValueError, "r must have the length of c"),
            ("an unknown method", lambda: T.solve_toeplitz(ok, [1.0, 1.0], method="lu"),
             ValueError, "method must be one of"),
            ("check_finite not a bool", lambda: T.solve_toeplitz(ok, [1.0, 1.0], 1),
             TypeError, "check_finite"),
            ("NaN with check_finite", lambda: T.solve_toeplitz(ok, [np.nan, 1.0]), ValueError,
             "b must be finite"),
            ("scalar c", lambda: T.solve_toeplitz(1.0, [1.0]), ValueError,
             "c_or_cr must have"),
            ("scalar b", lambda: T.solve_toeplitz(ok, 1.0), ValueError, "b must have shape"),
            ("grad of the wrong shape", lambda: T.solve_toeplitz_vjp(ok, np.ones(2), np.ones(3)),
             ValueError, r"grad must have shape \(2,\)"),
        ]


class TestSolveToeplitzLevinsonConformance(TestSolveToeplitzConformance):
    """The same with ``method="levinson"`` (the kernel alone), in double precision."""

    dtypes = (np.float64, np.complex128)
    method = "levinson"


# ---------------------------------------------------------------------------------------------
# SciPy equality, batched calls included


LAYOUTS = [  # shapes of c, r (None: c alone), b
    ((N,), (N,), (N,)),
    ((N,), None, (N, 3)),
    ((3, N), (3, N), (N,)),
    ((3, N), (1, N), (2, 3, N, 2)),
    ((N,), (N,), (4, N, 1)),
    ((2, 1, N), None, (3, N, 2)),
    ((N,), None, (5, N, 7)),  # 35 right-hand sides of one matrix: split over the cores
]


def _layout_data(rng, shapes, dtype):
    cs, rs, bs = shapes
    c = _column(rng, N, dtype, cs[:-1])
    r = None if rs is None else _column(rng, N, dtype, rs[:-1])
    b = random_array(rng, bs, dtype)
    return (c if r is None else (c, r)), b


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("shapes", LAYOUTS)
def test_solve_toeplitz_equals_scipy_on_the_same_inputs(shapes, dtype):
    rng = np.random.default_rng(len(shapes[2]))
    c_or_cr, b = _layout_data(rng, shapes, dtype)
    want = sla.solve_toeplitz(c_or_cr, b)
    for method in ("auto", "levinson"):
        got = T.solve_toeplitz(c_or_cr, b, method=method)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("shapes", LAYOUTS)
def test_matmul_toeplitz_equals_scipy_on_the_same_inputs(shapes, dtype):
    rng = np.random.default_rng(len(shapes[0]) + 7)
    c_or_cr, x = _layout_data(rng, shapes, dtype)
    got = T.matmul_toeplitz(c_or_cr, x, workers=1)
    want = sla.matmul_toeplitz(c_or_cr, x)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_rectangular_batched_product_equals_scipy():
    rng = np.random.default_rng(5)
    c, r = rng.standard_normal((2, 7)), rng.standard_normal((2, 3))
    x = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(T.matmul_toeplitz((c, r), x), sla.matmul_toeplitz((c, r), x),
                               rtol=1e-12, atol=1e-12)


def test_single_precision_stays_single_and_is_accurate():
    rng = np.random.default_rng(6)
    c, r = _column(rng, N, np.float32), _column(rng, N, np.float32)
    b = random_array(rng, (N, 2), np.float32)
    x = T.solve_toeplitz((c, r), b)
    assert x.dtype == np.float32
    want = np.linalg.solve(sla.toeplitz(c, r).astype(np.float64), b)
    assert np.abs(x - want).max() < 1e-5
    s, ld = T.toeplitz_slogdet((c, r))
    assert s.dtype == np.float32 and ld.dtype == np.float32
    xs, k = T.levinson((c, r), b)
    assert xs.dtype == k.dtype == np.float32


def test_empty_inputs():
    assert T.solve_toeplitz(np.ones(3), np.ones((3, 0))).shape == (3, 0)
    assert T.solve_toeplitz(np.ones((0, 3)), np.ones(3)).shape == (0, 3)
    assert T.matmul_toeplitz(np.ones(3), np.ones((0, 3, 2))).shape == (0, 3, 2)
    s, ld = T.toeplitz_slogdet(np.ones((2, 0)))
    assert s.tolist() == [1.0, 1.0] and ld.tolist() == [0.0, 0.0]


# ---------------------------------------------------------------------------------------------
# Breakdown, singular systems, fallbacks


def _zero_leading_minor(n=5):
    """Nonsingular, with ``c[0] = 0`` (a zero 1 x 1 leading minor)."""
    c = np.array([0.0, 1.0, 0.5, 0.2, 0.1])[:n]
    r = np.array([0.0, 2.0, -1.0, 0.3, 0.7])[:n]
    assert abs(np.linalg.det(sla.toeplitz(c, r))) > 1e-3
    return c, r


def test_levinson_breakdown_raises_and_auto_still_solves():
    c, r = _zero_leading_minor()
    b = np.arange(1.0, 6.0)
    with pytest.raises(LinAlgError, match="Singular principal minor"):
        T.solve_toeplitz((c, r), b, method="levinson")
    with pytest.raises(LinAlgError, match="Singular principal minor"):
        T.levinson((c, r), b)
    with pytest.raises(LinAlgError):  # SciPy's Levinson fails too
        sla.solve_toeplitz((c, r), b)
    x = T.solve_toeplitz((c, r), b)
    np.testing.assert_allclose(sla.toeplitz(c, r) @ x, b, atol=1e-12)
    np.testing.assert_allclose(T.solve_toeplitz((c, r), b, method="gko"), x, atol=1e-12)


def test_breakdown_in_one_batch_row_leaves_the_other_rows_to_levinson():
    c0, r0 = _zero_leading_minor()
    rng = np.random.default_rng(8)
    c = np.stack([_column(rng, 5, np.float64), c0, _column(rng, 5, np.float64)])
    r = np.stack([_column(rng, 5, np.float64), r0, _column(rng, 5, np.float64)])
    b = rng.standard_normal((3, 5, 2))
    with pytest.raises(LinAlgError, match="row 1 of the flattened batch"):
        T.solve_toeplitz((c, r), b, method="levinson")
    x = T.solve_toeplitz((c, r), b)
    for i in range(3):
        np.testing.assert_allclose(sla.toeplitz(c[i], r[i]) @ x[i], b[i], atol=1e-12)


def test_tiny_leading_minor_is_a_breakdown_not_a_silent_loss_of_accuracy():
    c, r = _zero_leading_minor()
    c = c.copy()
    c[0] = 1e-17
    with pytest.raises(LinAlgError, match="Singular principal minor"):
        T.solve_toeplitz((c, r), np.ones(5), method="levinson")
    x = T.solve_toeplitz((c, r), np.ones(5))
    np.testing.assert_allclose(sla.toeplitz(c, r) @ x, np.ones(5), atol=1e-12)


def test_auto_repairs_an_inaccurate_levinson_solution():
    """A small but not negligible leading minor: Levinson runs but loses digits; ``auto``
    refines or falls back to GKO and reaches a small backward error."""
    c, r = _zero_leading_minor()
    c = c.copy()
    c[0] = 1e-9
    b = np.arange(1.0, 6.0)
    Td = sla.toeplitz(c, r)
    x = T.solve_toeplitz((c, r), b)
    assert np.abs(Td @ x - b).max() < 1e-13 * np.abs(Td).sum(1).max() * np.abs(x).max() + 1e-13


@pytest.mark.parametrize("method", ["auto", "levinson", "gko"])
def test_exactly_singular_matrix_raises(method):
    with pytest.raises(LinAlgError, match=r"[Ss]ingular"):
        T.solve_toeplitz(np.ones(4), np.arange(4.0), method=method)


def test_ill_conditioned_matrix_warns_with_an_rcond_estimate():
    d = np.arange(24.0)
    c = np.exp(-(d / 8.0) ** 2)  # a Gaussian kernel: SPD, condition number ~1e17
    with pytest.warns(LinAlgWarning, match=r"Ill-conditioned matrix \(rcond="):
        T.solve_toeplitz(c, np.ones(24), method="levinson")


def test_well_conditioned_matrix_does_not_warn():
    rng = np.random.default_rng(9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        T.solve_toeplitz(_column(rng, 30, np.float64), rng.standard_normal(30))


def test_pcg_method_and_the_auto_dispatch_for_large_hermitian_systems(monkeypatch):
    rng = np.random.default_rng(10)
    n = 40
    c = 0.5 ** np.arange(n) + 0.05 * rng.standard_normal(n)
    c[0] = 3.0
    b = rng.standard_normal((n, 2))
    want = np.linalg.solve(_dense(c), b)
    np.testing.assert_allclose(T.solve_toeplitz(c, b, method="pcg"), want, atol=1e-9)
    calls = []
    real = T._pcg
    monkeypatch.setattr(T, "_pcg", lambda *a: (calls.append(a[-1]), real(*a))[1])
    monkeypatch.setattr(T, "AUTO_PCG_MIN_ORDER", 32)
    np.testing.assert_allclose(T.solve_toeplitz(c, b), want, atol=1e-9)
    assert calls == [True]
    # nonsymmetric: Levinson, not the Krylov method
    T.solve_toeplitz((c, c * 0.5), b)
    assert calls == [True]


# ---------------------------------------------------------------------------------------------
# Reflection coefficients and the determinant


def _durbin(rho):
    """Golub & Van Loan, Algorithm 4.7.1: Durbin's recursion for the Yule-Walker system
    ``T_n y = -rho`` of ``T = toeplitz([1, rho[:-1]])``; returns the ``alpha`` of each order."""
    n = len(rho)
    y = np.array([-rho[0]])
    alpha, beta = -rho[0], 1.0
    alphas = [alpha]
    for k in range(1, n):
        beta = (1 - alpha**2) * beta
        alpha = -(rho[k] + rho[:k][::-1] @ y) / beta
        y = np.concatenate([y + alpha * y[::-1], [alpha]])
        alphas.append(alpha)
    return np.array(alphas)


def test_reflection_coefficients_are_durbins_alphas_for_spd_matrices():
    rng = np.random.default_rng(11)
    n = 12
    a = rng.standard_normal(n + 20)
    acf = np.correlate(a, a, "full")[n + 19:] / (n + 20)   # a positive definite sequence
    c = acf[:n] / acf[0]
    x, k = T.levinson(c, np.ones(n))
    np.testing.assert_allclose(k, _durbin(c[1:]), rtol=1e-10, atol=1e-12)
    assert np.all(np.abs(k) < 1)
    np.testing.assert_allclose(x, np.linalg.solve(_dense(c), np.ones(n)), rtol=1e-10)


def test_reflection_coefficients_are_the_last_entries_of_the_monic_predictors():
    rng = np.random.default_rng(12)
    c, r = _column(rng, N, np.complex128, (2,)), _column(rng, N, np.complex128)
    _, k = T.levinson((c, r), np.ones(N))
    assert k.shape == (2, N - 1)
    for i in range(2):
        Td = sla.toeplitz(c[i], r)
        for m in range(1, N):
            a = np.linalg.solve(Td[:m + 1, :m + 1], np.eye(m + 1)[0])
            np.testing.assert_allclose(k[i, m - 1], a[-1] / a[0], rtol=1e-10)
        # the backward coefficients are the forward ones of the transpose
        rt = r.copy()
        rt[0] = c[i, 0]
        _, kt = T.levinson((rt, c[i]), np.ones(N))
        for m in range(1, N):
            g = np.linalg.solve(Td[:m + 1, :m + 1], np.eye(m + 1)[m])
            np.testing.assert_allclose(kt[m - 1], g[0] / g[-1], rtol=1e-10)


def test_levinson_kernel_rows_are_isolated_bit_for_bit():
    """A NaN row and a breakdown row leave the other rows' outputs bit-for-bit unchanged, and
    every row matches a dense solve (one and two right-hand sides: both kernel passes)."""
    from structlin._cpu import levinson as kernel

    rng = np.random.default_rng(21)
    n = 40
    c = _column(rng, n, np.float64, (4,))
    r = _column(rng, n, np.float64, (4,))
    c0, r0 = _zero_leading_minor()
    bad_c, bad_r = c.copy(), r.copy()
    bad_c[1, 3] = np.nan
    bad_c[2], bad_r[2] = 0.0, 0.0
    bad_c[2, :5], bad_r[2, :5] = c0, r0
    for k in (1, 2):
        b = rng.standard_normal((4, n, k))

        def run(cc, rr, b=b, k=k):
            out = (np.empty((4, n, k)), np.empty((4, n - 1)), np.zeros(4), np.ones(4),
                   np.zeros(4, dtype=np.int64), np.zeros(4))
            kernel.levinson(cc, rr, b, *out, 1e-12)
            return out

        good, bad = run(c, r), run(bad_c, bad_r)
        for a, z in zip(good, bad, strict=True):
            np.testing.assert_array_equal(a[[0, 3]], z[[0, 3]])
        assert np.isnan(bad[0][1]).all() and bad[4][1] == 0
        assert np.isnan(bad[0][2]).all() and bad[4][2] == 1
        for i in range(4):
            np.testing.assert_allclose(_dense(c[i], r[i]) @ good[0][i], b[i], atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_slogdet_matches_numpy(dtype):
    rng = np.random.default_rng(13)
    c, r = random_array(rng, (3, N), dtype), random_array(rng, (1, N), dtype)
    s, ld = T.toeplitz_slogdet((c, r))
    assert s.shape == ld.shape == (3,)
    for i in range(3):
        ws, wld = np.linalg.slogdet(sla.toeplitz(c[i], r[0]))
        np.testing.assert_allclose(s[i], ws, rtol=1e-9)
        np.testing.assert_allclose(ld[i], wld, rtol=1e-9)


def test_slogdet_of_breakdown_and_singular_matrices():
    c, r = _zero_leading_minor()
    s, ld = T.toeplitz_slogdet((np.stack([c, np.ones(5)]), np.stack([r, np.ones(5)])))
    ws, wld = np.linalg.slogdet(sla.toeplitz(c, r))
    np.testing.assert_allclose([s[0], ld[0]], [ws, wld], rtol=1e-10)
    assert s[1] == 0 and ld[1] == -np.inf


# ---------------------------------------------------------------------------------------------
# VJPs beyond the conformance classes


def test_solve_vjp_with_broadcast_batches_matches_finite_differences():
    rng = np.random.default_rng(14)
    c = _column(rng, 4, np.complex128, (2, 1))
    b = random_array(rng, (3, 4, 2), np.complex128)
    g = random_array(rng, (2, 3, 4, 2), np.complex128)

    def loss(c_, b_):
        return float(np.real(np.vdot(g, T.solve_toeplitz(c_, b_))))

    gc, gb = T.solve_toeplitz_vjp(c, b, g)
    assert gc.shape == c.shape and gb.shape == b.shape
    for arg, grad, f in ((c, gc, lambda a: loss(a, b)), (b, gb, lambda a: loss(c, a))):
        d = random_array(rng, arg.shape, np.complex128)
        h = 1e-6
        fd = (f(arg + h * d) - f(arg - h * d)) / (2 * h)
        assert abs(fd - np.real(np.vdot(grad, d))) < 1e-6 * max(1.0, abs(fd))


# ---------------------------------------------------------------------------------------------
# Properties


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 3), seed=st.integers(0, 2**16),
       cplx=st.booleans(), hermitian=st.booleans())
def test_multiply_after_solve_is_identity(n, k, seed, cplx, hermitian):
    """``T @ solve_toeplitz(T, b) == b`` for well-conditioned random ``T``."""
    rng = np.random.default_rng(seed)
    dtype = np.complex128 if cplx else np.float64
    c = _column(rng, n, dtype)
    c_or_cr = c if hermitian else (c, _column(rng, n, dtype))
    b = random_array(rng, (n, k), dtype)
    x = T.solve_toeplitz(c_or_cr, b)
    np.testing.assert_allclose(T.matmul_toeplitz(c_or_cr, x), b,
                               atol=tolerance(np.float64, n) * 10)


# ---------------------------------------------------------------------------------------------
# Many right-hand sides: the Gohberg-Semencul-Heinig path of method="auto"


@pytest.fixture(params=["fft", "gemm"])
def gs_calls(monkeypatch, request):
    """Counts the Gohberg-Semencul applications; the thresholds lowered so that small systems
    take the path, applied by FFTs or by the formed inverse (one matrix product)."""
    calls = []
    apply = T._gs_apply

    def counted(xp, gs, v3, rows=None, tinv=None):
        calls.append(v3.shape)
        assert (tinv is not None) == (request.param == "gemm")
        return apply(xp, gs, v3, rows, tinv=tinv)

    monkeypatch.setattr(T, "AUTO_GEMM_MAX_ORDER", 1 << 20 if request.param == "gemm" else 0)

    monkeypatch.setattr(T, "_gs_apply", counted)
    monkeypatch.setattr(T, "AUTO_GS_MIN_ORDER", 8)
    monkeypatch.setattr(T, "AUTO_GS_MIN_RHS", 4)
    monkeypatch.setattr(T, "AUTO_GS_MIN_WORK", 0)
    return calls


def _nonsymmetric(rng, n, dtype, shape=()):
    c, r = _column(rng, n, dtype, shape), _column(rng, n, dtype, shape)
    r[..., 1:] *= -0.7  # far from (Hermitian) symmetric
    return c, r


@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32, np.complex64])
def test_many_rhs_path_equals_a_dense_solve(gs_calls, dtype):
    rng = np.random.default_rng(31)
    n, k = 12, 6
    c, r = _nonsymmetric(rng, n, dtype, (3,))
    b = random_array(rng, (3, n, k), dtype)
    x = T.solve_toeplitz((c, r), b)
    assert gs_calls and x.dtype == dtype and x.shape == (3, n, k)
    tol = 1e-12 if np.finfo(dtype).eps < 1e-10 else 2e-5
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    for i in range(3):
        want = sla.solve(sla.toeplitz(c[i], r[i]).astype(wide), b[i].astype(wide))
        np.testing.assert_allclose(x[i], want, rtol=tol, atol=tol * np.abs(want).max())
    # one matrix shared by a batch of b (the batch folded into right-hand sides), SciPy's 1-d b
    gs_calls.clear()
    bb = random_array(rng, (2, n, 3), dtype)
    got = T.solve_toeplitz((c[0], r[0]), bb)
    assert gs_calls and got.shape == (2, n, 3)
    for j in range(2):
        want = sla.solve(sla.toeplitz(c[0], r[0]).astype(wide), bb[j].astype(wide))
        np.testing.assert_allclose(got[j], want, rtol=tol, atol=tol * np.abs(want).max())


def test_many_rhs_path_is_taken_for_many_rhs_only(monkeypatch):
    calls = []
    apply = T._gs_apply

    def counted(xp, gs, v3, rows=None, tinv=None):
        calls.append(v3.shape)
        return apply(xp, gs, v3, rows, tinv=tinv)

    monkeypatch.setattr(T, "_gs_apply", counted)
    n = T.AUTO_GS_MIN_ORDER
    k = max(T.AUTO_GS_MIN_RHS, -(-T.AUTO_GS_MIN_WORK // n))
    kk = np.arange(n)
    c, r = (-1.0) ** kk / (1.0 + kk) ** 2, 0.5 / (1.0 + kk) ** 2
    c[0] = 2.0
    rng = np.random.default_rng(32)
    b = rng.standard_normal((n, k))
    x = T.solve_toeplitz((c, r), b)
    assert len(calls) == 1 and calls[0] == (1, n, k)
    np.testing.assert_allclose(x, sla.solve(sla.toeplitz(c, r), b), rtol=1e-10, atol=1e-12)
    calls.clear()
    for bk in (b[:, 0], b[:, :1], b[:, :T.AUTO_GS_MIN_RHS - 1]):
        T.solve_toeplitz((c, r), bk)
    T.solve_toeplitz((c, r), b, method="levinson")
    assert calls == []


def test_many_rhs_path_keeps_batch_rows_isolated(gs_calls):
    """A NaN row gives NaN in its own row only; a row whose leading minor is zero (Levinson
    breaks down) goes to GKO; a NaN column of b stays in its column."""
    rng = np.random.default_rng(33)
    n, k = 10, 5
    c, r = _nonsymmetric(rng, n, np.float64, (4,))
    c[1, 4] = np.nan
    c[2, 0] = 0.0  # T[0, 0] = 0: Levinson breaks down at order 1
    r[2, 0] = 0.0
    assert abs(np.linalg.det(sla.toeplitz(c[2], r[2]))) > 1e-6
    b = rng.standard_normal((4, n, k))
    b[3, 2, 1] = np.nan
    x = T.solve_toeplitz((c, r), b, check_finite=False)
    assert gs_calls
    assert np.isnan(x[1]).all()
    assert np.isnan(x[3][:, 1]).all() and np.isfinite(np.delete(x[3], 1, axis=1)).all()
    for i in (0, 2):
        np.testing.assert_allclose(sla.toeplitz(c[i], r[i]) @ x[i], b[i], atol=1e-12)
    good = T.solve_toeplitz((c[[0, 2]], r[[0, 2]]), b[[0, 2]])
    np.testing.assert_allclose(x[[0, 2]], good, rtol=1e-14, atol=1e-15)
    keep = [0, 2, 3, 4]
    np.testing.assert_allclose(np.delete(x[3], 1, axis=1),
                               sla.solve(sla.toeplitz(c[3], r[3]), b[3][:, keep]),
                               rtol=1e-12, atol=1e-13)


def test_many_rhs_path_refines_a_poor_row_with_the_same_formula(gs_calls):
    """A tiny leading minor: the recursion loses digits in row 1; the refinement step applies
    the Gohberg-Semencul formula of that row only, and the residual becomes small."""
    c = np.array([[9.0, *[0.5] * 7], [1e-8, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01]])
    r = np.array([[9.0, *[0.3] * 7], [1e-8, 2.0, -1.0, 0.3, 0.7, 0.1, 0.2, 0.1]])
    b = np.random.default_rng(34).standard_normal((2, 8, 5))
    x = T.solve_toeplitz((c, r), b)
    assert gs_calls == [(2, 8, 5), (1, 8, 5)]
    for i in range(2):
        np.testing.assert_allclose(sla.toeplitz(c[i], r[i]) @ x[i], b[i], atol=1e-13)


def test_formed_inverse_is_bounded_in_memory():
    """The formed-inverse path is taken for n = 500, k = 500 and not when the inverses of the
    batch would exceed AUTO_GEMM_MAX_ELEMENTS (then the FFT application is used)."""
    assert T._use_gemm(1, 500, 500)
    assert not T._use_gemm(1000, 500, 500)
    assert not T._use_gemm(1, 500, 8)
    assert not T._use_gemm(1, T.AUTO_GEMM_MAX_ORDER + 1, 10**6)
