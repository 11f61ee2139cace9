"""The DCT/DST pre- and post-processing CUDA kernels, run on the host (no GPU needed).

``butterfly_special.cu`` is compiled by the host C++ compiler with the thread shim of
:mod:`tests.cuda_emulator` (one std::thread per CUDA thread, blocks one after another),
and the real launchers of :mod:`structlin.gpu.butterfly_special` drive it through NumPy arrays.
This checks the index arithmetic and the grid-stride loops against the Numba kernels, which
share the contract. (NVRTC compilation of the source is checked by ``test_gpu_compile.py``.)
"""

from __future__ import annotations

import numpy as np
import pytest

from structlin._cpu import butterfly_special as cpu
from tests import cuda_emulator as emu

_SIGS = {
    "special_gather_packed": "void* x, void* ia, void* wa, void* ib, void* wb, void* u, "
                             "long long b, long long n, int c, long long m, int two",
    "special_take_real_packed": "void* v, void* ic, void* cw, void* y, long long b, "
                                "long long N, int c, long long m",
    "special_gather": "void* x, void* ia, void* wa, void* ib, void* wb, void* u, long long b, "
                      "long long n, int c, long long m, int two",
    "special_take_real": "void* v, void* ic, void* cw, void* y, long long b, long long N, int c, "
                         "long long m",
    "special_take_real_transpose": "void* g, void* ic, void* cw, void* u, long long b, "
                                   "long long N, int c, long long m",
    "special_gather_transpose": "void* u, void* ia, void* wa, void* ib, void* wb, void* x, "
                                "long long b, long long n, int c, long long m, int two",
}
_CASTS = {
    "special_gather_packed": "(const R*)x, (const long long*)ia, (const C*)wa, "
                             "(const long long*)ib, (const C*)wb, (C*)u, b, n, c, m, two",
    "special_take_real_packed": "(const C*)v, (const long long*)ic, (const C*)cw, (R*)y, "
                                "b, N, c, m",
    "special_gather": "(const R*)x, (const long long*)ia, (const C*)wa, (const long long*)ib, "
                      "(const C*)wb, (C*)u, b, n, c, m, two",
    "special_take_real": "(const C*)v, (const long long*)ic, (const C*)cw, (R*)y, b, N, c, m",
    "special_take_real_transpose": "(const R*)g, (const long long*)ic, (const C*)cw, (C*)u, "
                                   "b, N, c, m",
    "special_gather_transpose": "(const C*)u, (const long long*)ia, (const C*)wa, "
                                "(const long long*)ib, (const C*)wb, (R*)x, b, n, c, m, two",
}


def _source() -> str:
    # the kernels are templated on the real type R only; the entry points name both R and C
    entries = [
        emu.entry_point(f"{kernel}_{code}", sig,
                        f"using R = {real}; using C = emu_special::sl::complex<{real}>; "
                        f"emu_special::{kernel}<R>({_CASTS[kernel]})")
        for kernel, sig in _SIGS.items()
        for real, code in (("float", "f32"), ("double", "f64"))
    ]
    return emu.emulator_source(
        emu.kernel_namespace("butterfly_special", "emu_special",
                             replace=[("__restrict__", "")]),
        entries=entries)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    lib = emu.compile_library(tmp_path_factory, "emu_special", _source())
    # two blocks per "SM": small grids, so the grid-stride loops run several rounds
    with emu.emulated_launcher("butterfly_special", emu.ctypes_launcher(lib),
                               sm_count=lambda device: 1, BLOCKS_PER_SM=2,
                               THREADS=32) as gpu:
        yield gpu


def _pieces_arrays(kind, n, type, cdt):
    import structlin.butterfly_special as bs

    p = bs._dct_pieces(kind, n, type, "ortho")
    ia = np.ascontiguousarray(p.input_index[0])
    wa = np.ascontiguousarray(p.input_weight[0], dtype=cdt)
    if type == 4:
        ib = np.ascontiguousarray(p.input_index[1])
        wb = np.ascontiguousarray(p.input_weight[1], dtype=cdt)
    else:
        ib = np.zeros(0, np.int64)
        wb = np.zeros(0, cdt)
    return ia, wa, ib, wb, p.output_index.copy(), np.asarray(p.output_weight, dtype=cdt)


@pytest.mark.parametrize("real", [np.float32, np.float64])
@pytest.mark.parametrize("c", [1, 2])
@pytest.mark.parametrize("kind,n,type", [("dct", 16, 2), ("dst", 8, 3), ("dct", 64, 4),
                                         ("dst", 2, 4), ("dct", 1, 2)])
def test_special_kernels_in_host_emulation_match_numba(emulated, kind, n, type, c, real):
    gpu = emulated
    cdt = np.result_type(real, np.complex64)
    ia, wa, ib, wb, ic, cw = _pieces_arrays(kind, n, type, cdt)
    m = ia.shape[0]
    rng = np.random.default_rng(n * 10 + type)
    b = 3
    x3 = rng.standard_normal((b, n, c)).astype(real)
    tol = 1e-5 if real == np.float32 else 1e-13

    u_cpu = cpu.gather(x3, ia, wa, ib, wb, m)
    u_gpu = gpu.gather(x3, ia, wa, ib, wb, m)
    np.testing.assert_allclose(u_gpu, u_cpu, rtol=tol, atol=tol)

    v = (rng.standard_normal((b * c, m)) + 1j * rng.standard_normal((b * c, m))).astype(cdt)
    np.testing.assert_allclose(gpu.take_real(v, ic, cw, c), cpu.take_real(v, ic, cw, c),
                               rtol=tol, atol=tol)

    g3 = rng.standard_normal((b, n, c)).astype(real)
    np.testing.assert_allclose(gpu.take_real_transpose(g3, ic, cw, m),
                               cpu.take_real_transpose(g3, ic, cw, m), rtol=tol, atol=tol)
    np.testing.assert_allclose(gpu.gather_transpose(v, ia, wa, ib, wb, n, c),
                               cpu.gather_transpose(v, ia, wa, ib, wb, n, c),
                               rtol=tol, atol=tol)


def test_numba_gather_transpose_is_adjoint_of_gather():
    cdt = np.complex128
    ia, wa, ib, wb, ic, cw = _pieces_arrays("dct", 16, 4, cdt)
    rng = np.random.default_rng(0)
    x3 = rng.standard_normal((2, 16, 2))
    w = rng.standard_normal((4, 8)) + 1j * rng.standard_normal((4, 8))
    lhs = np.real(np.vdot(w, cpu.gather(x3, ia, wa, ib, wb, 8)))
    rhs = np.vdot(cpu.gather_transpose(w, ia, wa, ib, wb, 16, 2), x3)
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)
    g3 = rng.standard_normal((2, 16, 2))
    lhs = np.vdot(g3, cpu.take_real(w, ic, cw, 2))
    rhs = np.real(np.vdot(cpu.take_real_transpose(g3, ic, cw, 8), w))
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


@pytest.mark.parametrize("real", [np.float32, np.float64])
@pytest.mark.parametrize("b,c", [(1, 1), (3, 1), (4, 1), (3, 2)])
@pytest.mark.parametrize("kind,n", [("dct", 32), ("dst", 8), ("dct", 1)])
def test_packed_kernels_in_host_emulation_match_numba(emulated, kind, n, b, c, real):
    gpu = emulated
    cdt = np.result_type(real, np.complex64)
    ia, wa, ib, wb, ic, cw = _pieces_arrays(kind, n, 2, cdt)
    rng = np.random.default_rng(n + b)
    x3 = rng.standard_normal((b, n, c)).astype(real)
    tol = 1e-5 if real == np.float32 else 1e-13
    u = cpu.gather_packed(x3, ia, wa, ib, wb, n)
    np.testing.assert_allclose(gpu.gather_packed(x3, ia, wa, ib, wb, n), u, rtol=tol, atol=tol)
    v = (rng.standard_normal(u.shape) + 1j * rng.standard_normal(u.shape)).astype(cdt)
    np.testing.assert_allclose(gpu.take_real_packed(v, ic, cw, b, c),
                               cpu.take_real_packed(v, ic, cw, b, c), rtol=tol, atol=tol)


def test_numba_packed_path_equals_unpacked_path_for_a_dft_butterfly():
    import structlin as sl

    ia, wa, ib, wb, ic, cw = _pieces_arrays("dst", 16, 2, np.complex128)
    tw = sl.butterfly_dft(16)
    x3 = np.random.default_rng(1).standard_normal((5, 16, 1))
    packed = cpu.take_real_packed(sl.butterfly_multiply(tw, cpu.gather_packed(
        x3, ia, wa, ib, wb, 16)), ic, cw, 5, 1)
    plain = cpu.take_real(sl.butterfly_multiply(tw, cpu.gather(x3, ia, wa, ib, wb, 16)),
                          ic, cw, 1)
    np.testing.assert_allclose(packed, plain, atol=1e-12)


@pytest.mark.parametrize("kind", ["dct", "dst"])
@pytest.mark.parametrize("type", [2, 3, 4])
@pytest.mark.parametrize("dt", [np.float32, np.complex128])
def test_public_transforms_on_emulated_launchers_equal_scipy(emulated, monkeypatch, kind, type,
                                                            dt):
    # the public functions drive the CUDA launchers (host emulation) instead of Numba: the
    # launchers honour the same contract, packed type-2 path and VJP transposes included
    import scipy.fft

    import structlin as sl
    import structlin.dct_dst as bs  # the DCT/DST module calls the kernels since the split

    real_kernels = bs.kernels
    monkeypatch.setattr(bs, "kernels", lambda xp, family: emulated
                        if family == "butterfly_special" else real_kernels(xp, family))
    rng = np.random.default_rng(type)
    x = rng.standard_normal((3, 16)).astype(dt)
    g = rng.standard_normal((3, 16)).astype(dt)
    if np.dtype(dt).kind == "c":
        x = x + 1j * rng.standard_normal((3, 16))
    tol = 1e-5 if dt == np.float32 else 1e-12
    ref = getattr(scipy.fft, kind)(x, type, norm="ortho")
    np.testing.assert_allclose(getattr(sl, kind)(x, type, "ortho"), ref, rtol=tol, atol=tol)
    M = getattr(scipy.fft, kind)(np.eye(16), type, norm="ortho", axis=0)
    np.testing.assert_allclose(getattr(sl, f"{kind}_vjp")(x, g, type, "ortho"), g @ M,
                               rtol=tol, atol=tol)
