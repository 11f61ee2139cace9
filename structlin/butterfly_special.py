"""Closed-form butterflies: the DFT, Hadamard, DCT/DST and circulant/Toeplitz products.

Every transform here is the core butterfly product (:func:`structlin.butterfly_multiply`, in
its convention: ``twiddle`` of shape ``(L, n//2, 2, 2)``, factor ``k`` of stride ``2**k``) with
known twiddles, plus cheap fused gathers and diagonals around it:

- :func:`butterfly_dft`: the radix-2 decimation-in-time FFT. With ``increasing_stride=True`` it
  maps ``x[..., bit_reversal_permutation(n)]`` to ``numpy.fft.fft(x)`` (or ``ifft``).
- :func:`butterfly_hadamard`: the Sylvester Hadamard matrix ``scipy.linalg.hadamard(n)``.
- :func:`dct` / :func:`dst` (types 2, 3, 4): a gather (Makhoul's permutation with the bit
  reversal folded in), the DFT butterfly, then a diagonal and a real part; the pieces are
  returned by :func:`butterfly_dct` / :func:`butterfly_dst` (a :class:`DCTButterfly`) and
  applied by :func:`dct_butterfly_multiply`, so that they can be fine-tuned.
- :func:`circulant_multiply` / :func:`toeplitz_multiply`: ``C = B_2 diag(d) B_1`` with a
  decimation-in-frequency butterfly ``B_1`` (bit-reversed output) and a decimation-in-time
  inverse ``B_2`` (bit-reversed input): no permutation at all (:func:`butterfly_circulant`).

References: T. Dao, A. Gu, M. Eichhorn, A. Rudra, C. Ré, "Learning Fast Algorithms for Linear
Transforms Using Butterfly Factorizations", ICML 2019, arXiv:1903.05895; J. Makhoul, "A fast
cosine transform in one and two dimensions", IEEE Trans. ASSP 28(1), 1980.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np

from structlin._backend import (
    array_namespace,
    as_kernel_array,
    flatten_batch,
    kernels,
    real_dtype,
    restore_batch,
    result_dtype,
)
from structlin._validate import check_min_ndim, check_power_of_two, check_shape, log2_exact
from structlin.butterfly import (
    bit_reversal_permutation,
    butterfly_multiply,
    butterfly_multiply_vjp,
)

__all__ = [
    "CirculantButterfly",
    "DCTButterfly",
    "butterfly_circulant",
    "butterfly_dct",
    "butterfly_dft",
    "butterfly_dst",
    "butterfly_hadamard",
    "butterfly_toeplitz",
    "circulant_multiply",
    "circulant_multiply_vjp",
    "dct",
    "dct_butterfly_multiply",
    "dct_butterfly_multiply_vjp",
    "dct_vjp",
    "dst",
    "dst_vjp",
    "toeplitz_multiply",
    "toeplitz_multiply_vjp",
]

_DFT_NORMS = (None, "backward", "ortho", "forward")
_DCT_NORMS = (None, "backward", "ortho")
_DCT_TYPES = (2, 3, 4)


# ------------------------------------------------------------------------------ validation


def _check_size(n: Any, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(n).__name__}")
    return check_power_of_two(int(n), name, "value")


def _check_dtype(dtype: Any, allowed: tuple, what: str) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be {what}, got {dtype!r}") from None
    if dt not in allowed:
        raise TypeError(f"dtype must be {what}, got {dt}")
    return dt


def _check_norm(norm: Any, allowed: tuple) -> str:
    if not (norm is None or isinstance(norm, str)) or norm not in allowed:
        names = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"norm must be one of {names}, got {norm!r}")
    return "backward" if norm is None else norm


def _check_type(type: Any) -> int:
    if isinstance(type, bool) or not isinstance(type, (int, np.integer)) or type not in (
        _DCT_TYPES
    ):
        raise ValueError(f"type must be 2, 3 or 4, got {type!r}")
    return int(type)


def _complex_of(dtype: np.dtype) -> np.dtype:
    return np.result_type(dtype, np.complex64)


# -------------------------------------------------------------------------- DFT, Hadamard


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
        Size, a power of two.
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
        If ``n`` is not a power of two or ``norm`` is not one NumPy accepts.
    TypeError
        If ``n`` is not an integer or ``dtype`` is not complex64/complex128.

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
    _check_size(n)
    norm = _check_norm(norm, _DFT_NORMS)
    dt = _check_dtype(dtype, (np.dtype(np.complex64), np.dtype(np.complex128)),
                      "complex64 or complex128 (the DFT is complex)")
    n = int(n)
    return _dft_twiddle(n, bool(inverse), _dft_scale(n, bool(inverse), norm)).astype(dt)


def butterfly_hadamard(n: int, *, normalize: bool = False, dtype: Any = np.float64) -> np.ndarray:
    """Return the twiddle of the Hadamard butterfly (Sylvester order).

    Parameters
    ----------
    n : int
        Size, a power of two.
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
        If ``n`` is not a power of two.
    TypeError
        If ``n`` is not an integer or ``dtype`` is not one of the four kernel dtypes.

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
    L = _check_size(n)
    dt = _check_dtype(dtype, tuple(np.dtype(t) for t in
                                   (np.float32, np.float64, np.complex64, np.complex128)),
                      "float32, float64, complex64 or complex128")
    block = np.array([[1.0, 1.0], [1.0, -1.0]])
    if normalize:
        block = block / math.sqrt(2.0)
    return np.ascontiguousarray(np.broadcast_to(block, (L, int(n) // 2, 2, 2)), dtype=dt)


# --------------------------------------------------------------------------------- DCT/DST


class DCTButterfly(NamedTuple):
    """The pieces of a DCT/DST of size ``n`` computed through a complex DFT butterfly.

    For a real vector ``x`` of length ``n`` the transform is::

        u = input_weight[0] * x[input_index[0]] + input_weight[1] * x[input_index[1]]
        v = butterfly_multiply(twiddle, u)                 # increasing stride
        y = Re(output_weight * v[output_index])

    and a complex ``x`` is transformed as ``T(x.real) + 1j T(x.imag)`` (the transforms are
    real). :func:`dct_butterfly_multiply` applies the pieces, :func:`dct_butterfly_multiply_vjp`
    differentiates through them (the twiddle included), so they can be fine-tuned.

    Parameters
    ----------
    input_index : ndarray of int64, shape (2, m)
        Where each entry of the butterfly's input is read from; the bit reversal of the DFT
        and Makhoul's permutation are folded in.
    input_weight : ndarray of complex128, shape (2, m)
        The weights of the two reads (the second row is zero for types 2 and 3).
    twiddle : ndarray of complex128, shape (log2(m), m//2, 2, 2)
        A DFT butterfly of size ``m`` (:func:`butterfly_dft`): ``m = n`` for types 2 and 3,
        ``m = n/2`` for type 4 (``m = 1`` when ``n = 1``).
    output_index : ndarray of int64, shape (n,)
        Which entry of the butterfly's output each output reads.
    output_weight : ndarray of complex128, shape (n,)
        Its weight; the real part of the product is the output (normalization included).

    Examples
    --------
    >>> from structlin import butterfly_dct
    >>> p = butterfly_dct(8, type=4)
    >>> p.input_index.shape, p.twiddle.shape, p.output_weight.shape
    ((2, 4), (2, 2, 2, 2), (8,))
    """

    input_index: np.ndarray
    input_weight: np.ndarray
    twiddle: np.ndarray
    output_index: np.ndarray
    output_weight: np.ndarray


def _makhoul(n: int) -> np.ndarray:
    """``v = x[p]``: the even entries in order, then the odd ones reversed."""
    p = np.empty(n, dtype=np.int64)
    h = (n + 1) // 2
    p[:h] = np.arange(0, n, 2)
    p[h:] = np.arange(n - 1 if n % 2 == 0 else n - 2, 0, -2)
    return p


def _dct_scales(n: int, type: int, norm: str) -> np.ndarray:
    """Output scales of types 2 and 4; input scales of type 3 (the transposes of type 2)."""
    if type == 4:
        return np.full(n, math.sqrt(0.5 / n) if norm == "ortho" else 1.0)
    if norm == "ortho":
        f = np.full(n, math.sqrt(0.5 / n))
        f[0] = math.sqrt(0.25 / n)
        return f
    if type == 2:
        return np.ones(n)
    f = np.ones(n)
    f[0] = 0.5
    return f


@functools.cache
def _dct_pieces(kind: str, n: int, type: int, norm: str) -> DCTButterfly:
    """The pieces in complex128/int64, cached and read-only (copied before given out)."""
    if type == 4 and n == 1:
        # a single entry: y = 2 cos(pi/4) x (times the normalization)
        s = 2.0 * math.cos(math.pi / 4) * _dct_scales(1, 4, norm)[0]
        ia = np.zeros((2, 1), np.int64)
        wa = np.array([[1.0], [0.0]], np.complex128)
        pieces = [ia, wa, _dft_twiddle(1, False, 1.0), np.zeros(1, np.int64),
                  np.array([s], np.complex128)]
    elif type == 4:
        m = n // 2
        br = bit_reversal_permutation(m)
        j = np.arange(m)[br]
        omega = np.exp(-1j * np.pi * (4 * j + 1) / (4 * n))
        ia = np.stack([2 * j, n - 1 - 2 * j])
        wa = np.stack([omega, 1j * omega])
        k = np.arange(m)
        psi = 2.0 * np.exp(-1j * np.pi * k / n) * _dct_scales(n, 4, norm)[:m]
        ic = np.empty(n, np.int64)
        cw = np.empty(n, np.complex128)
        ic[0::2] = k
        cw[0::2] = psi
        ic[n - 1 - 2 * k] = k
        cw[n - 1 - 2 * k] = 1j * psi
        pieces = [ia, wa, _dft_twiddle(m, False, 1.0), ic, cw]
    else:
        br = bit_reversal_permutation(n)
        p = _makhoul(n)
        e = np.exp(-1j * np.pi * np.arange(n) / (2 * n))
        f = _dct_scales(n, type, norm)
        if type == 2:
            ia = np.stack([p[br], np.zeros(n, np.int64)])
            wa = np.stack([np.ones(n, np.complex128), np.zeros(n, np.complex128)])
            ic = np.arange(n, dtype=np.int64)
            cw = 2.0 * e * f
        else:
            # the transpose of type 2: DCT-III = DCT-II^T diag(f)
            pinv = np.empty(n, np.int64)
            pinv[p] = np.arange(n)
            ia = np.stack([br, np.zeros(n, np.int64)])
            wa = np.stack([(2.0 * e * f)[br], np.zeros(n, np.complex128)])
            ic = pinv
            cw = np.ones(n, np.complex128)
        pieces = [ia, wa, _dft_twiddle(n, False, 1.0), ic, cw]
    ia, wa, tw, ic, cw = pieces
    if kind == "dst":
        if type == 2:
            # DST-II = R DCT-II S: alternate the input signs, reverse the output
            wa = wa * np.where(ia % 2 == 0, 1.0, -1.0)
            ic = ic[::-1]
            cw = cw[::-1]
        else:
            # DST-III = S DCT-III R and DST-IV = S DCT-IV R
            ia = n - 1 - ia
            cw = cw * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    out = DCTButterfly(*(np.ascontiguousarray(a) for a in (ia, wa, tw, ic, cw)))
    for a in out:
        a.setflags(write=False)
    return out


def _pieces_for(kind: str, n: Any, type: Any, norm: Any) -> DCTButterfly:
    _check_size(n)
    return _dct_pieces(kind, int(n), _check_type(type), _check_norm(norm, _DCT_NORMS))


def butterfly_dct(n: int, type: int = 2, norm: str | None = None) -> DCTButterfly:
    """Return the butterfly pieces of the DCT of ``type`` and size ``n``.

    Parameters
    ----------
    n : int
        Size, a power of two.
    type : {2, 3, 4}, default 2
        The DCT type, as in :func:`scipy.fft.dct`.
    norm : {None, "backward", "ortho"}, default None
        As in :func:`scipy.fft.dct` (None and "backward": unnormalized).

    Returns
    -------
    DCTButterfly
        ``(input_index, input_weight, twiddle, output_index, output_weight)``, fresh writable
        copies in int64/complex128, such that ``dct_butterfly_multiply(pieces, x)`` equals
        ``scipy.fft.dct(x, type, norm=norm)``; see :class:`DCTButterfly` for the formula.

    Raises
    ------
    ValueError
        If ``n`` is not a power of two, ``type`` is not 2, 3 or 4, or ``norm`` is invalid.
    TypeError
        If ``n`` is not an integer.

    Notes
    -----
    Type 2 (Makhoul 1980): ``v = x[p]`` with ``p`` the even indices followed by the odd ones
    reversed, ``V = DFT(v)`` and ``y[k] = 2 Re(exp(-i pi k / 2n) V[k])``; the bit reversal of
    the DIT butterfly is folded into ``p``. Type 3 is the transpose of type 2 times a diagonal
    (``y = M_2^T diag(1/2, 1, ..., 1) x``, unnormalized), obtained by transposing the three
    steps: diagonal, DFT (symmetric), inverse permutation. Type 4 uses a DFT of half the size:
    ``u[j] = exp(-i pi (4j+1) / 4n) (x[2j] + i x[n-1-2j])``, ``b = 2 exp(-i pi k / n) DFT(u)``,
    ``y[2k] = Re(b[k])`` and ``y[n-1-2k] = -Im(b[k])``. Cost: one complex butterfly of size
    ``m`` (``5 m log2(m)`` flops) plus ``O(n)``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.fft
    >>> from structlin import butterfly_dct, dct_butterfly_multiply
    >>> pieces = butterfly_dct(8, type=2, norm="ortho")
    >>> pieces.twiddle.shape, pieces.output_index.shape
    ((3, 4, 2, 2), (8,))
    >>> x = np.arange(8.0)
    >>> bool(np.allclose(dct_butterfly_multiply(pieces, x), scipy.fft.dct(x, norm="ortho")))
    True
    """
    return DCTButterfly(*(np.array(a) for a in _pieces_for("dct", n, type, norm)))


def butterfly_dst(n: int, type: int = 2, norm: str | None = None) -> DCTButterfly:
    """Return the butterfly pieces of the DST of ``type`` and size ``n``.

    Parameters
    ----------
    n : int
        Size, a power of two.
    type : {2, 3, 4}, default 2
        The DST type, as in :func:`scipy.fft.dst`.
    norm : {None, "backward", "ortho"}, default None
        As in :func:`scipy.fft.dst`.

    Returns
    -------
    DCTButterfly
        Pieces such that ``dct_butterfly_multiply(pieces, x)`` equals
        ``scipy.fft.dst(x, type, norm=norm)`` (see :class:`DCTButterfly`).

    Raises
    ------
    ValueError
        If ``n`` is not a power of two, ``type`` is not 2, 3 or 4, or ``norm`` is invalid.
    TypeError
        If ``n`` is not an integer.

    Notes
    -----
    With ``S = diag((-1)**j)`` and ``R`` the reversal: ``DST-II = R DCT-II S`` and
    ``DST-III = S DCT-III R``, ``DST-IV = S DCT-IV R``. The signs and the reversals are folded
    into the weights and indices of the DCT pieces (:func:`butterfly_dct`), so a DST costs
    exactly what a DCT costs.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.fft
    >>> from structlin import butterfly_dst, dct_butterfly_multiply
    >>> x = np.arange(4.0)
    >>> y = dct_butterfly_multiply(butterfly_dst(4, type=4), x)
    >>> bool(np.allclose(y, scipy.fft.dst(x, type=4)))
    True
    """
    return DCTButterfly(*(np.array(a) for a in _pieces_for("dst", n, type, norm)))


# (id of the host pieces, dtype, device id) -> the pieces as kernel arrays
_DEVICE_PIECES: dict[tuple, tuple] = {}


def _kernel_pieces(xp, pieces: DCTButterfly, cdt: np.dtype, cache: bool) -> tuple:
    """Return ``(ia, wa, ib, wb, tw, ic, cw)`` as contiguous ``xp`` arrays of dtype ``cdt``.

    Plus ``packed``: True for the library's own pieces (``cache``) with real input weights,
    so that two real rows can share one complex DFT butterfly.
    """
    key = None
    if cache:
        dev = xp.cuda.Device().id if xp is not np else -1
        key = (id(pieces), cdt, dev)
        hit = _DEVICE_PIECES.get(key)
        if hit is not None:
            return hit
    ia = xp.ascontiguousarray(xp.asarray(pieces.input_index[0]), dtype=np.int64)
    wa = xp.ascontiguousarray(xp.asarray(pieces.input_weight[0]), dtype=cdt)
    if bool(np.any(np.asarray(pieces.input_weight[1]) != 0)):
        ib = xp.ascontiguousarray(xp.asarray(pieces.input_index[1]), dtype=np.int64)
        wb = xp.ascontiguousarray(xp.asarray(pieces.input_weight[1]), dtype=cdt)
    else:
        ib = xp.zeros(0, dtype=np.int64)
        wb = xp.zeros(0, dtype=cdt)
    tw = xp.ascontiguousarray(xp.asarray(pieces.twiddle), dtype=cdt)
    ic = xp.ascontiguousarray(xp.asarray(pieces.output_index), dtype=np.int64)
    cw = xp.ascontiguousarray(xp.asarray(pieces.output_weight), dtype=cdt)
    # only for the exact pieces: the separation relies on the butterfly being the DFT, which a
    # user's fine-tuned twiddle need not be
    packed = cache and not bool(np.any(np.asarray(pieces.input_weight).imag != 0))
    out = (ia, wa, ib, wb, tw, ic, cw, packed)
    if key is not None:
        _DEVICE_PIECES[key] = out
    return out


def _check_pieces(pieces: Any, n: int) -> DCTButterfly:
    """Validate user pieces against ``x``'s length ``n``; return them as NumPy arrays."""
    if not isinstance(pieces, tuple) or len(pieces) != 5:
        raise TypeError(
            "pieces must be a DCTButterfly (input_index, input_weight, twiddle, output_index, "
            f"output_weight), got {type(pieces).__name__}"
        )
    ia, wa, tw, ic, cw = (np.asarray(a.get() if hasattr(a, "get") else a) for a in pieces)
    if ia.ndim != 2 or ia.shape[0] != 2:
        raise ValueError(f"input_index must have shape (2, m), got {ia.shape}")
    m = ia.shape[1]
    if log2_exact(m) is None:
        raise ValueError(
            f"input_index must have shape (2, m) with m a power of two, got {ia.shape}"
        )
    check_shape(wa, ia.shape, "input_weight", "the shape of input_index")
    L = log2_exact(m)
    check_shape(tw, (L, m // 2, 2, 2), "twiddle", f"a butterfly of size m = {m}")
    if ic.ndim != 1:
        raise ValueError(f"output_index must be 1-d, shape (n_out,), got {ic.shape}")
    check_shape(cw, ic.shape, "output_weight", "the shape of output_index")
    for name, idx, hi in (("input_index", ia, n), ("output_index", ic, m)):
        if idx.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integers, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= hi):
            raise ValueError(
                f"{name} must hold indices in [0, {hi}), got values in "
                f"[{idx.min()}, {idx.max()}]"
            )
    for name, a in (("input_weight", wa), ("twiddle", tw), ("output_weight", cw)):
        result_dtype(**{name: a})
    return DCTButterfly(ia, wa, tw, ic, cw)


def _real_rows(xp, x, dtype):
    """``x`` as kernel array and its real view ``(batch, n, c)``; also its batch shape."""
    x2, batch = flatten_batch(as_kernel_array(xp, x, dtype))
    b, n = x2.shape
    if dtype.kind == "c":
        return x2.view(real_dtype(dtype)).reshape(b, n, 2), batch, 2
    return x2.reshape(b, n, 1), batch, 1


def _from_real_rows(y3, dtype, batch):
    b, N, c = y3.shape
    y = y3.reshape(b, N * c)
    if c == 2:
        y = y.view(dtype)
    return restore_batch(y, batch)


def _apply(xp, pieces: DCTButterfly, x, dtype, cache: bool):
    cdt = _complex_of(dtype)
    ia, wa, ib, wb, tw, ic, cw, packed = _kernel_pieces(xp, pieces, cdt, cache)
    x3, batch, c = _real_rows(xp, x, dtype)
    k = kernels(xp, "butterfly_special")
    if packed:
        # real gather weights (types 2): two real rows share one complex butterfly
        u = k.gather_packed(x3, ia, wa, ib, wb, ia.shape[0])
        v = butterfly_multiply(tw, u)
        return _from_real_rows(k.take_real_packed(v, ic, cw, x3.shape[0], c), dtype, batch)
    u = k.gather(x3, ia, wa, ib, wb, ia.shape[0])
    v = butterfly_multiply(tw, u)
    return _from_real_rows(k.take_real(v, ic, cw, c), dtype, batch)



def _apply_vjp(xp, pieces: DCTButterfly, x, grad, dtype, cache: bool, want_twiddle: bool):
    """Gradients ``(grad_twiddle or None, grad_x)`` of ``y = T x`` for ``grad`` on ``y``."""
    cdt = _complex_of(dtype)
    ia, wa, ib, wb, tw, ic, cw, _ = _kernel_pieces(xp, pieces, cdt, cache)
    k = kernels(xp, "butterfly_special")
    m = ia.shape[0]
    n = x.shape[-1]
    # a real x only sees the real part of a complex grad
    g = grad.real if (dtype.kind != "c" and grad.dtype.kind == "c") else grad
    g3, batch, c = _real_rows(xp, g, dtype)
    w = k.take_real_transpose(g3, ic, cw, m)
    gtw = None
    if want_twiddle:
        x3, _, _ = _real_rows(xp, x, dtype)
        u = k.gather(x3, ia, wa, ib, wb, m)
        gtw, gu = butterfly_multiply_vjp(tw, u, w)
    else:
        gu = butterfly_multiply(tw, w, transpose=True, conjugate=True)
    gx = k.gather_transpose(xp.ascontiguousarray(gu), ia, wa, ib, wb, n, c)
    return gtw, _from_real_rows(gx, dtype, batch)


def _prepare_x(x, grad=None):
    xp = array_namespace(x=x, grad=grad)
    x = xp.asarray(x)
    dtype = result_dtype(x=x)
    check_min_ndim(x, 1, "x", "(..., n)")
    if grad is not None:
        grad = xp.asarray(grad)
        result_dtype(grad=grad)
    return xp, x, dtype, grad


def _transform(kind: str, x, type, norm):
    xp, x, dtype, _ = _prepare_x(x)
    n = x.shape[-1]
    check_power_of_two(n, "x", "last-axis length n")
    return _apply(xp, _pieces_for(kind, n, type, norm), x, dtype, cache=True)


def _transform_vjp(kind: str, x, grad, type, norm):
    xp, x, dtype, grad = _prepare_x(x, grad)
    n = x.shape[-1]
    check_power_of_two(n, "x", "last-axis length n")
    check_shape(grad, x.shape, "grad", f"the shape of {kind}'s output, which is x's shape")
    return _apply_vjp(xp, _pieces_for(kind, n, type, norm), x, grad, dtype, True, False)[1]


_DCT_DOC = """Return the {title} of ``x`` along its last axis, computed through a butterfly.

    Parameters
    ----------
    x : array_like, shape (..., n)
        Real or complex input; ``n`` a power of two. Any leading batch dimensions.
    type : {{2, 3, 4}}, default 2
        The {upper} type, as in :func:`scipy.fft.{kind}`.
    norm : {{None, "backward", "ortho"}}, default None
        As in :func:`scipy.fft.{kind}`: None/"backward" unnormalized, "ortho" orthonormal.

    Returns
    -------
    ndarray, shape (..., n)
        ``scipy.fft.{kind}(x, type, norm=norm)``, with ``x``'s dtype promoted to floating
        point (float32 and complex64 stay single precision) and ``x``'s array type.

    Raises
    ------
    ValueError
        If ``x`` is 0-d, ``n`` is not a power of two, ``type`` is not 2, 3 or 4 or ``norm`` is
        not None, "backward" or "ortho".
    TypeError
        If ``x`` is not numeric.

    See Also
    --------
    butterfly_{kind} : the pieces used here, for fine-tuning.
    {kind}_vjp : the gradient (the transposed transform).

    Notes
    -----
    Three steps (:class:`DCTButterfly`): a fused gather that applies Makhoul's permutation,
    the DFT's bit reversal and a diagonal in one pass; the complex DFT butterfly
    (:func:`butterfly_dft`, ``5 m log2(m)`` flops for ``m = n``, or ``n/2`` for type 4); a
    fused diagonal-and-real-part pass. A complex ``x`` is transformed as the real rows of its
    real and imaginary parts. For type 2 the gather is real, so two real rows (or the real and
    imaginary parts of a complex row) share one complex butterfly as ``u_a + i u_b``, separated
    afterwards by the DFT's conjugate symmetry: half the butterfly work. Makhoul, IEEE Trans.
    ASSP 28(1), 1980; butterflies: Dao et al. 2019, arXiv:1903.05895.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.fft
    >>> from structlin import {kind}
    >>> x = np.array([1.0, 2.0, 0.0, -1.0])
    >>> bool(np.allclose({kind}(x), scipy.fft.{kind}(x)))
    True
    >>> bool(np.allclose({kind}(x, type=3, norm="ortho"), scipy.fft.{kind}(x, 3, norm="ortho")))
    True
    >>> bool(np.allclose({kind}({kind}(x, 2, norm="ortho"), 3, norm="ortho"), x))
    True
    """

_VJP_DOC = """Return the gradient ``grad_x`` of :func:`{kind}` for the output gradient ``grad``.

    Parameters
    ----------
    x : array_like, shape (..., n)
        The input of the transform (only its shape and dtype matter: the transform is linear).
    grad : array_like, shape (..., n)
        Gradient of a real loss with respect to ``{kind}(x, type, norm)``.
    type, norm
        As for :func:`{kind}`.

    Returns
    -------
    ndarray, shape (..., n)
        ``M^T grad`` with ``M`` the (real) transform matrix, with ``x``'s dtype promoted to
        floating point (the real part when ``x`` is real and ``grad`` complex).

    Raises
    ------
    ValueError
        As for :func:`{kind}`, and if ``grad`` does not have ``x``'s shape.
    TypeError
        If ``x`` or ``grad`` is not numeric, or NumPy and CuPy arrays are mixed.

    Notes
    -----
    The three steps of :func:`{kind}` transposed, on the same kernels: a scatter of the
    conjugated output weights, the adjoint DFT butterfly, a scatter-add of the input weights.
    Same cost as the transform. For type 2, ``M^T`` is the type 3 transform up to a diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.fft
    >>> from structlin import {kind}_vjp
    >>> g = np.array([1.0, 0.0, 2.0, 0.5])
    >>> M = scipy.fft.{kind}(np.eye(4), axis=0)
    >>> bool(np.allclose({kind}_vjp(np.zeros(4), g), M.T @ g))
    True
    """


def dct(x: Any, type: int = 2, norm: str | None = None) -> Any:
    return _transform("dct", x, type, norm)


def dst(x: Any, type: int = 2, norm: str | None = None) -> Any:
    return _transform("dst", x, type, norm)


def dct_vjp(x: Any, grad: Any, type: int = 2, norm: str | None = None) -> Any:
    return _transform_vjp("dct", x, grad, type, norm)


def dst_vjp(x: Any, grad: Any, type: int = 2, norm: str | None = None) -> Any:
    return _transform_vjp("dst", x, grad, type, norm)


dct.__doc__ = _DCT_DOC.format(title="discrete cosine transform", upper="DCT", kind="dct")
dst.__doc__ = _DCT_DOC.format(title="discrete sine transform", upper="DST", kind="dst")
dct_vjp.__doc__ = _VJP_DOC.format(kind="dct")
dst_vjp.__doc__ = _VJP_DOC.format(kind="dst")


def dct_butterfly_multiply(pieces: DCTButterfly, x: Any) -> Any:
    """Return the transform described by ``pieces`` applied to the last axis of ``x``.

    Parameters
    ----------
    pieces : DCTButterfly
        From :func:`butterfly_dct` or :func:`butterfly_dst`, possibly modified (e.g. a
        fine-tuned ``twiddle``); NumPy arrays (moved to the GPU when ``x`` is a CuPy array).
    x : array_like, shape (..., n)
        Real or complex; ``n`` larger than every ``input_index``.

    Returns
    -------
    ndarray, shape (..., n_out)
        ``Re(output_weight * v[output_index])`` with ``v`` the butterfly product of the gathered
        input (see :class:`DCTButterfly`), for real ``x``; ``T(x.real) + 1j T(x.imag)`` for
        complex ``x``. The dtype is ``result_dtype(x)`` (the pieces are rounded to its
        precision).

    Raises
    ------
    ValueError
        If the pieces' shapes do not fit together or an index is out of range.
    TypeError
        If ``pieces`` is not a 5-tuple, an index array is not integer or a dtype not numeric.

    Notes
    -----
    The same three kernels as :func:`dct`; the pieces are validated and converted on every
    call (``O(n)``), unlike the cached pieces of :func:`dct`. Since ``twiddle`` may have been
    changed, every real row gets its own complex butterfly (no packing of two real rows into
    one, which needs the exact DFT).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.fft
    >>> from structlin import butterfly_dct, dct_butterfly_multiply
    >>> pieces = butterfly_dct(4, type=4)
    >>> x = np.eye(4)
    >>> bool(np.allclose(dct_butterfly_multiply(pieces, x), scipy.fft.dct(x, type=4)))
    True
    """
    xp, x, dtype, _ = _prepare_x(x)
    pieces = _check_pieces(pieces, x.shape[-1])
    return _apply(xp, pieces, x, dtype, cache=False)


def dct_butterfly_multiply_vjp(pieces: DCTButterfly, x: Any, grad: Any) -> tuple[Any, Any]:
    """Return ``(grad_twiddle, grad_x)`` of :func:`dct_butterfly_multiply`.

    Parameters
    ----------
    pieces, x
        As for :func:`dct_butterfly_multiply`.
    grad : array_like, shape (..., n_out)
        Gradient of a real loss with respect to the output.

    Returns
    -------
    grad_twiddle : ndarray, shape (log2(m), m//2, 2, 2)
        Gradient for ``pieces.twiddle`` (complex, PyTorch's convention), summed over the batch
        (and over the real and imaginary parts of a complex ``x``).
    grad_x : ndarray, shape (..., n)
        Gradient for ``x``, with ``x``'s dtype promoted to floating point.

    Raises
    ------
    ValueError, TypeError
        As for :func:`dct_butterfly_multiply`, and if ``grad`` has the wrong shape.

    Notes
    -----
    Transposed post-processing, :func:`structlin.butterfly_multiply_vjp` on the gathered input,
    transposed gather: about three times the cost of the product.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_dct, dct_butterfly_multiply_vjp
    >>> pieces = butterfly_dct(8)
    >>> gtw, gx = dct_butterfly_multiply_vjp(pieces, np.ones((2, 8)), np.ones((2, 8)))
    >>> gtw.shape, gx.shape
    ((3, 4, 2, 2), (2, 8))
    """
    xp, x, dtype, grad = _prepare_x(x, grad)
    pieces = _check_pieces(pieces, x.shape[-1])
    n_out = pieces.output_index.shape[0]
    check_shape(grad, (*x.shape[:-1], n_out), "grad", "the shape of the output")
    # the result dtype of the gradient of the twiddle is the twiddle's (complex)
    gtw, gx = _apply_vjp(xp, pieces, x, grad, dtype, False, True)
    tdt = result_dtype(twiddle=pieces.twiddle)
    if tdt.kind != "c":
        gtw = gtw.real
    return xp.ascontiguousarray(gtw, dtype=tdt), gx


# ------------------------------------------------------------------------ circulant/Toeplitz


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


def _circulant_core(xp, tw1, tw2, d, x):
    return butterfly_multiply(tw2, d * butterfly_multiply(tw1, x, increasing_stride=False))


def _circulant_real(xp, tw1, tw2, d, x2, cdt):
    """``C x`` for a real ``C`` and real rows ``x2`` (b, n): two rows per complex product.

    ``C (x_a + i x_b) = C x_a + i C x_b`` because ``C`` is real, so the real and imaginary
    parts of one complex product are the products of two rows: half the butterfly work.
    """
    b, n = x2.shape
    pairs = (b + 1) // 2
    u = xp.zeros((pairs, n), dtype=cdt)
    u.real[...] = x2[0::2]
    u.imag[: b // 2] = x2[1::2]
    y = _circulant_core(xp, tw1, tw2, d, u)
    out = xp.empty((b, n), dtype=x2.dtype)
    out[0::2] = y.real
    out[1::2] = y.imag[: b // 2]
    return out


def _circulant_adjoint(xp, tw1, tw2, d, g):
    """``C^H g = B_1^H diag(conj d) B_2^H g``."""
    h = butterfly_multiply(tw2, g, transpose=True, conjugate=True)
    return butterfly_multiply(tw1, xp.conj(d) * h, increasing_stride=False, transpose=True,
                              conjugate=True)


def _prepare_circulant(c, x, grad=None):
    xp = array_namespace(c=c, x=x, grad=grad)
    c = xp.asarray(c)
    x = xp.asarray(x)
    dtype = result_dtype(c=c, x=x)
    if c.ndim != 1:
        raise ValueError(f"c must be 1-d, shape (n,), got shape {tuple(c.shape)}")
    n = c.shape[0]
    check_power_of_two(n, "c", "length n")
    check_min_ndim(x, 1, "x", "(..., n)")
    if x.shape[-1] != n:
        raise ValueError(
            f"x must have length {n} along its last axis (the length of c), "
            f"got shape {tuple(x.shape)}"
        )
    if grad is not None:
        grad = xp.asarray(grad)
        result_dtype(grad=grad)
        check_shape(grad, x.shape, "grad", "the shape of the product, which is x's shape")
    return xp, c, x, grad, dtype, n


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
        If ``c`` is not 1-d or its length is not a power of two.
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
    xp = array_namespace(c=c)
    c = xp.asarray(c)
    dtype = result_dtype(c=c)
    if c.ndim != 1:
        raise ValueError(f"c must be 1-d, shape (n,), got shape {tuple(c.shape)}")
    n = c.shape[0]
    check_power_of_two(n, "c", "length n")
    cdt = _complex_of(dtype)
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
        If ``c`` is not 1-d, ``n`` is not a power of two or ``x``'s last axis is not ``n``.
    TypeError
        If a dtype is not numeric, or NumPy and CuPy arrays are mixed.

    Notes
    -----
    Three butterfly products (:func:`butterfly_circulant`: the spectrum of ``c``, then
    ``B_2 diag(d) B_1 x``): ``O(n log n)`` per vector instead of ``2 n^2``. When ``c`` and
    ``x`` are real, ``C`` is real and two rows of ``x`` go through one complex product as its
    real and imaginary parts.

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
    xp, c, x, _, dtype, n = _prepare_circulant(c, x)
    cdt = _complex_of(dtype)
    tw1, tw2 = _twiddles_for(xp, n, cdt)
    d = _spectrum(xp, tw1, as_kernel_array(xp, c, cdt), n)
    if dtype.kind != "c":
        x2, batch = flatten_batch(as_kernel_array(xp, x, dtype))
        return restore_batch(_circulant_real(xp, tw1, tw2, d, x2, cdt), batch)
    y = _circulant_core(xp, tw1, tw2, d, as_kernel_array(xp, x, cdt))
    return _real_if(xp, y, dtype)


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
    circulant products ``B_1^H diag(conj d) B_2^H grad`` (with the spectrum of ``c``, resp. of
    each row of ``x``): a few butterfly products, ``O(n log n)`` per vector (PyTorch's
    complex-gradient convention).

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
    xp, c, x, grad, dtype, n = _prepare_circulant(c, x, grad)
    cdt = _complex_of(dtype)
    tw1, tw2 = _twiddles_for(xp, n, cdt)
    # a real product only passes on the real part of the gradient
    g = as_kernel_array(xp, grad.real if dtype.kind != "c" else grad, cdt)
    xc = as_kernel_array(xp, x, cdt)
    dc = _spectrum(xp, tw1, as_kernel_array(xp, c, cdt), n)
    gx = _circulant_adjoint(xp, tw1, tw2, dc, g)
    dx = _spectrum(xp, tw1, xc, n)
    gc2, _ = flatten_batch(_circulant_adjoint(xp, tw1, tw2, dx, g))
    gc = gc2.sum(axis=0)
    return _real_if(xp, gc, result_dtype(c=c)), _real_if(xp, gx, result_dtype(x=x))


def _toeplitz_size(n: int) -> int:
    return 1 if n == 1 else 1 << (2 * n - 2).bit_length()


def _prepare_toeplitz(column, row, x, grad=None):
    xp = array_namespace(column=column, row=row, x=x, grad=grad)
    column = xp.asarray(column)
    row = xp.asarray(row)
    x = xp.asarray(x)
    dtype = result_dtype(column=column, row=row, x=x)
    if column.ndim != 1 or column.shape[0] < 1:
        raise ValueError(f"column must be 1-d and non-empty, shape (n,), got shape "
                         f"{tuple(column.shape)}")
    n = column.shape[0]
    check_shape(row, (n,), "row", "the length of column")
    check_min_ndim(x, 1, "x", "(..., n)")
    if x.shape[-1] != n:
        raise ValueError(f"x must have length {n} along its last axis (the length of column), "
                         f"got shape {tuple(x.shape)}")
    if grad is not None:
        grad = xp.asarray(grad)
        result_dtype(grad=grad)
        check_shape(grad, x.shape, "grad", "the shape of the product, which is x's shape")
    return xp, column, row, x, grad, dtype, n


def _embed(xp, column, row, n, M, cdt):
    cc = xp.zeros(M, dtype=cdt)
    cc[:n] = column
    if n > 1:
        cc[M - n + 1:] = row[1:][::-1]
    return cc


def _pad(xp, x, M, cdt):
    xpad = xp.zeros((*x.shape[:-1], M), dtype=cdt)
    xpad[..., : x.shape[-1]] = x
    return xpad


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
        If ``column`` is not 1-d and non-empty or ``row`` does not have its length.
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
    xp = array_namespace(column=column, row=row)
    column = xp.asarray(column)
    row = xp.asarray(row)
    dtype = result_dtype(column=column, row=row)
    if column.ndim != 1 or column.shape[0] < 1:
        raise ValueError(f"column must be 1-d and non-empty, shape (n,), got shape "
                         f"{tuple(column.shape)}")
    n = column.shape[0]
    check_shape(row, (n,), "row", "the length of column")
    M = _toeplitz_size(n)
    cdt = _complex_of(dtype)
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
        If ``column`` is not 1-d and non-empty, ``row`` or ``x``'s last axis does not have its
        length.
    TypeError
        If a dtype is not numeric, or NumPy and CuPy arrays are mixed.

    Notes
    -----
    A circulant product of size ``M`` (the smallest power of two ``>= 2n - 1``) on ``x`` padded
    with zeros (:func:`butterfly_toeplitz`): ``O(M log M)`` per vector, ``M < 4n``.

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
    xp, column, row, x, _, dtype, n = _prepare_toeplitz(column, row, x)
    M = _toeplitz_size(n)
    cdt = _complex_of(dtype)
    tw1, tw2 = _twiddles_for(xp, M, cdt)
    d = _spectrum(xp, tw1, _embed(xp, column, row, n, M, cdt), M)
    if dtype.kind != "c":
        x2, batch = flatten_batch(_pad(xp, x, M, dtype))
        y = _circulant_real(xp, tw1, tw2, d, x2, cdt)
        return xp.ascontiguousarray(restore_batch(y, batch)[..., :n])
    y = _circulant_core(xp, tw1, tw2, d, _pad(xp, x, M, cdt))
    return _real_if(xp, y[..., :n], dtype)


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
    The VJP of the embedding circulant (:func:`circulant_multiply_vjp`) on padded ``x`` and
    ``grad``, with the circulant's column gradient split back into ``column`` and ``row``.

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
    xp, column, row, x, grad, dtype, n = _prepare_toeplitz(column, row, x, grad)
    M = _toeplitz_size(n)
    cdt = _complex_of(dtype)
    cc = _embed(xp, column, row, n, M, cdt)
    g = grad if dtype.kind == "c" else grad.real
    gcc, gxp = circulant_multiply_vjp(cc, _pad(xp, x.astype(cdt), M, cdt),
                                      _pad(xp, g.astype(cdt), M, cdt))
    gcol = gcc[:n]
    grow = xp.zeros(n, dtype=gcc.dtype)
    if n > 1:
        grow[1:] = gcc[M - n + 1:][::-1]
    return (_real_if(xp, gcol, result_dtype(column=column)),
            _real_if(xp, grow, result_dtype(row=row)),
            _real_if(xp, gxp[..., :n], result_dtype(x=x)))
