"""The fused Vandermonde products (:mod:`structlin.vandermonde`): conformance of ``V @ v`` and
``V^T @ w`` as linear maps (dense equality, dot test, VJPs of the nodes and the vector against
finite differences, dtypes, batch isolation, layouts), the re-anchored powers' accuracy at long
lengths, exact identities and bad inputs."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structlin._cpu import vandermonde as cpu
from structlin.vandermonde import (
    matmul_vandermonde,
    matmul_vandermonde_vjp,
    vandermonde_to_dense,
)
from tests import conformance as cf
from tests.strategies import random_array, seeds

N, M = 5, 7


def _nodes(rng, shape, dtype):
    """Nodes inside the unit disk (modulus 0.3 .. 0.95), of both signs when real."""
    r = rng.uniform(0.3, 0.95, shape)
    if np.dtype(dtype).kind == "c":
        return (r * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))).astype(dtype)
    return (r * rng.choice([-1.0, 1.0], shape)).astype(dtype)


class _Base(cf.OperatorConformance):
    transpose = False

    def make_params(self, rng, dtype):
        return {"nodes": _nodes(rng, (N,), dtype)}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, M if self.transpose else N), dtype)

    def fast(self, p, x):
        return matmul_vandermonde(p["nodes"], x, M, transpose=self.transpose)

    def dense(self, p):
        V = vandermonde_to_dense(p["nodes"], M)
        return V.T if self.transpose else V

    def vjp(self, p, x, g):
        gx, gv = matmul_vandermonde_vjp(p["nodes"], x, M, g, transpose=self.transpose)
        return {"nodes": gx, "x": gv}

    def bad_inputs(self):
        x = np.ones(N)
        return [
            ("v too short", lambda: matmul_vandermonde(x, np.ones(N - 1), M), ValueError,
             r"v must have length 5 .*\(4,\).*\(5,\)"),
            ("w of the wrong length", lambda: matmul_vandermonde(x, np.ones(N), M,
                                                                  transpose=True),
             ValueError, r"v must have length 7 .*\(5,\)"),
            ("batch mismatch", lambda: matmul_vandermonde(np.ones((2, N)), np.ones((3, N)), M),
             ValueError, r"do not broadcast: x has shape \(2, 5\) and v has shape \(3, 5\)"),
            ("m negative", lambda: matmul_vandermonde(x, x, -1), ValueError, "m must be"),
            ("m float", lambda: matmul_vandermonde(x, x, 4.0), TypeError, "m must be"),
            ("m string", lambda: matmul_vandermonde(x, x, "4"), TypeError, "m must be"),
            ("m huge", lambda: matmul_vandermonde(x, x, 1 << 60), ValueError, "m must be"),
            ("transpose not bool", lambda: matmul_vandermonde(x, x, M, transpose=1),
             TypeError, "transpose"),
            ("x 0-d", lambda: matmul_vandermonde(1.0, x, M), ValueError, "x must have"),
            ("grad of the wrong shape",
             lambda: matmul_vandermonde_vjp(x, x, M, np.ones(M + 1)), ValueError,
             r"grad must have shape \(7,\).*\(8,\)"),
            ("grad None", lambda: matmul_vandermonde_vjp(x, x, M, None), TypeError, "grad"),
        ]

    def test_object_and_string_arrays_are_refused_by_name(self):
        # the nodes are the function's ``x`` (the base class calls them "nodes"), the vector
        # its ``v``
        p, x, _ = self._case(np.float64)
        for arg, name in (("nodes", "x"), ("x", "v")):
            for bad in (lambda a: a.astype(object), lambda a: a.astype(str)):
                q = dict(p)
                xv = bad(x) if arg == "x" else x
                if arg == "nodes":
                    q["nodes"] = bad(p["nodes"])
                with pytest.raises(TypeError) as info:
                    self.fast(q, xv)
                assert re.search(rf"(?<!\w){name}(?!\w)", str(info.value)), str(info.value)


class TestVandermondeConformance(_Base):
    x_name = "v"


class TestVandermondeTransposedConformance(_Base):
    transpose = True
    x_name = "v"


# ------------------------------------------------------------------ accuracy and identities


def _powers_extended(x, m):
    """``x**i`` (i < m, rows) by repeated products in extended precision (x86's 80-bit long
    double: ``m u_ld`` is far below float64's rounding for the sizes here)."""
    xl = x.astype(np.clongdouble)
    P = np.empty((m, x.shape[0]), np.clongdouble)
    P[0] = 1
    P[1:] = xl
    return np.cumprod(P, axis=0)


@pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18, reason="no extended long double")
@pytest.mark.parametrize("dtype", [np.complex64, np.float32, np.complex128])
def test_long_products_stay_accurate_thanks_to_the_anchors(dtype):
    """At m = 20000 (many anchors, several exact ones, chunked rows) the single precision error
    stays at a few hundred ulps, far below plain repeated products' ``m u``; in double
    precision (anchors in the same precision) it is ``O(m u)``, as for any float64 method."""
    rng = np.random.default_rng(1)
    n, m = 6, 20000
    if np.dtype(dtype).kind == "c":
        x = (np.exp(-rng.uniform(1e-5, 1e-4, n) + 1j * rng.uniform(0, np.pi, n))).astype(dtype)
    else:
        x = (rng.choice([-1, 1], n) * np.exp(-rng.uniform(1e-5, 1e-4, n))).astype(dtype)
    v = random_array(rng, (n,), dtype)
    w = random_array(rng, (m,), dtype)
    P = _powers_extended(x, m)
    eps = np.finfo(dtype).eps
    tol = 400 * eps if np.dtype(dtype).itemsize <= 8 else 4 * m * eps
    y = matmul_vandermonde(x, v, m)
    err = float(np.abs(y - P @ v.astype(np.clongdouble)).max() / np.abs(v).sum())
    assert err < tol, err
    yt = matmul_vandermonde(x, w, m, transpose=True)
    errt = float(np.abs(yt - P.T @ w.astype(np.clongdouble)).max() / np.abs(w).sum())
    assert errt < tol, errt


def test_zero_nodes_give_the_first_coefficient():
    """``0**0 = 1`` and ``0**i = 0``: V @ v at x = 0 is (sum v, 0, 0, ...), also past the
    first anchor block."""
    v = np.array([2.0, 3.0])
    y = matmul_vandermonde(np.zeros(2), v, 200)
    np.testing.assert_array_equal(y, np.r_[5.0, np.zeros(199)])
    yt = matmul_vandermonde(np.zeros(2), np.arange(1.0, 201.0), 200, transpose=True)
    np.testing.assert_array_equal(yt, [1.0, 1.0])


def test_unit_nodes_give_exact_sums():
    """``x = 1`` and ``x = -1``: every power is exactly +-1 (the anchors included)."""
    x = np.array([1.0, -1.0])
    y = matmul_vandermonde(x, np.array([1.0, 1.0]), 9000)
    np.testing.assert_array_equal(y, np.tile([2.0, 0.0], 4500))


@settings(max_examples=15, deadline=None)
@given(seed=seeds(), n=st.integers(1, 9), m=st.integers(1, 300),
       dtype=st.sampled_from([np.float64, np.complex128]))
def test_transpose_is_the_adjoint_without_conjugation(seed, n, m, dtype):
    """``w . (V v) == v . (V^T w)`` (the bilinear identity), for any sizes."""
    rng = np.random.default_rng(seed)
    x = _nodes(rng, (n,), dtype)
    v = random_array(rng, (n,), dtype)
    w = random_array(rng, (m,), dtype)
    lhs = w @ matmul_vandermonde(x, v, m)
    rhs = v @ matmul_vandermonde(x, w, m, transpose=True)
    assert abs(lhs - rhs) <= 1e-11 * (np.abs(w).sum() * np.abs(v).sum())


@settings(max_examples=10, deadline=None)
@given(seed=seeds(), m=st.integers(2, 200))
def test_geometric_series(seed, m):
    """``sum_i x**i = (1 - x**m) / (1 - x)``: one node, v = 1, transposed with w = 1."""
    rng = np.random.default_rng(seed)
    x = _nodes(rng, (3,), np.complex128)
    got = matmul_vandermonde(x, np.ones(m), m, transpose=True)
    np.testing.assert_allclose(got, (1 - x ** m) / (1 - x), rtol=1e-12)


def test_broadcast_nodes_and_gradients_summed_back():
    rng = np.random.default_rng(3)
    x = _nodes(rng, (1, 4), np.complex128)
    v = random_array(rng, (3, 2, 4), np.complex128)
    y = matmul_vandermonde(x, v, 6)
    assert y.shape == (3, 2, 6)
    np.testing.assert_allclose(y, v @ vandermonde_to_dense(x[0], 6).T, rtol=1e-13)
    g = random_array(rng, y.shape, np.complex128)
    gx, gv = matmul_vandermonde_vjp(x, v, 6, g)
    assert gx.shape == (1, 4) and gv.shape == v.shape
    gx_each = [matmul_vandermonde_vjp(x[0], v[i, j], 6, g[i, j])[0]
               for i in range(3) for j in range(2)]
    np.testing.assert_allclose(gx[0], np.sum(gx_each, axis=0), rtol=1e-12)


def test_m_one_and_m_zero():
    x = np.array([0.5, 2.0])
    np.testing.assert_array_equal(matmul_vandermonde(x, [1.0, 2.0], 1), [3.0])
    assert matmul_vandermonde(x, [1.0, 2.0], 0).shape == (0,)
    np.testing.assert_array_equal(matmul_vandermonde(x, np.ones(0), 0, transpose=True), [0, 0])
    gx, gv = matmul_vandermonde_vjp(x, [1.0, 2.0], 1, [1.0])
    np.testing.assert_array_equal(gx, [0.0, 0.0])
    np.testing.assert_array_equal(gv, [1.0, 1.0])


def test_nan_node_stays_in_its_row():
    rng = np.random.default_rng(4)
    x = _nodes(rng, (4, 3), np.complex64)
    v = random_array(rng, (4, 3), np.complex64)
    clean = matmul_vandermonde(x, v, 300)
    x[2, 1] = np.nan
    y = matmul_vandermonde(x, v, 300)
    assert np.isnan(y[2, 1:]).all()  # x**0 = 1 even for NaN, as numpy.power has it
    np.testing.assert_array_equal(y[2, 0], clean[2, 0])
    np.testing.assert_array_equal(np.delete(y, 2, 0), np.delete(clean, 2, 0))


def test_kernel_writes_every_output_entry_when_rows_are_chunked():
    """One row and m far above a chunk: the row is split into tasks (several chunks, the
    partial sums of the transposed product added)."""
    rng = np.random.default_rng(5)
    x = np.exp(-rng.uniform(1e-4, 1e-3, (1, 3)) + 1j * rng.uniform(0, 3, (1, 3)))
    v = random_array(rng, (1, 3), np.complex128)
    m = 5 * cpu.MIN_CHUNK + 17
    out = np.full((1, m), np.nan, np.complex128)
    cpu.vandermonde(x, v, out)
    np.testing.assert_allclose(out[0], vandermonde_to_dense(x[0], m) @ v[0], rtol=0,
                               atol=1e-12 * np.abs(v).sum())
    w = random_array(rng, (1, m), np.complex128)
    outt = np.full((1, 3), np.nan, np.complex128)
    cpu.vandermonde_t(x, w, outt)
    np.testing.assert_allclose(outt[0], vandermonde_to_dense(x[0], m).T @ w[0], rtol=0,
                               atol=1e-12 * np.abs(w).sum())


def test_dense_reference():
    V = vandermonde_to_dense(np.array([2.0, 0.0, -1.0], np.float32), 3)
    assert V.dtype == np.float32
    np.testing.assert_array_equal(V, [[1, 1, 1], [2, 0, -1], [4, 0, 1]])
    assert vandermonde_to_dense(np.ones((2, 3, 4), np.complex64), 5).shape == (2, 3, 5, 4)
    with pytest.raises(ValueError, match="m must be"):
        vandermonde_to_dense([1.0], -2)
    with pytest.raises(TypeError, match="x must"):
        vandermonde_to_dense(np.array(["a"]), 2)
