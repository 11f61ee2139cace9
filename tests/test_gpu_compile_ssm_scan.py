"""The diagonal SSM scan's CUDA kernel (``structlin/gpu/ssm_scan.cu``) run in the host emulator.

:mod:`tests.cuda_emulator` compiles the source with the host C++ compiler and the real launcher
of :mod:`structlin.gpu.ssm_scan` drives it on NumPy arrays, against a plain NumPy loop of the
kernel contract written here. Shapes cover ``N`` not a multiple of the 4 modes of a thread,
``L`` not a multiple of the 32-step chunk, rows not a multiple of a block's rows, ``L = 1``
(``ssm_step``), and ``N > 512`` (two launches adding into ``y``). NVRTC compilation (compute_80
and compute_90) is checked by ``tests/test_gpu_compile.py``. The last test runs the launcher on a
real GPU (skipped without one).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from tests import cuda_emulator as emu

NS = "emu_ssm_scan"
REAL_CODES = {"float": "f32", "double": "f64"}
DTYPES = ("float32", "float64")
# (R, H, N, L)
SHAPES = [(1, 1, 1, 1), (3, 3, 5, 33), (70, 7, 9, 40), (8, 2, 32, 64), (2, 1, 3, 0),
          (130, 5, 2, 3), (2, 2, 515, 35)]


def _emulator_source() -> str:
    entries = []
    for t, code in REAL_CODES.items():
        ct = f"{NS}::sl::complex<{t}>"
        entries.append(emu.entry_point(
            f"scan_kernel_{code}",
            "void* ab, void* bb, void* c, void* d, void* u, void* x0, void* y, void* xT, "
            "long long rows, int H, int N, int L, int n0, int nm, int ng, int rpb, int first",
            f"{NS}::scan_kernel<{t}>(({ct}*)ab, ({ct}*)bb, ({ct}*)c, ({t}*)d, ({t}*)u, "
            f"({ct}*)x0, ({t}*)y, ({ct}*)xT, rows, H, N, L, n0, nm, ng, rpb, first)"))
        entries.append(emu.entry_point(
            f"sens_kernel_{code}",
            "void* ab, void* bb, void* c, void* u, void* x0, void* g, void* gab, void* gbb, "
            "void* gc, long long rows, int H, int N, int L, int ng",
            f"{NS}::sens_kernel<{t}>(({ct}*)ab, ({ct}*)bb, ({ct}*)c, ({t}*)u, ({ct}*)x0, "
            f"({t}*)g, ({ct}*)gab, ({ct}*)gbb, ({ct}*)gc, rows, H, N, L, ng)"))
    return emu.emulator_source(emu.kernel_namespace("ssm_scan", NS), entries=entries)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """:mod:`structlin.gpu.ssm_scan` with its launches running on the host emulator."""
    lib = emu.compile_library(tmp_path_factory, "emu_ssm_scan", _emulator_source())
    with emu.emulated_launcher("ssm_scan", emu.ctypes_launcher(lib)) as gpu:
        yield gpu


def ref_scan(ab, bb, c, d, u, x0):
    """The contract, one step at a time in complex128."""
    R, L = u.shape
    H = ab.shape[0]
    h = np.arange(R) % H
    x = x0.astype(np.complex128)
    y = np.empty((R, L))
    for t in range(L):
        x = ab[h] * x + bb[h] * u[:, t, None]
        y[:, t] = 2 * np.real((c[h] * x).sum(-1)) + d[h] * u[:, t]
    return y, x


def ref_scan_vjp(ab, bb, c, d, u, x0, g):
    """The contract's adjoint, with every state stored (complex128)."""
    R, L = u.shape
    N = ab.shape[1]
    h = np.arange(R) % H_of(ab)
    a, b, cc = ab[h].astype(complex), bb[h].astype(complex), c[h].astype(complex)
    xs = np.empty((L + 1, R, N), complex)
    xs[0] = x0
    for t in range(L):
        xs[t + 1] = a * xs[t] + b * u[:, t, None]
    lam = np.zeros((R, N), complex)
    gu = np.empty((R, L))
    gab = np.zeros((R, N), complex)
    gbb = np.zeros((R, N), complex)
    gc = np.zeros((R, N), complex)
    for t in range(L - 1, -1, -1):
        lam = 2 * g[:, t, None] * cc.conj() + a.conj() * lam
        gu[:, t] = np.real((b.conj() * lam).sum(-1)) + d[h] * g[:, t]
        gab += lam * xs[t].conj()
        gbb += lam * u[:, t, None]
        gc += 2 * g[:, t, None] * xs[t + 1].conj()
    return gu, gab, gbb, gc, (g * u).sum(-1), a.conj() * lam


def H_of(ab):
    return ab.shape[0]


def _data(R, H, N, L, dtype, seed):
    rng = np.random.default_rng(seed)
    cd = np.complex64 if dtype == "float32" else np.complex128
    lam = -rng.uniform(0.05, 1.0, (H, N)) + 1j * rng.standard_normal((H, N))
    ab = np.exp(0.1 * lam).astype(cd)
    bb = (rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))).astype(cd) * 0.1
    c = (rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))).astype(cd)
    d = rng.standard_normal(H).astype(dtype)
    u = rng.standard_normal((R, L)).astype(dtype)
    x0 = (rng.standard_normal((R, N)) + 1j * rng.standard_normal((R, N))).astype(cd)
    return ab, bb, c, d, u, x0


def _close(got, want, dtype):
    assert np.all(np.isfinite(got)), "an output entry was not written (or is not finite)"
    tol = 2e-5 if dtype == "float32" else 1e-12
    err = float(np.abs(got - want).max(initial=0)) / max(float(np.abs(want).max(initial=0)),
                                                         1e-300)
    assert err < tol, f"relative error {err:.2e}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("R,H,N,L", SHAPES)
def test_scan_kernel_in_host_emulation(emulated, R, H, N, L, dtype):
    ab, bb, c, d, u, x0 = _data(R, H, N, L, dtype, R * 1000 + N * 10 + L)
    cd = ab.dtype
    y = np.full((R, L), np.nan, dtype=dtype)
    xT = np.full((R, N), np.nan, dtype=cd)
    emulated.scan(ab, bb, c, d, u, x0, y, xT)
    want_y, want_x = ref_scan(ab, bb, c, d, u, x0)
    _close(y, want_y, dtype)
    _close(xT, want_x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("R,H,N,L", SHAPES)
def test_scan_vjp_in_host_emulation(emulated, R, H, N, L, dtype):
    if N > 100:
        N = 9  # the two-launch case is the forward kernel's; keep the reference loop short
    ab, bb, c, d, u, x0 = _data(R, H, N, L, dtype, R + N + L)
    g = np.random.default_rng(L).standard_normal((R, L)).astype(dtype)
    cd = ab.dtype
    outs = [np.full((R, L), np.nan, dtype), np.full((R, N), np.nan, cd),
            np.full((R, N), np.nan, cd), np.full((R, N), np.nan, cd), np.full(R, np.nan, dtype),
            np.full((R, N), np.nan, cd)]
    emulated.scan_vjp(ab, bb, c, d, u, x0, g, *outs)
    for got, want in zip(outs, ref_scan_vjp(ab, bb, c, d, u, x0, g), strict=True):
        if got.size:
            _close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_row_stays_in_its_row_in_host_emulation(emulated, dtype):
    R, H, N, L = 20, 4, 6, 40
    ab, bb, c, d, u, x0 = _data(R, H, N, L, dtype, 3)
    u[5, 7] = np.nan
    u[13, 0] = np.inf
    y = np.zeros((R, L), dtype=dtype)
    xT = np.zeros((R, N), dtype=ab.dtype)
    emulated.scan(ab, bb, c, d, u, x0, y, xT)
    bad = np.zeros(R, dtype=bool)
    bad[[5, 13]] = True
    want_y, _ = ref_scan(ab, bb, c, d, u, x0)
    assert not np.isfinite(y[5, 7:]).any() and np.isfinite(y[5, :7]).all()
    assert not np.isfinite(y[13]).any()
    _close(y[~bad], want_y[~bad], dtype)


# ------------------------------------------------------------------ on a real GPU


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("R,H,N,L", [*SHAPES, (1024, 256, 32, 4096)])
def test_scan_kernel_on_gpu(R, H, N, L, dtype):
    cupy = pytest.importorskip("cupy")
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no driver
        devices = 0
    if devices == 0:
        pytest.skip("no CUDA device")
    from structlin.gpu import ssm_scan as gpu

    ab, bb, c, d, u, x0 = _data(R, H, N, L, dtype, 11)
    y = cupy.full((R, L), np.nan, dtype=dtype)
    xT = cupy.full((R, N), np.nan, dtype=ab.dtype)
    gpu.scan(*(cupy.asarray(a) for a in (ab, bb, c, d, u, x0)), y, xT)
    want_y, want_x = ref_scan(ab, bb, c, d, u, x0)
    _close(cupy.asnumpy(y), want_y, dtype)
    _close(cupy.asnumpy(xT), want_x, dtype)


def test_public_functions_through_the_emulated_launcher(emulated, monkeypatch):
    """``ssm_scan``, ``ssm_step`` and ``ssm_scan_vjp`` with the CUDA launcher in place of the
    Numba kernels (NumPy arrays standing in for CuPy ones) equal the CPU path."""
    public = importlib.import_module("structlin.ssm_scan")  # the function shadows the name

    rng = np.random.default_rng(5)
    H, N, L = 3, 6, 45
    lam = -rng.uniform(0.1, 1, (H, N)) + 1j * rng.standard_normal((H, N))
    B = rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))
    C = rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))
    dt = rng.uniform(0.05, 0.3, H)
    D = rng.standard_normal(H)
    u = rng.standard_normal((2, H, L))
    g = rng.standard_normal((2, H, L))
    x0 = rng.standard_normal((2, H, N)) + 1j * rng.standard_normal((2, H, N))
    cpu = (public.ssm_scan(lam, B, C, dt, u, D=D, state=x0, return_state=True),
           public.ssm_step(lam, B, C, dt, u[..., 0], x0, D=D),
           public.ssm_scan_vjp(lam, B, C, dt, u, g, D=D, state=x0))
    monkeypatch.setattr(public, "kernels", lambda xp, name: emulated)
    gpu = (public.ssm_scan(lam, B, C, dt, u, D=D, state=x0, return_state=True),
           public.ssm_step(lam, B, C, dt, u[..., 0], x0, D=D),
           public.ssm_scan_vjp(lam, B, C, dt, u, g, D=D, state=x0))
    for want, got in zip(cpu, gpu, strict=True):
        for a, b in zip(want, got, strict=True):
            _close(b, a, "float64")
