"""structlin.interop.scipy on CuPy arrays: ``cupyx.scipy.sparse.linalg.LinearOperator`` views.

The tests marked ``gpu`` (skipped without a usable CUDA GPU) build every operator from CuPy
parameters and check it against the dense matrix (products, adjoints, transposes), with the dot
test ``<A x, y> == <x, A^H y>``, and drive cupyx's Krylov solvers with them. The others run on
the CPU: the cases those tests use equal their dense matrices (as SciPy operators), the module
never imports CuPy by itself, and the dispatch is checked with a stand-in for CuPy in
``sys.modules`` (structlin's backend detection looks the module up there): CuPy-typed
parameters give the cupyx operator class, which refuses NumPy vectors, and a SciPy operator
refuses CuPy vectors, naming the argument before any product.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import scipy.linalg

import structlin as sl
import structlin.interop.scipy as ss
from tests.test_interop_scipy import DTYPES, _random, _tol

ROOT = Path(__file__).resolve().parents[1]
#: the operators without array parameters: the kind of their vectors is given by ``like=``
LIKE = {"fwht_operator", "dct_operator", "dst_operator"}


def _specs(dtype):
    """``(constructor, args, kwargs, dense matrix)`` for every operator, in ``dtype``, with
    NumPy parameters (the GPU tests move every array among them to the device)."""
    from structlin.cauchy import cauchy_to_dense
    from structlin.ldr import ldr_to_dense

    rng = np.random.default_rng(40)
    tw = sl.random_butterfly(16, kind="orthogonal", dtype=dtype, rng=1)
    B = sl.butterfly_to_dense(tw)
    w1, w2 = _random(rng, (2, 3, 3), dtype), _random(rng, (3, 4, 2), dtype)
    mask = sl.flat_block_butterfly_mask(8, 16, 2)
    blocks = _random(rng, (int(mask.sum()), 2, 2), dtype)
    U, V = _random(rng, (8, 2), dtype), _random(rng, (16, 2), dtype)
    k = _random(rng, (3, 4), dtype)
    tk = sl.random_kaleidoscope(8, 2, kind="orthogonal", dtype=dtype, rng=2)
    c, r = _random(rng, 5, dtype), _random(rng, 3, dtype)
    xn, yn = _random(rng, 5, dtype), _random(rng, 4, dtype) + 3.0
    G, H = _random(rng, (2, 8), dtype), _random(rng, (2, 8), dtype)
    s, t = _random(rng, 8, dtype), _random(rng, 8, dtype) + 5.0
    cc = _random(rng, 8, dtype)
    tK, tL, tM = (sl.random_kaleidoscope(8, dtype=dtype, rng=q) for q in (3, 4, 5))
    w = _random(rng, 8, dtype)
    K, L, M = (sl.kaleidoscope_to_dense(q) for q in (tK, tL, tM))
    eye = np.eye(8)
    return [
        (ss.butterfly_operator, (tw,), {}, B),
        (ss.butterfly_inverse_operator, (tw,), {"increasing_stride": False},
         np.linalg.inv(sl.butterfly_to_dense(tw, increasing_stride=False))),
        (ss.monarch_operator, (w1, w2), {}, sl.monarch_to_dense(w1, w2)),
        (ss.pixelfly_operator, (blocks, mask, U, V), {},
         sl.pixelfly_to_dense(blocks, mask, U, V)),
        (ss.fftconv_operator, (k, 6), {"causal": False},
         scipy.linalg.block_diag(*sl.fftconv_to_dense(k, 6, causal=False))),
        (ss.kaleidoscope_operator, (tk,), {}, sl.kaleidoscope_to_dense(tk)),
        (ss.toeplitz_operator, ((c, r),), {}, scipy.linalg.toeplitz(c, r)),
        (ss.hankel_operator, ((c, r),), {}, scipy.linalg.hankel(c, r)),
        (ss.cauchy_operator, (xn, yn), {}, cauchy_to_dense(xn, yn)),
        (ss.ldr_operator, (G, H, "toeplitz"), {}, ldr_to_dense(G, H, "toeplitz")),
        (ss.ldr_operator, (G, H, "cauchy"), {"s": s, "t": t},
         ldr_to_dense(G, H, "cauchy", s=s, t=t)),
        (ss.fwht_operator, (8,), {"normalize": True, "dtype": dtype},
         scipy.linalg.hadamard(8) / np.sqrt(8)),
        (ss.dct_operator, (8, 2, "ortho"), {"dtype": dtype},
         scipy.fft.dct(eye, type=2, norm="ortho", axis=0)),
        (ss.dst_operator, (8, 4), {"dtype": dtype}, scipy.fft.dst(eye, type=4, axis=0)),
        (ss.circulant_operator, (cc,), {}, scipy.linalg.circulant(cc)),
        (ss.xd_operator, (tK, tL, tM, w), {}, K @ np.diag(L @ w) @ M),
    ]


def _ids(specs):
    return [f"{make.__name__}-{i}" for i, (make, *_) in enumerate(specs)]


def test_the_cases_cover_every_operator():
    assert {make.__name__ for make, *_ in _specs(np.float64)} == set(ss.__all__)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128], ids=lambda d: np.dtype(d).name)
def test_the_cases_equal_their_dense_matrices_as_scipy_operators(dtype):
    """The references of the GPU tests, checked where they can be: on NumPy parameters."""
    for make, args, kwargs, M in _specs(dtype):
        A = make(*args, **kwargs)
        m, n = M.shape
        atol = 20 * _tol(dtype) * max(np.abs(M).max(), 1.0)
        assert A.shape == M.shape and A.dtype == np.dtype(dtype), make.__name__
        np.testing.assert_allclose(A @ np.eye(n, dtype=dtype), M, atol=atol,
                                   err_msg=make.__name__)
        np.testing.assert_allclose(A.H @ np.eye(m, dtype=dtype), M.conj().T, atol=atol,
                                   err_msg=make.__name__)


def test_importing_and_using_the_operators_imports_no_cupy():
    """CuPy is installed in some environments: the SciPy path must still never import it."""
    code = (
        "import sys, numpy as np, structlin\n"
        "from structlin.interop import scipy as ss\n"
        "A = ss.butterfly_operator(structlin.random_butterfly(8, rng=0))\n"
        "F = ss.fwht_operator(8)\n"
        "A @ np.ones(8), A.H @ np.ones((8, 2)), F @ np.ones(8), A.T @ np.ones(8)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('cupy', 'cupyx'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


# ---- the dispatch, with a stand-in for CuPy ---------------------------------------------------

#: what structlin's backend detection takes for ``cupy.ndarray`` while the stand-in is installed
FakeCupyArray = type("ndarray", (np.ndarray,), {"__module__": "cupy"})


class FakeCupyxLinearOperator(ss.LinearOperator):
    """The stand-in for ``cupyx.scipy.sparse.linalg.LinearOperator`` (SciPy's interface)."""


@pytest.fixture
def fake_cupy(monkeypatch):
    """Install a module ``cupy`` whose ``ndarray`` is :data:`FakeCupyArray` (NumPy functions
    for what the constructors call on it) and a ``cupyx.scipy.sparse.linalg`` whose
    ``LinearOperator`` is :class:`FakeCupyxLinearOperator`; the cached cupyx operator class is
    dropped before and after."""
    cupy = types.ModuleType("cupy")
    cupy.ndarray = FakeCupyArray
    for name in ("asarray", "ascontiguousarray", "conj", "concatenate", "ravel", "swapaxes",
                 "zeros_like"):
        setattr(cupy, name, getattr(np, name))
    cupy.asnumpy = np.asarray
    cupyx_linalg = types.ModuleType("cupyx.scipy.sparse.linalg")
    cupyx_linalg.LinearOperator = FakeCupyxLinearOperator
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx.scipy.sparse.linalg", cupyx_linalg)
    ss._cupy_operator_class.cache_clear()
    yield lambda a: np.asarray(a).view(FakeCupyArray)
    ss._cupy_operator_class.cache_clear()


def test_a_scipy_operator_refuses_cupy_vectors_before_any_product(fake_cupy, monkeypatch):
    calls = []
    real = ss.butterfly_multiply
    monkeypatch.setattr(ss, "butterfly_multiply",
                        lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    A = ss.butterfly_operator(sl.random_butterfly(8, rng=0))
    x, X = fake_cupy(np.ones(8)), fake_cupy(np.ones((8, 2)))
    attempts = [
        ("x", lambda: A.matvec(x)), ("x", lambda: A.rmatvec(x)), ("X", lambda: A.matmat(X)),
        ("X", lambda: A.rmatmat(X)), ("x", lambda: A @ x), ("x", lambda: A @ X),
        ("x", lambda: A(x)), ("x", lambda: A.H @ x), ("x", lambda: A.T @ x),
    ]
    for name, attempt in attempts:
        with pytest.raises(TypeError, match=rf"^{name} is a cupy\.ndarray, but the parameters "
                           rf"of this .*butterfly_operator are NumPy arrays .*"
                           rf"cupy\.asnumpy\({name}\)"):
            attempt()
    assert calls == []
    A @ np.ones(8)  # the spy is in the product's path
    assert len(calls) == 1


def _fake_cases(to_gpu):
    rng = np.random.default_rng(41)
    tw = to_gpu(sl.random_butterfly(8, rng=0))
    tk = to_gpu(sl.random_kaleidoscope(8, 2, rng=1))
    c, r = to_gpu(rng.standard_normal(5)), to_gpu(rng.standard_normal(3))
    mask = sl.flat_block_butterfly_mask(8, 8, 2)
    blocks = to_gpu(rng.standard_normal((int(mask.sum()), 2, 2)))
    U, V = to_gpu(rng.standard_normal((8, 1))), to_gpu(rng.standard_normal((8, 1)))
    return [
        (ss.butterfly_operator(tw), (8, 8)),
        (ss.kaleidoscope_operator(tk), (8, 8)),
        (ss.toeplitz_operator((c, r)), (5, 3)),
        (ss.hankel_operator(c), (5, 5)),
        (ss.pixelfly_operator(blocks, to_gpu(mask), U, V), (8, 8)),
        (ss.fwht_operator(8, like=to_gpu(np.zeros(0))), (8, 8)),
    ]


def test_cupy_parameters_give_the_cupyx_operator_which_refuses_numpy_vectors(fake_cupy):
    cls = ss._cupy_operator_class()
    assert issubclass(cls, FakeCupyxLinearOperator) and cls._on_gpu
    for A, shape in _fake_cases(fake_cupy):
        name = A._name
        assert type(A) is cls and A.shape == shape, name
        assert type(A.H) is cls and type(A.T) is cls and A.H.shape == shape[::-1], name
        m, n = shape
        for label, method, vector in (("x", A.dot, np.ones(n)), ("x", A.rmatvec, np.ones(m)),
                                      ("X", A.matmat, np.ones((n, 2))), ("x", A.H.dot, np.ones(m))):
            with pytest.raises(TypeError, match=rf"^{label} is a numpy\.ndarray, but the "
                               rf"parameters of this .*{name} are CuPy arrays .*"
                               rf"cupy\.asarray\({label}\)"):
                method(vector)
        with pytest.raises(TypeError, match="x is a list"):
            A @ ([1.0] * n)


def test_numpy_and_cupy_parameters_mixed_are_refused_naming_both(fake_cupy):
    rng = np.random.default_rng(42)
    w1, w2 = rng.standard_normal((2, 3, 3)), rng.standard_normal((3, 4, 2))
    mask = sl.flat_block_butterfly_mask(8, 8, 2)
    blocks = rng.standard_normal((int(mask.sum()), 2, 2))
    tw = sl.random_kaleidoscope(8, rng=0)
    G = rng.standard_normal((2, 8))
    g = fake_cupy
    for attempt, first, second in (
        (lambda: ss.monarch_operator(w1, g(w2)), "w2", "w1"),
        (lambda: ss.pixelfly_operator(g(blocks), mask, g(np.ones((8, 1))), g(np.ones((8, 1)))),
         "blocks", "mask"),
        (lambda: ss.toeplitz_operator((np.ones(3), g(np.ones(2)))), "r", "c"),
        (lambda: ss.cauchy_operator(np.ones(2), g(np.zeros(2))), "y_nodes", "x_nodes"),
        (lambda: ss.xd_operator(g(tw), tw, tw, np.ones(8)), "tw_K", "tw_L"),
        (lambda: ss.ldr_operator(G, g(G), "toeplitz"), "H", "G"),
    ):
        with pytest.raises(TypeError, match=rf"{first} is a cupy\.ndarray but {second} is a "
                           r"numpy\.ndarray: all array arguments must live on the same device"):
            attempt()


def test_like_must_be_an_array_of_either_kind(fake_cupy):
    assert type(ss.fwht_operator(4, like=np.zeros(1))) is ss._StructuredOperator
    assert type(ss.fwht_operator(4)) is ss._StructuredOperator
    assert type(ss.fwht_operator(4, like=fake_cupy(np.zeros(1)))) is ss._cupy_operator_class()
    with pytest.raises(TypeError, match="like must be None, a NumPy array or a CuPy array"):
        ss.fwht_operator(4, like=3.0)


# ---- on the GPU -------------------------------------------------------------------------------


def _to_device(cupy, value):
    if isinstance(value, np.ndarray):
        return cupy.asarray(value)
    if isinstance(value, tuple):
        return tuple(_to_device(cupy, v) for v in value)
    return value


def _cupy_operator(cupy, make, args, kwargs):
    kwargs = {k: _to_device(cupy, v) for k, v in kwargs.items()}
    if make.__name__ in LIKE:
        kwargs["like"] = cupy.empty(0)
    return make(*_to_device(cupy, args), **kwargs)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_cupy_operators_equal_the_dense_matrix_and_pass_the_dot_test(dtype):
    cupy = pytest.importorskip("cupy")
    cla = pytest.importorskip("cupyx.scipy.sparse.linalg")
    rng = np.random.default_rng(43)
    for make, args, kwargs, M in _specs(dtype):
        name = make.__name__
        A = _cupy_operator(cupy, make, args, kwargs)
        assert isinstance(A, cla.LinearOperator), name
        assert A.shape == M.shape and A.dtype == np.dtype(dtype), name
        m, n = M.shape
        atol = 20 * _tol(dtype) * max(np.abs(M).max(), 1.0)
        x, X = _random(rng, n, dtype), _random(rng, (n, 3), dtype)
        y, Y = _random(rng, m, dtype), _random(rng, (m, 2), dtype)
        gx, gX, gy, gY = (cupy.asarray(a) for a in (x, X, y, Y))
        Mh = M.conj().T
        for got, want in ((A.matvec(gx), M @ x), (A.matvec(gx[:, None])[:, 0], M @ x),
                          (A @ gX, M @ X), (A.rmatvec(gy), Mh @ y), (A.H @ gY, Mh @ Y),
                          (A.rmatmat(gY), Mh @ Y), (A.T @ gy, M.T @ y)):
            assert isinstance(got, cupy.ndarray) and got.dtype == np.dtype(dtype), name
            np.testing.assert_allclose(cupy.asnumpy(got), want, atol=atol, err_msg=name)
        lhs = complex(cupy.vdot(gy, A @ gx))
        rhs = complex(cupy.vdot(A.H @ gy, gx))
        assert abs(lhs - rhs) <= 50 * _tol(dtype) * max(abs(lhs), 1.0), (name, lhs, rhs)


@pytest.mark.gpu
def test_cupyx_solvers_run_on_cupy_operators():
    cupy = pytest.importorskip("cupy")
    cla = pytest.importorskip("cupyx.scipy.sparse.linalg")
    rng = np.random.default_rng(44)
    n = 64
    b = rng.standard_normal(n)
    c = np.zeros(n)
    c[0], c[1], c[-1] = 4.0, 1.0, 1.0  # symmetric positive definite circulant
    x, info = cla.cg(ss.circulant_operator(cupy.asarray(c)), cupy.asarray(b), rtol=1e-12,
                     maxiter=200)
    assert info == 0
    np.testing.assert_allclose(scipy.linalg.circulant(c) @ cupy.asnumpy(x), b, atol=1e-9)
    tw = sl.random_butterfly(n, kind="orthogonal", rng=5)
    x, info = cla.gmres(ss.butterfly_operator(cupy.asarray(tw)), cupy.asarray(b), rtol=1e-12,
                        restart=n, maxiter=200)
    assert info == 0
    np.testing.assert_allclose(cupy.asnumpy(x), sl.butterfly_solve(tw, b), atol=1e-9)
    w1, w2 = rng.standard_normal((2, 3, 3)), rng.standard_normal((3, 4, 2))
    rhs = rng.standard_normal(12)
    x = cla.lsmr(ss.monarch_operator(cupy.asarray(w1), cupy.asarray(w2)), cupy.asarray(rhs),
                 atol=1e-14, btol=1e-14, maxiter=500)[0]
    expected = np.linalg.lstsq(sl.monarch_to_dense(w1, w2), rhs, rcond=None)[0]
    np.testing.assert_allclose(cupy.asnumpy(x), expected, atol=1e-8)


@pytest.mark.gpu
def test_vectors_of_the_other_kind_are_refused_on_the_gpu():
    cupy = pytest.importorskip("cupy")
    tw = sl.random_butterfly(8, rng=6)
    on_gpu, on_cpu = ss.butterfly_operator(cupy.asarray(tw)), ss.butterfly_operator(tw)
    with pytest.raises(TypeError, match=r"x is a numpy\.ndarray.*cupy\.asarray\(x\)"):
        on_gpu @ np.ones(8)
    with pytest.raises(TypeError, match=r"x is a cupy\.ndarray.*cupy\.asnumpy\(x\)"):
        on_cpu @ cupy.ones(8)
    with pytest.raises(TypeError, match=r"w2 is a cupy\.ndarray but w1 is a numpy\.ndarray"):
        ss.monarch_operator(np.ones((2, 3, 3)), cupy.ones((3, 4, 2)))


@pytest.mark.gpu
def test_tensor_core_precision_on_cupy_operators():
    """precision= reaches the CUDA kernels: float32 products within the format's rounding."""
    cupy = pytest.importorskip("cupy")
    rng = np.random.default_rng(45)
    w1 = rng.standard_normal((4, 16, 16)).astype(np.float32)
    w2 = rng.standard_normal((4, 16, 16)).astype(np.float32)
    k = rng.standard_normal((2, 32)).astype(np.float32)
    cases = [(ss.monarch_operator(cupy.asarray(w1), cupy.asarray(w2), precision="tf32"),
              sl.monarch_to_dense(w1.astype(np.float64), w2.astype(np.float64))),
             (ss.fftconv_operator(cupy.asarray(k), 64, precision="bf16"),
              scipy.linalg.block_diag(*sl.fftconv_to_dense(k.astype(np.float64), 64)))]
    for A, M in cases:
        x = rng.standard_normal(M.shape[1]).astype(np.float32)
        y = rng.standard_normal(M.shape[0]).astype(np.float32)
        for got, want in ((A @ cupy.asarray(x), M @ x), (A.H @ cupy.asarray(y), M.T @ y)):
            err = np.linalg.norm(cupy.asnumpy(got) - want) / np.linalg.norm(want)
            assert err < 3e-2, err
