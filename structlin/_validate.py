"""Argument checks shared by every family.

Each check raises ``ValueError`` (shapes, sizes, values) or ``TypeError`` (array kinds,
dtypes) with a message that names the argument, what was expected and what was given.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any

import numpy as np

__all__ = [
    "ABSENT",
    "MAX_SIZE",
    "PRECISIONS",
    "as_array",
    "check_bool",
    "check_choice",
    "check_dtype",
    "check_finite",
    "check_float",
    "check_int",
    "check_last_axis",
    "check_min_ndim",
    "check_not_none",
    "check_out",
    "check_power_of_two",
    "check_precision",
    "check_rng",
    "check_shape",
    "log2_exact",
    "prepare",
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
    # NumPy scalars (``np.float64(0.1)``, which ``prepare`` passes through) are NumPy too
    xp = np if isinstance(a, np.ndarray | np.generic) else __import__("cupy")
    if not bool(xp.isfinite(a).all()):
        raise ValueError(f"{name} must be finite, but it contains NaN or infinity")


# ---------------------------------------------------------------------------------------------
# The validation seam: every public function converts and checks its arguments here, once,
# before any arithmetic. The order matters and is the same everywhere: (1) the NumPy/CuPy mix
# is refused, (2) each array argument is converted and its dtype checked *by name* (so an
# object or string array never reaches ``isfinite``), (3) the compute dtype is promoted.

#: the largest size argument accepted anywhere (``2**40`` elements is 4 TiB of float32): a
#: size above it is refused before anything is allocated or looped over
MAX_SIZE = 1 << 40

#: the one ``precision`` vocabulary of every family. ``"highest"``: every operation in the
#: data's precision; ``"tf32"``, ``"fp16"``, ``"bf16"``: tensor-core operands of that format
#: with float32 accumulation (GPU only; NumPy inputs are checked and computed in full precision,
#: as JAX treats ``precision=`` on the CPU). A family declares the subset its kernels have in
#: its registry entry (:mod:`structlin._registry`).
PRECISIONS = ("highest", "tf32", "fp16", "bf16")
#: accepted spellings of the same values (the long-convolution API used ``"fp32"`` at first)
PRECISION_ALIASES = {"fp32": "highest"}


class _Absent:
    """The default of an internal seam helper's optional array argument: the caller did not
    pass it, which is not the same as a user passing None (refused)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


#: see :class:`_Absent`; ``prepare`` treats an ``ABSENT`` argument as an optional None
ABSENT = _Absent()


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def as_array(xp: Any, a: Any, name: str) -> Any:
    """Return ``a`` as an array of namespace ``xp``, refusing non-numeric data by name.

    Lists, tuples and scalars are converted (as ``xp.asarray`` does); arrays of object,
    string, bytes, void or datetime dtype raise ``TypeError`` naming ``name`` (before any
    finiteness check could meet them). The array is not copied when it already is one.
    """
    if hasattr(a, "dtype") and hasattr(a, "shape") and type(a).__module__.split(".")[0] in (
        "numpy", "cupy"
    ):
        arr = a
    else:
        try:
            arr = xp.asarray(a)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must be an array of numbers (an ndarray, a list or a scalar), "
                f"got {_describe(a)}: {exc}"
            ) from None
    dt = np.dtype(arr.dtype)
    if dt.kind not in "biufc":
        raise TypeError(
            f"{name} must have a numeric dtype (bool, integer, floating or complex), got "
            f"dtype {dt} ({'an object array' if dt.kind == 'O' else dt.name})"
        )
    return arr


def prepare(
    *, dtype_of: tuple[str, ...] | None = None, optional: tuple[str, ...] = (), **arrays: Any
) -> Any:
    """Convert the named array arguments once and return them as a NamedTuple.

    Parameters
    ----------
    dtype_of : tuple of str, optional
        The arguments whose NumPy promotion is the compute dtype (default: every argument
        that is not None). A gradient is usually converted and checked but left out.
    optional : tuple of str, optional
        The arguments that may be None (absent); None passes through for them and is refused
        with a ``TypeError`` naming the argument for every other. An argument given as
        :data:`ABSENT` (an internal helper's default: not passed at all) becomes None too.
    **arrays
        The array arguments of a public function by their parameter names.

    Returns
    -------
    NamedTuple with fields ``xp`` (``numpy`` or ``cupy``), ``dtype`` (the compute dtype:
    :func:`structlin._backend.result_dtype` of ``dtype_of``) and one field per argument.

    Raises
    ------
    TypeError
        NumPy and CuPy arrays mixed (checked first), or an argument that is not numeric.

    Examples
    --------
    >>> import numpy as np
    >>> p = prepare(twiddle=np.ones((1, 1, 2, 2), np.float32), x=[1.0, 2.0])
    >>> p.xp.__name__, p.dtype, p.x.dtype
    ('numpy', dtype('float64'), dtype('float64'))
    """
    from structlin._backend import array_namespace, result_dtype

    absent = tuple(name for name, a in arrays.items() if a is ABSENT)
    if absent:
        arrays = {name: None if a is ABSENT else a for name, a in arrays.items()}
        optional = (*optional, *absent)
    xp = array_namespace(**arrays)
    for name, a in arrays.items():
        if a is None and name not in optional:
            raise TypeError(
                f"{name} must be an array of numbers (an ndarray, a list or a scalar), got None"
            )
    converted = {
        name: None if a is None else as_array(xp, a, name) for name, a in arrays.items()
    }
    names = tuple(converted) if dtype_of is None else dtype_of
    promoted = {n: converted[n] for n in names if converted[n] is not None}
    dt = result_dtype(**promoted) if promoted else np.dtype(np.float64)
    return _prepared_type(tuple(converted))(xp, dt, **converted)


@functools.cache
def _prepared_type(fields: tuple[str, ...]) -> type:
    from typing import NamedTuple

    return NamedTuple("Prepared", [("xp", Any), ("dtype", Any)] + [(f, Any) for f in fields])


def check_int(
    value: Any, name: str, *, minimum: int | None = 0, maximum: int | None = MAX_SIZE,
    allow_none: bool = False,
) -> int | None:
    """Return ``value`` as a Python int with ``operator.index`` semantics, or raise.

    Integers and integer NumPy scalars are accepted; bool, floats (even integral ones such as
    ``4.0``), strings and None (unless ``allow_none``) raise ``TypeError`` naming ``name``; a
    value outside ``[minimum, maximum]`` raises ``ValueError``. The upper bound keeps one
    argument from starting an unbounded loop or allocation.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {_describe(value)}") from None
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {v}")
    return v


def check_float(
    value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None,
    strict_minimum: bool = False,
) -> float:
    """Return ``value`` as a finite Python float, or raise naming ``name``.

    Real numbers (ints, floats, NumPy real scalars, 0-d real arrays) are accepted; bool,
    strings, None and complex numbers raise ``TypeError``; NaN, infinity or a value outside
    the bounds (``minimum`` exclusive when ``strict_minimum``) raise ``ValueError``.
    """
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (complex, np.complexfloating)):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if minimum is not None and (v <= minimum if strict_minimum else v < minimum):
        raise ValueError(
            f"{name} must be {'greater than' if strict_minimum else 'at least'} {minimum}, "
            f"got {v}"
        )
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {v}")
    return v


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` if it is a bool (Python or NumPy), else raise ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def check_choice(value: Any, name: str, choices: tuple) -> Any:
    """Return ``value`` if it is one of ``choices``; else ``ValueError`` listing them."""
    try:
        ok = value in choices
    except TypeError:  # unhashable or incomparable
        ok = False
    if not ok or (
        isinstance(value, (bool, np.bool_)) and not any(isinstance(c, bool) for c in choices)
    ):
        raise ValueError(f"{name} must be one of {choices!r}, got {_describe(value)}")
    return value


def check_dtype(value: Any, name: str = "dtype", *, allowed: tuple | None = None) -> np.dtype:
    """Return ``numpy.dtype(value)``, or raise ``TypeError`` naming ``name``.

    ``allowed`` (default: the four kernel dtypes) lists the dtypes accepted.
    """
    from structlin._backend import KERNEL_DTYPES

    allowed = KERNEL_DTYPES if allowed is None else tuple(np.dtype(a) for a in allowed)
    try:
        dt = np.dtype(value)
    except (TypeError, ValueError):
        dt = None
    if value is None or dt is None or dt not in allowed:
        names = ", ".join(a.name for a in allowed)
        raise TypeError(f"{name} must be one of {names}, got {_describe(value)}")
    return dt


def check_rng(rng: Any, name: str = "rng") -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for ``rng`` (None, an int seed, a SeedSequence, a
    BitGenerator or a Generator, as ``numpy.random.default_rng`` takes), else ``TypeError``."""
    if isinstance(rng, (bool, np.bool_, float, str, bytes)):
        raise TypeError(
            f"{name} must be None, an integer seed or a numpy.random.Generator, got "
            f"{_describe(rng)}"
        )
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be None, an integer seed or a numpy.random.Generator, got "
            f"{_describe(rng)}: {exc}"
        ) from None


def check_precision(
    precision: Any, supported: tuple[str, ...], dtype: Any, inputs: str
) -> str:
    """Return the canonical name of ``precision`` (one of :data:`PRECISIONS`), or raise.

    ``supported`` is the subset of :data:`PRECISIONS` the family's kernels have (``"highest"``
    always among them); the tensor-core values need float32 or complex64 compute data
    (``inputs`` names the arrays whose promotion gave ``dtype``). Raises ValueError.
    """
    canonical = PRECISION_ALIASES.get(precision, precision) if isinstance(precision, str) \
        else precision
    if not isinstance(canonical, str) or canonical not in supported:
        aliases = [a for a, c in PRECISION_ALIASES.items() if c in supported]
        also = f" (or the alias {', '.join(map(repr, aliases))})" if aliases else ""
        raise ValueError(f"precision must be one of {supported}{also}, got {precision!r}")
    if canonical != "highest" and np.dtype(dtype) not in (np.float32, np.complex64):
        raise ValueError(
            f"precision={precision!r} (tensor cores) needs float32 or complex64 data, got "
            f"{np.dtype(dtype)} (the result dtype of {inputs}); use precision='highest'"
        )
    return canonical


def check_out(xp: Any, out: Any, shape: tuple[int, ...], dtype: Any, name: str = "out") -> None:
    """Raise unless ``out`` is a writable C-contiguous array of ``xp`` with ``shape`` and
    ``dtype`` (what a kernel can write the result into)."""
    if type(out) is not xp.ndarray:
        raise TypeError(f"{name} must be a {xp.__name__}.ndarray, got {_describe(out)}")
    if tuple(out.shape) != tuple(shape) or out.dtype != np.dtype(dtype):
        raise ValueError(
            f"{name} must have shape {tuple(shape)} and dtype {np.dtype(dtype)}, got shape "
            f"{tuple(out.shape)} and dtype {out.dtype}"
        )
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if xp is np and not out.flags.writeable:
        raise ValueError(f"{name} must be writeable, got a read-only array")


def check_not_none(**arrays: Any) -> None:
    """Raise ``TypeError`` naming the first required array argument that is None (:func:`prepare`
    lets None through, for the optional ones)."""
    for name, a in arrays.items():
        if a is None:
            raise TypeError(f"{name} must be an array of numbers (an ndarray, a list or a "
                            f"scalar), got None")
