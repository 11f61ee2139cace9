"""Butterfly inverse, linear solve and log-determinant, with their VJPs.

A butterfly ``B = F_{L-1} ... F_1 F_0`` (``increasing_stride=True``; see
:mod:`structlin.butterfly` for the twiddle convention) is a product of factors that are, up
to a permutation, block diagonal with ``n/2`` blocks of size 2x2. Hence

- ``B^-1 = F_0^-1 F_1^-1 ... F_{L-1}^-1`` is again a butterfly with the same strides, every
  block inverted, and the opposite stride order;
- ``det B = prod_k det F_k = prod_{k, j} det twiddle[k, j]``.

Both cost ``O(n log n)``: the twiddle is inverted block by block and the solve is a butterfly
product with the inverted twiddle (the multiply kernels of :mod:`structlin.butterfly`).

Reference: C. Meng, L. Zhou, K. Choi, T. Dao, S. Ermon, "ButterflyFlow: Building Invertible
Layers with Butterfly Matrices", ICML 2022, arXiv:2209.13774.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.linalg import LinAlgWarning

from structlin._backend import (
    as_kernel_array,
    flatten_batch,
    grad_like,
    kernels,
    real_dtype,
    restore_batch,
)
from structlin._validate import ABSENT, check_bool, check_not_none, prepare
from structlin.butterfly import (
    _check_flags,
    _check_twiddle,
    _operator,
    _prepare_product,
    butterfly_multiply_vjp,
)

__all__ = [
    "butterfly_inverse",
    "butterfly_logdet",
    "butterfly_logdet_vjp",
    "butterfly_solve",
    "butterfly_solve_vjp",
]

_FAMILY = "butterfly_inverse"


def _prepare_solve(twiddle: Any, y: Any, grad: Any = ABSENT) -> Any:
    """The seam of a solve: the product's (:func:`structlin.butterfly._prepare_product`, with
    the vectors named ``y``), and a real ``grad`` for a real solution."""
    p = _prepare_product(twiddle, y, grad, vector="y")
    if p.grad is not None and p.grad.dtype.kind == "c" and p.dtype.kind != "c":
        raise TypeError(
            f"grad must be real: the solution is real ({p.dtype}), got dtype {p.grad.dtype}"
        )
    return p


def _block_name(index: int, twiddle) -> str:
    half = twiddle.shape[1]
    k, j = divmod(index, half)
    return f"block {j} of factor {k} (twiddle[{k}, {j}])"


def _inverted_blocks(xp, tw, scale: float = 1.0, adjoint: bool = False):
    """Invert every block of the kernel array ``tw``; raise or warn on (near) singular ones.

    Returns ``scale * T^-1`` (``scale * T^-H`` with ``adjoint``) block by block.
    """
    out, rcond, index = kernels(xp, _FAMILY).invert(tw, scale, adjoint)
    _check_blocks(rcond, index, tw, stacklevel=4)
    return out


def _check_blocks(rcond: float, index: int, tw, stacklevel: int = 3) -> None:
    """Raise on a singular or non-finite block, warn on an ill-conditioned one."""
    if rcond < 0:
        raise ValueError(
            f"twiddle must be finite, but {_block_name(index, tw)} contains NaN or infinity"
        )
    if rcond == 0:
        raise np.linalg.LinAlgError(
            f"the butterfly is singular: {_block_name(index, tw)} has a zero determinant"
        )
    eps = float(np.finfo(tw.dtype).eps)
    if rcond < eps:
        warnings.warn(
            f"Ill-conditioned butterfly: {_block_name(index, tw)} has reciprocal condition "
            f"number {rcond:.3g} (1-norm; the smallest over the 2x2 blocks, an estimate of "
            f"1/cond(B)) below the {tw.dtype} epsilon {eps:.3g}: the result may not be accurate",
            LinAlgWarning,
            stacklevel=stacklevel,
        )


def butterfly_inverse(twiddle: Any, *, increasing_stride: bool = True) -> tuple[Any, bool]:
    """Return the twiddle and stride order of the inverse butterfly ``B^-1``.

    Parameters
    ----------
    twiddle : array_like, shape (L, n//2, 2, 2)
        The factors of ``B``, in the convention of :func:`butterfly_multiply` (factor ``k`` has
        stride ``2**k``; block ``j = a*2**k + c`` acts on the pair ``(x[i], x[i + 2**k])`` with
        ``i = a*2**(k+1) + c``).
    increasing_stride : bool, default True
        The stride order of ``B``: True for ``B = F_{L-1} ... F_0``.

    Returns
    -------
    inverse_twiddle : ndarray, shape (L, n//2, 2, 2)
        Every block of ``twiddle`` inverted; dtype of ``twiddle`` promoted to floating point.
    inverse_increasing_stride : bool
        ``not increasing_stride``: ``B^-1 = F_0^-1 ... F_{L-1}^-1`` applies the factors in the
        opposite order, so ``butterfly_multiply(inverse_twiddle, y,
        increasing_stride=inverse_increasing_stride)`` is ``B^-1 y``.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a block is singular (its determinant is zero); the message names the factor and
        the block.
    ValueError
        If ``twiddle`` is not ``(L, 2**L // 2, 2, 2)`` or holds NaN or infinity.
    TypeError
        If ``twiddle`` is not numeric or ``increasing_stride`` is not a bool.

    Warns
    -----
    scipy.linalg.LinAlgWarning
        If a block's reciprocal condition number is below the dtype's epsilon; the message
        gives the smallest one, the factor and the block.

    See Also
    --------
    butterfly_solve : ``B^-1 y`` in one call.

    Notes
    -----
    Each factor is block diagonal up to a permutation, so its inverse is the factor of the
    inverted blocks, and ``(F_{L-1} ... F_0)^-1 = F_0^-1 ... F_{L-1}^-1``: a butterfly with the
    same strides in the opposite order (Meng et al., ButterflyFlow, arXiv:2209.13774). The
    ``L n / 2`` blocks are inverted in closed form, ``T^-1 = adj(T) / det(T)``, in float64
    (complex128) arithmetic, a block being scaled by its largest entry first when its entries
    are so large or small that ``ad - bc`` could overflow or underflow: ``O(n log n)`` time,
    one pass over the twiddle, in parallel (Numba on the CPU, a CUDA kernel on the GPU; the
    GPU call reads back a few scalars to check for singular blocks). The same pass gives each
    block's reciprocal condition number ``1 / (||T||_1 ||T^-1||_1)`` (entry moduli
    ``|Re| + |Im|``, as in LAPACK's estimators); the smallest is the warning's estimate.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_inverse, butterfly_to_dense, random_butterfly
    >>> tw = random_butterfly(8, rng=0)
    >>> inv, inc = butterfly_inverse(tw)
    >>> inc
    False
    >>> B = butterfly_to_dense(tw)
    >>> bool(np.allclose(butterfly_to_dense(inv, increasing_stride=inc) @ B, np.eye(8)))
    True
    """
    p = prepare(twiddle=twiddle)
    _check_twiddle(p.twiddle)
    increasing = check_bool(increasing_stride, "increasing_stride")
    inv = _inverted_blocks(p.xp, as_kernel_array(p.xp, p.twiddle, p.dtype))
    return inv, not increasing


def butterfly_solve(
    twiddle: Any,
    y: Any,
    *,
    increasing_stride: bool = True,
    transpose: bool = False,
    conjugate: bool = False,
) -> Any:
    """Return the solution ``x`` of ``op(B) x = y`` over the last axis of ``y``.

    Parameters
    ----------
    twiddle : array_like, shape (L, n//2, 2, 2)
        The factors of ``B``, in the convention of :func:`butterfly_multiply`.
    y : array_like, shape (..., n)
        Right-hand sides along the last axis; any leading batch dimensions. ``n`` a power of
        two.
    increasing_stride : bool, default True
        True: ``B = F_{L-1} ... F_0`` (factor 0 applied first). False: ``B = F_0 ... F_{L-1}``.
    transpose : bool, default False
        Solve with ``B^T`` instead.
    conjugate : bool, default False
        Solve with ``conj(B)``; with ``transpose=True`` this is the adjoint ``B^H``.

    Returns
    -------
    ndarray, shape (..., n)
        ``x`` with ``butterfly_multiply(twiddle, x, ...) == y`` for the same flags; dtype
        ``numpy.result_type(twiddle, y)`` (integers and bool promoted to float64), the array
        type of the inputs.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a block of ``twiddle`` is singular (naming the factor and the block).
    ValueError
        If ``n`` is not a power of two, ``y`` is 0-d, ``twiddle`` is not
        ``(log2(n), n//2, 2, 2)``, or ``twiddle`` holds NaN or infinity.
    TypeError
        If a dtype is not numeric, a flag is not a bool, or NumPy and CuPy arrays are
        mixed.

    Warns
    -----
    scipy.linalg.LinAlgWarning
        If a block is ill-conditioned (reciprocal condition number below the epsilon).

    See Also
    --------
    butterfly_inverse : the inverse twiddle itself, to reuse for many solves.
    butterfly_solve_vjp : gradients of this solve.

    Notes
    -----
    ``op(B)^-1 = op(B^-1)``, and ``B^-1`` is the butterfly of the inverted blocks with the
    opposite stride order (:func:`butterfly_inverse`), so the solve is a block inversion
    (``O(n log n)``, independent of the batch) followed by the butterfly product
    (``3 n log2(n)`` real flops per vector, the cache-blocked kernels of
    :func:`butterfly_multiply`), instead of ``O(n^3)`` for a dense LU factorization
    (Meng et al., ButterflyFlow, arXiv:2209.13774). On the CPU the inverted blocks are written
    straight into the planar layout that the product kernels read, so a solve moves the
    twiddle as often as a product does (at batch 1, where the twiddle's traffic is the whole
    cost, this keeps the solve within about 1.3x of the product). The accuracy is that of the
    product with the inverted blocks: the error grows with the blocks' condition numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_multiply, butterfly_solve, random_butterfly
    >>> tw = random_butterfly(16, rng=0)
    >>> y = np.arange(32.0).reshape(2, 16)
    >>> x = butterfly_solve(tw, y)
    >>> bool(np.allclose(butterfly_multiply(tw, x), y))
    True
    >>> xh = butterfly_solve(tw, y, transpose=True, conjugate=True)
    >>> bool(np.allclose(butterfly_multiply(tw, xh, transpose=True, conjugate=True), y))
    True
    """
    p = _prepare_solve(twiddle, y)
    _check_flags(increasing_stride, transpose, conjugate)
    xp = p.xp
    # op(B) is the butterfly of op'd blocks (same indices); its solve inverts them on the fly
    tw, increasing = _operator(xp, as_kernel_array(xp, p.twiddle, p.dtype), increasing_stride,
                               transpose, conjugate)
    y2, batch = flatten_batch(as_kernel_array(xp, p.y, p.dtype))
    x, rcond, index = kernels(xp, _FAMILY).solve(tw, y2, increasing)
    _check_blocks(rcond, index, tw)
    return restore_batch(x, batch)


def butterfly_solve_vjp(
    twiddle: Any,
    y: Any,
    grad: Any,
    *,
    increasing_stride: bool = True,
    transpose: bool = False,
    conjugate: bool = False,
) -> tuple[Any, Any]:
    """Return the gradients ``(grad_twiddle, grad_y)`` of :func:`butterfly_solve`.

    Parameters
    ----------
    twiddle, y, increasing_stride, transpose, conjugate
        As for :func:`butterfly_solve`.
    grad : array_like, shape (..., n)
        The gradient of a real loss with respect to the solution ``x = op(B)^-1 y``.

    Returns
    -------
    grad_twiddle : ndarray, shape (L, n//2, 2, 2)
        Gradient for ``twiddle``, summed over the batch, with ``twiddle``'s dtype (promoted to
        floating point).
    grad_y : ndarray, shape (..., n)
        ``op(B)^-H grad`` (a solve with the adjoint), with ``y``'s dtype (promoted to floating
        point).

    Raises
    ------
    numpy.linalg.LinAlgError, ValueError, TypeError
        As for :func:`butterfly_solve`; ValueError also if ``grad``'s shape is not ``y``'s,
        TypeError if ``grad`` is complex while the solution is real.

    Warns
    -----
    scipy.linalg.LinAlgWarning
        If a block is ill-conditioned.

    Notes
    -----
    With ``V`` the inverted twiddle, ``x = op(B_V) y`` is a butterfly product, so
    :func:`butterfly_multiply_vjp` gives ``grad_y`` and the gradient ``G_V`` of every inverted
    block. Since ``dV = -V dT V`` for ``V = T^-1``, the block gradient is
    ``G_T = -V^H G_V V^H`` (PyTorch's convention for complex gradients: ``dl/dRe + 1j dl/dIm``).
    All of it is ``O(n log n)`` per vector with the butterfly kernels, never a dense matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_solve, butterfly_solve_vjp, random_butterfly
    >>> from structlin import butterfly_to_dense
    >>> tw = random_butterfly(8, rng=3)
    >>> y = np.ones((2, 8))
    >>> g = np.arange(16.0).reshape(2, 8)
    >>> gtw, gy = butterfly_solve_vjp(tw, y, g)
    >>> gtw.shape, gy.shape
    ((3, 4, 2, 2), (2, 8))
    >>> bool(np.allclose(gy, np.linalg.solve(butterfly_to_dense(tw).T, g.T).T))
    True
    """
    p = _prepare_solve(twiddle, y, grad)
    _check_flags(increasing_stride, transpose, conjugate)
    xp = p.xp
    inv = _inverted_blocks(xp, as_kernel_array(xp, p.twiddle, p.dtype))
    g_inv, g_y = butterfly_multiply_vjp(inv, p.y, p.grad,
                                        increasing_stride=not increasing_stride,
                                        transpose=transpose, conjugate=conjugate)
    g_tw = kernels(xp, _FAMILY).inverse_vjp(inv, as_kernel_array(xp, g_inv, p.dtype))
    return grad_like(xp, g_tw, p.twiddle), g_y


def _find_nonfinite(xp, twiddle) -> int:
    bad = ~xp.isfinite(twiddle.reshape(-1, 4)).all(axis=1)
    return int(xp.argmax(bad))


def butterfly_logdet(twiddle: Any) -> tuple[Any, Any]:
    """Return ``(sign, logabsdet)`` of the butterfly's determinant, like ``numpy.linalg.slogdet``.

    Parameters
    ----------
    twiddle : array_like, shape (L, n//2, 2, 2)
        The factors of ``B``, in the convention of :func:`butterfly_multiply`. The stride order
        and transposition do not change the determinant.

    Returns
    -------
    sign : scalar
        ``+1``, ``-1`` (real twiddle) or a complex number of modulus 1 (complex twiddle), and
        0 when ``B`` is singular; dtype of ``twiddle`` promoted to floating point.
    logabsdet : scalar
        ``log|det B|`` (``-inf`` when singular), of the real dtype of the same precision. So
        ``det B = sign * exp(logabsdet)``. NumPy scalars for NumPy input, 0-d CuPy arrays for
        CuPy input.

    Raises
    ------
    ValueError
        If ``twiddle`` is not ``(L, 2**L // 2, 2, 2)`` or holds NaN or infinity (naming the
        first such block).
    TypeError
        If ``twiddle`` is not numeric.

    See Also
    --------
    butterfly_logdet_vjp : its gradient.

    Notes
    -----
    ``det B = prod_k det F_k`` and each factor is block diagonal up to a permutation of
    determinant 1 in the product (the same permutation on rows and columns), so
    ``log|det B| = sum_{k, j} log|det twiddle[k, j]|`` and ``sign = prod_{k, j} det / |det|``:
    ``O(n log n)`` time and no extra memory, against ``O(n^3)`` for a dense LU. Every block's
    determinant is computed in float64 (complex128), after scaling the block by its largest
    entry when ``ad - bc`` could otherwise overflow or underflow; the logarithms are summed in
    float64 (also for float32 input, whose ``L n / 2`` terms would otherwise lose digits) and
    the sign is a product of unit numbers, so neither overflows for any ``n``. A parallel
    reduction: Numba chunks on the CPU, a CUDA block reduction on the GPU (a few partial
    results read back). Used as the log-Jacobian of butterfly layers in
    normalizing flows (Meng et al., ButterflyFlow, arXiv:2209.13774).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_logdet, butterfly_to_dense, random_butterfly
    >>> tw = random_butterfly(32, rng=0)
    >>> sign, logabsdet = butterfly_logdet(tw)
    >>> ref = np.linalg.slogdet(butterfly_to_dense(tw))
    >>> bool(sign == ref.sign and np.isclose(logabsdet, ref.logabsdet))
    True
    >>> butterfly_logdet(np.tile(2.0 * np.eye(2), (2, 2, 1, 1)))  # two factors 2 I: B = 4 I_4
    (np.float64(1.0), np.float64(5.545177444479562))
    """
    p = prepare(twiddle=twiddle)
    xp, dtype = p.xp, p.dtype
    _check_twiddle(p.twiddle)
    tw = as_kernel_array(xp, p.twiddle, dtype)
    sign, logabs = kernels(xp, _FAMILY).slogdet(tw)
    if np.isnan(logabs) or logabs == np.inf:
        raise ValueError(
            f"twiddle must be finite, but {_block_name(_find_nonfinite(xp, tw), tw)} contains "
            "NaN or infinity"
        )
    if dtype.kind != "c":
        sign = sign.real if isinstance(sign, complex) else sign
    if xp is np:
        return dtype.type(sign), real_dtype(dtype).type(logabs)
    return xp.asarray(sign, dtype=dtype), xp.asarray(logabs, dtype=real_dtype(dtype))


def butterfly_logdet_vjp(twiddle: Any, grad_logabsdet: Any) -> Any:
    """Return the gradient for ``twiddle`` of :func:`butterfly_logdet`'s ``logabsdet``.

    Parameters
    ----------
    twiddle : array_like, shape (L, n//2, 2, 2)
        As for :func:`butterfly_logdet`.
    grad_logabsdet : float or 0-d real array
        The gradient of a real loss with respect to ``logabsdet``.

    Returns
    -------
    ndarray, shape (L, n//2, 2, 2)
        ``grad_logabsdet * T^-T`` for every block ``T`` (``T^-H`` for a complex twiddle,
        PyTorch's convention ``dl/dRe + 1j dl/dIm``), with ``twiddle``'s dtype (promoted to
        floating point).

    Raises
    ------
    numpy.linalg.LinAlgError
        If a block is singular (``logabsdet = -inf`` has no gradient there).
    ValueError
        If ``twiddle`` has the wrong shape or is not finite, or ``grad_logabsdet`` is not a
        finite scalar.
    TypeError
        If ``grad_logabsdet`` is complex or not numeric.

    Warns
    -----
    scipy.linalg.LinAlgWarning
        If a block is ill-conditioned (its gradient is then inaccurate).

    Notes
    -----
    Each block enters ``logabsdet`` once, through ``log|det T|``, whose differential is
    ``Re tr(T^-1 dT)``: the gradient is ``T^-T`` for real blocks and ``conj(T^-T) = T^-H``
    for complex ones. One fused pass over the twiddle inverts, transposes, conjugates and
    scales the blocks: ``O(n log n)``, with the kernels of :func:`butterfly_inverse`.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_logdet_vjp
    >>> tw = np.array([[[[2.0, 1.0], [3.0, 4.0]]]])   # n = 2: one block T
    >>> butterfly_logdet_vjp(tw, 1.0)[0, 0]   # inv(T).T
    array([[ 0.8, -0.6],
           [-0.2,  0.4]])
    """
    check_not_none(twiddle=twiddle, grad_logabsdet=grad_logabsdet)
    p = prepare(twiddle=twiddle, grad_logabsdet=grad_logabsdet, dtype_of=("twiddle",))
    _check_twiddle(p.twiddle)
    g = p.grad_logabsdet
    if g.dtype.kind == "c":
        raise TypeError(f"grad_logabsdet must be real (logabsdet is real), got dtype {g.dtype}")
    if g.ndim != 0:
        raise ValueError(
            f"grad_logabsdet must be a scalar (0-d), got an array of shape {tuple(g.shape)}"
        )
    scale = float(g)
    if not np.isfinite(scale):
        raise ValueError(f"grad_logabsdet must be finite, got {scale}")
    return _inverted_blocks(p.xp, as_kernel_array(p.xp, p.twiddle, p.dtype), scale,
                            adjoint=True)
