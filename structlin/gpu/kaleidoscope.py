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

from structlin import _kaleidoscope_stages as _stages
from structlin.gpu import butterfly as _bf

__all__ = ["apply", "apply_vjp"]


def apply(tw, x):
    """Return ``K x`` row by row (see the module docstring for the contract)."""
    return _stages.apply(cupy, _bf, tw, x)


def apply_vjp(tw, x, g):
    """Return ``(gtw, gx)`` for ``y = K x`` and the output gradient ``g``."""
    return _stages.apply_vjp(cupy, _bf, tw, x, g)
