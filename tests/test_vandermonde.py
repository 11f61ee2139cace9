"""The fused Vandermonde products (:mod:`structlin.vandermonde`): conformance of ``V @ v`` and
``V^T @ w`` as linear maps (dense equality, dot test, VJPs of the nodes and the vector against
finite differences, dtypes, batch isolation, layouts), the re-anchored powers' accuracy at long
lengths, exact identities and bad inputs; the Björck-Pereyra solves ``V^-1 b`` and ``V^-T b``
(conformance as linear maps of ``b``, dense equality, their componentwise accuracy on
monotone positive nodes against exact rational arithmetic, where Gaussian elimination loses
digits, the solve-multiply identity, batch isolation, repeated and non-finite nodes)."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structlin._cpu import vandermonde as cpu
from structlin.vandermonde import (
    matmul_vandermonde,
    matmul_vandermonde_vjp,
    solve_vandermonde,
    solve_vandermonde_vjp,
    vandermonde_to_dense,
)
from tests import conformance as cf
from tests.strategies import random_array, seeds

#: one small valid call of each public function added by the Björck-Pereyra part (merged into
#: tests/test_public_api_probe.py by the lead)
PROBE = {
    "solve_vandermonde": lambda: ((np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 3.0])),
                                  {"transpose": False}),
    "solve_vandermonde_vjp": lambda: ((np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 3.0]),
                                       np.array([1.0, 0.0, -1.0])), {"transpose": True}),
}

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


# ------------------------------------------------------------------ Björck-Pereyra solves


def _cheb_nodes(n, dtype, rng=None):
    """Well-conditioned nodes: Chebyshev points (real), rotated roots of unity (complex),
    shuffled."""
    if np.dtype(dtype).kind == "c":
        x = np.exp(2j * np.pi * (np.arange(n) + 0.3) / n)
    else:
        x = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    if rng is not None:
        x = rng.permutation(x)
    return x.astype(dtype)


class _SolveBase(cf.OperatorConformance):
    """``b -> V^-1 b`` (``V^-T b``) as a linear map of ``b``, the nodes its parameter."""

    transpose = False
    x_name = "b"

    def make_params(self, rng, dtype):
        return {"nodes": _cheb_nodes(N, dtype, rng)}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, N), dtype)

    def fast(self, p, x):
        return solve_vandermonde(p["nodes"], x, transpose=self.transpose)

    def dense(self, p):
        V = vandermonde_to_dense(p["nodes"], N)
        return np.linalg.inv(V.T if self.transpose else V)

    def vjp(self, p, x, g):
        gx, gb = solve_vandermonde_vjp(p["nodes"], x, g, transpose=self.transpose)
        return {"nodes": gx, "x": gb}

    def bad_inputs(self):
        x = _cheb_nodes(N, np.float64)
        b = np.ones(N)
        rep = x.copy()
        rep[3] = rep[1]
        return [
            ("repeated nodes", lambda: solve_vandermonde(rep, b), ValueError,
             r"x must have distinct nodes: x\[\.\.\., 1\] == x\[\.\.\., 3\]"),
            ("repeated nodes in one batch row",
             lambda: solve_vandermonde(np.stack([x, rep]), b, transpose=True), ValueError,
             r"distinct nodes.*batch index \(1,\)"),
            ("repeated nodes in the VJP", lambda: solve_vandermonde_vjp(rep, b, b), ValueError,
             "distinct nodes"),
            ("NaN node", lambda: solve_vandermonde(np.r_[x[:-1], np.nan], b), ValueError,
             "x must be finite"),
            ("infinite node", lambda: solve_vandermonde(np.r_[np.inf, x[1:]], b), ValueError,
             "x must be finite"),
            ("b too short", lambda: solve_vandermonde(x, b[:-1]), ValueError,
             r"b must have length 5 .*\(4,\)"),
            ("batch mismatch", lambda: solve_vandermonde(np.stack([x, x]), np.ones((3, N))),
             ValueError, r"do not broadcast: x has shape \(2, 5\) and b has shape \(3, 5\)"),
            ("transpose not bool", lambda: solve_vandermonde(x, b, transpose=1), TypeError,
             "transpose"),
            ("x 0-d", lambda: solve_vandermonde(1.0, b), ValueError, "x must have"),
            ("b 0-d", lambda: solve_vandermonde(x, 1.0), ValueError, "b must have"),
            ("grad of the wrong shape", lambda: solve_vandermonde_vjp(x, b, np.ones(N + 1)),
             ValueError, r"grad must have shape \(5,\).*\(6,\)"),
            ("grad None", lambda: solve_vandermonde_vjp(x, b, None), TypeError, "grad"),
        ]

    def test_object_and_string_arrays_are_refused_by_name(self):
        p, x, _ = self._case(np.float64)
        for arg, name in (("nodes", "x"), ("x", "b")):
            for bad in (lambda a: a.astype(object), lambda a: a.astype(str)):
                q = dict(p)
                xv = bad(x) if arg == "x" else x
                if arg == "nodes":
                    q["nodes"] = bad(p["nodes"])
                with pytest.raises(TypeError) as info:
                    self.fast(q, xv)
                assert re.search(rf"(?<!\w){name}(?!\w)", str(info.value)), str(info.value)


class TestSolveVandermondeConformance(_SolveBase):
    pass


class TestSolveVandermondeTransposedConformance(_SolveBase):
    transpose = True


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("transpose", [False, True])
def test_solve_matches_numpy_solve_on_the_dense_matrix(dtype, transpose):
    """n = 16 Chebyshev points (roots of unity for complex: V / sqrt(n) is unitary), a batch of
    3 right-hand sides sharing the nodes, against numpy.linalg.solve in 64-bit."""
    rng = np.random.default_rng(7)
    n = 16
    x = _cheb_nodes(n, dtype, rng)
    b = random_array(rng, (3, n), dtype)
    a = solve_vandermonde(x, b, transpose=transpose)
    assert a.dtype == dtype and a.shape == (3, n)
    V = vandermonde_to_dense(x.astype(np.complex128), n)
    want = np.linalg.solve(V.T if transpose else V, b.astype(np.complex128).T).T
    tol = 2e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11
    assert np.abs(a - want).max() <= tol * np.abs(want).max()


def _exact_solve(M, b):
    """Gaussian elimination in exact rational arithmetic."""
    n = len(b)
    A = [[*r, v] for r, v in zip(M, b, strict=True)]
    for k in range(n):
        for i in range(k + 1, n):
            f = A[i][k] / A[k][k]
            if f:
                A[i] = [u - f * w for u, w in zip(A[i], A[k], strict=True)]
    x = [Fraction(0)] * n
    for i in range(n - 1, -1, -1):
        x[i] = (A[i][n] - sum(A[i][j] * x[j] for j in range(i + 1, n))) / A[i][i]
    return x


@pytest.mark.parametrize("transpose", [False, True])
def test_monotone_positive_nodes_are_solved_to_full_relative_accuracy(transpose):
    """Nodes 0 < x_0 < ... < x_19 (dyadic: exact) and an alternating right-hand side: cond(V)
    is about 2e19, yet Björck-Pereyra's solution has every component to ``5 n u`` relative
    (Higham, Corollary 22.5); Gaussian elimination on the dense matrix (numpy.linalg.solve,
    the matrix rounded to float64) loses about 4 (primal) and 14 (dual) digits."""
    n = 20
    xs = [Fraction(i + 1, 32) for i in range(n)]
    bs = [Fraction((-1) ** i * (8 + i), 8) for i in range(n)]
    Vq = [[xj ** i for xj in xs] for i in range(n)]
    Mq = [list(r) for r in zip(*Vq, strict=True)] if transpose else Vq
    exact = np.array([float(v) for v in _exact_solve(Mq, bs)])
    x = np.array([float(v) for v in xs])
    b = np.array([float(v) for v in bs])
    a = solve_vandermonde(x, b, transpose=transpose)
    bp_err = float(np.max(np.abs(a - exact) / np.abs(exact)))
    assert bp_err <= 5 * n * np.finfo(np.float64).eps, bp_err
    Mf = np.array([[float(v) for v in r] for r in Mq])
    ge_err = float(np.max(np.abs(np.linalg.solve(Mf, b) - exact) / np.abs(exact)))
    assert ge_err > 1e4 * bp_err, (ge_err, bp_err)  # measured: 1e-4 (primal), 6e-2 (dual)


def _separated_nodes(rng, n, complex_):
    """Distinct, well separated nodes of a random scale and rotation."""
    x = _cheb_nodes(n, np.complex128 if complex_ else np.float64, rng)
    scale = rng.uniform(0.7, 1.3)
    return x * scale * (np.exp(1j * rng.uniform(0, np.pi)) if complex_ else 1.0)


@settings(max_examples=20, deadline=None)
@given(seed=seeds(), n=st.integers(1, 12), transpose=st.booleans(), complex_=st.booleans())
def test_solve_then_multiply_is_identity(seed, n, transpose, complex_):
    """``matmul_vandermonde(x, solve_vandermonde(x, b), n) == b`` and
    ``solve_vandermonde(x, matmul_vandermonde(x, a, n)) == a`` (both flags)."""
    rng = np.random.default_rng(seed)
    dt = np.complex128 if complex_ else np.float64
    x = _separated_nodes(rng, n, complex_)
    b = random_array(rng, (2, n), dt)
    a = solve_vandermonde(x, b, transpose=transpose)
    back = matmul_vandermonde(x, a, n, transpose=transpose)
    np.testing.assert_allclose(back, b, rtol=0, atol=1e-9 * np.abs(b).max())
    a2 = solve_vandermonde(x, matmul_vandermonde(x, b, n, transpose=transpose),
                           transpose=transpose)
    np.testing.assert_allclose(a2, b, rtol=0, atol=1e-9 * np.abs(b).max())


def test_solve_nodes_per_row_and_shared():
    """Per-row nodes (each row its own system) equal row-by-row calls; shared nodes broadcast
    over a batch of right-hand sides; gradients of shared nodes are summed."""
    rng = np.random.default_rng(11)
    xs = np.stack([_separated_nodes(rng, 6, True) for _ in range(4)]).reshape(2, 2, 6)
    b = random_array(rng, (2, 2, 6), np.complex128)
    a = solve_vandermonde(xs, b)
    for i in range(2):
        for j in range(2):
            np.testing.assert_array_equal(a[i, j], solve_vandermonde(xs[i, j], b[i, j]))
    x1 = xs[0, 0]
    a1 = solve_vandermonde(x1[None, :], b, transpose=True)
    assert a1.shape == (2, 2, 6)
    g = random_array(rng, a1.shape, np.complex128)
    gx, gb = solve_vandermonde_vjp(x1[None, :], b, g, transpose=True)
    assert gx.shape == (1, 6) and gb.shape == b.shape
    each = [solve_vandermonde_vjp(x1, b[i, j], g[i, j], transpose=True)[0]
            for i in range(2) for j in range(2)]
    np.testing.assert_allclose(gx[0], np.sum(each, axis=0), rtol=1e-12)


def test_solve_isolates_rows_and_small_sizes():
    """A NaN right-hand side stays in its row (rows on separate vector lanes, across a lane
    chunk boundary); n = 1 is b itself with a zero node gradient; n = 0 and empty batches."""
    rng = np.random.default_rng(12)
    B = cpu.LANES + 3
    x = _cheb_nodes(5, np.float32, rng)
    b = random_array(rng, (B, 5), np.float32)
    clean = solve_vandermonde(x, b)
    b[cpu.LANES, 2] = np.nan
    got = solve_vandermonde(x, b)
    assert np.isnan(got[cpu.LANES]).any()
    np.testing.assert_array_equal(np.delete(got, cpu.LANES, 0), np.delete(clean, cpu.LANES, 0))
    np.testing.assert_array_equal(solve_vandermonde([3.0], [[2.0], [5.0]]), [[2.0], [5.0]])
    gx, gb = solve_vandermonde_vjp([3.0], [2.0], [1.0])
    np.testing.assert_array_equal(gx, [0.0])
    np.testing.assert_array_equal(gb, [1.0])
    assert solve_vandermonde(np.ones(0), np.ones((2, 0))).shape == (2, 0)
    assert solve_vandermonde(x, np.ones((0, 5))).shape == (0, 5)


def test_solve_vjp_matches_finite_differences_with_per_row_nodes():
    rng = np.random.default_rng(13)
    for transpose in (False, True):
        x = np.stack([_separated_nodes(rng, 5, True) for _ in range(2)])
        b = random_array(rng, (2, 5), np.complex128)
        g = random_array(rng, (2, 5), np.complex128)
        gx, gb = solve_vandermonde_vjp(x, b, g, transpose=transpose)

        def loss(xx, bb, g=g, transpose=transpose):
            return float(np.real(np.vdot(g, solve_vandermonde(xx, bb, transpose=transpose))))

        h = 1e-6
        for d in (random_array(rng, x.shape, np.complex128) for _ in range(2)):
            fd = (loss(x + h * d, b) - loss(x - h * d, b)) / (2 * h)
            assert abs(fd - np.real(np.vdot(gx, d))) <= 1e-6 * max(1.0, abs(fd))
            fd = (loss(x, b + h * d) - loss(x, b - h * d)) / (2 * h)
            assert abs(fd - np.real(np.vdot(gb, d))) <= 1e-6 * max(1.0, abs(fd))


@pytest.mark.parametrize("transpose", [False, True])
def test_leja_order_keeps_roots_of_unity_and_chebyshev_points_backward_stable(transpose):
    """In their natural order the 64th roots of unity make Björck-Pereyra's divided
    differences grow like 2**n (relative residual 0.9 measured before the nodes were
    reordered); in Leja's order the residual is at rounding level, as is the componentwise
    backward error for 32 Chebyshev points (cond(V) ~ 1e13), within 10x of LU's."""
    rng = np.random.default_rng(21)
    n = 64
    x = np.exp(2j * np.pi * np.arange(n) / n)
    b = random_array(rng, (2, n), np.complex128)
    V = vandermonde_to_dense(x, n)
    M = V.T if transpose else V
    a = solve_vandermonde(x, b, transpose=transpose)
    assert np.abs(a @ M.T - b).max() <= 1e-12 * np.abs(b).max()
    n = 32
    x = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    b = rng.standard_normal(n)
    V = vandermonde_to_dense(x, n)
    M = V.T if transpose else V

    def backward_error(a):
        return float(np.max(np.abs(M @ a - b) / (np.abs(M) @ np.abs(a))))

    lu = backward_error(np.linalg.solve(M, b))
    assert backward_error(solve_vandermonde(x, b, transpose=transpose)) <= max(10 * lu, 1e-15)
