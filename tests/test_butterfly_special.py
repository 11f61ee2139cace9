"""Closed-form butterflies (DFT, Hadamard, DCT/DST, circulant, Toeplitz) against NumPy/SciPy.

The operators (``dct``/``dst`` of every type and norm, ``dct_butterfly_multiply``,
``circulant_multiply``, ``toeplitz_multiply``) each get the inherited checks of
:class:`tests.conformance.OperatorConformance` (the classes at the end, reused on the GPU by
``tests/test_gpu_butterfly_special.py``); the tests above them check what is particular to
each: the closed forms, large sizes, the pieces, the size bounds and the bad inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

import structlin as sl
from structlin._backend import array_namespace
from structlin.dft_hadamard import MAX_TRANSFORM_SIZE
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


def test_transform_vjp_of_real_x_takes_real_part_of_complex_grad():
    x = np.zeros((2, 8))
    g = random_array(np.random.default_rng(0), (2, 8), np.complex128)
    gx = sl.dct_vjp(x, g, 4, "ortho")
    assert gx.dtype == np.float64
    np.testing.assert_allclose(gx, sl.dct_vjp(x, g.real, 4, "ortho"), atol=1e-14)


def test_transform_of_size_one_and_empty_batch():
    for kind in KINDS:
        for type in TYPES:
            for norm in NORMS:
                x = np.array([[1.5], [-2.0]])
                ref = getattr(scipy.fft, kind)(x, type, norm=norm)
                np.testing.assert_allclose(getattr(sl, kind)(x, type, norm), ref, atol=1e-15)
    assert sl.dct(np.zeros((0, 8))).shape == (0, 8)
    assert sl.dst(np.zeros((2, 0, 4), np.complex64), 4).dtype == np.complex64


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


@pytest.mark.parametrize("cdt,xdt", [("float64", "complex128"), ("complex128", "float64")])
def test_circulant_vjp_of_mixed_dtypes_matches_finite_differences(cdt, xdt):
    # the conformance classes check the VJP with c and x of one dtype
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


def test_toeplitz_vjp_of_unused_row_entry_is_zero():
    rng = np.random.default_rng(5)
    col, row = random_array(rng, (5,), np.float64), random_array(rng, (5,), np.float64)
    _, grow, _ = sl.toeplitz_multiply_vjp(col, row, np.ones((2, 5)), np.ones((2, 5)))
    assert grow[0] == 0 and grow.shape == (5,)


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
    (lambda: sl.butterfly_dft(8.0), TypeError, r"n must be an integer, got 8\.0 \(float\)"),
    (lambda: sl.butterfly_dft(None), TypeError, r"n must be an integer, got None"),
    (lambda: sl.butterfly_dft("8"), TypeError, r"n must be an integer, got '8' \(str\)"),
    (lambda: sl.butterfly_dft(8, dtype="bogus"), TypeError,
     r"dtype must be one of complex64, complex128, got 'bogus'"),
    (lambda: sl.butterfly_dft(8, inverse="yes"), TypeError, "inverse must be True or False"),
    (lambda: sl.butterfly_dft(8, norm="unitary"), ValueError, "norm must be one of.*'unitary'"),
    (lambda: sl.butterfly_dft(8, dtype=np.float64), TypeError,
     "dtype must be one of complex64, complex128.*float64"),
    (lambda: sl.butterfly_hadamard(12), ValueError, "power of two.*got 12"),
    (lambda: sl.butterfly_hadamard(8, dtype=np.int32), TypeError,
     "dtype must be one of float32, float64, complex64, complex128.*int32"),
    (lambda: sl.butterfly_hadamard(8, dtype="bogus"), TypeError, "dtype must be one of.*'bogus'"),
    (lambda: sl.butterfly_hadamard(None), TypeError, "n must be an integer, got None"),
    (lambda: sl.butterfly_dct(8, type=1), ValueError, r"type must be one of \(2, 3, 4\), got 1"),
    (lambda: sl.butterfly_dct(None), TypeError, "n must be an integer, got None"),
    (lambda: sl.butterfly_dst(8.0), TypeError, r"n must be an integer, got 8\.0"),
    (lambda: sl.butterfly_dst(8, norm="forward"), ValueError, "norm must be one of.*'forward'"),
    (lambda: sl.dct(np.ones(6)), ValueError, "x must have a last-axis length n that is a power"),
    (lambda: sl.dct(np.float64(1.0)), ValueError, "x must have at least 1 dimension"),
    (lambda: sl.dct(X8, type=5), ValueError, r"type must be one of \(2, 3, 4\), got 5"),
    (lambda: sl.dct(X8, type=True), TypeError, "type must be an integer, got True"),
    (lambda: sl.dct(X8, type=2.0), TypeError, r"type must be an integer, got 2\.0"),
    (lambda: sl.dct(X8, type="2"), TypeError, "type must be an integer, got '2'"),
    (lambda: sl.dst(X8, norm="Ortho"), ValueError, "norm must be one of.*'Ortho'"),
    (lambda: sl.dst(np.array(["a"] * 8)), TypeError, "x must have a numeric dtype"),
    (lambda: sl.dct([1.0, "a"]), TypeError, "x must have a numeric dtype"),
    (lambda: sl.dct(np.array([1.0, None])), TypeError, "x must have a numeric dtype.*object"),
    (lambda: sl.dct_vjp(X8, np.ones(4)), ValueError, r"grad must have shape \(8,\)"),
    (lambda: sl.dst_vjp(X8, np.ones(8, object)), TypeError, "grad must have a numeric dtype"),
    (lambda: sl.dct_butterfly_multiply((1, 2), X8), TypeError, "pieces must be a DCTButterfly"),
    (lambda: sl.dct_butterfly_multiply(sl.butterfly_dct(8)._replace(
        input_weight=np.ones((2, 8), object)), X8), TypeError,
     "pieces.input_weight must have a numeric dtype"),
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
    (lambda: sl.butterfly_circulant(np.array(["1"] * 4)), TypeError, "c must have a numeric"),
    (lambda: sl.butterfly_toeplitz(np.ones(3), np.ones(3, object)), TypeError,
     "row must have a numeric dtype"),
    (lambda: sl.circulant_multiply(np.ones(4), None), TypeError, "x must be an array.*None"),
    (lambda: sl.toeplitz_multiply_vjp(X8, X8, X8, None), TypeError, "grad must be an array"),
    (lambda: sl.dct_vjp(X8, None), TypeError, "grad must be an array of numbers.*got None"),
    (lambda: sl.dct(None), TypeError, "x must be an array of numbers.*got None"),
    (lambda: sl.dct(np.ones(8, np.longdouble)), TypeError, "extended precision"),
]


@pytest.mark.parametrize("call,exc,match", BAD, ids=[b[2][:40] for b in BAD])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


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


# ------------------------------------------------------------ findings of the bad-input probe


def test_hadamard_butterfly_is_a_fresh_writable_array_for_every_size():
    # n = 1 used to return the read-only broadcast view (an empty array is not copied)
    for n in (1, 2, 8):
        tw = sl.butterfly_hadamard(n)
        assert tw.flags.writeable and tw.flags.c_contiguous, n
        tw[...] = 0
        assert n == 1 or sl.butterfly_hadamard(n).all()


@pytest.mark.parametrize("build", [
    lambda n: sl.butterfly_dft(n), lambda n: sl.butterfly_hadamard(n),
    lambda n: sl.butterfly_dct(n), lambda n: sl.butterfly_dst(n, 4)])
def test_builders_refuse_a_size_above_the_bound_at_once(build):
    # the pieces of a size 2**40 used to be built step by step until memory ran out
    with pytest.raises(ValueError, match=f"n must be at most {MAX_TRANSFORM_SIZE}"):
        build(2**40)
    with pytest.raises(ValueError, match=f"n must be at most {MAX_TRANSFORM_SIZE}"):
        build(2 * MAX_TRANSFORM_SIZE)
    assert MAX_TRANSFORM_SIZE == 2**24


def test_products_refuse_a_length_above_the_bound_before_allocating():
    # broadcast views: the arrays cost nothing, so only the bound can refuse them in time
    big = np.broadcast_to(np.float32(1.0), (1, 2 * MAX_TRANSFORM_SIZE))
    with pytest.raises(ValueError, match="x must have a last-axis length n of at most"):
        sl.dct(big)
    with pytest.raises(ValueError, match="x must have a last-axis length n of at most"):
        sl.dst_vjp(big, big)
    with pytest.raises(ValueError, match="c must have a length n of at most"):
        sl.circulant_multiply(big[0], big)
    col = np.broadcast_to(np.float32(1.0), (MAX_TRANSFORM_SIZE // 2 + 1,))
    with pytest.raises(ValueError, match="column must have a length n with an embedding"):
        sl.toeplitz_multiply(col, col, col)


def _like(x, a):
    """``a`` in the array namespace of ``x`` (the GPU tests reuse :data:`PACKED`)."""
    return array_namespace(x=x).asarray(a)


PACKED = {
    "dct type 2": lambda x: sl.dct(x),
    "dst type 2 ortho": lambda x: sl.dst(x, 2, "ortho"),
    "circulant_multiply": lambda x: sl.circulant_multiply(
        _like(x, np.arange(x.shape[-1]) - 2.0), x),
    "toeplitz_multiply": lambda x: sl.toeplitz_multiply(
        _like(x, np.arange(x.shape[-1]) - 2.0), _like(x, np.linspace(1, 2, x.shape[-1])), x),
}


@pytest.mark.parametrize("name", sorted(PACKED))
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_row_leaves_its_packed_partner_finite(name, dt, bad):
    # two real rows share one complex transform; a NaN in one used to make the other NaN too:
    # the example, x = ones((2, 8)) with x[0, 1] = nan, then every pair position
    f = PACKED[name]
    x = random_array(np.random.default_rng(0), (5, 8), dt)
    clean = f(x)
    for row in range(5):
        xb = x.copy()
        xb[row, 1] = bad
        y = f(xb)
        assert not np.isfinite(y[row]).all(), (row, y[row])
        others = [r for r in range(5) if r != row]
        assert np.isfinite(y[others]).all(), (row, y)
        _close(y[others], clean[others], dt, 8, factor=2)
    xb = np.ones((2, 8), dt)
    xb[0, 1] = np.nan
    np.testing.assert_array_equal(np.isnan(f(xb)).any(axis=1), [True, False])


def test_nonfinite_rows_in_every_pair_and_a_lone_last_row():
    x = random_array(np.random.default_rng(1), (2, 3, 16), np.float32)
    clean = sl.dct(x)
    xb = x.copy()
    xb[0, 0, 3] = np.nan   # pair (0, 1)
    xb[0, 2, 0] = np.inf   # pair (2, 3)
    xb[1, 2, 5] = np.nan   # row 5 has no partner
    y = sl.dct(xb).reshape(6, 16)
    keep = [1, 3, 4]
    assert not np.isfinite(y[[0, 2, 5]]).any()
    _close(y[keep], clean.reshape(6, 16)[keep], np.float32, 16, factor=2)


# ------------------------------------------------------------------- conformance classes


class TestDctConformance(cf.OperatorConformance):
    """Every operator check for ``dct`` (type 2, norm None; the subclasses: each type and norm).

    float32 comes first in ``dtypes``: the batch-isolation check runs on real rows, which
    types 2 pack two to a complex butterfly (whose rounding then depends on the partner row,
    hence ``isolation_exact = False``).
    """

    kind = "dct"
    type = 2
    norm = None
    n = 16
    dtypes = (np.float32, np.float64, np.complex64, np.complex128)
    isolation_exact = False

    def make_params(self, rng, dtype):
        return {}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, self.n), dtype)

    def fast(self, params, x):
        return getattr(sl, self.kind)(x, self.type, self.norm)

    def dense(self, params):
        return getattr(scipy.fft, self.kind)(np.eye(self.n), self.type, norm=self.norm, axis=0)

    def vjp(self, params, x, g):
        return {"x": getattr(sl, f"{self.kind}_vjp")(x, g, self.type, self.norm)}

    def bad_inputs(self):
        f = getattr(sl, self.kind)
        return [
            ("length not a power of two", lambda: f(np.ones(6), self.type), ValueError,
             "x must have a last-axis length n that is a power of two"),
            ("0-d x", lambda: f(np.float64(1.0), self.type), ValueError,
             "at least 1 dimension"),
            ("norm forward", lambda: f(np.ones(8), self.type, "forward"), ValueError,
             "norm must be one of"),
            ("type 1", lambda: f(np.ones(8), 1), ValueError, "type must be one of"),
            ("type None", lambda: f(np.ones(8), None), TypeError, "type must be an integer"),
            ("grad of the wrong shape",
             lambda: getattr(sl, f"{self.kind}_vjp")(np.ones(8), np.ones(4), self.type),
             ValueError, r"grad must have shape \(8,\)"),
            ("string grad",
             lambda: getattr(sl, f"{self.kind}_vjp")(np.ones(2), np.array(["a", "b"])),
             TypeError, "grad must have a numeric dtype"),
        ]


class TestDctOrthoConformance(TestDctConformance):
    norm = "ortho"


class TestDctType3Conformance(TestDctConformance):
    type = 3


class TestDctType3OrthoConformance(TestDctConformance):
    type = 3
    norm = "ortho"


class TestDctType4Conformance(TestDctConformance):
    type = 4


class TestDctType4OrthoConformance(TestDctConformance):
    type = 4
    norm = "ortho"


class TestDstConformance(TestDctConformance):
    kind = "dst"


class TestDstOrthoConformance(TestDstConformance):
    norm = "ortho"


class TestDstType3Conformance(TestDstConformance):
    type = 3


class TestDstType3OrthoConformance(TestDstConformance):
    type = 3
    norm = "ortho"


class TestDstType4Conformance(TestDstConformance):
    type = 4


class TestDstType4OrthoConformance(TestDstConformance):
    type = 4
    norm = "ortho"


class TestDctButterflyMultiplyConformance(cf.OperatorConformance):
    """``dct_butterfly_multiply`` with a fine-tuned twiddle (the parameter) in DST-IV pieces
    (two reads per entry); the dense reference follows :class:`structlin.DCTButterfly`'s
    formula. The output's dtype is ``x``'s (the pieces are rounded to it), so the promotion
    check is this class's own."""

    kind = "dst"
    type = 4
    n = 16

    def _base(self):
        return getattr(sl, f"butterfly_{self.kind}")(self.n, self.type, "ortho")

    def make_params(self, rng, dtype):
        tw = self._base().twiddle
        tw = tw + 0.2 * random_array(rng, tw.shape, np.complex128)
        return {"twiddle": tw.astype(np.result_type(dtype, np.complex64))}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, self.n), dtype)

    def fast(self, params, x):
        return sl.dct_butterfly_multiply(self._base()._replace(twiddle=params["twiddle"]), x)

    def dense(self, params):
        p = self._base()
        eye = np.eye(self.n)
        u = (p.input_weight[0] * eye[:, p.input_index[0]]
             + p.input_weight[1] * eye[:, p.input_index[1]])
        v = u @ sl.butterfly_to_dense(np.asarray(params["twiddle"])).T
        return np.real(p.output_weight * v[:, p.output_index]).T

    def vjp(self, params, x, g):
        gtw, gx = sl.dct_butterfly_multiply_vjp(
            self._base()._replace(twiddle=params["twiddle"]), x, g)
        return {"twiddle": gtw, "x": gx}

    def test_result_dtype_follows_numpy_promotion(self):
        for dt in (np.float32, np.float64, np.complex64, np.complex128, np.int64):
            p = self.make_params(np.random.default_rng(0), np.complex128)
            x = np.arange(2 * self.n).reshape(2, self.n).astype(dt)
            y = self._call(p, x)
            assert y.dtype == (np.float64 if np.dtype(dt).kind == "i" else dt), (dt, y.dtype)

    def bad_inputs(self):
        base = self._base()
        return [
            ("pieces not a 5-tuple", lambda: sl.dct_butterfly_multiply((1, 2), np.ones(16)),
             TypeError, "pieces must be a DCTButterfly"),
            ("index out of range", lambda: sl.dct_butterfly_multiply(base, np.ones(8)),
             ValueError, r"input_index must hold indices in \[0, 8\)"),
            ("object input_index", lambda: sl.dct_butterfly_multiply(
                base._replace(input_index=base.input_index.astype(object)), np.ones(16)),
             TypeError, "pieces.input_index must have a numeric dtype"),
            ("float output_index", lambda: sl.dct_butterfly_multiply(
                base._replace(output_index=base.output_index * 1.0), np.ones(16)),
             TypeError, "output_index must hold integers"),
            ("grad of the wrong shape", lambda: sl.dct_butterfly_multiply_vjp(
                base, np.ones(16), np.ones(8)), ValueError, "grad must have shape"),
        ]


    def test_numpy_and_cupy_mixed_are_refused(self):
        # the pieces are host data by design (moved to the device per call): NumPy pieces with
        # a CuPy x are accepted, but x and grad must be of one kind
        if self.xp is np:
            return  # needs a CuPy array: the GPU subclass checks it
        with pytest.raises(TypeError, match=r"cupy\.ndarray"):
            sl.dct_butterfly_multiply_vjp(self._base(), np.ones(self.n), self.xp.ones(self.n))


class TestDctButterflyMultiplyType2Conformance(TestDctButterflyMultiplyConformance):
    # the library packs its own type-2 pieces; user pieces (a changed twiddle) never are
    kind = "dct"
    type = 2


class TestDctButterflyMultiplyType3Conformance(TestDctButterflyMultiplyConformance):
    type = 3


class TestCirculantConformance(cf.OperatorConformance):
    """Every operator check for ``circulant_multiply`` (real rows are packed in pairs)."""

    n = 16
    dtypes = (np.float32, np.float64, np.complex64, np.complex128)
    isolation_exact = False

    def make_params(self, rng, dtype):
        return {"c": random_array(rng, (self.n,), dtype)}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, self.n), dtype)

    def fast(self, params, x):
        return sl.circulant_multiply(params["c"], x)

    def dense(self, params):
        return scipy.linalg.circulant(params["c"])

    def vjp(self, params, x, g):
        gc, gx = sl.circulant_multiply_vjp(params["c"], x, g)
        return {"c": gc, "x": gx}

    def bad_inputs(self):
        return [
            ("length not a power of two",
             lambda: sl.circulant_multiply(np.ones(6), np.ones(6)), ValueError,
             "c must have a length n that is a power of two"),
            ("2-d c", lambda: sl.circulant_multiply(np.ones((2, 4)), np.ones(4)), ValueError,
             "c must be 1-d"),
            ("x of another length", lambda: sl.circulant_multiply(np.ones(4), np.ones(8)),
             ValueError, r"x must have length 4 along its last axis \(the length of c\)"),
            ("0-d x", lambda: sl.circulant_multiply(np.ones(1), np.float64(1.0)), ValueError,
             "x must have at least 1 dimension"),
            ("grad of the wrong shape",
             lambda: sl.circulant_multiply_vjp(np.ones(4), np.ones(4), np.ones(3)),
             ValueError, r"grad must have shape \(4,\)"),
        ]


class TestToeplitzConformance(cf.OperatorConformance):
    """Every operator check for ``toeplitz_multiply`` (n = 5: a circulant of size 16)."""

    n = 5
    dtypes = (np.float32, np.float64, np.complex64, np.complex128)
    isolation_exact = False

    def make_params(self, rng, dtype):
        return {"column": random_array(rng, (self.n,), dtype),
                "row": random_array(rng, (self.n,), dtype)}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, self.n), dtype)

    def fast(self, params, x):
        return sl.toeplitz_multiply(params["column"], params["row"], x)

    def dense(self, params):
        return scipy.linalg.toeplitz(params["column"], params["row"])

    def vjp(self, params, x, g):
        gc, gr, gx = sl.toeplitz_multiply_vjp(params["column"], params["row"], x, g)
        return {"column": gc, "row": gr, "x": gx}

    def bad_inputs(self):
        return [
            ("row of another length",
             lambda: sl.toeplitz_multiply(np.ones(3), np.ones(4), np.ones(3)), ValueError,
             r"row must have shape \(3,\)"),
            ("empty column", lambda: sl.toeplitz_multiply(np.ones(0), np.ones(0), np.ones(0)),
             ValueError, "column must be 1-d and non-empty"),
            ("x of another length",
             lambda: sl.toeplitz_multiply(np.ones(3), np.ones(3), np.ones(5)), ValueError,
             "x must have length 3 along its last axis"),
            ("grad of the wrong shape", lambda: sl.toeplitz_multiply_vjp(
                np.ones(3), np.ones(3), np.ones(3), np.ones(4)), ValueError,
             r"grad must have shape \(3,\)"),
        ]


class TestToeplitzSize1Conformance(TestToeplitzConformance):
    n = 1


class TestToeplitzPowerOfTwoConformance(TestToeplitzConformance):
    n = 8
