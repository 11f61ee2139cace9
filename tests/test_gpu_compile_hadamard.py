"""The Walsh–Hadamard CUDA kernel (``structlin/gpu/hadamard.cu``) runs in the host emulator.

:mod:`tests.cuda_emulator` compiles the source with the host C++ compiler and the real launcher
of :mod:`structlin.gpu.hadamard` drives it through NumPy arrays (with 4 "SMs", so that the
tile schedule has several rounds), against ``scipy.linalg.hadamard`` or, for long transforms,
the Kronecker factors of the Sylvester construction. NVRTC compilation of the source is checked by
``tests/test_gpu_compile.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from tests import cuda_emulator as emu

NS = "emu_hadamard"


def _emulator_source() -> str:
    entries = []
    for t, code in emu.TYPE_CODES.items():
        th = emu.qualified(NS, t)
        entries.append(emu.entry_point(
            f"fwht_pass_{code}",
            "void* x, void* y, long long batch, long long n, int k0, int k1, int wb, int rb",
            f"{NS}::fwht_pass<{th}>(({th}*)x, ({th}*)y, batch, n, k0, k1, wb, rb)"))
    return emu.emulator_source(emu.kernel_namespace("hadamard", NS), entries=entries)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """:mod:`structlin.gpu.hadamard` with its launches running on the host emulator."""
    lib = emu.compile_library(tmp_path_factory, "emu_hadamard", _emulator_source())
    with emu.emulated_launcher("hadamard", emu.ctypes_launcher(lib),
                               sm_count=lambda device: 4) as hadamard:
        yield hadamard


def _emu_data(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return (a / np.sqrt(2)).astype(dtype)


def _sylvester_fwht(x):
    """``H_n x`` for each row of ``x``: ``H_n = H_2 ⊗ ... ⊗ H_2``, so ``H_2`` along each of the
    ``log2(n)`` binary axes of a row."""
    b, n = x.shape
    L = n.bit_length() - 1
    y = x.astype(np.complex128).reshape((b,) + (2,) * L)
    for axis in range(1, L + 1):
        a0, a1 = np.take(y, 0, axis=axis), np.take(y, 1, axis=axis)
        y = np.stack([a0 + a1, a0 - a1], axis=axis)
    return y.reshape(b, n)


def _emu_close(got, want, dtype):
    tol = 1e-5 if dtype in ("float32", "complex64") else 1e-12
    err = np.linalg.norm((got - want).ravel()) / max(np.linalg.norm(want.ravel()), 1e-300)
    assert err < tol, f"relative error {err:.2e}"


EMU_DTYPES = ("float32", "float64", "complex64", "complex128")


@pytest.mark.parametrize("dtype", EMU_DTYPES)
@pytest.mark.parametrize("batch,L", [(3, 1), (5, 4), (9, 7), (2, 11), (1, 15)])
def test_fwht_kernel_in_host_emulation(emulated, batch, L, dtype):
    hadamard = emulated
    n = 1 << L
    x = _emu_data((batch, n), dtype, L)
    y = hadamard.fwht(x)
    if n <= 2048:
        want = x.astype(np.complex128) @ scipy.linalg.hadamard(n).T
    else:
        want = _sylvester_fwht(x)
    _emu_close(y, want, dtype)
