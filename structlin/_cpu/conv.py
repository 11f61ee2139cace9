"""CPU engine of the long convolution: scipy.fft on cache-sized row chunks + fused Numba passes.

Contract (shared with ``structlin.gpu.conv``, declared in ``structlin._families.conv``; the
family modules call nothing else)::

    fft_size(L, Lk) -> nfft >= L + Lk - 1
    kernel_spectrum(k, nfft, *, lazy=False) -> spec       # k: (H, Lk), the compute dtype
    forward(u, spec, nfft, Lk, offset, D, pregate, postgate, out, *, precision) -> out
    backward(u, spec, nfft, Lk, offset, D, pregate, postgate, grad, *, precision)
        -> (grad_u, grad_k, grad_D, grad_pregate, grad_postgate)

``u``, the gates, ``grad`` and ``out`` are C-contiguous ``(B, H, L)``; ``D`` is ``(H,)``;
absent arguments are ``None``. With ``v = pregate * u``::

    out[b, h, t] = postgate[b, h, t] * (sum_j k[h, j] v[b, h, t + offset - j] + D[h] u[b, h, t])

where terms with ``t + offset - j`` outside ``[0, L)`` are zero.

FFT path (otherwise): the ``B * H`` rows are cut into chunks of about
:data:`CHUNK_BYTES` of spectrum. For a chunk, one Numba pass writes ``pregate * u`` zero-padded
to ``nfft`` (skipped without a pregate: scipy pads), ``scipy.fft.rfft`` (``fft`` for complex
data) transforms it, one Numba pass multiplies by the kernel's spectrum in place, the inverse
transform runs in place, and one Numba pass applies the offset/truncation, the ``D`` skip and
the post-gate while writing straight into ``out``. So ``u`` is read once and ``out`` written
once beyond the transforms, and the scratch memory is a few chunks, independent of ``B``.
Chunks are spread over a pool of ``numba.get_num_threads()`` threads (scipy.fft and the
``nogil`` Numba kernels release the GIL): the pool is this engine's parallelism (Numba's
``prange`` cannot call scipy.fft), not a small-input rule. Which calls run on the calling
thread alone is decided by the one rule of every CPU kernel,
:func:`structlin._cpu._schedule.serial_when_small` on ``forward``/``backward``: below
:data:`~structlin._cpu._schedule.SERIAL_ELEMENTS` elements of ``u`` Numba's thread count is 1
for the call, and every thread count below (the pool's, scipy's ``workers``, the direct
path's ``prange``) follows from ``numba.get_num_threads()``.

The kernel's whole spectrum ``(H, nfft // 2 + 1)`` is computed for a call (and kept by a
plan) when it is at most :data:`KERNEL_SPECTRUM_SHARE` of ``u``'s bytes; otherwise (one batch
element with long kernels, where it alone would be twice ``u``) each chunk transforms the
kernel rows of its channels. The scratch of all threads is kept within ``u``'s size (or
:data:`SCRATCH_MIN_BYTES`): rows per chunk are cut down to fit, and rows whose spectra do not
fit even one per thread go through :func:`_forward_by_classes` instead, which transforms a
row's spectrum one residue class of frequencies at a time (peak: the output plus at most
``u``'s size, against 7x ``u`` for whole spectra of a single row). The backward still holds
whole spectra per chunk.

Direct path (``min(L, Lk) <= DIRECT_TAPS``, half that for complex data): a Numba loop over the
at most ``min(L, Lk)`` taps per output (one contiguous SIMD multiply-add per tap), parallel over
rows; below that size it beats the transforms.
"""

from __future__ import annotations

import itertools
import threading

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from structlin._cpu import fft as _eng
from structlin._cpu._schedule import serial_when_small

__all__ = ["backward", "fft_size", "forward", "kernel_spectrum"]

#: direct (tap loop) convolution when an output involves at most this many taps (real data;
#: half as many for complex data, whose multiply-adds cost four times more). Measured on a
#: 2-core AMD EPYC: float32, 32 channels, L = 1024 and 16384, the two paths cross near 100 taps.
DIRECT_TAPS = 64
#: bytes of complex spectrum per row chunk: with the padded input and the inverse transform's
#: output, a chunk's working set (about 2.5x this) stays in a core's L2 cache
CHUNK_BYTES = 256 * 1024
#: but at least this many rows per chunk (while a chunk stays under MAX_CHUNK_BYTES): scipy's
#: pocketfft runs several transforms at once in SIMD lanes (8 float32 rows with AVX), and
#: falls back to one row at a time below that — measured 2x slower with 1-2 rows per call
MIN_ROWS = 8
MAX_CHUNK_BYTES = 4 * 1024 * 1024
#: a call computes (and keeps for its rows) the kernel's whole spectrum only if it is at most
#: this share of ``u``'s bytes; beyond, each chunk transforms the kernel rows it needs (a
#: single batch element: every kernel is transformed once either way)
KERNEL_SPECTRUM_SHARE = 0.5
#: transform lengths above this are multiples of MAX_CLASSES (5-smooth cofactor)
LONG_ROW_MIN = 1 << 16
#: frequency classes a long row is split into: a power of two, at most MAX_CLASSES, at least
#: MIN_CLASSES: the two real classes (0 and R/2) cost as much as complex ones and the
#: ``R/2 + 1`` classes of a real row go two at a time, so fewer classes waste more
MAX_CLASSES = 64
MIN_CLASSES = 8
#: scratch bytes the chunk path may use in all threads however small ``u`` is; above both this
#: and ``u``'s size, rows go through the frequency-class path instead
SCRATCH_MIN_BYTES = 8 * 1024 * 1024
#: complex rows of scratch the FFT engine holds per thread for one transform (its tile: four
#: real planes of the row's length)
ENGINE_TILE_ROWS = 2
#: elements per block of the fold / unfold passes of the class path (twiddles per block)
CLASS_BLOCK = 2048

_EMPTY = {}


def fft_size(L: int, Lk: int) -> int:
    """The transform length: the smallest 5-smooth ``n >= L + Lk - 1``; above
    :data:`LONG_ROW_MIN` a multiple of :data:`MAX_CLASSES` (so that a long row can be split
    into that many frequency classes, see :func:`_forward_by_classes`)."""
    n0 = int(L) + int(Lk) - 1
    if n0 <= LONG_ROW_MIN:
        return _eng.next_smooth(n0, even=True)
    return MAX_CLASSES * _eng.next_smooth(-(-n0 // MAX_CLASSES))


class Spectrum:
    """The kernel ``k`` (H, Lk) and, for the FFT path, its spectrum of length ``nfft``.

    ``freq()`` is ``rfft(k, nfft)`` for real ``k`` (``fft`` for complex), shape ``(H, nf)``,
    computed on first use and kept. Unless ``lazy``, it is computed at once when the FFT path
    may be used (``Lk > DIRECT_TAPS // 2``): a plan holds it. A lazy spectrum (one call's) is
    only computed when it is small next to the call's input (:data:`KERNEL_SPECTRUM_SHARE`);
    otherwise the kernel rows are transformed along with the data they meet.
    """

    def __init__(self, k: np.ndarray, nfft: int, lazy: bool = False):
        self.k = k
        self.nfft = int(nfft)
        self._freq = None
        self._lock = threading.Lock()
        if not lazy and k.shape[1] > DIRECT_TAPS // 2:
            self.freq()

    @property
    def ready(self) -> bool:
        return self._freq is not None

    def nbytes(self) -> int:
        """Bytes of the whole spectrum ``freq()``."""
        nf = self.nfft // 2 + 1 if self.k.dtype.kind == "f" else self.nfft
        return self.k.shape[0] * nf * np.dtype(_complex_of(self.k.dtype)).itemsize

    def freq(self) -> np.ndarray:
        with self._lock:
            if self._freq is None:
                self._freq = _eng.rows(self.k, self.nfft, False)
            return self._freq


def _complex_of(dtype) -> np.dtype:
    return np.result_type(dtype, np.complex64)


def kernel_spectrum(k: np.ndarray, nfft: int, *, lazy: bool = False) -> Spectrum:
    """Return the (opaque) spectrum of the C-contiguous kernel ``k`` of shape ``(H, Lk)``.

    ``lazy`` (a single call's spectrum, not a plan's): transform only if and when it pays.
    """
    return Spectrum(np.ascontiguousarray(k), nfft, lazy)


def _empty(dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype not in _EMPTY:
        _EMPTY[dtype] = np.zeros((1, 1, 1), dtype=dtype)
    return _EMPTY[dtype]


def _or_empty(a, dtype):
    return _empty(dtype) if a is None else a


def _or_empty1(a, dtype):
    return np.zeros(1, dtype=dtype) if a is None else a


# ---- direct path ------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _taps_into(acc, k, v, off):
    """``acc[t] += sum_j k[j] v[t + off - j]`` (in range), one contiguous SIMD loop per tap."""
    L = v.shape[0]
    for j in range(k.shape[0]):
        kj = k[j]
        d = off - j
        lo = max(0, -d)
        hi = min(L, L - d)
        if hi > lo:
            # views indexed from 0: no wrap-around checks, so LLVM vectorizes the loop
            a = acc[lo:hi]
            w = v[lo + d:hi + d]
            for i in range(a.shape[0]):
                a[i] += kj * w[i]


@njit(cache=True, inline="always")
def _corr_into(acc, k, g, off):
    """``acc[s] += sum_j conj(k[j]) g[s + j - off]`` (in range): the adjoint of _taps_into."""
    L = g.shape[0]
    for j in range(k.shape[0]):
        kj = np.conj(k[j])
        d = j - off
        lo = max(0, -d)
        hi = min(L, L - d)
        if hi > lo:
            a = acc[lo:hi]
            w = g[lo + d:hi + d]
            for i in range(a.shape[0]):
                a[i] += kj * w[i]


@njit(cache=True, parallel=True)
def _direct_forward(u, k, off, D, has_D, pre, has_pre, post, has_post, out, nch):
    B, H, L = u.shape
    nrows = B * H
    for c in prange(nch):
        v = np.empty(L, dtype=u.dtype)
        acc = np.empty(L, dtype=u.dtype)
        for r in range(c * nrows // nch, (c + 1) * nrows // nch):
            b = r // H
            h = r - b * H
            ur = u[b, h]
            if has_pre:
                for s in range(L):
                    v[s] = pre[b, h, s] * ur[s]
            else:
                v[:] = ur
            if has_D:
                for t in range(L):
                    acc[t] = D[h] * ur[t]
            else:
                acc[:] = 0
            _taps_into(acc, k[h], v, off)
            if has_post:
                for t in range(L):
                    out[b, h, t] = acc[t] * post[b, h, t]
            else:
                out[b, h] = acc


@njit(cache=True, parallel=True)
def _direct_backward(u, k, off, D, has_D, pre, has_pre, post, has_post, grad,
                     gu, gk, gD, gpre, gpost):
    """Parallel over channels so that the sums over the batch for ``gk``/``gD`` need no lock."""
    B, H, L = u.shape
    Lk = k.shape[1]
    for h in prange(H):
        v = np.empty(L, dtype=u.dtype)
        gz = np.empty(L, dtype=u.dtype)
        acc = np.empty(L, dtype=u.dtype)
        kr = k[h]
        for b in range(B):
            ur = u[b, h]
            if has_pre:
                for s in range(L):
                    v[s] = pre[b, h, s] * ur[s]
            else:
                v[:] = ur
            if has_post:
                if has_D:
                    for t in range(L):
                        acc[t] = D[h] * ur[t]
                else:
                    acc[:] = 0
                _taps_into(acc, kr, v, off)
                for t in range(L):
                    gpost[b, h, t] = grad[b, h, t] * np.conj(acc[t])
                    gz[t] = grad[b, h, t] * np.conj(post[b, h, t])
            else:
                gz[:] = grad[b, h]
            acc[:] = 0
            _corr_into(acc, kr, gz, off)
            for s in range(L):
                gv = acc[s]
                if has_pre:
                    gpre[b, h, s] = gv * np.conj(ur[s])
                    gv = gv * np.conj(pre[b, h, s])
                if has_D:
                    gv += np.conj(D[h]) * gz[s]
                gu[b, h, s] = gv
            for j in range(Lk):
                d = off - j
                lo = max(0, -d)
                hi = min(L, L - d)
                if hi > lo:
                    x = gz[lo:hi]
                    w = v[lo + d:hi + d]
                    a = ur[0] * 0
                    for i in range(x.shape[0]):
                        a += x[i] * np.conj(w[i])
                    gk[h, j] += a
            if has_D:
                a = ur[0] * 0
                for t in range(L):
                    a += gz[t] * np.conj(ur[t])
                gD[h] += a


# ---- FFT path: fused passes on a chunk of rows (r0 .. r0 + n) of the flattened (B*H, L) --------


@njit(cache=True, nogil=True)
def _pad_product(a, g, has_g, conj_g, r0, buf):
    """``buf[i] = [a[r0+i] * (conj?)(g[r0+i]), 0, ..., 0]``: the zero-padded transform input."""
    n, nfft = buf.shape
    L = a.shape[1]
    for i in range(n):
        ar = a[r0 + i]
        br = buf[i]
        if has_g:
            gr = g[r0 + i]
            if conj_g:
                for t in range(L):
                    br[t] = ar[t] * np.conj(gr[t])
            else:
                for t in range(L):
                    br[t] = ar[t] * gr[t]
        else:
            for t in range(L):
                br[t] = ar[t]
        for t in range(L, nfft):
            br[t] = 0


@njit(cache=True, nogil=True)
def _times_spectrum(F, K, r0, H, conj_k):
    n, nf = F.shape
    for i in range(n):
        Fr = F[i]
        Kr = K[(r0 + i) % H]
        if conj_k:
            for f in range(nf):
                Fr[f] *= np.conj(Kr[f])
        else:
            for f in range(nf):
                Fr[f] *= Kr[f]


@njit(cache=True, nogil=True)
def _finish_forward(c, off, u, D, has_D, post, has_post, r0, H, out):
    """``out[r] = post[r] * (c[r, off:off+L] + D[h] u[r])`` (real part for real output)."""
    n = c.shape[0]
    L = u.shape[1]
    for i in range(n):
        r = r0 + i
        h = r % H
        cr = c[i]
        ur = u[r]
        orow = out[r]
        for t in range(L):
            z = cr[t + off]
            if has_D:
                z += D[h] * ur[t]
            if has_post:
                z *= post[r, t]
            orow[t] = z


@njit(cache=True, nogil=True)
def _finish_postgate_grad(c, off, u, D, has_D, grad, r0, H, gpost):
    """``gpost[r] = grad[r] * conj(z[r])``, ``z = c[r, off:off+L] + D[h] u[r]``."""
    n = c.shape[0]
    L = u.shape[1]
    for i in range(n):
        r = r0 + i
        h = r % H
        for t in range(L):
            z = c[i, t + off]
            if has_D:
                z += D[h] * u[r, t]
            gpost[r, t] = grad[r, t] * np.conj(z)


@njit(cache=True, nogil=True)
def _accumulate_cross(G, V, r0, H, acc):
    """``acc[h] += G[i] * conj(V[i])``: the batch-summed spectrum of the kernel gradient."""
    n, nf = G.shape
    for i in range(n):
        a = acc[(r0 + i) % H]
        Gr = G[i]
        Vr = V[i]
        for f in range(nf):
            a[f] += Gr[f] * np.conj(Vr[f])


@njit(cache=True, nogil=True)
def _finish_backward(cg, off, gzbuf, u, D, has_D, pre, has_pre, r0, H, gu, gpre, accD):
    """From the correlation ``cg`` of ``gz`` with ``conj(k)``: the gradients of u, pregate, D."""
    n, nfft = cg.shape
    L = u.shape[1]
    for i in range(n):
        r = r0 + i
        h = r % H
        ur = u[r]
        dsum = ur[0] * 0
        for s in range(L):
            m = s - off
            if m < 0:
                m += nfft
            gv = cg[i, m]
            g = gzbuf[i, s]
            if has_pre:
                gpre[r, s] = gv * np.conj(ur[s])
                gv = gv * np.conj(pre[r, s])
            if has_D:
                gv += np.conj(D[h]) * g
                dsum += g * np.conj(ur[s])
            gu[r, s] = gv
        if has_D:
            accD[h] += dsum


# ---- frequency-class path: a long row, its spectrum a few residue classes at a time ----------


def _as_out(z, like):  # pragma: no cover - replaced by the overload in compiled code
    return z


@overload(_as_out)
def _as_out_overload(z, like):
    if isinstance(like, types.Complex):
        return lambda z, like: z
    return lambda z, like: z.real


def _class_steps(rs, n: int, sign: float) -> np.ndarray:
    """``steps[c, i] = exp(sign 2 pi i rs[c] i / n)``, ``i < CLASS_BLOCK`` (complex128)."""
    i = np.arange(CLASS_BLOCK, dtype=np.int64)
    return np.exp(sign * 2j * np.pi * ((np.asarray(rs)[:, None] * i) % n) / n)


@njit(cache=True, nogil=True)
def _fold_classes(x, g, has_g, rs, R, n, steps, buf):
    """``buf[c, m] = w^(r m) sum_q (g x)[m + q M] w_R^(q r)``, ``r = rs[c]``, ``M = n / R``.

    ``w = exp(-2 pi i / n)``: the first radix-``R`` decimation-in-frequency stage restricted to
    the frequencies ``r + R f``, so that ``fft(buf[c])[f] = fft(x, n)[r + R f]``. Sums are in
    the buffer's precision; twiddles are computed in double and rounded once.
    """
    G, M = buf.shape
    Lx = x.shape[0]
    nb = (M + CLASS_BLOCK - 1) // CLASS_BLOCK
    one = buf[0, 0] * 0 + 1
    for task in range(G * nb):
        c = task // nb
        m0 = (task - c * nb) * CLASS_BLOCK
        m1 = min(M, m0 + CLASS_BLOCK)
        r = rs[c]
        o = buf[c, m0:m1]
        o[:] = 0
        q = 0
        while q * M + m0 < Lx:
            a = -2.0 * np.pi * ((q * r) % R) / R
            wq = one * complex(np.cos(a), np.sin(a))
            j0 = q * M + m0
            j1 = min(Lx, q * M + m1)
            xs = x[j0:j1]
            oq = o[:j1 - j0]
            if has_g:
                gs = g[j0:j1]
                for i in range(oq.shape[0]):
                    oq[i] += (gs[i] * xs[i]) * wq
            else:
                for i in range(oq.shape[0]):
                    oq[i] += xs[i] * wq
            q += 1
        a = -2.0 * np.pi * ((r * m0) % n) / n
        base = complex(np.cos(a), np.sin(a))
        st = steps[c]
        tw = np.empty(m1 - m0, dtype=buf.dtype)
        for i in range(tw.shape[0]):
            tw[i] = base * st[i]
        for i in range(tw.shape[0]):
            o[i] *= tw[i]


@njit(cache=True, nogil=True)
def _times_class_spectrum(F, K, rs, R, hermitian):
    """``F[c, f] *= K[r + R f]`` with ``r = rs[c]``; ``K`` is ``rfft`` (``hermitian``: the
    upper half is ``conj(K[n - j])``) or ``fft`` of the kernel row."""
    G, M = F.shape
    n = R * M
    nb = (M + CLASS_BLOCK - 1) // CLASS_BLOCK
    for task in range(G * nb):
        c = task // nb
        f0 = (task - c * nb) * CLASS_BLOCK
        r = rs[c]
        for f in range(f0, min(M, f0 + CLASS_BLOCK)):
            j = r + R * f
            if hermitian and j > n // 2:
                F[c, f] *= np.conj(K[n - j])
            else:
                F[c, f] *= K[j]


@njit(cache=True, nogil=True)
def _unfold_classes(cb, rs, weights, R, steps, off, first, last, u, D, has_D, post, has_post,
                    out):
    """Add the classes' share of ``y[t] = z[t + off]`` into ``out`` (a row of length ``L``).

    ``z[m + q M] = sum_c weights[c] w^(-r m) w_R^(-r q) cb[c, m]`` (the real part for real
    output: a real row's classes ``r`` and ``R - r`` are conjugate, hence ``weights`` 2/R for
    ``0 < r < R/2``). ``first`` writes instead of adding; ``last`` adds ``D u`` and applies the
    post-gate.
    """
    G, M = cb.shape
    n = R * M
    L = out.shape[0]
    nb = (M + CLASS_BLOCK - 1) // CLASS_BLOCK
    one = cb[0, 0] * 0 + 1
    for b in range(nb):
        m0 = b * CLASS_BLOCK
        m1 = min(M, m0 + CLASS_BLOCK)
        e = np.empty((G, m1 - m0), dtype=cb.dtype)
        for c in range(G):
            a = 2.0 * np.pi * ((rs[c] * m0) % n) / n
            base = complex(np.cos(a), np.sin(a)) * weights[c]
            st = steps[c]
            ec = e[c]
            for i in range(m1 - m0):
                ec[i] = base * st[i]
            cc = cb[c, m0:m1]
            for i in range(m1 - m0):
                ec[i] *= cc[i]
        wq = np.empty(G, dtype=cb.dtype)
        q = max(0, (off - m1 + M) // M)
        while q * M + m0 - off < L:
            t0 = q * M + m0 - off
            lo = max(0, -t0)
            hi = min(m1 - m0, L - t0)
            for c in range(G):
                a = 2.0 * np.pi * ((q * rs[c]) % R) / R
                wq[c] = one * complex(np.cos(a), np.sin(a))
            o = out[t0 + lo:t0 + hi]
            acc = e[0, lo:hi] * wq[0]
            for c in range(1, G):
                ec = e[c, lo:hi]
                for i in range(hi - lo):
                    acc[i] += wq[c] * ec[i]
            if not first:
                for i in range(hi - lo):
                    acc[i] += o[i]
            if last and has_D:
                us = u[t0 + lo:t0 + hi]
                for i in range(hi - lo):
                    acc[i] += D[0] * us[i]
            if last and has_post:
                ps = post[t0 + lo:t0 + hi]
                for i in range(hi - lo):
                    acc[i] *= ps[i]
            for i in range(hi - lo):
                o[i] = _as_out(acc[i], o[i])
            q += 1


def _class_count(nfft: int, M_bytes_budget: int, per_class: int) -> int:
    """The fewest classes ``R`` (a power of two dividing ``nfft``, at most MAX_CLASSES) whose
    buffers (``per_class`` of ``nfft / R`` complex each) fit the budget; 0 if ``nfft`` is odd."""
    R = 2
    while nfft % R == 0 and R <= MAX_CLASSES:
        if R < MIN_CLASSES and nfft % (2 * R) == 0:
            R *= 2
            continue
        if per_class * (nfft // R) <= M_bytes_budget:
            return R
        R *= 2
    return R // 2 if R > 2 else 0


def _forward_by_classes(u2, k, K, pre2, has_pre, post2, has_post, D, has_D, H, nfft, R,
                        offset, out2):
    """Forward of whole rows, the spectrum one frequency class ``r + R f`` at a time.

    Decimation in frequency by ``R``: for a class ``r``, a pass folds the row into ``M = n / R``
    twisted values (:func:`_fold_classes`) whose length-``M`` FFT is the row's spectrum at the
    frequencies ``r + R f``; the kernel's class comes the same way (or is gathered from its
    whole spectrum ``K`` when a plan holds it); after the product and the inverse FFT, a pass
    adds the class's share of the output (:func:`_unfold_classes`). Each thread works on its
    own (row, class) items with one or two buffers of ``M`` complex values, instead of whole
    spectra; the transform work is that of the whole FFT, plus per class one read of the row
    and the kernel and one read-modify-write of the output. The additions into the output are
    done in the order of the items (a ticket), so the result does not depend on the threads.
    """
    nrows = u2.shape[0]
    real = u2.dtype.kind == "f"
    cdt = _complex_of(u2.dtype)
    M = nfft // R
    classes = np.arange(R // 2 + 1 if real else R, dtype=np.int64)
    nc = classes.size
    per_class = []
    for r in classes:
        rs = np.array([r])
        w = np.array([2.0 / R if real and 0 < r < R // 2 else 1.0 / R])
        per_class.append((rs, w, _class_steps(rs, nfft, -1.0), _class_steps(rs, nfft, 1.0)))
    items = [(row, i) for row in range(nrows) for i in range(nc)]
    nthreads = max(1, min(numba.get_num_threads(), len(items)))
    bufs = [(np.empty((1, M), dtype=cdt), None if K is not None else np.empty((1, M), dtype=cdt))
            for _ in range(nthreads)]
    turn = [0]  # the next item to add into the output; -1 once an item has failed
    cond = threading.Condition()

    def transformed(worker, row, i):
        h = row % H
        rs, _, fsteps, _ = per_class[i]
        bx, bk = bufs[worker]
        _fold_classes(u2[row], pre2[row] if has_pre else u2[row], has_pre, rs, R, nfft,
                      fsteps, bx)
        F = _eng.rows(bx, M, False, serial=True, overwrite=True)
        if K is None:
            _fold_classes(k[h], k[h], False, rs, R, nfft, fsteps, bk)
            F *= _eng.rows(bk, M, False, serial=True, overwrite=True)
        else:
            _times_class_spectrum(F, K[h], rs, R, real)
        return _inverse_complex(F, M, workers=1, overwrite_x=True)

    def work(worker, j, _):
        row, i = items[j]
        h = row % H
        rs, w, _, isteps = per_class[i]
        ok = False
        try:
            c = transformed(worker, row, i)
            with cond:
                cond.wait_for(lambda: turn[0] in (j, -1))
                if turn[0] == -1:
                    return
            _unfold_classes(c, rs, w, R, isteps, offset, i == 0, i == nc - 1, u2[row],
                            D[h:h + 1], has_D, post2[row] if has_post else u2[row], has_post,
                            out2[row])
            ok = True
        finally:
            with cond:
                turn[0] = turn[0] + 1 if ok else -1
                cond.notify_all()

    _run_chunks(nthreads, [(j, j + 1) for j in range(len(items))], work)
    return out2


# ---- fused real path: one Numba pass per row around the engine's four-step transforms -------


@njit(cache=True, fastmath={"contract"}, nogil=True)
def _fused_rows(u2, pre2, has_pre, Kf, has_K, kmat, H, r0, r1, nfft, offset, D, has_D, post2,
                has_post, out2, P, rtwr, rtwi):
    """Rows ``r0 .. r1`` of the forward, each in one tile that stays in cache: the padded row
    (gated) is transformed as ``nfft / 2`` complex pairs, split into its spectrum, multiplied by
    the kernel's (``Kf``, or transformed here from ``kmat`` when the call holds no spectrum),
    merged back into half-length pairs, transformed back, and written with the offset, the
    ``D`` skip and the post-gate: the row is read once and written once."""
    h = nfft // 2
    L = u2.shape[1]
    Lk = kmat.shape[1]
    ar, ai, br, bi = _eng._scratch(h, rtwr)
    X = np.empty(2 * (h + 1), dtype=rtwr.dtype)
    Y = np.empty(2 * (h + 1) if not has_K else 2, dtype=rtwr.dtype)
    scale = 1.0 / nfft
    for r in range(r0, r1):
        c = r % H
        ur = u2[r]
        if has_pre:
            gr = pre2[r]
            for t in range(L):
                X[t] = ur[t] * gr[t]
        else:
            for t in range(L):
                X[t] = ur[t]
        for t in range(L, nfft):
            X[t] = 0.0
        _eng._load_pairs(X, ar, ai, 1.0)
        fr, fi = _eng._long_core(ar, ai, br, bi, P)
        _eng._store_r2c(X, fr, fi, rtwr, rtwi)
        if has_K:
            Kr = Kf[c]
        else:
            kr = kmat[c]
            for t in range(Lk):
                Y[t] = kr[t]
            for t in range(Lk, nfft):
                Y[t] = 0.0
            _eng._load_pairs(Y, ar, ai, 1.0)
            fr, fi = _eng._long_core(ar, ai, br, bi, P)
            _eng._store_r2c(Y, fr, fi, rtwr, rtwi)
            Kr = Y
        for f in range(h + 1):
            xr = X[2 * f]
            xi = X[2 * f + 1]
            kre = Kr[2 * f]
            kim = Kr[2 * f + 1]
            X[2 * f] = xr * kre - xi * kim
            X[2 * f + 1] = xr * kim + xi * kre
        _eng._load_c2r(X, ar, ai, rtwr, rtwi)
        fr, fi = _eng._long_core(ar, ai, br, bi, P)
        _eng._store_pairs(X, fr, fi, -1.0, scale)
        orow = out2[r]
        if has_D:
            d = D[c]
            if has_post:
                gr = post2[r]
                for t in range(L):
                    orow[t] = gr[t] * (X[t + offset] + d * ur[t])
            else:
                for t in range(L):
                    orow[t] = X[t + offset] + d * ur[t]
        elif has_post:
            gr = post2[r]
            for t in range(L):
                orow[t] = gr[t] * (X[t + offset])
        else:
            for t in range(L):
                orow[t] = X[t + offset]


@njit(cache=True, parallel=True)
def _fused_forward(u2, pre2, has_pre, Kf, has_K, kmat, H, nfft, offset, D, has_D, post2,
                   has_post, out2, P, rtwr, rtwi, nchunks):
    b = u2.shape[0]
    per = (b + nchunks - 1) // nchunks
    for ch in prange(nchunks):
        r0 = ch * per
        r1 = min(b, r0 + per)
        if r0 < r1:
            _fused_rows(u2, pre2, has_pre, Kf, has_K, kmat, H, r0, r1, nfft, offset, D, has_D,
                        post2, has_post, out2, P, rtwr, rtwi)


#: the fused path's shortest transform: below, rows are too short for the four-step tile
FUSED_MIN_NFFT = 128


def _fused_ok(dt, nfft: int, budget: int) -> bool:
    """Real rows whose transform the engine runs directly and whose tiles (about ``4 nfft``
    values per thread: four planes of ``nfft / 2`` and two spectra) fit the scratch budget;
    longer rows go through the frequency classes."""
    tile = 4 * nfft * dt.itemsize * numba.get_num_threads()
    return (dt.kind == "f" and nfft % 2 == 0 and nfft >= FUSED_MIN_NFFT
            and _eng.is_smooth(nfft) and tile <= budget)


def _forward_fused(u2, spec, nfft, offset, D, has_D, pre2, has_pre, post2, has_post, H, out2,
                   K):
    dt = u2.dtype
    p = _eng.long_plan(nfft // 2, dt.str)
    rtw = _eng.real_twiddles(nfft, dt.str)
    has_K = K is not None
    Kf = K.view(dt) if has_K else np.zeros((1, 2), dtype=dt)
    nrows = u2.shape[0]
    _fused_forward(u2, pre2, has_pre, Kf, has_K, spec.k, H, nfft, offset, D, has_D, post2,
                   has_post, out2, p.packed, rtw[0], rtw[1],
                   max(1, min(nrows, 4 * numba.get_num_threads())))
    return out2


# ---- driver -----------------------------------------------------------------------------------

def _plan_chunks(nrows: int, nfft: int, itemsize: int, budget: int | None = None,
                 buffers: int = 3):
    """Row chunks, the number of threads that share them and scipy.fft workers per thread.

    With ``budget``, rows per chunk are cut so that ``buffers`` row-sized spectra per thread
    stay within ``budget`` bytes; returns ``None`` if even one row per thread does not fit.
    """
    row = nfft * itemsize
    per = max(1, CHUNK_BYTES // row, min(MIN_ROWS, MAX_CHUNK_BYTES // row))
    spectrum_row = (nfft // 2 + 1) * itemsize  # a row's spectrum (or padded real row)
    nthreads = max(1, min(numba.get_num_threads(), -(-nrows // per)))
    if budget is not None:
        cap = budget // (nthreads * buffers * spectrum_row)
        if cap < 1:
            return None
        per = min(per, cap)
    chunks = [(r0, min(nrows, r0 + per)) for r0 in range(0, nrows, per)]
    nthreads = max(1, min(nthreads, len(chunks)))
    # a single huge row: let scipy use the threads inside the transform instead
    workers = max(1, numba.get_num_threads() // nthreads)
    return chunks, nthreads, workers


def _run_chunks(nthreads: int, chunks, work) -> None:
    """Run ``work(worker, r0, r1)`` on every chunk; workers take the next free chunk.

    Dynamic scheduling rather than fixed stripes: on a shared machine one descheduled thread
    would otherwise hold back the whole call. ``worker`` indexes per-thread accumulators.
    """
    if nthreads == 1:
        for r0, r1 in chunks:
            work(0, r0, r1)
        return
    counter = itertools.count()  # next() is atomic under the GIL

    def loop(worker):
        while (i := next(counter)) < len(chunks):
            work(worker, *chunks[i])

    errors: list = []

    def guarded(worker):
        try:
            loop(worker)
        except BaseException as e:  # re-raised on the calling thread
            errors.append(e)

    # the calling thread is worker 0: one hand-off fewer. The others are started for this call
    # and joined before it returns: a persistent pool would count as "another Python thread"
    # for the rest of the process and stop structlin._cpu._blas_pool.park_blas_threads
    others = [threading.Thread(target=guarded, args=(w,), daemon=True)
              for w in range(1, nthreads)]
    for t in others:
        t.start()
    guarded(0)
    for t in others:
        t.join()
    if errors:
        raise errors[0]


def _forward_rows(x, n=None, axis=-1, overwrite_x=False, workers=None):
    """The engine's forward transform (``rfft`` for real rows, ``fft`` for complex) of the rows
    of ``x`` zero-padded to ``n``, in scipy.fft's call form; ``workers == 1``: on the calling
    thread (the chunk threads each run their own rows)."""
    x = np.ascontiguousarray(x)
    return _eng.rows(x, x.shape[-1] if n is None else n, False, serial=workers == 1)


def _inverse_real(F, n=None, axis=-1, overwrite_x=False, workers=None):
    """``irfft(F, n)`` on the engine (normalized by ``1 / n`` like scipy's default)."""
    out = _eng.real_rows(np.ascontiguousarray(F), n, serial=workers == 1)
    out *= 1.0 / n
    return out


def _inverse_complex(F, n=None, axis=-1, overwrite_x=False, workers=None):
    """``ifft(F)`` on the engine (rows of length ``n == F.shape[-1]``, normalized)."""
    out = _eng.rows(np.ascontiguousarray(F), F.shape[-1], True, serial=workers == 1,
                    overwrite=overwrite_x)
    out *= 1.0 / F.shape[-1]
    return out


def _transforms(dtype):
    if dtype.kind == "f":
        return _forward_rows, _inverse_real
    return _forward_rows, _inverse_complex


def _use_direct(L: int, Lk: int, dtype) -> bool:
    taps = DIRECT_TAPS if np.dtype(dtype).kind == "f" else DIRECT_TAPS // 2
    return min(L, Lk) <= taps


@serial_when_small(0)
def forward(u, spec, nfft, Lk, offset, D, pregate, postgate, out, *, precision="highest"):
    """Fill ``out`` (B, H, L) with the gated linear convolution; see the module docstring.

    ``precision`` is part of the kernel contract (the GPU has tensor-core paths); the CPU has
    no such units and always computes in the data's precision.
    """
    B, H, L = u.shape
    dt = u.dtype
    if B * H == 0 or L == 0:
        return out
    has_D, has_pre, has_post = D is not None, pregate is not None, postgate is not None
    D = _or_empty1(D, dt)
    if _use_direct(L, Lk, dt):
        _direct_forward(u, spec.k, offset, D, has_D, _or_empty(pregate, dt), has_pre,
                        _or_empty(postgate, dt), has_post, out,
                        max(1, min(B * H, 8 * numba.get_num_threads())))
        return out
    u2 = u.reshape(B * H, L)
    pre2 = pregate.reshape(B * H, L) if has_pre else _empty(dt)[0]
    post2 = postgate.reshape(B * H, L) if has_post else _empty(dt)[0]
    out2 = out.reshape(B * H, L)
    # scratch beyond the output: at most u's size (or a small constant), the kernel's whole
    # spectrum included unless a plan already holds it
    budget = max(u.nbytes, SCRATCH_MIN_BYTES)
    K = spec.freq() if spec.ready or spec.nbytes() <= KERNEL_SPECTRUM_SHARE * u.nbytes else None
    if _fused_ok(dt, nfft, budget):
        _forward_fused(u2, spec, nfft, offset, D, has_D, pre2, has_pre, post2, has_post, H, out2,
                       K)
        return out
    itemsize = _complex_of(dt).itemsize
    if K is not None and not spec.ready:
        budget -= spec.nbytes()
    plan = _plan_chunks(B * H, nfft, itemsize, budget, 2 if K is not None else 3)
    # a class's buffers plus the engine's tile for its transform (two complex rows of M)
    R = _class_count(nfft, budget // numba.get_num_threads(),
                     itemsize * ((1 if K is not None else 2) + ENGINE_TILE_ROWS))
    if plan is None and R:
        return _forward_by_classes(u2, spec.k, K, pre2, has_pre, post2, has_post, D, has_D, H,
                                   nfft, R, offset, out2)
    if plan is None:
        plan = _plan_chunks(B * H, nfft, itemsize)
    chunks, nthreads, workers = plan
    fwd, inv = _transforms(dt)
    kmat = spec.k

    def work(worker, r0, r1):
        if has_pre:
            buf = np.empty((r1 - r0, nfft), dtype=dt)
            _pad_product(u2, pre2, True, False, r0, buf)
            F = fwd(buf, axis=-1, overwrite_x=True, workers=workers)
            del buf
        else:
            F = fwd(u2[r0:r1], n=nfft, axis=-1, workers=workers)
        if K is None:
            # this chunk's kernel rows (channels r0 % H ...), transformed here
            Kc = fwd(kmat[np.arange(r0, r1) % H], n=nfft, axis=-1, workers=workers)
            F *= Kc
            del Kc
        else:
            _times_spectrum(F, K, r0, H, False)
        c = inv(F, n=nfft, axis=-1, overwrite_x=True, workers=workers)
        _finish_forward(c, offset, u2, D, has_D, post2, has_post, r0, H, out2)

    _run_chunks(nthreads, chunks, work)
    return out


@serial_when_small(0)
def backward(u, spec, nfft, Lk, offset, D, pregate, postgate, grad, *, precision="highest"):
    """Gradients of ``Re sum(conj(grad) * out)`` (PyTorch's convention for complex arguments).

    Returns ``(grad_u, grad_k, grad_D, grad_pregate, grad_postgate)`` in the compute dtype,
    ``None`` for an absent ``D`` or gate; ``grad_k`` and ``grad_D`` are summed over the batch.
    """
    B, H, L = u.shape
    dt = u.dtype
    has_D, has_pre, has_post = D is not None, pregate is not None, postgate is not None
    gu = np.empty_like(u)
    gpre = np.empty_like(u) if has_pre else None
    gpost = np.empty_like(u) if has_post else None
    gk = np.zeros((H, Lk), dtype=dt)
    gD = np.zeros(H, dtype=dt) if has_D else None
    if B * H == 0 or L == 0:
        if gpre is not None:
            gpre[...] = 0
        return gu, gk, gD, gpre, gpost
    Dk = _or_empty1(D, dt)
    if _use_direct(L, Lk, dt):
        _direct_backward(u, spec.k, offset, Dk, has_D, _or_empty(pregate, dt), has_pre,
                         _or_empty(postgate, dt), has_post, grad, gu, gk,
                         _or_empty1(gD, dt), _or_empty(gpre, dt), _or_empty(gpost, dt))
        return gu, gk, gD, gpre, gpost
    K = spec.freq()
    R = B * H
    u2 = u.reshape(R, L)
    g2 = grad.reshape(R, L)
    pre2 = pregate.reshape(R, L) if has_pre else _empty(dt)[0]
    post2 = postgate.reshape(R, L) if has_post else _empty(dt)[0]
    gu2 = gu.reshape(R, L)
    gpre2 = gpre.reshape(R, L) if has_pre else _empty(dt)[0]
    gpost2 = gpost.reshape(R, L) if has_post else _empty(dt)[0]
    fwd, inv = _transforms(dt)
    chunks, nthreads, workers = _plan_chunks(R, nfft, np.dtype(K.dtype).itemsize)
    # per-thread sums over the batch, so that threads never write the same channel
    acc_k = np.zeros((nthreads, H, K.shape[1]), dtype=K.dtype)
    acc_D = np.zeros((nthreads, H), dtype=dt)

    def work(worker, r0, r1):
        n = r1 - r0
        if has_pre:
            buf = np.empty((n, nfft), dtype=dt)
            _pad_product(u2, pre2, True, False, r0, buf)
            V = fwd(buf, axis=-1, overwrite_x=True, workers=workers)
        else:
            V = fwd(u2[r0:r1], n=nfft, axis=-1, workers=workers)
        if has_post:
            Z = V.copy()
            _times_spectrum(Z, K, r0, H, False)
            c = inv(Z, n=nfft, axis=-1, overwrite_x=True, workers=workers)
            _finish_postgate_grad(c, offset, u2, Dk, has_D, g2, r0, H, gpost2)
        gz = np.empty((n, nfft), dtype=dt)
        _pad_product(g2, post2, has_post, True, r0, gz)
        G = fwd(gz, axis=-1, workers=workers)
        _accumulate_cross(G, V, r0, H, acc_k[worker])
        _times_spectrum(G, K, r0, H, True)
        cg = inv(G, n=nfft, axis=-1, overwrite_x=True, workers=workers)
        _finish_backward(cg, offset, gz, u2, Dk, has_D, pre2, has_pre, r0, H, gu2, gpre2,
                         acc_D[worker])

    _run_chunks(nthreads, chunks, work)
    # grad_k[j] = p[(j - offset) mod nfft], p = inverse transform of the summed cross-spectrum
    p = inv(acc_k.sum(axis=0), n=nfft, axis=-1, workers=numba.get_num_threads())
    idx = (np.arange(Lk) - offset) % nfft
    gk[...] = p[:, idx]
    if has_D:
        gD[...] = acc_D.sum(axis=0)
    return gu, gk, gD, gpre, gpost
