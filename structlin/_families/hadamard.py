"""The hadamard family's declaration (see :mod:`structlin._registry`)."""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Op, Row, shape_check


def tour_rows(rng: np.random.Generator) -> list[Row]:
    import scipy.fft
    from scipy.linalg import hadamard

    import structlin as sl

    n, b = 4096, 256
    x = rng.standard_normal((b, n)).astype(np.float32)
    H = hadamard(n).astype(np.float32)
    xl = rng.standard_normal((64, 1 << 16)).astype(np.float32)
    return [
        Row("fwht float32", f"n={n}, batch={b}", lambda: sl.fwht(x),
            "x @ hadamard(n).T (BLAS)", lambda: x @ H.T),
        # no dense reference at this size: a transform of the same cost is the baseline
        Row("fwht float32", "n=65536, batch=64", lambda: sl.fwht(xl),
            "scipy.fft.rfft(workers=-1)", lambda: scipy.fft.rfft(xl, workers=-1),
            comparable=False),
    ]


def _fwht_shape(shapes: tuple, static: dict) -> tuple[int, ...]:
    (x,) = shapes
    n = int(x[-1]) if len(x) else 0
    shape_check(n >= 1 and n & (n - 1) == 0,
                "x must have a last-axis length n that is a power of two (1, 2, 4, ...), got "
                f"{x[-1] if len(x) else 'a 0-d array'}")
    return tuple(x)


def operations() -> tuple[Op, ...]:
    import structlin as sl

    return (
        Op(
            "fwht", ("x",), (True,),
            forward=lambda a, s: sl.fwht(a[0], **s),
            backward=lambda a, s, g: (sl.fwht_vjp(a[0], g, **s),),
            out_shape=_fwht_shape,
            static=("normalize",),
        ),
    )


FAMILY = Family(
    name="hadamard",
    modules=('structlin.hadamard',),
    kernels=(Kernel("hadamard", {"fwht": ("x", "scale")}),),
    tutorial="docs/tutorials/butterfly.md",
    tour=tour_rows,
    bench="bench_hadamard",
    ops=operations,
)
