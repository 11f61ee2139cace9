"""Closed-form butterflies (DFT, Hadamard, DCT/DST, circulant, Toeplitz) against NumPy/SciPy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

import structlin as sl
from tests import conformance as cf
from tests.strategies import batch_shapes, dtypes, log2_sizes, random_array, seeds, tolerance

TYPES = (2, 3, 4)
NORMS = (None, "ortho")
KINDS = ("dct", "dst")


def _close(y, ref, dt, n, factor=1.0):
    err = cf._rel_err(y, ref)
    tol = tolerance(dt, n) * factor
    assert err <= tol, f"relative error {err:.3g} > {tol:.3g}"


# -------------------------------------------------------------------------------- DFT


@given(L=log2_sizes(10), batch=batch_shapes(2), inverse=st.booleans(),
       norm=st.sampled_from([None, "backward", "ortho", "forward"]),
       dt=st.sampled_from([np.complex64, np.complex128]), seed=seeds())
def test_dft_butterfly_on_bit_reversed_input_equals_numpy_fft(L, batch, inverse, norm, dt,
                                                               seed):
    n = 1 << L
    x = random_array(np.random.default_rng(seed), (*batch, n), dt)
    tw = sl.butterfly_dft(n, inverse=inverse, norm=norm, dtype=dt)
    assert tw.dtype == dt and tw.shape == (L, n // 2, 2, 2)
    y = sl.butterfly_multiply(tw, x[..., sl.bit_reversal_permutation(n)])
    ref = (np.fft.ifft if inverse else np.fft.fft)(x.astype(np.complex128), norm=norm)
    _close(y, ref, dt, n)


@pytest.mark.parametrize("n", [2, 16, 128])
def test_dft_butterfly_transposed_is_dif_fft_with_bit_reversed_output(n):
    x = random_array(np.random.default_rng(n), (3, n), np.complex128)
    y = sl.butterfly_multiply(sl.butterfly_dft(n), x, transpose=True)
    np.testing.assert_allclose(y, np.fft.fft(x)[..., sl.bit_reversal_permutation(n)],
                               atol=1e-12 * n)


@pytest.mark.parametrize("n", [1, 4, 64])
def test_ortho_dft_butterfly_is_unitary_and_inverse_undoes_it(n):
    F = sl.butterfly_to_dense(sl.butterfly_dft(n, norm="ortho"))
    np.testing.assert_allclose(F @ F.conj().T, np.eye(n), atol=1e-13)
    Fi = sl.butterfly_to_dense(sl.butterfly_dft(n, inverse=True, norm="ortho"))
    p = sl.bit_reversal_permutation(n)
    # both take bit-reversed input: ifft(fft(x)) = Fi[:, p^-1 ...] composed with the permutation
    np.testing.assert_allclose(Fi[:, np.argsort(p)] @ F[:, np.argsort(p)], np.eye(n),
                               atol=1e-13)


# --------------------------------------------------------------------------- Hadamard


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("n", [1, 2, 8, 256])
def test_hadamard_butterfly_equals_scipy_hadamard(n, dt):
    tw = sl.butterfly_hadamard(n, dtype=dt)
    assert tw.dtype == dt
    H = scipy.linalg.hadamard(n)
    for inc in (True, False):
        np.testing.assert_array_equal(sl.butterfly_to_dense(tw, increasing_stride=inc), H)
    Hn = sl.butterfly_to_dense(sl.butterfly_hadamard(n, normalize=True))
    np.testing.assert_allclose(Hn, H / np.sqrt(n), atol=1e-15)


@given(L=log2_sizes(10), seed=seeds())
def test_hadamard_butterfly_product_equals_fwht(L, seed):
    n = 1 << L
    x = random_array(np.random.default_rng(seed), (2, n), np.float64)
    y = sl.butterfly_multiply(sl.butterfly_hadamard(n, normalize=True), x)
    _close(y, sl.fwht(x, normalize=True), np.float64, n)


# ---------------------------------------------------------------------------- DCT/DST


@given(kind=st.sampled_from(KINDS), type=st.sampled_from(TYPES), norm=st.sampled_from(NORMS),
       L=log2_sizes(10), batch=batch_shapes(2), dt=dtypes(), seed=seeds())
def test_transform_equals_scipy_fft(kind, type, norm, L, batch, dt, seed):
    n = 1 << L
    x = random_array(np.random.default_rng(seed), (*batch, n), dt)
    x_before = x.copy()
    y = getattr(sl, kind)(x, type, norm)
    ref = getattr(scipy.fft, kind)(x.astype(np.result_type(dt, np.float64)), type, norm=norm)
    assert y.dtype == dt and y.shape == x.shape
    _close(y, ref, dt, n, factor=2)
    np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("type", TYPES)
@pytest.mark.parametrize("norm", NORMS)
def test_pieces_applied_equal_transform_and_dense_matrix(kind, type, norm):
    n = 32
    pieces = getattr(sl, f"butterfly_{kind}")(n, type, norm)
    M = getattr(scipy.fft, kind)(np.eye(n), type, norm=norm, axis=0)
    got = sl.dct_butterfly_multiply(pieces, np.eye(n)).T
    np.testing.assert_allclose(got, M, atol=1e-12 * n)
    # the pieces are fresh copies: changing them does not change the cached transform
    pieces.output_weight[:] = 0
    np.testing.assert_allclose(getattr(sl, kind)(np.eye(n), type, norm).T, M, atol=1e-12 * n)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dt", [np.float32, np.float64, np.complex64, np.complex128])
def test_ortho_type3_inverts_type2_and_ortho_type4_is_involution(kind, dt):
    f = getattr(sl, kind)
    x = random_array(np.random.default_rng(5), (4, 64), dt)
    _close(f(f(x, 2, "ortho"), 3, "ortho"), x, dt, 64, factor=2)
    _close(f(f(x, 4, "ortho"), 4, "ortho"), x, dt, 64, factor=2)


@pytest.mark.parametrize("kind", KINDS)
def test_type3_is_transpose_of_type2_times_diagonal(kind):
    n = 16
    f = getattr(sl, kind)
    M2 = f(np.eye(n), 2).T
    M3 = f(np.eye(n), 3).T
    d = np.ones(n)
    d[0 if kind == "dct" else n - 1] = 0.5
    np.testing.assert_allclose(M3, M2.T * d, atol=1e-12)


def _transform_spec(kind, type, norm):
    f = getattr(sl, kind)
    fv = getattr(sl, f"{kind}_vjp")
    return cf.OperatorSpec(
        fast=lambda p, x: f(x, type, norm),
        dense=lambda p: getattr(scipy.fft, kind)(np.eye(p["n"]), type, norm=norm, axis=0),
        vjp=lambda p, x, g: {"x": fv(x, g, type, norm)},
        adjoint=lambda p, y: fv(np.zeros(y.shape, y.dtype), y, type, norm),
    )


@given(kind=st.sampled_from(KINDS), type=st.sampled_from(TYPES), norm=st.sampled_from(NORMS),
       L=log2_sizes(8), dt=dtypes(), seed=seeds())
def test_transform_vjp_is_transpose_dot_test(kind, type, norm, L, dt, seed):
    rng = np.random.default_rng(seed)
    n = 1 << L
    spec = _transform_spec(kind, type, norm)
    cf.check_dot_test(spec, {}, random_array(rng, (3, n), dt), random_array(rng, (3, n), dt))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("type", TYPES)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("dt", [np.float64, np.complex128])
def test_transform_vjp_matches_finite_differences(kind, type, norm, dt):
    rng = np.random.default_rng(type)
    spec = _transform_spec(kind, type, norm)
    x = random_array(rng, (2, 16), dt)
    g = random_array(rng, (2, 16), dt)
    cf.check_vjp(spec, {}, x, g, rng=rng)


def test_transform_vjp_of_real_x_takes_real_part_of_complex_grad():
    x = np.zeros((2, 8))
    g = random_array(np.random.default_rng(0), (2, 8), np.complex128)
    gx = sl.dct_vjp(x, g, 4, "ortho")
    assert gx.dtype == np.float64
    np.testing.assert_allclose(gx, sl.dct_vjp(x, g.real, 4, "ortho"), atol=1e-14)


@pytest.mark.parametrize("type", TYPES)
def test_pieces_vjp_matches_finite_differences_in_twiddle_and_x(type):
    rng = np.random.default_rng(type)
    n = 16
    base = sl.butterfly_dst(n, type, "ortho")

    def with_twiddle(tw):
        return base._replace(twiddle=tw)

    def vjp(p, x, g):
        gtw, gx = sl.dct_butterfly_multiply_vjp(with_twiddle(p["twiddle"]), x, g)
        return {"twiddle": gtw, "x": gx}

    spec = cf.OperatorSpec(
        fast=lambda p, x: sl.dct_butterfly_multiply(with_twiddle(p["twiddle"]), x),
        dense=lambda p: None, vjp=vjp)
    tw = base.twiddle + 0.1 * random_array(rng, base.twiddle.shape, np.complex128)
    for dt in (np.float64, np.complex128):
        cf.check_vjp(spec, {"twiddle": tw}, random_array(rng, (3, n), dt),
                     random_array(rng, (3, n), dt), rng=rng)


def test_transform_of_size_one_and_empty_batch():
    for kind in KINDS:
        for type in TYPES:
            for norm in NORMS:
                x = np.array([[1.5], [-2.0]])
                ref = getattr(scipy.fft, kind)(x, type, norm=norm)
                np.testing.assert_allclose(getattr(sl, kind)(x, type, norm), ref, atol=1e-15)
    assert sl.dct(np.zeros((0, 8))).shape == (0, 8)
    assert sl.dst(np.zeros((2, 0, 4), np.complex64), 4).dtype == np.complex64


def test_integer_input_is_promoted_to_float64():
    x = np.arange(8)
    y = sl.dct(x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, scipy.fft.dct(x.astype(float)), atol=1e-12)


# ----------------------------------------------------------------- circulant / Toeplitz


def _circulant_spec():
    def vjp(p, x, g):
        gc, gx = sl.circulant_multiply_vjp(p["c"], x, g)
        return {"c": gc, "x": gx}

    return cf.OperatorSpec(
        fast=lambda p, x: sl.circulant_multiply(p["c"], x),
        dense=lambda p: scipy.linalg.circulant(p["c"]),
        vjp=vjp,
        adjoint=lambda p, y: sl.circulant_multiply_vjp(p["c"], np.zeros_like(y), y)[1],
    )


@given(L=log2_sizes(10), batch=batch_shapes(2), cdt=dtypes(), xdt=dtypes(), seed=seeds())
def test_circulant_multiply_equals_scipy_circulant(L, batch, cdt, xdt, seed):
    rng = np.random.default_rng(seed)
    n = 1 << L
    p = {"c": random_array(rng, (n,), cdt)}
    x = random_array(rng, (*batch, n), xdt)
    spec = _circulant_spec()
    if n <= 256:
        cf.check_matches_dense(spec, p, x, rtol=tolerance(np.result_type(cdt, xdt), n) * 8)
    else:  # the dense reference is slow here: compare with an FFT convolution
        ref = np.fft.ifft(np.fft.fft(p["c"]) * np.fft.fft(x.astype(np.complex128)))
        y = sl.circulant_multiply(p["c"], x)
        scale = np.abs(p["c"]).sum() * max(np.abs(x).max(initial=0), 1e-300)
        assert np.abs(y - ref).max(initial=0) <= scale * tolerance(y.dtype, n) * 8
    cf.check_result_dtype(spec, p, x)
    cf.check_inputs_not_modified(spec, p, x)


def test_circulant_factors_reproduce_product_without_permutation():
    rng = np.random.default_rng(0)
    c = random_array(rng, (64,), np.complex128)
    x = random_array(rng, (5, 64), np.complex128)
    tw1, d, tw2 = sl.butterfly_circulant(c)
    y = sl.butterfly_multiply(tw2, d * sl.butterfly_multiply(tw1, x, increasing_stride=False))
    np.testing.assert_allclose(y, x @ scipy.linalg.circulant(c).T, atol=1e-12)
    np.testing.assert_allclose(
        d, np.fft.fft(c)[sl.bit_reversal_permutation(64)] / 64, atol=1e-14)


@given(L=log2_sizes(6), dt=dtypes(), seed=seeds())
def test_circulant_adjoint_dot_test(L, dt, seed):
    rng = np.random.default_rng(seed)
    n = 1 << L
    cf.check_dot_test(_circulant_spec(), {"c": random_array(rng, (n,), dt)},
                      random_array(rng, (3, n), dt), random_array(rng, (3, n), dt))


@pytest.mark.parametrize("cdt,xdt", [("float64", "float64"), ("complex128", "complex128"),
                                     ("float64", "complex128"), ("complex128", "float64")])
def test_circulant_vjp_matches_finite_differences(cdt, xdt):
    rng = np.random.default_rng(2)
    p = {"c": random_array(rng, (16,), cdt)}
    x = random_array(rng, (2, 3, 16), xdt)
    g = random_array(rng, (2, 3, 16), np.result_type(cdt, xdt))
    cf.check_vjp(_circulant_spec(), p, x, g, rng=rng)


def _toeplitz_spec():
    def vjp(p, x, g):
        gc, gr, gx = sl.toeplitz_multiply_vjp(p["column"], p["row"], x, g)
        return {"column": gc, "row": gr, "x": gx}

    return cf.OperatorSpec(
        fast=lambda p, x: sl.toeplitz_multiply(p["column"], p["row"], x),
        dense=lambda p: scipy.linalg.toeplitz(p["column"], p["row"]),
        vjp=vjp,
        adjoint=lambda p, y: sl.toeplitz_multiply_vjp(p["column"], p["row"],
                                                      np.zeros_like(y), y)[2],
    )


@given(n=st.integers(1, 300), batch=batch_shapes(2), dt=dtypes(), seed=seeds())
def test_toeplitz_multiply_equals_scipy_toeplitz(n, batch, dt, seed):
    rng = np.random.default_rng(seed)
    p = {"column": random_array(rng, (n,), dt), "row": random_array(rng, (n,), dt)}
    x = random_array(rng, (*batch, n), dt)
    spec = _toeplitz_spec()
    cf.check_matches_dense(spec, p, x, rtol=tolerance(dt, 4 * n) * 8)
    cf.check_result_dtype(spec, p, x)
    cf.check_inputs_not_modified(spec, p, x)


@given(n=st.integers(1, 40), dt=dtypes(), seed=seeds())
def test_toeplitz_adjoint_dot_test(n, dt, seed):
    rng = np.random.default_rng(seed)
    p = {"column": random_array(rng, (n,), dt), "row": random_array(rng, (n,), dt)}
    cf.check_dot_test(_toeplitz_spec(), p, random_array(rng, (2, n), dt),
                      random_array(rng, (2, n), dt))


@pytest.mark.parametrize("n", [1, 5, 8])
@pytest.mark.parametrize("dt", ["float64", "complex128"])
def test_toeplitz_vjp_matches_finite_differences(n, dt):
    rng = np.random.default_rng(n)
    p = {"column": random_array(rng, (n,), dt), "row": random_array(rng, (n,), dt)}
    x = random_array(rng, (3, n), dt)
    g = random_array(rng, (3, n), dt)
    cf.check_vjp(_toeplitz_spec(), p, x, g, rng=rng)
    assert sl.toeplitz_multiply_vjp(p["column"], p["row"], x, g)[1][0] == 0


def test_toeplitz_factors_embed_in_circulant_of_power_of_two_size():
    col = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    row = np.array([0.0, -1.0, -2.0, 7.0, 9.0])
    tw1, d, tw2 = sl.butterfly_toeplitz(col, row)
    assert d.shape == (16,)  # smallest power of two >= 2 * 5 - 1 = 9
    x = np.zeros(16)
    x[:5] = np.arange(5.0)
    y = sl.butterfly_multiply(tw2, d * sl.butterfly_multiply(tw1, x, increasing_stride=False))
    np.testing.assert_allclose(y[:5], scipy.linalg.toeplitz(col, row) @ x[:5], atol=1e-12)


# ------------------------------------------------------------------------- bad inputs

X8 = np.ones(8)
BAD = [
    (lambda: sl.butterfly_dft(6), ValueError, "n must have a value that is a power of two"),
    (lambda: sl.butterfly_dft(0), ValueError, "power of two.*got 0"),
    (lambda: sl.butterfly_dft(8.0), TypeError, "n must be an integer, got float"),
    (lambda: sl.butterfly_dft(8, norm="unitary"), ValueError, "norm must be one of.*'unitary'"),
    (lambda: sl.butterfly_dft(8, dtype=np.float64), TypeError, "dtype must be complex64.*float64"),
    (lambda: sl.butterfly_hadamard(12), ValueError, "power of two.*got 12"),
    (lambda: sl.butterfly_hadamard(8, dtype=np.int32), TypeError, "dtype must be float32.*int32"),
    (lambda: sl.butterfly_dct(8, type=1), ValueError, "type must be 2, 3 or 4, got 1"),
    (lambda: sl.butterfly_dst(8, norm="forward"), ValueError, "norm must be one of.*'forward'"),
    (lambda: sl.dct(np.ones(6)), ValueError, "x must have a last-axis length n that is a power"),
    (lambda: sl.dct(np.float64(1.0)), ValueError, "x must have at least 1 dimension"),
    (lambda: sl.dct(X8, type=5), ValueError, "type must be 2, 3 or 4, got 5"),
    (lambda: sl.dct(X8, type=True), ValueError, "type must be 2, 3 or 4, got True"),
    (lambda: sl.dst(X8, norm="Ortho"), ValueError, "norm must be one of.*'Ortho'"),
    (lambda: sl.dst(np.array(["a"] * 8)), TypeError, "x must have a numeric dtype"),
    (lambda: sl.dct_vjp(X8, np.ones(4)), ValueError, r"grad must have shape \(8,\)"),
    (lambda: sl.dst_vjp(X8, np.ones(8, object)), TypeError, "grad must have a numeric dtype"),
    (lambda: sl.dct_butterfly_multiply((1, 2), X8), TypeError, "pieces must be a DCTButterfly"),
    (lambda: sl.dct_butterfly_multiply(sl.butterfly_dct(16), X8), ValueError,
     r"input_index must hold indices in \[0, 8\)"),
    (lambda: sl.dct_butterfly_multiply(sl.butterfly_dct(8)._replace(twiddle=np.ones((2, 4, 2, 2))),
                                       X8), ValueError, r"twiddle must have shape \(3, 4, 2, 2\)"),
    (lambda: sl.circulant_multiply(np.ones(6), np.ones(6)), ValueError,
     "c must have a length n that is a power of two"),
    (lambda: sl.circulant_multiply(np.ones((2, 4)), np.ones(4)), ValueError, "c must be 1-d"),
    (lambda: sl.circulant_multiply(np.ones(4), np.ones(8)), ValueError,
     "x must have length 4 along its last axis"),
    (lambda: sl.circulant_multiply_vjp(np.ones(4), np.ones(4), np.ones(3)), ValueError,
     r"grad must have shape \(4,\)"),
    (lambda: sl.toeplitz_multiply(np.ones(3), np.ones(4), np.ones(3)), ValueError,
     r"row must have shape \(3,\)"),
    (lambda: sl.toeplitz_multiply(np.ones(0), np.ones(0), np.ones(0)), ValueError,
     "column must be 1-d and non-empty"),
    (lambda: sl.toeplitz_multiply(np.ones(3), np.ones(3), np.ones(5)), ValueError,
     "x must have length 3 along its last axis"),
    (lambda: sl.butterfly_toeplitz(np.ones(3), np.ones(2)), ValueError,
     r"row must have shape \(3,\)"),
    (lambda: sl.butterfly_circulant(np.ones(3, np.complex64)), ValueError, "power of two"),
    (lambda: sl.dct(np.ones(8, np.longdouble)), TypeError, "extended precision"),
]


@pytest.mark.parametrize("call,exc,match", BAD, ids=[b[2][:40] for b in BAD])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("type", TYPES)
def test_perturbed_pieces_follow_the_documented_formula(kind, type):
    # the library's own type-2 pieces pack two real rows into one complex DFT; a fine-tuned
    # twiddle is no DFT, so user pieces must follow the formula of DCTButterfly exactly
    rng = np.random.default_rng(type)
    n = 16
    p = getattr(sl, f"butterfly_{kind}")(n, type)
    p = p._replace(twiddle=p.twiddle + 0.3 * random_array(rng, p.twiddle.shape, np.complex128))
    x = random_array(rng, (3, n), np.float64)
    u = p.input_weight[0] * x[:, p.input_index[0]] + p.input_weight[1] * x[:, p.input_index[1]]
    v = u @ sl.butterfly_to_dense(p.twiddle).T
    ref = np.real(p.output_weight * v[:, p.output_index])
    np.testing.assert_allclose(sl.dct_butterfly_multiply(p, x), ref, atol=1e-12)
    xc = random_array(rng, (3, n), np.complex128)
    np.testing.assert_allclose(sl.dct_butterfly_multiply(p, xc),
                               sl.dct_butterfly_multiply(p, xc.real)
                               + 1j * sl.dct_butterfly_multiply(p, xc.imag), atol=1e-12)


@pytest.mark.parametrize("rows", [1, 2, 3, 5])
@pytest.mark.parametrize("dt", [np.float32, np.complex128])
def test_packed_rows_give_each_row_its_own_transform(rows, dt):
    # type 2 shares one complex butterfly between two real rows; an odd count leaves one alone
    x = random_array(np.random.default_rng(rows), (rows, 32), dt)
    for kind in KINDS:
        y = getattr(sl, kind)(x, 2, "ortho")
        for r in range(rows):
            _close(y[r], getattr(scipy.fft, kind)(x[r].astype(np.complex128), 2, norm="ortho"),
                   dt, 32, factor=2)
