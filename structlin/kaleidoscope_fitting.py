"""Fitting a K-matrix of a given width to a dense matrix by gradient descent (L-BFGS).

Reference: T. Dao, N. Sohoni, A. Gu, M. Eichhorn, A. Blonder, M. Leszczynski, A. Rudra, C. Ré,
"Kaleidoscope: An Efficient, Learnable Representation For All Structured Linear Maps",
ICLR 2020, arXiv:2012.14966.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from structlin._validate import check_float, check_int, check_rng, check_shape, prepare
from structlin.kaleidoscope import (
    MAX_WIDTH,
    kaleidoscope_multiply,
    kaleidoscope_multiply_vjp,
    kaleidoscope_to_dense,
    random_kaleidoscope,
)

__all__ = ["KaleidoscopeFit", "kaleidoscope_fit"]

#: the largest matrix fitted (the objective forms K and its gradient densely: O(n^2) memory)
MAX_FIT_SIZE = 1 << 12


class KaleidoscopeFit(NamedTuple):
    """Result of :func:`kaleidoscope_fit`.

    Parameters
    ----------
    twiddle : ndarray, shape (width, 2, L, n//2, 2, 2)
        The best fit found.
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
    with ``A^T`` and the gradient comes from one VJP at the identity."""

    def __init__(self, A: np.ndarray, shape: tuple[int, ...]):
        self.target = np.ascontiguousarray(A.T)
        self.norm2 = float(np.sum(A.real**2 + A.imag**2))
        self.eye = np.eye(A.shape[0], dtype=A.dtype)
        self.shape = shape
        self.complex = A.dtype.kind == "c"

    def unpack(self, theta: np.ndarray) -> np.ndarray:
        if self.complex:
            return theta.view(np.complex128).reshape(self.shape)
        return theta.reshape(self.shape)

    def pack(self, tw: np.ndarray) -> np.ndarray:
        dt = np.complex128 if self.complex else np.float64
        return np.ascontiguousarray(tw, dtype=dt).view(np.float64).ravel()

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        tw = self.unpack(np.ascontiguousarray(theta))
        res = kaleidoscope_multiply(tw, self.eye) - self.target
        f = float(np.sum(res.real**2 + res.imag**2)) / self.norm2
        # PyTorch's convention: the gradient of |res|^2 in (Re, Im) is 2 res, as a complex
        gtw, _ = kaleidoscope_multiply_vjp(tw, self.eye, res * (2.0 / self.norm2))
        return f, self.pack(gtw)


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
    rng: Any = None,
) -> KaleidoscopeFit:
    """Return the K-matrix of width ``width`` closest to ``A`` found by L-BFGS with restarts.

    Parameters
    ----------
    A : array_like, shape (n, n)
        The matrix to fit, real or complex; ``n`` a power of two (at most 4096).
    width : int
        The width ``w`` of the K-matrix (``w`` pairs ``B B^H``), ``1 <= w <= 65536``.
    restarts : int, default 4
        The number of random starts (at least 1); the fit stops early once one reaches
        ``tol``.
    maxiter : int, default 2000
        L-BFGS iterations per start.
    tol : float, default 1e-6
        The relative Frobenius error that counts as success (and stops the restarts).
    init : array_like, shape (w, 2, L, n//2, 2, 2), optional
        A twiddle to start the first run from (a warm start, e.g. a previous fit or
        :func:`structlin.kaleidoscope_permutation`); the other restarts are random.
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator
        Seed or generator of the random starts.

    Returns
    -------
    KaleidoscopeFit
        ``twiddle`` (shape ``(w, 2, L, n//2, 2, 2)``, float64 for real ``A``, complex128 for
        complex ``A``), ``error = ||K - A||_F / ||A||_F``, ``errors`` (one per start made),
        ``n_iter`` and ``success = error <= tol``.

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
    n^2 log2(n)`` real flops (four times that for complex ``A``). Each start is a random
    orthogonal K-matrix scaled to ``||A||_F``; the problem is non-convex, hence the restarts.
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
    if p.xp is not np:
        raise TypeError("A must be a NumPy array (the fit runs SciPy's L-BFGS on the host)")
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
    rng = check_rng(rng, "rng")
    complex_ = p.A.dtype.kind == "c"
    Ad = np.array(p.A, dtype=np.complex128 if complex_ else np.float64)
    if not np.all(np.isfinite(Ad)):
        raise ValueError("A must be finite (it has NaN or inf entries)")
    norm2 = float(np.sum(Ad.real**2 + Ad.imag**2))
    if norm2 == 0.0:
        raise ValueError("A must not be zero (the relative error is undefined)")
    L = n.bit_length() - 1
    obj = _Objective(Ad, (width, 2, L, n // 2, 2, 2))
    scale = np.sqrt(norm2 / n)
    best, best_err, errors, n_iter = None, np.inf, [], 0
    if p.init is not None:
        check_shape(p.init, obj.shape, "init", f"(width, 2, L, n//2, 2, 2) for n = {n}")
        if not np.all(np.isfinite(p.init)):
            raise ValueError("init must be finite (it has NaN or inf entries)")
        if not complex_ and p.init.dtype.kind == "c":
            raise TypeError("init must be real for a real A")
    for k in range(restarts):
        if k == 0 and p.init is not None:
            tw0 = p.init
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
