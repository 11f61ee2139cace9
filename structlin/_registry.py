"""The family registry: one declaration per family, from which everything that iterates over
families is derived.

A *family* is one concept of the library (butterfly matrices, the Walsh–Hadamard transform,
Monarch matrices, ...). Its declaration, a :class:`Family` named ``FAMILY`` in
``structlin/_families/<name>.py``, says

- which public modules it has (``structlin/__init__.py`` re-exports their ``__all__``, or, for a
  namespace module such as ``structlin.fft``, imports the module as an attribute);
- its kernel contract: for each kernel module, the functions (and their parameter names) that
  both ``structlin/_cpu/<module>.py`` (Numba) and ``structlin/gpu/<module>.py`` (CUDA through
  CuPy) provide; family code reaches them only through ``_backend.kernels(xp, module)``, which
  exposes exactly these functions;
- the ``precision`` values its kernels have (a subset of :data:`structlin._validate.PRECISIONS`);
- its rows in the tour (``python -m structlin``), its benchmark module
  (``benchmarks/bench_<name>.py``), its tutorial and its differentiable operations for the
  framework wrappers (:mod:`structlin.interop`).

Adding a family is its own files plus one line in :data:`FAMILY_NAMES`; ``docs/contributing.md``
walks through it. Declarations import nothing heavy: the tour rows and the operations import the
family's modules when they are called.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "FAMILY_NAMES",
    "Family",
    "Kernel",
    "Op",
    "Row",
    "ShapeMismatch",
    "families",
    "family",
    "kernel_contract",
    "operations",
    "shape_broadcast",
    "shape_check",
]

#: every family, in the order of the tour; one line per family
FAMILY_NAMES: tuple[str, ...] = (
    "butterfly",
    "hadamard",
    "butterfly_special",
    "butterfly_inverse",
    "butterfly_factorization",
    "fft",
    "conv",
    "monarch",
    "pixelfly",
    "kaleidoscope",
    "kernel_features",
    "ssm",
    "toeplitz",
)


@dataclass(frozen=True)
class Kernel:
    """The contract of one kernel module: ``functions[name]`` is the tuple of parameter names
    (in order, keyword-only ones included) that the CPU and the GPU function both have.

    ``cpu_only`` names contract functions with no GPU implementation yet; a family calling
    one on CuPy arrays must raise ``TypeError`` first (say so in its docstring). The contract
    test fails if the GPU module has a function that the list says it lacks, so the list
    shrinks as GPU kernels are written.
    """

    module: str
    functions: dict[str, tuple[str, ...]]
    cpu_only: tuple[str, ...] = ()


@dataclass
class Row:
    """One row of the tour: a structlin call and what a user would run instead."""

    operation: str
    size: str
    fast: Callable[[], Any]
    baseline_name: str
    baseline: Callable[[], Any]
    #: whether ``baseline`` computes the same numbers (then the tour prints their difference
    #: and its test fails on a large one); False for a baseline that computes something else
    comparable: bool = True


@dataclass(frozen=True)
class Op:
    """One differentiable structlin function and its VJP, in the framework wrappers' calling
    convention: ``forward(arrays, static)`` and ``backward(arrays, static, grad)``, the latter
    returning one gradient (or ``None``) per array argument in the same order. ``static`` holds
    the keyword arguments that are not arrays (flags, transform types, ``precision``).
    ``out_shape(shapes, static)`` gives the result's shape without computing it (JAX needs it
    before its callback runs).
    """

    name: str
    #: names of the array arguments, in call order
    arrays: tuple[str, ...]
    #: whether each array argument can carry a gradient (a mask cannot)
    differentiable: tuple[bool, ...]
    forward: Callable[[tuple, dict], Any]
    backward: Callable[[tuple, dict, Any], tuple]
    out_shape: Callable[[tuple, dict], tuple[int, ...]]
    #: the keyword arguments the wrappers pass through in ``static``
    static: tuple[str, ...] = ()
    #: True when the result is real for complex arguments (an SSM kernel ``2 Re(...)``): its
    #: dtype is then the real dtype of the arguments' promotion
    real_result: bool = False


@dataclass(frozen=True)
class Family:
    """The declaration of one family (see the module docstring)."""

    name: str
    #: public modules whose ``__all__`` ``structlin`` re-exports (unless ``flatten`` is False)
    modules: tuple[str, ...]
    #: the kernel modules' contracts
    kernels: tuple[Kernel, ...]
    #: the tutorial page that teaches it, relative to the repository root
    tutorial: str
    #: the ``precision`` values its kernels have
    precisions: tuple[str, ...] = ("highest",)
    #: builds its tour rows from a random generator; imports the family when called
    tour: Callable[[np.random.Generator], list[Row]] | None = None
    #: its benchmark module in ``benchmarks/``
    bench: str | None = None
    #: builds its differentiable operations for :mod:`structlin.interop`
    ops: Callable[[], tuple[Op, ...]] | None = None
    extra: dict = field(default_factory=dict)
    #: False for a namespace module (``structlin.fft``, like ``scipy.fft``): ``structlin``
    #: imports it as its attribute but does not re-export its names at top level
    flatten: bool = True


@functools.cache
def families() -> tuple[Family, ...]:
    """Every family's declaration, in :data:`FAMILY_NAMES` order."""
    out = []
    for name in FAMILY_NAMES:
        fam = importlib.import_module(f"structlin._families.{name}").FAMILY
        if fam.name != name:
            raise RuntimeError(f"structlin._families.{name} declares family {fam.name!r}")
        out.append(fam)
    return tuple(out)


def family(name: str) -> Family:
    """The declaration of the family ``name``."""
    for fam in families():
        if fam.name == name:
            return fam
    raise KeyError(f"no family {name!r}; the families are {FAMILY_NAMES}")


@functools.cache
def _contracts() -> dict[str, tuple[Family, Kernel]]:
    out: dict[str, tuple[Family, Kernel]] = {}
    for fam in families():
        for k in fam.kernels:
            if k.module in out:
                raise RuntimeError(f"kernel module {k.module!r} is declared by two families")
            out[k.module] = (fam, k)
    return out


def kernel_contract(module: str) -> Kernel:
    """The contract of the kernel module ``module`` (``structlin._cpu.<module>`` and
    ``structlin.gpu.<module>``)."""
    try:
        return _contracts()[module][1]
    except KeyError:
        raise KeyError(f"no family declares the kernel module {module!r}") from None


class ShapeMismatch(ValueError):
    """The error of :func:`shape_check`: shapes that an op's arguments cannot have."""


def shape_check(condition: bool, message: str) -> None:
    """Raise :class:`ShapeMismatch` (a ``ValueError``) with ``message`` unless ``condition``:
    the shape checks of the ops' ``out_shape`` functions, which the framework wrappers run
    before any kernel (at trace time under ``torch.compile`` and ``jax.jit``), worded as the
    functions' own errors."""
    if not condition:
        raise ShapeMismatch(message)


def shape_broadcast(message: str, *shapes: tuple) -> tuple[int, ...]:
    """``numpy.broadcast_shapes(*shapes)``, or :class:`ShapeMismatch` with ``message``."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ShapeMismatch(message) from None


@functools.cache
def operations() -> dict[str, Op]:
    """Every family's differentiable operations by name (the framework wrappers' table)."""
    out: dict[str, Op] = {}
    for fam in families():
        for op in fam.ops() if fam.ops else ():
            if op.name in out:
                raise RuntimeError(f"operation {op.name!r} is declared twice")
            out[op.name] = op
    return out
