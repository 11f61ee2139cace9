"""The fast Walsh–Hadamard transform."""

from __future__ import annotations

import math
from typing import Any

from structlin._backend import (
    as_kernel_array,
    flatten_batch,
    grad_like,
    kernels,
    restore_batch,
)
from structlin._validate import (
    ABSENT,
    check_bool,
    check_min_ndim,
    check_power_of_two,
    check_shape,
    prepare,
)

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
        If ``x`` is not numeric or ``normalize`` is not a bool.

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
    p = _prepare_transform(x)
    return _transform(p.xp, p.x, p.dtype, normalize)


def _prepare_transform(x: Any, grad: Any = ABSENT) -> Any:
    """The seam of the transform and its VJP: ``(xp, dtype, x, grad)`` prepared and checked,
    ``dtype`` the promotion of both (a VJP computes in the wider of the two precisions)."""
    p = prepare(x=x, grad=grad)
    check_min_ndim(p.x, 1, "x", "(..., n)")
    check_power_of_two(p.x.shape[-1], "x", "last-axis length n")
    if p.grad is not None:
        check_shape(p.grad, p.x.shape, "grad", "the shape of fwht's output, which is x's shape")
    return p


def _transform(xp: Any, a: Any, dtype: Any, normalize: Any) -> Any:
    normalize = check_bool(normalize, "normalize")
    a2, batch = flatten_batch(as_kernel_array(xp, a, dtype))
    scale = 1.0 / math.sqrt(a.shape[-1]) if normalize else 1.0
    return restore_batch(kernels(xp, "hadamard").fwht(a2, scale), batch)


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

    Raises
    ------
    ValueError
        If ``x`` is 0-d, its last axis is not a power of two, or ``grad``'s shape is not
        ``x``'s.
    TypeError
        If ``x`` or ``grad`` is not numeric, or NumPy and CuPy arrays are mixed.

    Notes
    -----
    The same kernel as the forward transform: ``n log2(n)`` additions per vector, computed in
    the promoted precision of ``x`` and ``grad`` (a float32 ``grad`` for a float64 ``x`` is
    transformed in float64), then cast to ``x``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fwht_vjp
    >>> fwht_vjp(np.zeros(4), np.array([1.0, 0.0, 0.0, 0.0]))
    array([1., 1., 1., 1.])
    """
    p = _prepare_transform(x, grad)
    g = _transform(p.xp, p.grad, p.dtype, normalize)
    return grad_like(p.xp, g, p.x)
