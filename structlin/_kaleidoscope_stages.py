"""The K-matrix as ``2 w`` butterflies applied one after the other, for either backend.

Shared by :mod:`structlin._cpu.kaleidoscope` and :mod:`structlin.gpu.kaleidoscope`: ``bf`` is
that backend's butterfly kernel module (``apply(tw, x, increasing)``, ``apply_vjp(tw, x, g,
increasing)``) and ``xp`` its array namespace. ``tw`` is in operator form (see either module).
"""

from __future__ import annotations

from typing import Any


def _stages(w: int) -> list[tuple[int, int]]:
    """``(unit, butterfly)`` in the order they meet ``x``: ``tw[i, 1]`` (decreasing stride),
    then ``tw[i, 0]`` (increasing), for ``i = w-1, ..., 0``."""
    return [(i, j) for i in range(w - 1, -1, -1) for j in (1, 0)]


def apply(xp: Any, bf: Any, tw: Any, x: Any) -> Any:
    y = x
    for i, j in _stages(tw.shape[0]):
        y = bf.apply(xp.ascontiguousarray(tw[i, j]), y, j == 0)
    return y if y is not x else x.copy()


def apply_vjp(xp: Any, bf: Any, tw: Any, x: Any, g: Any) -> tuple[Any, Any]:
    """Stores the ``2 w`` stage inputs, then the butterfly VJPs from the last stage back."""
    stages = _stages(tw.shape[0])
    inputs = [x]
    for i, j in stages[:-1]:
        inputs.append(bf.apply(xp.ascontiguousarray(tw[i, j]), inputs[-1], j == 0))
    gtw = xp.empty_like(tw)
    gcur = g
    for (i, j), u in zip(stages[::-1], inputs[::-1], strict=True):
        gtw[i, j], gcur = bf.apply_vjp(xp.ascontiguousarray(tw[i, j]), u, gcur, j == 0)
    return gtw, gcur
