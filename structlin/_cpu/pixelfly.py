"""Numba kernels of Pixelfly: ``x @ S.T + xv @ U.T`` in one pass, and the block gradients.

Contract (shared with ``structlin.gpu.pixelfly``): ``S`` is given in block CSR form over its
block rows, ``indptr`` (int64, ``nbo + 1``) and ``indices`` (int64, ``nnz``: the block column
of each stored block), ``blocks`` C-contiguous ``(nnz, bs, bs)`` with the dtype of ``x``;
``rows`` (int64, ``nnz``) is the block row of each stored block. ``x`` and ``g`` are
C-contiguous ``(batch, n)``; ``U`` is C-contiguous ``(nbo * bs, r)`` and ``xv`` C-contiguous
``(batch, r)`` (``r`` may be 0).

- ``matmul(blocks, indptr, indices, x, U, xv)`` returns ``y = x @ S.T + xv @ U.T``, shape
  ``(batch, nbo * bs)`` (with ``xv = x @ V`` this is the Pixelfly product);
- ``bsr_grad_blocks(g, x, indptr, indices, rows)`` returns ``G`` of shape ``(nnz, bs, bs)``
  with ``G[k] = g[:, I_k]^T @ conj(x[:, J_k])`` (``I_k``, ``J_k``: the ``bs`` columns of block
  row ``rows[k]`` and block column ``indices[k]``), i.e. the gradient of ``S`` on its support.

Real float32/float64 products whose block size is a multiple of the vector width
(:func:`has_microkernel_form`) run on the register-blocked micro-kernel of
:mod:`structlin._cpu._microkernel`: tiles of batch rows in parallel, each staged once into a
buffer whose rows are padded by one vector (rows of ``x`` 16 KiB apart, as for ``n = 4096``
float32, would share one set of the L1 cache), then for every block row and ``MR`` rows at a
time one micro-kernel call per stored block, broadcasting the ``x`` segment in place (no
gather) against the block's ``B^T``, accumulating into a small output tile that stays in L1,
and one more call for the low-rank term (``x V`` against ``U_I^T``): ``y`` is written once.
The tile's rows of ``x`` stay in L2 while it runs through all block rows.

Other products (complex, or blocks that are not whole vectors) and the block gradients work
on tiles of (batch rows, block row): the ``x`` segments a block row needs are
gathered side by side into one contiguous ``(tile, nnz_row * bs)`` panel, so that each block
row costs a single GEMM against its blocks stacked as one ``(nnz_row * bs, bs)`` panel (BLAS
through ``np.dot``, kept single-threaded inside the parallel tiles by
:func:`structlin._cpu._schedule.serial_blas`: OpenBLAS's own threshold, which
:func:`tile_rows` sizes the tiles for, does not hold for complex GEMMs, whose nested
threads made complex64 products 10x slower). The product appends the tile's ``xv`` to the
panel and the block row's ``U^T`` to the stacked blocks, so the low-rank term costs no extra
pass over ``y``. Gathering copies every entry of ``x`` once per stored block of its block
column, which the GEMM amortises over ``2 bs`` flops.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, get_thread_id, njit, parallel_chunksize, prange

from structlin._cpu._microkernel import (
    MR,
    STREAM_BYTES,
    aligned_empty,
    bcast_call,
    lanes_of,
    store_fence,
    stream_copy,
    tile_width,
    vector_lanes,
)
from structlin._cpu._schedule import serial_blas, serial_when_small

__all__ = ["bsr_grad_blocks", "matmul"]

#: OpenBLAS runs a GEMM with ``m * n * k`` below this on the calling thread only
#: (``SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD = 65536 * 4``); tiles stay below it so
#: that BLAS thread pools are not nested inside Numba's parallel loop (measured on 2 cores:
#: several times slower when they are)
SINGLE_THREAD_GEMM = 1 << 18
#: batch rows per tile, at most (the gathered panel then fits the L2 cache)
MAX_TILE_ROWS = 256
MIN_TILE_ROWS = 8


def tile_rows(indptr: np.ndarray, bs: int, r: int = 0) -> int:
    """Batch rows per tile: a multiple of 8 keeping every tile's GEMM single-threaded."""
    k_max = int(np.max(np.diff(indptr), initial=1)) * bs + r
    rows = (SINGLE_THREAD_GEMM - 1) // max(1, k_max * bs)
    return max(MIN_TILE_ROWS, min(MAX_TILE_ROWS, rows // 8 * 8))


@njit(cache=True)
def _pack(blocks, U, indptr, wp):
    """Panel of block row I at rows ``indptr[I] * bs + I * r``: its blocks^T, then U_I^T."""
    nbo = indptr.shape[0] - 1
    bs = blocks.shape[1]
    r = U.shape[1]
    for I in range(nbo):
        off = indptr[I] * bs + I * r
        for p in range(indptr[I], indptr[I + 1]):
            for c in range(bs):
                for rr in range(bs):
                    wp[off + c, rr] = blocks[p, rr, c]
            off += bs
        for j in range(r):
            for rr in range(bs):
                wp[off + j, rr] = U[I * bs + rr, j]


@njit(cache=True, parallel=True)
def _matmul(x, xv, wp, indptr, indices, bs, rows_per_tile, y):
    batch = x.shape[0]
    nbo = indptr.shape[0] - 1
    r = xv.shape[1]
    n_tiles = (batch + rows_per_tile - 1) // rows_per_tile
    for t in prange(n_tiles * nbo):
        # block row fastest: consecutive work items reuse the same x rows from cache
        tb = t // nbo
        I = t - tb * nbo
        b0 = tb * rows_per_tile
        m = min(batch, b0 + rows_per_tile) - b0
        p0 = indptr[I]
        p1 = indptr[I + 1]
        out_cols = y[b0 : b0 + m, I * bs : (I + 1) * bs]
        kb = (p1 - p0) * bs
        if kb + r == 0:
            out_cols[:] = 0
            continue
        xg = np.empty((m, kb + r), dtype=x.dtype)
        for b in range(m):
            xr = x[b0 + b]
            for q in range(p1 - p0):
                J = indices[p0 + q]
                xg[b, q * bs : (q + 1) * bs] = xr[J * bs : (J + 1) * bs]
            xg[b, kb:] = xv[b0 + b]
        off = p0 * bs + I * r
        out = np.dot(xg, wp[off : off + kb + r])
        for b in range(m):
            out_cols[b] = out[b]


#: bytes of the batch rows of ``x`` one tile of the micro-kernel path keeps in the L2 cache
#: while it runs through every block row
MK_TILE_BYTES = 1 << 19
MK_MAX_ROWS = 96


@njit(cache=True)
def _mk_block_rows(xs, lds, xv, ldv, wp, indptr, indices, bs, rows, yt, y, n_out, r0, nt,
                   stream):
    """Every block row of the product on one tile of ``rows`` (a multiple of :data:`MR`)
    staged batch rows, written to ``y[r0 : r0 + nt]``.

    ``y`` is the flat output (rows of ``n_out``), written with non-temporal stores if
    ``stream`` (then 64-byte aligned, and the caller fences). ``xs[t * lds + j]`` is
    ``x[r0 + t, j]`` and ``xv[t * ldv + j]`` is ``(x V)[r0 + t, j]``;
    ``wp`` is the panel of :func:`_pack`. For a block row ``I`` and ``MR`` rows at a time,
    each stored block ``(I, J)`` is one micro-kernel call over its ``bs`` inputs (the ``x``
    segment broadcast from the staged rows, ``B^T`` as the vector operand), accumulating
    into the small output tile ``yt`` while it sits in L1; the low-rank term is one more call,
    on ``x V`` and ``U_I^T``. The staged rows and ``yt`` have row strides that are not
    multiples of 4 KiB: rows of ``x`` or ``y`` read in place, 16 KiB apart for ``n = 4096``,
    would all fall into one set of the L1 cache.
    """
    L = vector_lanes(xs)
    nbo = indptr.shape[0] - 1
    r = ldv
    ldt = bs + L  # rows of the output tile, padded by one vector
    for I in range(nbo):
        p0 = indptr[I]
        p1 = indptr[I + 1]
        u0 = (p1 * bs + I * r) * bs
        for t0 in range(0, rows, MR):
            ov = 0
            while ov < bs:
                nv = tile_width((bs - ov) // L)
                a = t0 * lds
                for p in range(p0, p1):
                    bcast_call(nv, p > p0, xs, a + indices[p] * bs, lds, 1, wp,
                               (p * bs + I * r) * bs + ov, bs, L, yt, ov, ldt, L, bs, False)
                if r > 0:
                    bcast_call(nv, p1 > p0, xv, t0 * ldv, ldv, 1, wp, u0 + ov, bs, L,
                               yt, ov, ldt, L, r, False)
                elif p1 == p0:
                    for t in range(MR):
                        yt[t * ldt + ov : t * ldt + ov + nv * L] = 0
                ov += nv * L
            for t in range(min(MR, nt - t0)):
                if stream:
                    stream_copy(yt, t * ldt, y, (r0 + t0 + t) * n_out + I * bs, bs)
                else:
                    y[(r0 + t0 + t) * n_out + I * bs : (r0 + t0 + t) * n_out + (I + 1) * bs] = \
                        yt[t * ldt : t * ldt + bs]


@njit(cache=True)
def _mk_tile(x, xv, wp, indptr, indices, bs, r0, nt, y, buf, yt, stream):
    """Rows ``r0 .. r0 + nt - 1`` (at most one tile) staged into ``buf`` (rows padded by one
    vector, the last ones zero up to a multiple of :data:`MR`), then :func:`_mk_block_rows`."""
    n = x.shape[1]
    r = xv.shape[1]
    lds = n + vector_lanes(x)
    rows = (nt + MR - 1) // MR * MR
    xs = buf[: rows * lds]
    vs = buf[rows * lds : rows * (lds + r)]
    for t in range(nt):
        xs[t * lds : t * lds + n] = x[r0 + t]
        vs[t * r : (t + 1) * r] = xv[r0 + t]
    xs[nt * lds :] = 0
    vs[nt * r :] = 0
    _mk_block_rows(xs, lds, vs, r, wp, indptr, indices, bs, rows, yt, y.reshape(-1), y.shape[1],
                   r0, nt, stream)
    if stream:
        store_fence()


@njit(cache=True, parallel=True)
def _mk_tiles(x, xv, wp, indptr, indices, bs, T, y, xbufs, tbufs, stream):
    """:func:`_mk_tile` on every tile of ``T`` batch rows (a multiple of :data:`MR`), in
    parallel, each thread with its own buffers. The loop body is a call only: code lowered
    inside a parallel region can run several times slower than the same code compiled as a
    function (measured on the Monarch kernels)."""
    b = x.shape[0]
    for tile in prange((b + T - 1) // T):
        tid = get_thread_id()
        _mk_tile(x, xv, wp, indptr, indices, bs, tile * T, min(T, b - tile * T), y, xbufs[tid],
                 tbufs[tid], stream)


def _mk_rows(n: int, itemsize: int, batch: int) -> int:
    """Rows per tile of the micro-kernel path: a multiple of :data:`MR` whose rows of ``x``
    fit :data:`MK_TILE_BYTES`, no more than the batch needs."""
    T = max(MR, min(MK_MAX_ROWS, MK_TILE_BYTES // max(1, n * itemsize)) // MR * MR)
    return min(T, -(-batch // MR) * MR)


def _lines(elements: int, itemsize: int) -> int:
    """``elements`` rounded up to whole 64-byte lines, plus one line."""
    per = 64 // itemsize
    return (-(-elements // per) + 1) * per


def has_microkernel_form(dtype, bs: int) -> bool:
    """Whether products of ``dtype`` with blocks of size ``bs`` run on the micro-kernel: real
    float32/float64 and ``bs`` a multiple of the vector width (:func:`lanes_of`)."""
    dtype = np.dtype(dtype)
    return dtype in (np.float32, np.float64) and bs > 0 and bs % lanes_of(dtype.itemsize) == 0


def _matmul_microkernel(x, xv, wp, indptr, indices, bs, y):
    b, n = x.shape
    T = _mk_rows(n, x.itemsize, b)
    threads = get_num_threads()
    # a few tiles per thread at least, so that the dynamic schedule can balance them
    while T > MR and -(-b // T) < 4 * threads:
        T -= MR
    L = lanes_of(x.itemsize)
    # each thread's buffers padded to whole cache lines and apart by one more: threads writing
    # their output tiles into one shared line would keep taking it from each other
    xbufs = aligned_empty((threads, _lines(T * (n + L + xv.shape[1]), x.itemsize)), x.dtype)
    tbufs = aligned_empty((threads, _lines(MR * (bs + L), x.itemsize)), x.dtype)
    with parallel_chunksize(1):
        # a large output is written with non-temporal stores (it cannot stay cached, and
        # normal stores first read every line of it: 2 threads ran 2.3x slower, measured)
        stream = y.nbytes >= STREAM_BYTES and y.ctypes.data % 64 == 0
        _mk_tiles(x, xv, wp, indptr, indices, bs, T, y, xbufs, tbufs, stream)


@serial_when_small(arg=3)
def matmul(blocks: np.ndarray, indptr: np.ndarray, indices: np.ndarray, x: np.ndarray,
           U: np.ndarray, xv: np.ndarray) -> np.ndarray:
    """Return ``x @ S.T + xv @ U.T`` for the block-CSR matrix ``S`` (see the module docstring)."""
    nnz, bs, _ = blocks.shape
    nbo = indptr.shape[0] - 1
    r = U.shape[1]
    batch = x.shape[0]
    if has_microkernel_form(x.dtype, bs):
        y = aligned_empty((batch, nbo * bs), x.dtype)
    else:
        y = np.empty((batch, nbo * bs), dtype=x.dtype)
    if y.size == 0:
        return y
    # 64-byte aligned, as the staging buffers: the micro-kernel's vector loads then never
    # straddle two cache lines
    wp = aligned_empty((nnz * bs + nbo * r, bs), x.dtype)
    _pack(blocks, U, indptr, wp)
    if has_microkernel_form(x.dtype, bs):
        _matmul_microkernel(x, xv, wp.reshape(-1), indptr, indices, bs, y)
        return y
    with serial_blas(get_num_threads()):
        _matmul(x, xv, wp, indptr, indices, bs, tile_rows(indptr, bs, r), y)
    return y


@njit(cache=True, parallel=True)
def _grad_blocks(g, x, indptr, indices, bs, rows_per_tile, gb):
    batch = x.shape[0]
    nbo = indptr.shape[0] - 1
    for I in prange(nbo):
        p0 = indptr[I]
        p1 = indptr[I + 1]
        if p1 == p0:
            continue
        K = (p1 - p0) * bs
        acc = np.zeros((bs, K), dtype=x.dtype)
        for b0 in range(0, batch, rows_per_tile):
            m = min(batch, b0 + rows_per_tile) - b0
            xg = np.empty((m, K), dtype=x.dtype)
            gi = np.empty((m, bs), dtype=x.dtype)
            for b in range(m):
                xr = x[b0 + b]
                for q in range(p1 - p0):
                    J = indices[p0 + q]
                    for c in range(bs):
                        xg[b, q * bs + c] = np.conj(xr[J * bs + c])
                gi[b] = g[b0 + b, I * bs : (I + 1) * bs]
            acc += np.dot(gi.T, xg)
        for q in range(p1 - p0):
            gb[p0 + q] = acc[:, q * bs : (q + 1) * bs]


#: batch rows per chunk of the micro-kernel block gradient (its reduction length per call)
GRAD_CHUNK_ROWS = 128


@njit(cache=True, parallel=True)
def _stage_rows(src, r0, nt, dst, ld):
    """``dst[t * ld : t * ld + n] = src[r0 + t]`` for ``t < nt``, in parallel (the rest of
    each padded row set to zero)."""
    n = src.shape[1]
    for t in prange(nt):
        dst[t * ld : t * ld + n] = src[r0 + t]
        dst[t * ld + n : (t + 1) * ld] = 0


@njit(cache=True)
def _mk_grad_row(gs, ldg, xs, ldx, nt, indptr, indices, bs, nop, G, I, first):
    """Add the staged chunk's contribution to the gradients of block row ``I``'s blocks:
    ``G[p, o, i] += sum_t g[t, I * bs + o] x[t, J_p * bs + i]``, the batch rows being the
    micro-kernel's reduction (``g`` broadcast, ``MR`` values of ``o`` at a time, the ``x``
    segment in vectors). ``G`` is ``(nnz, nop, bs)`` flat with ``nop`` = ``bs`` rounded up
    to :data:`MR`; the padded rows read the staged ``g`` columns after the block (inside its
    padded row) and are discarded by the caller."""
    L = vector_lanes(xs)
    for p in range(indptr[I], indptr[I + 1]):
        J = indices[p]
        for o0 in range(0, bs, MR):
            iv = 0
            while iv < bs:
                nv = tile_width((bs - iv) // L)
                bcast_call(nv, not first, gs, I * bs + o0, 1, ldg, xs, J * bs + iv, ldx, L,
                           G, (p * nop + o0) * bs + iv, bs, L, nt, False)
                iv += nv * L


@njit(cache=True, parallel=True)
def _mk_grad_chunk(gs, ldg, xs, ldx, nt, indptr, indices, bs, nop, G, first):
    """:func:`_mk_grad_row` for every block row in parallel (each owns its blocks' gradients:
    no reduction across threads)."""
    nbo = indptr.shape[0] - 1
    for I in prange(nbo):
        _mk_grad_row(gs, ldg, xs, ldx, nt, indptr, indices, bs, nop, G, I, first)


def _grad_blocks_microkernel(g, x, indptr, indices, bs):
    """:func:`bsr_grad_blocks` on the micro-kernel (real dtypes, whole-vector blocks): the
    batch in chunks of :data:`GRAD_CHUNK_ROWS` rows, each staged once with padded rows (rows
    4 KiB-multiples apart would share L1 sets), then all block rows in parallel."""
    b = x.shape[0]
    L = lanes_of(x.itemsize)
    nnz = indices.shape[0]
    nop = -(-bs // MR) * MR
    ldg = g.shape[1] + 2 * L  # room for the MR-padded rows of the last block row
    ldx = x.shape[1] + L
    rows = min(GRAD_CHUNK_ROWS, b)
    gs = aligned_empty((rows * ldg,), x.dtype)
    xs = aligned_empty((rows * ldx,), x.dtype)
    G = aligned_empty((nnz * nop * bs,), x.dtype)
    for r0 in range(0, b, rows):
        nt = min(rows, b - r0)
        _stage_rows(g, r0, nt, gs, ldg)
        _stage_rows(x, r0, nt, xs, ldx)
        _mk_grad_chunk(gs, ldg, xs, ldx, nt, indptr, indices, bs, nop, G, r0 == 0)
    return np.ascontiguousarray(G.reshape(nnz, nop, bs)[:, :bs])


@serial_when_small(arg=0)
def bsr_grad_blocks(g: np.ndarray, x: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
                    rows: np.ndarray) -> np.ndarray:
    """Return ``G[k] = g[:, I_k]^T @ conj(x[:, J_k])`` (see the module docstring)."""
    nnz = indices.shape[0]
    nbo = indptr.shape[0] - 1
    bs = g.shape[1] // nbo if nbo else 0
    if nnz == 0 or x.shape[0] == 0:
        return np.zeros((nnz, bs, bs), dtype=x.dtype)
    if has_microkernel_form(x.dtype, bs):
        return _grad_blocks_microkernel(g, x, indptr, indices, bs)
    gb = np.zeros((nnz, bs, bs), dtype=x.dtype)
    with serial_blas(get_num_threads()):
        _grad_blocks(g, x, indptr, indices, bs, tile_rows(indptr, bs), gb)
    return gb
