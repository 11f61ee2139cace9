"""Tests of the kernel feature maps (structlin/kernel_features.py): the fused map against its
definition, gradients against finite differences, dtypes, batches, layouts, bad inputs, and the
Hadamard-structured maps (SORF, Fastfood) against their explicit frequencies."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import hadamard

import structlin as sl
from tests import conformance as cf


def _reference(X, nodes, weights, phases=None):
    t = np.asarray(X, np.float64) @ np.asarray(nodes, np.float64).T
    w = np.asarray(weights, np.float64)
    if phases is not None:
        return np.sqrt(2 * w) * np.cos(t + np.asarray(phases, np.float64))
    return np.hstack([np.sqrt(w) * np.cos(t), np.sqrt(w) * np.sin(t)])


def _rule(rng, m, d, dtype=np.float64):
    nodes = rng.standard_normal((m, d)).astype(dtype)
    weights = rng.uniform(0.1, 1.0, m).astype(dtype)
    return nodes, weights / weights.sum()


def _spec(with_phases):
    def fast(p, x):
        return sl.kernel_features(x, p["nodes"], p["weights"], phases=p.get("phases"))

    def vjp(p, x, g):
        grads = sl.kernel_features_vjp(x, p["nodes"], p["weights"], g, phases=p.get("phases"))
        names = ["x", "nodes", "weights"] + (["phases"] if with_phases else [])
        return dict(zip(names, grads, strict=True))

    return cf.OperatorSpec(fast=fast, dense=None, vjp=vjp)


# d = 3 takes the SIMD projection, d = 40 the BLAS one; m spans several node chunks
@pytest.mark.parametrize("d", [1, 3, 40])
@pytest.mark.parametrize("m", [1, 37, 600])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_the_definition(d, m, dtype):
    rng = np.random.default_rng(d * 1000 + m)
    X = rng.standard_normal((300, d)).astype(dtype)  # several 256-row BLAS tiles
    nodes, weights = _rule(rng, m, d, dtype)
    Z = sl.kernel_features(X, nodes, weights)
    assert Z.shape == (300, 2 * m) and Z.dtype == dtype
    tol = 2e-5 * np.sqrt(d) if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(Z, _reference(X, nodes, weights), atol=tol, rtol=0)
    phases = rng.uniform(0, 2 * np.pi, m).astype(dtype)
    Zp = sl.kernel_features(X, nodes, weights, phases=phases)
    assert Zp.shape == (300, m)
    np.testing.assert_allclose(Zp, _reference(X, nodes, weights, phases), atol=2 * tol, rtol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sine_and_cosine_are_accurate_over_the_reduced_range_and_beyond(dtype):
    # the polynomial range (|t| < 4e3 float32, 1e6 float64) and the libm fallback beyond it
    top = 4e3 if dtype == np.float32 else 1e6
    for hi in (top, 10 * top):
        t = np.linspace(-hi, hi, 100_001).astype(dtype)
        Z = sl.kernel_features(t[:, None], np.ones((1, 1), dtype), np.ones(1, dtype))
        t64 = t.astype(np.float64)
        ulp = np.finfo(dtype).eps
        assert np.abs(Z[:, 0] - np.cos(t64)).max() < 4 * ulp
        assert np.abs(Z[:, 1] - np.sin(t64)).max() < 4 * ulp


def test_gram_matrix_is_the_rule_sum():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((6, 4)), rng.standard_normal((5, 4))
    nodes, weights = _rule(rng, 50, 4)
    G = sl.kernel_features(X, nodes, weights) @ sl.kernel_features(Y, nodes, weights).T
    delta = X[:, None, :] - Y[None, :, :]
    want = (weights * np.cos(delta @ nodes.T)).sum(-1)
    np.testing.assert_allclose(G, want, atol=1e-13)


@pytest.mark.parametrize("with_phases", [False, True])
@pytest.mark.parametrize("d,batch", [(3, (2, 4)), (40, (300,))])  # SIMD and BLAS projections
def test_vjp_matches_finite_differences(with_phases, d, batch):
    rng = np.random.default_rng(2)
    nodes, weights = _rule(rng, 9, d)
    nodes /= np.sqrt(d)
    params = {"nodes": nodes, "weights": weights}
    if with_phases:
        params["phases"] = rng.uniform(0, 6, 9)
    x = rng.standard_normal((*batch, d))
    g = rng.standard_normal((*batch, 9 if with_phases else 18))
    cf.check_vjp(_spec(with_phases), params, x, g, rtol=1e-6, n_directions=3, rng=rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_single_precision_in_single_precision_out_for_every_array(dtype):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5, 3)).astype(dtype)
    nodes, weights = _rule(rng, 4, 3, dtype)
    assert sl.kernel_features(X, nodes, weights).dtype == dtype
    grads = sl.kernel_features_vjp(X, nodes, weights, np.ones((5, 8), dtype))
    assert [a.dtype for a in grads] == [dtype] * 3


def test_result_dtype_follows_numpy_promotion():
    rng = np.random.default_rng(4)
    nodes, weights = _rule(rng, 4, 3)
    X32 = rng.standard_normal((5, 3)).astype(np.float32)
    assert sl.kernel_features(X32, nodes, weights).dtype == np.float64
    assert sl.kernel_features(X32, nodes.astype(np.float32),
                              weights.astype(np.float32)).dtype == np.float32
    assert sl.kernel_features(np.ones((2, 3), int), nodes, weights).dtype == np.float64


def test_rows_are_independent_and_non_finite_stays_in_its_row():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((70, 30))
    nodes, weights = _rule(rng, 300, 30)
    clean = sl.kernel_features(X, nodes, weights)
    X[3, 4], X[50, 0] = np.nan, np.inf
    Z = sl.kernel_features(X, nodes, weights)
    bad = np.zeros(70, bool)
    bad[[3, 50]] = True
    assert np.isnan(Z[bad]).all()
    np.testing.assert_array_equal(Z[~bad], clean[~bad])
    # a huge entry sends its tile to libm: the other rows keep the values of the fast path
    X[3, 4], X[50, 0] = 1e9, 0.0
    Z = sl.kernel_features(X, nodes, weights)
    np.testing.assert_allclose(Z[~bad], clean[~bad], atol=1e-15)


def test_leading_batch_dimensions_layouts_lists_and_empty_batches():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((2, 3, 5))
    nodes, weights = _rule(rng, 7, 5)
    Z = sl.kernel_features(X, nodes, weights)
    assert Z.shape == (2, 3, 14)
    np.testing.assert_array_equal(Z.reshape(6, 14), sl.kernel_features(X.reshape(6, 5), nodes,
                                                                       weights))
    np.testing.assert_array_equal(sl.kernel_features(np.asfortranarray(X[0]), nodes, weights),
                                  Z[0])
    np.testing.assert_array_equal(sl.kernel_features(X[0].tolist(), nodes.tolist(),
                                                     weights.tolist()), Z[0])
    wide = np.zeros((3, 10))
    wide[:, ::2] = X[0]
    np.testing.assert_array_equal(sl.kernel_features(wide[:, ::2], nodes, weights), Z[0])
    assert sl.kernel_features(np.ones((0, 5)), nodes, weights).shape == (0, 14)
    gX, gn, gw = sl.kernel_features_vjp(np.ones((0, 5)), nodes, weights, np.ones((0, 14)))
    assert gX.shape == (0, 5) and not gn.any() and not gw.any()


def test_inputs_are_not_modified_and_out_is_written():
    rng = np.random.default_rng(7)
    nodes, weights = _rule(rng, 6, 2)
    x = rng.standard_normal((4, 2))
    cf.check_inputs_not_modified(_spec(False), {"nodes": nodes, "weights": weights}, x)
    out = np.empty((4, 12))
    res = sl.kernel_features(x, nodes, weights, out=out)
    assert res is out
    np.testing.assert_allclose(out, _reference(x, nodes, weights), atol=1e-14)


BAD = [
    ("X of the wrong width", lambda n, w: sl.kernel_features(np.ones((3, 4)), n, w),
     ValueError, "X must have d = 2"),
    ("nodes not 2-D", lambda n, w: sl.kernel_features(np.ones((3, 2)), n[0], w),
     ValueError, "nodes must have shape"),
    ("weights of the wrong length", lambda n, w: sl.kernel_features(np.ones((3, 2)), n, w[:2]),
     ValueError, "weights"),
    ("negative weights", lambda n, w: sl.kernel_features(np.ones((3, 2)), n, -w),
     ValueError, "non-negative"),
    ("NaN nodes", lambda n, w: sl.kernel_features(np.ones((3, 2)), n * np.nan, w),
     ValueError, "nodes must be finite"),
    ("complex X", lambda n, w: sl.kernel_features(np.ones((3, 2)) * 1j, n, w),
     TypeError, "must be real"),
    ("string X", lambda n, w: sl.kernel_features(np.array([["a", "b"]]), n, w),
     TypeError, "X must have a numeric dtype"),
    ("object weights", lambda n, w: sl.kernel_features(np.ones((3, 2)), n,
                                                       np.array([1, "a", None], object)),
     TypeError, "weights"),
    ("phases of the wrong length", lambda n, w: sl.kernel_features(np.ones((3, 2)), n, w,
                                                                   phases=np.ones(2)),
     ValueError, "phases"),
    ("out of the wrong shape", lambda n, w: sl.kernel_features(np.ones((3, 2)), n, w,
                                                               out=np.empty((3, 5))),
     ValueError, "out must have shape"),
    ("g of the wrong shape", lambda n, w: sl.kernel_features_vjp(np.ones((3, 2)), n, w,
                                                                 np.ones((3, 5))),
     ValueError, "g must have shape"),
    ("unknown keyword", lambda n, w: sl.kernel_features(np.ones((3, 2)), n, w, gamma=1.0),
     TypeError, "gamma"),
    ("SORF signs of the wrong width", lambda n, w: sl.sorf_features(np.ones((3, 5)),
                                                                   np.ones((2, 3, 4))),
     ValueError, "signs must have shape"),
    ("SORF gamma <= 0", lambda n, w: sl.sorf_features(np.ones((3, 2)), np.ones((1, 3, 2)),
                                                      gamma=0.0),
     ValueError, "gamma"),
    ("SORF too many nodes", lambda n, w: sl.sorf_features(np.ones((3, 2)), np.ones((1, 3, 2)),
                                                          n_nodes=3),
     ValueError, "n_nodes"),
    ("Fastfood perm not a permutation",
     lambda n, w: sl.fastfood_features(np.ones((3, 2)), np.ones((1, 2)), np.zeros((1, 2), int),
                                       np.ones((1, 2)), np.ones((1, 2))),
     ValueError, "permutation"),
    ("Fastfood float perm",
     lambda n, w: sl.fastfood_features(np.ones((3, 2)), np.ones((1, 2)), np.ones((1, 2)),
                                       np.ones((1, 2)), np.ones((1, 2))),
     TypeError, "perm must be an integer"),
    ("sorf_parameters n_nodes 2.5", lambda n, w: sl.sorf_parameters(3, 2.5),
     TypeError, "n_nodes must be an integer"),
    ("fastfood_parameters d = 0", lambda n, w: sl.fastfood_parameters(0, 4),
     ValueError, "d must be at least 1"),
]


@pytest.mark.parametrize("label,call,exc,match", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_raise_clear_errors(label, call, exc, match):
    rng = np.random.default_rng(8)
    nodes, weights = _rule(rng, 3, 2)
    with pytest.raises(exc, match=match):
        call(nodes, weights)


# ----------------------------------------------------------------- SORF and Fastfood


@pytest.mark.parametrize("d,n_nodes", [(1, 1), (5, 20), (8, 8), (6, 100)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sorf_matches_its_explicit_frequencies(d, n_nodes, dtype):
    rng = np.random.default_rng(d + n_nodes)
    X = rng.standard_normal((9, d)).astype(dtype)
    s = sl.sorf_parameters(d, n_nodes, random_state=1)
    Z = sl.sorf_features(X, s, gamma=0.3, n_nodes=n_nodes)
    assert Z.shape == (9, 2 * n_nodes) and Z.dtype == dtype
    W = sl.sorf_nodes(s, d, gamma=0.3)[:n_nodes]
    want = _reference(X, W, np.full(n_nodes, 1.0 / n_nodes))
    np.testing.assert_allclose(Z, want, atol=3e-5 if dtype == np.float32 else 1e-12)


def test_sorf_frequencies_are_orthogonal_blocks_built_from_hadamard_matrices():
    s = sl.sorf_parameters(8, 16, random_state=3)
    W = sl.sorf_nodes(s, 8, gamma=0.5)
    H = hadamard(8) / np.sqrt(8)
    np.testing.assert_allclose(W[:8], np.sqrt(8) * (H * s[0, 0]) @ (H * s[0, 1]) @ (H * s[0, 2]))
    for b in range(2):
        blk = W[8 * b:8 * b + 8]
        np.testing.assert_allclose(blk @ blk.T, 8 * np.eye(8), atol=1e-12)


@pytest.mark.parametrize("d,n_nodes", [(1, 1), (3, 8), (6, 50)])
def test_fastfood_matches_its_explicit_frequencies(d, n_nodes):
    rng = np.random.default_rng(d)
    X = rng.standard_normal((2, 3, d))
    f = sl.fastfood_parameters(d, n_nodes, random_state=2)
    Z = sl.fastfood_features(X, *f, gamma=0.7, n_nodes=n_nodes)
    V = sl.fastfood_nodes(*f, d, gamma=0.7)[:n_nodes]
    want = _reference(X.reshape(6, d), V, np.full(n_nodes, 1.0 / n_nodes)).reshape(2, 3, -1)
    np.testing.assert_allclose(Z, want, atol=1e-12)


def test_structured_features_approximate_the_rbf_kernel():
    # 4096 frequencies: the Gram error of random-like features is about 1/sqrt(4096) ~ 0.016
    rng = np.random.default_rng(9)
    X = rng.standard_normal((40, 10)) * 0.5
    K = np.exp(-0.2 * ((X[:, None] - X[None]) ** 2).sum(-1))
    for Z in (sl.sorf_features(X, sl.sorf_parameters(10, 4096, random_state=0), gamma=0.2),
              sl.fastfood_features(X, *sl.fastfood_parameters(10, 4096, random_state=0),
                                   gamma=0.2)):
        assert np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K) < 0.05


@settings(max_examples=25, deadline=None)
@given(d=st.integers(1, 30), m=st.integers(1, 300), n=st.integers(1, 40),
       seed=st.integers(0, 2**31 - 1))
def test_property_features_of_a_point_have_squared_norm_sum_of_weights(d, m, n, seed):
    # cos^2 + sin^2 = 1: ||Z(x)||^2 = sum_j w_j, for every point, whatever the rule
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * 3
    nodes, weights = _rule(rng, m, d)
    Z = sl.kernel_features(X, nodes, weights)
    np.testing.assert_allclose((Z * Z).sum(1), weights.sum(), rtol=1e-13)
