"""The butterfly_factorization family's declaration (see :mod:`structlin._registry`)."""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Row


def tour_rows(rng: np.random.Generator) -> list[Row]:
    import structlin as sl
    from structlin.butterfly_factorization import _reference_factorize_svd

    n = 1024
    A = rng.standard_normal((n, n))

    def dense_error(tw):
        B = sl.butterfly_to_dense(tw)
        return np.array([np.linalg.norm(A - B) / np.linalg.norm(A)])

    # both sides return the relative error: the error column is their disagreement
    return [
        Row("butterfly_factorize float64", f"n={n}",
            lambda: np.array([sl.butterfly_factorize(A).relative_error]),
            "numpy batched SVD + dense error",
            lambda: dense_error(_reference_factorize_svd(A))),
    ]


FAMILY = Family(
    name="butterfly_factorization",
    modules=('structlin.butterfly_factorization',),
    kernels=(
        Kernel("butterfly_factorization", {
            "peel_level": ("M", "tw_k"),
            "mix_forward": ("z", "idx", "w"),
            "mix_backward": ("g", "z", "idx", "inv", "w"),
            "residual": ("z", "target"),
        }, cpu_only=("mix_forward", "mix_backward", "residual")),
    ),
    tutorial="docs/tutorials/butterfly_algorithms.md",
    tour=tour_rows,
    bench="bench_butterfly_factorization",
)
