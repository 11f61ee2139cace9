"""State space model benchmarks: the ``ssm`` family against what a CPU user runs today.

Baselines (NumPy transcriptions of the papers' reference code, in ``structlin._ssm_reference``,
which the tests check the fast paths against too):

- ``ssm_kernel_diag`` (the S4D kernel): the NumPy Vandermonde of S4D's reference code, ``exp``
  of the products ``dt Lambda l`` for every ``(h, n, l)`` and an ``einsum`` (H x N x L
  memory). The issue's goal: at least 5x at ``H = 512, N = 32, L = 8192`` complex64.
- ``selective_scan``: the NumPy transcription of mamba_ssm's ``selective_scan_ref`` (a loop over
  the sequence on ``(b, d, n)`` arrays, with the ``(b, d, l, n)`` tables ``exp(delta A)`` and
  ``delta B u`` precomputed, as the reference does). Goal: at least 20x at
  ``(b, d, l, n) = (2, 1536, 2048, 16)`` float32 (the Mamba paper reports 20-40x for its CUDA
  scan over a PyTorch scan).
- ``ssd``: the quadratic (attention-like) form, the dense semiseparable matrix of every
  ``(b, h)`` applied by ``einsum``; the NumPy transcription of mamba's ``ssd_minimal_discrete``
  (whose length must be a multiple of the chunk); and ``selective_scan`` on the same problem
  (channels ``d = h p``, one decay per head, ``B`` and ``C`` grouped by head).
- ``ssm_scan`` against ``fftconv(u, ssm_kernel_diag(...))``: the same output by the recurrence
  and by the convolution; the ratio over ``L`` shows the crossover.
- ``ssm_kernel_dplr`` (the S4 kernel) against the naive Cauchy sum of S4's reference code (the
  ``(H, L, N)`` table of ``1 / (g(z) - Lambda)``), time and memory.
- ``matmul_cauchy`` against ``(1 / (x[:, None] - y)) @ v`` (issue 14's goal: 5x at
  ``n = m = 4096``).

Work counts are the structlin algorithm's flops (stated per case); the ratios are what the
table reports.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from _harness import Case, peak_memory, rel_error

import structlin
from structlin import _ssm_reference as ref

SEED = 20241203


def _tol(dtype) -> float:
    return 2e-3 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-8


def _diag_inputs(H: int, N: int, dtype, seed: int = SEED):
    rng = np.random.default_rng(seed + H + N)
    cdt = np.result_type(dtype, np.complex64)
    rdt = np.empty(0, cdt).real.dtype
    Lam = np.tile(structlin.s4d_init(2 * N, "lin"), (H, 1)).astype(cdt)
    B = np.ones((H, N), cdt)
    C = ((rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))) / math.sqrt(2 * N))
    dt = np.exp(rng.uniform(math.log(1e-3), math.log(1e-1), H))
    return Lam, B, C.astype(cdt), dt.astype(rdt)


def kernel_diag_case(H: int, N: int, L: int, dtype=np.complex64, goal=None) -> Case:
    Lam, B, C, dt = _diag_inputs(H, N, dtype)
    return Case(
        name=f"ssm_kernel_diag {np.dtype(dtype).name}",
        size=f"H={H} N={N} L={L}",
        fn=lambda: structlin.ssm_kernel_diag(Lam, B, C, dt, L),
        baseline=lambda: ref.s4d_kernel_vandermonde(Lam, B, C, dt, L),
        baseline_name="NumPy Vandermonde: exp(dt Lambda l) for all (h, n, l), einsum",
        work=8.0 * H * N * L,
        unit="flop",
        dtype=np.dtype(dtype).name,
        goal=goal,
        check=rel_error,
        tol=_tol(dtype),
        notes="flops: one complex multiply-add per (h, n, l) for the power and one for the sum",
    )


def _selective_inputs(b: int, d: int, l: int, n: int, dtype, seed: int = SEED):
    rng = np.random.default_rng(seed + d + l)
    u = rng.standard_normal((b, d, l)).astype(dtype)
    delta = rng.uniform(0.001, 0.1, (b, d, l)).astype(dtype)
    A = -np.exp(rng.uniform(0.0, 2.0, (d, n))).astype(dtype)
    B = rng.standard_normal((b, n, l)).astype(dtype)
    C = rng.standard_normal((b, n, l)).astype(dtype)
    D = rng.standard_normal(d).astype(dtype)
    return u, delta, A, B, C, D


def selective_case(b: int, d: int, l: int, n: int, dtype=np.float32, goal=None) -> Case:
    u, delta, A, B, C, D = _selective_inputs(b, d, l, n, dtype)
    return Case(
        name=f"selective_scan {np.dtype(dtype).name}",
        size=f"b={b} d={d} l={l} n={n}",
        fn=lambda: structlin.selective_scan(u, delta, A, B, C, D),
        baseline=lambda: ref.selective_scan_ref(u, delta, A, B, C, D),
        baseline_name="NumPy transcription of mamba_ssm selective_scan_ref",
        work=7.0 * b * d * l * n,
        unit="flop",
        dtype=np.dtype(dtype).name,
        goal=goal,
        check=rel_error,
        tol=_tol(dtype),
        notes="flops: exp + 2 multiply-adds for the state, one for the output, per (b, d, l, n) "
        "(the exp counted as 3); B, C shared (b, n, l), D given",
    )


def _ssd_inputs(b: int, l: int, h: int, p: int, n: int, dtype, seed: int = SEED):
    rng = np.random.default_rng(seed + l + h)
    X = rng.standard_normal((b, l, h, p)).astype(dtype)
    A = -rng.uniform(0.001, 0.1, (b, l, h)).astype(dtype)
    B = (rng.standard_normal((b, l, h, n)) / math.sqrt(n)).astype(dtype)
    C = (rng.standard_normal((b, l, h, n)) / math.sqrt(n)).astype(dtype)
    return X, A, B, C


def _ssd_work(b: int, l: int, h: int, p: int, n: int, Q: int) -> float:
    # per chunk: C B^T (Q^2 n), the masked product with X (Q^2 p), chunk states (Q n p),
    # outputs from states (Q n p), state passing (n p)
    return 2.0 * b * h * (l * Q * (n + p) + 2 * l * n * p)


def ssd_case(b, l, h, p, n, Q, baseline: str, dtype=np.float32, goal=None) -> Case:
    X, A, B, C = _ssd_inputs(b, l, h, p, n, dtype)
    if baseline == "quadratic":
        base, name = (lambda: ref.ssd_quadratic(X, A, B, C),
                      "quadratic form: dense semiseparable matrix per (b, h), einsum")
    elif baseline == "minimal":
        base, name = (lambda: ref.ssd_minimal_discrete(X, A, B, C, Q)[0],
                      "NumPy transcription of mamba ssd_minimal_discrete")
    else:
        # the same problem as a selective scan: d = h p channels, one decay per head
        # (A_t = -delta_t), B and C grouped by head, u = X / delta
        dl = np.ascontiguousarray(np.repeat(-A, p, axis=2).transpose(0, 2, 1))  # (b, h p, l)
        u = np.ascontiguousarray(X.reshape(b, l, h * p).transpose(0, 2, 1)) / dl
        As = -np.ones((h * p, n), dtype)
        Bs = np.ascontiguousarray(B.transpose(0, 2, 3, 1))  # (b, h, n, l)
        Cs = np.ascontiguousarray(C.transpose(0, 2, 3, 1))

        def base():
            y = structlin.selective_scan(u, dl, As, Bs, Cs)
            return y.reshape(b, h, p, l).transpose(0, 3, 1, 2)

        name = "structlin.selective_scan on the same problem (d = h p, grouped B, C)"
    return Case(
        name=f"ssd {np.dtype(dtype).name} vs {baseline}",
        size=f"b={b} l={l} h={h} p={p} n={n} chunk={Q}",
        fn=lambda: structlin.ssd(X, A, B, C, Q),
        baseline=base,
        baseline_name=name,
        work=_ssd_work(b, l, h, p, n, Q),
        unit="flop",
        dtype=np.dtype(dtype).name,
        goal=goal,
        check=rel_error,
        tol=_tol(dtype),
        notes="flops of the chunked algorithm: 2 b h (l Q (n + p) + 2 l n p)",
    )


def scan_vs_conv_case(batch: int, H: int, N: int, L: int, dtype=np.float32,
                      kernel_given: bool = False) -> Case:
    """The recurrence against the convolution, with the kernel computed in the call (one
    forward pass of a layer) or ``kernel_given`` (precomputed, as for a fixed model)."""
    Lam, B, C, dt = _diag_inputs(H, N, np.result_type(dtype, np.complex64))
    u = np.random.default_rng(SEED + L).standard_normal((batch, H, L)).astype(dtype)
    if kernel_given:
        K = structlin.ssm_kernel_diag(Lam, B, C, dt, L)
        base = lambda: structlin.fftconv(u, K)  # noqa: E731
        what = "structlin.fftconv(u, K), K precomputed"
    else:
        base = lambda: structlin.fftconv(u, structlin.ssm_kernel_diag(Lam, B, C, dt, L))  # noqa: E731
        what = "structlin.fftconv(u, structlin.ssm_kernel_diag(...)) (kernel included)"
    return Case(
        name=f"ssm_scan {np.dtype(dtype).name} vs fftconv" + (" (K given)" if kernel_given else ""),
        size=f"batch={batch} H={H} N={N} L={L}",
        fn=lambda: structlin.ssm_scan(Lam, B, C, dt, u),
        baseline=base,
        baseline_name=what,
        work=8.0 * batch * H * N * L,
        unit="flop",
        dtype=np.dtype(dtype).name,
        check=rel_error,
        tol=_tol(dtype),
        notes="ratio > 1: the recurrence is faster than the convolution at this L",
    )


def dplr_case(H: int, N: int, L: int, dtype=np.complex64) -> Case:
    rng = np.random.default_rng(SEED + N + L)
    Lam_s, P_s, B_s, _ = structlin.hippo_nplr("legs", 2 * N)
    cdt = np.dtype(dtype)
    Lam, P, B = (np.tile(a, (H, 1)).astype(cdt) for a in (Lam_s, P_s[0], B_s))
    C = ((rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))) / math.sqrt(N))
    C = C.astype(cdt)
    dt = np.exp(rng.uniform(math.log(1e-3), math.log(1e-1), H)).astype(cdt.type(0).real.dtype)
    fn = lambda: structlin.ssm_kernel_dplr(Lam, P, B, C, dt, L)  # noqa: E731
    base = lambda: ref.s4_kernel_naive_cauchy(Lam, P, B, C, dt, L)  # noqa: E731
    mem_fn, mem_base = peak_memory(fn), peak_memory(base)
    return Case(
        name=f"ssm_kernel_dplr {cdt.name}",
        size=f"H={H} N={N} L={L}",
        fn=fn,
        baseline=base,
        baseline_name="naive Cauchy sum: the (H, L, N) table of 1 / (g(z) - Lambda)",
        work=4 * 8.0 * H * N * L,
        unit="flop",
        dtype=cdt.name,
        check=rel_error,
        tol=_tol(dtype),
        notes=f"peak traced memory {mem_fn:.0f} MiB (structlin) vs {mem_base:.0f} MiB (naive); "
        "flops: four Cauchy products of N terms at L nodes",
    )


def cauchy_case(batch: int, n: int, dtype=np.complex64, goal=None) -> Case:
    rng = np.random.default_rng(SEED + n)
    cdt = np.dtype(dtype)
    x = (rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))).astype(cdt)
    y = (rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n)) + 5).astype(cdt)
    v = (rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))).astype(cdt)

    def base():
        return np.einsum("bij,bj->bi", 1 / (x[:, :, None] - y[:, None, :]), v)

    return Case(
        name=f"matmul_cauchy {cdt.name}",
        size=f"batch={batch} n=m={n}",
        fn=lambda: structlin.matmul_cauchy(x, y, v),
        baseline=base,
        baseline_name="NumPy (1 / (x[:, None] - y)) @ v (n x m matrix)",
        work=14.0 * batch * n * n,
        unit="flop",
        dtype=cdt.name,
        goal=goal,
        check=rel_error,
        tol=_tol(dtype),
        notes="flops: a complex subtract, reciprocal and multiply-add per (i, j)",
    )


def cases(quick: bool) -> Iterator[Case]:
    if quick:
        yield kernel_diag_case(64, 16, 1024, goal=5)
        yield selective_case(1, 64, 256, 16, goal=20)
        yield ssd_case(1, 256, 4, 16, 8, 32, "quadratic")
        yield ssd_case(1, 256, 4, 16, 8, 32, "minimal")
        yield ssd_case(1, 256, 4, 16, 8, 32, "selective_scan")
        yield scan_vs_conv_case(2, 32, 16, 512)
        yield scan_vs_conv_case(2, 32, 16, 512, kernel_given=True)
        yield dplr_case(16, 16, 256)
        yield cauchy_case(1, 512, goal=5)
        return
    yield kernel_diag_case(512, 32, 8192, goal=5)
    yield kernel_diag_case(512, 32, 8192, np.complex128)
    yield selective_case(2, 1536, 2048, 16, goal=20)
    yield ssd_case(2, 2048, 24, 64, 16, 64, "quadratic")
    yield ssd_case(2, 2048, 24, 64, 16, 64, "minimal")
    yield ssd_case(2, 2048, 24, 64, 16, 64, "selective_scan")
    for L in (64, 256, 1024, 4096, 16384):
        yield scan_vs_conv_case(4, 256, 32, L)
    for L in (64, 256, 1024, 4096, 16384):
        yield scan_vs_conv_case(4, 256, 32, L, kernel_given=True)
    yield dplr_case(256, 64, 4096)
    yield cauchy_case(1, 4096, goal=5)
    yield cauchy_case(16, 1024)
