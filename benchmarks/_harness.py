"""Benchmark harness: the ``Case`` record, interleaved timing, peak memory, machine peaks.

A family module ``benchmarks/bench_<family>.py`` exposes ``cases(quick: bool)`` returning an
iterable of :class:`Case`. A generator is preferred: the runner then builds, runs and drops one
case at a time, so large inputs of different cases never live together.

Timing protocol (:func:`time_interleaved`)
    1. One call of each callable (Numba JIT compilation, BLAS/FFT plan set-up: not timed); the
       outputs are kept for the agreement check.
    2. One more timed call of each, giving a per-call estimate.
    3. ``samples`` interleaved rounds ``structlin, baseline, structlin, baseline, ...`` in the
       same process, with the garbage collector off. Calls faster than ``min_sample_s`` are
       repeated ``inner`` times inside one sample and the sample is divided by ``inner``.
       ``samples`` is chosen so that the rounds take about ``budget_s`` (at least
       ``min_samples``), unless given explicitly.
    4. The figure is the median of each; the speed-up is ``median(baseline) / median(structlin)``.
    Interleaving makes both sides see the same turbo/thermal state and the same noise.

Memory (:func:`peak_memory`)
    ``tracemalloc`` peak during one call: NumPy registers its data buffers with tracemalloc, so
    this counts every NumPy array allocated (including the result), but not memory allocated
    inside Numba-compiled code (Numba's runtime uses ``malloc`` directly). A second figure, the
    growth of the resident set during one call (Linux ``VmHWM`` after resetting it through
    ``/proc/self/clear_refs``), sees those too; it is a lower bound, since ``malloc`` may reuse
    pages that are already resident.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import re
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

MiB = 1024.0**2

Unit = Literal["flop", "byte"]


@dataclass
class Case:
    """One benchmark: a structlin callable against a baseline on the same prepared inputs.

    Attributes
    ----------
    name : str
        Short name, unique within its family (e.g. ``"butterfly_multiply f32"``).
    size : str
        The problem size in words (e.g. ``"n=1024 batch=4096"``).
    fn : callable
        Zero-argument closure calling structlin on prepared inputs; returns the result.
    baseline : callable
        Zero-argument closure computing the same thing another way; returns its result.
    baseline_name : str
        What ``baseline`` is, e.g. ``"numpy dense x @ B.T (BLAS)"``.
    work : float
        Work of one ``fn`` call in ``unit`` (flops of structlin's algorithm, or bytes moved).
    unit : {"flop", "byte"}
        The figure of merit: FLOP/s or bytes/s.
    dtype : str
        The working dtype; picks the machine peak (sgemm for float32/complex64, dgemm for
        float64/complex128) a FLOP/s figure is compared with.
    goal : float, optional
        Minimum speed-up ``baseline / structlin`` asked for (e.g. by the issue); reported as
        met / not met. Speed goals live here only, never in unit tests.
    check : callable, optional
        ``check(out_fn, out_baseline) -> float``: the relative error of ``fn``'s output against a
        reference (usually the baseline's output, see :func:`rel_error`).
    tol : float, optional
        The relative error the check is expected to stay under (reported; used by the tests).
    baseline_work : float, optional
        Work of one ``baseline`` call (e.g. the dense product's ``2 n^2`` flops per row). When
        omitted the baseline's rate is the *effective* rate on ``work``.
    notes : str
        Anything a reader of the results should know about this case.
    """

    name: str
    size: str
    fn: Callable[[], Any]
    baseline: Callable[[], Any]
    baseline_name: str
    work: float
    unit: Unit
    dtype: str
    goal: float | None = None
    check: Callable[[Any, Any], float] | None = None
    tol: float | None = None
    baseline_work: float | None = None
    notes: str = ""


@dataclass
class Timing:
    """Per-call times (seconds) of one callable from interleaved sampling."""

    samples: list[float] = field(default_factory=list)
    inner: int = 1
    first_call_s: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def minimum(self) -> float:
        return min(self.samples)

    def quartiles(self) -> tuple[float, float]:
        if len(self.samples) < 2:
            return self.samples[0], self.samples[0]
        q = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q[0], q[2]

    def as_dict(self) -> dict[str, Any]:
        q1, q3 = self.quartiles()
        return {
            "median_s": self.median,
            "min_s": self.minimum,
            "q1_s": q1,
            "q3_s": q3,
            "samples": len(self.samples),
            "inner": self.inner,
            "first_call_s": self.first_call_s,
        }


def rel_error(a: Any, b: Any) -> float:
    """Relative Frobenius error ``||a - b|| / ||b||``, computed in float64/complex128."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"check: shapes differ, {a.shape} vs {b.shape}")
    wide = np.complex128 if (a.dtype.kind == "c" or b.dtype.kind == "c") else np.float64
    a = a.astype(wide, copy=False)
    b = b.astype(wide, copy=False)
    denom = float(np.linalg.norm(b.ravel()))
    num = float(np.linalg.norm((a - b).ravel()))
    return num / denom if denom > 0 else num


def gpu_available() -> bool:
    """Whether CuPy imports and a CUDA device runs a kernel (GPU benchmark modules yield no
    case otherwise)."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0 and float(cupy.ones(2).sum()) == 2.0
    except Exception:
        return False


def gpu_rel_error(a: Any, b: Any) -> float:
    """:func:`rel_error` of two CuPy arrays, computed on the device."""
    import cupy

    return float(cupy.linalg.norm((a - b).ravel()) / cupy.linalg.norm(b.ravel()))


def _timed(fn: Callable[[], Any], inner: int = 1) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def time_interleaved(
    fn: Callable[[], Any],
    baseline: Callable[[], Any],
    *,
    budget_s: float,
    min_samples: int = 5,
    max_samples: int = 10_000,
    samples: int | None = None,
    min_sample_s: float = 1e-3,
    on_estimate: Callable[[float, float], None] | None = None,
) -> tuple[Timing, Timing, Any, Any, dict[str, float | None]]:
    """Time ``fn`` and ``baseline`` interleaved; see the module docstring for the protocol.

    Returns the two :class:`Timing`s, the two warm-up outputs and the resident-set growth of
    the estimate calls (``{"fn": MiB, "baseline": MiB}``, ``None`` off Linux).
    """
    t_s, t_b = Timing(), Timing()
    t0 = time.perf_counter()
    out_s = fn()
    t_s.first_call_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out_b = baseline()
    t_b.first_call_s = time.perf_counter() - t0

    rss: dict[str, float | None] = {}
    est = []
    for key, f in (("fn", fn), ("baseline", baseline)):
        before = _rss_reset()
        est.append(_timed(f))
        rss[key] = _rss_growth_mib(before)
    est_s, est_b = est
    if on_estimate is not None:
        on_estimate(est_s, est_b)

    # Repeat very short calls inside a sample so that timer resolution and loop overhead vanish.
    t_s.inner = max(1, math.ceil(min_sample_s / max(est_s, 1e-9)))
    t_b.inner = max(1, math.ceil(min_sample_s / max(est_b, 1e-9)))
    if samples is None:
        per_round = est_s * t_s.inner + est_b * t_b.inner
        samples = int(budget_s / max(per_round, 1e-9))
        samples = max(min_samples, min(max_samples, samples))

    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(samples):
            t_s.samples.append(_timed(fn, t_s.inner))
            t_b.samples.append(_timed(baseline, t_b.inner))
    finally:
        if gc_was_enabled:
            gc.enable()
    return t_s, t_b, out_s, out_b, rss


def peak_memory(fn: Callable[[], Any]) -> float:
    """Peak tracemalloc-traced memory (MiB) during one call of ``fn``, its result included."""
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
        del out
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(0, peak - base) / MiB


def _proc_status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _rss_reset() -> int | None:
    """Reset the resident-set high-water mark; return the current RSS in KiB (None if n/a)."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return _proc_status_kib("VmRSS")


def _rss_growth_mib(before_kib: int | None) -> float | None:
    if before_kib is None:
        return None
    hwm = _proc_status_kib("VmHWM")
    if hwm is None:
        return None
    return max(0, hwm - before_kib) / 1024.0


class OtherLoad:
    """Share of the machine's CPU time used by *other* processes while a block runs.

    Benchmarks on a shared machine are only as good as its quiet: this reads the machine's busy
    time from ``/proc/stat`` and subtracts this process's own CPU time. ``fraction`` is ``None``
    where ``/proc/stat`` is not available.
    """

    def __enter__(self) -> OtherLoad:
        self.fraction: float | None = None
        self._start = (time.perf_counter(), _machine_busy_s(), _own_cpu_s())
        return self

    def __exit__(self, *exc: object) -> None:
        t0, busy0, own0 = self._start
        busy1 = _machine_busy_s()
        if busy0 is None or busy1 is None:
            return
        wall = time.perf_counter() - t0
        ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        others = (busy1 - busy0) - (_own_cpu_s() - own0)
        self.fraction = max(0.0, others) / max(wall * (ncpu or 1), 1e-9)


def _machine_busy_s() -> float | None:
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
    vals = [int(v) for v in fields[1:9]]
    busy = sum(vals) - vals[3] - vals[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


# --------------------------------------------------------------------------------------------
# Machine peaks and description


def _best_of(fn: Callable[[], Any], repeats: int, min_total_s: float) -> float:
    """Best time of at least ``repeats`` calls, continuing until ``min_total_s`` has passed.

    The best, not the median: a peak is what the machine can do, and a VM's noisy moments
    only ever slow a call down.
    """
    fn()
    best, total, count = math.inf, 0.0, 0
    while count < repeats or total < min_total_s:
        t = _timed(fn)
        best, total, count = min(best, t), total + t, count + 1
    return best


def measure_peaks(quick: bool = False) -> dict[str, dict[str, Any]]:
    """The machine's own reference speeds, measured now with NumPy.

    ``sgemm``/``dgemm``: ``np.matmul`` of square float32/float64 matrices, ``2 n^3`` flops,
    best of a few calls. ``copy``: ``np.copyto`` between two large buffers, counting the bytes
    read plus the bytes written (``2 * nbytes``; write-allocate traffic is not counted, so a
    memory-bound kernel counted the same way can reach about 100 %).
    """
    n = 512 if quick else 2048
    reps = 3 if quick else 5
    min_total_s = 0.1 if quick else 1.0
    rng = np.random.default_rng(0)
    peaks: dict[str, dict[str, Any]] = {}
    for label, dt in (("sgemm", np.float32), ("dgemm", np.float64)):
        a = rng.standard_normal((n, n)).astype(dt)
        b = rng.standard_normal((n, n)).astype(dt)
        c = np.empty((n, n), dtype=dt)
        t = _best_of(lambda a=a, b=b, c=c: np.matmul(a, b, out=c), reps, min_total_s)
        peaks[label] = {
            "unit": "flop",
            "rate": 2.0 * n**3 / t,
            "what": f"np.matmul {np.dtype(dt).name} {n}x{n} @ {n}x{n}, best of >= {reps}",
        }
        del a, b, c
    nbytes = (32 if quick else 256) * 1024**2
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    t = _best_of(lambda: np.copyto(dst, src), reps, min_total_s)
    peaks["copy"] = {
        "unit": "byte",
        "rate": 2.0 * nbytes / t,
        "what": f"np.copyto of {nbytes // 1024**2} MiB, read + write bytes, best of >= {reps}",
    }
    return peaks


def peak_for(unit: str, dtype: str, peaks: dict[str, dict[str, Any]]) -> tuple[str, float]:
    """The name and rate of the machine peak a case's rate is compared with."""
    if unit == "byte":
        return "copy", peaks["copy"]["rate"]
    wide = np.dtype(dtype) in (np.dtype(np.float64), np.dtype(np.complex128))
    key = "dgemm" if wide else "sgemm"
    return key, peaks[key]["rate"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return sorted(x for x in flags if x.startswith(("avx", "fma", "sse4")))
    except OSError:
        pass
    return []


def _memory_total_gib() -> float | None:
    try:
        import psutil

        return psutil.virtual_memory().total / 1024.0**3
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024.0**2
    except OSError:
        pass
    return None


def _blas_info() -> list[dict[str, Any]]:
    """The loaded BLAS and OpenMP libraries as threadpoolctl reports them, paths left out."""
    import threadpoolctl

    return [
        {k: v for k, v in lib.items() if k != "filepath"}
        for lib in threadpoolctl.threadpool_info()
    ]


#: environment variables that change threading, recorded with the results
THREAD_ENV = (
    "OMP_WAIT_POLICY",
    "OMP_NUM_THREADS",
    "GOMP_SPINCOUNT",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_THREAD_TIMEOUT",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMBA_THREADING_LAYER",
)


def describe_machine() -> dict[str, Any]:
    """CPU, cores, memory, OS, library versions and BLAS, as a JSON-ready dict."""
    import scipy

    desc: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _memory_total_gib(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    try:
        import numba

        desc["numba"] = numba.__version__
        desc["numba_threads"] = numba.get_num_threads()
        desc["numba_threading_layer"] = numba.config.THREADING_LAYER
    except ImportError:
        desc["numba"] = None
    desc["blas"] = _blas_info()
    desc["env"] = {k: os.environ[k] for k in THREAD_ENV if k in os.environ}
    return desc


def machine_tag(desc: dict[str, Any]) -> str:
    """A short file-name tag such as ``cpu-amd-epyc-2c``."""
    model = desc.get("cpu_model", "cpu")
    model = re.sub(r"\(R\)|\(TM\)|\(tm\)|@.*$|\bCPU\b|\bProcessor\b|\d+-Core", " ", model)
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-") or "unknown"
    ncores = desc.get("cpu_affinity") or desc.get("cpu_count") or 0
    return f"cpu-{slug}-{ncores}c"


# --------------------------------------------------------------------------------------------
# Formatting


def fmt_time(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_rate(rate: float | None, unit: str) -> str:
    if rate is None:
        return "-"
    return f"{rate / 1e9:.1f} {'GFLOP/s' if unit == 'flop' else 'GB/s'}"


def fmt_table(headers: list[str], rows: list[list[str]], markdown: bool = False) -> str:
    """A plain-text (aligned) or markdown table; numbers right-aligned, text left-aligned."""
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(out)
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def numeric(text: str) -> bool:
        return bool(re.match(r"^[-+]?[\d.]", text)) and not text.startswith("n=")

    def line(cells: list[str]) -> str:
        parts = []
        for i, c in enumerate(cells):
            last = i == len(cells) - 1
            if numeric(c):
                parts.append(c.rjust(widths[i]))
            else:
                parts.append(c if last else c.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])
