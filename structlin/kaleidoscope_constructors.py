"""Closed-form K-matrices: identity, diagonal, DFT, circulant, Toeplitz, Fastfood, products.

Each constructor returns a twiddle in the convention of :mod:`structlin.kaleidoscope`
(``K = B(tw[0,0]) B(tw[0,1])^H ... B(tw[w-1,0]) B(tw[w-1,1])^H``, ``x`` meets
``B(tw[w-1,1])^H`` first) with the width stated in its docstring, built from the closed-form
butterflies of :mod:`structlin.dft_hadamard` and the Beneš routing of
:mod:`structlin.kaleidoscope_routing`. Two facts do the work:

- a diagonal scaling folds into the first or last applied factor of a butterfly (it scales the
  columns or rows of that factor's 2x2 blocks);
- ``B(t)^H`` applies the conjugate-transposed blocks of ``t`` in decreasing stride, so a
  decreasing-stride butterfly with applied blocks ``A`` is ``B(t)^H`` with
  ``t = conj(A^T)`` blockwise.

Reference: T. Dao, N. Sohoni, A. Gu, M. Eichhorn, A. Blonder, M. Leszczynski, A. Rudra, C. Ré,
"Kaleidoscope: An Efficient, Learnable Representation For All Structured Linear Maps",
ICLR 2020, arXiv:2012.14966.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._backend import kernels
from structlin._validate import (
    check_bool,
    check_choice,
    check_dtype,
    prepare,
)
from structlin.butterfly import bit_reversal_permutation
from structlin.dft_hadamard import (
    MAX_TRANSFORM_SIZE,
    _check_transform_size,
    _dft_scale,
)
from structlin.kaleidoscope import check_kaleidoscope_twiddle
from structlin.kaleidoscope_routing import _check_permutation, _switch_twiddle

__all__ = [
    "kaleidoscope_circulant",
    "kaleidoscope_dft",
    "kaleidoscope_diagonal",
    "kaleidoscope_fastfood",
    "kaleidoscope_identity",
    "kaleidoscope_product",
    "kaleidoscope_toeplitz",
]

_COMPLEX = (np.dtype(np.complex64), np.dtype(np.complex128))


def _identity_butterfly(L: int, dtype) -> np.ndarray:
    t = np.zeros((L, (1 << L) // 2, 2, 2), dtype=dtype)
    t[..., 0, 0] = 1
    t[..., 1, 1] = 1
    return t


def _adjoint_blocks(a: np.ndarray) -> np.ndarray:
    """``t`` with ``B(t)^H`` = the decreasing-stride butterfly of applied blocks ``a``."""
    return np.ascontiguousarray(np.conj(np.swapaxes(a, -1, -2)))


def _check_vector(v: Any, name: str, minimum: int = 2) -> tuple[Any, int]:
    p = prepare(**{name: v})
    a = getattr(p, name)
    if p.xp is not np:
        raise TypeError(f"{name} must be a NumPy array or a list: the K-matrix constructors "
                        "build host twiddles (pass cupy.asnumpy and move the result after)")
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, shape (n,), got shape {a.shape}")
    n = a.shape[0]
    if n < minimum:
        raise ValueError(f"{name} must have a length of at least {minimum}, got {n}")
    if not bool(np.isfinite(a).all()):
        raise ValueError(f"{name} must be finite (no NaN or infinity)")
    return a, n


def kaleidoscope_identity(n: int, *, dtype: Any = np.float64) -> np.ndarray:
    """Return the width-1 twiddle of the identity K-matrix of size ``n``.

    Parameters
    ----------
    n : int
        A power of two, at most ``2**24``.
    dtype : dtype, default float64
        float32, float64, complex64 or complex128.

    Returns
    -------
    ndarray, shape (1, 2, log2(n), n//2, 2, 2)
        Every block ``[[1, 0], [0, 1]]``; width 1.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_identity, kaleidoscope_to_dense
    >>> bool(np.array_equal(kaleidoscope_to_dense(kaleidoscope_identity(8)), np.eye(8)))
    True
    """
    L = _check_transform_size(n)
    dtype = check_dtype(dtype, "dtype")
    return _identity_butterfly(L, dtype)[None, None].repeat(2, axis=1).copy()


def kaleidoscope_diagonal(d: Any, *, dtype: Any = None) -> np.ndarray:
    """Return the width-1 twiddle of ``diag(d)``.

    Parameters
    ----------
    d : array_like, shape (n,)
        The diagonal, finite; ``n`` a power of two, ``2 <= n <= 2**24``.
    dtype : dtype, optional
        The twiddle's dtype (default: ``d``'s, promoted to floating point).

    Returns
    -------
    ndarray, shape (1, 2, log2(n), n//2, 2, 2)
        Width 1: ``tw[0, 1]`` the identity, ``tw[0, 0]`` the identity with its last applied
        factor (stride ``n/2``) scaling the rows: block ``j`` is ``diag(d[j], d[j + n/2])``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_diagonal, kaleidoscope_to_dense
    >>> d = np.array([1.0, -2.0, 3.0, 0.5])
    >>> bool(np.array_equal(kaleidoscope_to_dense(kaleidoscope_diagonal(d)), np.diag(d)))
    True
    """
    a, n = _check_vector(d, "d")
    L = _check_transform_size(n, "d", "length n")
    dt = check_dtype(np.result_type(a.dtype, np.float32) if dtype is None else dtype, "dtype")
    tw = kaleidoscope_identity(n, dtype=dt)
    h = n // 2
    tw[0, 0, L - 1, :, 0, 0] = a[:h]
    tw[0, 0, L - 1, :, 1, 1] = a[h:]
    return tw


def _dft_network(n: int, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """Applied blocks ``(D, I)``, each ``(L, n//2, 2, 2)``, of ``F = I-pass D-pass``: ``D``
    applied in decreasing stride, then ``I`` in increasing stride (see
    :func:`kaleidoscope_dft`). ``sign`` is the sign of the exponent of the roots of unity."""
    L = n.bit_length() - 1
    D = np.broadcast_to(np.eye(2, dtype=np.complex128), (L, n // 2, 2, 2)).copy()
    I = D.copy()
    b = np.arange(n // 2, dtype=np.int64)  # block index of a factor
    for d in range(L + 1):
        # depth d: 2**d sub-networks on the low Lp bits, each (F_m kron I_{2**r}) X_mask
        # with m = 2**(Lp - r), r = d, and X_mask flipping interleave bits (bit reversal of
        # the sub-network's d prefix bits)
        Lp, r = L - d, d
        if Lp - r <= 1:
            if Lp - r == 1:  # F_2 on bit r
                D[r] = [[1, 1], [1, -1]]
            masks = bit_reversal_permutation(1 << d)  # a sub-network's flips, by prefix
            for q in range(r):  # the flips, in the (otherwise identity) factors of bit q
                p = ((b >> q) << (q + 1)) | (b & ((1 << q) - 1))
                flip = ((masks[p >> Lp] >> q) & 1).astype(bool)
                D[q, flip] = [[0, 1], [1, 0]]
            break
        k = Lp - 1  # the sub-networks' outer factor, first (D) and last (I)
        j = b & ((1 << k) - 1)  # position in the top half of the sub-network
        t = j >> r  # the time index below the top bit; t & 1 is the time bit converted last
        w = np.exp(sign * 2j * np.pi * t / (1 << (Lp - r)))
        # first: y = v_j + v_{j+half}, z = w (v_j - v_{j+half}); y goes to the top half when
        # t is even, z when t is odd
        s_in = np.empty((n // 2, 2, 2), dtype=np.complex128)
        s_in[:, 0, 0], s_in[:, 0, 1], s_in[:, 1, 0], s_in[:, 1, 1] = 1, 1, w, -w
        odd = (t & 1).astype(bool)
        s_in[odd] = s_in[odd][:, ::-1, :]
        # last: the two halves hold A_0, A_1 (time bit 0, 1) in the order set by bit r;
        # outputs A_0 + w2 A_1 (top) and A_0 - w2 A_1 (bottom)
        w2 = np.exp(sign * 2j * np.pi * (j >> (r + 1)) / (1 << (Lp - r - 1)))
        s_out = np.empty((n // 2, 2, 2), dtype=np.complex128)
        s_out[:, 0, 0], s_out[:, 0, 1], s_out[:, 1, 0], s_out[:, 1, 1] = 1, w2, 1, -w2
        swapped = ((j >> r) & 1).astype(bool)
        s_out[swapped] = s_out[swapped][:, :, ::-1]
        D[k] = s_in
        I[k] = s_out
    return D, I


def kaleidoscope_dft(
    n: int, *, inverse: bool = False, norm: str | None = "backward", dtype: Any = np.complex128
) -> np.ndarray:
    """Return the twiddle of the DFT matrix (or its inverse) as a K-matrix of width 1.

    Parameters
    ----------
    n : int
        A power of two, at most ``2**24``.
    inverse : bool, default False
        False: ``numpy.fft.fft``; True: ``numpy.fft.ifft``.
    norm : {None, "backward", "ortho", "forward"}, default "backward"
        As in :func:`numpy.fft.fft`.
    dtype : complex64 or complex128, default complex128
        Computed in complex128 and rounded once.

    Returns
    -------
    ndarray, shape (1, 2, log2(n), n//2, 2, 2)
        ``kaleidoscope_multiply(tw, x)`` equals ``numpy.fft.fft(x, norm=norm)`` (``ifft`` when
        ``inverse``) up to rounding.

    Notes
    -----
    ``F_n = B(tw[0, 0]) B(tw[0, 1])^H``: one decreasing-stride butterfly, then one
    increasing-stride butterfly, the shape of a Beneš network. The butterflies compute the
    radix-2 decimation-in-frequency FFT and route its bit-reversed output to natural order
    at the same time. By induction on the network's recursive structure (outer factor of
    stride ``n/2`` first and last, two half-size networks in between), with the problem
    ``(F_m kron I_r) X``: the first factor converts the top time bit into the lowest frequency
    bit (``y = v_j + v_{j+n/2}``, ``z = w^j (v_j - v_{j+n/2})``) and sends ``y`` to the top
    half when the lowest time bit ``t_0`` of ``j`` is 0, ``z`` otherwise; each half is then the
    same problem on half the size with one more interleaved bit (the bottom half's read with
    that bit flipped, ``X``); the last factor converts ``t_0`` into the highest frequency bit,
    its two inputs sitting at positions ``k`` and ``k + n/2``. The recursion stops at
    ``F_2`` or ``F_1`` after ``log2(n) / 2`` levels; the flips ``X`` become swaps in the
    factors of the interleaved bits. So ``F_n`` has width 1, as gradient fitting also finds
    (:func:`kaleidoscope_fit`); ``K x`` costs two butterflies, ``O(n log n)``.

    See Also
    --------
    structlin.butterfly_dft : the DIT butterfly alone (taking bit-reversed input).
    kaleidoscope_fit : reaches this width from a random start.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_dft, kaleidoscope_multiply
    >>> x = np.arange(8.0)
    >>> tw = kaleidoscope_dft(8, norm="ortho")
    >>> tw.shape
    (1, 2, 3, 4, 2, 2)
    >>> bool(np.allclose(kaleidoscope_multiply(tw, x), np.fft.fft(x, norm="ortho")))
    True
    """
    L = _check_transform_size(n)
    inverse = check_bool(inverse, "inverse")
    norm = check_choice(norm, "norm", (None, "backward", "ortho", "forward")) or "backward"
    dtype = check_dtype(dtype, "dtype", allowed=_COMPLEX)
    D, I = _dft_network(n, 1.0 if inverse else -1.0)
    if L:
        D[L - 1] *= _dft_scale(n, inverse, norm)
    out = np.empty((1, 2, L, n // 2, 2, 2), dtype=dtype)
    out[0, 0] = I
    out[0, 1] = _adjoint_blocks(D)
    return out


def kaleidoscope_circulant(c: Any, *, dtype: Any = None) -> np.ndarray:
    """Return the width-1 twiddle of the circulant ``C[i, j] = c[(i - j) mod n]``.

    Parameters
    ----------
    c : array_like, shape (n,)
        First column (``scipy.linalg.circulant(c)``), finite, real or complex; ``n`` a power
        of two, ``2 <= n <= 2**24``.
    dtype : complex64 or complex128, optional
        Default: the complex dtype of ``c``'s precision.

    Returns
    -------
    ndarray, shape (1, 2, log2(n), n//2, 2, 2)
        Width 1, complex: ``kaleidoscope_to_dense(tw)`` equals ``scipy.linalg.circulant(c)``
        up to rounding (the imaginary part is rounding noise for a real ``c``).

    Notes
    -----
    ``C = B_2 diag(P F c / n) B_1`` (:func:`structlin.butterfly_circulant`): ``B_1`` the
    decimation-in-frequency DFT (decreasing stride, bit-reversed output) and ``B_2`` the
    decimation-in-time inverse DFT (bit-reversed input). ``B_1`` with the diagonal folded into
    its last applied factor (stride 1) is ``B(tw[0, 1])^H``; ``tw[0, 0]`` is ``B_2``'s twiddle.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import circulant
    >>> from structlin import kaleidoscope_circulant, kaleidoscope_to_dense
    >>> c = np.array([1.0, 2.0, 0.0, -1.0])
    >>> bool(np.allclose(kaleidoscope_to_dense(kaleidoscope_circulant(c)), circulant(c)))
    True
    """
    from structlin.circulant import butterfly_circulant

    a, n = _check_vector(c, "c")
    _check_transform_size(n, "c", "length n")
    if dtype is None:
        dtype = np.result_type(a.dtype, np.complex64)
    dtype = check_dtype(dtype, "dtype", allowed=_COMPLEX)
    first, d, second = butterfly_circulant(a.astype(np.complex128))
    applied = first.copy()
    applied[0, :, 0, :] *= d[0::2, None]
    applied[0, :, 1, :] *= d[1::2, None]
    L = first.shape[0]
    out = np.empty((1, 2, L, n // 2, 2, 2), dtype=dtype)
    out[0, 0] = second
    out[0, 1] = _adjoint_blocks(applied)
    return out


def kaleidoscope_toeplitz(c: Any, r: Any = None, *, dtype: Any = None) -> np.ndarray:
    """Return the width-1 twiddle of the circulant of size ``M`` that embeds ``toeplitz(c, r)``.

    Parameters
    ----------
    c : array_like, shape (n,)
        First column of ``T`` (``T[i, j] = c[i - j]`` for ``i >= j``), finite, ``n >= 1``,
        ``n <= 2**23``.
    r : array_like, shape (n,), optional
        First row (``T[i, j] = r[j - i]`` for ``j > i``; ``r[0]`` ignored). Default
        ``conj(c)``, as :func:`scipy.linalg.toeplitz`.
    dtype : complex64 or complex128, optional
        Default: the complex dtype of the inputs' precision.

    Returns
    -------
    ndarray, shape (1, 2, log2(M), M//2, 2, 2)
        ``M`` the smallest power of two ``>= max(2n - 1, 2)`` (``M = 2n`` when ``n`` is a
        power of two). The K-matrix is the circulant of first column ``[c, 0, ..., 0,
        r[n-1], ..., r[1]]``, whose top-left ``n x n`` block is ``T``. To apply ``T``: pad
        ``x`` with zeros to length ``M`` (:func:`structlin.kaleidoscope_pad`) and keep the
        first ``n`` outputs:
        ``kaleidoscope_multiply(tw, kaleidoscope_pad(x, M))[..., :n] == T @ x``.
        Width 1.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import toeplitz
    >>> from structlin import kaleidoscope_to_dense, kaleidoscope_toeplitz
    >>> c, r = np.array([1.0, 2.0, 3.0]), np.array([0.0, -1.0, 5.0])
    >>> tw = kaleidoscope_toeplitz(c, r)
    >>> tw.shape
    (1, 2, 3, 4, 2, 2)
    >>> bool(np.allclose(kaleidoscope_to_dense(tw)[:3, :3], toeplitz(c, r)))
    True
    """
    prepare(c=c, r=r, optional=("r",))  # a CuPy array among NumPy ones is refused first
    a, n = _check_vector(c, "c", minimum=1)
    if r is None:
        b = np.conj(a)
    else:
        b, nr = _check_vector(r, "r", minimum=1)
        if nr != n:
            raise ValueError(f"r must have the length of c ({n}), got {nr}")
    if n > MAX_TRANSFORM_SIZE // 2:
        raise ValueError(f"c must have a length of at most {MAX_TRANSFORM_SIZE // 2}, got {n}")
    M = max(2, 1 << (2 * n - 2).bit_length()) if n > 1 else 2
    if dtype is None:
        dtype = np.result_type(a.dtype, b.dtype, np.complex64)
    col = np.zeros(M, dtype=np.complex128)
    col[:n] = a
    if n > 1:
        col[M - n + 1:] = b[1:][::-1]
    return kaleidoscope_circulant(col, dtype=dtype)


def kaleidoscope_product(*twiddles: Any) -> np.ndarray:
    """Return the twiddle of the product ``K_1 K_2 ... K_m`` of K-matrices of one size.

    Parameters
    ----------
    *twiddles : array_like, each of shape (w_i, 2, L, n//2, 2, 2)
        At least one; one ``n`` for all.

    Returns
    -------
    ndarray, shape (w_1 + ... + w_m, 2, L, n//2, 2, 2)
        The units concatenated (``x`` meets the last twiddle's first): the widths add up.
        dtype: the promotion of the inputs' dtypes.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_product, kaleidoscope_to_dense, random_kaleidoscope
    >>> a, b = random_kaleidoscope(4, 1, rng=0), random_kaleidoscope(4, 2, rng=1)
    >>> ab = kaleidoscope_product(a, b)
    >>> ab.shape[0]
    3
    >>> Ka, Kb = kaleidoscope_to_dense(a), kaleidoscope_to_dense(b)
    >>> bool(np.allclose(kaleidoscope_to_dense(ab), Ka @ Kb))
    True
    """
    if not twiddles:
        raise TypeError("kaleidoscope_product needs at least one twiddle")
    # prepare takes identifiers: twiddles_0, twiddles_1, ... stand for twiddles[0], ...
    names = {f"twiddles_{i}": t for i, t in enumerate(twiddles)}
    p = prepare(**names)
    arrs = [getattr(p, k) for k in names]
    n0 = None
    for k, a in zip(names, arrs, strict=True):
        _, n = check_kaleidoscope_twiddle(a)
        if n0 is None:
            n0 = n
        elif n != n0:
            raise ValueError(f"{k} has size {n}, twiddles_0 has {n0}: one size for all")
    return p.xp.concatenate([a.astype(p.dtype, copy=False) for a in arrs], axis=0)


def kaleidoscope_fastfood(
    d1: Any, perm: Any, d2: Any, *, dtype: Any = np.float64
) -> np.ndarray:
    """Return the twiddle of the Fastfood-style product ``H diag(d1) P H diag(d2)``.

    Parameters
    ----------
    d1, d2 : array_like, shape (n,)
        Diagonals (``d2`` applied first), finite real; ``n`` a power of two, ``n >= 2``.
    perm : array_like of int, shape (n,)
        The permutation ``P x = x[perm]``.
    dtype : dtype, default float64
        float32, float64, complex64 or complex128.

    Returns
    -------
    ndarray, shape (2, 2, log2(n), n//2, 2, 2)
        Width 2 (a bound proved by construction, not claimed minimal): ``K = B(a) B(c)^H
        B(e) B(f)^H`` with ``B(f)^H = H diag(d2)``, ``B(c)^H B(e) = P`` and ``B(a) = H
        diag(d1)``; ``H`` the unnormalized Sylvester Hadamard matrix
        (``scipy.linalg.hadamard``), a butterfly with every block ``[[1, 1], [1, -1]]``.

    Notes
    -----
    Le, Sarlós, Smola's Fastfood ``S H G P H B`` without the final scaling ``S`` (pass
    ``d1 = g``, ``d2 = b``; scale the output for ``S``).

    Why width 2: a K-matrix alternates increasing-stride butterflies ``B`` and
    decreasing-stride ones ``B^H``, and ``H`` is both (``H = H^T``, its factors commute), so
    ``H diag(d1)`` is a ``B`` (``d1`` folded into the columns of its first applied factor) and
    ``H diag(d2) = (diag(d2)^* H)^H`` a ``B^H`` (``conj(d2)`` folded into the rows of the last
    applied factor). ``P`` must then be a ``B^H B``-shaped network, strides ``1, ..., n/2``
    then ``n/2, ..., 1``: the Beneš routing of ``R P R`` (``R`` the bit reversal) gives the
    usual ``n/2, ..., 1, 1, ..., n/2`` network of ``R P R``, and conjugating each switch
    column by ``R`` moves a switch on bit ``k`` to bit ``L - 1 - k``, which reverses the
    strides. The four butterflies fill two ``B B^H`` units.

    References
    ----------
    .. [1] Q. Le, T. Sarlós, A. Smola, "Fastfood: Approximating kernel expansions in
       loglinear time", ICML 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import hadamard
    >>> from structlin import kaleidoscope_fastfood, kaleidoscope_to_dense
    >>> d1, d2, perm = np.array([1.0, -1, 2, 1]), np.array([1.0, 1, -1, 3]), [2, 0, 3, 1]
    >>> H, P = hadamard(4), np.eye(4)[[2, 0, 3, 1]]
    >>> K = kaleidoscope_to_dense(kaleidoscope_fastfood(d1, perm, d2))
    >>> bool(np.allclose(K, H @ np.diag(d1) @ P @ H @ np.diag(d2)))
    True
    """
    dtype = check_dtype(dtype, "dtype")
    prepare(d1=d1, d2=d2)  # a CuPy array among NumPy ones is refused first
    a1, n = _check_vector(d1, "d1")
    a2, n2 = _check_vector(d2, "d2")
    if n2 != n:
        raise ValueError(f"d2 must have the length of d1 ({n}), got {n2}")
    L = _check_transform_size(n, "d1", "length n")
    p = _check_permutation(perm)
    if p.shape[0] != n:
        raise ValueError(f"perm must have the length of d1 ({n}), got {p.shape[0]}")
    out = np.empty((2, 2, L, n // 2, 2, 2), dtype=dtype)
    h = np.ones((L, n // 2, 2, 2), dtype=dtype)
    h[..., 1, 1] = -1
    out[0, 0] = h  # H diag(d1): d1 on the columns of the first applied factor
    out[0, 0, 0, :, :, 0] *= a1[0::2, None]
    out[0, 0, 0, :, :, 1] *= a1[1::2, None]
    out[1, 1] = h  # (conj(d2) H)^H: conj(d2) on the rows of the last applied factor
    out[1, 1, L - 1, :, 0, :] *= np.conj(a2[: n // 2, None])
    out[1, 1, L - 1, :, 1, :] *= np.conj(a2[n // 2 :, None])
    r = bit_reversal_permutation(n)
    sw = kernels(np, "kaleidoscope_routing").route(r[p[r]])
    # R P R = (increasing: sw[0]) (decreasing: sw[1]); conjugated by R, sw[1] becomes the
    # increasing network met first (e) and sw[0] the decreasing one met second (c^H)
    ec = _switch_twiddle(np.stack([_reversed_switch_columns(sw[1], r),
                                   _reversed_switch_columns(sw[0], r)]), dtype)[0]
    out[1, 0], out[0, 1] = ec[0], ec[1]
    return out


def _reversed_switch_columns(cols: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Switch settings ``(L, n//2)`` conjugated by the bit reversal ``R``: the switch of
    factor ``k`` on the pair ``(i, i + 2**k)`` becomes the switch of factor ``L - 1 - k`` on
    ``(R i, R i + 2**(L-1-k))`` (``R i`` has bit ``L - 1 - k`` clear, so the pair keeps its
    orientation); ``r`` is :func:`bit_reversal_permutation` of ``n``."""
    L, half = cols.shape
    out = np.empty_like(cols)
    j = np.arange(half, dtype=np.int64)
    for k in range(L):
        lo = r[((j >> k) << (k + 1)) | (j & ((1 << k) - 1))]
        kr = L - 1 - k
        out[kr, ((lo >> (kr + 1)) << kr) | (lo & ((1 << kr) - 1))] = cols[k]
    return out

