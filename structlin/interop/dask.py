"""structlin's products over the batch axes of Dask arrays (``dask`` extra).

A structured matrix acts on the last axis (on the last two for :func:`fftconv`); the batch axes
in front of it can be split into chunks freely, and :func:`map_batch` applies a function to each
chunk with ``dask.array.map_blocks``. The vectors themselves must not be split: a last axis in
several chunks raises ``ValueError`` unless ``rechunk=True`` is passed, which merges it into one
chunk first (a shuffle of the data that is better done once, by the caller, when the array is
used several times).

The parameters (twiddles, factors, kernels) are small NumPy (or CuPy) arrays embedded in the
task graph; passing a Dask array as a parameter raises ``TypeError``. The chunks are computed
by the NumPy path (Numba kernels) or, for a CuPy-backed Dask array, by the CUDA kernels;
``precision`` (:func:`monarch_multiply`, :func:`fftconv`) is passed to every chunk's call.

Examples
--------
The examples run in the doctests when Dask is installed (the module is skipped otherwise).

>>> import dask.array as da
>>> import numpy as np
>>> from structlin import random_butterfly
>>> from structlin.interop.dask import butterfly_multiply
>>> tw = random_butterfly(8, rng=0)
>>> x = da.ones((1000, 8), chunks=(250, 8))
>>> y = butterfly_multiply(tw, x)
>>> y.chunks
((250, 250, 250, 250), (8,))
>>> y.compute().shape
(1000, 8)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np

import structlin as sl

__all__ = [
    "butterfly_multiply",
    "butterfly_solve",
    "dct",
    "dst",
    "fftconv",
    "fwht",
    "map_batch",
    "monarch_multiply",
    "pixelfly_multiply",
]


def _whole_core(x: da.Array, core_ndim: int, name: str, rechunk: bool) -> da.Array:
    split = {ax: len(x.chunks[ax]) for ax in range(x.ndim - core_ndim, x.ndim)
             if len(x.chunks[ax]) > 1}
    if not split:
        return x
    if rechunk:
        return x.rechunk({ax: -1 for ax in split})
    axes = ", ".join(f"axis {ax - x.ndim} in {n} chunks" for ax, n in split.items())
    merge = "{" + ", ".join(f"{ax - x.ndim}: -1" for ax in split) + "}"
    raise ValueError(
        f"{name} has its vector axes split ({axes}, chunks {x.chunks}); structlin needs every "
        f"vector in one chunk: rechunk with {name}.rechunk({merge}) or pass rechunk=True"
    )


def map_batch(
    func: Callable[..., Any],
    x: da.Array,
    *aligned: da.Array | None,
    core_ndim: int = 1,
    rechunk: bool = False,
) -> da.Array:
    """Return ``func`` applied chunk by chunk over the batch axes of a Dask array.

    Parameters
    ----------
    func : callable
        ``func(x_block, *aligned_blocks)`` maps an array of shape ``(*batch, *core)`` to one of
        shape ``(*batch, *out_core)``, for any batch shape, e.g.
        ``functools.partial(structlin.butterfly_multiply, twiddle)``.
    x : dask.array.Array, shape (*batch, *core)
        The vectors, along the last ``core_ndim`` axes.
    *aligned : dask.array.Array or None
        Arrays of ``x``'s shape passed to ``func`` block by block with ``x`` (gates); they are
        rechunked like ``x``. ``None`` is passed through.
    core_ndim : int, default 1
        How many trailing axes make one vector (2 for the ``(H, L)`` channels of
        :func:`structlin.fftconv`).
    rechunk : bool, default False
        Merge the core axes into single chunks when they are split, instead of raising.

    Returns
    -------
    dask.array.Array, shape (*batch, *out_core)
        Lazy; ``x``'s batch chunks, one chunk along the core axes. ``out_core`` and the dtype
        are found by calling ``func`` once on a single zero vector.

    Raises
    ------
    TypeError
        If ``x`` is not a Dask array.
    ValueError
        If ``x`` has fewer than ``core_ndim`` axes, or a core axis is split into several chunks
        and ``rechunk`` is False.

    Examples
    --------
    >>> import functools
    >>> import dask.array as da
    >>> from structlin import fwht
    >>> from structlin.interop.dask import map_batch
    >>> x = da.ones((6, 4), chunks=(2, 4))
    >>> map_batch(functools.partial(fwht, normalize=True), x).compute()[0]
    array([2., 0., 0., 0.])
    """
    if not isinstance(x, da.Array):
        raise TypeError(
            f"x must be a dask.array.Array, got {type(x).__name__}; wrap it with "
            "dask.array.from_array(x, chunks=...) or call the structlin function directly"
        )
    if x.ndim < core_ndim:
        raise ValueError(f"x must have at least {core_ndim} axes (the vector axes), got shape "
                         f"{x.shape}")
    x = _whole_core(x, core_ndim, "x", rechunk)
    aligned = tuple(None if a is None else da.asarray(a).rechunk(x.chunks) for a in aligned)
    batch_ndim = x.ndim - core_ndim
    core = x.shape[batch_ndim:]
    # one zero vector of x's array type (NumPy or CuPy) tells the output's core shape and dtype
    sample_shape = (1,) * batch_ndim + core
    sample = func(*(None if a is None else np.zeros_like(a._meta, shape=sample_shape)
                    for a in (x, *aligned)))
    out_core = tuple(sample.shape[batch_ndim:])
    chunks = x.chunks[:batch_ndim] + tuple((d,) for d in out_core)
    meta = np.empty_like(sample, shape=(0,) * (batch_ndim + len(out_core)))
    present = [a for a in aligned if a is not None]
    slots = [a is not None for a in aligned]

    def block(xb, *blocks):
        it = iter(blocks)
        return func(xb, *(next(it) if s else None for s in slots))

    return da.map_blocks(block, x, *present, dtype=sample.dtype, chunks=chunks, meta=meta)


def _check_parameters(**params: Any) -> None:
    for name, p in params.items():
        if isinstance(p, da.Array):
            raise TypeError(
                f"{name} is a dask.array.Array; parameters are small arrays embedded in every "
                f"task: compute it first ({name} = {name}.compute())"
            )


def butterfly_multiply(twiddle: Any, x: da.Array, *, rechunk: bool = False,
                       **flags: bool) -> da.Array:
    """Return :func:`structlin.butterfly_multiply` of a Dask array, chunk by chunk.

    Parameters
    ----------
    twiddle : array_like, shape (L, n//2, 2, 2)
    x : dask.array.Array, shape (..., n)
        Any chunks along the batch axes, one chunk along the last.
    rechunk : bool, default False
        Merge a split last axis instead of raising (see :func:`map_batch`).
    **flags
        ``increasing_stride``, ``transpose``, ``conjugate``, as for
        :func:`structlin.butterfly_multiply`.

    Returns
    -------
    dask.array.Array, shape (..., n)

    Raises
    ------
    ValueError
        If the last axis of ``x`` is split and ``rechunk`` is False, or as for
        :func:`structlin.butterfly_multiply`.
    TypeError
        If ``twiddle`` is a Dask array or ``x`` is not one.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from structlin import butterfly_to_dense, random_butterfly
    >>> from structlin.interop.dask import butterfly_multiply
    >>> tw = random_butterfly(4, rng=0)
    >>> x = da.from_array(np.eye(4), chunks=(1, 4))
    >>> bool(np.allclose(butterfly_multiply(tw, x).compute(), butterfly_to_dense(tw).T))
    True
    """
    _check_parameters(twiddle=twiddle)
    return map_batch(functools.partial(sl.butterfly_multiply, twiddle, **flags), x,
                     rechunk=rechunk)


def butterfly_solve(twiddle: Any, y: da.Array, *, rechunk: bool = False,
                    **flags: bool) -> da.Array:
    """Return :func:`structlin.butterfly_solve` of a Dask array, chunk by chunk.

    Parameters
    ----------
    twiddle : array_like, shape (L, n//2, 2, 2)
    y : dask.array.Array, shape (..., n)
    rechunk : bool, default False
    **flags
        As for :func:`structlin.butterfly_solve`.

    Returns
    -------
    dask.array.Array, shape (..., n)

    Notes
    -----
    The blocks are inverted once, here (:func:`structlin.butterfly_inverse`), so a singular
    twiddle raises ``LinAlgError`` before anything is computed and every chunk is one
    butterfly product.
    """
    _check_parameters(twiddle=twiddle)
    inc = flags.pop("increasing_stride", True)
    inv, inv_inc = sl.butterfly_inverse(twiddle, increasing_stride=inc)
    return map_batch(
        functools.partial(sl.butterfly_multiply, inv, increasing_stride=inv_inc, **flags), y,
        rechunk=rechunk)


def monarch_multiply(w1: Any, w2: Any, x: da.Array, *, precision: str = "highest",
                     rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.monarch_multiply` of a Dask array, chunk by chunk.

    Parameters
    ----------
    w1 : array_like, shape (k, q, p)
    w2 : array_like, shape (l, s, r)
    x : dask.array.Array, shape (..., k*p)
    precision : {"highest", "tf32", "bf16"}, default "highest"
        As for :func:`structlin.monarch_multiply`: tensor cores for the chunks of a
        CuPy-backed float32/complex64 array, full precision for NumPy chunks.
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (..., l*s)

    Raises
    ------
    ValueError
        As for :func:`structlin.monarch_multiply` (a bad ``precision`` included), here, when
        the graph is built.
    """
    _check_parameters(w1=w1, w2=w2)
    return map_batch(functools.partial(sl.monarch_multiply, w1, w2, precision=precision), x,
                     rechunk=rechunk)


def pixelfly_multiply(blocks: Any, mask: Any, U: Any, V: Any, x: da.Array, *,
                      rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.pixelfly_multiply` of a Dask array, chunk by chunk.

    Parameters
    ----------
    blocks, mask, U, V
        As for :func:`structlin.pixelfly_multiply`.
    x : dask.array.Array, shape (..., n_in)
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (..., n_out)
    """
    _check_parameters(blocks=blocks, mask=mask, U=U, V=V)
    return map_batch(functools.partial(sl.pixelfly_multiply, blocks, mask, U, V), x,
                     rechunk=rechunk)


def fftconv(u: da.Array, k: Any, D: Any = None, *, pregate: Any = None, postgate: Any = None,
            causal: bool = True, precision: str = "highest", rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.fftconv` of a Dask array, chunk by chunk.

    Parameters
    ----------
    u : dask.array.Array, shape (..., H, L)
        Any chunks along the batch axes; the channel and time axes each in one chunk.
    k : array_like, shape (H, Lk), or FFTConvPlan
    D : array_like, shape (H,), optional
    pregate, postgate : dask.array.Array or array_like, shape (..., H, L), optional
        Rechunked like ``u``.
    causal : bool, default True
    precision : {"highest", "fp16", "bf16"}, default "highest"
        As for :func:`structlin.fftconv` (checked when the graph is built, like every
        argument).
    rechunk : bool, default False
        Merge split channel/time axes of ``u`` instead of raising.

    Returns
    -------
    dask.array.Array, shape (..., H, L)

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from structlin.interop.dask import fftconv
    >>> u = da.from_array(np.array([[[1.0, 2.0, 3.0, 4.0]]] * 4), chunks=(2, 1, 4))
    >>> fftconv(u, np.array([[1.0, 1.0, 1.0]])).compute()[3]
    array([[1., 3., 6., 9.]])
    """
    _check_parameters(k=k, D=D)

    def conv(ub, pre, post):
        return sl.fftconv(ub, k, D, pregate=pre, postgate=post, causal=causal,
                          precision=precision)

    return map_batch(conv, u, pregate, postgate, core_ndim=2, rechunk=rechunk)


def dct(x: da.Array, type: int = 2, norm: str | None = None, *,
        rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.dct` of a Dask array along its last axis, chunk by chunk.

    Parameters
    ----------
    x : dask.array.Array, shape (..., n)
    type, norm
        As for :func:`structlin.dct`.
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (..., n)
    """
    return map_batch(functools.partial(sl.dct, type=type, norm=norm), x, rechunk=rechunk)


def dst(x: da.Array, type: int = 2, norm: str | None = None, *,
        rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.dst` of a Dask array along its last axis, chunk by chunk.

    Parameters
    ----------
    x : dask.array.Array, shape (..., n)
    type, norm
        As for :func:`structlin.dst`.
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (..., n)
    """
    return map_batch(functools.partial(sl.dst, type=type, norm=norm), x, rechunk=rechunk)


def fwht(x: da.Array, *, normalize: bool = False, rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.fwht` of a Dask array along its last axis, chunk by chunk.

    Parameters
    ----------
    x : dask.array.Array, shape (..., n)
    normalize : bool, default False
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (..., n)
    """
    return map_batch(functools.partial(sl.fwht, normalize=normalize), x, rechunk=rechunk)
