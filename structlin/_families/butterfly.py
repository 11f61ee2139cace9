"""The butterfly family's declaration (see :mod:`structlin._registry`)."""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Op, Row


def tour_rows(rng: np.random.Generator) -> list[Row]:
    import structlin as sl

    n, b = 1024, 2048
    tw = sl.random_butterfly(n, kind="orthogonal", dtype=np.float32, rng=rng)
    x = rng.standard_normal((b, n)).astype(np.float32)
    B = sl.butterfly_to_dense(tw)
    g = rng.standard_normal((b, n)).astype(np.float32)
    return [
        Row("butterfly_multiply float32", f"n={n}, batch={b}",
            lambda: sl.butterfly_multiply(tw, x), "x @ B.T (BLAS)", lambda: x @ B.T),
        Row("butterfly_multiply_vjp float32", f"n={n}, batch={b}",
            lambda: sl.butterfly_multiply_vjp(tw, x, g)[1], "g @ B and g.T @ x (BLAS)",
            lambda: (g.T @ x, g @ B)[1]),
    ]


def _flags(kw):
    return {k: bool(kw[k]) for k in ("increasing_stride", "transpose", "conjugate")}


def operations() -> tuple[Op, ...]:
    import structlin as sl

    return (
        Op(
            "butterfly_multiply", ("twiddle", "x"), (True, True),
            forward=lambda a, s: sl.butterfly_multiply(*a, **_flags(s)),
            backward=lambda a, s, g: sl.butterfly_multiply_vjp(*a, g, **_flags(s)),
            out_shape=lambda shapes, s: tuple(shapes[1]),
            static=("increasing_stride", "transpose", "conjugate"),
        ),
    )


FAMILY = Family(
    name="butterfly",
    modules=('structlin.butterfly',),
    kernels=(
        Kernel("butterfly", {
            "apply": ("tw", "x", "increasing"),
            "apply_vjp": ("tw", "x", "g", "increasing"),
            "gather_last": ("x", "idx"),
        }),
    ),
    tutorial="docs/tutorials/butterfly.md",
    tour=tour_rows,
    bench="bench_butterfly",
    ops=operations,
)
