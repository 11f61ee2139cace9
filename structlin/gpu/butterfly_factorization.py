"""CUDA level kernel of the hierarchical butterfly factorization (launcher of
``butterfly_factorization.cu``).

Same contract as :mod:`structlin._cpu.butterfly_factorization` (``peel_level``): one thread per
``(N/2, 2)`` submatrix, ``2 C (N/2) = n`` threads per level; the two sums (residual and
squared norm) stay on the device as a 2-element float64 array, so a factorization makes no
host-device synchronisation until the caller reads the error.
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, instantiations, launch, type_name

__all__ = ["NAME_EXPRESSIONS", "peel_level"]

NAME_EXPRESSIONS = instantiations("butterfly_factorize_level")

#: threads per block
THREADS = 256


def peel_level(M: cupy.ndarray, tw_k: cupy.ndarray):
    C, N, _ = M.shape
    H = N // 2
    out = cupy.empty((2 * C, H, H), dtype=M.dtype)
    sums = cupy.zeros(2, dtype=cupy.float64)
    total = 2 * C * H
    threads = min(THREADS, total)
    blocks = -(-total // threads)
    kernel = get_kernel("butterfly_factorization", NAME_EXPRESSIONS,
                        f"butterfly_factorize_level<{type_name(M.dtype)}>")
    launch(kernel, blocks, threads, (M, out, tw_k, sums, np.int64(C), np.int64(N)), 0)
    return out, sums[0], sums[1]
