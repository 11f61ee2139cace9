"""The benchmark harness works: quick runs of the suite produce complete, sane results.

Speed goals are *not* checked here (they live in ``benchmarks/``); only that every case runs,
is timed, and agrees with its baseline.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import _harness  # noqa: E402

from structlin._registry import families  # noqa: E402

#: the benchmark modules' family names (``benchmarks/bench_<name>.py``), from the registry
FAMILIES = tuple(fam.bench[len("bench_"):] for fam in families() if fam.bench)


#: the quick run is split in two processes run side by side, so that a cold Numba cache is
#: filled on two cores (compilation is single-threaded): the families built on the butterfly
#: kernels, and the others
GROUPS = (
    tuple(f for f in FAMILIES if f.startswith("butterfly") or f == "kaleidoscope"),
    tuple(f for f in FAMILIES if not (f.startswith("butterfly") or f == "kaleidoscope")),
)


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    runs = []
    for k, group in enumerate(g for g in GROUPS if g):
        out = tmp / f"quick{k}.json"
        proc = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "run.py"), *group, "--quick", "--json", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=BENCH_DIR.parent,
        )
        runs.append((out, proc))
    report, stdout, stderr, rc = None, [], [], 0
    for out, proc in runs:
        # every family at quick sizes, Numba compilation included (cold cache)
        o, e = proc.communicate(timeout=900)
        stdout.append(o)
        stderr.append(e)
        rc = rc or proc.returncode
        assert out.exists(), f"no JSON (rc={proc.returncode}):\n{o}\n{e}"
        part = json.loads(out.read_text())
        part["_md"] = out.with_suffix(".md").read_text()
        if report is None:
            report = part
        else:
            report["cases"] += part["cases"]
            report["_md"] += part["_md"]
    report["_proc"] = subprocess.CompletedProcess([], rc, "".join(stdout), "".join(stderr))
    return report


def test_quick_run_records_every_case_with_times_and_ratio(quick_report):
    proc = quick_report["_proc"]
    errors = [r for r in quick_report["cases"] if "error" in r]
    assert not errors, "\n".join(r["error"] for r in errors)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = {(r["family"], r["name"], r["size"]) for r in quick_report["cases"]}
    for fam in FAMILIES:
        module = importlib.import_module(f"bench_{fam}")
        expected = {(fam, c.name, c.size) for c in module.cases(True)}
        assert expected, f"bench_{fam}.cases(True) is empty"
        assert expected <= got, f"missing cases: {sorted(expected - got)}"
    for r in quick_report["cases"]:
        for side in ("structlin", "baseline"):
            assert r[side]["median_s"] > 0, (r["name"], side)
            assert r[side]["samples"] >= 1
            assert r[side]["rate"] > 0
            assert r[side]["tracemalloc_peak_mib"] >= 0
        assert r["ratio"] > 0 and np.isfinite(r["ratio"])
        assert r["goal_met"] is None  # goals are not judged at quick sizes


def test_quick_run_outputs_agree_with_baselines(quick_report):
    for r in quick_report["cases"]:
        assert r["rel_error"] is not None, f"{r['name']}: no agreement check"
        bound = 1e-3 if r["dtype"] in ("float32", "complex64") else 1e-9
        assert r["rel_error"] < bound, (r["name"], r["size"], r["rel_error"])


def test_quick_run_describes_machine_and_writes_markdown(quick_report):
    machine = quick_report["machine"]
    assert machine["cpu_count"] >= 1 and machine["numpy"] == np.__version__
    peaks = quick_report["peaks"]
    assert {"sgemm", "dgemm", "copy"} <= set(peaks)
    assert all(p["rate"] > 0 for p in peaks.values())
    md = quick_report["_md"]
    assert "| family |" in md and "## Machine" in md
    for r in quick_report["cases"]:
        assert r["name"] in md


# ---- the harness itself, on stand-in callables (no structlin needed) ------------------------


def test_time_interleaved_alternates_and_keeps_warmup_outputs():
    calls = []

    def fast():
        calls.append("s")
        return np.ones(3)

    def slow():
        calls.append("b")
        time.sleep(2e-3)
        return np.ones(3) * 2

    t_s, t_b, out_s, out_b, _ = _harness.time_interleaved(fast, slow, budget_s=0.05, samples=4)
    assert len(t_s.samples) == len(t_b.samples) == 4
    assert t_b.inner == 1 and t_s.inner > 1  # short calls are batched inside a sample
    assert t_b.median >= 2e-3 > t_s.median > 0
    assert out_s[0] == 1 and out_b[0] == 2
    # after the warm-up and estimate calls, the timed calls alternate structlin / baseline
    timed = "".join(calls[4:])
    assert timed == ("s" * t_s.inner + "b") * 4


def test_time_interleaved_adapts_samples_to_budget():
    t_s, _, *_ = _harness.time_interleaved(
        lambda: time.sleep(1e-3), lambda: time.sleep(1e-3), budget_s=0.05, min_samples=3
    )
    assert 3 <= len(t_s.samples) <= 30


def test_peak_memory_sees_numpy_allocations():
    mib = _harness.peak_memory(lambda: np.ones(4 * 1024 * 1024 // 8))
    assert 3.9 < mib < 8


def test_rel_error_and_formatting():
    a = np.array([1.0, 2.0, 2.0])
    assert _harness.rel_error(a, a) == 0
    assert _harness.rel_error(a * 1.5, a) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shapes differ"):
        _harness.rel_error(a, a[:2])
    assert _harness.fmt_time(2.5e-6) == "2.5 us"
    assert _harness.fmt_rate(3e9, "byte") == "3.0 GB/s"
    table = _harness.fmt_table(["a", "b"], [["x", "1.0"]], markdown=True)
    assert table.splitlines()[0] == "| a | b |"
    tag = _harness.machine_tag(
        {"cpu_model": "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz", "cpu_affinity": 8}
    )
    assert tag == "cpu-intel-xeon-gold-6230-8c"
