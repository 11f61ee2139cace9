"""CUDA batched Levinson recursion (launcher of ``levinson.cu``).

Contract (shared with :mod:`structlin._cpu.levinson`, whose docstring states it in full);
C-contiguous CuPy arrays of one dtype ``T`` unless said otherwise::

    levinson(c, r, b, x, reflection, logdet, sign, info, invnorm, tol)
    c, r (B, n); b, x (B, n, k); reflection (B, n - 1); logdet, invnorm (B,) real;
    sign (B,) T; info (B,) int64; tol a float (breakdown threshold relative to max |t|)

One launch: a block of :data:`THREADS` threads per system, the threads sharing the inner
products of the recursion (tree reductions in shared memory) and the updates of the forward
and backward vectors and of the ``k`` right-hand sides (in chunks of ``min(k, THREADS)``
columns). A ``(B, 4, n)`` workspace holds the vectors. Cost ``3 n^2 + 2 n^2 k`` multiply-adds
per block, ``n`` steps each with a few barriers: for many systems of moderate order (the
batch fills the device); a single large system uses one multiprocessor. No host-device
synchronisation.

Unverified: none of this code has run on a GPU. The kernel is compiled by NVRTC (compute_80
and compute_90, ``tests/test_gpu_compile.py``) and run in the host emulator of
``tests/test_gpu_compile_levinson.py`` only.
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, instantiations, launch, type_name

__all__ = ["NAME_EXPRESSIONS", "levinson"]

NAME_EXPRESSIONS = instantiations("levinson_kernel")

#: threads of a block; must match levinson.cu
THREADS = 128


def levinson(c: cupy.ndarray, r: cupy.ndarray, b: cupy.ndarray, x: cupy.ndarray,
             reflection: cupy.ndarray, logdet: cupy.ndarray, sign: cupy.ndarray,
             info: cupy.ndarray, invnorm: cupy.ndarray, tol: float) -> None:
    """Solve ``T x = b`` row by row by the Levinson recursion (module docstring)."""
    nb, n, k = b.shape
    if nb == 0 or n == 0:
        return
    work = cupy.empty((nb, 4, n), dtype=b.dtype)
    kernel = get_kernel("levinson", NAME_EXPRESSIONS, f"levinson_kernel<{type_name(b.dtype)}>")
    args = (c, r, b, x, reflection, logdet, sign, info, invnorm, work, np.int64(n),
            np.int32(k), np.float64(tol))
    launch(kernel, nb, THREADS, args, (2 * THREADS + 8) * b.itemsize + 16)
