"""Long convolutions (the ``conv`` family), kept as one import path.

The family's code lives in one module per concept; every name importable from here before the
split still is:

- :mod:`structlin.conv_fft`: the engine (:func:`fftconv`, :func:`fftconv_vjp`,
  :func:`fftconv_plan` / :class:`FFTConvPlan`, :func:`fftconv_to_dense`);
- :mod:`structlin.conv_stream`: streaming (:func:`fftconv_stream` / :class:`FFTConvStream`);
- :mod:`structlin.conv_regularizers`: :func:`squash_kernel`, :func:`smooth_kernel` and their
  VJPs;
- :mod:`structlin.ssm_kernels`: :func:`ssm_kernel`, :func:`ssm_conv_chunked` (to move to the
  state-space family).

This module is not in the family registry (its names are exported by those modules), so
``structlin/__init__`` never sees a name twice.
"""

from __future__ import annotations

from structlin.conv_fft import (
    FFTConvPlan,
    fftconv,
    fftconv_plan,
    fftconv_to_dense,
    fftconv_vjp,
)
from structlin.conv_regularizers import (
    smooth_kernel,
    smooth_kernel_vjp,
    squash_kernel,
    squash_kernel_vjp,
)
from structlin.conv_stream import FFTConvStream, fftconv_stream
from structlin.ssm_kernels import ssm_conv_chunked, ssm_kernel

__all__ = [
    "FFTConvPlan",
    "FFTConvStream",
    "fftconv",
    "fftconv_plan",
    "fftconv_stream",
    "fftconv_to_dense",
    "fftconv_vjp",
    "smooth_kernel",
    "smooth_kernel_vjp",
    "squash_kernel",
    "squash_kernel_vjp",
    "ssm_conv_chunked",
    "ssm_kernel",
]
