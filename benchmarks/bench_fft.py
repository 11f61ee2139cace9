"""FFT engine benchmarks: ``structlin.fft`` against ``scipy.fft``, FFTW (pyFFTW) and ducc0.

Two ways to run it:

``cases(quick)`` (``benchmarks/run.py fft``, ``benchmarks/goals.py fft``)
    structlin against one baseline per case: ``scipy.fft`` with ``workers=-1`` (what users
    call) and, where pyFFTW imports, FFTW through ``pyfftw.builders`` with ``FFTW_MEASURE``
    plans on every core, built once before the timing. The issue's goals ride on these cases:
    at least as fast as FFTW on batched power-of-two complex and real transforms, and
    ``dct``/``dst`` types 2-4 at least as fast as ``scipy.fft``.

``python benchmarks/bench_fft.py`` (standalone, a default process: no thread variables)
    every library on every case, interleaved in one process, written to
    ``benchmarks/results/fft-<machine>.md`` and ``.json``: batched ``fft`` (complex to
    complex, forward), ``rfft`` and ``irfft`` for float32 and float64, power-of-two lengths
    ``2**8 .. 2**16`` and the 5-smooth lengths 1000 and 3072, the batch chosen so that one
    call reads about ``--mib`` MiB (16 by default); and ``dct``/``dst`` types 2-4 at
    ``n = 4096``. The libraries: ``structlin.fft`` (the public functions), the bare engine
    (``structlin._cpu.fft``'s ``c2c``/``r2c``/``c2r``, unnormalized: the cost of the public
    layer is the gap between the two), ``scipy.fft`` (``workers=-1``), pyFFTW
    (``FFTW_MEASURE``, ``threads`` = usable cores) and ``ducc0.fft`` (``nthreads`` = usable
    cores) where they import. pyFFTW and ducc0 are GPL: installed by the ``bench`` extra /
    by hand, never imported by the library.

Timing: after one untimed call of each library (JIT compilation, plans) and one timed
estimate, ``--rounds`` rounds each time every library once (a library's call repeated inside
one sample until it lasts ``MIN_SAMPLE_S``), the libraries' order rotating from round to round,
the garbage collector off. Each round gives a ratio ``t_library / t_structlin`` (above 1:
structlin is faster); the tables give the median of those ratios and their quartiles, and the
median times.

Work: ``5 n log2(n)`` flops per complex transform of length ``n`` (the conventional count of
benchFFT, whatever the algorithm), half of it, ``2.5 n log2(n)``, per real transform
(``rfft``, ``irfft``, ``dct``, ``dst``), compared with the machine's sgemm (float32) or dgemm
(float64) rate measured at the start (``_harness.measure_peaks``).

Options (standalone): ``--quick`` (tiny sizes, 3 rounds: a smoke test), ``--kinds``,
``--dtypes``, ``--lengths``, ``--rounds``, ``--mib``, ``--libs``, ``--out`` (a results path
stem; ``auto`` = ``benchmarks/results/fft-<machine-tag>``, ``none`` = print only).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
from _harness import Case, rel_error

SEED = 20240613
#: a sample lasts at least this long (short calls are repeated inside it)
MIN_SAMPLE_S = 0.02
#: the transforms benchmarked; dct/dst carry their type
KINDS = ("fft", "rfft", "irfft", "dct2", "dct3", "dct4", "dst2", "dst3", "dst4")
POW2 = tuple(1 << k for k in range(8, 17))
SMOOTH = (1000, 3072)
LIBS = ("structlin", "engine", "scipy", "pyfftw", "ducc0")


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# ------------------------------------------------------------------ what one case transforms


@dataclass(frozen=True)
class Spec:
    """One transform: ``kind`` of ``batch`` rows of length ``n`` in precision ``real``."""

    kind: str
    real: str  # "float32" or "float64": the precision (the complex dtype follows)
    n: int
    batch: int

    @property
    def complex(self) -> str:
        return "complex64" if self.real == "float32" else "complex128"

    @property
    def dct_type(self) -> int | None:
        return int(self.kind[3]) if self.kind[:3] in ("dct", "dst") else None

    @property
    def label(self) -> str:
        dt = self.complex if self.kind == "fft" else self.real
        name = f"{self.kind[:3]} type {self.dct_type}" if self.dct_type else self.kind
        return f"{name} {dt}"

    @property
    def size(self) -> str:
        return f"n={self.n} batch={self.batch}"

    @property
    def flops(self) -> float:
        per = 5.0 if self.kind == "fft" else 2.5
        return per * self.n * math.log2(self.n) * self.batch

    def make_input(self) -> np.ndarray:
        rng = np.random.default_rng(SEED + self.n + len(self.kind))
        shape = (self.batch, self.n)
        if self.kind == "fft":
            z = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
            return z.astype(self.complex)
        x = rng.standard_normal(shape).astype(self.real)
        if self.kind == "irfft":  # a Hermitian half spectrum: the rfft of real rows
            return scipy.fft.rfft(x, workers=-1).astype(self.complex)
        return x


def batch_for(n: int, itemsize: int, mib: float) -> int:
    """Rows such that one call reads about ``mib`` MiB (at least one row)."""
    return max(1, int(mib * 2**20) // (n * itemsize))


def reference(spec: Spec, x: np.ndarray, rows: int) -> np.ndarray:
    """The first ``rows`` results in float64/complex128 (scipy.fft)."""
    xw = x[:rows].astype(np.complex128 if x.dtype.kind == "c" else np.float64)
    return _scipy_call(spec, xw)()


# ------------------------------------------------------------------ the libraries


def _scipy_call(spec: Spec, x: np.ndarray) -> Callable[[], Any]:
    k, t = spec.kind, spec.dct_type
    if k == "fft":
        return lambda: scipy.fft.fft(x, workers=-1)
    if k == "rfft":
        return lambda: scipy.fft.rfft(x, workers=-1)
    if k == "irfft":
        return lambda: scipy.fft.irfft(x, n=spec.n, workers=-1)
    f = scipy.fft.dct if k.startswith("dct") else scipy.fft.dst
    return lambda: f(x, type=t, workers=-1)


def _structlin_call(spec: Spec, x: np.ndarray) -> Callable[[], Any]:
    import structlin.fft as slfft

    k, t = spec.kind, spec.dct_type
    if k == "fft":
        return lambda: slfft.fft(x)
    if k == "rfft":
        return lambda: slfft.rfft(x)
    if k == "irfft":
        return lambda: slfft.irfft(x, n=spec.n)
    f = slfft.dct if k.startswith("dct") else slfft.dst
    return lambda: f(x, type=t)


def _engine_call(spec: Spec, x: np.ndarray) -> Callable[[], Any] | None:
    """The bare kernels (unnormalized; no DCT entry point): the public layer's cost is the
    gap to ``structlin``. The inverse is rescaled only in the agreement check."""
    from structlin._cpu import fft as engine

    if spec.kind == "fft":
        return lambda: engine.c2c(x)
    if spec.kind == "rfft":
        return lambda: engine.r2c(x)
    if spec.kind == "irfft":
        return lambda: engine.c2r(x, spec.n)
    return None


def _pyfftw_call(spec: Spec, x: np.ndarray) -> Callable[[], Any] | None:
    """An ``FFTW_MEASURE`` plan on every usable core, planned on a scratch copy (planning
    overwrites its arrays) before any timing; the call runs it on an aligned copy of ``x``."""
    try:
        import pyfftw
        import pyfftw.builders as fb
    except ImportError:
        return None
    opts = {"planner_effort": "FFTW_MEASURE", "threads": usable_cores()}
    k, t = spec.kind, spec.dct_type
    # a private, SIMD-aligned copy: pyFFTW copies a misaligned input at every call, and
    # FFTW's c2r may overwrite its input
    mine = pyfftw.empty_aligned(x.shape, x.dtype)
    mine[...] = x
    scratch = pyfftw.empty_aligned(x.shape, x.dtype)
    scratch[...] = x
    if k == "fft":
        plan = fb.fft(scratch, **opts)
    elif k == "rfft":
        plan = fb.rfft(scratch, **opts)
    elif k == "irfft":
        plan = fb.irfft(scratch, n=spec.n, **opts)
    else:
        plan = (fb.dct if k.startswith("dct") else fb.dst)(scratch, type=t, **opts)
    return lambda: plan(mine)


def _ducc0_call(spec: Spec, x: np.ndarray) -> Callable[[], Any] | None:
    try:
        import ducc0.fft as dfft
    except ImportError:
        return None
    nt = usable_cores()
    k, t = spec.kind, spec.dct_type
    if k == "fft":
        return lambda: dfft.c2c(x, axes=(-1,), forward=True, nthreads=nt)
    if k == "rfft":
        return lambda: dfft.r2c(x, axes=(-1,), forward=True, nthreads=nt)
    if k == "irfft":
        return lambda: dfft.c2r(x, axes=(-1,), lastsize=spec.n, forward=False, inorm=2,
                                nthreads=nt)
    f = dfft.dct if k.startswith("dct") else dfft.dst
    return lambda: f(x, type=t, axes=(-1,), nthreads=nt)


MAKERS = {"structlin": _structlin_call, "engine": _engine_call, "scipy": _scipy_call,
          "pyfftw": _pyfftw_call, "ducc0": _ducc0_call}


def _scale(lib: str, spec: Spec) -> float:
    """Factor that brings ``lib``'s output to scipy.fft's normalization."""
    return 1.0 / spec.n if (lib == "engine" and spec.kind == "irfft") else 1.0


# ------------------------------------------------------------------ run.py's cases


def _tol(real: str) -> float:
    return 1e-3 if real == "float32" else 1e-9


def scipy_case(spec: Spec, goal: float | None = None) -> Case:
    """``structlin.fft`` against ``scipy.fft`` (``workers=-1``) on one spec."""
    x = spec.make_input()
    return Case(
        name=f"{spec.label} vs scipy.fft",
        size=spec.size,
        fn=_structlin_call(spec, x),
        baseline=_scipy_call(spec, x),
        baseline_name="scipy.fft (workers=-1)",
        work=spec.flops,
        unit="flop",
        dtype=spec.complex if spec.kind == "fft" else spec.real,
        goal=goal,
        check=rel_error,
        tol=_tol(spec.real),
        notes="flops: 5 n log2 n per complex transform, 2.5 n log2 n per real one",
    )


def fftw_case(spec: Spec, goal: float | None = 1.0) -> Case | None:
    """``structlin.fft`` against FFTW (pyFFTW, ``FFTW_MEASURE``, every core); ``None``
    without pyFFTW."""
    x = spec.make_input()
    base = _pyfftw_call(spec, x)
    if base is None:
        return None
    return Case(
        name=f"{spec.label} vs FFTW",
        size=spec.size,
        fn=_structlin_call(spec, x),
        baseline=base,
        baseline_name=f"pyFFTW builders, FFTW_MEASURE, threads={usable_cores()}",
        work=spec.flops,
        unit="flop",
        dtype=spec.complex if spec.kind == "fft" else spec.real,
        goal=goal,
        check=rel_error,
        tol=_tol(spec.real),
        notes="plan built once before timing; flops: 5 n log2 n complex, 2.5 n log2 n real",
    )


#: the issue's table: (kind, precision, batch, n)
ISSUE_SIZES = (
    ("fft", "float32", 256, 4096),
    ("fft", "float32", 1024, 1024),
    ("fft", "float32", 64, 65536),
    ("rfft", "float32", 2048, 8192),
    ("rfft", "float64", 2048, 8192),
    ("rfft", "float32", 4096, 1024),
)


def cases(quick: bool) -> Iterator[Case]:
    if quick:
        yield scipy_case(Spec("fft", "float32", 256, 8))
        yield scipy_case(Spec("rfft", "float32", 1024, 8))
        yield scipy_case(Spec("irfft", "float64", 512, 4))
        yield scipy_case(Spec("dct2", "float64", 256, 4))
        return
    for kind, real, batch, n in ISSUE_SIZES:
        yield scipy_case(Spec(kind, real, n, batch))
    for kind, real, batch, n in (*ISSUE_SIZES, ("fft", "float64", 256, 4096),
                                 ("fft", "float32", 16384, 256), ("irfft", "float32", 2048, 8192)):
        case = fftw_case(Spec(kind, real, n, batch))
        if case is not None:
            yield case
    for kind in KINDS[3:]:
        for real in ("float32", "float64"):
            yield scipy_case(Spec(kind, real, 4096, 256), goal=1.0)


# ------------------------------------------------------------------ the standalone comparison


def specs(kinds: list[str], reals: list[str], lengths: list[int], mib: float) -> list[Spec]:
    out = []
    for kind in kinds:
        ns = [4096] if kind[:3] in ("dct", "dst") else lengths
        for real in reals:
            item = np.dtype(real).itemsize * (2 if kind in ("fft", "irfft") else 1)
            for n in ns:
                out.append(Spec(kind, real, n, batch_for(n, item, mib)))
    return out


def _timed(fn: Callable[[], Any], inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def _quartiles(v: list[float]) -> tuple[float, float, float]:
    if len(v) < 2:
        return v[0], v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], statistics.median(v), q[2]


def compare(spec: Spec, libs: list[str], rounds: int) -> dict[str, Any]:
    """Time every available library on ``spec``, interleaved; one JSON-ready record."""
    from _harness import OtherLoad

    x = spec.make_input()
    ref_rows = min(spec.batch, 16)
    ref = reference(spec, x, ref_rows)
    calls: dict[str, Callable[[], Any]] = {}
    rec: dict[str, Any] = {"kind": spec.kind, "precision": spec.real, "n": spec.n,
                           "batch": spec.batch, "label": spec.label, "flops": spec.flops,
                           "input_mib": x.nbytes / 2**20, "libs": {}}
    for lib in libs:
        try:
            t0 = time.perf_counter()
            fn = MAKERS[lib](spec, x)
            setup = time.perf_counter() - t0
            if fn is None:
                continue
            t0 = time.perf_counter()
            out = fn()
            first = time.perf_counter() - t0
            err = rel_error(np.asarray(out)[:ref_rows] * _scale(lib, spec), ref)
        except Exception as e:  # a library missing a transform is reported, not fatal
            rec["libs"][lib] = {"error": f"{type(e).__name__}: {e}"}
            continue
        del out
        calls[lib] = fn
        rec["libs"][lib] = {"setup_s": setup, "first_call_s": first, "rel_error": err}
    inner = {}
    for lib, fn in calls.items():
        est = _timed(fn, 1)
        inner[lib] = max(1, math.ceil(MIN_SAMPLE_S / max(est, 1e-9)))
    times: dict[str, list[float]] = {lib: [] for lib in calls}
    order = list(calls)
    gc.collect()
    gc_was = gc.isenabled()
    gc.disable()
    try:
        with OtherLoad() as load:
            for r in range(rounds):
                k = r % len(order)
                for lib in order[k:] + order[:k]:
                    times[lib].append(_timed(calls[lib], inner[lib]))
    finally:
        if gc_was:
            gc.enable()
    rec["other_load"] = load.fraction
    base = times.get("structlin")
    for lib, ts in times.items():
        q1, med, q3 = _quartiles(ts)
        entry = rec["libs"][lib]
        entry.update({"median_s": med, "q1_s": q1, "q3_s": q3, "samples": len(ts),
                      "inner": inner[lib], "gflops": spec.flops / med / 1e9})
        if base is not None:
            ratios = [t / s for t, s in zip(ts, base, strict=True)]
            r1, rm, r3 = _quartiles(ratios)
            entry.update({"ratio_median": rm, "ratio_q1": r1, "ratio_q3": r3})
    return rec


def _fmt_lib(entry: dict[str, Any] | None, peak: float, is_base: bool) -> str:
    if entry is None:
        return "-"
    if "error" in entry:
        return "error"
    ms = entry["median_s"] * 1e3
    text = f"{ms:.3g} ms, {entry['gflops']:.1f} GF/s ({100 * entry['gflops'] * 1e9 / peak:.0f}%)"
    if not is_base and "ratio_median" in entry:
        text += (f"; {entry['ratio_median']:.2f}x "
                 f"[{entry['ratio_q1']:.2f}, {entry['ratio_q3']:.2f}]")
    return text


def write_report(stem: Path | None, report: dict[str, Any]) -> str:
    """The markdown summary (returned; written with the JSON when ``stem`` is given)."""
    from _harness import fmt_table, peak_for
    from run import machine_lines

    libs = report["libs"]
    head = ["transform", "size", *libs, "max rel.err", "others"]
    rows = []
    for rec in report["cases"]:
        _, peak = peak_for("flop", rec["precision"], report["peaks"])
        errs = [e["rel_error"] for e in rec["libs"].values() if "rel_error" in e]
        load = rec.get("other_load")
        rows.append([rec["label"], f"n={rec['n']} batch={rec['batch']}",
                     *(_fmt_lib(rec["libs"].get(lib), peak, lib == "structlin") for lib in libs),
                     f"{max(errs):.1e}" if errs else "-",
                     "-" if load is None else f"{100 * load:.0f}%"])
    md = [
        f"# FFT engine benchmark ({report['machine_tag']})",
        "",
        f"`python benchmarks/bench_fft.py` on {report['date']} (commit {report['commit']}), "
        "a default process (no thread variables). Every library interleaved in one process, "
        f"{report['rounds']} rounds per case; each cell: median time, GFLOP/s "
        "(5 n log2 n per complex transform, 2.5 n log2 n per real one) and its fraction of the "
        "machine's sgemm/dgemm peak, then the median over rounds of `t_library / t_structlin` "
        "(above 1: structlin is faster) with its quartiles. `engine`: structlin's bare kernels "
        "(`structlin._cpu.fft`, unnormalized, no DCT). `others`: share of the machine's CPU "
        "used by other processes during the case. Absolute times on a shared machine vary by up "
        "to 2x between runs; only the ratios within one run are meaningful.",
        "",
        fmt_table(head, rows, markdown=True),
        "",
        "## Machine",
        "",
        *[f"- {line}" for line in machine_lines(report["machine"], report["peaks"])],
        f"- libraries: {', '.join(f'{k} {v}' for k, v in report['versions'].items())}",
        "",
    ]
    text = "\n".join(md)
    if stem is not None:
        stem.parent.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
        stem.with_suffix(".md").write_text(text)
    return text


def _versions() -> dict[str, str]:
    out = {}
    for name in ("scipy", "pyfftw", "ducc0", "numba"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = "not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 3 rounds")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--lengths", default=None, help="comma-separated (default: 2^8..2^16, "
                        "1000, 3072)")
    parser.add_argument("--rounds", type=int, default=None, help="default 15 (quick: 3)")
    parser.add_argument("--mib", type=float, default=None, help="MiB read per call (16)")
    parser.add_argument("--libs", default=",".join(LIBS))
    parser.add_argument("--out", default="auto")
    args = parser.parse_args(argv)

    # before numba.get_num_threads() (describe_machine) starts the pool spinning
    from structlin._cpu._blas_pool import start_numba_pool

    start_numba_pool()
    from _harness import OtherLoad, describe_machine, machine_tag, measure_peaks
    from run import _git_commit

    lengths = ([int(v) for v in args.lengths.split(",")] if args.lengths
               else ([256, 1000, 4096] if args.quick else [*POW2, *SMOOTH]))
    rounds = args.rounds or (3 if args.quick else 15)
    mib = args.mib or (0.25 if args.quick else 16.0)
    libs = args.libs.split(",")
    machine = describe_machine()
    with OtherLoad() as load:
        peaks = measure_peaks(quick=args.quick)
    machine["other_load_during_peaks"] = [load.fraction]
    todo = specs(args.kinds.split(","), args.dtypes.split(","), lengths, mib)
    if args.quick:
        todo = [s for s in todo if s.kind[:3] not in ("dct", "dst") or s.dct_type == 2]
    results = []
    for spec in todo:
        print(f"{spec.label} ({spec.size}) ...", end=" ", flush=True)
        t0 = time.perf_counter()
        rec = compare(spec, libs, rounds)
        results.append(rec)
        summary = ", ".join(f"{lib} {e['ratio_median']:.2f}x" for lib, e in rec["libs"].items()
                            if lib != "structlin" and "ratio_median" in e)
        print(f"{time.perf_counter() - t0:.1f} s: {summary or 'no ratio'}", flush=True)
    report = {"machine": machine, "machine_tag": machine_tag(machine), "peaks": peaks,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "commit": _git_commit(), "rounds": rounds, "libs": libs,
              "versions": _versions(), "cases": results}
    stem = None
    if args.out == "auto":
        stem = Path(__file__).resolve().parent / "results" / f"fft-{report['machine_tag']}"
    elif args.out != "none":
        stem = Path(args.out)
    print(write_report(stem, report))
    if stem is not None:
        print(f"wrote {stem.with_suffix('.md')} and .json")
    return 0


if __name__ == "__main__":
    _here = Path(__file__).resolve().parent
    for _p in (str(_here), str(_here.parent)):
        if _p not in sys.path:
            sys.path.insert(0, _p)
    raise SystemExit(main())
