"""Hypothesis strategies shared by every family's tests.

Arrays are drawn as a NumPy seed plus a shape (not element by element): the properties
checked here are identities that hold for every input, and a seeded generator shrinks well and
keeps the examples fast. Special values (NaN, inf, zeros) are tested explicitly elsewhere.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

#: every dtype the kernels are compiled for
KERNEL_DTYPES = (np.float32, np.float64, np.complex64, np.complex128)
REAL_DTYPES = (np.float32, np.float64)


def dtypes(real_only: bool = False) -> st.SearchStrategy[np.dtype]:
    """A kernel dtype."""
    return st.sampled_from(REAL_DTYPES if real_only else KERNEL_DTYPES).map(np.dtype)


def batch_shapes(max_dims: int = 3, max_side: int = 3) -> st.SearchStrategy[tuple[int, ...]]:
    """Leading batch dimensions, including () and shapes with a 0."""
    return st.lists(st.integers(0, max_side), min_size=0, max_size=max_dims).map(tuple)


def log2_sizes(max_log2: int = 8, min_log2: int = 0) -> st.SearchStrategy[int]:
    """``L`` for a size ``n = 2**L``."""
    return st.integers(min_log2, max_log2)


def seeds() -> st.SearchStrategy[int]:
    return st.integers(0, 2**32 - 1)


def random_array(rng: np.random.Generator, shape, dtype, scale: float = 1.0) -> np.ndarray:
    """Standard normal entries (real and imaginary parts) of the given dtype."""
    dtype = np.dtype(dtype)
    a = rng.standard_normal(shape)
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return (scale * a).astype(dtype)


def tolerance(dtype, n: int = 1) -> float:
    """Relative tolerance for comparing a fast result with a dense one in ``dtype``."""
    eps = np.finfo(np.dtype(dtype)).eps
    return float(eps * 64 * max(1.0, np.log2(max(n, 2))))
