"""The monarch family's declaration (see :mod:`structlin._registry`)."""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Op, Row, shape_check


def tour_rows(rng: np.random.Generator) -> list[Row]:
    import structlin as sl

    b, batch = 64, 1024
    n = b * b
    w1 = (rng.standard_normal((b, b, b)) / b**0.5).astype(np.float32)
    w2 = (rng.standard_normal((b, b, b)) / b**0.5).astype(np.float32)
    x = rng.standard_normal((batch, n)).astype(np.float32)
    M = sl.monarch_to_dense(w1, w2)
    A = rng.standard_normal((1024, 1024))
    A4 = A.reshape(32, 32, 32, 32).transpose(1, 2, 0, 3)
    return [
        Row("monarch_multiply float32", f"n={n}, batch={batch}",
            lambda: sl.monarch_multiply(w1, w2, x), "x @ M.T (BLAS)", lambda: x @ M.T),
        # the error column compares the singular values kept with those of the exact SVDs
        Row("monarch_project float64", "1024x1024, 32 blocks",
            lambda: np.sort(np.linalg.norm(sl.monarch_project(A, nblocks=32)[0], axis=2)
                            .ravel() ** 2),
            "exact SVD of each slice",
            lambda: np.sort(np.linalg.svd(A4, compute_uv=False)[..., 0].ravel())),
    ]


def operations() -> tuple[Op, ...]:
    import structlin as sl

    def out_shape(shapes, static):
        w1, w2, x = shapes
        shape_check(len(w1) == 3, f"w1 must have shape (k, q, p), got {tuple(w1)}")
        shape_check(len(w2) == 3, f"w2 must have shape (l, s, r), got {tuple(w2)}")
        (k, q, p), (l, s, r) = w1, w2
        shape_check(l * r == k * q, f"w2 of shape (l, s, r) = {tuple(w2)} needs l*r = k*q = "
                    f"{k * q} (w1 has shape (k, q, p) = {tuple(w1)}), got {l * r}")
        shape_check(len(x) >= 1 and x[-1] == k * p,
                    f"x has length n_in = {x[-1] if len(x) else None} along its last axis "
                    f"(shape {tuple(x)}), but w1 of shape (k, q, p) = {tuple(w1)} needs "
                    f"k*p = {k * p}")
        return (*x[:-1], l * s)

    return (
        Op(
            "monarch_multiply", ("w1", "w2", "x"), (True, True, True),
            forward=lambda a, s: sl.monarch_multiply(*a, **s),
            backward=lambda a, s, g: sl.monarch_multiply_vjp(*a, g, **s),
            out_shape=out_shape,
            static=("precision",),
        ),
    )


FAMILY = Family(
    name="monarch",
    modules=('structlin.monarch', 'structlin.monarch_order_p', 'structlin.btt'),
    kernels=(
        Kernel("monarch", {
            "apply": ("x", "factors", "precision"),
            "weight_grad": ("x", "gy", "pre", "post", "n_out", "precision"),
            "low_rank": ("S", "rank", "tol", "max_iter"),
        }),
    ),
    tutorial="docs/tutorials/monarch.md",
    precisions=("highest", "tf32", "bf16"),
    tour=tour_rows,
    bench="bench_monarch",
    ops=operations,
)
