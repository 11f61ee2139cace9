"""The butterfly family's declaration (see :mod:`structlin._registry`)."""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Op, Row, shape_check


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


def butterfly_out_shape(shapes: tuple, static: dict) -> tuple[int, ...]:
    """The result shape of a butterfly product or solve, ``x``'s, after checking that
    ``twiddle`` is ``(L, n//2, 2, 2)`` for ``x``'s last-axis length ``n``."""
    tw, x = shapes
    shape_check(len(x) >= 1, f"x must have at least one dimension, got shape {tuple(x)}")
    n = int(x[-1])  # a symbolic size (torch.compile(dynamic=True)) is specialised here
    shape_check(n >= 1 and n & (n - 1) == 0, "x must have a last-axis length n that is a power "
                f"of two (1, 2, 4, ...), got {n}")
    L = n.bit_length() - 1
    shape_check(tuple(tw) == (L, n // 2, 2, 2),
                f"twiddle must have shape {(L, n // 2, 2, 2)} ((L, n//2, 2, 2) for x with n = "
                f"{n} along its last axis), got {tuple(tw)}")
    return tuple(x)


def _flags(kw):
    return {k: bool(kw[k]) for k in ("increasing_stride", "transpose", "conjugate")}


def operations() -> tuple[Op, ...]:
    import structlin as sl

    return (
        Op(
            "butterfly_multiply", ("twiddle", "x"), (True, True),
            forward=lambda a, s: sl.butterfly_multiply(*a, **_flags(s)),
            backward=lambda a, s, g: sl.butterfly_multiply_vjp(*a, g, **_flags(s)),
            out_shape=butterfly_out_shape,
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
