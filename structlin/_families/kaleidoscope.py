"""The kaleidoscope family's declaration (see :mod:`structlin._registry`)."""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Op, Row, shape_check


def tour_rows(rng: np.random.Generator) -> list[Row]:
    import structlin as sl

    n, b = 1024, 2048
    tw = sl.random_kaleidoscope(n, 1, kind="orthogonal", dtype=np.float32, rng=rng)
    x = rng.standard_normal((b, n)).astype(np.float32)
    K = sl.kaleidoscope_to_dense(tw).astype(np.float32)
    return [
        Row("kaleidoscope_multiply float32 (width 1)", f"n={n}, batch={b}",
            lambda: sl.kaleidoscope_multiply(tw, x), "x @ K.T (BLAS)", lambda: x @ K.T),
    ]


def _k_shape(tw: tuple, x: tuple, name: str) -> tuple[int, ...]:
    """``x``'s shape, after checking that the K-matrix twiddle ``tw`` is
    ``(w, 2, L, n//2, 2, 2)`` for ``x``'s last-axis length ``n``."""
    n = int(x[-1]) if len(x) else 0
    shape_check(n >= 1 and n & (n - 1) == 0,
                "x must have a last-axis length n that is a power of two (1, 2, 4, ...), got "
                f"{x[-1] if len(x) else 'a 0-d array'}")
    L = n.bit_length() - 1
    shape_check(len(tw) == 6 and tuple(tw[1:]) == (2, L, n // 2, 2, 2),
                f"{name} must have shape (w, 2, L, n//2, 2, 2) = (w, 2, {L}, {n // 2}, 2, 2) for "
                f"x with n = {n} along its last axis, got {tuple(tw)}")
    return tuple(x)


def _xd_shape(shapes: tuple, static: dict) -> tuple[int, ...]:
    tw_K, tw_L, tw_M, w, x = shapes
    for name, tw in (("tw_K", tw_K), ("tw_L", tw_L), ("tw_M", tw_M)):
        _k_shape(tw, x, name)
    shape_check(tuple(w) == (x[-1],), f"w must have shape (n,) = ({x[-1]},), got {tuple(w)}")
    return tuple(x)


def operations() -> tuple[Op, ...]:
    import structlin as sl

    return (
        Op(
            "kaleidoscope_multiply", ("twiddle", "x"), (True, True),
            forward=lambda a, s: sl.kaleidoscope_multiply(*a),
            backward=lambda a, s, g: sl.kaleidoscope_multiply_vjp(*a, g),
            out_shape=lambda shapes, s: _k_shape(shapes[0], shapes[1], "twiddle"),
        ),
        Op(
            "xd_multiply", ("tw_K", "tw_L", "tw_M", "w", "x"), (True,) * 5,
            forward=lambda a, s: sl.xd_multiply(*a),
            backward=lambda a, s, g: sl.xd_multiply_vjp(*a, g),
            out_shape=_xd_shape,
        ),
    )


FAMILY = Family(
    name="kaleidoscope",
    modules=("structlin.kaleidoscope", "structlin.kaleidoscope_routing",
             "structlin.kaleidoscope_constructors", "structlin.kaleidoscope_fitting",
             "structlin.xd_operations"),
    kernels=(
        Kernel("kaleidoscope", {
            "apply": ("tw", "x"),
            "apply_vjp": ("tw", "x", "g"),
        }),
        Kernel("kaleidoscope_routing", {"route": ("perm",)}, cpu_only=("route",)),
    ),
    tutorial="docs/tutorials/kaleidoscope.md",
    tour=tour_rows,
    bench="bench_kaleidoscope",
    ops=operations,
)
