"""Walsh–Hadamard benchmarks: ``fwht`` against the real FFT and the dense Hadamard product.

Work counts, per row of length ``n = 2**L``: ``fwht`` does ``n L`` adds/subtracts; the dense
product ``x @ H.T`` ``2 n^2`` flops; ``rfft`` is counted with the conventional ``2.5 n L``
(half of the complex FFT's ``5 n L``). The large case is memory-bound and is reported in bytes
per second, counting one read and one write of ``x``.

Speed goals (from the issue): float32 ``(64, 2**16)`` at least as fast as
``scipy.fft.rfft(x, workers=-1)``; ``n = 4096`` at least 50x the dense product.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.fft
import scipy.linalg
from _harness import Case, rel_error

import structlin

SEED = 20240602


def reference_fwht(x: np.ndarray) -> np.ndarray:
    """Unnormalised Walsh–Hadamard transform in float64, ``L`` vectorised NumPy passes."""
    y = np.array(x, dtype=np.float64)
    n = y.shape[-1]
    rows = y.reshape(-1, n)
    h = 1
    while h < n:
        v = rows.reshape(rows.shape[0], n // (2 * h), 2, h)
        a = v[:, :, 0, :].copy()
        v[:, :, 0, :] += v[:, :, 1, :]
        v[:, :, 1, :] = a - v[:, :, 1, :]
        h *= 2
    return y


def _x(batch: int, n: int, dtype) -> np.ndarray:
    return np.random.default_rng(SEED + n).standard_normal((batch, n)).astype(dtype)


def _tol(dtype) -> float:
    return 1e-3 if np.dtype(dtype) == np.float32 else 1e-9


def vs_rfft_case(batch: int, n: int, dtype, goal: float | None = None) -> Case:
    dtype = np.dtype(dtype)
    x = _x(batch, n, dtype)
    L = n.bit_length() - 1
    return Case(
        name=f"fwht {dtype.name} vs rfft",
        size=f"n={n} batch={batch}",
        fn=lambda: structlin.fwht(x),
        baseline=lambda: scipy.fft.rfft(x, workers=-1),
        baseline_name="scipy.fft.rfft(x, workers=-1)",
        work=1.0 * n * L * batch,
        baseline_work=2.5 * n * L * batch,
        unit="flop",
        dtype=dtype.name,
        goal=goal,
        check=lambda s, _b: rel_error(s, reference_fwht(x)),
        tol=_tol(dtype),
        notes="rel.err against a float64 NumPy fwht; rfft flops counted as 2.5 n log2(n)",
    )


def vs_dense_case(batch: int, n: int, dtype, goal: float | None = None) -> Case:
    dtype = np.dtype(dtype)
    x = _x(batch, n, dtype)
    H = scipy.linalg.hadamard(n).astype(dtype)
    L = n.bit_length() - 1
    return Case(
        name=f"fwht {dtype.name} vs dense",
        size=f"n={n} batch={batch}",
        fn=lambda: structlin.fwht(x),
        baseline=lambda: x @ H.T,
        baseline_name="numpy dense x @ hadamard(n).T (BLAS)",
        work=1.0 * n * L * batch,
        baseline_work=2.0 * n * n * batch,
        unit="flop",
        dtype=dtype.name,
        goal=goal,
        check=rel_error,
        tol=_tol(dtype),
    )


def large_case(batch: int, n: int, dtype) -> Case:
    """A transform far larger than the caches: memory-bound, reported in bytes/s."""
    dtype = np.dtype(dtype)
    x = _x(batch, n, dtype)
    out_bytes = batch * (n // 2 + 1) * np.dtype(np.result_type(dtype, np.complex64)).itemsize
    return Case(
        name=f"fwht {dtype.name} large",
        size=f"n=2^{n.bit_length() - 1} batch={batch}",
        fn=lambda: structlin.fwht(x),
        baseline=lambda: scipy.fft.rfft(x, workers=-1),
        baseline_name="scipy.fft.rfft(x, workers=-1)",
        work=2.0 * x.nbytes,
        baseline_work=float(x.nbytes + out_bytes),
        unit="byte",
        dtype=dtype.name,
        check=lambda s, _b: rel_error(s[:1], reference_fwht(x[:1])),
        tol=_tol(dtype),
        notes="bytes = read + write of x (rfft: read x + write its output); "
        "rel.err on the first row against a float64 NumPy fwht",
    )


def cases(quick: bool) -> Iterator[Case]:
    if quick:
        yield vs_rfft_case(8, 2**12, np.float32, goal=1)
        yield vs_dense_case(64, 256, np.float32, goal=50)
        yield large_case(1, 2**16, np.float32)
        yield vs_rfft_case(8, 2**12, np.float64)
        return
    yield vs_rfft_case(64, 2**16, np.float32, goal=1)
    yield vs_dense_case(256, 4096, np.float32, goal=50)
    yield large_case(2, 2**24, np.float32)
    yield vs_rfft_case(64, 2**16, np.float64)
