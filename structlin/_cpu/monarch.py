"""Numba kernels for chains of block-diagonal factors (Monarch, order-p Monarch, BTT).

Contract (shared with ``structlin.gpu.monarch``). A *factor* is ``(w, pre, post)`` with ``w``
C-contiguous of shape ``(pre * post, n_out, n_in)`` and the dtype of ``x``. It maps a row of
length ``pre * n_in * post``, viewed as ``(pre, n_in, post)``, to a row of length
``pre * n_out * post``, viewed as ``(pre, n_out, post)``::

    y[P, o, Q] = sum_i w[P * post + Q, o, i] * x[P, i, Q]

i.e. a block-diagonal matrix acting along the middle axis, one block per ``(P, Q)``. The two
Monarch factors are ``(w1, k, 1)`` and ``(w2, 1, l)``: the transpose between them is only a
change of the view, never a copy.

- ``apply(x, factors)``: ``x`` C-contiguous ``(batch, n)``; returns the chain's product, the
  factors applied in order. Batch tiles of ``T`` rows run in parallel; each tile goes through
  every factor while it stays in cache (the intermediates never reach memory).

  Real float32/float64 chains whose factors all have a *vector form* run on the register-blocked
  micro-kernel of :mod:`structlin._cpu._microkernel` (vectors of 64 bytes: ``lanes`` = 16
  float32 or 8 float64), on tiles kept in the batch-major layout of ``x``:

  * ``post == 1`` and ``n_out % lanes == 0``: for each block, ``y[t, P, :] = w[P] x[t, P, :]``
    is a small GEMM whose output columns fill vectors; the micro-kernel broadcasts
    ``x[t, P, i]`` and multiplies by a row of ``w[P].T`` (packed once per call), 6 rows by 4
    vectors of accumulators at a time;
  * ``post % lanes == 0``: ``lanes`` consecutive ``Q`` sit side by side in one vector, and
    lane ``j`` of ``y[t, P, o, Qv*lanes : ...]`` is ``sum_i w[P*post + Qv*lanes + j, o, i]
    x[t, P, i, Q]``: one vector fma per ``(t, o, i)`` with the blocks' weights packed
    lane-interleaved, again 6 rows by 4 outputs at a time.

  The permutation between the Monarch factors is only the strides these read and write with.
  The first factor reads ``x`` in place (with software prefetch of the next block's segment of
  every row), the intermediates stay in an L2-sized tile buffer, and the last factor writes
  ``y`` in place with non-temporal stores when ``y`` is larger than the caches. Other dtypes
  (complex) and shapes fall back to one BLAS GEMM per block on a gathered feature-major
  ``(n_in, T)`` panel (``np.dot`` in Numba calls BLAS), about 2x slower on AVX-512.
- ``weight_grad(x, gy, pre, post, n_out)``: ``G[b] = sum_rows gy_b^T conj(x_b)`` for every
  block ``b``, shape ``(pre * post, n_out, n_in)``: the gradient of the factor's weights.
  For real float32/float64 factors with a vector form it runs on the same micro-kernel, the
  batch being the reduction (32 staged rows per call, one accumulator per thread); otherwise
  one BLAS GEMM per block and batch tile.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, get_thread_id, njit, parallel_chunksize, prange

from structlin._cpu._microkernel import (
    MR,
    STREAM_BYTES,
    aligned,
    aligned_empty,
    bcast_call,
    lane_call,
    lanes_of,
    prefetch,
    store_fence,
    tile_width,
    vector_lanes,
)
from structlin._cpu._schedule import serial_blas, serial_when_small

__all__ = ["apply", "low_rank", "weight_grad"]

#: bytes of a tile's working set (input, output and intermediates of one batch tile) aimed at
#: the L2 cache, so that every factor after the first reads its input from cache
TILE_BYTES = 1 << 21
MIN_ROWS = 16
MAX_ROWS = 128


@njit(cache=True, inline="always")
def _to_features(src, r0, nt, dst):
    """``dst[f, t] = src[r0 + t, f]`` for ``t < nt`` (zeros beyond): a tile, feature-major."""
    n = src.shape[1]
    T = dst.shape[1]
    if nt < T:
        dst[:, nt:] = 0
    for f0 in range(0, n, 16):
        f1 = min(f0 + 16, n)
        for t in range(nt):
            row = src[r0 + t]
            for f in range(f0, f1):
                dst[f, t] = row[f]


@njit(cache=True, inline="always")
def _to_rows(src, dst, r0, nt):
    """``dst[r0 + t, f] = src[f, t]`` for ``t < nt``: a feature-major tile back to rows."""
    n = src.shape[0]
    for f0 in range(0, n, 16):
        f1 = min(f0 + 16, n)
        for t in range(nt):
            row = dst[r0 + t]
            for f in range(f0, f1):
                row[f] = src[f, t]


@njit(cache=True, inline="always")
def _factor_tile(src, dst, w, pre, post, gbuf, obuf):
    """Apply one factor to a feature-major tile: ``dst`` ``(pre*n_out*post, T)`` from ``src``.

    With the batch innermost, every panel row is a contiguous run of ``T`` values whatever the
    factor's ``post`` stride, so gathering a block's panel is a copy of whole rows and the
    block product is one GEMM ``w[blk] @ panel`` of shape ``(n_out, n_in) @ (n_in, T)``.
    """
    n_out = w.shape[1]
    n_in = w.shape[2]
    for P in range(pre):
        for Q in range(post):
            blk = P * post + Q
            ib = P * n_in * post + Q
            ob = P * n_out * post + Q
            if post == 1:  # the panels are contiguous rows of the tiles: no copies
                np.dot(w[blk], src[ib : ib + n_in], dst[ob : ob + n_out])
                continue
            for i in range(n_in):
                gbuf[i, :] = src[ib + i * post]
            np.dot(w[blk], gbuf, obuf)
            for o in range(n_out):
                dst[ob + o * post, :] = obuf[o]


@njit(cache=True, parallel=True)
def _apply2(x, w1, pre1, post1, w2, pre2, post2, T, nchunk):
    """Two factors fused per batch tile (the Monarch product)."""
    b = x.shape[0]
    n_mid = pre1 * w1.shape[1] * post1
    n_out = pre2 * w2.shape[1] * post2
    y = np.empty((b, n_out), dtype=x.dtype)
    n_tiles = (b + T - 1) // T
    for ci in prange(nchunk):
        g1 = np.empty((w1.shape[2], T), dtype=x.dtype)
        o1 = np.empty((w1.shape[1], T), dtype=x.dtype)
        g2 = np.empty((w2.shape[2], T), dtype=x.dtype)
        o2 = np.empty((w2.shape[1], T), dtype=x.dtype)
        xin = np.empty((x.shape[1], T), dtype=x.dtype)
        mid = np.empty((n_mid, T), dtype=x.dtype)
        out = np.empty((n_out, T), dtype=x.dtype)
        lo = ci * n_tiles // nchunk
        hi = (ci + 1) * n_tiles // nchunk
        for tile in range(lo, hi):
            r0 = tile * T
            nt = min(T, b - r0)
            _to_features(x, r0, nt, xin)
            _factor_tile(xin, mid, w1, pre1, post1, g1, o1)
            _factor_tile(mid, out, w2, pre2, post2, g2, o2)
            _to_rows(out, y, r0, nt)
    return y


@njit(cache=True, parallel=True)
def _apply1(x, w, pre, post, T, nchunk):
    b = x.shape[0]
    n_out = pre * w.shape[1] * post
    y = np.empty((b, n_out), dtype=x.dtype)
    n_tiles = (b + T - 1) // T
    for ci in prange(nchunk):
        g = np.empty((w.shape[2], T), dtype=x.dtype)
        o = np.empty((w.shape[1], T), dtype=x.dtype)
        xin = np.empty((x.shape[1], T), dtype=x.dtype)
        out = np.empty((n_out, T), dtype=x.dtype)
        lo = ci * n_tiles // nchunk
        hi = (ci + 1) * n_tiles // nchunk
        for tile in range(lo, hi):
            r0 = tile * T
            nt = min(T, b - r0)
            _to_features(x, r0, nt, xin)
            _factor_tile(xin, out, w, pre, post, g, o)
            _to_rows(out, y, r0, nt)
    return y


# --------------------------------------------------------------------------- micro-kernel path
# Row tiles stay in the batch-major layout of ``x``: a factor with ``post == 1`` is a GEMM whose
# output columns are contiguous (the micro-kernel broadcasts the input, ``_gemm_rows``), a
# factor whose ``post`` is a multiple of the vector width puts ``lanes`` consecutive blocks
# side by side in the lanes of one vector (``_lane_rows``); the permutation between the
# factors is only the strides these two read and write with.

#: reduction length of one micro-kernel call: its ``(KB, 4 vectors)`` weight panel (16 KiB)
#: stays in L1 while the call runs over all rows of a tile; longer reductions accumulate
KB = 64
#: bytes of a tile's intermediate rows, aimed at half the L2 cache (the other half holds the
#: weight panels and the rows of ``x`` being prefetched)
MK_TILE_BYTES = 1 << 19
MK_MAX_ROWS = 48
_KIND_GEMM = 0
_KIND_LANE = 1


@njit(cache=True, inline="always")
def _reduction_block(n_in, stream):
    """:data:`KB`, or the whole reduction for a streamed output: partial sums written to
    memory that is not cached would be fetched back from DRAM (measured: 10% slower BTT)."""
    return n_in if stream else KB


@njit(cache=True)
def _gemm_rows(src, s0, lds, dst, d0, ldd, rows, w, w_off, pre, n_in, n_out, stream, pf):
    """A ``post == 1`` factor on ``rows`` rows: ``dst[t, P, o] = sum_i src[t, P, i] w[P, o, i]``.

    ``w`` holds ``w[P].T`` at ``w_off`` (packed ``(pre, n_in, n_out)``), so that a row of the
    micro-kernel's right operand is a contiguous run of output columns. The loop over rows is
    innermost: a ``(KB, 4 vectors)`` panel of a block is read once per tile and stays in L1
    for all its rows; reductions longer than :data:`KB` accumulate into ``dst`` (unless
    ``dst`` is streamed). ``pf`` prefetches the source segments two blocks ahead (the rows of
    ``x`` are read straight from memory in one short segment per block: too many streams for
    the hardware prefetcher).
    """
    L = vector_lanes(src)
    kb = _reduction_block(n_in, stream)
    for P in range(pre):
        wp = w_off + P * n_in * n_out
        ov = 0
        while ov < n_out:
            nv = tile_width((n_out - ov) // L)
            for k0 in range(0, n_in, kb):
                kk = min(kb, n_in - k0)
                st = stream and k0 + kk == n_in
                for t0 in range(0, rows, MR):
                    a = s0 + t0 * lds + P * n_in
                    if pf and ov == 0 and k0 == 0 and P + 2 < pre:
                        for m in range(MR):
                            for q in range(0, n_in, L):
                                prefetch(src, a + m * lds + 2 * n_in + q)
                    bcast_call(nv, k0 > 0, src, a + k0, lds, 1, w, wp + k0 * n_out + ov, n_out,
                                L, dst, d0 + t0 * ldd + P * n_out + ov, ldd, L, kk, st)
            ov += nv * L


@njit(cache=True)
def _lane_rows(src, s0, lds, dst, d0, ldd, rows, w, w_off, pre, post, n_in, n_out, stream):
    """A factor with ``post % lanes == 0`` on ``rows`` rows, ``lanes`` blocks per vector:
    ``dst[t, P, o, Q] = sum_i w[P * post + Q, o, i] src[t, P, i, Q]``.

    ``w`` holds, at ``w_off``, the packed ``(pre, post // lanes, n_in, n_out, lanes)`` array
    ``w[P * post + Qv * lanes + lane, o, i]``. As in :func:`_gemm_rows` the loop over rows is
    innermost, so that a ``(KB, 4, lanes)`` panel stays in L1 for all rows of the tile.
    """
    L = vector_lanes(src)
    kb = _reduction_block(n_in, stream)
    nq = post // L
    for P in range(pre):
        for Qv in range(nq):
            wq = w_off + (P * nq + Qv) * n_in * n_out * L
            a0 = s0 + P * n_in * post + Qv * L
            c0 = d0 + P * n_out * post + Qv * L
            o = 0
            while o < n_out:
                nv = tile_width(n_out - o)
                for k0 in range(0, n_in, kb):
                    kk = min(kb, n_in - k0)
                    st = stream and k0 + kk == n_in
                    for t0 in range(0, rows, MR):
                        lane_call(nv, k0 > 0, src, a0 + t0 * lds + k0 * post, lds, post, w,
                                   wq + (k0 * n_out + o) * L, n_out * L, L,
                                   dst, c0 + t0 * ldd + o * post, ldd, post, kk, st)
                o += nv


@njit(cache=True)
def _chain_rows(x, w, meta, T, ldm, stream, y, bufs):
    """All factors of the chain ``meta`` (rows ``(kind, pre, post, n_in, n_out, w_off)``,
    weights packed in ``w``) on tiles of ``T`` rows of ``x``, written to ``y``.

    The intermediates of a tile (``T`` rows of ``ldm`` elements, two ping-pong buffers in
    ``bufs``) stay in L2; the first factor reads ``x`` in place and the last writes ``y`` in
    place (with non-temporal stores when ``stream``); only a last, partial tile is staged
    through padded buffers (the micro-kernel works on groups of ``MR`` rows).
    """
    b, n0 = x.shape
    nf = meta.shape[0]
    n_last = y.shape[1]
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    for r0 in range(0, b, T):
        nt = min(T, b - r0)
        rows = (nt + MR - 1) // MR * MR
        full = nt == rows
        src = xf
        s0 = r0 * n0
        out = yf
        o0 = r0 * n_last
        if not full:
            src = np.zeros(rows * n0, dtype=x.dtype)
            src[: nt * n0] = xf[r0 * n0 : (r0 + nt) * n0]
            s0 = 0
            out = aligned(rows * n_last, x.dtype)
            o0 = 0
        lds = n0
        for f in range(nf):
            last = f == nf - 1
            dst = out if last else bufs
            d0 = o0 if last else (f % 2) * T * ldm
            ldd = n_last if last else ldm
            kind, pre, post, n_in, n_out, w_off = meta[f]
            st = stream and last and full
            if kind == _KIND_GEMM:
                _gemm_rows(src, s0, lds, dst, d0, ldd, rows, w, w_off, pre, n_in, n_out, st,
                           f == 0 and full)
            else:
                _lane_rows(src, s0, lds, dst, d0, ldd, rows, w, w_off, pre, post, n_in, n_out,
                           st)
            src, s0, lds = dst, d0, ldd
        if not full:
            yf[r0 * n_last : (r0 + nt) * n_last] = out[: nt * n_last]
    store_fence()


@njit(cache=True, parallel=True)
def _chain_tiles(x, w, meta, T, ldm, stream, y, bufs):
    """:func:`_chain_rows` on every tile of ``T`` rows, in parallel; ``bufs[thread]`` holds a
    thread's intermediates.

    The loop body is a call only: lowered inside the parallel region, the tile loop itself
    ran 4x slower (measured), while a compiled call keeps the serial code. One tile per
    iteration lets a dynamic schedule (the caller's ``parallel_chunksize``) balance threads
    that the OS runs at different speeds.
    """
    b = x.shape[0]
    for tile in prange((b + T - 1) // T):
        r0 = tile * T
        r1 = min(b, r0 + T)
        _chain_rows(x[r0:r1], w, meta, T, ldm, stream, y[r0:r1], bufs[get_thread_id()])
    return y


def _pack_chain(factors, dtype):
    """``(w, meta)`` for :func:`_chain_tiles`, or None if a factor has no micro-kernel form."""
    if dtype not in (np.float32, np.float64):
        return None
    L = lanes_of(dtype.itemsize)
    views, meta, off = [], [], 0
    for w, pre, post in factors:
        _, n_out, n_in = w.shape
        if post == 1 and n_out % L == 0:
            kind, p = _KIND_GEMM, w.transpose(0, 2, 1)
        elif post % L == 0:
            kind = _KIND_LANE
            p = w.reshape(pre, post // L, L, n_out, n_in).transpose(0, 1, 4, 3, 2)
        else:
            return None
        views.append(p)
        meta.append((kind, pre, post, n_in, n_out, off))
        off += p.size
    packed = np.empty(off, dtype=dtype)
    for p, row in zip(views, meta, strict=True):
        packed[row[5] : row[5] + p.size].reshape(p.shape)[...] = p
    return packed, np.array(meta, dtype=np.int64)


def _mk_rows(widths: list[int], itemsize: int, batch: int) -> int:
    """Rows per tile of the micro-kernel path: a multiple of :data:`MR` whose intermediates
    fit :data:`MK_TILE_BYTES`, no more than the batch needs."""
    inner = max(widths[1:-1], default=widths[0]) * itemsize
    T = max(MR, min(MK_MAX_ROWS, MK_TILE_BYTES // max(1, inner)) // MR * MR)
    return min(T, -(-batch // MR) * MR)


def _apply_microkernel(x, factors, packed):
    w, meta = packed
    b = x.shape[0]
    widths = [x.shape[1]] + [pre * f.shape[1] * post for f, pre, post in factors]
    T = _mk_rows(widths, x.itemsize, b)
    # the intermediate rows are padded by one line so that rows do not share cache sets
    ldm = max(widths[1:-1], default=1) + lanes_of(x.itemsize)
    y = aligned_empty((b, widths[-1]), x.dtype)
    bufs = aligned_empty((get_num_threads(), 2 * T * ldm), x.dtype)
    with parallel_chunksize(1):
        return _chain_tiles(x, w, meta, T, ldm, y.nbytes >= STREAM_BYTES, y, bufs)


#: batch rows per micro-kernel call of the weight gradient (its reduction length)
GRAD_ROWS = 32


@njit(cache=True)
def _grad_rows(x, gy, pre, post, n_out, G, gbuf, xbuf):
    """Add the weight gradient of the rows of ``(x, gy)`` to the padded accumulator ``G``.

    The reduction runs over the batch: for a ``post == 1`` factor ``G[P, o, :]`` gets
    ``gy[t, P, o] * x[t, P, :]`` (``gy`` broadcast, the ``n_in`` inputs in vectors, ``G``
    of shape ``(pre, n_out_pad, n_in)``), for a lane factor ``lanes`` blocks side by side
    (``G`` of shape ``(pre, post // lanes, n_out_pad, n_in, lanes)``). ``n_out_pad`` rounds
    ``n_out`` up to :data:`MR`: the extra rows are computed from whatever follows the block
    in the staged copy ``gbuf`` of the ``gy`` rows (padded so that this stays inside it) and
    discarded by the caller. ``x`` is staged too, in rows padded by one vector: rows a
    multiple of 4 KiB apart would share a handful of L1 sets (measured 2x slower).
    """
    b, n = x.shape
    n_gy = gy.shape[1]
    L = vector_lanes(x)
    n_in = n // (pre * post)
    xf = x.reshape(-1)
    T = GRAD_ROWS
    ldg = gbuf.shape[0] // T
    ldx = xbuf.shape[0] // T
    nop = (n_out + MR - 1) // MR * MR
    nq = post // L
    for r0 in range(0, b, T):
        nt = min(T, b - r0)
        for t in range(nt):
            gbuf[t * ldg : t * ldg + n_gy] = gy[r0 + t]
            xbuf[t * ldx : t * ldx + n] = xf[(r0 + t) * n : (r0 + t + 1) * n]
        if post == 1:
            for P in range(pre):
                for o0 in range(0, n_out, MR):
                    iv = 0
                    while iv < n_in:
                        nv = tile_width((n_in - iv) // L)
                        bcast_call(nv, True, gbuf, P * n_out + o0, 1, ldg,
                                    xbuf, P * n_in + iv, ldx, L,
                                    G, (P * nop + o0) * n_in + iv, n_in, L, nt, False)
                        iv += nv * L
        else:
            for P in range(pre):
                for Qv in range(nq):
                    for o0 in range(0, n_out, MR):
                        i0 = 0
                        while i0 < n_in:
                            nv = tile_width(n_in - i0)
                            lane_call(nv, True, gbuf, P * n_out * post + o0 * post + Qv * L,
                                       post, ldg,
                                       xbuf, P * n_in * post + i0 * post + Qv * L, ldx, post,
                                       G, (((P * nq + Qv) * nop + o0) * n_in + i0) * L, n_in * L,
                                       L, nt, False)
                            i0 += nv


@njit(cache=True, parallel=True)
def _grad_tiles(x, gy, pre, post, n_out, G, gbuf, xbuf, rows):
    """:func:`_grad_rows` on tiles of ``rows`` batch rows in parallel, each thread adding to
    its own accumulator ``G[thread]`` (summed by the caller)."""
    b = x.shape[0]
    for tile in prange((b + rows - 1) // rows):
        r0 = tile * rows
        r1 = min(b, r0 + rows)
        tid = get_thread_id()
        _grad_rows(x[r0:r1], gy[r0:r1], pre, post, n_out, G[tid], gbuf[tid], xbuf[tid])


def _weight_grad_microkernel(x, gy, pre, post, n_out):
    """:func:`weight_grad` on the micro-kernel, or None where it has no vector form."""
    if x.dtype not in (np.float32, np.float64):
        return None
    L = lanes_of(x.itemsize)
    n_in = x.shape[1] // (pre * post)
    if not ((post == 1 and n_in % L == 0) or post % L == 0):
        return None
    nop = -(-n_out // MR) * MR
    threads = get_num_threads()
    G = np.zeros((threads, pre * post * nop * n_in), dtype=x.dtype)
    gbuf = np.zeros((threads, GRAD_ROWS * (gy.shape[1] + MR * post + L)), dtype=x.dtype)
    xbuf = np.empty((threads, GRAD_ROWS * (x.shape[1] + L)), dtype=x.dtype)
    # a few tiles per thread and call: the accumulators stay in cache across a tile's rows
    rows = max(GRAD_ROWS, -(-x.shape[0] // (4 * threads)) // GRAD_ROWS * GRAD_ROWS)
    with parallel_chunksize(1):
        _grad_tiles(x, gy, pre, post, n_out, G, gbuf, xbuf, rows)
    g = G.sum(axis=0) if threads > 1 else G[0]
    if post == 1:
        return np.ascontiguousarray(g.reshape(pre, nop, n_in)[:, :n_out])
    g = g.reshape(pre, post // L, nop, n_in, L)[:, :, :n_out]
    return np.ascontiguousarray(g.transpose(0, 1, 4, 2, 3)).reshape(pre * post, n_out, n_in)


@njit(cache=True, parallel=True)
def _weight_grad(x, gy, pre, post, T, gacc):
    """``gacc[chunk, blk] = sum over the chunk's rows of gy_blk^T conj(x_blk)``.

    Batch tiles are stored feature-major (as in the product), so every block's panels are
    copies of whole rows and its contribution is one GEMM ``(n_out, T) @ (T, n_in)``; each
    parallel chunk owns an accumulator, summed by the caller.
    """
    b = x.shape[0]
    nchunk, _, n_out, n_in = gacc.shape
    n_tiles = (b + T - 1) // T
    for ci in prange(nchunk):
        xt = np.empty((x.shape[1], T), dtype=x.dtype)
        gt = np.empty((gy.shape[1], T), dtype=x.dtype)
        px = np.empty((n_in, T), dtype=x.dtype)
        pg = np.empty((n_out, T), dtype=x.dtype)
        part = np.empty((n_out, n_in), dtype=x.dtype)
        lo = ci * n_tiles // nchunk
        hi = (ci + 1) * n_tiles // nchunk
        for tile in range(lo, hi):
            r0 = tile * T
            nt = min(T, b - r0)
            _to_features(x, r0, nt, xt)
            _to_features(gy, r0, nt, gt)
            for P in range(pre):
                for Q in range(post):
                    blk = P * post + Q
                    ib = P * n_in * post + Q
                    ob = P * n_out * post + Q
                    for i in range(n_in):
                        src = xt[ib + i * post]
                        dst = px[i]
                        for t in range(T):
                            dst[t] = np.conj(src[t])
                    for o in range(n_out):
                        pg[o, :] = gt[ob + o * post]
                    np.dot(pg, px.T, part)
                    gacc[ci, blk] += part


def _rows(widths: list[int], itemsize: int, batch: int) -> int:
    """Rows per batch tile: the tile's rows across all factors fit :data:`TILE_BYTES`."""
    per_row = sum(widths) * itemsize
    T = MIN_ROWS
    while T * 2 <= MAX_ROWS and T * 2 * per_row <= TILE_BYTES:
        T *= 2
    return max(1, min(T, batch))


@serial_when_small(arg=0)
def apply(x: np.ndarray, factors, precision: str = "highest") -> np.ndarray:
    """Return the product of the chain ``factors`` with each row of ``x`` (module contract).

    ``precision`` is accepted for the GPU's sake: the CPU always computes in full precision.
    """
    b = x.shape[0]
    factors = list(factors)
    widths = [x.shape[1]] + [pre * w.shape[1] * post for w, pre, post in factors]
    if b == 0 or any(v == 0 for v in widths) or any(w.shape[2] == 0 for w, _, _ in factors):
        y = np.zeros((b, widths[-1]), dtype=x.dtype)
        return y
    packed = _pack_chain(factors, x.dtype)
    if packed is not None:
        return _apply_microkernel(x, factors, packed)
    T = _rows(widths, x.itemsize, b)
    nchunk = max(1, min(get_num_threads(), (b + T - 1) // T))
    with serial_blas(nchunk):
        return _apply_chain(x, factors, T, nchunk)


def _apply_chain(x, factors, T, nchunk):
    while factors:
        if len(factors) >= 2:
            (w1, p1, q1), (w2, p2, q2) = factors[:2]
            x = _apply2(x, w1, p1, q1, w2, p2, q2, T, nchunk)
            factors = factors[2:]
        else:
            w, p, q = factors[0]
            x = _apply1(x, w, p, q, T, nchunk)
            factors = factors[1:]
    return x


@serial_when_small(arg=0)
def weight_grad(x: np.ndarray, gy: np.ndarray, pre: int, post: int, n_out: int,
                precision: str = "highest") -> np.ndarray:
    """Return the weight gradient ``(pre * post, n_out, n_in)`` of one factor (module contract).

    ``precision`` is accepted for the GPU's sake: the CPU always computes in full precision.
    """
    b, n = x.shape
    n_in = n // (pre * post)
    if b == 0 or n_in == 0 or n_out == 0:
        return np.zeros((pre * post, n_out, n_in), dtype=x.dtype)
    g = _weight_grad_microkernel(x, gy, pre, post, n_out)
    if g is not None:
        return g
    T = _rows([n, gy.shape[1]], x.itemsize, b)
    nchunk = max(1, min(get_num_threads(), (b + T - 1) // T))
    gacc = np.zeros((nchunk, pre * post, n_out, n_in), dtype=x.dtype)
    with serial_blas(nchunk):
        _weight_grad(x, gy, pre, post, T, gacc)
    return gacc.sum(axis=0) if nchunk > 1 else gacc[0]

@njit(cache=True, inline="always")
def _norm(v):
    acc = 0.0
    for i in range(v.shape[0]):
        acc += v[i].real * v[i].real + v[i].imag * v[i].imag
    return np.sqrt(acc)


@njit(cache=True, inline="always")
def _dotc(a, b):
    acc = a[0] * 0
    for i in range(a.shape[0]):
        acc += np.conj(a[i]) * b[i]
    return acc


@njit(cache=True, inline="always")
def _orth_into(K, nk, w):
    """Orthogonalize ``w`` against rows ``0 .. nk-1`` of ``K`` (two passes) and store it in
    row ``nk``; a vector that the previous rows already span is stored as zero."""
    n = w.shape[0]
    before = _norm(w)
    for _ in range(2):
        for i in range(nk):
            c = _dotc(K[i], w)
            ki = K[i]
            for t in range(n):
                w[t] -= c * ki[t]
    nrm = _norm(w)
    out = K[nk]
    if nrm > 1e-12 * before and nrm > 0:
        for t in range(n):
            out[t] = w[t] / nrm
    else:
        out[:] = 0


@njit(cache=True, inline="always")
def _gram_apply(A, v, tmp, out):
    """``out = A^H (A v)``: dots with the rows of ``A``, then a sum of conjugated rows (both
    loops run along contiguous rows, so no transposed copy of ``A`` is needed)."""
    m, n = A.shape
    for i in range(m):
        tmp[i] = _dotc_plain(A[i], v)
    out[:] = 0
    for i in range(m):
        ai = A[i]
        c = tmp[i]
        for j in range(n):
            out[j] += np.conj(ai[j]) * c


@njit(cache=True, inline="always")
def _dotc_plain(a, b):
    acc = a[0] * 0
    for i in range(a.shape[0]):
        acc += a[i] * b[i]
    return acc


@njit(cache=True, parallel=True, fastmath={"contract", "reassoc"})
def _low_rank(S, X0, dim, tol, max_restarts, L, R):
    """Top-``r`` right singular vectors of every ``S[b]`` (``m >= n``) by restarted block
    Lanczos on ``S^H S`` (applied as two products, never formed), with full
    reorthogonalization and Rayleigh-Ritz on the whole Krylov basis; writes balanced factors
    ``L[b] (m, r)`` and ``R[b] (r, n)`` with ``S ~ L R``."""
    nb, m, n = S.shape
    r = X0.shape[1]
    eps = 2.220446049250313e-16  # the caller works in double precision
    for b in prange(nb):
        A = S[b]
        total = 0.0
        for i in range(m):
            total += _norm(A[i]) ** 2
        K = np.zeros((dim, n), dtype=S.dtype)
        AK = np.zeros((dim, n), dtype=S.dtype)
        w = np.empty(n, dtype=S.dtype)
        tmp = np.empty(m, dtype=S.dtype)
        H = np.empty((dim, dim), dtype=S.dtype)
        X = X0[b].copy()
        prev = -1.0
        for _ in range(max_restarts):
            for i in range(r):
                w[:] = X[i]
                _orth_into(K, i, w)
            for j in range(r, dim):
                _gram_apply(A, K[j - r], tmp, AK[j - r])
                w[:] = AK[j - r]
                _orth_into(K, j, w)
            for j in range(max(dim - r, 0), dim):
                _gram_apply(A, K[j], tmp, AK[j])
            for i in range(dim):
                for j in range(i, dim):
                    h = _dotc(K[i], AK[j])
                    H[i, j] = h
                    H[j, i] = np.conj(h)
            theta, W = np.linalg.eigh(H)
            energy = 0.0
            for q in range(r):
                col = dim - 1 - q
                energy += theta[col].real
                xq = X[q]
                xq[:] = 0
                for i in range(dim):
                    c = W[i, col]
                    ki = K[i]
                    for t in range(n):
                        xq[t] += c * ki[t]
            if dim >= n:
                break
            # energy still missing <= sum of |G x - theta x|^2 / gap (Rayleigh-Ritz bounds)
            gap = theta[dim - r] - theta[dim - r - 1]
            miss = 0.0
            for q in range(r):
                _gram_apply(A, X[q], tmp, w)
                th = theta[dim - 1 - q]
                res = 0.0
                for t in range(n):
                    d = w[t] - th * X[q, t]
                    res += d.real * d.real + d.imag * d.imag
                miss += res
            limit = max(tol * (total - energy), 16 * eps * total)
            if miss <= limit * max(gap, 0.0) or abs(energy - prev) <= limit:
                break
            prev = energy
        for q in range(r):
            for i in range(m):
                tmp[i] = _dotc_plain(A[i], X[q])
            sig = _norm(tmp)
            if sig > 0:
                sq = np.sqrt(sig)
                for i in range(m):
                    L[b, i, q] = tmp[i] / sq
                for t in range(n):
                    R[b, q, t] = sq * np.conj(X[q, t])


def low_rank(S: np.ndarray, rank: int, tol: float, max_iter: int):
    """Best rank-``rank`` factors ``S[b] ~ L[b] @ R[b]`` of a stack ``S (nb, m, n)``.

    ``L (nb, m, rank)`` and ``R (nb, rank, n)``, balanced (column ``q`` of ``L`` and row ``q``
    of ``R`` both have norm ``sqrt(sigma_q)``). ``rank <= min(m, n)``; ``max_iter`` bounds
    the Lanczos restarts, ``tol`` the growth of the captured energy (relative to the residual
    energy) at which they stop.
    """
    nb, m, n = S.shape
    wide = m < n
    if wide:
        S = np.conj(np.swapaxes(S, 1, 2))
        m, n = n, m
    S = np.ascontiguousarray(S)
    L = np.zeros((nb, m, rank), dtype=S.dtype)
    R = np.zeros((nb, rank, n), dtype=S.dtype)
    if nb and rank:
        rng = np.random.default_rng(0)
        X0 = rng.standard_normal((nb, rank, n))
        if S.dtype.kind == "c":
            X0 = X0 + 1j * rng.standard_normal((nb, rank, n))
        dim = min(n, max(3 * rank, rank + 12))
        with serial_blas(get_num_threads()):  # eigh calls LAPACK in every Numba thread
            _low_rank(S, X0.astype(S.dtype), dim, tol, max_iter, L, R)
    if wide:
        L, R = np.conj(np.swapaxes(R, 1, 2)), np.conj(np.swapaxes(L, 1, 2))
    return np.ascontiguousarray(L), np.ascontiguousarray(R)
