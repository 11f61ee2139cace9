"""The kaleidoscope family's declaration (see :mod:`structlin._registry`)."""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Op, Row


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


def operations() -> tuple[Op, ...]:
    import structlin as sl

    return (
        Op(
            "kaleidoscope_multiply", ("twiddle", "x"), (True, True),
            forward=lambda a, s: sl.kaleidoscope_multiply(*a),
            backward=lambda a, s, g: sl.kaleidoscope_multiply_vjp(*a, g),
            out_shape=lambda shapes, s: tuple(shapes[1]),
        ),
        Op(
            "xd_multiply", ("tw_K", "tw_L", "tw_M", "w", "x"), (True,) * 5,
            forward=lambda a, s: sl.xd_multiply(*a),
            backward=lambda a, s, g: sl.xd_multiply_vjp(*a, g),
            out_shape=lambda shapes, s: tuple(shapes[4]),
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
