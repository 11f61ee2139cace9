"""Verify the whole GPU side in one step: every ``gpu`` test and the GPU benchmark cases.

Usage (from the repository root, on a machine with a CUDA GPU and CuPy)::

    python -m benchmarks.gpu_check --out DIR            # or: python benchmarks/gpu_check.py
    python -m benchmarks.gpu_check --out DIR --sizes full --budget 900
    python -m benchmarks.gpu_check --out DIR --allow-no-gpu --dry-run   # the command itself

In order, within one time budget (``--budget``, default 480 s):

1. **device**: the CUDA device as CuPy sees it (``cupy.cuda.runtime.getDeviceProperties``:
   name, compute capability, memory, SM count) and the versions of Python, NumPy, SciPy, Numba,
   CuPy, the CUDA runtime, driver and NVRTC. Without a usable GPU the command stops with exit
   status 2 and ``no usable CUDA GPU`` unless ``--allow-no-gpu`` is given;
2. **collection**: ``pytest -m gpu --collect-only`` lists every ``gpu``-marked test;
3. **benchmarks**: every case of the GPU benchmark modules (``benchmarks/bench_*_gpu.py``) at
   quick sizes (``--sizes full``: the published ones), timed as ``benchmarks/run.py`` times
   them (:func:`run.run_case`), in a child process, one case after another while the
   benchmarks' share of the time left (a quarter, ``--bench-share``) lasts;
4. **tests**: ``pytest -m gpu`` with a JUnit XML report and its log, in the time left; when it
   is spent pytest is interrupted (SIGINT, so that it still writes its report).

What the budget cut off is reported as skipped. ``DIR`` receives ``summary.json`` and
``summary.md`` (rewritten after every step, so an interrupted run leaves what it had),
``gpu-tests.xml`` and ``gpu-tests.log`` (pytest), ``gpu-collect.log`` and ``gpu-bench.jsonl``
(one record per benchmark case) and ``gpu-bench.log``. ``--dry-run`` stops after listing the
tests and the benchmark cases.

Exit status: 0 when everything ran and passed; 1 when a test failed or errored, or a case
raised or disagreed with its baseline beyond its tolerance; 2 without a usable GPU (unless
``--allow-no-gpu``); 3 when nothing failed but the budget cut something off.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import run as bench_run  # puts benchmarks/ on sys.path too

DEFAULT_BUDGET_S = 480.0
#: what an interrupted pytest or benchmark child is given to write its report
GRACE_S = 30.0
NO_GPU = "no usable CUDA GPU"


# ------------------------------------------------------------------------------- the device


def probe_device() -> dict[str, Any]:
    """The first CUDA device as CuPy sees it, and whether a kernel runs on it."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a CUDA library that fails to load
        return {"usable": False, "reason": f"CuPy is not importable ({type(exc).__name__}: "
                                           f"{exc})"}
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:
        return {"usable": False, "reason": f"the CUDA runtime finds no device "
                                           f"({type(exc).__name__}: {exc})"}
    if count < 1:
        return {"usable": False, "count": 0, "reason": "the CUDA runtime finds no device"}
    info: dict[str, Any] = {"count": count}
    try:
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        info.update(
            name=name.decode() if isinstance(name, bytes) else str(name),
            compute_capability=f"{props['major']}.{props['minor']}",
            total_memory_gib=round(props["totalGlobalMem"] / 2**30, 2),
            multiprocessors=int(props["multiProcessorCount"]),
        )
        a = cupy.arange(4, dtype=cupy.float32)
        if float((a * 2).sum().get()) != 12.0:
            return {**info, "usable": False, "reason": "a test kernel gave a wrong result"}
    except Exception as exc:
        return {**info, "usable": False, "reason": f"a test kernel did not run "
                                                   f"({type(exc).__name__}: {exc})"}
    return {**info, "usable": True, "reason": None}


def versions() -> dict[str, Any]:
    """The versions that a GPU result depends on (None where a package is missing)."""
    out: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("numpy", "scipy", "numba", "cupy", "structlin"):
        try:
            out[name] = getattr(__import__(name), "__version__", None)
        except Exception:
            out[name] = None
    try:
        import cupy

        rt = cupy.cuda.runtime
        for key, fn in (("cuda_runtime", rt.runtimeGetVersion), ("cuda_driver",
                                                                 rt.driverGetVersion)):
            v = int(fn())
            out[key] = f"{v // 1000}.{v % 1000 // 10}"
    except Exception:
        pass
    try:
        from cupy.cuda import nvrtc

        out["nvrtc"] = ".".join(map(str, nvrtc.getVersion()))
    except Exception:
        pass
    return out


# -------------------------------------------------------------------------------- the parts


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for ``proc`` up to ``timeout`` seconds; past it interrupt (SIGINT), give it
    :data:`GRACE_S` to write its report, then kill. Returns whether it was cut."""
    try:
        proc.wait(timeout=max(timeout, 1.0))
        return False
    except subprocess.TimeoutExpired:
        pass
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return True


def _pytest(args: list[str], log: Path, timeout: float) -> tuple[int, bool, float]:
    """Run pytest from the repository root with ``args``; returns (status, cut, seconds)."""
    env = {**os.environ, "STRUCTLIN_HYPOTHESIS_PROFILE": os.environ.get(
        "STRUCTLIN_HYPOTHESIS_PROFILE", "ci")}
    t0 = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                                 *args], cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=env)
        cut = _wait(proc, timeout)
    return proc.returncode, cut, time.monotonic() - t0


def collect_gpu_tests(out: Path, timeout: float) -> dict[str, Any]:
    """Node ids of every ``gpu``-marked test (``pytest -m gpu --collect-only -q``)."""
    log = out / "gpu-collect.log"
    status, cut, elapsed = _pytest(["-m", "gpu", "--collect-only", "-q", "tests"], log, timeout)
    ids = [line.strip() for line in log.read_text().splitlines() if "::" in line]
    # 5: every test deselected, i.e. none is marked gpu
    ok = not cut and status in (0, 5)
    return {"status": "listed" if ok else "failed", "returncode": status,
            "elapsed_s": round(elapsed, 1), "ids": ids, "collected": len(ids),
            "log": log.name}


def _junit(path: Path) -> dict[str, Any]:
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures: list[dict[str, str]] = []
    skip_reasons: dict[str, int] = {}
    if not path.exists():
        return {**counts, "reported": 0, "failures": failures, "skip_reasons": skip_reasons}
    for case in ET.parse(path).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        kinds = {child.tag: child for child in case}
        if "failure" in kinds or "error" in kinds:
            tag = "failure" if "failure" in kinds else "error"
            counts["failed" if tag == "failure" else "errors"] += 1
            message = (kinds[tag].get("message") or "").strip().splitlines()
            failures.append({"id": test_id, "kind": tag,
                             "message": message[0][:300] if message else ""})
        elif "skipped" in kinds:
            counts["skipped"] += 1
            reason = (kinds["skipped"].get("message") or "").strip()[:200]
            skip_reasons[reason] = skip_reasons.get(reason, 0) + 1
        else:
            counts["passed"] += 1
    return {**counts, "reported": sum(counts.values()), "failures": failures,
            "skip_reasons": skip_reasons}


def run_gpu_tests(out: Path, timeout: float, collected: int) -> dict[str, Any]:
    """``pytest -m gpu`` with a JUnit report, interrupted when ``timeout`` is spent."""
    xml, log = out / "gpu-tests.xml", out / "gpu-tests.log"
    status, cut, elapsed = _pytest(["-m", "gpu", "-q", "-rfE", f"--junitxml={xml}", "tests"],
                                   log, timeout)
    res = _junit(xml)
    not_run = max(collected - res["reported"], 0)
    if res["failed"] or res["errors"] or (status not in (0, 5) and not cut):
        state = "failed"
    elif cut or not_run:
        state = "cut by the budget"
    else:
        state = "passed"
    return {"status": state, "returncode": status, "elapsed_s": round(elapsed, 1),
            "collected": collected, **res, "not_run": not_run, "junit": xml.name,
            "log": log.name}


def gpu_bench_modules() -> list[str]:
    """The GPU benchmark families: ``benchmarks/bench_<family>_gpu.py``."""
    return [f for f in bench_run.discover_families() if f.endswith("_gpu")]


def list_bench_cases(quick: bool) -> list[dict[str, str]]:
    """Every GPU benchmark case by module, name and size, without touching the device (each
    module's ``labels(quick)``)."""
    listed = []
    for fam in gpu_bench_modules():
        module = bench_run.load_family(fam)
        labels = getattr(module, "labels", None)
        if labels is None:
            raise RuntimeError(f"benchmarks/bench_{fam}.py has no labels(quick): a GPU "
                               "benchmark module lists its cases without a device")
        listed += [{"family": fam, "name": n, "size": s} for n, s in labels(quick)]
    return listed


def run_bench(out: Path, quick: bool, timeout: float,
              listed: list[dict[str, str]]) -> dict[str, Any]:
    """The GPU benchmark cases, in a child process (``--bench-worker``) stopped at
    ``timeout``; cases it did not reach are reported as skipped."""
    records_path, log = out / "gpu-bench.jsonl", out / "gpu-bench.log"
    records_path.unlink(missing_ok=True)
    deadline = time.time() + timeout
    t0 = time.monotonic()
    with log.open("w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.gpu_check", "--bench-worker", "--out", str(out),
             "--sizes", "quick" if quick else "full", "--deadline", repr(deadline)],
            cwd=REPO_ROOT, stdout=f, stderr=subprocess.STDOUT)
        cut = _wait(proc, timeout + GRACE_S)
    records = ([json.loads(line) for line in records_path.read_text().splitlines() if line]
               if records_path.exists() else [])
    done = {(r["family"], r["name"], r["size"]) for r in records if "skipped" not in r}
    skipped = [r for r in records if "skipped" in r]
    seen = done | {(r["family"], r["name"], r["size"]) for r in skipped}
    reason = "cut by the budget" if cut else "not run (see gpu-bench.log)"
    skipped += [{**c, "skipped": reason} for c in listed
                if (c["family"], c["name"], c["size"]) not in seen]
    cases = [r for r in records if "skipped" not in r]
    bad = [r for r in cases if "error" in r or r.get("check_ok") is False]
    if bad or (proc.returncode not in (0, None) and not cut):
        state = "failed"
    elif any(NO_GPU not in r["skipped"] for r in skipped):
        state = "cut by the budget"
    elif skipped:
        state = f"skipped: {NO_GPU}"
    else:
        state = "passed"
    return {"status": state, "returncode": proc.returncode, "elapsed_s":
            round(time.monotonic() - t0, 1), "listed": listed, "cases": cases,
            "skipped": skipped, "records": records_path.name, "log": log.name}


def _now() -> float:
    """Wall-clock seconds since the epoch (the deadline's clock, shared with the parent)."""
    return time.time()


def bench_worker(out: Path, quick: bool, deadline: float) -> int:
    """The child of :func:`run_bench`: one JSON line per case in ``gpu-bench.jsonl``."""
    budget = bench_run.QUICK_BUDGET_S if quick else bench_run.FULL_BUDGET_S
    status = 0
    with (out / "gpu-bench.jsonl").open("a") as f:

        def emit(rec: dict[str, Any]) -> None:
            f.write(json.dumps(rec, default=bench_run._json_default) + "\n")
            f.flush()

        for fam in gpu_bench_modules():
            module = bench_run.load_family(fam)
            if _now() >= deadline:
                for name, size in module.labels(quick):
                    emit({"family": fam, "name": name, "size": size,
                          "skipped": "cut by the budget"})
                continue
            ran = set()
            for case in module.cases(quick):
                if _now() >= deadline:
                    emit({"family": fam, "name": case.name, "size": case.size,
                          "skipped": "cut by the budget"})
                    ran.add((case.name, case.size))
                    continue
                print(f"[{fam}] {case.name} ({case.size}) ...", end=" ", flush=True)
                try:
                    rec = bench_run.run_case(fam, case, quick=quick, budget_s=budget,
                                             repeat=None)
                    print(f"{rec['ratio']:.2f}x", flush=True)
                except Exception:
                    import traceback

                    rec = {"family": fam, "name": case.name, "size": case.size,
                           "error": traceback.format_exc()}
                    print("ERROR\n" + rec["error"], flush=True)
                    status = 1
                emit(rec)
                ran.add((case.name, case.size))
                del case
            for name, size in module.labels(quick):
                if (name, size) not in ran:  # cases() yields nothing without a device
                    emit({"family": fam, "name": name, "size": size,
                          "skipped": f"{NO_GPU} for the benchmark"})
    return status


# ------------------------------------------------------------------------------- the report


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f} ms"


def write_report(out: Path, summary: dict[str, Any]) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2,
                                                 default=bench_run._json_default) + "\n")
    dev, ver = summary["device"], summary["versions"]
    md = [f"# structlin GPU check ({summary['started']})", "",
          f"`{summary['command']}`; commit {summary.get('git_commit') or '?'}; budget "
          f"{summary['budget_s']:g} s, {summary.get('elapsed_s', 0):.0f} s used"
          + ("; dry run (nothing executed on the device)" if summary["dry_run"] else ""), ""]
    if dev.get("usable"):
        md.append(f"Device: **{dev['name']}** (compute capability {dev['compute_capability']}, "
                  f"{dev['total_memory_gib']} GiB, {dev['multiprocessors']} SMs; "
                  f"{dev['count']} device(s) visible)")
    else:
        md.append(f"Device: {NO_GPU} ({dev.get('reason')})")
    md += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in ver.items() if v), ""]
    t = summary.get("tests")
    md += ["## GPU tests", ""]
    if t is None:
        md.append("not run")
    elif "passed" not in t:
        md.append(f"{t['collected']} collected ({t['status']}):")
        per_module: dict[str, int] = {}
        for test_id in t["ids"]:
            module = test_id.split("::", 1)[0]
            per_module[module] = per_module.get(module, 0) + 1
        md += [""] + [f"- `{m}`: {n}" for m, n in per_module.items()]
    else:
        md += ["| status | collected | passed | failed | errors | skipped | not run | time |",
               "|---|---|---|---|---|---|---|---|",
               f"| {t['status']} | {t['collected']} | {t['passed']} | {t['failed']} | "
               f"{t['errors']} | {t['skipped']} | {t['not_run']} | {t['elapsed_s']} s |"]
        for fl in t["failures"]:
            md.append(f"- {fl['kind']}: `{fl['id']}`: {fl['message']}")
        for reason, n in t["skip_reasons"].items():
            md.append(f"- skipped ({n}): {reason}")
    b = summary.get("bench")
    md += ["", "## GPU benchmarks", ""]
    if b is None:
        md.append("not run")
    elif b["status"] == "listed":
        md += [f"{len(b['listed'])} cases listed (not run):", ""]
        md += [f"- {c['family']}: {c['name']} ({c['size']})" for c in b["listed"]]
    else:
        md += [f"{len(b['listed'])} cases listed ({b['status']})", "",
               "| family | case | size | structlin | baseline | speed-up | rel.err | check |",
               "|---|---|---|---|---|---|---|---|"]
        for r in b.get("cases", []):
            if "error" in r:
                md.append(f"| {r['family']} | {r['name']} | {r['size']} | ERROR | | | | "
                          f"{r['error'].strip().splitlines()[-1][:80]} |")
                continue
            err = r.get("rel_error")
            err_text = "-" if err is None else f"{err:.1e}"
            check = {True: "ok", False: "FAIL"}.get(r.get("check_ok"), "-")
            md.append(f"| {r['family']} | {r['name']} | {r['size']} | "
                      f"{_ms(r['structlin']['median_s'])} | {_ms(r['baseline']['median_s'])} | "
                      f"{r['ratio']:.2f}x | {err_text} | {check} |")
        for r in b.get("skipped", []):
            md.append(f"| {r['family']} | {r['name']} | {r['size']} | skipped: "
                      f"{r['skipped']} | | | | |")
    if summary.get("skipped_parts"):
        md += ["", "Skipped: " + "; ".join(summary["skipped_parts"])]
    (out / "summary.md").write_text("\n".join(md) + "\n")


# ------------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="directory for the results")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, metavar="SECONDS",
                   help=f"total time (default {DEFAULT_BUDGET_S:g})")
    p.add_argument("--bench-share", type=float, default=0.25, metavar="FRACTION",
                   help="share of the time left after collection that the benchmarks may use "
                        "(default 0.25)")
    p.add_argument("--sizes", choices=("quick", "full"), default="quick",
                   help="benchmark sizes (default quick: small, seconds per case)")
    p.add_argument("--allow-no-gpu", action="store_true",
                   help=f"go on (and exit 0 if nothing fails) when there is {NO_GPU}")
    p.add_argument("--dry-run", action="store_true",
                   help="probe the device, list the gpu tests and the benchmark cases, stop")
    p.add_argument("--bench-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.budget <= 0 or not 0 < args.bench_share < 1:
        p.error("--budget must be positive and --bench-share between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    quick = args.sizes == "quick"
    if args.bench_worker:
        return bench_worker(out, quick, args.deadline)

    t0 = time.monotonic()
    remaining = lambda: args.budget - (time.monotonic() - t0)  # noqa: E731
    device = probe_device()
    summary: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.gpu_check",
                             *(argv if argv is not None else sys.argv[1:])]),
        "budget_s": args.budget, "dry_run": args.dry_run, "sizes": args.sizes,
        "device": device, "versions": versions(), "git_commit": bench_run._git_commit(),
        "tests": None, "bench": None, "skipped_parts": [],
    }

    def save() -> None:
        summary["elapsed_s"] = round(time.monotonic() - t0, 1)
        write_report(out, summary)

    if not device["usable"]:
        print(f"{NO_GPU}: {device['reason']}", file=sys.stderr, flush=True)
        if not args.allow_no_gpu:
            summary["skipped_parts"].append(f"everything: {NO_GPU}")
            summary["ok"] = False
            save()
            print(f"run it on a machine with a CUDA GPU and CuPy, or pass --allow-no-gpu to "
                  f"check the command itself; wrote {out / 'summary.json'}", file=sys.stderr)
            return 2
    else:
        print(f"device: {device['name']} (compute capability {device['compute_capability']}, "
              f"{device['total_memory_gib']} GiB)", flush=True)
    save()

    collected = collect_gpu_tests(out, remaining())
    summary["tests"] = collected
    print(f"gpu tests: {collected['collected']} collected", flush=True)
    listed = list_bench_cases(quick)
    summary["bench"] = {"status": "listed", "listed": listed, "cases": [], "skipped": []}
    print(f"gpu benchmark cases: {len(listed)} ({args.sizes} sizes)", flush=True)
    save()
    if args.dry_run:
        summary["skipped_parts"].append("running the tests and the benchmarks: --dry-run")
        summary["ok"] = collected["status"] == "listed"
        save()
        print(f"dry run: wrote {out / 'summary.json'} and {out / 'summary.md'}")
        return 0 if summary["ok"] else 1

    if remaining() > 0:
        summary["bench"] = run_bench(out, quick, remaining() * args.bench_share, listed)
    else:
        summary["skipped_parts"].append("benchmarks: no time left")
    print(f"gpu benchmarks: {summary['bench']['status']}", flush=True)
    save()
    if remaining() > 0:
        summary["tests"] = run_gpu_tests(out, remaining(), collected["collected"])
    else:
        summary["skipped_parts"].append("gpu tests: no time left")
        summary["tests"] = {**collected, "status": "cut by the budget"}
    print(f"gpu tests: {summary['tests']['status']}", flush=True)

    states = (summary["tests"]["status"], summary["bench"]["status"])
    # without a GPU (--allow-no-gpu) the tests skip and the benchmark cases are not built
    summary["ok"] = all(s in ("passed", f"skipped: {NO_GPU}") for s in states)
    save()
    print(f"wrote {out / 'summary.json'} and {out / 'summary.md'}")
    if "failed" in states or collected["status"] == "failed":
        return 1
    return 0 if summary["ok"] else 3


if __name__ == "__main__":
    sys.exit(main())
