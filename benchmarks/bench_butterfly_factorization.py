"""Butterfly factorization benchmarks: ``butterfly_factorize`` against the same hierarchical
algorithm written with NumPy's batched SVD (what a user following Zheng et al.'s reference
code would run).

Work counts: each level of the hierarchy reads its stack of ``E`` entries twice (Gram
matrices, then the left factor and the residual) and writes ``E / 2``; the stacks hold
``n^2, n^2 / 2, n^2 / 4, ...`` entries, so one factorization moves about
``2.5 * 2 n^2 = 5 n^2`` entries: ``5 n^2 * itemsize`` bytes. The kernel does about
``17 n^2`` real flops (4 times that for complex data); it is memory-bound, so the figure of
merit is bytes/s.

Speed goal (from the issue, an absolute time, not a ratio): ``butterfly_factorize`` at
``n = 1024`` in under a second. The case ``float64 n=1024`` carries it in its notes; read its
median time.

The check compares the dense products of the two factorizations (the twiddles themselves are
only defined up to scalings and phases).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from _harness import Case, rel_error

import structlin
from structlin.butterfly_factorization import _reference_factorize_svd

SEED = 20240604


def factorize_case(n: int, dtype, notes: str = "") -> Case:
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(SEED + n)
    A = rng.standard_normal((n, n))
    if dtype.kind == "c":
        A = A + 1j * rng.standard_normal((n, n))
    A = A.astype(dtype)
    tol = 1e-3 if dtype in (np.float32, np.complex64) else 1e-9

    def check(out, base):
        wide = np.complex128
        return rel_error(structlin.butterfly_to_dense(out.twiddle.astype(wide)),
                         structlin.butterfly_to_dense(base.astype(wide)))

    return Case(
        name=f"butterfly_factorize {dtype.name}",
        size=f"n={n}",
        fn=lambda: structlin.butterfly_factorize(A),
        baseline=lambda: _reference_factorize_svd(A),
        baseline_name="same algorithm, numpy batched SVD",
        work=5.0 * n * n * dtype.itemsize,
        unit="byte",
        dtype=dtype.name,
        check=check,
        tol=tol,
        notes=notes,
    )


def cases(quick: bool) -> Iterator[Case]:
    if quick:
        yield factorize_case(256, np.float64)
        yield factorize_case(256, np.complex128)
        yield factorize_case(128, np.float32)
        return
    yield factorize_case(1024, np.float64, notes="issue goal: under 1 s (absolute time)")
    yield factorize_case(1024, np.complex128)
    yield factorize_case(1024, np.float32)
    yield factorize_case(4096, np.float64)
