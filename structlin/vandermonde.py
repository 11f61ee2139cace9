"""Products with Vandermonde matrices ``V[i, j] = x_j**i``, fused (the ``m x n`` matrix is never
formed), solves of square Vandermonde systems by Björck-Pereyra, and their vector-Jacobian
products.

The Vandermonde product is the kernel under the diagonal state space models (S4D's convolution
kernel ``K[l] = sum_n W_n A_n**l`` is ``V @ W``, see :func:`structlin.ssm_kernel_diag`) and one of
the displacement-structured products of the Toeplitz/LDR family, which will re-export it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from structlin._backend import flatten_batch, grad_like, kernels, restore_batch, sum_to_shape
from structlin._validate import (
    check_bool,
    check_finite,
    check_int,
    check_min_ndim,
    check_shape,
    prepare,
)

__all__ = [
    "matmul_vandermonde",
    "matmul_vandermonde_vjp",
    "solve_vandermonde",
    "solve_vandermonde_vjp",
    "vandermonde_to_dense",
]

#: most rows (``m``) a Vandermonde matrix may have
MAX_ROWS = 1 << 34


def _broadcast_batch(x: Any, other: Any, other_name: str) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(tuple(x.shape[:-1]), tuple(other.shape[:-1])))
    except ValueError:
        raise ValueError(
            f"the batch dimensions of x and {other_name} do not broadcast: x has shape "
            f"{tuple(x.shape)} and {other_name} has shape {tuple(other.shape)}"
        ) from None


def _rows(xp: Any, a: Any, batch: tuple[int, ...], dtype: Any) -> Any:
    """``a`` broadcast to ``(*batch, len)``, as a C-contiguous ``(prod(batch), len)`` array."""
    full = xp.broadcast_to(a.astype(dtype, copy=False), (*batch, a.shape[-1]))
    return xp.ascontiguousarray(flatten_batch(full)[0] if batch else full.reshape(1, -1))


def _prepare(x: Any, v: Any, m: Any, transpose: Any, grad: Any = None):
    p = prepare(x=x, v=v, grad=grad, dtype_of=("x", "v"), optional=("grad",))
    transpose = check_bool(transpose, "transpose")
    m = check_int(m, "m", minimum=0, maximum=MAX_ROWS)
    check_min_ndim(p.x, 1, "x", "(..., n)")
    vname = "v"
    check_min_ndim(p.v, 1, vname, "(..., m)" if transpose else "(..., n)")
    n = int(p.x.shape[-1])
    want = m if transpose else n
    if int(p.v.shape[-1]) != want:
        why = f"m = {m}, transpose=True: the w of V^T w" if transpose else f"x's n = {n}"
        raise ValueError(
            f"{vname} must have length {want} along its last axis ({why}), got shape "
            f"{tuple(p.v.shape)} (x has shape {tuple(p.x.shape)})"
        )
    batch = _broadcast_batch(p.x, p.v, vname)
    return p, m, n, transpose, batch


def matmul_vandermonde(x: Any, v: Any, m: int, *, transpose: bool = False) -> Any:
    """Return the product ``V @ v`` with the Vandermonde matrix ``V[i, j] = x_j**i`` (``V^T @ w``
    with ``transpose=True``), without forming ``V``.

    Parameters
    ----------
    x : array_like, shape (..., n)
        The nodes (real or complex).
    v : array_like, shape (..., n), or (..., m) with ``transpose=True``
        The vector: ``v`` (length ``n``) for ``V @ v``, ``w`` (length ``m``) for ``V^T @ w``.
        The batch dimensions of ``x`` and ``v`` broadcast against each other.
    m : int
        The number of rows of ``V`` (powers ``0 .. m - 1``).
    transpose : bool, default False
        Multiply by ``V^T`` (not conjugated) instead of ``V``.

    Returns
    -------
    ndarray, shape (..., m), or (..., n) with ``transpose=True``
        ``y[..., i] = sum_j x_j**i v_j`` (``y[..., j] = sum_i x_j**i w_i``), in the promoted
        dtype of ``x`` and ``v`` (float32 and complex64 kept), batch dimensions broadcast.

    Raises
    ------
    ValueError
        ``v`` of the wrong length (both shapes named), batch dimensions that do not broadcast,
        ``m < 0``.
    TypeError
        A non-numeric input (named), ``m`` not an integer, ``transpose`` not a bool, NumPy and
        CuPy arrays mixed.

    See Also
    --------
    matmul_vandermonde_vjp : its gradients.
    vandermonde_to_dense : the matrix (the reference).
    structlin.ssm_kernel_diag : S4D's convolution kernel, the same product with ``x = exp(dt
        Lambda)``.

    Notes
    -----
    One fused pass, ``O(m n)`` multiply-adds and ``O(n + m)`` memory per row. The powers are
    formed by multiplication in the data's precision, in blocks of 16 exponents, each started
    from an anchor ``x**i0`` held in float64: exact (``exp(i0 log x)`` in float64) at the start
    of each task and every 4096 exponents, carried between by float64 multiplication with
    ``x**16`` (squared in float64). Every power ``x**i`` therefore carries at most 16 roundings
    of the working precision (about ``(sqrt(5) + 1) 16 u`` relative, ``u`` the unit roundoff),
    plus the anchor's ``O((256 + i |log x|) u64)``, for any ``i`` -- where plain repeated
    products carry ``i`` roundings and ``exp`` of the products ``i log x`` in the working
    precision an error ``i |log x| u``. In float32 the error thus stays at a few dozen ulps at
    any length; in float64 (anchors in the same precision) it is the ``O(i u)`` of any float64
    evaluation. The sums over nodes (exponents, with ``transpose``) are vectorized and
    accumulated in the data's precision. On the CPU the rows (and, for few rows, chunks of
    exponents) run in parallel; the CUDA kernels give each thread 16 consecutive exponents
    (a node and a chunk of exponents with ``transpose``, partial sums added atomically), with
    the same exact anchors (unverified on a GPU). The structured products of
    Vandermonde matrices and their use in the S4/S4D kernels: Gu, Goel and Ré,
    arXiv:2111.00396; Gu, Gupta, Goel and Ré, arXiv:2206.11893.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.vandermonde import matmul_vandermonde, vandermonde_to_dense
    >>> x = np.array([0.5, -1.0, 2.0])
    >>> matmul_vandermonde(x, np.array([1.0, 1.0, 1.0]), 4)
    array([3.   , 1.5  , 5.25 , 7.125])
    >>> w = np.array([1.0, 0.0, 1.0, 0.0])
    >>> bool(np.allclose(matmul_vandermonde(x, w, 4, transpose=True),
    ...                  vandermonde_to_dense(x, 4).T @ w))
    True
    """
    p, m, n, transpose, batch = _prepare(x, v, m, transpose)
    xp, dt = p.xp, p.dtype
    x2 = _rows(xp, p.x, batch, dt)
    v2 = _rows(xp, p.v, batch, dt)
    k = kernels(xp, "vandermonde")
    if transpose:
        out = xp.empty((x2.shape[0], n), dtype=dt)
        k.vandermonde_t(x2, v2, out)
    else:
        out = xp.empty((x2.shape[0], m), dtype=dt)
        k.vandermonde(x2, v2, out)
    return restore_batch(out, batch) if batch else out[0]


def _shifted_derivative_weights(xp: Any, w: Any) -> Any:
    """``w'[..., k] = (k + 1) w[..., k + 1]`` (length ``m - 1``): ``sum_i i x**(i-1) w_i =
    sum_k x**k w'_k``, a Vandermonde product again."""
    m = w.shape[-1]
    rdt = np.empty(0, w.dtype).real.dtype
    return xp.ascontiguousarray(w[..., 1:] * xp.arange(1, m, dtype=rdt))


def matmul_vandermonde_vjp(
    x: Any, v: Any, m: int, grad: Any, *, transpose: bool = False
) -> tuple[Any, Any]:
    """Return the gradients ``(gx, gv)`` of a real loss through :func:`matmul_vandermonde`,
    given its gradient ``grad`` with respect to the product.

    Parameters
    ----------
    x, v, m, transpose
        As for :func:`matmul_vandermonde`.
    grad : array_like, shape of the product
        The gradient with respect to ``matmul_vandermonde(x, v, m, transpose=transpose)``.

    Returns
    -------
    gx : ndarray, shape of ``x``
    gv : ndarray, shape of ``v``
        Each in its argument's dtype (float32 and complex64 kept; the real part for a real
        argument), summed over the dimensions it was broadcast along. Complex gradients follow
        PyTorch's convention ``dl/dRe z + 1j dl/dIm z``.

    Raises
    ------
    ValueError, TypeError
        As :func:`matmul_vandermonde`, and ``grad`` of the wrong shape (both shapes named).

    See Also
    --------
    matmul_vandermonde

    Notes
    -----
    Every term is a Vandermonde product on the same kernels (nodes ``conj(x)``):
    for ``y = V v``, ``gv = V(conj x)^T grad`` and ``gx = conj(v) V'(conj x)^T grad'`` with
    ``grad'_k = (k + 1) grad_{k+1}`` (``d/dx x**i = i x**(i-1)``, ``m - 1`` rows); for
    ``y = V^T w``, ``gw = V(conj x) grad`` and ``gx = grad conj(V'(x)^T w')``. Cost: two fused
    products, ``O(m n)``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.vandermonde import matmul_vandermonde_vjp
    >>> gx, gv = matmul_vandermonde_vjp(np.array([2.0]), np.array([3.0]), 3, np.ones(3))
    >>> gx, gv   # y = 3 (1, x, x**2): dy/dx . 1 = 3 (0 + 1 + 2x), dy/dv . 1 = 1 + x + x**2
    (array([15.]), array([7.]))
    """
    p, m, n, transpose, batch = _prepare(x, v, m, transpose, grad=grad)
    xp, dt = p.xp, p.dtype
    if p.grad is None:
        raise TypeError("grad must be an array of numbers (an ndarray, a list or a scalar), "
                        "got None")
    check_shape(p.grad, (*batch, n if transpose else m), "grad", "the product's shape")
    k = kernels(xp, "vandermonde")
    x2 = _rows(xp, p.x, batch, dt)
    v2 = _rows(xp, p.v, batch, dt)
    g2 = _rows(xp, p.grad, batch, dt)
    nb = x2.shape[0]
    xc = xp.conj(x2) if np.dtype(dt).kind == "c" else x2
    if not transpose:
        # gv = V(conj x)^T g and the derivative sum, in one call on 2 nb rows
        gd = _shifted_derivative_weights(xp, g2)
        if m >= 2:
            ww = xp.concatenate([g2, xp.concatenate([gd, xp.zeros((nb, 1), dt)], axis=1)])
            both = xp.empty((2 * nb, n), dtype=dt)
            k.vandermonde_t(xp.ascontiguousarray(xp.concatenate([xc, xc])), ww, both)
            gv2, s2 = both[:nb], both[nb:]
        else:
            gv2 = xp.empty((nb, n), dtype=dt)
            k.vandermonde_t(xp.ascontiguousarray(xc), g2, gv2)
            s2 = xp.zeros((nb, n), dtype=dt)
        gx2 = xp.conj(v2) * s2 if np.dtype(dt).kind == "c" else v2 * s2
    else:
        gv2 = xp.empty((nb, m), dtype=dt)
        k.vandermonde(xp.ascontiguousarray(xc), g2, gv2)
        s2 = xp.zeros((nb, n), dtype=dt)
        if m >= 2:
            k.vandermonde_t(x2, _shifted_derivative_weights(xp, v2), s2)
        gx2 = g2 * (xp.conj(s2) if np.dtype(dt).kind == "c" else s2)
    gx = sum_to_shape(gx2.reshape((*batch, n)), tuple(p.x.shape))
    gv = sum_to_shape(gv2.reshape((*batch, gv2.shape[-1])), tuple(p.v.shape))
    return grad_like(xp, gx, p.x), grad_like(xp, gv, p.v)


def vandermonde_to_dense(x: Any, m: int) -> Any:
    """Return the Vandermonde matrix ``V[..., i, j] = x[..., j]**i`` of shape ``(..., m, n)``.

    Parameters
    ----------
    x : array_like, shape (..., n)
        The nodes.
    m : int
        The number of rows (powers ``0 .. m - 1``; ``0**0 = 1``).

    Returns
    -------
    ndarray, shape (..., m, n)
        In ``x``'s dtype (float32 and complex64 kept; integers as float64).

    Raises
    ------
    ValueError
        ``m < 0`` or too large, ``x`` 0-d.
    TypeError
        ``x`` not numeric, ``m`` not an integer.

    See Also
    --------
    matmul_vandermonde : the product without the matrix.

    Notes
    -----
    The reference of :func:`matmul_vandermonde`, straight from the definition (``numpy.power``
    of each node, ``O(m n)`` memory).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.vandermonde import vandermonde_to_dense
    >>> vandermonde_to_dense(np.array([2.0, -1.0]), 3)
    array([[ 1.,  1.],
           [ 2., -1.],
           [ 4.,  1.]])
    """
    p = prepare(x=x)
    check_min_ndim(p.x, 1, "x", "(..., n)")
    m = check_int(m, "m", minimum=0, maximum=1 << 24)
    xp, dt = p.xp, p.dtype
    rdt = np.empty(0, dt).real.dtype
    base = p.x.astype(dt)[..., None, :]
    return xp.power(base, xp.arange(m, dtype=rdt)[:, None]).astype(dt, copy=False)


# ------------------------------------------------------------------------------ solves


def _prepare_solve(x: Any, b: Any, transpose: Any, grad: Any = None):
    p = prepare(x=x, b=b, grad=grad, dtype_of=("x", "b"), optional=("grad",))
    transpose = check_bool(transpose, "transpose")
    check_min_ndim(p.x, 1, "x", "(..., n)")
    check_min_ndim(p.b, 1, "b", "(..., n)")
    n = int(p.x.shape[-1])
    if int(p.b.shape[-1]) != n:
        raise ValueError(
            f"b must have length {n} along its last axis (x's n = {n}: V is n x n), got shape "
            f"{tuple(p.b.shape)} (x has shape {tuple(p.x.shape)})"
        )
    batch = _broadcast_batch(p.x, p.b, "b")
    check_finite(p.x, "x")
    return p, n, transpose, batch


def _raise_repeated(xp: Any, x: Any, info: Any, batch: tuple[int, ...]) -> None:
    """ValueError naming the first row with two equal nodes and the pair (found by sorting that
    row: ``O(n log n)``)."""
    flags = info if xp is np else info.get()
    if not flags.any():
        return
    row = int(np.flatnonzero(flags)[0])
    n = x.shape[-1]
    xr = xp.broadcast_to(x, (*batch, n)).reshape(len(flags), n)[row]
    xr = xr if xp is np else xr.get()
    order = np.argsort(xr, kind="stable")
    same = np.flatnonzero(xr[order][1:] == xr[order][:-1])
    i, j = (sorted((int(order[same[0]]), int(order[same[0] + 1]))) if same.size else (0, 0))
    index = tuple(int(q) for q in np.unravel_index(row, batch))
    where = f" (batch index {index})" if batch else ""
    raise ValueError(
        f"x must have distinct nodes: x[..., {i}] == x[..., {j}] == {xr[i].item()!r}{where}; a "
        f"Vandermonde matrix with a repeated node is singular"
    )


def _ordered_nodes(xp: Any, k: Any, x: Any, batch: tuple[int, ...], dt: Any):
    """The nodes as ``(B, n)`` rows in the order the solves take them, and that order
    (computed once per row of ``x`` itself, then broadcast over the batch)."""
    n = x.shape[-1]
    own = xp.ascontiguousarray(x.astype(dt, copy=False).reshape(
        int(np.prod(x.shape[:-1], dtype=np.int64)), n))
    perm = xp.empty(own.shape, dtype=np.int64)
    k.vandermonde_order(own, perm, xp.empty(own.shape, dtype=np.float64))
    ordered = xp.take_along_axis(own, perm, axis=1).reshape(x.shape)
    return _rows(xp, ordered, batch, dt), _rows(xp, perm.reshape(x.shape), batch, np.int64)


def _bp(xp: Any, k: Any, xs: Any, perm: Any, b2: Any, transpose: bool) -> tuple[Any, Any]:
    """``V^-1 b`` (``V^-T b``) on ordered nodes ``xs`` (order ``perm``), in the caller's order;
    and the repeated-node flags."""
    rows = xp.arange(b2.shape[0])[:, None]
    out = xp.empty_like(b2)
    info = xp.empty(b2.shape[0], dtype=np.int32)
    if transpose:  # the equations permuted, the coefficients not
        k.solve_vandermonde_t(xs, xp.ascontiguousarray(b2[rows, perm]), out, info)
        return out, info
    k.solve_vandermonde(xs, b2, out, info)  # the unknowns permuted
    a = xp.empty_like(out)
    a[rows, perm] = out
    return a, info


def solve_vandermonde(x: Any, b: Any, *, transpose: bool = False) -> Any:
    """Return the solution ``a`` of ``V a = b`` with the square Vandermonde matrix ``V[i, j] =
    x_j**i`` (of ``V^T a = b``, polynomial interpolation, with ``transpose=True``), by
    Björck-Pereyra's ``O(n^2)`` algorithms.

    The matrix is the one of :func:`matmul_vandermonde` with ``m = n``, so that
    ``solve_vandermonde(x, matmul_vandermonde(x, a, n, transpose=t), transpose=t)`` is ``a``.

    Parameters
    ----------
    x : array_like, shape (..., n)
        The nodes (real or complex), distinct and finite.
    b : array_like, shape (..., n)
        The right-hand side. The batch dimensions of ``x`` and ``b`` broadcast against each
        other: one set of nodes for a batch of right-hand sides is ``x`` of shape ``(n,)`` (or
        ``(..., 1, n)``) with ``b`` of shape ``(..., k, n)``.
    transpose : bool, default False
        Solve ``V^T a = b`` (not conjugated): ``sum_j a_j x_i**j = b_i``, i.e. the
        coefficients ``a`` of the polynomial of degree ``< n`` through the points
        ``(x_i, b_i)``.

    Returns
    -------
    ndarray, shape (..., n)
        ``a``, in the promoted dtype of ``x`` and ``b`` (float32 and complex64 kept; integers
        as float64), batch dimensions broadcast.

    Raises
    ------
    ValueError
        Two equal nodes in a row of ``x`` (the pair and the batch index named: ``V`` is
        singular), a NaN or infinity in ``x``, ``b`` of the wrong length, batch dimensions that
        do not broadcast, ``x`` or ``b`` 0-d.
    TypeError
        A non-numeric input (named), ``transpose`` not a bool, NumPy and CuPy arrays mixed.

    See Also
    --------
    solve_vandermonde_vjp : its gradients.
    matmul_vandermonde : the product with the same matrix.
    vandermonde_to_dense : the matrix (the reference).

    Notes
    -----
    Björck and Pereyra factor ``V^(-1)`` (and ``V^(-T)``) into ``2 (n - 1)`` bidiagonal
    matrices and apply them in turn: for ``V^T a = f`` (their *dual* algorithm, Newton
    interpolation) the divided differences of ``f``, then the Newton form turned into monomial
    coefficients; for ``V a = b`` (the *primal* algorithm) the transposed steps in reverse
    order. Cost ``5 n^2 / 2`` operations (``n^2 / 2`` divisions) per system, ``O(n)`` memory
    beyond the output, never the matrix. The algorithms are often far more accurate than
    ``cond(V)`` suggests: for real nodes ``0 <= x_0 < x_1 < ... < x_(n-1)`` and a right-hand
    side of alternating sign (``(-1)**i b_i >= 0``) the computed solution satisfies ``|a -
    fl(a)| <= 5 n u |a| + O(u^2)`` componentwise (Higham, Corollary 22.5), where Gaussian
    elimination on the dense matrix, backward stable only, loses ``log10 cond(V)`` digits.
    For other nodes (Chebyshev points, points on the unit circle) the accuracy is that of a
    backward stable solver in practice (with the order below). Repeated nodes are found by
    the algorithm itself (a zero denominator ``x_i - x_j``: every pair occurs) and reported
    after the call.
    Non-finite values of ``b`` propagate within their row only.

    The order of the nodes matters to these algorithms (Higham, section 22.3), so they take
    them in a chosen order (the solution is returned in the caller's): increasing for real
    nonnegative nodes, which gives the componentwise bound above, and otherwise Leja's order
    (each node the farthest, in the product of distances, from the ones before it; Reichel
    1990 [3]_), which keeps the divided differences bounded where the natural order of, e.g.,
    the roots of unity makes them grow like ``2**n`` (a relative residual of 0.9 at
    ``n = 64``). The order costs ``O(n^2)`` per row of ``x`` (once for nodes shared by a
    batch).

    Many right-hand sides sharing one small set of nodes are faster through a dense LU
    (``O(n^3)`` once, then matrix-matrix products): measured 0.2x of
    ``numpy.linalg.solve(V, B)`` for 1000 right-hand sides at ``n = 64``; the solves here win
    for nodes per system (2-2.5x numpy's batched dense solve at ``1000 x 64``), in memory
    (``O(n)``, never ``V``), and in accuracy on monotone nodes.

    On the CPU the rows of the batch are the vector lanes of the kernel (chunks of 32 rows per
    task, in parallel); on the GPU each thread solves one system (unverified on a GPU).

    References
    ----------
    .. [1] A. Björck and V. Pereyra, "Solution of Vandermonde systems of equations", Math.
       Comp. 24 (1970), 893-903.
    .. [2] N. J. Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., SIAM 2002,
       chapter 22.
    .. [3] L. Reichel, "Newton interpolation at Leja points", BIT 30 (1990), 332-346.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.vandermonde import solve_vandermonde, matmul_vandermonde
    >>> x = np.array([0.5, -1.0, 2.0])
    >>> a = np.array([1.0, 2.0, 3.0])
    >>> bool(np.allclose(solve_vandermonde(x, matmul_vandermonde(x, a, 3)), a))
    True
    >>> solve_vandermonde(x, x**2 + 1, transpose=True)   # interpolate 1 + t**2
    array([1., 0., 1.])
    """
    p, _, transpose, batch = _prepare_solve(x, b, transpose)
    xp, dt = p.xp, p.dtype
    k = kernels(xp, "vandermonde")
    xs, perm = _ordered_nodes(xp, k, p.x, batch, dt)
    out, info = _bp(xp, k, xs, perm, _rows(xp, p.b, batch, dt), transpose)
    _raise_repeated(xp, p.x, info, batch)
    return restore_batch(out, batch) if batch else out[0]


def solve_vandermonde_vjp(
    x: Any, b: Any, grad: Any, *, transpose: bool = False
) -> tuple[Any, Any]:
    """Return the gradients ``(gx, gb)`` of a real loss through :func:`solve_vandermonde`,
    given its gradient ``grad`` with respect to the solution.

    Parameters
    ----------
    x, b, transpose
        As for :func:`solve_vandermonde`.
    grad : array_like, shape of the solution
        The gradient with respect to ``solve_vandermonde(x, b, transpose=transpose)``.

    Returns
    -------
    gx : ndarray, shape of ``x``
    gb : ndarray, shape of ``b``
        Each in its argument's dtype (float32 and complex64 kept; the real part for a real
        argument), summed over the dimensions it was broadcast along. Complex gradients follow
        PyTorch's convention ``dl/dRe z + 1j dl/dIm z``.

    Raises
    ------
    ValueError, TypeError
        As :func:`solve_vandermonde`, and ``grad`` of the wrong shape (both shapes named).

    See Also
    --------
    solve_vandermonde, matmul_vandermonde_vjp

    Notes
    -----
    With ``M = V`` (``V^T`` for ``transpose=True``) and ``a = M^(-1) b``: ``gb = M^(-H) grad``,
    one Björck-Pereyra solve with the other algorithm on the nodes ``conj(x)``
    (``V^H = V(conj x)^T``), and ``gM = -gb a^H``, which the derivative ``d x_j**i / d x_j =
    i x_j**(i-1)`` turns into one fused Vandermonde product with shifted weights: ``gx =
    -conj(a) V'(conj x)^T gb'`` with ``gb'_k = (k + 1) gb_(k+1)`` for ``V a = b``, and ``gx =
    -gb conj(V'(x)^T a')`` for ``V^T a = b``. Cost: two solves and one product, ``O(n^2)``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.vandermonde import solve_vandermonde_vjp
    >>> # n = 2, V^T a = b: a_0 + a_1 x_i = b_i; loss a_1 = (b_1 - b_0) / (x_1 - x_0)
    >>> gx, gb = solve_vandermonde_vjp([0.0, 1.0], [1.0, 3.0], [0.0, 1.0], transpose=True)
    >>> gx, gb
    (array([ 2., -2.]), array([-1.,  1.]))
    """
    p, n, transpose, batch = _prepare_solve(x, b, transpose, grad=grad)
    xp, dt = p.xp, p.dtype
    if p.grad is None:
        raise TypeError("grad must be an array of numbers (an ndarray, a list or a scalar), "
                        "got None")
    check_shape(p.grad, (*batch, n), "grad", "the solution's shape")
    k = kernels(xp, "vandermonde")
    x2 = _rows(xp, p.x, batch, dt)
    b2 = _rows(xp, p.b, batch, dt)
    g2 = _rows(xp, p.grad, batch, dt)
    cplx = np.dtype(dt).kind == "c"
    xc = xp.ascontiguousarray(xp.conj(x2)) if cplx else x2
    xs, perm = _ordered_nodes(xp, k, p.x, batch, dt)
    a2, info = _bp(xp, k, xs, perm, b2, transpose)
    _raise_repeated(xp, p.x, info, batch)
    # V^H = V(conj x)^T: the conjugate nodes, in the same order (the same distances)
    xsc = xp.ascontiguousarray(xp.conj(xs)) if cplx else xs
    gb2, _ = _bp(xp, k, xsc, perm, g2, not transpose)
    s2 = xp.zeros_like(a2)
    if not transpose:
        if n >= 2:
            k.vandermonde_t(xc, _shifted_derivative_weights(xp, gb2), s2)
        gx2 = -(xp.conj(a2) if cplx else a2) * s2
    else:
        if n >= 2:
            k.vandermonde_t(x2, _shifted_derivative_weights(xp, a2), s2)
        gx2 = -gb2 * (xp.conj(s2) if cplx else s2)
    gx = sum_to_shape(gx2.reshape((*batch, n)), tuple(p.x.shape))
    gb = sum_to_shape(gb2.reshape((*batch, n)), tuple(p.b.shape))
    return grad_like(xp, gx, p.x), grad_like(xp, gb, p.b)
