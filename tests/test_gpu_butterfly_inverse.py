"""Butterfly inverse, solve and log-determinant on CuPy arrays (CUDA kernels) against NumPy.

The NumPy path (Numba kernels) is tested against dense references in
``tests/test_butterfly_inverse.py``; here every public function is called with CuPy arrays
and compared with the same call on NumPy arrays, at one-pass and multi-pass sizes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.linalg import LinAlgWarning

import structlin as sl

cupy = pytest.importorskip("cupy")

pytestmark = pytest.mark.gpu

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
SIZES = [(3, 2), (5, 64), (4, 2048), (2, 2**15), (1, 2**17)]


def _tol(dtype):
    return 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11


def _rel_err(got, want):
    got = cupy.asnumpy(got)
    return np.linalg.norm((got - want).ravel()) / max(np.linalg.norm(want.ravel()), 1e-300)


def _twiddle(rng, n, dtype):
    q = sl.random_butterfly(n, kind="orthogonal", dtype=dtype, rng=rng)
    return (q * rng.uniform(0.7, 1.3, size=(*q.shape[:-2], 1, 2))).astype(dtype)


def _random(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,n", SIZES)
def test_solve_on_gpu_matches_numpy(batch, n, dtype, increasing):
    rng = np.random.default_rng(n)
    tw, y = _twiddle(rng, n, dtype), _random(rng, (batch, n), dtype)
    x = sl.butterfly_solve(cupy.asarray(tw), cupy.asarray(y), increasing_stride=increasing)
    assert isinstance(x, cupy.ndarray) and x.dtype == dtype
    assert _rel_err(x, sl.butterfly_solve(tw, y, increasing_stride=increasing)) < _tol(dtype)
    back = sl.butterfly_multiply(cupy.asarray(tw), x, increasing_stride=increasing)
    assert _rel_err(back, y) < _tol(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,n", SIZES)
def test_solve_vjp_on_gpu_matches_numpy(batch, n, dtype):
    rng = np.random.default_rng(n + 1)
    tw, y, g = (_twiddle(rng, n, dtype), _random(rng, (batch, n), dtype),
                _random(rng, (batch, n), dtype))
    gtw, gy = sl.butterfly_solve_vjp(cupy.asarray(tw), cupy.asarray(y), cupy.asarray(g),
                                     transpose=True)
    rtw, ry = sl.butterfly_solve_vjp(tw, y, g, transpose=True)
    assert _rel_err(gy, ry) < _tol(dtype)
    assert _rel_err(gtw, rtw) < _tol(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 256, 2**15, 2**20])
def test_logdet_and_its_vjp_on_gpu_match_numpy(n, dtype):
    rng = np.random.default_rng(n + 2)
    tw = _random(rng, (n.bit_length() - 1, n // 2, 2, 2), dtype)
    sign, logabs = sl.butterfly_logdet(cupy.asarray(tw))
    rsign, rlog = sl.butterfly_logdet(tw)
    assert isinstance(logabs, cupy.ndarray) and sign.dtype == dtype
    assert abs(complex(sign) - complex(rsign)) < _tol(dtype) * 10
    assert abs(float(logabs) - float(rlog)) <= _tol(dtype) * max(1.0, abs(float(rlog)))
    if n <= 2**15:
        grad = sl.butterfly_logdet_vjp(cupy.asarray(tw), 0.5)
        assert _rel_err(grad, sl.butterfly_logdet_vjp(tw, 0.5)) < _tol(dtype) * 100


def test_inverse_on_gpu_matches_numpy():
    rng = np.random.default_rng(3)
    tw = _twiddle(rng, 1024, np.complex64)
    inv, inc = sl.butterfly_inverse(cupy.asarray(tw), increasing_stride=False)
    rinv, rinc = sl.butterfly_inverse(tw, increasing_stride=False)
    assert inc == rinc is True
    assert _rel_err(inv, rinv) < _tol(np.complex64)


def test_singular_nearly_singular_and_nonfinite_on_gpu():
    tw = _twiddle(np.random.default_rng(4), 64, np.float64)
    bad = tw.copy()
    bad[3, 7] = 0
    with pytest.raises(np.linalg.LinAlgError, match=r"block 7 of factor 3"):
        sl.butterfly_solve(cupy.asarray(bad), cupy.ones(64))
    near = tw.copy()
    near[1, 2] = [[1.0, 1.0], [1.0, 1.0 + 2e-16]]
    with pytest.warns(LinAlgWarning, match="block 2 of factor 1"):
        sl.butterfly_inverse(cupy.asarray(near))
    nan = tw.copy()
    nan[5, 0, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"block 0 of factor 5 \(twiddle\[5, 0\]\) contains"):
        sl.butterfly_logdet(cupy.asarray(nan))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.butterfly_solve(cupy.asarray(tw), cupy.ones(64))


def test_mixing_numpy_and_cupy_raises_typeerror():
    tw = _twiddle(np.random.default_rng(5), 8, np.float32)
    with pytest.raises(TypeError, match=r"y is a cupy\.ndarray but twiddle is a numpy\.ndarray"):
        sl.butterfly_solve(tw, cupy.ones(8))


# ------------------------------------------------------------------------- conformance
# Every operator check of the NumPy classes, on CuPy arrays (the module alias keeps pytest
# from collecting the NumPy classes a second time here).

from tests import test_butterfly_inverse as _cpu_inverse  # noqa: E402


@pytest.mark.gpu
class TestGpuButterflySolveConformance(_cpu_inverse.TestButterflySolveConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuButterflySolveDecreasingConformance(
        _cpu_inverse.TestButterflySolveDecreasingConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuButterflySolveTransposeConformance(
        _cpu_inverse.TestButterflySolveTransposeConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuButterflySolveAdjointConformance(_cpu_inverse.TestButterflySolveAdjointConformance):
    xp = cupy
