"""The selective-scan CUDA kernels (``structlin/gpu/selective_scan.cu``) run in the host
emulator.

:mod:`tests.cuda_emulator` compiles the source with the host C++ compiler and the real launcher
of :mod:`structlin.gpu.selective_scan` drives it through NumPy arrays; the results are compared
with the CPU kernels of :mod:`structlin._cpu.selective_scan` on the same kernel-layout arrays
(which ``tests/test_selective_scan.py`` checks against ``selective_scan_ref``). Cases: real and
complex states, float32 and float64, B and C time-invariant, shared and grouped, with and
without the gate and softplus, ``l`` not a multiple of the VJP's 64-step chunk, ``b d`` not a
multiple of the block. NVRTC compilation (compute_80 and compute_90) is checked by
``tests/test_gpu_compile.py``. The last test runs the launcher on a real GPU (skipped without
one).
"""

from __future__ import annotations

import numpy as np
import pytest

from structlin._cpu import selective_scan as cpu
from tests import cuda_emulator as emu

NS = "emu_selective_scan"
REAL_OF = {"float": "float", "double": "double", "sl::complex<float>": "float",
           "sl::complex<double>": "double"}


def _emulator_source() -> str:
    entries = []
    for t, code in emu.TYPE_CODES.items():
        s = emu.qualified(NS, t)
        r = REAL_OF[t]
        entries.append(emu.entry_point(
            f"scan_kernel_{code}",
            "void* u, void* delta, void* A, void* B, void* C, void* D, void* z, void* bias, "
            "void* out, void* last, long long nb, int d, long long l, int n, int bB, int gB, "
            "long long lB, int bC, int gC, long long lC, int softplus, int has_z",
            f"{NS}::scan_kernel<{s}>(({r}*)u, ({r}*)delta, ({s}*)A, ({s}*)B, ({s}*)C, ({r}*)D, "
            f"({r}*)z, ({r}*)bias, ({r}*)out, ({s}*)last, nb, d, l, n, bB, gB, lB, bC, gC, lC, "
            f"softplus, has_z)"))
        entries.append(emu.entry_point(
            f"scan_vjp_kernel_{code}",
            "void* u, void* delta, void* A, void* B, void* C, void* D, void* z, void* bias, "
            "void* g, void* gu, void* gdelta, void* gA, void* gB, void* gC, void* gD, void* gz, "
            "void* gbias, void* ck, void* xs, long long nb, int d, long long l, int n, int bB, "
            "int gBn, long long lB, int bC, int gCn, long long lC, int softplus, int has_z",
            f"{NS}::scan_vjp_kernel<{s}>(({r}*)u, ({r}*)delta, ({s}*)A, ({s}*)B, ({s}*)C, ({r}*)D, "
            f"({r}*)z, ({r}*)bias, ({r}*)g, ({r}*)gu, ({r}*)gdelta, ({s}*)gA, ({s}*)gB, "
            f"({s}*)gC, ({r}*)gD, ({r}*)gz, ({r}*)gbias, ({s}*)ck, ({s}*)xs, nb, d, l, n, bB, "
            f"gBn, lB, bC, gCn, lC, softplus, has_z)"))
    return emu.emulator_source(emu.kernel_namespace("selective_scan", NS), entries=entries,
                               includes=["#include <cmath>"])


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """:mod:`structlin.gpu.selective_scan` with its launches running on the host emulator."""
    lib = emu.compile_library(tmp_path_factory, "emu_selective_scan", _emulator_source())
    with emu.emulated_launcher("selective_scan", emu.ctypes_launcher(lib)) as gpu:
        yield gpu


def _inputs(seed, state, b, d, l, n, layout, g=1):
    rng = np.random.default_rng(seed)
    s = np.dtype(state)
    r = s.type(0).real.dtype

    def arr(shape, dtype):
        a = rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            a = a + 1j * rng.standard_normal(shape)
        return np.ascontiguousarray(a.astype(dtype))

    u, delta, z = arr((b, d, l), r), (0.5 * arr((b, d, l), r)).astype(r), arr((b, d, l), r)
    A = -np.exp(0.3 * rng.standard_normal((d, n)))
    if s.kind == "c":
        A = A + 1j * rng.standard_normal((d, n))
    A = np.ascontiguousarray(A.astype(s))
    shape = {"fixed": (1, d, 1, n), "shared": (b, 1, l, n), "grouped": (b, g, l, n)}[layout]
    B, C = arr(shape, s), arr(shape, s)
    D, bias = arr(d, r), (0.3 * arr(d, r)).astype(r)
    return u, delta, A, B, C, D, z, bias


def _close(got, want, dtype):
    assert np.all(np.isfinite(got)), "an output entry was not written (or is not finite)"
    tol = 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11
    err = float(np.max(np.abs(got - want))) / max(float(np.max(np.abs(want))), 1e-300)
    assert err < tol, f"relative error {err:.2e}"


CASES = [  # state dtype, (b, d, l, n), layout, groups, softplus, has_z
    (np.float32, (2, 5, 70, 16), "shared", 1, True, True),
    (np.float64, (1, 6, 67, 3), "grouped", 3, False, True),
    (np.float64, (2, 3, 20, 4), "fixed", 1, True, False),
    (np.complex64, (1, 4, 66, 5), "shared", 1, True, False),
    (np.complex128, (2, 4, 65, 2), "grouped", 2, True, True),
]


@pytest.mark.parametrize("state,size,layout,g,softplus,has_z", CASES)
def test_scan_kernel_in_host_emulation(emulated, state, size, layout, g, softplus, has_z):
    b, d, l, n = size
    u, delta, A, B, C, D, z, bias = _inputs(1, state, b, d, l, n, layout, g)
    r = u.dtype
    out = np.full((b, d, l), np.nan, dtype=r)
    last = np.full((b, d, n), np.nan, dtype=state)
    emulated.scan(u, delta, A, B, C, D, z, bias, softplus, has_z, out, last)
    want_out = np.empty_like(out)
    want_last = np.empty_like(last)
    cpu.scan(u, delta, A, B, C, D, z, bias, softplus, has_z, want_out, want_last)
    _close(out, want_out, state)
    _close(last, want_last, state)


@pytest.mark.parametrize("state,size,layout,g,softplus,has_z", CASES)
def test_scan_vjp_kernel_in_host_emulation(emulated, state, size, layout, g, softplus, has_z):
    b, d, l, n = size
    u, delta, A, B, C, D, z, bias = _inputs(2, state, b, d, l, n, layout, g)
    r = u.dtype
    grad = np.random.default_rng(3).standard_normal((b, d, l)).astype(r)

    def run(mod):
        gu, gdelta = np.full_like(u, np.nan), np.full_like(u, np.nan)
        gz = np.full_like(u, np.nan) if has_z else np.zeros((1, 1, 1), r)
        gA, gB, gC = np.full_like(A, np.nan), np.full_like(B, np.nan), np.full_like(C, np.nan)
        gD, gb = np.full_like(D, np.nan), np.full_like(D, np.nan)
        mod.scan_vjp(u, delta, A, B, C, D, z if has_z else u, bias, softplus, has_z, grad, gu,
                     gdelta, gA, gB, gC, gD, gz, gb)
        return gu, gdelta, gA, gB, gC, gD, gz, gb

    for got, want in zip(run(emulated), run(cpu), strict=True):
        _close(got, want, state)


def test_too_many_states_and_empty_inputs(emulated):
    u = np.ones((1, 2, 3))
    A = -np.ones((2, 17))
    B = np.ones((1, 2, 1, 17))
    with pytest.raises(ValueError, match="at most 16 states"):
        emulated.scan(u, u, A, B, B, np.ones(2), u, np.ones(2), False, False, np.empty_like(u),
                      np.empty((1, 2, 17)))
    e = np.ones((0, 2, 3))
    emulated.scan(e, e, A[:, :3], B[..., :3], B[..., :3], np.ones(2), e, np.ones(2), False,
                  False, np.empty_like(e), np.empty((0, 2, 3)))


# ------------------------------------------------------------------ on a real GPU


@pytest.mark.gpu
@pytest.mark.parametrize("state,size,layout,g,softplus,has_z",
                         [*CASES, (np.float32, (2, 1536, 2048, 16), "shared", 1, True, True)])
def test_kernels_on_gpu(state, size, layout, g, softplus, has_z):
    cupy = pytest.importorskip("cupy")
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no driver
        devices = 0
    if devices == 0:
        pytest.skip("no CUDA device")
    from structlin.gpu import selective_scan as gpu

    b, d, l, n = size
    u, delta, A, B, C, D, z, bias = _inputs(4, state, b, d, l, n, layout, g)
    r = u.dtype
    dev = [cupy.asarray(a) for a in (u, delta, A, B, C, D, z, bias)]
    out = cupy.full((b, d, l), np.nan, dtype=r)
    last = cupy.full((b, d, n), np.nan, dtype=state)
    gpu.scan(*dev[:7], dev[7], softplus, has_z, out, last)
    want_out, want_last = np.empty((b, d, l), r), np.empty((b, d, n), state)
    cpu.scan(u, delta, A, B, C, D, z, bias, softplus, has_z, want_out, want_last)
    _close(cupy.asnumpy(out), want_out, state)
    _close(cupy.asnumpy(last), want_last, state)
