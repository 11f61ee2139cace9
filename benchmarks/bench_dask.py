"""Dask benchmarks: structlin's products over chunked batches, in one process and on a cluster.

Timed case (``cases(quick)``, run by ``run.py``, interleaved against one NumPy call):

- ``interop.dask.butterfly_multiply`` of an in-memory float32 array in 8 row chunks, computed
  with Dask's synchronous scheduler, against one ``structlin.butterfly_multiply`` call on the
  whole array: what the graph and the per-chunk calls cost (ratio below 1: Dask's overhead).
  Work: the bytes read and written, ``2 * batch * n * 4``.

The cluster study (:func:`cluster_study`, ``python benchmarks/bench_dask.py``) is not an
interleaved pair and is run on its own: on a ``distributed.LocalCluster`` of 1 and of 2 worker
processes (``threads_per_worker=1``, and Numba/OpenMP/BLAS single-threaded in each worker
through ``NUMBA_NUM_THREADS=1`` etc.), ``x`` of shape ``(10**6, 1024)`` float32 (4.1 GB) is
built chunk by chunk on the workers (``dask.array.random``, uniform; never on the client), and
``butterfly_multiply(tw, x).sum()`` (then ``monarch_multiply``) is computed ``--repeat`` times:
only a scalar comes back. Reported per worker count: the wall time (median, quartiles), the
rows per second and GB/s (the product's ``x`` read and ``y`` written, ``2 * rows * n * 4``
bytes, over the whole wall time: generation and reduction included), the same pipeline
without the product (the generation and the sum alone), and the ratio of 2 to 1 workers. The
reference: the same work on one chunk in this process (generate, multiply, sum) and the
product alone, with Numba on one thread and on all cores. ``--quick``: ``(50_000, 256)``.
Results: ``benchmarks/results/dask-<machine>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from _harness import Case, describe_machine, machine_tag, rel_error

import structlin

SEED = 20261203
RESULTS = Path(__file__).resolve().parent / "results"
#: one core per worker process: Numba's parallel kernels, OpenMP and BLAS single-threaded
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}


def overhead_case(n: int, batch: int, chunks: int = 8) -> Case:
    """The Dask wrapper (synchronous scheduler, in-memory chunks) against one NumPy call."""
    import dask.array as da

    from structlin.interop import dask as sd

    rng = np.random.default_rng(SEED + n)
    tw = structlin.random_butterfly(n, rng=rng).astype(np.float32)
    x = rng.standard_normal((batch, n)).astype(np.float32)
    lazy = sd.butterfly_multiply(tw, da.from_array(x, chunks=(batch // chunks, n)))
    return Case(
        name="dask butterfly_multiply (synchronous, 8 chunks) float32",
        size=f"n={n} batch={batch}",
        fn=lambda: lazy.compute(scheduler="synchronous"),
        baseline=lambda: structlin.butterfly_multiply(tw, x),
        baseline_name="structlin.butterfly_multiply, one call on the whole array",
        work=2.0 * batch * n * 4,
        unit="byte",
        dtype="float32",
        check=rel_error,
        tol=1e-5,
        notes="the cost of the graph, the chunk copies and the per-chunk calls; the cluster "
              "study is python benchmarks/bench_dask.py",
    )


def cases(quick: bool) -> Iterator[Case]:
    try:
        import dask.array  # noqa: F401
    except ImportError:  # the dask extra is not installed: nothing to time
        return
    yield overhead_case(256, 4096) if quick else overhead_case(1024, 32768)


# ---- the cluster study ---------------------------------------------------------------------


def _parameters(op: str, n: int) -> tuple:
    rng = np.random.default_rng(SEED)
    if op == "butterfly":
        return (structlin.random_butterfly(n, rng=rng).astype(np.float32),)
    b = round(n ** 0.5)
    if b * b != n:
        raise ValueError(f"monarch needs a square n, got {n}")
    return tuple((rng.standard_normal((b, b, b)) / np.sqrt(b)).astype(np.float32)
                 for _ in range(2))


def _product(op: str, params: tuple, x: Any) -> Any:
    if isinstance(x, np.ndarray):
        fn = structlin.butterfly_multiply if op == "butterfly" else structlin.monarch_multiply
    else:
        from structlin.interop import dask as sd

        fn = sd.butterfly_multiply if op == "butterfly" else sd.monarch_multiply
    return fn(*params, x)


def _stats(samples: list[float], scale: float = 1.0) -> dict[str, float]:
    vals = sorted(scale / s for s in samples) if scale != 1.0 else sorted(samples)
    q = statistics.quantiles(vals, n=4, method="inclusive") if len(vals) > 1 else [vals[0]] * 3
    return {"median": statistics.median(vals), "q1": q[0], "q3": q[2], "n": len(vals)}


def cluster_throughput(client: Any, *, rows: int, n: int, chunk_rows: int, repeat: int = 3,
                       op: str = "butterfly") -> dict[str, Any]:
    """Time ``op``'s product ``.sum()`` of a ``(rows, n)`` float32 array built on the workers.

    Each repeat times, one after the other, the whole pipeline (generation, product, sum) and
    the pipeline without the product, after an untimed warm-up on one chunk per worker (the
    workers' imports and Numba caches).
    """
    import dask.array as da
    import distributed

    params = _parameters(op, n)
    x = da.random.default_rng(SEED).random((rows, n), chunks=(chunk_rows, n),
                                           dtype=np.float32)
    y = _product(op, params, x)
    total, build = y.sum(dtype=np.float64), x.sum(dtype=np.float64)
    # warm-up: one chunk per worker (structlin imported, Numba kernels loaded, everywhere)
    w = len(client.scheduler_info()["workers"])
    head = y[: w * chunk_rows]
    client.compute([head.sum(), x[: w * chunk_rows].sum()], sync=True)
    t_all, t_build, task_s, busy = [], [], [], []
    for _ in range(repeat):
        with distributed.get_task_stream(client) as ts:
            t0 = time.perf_counter()
            client.compute(total, sync=True)
            t_all.append(time.perf_counter() - t0)
        # the workers' compute time per task: the chunks' tasks (generation, product and the
        # chunk's sum, fused by Dask) are the longest; the aggregation tasks are tiny
        computing = sorted((ss["stop"] - ss["start"] for t in ts.data for ss in t["startstops"]
                            if ss["action"] == "compute"), reverse=True)
        task_s += computing[: x.numblocks[0]]
        busy.append(sum(computing) / (t_all[-1] * w))
        t0 = time.perf_counter()
        client.compute(build, sync=True)
        t_build.append(time.perf_counter() - t0)
    got = client.compute(y.blocks[0], sync=True)
    want = _product(op, params, client.compute(x.blocks[0], sync=True))
    nbytes = 2.0 * rows * n * 4
    return {
        "op": f"{op}_multiply",
        "workers": len(client.scheduler_info()["workers"]),
        "rows": rows, "n": n, "chunk_rows": chunk_rows, "chunks": x.numblocks[0],
        "wall_s": _stats(t_all),
        "without_product_s": _stats(t_build),
        "chunk_task_s": _stats(task_s),
        "workers_busy": _stats(busy),
        "rows_per_s": _stats(t_all, rows),
        "gb_per_s": _stats(t_all, nbytes / 1e9),
        "check_rel_error": float(rel_error(got, want)),
    }


def one_process_reference(*, n: int, chunk_rows: int, repeat: int, op: str,
                          threads: int | None) -> dict[str, Any]:
    """One chunk's work in this process: generate + product + sum, and the product alone."""
    import numba

    params = _parameters(op, n)
    before = numba.get_num_threads()
    numba.set_num_threads(threads or numba.config.NUMBA_NUM_THREADS)
    try:
        def chunk():
            xb = np.random.default_rng(SEED).random((chunk_rows, n), dtype=np.float32)
            return _product(op, params, xb).sum(dtype=np.float64)

        xb = np.random.default_rng(SEED).random((chunk_rows, n), dtype=np.float32)
        chunk()
        t_chunk, t_prod = [], []
        for _ in range(max(repeat, 5)):
            t0 = time.perf_counter()
            chunk()
            t_chunk.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _product(op, params, xb)
            t_prod.append(time.perf_counter() - t0)
        used = numba.get_num_threads()
    finally:
        numba.set_num_threads(before)
    nbytes = 2.0 * chunk_rows * n * 4
    return {
        "op": f"{op}_multiply", "numba_threads": used, "rows": chunk_rows, "n": n,
        "chunk_s": _stats(t_chunk), "product_s": _stats(t_prod),
        "chunk_rows_per_s": _stats(t_chunk, chunk_rows),
        "product_rows_per_s": _stats(t_prod, chunk_rows),
        "product_gb_per_s": _stats(t_prod, nbytes / 1e9),
    }


def cluster_study(*, rows: int, n: int, chunk_rows: int, repeat: int, ops: list[str],
                  workers: list[int]) -> dict[str, Any]:
    """Every ``op`` on clusters of each size in ``workers``, and the one-process reference."""
    import distributed

    out: dict[str, Any] = {"cluster": [], "one_process": []}
    for op in ops:
        for threads in (1, None):
            out["one_process"].append(one_process_reference(
                n=n, chunk_rows=chunk_rows, repeat=repeat, op=op, threads=threads))
    for w in workers:
        with distributed.LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                                      dashboard_address=":0", silence_logs=logging.ERROR,
                                      env=WORKER_ENV) as cluster, \
                distributed.Client(cluster) as client:
            client.wait_for_workers(w, timeout=120)
            for op in ops:
                rec = cluster_throughput(client, rows=rows, n=n, chunk_rows=chunk_rows,
                                         repeat=repeat, op=op)
                print(f"{op}: {w} worker(s): {rec['wall_s']['median']:.2f} s, "
                      f"{rec['rows_per_s']['median']:.3g} rows/s", flush=True)
                out["cluster"].append(rec)
    for op in ops:
        by = {r["workers"]: r for r in out["cluster"] if r["op"] == f"{op}_multiply"}
        if 1 in by and 2 in by:
            out.setdefault("ratio_2_over_1", {})[f"{op}_multiply"] = (
                by[1]["wall_s"]["median"] / by[2]["wall_s"]["median"])
    return out


def _fmt(s: dict[str, float], unit: str = "", digits: str = ".3g") -> str:
    return (f"{s['median']:{digits}}{unit} ({s['q1']:{digits}}-{s['q3']:{digits}})")


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# Dask on a LocalCluster ({report['machine_tag']})", "",
        f"Run {report['started']} with `{report['command']}`; {m['cpu_model']}, "
        f"{m['cpu_count']} cores; dask {report['dask']}, distributed {report['distributed']}. "
        f"Load average before the run: {report['loadavg_before']}, after: "
        f"{report['loadavg_after']}.", "",
        report["note"], "",
        "Cluster: `butterfly/monarch_multiply(...).sum()` of x built chunk by chunk on the "
        "workers; median (quartiles) over the repeats; GB/s = x read + y written by the "
        "product, over the whole wall time. One chunk's task: the workers' compute time of a "
        "chunk's fused task (generate, multiply, sum; from the task stream), to compare with "
        "the one-process row below; workers busy: the workers' compute time over wall time "
        "times workers.", "",
        "| op | workers | rows x n | chunks | wall | without product | rows/s | GB/s | one "
        "chunk's task | workers busy | rel.err chunk 0 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["study"]["cluster"]:
        lines.append(
            f"| {r['op']} | {r['workers']} | {r['rows']} x {r['n']} | {r['chunks']} x "
            f"{r['chunk_rows']} | {_fmt(r['wall_s'], ' s')} | "
            f"{_fmt(r['without_product_s'], ' s')} | {_fmt(r['rows_per_s'])} | "
            f"{_fmt(r['gb_per_s'], '', '.2f')} | {_fmt(r['chunk_task_s'], ' s')} | "
            f"{_fmt(r['workers_busy'], '', '.2f')} | {r['check_rel_error']:.1e} |")
    ratios = report["study"].get("ratio_2_over_1", {})
    if ratios:
        lines += ["", "Speed-up of 2 workers over 1 (median wall times): "
                  + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()) + "."]
    lines += ["", "One process, one chunk (this process, Numba threads as given):", "",
              "| op | Numba threads | chunk rows | generate+product+sum | rows/s | product "
              "alone | product rows/s | product GB/s |",
              "|---|---|---|---|---|---|---|---|"]
    for r in report["study"]["one_process"]:
        lines.append(
            f"| {r['op']} | {r['numba_threads']} | {r['rows']} | {_fmt(r['chunk_s'], ' s')} | "
            f"{_fmt(r['chunk_rows_per_s'])} | {_fmt(r['product_s'], ' s')} | "
            f"{_fmt(r['product_rows_per_s'])} | {_fmt(r['product_gb_per_s'], '', '.2f')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import os

    import dask
    import distributed

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="(50_000, 256), 2 repeats")
    p.add_argument("--rows", type=int, default=None)
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--chunk-rows", type=int, default=None)
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--ops", default="butterfly,monarch")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--out", default="auto", help="JSON path ('auto': results/dask-<machine>"
                   ".json; 'none': print only)")
    p.add_argument("--note", default="", help="a line for the results (e.g. the machine's load)")
    args = p.parse_args(argv)
    rows = args.rows or (50_000 if args.quick else 10**6)
    n = args.n or (256 if args.quick else 1024)
    chunk_rows = args.chunk_rows or (6_250 if args.quick else 15_625)
    repeat = args.repeat or (2 if args.quick else 3)
    machine = describe_machine()
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "command": " ".join(["python benchmarks/bench_dask.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine, "machine_tag": machine_tag(machine),
        "dask": dask.__version__, "distributed": distributed.__version__,
        "loadavg_before": os.getloadavg(),
        "note": args.note,
    }
    report["study"] = cluster_study(rows=rows, n=n, chunk_rows=chunk_rows, repeat=repeat,
                                    ops=args.ops.split(","),
                                    workers=[int(w) for w in args.workers.split(",")])
    report["loadavg_after"] = os.getloadavg()
    md = markdown(report)
    print(md)
    if args.out != "none":
        path = (RESULTS / f"dask-{report['machine_tag']}.json" if args.out == "auto"
                else Path(args.out))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=float) + "\n")
        path.with_suffix(".md").write_text(md)
        print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
