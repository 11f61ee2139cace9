"""The fused Vandermonde CUDA kernels (``structlin/gpu/vandermonde.cu``) run in the host
emulator.

:mod:`tests.cuda_emulator` compiles the source with the host C++ compiler and the real launcher
of :mod:`structlin.gpu.vandermonde` drives it through NumPy arrays, against the NumPy definition
of the kernel contract (powers in extended precision, then the sums). Shapes cover one node,
several node tiles (``n > TILE``), several blocks per row (``m > THREADS * R``), ``m`` not a
multiple of ``R``, several exponent chunks of the transposed kernels (their atomic partial
sums; the chunk made small for the emulator), zero nodes, and a NaN row; the Björck-Pereyra
solves (one system per thread, several blocks of threads, n = 1, repeated nodes flagged per
row) against NumPy's dense solve. NVRTC compilation
(compute_80 and compute_90) is checked by ``tests/test_gpu_compile.py``. The last test runs the
launcher on a real GPU (skipped without one).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests import cuda_emulator as emu

NS = "emu_vandermonde"
CODES = {"float": "f32", "double": "f64", "sl::complex<float>": "c64",
         "sl::complex<double>": "c128"}
REAL_OF = {"sl::complex<float>": "float", "sl::complex<double>": "double"}
DTYPES = (np.float32, np.float64, np.complex64, np.complex128)


def _source() -> str:
    entries = []
    for t, code in CODES.items():
        q = emu.qualified(NS, t)
        entries.append(emu.entry_point(
            f"vandermonde_kernel_{code}",
            "void* x, void* v, void* out, long long rows, int n, long long m",
            f"{NS}::vandermonde_kernel<{q}>(({q}*)x, ({q}*)v, ({q}*)out, rows, n, m)"))
        entries.append(emu.entry_point(
            f"vandermonde_t_kernel_{code}",
            "void* x, void* w, void* out, long long rows, int n, long long m, long long chunk, "
            "int nchunks",
            f"{NS}::vandermonde_t_kernel<{q}>(({q}*)x, ({q}*)w, ({q}*)out, rows, n, m, chunk, "
            f"nchunks)"))
        for bp in ("solve_vandermonde_kernel", "solve_vandermonde_t_kernel"):
            entries.append(emu.entry_point(
                f"{bp}_{code}", "void* x, void* b, void* out, void* info, long long rows, int n",
                f"{NS}::{bp}<{q}>(({q}*)x, ({q}*)b, ({q}*)out, (int*)info, rows, n)"))
        entries.append(emu.entry_point(
            f"vandermonde_order_kernel_{code}",
            "void* x, void* perm, void* work, long long rows, int n",
            f"{NS}::vandermonde_order_kernel<{q}>(({q}*)x, (long long*)perm, (double*)work, "
            f"rows, n)"))
        if t in REAL_OF:
            r = REAL_OF[t]
            entries.append(emu.entry_point(
                f"exp_vandermonde_re_kernel_{code}",
                "void* z, void* v, void* out, long long rows, int n, long long m",
                f"{NS}::exp_vandermonde_re_kernel<{q}>(({q}*)z, ({q}*)v, ({r}*)out, rows, n, "
                f"m)"))
            entries.append(emu.entry_point(
                f"exp_vandermonde_t_re_kernel_{code}",
                "void* z, void* w, void* out, void* dout, long long rows, int n, long long m, "
                "long long chunk, int nchunks",
                f"{NS}::exp_vandermonde_t_re_kernel<{q}>(({q}*)z, ({r}*)w, ({q}*)out, "
                f"({q}*)dout, rows, n, m, chunk, nchunks)"))
    return emu.emulator_source(emu.kernel_namespace("vandermonde", NS), entries=entries,
                               includes=["#include <cmath>"])


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """:mod:`structlin.gpu.vandermonde` with its launches on the host emulator (the transposed
    kernels' exponent chunk made small, so that several chunks add up atomically)."""
    lib = emu.compile_library(tmp_path_factory, "emu_vandermonde", _source())
    with emu.emulated_launcher("vandermonde", emu.ctypes_launcher(lib), CHUNK=96) as gpu:
        yield gpu


# ------------------------------------------------------------------ the contract, in NumPy


def _powers(x, m):
    """``P[b, i, j] = x[b, j]**i`` in extended precision (repeated products)."""
    xl = x.astype(np.clongdouble)
    P = np.empty((x.shape[0], m, x.shape[1]), np.clongdouble)
    if m:
        P[:, 0] = 1
        P[:, 1:] = xl[:, None, :]
    return np.cumprod(P, axis=1)


def _nodes(rng, shape, dtype):
    r = rng.uniform(0.5, 0.999, shape)
    if np.dtype(dtype).kind == "c":
        return (r * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))).astype(dtype)
    return (r * rng.choice([-1.0, 1.0], shape)).astype(dtype)


def _vec(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _close(got, want, scale, dtype):
    assert np.all(np.isfinite(got)), "an output entry was not written (or is not finite)"
    tol = 2e-5 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11
    err = float(np.abs(got - want).max() / scale)
    assert err < tol, f"relative error {err:.2e}"


SHAPES = [(1, 1, 1), (2, 5, 300), (1, 150, 40), (2, 3, 2100), (3, 130, 17)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,n,m", SHAPES)
def test_vandermonde_kernel_in_host_emulation(emulated, B, n, m, dtype):
    rng = np.random.default_rng(B * 100 + n + m)
    x = _nodes(rng, (B, n), dtype)
    v = _vec(rng, (B, n), dtype)
    out = np.full((B, m), np.nan, dtype)
    emulated.vandermonde(x, v, out)
    want = np.einsum("bij,bj->bi", _powers(x, m), v.astype(np.clongdouble))
    _close(out, want, np.abs(v).sum(axis=1).max(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,n,m", SHAPES)
def test_vandermonde_t_kernel_in_host_emulation(emulated, B, n, m, dtype):
    rng = np.random.default_rng(B * 100 + n + m + 1)
    x = _nodes(rng, (B, n), dtype)
    w = _vec(rng, (B, m), dtype)
    out = np.full((B, n), np.nan, dtype)
    emulated.vandermonde_t(x, w, out)
    want = np.einsum("bij,bi->bj", _powers(x, m), w.astype(np.clongdouble))
    _close(out, want, np.abs(w).sum(axis=1).max(), dtype)


@pytest.mark.parametrize("dtype", (np.complex64, np.complex128))
@pytest.mark.parametrize("B,n,m", SHAPES)
def test_exp_kernels_in_host_emulation(emulated, B, n, m, dtype):
    rng = np.random.default_rng(B * 100 + n + m + 2)
    z = (-rng.uniform(1e-3, 0.5, (B, n)) + 1j * rng.uniform(-3, 3, (B, n))).astype(dtype)
    v = _vec(rng, (B, n), dtype)
    rdt = np.empty(0, dtype).real.dtype
    out = np.full((B, m), np.nan, rdt)
    emulated.exp_vandermonde_re(z, v, out)
    P = np.exp(z.astype(np.complex128)[:, None, :] * np.arange(m)[None, :, None])
    want = np.einsum("bij,bj->bi", P, v.astype(np.complex128)).real
    _close(out, want, np.abs(v).sum(axis=1).max(), dtype)
    w = rng.standard_normal((B, m)).astype(rdt)
    o = np.full((B, n), np.nan, dtype)
    d = np.full((B, n), np.nan, dtype)
    emulated.exp_vandermonde_t_re(z, w, o, d)
    _close(o, np.einsum("bij,bi->bj", P, w), np.abs(w).sum(axis=1).max(), dtype)
    if m > 1:
        wd = w[:, 1:] * np.arange(1, m)
        _close(d, np.einsum("bij,bi->bj", P[:, :-1], wd), np.abs(wd).sum(axis=1).max(), dtype)


def test_zero_nodes_and_a_nan_row_in_host_emulation(emulated):
    x = np.array([[0.0, 0.0], [0.5, np.nan], [0.5, -0.25]])
    v = np.array([[2.0, 3.0], [1.0, 1.0], [1.0, 1.0]])
    out = np.zeros((3, 40))
    emulated.vandermonde(x, v, out)
    np.testing.assert_array_equal(out[0], np.r_[5.0, np.zeros(39)])
    assert np.isnan(out[1, 1:]).all()
    np.testing.assert_allclose(out[2], 0.5 ** np.arange(40) + (-0.25) ** np.arange(40),
                               rtol=1e-14)
    w = np.ones((3, 200))
    o = np.zeros((3, 2))
    emulated.vandermonde_t(x, w, o)
    np.testing.assert_array_equal(o[0], [1.0, 1.0])
    assert np.isnan(o[1, 1]) and np.isfinite(o[1, 0])
    np.testing.assert_allclose(o[2], [(1 - 0.5 ** 200) / 0.5, (1 - 0.25 ** 200) / 1.25],
                               rtol=1e-14)


def test_empty_inputs_launch_nothing(emulated):
    emulated.vandermonde(np.ones((0, 3)), np.ones((0, 3)), np.ones((0, 5)))
    out = np.ones((2, 4))
    emulated.vandermonde(np.ones((2, 0)), np.ones((2, 0)), out)
    np.testing.assert_array_equal(out, 0)
    o = np.ones((2, 3))
    emulated.vandermonde_t(np.ones((2, 3)), np.ones((2, 0)), o)
    np.testing.assert_array_equal(o, 0)


# ------------------------------------------------------------------ Björck-Pereyra


def _cheb(B, n, dtype):
    """Chebyshev points (roots of unity for complex), shuffled per row: well conditioned."""
    rng = np.random.default_rng(B + n)
    if np.dtype(dtype).kind == "c":
        base = np.exp(2j * np.pi * (np.arange(n) + 0.25) / n)
    else:
        base = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    return np.stack([rng.permutation(base) for _ in range(B)]).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,n", [(1, 1), (3, 7), (130, 5)])
def test_bjorck_pereyra_kernels_in_host_emulation(emulated, B, n, dtype):
    rng = np.random.default_rng(B * 10 + n)
    x = _cheb(B, n, dtype)
    b = _vec(rng, (B, n), dtype)
    V = np.power(x.astype(np.complex128)[:, None, :], np.arange(n)[None, :, None])
    for name, M in (("solve_vandermonde", V), ("solve_vandermonde_t", np.swapaxes(V, 1, 2))):
        out = np.full((B, n), np.nan, dtype)
        info = np.full(B, 7, np.int32)
        getattr(emulated, name)(x, b, out, info)
        np.testing.assert_array_equal(info, 0)
        want = np.linalg.solve(M, b.astype(np.complex128)[..., None])[..., 0]
        _close(out, want, np.abs(want).max(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_order_kernel_matches_the_cpu_kernel_in_host_emulation(emulated, dtype):
    """Increasing for real nonnegative rows, Leja's order otherwise (roots of unity, real
    nodes of both signs), the same permutation as the Numba kernel; rows in several blocks."""
    from structlin._cpu import vandermonde as cpu

    rng = np.random.default_rng(3)
    B, n = 131, 9
    x = _cheb(B, n, dtype)
    if np.dtype(dtype).kind != "c":
        x[::2] = np.abs(x[::2]) + np.arange(n) * 1e-3  # nonnegative rows: sorted
    x[5] = _vec(rng, (n,), dtype)
    want = np.empty((B, n), np.int64)
    cpu.vandermonde_order(x, want, np.empty((B, n)))
    got = np.full((B, n), -1, np.int64)
    emulated.vandermonde_order(x, got, np.full((B, n), np.nan))
    np.testing.assert_array_equal(got, want)
    if np.dtype(dtype).kind != "c":
        np.testing.assert_array_equal(got[0], np.argsort(x[0]))


def test_bjorck_pereyra_kernels_flag_repeated_nodes_per_row(emulated):
    x = np.array([[0.0, 1.0, 2.0], [0.5, 1.0, 0.5], [1.0, -1.0, 3.0]])
    b = np.ones((3, 3))
    for name in ("solve_vandermonde", "solve_vandermonde_t"):
        out = np.zeros((3, 3))
        info = np.zeros(3, np.int32)
        getattr(emulated, name)(x, b, out, info)
        np.testing.assert_array_equal(info, [0, 1, 0])
        assert np.isfinite(out[[0, 2]]).all()
    out = np.ones((0, 3))
    emulated.solve_vandermonde(np.ones((0, 3)), np.ones((0, 3)), out, np.ones(0, np.int32))


# ------------------------------------------------------------------ on a real GPU


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_on_gpu(dtype):
    cupy = pytest.importorskip("cupy")
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no driver
        devices = 0
    if devices == 0:
        pytest.skip("no CUDA device")
    from structlin.gpu import vandermonde as gv

    for B, n, m in [*SHAPES, (64, 32, 8192)]:
        rng = np.random.default_rng(B + n + m)
        x = _nodes(rng, (B, n), dtype)
        v = _vec(rng, (B, n), dtype)
        w = _vec(rng, (B, m), dtype)
        out = cupy.full((B, m), np.nan, dtype)
        gv.vandermonde(cupy.asarray(x), cupy.asarray(v), out)
        P = _powers(x, m)
        _close(cupy.asnumpy(out), np.einsum("bij,bj->bi", P, v.astype(np.clongdouble)),
               np.abs(v).sum(axis=1).max(), dtype)
        o = cupy.full((B, n), np.nan, dtype)
        gv.vandermonde_t(cupy.asarray(x), cupy.asarray(w), o)
        _close(cupy.asnumpy(o), np.einsum("bij,bi->bj", P, w.astype(np.clongdouble)),
               np.abs(w).sum(axis=1).max(), dtype)
    for B, n in [(1, 1), (3, 7), (300, 16)]:
        x = _cheb(B, n, dtype)
        b = _vec(np.random.default_rng(B + n), (B, n), dtype)
        V = np.power(x.astype(np.complex128)[:, None, :], np.arange(n)[None, :, None])
        for name, M in (("solve_vandermonde", V),
                        ("solve_vandermonde_t", np.swapaxes(V, 1, 2))):
            out = cupy.full((B, n), np.nan, dtype)
            info = cupy.full(B, 7, np.int32)
            getattr(gv, name)(cupy.asarray(x), cupy.asarray(b), out, info)
            np.testing.assert_array_equal(cupy.asnumpy(info), 0)
            want = np.linalg.solve(M, b.astype(np.complex128)[..., None])[..., 0]
            _close(cupy.asnumpy(out), want, np.abs(want).max(), dtype)
