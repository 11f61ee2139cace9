"""CUDA kernels of the subdiagonal Krylov products (launchers of ``ldr.cu``).

Contract (shared with :mod:`structlin._cpu.ldr`, whose docstring states it in full); all
arrays C-contiguous CuPy arrays of one dtype (float32, float64, complex64 or complex128), of
shape ``(R, N)`` with ``N`` a multiple of ``leaf`` (at most :data:`MAX_LEAF`); ``a[r, l]``
weighs the edge ``l -> l + 1``, ``P(k, i) = a[k] ... a[i-1]``; the leaf kernels add into
``out``::

    krylov_leaf(a, u, g, out, leaf):       out[i] += sum_k P(k, i) u[i - k] g[k]   (in a leaf)
    krylov_t_leaf(a, w, g, out, leaf):     out[d] += sum_{i - k = d} w[i] P(k, i) g[k]
    krylov_grad_leaf(a, w, u, g, out, leaf):
        out[l] += sum_{k <= l < i} w[i] P(l + 1, i) P(k, l) u[i - k] g[k]
    linear_scan(c, d, out):                out[t] = out[t - 1] c[t - 1] + d[t], out[0] = d[0]

One launch each, :data:`THREADS` threads a block: a thread per (row, leaf) for
``krylov_leaf`` and ``krylov_grad_leaf``, per (row, lag) for ``krylov_t_leaf``, per row for
``linear_scan``; no shared memory, no atomics, no host-device synchronisation. The FFT levels
above the leaves run in :mod:`structlin.ldr` on ``cupy.fft`` (cuFFT).

Unverified: none of this code has run on a GPU. The kernels are compiled by NVRTC
(compute_80 and compute_90, ``tests/test_gpu_compile.py``) and run in the host emulator of
``tests/test_gpu_compile_ldr.py`` only.
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, instantiations, launch, type_name

__all__ = ["NAME_EXPRESSIONS", "krylov_grad_leaf", "krylov_leaf", "krylov_t_leaf",
           "linear_scan"]

NAME_EXPRESSIONS = (*instantiations("krylov_leaf_kernel"), *instantiations("krylov_t_leaf_kernel"),
                    *instantiations("krylov_grad_leaf_kernel"),
                    *instantiations("linear_scan_kernel"))

#: threads of a block; must match ldr.cu
THREADS = 128
#: the largest leaf (the per-thread buffers of krylov_grad_leaf); must match ldr.cu
MAX_LEAF = 32


def _go(template: str, work: int, dtype, args: tuple) -> None:
    if work == 0:
        return
    kernel = get_kernel("ldr", NAME_EXPRESSIONS, f"{template}<{type_name(dtype)}>")
    launch(kernel, (work + THREADS - 1) // THREADS, THREADS, args, 0)


def _leaf(leaf: int) -> int:
    leaf = int(leaf)
    if not 1 <= leaf <= MAX_LEAF:
        raise ValueError(f"leaf must be in [1, {MAX_LEAF}], got {leaf}")
    return leaf


def krylov_leaf(a: cupy.ndarray, u: cupy.ndarray, g: cupy.ndarray, out: cupy.ndarray,
                leaf: int) -> None:
    """Add ``sum_k P(k, i) u[i - k] g[k]`` over each leaf into ``out`` (module docstring)."""
    R, N = out.shape
    leaf = _leaf(leaf)
    _go("krylov_leaf_kernel", R * (N // leaf), out.dtype,
        (a, u, g, out, np.int32(R), np.int32(N), np.int32(leaf)))


def krylov_t_leaf(a: cupy.ndarray, w: cupy.ndarray, g: cupy.ndarray, out: cupy.ndarray,
                  leaf: int) -> None:
    """Add ``sum_{i - k = d} w[i] P(k, i) g[k]`` over each leaf into ``out[d]``."""
    R, N = out.shape
    leaf = _leaf(leaf)
    _go("krylov_t_leaf_kernel", R * leaf if N else 0, out.dtype,
        (a, w, g, out, np.int32(R), np.int32(N), np.int32(leaf)))


def krylov_grad_leaf(a: cupy.ndarray, w: cupy.ndarray, u: cupy.ndarray, g: cupy.ndarray,
                     out: cupy.ndarray, leaf: int) -> None:
    """Add the leaf part of ``d (w^T K(A, g) u) / d a`` into ``out`` (module docstring)."""
    R, N = out.shape
    leaf = _leaf(leaf)
    _go("krylov_grad_leaf_kernel", R * (N // leaf), out.dtype,
        (a, w, u, g, out, np.int32(R), np.int32(N), np.int32(leaf)))


def linear_scan(c: cupy.ndarray, d: cupy.ndarray, out: cupy.ndarray) -> None:
    """Write ``out[t] = out[t - 1] c[t - 1] + d[t]`` along the last axis (``out[0] = d[0]``)."""
    R, N = out.shape
    _go("linear_scan_kernel", R if N else 0, out.dtype,
        (c, d, out, np.int32(R), np.int32(N)))
