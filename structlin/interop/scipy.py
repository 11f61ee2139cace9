"""``scipy.sparse.linalg.LinearOperator`` views of structlin's structured matrices, and
``cupyx.scipy.sparse.linalg.LinearOperator`` views of the same matrices on CuPy arrays.

Each constructor returns a :class:`~scipy.sparse.linalg.LinearOperator` whose ``matvec`` and
``matmat`` are the fast products and whose ``rmatvec``/``rmatmat`` apply the adjoint
(conjugate transpose) with the same kernels, so that the matrices can be handed to SciPy's
iterative solvers (``gmres``, ``cg``, ``lsqr``, ``lsmr``) and eigensolvers (``eigs``,
``svds``) without ever being formed. A block of vectors ``X`` of shape ``(n, m)`` is one
batched call.

The kind of operator follows the parameters' array type, as every structlin function does
(:func:`structlin._backend.array_namespace`): NumPy parameters (or lists) give a SciPy
operator, CuPy parameters a :class:`cupyx.scipy.sparse.linalg.LinearOperator` whose products
run on the CUDA kernels, for ``cupyx.scipy.sparse.linalg.cg``, ``gmres``, ``lsmr`` ...
(cupyx's ``lsqr`` is a direct solve that needs the matrix itself). The operators without
array parameters (:func:`fwht_operator`, :func:`dct_operator`, :func:`dst_operator`) take
``like=``, an array of the kind wanted. CuPy is imported only when a CuPy operator is built.
An operator takes vectors of its own kind only: a CuPy vector given to a SciPy operator, or a
NumPy vector to a CuPy one, raises ``TypeError`` naming the argument before
any arithmetic.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from structlin._backend import array_namespace, is_cupy_array, result_dtype
from structlin._registry import family
from structlin._validate import (
    check_bool,
    check_dtype,
    check_finite,
    check_int,
    check_precision,
    log2_exact,
    prepare,
)
from structlin.butterfly import _check_twiddle, butterfly_multiply
from structlin.butterfly_inverse import butterfly_inverse
from structlin.circulant import circulant_multiply
from structlin.conv_fft import fftconv
from structlin.dct_dst import dct, dct_vjp, dst, dst_vjp
from structlin.hadamard import fwht
from structlin.kaleidoscope import check_kaleidoscope_twiddle, kaleidoscope_multiply
from structlin.monarch import _adjoint, _chain_apply, _monarch_chain, monarch_multiply
from structlin.pixelfly import _check_blocks, _check_low_rank, _host_mask, pixelfly_multiply
from structlin.xd_operations import xd_multiply

__all__ = [
    "butterfly_inverse_operator",
    "butterfly_operator",
    "cauchy_operator",
    "circulant_operator",
    "dct_operator",
    "dst_operator",
    "fftconv_operator",
    "fwht_operator",
    "hankel_operator",
    "kaleidoscope_operator",
    "ldr_operator",
    "monarch_operator",
    "pixelfly_operator",
    "toeplitz_operator",
    "xd_operator",
]


def _kind(a: Any) -> str:
    t = type(a)
    mod = t.__module__.split(".")[0]
    return t.__qualname__ if mod == "builtins" else f"{mod}.{t.__qualname__}"


class _StructuredProducts:
    """The products of a structured operator over the last axis of an array, shared by the
    SciPy and the CuPy operator classes (this class comes first in their MRO).

    ``apply`` and ``apply_adjoint`` compute ``A x`` and ``A^H x`` for vectors along the last
    axis (any leading batch axes): ``matmat`` is one batched call on ``X.T``. The public entry
    points check the vector's array kind before the base class converts it, so that a CuPy
    vector never meets ``numpy.asarray`` (and a NumPy one never reaches a CUDA kernel).
    """

    #: whether the operator's parameters, and so its vectors, are CuPy arrays
    _on_gpu = False

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

    @property
    def _xp(self) -> ModuleType:
        return sys.modules["cupy"] if self._on_gpu else np

    def _check_vectors(self, x: Any, name: str) -> None:
        if self._on_gpu:
            if not is_cupy_array(x):
                raise TypeError(
                    f"{name} is a {_kind(x)}, but the parameters of this {self._name} are CuPy "
                    f"arrays (a cupyx.scipy.sparse.linalg.LinearOperator): pass "
                    f"cupy.asarray({name}), or build the operator from NumPy arrays for SciPy"
                )
        elif is_cupy_array(x):
            raise TypeError(
                f"{name} is a cupy.ndarray, but the parameters of this {self._name} are NumPy "
                f"arrays (a scipy.sparse.linalg.LinearOperator): pass cupy.asnumpy({name}), or "
                f"build the operator from CuPy arrays for a cupyx.scipy.sparse.linalg."
                f"LinearOperator"
            )

    # the public entry points: the vector's kind first, then the base class's shape checks
    def matvec(self, x):
        self._check_vectors(x, "x")
        return super().matvec(x)

    def rmatvec(self, x):
        self._check_vectors(x, "x")
        return super().rmatvec(x)

    def matmat(self, X):
        self._check_vectors(X, "X")
        return super().matmat(X)

    def rmatmat(self, X):
        self._check_vectors(X, "X")
        return super().rmatmat(X)

    def dot(self, x):
        if not (np.isscalar(x) or (hasattr(x, "matvec") and hasattr(x, "shape"))):
            self._check_vectors(x, "x")
        return super().dot(x)

    def _matvec(self, x):
        return self._apply(self._xp.ravel(x))

    def _rmatvec(self, x):
        return self._apply_adjoint(self._xp.ravel(x))

    def _matmat(self, X):
        # columns of X are the vectors; structlin takes them along the last axis
        return self._apply(self._xp.asarray(X).T).T

    def _rmatmat(self, X):
        return self._apply_adjoint(self._xp.asarray(X).T).T

    def _adjoint(self):
        m, n = self.shape
        return type(self)(
            f"adjoint of {self._name}", (n, m), self.dtype, self._apply_adjoint, self._apply
        )

    def _transpose(self):
        # A^T x = conj(A^H conj(x)): again one of these operators, so A.T takes the same path
        xp, m, n = self._xp, *self.shape
        apply, apply_adjoint = self._apply, self._apply_adjoint
        return type(self)(
            f"transpose of {self._name}", (n, m), self.dtype,
            lambda x: xp.conj(apply_adjoint(xp.conj(x))),
            lambda y: xp.conj(apply(xp.conj(y))),
        )

    def __repr__(self) -> str:
        m, n = self.shape
        return f"<{m}x{n} {self._name} with dtype={self.dtype}>"


class _StructuredOperator(_StructuredProducts, LinearOperator):
    """A ``scipy.sparse.linalg.LinearOperator`` from a product and its adjoint."""


@functools.cache
def _cupy_operator_class() -> type:
    """The CuPy operator class, made at its first use (cupyx is imported only then)."""
    from cupyx.scipy.sparse.linalg import LinearOperator as CupyLinearOperator

    return type("_CupyStructuredOperator", (_StructuredProducts, CupyLinearOperator), {
        "__doc__": "A ``cupyx.scipy.sparse.linalg.LinearOperator`` from a product and its "
                   "adjoint.",
        "__module__": __name__,
        "_on_gpu": True,
    })


def _operator(
    xp: ModuleType,
    name: str,
    shape: tuple[int, int],
    dtype: Any,
    apply: Callable[[Any], Any],
    apply_adjoint: Callable[[Any], Any],
) -> Any:
    """The operator of namespace ``xp``: SciPy's for NumPy, cupyx's for CuPy."""
    cls = _StructuredOperator if xp is np else _cupy_operator_class()
    return cls(name, shape, dtype, apply, apply_adjoint)


def _like_namespace(like: Any) -> ModuleType:
    """NumPy or CuPy for the ``like=`` argument of the operators without array parameters."""
    if is_cupy_array(like):
        return array_namespace(like=like)
    if like is None or isinstance(like, np.ndarray):
        return np
    raise TypeError(
        f"like must be None, a NumPy array or a CuPy array (the kind of the operator's "
        f"vectors), got {_kind(like)}"
    )


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
    scipy.sparse.linalg.LinearOperator (cupyx's for CuPy parameters), shape (n, n)
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
    prm = prepare(twiddle=twiddle)
    tw = prm.twiddle
    n = _check_twiddle(tw)
    inc = bool(increasing_stride)
    return _operator(
        prm.xp, "butterfly_operator", (n, n), prm.dtype,
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
    scipy.sparse.linalg.LinearOperator (cupyx's for CuPy parameters), shape (n, n)
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
    return _operator(
        array_namespace(twiddle=inv), "butterfly_inverse_operator", (n, n), inv.dtype,
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
    scipy.sparse.linalg.LinearOperator (cupyx's for CuPy parameters), shape (l*s, k*p)
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
    prm = prepare(w1=w1, w2=w2)
    xp, dtype, w1, w2 = prm.xp, prm.dtype, prm.w1, prm.w2
    # every check of the factors and of precision, once, on an empty batch
    n_in = w1.shape[0] * w1.shape[2] if w1.ndim == 3 else 0
    monarch_multiply(w1, w2, xp.zeros((0, n_in), dtype), precision=precision)
    k, _q, p = w1.shape
    l, s, _r = w2.shape
    supported = family("monarch").precisions
    # M^H = W1^H P^T W2^H: the adjoint blocks in reverse order, one chain on the same kernel
    # (cheaper than monarch_multiply_vjp, which would also form the weight gradients)
    adjoint_chain = [(_adjoint(xp, w), pre, post) for w, pre, post in _monarch_chain(w1, w2)]
    adjoint_chain.reverse()

    def apply_adjoint(y):
        y = xp.asarray(y)
        dt = result_dtype(w1=w1, w2=w2, y=y)
        if y.ndim < 1 or y.shape[-1] != l * s:
            raise ValueError(f"y must have length n_out = l*s = {l * s} along its last axis, "
                             f"got shape {y.shape}")
        kernel_precision = check_precision(precision, supported, dt, "w1, w2 and y")
        return _chain_apply(xp, [(w.astype(dt, copy=False), a, b) for w, a, b in adjoint_chain],
                            y, dt, kernel_precision)

    return _operator(
        xp, "monarch_operator", (l * s, k * p), dtype,
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
    scipy.sparse.linalg.LinearOperator (cupyx's for CuPy parameters), shape (n_out, n_in)
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
    prm = prepare(blocks=blocks, mask=mask, U=U, V=V, dtype_of=("blocks", "U", "V"))
    xp, blocks, U, V = prm.xp, prm.blocks, prm.U, prm.V
    m = _host_mask(xp, prm.mask)
    block = _check_blocks(blocks, m)
    n_out, n_in = m.shape[0] * block, m.shape[1] * block
    _check_low_rank(U, V, n_out, n_in)
    rows, cols = np.nonzero(m)
    order = xp.asarray(np.lexsort((rows, cols)))  # row-major order of mask.T
    blocks_h = xp.ascontiguousarray(xp.conj(xp.swapaxes(blocks[order], 1, 2)))
    # the masks in the parameters' namespace (pixelfly_multiply refuses a NumPy/CuPy mix)
    mask_x, mask_h = xp.asarray(m), xp.asarray(np.ascontiguousarray(m.T))
    U_h, V_h = xp.conj(V), xp.conj(U)
    return _operator(
        xp, "pixelfly_operator", (n_out, n_in), prm.dtype,
        lambda x: pixelfly_multiply(blocks, mask_x, U, V, x),
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
    scipy.sparse.linalg.LinearOperator (cupyx's for CuPy parameters), shape (L, L) or (H*L, H*L)
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
    prm = prepare(k=k)
    xp, k, dtype = prm.xp, prm.k, prm.dtype
    if k.ndim not in (1, 2):
        raise ValueError(f"k must have shape (Lk,) or (H, Lk), got {k.shape}")
    bank = k if k.ndim == 2 else k[None]
    L = int(L)
    H = bank.shape[0]
    fftconv(xp.zeros((H, L), dtype), bank, causal=causal, precision=precision)  # every check
    bank_h = xp.conj(bank)
    flag = bool(causal)

    def apply(x, kern=bank):
        x = xp.asarray(x)
        if x.ndim < 1 or x.shape[-1] != H * L:
            raise ValueError(f"x must have length H*L = {H * L} along its last axis, "
                             f"got shape {x.shape}")
        u = x.reshape((*x.shape[:-1], H, L))
        return fftconv(u, kern, causal=flag, precision=precision).reshape(x.shape)

    def apply_adjoint(y):
        y = xp.asarray(y)
        if y.ndim < 1 or y.shape[-1] != H * L:
            raise ValueError(f"y must have length H*L = {H * L} along its last axis, "
                             f"got shape {y.shape}")
        u = y.reshape((*y.shape[:-1], H, L))[..., ::-1]
        return fftconv(u, bank_h, causal=flag, precision=precision)[..., ::-1].reshape(y.shape)

    return _operator(xp, "fftconv_operator", (H * L, H * L), dtype, apply, apply_adjoint)


def _kaleidoscope_adjoint_twiddle(xp: ModuleType, tw: Any) -> Any:
    # K^H = B(t[w-1,1]) B(t[w-1,0])^H ... B(t[0,1]) B(t[0,0])^H: the pairs reversed, each swapped
    return xp.ascontiguousarray(tw[::-1, ::-1])


def kaleidoscope_operator(twiddle: Any) -> LinearOperator:
    """Return the K-matrix ``K`` of ``twiddle`` as a ``LinearOperator``.

    Parameters
    ----------
    twiddle : array_like, shape (w, 2, L, n//2, 2, 2)
        In the convention of :func:`structlin.kaleidoscope_multiply`.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator (cupyx's for CuPy parameters), shape (n, n)
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
    prm = prepare(twiddle=twiddle)
    tw = prm.twiddle
    _, n = check_kaleidoscope_twiddle(tw)
    adj = _kaleidoscope_adjoint_twiddle(prm.xp, tw)
    return _operator(
        prm.xp, "kaleidoscope_operator", (n, n), prm.dtype,
        lambda x: kaleidoscope_multiply(tw, x),
        lambda x: kaleidoscope_multiply(adj, x),
    )


# ---- the toeplitz family: Toeplitz, Hankel, Cauchy (FFT products and the fused Cauchy kernel)


def _structured_vectors(
    xp: ModuleType, x: Any, n: int, name: str, *dtype_of: Any
) -> tuple[Any, np.dtype]:
    x = xp.asarray(x)
    dt = result_dtype(x=x, **{f"a{i}": a for i, a in enumerate(dtype_of)})
    if x.ndim < 1 or x.shape[-1] != n:
        raise ValueError(f"{name} must have length {n} along its last axis, got shape {x.shape}")
    return x, dt


def _toeplitz_product(xp: ModuleType, c: Any, r: Any, name: str) -> Callable[[Any], Any]:
    """``x -> T x`` over the last axis for the ``m x n`` Toeplitz matrix of first column ``c``
    and first row ``r``: an FFT pair on the embedding circulant, its spectrum computed once per
    dtype the products meet."""
    from structlin.toeplitz_pcg import _Toeplitz

    m, n = c.shape[0], r.shape[0]
    spectra: dict[np.dtype, Any] = {}

    def apply(x):
        x, dt = _structured_vectors(xp, x, n, name, c, r)
        op = spectra.get(dt)
        if op is None:
            op = spectra[dt] = _Toeplitz(xp, c.astype(dt)[None], r.astype(dt)[None],
                                         dt.kind != "c")
        xs = xp.ascontiguousarray(x, dtype=dt).reshape(1, -1, n)
        return op(xs).reshape((*x.shape[:-1], m))

    return apply


def _vector_argument(arr: Any, name: str) -> Any:
    """``arr`` (converted by :func:`prepare`) checked as the one vector of one matrix."""
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-d (one matrix per operator), got shape {arr.shape}")
    check_int(arr.shape[0], f"the length of {name}", minimum=1)
    check_finite(arr, name)
    return arr


def _column_and_row(c_or_cr: Any, default_row: Callable[[ModuleType, Any], Any]) -> tuple:
    """``(xp, c, r, dtype)`` of SciPy's ``c_or_cr``; ``default_row(xp, c)`` when ``r`` is not
    given."""
    if isinstance(c_or_cr, tuple):
        if len(c_or_cr) != 2:
            raise ValueError(
                f"c_or_cr must be c or a tuple (c, r), got a tuple of {len(c_or_cr)} items"
            )
        prm = prepare(c=c_or_cr[0], r=c_or_cr[1])
        c, r = _vector_argument(prm.c, "c"), _vector_argument(prm.r, "r")
    else:
        prm = prepare(c=c_or_cr)
        c = _vector_argument(prm.c, "c")
        r = default_row(prm.xp, c)
    return prm.xp, c, r, result_dtype(c=c, r=r)


def toeplitz_operator(c_or_cr: Any) -> LinearOperator:
    """Return the Toeplitz matrix ``T`` of ``c_or_cr`` as a ``LinearOperator``.

    Parameters
    ----------
    c_or_cr : array_like or tuple of array_like
        ``c`` of shape (m,), the first column of ``T``, or a tuple ``(c, r)`` with ``r`` of
        shape (n,) its first row (``r[0]`` is ignored); ``c`` alone means ``r = conj(c)``, the
        convention of :func:`scipy.linalg.matmul_toeplitz` (``T[i, j] = c[i - j]`` for
        ``i >= j``, ``r[j - i]`` for ``j > i``, :func:`scipy.linalg.toeplitz`).

    Returns
    -------
    scipy.sparse.linalg.LinearOperator (cupyx's for CuPy parameters), shape (m, n)
        ``matvec``/``matmat`` compute ``T x``; ``rmatvec``/``rmatmat`` compute ``T^H y``, the
        Toeplitz product with first column ``conj(r)`` and first row ``conj(c)``. The dtype
        is NumPy's promotion of ``c`` and ``r`` (integers to float64).

    Raises
    ------
    ValueError
        ``c`` or ``r`` not 1-d and non-empty, or holding NaN or infinity; a tuple that is not
        ``(c, r)``; vectors of the wrong length at a product.
    TypeError
        Non-numeric arrays, or NumPy and CuPy arrays mixed.

    Notes
    -----
    ``T`` is the top-left block of a circulant of a fast FFT length ``L >= m + n - 1``; each
    product is one FFT pair of length ``L`` (real FFTs for real data) against the circulant's
    spectrum, computed once per dtype: ``O(L log L)`` per vector, ``O(L)`` memory, the matrix
    never formed. The adjoint is built the same way from ``(conj(r), conj(c))``.

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> from structlin.interop.scipy import toeplitz_operator
    >>> c, r = np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0])
    >>> T = toeplitz_operator((c, r))
    >>> T
    <3x2 toeplitz_operator with dtype=float64>
    >>> x = np.array([1.0, -1.0])
    >>> bool(np.allclose(T @ x, scipy.linalg.toeplitz(c, r) @ x))
    True
    >>> bool(np.allclose(T.H @ c, scipy.linalg.toeplitz(c, r).T @ c))
    True
    """
    xp, c, r, dtype = _column_and_row(c_or_cr, lambda xp, c: xp.conj(c))
    c, r = c.astype(dtype), r.astype(dtype)  # copies: the operator holds its own data
    r[0] = c[0]  # the diagonal is c's (r[0] ignored), also in the adjoint's first column
    return _operator(
        xp, "toeplitz_operator", (c.shape[0], r.shape[0]), dtype,
        _toeplitz_product(xp, c, r, "x"),
        _toeplitz_product(xp, xp.conj(r), xp.conj(c), "y"),
    )


def _hankel_product(xp: ModuleType, h: Any, m: int, n: int, name: str) -> Callable[[Any], Any]:
    """``x -> H x`` for ``H[i, j] = h[i + j]`` (m x n): ``H = T J`` with ``J`` the reversal and
    ``T`` the Toeplitz matrix ``T[i, l] = h[i + n - 1 - l]``."""
    toeplitz = _toeplitz_product(xp, h[n - 1:n - 1 + m], h[n - 1::-1], name)
    return lambda x: toeplitz(xp.asarray(x)[..., ::-1])


def hankel_operator(c_or_cr: Any) -> LinearOperator:
    """Return the Hankel matrix ``H`` of ``c_or_cr`` as a ``LinearOperator``.

    Parameters
    ----------
    c_or_cr : array_like or tuple of array_like
        ``c`` of shape (m,), the first column of ``H``, or a tuple ``(c, r)`` with ``r`` of
        shape (n,) its last row (``r[0]`` is ignored); ``c`` alone means ``r = zeros(m)``: the
        convention of :func:`scipy.linalg.hankel` (``H[i, j] = c[i + j]`` for ``i + j < m``,
        ``r[i + j - m + 1]`` otherwise).

    Returns
    -------
    scipy.sparse.linalg.LinearOperator (cupyx's for CuPy parameters), shape (m, n)
        ``matvec``/``matmat`` compute ``H x``; ``rmatvec``/``rmatmat`` compute ``H^H y``, the
        ``n x m`` Hankel matrix of the conjugated entries. The dtype is NumPy's promotion of
        ``c`` and ``r``.

    Raises
    ------
    ValueError
        ``c`` or ``r`` not 1-d and non-empty, or holding NaN or infinity; a tuple that is not
        ``(c, r)``; vectors of the wrong length at a product.
    TypeError
        Non-numeric arrays, or NumPy and CuPy arrays mixed.

    Notes
    -----
    ``H = T J`` with ``J`` the reversal of the entries and ``T`` a Toeplitz matrix on the same
    ``m + n - 1`` values ``h = (c, r[1:])``, so each product is the FFT product of
    :func:`toeplitz_operator` on the reversed vector, ``O(L log L)`` with ``L >= m + n - 1``;
    ``H^H`` is the Hankel matrix of ``conj(h)``, transposed shape.

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> from structlin.interop.scipy import hankel_operator
    >>> c, r = np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0, 5.0, 6.0])
    >>> H = hankel_operator((c, r))
    >>> H.shape
    (3, 4)
    >>> x = np.arange(4.0)
    >>> bool(np.allclose(H @ x, scipy.linalg.hankel(c, r) @ x))
    True
    """
    xp, c, r, dtype = _column_and_row(c_or_cr, lambda xp, c: xp.zeros_like(c))
    m, n = c.shape[0], r.shape[0]
    h = xp.concatenate([c.astype(dtype), r[1:].astype(dtype)])
    return _operator(
        xp, "hankel_operator", (m, n), dtype,
        _hankel_product(xp, h, m, n, "x"),
        _hankel_product(xp, xp.conj(h), n, m, "y"),
    )


def cauchy_operator(x_nodes: Any, y_nodes: Any) -> LinearOperator:
    """Return the Cauchy matrix ``C[i, j] = 1 / (x_i - y_j)`` as a ``LinearOperator``.

    Parameters
    ----------
    x_nodes : array_like, shape (m,)
        The nodes of the rows.
    y_nodes : array_like, shape (n,)
        The nodes of the columns; none may equal an ``x_i``.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator (cupyx's for CuPy parameters), shape (m, n)
        ``matvec``/``matmat`` compute ``C v`` with :func:`structlin.matmul_cauchy`;
        ``rmatvec``/``rmatmat`` compute ``C^H w = -matmul_cauchy(conj(y), conj(x), w)`` on the
        same fused kernel. The dtype is NumPy's promotion of the nodes.

    Raises
    ------
    ValueError
        Nodes not 1-d and non-empty, holding NaN or infinity, or some ``x_i == y_j`` (checked
        here by one product, naming both nodes); vectors of the wrong length at a product.
    TypeError
        Non-numeric arrays, or NumPy and CuPy arrays mixed.

    Notes
    -----
    ``conj(1 / (x_i - y_j)) = -1 / (conj(y_j) - conj(x_i))``: the adjoint is the Cauchy matrix
    of the conjugated nodes with the roles exchanged, times -1, so both products are the fused
    ``O(m n)``-time, ``O(m + n)``-memory kernel of :func:`structlin.matmul_cauchy`.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import cauchy_to_dense
    >>> from structlin.interop.scipy import cauchy_operator
    >>> x, y = np.array([1.0, 2.0, 3.0]), np.array([0.5, -0.5])
    >>> C = cauchy_operator(x, y)
    >>> w = np.array([1.0, 0.0, -1.0])
    >>> bool(np.allclose(C.H @ w, cauchy_to_dense(x, y).T @ w))
    True
    """
    from structlin.cauchy import matmul_cauchy

    prm = prepare(x_nodes=x_nodes, y_nodes=y_nodes)
    xp, dtype = prm.xp, prm.dtype
    x = _vector_argument(prm.x_nodes, "x_nodes")
    y = _vector_argument(prm.y_nodes, "y_nodes")
    m, n = x.shape[0], y.shape[0]
    matmul_cauchy(x, y, xp.ones(n, dtype))  # x_i == y_j refused now, not at the first product
    xh, yh = xp.conj(x), xp.conj(y)

    def apply(v):
        v, _ = _structured_vectors(xp, v, n, "x", x, y)
        return matmul_cauchy(x, y, v)

    def apply_adjoint(w):
        w, _ = _structured_vectors(xp, w, m, "y", x, y)
        return -matmul_cauchy(yh, xh, w)

    return _operator(xp, "cauchy_operator", (m, n), dtype, apply, apply_adjoint)


def ldr_operator(G: Any, H: Any, kind: str, **operator_params: Any) -> LinearOperator:
    """Return the matrix ``M`` of low displacement rank with generators ``G``, ``H`` as a
    ``LinearOperator``.

    Parameters
    ----------
    G, H : array_like, shape (r, n)
        The generators of one matrix (``displacement = G^T H``), in the convention of
        :func:`structlin.ldr.ldr_multiply`.
    kind : {"toeplitz", "hankel", "vandermonde", "cauchy", "subdiagonal"}
        The displacement structure (the operators of :func:`structlin.ldr.ldr_to_dense`).
    **operator_params
        The kind's operator parameters, as for :func:`structlin.ldr.ldr_multiply`
        (``nodes``, ``f``; ``s``, ``t``; ``subdiag_A``, ``subdiag_B``, ``f_A``, ``f_B``),
        each for one matrix.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator (cupyx's for CuPy parameters), shape (n, n)
        ``matvec``/``matmat`` compute ``M x`` with :func:`structlin.ldr.ldr_multiply`;
        ``rmatvec``/``rmatmat`` compute ``M^H y`` as the ``x`` gradient of
        :func:`structlin.ldr.ldr_multiply_vjp` (the VJP of a linear map is its adjoint). The
        dtype is NumPy's promotion of ``G``, ``H`` and the array operator parameters.

    Raises
    ------
    ValueError, TypeError
        As for :func:`structlin.ldr.ldr_multiply` (checked here by one product), and ``G``
        with batch dimensions.

    Notes
    -----
    Both products run on the fast kernels of :mod:`structlin.ldr` (``O(r n log n)`` for
    "toeplitz" and "hankel", ``O(r n log^2 n)`` for "subdiagonal", the fused ``O(r n^2)``
    kernels for "cauchy" and "vandermonde"); the adjoint costs the VJP, a few forward products
    (it also forms the generators' gradients, which are dropped).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.ldr import ldr_to_dense
    >>> from structlin.interop.scipy import ldr_operator
    >>> rng = np.random.default_rng(0)
    >>> G, H = rng.standard_normal((2, 6)), rng.standard_normal((2, 6))
    >>> A = ldr_operator(G, H, "toeplitz")
    >>> y = np.arange(6.0)
    >>> bool(np.allclose(A.H @ y, ldr_to_dense(G, H, "toeplitz").T @ y))
    True
    """
    from structlin.ldr import ldr_multiply, ldr_multiply_vjp

    params = dict(operator_params)
    xp = array_namespace(G=G, H=H)
    # every check, once: a product with a zero vector (float32 takes no part in the promotion);
    # a NumPy/CuPy mix of G, H and the operator parameters is refused by it, naming them
    shape = np.shape(G)
    n = shape[-1] if shape else 1  # a 0-d G is refused by ldr_multiply, naming it
    probe = ldr_multiply(G, H, xp.zeros(n, np.float32), kind, **params)
    if probe.ndim != 1:
        raise ValueError(f"G, H and the operator parameters must describe one matrix (no batch "
                         f"dimensions), got a batch of shape {probe.shape[:-1]}")
    dtype = probe.dtype

    def apply_adjoint(y):
        y = xp.asarray(y)
        dt = result_dtype(a=probe, y=y)
        return ldr_multiply_vjp(G, H, xp.zeros(y.shape, dt), y, kind, **params)[2]

    return _operator(
        xp, "ldr_operator", (n, n), dtype,
        lambda x: ldr_multiply(G, H, x, kind, **params), apply_adjoint,
    )


# ---- the transforms, circulants and XD-operations: products with no parameters or whose adjoint
# is again one of structlin's products


def _transform_size(n: Any) -> int:
    n = check_int(n, "n", minimum=1, maximum=1 << 24)
    if log2_exact(n) is None:
        raise ValueError(f"n must be a power of two (1, 2, 4, ..., 2**24), got {n}")
    return n


def fwht_operator(
    n: int, *, normalize: bool = False, dtype: Any = np.float64, like: Any = None
) -> LinearOperator:
    """Return the Walsh–Hadamard matrix ``H_n`` (Sylvester order) as a ``LinearOperator``.

    Parameters
    ----------
    n : int
        The size, a power of two up to ``2**24``.
    normalize : bool, default False
        As for :func:`structlin.fwht`: ``H_n`` (entries ``±1``), or the orthogonal
        ``H_n / sqrt(n)``.
    dtype : {float64, float32, complex64, complex128}, default float64
        The operator's ``dtype`` (what the solvers read); each product computes in its
        vector's dtype promoted to floating point, as :func:`structlin.fwht` does.
    like : numpy.ndarray or cupy.ndarray, optional
        An array of the kind of the vectors: a CuPy array gives a
        ``cupyx.scipy.sparse.linalg.LinearOperator`` on the CUDA kernel. Default: NumPy.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator (cupyx's for a CuPy ``like``), shape (n, n)
        ``matvec``/``matmat`` compute ``H_n x`` with :func:`structlin.fwht`; ``H_n`` is real
        and symmetric, so ``rmatvec``/``rmatmat`` are the same transform.

    Raises
    ------
    ValueError
        If ``n`` is not a power of two up to ``2**24``.
    TypeError
        If ``n`` is not an integer, ``normalize`` not a bool, ``dtype`` not one of the four
        kernel dtypes, or ``like`` not a NumPy or CuPy array.

    Notes
    -----
    ``H_n = H_2 ⊗ ... ⊗ H_2``: ``n log2(n)`` additions per vector instead of ``2 n^2`` flops
    for the dense product, the matrix never formed. With ``normalize`` the operator is
    orthogonal and its own inverse.

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> from structlin.interop.scipy import fwht_operator
    >>> A = fwht_operator(4)
    >>> A @ np.array([1.0, 2.0, 3.0, 4.0])
    array([10., -2., -4.,  0.])
    >>> bool(np.allclose(A @ np.eye(4), scipy.linalg.hadamard(4)))
    True
    """
    xp = _like_namespace(like)
    n = _transform_size(n)
    normalize = check_bool(normalize, "normalize")
    dt = check_dtype(dtype)

    def apply(x):
        return fwht(x, normalize=normalize)

    return _operator(xp, "fwht_operator", (n, n), dt, apply, apply)


def _trig_operator(kind: str, n: Any, type: Any, norm: Any, dtype: Any, like: Any) -> Any:
    """The DCT or DST of ``type`` and ``norm`` on length ``n``: the transform, and its
    adjoint (the transform matrix is real, so ``M^H = M^T``) through its VJP."""
    transform, adjoint = (dct, dct_vjp) if kind == "dct" else (dst, dst_vjp)
    xp = _like_namespace(like)
    n = _transform_size(n)
    dt = check_dtype(dtype)
    transform(xp.zeros((0, n), dt), type, norm)  # type and norm checked now, by name

    def apply_adjoint(y):
        y = xp.asarray(y)
        # the VJP reads only the input's shape and dtype: a broadcast zero, no allocation
        x = xp.broadcast_to(xp.zeros((), result_dtype(y=y)), y.shape)
        return adjoint(x, y, type, norm)

    return _operator(
        xp, f"{kind}_operator", (n, n), dt,
        lambda x: transform(x, type, norm), apply_adjoint,
    )


_TRIG_DOC = """Return the {upper} of ``type`` on length ``n`` as a ``LinearOperator``.

    Parameters
    ----------
    n : int
        The length, a power of two up to ``2**24``.
    type : {{2, 3, 4}}, default 2
        As for :func:`structlin.{kind}` (and :func:`scipy.fft.{kind}`).
    norm : {{None, "backward", "ortho"}}, default None
        As for :func:`structlin.{kind}`: unnormalized, or orthonormal.
    dtype : {{float64, float32, complex64, complex128}}, default float64
        The operator's ``dtype`` (what the solvers read); each product computes in its
        vector's dtype promoted to floating point, as :func:`structlin.{kind}` does.
    like : numpy.ndarray or cupy.ndarray, optional
        An array of the kind of the vectors: a CuPy array gives a
        ``cupyx.scipy.sparse.linalg.LinearOperator`` on the CUDA kernels. Default: NumPy.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator (cupyx's for a CuPy ``like``), shape (n, n)
        ``matvec``/``matmat`` compute ``M x = scipy.fft.{kind}(x, type, norm=norm)`` with
        :func:`structlin.{kind}`; ``rmatvec``/``rmatmat`` compute ``M^H y = M^T y`` (``M`` is
        real) with :func:`structlin.{kind}_vjp`.

    Raises
    ------
    ValueError
        If ``n`` is not a power of two up to ``2**24``, ``type`` not 2, 3 or 4, or ``norm``
        not None, "backward" or "ortho".
    TypeError
        If ``n`` or ``type`` is not an integer, ``dtype`` not one of the four kernel dtypes,
        or ``like`` not a NumPy or CuPy array.

    Notes
    -----
    Both products are the butterfly pieces of :func:`structlin.butterfly_{kind}` (a fused
    gather, the DFT butterfly, a fused diagonal), ``O(n log n)`` per vector; the adjoint runs
    the same steps transposed on the same kernels, at the same cost. With ``norm="ortho"``
    the operator is orthogonal, its adjoint its inverse (Makhoul, IEEE Trans. ASSP 28(1),
    1980).

    Examples
    --------
    >>> import numpy as np, scipy.fft
    >>> from structlin.interop.scipy import {kind}_operator
    >>> A = {kind}_operator(8, type=2, norm="ortho")
    >>> M = scipy.fft.{kind}(np.eye(8), type=2, norm="ortho", axis=0)
    >>> x = np.arange(8.0)
    >>> bool(np.allclose(A @ x, M @ x)), bool(np.allclose(A.H @ x, M.T @ x))
    (True, True)
    """


def dct_operator(
    n: int, type: int = 2, norm: str | None = None, *, dtype: Any = np.float64,
    like: Any = None,
) -> LinearOperator:
    return _trig_operator("dct", n, type, norm, dtype, like)


def dst_operator(
    n: int, type: int = 2, norm: str | None = None, *, dtype: Any = np.float64,
    like: Any = None,
) -> LinearOperator:
    return _trig_operator("dst", n, type, norm, dtype, like)


dct_operator.__doc__ = _TRIG_DOC.format(kind="dct", upper="discrete cosine transform (DCT)")
dst_operator.__doc__ = _TRIG_DOC.format(kind="dst", upper="discrete sine transform (DST)")


def circulant_operator(c: Any) -> LinearOperator:
    """Return the circulant matrix ``C`` with first column ``c`` as a ``LinearOperator``.

    Parameters
    ----------
    c : array_like, shape (n,)
        The first column, ``C[i, j] = c[(i - j) mod n]``; ``n`` a power of two up to ``2**24``
        (the length rule of :func:`structlin.circulant_multiply`, which runs on the FFT engine;
        for another length use :func:`toeplitz_operator`, whose FFT length is free).

    Returns
    -------
    scipy.sparse.linalg.LinearOperator (cupyx's for CuPy parameters), shape (n, n)
        ``matvec``/``matmat`` compute ``C x`` with :func:`structlin.circulant_multiply`;
        ``rmatvec``/``rmatmat`` compute ``C^H y``, the circulant product with first column
        ``conj(c[-i mod n])``. The dtype is ``c``'s, promoted to floating point.

    Raises
    ------
    ValueError, TypeError
        As for :func:`structlin.circulant_multiply` (checked here on an empty batch).

    Notes
    -----
    ``C^H[i, j] = conj(c[(j - i) mod n])`` is again a circulant, so both products are three
    butterfly products (:func:`structlin.butterfly_circulant`), ``O(n log n)`` per vector
    instead of ``2 n^2``. ``c`` is held by reference; the adjoint's column is a copy.

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> from structlin.interop.scipy import circulant_operator
    >>> c = np.array([1.0, 2.0, 3.0, 4.0])
    >>> C = circulant_operator(c)
    >>> C @ np.array([1.0, 0.0, 0.0, 0.0])
    array([1., 2., 3., 4.])
    >>> bool(np.allclose(C.H @ np.arange(4.0), scipy.linalg.circulant(c).T @ np.arange(4.0)))
    True
    """
    prm = prepare(c=c)
    xp, c, dtype = prm.xp, prm.c, prm.dtype
    circulant_multiply(c, xp.zeros((0, c.shape[-1] if c.ndim else 1), dtype))  # every check
    n = c.shape[0]
    c_h = xp.conj(xp.concatenate([c[:1], c[:0:-1]]))
    return _operator(
        xp, "circulant_operator", (n, n), dtype,
        lambda x: circulant_multiply(c, x), lambda y: circulant_multiply(c_h, y),
    )


def xd_operator(tw_K: Any, tw_L: Any, tw_M: Any, w: Any) -> LinearOperator:
    """Return the XD-operation ``A = K diag(L w) M`` as a ``LinearOperator``.

    Parameters
    ----------
    tw_K, tw_L, tw_M : array_like, shape (width, 2, L, n//2, 2, 2)
        The K-matrix twiddles, as for :func:`structlin.xd_multiply` (the widths may differ).
    w : array_like, shape (n,)
        The weights; ``L w`` is the diagonal.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator (cupyx's for CuPy parameters), shape (n, n)
        ``matvec``/``matmat`` compute ``A x``, the value of :func:`structlin.xd_multiply`;
        ``rmatvec``/``rmatmat`` compute ``A^H y = M^H diag(conj(L w)) K^H y``. The dtype is
        NumPy's promotion of the four parameters (integers to float64).

    Raises
    ------
    ValueError, TypeError
        As for :func:`structlin.xd_multiply` (checked here on an empty batch).

    Notes
    -----
    The diagonal ``d = L w`` is computed once, here; each product is then two K-matrix
    products, :func:`structlin.kaleidoscope_multiply` with ``M`` and ``K``, or with the
    adjoint K-matrices ``K^H`` and ``M^H`` (again K-matrices of the same widths, their
    twiddles reversed and swapped pairwise, as in :func:`kaleidoscope_operator`):
    ``6 (w_K + w_M) n log2(n)`` real flops per vector either way (Roberts et al. 2021,
    arXiv:2103.15798). The adjoint is exact, not the VJP of :func:`structlin.xd_multiply`,
    which would also form the twiddles' gradients. The parameters are cast to the operator's
    dtype once (copies where the dtype changes).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kaleidoscope_to_dense, random_kaleidoscope
    >>> from structlin.interop.scipy import xd_operator
    >>> tK, tL, tM = (random_kaleidoscope(8, rng=s) for s in range(3))
    >>> w = np.arange(8.0)
    >>> A = xd_operator(tK, tL, tM, w)
    >>> K, L, M = (kaleidoscope_to_dense(t) for t in (tK, tL, tM))
    >>> x = np.ones(8)
    >>> bool(np.allclose(A @ x, K @ np.diag(L @ w) @ M @ x))
    True
    >>> bool(np.allclose(A.H @ x, (K @ np.diag(L @ w) @ M).T @ x))
    True
    """
    prm = prepare(tw_K=tw_K, tw_L=tw_L, tw_M=tw_M, w=w)
    xp, dtype = prm.xp, prm.dtype
    n = prm.w.shape[-1] if prm.w.ndim else 1
    xd_multiply(prm.tw_K, prm.tw_L, prm.tw_M, prm.w, xp.zeros((0, n), dtype))  # every check
    tK, tL, tM, ww = (xp.asarray(a, dtype=dtype) for a in (prm.tw_K, prm.tw_L, prm.tw_M, prm.w))
    d = kaleidoscope_multiply(tL, ww)
    d_h = xp.conj(d)
    tK_h, tM_h = _kaleidoscope_adjoint_twiddle(xp, tK), _kaleidoscope_adjoint_twiddle(xp, tM)
    return _operator(
        xp, "xd_operator", (n, n), dtype,
        lambda x: kaleidoscope_multiply(tK, d * kaleidoscope_multiply(tM, x)),
        lambda y: kaleidoscope_multiply(tM_h, d_h * kaleidoscope_multiply(tK_h, y)),
    )
