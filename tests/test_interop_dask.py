"""structlin.interop.dask: blockwise products over the batch axes equal the NumPy results; a
split vector axis is refused (or merged on request)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import structlin as sl  # noqa: E402
from structlin.interop import dask as sd  # noqa: E402
from tests.interop_cases import PRECISION_CASES, numpy_error  # noqa: E402


def _x(shape, chunks, seed=0, dtype=np.float64):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return a, da.from_array(a, chunks=chunks)


def test_butterfly_multiply_and_solve_equal_numpy():
    tw = sl.random_butterfly(16, rng=1)
    a, x = _x((4, 50, 16), (2, 17, 16))
    y = sd.butterfly_multiply(tw, x, transpose=True)
    assert y.chunks == x.chunks
    np.testing.assert_array_equal(y.compute(), sl.butterfly_multiply(tw, a, transpose=True))
    for inc in (True, False):
        np.testing.assert_allclose(
            sd.butterfly_solve(tw, x, increasing_stride=inc, conjugate=True).compute(),
            sl.butterfly_solve(tw, a, increasing_stride=inc, conjugate=True), atol=1e-10)


def test_monarch_and_pixelfly_change_the_last_axis_length():
    rng = np.random.default_rng(2)
    w1, w2 = rng.standard_normal((2, 3, 3)), rng.standard_normal((3, 4, 2))
    a, x = _x((40, 6), (15, 6))
    y = sd.monarch_multiply(w1, w2, x)
    assert y.shape == (40, 12) and y.chunks == ((15, 15, 10), (12,))
    np.testing.assert_allclose(y.compute(), sl.monarch_multiply(w1, w2, a))
    mask = sl.flat_block_butterfly_mask(8, 16, 2)
    blocks = rng.standard_normal((int(mask.sum()), 2, 2))
    U, V = rng.standard_normal((8, 1)), rng.standard_normal((16, 1))
    a, x = _x((30, 16), (7, 16))
    np.testing.assert_allclose(sd.pixelfly_multiply(blocks, mask, U, V, x).compute(),
                               sl.pixelfly_multiply(blocks, mask, U, V, a))


def test_fftconv_with_gates_over_chunked_batches():
    rng = np.random.default_rng(3)
    a, u = _x((6, 3, 20), (4, 3, 20))
    k, D = rng.standard_normal((3, 7)), rng.standard_normal(3)
    pre = rng.standard_normal((6, 3, 20))
    post = da.from_array(rng.standard_normal((6, 3, 20)), chunks=(3, 3, 10))
    y = sd.fftconv(u, k, D, pregate=pre, postgate=post, causal=False)
    np.testing.assert_allclose(
        y.compute(), sl.fftconv(a, k, D, pregate=pre, postgate=post.compute(), causal=False))
    np.testing.assert_allclose(sd.fftconv(u, k).compute(), sl.fftconv(a, k))


def test_transforms_and_dtype():
    a, x = _x((10, 8), (3, 8), dtype=np.float32)
    for fn in ("dct", "dst"):
        y = getattr(sd, fn)(x, 3, "ortho")
        assert y.dtype == np.float32
        # float32 rounding depends on how many rows a kernel call sees
        np.testing.assert_allclose(y.compute(), getattr(sl, fn)(a, 3, "ortho"), rtol=1e-5,
                                   atol=1e-6)
    np.testing.assert_allclose(sd.fwht(x, normalize=True).compute(),
                               sl.fwht(a, normalize=True), rtol=1e-5, atol=1e-6)


def test_split_last_axis_raises_or_is_rechunked():
    tw = sl.random_butterfly(8, rng=0)
    a, x = _x((12, 8), (5, 4))
    with pytest.raises(ValueError, match=r"rechunk=True"):
        sd.butterfly_multiply(tw, x)
    y = sd.butterfly_multiply(tw, x, rechunk=True)
    assert y.chunks == ((5, 5, 2), (8,))
    np.testing.assert_array_equal(y.compute(), sl.butterfly_multiply(tw, a))
    _, u = _x((2, 4, 6), (1, 2, 6))
    with pytest.raises(ValueError, match="axis -2 in 2 chunks"):
        sd.fftconv(u, np.ones((4, 3)))


def test_map_batch_with_any_function_and_argument_errors():
    a, x = _x((9, 4), (4, 4))
    y = sd.map_batch(functools.partial(sl.fwht, normalize=True), x)
    np.testing.assert_array_equal(y.compute(), sl.fwht(a, normalize=True))
    with pytest.raises(TypeError, match=r"dask\.array\.Array"):
        sd.map_batch(sl.fwht, a)
    with pytest.raises(TypeError, match="compute it first"):
        sd.butterfly_multiply(da.from_array(sl.random_butterfly(4, rng=0)), x)


# ---- precision -----------------------------------------------------------------------------


def _dask_call(name, arrays, **kw):
    """The Dask wrapper of ``name`` on ``arrays``, its vectors chunked by rows."""
    case = PRECISION_CASES[name]
    lazy = tuple(da.from_array(a, chunks=(1, *a.shape[1:])) if vec else a
                 for a, vec in zip(arrays, case.vectors, strict=True))
    return case.call(getattr(sd, name), lazy, **kw)


@pytest.mark.parametrize("name", sorted(PRECISION_CASES))
def test_precision_is_passed_to_every_chunk_and_computes_full_precision(name, monkeypatch):
    case = PRECISION_CASES[name]
    arrays = case.make(np.random.default_rng(30), np.float32)
    # the same chunks at the default precision (float32 rounding depends on the rows per call)
    expected = _dask_call(name, arrays).compute(scheduler="synchronous")
    np.testing.assert_allclose(expected, case.call(getattr(sl, name), arrays), rtol=1e-5,
                               atol=1e-6)
    seen = []
    real = getattr(sl, name)

    def spy(*args, **kwargs):
        seen.append(kwargs.get("precision"))
        return real(*args, **kwargs)

    monkeypatch.setattr(sl, name, spy)
    y = _dask_call(name, arrays, precision=case.tensor_core)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.compute(scheduler="synchronous"), expected)
    assert seen and set(seen) == {case.tensor_core}, seen


@pytest.mark.parametrize("name", sorted(PRECISION_CASES))
def test_precision_errors_are_the_numpy_functions_when_the_graph_is_built(name):
    case = PRECISION_CASES[name]
    arrays = case.make(np.random.default_rng(31), np.float32)
    with pytest.raises(ValueError, match=numpy_error(name, arrays, case.refused)):
        _dask_call(name, arrays, precision=case.refused)
    with pytest.raises(ValueError, match=numpy_error(name, arrays, "bogus")):
        _dask_call(name, arrays, precision="bogus")
    doubles = tuple(a.astype(np.float64) for a in arrays)
    with pytest.raises(ValueError, match=numpy_error(name, doubles, case.tensor_core)):
        _dask_call(name, doubles, precision=case.tensor_core)
