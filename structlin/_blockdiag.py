"""Chains of permuted block-diagonal factors: what Monarch, order-p Monarch and BTT share.

A *chain* is a list of factors ``(w, pre, post)``: ``w`` of shape ``(pre*post, n_out, n_in)``
maps a row viewed as ``(pre, n_in, post)`` to ``(pre, n_out, post)`` (the kernel contract of
``structlin._cpu.monarch`` / ``structlin.gpu.monarch``). A Monarch matrix is a chain of two
factors (:func:`monarch_chain`), an order-p Monarch matrix a chain of ``p``, a Block
Tensor-Train the Monarch chain of its reshaped cores. This module holds, once, what their
public modules (:mod:`structlin.monarch`, :mod:`structlin.monarch_order_p`,
:mod:`structlin.btt`) share: the shape checks, the forward and backward passes of a chain
through the kernels, the batched low-rank solver and the slice-wise projection onto a Monarch
structure. It has no public names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._backend import as_kernel_array, flatten_batch, kernels, restore_batch
from structlin._validate import (
    check_finite,
    check_float,
    check_int,
    check_min_ndim,
    check_precision,
    check_shape,
    prepare,
)

#: the most Lanczos restarts per slice a projection may be asked for (``max_iter``): a bound
#: on the loop a single argument can start; the default of 200 is far below it
MAX_ITER = 10**6


# --------------------------------------------------------------------------- shape checks


def check_ndim(a: Any, ndim: int, name: str, shape_doc: str) -> None:
    """Raise ValueError unless ``a`` has exactly ``ndim`` dimensions (``shape_doc``)."""
    if a.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimensions, shape {shape_doc}; "
            f"got a {a.ndim}-d array of shape {tuple(a.shape)}"
        )


def check_monarch_shapes(w1_shape: tuple[int, ...], w2_shape: tuple[int, ...]) -> None:
    """Raise ValueError unless ``(k, q, p)`` and ``(l, s, r)`` chain: ``l*r == k*q``."""
    k, q, _p = w1_shape
    l, _s, r = w2_shape
    if l * r != k * q:
        raise ValueError(
            f"w2 of shape (l, s, r) = {tuple(w2_shape)} takes l*r = {l * r} inputs, but w1 of "
            f"shape (k, q, p) = {tuple(w1_shape)} gives k*q = {k * q} outputs: l*r must "
            "equal k*q"
        )


def check_x_length(x: Any, n_in: int, what: str) -> None:
    """Raise ValueError unless ``x`` has length ``n_in`` along its last axis."""
    check_min_ndim(x, 1, "x", "(..., n_in)")
    if x.shape[-1] != n_in:
        raise ValueError(
            f"x has length n_in = {x.shape[-1]} along its last axis (shape {tuple(x.shape)}), "
            f"but {what} = {n_in}"
        )


def check_grad(grad: Any, shape: tuple[int, ...]) -> None:
    """Raise ValueError unless ``grad`` (already converted) has the product's shape."""
    if grad is not None:
        check_shape(grad, shape, "grad", "the shape of the product")


def kernel_precision(precision: Any, dtype: np.dtype, inputs: str) -> str:
    """``precision`` checked (value, then against the working ``dtype``) as the kernels take it.

    The values are the monarch family's (``"highest"``, ``"tf32"``, ``"bf16"``, and the alias
    ``"fp32"``); the tensor-core ones need float32 or complex64 data on every backend, so that
    code moves between NumPy and CuPy unchanged. The CPU kernels then compute in full
    precision.
    """
    from structlin._registry import family

    return check_precision(precision, family("monarch").precisions, dtype, inputs)


# --------------------------------------------------------------------------- chains


def monarch_chain(w1: Any, w2: Any) -> list[tuple[Any, int, int]]:
    """The chain of a Monarch product: ``w1`` on blocks of the input, ``w2`` on strided ones."""
    k, l = w1.shape[0], w2.shape[0]
    return [(w1, k, 1), (w2, 1, l)]


def chain_apply(xp, chain, x, dtype, precision: str = "highest"):
    """``chain(x)`` over the last axis of ``x``, in ``dtype`` and ``precision``."""
    chain = [(as_kernel_array(xp, w, dtype), pre, post) for w, pre, post in chain]
    x2, batch = flatten_batch(as_kernel_array(xp, x, dtype))
    y = kernels(xp, "monarch").apply(x2, chain, precision)
    return restore_batch(y, batch)


def adjoint(xp, w):
    """The blocks of the adjoint factor, ``conj(w)^T`` block by block (C-contiguous)."""
    w = xp.swapaxes(w, 1, 2)
    if w.dtype.kind == "c":
        w = xp.conj(w)
    return xp.ascontiguousarray(w)


def chain_vjp(xp, chain, x, grad, dtype, precision: str = "highest", ks=None):
    """Gradients of ``y = chain(x)``: ``([grad_w for each factor], grad_x)`` in ``dtype``.

    The input of every factor is recomputed with the forward kernel and kept; the gradient is
    then carried back through the adjoint factors (the same kernel on ``conj(w)^T`` blocks),
    and each factor's weight gradient is one batched GEMM over the batch. Every product runs
    in ``precision`` (checked by :func:`kernel_precision`): both kernels take it. ``ks`` are
    the kernels (default ``kernels(xp, "monarch")``; the CUDA emulator test passes its own).
    """
    k = kernels(xp, "monarch") if ks is None else ks
    chain = [(as_kernel_array(xp, w, dtype), pre, post) for w, pre, post in chain]
    x2, batch = flatten_batch(as_kernel_array(xp, x, dtype))
    h, _ = flatten_batch(as_kernel_array(xp, grad, dtype))
    inputs = [x2]
    for w, pre, post in chain[:-1]:
        inputs.append(k.apply(inputs[-1], [(w, pre, post)], precision))
    grads = [None] * len(chain)
    for f in range(len(chain) - 1, -1, -1):
        w, pre, post = chain[f]
        grads[f] = k.weight_grad(inputs[f], h, pre, post, w.shape[1], precision)
        h = k.apply(h, [(adjoint(xp, w), pre, post)], precision)
    return grads, restore_batch(h, batch)


# --------------------------------------------------------------------------- projection


def prepare_dense(A: Any, tol: Any, max_iter: Any):
    """The seam of the projections: ``A`` converted, 2-d and finite, ``tol`` and ``max_iter``
    checked. Returns ``(prepared, A_wide, tol, max_iter)``: ``prepared`` the NamedTuple of
    :func:`structlin._validate.prepare` (``xp``, ``dtype``, ``A``), ``A_wide`` its float64 or
    complex128 copy, in which the iterations run."""
    p = prepare(A=A)
    check_ndim(p.A, 2, "A", "(n_out, n_in)")
    check_finite(p.A, "A")
    tol = check_float(tol, "tol")
    if not 0 <= tol < 1:
        raise ValueError(f"tol must be in [0, 1), got {tol}")
    max_iter = check_int(max_iter, "max_iter", minimum=1, maximum=MAX_ITER)
    # the iterations run in double precision: the error must match the exact SVD's to 1e-6
    wide = np.complex128 if p.dtype.kind == "c" else np.float64
    return p, p.A.astype(wide), tol, max_iter


def batched_low_rank(xp, S, rank: int, tol: float, max_iter: int):
    """Best rank-``rank`` factors ``S ~ L @ R`` of every matrix of the stack ``S (nb, m, n)``.

    Returns ``L (nb, m, rank)`` and ``R (nb, rank, n)`` (zero beyond ``min(m, n)``), from
    the kernel module's ``low_rank`` (restarted block Lanczos on the Gram matrices).
    """
    nb, m, n = S.shape
    r_eff = min(rank, m, n)
    L = xp.zeros((nb, m, rank), dtype=S.dtype)
    R = xp.zeros((nb, rank, n), dtype=S.dtype)
    if nb == 0 or r_eff == 0:
        return L, R
    left, right = kernels(xp, "monarch").low_rank(S, r_eff, tol, max_iter)
    L[:, :, :r_eff] = left
    R[:, :r_eff, :] = right
    return L, R


def project_monarch(xp, A, w1_shape, w2_shape, tol: float, max_iter: int):
    """The Monarch factors of shapes ``w1_shape``, ``w2_shape`` nearest to ``A`` (checked).

    Entry ``(a*l + j, c*p + d)`` only involves the middle indices ``m = c*q + e`` with
    ``m % l == j``: every pair (output block ``j``, input block ``c``) is an independent
    best-low-rank problem on the slice ``A[j::l, c*p:(c+1)*p]``, solved in batches of equal
    rank by :func:`batched_low_rank`.
    """
    k, q, p = w1_shape
    l, s, r = w2_shape
    w1 = xp.zeros((k, q, p), dtype=A.dtype)
    w2 = xp.zeros((l, s, r), dtype=A.dtype)
    # middle index m = c*q + e (block c of w1, row e) feeds block j = m % l of w2, column
    # t = m // l: the pair (j, c) of (output block, input block) sees the middle indices
    # {e : (c*q + e) % l == j}, and nothing else does
    m = np.arange(k * q)
    c, e, j, t = m // q, m % q, m % l, m // l
    order = np.argsort(j * k + c, kind="stable")
    pair = (j * k + c)[order]
    counts = np.bincount(pair, minlength=l * k)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # A[a*l + j, c*p + d] -> slice j*k + c of shape (s, p): one transposing copy of A, then
    # (unless every pair has the same rank) a gather along the first axis only
    slices = xp.ascontiguousarray(A.reshape(s, l, k, p).transpose(1, 2, 0, 3)).reshape(
        l * k, s, p
    )
    w2t = w2.transpose(0, 2, 1)  # (l, r, s) view: w2t[j, t] is column t of block j
    for rank in np.unique(counts):
        if rank == 0:  # no middle index connects these blocks: the slice stays zero
            continue
        pairs = np.flatnonzero(counts == rank)
        idx = starts[pairs][:, None] + np.arange(rank)[None, :]
        jj, cc = pairs // k, pairs % k
        S = slices if pairs.size == l * k else slices[xp.asarray(pairs)]  # (npairs, s, p)
        L, R = batched_low_rank(xp, S, int(rank), tol, max_iter)
        ee = xp.asarray(e[order][idx])
        tt = xp.asarray(t[order][idx])
        w1[xp.asarray(cc)[:, None], ee] = R
        w2t[xp.asarray(jj)[:, None], tt] = xp.swapaxes(L, 1, 2)
    return w1, w2
