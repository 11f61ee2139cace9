"""CUDA fast Walsh–Hadamard transform (launcher of ``hadamard.cu``).

``fwht(x)`` returns ``x @ H_n`` (Sylvester order, unnormalized) for C-contiguous
``(batch, n)`` input, ``n`` a power of two.

A pass transforms tiles of :data:`TILE_BYTES` (``sl::Tile`` in ``_common.cuh``) entirely on
chip: each thread keeps 128 bytes of the tile in registers and does radix-8/16/32 butterflies
there (float32: radix 32); windows of levels exchange through padded, conflict-free shared
memory, and the first read and last write go straight between registers and global memory,
coalesced. Rows up to 64 KiB (float32 ``n <= 2**14``, float64/complex64 ``2**13``,
complex128 ``2**12``) take one pass, i.e. one read and one write of ``x``; longer rows take
further passes of up to ``TILE_BYTES / RUN_BYTES`` levels on 64-byte column runs
(float32 ``n = 2**24``: two passes).
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin.gpu._compile import (
    get_kernel,
    instantiations,
    launch,
    n_tiles,
    sm_count,
    type_name,
)

__all__ = ["NAME_EXPRESSIONS", "fwht"]

NAME_EXPRESSIONS = instantiations("fwht_pass")

#: tile bytes held by one block (plus 1/E padding in shared memory)
TILE_BYTES = 64 * 1024
#: bytes per thread in registers (E = REG_BYTES / itemsize elements; must match hadamard.cu)
REG_BYTES = 128
#: bytes of consecutive columns per tile row in passes after the first
RUN_BYTES = 64
#: tiles per SM wanted before tiles grow beyond their minimum
TILES_PER_SM = 4


def _log2(v: int) -> int:
    return v.bit_length() - 1


def _plan(L: int, itemsize: int) -> list[tuple[int, int, int]]:
    """Passes ``(k0, k1, wb)`` covering levels ``0 .. L-1``."""
    tb_max = _log2(TILE_BYTES // itemsize)
    run_bits = _log2(RUN_BYTES // itemsize)
    passes = [(0, min(L, tb_max), 0)]
    k0 = passes[0][1]
    while k0 < L:
        wb = min(k0, run_bits)
        k1 = min(L, k0 + tb_max - wb)
        passes.append((k0, k1, wb))
        k0 = k1
    return passes


def _geometry(batch, n, k0, k1, wb, itemsize, target_tiles):
    """Tile shape ``(wb, rb)``, threads and shared-memory bytes of one pass."""
    mb = k1 - k0
    tb_max = _log2(TILE_BYTES // itemsize)
    loge = _log2(REG_BYTES // itemsize)
    min_tb = loge + 5  # one warp
    while mb + wb < min_tb and wb < k0:
        wb += 1
    rb = max(0, min_tb - mb - wb)
    max_rb = max(0, (batch - 1).bit_length())
    while (
        mb + wb + rb < tb_max
        and rb < max_rb
        and n_tiles(batch, n, k0, k1, wb, rb + 1) >= target_tiles
    ):
        rb += 1
    # wider column runs (longer contiguous reads) while enough tiles remain
    while (
        mb + wb + rb < tb_max
        and wb < k0
        and n_tiles(batch, n, k0, k1, wb + 1, rb) >= target_tiles
    ):
        wb += 1
    tb = mb + wb + rb
    threads = 1 << (tb - loge)
    smem = ((1 << tb) + (1 << (tb - loge))) * itemsize
    return wb, rb, threads, smem


def fwht(x: cupy.ndarray, scale: float = 1.0) -> cupy.ndarray:
    """Return ``scale`` times the Walsh–Hadamard transform of each row of ``x``."""
    if x.ndim != 2 or not x.flags.c_contiguous:
        raise ValueError(f"x must be a C-contiguous (batch, n) array, got shape {x.shape}")
    batch, n = x.shape
    if n < 1 or n & (n - 1):
        raise ValueError(f"x must have a power-of-two number of columns, got {n}")
    if batch == 0 or n == 1:
        return x * x.dtype.type(scale)
    kernel = get_kernel("hadamard", NAME_EXPRESSIONS, f"fwht_pass<{type_name(x.dtype)}>")
    target = TILES_PER_SM * sm_count(cupy.cuda.Device().id)
    y = cupy.empty_like(x)
    src = x
    # a block reads and writes only its own tile, so passes after the first work in place
    for k0, k1, wb0 in _plan(_log2(n), x.itemsize):
        wb, rb, threads, smem = _geometry(batch, n, k0, k1, wb0, x.itemsize, target)
        args = (src, y, np.int64(batch), np.int64(n), np.int32(k0), np.int32(k1),
                np.int32(wb), np.int32(rb))
        launch(kernel, n_tiles(batch, n, k0, k1, wb, rb), threads, args, smem)
        src = y
    if scale != 1.0:
        # a separate elementwise pass; folding it into the last pass's store
        # would save one read and one write of y
        y *= x.dtype.type(scale)
    return y
