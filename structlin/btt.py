"""Block Tensor-Train (BTT) matrices: products, VJPs and the Frobenius projection.

Convention
----------
A BTT of rank ``R`` (Qiu et al., "Compute Better Spent: Replacing Dense Layers with Structured
Matrices", ICML 2024, arXiv:2406.06248) has two cores, ``w1`` of shape ``(k, R, l, p)`` and
``w2`` of shape ``(l, s, k, R)``; it maps ``n_in = k*p`` to ``n_out = l*s`` with::

    M[a*l + j, c*p + d] = sum_alpha w2[j, a, c, alpha] * w1[c, alpha, j, d]

It is the Monarch product (:func:`structlin.monarch_multiply`) of ``w1.reshape(k, R*l, p)``
and ``w2.reshape(l, s, k*R)`` (rank 1 is the classical Monarch matrix), so it runs on the same
kernels (the chain of :mod:`structlin._blockdiag`) and is projected by the same slice-wise
solver.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from structlin._backend import grad_like
from structlin._blockdiag import (
    chain_apply,
    chain_vjp,
    check_grad,
    check_ndim,
    check_x_length,
    kernel_precision,
    monarch_chain,
    prepare_dense,
    project_monarch,
)
from structlin._validate import ABSENT, check_int, prepare

__all__ = [
    "btt_multiply",
    "btt_multiply_vjp",
    "btt_project",
    "btt_to_dense",
]

Precision = Literal["highest", "tf32", "bf16"]


def _btt_as_monarch(w1, w2):
    """Check the BTT cores; return the Monarch factors they are (reshaped views)."""
    check_ndim(w1, 4, "w1", "(k, rank, l, p)")
    check_ndim(w2, 4, "w2", "(l, s, k, rank)")
    k, R, l, p = w1.shape
    l2, s, k2, R2 = w2.shape
    if (k2, R2, l2) != (k, R, l):
        raise ValueError(
            f"w1 of shape (k, rank, l, p) = {tuple(w1.shape)} and w2 of shape "
            f"(l, s, k, rank) = {tuple(w2.shape)} disagree on (k, rank, l): "
            f"{(k, R, l)} vs {(k2, R2, l2)}"
        )
    return w1.reshape(k, R * l, p), w2.reshape(l, s, k * R)


def _prepare_btt(w1: Any, w2: Any, x: Any, grad: Any = ABSENT) -> Any:
    """The seam of the BTT product: the NamedTuple ``(xp, dtype, w1, w2, x, grad)`` of
    :func:`structlin._validate.prepare`, the cores and lengths checked."""
    p = prepare(w1=w1, w2=w2, x=x, grad=grad, dtype_of=("w1", "w2", "x"))
    _btt_as_monarch(p.w1, p.w2)
    k, _, _, n = p.w1.shape
    check_x_length(p.x, k * n, f"w1 of shape (k, rank, l, p) = {tuple(p.w1.shape)} needs k*p")
    check_grad(p.grad, (*p.x.shape[:-1], p.w2.shape[0] * p.w2.shape[1]))
    return p


def btt_multiply(w1: Any, w2: Any, x: Any, *, precision: Precision = "highest") -> Any:
    """Return the Block Tensor-Train product ``M x`` over the last axis of ``x``.

    Parameters
    ----------
    w1 : array_like, shape (k, rank, l, p)
        First core: for input block ``c`` and output block ``j``, ``rank`` rows of length ``p``.
    w2 : array_like, shape (l, s, k, rank)
        Second core: for output block ``j``, an ``(s, k*rank)`` block.
    x : array_like, shape (..., k*p)
        Vectors along the last axis; any leading batch dimensions.
    precision : {"highest", "tf32", "bf16"}, default "highest"
        As for :func:`structlin.monarch_multiply`.

    Returns
    -------
    ndarray, shape (..., l*s)
        ``y = x @ M.T`` with ``M[a*l + j, c*p + d] = sum_alpha w2[j, a, c, alpha] *
        w1[c, alpha, j, d]``.

    Raises
    ------
    ValueError
        If the cores are not 4-d, disagree on ``(k, rank, l)``, or ``x``'s last axis is not
        ``k*p``.
    TypeError
        If a dtype is not numeric, or NumPy and CuPy arrays are mixed.

    Notes
    -----
    BTT (Qiu et al. 2024, arXiv:2406.06248) of rank ``rank`` is the Monarch product of
    ``w1.reshape(k, rank*l, p)`` and ``w2.reshape(l, s, k*rank)`` (rank 1 is Monarch), so it
    runs on the kernels of :func:`structlin.monarch_multiply`: ``2 rank (n_in l + k n_out)``
    flops per vector.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import btt_multiply, btt_to_dense
    >>> rng = np.random.default_rng(0)
    >>> w1, w2 = rng.standard_normal((4, 2, 4, 4)), rng.standard_normal((4, 4, 4, 2))
    >>> x = rng.standard_normal((3, 16))
    >>> bool(np.allclose(btt_multiply(w1, w2, x), x @ btt_to_dense(w1, w2).T))
    True
    """
    p = _prepare_btt(w1, w2, x)
    precision = kernel_precision(precision, p.dtype, "w1, w2 and x")
    chain = monarch_chain(*_btt_as_monarch(p.w1, p.w2))
    return chain_apply(p.xp, chain, p.x, p.dtype, precision)


def btt_multiply_vjp(
    w1: Any, w2: Any, x: Any, grad: Any, *, precision: Precision = "highest"
) -> tuple[Any, Any, Any]:
    """Return the gradients ``(grad_w1, grad_w2, grad_x)`` of :func:`btt_multiply`.

    Parameters
    ----------
    w1, w2, x
        As for :func:`btt_multiply`.
    grad : array_like, shape (..., l*s)
        The gradient of a real loss with respect to the product.
    precision : {"highest", "tf32", "bf16"}, default "highest"
        As for :func:`structlin.monarch_multiply_vjp`.

    Returns
    -------
    grad_w1 : ndarray, shape (k, rank, l, p)
    grad_w2 : ndarray, shape (l, s, k, rank)
    grad_x : ndarray, shape (..., k*p)
        Each with its argument's dtype (PyTorch's convention for complex gradients).

    Notes
    -----
    :func:`structlin.monarch_multiply_vjp` of the reshaped cores, reshaped back.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import btt_multiply_vjp, btt_to_dense
    >>> rng = np.random.default_rng(0)
    >>> w1, w2 = rng.standard_normal((2, 3, 2, 4)), rng.standard_normal((2, 5, 2, 3))
    >>> x, g = rng.standard_normal((6, 8)), rng.standard_normal((6, 10))
    >>> gw1, gw2, gx = btt_multiply_vjp(w1, w2, x, g)
    >>> gw1.shape, gw2.shape
    ((2, 3, 2, 4), (2, 5, 2, 3))
    >>> bool(np.allclose(gx, g @ btt_to_dense(w1, w2)))
    True
    """
    p = _prepare_btt(w1, w2, x, grad)
    precision = kernel_precision(precision, p.dtype, "w1, w2 and x")
    chain = monarch_chain(*_btt_as_monarch(p.w1, p.w2))
    (g1, g2), gx = chain_vjp(p.xp, chain, p.x, p.grad, p.dtype, precision)
    return (
        grad_like(p.xp, g1.reshape(p.w1.shape), p.w1),
        grad_like(p.xp, g2.reshape(p.w2.shape), p.w2),
        grad_like(p.xp, gx, p.x),
    )


def btt_to_dense(w1: Any, w2: Any) -> Any:
    """Return the dense ``(l*s, k*p)`` matrix of a Block Tensor-Train (the reference).

    Parameters
    ----------
    w1 : array_like, shape (k, rank, l, p)
    w2 : array_like, shape (l, s, k, rank)
        The cores, as for :func:`btt_multiply`.

    Returns
    -------
    ndarray, shape (l*s, k*p)
        ``M[a*l + j, c*p + d] = sum_alpha w2[j, a, c, alpha] * w1[c, alpha, j, d]``, computed
        by that einsum (independently of the Monarch reshape the fast path uses).

    Raises
    ------
    ValueError
        If the cores are not 4-d or disagree on ``(k, rank, l)``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import btt_to_dense
    >>> btt_to_dense(np.ones((1, 2, 1, 2)), np.ones((1, 2, 1, 2)))   # rank 2, all ones
    array([[2., 2.],
           [2., 2.]])
    """
    p = prepare(w1=w1, w2=w2)
    _btt_as_monarch(p.w1, p.w2)
    k, _, l, n = p.w1.shape
    s = p.w2.shape[1]
    M = p.xp.einsum("jacr,crjd->ajcd", p.w2.astype(p.dtype), p.w1.astype(p.dtype))
    return M.reshape(s * l, k * n)


def _block_counts(nblocks: Any) -> tuple[int, int]:
    """``nblocks`` as ``(k, l)``: one integer for both, or a pair."""
    if isinstance(nblocks, (tuple, list)) or (
        isinstance(nblocks, np.ndarray) and nblocks.ndim == 1
    ):
        if len(nblocks) != 2:
            raise ValueError(
                f"nblocks must be an integer or a pair (k, l) of input and output block "
                f"counts, got {len(nblocks)} values: {tuple(nblocks)!r}"
            )
        return (check_int(nblocks[0], "nblocks[0]", minimum=1),
                check_int(nblocks[1], "nblocks[1]", minimum=1))
    b = check_int(nblocks, "nblocks", minimum=1)
    return b, b


def btt_project(
    A: Any,
    rank: int,
    *,
    nblocks: int | tuple[int, int],
    tol: float = 1e-10,
    max_iter: int = 200,
) -> tuple[Any, Any]:
    """Return the rank-``rank`` BTT cores ``(w1, w2)`` closest to ``A`` in the Frobenius norm.

    Parameters
    ----------
    A : array_like, shape (n_out, n_in)
        The matrix to approximate (finite).
    rank : int
        The BTT rank (1: Monarch), ``1 <= rank <= min(n_out // l, n_in // k)``: a slice has
        no larger rank, so a larger one would only add zero rows to the cores (and is refused
        before anything is allocated).
    nblocks : int or (k, l)
        Input blocks ``k`` (dividing ``n_in``) and output blocks ``l`` (dividing ``n_out``);
        one int sets both.
    tol, max_iter
        As for :func:`structlin.monarch_project`.

    Returns
    -------
    w1 : ndarray, shape (k, rank, l, n_in // k)
    w2 : ndarray, shape (l, n_out // l, k, rank)
        In the convention of :func:`btt_multiply`; dtype of ``A`` promoted to floating point.

    Raises
    ------
    ValueError
        If ``A`` is not 2-d or not finite, ``rank`` is out of range, ``nblocks`` is neither
        an integer nor a pair, the block counts do not divide ``A``'s shape, ``tol`` is not
        in ``[0, 1)`` or ``max_iter`` below 1.
    TypeError
        If ``rank``, a block count or ``max_iter`` is not an integer (2.5, ``"4"``, None and
        bool are refused, naming the argument) or ``tol`` not a real number.

    Notes
    -----
    A BTT is a Monarch product whose middle dimension has ``rank`` indices per pair of
    (output block, input block), so :func:`structlin.monarch_project` solves it exactly: the
    ``(n_out/l) x (n_in/k)`` slice of every pair gets its best rank-``rank`` approximation.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import btt_project, btt_to_dense
    >>> A = np.random.default_rng(0).standard_normal((16, 16))
    >>> errs = []
    >>> for r in (1, 2, 4):
    ...     w1, w2 = btt_project(A, r, nblocks=4)
    ...     errs.append(np.linalg.norm(A - btt_to_dense(w1, w2)))
    >>> bool(errs[0] > errs[1] > errs[2] < 1e-10)
    True
    """
    p, A64, tol, max_iter = prepare_dense(A, tol, max_iter)
    n_out, n_in = A64.shape
    R = check_int(rank, "rank", minimum=1)
    k, l = _block_counts(nblocks)
    if n_in % k or n_out % l:
        raise ValueError(
            f"nblocks = (k, l) = {(k, l)} must divide A's shape: k divides n_in = {n_in} and "
            f"l divides n_out = {n_out}"
        )
    n, s = n_in // k, n_out // l
    if R > min(s, n):
        raise ValueError(
            f"rank must be at most min(n_out // l, n_in // k) = min({s}, {n}) = {min(s, n)}, "
            f"the largest rank of a slice (it then reproduces A exactly), got {R}"
        )
    m1, m2 = project_monarch(p.xp, A64, (k, R * l, n), (l, s, k * R), tol, max_iter)
    return (grad_like(p.xp, m1.reshape(k, R, l, n), p.A),
            grad_like(p.xp, m2.reshape(l, s, k, R), p.A))
