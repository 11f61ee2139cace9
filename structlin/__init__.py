"""structlin: structured linear algebra on NumPy (Numba kernels) and CuPy (CUDA kernels)."""

from structlin.butterfly import (
    bit_reversal_permutation,
    butterfly_multiply,
    butterfly_multiply_vjp,
    butterfly_to_dense,
    random_butterfly,
)
from structlin.hadamard import fwht, fwht_vjp
from structlin.pixelfly import (
    flat_block_butterfly_mask,
    pixelfly_multiply,
    pixelfly_multiply_vjp,
    pixelfly_project,
    pixelfly_to_dense,
)

__version__ = "0.1.0"

__all__ = [
    "bit_reversal_permutation",
    "butterfly_multiply",
    "butterfly_multiply_vjp",
    "butterfly_to_dense",
    "flat_block_butterfly_mask",
    "fwht",
    "fwht_vjp",
    "pixelfly_multiply",
    "pixelfly_multiply_vjp",
    "pixelfly_project",
    "pixelfly_to_dense",
    "random_butterfly",
]
