"""Explicit SIMD butterflies of the FFT engine (:mod:`structlin._cpu.fft`), as Numba intrinsics.

A Stockham stage of radix ``r`` reads ``r`` rows of a split-complex tile, computes their
``r``-point DFT lane by lane, multiplies output ``k`` by the stage twiddle ``w^k`` (one complex
scalar per output, the same for every lane) and writes ``r`` rows. Numba's loop vectorizer does
this for radix 4 on long rows, but it enters every inner loop through runtime alias checks
(costly when a row has only 16 lanes) and gives up on radix 8 (32 streams). The intrinsics
here emit the vector IR of one column block of one vector register directly: ``2 r`` loads, the
DFT's adds and constant multiplications, ``r - 1`` twiddle multiplications with fused
multiply-adds, ``2 r`` stores; no checks, no remainder loop. A block is one register of the
host's widest vector unit (16 float32 or 8 float64 lanes with AVX-512, 8 or 4 with AVX2), so
that a radix-8 butterfly's 16 complex operands stay in registers.
"""

from __future__ import annotations

import math
from functools import cache

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from structlin._cpu._microkernel import VECTOR_BYTES
from structlin._cpu._simd import _real_vector

_SQRT_HALF = math.sqrt(0.5)


class _Ctx:
    """IR emission for complex values held as ``(re, im)`` pairs of 16-lane vectors."""

    def __init__(self, builder, vty, fma):
        self.b = builder
        self.vty = vty
        self.fma = fma
        self.lanes = vty.count

    def splat(self, scalar):
        b = self.b
        v = b.insert_element(ir.Constant(self.vty, ir.Undefined), scalar,
                             ir.Constant(ir.IntType(32), 0))
        return b.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), self.lanes),
                                                  [0] * self.lanes))

    def const(self, value):
        return ir.Constant(self.vty, [float(value)] * self.lanes)

    def add(self, x, y):
        return (self.b.fadd(x[0], y[0]), self.b.fadd(x[1], y[1]))

    def sub(self, x, y):
        return (self.b.fsub(x[0], y[0]), self.b.fsub(x[1], y[1]))

    def times_minus_i(self, x):
        return (x[1], self.b.fneg(x[0]))

    def scale(self, x, c):
        k = self.const(c)
        return (self.b.fmul(x[0], k), self.b.fmul(x[1], k))

    def rot(self, x, cr, ci):
        """``x (cr + i ci)`` for a constant: the four-multiply form with two of them fused."""
        b = self.b
        kr, ki = self.const(cr), self.const(ci)
        re = b.call(self.fma, [x[0], kr, b.fneg(b.fmul(x[1], ki))])
        im = b.call(self.fma, [x[1], kr, b.fmul(x[0], ki)])
        return (re, im)

    def twiddle(self, x, wr, wi):
        """``x w`` for a splat scalar twiddle ``w = wr + i wi``."""
        b = self.b
        re = b.call(self.fma, [x[0], wr, b.fneg(b.fmul(x[1], wi))])
        im = b.call(self.fma, [x[1], wr, b.fmul(x[0], wi)])
        return (re, im)


def _dft(c: _Ctx, a: list) -> list:
    """The ``len(a)``-point DFT (``e^(-2 pi i jk / r)``) of the complex vectors ``a``."""
    r = len(a)
    if r == 1:
        return list(a)
    if r == 2:
        return [c.add(a[0], a[1]), c.sub(a[0], a[1])]
    if r == 4:
        s02, d02 = c.add(a[0], a[2]), c.sub(a[0], a[2])
        s13 = c.add(a[1], a[3])
        j13 = c.times_minus_i(c.sub(a[1], a[3]))
        return [c.add(s02, s13), c.add(d02, j13), c.sub(s02, s13), c.sub(d02, j13)]
    if r % 2 == 0:  # split radix-2 step in front: even outputs from sums, odd from differences
        h = r // 2
        sums = [c.add(a[j], a[j + h]) for j in range(h)]
        diffs = [c.sub(a[j], a[j + h]) for j in range(h)]
        diffs = [_times_root(c, diffs[j], j, r) for j in range(h)]
        even, odd = _dft(c, sums), _dft(c, diffs)
        out = [None] * r
        for k in range(h):
            out[2 * k], out[2 * k + 1] = even[k], odd[k]
        return out
    if r == 3:
        t = c.add(a[1], a[2])
        m = c.sub(a[0], c.scale(t, 0.5))
        n = c.scale(c.times_minus_i(c.sub(a[1], a[2])), math.sin(2 * math.pi / 3))
        return [c.add(a[0], t), c.add(m, n), c.sub(m, n)]
    if r == 5:
        p1, m1 = c.add(a[1], a[4]), c.sub(a[1], a[4])
        p2, m2 = c.add(a[2], a[3]), c.sub(a[2], a[3])
        c1, c2 = math.cos(2 * math.pi / 5), math.cos(4 * math.pi / 5)
        s1, s2 = math.sin(2 * math.pi / 5), math.sin(4 * math.pi / 5)
        a1 = c.add(a[0], c.add(c.scale(p1, c1), c.scale(p2, c2)))
        a2 = c.add(a[0], c.add(c.scale(p1, c2), c.scale(p2, c1)))
        b1 = c.times_minus_i(c.add(c.scale(m1, s1), c.scale(m2, s2)))
        b2 = c.times_minus_i(c.sub(c.scale(m1, s2), c.scale(m2, s1)))
        return [c.add(a[0], c.add(p1, p2)), c.add(a1, b1), c.add(a2, b2), c.sub(a2, b2),
                c.sub(a1, b1)]
    raise ValueError(f"no SIMD butterfly of radix {r}")


def _times_root(c: _Ctx, x, j: int, r: int):
    """``x e^(-2 pi i j / r)`` with the exact forms of the eighth roots of unity."""
    j %= r
    if j == 0:
        return x
    if 4 * j == r:
        return c.times_minus_i(x)
    if 8 * j == r:
        return c.scale((c.b.fadd(x[0], x[1]), c.b.fsub(x[1], x[0])), _SQRT_HALF)
    if 8 * j == 3 * r:
        return c.scale((c.b.fsub(x[1], x[0]), c.b.fneg(c.b.fadd(x[0], x[1]))), _SQRT_HALF)
    ang = -2 * math.pi * j / r
    return c.rot(x, math.cos(ang), math.sin(ang))


def lanes_for(dtype) -> int:
    """Lanes of one block: one register of the host's widest vector unit
    (:data:`structlin._cpu._microkernel.VECTOR_BYTES`): 16 float32 or 8 float64 with AVX-512."""
    return VECTOR_BYTES // (dtype.bitwidth // 8)


def _vector_ptr(context, builder, aty, arr, offset):
    ary = context.make_array(aty)(context, builder, arr)
    vty = ir.VectorType(context.get_data_type(aty.dtype), lanes_for(aty.dtype))
    return builder.bitcast(builder.gep(ary.data, [offset]), vty.as_pointer())


@cache
def stage_block(r: int, twiddled: bool | str):
    """Intrinsic ``(xr, xi, yr, yi, i0, istep, o0, ostep, twr, twi, t0)`` for radix ``r``: with
    ``a_j`` the lanes at ``x[i0 + j istep]`` (real and imaginary planes, flat 1-D arrays),
    store ``w_k DFT_r(a)_k`` at ``y[o0 + k ostep]`` where ``w_k = tw[t0 + k - 1]`` (``k >= 1``)
    when ``twiddled`` and 1 otherwise (the last stage of a transform). ``twiddled="lanes"``
    (the last stage of the four-step's first pass): every output is multiplied lane by lane by
    the vector of ``tw`` at its own offset ``o0 + k ostep`` (the four-step twiddles
    ``w_n^(k1 j2)``, laid out like the tile), which saves the twiddle pass."""

    @intrinsic
    def _stage(typingctx, xr, xi, yr, yi, i0, istep, o0, ostep, twr, twi, t0):
        if not all(_real_vector(t) for t in (xr, xi, yr, yi, twr, twi)):
            return None
        if len({t.dtype for t in (xr, xi, yr, yi, twr, twi)}) != 1:
            return None
        sig = types.void(xr, xi, yr, yi, types.intp, types.intp, types.intp, types.intp, twr,
                         twi, types.intp)

        def codegen(context, builder, signature, args):
            tys = signature.args
            a_xr, a_xi, a_yr, a_yi, v_i0, v_is, v_o0, v_os, a_twr, a_twi, v_t0 = args
            elt = context.get_data_type(tys[0].dtype)
            lanes = lanes_for(tys[0].dtype)
            vty = ir.VectorType(elt, lanes)
            align = tys[0].dtype.bitwidth // 8
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vty, [vty] * 3),
                f"llvm.fma.v{lanes}f{tys[0].dtype.bitwidth}")
            c = _Ctx(builder, vty, fma)
            vals = []
            for j in range(r):
                off = builder.add(v_i0, builder.mul(v_is, ir.Constant(v_is.type, j)))
                pr = builder.load(_vector_ptr(context, builder, tys[0], a_xr, off))
                pi = builder.load(_vector_ptr(context, builder, tys[1], a_xi, off))
                pr.align = align
                pi.align = align
                vals.append((pr, pi))
            out = _dft(c, vals)
            twr_ary = context.make_array(tys[8])(context, builder, a_twr)
            twi_ary = context.make_array(tys[9])(context, builder, a_twi)
            for k in range(r):
                y = out[k]
                off = builder.add(v_o0, builder.mul(v_os, ir.Constant(v_os.type, k)))
                if twiddled == "lanes":
                    wr = _load_vec(context, builder, tys[8], a_twr, off, align)
                    wi = _load_vec(context, builder, tys[9], a_twi, off, align)
                    y = c.twiddle(y, wr, wi)
                elif k and twiddled:
                    at = builder.add(v_t0, ir.Constant(v_t0.type, k - 1))
                    wr = builder.load(builder.gep(twr_ary.data, [at]))
                    wi = builder.load(builder.gep(twi_ary.data, [at]))
                    y = c.twiddle(y, c.splat(wr), c.splat(wi))
                s1 = builder.store(y[0], _vector_ptr(context, builder, tys[2], a_yr, off))
                s2 = builder.store(y[1], _vector_ptr(context, builder, tys[3], a_yi, off))
                s1.align = align
                s2.align = align
            return context.get_dummy_value()

        return sig, codegen

    return _stage


def _interleave_masks(lanes):
    lo = [(j // 2) + (lanes if j % 2 else 0) for j in range(lanes)]
    hi = [(lanes + j) // 2 + (lanes if j % 2 else 0) for j in range(lanes)]
    return _ivec(lo), _ivec(hi)


def _deinterleave_masks(lanes):
    even = [2 * j for j in range(lanes)]
    odd = [2 * j + 1 for j in range(lanes)]
    return _ivec(even), _ivec(odd)


def _ivec(values):
    return ir.Constant(ir.VectorType(ir.IntType(32), len(values)), list(values))


def _reverse(builder, v, lanes):
    return builder.shuffle_vector(v, v, _ivec(list(range(lanes - 1, -1, -1))))


def _load_vec(context, builder, aty, arr, offset, align):
    v = builder.load(_vector_ptr(context, builder, aty, arr, offset))
    v.align = align
    return v


def _store_vec(context, builder, aty, arr, offset, value, align):
    st = builder.store(value, _vector_ptr(context, builder, aty, arr, offset))
    st.align = align


def _int(builder, value, k):
    return builder.add(value, ir.Constant(value.type, k))


@intrinsic
def r2c_post_block(typingctx, orow, pr, pi, wr, wi, k0):
    """The real transform's split, lanes ``k = k0 .. k0 + L - 1`` (``1 <= k0``, ``k0 + L <= h``,
    ``h = len(pr)``): ``X[k] = E + w^k O`` from ``Z[k]`` and ``conj Z[h - k]`` (loaded as one
    vector whose lanes are reversed), written to ``orow`` as interleaved (re, im) pairs."""
    if not all(_real_vector(t) for t in (orow, pr, pi, wr, wi)):
        return None
    sig = types.void(orow, pr, pi, wr, wi, types.intp)

    def codegen(context, builder, signature, args):
        t_o, t_pr, t_pi, t_wr, t_wi, _ = signature.args
        a_o, a_pr, a_pi, a_wr, a_wi, v_k0 = args
        lanes = lanes_for(t_pr.dtype)
        align = t_pr.dtype.bitwidth // 8
        pr_ary = context.make_array(t_pr)(context, builder, a_pr)
        h = builder.extract_value(pr_ary.shape, 0)
        ar = _load_vec(context, builder, t_pr, a_pr, v_k0, align)
        ai = _load_vec(context, builder, t_pi, a_pi, v_k0, align)
        rev = _int(builder, builder.sub(h, v_k0), 1 - lanes)
        br = _reverse(builder, _load_vec(context, builder, t_pr, a_pr, rev, align), lanes)
        bi = _reverse(builder, _load_vec(context, builder, t_pi, a_pi, rev, align), lanes)
        vty = ar.type
        half = ir.Constant(vty, [0.5] * lanes)
        # B = conj Z[h - k]: (br, -bi)
        er = builder.fmul(half, builder.fadd(ar, br))
        ei = builder.fmul(half, builder.fsub(ai, bi))
        o_r = builder.fmul(half, builder.fadd(ai, bi))
        o_i = builder.fmul(half, builder.fsub(br, ar))
        w_r = _load_vec(context, builder, t_wr, a_wr, v_k0, align)
        w_i = _load_vec(context, builder, t_wi, a_wi, v_k0, align)
        xr = builder.fadd(er, builder.fsub(builder.fmul(w_r, o_r), builder.fmul(w_i, o_i)))
        xi = builder.fadd(ei, builder.fadd(builder.fmul(w_r, o_i), builder.fmul(w_i, o_r)))
        lo, hi = _interleave_masks(lanes)
        off = builder.shl(v_k0, ir.Constant(v_k0.type, 1))
        _store_vec(context, builder, t_o, a_o, off, builder.shuffle_vector(xr, xi, lo), align)
        _store_vec(context, builder, t_o, a_o, _int(builder, off, lanes),
                   builder.shuffle_vector(xr, xi, hi), align)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def c2r_pre_block(typingctx, Xrow, pr, pi, wr, wi, k0):
    """The inverse real transform's merge (see ``_load_c2r`` in :mod:`structlin._cpu.fft`),
    lanes ``k = k0 .. k0 + L - 1`` (``1 <= k0``, ``k0 + L <= h``): ``X[k]`` and ``X[h - k]``
    read as interleaved pairs, split by shuffles, the second reversed."""
    if not all(_real_vector(t) for t in (Xrow, pr, pi, wr, wi)):
        return None
    sig = types.void(Xrow, pr, pi, wr, wi, types.intp)

    def codegen(context, builder, signature, args):
        t_x, t_pr, t_pi, t_wr, t_wi, _ = signature.args
        a_x, a_pr, a_pi, a_wr, a_wi, v_k0 = args
        lanes = lanes_for(t_pr.dtype)
        align = t_pr.dtype.bitwidth // 8
        pr_ary = context.make_array(t_pr)(context, builder, a_pr)
        h = builder.extract_value(pr_ary.shape, 0)
        ev, od = _deinterleave_masks(lanes)
        one = ir.Constant(v_k0.type, 1)
        off = builder.shl(v_k0, one)
        v0 = _load_vec(context, builder, t_x, a_x, off, align)
        v1 = _load_vec(context, builder, t_x, a_x, _int(builder, off, lanes), align)
        ar = builder.shuffle_vector(v0, v1, ev)
        ai = builder.shuffle_vector(v0, v1, od)
        roff = builder.shl(_int(builder, builder.sub(h, v_k0), 1 - lanes), one)
        u0 = _load_vec(context, builder, t_x, a_x, roff, align)
        u1 = _load_vec(context, builder, t_x, a_x, _int(builder, roff, lanes), align)
        br = _reverse(builder, builder.shuffle_vector(u0, u1, ev), lanes)
        bi = builder.fneg(_reverse(builder, builder.shuffle_vector(u0, u1, od), lanes))
        er = builder.fadd(ar, br)
        ei = builder.fadd(ai, bi)
        dr = builder.fsub(ar, br)
        di = builder.fsub(ai, bi)
        w_r = _load_vec(context, builder, t_wr, a_wr, v_k0, align)
        w_i = _load_vec(context, builder, t_wi, a_wi, v_k0, align)
        tr = builder.fadd(builder.fmul(w_r, dr), builder.fmul(w_i, di))
        ti = builder.fsub(builder.fmul(w_r, di), builder.fmul(w_i, dr))
        _store_vec(context, builder, t_pr, a_pr, v_k0, builder.fsub(er, ti), align)
        _store_vec(context, builder, t_pi, a_pi, v_k0,
                   builder.fneg(builder.fadd(ei, tr)), align)
        return context.get_dummy_value()

    return sig, codegen
