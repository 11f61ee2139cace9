"""The batched Levinson CUDA kernel (``structlin/gpu/levinson.cu``) runs in the host emulator.

:mod:`tests.cuda_emulator` compiles the source with the host C++ compiler and the real launcher
of :mod:`structlin.gpu.levinson` drives it on NumPy arrays, against the Numba kernel
(:mod:`structlin._cpu.levinson`, itself tested against dense solves and SciPy in
``tests/test_toeplitz.py``). Shapes cover ``n`` below and above the block of 128 threads
(strided partial sums), ``k`` = 0 (determinant only), 1, a few and above 128 (several column
chunks, one thread group per column), breakdown at the first and at a later order, and a NaN
row. NVRTC compilation (compute_80 and compute_90) is checked by ``tests/test_gpu_compile.py``.
The last test runs the public functions on a real GPU (skipped without one).
"""

from __future__ import annotations

import numpy as np
import pytest

from structlin._cpu import levinson as cpu
from tests import cuda_emulator as emu

NS = "emu_levinson"
DTYPES = ("float32", "float64", "complex64", "complex128")
REAL = {"float": "float", "double": "double", "sl::complex<float>": "float",
        "sl::complex<double>": "double"}
# (B, n, k)
SHAPES = [(1, 1, 1), (3, 7, 2), (1, 133, 1), (1, 20, 0), (1, 9, 130)]


def _emulator_source() -> str:
    entries = []
    for t, code in emu.TYPE_CODES.items():
        q = emu.qualified(NS, t)
        rt = REAL[t]
        entries.append(emu.entry_point(
            f"levinson_kernel_{code}",
            "void* c, void* r, void* b, void* x, void* refl, void* logdet, void* sign, "
            "void* info, void* invnorm, void* work, long long n, int k, double tol",
            f"{NS}::levinson_kernel<{q}>(({q}*)c, ({q}*)r, ({q}*)b, ({q}*)x, ({q}*)refl, "
            f"({rt}*)logdet, ({q}*)sign, (long long*)info, ({rt}*)invnorm, ({q}*)work, n, k, "
            "tol)"))
    return emu.emulator_source(
        emu.kernel_namespace("levinson", NS, prelude="using std::log; using std::hypot;"),
        entries=entries, includes=["#include <cmath>"])


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """:mod:`structlin.gpu.levinson` with its launches running on the host emulator."""
    lib = emu.compile_library(tmp_path_factory, "emu_levinson", _emulator_source())
    with emu.emulated_launcher("levinson", emu.ctypes_launcher(lib)) as gpu:
        yield gpu


def _data(B, n, k, dtype, seed):
    rng = np.random.default_rng(seed)
    cplx = np.dtype(dtype).kind == "c"

    def arr(shape):
        a = rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if cplx else 0)
        return a

    c, r = 0.3 * arr((B, n)), 0.3 * arr((B, n))
    c[:, 0] += 0.3 * n + 1.0
    return c.astype(dtype), r.astype(dtype), arr((B, n, k)).astype(dtype)


def _outputs(B, n, k, dtype):
    rdt = np.zeros(0, dtype).real.dtype
    return [np.full((B, n, k), 7, dtype), np.full((B, max(n - 1, 0)), 7, dtype),
            np.full(B, 7, rdt), np.full(B, 7, dtype), np.full(B, 7, np.int64),
            np.full(B, 7, rdt)]


def _run(ker, c, r, b, tol=1e-6):
    out = _outputs(*b.shape, b.dtype)
    ker.levinson(c, r, b, *out, tol)
    return out


def _close(got, want, dtype, what):
    tol = 2e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11
    got, want = np.asarray(got), np.asarray(want)
    assert np.array_equal(np.isnan(got), np.isnan(want)), what
    ok = ~np.isnan(want)
    scale = max(float(np.abs(want[ok]).max(initial=0)), 1.0)
    err = float(np.abs(got[ok] - want[ok]).max(initial=0)) / scale
    assert err < tol, f"{what}: relative error {err:.2e}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,n,k", SHAPES)
def test_levinson_kernel_in_host_emulation(emulated, B, n, k, dtype):
    c, r, b = _data(B, n, k, dtype, B + n + k)
    got = _run(emulated, c, r, b)
    want = _run(cpu, c, r, b)
    for name, g, w in zip(("x", "reflection", "logdet", "sign", "info", "invnorm"), got, want,
                          strict=True):
        _close(g, w, dtype, name)
    if k:
        T0 = np.array([[c[0, i - j] if i >= j else r[0, j - i] for j in range(n)]
                       for i in range(n)], dtype=np.complex128)
        _close(got[0][0], np.linalg.solve(T0, b[0].astype(np.complex128)), dtype, "dense")


@pytest.mark.parametrize("dtype", ("float64", "complex64"))
def test_breakdown_and_nan_rows_in_host_emulation(emulated, dtype):
    c, r, b = _data(4, 6, 2, dtype, 3)
    c[1, 0] = 0                      # breakdown at order 1
    c[2, :2], r[2, 1] = [1, 1], 1    # [[1, 1], [1, 1]]: breakdown at order 2
    b[3, 2, 1] = np.nan
    c = np.concatenate([c, c[:1]])
    r = np.concatenate([r, r[:1]])
    b = np.concatenate([b, b[:1]])
    r[4, 3] = np.inf                 # non-finite T: NaN, no breakdown
    got = _run(emulated, c, r, b)
    want = _run(cpu, c, r, b)
    assert got[4].tolist() == want[4].tolist() == [0, 1, 2, 0, 0]
    assert np.isnan(got[0][4]).all() and np.isnan(got[2][4])
    assert np.isnan(got[0][1]).all() and np.isnan(got[0][2]).all()
    assert np.isnan(got[0][3, :, 1]).all() and np.isfinite(got[0][3, :, 0]).all()
    for name, g, w in zip(("x", "reflection", "logdet", "sign"), got, want, strict=False):
        _close(g[[0, 3]], w[[0, 3]], dtype, name)
    assert got[3][1] == 0 and got[2][1] == -np.inf


def test_empty_inputs_launch_nothing(emulated):
    out = _outputs(0, 3, 1, np.float64)
    emulated.levinson(np.ones((0, 3)), np.ones((0, 3)), np.ones((0, 3, 1)), *out, 1e-6)
    out = _outputs(2, 0, 1, np.float64)
    emulated.levinson(np.ones((2, 0)), np.ones((2, 0)), np.ones((2, 0, 1)), *out, 1e-6)
    assert (out[2] == 7).all()


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
    from structlin.toeplitz import levinson, solve_toeplitz, toeplitz_slogdet

    c, r, b = _data(5, 300, 3, dtype, 4)
    x = solve_toeplitz((cupy.asarray(c), cupy.asarray(r)), cupy.asarray(b),
                       method="levinson")
    _close(cupy.asnumpy(x), solve_toeplitz((c, r), b, method="levinson"), dtype, "x")
    _, kk = levinson((cupy.asarray(c), cupy.asarray(r)), cupy.asarray(b))
    _close(cupy.asnumpy(kk), levinson((c, r), b)[1], dtype, "reflection")
    _, ld = toeplitz_slogdet((cupy.asarray(c), cupy.asarray(r)))
    _close(cupy.asnumpy(ld), toeplitz_slogdet((c, r))[1], dtype, "logdet")


def test_solver_pipeline_through_the_emulated_launcher(emulated):
    """The array code of :mod:`structlin.toeplitz` on the non-NumPy path (``xp`` the stand-in
    CuPy namespace of the emulator: its FFTs, index arrays and host copies, and the CUDA
    Levinson launches in the emulator) against the NumPy path: ``method="levinson"``, and
    ``"auto"`` with a breakdown row (solved by GKO) and its residual checks."""
    from structlin import toeplitz as T

    fake = emu.numpy_as_cupy()
    launches = []
    real_launch = emulated.launch
    mp = pytest.MonkeyPatch()
    mp.setattr(emulated, "launch", lambda k, *a: (launches.append(k), real_launch(k, *a)))
    try:
        c, r, b = _data(3, 6, 2, "float64", 5)
        want = T._solve_rows(np, c, r, b, "levinson")
        got = T._solve_rows(fake, c, r, b, "levinson")
        _close(got, want, "float64", "levinson")
        c1, r1, b1 = _data(1, 6, 70, "float64", 6)  # one matrix, 70 right-hand sides: 3 blocks
        _close(T._solve_rows(fake, c1, r1, b1, "levinson"),
               T._solve_rows(np, c1, r1, b1, "levinson"), "float64", "chunked")
        c[1, 0] = 0  # a zero leading minor: GKO solves that row
        want = T._solve_rows(np, c, r, b, "auto")
        got = T._solve_rows(fake, c, r, b, "auto")
        _close(got, want, "float64", "auto")
    finally:
        mp.undo()
    assert launches and set(launches) == {"levinson_kernel<double>"}
