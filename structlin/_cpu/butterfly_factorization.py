"""Numba kernels for the hierarchical butterfly factorization.

Contract (shared with ``structlin.gpu.butterfly_factorization``): ``peel_level(M, tw_k)`` takes a
C-contiguous stack ``M`` of shape ``(C, N, N)`` (``N >= 2`` a power of two) and a writable
view ``tw_k`` of shape ``(N//2, C, 2, 2)`` (factor ``k = log2(C)`` of the twiddle, block
``j = a*C + c`` at ``tw_k[a, c]``), both of one kernel dtype. For every ``c``, ``a`` and row
parity ``b`` it replaces the ``(N/2, 2)`` submatrix ``X = M[c, b::2, 2a:2a+2]`` by its best
rank-one approximation ``u v^H`` (``v`` the unit top right singular vector, ``u = X v``),
writes ``v^H`` into row ``b`` of block ``tw_k[a, c]`` and returns ``(out, residual2,
norm2)``: the stack of the ``u``, ``out[b*C + c, r, a] = u[r]``, shape ``(2C, N/2, N/2)``,
the float ``sum ||X - u v^H||_F^2`` over all submatrices (computed entry by entry, not as
``||X||^2 - sigma^2``, which would cancel to ``sqrt(eps)`` accuracy for an exact butterfly)
and the float ``||M||_F^2`` (the traces of the Gram matrices, free here; ``numpy.vdot`` would
call a multithreaded BLAS whose start-up costs more than the whole factorization at small n).

The fit (:func:`structlin.butterfly_fit`) also uses three small kernels on ``(rows, n)``
stacks: ``mix_forward`` / ``mix_backward`` apply one move ``x -> (1 - w) x + w x[idx]`` of the
relaxed permutation and its VJP, and ``residual`` forms ``z - target`` with its squared norm.
They replace NumPy's ``vdot`` and fancy indexing, which under load cost more (a multithreaded
BLAS start-up per call) than the butterfly products of the same step. Each step of a fit makes
dozens of such calls on small stacks: like every CPU kernel they run on the calling thread
alone below the size of :func:`structlin._cpu._schedule.threads_for`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from structlin._cpu._schedule import serial_when_small

__all__ = ["mix_backward", "mix_forward", "peel_level", "residual"]

#: columns pairs per task: a row segment of 2*A_BLOCK entries stays in L1 across the rows
A_BLOCK = 64


@njit(cache=True, inline="always")
def _abs2(z):
    return z.real * z.real + z.imag * z.imag


@njit(cache=True, inline="always")
def _top_eigenvector(p, r, q):
    """Unit top eigenvector of the Hermitian ``[[p, q], [conj(q), r]]`` (p, r real).

    Built from the row of ``H - lambda I`` whose diagonal gap is the larger, so that no
    cancellation occurs: ``lambda - r >= rad >= |q|`` when ``p >= r``.
    """
    half = 0.5 * (p - r)
    rad = np.sqrt(half * half + _abs2(q))
    if p >= r:
        v0 = q - q + (half + rad)
        v1 = np.conj(q)
    else:
        v0 = q
        v1 = q - q + (rad - half)
    nrm = np.sqrt(_abs2(v0) + _abs2(v1))
    if not nrm > 0.0:
        return q - q + 1.0, q - q
    return v0 / nrm, v1 / nrm


@njit(cache=True, inline="always")
def _peel_task(M, tw_k, out, res, nrm, task, nblk):
    C, N, _ = M.shape
    H = N // 2
    cb = task // nblk
    blk = task - cb * nblk
    b = cb // C
    c = cb - b * C
    a0 = blk * A_BLOCK
    m = min(H, a0 + A_BLOCK) - a0
    # Gram matrices of the m submatrices, accumulated row by row (streaming M)
    g00 = np.zeros(m, dtype=M.dtype)
    g11 = np.zeros(m, dtype=M.dtype)
    g01 = np.zeros(m, dtype=M.dtype)
    for r in range(H):
        row = M[c, 2 * r + b]
        for t in range(m):
            x0 = row[2 * (a0 + t)]
            x1 = row[2 * (a0 + t) + 1]
            g00[t] += _abs2(x0)
            g11[t] += _abs2(x1)
            g01[t] += np.conj(x0) * x1
    v0 = np.empty(m, dtype=M.dtype)
    v1 = np.empty(m, dtype=M.dtype)
    tr = 0.0
    for t in range(m):
        tr += g00[t].real + g11[t].real
        e0, e1 = _top_eigenvector(g00[t].real, g11[t].real, g01[t])
        v0[t] = e0
        v1[t] = e1
        tw_k[a0 + t, c, b, 0] = np.conj(e0)
        tw_k[a0 + t, c, b, 1] = np.conj(e1)
    acc = 0.0
    for r in range(H):
        row = M[c, 2 * r + b]
        orow = out[cb, r]
        for t in range(m):
            x0 = row[2 * (a0 + t)]
            x1 = row[2 * (a0 + t) + 1]
            u = x0 * v0[t] + x1 * v1[t]
            orow[a0 + t] = u
            acc += _abs2(x0 - u * np.conj(v0[t])) + _abs2(x1 - u * np.conj(v1[t]))
    res[task] = acc
    nrm[task] = tr


@njit(cache=True, parallel=True)
def _peel_level(M, tw_k, out, res, nrm, nblk):
    for task in prange(res.shape[0]):
        _peel_task(M, tw_k, out, res, nrm, task, nblk)


@serial_when_small(arg=0)
def peel_level(M, tw_k):
    C, N, _ = M.shape
    H = N // 2
    out = np.empty((2 * C, H, H), dtype=M.dtype)
    nblk = (H + A_BLOCK - 1) // A_BLOCK
    res = np.zeros(2 * C * nblk, dtype=np.float64)
    nrm = np.zeros(2 * C * nblk, dtype=np.float64)
    _peel_level(M, tw_k, out, res, nrm, nblk)
    return out, float(res.sum()), float(nrm.sum())


@njit(cache=True, inline="always")
def _mix_forward_row(z, idx, w, out, i):
    for j in range(z.shape[1]):
        out[i, j] = (1.0 - w) * z[i, j] + w * z[i, idx[j]]


@njit(cache=True, parallel=True)
def _mix_forward(z, idx, w, out):
    for i in prange(z.shape[0]):
        _mix_forward_row(z, idx, w, out, i)


@serial_when_small(arg=0)
def mix_forward(z, idx, w):
    """Return ``(1 - w) z + w z[:, idx]``."""
    out = np.empty_like(z)
    _mix_forward(z, idx, w, out)
    return out


@njit(cache=True, inline="always")
def _mix_backward_row(g, z, idx, inv, w, g_in, acc, i):
    s = 0.0
    for j in range(z.shape[1]):
        d = z[i, idx[j]] - z[i, j]
        s += (np.conj(g[i, j]) * d).real
        g_in[i, j] = (1.0 - w) * g[i, j] + w * g[i, inv[j]]
    acc[i] = s


@njit(cache=True, parallel=True)
def _mix_backward(g, z, idx, inv, w, g_in, acc):
    for i in prange(z.shape[0]):
        _mix_backward_row(g, z, idx, inv, w, g_in, acc, i)


@serial_when_small(arg=0)
def mix_backward(g, z, idx, inv, w):
    """Return ``(g_in, dl/dw)`` for ``y = (1 - w) z + w z[:, idx]`` and upstream ``g``."""
    g_in = np.empty_like(g)
    acc = np.zeros(z.shape[0], dtype=np.float64)
    _mix_backward(g, z, idx, inv, w, g_in, acc)
    return g_in, float(acc.sum())


@njit(cache=True, inline="always")
def _residual_row(z, target, res, acc, i):
    s = 0.0
    for j in range(z.shape[1]):
        d = z[i, j] - target[i, j]
        res[i, j] = d
        s += _abs2(d)
    acc[i] = s


@njit(cache=True, parallel=True)
def _residual(z, target, res, acc):
    for i in prange(z.shape[0]):
        _residual_row(z, target, res, acc, i)


@serial_when_small(arg=0)
def residual(z, target):
    """Return ``(z - target, ||z - target||_F^2)``."""
    res = np.empty_like(z)
    acc = np.zeros(z.shape[0], dtype=np.float64)
    _residual(z, target, res, acc)
    return res, float(acc.sum())
