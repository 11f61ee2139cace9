"""CUDA K-matrix product and its VJP.

Contract (shared with :mod:`structlin._cpu.kaleidoscope`): ``tw`` is C-contiguous
``(w, 2, L, n//2, 2, 2)`` in operator form with the dtype of ``x``: for ``i = w-1, ..., 0``
the blocks ``tw[i, 1]`` are applied in decreasing stride, then ``tw[i, 0]`` in increasing
stride. ``x`` is C-contiguous ``(batch, n)``. ``apply`` returns ``K x``; ``apply_vjp`` returns
``(gtw, gx)`` with ``gx = K^H g``.

First version: the ``2 w`` butterflies one after the other with the butterfly kernels.
"""

from __future__ import annotations

import cupy

from structlin.gpu import butterfly as _bf

__all__ = ["apply", "apply_vjp"]


def apply(tw: cupy.ndarray, x: cupy.ndarray) -> cupy.ndarray:
    y = x
    for i in range(tw.shape[0] - 1, -1, -1):
        y = _bf.apply(cupy.ascontiguousarray(tw[i, 1]), y, False)
        y = _bf.apply(cupy.ascontiguousarray(tw[i, 0]), y, True)
    return y if y is not x else x.copy()


def apply_vjp(tw: cupy.ndarray, x: cupy.ndarray, g: cupy.ndarray):
    w = tw.shape[0]
    stages = [(i, j) for i in range(w - 1, -1, -1) for j in (1, 0)]
    inputs = [x]
    for i, j in stages[:-1]:
        inputs.append(_bf.apply(cupy.ascontiguousarray(tw[i, j]), inputs[-1], j == 0))
    gtw = cupy.empty_like(tw)
    gcur = g
    for (i, j), u in zip(stages[::-1], inputs[::-1], strict=True):
        gtw[i, j], gcur = _bf.apply_vjp(cupy.ascontiguousarray(tw[i, j]), u, gcur, j == 0)
    return gtw, gcur
