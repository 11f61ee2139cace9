"""Tests of kaleidoscope_fit: gradient fitting of K-matrices (structlin.kaleidoscope_fit)."""

from __future__ import annotations

import numpy as np
import pytest

import structlin as sl


@pytest.mark.parametrize("n", [4, 8, 16])
def test_the_dft_is_reached_exactly_at_width_one(n):
    """The DFT is in BB* (width 1; Dao et al. 2020), and L-BFGS finds it."""
    F = np.fft.fft(np.eye(n))
    fit = sl.kaleidoscope_fit(F, 1, restarts=3, maxiter=1000, rng=0)
    assert fit.success and fit.error < 1e-6, fit.errors
    assert fit.twiddle.shape == (1, 2, n.bit_length() - 1, n // 2, 2, 2)
    assert fit.twiddle.dtype == np.complex128
    np.testing.assert_allclose(fit.to_dense(), F, atol=1e-5 * np.sqrt(n))
    assert fit.error == pytest.approx(
        np.linalg.norm(sl.kaleidoscope_to_dense(fit.twiddle) - F) / np.linalg.norm(F),
        abs=1e-9)


@pytest.mark.parametrize("n", [8, 16, 64, 256])
def test_a_random_permutation_is_reached_exactly_at_width_one(n):
    """Every permutation is in BB* (width 1): the permutation start routes it exactly."""
    perm = np.random.default_rng(n).permutation(n)
    P = np.eye(n)[perm]
    fit = sl.kaleidoscope_fit(P, 1, restarts=2, maxiter=100, rng=0)
    assert fit.success and fit.error < 1e-12 and len(fit.errors) == 1, fit.errors
    assert fit.twiddle.shape == (1, 2, n.bit_length() - 1, n // 2, 2, 2)
    x = np.random.default_rng(1).standard_normal((3, n))
    np.testing.assert_allclose(sl.kaleidoscope_multiply(fit.twiddle, x), x[:, perm],
                               atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_a_scaled_permutation_at_width_two_and_a_noisy_one(dtype):
    """D P is exact at width 1 (D folded into the routed twiddle), and at a larger width the
    other units start at the identity; a noisy permutation is fitted below the noise."""
    rng = np.random.default_rng(3)
    n = 32
    d = rng.standard_normal(n) + (1j * rng.standard_normal(n) if dtype == np.complex128 else 0)
    A = (d[:, None] * np.eye(n)[rng.permutation(n)]).astype(dtype)
    fit = sl.kaleidoscope_fit(A, 2, restarts=1, maxiter=50, rng=0)
    assert fit.success and fit.error < 1e-12 and fit.twiddle.dtype == dtype
    np.testing.assert_allclose(fit.to_dense(), A, atol=1e-12)
    noise = 1e-2 * rng.standard_normal((n, n))
    B = A + noise
    fit = sl.kaleidoscope_fit(B, 1, restarts=1, maxiter=300, rng=0)
    start = np.linalg.norm(noise) / np.linalg.norm(B)  # about the start's error
    assert fit.error < start and not fit.success


def test_without_the_permutation_start_a_permutation_of_8_is_reached_at_width_two():
    """Gradient fitting of a permutation is non-convex: from random starts, width 1 (where it
    exists) is not found, width 2 is (with restarts)."""
    P = np.eye(8)[np.random.default_rng(0).permutation(8)]
    assert not sl.kaleidoscope_fit(P, 1, restarts=2, maxiter=1000, rng=1,
                                   permutation_start=False).success
    fit = sl.kaleidoscope_fit(P, 2, restarts=4, maxiter=1000, rng=1, permutation_start=False)
    assert fit.success and fit.error < 1e-6, fit.errors
    assert fit.twiddle.dtype == np.float64
    np.testing.assert_allclose(fit.to_dense(), P, atol=1e-5)


def test_a_k_matrix_is_reached_and_restarts_stop_at_success():
    """An orthogonal width-1 K-matrix whose first start (seed 0) ends in a local minimum:
    the second start reaches it and no third start is made."""
    A = sl.kaleidoscope_to_dense(sl.random_kaleidoscope(8, 1, kind="orthogonal", rng=2))
    fit = sl.kaleidoscope_fit(A, 1, restarts=5, maxiter=1000, rng=0)
    assert fit.error < 1e-6
    assert len(fit.errors) == 2 and fit.errors[-1] == fit.error and fit.errors[0] > 1e-2


def test_a_dense_gaussian_matrix_is_not_a_narrow_k_matrix_and_width_helps():
    A = np.random.default_rng(5).standard_normal((8, 8))
    errs = [sl.kaleidoscope_fit(A, w, restarts=1, maxiter=500, rng=0).error for w in (1, 3)]
    assert 0.05 < errs[0] < 1.0 and not sl.kaleidoscope_fit(A, 1, restarts=1, maxiter=50,
                                                            rng=0).success
    assert errs[1] < errs[0]


def test_a_warm_start_at_the_answer_stays_there_and_is_not_modified():
    tw = sl.random_kaleidoscope(8, 1, rng=6)
    A = sl.kaleidoscope_to_dense(tw)
    before = tw.copy()
    fit = sl.kaleidoscope_fit(A, 1, restarts=1, maxiter=5, init=tw, rng=0)
    assert fit.error < 1e-10
    np.testing.assert_array_equal(tw, before)


def test_the_fit_is_reproducible_with_a_seed():
    A = np.random.default_rng(7).standard_normal((4, 4))
    a = sl.kaleidoscope_fit(A, 1, restarts=2, maxiter=50, rng=3)
    b = sl.kaleidoscope_fit(A, 1, restarts=2, maxiter=50, rng=3)
    np.testing.assert_array_equal(a.twiddle, b.twiddle)
    assert a.errors == b.errors


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"A": np.ones((4, 8))}, ValueError, "A must be a square matrix"),
        ({"A": np.ones((6, 6))}, ValueError, "power of two"),
        ({"A": np.zeros((4, 4))}, ValueError, "A must not be zero"),
        ({"A": np.full((4, 4), np.nan)}, ValueError, "A must be finite"),
        ({"width": 0}, ValueError, "width"),
        ({"width": 1.5}, TypeError, "width"),
        ({"restarts": 0}, ValueError, "restarts"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"init": np.ones((1, 2, 3, 4, 2, 2))}, ValueError, "init must have shape"),
        ({"init": np.ones((1, 2, 2, 2, 2, 2)) * 1j}, TypeError, "init must be real"),
        ({"rng": "seed"}, TypeError, "rng"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs, exc, match):
    args = {"A": np.eye(4), "width": 1, **kwargs}
    A, width = args.pop("A"), args.pop("width")
    with pytest.raises(exc, match=match):
        sl.kaleidoscope_fit(A, width, **args)
