"""``python -m benchmarks.gpu_check`` on a machine without a GPU: it refuses with a clear message,
and with ``--allow-no-gpu --dry-run`` it collects the ``gpu`` tests, lists the GPU benchmark
cases and writes its summary. (The real run needs a GPU: see ``benchmarks/README.md``.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: no device for CuPy even where one exists, so that these tests see the machine without a GPU
NO_DEVICE = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


def _gpu_check(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--out", str(out), *args],
        cwd=ROOT, env=NO_DEVICE, capture_output=True, text=True, timeout=600, check=False)


def test_without_a_gpu_it_refuses_with_a_clear_message(tmp_path):
    proc = _gpu_check(tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no usable CUDA GPU" in proc.stderr and "--allow-no-gpu" in proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["device"]["usable"] is False and summary["device"]["reason"]
    assert summary["ok"] is False and summary["tests"] is None
    assert "no usable CUDA GPU" in (tmp_path / "summary.md").read_text()


def test_dry_run_collects_the_gpu_tests_and_lists_the_gpu_benchmarks(tmp_path):
    proc = _gpu_check(tmp_path, "--allow-no-gpu", "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dry_run"] is True and summary["ok"] is True
    assert summary["versions"]["numpy"] == np.__version__
    assert summary["device"]["usable"] is False

    tests = summary["tests"]
    assert tests["status"] == "listed" and tests["collected"] == len(tests["ids"]) > 0
    marker = re.compile(r"^\s*(pytestmark = pytest\.mark\.gpu|@pytest\.mark\.gpu)", re.M)
    marked = {f"tests/{p.name}" for p in (ROOT / "tests").glob("test_*.py")
              if marker.search(p.read_text())}
    assert marked, "no test module carries the gpu marker"
    assert {i.split("::", 1)[0] for i in tests["ids"]} == marked

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_conv_gpu
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    listed = {(c["family"], c["name"], c["size"]) for c in summary["bench"]["listed"]}
    assert {("conv_gpu", n, s) for n, s in bench_conv_gpu.labels(True)} <= listed
    assert {f for f, _, _ in listed} == {p.stem[len("bench_"):] for p in
                                          (ROOT / "benchmarks").glob("bench_*_gpu.py")}
    md = (tmp_path / "summary.md").read_text()
    assert "dry run" in md and "gated long conv fp16" in md
    assert f"{tests['collected']} collected" in md


def test_a_part_past_its_time_is_interrupted_so_that_it_writes_its_report(tmp_path):
    """The budget: a child still running at its deadline gets SIGINT (pytest then writes its
    JUnit report), and is killed if it does not stop."""
    from benchmarks import gpu_check

    report = tmp_path / "report"
    child = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        f"    open({str(report)!r}, 'w').write('partial')\n"
        "    sys.exit(2)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    t0 = time.monotonic()
    assert gpu_check._wait(proc, 1.0) is True
    assert time.monotonic() - t0 < gpu_check.GRACE_S
    assert report.read_text() == "partial" and proc.returncode == 2
    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    assert gpu_check._wait(quick, 60.0) is False


@pytest.mark.parametrize("budget", ["0", "-5"])
def test_bad_budget_is_refused(tmp_path, budget):
    proc = _gpu_check(tmp_path, "--budget", budget)
    assert proc.returncode == 2 and "--budget must be positive" in proc.stderr


def test_benchmark_records_and_junit_counts_reach_the_summary(tmp_path, monkeypatch):
    """The steps that need a GPU, on stand-ins: the benchmark child times the cases of a GPU
    benchmark module with run.py's run_case and writes one record per case (a case past the
    deadline is skipped), JUnit reports are counted, and the markdown shows both."""
    from benchmarks import gpu_check
    from benchmarks._harness import Case, rel_error

    def case(name):
        a = np.arange(64.0)
        return Case(name=name, size="n=64", fn=lambda: a * 2, baseline=lambda: a + a,
                    baseline_name="a + a", work=64.0, unit="flop", dtype="float64",
                    check=rel_error, tol=1e-12)

    class FakeModule:
        @staticmethod
        def labels(quick):
            return [("double", "n=64"), ("double again", "n=64")]

        @staticmethod
        def cases(quick):
            yield case("double")
            monkeypatch.setattr(gpu_check, "_now", lambda: float("inf"))  # past the deadline
            yield case("double again")

    monkeypatch.setattr(gpu_check, "gpu_bench_modules", lambda: ["fake_gpu"])
    monkeypatch.setattr(gpu_check.bench_run, "load_family", lambda fam: FakeModule)
    assert gpu_check.bench_worker(tmp_path, quick=True, deadline=1e300) == 0
    records = [json.loads(line) for line in (tmp_path / "gpu-bench.jsonl").read_text()
               .splitlines()]
    assert [r["name"] for r in records] == ["double", "double again"]
    assert records[0]["check_ok"] is True and records[0]["ratio"] > 0
    assert records[1]["skipped"] == "cut by the budget"

    (tmp_path / "gpu-tests.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_gpu_x" name="test_a"/>'
        '<testcase classname="tests.test_gpu_x" name="test_b"><failure message="boom"/>'
        '</testcase><testcase classname="tests.test_gpu_x" name="test_c">'
        '<skipped message="no device"/></testcase></testsuite></testsuites>')
    counts = gpu_check._junit(tmp_path / "gpu-tests.xml")
    assert (counts["passed"], counts["failed"], counts["skipped"], counts["reported"]) == (
        1, 1, 1, 3)
    assert counts["failures"] == [{"id": "tests.test_gpu_x::test_b", "kind": "failure",
                                   "message": "boom"}]
    summary = {
        "started": "now", "command": "python -m benchmarks.gpu_check", "budget_s": 480.0,
        "elapsed_s": 1.0, "dry_run": False, "git_commit": None, "skipped_parts": [],
        "device": {"usable": True, "name": "Stand-in GPU", "compute_capability": "9.0",
                   "total_memory_gib": 1.0, "multiprocessors": 1, "count": 1},
        "versions": {"numpy": np.__version__},
        "tests": {"status": "failed", "collected": 4, "not_run": 1, "elapsed_s": 1.0, **counts},
        "bench": {"status": "cut by the budget", "listed": [], "cases": records[:1],
                  "skipped": records[1:]},
    }
    gpu_check.write_report(tmp_path, summary)
    md = (tmp_path / "summary.md").read_text()
    assert "**Stand-in GPU**" in md and "tests.test_gpu_x::test_b" in md
    assert "| fake_gpu | double | n=64 |" in md and "skipped: cut by the budget" in md
    assert json.loads((tmp_path / "summary.json").read_text())["tests"]["failed"] == 1
