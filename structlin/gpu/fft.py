"""The FFT engine's GPU side: batched transforms of the last axis through cuFFT (``cupy.fft``).

The same entry points and contract as :mod:`structlin._cpu.fft` (2-D C-contiguous CuPy arrays,
one transform per row, unnormalized, the input's precision kept: complex64/float32 run cuFFT's
single-precision ``C2C``/``R2C``/``C2R`` plans, complex128/float64 its ``Z2Z``/``D2Z``/``Z2D``
ones). :mod:`structlin.fft` applies ``norm``, moves axes and pads.

cuFFT plans every length itself (its fast radices are 2, 3, 5 and 7; other prime factors go
through its own Bluestein), so :func:`is_smooth` is true for every ``n >= 1`` here and
:func:`r2c`/:func:`c2r` accept odd ``n`` as well: callers that test :func:`is_smooth` before
choosing padding or Bluestein hand cuFFT every length directly. Plans come from CuPy's plan
cache (``cupy.fft.config.get_plan_cache()``), so a repeated shape plans once; nothing
synchronizes the device.

Not run on a GPU yet: written against CuPy 14's ``cupy.fft``, whose ``norm="forward"`` leaves
the inverse unscaled and whose ``C2R`` path copies its input (cuFFT may overwrite it) and, like
cuFFT, ignores the imaginary parts of the ``0`` and ``n / 2`` bins.
"""

from __future__ import annotations

import cupy
import numpy as np

__all__ = ["c2c", "c2r", "fast_length", "is_smooth", "r2c"]


def is_smooth(n: int) -> bool:
    """Whether cuFFT runs length ``n`` directly: every ``n >= 1`` (it plans each length)."""
    return n >= 1


def fast_length(m: int) -> int:
    """``m`` itself: cuFFT plans every length (the CPU engine's rule picks SIMD-friendly ones)."""
    return max(1, int(m))


def c2c(x: cupy.ndarray, inverse: bool = False, out: cupy.ndarray | None = None,
        scale: float = 1.0) -> cupy.ndarray:
    """Unnormalized complex DFT of each row of ``x`` (2-D, C-contiguous, complex64/complex128):
    ``sum_j x[j] e^(-+2 pi i j k / n)`` (``-`` forward, ``+`` inverse), same dtype as ``x``.

    ``out`` (same shape and dtype, not aliasing ``x``) receives the result, which is also
    returned; cuFFT writes a new array that is then copied into it (``cupy.fft`` takes no
    output argument). ``scale`` multiplies the result (an elementwise pass on the device)."""
    if x.shape[0] == 0 or x.shape[1] == 0:
        y = cupy.empty_like(x)
    elif inverse:
        # norm="forward" scales only the forward transform: the inverse stays unnormalized
        y = cupy.fft.ifft(x, axis=-1, norm="forward")
    else:
        y = cupy.fft.fft(x, axis=-1)
    if scale != 1.0:
        y *= scale
    if out is None:
        return y
    out[...] = y
    return out


def r2c(x: cupy.ndarray) -> cupy.ndarray:
    """Unnormalized real-input DFT of each row of ``x`` (2-D, C-contiguous, float32/float64):
    the ``n // 2 + 1`` non-negative frequencies, complex64/complex128."""
    b, n = x.shape
    if b == 0:
        return cupy.empty((0, n // 2 + 1), dtype=np.result_type(x.dtype, np.complex64))
    return cupy.fft.rfft(x, axis=-1)


def c2r(X: cupy.ndarray, n: int, scale: float = 1.0) -> cupy.ndarray:
    """Unnormalized inverse of :func:`r2c`: ``sum_k X[k] e^(+2 pi i j k / n)`` over the full
    Hermitian spectrum (``n`` times ``numpy.fft.irfft``) of each row of ``X`` (2-D, C-contiguous,
    ``(B, n // 2 + 1)``); float32 for complex64, float64 for complex128. The imaginary parts of
    ``X[:, 0]`` and (``n`` even) ``X[:, n // 2]`` are ignored; ``X`` is not modified.
    ``scale`` multiplies the result."""
    if X.shape[0] == 0:
        return cupy.empty((0, n), dtype=X.real.dtype)
    y = cupy.fft.irfft(X, n=n, axis=-1, norm="forward")
    if scale != 1.0:
        y *= scale
    return y
