"""structlin: structured linear algebra on NumPy (Numba kernels) and CuPy (CUDA kernels)."""

from structlin.butterfly import (
    bit_reversal_permutation,
    butterfly_multiply,
    butterfly_multiply_vjp,
    butterfly_to_dense,
    random_butterfly,
)
from structlin.butterfly_factorize import butterfly_factorize, butterfly_fit
from structlin.hadamard import fwht, fwht_vjp

__version__ = "0.1.0"

__all__ = [
    "bit_reversal_permutation",
    "butterfly_factorize",
    "butterfly_fit",
    "butterfly_multiply",
    "butterfly_multiply_vjp",
    "butterfly_to_dense",
    "fwht",
    "fwht_vjp",
    "random_butterfly",
]
