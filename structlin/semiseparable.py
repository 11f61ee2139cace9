"""Semiseparable matrices (the matrices of selective SSMs, Mamba-2) and Hydra's
quasiseparable matrices: dense references and fast products with their VJPs.

A (scalar-decay, 1-semiseparable-in-the-decay) semiseparable matrix of order ``l`` and state
size ``n`` is given by log-decays ``A (l,)`` and ``B, C (l, n)``::

    M[i, j] = (C_i . B_j) exp(A_{j+1} + ... + A_i)     i >= j,        0 above the diagonal

(its every submatrix below the diagonal has rank at most ``n``). ``M x`` is the scan
``S_i = exp(A_i) S_{i-1} + x_i B_i^T``, ``y_i = S_i C_i``, computed by chunks
(:func:`structlin.ssd`'s kernels) in ``O(l n p)`` without forming ``M``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._backend import sum_to_shape
from structlin._validate import ABSENT, check_int, check_min_ndim, prepare
from structlin.ssd import MAX_CHUNK, _backward, _forward, _real

__all__ = [
    "quasiseparable_multiply",
    "quasiseparable_multiply_vjp",
    "quasiseparable_to_dense",
    "semiseparable_multiply",
    "semiseparable_multiply_vjp",
    "semiseparable_to_dense",
]

#: largest order of the matrix formed by the dense references
MAX_DENSE = 1 << 14


def _broadcast(xp: Any, names: tuple, arrays: tuple, cores: tuple) -> tuple:
    """The leading (batch) shape of ``arrays`` broadcast together; each array keeps its last
    ``core`` axes. Raises ValueError naming the arguments."""
    shapes = [tuple(a.shape[: a.ndim - k]) for a, k in zip(arrays, cores, strict=True)]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        desc = ", ".join(f"{nm} {tuple(a.shape)}" for nm, a in zip(names, arrays, strict=True))
        raise ValueError(
            f"the leading (batch) dimensions of {', '.join(names)} must broadcast together, "
            f"got {desc}") from None


def _check_abc(p: Any) -> tuple[int, int]:
    """Check ``A (..., l)``, ``B (..., l, n)``, ``C`` like ``B``; return ``(l, n)``."""
    A, B, C = p.A, p.B, p.C
    na, nbn, ncn = "A", "B", "C"
    check_min_ndim(A, 1, na, "(..., l)")
    check_min_ndim(B, 2, nbn, "(..., l, n)")
    check_min_ndim(C, 2, ncn, "(..., l, n)")
    l = A.shape[-1]
    if B.shape[-2] != l:
        raise ValueError(
            f"{nbn} must have shape (..., l, n) with l = {l} (the length of {na}), got "
            f"{nbn} {tuple(B.shape)} and {na} {tuple(A.shape)}")
    if C.shape[-2:] != B.shape[-2:]:
        raise ValueError(
            f"{ncn} must have shape (..., {l}, {B.shape[-1]}) like {nbn}, got {ncn} "
            f"{tuple(C.shape)} and {nbn} {tuple(B.shape)}")
    return l, B.shape[-1]


def _segsum(xp: Any, A: Any) -> Any:
    """``S[..., i, j] = A_{j+1} + ... + A_i`` for ``i >= j`` (sums of the masked values
    themselves, not differences of a cumulative sum), -inf above the diagonal."""
    l = A.shape[-1]
    low = xp.tril(xp.ones((l, l), dtype=bool), -1)
    rep = xp.where(low, A[..., :, None], 0)
    seg = xp.cumsum(rep, axis=-2)
    return xp.where(xp.tril(xp.ones((l, l), dtype=bool)), seg, -xp.inf)


def semiseparable_to_dense(A: Any, B: Any, C: Any) -> Any:
    """Return the semiseparable matrix ``M`` of log-decays ``A`` and projections ``B``, ``C``.

    Parameters
    ----------
    A : array_like, shape (..., l)
        Log-decays.
    B, C : array_like, shape (..., l, n)
        Input and output projections; the leading dimensions of ``A``, ``B`` and ``C``
        broadcast together.

    Returns
    -------
    ndarray, shape (..., l, l)
        ``M[..., i, j] = (C_i . B_j) exp(A_{j+1} + ... + A_i)`` for ``i >= j``, 0 above.
        Real only; NumPy's promotion of the inputs.

    Raises
    ------
    ValueError
        Shapes that do not match; ``l`` above :data:`MAX_DENSE`.
    TypeError
        Complex or non-numeric arrays, NumPy mixed with CuPy.

    See Also
    --------
    semiseparable_multiply : ``M x`` without forming ``M``.

    Notes
    -----
    The quadratic (attention-like) form of SSD (Dao and Gu, arXiv:2405.21060, eq. (6)):
    ``M = L o (C B^T)`` with ``L = exp(segsum(A))``; the segment sums are cumulative sums of
    the masked ``A`` (not differences of one cumulative sum), as ``segsum`` of
    ``ssd_minimal.py``. ``O(l^2 n)`` time, ``O(l^2)`` memory per matrix: a reference.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import semiseparable_to_dense
    >>> M = semiseparable_to_dense(np.log([1.0, 0.5, 0.5]), np.ones((3, 1)), np.ones((3, 1)))
    >>> M
    array([[1.  , 0.  , 0.  ],
           [0.5 , 1.  , 0.  ],
           [0.25, 0.5 , 1.  ]])
    """
    p = prepare(A=A, B=B, C=C)
    dt = _real(p, "A, B and C")
    xp = p.xp
    l, _ = _check_abc(p)
    check_int(l, "l (the length of A)", maximum=MAX_DENSE)
    _broadcast(xp, ("A", "B", "C"), (p.A, p.B, p.C), (1, 2, 2))
    a = p.A.astype(dt)
    G = xp.matmul(p.C.astype(dt), xp.swapaxes(p.B.astype(dt), -1, -2))
    return (xp.exp(_segsum(xp, a)) * G).astype(dt, copy=False)


def _prepare_multiply(A: Any, B: Any, C: Any, x: Any, chunk_size: Any,
                      grad: Any = ABSENT) -> tuple:
    p = prepare(A=A, B=B, C=C, x=x, grad=grad, dtype_of=("A", "B", "C", "x"))
    dt = _real(p, "A, B, C and x")
    l, n = _check_abc(p)
    check_min_ndim(p.x, 2, "x", "(..., l, p)")
    if p.x.shape[-2] != l:
        raise ValueError(
            f"x must have shape (..., l, p) with l = {l} (the length of A), got x "
            f"{tuple(p.x.shape)} and A {tuple(p.A.shape)}")
    batch = _broadcast(p.xp, ("A", "B", "C", "x"), (p.A, p.B, p.C, p.x), (1, 2, 2, 2))
    chunk = check_int(chunk_size, "chunk_size", minimum=1, maximum=MAX_CHUNK)
    return p, dt, batch, l, n, min(chunk, max(l, 1))


def _kernel_layout(xp: Any, p: Any, dt: Any, batch: tuple, l: int, n: int) -> tuple:
    """``A, B, C, x`` broadcast to ``batch`` in the SSD kernels' layout: one head per batch
    row, ``x (G, l, 1, p)``, ``a (G, l, 1)``, ``b``/``c (G, l, 1, n)``."""
    G = int(np.prod(batch, dtype=np.int64))
    hp = p.x.shape[-1]

    def lay(arr, core):
        full = xp.broadcast_to(arr.astype(dt, copy=False), (*batch, *core))
        return xp.ascontiguousarray(full).reshape(G, l, 1, *core[1:])

    return lay(p.A, (l,)), lay(p.B, (l, n)), lay(p.C, (l, n)), lay(p.x, (l, hp))


def semiseparable_multiply(A: Any, B: Any, C: Any, x: Any, *, chunk_size: Any = 64) -> Any:
    """Return ``M x`` for the semiseparable matrix ``M`` of ``(A, B, C)``, without forming it.

    Parameters
    ----------
    A : array_like, shape (..., l)
        Log-decays.
    B, C : array_like, shape (..., l, n)
        Input and output projections.
    x : array_like, shape (..., l, p)
        ``p`` columns (SSD's head dimension; ``x[..., None]`` for a vector); the leading
        dimensions of ``A``, ``B``, ``C`` and ``x`` broadcast together.
    chunk_size : int, optional
        Rows per chunk of the algorithm (any value >= 1; the speed changes, the result not).

    Returns
    -------
    ndarray, shape (..., l, p)
        ``y[..., i, :] = sum_{j <= i} (C_i . B_j) exp(A_{j+1} + ... + A_i) x[..., j, :]``.
        Real only; NumPy's promotion of the inputs (float32 stays float32).

    Raises
    ------
    ValueError
        Shapes that do not match (both shapes named), ``chunk_size < 1``.
    TypeError
        Complex or non-numeric arrays, NumPy mixed with CuPy.

    See Also
    --------
    semiseparable_to_dense : the matrix.
    semiseparable_multiply_vjp : gradients.
    ssd : the same scan over (batch, length, heads) arrays.

    Notes
    -----
    The chunked SSD algorithm (Dao and Gu, arXiv:2405.21060): within-chunk ``q x q`` blocks
    by GEMMs, chunk states, a recurrence of the ``p x n`` states between chunks and the output
    from the states, ``O(l (q (n + p) + n p))`` flops and ``O(l / q p n)`` memory per matrix;
    only the small within-chunk blocks are ever formed. Batch rows run in parallel (and the
    chunks of one row too).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import semiseparable_multiply, semiseparable_to_dense
    >>> rng = np.random.default_rng(0)
    >>> A, B, C = -rng.uniform(0, 1, 50), *rng.standard_normal((2, 50, 4))
    >>> x = rng.standard_normal((50, 3))
    >>> y = semiseparable_multiply(A, B, C, x, chunk_size=7)
    >>> bool(np.allclose(y, semiseparable_to_dense(A, B, C) @ x))
    True
    """
    p, dt, batch, l, n, chunk = _prepare_multiply(A, B, C, x, chunk_size)
    xp = p.xp
    a, b, c, xk = _kernel_layout(xp, p, dt, batch, l, n)
    y, _ = _forward(xp, xk, a, b, c, None, chunk)
    return y.reshape(*batch, l, p.x.shape[-1])


def semiseparable_multiply_vjp(A: Any, B: Any, C: Any, x: Any, grad: Any, *,
                               chunk_size: Any = 64) -> tuple:
    """Return the gradients ``(grad_A, grad_B, grad_C, grad_x)`` of
    :func:`semiseparable_multiply` for the output gradient ``grad``.

    Parameters
    ----------
    A, B, C, x, chunk_size
        As for :func:`semiseparable_multiply`.
    grad : array_like, shape (..., l, p)
        Gradient of a real loss with respect to ``M x`` (the broadcast batch shape).

    Returns
    -------
    grad_A, grad_B, grad_C, grad_x : ndarray
        Of the shapes of ``A``, ``B``, ``C``, ``x`` (summed over broadcast dimensions), in the
        compute dtype.

    Raises
    ------
    ValueError, TypeError
        As for :func:`semiseparable_multiply`, and ``grad`` of the wrong shape.

    See Also
    --------
    semiseparable_multiply, ssd_vjp

    Notes
    -----
    ``grad_x = M^T grad`` is the reverse scan, ``grad_B``, ``grad_C`` one more chunked pass,
    ``grad_A`` a reverse cumulative sum (see :func:`structlin.ssd_vjp`); never through ``M``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import semiseparable_multiply_vjp, semiseparable_to_dense
    >>> rng = np.random.default_rng(0)
    >>> A, B, C = -rng.uniform(0, 1, 9), *rng.standard_normal((2, 9, 2))
    >>> x, g = rng.standard_normal((2, 9, 1))
    >>> gA, gB, gC, gx = semiseparable_multiply_vjp(A, B, C, x, g, chunk_size=4)
    >>> bool(np.allclose(gx, semiseparable_to_dense(A, B, C).T @ g))
    True
    """
    p, dt, batch, l, n, chunk = _prepare_multiply(A, B, C, x, chunk_size, grad=grad)
    xp = p.xp
    hp = p.x.shape[-1]
    if tuple(p.grad.shape) != (*batch, l, hp):
        raise ValueError(
            f"grad must have the shape of the product {(*batch, l, hp)}, got shape "
            f"{tuple(p.grad.shape)}")
    a, b, c, xk = _kernel_layout(xp, p, dt, batch, l, n)
    G = a.shape[0]
    g = xp.ascontiguousarray(p.grad, dtype=dt).reshape(G, l, 1, hp)
    gx, ga, gb, gc, _ = _backward(xp, xk, a, b, c, None, chunk, g, None)
    return (xp.ascontiguousarray(sum_to_shape(ga.reshape(*batch, l), tuple(p.A.shape))),
            xp.ascontiguousarray(sum_to_shape(gb.reshape(*batch, l, n), tuple(p.B.shape))),
            xp.ascontiguousarray(sum_to_shape(gc.reshape(*batch, l, n), tuple(p.C.shape))),
            xp.ascontiguousarray(sum_to_shape(gx.reshape(*batch, l, hp), tuple(p.x.shape))))


# ------------------------------------------------------------------ quasiseparable (Hydra)

_QS_NAMES = ("A_fwd", "B_fwd", "C_fwd", "A_bwd", "B_bwd", "C_bwd", "D")


def _prepare_qs(arrays: dict, x: Any = ABSENT, grad: Any = ABSENT) -> tuple:
    p = prepare(**arrays, x=x, grad=grad, dtype_of=(*_QS_NAMES, "x"))
    dt = _real(p, ", ".join(_QS_NAMES) + " and x")
    l, _ = _check_pair(p, "fwd")
    lb, _ = _check_pair(p, "bwd")
    if lb != l:
        raise ValueError(
            f"A_bwd must have the length of A_fwd ({l}), got A_bwd {tuple(p.A_bwd.shape)} and "
            f"A_fwd {tuple(p.A_fwd.shape)}")
    check_min_ndim(p.D, 1, "D", "(..., l)")
    if p.D.shape[-1] != l:
        raise ValueError(
            f"D must have shape (..., l) with l = {l} (the length of A_fwd), got D "
            f"{tuple(p.D.shape)}")
    return p, dt, l


def _check_pair(p: Any, side: str) -> tuple[int, int]:
    """The checks of :func:`_check_abc` for ``A_<side>``, ``B_<side>``, ``C_<side>``."""
    view = type("View", (), {"A": getattr(p, f"A_{side}"), "B": getattr(p, f"B_{side}"),
                             "C": getattr(p, f"C_{side}")})
    try:
        return _check_abc(view)
    except ValueError as exc:
        msg = str(exc)
        for nm in ("A", "B", "C"):
            msg = msg.replace(f"{nm} ", f"{nm}_{side} ").replace(f"of {nm})", f"of {nm}_{side})")
        raise ValueError(msg) from None


def quasiseparable_to_dense(A_fwd: Any, B_fwd: Any, C_fwd: Any, A_bwd: Any, B_bwd: Any,
                            C_bwd: Any, D: Any) -> Any:
    """Return Hydra's quasiseparable matrix ``M`` (forward part, backward part, diagonal).

    Parameters
    ----------
    A_fwd, A_bwd : array_like, shape (..., l)
        Log-decays of the forward (strictly lower) and backward (strictly upper) parts.
    B_fwd, C_fwd, B_bwd, C_bwd : array_like, shape (..., l, n)
        Their projections.
    D : array_like, shape (..., l)
        The diagonal. Leading dimensions of all arguments broadcast together.

    Returns
    -------
    ndarray, shape (..., l, l)
        With ``F = semiseparable_to_dense(A_fwd, B_fwd, C_fwd)`` and ``R`` the same of the
        flipped backward parameters::

            M[i, j] = (C_fwd[i-1] . B_fwd[j]) exp(A_fwd[j+1] + ... + A_fwd[i-1])   i > j
            M[i, i] = D[i]
            M[i, j] = (C_bwd[i+1] . B_bwd[j]) exp(A_bwd[i+1] + ... + A_bwd[j-1])   i < j

        (an empty sum is 0). This is exactly Hydra's mixer ``shift(SS(x)) +
        flip(shift(SS(flip(x)))) + D x`` (arXiv:2407.09941, eq. (7), and ``Hydra.forward`` of
        goombalab/hydra, whose shift ``roll(y, 1); y[0] = 0`` makes row ``i`` read ``C[i-1]``):
        ``M = Z F + J Z R J + diag(D)`` with ``Z`` the down-shift and ``J`` the flip.

    Raises
    ------
    ValueError, TypeError
        As for :func:`semiseparable_to_dense`.

    See Also
    --------
    quasiseparable_multiply : ``M x`` without forming ``M``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import quasiseparable_to_dense
    >>> one, z = np.ones((3, 1)), np.zeros(3)
    >>> quasiseparable_to_dense(z, one, one, z, 2 * one, one, np.full(3, 5.0))
    array([[5., 2., 2.],
           [1., 5., 2.],
           [1., 1., 5.]])
    """
    arrays = dict(zip(_QS_NAMES, (A_fwd, B_fwd, C_fwd, A_bwd, B_bwd, C_bwd, D), strict=True))
    p, dt, l = _prepare_qs(arrays)
    xp = p.xp
    check_int(l, "l (the length of A_fwd)", maximum=MAX_DENSE)
    batch = _broadcast(xp, _QS_NAMES, tuple(getattr(p, k) for k in _QS_NAMES),
                       (1, 2, 2, 1, 2, 2, 1))
    F = semiseparable_to_dense(p.A_fwd, p.B_fwd, p.C_fwd).astype(dt, copy=False)
    R = semiseparable_to_dense(xp.flip(p.A_bwd, -1), xp.flip(p.B_bwd, -2),
                               xp.flip(p.C_bwd, -2)).astype(dt, copy=False)
    M = xp.zeros((*batch, l, l), dtype=dt)
    if l:
        M[..., 1:, :] += F[..., :-1, :]                     # Z F
        low = xp.flip(R, (-2, -1))                          # J R J
        M[..., :-1, :] += low[..., 1:, :]                   # Z^T (J R J) = J Z R J
        idx = xp.arange(l)
        M[..., idx, idx] += p.D.astype(dt)
    return M


def _qs_parts(xp: Any, p: Any, dt: Any, batch: tuple, l: int, hp: int) -> tuple:
    """Kernel-layout arrays of the two semiseparable parts (the backward one flipped)."""

    def lay(arr, core):
        G = int(np.prod(batch, dtype=np.int64))
        full = xp.broadcast_to(arr.astype(dt, copy=False), (*batch, *core))
        return xp.ascontiguousarray(full).reshape(G, l, 1, *core[1:])

    n_f, n_b = p.B_fwd.shape[-1], p.B_bwd.shape[-1]
    fwd = (lay(p.A_fwd, (l,)), lay(p.B_fwd, (l, n_f)), lay(p.C_fwd, (l, n_f)))
    flip = lambda arr: xp.flip(arr, 1)  # noqa: E731
    bwd = tuple(xp.ascontiguousarray(flip(t)) for t in
                (lay(p.A_bwd, (l,)), lay(p.B_bwd, (l, n_b)), lay(p.C_bwd, (l, n_b))))
    xk = lay(p.x, (l, hp))
    return fwd, bwd, xk, lay(p.D, (l,))


def _shift_down(xp: Any, y: Any) -> Any:
    """``z[:, i] = y[:, i-1]``, ``z[:, 0] = 0`` along axis 1."""
    z = xp.zeros_like(y)
    z[:, 1:] = y[:, :-1]
    return z


def _shift_up(xp: Any, y: Any) -> Any:
    """The adjoint of :func:`_shift_down`: ``z[:, i] = y[:, i+1]``, ``z[:, -1] = 0``."""
    z = xp.zeros_like(y)
    z[:, :-1] = y[:, 1:]
    return z


def _prepare_qs_multiply(arrays: dict, x: Any, chunk_size: Any, grad: Any = ABSENT) -> tuple:
    p, dt, l = _prepare_qs(arrays, x=x, grad=grad)
    check_min_ndim(p.x, 2, "x", "(..., l, p)")
    if p.x.shape[-2] != l:
        raise ValueError(
            f"x must have shape (..., l, p) with l = {l} (the length of A_fwd), got x "
            f"{tuple(p.x.shape)}")
    names = (*_QS_NAMES, "x")
    batch = _broadcast(p.xp, names, tuple(getattr(p, k) for k in names),
                       (1, 2, 2, 1, 2, 2, 1, 2))
    chunk = check_int(chunk_size, "chunk_size", minimum=1, maximum=MAX_CHUNK)
    return p, dt, batch, l, min(chunk, max(l, 1))


def quasiseparable_multiply(A_fwd: Any, B_fwd: Any, C_fwd: Any, A_bwd: Any, B_bwd: Any,
                            C_bwd: Any, D: Any, x: Any, *, chunk_size: Any = 64) -> Any:
    """Return ``M x`` for Hydra's quasiseparable matrix ``M`` without forming it.

    Parameters
    ----------
    A_fwd, B_fwd, C_fwd, A_bwd, B_bwd, C_bwd, D
        As for :func:`quasiseparable_to_dense` (the exact definition of ``M`` is there).
    x : array_like, shape (..., l, p)
        ``p`` columns; leading dimensions broadcast with the parameters'.
    chunk_size : int, optional
        Chunk of the two semiseparable scans.

    Returns
    -------
    ndarray, shape (..., l, p)
        ``shift(SS_fwd x) + flip(shift(SS_bwd' flip(x))) + D x``. Real only.

    Raises
    ------
    ValueError, TypeError
        Shapes that do not match, complex or non-numeric arrays, ``chunk_size < 1``.

    See Also
    --------
    quasiseparable_to_dense, quasiseparable_multiply_vjp, semiseparable_multiply

    Notes
    -----
    Two chunked semiseparable scans (:func:`semiseparable_multiply`; the backward one on the
    flipped sequence), the shifts and the diagonal (Hwang et al., Hydra, arXiv:2407.09941):
    ``O(l n p)``, never the ``l x l`` matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import quasiseparable_multiply, quasiseparable_to_dense
    >>> rng = np.random.default_rng(0)
    >>> l, n = 20, 3
    >>> Af, Ab = -rng.uniform(0, 1, (2, l))
    >>> Bf, Cf, Bb, Cb = rng.standard_normal((4, l, n))
    >>> D, x = rng.standard_normal(l), rng.standard_normal((l, 2))
    >>> y = quasiseparable_multiply(Af, Bf, Cf, Ab, Bb, Cb, D, x, chunk_size=6)
    >>> M = quasiseparable_to_dense(Af, Bf, Cf, Ab, Bb, Cb, D)
    >>> bool(np.allclose(y, M @ x))
    True
    """
    arrays = dict(zip(_QS_NAMES, (A_fwd, B_fwd, C_fwd, A_bwd, B_bwd, C_bwd, D), strict=True))
    p, dt, batch, l, chunk = _prepare_qs_multiply(arrays, x, chunk_size)
    xp = p.xp
    hp = p.x.shape[-1]
    fwd, bwd, xk, d = _qs_parts(xp, p, dt, batch, l, hp)
    yf, _ = _forward(xp, xk, *fwd, None, chunk)
    yb, _ = _forward(xp, xp.ascontiguousarray(xp.flip(xk, 1)), *bwd, None, chunk)
    y = _shift_down(xp, yf) + xp.flip(_shift_down(xp, yb), 1) + d[..., None] * xk
    return y.reshape(*batch, l, hp)


def quasiseparable_multiply_vjp(A_fwd: Any, B_fwd: Any, C_fwd: Any, A_bwd: Any, B_bwd: Any,
                                C_bwd: Any, D: Any, x: Any, grad: Any, *,
                                chunk_size: Any = 64) -> tuple:
    """Return the gradients of :func:`quasiseparable_multiply` for the output gradient
    ``grad``: ``(grad_A_fwd, grad_B_fwd, grad_C_fwd, grad_A_bwd, grad_B_bwd, grad_C_bwd,
    grad_D, grad_x)``, each of its argument's shape (summed over broadcast dimensions).

    Parameters
    ----------
    A_fwd, B_fwd, C_fwd, A_bwd, B_bwd, C_bwd, D, x, chunk_size
        As for :func:`quasiseparable_multiply`.
    grad : array_like, shape (..., l, p)
        Gradient of a real loss with respect to ``M x``.

    Returns
    -------
    tuple of 8 ndarrays

    Raises
    ------
    ValueError, TypeError
        As for :func:`quasiseparable_multiply`, and ``grad`` of the wrong shape.

    See Also
    --------
    quasiseparable_multiply, semiseparable_multiply_vjp

    Notes
    -----
    The adjoints of the shifts and flips around the two semiseparable VJPs (on the chunked
    kernels), ``grad_D = sum_p grad * x`` and ``grad_x`` the sum of the three parts.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import quasiseparable_multiply_vjp, quasiseparable_to_dense
    >>> rng = np.random.default_rng(0)
    >>> Af, Ab = -rng.uniform(0, 1, (2, 8))
    >>> Bf, Cf, Bb, Cb = rng.standard_normal((4, 8, 2))
    >>> D, x, g = rng.standard_normal(8), *rng.standard_normal((2, 8, 1))
    >>> grads = quasiseparable_multiply_vjp(Af, Bf, Cf, Ab, Bb, Cb, D, x, g)
    >>> M = quasiseparable_to_dense(Af, Bf, Cf, Ab, Bb, Cb, D)
    >>> bool(np.allclose(grads[-1], M.T @ g))
    True
    """
    arrays = dict(zip(_QS_NAMES, (A_fwd, B_fwd, C_fwd, A_bwd, B_bwd, C_bwd, D), strict=True))
    p, dt, batch, l, chunk = _prepare_qs_multiply(arrays, x, chunk_size, grad=grad)
    xp = p.xp
    hp = p.x.shape[-1]
    if tuple(p.grad.shape) != (*batch, l, hp):
        raise ValueError(
            f"grad must have the shape of the product {(*batch, l, hp)}, got shape "
            f"{tuple(p.grad.shape)}")
    fwd, bwd, xk, d = _qs_parts(xp, p, dt, batch, l, hp)
    G = xk.shape[0]
    g = xp.ascontiguousarray(p.grad, dtype=dt).reshape(G, l, 1, hp)
    gf = xp.ascontiguousarray(_shift_up(xp, g))
    gxf, gaf, gbf, gcf, _ = _backward(xp, xk, *fwd, None, chunk, gf, None)
    gb_ = xp.ascontiguousarray(_shift_up(xp, xp.flip(g, 1)))
    gxb, gab, gbb, gcb, _ = _backward(xp, xp.ascontiguousarray(xp.flip(xk, 1)), *bwd, None,
                                      chunk, gb_, None)
    gxb, gab, gbb, gcb = (xp.flip(t, 1) for t in (gxb, gab, gbb, gcb))
    gx = gxf + gxb + d[..., None] * g
    gd = (g * xk).sum(axis=-1)
    n_f, n_b = p.B_fwd.shape[-1], p.B_bwd.shape[-1]
    out = (
        (gaf, (*batch, l), p.A_fwd), (gbf, (*batch, l, n_f), p.B_fwd),
        (gcf, (*batch, l, n_f), p.C_fwd), (gab, (*batch, l), p.A_bwd),
        (gbb, (*batch, l, n_b), p.B_bwd), (gcb, (*batch, l, n_b), p.C_bwd),
        (gd, (*batch, l), p.D), (gx, (*batch, l, hp), p.x),
    )
    return tuple(
        xp.ascontiguousarray(sum_to_shape(t.reshape(shape), tuple(arg.shape))).astype(
            dt, copy=False)
        for t, shape, arg in out)
