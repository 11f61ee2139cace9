"""Butterfly matrices: fast multiply, its VJP, the dense reference and constructors.

Convention
----------
A butterfly of size ``n = 2**L`` is stored as ``twiddle`` of shape ``(L, n//2, 2, 2)``.
Factor ``k`` has stride ``s = 2**k``; its block ``j = a*s + c``, with ``i = a*2s + c``
(``0 <= c < s``), maps the pair ``(x[i], x[i+s])`` to ``twiddle[k, j] @ (x[i], x[i+s])``.
With ``increasing_stride=True`` (the default) factor 0 is applied first,
``B = F_{L-1} ... F_1 F_0``; with ``increasing_stride=False`` factor ``L-1`` is applied first,
``B = F_0 F_1 ... F_{L-1}``.

Reference: T. Dao, A. Gu, M. Eichhorn, A. Rudra, C. Ré, "Learning Fast Algorithms for Linear
Transforms Using Butterfly Factorizations", ICML 2019, arXiv:1903.05895.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from structlin._backend import (
    array_namespace,
    as_kernel_array,
    flatten_batch,
    grad_like,
    kernels,
    restore_batch,
    result_dtype,
)
from structlin._validate import (
    check_min_ndim,
    check_power_of_two,
    check_shape,
    log2_exact,
    prepare,
)

__all__ = [
    "bit_reversal_permutation",
    "bit_reverse",
    "butterfly_multiply",
    "butterfly_multiply_vjp",
    "butterfly_to_dense",
    "random_butterfly",
]


def _twiddle_shape(n: int) -> tuple[int, int, int, int]:
    L = log2_exact(n)
    return (L, n // 2, 2, 2)


def _check_twiddle(twiddle: Any, n: int | None = None) -> int:
    """Validate ``twiddle``'s shape (against ``x``'s length ``n`` when given); return n."""
    if twiddle.ndim != 4 or twiddle.shape[2:] != (2, 2):
        raise ValueError(
            "twiddle must have shape (L, n//2, 2, 2) (log2 of the size, blocks per factor, "
            f"2, 2), got {tuple(twiddle.shape)}"
        )
    if n is None:
        L = twiddle.shape[0]
        n = 1 << L
        check_shape(twiddle, _twiddle_shape(n), "twiddle", f"L = {L} factors, so n = {n}")
        return n
    check_shape(twiddle, _twiddle_shape(n), "twiddle",
                f"(L, n//2, 2, 2) for x with n = {n} along its last axis")
    return n


def _operator(xp, tw, increasing_stride: bool, transpose: bool, conjugate: bool):
    """Return the twiddle and factor order that the kernels apply for op(B).

    ``B^T = F_0^T ... F_{L-1}^T``: transposing reverses the order and transposes each block.
    """
    increasing = bool(increasing_stride)
    if transpose:
        tw = xp.swapaxes(tw, -1, -2)
        increasing = not increasing
    if conjugate and tw.dtype.kind == "c":
        tw = xp.conj(tw)
    return xp.ascontiguousarray(tw), increasing


def _prepare(twiddle, x, grad=None):
    xp = array_namespace(twiddle=twiddle, x=x, grad=grad)
    twiddle = xp.asarray(twiddle)
    x = xp.asarray(x)
    dtype = result_dtype(twiddle=twiddle, x=x)
    check_min_ndim(x, 1, "x", "(..., n)")
    n = x.shape[-1]
    check_power_of_two(n, "x", "last-axis length n")
    _check_twiddle(twiddle, n)
    if grad is not None:
        grad = xp.asarray(grad)
        result_dtype(grad=grad)
        check_shape(grad, x.shape, "grad", "the shape of the product, which is x's shape")
    return xp, twiddle, x, grad, dtype


def butterfly_multiply(
    twiddle: Any,
    x: Any,
    *,
    increasing_stride: bool = True,
    transpose: bool = False,
    conjugate: bool = False,
) -> Any:
    """Return the butterfly product ``B x`` over the last axis of ``x``.

    Parameters
    ----------
    twiddle : array_like, shape (L, n//2, 2, 2)
        The ``L = log2(n)`` factors' 2x2 blocks (module convention: factor ``k`` has stride
        ``2**k`` and block ``j = a*2**k + c`` acts on the pair ``(x[i], x[i + 2**k])`` with
        ``i = a*2**(k+1) + c``). Real or complex, independently of ``x``.
    x : array_like, shape (..., n)
        Vectors along the last axis; any leading batch dimensions. ``n`` a power of two.
    increasing_stride : bool, default True
        True: ``B = F_{L-1} ... F_0`` (factor 0 applied first). False: ``B = F_0 ... F_{L-1}``.
    transpose : bool, default False
        Multiply by ``B^T`` instead (the factors in reverse order, each block transposed).
    conjugate : bool, default False
        Multiply by ``conj(B)``; with ``transpose=True`` this is the adjoint ``B^H``.

    Returns
    -------
    ndarray, shape (..., n)
        ``y[..., i] = sum_j op(B)[i, j] x[..., j]``, i.e. ``x @ op(B).T``, with the dtype
        ``numpy.result_type(twiddle, x)`` (integers and bool promoted to float64) and the
        array type of the inputs (NumPy or CuPy).

    Raises
    ------
    ValueError
        If ``n`` is not a power of two, ``x`` is 0-d, or ``twiddle`` is not
        ``(log2(n), n//2, 2, 2)``.
    TypeError
        If a dtype is not numeric, or NumPy and CuPy arrays are mixed.

    See Also
    --------
    butterfly_to_dense : the matrix ``B`` itself (the reference this function is tested against).
    butterfly_multiply_vjp : gradients of this product.

    Notes
    -----
    Each factor costs ``n/2`` 2x2 products, so ``B x`` costs ``3 n log2(n)`` real flops per
    vector (four times that for complex data) instead of ``2 n^2`` for the dense product, and
    ``O(n log n)`` parameters instead of ``n^2`` (Dao et al. 2019, arXiv:1903.05895).

    On the CPU the factors are applied by Numba kernels in cache-sized passes: while a row of
    ``x`` fits in the cache (256 KiB) all ``L`` factors are applied to it in one pass, one read
    and one write of ``x``, entirely in SIMD registers: blocks of 64 consecutive elements take
    levels 0-5 with lane shuffles, then groups of up to four levels work on vectors spaced by
    the group's stride, with per-element coefficients precomputed from the twiddle once per call
    (complex rows are processed as interleaved real pairs). Longer rows are transposed in tiles
    of rows (the batch becomes the SIMD dimension) and the factors are grouped into passes over
    strided column tiles. The batch is processed in parallel. On the GPU a CUDA kernel keeps
    each row in shared memory across the factors, with a multi-pass scheme beyond the
    shared-memory size.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_multiply, butterfly_to_dense, random_butterfly
    >>> tw = random_butterfly(8, rng=0)
    >>> x = np.arange(16.0).reshape(2, 8)
    >>> y = butterfly_multiply(tw, x)
    >>> y.shape
    (2, 8)
    >>> bool(np.allclose(y, x @ butterfly_to_dense(tw).T))
    True

    A Hadamard matrix of size 4 is a butterfly whose blocks are all ``[[1, 1], [1, -1]]``:

    >>> h = np.tile(np.array([[1.0, 1.0], [1.0, -1.0]]), (2, 2, 1, 1))
    >>> butterfly_multiply(h, np.array([1.0, 0.0, 0.0, 0.0]))
    array([1., 1., 1., 1.])
    """
    xp, twiddle, x, _, dtype = _prepare(twiddle, x)
    x2, batch = flatten_batch(as_kernel_array(xp, x, dtype))
    tw, increasing = _operator(
        xp, as_kernel_array(xp, twiddle, dtype), increasing_stride, transpose, conjugate
    )
    y = kernels(xp, "butterfly").apply(tw, x2, increasing)
    return restore_batch(y, batch)


def butterfly_multiply_vjp(
    twiddle: Any,
    x: Any,
    grad: Any,
    *,
    increasing_stride: bool = True,
    transpose: bool = False,
    conjugate: bool = False,
) -> tuple[Any, Any]:
    """Return the gradients ``(grad_twiddle, grad_x)`` of :func:`butterfly_multiply`.

    Parameters
    ----------
    twiddle, x, increasing_stride, transpose, conjugate
        As for :func:`butterfly_multiply`.
    grad : array_like, shape (..., n)
        The gradient of a real loss with respect to the product ``y = op(B) x``.

    Returns
    -------
    grad_twiddle : ndarray, shape (L, n//2, 2, 2)
        Gradient for ``twiddle``, summed over the batch, with ``twiddle``'s dtype (promoted to
        floating point).
    grad_x : ndarray, shape (..., n)
        ``op(B)^H grad``, with ``x``'s dtype (promoted to floating point).

    Notes
    -----
    Complex gradients follow PyTorch's convention: for a real loss ``l`` and a complex
    argument ``z``, the gradient is ``dl/dRe(z) + 1j * dl/dIm(z)``, so that ``z - lr * grad``
    descends. For a real argument of a complex product the gradient is the real part.
    With ``u`` the pair entering factor ``k`` and ``h`` the gradient leaving it, the block
    gradient is ``h u^H`` summed over the batch, and the gradient entering the factor is
    ``T^H h``.

    Rows that fit in cache (256 KiB) take register blocks like the forward product: a tile of
    rows keeps the input of each group of levels (the contiguous block levels, then groups of
    up to four spaced levels), and each block recomputes its levels in registers, then goes
    back through them, adding ``g * conj(u)`` into per-thread gradients of the per-element
    coefficients (no reduction across SIMD lanes) and forming ``T^H h``; the coefficient
    gradients are mapped back to the blocks once per call. Longer rows use the cache-blocked
    passes of the product on transposed row tiles (each pass's input kept). Either way the
    cost is a few times that of the product: ``O(n log n)`` per vector, never a dense
    matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_multiply_vjp, butterfly_to_dense, random_butterfly
    >>> tw = random_butterfly(4, rng=1)
    >>> x = np.ones((3, 4))
    >>> g = np.arange(12.0).reshape(3, 4)
    >>> gtw, gx = butterfly_multiply_vjp(tw, x, g)
    >>> gtw.shape, gx.shape
    ((2, 2, 2, 2), (3, 4))
    >>> bool(np.allclose(gx, g @ butterfly_to_dense(tw)))
    True
    """
    xp, twiddle, x, grad, dtype = _prepare(twiddle, x, grad)
    x2, batch = flatten_batch(as_kernel_array(xp, x, dtype))
    g2, _ = flatten_batch(as_kernel_array(xp, grad, dtype))
    tw, increasing = _operator(
        xp, as_kernel_array(xp, twiddle, dtype), increasing_stride, transpose, conjugate
    )
    gtw, gx = kernels(xp, "butterfly").apply_vjp(tw, x2, g2, increasing)
    # Map the gradient of the applied blocks back to the stored twiddle:
    # conj(T) has gradient conj(G), T^T has gradient G^T.
    if conjugate and gtw.dtype.kind == "c":
        gtw = xp.conj(gtw)
    if transpose:
        gtw = xp.swapaxes(gtw, -1, -2)
    return _cast_grad(xp, gtw, twiddle), restore_batch(_cast_grad(xp, gx, x), batch)


_cast_grad = grad_like


def _reference_apply(xp, tw, x, increasing: bool):
    """Plain array-API reference: apply factor after factor with reshapes (no kernels)."""
    L = tw.shape[0]
    n = x.shape[-1]
    order = range(L) if increasing else range(L - 1, -1, -1)
    for k in order:
        s = 1 << k
        v = x.reshape((*x.shape[:-1], n // (2 * s), 2, s))
        t = tw[k].reshape(n // (2 * s), s, 2, 2)
        x0 = v[..., 0, :]
        x1 = v[..., 1, :]
        y0 = t[..., 0, 0] * x0 + t[..., 0, 1] * x1
        y1 = t[..., 1, 0] * x0 + t[..., 1, 1] * x1
        x = xp.stack([y0, y1], axis=-2).reshape(x.shape)
    return x


def butterfly_to_dense(
    twiddle: Any,
    *,
    increasing_stride: bool = True,
    transpose: bool = False,
    conjugate: bool = False,
) -> Any:
    """Return the dense ``(n, n)`` matrix of a butterfly (the reference for the fast product).

    Parameters
    ----------
    twiddle : array_like, shape (L, n//2, 2, 2)
        The factors, in the convention of :func:`butterfly_multiply`.
    increasing_stride, transpose, conjugate : bool
        As for :func:`butterfly_multiply`.

    Returns
    -------
    ndarray, shape (n, n)
        ``op(B)``, so that ``butterfly_multiply(twiddle, x, ...) == x @ op(B).T``; dtype of
        ``twiddle`` promoted to floating point.

    Notes
    -----
    Built by applying the factors one at a time to the identity with plain array operations
    (no kernels): ``O(n^2 log n)`` time and ``O(n^2)`` memory. Use it for tests and small
    sizes only.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_to_dense
    >>> tw = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])    # n = 2: a single 2x2 block
    >>> butterfly_to_dense(tw)
    array([[1., 2.],
           [3., 4.]])
    """
    xp = array_namespace(twiddle=twiddle)
    twiddle = xp.asarray(twiddle)
    dtype = result_dtype(twiddle=twiddle)
    n = _check_twiddle(twiddle)
    tw, increasing = _operator(
        xp, twiddle.astype(dtype, copy=False), increasing_stride, transpose, conjugate
    )
    # rows of the result are B e_i, i.e. the columns of B
    return _reference_apply(xp, tw, xp.eye(n, dtype=dtype), increasing).T.copy()


def bit_reversal_permutation(n: int) -> np.ndarray:
    """Return the bit-reversal permutation of ``range(n)`` as an index array.

    Parameters
    ----------
    n : int
        A power of two.

    Returns
    -------
    ndarray of int64, shape (n,)
        ``p[i]`` is ``i`` with its ``log2(n)`` bits reversed; ``x[..., p]`` puts ``x`` in
        bit-reversed order (the input order of the radix-2 decimation-in-time FFT). The
        permutation is its own inverse.

    Raises
    ------
    ValueError
        If ``n`` is not a power of two.

    Examples
    --------
    >>> from structlin import bit_reversal_permutation
    >>> bit_reversal_permutation(8)
    array([0, 4, 2, 6, 1, 5, 3, 7])
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    L = check_power_of_two(int(n), "n", "value")
    p = np.zeros(1, dtype=np.int64)
    for _ in range(L):
        # reversing L bits: the new lowest bit splits the order into even then odd halves
        p = np.concatenate([2 * p, 2 * p + 1])
    return p


def bit_reverse(x: Any) -> Any:
    """Return ``x`` with its last axis bit-reversed: ``x[..., bit_reversal_permutation(n)]``.

    Parameters
    ----------
    x : array, shape (..., n)
        NumPy or CuPy array; ``n`` a power of two.

    Returns
    -------
    array, shape (..., n)
        A new array of ``x``'s dtype (``x`` is not modified).

    Raises
    ------
    ValueError
        If ``x`` is 0-d or ``n`` is not a power of two.

    Notes
    -----
    The permutation is applied row by row with a parallel Numba gather (each row is read from
    cache while it is written), several times faster than ``numpy.take`` along the last axis;
    on the GPU it is ``cupy.take``. It is the input order of the butterfly DFT
    (:func:`structlin.butterfly_dft`): ``butterfly_multiply(butterfly_dft(n), bit_reverse(x))``
    equals ``numpy.fft.fft(x)``. The permutation is its own inverse.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import bit_reverse
    >>> bit_reverse(np.arange(8.0))
    array([0., 4., 2., 6., 1., 5., 3., 7.])
    """
    p = prepare(x=x)
    check_min_ndim(p.x, 1, "x", "(..., n)")
    n = p.x.shape[-1]
    check_power_of_two(n, "x", "last-axis length")
    # a permutation keeps the dtype (integers stay integers); only the byte order and the
    # layout are normalised for the kernel
    x = p.x
    if x.dtype.kind in "fc" and x.dtype.itemsize == 2:
        x = x.astype(np.float32)
    x2, batch = flatten_batch(p.xp.ascontiguousarray(x, dtype=x.dtype.newbyteorder("=")))
    return restore_batch(kernels(p.xp, "butterfly").gather_last(x2, bit_reversal_permutation(n)),
                         batch)


def random_butterfly(
    n: int,
    *,
    kind: Literal["gaussian", "orthogonal", "identity"] = "gaussian",
    dtype: Any = np.float64,
    rng: Any = None,
) -> np.ndarray:
    """Return the twiddle of a random (or identity) butterfly of size ``n``.

    Parameters
    ----------
    n : int
        Size of the butterfly, a power of two.
    kind : {"gaussian", "orthogonal", "identity"}, default "gaussian"
        ``"gaussian"``: independent entries of variance 1/2 (real and imaginary parts 1/4 each
        when complex), so that every factor preserves the expected squared norm of a vector.
        ``"orthogonal"``: every block Haar-distributed on O(2) (U(2) when complex), so that
        ``B`` is orthogonal (unitary). ``"identity"``: every block the identity.
    dtype : dtype, default float64
        float32, float64, complex64 or complex128.
    rng : None, int or numpy.random.Generator
        Seed or generator (``numpy.random.default_rng(rng)``).

    Returns
    -------
    ndarray, shape (log2(n), n//2, 2, 2)
        The twiddle, in the convention of :func:`butterfly_multiply`.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_to_dense, random_butterfly
    >>> B = butterfly_to_dense(random_butterfly(16, kind="orthogonal", rng=0))
    >>> bool(np.allclose(B @ B.T, np.eye(16)))
    True
    >>> random_butterfly(4, kind="identity").shape
    (2, 2, 2, 2)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    check_power_of_two(int(n), "n", "value")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64, np.complex64, np.complex128):
        raise TypeError(f"dtype must be float32, float64, complex64 or complex128, got {dtype}")
    rng = np.random.default_rng(rng)
    shape = _twiddle_shape(int(n))
    complex_ = dtype.kind == "c"
    if kind == "identity":
        tw = np.broadcast_to(np.eye(2), shape)
    elif kind == "gaussian":
        if complex_:
            tw = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * 0.5
        else:
            tw = rng.standard_normal(shape) * np.sqrt(0.5)
    elif kind == "orthogonal":
        # QR of a Gaussian block with the signs of R's diagonal moved into Q is Haar on O(2)/U(2)
        z = rng.standard_normal(shape)
        if complex_:
            z = z + 1j * rng.standard_normal(shape)
        q, r = np.linalg.qr(z)
        d = np.diagonal(r, axis1=-2, axis2=-1)
        tw = q * (d / np.abs(d))[..., None, :]
    else:
        raise ValueError(
            f"kind must be 'gaussian', 'orthogonal' or 'identity', got {kind!r}"
        )
    return np.ascontiguousarray(tw, dtype=dtype)
