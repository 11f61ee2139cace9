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
:func:`structlin._cpu.butterfly.lane_coefficients`). Only real float32/float64 are handled here.
"""

from __future__ import annotations

from functools import cache

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: lanes of one vector (one AVX-512 register of float32)
LANES = 16
_REAL = (types.float32, types.float64)


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


@cache
def butterfly_block(nv: int, increasing: bool):
    """Intrinsic ``(src, dst, offset, A, B)``: butterfly levels ``0 .. log2(16 nv) - 1`` on the
    ``16 * nv`` elements ``src[offset:]``, written to ``dst[offset:]``.

    ``A`` and ``B`` are C-contiguous ``(K, n)`` lane coefficients (``K >=`` the number of levels,
    ``n`` the row length, ``offset`` counted within the row); ``increasing`` applies level 0
    first, otherwise the highest level first.
    """
    n_levels = (LANES * nv).bit_length() - 1
    order = range(n_levels) if increasing else range(n_levels - 1, -1, -1)

    @intrinsic
    def _bblock(typingctx, src, dst, offset, A, B):
        if not (_real_vector(src) and _real_vector(dst) and dst.dtype == src.dtype
                and isinstance(A, types.Array) and A.ndim == 2 and A.dtype == src.dtype
                and B == A):
            return None
        sig = types.void(src, dst, offset, A, B)

        def codegen(context, builder, signature, args):
            sty, dty, _, aty, _ = signature.args
            s_arr, d_arr, off, a_arr, b_arr = args
            align = sty.dtype.bitwidth // 8
            v = _load(builder, _vectors(context, builder, sty, s_arr, off, nv), align)
            a_st = context.make_array(aty)(context, builder, a_arr)
            row_len = builder.extract_value(a_st.shape, 1)
            for k in order:
                s = 1 << k
                row_off = builder.add(builder.mul(row_len, ir.Constant(row_len.type, k)), off)
                ca = _load(builder, _flat_vectors(context, builder, aty, a_arr, row_off, nv),
                           align)
                cb = _load(builder, _flat_vectors(context, builder, aty, b_arr, row_off, nv),
                           align)
                fma = _fma(builder, v[0].type, sty.dtype)
                new = []
                for q in range(nv):
                    p = _partner(builder, v[q], s) if s < LANES else v[q ^ (s // LANES)]
                    new.append(builder.call(fma, [cb[q], p, builder.fmul(ca[q], v[q])]))
                v = new
            _store(builder, v, _vectors(context, builder, dty, d_arr, off, nv), align)
            return context.get_dummy_value()

        return sig, codegen

    return _bblock


def _flat_vectors(context, builder, aty, arr, flat_offset, nv):
    """Like :func:`_vectors` for a C-contiguous array indexed by a flat element offset."""
    ary = context.make_array(aty)(context, builder, arr)
    elt = context.get_data_type(aty.dtype)
    vty = ir.VectorType(elt, LANES)
    base = builder.gep(ary.data, [flat_offset])
    return [builder.bitcast(builder.gep(base, [ir.Constant(flat_offset.type, q * LANES)]),
                            vty.as_pointer()) for q in range(nv)]


@cache
def butterfly_spaced_block(nv: int, increasing: bool):
    """Intrinsic ``(src, dst, offset, spacing, k0, A, B)``: butterfly levels
    ``k0 .. k0 + log2(nv) - 1`` (strides ``spacing * d``, ``spacing == 2**k0 >= 16``) on the
    ``nv`` vectors of 16 consecutive elements at ``offset + q * spacing``, ``q < nv``; lane
    coefficients ``A``, ``B`` as in :func:`butterfly_block`."""
    n_levels = nv.bit_length() - 1
    order = range(n_levels) if increasing else range(n_levels - 1, -1, -1)

    @intrinsic
    def _sblock(typingctx, src, dst, offset, spacing, k0, A, B):
        if not (_real_vector(src) and _real_vector(dst) and dst.dtype == src.dtype
                and isinstance(A, types.Array) and A.ndim == 2 and A.dtype == src.dtype
                and B == A and all(isinstance(t, types.Integer) for t in (offset, spacing, k0))):
            return None
        sig = types.void(src, dst, offset, spacing, k0, A, B)

        def codegen(context, builder, signature, args):
            sty, dty, oty, pty, kty, aty, _ = signature.args
            s_arr, d_arr, off, sp, k0v, a_arr, b_arr = args
            i64 = ir.IntType(64)
            off = context.cast(builder, off, oty, types.int64)
            sp = context.cast(builder, sp, pty, types.int64)
            k0v = context.cast(builder, k0v, kty, types.int64)
            align = sty.dtype.bitwidth // 8
            offs = [builder.add(off, builder.mul(sp, ir.Constant(i64, q))) for q in range(nv)]

            def ptrs(aty_, arr, flat):
                ary = context.make_array(aty_)(context, builder, arr)
                vty = ir.VectorType(context.get_data_type(aty_.dtype), LANES)
                return [builder.bitcast(builder.gep(ary.data, [f]), vty.as_pointer())
                        for f in flat]

            v = _load(builder, ptrs(sty, s_arr, offs), align)
            a_st = context.make_array(aty)(context, builder, a_arr)
            row_len = builder.extract_value(a_st.shape, 1)
            fma = _fma(builder, v[0].type, sty.dtype)
            for lv in order:
                d = 1 << lv
                row = builder.mul(row_len, builder.add(k0v, ir.Constant(i64, lv)))
                flat = [builder.add(row, o) for o in offs]
                ca = _load(builder, ptrs(aty, a_arr, flat), align)
                cb = _load(builder, ptrs(aty, b_arr, flat), align)
                v = [builder.call(fma, [cb[q], v[q ^ d], builder.fmul(ca[q], v[q])])
                     for q in range(nv)]
            _store(builder, v, ptrs(dty, d_arr, offs), align)
            return context.get_dummy_value()

        return sig, codegen

    return _sblock
