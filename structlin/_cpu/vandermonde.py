"""Numba kernels of the fused Vandermonde products (never the ``m x n`` matrix).

Contract (shared with ``structlin.gpu.vandermonde``); rows ``b`` independent, all arrays
2-D C-contiguous; the functions write into their output arrays and return nothing::

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
        out[b] = a with sum_j x[b, j]**i a[j] = b[b, i]    (V a = b, Björck-Pereyra primal)
        info[b] = 1 where two nodes of row b are equal (out[b] then undefined), else 0
    solve_vandermonde_t(x, b, out, info):  the same for V^T a = b:
        sum_i x[b, j]**i a[i] = b[b, j]     (interpolation, Björck-Pereyra dual)
    vandermonde_order(x, perm, work):      x (B, n), perm (B, n) int64, work (B, n) float64
        perm[b] = the order the solves take the nodes of row b in: increasing for real
        nonnegative nodes, Leja's order otherwise (work: scratch)

The ``exp_`` variants take the nodes by their logarithms (S4D's ``dt * Lambda``), so that the
exact anchors below are ``exp(i z)`` of the given ``z``, not powers of a rounded ``exp(z)``.

Algorithm. The powers are formed by multiplication in the data's precision, in blocks of
:data:`BLOCK` consecutive exponents; each block starts from an *anchor* ``x**i0`` held in
float64 (complex128): exact (``exp(i0 log|x|) (cos i0 arg x, sin i0 arg x)`` in float64) at the
start of a task and every :data:`EXACT_EVERY` exponents, carried between by float64
multiplication with ``q = x**BLOCK`` (squared in float64 for given nodes, ``exp(BLOCK z)`` for
the ``exp_`` variants: the exact node, never the rounded one, whose rounding would otherwise
accumulate over the blocks). So a power ``x**i`` carries at most ``BLOCK`` roundings of the
working precision, whatever ``i``:
``|fl(x**i) - x**i| <= ((sqrt(5) + 1) BLOCK + 2) u |x|**i + eps_anchor`` with ``u`` the unit
roundoff of the data and ``eps_anchor <= (sqrt(5) (EXACT_EVERY / BLOCK + 6) + i |log x| + 2)
u64 |x|**i`` (complex multiplication's bound ``sqrt(5) u``, Brent, Percival and Zimmermann
2007; ``i |log x| u64`` is ``exp``'s error on the rounded product ``i log x``, the error of the
``exp`` of products reference). In float32 that is a few times ``BLOCK u`` for every ``i``
instead of ``i u`` for plain repeated products.

Loops: a task is one row and one chunk of exponents (chunks only when there are fewer rows
than a few per thread); inside, the exponent loop is outer and the node loop inner, on the
real and imaginary parts split into separate unit-stride arrays of the data's precision, so
LLVM vectorizes the node loop (``reassoc``: the sum over nodes is a vector reduction). The
transposed products accumulate per node and the chunks' partial sums are added at the end.
Memory per task: ``O(n)`` (plus the output), never ``O(n m)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from structlin._cpu._schedule import threads_for

__all__ = [
    "exp_vandermonde_re",
    "exp_vandermonde_t_re",
    "solve_vandermonde",
    "solve_vandermonde_t",
    "vandermonde",
    "vandermonde_order",
    "vandermonde_t",
]

#: exponents per block between two anchors (a power of two: x**BLOCK by squaring); the
#: systematic rounding of the node grows over a block, so short blocks keep float32 at a few
#: dozen ulps (16 measured as fast as 64 at H = 512, N = 32, L = 8192)
BLOCK = 16
#: exponents between two exact anchors (a multiple of BLOCK)
EXACT_EVERY = 4096
#: smallest chunk of exponents of one task when a row is split between threads
MIN_CHUNK = 4 * BLOCK

_FM = {"reassoc", "contract", "nsz"}


# ------------------------------------------------------------------------------ anchors


@njit(cache=True, inline="always")
def _exact_anchor(k, lr, th, ar, ai):
    """``(ar, ai) = exp(k (lr + i th))`` in float64 (``1`` for ``k = 0``: ``0**0 = 1``)."""
    if k == 0:
        for j in range(lr.shape[0]):
            ar[j] = 1.0
            ai[j] = 0.0
        return
    fk = float(k)
    for j in range(lr.shape[0]):
        mag = math.exp(fk * lr[j])
        ang = fk * th[j]
        ar[j] = mag * math.cos(ang)
        ai[j] = mag * math.sin(ang)


@njit(cache=True, inline="always")
def _advance(k0, i0, lr, th, qr, qi, ar, ai):
    """The anchor of the block at ``k0``: the previous one times ``q = x**BLOCK`` (float64, of
    the exact node), or exact."""
    if k0 == i0 or k0 % EXACT_EVERY == 0:
        _exact_anchor(k0, lr, th, ar, ai)
    else:
        for j in range(ar.shape[0]):
            a = ar[j]
            b = ai[j]
            ar[j] = a * qr[j] - b * qi[j]
            ai[j] = a * qi[j] + b * qr[j]


# ------------------------------------------------------------------------------ steps


@njit(cache=True, inline="always", fastmath=_FM)
def _fwd_real(pr, xr, out, cnt):
    n = pr.shape[0]
    for k in range(cnt):
        s = pr.dtype.type(0.0)
        for j in range(n):
            a = pr[j]
            s += a
            pr[j] = a * xr[j]
        out[k] = s


@njit(cache=True, inline="always", fastmath=_FM)
def _fwd_complex(pr, pi, xr, xi, outr, outi, cnt):
    n = pr.shape[0]
    for k in range(cnt):
        sr = pr.dtype.type(0.0)
        si = pr.dtype.type(0.0)
        for j in range(n):
            a = pr[j]
            b = pi[j]
            sr += a
            si += b
            pr[j] = a * xr[j] - b * xi[j]
            pi[j] = a * xi[j] + b * xr[j]
        outr[k] = sr
        outi[k] = si


@njit(cache=True, inline="always", fastmath=_FM)
def _fwd_complex_re(pr, pi, xr, xi, outr, cnt):
    n = pr.shape[0]
    for k in range(cnt):
        sr = pr.dtype.type(0.0)
        for j in range(n):
            a = pr[j]
            b = pi[j]
            sr += a
            pr[j] = a * xr[j] - b * xi[j]
            pi[j] = a * xi[j] + b * xr[j]
        outr[k] = sr


@njit(cache=True, inline="always", fastmath=_FM)
def _t_real(pr, xr, w, accr, cnt):
    n = pr.shape[0]
    for k in range(cnt):
        wk = w[k]
        for j in range(n):
            a = pr[j]
            accr[j] += a * wk
            pr[j] = a * xr[j]


@njit(cache=True, inline="always", fastmath=_FM)
def _t_complex(pr, pi, xr, xi, wr, wi, accr, acci, cnt):
    n = pr.shape[0]
    for k in range(cnt):
        wrk = wr[k]
        wik = wi[k]
        for j in range(n):
            a = pr[j]
            b = pi[j]
            accr[j] += a * wrk - b * wik
            acci[j] += a * wik + b * wrk
            pr[j] = a * xr[j] - b * xi[j]
            pi[j] = a * xi[j] + b * xr[j]


@njit(cache=True, inline="always", fastmath=_FM)
def _t_complex_realw2(pr, pi, xr, xi, w, wd, accr, acci, daccr, dacci, cnt):
    n = pr.shape[0]
    for k in range(cnt):
        wk = w[k]
        wdk = wd[k]
        for j in range(n):
            a = pr[j]
            b = pi[j]
            accr[j] += a * wk
            acci[j] += b * wk
            daccr[j] += a * wdk
            dacci[j] += b * wdk
            pr[j] = a * xr[j] - b * xi[j]
            pi[j] = a * xi[j] + b * xr[j]


# ------------------------------------------------------------------------------ kernels


@njit(cache=True, parallel=True, fastmath=_FM)
def _forward(xr, xi, lr, th, qr, qi, vr, vi, outr, outi, chunk, cplx, want_imag):
    """``out[b, i] = sum_j x^i v`` on split parts; ``cplx`` False: real data (``xi``, ``vi``,
    ``outi`` unused); ``want_imag`` False: only the real part is written."""
    B, n = xr.shape
    m = outr.shape[1]
    nch = (m + chunk - 1) // chunk
    wt = xr.dtype
    for t in prange(B * nch):
        b = t // nch
        i0 = (t - b * nch) * chunk
        i1 = min(m, i0 + chunk)
        pr = np.empty(n, wt)
        pi = np.empty(n, wt)
        ar = np.empty(n, np.float64)
        ai = np.empty(n, np.float64)
        for k0 in range(i0, i1, BLOCK):
            _advance(k0, i0, lr[b], th[b], qr[b], qi[b], ar, ai)
            cnt = min(BLOCK, i1 - k0)
            if cplx:
                for j in range(n):
                    v_r = np.float64(vr[b, j])
                    v_i = np.float64(vi[b, j])
                    pr[j] = ar[j] * v_r - ai[j] * v_i
                    pi[j] = ar[j] * v_i + ai[j] * v_r
                if want_imag:
                    _fwd_complex(pr, pi, xr[b], xi[b], outr[b, k0:], outi[b, k0:], cnt)
                else:
                    _fwd_complex_re(pr, pi, xr[b], xi[b], outr[b, k0:], cnt)
            else:
                for j in range(n):
                    pr[j] = ar[j] * np.float64(vr[b, j])
                _fwd_real(pr, xr[b], outr[b, k0:], cnt)


@njit(cache=True, parallel=True, fastmath=_FM)
def _transposed(xr, xi, lr, th, qr, qi, wr, wi, accr, acci, daccr, dacci, chunk, mode):
    """Partial sums per task ``t = b * nch + c`` into ``acc[t]`` (and ``dacc[t]``).

    ``mode`` 0: real x and w; 1: complex x and w (``wi`` the imaginary part); 2: complex x,
    real ``w`` and the real derivative weights ``wi`` (into ``dacc``)."""
    B, n = xr.shape
    m = wr.shape[1]
    nch = (m + chunk - 1) // chunk
    wt = xr.dtype
    for t in prange(B * nch):
        b = t // nch
        i0 = (t - b * nch) * chunk
        i1 = min(m, i0 + chunk)
        pr = np.empty(n, wt)
        pi = np.empty(n, wt)
        ar = np.empty(n, np.float64)
        ai = np.empty(n, np.float64)
        ca_r = accr[t]
        ca_i = acci[t]
        ca_r[:] = 0.0
        ca_i[:] = 0.0
        cd_r = daccr[t]
        cd_i = dacci[t]
        if mode == 2:
            cd_r[:] = 0.0
            cd_i[:] = 0.0
        for k0 in range(i0, i1, BLOCK):
            _advance(k0, i0, lr[b], th[b], qr[b], qi[b], ar, ai)
            cnt = min(BLOCK, i1 - k0)
            if mode == 0:
                for j in range(n):
                    pr[j] = ar[j]
                _t_real(pr, xr[b], wr[b, k0:], ca_r, cnt)
            else:
                for j in range(n):
                    pr[j] = ar[j]
                    pi[j] = ai[j]
                if mode == 1:
                    _t_complex(pr, pi, xr[b], xi[b], wr[b, k0:], wi[b, k0:], ca_r, ca_i, cnt)
                else:
                    _t_complex_realw2(pr, pi, xr[b], xi[b], wr[b, k0:], wi[b, k0:], ca_r,
                                      ca_i, cd_r, cd_i, cnt)


# ------------------------------------------------------------------------------ the contract


def _chunk(B: int, m: int) -> int:
    """Exponents per task: whole rows when there are enough rows for every thread, else
    chunks (multiples of BLOCK, at least MIN_CHUNK) giving a few tasks per thread."""
    want = 4 * numba.get_num_threads()
    if B >= want or m <= MIN_CHUNK:
        return max(m, 1)
    per_row = -(-want // max(B, 1))
    c = -(-m // per_row)
    c = max(MIN_CHUNK, -(-c // BLOCK) * BLOCK)
    return min(c, m)


def _split(a, real):
    """Unit-stride real and imaginary parts (the imaginary part of real data: a dummy)."""
    if real:
        return np.ascontiguousarray(a), np.empty((a.shape[0], 0), a.dtype)
    return np.ascontiguousarray(a.real), np.ascontiguousarray(a.imag)


def _dummy(rows, dtype):
    """An empty C-contiguous stand-in for an unused part (one Numba signature per dtype)."""
    return np.empty((rows, 0), dtype)


def _anchors(x):
    """``(log|x|, arg x, Re x**BLOCK, Im x**BLOCK)`` in float64 (``x**BLOCK`` by squaring) for
    given nodes."""
    x64 = x.astype(np.complex128)
    q = x64.copy()
    for _ in range(BLOCK.bit_length() - 1):
        q = q * q
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.log(np.abs(x64)), np.angle(x64), np.ascontiguousarray(q.real),
                np.ascontiguousarray(q.imag))


def _exp_anchors(z):
    """The same for the nodes ``exp(z)``, from ``z`` (not from the rounded ``exp(z)``), and the
    nodes themselves rounded to ``z``'s precision."""
    z64 = z.astype(np.complex128)
    q = np.exp(BLOCK * z64)
    x = np.exp(z64).astype(z.dtype)
    return (x, np.ascontiguousarray(z64.real), np.ascontiguousarray(z64.imag),
            np.ascontiguousarray(q.real), np.ascontiguousarray(q.imag))


def vandermonde(x, v, out):
    """``out[b, i] = sum_j x[b, j]**i v[b, j]`` (see the module docstring)."""
    B, n = x.shape
    m = out.shape[1]
    if B == 0 or m == 0:
        return
    if n == 0:
        out[...] = 0
        return
    real = x.dtype.kind != "c"
    xr, xi = _split(x, real)
    vr, vi = _split(v, real)
    lr, th, qr, qi = _anchors(x)
    outr = np.empty((B, m), xr.dtype)
    outi = _dummy(B, xr.dtype) if real else np.empty((B, m), xr.dtype)
    with threads_for(B * m * n):
        _forward(xr, xi, lr, th, qr, qi, vr, vi, outr, outi, _chunk(B, m), not real, not real)
    if real:
        out[...] = outr
    else:
        out.real = outr
        out.imag = outi


def exp_vandermonde_re(z, v, out):
    """``out[b, i] = Re sum_j exp(i z[b, j]) v[b, j]`` (see the module docstring)."""
    B, n = z.shape
    m = out.shape[1]
    if B == 0 or m == 0:
        return
    if n == 0:
        out[...] = 0
        return
    x, lr, th, qr, qi = _exp_anchors(z)
    xr, xi = _split(x, False)
    vr, vi = _split(v, False)
    with threads_for(B * m * n):
        _forward(xr, xi, lr, th, qr, qi, vr, vi, out, _dummy(B, out.dtype), _chunk(B, m), True,
                 False)


def _reduce(acc, B, nch):
    n = acc.shape[1]
    if nch == 1:
        return acc
    return acc.reshape(B, nch, n).sum(axis=1)


def vandermonde_t(x, w, out):
    """``out[b, j] = sum_i x[b, j]**i w[b, i]`` (see the module docstring)."""
    B, n = x.shape
    m = w.shape[1]
    if B == 0 or n == 0:
        return
    if m == 0:
        out[...] = 0
        return
    real = x.dtype.kind != "c"
    chunk = _chunk(B, m)
    nch = -(-m // chunk)
    xr, xi = _split(x, real)
    wr, wi = _split(w, real)
    lr, th, qr, qi = _anchors(x)
    accr = np.empty((B * nch, n), xr.dtype)
    acci = _dummy(B * nch, xr.dtype) if real else np.empty((B * nch, n), xr.dtype)
    with threads_for(B * m * n):
        _transposed(xr, xi, lr, th, qr, qi, wr, wi, accr, acci, _dummy(B * nch, xr.dtype),
                    _dummy(B * nch, xr.dtype), chunk,
                    0 if real else 1)
    if real:
        out[...] = _reduce(accr, B, nch)
    else:
        out.real = _reduce(accr, B, nch)
        out.imag = _reduce(acci, B, nch)


def exp_vandermonde_t_re(z, w, out, dout):
    """``out[b, j] = sum_i exp(i z) w[b, i]``, ``dout[b, j] = sum_i i exp((i-1) z) w[b, i]``
    for real ``w`` (see the module docstring)."""
    B, n = z.shape
    m = w.shape[1]
    if B == 0 or n == 0:
        return
    if m == 0:
        out[...] = 0
        dout[...] = 0
        return
    chunk = _chunk(B, m)
    nch = -(-m // chunk)
    x, lr, th, qr, qi = _exp_anchors(z)
    xr, xi = _split(x, False)
    # dout = sum_i (i + 1) w[i + 1] x**i: the same powers with shifted weights
    wd = np.zeros_like(w)
    wd[:, :-1] = w[:, 1:] * np.arange(1, m, dtype=w.dtype)
    wt = xr.dtype
    accr = np.empty((B * nch, n), wt)
    acci = np.empty((B * nch, n), wt)
    daccr = np.empty((B * nch, n), wt)
    dacci = np.empty((B * nch, n), wt)
    with threads_for(B * m * n):
        _transposed(xr, xi, lr, th, qr, qi, np.ascontiguousarray(w), wd, accr, acci, daccr,
                    dacci, chunk, 2)
    out.real = _reduce(accr, B, nch)
    out.imag = _reduce(acci, B, nch)
    dout.real = _reduce(daccr, B, nch)
    dout.imag = _reduce(dacci, B, nch)


# ------------------------------------------------------------------------------ Björck-Pereyra
#
# The solves run on the transposed layout ``(n, B)``: the rows of the batch are the lanes of the
# innermost loop, so every step (one subtraction, multiplication or division per lane) is a
# unit-stride loop LLVM vectorizes, divisions included; a task is a chunk of LANES rows. The
# recurrences themselves are the papers' (Björck and Pereyra 1970; Higham, Accuracy and
# Stability, Algorithms 22.2 and 22.3), in the given order and in the data's precision: no
# fastmath, so that their componentwise error bounds hold. Divisions by zero (two equal nodes:
# the denominators x_i - x_(i-k-1) run over every pair) use NumPy's error model and are flagged
# in ``info``.

#: rows per task of the solves (the vector lanes of the innermost loops)
LANES = 32


@njit(cache=True, inline="always")
def _lanes(B, c):
    j0 = c * LANES
    return j0, min(B, j0 + LANES)


@njit(cache=True, parallel=True, error_model="numpy")
def _bp_primal(xt, a, info):
    """``V a = b`` in place on ``a`` (n, B): ``a`` holds ``b`` on entry."""
    n, B = a.shape
    for c in prange((B + LANES - 1) // LANES):
        j0, j1 = _lanes(B, c)
        # the bidiagonal eliminations by x_k (descending i reads the previous stage)
        for k in range(n - 1):
            xk = xt[k]
            for i in range(n - 1, k, -1):
                ai = a[i]
                am = a[i - 1]
                for j in range(j0, j1):
                    ai[j] -= xk[j] * am[j]
        # then the divided differences of the transposed Newton form, backwards; the zero test
        # is arithmetic (no branch), so that the lane loop stays vectorized
        for k in range(n - 2, -1, -1):
            for i in range(k + 1, n):
                ai = a[i]
                xi = xt[i]
                xm = xt[i - k - 1]
                for j in range(j0, j1):
                    d = xi[j] - xm[j]
                    info[j] |= np.int32(d == 0)
                    ai[j] = ai[j] / d
            for i in range(k, n - 1):
                ai = a[i]
                ap = a[i + 1]
                for j in range(j0, j1):
                    ai[j] -= ap[j]


@njit(cache=True, parallel=True, error_model="numpy")
def _bp_dual(xt, a, info):
    """``V^T a = f`` in place on ``a`` (n, B): ``a`` holds ``f`` on entry (interpolation)."""
    n, B = a.shape
    for c in prange((B + LANES - 1) // LANES):
        j0, j1 = _lanes(B, c)
        # Newton's divided differences of f (descending i reads the previous stage's a[i-1])
        for k in range(n - 1):
            for i in range(n - 1, k, -1):
                ai = a[i]
                am = a[i - 1]
                xi = xt[i]
                xm = xt[i - k - 1]
                for j in range(j0, j1):
                    d = xi[j] - xm[j]
                    info[j] |= np.int32(d == 0)
                    ai[j] = (ai[j] - am[j]) / d
        # Newton form to monomial coefficients (Horner's nested multiplication)
        for k in range(n - 2, -1, -1):
            xk = xt[k]
            for i in range(k, n - 1):
                ai = a[i]
                ap = a[i + 1]
                for j in range(j0, j1):
                    ai[j] -= xk[j] * ap[j]


def _solve(kernel, x, b, out, info):
    B, n = b.shape
    info[...] = 0
    if B == 0 or n == 0:
        return
    xt = np.ascontiguousarray(x.T)
    a = b.T.copy()  # C order: (n, B), never a view of b
    with threads_for(B * n * n):
        kernel(xt, a, info)
    out[...] = a.T


def solve_vandermonde(x, b, out, info):
    """``out[b] = V(x[b])^(-1) b[b]`` by Björck-Pereyra's primal algorithm; ``info[b] = 1``
    where row ``b`` has two equal nodes (see the module docstring)."""
    _solve(_bp_primal, x, b, out, info)


def solve_vandermonde_t(x, b, out, info):
    """``out[b] = V(x[b])^(-T) b[b]`` (interpolation) by Björck-Pereyra's dual algorithm;
    ``info[b] = 1`` where row ``b`` has two equal nodes (see the module docstring)."""
    _solve(_bp_dual, x, b, out, info)


# The order of the nodes matters to Björck-Pereyra's accuracy (Higham, section 22.3): for real
# nonnegative nodes the increasing order gives the componentwise bound of Higham's Corollary
# 22.5; for other nodes (real of both signs, complex, the roots of unity above all, where the
# natural order makes the divided differences grow like 2**n) Leja's order, each node the one
# farthest from the previous ones in the product sense, keeps them bounded (Reichel, "Newton
# interpolation at Leja points", BIT 30, 1990). O(n^2) per row, like the solve.


@njit(cache=True, parallel=True)
def _order(xr, xi, perm, work):
    """Selection on arrays kept in position order (the swaps move the parts, the score and
    the index together), so that the inner loops are unit-stride; Leja's products of squared
    distances (the same order as of distances), rescaled at every step."""
    B, n = xr.shape
    for b in prange(B):
        p = perm[b]
        w = work[b]
        pr = xr[b]
        pi = xi[b]
        sorted_real = True
        for j in range(n):
            p[j] = j
            if pi[j] != 0.0 or pr[j] < 0.0:
                sorted_real = False
        for j in range(n):
            # the score picked (largest first): -x for the increasing order, |x|**2 for the
            # first Leja point
            w[j] = -pr[j] if sorted_real else pr[j] * pr[j] + pi[j] * pi[j]
        for k in range(n):
            best = k
            top = w[k]
            for q in range(k + 1, n):
                if w[q] > top:
                    top = w[q]
                    best = q
            p[k], p[best] = p[best], p[k]
            w[k], w[best] = w[best], w[k]
            pr[k], pr[best] = pr[best], pr[k]
            pi[k], pi[best] = pi[best], pi[k]
            if sorted_real or k + 1 == n:
                continue
            cr = pr[k]
            ci = pi[k]
            top = 0.0
            if k == 0:
                for q in range(1, n):
                    w[q] = 1.0
            for q in range(k + 1, n):
                dr = pr[q] - cr
                di = pi[q] - ci
                w[q] *= dr * dr + di * di
                top = max(top, w[q])
            if top > 0.0:  # rescaled: the products neither overflow nor underflow
                s = 1.0 / top
                for q in range(k + 1, n):
                    w[q] *= s


def vandermonde_order(x, perm, work):
    """``perm[b]``: the order of the nodes of row ``b`` for the solves (see the module
    docstring)."""
    B, n = x.shape
    if B == 0 or n == 0:
        return
    x64 = x.astype(np.complex128)  # the parts are scratch too (reordered in place)
    with threads_for(B * n * n):
        _order(np.ascontiguousarray(x64.real), np.ascontiguousarray(x64.imag), perm, work)
