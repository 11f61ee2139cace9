"""The backend seam: namespace selection, mixing errors, dtype promotion, batch reshaping."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from structlin import _backend as B


@pytest.fixture
def fake_cupy(monkeypatch):
    """A stand-in ``cupy`` module, so that the mixing check is tested without a GPU."""
    mod = types.ModuleType("cupy")

    class ndarray(np.ndarray):
        pass

    mod.ndarray = ndarray
    monkeypatch.setitem(sys.modules, "cupy", mod)
    return mod


def test_numpy_inputs_select_numpy():
    assert B.array_namespace(x=np.ones(2), twiddle=[1.0], grad=None) is np


def test_mixing_numpy_and_cupy_names_both_arguments(fake_cupy):
    g = np.ones(3).view(fake_cupy.ndarray)
    assert B.array_namespace(x=g) is fake_cupy
    with pytest.raises(TypeError, match=r"x is a cupy.ndarray but twiddle is a numpy.ndarray"):
        B.array_namespace(x=g, twiddle=np.ones(3))
    with pytest.raises(TypeError, match=r"grad is a cupy.ndarray but x is a list"):
        B.array_namespace(x=[1.0], grad=g)


def test_mixing_is_refused_by_public_functions(fake_cupy):
    import structlin as sl

    g = np.ones(4).view(fake_cupy.ndarray)
    with pytest.raises(TypeError, match=r"x is a cupy\.ndarray but twiddle"):
        sl.butterfly_multiply(np.ones((2, 2, 2, 2)), g)


@pytest.mark.parametrize("dts,expected", [
    ((np.float32, np.float32), np.float32),
    ((np.float32, np.float64), np.float64),
    ((np.float32, np.complex64), np.complex64),
    ((np.float64, np.complex64), np.complex128),
    ((np.int32, np.float32), np.float64),
    ((np.int64,), np.float64),
    ((np.bool_,), np.float64),
    ((np.float16,), np.float32),
])
def test_result_dtype_follows_numpy_promotion(dts, expected):
    arrays = {f"a{i}": np.ones(1, dtype=d) for i, d in enumerate(dts)}
    assert B.result_dtype(**arrays) == expected


def test_result_dtype_rejects_non_numeric():
    with pytest.raises(TypeError, match="x must have a numeric dtype"):
        B.result_dtype(x=np.array(["s"]))


def test_flatten_and_restore_batch_round_trip():
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    f, batch = B.flatten_batch(a)
    assert f.shape == (6, 4) and batch == (2, 3)
    assert np.shares_memory(f, a)
    np.testing.assert_array_equal(B.restore_batch(f, batch), a)
    f0, b0 = B.flatten_batch(np.ones(4))
    assert f0.shape == (1, 4) and b0 == ()


def test_as_kernel_array_copies_only_when_needed():
    a = np.ones((3, 4), np.float32)
    assert B.as_kernel_array(np, a, np.dtype(np.float32)) is a
    b = B.as_kernel_array(np, a.T, np.dtype(np.float32))
    assert b.flags.c_contiguous and not np.shares_memory(a, b)
