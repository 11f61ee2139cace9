"""CPU engine of the long convolution: scipy.fft on cache-sized row chunks + fused Numba passes.

Contract (shared with ``structlin.gpu.conv``; ``structlin.conv`` calls nothing else)::

    fft_size(L, Lk) -> nfft >= L + Lk - 1
    kernel_spectrum(k, nfft) -> spec                      # k: (H, Lk), the compute dtype
    forward(u, spec, nfft, Lk, offset, D, pregate, postgate, out) -> out
    backward(u, spec, nfft, Lk, offset, D, pregate, postgate, grad)
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
``nogil`` Numba kernels release the GIL).

Direct path (``min(L, Lk) <= DIRECT_TAPS``, half that for complex data): a Numba loop over the
at most ``min(L, Lk)`` taps per output (one contiguous SIMD multiply-add per tap), parallel over
rows; below that size it beats the transforms.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import scipy.fft
from numba import njit, prange

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
#: calls with less spectrum than this run in the calling thread: handing chunks to other
#: threads costs tens of microseconds, as much as transforming a few hundred KiB
PARALLEL_MIN_BYTES = 2 * 1024 * 1024

_EMPTY = {}


def fft_size(L: int, Lk: int) -> int:
    """The transform length: the smallest 5-smooth ``n >= L + Lk - 1``."""
    return int(scipy.fft.next_fast_len(int(L) + int(Lk) - 1, real=True))


class Spectrum:
    """The kernel ``k`` (H, Lk) and, for the FFT path, its spectrum of length ``nfft``.

    ``freq`` is ``rfft(k, nfft)`` for real ``k`` (``fft`` for complex), shape ``(H, nf)``;
    it is computed when the FFT path may be used (``Lk > DIRECT_TAPS // 2``), else lazily.
    """

    def __init__(self, k: np.ndarray, nfft: int):
        self.k = k
        self.nfft = int(nfft)
        self._freq = None
        self._lock = threading.Lock()
        if k.shape[1] > DIRECT_TAPS // 2:
            self.freq()

    def freq(self) -> np.ndarray:
        with self._lock:
            if self._freq is None:
                f = scipy.fft.rfft if self.k.dtype.kind == "f" else scipy.fft.fft
                self._freq = np.ascontiguousarray(f(self.k, n=self.nfft, axis=-1, workers=-1))
            return self._freq


def kernel_spectrum(k: np.ndarray, nfft: int) -> Spectrum:
    """Return the (opaque) spectrum of the C-contiguous kernel ``k`` of shape ``(H, Lk)``."""
    return Spectrum(np.ascontiguousarray(k), nfft)


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


# ---- driver -----------------------------------------------------------------------------------

_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def _pool(n: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE < n:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(max_workers=n, thread_name_prefix="structlin-conv")
            _POOL_SIZE = n
        return _POOL


def _plan_chunks(nrows: int, nfft: int, itemsize: int):
    """Row chunks, the number of threads that share them and scipy.fft workers per thread."""
    row = nfft * itemsize
    per = max(1, CHUNK_BYTES // row, min(MIN_ROWS, MAX_CHUNK_BYTES // row))
    chunks = [(r0, min(nrows, r0 + per)) for r0 in range(0, nrows, per)]
    if nrows * row < PARALLEL_MIN_BYTES:
        return chunks, 1, 1
    nthreads = max(1, min(numba.get_num_threads(), len(chunks)))
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

    # the calling thread is worker 0: one hand-off fewer
    futures = [_pool(nthreads - 1).submit(loop, w) for w in range(1, nthreads)]
    try:
        loop(0)
    finally:
        for f in futures:
            f.result()


def _transforms(dtype):
    if dtype.kind == "f":
        return scipy.fft.rfft, scipy.fft.irfft
    return scipy.fft.fft, scipy.fft.ifft


def _use_direct(L: int, Lk: int, dtype) -> bool:
    taps = DIRECT_TAPS if np.dtype(dtype).kind == "f" else DIRECT_TAPS // 2
    return min(L, Lk) <= taps


def forward(u, spec, nfft, Lk, offset, D, pregate, postgate, out):
    """Fill ``out`` (B, H, L) with the gated linear convolution; see the module docstring."""
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
    K = spec.freq()
    u2 = u.reshape(B * H, L)
    pre2 = pregate.reshape(B * H, L) if has_pre else _empty(dt)[0]
    post2 = postgate.reshape(B * H, L) if has_post else _empty(dt)[0]
    out2 = out.reshape(B * H, L)
    fwd, inv = _transforms(dt)
    chunks, nthreads, workers = _plan_chunks(B * H, nfft, np.dtype(K.dtype).itemsize)

    def work(worker, r0, r1):
        if has_pre:
            buf = np.empty((r1 - r0, nfft), dtype=dt)
            _pad_product(u2, pre2, True, False, r0, buf)
            F = fwd(buf, axis=-1, overwrite_x=True, workers=workers)
        else:
            F = fwd(u2[r0:r1], n=nfft, axis=-1, workers=workers)
        _times_spectrum(F, K, r0, H, False)
        c = inv(F, n=nfft, axis=-1, overwrite_x=True, workers=workers)
        _finish_forward(c, offset, u2, D, has_D, post2, has_post, r0, H, out2)

    _run_chunks(nthreads, chunks, work)
    return out


def backward(u, spec, nfft, Lk, offset, D, pregate, postgate, grad):
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
    p = inv(acc_k.sum(axis=0), n=nfft, axis=-1, workers=-1)
    idx = (np.arange(Lk) - offset) % nfft
    gk[...] = p[:, idx]
    if has_D:
        gD[...] = acc_D.sum(axis=0)
    return gu, gk, gD, gpre, gpost
