"""The CUDA path of butterfly_factorize against the NumPy (Numba) path; butterfly_fit refuses CuPy.

The kernel's indexing is also checked without a GPU, through the host shim, in
``tests/test_gpu_compile_butterfly_factorization.py``; these tests need a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

import structlin as sl
from tests.strategies import random_array, tolerance

cupy = pytest.importorskip("cupy")

pytestmark = pytest.mark.gpu

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 16, 256, 2048])
@pytest.mark.parametrize("inc", [True, False])
def test_cupy_factorization_of_a_butterfly_is_exact_and_matches_numpy(dt, n, inc):
    A = sl.butterfly_to_dense(sl.random_butterfly(n, dtype=dt, rng=n), increasing_stride=inc)
    tw_gpu, err_gpu = sl.butterfly_factorize(cupy.asarray(A), increasing_stride=inc)
    tw_cpu, err_cpu = sl.butterfly_factorize(A, increasing_stride=inc)
    assert isinstance(tw_gpu, cupy.ndarray) and tw_gpu.dtype == dt
    x = random_array(np.random.default_rng(0), (3, n), dt)
    y_gpu = sl.butterfly_multiply(cupy.asnumpy(tw_gpu), x, increasing_stride=inc)
    y_cpu = sl.butterfly_multiply(tw_cpu, x, increasing_stride=inc)
    tol = tolerance(dt, n) * 10
    assert np.abs(y_gpu - y_cpu).max() <= tol * max(np.abs(y_cpu).max(), 1.0)
    assert err_gpu <= tol and err_cpu <= tol


@pytest.mark.parametrize("dt", DTYPES)
def test_cupy_reported_error_matches_numpy_on_a_random_matrix(dt):
    A = random_array(np.random.default_rng(1), (128, 128), dt)
    err_gpu = sl.butterfly_factorize(cupy.asarray(A)).relative_error
    err_cpu = sl.butterfly_factorize(A).relative_error
    assert err_gpu == pytest.approx(err_cpu, rel=tolerance(dt, 128) * 10)


def test_cupy_nan_is_rejected():
    A = cupy.eye(4)
    A[0, 1] = cupy.nan
    with pytest.raises(ValueError, match="A must be finite"):
        sl.butterfly_factorize(A)


def test_fit_refuses_cupy_with_a_clear_type_error():
    with pytest.raises(TypeError, match=r"butterfly_fit runs on the CPU.*cupy\.asnumpy"):
        sl.butterfly_fit(cupy.eye(4))
