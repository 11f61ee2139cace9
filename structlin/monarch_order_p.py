"""Order-p Monarch matrices: products of p permuted block-diagonal factors, VJPs, projection.

Convention
----------
A vector of length ``prod(in)`` is viewed as a tensor of shape ``(in[0], ..., in[p-1])``
(C order). ``factors[i]`` acts on axis ``ax = p-1-i`` (the last axis first): it has shape
``(prod(in[:ax]) * prod(out[ax+1:]), out[ax], in[ax])``, one ``(out[ax], in[ax])`` block per
value of the other axes, those before ``ax`` still indexed by the input and those after it by
the output (in C order). The product has length ``prod(out)``. For ``p = 2`` this is
:func:`structlin.monarch_multiply` with ``w1 = factors[0]``, ``w2 = factors[1]`` and
``l = q``, ``r = k``; the factors run on the same kernels (the chain of
:mod:`structlin._blockdiag`).

Reference: D. Y. Fu, S. Arora, J. Grogan, I. Johnson, S. Eyuboglu, A. W. Thomas, B. Spector,
M. Poli, A. Rudra, C. Ré, "Monarch Mixer: A Simple Sub-Quadratic GEMM-Based Architecture",
NeurIPS 2023, arXiv:2310.12109.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from structlin._backend import array_namespace, grad_like, result_dtype
from structlin._blockdiag import (
    batched_low_rank,
    chain_apply,
    chain_vjp,
    check_grad,
    check_ndim,
    check_x_length,
    kernel_precision,
    prepare_dense,
)
from structlin._validate import as_array, check_int, check_shape, prepare

__all__ = [
    "monarch_order_p_multiply",
    "monarch_order_p_multiply_vjp",
    "monarch_order_p_project",
    "monarch_order_p_to_dense",
]

Precision = Literal["highest", "tf32", "bf16"]


def _order_p_chain(factors: Sequence[Any]):
    """Chain of ``factors`` (factor i on axis p-1-i); returns (chain, n_in, n_out)."""
    p = len(factors)
    if p == 0:
        raise ValueError("factors must hold at least one factor, got an empty sequence")
    for i, w in enumerate(factors):
        check_ndim(w, 3, f"factors[{i}]", "(blocks, out_size, in_size)")
    ins = [factors[p - 1 - ax].shape[2] for ax in range(p)]
    outs = [factors[p - 1 - ax].shape[1] for ax in range(p)]
    chain = []
    for i, w in enumerate(factors):
        ax = p - 1 - i
        pre = math.prod(ins[:ax])
        post = math.prod(outs[ax + 1 :])
        if w.shape[0] != pre * post:
            raise ValueError(
                f"factors[{i}] acts on axis {ax} of the tensor view (input sizes {tuple(ins)}, "
                f"output sizes {tuple(outs)}), so it needs prod(in[:{ax}]) * "
                f"prod(out[{ax + 1}:]) = {pre} * {post} = {pre * post} blocks; got shape "
                f"{tuple(w.shape)}"
            )
        chain.append((w, pre, post))
    return chain, math.prod(ins), math.prod(outs)


class _Prepared(NamedTuple):
    """The prepared arguments of an order-p call (the factors are a sequence, so they do not
    fit :func:`structlin._validate.prepare`'s keyword fields)."""

    xp: Any
    #: the promotion of the factors (and ``x`` when given)
    dtype: Any
    factors: list
    chain: list
    n_in: int
    n_out: int
    x: Any
    grad: Any


def _prepare_order_p(factors: Any, x: Any = None, grad: Any = None, *,
                     required: tuple[str, ...] = ()) -> _Prepared:
    """The seam of every order-p function: the mix of NumPy and CuPy refused first (naming
    ``factors[i]``), each factor, ``x`` and ``grad`` converted once, the chain checked;
    ``required`` names the arguments of ``x`` and ``grad`` that the caller takes (the others
    are absent)."""
    if isinstance(factors, (str, bytes)) or not isinstance(factors, Sequence):
        raise TypeError(
            f"factors must be a sequence (list or tuple) of 3-d arrays, got "
            f"{type(factors).__name__}"
        )
    named = {f"factors[{i}]": w for i, w in enumerate(factors)}
    xp = array_namespace(**named, x=x, grad=grad)
    converted = {name: as_array(xp, w, name) for name, w in named.items()}
    rest = prepare(x=x, grad=grad,
                   optional=tuple(n for n in ("x", "grad") if n not in required))
    chain, n_in, n_out = _order_p_chain(list(converted.values()))
    promoted = dict(converted)
    if rest.x is not None:
        promoted["x"] = rest.x
        check_x_length(rest.x, n_in, "the factors' input sizes multiply to n_in")
        check_grad(rest.grad, (*rest.x.shape[:-1], n_out))
    return _Prepared(xp, result_dtype(**promoted), list(converted.values()), chain, n_in, n_out,
                     rest.x, rest.grad)


def monarch_order_p_multiply(
    factors: Sequence[Any], x: Any, *, precision: Precision = "highest"
) -> Any:
    """Return the order-p Monarch product ``M x`` over the last axis of ``x``.

    Parameters
    ----------
    factors : sequence of p arrays
        ``factors[i]`` acts on axis ``ax = p-1-i`` of the tensor view of ``x`` (the last axis
        first) and has shape ``(prod(in[:ax]) * prod(out[ax+1:]), out[ax], in[ax])``: one
        ``(out[ax], in[ax])`` block per value of the other axes, the axes before ``ax`` indexed
        by the input and those after it by the output, in C order.
    x : array_like, shape (..., prod(in))
        Vectors along the last axis, viewed as tensors of shape ``(in[0], ..., in[p-1])``.
    precision : {"highest", "tf32", "bf16"}, default "highest"
        As for :func:`structlin.monarch_multiply`: the tensor-core precisions need float32 or
        complex64 data and have an effect on the GPU only.

    Returns
    -------
    ndarray, shape (..., prod(out))
        ``y = x @ M.T``; dtype ``numpy.result_type`` of the factors and ``x``.

    Raises
    ------
    ValueError
        If a factor is not 3-d or has the wrong number of blocks (the message names it and
        the products), ``x``'s last axis is not ``prod(in)`` long, or ``precision`` is not
        one of its values (or a tensor-core one with double-precision data).
    TypeError
        If ``factors`` is not a sequence, a dtype is not numeric, or NumPy and CuPy mix.

    Notes
    -----
    Monarch Mixer's generalisation (Fu et al. 2023, arXiv:2310.12109): with ``n = b^p`` and
    square blocks, ``p`` factors of ``n/b`` blocks cost ``2 p n b`` flops per vector,
    ``O(n^{1 + 1/p})``. For ``p = 2`` this is :func:`structlin.monarch_multiply` with
    ``w1 = factors[0]`` and ``w2 = factors[1]``. The same kernels run the factors two at a
    time on cache-resident batch tiles.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import monarch_order_p_multiply, monarch_order_p_to_dense
    >>> rng = np.random.default_rng(0)
    >>> fs = [rng.standard_normal((4, 2, 2)) for _ in range(3)]     # n = 2**3
    >>> x = rng.standard_normal((5, 8))
    >>> y = monarch_order_p_multiply(fs, x)
    >>> bool(np.allclose(y, x @ monarch_order_p_to_dense(fs).T))
    True
    """
    p = _prepare_order_p(factors, x, required=("x",))
    precision = kernel_precision(precision, p.dtype, "the factors and x")
    return chain_apply(p.xp, p.chain, p.x, p.dtype, precision)


def monarch_order_p_multiply_vjp(
    factors: Sequence[Any], x: Any, grad: Any, *, precision: Precision = "highest"
) -> tuple[list[Any], Any]:
    """Return the gradients ``(grad_factors, grad_x)`` of :func:`monarch_order_p_multiply`.

    Parameters
    ----------
    factors, x
        As for :func:`monarch_order_p_multiply`.
    grad : array_like, shape (..., prod(out))
        The gradient of a real loss with respect to the product.
    precision : {"highest", "tf32", "bf16"}, default "highest"
        As for :func:`monarch_order_p_multiply`, for every product of the backward pass.

    Returns
    -------
    grad_factors : list of p arrays
        The gradient of each factor (its shape and dtype, summed over the batch).
    grad_x : ndarray, shape (..., prod(in))
        ``M^H grad`` with ``x``'s dtype.

    Notes
    -----
    As :func:`structlin.monarch_multiply_vjp`: the input of each factor is recomputed by the forward
    kernel, the gradient goes back through the adjoint blocks, and each factor's gradient is
    a batched GEMM over the batch. PyTorch's convention for complex gradients.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import monarch_order_p_multiply_vjp, monarch_order_p_to_dense
    >>> rng = np.random.default_rng(0)
    >>> fs = [rng.standard_normal((4, 2, 2)) for _ in range(3)]
    >>> x, g = rng.standard_normal((5, 8)), rng.standard_normal((5, 8))
    >>> gfs, gx = monarch_order_p_multiply_vjp(fs, x, g)
    >>> [gf.shape for gf in gfs]
    [(4, 2, 2), (4, 2, 2), (4, 2, 2)]
    >>> bool(np.allclose(gx, g @ monarch_order_p_to_dense(fs)))
    True
    """
    p = _prepare_order_p(factors, x, grad, required=("x", "grad"))
    precision = kernel_precision(precision, p.dtype, "the factors and x")
    grads, gx = chain_vjp(p.xp, p.chain, p.x, p.grad, p.dtype, precision)
    return ([grad_like(p.xp, g, w) for g, w in zip(grads, p.factors, strict=True)],
            grad_like(p.xp, gx, p.x))


def monarch_order_p_to_dense(factors: Sequence[Any]) -> Any:
    """Return the dense ``(prod(out), prod(in))`` matrix of an order-p Monarch product.

    Parameters
    ----------
    factors : sequence of p arrays
        As for :func:`monarch_order_p_multiply`.

    Returns
    -------
    ndarray, shape (prod(out), prod(in))
        ``M`` with ``monarch_order_p_multiply(factors, x) == x @ M.T``; dtype the promotion
        of the factors (float32 factors give a float32 matrix; integers become float64).

    Raises
    ------
    ValueError, TypeError
        As :func:`monarch_order_p_multiply`.

    Notes
    -----
    Applies the factors to the identity one axis at a time with ``einsum`` on the tensor
    view (no kernels): for tests and small sizes.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import monarch_order_p_to_dense
    >>> monarch_order_p_to_dense([np.eye(2)[None].repeat(2, 0)] * 2)
    array([[1., 0., 0., 0.],
           [0., 1., 0., 0.],
           [0., 0., 1., 0.],
           [0., 0., 0., 1.]])
    """
    p = _prepare_order_p(factors)
    xp = p.xp
    y = xp.eye(p.n_in, dtype=p.dtype)
    for w, pre, post in p.chain:
        w = w.astype(p.dtype, copy=False)
        b = y.shape[0]
        v = y.reshape(b, pre, w.shape[2], post)
        wb = w.reshape(pre, post, w.shape[1], w.shape[2])
        y = xp.einsum("PQoi,bPiQ->bPoQ", wb, v).reshape(b, -1)
    return xp.ascontiguousarray(y.T)


def _peel(xp, F, ins, outs, tol, max_iter):
    """Factors (axis order) of the order-p Monarch nearest to each matrix of ``F (nb, ., .)``.

    Axis 0's factor is the last applied: for fixed output coordinates of the other axes and
    a fixed input coordinate of axis 0, the slice over (output axis 0, inputs of the other
    axes) of a Monarch matrix is rank one. Its best rank-one approximation gives axis 0's
    blocks and leaves, for every input coordinate of axis 0, an order-(p-1) problem.
    """
    nb = F.shape[0]
    if len(ins) == 1:
        return [F]
    o0, i0 = outs[0], ins[0]
    orest = math.prod(outs[1:])
    irest = math.prod(ins[1:])
    S = F.reshape(nb, o0, orest, i0, irest).transpose(0, 2, 3, 1, 4).reshape(-1, o0, irest)
    L, R = batched_low_rank(xp, S, 1, tol, max_iter)
    w0 = L.reshape(nb, orest, i0, o0).transpose(0, 1, 3, 2).reshape(nb * orest, o0, i0)
    rest = R.reshape(nb, orest, i0, irest).transpose(0, 2, 1, 3).reshape(nb * i0, orest, irest)
    return [w0, *_peel(xp, rest, ins[1:], outs[1:], tol, max_iter)]


def _sizes(sizes: Any, name: str) -> tuple[int, ...]:
    """``sizes`` as a tuple of positive ints (each checked by name), or raise."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"{name} must be a sequence of positive integers, got {sizes!r}")
    return tuple(check_int(v, f"{name}[{i}]", minimum=1) for i, v in enumerate(sizes))


def monarch_order_p_project(
    A: Any,
    in_sizes: Sequence[int],
    out_sizes: Sequence[int] | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> list[Any]:
    """Return order-p Monarch factors approximating ``A`` (optimal for p = 2).

    Parameters
    ----------
    A : array_like, shape (prod(out_sizes), prod(in_sizes))
        The matrix to approximate (finite).
    in_sizes : sequence of p ints
        The tensor view ``(in[0], ..., in[p-1])`` of the input.
    out_sizes : sequence of p ints, optional
        The tensor view of the output; default ``in_sizes``.
    tol, max_iter
        As for :func:`structlin.monarch_project`.

    Returns
    -------
    list of p arrays
        ``factors`` in the convention of :func:`monarch_order_p_multiply`; dtype of ``A``
        promoted to floating point.

    Raises
    ------
    ValueError
        If ``A`` is not 2-d, not finite, or its shape is not ``(prod(out), prod(in))``; a
        size is below 1; ``tol`` is not in ``[0, 1)`` or ``max_iter`` below 1.
    TypeError
        If ``in_sizes`` / ``out_sizes`` are not sequences of integers (a float such as 2.5,
        a string or None is refused, naming the entry), ``tol`` is not a real number or
        ``max_iter`` not an integer.

    Notes
    -----
    Sequential rank-one peeling, the Monarch analogue of TT-SVD: axis 0's factor comes from
    the best rank-one approximations of ``prod(out[1:]) * in[0]`` slices of shape
    ``(out[0], prod(in[1:]))``, and the right factors form ``in[0]`` independent order-(p-1)
    problems, solved the same way. For ``p = 2`` this is the exact Frobenius projection
    (as :func:`structlin.monarch_project`); for ``p >= 3`` it is quasi-optimal (the best order-p
    approximation contains rank-one tensor approximation, NP-hard in general), and exact, to
    rounding, on matrices that are order-p Monarch with nonzero slices. Cost: one batched
    rank-one problem per axis, ``O(n_out n_in)`` per power iteration.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import monarch_order_p_project, monarch_order_p_to_dense
    >>> rng = np.random.default_rng(0)
    >>> fs = [rng.standard_normal((9, 3, 3)) for _ in range(3)]      # n = 27
    >>> M = monarch_order_p_to_dense(fs)
    >>> gs = monarch_order_p_project(M, (3, 3, 3))
    >>> bool(np.allclose(monarch_order_p_to_dense(gs), M))
    True
    """
    p, A64, tol, max_iter = prepare_dense(A, tol, max_iter)
    ins = _sizes(in_sizes, "in_sizes")
    outs = ins if out_sizes is None else _sizes(out_sizes, "out_sizes")
    if len(ins) == 0 or len(outs) != len(ins):
        raise ValueError(
            f"in_sizes and out_sizes must be equally long sequences of positive integers, got "
            f"{ins} and {outs}"
        )
    expected = (math.prod(outs), math.prod(ins))
    check_shape(A64, expected, "A", f"(prod(out_sizes), prod(in_sizes)) for {outs}, {ins}")
    by_axis = _peel(p.xp, A64[None], ins, outs, tol, max_iter)
    return [grad_like(p.xp, w, p.A) for w in by_axis[::-1]]
