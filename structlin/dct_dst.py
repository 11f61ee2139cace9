"""The DCT and DST (types 2, 3, 4) and their pieces as butterflies, for fine-tuning.

:func:`dct` / :func:`dst` (and their VJPs): on NumPy input, Makhoul's algorithm on the FFT
engine of :mod:`structlin.fft` (a reordering, one real transform, a twiddle pass); on CuPy
input, a gather (Makhoul's permutation with the bit reversal folded in), the DFT butterfly
(:func:`structlin.butterfly_dft`, applied by :func:`structlin.butterfly_multiply`), then a
diagonal and a real part. The butterfly pieces are returned by :func:`butterfly_dct` /
:func:`butterfly_dst` (a :class:`DCTButterfly`) and applied by :func:`dct_butterfly_multiply`,
so that they can be fine-tuned. The gathers are the kernels ``butterfly_special`` (one concept:
the fused gathers and diagonals around the butterfly).

References: J. Makhoul, "A fast cosine transform in one and two dimensions", IEEE Trans. ASSP
28(1), 1980; T. Dao, A. Gu, M. Eichhorn, A. Rudra, C. Ré, "Learning Fast Algorithms for Linear
Transforms Using Butterfly Factorizations", ICML 2019, arXiv:1903.05895.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np

from structlin._backend import (
    as_kernel_array,
    flatten_batch,
    kernels,
    real_dtype,
    restore_batch,
    result_dtype,
)
from structlin._validate import (
    ABSENT,
    as_array,
    check_choice,
    check_int,
    check_min_ndim,
    check_not_none,
    check_shape,
    log2_exact,
    prepare,
)
from structlin.butterfly import (
    bit_reversal_permutation,
    butterfly_multiply,
    butterfly_multiply_vjp,
)
from structlin.dft_hadamard import (
    _check_transform_size,
    _complex_of,
    _dft_twiddle,
    _nonfinite_pairs,
)

__all__ = [
    "DCTButterfly",
    "butterfly_dct",
    "butterfly_dst",
    "dct",
    "dct_butterfly_multiply",
    "dct_butterfly_multiply_vjp",
    "dct_vjp",
    "dst",
    "dst_vjp",
]

_DCT_NORMS = (None, "backward", "ortho")
_DCT_TYPES = (2, 3, 4)


def _check_type(type: Any) -> int:
    return check_choice(check_int(type, "type", minimum=None), "type", _DCT_TYPES)


class DCTButterfly(NamedTuple):
    """The pieces of a DCT/DST of size ``n`` computed through a complex DFT butterfly.

    For a real vector ``x`` of length ``n`` the transform is::

        u = input_weight[0] * x[input_index[0]] + input_weight[1] * x[input_index[1]]
        v = butterfly_multiply(twiddle, u)                 # increasing stride
        y = Re(output_weight * v[output_index])

    and a complex ``x`` is transformed as ``T(x.real) + 1j T(x.imag)`` (the transforms are
    real). :func:`dct_butterfly_multiply` applies the pieces, :func:`dct_butterfly_multiply_vjp`
    differentiates through them (the twiddle included), so they can be fine-tuned.

    Parameters
    ----------
    input_index : ndarray of int64, shape (2, m)
        Where each entry of the butterfly's input is read from; the bit reversal of the DFT
        and Makhoul's permutation are folded in.
    input_weight : ndarray of complex128, shape (2, m)
        The weights of the two reads (the second row is zero for types 2 and 3).
    twiddle : ndarray of complex128, shape (log2(m), m//2, 2, 2)
        A DFT butterfly of size ``m`` (:func:`butterfly_dft`): ``m = n`` for types 2 and 3,
        ``m = n/2`` for type 4 (``m = 1`` when ``n = 1``).
    output_index : ndarray of int64, shape (n,)
        Which entry of the butterfly's output each output reads.
    output_weight : ndarray of complex128, shape (n,)
        Its weight; the real part of the product is the output (normalization included).

    Examples
    --------
    >>> from structlin import butterfly_dct
    >>> p = butterfly_dct(8, type=4)
    >>> p.input_index.shape, p.twiddle.shape, p.output_weight.shape
    ((2, 4), (2, 2, 2, 2), (8,))
    """

    input_index: np.ndarray
    input_weight: np.ndarray
    twiddle: np.ndarray
    output_index: np.ndarray
    output_weight: np.ndarray


def _makhoul(n: int) -> np.ndarray:
    """``v = x[p]``: the even entries in order, then the odd ones reversed."""
    p = np.empty(n, dtype=np.int64)
    h = (n + 1) // 2
    p[:h] = np.arange(0, n, 2)
    p[h:] = np.arange(n - 1 if n % 2 == 0 else n - 2, 0, -2)
    return p


def _dct_scales(n: int, type: int, norm: str) -> np.ndarray:
    """Output scales of types 2 and 4; input scales of type 3 (the transposes of type 2)."""
    if type == 4:
        return np.full(n, math.sqrt(0.5 / n) if norm == "ortho" else 1.0)
    if norm == "ortho":
        f = np.full(n, math.sqrt(0.5 / n))
        f[0] = math.sqrt(0.25 / n)
        return f
    if type == 2:
        return np.ones(n)
    f = np.ones(n)
    f[0] = 0.5
    return f


@functools.cache
def _dct_pieces(kind: str, n: int, type: int, norm: str) -> DCTButterfly:
    """The pieces in complex128/int64, cached and read-only (copied before given out)."""
    if type == 4 and n == 1:
        # a single entry: y = 2 cos(pi/4) x (times the normalization)
        s = 2.0 * math.cos(math.pi / 4) * _dct_scales(1, 4, norm)[0]
        ia = np.zeros((2, 1), np.int64)
        wa = np.array([[1.0], [0.0]], np.complex128)
        pieces = [ia, wa, _dft_twiddle(1, False, 1.0), np.zeros(1, np.int64),
                  np.array([s], np.complex128)]
    elif type == 4:
        m = n // 2
        br = bit_reversal_permutation(m)
        j = np.arange(m)[br]
        omega = np.exp(-1j * np.pi * (4 * j + 1) / (4 * n))
        ia = np.stack([2 * j, n - 1 - 2 * j])
        wa = np.stack([omega, 1j * omega])
        k = np.arange(m)
        psi = 2.0 * np.exp(-1j * np.pi * k / n) * _dct_scales(n, 4, norm)[:m]
        ic = np.empty(n, np.int64)
        cw = np.empty(n, np.complex128)
        ic[0::2] = k
        cw[0::2] = psi
        ic[n - 1 - 2 * k] = k
        cw[n - 1 - 2 * k] = 1j * psi
        pieces = [ia, wa, _dft_twiddle(m, False, 1.0), ic, cw]
    else:
        br = bit_reversal_permutation(n)
        p = _makhoul(n)
        e = np.exp(-1j * np.pi * np.arange(n) / (2 * n))
        f = _dct_scales(n, type, norm)
        if type == 2:
            ia = np.stack([p[br], np.zeros(n, np.int64)])
            wa = np.stack([np.ones(n, np.complex128), np.zeros(n, np.complex128)])
            ic = np.arange(n, dtype=np.int64)
            cw = 2.0 * e * f
        else:
            # the transpose of type 2: DCT-III = DCT-II^T diag(f)
            pinv = np.empty(n, np.int64)
            pinv[p] = np.arange(n)
            ia = np.stack([br, np.zeros(n, np.int64)])
            wa = np.stack([(2.0 * e * f)[br], np.zeros(n, np.complex128)])
            ic = pinv
            cw = np.ones(n, np.complex128)
        pieces = [ia, wa, _dft_twiddle(n, False, 1.0), ic, cw]
    ia, wa, tw, ic, cw = pieces
    if kind == "dst":
        if type == 2:
            # DST-II = R DCT-II S: alternate the input signs, reverse the output
            wa = wa * np.where(ia % 2 == 0, 1.0, -1.0)
            ic = ic[::-1]
            cw = cw[::-1]
        else:
            # DST-III = S DCT-III R and DST-IV = S DCT-IV R
            ia = n - 1 - ia
            cw = cw * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    out = DCTButterfly(*(np.ascontiguousarray(a) for a in (ia, wa, tw, ic, cw)))
    for a in out:
        a.setflags(write=False)
    return out


def _pieces_for(kind: str, n: Any, type: Any, norm: Any, what: str | None = None
                ) -> DCTButterfly:
    """The cached pieces, after checking the size (``what``: see ``_check_transform_size``)
    and the keywords."""
    if what is None:
        _check_transform_size(n)
    else:
        _check_transform_size(n, "x", what)
    type = _check_type(type)
    norm = check_choice(norm, "norm", _DCT_NORMS) or "backward"
    return _dct_pieces(kind, int(n), type, norm)


def butterfly_dct(n: int, type: int = 2, norm: str | None = None) -> DCTButterfly:
    """Return the butterfly pieces of the DCT of ``type`` and size ``n``.

    Parameters
    ----------
    n : int
        Size, a power of two, at most ``2**24``.
    type : {2, 3, 4}, default 2
        The DCT type, as in :func:`scipy.fft.dct`.
    norm : {None, "backward", "ortho"}, default None
        As in :func:`scipy.fft.dct` (None and "backward": unnormalized).

    Returns
    -------
    DCTButterfly
        ``(input_index, input_weight, twiddle, output_index, output_weight)``, fresh writable
        copies in int64/complex128, such that ``dct_butterfly_multiply(pieces, x)`` equals
        ``scipy.fft.dct(x, type, norm=norm)``; see :class:`DCTButterfly` for the formula.

    Raises
    ------
    ValueError
        If ``n`` is not a power of two or above ``2**24``, ``type`` is not 2, 3 or 4, or
        ``norm`` is invalid.
    TypeError
        If ``n`` or ``type`` is not an integer (bool, float, str, None).

    Notes
    -----
    Type 2 (Makhoul 1980): ``v = x[p]`` with ``p`` the even indices followed by the odd ones
    reversed, ``V = DFT(v)`` and ``y[k] = 2 Re(exp(-i pi k / 2n) V[k])``; the bit reversal of
    the DIT butterfly is folded into ``p``. Type 3 is the transpose of type 2 times a diagonal
    (``y = M_2^T diag(1/2, 1, ..., 1) x``, unnormalized), obtained by transposing the three
    steps: diagonal, DFT (symmetric), inverse permutation. Type 4 uses a DFT of half the size:
    ``u[j] = exp(-i pi (4j+1) / 4n) (x[2j] + i x[n-1-2j])``, ``b = 2 exp(-i pi k / n) DFT(u)``,
    ``y[2k] = Re(b[k])`` and ``y[n-1-2k] = -Im(b[k])``. Cost: one complex butterfly of size
    ``m`` (``5 m log2(m)`` flops) plus ``O(n)``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.fft
    >>> from structlin import butterfly_dct, dct_butterfly_multiply
    >>> pieces = butterfly_dct(8, type=2, norm="ortho")
    >>> pieces.twiddle.shape, pieces.output_index.shape
    ((3, 4, 2, 2), (8,))
    >>> x = np.arange(8.0)
    >>> bool(np.allclose(dct_butterfly_multiply(pieces, x), scipy.fft.dct(x, norm="ortho")))
    True
    """
    return DCTButterfly(*(np.array(a) for a in _pieces_for("dct", n, type, norm)))


def butterfly_dst(n: int, type: int = 2, norm: str | None = None) -> DCTButterfly:
    """Return the butterfly pieces of the DST of ``type`` and size ``n``.

    Parameters
    ----------
    n : int
        Size, a power of two, at most ``2**24``.
    type : {2, 3, 4}, default 2
        The DST type, as in :func:`scipy.fft.dst`.
    norm : {None, "backward", "ortho"}, default None
        As in :func:`scipy.fft.dst`.

    Returns
    -------
    DCTButterfly
        Pieces such that ``dct_butterfly_multiply(pieces, x)`` equals
        ``scipy.fft.dst(x, type, norm=norm)`` (see :class:`DCTButterfly`).

    Raises
    ------
    ValueError
        If ``n`` is not a power of two or above ``2**24``, ``type`` is not 2, 3 or 4, or
        ``norm`` is invalid.
    TypeError
        If ``n`` or ``type`` is not an integer (bool, float, str, None).

    Notes
    -----
    With ``S = diag((-1)**j)`` and ``R`` the reversal: ``DST-II = R DCT-II S`` and
    ``DST-III = S DCT-III R``, ``DST-IV = S DCT-IV R``. The signs and the reversals are folded
    into the weights and indices of the DCT pieces (:func:`butterfly_dct`), so a DST costs
    exactly what a DCT costs.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.fft
    >>> from structlin import butterfly_dst, dct_butterfly_multiply
    >>> x = np.arange(4.0)
    >>> y = dct_butterfly_multiply(butterfly_dst(4, type=4), x)
    >>> bool(np.allclose(y, scipy.fft.dst(x, type=4)))
    True
    """
    return DCTButterfly(*(np.array(a) for a in _pieces_for("dst", n, type, norm)))


# (id of the host pieces, dtype, device id) -> the pieces as kernel arrays
_DEVICE_PIECES: dict[tuple, tuple] = {}


def _kernel_pieces(xp, pieces: DCTButterfly, cdt: np.dtype, cache: bool) -> tuple:
    """Return ``(ia, wa, ib, wb, tw, ic, cw)`` as contiguous ``xp`` arrays of dtype ``cdt``.

    Plus ``packed``: True for the library's own pieces (``cache``) with real input weights,
    so that two real rows can share one complex DFT butterfly.
    """
    key = None
    if cache:
        dev = xp.cuda.Device().id if xp is not np else -1
        key = (id(pieces), cdt, dev)
        hit = _DEVICE_PIECES.get(key)
        if hit is not None:
            return hit
    ia = xp.ascontiguousarray(xp.asarray(pieces.input_index[0]), dtype=np.int64)
    wa = xp.ascontiguousarray(xp.asarray(pieces.input_weight[0]), dtype=cdt)
    if bool(np.any(np.asarray(pieces.input_weight[1]) != 0)):
        ib = xp.ascontiguousarray(xp.asarray(pieces.input_index[1]), dtype=np.int64)
        wb = xp.ascontiguousarray(xp.asarray(pieces.input_weight[1]), dtype=cdt)
    else:
        ib = xp.zeros(0, dtype=np.int64)
        wb = xp.zeros(0, dtype=cdt)
    tw = xp.ascontiguousarray(xp.asarray(pieces.twiddle), dtype=cdt)
    ic = xp.ascontiguousarray(xp.asarray(pieces.output_index), dtype=np.int64)
    cw = xp.ascontiguousarray(xp.asarray(pieces.output_weight), dtype=cdt)
    # only for the exact pieces: the separation relies on the butterfly being the DFT, which a
    # user's fine-tuned twiddle need not be
    packed = cache and not bool(np.any(np.asarray(pieces.input_weight).imag != 0))
    out = (ia, wa, ib, wb, tw, ic, cw, packed)
    if key is not None:
        _DEVICE_PIECES[key] = out
    return out


_PIECE_NAMES = DCTButterfly._fields


def _check_pieces(pieces: Any, n: int) -> DCTButterfly:
    """Validate user pieces against ``x``'s length ``n``; return them as NumPy arrays."""
    if not isinstance(pieces, tuple) or len(pieces) != 5:
        raise TypeError(
            "pieces must be a DCTButterfly (input_index, input_weight, twiddle, output_index, "
            f"output_weight), got {type(pieces).__name__}"
        )
    # the pieces are small host data (moved to the device per call): CuPy pieces come back
    ia, wa, tw, ic, cw = (
        as_array(np, a.get() if hasattr(a, "get") else a, f"pieces.{name}")
        for name, a in zip(_PIECE_NAMES, pieces, strict=True)
    )
    if ia.ndim != 2 or ia.shape[0] != 2:
        raise ValueError(f"input_index must have shape (2, m), got {ia.shape}")
    m = ia.shape[1]
    if log2_exact(m) is None:
        raise ValueError(
            f"input_index must have shape (2, m) with m a power of two, got {ia.shape}"
        )
    check_shape(wa, ia.shape, "input_weight", "the shape of input_index")
    L = log2_exact(m)
    check_shape(tw, (L, m // 2, 2, 2), "twiddle", f"a butterfly of size m = {m}")
    if ic.ndim != 1:
        raise ValueError(f"output_index must be 1-d, shape (n_out,), got {ic.shape}")
    check_shape(cw, ic.shape, "output_weight", "the shape of output_index")
    for name, idx, hi in (("input_index", ia, n), ("output_index", ic, m)):
        if idx.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integers, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= hi):
            raise ValueError(
                f"{name} must hold indices in [0, {hi}), got values in "
                f"[{idx.min()}, {idx.max()}]"
            )
    for name, a in (("input_weight", wa), ("twiddle", tw), ("output_weight", cw)):
        result_dtype(**{name: a})
    return DCTButterfly(ia, wa, tw, ic, cw)


def _real_rows(xp, x, dtype):
    """``x`` as kernel array and its real view ``(batch, n, c)``; also its batch shape."""
    x2, batch = flatten_batch(as_kernel_array(xp, x, dtype))
    b, n = x2.shape
    if dtype.kind == "c":
        return x2.view(real_dtype(dtype)).reshape(b, n, 2), batch, 2
    return x2.reshape(b, n, 1), batch, 1


def _from_real_rows(y3, dtype, batch):
    b, N, c = y3.shape
    y = y3.reshape(b, N * c)
    if c == 2:
        y = y.view(dtype)
    return restore_batch(y, batch)


def _apply(xp, pieces: DCTButterfly, x, dtype, cache: bool):
    cdt = _complex_of(dtype)
    ia, wa, ib, wb, tw, ic, cw, packed = _kernel_pieces(xp, pieces, cdt, cache)
    x3, batch, c = _real_rows(xp, x, dtype)
    k = kernels(xp, "butterfly_special")
    m = ia.shape[0]

    def unpacked(x3):
        return k.take_real(butterfly_multiply(tw, k.gather(x3, ia, wa, ib, wb, m)), ic, cw, c)

    if not packed:
        return _from_real_rows(unpacked(x3), dtype, batch)
    # real gather weights (types 2): two real rows share one complex butterfly
    v = butterfly_multiply(tw, k.gather_packed(x3, ia, wa, ib, wb, m))
    y3 = k.take_real_packed(v, ic, cw, x3.shape[0], c)
    if c == 1:
        # the two parts of a complex row are one batch row: only real rows need isolating
        _redo_nonfinite_pairs(xp, v, x3, y3, unpacked)
    return _from_real_rows(y3, dtype, batch)


def _redo_nonfinite_pairs(xp, v, x3, y3, unpacked) -> None:
    """Recompute the rows of the touched pairs each on its own (``unpacked``), in ``y3``.

    Packing ``u_a + i u_b`` separates the two rows exactly only for finite data: a NaN in
    row b makes both parts of the shared result NaN. Re-running just those pairs unpacked
    keeps every finite row finite, as in a dense product, at no cost while all rows are
    finite (a finite row so recomputed differs from its packed value by rounding only).
    """
    rows = _nonfinite_pairs(xp, v, x3.shape[0])
    if rows is not None:
        y3[rows] = unpacked(xp.ascontiguousarray(x3[rows]))


def _apply_vjp(xp, pieces: DCTButterfly, x, grad, dtype, cache: bool, want_twiddle: bool):
    """Gradients ``(grad_twiddle or None, grad_x)`` of ``y = T x`` for ``grad`` on ``y``."""
    cdt = _complex_of(dtype)
    ia, wa, ib, wb, tw, ic, cw, _ = _kernel_pieces(xp, pieces, cdt, cache)
    k = kernels(xp, "butterfly_special")
    m = ia.shape[0]
    n = x.shape[-1]
    # a real x only sees the real part of a complex grad
    g = grad.real if (dtype.kind != "c" and grad.dtype.kind == "c") else grad
    g3, batch, c = _real_rows(xp, g, dtype)
    w = k.take_real_transpose(g3, ic, cw, m)
    gtw = None
    if want_twiddle:
        x3, _, _ = _real_rows(xp, x, dtype)
        u = k.gather(x3, ia, wa, ib, wb, m)
        gtw, gu = butterfly_multiply_vjp(tw, u, w)
    else:
        gu = butterfly_multiply(tw, w, transpose=True, conjugate=True)
    gx = k.gather_transpose(xp.ascontiguousarray(gu), ia, wa, ib, wb, n, c)
    return gtw, _from_real_rows(gx, dtype, batch)


def _prepare_x(x, grad=ABSENT):
    check_not_none(x=x)
    p = prepare(x=x, grad=grad, dtype_of=("x",))
    check_min_ndim(p.x, 1, "x", "(..., n)")
    return p


def _checked_keywords(n: int, type: Any, norm: Any) -> tuple[int, str]:
    """The checks of :func:`_pieces_for` on ``x``'s last-axis length ``n``, ``type`` and
    ``norm``, without building the butterfly pieces (the engine path does not use them)."""
    _check_transform_size(n, "x", "last-axis length n")
    return _check_type(type), check_choice(norm, "norm", _DCT_NORMS) or "backward"


def _engine_rows(kind: str, a, dtype, type: int, norm: str):
    """The transform of the last axis of NumPy ``a`` on structlin's FFT engine
    (:func:`structlin.fft._r2r_any`), in ``dtype``."""
    from structlin.fft import _r2r_any

    dtype = np.dtype(dtype.type)  # native byte order for the kernels
    rows, batch = flatten_batch(as_kernel_array(np, a, dtype))
    n = rows.shape[-1]
    fct, ortho = (1.0 / math.sqrt(2 * n), True) if norm == "ortho" else (1.0, False)
    return restore_batch(_r2r_any(kind, rows, type, fct, ortho), batch)


#: the type whose transform is the transpose (up to a diagonal) of each type's
_TRANSPOSED_TYPE = {2: 3, 3: 2, 4: 4}


def _engine_rows_transposed(kind: str, g, dtype, type: int, norm: str):
    """``M^T g`` for the transform matrix ``M`` of :func:`_engine_rows`: the transform of the
    transposed type, with the diagonal that separates them (``DCT-III = DCT-II^T diag(1/2, 1,
    ..., 1)``, the ``1/2`` at the last entry for the DST; "ortho": the matrices are
    orthogonal, so ``M^T = M^-1``, the other type)."""
    t = _TRANSPOSED_TYPE[type]
    if norm == "ortho" or type == 4:
        return _engine_rows(kind, g, dtype, t, norm)
    pos = 0 if kind == "dct" else -1
    if type == 2:
        g = np.array(g, dtype=np.dtype(dtype.type))
        g[..., pos] *= 2
        return _engine_rows(kind, g, dtype, 3, norm)
    y = _engine_rows(kind, g, dtype, 2, norm)
    y[..., pos] *= 0.5
    return y


def _transform(kind: str, x, type, norm):
    p = _prepare_x(x)
    if p.xp is np:
        type, norm = _checked_keywords(p.x.shape[-1], type, norm)
        return _engine_rows(kind, p.x, p.dtype, type, norm)
    pieces = _pieces_for(kind, p.x.shape[-1], type, norm, "last-axis length n")
    return _apply(p.xp, pieces, p.x, p.dtype, cache=True)


def _transform_vjp(kind: str, x, grad, type, norm):
    check_not_none(grad=grad)
    p = _prepare_x(x, grad)
    if p.xp is np:
        type, norm = _checked_keywords(p.x.shape[-1], type, norm)
    else:
        pieces = _pieces_for(kind, p.x.shape[-1], type, norm, "last-axis length n")
    check_shape(p.grad, p.x.shape, "grad", f"the shape of {kind}'s output, which is x's shape")
    if p.xp is np:
        # a real x only sees the real part of a complex grad
        g = p.grad.real if (p.dtype.kind != "c" and p.grad.dtype.kind == "c") else p.grad
        return _engine_rows_transposed(kind, g, p.dtype, type, norm)
    return _apply_vjp(p.xp, pieces, p.x, p.grad, p.dtype, True, False)[1]


_DCT_DOC = """Return the {title} of ``x`` along its last axis.

    Parameters
    ----------
    x : array_like, shape (..., n)
        Real or complex input; ``n`` a power of two. Any leading batch dimensions.
    type : {{2, 3, 4}}, default 2
        The {upper} type, as in :func:`scipy.fft.{kind}`.
    norm : {{None, "backward", "ortho"}}, default None
        As in :func:`scipy.fft.{kind}`: None/"backward" unnormalized, "ortho" orthonormal.

    Returns
    -------
    ndarray, shape (..., n)
        ``scipy.fft.{kind}(x, type, norm=norm)``, with ``x``'s dtype promoted to floating
        point (float32 and complex64 stay single precision) and ``x``'s array type.

    Raises
    ------
    ValueError
        If ``x`` is 0-d, ``n`` is not a power of two or above ``2**24``, ``type`` is not 2, 3
        or 4 or ``norm`` is not None, "backward" or "ortho".
    TypeError
        If ``x`` is not numeric or ``type`` not an integer.

    See Also
    --------
    butterfly_{kind} : the pieces used here, for fine-tuning.
    {kind}_vjp : the gradient (the transposed transform).

    Notes
    -----
    NumPy input runs on structlin's FFT engine (:func:`structlin.fft.{kind}`, whose Notes give
    the algorithms): types 2 and 3 by Makhoul's reordering, one real transform of length
    ``n`` and one Numba pass before and after it (about ``2.5 n log2(n)`` flops), type 4 by
    one complex transform of length ``n/2``; the normalization is folded into the passes. Each
    row is transformed on its own, so a NaN stays in its row. A complex ``x`` is transformed
    as the rows of its real and imaginary parts. CuPy input runs through the DFT butterfly
    (:class:`DCTButterfly`): a fused gather (Makhoul's permutation, the bit reversal and a
    diagonal), the complex butterfly (:func:`butterfly_dft`, ``5 m log2(m)`` flops for
    ``m = n``, or ``n/2`` for type 4) and a fused diagonal-and-real-part pass; for type 2 two
    real rows share one complex butterfly as ``u_a + i u_b`` (a pair holding a NaN or an
    infinity is recomputed one row at a time). Makhoul, IEEE Trans. ASSP 28(1), 1980;
    butterflies: Dao et al. 2019, arXiv:1903.05895.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.fft
    >>> from structlin import {kind}
    >>> x = np.array([1.0, 2.0, 0.0, -1.0])
    >>> bool(np.allclose({kind}(x), scipy.fft.{kind}(x)))
    True
    >>> bool(np.allclose({kind}(x, type=3, norm="ortho"), scipy.fft.{kind}(x, 3, norm="ortho")))
    True
    >>> bool(np.allclose({kind}({kind}(x, 2, norm="ortho"), 3, norm="ortho"), x))
    True
    """

_VJP_DOC = """Return the gradient ``grad_x`` of :func:`{kind}` for the output gradient ``grad``.

    Parameters
    ----------
    x : array_like, shape (..., n)
        The input of the transform (only its shape and dtype matter: the transform is linear).
    grad : array_like, shape (..., n)
        Gradient of a real loss with respect to ``{kind}(x, type, norm)``.
    type, norm
        As for :func:`{kind}`.

    Returns
    -------
    ndarray, shape (..., n)
        ``M^T grad`` with ``M`` the (real) transform matrix, with ``x``'s dtype promoted to
        floating point (the real part when ``x`` is real and ``grad`` complex).

    Raises
    ------
    ValueError
        As for :func:`{kind}`, and if ``grad`` does not have ``x``'s shape.
    TypeError
        If ``x`` or ``grad`` is not numeric, or NumPy and CuPy arrays are mixed.

    Notes
    -----
    NumPy input: the transform of the transposed type on the engine (``M^T`` of type 2 is the
    type 3 transform after doubling one input, that of type 3 the type 2 transform with one
    output halved, type 4 and every "ortho" matrix are their own transposes up to the type
    swap). CuPy input: the three steps of :func:`{kind}`'s butterfly path transposed, on the
    same kernels (a scatter of the conjugated output weights, the adjoint DFT butterfly, a
    scatter-add of the input weights).
    Same cost as the transform.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.fft
    >>> from structlin import {kind}_vjp
    >>> g = np.array([1.0, 0.0, 2.0, 0.5])
    >>> M = scipy.fft.{kind}(np.eye(4), axis=0)
    >>> bool(np.allclose({kind}_vjp(np.zeros(4), g), M.T @ g))
    True
    """


def dct(x: Any, type: int = 2, norm: str | None = None) -> Any:
    return _transform("dct", x, type, norm)


def dst(x: Any, type: int = 2, norm: str | None = None) -> Any:
    return _transform("dst", x, type, norm)


def dct_vjp(x: Any, grad: Any, type: int = 2, norm: str | None = None) -> Any:
    return _transform_vjp("dct", x, grad, type, norm)


def dst_vjp(x: Any, grad: Any, type: int = 2, norm: str | None = None) -> Any:
    return _transform_vjp("dst", x, grad, type, norm)


dct.__doc__ = _DCT_DOC.format(title="discrete cosine transform", upper="DCT", kind="dct")
dst.__doc__ = _DCT_DOC.format(title="discrete sine transform", upper="DST", kind="dst")
dct_vjp.__doc__ = _VJP_DOC.format(kind="dct")
dst_vjp.__doc__ = _VJP_DOC.format(kind="dst")


def dct_butterfly_multiply(pieces: DCTButterfly, x: Any) -> Any:
    """Return the transform described by ``pieces`` applied to the last axis of ``x``.

    Parameters
    ----------
    pieces : DCTButterfly
        From :func:`butterfly_dct` or :func:`butterfly_dst`, possibly modified (e.g. a
        fine-tuned ``twiddle``); NumPy arrays (moved to the GPU when ``x`` is a CuPy array).
    x : array_like, shape (..., n)
        Real or complex; ``n`` larger than every ``input_index``.

    Returns
    -------
    ndarray, shape (..., n_out)
        ``Re(output_weight * v[output_index])`` with ``v`` the butterfly product of the gathered
        input (see :class:`DCTButterfly`), for real ``x``; ``T(x.real) + 1j T(x.imag)`` for
        complex ``x``. The dtype is ``result_dtype(x)`` (the pieces are rounded to its
        precision).

    Raises
    ------
    ValueError
        If the pieces' shapes do not fit together or an index is out of range.
    TypeError
        If ``pieces`` is not a 5-tuple, an index array is not integer or a dtype not numeric.

    Notes
    -----
    The same three kernels as :func:`dct`; the pieces are validated and converted on every
    call (``O(n)``), unlike the cached pieces of :func:`dct`. Since ``twiddle`` may have been
    changed, every real row gets its own complex butterfly (no packing of two real rows into
    one, which needs the exact DFT).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.fft
    >>> from structlin import butterfly_dct, dct_butterfly_multiply
    >>> pieces = butterfly_dct(4, type=4)
    >>> x = np.eye(4)
    >>> bool(np.allclose(dct_butterfly_multiply(pieces, x), scipy.fft.dct(x, type=4)))
    True
    """
    p = _prepare_x(x)
    pieces = _check_pieces(pieces, p.x.shape[-1])
    return _apply(p.xp, pieces, p.x, p.dtype, cache=False)


def dct_butterfly_multiply_vjp(pieces: DCTButterfly, x: Any, grad: Any) -> tuple[Any, Any]:
    """Return ``(grad_twiddle, grad_x)`` of :func:`dct_butterfly_multiply`.

    Parameters
    ----------
    pieces, x
        As for :func:`dct_butterfly_multiply`.
    grad : array_like, shape (..., n_out)
        Gradient of a real loss with respect to the output.

    Returns
    -------
    grad_twiddle : ndarray, shape (log2(m), m//2, 2, 2)
        Gradient for ``pieces.twiddle`` (complex, PyTorch's convention), summed over the batch
        (and over the real and imaginary parts of a complex ``x``).
    grad_x : ndarray, shape (..., n)
        Gradient for ``x``, with ``x``'s dtype promoted to floating point.

    Raises
    ------
    ValueError, TypeError
        As for :func:`dct_butterfly_multiply`, and if ``grad`` has the wrong shape.

    Notes
    -----
    Transposed post-processing, :func:`structlin.butterfly_multiply_vjp` on the gathered input,
    transposed gather: about three times the cost of the product.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import butterfly_dct, dct_butterfly_multiply_vjp
    >>> pieces = butterfly_dct(8)
    >>> gtw, gx = dct_butterfly_multiply_vjp(pieces, np.ones((2, 8)), np.ones((2, 8)))
    >>> gtw.shape, gx.shape
    ((3, 4, 2, 2), (2, 8))
    """
    check_not_none(grad=grad)
    p = _prepare_x(x, grad)
    xp = p.xp
    pieces = _check_pieces(pieces, p.x.shape[-1])
    n_out = pieces.output_index.shape[0]
    check_shape(p.grad, (*p.x.shape[:-1], n_out), "grad", "the shape of the output")
    # the result dtype of the gradient of the twiddle is the twiddle's (complex)
    gtw, gx = _apply_vjp(xp, pieces, p.x, p.grad, p.dtype, False, True)
    tdt = result_dtype(twiddle=pieces.twiddle)
    if tdt.kind != "c":
        gtw = gtw.real
    return xp.ascontiguousarray(gtw, dtype=tdt), gx


