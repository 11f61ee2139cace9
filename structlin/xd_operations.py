"""XD-operations: ``K diag(L w) M x`` with three K-matrices, a learnable generalised convolution.

Convention
----------
An XD-operation of size ``n = 2**L`` is given by three K-matrix twiddles ``tw_K``, ``tw_L``,
``tw_M`` (each of shape ``(width, 2, L, n//2, 2, 2)`` in the convention of
:func:`structlin.kaleidoscope_multiply`; the three widths may differ) and a vector ``w`` of
length ``n``:

    y = K diag(L w) M x,

over the last axis of ``x``. With ``K = F^{-1}`` and ``L = M = F`` (``F`` the DFT) this is the
circular convolution of ``x`` with ``w`` (:func:`xd_from_conv`), so an XD-op can start training
as a convolution and learn away from it.

Reference: N. Roberts, M. Khodak, T. Dao, L. Li, C. Ré, A. Talwalkar, "Rethinking Neural
Operations for Diverse Tasks", NeurIPS 2021, arXiv:2103.15798.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from structlin._backend import as_kernel_array, flatten_batch, grad_like, restore_batch
from structlin._validate import (
    ABSENT,
    MAX_SIZE,
    check_choice,
    check_dtype,
    check_int,
    check_min_ndim,
    check_power_of_two,
    check_shape,
    prepare,
)
from structlin.kaleidoscope import kaleidoscope_multiply, kaleidoscope_multiply_vjp

__all__ = ["xd_from_conv", "xd_multiply", "xd_multiply_vjp"]

_TWIDDLES = ("tw_K", "tw_L", "tw_M")


def _check_xd_twiddle(tw: Any, n: int, name: str) -> None:
    shape = tuple(tw.shape)
    L = n.bit_length() - 1
    if tw.ndim != 6 or shape[0] < 1 or shape[1:] != (2, L, n // 2, 2, 2):
        raise ValueError(
            f"{name} must have shape (width, 2, L, n//2, 2, 2) = (width, 2, {L}, {n // 2}, 2, 2) "
            f"with width >= 1 for x with n = {n} along its last axis, got {shape}"
        )


def _prepare_xd(tw_K, tw_L, tw_M, w, x, grad=ABSENT):
    names = (*_TWIDDLES, "w", "x")
    p = prepare(tw_K=tw_K, tw_L=tw_L, tw_M=tw_M, w=w, x=x, grad=grad, dtype_of=names)
    check_min_ndim(p.x, 1, "x", "(..., n)")
    n = p.x.shape[-1]
    check_power_of_two(n, "x", "last-axis length n")
    for name in _TWIDDLES:
        _check_xd_twiddle(getattr(p, name), n, name)
    check_shape(p.w, (n,), "w", "the length n of x's last axis")
    if p.grad is not None:
        check_shape(p.grad, p.x.shape, "grad", "the shape of the product, which is x's shape")
    return p


def _cast(p, dtype):
    xp = p.xp
    return tuple(as_kernel_array(xp, getattr(p, k), dtype) for k in (*_TWIDDLES, "w"))


def xd_multiply(tw_K: Any, tw_L: Any, tw_M: Any, w: Any, x: Any) -> Any:
    """Return the XD-operation ``K diag(L w) M x`` over the last axis of ``x``.

    Parameters
    ----------
    tw_K, tw_L, tw_M : array_like, shape (width, 2, L, n//2, 2, 2)
        K-matrix twiddles (convention of :func:`structlin.kaleidoscope_multiply`); the widths
        may differ.
    w : array_like, shape (n,)
        The weights; ``L w`` is the diagonal.
    x : array_like, shape (..., n)
        Vectors along the last axis, any leading batch dimensions; ``n = 2**L``.

    Returns
    -------
    ndarray, shape (..., n)
        ``K diag(L w) M x`` with dtype ``numpy.result_type`` of all five inputs (integers
        promoted to float64), NumPy or CuPy like the inputs.

    Raises
    ------
    ValueError
        If ``n`` is not a power of two, a twiddle does not match ``n`` or ``w`` is not of
        length ``n``.
    TypeError
        If a dtype is not numeric, or NumPy and CuPy arrays are mixed.

    See Also
    --------
    xd_multiply_vjp : its gradients.
    xd_from_conv : the parameters of a convolution.
    structlin.kaleidoscope_multiply : the K-matrix product used three times.

    Notes
    -----
    Three K-matrix products (``M x`` and ``K z`` per vector, ``L w`` once): ``6 (w_K + w_M)
    n log2(n)`` real flops per vector plus ``6 w_L n log2(n)`` once (four times that for
    complex data), against ``2 n^2`` for a dense matrix. Roberts et al. 2021,
    arXiv:2103.15798.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_to_dense, random_kaleidoscope, xd_multiply
    >>> tK, tL, tM = (random_kaleidoscope(8, rng=s) for s in range(3))
    >>> w, x = np.arange(8.0), np.ones((2, 8))
    >>> K, L, M = (kaleidoscope_to_dense(t) for t in (tK, tL, tM))
    >>> bool(np.allclose(xd_multiply(tK, tL, tM, w, x), x @ (K @ np.diag(L @ w) @ M).T))
    True
    """
    p = _prepare_xd(tw_K, tw_L, tw_M, w, x)
    tK, tL, tM, ww = _cast(p, p.dtype)
    x2 = as_kernel_array(p.xp, p.x, p.dtype)
    d = kaleidoscope_multiply(tL, ww)
    return kaleidoscope_multiply(tK, d * kaleidoscope_multiply(tM, x2))


def xd_multiply_vjp(
    tw_K: Any, tw_L: Any, tw_M: Any, w: Any, x: Any, grad: Any
) -> tuple[Any, Any, Any, Any, Any]:
    """Return the gradients ``(g_K, g_L, g_M, g_w, g_x)`` of :func:`xd_multiply`.

    Parameters
    ----------
    tw_K, tw_L, tw_M, w, x
        As for :func:`xd_multiply`.
    grad : array_like, shape (..., n)
        The gradient of a real loss with respect to the product ``y``.

    Returns
    -------
    g_K, g_L, g_M : ndarray
        Gradients for the three twiddles (their shapes and dtypes), summed over the batch.
    g_w : ndarray, shape (n,)
        Gradient for ``w``.
    g_x : ndarray, shape (..., n)
        ``M^H diag(conj(L w)) K^H grad``.

    Notes
    -----
    With ``u = M x``, ``d = L w`` and ``z = d u``: ``g_z = K^H grad`` (with ``g_K`` from
    :func:`structlin.kaleidoscope_multiply_vjp`), ``g_u = conj(d) g_z``, ``g_d = sum over the
    batch of conj(u) g_z``, then the K-matrix VJPs of ``L`` (at ``w``) and ``M`` (at ``x``).
    Complex gradients follow PyTorch's convention (``dl/dRe + 1j dl/dIm``); a real argument
    of a complex product gets the real part. Cost: twice the forward products.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import random_kaleidoscope, xd_multiply, xd_multiply_vjp
    >>> tK, tL, tM = (random_kaleidoscope(4, rng=s) for s in range(3))
    >>> w, x, g = np.ones(4), np.arange(8.0).reshape(2, 4), np.ones((2, 4))
    >>> gK, gL, gM, gw, gx = xd_multiply_vjp(tK, tL, tM, w, x, g)
    >>> gK.shape, gw.shape, gx.shape
    ((1, 2, 2, 2, 2, 2), (4,), (2, 4))
    >>> e = 1e-6 * np.eye(4)[1]
    >>> fd = np.sum(g * (xd_multiply(tK, tL, tM, w + e, x) - xd_multiply(tK, tL, tM, w - e, x)))
    >>> bool(np.isclose(fd / 2e-6, gw[1]))
    True
    """
    p = _prepare_xd(tw_K, tw_L, tw_M, w, x, grad)
    xp = p.xp
    tK, tL, tM, ww = _cast(p, p.dtype)
    x2, batch = flatten_batch(as_kernel_array(xp, p.x, p.dtype))
    g2, _ = flatten_batch(as_kernel_array(xp, p.grad, p.dtype))
    d = kaleidoscope_multiply(tL, ww)
    u = kaleidoscope_multiply(tM, x2)
    z = d * u
    gK, gz = kaleidoscope_multiply_vjp(tK, z, g2)
    gu = xp.conj(d) * gz
    gd = xp.sum(xp.conj(u) * gz, axis=0)
    gL, gw = kaleidoscope_multiply_vjp(tL, ww, gd)
    gM, gx = kaleidoscope_multiply_vjp(tM, x2, gu)
    return (
        grad_like(xp, gK, p.tw_K),
        grad_like(xp, gL, p.tw_L),
        grad_like(xp, gM, p.tw_M),
        grad_like(xp, gw, p.w),
        restore_batch(grad_like(xp, gx, p.x), batch),
    )


def xd_from_conv(
    kernel: Any,
    n: int,
    *,
    mode: Literal["circular", "linear"] = "circular",
    dtype: Any = np.complex128,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return XD-op parameters ``(tw_K, tw_L, tw_M, w)`` that compute a 1-D convolution.

    Parameters
    ----------
    kernel : array_like, shape (m,)
        The convolution kernel (real or complex).
    n : int
        ``mode="circular"``: the length of the signals, a power of two with ``m <= n``; the
        XD-op of size ``n`` is the circular convolution ``y[i] = sum_j kernel[j] x[(i - j)
        mod n]``.
        ``mode="linear"``: the length ``N`` of the signals to convolve (any ``N >= 1``); the
        XD-op has the size ``n_fft``, the smallest power of two ``>= N + m - 1``. Pad ``x``
        with zeros at the end to ``n_fft`` and take the first ``N + m - 1`` outputs: they are
        the full linear convolution (``numpy.convolve(x, kernel)``); ``[m - 1 : N]`` of them
        is ``mode="valid"``.
    mode : {"circular", "linear"}, default "circular"
    dtype : {complex128, complex64}, default complex128
        The dtype of the returned arrays (the DFT is complex).

    Returns
    -------
    tw_K : ndarray, shape (width, 2, L, n//2, 2, 2)
        The inverse DFT :func:`structlin.kaleidoscope_dft` ``(n, inverse=True)``.
    tw_L, tw_M : ndarray
        The DFT, :func:`structlin.kaleidoscope_dft` ``(n)``, both.
    w : ndarray, shape (n,)
        ``kernel`` padded with zeros to ``n``, so ``L w`` is the DFT of the kernel.

    Raises
    ------
    ValueError
        If ``kernel`` is not 1-d and non-empty, ``n`` is not a power of two (circular) or is
        smaller than ``m`` (circular), or ``mode`` is unknown.
    TypeError
        If ``n`` is not an integer, ``kernel`` not numeric or ``dtype`` not complex.

    See Also
    --------
    xd_multiply : the operation.
    structlin.kaleidoscope_dft : the K-matrix of the DFT.
    structlin.fftconv : a fast FFT convolution.

    Notes
    -----
    By the convolution theorem, ``kernel * x = F^{-1} diag(F kernel) F x`` for the circular
    convolution of length ``n``; a linear convolution of lengths ``N`` and ``m`` is the
    circular one of any length ``>= N + m - 1`` on zero-padded signals. The parameters are
    exact (up to rounding), so training starts from the convolution (Roberts et al. 2021,
    arXiv:2103.15798, "warm start" from a convolution). Building them costs ``O(n log n)``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import xd_from_conv, xd_multiply
    >>> k, x = np.array([1.0, 2.0, 3.0]), np.arange(8.0)
    >>> params = xd_from_conv(k, 8)
    >>> y = xd_multiply(*params, x).real
    >>> ref = np.real(np.fft.ifft(np.fft.fft(k, 8) * np.fft.fft(x)))
    >>> bool(np.allclose(y, ref))
    True
    >>> params = xd_from_conv(k, 5, mode="linear")   # n_fft = 8 >= 5 + 3 - 1
    >>> xpad = np.zeros(8); xpad[:5] = x[:5]
    >>> bool(np.allclose(xd_multiply(*params, xpad).real[:7], np.convolve(x[:5], k)))
    True
    """
    import structlin as sl

    p = prepare(kernel=kernel)
    if p.kernel.ndim != 1 or p.kernel.shape[0] < 1:
        raise ValueError(f"kernel must be a non-empty 1-d array (m,), got shape {p.kernel.shape}")
    m = int(p.kernel.shape[0])
    mode = check_choice(mode, "mode", ("circular", "linear"))
    dtype = check_dtype(dtype, "dtype", allowed=(np.complex64, np.complex128))
    if mode == "circular":
        n = check_int(n, "n", minimum=m, maximum=MAX_SIZE)
        check_power_of_two(n, "n", "value")
        size = n
    else:
        n = check_int(n, "n", minimum=1, maximum=MAX_SIZE)
        size = 1 << max(0, int(n + m - 2).bit_length())
        if size > MAX_SIZE:
            raise ValueError(f"n + len(kernel) - 1 = {n + m - 1} needs a transform larger "
                             f"than {MAX_SIZE}")
    tw_K = sl.kaleidoscope_dft(size, inverse=True, dtype=dtype)
    tw_F = sl.kaleidoscope_dft(size, dtype=dtype)
    xp = p.xp
    wv = xp.zeros(size, dtype=dtype)
    wv[:m] = p.kernel
    return tw_K, tw_F, tw_F.copy(), wv
