"""The closed-form butterflies, under their old module name (a thin re-export).

The family lives in three modules, one concept each:

- :mod:`structlin.dft_hadamard`: :func:`butterfly_dft`, :func:`butterfly_hadamard`;
- :mod:`structlin.dct_dst`: :func:`dct`, :func:`dst`, their VJPs, :class:`DCTButterfly`,
  :func:`butterfly_dct`, :func:`butterfly_dst`, :func:`dct_butterfly_multiply` and its VJP;
- :mod:`structlin.circulant`: :func:`circulant_multiply`, :func:`toeplitz_multiply`, their VJPs,
  :class:`CirculantButterfly`, :func:`butterfly_circulant`, :func:`butterfly_toeplitz`.

``from structlin.butterfly_special import X`` keeps working for every name this module had;
the family registry lists the three modules, not this one, so ``structlin`` exports each name
once.
"""

from __future__ import annotations

# tests/test_gpu_compile_butterfly_special.py patches ``kernels`` here; the DCT/DST code now
# reads ``structlin.dct_dst.kernels``, which is what that test must patch
from structlin._backend import kernels  # noqa: F401
from structlin.circulant import (
    CirculantButterfly,
    butterfly_circulant,
    butterfly_toeplitz,
    circulant_multiply,
    circulant_multiply_vjp,
    toeplitz_multiply,
    toeplitz_multiply_vjp,
)
from structlin.dct_dst import (
    DCTButterfly,
    _dct_pieces,  # noqa: F401  (used by the kernel tests)
    butterfly_dct,
    butterfly_dst,
    dct,
    dct_butterfly_multiply,
    dct_butterfly_multiply_vjp,
    dct_vjp,
    dst,
    dst_vjp,
)
from structlin.dft_hadamard import butterfly_dft, butterfly_hadamard

__all__ = [
    "CirculantButterfly",
    "DCTButterfly",
    "butterfly_circulant",
    "butterfly_dct",
    "butterfly_dft",
    "butterfly_dst",
    "butterfly_hadamard",
    "butterfly_toeplitz",
    "circulant_multiply",
    "circulant_multiply_vjp",
    "dct",
    "dct_butterfly_multiply",
    "dct_butterfly_multiply_vjp",
    "dct_vjp",
    "dst",
    "dst_vjp",
    "toeplitz_multiply",
    "toeplitz_multiply_vjp",
]
