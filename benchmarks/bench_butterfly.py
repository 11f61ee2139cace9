"""Butterfly benchmarks: ``butterfly_multiply`` (and its VJP) against the dense product (BLAS).

Work counts, per row of ``x`` (length ``n = 2**L``):

- butterfly, real: each of the ``L`` factors applies ``n / 2`` 2x2 blocks, 4 multiplies and
  2 adds each, so ``3 n L`` flops; complex: 4 times that (a complex multiply-add is 8 flops).
- dense ``x @ B.T``: ``2 n^2`` flops real, ``8 n^2`` complex.
- butterfly VJP: ``10 n L`` (forward recomputation ``3 n L``, input gradient ``3 n L``,
  twiddle gradient ``4 n L``); dense VJP ``g @ B`` and ``g.T @ x``: ``4 n^2`` per row.

Speed goals (from the issue): ``n = 1024``, batch 4096, float32: at least 5x the dense product;
``n = 4096``, batch 4096: at least 20x.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from _harness import Case, rel_error

import structlin

SEED = 20240601


def _tol(dtype: np.dtype) -> float:
    return 1e-3 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-9


def _inputs(n: int, batch: int, dtype, seed: int):
    rng = np.random.default_rng(seed)
    tw = structlin.random_butterfly(n, kind="orthogonal", dtype=dtype, rng=rng)
    x = rng.standard_normal((batch, n))
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal((batch, n))
    x = x.astype(dtype)
    dense = np.ascontiguousarray(structlin.butterfly_to_dense(tw), dtype=dtype)
    return tw, x, dense


def multiply_case(n: int, batch: int, dtype, goal: float | None = None, notes: str = "") -> Case:
    """``butterfly_multiply(tw, x)`` against ``x @ B.T`` with ``B = butterfly_to_dense(tw)``."""
    dtype = np.dtype(dtype)
    tw, x, dense = _inputs(n, batch, dtype, SEED + n)
    L = n.bit_length() - 1
    c = 4 if dtype.kind == "c" else 1
    return Case(
        name=f"butterfly_multiply {dtype.name}",
        size=f"n={n} batch={batch}",
        fn=lambda: structlin.butterfly_multiply(tw, x),
        baseline=lambda: x @ dense.T,
        baseline_name="numpy dense x @ B.T (BLAS)",
        work=c * 3.0 * n * L * batch,
        baseline_work=c * 2.0 * n * n * batch,
        unit="flop",
        dtype=dtype.name,
        goal=goal,
        check=rel_error,
        tol=_tol(dtype),
        notes=notes,
    )


def vjp_case(n: int, batch: int, dtype) -> Case:
    """``butterfly_multiply_vjp`` against the dense VJP ``(g @ B, g.T @ x)``.

    The check compares the input gradient; the dense side's matrix gradient has another shape
    than the twiddle gradient (the unit tests check that one).
    """
    dtype = np.dtype(dtype)
    tw, x, dense = _inputs(n, batch, dtype, SEED + 7 * n)
    g = np.random.default_rng(SEED + 1).standard_normal((batch, n)).astype(dtype)
    L = n.bit_length() - 1
    return Case(
        name=f"butterfly_multiply_vjp {dtype.name}",
        size=f"n={n} batch={batch}",
        fn=lambda: structlin.butterfly_multiply_vjp(tw, x, g),
        baseline=lambda: (g @ dense, g.T @ x),
        baseline_name="numpy dense VJP g @ B, g.T @ x (BLAS)",
        work=10.0 * n * L * batch,
        baseline_work=4.0 * n * n * batch,
        unit="flop",
        dtype=dtype.name,
        check=lambda s, b: rel_error(s[1], b[0]),
        tol=_tol(dtype),
        notes="rel.err compares grad_x with g @ B; work counted as 10 n log2(n) per row",
    )


def cases(quick: bool) -> Iterator[Case]:
    if quick:
        yield multiply_case(256, 256, np.float32, goal=5)
        yield multiply_case(512, 256, np.float32, goal=20)
        yield multiply_case(256, 256, np.complex64)
        yield multiply_case(256, 256, np.float64)
        yield vjp_case(256, 256, np.float32)
        return
    yield multiply_case(1024, 4096, np.float32, goal=5)
    yield multiply_case(4096, 4096, np.float32, goal=20)
    yield multiply_case(1024, 4096, np.complex64)
    yield multiply_case(1024, 4096, np.float64)
    yield vjp_case(1024, 4096, np.float32)
