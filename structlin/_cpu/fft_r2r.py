"""Numba passes around the FFT engine for the DCT and DST of types 2, 3 and 4.

Each function is one pass over the rows (parallel over rows), either before or after one engine
transform (:mod:`structlin._cpu.fft`); :mod:`structlin.fft` chooses the pass, computes the
twiddles (cached) and folds the normalization and the ``orthogonalize`` weights into them, so
that no extra pass over the data is needed for scaling.

- types 2 and 3 (Makhoul 1980): :func:`makhoul_gather` / :func:`makhoul_scatter` reorder a row
  into ``v = (x[0], x[2], ..., x[5], x[3], x[1])`` and back; :func:`dct2_post` turns the
  half spectrum of ``v`` into the DCT-II, :func:`dct3_pre` builds the half spectrum whose
  inverse real transform is the (reordered) DCT-III.
- type 4 (even ``n``): :func:`dct4_pre` packs ``x[2j] + i x[n-1-2j]`` with a pre-twiddle into
  a complex row of length ``n / 2``, :func:`dct4_post` unpacks its spectrum.

The DST of each type is the DCT of the same type with the input signs alternated or reversed
and the output reversed or signs alternated (``DST-II = R DCT-II S``, ``DST-III = S DCT-III R``,
``DST-IV = S DCT-IV R`` with ``S = diag((-1)^j)`` and ``R`` the reversal): the ``alternate``
and ``reverse`` flags fold ``S`` and ``R`` into the same passes.

All arrays are 2-D C-contiguous, rows ``(B, n)`` of float32/float64; a complex spectrum is
passed as its real view (``(B, 2 m)``, real and imaginary parts interleaved) and a twiddle as
its real and imaginary parts (1-D, the rows' dtype), so that every operation runs in the rows'
precision (a Python ``complex`` or a float64 constant would promote float32 work to float64,
which measured 7x slower for the gather). Each row is one loop over pairs of entries, read
once and written once.
"""

from __future__ import annotations

from numba import njit, prange

from structlin._cpu._schedule import serial_when_small

_FM = {"contract"}


@njit(cache=True, fastmath=_FM, parallel=True)
def _makhoul_gather(x, v, alternate):
    """``v[b] = x[b][p]`` with ``p`` the even indices, then the odd ones reversed; the odd
    entries negated when ``alternate`` (the ``S`` of the DST-II)."""
    B, n = x.shape
    h = n // 2
    for b in prange(B):
        for j in range(h):
            c = x[b, 2 * j + 1]
            v[b, j] = x[b, 2 * j]
            v[b, n - 1 - j] = -c if alternate else c
        if n % 2:
            v[b, h] = x[b, n - 1]


@njit(cache=True, fastmath=_FM, parallel=True)
def _makhoul_scatter(v, y, alternate):
    """The inverse of :func:`makhoul_gather`: ``y[b][p] = v[b]`` (odd outputs negated when
    ``alternate``, the ``S`` of the DST-III)."""
    B, n = v.shape
    h = n // 2
    for b in prange(B):
        for j in range(h):
            c = v[b, n - 1 - j]
            y[b, 2 * j] = v[b, j]
            y[b, 2 * j + 1] = -c if alternate else c
        if n % 2:
            y[b, n - 1] = v[b, h]


@njit(cache=True, fastmath=_FM, parallel=True)
def _dct2_post(V, y, tr, ti, reverse):
    """DCT-II from the half spectrum ``V`` (real view, ``n // 2 + 1`` complex entries) of the
    reordered row.

    ``W_k = t[k] V[k]`` (``t[k] = 2 exp(-i pi k / 2n)`` times the output scale, which is the
    same at ``k`` and ``n - k`` for ``k >= 1``), then ``y_k = Re W_k`` and ``y_(n-k) = -Im
    W_k``; written to ``n - 1 - k`` instead of ``k`` when ``reverse`` (the ``R`` of the
    DST-II). The ends (``k = 0``, ``k = n / 2``) are done apart so the inner loops have no
    branch.
    """
    B, n = y.shape
    h = n // 2
    top = (n - 1) // 2
    for b in prange(B):
        w0 = tr[0] * V[b, 0] - ti[0] * V[b, 1]
        if reverse:
            y[b, n - 1] = w0
            for k in range(1, top + 1):
                vr = V[b, 2 * k]
                vi = V[b, 2 * k + 1]
                y[b, n - 1 - k] = tr[k] * vr - ti[k] * vi
                y[b, k - 1] = -(tr[k] * vi + ti[k] * vr)
        else:
            y[b, 0] = w0
            for k in range(1, top + 1):
                vr = V[b, 2 * k]
                vi = V[b, 2 * k + 1]
                y[b, k] = tr[k] * vr - ti[k] * vi
                y[b, n - k] = -(tr[k] * vi + ti[k] * vr)
        if n % 2 == 0 and n > 1:
            wh = tr[h] * V[b, 2 * h] - ti[h] * V[b, 2 * h + 1]
            y[b, n - 1 - h if reverse else h] = wh


@njit(cache=True, fastmath=_FM, parallel=True)
def _dct3_pre(x, V, tr, ti, reverse):
    """The half spectrum ``V[k] = t[k] (x_k - i x_(n-k))`` (real view; ``x_n = 0``, ``t[k] =
    exp(+i pi k / 2n)`` times the input scale, the same at ``k`` and ``n - k`` for ``k >= 1``)
    whose unnormalized inverse real transform is the reordered DCT-III of ``x``; ``x`` read
    reversed when ``reverse`` (the ``R`` of the DST-III)."""
    B, n = x.shape
    for b in prange(B):
        a = x[b, n - 1 if reverse else 0]
        V[b, 0] = tr[0] * a
        V[b, 1] = ti[0] * a
        if reverse:
            for k in range(1, n // 2 + 1):
                a = x[b, n - 1 - k]
                c = x[b, k - 1]
                V[b, 2 * k] = tr[k] * a + ti[k] * c
                V[b, 2 * k + 1] = ti[k] * a - tr[k] * c
        else:
            for k in range(1, n // 2 + 1):
                a = x[b, k]
                c = x[b, n - k]
                V[b, 2 * k] = tr[k] * a + ti[k] * c
                V[b, 2 * k + 1] = ti[k] * a - tr[k] * c


@njit(cache=True, fastmath=_FM, parallel=True)
def _dct4_pre(x, u, wr, wi, reverse):
    """``u[j] = w[j] (x[2j] + i x[n-1-2j])`` for ``j < n / 2`` (``u`` a real view, ``n`` even;
    ``w[j] = exp(-i pi (4j+1) / 4n)`` times the scale); ``x`` read reversed when
    ``reverse``."""
    B, n = x.shape
    m = n // 2
    for b in prange(B):
        if reverse:
            for j in range(m):
                re = x[b, n - 1 - 2 * j]
                im = x[b, 2 * j]
                u[b, 2 * j] = wr[j] * re - wi[j] * im
                u[b, 2 * j + 1] = wr[j] * im + wi[j] * re
        else:
            for j in range(m):
                re = x[b, 2 * j]
                im = x[b, n - 1 - 2 * j]
                u[b, 2 * j] = wr[j] * re - wi[j] * im
                u[b, 2 * j + 1] = wr[j] * im + wi[j] * re


@njit(cache=True, fastmath=_FM, parallel=True)
def _dct4_post(U, y, tr, ti, alternate):
    """DCT-IV from the spectrum ``U`` (real view) of :func:`dct4_pre`'s row: ``c_k = t[k]
    U[k]`` (``t[k] = 2 exp(-i pi k / n)``), ``y[2k] = Re c_k``, ``y[n-1-2k] = -Im c_k``; the
    odd outputs negated when ``alternate`` (the ``S`` of the DST-IV)."""
    B, n = y.shape
    m = n // 2
    for b in prange(B):
        if alternate:
            for k in range(m):
                ur = U[b, 2 * k]
                ui = U[b, 2 * k + 1]
                y[b, 2 * k] = tr[k] * ur - ti[k] * ui
                y[b, n - 1 - 2 * k] = tr[k] * ui + ti[k] * ur
        else:
            for k in range(m):
                ur = U[b, 2 * k]
                ui = U[b, 2 * k + 1]
                y[b, 2 * k] = tr[k] * ur - ti[k] * ui
                y[b, n - 1 - 2 * k] = -(tr[k] * ui + ti[k] * ur)


# the entry points (the kernel contract ``fft_r2r``): each pass under the one small-input rule
# of the CPU kernels (the calling thread alone below SERIAL_ELEMENTS elements)
makhoul_gather = serial_when_small(0)(_makhoul_gather)
makhoul_scatter = serial_when_small(0)(_makhoul_scatter)
dct2_post = serial_when_small(1)(_dct2_post)
dct3_pre = serial_when_small(0)(_dct3_pre)
dct4_pre = serial_when_small(0)(_dct4_pre)
dct4_post = serial_when_small(1)(_dct4_post)
