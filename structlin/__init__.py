"""structlin: structured linear algebra on NumPy (Numba kernels) and CuPy (CUDA kernels)."""

from structlin.butterfly import (
    bit_reversal_permutation,
    butterfly_multiply,
    butterfly_multiply_vjp,
    butterfly_to_dense,
    random_butterfly,
)
from structlin.hadamard import fwht, fwht_vjp
from structlin.monarch import (
    btt_multiply,
    btt_multiply_vjp,
    btt_project,
    btt_to_dense,
    monarch_multiply,
    monarch_multiply_vjp,
    monarch_order_p_multiply,
    monarch_order_p_multiply_vjp,
    monarch_order_p_project,
    monarch_order_p_to_dense,
    monarch_project,
    monarch_to_dense,
)

__version__ = "0.1.0"

__all__ = [
    "bit_reversal_permutation",
    "btt_multiply",
    "btt_multiply_vjp",
    "btt_project",
    "btt_to_dense",
    "butterfly_multiply",
    "butterfly_multiply_vjp",
    "butterfly_to_dense",
    "fwht",
    "fwht_vjp",
    "monarch_multiply",
    "monarch_multiply_vjp",
    "monarch_order_p_multiply",
    "monarch_order_p_multiply_vjp",
    "monarch_order_p_project",
    "monarch_order_p_to_dense",
    "monarch_project",
    "monarch_to_dense",
    "random_butterfly",
]
