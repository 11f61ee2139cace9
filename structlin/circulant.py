"""Circulant and Toeplitz products and circulant solves by FFT, and the butterfly factors of a
circulant.

:func:`circulant_multiply` / :func:`toeplitz_multiply` (and their VJPs) and
:func:`solve_circulant` (SciPy's function) run on the FFT engine (:mod:`structlin.fft`) for
NumPy input and on cuFFT for CuPy input (:func:`structlin._backend.fft_namespace`), with
real-to-complex transforms for real data. A Toeplitz matrix is the top-left block of a
circulant of a fast length ``L >= 2n - 1``.

:func:`butterfly_circulant` / :func:`butterfly_toeplitz` return the same matrices as
``C = B_2 diag(d) B_1``: a decimation-in-frequency butterfly ``B_1`` (bit-reversed output) and
a decimation-in-time inverse ``B_2`` (bit-reversed input), no permutation at all; the
butterflies are :func:`structlin.butterfly_dft`'s, applied by
:func:`structlin.butterfly_multiply` (the building blocks of a learned K-matrix).

References: T. Dao, A. Gu, M. Eichhorn, A. Rudra, C. Ré, "Learning Fast Algorithms for Linear
Transforms Using Butterfly Factorizations", ICML 2019, arXiv:1903.05895; T. Dao et al.,
"Kaleidoscope: An Efficient, Learnable Representation For All Structured Linear Maps", ICLR
2020, arXiv:2012.14966.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from structlin._backend import (
    as_kernel_array,
    fft_fast_length,
    fft_pair,
    flatten_batch,
    grad_like,
    result_dtype,
    sum_to_shape,
)
from structlin._validate import (
    ABSENT,
    check_choice,
    check_float,
    check_int,
    check_last_axis,
    check_min_ndim,
    check_not_none,
    check_shape,
    prepare,
)
from structlin.butterfly import butterfly_multiply
from structlin.dft_hadamard import (
    MAX_TRANSFORM_SIZE,
    _check_transform_size,
    _complex_of,
    _dft_twiddle,
)

__all__ = [
    "CirculantButterfly",
    "butterfly_circulant",
    "butterfly_toeplitz",
    "circulant_multiply",
    "circulant_multiply_vjp",
    "solve_circulant",
    "solve_circulant_vjp",
    "toeplitz_multiply",
    "toeplitz_multiply_vjp",
]


class CirculantButterfly(NamedTuple):
    """A circulant matrix as ``C = B_2 diag(diagonal) B_1`` with two butterflies, no permutation.

    Apply it as::

        y = butterfly_multiply(twiddle_second,
                               diagonal * butterfly_multiply(twiddle_first, x,
                                                             increasing_stride=False))

    Parameters
    ----------
    twiddle_first : ndarray of complex, shape (L, n//2, 2, 2)
        The decimation-in-frequency DFT, applied with ``increasing_stride=False``: it maps
        ``x`` to ``fft(x)`` in bit-reversed order (the transposed blocks of
        :func:`butterfly_dft`).
    diagonal : ndarray of complex, shape (n,)
        ``fft(c)[bit_reversal_permutation(n)] / n``: the eigenvalues of ``C`` in bit-reversed
        order, with the inverse DFT's ``1/n``.
    twiddle_second : ndarray of complex, shape (L, n//2, 2, 2)
        The unnormalized inverse DFT in decimation in time (``butterfly_dft(n, inverse=True,
        norm="forward")``), applied with ``increasing_stride=True``: it takes bit-reversed input.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_circulant
    >>> f = butterfly_circulant(np.array([1.0, 0.0, 0.0, 0.0]))    # the identity
    >>> f.diagonal
    array([0.25+0.j, 0.25+0.j, 0.25+0.j, 0.25+0.j])
    """

    twiddle_first: np.ndarray
    diagonal: Any
    twiddle_second: np.ndarray


@functools.cache
def _circulant_twiddles(n: int) -> tuple[np.ndarray, np.ndarray]:
    first = np.ascontiguousarray(np.swapaxes(_dft_twiddle(n, False, 1.0), -1, -2))
    second = _dft_twiddle(n, True, 1.0)
    for a in (first, second):
        a.setflags(write=False)
    return first, second


_DEVICE_TWIDDLES: dict[tuple, tuple] = {}


def _twiddles_for(xp, n: int, cdt: np.dtype) -> tuple[Any, Any]:
    dev = xp.cuda.Device().id if xp is not np else -1
    key = (n, cdt, dev)
    hit = _DEVICE_TWIDDLES.get(key)
    if hit is None:
        hit = tuple(xp.ascontiguousarray(xp.asarray(t), dtype=cdt)
                    for t in _circulant_twiddles(n))
        _DEVICE_TWIDDLES[key] = hit
    return hit


def _spectrum(xp, tw1, a, n):
    """``fft(a)[bit reversed] / n`` over the last axis, by the DIF butterfly."""
    return butterfly_multiply(tw1, a, increasing_stride=False) * (1.0 / n)


def _circular_product(xp, e, x, L, dtype, adjoint=False):
    """The circulant of first column ``e`` (L,) (its conjugate transpose when ``adjoint``)
    times each row of ``x`` (..., <= L), zero-padded to ``L``: ``ifft(fft(e) fft(x))``, one
    transform per row and the row's own spectrum, so rows stay independent (a NaN stays in its
    row). The result has length ``L`` and the real or complex ``dtype``."""
    fwd, inv = fft_pair(xp, dtype.kind != "c")
    with np.errstate(invalid="ignore", over="ignore"):  # a non-finite row: NaN, silently
        spec = fwd(as_kernel_array(xp, e, dtype), L)
        if adjoint:
            spec = xp.conj(spec)
        X = fwd(as_kernel_array(xp, x, dtype), L)
        X *= spec
        return inv(X, L)


def _circular_correlation_sum(xp, x, g, L, dtype):
    """``sum over the rows b of circulant(x_b)^H g_b`` (length ``L``) for rows ``x``, ``g``
    (..., <= L) zero-padded to ``L``: the spectra ``conj(fft(x_b)) fft(g_b)`` summed, then one
    inverse transform."""
    fwd, inv = fft_pair(xp, dtype.kind != "c")
    x2, _ = flatten_batch(as_kernel_array(xp, x, dtype))
    g2, _ = flatten_batch(as_kernel_array(xp, g, dtype))
    with np.errstate(invalid="ignore", over="ignore"):
        S = (xp.conj(fwd(x2, L)) * fwd(g2, L)).sum(axis=0)
        return inv(S, L)


def _check_column(c: Any, name: str) -> int:
    """The length ``n`` of a 1-d first column ``c``: a power of two up to the size bound."""
    if c.ndim != 1:
        raise ValueError(f"{name} must be 1-d, shape (n,), got shape {tuple(c.shape)}")
    n = c.shape[0]
    _check_transform_size(n, name, "length n")
    return n


def _prepare_circulant(c, x, grad=ABSENT):
    check_not_none(c=c, x=x)
    p = prepare(c=c, x=x, grad=grad, dtype_of=("c", "x"))
    n = _check_column(p.c, "c")
    check_min_ndim(p.x, 1, "x", "(..., n)")
    check_last_axis(p.x, n, "x", "the length of c")
    if p.grad is not None:
        check_shape(p.grad, p.x.shape, "grad", "the shape of the product, which is x's shape")
    return p, n


def butterfly_circulant(c: Any) -> CirculantButterfly:
    """Return the butterfly factors ``(twiddle_first, diagonal, twiddle_second)`` of a circulant.

    Parameters
    ----------
    c : array_like, shape (n,)
        First column of the circulant ``C[i, j] = c[(i - j) mod n]`` (``scipy.linalg.circulant``);
        ``n`` a power of two. Real or complex.

    Returns
    -------
    CirculantButterfly
        ``C = B_2 diag(diagonal) B_1`` (see :class:`CirculantButterfly`), all complex with the
        precision of ``c`` (complex128 for float64 or integer ``c``); ``diagonal`` has ``c``'s
        array type.

    Raises
    ------
    ValueError
        If ``c`` is not 1-d or its length is not a power of two up to ``2**24``.
    TypeError
        If ``c`` is not numeric.

    Notes
    -----
    ``C = F^-1 diag(F c) F``. The DIF FFT ``B_1`` returns ``P F x`` (``P`` the bit reversal)
    and the DIT inverse FFT ``B_2`` computes ``n F^-1 P^T``, so
    ``C = B_2 diag(P F c / n) B_1`` with no permutation. The diagonal costs one butterfly
    product (``5 n log2(n)`` flops). These are the building blocks of the K-matrices of
    Dao et al. 2020, arXiv:2012.14966.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import circulant
    >>> from structlin import butterfly_circulant, butterfly_multiply
    >>> c = np.array([1.0, 2.0, 0.0, -1.0])
    >>> tw1, d, tw2 = butterfly_circulant(c)
    >>> x = np.array([0.5, 1.0, -2.0, 3.0])
    >>> y = butterfly_multiply(tw2, d * butterfly_multiply(tw1, x, increasing_stride=False))
    >>> bool(np.allclose(y, circulant(c) @ x))
    True
    """
    check_not_none(c=c)
    p = prepare(c=c)
    xp, c = p.xp, p.c
    n = _check_column(c, "c")
    cdt = _complex_of(p.dtype)
    first, second = _circulant_twiddles(n)
    tw1, _ = _twiddles_for(xp, n, cdt)
    d = _spectrum(xp, tw1, as_kernel_array(xp, c, cdt), n)
    return CirculantButterfly(first.astype(cdt), d, second.astype(cdt))


def circulant_multiply(c: Any, x: Any) -> Any:
    """Return the circulant product ``C x`` over the last axis of ``x``, ``C`` from column ``c``.

    Parameters
    ----------
    c : array_like, shape (n,)
        First column of ``C`` (``C[i, j] = c[(i - j) mod n]``), ``n`` a power of two.
    x : array_like, shape (..., n)
        Vectors along the last axis; any leading batch dimensions.

    Returns
    -------
    ndarray, shape (..., n)
        ``x @ scipy.linalg.circulant(c).T`` (the cyclic convolution of ``c`` and ``x``), with
        dtype ``result_dtype(c, x)``: real when both are real.

    Raises
    ------
    ValueError
        If ``c`` is not 1-d, ``n`` is not a power of two up to ``2**24`` or ``x``'s last axis
        is not ``n``.
    TypeError
        If a dtype is not numeric, or NumPy and CuPy arrays are mixed.

    Notes
    -----
    ``C = F^-1 diag(F c) F``: ``ifft(fft(c) * fft(x))`` with the FFT engine
    (:mod:`structlin.fft`; cuFFT for CuPy input), real-to-complex transforms (``rfft``,
    ``irfft``: half the work) when ``c`` and ``x`` are real. ``O(n log n)`` per vector instead
    of ``2 n^2``; each row has its own transform, so rows stay independent as in a dense
    product (a NaN in one row leaves the others finite).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import circulant
    >>> from structlin import circulant_multiply
    >>> c = np.array([1.0, 2.0, 3.0, 4.0])
    >>> x = np.array([1.0, 0.0, 0.0, 0.0])
    >>> circulant_multiply(c, x)
    array([1., 2., 3., 4.])
    >>> bool(np.allclose(circulant_multiply(c, np.eye(4)), circulant(c).T))
    True
    """
    p, n = _prepare_circulant(c, x)
    return _circular_product(p.xp, p.c, p.x, n, p.dtype)


def _real_if(xp, y, dtype):
    if dtype.kind != "c":
        y = y.real
    return xp.ascontiguousarray(y, dtype=dtype)


def circulant_multiply_vjp(c: Any, x: Any, grad: Any) -> tuple[Any, Any]:
    """Return the gradients ``(grad_c, grad_x)`` of :func:`circulant_multiply`.

    Parameters
    ----------
    c, x
        As for :func:`circulant_multiply`.
    grad : array_like, shape (..., n)
        Gradient of a real loss with respect to ``circulant_multiply(c, x)``.

    Returns
    -------
    grad_c : ndarray, shape (n,)
        ``sum over the batch of circulant(x)^H grad``, with ``c``'s dtype promoted to floating
        point (the real part for a real ``c``).
    grad_x : ndarray, shape (..., n)
        ``circulant(c)^H grad``, with ``x``'s dtype promoted to floating point.

    Raises
    ------
    ValueError, TypeError
        As for :func:`circulant_multiply`, and if ``grad`` does not have ``x``'s shape.

    Notes
    -----
    ``y = c ⊛ x`` is bilinear and symmetric in ``c`` and ``x``, so both gradients are adjoint
    circulant products: ``grad_x = ifft(conj(fft(c)) fft(grad))`` and ``grad_c = ifft(sum over
    the batch of conj(fft(x)) fft(grad))``, on the FFT engine (real transforms for real data):
    ``O(n log n)`` per vector (PyTorch's complex-gradient convention).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import circulant
    >>> from structlin import circulant_multiply_vjp
    >>> c = np.array([1.0, 2.0, 3.0, 4.0])
    >>> x = np.array([0.0, 1.0, 0.0, 0.0])
    >>> g = np.array([1.0, -1.0, 0.5, 2.0])
    >>> gc, gx = circulant_multiply_vjp(c, x, g)
    >>> bool(np.allclose(gx, circulant(c).T @ g)), bool(np.allclose(gc, circulant(x).T @ g))
    (True, True)
    """
    check_not_none(grad=grad)
    p, n = _prepare_circulant(c, x, grad)
    xp, c, x, grad, dtype = p.xp, p.c, p.x, p.grad, p.dtype
    # a real product only passes on the real part of the gradient
    g = grad.real if dtype.kind != "c" and grad.dtype.kind == "c" else grad
    gx = _circular_product(xp, c, g, n, dtype, adjoint=True)
    gc = _circular_correlation_sum(xp, x, g, n, dtype)
    return _real_if(xp, gc, result_dtype(c=c)), _real_if(xp, gx, result_dtype(x=x))


def _toeplitz_size(n: int) -> int:
    return 1 if n == 1 else 1 << (2 * n - 2).bit_length()


def _check_toeplitz_column(column: Any) -> int:
    """The size ``n`` of a Toeplitz matrix of first column ``column`` (1-d, non-empty), with
    the bound on its embedding circulant."""
    if column.ndim != 1 or column.shape[0] < 1:
        raise ValueError(f"column must be 1-d and non-empty, shape (n,), got shape "
                         f"{tuple(column.shape)}")
    n = column.shape[0]
    if _toeplitz_size(n) > MAX_TRANSFORM_SIZE:
        raise ValueError(
            f"column must have a length n with an embedding circulant of at most "
            f"{MAX_TRANSFORM_SIZE} (2**24; n <= 2**23), got n = {n}"
        )
    return n


def _prepare_toeplitz(column, row, x, grad=ABSENT):
    check_not_none(column=column, row=row, x=x)
    p = prepare(column=column, row=row, x=x, grad=grad, dtype_of=("column", "row", "x"))
    n = _check_toeplitz_column(p.column)
    check_shape(p.row, (n,), "row", "the length of column")
    check_min_ndim(p.x, 1, "x", "(..., n)")
    check_last_axis(p.x, n, "x", "the length of column")
    if p.grad is not None:
        check_shape(p.grad, p.x.shape, "grad", "the shape of the product, which is x's shape")
    return p, n


def _embed(xp, column, row, n, M, cdt):
    cc = xp.zeros(M, dtype=cdt)
    cc[:n] = column
    if n > 1:
        cc[M - n + 1:] = row[1:][::-1]
    return cc


def _toeplitz_fft_length(xp, n: int, dtype) -> int:
    """The embedding circulant's size for the FFT products: a fast length ``>= 2n - 1``."""
    return fft_fast_length(xp, 2 * n - 1, np.dtype(dtype).kind != "c")


def butterfly_toeplitz(column: Any, row: Any) -> CirculantButterfly:
    """Return the circulant butterfly factors that embed the Toeplitz matrix ``T(column, row)``.

    Parameters
    ----------
    column : array_like, shape (n,)
        First column of ``T`` (``T[i, j] = column[i - j]`` for ``i >= j``); any ``n >= 1``.
    row : array_like, shape (n,)
        First row (``T[i, j] = row[j - i]`` for ``j > i``); ``row[0]`` is ignored, as in
        :func:`scipy.linalg.toeplitz`.

    Returns
    -------
    CirculantButterfly
        The factors (:func:`butterfly_circulant`) of the circulant of size ``M``, the smallest
        power of two ``>= 2n - 1``, whose first column is
        ``[column, 0, ..., 0, row[n-1], ..., row[1]]``; ``T x`` is the first ``n`` entries of
        its product with ``x`` padded by zeros to length ``M``.

    Raises
    ------
    ValueError
        If ``column`` is not 1-d and non-empty or longer than ``2**23`` (an embedding circulant
        above ``2**24``), or ``row`` does not have its length.
    TypeError
        If a dtype is not numeric.

    Notes
    -----
    The embedding wraps the ``n - 1`` sub-diagonals and the ``n - 1`` super-diagonals around
    a circle of ``M >= 2n - 1`` positions without overlap; the padding with zeros keeps the
    wrapped entries away from the first ``n`` outputs. ``O(M log M)`` per vector.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import toeplitz
    >>> from structlin import butterfly_multiply, butterfly_toeplitz
    >>> col, row = np.array([1.0, 2.0, 3.0]), np.array([0.0, -1.0, 5.0])
    >>> tw1, d, tw2 = butterfly_toeplitz(col, row)
    >>> d.shape
    (8,)
    >>> x = np.array([1.0, 1.0, 2.0, 0, 0, 0, 0, 0])
    >>> y = butterfly_multiply(tw2, d * butterfly_multiply(tw1, x, increasing_stride=False))
    >>> bool(np.allclose(y[:3], toeplitz(col, row) @ x[:3]))
    True
    """
    check_not_none(column=column, row=row)
    p = prepare(column=column, row=row)
    xp, column, row = p.xp, p.column, p.row
    n = _check_toeplitz_column(column)
    check_shape(row, (n,), "row", "the length of column")
    M = _toeplitz_size(n)
    cdt = _complex_of(p.dtype)
    return butterfly_circulant(_embed(xp, column, row, n, M, cdt))


def toeplitz_multiply(column: Any, row: Any, x: Any) -> Any:
    """Return the Toeplitz product ``T x`` over the last axis of ``x``.

    Parameters
    ----------
    column : array_like, shape (n,)
        First column of ``T``; any ``n >= 1``.
    row : array_like, shape (n,)
        First row of ``T`` (``row[0]`` is ignored, as in :func:`scipy.linalg.toeplitz`).
    x : array_like, shape (..., n)
        Vectors along the last axis; any leading batch dimensions.

    Returns
    -------
    ndarray, shape (..., n)
        ``x @ scipy.linalg.toeplitz(column, row).T``, dtype ``result_dtype(column, row, x)``.

    Raises
    ------
    ValueError
        If ``column`` is not 1-d and non-empty or longer than ``2**23``, ``row`` or ``x``'s
        last axis does not have its length.
    TypeError
        If a dtype is not numeric, or NumPy and CuPy arrays are mixed.

    Notes
    -----
    A circulant product (:func:`circulant_multiply`'s FFTs) of size ``L``, a fast FFT length
    ``>= 2n - 1`` (:func:`structlin.fft.next_fast_len`), on ``x`` padded with zeros: the
    embedding wraps the sub- and super-diagonals around the circle without overlap.
    ``O(L log L)`` per vector.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import toeplitz
    >>> from structlin import toeplitz_multiply
    >>> col, row = np.array([1.0, 2.0, 3.0]), np.array([9.0, -1.0, 5.0])
    >>> x = np.array([1.0, 1.0, 2.0])
    >>> toeplitz_multiply(col, row, x)
    array([10.,  1.,  7.])
    >>> bool(np.allclose(toeplitz_multiply(col, row, x), toeplitz(col, row) @ x))
    True
    """
    p, n = _prepare_toeplitz(column, row, x)
    xp, column, row, x, dtype = p.xp, p.column, p.row, p.x, p.dtype
    L = _toeplitz_fft_length(xp, n, dtype)
    y = _circular_product(xp, _embed(xp, column, row, n, L, dtype), x, L, dtype)
    return xp.ascontiguousarray(y[..., :n])


def toeplitz_multiply_vjp(column: Any, row: Any, x: Any, grad: Any) -> tuple[Any, Any, Any]:
    """Return the gradients ``(grad_column, grad_row, grad_x)`` of :func:`toeplitz_multiply`.

    Parameters
    ----------
    column, row, x
        As for :func:`toeplitz_multiply`.
    grad : array_like, shape (..., n)
        Gradient of a real loss with respect to the product.

    Returns
    -------
    grad_column : ndarray, shape (n,)
    grad_row : ndarray, shape (n,)
        ``grad_row[0]`` is zero: ``row[0]`` does not enter the product.
    grad_x : ndarray, shape (..., n)
        ``T^H grad``. Each gradient has its argument's dtype promoted to floating point.

    Raises
    ------
    ValueError, TypeError
        As for :func:`toeplitz_multiply`, and if ``grad`` does not have ``x``'s shape.

    Notes
    -----
    The VJP of the embedding circulant (:func:`circulant_multiply_vjp`'s FFTs) on ``x`` and
    ``grad`` padded with zeros, with the circulant's column gradient split back into
    ``column`` and ``row``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import toeplitz
    >>> from structlin import toeplitz_multiply_vjp
    >>> col, row = np.array([1.0, 2.0, 3.0]), np.array([0.0, -1.0, 5.0])
    >>> x, g = np.array([1.0, 0.0, 2.0]), np.array([0.5, 1.0, -1.0])
    >>> gcol, grow, gx = toeplitz_multiply_vjp(col, row, x, g)
    >>> bool(np.allclose(gx, toeplitz(col, row).T @ g)), grow[0]
    (True, np.float64(0.0))
    """
    check_not_none(grad=grad)
    p, n = _prepare_toeplitz(column, row, x, grad)
    xp, column, row, x, grad, dtype = p.xp, p.column, p.row, p.x, p.grad, p.dtype
    L = _toeplitz_fft_length(xp, n, dtype)
    g = grad.real if dtype.kind != "c" and grad.dtype.kind == "c" else grad
    gxp = _circular_product(xp, _embed(xp, column, row, n, L, dtype), g, L, dtype,
                            adjoint=True)
    gcc = _circular_correlation_sum(xp, x, g, L, dtype)
    gcol = gcc[:n]
    grow = xp.zeros(n, dtype=gcc.dtype)
    if n > 1:
        grow[1:] = gcc[L - n + 1:][::-1]
    return (_real_if(xp, gcol, result_dtype(column=column)),
            _real_if(xp, grow, result_dtype(row=row)),
            _real_if(xp, gxp[..., :n], result_dtype(x=x)))


# ------------------------------------------------------------------------------ solves
#
# SciPy's solve_circulant: x = ifft(fft(b) / fft(c)) along the vector axes, with its near-
# singularity rule, axes and broadcasting; the transforms are the FFT engine's (NumPy) or
# cuFFT's (CuPy), real-to-complex ones for real data.


class _Spectra(NamedTuple):
    xp: Any
    dtype: Any  # the compute dtype
    real: bool  # real data: half spectra (rfft)
    n: int
    fc: Any  # (*cbatch, nf) the eigenvalues, near-zero ones replaced by 1
    near: Any  # (*cbatch, nf) bool, or None when none is near zero
    fb: Any  # (*bbatch, nf)
    cshape: tuple  # c moved to (..., n), after atleast_1d
    bshape: tuple
    batch: tuple  # the broadcast batch of the solution


def _vector_axis(a: Any, axis: Any, name: str) -> int:
    """``axis`` (an int, SciPy's ``caxis``/``baxis``) normalized for ``a``, or ValueError."""
    axis = check_int(axis, name, minimum=None, maximum=None)
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(
            f"{name} must be in [{-a.ndim}, {a.ndim}) for an array of shape {tuple(a.shape)}, "
            f"got {axis}"
        )
    return axis % a.ndim


def _prepare_solve_circulant(c, b, singular, tol, caxis, baxis, grad=ABSENT):
    check_not_none(c=c, b=b)
    p = prepare(c=c, b=b, grad=grad, dtype_of=("c", "b"))
    singular = check_choice(singular, "singular", ("raise", "lstsq"))
    if tol is not None:
        tol = check_float(tol, "tol")
    xp = p.xp
    c1 = xp.atleast_1d(p.c)
    b1 = xp.atleast_1d(p.b)
    ca = _vector_axis(c1, caxis, "caxis")
    ba = _vector_axis(b1, baxis, "baxis")
    n = int(c1.shape[ca])
    if int(b1.shape[ba]) != n:
        raise ValueError(
            f"b must have length {n} along baxis (the length of c along caxis), got b of "
            f"shape {tuple(b1.shape)} with baxis={baxis} and c of shape {tuple(c1.shape)} with "
            f"caxis={caxis}"
        )
    cm = xp.moveaxis(c1, ca, -1)
    bm = xp.moveaxis(b1, ba, -1)
    try:
        batch = tuple(np.broadcast_shapes(tuple(cm.shape[:-1]), tuple(bm.shape[:-1])))
    except ValueError:
        raise ValueError(
            f"the collections of c and b do not broadcast: c has shape {tuple(c1.shape)} "
            f"(caxis={caxis}) and b has shape {tuple(b1.shape)} (baxis={baxis})"
        ) from None
    return p, singular, tol, cm, bm, b1, n, batch


def _spectra(p, singular, tol, cm, bm, n, batch) -> _Spectra:
    xp, dt = p.xp, p.dtype
    real = np.dtype(dt).kind != "c"
    fwd, _ = fft_pair(xp, real)
    fc = fwd(cm.astype(dt, copy=False))
    fb = fwd(bm.astype(dt, copy=False))
    abs_fc = xp.abs(fc)
    if tol is None:
        # numpy.linalg.matrix_rank's tolerance, in the precision of the computation
        rtol = abs_fc.max(axis=-1, keepdims=True) * (n * float(np.finfo(dt).eps))
        near = abs_fc <= rtol
    else:
        near = abs_fc <= tol
    if bool(near.any()):
        if singular == "raise":
            raise np.linalg.LinAlgError("near singular circulant matrix.")
        fc = xp.where(near, fc.dtype.type(1), fc)
    else:
        near = None
    return _Spectra(xp, dt, real, n, fc, near, fb, tuple(cm.shape), tuple(bm.shape), batch)


def _masked(xp, s: _Spectra, q: Any) -> Any:
    return q if s.near is None else xp.where(s.near, q.dtype.type(0), q)


def solve_circulant(
    c: Any, b: Any, singular: str = "raise", tol: float | None = None, caxis: int = -1,
    baxis: int = 0, outaxis: int = 0,
) -> Any:
    """Return the solution ``x`` of ``C x = b`` for the circulant matrix ``C`` with first column
    ``c`` (``C[i, j] = c[(i - j) mod n]``), by FFTs: ``scipy.linalg.solve_circulant``.

    The signature, the axis arguments, the broadcasting of collections of vectors and the
    near-singularity rule are SciPy 1.17's (see Notes for the few differences).

    Parameters
    ----------
    c : array_like
        The first column of the circulant matrix; with more than one dimension, a collection of
        them, the coefficients along ``caxis``.
    b : array_like
        The right-hand side; with more than one dimension, a collection of vectors along
        ``baxis``. The collections of ``c`` and ``b`` (their shapes without the vector axes)
        broadcast against each other.
    singular : {"raise", "lstsq"}, default "raise"
        What to do with a near singular matrix: raise ``LinAlgError``, or return the
        least-squares (minimum norm) solution, dropping the eigenvalues ``<= tol``.
    tol : float, optional
        The eigenvalues (``fft(c)``) of modulus ``<= tol`` are near zero. Default: ``max|fft(c)|
        * n * eps`` per matrix, ``eps`` the machine epsilon of the computation's precision.
    caxis, baxis : int, default -1 and 0
        The axes of ``c`` and ``b`` that hold the vectors.
    outaxis : int, default 0
        The axis of the result that holds the solution vectors.

    Returns
    -------
    x : ndarray
        The solutions, shape the broadcast collection with the vector axis at ``outaxis``; in
        the promoted dtype of ``c`` and ``b`` (float32 and complex64 kept, integers as float64;
        real when both are real). An empty ``b`` gives an empty array of ``b``'s shape, as in
        SciPy.

    Raises
    ------
    numpy.linalg.LinAlgError
        A near singular matrix with ``singular="raise"`` (one in a collection is enough, as in
        SciPy).
    ValueError
        Vector lengths that differ, an axis out of bounds (named), collections that do not
        broadcast, ``singular`` not one of its two values, ``tol`` not finite.
    TypeError
        A non-numeric input (named), an axis that is not an integer, ``tol`` not a real
        number, NumPy and CuPy arrays mixed.

    See Also
    --------
    solve_circulant_vjp : its gradients.
    circulant_multiply : the product with ``C``.
    scipy.linalg.solve_circulant : the reference.

    Notes
    -----
    ``C = F^-1 diag(fft(c)) F``, so ``x = ifft(fft(b) / fft(c))``: ``O(n log n)`` per vector
    and ``O(n)`` memory per vector, with real-to-complex transforms (``rfft``, half the work)
    when ``c`` and ``b`` are real. The transforms are the FFT engine's (:mod:`structlin.fft`,
    parallel over the vectors) for NumPy input and cuFFT's for CuPy input.

    Differences from SciPy 1.17.1: (1) the default ``tol`` uses the epsilon of the
    computation's precision (``numpy.linalg.matrix_rank``'s rule, which SciPy's comment
    cites) where SciPy always uses float64's: identical for float64 and complex128, while in
    float32 SciPy's threshold lies far below the transforms' rounding and misses singular
    matrices. Float32 data is computed and returned in float32 by both (with NumPy 2).
    (2) ``singular`` must be ``"raise"`` or ``"lstsq"`` (SciPy treats every other string
    as ``"lstsq"``). (3) With ``"lstsq"`` the near-zero eigenvalues are masked in the
    broadcast result, for any ``baxis``: SciPy masks with an array of ``b``'s unmoved shape,
    which raises a broadcasting error, or masks the wrong entries, when ``b`` has two or more
    dimensions and ``baxis`` is not the last axis. (4) Errors name the argument, and an
    ``outaxis`` out of bounds is a ``ValueError`` (NumPy's ``AxisError``, a ``ValueError``
    too, in SciPy). NaN and infinity propagate as in SciPy, within their vector.

    References
    ----------
    .. [1] P. J. Davis, Circulant Matrices, Wiley 1979.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.circulant import solve_circulant
    >>> solve_circulant(np.array([2.0, 2.0, 4.0]), np.array([1.0, 2.0, 3.0]))
    array([ 0.75, -0.25,  0.25])
    >>> solve_circulant(np.array([1.0, 1.0, 0.0, 0.0]), np.array([1.0, 2.0, 3.0, 4.0]),
    ...                 singular="lstsq")
    array([0.25, 1.25, 2.25, 1.25])
    """
    p, singular, tol, cm, bm, b1, n, batch = _prepare_solve_circulant(
        c, b, singular, tol, caxis, baxis)
    xp, dt = p.xp, p.dtype
    outaxis = check_int(outaxis, "outaxis", minimum=None, maximum=None)
    out_ndim = len(batch) + 1
    if b1.size != 0 and not -out_ndim <= outaxis < out_ndim:
        raise ValueError(f"outaxis must be in [{-out_ndim}, {out_ndim}) for a result of "
                         f"{out_ndim} dimension(s), got {outaxis}")
    if b1.size == 0:
        return xp.empty(b1.shape, dtype=dt)
    s = _spectra(p, singular, tol, cm, bm, n, batch)
    _, inv = fft_pair(xp, s.real)
    with np.errstate(invalid="ignore", divide="ignore"):  # non-finite b: NaN in its vector
        q = s.fb / s.fc
    x = inv(_masked(xp, s, q), n).astype(dt, copy=False)
    return x if outaxis in (-1, out_ndim - 1) else xp.moveaxis(x, -1, outaxis)


def solve_circulant_vjp(
    c: Any, b: Any, grad: Any, singular: str = "raise", tol: float | None = None,
    caxis: int = -1, baxis: int = 0, outaxis: int = 0,
) -> tuple[Any, Any]:
    """Return the gradients ``(gc, gb)`` of a real loss through :func:`solve_circulant`, given
    its gradient ``grad`` with respect to the solution.

    Parameters
    ----------
    c, b, singular, tol, caxis, baxis, outaxis
        As for :func:`solve_circulant`.
    grad : array_like, shape of the solution
        The gradient with respect to ``solve_circulant(c, b, singular, tol, caxis, baxis,
        outaxis)``.

    Returns
    -------
    gc : ndarray, shape of ``c``
    gb : ndarray, shape of ``b``
        Each in its argument's dtype (float32 and complex64 kept; the real part for a real
        argument), summed over the collection dimensions it was broadcast along. Complex
        gradients follow PyTorch's convention ``dl/dRe z + 1j dl/dIm z``.

    Raises
    ------
    numpy.linalg.LinAlgError, ValueError, TypeError
        As :func:`solve_circulant`, and ``grad`` of the wrong shape (both shapes named).

    See Also
    --------
    solve_circulant

    Notes
    -----
    With ``x = C^-1 b``: ``gb = C^-H grad = ifft(fft(grad) / conj(fft(c)))`` (``C^H`` is the
    circulant of the conjugate eigenvalues) and ``gC = -gb x^H``, whose sums along the
    wrapped diagonals are a circular cross-correlation: ``gc = -ifft(fft(gb) *
    conj(fft(x)))``. Three transforms per vector beyond the solve's. With ``singular="lstsq"``
    the dropped eigenvalues stay dropped (the gradient of the masked formula: the
    pseudo-inverse's derivative along the kept eigenvectors).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.circulant import solve_circulant_vjp
    >>> gc, gb = solve_circulant_vjp([2.0], [6.0], [1.0])    # x = b / c = 3
    >>> gc, gb                                               # (-b / c**2, 1 / c)
    (array([-1.5]), array([0.5]))
    """
    p, singular, tol, cm, bm, b1, n, batch = _prepare_solve_circulant(
        c, b, singular, tol, caxis, baxis, grad=grad)
    xp, dt = p.xp, p.dtype
    outaxis = check_int(outaxis, "outaxis", minimum=None, maximum=None)
    out_ndim = len(batch) + 1
    if b1.size == 0:
        check_shape(p.grad, tuple(b1.shape), "grad", "the solution's shape")
        return (grad_like(xp, xp.zeros(p.c.shape, dt), p.c),
                grad_like(xp, xp.zeros(p.b.shape, dt), p.b))
    if not -out_ndim <= outaxis < out_ndim:
        raise ValueError(f"outaxis must be in [{-out_ndim}, {out_ndim}) for a result of "
                         f"{out_ndim} dimension(s), got {outaxis}")
    out_shape = list(batch)
    out_shape.insert(outaxis % out_ndim, n)
    check_shape(p.grad, tuple(out_shape), "grad", "the solution's shape")
    s = _spectra(p, singular, tol, cm, bm, n, batch)
    fwd, inv = fft_pair(xp, s.real)
    g = xp.moveaxis(p.grad, outaxis % out_ndim, -1).astype(dt, copy=False)
    with np.errstate(invalid="ignore", divide="ignore"):  # non-finite data: NaN in its vector
        q = _masked(xp, s, s.fb / s.fc)
        fgb = _masked(xp, s, fwd(g) / xp.conj(s.fc))
        fgc = fgb * xp.conj(q)
    gb = inv(fgb, n)
    gc = -inv(fgc, n)
    gc = xp.moveaxis(sum_to_shape(gc, s.cshape), -1, caxis % max(len(s.cshape), 1))
    gb = xp.moveaxis(sum_to_shape(gb, s.bshape), -1, baxis % max(len(s.bshape), 1))
    return (grad_like(xp, gc.reshape(p.c.shape), p.c), grad_like(xp, gb.reshape(p.b.shape), p.b))
