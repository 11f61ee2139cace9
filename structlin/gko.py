"""Gaussian elimination with partial pivoting on Cauchy-like matrices (GKO).

A Cauchy-like matrix ``C[i, j] = sum_q G[q, i] H[q, j] / (s_i - t_j)`` (displacement
``D_s C - C D_t = G^T H`` of rank ``r``) is factorised with partial pivoting in ``O(r n^2)``
operations by working on its generators only (Gohberg, Kailath and Olshevsky 1995): row
pivoting permutes the nodes ``s`` and the columns of ``G``, and every Schur complement is
Cauchy-like again. Toeplitz matrices, and every matrix ``M`` with ``Z_1 M - M Z_{-1}`` of low
rank, become Cauchy-like through FFTs (Heinig 1994), which makes this the stable ``O(n^2)``
Toeplitz solver behind ``solve_toeplitz(method="gko")``: it needs no nonsingular leading
minors, unlike Levinson's algorithm.

Public: :func:`solve_cauchy_like`, :func:`solve_cauchy` and their VJPs. Internal entry points
for the other parts of the family: :func:`gko_solve_toeplitz` (prepared layout),
:func:`_toeplitz_generators`, :func:`_toeplitz_like_to_cauchy_like` and the transforms
:func:`_to_cauchy_rhs`, :func:`_from_cauchy_solution`, :func:`_cauchy_det_factor`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.linalg import LinAlgWarning

from structlin._backend import (
    fft_fast_length,
    fft_namespace,
    grad_like,
    kernels,
    real_dtype,
    sum_to_shape,
)
from structlin._validate import ABSENT, check_int, check_min_ndim, prepare

__all__ = ["solve_cauchy", "solve_cauchy_like", "solve_cauchy_like_vjp", "solve_cauchy_vjp"]

#: most nodes; the kernels store ``n (n + 1) / 2`` entries of ``U`` per system (34 GB in
#: complex128 at this size)
MAX_N = 1 << 16

#: a system of :func:`gko_solve_toeplitz` whose normwise backward error
#: ``||b - T x|| / (||T|| ||x|| + ||b||)`` exceeds this times ``sqrt(n)`` unit roundoffs (about
#: ten times dense LU's on random matrices) gets one step of iterative refinement (kept where
#: it lowers the residual)
REFINE_ABOVE = 1.0


def _complex_dtype(dt: Any) -> np.dtype:
    return np.result_type(dt, np.complex64)


# ---------------------------------------------------------------------------------------------
# the kernel call


def _gko(xp: Any, s: Any, t: Any, G: Any, H: Any, b: Any) -> tuple:
    """Run the kernel on kernel-layout arrays ``s, t (1 or B, n)``, ``G, H (B, r, n)``, ``b (B,
    k, n)`` of one dtype; return ``(x (B, k, n), sign (B,), logabs (B,), pivots (B, n), info
    (B,))``."""
    dt = G.dtype
    B, _, n = G.shape
    k = b.shape[1]
    rd = real_dtype(dt)
    x = xp.empty((B, k, n), dtype=dt)
    sign = xp.empty((B,), dtype=dt)
    logabs = xp.empty((B,), dtype=rd)
    pivots = xp.zeros((B, n), dtype=rd)
    info = xp.zeros((B,), dtype=np.int32)
    c = xp.ascontiguousarray
    kernels(xp, "gko").gko(c(s, dtype=dt), c(t, dtype=dt), c(G, dtype=dt), c(H, dtype=dt),
                           c(b, dtype=dt), x, sign, logabs, pivots, info)
    return x, sign, logabs, pivots, info


def _singular(xp: Any, info: Any, pivots: Any, finite: Any, tol: float,
              scale: Any = None) -> Any:
    """Systems (bool (B,)) with finite data whose pivots show a singular matrix: an exactly zero
    pivot column, or (``tol > 0``) a pivot at most ``tol`` times ``scale`` (B,) (default: the
    largest pivot of the system)."""
    bad = info > 0
    if tol > 0 and pivots.shape[-1]:
        top = pivots.max(axis=-1) if scale is None else scale
        bad = bad | (pivots.min(axis=-1) <= tol * top)
    return bad & finite


#: a pivot of :func:`gko_solve_toeplitz` at most ``SINGULAR_TOL * n * eps * ||T||_F`` means a
#: singular matrix: the FFTs and the elimination turn the exact zeros of a singular Toeplitz
#: matrix into pivots of a few ``n eps ||T||_F`` at most (measured: below ``1.6 n eps ||T||_F``
#: on triangular and rank-deficient Toeplitz matrices, n = 2 .. 400, all four dtypes)
SINGULAR_TOL = 8.0

#: the LinAlgWarning band: a pivot below ``WARN_TOL`` times the singular threshold
WARN_TOL = 32.0


def _toeplitz_fro(xp: Any, c: Any, r: Any) -> Any:
    """``||T||_F`` (B,) from the first columns and rows in ``O(n)``: ``c[i]`` occurs ``n - i``
    times, ``r[j]`` (``j >= 1``) ``n - j`` times. ``C = F^* T D F`` of
    :func:`_toeplitz_like_to_cauchy_like` has the same Frobenius norm (unitary factors)."""
    n = c.shape[1]
    w = xp.asarray(np.arange(n, 0, -1, dtype=np.float64))
    ac = xp.abs(c).astype(np.float64)
    ar = xp.abs(r[:, 1:]).astype(np.float64)
    # scaled by the largest entry (no overflow or underflow of the squares)
    m = xp.maximum(ac.max(axis=1), ar.max(axis=1) if n > 1 else 0.0)
    m1 = xp.where(m > 0, m, 1.0)[:, None]
    tot = ((ac / m1) ** 2 * w).sum(axis=1) + ((ar / m1) ** 2 * w[1:]).sum(axis=1)
    return xp.sqrt(tot) * m1[:, 0]


def _raise_singular(xp: Any, bad: Any, what: str) -> None:
    if bool(bad.any()):
        i = int(xp.argwhere(bad)[0, 0])
        raise np.linalg.LinAlgError(
            f"{what} is singular (to working precision): a zero pivot in GKO's elimination"
            + (f" (system {i} of the flattened batch)" if bad.shape[0] > 1 else "")
        )


# ---------------------------------------------------------------------------------------------
# Toeplitz(-like) -> Cauchy-like


def _toeplitz_generators(c: Any, r: Any) -> tuple[Any, Any]:
    """Return ``(G, H)``, each ``(B, 2, n)``, with ``Z_1 T - T Z_{-1} = G[b].T @ H[b]`` for the
    Toeplitz matrices of first columns ``c`` and first rows ``r`` (``(B, n)``, ``r[:, 0]``
    ignored).

    ``Z_f`` is the ``f``-circulant down-shift (ones on the subdiagonal, ``f`` in the top right
    corner). The displacement is non-zero in row 0 and column ``n - 1`` only::

        G[:, 0] = e_0,  G[:, 1] = v,  v[0] = 2 c[0],  v[i] = c[i] + r[n - i]   (i >= 1)
        H[:, 0] = u,    H[:, 1] = e_{n-1},  u[j] = c[n - 1 - j] - r[j + 1] (j < n - 1), u[n-1] = 0
    """
    xp = _namespace(c)
    B, n = c.shape
    G = xp.zeros((B, 2, n), dtype=c.dtype)
    H = xp.zeros((B, 2, n), dtype=c.dtype)
    if n == 0:
        return G, H
    G[:, 0, 0] = 1
    G[:, 1, 0] = 2 * c[:, 0]
    G[:, 1, 1:] = c[:, 1:] + r[:, :0:-1]
    H[:, 0, : n - 1] = c[:, :0:-1] - r[:, 1:]
    H[:, 1, n - 1] = 1
    return G, H


def _namespace(a: Any) -> Any:
    from structlin._backend import array_namespace

    return array_namespace(a=a)


def _delta(xp: Any, n: int, dt: Any) -> Any:
    """``exp(i pi j / n)``, ``j = 0 .. n-1`` (the diagonal of ``D``)."""
    return xp.asarray(np.exp(1j * np.pi * np.arange(n) / max(n, 1)), dtype=dt)


def _toeplitz_like_to_cauchy_like(G: Any, H: Any) -> tuple[Any, Any, Any, Any]:
    """Return the Cauchy-like form ``(s, t, Gc, Hc)`` of the matrices ``M`` with Sylvester
    displacement ``Z_1 M - M Z_{-1} = G[b].T @ H[b]``.

    Parameters
    ----------
    G, H : ndarray, shape (B, r, n)
        Generators (any kernel dtype; real ones are promoted to complex).

    Returns
    -------
    s, t : ndarray, shape (1, n), complex
        ``s_k = exp(2 pi i k / n)`` (the eigenvalues of ``Z_1``) and
        ``t_k = exp(i pi (2 k - 1) / n)`` (those of ``Z_{-1}``), shared by every system.
    Gc, Hc : ndarray, shape (B, r, n), complex
        ``Gc = ifft(G, norm="ortho")`` and ``Hc = fft(H * delta, norm="ortho")`` along the
        last axis, ``delta_j = exp(i pi j / n)``.

    Notes
    -----
    With ``F`` the unitary DFT matrix (``F x = fft(x, norm="ortho")``) and
    ``D = diag(delta)``: ``Z_1 = F Lambda_1 F^*`` and ``Z_{-1} = D F Lambda_{-1} F^* D^{-1}``, so
    ``C = F^* M D F`` satisfies ``D_s C - C D_t = Gc^T Hc`` and ``M = F C F^* D^{-1}``. To
    solve ``M x = b``: ``y = C^{-1} _to_cauchy_rhs(b)``, ``x = _from_cauchy_solution(y)``;
    ``det M = det C * _cauchy_det_factor(n)``. Cost: ``2 r`` FFTs of length ``n``.
    """
    xp = _namespace(G)
    B, r, n = G.shape
    cdt = _complex_dtype(G.dtype)
    fft = fft_namespace(xp)
    k = np.arange(n)
    s = xp.asarray(np.exp(2j * np.pi * k / max(n, 1))[None, :], dtype=cdt)
    t = xp.asarray(np.exp(1j * np.pi * (2 * k - 1) / max(n, 1))[None, :], dtype=cdt)
    if n == 0:
        return s, t, xp.zeros((B, r, 0), cdt), xp.zeros((B, r, 0), cdt)
    Gc = xp.ascontiguousarray(fft.ifft(G.astype(cdt, copy=False), axis=-1, norm="ortho"),
                              dtype=cdt)
    Hc = xp.ascontiguousarray(fft.fft(H * _delta(xp, n, cdt), axis=-1, norm="ortho"),
                              dtype=cdt)
    return s, t, Gc, Hc


def _to_cauchy_rhs(b: Any, axis: int = -1) -> Any:
    """``F^* b`` along ``axis`` (``ifft(b, norm="ortho")``): the right-hand side of the
    Cauchy-like system of :func:`_toeplitz_like_to_cauchy_like` (complex)."""
    xp = _namespace(b)
    cdt = _complex_dtype(b.dtype)
    return fft_namespace(xp).ifft(b.astype(cdt, copy=False), axis=axis,
                                  norm="ortho").astype(cdt, copy=False)


def _from_cauchy_solution(y: Any, axis: int = -1) -> Any:
    """``D F y`` along ``axis`` (``delta * fft(y, norm="ortho")``): the solution of ``M x = b``
    from the solution ``y`` of the Cauchy-like system (complex; take ``.real`` for real M)."""
    xp = _namespace(y)
    n = y.shape[axis]
    shape = [1] * y.ndim
    shape[axis] = n
    out = fft_namespace(xp).fft(y, axis=axis, norm="ortho")
    return (out * _delta(xp, n, y.dtype).reshape(shape)).astype(y.dtype, copy=False)


def _cauchy_det_factor(n: int) -> complex:
    """``det M / det C = det D^{-1} = exp(-i pi (n - 1) / 2)`` for the transforms of
    :func:`_toeplitz_like_to_cauchy_like` (``det F det F^* = 1``)."""
    return complex(np.exp(-0.5j * np.pi * (n - 1))) if n else 1.0


def _solve_transformed(xp: Any, cauchy: tuple, b: Any) -> tuple:
    """Solve ``M x = b`` (``b (B, n, k)``) given ``cauchy = _toeplitz_like_to_cauchy_like(G,
    H)``; return ``(x (B, n, k) complex, sign of det C (B,), log|det| (B,), pivots (B, n),
    info (B,))`` (multiply the sign by :func:`_cauchy_det_factor` for ``det M``)."""
    s, t, Gc, Hc = cauchy
    bc = xp.ascontiguousarray(xp.swapaxes(_to_cauchy_rhs(b, axis=1), 1, 2), dtype=Gc.dtype)
    y, sg, la, piv, info = _gko(xp, s, t, Gc, Hc, bc)
    return _from_cauchy_solution(xp.swapaxes(y, 1, 2), axis=1), sg, la, piv, info


def _gko_solve_toeplitz_like(G: Any, H: Any, b: Any) -> tuple[Any, Any, Any]:
    """Solve ``M x = b`` for the matrices with ``Z_1 M - M Z_{-1} = G[i].T @ H[i]`` by GKO.

    For part E's ``ldr_solve(kind="toeplitz")``. ``G``, ``H`` of shape ``(B, r, n)`` and ``b``
    of shape ``(B, n, k)`` (NumPy or CuPy, one kernel dtype). Returns ``(x, sign, logabsdet)``:
    ``x (B, n, k)`` complex (take ``.real`` when ``M`` is real), ``sign (B,)`` complex of unit
    modulus and ``logabsdet (B,)`` real, ``det M = sign * exp(logabsdet)``. Raises
    ``LinAlgError`` (naming the system) when a finite system has a pivot at most
    ``SINGULAR_TOL * n * eps`` times its largest (no O(n) norm of ``M`` from its generators);
    no iterative refinement (there is no fast product of ``M`` here).
    """
    xp = _namespace(G)
    B, _, n = G.shape
    rd = real_dtype(G.dtype)
    if n == 0:
        cdt = _complex_dtype(G.dtype)
        return (xp.zeros((B, 0, b.shape[2]), cdt), xp.ones((B,), cdt), xp.zeros((B,), rd))
    x, sg, la, piv, info = _solve_transformed(xp, _toeplitz_like_to_cauchy_like(G, H), b)
    finite = xp.isfinite(G).all(axis=(1, 2)) & xp.isfinite(H).all(axis=(1, 2))
    tol = SINGULAR_TOL * n * float(np.finfo(rd).eps)
    _raise_singular(xp, _singular(xp, info, piv, finite, tol), "the Toeplitz-like matrix")
    return x, sg * _cauchy_det_factor(n), la


# ---------------------------------------------------------------------------------------------
# Toeplitz


def _toeplitz_matvec(xp: Any, c: Any, r: Any, x: Any) -> Any:
    """``T x`` for ``c, r (B, n)`` and ``x (B, n, k)`` by a circulant embedding of a fast
    length ``L >= 2n - 1``."""
    B, n = c.shape
    cdt = _complex_dtype(np.result_type(c.dtype, x.dtype))
    fft = fft_namespace(xp)
    L = fft_fast_length(xp, 2 * n - 1)
    col = xp.zeros((B, L), dtype=cdt)
    col[:, :n] = c
    if n > 1:
        col[:, L - n + 1:] = r[:, :0:-1]
    xx = xp.zeros((B, L, x.shape[2]), dtype=cdt)
    xx[:, :n] = x
    y = fft.ifft(fft.fft(col, axis=1)[:, :, None] * fft.fft(xx, axis=1), axis=1)[:, :n]
    if c.dtype.kind != "c" and x.dtype.kind != "c":
        y = y.real
    return y


def _backward_error(xp: Any, c: Any, r: Any, x: Any, b: Any) -> tuple[Any, Any]:
    """Residual ``b - T x`` and the normwise backward error per system (B,)."""
    res = b - _toeplitz_matvec(xp, c, r, x)
    tn = xp.abs(c).sum(axis=1) + xp.abs(r[:, 1:]).sum(axis=1)
    rn = xp.abs(res).max(axis=1).max(axis=1) if res.shape[2] else xp.zeros(c.shape[0])
    xn = xp.abs(x).max(axis=1).max(axis=1) if x.shape[2] else xp.zeros(c.shape[0])
    bn = xp.abs(b).max(axis=1).max(axis=1) if b.shape[2] else xp.zeros(c.shape[0])
    den = tn * xn + bn
    return res, xp.where(den > 0, rn / xp.where(den > 0, den, 1), 0)


def gko_solve_toeplitz(c: Any, r: Any, b: Any) -> tuple[Any, Any, Any]:
    """Solve ``T x = b`` for Toeplitz matrices by GKO on their Cauchy-like form.

    Internal entry point (prepared layout of ``part_interfaces.md``): ``c``, ``r`` of shape
    ``(B, n)`` (``r[:, 0]`` ignored) and ``b`` of shape ``(B, n, k)``, NumPy or CuPy arrays of
    one kernel dtype, C-contiguous; ``T[b, i, j] = c[b, i - j]`` for ``i >= j`` and
    ``r[b, j - i]`` above the diagonal.

    Returns
    -------
    x : ndarray, shape (B, n, k), the dtype of the input
    sign : ndarray, shape (B,), the dtype of the input (unit modulus; ±1 for real data)
    logabsdet : ndarray, shape (B,), the real dtype
        ``det T[b] = sign[b] * exp(logabsdet[b])``.

    Raises
    ------
    numpy.linalg.LinAlgError
        A system with finite data whose elimination meets a pivot at most
        ``SINGULAR_TOL * n * eps * ||T||_F`` (singular to working precision: the FFTs turn
        the exact zeros of a singular matrix into rounding-level values; ``||T||_F`` from
        ``c`` and ``r`` in ``O(n)`` equals that of the Cauchy-like matrix), or ``T = 0``,
        naming the index in the flattened batch. Not with ``k = 0`` (a determinant only):
        then a singular system has ``sign = 0`` and ``logabsdet = -inf``, as in
        :func:`numpy.linalg.slogdet`.

    Warns
    -----
    scipy.linalg.LinAlgWarning
        A pivot below ``WARN_TOL`` times that threshold (the pivot ratio, smallest pivot over
        ``||T||_F``, an estimate of the reciprocal condition number, is in the message).

    Notes
    -----
    ``Z_1 T - T Z_{-1}`` has rank 2 (:func:`_toeplitz_generators`); FFTs turn it into a
    Cauchy-like matrix on the roots of unity (:func:`_toeplitz_like_to_cauchy_like`), solved by
    the GKO kernel with partial pivoting in ``O(n^2)`` (complex arithmetic, also for real
    ``T``). Systems whose backward error exceeds :data:`REFINE_ABOVE` times ``sqrt(n)`` unit
    roundoffs get one step of iterative refinement with the FFT Toeplitz product, kept where it
    lowers the residual. A NaN in one system stays in that system.
    """
    xp = _namespace(c)
    B, n = c.shape
    k = b.shape[2]
    dt = np.dtype(c.dtype)
    rd = real_dtype(dt)
    if n == 0:
        return (xp.zeros((B, 0, k), dtype=dt), xp.ones((B,), dtype=dt),
                xp.zeros((B,), dtype=rd))
    G, H = _toeplitz_generators(c, r)
    cauchy = _toeplitz_like_to_cauchy_like(G, H)

    def solve(rhs):
        return _solve_transformed(xp, cauchy, rhs)

    x, sg, la, piv, info = solve(b)
    finite = xp.isfinite(c).all(axis=1) & xp.isfinite(r[:, 1:]).all(axis=1)
    eps = float(np.finfo(rd).eps)
    tol = SINGULAR_TOL * n * eps
    fro = _toeplitz_fro(xp, c, r)
    singular = _singular(xp, info, piv, finite, tol, fro) | (finite & (fro == 0))
    if k:
        _raise_singular(xp, singular, "the Toeplitz matrix")
        _warn_ill_conditioned(xp, piv, finite, dt, WARN_TOL * tol, fro)
    if dt.kind != "c":
        x = x.real
    x = x.astype(dt, copy=False)
    if k:
        res, berr = _backward_error(xp, c, r, x, b)
        need = berr > REFINE_ABOVE * math.sqrt(n) * eps
        if bool(need.any()):
            idx = xp.argwhere(need)[:, 0]
            dx = solve(res[idx])[0]
            if dt.kind != "c":
                dx = dx.real
            x2 = x[idx] + dx.astype(dt, copy=False)
            _, berr2 = _backward_error(xp, c[idx], r[idx], x2, b[idx])
            better = berr2 < berr[idx]
            x[idx] = xp.where(better[:, None, None], x2, x[idx])
    sign = sg * _cauchy_det_factor(n)
    if dt.kind != "c":
        sign = xp.where(sign.real < 0, -1, 1)
    sign = xp.where(singular, 0, sign).astype(dt)
    la = xp.where(singular, -np.inf, la).astype(rd)
    return xp.ascontiguousarray(x), sign, la


# ---------------------------------------------------------------------------------------------
# Cauchy-like: the public functions


class _Plan:
    """The broadcast batch of a Cauchy-like solve in the kernel layout."""

    def __init__(self, p: Any, s: Any, t: Any, G: Any, H: Any, b: Any):
        xp, dt = p.xp, p.dtype
        n = s.shape[-1]
        r = G.shape[-2]
        try:
            batch = tuple(np.broadcast_shapes(s.shape[:-1], t.shape[:-1], G.shape[:-2],
                                              H.shape[:-2], b.shape[:-1]))
        except ValueError:
            raise ValueError(
                "the leading (batch) dimensions of the arguments must broadcast, got shapes "
                + ", ".join(str(tuple(a.shape)) for a in (s, t, G, H, b))
            ) from None
        self.batch, self.n, self.r = batch, n, r
        self.B = math.prod(batch)

        def rows(a, core):
            full = xp.broadcast_to(a, (*batch, *core))
            return xp.ascontiguousarray(full, dtype=dt).reshape((self.B, *core))

        self.s = rows(s, (n,))
        self.t = rows(t, (n,))
        self.G = rows(G, (r, n))
        self.H = rows(H, (r, n))
        self.b = rows(b, (n,)).reshape(self.B, 1, n)


def _check_nodes(xp: Any, s: Any, t: Any, names: tuple[str, str]) -> None:
    """ValueError when some ``s[b, i] == t[b, j]`` (sorted merge: ``O(n log n)`` per row)."""
    B, n = s.shape
    if n == 0 or B == 0:
        return
    allv = xp.concatenate([s, t], axis=1)
    order = xp.argsort(allv, axis=1, kind="stable") if xp is np else xp.argsort(allv, axis=1)
    v = xp.take_along_axis(allv, order, axis=1)
    side = order >= n
    hit = (v[:, 1:] == v[:, :-1]) & (side[:, 1:] != side[:, :-1])
    if bool(hit.any()):
        row = int(xp.argwhere(hit.any(axis=1))[0, 0])
        rs, rt = s[row], t[row]
        same = xp.argwhere(rs[:, None] == rt[None, :])
        i, j = int(same[0, 0]), int(same[0, 1])
        val = complex(rs[i]) if rs.dtype.kind == "c" else float(rs[i])
        raise ValueError(
            f"{names[0]} and {names[1]} must not share a value: {names[0]}[..., {i}] == "
            f"{names[1]}[..., {j}] == {val}"
            + (f" (row {row} of the flattened batch)" if B > 1 else "")
            + ", so the matrix entry 1 / (x_i - y_j) is infinite"
        )


def _prepare(names: tuple[str, ...], s: Any, t: Any, G: Any, H: Any, b: Any,
             grad: Any = ABSENT) -> tuple:
    ns, nt, nG, nH, nb = names
    arrays = {ns: s, nt: t, nb: b}
    if nG is not None:
        arrays[nG] = G
        arrays[nH] = H
    p = prepare(**arrays, grad=grad, dtype_of=tuple(arrays))
    d = p._asdict()
    s, t, b = d[ns], d[nt], d[nb]
    check_min_ndim(s, 1, ns, "(..., n)")
    check_min_ndim(t, 1, nt, "(..., n)")
    check_min_ndim(b, 1, nb, "(..., n)")
    n = check_int(s.shape[-1], f"the number of {ns} (last axis)", maximum=MAX_N)
    for a, name in ((t, nt), (b, nb)):
        if a.shape[-1] != n:
            raise ValueError(
                f"{name} must have length n = {n} along its last axis (that of {ns}, shape "
                f"{tuple(s.shape)}), got shape {tuple(a.shape)}"
            )
    xp = p.xp
    if nG is not None:
        G, H = d[nG], d[nH]
        check_min_ndim(G, 2, nG, "(..., r, n)")
        check_min_ndim(H, 2, nH, "(..., r, n)")
        for a, name in ((G, nG), (H, nH)):
            if a.shape[-1] != n:
                raise ValueError(
                    f"{name} must have n = {n} columns (last axis, the length of {ns}), got "
                    f"shape {tuple(a.shape)}"
                )
        if G.shape[-2] != H.shape[-2]:
            raise ValueError(
                f"{nG} and {nH} must have the same number of rows r (the displacement rank, "
                f"axis -2), got shapes {tuple(G.shape)} and {tuple(H.shape)}"
            )
        check_int(G.shape[-2], f"the rank of {nG} (axis -2)", maximum=MAX_N)
    else:
        G = xp.ones((1, n), dtype=p.dtype)
        H = G
    plan = _Plan(p, s, t, G, H, b)
    _check_nodes(xp, plan.s, plan.t, (ns, nt))
    return p, plan, (None if grad is ABSENT else d["grad"])


def _finite_rows(xp: Any, plan: Any) -> Any:
    ok = xp.isfinite(plan.s).all(axis=1) & xp.isfinite(plan.t).all(axis=1)
    ok &= xp.isfinite(plan.G).all(axis=(1, 2)) & xp.isfinite(plan.H).all(axis=(1, 2))
    return ok & xp.isfinite(plan.b).all(axis=(1, 2))


def _warn_ill_conditioned(xp: Any, pivots: Any, finite: Any, dt: Any,
                          tol: float | None = None, scale: Any = None) -> None:
    """LinAlgWarning when the smallest pivot of a finite system is below ``tol`` (default
    ``eps``) times ``scale`` (B,) (default: its largest pivot)."""
    if pivots.shape[-1] == 0 or pivots.shape[0] == 0:
        return
    if tol is None:
        tol = float(np.finfo(real_dtype(dt)).eps)
    top = pivots.max(axis=-1) if scale is None else xp.asarray(scale, dtype=pivots.dtype)
    ratio = pivots.min(axis=-1) / xp.where(top > 0, top, 1)
    ratio = xp.where(finite, ratio, 1)
    worst = float(ratio.min())
    if worst < tol:
        what = "largest pivot" if scale is None else "Frobenius norm"
        warnings.warn(
            f"Ill-conditioned matrix (pivot ratio {worst:.3g}, smallest pivot / {what}, an "
            "estimate of the reciprocal condition number): the result may not be accurate",
            LinAlgWarning, stacklevel=3)


def _solve(p: Any, plan: Any, what: str) -> Any:
    xp = p.xp
    x, _, _, piv, info = _gko(xp, plan.s, plan.t, plan.G, plan.H, plan.b)
    finite = _finite_rows(xp, plan)
    _raise_singular(xp, _singular(xp, info, piv, finite, 0.0), what)
    _warn_ill_conditioned(xp, piv, finite, p.dtype)
    return x


def solve_cauchy_like(s: Any, t: Any, G: Any, H: Any, b: Any) -> Any:
    """Solve ``C x = b`` for the Cauchy-like matrix ``C[i, j] = sum_q G[q, i] H[q, j] / (s_i -
    t_j)``.

    Parameters
    ----------
    s : array_like, shape (..., n)
        Row nodes.
    t : array_like, shape (..., n)
        Column nodes; no ``t_j`` may equal an ``s_i`` of the same system.
    G, H : array_like, shape (..., r, n)
        Generators of rank ``r``: ``D_s C - C D_t = G^T H``.
    b : array_like, shape (..., n)
        Right-hand side.

    Returns
    -------
    x : ndarray, shape (..., n)
        The solution, for the broadcast batch of all arguments (structlin's layout: batch
        dimensions in front, vectors on the last axis), in NumPy's promoted dtype (integers
        to float64; float32 and complex64 stay single precision).

    Raises
    ------
    ValueError
        Shapes that do not match or broadcast, or ``s_i == t_j`` (the message names both).
    TypeError
        Non-numeric arrays, NumPy mixed with CuPy.
    numpy.linalg.LinAlgError
        A system with finite data whose elimination meets an exactly zero pivot column.

    Warns
    -----
    scipy.linalg.LinAlgWarning
        When the smallest pivot is below ``eps`` times the largest (ill-conditioned).

    See Also
    --------
    solve_cauchy : the plain Cauchy matrix ``1 / (x_i - y_j)``.
    solve_cauchy_like_vjp : gradients of every argument.

    Notes
    -----
    Gaussian elimination with partial pivoting on the generators (GKO): step ``j`` forms the
    first column of the Schur complement from the generators (``r`` multiply-adds and a
    division per entry), picks the largest entry as pivot, swaps its node and generator column
    into place, forms the first row, and updates the generators and the right-hand side by
    rank-one corrections; a back substitution with the stored ``U`` ends the solve.
    ``O(r n^2)`` operations, ``O(r n + n^2 / 2)`` memory per system (``C`` is never formed).
    Systems are independent (parallel over the batch; a NaN stays in its system). On CuPy
    arrays a CUDA kernel solves one system per block (unverified on a GPU: compiled by NVRTC and
    run in a host emulator only).

    References
    ----------
    .. [1] I. Gohberg, T. Kailath, V. Olshevsky, "Fast Gaussian elimination with partial
       pivoting for matrices with displacement structure", Math. Comp. 64 (1995), 1557-1576.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.gko import solve_cauchy_like
    >>> s, t = np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.5, 2.5])
    >>> G, H = np.ones((1, 3)), np.array([[1.0, -1.0, 2.0]])
    >>> b = np.array([1.0, 0.0, 2.0])
    >>> C = (G.T @ H) / (s[:, None] - t[None, :])
    >>> bool(np.allclose(C @ solve_cauchy_like(s, t, G, H, b), b))
    True
    """
    p, plan, _ = _prepare(("s", "t", "G", "H", "b"), s, t, G, H, b)
    return _solve(p, plan, "the Cauchy-like matrix").reshape((*plan.batch, plan.n))


def solve_cauchy(x_nodes: Any, y_nodes: Any, b: Any) -> Any:
    """Solve ``C x = b`` for the Cauchy matrix ``C[i, j] = 1 / (x_nodes[i] - y_nodes[j])``.

    Parameters
    ----------
    x_nodes : array_like, shape (..., n)
        Row nodes.
    y_nodes : array_like, shape (..., n)
        Column nodes; ``x_i == y_j`` is an error.
    b : array_like, shape (..., n)
        Right-hand side.

    Returns
    -------
    x : ndarray, shape (..., n)
        The solution for the broadcast batch, in NumPy's promoted dtype.

    Raises
    ------
    ValueError
        Shapes that do not match or broadcast, or ``x_i == y_j`` (names both nodes).
    TypeError
        Non-numeric arrays, NumPy mixed with CuPy.
    numpy.linalg.LinAlgError
        An exactly zero pivot (repeated nodes among ``x_nodes`` or among ``y_nodes`` make
        ``C`` singular).

    Warns
    -----
    scipy.linalg.LinAlgWarning
        Ill-conditioning (Cauchy matrices with close nodes are notoriously ill-conditioned).

    See Also
    --------
    solve_cauchy_like : general generators.
    structlin.cauchy.matmul_cauchy : the product.

    Notes
    -----
    :func:`solve_cauchy_like` with ``G = H = ones((1, n))``: GKO with partial pivoting,
    ``O(n^2)`` per system (Gohberg, Kailath and Olshevsky 1995).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.gko import solve_cauchy
    >>> x, y = np.array([1.0, 2.0]), np.array([0.0, 3.0])
    >>> sol = solve_cauchy(x, y, [1.0, 1.0])
    >>> bool(np.allclose((1 / (x[:, None] - y[None, :])) @ sol, [1.0, 1.0]))
    True
    """
    p, plan, _ = _prepare(("x_nodes", "y_nodes", None, None, "b"), x_nodes, y_nodes, None,
                          None, b)
    return _solve(p, plan, "the Cauchy matrix").reshape((*plan.batch, plan.n))


def _vjp(p: Any, plan: Any, g: Any, what: str) -> tuple:
    """Gradients ``(gs, gt, gG, gH, gb)`` in the kernel layout (B, ...)."""
    xp = p.xp
    dt = p.dtype
    B, n, r = plan.B, plan.n, plan.r
    x = _solve(p, plan, what)[:, 0]  # (B, n)
    g = xp.broadcast_to(g, (*plan.batch, n))
    if dt.kind != "c" and g.dtype.kind == "c":
        g = g.real
    g = xp.ascontiguousarray(g, dtype=dt).reshape(B, 1, n)
    conj = xp.conj
    # C^H = Cauchy-like with nodes conj(t), conj(s), generators -conj(H), conj(G)
    gb = _gko(xp, conj(plan.t), conj(plan.s), -conj(plan.H), conj(plan.G), g)[0][:, 0]
    ck = kernels(xp, "cauchy")
    P1 = xp.zeros((B, r, n), dtype=dt)
    P2 = xp.zeros((B, r, n), dtype=dt)
    Q1 = xp.zeros((B, r, n), dtype=dt)
    Q2 = xp.zeros((B, r, n), dtype=dt)
    if B and n:
        ck.cauchy_square(plan.s, plan.t, xp.ascontiguousarray(plan.H * x[:, None, :]), P1, P2)
        ck.cauchy_square(plan.t, plan.s, xp.ascontiguousarray(plan.G * conj(gb)[:, None, :]),
                         Q1, Q2)
    gG = -gb[:, None, :] * conj(P1)
    gH = conj(x)[:, None, :] * conj(Q1)
    gs = gb * conj((plan.G * P2).sum(axis=1))
    gt = -conj(x) * conj((plan.H * Q2).sum(axis=1))
    return gs, gt, gG, gH, gb


def _grads_out(xp: Any, plan: Any, pairs: list) -> tuple:
    out = []
    for g, arg, core in pairs:
        full = g.reshape((*plan.batch, *core))
        out.append(grad_like(xp, sum_to_shape(full, arg.shape), arg))
    return tuple(out)


def solve_cauchy_like_vjp(s: Any, t: Any, G: Any, H: Any, b: Any, grad: Any) -> tuple:
    """Return the gradients of :func:`solve_cauchy_like` for the output gradient ``grad``.

    Parameters
    ----------
    s, t, G, H, b : array_like
        As for :func:`solve_cauchy_like`.
    grad : array_like, shape (..., n)
        Gradient of a real loss with respect to the solution (the broadcast batch shape).

    Returns
    -------
    grad_s, grad_t, grad_G, grad_H, grad_b : ndarray
        Each of its argument's shape and dtype (promoted to floating point; the real part for
        a real argument), summed over broadcast dimensions; complex gradients follow
        PyTorch's convention ``dl/dRe z + 1j dl/dIm z``.

    Raises
    ------
    ValueError, TypeError, numpy.linalg.LinAlgError
        As for :func:`solve_cauchy_like`, and ``grad`` of the wrong shape.

    See Also
    --------
    solve_cauchy_like : the solve.

    Notes
    -----
    A solve's VJP is a solve with the adjoint: ``grad_b = C^{-H} grad``, and ``C^H`` is
    Cauchy-like with nodes ``conj(t), conj(s)`` and generators ``-conj(H), conj(G)``, solved by
    the same GKO kernel. With ``grad_C = -grad_b x^H`` the other gradients are fused Cauchy
    products (:mod:`structlin.cauchy`'s kernels, ``O(r n^2)``, ``C`` never formed)::

        grad_G[q, i] = -grad_b[i] conj(sum_j H[q, j] x[j] / (s_i - t_j))
        grad_H[q, j] =  conj(x[j]) conj(sum_i G[q, i] conj(grad_b[i]) / (t_j - s_i))
        grad_s[i]    =  grad_b[i] conj(sum_q G[q, i] sum_j H[q, j] x[j] / (s_i - t_j)^2)
        grad_t[j]    = -conj(x[j]) conj(sum_q H[q, j] sum_i G[q, i] conj(grad_b[i]) / (s_i - t_j)^2)

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.gko import solve_cauchy_like, solve_cauchy_like_vjp
    >>> s, t, G, H = np.array([1.0, 2.0]), np.array([0.0, 3.0]), np.ones((1, 2)), np.ones((1, 2))
    >>> b, g = np.array([1.0, 2.0]), np.array([1.0, 0.0])
    >>> gb = solve_cauchy_like_vjp(s, t, G, H, b, g)[4]
    >>> eps = 1e-6
    >>> x0, x1 = solve_cauchy_like(s, t, G, H, b), solve_cauchy_like(s, t, G, H, b + [eps, 0])
    >>> bool(abs((x1[0] - x0[0]) / eps - gb[0]) < 1e-4)
    True
    """
    p, plan, gr = _prepare(("s", "t", "G", "H", "b"), s, t, G, H, b, grad)
    _check_grad(gr, plan)
    gs, gt, gG, gH, gb = _vjp(p, plan, gr, "the Cauchy-like matrix")
    n, r = plan.n, plan.r
    return _grads_out(p.xp, plan, [(gs, p.s, (n,)), (gt, p.t, (n,)), (gG, p.G, (r, n)),
                                   (gH, p.H, (r, n)), (gb, p.b, (n,))])


def _check_grad(g: Any, plan: Any) -> None:
    want = (*plan.batch, plan.n)
    if tuple(g.shape) != want:
        raise ValueError(f"grad must have the shape of the solution {want}, got shape "
                         f"{tuple(g.shape)}")


def solve_cauchy_vjp(x_nodes: Any, y_nodes: Any, b: Any, grad: Any) -> tuple:
    """Return the gradients of :func:`solve_cauchy` for the output gradient ``grad``.

    Parameters
    ----------
    x_nodes, y_nodes, b : array_like
        As for :func:`solve_cauchy`.
    grad : array_like, shape (..., n)
        Gradient of a real loss with respect to the solution.

    Returns
    -------
    grad_x_nodes, grad_y_nodes, grad_b : ndarray
        Of their arguments' shapes and dtypes (summed over broadcast dimensions; PyTorch's
        complex convention).

    Raises
    ------
    ValueError, TypeError, numpy.linalg.LinAlgError
        As for :func:`solve_cauchy`, and ``grad`` of the wrong shape.

    See Also
    --------
    solve_cauchy, solve_cauchy_like_vjp

    Notes
    -----
    :func:`solve_cauchy_like_vjp` with ``G = H = ones``: one adjoint GKO solve and two fused
    Cauchy products, ``O(n^2)`` per system.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.gko import solve_cauchy_vjp
    >>> gx, gy, gb = solve_cauchy_vjp([2.0], [0.0], [3.0], [1.0])  # x = 3 (x_1 - y_1) = 6
    >>> float(gx[0]), float(gy[0]), float(gb[0])
    (3.0, -3.0, 2.0)
    """
    p, plan, gr = _prepare(("x_nodes", "y_nodes", None, None, "b"), x_nodes, y_nodes, None,
                           None, b, grad)
    _check_grad(gr, plan)
    gs, gt, _, _, gb = _vjp(p, plan, gr, "the Cauchy matrix")
    n = plan.n
    return _grads_out(p.xp, plan, [(gs, p.x_nodes, (n,)), (gt, p.y_nodes, (n,)),
                                   (gb, p.b, (n,))])
