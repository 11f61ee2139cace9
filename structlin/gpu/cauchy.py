"""CUDA Cauchy products (launchers of ``cauchy.cu``).

Contract (shared with :mod:`structlin._cpu.cauchy`); all arrays C-contiguous CuPy arrays of
one dtype (float32, float64, complex64 or complex128), ``x (Bx, m)``, ``y (By, n)`` with
``Bx`` and ``By`` each 1 or ``B``, ``v (B, K, n)``, ``out`` and ``out_sq (B, K, m)``; the
functions write their outputs and return nothing::

    r[b, i, j] = 1 / (x[b, i] - y[b, j])          (row 0 of x or y when it has one row)
    cauchy(x, y, v, out):                 out[b, k, i]    = sum_j v[b, k, j] r[b, i, j]
    cauchy_square(x, y, v, out, out_sq):  out as above,  out_sq[b, k, i] = sum_j v[b, k, j] r^2

One launch each: a block of :data:`THREADS` threads per ``(b, k, THREADS consecutive i)``, one
output per thread, ``y`` and ``v`` staged through shared memory in chunks of ``THREADS``
(``2 * THREADS`` elements of shared memory). Cost ``B K m n`` reciprocals and multiply-adds,
memory traffic ``O(B K (m + n) + B K n ceil(m / THREADS))``, no host-device synchronisation.

Unverified: none of this code has run on a GPU. The kernels are compiled by NVRTC
(compute_80 and compute_90, ``tests/test_gpu_compile.py``) and run in the host emulator of
``tests/test_gpu_compile_cauchy.py`` only.
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, instantiations, launch, type_name

__all__ = ["NAME_EXPRESSIONS", "cauchy", "cauchy_square"]

NAME_EXPRESSIONS = (*instantiations("cauchy_kernel"), *instantiations("cauchy_square_kernel"))

#: threads of a block = consecutive ``i`` per block = chunk of ``j`` in shared memory; must
#: match cauchy.cu
THREADS = 256


def _launch(template, x, y, v, outs):
    nb, nk, n = v.shape
    m = x.shape[1]
    if nb * nk * m == 0:
        return
    kernel = get_kernel("cauchy", NAME_EXPRESSIONS, f"{template}<{type_name(v.dtype)}>")
    blocks = nb * nk * ((m + THREADS - 1) // THREADS)
    args = (x, y, v, *outs, np.int32(nk), np.int32(m), np.int32(n),
            np.int32(x.shape[0] > 1), np.int32(y.shape[0] > 1))
    launch(kernel, blocks, THREADS, args, 2 * THREADS * v.itemsize)


def cauchy(x: cupy.ndarray, y: cupy.ndarray, v: cupy.ndarray, out: cupy.ndarray) -> None:
    """Write ``out[b, k, i] = sum_j v[b, k, j] / (x[b, i] - y[b, j])`` (module docstring)."""
    _launch("cauchy_kernel", x, y, v, (out,))


def cauchy_square(x: cupy.ndarray, y: cupy.ndarray, v: cupy.ndarray, out: cupy.ndarray,
                  out_sq: cupy.ndarray) -> None:
    """Write the Cauchy product into ``out`` and ``sum_j v[b, k, j] / (x[b, i] - y[b, j])**2``
    into ``out_sq`` (module docstring)."""
    _launch("cauchy_square_kernel", x, y, v, (out, out_sq))

