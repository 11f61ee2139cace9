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
    as_kernel_array,
    flatten_batch,
    grad_like,
    kernels,
    restore_batch,
)
from structlin._validate import (
    ABSENT,
    MAX_SIZE,
    check_bool,
    check_choice,
    check_dtype,
    check_int,
    check_min_ndim,
    check_power_of_two,
    check_rng,
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


def _check_twiddle(twiddle: Any, n: int | None = None, vector: str = "x") -> int:
    """Validate ``twiddle``'s shape, against the length ``n`` of ``vector``'s last axis when
    given; return ``n``. Shared by every function that takes a twiddle."""
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
                f"(L, n//2, 2, 2) for {vector} with n = {n} along its last axis")
    return n


def _check_flags(increasing_stride: Any, transpose: Any, conjugate: Any) -> None:
    check_bool(increasing_stride, "increasing_stride")
    check_bool(transpose, "transpose")
    check_bool(conjugate, "conjugate")


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


def _prepare_product(twiddle: Any, x: Any, grad: Any = ABSENT, vector: str = "x") -> Any:
    """The seam of a product (or solve) with a twiddle: :func:`structlin._validate.prepare`
    of ``twiddle``, the vectors (named ``vector``) and ``grad``, then the shape checks.

    Returns the prepared NamedTuple ``(xp, dtype, twiddle, <vector>, grad)``; ``dtype`` is
    the promotion of ``twiddle`` and the vectors (``grad`` is cast to it, not promoted).
    """
    p = prepare(twiddle=twiddle, **{vector: x}, grad=grad, dtype_of=("twiddle", vector))
    v = getattr(p, vector)
    check_min_ndim(v, 1, vector, "(..., n)")
    n = v.shape[-1]
    check_power_of_two(n, vector, "last-axis length n")
    _check_twiddle(p.twiddle, n, vector)
    if p.grad is not None:
        check_shape(p.grad, v.shape, "grad",
                    f"the shape of the {'product' if vector == 'x' else 'solution'}, which is "
                    f"{vector}'s shape")
    return p


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
        If a dtype is not numeric, a flag is not a bool, or NumPy and CuPy arrays are
        mixed.

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
    p = _prepare_product(twiddle, x)
    _check_flags(increasing_stride, transpose, conjugate)
    x2, batch = flatten_batch(as_kernel_array(p.xp, p.x, p.dtype))
    tw, increasing = _operator(
        p.xp, as_kernel_array(p.xp, p.twiddle, p.dtype), increasing_stride, transpose, conjugate
    )
    y = kernels(p.xp, "butterfly").apply(tw, x2, increasing)
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
    p = _prepare_product(twiddle, x, grad)
    _check_flags(increasing_stride, transpose, conjugate)
    xp = p.xp
    x2, batch = flatten_batch(as_kernel_array(xp, p.x, p.dtype))
    g2, _ = flatten_batch(as_kernel_array(xp, p.grad, p.dtype))
    tw, increasing = _operator(
        xp, as_kernel_array(xp, p.twiddle, p.dtype), increasing_stride, transpose, conjugate
    )
    gtw, gx = kernels(xp, "butterfly").apply_vjp(tw, x2, g2, increasing)
    # Map the gradient of the applied blocks back to the stored twiddle:
    # conj(T) has gradient conj(G), T^T has gradient G^T.
    if conjugate and gtw.dtype.kind == "c":
        gtw = xp.conj(gtw)
    if transpose:
        gtw = xp.swapaxes(gtw, -1, -2)
    return grad_like(xp, gtw, p.twiddle), restore_batch(grad_like(xp, gx, p.x), batch)


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
    p = prepare(twiddle=twiddle)
    n = _check_twiddle(p.twiddle)
    _check_flags(increasing_stride, transpose, conjugate)
    tw, increasing = _operator(
        p.xp, p.twiddle.astype(p.dtype, copy=False), increasing_stride, transpose, conjugate
    )
    # rows of the result are B e_i, i.e. the columns of B
    return _reference_apply(p.xp, tw, p.xp.eye(n, dtype=p.dtype), increasing).T.copy()


#: the largest ``n`` of :func:`bit_reversal_permutation`: its ``2**32`` int64 indices are
#: already 32 GiB, 256 times the largest butterfly the kernels are tested at; a larger ``n`` is
#: refused before anything is allocated
MAX_PERMUTATION_SIZE = 1 << 32


def _bit_reversal(n: int) -> np.ndarray:
    p = np.zeros(1, dtype=np.int64)
    for _ in range(n.bit_length() - 1):
        # reversing L bits: the new lowest bit splits the order into even then odd halves
        p = np.concatenate([2 * p, 2 * p + 1])
    return p


def bit_reversal_permutation(n: int) -> np.ndarray:
    """Return the bit-reversal permutation of ``range(n)`` as an index array.

    Parameters
    ----------
    n : int
        A power of two, at most ``2**32``.

    Returns
    -------
    ndarray of int64, shape (n,)
        ``p[i]`` is ``i`` with its ``log2(n)`` bits reversed; ``x[..., p]`` puts ``x`` in
        bit-reversed order (the input order of the radix-2 decimation-in-time FFT). The
        permutation is its own inverse.

    Raises
    ------
    ValueError
        If ``n`` is not a power of two or is larger than ``2**32`` (whose permutation alone
        would take 32 GiB).
    TypeError
        If ``n`` is not an integer (bool, float, str and None are refused).

    Examples
    --------
    >>> from structlin import bit_reversal_permutation
    >>> bit_reversal_permutation(8)
    array([0, 4, 2, 6, 1, 5, 3, 7])
    """
    n = check_int(n, "n", minimum=1, maximum=MAX_PERMUTATION_SIZE)
    check_power_of_two(n, "n", "value")
    return _bit_reversal(n)


#: integer views of each item size: a permutation moves items, whatever they hold, so the
#: gather kernel only needs these (float16, bool, big-endian data keep their dtype)
_ITEM_VIEWS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64, 16: np.complex128}


def bit_reverse(x: Any) -> Any:
    """Return ``x`` with its last axis bit-reversed: ``x[..., bit_reversal_permutation(n)]``.

    Parameters
    ----------
    x : array_like, shape (..., n)
        NumPy or CuPy array (or a list); ``n`` a power of two. Any numeric dtype, float16,
        bool and extended precision included.

    Returns
    -------
    array, shape (..., n)
        A new array of ``x``'s dtype in native byte order (``x`` is not modified): a
        permutation moves the values without arithmetic, so integers stay integers and
        float16 stays float16.

    Raises
    ------
    ValueError
        If ``x`` is 0-d or ``n`` is not a power of two.
    TypeError
        If ``x`` is not numeric (object or string arrays), or NumPy and CuPy arrays are mixed.

    Notes
    -----
    The permutation is applied row by row with a parallel Numba gather of the items viewed
    as unsigned integers of their size (each row is read from cache while it is written),
    several times faster than ``numpy.take`` along the last axis; on the GPU it is
    ``cupy.take``. It is the input order of the butterfly DFT (:func:`structlin.butterfly_dft`):
    ``butterfly_multiply(butterfly_dft(n), bit_reverse(x))`` equals ``numpy.fft.fft(x)``. The
    permutation is its own inverse.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import bit_reverse
    >>> bit_reverse(np.arange(8.0))
    array([0., 4., 2., 6., 1., 5., 3., 7.])
    >>> bit_reverse([1, 2, 3, 4]).tolist()
    [1, 3, 2, 4]
    """
    # no arithmetic, so no compute dtype: every numeric dtype is moved as it is
    p = prepare(x=x, dtype_of=())
    check_min_ndim(p.x, 1, "x", "(..., n)")
    n = p.x.shape[-1]
    check_power_of_two(n, "x", "last-axis length")
    dt = p.x.dtype.newbyteorder("=")
    x2, batch = flatten_batch(p.xp.ascontiguousarray(p.x, dtype=dt))
    view = _ITEM_VIEWS.get(dt.itemsize)
    if view is None:  # e.g. complex256: no kernel item type of that size
        return p.xp.take(p.x.astype(dt), p.xp.asarray(_bit_reversal(n)), axis=-1)
    y = kernels(p.xp, "butterfly").gather_last(x2.view(view), _bit_reversal(n))
    return restore_batch(y.view(dt), batch)


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
        Size of the butterfly, a power of two (at most ``2**40``).
    kind : {"gaussian", "orthogonal", "identity"}, default "gaussian"
        ``"gaussian"``: independent entries of variance 1/2 (real and imaginary parts 1/4 each
        when complex), so that every factor preserves the expected squared norm of a vector.
        ``"orthogonal"``: every block Haar-distributed on O(2) (U(2) when complex), so that
        ``B`` is orthogonal (unitary). ``"identity"``: every block the identity.
    dtype : dtype, default float64
        float32, float64, complex64 or complex128.
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator
        Seed or generator (``numpy.random.default_rng(rng)``).

    Returns
    -------
    ndarray, shape (log2(n), n//2, 2, 2)
        The twiddle, in the convention of :func:`butterfly_multiply`: a new, writable,
        C-contiguous array.

    Raises
    ------
    ValueError
        If ``n`` is not a power of two, or ``kind`` is not one of the three.
    TypeError
        If ``n`` is not an integer, ``dtype`` is not one of the four, or ``rng`` is not a
        seed or a generator.

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
    n = check_int(n, "n", minimum=1, maximum=MAX_SIZE)
    check_power_of_two(n, "n", "value")
    kind = check_choice(kind, "kind", ("gaussian", "orthogonal", "identity"))
    dtype = check_dtype(dtype, "dtype")
    rng = check_rng(rng, "rng")
    shape = _twiddle_shape(n)
    complex_ = dtype.kind == "c"
    if kind == "identity":
        tw = np.zeros(shape, dtype=dtype)
        tw[..., 0, 0] = 1
        tw[..., 1, 1] = 1
        return tw
    if kind == "gaussian":
        if complex_:
            tw = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * 0.5
        else:
            tw = rng.standard_normal(shape) * np.sqrt(0.5)
    else:
        # QR of a Gaussian block with the signs of R's diagonal moved into Q is Haar on O(2)/U(2)
        z = rng.standard_normal(shape)
        if complex_:
            z = z + 1j * rng.standard_normal(shape)
        q, r = np.linalg.qr(z)
        d = np.diagonal(r, axis1=-2, axis2=-1)
        tw = q * (d / np.abs(d))[..., None, :]
    return np.ascontiguousarray(tw, dtype=dtype)
