"""The closed-form butterflies on CuPy arrays against SciPy (CUDA pre/post kernels + butterfly).

Every public function of :mod:`structlin.dft_hadamard`, :mod:`structlin.dct_dst` and
:mod:`structlin.circulant` with CuPy input: the result is a CuPy array equal to the CPU
reference (``scipy.fft``, ``scipy.linalg``), VJPs equal the CPU VJPs, and NumPy mixed with CuPy
is a TypeError. The ``TestGpu*`` classes run every operator check of the CPU conformance classes
(:mod:`tests.test_butterfly_special`) on CuPy arrays, batch isolation of packed real rows
included.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.linalg

import structlin as sl
from tests import test_butterfly_special as cpu_tests

cupy = pytest.importorskip("cupy")

pytestmark = pytest.mark.gpu

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def _random(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _tol(dtype):
    return 2e-5 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11


def _rel(got, want):
    assert isinstance(got, cupy.ndarray)
    got = cupy.asnumpy(got)
    return np.linalg.norm((got - want).ravel()) / max(np.linalg.norm(want.ravel()), 1e-300)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("type", [2, 3, 4])
@pytest.mark.parametrize("kind", ["dct", "dst"])
@pytest.mark.parametrize("norm", [None, "ortho"])
@pytest.mark.parametrize("shape", [(1,), (3, 2), (5, 64), (2, 3, 1024), (4, 2**15)])
def test_transform_on_gpu_equals_scipy(shape, norm, kind, type, dt):
    rng = np.random.default_rng(sum(shape) + type)
    x = _random(rng, shape, dt)
    y = getattr(sl, kind)(cupy.asarray(x), type, norm)
    assert y.dtype == dt and y.shape == x.shape
    assert _rel(y, getattr(scipy.fft, kind)(x, type, norm=norm)) < _tol(dt)
    g = _random(rng, shape, dt)
    gx = getattr(sl, f"{kind}_vjp")(cupy.asarray(x), cupy.asarray(g), type, norm)
    assert _rel(gx, getattr(sl, f"{kind}_vjp")(x, g, type, norm)) < _tol(dt)


@pytest.mark.parametrize("dt", [np.complex64, np.complex128])
@pytest.mark.parametrize("n", [1, 8, 4096])
def test_dft_butterfly_on_gpu_equals_numpy_fft(n, dt):
    x = _random(np.random.default_rng(n), (7, n), dt)
    p = sl.bit_reversal_permutation(n)
    y = sl.butterfly_multiply(cupy.asarray(sl.butterfly_dft(n, dtype=dt)), cupy.asarray(x[:, p]))
    assert _rel(y, np.fft.fft(x)) < _tol(dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_pieces_vjp_on_gpu_equals_cpu(dt):
    rng = np.random.default_rng(1)
    pieces = sl.butterfly_dst(64, 4, "ortho")
    x = _random(rng, (5, 64), dt)
    g = _random(rng, (5, 64), dt)
    y = sl.dct_butterfly_multiply(pieces, cupy.asarray(x))
    assert _rel(y, sl.dct_butterfly_multiply(pieces, x)) < _tol(dt)
    gtw, gx = sl.dct_butterfly_multiply_vjp(pieces, cupy.asarray(x), cupy.asarray(g))
    gtw_c, gx_c = sl.dct_butterfly_multiply_vjp(pieces, x, g)
    assert _rel(gtw, gtw_c) < _tol(dt) * 10 and _rel(gx, gx_c) < _tol(dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("n", [1, 16, 2048])
def test_circulant_and_toeplitz_on_gpu_equal_scipy(n, dt):
    rng = np.random.default_rng(n)
    c = _random(rng, (n,), dt)
    x = _random(rng, (3, n), dt)
    g = _random(rng, (3, n), dt)
    y = sl.circulant_multiply(cupy.asarray(c), cupy.asarray(x))
    assert _rel(y, x @ scipy.linalg.circulant(c).T) < _tol(dt) * 10
    gc, gx = sl.circulant_multiply_vjp(cupy.asarray(c), cupy.asarray(x), cupy.asarray(g))
    gc_c, gx_c = sl.circulant_multiply_vjp(c, x, g)
    assert _rel(gc, gc_c) < _tol(dt) * 10 and _rel(gx, gx_c) < _tol(dt) * 10
    m = max(1, n - 3)
    col, row = c[:m], _random(rng, (m,), dt)
    y = sl.toeplitz_multiply(cupy.asarray(col), cupy.asarray(row), cupy.asarray(x[:, :m]))
    assert _rel(y, x[:, :m] @ scipy.linalg.toeplitz(col, row).T) < _tol(dt) * 10


def test_numpy_mixed_with_cupy_is_a_type_error():
    with pytest.raises(TypeError, match=r"grad is a cupy\.ndarray but x is a numpy\.ndarray"):
        sl.dct_vjp(np.ones(8), cupy.ones(8))
    with pytest.raises(TypeError, match=r"c is a cupy\.ndarray"):
        sl.circulant_multiply(cupy.ones(4), np.ones(4))


# ------------------------------------------------- the CPU conformance classes, on CuPy arrays


class TestGpuDct(cpu_tests.TestDctConformance):
    xp = cupy


class TestGpuDctOrtho(cpu_tests.TestDctOrthoConformance):
    xp = cupy


class TestGpuDctType3(cpu_tests.TestDctType3Conformance):
    xp = cupy


class TestGpuDctType3Ortho(cpu_tests.TestDctType3OrthoConformance):
    xp = cupy


class TestGpuDctType4(cpu_tests.TestDctType4Conformance):
    xp = cupy


class TestGpuDctType4Ortho(cpu_tests.TestDctType4OrthoConformance):
    xp = cupy


class TestGpuDst(cpu_tests.TestDstConformance):
    xp = cupy


class TestGpuDstOrtho(cpu_tests.TestDstOrthoConformance):
    xp = cupy


class TestGpuDstType3(cpu_tests.TestDstType3Conformance):
    xp = cupy


class TestGpuDstType3Ortho(cpu_tests.TestDstType3OrthoConformance):
    xp = cupy


class TestGpuDstType4(cpu_tests.TestDstType4Conformance):
    xp = cupy


class TestGpuDstType4Ortho(cpu_tests.TestDstType4OrthoConformance):
    xp = cupy


class TestGpuDctButterflyMultiply(cpu_tests.TestDctButterflyMultiplyConformance):
    xp = cupy


class TestGpuDctButterflyMultiplyType2(cpu_tests.TestDctButterflyMultiplyType2Conformance):
    xp = cupy


class TestGpuDctButterflyMultiplyType3(cpu_tests.TestDctButterflyMultiplyType3Conformance):
    xp = cupy


class TestGpuCirculant(cpu_tests.TestCirculantConformance):
    xp = cupy


class TestGpuToeplitz(cpu_tests.TestToeplitzConformance):
    xp = cupy


class TestGpuToeplitzSize1(cpu_tests.TestToeplitzSize1Conformance):
    xp = cupy


@pytest.mark.parametrize("name", sorted(cpu_tests.PACKED))
def test_nonfinite_row_leaves_its_packed_partner_finite_on_gpu(name):
    x = np.ones((5, 8))
    x[2, 1] = np.nan
    y = cupy.asnumpy(cpu_tests.PACKED[name](cupy.asarray(x)))
    np.testing.assert_array_equal(np.isnan(y).any(axis=1), [False, False, True, False, False])
