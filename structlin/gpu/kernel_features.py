"""CUDA kernel feature maps (launchers of ``kernel_features.cu``).

Contract (shared with :mod:`structlin._cpu.kernel_features`); all arrays C-contiguous CuPy
arrays of one dtype, float32 or float64, ``x (n, d)``, ``w (m, d)``, ``scale (m,)``,
``phase (m,)``, ``0 <= sin_from <= m``; the functions write into their output arrays and
return nothing::

    t[i, j] = sum_k x[i, k] w[j, k] + phase[j]
    features(x, w, scale, phase, sin_from, out):     out (n, 2m - sin_from)
        out[i, j]                = scale[j] cos t[i, j]      j < m
        out[i, m + j - sin_from] = scale[j] sin t[i, j]      j >= sin_from
    features_coef(x, w, scale, phase, sin_from, g, coef, wcoef):   g like out, coef/wcoef (n, m)
        coef[i, j]  = scale[j] (-g[i, j] sin t + g_s[i, j] cos t)      (dL/dt)
        wcoef[i, j] = g[i, j] cos t + g_s[i, j] sin t                  (dL/dscale, per row)
    with g_s[i, j] = g[i, m + j - sin_from] for j >= sin_from, else 0.

Each function is one launch, the projection fused with its epilogue (``t`` never exists in
memory): a CUDA block of 256 threads owns a :data:`BM` x :data:`BN` tile of ``t`` (rows x
nodes), stages the ``x`` and ``w`` panels of each chunk of :data:`BK` columns of ``d`` through
shared memory (transposed, padded by one element) while the next chunk is loaded, accumulates
8 x 2 dot products per thread in registers, then evaluates ``sincos`` once per entry and
stores along the nodes, coalesced. Cost: ``2 n m d`` flops; memory traffic: ``x`` read
``ceil(m / BN)`` times, ``w`` ``ceil(n / BM)`` times (mostly from L2), ``out`` (or ``g``,
``coef`` and ``wcoef``) once.

Unverified: none of this code has run on a GPU. The kernels are compiled by NVRTC
(compute_80 and compute_90, ``tests/test_gpu_compile.py``) and run in the host emulator of
``tests/test_gpu_compile_kernel_features.py`` only.
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, launch, type_name

__all__ = ["NAME_EXPRESSIONS", "features", "features_coef", "trig"]

_DTYPES = (np.float32, np.float64)
_TEMPLATES = ("features_kernel", "features_coef_kernel", "trig_kernel")

NAME_EXPRESSIONS = tuple(f"{t}<{type_name(dt)}>" for t in _TEMPLATES for dt in _DTYPES)

#: tile of one CUDA block (rows x nodes) and the chunk of ``d`` staged in shared memory;
#: must match kernel_features.cu
BM, BN, BK = 64, 64, 32
THREADS = 256


def _grid(x: cupy.ndarray, w: cupy.ndarray) -> tuple[int, int]:
    """Blocks and shared-memory bytes of a launch over ``t``'s ``(n, m)``."""
    n, m = x.shape[0], w.shape[0]
    blocks = ((n + BM - 1) // BM) * ((m + BN - 1) // BN)
    smem = BK * ((BM + 1) + (BN + 1)) * x.itemsize
    return blocks, smem


def features(x, w, scale, phase, sin_from, out):
    """Write the cosine and sine features of ``x`` into ``out`` (see the module docstring)."""
    n, d = x.shape
    m = w.shape[0]
    if n == 0 or m == 0:
        return
    kernel = get_kernel("kernel_features", NAME_EXPRESSIONS,
                        f"features_kernel<{type_name(x.dtype)}>")
    blocks, smem = _grid(x, w)
    args = (x, w, scale, phase, out, np.int64(n), np.int32(m), np.int32(d),
            np.int32(sin_from))
    launch(kernel, blocks, THREADS, args, smem)


def features_coef(x, w, scale, phase, sin_from, g, coef, wcoef):
    """Write the backward coefficients of the features for cotangent ``g`` into ``coef`` and
    ``wcoef`` (see the module docstring)."""
    n, d = x.shape
    m = w.shape[0]
    if n == 0 or m == 0:
        return
    kernel = get_kernel("kernel_features", NAME_EXPRESSIONS,
                        f"features_coef_kernel<{type_name(x.dtype)}>")
    blocks, smem = _grid(x, w)
    args = (x, w, scale, phase, g, coef, wcoef, np.int64(n), np.int32(m), np.int32(d),
            np.int32(sin_from))
    launch(kernel, blocks, THREADS, args, smem)


def trig(t, scale, sin_from, out):
    """Write ``scale cos t`` and ``scale sin t`` for given projections ``t (n, m)`` into
    ``out (n, 2m - sin_from)``: one thread per entry (unverified on a GPU)."""
    n, m = t.shape
    if n == 0 or m == 0:
        return
    kernel = get_kernel("kernel_features", NAME_EXPRESSIONS, f"trig_kernel<{type_name(t.dtype)}>")
    blocks = (n * m + THREADS - 1) // THREADS
    launch(kernel, blocks, THREADS, (t, scale, out, np.int64(n), np.int32(m),
                                     np.int32(sin_from)), 0)
