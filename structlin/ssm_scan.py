"""The diagonal state-space recurrence (S4D's scan): ``ssm_scan``, its VJP and ``ssm_step``.

For each channel ``h`` a diagonal complex system of ``N`` modes, discretized with step
``dt[h]`` (:func:`structlin.discretize`), runs over the sequence ``u[..., h, :]``::

    x_t = A_bar x_{t-1} + B_bar u_t,      y_t = 2 Re(C . x_t) + D u_t

(``2 Re``: the ``N`` modes stand for ``N`` conjugate pairs of a real system of size ``2N``, as
in S4D). The output is the causal convolution of ``u`` with the kernel
``K[h, l] = 2 Re sum_n C[h, n] B_bar[h, n] A_bar[h, n]^l`` (:func:`structlin.ssm_kernel_diag`),
plus ``D u``; the scan computes it in ``O(L N)`` per channel with an ``O(N)`` state, where the
convolution needs ``O(L log L)`` and the whole kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._backend import as_kernel_array, grad_as, kernels, real_dtype
from structlin._validate import (
    ABSENT,
    check_bool,
    check_choice,
    check_finite,
    check_min_ndim,
    check_shape,
    prepare,
)
from structlin.ssm_hippo import _arrays, _discretize_diag_grad

__all__ = ["ssm_scan", "ssm_scan_vjp", "ssm_step"]

#: discretizations of the scans
SCAN_METHODS = ("zoh", "bilinear")


def _complex_of(rd: np.dtype) -> np.dtype:
    return np.dtype(np.complex64 if rd == np.float32 else np.complex128)


def _prepare(Lambda, B, C, dt, u, D, state, method, g=ABSENT, *, u_name="u", step=False):
    method = check_choice(method, "method", SCAN_METHODS)
    # the input under its parameter's name (u_t for ssm_step), so that the seam's errors (an
    # object array, a CuPy array among NumPy ones) name it; the code below reads it as p.u
    arrays = {"Lambda": Lambda, "B": B, "C": C, "dt": dt, u_name: u, "D": D, "state": state,
              "grad": g}
    dtype_of = ("Lambda", "B", "C", "dt", "u", "D", "state")
    p = prepare(**arrays, dtype_of=tuple(u_name if n == "u" else n for n in dtype_of),
                optional=("D", "state"))
    if u_name != "u":  # the same converted arrays (no copies), the input's field renamed u
        p = prepare(**{("u" if k == u_name else k): v for k, v in p._asdict().items()
                       if k not in ("xp", "dtype")}, dtype_of=dtype_of,
                    optional=("D", "state", "grad"))
    p = _arrays(p)
    if p.Lambda.ndim != 2:
        raise ValueError(f"Lambda must have shape (H, N), got {tuple(p.Lambda.shape)}")
    H, N = p.Lambda.shape
    if N < 1:
        raise ValueError(f"Lambda must have at least one mode (N >= 1), got shape {(H, N)}")
    check_shape(p.B, (H, N), "B", "Lambda's shape (H, N)")
    check_shape(p.C, (H, N), "C", "Lambda's shape (H, N)")
    if p.dt.shape not in ((), (H,)):
        raise ValueError(f"dt must have shape ({H},) (one step per channel of Lambda) or be a "
                         f"scalar, got {tuple(p.dt.shape)}")
    for name in ("dt", "u", "D", "grad"):
        a = getattr(p, name)
        if a is not None and a.dtype.kind == "c":
            raise TypeError(f"{u_name if name == 'u' else name} must be real, got dtype "
                            f"{a.dtype}")
    if step:
        check_min_ndim(p.u, 1, u_name, "(..., H)")
        if p.u.shape[-1] != H:
            raise ValueError(f"{u_name} must have shape (..., {H}) (H from Lambda of shape "
                             f"{(H, N)}), got {tuple(p.u.shape)}")
        batch = tuple(p.u.shape[:-1])
        L = 1
    else:
        check_min_ndim(p.u, 2, u_name, "(..., H, L)")
        if p.u.shape[-2] != H:
            raise ValueError(f"{u_name} must have shape (..., {H}, L) (H from Lambda of shape "
                             f"{(H, N)}), got {tuple(p.u.shape)}")
        batch = tuple(p.u.shape[:-2])
        L = p.u.shape[-1]
    if p.D is not None:
        check_shape(p.D, (H,), "D", "one skip weight per channel")
    if p.state is not None:
        check_shape(p.state, (*batch, H, N), "state",
                    f"the batch dimensions of {u_name}, then Lambda's (H, N)")
    if p.grad is not None:
        check_shape(p.grad, tuple(p.u.shape), "grad", f"the output's shape, that of {u_name}")
    for name in ("Lambda", "B", "C", "dt", "D"):
        a = getattr(p, name)
        if a is not None:
            check_finite(a, name)
    if p.dt.size and bool((p.dt <= 0).any()):
        raise ValueError(f"dt must be positive, got a minimum of {float(p.dt.min())}")
    if bool((p.Lambda.real > 0).any()):
        raise ValueError(
            "Lambda must have non-positive real parts (a stable or marginally stable system): "
            f"the largest is {float(p.Lambda.real.max())}, whose state grows like "
            "exp(Re(Lambda) dt t) and overflows"
        )
    rd = real_dtype(p.dtype)
    return p, method, H, N, L, batch, rd, _complex_of(rd)


def _discretized(p, method, H, N, derivatives=False):
    """float64 discretization and its derivatives (``O(H N)``, done once per call)."""
    xp = p.xp
    # contiguous copies: NumPy's exp rounds differently on strided data, and every memory
    # layout of the inputs must give the same result
    lam = xp.ascontiguousarray(p.Lambda, dtype=np.complex128)
    h = xp.ascontiguousarray(xp.broadcast_to(xp.asarray(p.dt, dtype=np.float64), (H,)))[:, None]
    parts = _discretize_diag_grad(lam, h, method, xp, derivatives=derivatives)
    return lam, h, parts


def _kernel_inputs(p, parts, H, N, L, batch, rd, cd, u2d):
    xp = p.xp
    Ab, E = parts[0], parts[1]
    Bw = xp.ascontiguousarray(p.B, dtype=np.complex128)
    ab = xp.ascontiguousarray(Ab, dtype=cd)
    bb = xp.ascontiguousarray(E * Bw, dtype=cd)
    c = as_kernel_array(xp, p.C, cd)
    d = (xp.zeros(H, rd) if p.D is None else as_kernel_array(xp, p.D, rd))
    R = int(np.prod(batch, dtype=np.int64)) * H
    u2 = as_kernel_array(xp, u2d, rd).reshape(R, L)
    if p.state is None:
        x0 = xp.zeros((R, N), cd)
    else:
        x0 = as_kernel_array(xp, p.state, cd).reshape(R, N)
    return ab, bb, c, d, u2, x0, R


def ssm_scan(Lambda: Any, B: Any, C: Any, dt: Any, u: Any, *, method: str = "zoh",
             D: Any = None, state: Any = None, return_state: bool = False) -> Any:
    """Return the output ``y`` (..., H, L) of the diagonal state-space recurrence on ``u``.

    Parameters
    ----------
    Lambda : array_like, shape (H, N)
        Continuous-time diagonal state matrices (one row per channel), complex (real
        accepted), finite, with ``Re(Lambda) <= 0``.
    B, C : array_like, shape (H, N)
        Input and output vectors (complex or real).
    dt : array_like, shape (H,) or scalar
        Positive steps, one per channel.
    u : array_like, shape (..., H, L)
        Real input sequences: any leading batch dimensions, channels, time.
    method : {"zoh", "bilinear"}, optional
        The discretization (:func:`structlin.discretize`): zero-order hold (default),
        ``A_bar = exp(dt Lambda)``, ``B_bar = (A_bar - 1) / Lambda * B``; or bilinear.
    D : array_like, shape (H,), optional
        Skip weights: ``+ D u_t``.
    state : array_like, shape (..., H, N), optional
        Initial state ``x_{-1}`` (complex; default zero).
    return_state : bool, optional
        Also return the final state ``x_{L-1}``.

    Returns
    -------
    y : ndarray, shape (..., H, L), real
        ``y_t = 2 Re(sum_n C x_t) + D u_t``. Dtype: the real dtype of NumPy's promotion of
        the inputs (complex64 parameters with a float32 ``u`` give float32).
    final_state : ndarray, shape (..., H, N), complex
        Only with ``return_state`` (then ``(y, final_state)``); complex64 for single
        precision. ``ssm_scan(..., u2, state=final_state)`` continues the sequence.

    Raises
    ------
    ValueError
        Shapes that disagree (the argument and both shapes named), non-finite ``Lambda``,
        ``B``, ``C``, ``dt`` or ``D``, ``dt <= 0``, ``Re(Lambda) > 0`` (an unstable system:
        its state grows exponentially; ``Re(Lambda) == 0`` is accepted, marginally stable),
        unknown ``method``.
    TypeError
        Non-numeric arrays, complex ``u``, ``dt`` or ``D``, NumPy mixed with CuPy.

    See Also
    --------
    ssm_scan_vjp : gradients for every array argument.
    ssm_step : one step of recurrent inference.
    structlin.ssm_kernel_diag : the convolution kernel of the same system.
    discretize, s4d_init

    Notes
    -----
    The discretization is done once per call in float64 (``O(H N)``); then one pass over the
    sequence per ``(batch, channel)`` row, in parallel over the rows, with the ``N``-mode
    state in the row's own small arrays: ``8 N`` flops per step, ``O(batch H L N)`` in all,
    nothing of size ``L N`` stored, ``u`` read and ``y`` written once. Against
    ``fftconv(u, K)`` (``O(L log L)`` per row once the kernel ``K`` exists), measured on 2
    shared cores at (batch, H, N) = (4, 256, 32), complex64 parameters, float32 ``u``, ``K``
    given: the convolution is 2.7x faster at ``L = 64``, the two tie at ``L = 256``, and the
    scan is 1.5x-1.8x faster from ``L = 1024`` to 16384 (the FFT's cost per step grows with
    ``log L``, the scan's is ``8 N`` flops); building ``K`` costs more than either. The scan
    also needs no kernel and no padding, and streams (:func:`ssm_step`).
    On CuPy arrays a CUDA kernel does the same (unverified on a GPU: compiled by NVRTC and run
    in a host emulator only). Gu, Gupta, Goel, Ré, S4D, arXiv:2206.11893.

    References
    ----------
    .. [1] A. Gu, A. Gupta, K. Goel, C. Ré, "On the Parameterization and Initialization of
       Diagonal State Space Models", NeurIPS 2022, arXiv:2206.11893.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import ssm_scan
    >>> Lam = np.array([[-0.5 + 1j]]); B = np.array([[1.0 + 0j]]); C = np.array([[0.5 + 0j]])
    >>> y = ssm_scan(Lam, B, C, np.array([0.1]), np.array([[1.0, 0.0, 0.0]]))
    >>> Ab = np.exp(0.1 * Lam[0, 0]); Bb = (Ab - 1) / Lam[0, 0]
    >>> bool(np.allclose(y, [[2 * (0.5 * Bb * Ab**k).real for k in range(3)]]))
    True
    """
    return_state = check_bool(return_state, "return_state")
    p, method, H, N, L, batch, rd, cd = _prepare(Lambda, B, C, dt, u, D, state, method)
    _, _, parts = _discretized(p, method, H, N)
    return _run(p, parts, H, N, L, batch, rd, cd, p.u, return_state, (*batch, H, L))


def _run(p, parts, H, N, L, batch, rd, cd, u_arr, return_state, y_shape):
    xp = p.xp
    ab, bb, c, d, u2, x0, R = _kernel_inputs(p, parts, H, N, L, batch, rd, cd, u_arr)
    y = xp.empty((R, L), rd)
    xT = xp.empty((R, N), cd)
    if R:
        kernels(xp, "ssm_scan").scan(ab, bb, c, d, u2, x0, y, xT)
    y = y.reshape(y_shape)
    if return_state:
        return y, xT.reshape((*batch, H, N))
    return y


def ssm_step(Lambda: Any, B: Any, C: Any, dt: Any, u_t: Any, state: Any, *,
             method: str = "zoh", D: Any = None) -> tuple[Any, Any]:
    """Return ``(y_t, new_state)``: one step of the recurrence of :func:`ssm_scan`.

    Parameters
    ----------
    Lambda, B, C, dt, method, D
        As for :func:`ssm_scan`.
    u_t : array_like, shape (..., H)
        The input at one time step, real.
    state : array_like, shape (..., H, N)
        The state before the step (zeros at the start of a sequence).

    Returns
    -------
    y_t : ndarray, shape (..., H), real
    new_state : ndarray, shape (..., H, N), complex
        ``new_state = A_bar state + B_bar u_t``, ``y_t = 2 Re(C . new_state) + D u_t``;
        ``L`` steps equal ``ssm_scan`` on the ``L`` inputs.

    Raises
    ------
    ValueError, TypeError
        As for :func:`ssm_scan`.

    See Also
    --------
    ssm_scan

    Notes
    -----
    The scan's kernel with ``L = 1`` (same arithmetic, so bit-identical with the scan for
    the same dtype); ``O(batch H N)`` per step, plus the ``O(H N)`` discretization.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import ssm_scan, ssm_step
    >>> Lam = np.array([[-0.5 + 1j, -1.0 + 2j]]); B = np.ones((1, 2)); C = np.ones((1, 2))
    >>> u = np.array([[1.0, -2.0, 0.5]]); dt = np.array([0.1])
    >>> x = np.zeros((1, 2), complex); ys = []
    >>> for t in range(3):
    ...     y_t, x = ssm_step(Lam, B, C, dt, u[:, t], x)
    ...     ys.append(y_t)
    >>> bool(np.allclose(np.stack(ys, -1), ssm_scan(Lam, B, C, dt, u)))
    True
    """
    if state is None:
        raise TypeError("state must be an array of numbers (an ndarray, a list or a scalar), "
                        "got None (start with zeros of shape (..., H, N))")
    p, method, H, N, _, batch, rd, cd = _prepare(Lambda, B, C, dt, u_t, D, state, method,
                                                u_name="u_t", step=True)
    _, _, parts = _discretized(p, method, H, N)
    y, xT = _run(p, parts, H, N, 1, batch, rd, cd, p.u[..., None], True, (*batch, H))
    return y, xT


def ssm_scan_vjp(Lambda: Any, B: Any, C: Any, dt: Any, u: Any, grad: Any, *,
                 method: str = "zoh", D: Any = None, state: Any = None) -> tuple:
    """Return the gradients of :func:`ssm_scan` for the output gradient ``grad``.

    Parameters
    ----------
    Lambda, B, C, dt, u, method, D, state
        As for :func:`ssm_scan`.
    grad : array_like, shape (..., H, L), real
        Gradient of a real loss with respect to ``y = ssm_scan(...)``.

    Returns
    -------
    grad_Lambda, grad_B, grad_C : ndarray, shape (H, N)
    grad_dt : ndarray, shape of ``dt``
    grad_u : ndarray, shape (..., H, L)
    grad_D : ndarray, shape (H,)
        Only when ``D`` is given.
    grad_state : ndarray, shape (..., H, N)
        Only when ``state`` is given (after ``grad_D`` when both are).

        Complex arguments get PyTorch's convention ``dl/dRe + 1j dl/dIm``, real ones the real
        gradient; single precision in, single precision out.

    Raises
    ------
    ValueError, TypeError
        As for :func:`ssm_scan`, and ``grad`` of another shape than ``u`` or complex.

    See Also
    --------
    ssm_scan

    Notes
    -----
    The reverse-time adjoint ``lam_t = 2 g_t conj(C) + conj(A_bar) lam_{t+1}`` is itself a
    diagonal scan: the forward kernel runs on ``grad`` reversed in time with the parameters
    ``(conj(A_bar), 2 conj(C), conj(B_bar) / 2, D)`` and gives ``grad_u_t =
    Re(conj(B_bar) . lam_t) + D g_t`` and, as its final state, ``lam_0`` (``grad_state =
    conj(A_bar) lam_0``). The sums over time that the parameters need,
    ``sum_t lam_t conj(x_{t-1})`` and ``sum_t lam_t u_t``, are reordered into forward sums of
    the sensitivities ``dx_t/dA_bar`` and ``dx_t/dB_bar`` (two more complex states per mode,
    one more forward pass): the states are neither stored nor recomputed backwards, the
    memory is ``O(batch H N)`` plus the ``O(batch H L)`` output and one reversed copy of
    ``grad`` (never ``batch H N L``). Then the chain rule through the discretization, in
    float64 (``O(H N)``). Measured on 2 cores at (batch, H, N, L) = (4, 256, 32, 4096),
    complex64: about 4 forward scans. On CuPy arrays the same algorithm runs as CUDA kernels
    (unverified on a GPU: NVRTC and the host emulator only).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import ssm_scan, ssm_scan_vjp
    >>> Lam = np.array([[-0.5 + 1j]]); B = np.ones((1, 1), complex); C = np.ones((1, 1), complex)
    >>> u = np.array([[1.0, 2.0, -1.0]]); dt = np.array([0.2]); g = np.ones((1, 3))
    >>> gL, gB, gC, gdt, gu = ssm_scan_vjp(Lam, B, C, dt, u, g)
    >>> loss = lambda s: ssm_scan(Lam, B, C, np.array([s]), u).sum()
    >>> bool(np.isclose(gdt[0], (loss(0.2 + 1e-6) - loss(0.2 - 1e-6)) / 2e-6))
    True
    """
    p, method, H, N, L, batch, rd, cd = _prepare(Lambda, B, C, dt, u, D, state, method, grad)
    xp = p.xp
    ks = kernels(xp, "ssm_scan")
    _, _, parts = _discretized(p, method, H, N, derivatives=True)
    _, E, dA_dL, dA_dh, dE_dL, dE_dh = parts
    ab, bb, c, d, u2, x0, R = _kernel_inputs(p, parts, H, N, L, batch, rd, cd, p.u)
    g2 = as_kernel_array(xp, p.grad, rd).reshape(R, L)
    gu = xp.empty((R, L), rd)
    gab = xp.empty((R, N), cd)
    gbb = xp.empty((R, N), cd)
    gc = xp.empty((R, N), cd)
    gd = xp.empty(R, rd)
    gx0 = xp.empty((R, N), cd)
    if R:
        ks.scan_vjp(ab, bb, c, d, u2, x0, g2, gu, gab, gbb, gc, gd, gx0)
    nb = R // H if H else 0
    Ga = gab.reshape(nb, H, N).sum(axis=0, dtype=np.complex128)
    Gb = gbb.reshape(nb, H, N).sum(axis=0, dtype=np.complex128)
    Gc = gc.reshape(nb, H, N).sum(axis=0, dtype=np.complex128)
    Bw = xp.ascontiguousarray(p.B, dtype=np.complex128)
    g_lam = Ga * xp.conj(dA_dL) + Gb * xp.conj(Bw * dE_dL)
    g_B = Gb * xp.conj(E)
    g_h = xp.real(xp.conj(Ga) * dA_dh + xp.conj(Gb) * Bw * dE_dh).sum(axis=-1)
    if p.dt.ndim == 0:
        g_h = g_h.sum()

    def like(g, arg):
        return grad_as(xp, g, cd if arg.dtype.kind == "c" else rd)

    out = [like(g_lam, p.Lambda), like(g_B, p.B), like(Gc, p.C),
           grad_as(xp, g_h, rd).reshape(p.dt.shape),
           gu.reshape(p.u.shape)]
    if p.D is not None:
        out.append(grad_as(xp, gd.reshape(nb, H).sum(axis=0, dtype=np.float64), rd))
    if p.state is not None:
        out.append(like(gx0, p.state).reshape(p.state.shape))
    return tuple(out)
