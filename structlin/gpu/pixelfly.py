"""CUDA block-sparse kernels of Pixelfly (launchers of ``pixelfly.cu``).

Contract (shared with :mod:`structlin._cpu.pixelfly`): ``S`` in block CSR over its block
rows, ``indptr`` (int64, ``nbo + 1``), ``indices`` (int64, ``nnz``: block column of each stored
block), ``rows`` (int64, ``nnz``: block row of each stored block), ``blocks`` C-contiguous
``(nnz, bs, bs)`` with the dtype of ``x``; ``x`` and ``g`` C-contiguous ``(batch, n)``.

- ``matmul(blocks, indptr, indices, x, U, xv)`` returns ``x @ S.T + xv @ U.T``, shape
  ``(batch, nbo * bs)``, with ``U`` C-contiguous ``(nbo * bs, r)`` and ``xv`` ``(batch, r)``
  (``bsr_matmul(blocks, indptr, indices, x)``: the block-sparse term alone);
- ``bsr_grad_blocks(g, x, indptr, indices, rows)`` returns ``G[k] = g[:, I_k]^T conj(x[:, J_k])``.

Tiles: each thread owns :data:`OUT` outputs, so a block of :data:`THREADS` threads computes
``OUT * THREADS`` outputs. The product tiles a block row's output as ``tb`` batch rows x ``cw``
columns (``cw = min(bs, 64)``, ``tb = 1024 // cw``) and reduces over the row's blocks in
chunks of ``kc = min(bs, 32)`` columns; the block gradient tiles each stored block as ``rc`` x
``cc`` outputs and reduces over the batch in steps of :data:`GRAD_ROWS` rows. Shared memory
stays below 48 KiB for every block size and dtype. The low-rank part is cuBLAS (CuPy matmul)
in :mod:`structlin.pixelfly`.
"""

from __future__ import annotations

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, instantiations, launch, type_name

__all__ = ["NAME_EXPRESSIONS", "bsr_grad_blocks", "bsr_matmul", "matmul"]

NAME_EXPRESSIONS = instantiations("pixelfly_bsr_matmul") + instantiations(
    "pixelfly_bsr_grad_blocks"
)

THREADS = 256
#: outputs per thread (PF_OUT in pixelfly.cu)
OUT = 4
#: widest column chunk of a tile
MAX_COLS = 64
#: reduction chunk of the product (columns of a block staged at once)
MAX_K = 32
#: batch rows staged per step of the block-gradient reduction
GRAD_ROWS = 32


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def matmul_geometry(bs: int, itemsize: int) -> tuple[int, int, int, int]:
    """``(tb, cw, kc, shared bytes)`` of the product's tiles for block size ``bs``."""
    cw = min(bs, MAX_COLS)
    tb = max(1, OUT * THREADS // cw)
    kc = min(bs, MAX_K)
    return tb, cw, kc, (tb * kc + kc * (cw + 1)) * itemsize


def grad_geometry(bs: int, itemsize: int) -> tuple[int, int, int, int]:
    """``(rc, cc, tb, shared bytes)`` of the block-gradient tiles for block size ``bs``."""
    cc = min(bs, MAX_COLS)
    rc = min(bs, max(1, OUT * THREADS // cc))
    return rc, cc, GRAD_ROWS, GRAD_ROWS * (rc + cc) * itemsize


def bsr_matmul(blocks: cupy.ndarray, indptr: cupy.ndarray, indices: cupy.ndarray,
               x: cupy.ndarray) -> cupy.ndarray:
    """Return ``x @ S.T`` for the block-CSR matrix ``S`` (see the module docstring)."""
    bs = blocks.shape[1]
    nbo = indptr.shape[0] - 1
    batch, n_in = x.shape
    n_out = nbo * bs
    y = cupy.empty((batch, n_out), dtype=x.dtype)
    if batch == 0 or n_out == 0:
        return y
    tb, cw, kc, smem = matmul_geometry(bs, x.itemsize)
    kernel = get_kernel("pixelfly", NAME_EXPRESSIONS,
                        f"pixelfly_bsr_matmul<{type_name(x.dtype)}>")
    grid = _cdiv(batch, tb) * nbo * _cdiv(bs, cw)
    args = (x, blocks, indptr, indices, y, np.int64(batch), np.int64(n_in), np.int64(n_out),
            np.int32(bs), np.int32(nbo), np.int32(tb), np.int32(cw), np.int32(kc))
    launch(kernel, grid, THREADS, args, smem)
    return y


def matmul(blocks: cupy.ndarray, indptr: cupy.ndarray, indices: cupy.ndarray, x: cupy.ndarray,
           U: cupy.ndarray, xv: cupy.ndarray) -> cupy.ndarray:
    """Return ``x @ S.T + xv @ U.T``: the block-sparse kernel, then one cuBLAS GEMM."""
    y = bsr_matmul(blocks, indptr, indices, x)
    if U.shape[1] and y.size:
        y += xv @ U.T
    return y


def bsr_grad_blocks(g: cupy.ndarray, x: cupy.ndarray, indptr: cupy.ndarray,
                    indices: cupy.ndarray, rows: cupy.ndarray) -> cupy.ndarray:
    """Return ``G[k] = g[:, I_k]^T conj(x[:, J_k])`` (see the module docstring)."""
    nnz = indices.shape[0]
    nbo = indptr.shape[0] - 1
    batch, n_in = x.shape
    n_out = g.shape[1]
    bs = n_out // nbo if nbo else 0
    if nnz == 0 or batch == 0:
        return cupy.zeros((nnz, bs, bs), dtype=x.dtype)
    gb = cupy.empty((nnz, bs, bs), dtype=x.dtype)
    rc, cc, tb, smem = grad_geometry(bs, x.itemsize)
    kernel = get_kernel("pixelfly", NAME_EXPRESSIONS,
                        f"pixelfly_bsr_grad_blocks<{type_name(x.dtype)}>")
    grid = nnz * _cdiv(bs, rc) * _cdiv(bs, cc)
    args = (g, x, rows, indices, gb, np.int64(batch), np.int64(n_in), np.int64(n_out),
            np.int32(bs), np.int32(rc), np.int32(cc), np.int32(tb))
    launch(kernel, grid, THREADS, args, smem)
    return gb
