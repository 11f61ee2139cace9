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

Its generalisations live beside it and run on the same kernels (the chain of block-diagonal
factors of :mod:`structlin._blockdiag`): order-p Monarch in :mod:`structlin.monarch_order_p`,
Block Tensor-Train in :mod:`structlin.btt` (both also importable from here, as before).

Reference: T. Dao, B. Chen, N. Sohoni, A. Desai, M. Poli, J. Grogan, A. Liu, A. Rao, A. Rudra,
C. Ré, "Monarch: Expressive Structured Matrices for Efficient and Accurate Training",
ICML 2022, arXiv:2204.00595.
"""

from __future__ import annotations

from typing import Any, Literal

from structlin._backend import grad_like, kernels
from structlin._blockdiag import (
    adjoint,
    chain_apply,
    chain_vjp,
    check_grad,
    check_monarch_shapes,
    check_ndim,
    check_x_length,
    kernel_precision,
    monarch_chain,
    prepare_dense,
    project_monarch,
)
from structlin._validate import ABSENT, check_int, prepare

__all__ = [
    "monarch_multiply",
    "monarch_multiply_vjp",
    "monarch_project",
    "monarch_to_dense",
]

#: the ``precision`` values of the Monarch kernels (the family's, see structlin._families)
Precision = Literal["highest", "tf32", "bf16"]

# --------------------------------------------------------------------------- Monarch


def _check_factors(w1: Any, w2: Any) -> None:
    check_ndim(w1, 3, "w1", "(k, q, p)")
    check_ndim(w2, 3, "w2", "(l, s, r)")
    check_monarch_shapes(w1.shape, w2.shape)


def _prepare_monarch(w1: Any, w2: Any, x: Any, grad: Any = ABSENT) -> Any:
    """The seam of the Monarch product: the arguments converted (NumPy/CuPy mix refused
    first), their shapes checked; the NamedTuple ``(xp, dtype, w1, w2, x, grad)`` with
    ``dtype`` the promotion of ``w1``, ``w2`` and ``x``."""
    p = prepare(w1=w1, w2=w2, x=x, grad=grad, dtype_of=("w1", "w2", "x"))
    _check_factors(p.w1, p.w2)
    k, _q, n = p.w1.shape
    check_x_length(p.x, k * n, f"w1 of shape (k, q, p) = {tuple(p.w1.shape)} needs k*p")
    check_grad(p.grad, (*p.x.shape[:-1], p.w2.shape[0] * p.w2.shape[1]))
    return p


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
    p = _prepare_monarch(w1, w2, x)
    precision = kernel_precision(precision, p.dtype, "w1, w2 and x")
    return chain_apply(p.xp, monarch_chain(p.w1, p.w2), p.x, p.dtype, precision)


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
    p = _prepare_monarch(w1, w2, x, grad)
    precision = kernel_precision(precision, p.dtype, "w1, w2 and x")
    (g1, g2), gx = chain_vjp(p.xp, monarch_chain(p.w1, p.w2), p.x, p.grad, p.dtype, precision)
    xp = p.xp
    return grad_like(xp, g1, p.w1), grad_like(xp, g2, p.w2), grad_like(xp, gx, p.x)


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
    p = prepare(w1=w1, w2=w2)
    _check_factors(p.w1, p.w2)
    xp, dtype = p.xp, p.dtype
    n_in = p.w1.shape[0] * p.w1.shape[2]
    eye = xp.eye(n_in, dtype=dtype)
    return _reference_monarch(xp, p.w1.astype(dtype), p.w2.astype(dtype), eye).T.copy()


# --------------------------------------------------------------------------- projection


def _shape3(shape: Any, name: str, doc: str) -> tuple[int, int, int]:
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__"):
        raise TypeError(f"{name} must be a tuple of 3 integers {doc}, got {shape!r}")
    if len(shape) != 3:
        raise ValueError(f"{name} must be 3 positive integers {doc}, got {tuple(shape)}")
    return tuple(check_int(v, f"{name}[{i}]", minimum=1) for i, v in enumerate(shape))


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
        the products), neither or both of the shapes and ``nblocks`` are given, a size is
        below 1, ``tol`` is not in ``[0, 1)`` or ``max_iter`` below 1.
    TypeError
        If ``nblocks``, an entry of a shape or ``max_iter`` is not an integer (2.5, ``"4"``,
        None and bool are refused, naming the argument) or ``tol`` not a real number.

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
    p, A64, tol, max_iter = prepare_dense(A, tol, max_iter)
    n_out, n_in = A64.shape
    if nblocks is not None:
        if w1_shape is not None or w2_shape is not None:
            raise ValueError("give either nblocks or w1_shape and w2_shape, not both")
        b = check_int(nblocks, "nblocks", minimum=1)
        if n_in % b or n_out % b:
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
    check_monarch_shapes(w1_shape, w2_shape)
    k, _q, n = w1_shape
    l, s, _r = w2_shape
    if k * n != n_in or l * s != n_out:
        raise ValueError(
            f"A of shape (n_out, n_in) = {(n_out, n_in)} needs k*p = n_in and l*s = n_out; "
            f"w1_shape {w1_shape} gives k*p = {k * n} and w2_shape {w2_shape} gives "
            f"l*s = {l * s}"
        )
    w1, w2 = project_monarch(p.xp, A64, w1_shape, w2_shape, tol, max_iter)
    return grad_like(p.xp, w1, p.A), grad_like(p.xp, w2, p.A)


# Names imported from this module before order-p Monarch and BTT had their own modules (and
# private helpers that structlin.interop.scipy and the tests use): kept importable from here.
# They are not in __all__: structlin re-exports them from their own modules.
_adjoint = adjoint
_chain_apply = chain_apply
_monarch_chain = monarch_chain


def _chain_vjp(xp, chain, x, grad, dtype, precision="highest"):
    # through this module's ``kernels``, which tests/test_gpu_compile_monarch.py replaces by
    # the emulated CUDA kernels
    return chain_vjp(xp, chain, x, grad, dtype, precision, ks=kernels(xp, "monarch"))


from structlin.btt import (  # noqa: E402, F401
    btt_multiply,
    btt_multiply_vjp,
    btt_project,
    btt_to_dense,
)
from structlin.monarch_order_p import (  # noqa: E402, F401
    monarch_order_p_multiply,
    monarch_order_p_multiply_vjp,
    monarch_order_p_project,
    monarch_order_p_to_dense,
)

