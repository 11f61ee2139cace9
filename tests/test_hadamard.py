"""Fast Walsh–Hadamard transform against scipy.linalg.hadamard."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import hadamard

import structlin as sl
from tests import conformance as cf
from tests.strategies import batch_shapes, dtypes, log2_sizes, random_array, seeds, tolerance


def spec(normalize):
    scale = 1.0
    return cf.OperatorSpec(
        fast=lambda p, x: sl.fwht(x, normalize=normalize),
        dense=lambda p: hadamard(p["n"]) * (1 / np.sqrt(p["n"]) if normalize else scale),
        vjp=lambda p, x, g: {"x": sl.fwht_vjp(x, g, normalize=normalize)},
        adjoint=lambda p, y: sl.fwht(y, normalize=normalize),
    )


def fwht_reference(x):
    """H_n = H_2 ⊗ ... ⊗ H_2: sums and differences along each of the log2(n) binary axes."""
    n = x.shape[-1]
    L = n.bit_length() - 1
    v = x.reshape(x.shape[:-1] + (2,) * L)
    for ax in range(x.ndim - 1, x.ndim - 1 + L):
        a = np.take(v, 0, axis=ax)
        b = np.take(v, 1, axis=ax)
        v = np.stack([a + b, a - b], axis=ax)
    return v.reshape(x.shape)


@given(L=log2_sizes(10), batch=batch_shapes(), dt=dtypes(), seed=seeds(), norm=st.booleans())
def test_fwht_matches_scipy_hadamard(L, batch, dt, seed, norm):
    rng = np.random.default_rng(seed)
    n = 1 << L
    x = random_array(rng, (*batch, n), dt)
    cf.check_matches_dense(spec(norm), {"n": n}, x)


@pytest.mark.parametrize("n", [16, 64, 128, 4096])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("norm", [False, True])
def test_fwht_register_blocks_match_scipy_hadamard(n, dt, norm):
    # real rows of 64 or more go through the explicit-SIMD register blocks: every size class
    # (one block, several blocks, blocks plus loop levels) and both scales
    x = random_array(np.random.default_rng(n), (3, n), dt)
    cf.check_matches_dense(spec(norm), {"n": n}, x)


@pytest.mark.parametrize("norm", [False, True])
def test_fwht_vjp_of_real_x_and_complex_grad_matches_finite_differences(norm):
    # equal dtypes are checked by the conformance classes below
    rng = np.random.default_rng(0)
    x = random_array(rng, (3, 32), np.float64)
    cf.check_vjp(spec(norm), {}, x, random_array(rng, (3, 32), np.complex128), rng=rng)


@pytest.mark.parametrize("xdt,gdt", [(np.float64, np.float32), (np.complex128, np.complex64),
                                     (np.float32, np.float64)])
def test_fwht_vjp_computes_in_the_promoted_precision(xdt, gdt):
    # a float32 grad for a float64 x used to be transformed in float32 (relative error 6e-8
    # in the float64 result): the transform runs in the wider precision, then casts to x's
    rng = np.random.default_rng(1)
    x = random_array(rng, (4, 256), xdt)
    g = random_array(rng, (4, 256), gdt)
    got = sl.fwht_vjp(x, g, normalize=True)
    assert got.dtype == xdt
    want = sl.fwht(g.astype(np.result_type(xdt, gdt)), normalize=True).astype(xdt)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n,batch,dt", [(1 << 17, 3, np.float32), (1 << 16, 2, np.complex128),
                                        (1 << 20, 1, np.float64)])
def test_fwht_multipass_matches_reference(n, batch, dt):
    rng = np.random.default_rng(n)
    x = random_array(rng, (batch, n), dt)
    ref = fwht_reference(x.astype(np.complex128))
    assert cf._rel_err(sl.fwht(x), ref) <= tolerance(dt, n) * np.sqrt(np.log2(n))


def test_fwht_size_2_pow_24_entries_and_involution():
    n = 1 << 24
    rng = np.random.default_rng(24)
    x = rng.standard_normal(n).astype(np.float32)
    y = sl.fwht(x)
    # a few entries from the definition H[i, j] = (-1)^popcount(i & j)
    j = np.arange(n, dtype=np.uint32)
    for i in (0, 1, 12345, n - 1):
        bits = np.bitwise_and(j, np.uint32(i))
        parity = np.zeros(n, dtype=np.uint8)
        for b in range(24):
            parity ^= ((bits >> b) & 1).astype(np.uint8)
        expected = np.sum(np.where(parity, -1.0, 1.0) * x.astype(np.float64))
        assert abs(y[i] - expected) <= 1e-3 * np.sqrt(n)
    back = sl.fwht(y) / n
    assert cf._rel_err(back, x) <= 1e-5


def test_fwht_normalized_is_an_involution():
    x = np.random.default_rng(1).standard_normal((5, 1024))
    np.testing.assert_allclose(sl.fwht(sl.fwht(x, normalize=True), normalize=True), x, atol=1e-12)


class TestFwhtConformance(cf.OperatorConformance):
    """Every operator check for the Walsh–Hadamard transform (n = 64, both scalings)."""

    n = 64
    normalize = True

    def make_params(self, rng, dtype):
        return {}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, self.n), dtype)

    def fast(self, params, x):
        return sl.fwht(x, normalize=self.normalize)

    def dense(self, params):
        return hadamard(self.n) / (np.sqrt(self.n) if self.normalize else 1.0)

    def vjp(self, params, x, g):
        return {"x": sl.fwht_vjp(x, g, normalize=self.normalize)}

    def bad_inputs(self):
        return [
            ("length not a power of two", lambda: sl.fwht(np.ones(6)), ValueError,
             "power of two"),
            ("0-d x", lambda: sl.fwht(np.float64(1.0)), ValueError, "at least 1 dimension"),
            ("grad of the wrong shape", lambda: sl.fwht_vjp(np.ones(4), np.ones(8)),
             ValueError, r"grad must have shape \(4,\) \(the shape of fwht's output"),
            ("non-numeric grad", lambda: sl.fwht_vjp(np.ones(4), np.array(["a"] * 4)),
             TypeError, "grad must have a numeric dtype"),
            ("normalize not a bool", lambda: sl.fwht(np.ones(4), normalize="yes"), TypeError,
             "normalize must be True or False"),
            ("extended precision", lambda: sl.fwht(np.ones(4, np.longdouble)), TypeError,
             "extended precision"),
        ]


class TestFwhtUnnormalizedConformance(TestFwhtConformance):
    normalize = False
