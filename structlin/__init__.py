"""structlin: structured linear algebra on NumPy (Numba kernels) and CuPy (CUDA kernels)."""

from structlin.butterfly import (
    bit_reversal_permutation,
    butterfly_multiply,
    butterfly_multiply_vjp,
    butterfly_to_dense,
    random_butterfly,
)
from structlin.hadamard import fwht

__version__ = "0.1.0"

__all__ = [
    "bit_reversal_permutation",
    "butterfly_multiply",
    "butterfly_multiply_vjp",
    "butterfly_to_dense",
    "fwht",
    "random_butterfly",
]
