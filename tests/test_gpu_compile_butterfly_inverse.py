"""The CUDA kernels of ``butterfly_inverse.cu`` run on the host, in the emulator of
:mod:`tests.cuda_emulator`, against the Numba kernels (tested against dense references).

The launchers in :mod:`structlin.gpu.butterfly_inverse` are driven as they are, with CuPy
replaced by NumPy and each launch by a call into the host-compiled source (one ``std::thread``
per CUDA thread, ``std::barrier`` for ``__syncthreads``). The SM count is set to 1 so that
large inputs exercise the grid-stride loops and the cross-block reduction on the host. This
checks indexing, reductions and barriers, not performance or GPU memory ordering. The
compile-only check (NVRTC, compute_80/90) of this source is in ``tests/test_gpu_compile.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from structlin._cpu import butterfly_inverse as cpu
from tests import cuda_emulator as emu

DTYPES = ("float32", "float64", "complex64", "complex128")
KERNELS = {
    "butterfly_invert_blocks": "const {t}* tw, {t}* out, long long nb, double scale, int adj, "
                               "double* pr, long long* pi",
    "butterfly_slogdet_blocks": "const {t}* tw, long long nb, double* pl, "
                                "typename Wide<{t}>::type* ps",
    "butterfly_inverse_vjp_blocks": "const {t}* inv, const {t}* g, {t}* out, long long nb",
}
CALLS = {
    "butterfly_invert_blocks": "tw, out, nb, scale, adj, pr, pi",
    "butterfly_slogdet_blocks": "tw, nb, pl, ps",
    "butterfly_inverse_vjp_blocks": "inv, g, out, nb",
}


def _emulator_source() -> str:
    entries = [
        emu.entry_point(f"{name}_{code}", params.format(t=emu.qualified("emu", t)),
                        f"{name}<{emu.qualified('emu', t)}>({CALLS[name]})")
        for t, code in emu.TYPE_CODES.items()
        for name, params in KERNELS.items()
    ]
    return emu.emulator_source(emu.kernel_namespace("butterfly_inverse", "emu"),
                               "using namespace emu;", entries=entries,
                               includes=["#include <cmath>"])


@pytest.fixture(scope="module")
def gpu(tmp_path_factory):
    """``structlin.gpu.butterfly_inverse`` with its launches run by the host emulator."""
    lib = emu.compile_library(tmp_path_factory, "emu_inverse", _emulator_source())
    with emu.emulated_launcher("butterfly_inverse", emu.ctypes_launcher(lib),
                               sm_count=lambda device: 1) as butterfly_inverse:
        yield butterfly_inverse


def _blocks(nb, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((nb, 2, 2))
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal((nb, 2, 2))
    return a.astype(dtype)


def _close(got, want, dtype):
    tol = 1e-4 if dtype in ("float32", "complex64") else 1e-12
    err = np.linalg.norm((got - want).ravel()) / max(np.linalg.norm(want.ravel()), 1e-300)
    assert err < tol, f"relative error {err:.2e}"


# 1 block; part of one CUDA block; several; beyond 8 blocks x 256 threads (grid-stride loop)
SIZES = (1, 5, 700, 5000)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nb", SIZES)
def test_invert_blocks_in_host_emulation_equals_numba(gpu, nb, dtype):
    tw = _blocks(nb, dtype, nb)
    for scale, adjoint in ((1.0, False), (-2.5, True)):
        out, rcond, index = gpu.invert(tw, scale, adjoint)
        ref, rref, iref = cpu.invert(tw, scale, adjoint)
        assert out.dtype == tw.dtype and out.shape == tw.shape
        _close(out, ref, dtype)
        assert np.isclose(rcond, rref, rtol=1e-12)
        # the Numba kernel locates the minimum only where it is reported (below epsilon)
        assert index == iref or (iref == -1 and rref >= np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
def test_invert_reports_first_singular_then_nonfinite_block(gpu, dtype):
    tw = _blocks(5000, dtype, 1)
    tw[4321] = 0
    tw[977] = [[1, 2], [2, 4]]
    tw[3000] = 0
    out, rcond, index = gpu.invert(tw)
    assert (rcond, index) == (0.0, 977)
    np.testing.assert_array_equal(out[977], 0)
    tw[2500, 1, 0] = np.nan
    tw[4000, 0, 0] = np.inf
    assert gpu.invert(tw)[1:] == (-1.0, 2500)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nb", SIZES)
def test_slogdet_blocks_in_host_emulation_equals_numba(gpu, nb, dtype):
    tw = _blocks(nb, dtype, 7 * nb)
    sign, logabs = gpu.slogdet(tw)
    rsign, rlog = cpu.slogdet(tw)
    assert np.isclose(logabs, rlog, rtol=1e-12)
    assert abs(complex(sign) - complex(rsign)) < 1e-9
    tw[nb // 2] = 0
    assert gpu.slogdet(tw) == (0, -np.inf)
    tw[nb - 1, 0, 1] = np.inf
    assert np.isnan(gpu.slogdet(tw)[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nb", SIZES)
def test_inverse_vjp_blocks_in_host_emulation_equals_numba(gpu, nb, dtype):
    v = _blocks(nb, dtype, 3 * nb)
    g = _blocks(nb, dtype, 5 * nb)
    _close(gpu.inverse_vjp(v, g), cpu.inverse_vjp(v, g), dtype)


def test_empty_inputs(gpu):
    tw = np.zeros((0, 0, 2, 2), np.float32)
    out, rcond, index = gpu.invert(tw)
    assert out.shape == (0, 0, 2, 2) and rcond == np.inf and index == -1
    assert gpu.slogdet(tw) == (1.0, 0.0)
    assert gpu.inverse_vjp(tw, tw).shape == tw.shape
