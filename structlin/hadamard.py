"""The fast Walsh–Hadamard transform."""

from __future__ import annotations

import math
from typing import Any

from structlin._backend import (
    array_namespace,
    as_kernel_array,
    flatten_batch,
    kernels,
    restore_batch,
    result_dtype,
)
from structlin._validate import check_min_ndim, check_power_of_two

__all__ = ["fwht", "fwht_vjp"]


def fwht(x: Any, *, normalize: bool = False) -> Any:
    """Return the Walsh–Hadamard transform of ``x`` along its last axis.

    Parameters
    ----------
    x : array_like, shape (..., n)
        Real or complex input; ``n`` a power of two (tested up to ``2**24``). Any leading batch
        dimensions.
    normalize : bool, default False
        False: the unnormalized transform ``x @ H_n.T``. True: divide by ``sqrt(n)``, which
        makes the transform orthogonal and its own inverse.

    Returns
    -------
    ndarray, shape (..., n)
        ``x @ scipy.linalg.hadamard(n).T`` (``H_n`` in Sylvester, i.e. natural, order:
        ``H_n[i, j] = (-1) ** popcount(i & j)``), scaled by ``1/sqrt(n)`` when ``normalize``.
        The dtype is ``x``'s, promoted to floating point (integers and bool to float64); the
        array type is ``x``'s (NumPy or CuPy).

    Raises
    ------
    ValueError
        If ``x`` is 0-d or its last axis is not a power of two.
    TypeError
        If ``x`` is not numeric.

    See Also
    --------
    butterfly_multiply : the general butterfly; ``H_n`` is the butterfly whose blocks are all
        ``[[1, 1], [1, -1]]``.

    Notes
    -----
    ``H_n = H_2 ⊗ H_2 ⊗ ... ⊗ H_2`` is a product of ``log2(n)`` butterfly factors, each adding
    and subtracting pairs ``2**k`` apart, so the transform costs ``n log2(n)`` additions per
    vector instead of ``2 n^2`` flops for the dense product. The factors commute, so the CPU
    kernel groups them freely: for real data the strides below 64 are applied in SIMD registers
    on blocks of 64 consecutive elements (lane shuffles for strides below 16), larger strides as
    contiguous SIMD loops over a row segment that stays in the L2 cache; for rows beyond the
    cache, later passes work on tiles of consecutive columns, so ``x`` is read and written once
    per pass instead of once per factor. Rows are processed in
    parallel (Numba). On the GPU a CUDA kernel keeps each row in registers and shared memory.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import hadamard
    >>> from structlin import fwht
    >>> x = np.array([1.0, 2.0, 3.0, 4.0])
    >>> fwht(x)
    array([10., -2., -4.,  0.])
    >>> bool(np.allclose(fwht(x), hadamard(4) @ x))
    True
    >>> bool(np.allclose(fwht(fwht(x, normalize=True), normalize=True), x))
    True
    """
    xp = array_namespace(x=x)
    x = xp.asarray(x)
    dtype = result_dtype(x=x)
    check_min_ndim(x, 1, "x", "(..., n)")
    n = x.shape[-1]
    check_power_of_two(n, "x", "last-axis length n")
    x2, batch = flatten_batch(as_kernel_array(xp, x, dtype))
    scale = 1.0 / math.sqrt(n) if normalize else 1.0
    y = kernels(xp, "hadamard").fwht(x2, scale)
    return restore_batch(y, batch)


def fwht_vjp(x: Any, grad: Any, *, normalize: bool = False) -> Any:
    """Return the gradient ``grad_x`` of :func:`fwht` for the output gradient ``grad``.

    Parameters
    ----------
    x : array_like, shape (..., n)
        The input of the transform (only its dtype and shape are used: the transform is linear).
    grad : array_like, shape (..., n)
        Gradient of a real loss with respect to ``fwht(x, normalize=normalize)``.
    normalize : bool, default False
        As for :func:`fwht`.

    Returns
    -------
    ndarray, shape (..., n)
        ``H^H grad = fwht(grad)`` (``H`` is real and symmetric), with ``x``'s dtype promoted to
        floating point (the real part when ``x`` is real and ``grad`` complex).

    Notes
    -----
    The same kernel as the forward transform: ``n log2(n)`` additions per vector.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fwht_vjp
    >>> fwht_vjp(np.zeros(4), np.array([1.0, 0.0, 0.0, 0.0]))
    array([1., 1., 1., 1.])
    """
    xp = array_namespace(x=x, grad=grad)
    x = xp.asarray(x)
    grad = xp.asarray(grad)
    dx = result_dtype(x=x)
    result_dtype(grad=grad)
    if tuple(grad.shape) != tuple(x.shape):
        raise ValueError(
            f"grad must have the shape of fwht's output, which is x's shape {tuple(x.shape)}, "
            f"got {tuple(grad.shape)}"
        )
    g = fwht(grad, normalize=normalize)
    if dx.kind != "c" and g.dtype.kind == "c":
        g = g.real
    return xp.ascontiguousarray(g, dtype=dx)
