"""CUDA selective scan (launchers of ``selective_scan.cu``).

Contract (shared with :mod:`structlin._cpu.selective_scan`). ``r`` is float32 or float64, ``s``
is ``r`` for a real ``A`` or the complex type of ``r``; every array a C-contiguous CuPy array::

    u, delta, z (b, d, l) r;  D, delta_bias (d,) r;  A (d, n) s
    B, C (bB, gB, lB, n) s    bB in {1, b}, lB in {1, l}, d % gB == 0
    scan(u, delta, A, B, C, D, z, delta_bias, softplus, has_z, out, last_state)
        out (b, d, l) r, last_state (b, d, n) s
    scan_vjp(u, delta, A, B, C, D, z, delta_bias, softplus, has_z, g,
             gu, gdelta, gA, gB, gC, gD, gz, gbias)

(the recurrence is written out in the CPU module's docstring). Each function is one launch of
one thread per channel ``(i, c)`` (blocks of :data:`THREADS`), the ``n <= NMAX`` states in
registers and the time loop inside. The VJP checkpoints the forward states every ``CHUNK = 64``
steps and recomputes each chunk into a global scratch buffer (``b d n (l / 64 + 65)``
elements), walks it backwards, and accumulates the gradients of B, C, A, D and delta_bias
with atomic additions (in an order that varies from run to run).

Unverified: none of this code has run on a GPU. The kernels are compiled by NVRTC (compute_80
and compute_90, ``tests/test_gpu_compile.py``) and run in the host emulator of
``tests/test_gpu_compile_selective_scan.py`` only. Parallelism is ``b d`` threads: enough for
Mamba's sizes (``b d`` in the thousands), not for a few channels of a long sequence (no
chunked parallel scan along ``l`` yet).
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, launch, type_name

__all__ = ["CHUNK", "NAME_EXPRESSIONS", "NMAX", "scan", "scan_vjp"]

_DTYPES = (np.float32, np.float64, np.complex64, np.complex128)
_TEMPLATES = ("scan_kernel", "scan_vjp_kernel")

NAME_EXPRESSIONS = tuple(f"{t}<{type_name(dt)}>" for t in _TEMPLATES for dt in _DTYPES)

#: the most states per channel (the register array of selective_scan.cu) and the VJP's
#: checkpoint interval; must match selective_scan.cu
NMAX = 16
CHUNK = 64
THREADS = 128


def _check_states(n: int) -> None:
    if n > NMAX:
        raise ValueError(f"the GPU selective scan keeps at most {NMAX} states per channel in "
                         f"registers; A has n = {n} columns (use NumPy arrays for larger n)")


def _geometry(M) -> tuple:
    bB, gB, lB, _ = M.shape
    return np.int32(bB), np.int32(gB), np.int64(lB)


def scan(u, delta, A, B, C, D, z, delta_bias, softplus, has_z, out, last_state):
    """Write the selective scan into ``out`` and ``last_state`` (see the module docstring)."""
    nb, d, l = u.shape
    n = A.shape[1]
    _check_states(n)
    channels = nb * d
    if channels == 0:
        return
    kernel = get_kernel("selective_scan", NAME_EXPRESSIONS,
                        f"scan_kernel<{type_name(A.dtype)}>")
    blocks = (channels + THREADS - 1) // THREADS
    args = (u, delta, A, B, C, D, z, delta_bias, out, last_state, np.int64(nb), np.int32(d),
            np.int64(l), np.int32(n), *_geometry(B), *_geometry(C), np.int32(bool(softplus)),
            np.int32(bool(has_z)))
    launch(kernel, blocks, THREADS, args, 0)


def scan_vjp(u, delta, A, B, C, D, z, delta_bias, softplus, has_z, g,
             gu, gdelta, gA, gB, gC, gD, gz, gbias):
    """Write the gradients of the selective scan for cotangent ``g`` (see the module
    docstring); ``gz`` is left untouched unless ``has_z``."""
    nb, d, l = u.shape
    n = A.shape[1]
    _check_states(n)
    for a in (gA, gB, gC, gD, gbias):
        a[...] = 0
    channels = nb * d
    if channels == 0 or l == 0:
        return
    kernel = get_kernel("selective_scan", NAME_EXPRESSIONS,
                        f"scan_vjp_kernel<{type_name(A.dtype)}>")
    nck = (l + CHUNK - 1) // CHUNK
    ck = cupy.empty((channels, nck, n), dtype=A.dtype)
    xs = cupy.empty((channels, CHUNK + 1, n), dtype=A.dtype)
    blocks = (channels + THREADS - 1) // THREADS
    args = (u, delta, A, B, C, D, z, delta_bias, g, gu, gdelta, gA, gB, gC, gD, gz, gbias, ck,
            xs, np.int64(nb), np.int32(d), np.int64(l), np.int32(n), *_geometry(B),
            *_geometry(C), np.int32(bool(softplus)), np.int32(bool(has_z)))
    launch(kernel, blocks, THREADS, args, 0)
