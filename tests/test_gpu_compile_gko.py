"""The GKO CUDA kernel (``structlin/gpu/gko.cu``) runs in the host emulator.

:mod:`tests.cuda_emulator` compiles the source with the host C++ compiler and the real launcher
of :mod:`structlin.gpu.gko` drives it on NumPy arrays, against the Numba kernel
(:mod:`structlin._cpu.gko`, itself tested against dense solves in ``tests/test_gko.py``).
Shapes cover ``n`` below and above the block of 128 threads, shared and per-system nodes,
several right-hand sides and ranks, pivoting (random nodes), an exactly singular system and a
NaN system beside finite ones. NVRTC compilation (compute_80 and compute_90) is checked by
``tests/test_gpu_compile.py``. The last test runs the public functions on a real GPU (skipped
without one).
"""

from __future__ import annotations

import numpy as np
import pytest

from structlin._cpu import gko as cpu
from tests import cuda_emulator as emu

NS = "emu_gko"
DTYPES = ("float32", "float64", "complex64", "complex128")
# (B, r, k, n, Bt)
SHAPES = [(1, 1, 1, 1, 1), (3, 2, 2, 9, 3), (2, 3, 1, 150, 1), (1, 2, 0, 5, 1)]


def _source() -> str:
    entries = []
    for t, code in emu.TYPE_CODES.items():
        q = emu.qualified(NS, t)
        real = "double" if "double" in t else "float"
        entries.append(emu.entry_point(
            f"gko_kernel_{code}",
            "void* t, void* s, void* g, void* h, void* b, void* l, void* U, void* x, "
            "void* sign, void* logabs, void* pivots, void* info, int r, int k, int n, int t_all",
            f"{NS}::gko_kernel<{q}>(({q}*)t, ({q}*)s, ({q}*)g, ({q}*)h, ({q}*)b, ({q}*)l, "
            f"({q}*)U, ({q}*)x, ({q}*)sign, ({real}*)logabs, ({real}*)pivots, (int*)info, r, "
            "k, n, t_all)"))
    code = emu.kernel_namespace("gko", NS, prelude="using std::sqrt; using std::log; "
                                "using std::fabs;")
    return emu.emulator_source(code, entries=entries, includes=("#include <cmath>",))


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """:mod:`structlin.gpu.gko` with its launches running on the host emulator."""
    lib = emu.compile_library(tmp_path_factory, "emu_gko", _source())
    with emu.emulated_launcher("gko", emu.ctypes_launcher(lib)) as gpu:
        yield gpu


def _data(B, r, k, n, Bt, dtype, seed):
    rng = np.random.default_rng(seed)
    cplx = np.dtype(dtype).kind == "c"

    def rnd(*shape):
        a = rng.standard_normal(shape)
        return (a + 1j * rng.standard_normal(shape) if cplx else a).astype(dtype)

    s = (rng.permutation(n) + 0.5 + 0.1 * rng.uniform(size=(B, n))).astype(dtype)
    t = (np.arange(n) + 0.1 * rng.uniform(size=(Bt, n))).astype(dtype)
    return s, t, rnd(B, r, n), rnd(B, r, n), rnd(B, k, n)


def _run(fn, s, t, G, H, b):
    B, _, n = G.shape
    rd = np.float32 if G.dtype in (np.float32, np.complex64) else np.float64
    out = (np.full(b.shape, 7.0, G.dtype), np.full(B, 7.0, G.dtype), np.full(B, 7.0, rd),
           np.zeros((B, n), rd), np.full(B, 7, np.int32))
    fn(s, t, G, H, b, *out)
    return out


def _close(got, want, dtype, what):
    tol = 2e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10
    ok = np.isfinite(want)
    assert (np.isfinite(got) == ok).all(), what
    err = np.abs(got[ok] - want[ok]).max(initial=0) / max(np.abs(want[ok]).max(initial=0), 1)
    assert err < tol, f"{what}: relative error {err:.2e}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,r,k,n,Bt", SHAPES)
def test_gko_kernel_in_host_emulation(emulated, B, r, k, n, Bt, dtype):
    args = _data(B, r, k, n, Bt, dtype, B + r + k + n)
    copies = [a.copy() for a in args]
    got = _run(emulated.gko, *args)
    want = _run(cpu.gko, *args)
    for a, c in zip(args, copies, strict=True):
        assert np.array_equal(a, c), "an input was written"
    for g, w, what in zip(got, want, ("x", "sign", "logabs", "pivots", "info"), strict=True):
        _close(g, w, dtype, what)


@pytest.mark.parametrize("dtype", ("float64", "complex64"))
def test_singular_and_nan_systems_in_host_emulation(emulated, dtype):
    s, t, G, H, b = _data(3, 2, 1, 6, 1, dtype, 3)
    G[0, 1] = 0
    H[0, :, 2] = 0          # a zero column: singular, flagged at some step
    G[1, 0, 3] = np.nan     # NaN stays in system 1
    got = _run(emulated.gko, s, t, G, H, b)
    want = _run(cpu.gko, s, t, G, H, b)
    assert got[4][0] > 0 and np.isnan(got[0][0]).all() and got[1][0] == 0
    assert got[4][0] == want[4][0]
    assert np.isnan(got[0][1]).any()
    _close(got[0][2], want[0][2], dtype, "x of system 2")


@pytest.mark.parametrize("dtype", ("float64", "complex64"))
def test_toeplitz_pipeline_through_the_emulated_launcher(emulated, dtype, monkeypatch):
    """:func:`structlin.gko.gko_solve_toeplitz` on the non-NumPy path (its ``xp`` the
    launcher's stand-in CuPy namespace: FFTs, the refinement and the CUDA GKO launches in the
    emulator) against the NumPy path."""
    from structlin import gko as K

    rng = np.random.default_rng(1)
    c, r, b = (rng.standard_normal(sh).astype(dtype) for sh in ((2, 40), (2, 40), (2, 40, 2)))
    want = K.gko_solve_toeplitz(c, r, b)
    launches = []
    real_launch = emulated.launch
    monkeypatch.setattr(emulated, "launch", lambda k, *a: (launches.append(k), real_launch(k, *a)))
    monkeypatch.setattr(K, "_namespace", lambda a: emu.numpy_as_cupy())
    monkeypatch.setattr(K, "REFINE_ABOVE", 0.0)  # the refinement step runs too
    got = K.gko_solve_toeplitz(c, r, b)
    for g, w, what in zip(got, want, ("x", "sign", "logabsdet"), strict=True):
        _close(g, w, dtype, what)
    assert len(launches) == 2 and launches[0].startswith("gko_kernel<sl::complex<")


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
    from structlin.gko import gko_solve_toeplitz, solve_cauchy_like, solve_cauchy_like_vjp

    s, t, G, H, b = _data(4, 2, 1, 300, 1, dtype, 5)
    b = b[:, 0]
    dev = [cupy.asarray(a) for a in (s, t, G, H, b)]
    _close(cupy.asnumpy(solve_cauchy_like(*dev)), solve_cauchy_like(s, t, G, H, b), dtype, "x")
    g = np.ones_like(b)
    for a, w in zip(solve_cauchy_like_vjp(*dev, cupy.asarray(g)),
                    solve_cauchy_like_vjp(s, t, G, H, b, g), strict=True):
        _close(cupy.asnumpy(a), w, dtype, "vjp")
    rng = np.random.default_rng(0)
    c, r, bt = (rng.standard_normal(sh).astype(dtype) for sh in ((3, 200), (3, 200),
                                                                  (3, 200, 2)))
    for a, w in zip(gko_solve_toeplitz(*(cupy.asarray(v) for v in (c, r, bt))),
                    gko_solve_toeplitz(c, r, bt), strict=True):
        _close(cupy.asnumpy(a), w, dtype, "toeplitz")
