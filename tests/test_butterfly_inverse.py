"""Butterfly inverse, solve and log-determinant (and their VJPs) against dense references."""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import LinAlgWarning

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


def well_conditioned(rng, n, dtype, spread=0.35):
    """Blocks ``Q diag(s)``, ``Q`` Haar orthogonal/unitary, ``s`` in ``[1 - spread, 1 + spread]``.

    Every block then has condition number at most ``(1 + spread) / (1 - spread)``.
    """
    q = sl.random_butterfly(n, kind="orthogonal", dtype=dtype, rng=rng)
    s = rng.uniform(1 - spread, 1 + spread, size=(*q.shape[:-2], 1, 2))
    return (q * s).astype(dtype)


def solve_spec(**flags) -> cf.OperatorSpec:
    adj = dict(flags, transpose=not flags.get("transpose", False),
               conjugate=not flags.get("conjugate", False))

    def vjp(p, y, g):
        gtw, gy = sl.butterfly_solve_vjp(p["twiddle"], y, g, **flags)
        return {"twiddle": gtw, "x": gy}

    return cf.OperatorSpec(
        fast=lambda p, y: sl.butterfly_solve(p["twiddle"], y, **flags),
        dense=lambda p: np.linalg.inv(sl.butterfly_to_dense(p["twiddle"], **flags)),
        vjp=vjp,
        adjoint=lambda p, z: sl.butterfly_solve(p["twiddle"], z, **adj),
    )


def _cond_tol(dt, n):
    # products with inverted blocks lose about log2(n) condition numbers of a few units
    return tolerance(dt, n) * 8


# ------------------------------------------------------------------------------ solve


@given(L=log2_sizes(6), batch=batch_shapes(), tdt=dtypes(), ydt=dtypes(), seed=seeds(),
       flags=st.sampled_from(FLAGS))
def test_solve_matches_dense_inverse(L, batch, tdt, ydt, seed, flags):
    rng = np.random.default_rng(seed)
    n = 1 << L
    p = {"twiddle": well_conditioned(rng, n, tdt)}
    y = random_array(rng, (*batch, n), ydt)
    cf.check_matches_dense(solve_spec(**flags), p, y, rtol=_cond_tol(np.result_type(tdt, ydt), n))


@given(L=log2_sizes(8), batch=batch_shapes(2), dt=dtypes(), seed=seeds(),
       flags=st.sampled_from(FLAGS))
def test_multiply_after_solve_is_identity(L, batch, dt, seed, flags):
    rng = np.random.default_rng(seed)
    n = 1 << L
    tw = well_conditioned(rng, n, dt)
    y = random_array(rng, (*batch, n), dt)
    x = sl.butterfly_solve(tw, y, **flags)
    assert x.dtype == dt and x.shape == y.shape
    assert cf._rel_err(sl.butterfly_multiply(tw, x, **flags), y) <= _cond_tol(dt, n)


@given(L=log2_sizes(8), dt=dtypes(), seed=seeds(), flags=st.sampled_from(FLAGS))
def test_solve_after_multiply_is_identity(L, dt, seed, flags):
    rng = np.random.default_rng(seed)
    n = 1 << L
    tw = well_conditioned(rng, n, dt)
    x = random_array(rng, (3, n), dt)
    back = sl.butterfly_solve(tw, sl.butterfly_multiply(tw, x, **flags), **flags)
    assert cf._rel_err(back, x) <= _cond_tol(dt, n)


@pytest.mark.parametrize("n,batch,dt", [(1 << 15, 2, np.complex128), (1 << 17, 3, np.float32)])
@pytest.mark.parametrize("increasing", [True, False])
def test_multipass_solve_inverts_the_reference_product(n, batch, dt, increasing):
    # sizes where the multiply kernels take several cache passes
    rng = np.random.default_rng(n)
    tw = well_conditioned(rng, n, dt, spread=0.2)
    x = random_array(rng, (batch, n), dt)
    y = _reference_apply(np, tw.astype(np.complex128), x.astype(np.complex128), increasing)
    y = y if np.dtype(dt).kind == "c" else y.real
    got = sl.butterfly_solve(tw, y.astype(dt), increasing_stride=increasing)
    assert cf._rel_err(got, x) <= _cond_tol(dt, n)


def test_solve_of_size_one_and_empty_batch():
    tw = np.zeros((0, 0, 2, 2))
    y = np.arange(3.0).reshape(3, 1)
    x = sl.butterfly_solve(tw, y)
    np.testing.assert_array_equal(x, y)
    assert not np.shares_memory(x, y)
    tw8 = sl.random_butterfly(8, kind="orthogonal", rng=0)
    x0 = sl.butterfly_solve(tw8, np.zeros((0, 2, 8), np.float32))
    assert x0.shape == (0, 2, 8) and x0.dtype == np.float64
    gtw, gy = sl.butterfly_solve_vjp(tw8, np.zeros((0, 8)), np.zeros((0, 8)))
    assert gy.shape == (0, 8)
    np.testing.assert_array_equal(gtw, 0)


def test_orthogonal_solve_equals_adjoint_multiply():
    # B^-1 = B^H for a unitary butterfly, exactly what the inverted blocks give
    tw = sl.random_butterfly(256, kind="orthogonal", dtype=np.complex128, rng=4)
    y = random_array(np.random.default_rng(4), (5, 256), np.complex128)
    np.testing.assert_allclose(sl.butterfly_solve(tw, y),
                               sl.butterfly_multiply(tw, y, transpose=True, conjugate=True),
                               atol=1e-13)


def test_integer_and_bool_inputs_promote_to_float64():
    tw = np.tile(np.array([[2, 1], [1, 1]]), (2, 2, 1, 1))
    y = np.array([True, False, True, True])
    x = sl.butterfly_solve(tw, y)
    assert x.dtype == np.float64
    np.testing.assert_allclose(sl.butterfly_to_dense(tw) @ x, y.astype(float), atol=1e-14)


# ------------------------------------------------------------------------------ inverse


@given(L=log2_sizes(6), dt=dtypes(), seed=seeds(), increasing=st.booleans())
def test_inverse_twiddle_dense_equals_inv_of_dense(L, dt, seed, increasing):
    rng = np.random.default_rng(seed)
    n = 1 << L
    tw = well_conditioned(rng, n, dt)
    inv, inc = sl.butterfly_inverse(tw, increasing_stride=increasing)
    assert inc is (not increasing)
    assert inv.dtype == dt and inv.shape == tw.shape
    dense_inv = np.linalg.inv(sl.butterfly_to_dense(tw.astype(np.complex128),
                                                    increasing_stride=increasing))
    got = sl.butterfly_to_dense(inv, increasing_stride=inc)
    assert cf._rel_err(got, dense_inv) <= _cond_tol(dt, n)


def test_inverse_of_inverse_is_the_twiddle():
    tw = well_conditioned(np.random.default_rng(0), 64, np.complex128)
    inv, inc = sl.butterfly_inverse(tw, increasing_stride=False)
    back, inc2 = sl.butterfly_inverse(inv, increasing_stride=inc)
    assert inc2 is False
    np.testing.assert_allclose(back, tw, rtol=1e-13, atol=1e-13)


def test_inverse_blocks_are_exact_for_extreme_scales():
    # blocks scaled by 1e+-150: a naive a*d - b*c overflows or underflows; scaling does not
    base = np.array([[3.0, 1.0], [2.0, 4.0]])
    for scale in (1e150, 1e-150):
        tw = np.tile(base * scale, (1, 1, 1, 1))
        inv, _ = sl.butterfly_inverse(tw)
        np.testing.assert_allclose(inv[0, 0] * scale, np.linalg.inv(base), rtol=1e-15)
        _, logabs = sl.butterfly_logdet(tw)
        np.testing.assert_allclose(logabs, np.log(10.0) + 2 * np.log(scale), rtol=1e-14)


# ------------------------------------------------------------------------------ singular


def _with_block(tw, k, j, block):
    tw = tw.copy()
    tw[k, j] = block
    return tw


@pytest.mark.parametrize("call", [
    lambda tw: sl.butterfly_inverse(tw),
    lambda tw: sl.butterfly_solve(tw, np.ones(tw.shape[1] * 2)),
    lambda tw: sl.butterfly_solve_vjp(tw, np.ones(tw.shape[1] * 2), np.ones(tw.shape[1] * 2)),
    lambda tw: sl.butterfly_logdet_vjp(tw, 1.0),
], ids=["inverse", "solve", "solve_vjp", "logdet_vjp"])
def test_singular_block_raises_linalgerror_naming_factor_and_block(call):
    tw = well_conditioned(np.random.default_rng(1), 16, np.float64)
    tw = _with_block(tw, 2, 5, [[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(np.linalg.LinAlgError, match=r"block 5 of factor 2 \(twiddle\[2, 5\]\)"):
        call(tw)


def test_singular_reports_the_first_of_several_blocks_across_chunks():
    # 2**14 has 14 * 8192 blocks: several parallel chunks, each reducing its own minimum
    tw = well_conditioned(np.random.default_rng(2), 1 << 14, np.float32)
    tw = _with_block(tw, 9, 4000, 0.0)
    tw = _with_block(tw, 3, 17, [[0.0, 1.0], [0.0, 1.0]])
    tw = _with_block(tw, 12, 1, 0.0)
    with pytest.raises(np.linalg.LinAlgError, match=r"block 17 of factor 3 "):
        sl.butterfly_solve(tw, np.ones(1 << 14, np.float32))


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.complex64, np.complex128])
def test_nearly_singular_block_warns_with_the_estimate(dt):
    eps = np.finfo(dt).eps
    tw = well_conditioned(np.random.default_rng(3), 8, dt)
    tw = _with_block(tw, 1, 2, [[1.0, 1.0], [1.0, 1.0 + 2 * eps]])
    with pytest.warns(LinAlgWarning, match=r"block 2 of factor 1 .* reciprocal condition number "
                                           r"[0-9.e-]+ "):
        sl.butterfly_solve(tw, np.ones(8, dt))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.butterfly_solve(well_conditioned(np.random.default_rng(3), 8, dt), np.ones(8, dt))


def test_logdet_of_singular_butterfly_is_zero_sign_minus_infinity_like_numpy():
    tw = _with_block(well_conditioned(np.random.default_rng(4), 8, np.float64), 0, 3, 0.0)
    sign, logabs = sl.butterfly_logdet(tw)
    ref = np.linalg.slogdet(sl.butterfly_to_dense(tw))
    assert sign == ref.sign == 0 and logabs == ref.logabsdet == -np.inf


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("call", [
    lambda tw: sl.butterfly_inverse(tw),
    lambda tw: sl.butterfly_solve(tw, np.ones(8)),
    lambda tw: sl.butterfly_solve_vjp(tw, np.ones(8), np.ones(8)),
    lambda tw: sl.butterfly_logdet(tw),
    lambda tw: sl.butterfly_logdet_vjp(tw, 1.0),
], ids=["inverse", "solve", "solve_vjp", "logdet", "logdet_vjp"])
def test_nonfinite_twiddle_raises_valueerror_naming_it(call, bad):
    tw = well_conditioned(np.random.default_rng(5), 8, np.complex128)
    tw[2, 1, 1, 0] = bad
    with pytest.raises(ValueError, match=r"twiddle must be finite, but block 1 of factor 2 "
                                         r"\(twiddle\[2, 1\]\) contains NaN or infinity"):
        call(tw)


# ------------------------------------------------------------------------------ logdet


@given(L=log2_sizes(7), dt=dtypes(), seed=seeds())
def test_logdet_equals_numpy_slogdet_of_dense(L, dt, seed):
    rng = np.random.default_rng(seed)
    n = 1 << L
    tw = random_array(rng, (L, n // 2, 2, 2), dt)
    sign, logabs = sl.butterfly_logdet(tw)
    ref = np.linalg.slogdet(sl.butterfly_to_dense(tw.astype(np.complex128)))
    assert sign.dtype == dt and logabs.dtype == sl._backend.real_dtype(dt)
    tol = tolerance(dt, n) * 8
    assert abs(complex(sign) - complex(ref.sign)) <= tol
    assert abs(float(logabs) - ref.logabsdet) <= tol * max(1.0, abs(ref.logabsdet), n)


@pytest.mark.parametrize("dt", [np.float32, np.complex64])
def test_logdet_at_large_n_sums_in_float64(dt):
    # 2**18 * 9 blocks: a float32 running sum would lose about 3 digits; the kernels keep 7
    n = 1 << 18
    rng = np.random.default_rng(6)
    tw = random_array(rng, (18, n // 2, 2, 2), dt)
    sign, logabs = sl.butterfly_logdet(tw)
    blocks = np.linalg.slogdet(tw.astype(np.complex128))
    np.testing.assert_allclose(float(logabs), blocks.logabsdet.sum(), rtol=1e-6)
    phase = np.angle(blocks.sign).sum()
    assert abs(complex(sign) - np.exp(1j * phase)) < 1e-4
    assert abs(abs(complex(sign)) - 1) < 1e-6


def test_logdet_of_empty_butterfly_is_zero():
    sign, logabs = sl.butterfly_logdet(np.zeros((0, 0, 2, 2), np.complex64))
    assert sign == 1 and sign.dtype == np.complex64 and logabs == 0
    assert logabs.dtype == np.float32


def test_logdet_is_invariant_to_stride_order_and_transpose():
    tw = random_array(np.random.default_rng(7), (5, 16, 2, 2), np.float64)
    for flags in FLAGS:
        ref = np.linalg.slogdet(sl.butterfly_to_dense(tw, **{**flags, "conjugate": False}))
        sign, logabs = sl.butterfly_logdet(tw)
        assert sign == ref.sign
        np.testing.assert_allclose(logabs, ref.logabsdet, rtol=1e-12)


# ------------------------------------------------------------------------------ VJPs


@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("tdt,ydt", [("float64", "complex128"), ("complex128", "float64")])
def test_solve_vjp_of_mixed_real_and_complex_matches_finite_differences(flags, tdt, ydt):
    # equal dtypes are checked by the conformance classes below
    rng = np.random.default_rng(8)
    n = 16
    p = {"twiddle": well_conditioned(rng, n, tdt)}
    y = random_array(rng, (2, 3, n), ydt)
    g = random_array(rng, (2, 3, n), np.result_type(tdt, ydt))
    cf.check_vjp(solve_spec(**flags), p, y, g, rng=rng)


@given(L=log2_sizes(6, 1), dt=dtypes(), seed=seeds(), flags=st.sampled_from(FLAGS))
def test_solve_vjp_grad_y_is_inverse_adjoint_times_grad(L, dt, seed, flags):
    rng = np.random.default_rng(seed)
    n = 1 << L
    tw = well_conditioned(rng, n, dt)
    y = random_array(rng, (4, n), dt)
    g = random_array(rng, (4, n), dt)
    gtw, gy = sl.butterfly_solve_vjp(tw, y, g, **flags)
    Minv = np.linalg.inv(sl.butterfly_to_dense(tw.astype(np.complex128), **flags))
    assert cf._rel_err(gy, g @ Minv.conj()) <= _cond_tol(dt, n) * 2
    assert gtw.dtype == tw.dtype and gy.dtype == y.dtype


def test_solve_vjp_multipass_matches_finite_differences():
    rng = np.random.default_rng(9)
    n = 1 << 14
    p = {"twiddle": well_conditioned(rng, n, np.complex128, spread=0.2)}
    y = random_array(rng, (2, n), np.complex128)
    g = random_array(rng, (2, n), np.complex128)
    cf.check_vjp(solve_spec(), p, y, g, rng=rng, n_directions=1)


@pytest.mark.parametrize("dt", ["float64", "complex128"])
def test_logdet_vjp_matches_finite_differences(dt):
    rng = np.random.default_rng(10)
    n = 16
    tw = random_array(rng, (4, n // 2, 2, 2), dt)
    gl = 0.7
    grad = sl.butterfly_logdet_vjp(tw, gl)
    assert grad.dtype == tw.dtype and grad.shape == tw.shape
    h = 1e-6
    for _ in range(3):
        d = random_array(rng, tw.shape, dt)
        plus, minus = sl.butterfly_logdet(tw + h * d)[1], sl.butterfly_logdet(tw - h * d)[1]
        fd = gl * (plus - minus) / (2 * h)
        an = float(np.real(np.vdot(grad, d)))
        assert abs(fd - an) <= 1e-6 * max(abs(fd), 1.0), (fd, an)


@given(L=log2_sizes(6), dt=dtypes(), seed=seeds())
def test_logdet_vjp_is_scaled_inverse_transpose_of_blocks(L, dt, seed):
    rng = np.random.default_rng(seed)
    n = 1 << L
    tw = well_conditioned(rng, n, dt)
    grad = sl.butterfly_logdet_vjp(tw, np.float32(2.0))
    want = 2.0 * np.conj(np.swapaxes(np.linalg.inv(tw.astype(np.complex128)), -1, -2))
    assert cf._rel_err(grad, want if np.dtype(dt).kind == "c" else want.real) <= tolerance(dt, n)
    assert grad.dtype == dt


def test_logdet_vjp_of_dense_matches_inverse_transpose_of_dense():
    # for a real matrix d log|det B| / dB = B^-T; through the chain rule on the blocks the
    # twiddle gradient equals the butterfly multiply VJP of B^-T contracted with B's structure
    tw = well_conditioned(np.random.default_rng(11), 8, np.float64)
    grad = sl.butterfly_logdet_vjp(tw, 1.0)
    # <grad, d> equals tr(B^-1 dB) for the dense perturbation dB of a twiddle perturbation d
    d = random_array(np.random.default_rng(12), tw.shape, np.float64)
    B = sl.butterfly_to_dense(tw)
    h = 1e-7
    dB = (sl.butterfly_to_dense(tw + h * d) - sl.butterfly_to_dense(tw - h * d)) / (2 * h)
    np.testing.assert_allclose(np.vdot(grad, d), np.trace(np.linalg.solve(B, dB)), rtol=1e-6)


# ------------------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize("twiddle,exc,match", [
    (np.ones((2, 2, 2)), ValueError, r"twiddle must have shape \(L, n//2, 2, 2\)"),
    (np.ones((2, 3, 2, 2)), ValueError,
     r"twiddle must have shape \(2, 2, 2, 2\) \(L = 2 factors, so n = 4\), got \(2, 3, 2, 2\)"),
    (np.ones((1, 1, 2, 3)), ValueError, r"twiddle must have shape \(L, n//2, 2, 2\)"),
    (np.array([[[["a", "b"], ["c", "d"]]]]), TypeError, "twiddle must have a numeric dtype"),
])
@pytest.mark.parametrize("fn", [sl.butterfly_inverse, sl.butterfly_logdet,
                                lambda tw: sl.butterfly_logdet_vjp(tw, 1.0)],
                         ids=["inverse", "logdet", "logdet_vjp"])
def test_bad_twiddle_raises_naming_it(fn, twiddle, exc, match):
    with pytest.raises(exc, match=match):
        fn(twiddle)


def test_bad_logdet_grad_arguments_raise_naming_them():
    tw = sl.random_butterfly(4, kind="orthogonal", rng=0)
    with pytest.raises(TypeError, match="grad_logabsdet must be real"):
        sl.butterfly_logdet_vjp(tw, 1j)
    with pytest.raises(ValueError, match=r"grad_logabsdet must be a scalar \(0-d\), got an "
                                         r"array of shape \(2,\)"):
        sl.butterfly_logdet_vjp(tw, np.ones(2))
    with pytest.raises(ValueError, match="grad_logabsdet must be finite, got nan"):
        sl.butterfly_logdet_vjp(tw, np.nan)
    with pytest.raises(TypeError, match="grad_logabsdet must have a numeric dtype"):
        sl.butterfly_logdet_vjp(tw, np.array("a"))
    with pytest.raises(TypeError, match="increasing_stride must be True or False"):
        sl.butterfly_inverse(tw, increasing_stride="no")


def test_inputs_are_not_modified_by_any_function():
    rng = np.random.default_rng(13)
    tw = well_conditioned(rng, 16, np.complex64)
    y = random_array(rng, (3, 16), np.complex64)
    g = random_array(rng, (3, 16), np.complex64)
    copies = [a.copy() for a in (tw, y, g)]
    sl.butterfly_inverse(tw)
    sl.butterfly_solve(tw, y)
    sl.butterfly_solve_vjp(tw, y, g)
    sl.butterfly_logdet(tw)
    sl.butterfly_logdet_vjp(tw, 1.0)
    for a, c in zip((tw, y, g), copies, strict=True):
        np.testing.assert_array_equal(a, c)


# ------------------------------------------------------------------------- conformance


class TestButterflySolveConformance(cf.OperatorConformance):
    """Every operator check for ``butterfly_solve``, whose dense matrix is ``inv(op(B))``
    (n = 64, blocks of condition number at most 2; the subclasses vary the flags)."""

    n = 64
    x_name = "y"
    flags: ClassVar[dict] = {}
    # products with inverted blocks lose about log2(n) condition numbers of a few units
    tol_factor = 8.0

    def make_params(self, rng, dtype):
        return {"twiddle": well_conditioned(rng, self.n, dtype)}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, self.n), dtype)

    def fast(self, params, x):
        return sl.butterfly_solve(params["twiddle"], x, **self.flags)

    def dense(self, params):
        return np.linalg.inv(sl.butterfly_to_dense(params["twiddle"], **self.flags))

    def vjp(self, params, x, g):
        gtw, gy = sl.butterfly_solve_vjp(params["twiddle"], x, g, **self.flags)
        return {"twiddle": gtw, "x": gy}

    def bad_inputs(self):
        tw4 = np.ones((2, 2, 2, 2))
        orth = sl.random_butterfly(4, kind="orthogonal", rng=0)
        out = []
        for name, fn in (("solve", lambda tw, y: sl.butterfly_solve(tw, y)),
                         ("solve_vjp", lambda tw, y: sl.butterfly_solve_vjp(tw, y, y))):
            out += [
                (f"{name}: y length not a power of two", lambda fn=fn: fn(tw4, np.ones(6)),
                 ValueError, "y must have a last-axis length n that is a power of two"),
                (f"{name}: twiddle for another n", lambda fn=fn: fn(tw4, np.ones(8)),
                 ValueError,
                 r"twiddle must have shape \(3, 4, 2, 2\) \(\(L, n//2, 2, 2\) for y with n = 8"),
                (f"{name}: 3-d twiddle", lambda fn=fn: fn(np.ones((2, 2, 2)), np.ones(4)),
                 ValueError, r"twiddle must have shape \(L, n//2, 2, 2\)"),
                (f"{name}: 0-d y", lambda fn=fn: fn(tw4, np.float64(1.0)), ValueError,
                 "y must have at least 1 dimension"),
                (f"{name}: extended precision",
                 lambda fn=fn: fn(tw4.astype(np.longdouble), np.ones(4)), TypeError,
                 "extended precision"),
                (f"{name}: empty last axis", lambda fn=fn: fn(tw4, np.ones(0)), ValueError,
                 "power of two"),
            ]
        out += [
            ("grad of the wrong shape",
             lambda: sl.butterfly_solve_vjp(orth, np.ones((2, 4)), np.ones(4)), ValueError,
             r"grad must have shape \(2, 4\) \(the shape of the solution"),
            ("non-numeric grad",
             lambda: sl.butterfly_solve_vjp(orth, np.ones(4), np.array(["a"] * 4)),
             TypeError, "grad must have a numeric dtype"),
            ("complex grad of a real solution",
             lambda: sl.butterfly_solve_vjp(orth, np.ones(4), np.ones(4, np.complex128)),
             TypeError, r"grad must be real: the solution is real \(float64\), got dtype "
             "complex128"),
            ("flag not a bool", lambda: sl.butterfly_solve(orth, np.ones(4), conjugate=1),
             TypeError, "conjugate must be True or False"),
        ]
        return out


class TestButterflySolveDecreasingConformance(TestButterflySolveConformance):
    flags: ClassVar[dict] = {"increasing_stride": False}


class TestButterflySolveTransposeConformance(TestButterflySolveConformance):
    flags: ClassVar[dict] = {"transpose": True}


class TestButterflySolveAdjointConformance(TestButterflySolveConformance):
    """``B^-H`` of a decreasing-stride butterfly: every flag set."""

    flags: ClassVar[dict] = {"increasing_stride": False, "transpose": True, "conjugate": True}
