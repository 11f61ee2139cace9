"""The CUDA level kernel of butterfly_factorize runs in the host emulator of
:mod:`tests.cuda_emulator` (one std::thread per CUDA thread), driven by the real launcher on
NumPy arrays, and must agree with the Numba kernel. This checks the kernel's indexing and
arithmetic without a GPU (not its performance)."""

from __future__ import annotations

import numpy as np
import pytest

from tests import cuda_emulator as emu
from tests.strategies import random_array, tolerance


def _emulator_source() -> str:
    entries = []
    for t, code in emu.TYPE_CODES.items():
        tt = emu.qualified("emu_bf", t)
        entries.append(emu.entry_point(
            f"butterfly_factorize_level_{code}",
            "void* M, void* out, void* tw, void* sums, long long C, long long N",
            f"emu_bf::butterfly_factorize_level<{tt}>(({tt}*)M, ({tt}*)out, ({tt}*)tw, "
            "(double*)sums, C, N)"))
    return emu.emulator_source(
        emu.kernel_namespace("butterfly_factorization", "emu_bf", prelude="using std::sqrt;",
                             shared=False),
        entries=entries, includes=["#include <cmath>"])


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """The launcher module with CuPy, kernel lookup and launch replaced by the host emulator."""
    lib = emu.compile_library(tmp_path_factory, "emu_bf", _emulator_source())
    launch = emu.ctypes_launcher(lib, scalars=(np.int64,))
    with emu.emulated_launcher("butterfly_factorization", launch) as gpu_bf:
        yield gpu_bf


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("C,N", [(1, 2), (1, 64), (2, 16), (4, 32), (8, 4), (1, 1024)])
def test_emulated_cuda_level_matches_numba_level(emulated, dt, C, N):
    from structlin._cpu.butterfly_factorization import peel_level

    M = random_array(np.random.default_rng(C * N), (C, N, N), dt)
    M[0, :, :2] = 0  # a zero submatrix: the eigenvector falls back to (1, 0) on both paths
    tw_gpu = np.zeros((N // 2, C, 2, 2), dt)
    tw_cpu = np.zeros((N // 2, C, 2, 2), dt)
    out_gpu, r2_gpu, m2_gpu = emulated.peel_level(M, tw_gpu)
    out_cpu, r2_cpu, m2_cpu = peel_level(M, tw_cpu)
    tol = tolerance(dt, N) * 10
    scale = float(np.abs(M).max())
    # same formulas in the same order: equal up to rounding (no phase ambiguity)
    assert np.abs(tw_gpu - tw_cpu).max() <= tol
    assert np.abs(out_gpu - out_cpu).max() <= tol * scale * np.sqrt(N)
    assert float(r2_gpu) == pytest.approx(r2_cpu, rel=tol, abs=tol * float(m2_cpu))
    assert float(m2_gpu) == pytest.approx(m2_cpu, rel=tol)


def test_emulated_cuda_path_factorizes_the_bit_reversed_dft_exactly(emulated, monkeypatch):
    import importlib

    import structlin as sl

    bf = importlib.import_module("structlin.butterfly_factorization")
    monkeypatch.setattr(bf, "kernels", lambda xp, family: emulated)
    n = 64
    F = np.fft.fft(np.eye(n))[:, sl.bit_reversal_permutation(n)]
    tw, err = sl.butterfly_factorize(F)
    assert err <= 1e-14
    np.testing.assert_allclose(sl.butterfly_to_dense(tw), F, atol=1e-12)
