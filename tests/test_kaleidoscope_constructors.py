"""Closed-form K-matrices (structlin.kaleidoscope_constructors): dense checks and widths."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

import structlin as sl

SIZES = [2, 4, 8, 16, 32]


def random_vectors(n):
    rng = np.random.default_rng(n)
    return rng.standard_normal((3, n)) + 1j * rng.standard_normal((3, n))


@pytest.mark.parametrize("n", [1, *SIZES])
def test_identity(n):
    tw = sl.kaleidoscope_identity(n)
    assert tw.shape[0] == 1
    assert np.array_equal(sl.kaleidoscope_to_dense(tw), np.eye(n))


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("norm", [None, "backward", "ortho", "forward"])
def test_dft(n, inverse, norm):
    tw = sl.kaleidoscope_dft(n, inverse=inverse, norm=norm)
    assert tw.shape == (1, 2, n.bit_length() - 1, n // 2, 2, 2) and tw.dtype == np.complex128
    f = np.fft.ifft if inverse else np.fft.fft
    ref = f(np.eye(n), axis=0, norm=norm)
    np.testing.assert_allclose(sl.kaleidoscope_to_dense(tw), ref, atol=1e-12)
    x = np.random.default_rng(n).standard_normal((3, n))
    np.testing.assert_allclose(sl.kaleidoscope_multiply(tw, x), f(x, norm=norm), atol=1e-12)


@pytest.mark.parametrize("n", [1, 64, 1 << 12])
def test_dft_width_one_at_other_sizes(n):
    """The width-1 network of kaleidoscope_dft (odd and even log2(n): the recursion ends at
    F_2 or F_1) applied by the kernels, against numpy.fft."""
    tw = sl.kaleidoscope_dft(n, inverse=n == 64)
    assert tw.shape[0] == 1
    x = random_vectors(n)
    f = np.fft.ifft if n == 64 else np.fft.fft
    ref = f(x)
    assert np.linalg.norm(sl.kaleidoscope_multiply(tw, x) - ref) <= 1e-13 * max(
        1, np.log2(n)) * np.linalg.norm(ref)


def test_dft_complex64():
    tw = sl.kaleidoscope_dft(16, dtype=np.complex64)
    assert tw.dtype == np.complex64
    np.testing.assert_allclose(sl.kaleidoscope_to_dense(tw), np.fft.fft(np.eye(16), axis=0),
                               atol=1e-5)
    with pytest.raises(TypeError, match="dtype"):
        sl.kaleidoscope_dft(16, dtype=np.float64)
    with pytest.raises(ValueError, match="norm"):
        sl.kaleidoscope_dft(16, norm="both")
    with pytest.raises(ValueError, match="n"):
        sl.kaleidoscope_dft(12)


@pytest.mark.parametrize("n", SIZES)
def test_diagonal(n):
    d = np.random.default_rng(n).standard_normal(n)
    tw = sl.kaleidoscope_diagonal(d)
    assert tw.shape[0] == 1 and tw.dtype == np.float64
    assert np.array_equal(sl.kaleidoscope_to_dense(tw), np.diag(d))
    assert sl.kaleidoscope_diagonal(d.astype(np.float32)).dtype == np.float32
    dc = d + 1j
    np.testing.assert_array_equal(sl.kaleidoscope_to_dense(sl.kaleidoscope_diagonal(dc)),
                                  np.diag(dc))


@pytest.mark.parametrize("n", SIZES)
def test_circulant(n):
    rng = np.random.default_rng(n)
    for c in (rng.standard_normal(n), rng.standard_normal(n) + 1j * rng.standard_normal(n)):
        tw = sl.kaleidoscope_circulant(c)
        assert tw.shape[0] == 1 and tw.dtype == np.complex128
        np.testing.assert_allclose(sl.kaleidoscope_to_dense(tw), sla.circulant(c), atol=1e-12)
    assert sl.kaleidoscope_circulant(c.astype(np.complex64)).dtype == np.complex64


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 8, 11])
def test_toeplitz(m):
    rng = np.random.default_rng(m)
    c, r = rng.standard_normal(m), rng.standard_normal(m)
    tw = sl.kaleidoscope_toeplitz(c, r)
    M = 1 << tw.shape[2]
    assert tw.shape[0] == 1 and M >= 2 * m - 1 and M // 2 < max(2 * m - 1, 2)
    np.testing.assert_allclose(sl.kaleidoscope_to_dense(tw)[:m, :m], sla.toeplitz(c, r),
                               atol=1e-12)
    x = rng.standard_normal((2, m))
    y = sl.kaleidoscope_multiply(tw, sl.kaleidoscope_pad(x, M))[:, :m]
    np.testing.assert_allclose(y, x @ sla.toeplitz(c, r).T, atol=1e-12)
    cc = c + 1j * rng.standard_normal(m)
    np.testing.assert_allclose(sl.kaleidoscope_to_dense(sl.kaleidoscope_toeplitz(cc))[:m, :m],
                               sla.toeplitz(cc), atol=1e-12)
    if m == 4:
        assert M == 8  # size n embedded in 2n


@pytest.mark.parametrize("n", SIZES)
def test_fastfood(n):
    rng = np.random.default_rng(n)
    d1, d2, p = rng.standard_normal(n), rng.standard_normal(n), rng.permutation(n)
    tw = sl.kaleidoscope_fastfood(d1, p, d2)
    assert tw.shape[0] == 2
    H = sla.hadamard(n)
    ref = H @ np.diag(d1) @ np.eye(n)[p] @ H @ np.diag(d2)
    np.testing.assert_allclose(sl.kaleidoscope_to_dense(tw), ref, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.complex128])
def test_fastfood_dtypes(dtype):
    rng = np.random.default_rng(5)
    n = 32
    d1, d2, p = rng.standard_normal(n), rng.standard_normal(n), rng.permutation(n)
    tw = sl.kaleidoscope_fastfood(d1, p, d2, dtype=dtype)
    assert tw.dtype == dtype and tw.shape == (2, 2, 5, 16, 2, 2)
    x = rng.standard_normal((3, n)).astype(dtype)
    H = sla.hadamard(n)
    ref = x @ (H @ np.diag(d1) @ np.eye(n)[p] @ H @ np.diag(d2)).T
    tol = 1e-3 if np.dtype(dtype).itemsize <= 8 else 1e-12
    np.testing.assert_allclose(sl.kaleidoscope_multiply(tw, x), ref, rtol=tol, atol=tol * 30)


def test_product_widths_add_and_matrices_multiply():
    rng = np.random.default_rng(0)
    a = sl.random_kaleidoscope(8, 2, rng=rng)
    b = sl.kaleidoscope_dft(8)
    c = sl.kaleidoscope_permutation(rng.permutation(8))
    abc = sl.kaleidoscope_product(a, b, c)
    assert abc.shape[0] == 4 and abc.dtype == np.complex128
    ref = sl.kaleidoscope_to_dense(a) @ sl.kaleidoscope_to_dense(b) @ sl.kaleidoscope_to_dense(c)
    np.testing.assert_allclose(sl.kaleidoscope_to_dense(abc), ref, atol=1e-12)
    with pytest.raises(ValueError, match="one size"):
        sl.kaleidoscope_product(a, sl.kaleidoscope_identity(4))
    with pytest.raises(TypeError, match="at least one"):
        sl.kaleidoscope_product()
    with pytest.raises(ValueError, match="twiddle"):
        sl.kaleidoscope_product(np.ones((2, 2)))


def test_bad_inputs():
    with pytest.raises(ValueError, match="finite"):
        sl.kaleidoscope_diagonal([1.0, np.nan])
    with pytest.raises(ValueError, match="one-dimensional"):
        sl.kaleidoscope_circulant(np.ones((2, 2)))
    with pytest.raises(ValueError, match="power of two"):
        sl.kaleidoscope_circulant(np.ones(3))
    with pytest.raises(ValueError, match="length of c"):
        sl.kaleidoscope_toeplitz(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="length of d1"):
        sl.kaleidoscope_fastfood(np.ones(4), [0, 1, 2, 3], np.ones(8))
    with pytest.raises(ValueError, match="length of d1"):
        sl.kaleidoscope_fastfood(np.ones(4), [0, 1], np.ones(4))
    with pytest.raises(TypeError):
        sl.kaleidoscope_identity(4.0)
    d = np.array([1.0, 2.0])
    d.setflags(write=False)
    sl.kaleidoscope_diagonal(d)
    assert d.tolist() == [1.0, 2.0]
