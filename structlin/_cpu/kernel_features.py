"""Numba kernels of the kernel feature maps (cosine and sine of projections).

Contract (shared with ``structlin.gpu.kernel_features``); all arrays C-contiguous float32 or
float64 of one dtype, ``x (n, d)``, ``w (m, d)``, ``scale (m,)``, ``phase (m,)``,
``0 <= sin_from <= m``::

    t[i, j] = sum_k x[i, k] w[j, k] + phase[j]
    features(x, w, scale, phase, sin_from, out):     out (n, 2m - sin_from)
        out[i, j]                = scale[j] cos t[i, j]      j < m
        out[i, m + j - sin_from] = scale[j] sin t[i, j]      j >= sin_from
    features_coef(x, w, scale, phase, sin_from, g, coef, wcoef):   g like out, coef/wcoef (n, m)
        coef[i, j]  = scale[j] (-g[i, j] sin t + g_s[i, j] cos t)      (dL/dt)
        wcoef[i, j] = g[i, j] cos t + g_s[i, j] sin t                  (dL/dscale, per row)
    with g_s[i, j] = g[i, m + j - sin_from] for j >= sin_from, else 0.
    trig(t, scale, sin_from, out):     t (n, m) given projections, out as for features
        (the structured maps, SORF and Fastfood, form t by Hadamard transforms)

One fused pass: the rows are split into tiles of :data:`ROWS` rows (in parallel), the nodes into
chunks of :data:`NODES`; a ``ROWS x NODES`` block of ``t`` is formed in a per-thread buffer
that stays in the L1/L2 cache (for ``d <= SMALL_D`` by SIMD multiply-adds along the nodes of
``w`` transposed, for larger ``d`` by a BLAS product of the tile), and the cosines and sines are
evaluated from it straight into ``out``. ``t`` never exists at full size.

The sine and cosine are computed together by :func:`_sincos`: Cody–Waite reduction by
``pi/2`` (three-part constant, so ``q * C1`` is exact) and the Taylor polynomials of both on
``[-pi/4, pi/4]`` (degree 15/16 in float64, 9/10 in float32; truncation below an ulp), the
quadrant applied by selects: branch-free arithmetic that LLVM vectorizes (AVX2: 4 float64 or 8
float32 lanes), where ``np.cos`` on float64 is a scalar libm call per element. Arguments
beyond :data:`LIMIT64` / :data:`LIMIT32` (where the reduction stops being exact) send the
row's block to ``math.sin``/``math.cos``; NaN and inf give NaN in their own row only,
and leave the other rows bit-identical.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from structlin._cpu._schedule import serial_blas, threads_for

__all__ = ["features", "features_coef", "trig"]

#: rows per tile (one tile per task of the parallel loop); BLAS tiles (d > SMALL_D) take
#: ROWS_BLAS x NODES_BLAS, so that each GEMM is large enough for BLAS (measured at d = 1024:
#: 32-row tiles 440 ms, 256-row tiles 257 ms for 4096 x 1024 -> 4096 features, float32)
ROWS = 32
ROWS_BLAS = 256
NODES_BLAS = 256
#: nodes per chunk of a tile (the t block is ROWS x NODES)
NODES = 256
#: input widths up to which the projection is formed by SIMD multiply-adds, not BLAS
SMALL_D = 24

# pi/2 in three parts: C1 and C2 with 33 (float64) or 12 (float32) significant bits, so that
# q * C1 and q * C2 are exact for |q| < 2**20 (2**12)
_C1_64, _C2_64, _C3_64 = 1.5707963267341256, 6.077100506303966e-11, 2.0222662487959506e-21
_C1_32 = np.float32(1.5703125)
_C2_32 = np.float32(0.0004837512969970703)
_C3_32 = np.float32(7.549789954891882e-08)
_TWO_OVER_PI = 0.6366197723675814
#: largest |t| reduced in float64 / float32 arithmetic; beyond, math.sin / math.cos
LIMIT64 = 1.0e6
LIMIT32 = 4.0e3


@njit(cache=True, inline="always", fastmath={"contract"})
def _poly64(r):
    z = r * r
    s = r + r * z * (-1.0 / 6 + z * (1.0 / 120 + z * (-1.0 / 5040 + z * (
        1.0 / 362880 + z * (-1.0 / 39916800 + z * (1.0 / 6227020800
                                                    + z * (-1.0 / 1307674368000)))))))
    c = 1.0 + z * (-0.5 + z * (1.0 / 24 + z * (-1.0 / 720 + z * (1.0 / 40320 + z * (
        -1.0 / 3628800 + z * (1.0 / 479001600 + z * (-1.0 / 87178291200
                                                      + z * (1.0 / 20922789888000))))))))
    return s, c


@njit(cache=True, inline="always", fastmath={"contract"})
def _poly32(r):
    z = r * r
    s = r + r * z * (np.float32(-1.0 / 6) + z * (np.float32(1.0 / 120) + z * (
        np.float32(-1.0 / 5040) + z * np.float32(1.0 / 362880))))
    c = np.float32(1.0) + z * (np.float32(-0.5) + z * (np.float32(1.0 / 24) + z * (
        np.float32(-1.0 / 720) + z * (np.float32(1.0 / 40320)
                                      + z * np.float32(-1.0 / 3628800)))))
    return s, c


@njit(cache=True, inline="always", fastmath={"contract"})
def _sincos(t):
    """``(sin t, cos t)`` for |t| below the type's limit, branch-free."""
    if isinstance(t, np.float32):
        q = np.floor(t * np.float32(_TWO_OVER_PI) + np.float32(0.5))
        r = ((t - q * _C1_32) - q * _C2_32) - q * _C3_32
        s, c = _poly32(r)
        qm = q - np.float32(4.0) * np.floor(q * np.float32(0.25))
        one = np.float32(1.0)
    else:
        q = np.floor(t * _TWO_OVER_PI + 0.5)
        r = ((t - q * _C1_64) - q * _C2_64) - q * _C3_64
        s, c = _poly64(r)
        qm = q - 4.0 * np.floor(q * 0.25)
        one = 1.0
    odd = (qm == one) | (qm == 3 * one)
    sv = c if odd else s
    cv = s if odd else c
    sv = -sv if qm >= 2 * one else sv
    cv = -cv if (qm == one) | (qm == 2 * one) else cv
    return sv, cv


@njit(cache=True, inline="always", fastmath={"contract"})
def _both(t, scale, oc, os_):
    for c in range(t.shape[0]):
        sv, cv = _sincos(t[c])
        oc[c] = scale[c] * cv
        os_[c] = scale[c] * sv


@njit(cache=True, inline="always", fastmath={"contract"})
def _coef(t, scale, gc, co, wc):
    for c in range(t.shape[0]):
        sv, cv = _sincos(t[c])
        co[c] = -scale[c] * gc[c] * sv
        wc[c] = gc[c] * cv


@njit(cache=True, inline="always", fastmath={"contract"})
def _coef_sin(t, scale, gs, co, wc):
    for c in range(t.shape[0]):
        sv, cv = _sincos(t[c])
        co[c] += scale[c] * gs[c] * cv
        wc[c] += gs[c] * sv


@njit(cache=True, inline="always")
def _project(x, w, wt, phase, i0, i1, j0, j1, tb, small):
    """``tb[:i1-i0, :j1-j0] = x[i0:i1] @ wt[:, j0:j1] + phase[j0:j1]``."""
    nr = i1 - i0
    nc = j1 - j0
    d = x.shape[1]
    if small:
        for r in range(nr):
            row = tb[r, :nc]
            for c in range(nc):
                row[c] = phase[j0 + c]
            for k in range(d):
                xv = x[i0 + r, k]
                wk = wt[k, j0:j1]
                for c in range(nc):
                    row[c] += xv * wk[c]
    else:
        tb[:nr, :nc] = np.dot(x[i0:i1], w[j0:j1].T)
        for r in range(nr):
            row = tb[r, :nc]
            for c in range(nc):
                row[c] += phase[j0 + c]


@njit(cache=True, inline="always")
def _absmax(row):
    """The largest |t| of a row (inf for inf; NaN is ignored: it stays NaN on either path)."""
    big = row.dtype.type(0.0)
    for c in range(row.shape[0]):
        a = abs(row[c])
        big = a if a > big else big
    return big


@njit(cache=True, parallel=True)
def _features(x, w, wt, scale, phase, sin_from, out, small, limit, rows, cols):
    n = x.shape[0]
    m = wt.shape[1]
    n_tiles = (n + rows - 1) // rows
    for ti in prange(n_tiles):
        i0 = ti * rows
        i1 = min(n, i0 + rows)
        tb = np.empty((rows, cols), dtype=x.dtype)
        for j0 in range(0, m, cols):
            j1 = min(m, j0 + cols)
            _project(x, w, wt, phase, i0, i1, j0, j1, tb, small)
            # cos only below sin_from, cos and sin from there
            jc = min(max(sin_from, j0), j1)
            for r in range(i1 - i0):
                row = tb[r]
                # per row, so that a huge or infinite entry changes no other row's path
                big = _absmax(row[:j1 - j0])
                oc = out[i0 + r, j0:j1]
                os_ = out[i0 + r, m - sin_from + jc:m - sin_from + j1]
                if big <= limit:
                    for c in range(jc - j0):
                        _, cv = _sincos(row[c])
                        oc[c] = scale[j0 + c] * cv
                    # the sine part on views starting at jc: unit-stride loops vectorize
                    _both(row[jc - j0:j1 - j0], scale[jc:j1], oc[jc - j0:], os_)
                else:
                    for c in range(j1 - j0):
                        oc[c] = scale[j0 + c] * math.cos(row[c])
                    for c in range(jc - j0, j1 - j0):
                        os_[c - (jc - j0)] = scale[j0 + c] * math.sin(row[c])


@njit(cache=True, parallel=True)
def _features_coef(x, w, wt, scale, phase, sin_from, g, coef, wcoef, small, limit, rows, cols):
    n = x.shape[0]
    m = wt.shape[1]
    n_tiles = (n + rows - 1) // rows
    for ti in prange(n_tiles):
        i0 = ti * rows
        i1 = min(n, i0 + rows)
        tb = np.empty((rows, cols), dtype=x.dtype)
        for j0 in range(0, m, cols):
            j1 = min(m, j0 + cols)
            _project(x, w, wt, phase, i0, i1, j0, j1, tb, small)
            jc = min(max(sin_from, j0), j1)
            for r in range(i1 - i0):
                row = tb[r]
                # per row, so that a huge or infinite entry changes no other row's path
                big = _absmax(row[:j1 - j0])
                gc = g[i0 + r, j0:j1]
                gs = g[i0 + r, m - sin_from + jc:m - sin_from + j1]
                co = coef[i0 + r, j0:j1]
                wc = wcoef[i0 + r, j0:j1]
                if big <= limit:
                    _coef(row[:j1 - j0], scale[j0:j1], gc, co, wc)
                    _coef_sin(row[jc - j0:j1 - j0], scale[jc:j1], gs, co[jc - j0:],
                              wc[jc - j0:])
                else:
                    for c in range(j1 - j0):
                        co[c] = -scale[j0 + c] * gc[c] * math.sin(row[c])
                        wc[c] = gc[c] * math.cos(row[c])
                    for c in range(jc - j0, j1 - j0):
                        gv = gs[c - (jc - j0)]
                        co[c] += scale[j0 + c] * gv * math.cos(row[c])
                        wc[c] += gv * math.sin(row[c])


@njit(cache=True, parallel=True)
def _trig(t, scale, sin_from, out, limit):
    n, m = t.shape
    for i in prange(n):
        row = t[i]
        big = _absmax(row)
        oc = out[i, :m]
        os_ = out[i, m:]
        if big <= limit:
            for c in range(sin_from):
                _, cv = _sincos(row[c])
                oc[c] = scale[c] * cv
            _both(row[sin_from:], scale[sin_from:], oc[sin_from:], os_)
        else:
            for c in range(m):
                oc[c] = scale[c] * math.cos(row[c])
            for c in range(sin_from, m):
                os_[c - sin_from] = scale[c] * math.sin(row[c])


def trig(t, scale, sin_from, out):
    """Fill ``out`` with ``scale cos t`` and ``scale sin t`` (see the module docstring)."""
    limit = LIMIT32 if t.dtype == np.float32 else LIMIT64
    with threads_for(out.size):
        _trig(t, scale, int(sin_from), out, limit)


def _setup(x, w):
    small = x.shape[1] <= SMALL_D
    limit = LIMIT32 if x.dtype == np.float32 else LIMIT64
    if small:
        return np.ascontiguousarray(w.T), small, limit, ROWS, NODES
    return np.ascontiguousarray(w.T), small, limit, ROWS_BLAS, NODES_BLAS


def features(x, w, scale, phase, sin_from, out):
    """Fill ``out`` with the cosine and sine features (see the module docstring)."""
    wt, small, limit, rows, cols = _setup(x, w)
    with threads_for(out.size) as nthreads, serial_blas(nthreads if not small else 1):
        _features(x, w, wt, scale, phase, int(sin_from), out, small, limit, rows, cols)


def features_coef(x, w, scale, phase, sin_from, g, coef, wcoef):
    """Fill ``coef`` and ``wcoef`` with the VJP coefficients (see the module docstring)."""
    wt, small, limit, rows, cols = _setup(x, w)
    with threads_for(g.size) as nthreads, serial_blas(nthreads if not small else 1):
        _features_coef(x, w, wt, scale, phase, int(sin_from), g, coef, wcoef, small, limit,
                       rows, cols)
