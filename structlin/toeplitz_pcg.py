"""Circulant preconditioners and preconditioned Krylov solvers for Toeplitz systems.

:func:`strang_preconditioner` and :func:`chan_preconditioner` return the first column of the
circulant matrices of G. Strang (1986) and T. Chan (1988) that approximate a Toeplitz matrix;
:func:`pcg_solve_toeplitz` (internal: the ``method="pcg"`` of
:func:`structlin.toeplitz.solve_toeplitz`) solves batches of Toeplitz systems with many
right-hand sides by preconditioned conjugate gradients (Hermitian matrices) or preconditioned
BiCGSTAB (the others), every product an FFT: ``O(n log n)`` per iteration instead of the
``O(n^2)`` of Levinson's recursion, with a number of iterations that stays bounded as ``n``
grows for matrices whose generating function is positive (Chan & Ng 1996).

References: R. H. Chan, M. K. Ng, "Conjugate gradient methods for Toeplitz systems", SIAM
Review 38 (1996) 427-482; G. Strang, "A proposal for Toeplitz matrix calculations", Stud.
Appl. Math. 74 (1986) 171-176; T. F. Chan, "An optimal circulant preconditioner for Toeplitz
systems", SIAM J. Sci. Stat. Comput. 9 (1988) 766-771; H. A. van der Vorst, "Bi-CGSTAB", SIAM
J. Sci. Stat. Comput. 13 (1992) 631-644.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._backend import as_kernel_array, fft_fast_length, fft_pair, real_dtype
from structlin._validate import check_choice, check_float, check_int, check_min_ndim, prepare

__all__ = ["chan_preconditioner", "strang_preconditioner"]

#: the most unknowns of one system (the FFT of the embedding has twice as many points)
MAX_N = 1 << 30
#: preconditioner choices of :func:`pcg_solve_toeplitz`
PRECONDITIONERS = ("strang", "chan", None)
#: restarts from the true residual (residual replacement) before a column is given up
_MAX_CYCLES = 8


class _Circulant:
    """The circulant matrices with first columns ``col`` (B, L) applied to vectors (B, k, L)
    by one FFT pair of length ``L``, the spectrum computed once; real data use the real FFT.
    """

    def __init__(self, xp: Any, col: Any, real: bool):
        self.xp, self.real, self.L = xp, real, col.shape[-1]
        self._fwd, self._inv = fft_pair(xp, real)
        self.spectrum = self.forward(col)[:, None, :]

    def forward(self, a: Any, length: int | None = None) -> Any:
        return self._fwd(a, self.L if length is None else length)

    def backward(self, a: Any) -> Any:
        return self._inv(a, self.L)

    def apply(self, v: Any) -> Any:
        return self.backward(self.forward(v) * self.spectrum)


def _toeplitz_embedding(xp: Any, c: Any, r: Any, real: bool) -> Any:
    """First columns (B, L) of the circulants of length ``L >= m + n - 1`` (a fast FFT length)
    whose top-left ``m x n`` block is the Toeplitz matrix of columns ``c`` (B, m), rows ``r``
    (B, n)."""
    B, m = c.shape
    n = r.shape[-1]
    L = fft_fast_length(xp, m + n - 1, real)
    e = xp.zeros((B, L), dtype=c.dtype)
    e[:, :m] = c
    if n > 1:
        e[:, L - n + 1:] = r[:, :0:-1]
    return e


class _Toeplitz:
    """``T x`` for the Toeplitz matrices (B, m, n) of ``c`` (B, m) and ``r`` (B, n) on vectors
    (B, k, n): zero padding to the embedding circulant, one FFT pair, the first ``m`` entries."""

    def __init__(self, xp: Any, c: Any, r: Any, real: bool):
        self.m = c.shape[-1]
        self.circ = _Circulant(xp, _toeplitz_embedding(xp, c, r, real), real)

    def __call__(self, x: Any) -> Any:
        circ = self.circ
        y = circ.backward(circ.forward(x, circ.L) * circ.spectrum)
        return y[..., :self.m]


# ---------------------------------------------------------------------------------------------
# The preconditioners


def _strang_column(xp: Any, c: Any, r: Any) -> Any:
    n = c.shape[-1]
    h = n // 2
    s = xp.empty(c.shape, dtype=c.dtype)
    s[..., :h + 1] = c[..., :h + 1]
    if n > 1:
        s[..., h + 1:] = r[..., n - h - 1:0:-1]
        if n % 2 == 0:
            # the middle diagonal is c's and r's at once: their mean keeps a Hermitian T's
            # preconditioner Hermitian
            s[..., h] = 0.5 * (c[..., h] + r[..., h])
    return s


def _chan_column(xp: Any, c: Any, r: Any) -> Any:
    n = c.shape[-1]
    j = xp.arange(n, dtype=real_dtype(c.dtype))
    wrapped = xp.zeros(c.shape, dtype=c.dtype)
    if n > 1:
        wrapped[..., 1:] = r[..., :0:-1]  # t_{j-n} = r_{n-j}
    return ((n - j) * c + j * wrapped) / n


def _parse_c_or_cr(c_or_cr: Any) -> tuple[Any, Any, Any, tuple]:
    if isinstance(c_or_cr, tuple):
        if len(c_or_cr) != 2:
            raise ValueError(
                f"c_or_cr must be c or a tuple (c, r), got a tuple of {len(c_or_cr)} items"
            )
        p = prepare(c=c_or_cr[0], r=c_or_cr[1])
        c, r = p.c, p.r
    else:
        p = prepare(c_or_cr=c_or_cr)
        c, r = p.c_or_cr, None
    check_min_ndim(c, 1, "c", "(..., n)")
    n = check_int(c.shape[-1], "the length of c (last axis)", minimum=1, maximum=MAX_N)
    if r is None:
        r = p.xp.conj(c)
    else:
        check_min_ndim(r, 1, "r", "(..., n)")
        if r.shape[-1] != n:
            raise ValueError(
                f"r must have the length n = {n} of c along its last axis (a square Toeplitz "
                f"matrix), got shapes {tuple(c.shape)} and {tuple(r.shape)}"
            )
    try:
        batch = tuple(np.broadcast_shapes(c.shape[:-1], r.shape[:-1]))
    except ValueError:
        raise ValueError(
            f"the leading (batch) dimensions of c and r must broadcast, got shapes "
            f"{tuple(c.shape)} and {tuple(r.shape)}"
        ) from None
    xp = p.xp
    c = as_kernel_array(xp, xp.broadcast_to(c, (*batch, n)), p.dtype)
    r = as_kernel_array(xp, xp.broadcast_to(r, (*batch, n)), p.dtype)
    return xp, c, r, batch


def strang_preconditioner(c_or_cr: Any) -> Any:
    """Return the first column of G. Strang's circulant preconditioner of a Toeplitz matrix.

    Parameters
    ----------
    c_or_cr : array_like or tuple of array_like
        ``c`` of shape (..., n), the first column of ``T``, or a tuple ``(c, r)`` with ``r``
        of shape (..., n) its first row (``r[..., 0]`` is ignored); ``c`` alone means
        ``r = conj(c)`` (a Hermitian ``T``), the convention of
        :func:`scipy.linalg.solve_toeplitz`. The leading dimensions of ``c`` and ``r``
        broadcast; each row is one matrix.

    Returns
    -------
    ndarray, shape (..., n)
        The first column ``s`` of the circulant ``S`` that copies the central diagonals of
        ``T``: ``s[j] = c[j]`` for ``j < n/2``, ``s[j] = r[n-j]`` for ``j > n/2`` and, for even
        ``n``, ``s[n/2] = (c[n/2] + r[n/2]) / 2``. Usable with
        :func:`scipy.linalg.solve_circulant`. NumPy's promoted dtype of ``c`` and ``r``
        (integers to float64), array type of the input.

    Raises
    ------
    ValueError
        0-d ``c``, ``n = 0``, ``r`` of another length, batch shapes that do not broadcast, a
        tuple that is not ``(c, r)``.
    TypeError
        Non-numeric arrays, NumPy mixed with CuPy.

    See Also
    --------
    chan_preconditioner : T. Chan's optimal circulant, never singular for a positive
        definite ``T``.

    Notes
    -----
    ``O(n)``: a copy. For ``T`` generated by a function ``f`` of the Wiener class, the
    eigenvalues of ``S^-1 T`` cluster at 1 and preconditioned CG converges superlinearly
    (Strang 1986; Chan & Ng 1996, Theorem 3). ``S`` can however be singular or indefinite
    for a positive definite ``T`` (its eigenvalues are a truncated Fourier series of ``f``,
    which can vanish where ``f`` is small): :func:`pcg_solve_toeplitz` checks its eigenvalues
    and uses T. Chan's preconditioner for such a row instead. The even-``n`` middle entry is
    the mean of the two diagonals it stands for, so that a Hermitian ``T`` gives a Hermitian
    ``S``.

    References
    ----------
    .. [1] G. Strang, "A proposal for Toeplitz matrix calculations", Stud. Appl. Math. 74
       (1986) 171-176.
    .. [2] R. H. Chan, M. K. Ng, "Conjugate gradient methods for Toeplitz systems", SIAM
       Review 38 (1996) 427-482.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.toeplitz_pcg import strang_preconditioner
    >>> strang_preconditioner(np.array([4.0, 1.0, 0.5, 0.25])).tolist()
    [4.0, 1.0, 0.5, 1.0]
    """
    xp, c, r, _batch = _parse_c_or_cr(c_or_cr)
    return _strang_column(xp, c, r)


def chan_preconditioner(c_or_cr: Any) -> Any:
    """Return the first column of T. Chan's optimal circulant preconditioner of a Toeplitz matrix.

    Parameters
    ----------
    c_or_cr : array_like or tuple of array_like
        ``c`` of shape (..., n), the first column of ``T``, or a tuple ``(c, r)`` with ``r``
        of shape (..., n) its first row (``r[..., 0]`` is ignored); ``c`` alone means
        ``r = conj(c)``, SciPy's convention. Leading dimensions broadcast; each row is one
        matrix.

    Returns
    -------
    ndarray, shape (..., n)
        The first column ``p`` of the circulant ``C`` nearest to ``T`` in the Frobenius norm:
        ``p[j] = ((n - j) c[j] + j r[n - j]) / n`` (``p[0] = c[0]``). Usable with
        :func:`scipy.linalg.solve_circulant`. NumPy's promoted dtype of ``c`` and ``r``, array
        type of the input.

    Raises
    ------
    ValueError
        0-d ``c``, ``n = 0``, ``r`` of another length, batch shapes that do not broadcast, a
        tuple that is not ``(c, r)``.
    TypeError
        Non-numeric arrays, NumPy mixed with CuPy.

    See Also
    --------
    strang_preconditioner : the circulant copying ``T``'s central diagonals.

    Notes
    -----
    ``O(n)``. Each diagonal of ``C`` is the average of the two diagonals of ``T`` it wraps
    (weights ``n - j`` and ``j``, their lengths). The eigenvalues of ``C`` are Rayleigh
    quotients of ``T`` at the Fourier vectors, ``lambda_k = f_k^H T f_k``, so ``C`` is positive
    definite whenever ``T`` is, with ``lambda_min(T) <= lambda_k <= lambda_max(T)``; for ``T``
    of a positive Wiener-class generating function, the spectrum of ``C^-1 T`` clusters at 1
    (T. Chan 1988; Chan & Ng 1996, Section 3).

    References
    ----------
    .. [1] T. F. Chan, "An optimal circulant preconditioner for Toeplitz systems", SIAM J.
       Sci. Stat. Comput. 9 (1988) 766-771.
    .. [2] R. H. Chan, M. K. Ng, "Conjugate gradient methods for Toeplitz systems", SIAM
       Review 38 (1996) 427-482.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.toeplitz_pcg import chan_preconditioner
    >>> chan_preconditioner(np.array([4.0, 1.0, 0.5, 0.25])).tolist()
    [4.0, 0.8125, 0.5, 0.8125]
    """
    xp, c, r, _batch = _parse_c_or_cr(c_or_cr)
    return _chan_column(xp, c, r)


class _Preconditioner:
    """The inverses of the circulant preconditioners of each row, by FFTs of length ``n``.

    Per row, the first usable of (the requested preconditioner, T. Chan's, the identity): a
    circulant is usable when its eigenvalues stay away from zero (``|lambda| > sqrt(eps)
    max |lambda|``) and, for a Hermitian system (CG needs a positive definite
    preconditioner), are positive.
    """

    def __init__(self, xp: Any, c: Any, r: Any, kind: Any, real: bool, hermitian: bool):
        self.identity = kind is None
        if self.identity:
            return
        circ = None
        chosen = xp.zeros(c.shape[0], dtype=bool)
        lam = None
        threshold = float(np.sqrt(np.finfo(real_dtype(c.dtype)).eps))
        builders = [_strang_column, _chan_column] if kind == "strang" else [_chan_column]
        for build in builders:
            circ = _Circulant(xp, build(xp, c, r), real)
            spec = circ.spectrum[:, 0, :]
            mag = xp.abs(spec)
            top = mag.max(axis=-1)
            if hermitian:
                good = spec.real.min(axis=-1) > threshold * top
            else:
                good = mag.min(axis=-1) > threshold * top
            take = good & ~chosen
            lam = spec if lam is None else xp.where(take[:, None], spec, lam)
            chosen |= take
            if bool(chosen.all()):
                break
        lam = xp.where(chosen[:, None], lam, xp.ones_like(lam))
        self.circ = circ
        self.circ.spectrum = (1 / lam)[:, None, :]

    def __call__(self, v: Any) -> Any:
        if self.identity:
            return v.copy()
        return self.circ.apply(v)


# ---------------------------------------------------------------------------------------------
# The batched Krylov methods. Every scalar of the recurrences is a (B, k) array, one per
# column; a column stops (its coefficients become 0, so its vectors stop changing) when it has
# converged, broken down, met NaN or used its own maxiter iterations, so that no column's
# trajectory depends on another's.


def _dot(xp: Any, a: Any, b: Any) -> Any:
    if a.dtype.kind == "c":
        return xp.einsum("bkn,bkn->bk", a.conj(), b)
    return xp.einsum("bkn,bkn->bk", a, b)


def _norm(xp: Any, a: Any) -> Any:
    if a.dtype.kind == "c":
        return xp.sqrt(xp.einsum("bkn,bkn->bk", a.real, a.real)
                       + xp.einsum("bkn,bkn->bk", a.imag, a.imag))
    return xp.sqrt(xp.einsum("bkn,bkn->bk", a, a))


def _safe_div(xp: Any, num: Any, den: Any, ok: Any) -> tuple[Any, Any]:
    """``num / den`` where ``ok`` and the quotient is finite, else 0; and the new ``ok``."""
    ok = ok & (den != 0)
    q = num / xp.where(ok, den, 1)
    ok = ok & xp.isfinite(q)
    return xp.where(ok, q, 0), ok


def _cg_cycle(xp, A, M, b_norm, tol, x, r, active, iters, maxiter):
    z = M(r)
    p = z
    rz = _dot(xp, r, z).real
    while True:
        active = active & (iters < maxiter)
        if not bool(active.any()):
            return
        q = A(p)
        alpha, ok = _safe_div(xp, rz, _dot(xp, p, q).real, active)
        iters += ok
        a3 = alpha[..., None]
        x += a3 * p
        r -= a3 * q
        active = ok & (_norm(xp, r) > tol * b_norm)
        if not bool(active.any()):
            return
        z = M(r)
        rz_new = _dot(xp, r, z).real
        beta, active = _safe_div(xp, rz_new, rz, active)
        p = z + beta[..., None] * p
        rz = rz_new


def _bicgstab_cycle(xp, A, M, b_norm, tol, x, r, active, iters, maxiter):
    # right-preconditioned BiCGSTAB: r stays the residual of T x = b
    r_hat = r.copy()
    one = xp.ones(active.shape, dtype=r.dtype)
    rho, alpha, omega = one, one, one
    p = xp.zeros_like(r)
    v = xp.zeros_like(r)
    while True:
        active = active & (iters < maxiter)
        if not bool(active.any()):
            return
        rho_new = _dot(xp, r_hat, r)
        ratio, ok = _safe_div(xp, rho_new, rho, active)
        beta, ok = _safe_div(xp, ratio * alpha, omega, ok)
        p = r + beta[..., None] * (p - omega[..., None] * v)
        p_hat = M(p)
        v = A(p_hat)
        alpha, ok = _safe_div(xp, rho_new, _dot(xp, r_hat, v), ok)
        s = r - alpha[..., None] * v
        half = ok & (_norm(xp, s) <= tol * b_norm)
        s_hat = M(s)
        t = A(s_hat)
        omega, ok2 = _safe_div(xp, _dot(xp, t, s), _dot(xp, t, t).real, ok & ~half)
        # a column whose half step converged, or whose omega broke down, takes the half step
        omega = xp.where(ok2, omega, 0)
        iters += ok
        x += alpha[..., None] * p_hat + omega[..., None] * s_hat
        r[...] = s - omega[..., None] * t
        active = ok2 & (_norm(xp, r) > tol * b_norm)
        rho = xp.where(active, rho_new, 1)
        omega = xp.where(active, omega, 1)


def _krylov(xp, c, r, b, preconditioner, tol, maxiter, hermitian):
    """The solver behind :func:`pcg_solve_toeplitz`; also returns the iterations (B, k)."""
    B, _n, k = b.shape
    dt = b.dtype
    real = dt.kind != "c"
    A = _Toeplitz(xp, c, r, real)
    M = _Preconditioner(xp, c, r, preconditioner, real, hermitian)
    rhs = xp.ascontiguousarray(xp.swapaxes(b, 1, 2))  # (B, k, n): vectors on the last axis
    b_norm = _norm(xp, rhs)
    x = xp.zeros_like(rhs)
    iters = xp.zeros((B, k), dtype=np.int64)
    cycle = _cg_cycle if hermitian else _bicgstab_cycle
    previous = None
    res = rhs.copy()
    for count in range(_MAX_CYCLES + 1):
        if count:
            res = rhs - A(x)
        relres = _norm(xp, res) / xp.where(b_norm > 0, b_norm, 1)
        active = xp.isfinite(relres) & (relres > tol) & (iters < maxiter)
        if previous is not None:
            # a restart that did not at least halve the residual will not converge either
            active &= relres < 0.5 * previous
        if count == _MAX_CYCLES or not bool(active.any()):
            break
        previous = relres
        cycle(xp, A, M, b_norm, tol, x, res, active, iters, maxiter)
    converged = relres <= tol
    bad = ~xp.isfinite(relres)
    if bool(bad.any()):
        x[bad] = np.nan
    x = xp.ascontiguousarray(xp.swapaxes(x, 1, 2))
    return x, converged, relres.astype(real_dtype(dt), copy=False), iters


def pcg_solve_toeplitz(
    c: Any, r: Any, b: Any, *, preconditioner: Any = "chan", tol: float | None = None,
    maxiter: int | None = None, hermitian: bool = False,
) -> tuple[Any, Any, Any]:
    """Return the solutions of batched Toeplitz systems ``T x = b`` by preconditioned Krylov
    methods, with a convergence flag and the relative residual of each column.

    Internal (the ``method="pcg"`` of :func:`structlin.toeplitz.solve_toeplitz`): the arrays
    come in the prepared layout, already checked.

    Parameters
    ----------
    c : ndarray, shape (B, n)
        First columns of the ``B`` matrices.
    r : ndarray, shape (B, n)
        First rows (``r[:, 0]`` ignored).
    b : ndarray, shape (B, n, k)
        ``k`` right-hand sides per system. ``c``, ``r`` and ``b`` share one kernel dtype
        (float32, float64, complex64 or complex128) and are C-contiguous.
    preconditioner : {"chan", "strang", None}, default "chan"
        The circulant preconditioner (:func:`chan_preconditioner`,
        :func:`strang_preconditioner`) or none. A row whose preconditioner is singular (or,
        for ``hermitian=True``, not positive definite) uses T. Chan's instead, and no
        preconditioner if that one fails too.
    tol : float, optional
        The relative residual ``||b - T x||_2 / ||b||_2`` to reach in every column; default
        ``1e-12`` in double precision, ``1e-5`` in single.
    maxiter : int, optional
        The most iterations per column (each of CG is one product with ``T`` and one
        preconditioner solve; each of BiCGSTAB two of each), restarts included; default
        ``min(2 n + 20, 5000)``.
    hermitian : bool, default False
        Whether every ``T`` is Hermitian positive definite (the caller's promise): then
        preconditioned conjugate gradients, otherwise right-preconditioned BiCGSTAB.

    Returns
    -------
    x : ndarray, shape (B, n, k)
        The solutions, dtype of ``b``; NaN in the columns whose data hold NaN or infinity.
    converged : ndarray of bool, shape (B, k)
        Whether the column reached ``tol`` (its true residual, recomputed at the end).
    relres : ndarray, shape (B, k)
        The relative residual ``||b - T x||_2 / ||b||_2`` reached (0 for ``b = 0``), of the
        real dtype of ``b``. Non-convergence is reported here, never raised.

    Notes
    -----
    Every product with ``T`` is one real (or complex) FFT pair of a fast length ``L >= 2n - 1``
    on the vector padded with zeros, against the spectrum of the embedding circulant computed
    once; every preconditioner solve one FFT pair of length ``n`` against the inverted
    eigenvalues of the circulant: ``O(n log n)`` per iteration and column, ``O(n)`` memory
    per column. The ``B k`` columns run in lockstep as one ``(B, k, n)`` array, each with its
    own recurrence coefficients; a column stops when it converges, breaks down, meets NaN or
    spends its ``maxiter``, and its vectors stop changing, so no column's result depends on
    another's. When a column's recurrence residual reaches ``tol``, its true residual is
    recomputed and the iteration restarted from it (residual replacement, at most 8 restarts,
    each required to halve the residual). For ``T`` generated by a positive function of the
    Wiener class, both preconditioners cluster the spectrum of ``P^-1 T`` at 1 and CG
    converges superlinearly in a number of iterations independent of ``n`` (Chan & Ng 1996).

    References
    ----------
    .. [1] R. H. Chan, M. K. Ng, "Conjugate gradient methods for Toeplitz systems", SIAM
       Review 38 (1996) 427-482.
    .. [2] H. A. van der Vorst, "Bi-CGSTAB: a fast and smoothly converging variant of Bi-CG
       for the solution of nonsymmetric linear systems", SIAM J. Sci. Stat. Comput. 13
       (1992) 631-644.

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> from structlin.toeplitz_pcg import pcg_solve_toeplitz
    >>> c = 0.5 ** np.arange(6.0)[None]                       # Kac-Murdock-Szego, rho = 1/2
    >>> b = np.ones((1, 6, 1))
    >>> x, converged, relres = pcg_solve_toeplitz(c, c, b, hermitian=True)
    >>> bool(converged.all()), bool(np.allclose(scipy.linalg.toeplitz(c[0]) @ x[0], b[0]))
    (True, True)
    """
    from structlin._backend import array_namespace

    xp = array_namespace(c=c, r=r, b=b)
    if b.ndim != 3 or c.ndim != 2 or r.shape != c.shape or b.shape[:2] != c.shape:
        raise ValueError(
            f"c, r and b must have shapes (B, n), (B, n) and (B, n, k), got {tuple(c.shape)}, "
            f"{tuple(r.shape)} and {tuple(b.shape)}"
        )
    dt = np.dtype(b.dtype)
    if dt not in (np.float32, np.float64, np.complex64, np.complex128) or any(
        np.dtype(a.dtype) != dt for a in (c, r)
    ):
        raise TypeError(f"c, r and b must share one kernel dtype, got {c.dtype}, {r.dtype} "
                        f"and {b.dtype}")
    check_choice(preconditioner, "preconditioner", PRECONDITIONERS)
    single = real_dtype(dt) == np.float32
    tol = (1e-5 if single else 1e-12) if tol is None else check_float(
        tol, "tol", minimum=0.0, strict_minimum=True)
    B, n, k = b.shape
    maxiter = min(2 * n + 20, 5000) if maxiter is None else check_int(maxiter, "maxiter")
    if B * n * k == 0:
        return (xp.zeros(b.shape, dtype=dt), xp.ones((B, k), dtype=bool),
                xp.zeros((B, k), dtype=real_dtype(dt)))
    x, converged, relres, _ = _krylov(xp, c, r, b, preconditioner, tol, maxiter,
                                      bool(hermitian))
    return x, converged, relres
