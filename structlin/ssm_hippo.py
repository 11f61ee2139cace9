"""HiPPO matrices, their normal-plus-low-rank form, discretization and S4D initializations.

The continuous state space ``x'(t) = A x(t) + B u(t)`` of HiPPO (Gu et al., arXiv:2008.07669)
projects the history of ``u`` onto orthogonal polynomials; :func:`hippo` builds ``(A, B)`` for
the Legendre (scaled and translated), Laguerre and Fourier measures in the conventions of the
reference code of S4 (state-spaces/s4, ``transition``), :func:`hippo_nplr` the unitary
normal-plus-low-rank form S4 computes with (arXiv:2111.00396), :func:`discretize` turns a
continuous system into a recurrence (zero-order hold, bilinear, forward and backward Euler) and
:func:`s4d_init` gives the diagonal initializations of S4D (arXiv:2206.11893).

These constructors are small (``O(N^3)`` at most, ``N`` a few hundred): they are NumPy/SciPy
(CuPy for :func:`discretize` on CuPy arrays), not compiled kernels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._validate import (
    check_bool,
    check_choice,
    check_finite,
    check_int,
    prepare,
)

__all__ = ["discretize", "hippo", "hippo_nplr", "s4d_init"]

#: measures of :func:`hippo` and :func:`hippo_nplr`
MEASURES = ("legs", "legt", "lagt", "fourier")
#: discretization methods of :func:`discretize`
METHODS = ("zoh", "bilinear", "euler", "backward_euler")
#: initializations of :func:`s4d_init`
S4D_KINDS = ("lin", "inv", "legs", "real")
#: largest state size of the constructors (dense ``N x N`` matrices, an ``O(N^3)`` eigensolver)
MAX_N = 1 << 13
#: smallest rank of the low-rank correction that makes ``A`` normal, per measure
MIN_RANK = {"legs": 1, "legt": 2, "lagt": 1, "fourier": 1}


def _check_measure(measure: Any) -> str:
    return check_choice(measure, "measure", MEASURES)


def hippo(measure: str, N: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the HiPPO state matrix ``A`` (N, N) and input vector ``B`` (N,) of a measure.

    Parameters
    ----------
    measure : {"legs", "legt", "lagt", "fourier"}
        ``"legs"``: scaled Legendre (HiPPO-LegS, the S4 default); ``"legt"``: translated
        Legendre (a window of length 1); ``"lagt"``: translated Laguerre (an exponentially
        decaying measure); ``"fourier"``: translated Fourier (FouT).
    N : int
        State size (number of basis functions), ``1 <= N <= 8192``.

    Returns
    -------
    A : ndarray, shape (N, N), float64
    B : ndarray, shape (N,), float64

    Raises
    ------
    ValueError
        An unknown ``measure`` or ``N`` out of range.
    TypeError
        ``N`` not an integer.

    See Also
    --------
    hippo_nplr : the normal-plus-low-rank form of ``A``.
    discretize : the recurrence of ``(A, B)``.

    Notes
    -----
    With ``r_n = sqrt(2n + 1)`` (the conventions of state-spaces/s4's ``transition``):

    - LegS: ``A[n, k] = -r_n r_k`` for ``n > k``, ``-(n + 1)`` on the diagonal, 0 above;
      ``B[n] = r_n``.
    - LegT: ``A[n, k] = -r_n r_k / 2`` for ``n >= k``, ``-(-1)^(n-k) r_n r_k / 2`` for
      ``n < k``; ``B[n] = r_n / 2`` (s4 halves both "for timescale correctness").
    - LagT: ``A = I/2 - tril(ones)`` (``-1/2`` on the diagonal, ``-1`` below), ``B = 1``.
    - Fourier (``N`` even): ``A[2k, 2k+1] = -pi k``, ``A[2k+1, 2k] = pi k`` (k < N/2),
      minus the rank-one ``b b^T`` with ``b[0] = 1``, ``b[2j] = sqrt(2)`` (j >= 1), 0 at odd
      indices; ``B = b``.

    Cost ``O(N^2)``.

    References
    ----------
    .. [1] A. Gu, T. Dao, S. Ermon, A. Rudra, C. Ré, "HiPPO: Recurrent Memory with Optimal
       Polynomial Projections", NeurIPS 2020, arXiv:2008.07669.
    .. [2] A. Gu, I. Johnson, A. Timalsina, A. Rudra, C. Ré, "How to Train Your HiPPO",
       arXiv:2206.12037.

    Examples
    --------
    >>> from structlin import hippo
    >>> A, B = hippo("legs", 3)
    >>> A.round(3)
    array([[-1.   ,  0.   ,  0.   ],
           [-1.732, -2.   ,  0.   ],
           [-2.236, -3.873, -3.   ]])
    >>> B.round(3)
    array([1.   , 1.732, 2.236])
    """
    measure = _check_measure(measure)
    N = check_int(N, "N", minimum=1, maximum=MAX_N)
    q = np.arange(N, dtype=np.float64)
    r = np.sqrt(2.0 * q + 1.0)
    if measure == "legs":
        A = np.tril(-np.outer(r, r), -1) - np.diag(q + 1.0)
        B = r.copy()
    elif measure == "legt":
        n, k = np.meshgrid(q, q, indexing="ij")
        sign = np.where(n < k, (-1.0) ** (n - k), 1.0)
        A = -0.5 * sign * np.outer(r, r)
        B = 0.5 * r
    elif measure == "lagt":
        A = 0.5 * np.eye(N) - np.tril(np.ones((N, N)))
        B = np.ones(N)
    else:
        if N % 2:
            raise ValueError(f"N must be even for measure='fourier' (cosine-sine pairs), "
                             f"got N={N}")
        A, B = _fourier(N)
    return A, B


def _fourier(N: int) -> tuple[np.ndarray, np.ndarray]:
    # s4's interleaving: the superdiagonal is d = [f0, 0, f1, 0, f2, ...] with f_k = k (the
    # frequency pi k couples indices 2k and 2k + 1; k = 0 couples nothing)
    d = np.zeros(N - 1)
    k = np.arange(N // 2)
    d[2 * k] = k
    A = np.pi * (np.diag(d, -1) - np.diag(d, 1))
    b = np.zeros(N)
    b[0::2] = np.sqrt(2.0)
    b[0] = 1.0
    return A - np.outer(b, b), b


def _low_rank(measure: str, N: int, rank: int) -> np.ndarray:
    """s4's ``rank_correction``: ``P`` (rank, N) real with ``A + P^T P`` normal."""
    q = np.arange(N, dtype=np.float64)
    if measure == "legs":
        p = np.sqrt(q + 0.5)[None]
    elif measure == "legt":
        r = np.sqrt(2.0 * q + 1.0) / np.sqrt(2.0)
        p = np.stack([np.where(q % 2 == 1, r, 0.0), np.where(q % 2 == 0, r, 0.0)])
    elif measure == "lagt":
        p = np.full((1, N), np.sqrt(0.5))
    else:
        p = np.zeros((1, N))
        p[0, 0::2] = np.sqrt(2.0)
        p[0, 0] = 1.0
    if rank > p.shape[0]:
        p = np.concatenate([p, np.zeros((rank - p.shape[0], N))])
    return p


def _skew_eig(S: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenpairs of the real skew-symmetric ``S`` in conjugate pairs.

    Returns ``mu`` (m,) >= 0, ``W`` (N, m) complex with ``S W = W diag(i mu)`` (the other half
    is ``conj(W)`` with ``-i mu``), and ``Z`` (N, N - 2m) real with ``S Z = 0``: together
    ``[W, conj(W), Z]`` is unitary. From the real Schur form ``S = Q T Q^T`` (2 x 2 blocks
    ``[[0, b], [-b, 0]]``): the block's eigenvector ``(sign(b) q_j + i q_{j+1}) / sqrt(2)``;
    zero 1 x 1 blocks are paired into ``(q_a + i q_b) / sqrt(2)`` as far as they go.
    """
    import scipy.linalg

    N = S.shape[0]
    T, Q = scipy.linalg.schur(S, output="real")
    pairs, zeros = [], []
    j = 0
    while j < N:
        if j + 1 < N and T[j + 1, j] != 0.0:
            b, c = T[j, j + 1], T[j + 1, j]
            mu = np.sqrt(max(-b * c, 0.0))
            v = (np.sign(b) * Q[:, j] + 1j * Q[:, j + 1]) / np.sqrt(2.0)
            pairs.append((mu, v))
            j += 2
        else:
            zeros.append(Q[:, j])
            j += 1
    for a in range(0, len(zeros) - 1, 2):
        pairs.append((0.0, (zeros[a] + 1j * zeros[a + 1]) / np.sqrt(2.0)))
    rest = zeros[len(zeros) - len(zeros) % 2:]
    pairs.sort(key=lambda t: t[0])
    mu = np.array([m for m, _ in pairs], dtype=np.float64)
    W = np.stack([v for _, v in pairs], axis=1) if pairs else np.zeros((N, 0), complex)
    Z = np.stack(rest, axis=1) if rest else np.zeros((N, 0))
    return mu, W, Z


def hippo_nplr(measure: str, N: int, rank: int = 1, *, half: bool = True) -> tuple:
    """Return ``(Lambda, P, B, V)``: the HiPPO matrix ``A`` as a unitary similarity of a
    diagonal minus a low-rank matrix, ``A = V (diag(Lambda) - P^T conj(P)) V^*``.

    Parameters
    ----------
    measure : {"legs", "legt", "lagt", "fourier"}
        As for :func:`hippo`.
    N : int
        State size; even when ``half`` is True.
    rank : int, optional
        Rows of ``P``; at least 1 (``"legt"``: at least 2, its correction has rank 2). Rows
        beyond the correction's rank are zero.
    half : bool, optional
        True (default, S4's convention): keep one eigenvalue of each conjugate pair, the
        ``N // 2`` with positive imaginary part (in increasing order). False: all ``N``.

    Returns
    -------
    Lambda : ndarray, shape (N // 2,) or (N,), complex128
        Eigenvalues of the normal matrix ``A + p^T p`` (``p`` the real correction): real part
        ``-1/2`` for LegS, 0 for LegT, LagT and Fourier (marginally stable).
    P : ndarray, shape (rank, N // 2) or (rank, N), complex128
        ``V^* p^T`` transposed: the correction in the eigenbasis.
    B : ndarray, shape (N // 2,) or (N,), complex128
        ``V^* B`` (``B`` of :func:`hippo`).
    V : ndarray, shape (N, N // 2) or (N, N), complex128
        Orthonormal eigenvectors (columns).

    The identity, exactly: with ``half=False``, ``V`` is unitary and
    ``A == V @ (diag(Lambda) - P.T @ P.conj()) @ V.conj().T`` and ``B_hippo == V @ B``.
    With ``half=True`` the dropped half is the complex conjugate: with
    ``Lambda2 = concat(Lambda, conj(Lambda))``, ``P2 = concat(P, conj(P), axis=-1)``,
    ``B2 = concat(B, conj(B))``, ``V2 = concat(V, conj(V), axis=1)``, the same identity holds
    for ``(Lambda2, P2, B2, V2)`` (which is what ``half=False`` returns, for even ``N``
    without a zero eigenvalue of odd multiplicity).

    Raises
    ------
    ValueError
        Unknown ``measure``, ``N`` out of range or odd with ``half``, ``rank`` too small.
    TypeError
        ``N`` or ``rank`` not an integer, ``half`` not a bool.

    See Also
    --------
    hippo : the matrices themselves.
    s4d_init : ``"legs"`` is the diagonal of this form.

    Notes
    -----
    S4's ``nplr`` (arXiv:2111.00396, section 3.2): the rank correction of each measure (LegS
    ``p = sqrt(n + 1/2)``, LegT two interleaved rows ``sqrt((2n+1)/2)``, LagT ``sqrt(1/2)``,
    Fourier ``b``) makes ``A + p^T p = c I + S`` with ``S`` skew-symmetric; ``S`` is
    diagonalized by its real Schur form (exact conjugate pairs, zero eigenvalues paired into
    conjugate eigenvectors, where s4 patches the one zero pair of the Fourier case by hand).
    s4 keeps the half with *negative* imaginary part; this function the conjugate half (the
    same real system). Cost ``O(N^3)``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import hippo, hippo_nplr
    >>> A, B = hippo("legs", 8)
    >>> Lam, P, Bt, V = hippo_nplr("legs", 8, half=False)
    >>> bool(np.allclose(V @ (np.diag(Lam) - P.T @ P.conj()) @ V.conj().T, A))
    True
    >>> Lam, P, Bt, V = hippo_nplr("legs", 8)
    >>> Lam.shape, P.shape, V.shape
    ((4,), (1, 4), (8, 4))
    >>> bool(np.allclose(Lam.real, -0.5) and (Lam.imag > 0).all())
    True
    """
    measure = _check_measure(measure)
    N = check_int(N, "N", minimum=1, maximum=MAX_N)
    rank = check_int(rank, "rank", minimum=1, maximum=MAX_N)
    half = check_bool(half, "half")
    if rank < MIN_RANK[measure]:
        raise ValueError(
            f"rank must be at least {MIN_RANK[measure]} for measure={measure!r} (the rank of "
            f"its normal correction), got {rank}"
        )
    if half and N % 2:
        raise ValueError(
            f"N must be even with half=True (the eigenvalues come in conjugate pairs), got "
            f"N={N}; pass half=False for all N eigenvalues"
        )
    A, B = hippo(measure, N)
    p = _low_rank(measure, N, rank)
    AP = A + p.T @ p
    sym = AP + AP.T
    c = float(np.mean(np.diag(AP)))
    S = 0.5 * (AP - AP.T)
    mu, W, Z = _skew_eig(S)
    if half:
        V = W
        Lam = c + 1j * mu
    else:
        V = np.concatenate([W, W.conj(), Z.astype(complex)], axis=1)
        Lam = np.concatenate([c + 1j * mu, c - 1j * mu, np.full(Z.shape[1], c + 0j)])
    assert np.abs(sym - 2 * c * np.eye(N)).max() <= 1e-9 * max(1.0, np.abs(AP).max())
    Vh = V.conj().T
    return Lam.astype(np.complex128), (Vh @ p.T).T.copy(), Vh @ B, V


def s4d_init(N: int, kind: str) -> np.ndarray:
    """Return the ``N // 2`` diagonal state matrix entries of an S4D initialization.

    Parameters
    ----------
    N : int
        State size of the real system (even; ``N // 2`` conjugate pairs are returned).
    kind : {"lin", "inv", "legs", "real"}
        ``"lin"``: S4D-Lin, ``-1/2 + i pi n``; ``"inv"``: S4D-Inv,
        ``-1/2 + i (N / pi) (N / (2n + 1) - 1)``; ``"legs"``: S4D-LegS, the diagonal of
        HiPPO-LegS's normal part (:func:`hippo_nplr` ``("legs", N)``, real part ``-1/2``);
        ``"real"``: S4D-Real, ``-(n + 1)`` (s4's ``dplr(scaling="real")``).

    Returns
    -------
    ndarray, shape (N // 2,), complex128
        ``n = 0, ..., N // 2 - 1``; non-negative imaginary parts.

    Raises
    ------
    ValueError
        Unknown ``kind``, ``N`` odd or out of range.
    TypeError
        ``N`` not an integer.

    See Also
    --------
    hippo_nplr, discretize

    Notes
    -----
    The conventions of state-spaces/s4 (``models/s4/s4d.py``: ``A = -exp(log_A_real) + i
    A_imag`` with ``A_real = 1/2``, ``A_imag = pi n``; ``dplr`` in ``models/s4/s4.py`` for
    "inv", "real" and "legs", which reads the imaginary part of ``nplr("legsd", N)``, the
    eigenvalues of LegS's normal part). s4 stores LegS's negative-imaginary half; this
    returns the conjugates (the same real system), in increasing order. Gu et al.,
    arXiv:2206.11893.

    Examples
    --------
    >>> from structlin import s4d_init
    >>> s4d_init(4, "lin")
    array([-0.5+0.j        , -0.5+3.14159265j])
    >>> s4d_init(4, "real")
    array([-1.+0.j, -2.+0.j])
    """
    N = check_int(N, "N", minimum=2, maximum=MAX_N)
    kind = check_choice(kind, "kind", S4D_KINDS)
    if N % 2:
        raise ValueError(f"N must be even (N // 2 conjugate pairs), got N={N}")
    n = np.arange(N // 2, dtype=np.float64)
    if kind == "lin":
        return -0.5 + 1j * np.pi * n
    if kind == "inv":
        return -0.5 + 1j * (N / np.pi) * (N / (2 * n + 1) - 1)
    if kind == "real":
        return -(n + 1) + 0j
    return -0.5 + 1j * hippo_nplr("legs", N)[0].imag


# ------------------------------------------------------------------------------ discretize


def _namespace_linalg(xp: Any):
    """``(expm, solve)`` for the namespace: SciPy for NumPy, CuPy's for CuPy."""
    if xp is np:
        import scipy.linalg

        return scipy.linalg.expm
    try:
        from cupyx.scipy.linalg import expm  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - depends on the CuPy version
        return None
    return expm


def discretize(A: Any, B: Any, dt: Any, method: str = "zoh", *,
               diagonal: bool | None = None) -> tuple[Any, Any]:
    """Return ``(A_bar, B_bar)``, the discrete recurrence ``x_k = A_bar x_{k-1} + B_bar u_k``
    of ``x'(t) = A x(t) + B u(t)`` sampled with step ``dt``.

    Parameters
    ----------
    A : array_like, shape (..., N, N) or (..., N)
        Dense state matrices, or (``diagonal``) the diagonals of diagonal ones, real or complex.
    B : array_like, shape (..., N) or (..., N, M)
        Dense ``A``: one input column per system (``B.ndim == A.ndim - 1``) or ``M`` columns
        (``B.ndim == A.ndim``). Diagonal ``A``: shape (..., N).
    dt : array_like, shape broadcasting with the leading dimensions
        Steps, positive and finite: a scalar, or one per system (e.g. ``A`` (H, N) diagonal
        and ``dt`` (H,)).
    method : {"zoh", "bilinear", "euler", "backward_euler"}
        Zero-order hold (exact for piecewise-constant inputs), the bilinear (Tustin) transform,
        forward or backward Euler.
    diagonal : bool, optional
        Whether ``A`` holds diagonals. Default: True when ``A`` is 1-d or its last two axes
        differ, False (dense) when they are equal; pass ``diagonal=True`` for an (H, N) array
        of diagonals with ``H == N``.

    Returns
    -------
    A_bar : ndarray, shape (..., N, N) or (..., N)
    B_bar : ndarray, shape of ``B`` broadcast with the leading dimensions
        NumPy's promotion of ``A``, ``B``, ``dt`` (integers to float64, float32 kept); the
        leading dimensions are the broadcast of those of ``A``, ``B`` and ``dt``.

    Raises
    ------
    ValueError
        Non-finite ``A`` or ``B``, ``dt`` not positive and finite, shapes that do not match,
        unknown ``method``, or a singular system (bilinear with ``dt A / 2`` having the
        eigenvalue 1, backward Euler with ``dt A`` having 1).
    TypeError
        Non-numeric arrays, complex ``dt``, NumPy mixed with CuPy; dense ZOH on CuPy arrays
        when ``cupyx.scipy.linalg.expm`` is missing (CuPy older than 13).

    See Also
    --------
    hippo, structlin.ssm_scan : the diagonal recurrence.

    Notes
    -----
    With ``I`` the identity:

    - zoh: ``A_bar = exp(dt A)``, ``B_bar = A^{-1} (exp(dt A) - I) B``; dense ``A`` via the
      matrix exponential of the augmented ``[[A, B], [0, 0]] dt`` (``scipy.linalg.expm``, no
      inverse of ``A``, so singular ``A`` is fine); diagonal: ``exp(dt L)`` and
      ``expm1(dt L) / L * B`` (``dt B`` where ``L == 0``, the limit).
    - bilinear: ``A_bar = (I - dt A / 2)^{-1} (I + dt A / 2)``,
      ``B_bar = (I - dt A / 2)^{-1} dt B``.
    - euler: ``A_bar = I + dt A``, ``B_bar = dt B``.
    - backward_euler: ``A_bar = (I - dt A)^{-1}``, ``B_bar = (I - dt A)^{-1} dt B``.

    No stability check: the formulas hold for any ``A``, an unstable one (eigenvalues with
    positive real part) gives an unstable recurrence (``|A_bar| > 1``), which the scans refuse
    (:func:`structlin.ssm_scan`). Cost: dense ``O(N^3)`` per system, diagonal ``O(N)``.
    Computed in float64 (complex128) and cast to the result dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import discretize
    >>> Ab, Bb = discretize(np.array([-1.0, -2.0]), np.array([1.0, 1.0]), 0.1)
    >>> bool(np.allclose(Ab, np.exp([-0.1, -0.2])))
    True
    >>> bool(np.allclose(Bb, (1 - np.exp([-0.1, -0.2])) / [1.0, 2.0]))
    True
    """
    method = check_choice(method, "method", METHODS)
    p = _arrays(prepare(A=A, B=B, dt=dt))
    xp = p.xp
    if p.dt.dtype.kind == "c":
        raise TypeError(f"dt must be real, got dtype {p.dt.dtype}")
    if p.A.ndim == 0:
        raise ValueError("A must have at least 1 dimension, shape (..., N, N) or (..., N); "
                         "got a 0-d array")
    if diagonal is None:
        diagonal = p.A.ndim == 1 or p.A.shape[-1] != p.A.shape[-2]
    else:
        diagonal = check_bool(diagonal, "diagonal")
    check_finite(p.A, "A")
    check_finite(p.B, "B")
    check_finite(p.dt, "dt")
    if p.dt.size and bool((p.dt <= 0).any()):
        raise ValueError(f"dt must be positive, got a minimum of {float(p.dt.min())}")
    out_dt = p.dtype
    wide = np.complex128 if np.dtype(out_dt).kind == "c" else np.float64
    Aw = p.A.astype(wide)
    Bw = p.B.astype(wide)
    dtw = p.dt.astype(np.float64)
    N = p.A.shape[-1]
    if diagonal:
        if p.B.shape[-1:] != (N,):
            raise ValueError(
                f"B must have shape (..., {N}) for the diagonal A of shape {tuple(p.A.shape)}, "
                f"got {tuple(p.B.shape)}"
            )
        lead = _broadcast(xp, ("A", p.A.shape[:-1]), ("B", p.B.shape[:-1]), ("dt", p.dt.shape))
        h = dtw.reshape((*dtw.shape, 1))
        Ab, Bb = _diagonal(xp, Aw, Bw, h, method)
        Ab = xp.broadcast_to(Ab, (*lead, N))
        Bb = xp.broadcast_to(Bb, (*lead, N))
        return xp.ascontiguousarray(Ab.astype(out_dt)), xp.ascontiguousarray(Bb.astype(out_dt))
    if p.A.shape[-2] != N:
        raise ValueError(f"A must have shape (..., N, N) or be diagonal, got {tuple(p.A.shape)}")
    if p.B.ndim == p.A.ndim - 1:
        column = True
        Bm = Bw[..., None]
    elif p.B.ndim == p.A.ndim:
        column = False
        Bm = Bw
    else:
        raise ValueError(
            f"B must have shape (..., N) or (..., N, M) with the leading dimensions of A "
            f"(shape {tuple(p.A.shape)}), got {tuple(p.B.shape)}"
        )
    if Bm.shape[-2] != N:
        raise ValueError(
            f"B must have N = {N} rows (A has shape {tuple(p.A.shape)}), got {tuple(p.B.shape)}"
        )
    M = Bm.shape[-1]
    lead = _broadcast(xp, ("A", p.A.shape[:-2]), ("B", Bm.shape[:-2]), ("dt", p.dt.shape))
    Aw = xp.broadcast_to(Aw, (*lead, N, N))
    Bm = xp.broadcast_to(Bm, (*lead, N, M))
    h = xp.broadcast_to(dtw, lead)[..., None, None]
    eye = xp.eye(N, dtype=wide)
    if method == "zoh":
        expm = _namespace_linalg(xp)
        if expm is None:
            raise TypeError("discretize(method='zoh') of a dense A on CuPy arrays needs "
                            "cupyx.scipy.linalg.expm (CuPy 13 or later)")
        aug = xp.zeros((*lead, N + M, N + M), dtype=wide)
        aug[..., :N, :N] = Aw * h
        aug[..., :N, N:] = Bm * h
        if xp is np:
            E = expm(aug)
        else:
            flat = aug.reshape(-1, N + M, N + M)
            E = xp.stack([expm(m) for m in flat]).reshape(aug.shape) if flat.shape[0] else aug
        Ab, Bb = E[..., :N, :N], E[..., :N, N:]
    elif method == "euler":
        Ab, Bb = eye + h * Aw, h * Bm
    else:
        left = eye - (0.5 if method == "bilinear" else 1.0) * h * Aw
        rhs = xp.concatenate([eye + 0.5 * h * Aw if method == "bilinear"
                              else xp.broadcast_to(eye, left.shape), h * Bm], axis=-1)
        try:
            sol = xp.linalg.solve(left, rhs)
        except np.linalg.LinAlgError:
            term = "dt A / 2" if method == "bilinear" else "dt A"
            raise ValueError(
                f"method={method!r} is singular for this A and dt (I - {term} is not "
                "invertible)"
            ) from None
        Ab, Bb = sol[..., :N], sol[..., N:]
    if column:
        Bb = Bb[..., 0]
    return xp.ascontiguousarray(Ab.astype(out_dt)), xp.ascontiguousarray(Bb.astype(out_dt))


def _arrays(p: Any) -> Any:
    """``p`` with NumPy scalars (which :func:`structlin._validate.prepare` passes through
    unconverted, and ``check_finite`` then takes for CuPy arrays) made 0-d arrays."""
    return p._replace(**{k: p.xp.asarray(v) for k, v in p._asdict().items()
                         if k not in ("xp", "dtype") and v is not None
                         and not isinstance(v, p.xp.ndarray)})


def _broadcast(xp: Any, *shapes: tuple[str, tuple]) -> tuple:
    try:
        return tuple(np.broadcast_shapes(*(s for _, s in shapes)))
    except ValueError:
        desc = ", ".join(f"{n} {tuple(s)}" for n, s in shapes)
        raise ValueError(
            f"the leading (batch) dimensions of A, B and dt must broadcast together, got {desc}"
        ) from None


def _diagonal(xp: Any, L: Any, B: Any, h: Any, method: str) -> tuple[Any, Any]:
    """Diagonal discretization of ``L`` (..., N), ``B`` (..., N), steps ``h`` (..., 1)."""
    z = h * L
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if method == "zoh":
            Ab = xp.exp(z)
            E = xp.where(L == 0, h + 0 * L, xp.expm1(z) / xp.where(L == 0, 1, L))
        elif method == "euler":
            Ab, E = 1 + z, h + 0 * L
        else:
            den = 1 - (0.5 * z if method == "bilinear" else z)
            if bool((den == 0).any()):
                raise ValueError(
                    f"method={method!r} is singular for this A and dt: "
                    f"{'dt A / 2' if method == 'bilinear' else 'dt A'} has an entry equal to 1"
                )
            Ab = ((1 + 0.5 * z) if method == "bilinear" else 1.0) / den
            E = h / den
    return Ab, E * B


def _exp_expm1(xp: Any, z: Any) -> tuple[Any, Any]:
    """``(exp(z), expm1(z))`` of a complex array from real functions: ``expm1(z) =
    expm1(x) cos(y) - 2 sin(y/2)^2 + i exp(x) sin(y)`` is accurate near 0 like NumPy's
    complex ``expm1`` and 4x faster (which is a scalar loop)."""
    x, y = z.real, z.imag
    ex = xp.exp(x)
    c, s = xp.cos(y), xp.sin(y)
    h = xp.sin(0.5 * y)
    return ex * c + 1j * (ex * s), (xp.expm1(x) * c - 2 * h * h) + 1j * (ex * s)


def _discretize_diag_grad(L: Any, h: Any, method: str, xp: Any = np, *,
                          derivatives: bool = True) -> tuple:
    """Diagonal discretization with its derivatives, for the scans (float64/complex128):
    ``Ab, E`` (``B_bar = E B``) and, with ``derivatives``, ``dAb/dL, dAb/dh, dE/dL, dE/dh``
    (holomorphic in ``L``). Methods "zoh" and "bilinear"; ``L`` (H, N), ``h`` (H, 1)."""
    z = h * L
    if method == "zoh":
        Ab, em1 = _exp_expm1(xp, z)
        zero = L == 0
        E = xp.where(zero, h, em1 / xp.where(zero, 1.0, L))
        if not derivatives:
            return Ab, E
        # dE/dL = (h Ab - E) / L cancels for small |z|: its series there
        small = xp.abs(z) < 1e-4
        safe = xp.where(small, 1.0, L)
        dE_dL = xp.where(small, h * h * (0.5 + z / 3 + z * z / 8 + z * z * z / 30),
                         (h * Ab - E) / safe)
        return Ab, E, h * Ab, L * Ab, dE_dL, Ab
    den = 1 - 0.5 * z
    Ab = (1 + 0.5 * z) / den
    if not derivatives:
        return Ab, h / den
    inv2 = 1 / (den * den)
    return Ab, h / den, h * inv2, L * inv2, 0.5 * h * h * inv2, inv2
