"""Pixelfly on CuPy arrays: the CUDA kernels against the NumPy path and the dense reference.

Marked ``gpu``: skipped without a usable CUDA device. Covers every dtype, block sizes below and
above the kernels' tile widths (64 columns, 32-wide reduction chunks), partial batch tiles,
block rows without blocks, the VJP, the projection, and NumPy/CuPy mixing.
"""

from __future__ import annotations

import numpy as np
import pytest

import structlin as sl
from tests import test_pixelfly as cpu_tests

cupy = pytest.importorskip("cupy")

pytestmark = pytest.mark.gpu

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
# (n_out, n_in, block, n_factors, batch)
SHAPES = [(8, 8, 2, 1, 3), (64, 32, 8, 2, 300), (256, 256, 32, 3, 1025), (160, 80, 80, 0, 7),
          (4096, 4096, 32, 6, 64)]


def _random(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return (a / np.sqrt(2)).astype(dtype)


def _tol(dtype):
    return 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11


def _rel(a, b):
    a = cupy.asnumpy(a) if isinstance(a, cupy.ndarray) else a
    return np.linalg.norm((a - b).ravel()) / max(np.linalg.norm(np.ravel(b)), 1e-300)


def _problem(shape, dtype, rank=3):
    n_out, n_in, bs, nf, batch = shape
    rng = np.random.default_rng(n_out + bs)
    mask = sl.flat_block_butterfly_mask(n_out, n_in, bs, nf)
    blocks = _random(rng, (int(mask.sum()), bs, bs), dtype)
    U = _random(rng, (n_out, rank), dtype)
    V = _random(rng, (n_in, rank), dtype)
    x = _random(rng, (batch, n_in), dtype)
    g = _random(rng, (batch, n_out), dtype)
    return mask, blocks, U, V, x, g


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_cupy_multiply_and_vjp_match_numpy(shape, dtype):
    mask, blocks, U, V, x, g = _problem(shape, dtype)
    dev = [cupy.asarray(a) for a in (blocks, mask, U, V, x)]
    y = sl.pixelfly_multiply(*dev)
    assert isinstance(y, cupy.ndarray) and y.dtype == dtype
    assert _rel(y, sl.pixelfly_multiply(blocks, mask, U, V, x)) < _tol(dtype)
    grads = sl.pixelfly_multiply_vjp(*dev, cupy.asarray(g))
    for got, want in zip(grads, sl.pixelfly_multiply_vjp(blocks, mask, U, V, x, g), strict=True):
        assert isinstance(got, cupy.ndarray) and got.dtype == want.dtype
        assert _rel(got, want) < _tol(dtype) * 10


def test_cupy_multiply_matches_dense_and_leaves_inputs():
    mask, blocks, U, V, x, _ = _problem((64, 32, 8, 2, 300), np.float64)
    x_gpu = cupy.asarray(x)
    y = sl.pixelfly_multiply(cupy.asarray(blocks), cupy.asarray(mask), cupy.asarray(U),
                             cupy.asarray(V), x_gpu)
    assert _rel(y, x @ sl.pixelfly_to_dense(blocks, mask, U, V).T) < 1e-12
    assert np.array_equal(cupy.asnumpy(x_gpu), x)


def test_cupy_projection_matches_numpy():
    rng = np.random.default_rng(0)
    mask = sl.flat_block_butterfly_mask(32, 32, 4, 1)
    A = rng.standard_normal((32, 32))
    *_, e_cpu = sl.pixelfly_project(A, mask, 2, max_iter=20, tol=0)
    *_, e_gpu = sl.pixelfly_project(cupy.asarray(A), cupy.asarray(mask), 2, max_iter=20, tol=0)
    np.testing.assert_allclose(e_gpu, e_cpu, rtol=1e-8)


def test_mixing_numpy_and_cupy_raises_type_error():
    mask = np.eye(2, dtype=bool)
    with pytest.raises(TypeError, match=r"cupy\.ndarray"):
        sl.pixelfly_multiply(np.ones((2, 2, 2)), mask, np.ones((4, 1)), np.ones((4, 1)),
                             cupy.ones((3, 4)))


class TestGpuPixelflyConformance(cpu_tests.TestPixelflyConformance):
    """The CPU suite's conformance checks on CuPy arrays (the mask, host metadata, too)."""

    xp = cupy
