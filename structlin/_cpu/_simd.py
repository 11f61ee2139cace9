"""Explicit SIMD blocks for the butterfly-shaped kernels, written as Numba intrinsics.

Numba runs LLVM's loop vectorizer but not its SLP vectorizer, so a butterfly level whose stride is
below the SIMD width (pairs inside one vector) stays scalar, and a fixed-length inner loop is
unrolled rather than vectorized. The intrinsics here emit LLVM vector IR directly: a block of
``16 * NV`` consecutive elements is loaded as ``NV`` vectors of 16 lanes, all the levels with
stride below ``16 * NV`` are applied in registers, and the block is stored once. A stride ``s < 16``
pairs lanes ``i`` and ``i ^ s`` of the same vector (one ``shufflevector``); a stride ``s >= 16``
pairs vectors ``q`` and ``q ^ (s / 16)``. LLVM lowers 16-lane vectors to whatever the CPU has
(one AVX-512 register of float32, two of float64, four SSE/NEON registers), so the code is
portable; only the speed depends on the width.

Butterfly levels use *lane coefficients* instead of the twiddle blocks: level ``k`` computes
``y[i] = A[k, i] * x[i] + B[k, i] * x[i ^ 2**k]`` where ``(A, B) = (t00, t01)`` of the block of
``i`` when bit ``k`` of ``i`` is clear and ``(t11, t10)`` when it is set (see
:func:`structlin._cpu.butterfly.lane_coefficients`). Rows are real float32/float64, or complex
viewed as interleaved (re, im) floats with complex coefficients.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

#: lanes of one vector (one AVX-512 register of float32)
LANES = 16
_REAL = (types.float32, types.float64)
_COMPLEX_OF = {types.float32: types.complex64, types.float64: types.complex128}


def _real_vector(t) -> bool:
    return isinstance(t, types.Array) and t.ndim == 1 and t.dtype in _REAL


def _int_vec(values):
    return ir.Constant(ir.VectorType(ir.IntType(32), len(values)), list(values))


def _vectors(context, builder, aty, arr, offset, nv):
    """Pointers to ``nv`` consecutive 16-lane vectors of ``arr`` (1-D) starting at ``offset``."""
    ary = context.make_array(aty)(context, builder, arr)
    elt = context.get_data_type(aty.dtype)
    vty = ir.VectorType(elt, LANES)
    base = builder.gep(ary.data, [offset])
    return [builder.bitcast(builder.gep(base, [ir.Constant(offset.type, q * LANES)]),
                            vty.as_pointer()) for q in range(nv)]


def _load(builder, ptrs, align):
    out = []
    for p in ptrs:
        v = builder.load(p)
        v.align = align
        out.append(v)
    return out


def _store(builder, values, ptrs, align):
    for v, p in zip(values, ptrs, strict=True):
        st = builder.store(v, p)
        st.align = align


def _fma(builder, vty, dtype):
    """The ``llvm.fma`` intrinsic on 16-lane vectors of ``dtype`` (one instruction where the
    CPU has FMA, a correctly rounded library call otherwise)."""
    name = f"llvm.fma.v{LANES}f{dtype.bitwidth}"
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3), name)


def _partner(builder, v, s):
    """Lane ``i`` of the result is lane ``i ^ s`` of ``v`` (``s < LANES``)."""
    return builder.shuffle_vector(v, v, _int_vec([i ^ s for i in range(LANES)]))


@cache
def hadamard_block(nv: int):
    """Intrinsic ``(src, dst, offset, scale)``: ``scale`` times the Walsh–Hadamard transform of the
    ``16 * nv`` elements ``src[offset:]``, written to ``dst[offset:]`` (``src`` may be ``dst``)."""
    n_levels = (LANES * nv).bit_length() - 1

    @intrinsic
    def _hblock(typingctx, src, dst, offset, scale):
        if not (_real_vector(src) and _real_vector(dst) and dst.dtype == src.dtype
                and scale == src.dtype):
            return None
        sig = types.void(src, dst, offset, scale)

        def codegen(context, builder, signature, args):
            sty, dty, _, _ = signature.args
            s_arr, d_arr, off, sc = args
            align = sty.dtype.bitwidth // 8
            v = _load(builder, _vectors(context, builder, sty, s_arr, off, nv), align)
            splat = builder.insert_element(ir.Constant(v[0].type, ir.Undefined), sc,
                                           ir.Constant(ir.IntType(32), 0))
            splat = builder.shuffle_vector(splat, splat, _int_vec([0] * LANES))
            v = [builder.fmul(x, splat) for x in v]
            for k in range(n_levels):
                s = 1 << k
                if s < LANES:
                    pick = _int_vec([i if not i & s else i + LANES for i in range(LANES)])
                    for q in range(nv):
                        p = _partner(builder, v[q], s)
                        v[q] = builder.shuffle_vector(builder.fadd(v[q], p),
                                                      builder.fsub(p, v[q]), pick)
                else:
                    d = s // LANES
                    new = list(v)
                    for q in range(nv):
                        if q & d:
                            continue
                        new[q] = builder.fadd(v[q], v[q + d])
                        new[q + d] = builder.fsub(v[q], v[q + d])
                    v = new
            _store(builder, v, _vectors(context, builder, dty, d_arr, off, nv), align)
            return context.get_dummy_value()

        return sig, codegen

    return _hblock


def _coef_tuple(t, dtype) -> bool:
    """``(A, B)``: two 2-D arrays of ``dtype`` (real data) or of its complex type (complex data
    viewed as interleaved floats)."""
    return (isinstance(t, types.UniTuple) and t.count == 2
            and isinstance(t.dtype, types.Array) and t.dtype.ndim == 2
            and t.dtype.dtype in (dtype, _COMPLEX_OF[dtype]))


def _is_complex(caty) -> bool:
    return isinstance(caty.dtype.dtype, types.Complex)


def lane_shift(coefs):
    """Lanes per element, as a power of two, for rows with lane coefficients ``coefs``: 0 for
    real data, 1 for complex data viewed as interleaved floats (callable in Numba code)."""
    return 1 if np.iscomplexobj(coefs[0]) else 0


@overload(lane_shift)
def _lane_shift(coefs):
    shift = 1 if _is_complex(coefs) else 0
    return lambda coefs: shift


_DUP_RE = _int_vec([i & ~1 for i in range(LANES)])
_DUP_IM = _int_vec([i | 1 for i in range(LANES)])
#: lanes of ``(i * v)`` drawn from ``(-v, v)``: ``(-Im v, Re v)`` on each (re, im) pair
_TIMES_I = _int_vec([i + 1 if i % 2 == 0 else LANES + i - 1 for i in range(LANES)])


def _times_i(builder, v):
    return builder.shuffle_vector(builder.fneg(v), v, _TIMES_I)


def _combine(builder, fma, v, p, c, iv, ip):
    """One output vector of a level: ``A v + B p`` with lane coefficients ``c = (A, B)``.

    Real data: ``A``, ``B`` hold one coefficient per lane. Interleaved complex data: ``A``, ``B``
    hold one complex coefficient per (re, im) lane pair, and ``a v = Re(a) v + Im(a) (i v)``
    with ``Re(a)``, ``Im(a)`` broadcast over the pair; ``iv``, ``ip`` are ``i v``, ``i p``
    (``None`` for real data). Loading complex coefficients once, rather than four real arrays of
    broadcast parts, halves the coefficient traffic, which dominates on long rows."""
    if iv is None:
        return builder.call(fma, [c[1], p, builder.fmul(c[0], v)])
    a, b = c
    acc = builder.fmul(builder.shuffle_vector(a, a, _DUP_RE), v)
    acc = builder.call(fma, [builder.shuffle_vector(a, a, _DUP_IM), iv, acc])
    acc = builder.call(fma, [builder.shuffle_vector(b, b, _DUP_RE), p, acc])
    return builder.call(fma, [builder.shuffle_vector(b, b, _DUP_IM), ip, acc])


def _levels(context, builder, v, offs, coefs, caty, levels, spaced, dtype, align):
    """Apply ``levels``, a sequence of ``(coefficient row k, stride)``, to the vectors ``v`` whose
    first lanes sit at the flat offsets ``offs`` of a row. The stride is in lanes for a
    contiguous block, in vectors (``q ^ stride``) when ``spaced``."""
    fma = _fma(builder, v[0].type, dtype)
    cplx = _is_complex(caty)
    arrays = [builder.extract_value(coefs, i) for i in range(caty.count)]
    st0 = context.make_array(caty.dtype)(context, builder, arrays[0])
    row_len = builder.extract_value(st0.shape, 1)
    if cplx:  # rows of the coefficients counted in floats
        row_len = builder.shl(row_len, ir.Constant(row_len.type, 1))
    i64 = row_len.type
    for k, stride in levels:
        row = builder.mul(row_len, k if not isinstance(k, int) else ir.Constant(i64, k))
        flat = [builder.add(row, o) for o in offs]
        c = [_load(builder, _flat_ptrs(context, builder, caty.dtype, a, flat, dtype), align)
             for a in arrays]
        iv = [_times_i(builder, x) for x in v] if cplx else None
        new = []
        for q in range(len(v)):
            if spaced:
                r = q ^ stride
            elif stride < LANES:
                r = None
            else:
                r = q ^ (stride // LANES)
            if r is None:
                p = _partner(builder, v[q], stride)
                ip = _partner(builder, iv[q], stride) if cplx else None
            else:
                p = v[r]
                ip = iv[r] if cplx else None
            new.append(_combine(builder, fma, v[q], p, [cc[q] for cc in c],
                                iv[q] if cplx else None, ip))
        v = new
    return v


def _flat_ptrs(context, builder, aty, arr, flat, lane_dtype=None):
    """Pointers to 16-lane vectors at the flat offsets ``flat`` (counted in ``lane_dtype``
    elements, by default the array's own) of the array ``arr``."""
    ary = context.make_array(aty)(context, builder, arr)
    elt = context.get_data_type(lane_dtype or aty.dtype)
    data = builder.bitcast(ary.data, elt.as_pointer())
    vty = ir.VectorType(elt, LANES)
    return [builder.bitcast(builder.gep(data, [f]), vty.as_pointer()) for f in flat]


@cache
def butterfly_block(nv: int, increasing: bool):
    """Intrinsic ``(src, dst, offset, coefs)``: the butterfly levels that fit in the ``16 * nv``
    lanes ``src[offset:]``, written to ``dst[offset:]``: ``log2(16 nv)`` levels of real data, one
    fewer on complex data viewed as interleaved (re, im) floats (complex ``coefs``).

    ``coefs`` is a pair ``(A, B)`` of C-contiguous ``(L, n)`` lane-coefficient arrays, ``n``
    the row's length in elements: real for real data, complex for complex (see
    :func:`_combine`); ``offset`` is
    counted within the row; ``increasing`` applies level 0 first, otherwise the highest first.
    """

    @intrinsic
    def _bblock(typingctx, src, dst, offset, coefs):
        if not (_real_vector(src) and _real_vector(dst) and dst.dtype == src.dtype
                and _coef_tuple(coefs, src.dtype)):
            return None
        sig = types.void(src, dst, offset, coefs)

        def codegen(context, builder, signature, args):
            sty, dty, oty, caty = signature.args
            shift = 1 if _is_complex(caty) else 0
            n_levels = (LANES * nv).bit_length() - 1 - shift
            order = range(n_levels) if increasing else range(n_levels - 1, -1, -1)
            levels = [(k, 1 << (k + shift)) for k in order]
            s_arr, d_arr, off, cf = args
            off = context.cast(builder, off, oty, types.int64)
            align = sty.dtype.bitwidth // 8
            offs = [builder.add(off, ir.Constant(off.type, q * LANES)) for q in range(nv)]
            v = _load(builder, _flat_ptrs(context, builder, sty, s_arr, offs), align)
            v = _levels(context, builder, v, offs, cf, caty, levels, False, sty.dtype,
                        align)
            _store(builder, v, _flat_ptrs(context, builder, dty, d_arr, offs), align)
            return context.get_dummy_value()

        return sig, codegen

    return _bblock


@cache
def butterfly_spaced_block(nv: int, increasing: bool):
    """Intrinsic ``(src, dst, offset, spacing, k0, coefs)``: butterfly levels
    ``k0 .. k0 + log2(nv) - 1`` on the ``nv`` vectors of 16 lanes at ``offset + q * spacing``
    (``spacing`` is level ``k0``'s stride in lanes, at least 16); ``coefs`` as in
    :func:`butterfly_block`."""
    n_levels = nv.bit_length() - 1
    order = range(n_levels) if increasing else range(n_levels - 1, -1, -1)

    @intrinsic
    def _sblock(typingctx, src, dst, offset, spacing, k0, coefs):
        if not (_real_vector(src) and _real_vector(dst) and dst.dtype == src.dtype
                and _coef_tuple(coefs, src.dtype)
                and all(isinstance(t, types.Integer) for t in (offset, spacing, k0))):
            return None
        sig = types.void(src, dst, offset, spacing, k0, coefs)

        def codegen(context, builder, signature, args):
            sty, dty, oty, pty, kty, caty = signature.args
            s_arr, d_arr, off, sp, k0v, cf = args
            i64 = ir.IntType(64)
            off = context.cast(builder, off, oty, types.int64)
            sp = context.cast(builder, sp, pty, types.int64)
            k0v = context.cast(builder, k0v, kty, types.int64)
            align = sty.dtype.bitwidth // 8
            offs = [builder.add(off, builder.mul(sp, ir.Constant(i64, q))) for q in range(nv)]
            v = _load(builder, _flat_ptrs(context, builder, sty, s_arr, offs), align)
            levels = [(builder.add(k0v, ir.Constant(i64, lv)), 1 << lv) for lv in order]
            v = _levels(context, builder, v, offs, cf, caty, levels, True, sty.dtype,
                        align)
            _store(builder, v, _flat_ptrs(context, builder, dty, d_arr, offs), align)
            return context.get_dummy_value()

        return sig, codegen

    return _sblock


def _levels_vjp(context, builder, u, g, offs, coefs, caty, gacc, levels, spaced, dtype, align):
    """Backward through ``levels`` (as for :func:`_levels`, in their forward order) of the
    vectors ``u`` entering the first of them, with the output gradient ``g``: returns the input
    gradient and adds the lane-coefficient gradients into ``gacc = (GA, GB)``.

    Level ``k`` computes ``y[i] = A[i] x[i] + B[i] x[i ^ s]``, so ``gx[i] = conj(A[i]) g[i] +
    conj(B[i ^ s]) g[i ^ s]``, ``GA[i] += g[i] conj(x[i])`` and ``GB[i] += g[i] conj(x[i ^ s])``
    (conjugates only on complex data). The inputs of each level are recomputed in registers.
    """
    fma = _fma(builder, u[0].type, dtype)
    cplx = _is_complex(caty)
    arrays = [builder.extract_value(coefs, i) for i in range(caty.count)]
    garrays = [builder.extract_value(gacc, i) for i in range(caty.count)]
    st0 = context.make_array(caty.dtype)(context, builder, arrays[0])
    row_len = builder.extract_value(st0.shape, 1)
    if cplx:
        row_len = builder.shl(row_len, ir.Constant(row_len.type, 1))
    i64 = row_len.type
    inputs = []
    v = u
    for level in levels:
        inputs.append(v)
        v = _levels(context, builder, v, offs, coefs, caty, [level], spaced, dtype, align)
    nv = len(u)

    def other(vecs, q, stride):  # the vector holding lane i ^ s of lane i of vector q
        if spaced:
            return vecs[q ^ stride]
        if stride < LANES:
            return _partner(builder, vecs[q], stride)
        return vecs[q ^ (stride // LANES)]

    for (k, stride), x in zip(levels[::-1], inputs[::-1], strict=True):
        row = builder.mul(row_len, k if not isinstance(k, int) else ir.Constant(i64, k))
        flat = [builder.add(row, o) for o in offs]
        a, b = (_load(builder, _flat_ptrs(context, builder, caty.dtype, arr, flat, dtype), align)
                for arr in arrays)
        gptrs = [_flat_ptrs(context, builder, caty.dtype, arr, flat, dtype) for arr in garrays]
        ga, gb = (_load(builder, p, align) for p in gptrs)
        ig = [_times_i(builder, w) for w in g] if cplx else None
        new_ga, new_gb, new_g = [], [], []
        for q in range(nv):
            xp = other(x, q, stride)
            gp = other(g, q, stride)
            bp = other(b, q, stride)
            if cplx:
                # g conj(x) = Re(x) g - Im(x) (i g); conj(c) g = Re(c) g - Im(c) (i g)
                igp = other(ig, q, stride)
                acc = builder.call(fma, [builder.shuffle_vector(x[q], x[q], _DUP_RE), g[q],
                                         ga[q]])
                new_ga.append(builder.call(fma, [builder.fneg(builder.shuffle_vector(
                    x[q], x[q], _DUP_IM)), ig[q], acc]))
                acc = builder.call(fma, [builder.shuffle_vector(xp, xp, _DUP_RE), g[q], gb[q]])
                new_gb.append(builder.call(fma, [builder.fneg(builder.shuffle_vector(
                    xp, xp, _DUP_IM)), ig[q], acc]))
                out = builder.fmul(builder.shuffle_vector(a[q], a[q], _DUP_RE), g[q])
                out = builder.call(fma, [builder.fneg(builder.shuffle_vector(a[q], a[q], _DUP_IM)),
                                         ig[q], out])
                out = builder.call(fma, [builder.shuffle_vector(bp, bp, _DUP_RE), gp, out])
                new_g.append(builder.call(fma, [builder.fneg(builder.shuffle_vector(
                    bp, bp, _DUP_IM)), igp, out]))
            else:
                new_ga.append(builder.call(fma, [g[q], x[q], ga[q]]))
                new_gb.append(builder.call(fma, [g[q], xp, gb[q]]))
                new_g.append(builder.call(fma, [bp, gp, builder.fmul(a[q], g[q])]))
        _store(builder, new_ga, gptrs[0], align)
        _store(builder, new_gb, gptrs[1], align)
        g = new_g
    return g


def _vjp_args_ok(u, g, gdst, coefs, gacc):
    return (_real_vector(u) and _real_vector(g) and _real_vector(gdst)
            and u.dtype == g.dtype == gdst.dtype and _coef_tuple(coefs, u.dtype)
            and gacc == coefs)


@cache
def butterfly_block_vjp(nv: int, increasing: bool):
    """Intrinsic ``(u, g, gdst, offset, coefs, gacc)``: backward through the levels of
    :func:`butterfly_block` on the ``16 * nv`` lanes at ``offset``: ``u`` holds the block's
    input, ``g`` the gradient of its output; the input gradient is written to ``gdst`` (which
    may be ``g``) and the lane-coefficient gradients are added into ``gacc``, a pair shaped
    and typed like ``coefs``."""

    @intrinsic
    def _bblock_vjp(typingctx, u, g, gdst, offset, coefs, gacc):
        if not _vjp_args_ok(u, g, gdst, coefs, gacc):
            return None
        sig = types.void(u, g, gdst, offset, coefs, gacc)

        def codegen(context, builder, signature, args):
            uty, gty, dty, oty, caty, _ = signature.args
            shift = 1 if _is_complex(caty) else 0
            n_levels = (LANES * nv).bit_length() - 1 - shift
            order = range(n_levels) if increasing else range(n_levels - 1, -1, -1)
            levels = [(k, 1 << (k + shift)) for k in order]
            u_arr, g_arr, d_arr, off, cf, ga = args
            off = context.cast(builder, off, oty, types.int64)
            align = uty.dtype.bitwidth // 8
            offs = [builder.add(off, ir.Constant(off.type, q * LANES)) for q in range(nv)]
            u = _load(builder, _flat_ptrs(context, builder, uty, u_arr, offs), align)
            g = _load(builder, _flat_ptrs(context, builder, gty, g_arr, offs), align)
            g = _levels_vjp(context, builder, u, g, offs, cf, caty, ga, levels, False,
                            uty.dtype, align)
            _store(builder, g, _flat_ptrs(context, builder, dty, d_arr, offs), align)
            return context.get_dummy_value()

        return sig, codegen

    return _bblock_vjp


@cache
def butterfly_spaced_block_vjp(nv: int, increasing: bool):
    """Intrinsic ``(u, g, gdst, offset, spacing, k0, coefs, gacc)``: backward through the
    levels of :func:`butterfly_spaced_block`, arguments as for :func:`butterfly_block_vjp`."""
    n_levels = nv.bit_length() - 1
    order = range(n_levels) if increasing else range(n_levels - 1, -1, -1)

    @intrinsic
    def _sblock_vjp(typingctx, u, g, gdst, offset, spacing, k0, coefs, gacc):
        if not (_vjp_args_ok(u, g, gdst, coefs, gacc)
                and all(isinstance(t, types.Integer) for t in (offset, spacing, k0))):
            return None
        sig = types.void(u, g, gdst, offset, spacing, k0, coefs, gacc)

        def codegen(context, builder, signature, args):
            uty, gty, dty, oty, pty, kty, caty, _ = signature.args
            u_arr, g_arr, d_arr, off, sp, k0v, cf, ga = args
            i64 = ir.IntType(64)
            off = context.cast(builder, off, oty, types.int64)
            sp = context.cast(builder, sp, pty, types.int64)
            k0v = context.cast(builder, k0v, kty, types.int64)
            align = uty.dtype.bitwidth // 8
            offs = [builder.add(off, builder.mul(sp, ir.Constant(i64, q))) for q in range(nv)]
            u = _load(builder, _flat_ptrs(context, builder, uty, u_arr, offs), align)
            g = _load(builder, _flat_ptrs(context, builder, gty, g_arr, offs), align)
            levels = [(builder.add(k0v, ir.Constant(i64, lv)), 1 << lv) for lv in order]
            g = _levels_vjp(context, builder, u, g, offs, cf, caty, ga, levels, True,
                            uty.dtype, align)
            _store(builder, g, _flat_ptrs(context, builder, dty, d_arr, offs), align)
            return context.get_dummy_value()

        return sig, codegen

    return _sblock_vjp


def _strided_vectors(context, builder, aty, arr, offset, stride, lanes):
    """Pointers to the ``lanes`` vectors of ``lanes`` elements at ``arr[offset + r * stride:]``."""
    ary = context.make_array(aty)(context, builder, arr)
    vty = ir.VectorType(context.get_data_type(aty.dtype), lanes)
    ptrs = []
    for r in range(lanes):
        at = builder.add(offset, builder.mul(stride, ir.Constant(stride.type, r)))
        ptrs.append(builder.bitcast(builder.gep(ary.data, [at]), vty.as_pointer()))
    return ptrs


def _transpose_masks(lanes):
    """Per level ``b = 1, 2, 4, ...``: the two shuffles that swap bit ``b`` of the row index with
    bit ``b`` of the lane index between rows ``i`` (bit clear) and ``i | b`` (bit set)."""
    out = []
    b = 1
    while b < lanes:
        lo = [c if not c & b else lanes + c - b for c in range(lanes)]
        hi = [c + b if not c & b else lanes + c for c in range(lanes)]
        out.append((b, _int_vec(lo), _int_vec(hi)))
        b *= 2
    return out


def transpose_lanes(itemsize: int) -> int:
    """Side of the square block :func:`transpose_block` moves: one register of the host's widest
    vector unit (16 float32 or 8 float64 with AVX-512), so that the block stays in registers."""
    from structlin._cpu._microkernel import VECTOR_BYTES

    return max(4, VECTOR_BYTES // itemsize)


@intrinsic
def transpose_block(typingctx, src, soff, sstride, dst, doff, dstride):
    """``dst[doff + c * dstride + r] = src[soff + r * sstride + c]`` for ``r, c < B`` with
    ``B = transpose_lanes(itemsize)``: a ``B x B`` block transposed in registers (``B`` loads,
    ``B log2 B`` two-source shuffles, ``B`` stores; ``vpermt2ps``/``vpermt2pd`` on AVX-512),
    where scalar code would store one element at a time."""
    if not (_real_vector(src) and _real_vector(dst) and src.dtype == dst.dtype
            and all(isinstance(t, types.Integer) for t in (soff, sstride, doff, dstride))):
        return None
    sig = types.void(src, types.intp, types.intp, dst, types.intp, types.intp)
    lanes = transpose_lanes(src.dtype.bitwidth // 8)

    def codegen(context, builder, signature, args):
        sty, _, _, dty, _, _ = signature.args
        s_arr, so, ss, d_arr, do, ds = args
        align = sty.dtype.bitwidth // 8
        v = _load(builder, _strided_vectors(context, builder, sty, s_arr, so, ss, lanes), align)
        for b, lo, hi in _transpose_masks(lanes):
            new = list(v)
            for i in range(lanes):
                if i & b:
                    continue
                new[i] = builder.shuffle_vector(v[i], v[i | b], lo)
                new[i | b] = builder.shuffle_vector(v[i], v[i | b], hi)
            v = new
        _store(builder, v, _strided_vectors(context, builder, dty, d_arr, do, ds, lanes), align)
        return context.get_dummy_value()

    return sig, codegen


def transpose_side(a) -> int:
    """:func:`transpose_lanes` of the array ``a``'s elements (callable in Numba code)."""
    return transpose_lanes(a.itemsize)


@overload(transpose_side)
def _transpose_side(a):
    side = transpose_lanes(a.dtype.bitwidth // 8)
    return lambda a: side
