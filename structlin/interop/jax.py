"""JAX wrappers of structlin's differentiable products (``jax`` extra).

Each function takes JAX arrays (or array-likes) in the order and with the keyword arguments of
the structlin function of the same name and returns a JAX array. It is a ``jax.custom_vjp``
function whose forward and backward passes are ``jax.pure_callback`` calls of the NumPy path
(the Numba kernels) and of the function's ``*_vjp``, so it works under ``jax.jit``,
``jax.grad``, ``jax.vjp`` and ``jax.vmap``:

- the callbacks run on the host: arrays on an accelerator are copied to the CPU and back by
  JAX (on CPU the NumPy views of the buffers are zero-copy);
- under ``jax.vmap`` the callback is called once per batch element (``vmap_method=
  "sequential"``); leading batch axes of the vector argument are handled natively by
  structlin, so pass a batch directly rather than mapping over it;
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
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from structlin._registry import families
from structlin._validate import check_precision
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
    "monarch_multiply",
    "pixelfly_multiply",
    "selective_scan",
    "ssd",
    "ssm_kernel_diag",
    "toeplitz_multiply",
    "xd_multiply",
]

_SUPPORTED = tuple(np.dtype(d) for d in ("float32", "float64", "complex64", "complex128"))


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

    def fill(arrays):
        it = iter(arrays)
        return tuple(next(it) if p else None for p in present)

    def host(arrays):
        return fill(tuple(np.asarray(a) for a in arrays))

    def forward(*arrays):
        full = fill(arrays)
        shape = op.out_shape(tuple(None if a is None else a.shape for a in full), static)
        dtype = out_dtype(op, full)

        def callback(*arrs):
            return np.asarray(op.forward(host(arrs), static), dtype=dtype)

        return jax.pure_callback(callback, jax.ShapeDtypeStruct(shape, dtype), *arrays,
                                 vmap_method="sequential")

    f = jax.custom_vjp(forward)

    def fwd(*arrays):
        return forward(*arrays), arrays

    def bwd(arrays, ct):
        wanted = [a for a, d in zip(arrays, diff, strict=True) if d]
        specs = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in wanted)

        def callback(ct, *arrs):
            grads = op.backward(host(arrs), static, _conj(np.asarray(ct)))
            grads = [g for g, p in zip(grads, present, strict=True) if p]
            return tuple(
                np.zeros(s.shape, s.dtype) if g is None else np.asarray(_conj(g), dtype=s.dtype)
                for g, s in zip((g for g, d in zip(grads, diff, strict=True) if d), specs,
                                strict=True)
            )

        grads = iter(jax.pure_callback(callback, specs, ct, *arrays, vmap_method="sequential"))
        return tuple(next(grads) if d else None for d in diff)

    f.defvjp(fwd, bwd)
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
