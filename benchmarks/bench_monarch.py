"""Monarch benchmarks: products against the dense product and plain NumPy, projection vs SVD.

Work counts, per row of ``x`` (real; a complex multiply-add is 4 times the flops):

- Monarch ``w1 (k, q, p)``, ``w2 (l, s, r)``: ``2 k q p + 2 l s r`` flops (two batched GEMMs);
  dense ``x @ M.T``: ``2 n_out n_in``.
- Monarch VJP: three times the product (``grad_x`` through both factors, two weight
  gradients) plus the recomputed middle: ``8 (k q p + l s r)``; dense VJP ``4 n_out n_in``.
- order-p Monarch with ``n = b^p``: ``2 p n b``; BTT of rank ``R``: ``2 R (k l p + l s k)``.
- projection: counted in bytes of ``A`` read (the iterations read slices of ``A`` from cache).

Speed goals (from the issue): ``monarch_multiply`` float32, ``n = 4096`` with 64 blocks of 64,
batch 2048: at least 15x faster than dense ``x @ M.T``, and no slower (>= 1x) than the best
plain-NumPy implementation (``np.matmul`` on reshaped blocks, :func:`numpy_monarch`).
``monarch_project`` of a 4096 x 4096 matrix in under 2 s at the optimal error (the case
compares with the exact batched SVD of the slices; the absolute time is in its row).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from _harness import Case, rel_error

import structlin

SEED = 20240605


def _tol(dtype) -> float:
    return 1e-3 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-9


def numpy_monarch(x, w1t, w2t, l):
    """Best plain-NumPy Monarch product: two ``np.matmul`` on reshaped blocks.

    ``w1t = w1.transpose(0, 2, 1)`` and ``w2t = w2.transpose(0, 2, 1)`` (prepared once); the
    ``(r, l) -> (l, r)`` transpose is one contiguous copy so that both GEMMs run on BLAS.
    """
    b = x.shape[0]
    k, p, _ = w1t.shape
    _, r, s = w2t.shape
    u = np.matmul(x.reshape(b, k, p).transpose(1, 0, 2), w1t)  # (k, b, q)
    z = np.ascontiguousarray(u.transpose(1, 0, 2).reshape(b, r, l).transpose(2, 0, 1))
    v = np.matmul(z, w2t)  # (l, b, s)
    return v.transpose(1, 2, 0).reshape(b, s * l)


def _factors(rng, s1, s2, dtype):
    w1 = (rng.standard_normal(s1) / np.sqrt(s1[2])).astype(dtype)
    w2 = (rng.standard_normal(s2) / np.sqrt(s2[2])).astype(dtype)
    return w1, w2


def multiply_cases(b: int, batch: int, dtype, goals=(None, None)) -> Iterator[Case]:
    """``monarch_multiply`` with ``b`` blocks of ``b x b`` against dense and plain NumPy."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(SEED + b)
    n = b * b
    w1, w2 = _factors(rng, (b, b, b), (b, b, b), dtype)
    x = rng.standard_normal((batch, n)).astype(dtype)
    c = 4 if dtype.kind == "c" else 1
    work = c * 4.0 * n * b * batch
    M = np.ascontiguousarray(structlin.monarch_to_dense(w1, w2), dtype=dtype)
    yield Case(
        name=f"monarch_multiply {dtype.name}",
        size=f"n={n} blocks={b} batch={batch}",
        fn=lambda: structlin.monarch_multiply(w1, w2, x),
        baseline=lambda: x @ M.T,
        baseline_name="numpy dense x @ M.T (BLAS)",
        work=work,
        baseline_work=c * 2.0 * n * n * batch,
        unit="flop",
        dtype=dtype.name,
        goal=goals[0],
        check=rel_error,
        tol=_tol(dtype),
    )
    w1t = np.ascontiguousarray(w1.transpose(0, 2, 1))
    w2t = np.ascontiguousarray(w2.transpose(0, 2, 1))
    yield Case(
        name=f"monarch_multiply {dtype.name} vs numpy blocks",
        size=f"n={n} blocks={b} batch={batch}",
        fn=lambda: structlin.monarch_multiply(w1, w2, x),
        baseline=lambda: numpy_monarch(x, w1t, w2t, b),
        baseline_name="np.matmul on reshaped blocks (BLAS)",
        work=work,
        unit="flop",
        dtype=dtype.name,
        goal=goals[1],
        check=rel_error,
        tol=_tol(dtype),
    )


def vjp_case(b: int, batch: int, dtype) -> Case:
    """``monarch_multiply_vjp`` against the dense VJP ``(g @ M, g.T @ x)``; compares grad_x."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(SEED + 3 * b)
    n = b * b
    w1, w2 = _factors(rng, (b, b, b), (b, b, b), dtype)
    x = rng.standard_normal((batch, n)).astype(dtype)
    g = rng.standard_normal((batch, n)).astype(dtype)
    M = np.ascontiguousarray(structlin.monarch_to_dense(w1, w2), dtype=dtype)
    return Case(
        name=f"monarch_multiply_vjp {dtype.name}",
        size=f"n={n} blocks={b} batch={batch}",
        fn=lambda: structlin.monarch_multiply_vjp(w1, w2, x, g),
        baseline=lambda: (g @ M, g.T @ x),
        baseline_name="numpy dense VJP g @ M, g.T @ x (BLAS)",
        work=16.0 * n * b * batch,
        baseline_work=4.0 * n * n * batch,
        unit="flop",
        dtype=dtype.name,
        check=lambda s, d: rel_error(s[2], d[0]),
        tol=_tol(dtype),
        notes="rel.err compares grad_x with g @ M",
    )


def project_case(b: int) -> Case:
    """``monarch_project(A, nblocks=b)`` of an ``n x n`` matrix, ``n = b^2``, vs the exact SVDs."""
    rng = np.random.default_rng(SEED + 5 * b)
    n = b * b
    A = rng.standard_normal((n, n)).astype(np.float32)
    A64 = A.astype(np.float64)
    norm2 = float(np.sum(A64**2))

    def exact():
        # the alternative a user has: the full SVD of every slice, in double precision
        return np.linalg.svd(A64.reshape(b, b, b, b).transpose(1, 2, 0, 3), compute_uv=False)

    def check(ws, sv):
        w1, w2 = (w.astype(np.float64) for w in ws)
        err = np.linalg.norm(A64 - structlin.monarch_to_dense(w1, w2))
        best = np.sqrt(norm2 - np.sum(sv[..., 0] ** 2))
        return abs(err - best) / best

    return Case(
        name="monarch_project float32",
        size=f"{n}x{n} blocks={b}",
        fn=lambda: structlin.monarch_project(A, nblocks=b),
        baseline=exact,
        baseline_name="numpy batched SVD of the b^2 slices (exact)",
        work=float(A.nbytes),
        unit="byte",
        dtype="float32",
        check=check,
        tol=1e-6,
        notes="rel.err: |error - optimal error| / optimal error; issue goal: < 2 s absolute",
    )


def order_p_case(b: int, p: int, batch: int) -> Case:
    """Order-p Monarch (``n = b^p``, square blocks) against the dense product."""
    rng = np.random.default_rng(SEED + 7 * b + p)
    n = b**p
    fs = [(rng.standard_normal((n // b, b, b)) / np.sqrt(b)).astype(np.float32)
          for _ in range(p)]
    x = rng.standard_normal((batch, n)).astype(np.float32)
    M = np.ascontiguousarray(structlin.monarch_order_p_to_dense(fs), dtype=np.float32)
    return Case(
        name=f"monarch_order_p_multiply p={p} float32",
        size=f"n={n} b={b} batch={batch}",
        fn=lambda: structlin.monarch_order_p_multiply(fs, x),
        baseline=lambda: x @ M.T,
        baseline_name="numpy dense x @ M.T (BLAS)",
        work=2.0 * p * n * b * batch,
        baseline_work=2.0 * n * n * batch,
        unit="flop",
        dtype="float32",
        check=rel_error,
        tol=1e-3,
    )


def btt_case(b: int, rank: int, batch: int) -> Case:
    """BTT of rank ``rank`` with ``b`` blocks each side (``n = b^2``) against dense."""
    rng = np.random.default_rng(SEED + 11 * b + rank)
    n = b * b
    w1 = (rng.standard_normal((b, rank, b, b)) / np.sqrt(b)).astype(np.float32)
    w2 = (rng.standard_normal((b, b, b, rank)) / np.sqrt(b * rank)).astype(np.float32)
    x = rng.standard_normal((batch, n)).astype(np.float32)
    M = np.ascontiguousarray(structlin.btt_to_dense(w1, w2), dtype=np.float32)
    return Case(
        name=f"btt_multiply rank={rank} float32",
        size=f"n={n} blocks={b} batch={batch}",
        fn=lambda: structlin.btt_multiply(w1, w2, x),
        baseline=lambda: x @ M.T,
        baseline_name="numpy dense x @ M.T (BLAS)",
        work=4.0 * rank * n * b * batch,
        baseline_work=2.0 * n * n * batch,
        unit="flop",
        dtype="float32",
        check=rel_error,
        tol=1e-3,
    )


def cases(quick: bool) -> Iterator[Case]:
    if quick:
        yield from multiply_cases(16, 256, np.float32, goals=(15, 1))
        yield from multiply_cases(16, 128, np.complex64)
        yield vjp_case(16, 128, np.float32)
        yield project_case(16)
        yield order_p_case(8, 3, 128)
        yield btt_case(16, 2, 128)
        return
    yield from multiply_cases(64, 2048, np.float32, goals=(15, 1))
    yield from multiply_cases(32, 2048, np.float64)
    yield from multiply_cases(32, 1024, np.complex64)
    yield vjp_case(64, 2048, np.float32)
    yield project_case(64)
    yield order_p_case(16, 3, 2048)
    yield btt_case(64, 4, 2048)
