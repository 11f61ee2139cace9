"""JAX wrappers of structlin's differentiable products (``jax`` extra).

Each function takes JAX arrays (or array-likes) in the order and with the keyword arguments of
the structlin function of the same name and returns a JAX array. It is a ``jax.custom_vjp``
function whose forward and backward passes are ``jax.pure_callback`` calls of the NumPy path
(the Numba kernels) and of the function's ``*_vjp``, so it works under ``jax.jit``,
``jax.grad``, ``jax.vjp`` and ``jax.vmap``:

- the callbacks run on the host: arrays on an accelerator are copied to the CPU and back by
  JAX, and structlin's CPU kernels compute (on CPU the NumPy views of the buffers are
  zero-copy). There is no XLA custom call and no GPU execution: structlin's CUDA kernels
  (:mod:`structlin.gpu`) are not reached from JAX;
- under ``jax.vmap`` (``vmap_method="expand_dims"``) the mapped axes of the arguments that
  take leading batch dimensions of their own (the vectors: ``x``, ``y``, ``u`` and the gates,
  ``X``, ``c``, ``r`` and ``b`` of the Toeplitz functions, every array of
  :func:`ssm_kernel_diag`, :func:`ssd` and :func:`ldr_multiply`, ...) become structlin's
  batch axes: one call for the whole batch, nested maps included. When a parameter (a
  twiddle, weights, ...) is mapped, the callback calls structlin once per batch element. The
  backward pass makes one call when every argument it differentiates is of the first kind,
  else one per batch element: JAX asks the mapped VJP for each element's own gradient of an
  unmapped parameter (and sums them itself under ``grad`` of ``vmap``), which one structlin
  call, summing over its batch, cannot give. Arguments that are not differentiated get no
  gradient computed, so ``vmap(grad(f, argnums=<the vector>))`` is one call; for the gradient
  of a loss in the parameters, pass the batch along the leading axes of the vector rather
  than mapping over it (one backward call). The exception is :func:`fftconv`, whose
  arguments all have independent channels: mapped ``k`` and ``D`` are folded into the
  channel axis (``vmap_size * H`` channels), one call forward and one backward whatever is
  mapped or differentiated;
- gradients follow JAX's convention for complex numbers (the conjugate of PyTorch's, which is
  structlin's): the cotangent is conjugated on the way in and the gradients on the way out;
- the result dtype is NumPy's promotion of the inputs' dtypes; float64 and complex128 need
  ``jax.config.update("jax_enable_x64", True)`` as everywhere in JAX. Supported dtypes are
  float32, float64, complex64 and complex128; others raise ``TypeError``.
- ``precision`` (:func:`monarch_multiply`, :func:`fftconv`) is checked when the function is
  called (or traced), with the ``ValueError`` of the NumPy function, and passed to the
  function and its VJP; the callbacks run on the host, where it computes in full precision.

Forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``) is not available: the functions
define reverse mode only.

Examples
--------
The examples run in the doctests when JAX is installed (the module is skipped otherwise).

>>> import jax, jax.numpy as jnp
>>> from structlin import random_butterfly
>>> from structlin.interop.jax import butterfly_multiply
>>> tw = jnp.asarray(random_butterfly(8, rng=0), dtype=jnp.float32)
>>> x = jnp.ones((4, 8), dtype=jnp.float32)
>>> loss = jax.jit(lambda t: jnp.sum(butterfly_multiply(t, x) ** 2))
>>> jax.grad(loss)(tw).shape
(3, 4, 2, 2)

Under ``jax.vmap`` over the vectors, the 5 x 4 vectors go to structlin in one call:

>>> xs = jnp.ones((5, 4, 8), dtype=jnp.float32)
>>> jax.vmap(butterfly_multiply, in_axes=(None, 0))(tw, xs).shape
(5, 4, 8)
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from structlin._registry import families
from structlin._validate import check_choice, check_precision
from structlin.interop._ops import OPS, Op, out_dtype

__all__ = [
    "butterfly_multiply",
    "butterfly_solve",
    "circulant_multiply",
    "dct",
    "dst",
    "fftconv",
    "fwht",
    "kaleidoscope_multiply",
    "kernel_features",
    "ldr_multiply",
    "ldr_solve",
    "matmul_cauchy",
    "matmul_hankel",
    "matmul_toeplitz",
    "matmul_vandermonde",
    "monarch_multiply",
    "pixelfly_multiply",
    "selective_scan",
    "solve_cauchy",
    "solve_hankel",
    "solve_toeplitz",
    "solve_vandermonde",
    "ssd",
    "ssm_kernel_diag",
    "toeplitz_multiply",
    "xd_multiply",
]

_SUPPORTED = tuple(np.dtype(d) for d in ("float32", "float64", "complex64", "complex128"))


def _bc(ndim: int) -> int | None:
    """``selective_scan``'s B and C: time-invariant ``(d, n)`` is a parameter; shared
    ``(*batch, n, l)`` and grouped ``(*batch, g, n, l)`` take the batch of ``u``."""
    return ndim - 1 if ndim >= 3 else None


def _matrix(ndim: int) -> int | None:
    """The right-hand side of a SciPy-batched Toeplitz product or solve: a batch of ``(n, k)``
    matrices (the wrappers pass a vector ``b`` as one column)."""
    return 2 if ndim >= 2 else None


#: per operation, the array arguments that take leading batch dimensions of their own, with
#: the number of trailing (core) dimensions that are not batch (or a function of the
#: argument's ndim giving it, None for "a parameter"); ``"fold"`` marks an argument whose
#: first axis is the one batch axis (``ssd``). Under ``jax.vmap`` the mapped axes of these
#: arguments become structlin's own batch axes (one call); an argument not listed is a
#: parameter, and a mapped parameter means one call per batch element.
_BATCH: dict[str, dict[str, Any]] = {
    "butterfly_multiply": {"x": 1},
    "butterfly_solve": {"y": 1},
    "monarch_multiply": {"x": 1},
    "pixelfly_multiply": {"x": 1},
    "fftconv": {"u": 2, "pregate": 2, "postgate": 2},
    "circulant_multiply": {"x": 1},
    "toeplitz_multiply": {"x": 1},
    "dct": {"x": 1},
    "dst": {"x": 1},
    "fwht": {"x": 1},
    "kernel_features": {"X": 1},
    "kaleidoscope_multiply": {"x": 1},
    "xd_multiply": {"x": 1},
    "ssm_kernel_diag": {"Lambda": 2, "B": 2, "C": 2, "dt": 1},
    "selective_scan": {"u": 2, "delta": 2, "z": 2, "B": _bc, "C": _bc},
    "ssd": dict.fromkeys(("X", "A", "B", "C", "initial_states"), "fold"),
    "matmul_toeplitz": {"c": 1, "r": 1, "x": _matrix},
    "solve_toeplitz": {"c": 1, "r": 1, "b": _matrix},
    "ldr_multiply": {"G": 2, "H": 2, "x": 1, "nodes": 1, "s": 1, "t": 1, "subdiag_A": 1,
                     "subdiag_B": 1},
    "ldr_solve": {"G": 2, "H": 2, "b": 1, "nodes": 1, "s": 1, "t": 1, "subdiag_A": 1,
                  "subdiag_B": 1},
    "matmul_vandermonde": {"x": 1, "v": 1},
    "solve_vandermonde": {"x": 1, "b": 1},
    "matmul_hankel": {"c": 1, "r": 1, "x": _matrix},
    "solve_hankel": {"c": 1, "r": 1, "b": _matrix},
    "matmul_cauchy": {"x_nodes": 1, "y_nodes": 1, "v": 1},
    "solve_cauchy": {"x_nodes": 1, "y_nodes": 1, "b": 1},
}


def _plan(name: str, names: tuple[str, ...], shapes: tuple) -> tuple[tuple, tuple]:
    """How each array argument (by name and unbatched shape) meets a ``vmap`` axis: None (a
    parameter), ``("lead", pad)`` (the mapped axes go in front, then ``pad`` new axes of size
    1 so that its batch dimensions line up with the other arguments') or ``("fold",)``; and
    the same for the result (and the cotangent)."""
    table = _BATCH.get(name, {})
    cores = []
    for n, shape in zip(names, shapes, strict=True):
        core = table.get(n)
        if callable(core):
            core = core(len(shape))
        if isinstance(core, int) and len(shape) < core:
            core = None
        cores.append(core)
    if "fold" in cores:
        specs = tuple(None if c is None else ("fold",) for c in cores)
        return specs, ("fold",)
    batch = max((len(s) - c for c, s in zip(cores, shapes, strict=True) if c is not None),
                default=0)
    specs = tuple(None if c is None else ("lead", batch - (len(s) - c))
                  for c, s in zip(cores, shapes, strict=True))
    return specs, ("lead", 0)


def _prepare(a: np.ndarray, spec, k: int, batch: tuple) -> np.ndarray:
    """One argument of the single call: the ``k`` mapped axes of ``a`` (sizes 1 or those of
    ``batch``) made structlin batch axes, or dropped for an unmapped parameter."""
    base = a.shape[k:]
    if spec is None:
        return a.reshape(base)
    if spec[0] == "fold":
        return np.broadcast_to(a, batch + base).reshape((-1, *base[1:]))
    pad = (1,) * spec[1]
    return np.broadcast_to(a.reshape(a.shape[:k] + pad + base), batch + pad + base)


#: operations whose arguments all have an axis of independent channels (given from the end;
#: ``"out"``: the result's): a mapped parameter (``fftconv``'s kernel ``k`` and ``D``) is
#: folded into the channels, one call for ``vmap_size * H`` channels
_CHANNELS: dict[str, dict[str, int]] = {
    "fftconv": {"u": -2, "k": -2, "D": -1, "pregate": -2, "postgate": -2, "out": -2},
}


def _channels(name: str, names: tuple[str, ...]) -> tuple[tuple, int] | None:
    """The channel axis of each argument and of the result, or None."""
    table = _CHANNELS.get(name)
    if table is None or any(n not in table for n in names):
        return None
    return tuple(table[n] for n in names), table["out"]


def _to_channels(a: np.ndarray, axis: int, k: int, batch: tuple) -> np.ndarray:
    """The ``k`` mapped axes of ``a`` moved in front of its channel axis and merged with it."""
    a = np.broadcast_to(a, batch + a.shape[k:])
    base = a.shape[k:]
    ax = len(base) + axis
    a = a.transpose((*range(k, k + ax), *range(k), *range(k + ax, k + len(base))))
    return a.reshape((*base[:ax], -1, *base[ax + 1:]))


def _from_channels(r: np.ndarray, axis: int, batch: tuple, base: tuple) -> np.ndarray:
    """The inverse of :func:`_to_channels` for a result of unbatched shape ``base``."""
    k, ax = len(batch), len(base) + axis
    r = np.reshape(r, (*base[:ax], *batch, *base[ax:]))
    return r.transpose((*range(ax, ax + k), *range(ax), *range(ax + k, len(base) + k)))


def _run(fn, arrays: tuple, ndims: tuple, specs: tuple, outs: tuple, whole: bool,
         channels: tuple | None = None) -> tuple:
    """``fn(arrays)`` for arrays with the leading axes of ``vmap_method="expand_dims"``
    (size 1 where an argument is not mapped): one call when only arguments with a spec are
    mapped (and ``whole``), or when the operation has independent channels (``channels``:
    the axis of each argument and of each result); else one call per batch element.
    ``outs``: the results' unbatched shapes and dtypes; returns them with the batch axes in
    front."""
    k = arrays[0].ndim - ndims[0]
    if k == 0:
        return fn(arrays)
    leads = [a.shape[:k] for a in arrays]
    batch = tuple(np.broadcast_shapes(*leads))
    mapped = [any(d != 1 for d in lead) for lead in leads]
    if whole and all(s is not None for s, m in zip(specs, mapped, strict=True) if m):
        res = fn(tuple(_prepare(a, s, k, batch) for a, s in zip(arrays, specs, strict=True)))
        return tuple(np.reshape(r, batch + tuple(shape)) for r, (shape, _) in
                     zip(res, outs, strict=True))
    if channels is not None:
        axes, out_axes = channels
        res = fn(tuple(_to_channels(a, ax, k, batch) for a, ax in zip(arrays, axes,
                                                                     strict=True)))
        return tuple(_from_channels(r, ax, batch, tuple(shape)) for r, ax, (shape, _) in
                     zip(res, out_axes, outs, strict=True))
    res = tuple(np.empty(batch + tuple(shape), dtype) for shape, dtype in outs)
    for idx in np.ndindex(*batch):
        one = tuple(a[tuple(i if d != 1 else 0 for i, d in zip(idx, a.shape[:k], strict=True))]
                    for a in arrays)
        for r, y in zip(res, fn(one), strict=True):
            r[idx] = y
    return res


def _conj(a):
    return np.conj(a) if np.iscomplexobj(a) else a


def _as_jax(op: Op, args: tuple) -> tuple:
    out = []
    for name, a, diff in zip(op.arrays, args, op.differentiable, strict=True):
        if a is None:
            out.append(None)
            continue
        a = jnp.asarray(a)
        if diff and np.dtype(a.dtype) not in _SUPPORTED:
            raise TypeError(
                f"{name} has dtype {a.dtype}; structlin.interop.jax.{op.name} supports "
                "float32, float64, complex64 and complex128 arrays (cast it, e.g. "
                f"{name}.astype(jnp.float32))"
            )
        out.append(a)
    return tuple(out)


@functools.cache
def _function(name: str, static_items: tuple, present: tuple[bool, ...]):
    """The ``custom_vjp`` function of one op, flag set and pattern of omitted arguments.

    It takes the arguments that are not None, in order; ``present`` tells where they go.
    """
    op = OPS[name]
    static = dict(static_items)
    diff = tuple(d for d, p in zip(op.differentiable, present, strict=True) if p)
    names = tuple(n for n, p in zip(op.arrays, present, strict=True) if p)
    chan = _channels(name, names)

    def fill(arrays):
        it = iter(arrays)
        return tuple(next(it) if p else None for p in present)

    def forward(*arrays):
        full = fill(arrays)
        shape = op.out_shape(tuple(None if a is None else a.shape for a in full), static)
        dtype = out_dtype(op, full)
        specs, _ = _plan(name, names, tuple(a.shape for a in arrays))
        ndims = tuple(a.ndim for a in arrays)
        chan_f = None if chan is None else (chan[0], (chan[1],))

        def one(arrs):
            return (np.asarray(op.forward(fill(arrs), static), dtype=dtype),)

        def callback(*arrs):
            return _run(one, tuple(np.asarray(a) for a in arrs), ndims, specs,
                        ((shape, dtype),), True, chan_f)[0]

        return jax.pure_callback(callback, jax.ShapeDtypeStruct(shape, dtype), *arrays,
                                 vmap_method="expand_dims")

    f = jax.custom_vjp(forward)

    def fwd(*primals):
        arrays = tuple(p.value for p in primals)
        # which inputs are differentiated, kept in the residuals' tree structure
        perturbed = tuple(() if p.perturbed else None for p in primals)
        return forward(*arrays), (arrays, perturbed)

    def bwd(res, ct):
        arrays, perturbed = res
        wanted = tuple(d and p is not None for d, p in zip(diff, perturbed, strict=True))
        if not any(wanted) or isinstance(ct, SymbolicZero):
            return (None,) * len(arrays)
        outs = tuple((a.shape, np.dtype(a.dtype)) for a, w in zip(arrays, wanted, strict=True)
                     if w)
        specs, ct_spec = _plan(name, names, tuple(a.shape for a in arrays))
        ndims = (ct.ndim, *(a.ndim for a in arrays))
        # a parameter's gradient is one per batch element: no single call gives it
        whole = all(s is not None for s, w in zip(specs, wanted, strict=True) if w)

        def one(arrs):
            ct, *arrs = arrs
            grads = op.backward(fill(arrs), static, _conj(ct))
            grads = [g for g, p in zip(grads, present, strict=True) if p]
            # (a None gradient is zeros of the argument as this call received it)
            return tuple(
                np.zeros(a.shape, dtype) if g is None else np.asarray(_conj(g), dtype=dtype)
                for g, a, (_, dtype) in zip(
                    (g for g, w in zip(grads, wanted, strict=True) if w),
                    (a for a, w in zip(arrs, wanted, strict=True) if w), outs, strict=True)
            )

        if chan is not None:  # the cotangent has the result's channel axis
            chan_b = ((chan[1], *chan[0]),
                      tuple(ax for ax, w in zip(chan[0], wanted, strict=True) if w))
        else:
            chan_b = None

        def callback(*arrs):
            return _run(one, tuple(np.asarray(a) for a in arrs), ndims, (ct_spec, *specs), outs,
                        whole, chan_b)

        specs_out = tuple(jax.ShapeDtypeStruct(s, d) for s, d in outs)
        grads = iter(jax.pure_callback(callback, specs_out, ct, *arrays,
                                       vmap_method="expand_dims"))
        return tuple(next(grads) if w else None for w in wanted)

    f.defvjp(fwd, bwd, symbolic_zeros=True)
    return f


@functools.cache
def _precisions(name: str) -> tuple[str, ...]:
    """The ``precision`` values of the family that declares the operation ``name``."""
    for fam in families():
        if fam.ops and any(op.name == name for op in fam.ops()):
            return fam.precisions
    raise KeyError(name)


def _check_static(op: Op, args: tuple, static: dict) -> None:
    """Refuse a bad ``precision`` here, as the NumPy function would: inside the callback the
    ``ValueError`` would reach the caller only as a runtime error of XLA."""
    if "precision" in static:
        names = [n for n, a, d in zip(op.arrays, args, op.differentiable, strict=True)
                 if d and a is not None]
        inputs = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        check_precision(static["precision"], _precisions(op.name), out_dtype(op, args), inputs)


def _apply(name: str, args: tuple, **static: Any):
    op = OPS[name]
    args = _as_jax(op, args)
    _check_static(op, args, static)
    present = tuple(a is not None for a in args)
    f = _function(name, tuple(sorted(static.items())), present)
    return f(*(a for a in args if a is not None))


def butterfly_multiply(twiddle, x, *, increasing_stride: bool = True, transpose: bool = False,
                       conjugate: bool = False):
    """Return the butterfly product of :func:`structlin.butterfly_multiply` as a JAX array,
    differentiable through :func:`structlin.butterfly_multiply_vjp`.

    Parameters
    ----------
    twiddle : jax.Array, shape (L, n//2, 2, 2)
    x : jax.Array, shape (..., n)
    increasing_stride, transpose, conjugate : bool
        As for :func:`structlin.butterfly_multiply`.

    Returns
    -------
    jax.Array, shape (..., n)

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from structlin.interop.jax import butterfly_multiply
    >>> h = jnp.tile(jnp.array([[1.0, 1.0], [1.0, -1.0]]), (2, 2, 1, 1))  # Hadamard, n = 4
    >>> butterfly_multiply(h, jnp.array([1.0, 0.0, 0.0, 0.0]))
    Array([1., 1., 1., 1.], dtype=float32)
    """
    return _apply("butterfly_multiply", (twiddle, x), increasing_stride=bool(increasing_stride),
                  transpose=bool(transpose), conjugate=bool(conjugate))


def butterfly_solve(twiddle, y, *, increasing_stride: bool = True, transpose: bool = False,
                    conjugate: bool = False):
    """Return the solution of ``op(B) x = y`` (:func:`structlin.butterfly_solve`) as a JAX
    array, differentiable through :func:`structlin.butterfly_solve_vjp`.

    Parameters
    ----------
    twiddle : jax.Array, shape (L, n//2, 2, 2)
    y : jax.Array, shape (..., n)
    increasing_stride, transpose, conjugate : bool
        As for :func:`structlin.butterfly_solve`.

    Returns
    -------
    jax.Array, shape (..., n)
    """
    return _apply("butterfly_solve", (twiddle, y), increasing_stride=bool(increasing_stride),
                  transpose=bool(transpose), conjugate=bool(conjugate))


def monarch_multiply(w1, w2, x, *, precision: str = "highest"):
    """Return the Monarch product of :func:`structlin.monarch_multiply` as a JAX array,
    differentiable through :func:`structlin.monarch_multiply_vjp`.

    Parameters
    ----------
    w1 : jax.Array, shape (k, q, p)
    w2 : jax.Array, shape (l, s, r)
    x : jax.Array, shape (..., k*p)
    precision : {"highest", "tf32", "bf16"}, default "highest"
        As for :func:`structlin.monarch_multiply`, forward and backward alike. The callbacks
        run the NumPy path, which checks the value and computes in full precision.

    Returns
    -------
    jax.Array, shape (..., l*s)

    Raises
    ------
    ValueError
        If ``precision`` is not one of the three values, or is ``"tf32"``/``"bf16"`` and
        the result dtype is not float32 or complex64 (raised at the call, or when tracing).
    """
    return _apply("monarch_multiply", (w1, w2, x), precision=precision)


def pixelfly_multiply(blocks, mask, U, V, x):
    """Return the Pixelfly product of :func:`structlin.pixelfly_multiply` as a JAX array,
    differentiable through :func:`structlin.pixelfly_multiply_vjp` (not in ``mask``).

    Parameters
    ----------
    blocks : jax.Array, shape (nnz_blocks, block, block)
    mask : array_like of bool, shape (n_out // block, n_in // block)
    U : jax.Array, shape (n_out, rank)
    V : jax.Array, shape (n_in, rank)
    x : jax.Array, shape (..., n_in)

    Returns
    -------
    jax.Array, shape (..., n_out)
    """
    return _apply("pixelfly_multiply", (blocks, mask, U, V, x))


def fftconv(u, k, D=None, *, pregate=None, postgate=None, causal: bool = True,
            precision: str = "highest"):
    """Return the gated long convolution of :func:`structlin.fftconv` as a JAX array,
    differentiable through :func:`structlin.fftconv_vjp`.

    Parameters
    ----------
    u : jax.Array, shape (..., H, L)
    k : jax.Array, shape (H, Lk)
    D : jax.Array, shape (H,), optional
    pregate, postgate : jax.Array, shape (..., H, L), optional
    causal : bool, default True
    precision : {"highest", "fp16", "bf16"}, default "highest"
        As for :func:`structlin.fftconv` (``"fp32"`` is an alias of ``"highest"``), forward
        and backward alike; checked like :func:`monarch_multiply`'s.

    Returns
    -------
    jax.Array, shape (..., H, L)

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from structlin.interop.jax import fftconv
    >>> u = jnp.array([[1.0, 2.0, 3.0, 4.0]])
    >>> k = jnp.array([[1.0, 1.0, 1.0]])
    >>> fftconv(u, k)
    Array([[1., 3., 6., 9.]], dtype=float32)
    >>> jax.grad(lambda k: fftconv(u, k).sum())(k)
    Array([[10.,  6.,  3.]], dtype=float32)
    """
    return _apply("fftconv", (u, k, D, pregate, postgate), causal=bool(causal),
                  precision=precision)


def circulant_multiply(c, x):
    """Return the circulant product of :func:`structlin.circulant_multiply` as a JAX array,
    differentiable through :func:`structlin.circulant_multiply_vjp`.

    Parameters
    ----------
    c : jax.Array, shape (n,)
    x : jax.Array, shape (..., n)

    Returns
    -------
    jax.Array, shape (..., n)
    """
    return _apply("circulant_multiply", (c, x))


def toeplitz_multiply(column, row, x):
    """Return the Toeplitz product of :func:`structlin.toeplitz_multiply` as a JAX array,
    differentiable through :func:`structlin.toeplitz_multiply_vjp`.

    Parameters
    ----------
    column, row : jax.Array, shape (n,)
    x : jax.Array, shape (..., n)

    Returns
    -------
    jax.Array, shape (..., n)
    """
    return _apply("toeplitz_multiply", (column, row, x))


def dct(x, type: int = 2, norm: str | None = None):
    """Return :func:`structlin.dct` of ``x`` as a JAX array, differentiable through
    :func:`structlin.dct_vjp`.

    Parameters
    ----------
    x : jax.Array, shape (..., n)
    type, norm
        As for :func:`structlin.dct`.

    Returns
    -------
    jax.Array, shape (..., n)
    """
    return _apply("dct", (x,), type=type, norm=norm)


def dst(x, type: int = 2, norm: str | None = None):
    """Return :func:`structlin.dst` of ``x`` as a JAX array, differentiable through
    :func:`structlin.dst_vjp`.

    Parameters
    ----------
    x : jax.Array, shape (..., n)
    type, norm
        As for :func:`structlin.dst`.

    Returns
    -------
    jax.Array, shape (..., n)
    """
    return _apply("dst", (x,), type=type, norm=norm)


def fwht(x, *, normalize: bool = False):
    """Return :func:`structlin.fwht` of ``x`` as a JAX array, differentiable through
    :func:`structlin.fwht_vjp`.

    Parameters
    ----------
    x : jax.Array, shape (..., n)
    normalize : bool, default False

    Returns
    -------
    jax.Array, shape (..., n)
    """
    return _apply("fwht", (x,), normalize=bool(normalize))


def kernel_features(X, nodes, weights):
    """Return :func:`structlin.kernel_features` (cosine–sine pairs) as a JAX array,
    differentiable in all three arguments through :func:`structlin.kernel_features_vjp`.

    Parameters
    ----------
    X : jax.Array, shape (..., d)
    nodes : jax.Array, shape (m, d)
    weights : jax.Array, shape (m,)

    Returns
    -------
    jax.Array, shape (..., 2m)
    """
    return _apply("kernel_features", (X, nodes, weights))


def kaleidoscope_multiply(twiddle, x):
    """Return the K-matrix product ``K x`` of :func:`structlin.kaleidoscope_multiply` as a JAX
    array, differentiable through :func:`structlin.kaleidoscope_multiply_vjp`.

    Parameters
    ----------
    twiddle : jax.Array, shape (w, 2, L, n//2, 2, 2)
    x : jax.Array, shape (..., n)

    Returns
    -------
    jax.Array, shape (..., n)
    """
    return _apply("kaleidoscope_multiply", (twiddle, x))


def xd_multiply(tw_K, tw_L, tw_M, w, x):
    """Return the XD-operation ``K diag(L w) M x`` of :func:`structlin.xd_multiply` as a JAX array,
    differentiable through :func:`structlin.xd_multiply_vjp` (every argument).

    Parameters
    ----------
    tw_K, tw_L, tw_M : jax.Array, shape (w_*, 2, L, n//2, 2, 2)
    w : jax.Array, shape (n,)
    x : jax.Array, shape (..., n)

    Returns
    -------
    jax.Array, shape (..., n)
    """
    return _apply("xd_multiply", (tw_K, tw_L, tw_M, w, x))


def ssm_kernel_diag(Lambda, B, C, dt, L: int, *, method: str = "zoh"):
    """Return :func:`structlin.ssm_kernel_diag` (the S4D kernel, real, shape (H, L)) as a JAX
    array, differentiable in ``Lambda``, ``B``, ``C`` and ``dt`` through
    :func:`structlin.ssm_kernel_diag_vjp`.

    Parameters
    ----------
    Lambda, B, C : jax.Array, shape (H, N)
    dt : jax.Array, shape (H,)
    L : int
    method : {"zoh", "bilinear"}, default "zoh"

    Returns
    -------
    jax.Array, shape (H, L)
    """
    return _apply("ssm_kernel_diag", (Lambda, B, C, dt), L=L, method=method)


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                   delta_softplus: bool = False):
    """Return :func:`structlin.selective_scan` (Mamba's selective scan) as a JAX array,
    differentiable in every array argument through :func:`structlin.selective_scan_vjp`.

    Parameters
    ----------
    u, delta : jax.Array, shape (b, d, l)
    A : jax.Array, shape (d, n)
    B, C : jax.Array, shape (d, n), (b, n, l) or (b, g, n, l)
    D, delta_bias : jax.Array, shape (d,), optional
    z : jax.Array, shape (b, d, l), optional
    delta_softplus : bool, default False

    Returns
    -------
    jax.Array, shape (b, d, l)
    """
    return _apply("selective_scan", (u, delta, A, B, C, D, z, delta_bias),
                  delta_softplus=bool(delta_softplus))


def ssd(X, A, B, C, chunk_size: int, initial_states=None):
    """Return :func:`structlin.ssd` (Mamba-2's SSD output) as a JAX array, differentiable in
    every array argument through :func:`structlin.ssd_vjp`.

    Parameters
    ----------
    X : jax.Array, shape (b, l, h, p)
    A : jax.Array, shape (b, l, h)
    B, C : jax.Array, shape (b, l, h, n)
    chunk_size : int
    initial_states : jax.Array, shape (b, h, p, n), optional

    Returns
    -------
    jax.Array, shape (b, l, h, p)
    """
    return _apply("ssd", (X, A, B, C, initial_states), chunk_size=chunk_size)


def _column(b):
    """A vector right-hand side as one column (so that a mapped axis of a vector ``b`` under
    ``jax.vmap`` is a batch axis for structlin: one call), and how to undo it."""
    b = jnp.asarray(b)
    if b.ndim == 1:
        return b[:, None], lambda y: y[..., 0]
    return b, lambda y: y


def matmul_toeplitz(c, r, x):
    """Return the Toeplitz product ``T @ x`` of :func:`structlin.matmul_toeplitz` as a JAX
    array, differentiable in ``c``, ``r`` and ``x`` through
    :func:`structlin.matmul_toeplitz_vjp`.

    ``matmul_toeplitz(c, r, x)`` is ``structlin.matmul_toeplitz((c, r), x)``, and
    ``matmul_toeplitz(c, None, x)`` is ``structlin.matmul_toeplitz(c, x)`` (``r = conj(c)``).

    Parameters
    ----------
    c : jax.Array, shape (..., m)
        The first column of ``T``.
    r : jax.Array, shape (..., n), or None
        The first row (``r[..., 0]`` ignored); None: ``conj(c)``.
    x : jax.Array, shape (n,) or (..., n, k)
        SciPy's batching: a vector, or a batch of ``(n, k)`` matrices whose batch dimensions
        broadcast with those of ``c`` and ``r``.

    Returns
    -------
    jax.Array, shape (..., m) or (..., m, k)

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from structlin.interop.jax import matmul_toeplitz
    >>> c, r = jnp.array([1.0, 2.0, 3.0]), jnp.array([1.0, 4.0, 5.0])
    >>> matmul_toeplitz(c, r, jnp.array([1.0, 0.0, 0.0]))
    Array([1., 2., 3.], dtype=float32)
    """
    x, back = _column(x)
    return back(_apply("matmul_toeplitz", (c, r, x)))


def solve_toeplitz(c, r, b, *, method: str = "auto"):
    """Return the solution of ``T x = b`` (:func:`structlin.solve_toeplitz`) as a JAX array,
    differentiable in ``c``, ``r`` and ``b`` through :func:`structlin.solve_toeplitz_vjp`.

    ``solve_toeplitz(c, r, b)`` is ``structlin.solve_toeplitz((c, r), b)``, and
    ``solve_toeplitz(c, None, b)`` is ``structlin.solve_toeplitz(c, b)`` (``r = conj(c)``).

    Parameters
    ----------
    c : jax.Array, shape (..., n)
    r : jax.Array, shape (..., n), or None
    b : jax.Array, shape (n,) or (..., n, k)
        As for :func:`matmul_toeplitz`.
    method : {"auto", "levinson", "gko", "pcg"}, default "auto"
        As for :func:`structlin.solve_toeplitz`, forward and backward alike (checked at the
        call).

    Returns
    -------
    jax.Array, shape (..., n) or (..., n, k)

    Raises
    ------
    ValueError
        If ``method`` is not one of the four (at the call, or when tracing).
    """
    from structlin.toeplitz import METHODS

    check_choice(method, "method", METHODS)
    b, back = _column(b)
    return back(_apply("solve_toeplitz", (c, r, b), method=method))


def _scalar(value, name: str):
    """A Python number for a static operator parameter (``f``, ``f_A``, ``f_B``)."""
    if value is None:
        return None
    try:
        return np.asarray(value).item()
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError) as exc:
        raise TypeError(f"{name} must be a number known when tracing, got {value!r}") from exc


def _ldr_checked(kind, nodes, s, t, subdiag_A, subdiag_B, f, f_A, f_B) -> tuple:
    """The scalar corners as Python numbers, after structlin's checks of which operator
    parameters ``kind`` takes (at the call, with :func:`structlin.ldr_multiply`'s messages)."""
    from structlin.ldr import _check_kind_params

    f, f_A, f_B = _scalar(f, "f"), _scalar(f_A, "f_A"), _scalar(f_B, "f_B")
    given = {k: v for k, v in (("nodes", nodes), ("s", s), ("t", t), ("subdiag_A", subdiag_A),
                               ("subdiag_B", subdiag_B), ("f", f), ("f_A", f_A), ("f_B", f_B))
             if v is not None}
    _check_kind_params(kind, given)
    return f, f_A, f_B


def ldr_multiply(G, H, x, kind: str, *, nodes=None, s=None, t=None, subdiag_A=None,
                 subdiag_B=None, f=None, f_A=None, f_B=None):
    """Return the product ``M x`` of the low displacement rank matrix of
    :func:`structlin.ldr_multiply` as a JAX array, differentiable in the generators, ``x`` and
    the kind's array operator parameters through :func:`structlin.ldr_multiply_vjp`.

    Parameters
    ----------
    G, H : jax.Array, shape (..., r, n)
    x : jax.Array, shape (..., n)
    kind : {"toeplitz", "hankel", "vandermonde", "cauchy", "subdiagonal"}
    nodes, s, t : jax.Array, shape (..., n), optional
    subdiag_A, subdiag_B : jax.Array, shape (..., n - 1), optional
        The kind's array operator parameters (``nodes`` for "vandermonde", ``s`` and ``t``
        for "cauchy", both subdiagonals for "subdiagonal").
    f, f_A, f_B : float, optional
        The kind's scalar operator parameters (static: Python numbers).

    Returns
    -------
    jax.Array, shape (..., n)
        Batch dimensions of all arrays broadcast.

    Raises
    ------
    ValueError, TypeError
        An unknown ``kind``, a parameter the kind does not take or a missing one (at the
        call, with the messages of :func:`structlin.ldr_multiply`).
    """
    f, f_A, f_B = _ldr_checked(kind, nodes, s, t, subdiag_A, subdiag_B, f, f_A, f_B)
    return _apply("ldr_multiply", (G, H, x, nodes, s, t, subdiag_A, subdiag_B), kind=kind,
                  f=f, f_A=f_A, f_B=f_B)


def matmul_cauchy(x_nodes, y_nodes, v):
    """Return the Cauchy product ``C @ v`` of :func:`structlin.matmul_cauchy` as a JAX array,
    differentiable through :func:`structlin.matmul_cauchy_vjp` (all three arrays).

    Parameters
    ----------
    x_nodes : jax.Array, shape (..., m)
    y_nodes, v : jax.Array, shape (..., n)

    Returns
    -------
    jax.Array, shape (..., m)
    """
    return _apply("matmul_cauchy", (x_nodes, y_nodes, v))


def solve_cauchy(x_nodes, y_nodes, b):
    """Return the solution of the Cauchy system ``C x = b`` of :func:`structlin.solve_cauchy`
    as a JAX array, differentiable through :func:`structlin.solve_cauchy_vjp`.

    Parameters
    ----------
    x_nodes, y_nodes, b : jax.Array, shape (..., n)

    Returns
    -------
    jax.Array, shape (..., n)
    """
    return _apply("solve_cauchy", (x_nodes, y_nodes, b))


def matmul_vandermonde(x, v, m: int, *, transpose: bool = False):
    """Return the Vandermonde product of :func:`structlin.matmul_vandermonde` as a JAX array,
    differentiable through :func:`structlin.matmul_vandermonde_vjp` (``x`` and ``v``).

    Parameters
    ----------
    x : jax.Array, shape (..., n)
    v : jax.Array, shape (..., n), or (..., m) with ``transpose``
    m : int
    transpose : bool, default False

    Returns
    -------
    jax.Array, shape (..., m), or (..., n) with ``transpose``
    """
    return _apply("matmul_vandermonde", (x, v), m=m, transpose=bool(transpose))


def solve_vandermonde(x, b, *, transpose: bool = False):
    """Return the solution of the Vandermonde system of :func:`structlin.solve_vandermonde`
    as a JAX array, differentiable through :func:`structlin.solve_vandermonde_vjp`.

    Parameters
    ----------
    x, b : jax.Array, shape (..., n)
    transpose : bool, default False

    Returns
    -------
    jax.Array, shape (..., n)
    """
    return _apply("solve_vandermonde", (x, b), transpose=bool(transpose))


def ldr_solve(G, H, b, kind: str, *, nodes=None, s=None, t=None, subdiag_A=None,
              subdiag_B=None, f=None, f_A=None, f_B=None):
    """Return the solution of ``M x = b`` of :func:`structlin.ldr_solve` as a JAX array,
    differentiable through :func:`structlin.ldr_solve_vjp`.

    Parameters
    ----------
    G, H, b, kind, nodes, s, t, subdiag_A, subdiag_B, f, f_A, f_B
        As for :func:`ldr_multiply` (``b`` in place of ``x``); the kinds of
        :func:`structlin.ldr_solve` ("toeplitz", "hankel", "vandermonde", "cauchy").

    Returns
    -------
    jax.Array, shape (..., n)
    """
    check_choice(kind, "kind", ("toeplitz", "hankel", "vandermonde", "cauchy"))
    f, f_A, f_B = _ldr_checked(kind, nodes, s, t, subdiag_A, subdiag_B, f, f_A, f_B)
    return _apply("ldr_solve", (G, H, b, nodes, s, t, subdiag_A, subdiag_B), kind=kind,
                  f=f, f_A=f_A, f_B=f_B)


def matmul_hankel(c, r, x):
    """Return the Hankel product of :func:`structlin.matmul_hankel` as a JAX array (SciPy's
    layouts; ``r=None``: the last row ``[c[-1], 0, ..., 0]``), differentiable through
    :func:`structlin.matmul_hankel_vjp`.

    Parameters
    ----------
    c : jax.Array, shape (..., m)
    r : jax.Array, shape (..., n), or None
    x : jax.Array, shape (n,) or (..., n, k)

    Returns
    -------
    jax.Array, shape (..., m) or (..., m, k)
    """
    return _apply("matmul_hankel", (c, r, x))


def solve_hankel(c, r, b, *, method: str = "auto"):
    """Return the solution of the Hankel system of :func:`structlin.solve_hankel` as a JAX
    array, differentiable through :func:`structlin.solve_hankel_vjp`.

    Parameters
    ----------
    c, r : jax.Array, shape (..., n); r may be None
    b : jax.Array, shape (n,) or (..., n, k)
    method : {"auto", "levinson", "gko", "pcg"}, default "auto"

    Returns
    -------
    jax.Array, shape (..., n) or (..., n, k)
    """
    check_choice(method, "method", ("auto", "levinson", "gko", "pcg"))
    return _apply("solve_hankel", (c, r, b), method=method)
