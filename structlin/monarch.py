"""Monarch matrices: products of permuted block-diagonal factors, their VJPs and projections.

Convention (the one of HazyResearch/fly's ``blockdiag_butterfly_multiply``, so that weights move
between the two unchanged)
------------------------------------------------------------------------------------------------
``w1`` has shape ``(k, q, p)`` and ``w2`` has shape ``(l, s, r)``, with ``k*p = n_in`` and
``l*r = k*q``. A vector ``x`` of length ``n_in`` is viewed as ``(k, p)``; ``u[i] = w1[i] @ x[i]``
gives ``(k, q)``, which is flattened to ``k*q``, viewed as ``(r, l)`` and transposed to
``(l, r)``; ``v[j] = w2[j] @ u[j]`` gives ``(l, s)``, which is transposed to ``(s, l)`` and
flattened: the product has length ``n_out = l*s``. Entry by entry, with the output index
``o = a*l + j`` and the input index ``i = c*p + d``::

    M[a*l + j, c*p + d] = sum_{e : (c*q + e) % l == j} w2[j, a, (c*q + e) // l] * w1[c, e, d]

Square and rectangular matrices, and block counts other than ``sqrt(n)``, are all allowed.

Generalisations
---------------
*Order-p Monarch* (Monarch Mixer, arXiv:2310.12109): a vector is viewed as a tensor of shape
``(b_0, ..., b_{p-1})``; ``factors[i]`` acts on axis ``ax = p-1-i`` (the last axis first) with
one block ``(out_ax, in_ax)`` per value of the other axes (those before ``ax`` still indexed by
the input, those after it by the output). For ``p = 2`` this is :func:`monarch_multiply` with
``l = q`` and ``r = k``.

*Block Tensor-Train* of rank ``R`` (BTT, Qiu et al. "Compute Better Spent", arXiv:2406.06248):
``w1`` of shape ``(k, R, l, p)`` and ``w2`` of shape ``(l, s, k, R)``, with::

    M[a*l + j, c*p + d] = sum_alpha w2[j, a, c, alpha] * w1[c, alpha, j, d]

It is the Monarch product of ``w1.reshape(k, R*l, p)`` and ``w2.reshape(l, s, k*R)`` (rank 1 is
the classical Monarch), so it runs on the same kernels.

Reference: T. Dao, B. Chen, N. Sohoni, A. Desai, M. Poli, J. Grogan, A. Liu, A. Rao, A. Rudra,
C. Ré, "Monarch: Expressive Structured Matrices for Efficient and Accurate Training",
ICML 2022, arXiv:2204.00595.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from structlin._backend import (
    array_namespace,
    as_kernel_array,
    flatten_batch,
    kernels,
    restore_batch,
    result_dtype,
)
from structlin._backend import grad_like as _cast_grad
from structlin._validate import check_finite, check_min_ndim, check_precision, check_shape

__all__ = [
    "btt_multiply",
    "btt_multiply_vjp",
    "btt_project",
    "btt_to_dense",
    "monarch_multiply",
    "monarch_multiply_vjp",
    "monarch_order_p_multiply",
    "monarch_order_p_multiply_vjp",
    "monarch_order_p_project",
    "monarch_order_p_to_dense",
    "monarch_project",
    "monarch_to_dense",
]

Precision = Literal["highest", "tf32", "bf16"]
_PRECISIONS = ("highest", "tf32", "bf16")


# --------------------------------------------------------------------------- shape checks


def _check_ndim(a: Any, ndim: int, name: str, shape_doc: str) -> None:
    if a.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimensions, shape {shape_doc}; "
            f"got a {a.ndim}-d array of shape {tuple(a.shape)}"
        )


def _check_monarch_shapes(w1_shape: tuple[int, ...], w2_shape: tuple[int, ...]) -> None:
    k, q, _p = w1_shape
    l, _s, r = w2_shape
    if l * r != k * q:
        raise ValueError(
            f"w2 of shape (l, s, r) = {tuple(w2_shape)} takes l*r = {l * r} inputs, but w1 of "
            f"shape (k, q, p) = {tuple(w1_shape)} gives k*q = {k * q} outputs: l*r must "
            "equal k*q"
        )


def _check_x_length(x: Any, n_in: int, what: str) -> None:
    check_min_ndim(x, 1, "x", "(..., n_in)")
    if x.shape[-1] != n_in:
        raise ValueError(
            f"x has length n_in = {x.shape[-1]} along its last axis (shape {tuple(x.shape)}), "
            f"but {what} = {n_in}"
        )


def _check_precision(precision: str) -> str:
    # the value alone, before the arrays are looked at (the dtype check is in _kernel_precision)
    return check_precision(precision, _PRECISIONS, np.float32, "w1, w2 and x")


def _kernel_precision(xp, precision: str, dtype: np.dtype) -> str:
    """``precision`` checked against the working ``dtype``, as the kernels of ``xp`` take it.

    The tensor-core precisions need float32 or complex64 data on every backend (so that code
    moves between NumPy and CuPy unchanged); the CPU kernels then compute in full precision.
    """
    return check_precision(precision, _PRECISIONS, dtype, "w1, w2 and x")


def _as_arrays(xp, **arrays):
    return [None if a is None else xp.asarray(a) for a in arrays.values()]


def _check_grad(grad: Any, shape: tuple[int, ...]) -> None:
    result_dtype(grad=grad)
    check_shape(grad, shape, "grad", "the shape of the product")


# --------------------------------------------------------------------------- chains of factors
# A chain is a list of (w, pre, post): w of shape (pre*post, n_out, n_in) maps a row viewed as
# (pre, n_in, post) to (pre, n_out, post) (see structlin._cpu.monarch).


def _monarch_chain(w1, w2):
    k, l = w1.shape[0], w2.shape[0]
    return [(w1, k, 1), (w2, 1, l)]


def _chain_apply(xp, chain, x, dtype, precision="highest"):
    chain = [(as_kernel_array(xp, w, dtype), pre, post) for w, pre, post in chain]
    x2, batch = flatten_batch(as_kernel_array(xp, x, dtype))
    y = kernels(xp, "monarch").apply(x2, chain, precision)
    return restore_batch(y, batch)


def _adjoint(xp, w):
    w = xp.swapaxes(w, 1, 2)
    if w.dtype.kind == "c":
        w = xp.conj(w)
    return xp.ascontiguousarray(w)


def _chain_vjp(xp, chain, x, grad, dtype, precision="highest"):
    """Gradients of ``y = chain(x)``: ``([grad_w for each factor], grad_x)`` in ``dtype``.

    The input of every factor is recomputed with the forward kernel and kept; the gradient is
    then carried back through the adjoint factors (the same kernel on ``conj(w)^T`` blocks),
    and each factor's weight gradient is one batched GEMM over the batch. Every product runs
    in ``precision`` (a kernel precision: see :func:`_kernel_precision`).
    """
    k = kernels(xp, "monarch")
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
        h = k.apply(h, [(_adjoint(xp, w), pre, post)], precision)
    return grads, restore_batch(h, batch)


# --------------------------------------------------------------------------- Monarch


def _prepare_monarch(w1, w2, x, grad=None):
    xp = array_namespace(w1=w1, w2=w2, x=x, grad=grad)
    w1, w2, x, grad = _as_arrays(xp, w1=w1, w2=w2, x=x, grad=grad)
    dtype = result_dtype(w1=w1, w2=w2, x=x)
    _check_ndim(w1, 3, "w1", "(k, q, p)")
    _check_ndim(w2, 3, "w2", "(l, s, r)")
    _check_monarch_shapes(w1.shape, w2.shape)
    k, _q, p = w1.shape
    _check_x_length(x, k * p, f"w1 of shape (k, q, p) = {tuple(w1.shape)} needs k*p")
    if grad is not None:
        _check_grad(grad, (*x.shape[:-1], w2.shape[0] * w2.shape[1]))
    return xp, w1, w2, x, grad, dtype


def monarch_multiply(w1: Any, w2: Any, x: Any, *, precision: Precision = "highest") -> Any:
    """Return the Monarch product ``M x`` over the last axis of ``x``.

    Parameters
    ----------
    w1 : array_like, shape (k, q, p)
        The first block-diagonal factor: ``k`` blocks of shape ``(q, p)``.
    w2 : array_like, shape (l, s, r)
        The second block-diagonal factor: ``l`` blocks of shape ``(s, r)``, with
        ``l*r = k*q``.
    x : array_like, shape (..., k*p)
        Vectors along the last axis; any leading batch dimensions.
    precision : {"highest", "tf32", "bf16"}, default "highest"
        ``"highest"``: every product in the data's precision. ``"tf32"`` and ``"bf16"`` opt
        in to the GPU's tensor cores for float32 and complex64 data: the operands of every
        block product are rounded to TF32 (10 mantissa bits, to nearest with ties away from
        zero, as ``cvt.rna.tf32.f32``) or to bfloat16 (7 bits, to nearest even) and the
        products accumulated in float32: the relative error of a product of random factors
        is about ``4e-4`` (TF32) or ``3e-3`` (BF16) instead of ``1e-7``, whatever the block
        size. On NumPy arrays the value is checked the same way and then has no effect: the
        CPU has no such units and computes in full float32 precision (as JAX treats
        ``precision=`` on the CPU), so code written for the GPU runs unchanged and never
        less accurately.

    Returns
    -------
    ndarray, shape (..., l*s)
        ``y = x @ M.T`` (module convention, fly's layout), with dtype
        ``numpy.result_type(w1, w2, x)`` (integers and bool promoted to float64) and the
        array type of the inputs (NumPy or CuPy).

    Raises
    ------
    ValueError
        If ``w1``/``w2`` are not 3-d, ``l*r != k*q`` (the message states both products),
        ``x``'s last axis is not ``k*p`` long, ``precision`` is not one of the three values,
        or it is ``"tf32"``/``"bf16"`` and the result dtype is not float32 or complex64.
    TypeError
        If a dtype is not numeric, or NumPy and CuPy arrays are mixed.

    See Also
    --------
    monarch_to_dense : the matrix ``M`` (the reference this function is tested against).
    monarch_multiply_vjp : gradients of this product.
    monarch_project : the closest Monarch matrix to a dense one.

    Notes
    -----
    Two batched GEMMs: ``2 n_in q + 2 k q s`` real flops per vector instead of
    ``2 n_out n_in`` (with ``k = l = sqrt(n)`` square blocks, ``4 n^1.5`` instead of ``2 n^2``)
    and ``k q p + l s r`` parameters (Dao et al. 2022, arXiv:2204.00595).

    On the CPU the batch is taken in tiles of rows processed in parallel; a tile goes through
    both factors while its intermediate ``(T, k*q)`` rows stay in the L2 cache, so ``x`` is
    read once and ``y`` written once. For real float32/float64 with ``q`` and ``l`` multiples
    of the SIMD width (16 float32 or 8 float64 lanes of a 64-byte vector), the block products
    run on a register-blocked micro-kernel written as a Numba intrinsic (explicit vector fma,
    6 rows x 4 vectors of accumulators): the first factor as a small GEMM per block that
    broadcasts ``x`` and fills vectors with the ``q`` outputs, the second with ``16`` (or 8)
    of its ``l`` blocks side by side in the lanes of one vector, which also performs the
    ``(r, l) -> (l, r)`` transpose through its read strides: no data is ever transposed. Other
    shapes and complex dtypes run one BLAS GEMM per block on a gathered tile (about half the
    speed). On the GPU each factor is one batched-GEMM kernel launch whose index arithmetic
    does the transpose.
    With ``precision="tf32"``/``"bf16"`` the GPU kernel
    stages each panel of ``x`` and of the blocks in shared memory, rounding every operand once,
    and computes 64 x 32 output tiles with ``mma.sync`` (m16n8k8 for TF32, m16n8k16 for BF16;
    compute capability 8.0 or newer); a complex64 product is four real ones. The tensor-core
    kernels are checked by NVRTC compilation and a host emulation of ``mma.sync`` against a
    reference that rounds the operands the same way; they have not yet run on a GPU.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import monarch_multiply, monarch_to_dense
    >>> rng = np.random.default_rng(0)
    >>> w1 = rng.standard_normal((4, 4, 4))     # k = 4 blocks of 4 x 4: n_in = 16
    >>> w2 = rng.standard_normal((4, 4, 4))     # l = 4 blocks: n_out = 16
    >>> x = rng.standard_normal((3, 16))
    >>> y = monarch_multiply(w1, w2, x)
    >>> y.shape
    (3, 16)
    >>> bool(np.allclose(y, x @ monarch_to_dense(w1, w2).T))
    True

    A rectangular Monarch matrix, 12 x 6:

    >>> monarch_multiply(np.ones((2, 3, 3)), np.ones((3, 4, 2)), np.ones(6))
    array([6., 6., 6., 6., 6., 6., 6., 6., 6., 6., 6., 6.])

    Tensor-core precisions need single-precision data; on NumPy arrays they compute in full
    float32 precision:

    >>> w1_32, w2_32, x32 = (a.astype(np.float32) for a in (w1, w2, x))
    >>> y_tf32 = monarch_multiply(w1_32, w2_32, x32, precision="tf32")
    >>> bool(np.array_equal(y_tf32, monarch_multiply(w1_32, w2_32, x32)))
    True
    """
    _check_precision(precision)
    xp, w1, w2, x, _, dtype = _prepare_monarch(w1, w2, x)
    precision = _kernel_precision(xp, precision, dtype)
    return _chain_apply(xp, _monarch_chain(w1, w2), x, dtype, precision)


def monarch_multiply_vjp(
    w1: Any, w2: Any, x: Any, grad: Any, *, precision: Precision = "highest"
) -> tuple[Any, Any, Any]:
    """Return the gradients ``(grad_w1, grad_w2, grad_x)`` of :func:`monarch_multiply`.

    Parameters
    ----------
    w1, w2, x
        As for :func:`monarch_multiply`.
    grad : array_like, shape (..., l*s)
        The gradient of a real loss with respect to the product ``y = M x``.
    precision : {"highest", "tf32", "bf16"}, default "highest"
        As for :func:`monarch_multiply`, for every product of the backward pass: the
        recomputed ``W1 x``, the two adjoint products and the two weight gradients (block
        GEMMs over the batch, fp32 accumulation).

    Returns
    -------
    grad_w1 : ndarray, shape (k, q, p)
        Gradient for ``w1``, summed over the batch, with ``w1``'s dtype (promoted to floating
        point).
    grad_w2 : ndarray, shape (l, s, r)
        Gradient for ``w2``, likewise.
    grad_x : ndarray, shape (..., k*p)
        ``M^H grad``, with ``x``'s dtype (promoted to floating point).

    Raises
    ------
    ValueError
        As :func:`monarch_multiply`, and if ``grad`` does not have the product's shape.
    TypeError
        As :func:`monarch_multiply`.

    Notes
    -----
    Complex gradients follow PyTorch's convention (``dl/dRe(z) + 1j dl/dIm(z)``, as
    :func:`structlin.butterfly_multiply_vjp`). With ``u = W1 x`` recomputed by the forward
    kernel, ``grad_w2[j] = sum_batch g_j u_j^H``, ``h = W2^H g`` (the same kernel on the
    adjoint blocks), ``grad_w1[i] = sum_batch h_i x_i^H`` and ``grad_x = W1^H h``: about three
    times the cost of the product, never a dense matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import monarch_multiply_vjp, monarch_to_dense
    >>> rng = np.random.default_rng(1)
    >>> w1, w2 = rng.standard_normal((2, 3, 3)), rng.standard_normal((3, 4, 2))
    >>> x, g = rng.standard_normal((5, 6)), rng.standard_normal((5, 12))
    >>> gw1, gw2, gx = monarch_multiply_vjp(w1, w2, x, g)
    >>> gw1.shape, gw2.shape, gx.shape
    ((2, 3, 3), (3, 4, 2), (5, 6))
    >>> bool(np.allclose(gx, g @ monarch_to_dense(w1, w2)))
    True
    """
    _check_precision(precision)
    xp, w1, w2, x, grad, dtype = _prepare_monarch(w1, w2, x, grad)
    precision = _kernel_precision(xp, precision, dtype)
    (g1, g2), gx = _chain_vjp(xp, _monarch_chain(w1, w2), x, grad, dtype, precision)
    return _cast_grad(xp, g1, w1), _cast_grad(xp, g2, w2), _cast_grad(xp, gx, x)


def _reference_monarch(xp, w1, w2, x):
    """Plain array-API reference of the module convention (einsum and reshapes, no kernels)."""
    k, _q, p = w1.shape
    l, s, r = w2.shape
    b = x.shape[0]
    u = xp.einsum("kqp,bkp->bkq", w1, x.reshape(b, k, p))
    u = xp.swapaxes(u.reshape(b, r, l), 1, 2)
    v = xp.einsum("lsr,blr->bsl", w2, u)
    return v.reshape(b, s * l)


def monarch_to_dense(w1: Any, w2: Any) -> Any:
    """Return the dense ``(l*s, k*p)`` matrix of a Monarch product (the reference).

    Parameters
    ----------
    w1 : array_like, shape (k, q, p)
    w2 : array_like, shape (l, s, r)
        The factors, in the convention of :func:`monarch_multiply` (``l*r = k*q``).

    Returns
    -------
    ndarray, shape (l*s, k*p)
        ``M``, so that ``monarch_multiply(w1, w2, x) == x @ M.T``; dtype of the factors
        promoted to floating point.

    Raises
    ------
    ValueError
        If the shapes are not ``(k, q, p)`` and ``(l, s, r)`` with ``l*r = k*q``.

    Notes
    -----
    Applies the module's einsum formula to the identity (no kernels):
    ``O(n_in (n_in q + k q s))`` time. For tests and small sizes.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import monarch_to_dense
    >>> monarch_to_dense(np.ones((2, 1, 2)), np.ones((1, 3, 2)))   # k=2, q=1, l=1, s=3
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    """
    xp = array_namespace(w1=w1, w2=w2)
    w1, w2 = _as_arrays(xp, w1=w1, w2=w2)
    dtype = result_dtype(w1=w1, w2=w2)
    _check_ndim(w1, 3, "w1", "(k, q, p)")
    _check_ndim(w2, 3, "w2", "(l, s, r)")
    _check_monarch_shapes(w1.shape, w2.shape)
    n_in = w1.shape[0] * w1.shape[2]
    eye = xp.eye(n_in, dtype=dtype)
    return _reference_monarch(xp, w1.astype(dtype), w2.astype(dtype), eye).T.copy()


# --------------------------------------------------------------------------- projection


def _batched_low_rank(xp, S, rank: int, tol: float, max_iter: int):
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


def _shape3(shape: Any, name: str, doc: str) -> tuple[int, int, int]:
    try:
        t = tuple(int(v) for v in shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of 3 integers {doc}, got {shape!r}") from None
    if len(t) != 3 or min(t) < 1:
        raise ValueError(f"{name} must be 3 positive integers {doc}, got {t}")
    return t


def _prepare_dense(A, tol, max_iter):
    xp = array_namespace(A=A)
    A = xp.asarray(A)
    dtype = result_dtype(A=A)
    _check_ndim(A, 2, "A", "(n_out, n_in)")
    check_finite(A, "A")
    if not (0 <= tol < 1):
        raise ValueError(f"tol must be in [0, 1), got {tol}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter}")
    # the iterations run in double precision: the error must match the exact SVD's to 1e-6
    wide = np.complex128 if dtype.kind == "c" else np.float64
    return xp, A.astype(wide)


def _monarch_project(xp, A, w1_shape, w2_shape, tol, max_iter):
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
        L, R = _batched_low_rank(xp, S, int(rank), tol, max_iter)
        ee = xp.asarray(e[order][idx])
        tt = xp.asarray(t[order][idx])
        w1[xp.asarray(cc)[:, None], ee] = R
        w2t[xp.asarray(jj)[:, None], tt] = xp.swapaxes(L, 1, 2)
    return w1, w2


def monarch_project(
    A: Any,
    w1_shape: tuple[int, int, int] | None = None,
    w2_shape: tuple[int, int, int] | None = None,
    *,
    nblocks: int | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> tuple[Any, Any]:
    """Return the Monarch factors ``(w1, w2)`` closest to ``A`` in the Frobenius norm.

    Parameters
    ----------
    A : array_like, shape (n_out, n_in)
        The matrix to approximate (finite).
    w1_shape, w2_shape : tuple of 3 ints
        ``(k, q, p)`` and ``(l, s, r)`` of the factors, with ``k*p = n_in``, ``l*s = n_out``
        and ``l*r = k*q`` (the convention of :func:`monarch_multiply`).
    nblocks : int, optional
        Shorthand instead of the shapes: ``nblocks`` blocks in each factor,
        ``w1_shape = (nblocks, n_in/nblocks, n_in/nblocks)`` and
        ``w2_shape = (nblocks, n_out/nblocks, n_in/nblocks)``; ``nblocks = sqrt(n)`` gives
        the square Monarch matrices of the paper.
    tol : float, default 1e-10
        Stop the Lanczos restarts of a slice when its captured energy can grow by less than
        ``tol`` times its residual energy.
    max_iter : int, default 200
        Most Lanczos restarts per slice.

    Returns
    -------
    w1 : ndarray, shape (k, q, p)
    w2 : ndarray, shape (l, s, r)
        ``monarch_to_dense(w1, w2)`` is the Monarch matrix nearest to ``A``; dtype of ``A``
        promoted to floating point.

    Raises
    ------
    ValueError
        If ``A`` is not 2-d or not finite, the shapes do not fit ``A`` (the message states
        the products), or neither or both of the shapes and ``nblocks`` are given.

    Notes
    -----
    Entry ``(a*l + j, c*p + d)`` of a Monarch matrix only involves column
    ``(c*q + e) // l`` of block ``j`` of ``w2`` and row ``e`` of block ``c`` of ``w1``, for the
    middle indices ``e`` with ``(c*q + e) % l == j``, and each such row and column appears in
    exactly one pair ``(j, c)``. So the ``s x p`` slices ``A[j::l, c*p:(c+1)*p]`` are
    independent problems: the best approximation of rank ``|{e : (c*q+e) % l == j}|``
    (Eckart-Young), which is 1 for square Monarch matrices (Dao et al. 2022,
    arXiv:2204.00595, Theorem 1) and ``floor(q/l)`` or ``ceil(q/l)`` in general (0: the
    slice cannot be reached and the result is zero there).

    The slices of equal rank are solved together, in parallel, by restarted block Lanczos on
    their Gram matrices (the smaller side; applied as two products, never formed), with full
    reorthogonalization and Rayleigh-Ritz, in double precision: ``O(n_out n_in)`` flops per
    Krylov step, about ``max(3 rank, rank + 12)`` steps, never a full SVD of a slice. The
    error matches the exact SVD's to about ``1e-6`` relative with the default ``tol`` (to
    ``1e-12`` in practice); a Monarch ``A`` is recovered to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import monarch_project, monarch_to_dense
    >>> rng = np.random.default_rng(0)
    >>> M = monarch_to_dense(rng.standard_normal((4, 4, 4)), rng.standard_normal((4, 4, 4)))
    >>> w1, w2 = monarch_project(M, nblocks=4)
    >>> bool(np.allclose(monarch_to_dense(w1, w2), M))
    True
    >>> A = rng.standard_normal((12, 6))
    >>> w1, w2 = monarch_project(A, (2, 3, 3), (3, 4, 2))
    >>> err = np.linalg.norm(A - monarch_to_dense(w1, w2)) / np.linalg.norm(A)
    >>> bool(0 < err < 1)
    True
    """
    xp, A64 = _prepare_dense(A, tol, max_iter)
    n_out, n_in = A64.shape
    if nblocks is not None:
        if w1_shape is not None or w2_shape is not None:
            raise ValueError("give either nblocks or w1_shape and w2_shape, not both")
        b = int(nblocks)
        if b < 1 or n_in % b or n_out % b:
            raise ValueError(
                f"nblocks must be a positive divisor of both n_out = {n_out} and "
                f"n_in = {n_in} (A's shape), got {nblocks}"
            )
        w1_shape = (b, n_in // b, n_in // b)
        w2_shape = (b, n_out // b, n_in // b)
    elif w1_shape is None or w2_shape is None:
        raise ValueError("give w1_shape and w2_shape, or nblocks")
    w1_shape = _shape3(w1_shape, "w1_shape", "(k, q, p)")
    w2_shape = _shape3(w2_shape, "w2_shape", "(l, s, r)")
    _check_monarch_shapes(w1_shape, w2_shape)
    k, _q, p = w1_shape
    l, s, _r = w2_shape
    if k * p != n_in or l * s != n_out:
        raise ValueError(
            f"A of shape (n_out, n_in) = {(n_out, n_in)} needs k*p = n_in and l*s = n_out; "
            f"w1_shape {w1_shape} gives k*p = {k * p} and w2_shape {w2_shape} gives "
            f"l*s = {l * s}"
        )
    w1, w2 = _monarch_project(xp, A64, w1_shape, w2_shape, tol, max_iter)
    return _cast_grad(xp, w1, A), _cast_grad(xp, w2, A)


# --------------------------------------------------------------------------- order p


def _order_p_chain(factors: Sequence[Any]):
    """Chain of ``factors`` (factor i on axis p-1-i); returns (chain, n_in, n_out)."""
    p = len(factors)
    if p == 0:
        raise ValueError("factors must hold at least one factor, got an empty sequence")
    for i, w in enumerate(factors):
        _check_ndim(w, 3, f"factors[{i}]", "(blocks, out_size, in_size)")
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


def _prepare_order_p(factors, x, grad=None):
    if isinstance(factors, (str, bytes)) or not isinstance(factors, Sequence):
        raise TypeError(
            f"factors must be a sequence (list or tuple) of 3-d arrays, got "
            f"{type(factors).__name__}"
        )
    named = {f"factors[{i}]": w for i, w in enumerate(factors)}
    xp = array_namespace(**named, x=x, grad=grad)
    factors = [xp.asarray(w) for w in factors]
    x = xp.asarray(x)
    dtype = result_dtype(**{f"factors[{i}]": w for i, w in enumerate(factors)}, x=x)
    chain, n_in, n_out = _order_p_chain(factors)
    _check_x_length(x, n_in, "the factors' input sizes multiply to n_in")
    if grad is not None:
        grad = xp.asarray(grad)
        _check_grad(grad, (*x.shape[:-1], n_out))
    return xp, factors, chain, x, grad, dtype


def monarch_order_p_multiply(factors: Sequence[Any], x: Any) -> Any:
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

    Returns
    -------
    ndarray, shape (..., prod(out))
        ``y = x @ M.T``; dtype ``numpy.result_type`` of the factors and ``x``.

    Raises
    ------
    ValueError
        If a factor is not 3-d or has the wrong number of blocks (the message names it and
        the products), or ``x``'s last axis is not ``prod(in)`` long.
    TypeError
        If ``factors`` is not a sequence, a dtype is not numeric, or NumPy and CuPy mix.

    Notes
    -----
    Monarch Mixer's generalisation (Fu et al. 2023, arXiv:2310.12109): with ``n = b^p`` and
    square blocks, ``p`` factors of ``n/b`` blocks cost ``2 p n b`` flops per vector,
    ``O(n^{1 + 1/p})``. For ``p = 2`` this is :func:`monarch_multiply` with ``w1 =
    factors[0]`` and ``w2 = factors[1]``. The same kernels as :func:`monarch_multiply` run the
    factors two at a time on cache-resident batch tiles.

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
    xp, factors, chain, x, _, dtype = _prepare_order_p(factors, x)
    return _chain_apply(xp, chain, x, dtype)


def monarch_order_p_multiply_vjp(
    factors: Sequence[Any], x: Any, grad: Any
) -> tuple[list[Any], Any]:
    """Return the gradients ``(grad_factors, grad_x)`` of :func:`monarch_order_p_multiply`.

    Parameters
    ----------
    factors, x
        As for :func:`monarch_order_p_multiply`.
    grad : array_like, shape (..., prod(out))
        The gradient of a real loss with respect to the product.

    Returns
    -------
    grad_factors : list of p arrays
        The gradient of each factor (its shape and dtype, summed over the batch).
    grad_x : ndarray, shape (..., prod(in))
        ``M^H grad`` with ``x``'s dtype.

    Notes
    -----
    As :func:`monarch_multiply_vjp`: the input of each factor is recomputed by the forward
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
    xp, factors, chain, x, grad, dtype = _prepare_order_p(factors, x, grad)
    grads, gx = _chain_vjp(xp, chain, x, grad, dtype)
    return [_cast_grad(xp, g, w) for g, w in zip(grads, factors, strict=True)], _cast_grad(
        xp, gx, x
    )


def monarch_order_p_to_dense(factors: Sequence[Any]) -> Any:
    """Return the dense ``(prod(out), prod(in))`` matrix of an order-p Monarch product.

    Parameters
    ----------
    factors : sequence of p arrays
        As for :func:`monarch_order_p_multiply`.

    Returns
    -------
    ndarray, shape (prod(out), prod(in))
        ``M`` with ``monarch_order_p_multiply(factors, x) == x @ M.T``.

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
    if isinstance(factors, Sequence) and not isinstance(factors, (str, bytes)):
        xp = array_namespace(**{f"factors[{i}]": w for i, w in enumerate(factors)})
    else:
        xp = np
    xp, factors, chain, x, _, dtype = _prepare_order_p(factors, xp.zeros((0, _n_in_of(factors))))
    n_in = x.shape[-1]
    y = xp.eye(n_in, dtype=dtype)
    for w, pre, post in chain:
        w = w.astype(dtype)
        b = y.shape[0]
        v = y.reshape(b, pre, w.shape[2], post)
        wb = w.reshape(pre, post, w.shape[1], w.shape[2])
        y = xp.einsum("PQoi,bPiQ->bPoQ", wb, v).reshape(b, -1)
    return y.T.copy()


def _n_in_of(factors) -> int:
    try:
        return math.prod(int(np.shape(w)[2]) for w in factors)
    except (IndexError, TypeError):
        return 0


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
    L, R = _batched_low_rank(xp, S, 1, tol, max_iter)
    w0 = L.reshape(nb, orest, i0, o0).transpose(0, 1, 3, 2).reshape(nb * orest, o0, i0)
    rest = R.reshape(nb, orest, i0, irest).transpose(0, 2, 1, 3).reshape(nb * i0, orest, irest)
    return [w0, *_peel(xp, rest, ins[1:], outs[1:], tol, max_iter)]


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
        As for :func:`monarch_project`.

    Returns
    -------
    list of p arrays
        ``factors`` in the convention of :func:`monarch_order_p_multiply`; dtype of ``A``
        promoted to floating point.

    Raises
    ------
    ValueError
        If ``A`` is not 2-d, not finite, or its shape is not ``(prod(out), prod(in))``.

    Notes
    -----
    Sequential rank-one peeling, the Monarch analogue of TT-SVD: axis 0's factor comes from
    the best rank-one approximations of ``prod(out[1:]) * in[0]`` slices of shape
    ``(out[0], prod(in[1:]))``, and the right factors form ``in[0]`` independent order-(p-1)
    problems, solved the same way. For ``p = 2`` this is the exact Frobenius projection
    (as :func:`monarch_project`); for ``p >= 3`` it is quasi-optimal (the best order-p
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
    xp, A64 = _prepare_dense(A, tol, max_iter)
    ins = tuple(int(v) for v in in_sizes)
    outs = ins if out_sizes is None else tuple(int(v) for v in out_sizes)
    if len(ins) == 0 or len(outs) != len(ins) or min(ins + outs) < 1:
        raise ValueError(
            f"in_sizes and out_sizes must be equally long sequences of positive integers, got "
            f"{ins} and {outs}"
        )
    expected = (math.prod(outs), math.prod(ins))
    check_shape(A64, expected, "A", f"(prod(out_sizes), prod(in_sizes)) for {outs}, {ins}")
    by_axis = _peel(xp, A64[None], ins, outs, tol, max_iter)
    return [_cast_grad(xp, w, A) for w in by_axis[::-1]]


# --------------------------------------------------------------------------- BTT


def _btt_as_monarch(w1, w2):
    """Check the BTT cores; return the Monarch factors they are (reshaped views)."""
    _check_ndim(w1, 4, "w1", "(k, rank, l, p)")
    _check_ndim(w2, 4, "w2", "(l, s, k, rank)")
    k, R, l, p = w1.shape
    l2, s, k2, R2 = w2.shape
    if (k2, R2, l2) != (k, R, l):
        raise ValueError(
            f"w1 of shape (k, rank, l, p) = {tuple(w1.shape)} and w2 of shape "
            f"(l, s, k, rank) = {tuple(w2.shape)} disagree on (k, rank, l): "
            f"{(k, R, l)} vs {(k2, R2, l2)}"
        )
    return w1.reshape(k, R * l, p), w2.reshape(l, s, k * R)


def _prepare_btt(w1, w2, x, grad=None):
    xp = array_namespace(w1=w1, w2=w2, x=x, grad=grad)
    w1, w2, x, grad = _as_arrays(xp, w1=w1, w2=w2, x=x, grad=grad)
    dtype = result_dtype(w1=w1, w2=w2, x=x)
    m1, m2 = _btt_as_monarch(w1, w2)
    k, _, _, p = w1.shape
    _check_x_length(x, k * p, f"w1 of shape (k, rank, l, p) = {tuple(w1.shape)} needs k*p")
    if grad is not None:
        _check_grad(grad, (*x.shape[:-1], w2.shape[0] * w2.shape[1]))
    return xp, w1, w2, m1, m2, x, grad, dtype


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
        As for :func:`monarch_multiply`.

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
    runs on :func:`monarch_multiply`'s kernels: ``2 rank (n_in l + k n_out)`` flops per vector.

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
    _check_precision(precision)
    xp, w1, w2, m1, m2, x, _, dtype = _prepare_btt(w1, w2, x)
    precision = _kernel_precision(xp, precision, dtype)
    return _chain_apply(xp, _monarch_chain(m1, m2), x, dtype, precision)


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
        As for :func:`monarch_multiply_vjp`.

    Returns
    -------
    grad_w1 : ndarray, shape (k, rank, l, p)
    grad_w2 : ndarray, shape (l, s, k, rank)
    grad_x : ndarray, shape (..., k*p)
        Each with its argument's dtype (PyTorch's convention for complex gradients).

    Notes
    -----
    :func:`monarch_multiply_vjp` of the reshaped cores, reshaped back.

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
    _check_precision(precision)
    xp, w1, w2, m1, m2, x, grad, dtype = _prepare_btt(w1, w2, x, grad)
    precision = _kernel_precision(xp, precision, dtype)
    (g1, g2), gx = _chain_vjp(xp, _monarch_chain(m1, m2), x, grad, dtype, precision)
    return (
        _cast_grad(xp, g1.reshape(w1.shape), w1),
        _cast_grad(xp, g2.reshape(w2.shape), w2),
        _cast_grad(xp, gx, x),
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
    xp = array_namespace(w1=w1, w2=w2)
    w1, w2 = _as_arrays(xp, w1=w1, w2=w2)
    dtype = result_dtype(w1=w1, w2=w2)
    _btt_as_monarch(w1, w2)
    k, _, l, p = w1.shape
    s = w2.shape[1]
    M = xp.einsum("jacr,crjd->ajcd", w2.astype(dtype), w1.astype(dtype))
    return M.reshape(s * l, k * p)


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
        The BTT rank (1: Monarch).
    nblocks : int or (k, l)
        Input blocks ``k`` (dividing ``n_in``) and output blocks ``l`` (dividing ``n_out``);
        one int sets both.
    tol, max_iter
        As for :func:`monarch_project`.

    Returns
    -------
    w1 : ndarray, shape (k, rank, l, n_in // k)
    w2 : ndarray, shape (l, n_out // l, k, rank)
        In the convention of :func:`btt_multiply`; dtype of ``A`` promoted to floating point.

    Raises
    ------
    ValueError
        If ``A`` is not 2-d or not finite, ``rank < 1``, or the block counts do not divide
        ``A``'s shape.

    Notes
    -----
    A BTT is a Monarch product whose middle dimension has ``rank`` indices per pair of
    (output block, input block), so :func:`monarch_project` solves it exactly: the
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
    xp, A64 = _prepare_dense(A, tol, max_iter)
    n_out, n_in = A64.shape
    R = int(rank)
    if R < 1:
        raise ValueError(f"rank must be a positive integer, got {rank}")
    k, l = (nblocks, nblocks) if np.ndim(nblocks) == 0 else tuple(nblocks)
    k, l = int(k), int(l)
    if k < 1 or l < 1 or n_in % k or n_out % l:
        raise ValueError(
            f"nblocks = (k, l) = {(k, l)} must divide A's shape: k divides n_in = {n_in} and "
            f"l divides n_out = {n_out}"
        )
    p, s = n_in // k, n_out // l
    m1, m2 = _monarch_project(xp, A64, (k, R * l, p), (l, s, k * R), tol, max_iter)
    return (_cast_grad(xp, m1.reshape(k, R, l, p), A),
            _cast_grad(xp, m2.reshape(l, s, k, R), A))
