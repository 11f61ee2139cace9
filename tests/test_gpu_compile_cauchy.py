"""The Cauchy CUDA kernels (``structlin/gpu/cauchy.cu``) run in the host emulator.

:mod:`tests.cuda_emulator` compiles the source with the host C++ compiler and the real launcher
of :mod:`structlin.gpu.cauchy` drives it on NumPy arrays, against the NumPy path
(:mod:`structlin._cpu.cauchy`, itself tested against the dense matrix in
``tests/test_cauchy.py``) and a complex128 reference. Shapes cover ``m`` and ``n`` below, at
and above the block of 256 (several blocks of ``i``, several shared-memory chunks of ``j``),
nodes shared by every row (``Bx`` or ``By`` = 1) or per row, and ``K > 1`` vectors per row.
NVRTC compilation (compute_80 and compute_90) is checked by ``tests/test_gpu_compile.py``.
The last test runs the launcher on a real GPU (skipped without one).
"""

from __future__ import annotations

import numpy as np
import pytest

from structlin._cpu import cauchy as cpu
from tests import cuda_emulator as emu
from tests import test_cauchy as cpu_tests

try:
    import cupy
except ImportError:  # the conformance class below needs the module only as a namespace
    cupy = None

NS = "emu_cauchy"
DTYPES = ("float32", "float64", "complex64", "complex128")
# (B, K, m, n, Bx, By)
SHAPES = [(1, 1, 1, 1, 1, 1), (2, 3, 5, 7, 2, 1), (1, 1, 300, 270, 1, 1),
          (3, 2, 256, 257, 1, 3), (2, 1, 513, 40, 2, 2)]


def _emulator_source() -> str:
    entries = []
    for t, code in emu.TYPE_CODES.items():
        q = emu.qualified(NS, t)
        entries.append(emu.entry_point(
            f"cauchy_kernel_{code}",
            "void* x, void* y, void* v, void* out, int nk, int m, int n, int x_all, int y_all",
            f"{NS}::cauchy_kernel<{q}>(({q}*)x, ({q}*)y, ({q}*)v, ({q}*)out, nk, m, n, x_all, "
            "y_all)"))
        entries.append(emu.entry_point(
            f"cauchy_square_kernel_{code}",
            "void* x, void* y, void* v, void* out, void* out_sq, int nk, int m, int n, "
            "int x_all, int y_all",
            f"{NS}::cauchy_square_kernel<{q}>(({q}*)x, ({q}*)y, ({q}*)v, ({q}*)out, "
            f"({q}*)out_sq, nk, m, n, x_all, y_all)"))
    return emu.emulator_source(emu.kernel_namespace("cauchy", NS), entries=entries)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """:mod:`structlin.gpu.cauchy` with its launches running on the host emulator."""
    lib = emu.compile_library(tmp_path_factory, "emu_cauchy", _emulator_source())
    with emu.emulated_launcher("cauchy", emu.ctypes_launcher(lib)) as gpu:
        yield gpu


def _data(B, K, m, n, Bx, By, dtype, seed):
    rng = np.random.default_rng(seed)
    cplx = np.dtype(dtype).kind == "c"

    def nodes(rows, count, offset):
        a = np.arange(count) + offset + rng.uniform(-0.1, 0.1, (rows, count))
        return (a + 1j * rng.uniform(-1, 1, (rows, count)) if cplx else a).astype(dtype)

    v = rng.standard_normal((B, K, n)) + (1j * rng.standard_normal((B, K, n)) if cplx else 0)
    return nodes(Bx, m, 0.5), nodes(By, n, 0.0), v.astype(dtype)


def _ref(x, y, v, power):
    B = v.shape[0]
    x = np.broadcast_to(x, (B, x.shape[1])).astype(np.complex128)
    y = np.broadcast_to(y, (B, y.shape[1])).astype(np.complex128)
    R = 1 / (x[:, :, None] - y[:, None, :]) ** power
    return np.einsum("bij,bkj->bki", R, v.astype(np.complex128))


def _close(got, want, dtype):
    assert np.all(np.isfinite(got)), "an output entry was not written (or is not finite)"
    tol = 1e-5 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-12
    err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-300)
    assert err < tol, f"relative error {err:.2e}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,K,m,n,Bx,By", SHAPES)
def test_cauchy_kernels_in_host_emulation(emulated, B, K, m, n, Bx, By, dtype):
    x, y, v = _data(B, K, m, n, Bx, By, dtype, B + K + m + n)
    out = np.full((B, K, m), np.nan, dtype=dtype)
    emulated.cauchy(x, y, v, out)
    _close(out, _ref(x, y, v, 1), dtype)
    cpu_out = np.empty_like(out)
    cpu.cauchy(x, y, v, cpu_out)
    _close(out, cpu_out, dtype)
    out = np.full((B, K, m), np.nan, dtype=dtype)
    sq = np.full((B, K, m), np.nan, dtype=dtype)
    emulated.cauchy_square(x, y, v, out, sq)
    _close(out, _ref(x, y, v, 1), dtype)
    _close(sq, _ref(x, y, v, 2), dtype)


@pytest.mark.parametrize("dtype", ("float64", "complex64"))
def test_nan_row_stays_in_its_row_in_host_emulation(emulated, dtype):
    x, y, v = _data(4, 2, 40, 300, 4, 1, dtype, 1)
    v[1, 0, 7] = np.nan
    x[2, 3] = np.inf
    out = np.zeros((4, 2, 40), dtype=dtype)
    emulated.cauchy(x, y, v, out)
    assert np.isnan(out[1, 0]).all() and np.isfinite(out[1, 1]).all()
    assert np.isfinite(np.delete(out[2], 3, axis=1)).all()
    _close(out[[0, 3]], _ref(x[[0, 3]], y, v[[0, 3]], 1), dtype)


def test_empty_inputs_launch_nothing(emulated):
    emulated.cauchy(np.ones((1, 0)), np.ones((1, 3)), np.ones((2, 1, 3)), np.ones((2, 1, 0)))
    emulated.cauchy_square(np.ones((1, 4)), np.ones((1, 3)), np.ones((0, 1, 3)),
                           np.ones((0, 1, 4)), np.ones((0, 1, 4)))
    out = np.full((1, 1, 3), np.nan)
    emulated.cauchy(np.ones((1, 3)), np.ones((1, 0)), np.ones((1, 1, 0)), out)
    assert (out == 0).all()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_public_functions_on_gpu(dtype):
    cupy = pytest.importorskip("cupy")
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no driver
        devices = 0
    if devices == 0:
        pytest.skip("no CUDA device")
    from structlin.cauchy import matmul_cauchy, matmul_cauchy_vjp
    from structlin.ssm_dplr import ssm_kernel_dplr, ssm_kernel_dplr_vjp

    x, y, v = _data(3, 2, 700, 300, 3, 1, dtype, 2)
    got = matmul_cauchy(cupy.asarray(x[:, None]), cupy.asarray(y), cupy.asarray(v))
    _close(cupy.asnumpy(got), matmul_cauchy(x[:, None], y, v), dtype)
    g = np.ones((3, 2, 700), dtype)
    for a, b in zip(matmul_cauchy_vjp(*(cupy.asarray(t) for t in (x[:, None], y, v, g))),
                    matmul_cauchy_vjp(x[:, None], y, v, g), strict=True):
        _close(cupy.asnumpy(a), b, dtype)
    if np.dtype(dtype).kind == "c":
        rng = np.random.default_rng(0)
        H, N, L = 4, 8, 100
        Lam = (-0.5 + 1j * np.pi * np.arange(N) * np.ones((H, 1))).astype(dtype)
        P = (0.3 * rng.standard_normal((H, N))).astype(dtype)
        B = rng.standard_normal((H, N)).astype(dtype)
        C = (rng.standard_normal((H, N)) + 1j).astype(dtype)
        dt = np.full(H, 0.05, np.float32 if dtype == "complex64" else np.float64)
        args = (Lam, P, B, C, dt)
        dev = [cupy.asarray(a) for a in args]
        _close(cupy.asnumpy(ssm_kernel_dplr(*dev, L)), ssm_kernel_dplr(*args, L), dtype)
        G = np.ones((H, L), dt.dtype)
        for a, b in zip(ssm_kernel_dplr_vjp(*dev, L, cupy.asarray(G)),
                        ssm_kernel_dplr_vjp(*args, L, G), strict=True):
            _close(cupy.asnumpy(a), b, dtype)


if cupy is not None:

    @pytest.mark.gpu
    class TestGpuCauchyConformance(cpu_tests.TestCauchyConformance):
        """Every conformance check of :func:`structlin.matmul_cauchy` on CuPy arrays."""

        xp = cupy


@pytest.mark.parametrize("r,L", [(1, 16), (2, 15)])
def test_s4_kernel_pipeline_through_the_emulated_launcher(emulated, r, L):
    """The S4 kernel's array code on the non-NumPy path (``xp`` the launcher's stand-in CuPy
    namespace: its FFT, solves and the CUDA Cauchy launches in the emulator) against the
    NumPy path, forward and VJP."""
    from structlin import ssm_dplr as sd
    from tests.test_ssm_dplr import _data

    fake = emu.numpy_as_cupy()
    launches = []
    real_launch = emulated.launch
    mp = pytest.MonkeyPatch()
    mp.setattr(emulated, "launch", lambda k, *a: (launches.append(k), real_launch(k, *a)))
    args = _data(np.random.default_rng(r + L), 2, 5, r)
    _, kargs, (_, _, _, _, _, cdt) = sd._prepare(*args, L)
    want = sd._to_kernel(np, sd._forward(np, kargs, L, cdt, square=False)["Khat"], L)
    got = sd._to_kernel(fake, sd._forward(fake, kargs, L, cdt, square=False)["Khat"], L)
    _close(got, want, "complex128")
    G = np.random.default_rng(0).standard_normal((2, L))
    try:
        for a, b in zip(sd._backward(fake, kargs, L, cdt, G),
                        sd._backward(np, kargs, L, cdt, G), strict=True):
            _close(a, b, "complex128")
    finally:
        mp.undo()
    assert launches == ["cauchy_kernel<sl::complex<double>>"] + [
        "cauchy_square_kernel<sl::complex<double>>"] * 2
