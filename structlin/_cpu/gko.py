"""Numba kernel of GKO: Gaussian elimination with partial pivoting on Cauchy-like matrices.

Contract (shared with ``structlin.gpu.gko``); all arrays C-contiguous, floating arrays of
one dtype (float32, float64, complex64 or complex128) or its real dtype where said; ``s``
``(Bs, n)``, ``t`` ``(Bt, n)`` with ``Bs`` and ``Bt`` each 1 (nodes shared by every system)
or ``B``; ``G``, ``H`` ``(B, r, n)``; ``b`` ``(B, k, n)`` (the ``k`` right-hand sides of a
system along the middle axis); outputs ``x`` ``(B, k, n)``, ``sign`` ``(B,)``, ``logabs``
``(B,)`` of the real dtype and ``info`` ``(B,)`` int32::

    C[b, i, j] = sum_q G[b, q, i] H[b, q, j] / (s[b, i] - t[b, j])
    gko(s, t, G, H, b, x, sign, logabs, pivots, info):
        x[b, :, i]  solves  C[b] @ x[b, :, :].T = b[b, :, :].T
        sign[b] * exp(logabs[b]) = det C[b]
        pivots[b, j] = |pivot of step j|  (real dtype, (B, n); the diagonal of U)
        info[b] = 0, or j + 1 when the pivot column of elimination step j is exactly zero
                  (C[b] singular; then x[b] is NaN, sign[b] = 0, logabs[b] = -inf,
                  pivots[b, j:] = 0)

The inputs are never written. Row pivoting on the generators (Gohberg, Kailath and Olshevsky
1995): at step ``j`` the first column ``l`` of the Schur complement (``r`` multiply-adds and a
division per entry) gives the pivot (largest ``|Re| + |Im|``, LAPACK's choice; NaN entries are
never chosen), the pivot row is swapped into place (its node ``s``, its generator column and
its right-hand-side entries), the first row ``u`` is formed likewise and stored as row ``j``
of ``U`` (packed upper triangle, ``n (n + 1) / 2`` entries per system), and the generators and
right-hand sides are updated by rank-one corrections (the Schur complement of a Cauchy-like
matrix is Cauchy-like with the trailing nodes). Back substitution with ``U`` ends the solve.
``O((4 r + k) n^2 / 2)`` operations and ``O(r n + k n + n^2 / 2)`` memory per system; ``C``
is never formed. Complex data run on split real and imaginary arrays, and every inner loop
runs over a view starting at index 0 (contiguous, no reductions, no negative-index wraparound),
so LLVM vectorizes it (AVX2/AVX-512); the pivot search and the back substitution's dot
products stay scalar. Systems are independent: the batch is split over threads (serial below
:data:`structlin._cpu._schedule.SERIAL_ELEMENTS`; compiled serial kernels that release the GIL,
one per dtype, no ``parallel=True`` wrapper to compile), and a NaN stays in its own system.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from numba import njit

from structlin._cpu._schedule import threads_for

__all__ = ["gko"]


@njit(cache=True, nogil=True, error_model="numpy")
def _gko_real(s_all, t_all, g_all, h_all, b_all, x_all, sign_out, logabs_out, pivots, info_out,
              lo, hi):
    """Real systems ``lo .. hi-1`` of the batch (module docstring). Every inner loop runs over
    a view that starts at index 0 (no negative-index wraparound), so LLVM vectorizes it. One
    compiled function per dtype (the batch loop is not a separate wrapper, whose compilation
    would re-optimise the whole elimination)."""
    ms = 1 if s_all.shape[0] > 1 else 0
    mt = 1 if t_all.shape[0] > 1 else 0
    for sys_i in range(lo, hi):
        s0 = s_all[sys_i * ms]
        t = t_all[sys_i * mt]
        g0 = g_all[sys_i]
        h0 = h_all[sys_i]
        b0 = b_all[sys_i]
        x = x_all[sys_i]
        pv = pivots[sys_i]
        n = t.shape[0]
        r = g0.shape[0]
        k = b0.shape[0]
        s = s0.copy()
        g = g0.copy()
        h = h0.copy()
        bb = b0.copy()
        U = np.empty(n * (n + 1) // 2, dtype=t.dtype)
        lv = np.empty(n, dtype=t.dtype)
        uv = np.empty(n, dtype=t.dtype)
        failed = False
        one = t.dtype.type(1)
        sign = 1.0
        logabs = 0.0
        off = 0
        for j in range(n):
            w = n - j
            L = lv[j:]
            if r == 0:
                L[:] = 0
            # first column of the Schur complement: l_i = g_i . h_j / (s_i - t_j), i >= j
            for q in range(r):
                hq = h[q, j]
                gq = g[q, j:]
                if q == 0:
                    for i in range(w):
                        L[i] = gq[i] * hq
                else:
                    for i in range(w):
                        L[i] += gq[i] * hq
            tj = t[j]
            S = s[j:]
            for i in range(w):
                L[i] = L[i] / (S[i] - tj)
            p = 0
            best = -1.0
            for i in range(w):
                a = abs(L[i])
                if a > best:
                    best = a
                    p = i
            if best == 0.0:
                for q in range(k):
                    x[q, :] = np.nan
                pv[j:] = 0
                sign_out[sys_i] = 0.0
                logabs_out[sys_i] = -np.inf
                info_out[sys_i] = j + 1
                failed = True
                break
            p += j
            if p != j:
                sign = -sign
                s[j], s[p] = s[p], s[j]
                lv[j], lv[p] = lv[p], lv[j]
                for q in range(r):
                    g[q, j], g[q, p] = g[q, p], g[q, j]
                for q in range(k):
                    bb[q, j], bb[q, p] = bb[q, p], bb[q, j]
            piv = lv[j]
            sj = s[j]
            # first row of the Schur complement: u_m = g_j . h_m / (s_j - t_m), m > j
            w1 = w - 1
            Uv = uv[j + 1:]
            if r == 0:
                Uv[:] = 0
            for q in range(r):
                gq = g[q, j]
                hq = h[q, j + 1:]
                if q == 0:
                    for m in range(w1):
                        Uv[m] = gq * hq[m]
                else:
                    for m in range(w1):
                        Uv[m] += gq * hq[m]
            T1 = t[j + 1:]
            Urow = U[off + 1:off + w]
            ip = one / piv
            for m in range(w1):
                u = Uv[m] / (sj - T1[m])
                Urow[m] = u
                Uv[m] = u * ip
            U[off] = piv
            off += w
            if piv < 0:
                sign = -sign
            pv[j] = abs(piv)
            logabs += math.log(abs(piv))
            L1 = lv[j + 1:]
            for i in range(w1):
                L1[i] = L1[i] * ip
            for q in range(r):
                c = g[q, j]
                gq = g[q, j + 1:]
                for i in range(w1):
                    gq[i] -= L1[i] * c
                c = h[q, j]
                hq = h[q, j + 1:]
                for m in range(w1):
                    hq[m] -= Uv[m] * c
            for q in range(k):
                c = bb[q, j]
                bq = bb[q, j + 1:]
                for i in range(w1):
                    bq[i] -= L1[i] * c
        if failed:
            continue
        # back substitution U x = y, column by column (contiguous updates of the rows above are
        # not available in the row-packed U, so rows: a dot product per entry)
        for j in range(n - 1, -1, -1):
            w = n - j
            off -= w
            d = U[off]
            Urow = U[off + 1:off + w]
            for q in range(k):
                acc = bb[q, j]
                xq = x[q, j + 1:]
                for m in range(w - 1):
                    acc -= Urow[m] * xq[m]
                x[q, j] = acc / d
        sign_out[sys_i] = sign
        logabs_out[sys_i] = logabs
        info_out[sys_i] = 0


@njit(cache=True, nogil=True, error_model="numpy")
def _gko_complex(sr_all, si_all, tr_all, ti_all, gr_all, gi_all, hr_all, hi_all, br_all, bi_all,
                 xr_all, xi_all, sgr_out, sgi_out, logabs_out, pivots, info_out, lo, hi_):
    """Complex systems ``lo .. hi_-1`` of the batch on split real and imaginary parts (module
    docstring); one compiled function per dtype."""
    ms = 1 if sr_all.shape[0] > 1 else 0
    mt = 1 if tr_all.shape[0] > 1 else 0
    for sys_i in range(lo, hi_):
        a0 = sys_i * ms
        c0 = sys_i * mt
        s0r = sr_all[a0]
        s0i = si_all[a0]
        tr = tr_all[c0]
        ti = ti_all[c0]
        g0r = gr_all[sys_i]
        g0i = gi_all[sys_i]
        h0r = hr_all[sys_i]
        h0i = hi_all[sys_i]
        b0r = br_all[sys_i]
        b0i = bi_all[sys_i]
        xr = xr_all[sys_i]
        xi = xi_all[sys_i]
        pv = pivots[sys_i]
        n = tr.shape[0]
        r = g0r.shape[0]
        k = b0r.shape[0]
        dt = tr.dtype
        sr, si = s0r.copy(), s0i.copy()
        gr, gi = g0r.copy(), g0i.copy()
        hr, hi = h0r.copy(), h0i.copy()
        br, bi = b0r.copy(), b0i.copy()
        size = n * (n + 1) // 2
        Ur = np.empty(size, dtype=dt)
        Ui = np.empty(size, dtype=dt)
        lr = np.empty(n, dtype=dt)
        li = np.empty(n, dtype=dt)
        ur = np.empty(n, dtype=dt)
        ui = np.empty(n, dtype=dt)
        failed = False
        one = dt.type(1)
        sgr = 1.0
        sgi = 0.0
        logabs = 0.0
        off = 0
        for j in range(n):
            w = n - j
            Lr = lr[j:]
            Li = li[j:]
            if r == 0:
                Lr[:] = 0
                Li[:] = 0
            for q in range(r):
                ar = hr[q, j]
                ai = hi[q, j]
                Gr = gr[q, j:]
                Gi = gi[q, j:]
                if q == 0:
                    for i in range(w):
                        Lr[i] = Gr[i] * ar - Gi[i] * ai
                        Li[i] = Gr[i] * ai + Gi[i] * ar
                else:
                    for i in range(w):
                        Lr[i] += Gr[i] * ar - Gi[i] * ai
                        Li[i] += Gr[i] * ai + Gi[i] * ar
            tjr = tr[j]
            tji = ti[j]
            Sr = sr[j:]
            Si = si[j:]
            for i in range(w):
                dr = Sr[i] - tjr
                di = tji - Si[i]  # conj(s_i - t_j)
                inv = one / (dr * dr + di * di)
                a = Lr[i]
                c = Li[i]
                Lr[i] = (a * dr - c * di) * inv
                Li[i] = (a * di + c * dr) * inv
            p = 0
            best = -1.0
            for i in range(w):
                a = abs(Lr[i]) + abs(Li[i])
                if a > best:
                    best = a
                    p = i
            if best == 0.0:
                for q in range(k):
                    xr[q, :] = np.nan
                    xi[q, :] = np.nan
                pv[j:] = 0
                sgr_out[sys_i] = 0.0
                sgi_out[sys_i] = 0.0
                logabs_out[sys_i] = -np.inf
                info_out[sys_i] = j + 1
                failed = True
                break
            p += j
            if p != j:
                sgr = -sgr
                sgi = -sgi
                sr[j], sr[p] = sr[p], sr[j]
                si[j], si[p] = si[p], si[j]
                lr[j], lr[p] = lr[p], lr[j]
                li[j], li[p] = li[p], li[j]
                for q in range(r):
                    gr[q, j], gr[q, p] = gr[q, p], gr[q, j]
                    gi[q, j], gi[q, p] = gi[q, p], gi[q, j]
                for q in range(k):
                    br[q, j], br[q, p] = br[q, p], br[q, j]
                    bi[q, j], bi[q, p] = bi[q, p], bi[q, j]
            pr = lr[j]
            pi = li[j]
            sjr = sr[j]
            sji = si[j]
            w1 = w - 1
            Vr = ur[j + 1:]
            Vi = ui[j + 1:]
            if r == 0:
                Vr[:] = 0
                Vi[:] = 0
            for q in range(r):
                ar = gr[q, j]
                ai = gi[q, j]
                Hr = hr[q, j + 1:]
                Hi = hi[q, j + 1:]
                if q == 0:
                    for m in range(w1):
                        Vr[m] = Hr[m] * ar - Hi[m] * ai
                        Vi[m] = Hr[m] * ai + Hi[m] * ar
                else:
                    for m in range(w1):
                        Vr[m] += Hr[m] * ar - Hi[m] * ai
                        Vi[m] += Hr[m] * ai + Hi[m] * ar
            inv = one / (pr * pr + pi * pi)
            ipr = pr * inv
            ipi = -pi * inv
            Tr = tr[j + 1:]
            Ti = ti[j + 1:]
            URr = Ur[off + 1:off + w]
            URi = Ui[off + 1:off + w]
            for m in range(w1):
                dr = sjr - Tr[m]
                di = Ti[m] - sji
                iv = one / (dr * dr + di * di)
                a = Vr[m]
                c = Vi[m]
                er = (a * dr - c * di) * iv
                ei = (a * di + c * dr) * iv
                URr[m] = er
                URi[m] = ei
                Vr[m] = er * ipr - ei * ipi
                Vi[m] = er * ipi + ei * ipr
            Ur[off] = pr
            Ui[off] = pi
            off += w
            mag = math.hypot(pr, pi)
            pv[j] = mag
            logabs += math.log(mag)
            a = (sgr * pr - sgi * pi) / mag
            sgi = (sgr * pi + sgi * pr) / mag
            sgr = a
            Lr = lr[j + 1:]
            Li = li[j + 1:]
            for i in range(w1):
                a = Lr[i]
                c = Li[i]
                Lr[i] = a * ipr - c * ipi
                Li[i] = a * ipi + c * ipr
            for q in range(r):
                cr = gr[q, j]
                ci = gi[q, j]
                Gr = gr[q, j + 1:]
                Gi = gi[q, j + 1:]
                for i in range(w1):
                    Gr[i] -= Lr[i] * cr - Li[i] * ci
                    Gi[i] -= Lr[i] * ci + Li[i] * cr
                cr = hr[q, j]
                ci = hi[q, j]
                Hr = hr[q, j + 1:]
                Hi = hi[q, j + 1:]
                for m in range(w1):
                    Hr[m] -= Vr[m] * cr - Vi[m] * ci
                    Hi[m] -= Vr[m] * ci + Vi[m] * cr
            for q in range(k):
                cr = br[q, j]
                ci = bi[q, j]
                Br = br[q, j + 1:]
                Bi = bi[q, j + 1:]
                for i in range(w1):
                    Br[i] -= Lr[i] * cr - Li[i] * ci
                    Bi[i] -= Lr[i] * ci + Li[i] * cr
        if failed:
            continue
        for j in range(n - 1, -1, -1):
            w = n - j
            off -= w
            inv = one / (Ur[off] * Ur[off] + Ui[off] * Ui[off])
            dr = Ur[off] * inv
            di = -Ui[off] * inv
            URr = Ur[off + 1:off + w]
            URi = Ui[off + 1:off + w]
            for q in range(k):
                ar = br[q, j]
                ai = bi[q, j]
                Xr = xr[q, j + 1:]
                Xi = xi[q, j + 1:]
                for m in range(w - 1):
                    ar -= URr[m] * Xr[m] - URi[m] * Xi[m]
                    ai -= URr[m] * Xi[m] + URi[m] * Xr[m]
                xr[q, j] = ar * dr - ai * di
                xi[q, j] = ar * di + ai * dr
        sgr_out[sys_i] = sgr
        sgi_out[sys_i] = sgi
        logabs_out[sys_i] = logabs
        info_out[sys_i] = 0


def _run(fn, args, nb, threads):
    """``fn(*args, lo, hi)`` over the batch ``0 .. nb-1``: on the calling thread, or split in
    ``threads`` contiguous chunks, the first on the calling thread and the others on threads
    started for this call and joined before it returns (the kernels release the GIL). Plain
    threads instead of a ``parallel=True`` wrapper: the parfor lowering of a wrapper cost more
    compile time than the elimination kernel itself (systems are coarse, independent tasks).
    No thread outlives the call: a persistent pool would count as "another Python thread" for
    the rest of the process and stop :func:`structlin._cpu._blas_pool.park_blas_threads`."""
    threads = min(threads, nb)
    if threads <= 1:
        fn(*args, 0, nb)
        return
    bounds = [nb * i // threads for i in range(threads + 1)]
    errors: list = []

    def chunk(lo, hi):
        try:
            fn(*args, lo, hi)
        except BaseException as e:  # re-raised on the calling thread
            errors.append(e)

    workers = [threading.Thread(target=chunk, args=(bounds[i], bounds[i + 1]), daemon=True)
               for i in range(1, threads) if bounds[i + 1] > bounds[i]]
    for w in workers:
        w.start()
    chunk(bounds[0], bounds[1])
    for w in workers:
        w.join()
    if errors:
        raise errors[0]


def _writeable(a):
    return a if a.flags.writeable and a.flags.c_contiguous else np.ascontiguousarray(a).copy()


def gko(s, t, G, H, b, x, sign, logabs, pivots, info):
    """Solve the Cauchy-like systems ``C x = b`` and write ``x``, ``sign``, ``logabs``,
    ``pivots`` and ``info`` (module docstring)."""
    nb, r, n = G.shape
    k = b.shape[1]
    if nb == 0:
        return
    if n == 0:
        sign[...] = 1
        logabs[...] = 0
        info[...] = 0
        return
    with threads_for(nb * n * n * (r + k + 1) if nb > 1 else 0) as threads:
        if np.iscomplexobj(G):
            real = G.real.dtype

            def parts(a):
                return (np.ascontiguousarray(a.real, dtype=real),
                        np.ascontiguousarray(a.imag, dtype=real))

            xr = np.empty(x.shape, dtype=real)
            xi = np.empty(x.shape, dtype=real)
            sgr = np.empty(nb, dtype=np.float64)
            sgi = np.empty(nb, dtype=np.float64)
            la = np.empty(nb, dtype=np.float64)
            inf = np.empty(nb, dtype=np.int32)
            _run(_gko_complex, (*parts(s), *parts(t), *parts(G), *parts(H), *parts(b), xr,
                                xi, sgr, sgi, la, pivots, inf), nb, threads)
            x.real = xr
            x.imag = xi
            sign[...] = sgr + 1j * sgi
        else:
            sg = np.empty(nb, dtype=np.float64)
            la = np.empty(nb, dtype=np.float64)
            inf = np.empty(nb, dtype=np.int32)
            s, t, G, H, b = (_writeable(a) for a in (s, t, G, H, b))
            _run(_gko_real, (s, t, G, H, b, x, sg, la, pivots, inf), nb, threads)
            sign[...] = sg
        logabs[...] = la
        info[...] = inf
