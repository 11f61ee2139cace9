"""Monarch, order-p Monarch and BTT: products, VJPs and projections against dense references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import structlin as sl
from tests import conformance as cf
from tests.strategies import batch_shapes, dtypes, random_array, seeds, tolerance

# ------------------------------------------------------------------ specs and strategies


def monarch_spec() -> cf.OperatorSpec:
    def vjp(p, x, g):
        g1, g2, gx = sl.monarch_multiply_vjp(p["w1"], p["w2"], x, g)
        return {"w1": g1, "w2": g2, "x": gx}

    return cf.OperatorSpec(
        fast=lambda p, x: sl.monarch_multiply(p["w1"], p["w2"], x),
        dense=lambda p: sl.monarch_to_dense(p["w1"], p["w2"]),
        vjp=vjp,
    )


def btt_spec() -> cf.OperatorSpec:
    def vjp(p, x, g):
        g1, g2, gx = sl.btt_multiply_vjp(p["w1"], p["w2"], x, g)
        return {"w1": g1, "w2": g2, "x": gx}

    return cf.OperatorSpec(
        fast=lambda p, x: sl.btt_multiply(p["w1"], p["w2"], x),
        dense=lambda p: sl.btt_to_dense(p["w1"], p["w2"]),
        vjp=vjp,
    )


def order_p_spec(p_len: int) -> cf.OperatorSpec:
    def factors(p):
        return [p[f"f{i}"] for i in range(p_len)]

    def vjp(p, x, g):
        gfs, gx = sl.monarch_order_p_multiply_vjp(factors(p), x, g)
        return {**{f"f{i}": gf for i, gf in enumerate(gfs)}, "x": gx}

    return cf.OperatorSpec(
        fast=lambda p, x: sl.monarch_order_p_multiply(factors(p), x),
        dense=lambda p: sl.monarch_order_p_to_dense(factors(p)),
        vjp=vjp,
    )


@st.composite
def monarch_shapes(draw, max_side: int = 5):
    """``(k, q, p)`` and ``(l, s, r)`` with ``l*r = k*q``: square, rectangular, any block count."""
    k = draw(st.integers(1, max_side))
    q = draw(st.integers(1, max_side))
    p = draw(st.integers(1, max_side))
    l = draw(st.sampled_from([d for d in range(1, k * q + 1) if (k * q) % d == 0]))
    s = draw(st.integers(1, max_side))
    return (k, q, p), (l, s, k * q // l)


def monarch_params(rng, s1, s2, dt1, dt2=None):
    return {"w1": random_array(rng, s1, dt1, 0.7), "w2": random_array(rng, s2, dt2 or dt1, 0.7)}


# ------------------------------------------------------------------ Monarch multiply


@given(shapes=monarch_shapes(), batch=batch_shapes(), wdt=dtypes(), xdt=dtypes(), seed=seeds())
def test_multiply_matches_dense(shapes, batch, wdt, xdt, seed):
    rng = np.random.default_rng(seed)
    s1, s2 = shapes
    p = monarch_params(rng, s1, s2, wdt)
    x = random_array(rng, (*batch, s1[0] * s1[2]), xdt)
    cf.check_matches_dense(monarch_spec(), p, x)


@pytest.mark.parametrize("s1,s2", [((3, 3, 3), (3, 3, 3)), ((2, 3, 5), (3, 4, 2)),
                                   ((4, 2, 3), (8, 5, 1)), ((2, 4, 3), (1, 6, 8))])
@pytest.mark.parametrize("wdt,xdt", [("float64", "float64"), ("complex128", "complex128"),
                                     ("float64", "complex128"), ("complex128", "float64")])
def test_vjp_matches_finite_differences(s1, s2, wdt, xdt):
    rng = np.random.default_rng(1)
    p = monarch_params(rng, s1, s2, wdt)
    x = random_array(rng, (2, 3, s1[0] * s1[2]), xdt)
    g = random_array(rng, (2, 3, s2[0] * s2[1]), np.result_type(wdt, xdt))
    cf.check_vjp(monarch_spec(), p, x, g, rng=rng)


@given(shapes=monarch_shapes(), dt=dtypes(), seed=seeds())
def test_vjp_grad_x_is_adjoint_times_grad_and_dtypes_follow_arguments(shapes, dt, seed):
    rng = np.random.default_rng(seed)
    s1, s2 = shapes
    w1 = random_array(rng, s1, dt)
    w2 = random_array(rng, s2, np.float32)
    x = random_array(rng, (4, s1[0] * s1[2]), np.float64)
    g = random_array(rng, (4, s2[0] * s2[1]), np.result_type(dt, np.float64))
    g1, g2, gx = sl.monarch_multiply_vjp(w1, w2, x, g)
    M = sl.monarch_to_dense(w1.astype(np.complex128), w2)
    assert cf._rel_err(gx, (g @ M.conj()).real) <= tolerance(dt, 16) * 4
    assert (g1.dtype, g2.dtype, gx.dtype) == (w1.dtype, np.float32, np.float64)


@pytest.mark.parametrize("batch,dt", [(2048, np.float32), (300, np.complex64), (37, np.float64)])
def test_large_square_monarch_matches_dense(batch, dt):
    # 64 blocks of 64: several batch tiles, a partial last tile, parallel chunks
    rng = np.random.default_rng(batch)
    p = monarch_params(rng, (64, 64, 64), (64, 64, 64), dt)
    x = random_array(rng, (batch, 4096), dt)
    y = sl.monarch_multiply(p["w1"], p["w2"], x)
    # the reference in blocks, in double precision
    w1 = p["w1"].astype(np.complex128)
    w2 = p["w2"].astype(np.complex128)
    u = np.einsum("kqp,bkp->bkq", w1, x.reshape(batch, 64, 64))
    want = np.einsum("lsr,brl->bsl", w2, u.reshape(batch, 64, 64)).reshape(batch, 4096)
    assert cf._rel_err(y, want) <= tolerance(dt, 4096)


# shapes whose two factors both have a micro-kernel form (float32 vectors of 16 lanes,
# float64 of 8): w1's q and w2's l multiples of 16; output columns in vectors of 4 + 2 + 1
# (q = 112 = 7 * 16, s = 7), non-square blocks, several blocks per vector
MICROKERNEL_SHAPES = [
    ((4, 16, 8), (16, 5, 4)),
    ((2, 112, 24), (16, 7, 14)),
    ((8, 32, 16), (32, 16, 8)),
    ((1, 48, 3), (48, 2, 1)),
]


@pytest.mark.parametrize("s1,s2", MICROKERNEL_SHAPES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 5, 6, 13, 97])
def test_microkernel_path_matches_dense(s1, s2, dt, batch):
    # batches that are not a multiple of the micro-kernel's rows (staged last tile), one row
    from structlin._cpu import monarch as cpu

    rng = np.random.default_rng(batch)
    w1, w2 = random_array(rng, s1, dt), random_array(rng, s2, dt)
    assert cpu._pack_chain(sl.monarch._monarch_chain(w1, w2), np.dtype(dt)) is not None
    x = random_array(rng, (batch, s1[0] * s1[2]), dt)
    y = sl.monarch_multiply(w1, w2, x)
    M = sl.monarch_to_dense(w1.astype(np.float64), w2.astype(np.float64))
    assert y.dtype == dt
    assert cf._rel_err(y, x @ M.T) <= tolerance(dt, s1[2] * s2[2])


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_microkernel_vjp_and_adjoint_factors_match_dense(dt):
    # p = 16 and s = 16: the adjoint chain (w2^H then w1^H) takes the micro-kernel path too
    rng = np.random.default_rng(3)
    w1, w2 = random_array(rng, (4, 16, 16), dt), random_array(rng, (16, 16, 4), dt)
    x, g = random_array(rng, (29, 64), dt), random_array(rng, (29, 256), dt)
    g1, g2, gx = sl.monarch_multiply_vjp(w1, w2, x, g)
    w1d, w2d = w1.astype(np.float64), w2.astype(np.float64)
    M = sl.monarch_to_dense(w1d, w2d)
    tol = tolerance(dt, 64)
    assert cf._rel_err(gx, g @ M) <= tol
    # the weight gradients, by linearity of M in each factor: <g, dM(dw) x> = <grad_w, dw>
    for grad, which in ((g1, 0), (g2, 1)):
        dw = random_array(rng, (w1d, w2d)[which].shape, np.float64)
        dM = sl.monarch_to_dense(*((dw, w2d) if which == 0 else (w1d, dw)))
        want = np.sum(g * (x @ dM.T))
        assert abs(np.sum(grad * dw) - want) <= tol * np.linalg.norm(g) * np.linalg.norm(
            x @ dM.T) * 4


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("batch,n_in,n_out,pre,post", [
    (100, 64, 64, 64, 1), (3, 16, 7, 4, 1), (70, 8, 5, 2, 16), (130, 64, 64, 1, 64),
    (5, 3, 13, 2, 32), (129, 16, 16, 16, 16)])
def test_microkernel_weight_grad_is_the_batch_sum_of_outer_products(dt, batch, n_in, n_out,
                                                                    pre, post):
    # G[P*post + Q, o, i] = sum_t gy[t, P, o, Q] x[t, P, i, Q]; n_out not a multiple of the
    # micro-kernel's 6 rows, batches not a multiple of its 32-row reduction
    from structlin._cpu import monarch as cpu

    rng = np.random.default_rng(batch)
    x = random_array(rng, (batch, pre * post * n_in), dt)
    gy = random_array(rng, (batch, pre * post * n_out), dt)
    assert cpu._weight_grad_microkernel(x, gy, pre, post, n_out) is not None
    g = cpu.weight_grad(x, gy, pre, post, n_out)
    want = np.einsum("bPoQ,bPiQ->PQoi", gy.reshape(batch, pre, n_out, post).astype(np.float64),
                     x.reshape(batch, pre, n_in, post).astype(np.float64))
    assert g.dtype == dt
    assert cf._rel_err(g, want.reshape(pre * post, n_out, n_in)) <= tolerance(dt, batch)


def test_microkernel_order_p_and_btt_match_dense():
    rng = np.random.default_rng(5)
    fs = [random_array(rng, (256, 16, 16), np.float32) for _ in range(3)]
    x = random_array(rng, (11, 4096), np.float32)
    M = sl.monarch_order_p_to_dense([f.astype(np.float64) for f in fs])
    assert cf._rel_err(sl.monarch_order_p_multiply(fs, x), x @ M.T) <= tolerance(np.float32, 48)
    w1, w2 = random_array(rng, (4, 2, 16, 8), np.float64), random_array(rng, (16, 3, 4, 2),
                                                                         np.float64)
    x = random_array(rng, (7, 32), np.float64)
    assert cf._rel_err(sl.btt_multiply(w1, w2, x), x @ sl.btt_to_dense(w1, w2).T) <= 1e-12


def fly_reference(x, w1_bfly, w2_bfly):
    """HazyResearch/fly's ``blockdiag_butterfly_multiply_reference`` (version 2), in NumPy."""
    batch_shape, _n = x.shape[:-1], x.shape[-1]
    k, _q, p = w1_bfly.shape
    l, s, r = w2_bfly.shape
    x_reshaped = x.reshape(-1, k, p)
    out1 = np.einsum("kqp,bkp->bkq", w1_bfly, x_reshaped)
    out1 = out1.reshape(-1, r, l).transpose(0, 2, 1)  # 'b (r l) -> b l r'
    out2 = np.einsum("lsr,blr->bsl", w2_bfly, out1)
    return out2.reshape(*batch_shape, s * l)


@given(shapes=monarch_shapes(), seed=seeds())
def test_fly_layout_weights_give_fly_products_and_round_trip(shapes, seed):
    rng = np.random.default_rng(seed)
    s1, s2 = shapes
    w1, w2 = rng.standard_normal(s1), rng.standard_normal(s2)
    x = rng.standard_normal((2, 3, s1[0] * s1[2]))
    np.testing.assert_allclose(sl.monarch_multiply(w1, w2, x), fly_reference(x, w1, w2),
                               rtol=1e-12, atol=1e-12)
    # projecting the dense matrix gives factors of the same matrix, in the same layout
    M = sl.monarch_to_dense(w1, w2)
    v1, v2 = sl.monarch_project(M, s1, s2)
    assert v1.shape == s1 and v2.shape == s2
    np.testing.assert_allclose(fly_reference(x, v1, v2), x @ M.T, rtol=1e-9, atol=1e-9)


def test_butterfly_is_a_monarch_product_of_its_two_halves():
    # factors 0..L/2-1 act inside contiguous blocks of b = sqrt(n) entries: w1; factors
    # L/2..L-1 act on entries b apart: w2, reached by the (r, l) -> (l, r) view. No other
    # permutation is needed in fly's convention.
    L, b = 8, 16
    tw = sl.random_butterfly(1 << L, rng=0)
    low, high = tw.copy(), tw.copy()
    low[L // 2 :] = np.eye(2)
    high[: L // 2] = np.eye(2)
    B1, B2 = sl.butterfly_to_dense(low), sl.butterfly_to_dense(high)
    w1 = np.stack([B1[c * b : (c + 1) * b, c * b : (c + 1) * b] for c in range(b)])
    w2 = np.stack([B2[j::b, j::b] for j in range(b)])
    B = sl.butterfly_to_dense(tw)
    np.testing.assert_allclose(sl.monarch_to_dense(w1, w2), B, atol=1e-12)
    v1, v2 = sl.monarch_project(B, nblocks=b)
    np.testing.assert_allclose(sl.monarch_to_dense(v1, v2), B, atol=1e-10)


def dft_monarch(b):
    """Cooley-Tukey: F_n[:, perm] = Monarch with w1[c, j, d] = w_b^{jd} w_n^{jc} and
    w2[j, a, c] = w_b^{ac}, where perm[c*b + d] = d*b + c (n = b^2)."""
    n = b * b
    wb = np.exp(-2j * np.pi / b)
    wn = np.exp(-2j * np.pi / n)
    c, j, d = np.meshgrid(np.arange(b), np.arange(b), np.arange(b), indexing="ij")
    w1 = wb ** (j * d) * wn ** (j * c)
    _jj, a, cc = np.meshgrid(np.arange(b), np.arange(b), np.arange(b), indexing="ij")
    w2 = wb ** (a * cc)
    perm = (np.arange(n) % b) * b + np.arange(n) // b
    return w1, w2, perm


@pytest.mark.parametrize("b", [1, 2, 4, 16])
def test_dft_on_transposed_input_is_exactly_monarch(b):
    n = b * b
    w1, w2, perm = dft_monarch(b)
    x = np.random.default_rng(b).standard_normal((3, n)) + 0j
    np.testing.assert_allclose(sl.monarch_multiply(w1, w2, x[..., perm]), np.fft.fft(x),
                               atol=1e-10 * n)
    F = np.fft.fft(np.eye(n))
    v1, v2 = sl.monarch_project(F[:, perm], nblocks=b)
    np.testing.assert_allclose(sl.monarch_to_dense(v1, v2), F[:, perm], atol=1e-10 * n)


def round_operands(a, precision: str) -> np.ndarray:
    """NumPy reference of the tensor cores' operand rounding (real and imaginary parts).

    ``"tf32"``: as PTX ``cvt.rna.tf32.f32``, 10 mantissa bits, to nearest with ties away from
    zero (add half an ulp to the magnitude, clear the low 13 bits; inf and NaN kept, overflow
    goes to inf); ``"bf16"``: 7 bits, to nearest with ties to even. The result keeps the
    single-precision dtype (float32 or complex64).
    """
    a = np.asarray(a)
    if a.dtype.kind == "c":
        out = np.empty(a.shape, np.complex64)
        out.real = round_operands(a.real, precision)
        out.imag = round_operands(a.imag, precision)
        return out
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    if precision == "tf32":
        finite = (u & np.uint32(0x7F800000)) != np.uint32(0x7F800000)
        u = np.where(finite, u + np.uint32(0x1000), u) & np.uint32(0xFFFFE000)
    elif precision == "bf16":
        u = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    else:
        raise ValueError(precision)
    return u.view(np.float32)


def test_operand_rounding_reference_follows_the_ptx_conversions():
    f = np.float32
    ulp10, ulp7 = 2.0**-10, 2.0**-7
    tf32 = round_operands(np.array([1 + ulp10 / 2, -(1 + ulp10 / 2), 1 + 3 * ulp10 / 2,
                                    1 + ulp10 / 2 - 2.0**-23, np.inf, -np.inf,
                                    np.finfo(f).max, 0.1], f), "tf32")
    np.testing.assert_array_equal(
        tf32, np.array([1 + ulp10, -(1 + ulp10), 1 + 2 * ulp10, 1, np.inf, -np.inf, np.inf,
                        0.0999755859375], f))   # ties away from zero, overflow to inf
    bf16 = round_operands(np.array([1 + ulp7 / 2, 1 + 3 * ulp7 / 2, -(1 + 3 * ulp7 / 2),
                                    1 + ulp7 / 2 + 2.0**-23, 0.1], f), "bf16")
    np.testing.assert_array_equal(
        bf16, np.array([1, 1 + 2 * ulp7, -(1 + 2 * ulp7), 1 + ulp7, 0.10009765625], f))
    assert np.isnan(round_operands(np.array([np.nan], f), "tf32")[0])
    z = round_operands(np.array([1 + ulp10 / 2 - 1j * (1 + ulp10 / 2)], np.complex64), "tf32")
    assert z.dtype == np.complex64 and z[0] == (1 + ulp10) * (1 - 1j)


def test_precision_argument_is_checked_and_cpu_computes_in_full_precision():
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.complex64):
        w1, w2 = random_array(rng, (4, 4, 4), dt), random_array(rng, (4, 4, 4), dt)
        x, g = random_array(rng, (2, 16), dt), random_array(rng, (2, 16), dt)
        full = sl.monarch_multiply(w1, w2, x)
        full_vjp = sl.monarch_multiply_vjp(w1, w2, x, g)
        for prec in ("tf32", "bf16"):
            np.testing.assert_array_equal(sl.monarch_multiply(w1, w2, x, precision=prec), full)
            for a, b in zip(sl.monarch_multiply_vjp(w1, w2, x, g, precision=prec), full_vjp,
                            strict=True):
                np.testing.assert_array_equal(a, b)
        b1, b2 = w1.reshape(4, 1, 4, 4), w2.reshape(4, 4, 4, 1)
        np.testing.assert_array_equal(sl.btt_multiply(b1, b2, x, precision="bf16"),
                                      sl.btt_multiply(b1, b2, x))
        assert sl.btt_multiply_vjp(b1, b2, x, g, precision="tf32")[0].shape == b1.shape
    w = np.ones((4, 4, 4))
    with pytest.raises(ValueError, match="precision must be one of"):
        sl.monarch_multiply(w, w, np.ones(16), precision="fp8")
    with pytest.raises(ValueError, match="precision must be one of"):
        sl.monarch_multiply_vjp(w, w, np.ones(16), np.ones(16), precision="high")
    # float64 data (also what integers become) would silently lose accuracy on the GPU
    with pytest.raises(ValueError, match=r"precision='tf32' \(tensor cores\) needs float32 or "
                                         r"complex64 data, got float64"):
        sl.monarch_multiply(w, w, np.ones(16, np.float32), precision="tf32")
    with pytest.raises(ValueError, match="got complex128"):
        sl.btt_multiply_vjp(w.reshape(4, 1, 4, 4).astype(np.complex128),
                            w.reshape(4, 4, 4, 1), np.ones(16), np.ones(16), precision="bf16")


A15x8 = np.ones((15, 8))


@pytest.mark.parametrize("args,kw,exc,match", [
    ((A15x8, (2, 3, 4), (3, 4, 2)), {}, ValueError, r"k\*p = n_in and l\*s = n_out"),
    ((A15x8, (2, 3, 4), (3, 5, 3)), {}, ValueError, r"l\*r = 9 inputs, but .* k\*q = 6"),
    ((A15x8,), {"nblocks": 3}, ValueError, "nblocks must be a positive divisor"),
    ((A15x8, (2, 3, 4), (3, 5, 2)), {"nblocks": 1}, ValueError, "not both"),
    ((A15x8, (2, 3, 4)), {}, ValueError, "give w1_shape and w2_shape, or nblocks"),
    ((np.full((4, 4), np.nan),), {"nblocks": 2}, ValueError, "A must be finite"),
    ((np.ones(4),), {"nblocks": 2}, ValueError, "A must have 2 dimensions"),
    ((A15x8, (2, 3), (3, 5, 2)), {}, ValueError, "w1_shape must be 3 positive integers"),
    ((A15x8,), {"nblocks": 1, "tol": 2.0}, ValueError, "tol must be in"),
    # the findings of the bad-input probe: a Numba TypingError, sizes silently truncated
    ((A15x8,), {"nblocks": 1, "max_iter": "5"}, TypeError,
     r"max_iter must be an integer, got '5' \(str\)"),
    ((A15x8,), {"nblocks": 1, "max_iter": 2.0}, TypeError, "max_iter must be an integer"),
    ((A15x8,), {"nblocks": 1, "max_iter": 0}, ValueError, "max_iter must be at least 1"),
    ((A15x8,), {"nblocks": 1, "max_iter": 10**7}, ValueError, "max_iter must be at most"),
    ((np.ones((8, 8)),), {"nblocks": 2.5}, TypeError, r"nblocks must be an integer, got 2\.5"),
    ((np.ones((8, 8)),), {"nblocks": "4"}, TypeError, "nblocks must be an integer, got '4'"),
    ((np.ones((8, 8)),), {"nblocks": True}, TypeError, "nblocks must be an integer"),
    ((np.ones((8, 8)),), {"nblocks": 0}, ValueError, "nblocks must be at least 1"),
    ((A15x8, (2, 3.0, 4), (3, 5, 2)), {}, TypeError, r"w1_shape\[1\] must be an integer"),
    ((A15x8, (2, 3, 4), (3, None, 2)), {}, TypeError,
     r"w2_shape\[1\] must be an integer, got None"),
    ((A15x8, 6, (3, 5, 2)), {}, TypeError, "w1_shape must be a tuple of 3 integers"),
    ((A15x8,), {"nblocks": 1, "tol": "small"}, TypeError, "tol must be a real number"),
    ((A15x8,), {"nblocks": 1, "tol": None}, TypeError, "tol must be a real number"),
    ((np.array([["a"] * 8] * 15),), {"nblocks": 1}, TypeError, "A must have a numeric dtype"),
])
def test_projection_bad_arguments_raise_naming_them(args, kw, exc, match):
    with pytest.raises(exc, match=match):
        sl.monarch_project(*args, **kw)


# ------------------------------------------------------------------ projection


def optimal_error(A, s1, s2, rank_per_middle=1):
    """Brute force: the slice of each (output block j, input block c) and its SVD tail."""
    k, q, p = s1
    l, _s, _r = s2
    err2 = 0.0
    for j in range(l):
        for c in range(k):
            rank = sum(1 for e in range(q) if (c * q + e) % l == j)
            sv = np.linalg.svd(A[j::l, c * p : (c + 1) * p], compute_uv=False)
            err2 += float(np.sum(sv[rank:] ** 2))
    return np.sqrt(err2)


@given(shapes=monarch_shapes(), seed=seeds(), complex_=st.booleans())
def test_projection_error_equals_the_slicewise_svd_optimum(shapes, seed, complex_):
    rng = np.random.default_rng(seed)
    s1, s2 = shapes
    A = random_array(rng, (s2[0] * s2[1], s1[0] * s1[2]),
                     np.complex128 if complex_ else np.float64)
    w1, w2 = sl.monarch_project(A, s1, s2)
    err = np.linalg.norm(A - sl.monarch_to_dense(w1, w2))
    best = optimal_error(A, s1, s2)
    assert abs(err - best) <= 1e-6 * max(best, 1e-12) + 1e-10 * np.linalg.norm(A)


@given(shapes=monarch_shapes(), seed=seeds(), dt=dtypes())
def test_projection_of_a_monarch_matrix_is_exact(shapes, seed, dt):
    rng = np.random.default_rng(seed)
    s1, s2 = shapes
    M = sl.monarch_to_dense(random_array(rng, s1, dt), random_array(rng, s2, dt))
    w1, w2 = sl.monarch_project(M, s1, s2)
    assert w1.dtype == dt and w2.dtype == dt
    assert cf._rel_err(sl.monarch_to_dense(w1, w2), M) <= tolerance(dt, M.size)


def test_projection_residual_is_stationary_for_the_factors():
    # at the optimum the gradient of ||A - M(w1, w2)||^2 vanishes; the VJP with x = I computes it
    rng = np.random.default_rng(5)
    s1, s2 = (3, 4, 5), (6, 2, 2)
    A = rng.standard_normal((12, 15))
    w1, w2 = sl.monarch_project(A, s1, s2)
    R = sl.monarch_to_dense(w1, w2) - A
    g1, g2, _ = sl.monarch_multiply_vjp(w1, w2, np.eye(15), R.T)
    assert np.linalg.norm(g1) + np.linalg.norm(g2) <= 1e-8 * np.linalg.norm(A)


def test_projection_of_4096_square_matrix_matches_exact_svd():
    rng = np.random.default_rng(0)
    b = 64
    A = rng.standard_normal((b * b, b * b)).astype(np.float32)
    w1, w2 = sl.monarch_project(A, nblocks=b)
    assert w1.dtype == np.float32 and w1.shape == (b, b, b)
    A64 = A.astype(np.float64)
    err = np.linalg.norm(A64 - sl.monarch_to_dense(w1.astype(np.float64), w2.astype(np.float64)))
    sv = np.linalg.svd(A64.reshape(b, b, b, b).transpose(1, 2, 0, 3), compute_uv=False)
    best = np.sqrt(np.sum(A64**2) - np.sum(sv[..., 0] ** 2))
    # the factors are rounded to float32: that, not the iterations, limits the agreement
    assert abs(err - best) <= 1e-6 * best


# ------------------------------------------------------------------ order p


@st.composite
def order_p_factor_shapes(draw):
    p_len = draw(st.integers(1, 3))
    ins = draw(st.lists(st.integers(1, 3), min_size=p_len, max_size=p_len))
    outs = draw(st.lists(st.integers(1, 3), min_size=p_len, max_size=p_len))
    shapes = []
    for i in range(p_len):
        ax = p_len - 1 - i
        blocks = int(np.prod(ins[:ax])) * int(np.prod(outs[ax + 1 :]))
        shapes.append((blocks, outs[ax], ins[ax]))
    return shapes, ins, outs


@given(fs=order_p_factor_shapes(), batch=batch_shapes(2), dt=dtypes(), seed=seeds())
def test_order_p_multiply_matches_dense(fs, batch, dt, seed):
    shapes, ins, _ = fs
    rng = np.random.default_rng(seed)
    p = {f"f{i}": random_array(rng, s, dt, 0.7) for i, s in enumerate(shapes)}
    x = random_array(rng, (*batch, int(np.prod(ins))), dt)
    cf.check_matches_dense(order_p_spec(len(shapes)), p, x)


def test_order_p_dense_reference_is_the_product_of_axis_factors():
    # independent check of the convention: factor i acts on axis p-1-i with its block picked
    # by the other axes (inputs before, outputs after), via a kron-free explicit loop
    rng = np.random.default_rng(0)
    fs = [rng.standard_normal((4, 2, 2)) for _ in range(3)]
    M = np.zeros((8, 8))
    for o in np.ndindex(2, 2, 2):
        for i in np.ndindex(2, 2, 2):
            v = fs[0][i[0] * 2 + i[1], o[2], i[2]]  # axis 2: block (i0, i1)
            v *= fs[1][i[0] * 2 + o[2], o[1], i[1]]  # axis 1: block (i0, o2)
            v *= fs[2][o[1] * 2 + o[2], o[0], i[0]]  # axis 0: block (o1, o2)
            M[np.ravel_multi_index(o, (2, 2, 2)), np.ravel_multi_index(i, (2, 2, 2))] = v
    np.testing.assert_allclose(sl.monarch_order_p_to_dense(fs), M, atol=1e-14)


def test_order_p_of_two_factors_is_monarch_with_l_equal_q():
    rng = np.random.default_rng(2)
    f = [rng.standard_normal((3, 4, 5)), rng.standard_normal((4, 2, 3))]
    np.testing.assert_allclose(sl.monarch_order_p_to_dense(f), sl.monarch_to_dense(*f),
                               atol=1e-14)
    A = rng.standard_normal((8, 15))
    g = sl.monarch_order_p_project(A, (3, 5), (2, 4))
    w1, w2 = sl.monarch_project(A, (3, 4, 5), (4, 2, 3))
    np.testing.assert_allclose(np.linalg.norm(A - sl.monarch_order_p_to_dense(g)),
                               np.linalg.norm(A - sl.monarch_to_dense(w1, w2)), rtol=1e-9)


@given(fs=order_p_factor_shapes(), seed=seeds())
def test_order_p_projection_of_an_order_p_monarch_is_exact(fs, seed):
    shapes, ins, outs = fs
    rng = np.random.default_rng(seed)
    factors = [rng.standard_normal(s) for s in shapes]
    M = sl.monarch_order_p_to_dense(factors)
    g = sl.monarch_order_p_project(M, ins, outs)
    assert [w.shape for w in g] == [tuple(s) for s in shapes]
    assert cf._rel_err(sl.monarch_order_p_to_dense(g), M) <= 1e-10


@pytest.mark.parametrize("args,kw,exc,match", [
    ((np.ones((8, 4)), (2, 2, 2)), {}, ValueError, r"A must have shape \(8, 8\)"),
    ((np.ones((8, 8)), (2, 2, 2), (4, 2)), {}, ValueError, "equally long"),
    ((np.ones((8, 8)), ()), {}, ValueError, "equally long"),
    # sizes were truncated by int(): 2.5 -> 2, "4" -> 4
    ((np.ones((8, 8)), (2.5, 2, 2)), {}, TypeError, r"in_sizes\[0\] must be an integer, got 2\.5"),
    ((np.ones((4, 4)), ("4",)), {}, TypeError, r"in_sizes\[0\] must be an integer, got '4'"),
    ((np.ones((8, 8)), (2, 2, 2), (2, 2.0, 2)), {}, TypeError,
     r"out_sizes\[1\] must be an integer"),
    ((np.ones((8, 8)), None), {}, TypeError,
     "in_sizes must be a sequence of positive integers, got None"),
    ((np.ones((8, 8)), 8), {}, TypeError, "in_sizes must be a sequence"),
    ((np.ones((8, 8)), (2, 0, 4)), {}, ValueError, r"in_sizes\[1\] must be at least 1"),
    ((np.ones((8, 8)), (2, 2, 2)), {"max_iter": "5"}, TypeError, "max_iter must be an integer"),
    ((np.ones((8, 8)), (2, 2, 2)), {"tol": -1.0}, ValueError, "tol must be in"),
])
def test_order_p_projection_bad_arguments_raise_naming_them(args, kw, exc, match):
    with pytest.raises(exc, match=match):
        sl.monarch_order_p_project(*args, **kw)


@pytest.mark.parametrize("dt", [np.float32, np.complex64, np.float64, np.int64])
def test_order_p_to_dense_keeps_the_factors_precision(dt):
    # float32 factors gave a float64 matrix (a float64 placeholder joined the promotion)
    fs = [np.ones((2, 2, 2), dt), np.ones((2, 2, 2), dt)]
    M = sl.monarch_order_p_to_dense(fs)
    assert M.dtype == (np.float64 if np.dtype(dt).kind == "i" else dt)
    np.testing.assert_array_equal(M, sl.monarch_to_dense(*fs))


# ------------------------------------------------------------------ BTT


@st.composite
def btt_shapes(draw):
    k, rank, l, p, s = (draw(st.integers(1, 4)) for _ in range(5))
    return (k, rank, l, p), (l, s, k, rank)


@given(shapes=btt_shapes(), batch=batch_shapes(2), dt=dtypes(), seed=seeds())
def test_btt_multiply_matches_dense(shapes, batch, dt, seed):
    rng = np.random.default_rng(seed)
    s1, s2 = shapes
    p = monarch_params(rng, s1, s2, dt)
    x = random_array(rng, (*batch, s1[0] * s1[3]), dt)
    cf.check_matches_dense(btt_spec(), p, x)


def test_btt_of_rank_one_is_monarch():
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((3, 1, 4, 5)), rng.standard_normal((4, 2, 3, 1))
    np.testing.assert_allclose(sl.btt_to_dense(w1, w2),
                               sl.monarch_to_dense(w1[:, 0], w2[..., 0]), atol=1e-14)


@given(seed=seeds(), rank=st.integers(1, 3), k=st.integers(1, 3), l=st.integers(1, 3))
def test_btt_projection_error_equals_the_rank_r_slice_optimum(seed, rank, k, l):
    rng = np.random.default_rng(seed)
    p, s = 4, 3
    A = rng.standard_normal((l * s, k * p))
    w1, w2 = sl.btt_project(A, rank, nblocks=(k, l))
    err = np.linalg.norm(A - sl.btt_to_dense(w1, w2))
    err2 = 0.0
    for j in range(l):
        for c in range(k):
            sv = np.linalg.svd(A[j::l, c * p : (c + 1) * p], compute_uv=False)
            err2 += np.sum(sv[rank:] ** 2)
    assert abs(err - np.sqrt(err2)) <= 1e-6 * np.sqrt(err2) + 1e-10 * np.linalg.norm(A)


A8 = np.ones((8, 8))


@pytest.mark.parametrize("args,kw,exc,match", [
    ((np.ones((4, 4)), 0), {"nblocks": 2}, ValueError, "rank must be at least 1, got 0"),
    ((np.ones((4, 6)), 1), {"nblocks": 4}, ValueError, "must divide A's shape"),
    # rank was unbounded (cores of rank * n_in * l entries allocated): at most a slice's rank
    ((A8, 5), {"nblocks": 2}, ValueError,
     r"rank must be at most min\(n_out // l, n_in // k\) = min\(4, 4\) = 4, .* got 5"),
    ((A8, 2**40), {"nblocks": (4, 2)}, ValueError, r"= min\(4, 2\) = 2, .* got 1099511627776"),
    # sizes silently truncated by int()
    ((A8, 2.5), {"nblocks": 2}, TypeError, r"rank must be an integer, got 2\.5 \(float\)"),
    ((A8, "4"), {"nblocks": 2}, TypeError, r"rank must be an integer, got '4' \(str\)"),
    ((A8, None), {"nblocks": 2}, TypeError, "rank must be an integer, got None"),
    # "too many values to unpack"
    ((A8, 1), {"nblocks": (4, 2, 1)}, ValueError,
     r"nblocks must be an integer or a pair \(k, l\) .* got 3 values: \(4, 2, 1\)"),
    ((A8, 1), {"nblocks": (4,)}, ValueError, "nblocks must be an integer or a pair"),
    ((A8, 1), {"nblocks": (4, 2.5)}, TypeError, r"nblocks\[1\] must be an integer, got 2\.5"),
    ((A8, 1), {"nblocks": "4"}, TypeError, "nblocks must be an integer, got '4'"),
    ((A8, 1), {"nblocks": None}, TypeError, "nblocks must be an integer, got None"),
    ((A8, 1), {"nblocks": 2, "max_iter": "5"}, TypeError, "max_iter must be an integer"),
])
def test_btt_projection_bad_arguments_raise_naming_them(args, kw, exc, match):
    with pytest.raises(exc, match=match):
        sl.btt_project(*args, **kw)


def test_btt_projection_of_full_slice_rank_is_exact():
    # the largest rank accepted, min(n_out // l, n_in // k), reproduces A
    A = np.random.default_rng(0).standard_normal((6, 8))
    w1, w2 = sl.btt_project(A, 2, nblocks=(2, 3))
    assert w1.shape == (2, 2, 3, 4) and w2.shape == (3, 2, 2, 2)
    np.testing.assert_allclose(sl.btt_to_dense(w1, w2), A, atol=1e-10)


# ------------------------------------------------------------------ NumPy mixed with CuPy


@pytest.fixture
def fake_cupy(monkeypatch):
    """A stand-in ``cupy`` module, so that the mixing check is tested without a GPU."""
    import sys
    import types

    mod = types.ModuleType("cupy")

    class ndarray(np.ndarray):
        pass

    mod.ndarray = ndarray
    monkeypatch.setitem(sys.modules, "cupy", mod)
    return mod


def test_mixing_numpy_and_cupy_is_refused_naming_both_arguments(fake_cupy):
    def gpu(shape):
        return np.ones(shape).view(fake_cupy.ndarray)

    with pytest.raises(TypeError, match=r"x is a cupy\.ndarray but w1 is a numpy\.ndarray"):
        sl.monarch_multiply(np.ones((2, 2, 2)), np.ones((2, 2, 2)), gpu(4))
    with pytest.raises(TypeError, match=r"grad is a cupy\.ndarray but w1"):
        sl.monarch_multiply_vjp(np.ones((2, 2, 2)), np.ones((2, 2, 2)), np.ones(4), gpu(4))
    with pytest.raises(TypeError, match=r"factors\[1\] is a cupy\.ndarray but factors\[0\]"):
        sl.monarch_order_p_multiply([np.ones((2, 2, 2)), gpu((2, 2, 2))], np.ones(4))
    with pytest.raises(TypeError, match=r"w2 is a cupy\.ndarray but w1"):
        sl.btt_multiply(np.ones((1, 1, 1, 2)), gpu((1, 2, 1, 1)), np.ones(2))


def test_integer_and_bool_factors_promote_to_float64():
    w1, w2 = np.ones((2, 3, 2), np.int64), np.ones((3, 2, 2), bool)
    y = sl.monarch_multiply(w1, w2, np.arange(4))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, sl.monarch_to_dense(w1, w2) @ np.arange(4.0))
    g1, g2, gx = sl.monarch_multiply_vjp(w1, w2, np.arange(4), np.ones(6))
    assert g1.dtype == g2.dtype == gx.dtype == np.float64


@pytest.mark.parametrize("op", ["monarch", "btt", "order_p"])
@pytest.mark.parametrize("precision,canonical", [("tf32", "tf32"), ("bf16", "bf16"),
                                                 ("fp32", "highest"), ("highest", "highest")])
def test_precision_reaches_both_kernels(monkeypatch, op, precision, canonical):
    # every kernel call of the product and of its VJP gets the canonical precision
    from structlin._cpu import monarch as cpu

    seen = []

    def spy(fn):
        def wrapper(*args):
            seen.append((fn.__name__, args[-1]))
            return fn(*args)
        return wrapper

    monkeypatch.setattr(cpu, "apply", spy(cpu.apply))
    monkeypatch.setattr(cpu, "weight_grad", spy(cpu.weight_grad))
    rng = np.random.default_rng(0)
    w1, w2 = random_array(rng, (2, 3, 4), np.float32), random_array(rng, (3, 5, 2), np.float32)
    x, g = random_array(rng, (3, 8), np.float32), random_array(rng, (3, 15), np.float32)
    if op == "monarch":
        sl.monarch_multiply(w1, w2, x, precision=precision)
        sl.monarch_multiply_vjp(w1, w2, x, g, precision=precision)
    elif op == "btt":
        b1, b2 = w1.reshape(2, 1, 3, 4), w2.reshape(3, 5, 2, 1)
        sl.btt_multiply(b1, b2, x, precision=precision)
        sl.btt_multiply_vjp(b1, b2, x, g, precision=precision)
    else:
        fs = [random_array(rng, (4, 2, 2), np.float32) for _ in range(3)]
        sl.monarch_order_p_multiply(fs, x, precision=precision)
        sl.monarch_order_p_multiply_vjp(fs, x, x, precision=precision)
    names = {name for name, _ in seen}
    assert names == {"apply", "weight_grad"}, names
    assert all(p == canonical for _, p in seen), seen


# ------------------------------------------------------------------ conformance


class TestMonarchConformance(cf.OperatorConformance):
    """Every operator check for a rectangular Monarch product (n_in = 10, n_out = 12)."""

    s1, s2 = (2, 3, 5), (3, 4, 2)
    precision = "highest"

    def make_params(self, rng, dtype):
        return monarch_params(rng, self.s1, self.s2, dtype)

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, self.s1[0] * self.s1[2]), dtype)

    def fast(self, params, x):
        return sl.monarch_multiply(params["w1"], params["w2"], x, precision=self.precision)

    def dense(self, params):
        return sl.monarch_to_dense(params["w1"], params["w2"])

    def vjp(self, params, x, g):
        g1, g2, gx = sl.monarch_multiply_vjp(params["w1"], params["w2"], x, g,
                                             precision=self.precision)
        return {"w1": g1, "w2": g2, "x": gx}

    def bad_inputs(self):
        xp = self.xp
        w1, w2, x = xp.ones((2, 3, 4)), xp.ones((3, 5, 2)), xp.ones(8)
        mm = sl.monarch_multiply
        return [
            ("l*r != k*q", lambda: mm(w1, xp.ones((4, 5, 2)), x), ValueError,
             r"l\*r = 8 inputs, but w1 of shape \(k, q, p\) = \(2, 3, 4\) gives k\*q = 6"),
            ("x too short", lambda: mm(w1, w2, xp.ones(7)), ValueError,
             r"x has length n_in = 7 .* needs k\*p = 8"),
            ("2-d w1", lambda: mm(xp.ones((2, 3)), w2, xp.ones(6)), ValueError,
             r"w1 must have 3 dimensions, shape \(k, q, p\)"),
            ("4-d w2", lambda: mm(w1, xp.ones((3, 5, 2, 1)), x), ValueError,
             r"w2 must have 3 dimensions, shape \(l, s, r\)"),
            ("0-d x", lambda: mm(w1, w2, xp.asarray(1.0)), ValueError,
             "x must have at least 1 dimension"),
            ("grad of the wrong shape",
             lambda: sl.monarch_multiply_vjp(w1, w2, xp.ones((2, 8)), xp.ones((2, 14))),
             ValueError, r"grad must have shape \(2, 15\)"),
            ("unknown precision", lambda: mm(w1, w2, x, precision="fp8"), ValueError,
             "precision must be one of"),
            ("fp16 (not a Monarch kernel precision)", lambda: mm(w1, w2, x, precision="fp16"),
             ValueError, "precision must be one of"),
            ("tensor cores on float64", lambda: mm(w1, w2, x, precision="tf32"), ValueError,
             r"precision='tf32' \(tensor cores\) needs float32 or complex64 data, got float64"),
        ]


class TestMonarchTf32Conformance(TestMonarchConformance):
    """``precision="tf32"`` on single-precision data: on NumPy every check holds at full
    float32 accuracy (the CPU has no tensor cores and computes in full precision)."""

    precision = "tf32"
    dtypes = (np.float32, np.complex64)
    mixed_dtypes = False  # float64 data is refused with a tensor-core precision


class TestMonarchMicrokernelConformance(TestMonarchConformance):
    """The register-blocked micro-kernel path (real dtypes, q and l multiples of 16)."""

    s1, s2 = (4, 16, 8), (16, 5, 4)
    dtypes = (np.float32, np.float64)


def _order_p_factors(params):
    return [params[f"factors[{i}]"] for i in range(len(params))]


class TestOrderPConformance(cf.OperatorConformance):
    """Order 3, in (2, 2, 3) -> out (2, 3, 2): non-square blocks on every axis."""

    shapes = ((4, 2, 3), (4, 3, 2), (6, 2, 2))

    def make_params(self, rng, dtype):
        # keyed as the functions name them in their messages
        return {f"factors[{i}]": random_array(rng, s, dtype, 0.7)
                for i, s in enumerate(self.shapes)}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, 12), dtype)

    def fast(self, params, x):
        return sl.monarch_order_p_multiply(_order_p_factors(params), x)

    def dense(self, params):
        return sl.monarch_order_p_to_dense(_order_p_factors(params))

    def vjp(self, params, x, g):
        gfs, gx = sl.monarch_order_p_multiply_vjp(_order_p_factors(params), x, g)
        return {**{f"factors[{i}]": gf for i, gf in enumerate(gfs)}, "x": gx}

    def bad_inputs(self):
        xp = self.xp
        f = [xp.ones((4, 2, 2))] * 3
        op = sl.monarch_order_p_multiply
        return [
            ("wrong block count", lambda: op([f[0], xp.ones((3, 2, 2)), f[2]], xp.ones(8)),
             ValueError, r"factors\[1\] acts on axis 1 .* = 4 blocks"),
            ("x too short", lambda: op(f, xp.ones(6)), ValueError, "x has length n_in = 6"),
            ("factors not a sequence", lambda: op(xp.ones((4, 2, 2)), xp.ones(8)), TypeError,
             "factors must be a sequence"),
            ("no factor", lambda: op([], xp.ones(8)), ValueError, "at least one factor"),
            ("2-d factor", lambda: op([xp.ones((4, 2))], xp.ones(2)), ValueError,
             r"factors\[0\] must have 3 dimensions"),
            ("grad of the wrong shape",
             lambda: sl.monarch_order_p_multiply_vjp(f, xp.ones(8), xp.ones(7)), ValueError,
             r"grad must have shape \(8,\)"),
            ("unknown precision", lambda: op(f, xp.ones(8), precision="high"), ValueError,
             "precision must be one of"),
        ]


class TestBttConformance(cf.OperatorConformance):
    """Rank 3, k = 2 input blocks of 4, l = 3 output blocks of 2."""

    s1, s2 = (2, 3, 3, 4), (3, 2, 2, 3)

    def make_params(self, rng, dtype):
        return monarch_params(rng, self.s1, self.s2, dtype)

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, 8), dtype)

    def fast(self, params, x):
        return sl.btt_multiply(params["w1"], params["w2"], x)

    def dense(self, params):
        return sl.btt_to_dense(params["w1"], params["w2"])

    def vjp(self, params, x, g):
        g1, g2, gx = sl.btt_multiply_vjp(params["w1"], params["w2"], x, g)
        return {"w1": g1, "w2": g2, "x": gx}

    def bad_inputs(self):
        xp = self.xp
        w1, w2 = xp.ones((2, 3, 4, 5)), xp.ones((4, 2, 2, 3))
        return [
            ("cores disagree",
             lambda: sl.btt_multiply(w1, xp.ones((4, 2, 2, 2)), xp.ones(10)), ValueError,
             r"disagree on \(k, rank, l\)"),
            ("3-d w1", lambda: sl.btt_multiply(xp.ones((2, 3, 4)), w2, xp.ones(10)), ValueError,
             r"w1 must have 4 dimensions, shape \(k, rank, l, p\)"),
            ("x too short", lambda: sl.btt_multiply(w1, w2, xp.ones(9)), ValueError,
             r"x has length n_in = 9 .* needs k\*p = 10"),
            ("grad of the wrong shape",
             lambda: sl.btt_multiply_vjp(w1, w2, xp.ones(10), xp.ones(7)), ValueError,
             r"grad must have shape \(8,\)"),
            ("tensor cores on complex128",
             lambda: sl.btt_multiply_vjp(w1.astype(xp.complex128), w2, xp.ones(10),
                                         xp.ones(8), precision="bf16"),
             ValueError, "got complex128"),
        ]
