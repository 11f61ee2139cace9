"""Mamba's selective scan (the S6 layer): a diagonal state space recurrence whose step ``dt``,
input matrix ``B`` and output matrix ``C`` vary with time, and its VJP.

For each channel ``c`` of ``d`` and state ``k`` of ``n`` (``x_{-1} = 0``)::

    dt_t  = softplus(delta_t + delta_bias_c)          (without softplus: delta_t + delta_bias_c)
    x_t   = exp(dt_t A[c, k]) x_{t-1} + dt_t B_t[k] u_t
    y_t   = sum_k C_t[k] x_t                           (2 Re of it when A is complex)
    out_t = (y_t + D_c u_t) * silu(z_t)                (without z: y_t + D_c u_t)

with the shapes and semantics of ``selective_scan_fn`` of ``mamba_ssm``
(``mamba_ssm/ops/selective_scan_interface.py``; its ``selective_scan_ref`` is the reference the
tests transcribe).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._backend import (
    as_kernel_array,
    flatten_batch,
    grad_as,
    kernels,
    real_dtype,
    restore_batch,
    result_dtype,
)
from structlin._validate import ABSENT, check_bool, check_finite, check_int, prepare

__all__ = ["selective_scan", "selective_scan_vjp"]

#: the largest state size ``n`` accepted (Mamba uses 16; the kernels keep ``n`` states per task)
MAX_STATE = 1 << 12

_COMPLEX_OF = {np.dtype(np.float32): np.dtype(np.complex64),
               np.dtype(np.float64): np.dtype(np.complex128)}


def _layout(name: str, M: Any, u_shape: tuple, d: int, n: int, complex_A: bool) -> tuple:
    """Classify ``B`` or ``C``: ``("fixed", 1)`` for ``(d, n)``; ``("varying", g)`` for
    ``(*batch, n, L)`` (g = 1) or ``(*batch, g, n, L)``; ``interleaved`` when a real array of
    length ``2 l`` holds complex values as (re, im) pairs (complex A)."""
    batch, l = tuple(u_shape[:-2]), u_shape[-1]
    nd = len(u_shape)
    shape = tuple(M.shape)
    if M.ndim == 2:
        if shape != (d, n):
            raise ValueError(
                f"{name} must have shape {(d, n)} (time-invariant: (d, n) of A), or "
                f"{(*batch, n, l)} / {(*batch, 'g', n, l)} (time-varying); got {shape}")
        return "fixed", 1, False
    if M.ndim not in (nd, nd + 1):
        raise ValueError(
            f"{name} must have {2}, {nd} or {nd + 1} dimensions for u of shape {tuple(u_shape)}: "
            f"(d, n), (*batch, n, l) or (*batch, g, n, l); got shape {shape}")
    g = 1 if M.ndim == nd else shape[-3]
    # a real time-varying B/C with a complex A holds (re, im) pairs, as in selective_scan_ref
    pairs = complex_A and M.dtype.kind != "c"
    L = 2 * l if pairs else l
    expected = (*batch, n, L) if M.ndim == nd else (*batch, g, n, L)
    if shape[:len(batch)] != batch or shape[-2] != n or shape[-1] != L or (
            M.ndim == nd + 1 and (g < 1 or d % g != 0)):
        extra = ""
        if M.ndim == nd + 1 and (g < 1 or d % g):
            extra = f"; the number of groups g = {g} must divide d = {d}"
        elif pairs:
            extra = (f"; with a complex A a real {name} holds (re, im) pairs, last axis "
                     f"2 l = {2 * l}")
        raise ValueError(f"{name} must have shape {expected} (u has shape {tuple(u_shape)}, A "
                         f"{(d, n)}){extra}; got {shape}")
    return "varying", g, pairs


def _prepare(u, delta, A, B, C, D, z, delta_bias, grad=ABSENT) -> Any:
    p = prepare(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias, grad=grad,
                dtype_of=("u", "delta", "A", "B", "C", "D", "z", "delta_bias"),
                optional=("D", "z", "delta_bias"))
    for name in ("u", "delta", "D", "z", "delta_bias", "grad"):
        a = getattr(p, name)
        if a is not None and a.dtype.kind == "c":
            raise TypeError(f"{name} must be real (only A, B and C may be complex), got "
                            f"dtype {a.dtype}")
    if p.u.ndim < 3:
        raise ValueError(f"u must have shape (batch, d, l) (any leading batch dimensions), got "
                         f"a {p.u.ndim}-d array of shape {tuple(p.u.shape)}")
    d, l = p.u.shape[-2:]
    check_int(l, "the sequence length l (last axis of u)", maximum=1 << 34)
    for name in ("delta", "z", "grad"):
        a = getattr(p, name)
        if a is not None and tuple(a.shape) != tuple(p.u.shape):
            raise ValueError(f"{name} must have the shape of u, {tuple(p.u.shape)}, got "
                             f"{tuple(a.shape)}")
    if p.A.ndim != 2 or p.A.shape[0] != d:
        raise ValueError(f"A must have shape (d, n) with d = {d} (axis -2 of u, of shape "
                         f"{tuple(p.u.shape)}), got {tuple(p.A.shape)}")
    n = p.A.shape[1]
    check_int(n, "the state size n (columns of A)", minimum=1, maximum=MAX_STATE)
    for name in ("D", "delta_bias"):
        a = getattr(p, name)
        if a is not None and tuple(a.shape) != (d,):
            raise ValueError(f"{name} must have shape {(d,)} (one value per channel of u), got "
                             f"{tuple(a.shape)}")
    complex_A = p.A.dtype.kind == "c"
    for name in ("B", "C"):
        if getattr(p, name).dtype.kind == "c" and not complex_A:
            raise TypeError(f"{name} is complex ({getattr(p, name).dtype}) but A is real "
                            f"({p.A.dtype}): a complex B or C needs a complex A")
    lay_B = _layout("B", p.B, tuple(p.u.shape), d, n, complex_A)
    lay_C = _layout("C", p.C, tuple(p.u.shape), d, n, complex_A)
    for name in ("A", "D", "delta_bias"):
        if getattr(p, name) is not None:
            check_finite(getattr(p, name), name)
    for name, lay in (("B", lay_B), ("C", lay_C)):
        if lay[0] == "fixed":
            check_finite(getattr(p, name), name)
    return p, lay_B, lay_C


def _dtypes(p: Any) -> tuple[np.dtype, np.dtype]:
    """(real compute dtype, state dtype)."""
    r = real_dtype(p.dtype)
    return r, (_COMPLEX_OF[r] if p.A.dtype.kind == "c" else r)


def _bc_kernel(xp: Any, M: Any, lay: tuple, nb: int, d: int, n: int, l: int, r: Any,
               s: Any) -> Any:
    """``B`` or ``C`` in the kernels' layout ``(bB, gB, lB, n)`` of the state dtype."""
    kind, g, interleaved = lay
    if kind == "fixed":
        return as_kernel_array(xp, M, s).reshape(1, d, 1, n)
    if interleaved:
        M = as_kernel_array(xp, M, r).view(s)
    M = M.reshape(nb, g, n, l)
    return xp.ascontiguousarray(M.transpose(0, 1, 3, 2), dtype=s)


def _kernel_inputs(p: Any, lay_B: tuple, lay_C: tuple) -> tuple:
    xp = p.xp
    r, s = _dtypes(p)
    *batch, d, l = p.u.shape
    n = p.A.shape[1]
    u2, _ = flatten_batch(as_kernel_array(xp, p.u, r), 2)
    nb = u2.shape[0]
    delta2 = as_kernel_array(xp, p.delta, r).reshape(nb, d, l)
    has_z = p.z is not None
    z2 = as_kernel_array(xp, p.z, r).reshape(nb, d, l) if has_z else u2
    D2 = as_kernel_array(xp, p.D, r) if p.D is not None else xp.zeros(d, dtype=r)
    b2 = as_kernel_array(xp, p.delta_bias, r) if p.delta_bias is not None else \
        xp.zeros(d, dtype=r)
    A2 = as_kernel_array(xp, p.A, s)
    B4 = _bc_kernel(xp, p.B, lay_B, nb, d, n, l, r, s)
    C4 = _bc_kernel(xp, p.C, lay_C, nb, d, n, l, r, s)
    return u2, delta2, A2, B4, C4, D2, z2, b2, has_z, tuple(batch), r, s


def selective_scan(u: Any, delta: Any, A: Any, B: Any, C: Any, D: Any = None, z: Any = None,
                   delta_bias: Any = None, delta_softplus: bool = False,
                   return_last_state: bool = False) -> Any:
    """Return the output of Mamba's selective scan (and its last state if asked).

    The semantics and shapes of ``mamba_ssm``'s ``selective_scan_fn`` (see the module
    docstring for the recurrence), on NumPy or CuPy arrays, with leading batch dimensions.

    Parameters
    ----------
    u : array_like, shape (batch, d, l)
        The input, ``d`` channels of length ``l``; any number of leading batch dimensions
        ``(*batch, d, l)``. Real.
    delta : array_like, shape like u
        The step sizes before the bias and softplus. Real.
    A : array_like, shape (d, n)
        The diagonal state matrix of each channel, real or complex.
    B, C : array_like
        Input and output matrices, in one of three layouts: time-invariant ``(d, n)``; shared
        by all channels ``(*batch, n, l)``; or grouped ``(*batch, g, n, l)``, channel ``c``
        using group ``c // (d // g)`` (``g`` must divide ``d``). With a complex ``A``, a
        complex time-varying B/C is accepted, and, as in ``selective_scan_ref``, a real one of
        last axis ``2 l`` holds the complex values as (re, im) pairs. A real ``A`` needs real
        B and C.
    D : array_like, shape (d,), optional
        The skip connection: ``out += D[c] u``.
    z : array_like, shape like u, optional
        The gate: the output is multiplied by ``silu(z) = z / (1 + exp(-z))``.
    delta_bias : array_like, shape (d,), optional
        Added to ``delta`` (per channel) before the softplus.
    delta_softplus : bool, default False
        Apply ``softplus`` to ``delta + delta_bias``.
    return_last_state : bool, default False
        Also return the state ``x`` after the last step.

    Returns
    -------
    out : ndarray, shape like u
        Real, of the real dtype of the inputs' promotion (float32 for float32 / complex64
        inputs).
    last_state : ndarray, shape (*batch, d, n)
        Only if ``return_last_state``: the final state, complex when ``A`` is.

    Raises
    ------
    ValueError
        Shapes that disagree (the message names the argument, the expected and the given
        shape), ``g`` not dividing ``d``, non-finite ``A``, ``D``, ``delta_bias`` or
        time-invariant ``B`` / ``C``; on the GPU, more than 16 states.
    TypeError
        A complex ``u``, ``delta``, ``D``, ``z`` or ``delta_bias``; a complex B or C with a
        real A; non-numeric arrays; NumPy and CuPy arrays mixed; a non-bool flag.

    See Also
    --------
    selective_scan_vjp : the gradients for every argument.

    Notes
    -----
    The CPU kernel runs one fused pass, in parallel over ``(batch, channel)``: the ``n``
    states of a block of channels live in a small per-thread buffer, ``exp(dt A)`` is
    evaluated in the kernel for each step and state by a branch-free vectorized exponential,
    and softplus, bias, ``D`` and the ``silu`` gate are fused; nothing of size
    ``b d l n`` is formed (``selective_scan_ref`` materialises ``exp(delta A)`` and
    ``delta B u`` of that size). Cost ``O(b d l n)`` time, ``O(b d l + b d n)`` memory. NaN or
    inf in ``u``, ``delta``, ``z`` or a batch row of B/C stays in its rows. The recurrence
    does not require ``Re A < 0``; an unstable channel overflows to inf. The GPU kernel
    (CuPy input: one thread per channel, the states in registers, at most ``n = 16`` states,
    a ``ValueError`` above) is unverified on a device.

    References
    ----------
    A. Gu and T. Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
    arXiv:2312.00752 (2023).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.selective_scan import selective_scan
    >>> rng = np.random.default_rng(0)
    >>> b, d, l, n = 2, 4, 10, 3
    >>> u, delta = rng.standard_normal((b, d, l)), rng.standard_normal((b, d, l))
    >>> A = -np.exp(rng.standard_normal((d, n)))
    >>> B, C = rng.standard_normal((b, n, l)), rng.standard_normal((b, n, l))
    >>> out, last = selective_scan(u, delta, A, B, C, delta_softplus=True,
    ...                            return_last_state=True)
    >>> out.shape, last.shape
    ((2, 4, 10), (2, 4, 3))

    The recurrence, step by step, for one channel:

    >>> dt = np.log1p(np.exp(delta[0, 1]))
    >>> x, ys = np.zeros(n), []
    >>> for t in range(l):
    ...     x = np.exp(dt[t] * A[1]) * x + dt[t] * u[0, 1, t] * B[0, :, t]
    ...     ys.append(x @ C[0, :, t])
    >>> bool(np.allclose(out[0, 1], ys)) and bool(np.allclose(last[0, 1], x))
    True
    """
    delta_softplus = check_bool(delta_softplus, "delta_softplus")
    return_last_state = check_bool(return_last_state, "return_last_state")
    p, lay_B, lay_C = _prepare(u, delta, A, B, C, D, z, delta_bias)
    xp = p.xp
    u2, delta2, A2, B4, C4, D2, z2, b2, has_z, batch, r, s = _kernel_inputs(p, lay_B, lay_C)
    nb, d, l = u2.shape
    n = A2.shape[1]
    out = xp.empty((nb, d, l), dtype=r)
    last = xp.zeros((nb, d, n), dtype=s)
    kernels(xp, "selective_scan").scan(u2, delta2, A2, B4, C4, D2, z2, b2, delta_softplus,
                                       has_z, out, last)
    out = restore_batch(out, batch)
    if return_last_state:
        return out, restore_batch(last, batch)
    return out


def _bc_grad(xp: Any, G4: Any, M: Any, lay: tuple, batch: tuple) -> Any:
    """The gradient of ``B`` or ``C`` in the user's layout and dtype from the kernels'."""
    kind, _, interleaved = lay
    if kind == "fixed":
        G = G4.reshape(M.shape)
    else:
        _, gg, l, n = G4.shape
        G = xp.ascontiguousarray(G4.transpose(0, 1, 3, 2))
        if interleaved:
            G = G.view(real_dtype(G.dtype))
            l = 2 * l
        G = G.reshape((*batch, n, l) if M.ndim == len(batch) + 2 else (*batch, gg, n, l))
    return grad_as(xp, G, result_dtype(a=M))


def selective_scan_vjp(u: Any, delta: Any, A: Any, B: Any, C: Any, grad: Any, D: Any = None,
                       z: Any = None, delta_bias: Any = None,
                       delta_softplus: bool = False) -> tuple:
    """Return the gradients of :func:`selective_scan` for the cotangent ``grad`` of its output.

    Parameters
    ----------
    u, delta, A, B, C, D, z, delta_bias, delta_softplus
        As for :func:`selective_scan`.
    grad : array_like, shape like u
        The cotangent of the output (real). The last state's gradient is not part of the
        VJP, as in ``mamba_ssm``.

    Returns
    -------
    tuple of 8 arrays
        ``(du, ddelta, dA, dB, dC, dD, dz, ddelta_bias)``, each of its argument's shape and
        dtype (float32 stays float32); ``None`` for ``D``, ``z``, ``delta_bias`` when they
        were not given. Complex gradients follow PyTorch's convention
        (``dL/dRe + 1j dL/dIm``); for a real B/C of (re, im) pairs, the gradient of each pair.

    Raises
    ------
    ValueError, TypeError
        As for :func:`selective_scan`; ``grad`` of another shape than ``u``.

    See Also
    --------
    selective_scan

    Notes
    -----
    The reverse-time adjoint recurrence ``h_t = C_t go_t + exp(dt_{t+1} A) h_{t+1}``
    (``go`` the cotangent after the gate), on the same fused kernels: the forward states are
    checkpointed every 64 steps in per-thread memory (``O(n l / 64)`` per channel), and each
    chunk is recomputed from its checkpoint before being walked backwards (dividing by
    ``exp(dt A)`` to run the recurrence backwards is unstable). The gradients of B and C
    (shared by channels) and of A, D and delta_bias (shared by the batch) are summed in
    one buffer per parallel part, then added: no two threads write the same memory. Cost
    about three forward passes; memory ``O(b d l + b d n + threads * (|B| + |C| + d n))``.
    On the GPU (CuPy input) the shared gradients are accumulated with atomic additions
    (unverified on a device).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.selective_scan import selective_scan, selective_scan_vjp
    >>> rng = np.random.default_rng(1)
    >>> u, delta = rng.standard_normal((1, 2, 6)), rng.standard_normal((1, 2, 6))
    >>> A, B, C = -np.ones((2, 3)), rng.standard_normal((1, 3, 6)), rng.standard_normal((1, 3, 6))
    >>> g = rng.standard_normal((1, 2, 6))
    >>> du, ddelta, dA, dB, dC, dD, dz, dbias = selective_scan_vjp(u, delta, A, B, C, g,
    ...                                                            delta_softplus=True)
    >>> dA.shape, dB.shape, dD is None
    ((2, 3), (1, 3, 6), True)
    >>> e = np.zeros_like(u); e[0, 1, 2] = 1e-6
    >>> f = lambda v: np.sum(g * selective_scan(v, delta, A, B, C, delta_softplus=True))
    >>> bool(np.isclose((f(u + e) - f(u - e)) / 2e-6, du[0, 1, 2]))
    True
    """
    delta_softplus = check_bool(delta_softplus, "delta_softplus")
    if grad is None:
        raise TypeError("grad must be an array of numbers (an ndarray, a list or a scalar), "
                        "got None")
    p, lay_B, lay_C = _prepare(u, delta, A, B, C, D, z, delta_bias, grad)
    xp = p.xp
    u2, delta2, A2, B4, C4, D2, z2, b2, has_z, batch, r, s = _kernel_inputs(p, lay_B, lay_C)
    nb, d, l = u2.shape
    g2 = as_kernel_array(xp, p.grad, r).reshape(nb, d, l)
    gu = xp.empty((nb, d, l), dtype=r)
    gdelta = xp.empty((nb, d, l), dtype=r)
    gz = xp.empty((nb, d, l), dtype=r) if has_z else xp.empty((1, 1, 1), dtype=r)
    gA = xp.empty(A2.shape, dtype=s)
    gB = xp.empty(B4.shape, dtype=s)
    gC = xp.empty(C4.shape, dtype=s)
    gD = xp.empty(d, dtype=r)
    gbias = xp.empty(d, dtype=r)
    kernels(xp, "selective_scan").scan_vjp(u2, delta2, A2, B4, C4, D2, z2, b2, delta_softplus,
                                           has_z, g2, gu, gdelta, gA, gB, gC, gD, gz, gbias)

    def like(gr, arg):
        return grad_as(xp, gr, result_dtype(a=arg))

    return (like(restore_batch(gu, batch), p.u),
            like(restore_batch(gdelta, batch), p.delta),
            like(gA, p.A),
            _bc_grad(xp, gB, p.B, lay_B, batch),
            _bc_grad(xp, gC, p.C, lay_C, batch),
            like(gD, p.D) if p.D is not None else None,
            like(restore_batch(gz, batch), p.z) if has_z else None,
            like(gbias, p.delta_bias) if p.delta_bias is not None else None)
