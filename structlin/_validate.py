"""Argument checks shared by every family.

Each check raises ``ValueError`` (shapes, sizes, values) or ``TypeError`` (array kinds,
dtypes) with a message that names the argument, what was expected and what was given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "check_finite",
    "check_last_axis",
    "check_min_ndim",
    "check_power_of_two",
    "check_shape",
    "log2_exact",
]


def log2_exact(n: int) -> int | None:
    """Return ``L`` with ``2**L == n``, or None when ``n`` is not a positive power of two."""
    n = int(n)
    if n < 1 or n & (n - 1):
        return None
    return n.bit_length() - 1


def check_power_of_two(n: int, name: str, what: str = "size") -> int:
    """Return ``log2(n)``; raise ValueError naming ``name`` if ``n`` is not a power of two."""
    L = log2_exact(n)
    if L is None:
        raise ValueError(
            f"{name} must have a {what} that is a power of two (1, 2, 4, ...), got {n}"
        )
    return L


def check_min_ndim(a: Any, ndim: int, name: str, shape_doc: str) -> None:
    """Raise ValueError if ``a.ndim < ndim``; ``shape_doc`` describes the expected shape."""
    if a.ndim < ndim:
        raise ValueError(
            f"{name} must have at least {ndim} dimension(s), shape {shape_doc}; "
            f"got a {a.ndim}-d array of shape {tuple(a.shape)}"
        )


def check_shape(a: Any, expected: tuple[int, ...], name: str, why: str = "") -> None:
    """Raise ValueError if ``a.shape != expected``; ``why`` says where it comes from."""
    if tuple(a.shape) != tuple(expected):
        reason = f" ({why})" if why else ""
        raise ValueError(
            f"{name} must have shape {tuple(expected)}{reason}, got {tuple(a.shape)}"
        )


def check_last_axis(a: Any, n: int, name: str, why: str = "") -> None:
    """Raise ValueError if the last axis of ``a`` does not have length ``n``."""
    if a.shape[-1] != n:
        reason = f" ({why})" if why else ""
        raise ValueError(
            f"{name} must have length {n} along its last axis{reason}, "
            f"got shape {tuple(a.shape)}"
        )


def check_finite(a: Any, name: str) -> None:
    """Raise ValueError if ``a`` holds NaN or infinity."""
    xp = np if isinstance(a, np.ndarray) else __import__("cupy")
    if not bool(xp.isfinite(a).all()):
        raise ValueError(f"{name} must be finite, but it contains NaN or infinity")


def check_precision(precision: Any, choices: tuple[str, ...], dtype: Any, inputs: str) -> str:
    """Return ``precision`` if it is one of ``choices`` and fits the compute ``dtype``.

    ``choices[0]`` is full precision; the others are tensor-core precisions, which need
    float32 or complex64 data (``inputs`` names the arrays whose promotion gave ``dtype``).
    Raises ValueError otherwise.
    """
    if not isinstance(precision, str) or precision not in choices:
        raise ValueError(f"precision must be one of {choices}, got {precision!r}")
    if precision != choices[0] and np.dtype(dtype) not in (np.float32, np.complex64):
        raise ValueError(
            f"precision={precision!r} (tensor cores) needs float32 or complex64 data, got "
            f"{np.dtype(dtype)} (the result dtype of {inputs}); use precision={choices[0]!r}"
        )
    return precision
