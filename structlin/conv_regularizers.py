"""Regularisers of learned long-convolution kernels (Fu et al., arXiv:2302.06646): squashing
(soft thresholding) and smoothing (a centred moving average), with their VJPs."""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._backend import grad_as, result_dtype
from structlin._validate import check_float, check_int, check_min_ndim, check_shape, prepare

__all__ = [
    "smooth_kernel",
    "smooth_kernel_vjp",
    "squash_kernel",
    "squash_kernel_vjp",
]


def _prepare_kernel(k: Any, grad: Any = None, *, vjp: bool = False) -> Any:
    """``prepare(k=k, grad=grad)`` (the mix check and the conversion first), ``k`` cast to
    its floating-point dtype, ``grad`` checked against ``k``'s shape."""
    p = prepare(k=k, grad=grad, dtype_of=("k",), optional=() if vjp else ("grad",))
    check_min_ndim(p.k, 1, "k", "(..., Lk)")
    if p.grad is not None:
        check_shape(p.grad, p.k.shape, "grad", "k's shape")
    return p._replace(k=p.k.astype(p.dtype, copy=False))


def _check_lam(lam: Any) -> float:
    return check_float(lam, "lam", minimum=0.0)


def squash_kernel(k: Any, lam: float) -> Any:
    """Return the squashed kernel ``sign(k) * max(|k| - lam, 0)`` (soft thresholding).

    Parameters
    ----------
    k : array_like, shape (..., Lk)
        Kernel(s), real or complex (``sign(k) = k / |k|``).
    lam : float
        Threshold, ``lam >= 0``.

    Returns
    -------
    ndarray, shape (..., Lk)
        ``k``'s dtype (promoted to floating point).

    Raises
    ------
    ValueError
        If ``lam`` is negative or not finite, or ``k`` is 0-d.
    TypeError
        If ``k`` is not numeric or ``lam`` is not a real number (strings, None, complex).

    Notes
    -----
    The "squash" regulariser of Fu et al., *Simple Hardware-Efficient Long Convolutions for
    Sequence Modeling* (arXiv:2302.06646): applied to the kernel before each convolution,
    it makes small weights exactly zero and the kernel sparse. Elementwise, ``O(Lk)``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import squash_kernel
    >>> squash_kernel(np.array([-2.0, -0.5, 0.1, 1.5]), 1.0)
    array([-1. , -0. ,  0. ,  0.5])
    """
    p = _prepare_kernel(k)
    lam = _check_lam(lam)
    xp, k = p.xp, p.k
    mag = xp.abs(k)
    scale = xp.maximum(mag - lam, 0) / xp.where(mag > 0, mag, 1)
    return (k * scale.astype(k.dtype)).astype(k.dtype)


def squash_kernel_vjp(k: Any, lam: float, grad: Any) -> Any:
    """Return the gradient for ``k`` of :func:`squash_kernel` given the output gradient ``grad``.

    Parameters
    ----------
    k, lam
        As for :func:`squash_kernel`.
    grad : array_like, shape of ``k``
        Gradient of a real loss with respect to ``squash_kernel(k, lam)``.

    Returns
    -------
    ndarray, shape of ``k``
        Zero where ``|k| <= lam``; elsewhere ``grad`` for real ``k``, and for complex ``k``
        ``grad - lam (grad / |k| - Re(conj(grad) k) k / |k|^3)`` (PyTorch's convention).

    Raises
    ------
    ValueError
        If ``grad``'s shape differs from ``k``'s, or ``lam`` is invalid.
    TypeError
        NumPy and CuPy mixed (checked first), ``k`` or ``grad`` not numeric (named), ``lam``
        not a real number.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import squash_kernel_vjp
    >>> squash_kernel_vjp(np.array([-2.0, -0.5, 1.5]), 1.0, np.ones(3))
    array([1., 0., 1.])
    """
    p = _prepare_kernel(k, grad, vjp=True)
    lam = _check_lam(lam)
    xp, k, grad, dt = p.xp, p.k, p.grad, p.dtype
    mag = xp.abs(k)
    active = mag > lam
    if dt.kind != "c":
        return xp.where(active, grad.real if grad.dtype.kind == "c" else grad, 0).astype(dt)
    safe = xp.where(mag > 0, mag, 1)
    proj = xp.real(xp.conj(grad) * k)
    g = grad - lam * (grad / safe - proj * k / safe**3)
    return xp.where(active, g, 0).astype(dt)


def _check_width(width: Any) -> int:
    w = check_int(width, "width", minimum=1)
    if w % 2 == 0:
        raise ValueError(f"width must be an odd integer >= 1, got {width}")
    return w


def _moving_average(xp: Any, a: Any, w: int) -> Any:
    """``out[j] = (1 / w) sum_{|i| <= w // 2} a[j + i]`` along the last axis (zeros beyond
    the ends), in ``a``'s dtype, with one cumulative sum ``S``: ``out[j] = (S[min(j + h + 1,
    L)] - S[max(j - h, 0)]) / w``. The indices are clamped to the signal rather than the
    signal padded by the half-width ``h``: a window wider than the signal sums all of it, so
    the memory stays ``O(L)`` whatever ``w``."""
    h = w // 2
    L = a.shape[-1]
    cs = xp.cumsum(xp.concatenate([xp.zeros((*a.shape[:-1], 1), a.dtype), a], axis=-1),
                   axis=-1)
    j = np.arange(L)
    hi = np.minimum(j + h + 1, L)
    lo = np.maximum(j - h, 0)
    # the differences of two prefix sums, computed in a's dtype, divided by the true width
    return ((cs[..., xp.asarray(hi)] - cs[..., xp.asarray(lo)]) / w).astype(a.dtype)


def smooth_kernel(k: Any, width: int) -> Any:
    """Return the kernel smoothed by a centred moving average of ``width`` taps.

    Parameters
    ----------
    k : array_like, shape (..., Lk)
        Kernel(s).
    width : int
        Odd window length.

    Returns
    -------
    ndarray, shape (..., Lk)
        ``out[j] = (1 / width) sum_{|i| <= width // 2} k[j + i]``, with zeros beyond the ends
        (``avg_pool1d(k, width, stride=1, padding=width // 2)``), in ``k``'s dtype.

    Raises
    ------
    ValueError
        If ``width`` is not an odd positive integer or is above ``2**40``, or ``k`` is 0-d.
    TypeError
        If ``k`` is not numeric or ``width`` is not an integer (floats, strings, None).

    Notes
    -----
    The "smooth" regulariser of arXiv:2302.06646 (average pooling of the kernel weights),
    which damps the high frequencies of learned long kernels. ``O(Lk)`` per kernel with a
    cumulative sum whatever ``width``: a window of ``width >= 2 Lk - 1`` taps covers the whole
    kernel at every output (each output is ``sum(k) / width``), so the window is clamped to
    the kernel instead of the kernel being padded by the width. Symmetric, so it is its own
    adjoint.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import smooth_kernel
    >>> smooth_kernel(np.array([0.0, 3.0, 0.0, 0.0, 6.0]), 3)
    array([1., 1., 1., 2., 2.])
    """
    p = _prepare_kernel(k)
    return _moving_average(p.xp, p.k, _check_width(width))


def smooth_kernel_vjp(k: Any, width: int, grad: Any) -> Any:
    """Return the gradient for ``k`` of :func:`smooth_kernel`: ``smooth_kernel(grad, width)``.

    Parameters
    ----------
    k, width
        As for :func:`smooth_kernel` (``k`` gives the dtype and shape).
    grad : array_like, shape of ``k``
        Gradient of a real loss with respect to ``smooth_kernel(k, width)``.

    Returns
    -------
    ndarray, shape of ``k``
        The moving average is symmetric, so its adjoint is itself: ``smooth_kernel(grad,
        width)``, computed in the wider of ``k``'s and ``grad``'s precisions and returned in
        ``k``'s dtype (the real part for a real ``k``).

    Raises
    ------
    ValueError
        If ``grad``'s shape differs from ``k``'s, or ``width`` is invalid.
    TypeError
        NumPy and CuPy mixed (checked first), ``k`` or ``grad`` not numeric (named), ``width``
        not an integer.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import smooth_kernel_vjp
    >>> smooth_kernel_vjp(np.zeros(3), 3, np.array([3.0, 0.0, 0.0]))
    array([1., 1., 0.])
    """
    p = _prepare_kernel(k, grad, vjp=True)
    w = _check_width(width)
    # in the wider of k's and grad's precisions, then k's dtype (PyTorch's convention)
    g = p.grad.astype(result_dtype(k=p.k, grad=p.grad), copy=False)
    return grad_as(p.xp, _moving_average(p.xp, g, w), p.dtype)
