"""Numba kernels for butterfly block inversion, log-determinant and the inverse's VJP.

Contract (shared with ``structlin.gpu.butterfly_inverse``): ``tw`` is a C-contiguous array of
``nb`` 2x2 blocks, shape ``(..., 2, 2)`` (a twiddle ``(L, n//2, 2, 2)``), of a kernel dtype.

- ``invert(tw, scale, adjoint)`` returns ``(out, rcond, index)``: ``out`` holds ``scale * T^-1``
  (``scale * T^-H`` when ``adjoint``) for every block ``T``, ``rcond`` the smallest reciprocal
  condition number ``1 / (||T||_1 ||T^-1||_1)`` over the blocks (entry moduli ``|Re| + |Im|``
  in the norms, as in LAPACK's estimators) and ``index`` the flat index of the first block
  reaching it (exact when ``rcond`` is below the dtype's epsilon, else possibly -1). A
  singular block (determinant exactly zero) has ``rcond = 0``; a block with a NaN or infinite
  entry has ``rcond = -1``.
- ``solve(tw, x, increasing)`` returns ``(B^-1 x, rcond, index)`` for the butterfly ``B`` of
  ``tw`` applied in the order ``increasing`` to the rows of the C-contiguous ``(batch, n)``
  ``x``; ``rcond`` and ``index`` as for ``invert``, and ``None`` in place of the solution when
  ``rcond <= 0`` (a singular or non-finite block).
- ``slogdet(tw)`` returns ``(sign, logabsdet)`` of the product of the blocks' determinants:
  ``sign`` a float64 (``+-1`` or 0) or complex128 of modulus 1 (or 0), ``logabsdet`` a float64
  (``-inf`` when a block is singular, NaN when an entry is not finite).
- ``inverse_vjp(inv, ginv)`` returns ``-inv^H ginv inv^H`` block by block: the gradient of a
  block ``T`` given the gradient of ``V = T^-1`` (PyTorch's convention).

Every block is computed in float64 / complex128 whatever the storage dtype: the 2x2 formulas
are cancellation-prone (``ad - bc``) and the sums of ``L n / 2`` logarithms need the precision.
A block whose largest entry lies outside ``[SAFE_MIN, SAFE_MAX]`` (never for float32) is
scaled by it first, so that ``ad - bc`` neither overflows nor underflows for entries anywhere
in the floating-point range. Work is split into chunks of
blocks processed in parallel; each chunk writes its own partial reduction, summed here.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from structlin._cpu._schedule import n_chunks, serial_when_small
from structlin._cpu.butterfly import apply_planar

__all__ = ["inverse_vjp", "invert", "slogdet", "solve"]

#: blocks per parallel chunk, at least (a chunk's partial results are a few scalars)
CHUNK_BLOCKS = 4096


#: blocks whose largest entry lies in [SAFE_MIN, SAFE_MAX] are used as they are: their
#: products and determinant cannot overflow or underflow in float64 (always true for float32)
SAFE_MIN = 1e-60
SAFE_MAX = 1e60


@njit(cache=True, inline="always")
def _abs1(z):
    # max(|Re|, |Im|): within a factor sqrt(2) of the modulus, without a square root
    return max(abs(z.real), abs(z.imag))


@njit(cache=True, inline="always")
def _block(t, i, zw):
    """Entries of block ``i`` widened to float64/complex128, scaled by ``s`` when needed.

    Returns ``(a, b, c, d, s, status)`` with the entries multiplied by ``s`` (1 unless the
    block's largest entry lies outside ``[SAFE_MIN, SAFE_MAX]``); status 0 fine, 1 all zero,
    -1 NaN or infinity.
    """
    a = t[i, 0, 0] + zw
    b = t[i, 0, 1] + zw
    c = t[i, 1, 0] + zw
    d = t[i, 1, 1] + zw
    # x - x is 0 for finite x and NaN for NaN or infinity (no fastmath here: NaNs must survive)
    z = (a - a) + (b - b) + (c - c) + (d - d)
    if z != z:
        return a, b, c, d, 1.0, -1
    m = max(max(_abs1(a), _abs1(b)), max(_abs1(c), _abs1(d)))
    if m == 0.0:
        return a, b, c, d, 1.0, 1
    if SAFE_MIN <= m <= SAFE_MAX:
        return a, b, c, d, 1.0, 0
    s = 1.0 / m
    return a * s, b * s, c * s, d * s, s, 0


@njit(cache=True, inline="always")
def _cabs1(z):
    # |Re| + |Im|, the modulus LAPACK's condition estimators use: no square root
    return abs(z.real) + abs(z.imag)


@njit(cache=True, inline="always")
def _store_inverse(out, i, a, b, c, d, f, adjoint):
    i00 = d * f
    i01 = -b * f
    i10 = -c * f
    i11 = a * f
    if adjoint:
        out[i, 0, 0] = np.conj(i00)
        out[i, 0, 1] = np.conj(i10)
        out[i, 1, 0] = np.conj(i01)
        out[i, 1, 1] = np.conj(i11)
    else:
        out[i, 0, 0] = i00
        out[i, 0, 1] = i01
        out[i, 1, 0] = i10
        out[i, 1, 1] = i11


@njit(cache=True, inline="always")
def _norms(a, b, c, d):
    """``||T||_1 * ||T||_inf`` with moduli ``|Re| + |Im|``; ``||T^-1||_1 = ||T||_inf / |det|``."""
    aa = _cabs1(a)
    ab = _cabs1(b)
    ac = _cabs1(c)
    ad = _cabs1(d)
    return max(aa + ac, ab + ad) * max(aa + ab, ac + ad)


@njit(cache=True, inline="always")
def _invert_careful(t, out, zw, scale, adjoint, lo, hi):
    """Block by block with scaling and explicit checks; returns ``(min rcond, first index)``."""
    best = np.inf
    best_i = -1
    for i in range(lo, hi):
        a, b, c, d, s, status = _block(t, i, zw)
        r = -1.0 if status == -1 else 0.0
        det = a * d - b * c
        if status == 0 and det != 0:
            q = det.real * det.real + det.imag * det.imag
            if 0.0 < q < np.inf:
                f = np.conj(det) * ((scale * s) / q)
                adet = np.sqrt(q)
            else:  # |det|^2 out of range, |det| is not
                f = (scale * s) / det
                adet = abs(det)
            r = adet / _norms(a, b, c, d)
            _store_inverse(out, i, a, b, c, d, f, adjoint)
        else:
            # singular or not finite: zero output, the caller raises
            for p in range(2):
                for q in range(2):
                    out[i, p, q] = 0
        if r < best:
            best = r
            best_i = i
    return best, best_i


@njit(cache=True, parallel=True)
def _invert(t, out, zw, scale, adjoint, nchunk, recheck, part_rcond, part_index):
    """A fast pass per chunk, redone carefully where it may hold a block to report.

    The fast pass has no early exit and one division per block: it tracks the largest
    ``1 / rcond^2 = (||T||_1 ||T||_inf)^2 / |det|^2`` and whether every block's norm product
    lies in the range where no product can overflow or underflow. A chunk with an entry out of
    range, a NaN, or a block with ``1 / rcond^2 >= recheck`` is redone by the careful loop,
    which scales, checks and finds the first block reaching the minimum.
    """
    nb = t.shape[0]
    den_min = SAFE_MIN * SAFE_MIN
    den_max = SAFE_MAX * SAFE_MAX
    for ci in prange(nchunk):
        lo = ci * nb // nchunk
        hi = (ci + 1) * nb // nchunk
        worst = 0.0
        ok = True
        for i in range(lo, hi):
            a = t[i, 0, 0] + zw
            b = t[i, 0, 1] + zw
            c = t[i, 1, 0] + zw
            d = t[i, 1, 1] + zw
            det = a * d - b * c
            w = 1.0 / (det.real * det.real + det.imag * det.imag)
            _store_inverse(out, i, a, b, c, d, np.conj(det) * (scale * w), adjoint)
            den = _norms(a, b, c, d)
            ok = ok and den_min <= den <= den_max  # False for NaN
            worst = max(worst, den * den * w)
        if ok and worst < recheck:
            part_rcond[ci] = 1.0 / np.sqrt(worst) if worst > 0 else np.inf
            part_index[ci] = -1
        else:
            part_rcond[ci], part_index[ci] = _invert_careful(t, out, zw, scale, adjoint, lo, hi)


@njit(cache=True, parallel=True)
def _slogdet(t, zw, nchunk, part_log, part_sign):
    nb = t.shape[0]
    for ci in prange(nchunk):
        lo = ci * nb // nchunk
        hi = (ci + 1) * nb // nchunk
        acc = 0.0
        unit = zw + 1.0
        for i in range(lo, hi):
            a, b, c, d, s, status = _block(t, i, zw)
            if status == -1:
                acc = np.nan
                continue
            det = a * d - b * c
            if status == 1 or det == 0:
                acc = -np.inf
                unit = unit * 0.0
                continue
            q = det.real * det.real + det.imag * det.imag
            if 0.0 < q < np.inf:
                # log|det| = log(|det|^2) / 2: one logarithm, no square root for real data
                acc += 0.5 * np.log(q)
                ab = np.sqrt(q)
            else:  # |det|^2 out of range, |det| is not
                ab = abs(det)
                acc += np.log(ab)
            if s != 1.0:
                # log|det T| = log|det(s T)| - 2 log s
                acc -= 2.0 * np.log(s)
            # a product of unit numbers (exactly +-1 for real data): no overflow, no drift
            unit = unit * (det / ab)
        part_log[ci] = acc
        part_sign[ci] = unit


@njit(cache=True, parallel=True)
def _inverse_vjp(v, g, out, nchunk):
    nb = v.shape[0]
    for ci in prange(nchunk):
        lo = ci * nb // nchunk
        hi = (ci + 1) * nb // nchunk
        for i in range(lo, hi):
            # W = V^H, out = -W G W
            w00 = np.conj(v[i, 0, 0])
            w01 = np.conj(v[i, 1, 0])
            w10 = np.conj(v[i, 0, 1])
            w11 = np.conj(v[i, 1, 1])
            g00 = g[i, 0, 0]
            g01 = g[i, 0, 1]
            g10 = g[i, 1, 0]
            g11 = g[i, 1, 1]
            h00 = g00 * w00 + g01 * w10
            h01 = g00 * w01 + g01 * w11
            h10 = g10 * w00 + g11 * w10
            h11 = g10 * w01 + g11 * w11
            out[i, 0, 0] = -(w00 * h00 + w01 * h10)
            out[i, 0, 1] = -(w00 * h01 + w01 * h11)
            out[i, 1, 0] = -(w10 * h00 + w11 * h10)
            out[i, 1, 1] = -(w10 * h01 + w11 * h11)


def _blocks(tw: np.ndarray) -> np.ndarray:
    return tw.reshape(-1, 2, 2)


def _wide_zero(dtype: np.dtype):
    return np.complex128(0) if np.dtype(dtype).kind == "c" else np.float64(0)


def _chunks(nb: int) -> int:
    return n_chunks(max(1, nb // CHUNK_BLOCKS))


def _invert_blocks(t, out, scale, adjoint):
    """Invert the ``(nb, 2, 2)`` blocks ``t`` into ``out`` (any strides); ``(rcond, index)``."""
    nb = t.shape[0]
    if nb == 0:
        return np.inf, -1
    nchunk = _chunks(nb)
    part_rcond = np.empty(nchunk, np.float64)
    part_index = np.empty(nchunk, np.int64)
    eps = float(np.finfo(t.dtype).eps)
    _invert(t, out, _wide_zero(t.dtype), float(scale), bool(adjoint), nchunk,
            1.0 / (eps * eps), part_rcond, part_index)
    # the first chunk reaching the minimum holds the first block reaching it
    c = int(np.argmin(part_rcond))
    return float(part_rcond[c]), int(part_index[c])


@serial_when_small(arg=0)
def invert(tw: np.ndarray, scale: float = 1.0, adjoint: bool = False):
    """Return ``(scale * T^-1 or scale * T^-H per block, min rcond, its flat block index)``.

    The index is exact when the minimum is below the dtype's epsilon (or the block singular or
    not finite), the only cases in which it is reported; otherwise it may be -1.
    """
    out = np.empty_like(tw)
    rcond, index = _invert_blocks(_blocks(tw), _blocks(out), scale, adjoint)
    return out, rcond, index


@serial_when_small(arg=0)
def solve(tw: np.ndarray, x: np.ndarray, increasing: bool):
    """Return ``(B^-1 x, rcond, index)`` for the butterfly ``B`` of ``tw`` in the order
    ``increasing``, row by row; ``rcond`` and ``index`` as for :func:`invert`, and ``None`` in
    place of the solution when a block is singular or not finite.

    The inverted blocks are written straight into the planar layout that the product kernels
    read, so the solve moves the twiddle as often as a product does (at batch 1 the twiddle's
    traffic is the cost of either).
    """
    L, nh = tw.shape[:2]
    p = np.empty((2, 2, L * nh), dtype=tw.dtype)
    rcond, index = _invert_blocks(_blocks(tw), p.transpose(2, 0, 1), 1.0, False)
    if rcond <= 0:
        return None, rcond, index
    t = tuple(p[r, c].reshape(L, nh) for r in (0, 1) for c in (0, 1))
    return apply_planar(t, x, not increasing), rcond, index


@serial_when_small(arg=0)
def slogdet(tw: np.ndarray):
    """Return ``(sign, logabsdet)`` of the product of the blocks' determinants."""
    t = _blocks(tw)
    nb = t.shape[0]
    complex_ = tw.dtype.kind == "c"
    if nb == 0:
        return (complex(1.0) if complex_ else 1.0), 0.0
    nchunk = _chunks(nb)
    part_log = np.empty(nchunk, np.float64)
    part_sign = np.empty(nchunk, np.complex128 if complex_ else np.float64)
    _slogdet(t, _wide_zero(tw.dtype), nchunk, part_log, part_sign)
    sign = part_sign[0]
    for s in part_sign[1:]:
        sign = sign * s
    if complex_ and sign != 0:
        sign = sign / abs(sign)
    return sign, float(part_log.sum())


@serial_when_small(arg=0)
def inverse_vjp(inv: np.ndarray, ginv: np.ndarray) -> np.ndarray:
    """Return ``-V^H G V^H`` for every block ``V`` of ``inv`` and ``G`` of ``ginv``."""
    out = np.empty_like(inv)
    nb = _blocks(inv).shape[0]
    if nb:
        _inverse_vjp(_blocks(inv), _blocks(ginv), _blocks(out), _chunks(nb))
    return out
