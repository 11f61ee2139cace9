"""Numba kernels of the K-matrix product and its VJP.

Contract (shared with ``structlin.gpu.kaleidoscope``): ``tw`` is C-contiguous
``(w, 2, L, n//2, 2, 2)`` in *operator form* with the dtype of ``x``: for ``i = w-1, ..., 0``
the kernel applies the blocks ``tw[i, 1]`` in decreasing stride (factor ``L-1`` first), then
``tw[i, 0]`` in increasing stride. ``x`` is C-contiguous ``(batch, n)``. ``apply`` returns
``K x``; ``apply_vjp`` returns ``(gtw, gx)`` with ``gx = K^H g`` and ``gtw`` the gradient of the
operator-form blocks (``gtw[i, j, k, b, r, c] = sum_batch h_r conj(u_c)``).

Product, fused (rows of at most :data:`structlin._cpu.butterfly.SEGMENT_BYTES` and
``n >= 2**BLOCK_LEVELS``, i.e. ``64 <= n <= 65536`` float32): the rows are processed in tiles of
an L1 cache's worth; a tile is read once, all ``2 w`` butterflies are applied to it with the
register blocks of the butterfly kernels (:func:`structlin._cpu.butterfly._group_forward`:
contiguous 16-lane vector blocks for the low levels, groups of up to four spaced levels for the
others, lane coefficients from :func:`structlin._cpu.butterfly.lane_coefficients`), and it is
written once: one read and one write of ``x`` per call, whatever the width. Other lengths: the
``2 w`` butterflies one after the other with the butterfly kernels (:mod:`structlin._cpu.butterfly`,
through :mod:`structlin._kaleidoscope_stages`), each its own cache-blocked passes over ``x``.

VJP: the ``2 w`` stage inputs are stored, then each butterfly's register-block VJP runs from
the last stage back. A fused VJP (recomputing a tile's stage inputs in cache, one read of ``x``
and ``g``) measured 1.36x faster at n = 1024 float32, but Numba generates the machine code of
the register blocks again for every kernel that calls them: it cost 30 s of compilation per
dtype on top of the butterfly VJP's, which this VJP shares.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from structlin import _kaleidoscope_stages as _stages
from structlin._cpu import butterfly as _bf
from structlin._cpu._schedule import n_chunks, serial_when_small
from structlin._cpu.butterfly import (
    BLOCK_LEVELS,
    ROW_TILE_BYTES,
    SEGMENT_BYTES,
    _group_forward,
    _planar,
    _row_groups,
    lane_coefficients,
)

__all__ = ["apply", "apply_vjp", "fused"]

def fused(n: int, itemsize: int) -> bool:
    """Whether rows of ``n`` elements of ``itemsize`` bytes take the fused register path."""
    return n.bit_length() - 1 >= BLOCK_LEVELS and n * itemsize <= SEGMENT_BYTES


def _coefficients(tw: np.ndarray):
    """Lane coefficients ``(A, B)`` of every butterfly, each ``(w, 2, L, n)``."""
    w, _, L, nh = tw.shape[:4]
    A = np.empty((w, 2, L, 2 * nh), dtype=tw.dtype)
    B = np.empty_like(A)
    for i in range(w):
        for j in range(2):
            A[i, j], B[i, j] = lane_coefficients(*_planar(np.ascontiguousarray(tw[i, j])))
    return A, B


def _float_view(*arrays):
    """Complex rows viewed as interleaved floats (the register blocks' layout)."""
    if arrays[0].dtype.kind != "c":
        return arrays
    ft = arrays[0].real.dtype
    return tuple(a.view(ft) for a in arrays)


def _groups(L: int, complex_rows: bool):
    kb = BLOCK_LEVELS - (1 if complex_rows else 0)
    return _row_groups(L, kb, False) + _row_groups(L, kb, True)


@njit(cache=True)
def _stage(buf, nr, A, B, s, k0d, nld, k0i, nli):
    """Apply stage ``s`` (butterfly ``(i, j) = (w-1 - s//2, 1 - s%2)``) in place to the rows
    ``buf[0 : nr]``: ``tw[i, 1]`` in decreasing stride, ``tw[i, 0]`` in increasing stride."""
    w = A.shape[0]
    i = w - 1 - s // 2
    if s % 2 == 0:
        c = (A[i, 1], B[i, 1])
        for gi in range(k0d.shape[0]):
            _group_forward(buf, buf, nr, k0d[gi], nld[gi], c, False)
    else:
        c = (A[i, 0], B[i, 0])
        for gi in range(k0i.shape[0]):
            _group_forward(buf, buf, nr, k0i[gi], nli[gi], c, True)


@njit(cache=True, parallel=True)
def _pass_pairs(xin, xout, A, B, k0d, nld, k0i, nli, rows, nchunk):
    """Every butterfly of the K-matrix on tiles of ``rows`` whole rows: a tile is copied to
    ``xout`` (one read of ``xin``) and transformed there, in cache, stage after stage."""
    b = xin.shape[0]
    n_tiles = (b + rows - 1) // rows
    n_stages = 2 * A.shape[0]
    for ci in prange(nchunk):
        for tile in range(ci * n_tiles // nchunk, (ci + 1) * n_tiles // nchunk):
            r0 = tile * rows
            nr = min(b, r0 + rows) - r0
            for r in range(r0, r0 + nr):
                xout[r][:] = xin[r][:]
            buf = xout[r0 : r0 + nr]
            for s in range(n_stages):
                _stage(buf, nr, A, B, s, k0d, nld, k0i, nli)


def _rows(b: int, n: int, itemsize: int) -> int:
    """Rows per tile: an L1 cache's worth, and at least one tile per parallel chunk."""
    return max(1, min(ROW_TILE_BYTES // (itemsize * n), -(-b // n_chunks(b))))


@serial_when_small(arg=1)
def apply(tw: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Return ``K x`` row by row (see the module docstring for the contract)."""
    b, n = x.shape
    if b == 0 or tw.shape[2] == 0:
        return x.copy()
    if not fused(n, x.itemsize):
        return _apply_unfused(tw, x)
    L = tw.shape[2]
    A, B = _coefficients(tw)
    out = np.empty_like(x)
    xf, of = _float_view(x, out)
    rows = _rows(b, n, x.itemsize)
    nchunk = n_chunks(-(-b // rows))
    _pass_pairs(xf, of, A, B, *_groups(L, x.dtype.kind == "c"), rows, nchunk)
    return out


def _apply_unfused(tw, x):
    return _stages.apply(np, _bf, tw, x)


def apply_vjp(tw: np.ndarray, x: np.ndarray, g: np.ndarray):
    """Return ``(gtw, gx)`` for ``y = K x`` and the output gradient ``g``: the ``2 w`` stage
    inputs are stored, then each butterfly's register-block VJP runs from the last stage back
    (see the module docstring)."""
    return _stages.apply_vjp(np, _bf, tw, x, g)
