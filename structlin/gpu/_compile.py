"""Compiling and launching the CUDA sources of :mod:`structlin.gpu`.

Two paths share one source loader:

- :func:`get_module` compiles ``<name>.cu`` with NVRTC through :class:`cupy.RawModule`
  (cached per source and name expressions) for launching on a GPU;
- :func:`compile_ptx` compiles the same text to PTX with NVRTC alone -- no GPU, no driver --
  so that the CPU test suite checks that every kernel template instantiates.

Kernels are templated on the element type; :func:`type_name` gives the C++ name of a NumPy
dtype and each launcher module lists the instantiations it uses in ``NAME_EXPRESSIONS``.
The launch helpers (:func:`sm_count`, :func:`n_tiles`, :func:`launch`) are shared so that a
launcher only computes its tile geometry.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

_DIR = Path(__file__).resolve().parent
_COMMON = "_common.cuh"
_INCLUDE_COMMON = f'#include "{_COMMON}"'

#: NVRTC options shared by both paths
OPTIONS = ("-std=c++17",)

_TYPE_NAMES = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.complex64): "sl::complex<float>",
    np.dtype(np.complex128): "sl::complex<double>",
}

#: shared memory a block may use without opting in
DEFAULT_SMEM_BYTES = 48 * 1024


def type_name(dtype: Any) -> str:
    """Return the C++ element type used in the kernel templates for ``dtype``."""
    try:
        return _TYPE_NAMES[np.dtype(dtype)]
    except KeyError:
        raise TypeError(
            f"dtype must be float32, float64, complex64 or complex128, got {np.dtype(dtype)}"
        ) from None


def instantiations(template: str) -> tuple[str, ...]:
    """Return ``template<T>`` for the four kernel element types."""
    return tuple(f"{template}<{t}>" for t in _TYPE_NAMES.values())


def load_source(name: str) -> str:
    """Return the text of ``<name>.cu`` with ``_common.cuh`` inlined."""
    text = (_DIR / f"{name}.cu").read_text(encoding="utf-8")
    if _INCLUDE_COMMON in text:
        common = (_DIR / _COMMON).read_text(encoding="utf-8")
        lineno = text[: text.index(_INCLUDE_COMMON)].count("\n") + 2
        text = text.replace(_INCLUDE_COMMON, f'{common}\n#line {lineno} "{name}.cu"', 1)
    return text


def all_sources() -> dict[str, tuple[str, ...]]:
    """Return ``{name: name_expressions}`` for every ``.cu`` file in :mod:`structlin.gpu`.

    The name expressions come from ``NAME_EXPRESSIONS`` in the launcher module of the same
    name; a source without a launcher is an error.
    """
    out = {}
    for path in sorted(_DIR.glob("*.cu")):
        launcher = importlib.import_module(f"structlin.gpu.{path.stem}")
        out[path.stem] = tuple(launcher.NAME_EXPRESSIONS)
    return out


@functools.cache
def get_module(name: str, name_expressions: tuple[str, ...]) -> Any:
    """Return the compiled :class:`cupy.RawModule` of ``<name>.cu`` (cached)."""
    import cupy

    _preload_nvrtc_wheel()
    return cupy.RawModule(
        code=load_source(name), options=OPTIONS, name_expressions=name_expressions
    )


@functools.cache
def get_kernel(name: str, name_expressions: tuple[str, ...], expression: str) -> Any:
    """Return the kernel ``expression`` (one of ``name_expressions``) of ``<name>.cu``."""
    return get_module(name, name_expressions).get_function(expression)


@functools.cache
def sm_count(device_id: int) -> int:
    """Number of streaming multiprocessors of a device (cached: one driver query per device)."""
    import cupy

    return int(cupy.cuda.Device(device_id).attributes["MultiProcessorCount"])


def n_tiles(batch: int, n: int, k0: int, k1: int, wb: int, rb: int) -> int:
    """Number of tiles (= blocks) of a pass: row groups x high parts x column groups.

    The tile layout is the one of ``sl::Tile`` in ``_common.cuh``: ``2**rb`` rows,
    ``2**(k1 - k0)`` butterfly positions ``2**k0`` apart, ``2**wb`` consecutive columns.
    """
    return ((batch + (1 << rb) - 1) >> rb) * (n >> k1) * ((1 << k0) >> wb)


# (id of a kernel from the get_kernel cache, device id) -> shared memory opted in to
_opted_in: dict[tuple[int, int], int] = {}


def launch(kernel: Any, blocks: int, threads: int, args: tuple, smem_bytes: int) -> None:
    """Launch ``kernel`` on a 1-D grid, opting in to more than 48 KiB of shared memory."""
    if smem_bytes > DEFAULT_SMEM_BYTES:
        import cupy

        key = (id(kernel), cupy.cuda.Device().id)
        if _opted_in.get(key, 0) < smem_bytes:
            kernel.max_dynamic_shared_size_bytes = smem_bytes
            _opted_in[key] = smem_bytes
    kernel((blocks,), (threads,), args, shared_mem=smem_bytes)


# --------------------------------------------------------------------------- compile only


class CompileError(RuntimeError):
    """NVRTC rejected a source; the message carries the NVRTC log."""


@functools.lru_cache(maxsize=1)
def _preload_nvrtc_wheel() -> None:
    """Load the ``nvidia-cuda-nvrtc-cu12`` wheel's libraries globally, if it is installed.

    ``libnvrtc-builtins`` first, then ``libnvrtc``: a later ``dlopen("libnvrtc.so.12")`` by
    CuPy then resolves to them on machines without a CUDA toolkit. Without the wheel, CuPy
    looks for a system NVRTC as usual.
    """
    for site in map(Path, sys.path):
        lib = site / "nvidia" / "cuda_nvrtc" / "lib"
        if not lib.is_dir():
            continue
        builtins = sorted(p for p in lib.glob("libnvrtc-builtins.so*") if ".alt." not in p.name)
        main = sorted(p for p in lib.glob("libnvrtc.so*") if ".alt." not in p.name)
        try:
            for path in [*builtins, *main]:
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        except OSError:  # a broken wheel: leave the choice of NVRTC to CuPy
            pass
        return


def _nvrtc() -> Any:
    """Return CuPy's NVRTC binding (``cupy_backends.cuda.libs.nvrtc``), NVRTC preloaded."""
    _preload_nvrtc_wheel()
    from cupy_backends.cuda.libs import nvrtc

    return nvrtc


def compile_ptx(
    name: str, arch: str = "compute_90", name_expressions: tuple[str, ...] = ()
) -> tuple[str, str]:
    """Compile ``<name>.cu`` to PTX for virtual architecture ``arch`` without a GPU.

    Returns ``(ptx, log)``; ``log`` holds NVRTC's warnings (empty when there are none).
    Raises :class:`CompileError` with the NVRTC log when compilation fails.
    """
    nvrtc = _nvrtc()
    prog = nvrtc.createProgram(load_source(name), f"{name}.cu", [], [])
    try:
        for expr in name_expressions:
            nvrtc.addNameExpression(prog, expr)
        try:
            nvrtc.compileProgram(prog, [f"-arch={arch}", *OPTIONS])
        except nvrtc.NVRTCError as exc:
            log = nvrtc.getProgramLog(prog)
            raise CompileError(f"NVRTC failed on {name}.cu for {arch}: {exc}\n{log}") from None
        for expr in name_expressions:
            nvrtc.getLoweredName(prog, expr)
        return nvrtc.getPTX(prog), nvrtc.getProgramLog(prog).strip("\x00").strip()
    finally:
        nvrtc.destroyProgram(prog)
