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

__all__ = ["exp_vandermonde_re", "exp_vandermonde_t_re", "vandermonde", "vandermonde_t"]

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
