"""Pixelfly benchmarks: ``pixelfly_multiply`` (and its VJP) against the dense product (BLAS)
and against ``scipy.sparse`` BSR plus the same low-rank GEMMs.

Matrices are ``M = S + U V^T`` with ``S`` on a flat block butterfly mask of density
``d = (n_factors + 1) / (n // block)`` (the flat butterfly densities nearest to the issue's
1 %, 5 % and 10 %: 1.6 % and 5.5 % with block 32, 10.9 % with block 64) and rank 16.

Work counts, per row of ``x`` (``n_out = n_in = n``):

- Pixelfly, real: ``2 d n^2`` (the stored blocks) ``+ 4 n rank`` (``x V`` then ``(x V) U^T``);
  complex: 4 times that.
- dense ``x @ M.T``: ``2 n^2`` (``baseline_work``); scipy BSR does the same work as Pixelfly.
- VJP: block gradients ``2 d n^2``, input gradient ``2 d n^2 + 4 n rank``, ``U`` and ``V``
  gradients ``4 n rank`` plus ``x V``: about ``4 d n^2 + 10 n rank``; dense VJP ``4 n^2``.

Goals: the product against dense has no minimum speed-up (the ideal is ``1 / d``). The
block-sparse part (rank 0) has one: at least half the machine's sgemm rate (issue 12), measured
as the ratio to an sgemm of *the same work* (``x @ W`` with ``W`` of ``d n`` columns, so
``2 d n^2`` flops per row on both sides) timed interleaved in the same process; a ratio of 0.5
means the block-sparse kernel runs at half of what BLAS does with those flops.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse
from _harness import Case, rel_error

import structlin

SEED = 20240605
RANK = 16


def _tol(dtype: np.dtype) -> float:
    return 1e-3 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-9


def _inputs(n: int, block: int, n_factors: int, batch: int, dtype, seed: int):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    mask = structlin.flat_block_butterfly_mask(n, n, block, n_factors)

    def draw(shape, scale):
        a = rng.standard_normal(shape)
        if dtype.kind == "c":
            a = a + 1j * rng.standard_normal(shape)
        return (scale * a).astype(dtype)

    blocks = draw((int(mask.sum()), block, block), 1 / np.sqrt(block * (n_factors + 1)))
    U = draw((n, RANK), 1 / np.sqrt(RANK))
    V = draw((n, RANK), 1 / np.sqrt(n))
    x = draw((batch, n), 1.0)
    return mask, blocks, U, V, x


def _density(mask) -> float:
    return float(mask.mean())


def _size(n, block, n_factors, batch, mask) -> str:
    return (f"n={n} block={block} n_factors={n_factors} density={100 * _density(mask):.1f}% "
            f"rank={RANK} batch={batch}")


def _work(n, batch, mask, dtype) -> float:
    c = 4 if np.dtype(dtype).kind == "c" else 1
    return c * batch * (2.0 * _density(mask) * n * n + 4.0 * n * RANK)


def dense_case(n: int, block: int, n_factors: int, batch: int, dtype) -> Case:
    """``pixelfly_multiply`` against ``x @ M.T`` with ``M = pixelfly_to_dense(...)`` (BLAS)."""
    dtype = np.dtype(dtype)
    mask, blocks, U, V, x = _inputs(n, block, n_factors, batch, dtype, SEED + n + n_factors)
    dense = np.ascontiguousarray(structlin.pixelfly_to_dense(blocks, mask, U, V), dtype=dtype)
    c = 4 if dtype.kind == "c" else 1
    return Case(
        name=f"pixelfly_multiply {dtype.name} vs dense",
        size=_size(n, block, n_factors, batch, mask),
        fn=lambda: structlin.pixelfly_multiply(blocks, mask, U, V, x),
        baseline=lambda: x @ dense.T,
        baseline_name="numpy dense x @ M.T (BLAS)",
        work=_work(n, batch, mask, dtype),
        baseline_work=c * 2.0 * n * n * batch,
        unit="flop",
        dtype=dtype.name,
        check=rel_error,
        tol=_tol(dtype),
    )


def bsr_case(n: int, block: int, n_factors: int, batch: int, dtype) -> Case:
    """``pixelfly_multiply`` against ``scipy.sparse.bsr_matrix`` for ``S`` plus the GEMMs."""
    dtype = np.dtype(dtype)
    mask, blocks, U, V, x = _inputs(n, block, n_factors, batch, dtype, SEED + n + n_factors)
    cols = np.nonzero(mask)[1]
    indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))])
    S = scipy.sparse.bsr_matrix((blocks, cols, indptr), shape=(n, n))

    def baseline():
        return (S @ x.T).T + (x @ V) @ U.T

    return Case(
        name=f"pixelfly_multiply {dtype.name} vs scipy BSR",
        size=_size(n, block, n_factors, batch, mask),
        fn=lambda: structlin.pixelfly_multiply(blocks, mask, U, V, x),
        baseline=baseline,
        baseline_name="scipy.sparse BSR (S @ x.T).T + (x @ V) @ U.T",
        work=_work(n, batch, mask, dtype),
        unit="flop",
        dtype=dtype.name,
        check=rel_error,
        tol=_tol(dtype),
        notes="same work on both sides: the rates compare the block-sparse kernels",
    )


def vjp_case(n: int, block: int, n_factors: int, batch: int, dtype) -> Case:
    """``pixelfly_multiply_vjp`` against the dense VJP ``(g @ M, g.T @ x)``.

    The check compares the input gradient; the dense side's matrix gradient has another shape
    than the block gradient (the unit tests check that one).
    """
    dtype = np.dtype(dtype)
    mask, blocks, U, V, x = _inputs(n, block, n_factors, batch, dtype, SEED + 3 * n)
    g = np.random.default_rng(SEED + 1).standard_normal((batch, n)).astype(dtype)
    dense = np.ascontiguousarray(structlin.pixelfly_to_dense(blocks, mask, U, V), dtype=dtype)
    d = _density(mask)
    return Case(
        name=f"pixelfly_multiply_vjp {dtype.name} vs dense",
        size=_size(n, block, n_factors, batch, mask),
        fn=lambda: structlin.pixelfly_multiply_vjp(blocks, mask, U, V, x, g),
        baseline=lambda: (g @ dense, g.T @ x),
        baseline_name="numpy dense VJP g @ M, g.T @ x (BLAS)",
        work=batch * (4.0 * d * n * n + 10.0 * n * RANK),
        baseline_work=4.0 * n * n * batch,
        unit="flop",
        dtype=dtype.name,
        check=lambda s, b: rel_error(s[3], b[0]),
        tol=_tol(dtype),
        notes="rel.err compares grad_x with g @ M",
    )


def sparse_part_case(n: int, block: int, n_factors: int, batch: int, dtype,
                     goal: float | None = 0.5) -> Case:
    """The block-sparse part alone (rank 0) against an sgemm/dgemm of equal work."""
    dtype = np.dtype(dtype)
    mask, blocks, _, _, x = _inputs(n, block, n_factors, batch, dtype, SEED + 7 * n + n_factors)
    U = np.zeros((n, 0), dtype=dtype)
    cols = round(_density(mask) * n)
    W = np.random.default_rng(SEED).standard_normal((n, cols)).astype(dtype)
    dense = structlin.pixelfly_to_dense(blocks, mask, U, U)
    reference = x.astype(np.float64) @ dense.T.astype(np.float64)
    work = 2.0 * _density(mask) * n * n * batch
    return Case(
        name=f"pixelfly block-sparse part {dtype.name} vs equal-work GEMM",
        size=_size(n, block, n_factors, batch, mask).replace(f"rank={RANK}", "rank=0"),
        fn=lambda: structlin.pixelfly_multiply(blocks, mask, U, U, x),
        baseline=lambda: x @ W,
        baseline_name=f"numpy x @ W, W of {cols} columns (BLAS, the same flops)",
        work=work,
        baseline_work=2.0 * n * cols * batch,
        unit="flop",
        dtype=dtype.name,
        goal=goal,
        check=lambda s, b: rel_error(s, reference),
        tol=_tol(dtype),
        notes="speed-up = the block-sparse kernel's rate as a fraction of BLAS's on equal work",
    )


def cases(quick: bool) -> Iterator[Case]:
    if quick:
        yield dense_case(512, 32, 1, 256, np.float32)
        yield bsr_case(512, 32, 1, 256, np.float32)
        yield dense_case(256, 16, 2, 128, np.complex64)
        yield vjp_case(512, 32, 1, 256, np.float32)
        yield sparse_part_case(512, 32, 1, 256, np.float32, goal=None)
        return
    for block, n_factors in ((32, 1), (32, 6), (64, 6)):
        yield dense_case(4096, block, n_factors, 2048, np.float32)
        yield bsr_case(4096, block, n_factors, 2048, np.float32)
        yield sparse_part_case(4096, block, n_factors, 2048, np.float32)
    yield dense_case(4096, 32, 6, 2048, np.float64)
    yield dense_case(2048, 32, 4, 2048, np.complex64)
    yield vjp_case(4096, 32, 6, 2048, np.float32)
