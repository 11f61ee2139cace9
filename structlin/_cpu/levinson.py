"""Numba kernel of the batched Levinson(-Trench-Zohar) solver for general Toeplitz systems.

Contract (shared with ``structlin.gpu.levinson``); arrays C-contiguous, of one dtype ``T``
(float32, float64, complex64 or complex128) unless said otherwise::

    levinson(c, r, b, x, reflection, logdet, sign, info, invnorm, tol)

    c, r        (B, n)      first column and first row of each Toeplitz matrix (r[:, 0] unused):
                            T[i, j] = c[i - j] (i >= j), r[j - i] (j > i)
    b           (B, n, k)   right-hand sides (k may be 0: determinant only)
    x           (B, n, k)   out: T^{-1} b
    reflection  (B, n - 1)  out: forward reflection coefficients (below)
    logdet      (B,) real   out: log|det T| (of the last leading minor reached on breakdown)
    sign        (B,) T      out: det T / |det T| (0 when that minor is exactly singular)
    info        (B,) int64  out: 0, or m >= 1 when the leading minor of order m is zero or
                            tiny (|delta_m| <= tol * max|t|): x of that row is NaN. A row
                            whose c or r holds NaN or infinity gets NaN everywhere, info 0
    invnorm     (B,) real   out: max(||T^{-1} e_1||_1, ||T^{-1} e_n||_1), a lower bound of
                            ||T^{-1}||_1 (the rcond estimate of the public functions)
    tol         float       the breakdown threshold relative to max |t_d| of the row

The recursion (Levinson 1947, Trench 1964, Zohar 1974; Golub & Van Loan, Matrix Computations,
section 4.7) keeps the forward and backward vectors ``f = T_m^{-1} e_1`` and
``g = T_m^{-1} e_m`` of the leading minors ``T_m``. From order m to m + 1, with
``ef = sum_i t_{m-i} f_i`` and ``eg = sum_i t_{-(i+1)} g_i``::

    D = 1 - ef eg,   f' = ([f; 0] - ef [0; g]) / D,   g' = ([0; g] - eg [f; 0]) / D
    x' = [x; 0] + (b_m - sum_i t_{m-i} x_i) g'
    delta_{m+1} = det T_{m+1} / det T_m = delta_m D     (delta_1 = t_0),
    log|det T| = sum_m log|delta_m|

``reflection[m - 1] = -ef g_{m-1} / f_0`` is the last entry of the monic forward predictor
``f' / f'_0`` of order m (MATLAB's ``levinson`` convention; for a symmetric positive definite
matrix Durbin's ``alpha`` of Golub & Van Loan, Algorithm 4.7.1). Cost ``3 n^2 + 2 n^2 k``
multiply-adds per row, memory ``O(n)`` per row beyond the output. Each order is one pass
over contiguous vectors: ``g`` is stored shifted (``[0; g]`` in place, its start moving down
by one per order), so that the pass updates ``f``, ``g`` (and ``x`` for one right-hand side)
in place at the same index and accumulates, from the new values, the inner products ``ef``,
``eg`` (and ``sum t x``) of the next order: 5 loads and 3 stores per entry instead of two
passes. The logarithm of ``|delta|`` is taken only when their running product would leave
``[1e-280, 1e280]``. Rows are independent:
parallel over rows (``prange``) when the batch has more than one row; the sums are allowed to
reassociate (``fastmath={"reassoc", "contract"}``) so that they vectorize, no other fast-math
flag: NaN and infinity propagate within their row (``error_model="numpy"``: a division by
zero gives an infinity, never an exception).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from structlin._cpu._schedule import threads_for

__all__ = ["levinson"]

_FM = {"reassoc", "contract"}


@njit(cache=True)
def _finite_rows(cr, rr):
    for i in range(cr.shape[0]):
        if not abs(cr[i]) < np.inf:
            return False
    for i in range(1, rr.shape[0]):
        if not abs(rr[i]) < np.inf:
            return False
    return True


@njit(cache=True, fastmath=_FM, error_model="numpy")
def _solve_row(cr, rr, br, xr, refl, tol, buf, ex):
    """One system; returns ``(logdet, sign, info, invnorm)``. ``buf`` (5, n + 1) and ``ex`` (k,)
    are scratch."""
    n = cr.shape[0]
    k = br.shape[1]
    one = cr.dtype.type(1)
    scale = abs(cr[0])
    for i in range(1, n):
        a = abs(cr[i])
        if a > scale:
            scale = a
        a = abs(rr[i])
        if a > scale:
            scale = a
    if not scale < np.inf or (n > 1 and not _finite_rows(cr, rr)):
        # NaN or infinity in T: NaN results in this row, as a dense solve gives, no breakdown
        xr[:, :] = np.nan
        for j in range(n - 1):
            refl[j] = np.nan
        return np.nan, cr[0] * np.nan, 0, np.nan
    thr = tol * scale
    # crev[j] = t_{n-j} = c[n - j] (crev[0] = 0 pads the last pass), rp[j] = t_{-j} = r[j]
    # (rp[n] = 0 pads it); f_i is f[i]; g_i is g[o + i], o decreasing by one per order, so
    # that [0; g] starts at g[o - 1]: one pass over the same index i updates f, g (and x) in
    # place and accumulates the inner products of the next order
    crev = buf[0]
    rp = buf[1]
    f = buf[2]
    g = buf[3]
    xv = buf[4]  # one right-hand side: x as a contiguous vector, its passes fused with f, g
    crev[0] = 0
    rp[0] = 0
    rp[n] = 0
    for i in range(n):
        crev[i + 1] = cr[n - 1 - i]
    for i in range(1, n):
        rp[i] = rr[i]
    for i in range(n + 1):
        f[i] = 0
        g[i] = 0
        xv[i] = 0
    for j in range(n - 1):
        refl[j] = np.nan
    t0 = cr[0]
    at0 = abs(t0)
    if not at0 > thr:
        xr[:, :] = np.nan
        if at0 == 0:
            return -np.inf, t0 * 0, 1, np.inf
        return np.log(at0), t0 / at0, 1, np.inf
    ld = np.log(np.float64(at0))
    pm = 1.0
    sg = t0 / at0
    delta = t0
    o = n
    f[0] = one / t0
    g[o] = one / t0
    for j in range(k):
        xr[0, j] = br[0, j] / t0
    for i in range(1, n):
        for j in range(k):
            xr[i, j] = 0
    if k == 1:
        xv[0] = xr[0, 0]
    # ef = sum_i t_{m-i} f_i, eg = sum_i t_{-(i+1)} g_i, sx = sum_i t_{m-i} x_i of order m = 1
    ef = crev[n - 1] * f[0]
    eg = rp[1] * g[o]
    sx = crev[n - 1] * xv[0]
    for m in range(1, n):
        D = one - ef * eg
        refl[m - 1] = -ef * g[o + m - 1] / f[0]
        delta = delta * D
        ad = abs(delta)
        if not ad > thr:
            xr[:, :] = np.nan
            for j in range(m, n - 1):
                refl[j] = np.nan
            if ad == 0:
                return -np.inf, delta * 0, m + 1, np.inf
            return ld + np.log(pm) + np.log(ad), sg * (delta / ad), m + 1, np.inf
        # log|det| = ld + log(pm): a logarithm only when the running product pm of the |delta|
        # would leave [1e-280, 1e280] (products of at most n factors: relative error n eps)
        pn = pm * ad
        if pn > 1e-280 and pn < 1e280:
            pm = pn
        else:
            ld += np.log(pm) + np.log(ad)
            pm = 1.0
        sg = sg * (delta / ad)
        inv = one / D
        fv = f[:m + 1]
        gv = g[o - 1:o + m]
        cv = crev[n - 1 - m:n]  # t_{m+1-i}, i = 0 .. m (the next order's weights)
        rv = rp[1:m + 2]
        nef = cr.dtype.type(0)
        neg = cr.dtype.type(0)
        nsx = cr.dtype.type(0)
        if k == 1:
            s = br[m, 0] - sx
            xs = xv[:m + 1]
            for i in range(m + 1):
                fi = fv[i]
                gi = gv[i]
                gn = (gi - eg * fi) * inv
                fn = (fi - ef * gi) * inv
                xn = xs[i] + s * gn
                fv[i] = fn
                gv[i] = gn
                xs[i] = xn
                w = cv[i]
                nef += w * fn
                neg += rv[i] * gn
                nsx += w * xn
        else:
            for i in range(m + 1):
                fi = fv[i]
                gi = gv[i]
                gn = (gi - eg * fi) * inv
                fn = (fi - ef * gi) * inv
                fv[i] = fn
                gv[i] = gn
                nef += cv[i] * fn
                neg += rv[i] * gn
        o -= 1
        if k > 1:
            off = n - 1 - m
            for j in range(k):
                ex[j] = br[m, j]
            for i in range(m):
                w = crev[off + i + 1]
                xi = xr[i]
                for j in range(k):
                    ex[j] -= w * xi[j]
            for i in range(m + 1):
                gi = g[o + i]
                xi = xr[i]
                for j in range(k):
                    xi[j] += ex[j] * gi
        ef = nef
        eg = neg
        sx = nsx
    if k == 1:
        for i in range(n):
            xr[i, 0] = xv[i]
    nf = 0.0
    ng = 0.0
    for i in range(n):
        nf += abs(f[i])
        ng += abs(g[o + i])
    return ld + np.log(pm), sg, 0, max(nf, ng)


@njit(cache=True, parallel=True, error_model="numpy")
def _levinson(c, r, b, x, refl, logdet, sign, info, invnorm, tol):
    nb, n, k = b.shape
    for row in prange(nb):
        buf = np.empty((5, n + 1), dtype=c.dtype)
        ex = np.empty(max(k, 1), dtype=b.dtype)
        ld, sg, inf, nrm = _solve_row(c[row], r[row], b[row], x[row], refl[row], tol, buf, ex)
        logdet[row] = ld
        sign[row] = sg
        info[row] = inf
        invnorm[row] = nrm


def levinson(c, r, b, x, reflection, logdet, sign, info, invnorm, tol):
    """Solve ``T x = b`` row by row by the Levinson recursion (module docstring)."""
    nb, n, k = b.shape
    if nb == 0 or n == 0:
        return
    # read-only inputs (broadcast views, frozen caller arrays) would be another Numba
    # signature, compiled again: pass writeable copies of those instead
    c, r, b = (a if a.flags.writeable else a.copy() for a in (c, r, b))
    with threads_for(nb * n * (n + k) if nb > 1 else 0):
        _levinson(c, r, b, x, reflection, logdet, sign, info, invnorm, float(tol))
