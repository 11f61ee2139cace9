"""CUDA GKO solver for batches of small Cauchy-like systems (launcher of ``gko.cu``).

Contract (shared with :mod:`structlin._cpu.gko`); all arrays C-contiguous CuPy arrays, the
floating ones of one dtype (float32, float64, complex64 or complex128) or its real dtype:
``s (Bs, n)``, ``t (Bt, n)`` with ``Bs``, ``Bt`` each 1 or ``B``; ``G``, ``H (B, r, n)``;
``b (B, k, n)``; outputs ``x (B, k, n)``, ``sign (B,)``, ``logabs (B,)`` and ``pivots (B, n)``
(real dtype), ``info (B,)`` int32::

    gko(s, t, G, H, b, x, sign, logabs, pivots, info):
        x[b, q] solves C[b] x[b, q] = b[b, q],  C[b, i, j] = sum G[b, :, i] H[b, :, j] / (s_i - t_j)
        sign[b] exp(logabs[b]) = det C[b],  pivots[b, j] = |pivot j|,
        info[b] = 0, or j + 1 for an exactly zero pivot column (x[b] NaN)

One launch: a block of :data:`THREADS` threads per system (GKO's elimination with partial
pivoting on the generators, threads over the rows of each step, a shared-memory argmax for the
pivot; see ``gko.cu``). The launcher copies ``s``, ``G``, ``H`` and ``b`` into working arrays
(the inputs are never written) and allocates ``U``, ``n (n + 1) / 2`` entries per system: meant
for batches of small systems (``n`` up to a few thousand). ``O(r n^2)`` work and ``n``
block-wide synchronisations of a few steps each per system; no host-device synchronisation.

Unverified: none of this code has run on a GPU. The kernel is compiled by NVRTC (compute_80
and compute_90, ``tests/test_gpu_compile.py``) and run in the host emulator of
``tests/test_gpu_compile_gko.py`` only.
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, instantiations, launch, type_name

__all__ = ["NAME_EXPRESSIONS", "gko"]

NAME_EXPRESSIONS = instantiations("gko_kernel")

#: threads of a block (one system per block); must match gko.cu
THREADS = 128


def gko(s, t, G, H, b, x, sign, logabs, pivots, info):
    """Solve the Cauchy-like systems and write ``x``, ``sign``, ``logabs``, ``pivots`` and
    ``info`` (module docstring)."""
    nb, r, n = G.shape
    k = b.shape[1]
    if nb == 0:
        return
    if n == 0:
        sign[...] = 1
        logabs[...] = 0
        info[...] = 0
        return
    dt = G.dtype
    sw = cupy.ascontiguousarray(cupy.broadcast_to(s, (nb, n)), dtype=dt).copy()
    gw = G.copy()
    hw = H.copy()
    bw = b.copy()
    lw = cupy.empty((nb, n), dtype=dt)
    uw = cupy.empty((nb, n * (n + 1) // 2), dtype=dt)
    kernel = get_kernel("gko", NAME_EXPRESSIONS, f"gko_kernel<{type_name(dt)}>")
    args = (t, sw, gw, hw, bw, lw, uw, x, sign, logabs, pivots, info, np.int32(r),
            np.int32(k), np.int32(n), np.int32(t.shape[0] > 1))
    launch(kernel, nb, THREADS, args, THREADS * (pivots.itemsize + 4))
