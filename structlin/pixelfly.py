"""Pixelated Butterfly (Pixelfly): block-sparse on a flat block butterfly mask plus low rank.

Convention
----------
A Pixelfly matrix of shape ``(n_out, n_in)`` is ``M = S + U @ V.T`` where

- ``mask`` is a boolean array of shape ``(n_out // block, n_in // block)``: block ``(I, J)`` of
  ``S`` (rows ``I*block .. (I+1)*block - 1``, columns ``J*block .. (J+1)*block - 1``) may be
  nonzero only where ``mask[I, J]`` is True;
- ``blocks`` of shape ``(nnz_blocks, block, block)`` holds those blocks in row-major order of
  the mask: ``blocks[k]`` is block ``(I, J)`` for the ``k``-th True entry of ``mask.ravel()``
  (the order of ``numpy.nonzero(mask)``);
- ``U`` has shape ``(n_out, rank)`` and ``V`` shape ``(n_in, rank)`` (``rank`` may be 0); note
  ``V.T``, a plain transpose, also for complex data.

Products are over the last axis of ``x``: ``y = x @ M.T``, i.e.
``y[..., i] = sum_j M[i, j] x[..., j]``.

Reference: B. Chen, T. Dao, K. Liang, J. Yang, Z. Song, A. Rudra, C. Ré, "Pixelated Butterfly:
Simple and Efficient Sparse Training for Neural Network Models", ICLR 2022, arXiv:2112.00029.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._backend import as_kernel_array, flatten_batch, grad_like, kernels, restore_batch
from structlin._validate import (
    ABSENT,
    check_choice,
    check_finite,
    check_float,
    check_int,
    check_min_ndim,
    check_rng,
    check_shape,
    log2_exact,
    prepare,
)

__all__ = [
    "flat_block_butterfly_mask",
    "pixelfly_multiply",
    "pixelfly_multiply_vjp",
    "pixelfly_project",
    "pixelfly_to_dense",
]


#: the most alternating iterations :func:`pixelfly_project` may be asked for (``max_iter``):
#: a bound on the loop one argument can start (each iteration is an SVD)
MAX_ITER = 10**6


def flat_block_butterfly_mask(
    n_out: int, n_in: int, block: int, n_factors: int | None = None
) -> np.ndarray:
    """Return the flat block butterfly mask, a boolean array ``(n_out//block, n_in//block)``.

    Parameters
    ----------
    n_out, n_in : int
        Shape of the matrix the mask is for; multiples of ``block``.
    block : int
        Block size. With ``nbo = n_out // block`` and ``nbi = n_in // block`` block rows and
        columns, ``m = min(nbo, nbi)`` must be a power of two that divides ``max(nbo, nbi)``.
    n_factors : int, optional
        Number of butterfly factors whose supports are united, ``0 <= n_factors <= log2(m)``;
        default ``log2(m)`` (all of them). 0 gives the block diagonal.

    Returns
    -------
    ndarray of bool, shape (n_out // block, n_in // block)
        For the square case (``nbo == nbi == m``), ``mask[I, J]`` is True when ``I == J`` or
        when ``I`` and ``J`` differ in exactly one bit, of position below ``n_factors``: the
        union of the block supports of butterfly factors of strides ``1, 2, ...,
        2**(n_factors - 1)`` (each factor's support contains the diagonal). For rectangular
        shapes the ``m x m`` mask is stretched: ``mask[I, J] = base[I // (nbo // m),
        J // (nbi // m)]``, as in the reference implementation (HazyResearch/fly).

    Raises
    ------
    ValueError
        If ``block`` does not divide ``n_out`` and ``n_in``, the block counts are not as above,
        or ``n_factors`` is out of range.
    TypeError
        If an argument is not an integer.

    Notes
    -----
    Every block row (and column, in the square case) holds ``n_factors + 1`` blocks, so the
    density is ``(n_factors + 1) / m`` in all cases; in the square case the mask is symmetric.
    With ``n_factors = log2(m)`` the product of the ``log2(m)`` block butterfly factors has
    exactly this support, which is why Pixelfly uses the flat (summed) butterfly as a sparsity
    pattern (Chen et al. 2022, arXiv:2112.00029). Cost: ``O(nbo * nbi)``.

    Examples
    --------
    >>> from structlin import flat_block_butterfly_mask
    >>> flat_block_butterfly_mask(8, 8, 2, 1).astype(int)
    array([[1, 1, 0, 0],
           [1, 1, 0, 0],
           [0, 0, 1, 1],
           [0, 0, 1, 1]])
    >>> flat_block_butterfly_mask(8, 8, 2).astype(int)
    array([[1, 1, 1, 0],
           [1, 1, 0, 1],
           [1, 0, 1, 1],
           [0, 1, 1, 1]])
    >>> flat_block_butterfly_mask(16, 8, 2, 1).shape
    (8, 4)
    """
    n_out = check_int(n_out, "n_out")
    n_in = check_int(n_in, "n_in")
    block = check_int(block, "block", minimum=1)
    for name, n in (("n_out", n_out), ("n_in", n_in)):
        if n % block:
            raise ValueError(f"{name} must be a multiple of block = {block}, got {n}")
    nbo, nbi = n_out // block, n_in // block
    m = min(nbo, nbi)
    L = log2_exact(m)
    if L is None or max(nbo, nbi) % m:
        raise ValueError(
            "min(n_out, n_in) // block must be a power of two (1, 2, 4, ...) dividing "
            f"max(n_out, n_in) // block; got {nbo} block rows and {nbi} block columns"
        )
    if n_factors is None:
        n_factors = L
    n_factors = check_int(n_factors, "n_factors")
    if n_factors > L:
        raise ValueError(
            f"n_factors must be between 0 and log2(min(n_out, n_in) // block) = {L}, "
            f"got {n_factors}"
        )
    i = np.arange(m)
    d = i[:, None] ^ i[None, :]
    base = (d == 0) | (((d & (d - 1)) == 0) & (d < (1 << n_factors)))
    return np.ascontiguousarray(
        np.repeat(np.repeat(base, nbo // m, axis=0), nbi // m, axis=1)
    )


# --------------------------------------------------------------------------- validation


def _host_mask(xp, mask) -> np.ndarray:
    """``mask`` as a NumPy bool array (the sparsity structure is host metadata)."""
    m = np.asarray(mask) if xp is np else xp.asnumpy(mask)
    if m.dtype.kind not in "biu":
        raise TypeError(f"mask must be a boolean array, got dtype {m.dtype}")
    if m.ndim != 2:
        raise ValueError(
            "mask must have shape (n_out // block, n_in // block), a 2-d array; got shape "
            f"{m.shape}"
        )
    if m.dtype.kind != "b":
        if m.size and not np.isin(m, (0, 1)).all():
            raise ValueError("mask must be boolean (or hold only 0 and 1)")
        m = m.astype(bool)
    return m


class _Structure:
    """Block CSR of the mask (and of its transpose) as the kernels take it."""

    def __init__(self, xp, mask: np.ndarray, block: int):
        self.mask = mask
        self.block = block
        self.nbo, self.nbi = mask.shape
        self.n_out, self.n_in = self.nbo * block, self.nbi * block
        rows, cols = np.nonzero(mask)
        self.nnz = len(rows)
        self._xp = xp
        self._rows = rows
        self._cols = cols

    def _csr(self, rows, cols, n_rows):
        xp = self._xp
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        return (xp.asarray(indptr), xp.asarray(cols.astype(np.int64)),
                xp.asarray(rows.astype(np.int64)))

    def csr(self):
        return self._csr(self._rows, self._cols, self.nbo)

    def transposed(self):
        """CSR of ``mask.T`` and the permutation taking ``blocks`` to its stored order."""
        perm = np.lexsort((self._rows, self._cols))
        return self._csr(self._cols[perm], self._rows[perm], self.nbi), self._xp.asarray(perm)


def _check_blocks(blocks, mask: np.ndarray) -> int:
    nnz = int(mask.sum())
    if blocks.ndim != 3 or blocks.shape[1] != blocks.shape[2] or blocks.shape[1] < 1:
        raise ValueError(
            "blocks must have shape (nnz_blocks, block, block) (square blocks of size >= 1), "
            f"got {tuple(blocks.shape)}"
        )
    if blocks.shape[0] != nnz:
        raise ValueError(
            f"blocks must have one block per True entry of mask: shape ({nnz}, block, block), "
            f"got {tuple(blocks.shape)} (mask has {nnz} True entries)"
        )
    return int(blocks.shape[1])


def _check_low_rank(U, V, n_out: int, n_in: int) -> int:
    if U.ndim != 2 or U.shape[0] != n_out:
        raise ValueError(
            f"U must have shape (n_out, rank) = ({n_out}, rank) (n_out = mask.shape[0] * "
            f"block), got {tuple(U.shape)}"
        )
    check_shape(V, (n_in, U.shape[1]), "V",
                "(n_in, rank) with n_in = mask.shape[1] * block and rank = U.shape[1]")
    return int(U.shape[1])


def _prepare(blocks, mask, U, V, x, grad=ABSENT):
    """The seam of the product and its VJP: the arguments converted once (NumPy/CuPy mix
    refused first; ``mask`` converted and checked like the others but left out of the
    promotion), shapes checked. Returns the NamedTuple ``(xp, dtype, blocks, mask, U, V, x,
    grad)`` and the block structure of the mask."""
    p = prepare(blocks=blocks, mask=mask, U=U, V=V, x=x, grad=grad,
                dtype_of=("blocks", "U", "V", "x"))
    m = _host_mask(p.xp, p.mask)
    st = _Structure(p.xp, m, _check_blocks(p.blocks, m))
    _check_low_rank(p.U, p.V, st.n_out, st.n_in)
    check_min_ndim(p.x, 1, "x", "(..., n_in)")
    if p.x.shape[-1] != st.n_in:
        raise ValueError(
            f"x must have length n_in = mask.shape[1] * block = {st.n_in} along its last "
            f"axis, got shape {tuple(p.x.shape)}"
        )
    if p.grad is not None:
        check_shape(p.grad, (*p.x.shape[:-1], st.n_out), "grad",
                    "the shape of the product, x's batch shape and n_out")
    return p, st


def _apply(xp, st: _Structure, blocks, x2, U, xv):
    """``x2 @ S.T + xv @ U.T`` through the kernels (all of the working dtype)."""
    indptr, indices, _ = st.csr()
    return kernels(xp, "pixelfly").matmul(blocks, indptr, indices, x2, U, xv)


def _apply_adjoint(xp, st: _Structure, blocks, g2, Vc, gu):
    """``g2 @ conj(S) + gu @ Vc.T``: the forward kernel on the transposed block structure."""
    (indptr, indices, _), perm = st.transposed()
    bt = xp.swapaxes(blocks[perm], 1, 2)
    if bt.dtype.kind == "c":
        bt = xp.conj(bt)
    return kernels(xp, "pixelfly").matmul(xp.ascontiguousarray(bt), indptr, indices, g2, Vc, gu)


def pixelfly_multiply(blocks: Any, mask: Any, U: Any, V: Any, x: Any) -> Any:
    """Return the Pixelfly product ``x @ (S + U @ V.T).T`` over the last axis of ``x``.

    Parameters
    ----------
    blocks : array_like, shape (nnz_blocks, block, block)
        The nonzero blocks of ``S`` in row-major order of ``mask`` (module convention).
    mask : array_like of bool, shape (n_out // block, n_in // block)
        Where ``S`` has blocks, e.g. :func:`flat_block_butterfly_mask`; any pattern works.
    U : array_like, shape (n_out, rank)
    V : array_like, shape (n_in, rank)
        The low-rank term ``U @ V.T``; ``rank`` may be 0.
    x : array_like, shape (..., n_in)
        Vectors along the last axis; any leading batch dimensions.

    Returns
    -------
    ndarray, shape (..., n_out)
        ``y = x @ M.T`` with ``M = S + U @ V.T``, dtype ``numpy.result_type`` of the inputs
        (integers and bool promoted to float64), array type of the inputs (NumPy or CuPy).

    Raises
    ------
    ValueError
        If ``blocks`` disagrees with ``mask`` (not one square block per True entry), ``U`` or
        ``V`` have the wrong shape, or ``x`` the wrong length along its last axis.
    TypeError
        If ``mask`` is not boolean, a dtype is not numeric, or NumPy and CuPy arrays are mixed.

    See Also
    --------
    pixelfly_to_dense : the matrix ``M`` itself (the reference this function is tested against).
    pixelfly_multiply_vjp : gradients of this product.
    flat_block_butterfly_mask : the Pixelfly sparsity pattern.

    Notes
    -----
    Cost per vector: ``2 nnz_blocks block^2`` flops for ``S`` (``density * 2 n_out n_in``)
    plus ``2 rank (n_in + n_out)`` for the low-rank term, instead of ``2 n_out n_in``; the
    dense matrix is never formed (Chen et al. 2022, arXiv:2112.00029).

    On the CPU, a Numba kernel runs in parallel over tiles of batch rows. For real float32 and
    float64 with blocks that are whole SIMD vectors (``block`` a multiple of 16 float32 on
    AVX-512, 8 on AVX2), each stored block is one call of a register-blocked micro-kernel on
    the ``x`` segment in place (about 50-60 % of the machine's sgemm rate on 2 cores, see
    ``benchmarks/bench_pixelfly.py``); otherwise the ``x`` segments of a block row are
    gathered into one panel and multiplied by the row's stacked blocks (one BLAS GEMM per
    tile). On the GPU, a CUDA kernel walks the block CSR of the mask, one thread block per
    (batch tile, block row), with ``x`` and block tiles in shared memory. The low-rank term
    starts with one thin GEMM, ``x V``; on the CPU its product with ``U`` is fused into the
    block-row products (one more micro-kernel call, or ``x V`` appended to the gathered
    panel), so ``y`` is written once; on the GPU it is one more cuBLAS GEMM.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import flat_block_butterfly_mask, pixelfly_multiply, pixelfly_to_dense
    >>> mask = flat_block_butterfly_mask(16, 16, 4)       # 4 x 4 blocks of size 4
    >>> rng = np.random.default_rng(0)
    >>> blocks = rng.standard_normal((int(mask.sum()), 4, 4))
    >>> U, V = rng.standard_normal((16, 2)), rng.standard_normal((16, 2))
    >>> x = rng.standard_normal((3, 16))
    >>> y = pixelfly_multiply(blocks, mask, U, V, x)
    >>> y.shape
    (3, 16)
    >>> bool(np.allclose(y, x @ pixelfly_to_dense(blocks, mask, U, V).T))
    True
    """
    p, st = _prepare(blocks, mask, U, V, x)
    xp, dtype = p.xp, p.dtype
    x2, batch = flatten_batch(as_kernel_array(xp, p.x, dtype))
    xv = xp.ascontiguousarray(x2 @ as_kernel_array(xp, p.V, dtype))
    y = _apply(xp, st, as_kernel_array(xp, p.blocks, dtype), x2,
               as_kernel_array(xp, p.U, dtype), xv)
    return restore_batch(y, batch)


def pixelfly_multiply_vjp(
    blocks: Any, mask: Any, U: Any, V: Any, x: Any, grad: Any
) -> tuple[Any, Any, Any, Any]:
    """Return the gradients ``(grad_blocks, grad_U, grad_V, grad_x)`` of :func:`pixelfly_multiply`.

    Parameters
    ----------
    blocks, mask, U, V, x
        As for :func:`pixelfly_multiply`.
    grad : array_like, shape (..., n_out)
        The gradient of a real loss with respect to the product ``y = x @ M.T``.

    Returns
    -------
    grad_blocks : ndarray, shape (nnz_blocks, block, block)
        The gradient of ``M`` restricted to the stored blocks (``S`` is zero off the mask, so
        there is no gradient there), summed over the batch; ``blocks``' dtype.
    grad_U : ndarray, shape (n_out, rank)
    grad_V : ndarray, shape (n_in, rank)
    grad_x : ndarray, shape (..., n_in)
        Each with its argument's dtype (promoted to floating point).

    Raises
    ------
    ValueError, TypeError
        As for :func:`pixelfly_multiply`, and if ``grad`` does not have the product's shape.

    Notes
    -----
    PyTorch's convention for complex gradients (``dl/dRe z + 1j dl/dIm z``). With ``x`` and
    ``g`` flattened to ``(batch, n)``: ``grad_M = g^T conj(x)`` on the mask, so block ``(I,
    J)`` gets ``g[:, I]^T conj(x[:, J])`` (a sampled GEMM: one kernel launch, work ``2 batch
    nnz_blocks block^2``); ``grad_x = g conj(S) + (g conj(U)) conj(V)^T``, the forward kernel
    on the transposed block structure; ``grad_U = g^T conj(x V)`` and
    ``grad_V = conj(x)^T (g conj(U))``. About three times the cost of the product; never a
    dense matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import flat_block_butterfly_mask, pixelfly_multiply_vjp, pixelfly_to_dense
    >>> mask = flat_block_butterfly_mask(8, 8, 2, 1)
    >>> blocks = np.ones((int(mask.sum()), 2, 2))
    >>> U, V = np.ones((8, 1)), np.ones((8, 1))
    >>> x, g = np.ones((5, 8)), np.arange(40.0).reshape(5, 8)
    >>> gb, gU, gV, gx = pixelfly_multiply_vjp(blocks, mask, U, V, x, g)
    >>> gb.shape, gU.shape, gV.shape, gx.shape
    ((8, 2, 2), (8, 1), (8, 1), (5, 8))
    >>> bool(np.allclose(gx, g @ pixelfly_to_dense(blocks, mask, U, V)))
    True
    """
    p, st = _prepare(blocks, mask, U, V, x, grad)
    xp, dtype = p.xp, p.dtype
    x2, batch = flatten_batch(as_kernel_array(xp, p.x, dtype))
    g2, _ = flatten_batch(as_kernel_array(xp, p.grad, dtype))
    bk = as_kernel_array(xp, p.blocks, dtype)
    Uk = as_kernel_array(xp, p.U, dtype)
    Vk = as_kernel_array(xp, p.V, dtype)
    complex_ = np.dtype(dtype).kind == "c"

    def cj(a):
        return xp.conj(a) if complex_ else a

    if st.nnz == 0 or x2.shape[0] == 0:
        gb = xp.zeros(bk.shape, dtype=dtype)
    else:
        indptr, indices, rows = st.csr()
        gb = kernels(xp, "pixelfly").bsr_grad_blocks(g2, x2, indptr, indices, rows)
    gUc = xp.ascontiguousarray(g2 @ cj(Uk))
    gx = _apply_adjoint(xp, st, bk, g2, xp.ascontiguousarray(cj(Vk)), gUc)
    gU = g2.T @ cj(x2 @ Vk)
    gV = cj(x2).T @ gUc
    return (grad_like(xp, gb, p.blocks), grad_like(xp, gU, p.U), grad_like(xp, gV, p.V),
            restore_batch(grad_like(xp, gx, p.x), batch))


def _expand_blocks(xp, blocks, mask: np.ndarray, dtype):
    """Dense ``S`` from its blocks (plain array operations)."""
    nbo, nbi = mask.shape
    bs = blocks.shape[1]
    S4 = xp.zeros((nbo, nbi, bs, bs), dtype=dtype)
    rows, cols = np.nonzero(mask)
    S4[xp.asarray(rows), xp.asarray(cols)] = blocks
    return S4.transpose(0, 2, 1, 3).reshape(nbo * bs, nbi * bs)


def _gather_blocks(xp, A, mask: np.ndarray, bs: int):
    """The blocks of ``A`` on the mask, in row-major mask order: ``(nnz, bs, bs)``."""
    nbo, nbi = mask.shape
    A4 = A.reshape(nbo, bs, nbi, bs).transpose(0, 2, 1, 3)
    rows, cols = np.nonzero(mask)
    return xp.ascontiguousarray(A4[xp.asarray(rows), xp.asarray(cols)])


def pixelfly_to_dense(blocks: Any, mask: Any, U: Any, V: Any) -> Any:
    """Return the dense ``(n_out, n_in)`` matrix ``S + U @ V.T`` (the reference for the product).

    Parameters
    ----------
    blocks, mask, U, V
        As for :func:`pixelfly_multiply`.

    Returns
    -------
    ndarray, shape (n_out, n_in)
        ``M = S + U @ V.T``, so that ``pixelfly_multiply(blocks, mask, U, V, x) == x @ M.T``;
        dtype ``numpy.result_type(blocks, U, V)`` promoted to floating point.

    Raises
    ------
    ValueError, TypeError
        As for :func:`pixelfly_multiply`.

    Notes
    -----
    Plain array operations (scatter of the blocks, one GEMM for ``U @ V.T``), ``O(n_out n_in)``
    memory: for tests and small sizes.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import pixelfly_to_dense
    >>> mask = np.array([[True, False], [False, True]])
    >>> blocks = np.stack([np.eye(2), 2 * np.eye(2)])
    >>> pixelfly_to_dense(blocks, mask, np.zeros((4, 0)), np.zeros((4, 0)))
    array([[1., 0., 0., 0.],
           [0., 1., 0., 0.],
           [0., 0., 2., 0.],
           [0., 0., 0., 2.]])
    """
    p = prepare(blocks=blocks, mask=mask, U=U, V=V, dtype_of=("blocks", "U", "V"))
    xp, dtype = p.xp, p.dtype
    m = _host_mask(xp, p.mask)
    bs = _check_blocks(p.blocks, m)
    _check_low_rank(p.U, p.V, m.shape[0] * bs, m.shape[1] * bs)
    M = _expand_blocks(xp, p.blocks.astype(dtype, copy=False), m, dtype)
    if p.U.shape[1]:
        M += p.U.astype(dtype, copy=False) @ p.V.astype(dtype, copy=False).T
    return M


def _best_rank(xp, R, rank: int, method: str, rng: np.random.Generator):
    """``(U, V)`` with ``U @ V.T`` the best (or near-best) rank-``rank`` approximation of R."""
    if method == "svd":
        u, s, vh = xp.linalg.svd(R, full_matrices=False)
    else:
        # randomized range finder with power iterations (Halko, Martinsson, Tropp 2011)
        k = min(rank + RANDOMIZED_OVERSAMPLING, min(R.shape))
        omega = rng.standard_normal((R.shape[1], k))
        if R.dtype.kind == "c":
            omega = omega + 1j * rng.standard_normal((R.shape[1], k))
        Q, _ = xp.linalg.qr(R @ xp.asarray(omega, dtype=R.dtype))
        for _ in range(RANDOMIZED_POWER_ITERATIONS):
            Q, _ = xp.linalg.qr(R.conj().T @ Q)
            Q, _ = xp.linalg.qr(R @ Q)
        ub, s, vh = xp.linalg.svd(Q.conj().T @ R, full_matrices=False)
        u = Q @ ub
    return u[:, :rank] * s[:rank].astype(R.dtype), xp.ascontiguousarray(vh[:rank].T)


#: extra columns of the randomized range finder beyond the rank
RANDOMIZED_OVERSAMPLING = 10
#: power iterations of the randomized range finder (sharpen a slowly decaying spectrum)
RANDOMIZED_POWER_ITERATIONS = 2


def pixelfly_project(
    A: Any,
    mask: Any,
    rank: int,
    *,
    max_iter: int = 100,
    tol: float = 1e-6,
    method: str = "svd",
    rng: Any = None,
) -> tuple[Any, Any, Any, np.ndarray]:
    """Return ``(blocks, U, V, errors)``: a sparse-on-mask + rank-``rank`` approximation of ``A``.

    Parameters
    ----------
    A : array_like, shape (n_out, n_in)
        The matrix to approximate (e.g. a dense layer's weight).
    mask : array_like of bool, shape (n_out // block, n_in // block)
        The block support of the sparse part; ``block = n_out // mask.shape[0]``, which must
        also equal ``n_in // mask.shape[1]``.
    rank : int
        Rank of the low-rank part, ``0 <= rank <= min(n_out, n_in)``.
    max_iter : int, default 100
        Maximum number of alternating iterations (at least 1).
    tol : float, default 1e-6
        Stop when the relative error decreases by less than ``tol`` times its previous value.
    method : {"svd", "randomized"}, default "svd"
        How the low-rank step is computed: ``"svd"``, the exact truncated SVD;
        ``"randomized"``, a randomized range finder (``rank + 10`` columns, 2 power
        iterations), much cheaper for ``rank << min(n_out, n_in)`` but only near-optimal.
    rng : None, int or numpy.random.Generator
        Seed or generator of the randomized range finder (``numpy.random.default_rng(rng)``).

    Returns
    -------
    blocks : ndarray, shape (nnz_blocks, block, block)
    U : ndarray, shape (n_out, rank)
    V : ndarray, shape (n_in, rank)
        The factors, in the convention of :func:`pixelfly_multiply`: ``A ~ S + U @ V.T``.
    errors : ndarray of float64, shape (iterations,)
        ``||A - S - U V^T||_F / ||A||_F`` after each iteration: non-increasing.

    Raises
    ------
    ValueError
        If ``A`` is not 2-d, its shape does not fit ``mask`` with a whole block size,
        ``rank`` is out of range, ``max_iter < 1``, ``tol < 0``, ``method`` is unknown, or
        ``A`` is not finite.
    TypeError
        If ``mask`` is not boolean, ``rank`` or ``max_iter`` is not an integer (2.5, ``"4"``,
        None and bool are refused), ``tol`` is not a real number, or ``rng`` is not None, a
        seed or a ``numpy.random.Generator``.

    Notes
    -----
    Alternating projections (block coordinate descent on ``||A - S - L||_F``): starting from
    ``L = 0``, repeat ``S = P_mask(A - L)`` (keep the entries of ``A - L`` on the mask) and
    ``L = best rank-r approximation of A - S`` (truncated SVD, Eckart-Young). Each step
    minimizes the error over one of the two terms exactly, so the error never increases; for
    ``rank = 0`` one iteration is exact. On a matrix that is exactly sparse-on-mask plus rank
    ``r`` with incoherent factors the error converges to 0 linearly. Cost per iteration: one
    SVD, ``O(n_out n_in min(n_out, n_in))``; with ``method="randomized"``,
    ``O(n_out n_in (r + 10))`` (Halko, Martinsson, Tropp 2011, arXiv:0909.4061), and the error
    is then non-increasing only up to the range finder's accuracy. ``U`` carries the singular
    values (``U = u_r diag(s_r)``, ``V = vh_r^T``). Pixelfly initialises a sparse + low-rank
    layer from a dense one this way (Chen et al. 2022, arXiv:2112.00029).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import flat_block_butterfly_mask, pixelfly_project, pixelfly_to_dense
    >>> rng = np.random.default_rng(0)
    >>> mask = flat_block_butterfly_mask(32, 32, 4, 1)
    >>> A = rng.standard_normal((32, 32))
    >>> blocks, U, V, errors = pixelfly_project(A, mask, rank=4)
    >>> blocks.shape, U.shape, V.shape
    ((16, 4, 4), (32, 4), (32, 4))
    >>> bool(np.all(np.diff(errors) <= 1e-12) and errors[-1] < 1)
    True
    >>> err = np.linalg.norm(A - pixelfly_to_dense(blocks, mask, U, V)) / np.linalg.norm(A)
    >>> bool(np.isclose(err, errors[-1]))
    True
    """
    p = prepare(A=A, mask=mask, dtype_of=("A",))
    xp, dtype, A = p.xp, p.dtype, p.A
    m = _host_mask(xp, p.mask)
    if A.ndim != 2:
        raise ValueError(f"A must be a 2-d array (n_out, n_in), got shape {tuple(A.shape)}")
    nbo, nbi = m.shape
    bs = A.shape[0] // nbo if nbo else 0
    if nbo == 0 or nbi == 0 or bs == 0 or A.shape != (nbo * bs, nbi * bs):
        raise ValueError(
            f"A must have shape (mask.shape[0] * block, mask.shape[1] * block) for a whole "
            f"block size >= 1; got A of shape {tuple(A.shape)} and mask of shape {m.shape}"
        )
    rank = check_int(rank, "rank")
    if rank > min(A.shape):
        raise ValueError(f"rank must be between 0 and min(A.shape) = {min(A.shape)}, got {rank}")
    max_iter = check_int(max_iter, "max_iter", minimum=1, maximum=MAX_ITER)
    tol = check_float(tol, "tol", minimum=0.0)
    method = check_choice(method, "method", ("svd", "randomized"))
    gen = check_rng(rng)
    A = A.astype(dtype, copy=False)
    check_finite(A, "A")
    emask = xp.asarray(np.repeat(np.repeat(m, bs, axis=0), bs, axis=1))
    norm_a = float(xp.linalg.norm(A))
    scale = norm_a if norm_a > 0 else 1.0
    L = xp.zeros_like(A)
    U = xp.zeros((A.shape[0], rank), dtype=dtype)
    V = xp.zeros((A.shape[1], rank), dtype=dtype)
    errors: list[float] = []
    for _ in range(max_iter):
        S = xp.where(emask, A - L, 0)
        if rank:
            U, V = _best_rank(xp, A - S, rank, method, gen)
            L = U @ V.T
        errors.append(float(xp.linalg.norm(A - S - L)) / scale)
        if rank == 0 or errors[-1] == 0:
            break
        if len(errors) > 1 and errors[-2] - errors[-1] <= tol * errors[-2]:
            break
    return (_gather_blocks(xp, S, m, bs), xp.ascontiguousarray(U), V,
            np.asarray(errors, dtype=np.float64))
