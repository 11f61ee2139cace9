"""Numba kernels of Mamba's selective scan and its VJP.

Contract (shared with ``structlin.gpu.selective_scan``). ``r`` is float32 or float64, ``s`` is
``r`` for a real ``A`` or the complex type of ``r``; every array C-contiguous::

    u, delta, z (b, d, l) r;  D, delta_bias (d,) r;  A (d, n) s
    B, C (bB, gB, lB, n) s    bB in {1, b}, lB in {1, l}, d % gB == 0: channel c uses group
                              c // (d // gB); time-invariant B (d, n) is (1, d, 1, n)
    scan(u, delta, A, B, C, D, z, delta_bias, softplus, has_z, out, last_state)
        out (b, d, l) r, last_state (b, d, n) s
    scan_vjp(u, delta, A, B, C, D, z, delta_bias, softplus, has_z, g,
             gu, gdelta, gA, gB, gC, gD, gz, gbias)
        g, gu, gdelta, gz like u; gA like A; gB like B; gC like C; gD, gbias like D

with, per channel ``(i, c)`` and step ``t`` (``z`` is ignored unless ``has_z``)::

    dt_t = softplus(delta_t + delta_bias_c) (or without softplus)
    x_t  = exp(dt_t A_c) * x_{t-1} + dt_t u_t B_t          (x_{-1} = 0, n states)
    y_t  = sum_k x_t C_t  (2 Re of it for complex A);  o_t = y_t + D_c u_t
    out_t = o_t silu(z_t) if has_z else o_t;  last_state = x_{l-1}

Complex gradients follow PyTorch's convention (``dL/dRe + 1j dL/dIm``).

Real ``A`` (:func:`_scan_blocks`): one task per block of :data:`LANES` = 32 channels of one
batch row, in parallel (``prange`` over ``b * ceil(d / 32)``); the SIMD lanes are the channels,
so a step needs no horizontal sum: for each state ``k`` one vector loop over the 32 channels
updates ``x[k, :]`` (a per-thread ``(n, 32)`` array) and accumulates ``y[:]``, with B and C of a
shared or grouped layout read as one scalar per state (a block spanning groups, or a
time-invariant B/C, reads one value per lane). ``exp(dt A)`` is ``2**(dt A log2 e)`` (``A log2
e`` formed once per block) by :func:`_exp2_with`: two min/max, the rounding by the
``1.5 * 2**23`` constant, a degree-6 polynomial and the exponent bits, about ten vector
operations, its constants passed as loop-invariant values so that LLVM keeps them in
registers. The per-step scalars (softplus of ``delta + bias``, ``dt u``, branch-free and
vectorized along the time axis) and the epilogue (``D``, the ``silu`` gate) are computed for
chunks of :data:`CHUNK` steps; all helpers compile with ``error_model="numpy"`` (a division
that may raise ``ZeroDivisionError`` keeps a loop scalar). Complex ``A`` (:func:`_scan`): one
task per channel, lanes over the ``n`` states (complex ``exp`` per state and step). Memory:
the inputs and outputs, plus ``O(32 (n + CHUNK))`` per thread.

The VJP (one task per channel, lanes over the ``n`` states, real and complex) runs the adjoint
recurrence ``h_t = dL/dx_t = C_t go_t + exp(dt_{t+1} A) h_{t+1}`` backwards. The forward
states are checkpointed every :data:`CHUNK` steps (``O(n l / CHUNK)`` per task, local to the
thread); each chunk is recomputed from its checkpoint (states and
``exp(dt A)`` kept for the chunk), then walked backwards. ``B`` and ``C`` (shared over
channels), ``A``, ``D`` and ``delta_bias`` (shared over the batch) receive their gradients in
one partial sum per parallel part of the task range (:func:`_parts`), added up at the end: no
two threads write the same memory, and for a given thread count the result does not depend on
the scheduling.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from structlin._cpu._schedule import threads_for

__all__ = ["CHUNK", "scan", "scan_vjp"]

#: steps per chunk: the unit of the vectorized prologue/epilogue and of the VJP's checkpoints
CHUNK = 64


# ------------------------------------------------------------------ branch-free elementwise math


@intrinsic
def _bits_to_float(typingctx, i):
    """Reinterpret the bits of an int32 (int64) as a float32 (float64)."""
    if i == types.int32:
        sig = types.float32(types.int32)
        lty = ir.FloatType()
    elif i == types.int64:
        sig = types.float64(types.int64)
        lty = ir.DoubleType()
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], lty)

    return sig, codegen


@intrinsic
def _float_to_bits(typingctx, f):
    """Reinterpret the bits of a float32 (float64) as an int32 (int64)."""
    if f == types.float32:
        sig = types.int32(types.float32)
        lty = ir.IntType(32)
    elif f == types.float64:
        sig = types.int64(types.float64)
        lty = ir.IntType(64)
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], lty)

    return sig, codegen


# ln 2 in two parts (the high part with few bits, so that k * LN2_HI is exact)
_LN2_HI64, _LN2_LO64 = 0.693145751953125, 1.4286068203094173e-06
_LN2_HI32, _LN2_LO32 = np.float32(0.693359375), np.float32(-2.12194440e-4)
_LOG2E = 1.4426950408889634
# adding 1.5 * 2**52 (2**23) rounds to an integer held in the low mantissa bits
_MAGIC64 = 6755399441055744.0
_MAGIC32 = np.float32(12582912.0)
#: Taylor coefficients of 2**f = exp(f ln 2)
_EXP2_64 = tuple(0.6931471805599453 ** j / float(np.prod(np.arange(1, j + 1))) for j in range(14))


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _exp(x):
    """``exp(x)`` without a branch or a libm call (so that a loop of it vectorizes): relative
    error about one ulp; 0 below -708 (float64) / -87 (float32), inf above 709 / 88, NaN for
    NaN. Never compiled with ``reassoc`` (which would cancel the rounding by ``_MAGIC``)."""
    if isinstance(x, np.float32):
        # out-of-range arguments give garbage here, replaced by the selects at the end
        t = x * np.float32(_LOG2E) + _MAGIC32
        kf = t - _MAGIC32
        r = (x - kf * _LN2_HI32) - kf * _LN2_LO32
        # a degree-5 minimax polynomial of (exp(r) - 1 - r) / r**2 on |r| <= ln(2) / 2
        p = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        p = p * (r * r) + r + np.float32(1.0)
        scale = _bits_to_float(np.int32((_float_to_bits(t) + np.int32(127)) << np.int32(23)))
        e = p * scale
        e = np.float32(0.0) if x < np.float32(-87.0) else e
        return np.float32(np.inf) if x > np.float32(88.0) else e
    t = x * _LOG2E + _MAGIC64
    kf = t - _MAGIC64
    r = (x - kf * _LN2_HI64) - kf * _LN2_LO64
    p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
        1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (
            1.0 / 3628800 + r * (1.0 / 39916800 + r * (1.0 / 479001600
                                                       + r * (1.0 / 6227020800)))))))))))))
    scale = _bits_to_float((_float_to_bits(t) + np.int64(1023)) << np.int64(52))
    e = p * scale
    e = 0.0 if x < -708.0 else e
    return np.inf if x > 709.0 else e


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _exp2(y):
    """``2**y`` without a branch or a libm call, for the scan's ``exp(dt A) = 2**(dt A log2 e)``
    (``A log2 e`` formed once per channel): the argument is clamped to ``[-127, 128]`` by two
    min/max (NaN kept), so that the exponent bits give 0 below and inf above; the fraction
    ``|f| <= 1/2`` goes through a polynomial (float32: degree 6, fitted for relative error,
    below 1e-7; float64: Taylor degree 13, below 1e-17). Ten vector operations."""
    if isinstance(y, np.float32):
        yc = np.float32(-127.0) if y < np.float32(-127.0) else y
        yc = np.float32(128.0) if yc > np.float32(128.0) else yc
        t = yc + _MAGIC32
        f = yc - (t - _MAGIC32)
        p = np.float32(1.53458061e-04) * f + np.float32(1.33999313e-03)
        p = p * f + np.float32(9.61848898e-03)
        p = p * f + np.float32(5.55032878e-02)
        p = p * f + np.float32(2.40226469e-01)
        p = p * f + np.float32(6.93147206e-01)
        p = p * f + np.float32(1.0)
        return p * _bits_to_float(np.int32((_float_to_bits(t) + np.int32(127)) << np.int32(23)))
    yc = -1023.0 if y < -1023.0 else y
    yc = 1024.0 if yc > 1024.0 else yc
    t = yc + _MAGIC64
    f = yc - (t - _MAGIC64)
    p = _EXP2_64[13]
    for j in range(12, -1, -1):
        p = p * f + _EXP2_64[j]
    return p * _bits_to_float((_float_to_bits(t) + np.int64(1023)) << np.int64(52))


#: the constants of :func:`_exp2_with`: clamp bounds, rounding constant, exponent bias, then
#: the polynomial's coefficients from the constant term up (float32: 7 of them)
_EXP2_CONST32 = np.array([-127.0, 128.0, 12582912.0, 0.0, 1.0, 6.93147206e-01, 2.40226469e-01,
                          5.55032878e-02, 9.61848898e-03, 1.33999313e-03, 1.53458061e-04],
                         dtype=np.float32)
_EXP2_CONST64 = np.array([-1023.0, 1024.0, 6755399441055744.0, 0.0,
                          *(0.6931471805599453 ** j / float(np.prod(np.arange(1, j + 1)))
                            for j in range(14))])


@njit(cache=True, error_model="numpy")
def _exp2_constants(cst):
    """The constants of :func:`_exp2_with` as loop-invariant values read from an array: LLVM
    then keeps them in registers across a vector loop, where literal constants are re-loaded
    from the constant pool at every iteration (two instructions each)."""
    return (cst[0], cst[1], cst[2], cst[4], cst[5], cst[6], cst[7], cst[8], cst[9], cst[10])


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _exp2_with(y, K):
    """:func:`_exp2` of a float32 ``y`` with the constants ``K`` of :func:`_exp2_constants`."""
    if isinstance(y, np.float32):
        yc = K[0] if y < K[0] else y
        yc = K[1] if yc > K[1] else yc
        t = yc + K[2]
        f = yc - (t - K[2])
        p = K[9] * f + K[8]
        p = p * f + K[7]
        p = p * f + K[6]
        p = p * f + K[5]
        p = p * f + K[4]
        p = p * f + K[3]
        return p * _bits_to_float(np.int32((_float_to_bits(t) + np.int32(127)) << np.int32(23)))
    return _exp2(y)


@njit(cache=True, error_model="numpy")
def _one(v):
    """1 in the type of ``v`` (float32 stays float32: an int literal would promote it)."""
    if isinstance(v, np.float32):
        return np.float32(1.0)
    if isinstance(v, np.complex64):
        return np.complex64(1.0)
    if isinstance(v, np.complex128):
        return np.complex128(1.0)
    return 1.0


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _sigmoid(v):
    one = _one(v)
    return one / (one + _exp(-v))


# ------------------------------------------------------------------ helpers


@njit(cache=True, error_model="numpy")
def _real_part(v):
    """``v`` for real data; ``2 Re v`` for complex data (the output of a complex-A scan)."""
    if isinstance(v, (np.complex64, np.complex128)):
        return v.real + v.real
    return v


@njit(cache=True, error_model="numpy")
def _twice_if_complex(s, v):
    """``2 v`` when ``s`` is complex, else ``v`` (the adjoint of :func:`_real_part`)."""
    if isinstance(s, (np.complex64, np.complex128)):
        return v + v
    return v


def _is_complex(dtype) -> bool:
    return np.dtype(dtype).kind == "c"


@njit(cache=True, error_model="numpy")
def _group_geometry(d, B):
    """``(channels per group, batch stride, step stride)`` of a B/C array ``(bB, gB, lB, n)``
    flattened (strides in elements; 0 where the axis is broadcast)."""
    bB, gB, lB, n = B.shape
    cpg = d // gB
    sb = gB * lB * n if bB > 1 else 0
    st = n if lB > 1 else 0
    return cpg, sb, st


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _softplus_into(src, bias, t0, tn, dst):
    """``dst[:tn] = softplus(src[t0:t0 + tn] + bias)`` in one vector loop (the helpers written
    out: a call that LLVM does not inline keeps the loop scalar)."""
    if isinstance(bias, np.float32):
        for tt in range(tn):
            v = src[t0 + tt] + bias
            zero = np.float32(0.0)
            a = -v if v > zero else v
            m = v if v > zero else zero
            e = _exp(a)
            s = e / (np.float32(2.0) + e)
            q = s * s
            p = np.float32(1.0 / 15) * q + np.float32(1.0 / 13)
            p = p * q + np.float32(1.0 / 11)
            p = p * q + np.float32(1.0 / 9)
            p = p * q + np.float32(1.0 / 7)
            p = p * q + np.float32(1.0 / 5)
            p = p * q + np.float32(1.0 / 3)
            p = p * q + np.float32(1.0)
            dst[tt] = m + np.float32(2.0) * s * p
    else:
        for tt in range(tn):
            v = src[t0 + tt] + bias
            a = -v if v > 0.0 else v
            m = v if v > 0.0 else 0.0
            e = _exp(a)
            s = e / (2.0 + e)
            q = s * s
            p = 1.0 / 35
            for j in range(16, -1, -1):
                p = p * q + 1.0 / (2 * j + 1)
            dst[tt] = m + 2.0 * s * p


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _prologue(delta_row, u_row, bias, softplus, t0, tn, dtb, dub):
    """``dtb[:tn] = softplus(delta + bias)``, ``dub = dtb u`` for steps ``t0 .. t0 + tn``."""
    if softplus:
        _softplus_into(delta_row, bias, t0, tn, dtb)
    else:
        for tt in range(tn):
            dtb[tt] = delta_row[t0 + tt] + bias
    for tt in range(tn):
        dub[tt] = dtb[tt] * u_row[t0 + tt]


# ------------------------------------------------------------------ forward


@njit(cache=True, error_model="numpy", fastmath={"contract", "reassoc"})
def _channel_task(task, u, delta, A, B, C, D, z, bias, softplus, has_z, out, last):
    """Channel ``task`` of :func:`_scan` (lanes over the ``n`` states; the complex scan)."""
    d, l = u.shape[1], u.shape[2]
    n = A.shape[1]
    Bf = B.reshape(B.size)
    Cf = C.reshape(C.size)
    cpgB, sbB, stB = _group_geometry(d, B)
    cpgC, sbC, stC = _group_geometry(d, C)
    lBn = B.shape[2] * n
    lCn = C.shape[2] * n
    i = task // d
    c = task - i * d
    a_row = A[c]
    x = np.zeros(n, dtype=A.dtype)
    zA = _one(x[0]) - _one(x[0])
    dtb = np.empty(CHUNK, dtype=u.dtype)
    dub = np.empty(CHUNK, dtype=u.dtype)
    yb = np.empty(CHUNK, dtype=u.dtype)
    ob = i * sbB + (c // cpgB) * lBn
    oc = i * sbC + (c // cpgC) * lCn
    u_row = u[i, c]
    for t0 in range(0, l, CHUNK):
        tn = min(CHUNK, l - t0)
        _prologue(delta[i, c], u_row, bias[c], softplus, t0, tn, dtb, dub)
        for tt in range(tn):
            dtv = dtb[tt]
            duv = dub[tt]
            pb = ob + (t0 + tt) * stB
            pc = oc + (t0 + tt) * stC
            b_row = Bf[pb:pb + n]
            c_row = Cf[pc:pc + n]
            acc = zA
            for k in range(n):
                xv = _expa(dtv * a_row[k]) * x[k] + duv * b_row[k]
                x[k] = xv
                acc += xv * c_row[k]
            yb[tt] = _real_part(acc)
        _epilogue(yb, u_row, D[c], z[i, c] if has_z else u_row, has_z, t0, tn,
                  out[i, c])
    last[i, c] = x


@njit(cache=True, error_model="numpy", parallel=True, fastmath={"contract", "reassoc"})
def _scan(u, delta, A, B, C, D, z, bias, softplus, has_z, out, last):
    nb, d = u.shape[0], u.shape[1]
    for task in prange(nb * d):
        _channel_task(task, u, delta, A, B, C, D, z, bias, softplus, has_z, out, last)


@njit(cache=True, error_model="numpy")
def _expa(v):
    """``exp`` of a real (branch-free :func:`_exp`) or complex ``dt A``."""
    if isinstance(v, (np.complex64, np.complex128)):
        return np.exp(v)
    return _exp(v)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _epilogue(yb, u_row, Dc, z_row, has_z, t0, tn, out_row):
    if has_z:
        for tt in range(tn):
            zv = z_row[t0 + tt]
            out_row[t0 + tt] = (yb[tt] + Dc * u_row[t0 + tt]) * (zv * _sigmoid(zv))
    else:
        for tt in range(tn):
            out_row[t0 + tt] = yb[tt] + Dc * u_row[t0 + tt]


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _fill_rows(Bf, base, step_off, cpg, rows, c0, nw, uniform, Bl):
    """``Bl[k, w]`` = entry ``k`` of the B (or C) row of lane ``w`` (channel ``c0 + w``) at the
    step offset ``step_off``; ``rows`` is the stride between groups. One broadcast per entry
    when the block lies in one group."""
    n, W = Bl.shape
    if uniform:
        p = base + (c0 // cpg) * rows + step_off
        for k in range(n):
            v = Bf[p + k]
            row = Bl[k]
            for w in range(W):
                row[w] = v
    else:
        for w in range(nw):
            p = base + ((c0 + w) // cpg) * rows + step_off
            for k in range(n):
                Bl[k, w] = Bf[p + k]


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _step_shared(Bf, pb, Cf, pc, dt_row, du_row, X, AT, y_row, K):
    """One step of a block of lanes whose B and C rows are ``Bf[pb:pb + n]`` and
    ``Cf[pc:pc + n]`` for all lanes: ``y_row`` receives the outputs (before ``D`` and ``z``)."""
    n, W = X.shape
    y_row[:] = 0
    for k in range(n):
        bk = Bf[pb + k]
        ck = Cf[pc + k]
        xk = X[k]
        ak = AT[k]
        for w in range(W):
            xv = _exp2_with(dt_row[w] * ak[w], K) * xk[w] + du_row[w] * bk
            xk[w] = xv
            y_row[w] += xv * ck


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _step_rows(Bl, Cl, dt_row, du_row, X, AT, y_row, K):
    """:func:`_step_shared` with one B and C value per lane (``Bl[k, w]``, ``Cl[k, w]``)."""
    n, W = X.shape
    y_row[:] = 0
    for k in range(n):
        xk = X[k]
        ak = AT[k]
        bk = Bl[k]
        ck = Cl[k]
        for w in range(W):
            xv = _exp2_with(dt_row[w] * ak[w], K) * xk[w] + du_row[w] * bk[w]
            xk[w] = xv
            y_row[w] += xv * ck[w]


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _block_task(task, u, delta, A, B, C, D, z, bias, softplus, has_z, out, last, W, cst):
    """Block ``task`` of :func:`_scan_blocks`."""
    d, l = u.shape[1], u.shape[2]
    n = A.shape[1]
    Bf = B.reshape(B.size)
    Cf = C.reshape(C.size)
    cpgB, sbB, stB = _group_geometry(d, B)
    cpgC, sbC, stC = _group_geometry(d, C)
    lBn = B.shape[2] * n
    lCn = C.shape[2] * n
    nblk = (d + W - 1) // W
    i = task // nblk
    c0 = (task - i * nblk) * W
    nw = min(W, d - c0)
    K = _exp2_constants(cst)
    X = np.zeros((n, W), dtype=A.dtype)
    AT = np.zeros((n, W), dtype=A.dtype)
    for w in range(nw):
        for k in range(n):
            AT[k, w] = A[c0 + w, k] * _LOG2E
    Bl = np.zeros((n, W), dtype=A.dtype)
    Cl = np.zeros((n, W), dtype=A.dtype)
    dtb = np.zeros((CHUNK, W), dtype=u.dtype)
    dub = np.zeros((CHUNK, W), dtype=u.dtype)
    yb = np.empty((CHUNK, W), dtype=u.dtype)
    t_dt = np.empty(CHUNK, dtype=u.dtype)
    t_du = np.empty(CHUNK, dtype=u.dtype)
    uniB = (c0 // cpgB) == ((c0 + nw - 1) // cpgB)
    uniC = (c0 // cpgC) == ((c0 + nw - 1) // cpgC)
    # B and C time-varying and one row for the whole block: read as scalars
    shared = uniB and uniC and stB != 0 and stC != 0
    if stB == 0:
        _fill_rows(Bf, i * sbB, 0, cpgB, lBn, c0, nw, uniB, Bl)
    if stC == 0:
        _fill_rows(Cf, i * sbC, 0, cpgC, lCn, c0, nw, uniC, Cl)
    for t0 in range(0, l, CHUNK):
        tn = min(CHUNK, l - t0)
        for w in range(nw):
            _prologue(delta[i, c0 + w], u[i, c0 + w], bias[c0 + w], softplus, t0, tn,
                      t_dt, t_du)
            for tt in range(tn):
                dtb[tt, w] = t_dt[tt]
                dub[tt, w] = t_du[tt]
        for tt in range(tn):
            t = t0 + tt
            y_row = yb[tt]
            if shared:
                _step_shared(Bf, i * sbB + (c0 // cpgB) * lBn + t * stB, Cf,
                             i * sbC + (c0 // cpgC) * lCn + t * stC, dtb[tt], dub[tt], X,
                             AT, y_row, K)
                continue
            if stB != 0:
                _fill_rows(Bf, i * sbB, t * stB, cpgB, lBn, c0, nw, uniB, Bl)
            if stC != 0:
                _fill_rows(Cf, i * sbC, t * stC, cpgC, lCn, c0, nw, uniC, Cl)
            _step_rows(Bl, Cl, dtb[tt], dub[tt], X, AT, y_row, K)
        for w in range(nw):
            for tt in range(tn):
                t_dt[tt] = yb[tt, w]
            c = c0 + w
            _epilogue(t_dt, u[i, c], D[c], z[i, c] if has_z else u[i, c], has_z, t0, tn,
                      out[i, c])
    for w in range(nw):
        for k in range(n):
            last[i, c0 + w, k] = X[k, w]


@njit(cache=True, error_model="numpy", parallel=True, fastmath={"contract"})
def _scan_blocks(u, delta, A, B, C, D, z, bias, softplus, has_z, out, last, W, cst):
    """The real scan, lanes over blocks of ``W`` channels (see :func:`scan`)."""
    nb, d = u.shape[0], u.shape[1]
    nblk = (d + W - 1) // W
    for task in prange(nb * nblk):
        _block_task(task, u, delta, A, B, C, D, z, bias, softplus, has_z, out, last, W, cst)


#: channels per task of the real scan (the SIMD lanes: four AVX2 vectors of float32)
LANES = 32


def scan(u, delta, A, B, C, D, z, delta_bias, softplus, has_z, out, last_state):
    """Write the selective scan of ``u`` into ``out`` and its final state into ``last_state``
    (see the module docstring)."""
    if u.size == 0 and last_state.size == 0:
        return
    with threads_for(u.size * A.shape[1]):
        if _is_complex(A.dtype):
            _scan(u, delta, A, B, C, D, z, delta_bias, bool(softplus), bool(has_z), out,
                  last_state)
        else:
            _scan_blocks(u, delta, A, B, C, D, z, delta_bias, bool(softplus), bool(has_z),
                         out, last_state, LANES,
                         _EXP2_CONST32 if u.dtype == np.float32 else _EXP2_CONST64)


# ------------------------------------------------------------------ VJP


def _parts(tasks: int) -> int:
    """Number of parallel parts of the VJP's task range (one partial gradient sum each)."""
    return max(1, min(tasks, numba.get_num_threads()))


@njit(cache=True, error_model="numpy", fastmath={"contract", "reassoc"})
def _vjp_part(part, parts, u, delta, A, B, C, D, z, bias, softplus, has_z, g, gu, gdelta, gz,
              pA, pB, pC, pD, pbias):
    """The tasks of part ``part`` of ``parts`` of :func:`_scan_vjp` (one thread's share; a
    function of its own, so that the parallel kernel stays small to compile)."""
    nb, d, l = u.shape
    n = A.shape[1]
    Bf = B.reshape(B.size)
    Cf = C.reshape(C.size)
    cpgB, sbB, stB = _group_geometry(d, B)
    cpgC, sbC, stC = _group_geometry(d, C)
    lBn = B.shape[2] * n
    lCn = C.shape[2] * n
    nck = (l + CHUNK - 1) // CHUNK
    tasks = nb * d
    pBf = pB[part].reshape(B.size)
    pCf = pC[part].reshape(C.size)
    ck = np.empty((nck, n), dtype=A.dtype)
    xs = np.empty((CHUNK + 1, n), dtype=A.dtype)
    ea = np.empty((CHUNK, n), dtype=A.dtype)
    hc = np.empty(n, dtype=A.dtype)
    x = np.empty(n, dtype=A.dtype)
    gA_acc = np.empty(n, dtype=A.dtype)
    dtb = np.empty(CHUNK, dtype=u.dtype)
    dub = np.empty(CHUNK, dtype=u.dtype)
    for task in range(part * tasks // parts, (part + 1) * tasks // parts):
        i = task // d
        c = task - i * d
        a_row = A[c]
        ob = i * sbB + (c // cpgB) * lBn
        oc = i * sbC + (c // cpgC) * lCn
        u_row = u[i, c]
        d_row = delta[i, c]
        Dc = D[c]
        bc = bias[c]
        # forward: the state before each chunk
        x[:] = 0
        for j in range(nck):
            t0 = j * CHUNK
            tn = min(CHUNK, l - t0)
            ck[j] = x
            _prologue(d_row, u_row, bc, softplus, t0, tn, dtb, dub)
            for tt in range(tn):
                dtv = dtb[tt]
                duv = dub[tt]
                pb = ob + (t0 + tt) * stB
                b_row = Bf[pb:pb + n]
                for k in range(n):
                    x[k] = _expa(dtv * a_row[k]) * x[k] + duv * b_row[k]
        # backward, chunk by chunk from the end
        hc[:] = 0
        gA_acc[:] = 0
        zu = _one(Dc) - _one(Dc)
        zA = _one(x[0]) - _one(x[0])
        gD_acc = zu
        gb_acc = zu
        for j in range(nck - 1, -1, -1):
            t0 = j * CHUNK
            tn = min(CHUNK, l - t0)
            _prologue(d_row, u_row, bc, softplus, t0, tn, dtb, dub)
            xs[0] = ck[j]
            for tt in range(tn):
                dtv = dtb[tt]
                duv = dub[tt]
                pb = ob + (t0 + tt) * stB
                prev = xs[tt]
                cur = xs[tt + 1]
                e_row = ea[tt]
                b_row = Bf[pb:pb + n]
                for k in range(n):
                    e = _expa(dtv * a_row[k])
                    e_row[k] = e
                    cur[k] = e * prev[k] + duv * b_row[k]
            for tt in range(tn - 1, -1, -1):
                t = t0 + tt
                dtv = dtb[tt]
                duv = dub[tt]
                pb = ob + t * stB
                pc = oc + t * stC
                prev = xs[tt]
                cur = xs[tt + 1]
                e_row = ea[tt]
                b_row = Bf[pb:pb + n]
                c_row = Cf[pc:pc + n]
                gb_row = pBf[pb:pb + n]
                gc_row = pCf[pc:pc + n]
                gv = g[i, c, t]
                uv = u_row[t]
                if has_z:
                    zv = z[i, c, t]
                    sg = _sigmoid(zv)
                    acc = zA
                    for k in range(n):
                        acc += cur[k] * c_row[k]
                    o = _real_part(acc) + Dc * uv
                    one = _one(zv)
                    gz[i, c, t] = gv * o * sg * (one + zv * (one - sg))
                    go = gv * zv * sg
                else:
                    go = gv
                gD_acc += go * uv
                gyc = _twice_if_complex(zA, go)
                sB = zu
                sA = zu
                for k in range(n):
                    hk = gyc * np.conj(c_row[k]) + hc[k]
                    gc_row[k] += gyc * np.conj(cur[k])
                    q = hk * np.conj(prev[k] * e_row[k])
                    gA_acc[k] += q * dtv
                    sA += (q * np.conj(a_row[k])).real
                    sB += (hk * np.conj(b_row[k])).real
                    gb_row[k] += hk * duv
                    hc[k] = np.conj(e_row[k]) * hk
                gu[i, c, t] = go * Dc + dtv * sB
                gdt = sA + uv * sB
                if softplus:
                    gdt = gdt * _sigmoid(d_row[t] + bc)
                gdelta[i, c, t] = gdt
                gb_acc += gdt
        for k in range(n):
            pA[part, c, k] += gA_acc[k]
        pD[part, c] += gD_acc
        pbias[part, c] += gb_acc


@njit(cache=True, error_model="numpy", parallel=True)
def _scan_vjp(u, delta, A, B, C, D, z, bias, softplus, has_z, g, gu, gdelta, gz,
              pA, pB, pC, pD, pbias):
    parts = pA.shape[0]
    for part in prange(parts):
        _vjp_part(part, parts, u, delta, A, B, C, D, z, bias, softplus, has_z, g, gu, gdelta,
                  gz, pA, pB, pC, pD, pbias)


def scan_vjp(u, delta, A, B, C, D, z, delta_bias, softplus, has_z, g,
             gu, gdelta, gA, gB, gC, gD, gz, gbias):
    """Write the gradients of the selective scan for cotangent ``g`` (see the module
    docstring); ``gz`` is left untouched unless ``has_z``."""
    nb, d = u.shape[0], u.shape[1]
    gA[...] = 0
    gB[...] = 0
    gC[...] = 0
    gD[...] = 0
    gbias[...] = 0
    if u.size == 0:
        return
    with threads_for(u.size * A.shape[1]):
        parts = _parts(nb * d)
        pA = np.zeros((parts, *gA.shape), dtype=gA.dtype)
        pB = np.zeros((parts, *gB.shape), dtype=gB.dtype)
        pC = np.zeros((parts, *gC.shape), dtype=gC.dtype)
        pD = np.zeros((parts, *gD.shape), dtype=gD.dtype)
        pbias = np.zeros((parts, *gbias.shape), dtype=gbias.dtype)
        _scan_vjp(u, delta, A, B, C, D, z, delta_bias, bool(softplus), bool(has_z), g, gu,
                  gdelta, gz, pA, pB, pC, pD, pbias)
    np.sum(pA, axis=0, out=gA)
    np.sum(pB, axis=0, out=gB)
    np.sum(pC, axis=0, out=gC)
    np.sum(pD, axis=0, out=gD)
    np.sum(pbias, axis=0, out=gbias)
