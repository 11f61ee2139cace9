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
from structlin.butterfly_special import (
    CirculantButterfly,
    DCTButterfly,
    butterfly_circulant,
    butterfly_dct,
    butterfly_dft,
    butterfly_dst,
    butterfly_hadamard,
    butterfly_toeplitz,
    circulant_multiply,
    circulant_multiply_vjp,
    dct,
    dct_butterfly_multiply,
    dct_butterfly_multiply_vjp,
    dct_vjp,
    dst,
    dst_vjp,
    toeplitz_multiply,
    toeplitz_multiply_vjp,
)
from structlin.hadamard import fwht, fwht_vjp

__version__ = "0.1.0"

__all__ = [
    "CirculantButterfly",
    "DCTButterfly",
    "bit_reversal_permutation",
    "butterfly_circulant",
    "butterfly_dct",
    "butterfly_dft",
    "butterfly_dst",
    "butterfly_hadamard",
    "butterfly_inverse",
    "butterfly_logdet",
    "butterfly_logdet_vjp",
    "butterfly_multiply",
    "butterfly_multiply_vjp",
    "butterfly_solve",
    "butterfly_solve_vjp",
    "butterfly_to_dense",
    "butterfly_toeplitz",
    "circulant_multiply",
    "circulant_multiply_vjp",
    "dct",
    "dct_butterfly_multiply",
    "dct_butterfly_multiply_vjp",
    "dct_vjp",
    "dst",
    "dst_vjp",
    "fwht",
    "fwht_vjp",
    "random_butterfly",
    "toeplitz_multiply",
    "toeplitz_multiply_vjp",
]
