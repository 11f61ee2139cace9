"""Diagonal state-space (S4D) convolution kernels and H3's chunked scan with state passing.

Part of the ``ssm`` family (importable from here and from :mod:`structlin.conv`): the kernels
are fused Vandermonde products (:mod:`structlin.vandermonde`'s kernels), the chunked scan uses
the long-convolution engine :func:`structlin.fftconv`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._backend import (
    as_kernel_array,
    flatten_batch,
    grad_like,
    kernels,
    real_dtype,
    restore_batch,
)
from structlin._validate import (
    check_bool,
    check_choice,
    check_finite,
    check_int,
    check_min_ndim,
    check_shape,
    prepare,
)
from structlin.conv_fft import _check_length, fftconv, fftconv_plan
from structlin.ssm_hippo import _exp_expm1

__all__ = [
    "ssm_conv_chunked",
    "ssm_kernel",
    "ssm_kernel_diag",
    "ssm_kernel_diag_vjp",
    "ssm_kernel_vjp",
]

#: the discretizations of :func:`ssm_kernel_diag`
METHODS = ("zoh", "bilinear")
#: longest kernel (``L``) accepted
MAX_LENGTH = 1 << 34
#: chunk length from which :func:`ssm_conv_chunked` forms its state terms by the fused
#: Vandermonde kernels instead of power tables and BLAS (measured on 2 cores, batch 4-8,
#: H = 32-128: chunk 64 tables 39 ms against 84 ms; chunk 256 tables 163 ms against 130 ms;
#: chunk 1024 complex128 3.0 s against 0.19 s)
VANDERMONDE_CHUNK = 128


def _check_ssm(p) -> None:
    """Check the prepared ``A``, ``B``, ``C`` (shapes, finiteness)."""
    if p.A.ndim != 2:
        raise ValueError(f"A must have shape (H, N), got {tuple(p.A.shape)}")
    check_shape(p.B, p.A.shape, "B", "A's shape (H, N)")
    check_shape(p.C, p.A.shape, "C", "A's shape (H, N)")
    for name in ("A", "B", "C"):
        check_finite(getattr(p, name), name)


def _powers(xp, A, e0: int, n: int, dtype):
    """``A[..., None] ** (e0 + arange(n))`` in ``dtype``, shape (H, N, n) (the exponents in
    ``dtype``'s real precision: integer exponents would promote float32 to float64)."""
    return A.astype(dtype)[..., None] ** xp.arange(e0, e0 + n, dtype=real_dtype(dtype))


def ssm_kernel(A: Any, B: Any, C: Any, L: int) -> Any:
    """Return the convolution kernel ``k[h, j] = sum_n C[h, n] A[h, n]**j B[h, n]`` (H, L).

    Parameters
    ----------
    A : array_like, shape (H, N)
        Diagonal of each channel's discrete state matrix (complex in S4D).
    B, C : array_like, shape (H, N)
        Input and output vectors of each channel.
    L : int
        Kernel length.

    Returns
    -------
    ndarray, shape (H, L)
        The impulse response of ``x[t] = A x[t-1] + B u[t]``, ``y[t] = C . x[t]`` (sum over
        ``n``, no conjugation), with the promoted dtype of ``A``, ``B``, ``C``. S4D's real
        kernel with conjugate pairs is ``2 * ssm_kernel(...).real``.

    Raises
    ------
    ValueError
        If the shapes differ, an input is not finite or ``L < 1``.
    TypeError
        If an input is not numeric (named) or ``L`` is not an integer.

    See Also
    --------
    ssm_kernel_diag : the S4D kernel from the continuous parameters.
    ssm_kernel_vjp : its gradients.
    structlin.vandermonde.matmul_vandermonde : the product it is.

    Notes
    -----
    A Vandermonde product, ``k[h] = V(A[h]) (C[h] B[h])``, computed by the fused kernel of
    :func:`structlin.vandermonde.matmul_vandermonde`: ``O(H N L)`` multiply-adds, powers by
    multiplication re-anchored every 16 steps, ``O(H (N + L))`` memory (the ``H x N x L``
    powers are never formed) (Gu et al., S4D, arXiv:2206.11893).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import ssm_kernel
    >>> ssm_kernel(np.array([[0.5]]), np.array([[1.0]]), np.array([[2.0]]), 4)
    array([[2.  , 1.  , 0.5 , 0.25]])
    """
    p = prepare(A=A, B=B, C=C)
    _check_ssm(p)
    L = check_int(L, "L", minimum=1, maximum=MAX_LENGTH)
    return _ssm_kernel(p.xp, p.A, p.B, p.C, L, p.dtype)


def _ssm_kernel(xp: Any, A: Any, B: Any, C: Any, L: int, dt: Any) -> Any:
    """:func:`ssm_kernel` on checked ``(H, N)`` arrays: one fused Vandermonde product."""
    x = as_kernel_array(xp, A, dt)
    v = xp.ascontiguousarray(C.astype(dt) * B.astype(dt))
    out = xp.empty((x.shape[0], L), dtype=dt)
    kernels(xp, "vandermonde").vandermonde(x, v, out)
    return out


def ssm_kernel_vjp(A: Any, B: Any, C: Any, L: int, grad: Any) -> tuple[Any, Any, Any]:
    """Return the gradients ``(gA, gB, gC)`` of a real loss through :func:`ssm_kernel`, given its
    gradient ``grad`` (H, L) with respect to the kernel.

    Parameters
    ----------
    A, B, C : array_like, shape (H, N)
        As for :func:`ssm_kernel`.
    L : int
        Kernel length.
    grad : array_like, shape (H, L)
        The gradient with respect to ``ssm_kernel(A, B, C, L)``.

    Returns
    -------
    gA, gB, gC : ndarray, shape (H, N)
        In each argument's dtype (the real part for a real argument); complex gradients in
        PyTorch's convention ``dl/dRe z + 1j dl/dIm z``.

    Raises
    ------
    ValueError, TypeError
        As :func:`ssm_kernel`, and ``grad`` of the wrong shape.

    See Also
    --------
    ssm_kernel, structlin.vandermonde.matmul_vandermonde_vjp

    Notes
    -----
    The kernel is ``V(A) (C B)`` row by row, so the gradients are the Vandermonde product's
    (two fused transposed products, ``O(H N L)``): ``g(CB) = V(conj A)^T grad``,
    ``gB = g(CB) conj(C)``, ``gC = g(CB) conj(B)``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import ssm_kernel_vjp
    >>> gA, gB, gC = ssm_kernel_vjp([[0.5]], [[1.0]], [[2.0]], 3, np.ones((1, 3)))
    >>> gA, gB, gC   # k = 2 (1, a, a**2): dk/da . 1 = 2 (1 + 2a), dk/dB . 1 = 2 (1 + a + a**2)
    (array([[4.]]), array([[3.5]]), array([[1.75]]))
    """
    from structlin.vandermonde import matmul_vandermonde_vjp

    p = prepare(A=A, B=B, C=C, grad=grad, dtype_of=("A", "B", "C"))
    _check_ssm(p)
    L = check_int(L, "L", minimum=1, maximum=MAX_LENGTH)
    xp, dt = p.xp, p.dtype
    check_shape(p.grad, (int(p.A.shape[0]), L), "grad", "the kernel's shape (H, L)")
    Bd, Cd = p.B.astype(dt), p.C.astype(dt)
    gA, gv = matmul_vandermonde_vjp(p.A.astype(dt), Cd * Bd, L, p.grad.astype(dt))
    conj = xp.conj if np.dtype(dt).kind == "c" else (lambda a: a)
    return (grad_like(xp, gA, p.A), grad_like(xp, gv * conj(Cd), p.B),
            grad_like(xp, gv * conj(Bd), p.C))


def ssm_conv_chunked(
    u: Any,
    A: Any,
    B: Any,
    C: Any,
    chunk: int,
    D: Any = None,
    *,
    state: Any = None,
    return_state: bool = False,
) -> Any:
    """Return ``fftconv(u, ssm_kernel(A, B, C, L), D)``, computed chunk by chunk with a state.

    Parameters
    ----------
    u : array_like, shape (..., H, L)
        Input.
    A, B, C : array_like, shape (H, N)
        The diagonal SSM, as for :func:`ssm_kernel`.
    chunk : int
        Chunk length: each chunk is convolved with the ``chunk``-long kernel by
        :func:`fftconv`, and the state carries the earlier chunks' contribution.
    D : array_like, shape (H,), optional
        Skip weight.
    state : array_like, shape (..., H, N), optional
        The SSM state left by the inputs before ``u`` (zero when None): passing the state
        returned for one piece of a signal continues the convolution on the next piece.
    return_state : bool, default False
        Also return the state after ``u``.

    Returns
    -------
    y : ndarray, shape (..., H, L)
        Equal (up to rounding) to the one-shot causal ``fftconv`` with the full-length kernel
        (of the whole signal, when ``state`` carries its earlier pieces), in the promoted
        dtype of all inputs.
    state : ndarray, shape (..., H, N)
        Only when ``return_state``: ``x[n] = sum_s A^(L-1-s) B u[s]`` plus ``A^L`` times the
        initial state.

    Raises
    ------
    ValueError
        Bad shapes (including ``state``), ``chunk < 1``, ``L = 0``.
    TypeError
        An input that is not numeric (named), ``chunk`` not an integer, ``return_state`` not
        a bool, NumPy and CuPy arrays mixed.

    Notes
    -----
    FlashConv's state passing (H3, Fu et al., arXiv:2212.14052): for the chunk starting at
    ``s0`` and ``x[n] = sum_{s < s0} A^(s0-1-s) B u[s]`` the state after the earlier chunks,
    ``y[s0 + tau] = (k_chunk * u_chunk)[tau] + sum_n C A^(tau+1) x[n]``, and the state moves
    on by ``x <- A^c x + sum_tau A^(c-1-tau) B u[s0 + tau]``. From ``chunk = 128`` both
    state terms are fused Vandermonde products in ``A`` over the ``batch x H`` rows (the
    kernels of :func:`structlin.vandermonde.matmul_vandermonde`: no table of powers, memory
    ``O(batch H (N + chunk))``); shorter chunks use ``(H, N, chunk)`` power tables and one
    batched matrix product (BLAS) per chunk, cheaper there. Either way the cost per chunk is
    one length-``chunk`` FFT convolution plus ``O(batch H N chunk)``, and the kernel never
    needs the full length.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fftconv, ssm_conv_chunked, ssm_kernel
    >>> rng = np.random.default_rng(0)
    >>> A = 0.9 * np.exp(1j * rng.uniform(0, np.pi, (3, 4)))
    >>> B, C = rng.standard_normal((2, 3, 4))
    >>> u = rng.standard_normal((2, 3, 100))
    >>> y = ssm_conv_chunked(u, A, B, C, chunk=32)
    >>> bool(np.allclose(y, fftconv(u, ssm_kernel(A, B, C, 100))))
    True
    >>> y1, x1 = ssm_conv_chunked(u[..., :60], A, B, C, 32, return_state=True)
    >>> y2 = ssm_conv_chunked(u[..., 60:], A, B, C, 32, state=x1)
    >>> bool(np.allclose(np.concatenate([y1, y2], axis=-1), y))
    True
    """
    p = prepare(u=u, A=A, B=B, C=C, D=D, state=state, optional=("D", "state"))
    _check_ssm(p)
    xp, dt, A = p.xp, p.dtype, p.A
    check_min_ndim(p.u, 2, "u", "(..., H, L)")
    H, L = int(p.u.shape[-2]), int(p.u.shape[-1])
    _check_length(L, "u")
    if int(A.shape[0]) != H:
        raise ValueError(
            f"A, B, C must have H = {H} rows (u's channels), got shape {tuple(A.shape)}"
        )
    chunk = min(check_int(chunk, "chunk", minimum=1), L)
    return_state = check_bool(return_state, "return_state")
    N = int(A.shape[1])
    if p.state is not None:
        check_shape(p.state, (*p.u.shape[:-1], N), "state",
                    "u's batch and channels, then A's N")
    kc = _ssm_kernel(xp, A, p.B, p.C, chunk, dt)
    plan = fftconv_plan(kc, chunk, dtype=dt)
    u3, batch = flatten_batch(as_kernel_array(xp, p.u, dt), 2)
    nb = int(u3.shape[0])
    y = xp.empty(u3.shape, dtype=dt)
    if p.state is None:
        x = None
    else:
        x = as_kernel_array(xp, p.state, dt).reshape((nb, H, N))
    Ad = A.astype(dt)
    if chunk < VANDERMONDE_CHUNK:
        x = _chunks_by_tables(xp, u3, y, x, Ad, p.B, p.C, p.D, plan, chunk, dt)
    else:
        x = _chunks_by_vandermonde(xp, u3, y, x, Ad, p.B, p.C, p.D, plan, chunk, dt)
    y = restore_batch(y, batch)
    if return_state:
        if x is None:  # (no chunk ran: L >= 1 always runs one)
            x = xp.zeros((*p.u.shape[:-1], N), dtype=dt)
        return y, x.reshape((*p.u.shape[:-1], N))
    return y


def _chunks_by_tables(xp, u3, y, x, Ad, B, C, D, plan, chunk, dt):
    """The chunk loop of :func:`ssm_conv_chunked` for short chunks: both state terms are
    batched matrix products with the ``(H, N, chunk)`` power tables (small for short chunks,
    where one BLAS call per chunk costs less than the Vandermonde kernels' setup)."""
    nb, H, L = (int(s) for s in u3.shape)
    N = int(Ad.shape[1])
    # pout[h, n, tau] = C A^(tau+1); pin[h, tau, n] = B A^(chunk-1-tau)
    pout = C.astype(dt)[..., None] * _powers(xp, Ad, 1, chunk, dt)
    pin = xp.flip(B.astype(dt)[..., None] * _powers(xp, Ad, 0, chunk, dt), axis=-1)
    pin = xp.ascontiguousarray(xp.swapaxes(pin, -1, -2))
    x = xp.zeros((nb, H, 1, N), dtype=dt) if x is None else x.reshape((nb, H, 1, N))
    for s0 in range(0, L, chunk):
        c = min(chunk, L - s0)
        uc = u3[..., s0:s0 + c]
        yc = fftconv(uc, plan, D)
        yc += (x @ pout[..., :c])[:, :, 0, :]
        y[..., s0:s0 + c] = yc
        x = (Ad ** c)[None, :, None, :] * x + uc[:, :, None, :] @ pin[:, chunk - c:, :]
    return x.reshape((nb, H, N))


def _chunks_by_vandermonde(xp, u3, y, x, Ad, B, C, D, plan, chunk, dt):
    """The chunk loop of :func:`ssm_conv_chunked` for long chunks: both state terms are fused
    Vandermonde products in ``A`` on the ``batch x H`` rows, no power tables:
    ``y += V(A) (C A x)`` over the chunk and ``x <- A^c x + B V(A)^T flip(u_chunk)``."""
    nb, H, L = (int(s) for s in u3.shape)
    N = int(Ad.shape[1])
    k = kernels(xp, "vandermonde")
    rows = nb * H
    nodes = xp.ascontiguousarray(xp.broadcast_to(Ad, (nb, H, N)).reshape(rows, N))
    CA = C.astype(dt) * Ad
    Bd = B.astype(dt)
    for s0 in range(0, L, chunk):
        c = min(chunk, L - s0)
        uc = u3[..., s0:s0 + c]
        yc = fftconv(uc, plan, D)
        if x is not None:
            ys = xp.empty((rows, c), dtype=dt)
            k.vandermonde(nodes, xp.ascontiguousarray((CA * x).reshape(rows, N)), ys)
            yc += ys.reshape(nb, H, c)
        y[..., s0:s0 + c] = yc
        t = xp.empty((rows, N), dtype=dt)
        k.vandermonde_t(nodes, xp.ascontiguousarray(uc[..., ::-1]).reshape(rows, c), t)
        t = Bd * t.reshape(nb, H, N)
        x = t if x is None else (Ad ** c) * x + t
    return x


# ----------------------------------------------------------------------------- S4D kernel


def _phi1(xp: Any, z: Any) -> Any:
    """``(exp(z) - 1) / z`` (1 at 0)."""
    zero = z == 0
    safe = xp.where(zero, 1.0, z)
    return xp.where(zero, 1.0, _exp_expm1(xp, safe)[1] / safe)


def _dphi1(xp: Any, z: Any, A: Any, phi: Any) -> Any:
    """``d/dz (exp(z) - 1) / z = (exp(z) - phi1(z)) / z``, by its series for ``|z| < 1/2``
    (where that difference cancels): ``sum_k (k + 1) z**k / (k + 2)!``."""
    small = xp.abs(z) < 0.5
    safe = xp.where(small, 1.0, z)
    big = (A - phi) / safe
    ser = xp.zeros_like(z)
    fact = 1.0
    terms = []
    for k in range(20):
        fact *= (k + 2) if k else 2.0
        terms.append((k + 1) / fact)
    for c in reversed(terms):
        ser = ser * z + c
    return xp.where(small, ser, big)


def _prepare_diag(Lambda, B, C, dt, L, method, grad=None):
    p = prepare(Lambda=Lambda, B=B, C=C, dt=dt, grad=grad, dtype_of=("Lambda", "B", "C", "dt"),
                optional=("grad",))
    xp = p.xp
    method = check_choice(method, "method", METHODS)
    L = check_int(L, "L", minimum=1, maximum=MAX_LENGTH)
    check_min_ndim(p.Lambda, 2, "Lambda", "(..., H, N)")
    shape = tuple(p.Lambda.shape)
    check_shape(p.B, shape, "B", f"Lambda's shape {shape}")
    check_shape(p.C, shape, "C", f"Lambda's shape {shape}")
    check_shape(p.dt, shape[:-1], "dt", f"one step per channel: Lambda's shape {shape} "
                f"without its last axis")
    if np.dtype(p.dt.dtype).kind == "c":
        raise TypeError(f"dt must be real (a step size per channel), got dtype {p.dt.dtype}")
    check_finite(p.Lambda, "Lambda")
    if not bool((p.dt > 0).all()):
        raise ValueError("dt must be positive and finite (a step size per channel), got "
                         f"min {float(xp.min(p.dt)) if p.dt.size else 0.0}")
    if p.Lambda.size and bool((p.Lambda.real > 0).any()):
        # the family's one rule (ssm_scan, ssm_kernel_dplr too): Re(Lambda) = 0 is marginally
        # stable and accepted (HiPPO LegT, LagT, Fourier), Re(Lambda) > 0 is refused
        raise ValueError(
            "Lambda must have non-positive real parts (a stable or marginally stable system): "
            f"the largest is {float(xp.max(p.Lambda.real)):g}, whose modes grow like "
            "exp(Re(Lambda) dt l); parametrize Re(Lambda) = -exp(w) to keep it stable")
    cdt = np.result_type(p.dtype, np.complex64)
    return p, xp, np.dtype(cdt), L, method


def _discretize_diag(xp, Lam, dt, method):
    """``(z, A_bar, beta, dA/dLambda, dA/ddt, dbeta/dLambda, dbeta/ddt)`` in complex128, with
    ``B_bar = beta B`` and ``z = log A_bar`` (``dt Lambda`` for ZOH)."""
    Lam = Lam.astype(np.complex128)
    d = dt.astype(np.float64)[..., None]
    z = d * Lam
    if method == "zoh":
        A = xp.exp(z)
        phi = _phi1(xp, z)
        dphi = _dphi1(xp, z, A, phi)
        return z, A, d * phi, d * A, Lam * A, d * d * dphi, A
    q = 1.0 - 0.5 * z
    A = (1.0 + 0.5 * z) / q
    with np.errstate(divide="ignore", invalid="ignore"):
        zl = xp.log(A)
    q2 = q * q
    return zl, A, d / q, d / q2, Lam / q2, d * d / (2.0 * q2), 1.0 / q2


def ssm_kernel_diag(
    Lambda: Any, B: Any, C: Any, dt: Any, L: int, *, method: str = "zoh"
) -> Any:
    """Return S4D's real convolution kernel ``K[h, l] = 2 Re sum_n C[h, n] B_bar[h, n]
    A_bar[h, n]**l`` of shape (H, L).

    Parameters
    ----------
    Lambda : array_like, shape (..., H, N)
        The diagonal of each channel's continuous state matrix (one of each conjugate pair of
        modes; real part negative for decaying modes), complex.
    B, C : array_like, shape (..., H, N)
        Input and output vectors of each channel (complex; real ones are promoted).
    dt : array_like, shape (..., H)
        Step size of each channel, real and positive.
    L : int
        Kernel length.
    method : {"zoh", "bilinear"}, default "zoh"
        The discretization: ZOH ``A_bar = exp(dt Lambda)``, ``B_bar = (A_bar - 1) / Lambda B``
        (``dt B`` at ``Lambda = 0``); bilinear ``A_bar = (1 + dt Lambda / 2) / (1 - dt Lambda
        / 2)``, ``B_bar = dt B / (1 - dt Lambda / 2)``.

    Returns
    -------
    ndarray, shape (..., H, L)
        Real, in the real dtype of the inputs' precision (complex64 in, float32 out).

    Raises
    ------
    ValueError
        Shapes that disagree (the argument and both shapes named), a non-finite ``Lambda``,
        ``Re(Lambda) > 0`` (an unstable mode; ``Re(Lambda) = 0`` is accepted, marginally
        stable, and ``Lambda = 0`` gives the ZOH limit ``2 Re(C dt B)``), ``dt`` not positive
        and finite, ``L < 1``, an unknown ``method``.
    TypeError
        A non-numeric input (named), a complex ``dt``, ``L`` not an integer, NumPy and CuPy
        arrays mixed.

    See Also
    --------
    ssm_kernel_diag_vjp : its gradients.
    ssm_kernel : the kernel of given discrete parameters.
    structlin.vandermonde.matmul_vandermonde : the Vandermonde product under it.

    Notes
    -----
    The discretization is computed in complex128 (``O(H N)``, ``expm1`` so that ``B_bar`` has
    no cancellation for small ``dt Lambda``), then the kernel is one fused Vandermonde product
    with the real part fused, ``O(H N L)`` multiply-adds and ``O(H (N + L))`` memory (never the
    ``H x N x L`` powers): the powers ``A_bar**l`` are formed by multiplication in the data's
    precision, re-anchored every 16 steps at ``exp(l z)`` computed in float64 from ``z = dt
    Lambda`` (``log A_bar`` for bilinear; see :func:`structlin.vandermonde.matmul_vandermonde`
    for the error bound), so no ``exp`` is evaluated per element and the error does not grow
    with ``l`` beyond that of ``z``'s rounding to the data's precision (``l |z| u``, the
    accuracy of the ``exp(dt Lambda l)`` of S4D's reference code in the same precision). The
    factor 2 and the real part account for the conjugate modes (Gu, Gupta, Goel and Ré,
    "On the Parameterization and Initialization of Diagonal State Space Models",
    arXiv:2206.11893).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import ssm_kernel_diag
    >>> Lam = np.array([[-0.5 + 1j]])
    >>> K = ssm_kernel_diag(Lam, [[1.0]], [[1.0]], [0.1], 4)
    >>> Abar = np.exp(0.1 * Lam); Bbar = (Abar - 1) / Lam
    >>> bool(np.allclose(K, 2 * (Bbar * Abar ** np.arange(4)).real))
    True
    """
    p, xp, cdt, L, method = _prepare_diag(Lambda, B, C, dt, L, method)
    shape = tuple(p.Lambda.shape)
    z, _, beta, *_ = _discretize_diag(xp, p.Lambda, p.dt, method)
    with np.errstate(invalid="ignore", over="ignore"):
        W = 2.0 * p.C.astype(np.complex128) * beta * p.B.astype(np.complex128)
    z2 = xp.ascontiguousarray(z.astype(cdt)).reshape(-1, shape[-1])
    W2 = xp.ascontiguousarray(W.astype(cdt)).reshape(-1, shape[-1])
    out = xp.empty((z2.shape[0], L), dtype=real_dtype(cdt))
    kernels(xp, "vandermonde").exp_vandermonde_re(z2, W2, out)
    return out.reshape((*shape[:-1], L))


def ssm_kernel_diag_vjp(
    Lambda: Any, B: Any, C: Any, dt: Any, L: int, grad: Any, *, method: str = "zoh"
) -> tuple[Any, Any, Any, Any]:
    """Return the gradients ``(gLambda, gB, gC, gdt)`` of a real loss through
    :func:`ssm_kernel_diag`, given its gradient ``grad`` with respect to the kernel.

    Parameters
    ----------
    Lambda, B, C, dt, L, method
        As for :func:`ssm_kernel_diag`.
    grad : array_like, shape (..., H, L)
        Real: the gradient with respect to ``ssm_kernel_diag(Lambda, B, C, dt, L)``.

    Returns
    -------
    gLambda, gB, gC : ndarray, shape (..., H, N)
    gdt : ndarray, shape (..., H)
        Each in its argument's dtype (single precision kept; the real part for a real
        argument); complex gradients in PyTorch's convention ``dl/dRe z + 1j dl/dIm z``.

    Raises
    ------
    ValueError, TypeError
        As :func:`ssm_kernel_diag`, and ``grad`` of the wrong shape or complex.

    See Also
    --------
    ssm_kernel_diag

    Notes
    -----
    With ``W = C B_bar`` and the two transposed Vandermonde products ``S1_n = sum_l g_l
    A_bar_n**l`` and ``S2_n = sum_l l g_l A_bar_n**(l-1)``, computed together by one fused
    kernel (the same powers, re-anchored at ``exp(l z)``), ``dK/dW = S1`` and ``dK/dA_bar =
    W S2``; the chain rule through the discretization (complex128, ``O(H N)``; the derivative
    of ``(exp(z) - 1) / z`` by its series near 0) gives ``gX = 2 conj(dK/dX)`` for the complex
    arguments and ``gdt = 2 Re sum_n dK/ddt``. Cost ``O(H N L)``, memory ``O(H (N + L))``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import ssm_kernel_diag_vjp
    >>> g = ssm_kernel_diag_vjp([[-0.5 + 1j]], [[1.0 + 0j]], [[1.0 + 0j]], [0.1], 4,
    ...                         np.ones((1, 4)))
    >>> [a.shape for a in g]
    [(1, 1), (1, 1), (1, 1), (1,)]
    """
    p, xp, cdt, L, method = _prepare_diag(Lambda, B, C, dt, L, method, grad=grad)
    if p.grad is None:
        raise TypeError("grad must be an array of numbers (an ndarray, a list or a scalar), "
                        "got None")
    shape = tuple(p.Lambda.shape)
    check_shape(p.grad, (*shape[:-1], L), "grad", "the kernel's shape (..., H, L)")
    if np.dtype(p.grad.dtype).kind == "c":
        raise TypeError(f"grad must be real (the kernel is real), got dtype {p.grad.dtype}")
    z, _, beta, dA_dL, dA_ddt, dbeta_dL, dbeta_ddt = _discretize_diag(
        xp, p.Lambda, p.dt, method)
    N = shape[-1]
    z2 = xp.ascontiguousarray(z.astype(cdt)).reshape(-1, N)
    g2 = xp.ascontiguousarray(p.grad, dtype=real_dtype(cdt)).reshape(-1, L)
    S1 = xp.empty(z2.shape, dtype=cdt)
    S2 = xp.empty(z2.shape, dtype=cdt)
    kernels(xp, "vandermonde").exp_vandermonde_t_re(z2, g2, S1, S2)
    S1 = S1.reshape(shape).astype(np.complex128)
    S2 = S2.reshape(shape).astype(np.complex128)
    Bc = p.B.astype(np.complex128)
    Cc = p.C.astype(np.complex128)
    # NaN/inf in a row's B, C or grad stay in that row (no warning: that is the contract)
    with np.errstate(invalid="ignore", over="ignore"):
        W = Cc * beta * Bc
        CB = Cc * Bc
        dW = S1
        dA = W * S2
        dC = dW * beta * Bc
        dB = dW * beta * Cc
        dL = dW * CB * dbeta_dL + dA * dA_dL
        ddt = (dW * CB * dbeta_ddt + dA * dA_ddt).sum(axis=-1)
    return (grad_like(xp, 2.0 * xp.conj(dL), p.Lambda), grad_like(xp, 2.0 * xp.conj(dB), p.B),
            grad_like(xp, 2.0 * xp.conj(dC), p.C), grad_like(xp, 2.0 * ddt.real, p.dt))
