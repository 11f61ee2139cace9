"""CUDA butterfly and Walsh–Hadamard kernels against self-contained NumPy references.

These call the low-level launchers (:mod:`structlin.gpu.butterfly`, :mod:`structlin.gpu.hadamard`)
directly. Sizes cover the one-pass path, the multi-pass path (``n = 2**15, 2**17``, and
``2**20`` for the transform), several rows per tile, ``batch = 0`` and ``n = 1``.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import scipy.linalg

cupy = pytest.importorskip("cupy")

pytestmark = pytest.mark.gpu

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
SHAPES = [(1, 1), (3, 2), (5, 16), (9, 64), (17, 256), (8, 2048), (2, 4096), (1, 16384)]
MULTI_PASS = [(3, 2**15), (2, 2**17)]


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _random(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        a = (a + 1j * rng.standard_normal(shape)) / np.sqrt(2)
    return a.astype(dtype)


def _twiddle(rng, n, dtype):
    L = n.bit_length() - 1
    return (_random(rng, (L, n // 2, 2, 2), dtype) / np.sqrt(2)).astype(dtype)


def _tol(dtype):
    return 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11


def _rel_err(got, want):
    got = cupy.asnumpy(got) if isinstance(got, cupy.ndarray) else got
    scale = max(np.linalg.norm(want.ravel()), 1e-300)
    return np.linalg.norm((got - want).ravel()) / scale


def _wide(dtype):
    return np.complex128 if np.issubdtype(dtype, np.complexfloating) else np.float64


# ----------------------------------------------------------------------------- references


def _factor_dense(tw_k, k, n):
    """Factor k as a dense matrix, written straight from the index convention."""
    s = 1 << k
    F = np.zeros((n, n), dtype=tw_k.dtype)
    for i in range(n):
        if i & s:
            continue
        j = ((i >> (k + 1)) << k) | (i & (s - 1))
        F[i, i], F[i, i + s] = tw_k[j, 0, 0], tw_k[j, 0, 1]
        F[i + s, i], F[i + s, i + s] = tw_k[j, 1, 0], tw_k[j, 1, 1]
    return F


def _dense(tw, n, increasing):
    M = np.eye(n, dtype=_wide(tw.dtype))
    L = tw.shape[0]
    for k in range(L) if increasing else range(L - 1, -1, -1):
        M = _factor_dense(tw[k].astype(M.dtype), k, n) @ M
    return M


def _apply_factor(tw_k, k, y):
    """Rows of ``y`` through factor k, vectorized: pair (a, c) of stride s is block a*s + c."""
    b, n = y.shape
    s = 1 << k
    yy = y.reshape(b, n // (2 * s), 2, s)
    t = tw_k.reshape(n // (2 * s), s, 2, 2)
    y0, y1 = yy[:, :, 0, :], yy[:, :, 1, :]
    out0 = t[..., 0, 0] * y0 + t[..., 0, 1] * y1
    out1 = t[..., 1, 0] * y0 + t[..., 1, 1] * y1
    return np.stack([out0, out1], axis=2).reshape(b, n)


def _order(L, increasing):
    return list(range(L)) if increasing else list(range(L - 1, -1, -1))


def _ref_apply(tw, x, increasing):
    y = x.astype(_wide(x.dtype))
    tww = tw.astype(y.dtype)
    for k in _order(tw.shape[0], increasing):
        y = _apply_factor(tww[k], k, y)
    return y


def _ref_vjp(tw, x, g, increasing):
    b, n = x.shape
    wide = _wide(x.dtype)
    tww = tw.astype(wide)
    order = _order(tw.shape[0], increasing)
    inputs, y = [], x.astype(wide)
    for k in order:
        inputs.append(y)
        y = _apply_factor(tww[k], k, y)
    gtw = np.zeros(tw.shape, dtype=wide)
    h = g.astype(wide)
    for k, u in zip(order[::-1], inputs[::-1], strict=True):
        s = 1 << k
        uu = u.reshape(b, n // (2 * s), 2, s)
        hh = h.reshape(b, n // (2 * s), 2, s)
        G = gtw[k].reshape(n // (2 * s), s, 2, 2)
        for r in range(2):
            for c in range(2):
                G[..., r, c] = (hh[:, :, r, :] * np.conj(uu[:, :, c, :])).sum(axis=0)
        h = _apply_factor(np.conj(np.swapaxes(tww[k], -1, -2)), k, h)
    return gtw, h


def _ref_fwht(x):
    b, n = x.shape
    if n <= 2048:
        return x.astype(_wide(x.dtype)) @ scipy.linalg.hadamard(n).T
    y = x.astype(_wide(x.dtype))
    h = 1
    while h < n:
        yy = y.reshape(b, n // (2 * h), 2, h)
        y = np.stack([yy[:, :, 0] + yy[:, :, 1], yy[:, :, 0] - yy[:, :, 1]], axis=2)
        y = y.reshape(b, n)
        h *= 2
    return y


def _gpu():
    from structlin.gpu import butterfly, hadamard

    return butterfly, hadamard


# ----------------------------------------------------------------------------- butterfly


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,n", [(3, 2), (5, 8), (4, 32), (2, 64)])
def test_apply_equals_dense_product_of_factors(batch, n, dtype, increasing):
    butterfly, _ = _gpu()
    rng = _rng("dense", batch, n, np.dtype(dtype).name, increasing)
    tw, x = _twiddle(rng, n, dtype), _random(rng, (batch, n), dtype)
    y = butterfly.apply(cupy.asarray(tw), cupy.asarray(x), increasing)
    assert y.dtype == dtype and y.shape == x.shape
    assert _rel_err(y, x.astype(_wide(dtype)) @ _dense(tw, n, increasing).T) < _tol(dtype)


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,n", SHAPES[1:] + MULTI_PASS)
def test_apply_matches_factor_by_factor_reference(batch, n, dtype, increasing):
    butterfly, _ = _gpu()
    rng = _rng("apply", batch, n, np.dtype(dtype).name, increasing)
    tw, x = _twiddle(rng, n, dtype), _random(rng, (batch, n), dtype)
    x_gpu = cupy.asarray(x)
    y = butterfly.apply(cupy.asarray(tw), x_gpu, increasing)
    assert _rel_err(y, _ref_apply(tw, x, increasing)) < _tol(dtype)
    assert np.array_equal(cupy.asnumpy(x_gpu), x), "the input was modified"


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,n", SHAPES[1:] + MULTI_PASS)
def test_vjp_matches_reference(batch, n, dtype, increasing):
    butterfly, _ = _gpu()
    rng = _rng("vjp", batch, n, np.dtype(dtype).name, increasing)
    tw, x, g = (_twiddle(rng, n, dtype), _random(rng, (batch, n), dtype),
                _random(rng, (batch, n), dtype))
    gtw, gx = butterfly.apply_vjp(cupy.asarray(tw), cupy.asarray(x), cupy.asarray(g), increasing)
    rgtw, rgx = _ref_vjp(tw, x, g, increasing)
    assert gtw.shape == tw.shape and gtw.dtype == dtype
    assert gx.shape == x.shape and gx.dtype == dtype
    assert _rel_err(gx, rgx) < _tol(dtype)
    assert _rel_err(gtw, rgtw) < _tol(dtype)


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("batch,n", [(4, 128), (2, 2**15)])
def test_vjp_input_gradient_is_adjoint_of_apply(batch, n, dtype, increasing):
    """Dot test: <M x, g> == <x, M^H g>."""
    butterfly, _ = _gpu()
    rng = _rng("dot", batch, n, np.dtype(dtype).name, increasing)
    tw = cupy.asarray(_twiddle(rng, n, dtype))
    x = cupy.asarray(_random(rng, (batch, n), dtype))
    g = cupy.asarray(_random(rng, (batch, n), dtype))
    lhs = complex(cupy.vdot(g, butterfly.apply(tw, x, increasing)))
    rhs = complex(cupy.vdot(butterfly.apply_vjp(tw, x, g, increasing)[1], x))
    assert abs(lhs - rhs) <= 1e-9 * max(abs(lhs), 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch_and_size_one(dtype):
    butterfly, _ = _gpu()
    rng = _rng("edge", np.dtype(dtype).name)
    tw = cupy.asarray(_twiddle(rng, 8, dtype))
    x0 = cupy.empty((0, 8), dtype=dtype)
    assert butterfly.apply(tw, x0, True).shape == (0, 8)
    gtw, gx = butterfly.apply_vjp(tw, x0, x0, False)
    assert gx.shape == (0, 8) and not bool(cupy.any(gtw))

    tw1 = cupy.empty((0, 0, 2, 2), dtype=dtype)
    x1 = cupy.asarray(_random(rng, (5, 1), dtype))
    y1 = butterfly.apply(tw1, x1, True)
    assert not cupy.shares_memory(y1, x1) and bool(cupy.all(y1 == x1))
    gtw1, gx1 = butterfly.apply_vjp(tw1, x1, 2 * x1, True)
    assert gtw1.shape == (0, 0, 2, 2) and bool(cupy.all(gx1 == 2 * x1))


def test_apply_accepts_an_offset_view():
    butterfly, _ = _gpu()
    rng = _rng("view")
    tw = _twiddle(rng, 1024, np.complex64)
    big = _random(rng, (6, 1024), np.complex64)
    x = cupy.asarray(big)[1:]
    y = butterfly.apply(cupy.asarray(tw), x, True)
    assert _rel_err(y, _ref_apply(tw, big[1:], True)) < _tol(np.complex64)


# ----------------------------------------------------------------------------- hadamard


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "batch,n", [(7, 1), (3, 2), (5, 4), (9, 32), (33, 256), (4, 1024), (2, 2048)]
)
def test_fwht_equals_sylvester_hadamard_product(batch, n, dtype):
    _, hadamard = _gpu()
    x = _random(_rng("fwht", batch, n, np.dtype(dtype).name), (batch, n), dtype)
    x_gpu = cupy.asarray(x)
    y = hadamard.fwht(x_gpu)
    assert y.dtype == dtype and y.shape == x.shape
    assert _rel_err(y, x.astype(_wide(dtype)) @ scipy.linalg.hadamard(n).T) < _tol(dtype)
    assert np.array_equal(cupy.asnumpy(x_gpu), x), "the input was modified"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "batch,n", [(2, 4096), (3, 8192), (1, 16384), (3, 2**15), (2, 2**17), (1, 2**20)]
)
def test_fwht_multi_pass_matches_reference(batch, n, dtype):
    _, hadamard = _gpu()
    x = _random(_rng("fwht-big", batch, n, np.dtype(dtype).name), (batch, n), dtype)
    assert _rel_err(hadamard.fwht(cupy.asarray(x)), _ref_fwht(x)) < _tol(dtype)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_fwht_of_2_to_the_24(dtype):
    _, hadamard = _gpu()
    x = _random(_rng("fwht-huge", np.dtype(dtype).name), (1, 2**24), dtype)
    assert _rel_err(hadamard.fwht(cupy.asarray(x)), _ref_fwht(x)) < _tol(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fwht_twice_is_n_times_identity(dtype):
    _, hadamard = _gpu()
    n = 2**15
    x = cupy.asarray(_random(_rng("fwht-inv", np.dtype(dtype).name), (3, n), dtype))
    assert _rel_err(hadamard.fwht(hadamard.fwht(x)) / n, cupy.asnumpy(x)) < _tol(dtype)


def test_fwht_empty_batch():
    _, hadamard = _gpu()
    assert hadamard.fwht(cupy.empty((0, 64), dtype=np.float32)).shape == (0, 64)


# ------------------------------------------------------------------------- conformance
# Every operator check of the NumPy classes, on CuPy arrays (the module alias keeps pytest
# from collecting the NumPy classes a second time here).

from tests import test_butterfly as _cpu_butterfly  # noqa: E402
from tests import test_hadamard as _cpu_hadamard  # noqa: E402


@pytest.mark.gpu
class TestGpuButterflyMultiplyConformance(_cpu_butterfly.TestButterflyMultiplyConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuButterflyMultiplyDecreasingConformance(
        _cpu_butterfly.TestButterflyMultiplyDecreasingConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuButterflyMultiplyTransposeConformance(
        _cpu_butterfly.TestButterflyMultiplyTransposeConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuButterflyMultiplyConjugateConformance(
        _cpu_butterfly.TestButterflyMultiplyConjugateConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuButterflyMultiplyAdjointConformance(
        _cpu_butterfly.TestButterflyMultiplyAdjointConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuFwhtConformance(_cpu_hadamard.TestFwhtConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuFwhtUnnormalizedConformance(_cpu_hadamard.TestFwhtUnnormalizedConformance):
    xp = cupy
