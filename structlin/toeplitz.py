"""Toeplitz systems and products: SciPy's ``solve_toeplitz`` / ``matmul_toeplitz``, batched and
with stable solvers, the determinant, the Levinson reflection coefficients and the VJPs.

A Toeplitz matrix is given by its first column ``c`` and first row ``r`` (SciPy's rule:
``r[0]`` is ignored, ``c`` alone means ``r = conj(c)``)::

    T[i, j] = c[i - j]  (i >= j),    T[i, j] = r[j - i]  (j > i)

:func:`solve_toeplitz` and :func:`matmul_toeplitz` keep SciPy 1.17's signatures, argument
layouts and batching rules (``b`` of shape ``(n,)`` or ``(..., n, k)``, batch dimensions of
``c``, ``r`` and ``b`` broadcast); :func:`solve_toeplitz` adds ``method=``: the batched
Levinson recursion (one compiled kernel for every row and right-hand side), GKO (Gaussian
elimination with partial pivoting on a Cauchy-like matrix, :mod:`structlin.gko`), a
preconditioned Krylov method (:mod:`structlin.toeplitz_pcg`), or ``"auto"``, which chooses,
checks the residual, refines and falls back.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any, NamedTuple

import numpy as np
from numpy.linalg import LinAlgError
from scipy.linalg import LinAlgWarning

from structlin._backend import (
    fft_fast_length,
    fft_pair,
    grad_like,
    kernels,
    real_dtype,
    sum_to_shape,
)
from structlin._validate import ABSENT, check_bool, check_choice, check_int, prepare
from structlin._validate import check_finite as _check_finite_array

__all__ = [
    "levinson",
    "matmul_toeplitz",
    "matmul_toeplitz_vjp",
    "solve_toeplitz",
    "solve_toeplitz_vjp",
    "toeplitz_slogdet",
]

#: the largest order accepted (the kernels index with 64-bit integers; the bound keeps one
#: argument from starting an unbounded ``O(n^2)`` loop)
MAX_ORDER = 1 << 31
#: ``method="auto"``: Hermitian systems of at least this order go to the preconditioned
#: conjugate gradient method (``O(n log n)`` per iteration) instead of Levinson (``O(n^2)``)
AUTO_PCG_MIN_ORDER = 4096
#: the largest order for which ``method="auto"`` falls back to GKO (``O(n^2)`` time)
AUTO_GKO_MAX_ORDER = 16384
#: ``method="auto"``: for an order ``n`` of at least :data:`AUTO_GS_MIN_ORDER` and ``k`` right-
#: hand sides per matrix with ``k >= AUTO_GS_MIN_RHS`` and ``n k >= AUTO_GS_MIN_WORK``,
#: ``T^{-1}`` is applied by the Gohberg-Semencul-Heinig formula (FFTs, ``O(n^2 + k n log n)``)
#: instead of the Levinson ``x`` updates (``O(n^2 k)``); measured crossover on a 2-core x86
#: CPU: n = 500 from k ~ 64, n = 1000 from k ~ 8-16, n = 2000 from k ~ 8
AUTO_GS_MIN_ORDER = 400
AUTO_GS_MIN_RHS = 8
AUTO_GS_MIN_WORK = 16000
#: ... and up to this order, with at least ``n / 8`` right-hand sides, ``T^{-1}`` is formed from
#: the same two columns (O(n^2)) and applied by one matrix product (BLAS-3)
AUTO_GEMM_MAX_ORDER = 2048
#: ... as long as the inverses of a call hold at most this many entries (256 MiB of float64)
AUTO_GEMM_MAX_ELEMENTS = 1 << 25
METHODS = ("auto", "levinson", "gko", "pcg")


# ---------------------------------------------------------------------------------------------
# Argument handling: SciPy's c_or_cr and b / x layouts, mapped onto the kernels' (B, n) and
# (B, n, K) rows.


class _Layout(NamedTuple):
    """How the broadcast batch of a call maps onto kernel rows.

    ``shared``: ``c`` and ``r`` have one matrix for the whole batch; the batch of ``b`` is then
    folded into the right-hand sides (one kernel row, ``K = prod(batch) * k``), otherwise
    every array is broadcast to ``B = prod(batch)`` rows of ``k`` right-hand sides.
    """

    batch: tuple
    shared: bool
    vector: bool  # b (or x) was 1-d: no trailing k axis
    k: int


def _split(c_or_cr: Any) -> tuple[Any, Any, bool]:
    if isinstance(c_or_cr, tuple):
        if len(c_or_cr) != 2:
            raise ValueError(
                f"c_or_cr must be the first column c or a tuple (c, r), got a tuple of "
                f"{len(c_or_cr)} items"
            )
        return c_or_cr[0], c_or_cr[1], True
    return c_or_cr, ABSENT, False


def _prepare(c_or_cr: Any, b: Any, bname: str, check_finite: Any, grad: Any = ABSENT,
             square: bool = True, conj_default: bool = True) -> tuple:
    """Convert and check ``c``, ``r``, ``b`` (named ``bname``) and ``grad``; returns
    ``(p, c, r, b, given_r, layout, m, n)`` with ``r`` filled in when it was not given."""
    c, r, given = _split(c_or_cr)
    check_bool(check_finite, "check_finite")
    cname = "c" if given else "c_or_cr"  # the name the caller knows the array by
    p = prepare(r=r, grad=grad, dtype_of=(cname, "r", bname), **{cname: c, bname: b})
    xp = p.xp
    c, r, b = getattr(p, cname), p.r, getattr(p, bname)
    if c.ndim < 1:
        raise ValueError(f"{cname} must have at least 1 dimension, shape (..., n), got a 0-d "
                         f"array")
    if given and r.ndim < 1:
        raise ValueError("r must have at least 1 dimension, shape (..., n), got a 0-d array")
    if b.ndim < 1:
        raise ValueError(f"{bname} must have shape (n,) or (..., n, k), got a 0-d array")
    if not given:
        r = xp.conj(c) if conj_default else xp.zeros(c.shape[-1:], dtype=c.dtype)
    m = check_int(c.shape[-1], "the length of c", maximum=MAX_ORDER)
    n = check_int(r.shape[-1], "the length of r", maximum=MAX_ORDER)
    if square and m != n:
        raise ValueError(f"Incompatible dimensions: r must have the length of c (the matrix is "
                         f"square), got c of shape {tuple(c.shape)} and r of shape "
                         f"{tuple(r.shape)}")
    vector = b.ndim == 1
    nb = b.shape[0] if vector else b.shape[-2]
    if nb != n:
        where = "its length" if vector else "its second-to-last axis (b of shape (..., n, k))"
        raise ValueError(f"Incompatible dimensions: {bname} must have {n} entries along "
                         f"{where}, the order of the Toeplitz matrix, got shape "
                         f"{tuple(b.shape)}")
    if check_finite:
        _check_finite_array(c, cname)
        if given:
            _check_finite_array(r, "r")
        _check_finite_array(b, bname)
    bbatch = () if vector else tuple(b.shape[:-2])
    try:
        batch = tuple(np.broadcast_shapes(tuple(c.shape[:-1]), tuple(r.shape[:-1]), bbatch))
    except ValueError:
        raise ValueError(
            f"the batch dimensions of c, r and {bname} must broadcast, got shapes "
            f"{tuple(c.shape)}, {tuple(r.shape)} and {tuple(b.shape)}"
        ) from None
    shared = math.prod(c.shape[:-1]) == 1 and math.prod(r.shape[:-1]) == 1
    layout = _Layout(batch, shared, vector, 1 if vector else b.shape[-1])
    out_shape = (*batch, m) if vector else (*batch, m, b.shape[-1])
    if p.grad is not None and tuple(p.grad.shape) != out_shape:
        raise ValueError(f"grad must have shape {out_shape} (the shape of the result), got "
                         f"{tuple(p.grad.shape)}")
    return p, c, r, b, given, layout, m, n


def _c_of(p: Any) -> Any:
    """The prepared ``c`` (named ``c`` in a tuple, ``c_or_cr`` alone)."""
    return p.c if "c" in p._fields else p.c_or_cr


def _rows_of_matrix(xp: Any, a: Any, lay: _Layout, length: int, dt: Any) -> Any:
    """``c`` or ``r`` as kernel rows ``(B, length)`` (one row when shared)."""
    if lay.shared:
        return xp.ascontiguousarray(a.reshape(1, length), dtype=dt)
    full = xp.broadcast_to(a, (*lay.batch, length))
    return xp.ascontiguousarray(full, dtype=dt).reshape(math.prod(lay.batch), length)


def _rows_of_rhs(xp: Any, b: Any, lay: _Layout, n: int, dt: Any) -> Any:
    """``b`` (or ``x``, ``grad``) as kernel right-hand sides ``(B, n, K)``."""
    core = b[..., None] if lay.vector else b
    full = xp.broadcast_to(core, (*lay.batch, n, lay.k))
    if lay.shared:
        moved = xp.moveaxis(full, -2, 0)
        return xp.ascontiguousarray(moved, dtype=dt).reshape(1, n, math.prod(lay.batch) * lay.k)
    return xp.ascontiguousarray(full, dtype=dt).reshape(math.prod(lay.batch), n, lay.k)


def _unrows(xp: Any, x3: Any, lay: _Layout, n: int) -> Any:
    """Inverse of :func:`_rows_of_rhs`: ``(*batch, n)`` or ``(*batch, n, k)``."""
    if lay.shared:
        x = xp.moveaxis(x3.reshape((n, *lay.batch, lay.k)), 0, -2)
    else:
        x = x3.reshape((*lay.batch, n, lay.k))
    x = x[..., 0] if lay.vector else x
    return xp.ascontiguousarray(x)


def _matrix_grad(xp: Any, g2: Any, lay: _Layout, arg: Any) -> Any:
    """The gradient rows ``g2`` (B, length) of ``c`` or ``r``, summed back to ``arg``'s shape."""
    length = g2.shape[-1]
    full = g2.reshape(((1,) * len(lay.batch) if lay.shared else lay.batch) + (length,))
    if full.ndim < arg.ndim:
        full = full.reshape((1,) * (arg.ndim - full.ndim) + full.shape)
    return grad_like(xp, sum_to_shape(full, arg.shape), arg)


def _adjoint_rows(xp: Any, c2: Any, r2: Any) -> tuple[Any, Any]:
    """First column and row of ``T^H``: ``conj(r)`` (with ``conj(c[0])`` on the diagonal) and
    ``conj(c)``."""
    ca = xp.conj(r2).copy()
    ca[:, 0] = xp.conj(c2[:, 0])
    return xp.ascontiguousarray(ca), xp.ascontiguousarray(xp.conj(c2))


# ---------------------------------------------------------------------------------------------
# FFT products and correlations on kernel rows.


def _apply(xp: Any, c2: Any, r2: Any, x3: Any, workers: Any = None) -> Any:
    """``T x`` for kernel rows ``c2 (B, m)``, ``r2 (B, n)``, ``x3 (B, n, K)``: the matrix
    embedded in a circulant of size ``L >= m + n - 1``, one FFT product."""
    B, m = c2.shape
    n = r2.shape[1]
    K = x3.shape[2]
    if m == 0 or K == 0 or x3.shape[0] == 0:
        return xp.zeros((x3.shape[0], m, K), dtype=x3.dtype)
    real = c2.dtype.kind != "c" and x3.dtype.kind != "c"
    L = fft_fast_length(xp, m + n - 1, real)
    fwd, inv = fft_pair(xp, real)
    kw = {} if workers is None else {"workers": workers}
    e = xp.zeros((B, L), dtype=c2.dtype)
    e[:, :m] = c2
    if n > 1:
        e[:, L - n + 1:] = r2[:, :0:-1]
    with np.errstate(invalid="ignore", over="ignore"):  # NaN rows stay NaN, silently
        y = inv(fwd(e, axis=1, **kw)[:, :, None] * fwd(x3, L, axis=1, **kw), L, axis=1,
                **kw)[:, :m]
    return xp.ascontiguousarray(y, dtype=x3.dtype)


def _correlate(xp: Any, u: Any, v: Any) -> tuple[Any, Any]:
    """The Toeplitz projection of ``sum_k u_k v_k^H`` for ``u (B, m, K)``, ``v (B, n, K)``:
    ``low[d] = sum_{i - j = d} (u v^H)[i, j]`` (d < m) and ``high[d] = sum_{j - i = d}``
    (d < n), by FFT cross-correlations, never the ``m x n`` matrix."""
    B, m, K = u.shape
    n = v.shape[1]
    dt = np.result_type(u.dtype, v.dtype)
    if K == 0 or B == 0:
        return xp.zeros((B, m), dtype=dt), xp.zeros((B, n), dtype=dt)
    L = fft_fast_length(xp, m + n - 1, dt.kind != "c")
    fwd, inv = fft_pair(xp, dt.kind != "c")
    with np.errstate(invalid="ignore", over="ignore"):
        p = inv((fwd(u, L, axis=1) * xp.conj(fwd(v, L, axis=1))).sum(-1), L, axis=1)
    low = p[:, :m]
    high = xp.concatenate([p[:, :1], p[:, L - 1:L - n:-1]], axis=1) if n > 1 else p[:, :1]
    return xp.asarray(low, dtype=dt), xp.asarray(high[:, :n], dtype=dt)


def _norm1(xp: Any, c2: Any, r2: Any) -> Any:
    """``||T||_1`` (= ``||T||_inf``) per row: the largest sum of ``n`` consecutive ``|t_d|``."""
    n = c2.shape[1]
    a = xp.concatenate([xp.abs(r2[:, :0:-1]), xp.abs(c2)], axis=1).astype(np.float64)
    s = xp.concatenate([xp.zeros((a.shape[0], 1)), xp.cumsum(a, axis=1)], axis=1)
    return (s[:, n:] - s[:, :n]).max(axis=1)


# ---------------------------------------------------------------------------------------------
# The solvers on kernel rows.


class _Levinson(NamedTuple):
    x: Any
    reflection: Any
    logdet: Any
    sign: Any
    info: Any
    invnorm: Any


def _host(a: Any) -> np.ndarray:
    """``a`` as a NumPy array (a device-to-host copy for CuPy)."""
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _index(xp: Any, rows: np.ndarray) -> Any:
    """Row indices as an index array of ``xp``."""
    return rows if xp is np else xp.asarray(rows)


def _breakdown_tol(n: int, dt: Any) -> float:
    return 4.0 * max(n, 1) * float(np.finfo(real_dtype(dt)).eps)


def _column_chunks(xp: Any, B: int, k: int) -> int:
    """How many independent recursions to split the ``k`` right-hand sides of a small batch
    into, so that they run in parallel (each repeats the ``3 n^2`` of ``f`` and ``g``, small
    next to the ``2 n^2`` per right-hand side of a chunk of at least 16 of them): one per CPU
    core, one CUDA block per 32 right-hand sides."""
    if xp is np:
        return max(1, min(os.cpu_count() or 1, k // 16)) if B == 1 else 1
    return max(1, -(-k // 32)) if B < 32 and k > 32 else 1


def _run_levinson(xp: Any, c2: Any, r2: Any, b3: Any) -> _Levinson:
    B, n, k = b3.shape
    P = _column_chunks(xp, B, k)
    if P > 1:
        w = -(-k // P)
        padded = xp.zeros((B, n, P * w), dtype=b3.dtype)
        padded[:, :, :k] = b3
        chunks = xp.ascontiguousarray(
            xp.moveaxis(padded.reshape(B, n, P, w), 2, 1)).reshape(B * P, n, w)
        lev = _run_levinson(xp, xp.repeat(c2, P, axis=0), xp.repeat(r2, P, axis=0), chunks)
        x = xp.moveaxis(lev.x.reshape(B, P, n, w), 1, 2).reshape(B, n, P * w)[:, :, :k]
        first = slice(0, B * P, P)
        return _Levinson(xp.ascontiguousarray(x), lev.reflection[first], lev.logdet[first],
                         lev.sign[first], lev.info[first], lev.invnorm[first])
    dt = c2.dtype
    rdt = real_dtype(dt)
    out = _Levinson(xp.empty((B, n, k), dtype=dt), xp.empty((B, max(n - 1, 0)), dtype=dt),
                    xp.zeros(B, dtype=rdt), xp.ones(B, dtype=dt), xp.zeros(B, dtype=np.int64),
                    xp.zeros(B, dtype=rdt))
    kernels(xp, "levinson").levinson(c2, r2, b3, *out, _breakdown_tol(n, dt))
    return out


def _raise_breakdown(info: Any, n: int, method: str) -> None:
    bad = np.flatnonzero(_host(info))
    if not bad.size:
        return
    row = int(bad[0])
    order = int(info[row])
    where = f" (row {row} of the flattened batch)" if info.shape[0] > 1 else ""
    if order == n:
        raise LinAlgError(f"Singular matrix{where}: the Toeplitz matrix is singular (its "
                          f"determinant is zero or negligible)")
    raise LinAlgError(
        f"Singular principal minor{where}: the leading {order} x {order} minor of the "
        f"Toeplitz matrix is singular or nearly so, and the Levinson recursion "
        f"(method={method!r}) breaks down; method='gko' or method='auto' solves systems "
        f"whose leading minors are singular"
    )


def _gko(xp: Any, c2: Any, r2: Any, b3: Any) -> tuple[Any, Any, Any]:
    try:
        from structlin.gko import gko_solve_toeplitz
    except ImportError as exc:  # pragma: no cover - part of the same package
        raise LinAlgError(f"the GKO solver (structlin.gko) is not available: {exc}") from None
    return gko_solve_toeplitz(c2, r2, b3)


def _gko_rows(xp: Any, c2: Any, r2: Any, b3: Any, rows: Any) -> Any:
    """GKO on the kernel rows ``rows`` of a batch; a singular row is named by its index in
    the whole batch."""
    rows = np.asarray(rows if isinstance(rows, list) else _host(rows), dtype=np.int64)
    idx = _index(xp, rows)
    try:
        return _gko(xp, c2[idx], r2[idx], b3[idx])[0]
    except LinAlgError:
        if len(rows) == 1:
            raise LinAlgError(f"Singular matrix (row {int(rows[0])} of the flattened batch): "
                              f"GKO with partial pivoting found a zero pivot") from None
        for i in rows.tolist():
            _gko_rows(xp, c2, r2, b3, [i])
        raise


# ---------------------------------------------------------------------------------------------
# Many right-hand sides: the Gohberg-Semencul-Heinig representation of T^{-1}.
#
# With x = T^{-1} e_0 and y = T^{-1} e_{n-1} (the first and last columns of the inverse) and
# x_0 != 0, the inverse of a nonsingular (not necessarily Hermitian) Toeplitz matrix is
#
#     T^{-1} = (1 / x_0) [ L(x) U(J y) - L(Z y) U(Z J x) ],
#
# L(a): the lower triangular Toeplitz matrix with first column a, U(u): the upper triangular
# Toeplitz matrix with first row u, J the reversal, Z the down shift (Z a = (0, a_0, ...,
# a_{n-2})). It follows from the displacement rank 2 of T^{-1}: T^{-1} - Z T^{-1} Z^T =
# (1 / x_0) (x (J y)^T - (Z y) (Z J x)^T), whose solution is the sum of products of triangular
# Toeplitz matrices above (Gohberg & Semencul 1972; Heinig & Rost 1984, "Algebraic methods for
# Toeplitz-like matrices and operators", ch. 1; Golub & Van Loan, "Matrix Computations", 4th
# ed., sec. 4.7). Since U(u) = J L(u) J, each factor is a triangular Toeplitz product, i.e.
# the first n terms of a linear convolution, computed by FFTs of length L >= 2n - 1: applying
# T^{-1} to k columns costs six FFT passes over the k columns, O(k n log n), after one
# Levinson recursion with the two right-hand sides e_0 and e_{n-1}, O(n^2), per matrix.


class _GS(NamedTuple):
    spec: Any  # (B, 4, F) spectra of x / x_0, Z y / x_0, J y, Z J x
    L: int
    good: Any  # (B,) bool: Levinson did not break down and x_0 != 0
    lev: _Levinson  # the recursion with the right-hand sides e_0, e_{n-1}


def _gs_factors(xp: Any, c2: Any, r2: Any) -> _GS:
    B, n = c2.shape
    dt = c2.dtype
    if xp is np and 2 <= 2 * B <= (os.cpu_count() or 1):
        # few matrices: the two right-hand sides as two rows, recursions in parallel
        e = xp.zeros((2 * B, n, 1), dtype=dt)
        e[0::2, 0, 0] = 1
        e[1::2, n - 1, 0] = 1
        two = _run_levinson(xp, xp.repeat(c2, 2, axis=0), xp.repeat(r2, 2, axis=0), e)
        lev = _Levinson(xp.ascontiguousarray(xp.swapaxes(two.x[:, :, 0].reshape(B, 2, n), 1, 2)),
                        *(a[0::2] for a in two[1:]))
    else:
        e = xp.zeros((B, n, 2), dtype=dt)
        e[:, 0, 0] = 1
        e[:, n - 1, 1] = 1
        lev = _run_levinson(xp, c2, r2, e)
    x, y = lev.x[:, :, 0], lev.x[:, :, 1]
    x0 = x[:, 0]
    good = (lev.info == 0) & (x0 != 0)
    keep = good[:, None]
    x = xp.where(keep, x, 0)  # rows left to GKO: no garbage in the spectra
    y = xp.where(keep, y, 0)
    s = xp.where(good, x0, 1)[:, None]
    f = xp.zeros((B, 4, n), dtype=dt)
    f[:, 0] = x / s
    f[:, 1, 1:] = y[:, :-1] / s
    f[:, 2] = y[:, ::-1]
    f[:, 3, 1:] = x[:, :0:-1]
    L = fft_fast_length(xp, 2 * n - 1, dt.kind != "c")
    fwd, _ = fft_pair(xp, dt.kind != "c")
    with np.errstate(invalid="ignore", over="ignore"):
        spec = fwd(f, L, axis=2)
    return _GS(spec, L, good, lev)


def _gs_apply(xp: Any, gs: _GS, v3: Any, rows: Any = None, tinv: Any = None) -> Any:
    """``T^{-1} v`` for ``v3 (B', n, K)`` by the Gohberg-Semencul-Heinig formula (the rows
    ``rows`` of the factors, or all), or by one matrix product with the formed inverse
    ``tinv`` (:func:`_gs_dense_inverse`) when it is given. The columns are transposed onto the
    last axis (FFTs of contiguous rows)."""
    if tinv is not None:
        with np.errstate(invalid="ignore", over="ignore"):
            return xp.matmul(tinv if rows is None else tinv[rows], v3)
    spec = gs.spec if rows is None else gs.spec[rows]
    n = v3.shape[1]
    L = gs.L
    forward, inverse = fft_pair(xp, v3.dtype.kind != "c")

    def fwd(a: Any) -> Any:
        return forward(a, L)

    def inv(a: Any) -> Any:
        return inverse(a, L)[..., :n]
    with np.errstate(invalid="ignore", over="ignore"):
        w = fwd(xp.ascontiguousarray(xp.swapaxes(v3, 1, 2)[:, :, ::-1]))  # (B', K, F): J v
        t = inv(spec[:, 2:4, None, :] * w[:, None])  # L(J y) J v, L(Z J x) J v
        u = fwd(xp.ascontiguousarray(t[..., ::-1]))  # J t = U(J y) v, U(Z J x) v
        y = inv(spec[:, 0, None, :] * u[:, 0] - spec[:, 1, None, :] * u[:, 1])
    return xp.ascontiguousarray(xp.swapaxes(y, 1, 2), dtype=v3.dtype)


def _dense_toeplitz(xp: Any, c2: Any, r2: Any) -> Any:
    """The matrices ``T`` (B, n, n) themselves, ``T[i, j] = [r reversed, c][n - 1 + i - j]``."""
    n = c2.shape[1]
    vals = xp.concatenate([r2[:, :0:-1], c2], axis=1)
    i = xp.arange(n)
    return vals[:, (n - 1) + i[:, None] - i[None, :]]


def _backward_error(xp: Any, c2: Any, r2: Any, x3: Any, b3: Any, normT: Any,
                    dense: Any = None) -> Any:
    """Normwise backward error ``||T x - b|| / (||T|| ||x|| + ||b||)`` per row (max over the
    right-hand sides; infinity norms), and the residual ``b - T x`` (by FFTs, or by one matrix
    product with the matrices ``dense`` when they are given)."""
    if dense is not None:
        with np.errstate(invalid="ignore", over="ignore"):
            res = b3 - xp.matmul(dense, x3)
    else:
        res = b3 - _apply(xp, c2, r2, x3)
    num = xp.abs(res).max(axis=1)
    den = normT[:, None] * xp.abs(x3).max(axis=1) + xp.abs(b3).max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = xp.where(num == 0, 0.0, num / xp.where(den == 0, 1.0, den))
    return err.max(axis=1) if err.shape[1] else xp.zeros(err.shape[0]), res


def _warn_ill_conditioned(xp: Any, c2: Any, r2: Any, x3: Any, b3: Any, invnorm: Any = None,
                          normT: Any = None) -> None:
    """``LinAlgWarning`` when the rcond estimate ``1 / (||T||_1 est ||T^{-1}||_1)`` of a row
    is below the dtype's epsilon. The estimate of ``||T^{-1}||_1`` is the largest of
    ``||x_j||_1 / ||b_j||_1`` and (Levinson) ``||T^{-1} e_1||_1``, ``||T^{-1} e_n||_1``: a
    lower bound, so the rcond estimate is an upper bound and a warning is never a false
    alarm."""
    if x3.shape[0] == 0 or x3.shape[1] == 0:
        return
    normT = _norm1(xp, c2, r2) if normT is None else normT
    nx = xp.abs(x3).sum(axis=1)
    nb = xp.abs(b3).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = xp.where(nb > 0, nx / xp.where(nb > 0, nb, 1.0), 0.0)
    est = ratio.max(axis=1) if ratio.shape[1] else xp.zeros(ratio.shape[0])
    if invnorm is not None:
        est = xp.maximum(est, invnorm)
    eps = float(np.finfo(real_dtype(x3.dtype)).eps)
    with np.errstate(invalid="ignore", divide="ignore"):
        rcond = 1.0 / (normT * est)
    rcond = xp.where(xp.isfinite(est) & (est > 0), rcond, xp.inf)
    doubt = _index(xp, np.flatnonzero(_host((rcond >= eps) & (rcond < eps ** 0.5))))
    if doubt.size:  # a few steps of Hager's estimator where the cheap bound cannot decide
        est2 = _hager(xp, c2[doubt], r2[doubt])
        with np.errstate(invalid="ignore", divide="ignore"):
            rcond[doubt] = xp.minimum(rcond[doubt], 1.0 / (normT[doubt] * est2))
    worst = float(rcond.min())
    if worst < eps:
        warnings.warn(f"Ill-conditioned matrix (rcond={worst:.6g}): result may not be "
                      f"accurate.", LinAlgWarning, stacklevel=4)


def _hager(xp: Any, c2: Any, r2: Any, steps: int = 3) -> Any:
    """Hager's (1984) estimate of ``||T^{-1}||_1`` per row (Higham's refinement of it, the
    estimator of LAPACK's ``gecon``), with Levinson solves by ``T`` and ``T^H``; 0 for a row
    on which the recursion breaks down (no information)."""
    B, n = c2.shape
    ca, ra = _adjoint_rows(xp, c2, r2)
    v = xp.full((B, n, 1), 1.0 / n, dtype=c2.dtype)
    est = xp.zeros(B)
    for _ in range(steps):
        lev = _run_levinson(xp, c2, r2, v)
        y = xp.where(xp.isfinite(lev.x), lev.x, 0)
        est = xp.maximum(est, xp.abs(y).sum(axis=(1, 2)))
        a = xp.abs(y)
        xi = xp.where(a > 0, y / xp.where(a > 0, a, 1), 1).astype(c2.dtype)
        z = _run_levinson(xp, ca, ra, xi).x[:, :, 0]
        z = xp.where(xp.isfinite(z), z, 0)
        j = xp.argmax(xp.abs(z), axis=1)
        v = xp.zeros((B, n, 1), dtype=c2.dtype)
        v[xp.arange(B), j, 0] = 1
    return est


def _is_hermitian(xp: Any, c2: Any, r2: Any) -> bool:
    if c2.dtype.kind == "c" and bool((c2[:, 0].imag != 0).any()):
        return False
    return bool((r2[:, 1:] == xp.conj(c2[:, 1:])).all())


def _pcg(xp: Any, c2: Any, r2: Any, b3: Any, hermitian: bool) -> tuple[Any, Any, Any]:
    from structlin.toeplitz_pcg import pcg_solve_toeplitz

    # CG needs a positive definite T: a Hermitian T with a non-positive diagonal is not
    hermitian = hermitian and bool((c2[:, 0].real > 0).all())
    return pcg_solve_toeplitz(c2, r2, b3, preconditioner="chan", hermitian=hermitian)


def _warn_not_converged(xp: Any, converged: Any, relres: Any) -> None:
    if not bool(converged.all()):
        worst = float(xp.where(converged, 0, relres).max())
        warnings.warn(f"the preconditioned Krylov method did not converge: relative residual "
                      f"{worst:.3g} reached", LinAlgWarning, stacklevel=4)


def _solve_rows(xp: Any, c2: Any, r2: Any, b3: Any, method: str) -> Any:
    """``T^{-1} b`` on kernel rows by ``method`` (errors and warnings as documented in
    :func:`solve_toeplitz`)."""
    B, n, _ = b3.shape
    if method == "levinson":
        lev = _run_levinson(xp, c2, r2, b3)
        _raise_breakdown(lev.info, n, method)
        _warn_ill_conditioned(xp, c2, r2, lev.x, b3, lev.invnorm)
        return lev.x
    if method == "gko":
        x = _gko_rows(xp, c2, r2, b3, list(range(B)))
        _warn_ill_conditioned(xp, c2, r2, x, b3)
        return x
    hermitian = _is_hermitian(xp, c2, r2)
    if method == "pcg":
        x, converged, relres = _pcg(xp, c2, r2, b3, hermitian)
        _warn_not_converged(xp, converged, relres)
        return xp.asarray(x, dtype=b3.dtype)
    return _solve_auto(xp, c2, r2, b3, hermitian)


def _gs_dense_inverse(xp: Any, gs: _GS) -> Any:
    """``T^{-1}`` (B, n, n) from the recursion's first and last columns, O(n^2) per matrix:
    the displacement ``D = T^{-1} - Z T^{-1} Z^T`` of the formula above summed along its
    diagonals, ``T^{-1}[i, j] = sum_k D[i - k, j - k]`` (Trench's recursion, one row at a
    time). Rows left to GKO give zeros."""
    x, y = gs.lev.x[:, :, 0], gs.lev.x[:, :, 1]
    keep = gs.good[:, None]
    x0 = xp.where(gs.good, x[:, 0], 1)[:, None]
    x = xp.where(keep, x, 0) / x0
    y = xp.where(keep, y, 0)
    zy = xp.zeros_like(y)
    zy[:, 1:] = y[:, :-1]
    zjx = xp.zeros_like(x)
    zjx[:, 1:] = x[:, :0:-1] * x0
    with np.errstate(invalid="ignore", over="ignore"):
        inv = x[:, :, None] * y[:, None, ::-1] - (zy / x0)[:, :, None] * zjx[:, None, :]
        for i in range(1, inv.shape[1]):
            inv[:, i, 1:] += inv[:, i - 1, :-1]
    return inv


def _use_gemm(B: int, n: int, k: int) -> bool:
    """Whether the many-right-hand-side path forms ``T^{-1}`` (O(n^2)) and applies it by one
    BLAS-3 product (``2 n^2 k`` flops at the machine's GEMM rate) instead of six FFT passes;
    never for more than :data:`AUTO_GEMM_MAX_ELEMENTS` entries of the ``B`` inverses (and as
    many of the matrices, formed for the residual check)."""
    return n <= AUTO_GEMM_MAX_ORDER and 8 * k >= n and B * n * n <= AUTO_GEMM_MAX_ELEMENTS


def _use_gs(n: int, k: int) -> bool:
    """Whether ``method="auto"`` applies ``T^{-1}`` by the Gohberg-Semencul formula."""
    return n >= AUTO_GS_MIN_ORDER and k >= AUTO_GS_MIN_RHS and n * k >= AUTO_GS_MIN_WORK


def _solve_auto(xp: Any, c2: Any, r2: Any, b3: Any, hermitian: bool) -> Any:
    _, n, K = b3.shape
    eps = float(np.finfo(real_dtype(c2.dtype)).eps)
    normT = _norm1(xp, c2, r2)
    if hermitian and n >= AUTO_PCG_MIN_ORDER:
        try:
            x, converged, relres = _pcg(xp, c2, r2, b3, hermitian)
        except ImportError:
            converged = None
        if converged is not None:
            x = xp.asarray(x, dtype=b3.dtype)
            bad = _index(xp, np.flatnonzero(_host(~converged.all(axis=1))))
            if bad.size and n <= AUTO_GKO_MAX_ORDER:
                x[bad] = _gko_rows(xp, c2, r2, b3, bad)
            elif bad.size:
                _warn_not_converged(xp, converged, relres)
            _warn_ill_conditioned(xp, c2, r2, x, b3, normT=normT)
            return x
    if _use_gs(n, K):
        gs = _gs_factors(xp, c2, r2)
        lev = gs.lev
        tinv = _gs_dense_inverse(xp, gs) if _use_gemm(c2.shape[0], n, K) else None
        # with the inverse formed, the residuals are one matrix product too
        tdense = None if tinv is None else _dense_toeplitz(xp, c2, r2)
        x = _gs_apply(xp, gs, b3, tinv=tinv)
        info = ~_host(gs.good)

        def correction(rows: Any, res: Any) -> Any:
            return _gs_apply(xp, gs, res, rows, tinv=tinv)
    else:
        tdense = None
        lev = _run_levinson(xp, c2, r2, b3)
        x = lev.x
        info = _host(lev.info)

        def correction(rows: Any, res: Any) -> Any:
            return _run_levinson(xp, c2[rows], r2[rows], res).x
    broken = _index(xp, np.flatnonzero(info))
    if broken.size:
        x[broken] = _gko_rows(xp, c2, r2, b3, broken)
    ok = _index(xp, np.flatnonzero(info == 0))
    if ok.size and K:
        tol = 32.0 * max(n, 1) * eps
        berr, res = _backward_error(xp, c2, r2, x, b3, normT, tdense)
        poor = ok[berr[ok] > tol]
        for _ in range(2):  # iterative refinement with the same recursion
            if not poor.size:
                break
            d = correction(poor, xp.ascontiguousarray(res[poor]))
            x[poor] = x[poor] + d
            berr_p, res_p = _backward_error(xp, c2[poor], r2[poor], x[poor], b3[poor],
                                            normT[poor], None if tdense is None else tdense[poor])
            res[poor] = res_p
            poor = poor[~(berr_p <= tol)]
        if poor.size:
            x[poor] = _gko_rows(xp, c2, r2, b3, poor)
    _warn_ill_conditioned(xp, c2, r2, x, b3, xp.where(lev.info == 0, lev.invnorm, 0),
                          normT=normT)
    return x


# ---------------------------------------------------------------------------------------------
# Public functions.


def solve_toeplitz(c_or_cr: Any, b: Any, check_finite: bool = True, *,
                   method: str = "auto") -> Any:
    r"""Return the solution ``x`` of ``T @ x = b`` for a Toeplitz matrix ``T``.

    SciPy's :func:`scipy.linalg.solve_toeplitz` (same signature, layouts and batching rules)
    with one compiled kernel for every row and right-hand side and with stable solvers.

    Parameters
    ----------
    c_or_cr : array_like or tuple of (array_like, array_like)
        The first column ``c`` of ``T``, shape ``(..., n)``, or a tuple ``(c, r)`` with the
        first row ``r``, shape ``(..., n)``. ``r[..., 0]`` is ignored (the first row is
        ``[c[0], r[1:]]``); without ``r``, ``r = conj(c)`` (``T`` is then Hermitian when
        ``c[0]`` is real). ``T[i, j] = c[i - j]`` for ``i >= j`` and ``r[j - i]`` for ``j > i``.
    b : array_like, shape (n,) or (..., n, k)
        Right-hand side(s). A ``b`` with two or more dimensions is a batch of ``(n, k)``
        matrices (SciPy 1.17's rule). The batch dimensions of ``c``, ``r`` and ``b`` broadcast.
    check_finite : bool, optional
        Whether to check that the inputs hold only finite numbers (ValueError otherwise).
    method : {"auto", "levinson", "gko", "pcg"}, optional
        ``"levinson"``: the Levinson-Trench-Zohar recursion, ``O(n^2 + n^2 k)`` per matrix;
        raises on a singular or tiny leading minor. ``"gko"``: Gaussian elimination with
        partial pivoting on a Cauchy-like matrix (:func:`structlin.gko.gko_solve_toeplitz`),
        ``O(n^2 k)``, stable on indefinite and nonsymmetric matrices. ``"pcg"``: conjugate
        gradients (Hermitian ``T`` with a positive diagonal) or BiCGSTAB with T. Chan's
        circulant preconditioner, ``O(n log n)`` per iteration (:mod:`structlin.toeplitz_pcg`).
        ``"auto"`` (default): ``"pcg"`` for Hermitian ``T`` of order at least
        :data:`AUTO_PCG_MIN_ORDER`, otherwise Levinson (with many right-hand sides, see
        :data:`AUTO_GS_MIN_RHS`, one recursion for the first and last columns of ``T^{-1}``
        and the Gohberg-Semencul formula applied by FFTs); then every row's backward error
        ``||T x - b|| / (||T|| ||x|| + ||b||)`` is checked against ``32 n eps``, poor rows are
        refined iteratively (two steps at most), and rows where Levinson broke down, stayed
        poor or where the Krylov method did not converge are solved by GKO (up to order
        :data:`AUTO_GKO_MAX_ORDER`; above it a ``LinAlgWarning`` reports the residual).

    Returns
    -------
    x : ndarray, shape (..., n) or (..., n, k)
        The solution, of the broadcast batch shape and ``b``'s core shape, dtype the promotion
        of the inputs (integers to float64; float32 and complex64 stay single precision, where
        SciPy computes in double precision).

    Raises
    ------
    numpy.linalg.LinAlgError
        ``T`` singular (the row named); with ``method="levinson"`` also a singular or nearly
        singular leading minor (Levinson breakdown, never silent).
    ValueError
        Incompatible dimensions, batch shapes that do not broadcast, non-finite values (with
        ``check_finite``), an unknown ``method``.
    TypeError
        Non-numeric arrays, NumPy mixed with CuPy, a non-bool ``check_finite``.

    Warns
    -----
    scipy.linalg.LinAlgWarning
        Ill-conditioned ``T``: ``Ill-conditioned matrix (rcond=...)``, with an upper bound of
        the reciprocal condition number in the 1-norm (``1 / (||T||_1 e)``, where ``e`` is the
        largest of ``||x_j||_1 / ||b_j||_1`` and, from Levinson, ``||T^{-1} e_1||_1`` and
        ``||T^{-1} e_n||_1``, sharpened by three steps of Hager's estimator, LAPACK's
        ``gecon`` method, where the bound lies between ``eps`` and ``sqrt(eps)``), when it is
        below the dtype's epsilon; a Krylov method that did not converge, with the relative
        residual reached.

    See Also
    --------
    scipy.linalg.solve_toeplitz : SciPy's Levinson-Durbin solver (a Python loop over columns
        and batches).
    levinson : the solution and the reflection coefficients.
    toeplitz_slogdet : sign and log of the determinant.
    solve_toeplitz_vjp : the gradients.

    Notes
    -----
    The Levinson recursion keeps the solutions ``f`` and ``g`` of ``T_m f = e_1`` and
    ``T_m g = e_m`` for the leading minors ``T_m`` and updates them and ``x`` from order ``m``
    to ``m + 1`` with two inner products each (:mod:`structlin._cpu.levinson`): ``3 n^2 +
    2 n^2 k`` multiply-adds, ``O(n)`` memory per matrix, all rows and right-hand sides in
    one compiled call, parallel over rows. When ``c`` and ``r`` are shared by the batch, the
    batch of ``b`` becomes right-hand sides of one recursion. Levinson needs every leading
    minor nonsingular and is only weakly stable (Cybenko 1980: stable for symmetric positive
    definite ``T``), hence GKO [3]_ and the residual checks of ``"auto"``. With many
    right-hand sides ``"auto"`` runs the recursion for ``x = T^{-1} e_1`` and ``y = T^{-1}
    e_n`` only and applies ``T^{-1} = (L(x) U(J y) - L(Z y) U(Z J x)) / x_1`` (triangular
    Toeplitz factors; Gohberg-Semencul, Heinig-Rost [4]_) by FFTs: ``O(n^2 + k n log n)``
    instead of ``O(n^2 k)``; its refinement steps use the same formula. A ``T`` holding
    NaN or infinity (``check_finite=False``) gives NaN in its own batch row only. Differences
    from SciPy: single precision stays single, and an empty batch returns an empty result
    (SciPy raises ``ValueError``).

    References
    ----------
    .. [1] N. Levinson, "The Wiener RMS error criterion in filter design and prediction",
       J. Math. Phys. 25 (1947); W. F. Trench, "An algorithm for the inversion of finite
       Toeplitz matrices", J. SIAM 12 (1964); S. Zohar, "The solution of a Toeplitz set of
       linear equations", J. ACM 21 (1974).
    .. [2] G. H. Golub, C. F. Van Loan, "Matrix Computations", 4th ed., section 4.7.
    .. [3] I. Gohberg, T. Kailath, V. Olshevsky, "Fast Gaussian elimination with partial
       pivoting for matrices with displacement structure", Math. Comp. 64 (1995).
    .. [4] I. C. Gohberg, A. A. Semencul, "On the inversion of finite Toeplitz matrices and
       their continuous analogues", Mat. Issled. 7 (1972); G. Heinig, K. Rost, "Algebraic
       Methods for Toeplitz-like Matrices and Operators", Birkhauser (1984).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import toeplitz
    >>> from structlin.toeplitz import solve_toeplitz
    >>> c, r = np.array([1.0, 3, 6, 10]), np.array([1.0, -1, -2, -3])
    >>> b = np.array([1.0, 2, 2, 5])
    >>> x = solve_toeplitz((c, r), b)
    >>> bool(np.allclose(toeplitz(c, r) @ x, b))
    True
    >>> T0 = np.array([0.0, 1.0, 0.5])          # zero leading minor: Levinson breaks down
    >>> bool(np.allclose(toeplitz(T0) @ solve_toeplitz(T0, b[:3]), b[:3]))
    True
    """
    check_choice(method, "method", METHODS)
    p, c, r, b, _, lay, _, n = _prepare(c_or_cr, b, "b", check_finite)
    xp, dt = p.xp, p.dtype
    c2 = _rows_of_matrix(xp, c, lay, n, dt)
    r2 = _rows_of_matrix(xp, r, lay, n, dt)
    b3 = _rows_of_rhs(xp, b, lay, n, dt)
    if b3.size == 0:
        return _unrows(xp, xp.zeros(b3.shape, dtype=dt), lay, n)
    return _unrows(xp, _solve_rows(xp, c2, r2, b3, method), lay, n)


def levinson(c_or_cr: Any, b: Any, check_finite: bool = True) -> tuple[Any, Any]:
    r"""Return the Levinson solution of ``T @ x = b`` and the reflection coefficients of ``T``.

    Parameters
    ----------
    c_or_cr : array_like or tuple of (array_like, array_like)
        ``c`` (``r = conj(c)``) or ``(c, r)``, shape ``(..., n)``, as for
        :func:`solve_toeplitz`.
    b : array_like, shape (n,) or (..., n, k)
        Right-hand side(s), SciPy's layout as for :func:`solve_toeplitz`.
    check_finite : bool, optional
        Whether to check that the inputs hold only finite numbers.

    Returns
    -------
    x : ndarray, shape (..., n) or (..., n, k)
        The solution.
    reflection : ndarray, shape (..., n - 1)
        The forward reflection coefficients, one row per matrix of the broadcast batch:
        ``reflection[..., m - 1]`` is the last entry ``a_m`` of the monic forward predictor
        ``a = [1, a_1, ..., a_m]`` of order ``m``, the solution of ``T_{m+1} a = delta e_1``
        with ``T_{m+1}`` the leading ``(m + 1) x (m + 1)`` minor (MATLAB's ``levinson``
        convention; for a real symmetric positive definite ``T`` with ``c[0] = 1`` these are
        the ``alpha`` of Durbin's algorithm, Golub & Van Loan Algorithm 4.7.1, all in
        ``(-1, 1)``). ``reflection[..., 0] = -c[1] / c[0]``. The backward coefficients of a
        nonsymmetric ``T`` are the forward coefficients of ``T^T`` (``levinson((r, c), b)``
        with ``r[0] = c[0]``).

    Raises
    ------
    numpy.linalg.LinAlgError
        A singular or nearly singular leading minor (the recursion breaks down), or a singular
        ``T``.
    ValueError, TypeError
        As for :func:`solve_toeplitz`.

    Warns
    -----
    scipy.linalg.LinAlgWarning
        Ill-conditioned ``T`` (as for :func:`solve_toeplitz`).

    See Also
    --------
    solve_toeplitz : with stable solvers and fallbacks.

    Notes
    -----
    The recursion of :func:`solve_toeplitz` with ``method="levinson"`` (Levinson 1947,
    Trench 1964, Zohar 1974): ``3 n^2 + 2 n^2 k`` multiply-adds per matrix. The coefficients
    come free: from order ``m`` to ``m + 1``, ``a_m = -e_f g_{m-1} / f_0`` with the forward
    error ``e_f`` and the forward and backward vectors ``f``, ``g`` of order ``m``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.toeplitz import levinson
    >>> x, k = levinson(np.array([1.0, 0.5, 0.25]), np.array([1.0, 0.0, 0.0]))
    >>> bool(np.allclose(k, [-0.5, 0.0]))   # an AR(1) autocorrelation: one nonzero coefficient
    True
    """
    p, c, r, b, _, lay, _, n = _prepare(c_or_cr, b, "b", check_finite)
    xp, dt = p.xp, p.dtype
    c2 = _rows_of_matrix(xp, c, lay, n, dt)
    r2 = _rows_of_matrix(xp, r, lay, n, dt)
    b3 = _rows_of_rhs(xp, b, lay, n, dt)
    lev = _run_levinson(xp, c2, r2, b3)
    _raise_breakdown(lev.info, n, "levinson")
    if b3.size:
        _warn_ill_conditioned(xp, c2, r2, lev.x, b3, lev.invnorm)
    refl = lev.reflection
    if lay.shared:
        refl = xp.broadcast_to(refl.reshape(max(n - 1, 0)), (*lay.batch, max(n - 1, 0)))
    return _unrows(xp, lev.x, lay, n), xp.ascontiguousarray(
        refl.reshape((*lay.batch, max(n - 1, 0))))


def toeplitz_slogdet(c_or_cr: Any) -> tuple[Any, Any]:
    r"""Return the sign and the natural logarithm of the absolute determinant of ``T``.

    Parameters
    ----------
    c_or_cr : array_like or tuple of (array_like, array_like)
        ``c`` (``r = conj(c)``) or ``(c, r)``, shape ``(..., n)``, as for
        :func:`solve_toeplitz`; the batch dimensions of ``c`` and ``r`` broadcast.

    Returns
    -------
    sign : ndarray, shape (...)
        ``det T / |det T|`` (unit modulus for complex ``T``), 0 for a singular ``T``; in the
        dtype of ``c`` and ``r``.
    logabsdet : ndarray, shape (...)
        ``log |det T|`` (``-inf`` for a singular ``T``), in the real dtype of the same
        precision. As :func:`numpy.linalg.slogdet` of the dense matrix.

    Raises
    ------
    ValueError, TypeError
        As for :func:`solve_toeplitz`; non-finite values.

    See Also
    --------
    numpy.linalg.slogdet : the dense ``O(n^3)`` computation.

    Notes
    -----
    ``det T = prod_m delta_m`` with ``delta_m = det T_m / det T_{m-1}`` from the Levinson
    recursion without right-hand side (``3 n^2`` multiply-adds); a matrix on which the
    recursion breaks down (a singular or tiny leading minor of order below ``n``) is
    factored by GKO with partial pivoting instead (:func:`structlin.gko.gko_solve_toeplitz`).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.toeplitz import toeplitz_slogdet
    >>> sign, logdet = toeplitz_slogdet(np.array([2.0, 1.0]))   # det [[2, 1], [1, 2]] = 3
    >>> float(sign), bool(np.isclose(logdet, np.log(3)))
    (1.0, True)
    """
    c, r, given = _split(c_or_cr)
    cname = "c" if given else "c_or_cr"
    p = prepare(r=r, **{cname: c})
    c, xp, dt = _c_of(p), p.xp, p.dtype
    if c.ndim < 1:
        raise ValueError(f"{cname} must have at least 1 dimension, shape (..., n), got a 0-d "
                         f"array")
    r = p.r if given else xp.conj(c)
    if r.ndim < 1:
        raise ValueError("r must have at least 1 dimension, shape (..., n), got a 0-d array")
    n = check_int(c.shape[-1], "the length of c", maximum=MAX_ORDER)
    if r.shape[-1] != n:
        raise ValueError(f"Incompatible dimensions: r must have the length of c, got shapes "
                         f"{tuple(c.shape)} and {tuple(r.shape)}")
    _check_finite_array(c, cname)
    _check_finite_array(r, "r")
    try:
        batch = tuple(np.broadcast_shapes(tuple(c.shape[:-1]), tuple(r.shape[:-1])))
    except ValueError:
        raise ValueError(f"the batch dimensions of c and r must broadcast, got shapes "
                         f"{tuple(c.shape)} and {tuple(r.shape)}") from None
    lay = _Layout(batch, False, True, 1)
    c2 = _rows_of_matrix(xp, c, lay, n, dt)
    r2 = _rows_of_matrix(xp, r, lay, n, dt)
    B = c2.shape[0]
    rdt = real_dtype(dt)
    if n == 0 or B == 0:
        return xp.ones(batch, dtype=dt), xp.zeros(batch, dtype=rdt)
    lev = _run_levinson(xp, c2, r2, xp.zeros((B, n, 0), dtype=dt))
    sign, logdet = lev.sign, lev.logdet
    info = _host(lev.info)
    for row in np.flatnonzero((info > 0) & (info < n)).tolist():
        try:
            _, s, ld = _gko(xp, c2[row:row + 1], r2[row:row + 1],
                            xp.zeros((1, n, 1), dtype=dt))
            sign[row], logdet[row] = s[0], ld[0]
        except LinAlgError:
            sign[row], logdet[row] = 0, -np.inf
    return sign.reshape(batch), logdet.reshape(batch)


def matmul_toeplitz(c_or_cr: Any, x: Any, check_finite: bool = False,
                    workers: int | None = None) -> Any:
    r"""Return the product ``T @ x`` of a Toeplitz matrix by FFT.

    SciPy's :func:`scipy.linalg.matmul_toeplitz` (same signature, layouts and batching rules)
    with one vectorised FFT product for the whole batch.

    Parameters
    ----------
    c_or_cr : array_like or tuple of (array_like, array_like)
        The first column ``c``, shape ``(..., m)``, or a tuple ``(c, r)`` with the first row
        ``r``, shape ``(..., n)`` (``T`` is ``m x n``; ``r[..., 0]`` ignored). Without ``r``,
        ``r = conj(c)``.
    x : array_like, shape (n,) or (..., n, k)
        The matrix (vector) multiplied; batch dimensions broadcast with those of ``c``, ``r``.
    check_finite : bool, optional
        Whether to check that the inputs hold only finite numbers (default False, as SciPy).
    workers : int, optional
        Passed to :mod:`structlin.fft` (NumPy inputs): maximum number of FFT threads
        (default: the engine's, every thread for a large batch); ignored for CuPy inputs.

    Returns
    -------
    ndarray, shape (..., m) or (..., m, k)
        ``T @ x``, dtype the promotion of the inputs (integers to float64; single precision
        stays single, where SciPy returns double).

    Raises
    ------
    ValueError
        Incompatible dimensions, batch shapes that do not broadcast, non-finite values (with
        ``check_finite``).
    TypeError
        Non-numeric arrays, NumPy mixed with CuPy, a non-integer ``workers``.

    See Also
    --------
    scipy.linalg.matmul_toeplitz : SciPy's version (a Python loop over the batch).
    matmul_toeplitz_vjp : the gradients.

    Notes
    -----
    ``T`` is the top-left ``m x n`` block of a circulant of size ``L >= m + n - 1`` (a fast
    FFT length) with first column ``[c, 0, ..., 0, r[n-1], ..., r[1]]``: one FFT of the
    column, one of ``x`` padded to ``L``, one inverse FFT; ``O(L log L)`` per vector,
    ``rfft`` for real data. The dense matrix never exists. When ``c`` and ``r`` are shared by
    the batch, one FFT of the column serves every vector. Differences from SciPy: single
    precision stays single, and an empty batch returns an empty result.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.toeplitz import matmul_toeplitz
    >>> c, r = np.array([1.0, 3, 6, 10]), np.array([1.0, -1, -2, -3])
    >>> x = np.array([[1.0, 10], [2, 11], [2, 11], [5, 19]])
    >>> matmul_toeplitz((c, r), x)
    array([[-20., -80.],
           [ -7.,  -8.],
           [  9.,  85.],
           [ 33., 218.]])
    """
    if workers is not None:
        check_int(workers, "workers", minimum=None)
    p, c, r, x, _, lay, m, n = _prepare(c_or_cr, x, "x", check_finite, square=False)
    xp, dt = p.xp, p.dtype
    c2 = _rows_of_matrix(xp, c, lay, m, dt)
    r2 = _rows_of_matrix(xp, r, lay, n, dt)
    x3 = _rows_of_rhs(xp, x, lay, n, dt)
    return _unrows(xp, _apply(xp, c2, r2, x3, workers), lay, m)


def _toeplitz_grads(xp: Any, p: Any, c: Any, r: Any, given: bool, lay: _Layout, low: Any,
                    high: Any) -> tuple[Any, ...]:
    """The gradients of ``c`` and ``r`` (or of ``c`` alone when ``r = conj(c)``) from the
    Toeplitz projection ``low``, ``high`` of the matrix gradient."""
    high = high.copy()
    high[:, 0] = 0
    if given:
        return (_matrix_grad(xp, low, lay, _c_of(p)), _matrix_grad(xp, high, lay, p.r))
    m = low.shape[1]
    return (_matrix_grad(xp, low + xp.conj(high[:, :m]), lay, _c_of(p)),)


def solve_toeplitz_vjp(c_or_cr: Any, b: Any, grad: Any, check_finite: bool = True, *,
                       method: str = "auto") -> tuple:
    r"""Return the gradients of :func:`solve_toeplitz` for the output gradient ``grad``.

    Parameters
    ----------
    c_or_cr, b
        As for :func:`solve_toeplitz`.
    grad : array_like
        Gradient of a real loss with respect to ``x = solve_toeplitz(c_or_cr, b)``, of ``x``'s
        shape.
    check_finite : bool, optional
        Whether to check that the inputs hold only finite numbers (``grad`` too).
    method : {"auto", "levinson", "gko", "pcg"}, optional
        The solver of both solves (as for :func:`solve_toeplitz`).

    Returns
    -------
    tuple
        ``(grad_c, grad_r, grad_b)`` when ``c_or_cr`` is ``(c, r)`` (``grad_r[..., 0] = 0``:
        ``r[0]`` does not enter ``T``), ``(grad_c, grad_b)`` when it is ``c`` alone
        (``r = conj(c)``, whose contribution is folded into ``grad_c``). Each of its
        argument's shape (summed over broadcast dimensions) and dtype (promoted to floating
        point; the real part for a real argument); PyTorch's complex convention
        ``dl/dRe z + 1j dl/dIm z``.

    Raises
    ------
    numpy.linalg.LinAlgError, ValueError, TypeError
        As for :func:`solve_toeplitz`, and ``grad`` of the wrong shape.

    See Also
    --------
    solve_toeplitz : the solve.

    Notes
    -----
    ``grad_b = T^{-H} grad`` by a solve with the Toeplitz matrix ``T^H`` (first column
    ``conj(r)``, first row ``conj(c)``); the matrix gradient ``-grad_b x^H`` is projected on
    the Toeplitz structure, ``grad_c[d] = -sum_{i - j = d} grad_b[i] conj(x[j])`` and
    ``grad_r[d] = -sum_{j - i = d} ...``, by FFT cross-correlations summed over the
    right-hand sides (``O(n log n)`` each): two solves plus ``O(k n log n)``, never the dense
    ``n x n`` matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.toeplitz import solve_toeplitz_vjp
    >>> gc, gr, gb = solve_toeplitz_vjp((np.array([2.0, 1.0]), np.array([2.0, 0.0])),
    ...                                 np.array([1.0, 1.0]), np.array([1.0, 0.0]))
    >>> bool(np.allclose(gb, [0.5, 0.0]))   # T^{-T} e_1 for T = [[2, 0], [1, 2]]
    True
    """
    check_choice(method, "method", METHODS)
    p, c, r, b, given, lay, _, n = _prepare(c_or_cr, b, "b", check_finite, grad)
    if check_finite:
        _check_finite_array(p.grad, "grad")
    xp, dt = p.xp, p.dtype
    c2 = _rows_of_matrix(xp, c, lay, n, dt)
    r2 = _rows_of_matrix(xp, r, lay, n, dt)
    b3 = _rows_of_rhs(xp, b, lay, n, dt)
    g = p.grad.real if dt.kind != "c" and p.grad.dtype.kind == "c" else p.grad
    g3 = _rows_of_rhs(xp, g, lay, n, dt)
    if b3.size == 0:
        x3 = xp.zeros(b3.shape, dtype=dt)
        gb3 = xp.zeros(b3.shape, dtype=dt)
    else:
        x3 = _solve_rows(xp, c2, r2, b3, method)
        ca, ra = _adjoint_rows(xp, c2, r2)
        gb3 = _solve_rows(xp, ca, ra, g3, method)
    low, high = _correlate(xp, -gb3, x3)
    gbb = _unrows(xp, gb3, lay, n)
    gb = grad_like(xp, sum_to_shape(gbb, b.shape), b)
    return (*_toeplitz_grads(xp, p, c, r, given, lay, low, high), gb)


def matmul_toeplitz_vjp(c_or_cr: Any, x: Any, grad: Any, workers: int | None = None) -> tuple:
    r"""Return the gradients of :func:`matmul_toeplitz` for the output gradient ``grad``.

    Parameters
    ----------
    c_or_cr, x, workers
        As for :func:`matmul_toeplitz`.
    grad : array_like
        Gradient of a real loss with respect to ``matmul_toeplitz(c_or_cr, x)``, of its shape.

    Returns
    -------
    tuple
        ``(grad_c, grad_r, grad_x)`` when ``c_or_cr`` is ``(c, r)`` (``grad_r[..., 0] = 0``),
        ``(grad_c, grad_x)`` when it is ``c`` alone (``r = conj(c)`` folded into ``grad_c``);
        shapes, dtypes and the complex convention as in :func:`solve_toeplitz_vjp`.

    Raises
    ------
    ValueError, TypeError
        As for :func:`matmul_toeplitz`, and ``grad`` of the wrong shape.

    See Also
    --------
    matmul_toeplitz : the product.

    Notes
    -----
    ``grad_x = T^H grad`` (a product with the Toeplitz matrix of first column ``conj(r)`` and
    first row ``conj(c)``), ``grad_c[d] = sum_{i - j = d} grad[i] conj(x[j])`` and
    ``grad_r[d] = sum_{j - i = d} grad[i] conj(x[j])`` by FFT cross-correlations: ``O(L log
    L)`` per vector, never the dense matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.toeplitz import matmul_toeplitz_vjp
    >>> gc, gr, gx = matmul_toeplitz_vjp((np.array([1.0, 2.0]), np.array([1.0, 3.0])),
    ...                                  np.array([1.0, 1.0]), np.array([1.0, 0.0]))
    >>> bool(np.allclose(gx, [1.0, 3.0]))   # T^T e_1 for T = [[1, 3], [2, 1]]
    True
    >>> bool(np.allclose(gc, [1.0, 0.0])), bool(np.allclose(gr, [0.0, 1.0]))
    (True, True)
    """
    if workers is not None:
        check_int(workers, "workers", minimum=None)
    p, c, r, x, given, lay, m, n = _prepare(c_or_cr, x, "x", False, grad, square=False)
    xp, dt = p.xp, p.dtype
    c2 = _rows_of_matrix(xp, c, lay, m, dt)
    r2 = _rows_of_matrix(xp, r, lay, n, dt)
    x3 = _rows_of_rhs(xp, x, lay, n, dt)
    g = p.grad.real if dt.kind != "c" and p.grad.dtype.kind == "c" else p.grad
    glay = lay._replace()
    g3 = _rows_of_rhs(xp, g, glay, m, dt)
    ca, ra = _adjoint_rows(xp, c2, r2) if n and m else (xp.zeros((c2.shape[0], n), dt),
                                                         xp.zeros((c2.shape[0], m), dt))
    gx3 = _apply(xp, ca, ra, g3, workers)
    low, high = _correlate(xp, g3, x3)
    gx = grad_like(xp, sum_to_shape(_unrows(xp, gx3, lay, n), x.shape), x)
    return (*_toeplitz_grads(xp, p, c, r, given, lay, low, high), gx)
