"""Fitting a K-matrix of a given width to a dense matrix by gradient descent (L-BFGS).

Reference: T. Dao, N. Sohoni, A. Gu, M. Eichhorn, A. Blonder, M. Leszczynski, A. Rudra, C. Ré,
"Kaleidoscope: An Efficient, Learnable Representation For All Structured Linear Maps",
ICLR 2020, arXiv:2012.14966.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from structlin._backend import is_cupy_array
from structlin._validate import (
    check_bool,
    check_float,
    check_int,
    check_rng,
    check_shape,
    prepare,
)
from structlin.kaleidoscope import (
    MAX_WIDTH,
    kaleidoscope_multiply,
    kaleidoscope_multiply_vjp,
    kaleidoscope_to_dense,
    random_kaleidoscope,
)
from structlin.kaleidoscope_constructors import kaleidoscope_identity
from structlin.kaleidoscope_routing import kaleidoscope_permutation

__all__ = ["KaleidoscopeFit", "kaleidoscope_fit"]

#: the largest matrix fitted (the objective forms K and its gradient densely: O(n^2) memory)
MAX_FIT_SIZE = 1 << 12


class KaleidoscopeFit(NamedTuple):
    """Result of :func:`kaleidoscope_fit`.

    Parameters
    ----------
    twiddle : ndarray, shape (width, 2, L, n//2, 2, 2)
        The best fit found (NumPy or CuPy, as the fitted matrix).
    error : float
        ``||K - A||_F / ||A||_F`` of ``twiddle``.
    errors : tuple of float
        The relative error reached by each restart, in order.
    n_iter : int
        L-BFGS iterations over all restarts.
    success : bool
        Whether ``error <= tol``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_fit, kaleidoscope_to_dense, random_kaleidoscope
    >>> A = kaleidoscope_to_dense(random_kaleidoscope(4, rng=0))
    >>> fit = kaleidoscope_fit(A, 1, rng=0)
    >>> bool(fit.error < 1e-6), fit.twiddle.shape
    (True, (1, 2, 2, 2, 2, 2))
    """

    #: shape (width, 2, L, n//2, 2, 2): the best fit found
    twiddle: np.ndarray
    #: ``||K - A||_F / ||A||_F`` of ``twiddle``
    error: float
    #: the relative error reached by each restart, in order
    errors: tuple[float, ...]
    #: L-BFGS iterations over all restarts
    n_iter: int
    #: whether ``error <= tol``
    success: bool

    def to_dense(self) -> np.ndarray:
        """Return the fitted matrix ``K`` (dense, ``O(w n^3)``)."""
        return kaleidoscope_to_dense(self.twiddle)


class _Objective:
    """``f = ||K - A||_F^2 / ||A||_F^2`` and its gradient in the packed real parameters.

    ``kaleidoscope_multiply(tw, I)`` is ``K^T`` (row ``i`` is ``K e_i``), so it is compared
    with ``A^T`` and the gradient comes from one VJP at the identity. The products run where
    ``A`` lives (NumPy or CuPy); the packed parameters, ``f`` and the gradient live on the
    host, where SciPy's L-BFGS-B runs."""

    def __init__(self, xp, A, norm2: float, shape: tuple[int, ...]):
        self.xp = xp
        self.target = xp.ascontiguousarray(A.T)
        self.norm2 = norm2
        self.eye = xp.eye(A.shape[0], dtype=A.dtype)
        self.shape = shape
        self.complex = A.dtype.kind == "c"

    def unpack(self, theta: np.ndarray) -> Any:
        theta = np.ascontiguousarray(theta)
        tw = theta.view(np.complex128) if self.complex else theta
        return self.xp.asarray(tw.reshape(self.shape))

    def pack(self, tw: Any) -> np.ndarray:
        dt = np.complex128 if self.complex else np.float64
        if self.xp is not np:
            tw = self.xp.asnumpy(tw)
        return np.ascontiguousarray(tw, dtype=dt).view(np.float64).ravel()

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        xp = self.xp
        tw = self.unpack(theta)
        res = kaleidoscope_multiply(tw, self.eye) - self.target
        f = float(xp.sum(res.real**2 + res.imag**2)) / self.norm2
        # PyTorch's convention: the gradient of |res|^2 in (Re, Im) is 2 res, as a complex
        gtw, _ = kaleidoscope_multiply_vjp(tw, self.eye, res * (2.0 / self.norm2))
        return f, self.pack(gtw)


def _permutation_start(A: np.ndarray, norm2: float, width: int) -> np.ndarray | None:
    """The twiddle of ``D P`` closest to ``A``, or None when ``D P`` explains less than half
    of ``||A||_F^2``.

    ``P x = x[perm]`` with ``perm`` the assignment maximising ``sum_i |A[i, perm[i]]|^2``
    (``scipy.optimize.linear_sum_assignment``, ``O(n^3)``; skipped when even the row
    maxima cannot pass the threshold) and ``D = diag(A[i, perm[i]])``, so that the start's
    error is ``sqrt(1 - sum_i |d_i|^2 / ||A||_F^2)``. ``P`` is routed by
    :func:`kaleidoscope_permutation` (width 1, exact) and ``D`` folded into the rows of its
    last applied factor (the stride-``n/2`` factor of ``tw[0, 0]``, block ``j`` producing
    outputs ``j`` and ``j + n/2``); the other units are identities."""
    from scipy.optimize import linear_sum_assignment

    n = A.shape[0]
    if n < 2:
        return None
    w2 = A.real**2 + A.imag**2
    if float(w2.max(axis=1).sum()) < 0.5 * norm2:
        return None
    rows, perm = linear_sum_assignment(w2, maximize=True)
    d = A[rows, perm]
    if float(np.sum(d.real**2 + d.imag**2)) < 0.5 * norm2:
        return None
    tw = np.repeat(kaleidoscope_permutation(perm, dtype=A.dtype), width, axis=0)
    tw[1:] = kaleidoscope_identity(n, dtype=A.dtype)[0]
    L = tw.shape[2]
    tw[0, 0, L - 1, :, 0, :] *= d[: n // 2, None]
    tw[0, 0, L - 1, :, 1, :] *= d[n // 2 :, None]
    return tw


def _initial_twiddle(n, width, complex_, scale, rng):
    """Random orthogonal (unitary) butterflies, each factor scaled so that ``||K||_F`` is
    ``scale sqrt(n)``: a well-conditioned start whose gradients neither vanish nor explode
    through the ``2 width log2(n)`` factors."""
    dtype = np.complex128 if complex_ else np.float64
    tw = random_kaleidoscope(n, width, kind="orthogonal", dtype=dtype, rng=rng)
    L = tw.shape[2]
    if L:
        tw *= scale ** (1.0 / (2 * width * L))
    return tw


def kaleidoscope_fit(
    A: Any,
    width: int,
    *,
    restarts: int = 4,
    maxiter: int = 2000,
    tol: float = 1e-6,
    init: Any = None,
    permutation_start: bool = True,
    rng: Any = None,
) -> KaleidoscopeFit:
    """Return the K-matrix of width ``width`` closest to ``A`` found by L-BFGS (several starts).

    Parameters
    ----------
    A : array_like, shape (n, n)
        The matrix to fit, real or complex; ``n`` a power of two (at most 4096). A CuPy
        array runs the products on the GPU (L-BFGS itself runs on the host).
    width : int
        The width ``w`` of the K-matrix (``w`` pairs ``B B^H``), ``1 <= w <= 65536``.
    restarts : int, default 4
        The number of starts in all (at least 1): ``init`` if given, then the permutation
        start if it applies, then random ones. The fit stops early once one reaches ``tol``.
    maxiter : int, default 2000
        L-BFGS iterations per start.
    tol : float, default 1e-6
        The relative Frobenius error that counts as success (and stops the restarts).
    init : array_like, shape (w, 2, L, n//2, 2, 2), optional
        A twiddle to start the first run from (a warm start, e.g. a previous fit or
        :func:`structlin.kaleidoscope_permutation`), tried first.
    permutation_start : bool, default True
        Whether to start from the closest scaled permutation ``D P`` when it accounts for
        at least half of ``||A||_F^2`` (see Notes).
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator
        Seed or generator of the random starts.

    Returns
    -------
    KaleidoscopeFit
        ``twiddle`` (shape ``(w, 2, L, n//2, 2, 2)``, float64 for real ``A``, complex128 for
        complex ``A``, a NumPy or CuPy array as ``A``), ``error = ||K - A||_F / ||A||_F``,
        ``errors`` (one per start made), ``n_iter`` and ``success = error <= tol``.

    Raises
    ------
    ValueError
        If ``A`` is not square, ``n`` not a power of two or too large, ``A`` is zero or not
        finite, or an integer argument is out of range.
    TypeError
        If ``A`` is not numeric or a size is not an integer.

    See Also
    --------
    structlin.kaleidoscope_multiply_vjp : the gradient used.
    structlin.kaleidoscope_permutation : the exact width-1 twiddle of a permutation.
    structlin.kaleidoscope_dft : the exact twiddle of the DFT.
    structlin.butterfly_fit : the same for a butterfly with a learned permutation.

    Notes
    -----
    Minimises ``||K - A||_F^2 / ||A||_F^2`` over the twiddle (complex twiddles as pairs of
    real parameters) with SciPy's L-BFGS-B. Each evaluation forms ``K^T =
    kaleidoscope_multiply(tw, I)`` and its gradient with one VJP at the identity: ``24 w
    n^2 log2(n)`` real flops (four times that for complex ``A``). The problem is non-convex,
    hence several starts. The random ones are orthogonal K-matrices scaled to ``||A||_F``.

    Gradient descent from random starts gets stuck on permutations: at width 1 it finds a
    random permutation of ``n = 8`` about half the time and none of ``n = 16`` (errors about
    0.25-0.5: a few entries routed wrong, a local minimum; Levenberg-Marquardt does no
    better). Hence the *permutation start*: the assignment ``perm`` maximising ``sum_i
    |A[i, perm[i]]|^2`` (``scipy.optimize.linear_sum_assignment``, ``O(n^3)``), its
    Beneš routing (:func:`structlin.kaleidoscope_permutation`) and ``d_i = A[i, perm[i]]``
    folded into its last factor give ``D P`` exactly, at width 1; L-BFGS refines it from
    there (a noisy or partly permuted ``A``). It is used when ``D P`` accounts for at least
    half of ``||A||_F^2``; so a permutation, a signed or scaled one, is fitted exactly at the
    width the theory gives, by construction rather than by descent.
    Every ``n x n`` matrix is a K-matrix of width ``n`` at most, every matrix with an
    arithmetic circuit of ``s`` gates one of width ``O(s/n)``, and every permutation one of
    width 1 (Dao et al. 2020, arXiv:2012.14966); gradient descent need not find these
    representations (see the tutorial for the widths it reaches in practice).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_fit
    >>> A = np.fft.fft(np.eye(4))
    >>> fit = kaleidoscope_fit(A, 1, rng=0)
    >>> bool(fit.success), fit.twiddle.dtype
    (True, dtype('complex128'))
    >>> bool(np.allclose(fit.to_dense(), A, atol=1e-5))
    True
    """
    from scipy.optimize import minimize

    p = prepare(A=A, init=init, optional=("init",))
    xp = p.xp
    if p.A.ndim != 2 or p.A.shape[0] != p.A.shape[1]:
        raise ValueError(f"A must be a square matrix (n, n), got shape {p.A.shape}")
    n = int(p.A.shape[0])
    n = check_int(n, "A", minimum=1, maximum=MAX_FIT_SIZE)
    if n & (n - 1):
        raise ValueError(f"A must have a size n that is a power of two, got n = {n}")
    width = check_int(width, "width", minimum=1, maximum=MAX_WIDTH)
    restarts = check_int(restarts, "restarts", minimum=1, maximum=10_000)
    maxiter = check_int(maxiter, "maxiter", minimum=0, maximum=10**7)
    tol = check_float(tol, "tol", minimum=0.0)
    permutation_start = check_bool(permutation_start, "permutation_start")
    rng = check_rng(rng, "rng")
    complex_ = p.A.dtype.kind == "c"
    Ad = xp.asarray(p.A, dtype=np.complex128 if complex_ else np.float64)
    if not bool(xp.all(xp.isfinite(Ad))):
        raise ValueError("A must be finite (it has NaN or inf entries)")
    norm2 = float(xp.sum(Ad.real**2 + Ad.imag**2))
    if norm2 == 0.0:
        raise ValueError("A must not be zero (the relative error is undefined)")
    L = n.bit_length() - 1
    obj = _Objective(xp, Ad, norm2, (width, 2, L, n // 2, 2, 2))
    scale = np.sqrt(norm2 / n)
    starts = []  # the structured starts, before the random ones
    if p.init is not None:
        check_shape(p.init, obj.shape, "init", f"(width, 2, L, n//2, 2, 2) for n = {n}")
        if not bool(xp.all(xp.isfinite(p.init))):
            raise ValueError("init must be finite (it has NaN or inf entries)")
        if not complex_ and p.init.dtype.kind == "c":
            raise TypeError("init must be real for a real A")
        starts.append(p.init)
    if permutation_start:
        tw = _permutation_start(xp.asnumpy(Ad) if is_cupy_array(Ad) else Ad, norm2, width)
        if tw is not None:
            starts.append(tw)
    best, best_err, errors, n_iter = None, np.inf, [], 0
    for k in range(restarts):
        if k < len(starts):
            tw0 = starts[k]
        else:
            tw0 = _initial_twiddle(n, width, complex_, scale, rng)
        theta0 = obj.pack(tw0)
        res = minimize(obj, theta0, jac=True, method="L-BFGS-B",
                       options={"maxiter": maxiter, "maxcor": 30, "ftol": 1e-16,
                                "gtol": 1e-14})
        err = float(np.sqrt(max(obj(res.x)[0], 0.0)))
        errors.append(err)
        n_iter += int(res.nit)
        if err < best_err:
            best, best_err = obj.unpack(res.x).copy(), err
        if best_err <= tol:
            break
    return KaleidoscopeFit(best, best_err, tuple(errors), n_iter, bool(best_err <= tol))
