"""Numba kernels of the fused Cauchy product (and of its square, for the VJPs).

Contract (shared with ``structlin.gpu.cauchy``); all arrays C-contiguous, of one dtype
(float32, float64, complex64 or complex128), ``x (Bx, m)``, ``y (By, n)`` with ``Bx`` and
``By`` each 1 (nodes shared by every row) or ``B``, ``v (B, K, n)``, ``out`` and ``out_sq``
``(B, K, m)``; the functions write their outputs and return nothing::

    r[b, i, j] = 1 / (x[b, i] - y[b, j])          (row 0 of x or y when it has one row)
    cauchy(x, y, v, out):                 out[b, k, i]    = sum_j v[b, k, j] r[b, i, j]
    cauchy_square(x, y, v, out, out_sq):  out as above,  out_sq[b, k, i] = sum_j v[b, k, j] r^2

The ``K`` vectors of a row share its nodes, so each reciprocal is computed once and used
up to :data:`KCHUNK` times (the S4 kernel's ``(r + 1)^2`` Cauchy products of a channel are
one call).

One fused pass, parallel over tiles of (row, chunk of :data:`KCHUNK` vectors, block of
:data:`BLOCK` consecutive ``i``): for each ``j`` the reciprocals of the block are formed in a
small buffer (complex numbers split into real and imaginary arrays,
``1 / (a + ib) = (a - ib) / (a^2 + b^2)``: one division per term), then multiplied into the
chunk's accumulators. Every loop runs along ``i`` with unit stride and no reduction, so LLVM
vectorizes it without reassociating (AVX2: 8 float32 or 4 float64 lanes); the ``m x n``
matrix never exists, the extra memory is ``O(KCHUNK * BLOCK)`` per thread. A coinciding pair
``x_i == y_j`` gives infinite or NaN terms in its own row only (the public function turns
them into an error).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from structlin._cpu._schedule import threads_for

__all__ = ["cauchy", "cauchy_square"]

#: consecutive ``i`` of one tile: the buffers (reciprocals, squares, accumulators) of a
#: block stay in the L1 cache
BLOCK = 256
#: vectors of a row per tile: a row's reciprocals are formed once per chunk of this many
#: vectors, and many vectors sharing few nodes still give parallel tiles
KCHUNK = 16


@njit(cache=True, parallel=True)
def _cauchy_complex(xr, xi, yr, yi, vr, vi, out, out_sq, square, block, kchunk):
    """``out`` and ``out_sq`` are the complex outputs viewed as ``(B, K, 2m)`` floats."""
    nb, nkall, n = vr.shape
    m = xr.shape[1]
    nblk = (m + block - 1) // block
    nkc = (nkall + kchunk - 1) // kchunk
    for t in prange(nb * nkc * nblk):
        b = t // (nkc * nblk)
        rest = t - b * (nkc * nblk)
        kc = rest // nblk
        i0 = (rest - kc * nblk) * block
        w = min(m, i0 + block) - i0
        k0 = kc * kchunk
        nk = min(nkall, k0 + kchunk) - k0
        bx = b if xr.shape[0] > 1 else 0
        by = b if yr.shape[0] > 1 else 0
        xrb = xr[bx, i0:i0 + w]
        xib = xi[bx, i0:i0 + w]
        one = xr.dtype.type(1)
        rr = np.empty(w, dtype=xr.dtype)
        ri = np.empty(w, dtype=xr.dtype)
        qr = np.empty(w, dtype=xr.dtype)
        qi = np.empty(w, dtype=xr.dtype)
        ar = np.zeros((nk, w), dtype=xr.dtype)
        ai = np.zeros((nk, w), dtype=xr.dtype)
        sr = np.zeros((nk, w) if square else (1, 1), dtype=xr.dtype)
        si = np.zeros((nk, w) if square else (1, 1), dtype=xr.dtype)
        for j in range(n):
            yrj = yr[by, j]
            yij = yi[by, j]
            for i in range(w):
                dr = xrb[i] - yrj
                di = yij - xib[i]
                inv = one / (dr * dr + di * di)
                rr[i] = dr * inv
                ri[i] = di * inv
            if square:
                for i in range(w):
                    qr[i] = rr[i] * rr[i] - ri[i] * ri[i]
                    qi[i] = (rr[i] + rr[i]) * ri[i]
            for k in range(nk):
                a = vr[b, k0 + k, j]
                c = vi[b, k0 + k, j]
                ark = ar[k]
                aik = ai[k]
                for i in range(w):
                    ark[i] += a * rr[i] - c * ri[i]
                    aik[i] += a * ri[i] + c * rr[i]
                if square:
                    srk = sr[k]
                    sik = si[k]
                    for i in range(w):
                        srk[i] += a * qr[i] - c * qi[i]
                        sik[i] += a * qi[i] + c * qr[i]
        for k in range(nk):
            o = out[b, k0 + k]
            for i in range(w):
                o[2 * (i0 + i)] = ar[k, i]
                o[2 * (i0 + i) + 1] = ai[k, i]
            if square:
                o = out_sq[b, k0 + k]
                for i in range(w):
                    o[2 * (i0 + i)] = sr[k, i]
                    o[2 * (i0 + i) + 1] = si[k, i]


@njit(cache=True, parallel=True)
def _cauchy_real(x, y, v, out, out_sq, square, block, kchunk):
    nb, nkall, n = v.shape
    m = x.shape[1]
    nblk = (m + block - 1) // block
    nkc = (nkall + kchunk - 1) // kchunk
    for t in prange(nb * nkc * nblk):
        b = t // (nkc * nblk)
        rest = t - b * (nkc * nblk)
        kc = rest // nblk
        i0 = (rest - kc * nblk) * block
        w = min(m, i0 + block) - i0
        k0 = kc * kchunk
        nk = min(nkall, k0 + kchunk) - k0
        bx = b if x.shape[0] > 1 else 0
        by = b if y.shape[0] > 1 else 0
        xb = x[bx, i0:i0 + w]
        one = x.dtype.type(1)
        r = np.empty(w, dtype=x.dtype)
        q = np.empty(w, dtype=x.dtype)
        acc = np.zeros((nk, w), dtype=x.dtype)
        acs = np.zeros((nk, w) if square else (1, 1), dtype=x.dtype)
        for j in range(n):
            yj = y[by, j]
            for i in range(w):
                r[i] = one / (xb[i] - yj)
            if square:
                for i in range(w):
                    q[i] = r[i] * r[i]
            for k in range(nk):
                a = v[b, k0 + k, j]
                ak = acc[k]
                for i in range(w):
                    ak[i] += a * r[i]
                if square:
                    sk = acs[k]
                    for i in range(w):
                        sk[i] += a * q[i]
        for k in range(nk):
            out[b, k0 + k, i0:i0 + w] = acc[k]
            if square:
                out_sq[b, k0 + k, i0:i0 + w] = acs[k]


def _run(x, y, v, out, out_sq, square):
    nb, nk, n = v.shape
    m = x.shape[1]
    if nb * nk * m == 0:
        return
    with threads_for(nb * nk * m * max(n, 1)):
        if np.iscomplexobj(v):
            real = x.real.dtype
            parts = [np.ascontiguousarray(a.real, dtype=real) for a in (x, y, v)]
            imags = [np.ascontiguousarray(a.imag, dtype=real) for a in (x, y, v)]
            o = out.view(real)
            s = out_sq.view(real) if square else o
            _cauchy_complex(parts[0], imags[0], parts[1], imags[1], parts[2], imags[2], o, s,
                            square, BLOCK, KCHUNK)
        else:
            # read-only inputs (broadcast views, the caller's frozen arrays) would be another
            # Numba signature, compiled again: pass writeable copies of those instead
            x, y, v = (a if a.flags.writeable else a.copy() for a in (x, y, v))
            _cauchy_real(x, y, v, out, out_sq if square else out, square, BLOCK, KCHUNK)


def cauchy(x, y, v, out):
    """Write ``out[b, k, i] = sum_j v[b, k, j] / (x[b, i] - y[b, j])`` (module docstring)."""
    _run(x, y, v, out, None, False)


def cauchy_square(x, y, v, out, out_sq):
    """Write the Cauchy product into ``out`` and its square-kernel product
    ``sum_j v[b, k, j] / (x[b, i] - y[b, j])**2`` into ``out_sq`` (module docstring)."""
    _run(x, y, v, out, out_sq, True)
