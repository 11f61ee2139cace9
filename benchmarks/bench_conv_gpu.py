"""GPU long-convolution benchmarks: the CUDA engine against the plain ``cupy.fft`` pipeline.

The case is FlashFFTConv's gated convolution ``out = postgate * (k * (pregate * u) + D u)``
(causal, real float32 data, kernel spectrum precomputed on both sides) at its benchmark sizes
``B = 64, H = 768`` and ``L = 1K, 4K, 16K``; at ``L = 1M`` the batch is cut to ``B = 4,
H = 64`` (``64 x 768 x 1M`` float32 is 200 GB). The baseline is what a CuPy user writes:
``irfft(rfft(pregate * u, n) * k_f, n)[..., :L]`` plus the ``D`` and ``postgate`` terms, each
an extra pass over memory.

Work is counted in bytes of the unavoidable traffic, ``4 B H L`` elements (read ``u``,
``pregate``, ``postgate``, write ``out``), so the rate is comparable with the memory
bandwidth.

For comparison, FlashFFTConv (Fu et al., arXiv:2311.05908) reports on an H100 speed-ups over
PyTorch's FFT convolution of 7.93x at L = 1K, 6.64x at 4K, 2.45x at 16K and 1.74x at 1M
(fp16/bf16 tensor cores). structlin's fp16/bf16 paths run the radix-16 DFT blocks on tensor
cores, its fp32 path on CUDA cores; all three are benchmarked (:data:`PRECISIONS`).

Returns no case when CuPy has no usable device. Timings synchronize the device after each
call; nothing here has been run on a GPU yet.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from _harness import Case, gpu_available, gpu_rel_error

#: published H100 speed-ups of FlashFFTConv over PyTorch (arXiv:2311.05908), by L
PUBLISHED = {1 << 10: 7.93, 1 << 12: 6.64, 1 << 14: 2.45, 1 << 20: 1.74}
#: precisions benchmarked
PRECISIONS = ("fp16", "bf16", "fp32")
SEED = 20240602


def _label(B: int, H: int, L: int, precision: str) -> tuple[str, str]:
    return f"gated long conv {precision}", f"B={B} H={H} L={L}"


def _sizes(quick: bool) -> list[tuple[int, int, int]]:
    return [(8, 64, 1 << 10), (4, 32, 1 << 14)] if quick else [
        (64, 768, 1 << 10), (64, 768, 1 << 12), (64, 768, 1 << 14), (4, 64, 1 << 20)]


def labels(quick: bool) -> list[tuple[str, str]]:
    """The ``(name, size)`` of every case of :func:`cases`, without a device (for listings:
    ``benchmarks/gpu_check.py``)."""
    return [_label(B, H, L, p) for B, H, L in _sizes(quick) for p in PRECISIONS]


def gated_conv_case(B: int, H: int, L: int, precision: str = "fp32") -> Case:
    """``structlin.gpu.conv.forward`` against the ``cupy.fft`` pipeline, causal, float32."""
    import cupy

    from structlin.gpu import conv

    rng = cupy.random.default_rng(SEED + L)
    shape = (B, H, L)
    u, pre, post = (rng.standard_normal(shape, dtype=cupy.float32) for _ in range(3))
    k = rng.standard_normal((H, L), dtype=cupy.float32) / np.float32(np.sqrt(L))
    D = rng.standard_normal(H, dtype=cupy.float32)
    nfft = conv.fft_size(L, L)
    spec = conv.kernel_spectrum(k, nfft)
    out = cupy.empty_like(u)
    n_base = 2 * L
    k_f = cupy.fft.rfft(k, n=n_base)
    sync = cupy.cuda.get_current_stream().synchronize

    def fn():
        conv.forward(u, spec, nfft, L, 0, D, pre, post, out, precision=precision)
        sync()
        return out

    def baseline():
        y = cupy.fft.irfft(cupy.fft.rfft(pre * u, n=n_base) * k_f, n=n_base)[..., :L]
        r = post * (y + D[:, None] * u)
        sync()
        return r

    goal = PUBLISHED.get(L)
    name, size = _label(B, H, L, precision)
    return Case(
        name=name,
        size=size,
        fn=fn,
        baseline=baseline,
        baseline_name="cupy.fft rfft/irfft pipeline (kernel spectrum precomputed)",
        work=4.0 * B * H * L * 4,
        unit="byte",
        dtype="float32",
        goal=None,
        check=gpu_rel_error,
        tol=1e-3 if precision == "fp32" else 3e-2,
        notes=(f"FlashFFTConv (H100, fp16/bf16) reports {goal}x over PyTorch here"
               if goal else ""),
    )


def cases(quick: bool) -> Iterator[Case]:
    if not gpu_available():
        return
    for B, H, L in _sizes(quick):
        for precision in PRECISIONS:
            yield gated_conv_case(B, H, L, precision)
