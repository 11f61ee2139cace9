"""Cauchy matrices ``C[i, j] = 1 / (x_i - y_j)`` and their fast products.

A Cauchy-like product ``y_i = sum_j v_j / (x_i - y_j)`` is the kernel under the S4
convolution kernel (:func:`structlin.ssm_kernel_dplr`: the resolvent of a diagonal-plus-low-rank
matrix at the roots of unity), rational interpolation and the displacement-rank structure of
Toeplitz-like matrices. :func:`matmul_cauchy` computes it in one fused pass without ever
forming the ``m x n`` matrix; :func:`matmul_cauchy_vjp` gives the gradients of all three
arguments with the same kernels; :func:`cauchy_to_dense` is the reference.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from structlin._backend import as_kernel_array, grad_like, kernels, sum_to_shape
from structlin._validate import ABSENT, check_int, check_min_ndim, check_shape, prepare

__all__ = ["cauchy_to_dense", "matmul_cauchy", "matmul_cauchy_vjp"]

#: most nodes on either side (``m`` or ``n``); the kernels index with 32-bit integers
MAX_NODES = (1 << 31) - 1


class _Plan:
    """How the broadcast batch of a Cauchy product maps onto the kernel's ``(B, K)`` rows:
    ``lead`` (``B`` rows, where the nodes may differ) then ``tail`` (``K`` vectors sharing
    the nodes of their row)."""

    def __init__(self, xp: Any, dt: Any, x: Any, y: Any, v: Any):
        m, n = x.shape[-1], y.shape[-1]
        try:
            batch = tuple(np.broadcast_shapes(x.shape[:-1], y.shape[:-1], v.shape[:-1]))
        except ValueError:
            raise ValueError(
                "the leading (batch) dimensions of x_nodes, y_nodes and v must broadcast, got "
                f"shapes {tuple(x.shape)}, {tuple(y.shape)} and {tuple(v.shape)}"
            ) from None
        nd = len(batch)
        xs = (1,) * (nd - x.ndim + 1) + tuple(x.shape[:-1])
        ys = (1,) * (nd - y.ndim + 1) + tuple(y.shape[:-1])
        t = 0
        while t < nd and xs[nd - 1 - t] == 1 and ys[nd - 1 - t] == 1:
            t += 1
        lead, tail = batch[:nd - t], batch[nd - t:]
        self.batch, self.m, self.n = batch, m, n
        self.B, self.K = math.prod(lead), math.prod(tail)
        self.x = self._nodes(xp, dt, x, xs[:nd - t], lead, m)
        self.y = self._nodes(xp, dt, y, ys[:nd - t], lead, n)
        self.v = self.rows(xp, dt, v, n)

    def _nodes(self, xp: Any, dt: Any, a: Any, shape: tuple, lead: tuple, length: int) -> Any:
        a = a.reshape((*shape, length))
        if math.prod(shape) == 1:  # shared by every row: the kernel reads row 0
            return as_kernel_array(xp, a.reshape(1, length), dt)
        return as_kernel_array(xp, xp.broadcast_to(a, (*lead, length)).reshape(self.B, length),
                               dt)

    def rows(self, xp: Any, dt: Any, a: Any, length: int) -> Any:
        """``a`` broadcast to the batch and viewed as the kernel's ``(B, K, length)``."""
        full = xp.broadcast_to(a, (*self.batch, length))
        return as_kernel_array(xp, full, dt).reshape(self.B, self.K, length)


def _prepare(x_nodes: Any, y_nodes: Any, v: Any, grad: Any = ABSENT) -> tuple:
    p = prepare(x_nodes=x_nodes, y_nodes=y_nodes, v=v, grad=grad,
                dtype_of=("x_nodes", "y_nodes", "v"))
    check_min_ndim(p.x_nodes, 1, "x_nodes", "(..., m)")
    check_min_ndim(p.y_nodes, 1, "y_nodes", "(..., n)")
    check_min_ndim(p.v, 1, "v", "(..., n)")
    check_int(p.x_nodes.shape[-1], "the number of x_nodes (last axis)", maximum=MAX_NODES)
    n = check_int(p.y_nodes.shape[-1], "the number of y_nodes (last axis)", maximum=MAX_NODES)
    if p.v.shape[-1] != n:
        raise ValueError(
            f"v must have length n = {n} along its last axis (one weight per entry of "
            f"y_nodes, shape {tuple(p.y_nodes.shape)}), got shape {tuple(p.v.shape)}"
        )
    return p, _Plan(p.xp, p.dtype, p.x_nodes, p.y_nodes, p.v)


def _check_coincide(xp: Any, plan: _Plan, *outs: Any) -> None:
    """Raise ValueError when a row has a non-finite result although its nodes and weights are
    finite: some ``x_i - y_j`` is zero (or so small that its reciprocal overflows)."""
    if all(bool(xp.isfinite(o).all()) for o in outs):
        return
    bad = xp.zeros((plan.B, plan.K), dtype=bool)
    for o in outs:
        bad |= ~xp.isfinite(o).all(axis=-1)
    finite = xp.isfinite(plan.v).all(axis=-1)
    finite &= xp.isfinite(plan.x).all(axis=-1)[:, None] & xp.isfinite(plan.y).all(axis=-1)[:, None]
    rows = xp.argwhere(bad & finite)
    if rows.shape[0] == 0:
        return  # NaN or inf in the inputs of those rows: they propagate, other rows unaffected
    b = int(rows[0, 0])
    xr = plan.x[b if plan.x.shape[0] > 1 else 0]
    yr = plan.y[b if plan.y.shape[0] > 1 else 0]
    same = xp.argwhere(xr[:, None] == yr[None, :]) if xr.size * yr.size <= 1 << 24 else None
    where = f" (row {b} of the flattened batch)" if plan.B > 1 else ""
    if same is not None and same.shape[0]:
        i, j = int(same[0, 0]), int(same[0, 1])
        raise ValueError(
            f"x_nodes and y_nodes must not share a value: x_nodes[..., {i}] == "
            f"y_nodes[..., {j}] == {complex(xr[i]) if xr.dtype.kind == 'c' else float(xr[i])}"
            f"{where}, so 1 / (x_i - y_j) is infinite"
        )
    raise ValueError(
        "x_nodes and y_nodes are too close for the dtype "
        f"{np.dtype(plan.v.dtype)}{where}: a term v_j / (x_i - y_j) overflowed (for complex "
        "data |x_i - y_j|**2 must stay above the smallest normal number)"
    )


def matmul_cauchy(x_nodes: Any, y_nodes: Any, v: Any) -> Any:
    """Return the Cauchy product ``sum_j v[..., j] / (x_nodes[..., i] - y_nodes[..., j])``.

    Parameters
    ----------
    x_nodes : array_like, shape (..., m)
        Nodes of the rows, ``x_i``.
    y_nodes : array_like, shape (..., n)
        Nodes of the columns (poles), ``y_j``; no ``y_j`` may equal an ``x_i`` of its row.
    v : array_like, shape (..., n)
        The vector multiplied, one weight per pole.

    Returns
    -------
    ndarray, shape (..., m)
        ``out[..., i] = sum_j v[..., j] / (x_nodes[..., i] - y_nodes[..., j])``. The leading
        dimensions of the three arguments broadcast against each other (NumPy's rules).
        Real or complex, of NumPy's promoted dtype (integers to float64; float32 and
        complex64 stay single precision); array type of the inputs (NumPy or CuPy).

    Raises
    ------
    ValueError
        ``v`` not of the length of ``y_nodes``, batch shapes that do not broadcast, 0-d
        arguments, or ``x_i == y_j`` in a row whose data are finite (the message names both
        nodes); nodes so close that a term overflows (for complex data ``|x_i - y_j|^2``
        below the smallest normal number, about ``1e-38`` in single precision).
    TypeError
        Non-numeric arrays, NumPy mixed with CuPy.

    See Also
    --------
    matmul_cauchy_vjp : the gradients of all three arguments.
    cauchy_to_dense : the matrix ``1 / (x_i - y_j)``.
    ssm_kernel_dplr : the S4 kernel, four Cauchy products at the roots of unity.

    Notes
    -----
    One fused kernel: the rows and blocks of 256 consecutive ``i`` are processed in parallel;
    for each pole the block's reciprocals ``1 / (x_i - y_j)`` are formed once (complex data
    split into real and imaginary parts, ``(a - ib) / (a^2 + b^2)``: one division per term)
    and multiplied into the accumulators, in loops along ``i`` that vectorize. Cost ``m n``
    reciprocals and multiply-adds per row; memory ``O(m + n)`` per row (the ``m x n`` matrix
    never exists). Rows that share their nodes (leading dimensions along which ``x_nodes``
    and ``y_nodes`` are broadcast) share each reciprocal among up to 16 of them.
    Accumulation is in the data's precision. A NaN or infinity in one row's data stays in
    that row. The fast multipole methods of Gerasoulis (1988) and Rokhlin (1985) reach
    ``O((m + n) log^2)`` with an approximation; this product is exact. On CuPy arrays a CUDA
    kernel computes the same, one thread per ``(row, i)`` with the poles staged in shared
    memory (unverified on a GPU so far: compiled by NVRTC and run in a host emulator only);
    the coincidence check reads one flag back (a host-device synchronisation).

    References
    ----------
    .. [1] A. Gu, K. Goel, C. Ré, "Efficiently Modeling Long Sequences with Structured State
       Spaces", ICLR 2022, arXiv:2111.00396 (Cauchy kernels of the S4 generating function).
    .. [2] V. Pan, "Structured Matrices and Polynomials", Birkhäuser 2001 (Cauchy-like
       matrices and their displacement structure).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import cauchy_to_dense, matmul_cauchy
    >>> x = np.array([0.5, 1.5, 2.5])
    >>> y = np.array([0.0, 1.0])
    >>> v = np.array([1.0, -2.0])
    >>> matmul_cauchy(x, y, v)
    array([ 6.        , -3.33333333, -0.93333333])
    >>> bool(np.allclose(matmul_cauchy(x, y, v), cauchy_to_dense(x, y) @ v))
    True
    """
    p, plan = _prepare(x_nodes, y_nodes, v)
    xp = p.xp
    out = xp.zeros((plan.B, plan.K, plan.m), dtype=p.dtype)
    if out.size:
        kernels(xp, "cauchy").cauchy(plan.x, plan.y, plan.v, out)
        _check_coincide(xp, plan, out)
    return out.reshape((*plan.batch, plan.m))


def matmul_cauchy_vjp(x_nodes: Any, y_nodes: Any, v: Any, grad: Any) -> tuple:
    """Return the gradients of :func:`matmul_cauchy` for the output gradient ``grad``.

    Parameters
    ----------
    x_nodes, y_nodes, v : array_like
        As for :func:`matmul_cauchy`.
    grad : array_like, shape (..., m)
        Gradient of a real loss with respect to ``matmul_cauchy(x_nodes, y_nodes, v)`` (the
        broadcast batch shape).

    Returns
    -------
    grad_x_nodes : ndarray, shape of ``x_nodes``
    grad_y_nodes : ndarray, shape of ``y_nodes``
    grad_v : ndarray, shape of ``v``
        Each in its argument's dtype (promoted to floating point; the real part for a real
        argument), summed over the dimensions along which the argument was broadcast.
        Complex gradients follow PyTorch's convention ``dl/dRe z + 1j dl/dIm z``.

    Raises
    ------
    ValueError, TypeError
        As for :func:`matmul_cauchy`, and ``grad`` of the wrong shape.

    See Also
    --------
    matmul_cauchy : the product.

    Notes
    -----
    With ``r_ij = 1 / (x_i - y_j)`` and ``g = grad`` (the product is holomorphic in every
    argument, so each gradient is the conjugate derivative times ``g``)::

        grad_v_j = -conj(sum_i conj(g_i) / (y_j - x_i))
        grad_y_j =  conj(v_j) conj(sum_i conj(g_i) / (y_j - x_i)**2)
        grad_x_i = -conj(sum_j v_j / (x_i - y_j)**2) g_i

    Two calls of one fused kernel returning a Cauchy product and its square together: one
    with the nodes exchanged (weights ``conj(g)``) for ``grad_v`` and ``grad_y``, one as in
    the forward product for ``grad_x``. Cost about three forward products, memory ``O(m + n)``
    per row.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import matmul_cauchy_vjp
    >>> gx, gy, gv = matmul_cauchy_vjp([2.0], [0.0], [3.0], [1.0])  # d/dx 3 / (x - y) ...
    >>> float(gx[0]), float(gy[0]), float(gv[0])                    # ... at x = 2, y = 0
    (-0.75, 0.75, 0.5)
    """
    p, plan = _prepare(x_nodes, y_nodes, v, grad)
    xp = p.xp
    check_shape(p.grad, (*plan.batch, plan.m), "grad", "the shape of matmul_cauchy's output")
    g = p.grad.real if p.dtype.kind != "c" and p.grad.dtype.kind == "c" else p.grad
    g3 = plan.rows(xp, p.dtype, g, plan.m)
    B, K, m, n = plan.B, plan.K, plan.m, plan.n
    ker = kernels(xp, "cauchy")
    s1 = xp.zeros((B, K, m), dtype=p.dtype)
    s2 = xp.zeros((B, K, m), dtype=p.dtype)
    t1 = xp.zeros((B, K, n), dtype=p.dtype)
    t2 = xp.zeros((B, K, n), dtype=p.dtype)
    if s1.size and n:
        ker.cauchy_square(plan.x, plan.y, plan.v, s1, s2)
        _check_coincide(xp, plan, s1, s2)
        ker.cauchy_square(plan.y, plan.x, xp.ascontiguousarray(xp.conj(g3)), t1, t2)
    gx = -xp.conj(s2) * g3
    gy = xp.conj(plan.v) * xp.conj(t2)
    gv = -xp.conj(t1)
    batch = plan.batch
    return (
        grad_like(xp, sum_to_shape(gx.reshape((*batch, m)), p.x_nodes.shape), p.x_nodes),
        grad_like(xp, sum_to_shape(gy.reshape((*batch, n)), p.y_nodes.shape), p.y_nodes),
        grad_like(xp, sum_to_shape(gv.reshape((*batch, n)), p.v.shape), p.v),
    )


def cauchy_to_dense(x_nodes: Any, y_nodes: Any) -> Any:
    """Return the Cauchy matrix ``1 / (x_nodes[..., i] - y_nodes[..., j])``.

    Parameters
    ----------
    x_nodes : array_like, shape (..., m)
    y_nodes : array_like, shape (..., n)
        Leading dimensions broadcast.

    Returns
    -------
    ndarray, shape (..., m, n)
        The reference for :func:`matmul_cauchy` (``matmul_cauchy(x, y, v) ==
        cauchy_to_dense(x, y) @ v``), in the promoted dtype of the nodes.

    Raises
    ------
    ValueError
        ``x_i == y_j`` anywhere (the entry would be infinite).
    TypeError
        Non-numeric arrays, NumPy mixed with CuPy.

    See Also
    --------
    matmul_cauchy : the product without the matrix.

    Examples
    --------
    >>> from structlin import cauchy_to_dense
    >>> cauchy_to_dense([1.0, 2.0], [0.0, 3.0])
    array([[ 1. , -0.5],
           [ 0.5, -1. ]])
    """
    p = prepare(x_nodes=x_nodes, y_nodes=y_nodes)
    check_min_ndim(p.x_nodes, 1, "x_nodes", "(..., m)")
    check_min_ndim(p.y_nodes, 1, "y_nodes", "(..., n)")
    xp = p.xp
    x = xp.asarray(p.x_nodes, dtype=p.dtype)[..., :, None]
    y = xp.asarray(p.y_nodes, dtype=p.dtype)[..., None, :]
    d = x - y
    if bool((d == 0).any()):
        raise ValueError("x_nodes and y_nodes must not share a value (1 / (x_i - y_j) would "
                         "be infinite)")
    return 1 / d
