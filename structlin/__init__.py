"""structlin: structured linear algebra on NumPy (Numba kernels) and CuPy (CUDA kernels)."""

from structlin.butterfly import (
    bit_reversal_permutation,
    butterfly_multiply,
    butterfly_multiply_vjp,
    butterfly_to_dense,
    random_butterfly,
)
from structlin.butterfly_inverse import (
    butterfly_inverse,
    butterfly_logdet,
    butterfly_logdet_vjp,
    butterfly_solve,
    butterfly_solve_vjp,
)
from structlin.hadamard import fwht, fwht_vjp

__version__ = "0.1.0"

__all__ = [
    "bit_reversal_permutation",
    "butterfly_inverse",
    "butterfly_logdet",
    "butterfly_logdet_vjp",
    "butterfly_multiply",
    "butterfly_multiply_vjp",
    "butterfly_solve",
    "butterfly_solve_vjp",
    "butterfly_to_dense",
    "fwht",
    "fwht_vjp",
    "random_butterfly",
]
