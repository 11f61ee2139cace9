"""GPU side of the Beneš routing kernel: none (the contract's ``route`` is ``cpu_only``).

The looping algorithm is a sequential walk over cycles of the permutation; it runs on the
host (:mod:`structlin._cpu.kaleidoscope_routing`). :func:`structlin.kaleidoscope_permutation`
refuses a CuPy ``perm`` with ``TypeError``; route ``cupy.asnumpy(perm)`` and move the twiddle
to the GPU, where :func:`structlin.kaleidoscope_multiply` applies it.
"""

from __future__ import annotations

__all__: list[str] = []
