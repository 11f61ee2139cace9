"""Numba kernels for the fast Walsh–Hadamard transform (Sylvester order).

Contract (shared with ``structlin.gpu.hadamard``): ``fwht(x, scale)`` takes a C-contiguous
``(batch, n)`` array and returns ``scale * x @ H_n.T`` as a new array.

The Hadamard factors commute, so the factors can be applied in any grouping. Passes follow
:func:`structlin._cpu._schedule.plan_passes`: the first pass works on contiguous row segments
that fit in L2 — strides below 16 with scalar code inside groups of 16, larger strides as
contiguous SIMD loops — and later passes on gathered column tiles, so that a row beyond the
cache is read and written once per pass rather than once per factor.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from structlin._cpu._schedule import column_tile, n_chunks, plan_passes, serial_when_small
from structlin._cpu._simd import hadamard_block

__all__ = ["fwht"]

#: the strides below GROUP are applied inside groups of GROUP consecutive elements
GROUP = 16


@njit(cache=True, inline="always")
def _hpair(b0, b1):
    # separate views with a runtime length: vectorized after a runtime overlap check
    for r in range(b0.shape[0]):
        u = b0[r]
        v = b1[r]
        b0[r] = u + v
        b1[r] = u - v


@njit(cache=True, inline="always")
def _small_strides(seg, g):
    """Strides ``1 .. g/2`` inside each group of ``g`` consecutive elements (scalar code)."""
    for g0 in range(0, seg.shape[0], g):
        sl = 1
        while sl < g:
            for a in range(g0, g0 + g, 2 * sl):
                for c in range(a, a + sl):
                    u = seg[c]
                    v = seg[c + sl]
                    seg[c] = u + v
                    seg[c + sl] = u - v
            sl *= 2


@njit(cache=True, parallel=True)
def _first_pass(xin, xout, k1, scale, nchunk):
    b, n = xin.shape
    m = 1 << k1
    nh = n >> k1
    n_tiles = b * nh
    g = min(GROUP, m)
    for ci in prange(nchunk):
        lo = ci * n_tiles // nchunk
        hi = (ci + 1) * n_tiles // nchunk
        for tile in range(lo, hi):
            row = tile // nh
            base = (tile - row * nh) << k1
            seg = xout[row][base : base + m]
            src = xin[row][base : base + m]
            for t in range(m):
                seg[t] = src[t] * scale
            if m >= GROUP:
                # a compile-time group size lets LLVM unroll the four small strides fully
                _small_strides(seg, GROUP)
            else:
                _small_strides(seg, m)
            sl = g
            while sl < m:
                for a in range(0, m, 2 * sl):
                    _hpair(seg[a : a + sl], seg[a + sl : a + 2 * sl])
                sl *= 2


#: vectors of 16 lanes per register block in the real first pass: the levels below
#: ``16 * NV`` are applied in registers (explicit SIMD, see ``structlin._cpu._simd``)
NV = 4
_HBLOCK = hadamard_block(NV)


@njit(cache=True, parallel=True)
def _first_pass_real(xin, xout, k1, scale, nchunk):
    """First pass for real data with ``2**k1 >= 16 * NV``: each block of ``16 * NV`` elements is
    loaded once, scaled and transformed in registers; the larger strides follow as contiguous
    SIMD loops on the L2-resident segment."""
    b, n = xin.shape
    m = 1 << k1
    nh = n >> k1
    n_tiles = b * nh
    blk = 16 * NV
    for ci in prange(nchunk):
        lo = ci * n_tiles // nchunk
        hi = (ci + 1) * n_tiles // nchunk
        for tile in range(lo, hi):
            row = tile // nh
            base = (tile - row * nh) << k1
            src = xin[row]
            dst = xout[row]
            for g in range(base, base + m, blk):
                _HBLOCK(src, dst, g, scale)
            seg = dst[base : base + m]
            sl = blk
            while sl < m:
                for a in range(0, m, 2 * sl):
                    _hpair(seg[a : a + sl], seg[a + sl : a + 2 * sl])
                sl *= 2


@njit(cache=True, parallel=True)
def _column_pass(x, k0, k1, W, nchunk):
    """Factors ``k0 .. k1-1`` in place, on tiles of ``W`` consecutive columns."""
    b, n = x.shape
    m = 1 << (k1 - k0)
    S = 1 << k0
    nh = n >> k1
    nc = S // W
    per_row = nh * nc
    n_tiles = b * per_row
    for ci in prange(nchunk):
        buf = np.empty((m, W), dtype=x.dtype)
        lo = ci * n_tiles // nchunk
        hi = (ci + 1) * n_tiles // nchunk
        for tile in range(lo, hi):
            row, _, c0, base = column_tile(tile, per_row, nc, W, k1)
            off0 = base + c0
            xr = x[row]
            for t in range(m):
                buf[t][:] = xr[off0 + t * S : off0 + t * S + W]
            sl = 1
            while sl < m:
                for a in range(0, m, 2 * sl):
                    for cp in range(a, a + sl):
                        _hpair(buf[cp], buf[cp + sl])
                sl *= 2
            for t in range(m):
                xr[off0 + t * S : off0 + t * S + W] = buf[t]


@serial_when_small(arg=0)
def fwht(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Return ``scale * x @ H.T`` for C-contiguous ``x`` of shape ``(batch, n)``."""
    b, n = x.shape
    L = n.bit_length() - 1
    out = np.empty_like(x)
    if b == 0:
        return out
    s = x.dtype.type(scale)
    for k0, k1, W in plan_passes(L, x.itemsize) or [(0, 0, 1)]:
        if k0 == 0 and x.dtype.kind == "f" and (1 << k1) >= 16 * NV:
            _first_pass_real(x, out, k1, s, n_chunks(b * (n >> k1)))
        elif k0 == 0:
            _first_pass(x, out, k1, s, n_chunks(b * (n >> k1)))
        else:
            _column_pass(out, k0, k1, W, n_chunks(b * (n >> k1) * ((1 << k0) // W)))
    return out
