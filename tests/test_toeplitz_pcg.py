"""structlin.toeplitz_pcg: circulant preconditioners of Strang and T. Chan and the batched
preconditioned Krylov solvers (CG, BiCGSTAB) behind solve_toeplitz(method="pcg")."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg

from structlin.toeplitz_pcg import (
    _krylov,
    chan_preconditioner,
    pcg_solve_toeplitz,
    strang_preconditioner,
)

#: one small valid call of each public function (merged into tests/test_public_api_probe.py)
PROBE = {
    "strang_preconditioner": lambda: ((np.array([4.0, 1.0, 0.5, 0.25]),), {}),
    "chan_preconditioner": lambda: ((np.array([4.0, 1.0, 0.5, 0.25]),), {}),
}


def _kms(n, rho, dtype=np.float64):
    """Kac-Murdock-Szego: c_k = rho^k, symmetric positive definite for |rho| < 1."""
    return (rho ** np.arange(n)).astype(dtype)


def _decaying_symmetric(rng, n, dtype=np.float64):
    c = rng.standard_normal(n) / (1.0 + np.arange(n)) ** 2
    c[0] = 0.0
    # diagonally dominant, so positive definite
    c[0] = 2 * np.abs(c).sum() + 0.5
    return c.astype(dtype)


def _rand(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _relres(c, r, x, b):
    T = scipy.linalg.toeplitz(c, r)
    return np.linalg.norm(T @ x - b, axis=0) / np.linalg.norm(b, axis=0)


# ---- the preconditioners ----------------------------------------------------------------------


def _strang_reference(c, r):
    n = len(c)
    s = np.empty(n, dtype=np.result_type(c, r))
    for j in range(n):
        if 2 * j < n:
            s[j] = c[j]
        elif 2 * j == n:
            s[j] = (c[j] + r[j]) / 2
        else:
            s[j] = r[n - j]
    return s


def test_strang_copies_the_central_diagonals():
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 8):
        c, r = rng.standard_normal(n), rng.standard_normal(n)
        np.testing.assert_allclose(strang_preconditioner((c, r)), _strang_reference(c, r),
                                   rtol=0, atol=0)


@pytest.mark.parametrize("n", [1, 4, 7])
def test_chan_is_the_mean_of_each_wrapped_diagonal(n):
    """T. Chan's circulant is the Frobenius projection of T onto the circulants: each entry is
    the mean of T along the wrapped diagonal it stands for."""
    rng = np.random.default_rng(n)
    c, r = _rand(rng, n, np.complex128), _rand(rng, n, np.complex128)
    T = scipy.linalg.toeplitz(c, r)
    mean = np.array([np.mean([T[(i + j) % n, i] for i in range(n)]) for j in range(n)])
    np.testing.assert_allclose(chan_preconditioner((c, r)), mean, rtol=1e-13, atol=1e-14)


def test_chan_is_nearest_in_frobenius_norm():
    rng = np.random.default_rng(1)
    c, r = rng.standard_normal(6), rng.standard_normal(6)
    T = scipy.linalg.toeplitz(c, r)
    p = chan_preconditioner((c, r))
    best = np.linalg.norm(T - scipy.linalg.circulant(p))
    for _ in range(5):
        q = p + 1e-3 * rng.standard_normal(6)
        assert np.linalg.norm(T - scipy.linalg.circulant(q)) > best


def test_preconditioners_of_a_hermitian_matrix_are_hermitian():
    rng = np.random.default_rng(2)
    c = _rand(rng, 6, np.complex128)
    c[0] = 5.0
    for f in (strang_preconditioner, chan_preconditioner):
        C = scipy.linalg.circulant(f(c))
        np.testing.assert_allclose(C, C.conj().T, atol=1e-15)


def test_preconditioners_batch_broadcast_and_dtypes():
    rng = np.random.default_rng(3)
    c = rng.standard_normal((2, 3, 5)).astype(np.float32)
    r = rng.standard_normal((3, 5)).astype(np.float32)
    for f in (strang_preconditioner, chan_preconditioner):
        out = f((c, r))
        assert out.shape == (2, 3, 5) and out.dtype == np.float32
        np.testing.assert_array_equal(out[1, 2], f((c[1, 2], r[2])))
        assert f(np.arange(4)).dtype == np.float64
        assert f(c.astype(np.complex64)).dtype == np.complex64
        # c alone means r = conj(c)
        z = _rand(rng, 5, np.complex128)
        np.testing.assert_array_equal(f(z), f((z, z.conj())))


def test_preconditioners_keep_nan_in_its_row_and_leave_inputs_alone():
    c = np.tile(_kms(6, 0.5), (3, 1))
    c[1, 2] = np.nan
    before = c.copy()
    for f in (strang_preconditioner, chan_preconditioner):
        out = f(c)
        assert np.isfinite(out[[0, 2]]).all() and not np.isfinite(out[1]).all()
        np.testing.assert_array_equal(c, before)


@pytest.mark.parametrize("f", [strang_preconditioner, chan_preconditioner])
def test_preconditioners_refuse_bad_input_by_name(f):
    with pytest.raises(ValueError, match="c"):
        f(np.float64(1.0))
    with pytest.raises(ValueError, match="length of c"):
        f(np.zeros(0))
    with pytest.raises(ValueError, match="r must have the length"):
        f((np.ones(3), np.ones(4)))
    with pytest.raises(ValueError, match="broadcast"):
        f((np.ones((2, 3)), np.ones((3, 3))))
    with pytest.raises(ValueError, match="tuple"):
        f((np.ones(3),))
    with pytest.raises(TypeError, match="c"):
        f(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="r"):
        f((np.ones(2), np.array([object(), object()])))


# ---- the solver ------------------------------------------------------------------------------


@pytest.mark.parametrize("preconditioner", ["chan", "strang", None])
def test_cg_solves_kac_murdock_szego_systems(preconditioner):
    n, rho = 200, 0.8
    c = _kms(n, rho)
    rng = np.random.default_rng(4)
    b = rng.standard_normal((2, n, 3))
    cc = np.stack([c, _kms(n, -0.5)])
    x, conv, relres = pcg_solve_toeplitz(cc, cc.copy(), b, preconditioner=preconditioner,
                                         tol=1e-12, hermitian=True)
    assert x.shape == (2, n, 3) and x.dtype == np.float64
    assert conv.shape == (2, 3) and conv.dtype == bool and conv.all()
    assert relres.dtype == np.float64 and (relres <= 1e-12).all()
    for i in range(2):
        np.testing.assert_allclose(x[i], scipy.linalg.solve_toeplitz(cc[i], b[i]),
                                   rtol=1e-9, atol=1e-10)
        # the reported residual is the true one; near the rounding floor (a few eps) the FFT
        # product and the dense one each round differently, hence the absolute slack
        np.testing.assert_allclose(relres[i], _relres(cc[i], cc[i], x[i], b[i]), rtol=1e-3,
                                   atol=1e-14)


def test_cg_solves_a_decaying_random_symmetric_system():
    rng = np.random.default_rng(5)
    n = 300
    c = _decaying_symmetric(rng, n)
    b = rng.standard_normal((1, n, 2))
    x, conv, _ = pcg_solve_toeplitz(c[None], c[None], b, hermitian=True)
    assert conv.all()
    np.testing.assert_allclose(x[0], scipy.linalg.solve_toeplitz(c, b[0]), rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("preconditioner", ["chan", "strang", None])
def test_bicgstab_solves_nonsymmetric_systems(dtype, preconditioner):
    rng = np.random.default_rng(6)
    n = 150
    k = np.arange(n)
    c = _rand(rng, n, dtype) * 0.5 ** k
    r = _rand(rng, n, dtype) * 0.6 ** k
    c[0] = r[0] = 4.0
    b = _rand(rng, (1, n, 3), dtype)
    x, conv, relres = pcg_solve_toeplitz(c[None], r[None], b, preconditioner=preconditioner,
                                         tol=1e-11)
    assert conv.all() and x.dtype == dtype and relres.dtype == np.float64
    np.testing.assert_allclose(x[0], np.linalg.solve(scipy.linalg.toeplitz(c, r), b[0]),
                               rtol=1e-8, atol=1e-10)
    assert (_relres(c, r, x[0], b[0]) <= 1e-11).all()


def test_cg_solves_a_complex_hermitian_system():
    rng = np.random.default_rng(7)
    n = 120
    c = _rand(rng, n, np.complex128) / (1.0 + np.arange(n)) ** 2
    c[0] = 2 * np.abs(c).sum()
    b = _rand(rng, (1, n, 2), np.complex128)
    for pre in ("chan", "strang"):
        x, conv, _ = pcg_solve_toeplitz(c[None], c.conj()[None], b, preconditioner=pre,
                                        hermitian=True)
        assert conv.all()
        np.testing.assert_allclose(x[0], scipy.linalg.solve_toeplitz(c, b[0]), rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_single_precision_stays_single(dtype):
    rng = np.random.default_rng(8)
    n = 100
    c = _kms(n, 0.6, dtype)
    b = _rand(rng, (1, n, 2), dtype)
    for hermitian in (True, False):
        x, conv, relres = pcg_solve_toeplitz(c[None], c.conj()[None], b, hermitian=hermitian)
        assert x.dtype == dtype and relres.dtype == np.float32 and conv.all()
        assert (relres <= 1e-5).all()
        ref = scipy.linalg.solve_toeplitz(c.astype(np.complex128), b[0].astype(np.complex128))
        np.testing.assert_allclose(x[0], ref, rtol=1e-4, atol=1e-4)


def test_preconditioning_cuts_the_iterations():
    n = 512
    c = _kms(n, 0.9)  # condition number about 360: some 170 CG iterations unpreconditioned
    b = np.random.default_rng(9).standard_normal((1, n, 1))
    its = {}
    for pre in ("chan", "strang", None):
        _x, conv, _, it = _krylov(np, c[None], c[None], b, pre, 1e-10, 2000, True)
        assert conv.all(), pre
        its[pre] = int(it[0, 0])
    assert 10 * its["chan"] <= its[None] and 10 * its["strang"] <= its[None], its
    # BiCGSTAB too
    for pre in ("chan", None):
        _, conv, _, it = _krylov(np, c[None], c[None], b, pre, 1e-10, 2000, False)
        assert conv.all()
        its["bi-" + str(pre)] = int(it[0, 0])
    assert 10 * its["bi-chan"] <= its["bi-None"], its
    # the same seen from the public function: with a few iterations only the preconditioned
    # solve converges
    _, conv_p, _ = pcg_solve_toeplitz(c[None], c[None], b, maxiter=its["chan"] + 2,
                                      tol=1e-10, hermitian=True)
    _, conv_n, relres_n = pcg_solve_toeplitz(c[None], c[None], b, preconditioner=None,
                                             maxiter=its["chan"] + 2, tol=1e-10,
                                             hermitian=True)
    assert conv_p.all() and not conv_n.any() and np.isfinite(relres_n).all()


def test_a_singular_strang_preconditioner_falls_back_to_chan():
    # positive definite T whose Strang circulant is indefinite (the truncated symbol dips
    # below zero): strang's request must be served by Chan's preconditioner for that row
    n = 8
    c = np.array([1.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0])
    c[0] = 1.0 - np.linalg.eigvalsh(scipy.linalg.toeplitz(c)).min() + 0.05
    assert np.linalg.eigvalsh(scipy.linalg.toeplitz(c)).min() > 0
    assert np.fft.fft(strang_preconditioner(c)).real.min() < 0
    assert np.fft.fft(chan_preconditioner(c)).real.min() > 0
    b = np.random.default_rng(10).standard_normal((1, n, 1))
    xs, conv_s, _, it_s = _krylov(np, c[None], c[None], b, "strang", 1e-12, 100, True)
    xc, conv_c, _, it_c = _krylov(np, c[None], c[None], b, "chan", 1e-12, 100, True)
    assert conv_s.all() and conv_c.all()
    np.testing.assert_array_equal(xs, xc)
    np.testing.assert_array_equal(it_s, it_c)


def test_batch_rows_and_columns_are_independent():
    rng = np.random.default_rng(11)
    n = 64
    c = np.stack([_kms(n, 0.7), _decaying_symmetric(rng, n), _kms(n, 0.3)])
    b = rng.standard_normal((3, n, 3))
    b[1, 5, 0] = np.nan  # one right-hand side of system 1
    c[2, 3] = np.nan  # the whole of system 2
    b[0, :, 2] = 0.0  # a zero right-hand side
    before = (c.copy(), b.copy())
    for hermitian in (True, False):
        x, conv, relres, it = _krylov(np, c, c.copy(), b, "chan", 1e-12, 500, hermitian)
        np.testing.assert_array_equal(c, before[0])
        np.testing.assert_array_equal(b, before[1])
        assert np.isnan(x[1, :, 0]).all() and np.isnan(x[2]).all()
        assert not conv[1, 0] and not conv[2].any() and np.isnan(relres[2]).all()
        assert conv[0].all() and conv[1, 1:].all()
        np.testing.assert_array_equal(x[0, :, 2], 0.0)
        assert relres[0, 2] == 0.0
        # each clean column follows the trajectory it has alone
        for i, j in ((0, 0), (0, 1), (1, 1), (1, 2)):
            xa, _, _, ita = _krylov(np, c[i:i + 1], c[i:i + 1].copy(), b[i:i + 1, :, j:j + 1],
                                    "chan", 1e-12, 500, hermitian)
            assert ita[0, 0] == it[i, j]
            np.testing.assert_allclose(x[i, :, j], xa[0, :, 0], rtol=1e-12, atol=1e-14)


def test_no_convergence_is_reported_not_raised():
    n = 100
    rng = np.random.default_rng(12)
    b = rng.standard_normal((1, n, 2))
    # too few iterations
    c = _kms(n, 0.95)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, conv, relres = pcg_solve_toeplitz(c[None], c[None], b, preconditioner=None,
                                             maxiter=3, hermitian=True)
        assert not conv.any() and np.isfinite(relres).all() and (relres > 1e-12).all()
        np.testing.assert_allclose(relres[0], _relres(c, c, x[0], b[0]), rtol=1e-6)
        # a tolerance below the rounding errors: the restarts stagnate and stop
        x, conv, relres = pcg_solve_toeplitz(c[None], c[None], b, tol=1e-300,
                                             hermitian=True)
        assert not conv.any() and (relres < 1e-12).all()
        # a singular matrix (rank one: all ones) with a right-hand side outside its range
        ones = np.ones((1, n))
        for hermitian in (True, False):
            x, conv, relres = pcg_solve_toeplitz(ones, ones, b, hermitian=hermitian)
            assert not conv.any() and np.isfinite(relres).all() and np.isfinite(x).all()


def test_tiny_and_empty_systems():
    for n in (1, 2, 3):
        c = _kms(n, 0.5)
        b = np.arange(1.0, n + 1)[None, :, None]
        for hermitian in (True, False):
            x, conv, _ = pcg_solve_toeplitz(c[None], c[None], b, hermitian=hermitian)
            assert conv.all()
            np.testing.assert_allclose(x[0], scipy.linalg.solve_toeplitz(c, b[0]), rtol=1e-10,
                                       atol=1e-12)
    x, conv, relres = pcg_solve_toeplitz(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3, 0)))
    assert x.shape == (2, 3, 0) and conv.shape == (2, 0) and relres.shape == (2, 0)


def test_solver_refuses_bad_arguments():
    c = np.ones((1, 3))
    b = np.ones((1, 3, 1))
    with pytest.raises(ValueError, match="preconditioner"):
        pcg_solve_toeplitz(c, c, b, preconditioner="jacobi")
    with pytest.raises(ValueError, match="tol"):
        pcg_solve_toeplitz(c, c, b, tol=0.0)
    with pytest.raises(TypeError, match="maxiter"):
        pcg_solve_toeplitz(c, c, b, maxiter=2.5)
    with pytest.raises(ValueError, match="shapes"):
        pcg_solve_toeplitz(c, c, b[0])
    with pytest.raises(TypeError, match="dtype"):
        pcg_solve_toeplitz(c.astype(np.float32), c, b)
