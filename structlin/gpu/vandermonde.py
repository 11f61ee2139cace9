"""CUDA fused Vandermonde products (launchers of ``vandermonde.cu``).

Contract (shared with :mod:`structlin._cpu.vandermonde`); rows ``b`` independent, all arrays
2-D C-contiguous CuPy arrays; the functions write into their output arrays and return
nothing::

    vandermonde(x, v, out):        x, v (B, n), out (B, m), one dtype (real or complex)
        out[b, i] = sum_j x[b, j]**i v[b, j]
    vandermonde_t(x, w, out):      x (B, n), w (B, m), out (B, n), one dtype
        out[b, j] = sum_i x[b, j]**i w[b, i]
    exp_vandermonde_re(z, v, out): z, v (B, n) complex, out (B, m) real of z's precision
        out[b, i] = Re sum_j exp(i z[b, j]) v[b, j]
    exp_vandermonde_t_re(z, w, out, dout):  z (B, n) complex, w (B, m) real,
                                   out, dout (B, n) complex
        out[b, j]  = sum_i exp(i z[b, j]) w[b, i]
        dout[b, j] = sum_i i exp((i - 1) z[b, j]) w[b, i]
    solve_vandermonde(x, b, out, info):    x, b, out (B, n) one dtype, info (B,) int32
        out[b] = V(x[b])^(-1) b[b] (Björck-Pereyra primal); info[b] = 1: repeated node
    solve_vandermonde_t(x, b, out, info):  the same for V^T (the dual algorithm)
    vandermonde_order(x, perm, work):      x (B, n), perm (B, n) int64, work (B, n) float64
        perm[b] = the solves' order of row b's nodes (increasing or Leja's)

Each function is one launch (plus a zero fill of the transposed products' outputs, which the
chunks' partial sums are added to atomically): the forward kernels give each thread
:data:`R` consecutive exponents of one row, the transposed ones a node and a chunk of
:data:`CHUNK` exponents; the powers are formed by multiplication and re-anchored exactly (in
double precision) every ``R`` exponents (see ``vandermonde.cu``); the Björck-Pereyra
solves give each thread one system. No host-device synchronisation (the public
:func:`structlin.solve_vandermonde` reads ``info`` back to raise on repeated nodes).

Unverified: none of this code has run on a GPU. The kernels are compiled by NVRTC
(compute_80 and compute_90, ``tests/test_gpu_compile.py``) and run in the host emulator of
``tests/test_gpu_compile_vandermonde.py`` only.
"""

from __future__ import annotations

import cupy  # noqa: F401  (the launcher needs CuPy; the emulator test replaces it)
import numpy as np

from structlin.gpu._compile import get_kernel, instantiations, launch, type_name

__all__ = [
    "NAME_EXPRESSIONS",
    "exp_vandermonde_re",
    "exp_vandermonde_t_re",
    "solve_vandermonde",
    "solve_vandermonde_t",
    "vandermonde",
    "vandermonde_order",
    "vandermonde_t",
]

NAME_EXPRESSIONS = (
    *instantiations("vandermonde_kernel"),
    *instantiations("vandermonde_t_kernel"),
    *instantiations("solve_vandermonde_kernel"),
    *instantiations("solve_vandermonde_t_kernel"),
    *instantiations("vandermonde_order_kernel"),
    *(f"{t}<{type_name(dt)}>" for t in ("exp_vandermonde_re_kernel",
                                        "exp_vandermonde_t_re_kernel")
      for dt in (np.complex64, np.complex128)),
)

#: threads per block, exponents per thread of the forward kernels, nodes or weights per shared
#: tile; must match vandermonde.cu
THREADS, R, TILE = 128, 16, 128
#: exponents per block of the transposed kernels (their partial sums are added atomically)
CHUNK = 2048


def _forward(name, x, v, out):
    rows, n = x.shape
    m = out.shape[1]
    if rows == 0 or m == 0:
        return
    if n == 0:
        out[...] = 0
        return
    kernel = get_kernel("vandermonde", NAME_EXPRESSIONS, f"{name}<{type_name(x.dtype)}>")
    per_row = -(-m // (THREADS * R))
    smem = TILE * (2 * 8 + 2 * x.itemsize)
    launch(kernel, rows * per_row, THREADS, (x, v, out, np.int64(rows), np.int32(n),
                                             np.int64(m)), smem)


def _transposed(name, x, w, outs, w_bytes):
    rows, n = x.shape
    m = w.shape[1]
    for o in outs:
        o[...] = 0
    if rows == 0 or n == 0 or m == 0:
        return
    kernel = get_kernel("vandermonde", NAME_EXPRESSIONS, f"{name}<{type_name(x.dtype)}>")
    nchunks = -(-m // CHUNK)
    blocks = rows * (-(-n // THREADS)) * nchunks
    args = (x, w, *outs, np.int64(rows), np.int32(n), np.int64(m), np.int64(CHUNK),
            np.int32(nchunks))
    launch(kernel, blocks, THREADS, args, w_bytes)


def vandermonde(x, v, out):
    """Write ``out[b, i] = sum_j x[b, j]**i v[b, j]`` (see the module docstring)."""
    _forward("vandermonde_kernel", x, v, out)


def exp_vandermonde_re(z, v, out):
    """Write ``out[b, i] = Re sum_j exp(i z[b, j]) v[b, j]`` (see the module docstring)."""
    _forward("exp_vandermonde_re_kernel", z, v, out)


def vandermonde_t(x, w, out):
    """Write ``out[b, j] = sum_i x[b, j]**i w[b, i]`` (see the module docstring)."""
    _transposed("vandermonde_t_kernel", x, w, (out,), TILE * x.itemsize)


def exp_vandermonde_t_re(z, w, out, dout):
    """Write ``out[b, j] = sum_i exp(i z) w[b, i]`` and ``dout[b, j] = sum_i i exp((i-1) z)
    w[b, i]`` for real ``w`` (see the module docstring)."""
    _transposed("exp_vandermonde_t_re_kernel", z, w, (out, dout), 2 * TILE * w.itemsize)


def _bp(name, x, b, out, info):
    rows, n = b.shape
    info[...] = 0
    if rows == 0 or n == 0:
        return
    kernel = get_kernel("vandermonde", NAME_EXPRESSIONS, f"{name}<{type_name(x.dtype)}>")
    launch(kernel, -(-rows // THREADS), THREADS, (x, b, out, info, np.int64(rows), np.int32(n)),
           0)


def solve_vandermonde(x, b, out, info):
    """Write ``out[b] = V(x[b])^(-1) b[b]`` (Björck-Pereyra, one system per thread) and
    ``info[b] = 1`` where row ``b`` has two equal nodes (see the module docstring)."""
    _bp("solve_vandermonde_kernel", x, b, out, info)


def solve_vandermonde_t(x, b, out, info):
    """Write ``out[b] = V(x[b])^(-T) b[b]`` (interpolation, Björck-Pereyra's dual algorithm)
    and ``info[b]`` as :func:`solve_vandermonde` (see the module docstring)."""
    _bp("solve_vandermonde_t_kernel", x, b, out, info)


def vandermonde_order(x, perm, work):
    """Write ``perm[b]``, the order of row ``b``'s nodes for the solves (increasing for real
    nonnegative nodes, Leja's otherwise; one row per thread); ``work`` is scratch."""
    rows, n = x.shape
    if rows == 0 or n == 0:
        return
    kernel = get_kernel("vandermonde", NAME_EXPRESSIONS,
                        f"vandermonde_order_kernel<{type_name(x.dtype)}>")
    launch(kernel, -(-rows // THREADS), THREADS, (x, perm, work, np.int64(rows), np.int32(n)),
           0)
