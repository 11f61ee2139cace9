"""Numba kernels of the K-matrix product and its VJP.

Contract (shared with ``structlin.gpu.kaleidoscope``): ``tw`` is C-contiguous
``(w, 2, L, n//2, 2, 2)`` in *operator form* with the dtype of ``x``: for ``i = w-1, ..., 0``
the kernel applies the blocks ``tw[i, 1]`` in decreasing stride (factor ``L-1`` first), then
``tw[i, 0]`` in increasing stride. ``x`` is C-contiguous ``(batch, n)``. ``apply`` returns
``K x``; ``apply_vjp`` returns ``(gtw, gx)`` with ``gx = K^H g`` and ``gtw`` the gradient of the
operator-form blocks (``gtw[i, j, k, b, r, c] = sum_batch h_r conj(u_c)``).

First version: the ``2 w`` butterflies are applied one after the other with the butterfly
kernels (:mod:`structlin._cpu.butterfly`), each one pass over ``x``.
"""

from __future__ import annotations

import numpy as np

from structlin._cpu import butterfly as _bf

__all__ = ["apply", "apply_vjp"]


def apply(tw: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Return ``K x`` row by row (see the module docstring for the contract)."""
    y = x
    for i in range(tw.shape[0] - 1, -1, -1):
        y = _bf.apply(np.ascontiguousarray(tw[i, 1]), y, False)
        y = _bf.apply(np.ascontiguousarray(tw[i, 0]), y, True)
    return y if y is not x else x.copy()


def apply_vjp(tw: np.ndarray, x: np.ndarray, g: np.ndarray):
    """Return ``(gtw, gx)`` for ``y = K x`` and the output gradient ``g``."""
    w = tw.shape[0]
    stages = [(i, j) for i in range(w - 1, -1, -1) for j in (1, 0)]
    inputs = [x]
    for i, j in stages[:-1]:
        inputs.append(_bf.apply(np.ascontiguousarray(tw[i, j]), inputs[-1], j == 0))
    gtw = np.empty_like(tw)
    gcur = g
    for (i, j), u in zip(stages[::-1], inputs[::-1], strict=True):
        gtw[i, j], gcur = _bf.apply_vjp(np.ascontiguousarray(tw[i, j]), u, gcur, j == 0)
    return gtw, gcur
