"""CUDA kernels of Mamba-2's SSD scan (launchers of ``ssd.cu``).

Contract (shared with :mod:`structlin._cpu.ssd`, whose docstring states it in full); CuPy
arrays, C-contiguous, float32 or float64, one dtype; ``x (nb, l, h, p)``, ``a (nb, l, h)``,
``b``, ``c (nb, l, g, n)``, ``s0`` and ``s_final (nb, h, n, p)`` (states transposed, ``S^T``);
the function writes into ``y`` and ``s_final`` and returns nothing::

    chunk_scan(x, a, b, c, s0, chunk, reverse, y, s_final)

Five launches: the per-chunk cumulative log-decays (one thread per batch x head x chunk), the
diagonal blocks ``(L o C B^T) X`` (one block of 128 threads per batch x head x chunk; 16 x 32
tiles of weights in shared memory, each used for every column), the chunks' own states (one
block per chunk, one thread per state entry), the recurrence of the states between chunks
(one thread per batch x head x state entry) and the output from the entering states. No
host-device synchronisation. The VJP (:func:`structlin.ssd_vjp`) runs the same launches with
the roles of the arguments exchanged.

Unverified: none of this code has run on a GPU. It is compiled by NVRTC (compute_80 and
compute_90, ``tests/test_gpu_compile.py``) and run in the host emulator of
``tests/test_gpu_compile_ssd.py`` only. The kernels are plain CUDA (no tensor cores); their
speed has not been measured.
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, launch, type_name

__all__ = ["NAME_EXPRESSIONS", "chunk_scan"]

_DTYPES = (np.float32, np.float64)
_TEMPLATES = ("ssd_cumsum", "ssd_block_product", "ssd_chunk_state", "ssd_pass",
              "ssd_state_term")

NAME_EXPRESSIONS = tuple(f"{t}<{type_name(dt)}>" for t in _TEMPLATES for dt in _DTYPES)

#: threads of a block and the weight tile; must match ssd.cu
THREADS = 128
RI, RJ = 16, 32

_i32 = np.int32


def _kernel(template: str, dtype) -> object:
    return get_kernel("ssd", NAME_EXPRESSIONS, f"{template}<{type_name(dtype)}>")


def _cumsum(a, nb, l, h, chunk, nc, reverse):
    u = cupy.empty((nb, l, h), dtype=a.dtype)
    tot = cupy.empty((nb, h, nc), dtype=a.dtype)
    tasks = nb * h * nc
    launch(_kernel("ssd_cumsum", a.dtype), (tasks + THREADS - 1) // THREADS, THREADS,
           (a, u, tot, np.int64(tasks), _i32(l), _i32(h), _i32(chunk), _i32(nc),
            _i32(reverse)), 0)
    return u, tot


def _block_product(P, hp, Q, hq, wpq, V, hv, wv, u, out, l, h, chunk, nc, reverse):
    tasks = out.shape[0] * h * nc
    launch(_kernel("ssd_block_product", out.dtype), tasks, THREADS,
           (P, _i32(hp), Q, _i32(hq), _i32(wpq), V, _i32(hv), _i32(wv), u, out, _i32(l),
            _i32(h), _i32(chunk), _i32(nc), _i32(reverse)),
           RI * RJ * out.itemsize)


def chunk_scan(x, a, b, c, s0, chunk, reverse, y, s_final):
    """Write the chunked scan's ``y`` and ``s_final`` (module docstring)."""
    nb, l, h, p = x.shape
    g, n = b.shape[2], b.shape[3]
    if nb * l * h == 0:
        return
    chunk, reverse = int(chunk), int(reverse)
    nc = -(-l // chunk)
    states = cupy.empty((nb, h, nc, n, p), dtype=x.dtype)
    u, tot = _cumsum(a, nb, l, h, chunk, nc, reverse)
    _block_product(c, g, b, g, n, x, h, p, u, y, l, h, chunk, nc, reverse)
    tasks = nb * h * nc
    launch(_kernel("ssd_chunk_state", x.dtype), tasks, THREADS,
           (x, b, u, states, _i32(l), _i32(h), _i32(g), _i32(p), _i32(n), _i32(chunk),
            _i32(nc), _i32(reverse)), 0)
    entries = nb * h * p * n
    if entries:
        launch(_kernel("ssd_pass", x.dtype), (entries + THREADS - 1) // THREADS, THREADS,
               (s0, tot, states, s_final, np.int64(entries), _i32(nc), _i32(p * n),
                _i32(reverse)), 0)
    launch(_kernel("ssd_state_term", x.dtype), tasks, THREADS,
           (c, _i32(g), _i32(n), states, u, y, _i32(l), _i32(h), _i32(p), _i32(chunk),
            _i32(nc), _i32(reverse)), 0)
