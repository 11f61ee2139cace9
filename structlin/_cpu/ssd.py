"""Numba kernel of Mamba-2's state space duality (SSD): the chunked scan of a scalar-decay
SSM, which is also the product with a semiseparable matrix.

Contract (shared with ``structlin.gpu.ssd``); arrays C-contiguous, float32 or float64, one
dtype; ``x (nb, l, h, p)``, ``a (nb, l, h)``, ``b`` and ``c (nb, l, g, n)`` with ``h % g == 0``
(head ``k`` reads group ``k // (h // g)``); states are stored transposed, ``S^T`` of shape
``(n, p)``: ``s0`` and ``s_final (nb, h, n, p)``::

    chunk_scan(x, a, b, c, s0, chunk, reverse, y, s_final)
        reverse = 0:  S_t = exp(a_t) S_{t-1} + x_t b_t^T   (S_{-1} = s0),   y_t = S_t c_t
        reverse = 1:  S_t = exp(a_{t+1}) S_{t+1} + x_t b_t^T  (S_l = s0, a_l = 0),  y_t = S_t c_t
        s_final = S_{l-1} (reverse = 0) or S_0 (reverse = 1); chunks are the positions
        [k chunk, min(l, (k + 1) chunk)) in either direction.

The VJP needs nothing else: with the roles of the arguments exchanged the same scan gives
``M^T g`` (reverse), ``S_t^T g_t`` and ``R_t^T x_t`` (see :func:`structlin.ssd._backward`).

Algorithm (Dao and Gu, arXiv:2405.21060, section 6): per chunk of ``q <= chunk`` steps the
local log-decays are summed, ``u_i = a_{t0} + ... + a_{t0+i}``, and

1. (parallel over batch x heads x chunks) the chunk's own state
   ``sum_j exp(u_{q-1} - u_j) b_j x_j^T`` (a ``n x q x p`` product);
2. (one pass per batch x head) the states passed between chunks, one ``n x p`` update per
   chunk: ``S_k = exp(u_{q-1}) S_{k-1} + local_k``;
3. (parallel over batch x heads x chunks) the output, written once:
   ``y_i = exp(u_i) c_i . S_{k-1} + sum_{j <= i} (c_i . b_j) exp(u_i - u_j) x_j``, the
   diagonal block ``(L o C B^T) X`` with ``L[i, j] = exp(u_i - u_j)`` a difference of sums
   inside one chunk, so that ``exp`` only sees non-positive arguments when ``a <= 0`` (no
   overflow and no NaN for any chunk size): products of ``q x n x p`` and ``q x q x n``,
   ``q x q x p`` (their lower triangles).

Cost ``O(l (q (n + p) + n p))`` flops per head, memory ``O(nc p n)`` per head for the states;
the ``l x l`` matrix never exists. The small matrix products run on per-task copies of the
chunk as loops whose inner loop runs along a contiguous row (vectorized by LLVM, no BLAS call
per tile); small problems run on one thread.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from structlin._cpu._schedule import threads_for

__all__ = ["chunk_scan"]


@njit(cache=True, inline="always")
def _position(k, i, chunk, l, reverse):
    """Sequence position of step ``i`` (in processing order) of chunk ``k`` (the chunk
    ``[k chunk, (k + 1) chunk)`` in either direction)."""
    t0 = k * chunk
    if reverse:
        t1 = min(l, t0 + chunk)
        return t1 - 1 - i
    return t0 + i


#: floor of a log-decay step (float64, float32): ``exp`` of it is exactly 0 already, and
#: clamping there keeps a very negative or -inf step (a reset of the state) from spoiling the
#: differences of the cumulative sums after it (-inf - -inf would be NaN)
FLOOR64 = -800.0
FLOOR32 = -110.0


@njit(cache=True, inline="always")
def _load(x, a, b, c, bi, hi, gi, k, chunk, reverse, xb, bb, cb, u):
    """Copy chunk ``k`` of head ``(bi, hi)`` into the buffers; ``u`` = the running sum of the
    log-decays (of ``a_{t+1}`` in reverse order, each clamped at the floor; NaN stays NaN).
    Returns the chunk length."""
    l = x.shape[1]
    floor = a.dtype.type(FLOOR32 if a.itemsize == 4 else FLOOR64)
    t0 = k * chunk
    q = min(l, t0 + chunk) - t0
    acc = a.dtype.type(0.0)
    for i in range(q):
        t = _position(k, i, chunk, l, reverse)
        if reverse:
            av = a[bi, t + 1, hi] if t + 1 < l else a.dtype.type(0.0)
        else:
            av = a[bi, t, hi]
        if av < floor:
            av = floor
        acc += av
        u[i] = acc
        xb[i, :] = x[bi, t, hi, :]
        bb[i, :] = b[bi, t, gi, :]
        cb[i, :] = c[bi, t, gi, :]
    return q


#: rows of a block of the decay mask sharing one anchor (see :func:`_decay_mask`)
ANCHOR = 16


@njit(cache=True)
def _decay_mask(w, u, q, e2):
    """``w[i, j] *= exp(u_i - u_j)`` for ``j <= i``, 0 above the diagonal.

    Rows come in blocks of :data:`ANCHOR` starting at ``m``; left of the block the factor is
    ``exp(u_i - u_m) exp(u_m - u_j)`` (both arguments non-positive when ``a <= 0``, as
    ``j < m <= i``): ``ANCHOR + m`` exponentials per block instead of ``ANCHOR m``, and a
    multiply loop that vectorizes. Inside the block, ``exp(u_i - u_j)`` directly.
    """
    for m in range(0, q, ANCHOR):
        m1 = min(q, m + ANCHOR)
        um = u[m]
        for j in range(m):
            e2[j] = math.exp(um - u[j])
        for i in range(m, m1):
            e1 = math.exp(u[i] - um)
            row = w[i]
            for j in range(m):
                row[j] *= e1 * e2[j]
            for j in range(m, i + 1):
                row[j] *= math.exp(u[i] - u[j])
            for j in range(i + 1, q):
                row[j] = 0.0


@njit(cache=True, fastmath={"contract"})
def _lower_nt(A, BT, w, q):
    """``w[i, j] = sum_k A[i, k] BT[k, j]`` for ``j <= i < q``, four rows at a time (each row of
    ``BT`` loaded once per four rows); entries right of the diagonal inside a block of four
    rows are computed too, and overwritten by :func:`_decay_mask`."""
    nk = A.shape[1]
    for i0 in range(0, q, 4):
        i1 = min(q, i0 + 4)
        m = i1
        w[i0:i1, :m] = 0.0
        if i1 - i0 == 4:
            r0, r1, r2, r3 = w[i0, :m], w[i0 + 1, :m], w[i0 + 2, :m], w[i0 + 3, :m]
            for k in range(nk):
                a0, a1, a2, a3 = A[i0, k], A[i0 + 1, k], A[i0 + 2, k], A[i0 + 3, k]
                bk = BT[k, :m]
                for j in range(m):
                    bj = bk[j]
                    r0[j] += a0 * bj
                    r1[j] += a1 * bj
                    r2[j] += a2 * bj
                    r3[j] += a3 * bj
        else:
            for i in range(i0, i1):
                row = w[i, :m]
                for k in range(nk):
                    s = A[i, k]
                    bk = BT[k, :m]
                    for j in range(m):
                        row[j] += s * bk[j]


@njit(cache=True, fastmath={"contract"})
def _lower_mm_add(w, V, out, q):
    """``out[i] += sum_{j <= i} w[i, j] V[j]``, four rows at a time (each row of ``V`` loaded
    once per four rows below the block; exactly the triangle inside it, so that a non-finite
    ``V[j]`` never reaches a row ``i < j``)."""
    width = out.shape[1]
    for i0 in range(0, q, 4):
        i1 = min(q, i0 + 4)
        if i1 - i0 == 4:
            o0, o1, o2, o3 = out[i0], out[i0 + 1], out[i0 + 2], out[i0 + 3]
            for j in range(i0):
                w0, w1, w2, w3 = w[i0, j], w[i0 + 1, j], w[i0 + 2, j], w[i0 + 3, j]
                vj = V[j]
                for c in range(width):
                    v = vj[c]
                    o0[c] += w0 * v
                    o1[c] += w1 * v
                    o2[c] += w2 * v
                    o3[c] += w3 * v
            j0 = i0
        else:
            j0 = 0
        for i in range(i0, i1):
            orow = out[i]
            for j in range(j0, i + 1):
                s = w[i, j]
                vj = V[j]
                for c in range(width):
                    orow[c] += s * vj[c]


@njit(cache=True, fastmath={"contract"})
def _scaled_mm_add(A, S, scale, out, q):
    """``out[i] += scale[i] sum_k A[i, k] S[k]``, four rows at a time."""
    nk = A.shape[1]
    width = out.shape[1]
    for i0 in range(0, q, 4):
        i1 = min(q, i0 + 4)
        if i1 - i0 == 4:
            o0, o1, o2, o3 = out[i0], out[i0 + 1], out[i0 + 2], out[i0 + 3]
            e0, e1, e2, e3 = scale[i0], scale[i0 + 1], scale[i0 + 2], scale[i0 + 3]
            for k in range(nk):
                a0, a1, a2, a3 = e0 * A[i0, k], e1 * A[i0 + 1, k], e2 * A[i0 + 2, k], \
                    e3 * A[i0 + 3, k]
                sk = S[k]
                for c in range(width):
                    v = sk[c]
                    o0[c] += a0 * v
                    o1[c] += a1 * v
                    o2[c] += a2 * v
                    o3[c] += a3 * v
        else:
            for i in range(i0, i1):
                orow = out[i]
                for k in range(nk):
                    s = scale[i] * A[i, k]
                    sk = S[k]
                    for c in range(width):
                        orow[c] += s * sk[c]


@njit(cache=True, fastmath={"contract"})
def _tn_mm(A, V, scale, out, q):
    """``out[k] = sum_i scale[i] A[i, k] V[i]`` (``out = A^T diag(scale) V``), four rows of
    ``out`` at a time."""
    nk = A.shape[1]
    width = out.shape[1]
    out[:, :] = 0.0
    for k0 in range(0, nk, 4):
        k1 = min(nk, k0 + 4)
        if k1 - k0 == 4:
            o0, o1, o2, o3 = out[k0], out[k0 + 1], out[k0 + 2], out[k0 + 3]
            for i in range(q):
                e = scale[i]
                a0, a1, a2, a3 = e * A[i, k0], e * A[i, k0 + 1], e * A[i, k0 + 2], \
                    e * A[i, k0 + 3]
                vi = V[i]
                for c in range(width):
                    v = vi[c]
                    o0[c] += a0 * v
                    o1[c] += a1 * v
                    o2[c] += a2 * v
                    o3[c] += a3 * v
        else:
            for k in range(k0, k1):
                orow = out[k]
                for i in range(q):
                    s = scale[i] * A[i, k]
                    vi = V[i]
                    for c in range(width):
                        orow[c] += s * vi[c]


@njit(cache=True, parallel=True)
def _chunk_states(x, a, b, chunk, reverse, states, tot):
    """Each chunk's own state ``sum_j exp(u_{q-1} - u_j) b_j x_j^T`` (``n x p``) and its total
    log-decay ``u_{q-1}``."""
    nb, _, h, p = x.shape
    g, n = b.shape[2], b.shape[3]
    per = h // g
    nc = states.shape[2]
    dt = x.dtype
    for task in prange(nb * h * nc):
        bi = task // (h * nc)
        hi = (task // nc) % h
        k = task % nc
        gi = hi // per
        xb = np.empty((chunk, p), dtype=dt)
        bb = np.empty((chunk, n), dtype=dt)
        u = np.empty(chunk, dtype=dt)
        e = np.empty(chunk, dtype=dt)
        q = _load(x, a, b, b, bi, hi, gi, k, chunk, reverse, xb, bb, bb, u)
        last = u[q - 1]
        for j in range(q):
            e[j] = math.exp(last - u[j])
        _tn_mm(bb, xb, e, states[bi, hi, k], q)
        tot[bi, hi, k] = last


@njit(cache=True)
def _pass_states(s0, reverse, states, tot, s_final):
    # serial: one n x p update per chunk and head is little work, and a parallel loop would
    # cost one more parallel kernel to compile
    nb, h, nc = tot.shape
    for task in range(nb * h):
        bi = task // h
        hi = task % h
        s = s0[bi, hi].copy()
        for k in range(nc):
            ck = nc - 1 - k if reverse else k
            local = states[bi, hi, ck].copy()
            states[bi, hi, ck] = s
            s = math.exp(tot[bi, hi, ck]) * s + local
        s_final[bi, hi] = s


@njit(cache=True, parallel=True)
def _outputs(x, a, b, c, chunk, reverse, y, states):
    """``y`` of each chunk: ``exp(u_i) c_i . S_in`` plus the diagonal block
    ``(L o C B^T) X``, written once."""
    nb, l, h, p = x.shape
    g, n = b.shape[2], b.shape[3]
    per = h // g
    nc = states.shape[2]
    dt = x.dtype
    for task in prange(nb * h * nc):
        bi = task // (h * nc)
        hi = (task // nc) % h
        k = task % nc
        gi = hi // per
        xb = np.empty((chunk, p), dtype=dt)
        bb = np.empty((chunk, n), dtype=dt)
        cb = np.empty((chunk, n), dtype=dt)
        u = np.empty(chunk, dtype=dt)
        e = np.empty(chunk, dtype=dt)
        q = _load(x, a, b, c, bi, hi, gi, k, chunk, reverse, xb, bb, cb, u)
        for i in range(q):
            e[i] = math.exp(u[i])
        yq = np.zeros((q, p), dtype=dt)
        _scaled_mm_add(cb, states[bi, hi, k], e, yq, q)
        w = np.empty((q, q), dtype=dt)
        _lower_nt(cb, np.ascontiguousarray(bb[:q].T), w, q)
        _decay_mask(w, u, q, e)
        _lower_mm_add(w, xb, yq, q)
        for i in range(q):
            y[bi, _position(k, i, chunk, l, reverse), hi, :] = yq[i]


def _writable(*arrays):
    """The arrays, read-only ones copied: Numba compiles every kernel again for a read-only
    argument type (tens of seconds), a copy of the input costs far less."""
    return tuple(t if t.flags.writeable else t.copy() for t in arrays)


def chunk_scan(x, a, b, c, s0, chunk, reverse, y, s_final):
    """Run the chunked scan (see the module docstring); writes ``y`` and ``s_final``."""
    x, a, b, c, s0 = _writable(x, a, b, c, s0)
    nb, l, h, p = x.shape
    chunk = int(chunk)
    nc = -(-l // chunk)
    states = np.empty((nb, h, nc, b.shape[3], p), dtype=x.dtype)
    tot = np.empty((nb, h, nc), dtype=x.dtype)
    with threads_for(x.size + b.size):
        _chunk_states(x, a, b, chunk, int(reverse), states, tot)
        _pass_states(s0, int(reverse), states, tot, s_final)
        _outputs(x, a, b, c, chunk, int(reverse), y, states)
