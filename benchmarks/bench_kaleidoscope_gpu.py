"""GPU K-matrix benchmarks: ``kaleidoscope_multiply`` on CuPy arrays (the one-launch
``kaleidoscope_rows`` kernel) against cuBLAS dense ``x @ K.T`` and against the same butterflies
applied with two ``butterfly_multiply`` calls (what a user of the butterfly kernels alone
writes for width 1).

Work counts as in :mod:`bench_kaleidoscope`: ``6 w n L`` real flops per row (four times that for
complex data), dense ``2 n^2``.

Returns no case when CuPy has no usable device. Timings synchronize the device after each
call; nothing here has been run on a GPU yet.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from _harness import Case, gpu_available, gpu_rel_error

import structlin

SEED = 20261202
DTYPES = ("float32", "complex64")


def _sizes(quick: bool) -> list[tuple[int, int]]:
    return [(1024, 1024)] if quick else [(1024, 16384), (4096, 16384)]


def _label(n: int, batch: int, dtype: str, against: str) -> tuple[str, str]:
    return f"kaleidoscope_multiply {dtype} width 1 vs {against} (GPU)", f"n={n} batch={batch}"


def labels(quick: bool) -> list[tuple[str, str]]:
    """The ``(name, size)`` of every case of :func:`cases`, without a device."""
    return [_label(n, batch, dt, against) for n, batch in _sizes(quick) for dt in DTYPES
            for against in ("cuBLAS", "2 butterflies")]


def _inputs(n, batch, dtype):
    import cupy

    rng = np.random.default_rng(SEED + n)
    tw = structlin.random_kaleidoscope(n, 1, kind="orthogonal", dtype=dtype, rng=rng)
    x = rng.standard_normal((batch, n))
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal((batch, n))
    return tw, cupy.asarray(tw), cupy.asarray(x.astype(dtype))


def _work(n, batch, dtype):
    c = 4 if np.dtype(dtype).kind == "c" else 1
    return c * 6.0 * n * (n.bit_length() - 1) * batch


def dense_case(n: int, batch: int, dtype: str) -> Case:
    import cupy

    tw, tw_d, x = _inputs(n, batch, dtype)
    K = cupy.asarray(structlin.kaleidoscope_to_dense(tw).astype(dtype))
    sync = cupy.cuda.get_current_stream().synchronize
    c = 4 if np.dtype(dtype).kind == "c" else 1
    name, size = _label(n, batch, dtype, "cuBLAS")

    def fn():
        y = structlin.kaleidoscope_multiply(tw_d, x)
        sync()
        return y

    def baseline():
        y = x @ K.T
        sync()
        return y

    return Case(name=name, size=size, fn=fn, baseline=baseline,
                baseline_name="cupy x @ K.T (cuBLAS)", work=_work(n, batch, dtype),
                baseline_work=c * 2.0 * n * n * batch, unit="flop", dtype=dtype, goal=None,
                check=gpu_rel_error, tol=1e-3)


def butterflies_case(n: int, batch: int, dtype: str) -> Case:
    import cupy

    _, tw_d, x = _inputs(n, batch, dtype)
    sync = cupy.cuda.get_current_stream().synchronize
    name, size = _label(n, batch, dtype, "2 butterflies")

    def fn():
        y = structlin.kaleidoscope_multiply(tw_d, x)
        sync()
        return y

    def baseline():
        # K x = B(tw[0, 0]) B(tw[0, 1])^H x
        u = structlin.butterfly_multiply(tw_d[0, 1], x, transpose=True, conjugate=True)
        y = structlin.butterfly_multiply(tw_d[0, 0], u)
        sync()
        return y

    return Case(name=name, size=size, fn=fn, baseline=baseline,
                baseline_name="two butterfly_multiply calls (B^H, then B)",
                work=_work(n, batch, dtype), unit="flop", dtype=dtype, goal=None,
                check=gpu_rel_error, tol=1e-3)


def cases(quick: bool) -> Iterator[Case]:
    if not gpu_available():
        return
    for n, batch in _sizes(quick):
        for dt in DTYPES:
            yield dense_case(n, batch, dt)
            yield butterflies_case(n, batch, dt)
