"""Numba kernels of the subdiagonal Krylov products (low displacement rank, LDR-SD).

Contract (shared with ``structlin.gpu.ldr``); all arrays C-contiguous, of one dtype (float32,
float64, complex64 or complex128), of shape ``(R, N)`` with ``N`` a multiple of ``leaf``;
``a[r, l]`` is the weight of the edge ``l -> l + 1`` of the subdiagonal matrix of row ``r``
(``a[r, N - 1]`` is never read) and ``P(k, i) = a[k] a[k+1] ... a[i-1]`` (``P(k, k) = 1``).
The leaf kernels only see pairs ``k <= i`` inside one block ``[b, b + leaf)``, ``b`` a
multiple of ``leaf``; they *add* into ``out`` (zeroed by the caller)::

    krylov_leaf(a, u, g, out, leaf):       out[i] += sum_k P(k, i) u[i - k] g[k]
    krylov_t_leaf(a, w, g, out, leaf):     out[d] += sum_{i - k = d} w[i] P(k, i) g[k]
    krylov_grad_leaf(a, w, u, g, out, leaf):
        out[l] += sum_{k <= l < i} w[i] P(l + 1, i) P(k, l) u[i - k] g[k]
    linear_scan(c, d, out):                out[t] = out[t - 1] c[t - 1] + d[t], out[0] = d[0]

``krylov_leaf`` is ``K(A, g) u`` restricted to a leaf, ``krylov_t_leaf`` the transposed
Krylov product ``K(A^T, w)^T g`` (``u_d = w^T A^d g``), ``krylov_grad_leaf`` the derivative of
``w^T K(A, g) u`` with respect to the subdiagonal; ``linear_scan`` is the first-order linear
recurrence that differentiates the prefix and suffix products of the divide-and-conquer levels
without a division (zero weights allowed). The levels above the leaves are FFT polynomial
products in :mod:`structlin.ldr`. Cost per row: ``N leaf / 2`` multiply-adds (``krylov_leaf``,
``krylov_t_leaf``), ``N leaf^2 / 6`` (``krylov_grad_leaf``), ``N`` (``linear_scan``); all
products are formed by multiplication (no division, no logarithm), in the data's precision.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from structlin._cpu._schedule import serial_when_small

__all__ = ["krylov_grad_leaf", "krylov_leaf", "krylov_t_leaf", "linear_scan"]


@njit(cache=True, parallel=True)
def _krylov_leaf(a, u, g, out, leaf):
    R, N = u.shape
    nl = N // leaf
    for t in prange(R * nl):
        r = t // nl
        b = (t - r * nl) * leaf
        for k in range(leaf):
            gk = g[r, b + k]
            p = a.dtype.type(1)
            for i in range(k, leaf):
                if i > k:
                    p = p * a[r, b + i - 1]
                out[r, b + i] += p * u[r, i - k] * gk


@njit(cache=True, parallel=True)
def _krylov_t_leaf(a, w, g, out, leaf):
    R, N = w.shape
    nl = N // leaf
    for r in prange(R):
        for b0 in range(nl):
            b = b0 * leaf
            for k in range(leaf):
                gk = g[r, b + k]
                p = a.dtype.type(1)
                for i in range(k, leaf):
                    if i > k:
                        p = p * a[r, b + i - 1]
                    out[r, i - k] += w[r, b + i] * p * gk


@njit(cache=True, parallel=True)
def _krylov_grad_leaf(a, w, u, g, out, leaf):
    R, N = w.shape
    nl = N // leaf
    for t in prange(R * nl):
        r = t // nl
        b = (t - r * nl) * leaf
        suf = np.empty(leaf, dtype=a.dtype)
        for k in range(leaf):
            gk = g[r, b + k]
            for i in range(k + 1, leaf):
                coef = w[r, b + i] * u[r, i - k] * gk
                # suf[l] = P(l + 1, i) for l = i - 1 down to k
                suf[i - 1] = a.dtype.type(1)
                for l in range(i - 2, k - 1, -1):
                    suf[l] = suf[l + 1] * a[r, b + l + 1]
                pre = a.dtype.type(1)
                for l in range(k, i):
                    out[r, b + l] += coef * pre * suf[l]
                    pre = pre * a[r, b + l]


@njit(cache=True, parallel=True)
def _linear_scan(c, d, out):
    R, N = d.shape
    for r in prange(R):
        acc = d[r, 0]
        out[r, 0] = acc
        for t in range(1, N):
            acc = acc * c[r, t - 1] + d[r, t]
            out[r, t] = acc


@serial_when_small(1)
def krylov_leaf(a, u, g, out, leaf):
    """Add ``sum_k P(k, i) u[i - k] g[k]`` over each leaf into ``out`` (module docstring)."""
    if out.size:
        _krylov_leaf(a, u, g, out, leaf)


@serial_when_small(1)
def krylov_t_leaf(a, w, g, out, leaf):
    """Add ``sum_{i - k = d} w[i] P(k, i) g[k]`` over each leaf into ``out[d]``."""
    if out.size:
        _krylov_t_leaf(a, w, g, out, leaf)


@serial_when_small(1)
def krylov_grad_leaf(a, w, u, g, out, leaf):
    """Add the leaf part of ``d (w^T K(A, g) u) / d a`` into ``out`` (module docstring)."""
    if out.size:
        _krylov_grad_leaf(a, w, u, g, out, leaf)


@serial_when_small(1)
def linear_scan(c, d, out):
    """Write ``out[t] = out[t - 1] c[t - 1] + d[t]`` along the last axis (``out[0] = d[0]``)."""
    if out.size:
        _linear_scan(c, d, out)
