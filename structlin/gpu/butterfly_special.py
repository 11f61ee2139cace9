"""CUDA pre- and post-processing of the butterfly DCT/DST (launchers of ``butterfly_special.cu``).

Contract (shared with :mod:`structlin._cpu.butterfly_special`, whose docstring states it): real
rows ``x3`` of shape ``(batch, n, c)``, complex work arrays ``(batch * c, m)``, int64 indices and
weights of the work array's complex dtype. Each kernel is one grid-stride loop with one thread
per output element (per input element for the scatter-adding transposes, which use atomics:
float32 sums accumulate in float32 and their order, hence the last bits, varies between runs).
The butterfly product between them is :mod:`structlin.gpu.butterfly`.
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, launch, sm_count

__all__ = [
    "NAME_EXPRESSIONS",
    "gather",
    "gather_packed",
    "gather_transpose",
    "take_real",
    "take_real_packed",
    "take_real_transpose",
]

_KERNELS = ("special_gather", "special_take_real", "special_take_real_transpose",
            "special_gather_transpose", "special_gather_packed", "special_take_real_packed")
_REAL = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

NAME_EXPRESSIONS = tuple(f"{k}<{t}>" for k in _KERNELS for t in _REAL.values())

THREADS = 256
#: resident blocks per SM wanted by the grid-stride loops
BLOCKS_PER_SM = 8


def _launch(name: str, real: np.dtype, total: int, args: tuple) -> None:
    if total == 0:
        return
    kernel = get_kernel("butterfly_special", NAME_EXPRESSIONS, f"{name}<{_REAL[real]}>")
    blocks = min((total + THREADS - 1) // THREADS,
                 BLOCKS_PER_SM * sm_count(cupy.cuda.Device().id))
    launch(kernel, blocks, THREADS, args, 0)


def _real_of(cdt: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if np.dtype(cdt) == np.complex64 else np.dtype(np.float64)


def gather(x3, ia, wa, ib, wb, m: int):
    """Return ``u = wa * x3[:, ia] + wb * x3[:, ib]`` per real row, complex ``(b * c, m)``."""
    b, n, c = x3.shape
    u = cupy.empty((b * c, m), dtype=wa.dtype)
    two = int(ib.shape[0] > 0)
    _launch("special_gather", x3.dtype, b * c * m,
            (x3, ia, wa, ib if two else ia, wb if two else wa, u, np.int64(b), np.int64(n),
             np.int32(c), np.int64(m), np.int32(two)))
    return u


def gather_packed(x3, ia, wa, ib, wb, m: int):
    """Packed :func:`gather` (real weights): two real rows per complex row, ``(ceil(b c/2), m)``."""
    b, n, c = x3.shape
    pairs = (b * c + 1) // 2
    u = cupy.empty((pairs, m), dtype=wa.dtype)
    two = int(ib.shape[0] > 0)
    _launch("special_gather_packed", x3.dtype, pairs * m,
            (x3, ia, wa, ib if two else ia, wb if two else wa, u, np.int64(b), np.int64(n),
             np.int32(c), np.int64(m), np.int32(two)))
    return u


def take_real_packed(v, ic, cw, b: int, c: int):
    """Packed :func:`take_real`: separate the two real rows of each complex row, ``(b, N, c)``."""
    pairs, m = v.shape
    N = ic.shape[0]
    y = cupy.empty((b, N, c), dtype=_real_of(v.dtype))
    _launch("special_take_real_packed", y.dtype, pairs * N,
            (v, ic, cw, y, np.int64(b), np.int64(N), np.int32(c), np.int64(m)))
    return y


def take_real(v, ic, cw, c: int):
    """Return ``y3[r, k, q] = Re(cw[k] * v[r*c + q, ic[k]])``, real ``(b, N, c)``."""
    rows, m = v.shape
    b, N = rows // c, ic.shape[0]
    y = cupy.empty((b, N, c), dtype=_real_of(v.dtype))
    _launch("special_take_real", y.dtype, b * N * c,
            (v, ic, cw, y, np.int64(b), np.int64(N), np.int32(c), np.int64(m)))
    return y


def take_real_transpose(g3, ic, cw, m: int):
    """Transpose of :func:`take_real`: ``u[row, ic[k]] += conj(cw[k]) * g3[r, k, q]``."""
    b, N, c = g3.shape
    u = cupy.zeros((b * c, m), dtype=cw.dtype)
    _launch("special_take_real_transpose", g3.dtype, b * N * c,
            (g3, ic, cw, u, np.int64(b), np.int64(N), np.int32(c), np.int64(m)))
    return u


def gather_transpose(u, ia, wa, ib, wb, n: int, c: int):
    """Transpose of :func:`gather`: ``x3[r, ia[i], q] += Re(conj(wa[i]) * u[r*c + q, i])``."""
    rows, m = u.shape
    b = rows // c
    x3 = cupy.zeros((b, n, c), dtype=_real_of(u.dtype))
    two = int(ib.shape[0] > 0)
    _launch("special_gather_transpose", x3.dtype, rows * m,
            (u, ia, wa, ib if two else ia, wb if two else wa, x3, np.int64(b), np.int64(n),
             np.int32(c), np.int64(m), np.int32(two)))
    return x3
