"""``python -m structlin``: a tour of every family at a realistic size, on NumPy/CPU.

For each operation it prints the size, the relative error against the dense reference (or
against a baseline that computes the same numbers), the median time of structlin and of what a
user would run instead, and the speed-up. The rows come from each family's registry entry
(:mod:`structlin._registry`).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np

from structlin._registry import Row, families


def _median_time(f: Callable[[], object], budget: float = 0.4) -> float:
    f()  # warm-up: JIT compilation and caches
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget and len(times) < 50):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def tour() -> list[tuple[str, Callable[[np.random.Generator], list[Row]]]]:
    """``(family, row builder)`` for every family that has tour rows, in registry order."""
    return [(fam.name, fam.tour) for fam in families() if fam.tour is not None]


def _error(row: Row, y: np.ndarray, ref: np.ndarray) -> str:
    if not row.comparable:  # the baseline computes something else (e.g. an FFT)
        return "n/a"
    if y.shape != ref.shape:
        raise ValueError(f"tour row {row.operation!r}: result shape {y.shape} differs from "
                         f"its baseline's {ref.shape}; mark the row comparable=False")
    with np.errstate(invalid="ignore"):
        err = np.max(np.abs(y - ref)) / max(np.max(np.abs(ref)), np.finfo(np.float64).tiny)
    return f"{err:.1e}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m structlin", description=__doc__)
    parser.add_argument("families", nargs="*", help="families to run (default: all)")
    args = parser.parse_args(argv)
    import numba

    import structlin
    from structlin._cpu._blas_pool import start_numba_pool

    start_numba_pool()  # before numba.get_num_threads() starts the pool with a spinning policy

    print(f"structlin {structlin.__version__} tour — NumPy/CPU, {platform.processor() or 'cpu'}, "
          f"{numba.get_num_threads()} threads")
    header = f"{'operation':42} {'size':22} {'err vs dense':>12} {'structlin':>10} " \
             f"{'baseline':>10} {'speed-up':>8}  baseline"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for family, build in tour():
        if args.families and family not in args.families:
            continue
        for row in build(rng):
            y = row.fast()
            ref = row.baseline()
            err = _error(row, np.asarray(y), np.asarray(ref))
            t_fast = _median_time(row.fast)
            t_base = _median_time(row.baseline)
            print(f"{row.operation:42} {row.size:22} {err:>12} {t_fast * 1e3:8.2f}ms "
                  f"{t_base * 1e3:8.2f}ms {t_base / t_fast:7.1f}x  {row.baseline_name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
