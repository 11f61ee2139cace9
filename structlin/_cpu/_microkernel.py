"""A register-blocked small-GEMM micro-kernel, written as a Numba intrinsic.

BLAS is tuned for large products; on the 64 x 64 x T block products of the structured
families OpenBLAS spends most of its time packing and dispatching (about a third of the
machine's peak on AVX-512). Numba cannot express the alternative itself: it runs LLVM's loop
vectorizer but not the SLP vectorizer, so a fixed-size register tile stays scalar. The
intrinsic here emits the vector IR directly.

One call computes an ``mr x nv`` tile of accumulators, each a *vector* of ``lanes`` values
(one register of the CPU's widest vector unit, :data:`VECTOR_BYTES`: 16 float32 or 8 float64
with AVX-512, 8 or 4 with AVX2), over a reduction of length ``K``::

    acc[m][v] = sum_k  a(m, k) * b(v, k)              (one fma per (m, v, k))

    b(v, k) = the vector B[b_off + k * bk + v * bv : ... + lanes]
    a(m, k) = A[a_off + m * lda + k * ak] on every lane         (``broadcast=True``)
            = the vector A[a_off + m * lda + k * ak : ... + lanes]  (``broadcast=False``)

and stores (or, with ``accumulate=True``, adds) ``acc[m][v]`` to the vector
``C[c_off + m * ldc + v * cv : ... + lanes]``. All arrays are 1-D (flat views); offsets and
strides count elements.

- ``broadcast=True`` is the classical GEMM micro-kernel ``C (mr x nv*lanes) += A (mr x K) @ B
  (K x nv*lanes)``: a row of ``A`` is broadcast, ``B`` is a packed panel whose rows are
  contiguous runs of the output's columns.
- ``broadcast=False`` multiplies lane by lane: lane ``j`` of ``acc[m][v]`` is
  ``sum_k A[., j] B[., j]``, i.e. ``lanes`` independent products side by side. It is the
  product of a block-diagonal factor whose blocks are interleaved with the data (the lanes
  index the blocks, see :mod:`structlin._cpu.monarch`).

Each step of the ``K`` loop loads ``mr + nv`` operands for ``mr * nv`` fmas; with ``mr * nv``
= 24 on AVX-512 (12 on AVX2, :data:`MAX_NV`) the accumulators fill most of the 32 (16)
vector registers and the loads stay below one per fma, so the loop runs at the fma unit's
rate while its operands come from the L1/L2 cache. The vector width and the tile are chosen
for the CPU Numba compiles for (:func:`_host_vectors`); the IR is the same everywhere.
"""

from __future__ import annotations

import platform
from functools import cache

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def _host_vectors() -> tuple[int, int]:
    """``(bytes of one vector register, vectors per row of the register tile)`` of the CPU
    Numba compiles for: 64 and 4 with AVX-512 (32 registers), 32 and 2 with AVX/AVX2 (16
    registers), 16 and 2 with SSE only, 16 and 4 elsewhere (NEON: 32 registers). A tile of
    ``MR x nv`` vectors then leaves registers for the operands; with 64-byte vectors on AVX2
    the 6 x 4 tile needed 48 registers and spilled (measured: a quarter of the peak)."""
    import llvmlite.binding as ll
    import numba

    name = numba.config.CPU_NAME
    if name and name != "host":  # a pinned target: trust the features it was given
        feats = {f[1:] for f in (numba.config.CPU_FEATURES or "").split(",") if f[:1] == "+"}
    else:
        feats = {k for k, v in ll.get_host_cpu_features().items() if v}
    if not _X86:
        return 16, 4
    if "avx512f" in feats:
        return 64, 4
    if "avx" in feats:
        return 32, 2
    return 16, 2


#: bytes of one vector of accumulators (one register of the widest vector unit) and the most
#: vectors per row of the register tile, for the CPU Numba compiles for
VECTOR_BYTES, MAX_NV = _host_vectors()
REAL = (types.float32, types.float64)
#: outputs at least this large are written with non-temporal stores (they cannot stay cached)
STREAM_BYTES = 1 << 23
def lanes_of(itemsize: int) -> int:
    """Lanes of one vector for elements of ``itemsize`` bytes."""
    return VECTOR_BYTES // itemsize


def _flat(t) -> bool:
    return isinstance(t, types.Array) and t.ndim == 1 and t.dtype in REAL


def _fma(builder, vty, dtype):
    name = f"llvm.fma.v{vty.count}f{dtype.bitwidth}"
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3), name)


def _define(module, dt, elt, mr: int, nv: int, broadcast: bool, accumulate: bool):
    """The micro-kernel as its own LLVM function (``noinline``): its register allocation then
    does not depend on the loops of the caller, where the accumulators would otherwise compete
    with the caller's live values and spill (measured: 4x slower when inlined)."""
    width = lanes_of(dt.bitwidth // 8)
    vty = ir.VectorType(elt, width)
    i64 = ir.IntType(64)
    ptr = elt.as_pointer()
    name = (f"structlin_outer_{dt}_{mr}x{nv}_{'b' if broadcast else 'v'}"
            f"{'_acc' if accumulate else ''}")
    try:
        return module.get_global(name)
    except KeyError:
        pass
    fnty = ir.FunctionType(ir.VoidType(), [ptr, ptr, ptr] + [i64] * 7 + [ir.IntType(1)])
    fn = ir.Function(module, fnty, name)
    fn.linkage = "linkonce_odr"
    fn.attributes.add("noinline")
    fn.attributes.add("nounwind")
    pa, pb, pc, lda, ak, bk, bv, ldc, cv, kk, stream = fn.args
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    align = dt.bitwidth // 8
    fma = _fma(builder, vty, dt)
    splat0 = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
    # accumulators in stack slots: LLVM's mem2reg turns them into registers (SSA values)
    acc = [[builder.alloca(vty) for _ in range(nv)] for _ in range(mr)]
    for row in acc:
        for a in row:
            builder.store(ir.Constant(vty, None), a)
    a_rows = [builder.gep(pa, [builder.mul(lda, ir.Constant(i64, m))]) for m in range(mr)]
    b_cols = [builder.mul(bv, ir.Constant(i64, v)) for v in range(nv)]
    with cgutils.for_range(builder, kk) as loop:
        k = loop.index
        ka = builder.mul(k, ak)
        brow = builder.gep(pb, [builder.mul(k, bk)])
        bvec = []
        for v in range(nv):
            ld = builder.load(builder.bitcast(builder.gep(brow, [b_cols[v]]), vty.as_pointer()))
            ld.align = align
            bvec.append(ld)
        for m in range(mr):
            p = builder.gep(a_rows[m], [ka])
            if broadcast:
                s = builder.load(p)
                s.align = align
                av = builder.insert_element(ir.Constant(vty, ir.Undefined), s,
                                            ir.Constant(ir.IntType(32), 0))
                av = builder.shuffle_vector(av, av, splat0)
            else:
                av = builder.load(builder.bitcast(p, vty.as_pointer()))
                av.align = align
            for v in range(nv):
                builder.store(builder.call(fma, [av, bvec[v], builder.load(acc[m][v])]),
                              acc[m][v])
    c_ptrs = []
    for m in range(mr):
        crow = builder.gep(pc, [builder.mul(ldc, ir.Constant(i64, m))])
        c_ptrs.append([builder.bitcast(builder.gep(crow, [builder.mul(cv, ir.Constant(i64, v))]),
                                       vty.as_pointer()) for v in range(nv)])
    nt = module.add_metadata([ir.Constant(ir.IntType(32), 1)])
    with builder.if_else(stream) as (streamed, cached):
        for nontemporal in (True, False):
            with streamed if nontemporal else cached:
                for m in range(mr):
                    for v in range(nv):
                        val = builder.load(acc[m][v])
                        if accumulate:
                            old = builder.load(c_ptrs[m][v])
                            old.align = VECTOR_BYTES if nontemporal else align
                            val = builder.fadd(old, val)
                        st = builder.store(val, c_ptrs[m][v])
                        if nontemporal:
                            st.align = VECTOR_BYTES
                            st.set_metadata("nontemporal", nt)
                        else:
                            st.align = align
    builder.ret_void()
    return fn


@cache
def outer_block(mr: int, nv: int, broadcast: bool, accumulate: bool = False):
    """Intrinsic ``(A, a_off, lda, ak, B, b_off, bk, bv, C, c_off, ldc, cv, K, stream)``
    computing one ``mr x nv`` tile of vectors (see the module docstring). ``A``, ``B``, ``C``
    are 1-D arrays of one real dtype, ``stream`` a bool and the other arguments integers.

    With ``stream`` true the results are written with non-temporal stores, which bypass the
    caches (no read of the destination line before it is overwritten): for an output much
    larger than the caches that is written once. Every vector of ``C`` must then be 64-byte
    aligned, and the caller issues :func:`store_fence` before the data is read elsewhere.
    """

    @intrinsic
    def _outer(typingctx, A, a_off, lda, ak, B, b_off, bk, bv, C, c_off, ldc, cv, K, stream):
        ints = (a_off, lda, ak, b_off, bk, bv, c_off, ldc, cv, K)
        if not (_flat(A) and _flat(B) and _flat(C) and A.dtype == B.dtype == C.dtype
                and all(isinstance(t, types.Integer) for t in ints)
                and isinstance(stream, types.Boolean)):
            return None
        sig = types.void(A, a_off, lda, ak, B, b_off, bk, bv, C, c_off, ldc, cv, K, stream)

        def codegen(context, builder, signature, args):
            tys = signature.args
            dt = tys[0].dtype
            elt = context.get_data_type(dt)

            def i(n):
                return context.cast(builder, args[n], tys[n], types.int64)

            def at(n, off):
                data = context.make_array(tys[n])(context, builder, args[n]).data
                return builder.gep(data, [i(off)])

            fn = _define(builder.module, dt, elt, mr, nv, broadcast, accumulate)
            flag = builder.trunc(context.cast(builder, args[13], tys[13], types.int64),
                                 ir.IntType(1))
            builder.call(fn, [at(0, 1), at(4, 5), at(8, 9), i(2), i(3), i(6), i(7), i(10),
                              i(11), i(12), flag])
            return context.get_dummy_value()

        return sig, codegen

    return _outer


@intrinsic
def prefetch(typingctx, arr, offset):
    """Hint that ``arr[offset]`` will be read soon: fetch its cache line into the L2 cache
    (``prefetcht1`` on x86; nothing where the target has no prefetch)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(offset, types.Integer)):
        return None
    sig = types.void(arr, offset)

    def codegen(context, builder, signature, args):
        aty, oty = signature.args
        data = context.make_array(aty)(context, builder, args[0]).data
        p = builder.bitcast(builder.gep(data, [context.cast(builder, args[1], oty, types.int64)]),
                            ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [p.type, i32, i32, i32]),
            "llvm.prefetch.p0")
        builder.call(fn, [p, i32(0), i32(2), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def stream_copy(typingctx, src, s_off, dst, d_off, n):
    """``dst[d_off : d_off + n] = src[s_off : s_off + n]`` with non-temporal stores (which
    bypass the caches: no read of the destination lines first), for results written once to
    an array larger than the caches. ``n`` must be a multiple of the vector lanes and
    ``dst[d_off]`` aligned to :data:`VECTOR_BYTES`; ``src`` may be unaligned. The caller issues
    :func:`store_fence` before the data is read elsewhere."""
    ints = (s_off, d_off, n)
    if not (_flat(src) and _flat(dst) and src.dtype == dst.dtype
            and all(isinstance(t, types.Integer) for t in ints)):
        return None
    sig = types.void(src, s_off, dst, d_off, n)

    def codegen(context, builder, signature, args):
        tys = signature.args
        dt = tys[0].dtype
        elt = context.get_data_type(dt)
        vty = ir.VectorType(elt, lanes_of(dt.bitwidth // 8))
        i64 = ir.IntType(64)

        def i(k):
            return context.cast(builder, args[k], tys[k], types.int64)

        ps = builder.gep(context.make_array(tys[0])(context, builder, args[0]).data, [i(1)])
        pd = builder.gep(context.make_array(tys[2])(context, builder, args[2]).data, [i(3)])
        nt = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        count = builder.udiv(i(4), ir.Constant(i64, vty.count))
        with cgutils.for_range(builder, count) as loop:
            off = builder.mul(loop.index, ir.Constant(i64, vty.count))
            v = builder.load(builder.bitcast(builder.gep(ps, [off]), vty.as_pointer()))
            v.align = dt.bitwidth // 8
            st = builder.store(v, builder.bitcast(builder.gep(pd, [off]), vty.as_pointer()))
            st.align = VECTOR_BYTES
            st.set_metadata("nontemporal", nt)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def store_fence(typingctx):
    """A store fence: orders the non-temporal stores of :func:`outer_block` (``stream``) before
    whatever the thread stores next, such as the end of a parallel region (they are weakly
    ordered on x86)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _X86:  # LLVM's portable fence becomes a locked instruction, which AMD does not
            # document as ordering non-temporal stores; sfence does
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse.sfence")
            builder.call(fn, [])
        else:
            builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen



# --------------------------------------------------------------------------- shared call sites
# The variants the kernels use, and Numba functions choosing among them at run time (an
# intrinsic's register tile is fixed when it is compiled): ``mr = MR`` rows by ``nv`` = 1, 2
# or 4 vectors, broadcast or lane by lane, storing or accumulating.

#: rows of the register tile (its columns: 4 vectors, fewer at the edges)
MR = 6
_B1, _B2, _B4, _B1A, _B2A, _B4A = (outer_block(MR, nv, True, acc)
                                   for acc in (False, True) for nv in (1, 2, 4))
_L1, _L2, _L4, _L1A, _L2A, _L4A = (outer_block(MR, nv, False, acc)
                                   for acc in (False, True) for nv in (1, 2, 4))


@njit(cache=True, inline="always")
def vector_lanes(a):
    """Lanes of one vector for the elements of the array ``a``."""
    return VECTOR_BYTES // a.itemsize


@njit(cache=True, inline="always")
def tile_width(left):
    """Vectors of the register tile (4, 2 or 1, at most :data:`MAX_NV`) for ``left`` vectors
    of output columns still to do."""
    return 4 if left >= 4 and MAX_NV >= 4 else (2 if left >= 2 else 1)


@njit(cache=True, inline="always")
def aligned(n, dtype):
    """An uninitialised 1-d array of ``n`` elements whose data is 64-byte aligned."""
    buf = np.empty(n + 64, dtype=dtype)
    off = ((64 - buf.ctypes.data % 64) % 64) // buf.itemsize
    return buf[off : off + n]


@njit(cache=True, inline="always")
def bcast_call(nv, acc, src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream):
    """The broadcast micro-kernel ``MR x nv`` (``nv`` in 1, 2, 4), accumulating if ``acc``;
    the other arguments are those of :func:`outer_block`."""
    if acc:
        if nv == 4:
            _B4A(src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream)
        elif nv == 2:
            _B2A(src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream)
        else:
            _B1A(src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream)
    elif nv == 4:
        _B4(src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream)
    elif nv == 2:
        _B2(src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream)
    else:
        _B1(src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream)


@njit(cache=True, inline="always")
def lane_call(nv, acc, src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream):
    """The lane-by-lane micro-kernel ``MR x nv``, as :func:`bcast_call`."""
    if acc:
        if nv == 4:
            _L4A(src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream)
        elif nv == 2:
            _L2A(src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream)
        else:
            _L1A(src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream)
    elif nv == 4:
        _L4(src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream)
    elif nv == 2:
        _L2(src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream)
    else:
        _L1(src, a, lda, ak, w, b, bk, bv, dst, c, ldc, cv, k, stream)


def aligned_empty(shape, dtype):
    """``np.empty(shape, dtype)`` whose data is 64-byte aligned (for non-temporal stores)."""
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buf = np.empty(nbytes + 64, dtype=np.uint8)
    off = -buf.ctypes.data % 64
    return buf[off : off + nbytes].view(dtype).reshape(shape)


