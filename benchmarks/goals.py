"""Re-time only the cases that carry a speed goal, in several fresh processes.

A full run gives each case a time budget, so a case whose baseline takes 0.3 s gets five
samples and one slow mode moves its median; and a process can be slow throughout (which
cores its threads land on, what the other tenants of the machine do), so one process says
little. This script takes every case with a goal from the families named (default: all CPU
families), times it with ``--samples`` interleaved samples in each of ``--processes`` fresh
Python processes started with the default environment (every thread variable removed), and
prints each process's median ratio and the worst of them::

    python benchmarks/goals.py monarch pixelfly --samples 15 --processes 3

``--with-variables`` adds, as a second labelled column, processes started with
``OMP_WAIT_POLICY=passive OPENBLAS_THREAD_TIMEOUT=4`` (every thread pool asleep between
calls), and the ratio of the worst default process to the median with the variables: the
measure of how much a user loses to thread pools spinning on each other.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))

from _harness import THREAD_ENV, OtherLoad, time_interleaved

from structlin._registry import families

#: every family's benchmark module (``bench_<name>.py``), from the family registry
FAMILIES = tuple(fam.bench[len("bench_"):] for fam in families() if fam.bench)
#: the environment of the second column: every thread pool sleeps between calls
QUIET_ENV = {"OMP_WAIT_POLICY": "passive", "OPENBLAS_THREAD_TIMEOUT": "4"}


def _time_family(fam: str, samples: int) -> list[dict]:
    """Time every goal case of ``fam`` in this process; one record per case."""
    module = importlib.import_module(f"bench_{fam}")
    out = []
    for case in module.cases(False):
        if case.goal is None:
            continue
        with OtherLoad() as load:
            ts, tb, *_ = time_interleaved(case.fn, case.baseline, budget_s=0.0, samples=samples)
        s = sorted(ts.samples)
        q = len(s) // 4
        out.append({
            "family": fam, "case": case.name, "size": case.size, "goal": case.goal,
            "ratio": tb.median / ts.median,
            "q1": tb.median / s[-q - 1], "q3": tb.median / s[q],
            "load": load.fraction or 0.0,
        })
    return out


def _run_child(fam: str, samples: int, env_extra: dict[str, str]) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    env.update(env_extra)
    cmd = [sys.executable, str(Path(__file__).resolve()), fam, "--samples", str(samples),
           "--child"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"goals.py child for {fam} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("families", nargs="*", default=FAMILIES)
    p.add_argument("--samples", type=int, default=15)
    p.add_argument("--processes", type=int, default=3,
                   help="fresh default-environment processes per family (default 3)")
    p.add_argument("--with-variables", action="store_true",
                   help="also time in processes with the thread variables set (a second column)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps([r for fam in args.families for r in _time_family(fam, args.samples)]))
        return
    if args.processes < 1:
        p.error("--processes must be at least 1")
    for fam in args.families:
        runs = [_run_child(fam, args.samples, {}) for _ in range(args.processes)]
        quiet = ([_run_child(fam, args.samples, QUIET_ENV) for _ in range(2)]
                 if args.with_variables else [])
        for i, first in enumerate(runs[0]):
            ratios = [r[i]["ratio"] for r in runs]
            worst = min(ratios)
            line = (f"{fam:12s} {first['case']:42s} {first['size']:34s} default processes: "
                    + " ".join(f"{v:.2f}x" for v in ratios)
                    + f" worst {worst:.2f}x goal {first['goal']:.3g}x "
                    + ("met" if worst >= first["goal"] else "NOT MET"))
            if quiet:
                qr = sorted(r[i]["ratio"] for r in quiet)
                qmed = qr[len(qr) // 2] if len(qr) % 2 else sum(qr) / len(qr)
                line += (" | with variables: " + " ".join(f"{v:.2f}x" for v in qr)
                         + f" -> worst default / variables {100 * worst / qmed:.0f} %")
            load = max(r[i]["load"] for r in runs)
            print(line + f"; other load <= {100 * load:.0f} %", flush=True)


if __name__ == "__main__":
    main()
