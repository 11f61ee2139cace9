"""CUDA diagonal state-space scan (launcher of ``ssm_scan.cu``).

Contract (shared with :mod:`structlin._cpu.ssm_scan`): ``ab``, ``bb``, ``c`` (H, N) complex64
or complex128 CuPy arrays, ``d`` (H,) real of the same precision, ``u`` (R, L) real with row
``r`` in channel ``r % H``, ``x0`` (R, N) complex; writes ``y`` (R, L) and ``xT`` (R, N)::

    x_t = ab * x_{t-1} + bb u_t  (x_{-1} = x0),   y_t = 2 Re(sum_n c x_t) + d u_t,   xT = x_{L-1}

One launch per :data:`MODES_PER_LAUNCH` modes (one for ``N <= 512``): a block holds
``rows_per_block`` rows x ``ng = ceil(modes / G)`` threads of ``G`` modes each, stages chunks of
``T`` inputs in shared memory, and reduces the threads' partial outputs of each step there
(see the .cu file).

``scan_vjp(ab, bb, c, d, u, x0, g, gu, gab, gbb, gc, gd, gx0)`` (the contract of
:mod:`structlin._cpu.ssm_scan`): the reverse-time adjoint ``lam_t = conj(ab) lam_{t+1} +
2 conj(c) g_t`` *is* a scan, run by the same kernel on ``g`` reversed in time with the
parameters ``(conj(ab), 2 conj(c), conj(bb) / 2, d)``: its output reversed is
``gu_t = Re(conj(bb) . lam_t) + d g_t`` and its final state is ``lam_0``
(``gx0 = conj(ab) lam_0``). The sums over time of the parameter gradients come from
``sens_kernel``, a forward pass with the sensitivities ``dx_t/dab`` and ``dx_t/dbb`` as two
more complex states per mode (one thread per row and group of 4 modes): no state is stored
or recomputed, the memory is that of the outputs plus one reversed copy of ``g`` and ``gu``.
``gd = sum_t g_t u_t`` is one CuPy reduction.

Unverified: none of this code has run on a GPU. The kernel is compiled by NVRTC (compute_80
and compute_90, ``tests/test_gpu_compile.py``) and run in the host emulator of
``tests/test_gpu_compile_ssm_scan.py`` only.
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, launch, type_name

__all__ = ["NAME_EXPRESSIONS", "scan", "scan_vjp"]

NAME_EXPRESSIONS = tuple(f"{k}<{type_name(dt)}>" for k in ("scan_kernel", "sens_kernel")
                         for dt in (np.float32, np.float64))

#: modes per thread and time steps per chunk; must match ssm_scan.cu
G, T = 4, 32
#: threads of a block at most, and rows of a block at most
THREADS = 128
MAX_ROWS = 64
MODES_PER_LAUNCH = THREADS * G


def scan(ab, bb, c, d, u, x0, y, xT):
    """Write the scan's output ``y`` and final state ``xT`` (see the module docstring)."""
    R, L = u.shape
    H, N = ab.shape
    if R == 0:
        return
    if L == 0:
        cupy.copyto(xT, x0)
        return
    kernel = get_kernel("ssm_scan", NAME_EXPRESSIONS, f"scan_kernel<{type_name(u.dtype)}>")
    for n0 in range(0, N, MODES_PER_LAUNCH):
        nm = min(MODES_PER_LAUNCH, N - n0)
        ng = -(-nm // G)
        rows_per_block = max(1, min(MAX_ROWS, THREADS // ng))
        blocks = -(-R // rows_per_block)
        smem = (rows_per_block * T + rows_per_block * ng * (T + 1)) * u.itemsize
        args = (ab, bb, c, d, u, x0, y, xT, np.int64(R), np.int32(H), np.int32(N),
                np.int32(L), np.int32(n0), np.int32(nm), np.int32(ng),
                np.int32(rows_per_block), np.int32(1 if n0 == 0 else 0))
        launch(kernel, blocks, rows_per_block * ng, args, smem)



def scan_vjp(ab, bb, c, d, u, x0, g, gu, gab, gbb, gc, gd, gx0):
    """Write the scan's gradients, per row (see the module docstring)."""
    R, L = u.shape
    H, N = ab.shape
    if R == 0:
        return
    # the adjoint scan: reversed g through the forward kernel
    g_rev = cupy.ascontiguousarray(g[:, ::-1])
    gu_rev = cupy.empty_like(g_rev)
    lam0 = cupy.empty_like(x0)
    scan(cupy.ascontiguousarray(ab.conj()), cupy.ascontiguousarray(2 * c.conj()),
         cupy.ascontiguousarray(0.5 * bb.conj()), d, g_rev, cupy.zeros_like(x0), gu_rev, lam0)
    cupy.copyto(gu, gu_rev[:, ::-1])
    rows_h = cupy.arange(R) % H
    cupy.copyto(gx0, ab.conj()[rows_h] * lam0)
    cupy.copyto(gd, (g * u).sum(axis=1))
    if L == 0:
        gab[...] = 0
        gbb[...] = 0
        gc[...] = 0
        return
    kernel = get_kernel("ssm_scan", NAME_EXPRESSIONS, f"sens_kernel<{type_name(u.dtype)}>")
    ng = -(-N // G)
    blocks = -(-(R * ng) // THREADS)
    launch(kernel, blocks, THREADS, (ab, bb, c, u, x0, g, gab, gbb, gc, np.int64(R),
                                     np.int32(H), np.int32(N), np.int32(L), np.int32(ng)), 0)
