"""The butterfly_inverse family's declaration (see :mod:`structlin._registry`)."""

from __future__ import annotations

import numpy as np

from structlin._families.butterfly import _flags, butterfly_out_shape
from structlin._registry import Family, Kernel, Op, Row


def tour_rows(rng: np.random.Generator) -> list[Row]:
    import scipy.linalg

    import structlin as sl

    n, b = 1024, 2048
    tw = sl.random_butterfly(n, kind="orthogonal", dtype=np.float32, rng=rng)
    tw = tw * rng.uniform(0.7, 1.3, size=(*tw.shape[:-2], 1, 2)).astype(np.float32)
    y = rng.standard_normal((b, n)).astype(np.float32)
    lu = scipy.linalg.lu_factor(sl.butterfly_to_dense(tw))
    nl = 1 << 16
    twl = sl.random_butterfly(nl, dtype=np.float32, rng=rng)

    def blocks_slogdet():
        s, la = np.linalg.slogdet(twl)
        return np.array([np.prod(s), la.sum()])

    return [
        Row("butterfly_solve float32", f"n={n}, batch={b}",
            lambda: sl.butterfly_solve(tw, y), "lu_solve, B factorized beforehand",
            lambda: scipy.linalg.lu_solve(lu, y.T).T),
        Row("butterfly_logdet float32", f"n={nl}",
            lambda: np.array(sl.butterfly_logdet(twl), dtype=np.float64),
            "slogdet of the 2x2 blocks (LAPACK)", blocks_slogdet),
    ]


def operations() -> tuple[Op, ...]:
    import structlin as sl

    return (
        Op(
            "butterfly_solve", ("twiddle", "y"), (True, True),
            forward=lambda a, s: sl.butterfly_solve(*a, **_flags(s)),
            backward=lambda a, s, g: sl.butterfly_solve_vjp(*a, g, **_flags(s)),
            out_shape=butterfly_out_shape,
            static=("increasing_stride", "transpose", "conjugate"),
        ),
    )


FAMILY = Family(
    name="butterfly_inverse",
    modules=('structlin.butterfly_inverse',),
    kernels=(
        Kernel("butterfly_inverse", {
            "invert": ("tw", "scale", "adjoint"),
            "solve": ("tw", "x", "increasing"),
            "slogdet": ("tw",),
            "inverse_vjp": ("inv", "ginv"),
        }),
    ),
    tutorial="docs/tutorials/butterfly_algorithms.md",
    tour=tour_rows,
    bench="bench_butterfly_inverse",
    ops=operations,
)
