"""Closed-form butterfly benchmarks: the DFT butterfly, DCT/DST and circulant products vs SciPy.

Work counts, per row of length ``n = 2**L``:

- DFT butterfly (complex): ``5 n L`` flops, the conventional count of a radix-2 FFT (the
  generic 2x2 complex blocks of :func:`structlin.butterfly_multiply` actually do
  ``12 n L``); ``scipy.fft.fft`` is counted the same, so the rates compare the algorithms.
  The bit-reversal gather (``structlin.bit_reverse``, a parallel Numba gather) is part of the
  call (a user must do it).
- DCT/DST types 2 and 3: a complex butterfly of size ``n`` (``5 n L``) per real row; type 4 one
  of size ``n/2``. SciPy's ``dct``/``dst`` are counted ``2.5 n L`` (a real FFT).
- circulant product: three FFTs of size ``n`` (spectrum of ``c`` and the two transforms of the
  rows; real FFTs on structlin.fft's engine since issue 13, no longer butterflies), counted
  ``15 n L`` per row as for complex FFTs; baselines: the FFT convolution
  ``ifft(fft(c) * fft(x))`` with ``scipy.fft`` (workers=-1) and the dense product with
  ``scipy.linalg.circulant(c)`` (``2 n^2`` flops per row, real).

Speed goal (from the issue): DFT butterfly complex64, x of shape ``(256, 4096)``: within 3x of
``scipy.fft.fft(x, workers=-1)``, i.e. a speed-up of at least 1/3. (The butterfly multiply's
own speed is the core's; this module only measures it.)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.fft
import scipy.linalg
from _harness import Case, rel_error

import structlin

SEED = 20240604


def _tol(dtype) -> float:
    return 1e-3 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-9


def _x(batch: int, n: int, dtype, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(SEED + n + seed)
    x = rng.standard_normal((batch, n))
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal((batch, n))
    return x.astype(dtype)


def dft_case(batch: int, n: int, dtype, goal: float | None = None) -> Case:
    dtype = np.dtype(dtype)
    x = _x(batch, n, dtype)
    tw = structlin.butterfly_dft(n, dtype=dtype)
    L = n.bit_length() - 1
    return Case(
        name=f"butterfly_dft {dtype.name}",
        size=f"n={n} batch={batch}",
        fn=lambda: structlin.butterfly_multiply(tw, structlin.bit_reverse(x)),
        baseline=lambda: scipy.fft.fft(x, workers=-1),
        baseline_name="scipy.fft.fft(x, workers=-1)",
        work=5.0 * n * L * batch,
        baseline_work=5.0 * n * L * batch,
        unit="flop",
        dtype=dtype.name,
        goal=goal,
        check=rel_error,
        tol=_tol(dtype),
        notes="structlin time includes the bit-reversal gather structlin.bit_reverse(x)",
    )


def transform_case(kind: str, type: int, batch: int, n: int, dtype, norm=None) -> Case:
    dtype = np.dtype(dtype)
    x = _x(batch, n, dtype)
    f = getattr(structlin, kind)
    g = getattr(scipy.fft, kind)
    L = n.bit_length() - 1
    m, Lm = (n // 2, L - 1) if type == 4 else (n, L)
    rows = batch * (2 if dtype.kind == "c" else 1)
    return Case(
        name=f"{kind} type {type} {dtype.name}" + (f" norm={norm}" if norm else ""),
        size=f"n={n} batch={batch}",
        fn=lambda: f(x, type, norm),
        baseline=lambda: g(x, type, norm=norm, workers=-1),
        baseline_name=f"scipy.fft.{kind}(x, {type}, workers=-1)",
        work=5.0 * m * max(Lm, 1) * rows,
        baseline_work=2.5 * n * L * rows,
        unit="flop",
        dtype=dtype.name,
        check=rel_error,
        tol=_tol(dtype),
    )


def circulant_fft_case(batch: int, n: int, dtype) -> Case:
    dtype = np.dtype(dtype)
    x = _x(batch, n, dtype)
    c = _x(1, n, dtype, seed=1)[0]
    L = n.bit_length() - 1
    real = dtype.kind != "c"

    def fft_conv():
        if real:
            return scipy.fft.irfft(scipy.fft.rfft(c) * scipy.fft.rfft(x, workers=-1), n=n,
                                   workers=-1)
        return scipy.fft.ifft(scipy.fft.fft(c) * scipy.fft.fft(x, workers=-1), workers=-1)

    return Case(
        name=f"circulant_multiply {dtype.name} vs FFT",
        size=f"n={n} batch={batch}",
        fn=lambda: structlin.circulant_multiply(c, x),
        baseline=fft_conv,
        baseline_name=("scipy.fft irfft(rfft(c) rfft(x))" if real
                       else "scipy.fft ifft(fft(c) fft(x))") + " workers=-1",
        work=10.0 * n * L * batch + 5.0 * n * L,
        baseline_work=(5.0 if real else 10.0) * n * L * batch,
        unit="flop",
        dtype=dtype.name,
        check=rel_error,
        tol=_tol(dtype),
    )


def circulant_dense_case(batch: int, n: int, dtype) -> Case:
    dtype = np.dtype(dtype)
    x = _x(batch, n, dtype)
    c = _x(1, n, dtype, seed=1)[0]
    C = np.ascontiguousarray(scipy.linalg.circulant(c), dtype=dtype)
    L = n.bit_length() - 1
    return Case(
        name=f"circulant_multiply {dtype.name} vs dense",
        size=f"n={n} batch={batch}",
        fn=lambda: structlin.circulant_multiply(c, x),
        baseline=lambda: x @ C.T,
        baseline_name="numpy dense x @ scipy.linalg.circulant(c).T (BLAS)",
        work=10.0 * n * L * batch + 5.0 * n * L,
        baseline_work=2.0 * n * n * batch,
        unit="flop",
        dtype=dtype.name,
        check=rel_error,
        tol=_tol(dtype),
    )


def bit_reverse_case(batch: int, n: int, dtype) -> Case:
    dtype = np.dtype(dtype)
    x = _x(batch, n, dtype)
    perm = structlin.bit_reversal_permutation(n)
    return Case(
        name=f"bit_reverse {dtype.name}",
        size=f"n={n} batch={batch}",
        fn=lambda: structlin.bit_reverse(x),
        baseline=lambda: x[..., perm],
        baseline_name="numpy x[..., bit_reversal_permutation(n)] (fancy indexing)",
        work=2.0 * x.nbytes,
        unit="byte",
        dtype=dtype.name,
        check=rel_error,
        tol=0.0,
        notes="bytes: one read and one write of x",
    )


def cases(quick: bool) -> Iterator[Case]:
    if quick:
        yield dft_case(16, 1024, np.complex64, goal=1 / 3)
        yield bit_reverse_case(16, 1024, np.complex64)
        yield transform_case("dct", 2, 16, 1024, np.float32)
        yield transform_case("dst", 4, 16, 1024, np.float64, norm="ortho")
        yield circulant_fft_case(16, 1024, np.float32)
        yield circulant_dense_case(16, 256, np.float64)
        return
    yield dft_case(256, 4096, np.complex64, goal=1 / 3)
    yield dft_case(256, 4096, np.complex128)
    yield bit_reverse_case(256, 4096, np.complex64)
    for kind in ("dct", "dst"):
        for type in (2, 3, 4):
            yield transform_case(kind, type, 256, 4096, np.float32)
    yield transform_case("dct", 2, 256, 4096, np.float64, norm="ortho")
    yield transform_case("dct", 2, 256, 4096, np.complex64)
    yield circulant_fft_case(256, 4096, np.float32)
    yield circulant_fft_case(256, 4096, np.complex64)
    yield circulant_dense_case(256, 2048, np.float32)
