"""``scipy.sparse.linalg.LinearOperator`` views of structlin's structured matrices.

Each constructor returns a :class:`~scipy.sparse.linalg.LinearOperator` whose ``matvec`` and
``matmat`` are the fast products and whose ``rmatvec``/``rmatmat`` apply the adjoint
(conjugate transpose) with the same kernels, so that the matrices can be handed to SciPy's
iterative solvers (``gmres``, ``cg``, ``lsqr``, ``lsmr``) and eigensolvers (``eigs``,
``svds``) without ever being formed. The operators take NumPy arrays (SciPy's solvers are
NumPy-only); a block of vectors ``X`` of shape ``(n, m)`` is one batched call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from structlin._backend import result_dtype
from structlin._registry import family
from structlin._validate import check_precision
from structlin.butterfly import _check_twiddle, butterfly_multiply
from structlin.butterfly_inverse import butterfly_inverse
from structlin.conv_fft import fftconv
from structlin.kaleidoscope import check_kaleidoscope_twiddle, kaleidoscope_multiply
from structlin.monarch import _adjoint, _chain_apply, _monarch_chain, monarch_multiply
from structlin.pixelfly import _check_blocks, _check_low_rank, _host_mask, pixelfly_multiply

__all__ = [
    "butterfly_inverse_operator",
    "butterfly_operator",
    "fftconv_operator",
    "kaleidoscope_operator",
    "monarch_operator",
    "pixelfly_operator",
]


class _StructuredOperator(LinearOperator):
    """A LinearOperator from a product and its adjoint over the last axis of an array."""

    def __init__(
        self,
        name: str,
        shape: tuple[int, int],
        dtype: Any,
        apply: Callable[[Any], Any],
        apply_adjoint: Callable[[Any], Any],
    ) -> None:
        super().__init__(dtype=np.dtype(dtype), shape=shape)
        self._name = name
        self._apply = apply
        self._apply_adjoint = apply_adjoint

    def _matvec(self, x):
        return self._apply(np.ravel(x))

    def _rmatvec(self, x):
        return self._apply_adjoint(np.ravel(x))

    def _matmat(self, X):
        # columns of X are the vectors; structlin takes them along the last axis
        return self._apply(np.asarray(X).T).T

    def _rmatmat(self, X):
        return self._apply_adjoint(np.asarray(X).T).T

    def _adjoint(self):
        m, n = self.shape
        return _StructuredOperator(
            f"adjoint of {self._name}", (n, m), self.dtype, self._apply_adjoint, self._apply
        )

    def __repr__(self) -> str:
        m, n = self.shape
        return f"<{m}x{n} {self._name} with dtype={self.dtype}>"


def butterfly_operator(twiddle: Any, *, increasing_stride: bool = True) -> LinearOperator:
    """Return the butterfly matrix ``B`` of ``twiddle`` as a ``LinearOperator``.

    Parameters
    ----------
    twiddle : array_like, shape (L, n//2, 2, 2)
        The factors, in the convention of :func:`structlin.butterfly_multiply`.
    increasing_stride : bool, default True
        The order of the factors, as for :func:`structlin.butterfly_multiply`.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator, shape (n, n)
        ``matvec``/``matmat`` compute ``B x`` with :func:`structlin.butterfly_multiply`;
        ``rmatvec``/``rmatmat`` compute ``B^H x`` with the same kernels (``transpose=True,
        conjugate=True``). The dtype is ``twiddle``'s, promoted to floating point.

    Raises
    ------
    ValueError, TypeError
        As for :func:`structlin.butterfly_multiply`.

    Notes
    -----
    ``3 n log2(n)`` real flops per vector for either product (Dao et al. 2019,
    arXiv:1903.05895); the twiddle is held by reference, not copied.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_to_dense, random_butterfly
    >>> from structlin.interop.scipy import butterfly_operator
    >>> tw = random_butterfly(8, rng=0)
    >>> A = butterfly_operator(tw)
    >>> A
    <8x8 butterfly_operator with dtype=float64>
    >>> x = np.arange(8.0)
    >>> bool(np.allclose(A @ x, butterfly_to_dense(tw) @ x))
    True
    >>> bool(np.allclose(A.H @ x, butterfly_to_dense(tw).T @ x))
    True
    """
    tw = np.asarray(twiddle)
    dtype = result_dtype(twiddle=tw)
    n = _check_twiddle(tw)
    inc = bool(increasing_stride)
    return _StructuredOperator(
        "butterfly_operator", (n, n), dtype,
        lambda x: butterfly_multiply(tw, x, increasing_stride=inc),
        lambda x: butterfly_multiply(tw, x, increasing_stride=inc, transpose=True,
                                     conjugate=True),
    )


def butterfly_inverse_operator(
    twiddle: Any, *, increasing_stride: bool = True
) -> LinearOperator:
    """Return the inverse ``B^-1`` of a butterfly matrix as a ``LinearOperator``.

    Parameters
    ----------
    twiddle : array_like, shape (L, n//2, 2, 2)
        The factors of ``B``, in the convention of :func:`structlin.butterfly_multiply`.
    increasing_stride : bool, default True
        The order of the factors of ``B``.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator, shape (n, n)
        ``matvec`` computes ``B^-1 y`` (the result of :func:`structlin.butterfly_solve`),
        ``rmatvec`` computes ``B^-H y``. The dtype is ``twiddle``'s, promoted to floating
        point.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a block of ``twiddle`` is singular (raised here, not at the first product).
    ValueError, TypeError
        As for :func:`structlin.butterfly_solve`.

    Warns
    -----
    scipy.linalg.LinAlgWarning
        If a block is ill-conditioned.

    Notes
    -----
    The blocks are inverted once, by :func:`structlin.butterfly_inverse` (``O(n log n)``):
    ``B^-1`` is the butterfly of the inverted blocks with the opposite stride order, so every
    product afterwards is a butterfly product (``3 n log2(n)`` real flops per vector), the
    same arithmetic as :func:`structlin.butterfly_solve` without inverting the blocks again
    at each call of an iterative method.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_multiply, random_butterfly
    >>> from structlin.interop.scipy import butterfly_inverse_operator
    >>> tw = random_butterfly(16, rng=0)
    >>> Ainv = butterfly_inverse_operator(tw)
    >>> y = np.arange(16.0)
    >>> bool(np.allclose(butterfly_multiply(tw, Ainv @ y), y))
    True
    """
    inv, inc = butterfly_inverse(twiddle, increasing_stride=increasing_stride)
    n = 2 * inv.shape[1]
    return _StructuredOperator(
        "butterfly_inverse_operator", (n, n), inv.dtype,
        lambda y: butterfly_multiply(inv, y, increasing_stride=inc),
        lambda y: butterfly_multiply(inv, y, increasing_stride=inc, transpose=True,
                                     conjugate=True),
    )


def monarch_operator(w1: Any, w2: Any, *, precision: str = "highest") -> LinearOperator:
    """Return the Monarch matrix ``M`` of ``(w1, w2)`` as a ``LinearOperator``.

    Parameters
    ----------
    w1 : array_like, shape (k, q, p)
    w2 : array_like, shape (l, s, r)
        The block-diagonal factors, in the convention of :func:`structlin.monarch_multiply`
        (``l*r == k*q``).
    precision : {"highest", "tf32", "bf16"}, default "highest"
        The precision of ``matvec`` and ``rmatvec``, as for
        :func:`structlin.monarch_multiply`: checked here against the factors' dtype and at
        each product against the vectors'; on NumPy arrays every value computes in full
        precision.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator, shape (l*s, k*p)
        ``matvec`` computes ``M x`` with :func:`structlin.monarch_multiply`; ``rmatvec``
        computes ``M^H y`` by the same kernel on the adjoint factors in reverse order. The
        dtype is NumPy's promotion of ``w1`` and ``w2`` (integers to float64).

    Raises
    ------
    ValueError, TypeError
        As for :func:`structlin.monarch_multiply` (``precision`` included).

    Notes
    -----
    Either product is two batched GEMMs: ``2 (k p q + l s r)`` flops per vector instead of
    ``2 n_out n_in`` (Dao et al. 2022, arXiv:2204.00595).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import monarch_to_dense
    >>> from structlin.interop.scipy import monarch_operator
    >>> rng = np.random.default_rng(0)
    >>> w1, w2 = rng.standard_normal((2, 3, 3)), rng.standard_normal((3, 4, 2))
    >>> A = monarch_operator(w1, w2)
    >>> A.shape
    (12, 6)
    >>> y = rng.standard_normal(12)
    >>> bool(np.allclose(A.rmatvec(y), monarch_to_dense(w1, w2).T @ y))
    True
    """
    w1, w2 = np.asarray(w1), np.asarray(w2)
    dtype = result_dtype(w1=w1, w2=w2)
    # every check of the factors and of precision, once, on an empty batch
    n_in = w1.shape[0] * w1.shape[2] if w1.ndim == 3 else 0
    monarch_multiply(w1, w2, np.zeros((0, n_in), dtype), precision=precision)
    k, _q, p = w1.shape
    l, s, _r = w2.shape
    supported = family("monarch").precisions
    # M^H = W1^H P^T W2^H: the adjoint blocks in reverse order, one chain on the same kernel
    # (cheaper than monarch_multiply_vjp, which would also form the weight gradients)
    adjoint_chain = [(_adjoint(np, w), pre, post) for w, pre, post in _monarch_chain(w1, w2)]
    adjoint_chain.reverse()

    def apply_adjoint(y):
        y = np.asarray(y)
        dt = result_dtype(w1=w1, w2=w2, y=y)
        if y.ndim < 1 or y.shape[-1] != l * s:
            raise ValueError(f"y must have length n_out = l*s = {l * s} along its last axis, "
                             f"got shape {y.shape}")
        kernel_precision = check_precision(precision, supported, dt, "w1, w2 and y")
        return _chain_apply(np, [(w.astype(dt, copy=False), a, b) for w, a, b in adjoint_chain],
                            y, dt, kernel_precision)

    return _StructuredOperator(
        "monarch_operator", (l * s, k * p), dtype,
        lambda x: monarch_multiply(w1, w2, x, precision=precision), apply_adjoint,
    )


def pixelfly_operator(blocks: Any, mask: Any, U: Any, V: Any) -> LinearOperator:
    """Return the Pixelfly matrix ``S + U @ V.T`` as a ``LinearOperator``.

    Parameters
    ----------
    blocks, mask, U, V
        As for :func:`structlin.pixelfly_multiply`: the nonzero blocks of ``S`` in row-major
        order of ``mask``, and the low-rank term ``U @ V.T``.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator, shape (n_out, n_in)
        ``matvec`` computes ``M x`` with :func:`structlin.pixelfly_multiply`; ``rmatvec``
        computes ``M^H y`` as the Pixelfly product of the adjoint, ``S^H + conj(V) conj(U)^T``
        (blocks conjugated, transposed and reordered for ``mask.T``, built once here). The
        dtype is NumPy's promotion of ``blocks``, ``U`` and ``V``.

    Raises
    ------
    ValueError, TypeError
        As for :func:`structlin.pixelfly_multiply`.

    Notes
    -----
    ``2 nnz_blocks block^2 + 2 rank (n_in + n_out)`` flops per vector for either product
    (Chen et al. 2022, arXiv:2112.00029); the adjoint's blocks are one extra copy of
    ``blocks``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import flat_block_butterfly_mask, pixelfly_to_dense
    >>> from structlin.interop.scipy import pixelfly_operator
    >>> mask = flat_block_butterfly_mask(8, 8, 2)
    >>> rng = np.random.default_rng(0)
    >>> blocks = rng.standard_normal((int(mask.sum()), 2, 2))
    >>> U, V = rng.standard_normal((8, 1)), rng.standard_normal((8, 1))
    >>> A = pixelfly_operator(blocks, mask, U, V)
    >>> x = rng.standard_normal(8)
    >>> bool(np.allclose(A @ x, pixelfly_to_dense(blocks, mask, U, V) @ x))
    True
    """
    blocks, U, V = (np.asarray(a) for a in (blocks, U, V))
    m = _host_mask(np, mask)
    dtype = result_dtype(blocks=blocks, U=U, V=V)
    block = _check_blocks(blocks, m)
    n_out, n_in = m.shape[0] * block, m.shape[1] * block
    _check_low_rank(U, V, n_out, n_in)
    rows, cols = np.nonzero(m)
    order = np.lexsort((rows, cols))  # row-major order of mask.T
    blocks_h = np.ascontiguousarray(np.conj(np.swapaxes(blocks[order], 1, 2)))
    mask_h = np.ascontiguousarray(m.T)
    U_h, V_h = np.conj(V), np.conj(U)
    return _StructuredOperator(
        "pixelfly_operator", (n_out, n_in), dtype,
        lambda x: pixelfly_multiply(blocks, m, U, V, x),
        lambda y: pixelfly_multiply(blocks_h, mask_h, U_h, V_h, y),
    )


def fftconv_operator(
    k: Any, L: int, *, causal: bool = True, precision: str = "highest"
) -> LinearOperator:
    """Return the Toeplitz matrix of the convolution by ``k`` on length ``L`` as an operator.

    Parameters
    ----------
    k : array_like, shape (Lk,) or (H, Lk)
        One kernel, or a bank of ``H`` kernels (one per channel), of any length ``Lk >= 1``.
    L : int
        The length of the input signal.
    causal : bool, default True
        As for :func:`structlin.fftconv`: the causal (lower-triangular) convolution, or the
        centred one of ``scipy.signal.convolve(x, k, mode="same")``.
    precision : {"highest", "fp16", "bf16"}, default "highest"
        The precision of ``matvec`` and ``rmatvec``, as for :func:`structlin.fftconv`
        (``"fp32"`` an alias of ``"highest"``): checked here against ``k``'s dtype and at each
        product against the vector's; on NumPy arrays every value computes in full precision.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator, shape (L, L) or (H*L, H*L)
        For a single kernel, ``T`` with ``T @ x == fftconv(x[None], k[None])[0]``, the matrix
        of :func:`structlin.fftconv_to_dense`. For a bank, the block-diagonal matrix of the
        ``H`` Toeplitz matrices, acting on a vector of ``H`` channels of length ``L`` laid end
        to end (``x.reshape(H, L)``). The dtype is ``k``'s, promoted to floating point.

    Raises
    ------
    ValueError
        If ``k`` is not 1-d or 2-d with ``Lk >= 1``, holds NaN or infinity, or ``L < 1``;
        or ``precision`` is refused as by :func:`structlin.fftconv`.
    TypeError
        If ``k`` is not numeric.

    Notes
    -----
    ``matvec`` is :func:`structlin.fftconv` (FFTs of a fast length ``>= L + Lk - 1``,
    ``O(L log L)`` per channel). A Toeplitz matrix is persymmetric, ``T^T = J T J`` with ``J``
    the reversal, so ``rmatvec`` is the same convolution with ``conj(k)`` on the reversed
    vector, reversed back: no second kind of kernel is needed.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.interop.scipy import fftconv_operator
    >>> T = fftconv_operator(np.array([1.0, 2.0]), 3)
    >>> T @ np.array([1.0, 0.0, 0.0])
    array([1., 2., 0.])
    >>> T.H @ np.array([1.0, 0.0, 0.0])
    array([1., 0., 0.])
    """
    k = np.asarray(k)
    if k.ndim not in (1, 2):
        raise ValueError(f"k must have shape (Lk,) or (H, Lk), got {k.shape}")
    bank = k if k.ndim == 2 else k[None]
    L = int(L)
    dtype = result_dtype(k=bank)
    H = bank.shape[0]
    fftconv(np.zeros((H, L), dtype), bank, causal=causal, precision=precision)  # every check
    bank_h = np.conj(bank)
    flag = bool(causal)

    def apply(x, kern=bank):
        x = np.asarray(x)
        if x.ndim < 1 or x.shape[-1] != H * L:
            raise ValueError(f"x must have length H*L = {H * L} along its last axis, "
                             f"got shape {x.shape}")
        u = x.reshape((*x.shape[:-1], H, L))
        return fftconv(u, kern, causal=flag, precision=precision).reshape(x.shape)

    def apply_adjoint(y):
        y = np.asarray(y)
        if y.ndim < 1 or y.shape[-1] != H * L:
            raise ValueError(f"y must have length H*L = {H * L} along its last axis, "
                             f"got shape {y.shape}")
        u = y.reshape((*y.shape[:-1], H, L))[..., ::-1]
        return fftconv(u, bank_h, causal=flag, precision=precision)[..., ::-1].reshape(y.shape)

    return _StructuredOperator("fftconv_operator", (H * L, H * L), dtype, apply, apply_adjoint)


def _kaleidoscope_adjoint_twiddle(tw: np.ndarray) -> np.ndarray:
    # K^H = B(t[w-1,1]) B(t[w-1,0])^H ... B(t[0,1]) B(t[0,0])^H: the pairs reversed, each swapped
    return np.ascontiguousarray(tw[::-1, ::-1])


def kaleidoscope_operator(twiddle: Any) -> LinearOperator:
    """Return the K-matrix ``K`` of ``twiddle`` as a ``LinearOperator``.

    Parameters
    ----------
    twiddle : array_like, shape (w, 2, L, n//2, 2, 2)
        In the convention of :func:`structlin.kaleidoscope_multiply`.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator, shape (n, n)
        ``matvec``/``matmat`` compute ``K x`` with :func:`structlin.kaleidoscope_multiply`;
        ``rmatvec``/``rmatmat`` compute ``K^H x`` with the same kernels, as the K-matrix of the
        reversed, pairwise swapped twiddle. The dtype is ``twiddle``'s, promoted to floating
        point.

    Raises
    ------
    ValueError, TypeError
        As for :func:`structlin.kaleidoscope_multiply`.

    Notes
    -----
    ``K^H = B(t[w-1,1]) B(t[w-1,0])^H ... B(t[0,1]) B(t[0,0])^H`` is again a K-matrix of
    width ``w``, so both products cost ``6 w n log2(n)`` real flops per vector (Dao et al.
    2020, arXiv:2012.14966). The twiddle is held by reference; its adjoint is a copy.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_to_dense, random_kaleidoscope
    >>> from structlin.interop.scipy import kaleidoscope_operator
    >>> tw = random_kaleidoscope(8, 2, rng=0)
    >>> A = kaleidoscope_operator(tw)
    >>> A
    <8x8 kaleidoscope_operator with dtype=float64>
    >>> x = np.arange(8.0)
    >>> bool(np.allclose(A @ x, kaleidoscope_to_dense(tw) @ x))
    True
    >>> bool(np.allclose(A.H @ x, kaleidoscope_to_dense(tw).T @ x))
    True
    """
    tw = np.asarray(twiddle)
    dtype = result_dtype(twiddle=tw)
    _, n = check_kaleidoscope_twiddle(tw)
    adj = _kaleidoscope_adjoint_twiddle(tw)
    return _StructuredOperator(
        "kaleidoscope_operator", (n, n), dtype,
        lambda x: kaleidoscope_multiply(tw, x),
        lambda x: kaleidoscope_multiply(adj, x),
    )
