"""The LDR CUDA kernels (``structlin/gpu/ldr.cu``) run in the host emulator.

:mod:`tests.cuda_emulator` compiles the source with the host C++ compiler and the real launcher
of :mod:`structlin.gpu.ldr` drives it on NumPy arrays, against the Numba kernels of
:mod:`structlin._cpu.ldr` (themselves tested through the products in ``tests/test_ldr.py``).
Then the whole subdiagonal product and its VJP run with the emulated kernels and are compared
with the NumPy path. NVRTC compilation (compute_80 and compute_90) is checked by
``tests/test_gpu_compile.py``. The last test runs on a real GPU (skipped without one).
"""

from __future__ import annotations

import numpy as np
import pytest

from structlin import ldr
from structlin._cpu import ldr as cpu
from tests import cuda_emulator as emu
from tests import test_ldr as cpu_tests

try:
    import cupy
except ImportError:  # the conformance classes below need the module only as a namespace
    cupy = None

NS = "emu_ldr"
DTYPES = ("float32", "float64", "complex64", "complex128")


def _emulator_source() -> str:
    entries = []
    for t, code in emu.TYPE_CODES.items():
        q = emu.qualified(NS, t)
        for name, arrays in (("krylov_leaf", 4), ("krylov_t_leaf", 4),
                             ("krylov_grad_leaf", 5)):
            params = ", ".join(f"void* p{i}" for i in range(arrays))
            casts = ", ".join(f"({q}*)p{i}" for i in range(arrays))
            entries.append(emu.entry_point(
                f"{name}_kernel_{code}", f"{params}, int R, int N, int leaf",
                f"{NS}::{name}_kernel<{q}>({casts}, R, N, leaf)"))
        entries.append(emu.entry_point(
            f"linear_scan_kernel_{code}", "void* c, void* d, void* out, int R, int N",
            f"{NS}::linear_scan_kernel<{q}>(({q}*)c, ({q}*)d, ({q}*)out, R, N)"))
    return emu.emulator_source(emu.kernel_namespace("ldr", NS, shared=False), entries=entries)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """:mod:`structlin.gpu.ldr` with its launches running on the host emulator."""
    lib = emu.compile_library(tmp_path_factory, "emu_ldr", _emulator_source())
    with emu.emulated_launcher("ldr", emu.ctypes_launcher(lib)) as gpu:
        yield gpu


def _rows(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _close(got, want, dtype):
    assert np.all(np.isfinite(got))
    tol = 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-12
    err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-300)
    assert err < tol, f"relative error {err:.2e}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("R,N,leaf", [(1, 4, 4), (3, 64, 32), (2, 32, 8)])
def test_leaf_kernels_match_numba_in_host_emulation(emulated, R, N, leaf, dtype):
    rng = np.random.default_rng(R + N + leaf)
    a, u, g, w = (_rows(rng, (R, N), dtype) for _ in range(4))
    for name, args in (("krylov_leaf", (a, u, g)), ("krylov_t_leaf", (a, w, g)),
                       ("krylov_grad_leaf", (a, w, u, g))):
        got = np.zeros((R, N), dtype)
        want = np.zeros((R, N), dtype)
        getattr(emulated, name)(*args, got, leaf)
        getattr(cpu, name)(*args, want, leaf)
        _close(got, want, dtype)
    got = np.full((R, N), np.nan, dtype)
    want = np.empty((R, N), dtype)
    emulated.linear_scan(a, u, got)
    cpu.linear_scan(a, u, want)
    _close(got, want, dtype)


def test_empty_inputs_launch_nothing(emulated):
    out = np.zeros((0, 32))
    emulated.krylov_leaf(out, out, out, out, 32)
    emulated.krylov_t_leaf(out, out, out, out, 32)
    emulated.linear_scan(out, out, out)


@pytest.mark.parametrize("dtype", ("float64", "complex128"))
@pytest.mark.parametrize("n,corners", [(5, (0.0, 0.0)), (100, (0.5, -0.7))])
def test_subdiagonal_product_through_the_emulated_kernels(emulated, n, corners, dtype):
    """The subdiagonal product and VJP with every kernel launch in the emulator equal the
    NumPy (Numba) path."""
    rng = np.random.default_rng(n)
    G, H = _rows(rng, (3, n), dtype), _rows(rng, (3, n), dtype)
    x, g = _rows(rng, (2, n), dtype), _rows(rng, (2, n), dtype)
    kw = {"subdiag_A": 0.8 * _rows(rng, (n - 1,), dtype),
          "subdiag_B": 0.8 * _rows(rng, (n - 1,), dtype), "f_A": corners[0], "f_B": corners[1]}
    want = ldr.ldr_multiply(G, H, x, "subdiagonal", **kw)
    want_vjp = ldr.ldr_multiply_vjp(G, H, x, g, "subdiagonal", **kw)
    mp = pytest.MonkeyPatch()
    mp.setattr(ldr, "kernels", lambda xp, name: emulated)
    try:
        got = ldr.ldr_multiply(G, H, x, "subdiagonal", **kw)
        got_vjp = ldr.ldr_multiply_vjp(G, H, x, g, "subdiagonal", **kw)
    finally:
        mp.undo()
    _close(got, want, dtype)
    for a, b in zip(got_vjp, want_vjp, strict=True):
        _close(a, b, dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ldr.KINDS)
def test_ldr_multiply_on_gpu(kind):
    pytest.importorskip("cupy")
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no driver
        devices = 0
    if devices == 0:
        pytest.skip("no CUDA device")
    from tests.test_ldr import _params

    rng = np.random.default_rng(0)
    n = 300
    G, H, x, g = (rng.standard_normal(s) for s in ((2, n), (2, n), (3, n), (3, n)))
    kw = _params(kind, n, rng, np.float64)
    dev = {k: cupy.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    got = ldr.ldr_multiply(*(cupy.asarray(a) for a in (G, H, x)), kind, **dev)
    _close(cupy.asnumpy(got), ldr.ldr_multiply(G, H, x, kind, **kw), "float64")
    for a, b in zip(ldr.ldr_multiply_vjp(*(cupy.asarray(t) for t in (G, H, x, g)), kind, **dev),
                    ldr.ldr_multiply_vjp(G, H, x, g, kind, **kw), strict=True):
        _close(cupy.asnumpy(a), b, "float64")


if cupy is not None:

    @pytest.mark.gpu
    class TestGpuSubdiagonalConformance(cpu_tests.TestSubdiagonal):
        """Every conformance check of the subdiagonal ``ldr_multiply`` on CuPy arrays."""

        xp = cupy

    @pytest.mark.gpu
    class TestGpuToeplitzLikeConformance(cpu_tests.TestToeplitzLike):
        """Every conformance check of the Toeplitz-like ``ldr_multiply`` on CuPy arrays."""

        xp = cupy
