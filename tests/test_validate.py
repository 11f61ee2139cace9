"""The validation seam (structlin._validate): every check names the argument and refuses the
bad-input classes before any arithmetic."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from structlin import _validate as v


@pytest.mark.parametrize("value", [4, np.int64(4), np.uint8(4), np.array(4)[()]])
def test_check_int_accepts_integers(value):
    assert v.check_int(value, "n") == 4 and type(v.check_int(value, "n")) is int


@pytest.mark.parametrize("value", [4.0, 2.5, "4", None, True, np.bool_(True), [4], 4 + 0j])
def test_check_int_refuses_non_integers_by_name(value):
    with pytest.raises(TypeError, match=r"^chunk must be an integer, got "):
        v.check_int(value, "chunk")


def test_check_int_bounds_and_none():
    with pytest.raises(ValueError, match="n must be at least 1, got 0"):
        v.check_int(0, "n", minimum=1)
    with pytest.raises(ValueError, match=r"n must be at most 1099511627776, got 1099511627777"):
        v.check_int(2**40 + 1, "n")
    with pytest.raises(ValueError, match="at most 8"):
        v.check_int(9, "n", maximum=8)
    assert v.check_int(None, "n", allow_none=True) is None


@pytest.mark.parametrize(("value", "exc"), [
    ("1", TypeError), (None, TypeError), (True, TypeError), (1j, TypeError),
    (np.nan, ValueError), (np.inf, ValueError),
])
def test_check_float_refuses(value, exc):
    with pytest.raises(exc, match="lam must be"):
        v.check_float(value, "lam")


def test_check_float_bounds():
    assert v.check_float(np.float32(0.5), "tol") == 0.5
    assert v.check_float(np.array(2.0), "tol") == 2.0
    with pytest.raises(ValueError, match="tol must be greater than 0"):
        v.check_float(0.0, "tol", minimum=0, strict_minimum=True)
    with pytest.raises(ValueError, match="tol must be at most 1"):
        v.check_float(2, "tol", maximum=1)


def test_check_bool_choice_dtype_rng():
    assert v.check_bool(np.bool_(True), "causal") is True
    with pytest.raises(TypeError, match="causal must be True or False, got 1"):
        v.check_bool(1, "causal")
    assert v.check_choice("ortho", "norm", (None, "ortho")) == "ortho"
    with pytest.raises(ValueError, match=r"norm must be one of \(None, 'ortho'\), got 'x'"):
        v.check_choice("x", "norm", (None, "ortho"))
    with pytest.raises(ValueError, match="type must be one of"):
        v.check_choice([2], "type", (1, 2))  # unhashable
    with pytest.raises(ValueError, match="type must be one of"):
        v.check_choice(True, "type", (1, 2))  # True == 1, but is not a transform type
    assert v.check_dtype("float32") == np.float32
    for bad in ("bogus", None, np.float16, object):
        with pytest.raises(TypeError, match="dtype must be one of float32, float64"):
            v.check_dtype(bad)
    assert isinstance(v.check_rng(3), np.random.Generator)
    g = np.random.default_rng(0)
    assert v.check_rng(g) is g
    for bad in ("bogus", 1.5, True):
        with pytest.raises(TypeError, match="rng must be None, an integer seed"):
            v.check_rng(bad)


def test_as_array_and_prepare_refuse_non_numeric_by_name():
    for bad in (np.array([1, "a"], dtype=object), np.array(["1"]), ["a", "b"],
                np.array([b"x"]), np.array(["2020-01-01"], dtype="datetime64[D]")):
        with pytest.raises(TypeError, match=r"^twiddle must"):
            v.prepare(twiddle=bad, x=np.ones(2))
    with pytest.raises(TypeError, match=r"^x must be an array of numbers"):
        v.prepare(x=[[1.0], [1.0, 2.0]])  # ragged


def test_prepare_returns_a_named_tuple_with_the_promoted_dtype():
    p = v.prepare(w=np.ones(2, np.float32), x=[1, 2], grad=None, optional=("grad",))
    assert p._fields == ("xp", "dtype", "w", "x", "grad")
    assert p.xp is np and p.dtype == np.float64 and p.grad is None
    assert isinstance(p.x, np.ndarray)
    q = v.prepare(w=np.ones(2, np.float32), g=np.ones(2), dtype_of=("w",))
    assert q.dtype == np.float32  # g is converted and checked but not promoted
    w = np.ones(3)
    assert v.prepare(w=w).w is w  # no copy
    with pytest.raises(TypeError, match=r"^w must be an array of numbers .*, got None"):
        v.prepare(w=None, x=w)  # None only where optional
    assert v.prepare(w=w, grad=v.ABSENT).grad is None  # an internal helper's default


def test_prepare_refuses_the_numpy_cupy_mix_before_converting(monkeypatch):
    fake = types.ModuleType("cupy")

    class ndarray:  # stands for cupy.ndarray
        dtype = np.dtype(np.float32)
        shape = (2,)

    fake.ndarray = ndarray
    monkeypatch.setitem(sys.modules, "cupy", fake)
    # the object array would be refused too: the mix must be reported first
    with pytest.raises(TypeError, match=r"x is a cupy\.ndarray but w is a numpy\.ndarray"):
        v.prepare(x=ndarray(), w=np.array([object()]))


def test_check_precision_one_vocabulary():
    assert v.check_precision("fp32", ("highest", "fp16"), np.float64, "u") == "highest"
    assert v.check_precision("tf32", ("highest", "tf32"), np.complex64, "x") == "tf32"
    with pytest.raises(ValueError, match=r"precision must be one of \('highest', 'tf32'\) "
                                         r"\(or the alias 'fp32'\), got 'fp16'"):
        v.check_precision("fp16", ("highest", "tf32"), np.float32, "x")
    with pytest.raises(ValueError, match=r"needs float32 or complex64 data, got float64 "
                                         r"\(the result dtype of w1 and x\)"):
        v.check_precision("tf32", ("highest", "tf32"), np.float64, "w1 and x")
    with pytest.raises(ValueError, match="precision must be one of"):
        v.check_precision(None, ("highest",), np.float32, "x")


def test_check_out():
    out = np.empty((2, 3))
    v.check_out(np, out, (2, 3), np.float64)
    ro = out.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        v.check_out(np, ro, (2, 3), np.float64)
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3\) and dtype float32"):
        v.check_out(np, out, (2, 3), np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        v.check_out(np, np.empty((3, 2)).T, (2, 3), np.float64)
    with pytest.raises(TypeError, match=r"out must be a numpy\.ndarray, got"):
        v.check_out(np, [[0.0] * 3] * 2, (2, 3), np.float64)


def test_threads_for_runs_small_inputs_on_one_thread():
    import numba

    from structlin._cpu._schedule import SERIAL_ELEMENTS, threads_for

    before = numba.get_num_threads()
    with threads_for(10) as n:
        assert n == 1 and numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with threads_for(SERIAL_ELEMENTS) as n:
        assert n == before
