"""Kaleidoscope matrices (K-matrices): products of butterflies and adjoint butterflies.

Convention
----------
The twiddle of a K-matrix of width ``w`` and size ``n = 2**L`` is an array of shape
``(w, 2, L, n//2, 2, 2)``; each ``twiddle[i, j]`` is a butterfly twiddle in the convention of
:func:`structlin.butterfly_multiply` (increasing stride, factor 0 applied first). The matrix is

    K = B(tw[0, 0]) B(tw[0, 1])^H  B(tw[1, 0]) B(tw[1, 1])^H  ...  B(tw[w-1, 0]) B(tw[w-1, 1])^H

where ``B(t) = butterfly_to_dense(t)`` and ``^H`` is the conjugate transpose, so a vector ``x``
meets ``B(tw[w-1, 1])^H`` first. ``B(t)^H`` applies the conjugate-transposed blocks of ``t``
in decreasing stride (stride ``n/2`` first), so each pair ``B B^H`` is a Beneš-like network:
strides ``n/2, ..., 2, 1, 1, 2, ..., n/2``.

Reference: T. Dao, N. Sohoni, A. Gu, M. Eichhorn, A. Blonder, M. Leszczynski, A. Rudra, C. Ré,
"Kaleidoscope: An Efficient, Learnable Representation For All Structured Linear Maps",
ICLR 2020, arXiv:2012.14966.
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
    check_choice,
    check_dtype,
    check_int,
    check_min_ndim,
    check_power_of_two,
    check_rng,
    check_shape,
    prepare,
)
from structlin.butterfly import butterfly_to_dense, random_butterfly

__all__ = [
    "kaleidoscope_multiply",
    "kaleidoscope_multiply_vjp",
    "kaleidoscope_to_dense",
    "random_kaleidoscope",
]

#: the largest width accepted (each unit of width is two butterflies); a guard against a
#: width argument that would allocate without bound
MAX_WIDTH = 1 << 16


def check_kaleidoscope_twiddle(
    twiddle: Any, n: int | None = None, vector: str = "x"
) -> tuple[int, int]:
    """Validate the shape ``(w, 2, L, n//2, 2, 2)`` of a K-matrix twiddle, against the length
    ``n`` of ``vector``'s last axis when given; return ``(w, n)``."""
    shape = tuple(twiddle.shape)
    if twiddle.ndim != 6 or shape[1] != 2 or shape[4:] != (2, 2) or shape[0] < 1:
        raise ValueError(
            "twiddle must have shape (w, 2, L, n//2, 2, 2) (width w >= 1, two butterflies per "
            f"unit of width, log2 of the size, blocks per factor, 2, 2), got {shape}"
        )
    w, L = shape[0], shape[2]
    if n is None:
        n = 1 << L
        check_shape(twiddle, (w, 2, L, n // 2, 2, 2), "twiddle", f"L = {L} factors, so n = {n}")
        return w, n
    L = n.bit_length() - 1
    check_shape(twiddle, (w, 2, L, n // 2, 2, 2), "twiddle",
                f"(w, 2, L, n//2, 2, 2) for {vector} with n = {n} along its last axis")
    return w, n


def operator_twiddle(xp, tw):
    """The twiddle the kernels apply: ``tw[:, 1]`` replaced by its conjugate-transposed blocks
    (``B(t)^H`` applies ``t^H`` in decreasing stride). A new C-contiguous array."""
    out = xp.array(tw, copy=True, order="C")
    adj = xp.swapaxes(tw[:, 1], -1, -2)
    out[:, 1] = xp.conj(adj) if tw.dtype.kind == "c" else adj
    return out


def _prepare_product(twiddle: Any, x: Any, grad: Any = ABSENT) -> Any:
    p = prepare(twiddle=twiddle, x=x, grad=grad, dtype_of=("twiddle", "x"))
    check_min_ndim(p.x, 1, "x", "(..., n)")
    n = p.x.shape[-1]
    check_power_of_two(n, "x", "last-axis length n")
    check_kaleidoscope_twiddle(p.twiddle, n)
    if p.twiddle.dtype.kind in "fc" and not bool(p.xp.isfinite(p.twiddle).all()):
        raise ValueError("twiddle must be finite: it holds NaN or infinity")
    if p.grad is not None:
        check_shape(p.grad, p.x.shape, "grad", "the shape of the product, which is x's shape")
    return p


def kaleidoscope_multiply(twiddle: Any, x: Any) -> Any:
    """Return the K-matrix product ``K x`` over the last axis of ``x``.

    Parameters
    ----------
    twiddle : array_like, shape (w, 2, L, n//2, 2, 2)
        ``w`` pairs of butterfly twiddles (module convention):
        ``K = B(tw[0,0]) B(tw[0,1])^H ... B(tw[w-1,0]) B(tw[w-1,1])^H`` with
        ``B(t) = butterfly_to_dense(t)``; ``x`` meets ``B(tw[w-1,1])^H`` first. Real or
        complex, independently of ``x``.
    x : array_like, shape (..., n)
        Vectors along the last axis, any leading batch dimensions; ``n = 2**L``.

    Returns
    -------
    ndarray, shape (..., n)
        ``x @ K.T``, with the dtype ``numpy.result_type(twiddle, x)`` (integers and bool
        promoted to float64) and the array type of the inputs (NumPy or CuPy).

    Raises
    ------
    ValueError
        If ``n`` is not a power of two, ``x`` is 0-d, ``twiddle`` is not
        ``(w, 2, log2(n), n//2, 2, 2)`` with ``w >= 1``, or ``twiddle`` holds NaN or infinity
        (checked once per call; on the GPU this reads one flag back to the host).
    TypeError
        If a dtype is not numeric, or NumPy and CuPy arrays are mixed.

    See Also
    --------
    kaleidoscope_to_dense : the matrix ``K`` (the reference this function is tested against).
    kaleidoscope_multiply_vjp : gradients of this product.
    structlin.butterfly_multiply : one butterfly.
    structlin.kaleidoscope_permutation : the width-1 twiddle of any permutation.

    Notes
    -----
    ``K x`` costs ``2 w`` butterfly products: ``6 w n log2(n)`` real flops per vector (four
    times that for complex data) against ``2 n^2`` for the dense product. Every matrix with a
    fast algorithm (an arithmetic circuit of ``s`` gates) is a K-matrix of width ``O(s/n)``;
    every permutation has width 1 (Dao et al. 2020, arXiv:2012.14966).

    The kernels apply all ``2 w`` butterflies to a tile of rows while it stays close to the
    processor, so ``x`` is read and written once whatever the width: on the CPU (rows of
    ``64 <= n`` elements up to 256 KiB) an L1 cache's worth of rows goes through the butterfly
    kernels' SIMD register blocks; on the GPU (rows up to 64 KiB) a thread block holds up to
    8 whole rows in shared memory. Longer (or shorter) rows take the butterflies one after
    the other, each with the butterfly kernels' own cache-blocked passes.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_multiply, kaleidoscope_to_dense, random_kaleidoscope
    >>> tw = random_kaleidoscope(8, width=2, rng=0)
    >>> tw.shape
    (2, 2, 3, 4, 2, 2)
    >>> x = np.arange(16.0).reshape(2, 8)
    >>> bool(np.allclose(kaleidoscope_multiply(tw, x), x @ kaleidoscope_to_dense(tw).T))
    True
    """
    p = _prepare_product(twiddle, x)
    x2, batch = flatten_batch(as_kernel_array(p.xp, p.x, p.dtype))
    tw = operator_twiddle(p.xp, as_kernel_array(p.xp, p.twiddle, p.dtype))
    y = kernels(p.xp, "kaleidoscope").apply(tw, x2)
    return restore_batch(y, batch)


def kaleidoscope_multiply_vjp(twiddle: Any, x: Any, grad: Any) -> tuple[Any, Any]:
    """Return the gradients ``(grad_twiddle, grad_x)`` of :func:`kaleidoscope_multiply`.

    Parameters
    ----------
    twiddle, x
        As for :func:`kaleidoscope_multiply`.
    grad : array_like, shape (..., n)
        The gradient of a real loss with respect to the product ``y = K x``.

    Returns
    -------
    grad_twiddle : ndarray, shape (w, 2, L, n//2, 2, 2)
        Gradient for ``twiddle``, summed over the batch, with ``twiddle``'s dtype (promoted to
        floating point).
    grad_x : ndarray, shape (..., n)
        ``K^H grad``, with ``x``'s dtype (promoted to floating point).

    Notes
    -----
    Complex gradients follow PyTorch's convention (``dl/dRe(z) + 1j dl/dIm(z)``); for a real
    argument of a complex product the gradient is the real part. The backward pass goes
    through the ``2 w`` butterflies from the last applied to the first, each with the
    butterfly VJP; the gradient of an adjoint factor ``B(t)^H`` is mapped back to ``t`` (the
    gradient of ``conj(t^T)`` is ``conj(G)^T``).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_multiply_vjp, kaleidoscope_to_dense, random_kaleidoscope
    >>> tw = random_kaleidoscope(4, rng=1)
    >>> x = np.ones((3, 4))
    >>> g = np.arange(12.0).reshape(3, 4)
    >>> gtw, gx = kaleidoscope_multiply_vjp(tw, x, g)
    >>> gtw.shape, gx.shape
    ((1, 2, 2, 2, 2, 2), (3, 4))
    >>> bool(np.allclose(gx, g @ kaleidoscope_to_dense(tw)))
    True
    """
    p = _prepare_product(twiddle, x, grad)
    xp = p.xp
    x2, batch = flatten_batch(as_kernel_array(xp, p.x, p.dtype))
    g2, _ = flatten_batch(as_kernel_array(xp, p.grad, p.dtype))
    tw = operator_twiddle(xp, as_kernel_array(xp, p.twiddle, p.dtype))
    gtw, gx = kernels(xp, "kaleidoscope").apply_vjp(tw, x2, g2)
    # the gradient of the applied blocks conj(t^T) of an adjoint factor is conj(G)^T
    gtw = operator_twiddle(xp, gtw)
    return grad_like(xp, gtw, p.twiddle), restore_batch(grad_like(xp, gx, p.x), batch)


def kaleidoscope_to_dense(twiddle: Any) -> Any:
    """Return the dense ``(n, n)`` matrix ``K`` of a K-matrix twiddle (the reference).

    Parameters
    ----------
    twiddle : array_like, shape (w, 2, L, n//2, 2, 2)
        In the convention of :func:`kaleidoscope_multiply`.

    Returns
    -------
    ndarray, shape (n, n)
        ``K = B(tw[0,0]) B(tw[0,1])^H ... B(tw[w-1,0]) B(tw[w-1,1])^H``, so that
        ``kaleidoscope_multiply(twiddle, x) == x @ K.T``; dtype of ``twiddle`` promoted to
        floating point.

    Notes
    -----
    The product of ``2 w`` dense butterflies (:func:`structlin.butterfly_to_dense`) with plain
    array operations: ``O(w n^3)`` time, for tests and small sizes.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_to_dense, random_kaleidoscope
    >>> K = kaleidoscope_to_dense(random_kaleidoscope(4, kind="identity"))
    >>> bool(np.array_equal(K, np.eye(4)))
    True
    """
    p = prepare(twiddle=twiddle)
    w, n = check_kaleidoscope_twiddle(p.twiddle)
    xp = p.xp
    tw = p.twiddle.astype(p.dtype, copy=False)
    K = xp.eye(n, dtype=p.dtype)
    for i in range(w):
        B0 = butterfly_to_dense(tw[i, 0])
        B1h = butterfly_to_dense(tw[i, 1], transpose=True, conjugate=True)
        K = K @ B0 @ B1h
    return K


def random_kaleidoscope(
    n: int,
    width: int = 1,
    *,
    kind: Literal["gaussian", "orthogonal", "identity"] = "gaussian",
    dtype: Any = np.float64,
    rng: Any = None,
) -> np.ndarray:
    """Return the twiddle of a random (or identity) K-matrix of size ``n`` and width ``width``.

    Parameters
    ----------
    n : int
        Size, a power of two (at most ``2**40``).
    width : int, default 1
        Number of ``B B^H`` pairs, ``1 <= width <= 65536``.
    kind : {"gaussian", "orthogonal", "identity"}, default "gaussian"
        The kind of each of the ``2 width`` butterflies, as in
        :func:`structlin.random_butterfly`: ``"gaussian"`` keeps the expected squared norm of a
        vector, ``"orthogonal"`` makes ``K`` orthogonal (unitary), ``"identity"`` makes it the
        identity.
    dtype : dtype, default float64
        float32, float64, complex64 or complex128.
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator
        Seed or generator.

    Returns
    -------
    ndarray, shape (width, 2, log2(n), n//2, 2, 2)
        A new C-contiguous twiddle in the convention of :func:`kaleidoscope_multiply`.

    Raises
    ------
    ValueError
        If ``n`` is not a power of two, ``width`` is out of range or ``kind`` unknown.
    TypeError
        If ``n`` or ``width`` is not an integer, ``dtype`` not one of the four or ``rng`` not
        a seed or generator.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_to_dense, random_kaleidoscope
    >>> K = kaleidoscope_to_dense(random_kaleidoscope(8, 3, kind="orthogonal", rng=0))
    >>> bool(np.allclose(K @ K.T, np.eye(8)))
    True
    """
    n = check_int(n, "n", minimum=1, maximum=MAX_SIZE)
    check_power_of_two(n, "n", "value")
    width = check_int(width, "width", minimum=1, maximum=MAX_WIDTH)
    kind = check_choice(kind, "kind", ("gaussian", "orthogonal", "identity"))
    dtype = check_dtype(dtype, "dtype")
    rng = check_rng(rng, "rng")
    L = n.bit_length() - 1
    out = np.empty((width, 2, L, n // 2, 2, 2), dtype=dtype)
    for i in range(width):
        for j in range(2):
            out[i, j] = random_butterfly(n, kind=kind, dtype=dtype, rng=rng)
    return out
