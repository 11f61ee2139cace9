"""Butterfly factorization (hierarchical algorithm) and fitting (L-BFGS) against dense checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import hadamard

import structlin as sl
from structlin._cpu.butterfly_factorization import peel_level
from structlin.butterfly_factorization import (
    _Objective,
    _peel_level_xp,
    _permutation_ops,
    _reference_factorize_svd,
)
from tests.strategies import dtypes, log2_sizes, random_array, seeds, tolerance


def dense_error(A, B) -> float:
    A = np.asarray(A, np.complex128)
    return float(np.linalg.norm(A - B) / np.linalg.norm(A))


def dft_bit_reversed(n):
    return np.fft.fft(np.eye(n))[:, sl.bit_reversal_permutation(n)]


# ---- butterfly_factorize ------------------------------------------------------------------


@given(L=log2_sizes(8), dt=dtypes(), inc=st.booleans(), seed=seeds(),
       kind=st.sampled_from(["gaussian", "orthogonal"]))
def test_factorize_recovers_a_random_butterfly_exactly(L, dt, inc, seed, kind):
    n = 1 << L
    tw = sl.random_butterfly(n, kind=kind, dtype=dt, rng=seed)
    A = sl.butterfly_to_dense(tw, increasing_stride=inc)
    twiddle, err = sl.butterfly_factorize(A, increasing_stride=inc)
    assert twiddle.shape == tw.shape and twiddle.dtype == dt
    B = sl.butterfly_to_dense(twiddle.astype(np.complex128), increasing_stride=inc)
    tol = tolerance(dt, n)
    assert dense_error(A, B) <= tol
    assert err <= tol


@given(L=log2_sizes(6), dt=dtypes(), inc=st.booleans(), seed=seeds())
def test_reported_error_equals_dense_error_of_the_product(L, dt, inc, seed):
    n = 1 << L
    A = random_array(np.random.default_rng(seed), (n, n), dt)
    twiddle, err = sl.butterfly_factorize(A, increasing_stride=inc)
    B = sl.butterfly_to_dense(twiddle.astype(np.complex128), increasing_stride=inc)
    assert err == pytest.approx(dense_error(A, B), rel=1e-4, abs=tolerance(dt, n))


@given(L=log2_sizes(7, 1), dt=dtypes(), seed=seeds())
def test_error_is_at_most_the_zero_and_identity_approximations(L, dt, seed):
    n = 1 << L
    A = random_array(np.random.default_rng(seed), (n, n), dt)
    err = sl.butterfly_factorize(A).relative_error
    slack = 1 + tolerance(dt, n)
    assert err <= 1.0 * slack  # B = 0
    assert err <= dense_error(A, np.eye(n)) * slack  # B = I


@pytest.mark.parametrize("n", [16, 64, 256])
@pytest.mark.parametrize("delta", [1e-3, 1e-7])
def test_error_on_butterfly_plus_noise_is_close_to_the_noise_level(n, delta):
    rng = np.random.default_rng(n)
    B = sl.butterfly_to_dense(sl.random_butterfly(n, rng=rng))
    E = rng.standard_normal((n, n))
    E *= delta * np.linalg.norm(B) / np.linalg.norm(E)
    err = sl.butterfly_factorize(B + E).relative_error
    # B itself has error delta; a generic noise is mostly outside the butterfly's tangent space
    assert 0.5 * delta <= err <= delta * (1 + 1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_size_4_is_the_global_optimum_brute_force(seed):
    # L = 2: one split, solved exactly, so no fit from any start may beat it
    A = np.random.default_rng(seed).standard_normal((4, 4))
    err = sl.butterfly_factorize(A).relative_error
    fitted = [sl.butterfly_fit(A, permutation=None, rng=s, maxiter=300).relative_error
              for s in range(4)]
    assert min(fitted) >= err * (1 - 1e-6)
    assert min(fitted) <= err * (1 + 1e-3)


def test_size_2_every_matrix_is_a_butterfly():
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    tw, err = sl.butterfly_factorize(A)
    np.testing.assert_allclose(sl.butterfly_to_dense(tw), A, atol=1e-14)
    assert err <= 1e-15


def test_size_8_fit_from_the_factorization_never_increases_the_error():
    A = np.random.default_rng(5).standard_normal((8, 8))
    err = sl.butterfly_factorize(A).relative_error
    fit = sl.butterfly_fit(A, permutation=None, init="factorize", maxiter=200)
    assert fit.relative_error <= err * (1 + 1e-9)


def test_size_1_is_the_empty_product():
    tw, err = sl.butterfly_factorize(np.array([[3.0]]))
    assert tw.shape == (0, 0, 2, 2)
    assert err == pytest.approx(2.0 / 3.0)


def test_zero_matrix_has_zero_error_and_zero_product():
    tw, err = sl.butterfly_factorize(np.zeros((8, 8)))
    assert err == 0.0
    np.testing.assert_array_equal(sl.butterfly_to_dense(tw), np.zeros((8, 8)))


@pytest.mark.parametrize("n", [1, 2, 8, 256, 1024, pytest.param(4096, marks=pytest.mark.slow)])
def test_dft_with_bit_reversed_columns_is_recovered_to_machine_precision(n):
    F = dft_bit_reversed(n)
    tw, err = sl.butterfly_factorize(F)
    assert tw.dtype == np.complex128
    assert err <= 1e-14
    x = np.random.default_rng(n).standard_normal((2, n))
    y = sl.butterfly_multiply(tw, x[:, sl.bit_reversal_permutation(n)])
    np.testing.assert_allclose(y, np.fft.fft(x), atol=1e-12 * np.sqrt(n) * max(1, np.log2(n)))


@pytest.mark.slow
@pytest.mark.parametrize("inc", [True, False])
def test_random_butterfly_of_size_4096_is_recovered(inc):
    tw = sl.random_butterfly(4096, kind="orthogonal", dtype=np.complex128, rng=7)
    x = np.random.default_rng(1).standard_normal((4, 4096))
    A = sl.butterfly_multiply(tw, np.eye(4096), increasing_stride=inc).T
    tw2, err = sl.butterfly_factorize(A, increasing_stride=inc)
    assert err <= 1e-13
    np.testing.assert_allclose(sl.butterfly_multiply(tw2, x, increasing_stride=inc),
                               sl.butterfly_multiply(tw, x, increasing_stride=inc), atol=1e-11)


@given(L=log2_sizes(7, 1), C_log=st.integers(0, 3), dt=dtypes(), seed=seeds())
def test_peel_level_kernel_matches_array_reference(L, C_log, dt, seed):
    rng = np.random.default_rng(seed)
    C, N = 1 << C_log, 1 << L
    M = random_array(rng, (C, N, N), dt)
    tw_fast = np.zeros((N // 2, C, 2, 2), dt)
    tw_ref = np.zeros((N // 2, C, 2, 2), dt)
    out, r2, m2 = peel_level(M, tw_fast)
    out_ref, r2_ref, m2_ref = _peel_level_xp(np, M, tw_ref)
    tol = tolerance(dt, N) * 10
    norm2 = float(np.sum(np.abs(M.astype(np.complex128)) ** 2))
    assert m2 == pytest.approx(norm2, rel=tol) and float(m2_ref) == pytest.approx(norm2, rel=tol)
    # singular vectors are unique up to a phase: compare the rank-one products u v^H
    for a in range(N // 2):
        for b in range(2):
            for c in range(C):
                uv = np.outer(out[b * C + c, :, a], tw_fast[a, c, b])
                uv_ref = np.outer(out_ref[b * C + c, :, a], tw_ref[a, c, b])
                scale = max(np.linalg.norm(M[c]), 1e-30)
                assert np.linalg.norm(uv - uv_ref) <= tol * scale
    assert r2 == pytest.approx(r2_ref, rel=tol, abs=tol * float(np.vdot(M, M).real))
    assert out.shape == (2 * C, N // 2, N // 2) and out.dtype == dt


@pytest.mark.parametrize("dt,expected", [(np.float32, np.float32), (np.float64, np.float64),
                                         (np.complex64, np.complex64),
                                         (np.complex128, np.complex128), (np.int64, np.float64),
                                         (np.bool_, np.float64), (np.float16, np.float32)])
def test_result_dtype_follows_promotion(dt, expected):
    A = (np.arange(16).reshape(4, 4) % 3).astype(dt)
    assert sl.butterfly_factorize(A).twiddle.dtype == expected


def test_inputs_are_not_modified():
    A = np.random.default_rng(0).standard_normal((16, 16))
    before = A.copy()
    sl.butterfly_factorize(A)
    sl.butterfly_factorize(A, increasing_stride=False)
    sl.butterfly_fit(A, permutation="learn", maxiter=5, refit_maxiter=5, rng=0)
    np.testing.assert_array_equal(A, before)


BAD_FACTORIZE = [
    (np.ones((4, 8)), ValueError, r"A must be a square matrix.*got shape \(4, 8\)"),
    (np.ones(4), ValueError, r"A must be a square matrix.*got shape \(4,\)"),
    (np.ones((2, 4, 4)), ValueError, r"A must be a square matrix.*got shape \(2, 4, 4\)"),
    (np.ones((6, 6)), ValueError, r"A must have a number of rows and columns n that is a "
                                  r"power of two.*got 6"),
    (np.ones((0, 0)), ValueError, r"power of two.*got 0"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError, "A must be finite.*NaN"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), ValueError, "A must be finite"),
    (np.array([["a", "b"], ["c", "d"]]), TypeError, "A must have a numeric dtype.*<U1"),
    (np.ones((2, 2), dtype=object), TypeError, "A must have a numeric dtype.*object"),
    (np.ones((2, 2), dtype=np.longdouble), TypeError, "extended precision"),
]


@pytest.mark.parametrize("A,exc,match", BAD_FACTORIZE)
def test_factorize_rejects_bad_inputs(A, exc, match):
    with pytest.raises(exc, match=match):
        sl.butterfly_factorize(A)


def test_factorize_accepts_lists_and_refuses_a_non_bool_flag():
    tw, err = sl.butterfly_factorize([[1.0, 2.0], [3.0, 4.0]])
    assert err <= 1e-15 and tw.shape == (1, 1, 2, 2)
    with pytest.raises(TypeError, match="increasing_stride must be True or False"):
        sl.butterfly_factorize(np.eye(4), increasing_stride="yes")


# ---- butterfly_fit ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [16, 32, 64])
@pytest.mark.parametrize("name", ["hadamard", "dft bit-reversed"])
def test_fit_without_permutation_reaches_low_error(n, name):
    A = hadamard(n).astype(float) if name == "hadamard" else dft_bit_reversed(n)
    fit = sl.butterfly_fit(A, permutation=None, rng=0, maxiter=300)
    assert fit.relative_error <= 1e-5
    np.testing.assert_array_equal(fit.permutation, np.arange(n))


@pytest.mark.parametrize("n", [16, 64])
@pytest.mark.parametrize("name", ["hadamard", "dft"])
def test_fit_learns_a_permutation_that_makes_the_dft_a_butterfly(n, name):
    A = hadamard(n).astype(float) if name == "hadamard" else np.fft.fft(np.eye(n))
    fit = sl.butterfly_fit(A, permutation="learn", rng=1, maxiter=150, refit_maxiter=150)
    assert fit.relative_error <= 1e-5
    assert sorted(fit.permutation) == list(range(n))
    x = np.random.default_rng(0).standard_normal(n)
    np.testing.assert_allclose(fit.multiply(x), A @ x, atol=1e-4 * np.linalg.norm(A @ x))


def test_product_of_two_butterflies_fits_what_one_cannot():
    rng = np.random.default_rng(3)
    n = 16
    B0 = sl.butterfly_to_dense(sl.random_butterfly(n, kind="orthogonal", rng=rng))
    B1 = sl.butterfly_to_dense(sl.random_butterfly(n, kind="orthogonal", rng=rng),
                               increasing_stride=False)
    A = B1 @ B0
    one = sl.butterfly_factorize(A).relative_error
    # the problem is not convex: the best of a few starts, as a user would run it (from
    # rng=0 alone L-BFGS stops at a local minimum of error 0.25 with scipy 1.17)
    fit = min((sl.butterfly_fit(A, n_factors_products=2, permutation=None, rng=s, maxiter=1000)
               for s in (0, 1, 2)), key=lambda f: f.relative_error)
    assert fit.increasing_strides == (True, False)
    assert fit.twiddles.shape == (2, 4, 8, 2, 2)
    assert one > 0.1
    assert fit.relative_error < 0.1 * one


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("K,perm", [(1, None), (2, "learn")])
def test_fit_result_is_consistent_with_its_dense_matrix(dt, K, perm):
    A = random_array(np.random.default_rng(2), (8, 8), dt)
    fit = sl.butterfly_fit(A, n_factors_products=K, permutation=perm, rng=0, maxiter=20,
                           refit_maxiter=10)
    assert fit.twiddles.dtype == dt and fit.permutation.dtype == np.int64
    M = fit.to_dense()
    assert fit.relative_error == pytest.approx(dense_error(A, M), rel=1e-6)
    assert fit.relative_error < 1.0
    assert fit.iterations > 0
    x = random_array(np.random.default_rng(3), (3, 8), dt)
    np.testing.assert_allclose(fit.multiply(x), x @ M.T, rtol=tolerance(dt, 8) * 10,
                               atol=tolerance(dt, 8) * 10 * np.abs(x @ M.T).max())


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("K", [1, 2])
def test_fit_objective_gradient_matches_finite_differences(complex_, K):
    # the gradient L-BFGS follows: butterfly VJPs plus the relaxed permutation's chain rule
    rng = np.random.default_rng(K)
    n, L = 8, 3
    dt = np.complex128 if complex_ else np.float64
    target = random_array(rng, (n, n), dt)
    ops = _permutation_ops(n)
    obj = _Objective(target, K, L, complex_, ops, True, None)
    theta = obj.pack(random_array(rng, (K, L, n // 2, 2, 2), dt), rng.standard_normal(len(ops)))
    _, g = obj(theta)
    h = 1e-6
    for _ in range(3):
        d = rng.standard_normal(theta.shape)
        fd = (obj(theta + h * d)[0] - obj(theta - h * d)[0]) / (2 * h)
        assert fd == pytest.approx(float(g @ d), rel=1e-5, abs=1e-9)


def test_permutation_moves_compose_to_the_bit_reversal():
    n = 32
    perm = np.arange(n)
    for i, idx in enumerate(_permutation_ops(n)):
        if i % 3 == 0:  # the even/odd separations only
            perm = perm[idx]
    np.testing.assert_array_equal(perm, sl.bit_reversal_permutation(n))


BAD_FIT = [
    (np.ones((4, 8)), {}, ValueError, r"A must be a square matrix"),
    (np.ones((6, 6)), {}, ValueError, "power of two"),
    (np.ones((1, 1)), {}, ValueError, r"A must be at least 2 x 2.*\(1, 1\)"),
    (np.full((4, 4), np.nan), {}, ValueError, "A must be finite"),
    (np.zeros((4, 4)), {}, ValueError, "A must not be zero"),
    (np.ones((4, 4)), {"n_factors_products": 0}, ValueError,
     "n_factors_products must be at least 1, got 0"),
    (np.ones((4, 4)), {"n_factors_products": 1.5}, TypeError,
     r"n_factors_products must be an integer, got 1.5 \(float\)"),
    (np.ones((4, 4)), {"n_factors_products": None}, TypeError,
     "n_factors_products must be an integer, got None"),
    # 2**40 random butterflies were built one by one (the fit never returned): at most
    # 4 log2(n) products
    (hadamard(4), {"n_factors_products": 2**40, "permutation": None}, ValueError,
     r"n_factors_products must be at most 8 \(4 log2\(n\) for n = 4\), got 1099511627776"),
    (np.ones((16, 16)), {"n_factors_products": 17}, ValueError,
     "n_factors_products must be at most 16"),
    (np.ones((4, 4)), {"permutation": "bitrev"}, ValueError,
     r"permutation must be one of \('learn', None\), got 'bitrev'"),
    (np.ones((4, 4)), {"init": "zeros"}, ValueError,
     r"init must be one of \('random', 'factorize'\), got 'zeros'"),
    (np.ones((4, 4)), {"maxiter": -1}, ValueError, "maxiter must be at least 0, got -1"),
    (np.ones((4, 4)), {"maxiter": 2**40}, ValueError, "maxiter must be at most 1000000"),
    (np.ones((4, 4)), {"refit_maxiter": "5"}, TypeError, "refit_maxiter must be an integer"),
    (np.ones((4, 4)), {"maxiter": 5.0}, TypeError, "maxiter must be an integer"),
    (np.ones((4, 4)), {"rng": "bogus"}, TypeError, "rng must be None, an integer seed"),
    (np.ones((4, 4), dtype=object), {}, TypeError, "A must have a numeric dtype"),
    ([[1.0, "a"], [2.0, 3.0]], {}, TypeError, "A must"),
]


@pytest.mark.parametrize("A,kwargs,exc,match", BAD_FIT)
def test_fit_rejects_bad_inputs(A, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        sl.butterfly_fit(A, **kwargs)


@pytest.mark.parametrize("inc", [True, False])
@pytest.mark.parametrize("dt", [np.float32, np.complex128])
def test_array_api_path_used_for_cupy_gives_the_same_factorization(monkeypatch, inc, dt):
    # the CuPy launcher is _peel_level_xp on cupy arrays; run the same code on NumPy here
    import importlib
    import types

    # the package attribute of this name is the function: take the module from sys.modules
    bf = importlib.import_module("structlin.butterfly_factorization")

    A = random_array(np.random.default_rng(4), (64, 64), dt)
    tw_fast, err_fast = sl.butterfly_factorize(A, increasing_stride=inc)
    xp_kernels = types.SimpleNamespace(peel_level=lambda M, t: _peel_level_xp(np, M, t))
    monkeypatch.setattr(bf, "kernels", lambda xp, family: xp_kernels)
    tw_xp, err_xp = sl.butterfly_factorize(A, increasing_stride=inc)
    assert err_xp == pytest.approx(err_fast, rel=tolerance(dt, 64))
    B_fast = sl.butterfly_to_dense(tw_fast.astype(np.complex128), increasing_stride=inc)
    B_xp = sl.butterfly_to_dense(tw_xp.astype(np.complex128), increasing_stride=inc)
    assert dense_error(B_fast, B_xp) <= tolerance(dt, 64) * 10


@pytest.mark.parametrize("dt", [np.float64, np.complex128])
def test_relaxed_permutation_kernels_match_numpy(dt):
    from structlin._cpu.butterfly_factorization import mix_backward, mix_forward, residual

    rng = np.random.default_rng(6)
    z = random_array(rng, (5, 16), dt)
    g = random_array(rng, (5, 16), dt)
    idx = rng.permutation(16)
    inv = np.argsort(idx)
    w = 0.3
    np.testing.assert_allclose(mix_forward(z, idx, w), (1 - w) * z + w * z[:, idx], rtol=1e-14)
    g_in, dw = mix_backward(g, z, idx, inv, w)
    np.testing.assert_allclose(g_in, (1 - w) * g + w * g[:, inv], rtol=1e-14)
    assert dw == pytest.approx(float(np.vdot(g, z[:, idx] - z).real), rel=1e-12)
    res, r2 = residual(z, g)
    np.testing.assert_array_equal(res, z - g)
    assert r2 == pytest.approx(float(np.vdot(z - g, z - g).real), rel=1e-12)


@given(L=log2_sizes(7), dt=dtypes(), seed=seeds())
def test_fast_factorization_equals_the_batched_svd_reference(L, dt, seed):
    n = 1 << L
    A = random_array(np.random.default_rng(seed), (n, n), dt)
    tw = sl.butterfly_factorize(A).twiddle
    tw_ref = _reference_factorize_svd(A)
    B = sl.butterfly_to_dense(tw.astype(np.complex128))
    B_ref = sl.butterfly_to_dense(tw_ref.astype(np.complex128))
    assert dense_error(B_ref, B) <= tolerance(dt, n) * 10
