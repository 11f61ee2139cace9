"""Every CUDA source compiles with NVRTC for each target architecture (no GPU needed)."""

from __future__ import annotations

import numpy as np
import pytest

ARCHS = ("compute_80", "compute_90")


def _sources():
    try:
        from structlin.gpu import _compile

        _compile._nvrtc()
        sources = _compile.all_sources()  # imports the launchers, hence CuPy
    except ImportError as exc:  # neither CuPy's NVRTC binding nor the NVRTC wheel
        pytest.skip(f"CuPy's NVRTC binding is not importable: {exc}", allow_module_level=True)
    return _compile, sources


_compile, SOURCES = _sources()


def test_every_source_has_name_expressions():
    assert SOURCES, "no .cu files found in structlin/gpu"
    for name, exprs in SOURCES.items():
        assert exprs, f"{name}.cu: its launcher lists no NAME_EXPRESSIONS"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_source_compiles_to_ptx_without_warnings(name, arch):
    ptx, log = _compile.compile_ptx(name, arch=arch, name_expressions=SOURCES[name])
    assert ".entry" in (ptx.decode() if isinstance(ptx, bytes) else ptx)
    assert "warning" not in log.lower(), log


def test_compile_error_carries_the_nvrtc_log(tmp_path, monkeypatch):
    bad = tmp_path / "broken.cu"
    bad.write_text("__global__ void k(float* x) { x[0] = undefined_name; }\n")
    monkeypatch.setattr(_compile, "_DIR", tmp_path)
    with pytest.raises(_compile.CompileError, match="undefined_name"):
        _compile.compile_ptx("broken", name_expressions=("k",))


def test_type_name_rejects_other_dtypes():
    import numpy as np

    assert _compile.type_name(np.complex64) == "sl::complex<float>"
    with pytest.raises(TypeError, match="float16"):
        _compile.type_name(np.float16)


# ------------------------------------------------------------------ host emulation
# The kernels can also *run* without a GPU: the same source, compiled by the host C++ compiler
# with a small shim (one std::thread per CUDA thread, std::barrier for __syncthreads, blocks one
# after another on the same threads, shared memory filled with NaN bytes so that reading
# unwritten shared memory shows), driven by the real launchers through NumPy arrays. It checks
# index arithmetic, pass schedules and barriers -- not performance, warp-level behaviour or
# memory ordering.

_SHIM = r"""
#include <atomic>
#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>
struct emu_dim3 { unsigned x = 1, y = 1, z = 1; };
thread_local emu_dim3 threadIdx, blockIdx;
emu_dim3 blockDim, gridDim;
static std::barrier<>* emu_bar = nullptr;
static unsigned char* sl_shared_ptr = nullptr;
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n)
#define __shared__
inline void __syncthreads() { emu_bar->arrive_and_wait(); }
inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
inline double atomicAdd(double* p, double v) { return std::atomic_ref<double>(*p).fetch_add(v); }
static void emu_launch(long long blocks, int threads, long long smem,
                       const std::function<void()>& body) {
    if (threads < 1 || threads > 512 || smem < 0 || smem > 227 * 1024) {
        fprintf(stderr, "bad launch: %d threads, %lld bytes\n", threads, smem);
        abort();
    }
    blockDim.x = threads;
    gridDim.x = (unsigned)blocks;
    std::vector<unsigned char> mem(smem + 16, 0xFF);
    sl_shared_ptr = mem.data();
    std::barrier<> bar(threads);
    emu_bar = &bar;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            threadIdx.x = t;
            for (long long b = 0; b < blocks; ++b) {
                blockIdx.x = (unsigned)b;
                body();
                bar.arrive_and_wait();
                if (t == 0) memset(mem.data(), 0xFF, mem.size());
                bar.arrive_and_wait();
            }
        });
    for (auto& th : pool) th.join();
}
"""

_EMU_TYPES = {"float": "f32", "double": "f64", "sl::complex<float>": "c64",
              "sl::complex<double>": "c128"}
_SHARED_DECL = "extern __shared__ __align__(16) unsigned char sl_shared[];"


def _emulator_source():
    parts = [_SHIM]
    for name in ("butterfly", "hadamard"):
        src = _compile.load_source(name).replace("#pragma once", "")
        assert _SHARED_DECL in src
        src = src.replace(_SHARED_DECL, "#define sl_shared sl_shared_ptr")
        parts.append(f"namespace emu_{name} {{\n{src}\n}}")
    parts.append('extern "C" {')
    for t, code in _EMU_TYPES.items():
        tb = "emu_butterfly::" + t if t.startswith("sl::") else t
        th = "emu_hadamard::" + t if t.startswith("sl::") else t
        parts.append(f"""
void butterfly_pass_{code}(long long nb, int nt, long long sm, void* x, void* y, void* tw,
        long long batch, long long n, int k0, int k1, int wb, int rb, int rc, int inc) {{
    emu_launch(nb, nt, sm, [=] {{ emu_butterfly::butterfly_pass<{tb}>(
        ({tb}*)x, ({tb}*)y, ({tb}*)tw, batch, n, k0, k1, wb, rb, rc, inc); }});
}}
void butterfly_pass_vjp_{code}(long long nb, int nt, long long sm, void* x, void* g, void* gx,
        void* tw, void* gtw, long long batch, long long n, int k0, int k1, int wb, int rb,
        int rc, int inc) {{
    emu_launch(nb, nt, sm, [=] {{ emu_butterfly::butterfly_pass_vjp<{tb}>(
        ({tb}*)x, ({tb}*)g, ({tb}*)gx, ({tb}*)tw, ({tb}*)gtw, batch, n, k0, k1, wb, rb, rc,
        inc); }});
}}
void fwht_pass_{code}(long long nb, int nt, long long sm, void* x, void* y, long long batch,
        long long n, int k0, int k1, int wb, int rb) {{
    emu_launch(nb, nt, sm, [=] {{ emu_hadamard::fwht_pass<{th}>(
        ({th}*)x, ({th}*)y, batch, n, k0, k1, wb, rb); }});
}}""")
    parts.append("}")
    return "\n".join(parts)


def ctypes_launcher(lib, scalars=(np.int32, np.int64, np.float64)):
    """A ``launch(kernel, blocks, threads, args, smem)`` replacement that calls the emulated
    ``<template>_<type code>`` entry point of ``lib``: arrays (C-contiguous) and ``None`` as
    pointers, ``scalars`` as C ints, long longs and doubles."""
    import ctypes

    c_of = {np.int32: ctypes.c_int, np.int64: ctypes.c_longlong, np.float64: ctypes.c_double}

    def launch(kernel, blocks, threads, args, smem):
        template, t = kernel[:-1].split("<", 1)
        cargs = [ctypes.c_longlong(blocks), ctypes.c_int(threads), ctypes.c_longlong(smem)]
        for a in args:
            if a is None:
                cargs.append(ctypes.c_void_p(None))
            elif isinstance(a, np.ndarray):
                assert a.flags.c_contiguous
                cargs.append(ctypes.c_void_p(a.ctypes.data))
            else:
                assert type(a) in scalars, type(a)
                cargs.append(c_of[type(a)](a.item()))
        getattr(lib, f"{template}_{_EMU_TYPES[t]}")(*cargs)

    return launch


def compile_emulator(tmp_path_factory, name: str, source: str):
    """Compile an emulator source (the shim plus kernels) with the host C++ compiler and load it;
    skip the calling test when there is no compiler."""
    import ctypes
    import shutil
    import subprocess

    cxx = shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no host C++ compiler for the kernel emulation")
    d = tmp_path_factory.mktemp(name)
    (d / "emu.cpp").write_text(source)
    proc = subprocess.run(
        [cxx, "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-w",
         str(d / "emu.cpp"), "-o", str(d / "emu.so")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return ctypes.CDLL(str(d / "emu.so"))


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """Patch the launchers to run on the host emulator; yields (butterfly, hadamard)."""
    import types

    import numpy as np

    lib = compile_emulator(tmp_path_factory, "emu", _emulator_source())

    launch = ctypes_launcher(lib)

    from structlin.gpu import butterfly, hadamard

    fake_cupy = types.SimpleNamespace(
        empty_like=np.empty_like, zeros_like=np.zeros_like, ndarray=np.ndarray,
        cuda=types.SimpleNamespace(Device=lambda: types.SimpleNamespace(id=0)),
    )
    mp = pytest.MonkeyPatch()
    for mod in (butterfly, hadamard):
        mp.setattr(mod, "cupy", fake_cupy)
        mp.setattr(mod, "get_kernel", lambda name, exprs, expr: expr)
        mp.setattr(mod, "launch", launch)
    mp.setattr(hadamard, "sm_count", lambda device: 4)
    yield butterfly, hadamard
    mp.undo()


def _emu_data(shape, dtype, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return (a / np.sqrt(2)).astype(dtype)


def _emu_ref_factor(tw_k, k, y):
    import numpy as np

    b, n = y.shape
    s = 1 << k
    yy = y.reshape(b, n // (2 * s), 2, s)
    t = tw_k.reshape(n // (2 * s), s, 2, 2)
    out0 = t[..., 0, 0] * yy[:, :, 0] + t[..., 0, 1] * yy[:, :, 1]
    out1 = t[..., 1, 0] * yy[:, :, 0] + t[..., 1, 1] * yy[:, :, 1]
    return np.stack([out0, out1], axis=2).reshape(b, n)


def _emu_close(got, want, dtype):
    import numpy as np

    tol = 1e-5 if dtype in ("float32", "complex64") else 1e-12
    err = np.linalg.norm((got - want).ravel()) / max(np.linalg.norm(want.ravel()), 1e-300)
    assert err < tol, f"relative error {err:.2e}"


EMU_DTYPES = ("float32", "float64", "complex64", "complex128")


@pytest.mark.parametrize("dtype", EMU_DTYPES)
@pytest.mark.parametrize("batch,L", [(3, 1), (5, 4), (9, 7), (2, 11), (1, 15)])
def test_fwht_kernel_in_host_emulation(emulated, batch, L, dtype):
    import numpy as np
    import scipy.linalg

    _, hadamard = emulated
    n = 1 << L
    x = _emu_data((batch, n), dtype, L)
    y = hadamard.fwht(x)
    if n <= 2048:
        want = x.astype(np.complex128) @ scipy.linalg.hadamard(n).T
    else:
        want = x.astype(np.complex128)
        for k in range(L):
            want = _emu_ref_factor(np.tile([[1.0, 1.0], [1.0, -1.0]], (n // 2, 1, 1)), k, want)
    _emu_close(y, want, dtype)


# (8, 11): two forward passes for 8-byte and 16-byte types; (1, 15): two for float32 too
BUTTERFLY_CASES = [
    (batch, L, dtype)
    for batch, L in [(3, 1), (20, 5), (9, 9), (8, 11)]
    for dtype in EMU_DTYPES
] + [(1, 15, "float32")]


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("batch,L,dtype", BUTTERFLY_CASES)
def test_butterfly_kernels_in_host_emulation(emulated, batch, L, dtype, increasing):
    import numpy as np

    butterfly, _ = emulated
    n = 1 << L
    tw = _emu_data((L, n // 2, 2, 2), dtype, 1)
    x = _emu_data((batch, n), dtype, 2)
    g = _emu_data((batch, n), dtype, 3)
    order = list(range(L)) if increasing else list(range(L - 1, -1, -1))
    wide = tw.astype(np.complex128)
    inputs, y = [], x.astype(np.complex128)
    for k in order:
        inputs.append(y)
        y = _emu_ref_factor(wide[k], k, y)
    _emu_close(butterfly.apply(tw, x, increasing), y, dtype)

    gtw_want = np.zeros(tw.shape, dtype=np.complex128)
    h = g.astype(np.complex128)
    for k, u in zip(order[::-1], inputs[::-1], strict=True):
        s = 1 << k
        uu = u.reshape(batch, n // (2 * s), 2, s)
        hh = h.reshape(batch, n // (2 * s), 2, s)
        G = gtw_want[k].reshape(n // (2 * s), s, 2, 2)
        for r in range(2):
            for c in range(2):
                G[..., r, c] = (hh[:, :, r] * np.conj(uu[:, :, c])).sum(axis=0)
        h = _emu_ref_factor(np.conj(np.swapaxes(wide[k], -1, -2)), k, h)
    gtw, gx = butterfly.apply_vjp(tw, x, g, increasing)
    _emu_close(gx, h, dtype)
    _emu_close(gtw, gtw_want, dtype)
