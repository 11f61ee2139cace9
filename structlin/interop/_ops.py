"""The table of differentiable operations that the framework wrappers share.

Derived from the family registry (:func:`structlin._registry.operations`): each family
declares its :class:`~structlin._registry.Op` entries, which name the array arguments of one
structlin function in call order, say which of them can carry a gradient, and adapt the
function and its ``*_vjp`` to one calling convention: ``forward(arrays, static)`` and
``backward(arrays, static, grad)``, the latter returning one gradient (or ``None``) per array
argument, in the same order. ``static`` holds the keyword arguments that are not arrays (flags,
transform types, ``precision``), passed through unchanged.

Gradients follow structlin's convention, which is PyTorch's (``dl/dRe z + 1j dl/dIm z``);
:mod:`structlin.interop.jax` converts to and from JAX's (the conjugate).

Nothing here imports a framework.
"""

from __future__ import annotations

from typing import Any

from structlin._backend import real_dtype, result_dtype
from structlin._registry import Op, operations

__all__ = ["OPS", "Op", "out_dtype"]

#: every family's operations by name
OPS: dict[str, Op] = operations()


def out_dtype(op: Op, arrays: tuple) -> Any:
    """The dtype of ``op``'s result: NumPy's promotion of its differentiable arrays (its real
    dtype when ``op.real_result``)."""
    named = {
        name: a for name, a, diff in zip(op.arrays, arrays, op.differentiable, strict=True)
        if diff and a is not None
    }
    dtype = result_dtype(**named)
    return real_dtype(dtype) if op.real_result else dtype
