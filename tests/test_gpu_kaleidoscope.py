"""K-matrix product and VJP on CuPy arrays (needs a GPU): the one-launch kernel
(``kaleidoscope_rows``) and the butterfly-by-butterfly fallback against the NumPy path."""

from __future__ import annotations

import numpy as np
import pytest

import structlin as sl
from tests import test_kaleidoscope as cpu_tests
from tests.strategies import random_array, tolerance

cupy = pytest.importorskip("cupy")

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize(("n", "width", "batch"),
                         [(2, 1, 3), (64, 2, 37), (1024, 1, 300), (16384, 1, 5), (32768, 1, 3)])
def test_gpu_product_and_vjp_match_cpu(dtype, n, width, batch):
    """n = 16384 float32 is the longest row of the one-launch kernel; 32768 (and complex128
    from 8192) take the fallback."""
    rng = np.random.default_rng(n + width)
    tw = sl.random_kaleidoscope(n, width, dtype=dtype, rng=rng)
    x = random_array(rng, (batch, n), dtype)
    g = random_array(rng, (batch, n), dtype)
    y = sl.kaleidoscope_multiply(cupy.asarray(tw), cupy.asarray(x))
    assert isinstance(y, cupy.ndarray) and y.dtype == dtype
    ref = sl.kaleidoscope_multiply(tw, x)
    tol = 10 * tolerance(dtype, n)
    assert np.linalg.norm(cupy.asnumpy(y) - ref) <= tol * np.linalg.norm(ref)
    gtw, gx = sl.kaleidoscope_multiply_vjp(cupy.asarray(tw), cupy.asarray(x), cupy.asarray(g))
    gtw_ref, gx_ref = sl.kaleidoscope_multiply_vjp(tw, x, g)
    assert np.linalg.norm(cupy.asnumpy(gx) - gx_ref) <= tol * np.linalg.norm(gx_ref)
    assert np.linalg.norm(cupy.asnumpy(gtw) - gtw_ref) <= tol * np.linalg.norm(gtw_ref)


# the CPU suite's classes with xp = cupy (imported as a module, so that pytest does not
# collect the CPU classes a second time here)


class TestGpuKaleidoscopeConformance(cpu_tests.TestKaleidoscopeConformance):
    xp = cupy


class TestGpuKaleidoscopeWidth3Conformance(cpu_tests.TestKaleidoscopeWidth3Conformance):
    xp = cupy


class TestGpuKaleidoscopeSmallConformance(cpu_tests.TestKaleidoscopeFallbackConformance):
    xp = cupy


def test_gpu_fit_runs_the_products_on_the_device_and_matches_the_host_fit():
    F = np.fft.fft(np.eye(8))
    host = sl.kaleidoscope_fit(F, 1, restarts=2, maxiter=300, rng=0)
    dev = sl.kaleidoscope_fit(cupy.asarray(F), 1, restarts=2, maxiter=300, rng=0)
    assert isinstance(dev.twiddle, cupy.ndarray) and dev.twiddle.dtype == np.complex128
    assert dev.success and host.success
    P = np.eye(64)[np.random.default_rng(0).permutation(64)]
    fit = sl.kaleidoscope_fit(cupy.asarray(P), 1, restarts=1, maxiter=10, rng=0)
    assert fit.error < 1e-12 and isinstance(fit.twiddle, cupy.ndarray)
