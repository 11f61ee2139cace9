"""The kernel-feature CUDA kernels (``structlin/gpu/kernel_features.cu``) run in the host
emulator.

:mod:`tests.cuda_emulator` compiles the source with the host C++ compiler and the real launcher
of :mod:`structlin.gpu.kernel_features` drives it through NumPy arrays, against a plain NumPy
reference of the kernel contract written here (``features`` and ``features_coef``). Shapes
cover ``d = 1``, ``d`` not a multiple of the chunk ``BK``, ``m`` and ``n`` not multiples of the
tile, several tiles in both directions, ``n = 1`` and ``sin_from`` in ``{0, m // 2, m}``. NVRTC
compilation of the source (compute_80 and compute_90) is checked by ``tests/test_gpu_compile.py``,
which finds every ``.cu`` file of :mod:`structlin.gpu`. The last test runs the launcher on a
real GPU (skipped without one).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests import cuda_emulator as emu

NS = "emu_kernel_features"
REAL_CODES = {"float": "f32", "double": "f64"}

DTYPES = ("float32", "float64")
# (n, d, m): d = 1; d < BK; d not a multiple of BK = 32 with several chunks; exact multiples;
# m and n below, at and above the 64 x 64 tile
SHAPES = [(1, 1, 1), (5, 1, 7), (1, 45, 130), (70, 33, 65), (64, 64, 64), (130, 100, 3),
          (3, 7, 200), (200, 300, 150)]


def _emulator_source() -> str:
    entries = []
    for t, code in REAL_CODES.items():
        entries.append(emu.entry_point(
            f"features_kernel_{code}",
            "void* x, void* w, void* scale, void* phase, void* out, long long n, int m, int d, "
            "int sin_from",
            f"{NS}::features_kernel<{t}>(({t}*)x, ({t}*)w, ({t}*)scale, ({t}*)phase, "
            f"({t}*)out, n, m, d, sin_from)"))
        entries.append(emu.entry_point(
            f"features_coef_kernel_{code}",
            "void* x, void* w, void* scale, void* phase, void* g, void* coef, void* wcoef, "
            "long long n, int m, int d, int sin_from",
            f"{NS}::features_coef_kernel<{t}>(({t}*)x, ({t}*)w, ({t}*)scale, ({t}*)phase, "
            f"({t}*)g, ({t}*)coef, ({t}*)wcoef, n, m, d, sin_from)"))
        entries.append(emu.entry_point(
            f"trig_kernel_{code}",
            "void* t, void* scale, void* out, long long n, int m, int sin_from",
            f"{NS}::trig_kernel<{t}>(({t}*)t, ({t}*)scale, ({t}*)out, n, m, sin_from)"))
    return emu.emulator_source(emu.kernel_namespace("kernel_features", NS), entries=entries,
                               includes=["#include <cmath>"])


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """:mod:`structlin.gpu.kernel_features` with its launches running on the host emulator."""
    lib = emu.compile_library(tmp_path_factory, "emu_kernel_features", _emulator_source())
    with emu.emulated_launcher("kernel_features", emu.ctypes_launcher(lib)) as kf:
        yield kf


# ------------------------------------------------------------------ the contract, in NumPy


def _projection(x, w, phase):
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    return x64 @ w64.T + phase.astype(np.float64)


def ref_features(x, w, scale, phase, sin_from):
    m = w.shape[0]
    t = _projection(x, w, phase)
    s = scale.astype(np.float64)
    out = np.empty((x.shape[0], 2 * m - sin_from))
    for j in range(m):
        out[:, j] = s[j] * np.cos(t[:, j])
        if j >= sin_from:
            out[:, m + j - sin_from] = s[j] * np.sin(t[:, j])
    return out


def ref_features_coef(x, w, scale, phase, sin_from, g):
    n, m = x.shape[0], w.shape[0]
    t = _projection(x, w, phase)
    s = scale.astype(np.float64)
    g = g.astype(np.float64)
    gs = np.zeros((n, m))
    gs[:, sin_from:] = g[:, m:]
    gc = g[:, :m]
    coef = s * (-gc * np.sin(t) + gs * np.cos(t))
    wcoef = gc * np.cos(t) + gs * np.sin(t)
    return coef, wcoef


def _data(n, d, m, sin_from, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(dtype)
    w = (rng.standard_normal((m, d)) / np.sqrt(d)).astype(dtype)
    scale = rng.uniform(0.5, 1.5, m).astype(dtype)
    phase = rng.uniform(0.0, 2 * np.pi, m).astype(dtype)
    g = rng.standard_normal((n, 2 * m - sin_from)).astype(dtype)
    return x, w, scale, phase, g


def _close(got, want, dtype):
    assert np.all(np.isfinite(got)), "an output entry was not written (or is not finite)"
    tol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
    err = np.linalg.norm((got - want).ravel()) / max(np.linalg.norm(want.ravel()), 1e-300)
    assert err < tol, f"relative error {err:.2e}"


def _sin_froms(m):
    return sorted({0, m // 2, m})


# ------------------------------------------------------------------ the emulated kernels


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,m", SHAPES)
def test_features_kernel_in_host_emulation(emulated, n, d, m, dtype):
    for sin_from in _sin_froms(m):
        x, w, scale, phase, _ = _data(n, d, m, sin_from, dtype, n * 1000 + d * 10 + m)
        out = np.full((n, 2 * m - sin_from), np.nan, dtype=dtype)
        emulated.features(x, w, scale, phase, sin_from, out)
        _close(out, ref_features(x, w, scale, phase, sin_from), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,m", SHAPES)
def test_features_coef_kernel_in_host_emulation(emulated, n, d, m, dtype):
    for sin_from in _sin_froms(m):
        x, w, scale, phase, g = _data(n, d, m, sin_from, dtype, n * 1000 + d * 10 + m + 1)
        coef = np.full((n, m), np.nan, dtype=dtype)
        wcoef = np.full((n, m), np.nan, dtype=dtype)
        emulated.features_coef(x, w, scale, phase, sin_from, g, coef, wcoef)
        want_coef, want_wcoef = ref_features_coef(x, w, scale, phase, sin_from, g)
        _close(coef, want_coef, dtype)
        _close(wcoef, want_wcoef, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,m", [(1, 1), (3, 300), (70, 65)])
def test_trig_kernel_in_host_emulation(emulated, n, m, dtype):
    rng = np.random.default_rng(n + m)
    t = (rng.standard_normal((n, m)) * 5).astype(dtype)
    scale = rng.uniform(0.5, 1.5, m).astype(dtype)
    eye = np.eye(m, dtype=dtype)  # t = t @ I.T: the reference of features with w = I
    for sin_from in _sin_froms(m):
        out = np.full((n, 2 * m - sin_from), np.nan, dtype=dtype)
        emulated.trig(t, scale, sin_from, out)
        _close(out, ref_features(t, eye, scale, np.zeros(m, dtype), sin_from), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_row_stays_in_its_row_in_host_emulation(emulated, dtype):
    n, d, m, sin_from = 70, 40, 70, 35
    x, w, scale, phase, g = _data(n, d, m, sin_from, dtype, 7)
    x[3, 5] = np.nan
    x[66, 0] = np.inf
    out = np.zeros((n, 2 * m - sin_from), dtype=dtype)
    emulated.features(x, w, scale, phase, sin_from, out)
    coef = np.zeros((n, m), dtype=dtype)
    wcoef = np.zeros((n, m), dtype=dtype)
    emulated.features_coef(x, w, scale, phase, sin_from, g, coef, wcoef)
    bad = np.zeros(n, dtype=bool)
    bad[[3, 66]] = True
    for arr in (out, coef, wcoef):
        assert np.all(np.isnan(arr[bad]))
        assert np.all(np.isfinite(arr[~bad]))
    _close(out[~bad], ref_features(x[~bad], w, scale, phase, sin_from), dtype)


def test_empty_inputs_launch_nothing(emulated):
    x = np.ones((0, 3))
    w = np.ones((4, 3))
    s = np.ones(4)
    out = np.ones((0, 6))
    emulated.features(x, w, s, s, 2, out)
    emulated.features_coef(x, w, s, s, 2, out, np.ones((0, 4)), np.ones((0, 4)))
    emulated.features(np.ones((2, 3)), np.ones((0, 3)), np.ones(0), np.ones(0), 0,
                      np.ones((2, 0)))


# ------------------------------------------------------------------ on a real GPU


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,m", [*SHAPES, (1000, 1500, 700)])
def test_kernels_on_gpu(n, d, m, dtype):
    cupy = pytest.importorskip("cupy")
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no driver
        devices = 0
    if devices == 0:
        pytest.skip("no CUDA device")
    from structlin.gpu import kernel_features as kf

    for sin_from in _sin_froms(m):
        x, w, scale, phase, g = _data(n, d, m, sin_from, dtype, n + d + m)
        dx, dw, ds, dp, dg = (cupy.asarray(a) for a in (x, w, scale, phase, g))
        out = cupy.full((n, 2 * m - sin_from), np.nan, dtype=dtype)
        kf.features(dx, dw, ds, dp, sin_from, out)
        _close(cupy.asnumpy(out), ref_features(x, w, scale, phase, sin_from), dtype)
        coef = cupy.full((n, m), np.nan, dtype=dtype)
        wcoef = cupy.full((n, m), np.nan, dtype=dtype)
        kf.features_coef(dx, dw, ds, dp, sin_from, dg, coef, wcoef)
        want_coef, want_wcoef = ref_features_coef(x, w, scale, phase, sin_from, g)
        _close(cupy.asnumpy(coef), want_coef, dtype)
        _close(cupy.asnumpy(wcoef), want_wcoef, dtype)
