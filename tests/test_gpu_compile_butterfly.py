"""The butterfly CUDA kernels (``structlin/gpu/butterfly.cu``) run in the host emulator, with
the K-matrix kernel written on them (``kaleidoscope_rows``, :mod:`structlin.gpu.kaleidoscope`).

:mod:`tests.cuda_emulator` compiles the source with the host C++ compiler and the real
launchers of :mod:`structlin.gpu.butterfly` drive it through NumPy arrays, against a NumPy
product of the factors: this checks the pass schedules (one and two forward passes), the
index arithmetic of both stride orders and the VJP's reductions -- not performance. NVRTC
compilation of the source is checked by ``tests/test_gpu_compile.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests import cuda_emulator as emu

NS = "emu_butterfly"


def _emulator_source() -> str:
    entries = []
    for t, code in emu.TYPE_CODES.items():
        tb = emu.qualified(NS, t)
        entries.append(emu.entry_point(
            f"butterfly_pass_{code}",
            "void* x, void* y, void* tw, long long batch, long long n, int k0, int k1, int wb, "
            "int rb, int rc, int inc",
            f"{NS}::butterfly_pass<{tb}>(({tb}*)x, ({tb}*)y, ({tb}*)tw, batch, n, k0, k1, wb, "
            "rb, rc, inc)"))
        entries.append(emu.entry_point(
            f"butterfly_pass_vjp_{code}",
            "void* x, void* g, void* gx, void* tw, void* gtw, long long batch, long long n, "
            "int k0, int k1, int wb, int rb, int rc, int inc",
            f"{NS}::butterfly_pass_vjp<{tb}>(({tb}*)x, ({tb}*)g, ({tb}*)gx, ({tb}*)tw, "
            f"({tb}*)gtw, batch, n, k0, k1, wb, rb, rc, inc)"))
        entries.append(emu.entry_point(
            f"kaleidoscope_rows_{code}",
            "void* x, void* y, void* tw, long long batch, long long n, int L, int w, int rb, "
            "int rc",
            f"{NS}::kaleidoscope_rows<{tb}>(({tb}*)x, ({tb}*)y, ({tb}*)tw, batch, n, L, w, rb, "
            "rc)"))
    return emu.emulator_source(emu.kernel_namespace("butterfly", NS), entries=entries)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """:mod:`structlin.gpu.butterfly` with its launches running on the host emulator."""
    with emu.emulated_launcher("butterfly", emu.ctypes_launcher(_library(tmp_path_factory))) as bf:
        yield bf


_LIBRARY = {}


def _library(tmp_path_factory):
    """The emulator library, compiled once for both fixtures."""
    if "lib" not in _LIBRARY:
        _LIBRARY["lib"] = emu.compile_library(tmp_path_factory, "emu_butterfly",
                                              _emulator_source())
    return _LIBRARY["lib"]


@pytest.fixture(scope="module")
def emulated_kaleidoscope(tmp_path_factory):
    """:mod:`structlin.gpu.kaleidoscope` on the host emulator, with the butterfly launchers it
    falls back on."""
    launcher = emu.ctypes_launcher(_library(tmp_path_factory))
    with emu.emulated_launcher("butterfly", launcher), \
            emu.emulated_launcher("kaleidoscope", launcher) as kaleidoscope:
        yield kaleidoscope


def _emu_data(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return (a / np.sqrt(2)).astype(dtype)


def _emu_ref_factor(tw_k, k, y):
    b, n = y.shape
    s = 1 << k
    yy = y.reshape(b, n // (2 * s), 2, s)
    t = tw_k.reshape(n // (2 * s), s, 2, 2)
    out0 = t[..., 0, 0] * yy[:, :, 0] + t[..., 0, 1] * yy[:, :, 1]
    out1 = t[..., 1, 0] * yy[:, :, 0] + t[..., 1, 1] * yy[:, :, 1]
    return np.stack([out0, out1], axis=2).reshape(b, n)


def _emu_close(got, want, dtype):
    tol = 1e-5 if dtype in ("float32", "complex64") else 1e-12
    err = np.linalg.norm((got - want).ravel()) / max(np.linalg.norm(want.ravel()), 1e-300)
    assert err < tol, f"relative error {err:.2e}"


EMU_DTYPES = ("float32", "float64", "complex64", "complex128")

# (8, 11): two forward passes for 8-byte and 16-byte types; (1, 15): two for float32 too
BUTTERFLY_CASES = [
    (batch, L, dtype)
    for batch, L in [(3, 1), (20, 5), (9, 9), (8, 11)]
    for dtype in EMU_DTYPES
] + [(1, 15, "float32")]


@pytest.mark.parametrize("increasing", [True, False])
@pytest.mark.parametrize("batch,L,dtype", BUTTERFLY_CASES)
def test_butterfly_kernels_in_host_emulation(emulated, batch, L, dtype, increasing):
    butterfly = emulated
    n = 1 << L
    tw = _emu_data((L, n // 2, 2, 2), dtype, 1)
    x = _emu_data((batch, n), dtype, 2)
    g = _emu_data((batch, n), dtype, 3)
    order = list(range(L)) if increasing else list(range(L - 1, -1, -1))
    wide = tw.astype(np.complex128)
    inputs, y = [], x.astype(np.complex128)
    for k in order:
        inputs.append(y)
        y = _emu_ref_factor(wide[k], k, y)
    _emu_close(butterfly.apply(tw, x, increasing), y, dtype)

    gtw_want = np.zeros(tw.shape, dtype=np.complex128)
    h = g.astype(np.complex128)
    for k, u in zip(order[::-1], inputs[::-1], strict=True):
        s = 1 << k
        uu = u.reshape(batch, n // (2 * s), 2, s)
        hh = h.reshape(batch, n // (2 * s), 2, s)
        G = gtw_want[k].reshape(n // (2 * s), s, 2, 2)
        for r in range(2):
            for c in range(2):
                G[..., r, c] = (hh[:, :, r] * np.conj(uu[:, :, c])).sum(axis=0)
        h = _emu_ref_factor(np.conj(np.swapaxes(wide[k], -1, -2)), k, h)
    gtw, gx = butterfly.apply_vjp(tw, x, g, increasing)
    _emu_close(gx, h, dtype)
    _emu_close(gtw, gtw_want, dtype)


# (batch, L, width, dtype): one row per tile, several rows per tile (and a partial last tile),
# width 3; (2, 13) complex128 is longer than a tile's shared memory: the butterfly-by-butterfly
# fallback
KALEIDOSCOPE_CASES = [(3, 1, 1, "float64"), (5, 4, 2, "complex64"), (11, 6, 3, "float32"),
                      (9, 8, 1, "complex128"), (2, 13, 1, "complex128")]


@pytest.mark.parametrize("batch,L,width,dtype", KALEIDOSCOPE_CASES)
def test_kaleidoscope_kernel_in_host_emulation(emulated_kaleidoscope, batch, L, width, dtype):
    """The one-launch K-matrix product (and the fallback) against the CPU kernels on the same
    operator-form twiddle; the VJP through the emulated butterfly VJP kernels."""
    from structlin._cpu import kaleidoscope as cpu

    kaleidoscope = emulated_kaleidoscope
    n = 1 << L
    tw = _emu_data((width, 2, L, n // 2, 2, 2), dtype, 4)
    x = _emu_data((batch, n), dtype, 5)
    g = _emu_data((batch, n), dtype, 6)
    assert kaleidoscope.fused(n, x.itemsize) == (L < 13)
    wide = tw.astype(np.complex128)
    _emu_close(kaleidoscope.apply(tw, x), cpu.apply(wide, x.astype(np.complex128)), dtype)
    gtw, gx = kaleidoscope.apply_vjp(tw, x, g)
    gtw_want, gx_want = cpu.apply_vjp(wide, x.astype(np.complex128), g.astype(np.complex128))
    _emu_close(gx, gx_want, dtype)
    _emu_close(gtw, gtw_want, dtype)
