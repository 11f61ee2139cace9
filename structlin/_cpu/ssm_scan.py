"""Numba kernels of the diagonal state-space scan and its VJP.

Contract (shared with ``structlin.gpu.ssm_scan``). ``ab``, ``bb``, ``c`` (H, N) complex64 or
complex128 (the discretized ``A_bar``, ``B_bar`` and ``C``); ``d`` (H,) real of the same
precision; ``u`` (R, L) real, row ``r`` belonging to channel ``r % H`` (R = batch x H);
``x0`` (R, N) complex, the initial state. The functions write their outputs and return
nothing::

    scan(ab, bb, c, d, u, x0, y, xT):     y (R, L) real, xT (R, N) complex
        x_t = ab * x_{t-1} + bb u_t   (x_{-1} = x0),   y_t = 2 Re(sum_n c x_t) + d u_t
        xT = x_{L-1}
    scan_vjp(ab, bb, c, d, u, x0, g, gu, gab, gbb, gc, gd, gx0):   g, gu (R, L) real;
        gab, gbb, gc, gx0 (R, N) complex; gd (R,) real: with the adjoint state
        lam_t = 2 g_t conj(c) + conj(ab) lam_{t+1}   (lam_L = 0)
        gu_t = Re(sum_n conj(bb) lam_t) + d g_t,   gab = sum_t lam_t conj(x_{t-1}),
        gbb = sum_t lam_t u_t,   gc = sum_t 2 g_t conj(x_t),   gd = sum_t g_t u_t,
        gx0 = conj(ab) lam_0
    (per row; the caller sums the rows of one channel).

The rows are independent: ``prange`` over them (one row per task; the calling thread alone for
fewer than :data:`structlin._cpu._schedule.SERIAL_ELEMENTS` elements of ``u``). A row keeps its
``N`` complex state as two real arrays (real and imaginary parts) of the row's task, and runs
the ``L`` loop inside with the mode loop innermost: ``8 N`` flops per step that LLVM vectorizes
along the modes (``fastmath`` reassociation for the output's sum over modes; no
``nnan``/``ninf``, so NaN and inf propagate inside their own row only). Float32 data
accumulates in float32 (the state is a decaying sum, its error grows like ``sqrt(L) eps``).

The VJP stores no states and runs nothing backwards over them. The adjoint state
``lam_t = conj(ab) lam_{t+1} + 2 conj(c) g_t`` is itself a scan: the forward kernel run on
``g`` reversed in time with the parameters ``(conj(ab), 2 conj(c), conj(bb) / 2, d)`` gives
``gu`` (reversed back) and, as its final state, ``lam_0`` (``gx0 = conj(ab) lam_0``). The
parameter sums ``sum_t lam_t conj(x_{t-1})`` and ``sum_t lam_t u_t`` are reordered into
forward sums of the sensitivities ``w_t = dx_t/dab = ab w_{t-1} + x_{t-1}`` and
``v_t = dx_t/dbb = ab v_{t-1} + u_t`` (x is holomorphic in ``ab`` and ``bb``):
``gab = 2 conj(c) sum_t g_t conj(w_t)``, ``gbb = 2 conj(c) sum_t g_t conj(v_t)``,
``gc = 2 sum_t g_t conj(x_t)``: one more forward pass (:func:`_sens`) with three complex
states per mode. Memory ``O(R N)`` besides the outputs and one reversed copy of ``g`` (never
``R N L``); the same algorithm as the CUDA launcher's.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from structlin._cpu._schedule import serial_when_small

__all__ = ["scan", "scan_vjp"]

_FM = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, parallel=True, fastmath=_FM)
def _scan(ab, bb, c, d, u, x0, y, xT):
    R, L = u.shape
    H, N = ab.shape
    for r in prange(R):
        h = r % H
        ar = np.empty(N, u.dtype)
        ai = np.empty(N, u.dtype)
        br = np.empty(N, u.dtype)
        bi = np.empty(N, u.dtype)
        cr = np.empty(N, u.dtype)
        ci = np.empty(N, u.dtype)
        xr = np.empty(N, u.dtype)
        xi = np.empty(N, u.dtype)
        for n in range(N):
            ar[n] = ab[h, n].real
            ai[n] = ab[h, n].imag
            br[n] = bb[h, n].real
            bi[n] = bb[h, n].imag
            cr[n] = c[h, n].real
            ci[n] = c[h, n].imag
            xr[n] = x0[r, n].real
            xi[n] = x0[r, n].imag
        dh = d[h]
        zero = np.zeros(1, u.dtype)[0]
        one = np.ones(1, u.dtype)[0]
        two = one + one
        for t in range(L):
            ut = u[r, t]
            acc = zero
            for n in range(N):
                pr = ar[n] * xr[n] - ai[n] * xi[n] + br[n] * ut
                pi = ar[n] * xi[n] + ai[n] * xr[n] + bi[n] * ut
                xr[n] = pr
                xi[n] = pi
                acc += cr[n] * pr - ci[n] * pi
            y[r, t] = two * acc + dh * ut
        for n in range(N):
            xT[r, n] = xr[n] + 1j * xi[n]


@njit(cache=True, parallel=True, fastmath=_FM)
def _sens(ab, bb, c, u, x0, g, gab, gbb, gc):
    R, L = u.shape
    H, N = ab.shape
    for r in prange(R):
        h = r % H
        ar = np.empty(N, u.dtype)
        ai = np.empty(N, u.dtype)
        br = np.empty(N, u.dtype)
        bi = np.empty(N, u.dtype)
        xr = np.empty(N, u.dtype)
        xi = np.empty(N, u.dtype)
        for n in range(N):
            ar[n] = ab[h, n].real
            ai[n] = ab[h, n].imag
            br[n] = bb[h, n].real
            bi[n] = bb[h, n].imag
            xr[n] = x0[r, n].real
            xi[n] = x0[r, n].imag
        wr = np.zeros(N, u.dtype)
        wi = np.zeros(N, u.dtype)
        vr = np.zeros(N, u.dtype)
        vi = np.zeros(N, u.dtype)
        sar = np.zeros(N, u.dtype)
        sai = np.zeros(N, u.dtype)
        sbr = np.zeros(N, u.dtype)
        sbi = np.zeros(N, u.dtype)
        scr = np.zeros(N, u.dtype)
        sci = np.zeros(N, u.dtype)
        # one short loop per pair of written arrays: LLVM vectorizes a loop along the modes
        # only while its runtime alias checks stay few (one fused loop writing all 12 arrays
        # ran scalar, 12x slower at N = 32)
        for t in range(L):
            ut = u[r, t]
            gt = g[r, t]
            for n in range(N):  # w_t = ab w_{t-1} + x_{t-1}
                pr = ar[n] * wr[n] - ai[n] * wi[n] + xr[n]
                pi = ar[n] * wi[n] + ai[n] * wr[n] + xi[n]
                wr[n] = pr
                wi[n] = pi
            for n in range(N):  # x_t = ab x_{t-1} + bb u_t
                pr = ar[n] * xr[n] - ai[n] * xi[n] + br[n] * ut
                pi = ar[n] * xi[n] + ai[n] * xr[n] + bi[n] * ut
                xr[n] = pr
                xi[n] = pi
            for n in range(N):  # v_t = ab v_{t-1} + u_t
                pr = ar[n] * vr[n] - ai[n] * vi[n] + ut
                pi = ar[n] * vi[n] + ai[n] * vr[n]
                vr[n] = pr
                vi[n] = pi
            for n in range(N):
                sar[n] += gt * wr[n]
                sai[n] -= gt * wi[n]
            for n in range(N):
                sbr[n] += gt * vr[n]
                sbi[n] -= gt * vi[n]
            for n in range(N):
                scr[n] += gt * xr[n]
                sci[n] -= gt * xi[n]
        for n in range(N):
            cr = c[h, n].real + c[h, n].real
            ci = -(c[h, n].imag + c[h, n].imag)
            gab[r, n] = (cr * sar[n] - ci * sai[n]) + 1j * (cr * sai[n] + ci * sar[n])
            gbb[r, n] = (cr * sbr[n] - ci * sbi[n]) + 1j * (cr * sbi[n] + ci * sbr[n])
            gc[r, n] = (scr[n] + scr[n]) + 1j * (sci[n] + sci[n])


@serial_when_small(4)
def scan(ab, bb, c, d, u, x0, y, xT):
    """Write the scan's output ``y`` and final state ``xT`` (see the module docstring)."""
    _scan(ab, bb, c, d, u, x0, y, xT)


@serial_when_small(4)
def scan_vjp(ab, bb, c, d, u, x0, g, gu, gab, gbb, gc, gd, gx0):
    """Write the scan's gradients, per row (see the module docstring)."""
    R = u.shape[0]
    H = ab.shape[0]
    # the adjoint recurrence is a scan: g reversed in time through the forward kernel
    g_rev = np.ascontiguousarray(g[:, ::-1])
    gu_rev = np.empty_like(g_rev)
    lam0 = np.empty_like(x0)
    _scan(np.ascontiguousarray(ab.conj()), np.ascontiguousarray(2 * c.conj()),
          np.ascontiguousarray(0.5 * bb.conj()), d, g_rev, np.zeros_like(x0), gu_rev, lam0)
    gu[...] = gu_rev[:, ::-1]
    gx0[...] = ab.conj()[np.arange(R) % H] * lam0
    gd[...] = (g * u).sum(axis=1)
    _sens(ab, bb, c, u, x0, g, gab, gbb, gc)
