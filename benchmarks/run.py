"""Run structlin's benchmarks: each structured op against a dense / FFT baseline.

Usage (from the repository root)::

    python benchmarks/run.py [family ...] [--quick] [--json PATH] [--repeat N]

``family`` names a module ``benchmarks/bench_<family>.py`` (default: all of them). See
``benchmarks/README.md`` for the columns and the timing protocol (``benchmarks/_harness.py``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import math
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

# No thread variables are set here: the results are what a user gets in a default process.
# structlin itself parks OpenBLAS's spinning workers before a parallel kernel and starts
# Numba's OpenMP pool with a passive wait policy (structlin/_cpu/_blas_pool.py); the thread
# variables a run was started with are recorded in the machine description.

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
# The repository root first, so that `import structlin` finds this checkout without installing.
for _p in (str(BENCH_DIR), str(REPO_ROOT)):
    if _p in sys.path:
        sys.path.remove(_p)
    sys.path.insert(0, _p)

from _harness import (
    Case,
    OtherLoad,
    describe_machine,
    fmt_rate,
    fmt_table,
    fmt_time,
    machine_tag,
    measure_peaks,
    peak_for,
    peak_memory,
    time_interleaved,
)

QUICK_BUDGET_S = 0.1
FULL_BUDGET_S = 5.0
#: share of the machine's CPU used by other processes above which a measurement is flagged
OTHER_LOAD_WARN = 0.1


def discover_families() -> list[str]:
    """Family names with a ``benchmarks/bench_<family>.py`` module, sorted."""
    return sorted(p.stem[len("bench_") :] for p in BENCH_DIR.glob("bench_*.py"))


def load_family(family: str):
    return importlib.import_module(f"bench_{family}")


def run_case(
    family: str,
    case: Case,
    *,
    quick: bool,
    budget_s: float,
    repeat: int | None,
) -> dict[str, Any]:
    """Time, measure and check one case; return its JSON-ready record.

    The fractions of the machine's peak are added later by :func:`attach_peaks`.
    """
    rec: dict[str, Any] = {
        "family": family,
        "name": case.name,
        "size": case.size,
        "dtype": case.dtype,
        "baseline_name": case.baseline_name,
        "unit": case.unit,
        "work": case.work,
        "baseline_work": case.baseline_work,
        "goal": case.goal,
        "tol": case.tol,
        "notes": case.notes,
    }
    with OtherLoad() as load:
        t_s, t_b, out_s, out_b, rss = time_interleaved(
            case.fn,
            case.baseline,
            budget_s=budget_s,
            min_samples=3 if quick else 5,
            samples=repeat,
        )
    rec["other_load"] = load.fraction
    rel_err = None
    if case.check is not None:
        rel_err = float(case.check(out_s, out_b))
    del out_s, out_b

    for key, timing, work, fn in (
        ("structlin", t_s, case.work, case.fn),
        ("baseline", t_b, case.baseline_work if case.baseline_work else case.work, case.baseline),
    ):
        rate = work / timing.median
        rec[key] = {
            **timing.as_dict(),
            "rate": rate,
            "tracemalloc_peak_mib": peak_memory(fn),
            "rss_growth_mib": rss["fn" if key == "structlin" else "baseline"],
        }
    rec["ratio"] = t_b.median / t_s.median
    rec["goal_met"] = None if (case.goal is None or quick) else bool(rec["ratio"] >= case.goal)
    rec["rel_error"] = rel_err
    rec["check_ok"] = None if (rel_err is None or case.tol is None) else bool(rel_err <= case.tol)
    return rec


def attach_peaks(records: list[dict[str, Any]], peaks: dict[str, dict[str, Any]]) -> None:
    """Add to each record the peak it is compared with and each side's fraction of it."""
    for rec in records:
        if "error" in rec:
            continue
        rec["peak"], peak_rate = peak_for(rec["unit"], rec["dtype"], peaks)
        for side in ("structlin", "baseline"):
            rec[side]["fraction_of_peak"] = rec[side]["rate"] / peak_rate


def best_peaks(
    first: dict[str, dict[str, Any]], second: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per reference, the faster of two measurements (a busy moment only ever slows one)."""
    out = {}
    for key, a in first.items():
        b = second[key]
        out[key] = {**max(a, b, key=lambda p: p["rate"]), "rates_measured": [a["rate"], b["rate"]]}
    return out


def _goal_text(rec: dict[str, Any]) -> str:
    goal = rec.get("goal")
    if goal is None:
        return "-"
    if rec.get("goal_met") is None:
        return f">={goal:g}x (quick: not judged)"
    return f">={goal:g}x {'met' if rec['goal_met'] else 'NOT MET'}"


def _label(rec: dict[str, Any]) -> str:
    return f"{rec['family']} / {rec['name']} ({rec['size']})"


def _load_text(frac: float | None) -> str:
    return "-" if frac is None else f"{100 * frac:.0f}%"


def _err_text(rec: dict[str, Any]) -> str:
    err = rec.get("rel_error")
    if err is None:
        return "-"
    flag = "" if rec.get("check_ok") in (True, None) else " FAIL"
    return f"{err:.1e}{flag}"


HEADERS = [
    "family",
    "case",
    "size",
    "structlin",
    "baseline",
    "speed-up",
    "goal",
    "structlin rate",
    "%peak",
    "baseline rate",
    "%peak",
    "MiB s/b",
    "rel.err",
    "others",
    "baseline is",
]


def table_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in records:
        if "error" in r:
            rows.append(
                [
                    r["family"],
                    r["name"],
                    r.get("size", ""),
                    "ERROR",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    r["error"].splitlines()[-1][:60],
                ]
            )
            continue
        s, b = r["structlin"], r["baseline"]
        rows.append(
            [
                r["family"],
                r["name"],
                r["size"],
                fmt_time(s["median_s"]),
                fmt_time(b["median_s"]),
                f"{r['ratio']:.2f}x",
                _goal_text(r),
                fmt_rate(s["rate"], r["unit"]),
                f"{100 * s['fraction_of_peak']:.1f}%",
                fmt_rate(b["rate"], r["unit"]) + ("" if r["baseline_work"] else " (eff.)"),
                f"{100 * b['fraction_of_peak']:.1f}%",
                f"{s['tracemalloc_peak_mib']:.1f}/{b['tracemalloc_peak_mib']:.1f}",
                _err_text(r),
                _load_text(r.get("other_load")),
                r["baseline_name"],
            ]
        )
    return rows


def machine_lines(machine: dict[str, Any], peaks: dict[str, dict[str, Any]]) -> list[str]:
    blas = machine.get("blas")
    if isinstance(blas, list):
        blas_txt = (
            "; ".join(
                f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture')}, "
                f"{b.get('num_threads')} threads)"
                for b in blas
            )
            or "none loaded"
        )
    else:
        blas_txt = str(blas)
    mem = machine.get("memory_gib")
    lines = [
        f"CPU: {machine['cpu_model']}, {machine['cpu_count']} logical cores "
        f"({machine['cpu_affinity']} usable, Numba threads {machine.get('numba_threads')}), "
        + (f"memory {mem:.1f} GiB" if mem else "memory unknown"),
        f"SIMD: {' '.join(machine.get('cpu_flags') or []) or 'unknown'}",
        f"OS: {machine['os']}; Python {machine['python']}, NumPy {machine['numpy']}, "
        f"SciPy {machine['scipy']}, Numba {machine.get('numba')}",
        f"BLAS: {blas_txt}",
        f"threading: Numba layer {machine.get('numba_threading_layer')}; env "
        + (" ".join(f"{k}={v}" for k, v in machine.get("env", {}).items()) or "-"),
    ]
    for key, p in peaks.items():
        lines.append(f"peak {key}: {fmt_rate(p['rate'], p['unit'])}  ({p['what']})")
    loads = machine.get("other_load_during_peaks")
    if loads:
        lines.append(
            "other processes' CPU share while measuring the peaks (at start, at end): "
            + ", ".join(_load_text(x) for x in loads)
        )
    return lines


def write_markdown(path: Path, report: dict[str, Any]) -> None:
    recs = report["cases"]
    md = [
        f"# structlin benchmarks ({report['machine_tag']})",
        "",
        f"Run {report['started']} with `{report['command']}`"
        f"{' (--quick: small sizes, goals not judged)' if report['quick'] else ''}; "
        f"structlin {report['structlin_version']}, commit {report.get('git_commit') or '?'}.",
        "",
        "Speed-up = median baseline time / median structlin time, the two timed interleaved in "
        "one process after warm-up (see benchmarks/README.md). Rates count each side's own "
        "work; '(eff.)' marks a baseline rate computed on structlin's work count. %peak is "
        "against the machine's own sgemm/dgemm (FLOP/s) or copy (bytes/s) measured below. "
        "MiB s/b: tracemalloc peak during one call, structlin / baseline.",
        "",
        fmt_table(HEADERS, table_rows(recs), markdown=True),
        "",
        "Resident-set growth during one call (MiB, structlin / baseline; also sees memory "
        "allocated inside Numba code):",
        "",
    ]
    for r in recs:
        if "error" not in r:
            rs, rb = r["structlin"]["rss_growth_mib"], r["baseline"]["rss_growth_mib"]
            if rs is not None and rb is not None:
                md.append(f"- {_label(r)}: {rs:.1f} / {rb:.1f}")
    notes = [r for r in recs if r.get("notes")]
    if notes:
        md += ["", "Notes:", ""]
        md += [f"- {_label(r)}: {r['notes']}" for r in notes]
    md += ["", "## Machine", ""]
    md += [f"- {line}" for line in machine_lines(report["machine"], report["peaks"])]
    path.write_text("\n".join(md) + "\n")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _git_commit() -> str | None:
    """The checkout's commit, marked ``+dirty`` when ``structlin/`` has uncommitted changes."""
    commit = _git("rev-parse", "--short", "HEAD")
    if commit and _git("status", "--porcelain", "--", "structlin"):
        commit += "+dirty"
    return commit


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark structlin against dense/FFT baselines (interleaved medians)."
    )
    p.add_argument(
        "families",
        nargs="*",
        help=f"families to run (default: all of {', '.join(discover_families())})",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and very short timing (smoke test, under a minute)",
    )
    p.add_argument(
        "--json",
        metavar="PATH",
        help="write the results as JSON to PATH and a markdown summary to PATH.md; "
        "'auto' means benchmarks/results/<machine-tag>.json",
    )
    p.add_argument(
        "--repeat",
        type=int,
        metavar="N",
        help="interleaved samples per case (default: adaptive to the time budget)",
    )
    p.add_argument(
        "--budget",
        type=float,
        metavar="SECONDS",
        help=f"target timing time per case (default {FULL_BUDGET_S:g}, --quick {QUICK_BUDGET_S:g})",
    )
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    args = p.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        p.error("--repeat must be at least 1")
    available = discover_families()
    unknown = [f for f in args.families if f not in available]
    if unknown:
        p.error(f"unknown family {', '.join(unknown)}; available: {', '.join(available)}")
    args.families = args.families or available
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import structlin

    if args.list:
        for fam in args.families:
            for case in load_family(fam).cases(args.quick):
                print(f"{fam:12s} {case.name:36s} {case.size:28s} vs {case.baseline_name}")
        return 0

    budget = (
        args.budget
        if args.budget is not None
        else (QUICK_BUDGET_S if args.quick else FULL_BUDGET_S)
    )
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    t_start = time.perf_counter()
    machine = describe_machine()
    print("\n".join(machine_lines(machine, {})), flush=True)
    print("measuring machine peaks ...", flush=True)
    with OtherLoad() as load:
        peaks = measure_peaks(args.quick)
    machine["other_load_during_peaks"] = [load.fraction]
    for line in machine_lines(machine, peaks)[5:]:
        print(line, flush=True)
    print(flush=True)

    records: list[dict[str, Any]] = []
    for fam in args.families:
        try:
            cases = load_family(fam).cases(args.quick)
            for case in cases:
                print(f"[{fam}] {case.name} ({case.size}) ...", end=" ", flush=True)
                try:
                    rec = run_case(fam, case, quick=args.quick, budget_s=budget, repeat=args.repeat)
                    print(f"{rec['ratio']:.2f}x  {_goal_text(rec)}", flush=True)
                except Exception:
                    rec = {
                        "family": fam,
                        "name": case.name,
                        "size": case.size,
                        "error": traceback.format_exc(),
                    }
                    print("ERROR\n" + rec["error"], flush=True)
                records.append(rec)
                del case
        except Exception:
            err = traceback.format_exc()
            print(f"[{fam}] could not build its cases:\n{err}", flush=True)
            records.append({"family": fam, "name": "(cases)", "size": "", "error": err})

    try:
        import numba

        machine["numba_threading_layer"] = numba.threading_layer()
    except (ImportError, ValueError):
        pass  # no parallel Numba function ran

    # Measured again at the end, keeping the faster: on a shared machine either may be unlucky.
    print("measuring machine peaks again ...", flush=True)
    with OtherLoad() as load:
        peaks = best_peaks(peaks, measure_peaks(args.quick))
    machine["other_load_during_peaks"].append(load.fraction)
    attach_peaks(records, peaks)

    print()
    print("\n".join(machine_lines(machine, peaks)[5:]))
    print()
    print(fmt_table(HEADERS, table_rows(records)))
    busy = [r for r in records if (r.get("other_load") or 0) > OTHER_LOAD_WARN]
    peak_loads = [x for x in machine["other_load_during_peaks"] if x is not None]
    if busy or (peak_loads and min(peak_loads) > OTHER_LOAD_WARN):
        print(
            f"\nWARNING: other processes used more than {100 * OTHER_LOAD_WARN:.0f}% of the "
            "machine's CPU during some measurements (column 'others'); those figures are "
            "not trustworthy, rerun on a quiet machine."
        )
    not_met = [r for r in records if r.get("goal_met") is False]
    if not_met:
        print(
            "\ngoals not met: "
            + "; ".join(f"{_label(r)} {r['ratio']:.2f}x < {r['goal']:g}x" for r in not_met)
        )

    if args.json:
        report = {
            "started": started,
            "elapsed_s": round(time.perf_counter() - t_start, 1),
            "command": " ".join(
                ["python benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]
            ),
            "quick": args.quick,
            "budget_s": budget,
            "repeat": args.repeat,
            "structlin_version": getattr(structlin, "__version__", None),
            "git_commit": _git_commit(),
            "machine": machine,
            "machine_tag": machine_tag(machine),
            "peaks": peaks,
            "cases": records,
        }
        path = (
            BENCH_DIR / "results" / f"{report['machine_tag']}.json"
            if args.json == "auto"
            else Path(args.json)
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
        md_path = path.with_suffix(".md")
        write_markdown(md_path, report)
        print(f"\nwrote {path} and {md_path}")
    return 1 if any("error" in r or r.get("check_ok") is False for r in records) else 0


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return str(obj)


if __name__ == "__main__":
    sys.exit(main())
