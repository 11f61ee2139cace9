"""Re-time only the cases that carry a speed goal, with more samples than the full run.

A full run gives each case a time budget, so a case whose baseline takes 0.3 s gets five
samples and one slow mode moves its median. This script takes every case with a goal from the
families named (default: all CPU families), times it with ``--samples`` interleaved samples and
prints the median and quartile ratios, to check a goal against the run-to-run spread::

    python benchmarks/goals.py monarch conv --samples 21
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
sys.path.insert(0, str(Path(__file__).resolve().parent))

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import OtherLoad, time_interleaved

from structlin._registry import families

#: every family's benchmark module (``bench_<name>.py``), from the family registry
FAMILIES = tuple(fam.bench[len("bench_"):] for fam in families() if fam.bench)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("families", nargs="*", default=FAMILIES)
    p.add_argument("--samples", type=int, default=21)
    args = p.parse_args()
    for fam in args.families:
        module = importlib.import_module(f"bench_{fam}")
        for case in module.cases(False):
            if case.goal is None:
                continue
            with OtherLoad() as load:
                ts, tb, *_ = time_interleaved(case.fn, case.baseline, budget_s=0.0,
                                              samples=args.samples)
            s = sorted(ts.samples)
            b = sorted(tb.samples)
            q = len(s) // 4
            ratio = tb.median / ts.median
            print(f"{fam:18s} {case.name:45s} {case.size:32s} median {ratio:6.2f}x "
                  f"(quartiles of structlin: {b[len(b) // 2] / s[-q - 1]:.2f}x .. "
                  f"{b[len(b) // 2] / s[q]:.2f}x) goal {case.goal:.3g}x "
                  f"{'met' if ratio >= case.goal else 'NOT MET'}; other load "
                  f"{100 * (load.fraction or 0):.0f} %", flush=True)


if __name__ == "__main__":
    main()
