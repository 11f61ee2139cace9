"""CUDA sources without a GPU: the NVRTC compile-only path and the host emulator of the kernels.

The CPU test suite checks every ``.cu`` file of :mod:`structlin.gpu` twice. NVRTC compiles it
to PTX (:func:`nvrtc_sources`, used by ``tests/test_gpu_compile.py``), and the host C++ compiler
builds the same text into a shared library that *runs* the kernels: a small shim (:data:`SHIM`)
runs one ``std::thread`` per CUDA thread, ``std::barrier`` for ``__syncthreads``, the blocks of a
grid one after another on the same threads, and fills shared memory with NaN bytes so that
reading unwritten shared memory shows. The real launchers of ``structlin.gpu.<family>`` then
drive it on NumPy arrays, with CuPy replaced by NumPy and each kernel launch by a ``ctypes``
call. This checks index arithmetic, pass schedules and barriers -- not performance,
warp-level behaviour or memory ordering.

A family's emulator test (``tests/test_gpu_compile_<family>.py``) writes only its ``extern "C"``
entry points, one per kernel instantiation, and a fixture::

    from tests import cuda_emulator as emu

    def _source() -> str:
        ns = "emu_mine"
        entries = [
            emu.entry_point(f"my_kernel_{code}", "void* x, void* y, long long n",
                            f"{ns}::my_kernel<{emu.qualified(ns, t)}>("
                            f"({emu.qualified(ns, t)}*)x, ({emu.qualified(ns, t)}*)y, n)")
            for t, code in emu.TYPE_CODES.items()
        ]
        return emu.emulator_source(emu.kernel_namespace("mine", ns), entries=entries)

    @pytest.fixture(scope="module")
    def emulated(tmp_path_factory):
        lib = emu.compile_library(tmp_path_factory, "emu_mine", _source())
        with emu.emulated_launcher("mine", emu.ctypes_launcher(lib)) as gpu:
            yield gpu  # structlin.gpu.mine, running on the host

The launcher asks for ``my_kernel<float>`` (its name expression: the patched ``get_kernel``
returns the expression itself) and :func:`ctypes_launcher` calls ``my_kernel_f32`` with
``(blocks, threads, shared bytes, *args)``: an entry point is named ``<template>_<type code>``
(:data:`TYPE_CODES`) and takes the kernel's arguments after those three, pointers as
``void*``, ``int32`` as ``int``, ``int64`` as ``long long``, ``float64`` as ``double``.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import shutil
import subprocess
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pytest

from structlin.gpu import _compile

__all__ = [
    "SHARED_DECL",
    "SHIM",
    "TYPE_CODES",
    "compile_library",
    "ctypes_launcher",
    "emulated_launcher",
    "emulator_source",
    "entry_point",
    "kernel_namespace",
    "numpy_as_cupy",
    "nvrtc_sources",
    "qualified",
]

#: the C++ prelude that turns CUDA kernels into host code (see the module docstring); a launch
#: is ``emu_launch(blocks, threads, shared_bytes, body)``, ``body`` run by every thread of
#: every block
SHIM = r"""
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

#: the kernels' C++ element types and the suffix of their entry points
TYPE_CODES = {"float": "f32", "double": "f64", "sl::complex<float>": "c64",
              "sl::complex<double>": "c128"}

#: the dynamic shared memory declaration of the sources (``_common.cuh``), which the emulator
#: points at the shim's per-launch buffer
SHARED_DECL = "extern __shared__ __align__(16) unsigned char sl_shared[];"


def nvrtc_sources(*, module_level: bool = False) -> tuple[Any, dict[str, tuple[str, ...]]]:
    """Return ``(structlin.gpu._compile, {source name: name expressions})`` for NVRTC.

    Skips the calling test (the calling module with ``module_level=True``) when CuPy's NVRTC
    binding or the launchers (which import CuPy) cannot be imported.
    """
    try:
        _compile._nvrtc()
        sources = _compile.all_sources()  # imports the launchers, hence CuPy
    except ImportError as exc:  # neither CuPy's NVRTC binding nor the NVRTC wheel
        pytest.skip(f"CuPy's NVRTC binding is not importable: {exc}",
                    allow_module_level=module_level)
    return _compile, sources


def qualified(namespace: str, ctype: str) -> str:
    """The element type ``ctype`` as named outside ``namespace`` (``sl::complex`` lives in
    it, the real types do not)."""
    return f"{namespace}::{ctype}" if ctype.startswith("sl::") else ctype


def kernel_namespace(
    name: str,
    namespace: str,
    *,
    prelude: str = "",
    shared: bool = True,
    replace: Iterable[tuple[str, str]] = (),
) -> str:
    """The text of ``structlin/gpu/<name>.cu`` (``_common.cuh`` inlined) wrapped in
    ``namespace``, ready to follow :data:`SHIM`.

    ``prelude`` opens the namespace (e.g. ``"using std::sqrt;"``); with ``shared`` the source
    must declare :data:`SHARED_DECL`, which then names the shim's buffer; ``replace`` lists
    textual ``(old, new)`` edits a source needs on the host compiler.
    """
    src = _compile.load_source(name).replace("#pragma once", "")
    if shared:
        assert SHARED_DECL in src, f"{name}.cu does not declare {SHARED_DECL}"
        src = src.replace(SHARED_DECL, "#define sl_shared sl_shared_ptr")
    for old, new in replace:
        src = src.replace(old, new)
    head = f"{prelude}\n" if prelude else ""
    return f"namespace {namespace} {{\n{head}{src}\n}}"


def entry_point(name: str, params: str, call: str) -> str:
    """One ``extern "C"`` entry point, ``void name(long long emu_blocks, int emu_threads,
    long long emu_smem, params)``, running the kernel call ``call`` on ``emu_blocks`` blocks of
    ``emu_threads`` threads with ``emu_smem`` bytes of shared memory (the three arguments
    :func:`ctypes_launcher` passes first; ``params`` are the kernel's)."""
    return (f"void {name}(long long emu_blocks, int emu_threads, long long emu_smem, "
            f"{params}) {{\n"
            f"    emu_launch(emu_blocks, emu_threads, emu_smem, [=] {{ {call}; }});\n}}")


def emulator_source(*code: str, entries: Iterable[str], includes: Iterable[str] = ()) -> str:
    """The whole emulator translation unit: ``includes``, :data:`SHIM`, ``code`` (kernel
    namespaces from :func:`kernel_namespace`, using-declarations) and the ``extern "C"``
    block of ``entries`` (from :func:`entry_point`, or written out)."""
    return "\n".join([*includes, SHIM, *code, 'extern "C" {', *entries, "}"])


def compile_library(tmp_path_factory: Any, name: str, source: str) -> ctypes.CDLL:
    """Compile an emulator source with the host C++ compiler (C++20) and load it; skip the
    calling test when there is no compiler."""
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


def ctypes_launcher(
    lib: ctypes.CDLL, scalars: tuple[type, ...] = (np.int32, np.int64, np.float64)
) -> Callable[[str, int, int, tuple, int], None]:
    """A ``launch(kernel, blocks, threads, args, smem)`` replacement that calls the entry point
    ``<template>_<type code>`` of ``lib`` for the name expression ``template<T>``: arrays
    (C-contiguous) and ``None`` as pointers, ``scalars`` as C ints, long longs and doubles."""
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
        getattr(lib, f"{template}_{TYPE_CODES[t]}")(*cargs)

    return launch


def numpy_as_cupy(device_id: int = 0) -> types.SimpleNamespace:
    """A stand-in for the ``cupy`` module of a launcher: NumPy's functions and ``ndarray``,
    ``asnumpy``, and ``cuda.Device()`` with id ``device_id``."""
    public = {n: getattr(np, n) for n in dir(np) if not n.startswith("_")}
    return types.SimpleNamespace(
        **public,
        asnumpy=np.asarray,
        cuda=types.SimpleNamespace(Device=lambda *_: types.SimpleNamespace(id=device_id)),
    )


@contextlib.contextmanager
def emulated_launcher(
    name: str,
    launch: Callable[[str, int, int, tuple, int], None],
    *,
    cupy: Any = None,
    **attributes: Any,
) -> Iterator[types.ModuleType]:
    """Yield the launcher module ``structlin.gpu.<name>`` running on the emulator.

    Its ``cupy`` becomes ``cupy`` (default :func:`numpy_as_cupy`), ``get_kernel`` returns the
    name expression and ``launch`` is ``launch`` (from :func:`ctypes_launcher`, or a wrapper of
    it); ``attributes`` set other module attributes for the duration (``sm_count``, tile
    sizes). Everything is restored on exit. Skips when the launcher cannot be imported (it
    imports CuPy).
    """
    pytest.importorskip("cupy", reason="the launchers import CuPy")
    module = importlib.import_module(f"structlin.gpu.{name}")
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(module, "cupy", numpy_as_cupy() if cupy is None else cupy)
        mp.setattr(module, "get_kernel", lambda name, exprs, expr: expr)
        mp.setattr(module, "launch", launch)
        for attr, value in attributes.items():
            mp.setattr(module, attr, value)
        yield module
    finally:
        mp.undo()
