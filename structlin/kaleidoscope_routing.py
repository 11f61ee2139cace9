"""Every permutation as a K-matrix of width 1: Beneš-network routing (the looping algorithm).

A K-matrix of width 1, ``K = B(tw[0, 0]) B(tw[0, 1])^H`` (see :mod:`structlin.kaleidoscope`),
applies to ``x`` the blocks of ``tw[0, 1]`` (conjugate-transposed) in decreasing stride
``n/2, ..., 2, 1``, then those of ``tw[0, 0]`` in increasing stride ``1, 2, ..., n/2``. With
every block the identity ``[[1, 0], [0, 1]]`` or the swap ``[[0, 1], [1, 0]]`` (both their own
conjugate transpose), that is a Beneš network of ``2 L - 1`` switch columns plus one redundant
stride-1 column (left at the identity), and a Beneš network realizes every permutation.

Reference: T. Dao, N. Sohoni, A. Gu, M. Eichhorn, A. Blonder, M. Leszczynski, A. Rudra, C. Ré,
"Kaleidoscope: An Efficient, Learnable Representation For All Structured Linear Maps",
ICLR 2020, arXiv:2012.14966; V. E. Beneš, "Mathematical Theory of Connecting Networks and
Telephone Traffic", Academic Press, 1965; A. Waksman, "A permutation network", J. ACM 15(1),
1968.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._backend import kernels
from structlin._validate import as_array, check_bool, check_dtype, check_int

__all__ = ["kaleidoscope_pad", "kaleidoscope_permutation"]

#: the largest permutation length routed (``2**24``): the width-1 twiddle of that size holds
#: ``2 * 24 * 2**23`` float64 blocks of 2x2 (12.9 GB)
MAX_ROUTING_SIZE = 1 << 24


def _check_permutation(perm: Any, name: str = "perm") -> np.ndarray:
    """Return ``perm`` as a new int64 host array after checking it is a permutation of
    ``range(len(perm))``; raise ValueError naming the first repeated and missing index."""
    if type(perm).__module__.split(".")[0] == "cupy":
        # the routing is a sequential walk on the host: refused rather than moved silently
        raise TypeError(
            f"{name} must be a NumPy array or a list: the Beneš routing runs on the host "
            "(no GPU kernel); pass cupy.asnumpy(perm) and move the twiddle to the GPU after"
        )
    p = as_array(np, perm, name)
    if p.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype (it holds indices), got {p.dtype}")
    if p.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (a permutation), got shape {p.shape}")
    m = p.shape[0]
    if m < 1 or m > MAX_ROUTING_SIZE:
        raise ValueError(
            f"{name} must have a length between 1 and {MAX_ROUTING_SIZE} (2**24), got {m}")
    bad = np.flatnonzero((p < 0) | (p >= m))
    if bad.size:
        raise ValueError(
            f"{name} is not a permutation of range({m}): {name}[{bad[0]}] = {p[bad[0]]} is "
            "out of range")
    p = p.astype(np.int64)  # a new array: the caller's is never touched
    counts = np.bincount(p, minlength=m)
    if counts.max() > 1:
        # the first index met a second time, scanning perm from the start
        order = np.argsort(p, kind="stable")
        srt = p[order]
        second = order[1:][srt[1:] == srt[:-1]]
        first = int(p[second.min()])
        missing = int(np.flatnonzero(counts == 0)[0])
        raise ValueError(
            f"{name} is not a permutation of range({m}): index {first} is repeated and index "
            f"{missing} is missing")
    return p


def _switch_twiddle(sw: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The width-1 K-matrix twiddle of the switch settings ``sw`` (2, L, n//2) uint8."""
    _, L, half = sw.shape
    tw = np.zeros((1, 2, L, half, 2, 2), dtype=dtype)
    s = sw.astype(dtype)
    t = 1 - s
    tw[0, :, :, :, 0, 0] = t
    tw[0, :, :, :, 1, 1] = t
    tw[0, :, :, :, 0, 1] = s
    tw[0, :, :, :, 1, 0] = s
    return tw


def kaleidoscope_permutation(
    perm: Any, *, inverse: bool = False, dtype: Any = np.float64
) -> np.ndarray:
    """Return the width-1 K-matrix twiddle of the permutation ``x -> x[..., perm]``.

    Parameters
    ----------
    perm : array_like of int, shape (m,)
        A permutation of ``range(m)``, ``1 <= m <= 2**24`` (a list, a tuple or a NumPy
        integer array; CuPy arrays are refused: the routing runs on the host).
    inverse : bool, default False
        False: route ``perm``; True: route its inverse (``x -> x[..., argsort(perm)]``).
    dtype : dtype, default float64
        float32, float64, complex64 or complex128: the twiddle's dtype (entries 0 and 1).

    Returns
    -------
    ndarray, shape (1, 2, L, n//2, 2, 2)
        ``n = 2**L`` the smallest power of two ``>= m``. Every block is ``[[1, 0], [0, 1]]`` or
        ``[[0, 1], [1, 0]]``, and ``kaleidoscope_multiply(tw, x)`` equals ``x[..., perm]``
        exactly for ``x`` of shape ``(..., n)`` when ``m == n``. When ``m`` is not a power of
        two, ``perm`` is embedded in a permutation of ``range(n)`` with the fixed points
        ``m, ..., n-1``: pad ``x`` with :func:`kaleidoscope_pad` (``x -> (x, 0, ..., 0)``) and
        keep the first ``m`` outputs, ``kaleidoscope_multiply(tw, kaleidoscope_pad(x, n))[...,
        :m] == x[..., perm]`` (the inverse of the embedding is that slice).

    Raises
    ------
    ValueError
        If ``perm`` is not one-dimensional, has length 0 or above ``2**24``, holds an index
        out of range, or is not a permutation (the message names the first repeated index,
        the first met twice scanning from the start, and the smallest missing one).
    TypeError
        If ``perm`` is not an integer array (floats and bools are refused), is a CuPy array,
        or ``dtype`` is not one of the four.

    See Also
    --------
    structlin.kaleidoscope_multiply : applies the twiddle.
    structlin.kaleidoscope_product : composes K-matrices (widths add up).

    Notes
    -----
    The network applied to ``x`` is the Beneš network: switch columns of stride ``n/2, n/4,
    ..., 1`` (the blocks of ``tw[0, 1]``, decreasing stride) then ``1, 2, ..., n/2`` (those
    of ``tw[0, 0]``); the second stride-1 column is redundant and left at the identity. The
    outer columns of stride ``n/2`` split the problem into two halves routed recursively;
    the *looping algorithm* chooses them: output ``j`` takes its input through the upper
    half, that input's switch partner goes through the lower half, the output it is meant
    for forces its switch partner through the upper half, and so on until the cycle closes.
    The recursion runs level by level in a compiled Numba kernel (through the kernel
    contract of ``structlin._cpu.kaleidoscope_routing``), ``O(n log n)`` time and ``O(n)``
    scratch: about 0.02 s for ``n = 2**16`` and 1.3 s for ``n = 2**20`` on a laptop-class
    core for a random permutation. Building the twiddle itself writes ``4 n log2(n)``
    entries.

    References
    ----------
    .. [1] T. Dao et al., "Kaleidoscope: An Efficient, Learnable Representation For All
       Structured Linear Maps", ICLR 2020, arXiv:2012.14966.
    .. [2] A. Waksman, "A permutation network", J. ACM 15(1):159-163, 1968.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_multiply, kaleidoscope_permutation
    >>> perm = [3, 0, 7, 5, 1, 6, 2, 4]
    >>> tw = kaleidoscope_permutation(perm)
    >>> tw.shape
    (1, 2, 3, 4, 2, 2)
    >>> x = np.arange(8.0) * 10
    >>> kaleidoscope_multiply(tw, x)
    array([30.,  0., 70., 50., 10., 60., 20., 40.])
    >>> kaleidoscope_multiply(kaleidoscope_permutation(perm, inverse=True), x[perm])
    array([ 0., 10., 20., 30., 40., 50., 60., 70.])
    """
    inverse = check_bool(inverse, "inverse")
    dtype = check_dtype(dtype, "dtype")
    p = _check_permutation(perm)
    if inverse:
        q = np.empty_like(p)
        q[p] = np.arange(p.shape[0], dtype=np.int64)
        p = q
    m = p.shape[0]
    n = 1 << (m - 1).bit_length()
    if n != m:
        p = np.concatenate([p, np.arange(m, n, dtype=np.int64)])
    sw = kernels(np, "kaleidoscope_routing").route(p)
    return _switch_twiddle(sw, dtype)


def kaleidoscope_pad(x: Any, n: int) -> Any:
    """Return ``x`` padded with zeros along its last axis to length ``n``.

    The embedding of a length-``m`` problem in a K-matrix of size ``n >= m`` (a power of
    two): a routed permutation of ``m`` (:func:`kaleidoscope_permutation`) or a Toeplitz
    matrix of size ``m`` (:func:`structlin.kaleidoscope_toeplitz`, ``n = 2 * 2**ceil(log2
    m)``) acts on ``kaleidoscope_pad(x, n)``; the inverse of the embedding keeps the first
    ``m`` outputs, ``y[..., :m]``.

    Parameters
    ----------
    x : array_like, shape (..., m)
        NumPy or CuPy array (the result is of the same kind and dtype, a new array).
    n : int
        The padded length, ``m <= n <= 2**40``.

    Returns
    -------
    ndarray, shape (..., n)

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_pad
    >>> kaleidoscope_pad(np.array([1.0, 2.0, 3.0]), 4)
    array([1., 2., 3., 0.])
    """
    from structlin._backend import array_namespace
    from structlin._validate import MAX_SIZE

    xp = array_namespace(x=x)
    a = as_array(xp, x, "x")
    if a.ndim < 1:
        raise ValueError(f"x must have at least one axis (..., m), got shape {a.shape}")
    m = a.shape[-1]
    n = check_int(n, "n", minimum=max(m, 1), maximum=MAX_SIZE)
    out = xp.zeros((*a.shape[:-1], n), dtype=a.dtype)
    out[..., :m] = a
    return out
