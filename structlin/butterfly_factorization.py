"""Butterfly factorization of dense matrices: the exact hierarchical algorithm and a fit.

- :func:`butterfly_factorize` finds the butterfly closest to a dense ``n x n`` matrix with the
  hierarchical rank-one algorithm (exact when the matrix is a butterfly, ``O(n^2)`` work).
- :func:`butterfly_fit` fits a product of butterflies and a permutation by L-BFGS, using the
  VJP of the butterfly product, for matrices that one butterfly cannot represent.

Both use the twiddle convention of :mod:`structlin.butterfly`: a butterfly of size
``n = 2**L`` is ``twiddle`` of shape ``(L, n//2, 2, 2)``; factor ``k`` (stride ``s = 2**k``)
maps the pair ``(x[i], x[i+s])``, ``i = a*2s + c``, by the block ``twiddle[k, a*s + c]``;
``increasing_stride=True`` means ``B = F_{L-1} ... F_0``.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np

from structlin._backend import as_kernel_array, kernels
from structlin._validate import (
    check_bool,
    check_choice,
    check_finite,
    check_int,
    check_power_of_two,
    check_rng,
    prepare,
)
from structlin.butterfly import (
    butterfly_multiply,
    butterfly_multiply_vjp,
    random_butterfly,
)

__all__ = [
    "ButterflyFactorization",
    "ButterflyFit",
    "butterfly_factorize",
    "butterfly_fit",
]

#: the kernel module of both algorithms (``structlin._cpu`` / ``structlin.gpu``)
_KERNELS = "butterfly_factorization"


class ButterflyFactorization(NamedTuple):
    """Result of :func:`butterfly_factorize`: ``(twiddle, relative_error)``.

    Parameters
    ----------
    twiddle : ndarray, shape (L, n//2, 2, 2)
        The factors, in the convention of :func:`~structlin.butterfly_multiply`.
    relative_error : float
        ``||A - B||_F / ||A||_F`` (0 when ``A`` is zero).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_factorize
    >>> result = butterfly_factorize(np.eye(4))
    >>> result.twiddle.shape, result.relative_error
    ((2, 2, 2, 2), 0.0)
    >>> twiddle, err = result   # a tuple
    """

    #: shape (L, n//2, 2, 2), the factors in the convention of :func:`butterfly_multiply`
    twiddle: Any
    #: ``||A - B||_F / ||A||_F`` (0 when ``A`` is zero)
    relative_error: float


def _check_matrix(A: Any, name: str = "A") -> int:
    """Validate a square power-of-two matrix; return L = log2(n)."""
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(
            f"{name} must be a square matrix of shape (n, n) with n a power of two, "
            f"got shape {tuple(A.shape)}"
        )
    L = check_power_of_two(A.shape[0], name, "number of rows and columns n")
    check_finite(A, name)
    return L


def _peel_level_xp(xp, M, tw_k):
    """Array-API reference of the ``peel_level`` kernels (Numba and CUDA), any namespace.

    See :mod:`structlin._cpu.butterfly_factorization` for the contract.
    """
    C, N, _ = M.shape
    H = N // 2
    X = M.reshape(C, H, 2, H, 2)  # (c, row r, row parity b, column pair a, column d)
    x0 = X[..., 0]
    x1 = X[..., 1]
    p = xp.sum(x0.real**2 + x0.imag**2, axis=1)  # (c, b, a)
    r = xp.sum(x1.real**2 + x1.imag**2, axis=1)
    q = xp.sum(xp.conj(x0) * x1, axis=1)
    half = 0.5 * (p - r)
    rad = xp.sqrt(half * half + q.real**2 + q.imag**2)
    use_first = p >= r
    v0 = xp.where(use_first, half + rad, q)
    v1 = xp.where(use_first, xp.conj(q), rad - half)
    nrm = xp.sqrt(v0.real**2 + v0.imag**2 + v1.real**2 + v1.imag**2)
    ok = nrm > 0
    safe = xp.where(ok, nrm, 1)
    v0 = xp.where(ok, v0 / safe, 1).astype(M.dtype)
    v1 = xp.where(ok, v1 / safe, 0).astype(M.dtype)
    tw_k[..., 0] = xp.conj(v0).transpose(2, 0, 1)
    tw_k[..., 1] = xp.conj(v1).transpose(2, 0, 1)
    u = x0 * v0[:, None] + x1 * v1[:, None]  # (c, r, b, a)
    d0 = x0 - u * xp.conj(v0[:, None])
    d1 = x1 - u * xp.conj(v1[:, None])
    # a 0-d array, not a float: no device-to-host copy until the caller needs the error
    residual2 = xp.sum(d0.real**2 + d0.imag**2) + xp.sum(d1.real**2 + d1.imag**2)
    norm2 = xp.sum(p) + xp.sum(r)
    out = xp.ascontiguousarray(u.transpose(2, 0, 1, 3)).reshape(2 * C, H, H)
    return out, residual2, norm2


def _reference_factorize_svd(A: np.ndarray) -> np.ndarray:
    """Plain-NumPy reference: the same hierarchy with ``numpy.linalg.svd`` on every block.

    Returns the twiddle (increasing strides). Used by the tests and as the benchmark's
    baseline (what a user transcribing Zheng et al.'s algorithm would write).
    """
    n = A.shape[0]
    L = n.bit_length() - 1
    tw = np.empty((L, n // 2, 2, 2), A.dtype)
    M = A.reshape(1, n, n)
    for k in range(L):
        C, H = 1 << k, M.shape[1] // 2
        X = M.reshape(C, H, 2, H, 2).transpose(0, 2, 3, 1, 4)  # (c, b, a, r, d)
        U, S, Vh = np.linalg.svd(X, full_matrices=False)
        tw[k].reshape(H, C, 2, 2)[:] = Vh[..., 0, :].transpose(2, 0, 1, 3)
        u = U[..., 0] * S[..., :1]  # (c, b, a, r)
        M = np.ascontiguousarray(u.transpose(1, 0, 3, 2)).reshape(2 * C, H, H)
    if L:
        tw[L - 1] *= M.reshape(2, n // 2).T[:, :, None]
    return tw


def butterfly_factorize(A: Any, *, increasing_stride: bool = True) -> ButterflyFactorization:
    """Return the butterfly approximation of a dense matrix and its relative error.

    Parameters
    ----------
    A : array_like, shape (n, n)
        A square matrix, ``n`` a power of two, finite. NumPy (Numba kernels) or CuPy (CUDA
        kernel).
    increasing_stride : bool, default True
        The factor order of the result: True for ``B = F_{L-1} ... F_0`` (factor 0 applied
        first), False for ``B = F_0 ... F_{L-1}``.

    Returns
    -------
    ButterflyFactorization
        A named tuple ``(twiddle, relative_error)``. ``twiddle``, shape ``(log2(n), n//2, 2,
        2)``, has ``A``'s dtype promoted to floating point (real for real ``A``, complex for
        complex ``A``) and ``A``'s array type; ``relative_error`` is the float
        ``||A - B||_F / ||A||_F`` (0 for a zero ``A``).

    Raises
    ------
    ValueError
        If ``A`` is not square, its size is not a power of two, or it holds NaN or infinity.
    TypeError
        If ``A``'s dtype is not numeric.

    See Also
    --------
    butterfly_fit : gradient-based fit of products of butterflies and a permutation.
    structlin.butterfly_multiply : apply the result.

    Notes
    -----
    For ``B = F_{L-1} ... F_0`` the entry ``B[i', i]`` is a product of one entry of each
    factor along the unique path that changes the bits of ``i`` into those of ``i'`` from bit
    0 upwards. Splitting ``B = (F_{L-1} ... F_1) F_0``, the entries of ``A`` in the rows of
    parity ``b`` and the columns ``2a, 2a + 1`` only involve column ``2a + b`` of the left
    group and row ``b`` of block ``a`` of ``F_0``: the two-factor problem with these fixed
    supports decouples into ``n`` independent rank-one problems on disjoint ``(n/2) x 2``
    submatrices of ``A``, each solved optimally by its top singular pair (the top
    eigenvector of a 2x2 Gram matrix, in closed form). The left group is then ``2``
    independent butterflies of size ``n/2``, factorized in the same way, and so on: each
    level touches half the entries of the previous one, so the total work is ``O(n^2)``
    (about ``17 n^2`` real flops, ``4 n^2`` entries read and ``n^2`` written) and the extra
    memory ``n^2 / 2`` entries (plus the copy of ``A`` when it needs a dtype or layout
    change). This is the hierarchical algorithm of Le Magoarou and Gribonval (IEEE JSTSP
    2016, arXiv:1506.07300) with the fixed butterfly supports, split one factor at a time
    from the right (the "unbalanced" tree); it is exact when ``A`` is a butterfly (Zheng,
    Riccietti and Gribonval, "Efficient identification of butterfly sparse matrix
    factorizations", SIAM J. Math. Data Sci. 2023, arXiv:2110.01230). The first split is
    optimal, so its residual is at most the best butterfly error; for bounds of the total
    error by a constant times the best, see Le, Zheng, Riccietti and Gribonval, "Butterfly
    factorization with error guarantees", arXiv:2411.04506 (no such constant is claimed
    for this implementation beyond what the tests check: exactness, optimality at
    ``n = 4``, an error close to the noise level for a noisy butterfly). Scalings are not
    unique: a block row may be scaled by ``c`` and the matching column of the next factor
    by ``1/c``.

    ``increasing_stride=False`` factorizes ``A^T`` and transposes the blocks. The relative
    error costs nothing extra and never forms ``B``: since every right singular vector
    ``v`` is a unit vector, the residual ``X - u v^H`` of a rank-one problem is orthogonal
    to the error ``(u - u~) v^H`` made later when ``u`` is approximated by ``u~``, so
    ``||A - B||_F^2`` is the sum of the rank-one residuals of all levels (each summed entry
    by entry, so that an exact butterfly gives an error at rounding level, not
    ``sqrt(eps)``). For ``n = 1`` the butterfly is the empty product, the ``1 x 1``
    identity.

    On the CPU each level is one parallel Numba kernel that streams the rows of the current
    stack twice (Gram matrices, then the left factor and the residual). On the GPU each level
    is one CUDA kernel with a thread per rank-one problem (coalesced reads of the row
    segments), and the error stays on the device until it is returned.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_factorize, butterfly_to_dense, random_butterfly
    >>> A = butterfly_to_dense(random_butterfly(64, rng=0))
    >>> twiddle, err = butterfly_factorize(A)
    >>> twiddle.shape
    (6, 32, 2, 2)
    >>> bool(err < 1e-12) and bool(np.allclose(butterfly_to_dense(twiddle), A))
    True

    The DFT matrix with bit-reversed columns is a butterfly (the radix-2 FFT):

    >>> from structlin import bit_reversal_permutation
    >>> n = 256
    >>> F = np.fft.fft(np.eye(n))[:, bit_reversal_permutation(n)]
    >>> twiddle, err = butterfly_factorize(F)
    >>> bool(err < 1e-14)
    True
    """
    p = prepare(A=A)
    xp, dtype = p.xp, p.dtype
    L = _check_matrix(p.A)
    n = p.A.shape[0]
    increasing = check_bool(increasing_stride, "increasing_stride")
    Ak = as_kernel_array(xp, p.A, dtype)
    target = Ak if increasing else xp.ascontiguousarray(Ak.T)
    tw = xp.empty((L, n // 2, 2, 2), dtype=dtype)
    kern = kernels(xp, _KERNELS)
    M = target.reshape(1, n, n)
    residual2 = 0.0
    for k in range(L):
        C = 1 << k
        M, r2, m2 = kern.peel_level(M, tw[k].reshape(n // (2 * C), C, 2, 2))
        residual2 = residual2 + r2
        if k == 0:
            norm2 = m2
    if L == 0:  # the empty product is the 1 x 1 identity
        residual2 = abs(Ak[0, 0] - 1) ** 2
        norm2 = abs(Ak[0, 0]) ** 2
    residual2, norm2 = float(residual2), float(norm2)
    if L:
        # what remains is the diagonal scaling of the outputs of the last factor:
        # output b*n/2 + c of factor L-1 comes from row b of its block c
        tw[L - 1] *= M.reshape(2, n // 2).T[:, :, None]
    if not increasing:
        tw = xp.ascontiguousarray(xp.swapaxes(tw, -1, -2))
    err = np.sqrt(residual2 / norm2) if norm2 > 0 else np.sqrt(residual2)
    return ButterflyFactorization(tw, float(err))


# ---- gradient-based fit ------------------------------------------------------------------

#: :func:`butterfly_fit` takes at most this many butterflies per level, ``K <= 4 log2(n)``:
#: the fast transforms that products of butterflies represent need ``O(log n)`` of them (the
#: ``(B B^*)^{O(d)}`` hierarchy of a depth-``d`` circuit, Dao et al. 2020), while every
#: evaluation of the loss costs ``K`` products of ``n`` vectors and the random start builds
#: the ``K`` butterflies one by one, so a larger ``K`` is a mistake rather than a model
MAX_PRODUCTS_PER_LEVEL = 4
#: the most L-BFGS iterations one phase of :func:`butterfly_fit` may take (scipy's default
#: for ``L-BFGS-B`` is 15000); every iteration costs at least one evaluation of the loss
MAX_ITERATIONS = 1_000_000


class ButterflyFit(NamedTuple):
    """Result of :func:`butterfly_fit`.

    The fitted matrix is ``M = B_{K-1} ... B_1 B_0 P``: ``P x = x[..., permutation]`` is
    applied first, then the butterflies ``B_t = twiddles[t]`` in order, ``B_t`` with
    ``increasing_stride=increasing_strides[t]``.

    Parameters
    ----------
    twiddles : ndarray, shape (K, L, n//2, 2, 2)
        The butterflies ``B_0, ..., B_{K-1}``.
    increasing_strides : tuple of bool
        The stride order of each (True for the even-numbered ones: ``B B^*`` alternation).
    permutation : ndarray of int64, shape (n,)
        The input permutation ``P``.
    relative_error : float
        ``||A - M||_F / ||A||_F``.
    iterations : int
        L-BFGS iterations over all phases.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import hadamard
    >>> from structlin import butterfly_fit
    >>> fit = butterfly_fit(hadamard(4), permutation=None, rng=0)
    >>> fit.increasing_strides, fit.permutation
    ((True,), array([0, 1, 2, 3]))
    >>> bool(np.allclose(fit.to_dense(), hadamard(4), atol=1e-4))
    True
    """

    #: shape (K, L, n//2, 2, 2)
    twiddles: np.ndarray
    #: K booleans, True for the even-numbered butterflies (BB* alternation)
    increasing_strides: tuple[bool, ...]
    #: shape (n,), int64: the input permutation
    permutation: np.ndarray
    #: ``||A - M||_F / ||A||_F``
    relative_error: float
    #: L-BFGS iterations over all phases
    iterations: int

    def multiply(self, x: Any) -> np.ndarray:
        """Return ``M x`` over the last axis of ``x`` (fast butterfly products)."""
        y = np.asarray(x)[..., self.permutation]
        for tw, inc in zip(self.twiddles, self.increasing_strides, strict=True):
            y = butterfly_multiply(tw, y, increasing_stride=inc)
        return y

    def to_dense(self) -> np.ndarray:
        """Return the dense ``(n, n)`` matrix ``M`` (a reference, ``O(n^2 log n)``)."""
        n = self.permutation.shape[0]
        return self.multiply(np.eye(n, dtype=self.twiddles.dtype)).T.copy()


def _permutation_ops(n: int) -> list[np.ndarray]:
    """Index arrays of the relaxed permutation's candidate moves, in the order applied.

    For each block size ``m = n, n/2, ..., 4`` (Dao et al. 2019, Section 3.2): separate the
    even and the odd entries of every block of ``m``, then reverse the first half, then the
    second half of every block. The separations at all sizes compose to the bit reversal.
    """
    ops = []
    m = n
    while m >= 4:
        base = np.arange(0, n, m)[:, None]
        h = m // 2
        sep = np.concatenate([np.arange(0, m, 2), np.arange(1, m, 2)])
        rev1 = np.concatenate([np.arange(h)[::-1], np.arange(h, m)])
        rev2 = np.concatenate([np.arange(h), np.arange(h, m)[::-1]])
        for blk in (sep, rev1, rev2):
            ops.append((base + blk).ravel())
        m //= 2
    return ops


def _permutation_from(ops, choice, n):
    perm = np.arange(n)
    for idx, on in zip(ops, choice, strict=True):
        if on:
            perm = perm[idx]
    return perm


def _harden_permutation(A, ops, choice):
    """Round the relaxed permutation, scoring hard choices with the exact factorization.

    The score of a hard choice is the error of :func:`butterfly_factorize` on ``A[:, perm]``
    (``O(n^2)``, so thousands of scores cost about as much as a few L-BFGS iterations).
    Two starts: the rounded relaxation, and a greedy pass over the block sizes from ``n``
    down that fixes the three moves of each size by trying every choice for it and the next
    size (a look-ahead of two sizes: the bit reversal only pays once its last separations are
    in place). From each start, single moves are flipped while that lowers the score; the
    better result is kept.
    """
    n = A.shape[0]
    n_ops = len(ops)

    def score(ch):
        return butterfly_factorize(A[:, _permutation_from(ops, ch, n)]).relative_error

    greedy = np.zeros(n_ops, bool)
    for s0 in range(0, n_ops, 3):
        width = min(6, n_ops - s0)
        best, best_score = None, np.inf
        for code in range(1 << width):
            trial = greedy.copy()
            trial[s0 : s0 + width] = [(code >> i) & 1 for i in range(width)]
            sc = score(trial)
            if sc < best_score * (1 - 1e-9):
                best, best_score = trial, sc
        greedy[s0 : s0 + 3] = best[s0 : s0 + 3]

    best_choice, best = None, np.inf
    for start in (np.array(choice, bool), greedy):
        cur, cur_score = start.copy(), score(start)
        for _ in range(2):
            improved = False
            for i in range(n_ops):
                trial = cur.copy()
                trial[i] = not trial[i]
                sc = score(trial)
                if sc < cur_score * (1 - 1e-9):
                    cur, cur_score, improved = trial, sc, True
            if not improved:
                break
        if cur_score < best:
            best_choice, best = cur, cur_score
    return best_choice


def _frobenius(a) -> float:
    # not numpy.linalg.norm: its BLAS dot starts a thread pool per call
    return float(np.sqrt(np.sum(a.real**2) + np.sum(a.imag**2)))


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class _Objective:
    """``f = ||M - A||_F^2 / ||A||_F^2`` and its gradient in the packed real parameters."""

    def __init__(self, target_rows, K, L, complex_, ops, learn_logits, logits_fixed):
        self.target = target_rows  # A^T: row i is the column A e_i
        self.norm2 = float(np.sum(target_rows.real**2 + target_rows.imag**2))
        self.n = target_rows.shape[0]
        self.K, self.L = K, L
        self.complex = complex_
        self.ops = [np.ascontiguousarray(idx, dtype=np.int64) for idx in ops]
        self.inv_ops = [np.argsort(idx) for idx in self.ops]
        self.learn_logits = learn_logits
        self.logits_fixed = logits_fixed
        self.tw_shape = (K, L, self.n // 2, 2, 2)
        self.n_tw = int(np.prod(self.tw_shape)) * (2 if complex_ else 1)

    def unpack(self, theta):
        flat = theta[: self.n_tw]
        if self.complex:
            tws = flat.view(np.complex128).reshape(self.tw_shape)
        else:
            tws = flat.reshape(self.tw_shape)
        logits = theta[self.n_tw :] if self.learn_logits else self.logits_fixed
        return tws, logits

    def pack(self, tws, logits):
        flat = np.ascontiguousarray(tws, dtype=np.complex128 if self.complex else np.float64)
        parts = [flat.view(np.float64).ravel()]
        if self.learn_logits:
            parts.append(np.asarray(logits, np.float64))
        return np.concatenate(parts)

    def __call__(self, theta):
        kern = kernels(np, _KERNELS)

        tws, logits = self.unpack(np.ascontiguousarray(theta))
        z = np.eye(self.n, dtype=self.target.dtype)
        ws = _sigmoid(logits) if len(self.ops) else np.zeros(0)
        perm_inputs = []
        for idx, w in zip(self.ops, ws, strict=True):
            perm_inputs.append(z)
            z = kern.mix_forward(z, idx, float(w))
        bf_inputs = []
        for t in range(self.K):
            bf_inputs.append(z)
            z = butterfly_multiply(tws[t], z, increasing_stride=(t % 2 == 0))
        res, r2 = kern.residual(np.ascontiguousarray(z, dtype=self.target.dtype), self.target)
        f = r2 / self.norm2
        g = res * (2.0 / self.norm2)
        gtws = np.empty_like(tws)
        for t in range(self.K - 1, -1, -1):
            gtws[t], g = butterfly_multiply_vjp(
                tws[t], bf_inputs[t], g, increasing_stride=(t % 2 == 0)
            )
        if not self.learn_logits:
            return f, self.pack(gtws, logits)
        glog = np.zeros(len(self.ops))
        g = np.ascontiguousarray(g, dtype=self.target.dtype)
        for i in range(len(self.ops) - 1, -1, -1):
            w = float(ws[i])
            g, dw = kern.mix_backward(g, perm_inputs[i], self.ops[i], self.inv_ops[i], w)
            glog[i] = dw * w * (1.0 - w)
        return f, self.pack(gtws, glog)


def _minimize(obj, theta0, maxiter):
    from scipy.optimize import minimize

    res = minimize(obj, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": int(maxiter), "maxcor": 20, "ftol": 1e-15,
                            "gtol": 1e-12})
    return res.x, int(res.nit), float(res.fun)


def butterfly_fit(
    A: Any,
    *,
    n_factors_products: int = 1,
    permutation: Literal["learn"] | None = "learn",
    maxiter: int = 500,
    refit_maxiter: int = 200,
    init: Literal["random", "factorize"] = "random",
    rng: Any = None,
) -> ButterflyFit:
    """Return a product of butterflies and a permutation fitted to ``A`` by L-BFGS.

    Parameters
    ----------
    A : array_like, shape (n, n)
        A square NumPy matrix, ``n >= 2`` a power of two, finite.
    n_factors_products : int, default 1
        ``K``, the number of butterflies in the product ``M = B_{K-1} ... B_0 P``, from 1 to
        ``4 log2(n)`` (products of ``O(log n)`` butterflies already represent the fast
        transforms of the Kaleidoscope hierarchy, and each one adds a product of ``n``
        vectors to every evaluation of the loss). They alternate stride orders like
        Kaleidoscope's ``B B^*``: ``B_0`` has increasing strides, ``B_1`` decreasing, ...
    permutation : {"learn", None}, default "learn"
        ``"learn"``: also learn the input permutation ``P`` (relaxed, then rounded and the
        butterflies re-fitted). None: ``P`` is the identity.
    maxiter : int, default 500
        L-BFGS iterations of the main fit, from 0 to ``10**6``.
    refit_maxiter : int, default 200
        L-BFGS iterations of the re-fit after the permutation is rounded (with
        ``permutation="learn"`` only), from 0 to ``10**6``.
    init : {"random", "factorize"}, default "random"
        ``"random"``: random orthogonal (unitary) butterflies, relaxed permutation weights
        near 1/2. ``"factorize"``: ``B_0`` from :func:`butterfly_factorize` (so that the fit
        starts from the hierarchical solution), the other butterflies the identity and the
        relaxed permutation near the identity.
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator
        Seed or generator of the random initialisation.

    Returns
    -------
    ButterflyFit
        A named tuple ``(twiddles, increasing_strides, permutation, relative_error,
        iterations)``: ``twiddles`` of shape ``(K, log2(n), n//2, 2, 2)`` with ``A``'s dtype
        promoted to floating point, the stride order of each butterfly, ``permutation`` of
        shape ``(n,)`` with ``P x = x[..., permutation]``, the relative Frobenius error
        ``||A - M||_F / ||A||_F`` and the number of L-BFGS iterations. Its methods
        ``multiply(x)`` and ``to_dense()`` apply ``M``.

    Raises
    ------
    ValueError
        If ``A`` is not square, its size is not a power of two or is 1, it holds NaN or
        infinity, or ``A`` is zero; if ``n_factors_products``, ``maxiter`` or
        ``refit_maxiter`` is outside its range; if ``permutation`` or ``init`` is not one of
        the accepted values.
    TypeError
        If ``A`` is a CuPy array (the fit runs on the CPU: scipy.optimize drives it), or
        its dtype is not numeric; if an integer argument is not an integer (bool, float,
        str, None) or ``rng`` is not a seed or a generator.

    See Also
    --------
    butterfly_factorize : the exact hierarchical algorithm for a single butterfly.

    Notes
    -----
    Dao, Gu, Eichhorn, Rudra and Ré, "Learning Fast Algorithms for Linear Transforms Using
    Butterfly Factorizations", ICML 2019, arXiv:1903.05895; Kaleidoscope products
    ``B B^*``: Dao et al., ICLR 2020, arXiv:2012.14966.

    The loss ``||M - A||_F^2 / ||A||_F^2`` is evaluated by pushing the identity (a batch of
    ``n`` vectors) through the relaxed permutation and the butterflies with
    :func:`~structlin.butterfly_multiply`, and its gradient by
    :func:`~structlin.butterfly_multiply_vjp` in reverse order: ``O(K n^2 log n)`` per
    evaluation, never a dense product. The parameters (real and imaginary parts of the
    twiddles, the permutation logits) are optimised by ``scipy.optimize.minimize`` with
    ``method="L-BFGS-B"``. The fit works in float64/complex128 on ``A`` scaled to the
    Frobenius norm ``sqrt(n)`` of an orthogonal matrix; the scale is put back into the last
    factor and the result cast to ``A``'s dtype.

    The relaxed permutation (Dao et al. 2019, Section 3.2) is a sequence of moves for the
    block sizes ``m = n, n/2, ..., 4``: separate even and odd entries within each block,
    reverse the first half, reverse the second half; each move ``x -> x[idx]`` enters as
    ``(1 - w) x + w x[idx]`` with ``w = sigmoid(logit)``. After the main fit the weights
    are made hard (0 or 1), which gives a true permutation (the separations at every size
    compose to the bit reversal). Instead of annealing the logits, the rounding is improved
    by a discrete search scored with the exact :func:`butterfly_factorize` of ``A[:, perm]``
    (``O(n^2)`` per score, ``64 (log2(n) - 1)`` scores for a greedy pass with a look-ahead of
    two block sizes, then single flips from it and from the rounded relaxation); with
    ``n_factors_products > 1`` that score is a proxy (one butterfly). The butterflies are then
    re-fitted for ``refit_maxiter`` iterations, starting from the better of the relaxed fit
    and the exact factorization of ``A[:, perm]``. The problem is not convex: the error
    reached depends on ``rng``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import hadamard
    >>> from structlin import butterfly_fit
    >>> fit = butterfly_fit(hadamard(16), permutation=None, rng=0)
    >>> fit.twiddles.shape
    (1, 4, 8, 2, 2)
    >>> bool(fit.relative_error < 1e-4)
    True
    >>> x = np.arange(16.0)
    >>> bool(np.allclose(fit.multiply(x), hadamard(16) @ x, atol=1e-3))
    True
    """
    p = prepare(A=A)
    if p.xp is not np:
        raise TypeError(
            "butterfly_fit runs on the CPU (scipy.optimize drives it): A must be a NumPy "
            "array, got a cupy.ndarray; pass cupy.asnumpy(A)"
        )
    A, dtype = p.A, p.dtype
    L = _check_matrix(A)
    n = A.shape[0]
    if n < 2:
        raise ValueError(f"A must be at least 2 x 2 to fit butterflies, got shape {A.shape}")
    K = check_int(n_factors_products, "n_factors_products", minimum=1)
    if K > MAX_PRODUCTS_PER_LEVEL * L:
        raise ValueError(
            f"n_factors_products must be at most {MAX_PRODUCTS_PER_LEVEL * L} "
            f"({MAX_PRODUCTS_PER_LEVEL} log2(n) for n = {n}), got {K}"
        )
    check_choice(permutation, "permutation", ("learn", None))
    check_choice(init, "init", ("random", "factorize"))
    maxiter = check_int(maxiter, "maxiter", minimum=0, maximum=MAX_ITERATIONS)
    refit_maxiter = check_int(refit_maxiter, "refit_maxiter", minimum=0,
                              maximum=MAX_ITERATIONS)
    rng = check_rng(rng, "rng")
    complex_ = dtype.kind == "c"
    wide = np.complex128 if complex_ else np.float64
    Aw = A.astype(wide)
    normA = _frobenius(Aw)
    if normA == 0.0:
        raise ValueError("A must not be zero: the relative error of a fit is undefined")
    scale = normA / np.sqrt(n)
    target = np.ascontiguousarray((Aw / scale).T)

    ops = _permutation_ops(n) if permutation == "learn" else []
    if init == "factorize":
        tws = np.empty((K, L, n // 2, 2, 2), wide)
        tws[:] = random_butterfly(n, kind="identity", dtype=wide)
        tws[0] = butterfly_factorize(target.T).twiddle
        logits = -3.0 + 0.1 * rng.standard_normal(len(ops))
    else:
        tws = np.stack([random_butterfly(n, kind="orthogonal", dtype=wide, rng=rng)
                        for _ in range(K)])
        logits = 0.1 * rng.standard_normal(len(ops))

    obj = _Objective(target, K, L, complex_, ops, bool(ops), logits)
    theta, iterations, _ = _minimize(obj, obj.pack(tws, logits), maxiter)
    tws, logits = obj.unpack(theta)
    tws = tws.copy()
    perm = np.arange(n)
    if ops:
        choice = _harden_permutation(target.T, ops, np.asarray(logits) > 0)
        perm = _permutation_from(ops, choice, n)
        refit = _Objective(target, K, L, complex_, [], False, np.zeros(0))
        # M = B P with P x = x[perm] means A[:, perm] = B: the re-fit's target is A[:, perm]
        refit.target = np.ascontiguousarray(target[perm])
        # start from the better of the relaxed fit's butterflies and the exact factorization
        # of A[:, perm] (the other butterflies the identity)
        start = refit.pack(tws, None)
        alt = np.empty_like(tws)
        alt[:] = random_butterfly(n, kind="identity", dtype=wide)
        alt[0] = butterfly_factorize(refit.target.T).twiddle
        alt = refit.pack(alt, None)
        if refit(alt)[0] < refit(start)[0]:
            start = alt
        theta, nit, _ = _minimize(refit, start, refit_maxiter)
        iterations += nit
        tws = refit.unpack(theta)[0].copy()
    # scale back into the last factor applied
    last = L - 1 if (K - 1) % 2 == 0 else 0
    tws[K - 1, last] *= scale
    fit = ButterflyFit(
        np.ascontiguousarray(tws, dtype=dtype),
        tuple(t % 2 == 0 for t in range(K)),
        perm.astype(np.int64),
        0.0,
        iterations,
    )
    M = fit.to_dense().astype(wide)
    err = _frobenius(M - Aw) / normA
    return fit._replace(relative_error=err)
