"""Numba kernels of structlin's FFT engine: batched complex and real transforms of the last axis.

Layout of one transform of length ``n = n1 * n2`` (the *four-step* or *frequency-class* scheme):
the row is read as an ``(n1, n2)`` matrix in split form (real and imaginary planes, so that every
arithmetic instruction works on whole SIMD vectors of one kind), the ``n2`` columns are
transformed together (each Stockham stage loops innermost over the ``n2`` contiguous columns:
every load, store, add and multiply is a full vector, one twiddle broadcast per vector), the
result is multiplied by the twiddles ``w_n^(k1 j2)`` and transposed to ``(n2, n1)`` (square
blocks of one register's lanes transposed in registers, :func:`structlin._cpu._simd.
transpose_block`), and the ``n1`` columns of that are transformed the same way. The output lands
in natural order. Short rows (``n <= SHORT``) use the rows themselves as the vector lanes
instead: a block of :data:`LANES_ROWS` rows is transposed into an ``(n, LANES_ROWS)`` tile and
one column transform covers them all.

Each Stockham stage of radix ``r`` (8, 4, 2, 3 or 5) on a sub-transform length ``l`` with ``s``
interleaved sub-transforms computes, for ``p < m = l / r`` and ``q < s``::

    y[q + s (r p + k)] = w_l^(p k) sum_j x[q + s (p + j m)] e^(-2 pi i j k / r)

(decimation in frequency, autosorting: no bit reversal). When the columns are whole SIMD blocks
(16 float32 or 8 float64 with AVX-512), one block of a stage is one explicit-vector butterfly
(:func:`structlin._cpu._simd_fft.stage_block`: loads, the DFT's adds, fused twiddle multiplies,
stores; no alias checks, no remainder loop); other widths use loop-vectorized butterflies. The
stages ping-pong between two tiles whose four planes are placed 1 KiB apart modulo 4 KiB
(:func:`_scratch`: rows a stage reads together would otherwise share L1 sets), and a row's
tiles stay in the core's L2 cache for the whole transform: the data is read from and written
to memory once.

Inverse transforms are computed as ``conj(F(conj(z)))``: the conjugations are folded into the
load and store passes. Real transforms of even length ``n`` run the complex transform of length
``n / 2`` on the samples read as (even, odd) pairs; ``r2c`` splits its spectrum into the
``n / 2 + 1`` frequencies in the store pass and ``c2r`` merges a Hermitian half spectrum into
the half-length one in the load pass (both vectorized, the partner frequency ``n / 2 - k`` read
as a reversed vector: :func:`structlin._cpu._simd_fft.r2c_post_block`, ``c2r_pre_block``). A
row shorter than the transform is zero-padded in the load pass. ``c2c`` may work in place.

Every kernel is unnormalized (``sum x e^(-2 pi i jk/n)`` forward, ``e^(+...)`` inverse);
:mod:`structlin.fft` applies ``norm``. The convolution engine (:mod:`structlin._cpu.conv`)
calls the row-level pieces (:func:`_load_pairs`, :func:`_long_core`, :func:`_store_r2c`,
:func:`_load_c2r`) inside its own fused kernel.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit, prange

from structlin._cpu._microkernel import vector_lanes
from structlin._cpu._simd import transpose_block, transpose_side
from structlin._cpu._simd_fft import c2r_pre_block, r2c_post_block, stage_block

#: rows of at most this length are transformed with the rows as vector lanes
SHORT = 1024
#: rows side by side in one short-row tile (lanes of the vectors: 16 float32 = one AVX-512 register)
LANES_ROWS = 16

_FM = {"contract"}


# ------------------------------------------------------------------ plans (pure Python, cached)

def factor(n: int, wide: bool = True) -> list[int]:
    """Radices (8, 4, 2, 3, 5) whose product is ``n``; ``ValueError`` if ``n`` is not 5-smooth.

    ``wide=False`` uses no radix 8: for columns that are not whole SIMD blocks, where the
    loop-vectorized radix-8 butterfly (32 streams) stays scalar and radix 4 is faster."""
    out = []
    m = n
    while wide and m % 8 == 0 and m != 16:
        out.append(8)
        m //= 8
    while m % 4 == 0:
        out.append(4)
        m //= 4
    if m % 2 == 0:
        out.append(2)
        m //= 2
    for r in (3, 5):
        while m % r == 0:
            out.append(r)
            m //= r
    if m != 1:
        raise ValueError(f"length {n} is not 5-smooth")
    return out


def is_smooth(n: int) -> bool:
    """Whether ``n >= 1`` has no prime factor above 5 (a length the engine runs directly)."""
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def _stage_twiddles(radices: list[int], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twiddles of every Stockham stage of a length-``n`` transform: stage ``t`` of radix ``r`` on
    sub-length ``l`` stores ``w_l^(p k)`` for ``p < l / r``, ``k = 1 .. r-1`` at ``off[t] + p (r-1)
    + k - 1`` (computed in float64)."""
    parts, offs = [], []
    off = 0
    l = n
    for r in radices:
        m = l // r
        p = np.arange(m)[:, None]
        k = np.arange(1, r)[None, :]
        parts.append(np.exp(-2j * np.pi * (p * k % l) / l).ravel())
        offs.append(off)
        off += m * (r - 1)
        l = m
    tw = np.concatenate(parts) if parts else np.zeros(1, complex)
    return tw.real.copy(), tw.imag.copy(), np.asarray(offs, dtype=np.int64)


#: column counts that are multiples of this run the SIMD butterflies in every precision (16
#: float32 or 8 float64 lanes per block with AVX-512)
_BLOCK = 16


def _split(n: int) -> tuple[int, int]:
    """``n = n1 * n2``, both 5-smooth, preferring both multiples of :data:`_BLOCK` (whole SIMD
    blocks in both passes), then ``n1 <= n2`` as close to ``sqrt(n)`` as possible."""
    best, key = (1, n), None
    for n1 in range(1, math.isqrt(n) + 1):
        if n % n1 == 0 and is_smooth(n1):
            n2 = n // n1
            k = (n1 % _BLOCK == 0 and n2 % _BLOCK == 0, n1)
            if key is None or k > key:
                best, key = (n1, n2), k
    return best


class Plan:
    """Everything a transform of length ``n`` needs, for one float dtype (cached by
    :func:`plan`): the layout (``short``: rows as lanes; else the four-step split ``n1 x n2``),
    the radices of each pass and their twiddles, the four-step twiddles ``w_n^(k1 j2)``."""

    def __init__(self, n: int, dtype: np.dtype, four_step: bool = False):
        self.n = n
        self.dtype = f = np.dtype(dtype)
        self.short = n <= SHORT and not four_step
        self.n1, self.n2 = (n, 1) if self.short else _split(n)
        # the columns of pass 1 are n2 wide (LANES_ROWS for the short layout), of pass 2 n1
        w1 = LANES_ROWS if self.short else self.n2
        self.rad1 = np.asarray(factor(self.n1, w1 % _BLOCK == 0), dtype=np.int64)
        self.rad2 = np.asarray(factor(self.n2, self.n1 % _BLOCK == 0), dtype=np.int64)
        r1, i1, o1 = _stage_twiddles(list(self.rad1), self.n1)
        r2, i2, o2 = _stage_twiddles(list(self.rad2), self.n2)
        self.tw1 = (r1.astype(f), i1.astype(f), o1)
        self.tw2 = (r2.astype(f), i2.astype(f), o2)
        if self.short:
            self.mid = (np.zeros(1, f), np.zeros(1, f))
        else:
            k1 = np.arange(self.n1)[:, None]
            j2 = np.arange(self.n2)[None, :]
            w = np.exp(-2j * np.pi * (k1 * j2 % n) / n)
            self.mid = (w.real.astype(f).ravel(), w.imag.astype(f).ravel())
        #: the four-step path's arguments as one tuple (one Numba argument)
        self.packed = (self.n1, self.n2, self.rad1, *self.tw1, self.rad2, *self.tw2, *self.mid)


@functools.lru_cache(maxsize=64)
def plan(n: int, dtype_str: str) -> Plan:
    """The cached :class:`Plan` of length ``n`` for the float dtype ``dtype_str``."""
    return Plan(n, np.dtype(dtype_str))


@functools.lru_cache(maxsize=64)
def long_plan(n: int, dtype_str: str) -> Plan:
    """A four-step plan of length ``n`` even where :func:`plan` would use the short-row layout:
    for callers that transform one row at a time inside their own fused kernels."""
    return Plan(n, np.dtype(dtype_str), four_step=True)


# ------------------------------------------------------------------ column Stockham stages

@njit(cache=True, fastmath=_FM)
def _radix2(xr, xi, yr, yi, l, s, W, twr, twi, off):
    m = l // 2
    for p in range(m):
        w1r = twr[off + p]
        w1i = twi[off + p]
        for q in range(s):
            i0 = q + s * p
            o0 = q + s * 2 * p
            sm = s * m
            sw = s
            for c in range(W):
                ar = xr[i0, c]
                ai = xi[i0, c]
                br = xr[i0 + sm, c]
                bi = xi[i0 + sm, c]
                yr[o0, c] = ar + br
                yi[o0, c] = ai + bi
                dr = ar - br
                di = ai - bi
                yr[o0 + sw, c] = w1r * dr - w1i * di
                yi[o0 + sw, c] = w1r * di + w1i * dr


@njit(cache=True, fastmath=_FM)
def _radix4(xr, xi, yr, yi, l, s, W, twr, twi, off):
    m = l // 4
    sm = s * m
    for p in range(m):
        t = off + 3 * p
        w1r = twr[t]
        w1i = twi[t]
        w2r = twr[t + 1]
        w2i = twi[t + 1]
        w3r = twr[t + 2]
        w3i = twi[t + 2]
        for q in range(s):
            i0 = q + s * p
            o0 = q + s * 4 * p
            sw = s
            for c in range(W):
                ar = xr[i0, c]
                ai = xi[i0, c]
                br = xr[i0 + sm, c]
                bi = xi[i0 + sm, c]
                cr = xr[i0 + 2 * sm, c]
                ci = xi[i0 + 2 * sm, c]
                dr = xr[i0 + 3 * sm, c]
                di = xi[i0 + 3 * sm, c]
                apcr = ar + cr
                apci = ai + ci
                amcr = ar - cr
                amci = ai - ci
                bpdr = br + dr
                bpdi = bi + di
                # -i (b - d)
                jr = bi - di
                ji = dr - br
                yr[o0, c] = apcr + bpdr
                yi[o0, c] = apci + bpdi
                u1r = amcr + jr
                u1i = amci + ji
                u2r = apcr - bpdr
                u2i = apci - bpdi
                u3r = amcr - jr
                u3i = amci - ji
                yr[o0 + sw, c] = w1r * u1r - w1i * u1i
                yi[o0 + sw, c] = w1r * u1i + w1i * u1r
                yr[o0 + 2 * sw, c] = w2r * u2r - w2i * u2i
                yi[o0 + 2 * sw, c] = w2r * u2i + w2i * u2r
                yr[o0 + 3 * sw, c] = w3r * u3r - w3i * u3i
                yi[o0 + 3 * sw, c] = w3r * u3i + w3i * u3r


@njit(cache=True, fastmath=_FM)
def _radix3(xr, xi, yr, yi, l, s, W, twr, twi, off):
    m = l // 3
    sm = s * m
    c3 = -0.5
    s3 = -0.8660254037844386467637  # -sin(2 pi / 3)
    for p in range(m):
        t = off + 2 * p
        w1r = twr[t]
        w1i = twi[t]
        w2r = twr[t + 1]
        w2i = twi[t + 1]
        for q in range(s):
            i0 = q + s * p
            o0 = q + s * 3 * p
            sw = s
            for c in range(W):
                ar = xr[i0, c]
                ai = xi[i0, c]
                br = xr[i0 + sm, c]
                bi = xi[i0 + sm, c]
                cr = xr[i0 + 2 * sm, c]
                ci = xi[i0 + 2 * sm, c]
                tr = br + cr
                ti = bi + ci
                yr[o0, c] = ar + tr
                yi[o0, c] = ai + ti
                mr = ar + c3 * tr
                mi = ai + c3 * ti
                # s3 * i * (b - c)
                nr = -s3 * (bi - ci)
                ni = s3 * (br - cr)
                u1r = mr + nr
                u1i = mi + ni
                u2r = mr - nr
                u2i = mi - ni
                yr[o0 + sw, c] = w1r * u1r - w1i * u1i
                yi[o0 + sw, c] = w1r * u1i + w1i * u1r
                yr[o0 + 2 * sw, c] = w2r * u2r - w2i * u2i
                yi[o0 + 2 * sw, c] = w2r * u2i + w2i * u2r


@njit(cache=True, fastmath=_FM)
def _radix5(xr, xi, yr, yi, l, s, W, twr, twi, off):
    m = l // 5
    sm = s * m
    c1 = 0.30901699437494742410   # cos(2 pi / 5)
    c2 = -0.80901699437494742410  # cos(4 pi / 5)
    s1 = 0.95105651629515357212   # sin(2 pi / 5)
    s2 = 0.58778525229247312917   # sin(4 pi / 5)
    for p in range(m):
        t = off + 4 * p
        w1r = twr[t]
        w1i = twi[t]
        w2r = twr[t + 1]
        w2i = twi[t + 1]
        w3r = twr[t + 2]
        w3i = twi[t + 2]
        w4r = twr[t + 3]
        w4i = twi[t + 3]
        for q in range(s):
            i0 = q + s * p
            o0 = q + s * 5 * p
            sw = s
            for c in range(W):
                ar = xr[i0, c]
                ai = xi[i0, c]
                br = xr[i0 + sm, c]
                bi = xi[i0 + sm, c]
                cr = xr[i0 + 2 * sm, c]
                ci = xi[i0 + 2 * sm, c]
                dr = xr[i0 + 3 * sm, c]
                di = xi[i0 + 3 * sm, c]
                er = xr[i0 + 4 * sm, c]
                ei = xi[i0 + 4 * sm, c]
                p1r = br + er
                p1i = bi + ei
                m1r = br - er
                m1i = bi - ei
                p2r = cr + dr
                p2i = ci + di
                m2r = cr - dr
                m2i = ci - di
                yr[o0, c] = ar + p1r + p2r
                yi[o0, c] = ai + p1i + p2i
                a1r = ar + c1 * p1r + c2 * p2r
                a1i = ai + c1 * p1i + c2 * p2i
                a2r = ar + c2 * p1r + c1 * p2r
                a2i = ai + c2 * p1i + c1 * p2i
                # -i (s1 m1 + s2 m2) and -i (s2 m1 - s1 m2)
                b1r = s1 * m1i + s2 * m2i
                b1i = -(s1 * m1r + s2 * m2r)
                b2r = s2 * m1i - s1 * m2i
                b2i = -(s2 * m1r - s1 * m2r)
                u1r = a1r + b1r
                u1i = a1i + b1i
                u4r = a1r - b1r
                u4i = a1i - b1i
                u2r = a2r + b2r
                u2i = a2i + b2i
                u3r = a2r - b2r
                u3i = a2i - b2i
                yr[o0 + sw, c] = w1r * u1r - w1i * u1i
                yi[o0 + sw, c] = w1r * u1i + w1i * u1r
                yr[o0 + 2 * sw, c] = w2r * u2r - w2i * u2i
                yi[o0 + 2 * sw, c] = w2r * u2i + w2i * u2r
                yr[o0 + 3 * sw, c] = w3r * u3r - w3i * u3i
                yi[o0 + 3 * sw, c] = w3r * u3i + w3i * u3r
                yr[o0 + 4 * sw, c] = w4r * u4r - w4i * u4i
                yi[o0 + 4 * sw, c] = w4r * u4i + w4i * u4r


_B2 = stage_block(2, True)
_B2_LAST = stage_block(2, False)
_B2_MID = stage_block(2, "lanes")


@njit(cache=True)
def _simd2(xr, xi, yr, yi, l, s, W, twr, twi, off, midr, midi, fuse):
    m = l // 2
    ist = s * m * W
    ost = s * W
    if m == 1:
        for q in range(s):
            base = q * W
            for c in range(0, W, vector_lanes(xr)):
                if fuse:
                    _B2_MID(xr, xi, yr, yi, base + c, ist, base + c, ost, midr, midi, 0)
                else:
                    _B2_LAST(xr, xi, yr, yi, base + c, ist, base + c, ost, twr, twi, off)
        return
    for p in range(m):
        t = off + 1 * p
        for q in range(s):
            i0 = (q + s * p) * W
            o0 = (q + s * 2 * p) * W
            for c in range(0, W, vector_lanes(xr)):
                _B2(xr, xi, yr, yi, i0 + c, ist, o0 + c, ost, twr, twi, t)


_B3 = stage_block(3, True)
_B3_LAST = stage_block(3, False)
_B3_MID = stage_block(3, "lanes")


@njit(cache=True)
def _simd3(xr, xi, yr, yi, l, s, W, twr, twi, off, midr, midi, fuse):
    m = l // 3
    ist = s * m * W
    ost = s * W
    if m == 1:
        for q in range(s):
            base = q * W
            for c in range(0, W, vector_lanes(xr)):
                if fuse:
                    _B3_MID(xr, xi, yr, yi, base + c, ist, base + c, ost, midr, midi, 0)
                else:
                    _B3_LAST(xr, xi, yr, yi, base + c, ist, base + c, ost, twr, twi, off)
        return
    for p in range(m):
        t = off + 2 * p
        for q in range(s):
            i0 = (q + s * p) * W
            o0 = (q + s * 3 * p) * W
            for c in range(0, W, vector_lanes(xr)):
                _B3(xr, xi, yr, yi, i0 + c, ist, o0 + c, ost, twr, twi, t)


_B4 = stage_block(4, True)
_B4_LAST = stage_block(4, False)
_B4_MID = stage_block(4, "lanes")


@njit(cache=True)
def _simd4(xr, xi, yr, yi, l, s, W, twr, twi, off, midr, midi, fuse):
    m = l // 4
    ist = s * m * W
    ost = s * W
    if m == 1:
        for q in range(s):
            base = q * W
            for c in range(0, W, vector_lanes(xr)):
                if fuse:
                    _B4_MID(xr, xi, yr, yi, base + c, ist, base + c, ost, midr, midi, 0)
                else:
                    _B4_LAST(xr, xi, yr, yi, base + c, ist, base + c, ost, twr, twi, off)
        return
    for p in range(m):
        t = off + 3 * p
        for q in range(s):
            i0 = (q + s * p) * W
            o0 = (q + s * 4 * p) * W
            for c in range(0, W, vector_lanes(xr)):
                _B4(xr, xi, yr, yi, i0 + c, ist, o0 + c, ost, twr, twi, t)


_B5 = stage_block(5, True)
_B5_LAST = stage_block(5, False)
_B5_MID = stage_block(5, "lanes")


@njit(cache=True)
def _simd5(xr, xi, yr, yi, l, s, W, twr, twi, off, midr, midi, fuse):
    m = l // 5
    ist = s * m * W
    ost = s * W
    if m == 1:
        for q in range(s):
            base = q * W
            for c in range(0, W, vector_lanes(xr)):
                if fuse:
                    _B5_MID(xr, xi, yr, yi, base + c, ist, base + c, ost, midr, midi, 0)
                else:
                    _B5_LAST(xr, xi, yr, yi, base + c, ist, base + c, ost, twr, twi, off)
        return
    for p in range(m):
        t = off + 4 * p
        for q in range(s):
            i0 = (q + s * p) * W
            o0 = (q + s * 5 * p) * W
            for c in range(0, W, vector_lanes(xr)):
                _B5(xr, xi, yr, yi, i0 + c, ist, o0 + c, ost, twr, twi, t)


_B8 = stage_block(8, True)
_B8_LAST = stage_block(8, False)
_B8_MID = stage_block(8, "lanes")


@njit(cache=True)
def _simd8(xr, xi, yr, yi, l, s, W, twr, twi, off, midr, midi, fuse):
    m = l // 8
    ist = s * m * W
    ost = s * W
    if m == 1:
        for q in range(s):
            base = q * W
            for c in range(0, W, vector_lanes(xr)):
                if fuse:
                    _B8_MID(xr, xi, yr, yi, base + c, ist, base + c, ost, midr, midi, 0)
                else:
                    _B8_LAST(xr, xi, yr, yi, base + c, ist, base + c, ost, twr, twi, off)
        return
    for p in range(m):
        t = off + 7 * p
        for q in range(s):
            i0 = (q + s * p) * W
            o0 = (q + s * 8 * p) * W
            for c in range(0, W, vector_lanes(xr)):
                _B8(xr, xi, yr, yi, i0 + c, ist, o0 + c, ost, twr, twi, t)


@njit(cache=True, fastmath=_FM)
def _columns(ar, ai, br, bi, n, W, radices, twr, twi, offs, midr, midi, fuse):
    """Transform the ``W`` columns of the ``(n, W)`` split tile in ``(ar, ai)`` (flat planes);
    return 0 when the result is in ``(ar, ai)`` and 1 when it is in ``(br, bi)``. Whole vector
    blocks go through the SIMD butterflies; other widths through the loop-vectorized ones (no
    radix 8 there: :func:`factor` gives one only for whole-block widths). ``fuse`` (whole
    blocks only): the last stage also multiplies by the tile-shaped twiddles ``midr, midi``."""
    simd = W % vector_lanes(ar) == 0
    ar2 = ar[: n * W].reshape((n, W))
    ai2 = ai[: n * W].reshape((n, W))
    br2 = br[: n * W].reshape((n, W))
    bi2 = bi[: n * W].reshape((n, W))
    l = n
    s = 1
    side = 0
    for t in range(radices.shape[0]):
        r = radices[t]
        if side == 0:
            xr, xi, yr, yi = ar, ai, br, bi
            xr2, xi2, yr2, yi2 = ar2, ai2, br2, bi2
        else:
            xr, xi, yr, yi = br, bi, ar, ai
            xr2, xi2, yr2, yi2 = br2, bi2, ar2, ai2
        if simd:
            if r == 8:
                _simd8(xr, xi, yr, yi, l, s, W, twr, twi, offs[t], midr, midi, fuse)
            elif r == 4:
                _simd4(xr, xi, yr, yi, l, s, W, twr, twi, offs[t], midr, midi, fuse)
            elif r == 2:
                _simd2(xr, xi, yr, yi, l, s, W, twr, twi, offs[t], midr, midi, fuse)
            elif r == 3:
                _simd3(xr, xi, yr, yi, l, s, W, twr, twi, offs[t], midr, midi, fuse)
            else:
                _simd5(xr, xi, yr, yi, l, s, W, twr, twi, offs[t], midr, midi, fuse)
        elif r == 4:
            _radix4(xr2, xi2, yr2, yi2, l, s, W, twr, twi, offs[t])
        elif r == 2:
            _radix2(xr2, xi2, yr2, yi2, l, s, W, twr, twi, offs[t])
        elif r == 3:
            _radix3(xr2, xi2, yr2, yi2, l, s, W, twr, twi, offs[t])
        else:
            _radix5(xr2, xi2, yr2, yi2, l, s, W, twr, twi, offs[t])
        side = 1 - side
        l //= r
        s *= r
    return side


# ------------------------------------------------------------------ complex transforms

@njit(cache=True)
def _scratch(size, dtype_like):
    """Four planes of ``size`` elements for a tile and its ping-pong partner: 64-byte aligned and
    1 KiB apart modulo 4 KiB. Planes whose addresses agree modulo 4 KiB map the rows a Stockham
    stage reads and writes together to the same L1 sets (and stall loads on 4K aliasing): the
    offsets made the column passes 1.4-2.3x faster (measured on the 2-core EPYC)."""
    item = dtype_like.itemsize
    g = 1024 // item
    stride = size + g
    stride += (-stride * item % 4096) // item + g  # stride = g (mod 4 KiB), whole lines
    buf = np.empty(4 * stride + 64 // item, dtype=dtype_like.dtype)
    base = (-buf.ctypes.data % 64) // item
    return (buf[base:base + size], buf[base + stride:base + stride + size],
            buf[base + 2 * stride:base + 2 * stride + size],
            buf[base + 3 * stride:base + 3 * stride + size])


@njit(cache=True)
def _transpose(src, dst, rows, cols):
    """``dst`` as ``(cols, rows)`` = the transpose of ``src`` as ``(rows, cols)`` (flat 1-D
    planes): square blocks of one vector register's lanes transposed in registers
    (:func:`structlin._cpu._simd.transpose_block`), the edges element by element."""
    B = transpose_side(src)
    r16 = rows - rows % B
    c16 = cols - cols % B
    for r0 in range(0, r16, B):
        for c0 in range(0, c16, B):
            transpose_block(src, r0 * cols + c0, cols, dst, c0 * rows + r0, rows)
    for r in range(rows):
        c_start = c16 if r < r16 else 0
        for c in range(c_start, cols):
            dst[c * rows + r] = src[r * cols + c]


@njit(cache=True, fastmath=_FM)
def _twiddle(ar, ai, wr, wi):
    for t in range(ar.shape[0]):
        vr = ar[t]
        vi = ai[t]
        ar[t] = wr[t] * vr - wi[t] * vi
        ai[t] = wr[t] * vi + wi[t] * vr



# Modes of a row: what the load pass reads and what the store pass writes.
C2C, R2C, C2R = 0, 1, 2


@njit(cache=True, fastmath=_FM)
def _load_pairs(xrow, pr, pi, sign):
    """Split the interleaved (re, im) pairs of ``xrow`` into the planes, conjugated when
    ``sign`` is -1 (the inverse transform as ``conj(F(conj(z)))``); a row shorter than the
    planes is zero-padded here (no padded copy). A real row of even length read as pairs is the
    complex half-length row the real transform starts from."""
    h = pr.shape[0]
    m = min(h, xrow.shape[0] // 2)
    for j in range(m):
        pr[j] = xrow[2 * j]
        pi[j] = sign * xrow[2 * j + 1]
    if m < h:
        if 2 * m < xrow.shape[0]:
            pr[m] = xrow[2 * m]
            pi[m] = 0.0
            m += 1
        for j in range(m, h):
            pr[j] = 0.0
            pi[j] = 0.0


@njit(cache=True, fastmath=_FM)
def _load_c2r(Xrow, pr, pi, wr, wi):
    """The half-length spectrum of a Hermitian row ``X`` (``h + 1`` pairs; ``h = len(pr)``),
    conjugated for the inverse: ``Z[k] = (X[k] + conj X[h-k]) + i conj(w^k) (X[k] - conj X[h-k])``
    with ``w = e^(-2 pi i / 2h)``, so that the unnormalized inverse transform of ``Z`` is ``2h``
    times the real row read as (even, odd) pairs. The imaginary parts of ``X[0]`` and ``X[h]``
    are ignored, as by pocketfft. Whole vectors of ``k`` go through
    :func:`structlin._cpu._simd_fft.c2r_pre_block`."""
    h = pr.shape[0]
    L = vector_lanes(pr)
    nb = (h - 1) // L if h > L else 0
    for blk in range(nb):
        c2r_pre_block(Xrow, pr, pi, wr, wi, 1 + blk * L)
    _c2r_scalar(Xrow, pr, pi, wr, wi, 0, 1)
    _c2r_scalar(Xrow, pr, pi, wr, wi, 1 + nb * L, h)


@njit(cache=True, fastmath=_FM)
def _c2r_scalar(Xrow, pr, pi, wr, wi, k0, k1):
    h = pr.shape[0]
    for k in range(k0, k1):
        ar = Xrow[2 * k]
        ai = Xrow[2 * k + 1]
        br = Xrow[2 * (h - k)]
        bi = -Xrow[2 * (h - k) + 1]
        if k == 0:
            ai = 0.0
            bi = 0.0
        er = ar + br
        ei = ai + bi
        dr = ar - br
        di = ai - bi
        tr = wr[k] * dr + wi[k] * di
        ti = wr[k] * di - wi[k] * dr
        pr[k] = er - ti
        pi[k] = -(ei + tr)


@njit(cache=True, fastmath=_FM)
def _store_pairs(orow, pr, pi, sign, scale):
    """Interleave the planes into ``orow`` times ``scale`` (the imaginary parts times ``sign``:
    the inverse's final conjugation); the normalization costs no pass of its own."""
    si = sign * scale
    for j in range(pr.shape[0]):
        orow[2 * j] = scale * pr[j]
        orow[2 * j + 1] = si * pi[j]


@njit(cache=True, fastmath=_FM)
def _store_r2c(orow, pr, pi, wr, wi):
    """The ``h + 1`` non-negative frequencies of the real row from the transform ``Z`` of its
    (even, odd) pairs (``h = len(pr)``): ``X[k] = E[k] + w^k O[k]`` with
    ``E = (Z[k] + conj Z[h-k]) / 2``, ``O = (Z[k] - conj Z[h-k]) / 2i``, ``Z[h] = Z[0]``. Whole
    vectors of ``k`` go through :func:`structlin._cpu._simd_fft.r2c_post_block`."""
    h = pr.shape[0]
    L = vector_lanes(pr)
    nb = (h - 1) // L if h > L else 0
    for blk in range(nb):
        r2c_post_block(orow, pr, pi, wr, wi, 1 + blk * L)
    _r2c_scalar(orow, pr, pi, wr, wi, 0, 1)
    _r2c_scalar(orow, pr, pi, wr, wi, 1 + nb * L, h + 1)


@njit(cache=True, fastmath=_FM)
def _r2c_scalar(orow, pr, pi, wr, wi, k0, k1):
    h = pr.shape[0]
    for k in range(k0, k1):
        j = h - k if k else 0
        kk = k if k < h else 0
        ar = pr[kk]
        ai = pi[kk]
        br = pr[j]
        bi = -pi[j]
        er = 0.5 * (ar + br)
        ei = 0.5 * (ai + bi)
        o_r = 0.5 * (ai - bi)
        o_i = -0.5 * (ar - br)
        orow[2 * k] = er + wr[k] * o_r - wi[k] * o_i
        orow[2 * k + 1] = ei + wr[k] * o_i + wi[k] * o_r


@njit(cache=True, fastmath=_FM)
def _long_core(ar, ai, br, bi, P):
    """The four-step transform of the row in planes ``(ar, ai)``; returns the planes holding it."""
    n1, n2, rad1, tw1r, tw1i, off1, rad2, tw2r, tw2i, off2, midr, midi = P
    # whole-block columns: the four-step twiddles ride on the first pass's last stage
    fused = n2 % vector_lanes(ar) == 0
    side = _columns(ar, ai, br, bi, n1, n2, rad1, tw1r, tw1i, off1, midr, midi, fused)
    if side == 0:
        sr, si, dr, di = ar, ai, br, bi
    else:
        sr, si, dr, di = br, bi, ar, ai
    if not fused:
        _twiddle(sr, si, midr, midi)
    _transpose(sr, dr, n1, n2)
    _transpose(si, di, n1, n2)
    side = _columns(dr, di, sr, si, n2, n1, rad2, tw2r, tw2i, off2, midr, midi, False)
    if side == 0:
        return dr, di
    return sr, si


@njit(cache=True, fastmath=_FM, nogil=True)
def _long_rows(x, out, r0, r1, mode, sign, scale, P, rtwr, rtwi):
    n = P[0] * P[1]
    ar, ai, br, bi = _scratch(n, P[3])
    for row in range(r0, r1):
        if mode == C2R:
            _load_c2r(x[row], ar, ai, rtwr, rtwi)
        else:
            _load_pairs(x[row], ar, ai, sign)
        fr, fi = _long_core(ar, ai, br, bi, P)
        if mode == R2C:
            _store_r2c(out[row], fr, fi, rtwr, rtwi)
        else:
            _store_pairs(out[row], fr, fi, sign, scale)


@njit(cache=True, parallel=True)
def long_rows(x, out, mode, sign, scale, P, rtwr, rtwi, nchunks):
    """Rows of ``x`` (floats: complex pairs, real rows, or Hermitian half spectra by ``mode``)
    transformed by the four-step scheme into ``out`` (floats), in ``nchunks`` parallel chunks."""
    b = x.shape[0]
    per = (b + nchunks - 1) // nchunks
    for ch in prange(nchunks):
        r0 = ch * per
        r1 = min(b, r0 + per)
        if r0 < r1:
            _long_rows(x, out, r0, r1, mode, sign, scale, P, rtwr, rtwi)


@njit(cache=True, fastmath=_FM, nogil=True)
def _short_blocks(x, out, k0, k1, mode, sign, scale, rad, twr, twi, off, rtwr, rtwi):
    b = x.shape[0]
    n = rad_length(rad)
    R = LANES_ROWS
    tr = np.zeros(n * R, dtype=twr.dtype)
    ti = np.zeros(n * R, dtype=twr.dtype)
    ar, ai, br, bi = _scratch(n * R, twr)
    for blk in range(k0, k1):
        r0 = blk * R
        nr = min(R, b - r0)
        for k in range(nr):
            pr = tr[k * n:(k + 1) * n]
            pi = ti[k * n:(k + 1) * n]
            if mode == C2R:
                _load_c2r(x[r0 + k], pr, pi, rtwr, rtwi)
            else:
                _load_pairs(x[r0 + k], pr, pi, sign)
        _transpose(tr, ar, R, n)
        _transpose(ti, ai, R, n)
        side = _columns(ar, ai, br, bi, n, R, rad, twr, twi, off, twr, twi, False)
        if side == 0:
            _transpose(ar, tr, n, R)
            _transpose(ai, ti, n, R)
        else:
            _transpose(br, tr, n, R)
            _transpose(bi, ti, n, R)
        for k in range(nr):
            pr = tr[k * n:(k + 1) * n]
            pi = ti[k * n:(k + 1) * n]
            if mode == R2C:
                _store_r2c(out[r0 + k], pr, pi, rtwr, rtwi)
            else:
                _store_pairs(out[r0 + k], pr, pi, sign, scale)


@njit(cache=True, inline="always")
def rad_length(rad):
    n = 1
    for r in rad:
        n *= r
    return n


@njit(cache=True, parallel=True)
def short_rows(x, out, mode, sign, scale, rad, twr, twi, off, rtwr, rtwi, nchunks):
    """Rows of length ``n <= SHORT``: ``R`` rows at a time transposed into an ``(n, R)`` tile,
    one column transform for all of them (``x``, ``out`` as in :func:`long_rows`)."""
    b = x.shape[0]
    R = LANES_ROWS
    nblocks = (b + R - 1) // R
    per = (nblocks + nchunks - 1) // nchunks
    for ch in prange(nchunks):
        k0 = ch * per
        k1 = min(nblocks, k0 + per)
        if k0 < k1:
            _short_blocks(x, out, k0, k1, mode, sign, scale, rad, twr, twi, off, rtwr, rtwi)


# ------------------------------------------------------------------ entry points (the engine's API)

def _chunks(rows: int) -> int:
    import numba

    return max(1, min(rows, 4 * numba.get_num_threads()))


def _run(x2: np.ndarray, out2: np.ndarray, h: int, mode: int, sign: float, n_real: int,
         force_serial: bool = False, scale: float = 1.0) -> None:
    """Transform the rows of the float views ``x2`` into ``out2``: complex length ``h``.

    Below :data:`structlin._cpu._schedule.SERIAL_ELEMENTS` elements, or with one Numba thread,
    the serial kernels run on the calling thread (no parallel launch, no thread-count change:
    they release the GIL, so callers may run them from several threads)."""
    import numba

    from structlin._cpu._schedule import SERIAL_ELEMENTS, threads_for

    b = x2.shape[0]
    if b == 0:
        return
    p = plan(h, x2.dtype.str)
    rtw = p.mid if mode == C2C else real_twiddles(n_real, x2.dtype.str)
    serial = force_serial or x2.size < SERIAL_ELEMENTS or numba.get_num_threads() == 1
    if p.short:
        args = (mode, sign, scale, p.rad1, p.tw1[0], p.tw1[1], p.tw1[2], rtw[0], rtw[1])
        nblocks = (b + LANES_ROWS - 1) // LANES_ROWS
        if serial:
            _short_blocks(x2, out2, 0, nblocks, *args)
            return
        with threads_for(x2.size):
            short_rows(x2, out2, *args, _chunks(nblocks))
        return
    P = p.packed
    if serial:
        _long_rows(x2, out2, 0, b, mode, sign, scale, P, rtw[0], rtw[1])
        return
    with threads_for(x2.size):
        long_rows(x2, out2, mode, sign, scale, P, rtw[0], rtw[1], _chunks(b))


@functools.lru_cache(maxsize=64)
def real_twiddles(n: int, dtype_str: str) -> tuple[np.ndarray, np.ndarray]:
    """``w^k = e^(-2 pi i k / n)`` for ``k = 0 .. n/2`` (the real transforms' split/merge)."""
    w = np.exp(-2j * np.pi * np.arange(n // 2 + 1) / n)
    f = np.dtype(dtype_str)
    return w.real.astype(f), w.imag.astype(f)


def c2c(x: np.ndarray, inverse: bool = False, out: np.ndarray | None = None,
        scale: float = 1.0) -> np.ndarray:
    """Unnormalized complex DFT of each row of ``x`` (2-D, C-contiguous, complex64/complex128,
    5-smooth length): ``sum_j x[j] e^(-+2 pi i j k / n)`` (``-`` forward, ``+`` inverse).
    ``out`` may be ``x`` itself (in place: each row is read into the tile before it is
    written). The result is multiplied by ``scale`` in the store pass (a normalization at no
    extra pass)."""
    n = x.shape[1]
    if out is None:
        out = np.empty_like(x)
    f = x.real.dtype
    _run(x.view(f), out.view(f), n, C2C, -1.0 if inverse else 1.0, 0, scale=scale)
    return out


def r2c(x: np.ndarray) -> np.ndarray:
    """Unnormalized real-input DFT of each row of ``x`` (2-D, C-contiguous, float32/float64,
    even 5-smooth length ``n``): the ``n // 2 + 1`` non-negative frequencies."""
    b, n = x.shape
    out = np.empty((b, n // 2 + 1), dtype=np.result_type(x.dtype, np.complex64))
    _run(x, out.view(x.dtype), n // 2, R2C, 1.0, n)
    return out


def c2r(X: np.ndarray, n: int, scale: float = 1.0) -> np.ndarray:
    """Unnormalized inverse of :func:`r2c`: ``sum_k X[k] e^(+2 pi i j k / n)`` over the full
    Hermitian spectrum (``n`` times ``numpy.fft.irfft``); the imaginary parts of ``X[:, 0]``
    and ``X[:, n // 2]`` are ignored. The result is multiplied by ``scale`` in the store pass."""
    f = X.real.dtype
    out = np.empty((X.shape[0], n), dtype=f)
    _run(X.view(f), out, n // 2, C2R, -1.0, n, scale=scale)
    return out


# ------------------------------------------------------------------ helpers for fused callers

def next_smooth(n: int, even: bool = False) -> int:
    """The smallest 5-smooth integer ``>= n`` (even when ``even``): a length the engine runs
    directly (``even``: a real transform's length)."""
    m = max(1, int(n))
    while True:
        if is_smooth(m) and (not even or m % 2 == 0):
            return m
        m += 1


def is_fast(n: int) -> bool:
    """Whether a length runs entirely on the SIMD butterflies: 5-smooth, and either short
    (rows as lanes) or with a four-step split whose factors are whole SIMD blocks."""
    if not is_smooth(n):
        return False
    if n <= SHORT:
        return True
    n1, n2 = _split(n)
    return n1 % _BLOCK == 0 and n2 % _BLOCK == 0


def fast_length(m: int) -> int:
    """The smallest :func:`is_fast` length ``>= m`` (a power of two at most: for lengths the
    caller may choose, e.g. Bluestein's convolution: 1080 = 24 x 45 runs the scalar
    butterflies, 1280 = 16 x 80 the SIMD ones)."""
    m = max(1, int(m))
    cap = 1 << (m - 1).bit_length()
    while m < cap and not is_fast(m):
        m = next_smooth(m + 1)
    return min(m, cap)


def rows(x: np.ndarray, n: int, inverse: bool, serial: bool = False,
         overwrite: bool = False) -> np.ndarray:
    """Unnormalized transforms of length ``n`` of the rows of ``x`` (2-D C-contiguous),
    zero-padded from ``x.shape[1] <= n``: real ``x`` -> ``r2c``; complex ``x`` and not
    ``inverse`` -> forward ``c2c``; complex ``x`` and ``inverse`` -> inverse ``c2c``. For the
    fused callers' paths that run from several Python threads (``serial``: no parallel launch).
    ``overwrite``: a complex ``x`` of length ``n`` is transformed in place (each row is read
    into the tile before it is written back)."""
    b = x.shape[0]
    if x.shape[1] > n:
        raise ValueError(f"rows of length {x.shape[1]} are longer than the transform ({n})")
    if x.dtype.kind == "f":
        out = np.empty((b, n // 2 + 1), dtype=np.result_type(x.dtype, np.complex64))
        _run(x, out.view(x.dtype), n // 2, R2C, 1.0, n, serial)
        return out
    in_place = overwrite and x.shape[1] == n
    out = x if in_place else np.empty((b, n), dtype=x.dtype)
    f = x.real.dtype
    _run(x.view(f), out.view(f), n, C2C, -1.0 if inverse else 1.0, 0, serial)
    return out


def real_rows(X: np.ndarray, n: int, serial: bool = False) -> np.ndarray:
    """:func:`c2r` with the ``serial`` switch of :func:`rows`."""
    f = X.real.dtype
    out = np.empty((X.shape[0], n), dtype=f)
    _run(np.ascontiguousarray(X).view(f), out, n // 2, C2R, -1.0, n, serial)
    return out
