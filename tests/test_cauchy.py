"""Tests of the fused Cauchy product (structlin/cauchy.py): the conformance checks of a linear
operator in ``v``, broadcasting of the batch dimensions against the dense reference, the VJP of
the nodes under broadcasting, coinciding nodes, and the exact antisymmetry of the Cauchy
matrix."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structlin.cauchy import cauchy_to_dense, matmul_cauchy, matmul_cauchy_vjp
from tests import conformance as cf
from tests.strategies import tolerance

M_NODES, N_NODES = 7, 5


def _nodes(rng, count, offset, dtype, shape=()):
    """Interleaved, well-separated nodes (``x_i`` and ``y_j`` at least ~0.3 apart)."""
    base = np.arange(count) + offset + rng.uniform(-0.1, 0.1, (*shape, count))
    if np.dtype(dtype).kind == "c":
        base = base + 1j * rng.uniform(-1.0, 1.0, (*shape, count))
    return base.astype(dtype)


def _ref(x, y, v):
    x, y, v = (np.asarray(a, np.complex128) for a in (x, y, v))
    return np.einsum("...ij,...j->...i", 1 / (x[..., :, None] - y[..., None, :]), v)


class TestCauchyConformance(cf.OperatorConformance):
    x_name = "v"

    def make_params(self, rng, dtype):
        return {"x_nodes": _nodes(rng, M_NODES, 0.5, dtype),
                "y_nodes": _nodes(rng, N_NODES, 0.0, dtype)}

    def make_x(self, rng, dtype, batch):
        v = rng.standard_normal((*batch, N_NODES))
        if np.dtype(dtype).kind == "c":
            v = v + 1j * rng.standard_normal((*batch, N_NODES))
        return v.astype(dtype)

    def fast(self, p, x):
        return matmul_cauchy(p["x_nodes"], p["y_nodes"], x)

    def dense(self, p):
        return cauchy_to_dense(p["x_nodes"], p["y_nodes"])

    def vjp(self, p, x, g):
        gx, gy, gv = matmul_cauchy_vjp(p["x_nodes"], p["y_nodes"], x, g)
        return {"x_nodes": gx, "y_nodes": gy, "x": gv}

    def bad_inputs(self):
        return [
            ("v of the wrong length", lambda: matmul_cauchy(np.ones(3), np.arange(4.0) + 9,
                                                            np.ones(5)), ValueError,
             "v must have length n = 4"),
            ("coinciding nodes", lambda: matmul_cauchy([1.0, 2.0], [3.0, 2.0], [1.0, 1.0]),
             ValueError, r"x_nodes\[..., 1\] == y_nodes\[..., 1\]"),
            ("batches that do not broadcast", lambda: matmul_cauchy(
                np.ones((2, 3)), np.zeros((3, 4)), np.ones(4)), ValueError, "must broadcast"),
            ("scalar nodes", lambda: matmul_cauchy(1.0, [0.0], [1.0]), ValueError,
             "x_nodes must have at least 1"),
            ("grad of the wrong shape", lambda: matmul_cauchy_vjp(
                np.ones(3), np.zeros(2), np.ones(2), np.ones(4)), ValueError,
             r"grad must have shape \(3,\)"),
        ]


@pytest.mark.parametrize("dtype", [np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("xs,ys,vs", [
    ((2, 1), (1, 3), (2, 3)),        # nodes vary by row, shared along the vector axis
    ((), (4,), ()),                  # one x, per-row poles, one weight vector
    ((3,), (), (2, 3)),              # per-row x, shared poles, two vectors per row
    ((2, 3), (2, 3), (2, 3)),        # everything per row
    ((), (), (2, 2)),                # shared nodes: one kernel row, K = 4 vectors
    ((), (1,), (40,)),               # K = 40 vectors: several chunks of KCHUNK = 16
])
def test_broadcast_batches_match_the_dense_product(xs, ys, vs, dtype):
    rng = np.random.default_rng(len(xs) * 10 + len(ys))
    m, n = 300, 270  # more than one block of i and one SIMD tile
    x = _nodes(rng, m, 0.5, dtype, xs)
    y = _nodes(rng, n, 0.0, dtype, ys)
    v = (rng.standard_normal((*vs, n)) + 1j * rng.standard_normal((*vs, n))).astype(dtype) \
        if np.dtype(dtype).kind == "c" else rng.standard_normal((*vs, n)).astype(dtype)
    out = matmul_cauchy(x, y, v)
    want = _ref(x, y, v)
    assert out.shape == want.shape and out.dtype == dtype
    err = np.abs(out - want).max() / np.abs(want).max()
    assert err < tolerance(dtype, n) * 10, err


def _fd_grad(f, a, eps=1e-6):
    g = np.zeros(a.shape, dtype=np.complex128 if a.dtype.kind == "c" else np.float64)
    for idx in np.ndindex(a.shape):
        for d in ((1, 1j) if a.dtype.kind == "c" else (1,)):
            ap, am = a.copy(), a.copy()
            ap[idx] += eps * d
            am[idx] -= eps * d
            g[idx] += d * (f(ap) - f(am)) / (2 * eps)
    return g


def test_vjp_of_broadcast_nodes_matches_finite_differences():
    rng = np.random.default_rng(3)
    x = _nodes(rng, 4, 0.5, np.complex128, (2, 1))
    y = _nodes(rng, 3, 0.0, np.complex128, (1,))
    v = rng.standard_normal((2, 3, 3)) + 1j * rng.standard_normal((2, 3, 3))
    g = rng.standard_normal((2, 3, 4)) + 1j * rng.standard_normal((2, 3, 4))

    def loss(x_, y_, v_):
        return float(np.sum(np.conj(g) * matmul_cauchy(x_, y_, v_)).real)

    gx, gy, gv = matmul_cauchy_vjp(x, y, v, g)
    assert gx.shape == x.shape and gy.shape == y.shape and gv.shape == v.shape
    np.testing.assert_allclose(gx, _fd_grad(lambda a: loss(a, y, v), x), atol=1e-7)
    np.testing.assert_allclose(gy, _fd_grad(lambda a: loss(x, a, v), y), atol=1e-7)
    np.testing.assert_allclose(gv, _fd_grad(lambda a: loss(x, y, a), v), atol=1e-7)


def test_real_nodes_with_complex_weights_give_real_node_gradients():
    rng = np.random.default_rng(4)
    x = _nodes(rng, 5, 0.5, np.float32)
    y = _nodes(rng, 4, 0.0, np.float32)
    v = (rng.standard_normal(4) + 1j * rng.standard_normal(4)).astype(np.complex64)
    g = (rng.standard_normal(5) + 1j * rng.standard_normal(5)).astype(np.complex64)
    out = matmul_cauchy(x, y, v)
    assert out.dtype == np.complex64
    gx, gy, gv = matmul_cauchy_vjp(x, y, v, g)
    assert (gx.dtype, gy.dtype, gv.dtype) == (np.float32, np.float32, np.complex64)
    want = matmul_cauchy_vjp(x.astype(np.complex128), y.astype(np.complex128),
                             v.astype(np.complex128), g.astype(np.complex128))
    np.testing.assert_allclose(gx, want[0].real, rtol=1e-4)
    np.testing.assert_allclose(gy, want[1].real, rtol=1e-4)


def test_coincidence_in_one_batch_row_is_reported_and_nan_rows_are_not():
    x = np.array([[0.5, 1.5], [0.5, 1.5]])
    y = np.array([[0.0, 1.0], [0.0, 1.5]])
    with pytest.raises(ValueError, match=r"row 1 of the flattened batch"):
        matmul_cauchy(x, y, np.ones(2))
    with pytest.raises(ValueError, match="must not share a value"):
        matmul_cauchy_vjp(x, y, np.ones(2), np.ones((2, 2)))
    v = np.array([[np.nan, 1.0], [1.0, 1.0]])
    out = matmul_cauchy(x[:1].repeat(2, 0), y[:1].repeat(2, 0), v)  # NaN data: no error
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()


def test_empty_and_zero_pole_products():
    assert matmul_cauchy(np.ones((0, 3)), [0.0], [1.0]).shape == (0, 3)
    np.testing.assert_array_equal(matmul_cauchy([1.0, 2.0], np.zeros(0), np.zeros(0)),
                                  [0.0, 0.0])
    gx, gy, gv = matmul_cauchy_vjp([1.0, 2.0], np.zeros(0), np.zeros(0), [1.0, 1.0])
    assert gx.tolist() == [0.0, 0.0] and gy.shape == gv.shape == (0,)


def test_cauchy_to_dense_refuses_coinciding_nodes():
    with pytest.raises(ValueError, match="must not share a value"):
        cauchy_to_dense([1.0, 2.0], [2.0])


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 300), n=st.integers(1, 40), seed=st.integers(0, 2**16),
       cplx=st.booleans())
def test_exchanging_the_nodes_negates_the_transpose(m, n, seed, cplx):
    """``u^T C(x, y) v = -v^T C(y, x) u``: the Cauchy matrix of exchanged nodes is minus the
    transpose."""
    rng = np.random.default_rng(seed)
    dtype = np.complex128 if cplx else np.float64
    x = _nodes(rng, m, 0.5, dtype)
    y = _nodes(rng, n, 0.0, dtype)
    u = rng.standard_normal(m)
    v = rng.standard_normal(n)
    lhs = u @ matmul_cauchy(x, y, v)
    rhs = -(v @ matmul_cauchy(y, x, u))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs)) * (m + n)
