"""Kaleidoscope fitting benchmarks: the relative Frobenius error ``kaleidoscope_fit`` reaches
at each width on the DFT, a random permutation and a random dense Gaussian matrix, and the
time of one fit.

What theory gives (Dao et al. 2020, arXiv:2012.14966): the DFT is in ``BB*`` (width 1), every
permutation is in ``BB*`` (width 1, a Beneš network), and a dense Gaussian matrix needs width
about ``n / (2 log2 n)`` (parameter count). The fits are L-BFGS from random orthogonal
starts and, where the closest scaled permutation ``D P`` explains half of ``||A||_F^2``, from
that permutation routed exactly (``permutation_start``); the table reports what is reached,
not what exists, with the permutation fitted both ways.

:func:`fit_table` returns ``(headers, rows)``; :func:`cases` the harness cases (a fit of the
DFT at width 1, timed, its check the relative error reached).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from _harness import Case

import structlin

SEED = 20240605
HEADERS = ["matrix", "n", "width", "rel. error", "restarts", "iterations"]


def targets(n: int) -> dict[str, tuple[np.ndarray, bool]]:
    """The matrices fitted at size ``n``, with ``permutation_start`` for each."""
    rng = np.random.default_rng(SEED + n)
    P = np.eye(n)[rng.permutation(n)]
    return {
        "DFT": (np.fft.fft(np.eye(n)), True),
        "random permutation, random starts only": (P, False),
        "random permutation": (P, True),
        "permutation + 1e-2 Gaussian noise": (P + 1e-2 * rng.standard_normal((n, n)), True),
        "dense Gaussian": (rng.standard_normal((n, n)), True),
    }


def fit_table(quick: bool = True, restarts: int = 3, maxiter: int = 1500):
    """Return ``(headers, rows)``: the error reached per matrix, size and width."""
    sizes = (8, 16) if quick else (8, 16, 32)
    widths = (1, 2) if quick else (1, 2, 3, 4)
    rows = []
    for n in sizes:
        for name, (A, permutation_start) in targets(n).items():
            for w in widths:
                fit = structlin.kaleidoscope_fit(A, w, restarts=restarts, maxiter=maxiter,
                                                 permutation_start=permutation_start,
                                                 rng=SEED)
                rows.append([name, str(n), str(w), f"{fit.error:.1e}", str(len(fit.errors)),
                             str(fit.n_iter)])
    return HEADERS, rows


def dft_fit_case(n: int) -> Case:
    F = np.fft.fft(np.eye(n))
    L = n.bit_length() - 1
    return Case(
        name="kaleidoscope_fit DFT width 1",
        size=f"n={n}",
        fn=lambda: structlin.kaleidoscope_fit(F, 1, restarts=3, rng=SEED),
        baseline=lambda: np.linalg.lstsq(np.eye(n), F, rcond=None)[0],
        baseline_name="dense least squares (an unstructured fit, no compression)",
        # one objective evaluation: a forward and a backward pass over the n x n identity
        work=4 * 24.0 * n * n * L,
        unit="flop",
        dtype="complex128",
        check=lambda out, base: float(out.error),
        tol=1e-6,
        notes="work is one objective evaluation; the fit makes tens to hundreds",
    )


def permutation_fit_case(n: int) -> Case:
    perm = np.random.default_rng(SEED).permutation(n)
    P = np.eye(n)[perm]
    L = n.bit_length() - 1
    return Case(
        name="kaleidoscope_fit permutation width 1",
        size=f"n={n}",
        fn=lambda: structlin.kaleidoscope_fit(P, 1, restarts=1, maxiter=50, rng=SEED),
        baseline=lambda: structlin.kaleidoscope_permutation(perm),
        baseline_name="kaleidoscope_permutation of the known perm (routing alone)",
        work=24.0 * n * n * L,
        unit="flop",
        dtype="float64",
        check=lambda out, base: float(out.error),
        tol=1e-12,
        notes="the assignment (O(n^3)) and the routing, then one L-BFGS check",
    )


def cases(quick: bool) -> Iterator[Case]:
    yield dft_fit_case(8 if quick else 32)
    yield permutation_fit_case(64 if quick else 1024)


if __name__ == "__main__":
    import sys

    from _harness import fmt_table

    print(fmt_table(*fit_table(quick="--full" not in sys.argv), markdown=True))
