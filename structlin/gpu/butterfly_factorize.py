"""CuPy path of the hierarchical butterfly factorization: batched array operations.

Same contract as :mod:`structlin._cpu.butterfly_factorize` (``peel_level``). There is no
custom CUDA kernel for the factorization: each level is a handful of batched reductions and
elementwise operations over the whole stack (CuPy fuses and launches them), which is
memory-bound like a hand-written kernel would be. ``NAME_EXPRESSIONS`` is empty because
there is no ``.cu`` source to compile.
"""

from __future__ import annotations

import cupy

from structlin.butterfly_factorize import _peel_level_xp

__all__ = ["NAME_EXPRESSIONS", "peel_level"]

NAME_EXPRESSIONS: tuple[str, ...] = ()


def peel_level(M: cupy.ndarray, tw_k: cupy.ndarray) -> cupy.ndarray:
    return _peel_level_xp(cupy, M, tw_k)
