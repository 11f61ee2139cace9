"""Pixelfly: flat block butterfly mask, sparse + low-rank multiply, VJP and projection."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import structlin as sl
from tests import conformance as cf
from tests.strategies import batch_shapes, dtypes, random_array, seeds, tolerance


def transposed_blocks(blocks, mask):
    """Blocks of ``S^T`` in row-major order of ``mask.T`` (each block transposed)."""
    rows, cols = np.nonzero(mask)
    perm = np.lexsort((rows, cols))
    return np.ascontiguousarray(np.swapaxes(blocks[perm], 1, 2))


def spec(mask) -> cf.OperatorSpec:
    """The product with ``mask`` fixed; parameters ``blocks``, ``U``, ``V``."""

    def vjp(p, x, g):
        gb, gU, gV, gx = sl.pixelfly_multiply_vjp(p["blocks"], mask, p["U"], p["V"], x, g)
        return {"blocks": gb, "U": gU, "V": gV, "x": gx}

    def adjoint(p, y):
        # M^H = S^H + conj(V) conj(U)^T: a Pixelfly matrix on mask.T, through the public API
        bt = np.conj(transposed_blocks(p["blocks"], mask))
        return sl.pixelfly_multiply(bt, mask.T, np.conj(p["V"]), np.conj(p["U"]), y)

    return cf.OperatorSpec(
        fast=lambda p, x: sl.pixelfly_multiply(p["blocks"], mask, p["U"], p["V"], x),
        dense=lambda p: sl.pixelfly_to_dense(p["blocks"], mask, p["U"], p["V"]),
        vjp=vjp,
        adjoint=adjoint,
    )


def params(rng, mask, bs, rank, bdt, udt=None):
    nbo, nbi = mask.shape
    udt = bdt if udt is None else udt
    return {
        "blocks": random_array(rng, (int(mask.sum()), bs, bs), bdt),
        "U": random_array(rng, (nbo * bs, rank), udt, scale=0.5),
        "V": random_array(rng, (nbi * bs, rank), udt, scale=0.5),
    }


@st.composite
def problems(draw, max_blocks=4, max_bs=5):
    """A random (mask, block size, rank, seed): flat butterfly or arbitrary masks."""
    seed = draw(seeds())
    rng = np.random.default_rng(seed)
    bs = draw(st.integers(1, max_bs))
    if draw(st.booleans()):
        lm, ratio = draw(st.integers(0, 2)), draw(st.sampled_from([(1, 1), (1, 2), (2, 1)]))
        m = 1 << lm
        nf = draw(st.integers(0, lm))
        mask = sl.flat_block_butterfly_mask(m * ratio[0] * bs, m * ratio[1] * bs, bs, nf)
    else:
        shape = (draw(st.integers(1, max_blocks)), draw(st.integers(1, max_blocks)))
        mask = rng.random(shape) < draw(st.sampled_from([0.0, 0.4, 1.0]))
    rank = draw(st.integers(0, 3))
    return mask, bs, rank, rng


@given(prob=problems(), batch=batch_shapes(), bdt=dtypes(), udt=dtypes(), xdt=dtypes())
def test_multiply_matches_dense(prob, batch, bdt, udt, xdt):
    mask, bs, rank, rng = prob
    p = params(rng, mask, bs, rank, bdt, udt)
    x = random_array(rng, (*batch, mask.shape[1] * bs), xdt)
    cf.check_matches_dense(spec(mask), p, x)


@given(prob=problems(), dt=dtypes())
def test_adjoint_dot_test(prob, dt):
    mask, bs, rank, rng = prob
    p = params(rng, mask, bs, rank, dt)
    nbo, nbi = mask.shape
    cf.check_dot_test(spec(mask), p, random_array(rng, (3, nbi * bs), dt),
                      random_array(rng, (3, nbo * bs), dt))


@pytest.mark.parametrize("bdt,udt,xdt", [
    ("float64", "float64", "float64"), ("complex128", "complex128", "complex128"),
    ("float64", "complex128", "float64"), ("complex128", "float64", "complex128"),
    ("float64", "float64", "complex128"),
])
@pytest.mark.parametrize("shape,bs,rank", [((4, 4), 2, 2), ((2, 4), 3, 1), ((4, 2), 2, 0)])
def test_vjp_matches_finite_differences(bdt, udt, xdt, shape, bs, rank):
    rng = np.random.default_rng(7)
    mask = sl.flat_block_butterfly_mask(shape[0] * bs, shape[1] * bs, bs, 1)
    p = params(rng, mask, bs, rank, bdt, udt)
    x = random_array(rng, (2, 3, shape[1] * bs), xdt)
    g = random_array(rng, (2, 3, shape[0] * bs), np.result_type(bdt, udt, xdt))
    cf.check_vjp(spec(mask), p, x, g, rng=rng)


@given(prob=problems(), dt=dtypes())
def test_vjp_equals_dense_gradients_restricted_to_mask(prob, dt):
    # grad_M = g^T conj(x); grad_blocks is its restriction to the mask, grad_x = g conj(M)
    mask, bs, rank, rng = prob
    p = params(rng, mask, bs, rank, dt)
    nbo, nbi = mask.shape
    x = random_array(rng, (5, nbi * bs), dt)
    g = random_array(rng, (5, nbo * bs), dt)
    gb, gU, gV, gx = sl.pixelfly_multiply_vjp(p["blocks"], mask, p["U"], p["V"], x, g)
    M = sl.pixelfly_to_dense(p["blocks"], mask, p["U"], p["V"])
    gM = g.T @ np.conj(x)
    rows, cols = np.nonzero(mask)
    want_gb = gM.reshape(nbo, bs, nbi, bs).transpose(0, 2, 1, 3)[rows, cols]
    tol = tolerance(dt, 5 * bs) * 8
    assert cf._rel_err(gb, want_gb) <= tol
    assert cf._rel_err(gx, g @ np.conj(M)) <= tol
    assert cf._rel_err(gU, gM @ np.conj(p["V"])) <= tol
    assert cf._rel_err(gV, gM.T @ np.conj(p["U"])) <= tol
    assert gb.dtype == gU.dtype == gV.dtype == gx.dtype == dt


@pytest.mark.parametrize("dt", [np.float32, np.complex64])
def test_large_batch_spans_several_kernel_tiles(dt):
    # batch 300 > the CPU kernel's tiles (256 rows at most), 16 block rows with 1..5 blocks each
    rng = np.random.default_rng(5)
    mask = sl.flat_block_butterfly_mask(128, 64, 8, 2)
    p = params(rng, mask, 8, 3, dt)
    x = random_array(rng, (300, 64), dt)
    cf.check_matches_dense(spec(mask), p, x)
    g = random_array(rng, (300, 128), dt)
    gb, _, _, gx = sl.pixelfly_multiply_vjp(p["blocks"], mask, p["U"], p["V"], x, g)
    M = sl.pixelfly_to_dense(p["blocks"], mask, p["U"], p["V"]).astype(np.complex128)
    assert cf._rel_err(gx, g @ np.conj(M)) <= tolerance(dt, 300)
    gM = g.astype(np.complex128).T @ np.conj(x)
    rows, cols = np.nonzero(mask)
    want = gM.reshape(16, 8, 8, 8).transpose(0, 2, 1, 3)[rows, cols]
    assert cf._rel_err(gb, want) <= tolerance(dt, 300)


def test_sparse_part_alone_is_block_sparse_product_and_low_rank_alone_is_uv():
    rng = np.random.default_rng(0)
    mask = sl.flat_block_butterfly_mask(16, 16, 4, 1)
    blocks = rng.standard_normal((int(mask.sum()), 4, 4))
    x = rng.standard_normal((3, 16))
    U, V = rng.standard_normal((16, 2)), rng.standard_normal((16, 2))
    zero = np.zeros((16, 0))
    y_s = sl.pixelfly_multiply(blocks, mask, zero, zero, x)
    y_l = sl.pixelfly_multiply(np.zeros_like(blocks), mask, U, V, x)
    np.testing.assert_allclose(y_l, x @ V @ U.T, atol=1e-12)
    np.testing.assert_allclose(sl.pixelfly_multiply(blocks, mask, U, V, x), y_s + y_l, atol=1e-12)
    # block (I, J) only reads x's block J and writes y's block I
    for k, (I, J) in enumerate(zip(*np.nonzero(mask), strict=True)):
        only = np.zeros_like(blocks)
        only[k] = blocks[k]
        want = np.zeros((3, 16))
        want[:, 4 * I : 4 * I + 4] = x[:, 4 * J : 4 * J + 4] @ blocks[k].T
        np.testing.assert_allclose(sl.pixelfly_multiply(only, mask, zero, zero, x), want,
                                   atol=1e-12)


def test_empty_batch_and_empty_mask():
    mask = sl.flat_block_butterfly_mask(8, 8, 2, 1)
    b = np.ones((int(mask.sum()), 2, 2), np.float32)
    U = V = np.ones((8, 1), np.float32)
    y = sl.pixelfly_multiply(b, mask, U, V, np.zeros((0, 3, 8), np.float32))
    assert y.shape == (0, 3, 8) and y.dtype == np.float32
    gb, gU, _, gx = sl.pixelfly_multiply_vjp(b, mask, U, V, np.zeros((0, 8)), np.zeros((0, 8)))
    assert gx.shape == (0, 8) and gb.shape == b.shape
    np.testing.assert_array_equal(gb, 0)
    np.testing.assert_array_equal(gU, 0)
    empty = np.zeros((4, 4), bool)
    x = np.arange(16.0).reshape(2, 8)
    np.testing.assert_allclose(sl.pixelfly_multiply(np.zeros((0, 2, 2)), empty, U, V, x),
                               x @ V @ U.T)
    gb, *_ = sl.pixelfly_multiply_vjp(np.zeros((0, 2, 2)), empty, U, V, x, x)
    assert gb.shape == (0, 2, 2)


def test_integer_and_bool_inputs_promote_to_float64():
    mask = np.array([[1, 0], [1, 1]])  # 0/1 integers are accepted as a mask
    y = sl.pixelfly_multiply(np.ones((3, 1, 1), np.int32), mask, np.zeros((2, 0), int),
                             np.zeros((2, 0), int), np.array([True, True]))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [1.0, 2.0])


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("vectors", [1, 2, 3, 4])
@pytest.mark.parametrize("batch,rank", [(1, 0), (5, 3), (6, 0), (37, 2), (200, 16)])
def test_microkernel_path_matches_dense(dt, vectors, batch, rank):
    # blocks of 1..4 vectors (the register tile's widths 4, 2, 1 and their remainders), a block
    # row with no stored block, batches that are not a multiple of the tile's rows or span
    # several tiles, with and without the low-rank term; forward and the adjoint (grad_x)
    from structlin._cpu import _microkernel
    from structlin._cpu import pixelfly as cpu

    bs = vectors * _microkernel.lanes_of(np.dtype(dt).itemsize)
    assert cpu.has_microkernel_form(dt, bs)
    rng = np.random.default_rng(batch + vectors)
    mask = sl.flat_block_butterfly_mask(4 * bs, 8 * bs, bs, 1).copy()
    mask[2] = False
    p = params(rng, mask, bs, rank, dt)
    x = random_array(rng, (batch, 8 * bs), dt)
    y = sl.pixelfly_multiply(p["blocks"], mask, p["U"], p["V"], x)
    M = sl.pixelfly_to_dense(p["blocks"].astype(np.float64), mask, p["U"].astype(np.float64),
                             p["V"].astype(np.float64))
    assert y.dtype == dt
    assert cf._rel_err(y, x @ M.T) <= tolerance(dt, 8 * bs)
    g = random_array(rng, (batch, 4 * bs), dt)
    gb, _, _, gx = sl.pixelfly_multiply_vjp(p["blocks"], mask, p["U"], p["V"], x, g)
    assert cf._rel_err(gx, g @ M) <= tolerance(dt, 8 * bs)
    # the block gradients (micro-kernel over the batch, in chunks): g^T x on the mask
    gM = g.astype(np.float64).T @ x.astype(np.float64)
    rows, cols = np.nonzero(mask)
    want = gM.reshape(4, bs, 8, bs).transpose(0, 2, 1, 3)[rows, cols]
    assert gb.dtype == dt
    assert cf._rel_err(gb, want) <= tolerance(dt, batch)
    # rows are independent: a NaN row of x reaches only its own row of y
    x[batch // 2, 0] = np.nan
    y = sl.pixelfly_multiply(p["blocks"], mask, p["U"], p["V"], x)
    bad = np.isnan(y).any(axis=1)
    assert bad[batch // 2] and bad.sum() == 1


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_microkernel_streamed_output_matches_cached_output(monkeypatch, dt):
    # outputs of STREAM_BYTES or more are written with non-temporal stores; force that path
    # on a small product (a partial last tile, two block widths) and compare bit for bit
    from structlin._cpu import _microkernel
    from structlin._cpu import pixelfly as cpu

    bs = 2 * _microkernel.lanes_of(np.dtype(dt).itemsize)
    rng = np.random.default_rng(11)
    mask = sl.flat_block_butterfly_mask(8 * bs, 8 * bs, bs, 2)
    p = params(rng, mask, bs, 3, dt)
    x = random_array(rng, (77, 8 * bs), dt)
    cached = sl.pixelfly_multiply(p["blocks"], mask, p["U"], p["V"], x)
    monkeypatch.setattr(cpu, "STREAM_BYTES", 0)
    streamed = sl.pixelfly_multiply(p["blocks"], mask, p["U"], p["V"], x)
    np.testing.assert_array_equal(streamed, cached)
    M = sl.pixelfly_to_dense(p["blocks"].astype(np.float64), mask, p["U"].astype(np.float64),
                             p["V"].astype(np.float64))
    assert cf._rel_err(streamed, x @ M.T) <= tolerance(dt, 8 * bs)


def test_microkernel_form_is_real_blocks_of_whole_vectors():
    from structlin._cpu import _microkernel
    from structlin._cpu import pixelfly as cpu

    L = _microkernel.lanes_of(4)
    assert cpu.has_microkernel_form(np.float32, 2 * L)
    assert not cpu.has_microkernel_form(np.float32, L + 1)
    assert not cpu.has_microkernel_form(np.complex64, 2 * L)
    assert not cpu.has_microkernel_form(np.float32, 0)


def test_nan_propagates_only_through_its_blocks():
    mask = np.eye(2, dtype=bool)
    blocks = np.ones((2, 2, 2))
    x = np.zeros((1, 4))
    x[0, 0] = np.nan
    y = sl.pixelfly_multiply(blocks, mask, np.zeros((4, 0)), np.zeros((4, 0)), x)
    np.testing.assert_array_equal(np.isnan(y), [[True, True, False, False]])


# ------------------------------------------------------------------------ the mask


@pytest.mark.parametrize("m", [1, 2, 4, 8, 16, 32])
def test_square_mask_is_symmetric_with_density_formula(m):
    for nf in range(m.bit_length()):
        mask = sl.flat_block_butterfly_mask(3 * m, 3 * m, 3, nf)
        assert mask.shape == (m, m) and mask.dtype == bool
        np.testing.assert_array_equal(mask, mask.T)
        np.testing.assert_array_equal(mask.sum(axis=0), nf + 1)
        np.testing.assert_array_equal(mask.sum(axis=1), nf + 1)
        assert mask.mean() == (nf + 1) / m
        assert mask.diagonal().all()


def _factor_support(m, k):
    """Support of butterfly factor ``k`` (stride 2**k) of size m, from structlin's butterflies."""
    L = m.bit_length() - 1
    tw = np.tile(np.eye(2), (L, m // 2, 1, 1))
    tw[k] = np.random.default_rng(k).standard_normal((m // 2, 2, 2)) + 2
    return sl.butterfly_to_dense(tw) != 0


@pytest.mark.parametrize("m", [2, 4, 8, 16, 64])
def test_mask_is_union_of_butterfly_factor_supports(m):
    L = m.bit_length() - 1
    for nf in range(L + 1):
        union = np.eye(m, dtype=bool)
        for k in range(nf):
            union |= _factor_support(m, k)
        np.testing.assert_array_equal(sl.flat_block_butterfly_mask(m, m, 1, nf), union)
    # all log2(m) factors: the support of each level's block-diagonal structure united
    full = sl.flat_block_butterfly_mask(2 * m, 2 * m, 2)
    assert full.sum() == m * (L + 1)


@pytest.mark.parametrize("nbo,nbi,nf", [(8, 2, 1), (2, 8, 1), (16, 4, 2), (4, 4, 2), (4, 32, 0),
                                        (2, 6, 1)])
def test_rectangular_mask_stretches_the_square_one(nbo, nbi, nf):
    m = min(nbo, nbi)
    base = sl.flat_block_butterfly_mask(m, m, 1, nf)
    mask = sl.flat_block_butterfly_mask(nbo * 4, nbi * 4, 4, nf)
    assert mask.shape == (nbo, nbi)
    I, J = np.meshgrid(np.arange(nbo), np.arange(nbi), indexing="ij")
    np.testing.assert_array_equal(mask, base[I // (nbo // m), J // (nbi // m)])
    assert mask.mean() == (nf + 1) / m


@pytest.mark.parametrize("args,exc,match", [
    ((10, 8, 4, 1), ValueError, "n_out must be a multiple of block = 4, got 10"),
    ((8, 9, 4, 1), ValueError, "n_in must be a multiple of block = 4, got 9"),
    ((12, 12, 4, 1), ValueError, "must be a power of two .* got 3 block rows and 3 block"),
    ((8, 20, 4, 1), ValueError, "dividing max.* got 2 block rows and 5 block columns"),
    ((16, 16, 4, 3), ValueError, "n_factors must be between 0 and .* = 2, got 3"),
    ((16, 16, 0, 1), ValueError, "block must be at least 1, got 0"),
    ((16, 16, 4.0, 1), TypeError, r"block must be an integer, got 4\.0 \(float\)"),
    ((16, 16, "4", 1), TypeError, "block must be an integer, got '4'"),
    ((None, 16, 4, 1), TypeError, "n_out must be an integer, got None"),
    ((16, 16, 4, 1.0), TypeError, "n_factors must be an integer"),
    ((16, True, 4, 1), TypeError, "n_in must be an integer"),
    ((16, 16, 4, -1), ValueError, "n_factors must be at least 0, got -1"),
])
def test_mask_bad_inputs_raise(args, exc, match):
    with pytest.raises(exc, match=match):
        sl.flat_block_butterfly_mask(*args)


# ------------------------------------------------------------------------ projection


def test_projection_error_is_monotone_and_matches_the_factors():
    rng = np.random.default_rng(3)
    mask = sl.flat_block_butterfly_mask(48, 24, 3, 1)
    A = rng.standard_normal((48, 24))
    blocks, U, V, errors = sl.pixelfly_project(A, mask, 3, max_iter=40, tol=0)
    assert len(errors) >= 2
    assert np.all(np.diff(errors) <= 1e-12), errors
    M = sl.pixelfly_to_dense(blocks, mask, U, V)
    assert np.isclose(np.linalg.norm(A - M) / np.linalg.norm(A), errors[-1])
    # the last step makes U V^T the best rank-3 approximation of A - S (Eckart-Young)
    S = sl.pixelfly_to_dense(blocks, mask, np.zeros((48, 0)), np.zeros((24, 0)))
    u, s, vh = np.linalg.svd(A - S, full_matrices=False)
    np.testing.assert_allclose(U @ V.T, (u[:, :3] * s[:3]) @ vh[:3], atol=1e-12)


@pytest.mark.parametrize("dt", [np.float64, np.complex128])
def test_projection_is_exact_on_sparse_plus_low_rank(dt):
    rng = np.random.default_rng(11)
    mask = sl.flat_block_butterfly_mask(32, 32, 4, 1)
    p = params(rng, mask, 4, 2, dt)
    A = sl.pixelfly_to_dense(p["blocks"], mask, p["U"], p["V"])
    blocks, U, V, errors = sl.pixelfly_project(A, mask, 2, max_iter=500, tol=1e-12)
    assert errors[-1] < 1e-9, errors[-1]
    assert blocks.dtype == U.dtype == V.dtype == dt
    np.testing.assert_allclose(sl.pixelfly_to_dense(blocks, mask, U, V), A, atol=1e-8)


@pytest.mark.parametrize("dt", [np.float64, np.complex128])
def test_randomized_projection_is_exact_on_sparse_plus_low_rank(dt):
    rng = np.random.default_rng(12)
    mask = sl.flat_block_butterfly_mask(64, 32, 4, 2)
    p = params(rng, mask, 4, 3, dt)
    A = sl.pixelfly_to_dense(p["blocks"], mask, p["U"], p["V"])
    *_, errors = sl.pixelfly_project(A, mask, 3, max_iter=500, tol=1e-12, method="randomized",
                                     rng=0)
    assert errors[-1] < 1e-9, errors[-1]


def test_randomized_projection_is_near_the_exact_one():
    rng = np.random.default_rng(13)
    mask = sl.flat_block_butterfly_mask(64, 64, 8, 1)
    q, _ = np.linalg.qr(rng.standard_normal((64, 64)))
    A = (q / np.arange(1, 65)) @ q.T + 0.01 * rng.standard_normal((64, 64))
    *_, exact = sl.pixelfly_project(A, mask, 4, max_iter=10, tol=0)
    *_, rand = sl.pixelfly_project(A, mask, 4, max_iter=10, tol=0, method="randomized", rng=1)
    assert exact[-1] <= rand[-1] * (1 + 1e-9) and rand[-1] < exact[-1] * 1.05


def test_projection_rank_zero_is_the_mask_projection_in_one_step():
    rng = np.random.default_rng(2)
    mask = sl.flat_block_butterfly_mask(16, 16, 2, 2)
    A = rng.standard_normal((16, 16))
    blocks, U, V, errors = sl.pixelfly_project(A, mask, 0)
    assert len(errors) == 1 and U.shape == (16, 0) and V.shape == (16, 0)
    emask = np.kron(mask, np.ones((2, 2), bool))
    np.testing.assert_array_equal(sl.pixelfly_to_dense(blocks, mask, U, V), np.where(emask, A, 0))
    assert np.isclose(errors[0], np.linalg.norm(A[~emask]) / np.linalg.norm(A))


def test_projection_error_decreases_with_rank_and_stops_on_tol():
    rng = np.random.default_rng(4)
    mask = sl.flat_block_butterfly_mask(32, 32, 4, 1)
    A = rng.standard_normal((32, 32))
    final = [sl.pixelfly_project(A, mask, r, max_iter=30)[3][-1] for r in (0, 2, 4, 8)]
    assert np.all(np.diff(final) < 0), final
    _, _, _, loose = sl.pixelfly_project(A, mask, 4, max_iter=200, tol=1e-2)
    _, _, _, tight = sl.pixelfly_project(A, mask, 4, max_iter=200, tol=1e-8)
    assert len(loose) < len(tight) <= 200
    assert (loose[-2] - loose[-1]) <= 1e-2 * loose[-2]


def test_projection_does_not_modify_its_input():
    A = np.random.default_rng(0).standard_normal((8, 8))
    before = A.copy()
    sl.pixelfly_project(A, np.eye(2, dtype=bool), 1)
    np.testing.assert_array_equal(A, before)


@pytest.mark.parametrize("A,mask,rank,kw,exc,match", [
    (np.ones(8), np.eye(2, dtype=bool), 1, {}, ValueError, "A must be a 2-d array"),
    (np.ones((8, 6)), np.eye(2, dtype=bool), 1, {}, ValueError, r"A must have shape \(mask"),
    (np.ones((8, 8)), np.eye(2, dtype=bool), 9, {}, ValueError, "rank must be between 0 and"),
    (np.ones((8, 8)), np.eye(2, dtype=bool), 1.5, {}, TypeError, "rank must be an integer"),
    (np.ones((8, 8)), np.eye(2, dtype=bool), 1, {"max_iter": 0}, ValueError,
     "max_iter must be at least 1"),
    (np.ones((8, 8)), np.eye(2, dtype=bool), 1, {"tol": -1.0}, ValueError,
     "tol must be at least 0"),
    (np.ones((8, 8)), np.eye(2, dtype=bool), 1, {"tol": "0"}, TypeError,
     "tol must be a real number"),
    (np.ones((8, 8)), np.eye(2, dtype=bool), 1, {"max_iter": "5"}, TypeError,
     "max_iter must be an integer"),
    (np.ones((8, 8)), np.eye(2, dtype=bool), 1, {"max_iter": 10**7}, ValueError,
     "max_iter must be at most"),
    (np.ones((8, 8)), np.eye(2, dtype=bool), "2", {}, TypeError, "rank must be an integer"),
    (np.ones((8, 8)), np.eye(2, dtype=bool), None, {}, TypeError,
     "rank must be an integer, got None"),
    (np.ones((8, 8)), np.eye(2, dtype=bool), 1, {"method": "randomized", "rng": "bogus"},
     TypeError, "rng must be None, an integer seed or a numpy.random.Generator, got 'bogus'"),
    (np.array([["a"] * 8] * 8), np.eye(2, dtype=bool), 1, {}, TypeError,
     "A must have a numeric dtype"),
    (np.ones((8, 8)), np.eye(2, dtype=object), 1, {}, TypeError,
     "mask must have a numeric dtype"),
    (np.full((8, 8), np.nan), np.eye(2, dtype=bool), 1, {}, ValueError, "A must be finite"),
    (np.ones((8, 8)), np.eye(2), 1, {}, TypeError, "mask must be a boolean array"),
    (np.ones((8, 8)), np.eye(2, dtype=bool), 1, {"method": "qr"}, ValueError,
     r"method must be one of \('svd', 'randomized'\), got 'qr'"),
])
def test_projection_bad_inputs_raise(A, mask, rank, kw, exc, match):
    with pytest.raises(exc, match=match):
        sl.pixelfly_project(A, mask, rank, **kw)


# ------------------------------------------------------------------------ conformance

MASK = np.array([[True, False], [True, True]])
B3 = np.ones((3, 2, 2))
U1 = np.ones((4, 1))
X = np.ones((2, 4))


class TestPixelflyConformance(cf.OperatorConformance):
    """Every operator check for a rectangular Pixelfly matrix: 8 x 4 blocks of 2 on a flat
    butterfly mask (16 x 8) plus rank 2. The mask is structure: no gradient, no promotion."""

    structure = ("mask",)
    mask = sl.flat_block_butterfly_mask(16, 8, 2, 1)

    def make_params(self, rng, dtype):
        p = params(rng, self.mask, 2, 2, dtype)
        return {"blocks": p["blocks"], "mask": self.mask.copy(), "U": p["U"], "V": p["V"]}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, 8), dtype)

    def fast(self, p, x):
        return sl.pixelfly_multiply(p["blocks"], p["mask"], p["U"], p["V"], x)

    def dense(self, p):
        return sl.pixelfly_to_dense(p["blocks"], p["mask"], p["U"], p["V"])

    def vjp(self, p, x, g):
        gb, gU, gV, gx = sl.pixelfly_multiply_vjp(p["blocks"], p["mask"], p["U"], p["V"], x, g)
        return {"blocks": gb, "U": gU, "V": gV, "x": gx}

    def bad_inputs(self):
        xp = self.xp
        mask, b3, u1, x = (xp.asarray(a) for a in (MASK, B3, U1, X))
        pm = sl.pixelfly_multiply
        return [
            ("one block too few", lambda: pm(xp.ones((2, 2, 2)), mask, u1, u1, x), ValueError,
             r"blocks must have one block per True entry of mask: shape \(3, block, block\), "
             r"got \(2, 2, 2\)"),
            ("non-square blocks", lambda: pm(xp.ones((3, 2, 3)), mask, u1, u1, x), ValueError,
             r"blocks must have shape \(nnz_blocks, block, block\)"),
            ("2-d blocks", lambda: pm(xp.ones((3, 4)), mask, u1, u1, x), ValueError,
             "blocks must have shape"),
            ("U too tall", lambda: pm(b3, mask, xp.ones((5, 1)), u1, x), ValueError,
             r"U must have shape \(n_out, rank\) = \(4, rank\).*got \(5, 1\)"),
            ("V of another rank", lambda: pm(b3, mask, u1, xp.ones((4, 2)), x), ValueError,
             r"V must have shape \(4, 1\)"),
            ("1-d V", lambda: pm(b3, mask, u1, xp.ones(4), x), ValueError,
             r"V must have shape \(4, 1\)"),
            ("x too long", lambda: pm(b3, mask, u1, u1, xp.ones((2, 5))), ValueError,
             r"x must have length n_in = mask.shape\[1\] \* block = 4 along its last axis, "
             r"got shape \(2, 5\)"),
            ("0-d x", lambda: pm(b3, mask, u1, u1, xp.asarray(1.0)), ValueError,
             "x must have at least 1 dimension"),
            ("1-d mask", lambda: pm(b3, xp.ones(2, bool), u1, u1, x), ValueError,
             "mask must have shape"),
            ("float mask", lambda: pm(b3, mask.astype(float), u1, u1, x), TypeError,
             "mask must be a boolean array, got dtype float64"),
            ("mask holding 2", lambda: pm(b3, xp.asarray([[2, 0], [1, 1]]), u1, u1, x),
             ValueError, "mask must be boolean"),
            ("grad of the wrong shape",
             lambda: sl.pixelfly_multiply_vjp(b3, mask, u1, u1, x, xp.ones((2, 5))),
             ValueError, r"grad must have shape \(2, 4\)"),
        ]
