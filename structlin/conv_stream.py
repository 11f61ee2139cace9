"""Streaming long convolution: the causal :func:`~structlin.fftconv` of an input that arrives
in chunks (overlap-save), with the kernel's spectrum computed once."""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._backend import as_kernel_array
from structlin._validate import (
    check_dtype,
    check_finite,
    check_int,
    check_min_ndim,
    check_shape,
    prepare,
)
from structlin.conv_fft import (
    FFTConvPlan,
    Precision,
    _as_namespace_array,
    _check_kernel,
    _check_namespace,
    _compute_dtype,
    _engine_precision,
    fftconv,
)

__all__ = ["FFTConvStream", "fftconv_stream"]


class FFTConvStream:
    """Causal long convolution of an input that arrives in chunks (overlap-save).

    Make it with :func:`fftconv_stream`. ``push(u_chunk, pregate=None, postgate=None)``
    returns the outputs of the new samples; ``reset()`` forgets the past.

    Parameters
    ----------
    k : array_like, shape (H, Lk)
        The kernels (cast to the compute dtype).
    chunk : int
        The longest chunk ``push`` accepts.
    D : array_like, shape (H,), or None
        Skip weights (cast to the compute dtype).
    dtype : numpy.dtype
        The compute dtype: float32, float64, complex64 or complex128.
    xp : module
        ``numpy`` or ``cupy`` (anything else raises TypeError).
    precision : {"highest", "fp16", "bf16"}, default "highest"
        As for :func:`fftconv`, for every push.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fftconv_stream
    >>> stream = fftconv_stream(np.array([[1.0, 1.0]]), chunk=2)
    >>> stream.push(np.array([[1.0, 2.0]])), stream.push(np.array([[3.0]]))
    (array([[1., 3.]]), array([[5.]]))
    """

    def __init__(self, k, chunk: int, D, dtype: np.dtype, xp: Any, *,
                 precision: Precision = "highest"):
        self.xp = xp = _check_namespace(xp)
        k = _as_namespace_array(xp, k, "k")
        _check_kernel(k)
        self.chunk = check_int(chunk, "chunk", minimum=1)
        self.dtype = check_dtype(dtype, "dtype")
        self.H, self.Lk = (int(s) for s in k.shape)
        if D is not None:
            D = _as_namespace_array(xp, D, "D")
            check_shape(D, (self.H,), "D", "one skip weight per channel, k's rows")
            check_finite(D, "D")
        self.precision = _engine_precision(xp, precision, self.dtype)["precision"]
        self.k = as_kernel_array(xp, k, self.dtype)
        self.D = None if D is None else as_kernel_array(xp, D, self.dtype)
        self._plan = FFTConvPlan(self.k, self.Lk - 1 + self.chunk, self.dtype, self.dtype, xp)
        self.nfft = self._plan.nfft
        self.reset()

    def reset(self) -> None:
        """Forget the inputs seen so far (the next push starts a new signal)."""
        self._hist = None
        self._batch = None

    def push(self, u: Any, pregate: Any = None, postgate: Any = None) -> Any:
        """Return the outputs for the next ``c <= chunk`` samples ``u`` of shape (..., H, c)."""
        p = prepare(k=self.k, u=u, pregate=pregate, postgate=postgate,
                    optional=("pregate", "postgate"))
        xp, u = self.xp, p.u
        check_min_ndim(u, 2, "u", "(..., H, c)")
        c = int(u.shape[-1])
        if int(u.shape[-2]) != self.H:
            raise ValueError(
                f"u must have H = {self.H} channels on its second-to-last axis (k's rows), "
                f"got shape {tuple(u.shape)}"
            )
        if c > self.chunk:
            raise ValueError(
                f"u has {c} samples, more than the stream's chunk = {self.chunk}; push it in "
                f"pieces or make the stream with a larger chunk"
            )
        batch = tuple(u.shape[:-2])
        if self._batch is not None and batch != self._batch:
            raise ValueError(
                f"u must keep the batch shape {self._batch} of the earlier chunks, got "
                f"{batch}; call reset() to start a new signal"
            )
        for name in ("pregate", "postgate"):
            if getattr(p, name) is not None:
                check_shape(getattr(p, name), u.shape, name, "the chunk u's shape")
        if p.dtype != self.dtype:
            raise TypeError(
                f"u and the gates promote to {p.dtype}, but the stream computes in "
                f"{self.dtype}; make it with fftconv_stream(k, chunk, dtype={p.dtype.name!r})"
            )
        self._batch = batch
        if c == 0:
            return xp.zeros(u.shape, dtype=self.dtype)
        u = as_kernel_array(xp, u, self.dtype)
        v = u if p.pregate is None else u * as_kernel_array(xp, p.pregate, self.dtype)
        if self._hist is None:
            self._hist = xp.zeros((*batch, self.H, self.Lk - 1), dtype=self.dtype)
        ext = xp.concatenate([self._hist, v], axis=-1)
        y = fftconv(ext, self._plan, precision=self.precision)[..., self.Lk - 1:]
        self._hist = ext[..., ext.shape[-1] - (self.Lk - 1):].copy()
        if self.D is not None:
            y += self.D[:, None] * u
        if p.postgate is not None:
            y *= p.postgate
        return y


def fftconv_stream(k: Any, chunk: int, D: Any = None, *, dtype: Any = None,
                   precision: Precision = "highest") -> FFTConvStream:
    """Return a stream whose ``push`` convolves successive chunks as one long causal input.

    Parameters
    ----------
    k : array_like, shape (H, Lk)
        One kernel per channel.
    chunk : int
        The longest chunk ``push`` accepts (the transform length is chosen for it).
    D : array_like, shape (H,), optional
        Skip weight per channel.
    dtype : dtype, optional
        Compute dtype (default: the promotion of ``k`` and ``D``); chunks and gates must
        promote to it.
    precision : {"highest", "fp16", "bf16"}, default "highest"
        As for :func:`fftconv`: the transforms of every push on the GPU's tensor cores
        (float32 and complex64 data); checked, then full precision, on NumPy arrays.

    Returns
    -------
    FFTConvStream
        ``stream.push(u_chunk, pregate=None, postgate=None)`` with ``u_chunk`` of shape
        ``(..., H, c)``, ``c <= chunk``, returns ``(..., H, c)``: the concatenation of the
        pushed outputs equals ``fftconv(u, k, D, pregate=..., postgate=..., causal=True)`` of
        the concatenated inputs (up to rounding).

    Raises
    ------
    ValueError
        If ``k`` is not ``(H, Lk)``, ``D`` not ``(H,)``, or ``chunk < 1``; from ``push``, if a
        chunk has the wrong number of channels, is longer than ``chunk`` or changes the batch
        shape.
    TypeError
        NumPy and CuPy mixed, an argument that is not numeric, ``chunk`` not an integer, or
        a chunk that promotes beyond ``dtype``.

    Notes
    -----
    Overlap-save: the stream keeps the last ``Lk - 1`` gated inputs; each push convolves them
    followed by the new chunk, with the kernel's spectrum computed once for the transform
    length ``nfft >= 2 (Lk - 1) + chunk``, and keeps the last ``c`` outputs. Memory is
    ``O(batch H (Lk + chunk))`` whatever the total length.

    Streaming is causal only: the centred ("same") output at time ``t`` needs the inputs up
    to ``t + (Lk - 1) // 2``. It is the causal output delayed by that many samples,
    ``same[t] = causal[t + (Lk - 1) // 2]``, so it comes out of the stream that much later.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fftconv, fftconv_stream
    >>> rng = np.random.default_rng(0)
    >>> k = rng.standard_normal((4, 50))
    >>> u = rng.standard_normal((4, 300))
    >>> stream = fftconv_stream(k, chunk=64)
    >>> y = np.concatenate([stream.push(u[:, i:i + 64]) for i in range(0, 300, 64)], axis=-1)
    >>> bool(np.allclose(y, fftconv(u, k)))
    True
    """
    p = prepare(k=k, D=D, optional=("D",))
    return FFTConvStream(p.k, chunk, p.D, _compute_dtype(dtype, k=p.k, D=p.D), p.xp,
                         precision=precision)
