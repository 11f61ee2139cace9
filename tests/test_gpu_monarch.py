"""Monarch, order-p Monarch and BTT on CuPy arrays against the NumPy path (needs a GPU)."""

from __future__ import annotations

import numpy as np
import pytest

import structlin as sl
from tests import test_monarch as cpu_tests
from tests.strategies import random_array, tolerance

cupy = pytest.importorskip("cupy")

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cp():
    return pytest.importorskip("cupy")


def _err(a, b):
    b = np.asarray(b)
    return float(np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("s1,s2,batch", [((4, 4, 4), (4, 4, 4), 5), ((2, 35, 33), (5, 3, 14), 70),
                                         ((64, 64, 64), (64, 64, 64), 300)])
def test_gpu_multiply_and_vjp_match_cpu(cp, dt, s1, s2, batch):
    rng = np.random.default_rng(0)
    w1, w2 = random_array(rng, s1, dt), random_array(rng, s2, dt)
    x = random_array(rng, (batch, s1[0] * s1[2]), dt)
    g = random_array(rng, (batch, s2[0] * s2[1]), dt)
    y = sl.monarch_multiply(cp.asarray(w1), cp.asarray(w2), cp.asarray(x))
    assert isinstance(y, cp.ndarray) and y.dtype == dt
    tol = tolerance(dt, x.shape[-1]) * 4
    assert _err(y.get(), sl.monarch_multiply(w1, w2, x)) < tol
    got = sl.monarch_multiply_vjp(cp.asarray(w1), cp.asarray(w2), cp.asarray(x), cp.asarray(g))
    for a, b in zip(got, sl.monarch_multiply_vjp(w1, w2, x, g), strict=True):
        assert _err(a.get(), b) < tol * 16


def test_gpu_order_p_btt_and_projection_match_cpu(cp):
    rng = np.random.default_rng(1)
    fs = [rng.standard_normal((16, 4, 4)) for _ in range(3)]
    x = rng.standard_normal((7, 64))
    y = sl.monarch_order_p_multiply([cp.asarray(f) for f in fs], cp.asarray(x))
    assert _err(y.get(), sl.monarch_order_p_multiply(fs, x)) < 1e-12
    b1, b2 = rng.standard_normal((4, 2, 4, 4)), rng.standard_normal((4, 4, 4, 2))
    y = sl.btt_multiply(cp.asarray(b1), cp.asarray(b2), cp.asarray(rng.standard_normal((3, 16))))
    assert y.shape == (3, 16)
    A = rng.standard_normal((64, 64))
    w1, w2 = sl.monarch_project(cp.asarray(A), nblocks=8)
    c1, c2 = sl.monarch_project(A, nblocks=8)
    e_gpu = np.linalg.norm(A - sl.monarch_to_dense(w1.get(), w2.get()))
    e_cpu = np.linalg.norm(A - sl.monarch_to_dense(c1, c2))
    assert abs(e_gpu - e_cpu) <= 1e-6 * e_cpu


def test_gpu_rejects_numpy_mixed_with_cupy(cp):
    with pytest.raises(TypeError, match=r"w2 is a cupy\.ndarray but w1 is a numpy\.ndarray"):
        sl.monarch_multiply(np.ones((2, 2, 2)), cp.ones((2, 2, 2)), cp.ones(4))


# ------------------------------------------------------------------ tensor cores


def _rounded_monarch(w1, w2, x, precision):
    """The product with every operand rounded as the tensor cores round it, in float64.

    The intermediate ``u = W1 x`` is rounded to float32 and then to the tensor-core format,
    as the GPU does between its two launches.
    """
    from tests.test_monarch import round_operands

    def wide(a):
        a = round_operands(a, precision)
        return a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)

    single = np.complex64 if np.iscomplexobj(x) else np.float32
    k, _q, p = w1.shape
    l, s, r = w2.shape
    b = x.shape[0]
    u = np.einsum("kqp,bkp->bkq", wide(w1), wide(x).reshape(b, k, p)).reshape(b, -1)
    v = wide(u.astype(single)).reshape(b, r, l)
    return np.einsum("lsr,brl->bsl", wide(w2), v).reshape(b, s * l)


def _rel(a, b):
    return float(np.linalg.norm(np.ravel(a - b)) / np.linalg.norm(np.ravel(b)))


@pytest.mark.parametrize("precision,tol", [("tf32", 2e-3), ("bf16", 1.5e-2)])
@pytest.mark.parametrize("dt", [np.float32, np.complex64])
@pytest.mark.parametrize("s1,s2,batch", [((4, 4, 4), (4, 4, 4), 5), ((2, 35, 33), (5, 3, 14), 70),
                                         ((32, 32, 32), (32, 32, 32), 300)])
def test_gpu_tensor_core_product_matches_the_rounded_reference(cp, precision, tol, dt, s1, s2,
                                                               batch):
    rng = np.random.default_rng(2)
    w1, w2 = random_array(rng, s1, dt), random_array(rng, s2, dt)
    x = random_array(rng, (batch, s1[0] * s1[2]), dt)
    y = sl.monarch_multiply(cp.asarray(w1), cp.asarray(w2), cp.asarray(x), precision=precision)
    assert isinstance(y, cp.ndarray) and y.dtype == dt
    y = y.get()
    # the same rounded operands: only the accumulation differs (and a rare intermediate
    # rounded the other way after a last-bit difference of u)
    assert _rel(y, _rounded_monarch(w1, w2, x, precision)) < 1e-4
    exact = sl.monarch_multiply(w1.astype(np.complex128), w2, x) if dt == np.complex64 else \
        sl.monarch_multiply(w1.astype(np.float64), w2, x)
    assert tol / 1000 < _rel(y, exact) < tol


@pytest.mark.parametrize("precision,tol", [("tf32", 4e-3), ("bf16", 3e-2)])
@pytest.mark.parametrize("dt", [np.float32, np.complex64])
def test_gpu_tensor_core_vjp_is_close_to_the_exact_gradients(cp, precision, tol, dt):
    rng = np.random.default_rng(3)
    w1, w2 = random_array(rng, (8, 16, 12), dt), random_array(rng, (16, 10, 8), dt)
    x, g = random_array(rng, (200, 96), dt), random_array(rng, (200, 160), dt)
    wide = np.complex128 if dt == np.complex64 else np.float64
    exact = sl.monarch_multiply_vjp(*(a.astype(wide) for a in (w1, w2, x, g)))
    got = sl.monarch_multiply_vjp(*(cp.asarray(a) for a in (w1, w2, x, g)), precision=precision)
    for a, b in zip(got, exact, strict=True):
        assert a.dtype == dt
        assert tol / 1000 < _rel(a.get(), b) < tol


def test_gpu_tensor_core_precisions_refuse_double_precision(cp):
    w = cp.ones((2, 2, 2))
    with pytest.raises(ValueError, match="needs float32 or complex64 data, got float64"):
        sl.monarch_multiply(w, w, cp.ones(4), precision="tf32")


# ------------------------------------------------------------------ conformance on CuPy
# the CPU suite's classes with xp = cupy (imported as a module, so that pytest does not
# collect the CPU classes a second time here)


class TestGpuMonarchConformance(cpu_tests.TestMonarchConformance):
    xp = cupy


class TestGpuMonarchTf32Conformance(cpu_tests.TestMonarchTf32Conformance):
    """The TF32 tensor-core kernels: operands rounded to 10 mantissa bits (relative error
    about 4e-4), hence the wider tolerance; every structural check is unchanged."""

    xp = cupy
    tol_factor = 100.0


class TestGpuMonarchMicrokernelShapesConformance(cpu_tests.TestMonarchMicrokernelConformance):
    xp = cupy


class TestGpuOrderPConformance(cpu_tests.TestOrderPConformance):
    xp = cupy


class TestGpuBttConformance(cpu_tests.TestBttConformance):
    xp = cupy
