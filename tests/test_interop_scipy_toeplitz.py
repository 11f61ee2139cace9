"""structlin.interop.scipy, the toeplitz family's operators: Toeplitz, Hankel and Cauchy
LinearOperators equal their dense matrices (products and adjoints), pass the dot test and
drive SciPy's iterative solvers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse.linalg as spla

from structlin.cauchy import cauchy_to_dense
from structlin.interop.scipy import (
    cauchy_operator,
    hankel_operator,
    ldr_operator,
    toeplitz_operator,
)
from tests.test_interop_scipy import DTYPES, _random, _tol


def _cases(dtype):
    """(name, operator, dense matrix) in ``dtype``: square and rectangular shapes."""
    rng = np.random.default_rng(0)
    cases = []
    for m, n in ((6, 6), (5, 3), (2, 7), (1, 1)):
        c, r = _random(rng, m, dtype), _random(rng, n, dtype)
        cases.append((f"toeplitz-{m}x{n}", toeplitz_operator((c, r)), scipy.linalg.toeplitz(c, r)))
        cases.append((f"hankel-{m}x{n}", hankel_operator((c, r)), scipy.linalg.hankel(c, r)))
    c = _random(rng, 7, dtype)
    cases.append(("toeplitz-c", toeplitz_operator(c), scipy.linalg.toeplitz(c)))
    cases.append(("hankel-c", hankel_operator(c), scipy.linalg.hankel(c)))
    x = _random(rng, 5, dtype)
    y = _random(rng, 4, dtype) + 3.0
    cases.append(("cauchy", cauchy_operator(x, y), cauchy_to_dense(x, y)))
    return cases


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_products_and_adjoints_equal_the_dense_matrix(dtype):
    rng = np.random.default_rng(3)
    for name, A, M in _cases(dtype):
        assert A.shape == M.shape, name
        assert A.dtype == np.dtype(dtype), name
        atol = _tol(dtype) * max(np.abs(M).max(), 1.0) * 10
        x = _random(rng, M.shape[1], dtype)
        X = _random(rng, (M.shape[1], 3), dtype)
        y = _random(rng, M.shape[0], dtype)
        Y = _random(rng, (M.shape[0], 2), dtype)
        for got, want in ((A.matvec(x), M @ x), (A.matvec(x[:, None])[:, 0], M @ x),
                          (A @ X, M @ X), (A.rmatvec(y), M.conj().T @ y),
                          (A.H @ Y, M.conj().T @ Y), (A.rmatmat(Y), M.conj().T @ Y)):
            np.testing.assert_allclose(got, want, atol=atol, err_msg=name)
        assert A.matvec(x).dtype == np.dtype(dtype), name


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=lambda d: np.dtype(d).name)
def test_adjoint_dot_test(dtype):
    """<A x, y> == <x, A^H y>."""
    rng = np.random.default_rng(4)
    for name, A, _ in _cases(dtype):
        m, n = A.shape
        x, y = _random(rng, n, dtype), _random(rng, m, dtype)
        lhs = np.vdot(y, A @ x)
        rhs = np.vdot(A.H @ y, x)
        assert abs(lhs - rhs) <= 50 * _tol(dtype) * max(abs(lhs), 1.0), (name, lhs, rhs)


def test_real_operator_on_complex_vectors_promotes():
    c = np.array([2.0, 1.0, 0.5])
    A = toeplitz_operator(c)
    z = np.array([1.0, 1j, -1.0])
    np.testing.assert_allclose(A @ z, scipy.linalg.toeplitz(c) @ z, atol=1e-14)
    H = hankel_operator(c)
    np.testing.assert_allclose(H.H @ z, scipy.linalg.hankel(c).T @ z, atol=1e-14)
    C = cauchy_operator(np.array([1.0, 2.0]), np.array([0.0, -1.0, 5.0]))
    np.testing.assert_allclose(C.H @ np.array([1j, 1.0]),
                               cauchy_to_dense([1.0, 2.0], [0.0, -1.0, 5.0]).T
                               @ np.array([1j, 1.0]), atol=1e-14)


def test_cg_solves_a_kac_murdock_szego_system():
    n = 200
    c = 0.7 ** np.arange(n)
    b = np.random.default_rng(5).standard_normal(n)
    x, info = spla.cg(toeplitz_operator(c), b, rtol=1e-12, maxiter=500)
    assert info == 0
    np.testing.assert_allclose(x, scipy.linalg.solve_toeplitz(c, b), rtol=1e-8)


def test_gmres_solves_nonsymmetric_toeplitz_and_hankel_systems():
    rng = np.random.default_rng(6)
    n = 60
    k = np.arange(n)
    c = rng.standard_normal(n) * 0.5 ** k + 0.0j
    r = rng.standard_normal(n) * 0.5 ** k + 0.5j * rng.standard_normal(n) * 0.4 ** k
    c[0] = r[0] = 4.0
    b = rng.standard_normal(n) + 0j
    x, info = spla.gmres(toeplitz_operator((c, r)), b, rtol=1e-12, restart=60, maxiter=20)
    assert info == 0
    np.testing.assert_allclose(x, np.linalg.solve(scipy.linalg.toeplitz(c, r), b), rtol=1e-8)
    # a Hankel system is a Toeplitz system with the unknowns reversed: its matrix is T J
    h = np.concatenate([r[:0:-1], c])  # H[i, j] = h[i + j] = T[i, n - 1 - j]
    H = hankel_operator((h[:n], h[n - 1:]))
    np.testing.assert_allclose(H @ b, scipy.linalg.toeplitz(c, r) @ b[::-1], atol=1e-12)
    x, info = spla.gmres(H, b, rtol=1e-12, restart=60, maxiter=20)
    assert info == 0
    np.testing.assert_allclose(H @ x, b, atol=1e-9)


def test_lsqr_solves_a_cauchy_least_squares_problem():
    rng = np.random.default_rng(7)
    x_nodes = np.linspace(1.0, 3.0, 40)
    y_nodes = -np.linspace(1.0, 2.0, 8)
    M = cauchy_to_dense(x_nodes, y_nodes)
    w = rng.standard_normal(8)
    out = spla.lsqr(cauchy_operator(x_nodes, y_nodes), M @ w, atol=1e-14, btol=1e-14,
                    iter_lim=500)
    np.testing.assert_allclose(M @ out[0], M @ w, atol=1e-8)


def test_operators_leave_their_inputs_alone():
    c, r = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 6.0])
    before = (c.copy(), r.copy())
    for make in (toeplitz_operator, hankel_operator):
        A = make((c, r))
        x = np.array([1.0, 2.0, 3.0])
        A @ x
        A.H @ x
        np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
        np.testing.assert_array_equal(c, before[0])
        np.testing.assert_array_equal(r, before[1])


def test_errors_name_the_argument():
    for make in (toeplitz_operator, hankel_operator):
        with pytest.raises(ValueError, match="c must be 1-d"):
            make(np.ones((2, 2)))
        with pytest.raises(ValueError, match="the length of c"):
            make(np.zeros(0))
        with pytest.raises(ValueError, match="r must be finite"):
            make((np.ones(2), np.array([1.0, np.nan])))
        with pytest.raises(ValueError, match="tuple"):
            make((np.ones(2), np.ones(2), np.ones(2)))
        with pytest.raises(TypeError, match="c"):
            make(np.array(["a"]))
        with pytest.raises(ValueError, match="dimension mismatch"):
            make(np.ones(3)).matvec(np.ones(4))
        with pytest.raises(ValueError, match="dimension mismatch"):
            make((np.ones(3), np.ones(3))).rmatvec(np.ones(4))
    with pytest.raises(ValueError, match="x_nodes and y_nodes must not share"):
        cauchy_operator(np.array([1.0, 2.0]), np.array([3.0, 2.0]))
    with pytest.raises(ValueError, match="y_nodes must be finite"):
        cauchy_operator(np.array([1.0, 2.0]), np.array([np.inf, 0.0]))
    with pytest.raises(ValueError, match="x_nodes must be 1-d"):
        cauchy_operator(np.ones((1, 2)), np.zeros(2))
    with pytest.raises(TypeError, match="y_nodes"):
        cauchy_operator(np.ones(2), [object()])


# ---- ldr_operator (on structlin.ldr) ----------------------------------------------------------


def _ldr_cases(dtype):
    from structlin.ldr import ldr_to_dense

    rng = np.random.default_rng(8)
    n, r = 8, 2
    G, H = _random(rng, (r, n), dtype), _random(rng, (r, n), dtype)
    params = {
        "toeplitz": {},
        "hankel": {},
        "cauchy": {"s": _random(rng, n, dtype), "t": _random(rng, n, dtype) + 5.0},
        "vandermonde": {"nodes": (0.9 * np.exp(1j * rng.standard_normal(n))).astype(dtype)
                        if np.dtype(dtype).kind == "c" else
                        np.linspace(-0.9, 0.9, n).astype(dtype)},
        "subdiagonal": {"subdiag_A": _random(rng, n - 1, dtype),
                        "subdiag_B": _random(rng, n - 1, dtype), "f_A": 0.5},
    }
    return [(kind, ldr_operator(G, H, kind, **p), ldr_to_dense(G, H, kind, **p))
            for kind, p in params.items()]


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=lambda d: np.dtype(d).name)
def test_ldr_operator_products_adjoint_and_dot_test(dtype):
    rng = np.random.default_rng(9)
    for kind, A, M in _ldr_cases(dtype):
        assert A.shape == M.shape and A.dtype == np.dtype(dtype), kind
        atol = _tol(dtype) * max(np.abs(M).max(), 1.0) * 50
        x, X = _random(rng, 8, dtype), _random(rng, (8, 3), dtype)
        y, Y = _random(rng, 8, dtype), _random(rng, (8, 2), dtype)
        for got, want in ((A @ x, M @ x), (A @ X, M @ X), (A.rmatvec(y), M.conj().T @ y),
                          (A.H @ Y, M.conj().T @ Y)):
            np.testing.assert_allclose(got, want, atol=atol, err_msg=kind)
        lhs, rhs = np.vdot(y, A @ x), np.vdot(A.H @ y, x)
        assert abs(lhs - rhs) <= 50 * _tol(dtype) * max(abs(lhs), 1.0), (kind, lhs, rhs)


def test_ldr_operator_real_operator_on_complex_vectors_and_gmres():
    from structlin.ldr import ldr_to_dense

    rng = np.random.default_rng(10)
    n = 16
    G, H = rng.standard_normal((2, n)), rng.standard_normal((2, n))
    M = ldr_to_dense(G, H, "toeplitz") + 0.0
    A = ldr_operator(G, H, "toeplitz")
    z = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    np.testing.assert_allclose(A.H @ z, M.T @ z, atol=1e-10)
    b = rng.standard_normal(n)
    x, info = spla.gmres(A, b, rtol=1e-12, restart=n, maxiter=10)
    assert info == 0
    np.testing.assert_allclose(M @ x, b, atol=1e-8 * np.linalg.norm(M, 2) * 10)
    # float32 generators give a float32 operator and products
    A32 = ldr_operator(G.astype(np.float32), H.astype(np.float32), "hankel")
    assert A32.dtype == np.float32
    assert (A32 @ b.astype(np.float32)).dtype == np.float32
    assert (A32.H @ b.astype(np.float32)).dtype == np.float32


def test_ldr_operator_refuses_bad_generators():
    G = np.ones((2, 4))
    with pytest.raises(ValueError, match="batch"):
        ldr_operator(np.ones((3, 2, 4)), np.ones((3, 2, 4)), "toeplitz")
    with pytest.raises(ValueError, match="H must have shape"):
        ldr_operator(G, np.ones((2, 5)), "toeplitz")
    with pytest.raises(ValueError, match="kind"):
        ldr_operator(G, G, "circulant")
    with pytest.raises(ValueError, match="needs the operator parameter"):
        ldr_operator(G, G, "cauchy")
    with pytest.raises(TypeError, match="G"):
        ldr_operator(np.array([["a"]]), G, "toeplitz")
