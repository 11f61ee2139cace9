"""Butterfly multiply, VJP and constructors against the dense reference."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import structlin as sl
from structlin.butterfly import _reference_apply
from tests import conformance as cf
from tests.strategies import batch_shapes, dtypes, log2_sizes, random_array, seeds, tolerance

FLAGS = [
    dict(increasing_stride=inc, transpose=tr, conjugate=cj)
    for inc in (True, False)
    for tr in (False, True)
    for cj in (False, True)
]


def spec(**flags) -> cf.OperatorSpec:
    adj = dict(flags, transpose=not flags.get("transpose", False),
               conjugate=not flags.get("conjugate", False))

    def vjp(p, x, g):
        gtw, gx = sl.butterfly_multiply_vjp(p["twiddle"], x, g, **flags)
        return {"twiddle": gtw, "x": gx}

    return cf.OperatorSpec(
        fast=lambda p, x: sl.butterfly_multiply(p["twiddle"], x, **flags),
        dense=lambda p: sl.butterfly_to_dense(p["twiddle"], **flags),
        vjp=vjp,
        adjoint=lambda p, y: sl.butterfly_multiply(p["twiddle"], y, **adj),
    )


def twiddle(rng, n, dtype):
    return random_array(rng, (n.bit_length() - 1, n // 2, 2, 2), dtype, scale=0.8)


@given(L=log2_sizes(7), batch=batch_shapes(), tdt=dtypes(), xdt=dtypes(), seed=seeds(),
       flags=st.sampled_from(FLAGS))
def test_multiply_matches_dense(L, batch, tdt, xdt, seed, flags):
    rng = np.random.default_rng(seed)
    n = 1 << L
    p = {"twiddle": twiddle(rng, n, tdt)}
    x = random_array(rng, (*batch, n), xdt)
    cf.check_matches_dense(spec(**flags), p, x)


@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("tdt,xdt", [("float64", "complex128"), ("complex128", "float64")])
def test_vjp_of_mixed_real_and_complex_matches_finite_differences(flags, tdt, xdt):
    # the conformance classes below check equal dtypes; a real twiddle on complex x (and the
    # reverse) takes the real part of one gradient
    rng = np.random.default_rng(1)
    n = 16
    p = {"twiddle": twiddle(rng, n, tdt)}
    x = random_array(rng, (2, 3, n), xdt)
    g = random_array(rng, (2, 3, n), np.result_type(tdt, xdt))
    cf.check_vjp(spec(**flags), p, x, g, rng=rng)


@given(L=log2_sizes(6, 1), dt=dtypes(), seed=seeds(), flags=st.sampled_from(FLAGS))
def test_vjp_grad_x_is_adjoint_times_grad(L, dt, seed, flags):
    rng = np.random.default_rng(seed)
    n = 1 << L
    tw = twiddle(rng, n, dt)
    x = random_array(rng, (5, n), dt)
    g = random_array(rng, (5, n), dt)
    gtw, gx = sl.butterfly_multiply_vjp(tw, x, g, **flags)
    M = sl.butterfly_to_dense(tw, **flags)
    assert cf._rel_err(gx, g @ M.conj()) <= tolerance(dt, n) * 4
    assert gtw.dtype == tw.dtype and gx.dtype == x.dtype


@pytest.mark.parametrize("n,batch,dt", [(1 << 15, 2, np.complex128), (1 << 17, 3, np.float32),
                                        (1 << 17, 20, np.float32), (1 << 16, 9, np.float64),
                                        # real data below the cache limit: register blocks
                                        # alone (64) and with spaced groups of 1 to 4 levels
                                        (64, 3, np.float32), (128, 5, np.float64),
                                        (256, 2, np.float32), (512, 3, np.float64),
                                        (1024, 4, np.float32), (1 << 11, 2, np.float64),
                                        (64, 3, np.complex64), (512, 2, np.complex128),
                                        (1 << 12, 3, np.complex64)])
@pytest.mark.parametrize("increasing", [True, False])
def test_multipass_sizes_match_reference(n, batch, dt, increasing):
    # beyond the cache the kernels split the factors into several passes; the plain reshape
    # reference (no kernel) applies them one by one
    rng = np.random.default_rng(n)
    tw = twiddle(rng, n, dt)
    x = random_array(rng, (batch, n), dt)
    y = sl.butterfly_multiply(tw, x, increasing_stride=increasing)
    ref = _reference_apply(np, tw.astype(np.complex128), x.astype(np.complex128), increasing)
    assert cf._rel_err(y, ref) <= tolerance(dt, n)


def test_multipass_vjp_matches_finite_differences():
    rng = np.random.default_rng(3)
    n = 1 << 14  # complex128 VJP tiles hold every level: this size takes two passes
    p = {"twiddle": twiddle(rng, n, np.complex128)}
    x = random_array(rng, (2, n), np.complex128)
    g = random_array(rng, (2, n), np.complex128)
    cf.check_vjp(spec(), p, x, g, rng=rng, n_directions=1)


@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("n", [64, 512, 2048])
@pytest.mark.parametrize("dt", ["float64", "complex128"])
def test_register_block_vjp_matches_finite_differences(flags, n, dt):
    # rows within the cache take the register-block VJP: the contiguous block levels alone
    # (64), with one spaced group of 3 levels (512), with two groups (2048)
    rng = np.random.default_rng(n)
    p = {"twiddle": twiddle(rng, n, dt)}
    x = random_array(rng, (3, n), dt)
    g = random_array(rng, (3, n), dt)
    cf.check_vjp(spec(**flags), p, x, g, rng=rng, n_directions=2)


@pytest.mark.parametrize("dt", ["float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("n", [64, 128, 1024, 4096])
@pytest.mark.parametrize("increasing", [True, False])
def test_register_block_vjp_equals_tiled_vjp(dt, n, increasing, monkeypatch):
    from structlin._cpu import butterfly as cb

    rng = np.random.default_rng(n + 1)
    tw = twiddle(rng, n, dt)
    x = random_array(rng, (37, n), dt)
    g = random_array(rng, (37, n), dt)
    gt, gx = cb.apply_vjp(tw, x, g, increasing)
    monkeypatch.setattr(cb, "SEGMENT_BYTES", 0)  # the transposed-tile VJP instead
    gt_ref, gx_ref = cb.apply_vjp(tw, x, g, increasing)
    assert cf._rel_err(gt, gt_ref) <= 8 * tolerance(dt, n)
    assert cf._rel_err(gx, gx_ref) <= 8 * tolerance(dt, n)


def test_hadamard_butterfly_equals_fwht_and_scipy():
    from scipy.linalg import hadamard

    n = 64
    tw = np.tile(np.array([[1.0, 1.0], [1.0, -1.0]]), (6, n // 2, 1, 1))
    x = np.random.default_rng(0).standard_normal((4, n))
    np.testing.assert_allclose(sl.butterfly_multiply(tw, x), x @ hadamard(n).T, atol=1e-12)
    np.testing.assert_allclose(sl.butterfly_multiply(tw, x), sl.fwht(x), atol=1e-12)


def dft_twiddle(n):
    """Radix-2 decimation in time: block j = a*s + c of factor k is [[1, w], [1, -w]]."""
    L = n.bit_length() - 1
    tw = np.zeros((L, n // 2, 2, 2), np.complex128)
    for k in range(L):
        s = 1 << k
        c = np.arange(n // 2) % s
        w = np.exp(-2j * np.pi * c / (2 * s))
        tw[k, :, 0, 0] = 1
        tw[k, :, 0, 1] = w
        tw[k, :, 1, 0] = 1
        tw[k, :, 1, 1] = -w
    return tw


@pytest.mark.parametrize("n", [1, 2, 8, 256, 4096])
def test_dft_butterfly_on_bit_reversed_input_equals_numpy_fft(n):
    x = np.random.default_rng(n).standard_normal((3, n)) + 0j
    y = sl.butterfly_multiply(dft_twiddle(n), x[..., sl.bit_reversal_permutation(n)])
    np.testing.assert_allclose(y, np.fft.fft(x), atol=1e-10 * max(1, np.log2(n)) * np.sqrt(n))


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.complex64, np.complex128])
def test_orthogonal_butterfly_is_orthogonal(dt):
    B = sl.butterfly_to_dense(sl.random_butterfly(64, kind="orthogonal", dtype=dt, rng=2))
    np.testing.assert_allclose(B @ B.conj().T, np.eye(64), atol=tolerance(dt, 64) * 10)
    assert B.dtype == dt


def test_identity_and_gaussian_butterflies():
    np.testing.assert_array_equal(sl.butterfly_to_dense(sl.random_butterfly(32, kind="identity")),
                                  np.eye(32))
    tw = sl.random_butterfly(1 << 12, rng=0)
    assert abs(tw.var() - 0.5) < 0.02  # variance 1/2 preserves the expected squared norm
    tc = sl.random_butterfly(1 << 12, dtype=np.complex64, rng=0)
    assert tc.dtype == np.complex64 and abs(np.mean(np.abs(tc) ** 2) - 0.5) < 0.02


def test_bit_reversal_permutation():
    for L in range(0, 11):
        n = 1 << L
        p = sl.bit_reversal_permutation(n)
        expected = [int(format(i, f"0{L}b")[::-1], 2) if L else 0 for i in range(n)]
        np.testing.assert_array_equal(p, expected)
        np.testing.assert_array_equal(p[p], np.arange(n))


@given(L=log2_sizes(10), batch=batch_shapes(), dt=dtypes(), seed=seeds())
def test_bit_reverse_equals_indexing_with_the_permutation(L, batch, dt, seed):
    x = random_array(np.random.default_rng(seed), (*batch, 1 << L), dt)
    x0 = x.copy()
    y = sl.bit_reverse(x)
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, x[..., sl.bit_reversal_permutation(1 << L)])
    np.testing.assert_array_equal(sl.bit_reverse(y), x)  # an involution
    np.testing.assert_array_equal(x, x0)


def test_bit_reverse_bad_inputs():
    with pytest.raises(ValueError, match="x"):
        sl.bit_reverse(np.float64(1.0))
    with pytest.raises(ValueError, match="x must have a last-axis length that is a power of two"):
        sl.bit_reverse(np.ones((2, 6)))


def test_empty_batch_returns_empty():
    tw = sl.random_butterfly(8, rng=0)
    y = sl.butterfly_multiply(tw, np.zeros((0, 3, 8), np.float32))
    assert y.shape == (0, 3, 8) and y.dtype == np.float64
    gtw, gx = sl.butterfly_multiply_vjp(tw, np.zeros((0, 8)), np.zeros((0, 8)))
    assert gx.shape == (0, 8)
    np.testing.assert_array_equal(gtw, 0)


def test_nan_and_inf_propagate_like_the_dense_product():
    tw = sl.random_butterfly(8, kind="orthogonal", rng=0)
    x = np.zeros((2, 8))
    x[0, 3] = np.nan
    x[1, 5] = np.inf
    y = sl.butterfly_multiply(tw, x)
    with np.errstate(invalid="ignore"):
        ref = x @ sl.butterfly_to_dense(tw).T
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ref))


def test_integer_and_bool_inputs_promote_to_float64():
    tw = np.ones((2, 2, 2, 2), dtype=np.int64)
    y = sl.butterfly_multiply(tw, np.array([True, False, True, True]))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, sl.butterfly_to_dense(tw) @ np.array([1.0, 0, 1, 1]))


def test_bad_constructor_arguments_raise_naming_them():
    with pytest.raises(ValueError, match="n must have a value that is a power of two"):
        sl.random_butterfly(12)
    with pytest.raises(ValueError, match="kind must be one of"):
        sl.random_butterfly(4, kind="unitary")
    with pytest.raises(TypeError, match="dtype must be one of float32"):
        sl.random_butterfly(4, dtype=np.int32)
    with pytest.raises(TypeError, match=r"dtype must be one of float32.*'bogus'"):
        sl.random_butterfly(4, dtype="bogus")
    with pytest.raises(TypeError, match=r"rng must be None, an integer seed.*'bogus'"):
        sl.random_butterfly(4, rng="bogus")
    for bad in (None, 4.0, "4", True):
        with pytest.raises(TypeError, match="n must be an integer"):
            sl.random_butterfly(bad)
        with pytest.raises(TypeError, match="n must be an integer"):
            sl.bit_reversal_permutation(bad)
    with pytest.raises(ValueError, match="power of two"):
        sl.bit_reversal_permutation(6)
    with pytest.raises(ValueError, match="n must be at least 1, got 0"):
        sl.bit_reversal_permutation(0)


@pytest.mark.parametrize("n", [2**33, 2**60, 2**100])
def test_bit_reversal_permutation_refuses_a_huge_n_before_allocating(n):
    # the permutation grows by doubling: without the bound 2**60 would allocate until memory
    # runs out; 2**32 (32 GiB of indices) is the documented limit
    with pytest.raises(ValueError, match=r"n must be at most 4294967296"):
        sl.bit_reversal_permutation(n)


@pytest.mark.parametrize("n", [1, 2, 16])
@pytest.mark.parametrize("kind", ["identity", "gaussian", "orthogonal"])
def test_random_butterfly_returns_a_new_writable_array(n, kind):
    tw = sl.random_butterfly(n, kind=kind, rng=0)
    assert tw.flags.writeable and tw.flags.c_contiguous and tw.flags.owndata
    tw[...] = 0  # a caller may fill it in place


@pytest.mark.parametrize("dt", [np.float16, np.bool_, np.int8, np.int16, np.uint32, np.int64,
                                np.longdouble, np.clongdouble, np.dtype(">f8"),
                                np.dtype(">c16"),
                                np.dtype("<i2")])
def test_bit_reverse_keeps_any_numeric_dtype(dt):
    # a permutation moves items without arithmetic: float16 stays float16 (no kernel has
    # float16 arithmetic, the gather moves its bits), big-endian data comes back native
    x = (np.arange(24).reshape(3, 8) % 5).astype(dt)
    y = sl.bit_reverse(x)
    assert y.dtype == np.dtype(dt).newbyteorder("=") and y.shape == x.shape
    np.testing.assert_array_equal(y, x[..., sl.bit_reversal_permutation(8)])


def test_bit_reverse_accepts_lists_and_refuses_non_numeric_by_name():
    assert sl.bit_reverse([1, 2, 3, 4]).tolist() == [1, 3, 2, 4]
    assert sl.bit_reverse([[1.0, 2.0], [3.0, 4.0]]).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    for bad in (np.array([1, 2], dtype=object), np.array(["a", "b"]), [object(), object()]):
        with pytest.raises(TypeError, match="x must"):
            sl.bit_reverse(bad)


# ------------------------------------------------------------------------- conformance


class TestButterflyMultiplyConformance(cf.OperatorConformance):
    """Every operator check for ``butterfly_multiply`` (n = 64: the register-block path of
    real data) with the flags of :attr:`flags`; the subclasses below vary them."""

    n = 64
    flags: ClassVar[dict] = {}

    def make_params(self, rng, dtype):
        return {"twiddle": twiddle(rng, self.n, dtype)}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, self.n), dtype)

    def fast(self, params, x):
        return sl.butterfly_multiply(params["twiddle"], x, **self.flags)

    def dense(self, params):
        return sl.butterfly_to_dense(params["twiddle"], **self.flags)

    def vjp(self, params, x, g):
        gtw, gx = sl.butterfly_multiply_vjp(params["twiddle"], x, g, **self.flags)
        return {"twiddle": gtw, "x": gx}

    def bad_inputs(self):
        tw4 = np.ones((2, 2, 2, 2))
        mul = sl.butterfly_multiply
        return [
            ("x length not a power of two", lambda: mul(tw4, np.ones(6)), ValueError,
             "x must have a last-axis length n that is a power of two"),
            ("twiddle for another n", lambda: mul(tw4, np.ones(8)), ValueError,
             r"twiddle must have shape \(3, 4, 2, 2\)"),
            ("3-d twiddle", lambda: mul(np.ones((2, 2, 2)), np.ones(4)), ValueError,
             r"twiddle must have shape \(L, n//2, 2, 2\)"),
            ("0-d x", lambda: mul(tw4, np.float64(1.0)), ValueError,
             "x must have at least 1 dimension"),
            ("empty last axis", lambda: mul(tw4, np.ones(0)), ValueError, "power of two"),
            ("extended precision", lambda: mul(tw4.astype(np.longdouble), np.ones(4)),
             TypeError, "extended precision"),
            ("grad of the wrong shape",
             lambda: sl.butterfly_multiply_vjp(tw4, np.ones((2, 4)), np.ones(4)), ValueError,
             r"grad must have shape \(2, 4\) \(the shape of the product"),
            ("non-numeric grad",
             lambda: sl.butterfly_multiply_vjp(tw4, np.ones(4), np.array(["a"] * 4)),
             TypeError, "grad must have a numeric dtype"),
            ("flag not a bool", lambda: mul(tw4, np.ones(4), transpose="yes"), TypeError,
             "transpose must be True or False"),
            ("flag None", lambda: sl.butterfly_to_dense(tw4, increasing_stride=None),
             TypeError, "increasing_stride must be True or False"),
        ]


class TestButterflyMultiplyDecreasingConformance(TestButterflyMultiplyConformance):
    flags: ClassVar[dict] = {"increasing_stride": False}


class TestButterflyMultiplyTransposeConformance(TestButterflyMultiplyConformance):
    flags: ClassVar[dict] = {"transpose": True}


class TestButterflyMultiplyConjugateConformance(TestButterflyMultiplyConformance):
    flags: ClassVar[dict] = {"conjugate": True}


class TestButterflyMultiplyAdjointConformance(TestButterflyMultiplyConformance):
    """``B^H`` of a decreasing-stride butterfly: every flag set."""

    flags: ClassVar[dict] = {"increasing_stride": False, "transpose": True, "conjugate": True}
