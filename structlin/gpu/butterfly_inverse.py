"""CUDA butterfly block inversion, log-determinant and inverse VJP (``butterfly_inverse.cu``).

Contract (shared with :mod:`structlin._cpu.butterfly_inverse`): ``tw`` is a C-contiguous
array of 2x2 blocks, shape ``(..., 2, 2)``.

- ``invert(tw, scale, adjoint)`` returns ``(out, rcond, index)``: ``scale * T^-1`` (or
  ``scale * T^-H``) per block, the smallest block reciprocal condition number (0: singular,
  -1: not finite) and the first block index reaching it;
- ``slogdet(tw)`` returns ``(sign, logabsdet)`` as host scalars;
- ``inverse_vjp(inv, ginv)`` returns ``-V^H G V^H`` per block.

One thread per block, grid-stride, ``THREADS`` threads per CUDA block and at most
``BLOCKS_PER_SM`` CUDA blocks per SM; each CUDA block reduces its share in shared memory and
writes one partial result, and the few partials are reduced on the host: ``invert`` and
``slogdet`` read back ``2 * grid`` scalars (the one host-device synchronization, needed to
raise on singular blocks).
"""

from __future__ import annotations

import math

import cupy
import numpy as np

from structlin.gpu import butterfly as _butterfly
from structlin.gpu._compile import get_kernel, instantiations, launch, sm_count, type_name

__all__ = ["NAME_EXPRESSIONS", "inverse_vjp", "invert", "slogdet", "solve"]

NAME_EXPRESSIONS = (
    instantiations("butterfly_invert_blocks")
    + instantiations("butterfly_slogdet_blocks")
    + instantiations("butterfly_inverse_vjp_blocks")
)

#: threads per CUDA block (a power of two: the reductions halve it)
THREADS = 256
#: CUDA blocks per SM, at most (each thread then loops over several 2x2 blocks)
BLOCKS_PER_SM = 8


def _grid(nb: int) -> int:
    return max(1, min((nb + THREADS - 1) // THREADS,
                      BLOCKS_PER_SM * sm_count(cupy.cuda.Device().id)))


def _kernel(template: str, dtype) -> object:
    return get_kernel("butterfly_inverse", NAME_EXPRESSIONS, f"{template}<{type_name(dtype)}>")


def _check(tw) -> int:
    if tw.ndim < 2 or tw.shape[-2:] != (2, 2) or not tw.flags.c_contiguous:
        raise ValueError(f"expected C-contiguous 2x2 blocks (..., 2, 2), got {tw.shape}")
    return tw.size // 4


def invert(tw: cupy.ndarray, scale: float = 1.0, adjoint: bool = False):
    """Return ``(scale * T^-1 or scale * T^-H per block, min rcond, its flat block index)``."""
    nb = _check(tw)
    out = cupy.empty_like(tw)
    if nb == 0:
        return out, math.inf, -1
    grid = _grid(nb)
    part_rcond = cupy.empty(grid, dtype=np.float64)
    part_index = cupy.empty(grid, dtype=np.int64)
    args = (tw, out, np.int64(nb), np.float64(scale), np.int32(bool(adjoint)), part_rcond,
            part_index)
    launch(_kernel("butterfly_invert_blocks", tw.dtype), grid, THREADS, args, THREADS * 16)
    rc = cupy.asnumpy(part_rcond)
    idx = cupy.asnumpy(part_index)
    best = rc.min()
    return out, float(best), int(idx[(rc == best) & (idx >= 0)].min())


def solve(tw: cupy.ndarray, x: cupy.ndarray, increasing: bool):
    """Return ``(B^-1 x, rcond, index)``: the inverted blocks, then the product kernel."""
    inv, rcond, index = invert(tw)
    if rcond <= 0:
        return None, rcond, index
    return _butterfly.apply(inv, x, not increasing), rcond, index


def slogdet(tw: cupy.ndarray):
    """Return ``(sign, logabsdet)`` of the product of the blocks' determinants (host scalars)."""
    nb = _check(tw)
    complex_ = tw.dtype.kind == "c"
    if nb == 0:
        return (complex(1.0) if complex_ else 1.0), 0.0
    grid = _grid(nb)
    part_log = cupy.empty(grid, dtype=np.float64)
    part_sign = cupy.empty(grid, dtype=np.complex128 if complex_ else np.float64)
    smem = THREADS * (8 + part_sign.itemsize)
    launch(_kernel("butterfly_slogdet_blocks", tw.dtype), grid, THREADS,
           (tw, np.int64(nb), part_log, part_sign), smem)
    logs = cupy.asnumpy(part_log)
    signs = cupy.asnumpy(part_sign)
    sign = signs[0]
    for s in signs[1:]:
        sign = sign * s
    if complex_ and sign != 0:
        sign = sign / abs(sign)
    return sign, float(logs.sum())


def inverse_vjp(inv: cupy.ndarray, ginv: cupy.ndarray) -> cupy.ndarray:
    """Return ``-V^H G V^H`` for every block ``V`` of ``inv`` and ``G`` of ``ginv``."""
    nb = _check(inv)
    if ginv.shape != inv.shape or ginv.dtype != inv.dtype or not ginv.flags.c_contiguous:
        raise ValueError(f"ginv must be C-contiguous {inv.shape} {inv.dtype}, "
                         f"got {ginv.shape} {ginv.dtype}")
    out = cupy.empty_like(inv)
    if nb:
        launch(_kernel("butterfly_inverse_vjp_blocks", inv.dtype), _grid(nb), THREADS,
               (inv, ginv, out, np.int64(nb)), 0)
    return out
