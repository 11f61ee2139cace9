"""Tests of the K-matrix core: kaleidoscope_multiply(_vjp), kaleidoscope_to_dense,
random_kaleidoscope."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import structlin as sl
from tests import conformance as cf
from tests.strategies import random_array, tolerance


def _twiddle(rng, n, width, dtype):
    return sl.random_kaleidoscope(n, width, dtype=dtype, rng=rng)


class TestKaleidoscopeConformance(cf.OperatorConformance):
    """Every operator check for ``kaleidoscope_multiply``, width 1, n = 64 (the register-block
    path of the butterfly kernels)."""

    n = 64
    width = 1

    def make_params(self, rng, dtype):
        return {"twiddle": _twiddle(rng, self.n, self.width, dtype)}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, self.n), dtype)

    def fast(self, params, x):
        return sl.kaleidoscope_multiply(params["twiddle"], x)

    def dense(self, params):
        return sl.kaleidoscope_to_dense(params["twiddle"])

    def vjp(self, params, x, g):
        gtw, gx = sl.kaleidoscope_multiply_vjp(params["twiddle"], x, g)
        return {"twiddle": gtw, "x": gx}

    def bad_inputs(self):
        tw = sl.random_kaleidoscope(4, 2, rng=0)
        mul = sl.kaleidoscope_multiply
        nan_tw = tw.copy()
        nan_tw[1, 0, 1, 0, 0, 1] = np.nan
        return [
            ("x length not a power of two", lambda: mul(tw, np.ones(6)), ValueError,
             "power of two"),
            ("twiddle for another n", lambda: mul(tw, np.ones(8)), ValueError,
             r"twiddle must have shape \(2, 2, 3, 4, 2, 2\)"),
            ("butterfly twiddle", lambda: mul(tw[0, 0], np.ones(4)), ValueError,
             r"twiddle must have shape \(w, 2, L, n//2, 2, 2\)"),
            ("width 0", lambda: mul(tw[:0], np.ones(4)), ValueError, "width w >= 1"),
            ("NaN twiddle", lambda: mul(nan_tw, np.ones(4)), ValueError, "twiddle must be finite"),
            ("infinite twiddle in the VJP",
             lambda: sl.kaleidoscope_multiply_vjp(nan_tw * np.inf, np.ones(4), np.ones(4)),
             ValueError, "twiddle must be finite"),
            ("0-d x", lambda: mul(tw, np.float64(1.0)), ValueError,
             "x must have at least 1 dimension"),
            ("grad of the wrong shape",
             lambda: sl.kaleidoscope_multiply_vjp(tw, np.ones((2, 4)), np.ones(4)), ValueError,
             r"grad must have shape \(2, 4\)"),
        ]


class TestKaleidoscopeWidth3Conformance(TestKaleidoscopeConformance):
    width = 3


class TestKaleidoscopeFallbackConformance(TestKaleidoscopeConformance):
    """n = 16: below the butterfly kernels' register blocks."""

    n = 16
    width = 2


@pytest.mark.parametrize("n", [2, 8, 64, 256, 2048])
@pytest.mark.parametrize("width", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_matches_the_product_of_dense_butterflies(n, width, dtype):
    rng = np.random.default_rng(n + width)
    tw = _twiddle(rng, n, width, dtype)
    x = random_array(rng, (5, n), dtype)
    K = np.eye(n, dtype=np.complex128)
    for i in range(width):
        K = K @ sl.butterfly_to_dense(tw[i, 0].astype(np.complex128))
        K = K @ sl.butterfly_to_dense(tw[i, 1].astype(np.complex128)).conj().T
    y = sl.kaleidoscope_multiply(tw, x)
    assert y.dtype == dtype
    ref = x @ K.T
    assert np.linalg.norm(y - ref) <= 10 * tolerance(dtype, n) * np.linalg.norm(ref)


@pytest.mark.parametrize(("n", "width", "dtype"),
                         [(64, 3, np.complex64), (128, 1, np.float64), (1024, 2, np.float32)])
def test_fused_product_equals_the_butterfly_after_butterfly_loop(n, width, dtype):
    """The fused CPU kernel (every butterfly on an L1 tile of rows) against the same
    butterflies applied one after the other, on a batch that is not a whole number of tiles."""
    from structlin import _kaleidoscope_stages as stages
    from structlin._cpu import butterfly as bf
    from structlin._cpu import kaleidoscope as kernel
    from structlin.kaleidoscope import operator_twiddle

    rng = np.random.default_rng(n)
    tw = operator_twiddle(np, _twiddle(rng, n, width, dtype))
    x = random_array(rng, (37, n), dtype)
    assert kernel.fused(n, x.itemsize)
    y = kernel.apply(tw, x)
    ref = stages.apply(np, bf, tw, x)
    assert np.linalg.norm(y - ref) <= 4 * tolerance(dtype, n) * np.linalg.norm(ref)


def test_identity_kind_is_exactly_the_identity():
    x = np.random.default_rng(0).standard_normal((3, 128))
    tw = sl.random_kaleidoscope(128, 3, kind="identity")
    assert np.array_equal(sl.kaleidoscope_multiply(tw, x), x)
    assert np.array_equal(sl.kaleidoscope_to_dense(tw), np.eye(128))


@settings(deadline=None, max_examples=20)
@given(L=st.integers(1, 8), width=st.integers(1, 3), seed=st.integers(0, 2**31 - 1),
       complex_=st.booleans())
def test_orthogonal_k_matrices_preserve_norms(L, width, seed, complex_):
    n = 1 << L
    dt = np.complex128 if complex_ else np.float64
    tw = sl.random_kaleidoscope(n, width, kind="orthogonal", dtype=dt, rng=seed)
    x = random_array(np.random.default_rng(seed), (4, n), dt)
    y = sl.kaleidoscope_multiply(tw, x)
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-10)
    np.testing.assert_allclose(y, x @ sl.kaleidoscope_to_dense(tw).T, atol=1e-10)


def test_width_is_a_product_of_units():
    rng = np.random.default_rng(3)
    tw = _twiddle(rng, 32, 3, np.float64)
    K = sl.kaleidoscope_to_dense(tw)
    parts = [sl.kaleidoscope_to_dense(tw[i : i + 1]) for i in range(3)]
    np.testing.assert_allclose(K, parts[0] @ parts[1] @ parts[2], atol=1e-12)


def test_inputs_not_modified_and_batch_dims():
    rng = np.random.default_rng(4)
    tw = _twiddle(rng, 64, 2, np.float32)
    x = random_array(rng, (2, 3, 64), np.float32)
    t0, x0 = tw.copy(), x.copy()
    y = sl.kaleidoscope_multiply(tw, x)
    assert y.shape == (2, 3, 64) and y.dtype == np.float32
    assert np.array_equal(tw, t0) and np.array_equal(x, x0)


def test_random_kaleidoscope_bad_arguments():
    with pytest.raises(ValueError, match="width"):
        sl.random_kaleidoscope(8, 0)
    with pytest.raises(ValueError, match="width"):
        sl.random_kaleidoscope(8, 1 << 20)
    with pytest.raises(TypeError, match="width"):
        sl.random_kaleidoscope(8, 1.5)
    with pytest.raises(ValueError, match="power of two"):
        sl.random_kaleidoscope(6)
    with pytest.raises(ValueError, match="kind"):
        sl.random_kaleidoscope(8, kind="unitary")
    with pytest.raises(ValueError, match=r"twiddle must have shape"):
        sl.kaleidoscope_to_dense(np.ones((1, 2, 2, 2, 2)))
