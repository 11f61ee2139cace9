"""structlin.interop.scipy: LinearOperator views equal their dense matrices, pass the dot test
(adjoint consistency) and drive SciPy's iterative solvers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import scipy.linalg
import scipy.sparse.linalg as spla

import structlin as sl
from structlin.interop.scipy import (
    butterfly_inverse_operator,
    butterfly_operator,
    fftconv_operator,
    monarch_operator,
    pixelfly_operator,
)

ROOT = Path(__file__).resolve().parents[1]
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def _tol(dtype):
    return 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11


def _random(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _cases(dtype):
    """(name, operator, dense matrix) for every constructor, in ``dtype``."""
    rng = np.random.default_rng(0)
    tw = sl.random_butterfly(16, kind="orthogonal", dtype=dtype, rng=1)
    w1, w2 = _random(rng, (2, 3, 3), dtype), _random(rng, (3, 4, 2), dtype)
    mask = sl.flat_block_butterfly_mask(8, 16, 2)
    blocks = _random(rng, (int(mask.sum()), 2, 2), dtype)
    U, V = _random(rng, (8, 2), dtype), _random(rng, (16, 2), dtype)
    k1, k2 = _random(rng, (5,), dtype), _random(rng, (3, 4), dtype)
    cases = []
    for inc in (True, False):
        B = sl.butterfly_to_dense(tw, increasing_stride=inc)
        cases.append((f"butterfly-{inc}", butterfly_operator(tw, increasing_stride=inc), B))
        cases.append((f"butterfly_inverse-{inc}",
                      butterfly_inverse_operator(tw, increasing_stride=inc),
                      np.linalg.inv(B)))
    cases.append(("monarch", monarch_operator(w1, w2), sl.monarch_to_dense(w1, w2)))
    cases.append(("pixelfly", pixelfly_operator(blocks, mask, U, V),
                  sl.pixelfly_to_dense(blocks, mask, U, V)))
    for causal in (True, False):
        cases.append((f"fftconv-1-{causal}", fftconv_operator(k1, 7, causal=causal),
                      sl.fftconv_to_dense(k1[None], 7, causal=causal)[0]))
        cases.append((f"fftconv-bank-{causal}", fftconv_operator(k2, 6, causal=causal),
                      scipy.linalg.block_diag(*sl.fftconv_to_dense(k2, 6, causal=causal))))
    return cases


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_operator_matvec_and_matmat_equal_the_dense_matrix(dtype):
    rng = np.random.default_rng(3)
    for name, A, M in _cases(dtype):
        assert A.shape == M.shape, name
        assert A.dtype == np.dtype(dtype), name
        x = _random(rng, M.shape[1], dtype)
        X = _random(rng, (M.shape[1], 3), dtype)
        scale = np.abs(M).max()
        np.testing.assert_allclose(A.matvec(x), M @ x, atol=_tol(dtype) * scale * 10,
                                   err_msg=name)
        np.testing.assert_allclose(A.matvec(x[:, None])[:, 0], M @ x,
                                   atol=_tol(dtype) * scale * 10, err_msg=name)
        np.testing.assert_allclose(A @ X, M @ X, atol=_tol(dtype) * scale * 10, err_msg=name)
        y = _random(rng, M.shape[0], dtype)
        Y = _random(rng, (M.shape[0], 2), dtype)
        np.testing.assert_allclose(A.rmatvec(y), M.conj().T @ y, atol=_tol(dtype) * scale * 10,
                                   err_msg=name)
        np.testing.assert_allclose(A.H @ Y, M.conj().T @ Y, atol=_tol(dtype) * scale * 10,
                                   err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_adjoint_dot_test(dtype):
    """<A x, y> == <x, A^H y>, the adjoint consistency of pylops' dottest."""
    rng = np.random.default_rng(4)
    for name, A, _ in _cases(dtype):
        m, n = A.shape
        x, y = _random(rng, n, dtype), _random(rng, m, dtype)
        lhs = np.vdot(y, A @ x)
        rhs = np.vdot(A.H @ y, x)
        assert abs(lhs - rhs) <= 50 * _tol(dtype) * max(abs(lhs), 1.0), (name, lhs, rhs)


def test_gmres_solves_a_butterfly_system():
    tw = sl.random_butterfly(64, kind="orthogonal", rng=5)
    A = butterfly_operator(tw)
    b = np.random.default_rng(6).standard_normal(64)
    x, info = spla.gmres(A, b, rtol=1e-12, atol=0.0, restart=64, maxiter=200)
    assert info == 0
    np.testing.assert_allclose(x, sl.butterfly_solve(tw, b), atol=1e-9)


def test_inverse_operator_matches_butterfly_solve():
    tw = sl.random_butterfly(32, rng=7)
    y = np.random.default_rng(8).standard_normal((32, 4))
    for inc in (True, False):
        Ainv = butterfly_inverse_operator(tw, increasing_stride=inc)
        np.testing.assert_allclose(Ainv @ y, sl.butterfly_solve(tw, y.T, increasing_stride=inc).T,
                                   rtol=1e-12, atol=1e-12)


def test_inverse_operator_refuses_a_singular_butterfly_at_construction():
    tw = sl.random_butterfly(8, rng=0)
    tw[1, 2] = [[1.0, 2.0], [2.0, 4.0]]
    with pytest.raises(np.linalg.LinAlgError):
        butterfly_inverse_operator(tw)


def test_lsqr_solves_a_monarch_least_squares_problem():
    rng = np.random.default_rng(9)
    w1, w2 = rng.standard_normal((2, 3, 3)), rng.standard_normal((3, 4, 2))
    A = monarch_operator(w1, w2)
    b = rng.standard_normal(12)
    x = spla.lsqr(A, b, atol=1e-14, btol=1e-14, iter_lim=500)[0]
    expected = np.linalg.lstsq(sl.monarch_to_dense(w1, w2), b, rcond=None)[0]
    np.testing.assert_allclose(x, expected, atol=1e-8)


def test_lsqr_deconvolves_a_causal_convolution():
    k = np.array([1.0, 0.5, 0.25])
    T = fftconv_operator(k, 32)
    x_true = np.random.default_rng(10).standard_normal(32)
    x = spla.lsqr(T, T @ x_true, atol=1e-14, btol=1e-14, iter_lim=500)[0]
    np.testing.assert_allclose(x, x_true, atol=1e-8)


def test_operators_compose_with_scipy_algebra():
    tw = sl.random_butterfly(8, rng=11)
    A = butterfly_operator(tw)
    B = sl.butterfly_to_dense(tw)
    x = np.arange(8.0)
    np.testing.assert_allclose((A @ A.H + 2 * A) @ x, (B @ B.T + 2 * B) @ x, atol=1e-12)
    np.testing.assert_allclose(A.T @ x, B.T @ x, atol=1e-12)
    assert "butterfly_operator" in repr(A)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="twiddle"):
        butterfly_operator(np.ones((2, 3, 2, 2)))
    with pytest.raises(ValueError, match="l\\*r"):
        monarch_operator(np.ones((2, 3, 3)), np.ones((3, 4, 3)))
    with pytest.raises(ValueError, match="blocks"):
        pixelfly_operator(np.ones((1, 2, 2)), np.eye(2, dtype=bool), np.ones((4, 0)),
                          np.ones((4, 0)))
    with pytest.raises(ValueError, match="k must"):
        fftconv_operator(np.ones((1, 2, 3)), 4)
    with pytest.raises(ValueError, match="dimension mismatch"):
        fftconv_operator(np.ones(3), 4).matvec(np.ones(5))


def test_importing_structlin_imports_no_framework():
    """The numeric core and the interop package never import PyTorch, JAX or Dask."""
    code = (
        "import sys, structlin, structlin.interop, structlin.interop._ops, "
        "structlin.interop.scipy\n"
        "loaded = sorted(m for m in ('torch', 'jax', 'jaxlib', 'dask') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


# ---- precision ---------------------------------------------------------------------------


def _precision_operators(rng, dtype):
    """(name, constructor taking precision=, tensor-core value, refused value, vector length)."""
    w1, w2 = _random(rng, (2, 3, 3), dtype), _random(rng, (3, 4, 2), dtype)
    k = _random(rng, (3, 4), dtype)
    return [
        ("monarch", lambda **kw: monarch_operator(w1, w2, **kw), "tf32", "fp16",
         lambda **kw: sl.monarch_multiply(w1, w2, np.zeros((0, 6), dtype), **kw)),
        ("fftconv", lambda **kw: fftconv_operator(k, 6, **kw), "bf16", "tf32",
         lambda **kw: sl.fftconv(np.zeros((3, 6), dtype), k, **kw)),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.complex64], ids=lambda d: np.dtype(d).name)
def test_tensor_core_precision_is_checked_and_computes_full_precision_on_numpy(dtype):
    rng = np.random.default_rng(20)
    for name, make, tc, _, _ in _precision_operators(rng, dtype):
        A, A_tc = make(), make(precision=tc)
        m, n = A.shape
        x, y = _random(rng, n, dtype), _random(rng, m, dtype)
        X = _random(rng, (n, 2), dtype)
        for got, want in ((A_tc @ x, A @ x), (A_tc.H @ y, A.H @ y), (A_tc @ X, A @ X)):
            assert got.dtype == np.dtype(dtype), name
            np.testing.assert_array_equal(got, want, err_msg=name)


def test_operator_precision_errors_are_the_functions():
    rng = np.random.default_rng(21)
    for _name, make, tc, refused, function in _precision_operators(rng, np.float32):
        with pytest.raises(ValueError) as expected:
            function(precision=refused)
        with pytest.raises(ValueError, match=re.escape(str(expected.value))):
            make(precision=refused)
        A = make(precision=tc)
        m, n = A.shape
        # double-precision vectors: refused at the product, as by the function
        with pytest.raises(ValueError, match=f"precision='{tc}' .*needs float32"):
            A @ np.ones(n)
        with pytest.raises(ValueError, match=f"precision='{tc}' .*needs float32"):
            A.H @ np.ones(m)
    for _name, make, tc, _, function in _precision_operators(rng, np.float64):
        with pytest.raises(ValueError) as expected:
            function(precision=tc)
        with pytest.raises(ValueError, match=re.escape(str(expected.value))):
            make(precision=tc)


def test_operator_products_pass_precision_on(monkeypatch):
    """matvec hands ``precision`` to monarch_multiply, rmatvec to the adjoint chain's kernels
    (both spied on), and the fftconv operator's products to fftconv."""
    import structlin.interop.scipy as ss

    seen = []

    def spy(name, real):
        def fn(*args, **kwargs):
            seen.append((name, kwargs.get("precision", args[4] if len(args) > 4 else None)))
            return real(*args, **kwargs)

        return fn

    for name in ("monarch_multiply", "_chain_apply", "fftconv"):
        monkeypatch.setattr(ss, name, spy(name, getattr(ss, name)))
    rng = np.random.default_rng(22)
    w1, w2 = _random(rng, (2, 3, 3), np.float32), _random(rng, (3, 4, 2), np.float32)
    A = ss.monarch_operator(w1, w2, precision="bf16")
    T = ss.fftconv_operator(_random(rng, (3, 4), np.float32), 6, precision="fp16")
    seen.clear()
    A @ np.ones(6, np.float32)
    A.H @ np.ones(12, np.float32)
    T @ np.ones(18, np.float32)
    T.H @ np.ones(18, np.float32)
    assert seen == [("monarch_multiply", "bf16"), ("_chain_apply", "bf16"),
                    ("fftconv", "fp16"), ("fftconv", "fp16")]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_kaleidoscope_operator_products_and_adjoint_equal_the_dense_matrix(dtype):
    from structlin.interop.scipy import kaleidoscope_operator

    rng = np.random.default_rng(5)
    tw = sl.random_kaleidoscope(8, 3, kind="orthogonal", dtype=dtype, rng=2)
    A, M = kaleidoscope_operator(tw), sl.kaleidoscope_to_dense(tw)
    assert A.shape == (8, 8) and A.dtype == np.dtype(dtype)
    x, X = _random(rng, 8, dtype), _random(rng, (8, 3), dtype)
    tol = 20 * _tol(dtype)
    np.testing.assert_allclose(A.matvec(x), M @ x, atol=tol)
    np.testing.assert_allclose(A @ X, M @ X, atol=tol)
    np.testing.assert_allclose(A.rmatvec(x), M.conj().T @ x, atol=tol)
    np.testing.assert_allclose(A.H @ X, M.conj().T @ X, atol=tol)
    y = _random(rng, 8, dtype)
    assert abs(np.vdot(y, A @ x) - np.vdot(A.H @ y, x)) <= 50 * _tol(dtype) * 8


def test_kaleidoscope_operator_solves_with_gmres_and_names_bad_twiddles():
    from structlin.interop.scipy import kaleidoscope_operator

    tw = sl.random_kaleidoscope(16, 2, kind="orthogonal", rng=3)
    b = np.arange(16.0)
    x, info = spla.gmres(kaleidoscope_operator(tw), b, rtol=1e-12, atol=0.0)
    assert info == 0
    np.testing.assert_allclose(sl.kaleidoscope_to_dense(tw) @ x, b, atol=1e-8)
    with pytest.raises(ValueError, match="twiddle must have shape"):
        kaleidoscope_operator(np.ones((1, 2, 2, 2, 2)))


# ---- the transforms, circulants and XD-operations -----------------------------------------


def _transform_cases(dtype):
    """(name, operator, dense matrix) for the operators of structlin.fwht, dct, dst,
    circulant_multiply and xd_multiply, in ``dtype``."""
    from structlin.interop.scipy import (
        circulant_operator,
        dct_operator,
        dst_operator,
        fwht_operator,
        xd_operator,
    )

    rng = np.random.default_rng(30)
    n = 8
    eye = np.eye(n)
    cases = [(f"fwht-{nz}", fwht_operator(n, normalize=nz, dtype=dtype),
              scipy.linalg.hadamard(n) / (np.sqrt(n) if nz else 1.0)) for nz in (False, True)]
    for kind, make in (("dct", dct_operator), ("dst", dst_operator)):
        for type_, norm in ((2, None), (3, "ortho"), (4, "backward")):
            dense = getattr(scipy.fft, kind)(eye, type=type_, norm=norm, axis=0)
            cases.append((f"{kind}-{type_}-{norm}", make(n, type_, norm, dtype=dtype), dense))
    c = _random(rng, n, dtype)
    cases.append(("circulant", circulant_operator(c), scipy.linalg.circulant(c)))
    tK, tL, tM = (sl.random_kaleidoscope(n, width, dtype=dtype, rng=s)
                  for s, width in ((1, 2), (2, 1), (3, 1)))
    w = _random(rng, n, dtype)
    K, L, M = (sl.kaleidoscope_to_dense(t) for t in (tK, tL, tM))
    cases.append(("xd", xd_operator(tK, tL, tM, w), K @ np.diag(L @ w) @ M))
    return cases


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_transform_operators_equal_the_dense_matrix(dtype):
    rng = np.random.default_rng(31)
    for name, A, M in _transform_cases(dtype):
        assert A.shape == M.shape and A.dtype == np.dtype(dtype), name
        atol = _tol(dtype) * max(np.abs(M).max(), 1.0) * 20
        x, X = _random(rng, M.shape[1], dtype), _random(rng, (M.shape[1], 3), dtype)
        y, Y = _random(rng, M.shape[0], dtype), _random(rng, (M.shape[0], 2), dtype)
        for got, want in ((A.matvec(x), M @ x), (A.matvec(x[:, None])[:, 0], M @ x),
                          (A @ X, M @ X), (A.rmatvec(y), M.conj().T @ y),
                          (A.H @ Y, M.conj().T @ Y), (A.rmatmat(Y), M.conj().T @ Y),
                          (A.T @ y, M.T @ y)):
            assert got.dtype == np.dtype(dtype), name
            np.testing.assert_allclose(got, want, atol=atol, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_transform_operators_pass_the_dot_test(dtype):
    """<A x, y> == <x, A^H y>."""
    rng = np.random.default_rng(32)
    for name, A, _ in _transform_cases(dtype):
        m, n = A.shape
        x, y = _random(rng, n, dtype), _random(rng, m, dtype)
        lhs, rhs = np.vdot(y, A @ x), np.vdot(A.H @ y, x)
        assert abs(lhs - rhs) <= 50 * _tol(dtype) * max(abs(lhs), 1.0), (name, lhs, rhs)


def test_real_transform_operators_act_on_complex_vectors():
    from structlin.interop.scipy import dct_operator, fwht_operator

    z = np.array([1.0, 2j, -1.0, 0.5 - 1j])
    D = scipy.fft.dct(np.eye(4), type=2, axis=0)
    A = dct_operator(4)
    np.testing.assert_allclose(A @ z, D @ z, atol=1e-12)
    np.testing.assert_allclose(A.H @ z, D.T @ z, atol=1e-12)
    np.testing.assert_allclose(fwht_operator(4).H @ z, scipy.linalg.hadamard(4) @ z, atol=1e-12)


def test_scipy_solvers_on_the_new_operators():
    from structlin.interop.scipy import circulant_operator, dct_operator, xd_operator

    rng = np.random.default_rng(33)
    n = 64
    # a symmetric positive definite circulant: its spectrum 4 + 2 cos(2 pi k / n) > 0
    c = np.zeros(n)
    c[0], c[1], c[-1] = 4.0, 1.0, 1.0
    b = rng.standard_normal(n)
    x, info = spla.cg(circulant_operator(c), b, rtol=1e-12, atol=0.0, maxiter=200)
    assert info == 0
    np.testing.assert_allclose(scipy.linalg.circulant(c) @ x, b, atol=1e-9)
    # the XD-op of a circular convolution by a kernel with no zero in its spectrum
    kernel = np.array([2.0, 0.5, -0.25])
    tK, tL, tM, w = sl.xd_from_conv(kernel, n)
    A = xd_operator(tK, tL, tM, w)
    x, info = spla.gmres(A, b + 0j, rtol=1e-12, atol=0.0, restart=n, maxiter=10)
    assert info == 0
    np.testing.assert_allclose(A @ x, b, atol=1e-9)
    np.testing.assert_allclose(x.real, np.linalg.solve(
        scipy.linalg.circulant(np.r_[kernel, np.zeros(n - 3)]), b), atol=1e-9)
    # least squares on an unnormalized DCT-II: lsqr needs the adjoint
    D = dct_operator(n)
    x = spla.lsqr(D, D @ b, atol=1e-14, btol=1e-14, iter_lim=500)[0]
    np.testing.assert_allclose(x, b, atol=1e-8)


def test_transform_operators_name_their_bad_arguments():
    from structlin.interop.scipy import (
        circulant_operator,
        dct_operator,
        dst_operator,
        fwht_operator,
        xd_operator,
    )

    for make in (fwht_operator, dct_operator, dst_operator):
        with pytest.raises(ValueError, match="n must be a power of two"):
            make(6)
        with pytest.raises(ValueError, match="n must be at least 1"):
            make(0)
        with pytest.raises(TypeError, match="n must be an integer"):
            make(4.0)
        with pytest.raises(TypeError, match="dtype must be one of"):
            make(4, dtype=np.float16)
        with pytest.raises(TypeError, match="like must be None, a NumPy array or a CuPy"):
            make(4, like=[1.0])
        with pytest.raises(ValueError, match="dimension mismatch"):
            make(4) @ np.ones(8)
    with pytest.raises(TypeError, match="normalize must be True or False"):
        fwht_operator(4, normalize=1)
    with pytest.raises(ValueError, match="type must be one of"):
        dct_operator(8, type=1)
    with pytest.raises(ValueError, match="norm must be one of"):
        dst_operator(8, norm="forward ")
    with pytest.raises(ValueError, match="c must have a length n that is a power of two"):
        circulant_operator(np.ones(6))
    with pytest.raises(ValueError, match="c must be 1-d"):
        circulant_operator(np.ones((2, 4)))
    tw = sl.random_kaleidoscope(8, rng=0)
    with pytest.raises(ValueError, match="w"):
        xd_operator(tw, tw, tw, np.ones(4))
    with pytest.raises(ValueError, match="tw_M"):
        xd_operator(tw, tw, sl.random_kaleidoscope(4, rng=0), np.ones(8))
    with pytest.raises(TypeError, match="tw_L"):
        xd_operator(tw, tw.astype(str), tw, np.ones(8))


def test_transpose_of_a_complex_operator_is_the_plain_transpose():
    """A.T is built from the adjoint (A^T x = conj(A^H conj x)) and stays a structlin operator."""
    tw = sl.random_butterfly(8, dtype=np.complex128, rng=12)
    A, B = butterfly_operator(tw), sl.butterfly_to_dense(tw)
    z = _random(np.random.default_rng(13), (8, 2), np.complex128)
    np.testing.assert_allclose(A.T @ z, B.T @ z, atol=1e-12)
    np.testing.assert_allclose(A.T.H @ z, B.conj() @ z, atol=1e-12)
    assert "transpose of butterfly_operator" in repr(A.T)
