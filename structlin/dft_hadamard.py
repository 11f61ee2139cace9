"""The closed-form twiddles of two butterflies: the DFT (radix-2 FFT) and the Hadamard matrix.

Both are the core butterfly product (:func:`structlin.butterfly_multiply`, in its convention:
``twiddle`` of shape ``(L, n//2, 2, 2)``, factor ``k`` of stride ``2**k``) with known twiddles:

- :func:`butterfly_dft`: the radix-2 decimation-in-time FFT. With ``increasing_stride=True`` it
  maps ``x[..., bit_reversal_permutation(n)]`` to ``numpy.fft.fft(x)`` (or ``ifft``).
- :func:`butterfly_hadamard`: the Sylvester Hadamard matrix ``scipy.linalg.hadamard(n)``.

The DFT twiddle is also the middle step of the DCT/DST (:mod:`structlin.dct_dst`) and of the
circulant and Toeplitz products (:mod:`structlin.circulant`), which take it from here, with the
size bound :data:`MAX_TRANSFORM_SIZE` shared by every constructor of this family.

Reference: T. Dao, A. Gu, M. Eichhorn, A. Rudra, C. Ré, "Learning Fast Algorithms for Linear
Transforms Using Butterfly Factorizations", ICML 2019, arXiv:1903.05895.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from structlin._validate import (
    check_bool,
    check_choice,
    check_dtype,
    check_int,
    check_power_of_two,
    log2_exact,
)

__all__ = ["butterfly_dft", "butterfly_hadamard"]

#: the largest transform size of the family (``2**24``): a DFT twiddle of that size holds
#: ``24 * 2**23`` complex128 blocks of 2x2 (12.9 GB); sizes above it are refused at once rather
#: than built step by step until memory runs out
MAX_TRANSFORM_SIZE = 1 << 24

_DFT_NORMS = (None, "backward", "ortho", "forward")


def _check_transform_size(n: Any, name: str = "n", what: str | None = None) -> int:
    """Return ``log2(n)`` for a transform size ``n``, or raise naming ``name``.

    ``n`` must be a power of two and at most :data:`MAX_TRANSFORM_SIZE`. With ``what`` None,
    ``n`` is an integer argument (``operator.index`` semantics: bool, floats, strings and None
    raise TypeError); otherwise it is the length of the array ``name`` that ``what`` describes
    (e.g. ``"last-axis length n"``).
    """
    if what is None:
        v = check_int(n, name, minimum=None, maximum=MAX_TRANSFORM_SIZE)
        return check_power_of_two(v, name, "value")
    L = check_power_of_two(n, name, what)
    if n > MAX_TRANSFORM_SIZE:
        raise ValueError(
            f"{name} must have a {what} of at most {MAX_TRANSFORM_SIZE} (2**24), got {n}"
        )
    return L


def _complex_of(dtype: np.dtype) -> np.dtype:
    """The complex dtype of ``dtype``'s precision (complex64 for float32, else complex128)."""
    return np.result_type(dtype, np.complex64)


def _nonfinite_pairs(xp: Any, v: Any, rows: int) -> Any:
    """The real rows (of ``rows``) whose packed pair's complex result ``v`` is not finite, or
    None (the usual case, found by reading one entry per pair).

    A NaN or infinity in either row of a pair reaches every entry of the pair's result: every
    output of a DFT (and of the circulant product) depends on every input, and IEEE arithmetic
    keeps a non-finite operand non-finite through every sum and product, zero weights
    included. So column 0 of ``v`` tells which pairs were touched.
    """
    finite = xp.isfinite(v[:, 0])
    if bool(finite.all()):  # one host read of a flag (a sync on the GPU)
        return None
    pairs = xp.nonzero(~finite)[0]
    both = xp.stack([2 * pairs, 2 * pairs + 1], axis=1).ravel()
    return both[both < rows]


def _dft_twiddle(n: int, inverse: bool, scale: float) -> np.ndarray:
    """Radix-2 DIT twiddle in complex128; every factor carries ``scale ** (1/L)``."""
    L = log2_exact(n)
    tw = np.empty((L, n // 2, 2, 2), dtype=np.complex128)
    f = scale ** (1.0 / L) if L else 1.0
    j = np.arange(n // 2)
    sign = 1.0 if inverse else -1.0
    for k in range(L):
        s = 1 << k
        c = j % s
        # the angle pi c / s, reduced to an exact fraction before the trigonometric calls
        w = np.exp(sign * 1j * np.pi * c / s)
        tw[k, :, 0, 0] = f
        tw[k, :, 0, 1] = f * w
        tw[k, :, 1, 0] = f
        tw[k, :, 1, 1] = -f * w
    return tw


def _dft_scale(n: int, inverse: bool, norm: str) -> float:
    if norm == "ortho":
        return 1.0 / math.sqrt(n)
    if (norm == "backward") == inverse:
        return 1.0 / n
    return 1.0


def butterfly_dft(
    n: int, *, inverse: bool = False, norm: str | None = "backward", dtype: Any = np.complex128
) -> np.ndarray:
    """Return the twiddle of the DFT butterfly: the radix-2 decimation-in-time FFT.

    Parameters
    ----------
    n : int
        Size, a power of two, at most :data:`MAX_TRANSFORM_SIZE` (``2**24``).
    inverse : bool, default False
        False: the DFT ``numpy.fft.fft``; True: the inverse DFT ``numpy.fft.ifft``.
    norm : {None, "backward", "ortho", "forward"}, default "backward"
        Normalization, as in :func:`numpy.fft.fft`: "backward" (or None) leaves the DFT
        unscaled and scales the inverse by ``1/n``; "ortho" scales both by ``1/sqrt(n)``;
        "forward" scales the DFT by ``1/n``. The scale is spread evenly over the ``log2(n)``
        factors (``1/2`` or ``1/sqrt(2)`` each).
    dtype : complex64 or complex128, default complex128
        The twiddle's dtype; it is computed in complex128 and rounded once.

    Returns
    -------
    ndarray, shape (log2(n), n//2, 2, 2)
        ``twiddle`` such that, for every ``x`` of shape ``(..., n)``,
        ``butterfly_multiply(twiddle, x[..., bit_reversal_permutation(n)])`` equals
        ``numpy.fft.fft(x, norm=norm)`` (``ifft`` when ``inverse``). Block ``j = a*s + c`` of
        factor ``k`` (``s = 2**k``, ``0 <= c < s``) is ``f * [[1, w**c], [1, -w**c]]`` with
        ``w = exp(-+ 2 pi i / (2 s))`` (minus for the DFT, plus for the inverse) and ``f`` the
        per-factor scale.

    Raises
    ------
    ValueError
        If ``n`` is not a power of two or above ``2**24``, or ``norm`` is not one NumPy
        accepts.
    TypeError
        If ``n`` is not an integer, ``inverse`` not a bool or ``dtype`` not complex64 or
        complex128.

    Notes
    -----
    Factor ``k`` merges the DFTs of size ``s`` of the even- and odd-indexed halves into DFTs of
    size ``2 s`` (Cooley-Tukey), so the product costs ``5 n log2(n)`` real flops per vector.
    The decimation-in-frequency FFT (natural-order input, bit-reversed output) is the transpose:
    ``butterfly_multiply(twiddle, x, transpose=True)`` equals ``fft(x)[..., p]`` with ``p`` the
    bit reversal, because the DFT matrix is symmetric. Dao et al. 2019, arXiv:1903.05895, learn
    butterflies that recover this closed form.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import bit_reversal_permutation, butterfly_dft, butterfly_multiply
    >>> x = np.arange(8.0)
    >>> tw = butterfly_dft(8)
    >>> tw.shape
    (3, 4, 2, 2)
    >>> y = butterfly_multiply(tw, x[bit_reversal_permutation(8)])
    >>> bool(np.allclose(y, np.fft.fft(x)))
    True
    >>> twi = butterfly_dft(8, inverse=True, norm="ortho")
    >>> bool(np.allclose(butterfly_multiply(twi, x[bit_reversal_permutation(8)]),
    ...                  np.fft.ifft(x, norm="ortho")))
    True
    """
    _check_transform_size(n)
    n = int(n)
    inverse = check_bool(inverse, "inverse")
    norm = check_choice(norm, "norm", _DFT_NORMS) or "backward"
    dt = check_dtype(dtype, allowed=(np.complex64, np.complex128))
    return _dft_twiddle(n, inverse, _dft_scale(n, inverse, norm)).astype(dt)


def butterfly_hadamard(n: int, *, normalize: bool = False, dtype: Any = np.float64) -> np.ndarray:
    """Return the twiddle of the Hadamard butterfly (Sylvester order).

    Parameters
    ----------
    n : int
        Size, a power of two, at most :data:`MAX_TRANSFORM_SIZE` (``2**24``).
    normalize : bool, default False
        True: every block is divided by ``sqrt(2)``, so the product is orthogonal (``H/sqrt(n)``).
    dtype : dtype, default float64
        float32, float64, complex64 or complex128.

    Returns
    -------
    ndarray, shape (log2(n), n//2, 2, 2)
        Every block ``[[1, 1], [1, -1]]`` (times ``1/sqrt(2)`` when ``normalize``):
        ``butterfly_to_dense(twiddle)`` is ``scipy.linalg.hadamard(n)`` (scaled), for either
        ``increasing_stride`` since the factors commute.

    Raises
    ------
    ValueError
        If ``n`` is not a power of two or above ``2**24``.
    TypeError
        If ``n`` is not an integer, ``normalize`` not a bool or ``dtype`` not one of the four
        kernel dtypes.

    Notes
    -----
    ``H_n = H_2 ⊗ ... ⊗ H_2``; factor ``k`` is ``I ⊗ H_2 ⊗ I`` with ``H_2`` at position ``k``.
    :func:`structlin.fwht` applies the same matrix with a dedicated kernel (no twiddle loads);
    this twiddle is the starting point for learning a transform near the Hadamard matrix
    (Dao et al. 2019, arXiv:1903.05895).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import hadamard
    >>> from structlin import butterfly_hadamard, butterfly_to_dense
    >>> bool(np.array_equal(butterfly_to_dense(butterfly_hadamard(8)), hadamard(8)))
    True
    >>> butterfly_hadamard(2, normalize=True)
    array([[[[ 0.70710678,  0.70710678],
             [ 0.70710678, -0.70710678]]]])
    """
    L = _check_transform_size(n)
    normalize = check_bool(normalize, "normalize")
    dt = check_dtype(dtype)
    block = np.array([[1.0, 1.0], [1.0, -1.0]])
    if normalize:
        block = block / math.sqrt(2.0)
    # a fresh array for every size: a copy of a broadcast view is skipped when it is empty
    # (n = 1), which would hand out a read-only array
    tw = np.empty((L, int(n) // 2, 2, 2), dtype=dt)
    tw[...] = block
    return tw


