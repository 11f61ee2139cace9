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

from structlin import _kaleidoscope_stages as _stages
from structlin._cpu import butterfly as _bf

__all__ = ["apply", "apply_vjp"]


def apply(tw, x):
    """Return ``K x`` row by row (see the module docstring for the contract)."""
    return _stages.apply(np, _bf, tw, x)


def apply_vjp(tw, x, g):
    """Return ``(gtw, gx)`` for ``y = K x`` and the output gradient ``g``."""
    return _stages.apply_vjp(np, _bf, tw, x, g)
