"""structlin's products over the batch axes of Dask arrays (``dask`` extra).

A structured matrix acts on the last axis (on the last two for :func:`fftconv`); the batch axes
in front of it can be split into chunks freely, and :func:`map_batch` applies a function to each
chunk with ``dask.array.map_blocks``. The vectors themselves must not be split: a last axis in
several chunks raises ``ValueError`` unless ``rechunk=True`` is passed, which merges it into one
chunk first (a shuffle of the data that is better done once, by the caller, when the array is
used several times).

Three other layouts follow the structlin functions': SciPy's ``(n,)`` / ``(..., n, k)`` for
:func:`matmul_toeplitz`, :func:`matmul_hankel` and :func:`solve_toeplitz` (axis -2 whole, the
batch and column axes split freely); the leading batch axes only for the scans
(:func:`selective_scan`, :func:`ssd`, :func:`ssm_scan`), whose inputs with a batch axis of their
own (``delta``, ``z``, time-varying ``B`` and ``C``, initial states) are chunked like the first
one and returned states come as a second Dask array from the same tasks; and features
(:func:`kernel_features`, :func:`sorf_features`, :func:`fastfood_features`) whose last axis
changes length.

The parameters (twiddles, factors, kernels, nodes) are small NumPy (or CuPy) arrays embedded in
the task graph and shared by every vector; passing a Dask array as a parameter raises
``TypeError``, a parameter with batch dimensions of its own ``ValueError``. The chunks are
computed by the NumPy path (Numba kernels) or, for a CuPy-backed Dask array, by the CUDA
kernels (the result's ``meta`` is then a CuPy array: see :func:`map_batch`; unverified on a
GPU so far); ``precision`` (:func:`monarch_multiply`, :func:`fftconv`) is passed to every
chunk's call. The tasks are named after the structlin function. Nothing depends on the
scheduler: the same graphs run on threads, processes or a ``distributed`` cluster (tested on a
``LocalCluster`` of two worker processes).

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
    "circulant_multiply",
    "dct",
    "dst",
    "fastfood_features",
    "fftconv",
    "fwht",
    "kaleidoscope_multiply",
    "kernel_features",
    "ldr_multiply",
    "map_batch",
    "matmul_cauchy",
    "matmul_hankel",
    "matmul_toeplitz",
    "matmul_vandermonde",
    "monarch_multiply",
    "pixelfly_multiply",
    "selective_scan",
    "solve_toeplitz",
    "sorf_features",
    "ssd",
    "ssm_scan",
    "toeplitz_multiply",
    "xd_multiply",
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
        If ``x`` has fewer than ``core_ndim`` axes, a core axis is split into several chunks
        and ``rechunk`` is False, or ``func`` does not keep the batch shape (parameters with
        batch dimensions of their own: every chunk would broadcast against all of them).

    Notes
    -----
    The chunks' array type is ``x``'s: the result's ``meta`` (``dask.array.Array._meta``) is
    an empty array of the type ``func`` returns on a zero vector made from ``x._meta``, so a
    CuPy-backed ``x`` gives a CuPy-backed result (``cupy.ndarray`` chunks) and a NumPy one a
    NumPy-backed result, without any data being moved.

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
    _check_batch_kept(sample, batch_ndim)
    out_core = tuple(sample.shape[batch_ndim:])
    chunks = x.chunks[:batch_ndim] + tuple((d,) for d in out_core)
    meta = np.empty_like(sample, shape=(0,) * (batch_ndim + len(out_core)))
    present = [a for a in aligned if a is not None]
    slots = [a is not None for a in aligned]

    def block(xb, *blocks):
        it = iter(blocks)
        return func(xb, *(next(it) if s else None for s in slots))

    return da.map_blocks(block, x, *present, dtype=sample.dtype, chunks=chunks, meta=meta,
                         token=_token(func))


def _token(func: Callable[..., Any]) -> str:
    """The key prefix of a wrapper's tasks: the structlin function's name (dashboards and task
    streams then show ``butterfly_multiply-<hash>``, not a closure's name)."""
    while isinstance(func, functools.partial):
        func = func.func
    return getattr(func, "__name__", "map_batch")


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

    conv.__name__ = "fftconv"
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


# ---- helpers of the wrappers below ---------------------------------------------------------


def _check_batch_kept(sample: Any, batch_ndim: int, what: str = "the result") -> None:
    """A chunk of one vector per batch axis must give one result per batch axis."""
    if tuple(sample.shape[:batch_ndim]) != (1,) * batch_ndim:
        raise ValueError(
            f"{what} of one vector has batch shape {tuple(sample.shape[:batch_ndim])}, not "
            f"{(1,) * batch_ndim}: the parameters have batch dimensions of their own; the Dask "
            "wrappers take parameters shared by every vector (loop over the parameter batches, "
            "or use map_batch with a function of your own)"
        )


def _empty_like(sample: Any) -> Any:
    """The ``meta`` of a result: an empty array of the sample's type (NumPy or CuPy) and dtype."""
    return np.empty_like(sample, shape=(0,) * sample.ndim)


def _map_aligned(
    func: Callable[..., Any],
    entries: list[tuple[str, Any, bool]],
    batch_ndim: int,
    rechunk: bool,
) -> Any:
    """``func(*blocks)`` over the leading ``batch_ndim`` axes of several arrays at once.

    ``entries`` are ``(name, array, aligned)``; the first is the reference (a Dask array).
    An aligned array has the reference's batch shape in front of core axes of its own (any
    number, any lengths: the ``(n, l)`` of a time-varying ``B``); it is chunked like the
    reference along the batch axes and must hold its core axes in one chunk each. The others
    (``None`` included) are passed whole to every call. ``func`` may return a tuple; the
    result is then a tuple of Dask arrays.
    """
    name0, x, _ = entries[0]
    if not isinstance(x, da.Array):
        raise TypeError(
            f"{name0} must be a dask.array.Array, got {type(x).__name__}; wrap it with "
            "dask.array.from_array(..., chunks=...) or call the structlin function directly"
        )
    if batch_ndim < 0:
        raise ValueError(f"{name0} has too few axes, shape {x.shape}")
    batch = x.shape[:batch_ndim]
    bchunks = x.chunks[:batch_ndim]
    lazy, slots = [], []
    for name, a, aligned in entries:
        if not aligned or a is None:
            if a is not None:
                _check_parameters(**{name: a})
            slots.append((False, a))
            continue
        if not isinstance(a, da.Array):
            a = np.asarray(a) if isinstance(a, (list, tuple, int, float, complex)) else a
        if a.ndim < batch_ndim or tuple(a.shape[:batch_ndim]) != batch:
            raise ValueError(
                f"{name} must have the batch shape {batch} of {name0} in front (the Dask "
                f"wrapper splits the batch axes only), got shape {tuple(a.shape)}")
        if not isinstance(a, da.Array):
            a = da.from_array(a, chunks=bchunks + tuple(a.shape[batch_ndim:]), asarray=False)
        a = _whole_core(a, a.ndim - batch_ndim, name, rechunk)
        if a.chunks[:batch_ndim] != bchunks:
            a = a.rechunk(bchunks + tuple((d,) for d in a.shape[batch_ndim:]))
        slots.append((True, len(lazy)))
        lazy.append(a)

    def call(*blocks):
        return func(*(blocks[v] if on else v for on, v in slots))

    call.__name__ = _token(func)

    sample = call(*(np.zeros_like(a._meta, shape=(1,) * batch_ndim + a.shape[batch_ndim:])
                    for a in lazy))
    samples = sample if isinstance(sample, tuple) else (sample,)
    for s in samples:
        _check_batch_kept(s, batch_ndim)
    ins = ",".join("(" + ",".join(f"i{j}c{k}" for k in range(a.ndim - batch_ndim)) + ")"
                   for j, a in enumerate(lazy))
    outs = ["(" + ",".join(f"o{j}c{k}" for k in range(s.ndim - batch_ndim)) + ")"
            for j, s in enumerate(samples)]
    sizes = {f"o{j}c{k}": d for j, s in enumerate(samples)
             for k, d in enumerate(s.shape[batch_ndim:])}
    signature = ins + "->" + (",".join(outs) if isinstance(sample, tuple) else outs[0])
    meta = tuple(map(_empty_like, samples))
    return da.apply_gufunc(call, signature, *lazy, output_sizes=sizes,
                           meta=meta if isinstance(sample, tuple) else meta[0])


def _check_cr(c_or_cr: Any) -> None:
    if isinstance(c_or_cr, tuple) and len(c_or_cr) == 2:
        _check_parameters(c=c_or_cr[0], r=c_or_cr[1])
    else:
        _check_parameters(c=c_or_cr)


def _map_matrix(func: Callable[[Any], Any], x: da.Array, name: str, rechunk: bool) -> da.Array:
    """``func`` over a Dask array in SciPy's layout: vectors ``(n,)`` or the columns of
    ``(..., n, k)``; the batch axes and the ``k`` columns may be split, not ``n``."""
    if not isinstance(x, da.Array):
        raise TypeError(
            f"{name} must be a dask.array.Array, got {type(x).__name__}; wrap it with "
            "dask.array.from_array(..., chunks=...) or call the structlin function directly"
        )
    if x.ndim == 0:
        raise ValueError(f"{name} must have at least one axis, got a 0-d array")
    ax = x.ndim - 2 if x.ndim >= 2 else 0
    if len(x.chunks[ax]) > 1:
        if not rechunk:
            raise ValueError(
                f"{name} has its vector axis split (axis {ax - x.ndim} in "
                f"{len(x.chunks[ax])} chunks, chunks {x.chunks}); structlin needs every vector "
                f"in one chunk: rechunk with {name}.rechunk({{{ax - x.ndim}: -1}}) or pass "
                "rechunk=True")
        x = x.rechunk({ax: -1})
    shape = tuple(d if i == ax else 1 for i, d in enumerate(x.shape))
    sample = func(np.zeros_like(x._meta, shape=shape))
    expected = tuple(sample.shape[ax] if i == ax else 1 for i in range(x.ndim))
    if tuple(sample.shape) != expected:
        raise ValueError(
            f"the product of one vector has shape {tuple(sample.shape)}, not {expected}: the "
            "parameters have batch dimensions of their own; the Dask wrappers take parameters "
            "shared by every vector")
    chunks = tuple((sample.shape[ax],) if i == ax else c for i, c in enumerate(x.chunks))
    return da.map_blocks(func, x, dtype=sample.dtype, chunks=chunks, meta=_empty_like(sample),
                         token=_token(func))


# ---- Kaleidoscope, XD, circulant and Toeplitz products -------------------------------------


def kaleidoscope_multiply(twiddle: Any, x: da.Array, *, rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.kaleidoscope_multiply` of a Dask array, chunk by chunk.

    Parameters
    ----------
    twiddle : array_like, shape (w, 2, L, n//2, 2, 2)
        The K-matrix twiddles, shared by every vector.
    x : dask.array.Array, shape (..., n)
        Any chunks along the batch axes, one chunk along the last.
    rechunk : bool, default False
        Merge a split last axis instead of raising (see :func:`map_batch`).

    Returns
    -------
    dask.array.Array, shape (..., n)

    Raises
    ------
    ValueError
        If the last axis of ``x`` is split and ``rechunk`` is False, or as for
        :func:`structlin.kaleidoscope_multiply` (when the graph is built).
    TypeError
        If ``twiddle`` is a Dask array or ``x`` is not one.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from structlin import kaleidoscope_to_dense, random_kaleidoscope
    >>> from structlin.interop.dask import kaleidoscope_multiply
    >>> tw = random_kaleidoscope(8, rng=0)
    >>> x = da.from_array(np.eye(8), chunks=(3, 8))
    >>> bool(np.allclose(kaleidoscope_multiply(tw, x).compute(), kaleidoscope_to_dense(tw).T))
    True
    """
    _check_parameters(twiddle=twiddle)
    return map_batch(functools.partial(sl.kaleidoscope_multiply, twiddle), x, rechunk=rechunk)


def xd_multiply(tw_K: Any, tw_L: Any, tw_M: Any, w: Any, x: da.Array, *,
                rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.xd_multiply` of a Dask array, chunk by chunk.

    Parameters
    ----------
    tw_K, tw_L, tw_M : array_like, shape (width, 2, L, n//2, 2, 2)
    w : array_like, shape (n,)
        As for :func:`structlin.xd_multiply`.
    x : dask.array.Array, shape (..., n)
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (..., n)
    """
    _check_parameters(tw_K=tw_K, tw_L=tw_L, tw_M=tw_M, w=w)
    return map_batch(functools.partial(sl.xd_multiply, tw_K, tw_L, tw_M, w), x,
                     rechunk=rechunk)


def circulant_multiply(c: Any, x: da.Array, *, rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.circulant_multiply` of a Dask array, chunk by chunk.

    Parameters
    ----------
    c : array_like, shape (n,)
        First column of the circulant.
    x : dask.array.Array, shape (..., n)
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (..., n)
    """
    _check_parameters(c=c)
    return map_batch(functools.partial(sl.circulant_multiply, c), x, rechunk=rechunk)


def toeplitz_multiply(column: Any, row: Any, x: da.Array, *,
                      rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.toeplitz_multiply` (vectors on the last axis) of a Dask array.

    Parameters
    ----------
    column, row : array_like, shape (n,)
    x : dask.array.Array, shape (..., n)
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (..., n)

    See Also
    --------
    matmul_toeplitz : SciPy's layout (vectors along axis -2), rectangular matrices.
    """
    _check_parameters(column=column, row=row)
    return map_batch(functools.partial(sl.toeplitz_multiply, column, row), x, rechunk=rechunk)


def matmul_toeplitz(c_or_cr: Any, x: da.Array, check_finite: bool = False,
                    workers: int | None = None, *, rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.matmul_toeplitz` (SciPy's layout) of a Dask array, by chunks.

    Parameters
    ----------
    c_or_cr : array_like or tuple of (array_like, array_like)
        The first column ``c``, shape ``(m,)``, or ``(c, r)`` with the first row ``r``, shape
        ``(n,)``: one matrix, shared by every vector (no batch dimensions).
    x : dask.array.Array, shape (n,) or (..., n, k)
        SciPy's layout: the vectors are the columns, along axis -2 (the axis that must be in
        one chunk); the batch axes and the ``k`` axis may be split freely.
    check_finite : bool, default False
    workers : int, optional
        As for :func:`structlin.matmul_toeplitz` (FFT workers of each chunk's call).
    rechunk : bool, default False
        Merge a split vector axis instead of raising.

    Returns
    -------
    dask.array.Array, shape (m,) or (..., m, k)

    Raises
    ------
    ValueError
        If the vector axis is split and ``rechunk`` is False, if ``c`` or ``r`` has batch
        dimensions, or as for :func:`structlin.matmul_toeplitz`.
    TypeError
        If a parameter is a Dask array or ``x`` is not one.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from structlin.interop.dask import matmul_toeplitz
    >>> c, r = np.array([1.0, 3, 6, 10]), np.array([1.0, -1, -2, -3])
    >>> x = da.from_array(np.array([[1.0, 10], [2, 11], [2, 11], [5, 19]]), chunks=(4, 1))
    >>> matmul_toeplitz((c, r), x).compute()
    array([[-20., -80.],
           [ -7.,  -8.],
           [  9.,  85.],
           [ 33., 218.]])
    """
    _check_cr(c_or_cr)
    return _map_matrix(functools.partial(sl.matmul_toeplitz, c_or_cr, check_finite=check_finite,
                                         workers=workers), x, "x", rechunk)


def matmul_hankel(c_or_cr: Any, x: da.Array, check_finite: bool = False, *,
                  rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.matmul_hankel` (SciPy's layout) of a Dask array, by chunks.

    Parameters
    ----------
    c_or_cr : array_like or tuple of (array_like, array_like)
        The first column ``c``, shape ``(m,)``, or ``(c, r)`` with the last row ``r``; shared
        by every vector.
    x : dask.array.Array, shape (n,) or (..., n, k)
        As for :func:`matmul_toeplitz`: axis -2 in one chunk.
    check_finite : bool, default False
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (m,) or (..., m, k)
    """
    _check_cr(c_or_cr)
    return _map_matrix(functools.partial(sl.matmul_hankel, c_or_cr, check_finite=check_finite),
                       x, "x", rechunk)


def solve_toeplitz(c_or_cr: Any, b: da.Array, check_finite: bool = True, *,
                   method: str = "auto", rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.solve_toeplitz` (SciPy's layout) of a Dask array, by chunks.

    Parameters
    ----------
    c_or_cr : array_like or tuple of (array_like, array_like)
        The square Toeplitz matrix, shared by every right-hand side.
    b : dask.array.Array, shape (n,) or (..., n, k)
        The right-hand sides, the columns along axis -2 (in one chunk).
    check_finite : bool, default True
    method : str, default "auto"
        As for :func:`structlin.solve_toeplitz`.
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape like b

    Notes
    -----
    Every chunk solves with the whole matrix again (its own Levinson recursion or
    factorisation): chunks of many columns amortise that.
    """
    _check_cr(c_or_cr)
    return _map_matrix(functools.partial(sl.solve_toeplitz, c_or_cr, check_finite=check_finite,
                                         method=method), b, "b", rechunk)


def ldr_multiply(G: Any, H: Any, x: da.Array, kind: str, *, rechunk: bool = False,
                 **operator_params: Any) -> da.Array:
    """Return :func:`structlin.ldr_multiply` of a Dask array (vectors on the last axis).

    Parameters
    ----------
    G, H : array_like, shape (r, n)
        The generators, shared by every vector.
    x : dask.array.Array, shape (..., n)
    kind : {"toeplitz", "hankel", "vandermonde", "cauchy", "subdiagonal"}
    rechunk : bool, default False
    **operator_params
        ``nodes``, ``f``, ``s``, ``t``, ``subdiag_A``, ``subdiag_B``, ``f_A``, ``f_B``, as for
        :func:`structlin.ldr_multiply` (without batch dimensions).

    Returns
    -------
    dask.array.Array, shape (..., n)

    Raises
    ------
    ValueError
        As for :func:`structlin.ldr_multiply`, when the graph is built; generators or
        operator parameters with batch dimensions.
    """
    _check_parameters(G=G, H=H, **operator_params)
    return map_batch(functools.partial(sl.ldr_multiply, G, H, kind=kind, **operator_params), x,
                     rechunk=rechunk)


def matmul_cauchy(x_nodes: Any, y_nodes: Any, v: da.Array, *, rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.matmul_cauchy` of a Dask array of vectors ``v``, by chunks.

    Parameters
    ----------
    x_nodes : array_like, shape (m,)
    y_nodes : array_like, shape (n,)
        The nodes, shared by every vector.
    v : dask.array.Array, shape (..., n)
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (..., m)
    """
    _check_parameters(x_nodes=x_nodes, y_nodes=y_nodes)
    return map_batch(functools.partial(sl.matmul_cauchy, x_nodes, y_nodes), v, rechunk=rechunk)


def matmul_vandermonde(x: Any, v: da.Array, m: int, transpose: bool = False, *,
                       rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.matmul_vandermonde` of a Dask array of vectors ``v``.

    Parameters
    ----------
    x : array_like, shape (n,)
        The nodes, shared by every vector.
    v : dask.array.Array, shape (..., n), or (..., m) with ``transpose=True``
    m : int
    transpose : bool, default False
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (..., m), or (..., n) with ``transpose=True``
    """
    _check_parameters(x=x)
    return map_batch(functools.partial(sl.matmul_vandermonde, x, m=m, transpose=transpose), v,
                     rechunk=rechunk)


# ---- kernel features -----------------------------------------------------------------------


def kernel_features(X: da.Array, nodes: Any, weights: Any, *, phases: Any = None,
                    rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.kernel_features` of the rows of a Dask array, chunk by chunk.

    Parameters
    ----------
    X : dask.array.Array, shape (..., d)
        Points, one per row; any chunks along the batch axes, one along the last.
    nodes : array_like, shape (m, d)
    weights : array_like, shape (m,)
    phases : array_like, shape (m,), optional
        As for :func:`structlin.kernel_features` (``out=`` has no Dask counterpart).
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (..., 2m), or (..., m) with ``phases``
        The last axis changes length: one chunk of ``2m`` (or ``m``) features per row chunk.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from structlin import quadrature_rule
    >>> from structlin.interop.dask import kernel_features
    >>> nodes, weights = quadrature_rule("rff", 3, 16, random_state=0)
    >>> Z = kernel_features(da.ones((100, 3), chunks=(25, 3)), nodes, weights)
    >>> Z.shape, Z.chunks[1]
    ((100, 32), (32,))
    """
    _check_parameters(nodes=nodes, weights=weights, phases=phases)
    return map_batch(functools.partial(sl.kernel_features, nodes=nodes, weights=weights,
                                       phases=phases), X, rechunk=rechunk)


def sorf_features(X: da.Array, signs: Any, *, gamma: float = 1.0, n_nodes: int | None = None,
                  rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.sorf_features` of the rows of a Dask array, chunk by chunk.

    Parameters
    ----------
    X : dask.array.Array, shape (..., d)
    signs : array_like, shape (blocks, 3, p)
    gamma : float, default 1.0
    n_nodes : int, optional
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (..., 2 n_nodes)
    """
    _check_parameters(signs=signs)
    return map_batch(functools.partial(sl.sorf_features, signs=signs, gamma=gamma,
                                       n_nodes=n_nodes), X, rechunk=rechunk)


def fastfood_features(X: da.Array, b: Any, perm: Any, g: Any, s: Any, *, gamma: float = 1.0,
                      n_nodes: int | None = None, rechunk: bool = False) -> da.Array:
    """Return :func:`structlin.fastfood_features` of the rows of a Dask array, chunk by chunk.

    Parameters
    ----------
    X : dask.array.Array, shape (..., d)
    b, perm, g, s : array_like, shape (blocks, p)
    gamma : float, default 1.0
    n_nodes : int, optional
    rechunk : bool, default False

    Returns
    -------
    dask.array.Array, shape (..., 2 n_nodes)
    """
    _check_parameters(b=b, perm=perm, g=g, s=s)
    return map_batch(functools.partial(sl.fastfood_features, b=b, perm=perm, g=g, s=s,
                                       gamma=gamma, n_nodes=n_nodes), X, rechunk=rechunk)


# ---- state-space scans: chunks over the batch axes only ------------------------------------


def selective_scan(u: da.Array, delta: Any, A: Any, B: Any, C: Any, D: Any = None,
                   z: Any = None, delta_bias: Any = None, delta_softplus: bool = False,
                   return_last_state: bool = False, *, rechunk: bool = False) -> Any:
    """Return :func:`structlin.selective_scan` of a Dask array, chunk by chunk over the batch.

    Parameters
    ----------
    u : dask.array.Array, shape (*batch, d, l)
        Any chunks along the batch axes; the channel and time axes in one chunk each (a scan
        runs along the whole sequence).
    delta, z : dask.array.Array or array_like, shape like u
        Chunked like ``u`` (``z`` optional).
    A : array_like, shape (d, n)
    B, C : array_like or dask.array.Array
        Time-invariant ``(d, n)``: embedded in every task; time-varying ``(*batch, n, l)`` or
        grouped ``(*batch, g, n, l)``: chunked like ``u`` along the batch axes.
    D, delta_bias : array_like, shape (d,), optional
    delta_softplus, return_last_state : bool, default False
        As for :func:`structlin.selective_scan`.
    rechunk : bool, default False
        Merge split channel/time (or state) axes instead of raising.

    Returns
    -------
    out : dask.array.Array, shape like u
    last_state : dask.array.Array, shape (*batch, d, n)
        Only with ``return_last_state`` (a tuple of two Dask arrays, from the same tasks).

    Raises
    ------
    ValueError
        A split core axis (without ``rechunk``), a time-varying array whose batch shape is
        not ``u``'s, or as for :func:`structlin.selective_scan`, when the graph is built.
    TypeError
        ``u`` not a Dask array, ``A``, ``D`` or ``delta_bias`` a Dask array.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import structlin
    >>> from structlin.interop.dask import selective_scan
    >>> rng = np.random.default_rng(0)
    >>> u, dt = rng.standard_normal((2, 6, 3, 16)), rng.random((2, 6, 3, 16))
    >>> A, B, C = -rng.random((3, 4)), rng.standard_normal((2, 6, 4, 16)), np.ones((3, 4))
    >>> y = selective_scan(da.from_array(u, chunks=(1, 2, 3, 16)), dt, A, B, C)
    >>> y.chunks[:2]
    ((1, 1), (2, 2, 2))
    >>> bool(np.allclose(y.compute(), structlin.selective_scan(u, dt, A, B, C)))
    True
    """
    def scan(u, delta, A, B, C, D, z, delta_bias):
        return sl.selective_scan(u, delta, A, B, C, D, z, delta_bias,
                                 delta_softplus=delta_softplus,
                                 return_last_state=return_last_state)

    scan.__name__ = "selective_scan"
    batch_ndim = u.ndim - 2 if hasattr(u, "ndim") else 0
    varying = [getattr(M, "ndim", np.ndim(M)) > 2 for M in (B, C)]
    entries = [("u", u, True), ("delta", delta, True), ("A", A, False), ("B", B, varying[0]),
               ("C", C, varying[1]), ("D", D, False), ("z", z, True),
               ("delta_bias", delta_bias, False)]
    return _map_aligned(scan, entries, batch_ndim, rechunk)


def ssd(X: da.Array, A: Any, B: Any, C: Any, chunk_size: int, initial_states: Any = None,
        return_final_states: bool = False, *, rechunk: bool = False) -> Any:
    """Return :func:`structlin.ssd` (Mamba-2's scan) of a Dask array, chunk by chunk over the
    batch axis.

    Parameters
    ----------
    X : dask.array.Array, shape (batch, length, heads, head_dim)
        Any chunks along ``batch``; the other axes in one chunk each.
    A : dask.array.Array or array_like, shape (batch, length, heads)
    B, C : dask.array.Array or array_like, shape (batch, length, groups, state)
    chunk_size : int
        The scan's own chunk length in time (not a Dask chunk).
    initial_states : dask.array.Array or array_like, shape (batch, heads, head_dim, state),
        optional
    return_final_states : bool, default False
    rechunk : bool, default False

    Returns
    -------
    Y : dask.array.Array, shape (batch, length, heads, head_dim)
    final_states : dask.array.Array, shape (batch, heads, head_dim, state)
        Only with ``return_final_states`` (a tuple, from the same tasks).

    Raises
    ------
    ValueError
        An argument whose leading batch axis is not ``X``'s, a split core axis (without
        ``rechunk``), or as for :func:`structlin.ssd`, when the graph is built.
    """
    def scan(X, A, B, C, S0):
        return sl.ssd(X, A, B, C, chunk_size, initial_states=S0,
                      return_final_states=return_final_states)

    scan.__name__ = "ssd"
    batch_ndim = X.ndim - 3 if hasattr(X, "ndim") else 0
    entries = [("X", X, True), ("A", A, True), ("B", B, True), ("C", C, True),
               ("initial_states", initial_states, True)]
    return _map_aligned(scan, entries, batch_ndim, rechunk)


def ssm_scan(Lambda: Any, B: Any, C: Any, dt: Any, u: da.Array, *, method: str = "zoh",
             D: Any = None, state: Any = None, return_state: bool = False,
             rechunk: bool = False) -> Any:
    """Return :func:`structlin.ssm_scan` (diagonal S4D/S5 recurrence) of a Dask array, chunk
    by chunk over the batch axes.

    Parameters
    ----------
    Lambda, B, C : array_like, shape (H, N)
    dt : array_like, shape (H,) or scalar
    u : dask.array.Array, shape (..., H, L)
        Any chunks along the batch axes; channels and time in one chunk each.
    method : {"zoh", "bilinear"}, default "zoh"
    D : array_like, shape (H,), optional
    state : dask.array.Array or array_like, optional
        ``(H, N)``: one initial state for every sequence (embedded); ``(..., H, N)``: chunked
        like ``u``.
    return_state : bool, default False
    rechunk : bool, default False

    Returns
    -------
    y : dask.array.Array, shape (..., H, L)
    final_state : dask.array.Array, shape (..., H, N)
        Only with ``return_state`` (a tuple, from the same tasks).
    """
    def scan(u, state):
        return sl.ssm_scan(Lambda, B, C, dt, u, method=method, D=D, state=state,
                           return_state=return_state)

    scan.__name__ = "ssm_scan"
    _check_parameters(Lambda=Lambda, B=B, C=C, dt=dt, D=D)
    batch_ndim = u.ndim - 2 if hasattr(u, "ndim") else 0
    per_sequence = state is not None and getattr(state, "ndim", np.ndim(state)) > 2
    return _map_aligned(scan, [("u", u, True), ("state", state, per_sequence)], batch_ndim,
                        rechunk)
