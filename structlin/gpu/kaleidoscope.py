"""CUDA K-matrix product and its VJP.

Contract (shared with :mod:`structlin._cpu.kaleidoscope`): ``tw`` is C-contiguous
``(w, 2, L, n//2, 2, 2)`` in operator form with the dtype of ``x``: for ``i = w-1, ..., 0``
the blocks ``tw[i, 1]`` are applied in decreasing stride, then ``tw[i, 0]`` in increasing
stride. ``x`` is C-contiguous ``(batch, n)``. ``apply`` returns ``K x``; ``apply_vjp`` returns
``(gtw, gx)`` with ``gx = K^H g``.

Product: while a row fits :data:`structlin.gpu.butterfly.SMEM_BYTES` (float32: ``n <=
16384``; complex128: ``n <= 4096``), one launch of ``kaleidoscope_rows`` (in ``butterfly.cu``,
on the butterfly kernels' tile and level code): a block holds up to
:data:`structlin.gpu.butterfly.ROWS` whole rows in shared memory and applies all ``2 w``
butterflies there, so ``x`` is read and written once. Longer rows: the ``2 w`` butterflies one
after the other with the butterfly kernels (:mod:`structlin._kaleidoscope_stages`).

VJP: the ``2 w`` stage inputs are stored, then the butterfly VJP kernel runs from the last
stage back (each butterfly's gradient pass keeps its factors' inputs in shared memory, which
leaves no room for a whole K-matrix's).
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin import _kaleidoscope_stages as _stages
from structlin.gpu import butterfly as _bf
from structlin.gpu._compile import get_kernel, launch, n_tiles, type_name

__all__ = ["apply", "apply_vjp", "fused"]


def fused(n: int, itemsize: int) -> bool:
    """Whether rows of ``n`` elements of ``itemsize`` bytes take the one-launch kernel."""
    return n >= 2 and n * itemsize <= _bf.SMEM_BYTES


def apply(tw, x):
    """Return ``K x`` row by row (see the module docstring for the contract)."""
    batch, n = x.shape
    if batch == 0 or tw.shape[2] == 0:
        return x.copy()
    if not fused(n, x.itemsize):
        return _stages.apply(cupy, _bf, tw, x)
    w, L = tw.shape[0], tw.shape[2]
    _, rb, rc, threads, smem = _bf._geometry(batch, 0, L, 0, x.itemsize, vjp=False)
    y = cupy.empty_like(x)
    kernel = get_kernel("butterfly", _bf.NAME_EXPRESSIONS,
                        f"kaleidoscope_rows<{type_name(x.dtype)}>")
    args = (x, y, tw, np.int64(batch), np.int64(n), np.int32(L), np.int32(w), np.int32(rb),
            np.int32(rc))
    launch(kernel, n_tiles(batch, n, 0, L, 0, rb), threads, args, smem)
    return y


def apply_vjp(tw, x, g):
    """Return ``(gtw, gx)`` for ``y = K x`` and the output gradient ``g``."""
    return _stages.apply_vjp(cupy, _bf, tw, x, g)
