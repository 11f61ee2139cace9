"""The conv family's declaration (see :mod:`structlin._registry`)."""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Op, Row, shape_broadcast, shape_check


def tour_rows(rng: np.random.Generator) -> list[Row]:
    import scipy.fft

    import structlin as sl

    B, H, L = 4, 128, 4096
    u = rng.standard_normal((B, H, L)).astype(np.float32)
    k = (rng.standard_normal((H, L)) * np.exp(-np.arange(L) / 1024)).astype(np.float32)
    D = rng.standard_normal(H).astype(np.float32)
    plan = sl.fftconv_plan(k, L)

    def pipeline():
        n = 2 * L
        kf = scipy.fft.rfft(k, n=n, workers=-1)
        y = scipy.fft.irfft(scipy.fft.rfft(u, n=n, workers=-1) * kf, n=n, workers=-1)
        return y[..., :L] + u * D[:, None]

    return [
        Row("fftconv float32 (Lk = L)", f"B={B} H={H} L={L}", lambda: sl.fftconv(u, k, D),
            "scipy.fft rfft/irfft pipeline", pipeline),
        Row("fftconv planned float32", f"B={B} H={H} L={L}", lambda: sl.fftconv(u, plan, D),
            "scipy.fft rfft/irfft pipeline", pipeline),
    ]


def _fftconv_shape(shapes: tuple, static: dict) -> tuple[int, ...]:
    u, k, D, pre, post = shapes
    shape_check(len(u) >= 2, f"u must have shape (..., H, L), got {tuple(u)}")
    H = u[-2]
    shape_check(len(k) == 2 and k[0] == H,
                f"k must have one kernel per channel of u, i.e. H = {H} rows (u has shape "
                f"{tuple(u)}, channels on its second-to-last axis), got k of shape {tuple(k)}")
    shape_check(D is None or tuple(D) == (H,), f"D must have shape (H,) = ({H},), got "
                f"{None if D is None else tuple(D)}")
    for name, g in (("pregate", pre), ("postgate", post)):
        if g is not None:
            message = f"{name} must have u's shape {tuple(u)} (or broadcast to it), got {tuple(g)}"
            shape_check(shape_broadcast(message, tuple(g), tuple(u)) == tuple(u), message)
    return tuple(u)


def operations() -> tuple[Op, ...]:
    import structlin as sl

    def backward(a, s, g):
        u, k, D, pre, post = a
        return sl.fftconv_vjp(u, k, D, g, pregate=pre, postgate=post, **s)

    return (
        Op(
            "fftconv", ("u", "k", "D", "pregate", "postgate"), (True,) * 5,
            forward=lambda a, s: sl.fftconv(a[0], a[1], a[2], pregate=a[3], postgate=a[4], **s),
            backward=backward,
            out_shape=_fftconv_shape,
            static=("causal", "precision"),
        ),
    )


FAMILY = Family(
    name="conv",
    # structlin.conv re-exports these (the import path of before the split), and the SSM
    # kernels of the ssm family
    modules=("structlin.conv_fft", "structlin.conv_stream", "structlin.conv_regularizers"),
    kernels=(
        Kernel("conv", {
            "fft_size": ("L", "Lk"),
            "kernel_spectrum": ("k", "nfft", "lazy"),
            "forward": ("u", "spec", "nfft", "Lk", "offset", "D", "pregate", "postgate", "out",
                        "precision"),
            "backward": ("u", "spec", "nfft", "Lk", "offset", "D", "pregate", "postgate",
                         "grad", "precision"),
        }),
    ),
    tutorial="docs/tutorials/long_convolutions.md",
    precisions=("highest", "fp16", "bf16"),
    tour=tour_rows,
    bench="bench_conv",
    ops=operations,
)
