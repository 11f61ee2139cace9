"""Sample arguments of the interop op table's operations that take ``precision``, shared by the
tests of the wrappers (``tests/test_interop_*.py``).

:data:`PRECISION_CASES` has one entry per operation of :data:`structlin.interop._ops.OPS` whose
structlin function takes ``precision``; ``tests/test_interop_contract.py`` fails when an
operation is missing, so a family that adds one adds its entry here.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import structlin
from structlin.interop._ops import OPS


@dataclass(frozen=True)
class PrecisionCase:
    """How to call one operation with ``precision``."""

    #: a tensor-core precision of the family
    tensor_core: str
    #: a value of the vocabulary that this family refuses
    refused: str
    #: ``make(rng, dtype)``: the arrays, in the op table's order (``OPS[name].arrays``)
    make: Callable[[np.random.Generator, Any], tuple]
    #: ``call(function, arrays, **keywords)``: calls the structlin function or a wrapper of it
    call: Callable[..., Any]
    #: which arrays are vectors (split into chunks by Dask); the others are parameters
    vectors: tuple[bool, ...]


def _monarch(rng, dtype):
    return tuple(rng.standard_normal(s).astype(dtype) for s in ((2, 3, 3), (3, 4, 2), (5, 6)))


def _fftconv(rng, dtype):
    B, H, L = 2, 3, 8
    shapes = ((B, H, L), (H, 5), (H,), (B, H, L), (B, H, L))
    return tuple(rng.standard_normal(s).astype(dtype) for s in shapes)


PRECISION_CASES: dict[str, PrecisionCase] = {
    "monarch_multiply": PrecisionCase(
        "tf32", "fp16", _monarch, lambda f, a, **kw: f(*a, **kw), (False, False, True)),
    "fftconv": PrecisionCase(
        "bf16", "tf32", _fftconv,
        lambda f, a, **kw: f(a[0], a[1], a[2], pregate=a[3], postgate=a[4], **kw),
        (True, False, False, True, True)),
}


def precision_ops() -> set[str]:
    """The operations of the op table whose structlin function takes ``precision``."""
    return {name for name in OPS
            if "precision" in inspect.signature(getattr(structlin, name)).parameters}


def numpy_error(name: str, arrays: tuple, precision: str) -> str:
    """The regular expression of the ValueError the NumPy function raises for ``precision``."""
    case = PRECISION_CASES[name]
    try:
        case.call(getattr(structlin, name), arrays, precision=precision)
    except ValueError as exc:
        return re.escape(str(exc))
    raise AssertionError(f"structlin.{name} accepted precision={precision!r}")
