"""The kernel_features family's declaration (see :mod:`structlin._registry`): quadrature and
random feature maps of shift-invariant kernels."""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Op, Row, shape_check


def tour_rows(rng: np.random.Generator) -> list[Row]:
    import structlin as sl

    X = rng.standard_normal((20000, 4)).astype(np.float32)
    nodes, weights = sl.quadrature_rule("grid", 4, 512, kernel="rbf", gamma=0.5)
    nodes, weights = nodes.astype(np.float32), weights.astype(np.float32)
    # what scikit-learn's RBFSampler.transform computes, in NumPy (the base install has no
    # scikit-learn): 1024 shifted cosines of random projections
    W = rng.normal(0.0, 1.0, (4, 1024)).astype(np.float32)
    b = rng.uniform(0.0, 2 * np.pi, 1024).astype(np.float32)
    c = np.float32(np.sqrt(2.0 / 1024))
    return [
        # the baseline computes other (random) features of the same kernel and size
        Row("kernel_features float32", "grid, 20000x4 -> 1024",
            lambda: sl.kernel_features(X, nodes, weights),
            "NumPy cos(X @ W + b) (RBFSampler)", lambda: np.cos(X @ W + b) * c,
            comparable=False),
    ]


def _features_shape(shapes: tuple, static: dict) -> tuple[int, ...]:
    X, nodes, weights = shapes
    shape_check(len(nodes) == 2, f"nodes must have shape (m, d), got {tuple(nodes)}")
    m, d = nodes
    shape_check(len(X) >= 1 and X[-1] == d,
                f"X must have d = {d} columns (the width of nodes), got shape {tuple(X)}")
    shape_check(tuple(weights) == (m,), f"weights must have shape (m,) = ({m},), got "
                f"{tuple(weights)}")
    return (*X[:-1], 2 * m)


def operations() -> tuple[Op, ...]:
    import structlin as sl

    return (
        Op(
            "kernel_features", ("X", "nodes", "weights"), (True, True, True),
            forward=lambda a, s: sl.kernel_features(*a),
            backward=lambda a, s, g: sl.kernel_features_vjp(*a, g),
            out_shape=_features_shape,
        ),
    )


FAMILY = Family(
    name="kernel_features",
    modules=("structlin.kernel_quadrature", "structlin.kernel_features"),
    kernels=(Kernel("kernel_features", {
        "features": ("x", "w", "scale", "phase", "sin_from", "out"),
        "features_coef": ("x", "w", "scale", "phase", "sin_from", "g", "coef", "wcoef"),
        "trig": ("t", "scale", "sin_from", "out"),
    }),),
    tutorial="docs/tutorials/kernel_features.md",
    tour=tour_rows,
    bench="bench_kernel_features",
    ops=operations,
)
