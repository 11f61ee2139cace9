"""Toeplitz / low-displacement-rank benchmarks: the ``toeplitz`` family against SciPy and NumPy.

The cases are the issue's (issue 14), each against what a user runs today:

- ``solve_toeplitz`` on a well-conditioned symmetric positive definite system of ``n = 2^16``
  (``c_k = 1 / (1 + k)^2`` plus one on the diagonal) against SciPy's Levinson-Durbin
  ``scipy.linalg.solve_toeplitz``; goal 20x at a residual ``||T x - b|| / ||b|| <= 1e-10``.
- 1000 systems of ``n = 256`` in one call (``c`` of shape ``(1000, 256)``, ``b`` of shape
  ``(1000, 256, 1)``, SciPy 1.17's batch rules) against SciPy's batched call (a Python loop
  over the batch); goal 10x.
- ``n = 500`` with 500 right-hand sides (scipy issue #8619) against ``scipy.linalg.solve`` on the
  dense matrix (LU); goal: faster (1x).
- GKO on general nonsymmetric indefinite Toeplitz systems, ``n = 256 ... 8192``, against dense
  LU (``scipy.linalg.solve``); the backward error ``||T x - b|| / (||T||_1 ||x||_1)`` of both is
  reported in the notes (the issue: GKO within 10x of LU's, under 0.3 s at ``n = 4096``).
- ``matmul_toeplitz`` batched against ``scipy.linalg.matmul_toeplitz`` (SciPy's FFT product).
- ``solve_vandermonde`` (Björck-Pereyra) on a batch against ``numpy.linalg.solve`` on the dense
  Vandermonde matrices; ``solve_circulant`` against ``scipy.linalg.solve_circulant``.
- ``ldr_multiply`` of the subdiagonal kind (LDR-SD, rank 4) for ``n = 2^8 ... 2^12`` against the
  dense product with the matrix formed once (the crossover).
- ``matmul_cauchy`` at ``n = m = 4096`` is in ``bench_ssm`` (its first user) and is repeated
  here from there (goal 5x against the NumPy ``n x m`` matrix).

Work counts are stated per case: the structlin algorithm's flops where they are well defined
(Levinson: ``4 n^2`` per system and ``4 n^2`` per right-hand side), otherwise an order of the
algorithm or the baseline's count (the rate is then an *effective* rate).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import scipy.linalg
from _harness import Case, rel_error

import structlin

SEED = 20241204


def _residual_check(c, b):
    """check(x, _) -> ||T x - b|| / ||b|| for one system (SciPy's matmul_toeplitz)."""

    def check(x, _baseline):
        return float(np.linalg.norm(scipy.linalg.matmul_toeplitz(c, np.asarray(x)) - b)
                     / np.linalg.norm(b))

    return check


def _spd_column(n: int) -> np.ndarray:
    c = 1.0 / (1.0 + np.arange(n)) ** 2
    c[0] += 1.0
    return c


def spd_large_case(n: int, goal=None) -> Case:
    rng = np.random.default_rng(SEED + n)
    c = _spd_column(n)
    b = rng.standard_normal(n)
    return Case(
        name="solve_toeplitz SPD (auto)",
        size=f"n={n}",
        fn=lambda: structlin.solve_toeplitz(c, b),
        baseline=lambda: scipy.linalg.solve_toeplitz(c, b),
        baseline_name="scipy.linalg.solve_toeplitz (Levinson-Durbin)",
        work=10 * 3 * 2.5 * 2 * n * math.log2(2 * n),
        baseline_work=4.0 * n * n,
        unit="flop",
        dtype="float64",
        goal=goal,
        check=_residual_check(c, b),
        tol=1e-10,
        notes="check: residual ||Tx - b|| / ||b|| of structlin's x; auto picks preconditioned "
        "CG at this size; work: an estimate, ~10 iterations of three real FFT pairs (two of "
        "length 2n, one of n); SciPy's: Levinson's 4 n^2",
    )


def batched_case(batch: int, n: int, goal=None, method: str = "auto") -> Case:
    rng = np.random.default_rng(SEED + batch + n)
    c = np.stack([_spd_column(n) * rng.uniform(0.5, 2.0) for _ in range(batch)])
    c[:, 1:] *= rng.uniform(-1, 1, (batch, 1))
    b = rng.standard_normal((batch, n, 1))
    return Case(
        name=f"solve_toeplitz batched ({method})",
        size=f"batch={batch} n={n} k=1",
        fn=lambda: structlin.solve_toeplitz(c, b, method=method),
        baseline=lambda: scipy.linalg.solve_toeplitz(c, b),
        baseline_name="scipy.linalg.solve_toeplitz batched (SciPy 1.17: a loop over the batch)",
        work=4.0 * batch * n * n,
        unit="flop",
        dtype="float64",
        goal=goal,
        check=rel_error,
        tol=1e-9,
        notes="work: Levinson's 4 n^2 per system; method='auto' adds each row's backward-error "
        "check (two FFT products) to the recursion, method='levinson' is the recursion alone",
    )


def many_rhs_case(n: int, k: int, goal=None) -> Case:
    rng = np.random.default_rng(SEED + 7 * n + k)
    c = _spd_column(n)
    c[1:] *= -1.0
    r = _spd_column(n) * 0.5
    B = rng.standard_normal((n, k))
    T = scipy.linalg.toeplitz(c, r)
    return Case(
        name="solve_toeplitz many right-hand sides (auto)",
        size=f"n={n} k={k}",
        fn=lambda: structlin.solve_toeplitz((c, r), B),
        baseline=lambda: scipy.linalg.solve(T, B),
        baseline_name="scipy.linalg.solve on the dense T (LU, scipy #8619)",
        work=4.0 * n * n * (1 + k),
        baseline_work=2.0 / 3.0 * n**3 + 2.0 * n * n * k,
        unit="flop",
        dtype="float64",
        goal=goal,
        check=rel_error,
        tol=1e-9,
        notes="work: Levinson's 4 n^2 (recursion) + 4 n^2 per right-hand side",
    )


def gko_case(n: int) -> Case:
    rng = np.random.default_rng(SEED + 3 * n)
    c, r = rng.standard_normal(n), rng.standard_normal(n)
    r[0] = c[0]
    b = rng.standard_normal(n)
    T = scipy.linalg.toeplitz(c, r)
    x_lu = scipy.linalg.solve(T, b)
    x_gko = structlin.solve_toeplitz((c, r), b, method="gko")
    norm_T = np.linalg.norm(T, 1)

    def backward(x):
        return np.linalg.norm(T @ x - b, 1) / (norm_T * np.linalg.norm(x, 1))

    be_lu, be_gko = backward(x_lu), backward(x_gko)
    return Case(
        name="solve_toeplitz GKO nonsymmetric",
        size=f"n={n}",
        fn=lambda: structlin.solve_toeplitz((c, r), b, method="gko"),
        baseline=lambda: scipy.linalg.solve(T, b),
        baseline_name="scipy.linalg.solve on the dense T (LU with partial pivoting)",
        work=8.0 * 2 * n * n,
        baseline_work=2.0 / 3.0 * n**3,
        unit="flop",
        dtype="float64",
        check=rel_error,
        tol=1e-6 * max(1.0, np.linalg.cond(T, 1) / 1e6),
        notes=f"backward error GKO {be_gko:.1e} vs dense LU {be_lu:.1e} (ratio "
        f"{be_gko / be_lu:.1f}); work: complex generator updates, rank 2, ~16 n^2 flops",
    )


def matmul_case(batch: int, n: int, k: int) -> Case:
    rng = np.random.default_rng(SEED + batch + 11 * n)
    c, r = rng.standard_normal((batch, n)), rng.standard_normal((batch, n))
    x = rng.standard_normal((batch, n, k))
    return Case(
        name="matmul_toeplitz batched",
        size=f"batch={batch} n={n} k={k}",
        fn=lambda: structlin.matmul_toeplitz((c, r), x),
        baseline=lambda: scipy.linalg.matmul_toeplitz((c, r), x),
        baseline_name="scipy.linalg.matmul_toeplitz (FFT, batched)",
        work=batch * k * 3 * 5 * 2 * n * math.log2(2 * n) / 2,
        unit="flop",
        dtype="float64",
        check=rel_error,
        tol=1e-10,
        notes="work: three real FFTs of size 2n per column (2.5 N log2 N flops each)",
    )


def vandermonde_case(batch: int, n: int) -> Case:
    rng = np.random.default_rng(SEED + batch + n)
    # perturbed roots of unity: well conditioned (real nodes in [-1, 1] make the monomial
    # basis so ill-conditioned at n = 64 that no solver has a small residual)
    x = np.exp(2j * np.pi * (np.arange(n) + 0.2 * rng.uniform(-1, 1, (batch, n))) / n)
    f = rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))
    V = np.stack([np.vander(xi, n, increasing=True) for xi in x])
    return Case(
        name="solve_vandermonde (Björck-Pereyra)",
        size=f"batch={batch} n={n}",
        fn=lambda: structlin.solve_vandermonde(x, f, transpose=True),
        baseline=lambda: np.linalg.solve(V, f[..., None])[..., 0],
        baseline_name="numpy.linalg.solve on the dense Vandermonde batch (LU)",
        work=batch * 4 * 5.0 * n * n / 2,
        baseline_work=batch * 4 * 2.0 / 3.0 * n**3,
        unit="flop",
        dtype="complex128",
        check=lambda a, _: float(np.linalg.norm(np.einsum("bij,bj->bi", V, a) - f)
                                 / np.linalg.norm(f)),
        tol=1e-8,
        notes="interpolation (V[b, i, j] = x[b, i]^j, transpose=True in structlin's "
        "convention) at perturbed roots of unity, complex128; check: the residual "
        "||V a - f|| / ||f||; work: 5 n^2 / 2 complex operations (4 real flops each)",
    )


def circulant_case(batch: int, n: int) -> Case:
    rng = np.random.default_rng(SEED + 5 * batch + n)
    c = rng.standard_normal((batch, n))
    c[:, 0] += n**0.5 * 2
    b = rng.standard_normal((batch, n))
    return Case(
        name="solve_circulant batched",
        size=f"batch={batch} n={n}",
        fn=lambda: structlin.solve_circulant(c, b, baxis=-1),
        baseline=lambda: scipy.linalg.solve_circulant(c, b, baxis=-1),
        baseline_name="scipy.linalg.solve_circulant (FFT)",
        work=batch * 3 * 2.5 * n * math.log2(n),
        unit="flop",
        dtype="float64",
        check=rel_error,
        tol=1e-10,
        notes="work: three real FFTs of size n per system",
    )


def ldr_subdiag_case(n: int, r: int = 4, batch: int = 16) -> Case:
    rng = np.random.default_rng(SEED + n)
    G = rng.standard_normal((r, n)) / math.sqrt(n)
    H = rng.standard_normal((r, n)) / math.sqrt(n)
    sa = rng.uniform(0.5, 1.0, n - 1)
    sb = rng.uniform(0.5, 1.0, n - 1)
    x = rng.standard_normal((batch, n))
    params = {"subdiag_A": sa, "subdiag_B": sb}
    if n <= 2**10:  # the reference (O(r n^3)): the check is then independent of the fast path
        M = structlin.ldr_to_dense(G, H, "subdiagonal", **params)
    else:  # the matrix by the fast product of the identity (x @ M.T with x = I)
        M = structlin.ldr_multiply(G, H, np.eye(n), "subdiagonal", **params).T.copy()
    return Case(
        name=f"ldr_multiply subdiagonal r={r}",
        size=f"n={n} batch={batch}",
        fn=lambda: structlin.ldr_multiply(G, H, x, "subdiagonal", **params),
        baseline=lambda: x @ M.T,
        baseline_name="dense x @ M.T (BLAS), M formed once",
        work=batch * r * 2 * 5.0 * n * math.log2(n) ** 2,
        baseline_work=2.0 * batch * n * n,
        unit="flop",
        dtype="float64",
        check=rel_error,
        tol=1e-8,
        notes="work: two Krylov products per generator by divide and conquer, ~5 n log2^2 n "
        "flops each (the algorithm's order, not a count); M from ldr_to_dense up to n = 1024, "
        "above from the fast product of the identity (ldr_to_dense is O(r n^3))",
    )


def cases(quick: bool) -> Iterator[Case]:
    from bench_ssm import cauchy_case

    if quick:
        yield spd_large_case(2048, goal=20)
        yield batched_case(20, 64, goal=10)
        yield many_rhs_case(64, 64, goal=1)
        yield gko_case(128)
        yield matmul_case(4, 64, 2)
        yield vandermonde_case(16, 16)
        yield circulant_case(8, 64)
        yield ldr_subdiag_case(256)
        return
    yield spd_large_case(2**16, goal=20)
    yield batched_case(1000, 256, goal=10)
    yield batched_case(1000, 256, method="levinson")
    yield many_rhs_case(500, 500, goal=1)
    for n in (256, 1024, 4096, 8192):
        yield gko_case(n)
    yield matmul_case(64, 4096, 4)
    yield vandermonde_case(1000, 64)
    yield circulant_case(256, 4096)
    for n in (2**8, 2**10, 2**12):
        yield ldr_subdiag_case(n)
    yield cauchy_case(1, 4096, goal=5)
