"""CUDA butterfly multiply and its VJP (launchers of ``butterfly.cu``).

Contract (shared with :mod:`structlin._cpu.butterfly`): ``tw`` is C-contiguous
``(L, n//2, 2, 2)`` with the dtype of ``x``; ``x`` is C-contiguous ``(batch, n)``, ``n = 2**L``.
``apply`` returns ``F_{L-1} ... F_0 x`` (``increasing``) or ``F_0 ... F_{L-1} x``;
``apply_vjp`` returns ``(gtw, gx)`` with ``gx = M^H g`` and
``gtw[k, j, r, c] = sum_batch h_r * conj(u_c)`` (``u``: the pair entering factor ``k``,
``h``: the gradient leaving it).

The factors are applied in passes ``[k0, k1)`` (see ``sl::Tile`` in ``_common.cuh``): a block
gathers a tile of ``2**rb`` rows x ``2**(k1-k0)`` positions x ``2**wb`` consecutive columns
into shared memory, applies the pass's factors there and writes it back. While ``rows x n``
fits :data:`SMEM_BYTES` there is one pass (one read and one write of ``x``). Tiles hold up to
:data:`ROWS` rows because each twiddle block loaded is reused across them; the pass planner
trades a second pass for that reuse (float32: one pass up to ``n = 2**14`` for a single row,
``2**11`` for ``batch >= 8``; two passes up to ``2**24`` and ``2**18``). The VJP keeps the
inputs of every factor of a pass in shared memory (``k1 - k0 + 1`` tile copies,
:data:`VJP_SMEM_BYTES`), so its passes are shorter; the inputs of later passes are recomputed
by forward passes and kept in global memory.
Twiddle gradients are summed over the rows of a tile in registers, then over tiles with
atomics (float32 accumulates in float32; the summation order, hence the last bits, varies
between runs).
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, instantiations, launch, n_tiles, type_name

__all__ = ["NAME_EXPRESSIONS", "apply", "apply_vjp", "gather_last"]

NAME_EXPRESSIONS = (instantiations("butterfly_pass") + instantiations("butterfly_pass_vjp")
                    + instantiations("kaleidoscope_rows"))

#: shared memory per block of the forward pass (two or three blocks per SM on A100/H100)
SMEM_BYTES = 64 * 1024
#: shared memory per block of the VJP pass
VJP_SMEM_BYTES = 96 * 1024
#: rows per tile sharing each twiddle load, when the batch has them
ROWS = 8
#: bytes of consecutive columns per tile row in passes after the first (two 32-byte sectors)
RUN_BYTES = 64
#: tiles smaller than this (elements) are widened with more columns or rows
MIN_TILE = 1024
#: work items per level wanted before a twiddle load is shared by fewer rows
ITEMS_TARGET = 256
MAX_THREADS = 512


def _log2_ceil(v: int) -> int:
    return max(0, (v - 1).bit_length())


def _copies(vjp: bool, nl: int) -> int:
    return nl + 1 if vjp else 1


def _plan(L: int, itemsize: int, batch: int, vjp: bool) -> list[tuple[int, int, int]]:
    """Passes ``(k0, k1, wb)`` covering factors ``0 .. L-1`` in increasing order."""
    budget = (VJP_SMEM_BYTES if vjp else SMEM_BYTES) // itemsize
    per_row = budget >> min(_log2_ceil(ROWS), _log2_ceil(batch))
    run_bits = _log2_ceil(max(1, RUN_BYTES // itemsize))
    passes = []
    k0 = 0
    while k0 < L:
        wb = min(k0, run_bits)
        nl = 1
        while k0 + nl < L and (1 << (nl + 1 + wb)) * _copies(vjp, nl + 1) <= per_row:
            nl += 1
        passes.append((k0, k0 + nl, wb))
        k0 += nl
    return passes


def _geometry(batch, k0, k1, wb, itemsize, vjp):
    """Tile shape ``(wb, rb, rc)``, threads and shared-memory bytes of one pass."""
    mb = k1 - k0
    copies = _copies(vjp, mb)
    budget = (VJP_SMEM_BYTES if vjp else SMEM_BYTES) // itemsize
    max_rb = _log2_ceil(batch)

    def fits(bits):
        return (1 << bits) * copies <= budget

    rb = 0
    while rb < min(max_rb, _log2_ceil(ROWS)) and fits(rb + 1 + mb + wb):
        rb += 1
    while (1 << (rb + mb + wb)) < MIN_TILE and wb < k0 and fits(rb + mb + wb + 1):
        wb += 1
    while (1 << (rb + mb + wb)) < MIN_TILE and rb < max_rb and fits(rb + mb + wb + 1):
        rb += 1
    pairs = 1 << (mb - 1 + wb)
    rc = 1 << rb
    while rc > 1 and pairs * ((1 << rb) // rc) < ITEMS_TARGET:
        rc //= 2
    items = pairs * ((1 << rb) // rc)
    threads = min(MAX_THREADS, max(32, (items + 31) // 32 * 32))
    smem = (1 << (rb + mb + wb)) * copies * itemsize
    return wb, rb, rc, threads, smem


def _check(tw, x):
    if tw.dtype != x.dtype:
        raise TypeError(f"tw must have the dtype of x ({x.dtype}), got {tw.dtype}")
    if x.ndim != 2 or tw.ndim != 4 or tw.shape[1:] != (x.shape[1] // 2, 2, 2):
        raise ValueError(
            f"expected tw (L, n//2, 2, 2) and x (batch, n), got {tw.shape} and {x.shape}"
        )
    if x.shape[1] != 1 << tw.shape[0]:
        raise ValueError(f"x must have n = 2**L = {1 << tw.shape[0]} columns, got {x.shape[1]}")
    if not (tw.flags.c_contiguous and x.flags.c_contiguous):
        raise ValueError("tw and x must be C-contiguous")


def _forward_pass(src, dst, tw, p, increasing):
    batch, n = src.shape
    k0, k1, wb0 = p
    wb, rb, rc, threads, smem = _geometry(batch, k0, k1, wb0, src.itemsize, vjp=False)
    kernel = get_kernel(
        "butterfly", NAME_EXPRESSIONS, f"butterfly_pass<{type_name(src.dtype)}>"
    )
    args = (src, dst, tw, np.int64(batch), np.int64(n), np.int32(k0), np.int32(k1),
            np.int32(wb), np.int32(rb), np.int32(rc), np.int32(increasing))
    launch(kernel, n_tiles(batch, n, k0, k1, wb, rb), threads, args, smem)


def apply(tw: cupy.ndarray, x: cupy.ndarray, increasing: bool) -> cupy.ndarray:
    """Return ``M x`` row by row (see the module docstring for the contract)."""
    _check(tw, x)
    batch = x.shape[0]
    L = tw.shape[0]
    if batch == 0 or L == 0:
        return x.copy()
    y = cupy.empty_like(x)
    passes = _plan(L, x.itemsize, batch, vjp=False)
    src = x
    # a block reads and writes only its own tile, so passes after the first work in place
    for p in passes if increasing else passes[::-1]:
        _forward_pass(src, y, tw, p, increasing)
        src = y
    return y


def apply_vjp(
    tw: cupy.ndarray, x: cupy.ndarray, g: cupy.ndarray, increasing: bool
) -> tuple[cupy.ndarray, cupy.ndarray]:
    """Return ``(gtw, gx)`` for ``y = M x`` and the output gradient ``g``."""
    _check(tw, x)
    if g.shape != x.shape or g.dtype != x.dtype or not g.flags.c_contiguous:
        raise ValueError(f"g must be C-contiguous {x.shape} {x.dtype}, got {g.shape} {g.dtype}")
    batch, n = x.shape
    L = tw.shape[0]
    gtw = cupy.zeros_like(tw)
    if batch == 0 or L == 0:
        return gtw, g.copy()
    passes = _plan(L, x.itemsize, batch, vjp=True)
    if not increasing:
        passes = passes[::-1]
    inputs = [x]
    for p in passes[:-1]:
        nxt = cupy.empty_like(x)
        _forward_pass(inputs[-1], nxt, tw, p, increasing)
        inputs.append(nxt)
    kernel = get_kernel(
        "butterfly", NAME_EXPRESSIONS, f"butterfly_pass_vjp<{type_name(x.dtype)}>"
    )
    gx = cupy.empty_like(g)
    gcur = g
    for (k0, k1, wb0), xin in zip(passes[::-1], inputs[::-1], strict=True):
        wb, rb, rc, threads, smem = _geometry(batch, k0, k1, wb0, x.itemsize, vjp=True)
        args = (xin, gcur, gx, tw, gtw, np.int64(batch), np.int64(n), np.int32(k0),
                np.int32(k1), np.int32(wb), np.int32(rb), np.int32(rc), np.int32(increasing))
        launch(kernel, n_tiles(batch, n, k0, k1, wb, rb), threads, args, smem)
        gcur = gx
    return gtw, gx


def gather_last(x: cupy.ndarray, idx) -> cupy.ndarray:
    """``x[:, idx]`` for a C-contiguous ``(batch, n)`` array (CuPy's gather kernel: one read
    and one write per element, coalesced along the rows)."""
    return cupy.take(x, cupy.asarray(idx), axis=1)
