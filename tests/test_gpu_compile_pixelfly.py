"""The Pixelfly CUDA kernels run on the host in the emulator of :mod:`tests.cuda_emulator`.

``pixelfly.cu`` is compiled by the host C++ compiler with the shim (one ``std::thread`` per CUDA
thread, ``std::barrier`` for ``__syncthreads``, shared memory filled with NaN bytes) and driven
by the real launcher :mod:`structlin.gpu.pixelfly` through NumPy arrays. It checks the tile
indexing, the chunked reductions and the barriers for every dtype and for block sizes that do
and do not divide the tile sizes -- not performance or warp-level behaviour. NVRTC compilation
of the same source is checked by ``test_gpu_compile.py`` (every ``.cu`` file).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests import cuda_emulator as emu

EMU_DTYPES = ("float32", "float64", "complex64", "complex128")


def _emulator_source() -> str:
    entries = []
    for t, code in emu.TYPE_CODES.items():
        tt = emu.qualified("emu_pixelfly", t)
        entries.append(emu.entry_point(
            f"pixelfly_bsr_matmul_{code}",
            "void* x, void* blocks, void* indptr, void* indices, void* y, long long batch, "
            "long long n_in, long long n_out, int bs, int nbo, int tb, int cw, int kc",
            f"emu_pixelfly::pixelfly_bsr_matmul<{tt}>(({tt}*)x, ({tt}*)blocks, "
            f"(long long*)indptr, (long long*)indices, ({tt}*)y, batch, n_in, n_out, bs, nbo, "
            "tb, cw, kc)"))
        entries.append(emu.entry_point(
            f"pixelfly_bsr_grad_blocks_{code}",
            "void* g, void* x, void* rows, void* indices, void* gb, long long batch, "
            "long long n_in, long long n_out, int bs, int rc, int cc, int tb",
            f"emu_pixelfly::pixelfly_bsr_grad_blocks<{tt}>(({tt}*)g, ({tt}*)x, "
            f"(long long*)rows, (long long*)indices, ({tt}*)gb, batch, n_in, n_out, bs, rc, "
            "cc, tb)"))
    return emu.emulator_source(emu.kernel_namespace("pixelfly", "emu_pixelfly"),
                               entries=entries)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """The launcher module :mod:`structlin.gpu.pixelfly`, patched to run on the host shim."""
    lib = emu.compile_library(tmp_path_factory, "emu_pixelfly", _emulator_source())

    emu_launch = emu.ctypes_launcher(lib)

    def launch(kernel, blocks, threads, args, smem):
        assert smem <= 48 * 1024, smem  # every geometry fits without opting in
        emu_launch(kernel, blocks, threads, args, smem)

    with emu.emulated_launcher("pixelfly", launch) as pixelfly:
        yield pixelfly


def _data(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return (a / np.sqrt(2)).astype(dtype)


def _structure(mask):
    rows, cols = np.nonzero(mask)
    indptr = np.zeros(mask.shape[0] + 1, np.int64)
    np.cumsum(mask.sum(axis=1), out=indptr[1:])
    return indptr, cols.astype(np.int64), rows.astype(np.int64)


def _close(got, want, dtype):
    tol = 1e-5 if dtype in ("float32", "complex64") else 1e-12
    err = np.linalg.norm((got - want).ravel()) / max(np.linalg.norm(want.ravel()), 1e-300)
    assert err < tol, f"relative error {err:.2e}"


# (batch, nbo, nbi, bs): tiles with partial batch tiles, block sizes above the column chunk
# (80 > 64) and the reduction chunk (40 > 32), a block row without blocks, bs = 1
CASES = [(3, 4, 4, 2), (37, 3, 5, 8), (5, 2, 3, 40), (2, 2, 1, 80), (70, 6, 2, 1)]


@pytest.mark.parametrize("dtype", EMU_DTYPES)
@pytest.mark.parametrize("batch,nbo,nbi,bs", CASES)
def test_pixelfly_kernels_in_host_emulation_match_dense(emulated, batch, nbo, nbi, bs, dtype):
    rng = np.random.default_rng(batch * 1000 + bs)
    mask = rng.random((nbo, nbi)) < 0.6
    mask[0] = False  # a block row with no stored block must give zeros
    mask[-1, 0] = True
    indptr, indices, rows = _structure(mask)
    nnz = len(indices)
    blocks = _data(rng, (nnz, bs, bs), dtype)
    x = _data(rng, (batch, nbi * bs), dtype)
    g = _data(rng, (batch, nbo * bs), dtype)
    S = np.zeros((nbo, nbi, bs, bs), np.complex128)
    S[rows, indices] = blocks
    S = S.transpose(0, 2, 1, 3).reshape(nbo * bs, nbi * bs)

    _close(emulated.bsr_matmul(blocks, indptr, indices, x), x @ S.T, dtype)
    U = _data(rng, (nbo * bs, 2), dtype)
    xv = _data(rng, (batch, 2), dtype)
    _close(emulated.matmul(blocks, indptr, indices, x, U, xv), x @ S.T + xv @ U.T, dtype)

    gM = (g.astype(np.complex128).T @ np.conj(x)).reshape(nbo, bs, nbi, bs)
    want = gM.transpose(0, 2, 1, 3)[rows, indices]
    _close(emulated.bsr_grad_blocks(g, x, indptr, indices, rows), want, dtype)


def test_geometries_fit_default_shared_memory():
    from structlin.gpu import pixelfly

    for bs in range(1, 300):
        for itemsize in (4, 8, 16):
            tb, cw, _, smem = pixelfly.matmul_geometry(bs, itemsize)
            assert tb * cw <= pixelfly.OUT * pixelfly.THREADS and smem <= 48 * 1024, bs
            rc, cc, _, smem = pixelfly.grad_geometry(bs, itemsize)
            assert rc * cc <= pixelfly.OUT * pixelfly.THREADS and smem <= 48 * 1024, bs
