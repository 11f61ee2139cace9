"""Numba kernels for the butterfly multiply and its VJP.

Contract (shared with ``structlin.gpu.butterfly``): ``tw`` is C-contiguous
``(L, n//2, 2, 2)`` with the dtype of ``x``; ``x`` is C-contiguous ``(batch, n)``.
``apply`` returns ``F_{L-1} ... F_0 x`` (``increasing``) or ``F_0 ... F_{L-1} x``;
``apply_vjp`` returns ``(gtw, gx)`` with ``gx = M^H g`` and
``gtw[k, j, r, c] = sum_batch h_r * conj(u_c)`` (``u``: the pair entering factor ``k``,
``h``: the gradient leaving it).

The twiddle is split into four planar ``(L, n//2)`` arrays so that consecutive pairs read
consecutive twiddles: the innermost loops then vectorize (AVX2/AVX-512) for every factor whose
stride is at least a SIMD width. Work is scheduled in cache-sized passes
(:mod:`structlin._cpu._schedule`), parallel over chunks of (row, tile).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from structlin._cpu._schedule import (
    column_tile,
    n_chunks,
    plan_passes,
    row_tile,
    serial_when_small,
)
from structlin._cpu._simd import (
    butterfly_block,
    butterfly_block_vjp,
    butterfly_spaced_block,
    butterfly_spaced_block_vjp,
    lane_shift,
)

__all__ = ["apply", "apply_vjp", "gather_last"]


@njit(cache=True, inline="always")
def _gather(buf, xr, base, S, c0, m, W):
    for t in range(m):
        off = base + t * S + c0
        for w in range(W):
            buf[t * W + w] = xr[off + w]


@njit(cache=True, inline="always")
def _scatter(buf, yr, base, S, c0, m, W):
    for t in range(m):
        off = base + t * S + c0
        for w in range(W):
            yr[off + w] = buf[t * W + w]


@njit(cache=True, inline="always")
def _pair(b0, b1, w00, w01, w10, w11):
    # b0 and b1 are separate views with a runtime length: LLVM's loop vectorizer can then
    # prove (with a runtime check) that they do not overlap and emits full-width SIMD
    for r in range(b0.shape[0]):
        u0 = b0[r]
        u1 = b1[r]
        b0[r] = w00 * u0 + w01 * u1
        b1[r] = w10 * u0 + w11 * u1


@njit(cache=True, inline="always", fastmath={"contract"})
def _level(buf, r00, r01, r10, r11, h, k0, k1, l, W, S, c0):
    """Apply factor ``k0 + l`` to a gathered tile ``buf`` of shape ``(m * W,)``."""
    m = 1 << (k1 - k0)
    k = k0 + l
    sl = 1 << l
    for a in range(m >> (l + 1)):
        jb = (((h << (k1 - k - 1)) + a) << k) + c0
        ib = a * 2 * sl * W
        if W == 1:
            # pairs and twiddles both run contiguously over cp
            b0 = buf[ib : ib + sl]
            b1 = buf[ib + sl : ib + 2 * sl]
            for cp in range(sl):
                j = jb + cp
                u0 = b0[cp]
                u1 = b1[cp]
                b0[cp] = r00[j] * u0 + r01[j] * u1
                b1[cp] = r10[j] * u0 + r11[j] * u1
        else:
            for cp in range(sl):
                jr = jb + cp * S
                p0 = ib + cp * W
                p1 = p0 + sl * W
                b0 = buf[p0 : p0 + W]
                b1 = buf[p1 : p1 + W]
                for w in range(W):
                    j = jr + w
                    u0 = b0[w]
                    u1 = b1[w]
                    b0[w] = r00[j] * u0 + r01[j] * u1
                    b1[w] = r10[j] * u0 + r11[j] * u1


@njit(cache=True, parallel=True, fastmath={"contract"})
def _pass(xin, xout, t00, t01, t10, t11, k0, k1, W, increasing, nchunk):
    b, n = xin.shape
    m = 1 << (k1 - k0)
    S = 1 << k0
    nh = n >> k1
    nc = S // W
    per_row = nh * nc
    n_tiles = b * per_row
    nl = k1 - k0
    for ci in prange(nchunk):
        buf = np.empty(m * W, dtype=xin.dtype)
        lo = ci * n_tiles // nchunk
        hi = (ci + 1) * n_tiles // nchunk
        for tile in range(lo, hi):
            row, h, c0, base = column_tile(tile, per_row, nc, W, k1)
            _gather(buf, xin[row], base, S, c0, m, W)
            for li in range(nl):
                l = li if increasing else nl - 1 - li
                k = k0 + l
                _level(buf, t00[k], t01[k], t10[k], t11[k], h, k0, k1, l, W, S, c0)
            _scatter(buf, xout[row], base, S, c0, m, W)


#: vectors of 16 lanes per contiguous register block: levels 0 .. BLOCK_LEVELS-1 of real data are
#: applied in registers on blocks of 16 * NV consecutive elements (explicit SIMD, ``_simd``)
NV = 4
BLOCK_LEVELS = (16 * NV).bit_length() - 1
_BLOCK_INC = butterfly_block(NV, True)
_BLOCK_DEC = butterfly_block(NV, False)
_S2I, _S4I, _S8I, _S16I = (butterfly_spaced_block(v, True) for v in (2, 4, 8, 16))
_S2D, _S4D, _S8D, _S16D = (butterfly_spaced_block(v, False) for v in (2, 4, 8, 16))


@njit(cache=True)
def lane_coefficients(t00, t01, t10, t11):
    """Per-element coefficients ``(A, B)``, each of shape ``(L, n)``: level ``k`` computes
    ``y[i] = A[k, i] x[i] + B[k, i] x[i ^ 2**k]``."""
    L, nh = t00.shape
    n = 2 * nh
    A = np.empty((L, n), dtype=t00.dtype)
    B = np.empty((L, n), dtype=t00.dtype)
    for k in range(L):
        s = 1 << k
        for i in range(n):
            j = ((i >> (k + 1)) << k) + (i & (s - 1))
            if i & s:
                A[k, i] = t11[k, j]
                B[k, i] = t10[k, j]
            else:
                A[k, i] = t00[k, j]
                B[k, i] = t01[k, j]
    return A, B


@njit(cache=True, inline="always")
def _spaced(xs, s0, xd, d0, nr, base, m, k0, nl, coefs, increasing):
    """Levels ``k0 .. k0+nl-1`` (``nl <= 4``) of the segments ``base .. base+m`` of the rows
    ``xs[s0 : s0+nr]``, written to ``xd[d0 : d0+nr]``: 16 lanes x ``2**nl`` vectors at a time,
    rows innermost so that the block's coefficients stay in L1 across the rows."""
    D = 1 << (k0 + lane_shift(coefs))  # the stride in lanes: complex elements take two
    span = D << nl
    for hb in range(base, base + m, span):
        for c0 in range(hb, hb + D, 16):
            for r in range(nr):
                src = xs[s0 + r]
                dst = xd[d0 + r]
                if increasing:
                    if nl == 1:
                        _S2I(src, dst, c0, D, k0, coefs)
                    elif nl == 2:
                        _S4I(src, dst, c0, D, k0, coefs)
                    elif nl == 3:
                        _S8I(src, dst, c0, D, k0, coefs)
                    else:
                        _S16I(src, dst, c0, D, k0, coefs)
                else:
                    if nl == 1:
                        _S2D(src, dst, c0, D, k0, coefs)
                    elif nl == 2:
                        _S4D(src, dst, c0, D, k0, coefs)
                    elif nl == 3:
                        _S8D(src, dst, c0, D, k0, coefs)
                    else:
                        _S16D(src, dst, c0, D, k0, coefs)


@njit(cache=True, inline="always")
def _contiguous(xs, s0, xd, d0, nr, base, m, coefs, increasing):
    """The register-block levels of the segments ``base .. base+m`` of the rows
    ``xs[s0 : s0+nr]``, written to ``xd[d0 : d0+nr]``."""
    for g in range(base, base + m, 16 * NV):
        for r in range(nr):
            if increasing:
                _BLOCK_INC(xs[s0 + r], xd[d0 + r], g, coefs)
            else:
                _BLOCK_DEC(xs[s0 + r], xd[d0 + r], g, coefs)


@njit(cache=True, parallel=True)
def _pass_segments(xin, xout, coefs, k1, increasing, rows, nchunk):
    """First pass (factors ``0 .. k1-1``) on contiguous row segments, entirely in registers:
    contiguous blocks of 16 * NV lanes for the low levels, then groups of up to four levels on
    vectors spaced by the group's lowest stride. A tile is ``rows`` rows of one segment (kept
    in L2), swept block by block so that each block's coefficients are loaded from memory once
    per tile. Rows are real, or complex viewed as interleaved floats (complex coefficients,
    each element two lanes)."""
    b, nf = xin.shape
    shift = lane_shift(coefs)
    kb = BLOCK_LEVELS - shift
    m = 1 << (k1 + shift)
    nh = nf // m
    n_rt = (b + rows - 1) // rows
    n_tiles = n_rt * nh
    for ci in prange(nchunk):
        lo = ci * n_tiles // nchunk
        hi = (ci + 1) * n_tiles // nchunk
        for tile in range(lo, hi):
            rt = tile // nh
            base = (tile - rt * nh) * m
            r0 = rt * rows
            r1 = min(b, r0 + rows)
            if increasing:
                _contiguous(xin, r0, xout, r0, r1 - r0, base, m, coefs, True)
                k0 = kb
                while k0 < k1:
                    nl = min(4, k1 - k0)
                    _spaced(xout, r0, xout, r0, r1 - r0, base, m, k0, nl, coefs, True)
                    k0 += nl
            elif k1 == kb:
                _contiguous(xin, r0, xout, r0, r1 - r0, base, m, coefs, False)
            else:
                # copy the tile first: the spaced groups read 16 strided lines at a time,
                # which the hardware prefetcher serves well from cache but not from memory
                for r in range(r0, r1):
                    xout[r][base : base + m] = xin[r][base : base + m]
                k1r = k1
                while k1r > kb:
                    nl = min(4, k1r - kb)
                    _spaced(xout, r0, xout, r0, r1 - r0, base, m, k1r - nl, nl, coefs, False)
                    k1r -= nl
                _contiguous(xout, r0, xout, r0, r1 - r0, base, m, coefs, False)


_BLOCK_INC_VJP = butterfly_block_vjp(NV, True)
_BLOCK_DEC_VJP = butterfly_block_vjp(NV, False)
_V2I, _V4I, _V8I, _V16I = (butterfly_spaced_block_vjp(v, True) for v in (2, 4, 8, 16))
_V2D, _V4D, _V8D, _V16D = (butterfly_spaced_block_vjp(v, False) for v in (2, 4, 8, 16))


@njit(cache=True)
def _row_groups(L, kb, increasing):
    """The level groups of a whole-row register pass in the order they are applied:
    ``(k0, nl)`` with ``nl = 0`` for the contiguous block levels ``0 .. kb-1`` and ``nl <= 4``
    spaced levels ``k0 .. k0+nl-1`` otherwise (the same grouping as :func:`_pass_segments`)."""
    n_groups = 1 + (L - kb + 3) // 4
    k0s = np.empty(n_groups, np.int64)
    nls = np.empty(n_groups, np.int64)
    if increasing:
        k0s[0] = 0
        nls[0] = 0
        k0 = kb
        for gi in range(1, n_groups):
            nls[gi] = min(4, L - k0)
            k0s[gi] = k0
            k0 += nls[gi]
    else:
        k1 = L
        for gi in range(n_groups - 1):
            nls[gi] = min(4, k1 - kb)
            k0s[gi] = k1 - nls[gi]
            k1 -= nls[gi]
        k0s[n_groups - 1] = 0
        nls[n_groups - 1] = 0
    return k0s, nls


# The two group functions are compiled and called, not inlined: an inlined group copies its
# register-block kernels into every call site, and the VJP had six (76 s of compilation per
# dtype). Their callers (here and :mod:`structlin._cpu.kaleidoscope`) keep to one signature so
# that each is compiled once per dtype and direction: row slices (never literal offsets, which
# Numba would compile again for each constant) and a literal ``increasing``, which leaves one
# direction's kernels in each compilation. A call per group and tile costs nothing next to the
# group's work.
@njit(cache=True)
def _group_forward(src, dst, nr, k0, nl, coefs, increasing):
    """One level group (see :func:`_row_groups`) of the whole rows ``src[:nr]``, written to
    ``dst[:nr]``."""
    nf = src.shape[1]
    if nl == 0:
        _contiguous(src, 0, dst, 0, nr, 0, nf, coefs, increasing)
    else:
        _spaced(src, 0, dst, 0, nr, 0, nf, k0, nl, coefs, increasing)


@njit(cache=True)
def _group_vjp(u, g, gd, nr, k0, nl, coefs, gacc, increasing):
    """Backward through one level group of the rows ``u[:nr]`` (its inputs) with the output
    gradients ``g[:nr]``; input gradients to ``gd[:nr]`` (which may be ``g``)."""
    nf = u.shape[1]
    if nl == 0:
        for p in range(0, nf, 16 * NV):
            for r in range(nr):
                if increasing:
                    _BLOCK_INC_VJP(u[r], g[r], gd[r], p, coefs, gacc)
                else:
                    _BLOCK_DEC_VJP(u[r], g[r], gd[r], p, coefs, gacc)
        return
    D = 1 << (k0 + lane_shift(coefs))
    for hb in range(0, nf, D << nl):
        for c0 in range(hb, hb + D, 16):
            for r in range(nr):
                x = u[r]
                h = g[r]
                y = gd[r]
                if increasing:
                    if nl == 1:
                        _V2I(x, h, y, c0, D, k0, coefs, gacc)
                    elif nl == 2:
                        _V4I(x, h, y, c0, D, k0, coefs, gacc)
                    elif nl == 3:
                        _V8I(x, h, y, c0, D, k0, coefs, gacc)
                    else:
                        _V16I(x, h, y, c0, D, k0, coefs, gacc)
                else:
                    if nl == 1:
                        _V2D(x, h, y, c0, D, k0, coefs, gacc)
                    elif nl == 2:
                        _V4D(x, h, y, c0, D, k0, coefs, gacc)
                    elif nl == 3:
                        _V8D(x, h, y, c0, D, k0, coefs, gacc)
                    else:
                        _V16D(x, h, y, c0, D, k0, coefs, gacc)


@njit(cache=True, inline="always")
def _tile_vjp(u, g, gd, nr, st, coefs, acc, k0s, nls, increasing):
    """Backward through every level group of the rows ``u[:nr]`` (a tile) with the output
    gradients ``g[:nr]``, input gradients to ``gd[:nr]`` (which may be ``g``): the inputs of the
    groups after the first are recomputed into ``st[0], st[1], ...``, then the groups are undone
    from the last. Shared with :mod:`structlin._cpu.kaleidoscope`; ``increasing`` is a literal."""
    last = k0s.shape[0] - 1
    if last == 0:
        _group_vjp(u, g, gd, nr, k0s[0], nls[0], coefs, acc, increasing)
        return
    _group_forward(u, st[0], nr, k0s[0], nls[0], coefs, increasing)
    for gi in range(1, last):
        _group_forward(st[gi - 1], st[gi], nr, k0s[gi], nls[gi], coefs, increasing)
    _group_vjp(st[last - 1], g, gd, nr, k0s[last], nls[last], coefs, acc, increasing)
    for gi in range(last - 1, 0, -1):
        _group_vjp(st[gi - 1], gd, gd, nr, k0s[gi], nls[gi], coefs, acc, increasing)
    _group_vjp(u, gd, gd, nr, k0s[0], nls[0], coefs, acc, increasing)


@njit(cache=True, parallel=True)
def _rows_vjp(xin, gout, gin, coefs, gacc, k0s, nls, rows, increasing):
    """Backward through every level of whole rows held in registers, ``rows`` rows per tile.

    A tile's forward group inputs are kept (one buffer per group after the first), then the
    groups are undone from the last: each block recomputes its levels' inputs in registers and
    adds its lane-coefficient gradients into this chunk's ``gacc[chunk] = (GA, GB)``, a vector
    at a time, so no reduction runs across lanes. Rows are real, or complex viewed as
    interleaved floats.
    """
    b, nf = xin.shape
    n_groups = k0s.shape[0]
    nchunk = gacc.shape[0]
    n_tiles = (b + rows - 1) // rows
    for ci in prange(nchunk):
        st = np.empty((max(1, n_groups - 1), rows, nf), dtype=xin.dtype)
        acc = (gacc[ci, 0], gacc[ci, 1])
        for tile in range(ci * n_tiles // nchunk, (ci + 1) * n_tiles // nchunk):
            r0 = tile * rows
            r1 = min(b, r0 + rows)
            u, g, gd = xin[r0:r1], gout[r0:r1], gin[r0:r1]
            if increasing:
                _tile_vjp(u, g, gd, r1 - r0, st, coefs, acc, k0s, nls, True)
            else:
                _tile_vjp(u, g, gd, r1 - r0, st, coefs, acc, k0s, nls, False)


@njit(cache=True)
def _lanes_to_twiddle(GA, GB):
    """Twiddle gradient ``(L, n//2, 2, 2)`` from lane-coefficient gradients (the adjoint of
    :func:`lane_coefficients`)."""
    L, n = GA.shape
    out = np.empty((L, n // 2, 2, 2), dtype=GA.dtype)
    for k in range(L):
        s = 1 << k
        for j in range(n // 2):
            i0 = ((j >> k) << (k + 1)) + (j & (s - 1))
            out[k, j, 0, 0] = GA[k, i0]
            out[k, j, 0, 1] = GB[k, i0]
            out[k, j, 1, 1] = GA[k, i0 + s]
            out[k, j, 1, 0] = GB[k, i0 + s]
    return out


def _apply_vjp_rows(t, x, g, increasing):
    """VJP of a product whose rows fit :data:`SEGMENT_BYTES`, every level in registers."""
    b, n = x.shape
    L = n.bit_length() - 1
    coefs = lane_coefficients(*t)
    gx = np.empty_like(g)
    if x.dtype.kind == "c":
        ft = x.real.dtype
        xf, gf, of = x.view(ft), g.view(ft), gx.view(ft)
    else:
        xf, gf, of = x, g, gx
    shift = 1 if x.dtype.kind == "c" else 0
    k0s, nls = _row_groups(L, BLOCK_LEVELS - shift, increasing)
    # the tile and its group inputs in L2; the chunks' gradients summed here
    rows = max(1, min(ROW_TILE_BYTES // (x.itemsize * n), -(-b // n_chunks(b))))
    nchunk = n_chunks(-(-b // rows))
    gacc = np.zeros((nchunk, 2, L, n), dtype=coefs[0].dtype)
    _rows_vjp(xf, gf, of, coefs, gacc, k0s, nls, rows, increasing)
    gl = gacc.sum(axis=0)
    return _lanes_to_twiddle(gl[0], gl[1]), gx


#: bytes of one transposed tile row: the first pass keeps ``ROW_BYTES // itemsize`` rows side
#: by side (64 float32), so the innermost loops run over several SIMD vectors and the runtime
#: overlap check that lets LLVM vectorize them is paid once per 256 bytes, not per vector
ROW_BYTES = 256
#: side of the square blocks in which rows are transposed into and out of a tile
BLOCK = 16


def rows_per_tile(itemsize: int) -> int:
    """Rows that the first pass transposes into one tile, for elements of ``itemsize`` bytes."""
    return max(BLOCK, ROW_BYTES // itemsize)


@njit(cache=True, inline="always")
def _load_rows(xin, buf, r0, nr, base, m):
    """``buf[t, r] = xin[r0 + r, base + t]``, in BLOCK x BLOCK blocks so that both the rows read
    and the tile lines written stay in L1 while a block is transposed."""
    for q0 in range(0, nr, BLOCK):
        q1 = min(q0 + BLOCK, nr)
        for t0 in range(0, m, BLOCK):
            t1 = min(t0 + BLOCK, m)
            for r in range(q0, q1):
                xr = xin[r0 + r]
                for t in range(t0, t1):
                    buf[t, r] = xr[base + t]


@njit(cache=True, inline="always")
def _store_rows(buf, xout, r0, nr, base, m):
    """``xout[r0 + r, base + t] = buf[t, r]`` (the inverse of :func:`_load_rows`)."""
    for q0 in range(0, nr, BLOCK):
        q1 = min(q0 + BLOCK, nr)
        for t0 in range(0, m, BLOCK):
            t1 = min(t0 + BLOCK, m)
            for r in range(q0, q1):
                yr = xout[r0 + r]
                for t in range(t0, t1):
                    yr[base + t] = buf[t, r]


@njit(cache=True, inline="always")
def _quad(v0, v1, v2, v3, a00, a01, a10, a11, b00, b01, b10, b11,
          c00, c01, c10, c11, d00, d01, d10, d11):
    """Two factors at once on four tile rows: blocks ``a`` on ``(v0, v1)`` and ``b`` on
    ``(v2, v3)``, then ``c`` on ``(v0, v2)`` and ``d`` on ``(v1, v3)``; each element is loaded
    and stored once for the two factors (radix 4)."""
    for r in range(v0.shape[0]):
        p = v0[r]
        q = v1[r]
        s = v2[r]
        t = v3[r]
        e = a00 * p + a01 * q
        f = a10 * p + a11 * q
        g = b00 * s + b01 * t
        h = b10 * s + b11 * t
        v0[r] = c00 * e + c01 * g
        v2[r] = c10 * e + c11 * g
        v1[r] = d00 * f + d01 * h
        v3[r] = d10 * f + d11 * h


@njit(cache=True, inline="always", fastmath={"contract"})
def _levels_rows(buf, t00, t01, t10, t11, k1, h, increasing):
    """Apply factors ``0 .. k1-1`` (in the given order) to a transposed tile ``buf (m, R)``
    holding elements ``h * 2**k1 + t`` of ``R`` rows, two factors per sweep where possible."""
    m = 1 << k1
    base = h << k1
    li = 0
    while li < k1:
        if li + 1 < k1:
            k = li if increasing else k1 - 2 - li
            sl = 1 << k
            for a in range(m >> (k + 2)):
                for cp in range(sl):
                    i0 = a * 4 * sl + cp
                    g = base + i0
                    # factor k pairs (i0, i0+sl) and (i0+2sl, i0+3sl); factor k+1 pairs
                    # (i0, i0+2sl) and (i0+sl, i0+3sl); block j = (g >> (k+1) << k) + g % 2**k
                    ja = ((g >> (k + 1)) << k) + cp
                    jb = ja + sl
                    jc = ((g >> (k + 2)) << (k + 1)) + cp
                    jd = jc + sl
                    if increasing:
                        _quad(buf[i0], buf[i0 + sl], buf[i0 + 2 * sl], buf[i0 + 3 * sl],
                              t00[k, ja], t01[k, ja], t10[k, ja], t11[k, ja],
                              t00[k, jb], t01[k, jb], t10[k, jb], t11[k, jb],
                              t00[k + 1, jc], t01[k + 1, jc], t10[k + 1, jc], t11[k + 1, jc],
                              t00[k + 1, jd], t01[k + 1, jd], t10[k + 1, jd], t11[k + 1, jd])
                    else:
                        _quad(buf[i0], buf[i0 + 2 * sl], buf[i0 + sl], buf[i0 + 3 * sl],
                              t00[k + 1, jc], t01[k + 1, jc], t10[k + 1, jc], t11[k + 1, jc],
                              t00[k + 1, jd], t01[k + 1, jd], t10[k + 1, jd], t11[k + 1, jd],
                              t00[k, ja], t01[k, ja], t10[k, ja], t11[k, ja],
                              t00[k, jb], t01[k, jb], t10[k, jb], t11[k, jb])
            li += 2
        else:
            k = li if increasing else k1 - 1 - li
            sl = 1 << k
            for a in range(m >> (k + 1)):
                jb = ((h << (k1 - k - 1)) + a) << k
                ib = a * 2 * sl
                for cp in range(sl):
                    j = jb + cp
                    _pair(buf[ib + cp], buf[ib + cp + sl], t00[k, j], t01[k, j], t10[k, j],
                          t11[k, j])
            li += 1


@njit(cache=True, parallel=True, fastmath={"contract"})
def _pass_rows(xin, xout, t00, t01, t10, t11, k1, increasing, nchunk, R):
    """First pass (factors ``0 .. k1-1``) over tiles of ``R`` rows stored transposed.

    With the batch index innermost, every factor, whatever its stride, is the same loop: each
    twiddle block is loaded once and broadcast over ``R`` rows, which the compiler turns into
    full-width SIMD. A last partial tile computes on zero rows that are never written back.
    """
    b, n = xin.shape
    m = 1 << k1
    nh = n >> k1
    n_rt = (b + R - 1) // R
    n_tiles = n_rt * nh
    for ci in prange(nchunk):
        buf = np.zeros((m, R), dtype=xin.dtype)
        lo = ci * n_tiles // nchunk
        hi = (ci + 1) * n_tiles // nchunk
        for tile in range(lo, hi):
            h, r0, nr, base = row_tile(tile, nh, R, b, k1)
            _load_rows(xin, buf, r0, nr, base, m)
            _levels_rows(buf, t00, t01, t10, t11, k1, h, increasing)
            _store_rows(buf, xout, r0, nr, base, m)


@njit(cache=True, inline="always")
def _pair_vjp(u0, u1, h0, h1, w00, w01, w10, w11):
    """Backward through one block for ``R`` rows: returns the block gradient ``h u^H``
    summed over the rows and replaces ``h`` by ``T^H h``."""
    s00 = h0[0] * 0
    s01 = s00
    s10 = s00
    s11 = s00
    c00 = np.conj(w00)
    c01 = np.conj(w01)
    c10 = np.conj(w10)
    c11 = np.conj(w11)
    for r in range(u0.shape[0]):
        a0 = np.conj(u0[r])
        a1 = np.conj(u1[r])
        g0 = h0[r]
        g1 = h1[r]
        s00 += g0 * a0
        s01 += g0 * a1
        s10 += g1 * a0
        s11 += g1 * a1
        h0[r] = c00 * g0 + c10 * g1
        h1[r] = c01 * g0 + c11 * g1
    return s00, s01, s10, s11


@njit(cache=True, parallel=True, fastmath={"contract", "reassoc"})
def _pass_rows_vjp(xin, gout, gin, t00, t01, t10, t11, gacc, k1, increasing, R):
    """Backward through the first pass on tiles of ``R`` transposed rows (see _pass_rows).

    The forward levels of a tile are kept (``k1 + 1`` copies), then undone from the last;
    the block gradients are reductions over the ``R`` rows of the tile, added into this
    chunk's accumulator.
    """
    b, n = xin.shape
    m = 1 << k1
    nh = n >> k1
    n_rt = (b + R - 1) // R
    n_tiles = n_rt * nh
    nchunk = gacc.shape[0]
    for ci in prange(nchunk):
        stash = np.zeros((k1 + 1, m, R), dtype=xin.dtype)
        gb = np.zeros((m, R), dtype=xin.dtype)
        lo = ci * n_tiles // nchunk
        hi = (ci + 1) * n_tiles // nchunk
        for tile in range(lo, hi):
            h, r0, nr, base = row_tile(tile, nh, R, b, k1)
            if nr < R:
                stash[0, :, :] = 0
                gb[:, :] = 0
            _load_rows(xin, stash[0], r0, nr, base, m)
            _load_rows(gout, gb, r0, nr, base, m)
            for li in range(k1):
                k = li if increasing else k1 - 1 - li
                sl = 1 << k
                buf = stash[li + 1]
                buf[:, :] = stash[li]
                for a in range(m >> (k + 1)):
                    jb = ((h << (k1 - k - 1)) + a) << k
                    ib = a * 2 * sl
                    for cp in range(sl):
                        j = jb + cp
                        _pair(buf[ib + cp], buf[ib + cp + sl], t00[k, j], t01[k, j], t10[k, j],
                              t11[k, j])
            for li in range(k1 - 1, -1, -1):
                k = li if increasing else k1 - 1 - li
                sl = 1 << k
                u = stash[li]
                for a in range(m >> (k + 1)):
                    jb = ((h << (k1 - k - 1)) + a) << k
                    ib = a * 2 * sl
                    for cp in range(sl):
                        j = jb + cp
                        p0 = ib + cp
                        s00, s01, s10, s11 = _pair_vjp(u[p0], u[p0 + sl], gb[p0], gb[p0 + sl],
                                                       t00[k, j], t01[k, j], t10[k, j], t11[k, j])
                        gacc[ci, 0, k, j] += s00
                        gacc[ci, 1, k, j] += s01
                        gacc[ci, 2, k, j] += s10
                        gacc[ci, 3, k, j] += s11
            _store_rows(gb, gin, r0, nr, base, m)


@njit(cache=True, parallel=True, fastmath={"contract"})
def _pass_vjp(xin, gout, gin, t00, t01, t10, t11, gacc, k0, k1, W, increasing):
    """Backward through one pass: ``gin = P^H gout``; block gradients added into ``gacc``.

    ``gacc`` has shape ``(nchunk, 4, L, n//2)``: one accumulator per parallel chunk, so no two
    threads write the same entry; the caller sums over chunks.
    """
    b, n = xin.shape
    m = 1 << (k1 - k0)
    S = 1 << k0
    nh = n >> k1
    nc = S // W
    per_row = nh * nc
    n_tiles = b * per_row
    nchunk = gacc.shape[0]
    nl = k1 - k0
    mw = m * W
    for ci in prange(nchunk):
        stash = np.empty((nl + 1, mw), dtype=xin.dtype)
        gb = np.empty(mw, dtype=xin.dtype)
        g00 = gacc[ci, 0]
        g01 = gacc[ci, 1]
        g10 = gacc[ci, 2]
        g11 = gacc[ci, 3]
        lo = ci * n_tiles // nchunk
        hi = (ci + 1) * n_tiles // nchunk
        for tile in range(lo, hi):
            row, h, c0, base = column_tile(tile, per_row, nc, W, k1)
            _gather(stash[0], xin[row], base, S, c0, m, W)
            for li in range(nl):
                l = li if increasing else nl - 1 - li
                k = k0 + l
                stash[li + 1, :] = stash[li, :]
                _level(stash[li + 1], t00[k], t01[k], t10[k], t11[k], h, k0, k1, l, W, S, c0)
            _gather(gb, gout[row], base, S, c0, m, W)
            for li in range(nl - 1, -1, -1):
                l = li if increasing else nl - 1 - li
                k = k0 + l
                u = stash[li]
                r00 = t00[k]
                r01 = t01[k]
                r10 = t10[k]
                r11 = t11[k]
                a00 = g00[k]
                a01 = g01[k]
                a10 = g10[k]
                a11 = g11[k]
                sl = 1 << l
                for a in range(m >> (l + 1)):
                    jb = (((h << (k1 - k - 1)) + a) << k) + c0
                    ib = a * 2 * sl * W
                    for cp in range(sl):
                        jr = jb + cp * S
                        p0 = ib + cp * W
                        p1 = p0 + sl * W
                        for w in range(W):
                            j = jr + w
                            u0c = np.conj(u[p0 + w])
                            u1c = np.conj(u[p1 + w])
                            h0 = gb[p0 + w]
                            h1 = gb[p1 + w]
                            a00[j] += h0 * u0c
                            a01[j] += h0 * u1c
                            a10[j] += h1 * u0c
                            a11[j] += h1 * u1c
                            gb[p0 + w] = np.conj(r00[j]) * h0 + np.conj(r10[j]) * h1
                            gb[p1 + w] = np.conj(r01[j]) * h0 + np.conj(r11[j]) * h1
            _scatter(gb, gin[row], base, S, c0, m, W)


@njit(cache=True, parallel=True)
def _split_blocks(t, p, nchunk):
    """``p[k, i] = t[i, k]`` for ``(nb, 4)`` blocks ``t``: one output stream at a time over a
    span of blocks that stays in L1 (4 streams at once measured 1.7x slower)."""
    nb = t.shape[0]
    span = 1024
    n_spans = (nb + span - 1) // span
    for ci in prange(nchunk):
        for sp in range(ci * n_spans // nchunk, (ci + 1) * n_spans // nchunk):
            lo = sp * span
            hi = min(nb, lo + span)
            for k in range(4):
                pk = p[k]
                for i in range(lo, hi):
                    pk[i] = t[i, k]


def _planar(tw):
    """Split ``(L, n//2, 2, 2)`` into contiguous ``t00, t01, t10, t11`` of shape ``(L, n//2)``
    (in parallel: at batch 1 this copy costs as much as the product)."""
    L, nh = tw.shape[:2]
    p = np.empty((4, L * nh), dtype=tw.dtype)
    if p.size:
        _split_blocks(tw.reshape(-1, 4), p, n_chunks(max(1, L * nh // 4096)))
    return tuple(q.reshape(L, nh) for q in p)


def _n_tiles(b, n, k0, k1, W, R=0):
    """Tiles of one pass: transposed row tiles for the first pass when ``R``, else columns."""
    if k0 == 0 and R:
        return (b + R - 1) // R * (n >> k1)
    return b * (n >> k1) * ((1 << k0) // W)


def _ordered(passes, increasing):
    return passes if increasing else passes[::-1]


#: bytes of the first pass's transposed tile (the L2 of a Zen 4 core): it holds whole rows up to
#: n = 8192 float32 (x 32 rows), so the usual sizes take a single pass, one read and one write of
#: ``x`` per call; measured faster than two passes of half the size although the tile fills L2
FIRST_TILE_BYTES = 1024 * 1024


def _rows_plan(b: int, n: int, itemsize: int) -> int:
    """Rows per transposed tile of the first pass, or 0 to use contiguous row segments."""
    if b < BLOCK // 2:
        return 0
    R = rows_per_tile(itemsize)
    while R > BLOCK and R * n * itemsize > FIRST_TILE_BYTES:
        R //= 2
    return min(R, max(BLOCK, 1 << (b - 1).bit_length()))


def _passes(L: int, R: int, itemsize: int, increasing: bool, stash: bool = False):
    passes = plan_passes(L, itemsize, stash=stash, first_width=max(R, 1),
                         first_bytes=FIRST_TILE_BYTES)
    return _ordered(passes, increasing)


@serial_when_small(arg=1)
def apply(tw: np.ndarray, x: np.ndarray, increasing: bool) -> np.ndarray:
    """Return ``M x`` row by row (see the module docstring for the contract)."""
    if x.shape[0] == 0 or tw.shape[0] == 0:
        return x.copy()
    return apply_planar(_planar(tw), x, increasing)


def apply_planar(t, x: np.ndarray, increasing: bool) -> np.ndarray:
    """:func:`apply` with the twiddle already split into planar ``(t00, t01, t10, t11)``."""
    b, n = x.shape
    L = t[0].shape[0]
    if b == 0 or L == 0:
        return x.copy()
    src = x
    out = np.empty_like(x)
    if L >= BLOCK_LEVELS and n * x.itemsize <= SEGMENT_BYTES:
        # whole rows in cache: every level in registers, one read and one write of x
        return _apply_segments(t, x, out, increasing)
    R = _rows_plan(b, n, x.itemsize)
    for k0, k1, W in _passes(L, R, x.itemsize, increasing):
        nchunk = n_chunks(_n_tiles(b, n, k0, k1, W, R))
        if k0 == 0 and R:
            _pass_rows(src, out, *t, k1, increasing, nchunk, R)
        else:
            _pass(src, out, *t, k0, k1, W, increasing, nchunk)
        src = out
    return out


#: bytes of one contiguous row segment of the register-block first pass
SEGMENT_BYTES = 256 * 1024
#: bytes of the rows that the register-block pass sweeps together, block by block: an L1 cache's
#: worth (larger tiles, kept in L2, measured slower than the coefficient reuse gains)
ROW_TILE_BYTES = 32 * 1024


def _apply_segments(t, x, out, increasing):
    """A register-block first pass on row segments (complex rows viewed as interleaved floats),
    then column passes."""
    b, n = x.shape
    L = n.bit_length() - 1
    coefs = lane_coefficients(*t)
    if x.dtype.kind == "c":
        ft = x.real.dtype
        xf, of = x.view(ft), out.view(ft)
    else:
        xf, of = x, out
    src = x
    for k0, k1, W in _ordered(plan_passes(L, x.itemsize, first_bytes=SEGMENT_BYTES), increasing):
        if k0 == 0:
            k1 = max(k1, BLOCK_LEVELS)
            rows = max(1, min(ROW_TILE_BYTES // (x.itemsize << k1), -(-b // n_chunks(b))))
            nchunk = n_chunks(-(-b // rows) * (n >> k1))
            _pass_segments(xf if src is x else of, of, coefs, k1, increasing, rows, nchunk)
        else:
            _pass(src, out, *t, k0, k1, W, increasing, n_chunks(_n_tiles(b, n, k0, k1, W)))
        src = out
    return out


@serial_when_small(arg=1)
def apply_vjp(tw: np.ndarray, x: np.ndarray, g: np.ndarray, increasing: bool):
    """Return ``(gtw, gx)`` for ``y = M x`` and the output gradient ``g``."""
    b, n = x.shape
    L = tw.shape[0]
    if b == 0 or L == 0:
        return np.zeros_like(tw), g.copy()
    t = _planar(tw)
    if L >= BLOCK_LEVELS and n * x.itemsize <= SEGMENT_BYTES:
        return _apply_vjp_rows(t, x, g, increasing)
    # the backward tile keeps every level of the forward one: fewer rows let it cover more levels
    R = min(_rows_plan(b, n, x.itemsize), BLOCK)
    passes = _passes(L, R, x.itemsize, increasing, stash=True)
    inputs = [x]
    for k0, k1, W in passes[:-1]:
        y = np.empty_like(x)
        nchunk = n_chunks(_n_tiles(b, n, k0, k1, W, R))
        if k0 == 0 and R:
            _pass_rows(inputs[-1], y, *t, k1, increasing, nchunk, R)
        else:
            _pass(inputs[-1], y, *t, k0, k1, W, increasing, nchunk)
        inputs.append(y)
    most_tiles = max(_n_tiles(b, n, *p, R) for p in passes)
    gacc = np.zeros((n_chunks(most_tiles), 4, L, n // 2), dtype=x.dtype)
    # tiles of a pass read and write the same elements, so later passes work in place
    gx = np.empty_like(g)
    gcur = g
    for (k0, k1, W), xin in zip(passes[::-1], inputs[::-1], strict=True):
        if k0 == 0 and R:
            _pass_rows_vjp(xin, gcur, gx, *t, gacc, k1, increasing, R)
        else:
            _pass_vjp(xin, gcur, gx, *t, gacc, k0, k1, W, increasing)
        gcur = gx
    gsum = gacc.sum(axis=0)
    gtw = np.ascontiguousarray(np.moveaxis(gsum.reshape(2, 2, L, n // 2), (0, 1), (2, 3)))
    return gtw, gx


@njit(cache=True, parallel=True)
def _gather_rows(x, idx, out):  # idx is int32: the row, the index and the output fit in L1
    for r in prange(x.shape[0]):
        xr = x[r]
        yr = out[r]
        for i in range(idx.shape[0]):
            yr[i] = xr[idx[i]]


@serial_when_small(arg=0)
def gather_last(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``x[:, idx]`` for C-contiguous ``(batch, n)`` ``x``: rows in parallel, each from cache."""
    out = np.empty((x.shape[0], idx.shape[0]), dtype=x.dtype)
    if x.shape[0]:
        _gather_rows(x, idx.astype(np.int32), out)
    return out
