"""The S4 convolution kernel of a diagonal-plus-low-rank (DPLR) state matrix.

S4 (Gu, Goel and Ré, arXiv:2111.00396) parameterizes the state matrix of each channel as
``A = diag(Lambda) - P P^*`` (HiPPO's normal-plus-low-rank form after a unitary change of
basis, see :func:`structlin.hippo_nplr`). Its length-``L`` convolution kernel
``K_l = C A_bar^l B_bar`` is never computed by powers: the truncated generating function
``sum_l K_l z^l`` at the ``L``-th roots of unity is a resolvent ``C~ (g(z) - A)^{-1} B``,
i.e. a few Cauchy products (:func:`structlin.matmul_cauchy`) corrected by the Woodbury
identity, and an inverse FFT returns the kernel.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from structlin._backend import (
    as_kernel_array,
    fft_namespace,
    grad_like,
    kernels,
    one_blas_thread,
    real_dtype,
)
from structlin._validate import (
    ABSENT,
    check_finite,
    check_int,
    check_min_ndim,
    check_shape,
    prepare,
)

__all__ = ["ssm_kernel_dplr", "ssm_kernel_dplr_vjp"]

#: longest kernel accepted
MAX_L = 1 << 26


def _prepare(Lambda: Any, P: Any, B: Any, C: Any, dt: Any, L: Any, grad: Any = ABSENT):
    p = prepare(Lambda=Lambda, P=P, B=B, C=C, dt=dt, grad=grad,
                dtype_of=("Lambda", "P", "B", "C", "dt"))
    xp = p.xp
    cdt = np.result_type(p.dtype, np.complex64)
    check_min_ndim(p.Lambda, 1, "Lambda", "(H, N)")
    shape = tuple(p.Lambda.shape)
    batch, N = shape[:-1], shape[-1]
    check_int(N, "the state size N (last axis of Lambda)", minimum=1, maximum=1 << 16)
    if tuple(p.P.shape) == shape:
        P3 = p.P[None]
    elif p.P.ndim == len(shape) + 1 and tuple(p.P.shape[1:]) == shape:
        P3 = p.P
    else:
        raise ValueError(
            f"P must have the shape of Lambda, {shape} (rank 1), or (r, *{shape}) (rank r), "
            f"got {tuple(p.P.shape)}"
        )
    r = check_int(P3.shape[0], "the rank r of P (first axis)", minimum=1, maximum=64)
    check_shape(p.B, shape, "B", "the shape of Lambda")
    check_shape(p.C, shape, "C", "the shape of Lambda")
    check_shape(p.dt, batch, "dt", "one step per channel: the shape of Lambda without its "
                "last axis")
    L = check_int(L, "L", minimum=1, maximum=MAX_L)
    for name in ("Lambda", "P", "B", "C", "dt"):
        check_finite(getattr(p, name), name)
    if p.dt.size and not bool((p.dt > 0).all()):
        raise ValueError("dt must be positive (one step size per channel), got a value <= 0")
    if p.Lambda.size and not bool((xp.asarray(p.Lambda).real <= 0).all()):
        raise ValueError(
            "Lambda must have real parts <= 0 (a stable or marginally stable diagonal part, "
            "which keeps I - dt/2 A and the Woodbury matrices invertible), got a value with "
            "Re(Lambda) > 0"
        )
    H = math.prod(batch)
    lam = as_kernel_array(xp, p.Lambda, cdt).reshape(H, N)
    Pk = xp.ascontiguousarray(as_kernel_array(xp, P3, cdt).reshape(r, H, N).transpose(1, 0, 2))
    Bk = as_kernel_array(xp, p.B, cdt).reshape(H, N)
    Ck = as_kernel_array(xp, p.C, cdt).reshape(H, N)
    dtk = as_kernel_array(xp, p.dt, real_dtype(cdt)).reshape(H)
    return p, (lam, Pk, Bk, Ck, dtk), (batch, N, r, L, H, cdt)


def _matrices(xp: Any, lam: Any, P: Any, dt: Any) -> tuple:
    """Dense ``A = diag(lam) - P^T conj(P)``, ``Minv = (I - K A)^{-1}`` and ``A_bar`` (``K =
    dt/2``) in ``O(N^2 r)`` each: ``I - K A = diag(D) + K U U^*`` (``D = 1 - K lam``,
    ``U = P^T``) is inverted by the Woodbury identity,
    ``Minv = D^{-1} - K D^{-1} U (I + K U^* D^{-1} U)^{-1} U^* D^{-1}``, and
    ``A_bar = Minv (I + K A) = Minv (2 I - (I - K A)) = 2 Minv - I``."""
    N, r = lam.shape[1], P.shape[1]
    K = (dt / 2).astype(lam.dtype)
    D = 1 - K[:, None] * lam
    DU = P.transpose(0, 2, 1) / D[:, :, None]
    UD = xp.conj(P) / D[:, None, :]
    W = xp.linalg.inv(xp.eye(r, dtype=lam.dtype) + K[:, None, None] * xp.matmul(xp.conj(P), DU))
    diag = xp.arange(N)
    Minv = -K[:, None, None] * xp.matmul(xp.matmul(DU, W), UD)
    Minv[:, diag, diag] += 1 / D
    Abar = 2 * Minv
    Abar[:, diag, diag] -= 1
    A = -xp.matmul(P.transpose(0, 2, 1), xp.conj(P))
    A[:, diag, diag] += lam
    return A, Minv, Abar


def _row_power(xp: Any, c: Any, M: Any, L: int) -> Any:
    """``c M^L`` for rows ``c (H, N)`` by repeated squaring of ``M (H, N, N)``."""
    x = c[:, None, :]
    e = L
    while True:
        if e & 1:
            x = xp.matmul(x, M)
        e >>= 1
        if not e:
            return x[:, 0]
        M = xp.matmul(M, M)


def _pair_power(xp: Any, X: Any, E: Any, L: int) -> tuple:
    """``(X^L, sum_{j<L} X^j E X^{L-1-j})``: the power of the block matrix
    ``[[X, E], [0, X]]`` by repeated squaring (the second block is the Fréchet derivative of
    ``X -> X^L`` in the direction ``E``)."""
    RX = RE = None
    while True:
        if L & 1:
            if RX is None:
                RX, RE = X, E
            else:
                RX, RE = xp.matmul(RX, X), xp.matmul(RX, E) + xp.matmul(RE, X)
        L >>= 1
        if not L:
            return RX, RE
        X, E = xp.matmul(X, X), xp.matmul(X, E) + xp.matmul(E, X)


def _nodes(xp: Any, L: int, dt: Any, cdt: Any) -> tuple:
    """Indices ``k`` of the roots of unity ``z = exp(-2 pi i k / L)`` other than ``z = -1``,
    the nodes ``g = (2/dt) (1 - z)/(1 + z) = (2/dt) i tan(pi k / L)`` (H, L') and the factors
    ``2 / (1 + z) = 1 + i tan(pi k / L)`` (L',)."""
    idx = np.array([k for k in range(L) if 2 * k != L], dtype=np.int64)
    tan = np.tan(np.pi * idx / L)
    g = xp.asarray(2j * tan)[None, :] / xp.asarray(dt, dtype=np.float64)[:, None]
    return (xp.asarray(idx), xp.ascontiguousarray(g.astype(cdt)),
            xp.asarray((1 + 1j * tan).astype(cdt)))


def _cauchy_terms(xp: Any, Ct: Any, P: Any, B: Any) -> tuple:
    """Left ``u = [Ct, conj(P)]`` and right ``w = [B, P]`` vectors (H, r+1, N) and the weights
    ``v[a, b] = u_a w_b`` of the ``(r+1)^2`` Cauchy products, as ``(H, (r+1)^2, N)``."""
    u = xp.concatenate([Ct[:, None], xp.conj(P)], axis=1)
    w = xp.concatenate([B[:, None], P], axis=1)
    H, r1, N = u.shape
    v = (u[:, :, None, :] * w[:, None, :, :]).reshape(H, r1 * r1, N)
    return u, w, xp.ascontiguousarray(v)


def _woodbury(xp: Any, k: Any, r: int) -> tuple:
    """``k00 - k01 (I + k11)^{-1} k10`` per node from the products ``k (H, r+1, r+1, L')``,
    with ``a = (I + k11)^{-1} k10`` and ``b = (I + k11)^{-T} k01`` (both (H, r, L'))."""
    k00, k01, k10, k11 = k[:, 0, 0], k[:, 0, 1:], k[:, 1:, 0], k[:, 1:, 1:]
    if r == 1:
        inv = 1 / (1 + k11[:, 0, 0])
        a = (k10[:, 0] * inv)[:, None]
        b = (k01[:, 0] * inv)[:, None]
        return k00 - k01[:, 0] * a[:, 0], a, b
    S = xp.eye(r, dtype=k.dtype) + k11.transpose(0, 3, 1, 2)
    a = xp.linalg.solve(S, k10.transpose(0, 2, 1)[..., None])[..., 0].transpose(0, 2, 1)
    b = xp.linalg.solve(S.transpose(0, 1, 3, 2),
                        k01.transpose(0, 2, 1)[..., None])[..., 0].transpose(0, 2, 1)
    return k00 - (k01 * a).sum(axis=1), a, b


def _forward(xp: Any, args: tuple, L: int, cdt: Any, square: bool) -> dict:
    lam, P, B, C, dt = args
    H, r = P.shape[:2]
    A, Minv, Abar = _matrices(xp, lam, P, dt)
    Ct = C - _row_power(xp, C, Abar, L)
    idx, g, s = _nodes(xp, L, dt, cdt)
    u, w, v = _cauchy_terms(xp, Ct, P, B)
    out = xp.zeros((H, (r + 1) ** 2, idx.size), dtype=cdt)
    out_sq = xp.zeros_like(out) if square else None
    ker = kernels(xp, "cauchy")
    if out.size:
        if square:
            ker.cauchy_square(g, lam, v, out, out_sq)
        else:
            ker.cauchy(g, lam, v, out)
        if not bool(xp.isfinite(out).all()):
            raise ValueError(
                "a Cauchy node g(z_k) = (2/dt) i tan(pi k / L) coincides with a pole of Lambda "
                "(possible only where Re(Lambda) = 0): change dt or L slightly"
            )
    bracket, a, b = _woodbury(xp, out.reshape(H, r + 1, r + 1, idx.size), r)
    Khat = xp.zeros((H, L), dtype=cdt)
    Khat[:, idx] = s * bracket
    Kh = (dt / 2).astype(cdt)
    if L % 2 == 0:  # z = -1: (2 / (1 + z)) (g - A)^{-1} B -> (dt / 2) B
        Khat[:, L // 2] = Kh * (Ct * B).sum(axis=1)
    return dict(A=A, Minv=Minv, Abar=Abar, Ct=Ct, idx=idx, g=g, s=s, u=u, w=w, v=v,
                out_sq=out_sq, a=a, b=b, Khat=Khat, Kh=Kh)


def _to_kernel(xp: Any, Khat: Any, L: int) -> Any:
    """``2 Re ifft(Khat)`` through the half spectrum of its Hermitian part."""
    half = xp.arange(L // 2 + 1)
    F = Khat[:, half] + xp.conj(Khat[:, (-half) % L])
    return fft_namespace(xp).irfft(F, n=L, axis=-1)


def ssm_kernel_dplr(Lambda: Any, P: Any, B: Any, C: Any, dt: Any, L: int) -> Any:
    """Return the S4 convolution kernel of the DPLR state matrix ``diag(Lambda) - P P^*``.

    Parameters
    ----------
    Lambda : array_like, shape (H, N)
        Diagonal part of the state matrix of each of the ``H`` channels (complex; every
        ``Re(Lambda) <= 0``: HiPPO-LegS has ``-1/2``, LegT, LagT and Fourier 0, their full
        ``A`` being stable). Any leading dimensions may replace ``H``.
    P : array_like, shape (H, N) or (r, H, N)
        Low-rank part: ``A = diag(Lambda) - sum_s P[s] P[s]^*`` (rank 1 for ``(H, N)``).
    B, C : array_like, shape (H, N)
        Input and output vectors.
    dt : array_like, shape (H,)
        Step sizes (``> 0``), one per channel.
    L : int
        Kernel length (any positive integer, not only powers of two).

    Returns
    -------
    ndarray, shape (H, L), real
        ``K[h, l] = 2 Re(C[h] A_bar^l B_bar)`` with the bilinear discretization
        ``A_bar = (I - dt/2 A)^{-1} (I + dt/2 A)``, ``B_bar = (I - dt/2 A)^{-1} dt B``:
        the conjugate-pair convention (the real system of size ``2N`` also has the
        conjugate modes). float32 for single-precision inputs (complex64 or float32),
        float64 otherwise; array type of the inputs (NumPy or CuPy).

    Raises
    ------
    ValueError
        Shapes that disagree (naming the argument and both shapes), ``dt <= 0``,
        ``Re(Lambda) > 0`` (unstable), non-finite inputs, ``L < 1``; a node
        ``g(z_k)`` equal to a pole ``Lambda_n`` (only possible where ``Re(Lambda_n) = 0``).
    TypeError
        Non-numeric arrays, NumPy mixed with CuPy, a non-integer ``L``.

    See Also
    --------
    ssm_kernel_dplr_vjp : the gradients of all array arguments.
    matmul_cauchy : the Cauchy product underneath.
    hippo_nplr : HiPPO's ``(Lambda, P, B)`` in this form.

    Notes
    -----
    S4's Algorithm 1 (arXiv:2111.00396): with ``C~ = C (I - A_bar^L)`` the truncated
    generating function ``sum_{l<L} K_l z^l`` equals, at every root of unity ``z^L = 1``,
    ``(2 / (1 + z)) C~ (g(z) - A)^{-1} B`` with ``g(z) = (2/dt) (1 - z) / (1 + z)``; the
    Woodbury identity with ``R = (g - diag(Lambda))^{-1}`` gives
    ``C~ R B - (C~ R P) (I + P^* R P)^{-1} (P^* R B)``, whose four terms (``k00``, ``k01``,
    ``k10``, ``k11``) are ``(r + 1)^2`` Cauchy products over the poles ``Lambda`` at the
    nodes ``g(z_k) = (2/dt) i tan(pi k / L)``, computed by one fused kernel call. The node
    ``z = -1`` (even ``L``), where ``g`` is infinite, takes its limit ``(dt/2) C~ B``. An
    inverse FFT returns the kernel. Because the complex system is not real, its generating
    function is not Hermitian: all ``L`` nodes are needed, and the real output
    ``2 Re ifft(Khat)`` is one inverse real FFT (half spectrum, ``L // 2 + 1`` points) of
    ``Khat_k + conj(Khat_{-k})``.

    ``C~`` is computed exactly from the dense ``A_bar`` by repeated squaring (``C A_bar^L``:
    ``floor(log2 L)`` squarings, one row-matrix product per set bit of ``L``). Cost, in
    complex multiply-adds: ``H N^2 r`` for ``A_bar`` (``I - dt/2 A`` is inverted by the
    Woodbury identity, ``A_bar = 2 (I - dt/2 A)^{-1} - I``), about ``H N^3 floor(log2 L)``
    for ``C~`` (stacked ``N x N`` products, on one BLAS thread for NumPy input),
    ``H (L - [L even]) N (r + 1)^2`` for the Cauchy products (one reciprocal per pole and
    node, shared by the ``(r + 1)^2`` products), ``O(H L r^3)`` for the Woodbury solves and
    ``O(H L log L)`` for the FFT; memory ``O(H (N^2 + (r + 1)^2 L))``, never ``H x N x L``.
    S4 itself learns ``C~`` directly, which removes the ``N^3`` term. A cheaper exact way,
    not implemented here, steps the row ``C A_bar^j`` through the DPLR structure (one
    rank-``r`` Woodbury solve per step, ``O(H L N r)``, sequential in ``L``). The fast multipole
    Cauchy algorithm of the paper (``O((N + L) log^2)``) is not used, as in S4's code.
    On CuPy arrays the Cauchy products run in a CUDA kernel and the rest in CuPy (cuBLAS,
    cuSOLVER, cuFFT); unverified on a GPU so far.

    References
    ----------
    .. [1] A. Gu, K. Goel, C. Ré, "Efficiently Modeling Long Sequences with Structured State
       Spaces", ICLR 2022, arXiv:2111.00396.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import ssm_kernel_dplr
    >>> rng = np.random.default_rng(0)
    >>> H, N, L = 2, 4, 10
    >>> Lam = -0.5 + 1j * np.pi * np.arange(N) * np.ones((H, 1))
    >>> P = 0.3 * (rng.standard_normal((H, N)) + 0j)
    >>> B = rng.standard_normal((H, N)) + 0j
    >>> C = rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))
    >>> dt = np.array([0.1, 0.01])
    >>> K = ssm_kernel_dplr(Lam, P, B, C, dt, L)
    >>> K.shape, K.dtype
    ((2, 10), dtype('float64'))
    >>> A = np.diag(Lam[0]) - np.outer(P[0], P[0].conj())  # the dense recurrence
    >>> M = np.linalg.inv(np.eye(N) - 0.05 * A)
    >>> Ab, x = M @ (np.eye(N) + 0.05 * A), M @ (0.1 * B[0])
    >>> ref = []
    >>> for _ in range(L):
    ...     ref.append(2 * (C[0] @ x).real)
    ...     x = Ab @ x
    >>> bool(np.allclose(K[0], ref))
    True
    """
    p, args, (batch, _, _, L, H, cdt) = _prepare(Lambda, P, B, C, dt, L)
    xp = p.xp
    if H == 0:
        return xp.zeros((*batch, L), dtype=real_dtype(cdt))
    with one_blas_thread(xp):
        f = _forward(xp, args, L, cdt, square=False)
    return _to_kernel(xp, f["Khat"], L).reshape((*batch, L))


def ssm_kernel_dplr_vjp(Lambda: Any, P: Any, B: Any, C: Any, dt: Any, L: int,
                        grad: Any) -> tuple:
    """Return the gradients of :func:`ssm_kernel_dplr` for the output gradient ``grad``.

    Parameters
    ----------
    Lambda, P, B, C, dt, L
        As for :func:`ssm_kernel_dplr`.
    grad : array_like, shape (H, L)
        Gradient of a real loss with respect to the kernel (real).

    Returns
    -------
    grad_Lambda, grad_P, grad_B, grad_C, grad_dt : ndarray
        Of the shapes of their arguments, each in its argument's dtype (promoted to floating
        point; the real part for a real argument). Complex gradients follow PyTorch's
        convention ``dl/dRe z + 1j dl/dIm z``.

    Raises
    ------
    ValueError, TypeError
        As for :func:`ssm_kernel_dplr`, and ``grad`` of the wrong shape.

    See Also
    --------
    ssm_kernel_dplr : the kernel.

    Notes
    -----
    The adjoint of each step of the forward algorithm, in reverse order:

    - inverse FFT: the gradient of the generating function is ``(2 / L) fft(grad)``;
    - Woodbury: with ``a = (I + k11)^{-1} k10``, ``b = (I + k11)^{-T} k01`` and ``G`` the
      gradient of the bracket (times ``conj(2 / (1 + z))``): ``G`` for ``k00``,
      ``-conj(a) G`` for ``k01``, ``-conj(b) G`` for ``k10``, ``conj(b a^T) G`` for ``k11``;
    - Cauchy products: the gradients of their weights and poles are Cauchy products with
      the nodes exchanged and their squares (one fused kernel call over the ``(r + 1)^2``
      products), the gradients of the nodes (hence of ``dt``) the squared products of the
      forward orientation (the forward is recomputed with them, in the same call);
    - ``C~ = C (I - A_bar^L)``: exact. The gradient of ``A_bar`` for ``C A_bar^L`` is the
      adjoint Fréchet derivative of the matrix power, the upper right block of
      ``[[A_bar^H, E], [0, A_bar^H]]^L`` with ``E = conj(C)^T (-grad C~)``, by repeated
      squaring of the block pair (three matrix products per step); then through
      ``A_bar = (I - K A)^{-1} (I + K A)``, ``K = dt/2``:
      ``grad (K A) = (I - K A)^{-H} grad A_bar (I + A_bar)^H``, and through
      ``A = diag(Lambda) - P P^*``: ``grad Lambda = diag(grad A)``,
      ``grad P = -(grad A + grad A^H) P``.

    Cost about three times the forward kernel's, memory ``O(H (N^2 + (r + 1)^2 L))``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import ssm_kernel_dplr, ssm_kernel_dplr_vjp
    >>> Lam, P = np.array([[-0.5 + 1j, -0.3 - 2j]]), np.array([[0.2 + 0j, 0.1j]])
    >>> B, C, dt = np.array([[1.0 + 0j, 0.5]]), np.array([[0.3 - 1j, 2.0]]), np.array([0.1])
    >>> G = np.random.default_rng(0).standard_normal((1, 8))
    >>> gLam, gP, gB, gC, gdt = ssm_kernel_dplr_vjp(Lam, P, B, C, dt, 8, G)
    >>> e = 1e-6  # the loss sum(G * K) against a finite difference in dt
    >>> fd = (np.sum(G * ssm_kernel_dplr(Lam, P, B, C, dt + e, 8))
    ...       - np.sum(G * ssm_kernel_dplr(Lam, P, B, C, dt - e, 8))) / (2 * e)
    >>> bool(np.isclose(gdt[0], fd))
    True
    """
    p, args, (batch, N, r, L, H, cdt) = _prepare(Lambda, P, B, C, dt, L, grad)
    xp = p.xp
    rdt = real_dtype(cdt)
    check_shape(p.grad, (*batch, L), "grad", "the shape of ssm_kernel_dplr's output")
    G = p.grad.real if p.grad.dtype.kind == "c" else p.grad
    G = as_kernel_array(xp, G, rdt).reshape(H, L)
    if H == 0:
        z = xp.zeros((H, N), dtype=cdt)
        gP, gdt, gLam, gB, gC = xp.zeros((H, r, N), cdt), xp.zeros(H, rdt), z, z, z
    else:
        with one_blas_thread(xp):
            gLam, gP, gB, gC, gdt = _backward(xp, args, L, cdt, G)
    gLam, gB, gC = (a.reshape((*batch, N)) for a in (gLam, gB, gC))
    gP = gP.transpose(1, 0, 2).reshape((r, *batch, N))
    if p.P.ndim == len(batch) + 1:
        gP = gP[0]
    gdt = gdt.reshape(batch)
    return (grad_like(xp, gLam, p.Lambda), grad_like(xp, gP, p.P), grad_like(xp, gB, p.B),
            grad_like(xp, gC, p.C), grad_like(xp, gdt, p.dt))


def _backward(xp: Any, args: tuple, L: int, cdt: Any, G: Any) -> tuple:
    lam, P, B, C, dt = args
    H, r, N = P.shape
    f = _forward(xp, args, L, cdt, square=True)
    idx, g, s, Ct, Kh = f["idx"], f["g"], f["s"], f["Ct"], f["Kh"]
    Ghat = (fft_namespace(xp).fft(G, axis=-1) * (2.0 / L)).astype(cdt)
    nk = idx.size
    # Woodbury
    Gk = Ghat[:, idx] * xp.conj(s)
    a, b = f["a"], f["b"]
    gam = xp.zeros((H, r + 1, r + 1, nk), dtype=cdt)
    gam[:, 0, 0] = Gk
    gam[:, 0, 1:] = -xp.conj(a) * Gk[:, None]
    gam[:, 1:, 0] = -xp.conj(b) * Gk[:, None]
    gam[:, 1:, 1:] = xp.conj(b[:, :, None] * a[:, None, :]) * Gk[:, None, None]
    gam = gam.reshape(H, (r + 1) ** 2, nk)
    # Cauchy products, nodes exchanged: weights and poles
    t1 = xp.zeros((H, (r + 1) ** 2, N), dtype=cdt)
    t2 = xp.zeros_like(t1)
    if nk:
        kernels(xp, "cauchy").cauchy_square(lam, g, xp.ascontiguousarray(xp.conj(gam)), t1, t2)
    v = f["v"]
    gLam = xp.conj(v * t2).sum(axis=1)
    gv = (-xp.conj(t1)).reshape(H, r + 1, r + 1, N)
    grad_g = -(xp.conj(f["out_sq"]) * gam).sum(axis=1)
    gdt = (xp.conj(-g / dt[:, None].astype(cdt)) * grad_g).real.sum(axis=1)
    u, w = f["u"], f["w"]
    gu = (xp.conj(w)[:, None, :, :] * gv).sum(axis=2)
    gw = (xp.conj(u)[:, :, None, :] * gv).sum(axis=1)
    gCt = gu[:, 0]
    gP = xp.conj(gu[:, 1:]) + gw[:, 1:]
    gB = gw[:, 0]
    gK = xp.zeros(H, dtype=real_dtype(cdt))
    if L % 2 == 0:
        gm = Ghat[:, L // 2]
        gCt = gCt + xp.conj(Kh[:, None] * B) * gm[:, None]
        gB = gB + xp.conj(Kh[:, None] * Ct) * gm[:, None]
        gK = gK + (xp.conj((Ct * B).sum(axis=1)) * gm).real
    # C~ = C - C A_bar^L
    A, Minv, Abar = f["A"], f["Minv"], f["Abar"]
    E = -xp.conj(C)[:, :, None] * gCt[:, None, :]
    MH, GAbar = _pair_power(xp, xp.conj(Abar.transpose(0, 2, 1)), E, L)
    gC = gCt - xp.matmul(gCt[:, None, :], MH)[:, 0]
    eye = xp.eye(N, dtype=cdt)
    GE = xp.matmul(xp.matmul(xp.conj(Minv.transpose(0, 2, 1)), GAbar),
                   xp.conj((eye + Abar).transpose(0, 2, 1)))
    Kd = (dt / 2).astype(cdt)[:, None, None]
    GA = Kd * GE
    gK = gK + (xp.conj(GE) * A).real.sum(axis=(1, 2))
    diag = xp.arange(N)
    gLam = gLam + GA[:, diag, diag]
    gP = gP - xp.matmul(P, (GA + xp.conj(GA.transpose(0, 2, 1))).transpose(0, 2, 1))
    gdt = gdt + gK / 2
    return gLam, gP, gB, gC, gdt
