"""Mamba-2's state space duality (SSD): the chunked scan of a selective SSM whose state
transition is a scalar per step and head, equal to a product with a semiseparable matrix.

For one batch row and head, with ``x_t`` of length ``p`` (the head dimension), ``b_t`` and
``c_t`` of length ``n`` (the state size) and a log-decay ``a_t``::

    S_t = exp(a_t) S_{t-1} + x_t b_t^T          (S_t of shape (p, n), S_{-1} = initial state)
    y_t = S_t c_t

which is ``y = M x`` with the semiseparable ``M[t, s] = (c_t . b_s) exp(a_{s+1} + ... + a_t)``
for ``t >= s`` (:func:`structlin.semiseparable_to_dense`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._backend import as_kernel_array, kernels
from structlin._validate import ABSENT, check_bool, check_int, check_shape, prepare

__all__ = ["ssd", "ssd_vjp"]

#: largest chunk size accepted (a chunk longer than the sequence is the sequence)
MAX_CHUNK = 1 << 24


def _real(p: Any, names: str) -> np.dtype:
    dt = np.dtype(p.dtype)
    if dt.kind == "c":
        raise TypeError(
            f"{names} must be real: the SSD scan is implemented for real (float32, float64) "
            f"data, got the complex dtype {dt}"
        )
    return dt


def _prepare(X: Any, A: Any, B: Any, C: Any, chunk_size: Any, initial_states: Any,
             grad: Any = ABSENT, grad_final_states: Any = ABSENT) -> tuple:
    p = prepare(X=X, A=A, B=B, C=C, initial_states=initial_states, grad=grad,
                grad_final_states=grad_final_states,
                dtype_of=("X", "A", "B", "C", "initial_states"),
                optional=("initial_states", "grad_final_states"))
    dt = _real(p, "X, A, B, C and initial_states")
    if p.X.ndim != 4:
        raise ValueError(
            f"X must have shape (batch, length, heads, head_dim), got shape {tuple(p.X.shape)}")
    nb, l, h, hp = p.X.shape
    check_shape(p.A, (nb, l, h), "A", "(batch, length, heads) like X")
    if p.B.ndim != 4 or p.B.shape[:2] != (nb, l):
        raise ValueError(
            f"B must have shape (batch, length, groups, state) = ({nb}, {l}, g, n) like X's "
            f"first two axes, got shape {tuple(p.B.shape)}")
    g, n = p.B.shape[2], p.B.shape[3]
    if g < 1 or h % g:
        raise ValueError(
            f"B's groups (axis 2, {g}) must divide X's heads ({h}): head k uses group "
            f"k // (heads // groups)")
    check_shape(p.C, tuple(p.B.shape), "C", "B's shape (batch, length, groups, state)")
    if p.initial_states is not None:
        check_shape(p.initial_states, (nb, h, hp, n), "initial_states",
                    "(batch, heads, head_dim, state)")
    chunk = check_int(chunk_size, "chunk_size", minimum=1, maximum=MAX_CHUNK)
    return p, dt, min(chunk, max(l, 1))


def _swap(xp: Any, s: Any) -> Any:
    """A state ``(..., p, n)`` in the kernels' layout ``(..., n, p)`` or back (a copy)."""
    return xp.ascontiguousarray(xp.swapaxes(s, -1, -2))


def _scan(xp: Any, x: Any, a: Any, b: Any, c: Any, s0: Any, chunk: int, reverse: int) -> tuple:
    """``(y, s_final)`` of the kernel ``chunk_scan`` on kernel arrays (``s0`` and ``s_final``
    in the kernels' layout ``(nb, h, n, p)``)."""
    nb, l, h, hp = x.shape
    y = xp.empty_like(x)
    s_final = xp.empty((nb, h, b.shape[3], hp), dtype=x.dtype)
    if l == 0 or nb == 0 or h == 0:
        s_final[...] = s0
        return y, s_final
    kernels(xp, "ssd").chunk_scan(x, a, b, c, s0, chunk, reverse, y, s_final)
    return y, s_final


def _forward(xp: Any, x: Any, a: Any, b: Any, c: Any, s0: Any, chunk: int) -> tuple:
    """``(y, s_final)`` of the forward scan on kernel arrays (``s0`` None: zeros; states in
    the public ``(p, n)`` layout)."""
    nb, _, h, hp = x.shape
    n = b.shape[3]
    s0k = xp.zeros((nb, h, n, hp), dtype=x.dtype) if s0 is None else _swap(xp, s0)
    y, s_final = _scan(xp, x, a, b, c, s0k, chunk, 0)
    return y, _swap(xp, s_final)


def _per_head(xp: Any, t: Any, h: int) -> Any:
    """A ``(nb, l, g, n)`` group array repeated to ``(nb, l, h, n)``."""
    g = t.shape[2]
    return t if g == h else xp.ascontiguousarray(xp.repeat(t, h // g, axis=2))


def _backward(xp: Any, x: Any, a: Any, b: Any, c: Any, s0: Any, chunk: int, g: Any,
              g_final: Any) -> tuple:
    """``(gx, ga, gb, gc, gs0)`` of ``sum <g, y> + <g_final, s_final>`` on kernel arrays.

    Four runs of the one chunked scan, the roles of its arguments exchanged (``S`` the forward
    states, ``R_t = g_t c_t^T + exp(a_{t+1}) R_{t+1}`` the adjoint states, ``R_l = g_final``):

    - forward ``(x, b, c)``: ``y`` (for ``ga``) and the final state;
    - reverse ``(g, c, b)``: the states ``R^T``, ``gx_t = R_t b_t`` and ``R_0`` (``gs0``);
    - forward ``(b, x, g)``: the states ``S^T``, so ``gc_t = S_t^T g_t``;
    - reverse ``(c, g, x)``: the states ``R^T``, so ``gb_t = R_t^T x_t``.

    ``ga`` needs no scan of its own: ``ga_t = sum_{s >= t} (g_s . y_s - x_s . gx_s) +
    <g_final, s_final>`` (from ``<R_t, S_t> = g_t . y_t + ga_{t+1}`` and
    ``ga_t = <R_t, S_t> - x_t . gx_t``).
    """
    nb, l, h, hp = x.shape
    ng, n = b.shape[2], b.shape[3]
    dt = x.dtype
    zeros_np = xp.zeros((nb, h, n, hp), dtype=dt)
    zeros_pn = xp.zeros((nb, h, hp, n), dtype=dt)
    s0k = zeros_np if s0 is None else _swap(xp, s0)
    gfk = zeros_np if g_final is None else _swap(xp, g_final)
    y, s_final = _scan(xp, x, a, b, c, s0k, chunk, 0)
    gx, lam0 = _scan(xp, g, a, c, b, gfk, chunk, 1)
    bh, ch = _per_head(xp, b, h), _per_head(xp, c, h)
    gc_h, _ = _scan(xp, bh, a, x, g, zeros_pn if s0 is None else s0, chunk, 0)
    gb_h, _ = _scan(xp, ch, a, g, x, zeros_pn if g_final is None else g_final, chunk, 1)
    gb = gb_h.reshape(nb, l, ng, h // ng, n).sum(axis=3)
    gc = gc_h.reshape(nb, l, ng, h // ng, n).sum(axis=3)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf in a row with an inf
        # the local terms of ga in the data's precision, their reverse cumsum in float64
        local = (xp.einsum("blhp,blhp->blh", g, y)
                 - xp.einsum("blhp,blhp->blh", x, gx)).astype(np.float64)
        ga = xp.flip(xp.cumsum(xp.flip(local, axis=1), axis=1), axis=1)
        if g_final is not None:
            ga = ga + (gfk.astype(np.float64) * s_final).sum(axis=(2, 3))[:, None, :]
    ga = xp.ascontiguousarray(ga.astype(dt))
    gs0 = None
    if s0 is not None:
        decay = xp.exp(a[:, 0, :]) if l else xp.ones((nb, h), dtype=dt)
        gs0 = _swap(xp, decay[:, :, None, None] * lam0)
    return gx, ga, gb.astype(dt, copy=False), gc.astype(dt, copy=False), gs0


def _kernel_args(p: Any, dt: np.dtype) -> tuple:
    xp = p.xp
    conv = [as_kernel_array(xp, getattr(p, name), dt) for name in ("X", "A", "B", "C")]
    s0 = None if p.initial_states is None else as_kernel_array(xp, p.initial_states, dt)
    return (*conv, s0)


def ssd(X: Any, A: Any, B: Any, C: Any, chunk_size: Any, initial_states: Any = None,
        return_final_states: bool = False) -> Any:
    """Return the outputs of the SSD scan (Mamba-2) of ``X`` by chunks of ``chunk_size``.

    Parameters
    ----------
    X : array_like, shape (batch, length, heads, head_dim)
        Inputs ``x_t`` (in Mamba-2, ``x * dt``).
    A : array_like, shape (batch, length, heads)
        Log-decays ``a_t`` (in Mamba-2, ``A * dt``, non-positive): the state is multiplied by
        ``exp(a_t)`` at step ``t``.
    B, C : array_like, shape (batch, length, groups, state)
        Input and output projections ``b_t``, ``c_t``; ``groups`` divides ``heads`` and head
        ``k`` uses group ``k // (heads // groups)`` (``groups = heads``: one per head).
    chunk_size : int
        Steps per chunk, at least 1; any value (not only powers of two, not only divisors of
        ``length``; larger than ``length`` is one chunk). It changes the speed, not the result
        (up to rounding).
    initial_states : array_like, shape (batch, heads, head_dim, state), optional
        ``S_{-1}``; zeros by default.
    return_final_states : bool, optional
        Also return the state after the last step.

    Returns
    -------
    Y : ndarray, shape (batch, length, heads, head_dim)
        ``y_t = S_t c_t`` with ``S_t = exp(a_t) S_{t-1} + x_t b_t^T``.
    final_states : ndarray, shape (batch, heads, head_dim, state)
        ``S_{length-1}``, only with ``return_final_states=True`` (then a tuple).

    Dtype: NumPy's promotion of the inputs (float32 stays float32); real only.

    Raises
    ------
    ValueError
        Shapes that do not match (the argument and both shapes named), ``chunk_size < 1``.
    TypeError
        Complex or non-numeric arrays, a non-integral ``chunk_size``, NumPy mixed with CuPy.

    See Also
    --------
    ssd_vjp : gradients for every array argument.
    semiseparable_multiply : the same product for one head given as ``(A, B, C)``.
    semiseparable_to_dense : the matrix ``M`` of the quadratic (attention-like) form.

    Notes
    -----
    The chunked SSD algorithm of Dao and Gu (arXiv:2405.21060, section 6; the semantics of
    ``ssd_minimal_discrete`` in ``mamba_ssm/modules/ssd_minimal.py``): per chunk of ``q``
    steps, the diagonal block ``(L o C B^T) X`` with ``L[i, j] = exp(u_i - u_j)`` (``u`` the
    cumulative sum of ``a`` *inside the chunk*, so that ``exp`` sees non-positive arguments
    for ``a <= 0`` and a chunk of any size gives no overflow or NaN) and the chunk's state
    are GEMMs, parallel over batch x heads x chunks; the states are passed between chunks by
    a short recurrence per head; each chunk's output from its entering state is one more
    GEMM. Cost ``O(length (q (n + p) + n p))`` flops per head and ``O(length / q * p n)``
    memory for the chunk states: the ``length x length`` matrix and the per-step states
    never exist. On CuPy arrays CUDA kernels do the same (unverified on a GPU: compiled by
    NVRTC and run in a host emulator only).

    A step ``a_t = -inf`` (or below -110 in float32, -800 in float64, where ``exp`` is
    already exactly 0) is clamped there before the cumulative sums, so that a reset of the
    state gives no ``-inf - -inf``. Precision: the decays are differences of cumulative sums
    inside one chunk, so their absolute error in the exponent is about ``eps`` times the
    chunk's total log-decay (smaller chunks for very strong decays in float32). A positive
    ``a_t`` (a growing state) is computed as written and may overflow to inf in its own batch
    row and head; rows never mix.

    References
    ----------
    .. [1] T. Dao, A. Gu, "Transformers are SSMs: Generalized Models and Efficient Algorithms
       Through Structured State Space Duality", ICML 2024, arXiv:2405.21060.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import ssd, semiseparable_to_dense
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((1, 10, 2, 3))
    >>> A = -rng.uniform(0, 1, (1, 10, 2))
    >>> B, C = rng.standard_normal((2, 1, 10, 2, 4))
    >>> Y = ssd(X, A, B, C, chunk_size=3)
    >>> M = semiseparable_to_dense(A[0, :, 1], B[0, :, 1], C[0, :, 1])   # head 1
    >>> bool(np.allclose(Y[0, :, 1], M @ X[0, :, 1]))
    True
    """
    p, dt, chunk = _prepare(X, A, B, C, chunk_size, initial_states)
    back = check_bool(return_final_states, "return_final_states")
    x, a, b, c, s0 = _kernel_args(p, dt)
    y, s_final = _forward(p.xp, x, a, b, c, s0, chunk)
    return (y, s_final) if back else y


def ssd_vjp(X: Any, A: Any, B: Any, C: Any, chunk_size: Any, grad: Any,
            initial_states: Any = None, grad_final_states: Any = None) -> tuple:
    """Return the gradients of :func:`ssd` for the output gradient ``grad``.

    Parameters
    ----------
    X, A, B, C, chunk_size, initial_states : array_like, int
        As for :func:`ssd`.
    grad : array_like, shape (batch, length, heads, head_dim)
        Gradient of a real loss with respect to ``Y``.
    grad_final_states : array_like, shape (batch, heads, head_dim, state), optional
        Gradient with respect to the final states (when the loss uses them).

    Returns
    -------
    grad_X : ndarray, shape of X
    grad_A : ndarray, shape of A
    grad_B, grad_C : ndarray, shape of B
        Summed over the heads that share a group.
    grad_initial_states : ndarray, shape of initial_states
        Only when ``initial_states`` is given (then a 5-tuple).

    Raises
    ------
    ValueError, TypeError
        As for :func:`ssd`, and ``grad`` or ``grad_final_states`` of the wrong shape.

    See Also
    --------
    ssd : the scan.

    Notes
    -----
    Four runs of the same chunked scan kernel, with the roles of the arguments exchanged: the
    forward scan (``Y``, ``S_final``); the state adjoint ``R_t = g_t c_t^T + exp(a_{t+1})
    R_{t+1}``, the same scan run backwards on ``(grad, C, B)``, giving ``grad_X_t = R_t b_t``;
    the forward scan of ``(B, X, grad)`` whose states are ``S_t^T``, giving
    ``grad_C_t = S_t^T g_t``; the backward scan of ``(C, grad, X)``, giving
    ``grad_B_t = R_t^T x_t``. ``grad_A_t = sum_{s >= t} (g_s . y_s - x_s . grad_X_s) +
    <grad_final, S_final>`` needs no scan of its own (its reverse cumulative sum is
    accumulated in float64). Cost: four forward scans.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import ssd, ssd_vjp
    >>> rng = np.random.default_rng(1)
    >>> X, B, C = rng.standard_normal((1, 6, 1, 2)), *rng.standard_normal((2, 1, 6, 1, 3))
    >>> A = -rng.uniform(0, 1, (1, 6, 1))
    >>> G = rng.standard_normal(X.shape)
    >>> gX, gA, gB, gC = ssd_vjp(X, A, B, C, 4, G)
    >>> d = rng.standard_normal(A.shape) * 1e-6        # a directional finite difference
    >>> fd = ((ssd(X, A + d, B, C, 4) - ssd(X, A - d, B, C, 4)) * G).sum() / 2
    >>> bool(abs(fd - (gA * d).sum()) < 1e-9)
    True
    """
    p, dt, chunk = _prepare(X, A, B, C, chunk_size, initial_states, grad=grad,
                            grad_final_states=grad_final_states)
    xp = p.xp
    check_shape(p.grad, tuple(p.X.shape), "grad", "X's shape (batch, length, heads, head_dim)")
    x, a, b, c, s0 = _kernel_args(p, dt)
    g = as_kernel_array(xp, p.grad, dt)
    gf = None
    if p.grad_final_states is not None:
        nb, _, h, hp = p.X.shape
        check_shape(p.grad_final_states, (nb, h, hp, p.B.shape[3]), "grad_final_states",
                    "(batch, heads, head_dim, state)")
        gf = as_kernel_array(xp, p.grad_final_states, dt)
    gx, ga, gb, gc, gs0 = _backward(xp, x, a, b, c, s0, chunk, g, gf)
    if s0 is None:
        return gx, ga, gb, gc
    return gx, ga, gb, gc, gs0
