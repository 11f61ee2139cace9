"""PyTorch overhead benchmarks: the ``torch.library`` custom operators of
:mod:`structlin.interop.torch` against the NumPy structlin call they wrap, and a
``torch.compile``d model against the same model uncompiled.

Cases (``fn`` = the torch side, ``baseline`` = the NumPy side, so the ratio
``median(NumPy) / median(torch)`` is the reverse of the overhead; the issue's goal "within
20 %" is a ratio of at least ``1 / 1.2``):

- ``butterfly_multiply``, ``monarch_multiply`` (32 blocks of 32), float32, ``n = 1024``,
  ``batch = 1024``; ``fftconv`` at the same number of elements (``B = 8, H = 128, L = 1024``,
  kernel of length ``L``): forward alone (``torch.no_grad``), and forward + backward (the
  torch op under autograd, ``backward`` with a given output gradient, against the NumPy
  function and its ``*_vjp``). The torch side moves tensors by DLPack (no copy), checks the
  arguments, dispatches the custom operator and, with autograd, saves the inputs.
- a small model (``ButterflyLinear``-like: butterfly, ReLU, Monarch, GELU, Walsh-Hadamard,
  sum), forward + backward, ``torch.compile(fullgraph=True)`` (inductor) against eager: the
  structlin operators stay opaque calls in the compiled graph, so the gain is the torch code
  between them (fused) less the guard checks. (The quick run uses the aot_eager backend.)

Work is counted in bytes of the vectors read and written (``2 batch n`` elements forward,
``4 batch n`` forward + backward), so the two sides' rates are comparable; the ratio is the
figure. Returns no case when PyTorch is not installed.

``python benchmarks/bench_torch.py [--quick] [--budget S] [--out FILE.md]`` times the cases
interleaved in one process (:func:`_harness.time_interleaved`) and writes medians and
quartiles of both sides and the ratio; ``benchmarks/run.py torch`` runs them too.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

if __name__ == "__main__":  # run as a script: this checkout's structlin, as run.py does
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import Case, rel_error

import structlin

SEED = 20261203
#: the overhead the issue allows: torch time <= (1 + 0.2) NumPy time
GOAL = 1 / 1.2


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _bytes(batch: int, n: int, itemsize: int, backward: bool) -> float:
    return float((4 if backward else 2) * batch * n * itemsize)


def _op_cases(name: str, size: str, arrays: tuple, call_np, call_torch, vjp_np, grad_of: int,
              work_fwd: float, work_bwd: float) -> Iterator[Case]:
    """The forward and forward + backward cases of one operation on prepared arrays
    (``grad_of`` is the index of the array whose gradient the backward case returns)."""
    torch = _torch()
    tensors = tuple(torch.from_numpy(a) for a in arrays)
    out = call_np(*arrays)
    g = np.random.default_rng(SEED + 1).standard_normal(out.shape).astype(out.dtype)
    gt = torch.from_numpy(g)

    def fwd_torch():
        with torch.no_grad():
            return call_torch(*tensors).numpy()

    yield Case(
        name=f"{name} forward", size=size, fn=fwd_torch,
        baseline=lambda: call_np(*arrays),
        baseline_name=f"structlin.{name} on the NumPy arrays (same kernels)",
        work=work_fwd, unit="byte", dtype=str(out.dtype), goal=GOAL,
        check=rel_error, tol=1e-6,
        notes="ratio = NumPy time / torch time; goal: overhead within 20 %",
    )
    leaves = [t.detach().requires_grad_() for t in tensors]

    def fwd_bwd_torch():
        for t in leaves:
            t.grad = None
        call_torch(*leaves).backward(gt)
        return leaves[grad_of].grad.numpy()

    def fwd_bwd_np():
        call_np(*arrays)
        return vjp_np(*arrays, g)[grad_of]

    yield Case(
        name=f"{name} forward+backward", size=size, fn=fwd_bwd_torch, baseline=fwd_bwd_np,
        baseline_name=f"structlin.{name} then structlin.{name}_vjp (NumPy)",
        work=work_bwd, unit="byte", dtype=str(out.dtype), goal=GOAL,
        check=rel_error, tol=1e-6,
        notes="autograd (saved inputs, one VJP call for every gradient) vs the two calls",
    )


def _model_case(n: int, batch: int, backend: str) -> Case:
    torch = _torch()
    from structlin.interop import torch as st

    rng = np.random.default_rng(SEED + 2)
    b = math.isqrt(n)
    tw = torch.tensor(structlin.random_butterfly(n, rng=rng, dtype=np.float32),
                      requires_grad=True)
    w1 = torch.tensor(rng.standard_normal((b, b, b)).astype(np.float32) / np.sqrt(b),
                      requires_grad=True)
    w2 = torch.tensor(rng.standard_normal((b, b, b)).astype(np.float32) / np.sqrt(b),
                      requires_grad=True)
    bias = torch.zeros(n, requires_grad=True)
    x = torch.tensor(rng.standard_normal((batch, n)).astype(np.float32))
    params = (tw, w1, w2, bias)

    def model(x):
        h = torch.relu(st.butterfly_multiply(tw, x) + bias)
        h = torch.nn.functional.gelu(st.monarch_multiply(w1, w2, h)) * 0.5 + h
        return st.fwht(h, normalize=True).square().mean()

    compiled = torch.compile(model, fullgraph=True, backend=backend)

    def step(f):
        def run():
            for p in params:
                p.grad = None
            f(x).backward()
            return tw.grad.numpy().copy()

        return run

    return Case(
        name="model forward+backward, torch.compile vs eager", size=f"n={n} batch={batch}",
        fn=step(compiled), baseline=step(model),
        baseline_name="the same model uncompiled (eager)",
        work=_bytes(batch, n, 4, True), unit="byte", dtype="float32",
        check=rel_error, tol=1e-4,
        notes=f"butterfly + bias, ReLU, Monarch, GELU, residual, fwht, mean square; {backend}; "
              "the first (timed separately) call compiles",
    )


def cases(quick: bool) -> Iterator[Case]:
    if _torch() is None:
        return
    from structlin.interop import torch as st

    n, batch = (256, 64) if quick else (1024, 1024)
    b = math.isqrt(n)
    rng = np.random.default_rng(SEED)
    f32 = np.float32
    x = rng.standard_normal((batch, n)).astype(f32)
    size = f"n={n} batch={batch} float32"
    work = _bytes(batch, n, 4, False), _bytes(batch, n, 4, True)

    tw = structlin.random_butterfly(n, rng=rng, dtype=f32)
    yield from _op_cases("butterfly_multiply", size, (tw, x), structlin.butterfly_multiply,
                         st.butterfly_multiply, structlin.butterfly_multiply_vjp, 1, *work)

    w1 = (rng.standard_normal((b, b, b)) / np.sqrt(b)).astype(f32)
    w2 = (rng.standard_normal((b, b, b)) / np.sqrt(b)).astype(f32)
    yield from _op_cases("monarch_multiply", f"{size} ({b} blocks of {b})", (w1, w2, x),
                         structlin.monarch_multiply, st.monarch_multiply,
                         structlin.monarch_multiply_vjp, 2, *work)

    B, H, L = (2, 32, 256) if quick else (8, 128, 1024)
    u = rng.standard_normal((B, H, L)).astype(f32)
    k = (rng.standard_normal((H, L)) * np.exp(-np.arange(L) / (L / 4))).astype(f32)
    D = rng.standard_normal(H).astype(f32)
    yield from _op_cases(
        "fftconv", f"B={B} H={H} L={L} float32 (Lk = L, with D)", (u, k, D), structlin.fftconv,
        st.fftconv, lambda u, k, D, g: structlin.fftconv_vjp(u, k, D, g), 0,
        _bytes(B * H, L, 4, False), _bytes(B * H, L, 4, True))

    # the quick (smoke-test) run skips inductor's C++ compilation
    yield _model_case(n, batch, "aot_eager" if quick else "inductor")


def _load(avg) -> str:
    return ", ".join(f"{v:.1f}" for v in avg)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import datetime
    import time

    from _harness import describe_machine, fmt_time, time_interleaved

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, short timing")
    p.add_argument("--budget", type=float, default=3.0, help="seconds of timing per case")
    p.add_argument("--out", type=Path, help="write the table (markdown) here")
    args = p.parse_args(argv)
    torch = _torch()
    if torch is None:
        print("PyTorch is not installed: no case")
        return 0
    rows = []
    load_before = os.getloadavg()
    for case in cases(args.quick):
        t0 = time.perf_counter()
        t_s, t_b, out_s, out_b, _ = time_interleaved(case.fn, case.baseline,
                                                     budget_s=args.budget, min_samples=7)
        err = case.check(out_s, out_b) if case.check else float("nan")
        q = [*t_s.quartiles(), *t_b.quartiles()]
        ratio = t_b.median / t_s.median
        overhead = t_s.median / t_b.median - 1
        goal = "-" if case.goal is None else ("met" if ratio >= case.goal else "not met")
        rows.append([case.name, case.size,
                     f"{fmt_time(t_s.median)} [{fmt_time(q[0])}, {fmt_time(q[1])}]",
                     f"{fmt_time(t_b.median)} [{fmt_time(q[2])}, {fmt_time(q[3])}]",
                     f"{ratio:.3f}", f"{100 * overhead:+.1f} %", goal,
                     f"{len(t_s.samples)}x{t_s.inner}", f"{fmt_time(t_s.first_call_s)}",
                     f"{err:.1e}", case.baseline_name])
        print(" | ".join(rows[-1][:8]), f"({time.perf_counter() - t0:.1f} s)", flush=True)
    machine = describe_machine()
    head = ["case", "size", "torch median [q1, q3]", "baseline median [q1, q3]",
            "ratio base/torch", "torch overhead", "goal (<= +20 %)", "samples",
            "torch first call", "rel.err", "baseline is"]
    lines = [
        f"# structlin PyTorch benchmarks ({'quick' if args.quick else 'full'} sizes)", "",
        f"Run {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')} with "
        f"`python benchmarks/bench_torch.py{' --quick' if args.quick else ''} --budget "
        f"{args.budget:g}`; torch {torch.__version__}, numpy {np.__version__}, "
        f"CPU {machine.get('cpu_model')}, {machine.get('cpu_count')} cores "
        f"(affinity {machine.get('cpu_affinity')}).", "",
        "Each row: the torch side and its baseline timed interleaved in one process after "
        "warm-up (medians and quartiles of the per-call times); ratio = median baseline / "
        "median torch, overhead = median torch / median baseline - 1. The model row compares "
        "torch.compile (inductor, fullgraph) with eager; its first call (the compilation) is "
        "in 'torch first call'.", "",
        f"Load average (1, 5, 15 min) before the run {_load(load_before)}, after it "
        f"{_load(os.getloadavg())}, on {os.cpu_count()} cores: other jobs shared the machine "
        "when the load exceeds about 1, and the quartiles show how much.", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in rows), "",
    ]
    text = "\n".join(lines)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
