"""Beneš routing benchmarks: :func:`structlin.kaleidoscope_permutation` and applying its result.

- routing: ``kaleidoscope_permutation(perm)`` for a random permutation of ``n = 2**10 ..
  2**20`` (the slope should be ``n log n``: the looping algorithm is ``O(n)`` per level, plus
  writing the ``4 n log2(n)`` entries of the twiddle). The baseline is ``numpy.argsort(perm)``
  (the inverse permutation, an ``O(n log n)`` sort of the same array): a yardstick for the
  time scale, not the same computation (the routed twiddle is checked by applying it). Work:
  the twiddle's bytes written (``32 n log2(n)`` for float64).
- applying: ``kaleidoscope_multiply(tw, x)`` with the routed twiddle against the gather
  ``x[..., perm]``: exact agreement expected (0/1 entries). Work: the bytes the ``2 log2(n)``
  butterfly passes read and write, ``2 * 2 L * batch * n * itemsize``.

These cases are imported by ``bench_kaleidoscope.py`` (the family's benchmark module).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from _harness import Case, rel_error

import structlin

SEED = 20261202


def routing_case(n: int) -> Case:
    """``kaleidoscope_permutation(perm)`` for a random permutation of ``n``."""
    perm = np.random.default_rng(SEED + n).permutation(n)
    L = n.bit_length() - 1
    return Case(
        name="kaleidoscope_permutation (routing)",
        size=f"n={n}",
        fn=lambda: structlin.kaleidoscope_permutation(perm),
        baseline=lambda: np.argsort(perm),
        baseline_name="numpy.argsort(perm) (a time-scale yardstick, not the same result)",
        work=32.0 * n * L,
        unit="byte",
        dtype="float64",
        # the routed twiddle applied to 0..n-1 must give perm exactly
        check=lambda out, base: float(np.max(np.abs(
            structlin.kaleidoscope_multiply(out, np.arange(n, dtype=np.float64)) - perm))),
        notes="random permutation; work = bytes of the float64 twiddle written",
    )


def apply_case(n: int, batch: int, dtype=np.float32) -> Case:
    """``kaleidoscope_multiply`` of a routed permutation against ``x[..., perm]``."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(SEED + 3 * n)
    perm = rng.permutation(n)
    tw = structlin.kaleidoscope_permutation(perm, dtype=dtype)
    x = rng.standard_normal((batch, n)).astype(dtype)
    L = n.bit_length() - 1
    return Case(
        name=f"kaleidoscope_multiply (routed permutation) {dtype.name}",
        size=f"n={n} batch={batch}",
        fn=lambda: structlin.kaleidoscope_multiply(tw, x),
        baseline=lambda: x[..., perm],
        baseline_name="numpy gather x[..., perm]",
        work=2.0 * 2 * L * batch * n * dtype.itemsize,
        baseline_work=2.0 * batch * n * dtype.itemsize,
        unit="byte",
        dtype=dtype.name,
        check=rel_error,
        tol=0.0,
        notes="a permutation through 2 log2(n) butterfly passes: the gather is the fast way; "
              "the case measures what a learnable K-matrix costs when it is a permutation",
    )


def cases(quick: bool) -> Iterator[Case]:
    if quick:
        for L in (10, 12, 14):
            yield routing_case(1 << L)
        yield apply_case(1024, 256)
        return
    for L in range(10, 21, 2):
        yield routing_case(1 << L)
    yield apply_case(1024, 4096)
    yield apply_case(1 << 16, 64)
