"""``python -m structlin``: a tour of every family at a realistic size, on NumPy/CPU.

For each operation it prints the size, the relative error against the dense reference, the
median time of structlin and of what a user would run instead, and the speed-up. Later
families add their rows to :data:`TOUR`.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Row:
    operation: str
    size: str
    fast: Callable[[], np.ndarray]
    baseline_name: str
    baseline: Callable[[], np.ndarray]


def _median_time(f: Callable[[], object], budget: float = 0.4) -> float:
    f()  # warm-up: JIT compilation and caches
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget and len(times) < 50):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _butterfly_rows(rng: np.random.Generator) -> list[Row]:
    import structlin as sl

    n, b = 1024, 2048
    tw = sl.random_butterfly(n, kind="orthogonal", dtype=np.float32, rng=rng)
    x = rng.standard_normal((b, n)).astype(np.float32)
    B = sl.butterfly_to_dense(tw)
    g = rng.standard_normal((b, n)).astype(np.float32)
    return [
        Row("butterfly_multiply float32", f"n={n}, batch={b}",
            lambda: sl.butterfly_multiply(tw, x), "x @ B.T (BLAS)", lambda: x @ B.T),
        Row("butterfly_multiply_vjp float32", f"n={n}, batch={b}",
            lambda: sl.butterfly_multiply_vjp(tw, x, g)[1], "g @ B and g.T @ x (BLAS)",
            lambda: (g.T @ x, g @ B)[1]),
    ]


def _hadamard_rows(rng: np.random.Generator) -> list[Row]:
    import scipy.fft
    from scipy.linalg import hadamard

    import structlin as sl

    n, b = 4096, 256
    x = rng.standard_normal((b, n)).astype(np.float32)
    H = hadamard(n).astype(np.float32)
    xl = rng.standard_normal((64, 1 << 16)).astype(np.float32)
    return [
        Row("fwht float32", f"n={n}, batch={b}", lambda: sl.fwht(x),
            "x @ hadamard(n).T (BLAS)", lambda: x @ H.T),
        # no dense reference at this size: the error column compares with the reference FWHT
        Row("fwht float32", "n=65536, batch=64", lambda: sl.fwht(xl),
            "scipy.fft.rfft(workers=-1)", lambda: scipy.fft.rfft(xl, workers=-1)),
    ]


def _butterfly_special_rows(rng: np.random.Generator) -> list[Row]:
    import scipy.fft
    import scipy.linalg

    import structlin as sl

    n, b = 1024, 128
    x = rng.standard_normal((b, n)).astype(np.float32)
    xc = (x + 1j * rng.standard_normal((b, n))).astype(np.complex64)
    tw = sl.butterfly_dft(n, dtype=np.complex64)
    c = rng.standard_normal(n).astype(np.float32)
    C = scipy.linalg.circulant(c)
    return [
        # the baselines compute the same transform: the error column compares with them
        Row("butterfly_dft complex64", f"n={n}, batch={b}",
            lambda: sl.butterfly_multiply(tw, sl.bit_reverse(xc)), "scipy.fft.fft(workers=-1)",
            lambda: scipy.fft.fft(xc, workers=-1)),
        Row("dct type 2 float32", f"n={n}, batch={b}", lambda: sl.dct(x),
            "scipy.fft.dct(workers=-1)", lambda: scipy.fft.dct(x, workers=-1)),
        Row("circulant_multiply float32", f"n={n}, batch={b}",
            lambda: sl.circulant_multiply(c, x), "x @ circulant(c).T (BLAS)", lambda: x @ C.T),
    ]


def _butterfly_inverse_rows(rng: np.random.Generator) -> list[Row]:
    import scipy.linalg

    import structlin as sl

    n, b = 1024, 2048
    tw = sl.random_butterfly(n, kind="orthogonal", dtype=np.float32, rng=rng)
    tw = tw * rng.uniform(0.7, 1.3, size=(*tw.shape[:-2], 1, 2)).astype(np.float32)
    y = rng.standard_normal((b, n)).astype(np.float32)
    lu = scipy.linalg.lu_factor(sl.butterfly_to_dense(tw))
    nl = 1 << 16
    twl = sl.random_butterfly(nl, dtype=np.float32, rng=rng)

    def blocks_slogdet():
        s, la = np.linalg.slogdet(twl)
        return np.array([np.prod(s), la.sum()])

    return [
        Row("butterfly_solve float32", f"n={n}, batch={b}",
            lambda: sl.butterfly_solve(tw, y), "lu_solve, B factorized beforehand",
            lambda: scipy.linalg.lu_solve(lu, y.T).T),
        Row("butterfly_logdet float32", f"n={nl}",
            lambda: np.array(sl.butterfly_logdet(twl), dtype=np.float64),
            "slogdet of the 2x2 blocks (LAPACK)", blocks_slogdet),
    ]


def _conv_rows(rng: np.random.Generator) -> list[Row]:
    import scipy.fft

    import structlin as sl

    B, H, L = 4, 128, 4096
    u = rng.standard_normal((B, H, L)).astype(np.float32)
    k = (rng.standard_normal((H, L)) * np.exp(-np.arange(L) / 1024)).astype(np.float32)
    D = rng.standard_normal(H).astype(np.float32)
    plan = sl.fftconv_plan(k, L)

    def pipeline():
        n = 2 * L
        kf = scipy.fft.rfft(k, n=n, workers=-1)
        y = scipy.fft.irfft(scipy.fft.rfft(u, n=n, workers=-1) * kf, n=n, workers=-1)
        return y[..., :L] + u * D[:, None]

    return [
        Row("fftconv float32 (Lk = L)", f"B={B} H={H} L={L}", lambda: sl.fftconv(u, k, D),
            "scipy.fft rfft/irfft pipeline", pipeline),
        Row("fftconv planned float32", f"B={B} H={H} L={L}", lambda: sl.fftconv(u, plan, D),
            "scipy.fft rfft/irfft pipeline", pipeline),
    ]


def _pixelfly_rows(rng: np.random.Generator) -> list[Row]:
    import structlin as sl

    n, block, n_factors, rank, b = 2048, 32, 4, 16, 1024
    mask = sl.flat_block_butterfly_mask(n, n, block, n_factors)
    blocks = (rng.standard_normal((int(mask.sum()), block, block)) / block).astype(np.float32)
    U = (rng.standard_normal((n, rank)) / rank).astype(np.float32)
    V = (rng.standard_normal((n, rank)) / np.sqrt(n)).astype(np.float32)
    x = rng.standard_normal((b, n)).astype(np.float32)
    g = rng.standard_normal((b, n)).astype(np.float32)
    M = sl.pixelfly_to_dense(blocks, mask, U, V)
    size = f"n={n}, d={100 * mask.mean():.1f}%, b={b}"
    return [
        Row(f"pixelfly_multiply float32 (rank {rank})", size,
            lambda: sl.pixelfly_multiply(blocks, mask, U, V, x), "x @ M.T (BLAS)",
            lambda: x @ M.T),
        Row(f"pixelfly_multiply_vjp float32 (rank {rank})", size,
            lambda: sl.pixelfly_multiply_vjp(blocks, mask, U, V, x, g)[3],
            "g @ M and g.T @ x (BLAS)", lambda: (g.T @ x, g @ M)[1]),
    ]


def _butterfly_factorize_rows(rng: np.random.Generator) -> list[Row]:
    import structlin as sl
    from structlin.butterfly_factorization import _reference_factorize_svd

    n = 1024
    A = rng.standard_normal((n, n))

    def dense_error(tw):
        B = sl.butterfly_to_dense(tw)
        return np.array([np.linalg.norm(A - B) / np.linalg.norm(A)])

    # both sides return the relative error: the error column is their disagreement
    return [
        Row("butterfly_factorize float64", f"n={n}",
            lambda: np.array([sl.butterfly_factorize(A).relative_error]),
            "numpy batched SVD + dense error",
            lambda: dense_error(_reference_factorize_svd(A))),
    ]


def _monarch_rows(rng: np.random.Generator) -> list[Row]:
    import structlin as sl

    b, batch = 64, 1024
    n = b * b
    w1 = (rng.standard_normal((b, b, b)) / b**0.5).astype(np.float32)
    w2 = (rng.standard_normal((b, b, b)) / b**0.5).astype(np.float32)
    x = rng.standard_normal((batch, n)).astype(np.float32)
    M = sl.monarch_to_dense(w1, w2)
    A = rng.standard_normal((1024, 1024))
    A4 = A.reshape(32, 32, 32, 32).transpose(1, 2, 0, 3)
    return [
        Row("monarch_multiply float32", f"n={n}, batch={batch}",
            lambda: sl.monarch_multiply(w1, w2, x), "x @ M.T (BLAS)", lambda: x @ M.T),
        # the error column compares the singular values kept with those of the exact SVDs
        Row("monarch_project float64", "1024x1024, 32 blocks",
            lambda: np.sort(np.linalg.norm(sl.monarch_project(A, nblocks=32)[0], axis=2)
                            .ravel() ** 2),
            "exact SVD of each slice",
            lambda: np.sort(np.linalg.svd(A4, compute_uv=False)[..., 0].ravel())),
    ]


#: (family, row builder); each later family appends its own
TOUR: list[tuple[str, Callable[[np.random.Generator], list[Row]]]] = [
    ("butterfly", _butterfly_rows),
    ("hadamard", _hadamard_rows),
    ("butterfly_special", _butterfly_special_rows),
    ("butterfly_inverse", _butterfly_inverse_rows),
    ("conv", _conv_rows),
    ("pixelfly", _pixelfly_rows),
    ("butterfly_factorize", _butterfly_factorize_rows),
    ("monarch", _monarch_rows),
]


def _error(row: Row, y: np.ndarray, ref: np.ndarray) -> str:
    if y.shape != ref.shape:  # baseline computes something else (e.g. an FFT): no error
        return "n/a"
    err = np.max(np.abs(y - ref)) / max(np.max(np.abs(ref)), np.finfo(np.float64).tiny)
    return f"{err:.1e}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m structlin", description=__doc__)
    parser.add_argument("families", nargs="*", help="families to run (default: all)")
    args = parser.parse_args(argv)
    import numba

    import structlin

    print(f"structlin {structlin.__version__} tour — NumPy/CPU, {platform.processor() or 'cpu'}, "
          f"{numba.get_num_threads()} threads")
    header = f"{'operation':42} {'size':22} {'err vs dense':>12} {'structlin':>10} " \
             f"{'baseline':>10} {'speed-up':>8}  baseline"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for family, build in TOUR:
        if args.families and family not in args.families:
            continue
        for row in build(rng):
            y = row.fast()
            ref = row.baseline()
            err = _error(row, np.asarray(y), np.asarray(ref))
            t_fast = _median_time(row.fast)
            t_base = _median_time(row.baseline)
            print(f"{row.operation:42} {row.size:22} {err:>12} {t_fast * 1e3:8.2f}ms "
                  f"{t_base * 1e3:8.2f}ms {t_base / t_fast:7.1f}x  {row.baseline_name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
