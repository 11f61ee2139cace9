"""CUDA chains of block-diagonal factors (launchers of ``monarch.cu``) and batched low rank.

Contract (shared with :mod:`structlin._cpu.monarch`): a factor is ``(w, pre, post)`` with ``w``
C-contiguous ``(pre * post, n_out, n_in)`` of ``x``'s dtype, mapping a row viewed as
``(pre, n_in, post)`` to ``(pre, n_out, post)``; ``apply(x, factors, precision)`` applies the
chain to every row of the C-contiguous ``(batch, n)`` array ``x``;
``weight_grad(x, gy, pre, post, n_out)`` returns ``G[b] = sum_rows gy_b^T conj(x_b)``;
``low_rank(S, rank, tol, max_iter)`` returns balanced best rank-``rank`` factors of a stack.

Each factor is one launch of a shared-memory tiled batched GEMM (32 x 32 output tiles of one
diagonal block per CUDA block); the view ``(pre, n, post)`` is index arithmetic, so the Monarch
transpose costs nothing. The weight gradient splits the batch into chunks whose partial sums
are added with atomics (float32 accumulates in float32; the last bits vary between runs).

Tensor cores (``precision="tf32"|"bf16"``, float32 and complex64 data): ``apply`` and
``weight_grad`` take ``precision`` and then launch ``blockdiag_apply_tc`` /
``blockdiag_weight_grad_tc``, the same products with operands rounded to TF32 (``cvt.rna``:
nearest, ties away from zero) or bfloat16 (nearest even) when staged in shared memory, and
``mma.sync`` m16n8k8 (TF32) / m16n8k16 (BF16) with fp32 accumulation; 64 x 32 output tiles,
4 warps, a complex product as four real ones. Relative error of a Monarch product of random
factors: about ``4e-4`` (TF32) and ``3e-3`` (BF16), against ``1e-7`` in full fp32.

Unverified: none of this code has run on a GPU. Every kernel is compiled by NVRTC (compute_80
and compute_90) and run, tensor-core paths included, by the host emulator of
tests/test_gpu_compile_monarch.py, which emulates ``mma.sync`` from the PTX ISA's fragment
layouts.
"""

from __future__ import annotations

import math

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, instantiations, launch, type_name

__all__ = ["NAME_EXPRESSIONS", "apply", "low_rank", "weight_grad"]

#: precision keyword -> the PREC template argument of the tensor-core kernels (0: CUDA cores)
PRECISIONS = {"highest": 0, "tf32": 1, "bf16": 2}
_TC_DTYPES = (np.dtype(np.float32), np.dtype(np.complex64))


def _tc_name(template: str, dtype, code: int) -> str:
    return f"{template}_tc<{type_name(dtype)}, {code}>"


NAME_EXPRESSIONS = (
    instantiations("blockdiag_apply")
    + instantiations("blockdiag_weight_grad")
    + tuple(_tc_name(t, d, c) for t in ("blockdiag_apply", "blockdiag_weight_grad")
            for d in _TC_DTYPES for c in (1, 2))
)

TILE = 32
THREADS = 256
#: batch rows summed by one CUDA block of the weight gradient before its atomic add
GRAD_CHUNK = 1024
#: tensor-core tiles (TC_BM x TC_BN outputs, TC_BK deep), as in monarch.cu
TC_BM, TC_BN, TC_BK = 64, 32, 32
TC_THREADS = 128


def _smem(itemsize: int) -> int:
    return 2 * TILE * (TILE + 1) * itemsize


def _tc_smem(dtype) -> int:
    planes = 2 if np.dtype(dtype).kind == "c" else 1
    return planes * (TC_BM + TC_BN) * (TC_BK + 4) * 4


def precision_code(precision: str, dtype) -> int:
    """The kernels' code for ``precision`` (0: full precision), checked against ``dtype``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    code = PRECISIONS[precision]
    if code and np.dtype(dtype) not in _TC_DTYPES:
        raise ValueError(
            f"precision={precision!r} (tensor cores) needs float32 or complex64 data, got "
            f"{np.dtype(dtype)}; use precision='highest'"
        )
    return code


def _apply_factor(x, w, pre, post, code=0):
    batch = x.shape[0]
    nblk, n_out, n_in = w.shape
    y = cupy.empty((batch, pre * n_out * post), dtype=x.dtype)
    if batch == 0 or y.shape[1] == 0:
        return y
    if n_in == 0:
        y.fill(0)
        return y
    args = (x, w, y, np.int64(batch), np.int32(pre), np.int32(post), np.int32(n_in),
            np.int32(n_out))
    if code:
        kernel = get_kernel("monarch", NAME_EXPRESSIONS, _tc_name("blockdiag_apply", x.dtype, code))
        blocks = nblk * math.ceil(batch / TC_BM) * math.ceil(n_out / TC_BN)
        launch(kernel, blocks, TC_THREADS, args, _tc_smem(x.dtype))
        return y
    kernel = get_kernel("monarch", NAME_EXPRESSIONS, f"blockdiag_apply<{type_name(x.dtype)}>")
    blocks = nblk * math.ceil(batch / TILE) * math.ceil(n_out / TILE)
    launch(kernel, blocks, THREADS, args, _smem(x.itemsize))
    return y


def apply(x: cupy.ndarray, factors, precision: str = "highest") -> cupy.ndarray:
    """Return the chain's product with every row of ``x`` (see the module contract)."""
    code = precision_code(precision, x.dtype)
    for w, pre, post in factors:
        if w.dtype != x.dtype or not w.flags.c_contiguous:
            raise ValueError(f"w must be C-contiguous {x.dtype}, got {w.dtype}")
        if x.shape[1] != pre * w.shape[2] * post:
            raise ValueError(
                f"x has {x.shape[1]} columns, the factor takes {pre * w.shape[2] * post}"
            )
        x = _apply_factor(x, w, pre, post, code)
    return x


def weight_grad(x: cupy.ndarray, gy: cupy.ndarray, pre: int, post: int, n_out: int,
                precision: str = "highest") -> cupy.ndarray:
    """Return ``G (pre * post, n_out, n_in)`` (see the module contract)."""
    code = precision_code(precision, x.dtype)
    batch, n = x.shape
    n_in = n // (pre * post)
    G = cupy.zeros((pre * post, n_out, n_in), dtype=x.dtype)
    if batch == 0 or G.size == 0:
        return G
    chunks = math.ceil(batch / GRAD_CHUNK)
    args = (x, gy, G, np.int64(batch), np.int32(pre), np.int32(post), np.int32(n_in),
            np.int32(n_out), np.int64(GRAD_CHUNK))
    if code:
        kernel = get_kernel("monarch", NAME_EXPRESSIONS,
                            _tc_name("blockdiag_weight_grad", x.dtype, code))
        blocks = pre * post * math.ceil(n_out / TC_BM) * math.ceil(n_in / TC_BN) * chunks
        launch(kernel, blocks, TC_THREADS, args, _tc_smem(x.dtype))
        return G
    kernel = get_kernel("monarch", NAME_EXPRESSIONS,
                        f"blockdiag_weight_grad<{type_name(x.dtype)}>")
    blocks = pre * post * math.ceil(n_out / TILE) * math.ceil(n_in / TILE) * chunks
    launch(kernel, blocks, THREADS, args, _smem(x.itemsize))
    return G


def low_rank(S: cupy.ndarray, rank: int, tol: float, max_iter: int):
    """Balanced best rank-``rank`` factors ``(L, R)`` of every matrix of the stack ``S``.

    Block subspace iteration with Rayleigh-Ritz on the Gram matrix of the smaller side
    (``rank + 4`` vectors, fixed-seed start) with batched cuBLAS/cuSOLVER calls, stopped when
    the captured energy grows by less than ``tol`` times the residual energy.
    """
    nb, m, n = S.shape
    wide = m < n
    if wide:
        S = cupy.conj(cupy.swapaxes(S, 1, 2))
        m, n = n, m
    S = cupy.ascontiguousarray(S)
    G = cupy.conj(cupy.swapaxes(S, 1, 2)) @ S
    total = float(cupy.real(cupy.trace(G, axis1=1, axis2=2)).sum())
    kk = min(rank + 4, n)
    rng = np.random.default_rng(0)
    Q, _ = cupy.linalg.qr(cupy.asarray(rng.standard_normal((nb, n, kk))).astype(S.dtype))
    floor = 16 * np.finfo(np.float64).eps * total
    prev = -math.inf
    for _ in range(max_iter):
        Y = G @ Q
        H = cupy.conj(cupy.swapaxes(Q, 1, 2)) @ Y
        H = (H + cupy.conj(cupy.swapaxes(H, 1, 2))) / 2
        theta, W = cupy.linalg.eigh(H)
        energy = float(theta[:, kk - rank :].sum())
        if kk == n or energy - prev <= max(tol * (total - energy), floor):
            break
        prev = energy
        Q, _ = cupy.linalg.qr(Y)
    V = Q @ W[:, :, kk - rank :][:, :, ::-1]
    SV = S @ V
    sig = cupy.sqrt(cupy.sum(cupy.abs(SV) ** 2, axis=1))
    scale = cupy.sqrt(sig)
    inv = cupy.where(sig > 0, 1 / cupy.where(sig > 0, scale, 1), 0)
    L = SV * inv[:, None, :]
    R = cupy.conj(cupy.swapaxes(V, 1, 2)) * scale[:, :, None]
    if wide:
        L, R = cupy.conj(cupy.swapaxes(R, 1, 2)), cupy.conj(cupy.swapaxes(L, 1, 2))
    return cupy.ascontiguousarray(L), cupy.ascontiguousarray(R)
