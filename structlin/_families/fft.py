"""The fft family's declaration (see :mod:`structlin._registry`).

``structlin.fft`` is a namespace like ``scipy.fft`` (``flatten=False``): its ``fft``, ``dct``,
... stay there, since ``structlin.dct``/``structlin.dst`` are the dct_dst family's functions.
"""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Row


def tour_rows(rng: np.random.Generator) -> list[Row]:
    import scipy.fft

    import structlin.fft as slfft

    b, n = 256, 4096
    z = (rng.standard_normal((b, n)) + 1j * rng.standard_normal((b, n))).astype(np.complex64)
    br, nr = 2048, 8192
    x = rng.standard_normal((br, nr)).astype(np.float32)
    bd, nd = 512, 4096
    xd = rng.standard_normal((bd, nd))
    return [
        Row("fft complex64", f"n={n}, batch={b}", lambda: slfft.fft(z),
            "scipy.fft.fft(workers=-1)", lambda: scipy.fft.fft(z, workers=-1)),
        Row("rfft float32", f"n={nr}, batch={br}", lambda: slfft.rfft(x),
            "scipy.fft.rfft(workers=-1)", lambda: scipy.fft.rfft(x, workers=-1)),
        Row("dct type 2 float64", f"n={nd}, batch={bd}", lambda: slfft.dct(xd, type=2),
            "scipy.fft.dct(type=2, workers=-1)",
            lambda: scipy.fft.dct(xd, type=2, workers=-1)),
    ]


FAMILY = Family(
    name="fft",
    modules=("structlin.fft",),
    # structlin/_cpu/fft.py (Numba) and structlin/gpu/fft.py (cuFFT through cupy.fft): 2-D
    # C-contiguous rows, unnormalized; the public module does norm, axes, padding and Bluestein
    kernels=(
        Kernel("fft", {
            "is_smooth": ("n",),
            "fast_length": ("m",),
            "c2c": ("x", "inverse", "out", "scale"),
            "r2c": ("x",),
            "c2r": ("X", "n", "scale"),
        }),
        # the DCT/DST passes around one engine transform; CuPy input runs the same algorithms
        # as array operations on cuFFT (structlin.fft._r2r_array_ops), so no GPU kernels
        Kernel("fft_r2r", {
            "makhoul_gather": ("x", "v", "alternate"),
            "makhoul_scatter": ("v", "y", "alternate"),
            "dct2_post": ("V", "y", "tr", "ti", "reverse"),
            "dct3_pre": ("x", "V", "tr", "ti", "reverse"),
            "dct4_pre": ("x", "u", "wr", "wi", "reverse"),
            "dct4_post": ("U", "y", "tr", "ti", "alternate"),
        }, cpu_only=("makhoul_gather", "makhoul_scatter", "dct2_post", "dct3_pre", "dct4_pre",
                     "dct4_post")),
    ),
    tutorial="docs/tutorials/fft.md",
    tour=tour_rows,
    bench="bench_fft",
    flatten=False,
)
