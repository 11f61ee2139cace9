"""The butterfly_special family's declaration (see :mod:`structlin._registry`)."""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Op, Row, shape_check


def tour_rows(rng: np.random.Generator) -> list[Row]:
    import scipy.fft
    import scipy.linalg

    import structlin as sl

    n, b = 1024, 128
    x = rng.standard_normal((b, n)).astype(np.float32)
    xc = (x + 1j * rng.standard_normal((b, n))).astype(np.complex64)
    tw = sl.butterfly_dft(n, dtype=np.complex64)
    c = rng.standard_normal(n).astype(np.float32)
    C = scipy.linalg.circulant(c)
    return [
        # the baselines compute the same transform: the error column compares with them
        Row("butterfly_dft complex64", f"n={n}, batch={b}",
            lambda: sl.butterfly_multiply(tw, sl.bit_reverse(xc)), "scipy.fft.fft(workers=-1)",
            lambda: scipy.fft.fft(xc, workers=-1)),
        Row("dct type 2 float32", f"n={n}, batch={b}", lambda: sl.dct(x),
            "scipy.fft.dct(workers=-1)", lambda: scipy.fft.dct(x, workers=-1)),
        Row("circulant_multiply float32", f"n={n}, batch={b}",
            lambda: sl.circulant_multiply(c, x), "x @ circulant(c).T (BLAS)", lambda: x @ C.T),
    ]


def _transform_shape(shapes: tuple, static: dict) -> tuple[int, ...]:
    (x,) = shapes
    n = int(x[-1]) if len(x) else 0
    shape_check(n >= 1 and n & (n - 1) == 0, "x must have a last-axis length n that is a power "
                f"of two (1, 2, 4, ...), got {x[-1] if len(x) else 'a 0-d array'}")
    return tuple(x)


def _vector_shape(x: tuple, **vectors: tuple) -> tuple[int, ...]:
    """``x``'s shape, after checking that each of ``vectors`` has shape ``(x.shape[-1],)``."""
    shape_check(len(x) >= 1, f"x must have at least one dimension, got shape {tuple(x)}")
    for name, v in vectors.items():
        shape_check(tuple(v) == (x[-1],), f"x must have length {v[-1] if len(v) else None} "
                    f"along its last axis (the length of {name}), got shape {tuple(x)}")
    return tuple(x)


def _transform(name: str) -> Op:
    import structlin as sl

    fn, vjp = getattr(sl, name), getattr(sl, f"{name}_vjp")
    return Op(
        name, ("x",), (True,),
        forward=lambda a, s: fn(a[0], **s),
        backward=lambda a, s, g: (vjp(a[0], g, **s),),
        out_shape=_transform_shape,
        static=("type", "norm"),
    )


def operations() -> tuple[Op, ...]:
    import structlin as sl

    return (
        Op(
            "circulant_multiply", ("c", "x"), (True, True),
            forward=lambda a, s: sl.circulant_multiply(*a),
            backward=lambda a, s, g: sl.circulant_multiply_vjp(*a, g),
            out_shape=lambda shapes, s: _vector_shape(shapes[1], c=shapes[0]),
        ),
        Op(
            "toeplitz_multiply", ("column", "row", "x"), (True, True, True),
            forward=lambda a, s: sl.toeplitz_multiply(*a),
            backward=lambda a, s, g: sl.toeplitz_multiply_vjp(*a, g),
            out_shape=lambda shapes, s: _vector_shape(shapes[2], column=shapes[0], row=shapes[1]),
        ),
        _transform("dct"),
        _transform("dst"),
    )


FAMILY = Family(
    name="butterfly_special",
    # structlin.butterfly_special re-exports the three under the family's old module name
    modules=('structlin.dft_hadamard', 'structlin.dct_dst', 'structlin.circulant'),
    kernels=(
        Kernel("butterfly_special", {
            "gather": ("x3", "ia", "wa", "ib", "wb", "m"),
            "gather_packed": ("x3", "ia", "wa", "ib", "wb", "m"),
            "gather_transpose": ("u", "ia", "wa", "ib", "wb", "n", "c"),
            "take_real": ("v", "ic", "cw", "c"),
            "take_real_packed": ("v", "ic", "cw", "b", "c"),
            "take_real_transpose": ("g3", "ic", "cw", "m"),
        }),
    ),
    tutorial="docs/tutorials/butterfly_special.md",
    tour=tour_rows,
    bench="bench_butterfly_special",
    ops=operations,
)
