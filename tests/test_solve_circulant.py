"""Circulant solves by FFT (:func:`structlin.circulant.solve_circulant`, SciPy's function):
against ``scipy.linalg.solve_circulant`` on the same inputs (axis layouts, collections that
broadcast, complex, float32, near-singular matrices raised or solved in the least-squares
sense, explicit ``tol``, empty ``b``), the documented differences (float32 tolerance, the
least-squares mask for any ``baxis``), conformance as a linear map of ``b`` (dense equality,
dot test, VJPs against finite differences, dtypes, batch isolation, layouts), the VJP in every
layout against finite differences, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from structlin.circulant import solve_circulant, solve_circulant_vjp
from tests import conformance as cf
from tests.strategies import random_array, seeds

#: one small valid call of each public function of this part (merged into
#: tests/test_public_api_probe.py by the lead)
PROBE = {
    "solve_circulant": lambda: ((np.array([2.0, 2.0, 4.0]), np.array([1.0, 2.0, 3.0])),
                                {"singular": "raise", "tol": None, "caxis": -1, "baxis": 0,
                                 "outaxis": 0}),
    "solve_circulant_vjp": lambda: ((np.array([2.0, 2.0, 4.0]), np.array([1.0, 2.0, 3.0]),
                                     np.array([1.0, 0.0, -1.0])),
                                    {"singular": "lstsq", "tol": 1e-12, "caxis": -1,
                                     "baxis": 0, "outaxis": 0}),
}

N = 6


def _column(rng, shape, dtype):
    """Well-conditioned first columns: a dominant c[0]."""
    c = random_array(rng, shape, dtype)
    c[..., 0] += 4
    return c


# ------------------------------------------------------------------ SciPy on the same inputs

LAYOUTS = [
    # (c shape, b shape, kwargs)
    ((N,), (N,), {}),
    ((N,), (N, 3), {}),
    ((N,), (3, N), {"baxis": -1}),
    ((N, 2), (N,), {"caxis": 0}),
    ((2, 1, N), (3, N), {"baxis": -1, "outaxis": -1}),
    ((2, 3, N), (N, 2, 3), {"outaxis": 1}),
    ((N, 2, 1), (4, N), {"caxis": 0, "baxis": 1, "outaxis": -2}),
    ((1,), (1, 4), {}),
]


@pytest.mark.parametrize("cshape,bshape,kw", LAYOUTS)
@pytest.mark.parametrize("dtypes", [(np.float64, np.float64), (np.complex128, np.float64),
                                    (np.float64, np.complex128)])
def test_matches_scipy_on_the_same_inputs(cshape, bshape, kw, dtypes):
    rng = np.random.default_rng(len(cshape) * 10 + len(bshape))
    c = _column(rng, cshape, dtypes[0]) if cshape[-1] == N or len(cshape) == 1 else None
    if c is None:  # caxis=0 layouts: the coefficients along axis 0
        c = random_array(rng, cshape, dtypes[0])
        c[0] += 4
    b = random_array(rng, bshape, dtypes[1])
    want = scipy.linalg.solve_circulant(c, b, **kw)
    got = solve_circulant(c, b, **kw)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * np.abs(want).max())


def test_single_precision_in_and_out_like_scipy():
    """float32 and complex64 stay in single precision (SciPy 1.17 with NumPy 2 too); ints are
    float64."""
    rng = np.random.default_rng(1)
    for dt in (np.float32, np.complex64):
        c = _column(rng, (3, N), dt)
        b = random_array(rng, (N, 3), dt)
        got = solve_circulant(c, b, baxis=0, outaxis=-1)
        want = scipy.linalg.solve_circulant(c, b, baxis=0, outaxis=-1)
        assert got.dtype == want.dtype == dt
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    got = solve_circulant(np.array([2, 2, 4]), np.array([1, 2, 3]))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, [0.75, -0.25, 0.25], rtol=1e-14)


def test_near_singular_raise_and_lstsq_like_scipy():
    c = np.array([1.0, 1.0, 0.0, 0.0])  # eigenvalue fft(c)[2] = 0
    b = np.array([1.0, 2.0, 3.0, 4.0])
    for f in (solve_circulant, scipy.linalg.solve_circulant):
        with pytest.raises(np.linalg.LinAlgError, match="near singular"):
            f(c, b)
    np.testing.assert_allclose(solve_circulant(c, b, singular="lstsq"),
                               scipy.linalg.solve_circulant(c, b, singular="lstsq"),
                               rtol=0, atol=1e-14)
    # the minimum-norm least-squares solution
    np.testing.assert_allclose(solve_circulant(c, b, singular="lstsq"),
                               scipy.linalg.lstsq(scipy.linalg.circulant(c), b)[0], atol=1e-13)
    # a collection: one singular matrix raises for all (SciPy's rule); lstsq drops only its
    # eigenvalue; b along the last axis, where SciPy's mask works
    cs = np.stack([c, np.array([4.0, 1.0, 0.0, 1.0]), 1j * c])
    bs = np.arange(12.0).reshape(3, 4)
    with pytest.raises(np.linalg.LinAlgError):
        solve_circulant(cs, bs, baxis=-1)
    for kw in ({}, {"tol": 1.5}):
        np.testing.assert_allclose(
            solve_circulant(cs, bs, singular="lstsq", baxis=-1, **kw),
            scipy.linalg.solve_circulant(cs, bs, singular="lstsq", baxis=-1, **kw), atol=1e-13)
    # an explicit tol above an eigenvalue's modulus makes it near zero
    c2 = np.array([4.0, 1.0, 0.0, 1.0])  # eigenvalues 6, 4, 2, 4
    with pytest.raises(np.linalg.LinAlgError):
        solve_circulant(c2, b, tol=2.0)
    np.testing.assert_allclose(solve_circulant(c2, b, tol=1.9), np.linalg.solve(
        scipy.linalg.circulant(c2), b), rtol=1e-13)


def test_lstsq_mask_is_right_for_b_with_the_vectors_along_axis_0():
    """SciPy masks with an array of b's unmoved shape: b of shape (4, 3) with baxis=0 raises a
    broadcasting ValueError there. Here each column gets its least-squares solution."""
    c = np.array([1.0, 1.0, 0.0, 0.0])
    b = np.arange(12.0).reshape(4, 3)
    with pytest.raises(ValueError, match="broadcast"):
        scipy.linalg.solve_circulant(c, b, singular="lstsq")
    got = solve_circulant(c, b, singular="lstsq")
    assert got.shape == (4, 3)  # outaxis=0: the vectors along axis 0, as b's
    for j in range(3):
        np.testing.assert_allclose(
            got[:, j], scipy.linalg.solve_circulant(c, b[:, j], singular="lstsq"), atol=1e-13)


def test_float32_tolerance_catches_what_scipys_float64_epsilon_misses():
    """A circulant whose eigenvalue is zero in exact arithmetic, rounded to float32: the
    transform's rounding leaves |fft(c)| near 1e-7 max|fft(c)|, far above SciPy's
    ``n eps64`` threshold (SciPy returns a huge solution) and below ours, ``n eps32``."""
    n = 8
    eig = np.array([4.0, 3.0, 2.0 + 1j, 0.0, 1.0, 0.0, 2.0 - 1j, 3.0])
    c = np.fft.ifft(eig).real.astype(np.float32)
    b = np.ones(n, np.float32)
    b[1] = 2.0
    assert np.abs(np.fft.fft(c)).min() > 0  # not exactly singular in float32
    with pytest.raises(np.linalg.LinAlgError):
        solve_circulant(c, b)
    wide = scipy.linalg.solve_circulant(c, b)  # SciPy: no error, a meaningless solution
    assert np.abs(wide).max() > 1e3
    x = solve_circulant(c, b, singular="lstsq")
    assert x.dtype == np.float32 and np.abs(x).max() < 10


def test_empty_b_like_scipy():
    for c, b in ((np.ones(3), np.ones((3, 0))), (np.ones((2, 0)), np.ones(0))):
        got = solve_circulant(c, b)
        want = scipy.linalg.solve_circulant(c, b)
        assert got.shape == want.shape and got.dtype == want.dtype
    gc, gb = solve_circulant_vjp(np.ones(3), np.ones((3, 0)), np.ones((3, 0)))
    assert gc.shape == (3,) and gb.shape == (3, 0)


@settings(max_examples=15, deadline=None)
@given(seed=seeds(), n=st.integers(1, 17), k=st.integers(1, 3), cplx=st.booleans())
def test_solve_then_multiply_is_identity(seed, n, k, cplx):
    """``circulant(c) @ solve_circulant(c, b) == b`` for a batch of columns of b."""
    rng = np.random.default_rng(seed)
    dt = np.complex128 if cplx else np.float64
    c = _column(rng, (n,), dt)
    b = random_array(rng, (n, k), dt)
    x = solve_circulant(c, b)  # (n, k): baxis=0 and outaxis=0, SciPy's defaults
    want = scipy.linalg.solve_circulant(c, b)
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-12 * np.abs(want).max())
    np.testing.assert_allclose(scipy.linalg.circulant(c) @ x, b, rtol=0,
                               atol=1e-12 * np.abs(b).max() * n)


# ------------------------------------------------------------------ conformance in b


class TestSolveCirculantConformance(cf.OperatorConformance):
    """``b -> circulant(c)^-1 b`` with the vectors on the last axis (``baxis=-1``,
    ``outaxis=-1``)."""

    x_name = "b"

    def make_params(self, rng, dtype):
        return {"c": _column(rng, (N,), dtype)}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, N), dtype)

    def fast(self, p, x):
        return solve_circulant(p["c"], x, baxis=-1, outaxis=-1)

    def dense(self, p):
        return np.linalg.inv(scipy.linalg.circulant(p["c"]))

    def vjp(self, p, x, g):
        gc, gb = solve_circulant_vjp(p["c"], x, g, baxis=-1, outaxis=-1)
        return {"c": gc, "x": gb}

    def bad_inputs(self):
        c = np.array([4.0, 1.0, 0.0, 1.0])
        b = np.ones(4)
        return [
            ("lengths differ", lambda: solve_circulant(c, np.ones(5)), ValueError,
             r"b must have length 4 along baxis"),
            ("caxis out of bounds", lambda: solve_circulant(c, b, caxis=1), ValueError,
             r"caxis must be in \[-1, 1\)"),
            ("baxis out of bounds", lambda: solve_circulant(c, b, baxis=-2), ValueError,
             "baxis must be in"),
            ("outaxis out of bounds", lambda: solve_circulant(c, b, outaxis=3), ValueError,
             "outaxis must be in"),
            ("caxis float", lambda: solve_circulant(c, b, caxis=0.0), TypeError, "caxis"),
            ("outaxis string", lambda: solve_circulant(c, b, outaxis="0"), TypeError,
             "outaxis"),
            ("singular unknown", lambda: solve_circulant(c, b, singular="ignore"), ValueError,
             "singular must be one of"),
            ("tol NaN", lambda: solve_circulant(c, b, tol=np.nan), ValueError, "tol"),
            ("tol string", lambda: solve_circulant(c, b, tol="1"), TypeError, "tol"),
            ("collections do not broadcast",
             lambda: solve_circulant(np.ones((2, 4)), np.ones((3, 4)), baxis=-1), ValueError,
             r"collections of c and b do not broadcast"),
            ("c None", lambda: solve_circulant(None, b), TypeError, "c must"),
            ("grad of the wrong shape", lambda: solve_circulant_vjp(c, b, np.ones(5)),
             ValueError, r"grad must have shape \(4,\)"),
            ("grad None", lambda: solve_circulant_vjp(c, b, None), TypeError, "grad"),
            ("singular in the VJP", lambda: solve_circulant_vjp([1.0, 1.0], b[:2], b[:2]),
             np.linalg.LinAlgError, "near singular"),
        ]


# ------------------------------------------------------------------ the VJP in every layout


@pytest.mark.parametrize("cshape,bshape,kw", LAYOUTS[:7])
@pytest.mark.parametrize("cplx", [False, True])
def test_vjp_matches_finite_differences_in_every_layout(cshape, bshape, kw, cplx):
    rng = np.random.default_rng(len(cshape) + 3 * len(bshape) + cplx)
    dt = np.complex128 if cplx else np.float64
    c = random_array(rng, cshape, dt)
    np.moveaxis(c, kw.get("caxis", -1), -1)[..., 0] += 4
    b = random_array(rng, bshape, dt)
    g = random_array(rng, solve_circulant(c, b, **kw).shape, dt)
    gc, gb = solve_circulant_vjp(c, b, g, **kw)
    assert gc.shape == c.shape and gb.shape == b.shape
    assert gc.dtype == dt and gb.dtype == dt

    def loss(cc, bb):
        return float(np.real(np.vdot(g, solve_circulant(cc, bb, **kw))))

    h = 1e-6
    for _ in range(2):
        dc = random_array(rng, c.shape, dt)
        db = random_array(rng, b.shape, dt)
        fd = (loss(c + h * dc, b) - loss(c - h * dc, b)) / (2 * h)
        assert abs(fd - np.real(np.vdot(gc, dc))) <= 1e-6 * max(1.0, abs(fd))
        fd = (loss(c, b + h * db) - loss(c, b - h * db)) / (2 * h)
        assert abs(fd - np.real(np.vdot(gb, db))) <= 1e-6 * max(1.0, abs(fd))


def test_vjp_of_the_least_squares_solution_keeps_the_dropped_eigenvalues_dropped():
    """With ``singular="lstsq"`` and an explicit tol (so that the mask does not move under the
    finite differences) the gradients are those of the masked formula."""
    rng = np.random.default_rng(5)
    c = np.array([1.0, 1.0, 0.0, 0.0]) + 0.01 * rng.standard_normal(4)  # |fft(c)[2]| ~ 0.02
    b = rng.standard_normal((2, 4))
    kw = {"singular": "lstsq", "tol": 0.1, "baxis": -1, "outaxis": -1}
    g = rng.standard_normal((2, 4))
    gc, gb = solve_circulant_vjp(c, b, g, **kw)

    def loss(cc, bb):
        return float(np.vdot(g, solve_circulant(cc, bb, **kw)))

    h = 1e-6
    d = rng.standard_normal(4)
    assert abs((loss(c + h * d, b) - loss(c - h * d, b)) / (2 * h) - gc @ d) <= 1e-7
    d = rng.standard_normal((2, 4))
    assert abs((loss(c, b + h * d) - loss(c, b - h * d)) / (2 * h) - np.vdot(gb, d)) <= 1e-7


def test_single_precision_gradients_and_integer_inputs():
    c = np.array([4.0, 1.0, 0.0, 1.0], np.float32)
    b = np.ones((4, 2), np.complex64)
    gc, gb = solve_circulant_vjp(c, b, np.ones((4, 2), np.complex64))
    assert gc.dtype == np.float32 and gb.dtype == np.complex64
    gc, gb = solve_circulant_vjp(np.array([4, 1, 0, 1]), np.arange(4), np.ones(4))
    assert gc.dtype == np.float64 and gb.dtype == np.float64
