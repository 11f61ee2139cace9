"""The table of differentiable operations that the framework wrappers share.

Each :class:`Op` names the array arguments of one structlin function in call order, says which
of them can carry a gradient, and adapts the function and its ``*_vjp`` to one calling
convention: ``forward(arrays, static)`` and ``backward(arrays, static, grad)``, the latter
returning one gradient (or ``None``) per array argument, in the same order. ``static`` holds
the keyword arguments that are not arrays (flags, transform types). ``out_shape`` gives the
shape of the result from the shapes of the arguments, without computing anything (JAX needs
it before the callback runs).

Gradients follow structlin's convention, which is PyTorch's (``dl/dRe z + 1j dl/dIm z``);
:mod:`structlin.interop.jax` converts to and from JAX's (the conjugate).

Nothing here imports a framework.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlin as sl
from structlin._backend import result_dtype

__all__ = ["OPS", "Op", "out_dtype"]


@dataclass(frozen=True)
class Op:
    """One structlin function and its VJP, in the shared calling convention."""

    name: str
    #: names of the array arguments, in call order
    arrays: tuple[str, ...]
    #: whether each array argument can carry a gradient (a mask cannot)
    differentiable: tuple[bool, ...]
    forward: Callable[[tuple, dict], Any]
    backward: Callable[[tuple, dict, Any], tuple]
    out_shape: Callable[[tuple, dict], tuple[int, ...]]


def out_dtype(op: Op, arrays: tuple) -> Any:
    """The dtype of ``op``'s result: NumPy's promotion of its differentiable arrays."""
    named = {
        name: a for name, a, diff in zip(op.arrays, arrays, op.differentiable, strict=True)
        if diff and a is not None
    }
    return result_dtype(**named)


def _last(shapes, index: int) -> tuple[int, ...]:
    return tuple(shapes[index])


def _butterfly(kw):
    return {k: bool(kw[k]) for k in ("increasing_stride", "transpose", "conjugate")}


def _monarch_out(shapes, static):
    (_k, _q, _p), (l, s, _r), x = shapes
    return (*x[:-1], l * s)


def _pixelfly_out(shapes, static):
    blocks, mask, _U, _V, x = shapes
    return (*x[:-1], mask[0] * blocks[1])


def _fftconv_backward(a, s, g):
    u, k, D, pre, post = a
    gu, gk, gD, gpre, gpost = sl.fftconv_vjp(u, k, D, g, pregate=pre, postgate=post, **s)
    return gu, gk, gD, gpre, gpost


def _transform(fn, vjp):
    return dict(
        arrays=("x",),
        differentiable=(True,),
        forward=lambda a, s: fn(a[0], **s),
        backward=lambda a, s, g: (vjp(a[0], g, **s),),
        out_shape=lambda shapes, s: _last(shapes, 0),
    )


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op(
            "butterfly_multiply", ("twiddle", "x"), (True, True),
            forward=lambda a, s: sl.butterfly_multiply(*a, **_butterfly(s)),
            backward=lambda a, s, g: sl.butterfly_multiply_vjp(*a, g, **_butterfly(s)),
            out_shape=lambda shapes, s: _last(shapes, 1),
        ),
        Op(
            "butterfly_solve", ("twiddle", "y"), (True, True),
            forward=lambda a, s: sl.butterfly_solve(*a, **_butterfly(s)),
            backward=lambda a, s, g: sl.butterfly_solve_vjp(*a, g, **_butterfly(s)),
            out_shape=lambda shapes, s: _last(shapes, 1),
        ),
        Op(
            "monarch_multiply", ("w1", "w2", "x"), (True, True, True),
            forward=lambda a, s: sl.monarch_multiply(*a),
            backward=lambda a, s, g: sl.monarch_multiply_vjp(*a, g),
            out_shape=_monarch_out,
        ),
        Op(
            "pixelfly_multiply", ("blocks", "mask", "U", "V", "x"),
            (True, False, True, True, True),
            forward=lambda a, s: sl.pixelfly_multiply(*a),
            # the VJP returns (blocks, U, V, x): no gradient for the mask
            backward=lambda a, s, g: (lambda gb, gU, gV, gx: (gb, None, gU, gV, gx))(
                *sl.pixelfly_multiply_vjp(*a, g)
            ),
            out_shape=_pixelfly_out,
        ),
        Op(
            "fftconv", ("u", "k", "D", "pregate", "postgate"), (True,) * 5,
            forward=lambda a, s: sl.fftconv(a[0], a[1], a[2], pregate=a[3], postgate=a[4], **s),
            backward=_fftconv_backward,
            out_shape=lambda shapes, s: _last(shapes, 0),
        ),
        Op(
            "circulant_multiply", ("c", "x"), (True, True),
            forward=lambda a, s: sl.circulant_multiply(*a),
            backward=lambda a, s, g: sl.circulant_multiply_vjp(*a, g),
            out_shape=lambda shapes, s: _last(shapes, 1),
        ),
        Op(
            "toeplitz_multiply", ("column", "row", "x"), (True, True, True),
            forward=lambda a, s: sl.toeplitz_multiply(*a),
            backward=lambda a, s, g: sl.toeplitz_multiply_vjp(*a, g),
            out_shape=lambda shapes, s: _last(shapes, 2),
        ),
        Op("dct", **_transform(sl.dct, sl.dct_vjp)),
        Op("dst", **_transform(sl.dst, sl.dst_vjp)),
        Op("fwht", **_transform(sl.fwht, sl.fwht_vjp)),
    )
}
