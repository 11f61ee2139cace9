"""GPU FFT benchmarks: ``structlin.fft`` on CuPy arrays (cuFFT through ``structlin.gpu.fft``)
against ``cupy.fft`` called directly.

Both sides run the same cuFFT plans, so the ratio measures what ``structlin.fft`` adds on top
(argument checks, ``norm``, reshaping): it should be close to 1. Work is counted as on the CPU
(``bench_fft.py``): ``5 n log2(n)`` flops per complex transform, ``2.5 n log2(n)`` per real
one. Timings synchronize the device after each call.

Returns no case when CuPy has no usable device; nothing here has been run on a GPU yet.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from _harness import Case, gpu_available, gpu_rel_error

SEED = 20240613


def _sizes(quick: bool) -> list[tuple[str, str, int, int]]:
    """``(kind, precision, batch, n)``."""
    if quick:
        return [("fft", "float32", 64, 1024), ("rfft", "float32", 64, 1024),
                ("irfft", "float64", 32, 1024)]
    return [("fft", "float32", 4096, 4096), ("fft", "float64", 2048, 4096),
            ("fft", "float32", 64, 1 << 20), ("rfft", "float32", 8192, 8192),
            ("irfft", "float32", 8192, 8192), ("rfft", "float64", 4096, 8192)]


def _label(kind: str, precision: str, batch: int, n: int) -> tuple[str, str]:
    dt = {"float32": "complex64", "float64": "complex128"}[precision] if kind == "fft" \
        else precision
    return f"{kind} {dt} vs cupy.fft", f"n={n} batch={batch}"


def labels(quick: bool) -> list[tuple[str, str]]:
    """The ``(name, size)`` of every case of :func:`cases`, without a device (for listings:
    ``benchmarks/gpu_check.py``)."""
    return [_label(*s) for s in _sizes(quick)]


def fft_case(kind: str, precision: str, batch: int, n: int) -> Case:
    import cupy

    import structlin.fft as slfft

    rng = cupy.random.default_rng(SEED + n)
    x = rng.standard_normal((batch, n), dtype=precision)
    if kind == "fft":
        x = x + 1j * rng.standard_normal((batch, n), dtype=precision)
        fast, base = (lambda: slfft.fft(x)), (lambda: cupy.fft.fft(x))
    elif kind == "rfft":
        fast, base = (lambda: slfft.rfft(x)), (lambda: cupy.fft.rfft(x))
    else:
        x = cupy.fft.rfft(x)
        fast, base = (lambda: slfft.irfft(x, n=n)), (lambda: cupy.fft.irfft(x, n=n))
    sync = cupy.cuda.get_current_stream().synchronize

    def fn():
        y = fast()
        sync()
        return y

    def baseline():
        y = base()
        sync()
        return y

    name, size = _label(kind, precision, batch, n)
    per = 5.0 if kind == "fft" else 2.5
    return Case(
        name=name,
        size=size,
        fn=fn,
        baseline=baseline,
        baseline_name="cupy.fft (the same cuFFT plans)",
        work=per * n * math.log2(n) * batch,
        unit="flop",
        dtype=("complex64" if precision == "float32" else "complex128") if kind == "fft"
        else precision,
        check=gpu_rel_error,
        tol=1e-5 if precision == "float32" else 1e-12,
        notes="flops: 5 n log2 n per complex transform, 2.5 n log2 n per real one",
    )


def cases(quick: bool) -> Iterator[Case]:
    if not gpu_available():
        return
    for spec in _sizes(quick):
        yield fft_case(*spec)
