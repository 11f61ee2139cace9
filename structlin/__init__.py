"""structlin: structured linear algebra on NumPy (Numba kernels) and CuPy (CUDA kernels)."""

from structlin.butterfly import (
    bit_reversal_permutation,
    butterfly_multiply,
    butterfly_multiply_vjp,
    butterfly_to_dense,
    random_butterfly,
)
from structlin.conv import (
    FFTConvPlan,
    FFTConvStream,
    fftconv,
    fftconv_plan,
    fftconv_stream,
    fftconv_to_dense,
    fftconv_vjp,
    smooth_kernel,
    smooth_kernel_vjp,
    squash_kernel,
    squash_kernel_vjp,
    ssm_conv_chunked,
    ssm_kernel,
)
from structlin.hadamard import fwht, fwht_vjp

__version__ = "0.1.0"

__all__ = [
    "FFTConvPlan",
    "FFTConvStream",
    "bit_reversal_permutation",
    "butterfly_multiply",
    "butterfly_multiply_vjp",
    "butterfly_to_dense",
    "fftconv",
    "fftconv_plan",
    "fftconv_stream",
    "fftconv_to_dense",
    "fftconv_vjp",
    "fwht",
    "fwht_vjp",
    "random_butterfly",
    "smooth_kernel",
    "smooth_kernel_vjp",
    "squash_kernel",
    "squash_kernel_vjp",
    "ssm_conv_chunked",
    "ssm_kernel",
]
