"""The SSD CUDA kernels (``structlin/gpu/ssd.cu``) run in the host emulator.

:mod:`tests.cuda_emulator` compiles the source with the host C++ compiler and the real launcher
of :mod:`structlin.gpu.ssd` drives it through NumPy arrays. The contract function is compared
with the Numba kernel of :mod:`structlin._cpu.ssd` (itself tested against the recurrence in
``tests/test_ssd.py``), in both directions, for chunk sizes 1, not dividing the length, equal
to it; several groups; ``p`` and ``n`` below and above the 16 x 32 weight tile. Then
:func:`structlin.ssd`, :func:`structlin.ssd_vjp` (four scans with exchanged roles) and
:func:`structlin.quasiseparable_multiply` run end to end on the emulated kernels. NVRTC
compilation (compute_80 and compute_90) is checked by ``tests/test_gpu_compile.py``.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from structlin._cpu import ssd as cpu
from tests import cuda_emulator as emu

NS = "emu_ssd"
REAL_CODES = {"float": "f32", "double": "f64"}

_KERNELS = {
    "ssd_cumsum": ("void* a, void* u, void* tot, long long tasks, int l, int h, int chunk, "
                   "int nc, int reverse", "a, u, tot, tasks, l, h, chunk, nc, reverse"),
    "ssd_block_product": ("void* P, int hp, void* Q, int hq, int wpq, void* V, int hv, int wv, "
                          "void* u, void* out, int l, int h, int chunk, int nc, int reverse",
                          "P, hp, Q, hq, wpq, V, hv, wv, u, out, l, h, chunk, nc, reverse"),
    "ssd_chunk_state": ("void* x, void* b, void* u, void* states, int l, int h, int g, int p, "
                        "int n, int chunk, int nc, int reverse",
                        "x, b, u, states, l, h, g, p, n, chunk, nc, reverse"),
    "ssd_pass": ("void* s0, void* tot, void* states, void* s_final, long long entries, int nc, "
                 "int pn, int reverse", "s0, tot, states, s_final, entries, nc, pn, reverse"),
    "ssd_state_term": ("void* c, int g, int n, void* states, void* u, void* y, int l, int h, "
                       "int p, int chunk, int nc, int reverse",
                       "c, g, n, states, u, y, l, h, p, chunk, nc, reverse"),
}


def _cast(params: str, args: str, t: str) -> str:
    kinds = {p.split()[-1]: p.split()[0] for p in params.split(", ")}
    return ", ".join(f"({t}*){a}" if kinds[a] == "void*" else a for a in args.split(", "))


def _emulator_source() -> str:
    entries = []
    for t, code in REAL_CODES.items():
        for name, (params, args) in _KERNELS.items():
            entries.append(emu.entry_point(f"{name}_{code}", params,
                                           f"{NS}::{name}<{t}>({_cast(params, args, t)})"))
    return emu.emulator_source(emu.kernel_namespace("ssd", NS), entries=entries,
                               includes=["#include <cmath>"])


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """:mod:`structlin.gpu.ssd` with its launches running on the host emulator."""
    lib = emu.compile_library(tmp_path_factory, "emu_ssd", _emulator_source())
    with emu.emulated_launcher("ssd", emu.ctypes_launcher(lib)) as gpu:
        yield gpu


def _data(nb, l, h, g, p, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((nb, l, h, p)).astype(dtype)
    a = (-rng.uniform(0, 1, (nb, l, h))).astype(dtype)
    b = rng.standard_normal((nb, l, g, n)).astype(dtype)
    c = rng.standard_normal((nb, l, g, n)).astype(dtype)
    s0 = rng.standard_normal((nb, h, n, p)).astype(dtype)  # the kernels' (n, p) layout
    return x, a, b, c, s0


def _outputs(x, b):
    nb, _l, h, p = x.shape
    return np.full_like(x, np.nan), np.full((nb, h, b.shape[3], p), np.nan, x.dtype)


def _close(got, want, dtype):
    assert np.isfinite(got).all(), "an output entry was not written (or is not finite)"
    tol = 2e-5 if np.dtype(dtype) == np.float32 else 1e-12
    err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-300)
    assert err < tol, f"relative error {err:.2e}"


# (nb, l, h, g, p, n, chunk): chunk 1, chunks not dividing l, one chunk, l above a 16-row tile,
# a chunk above the 32-column tile, widths above the tiles
SHAPES = [(1, 5, 1, 1, 2, 3, 1), (2, 11, 4, 2, 3, 5, 4), (1, 37, 2, 1, 5, 2, 37),
          (1, 40, 2, 2, 33, 17, 36), (1, 9, 3, 3, 1, 1, 20)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reverse", [0, 1])
def test_chunk_scan_matches_the_cpu_kernel(emulated, shape, dtype, reverse):
    nb, l, h, g, p, n, chunk = shape
    chunk = min(chunk, l)
    x, a, b, c, s0 = _data(nb, l, h, g, p, n, dtype)
    want = _outputs(x, b)
    cpu.chunk_scan(x, a, b, c, s0, chunk, reverse, *want)
    got = _outputs(x, b)
    emulated.chunk_scan(x, a, b, c, s0, chunk, reverse, *got)
    for gv, wv in zip(got, want, strict=True):
        _close(gv, wv, dtype)


def test_the_public_functions_run_on_the_emulated_kernels(emulated, monkeypatch):
    public = importlib.import_module("structlin.ssd")  # the function shadows the name
    from structlin.semiseparable import quasiseparable_multiply, quasiseparable_to_dense
    from tests.test_ssd import problem

    X, A, B, C, S0 = problem(nb=1, l=13, h=2, g=1, p=3, n=4)
    A[0, 4, 1] = -np.inf  # a reset step: clamped, no NaN
    G = np.random.default_rng(1).standard_normal(X.shape)
    want_y = public.ssd(X, A, B, C, 5, initial_states=S0)
    want = public.ssd_vjp(X, A, B, C, 5, G, initial_states=S0, grad_final_states=S0)
    rng = np.random.default_rng(2)
    qs = [-rng.uniform(0, 1, 9), *rng.standard_normal((2, 9, 2)), -rng.uniform(0, 1, 9),
          *rng.standard_normal((2, 9, 3)), rng.standard_normal(9)]
    x = rng.standard_normal((9, 2))
    monkeypatch.setattr(public, "kernels", lambda xp, name: emulated)
    _close(public.ssd(X, A, B, C, 5, initial_states=S0), want_y, np.float64)
    got = public.ssd_vjp(X, A, B, C, 5, G, initial_states=S0, grad_final_states=S0)
    for gv, wv in zip(got, want, strict=True):
        _close(gv, wv, np.float64)
    _close(quasiseparable_multiply(*qs, x, chunk_size=4), quasiseparable_to_dense(*qs) @ x,
           np.float64)


@pytest.mark.gpu
def test_the_launchers_on_a_gpu():
    cupy = pytest.importorskip("cupy")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception:
        pytest.skip("no CUDA device")
    import structlin as sl
    from tests.test_ssd import problem

    X, A, B, C, S0 = problem(nb=2, l=70, h=4, g=2, p=8, n=6, dtype=np.float32)
    want = sl.ssd(X, A, B, C, 16, initial_states=S0)
    got = sl.ssd(*(cupy.asarray(t) for t in (X, A, B, C)), 16,
                 initial_states=cupy.asarray(S0))
    _close(cupy.asnumpy(got), want, np.float32)
