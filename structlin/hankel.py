"""Hankel products and solves, by reduction to Toeplitz matrices (reversing the rows).

A Hankel matrix is given as :func:`scipy.linalg.hankel` gives it: first column ``c`` (length
``m``) and last row ``r`` (length ``n``; ``r[0]`` is ignored, the last row is
``[c[-1], r[1:]]``; without ``r``, zeros)::

    H[i, j] = c[i + j]            (i + j < m)
    H[i, j] = r[i + j - m + 1]    (i + j >= m)

Reversing the rows gives the Toeplitz matrix ``J H = toeplitz(c[::-1], r)`` (``J`` the
exchange matrix), so every function here is one of :mod:`structlin.toeplitz` on reversed
data, with the same argument layouts (``x`` and ``b`` of shape ``(n,)`` or ``(..., n, k)``,
SciPy's batching rules).
"""

from __future__ import annotations

from typing import Any

from structlin import toeplitz as _t
from structlin._validate import ABSENT, prepare

__all__ = ["matmul_hankel", "matmul_hankel_vjp", "solve_hankel", "solve_hankel_vjp"]


def _reversed(c_or_cr: Any, rhs: Any, rhs_name: str, grad: Any = ABSENT) -> tuple:
    """``((c[..., ::-1], r), rhs, grad, given, xp)`` with ``r`` zeros when not given."""
    c, r, given = _t._split(c_or_cr)
    cname = "c" if given else "c_or_cr"
    p = prepare(r=r, grad=grad, dtype_of=(cname, "r", rhs_name), **{cname: c, rhs_name: rhs})
    xp = p.xp
    c = getattr(p, cname)
    if c.ndim < 1:
        raise ValueError(f"{cname} must have at least 1 dimension, shape (..., m), got a 0-d "
                         f"array")
    if given and p.r.ndim < 1:
        raise ValueError("r must have at least 1 dimension, shape (..., n), got a 0-d array")
    r = p.r if given else xp.zeros(c.shape[-1:], dtype=c.dtype)
    return (c[..., ::-1], r), getattr(p, rhs_name), p.grad, given, xp


def _flip_rows(a: Any, vector: bool) -> Any:
    return a[::-1] if a.ndim == 1 else (a[..., ::-1] if vector else a[..., ::-1, :])


def matmul_hankel(c_or_cr: Any, x: Any, check_finite: bool = False) -> Any:
    r"""Return the product ``H @ x`` of a Hankel matrix by FFT.

    Parameters
    ----------
    c_or_cr : array_like or tuple of (array_like, array_like)
        The first column ``c``, shape ``(..., m)``, or a tuple ``(c, r)`` with the last row
        ``r``, shape ``(..., n)`` (``r[..., 0]`` ignored); without ``r`` the last row is
        ``[c[-1], 0, ..., 0]`` (``n = m``), as :func:`scipy.linalg.hankel`.
    x : array_like, shape (n,) or (..., n, k)
        The matrix (vector) multiplied, SciPy's layout; batch dimensions broadcast with those
        of ``c`` and ``r``.
    check_finite : bool, optional
        Whether to check that the inputs hold only finite numbers.

    Returns
    -------
    ndarray, shape (..., m) or (..., m, k)
        ``H @ x``, dtype the promotion of the inputs.

    Raises
    ------
    ValueError, TypeError
        As for :func:`structlin.toeplitz.matmul_toeplitz`.

    See Also
    --------
    scipy.linalg.hankel : the dense matrix.
    solve_hankel : the solve.
    matmul_hankel_vjp : the gradients.

    Notes
    -----
    ``H x = J T x`` with the Toeplitz matrix ``T = toeplitz(c[::-1], r)``
    (:func:`structlin.toeplitz.matmul_toeplitz`): ``O(L log L)`` per vector with ``L >= m + n
    - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import hankel
    >>> from structlin.hankel import matmul_hankel
    >>> c, r, x = np.array([1.0, 2, 3]), np.array([3.0, 4, 5, 6]), np.array([1.0, 0, 2, -1])
    >>> bool(np.allclose(matmul_hankel((c, r), x), hankel(c, r) @ x))
    True
    """
    cr, x, _, _, _ = _reversed(c_or_cr, x, "x")
    return _flip_rows(_t.matmul_toeplitz(cr, x, check_finite), x.ndim == 1)


def matmul_hankel_vjp(c_or_cr: Any, x: Any, grad: Any) -> tuple:
    r"""Return the gradients of :func:`matmul_hankel` for the output gradient ``grad``.

    Parameters
    ----------
    c_or_cr, x
        As for :func:`matmul_hankel`.
    grad : array_like
        Gradient of a real loss with respect to ``matmul_hankel(c_or_cr, x)``, of its shape.

    Returns
    -------
    tuple
        ``(grad_c, grad_r, grad_x)`` when ``c_or_cr`` is ``(c, r)`` (``grad_r[..., 0] = 0``),
        ``(grad_c, grad_x)`` when it is ``c`` alone (``r`` is then the constant zero). Shapes,
        dtypes and PyTorch's complex convention as :func:`structlin.toeplitz.matmul_toeplitz_vjp`.

    Raises
    ------
    ValueError, TypeError
        As for :func:`matmul_hankel`, and ``grad`` of the wrong shape.

    See Also
    --------
    matmul_hankel : the product.

    Notes
    -----
    The Toeplitz VJP (:func:`structlin.toeplitz.matmul_toeplitz_vjp`) of ``T = J H`` with the
    reversed ``grad``; the gradient of ``c[::-1]`` reversed back.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import hankel
    >>> from structlin.hankel import matmul_hankel_vjp
    >>> c, r = np.array([1.0, 2.0]), np.array([2.0, 5.0])
    >>> gc, gr, gx = matmul_hankel_vjp((c, r), np.array([1.0, 1.0]), np.array([1.0, 0.0]))
    >>> bool(np.allclose(gx, hankel(c, r).T @ [1.0, 0.0]))
    True
    """
    cr, x, g, given, xp = _reversed(c_or_cr, x, "x", grad)
    if g is None:
        raise TypeError("grad must be an array of numbers (an ndarray, a list or a scalar), "
                        "got None")
    vector = x.ndim == 1
    if g.ndim < 1:
        raise ValueError("grad must have the shape of the product, got a 0-d array")
    gc, gr, gx = _t.matmul_toeplitz_vjp(cr, x, _flip_rows(g, vector))
    gc = xp.ascontiguousarray(gc[..., ::-1])
    return (gc, gr, gx) if given else (gc, gx)


def solve_hankel(c_or_cr: Any, b: Any, check_finite: bool = True, *,
                 method: str = "auto") -> Any:
    r"""Return the solution ``x`` of ``H @ x = b`` for a square Hankel matrix ``H``.

    Parameters
    ----------
    c_or_cr : array_like or tuple of (array_like, array_like)
        The first column ``c``, shape ``(..., n)``, or ``(c, r)`` with the last row ``r`` of
        the same length (``r[..., 0]`` ignored; zeros when not given), as
        :func:`scipy.linalg.hankel`.
    b : array_like, shape (n,) or (..., n, k)
        Right-hand side(s), SciPy's layout and batching rules as
        :func:`structlin.toeplitz.solve_toeplitz`.
    check_finite : bool, optional
        Whether to check that the inputs hold only finite numbers.
    method : {"auto", "levinson", "gko", "pcg"}, optional
        The Toeplitz solver (:func:`structlin.toeplitz.solve_toeplitz`); a Hankel matrix is
        symmetric, and its Toeplitz form ``J H`` is in general not Hermitian.

    Returns
    -------
    x : ndarray, shape (..., n) or (..., n, k)
        The solution, dtype the promotion of the inputs.

    Raises
    ------
    numpy.linalg.LinAlgError
        ``H`` singular; with ``method="levinson"`` also a singular leading minor of ``J H``.
    ValueError, TypeError
        As for :func:`structlin.toeplitz.solve_toeplitz`.

    Warns
    -----
    scipy.linalg.LinAlgWarning
        Ill-conditioned ``H`` (with an rcond estimate).

    See Also
    --------
    matmul_hankel : the product.
    solve_hankel_vjp : the gradients.

    Notes
    -----
    ``H x = b`` is ``T x = J b`` with the Toeplitz matrix ``T = J H = toeplitz(c[::-1], r)``:
    the cost of the Toeplitz solver, ``O(n^2 + n^2 k)`` for Levinson or GKO. With ``r``
    absent, ``T`` is lower triangular with ``c[-1]`` on its diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import hankel
    >>> from structlin.hankel import solve_hankel
    >>> c, r, b = np.array([1.0, 2, 3]), np.array([3.0, 4, 6]), np.array([1.0, 0, 2])
    >>> x = solve_hankel((c, r), b)
    >>> bool(np.allclose(hankel(c, r) @ x, b))
    True
    """
    cr, b, _, _, _ = _reversed(c_or_cr, b, "b")
    if b.ndim < 1:
        raise ValueError("b must have shape (n,) or (..., n, k), got a 0-d array")
    return _t.solve_toeplitz(cr, _flip_rows(b, b.ndim == 1), check_finite, method=method)


def solve_hankel_vjp(c_or_cr: Any, b: Any, grad: Any, check_finite: bool = True, *,
                     method: str = "auto") -> tuple:
    r"""Return the gradients of :func:`solve_hankel` for the output gradient ``grad``.

    Parameters
    ----------
    c_or_cr, b, check_finite, method
        As for :func:`solve_hankel` (``check_finite`` checks ``grad`` too).
    grad : array_like
        Gradient of a real loss with respect to ``x = solve_hankel(c_or_cr, b)``, of its shape.

    Returns
    -------
    tuple
        ``(grad_c, grad_r, grad_b)`` when ``c_or_cr`` is ``(c, r)`` (``grad_r[..., 0] = 0``),
        ``(grad_c, grad_b)`` when it is ``c`` alone; shapes, dtypes and the complex convention
        as :func:`structlin.toeplitz.solve_toeplitz_vjp`.

    Raises
    ------
    numpy.linalg.LinAlgError, ValueError, TypeError
        As for :func:`solve_hankel`, and ``grad`` of the wrong shape.

    See Also
    --------
    solve_hankel : the solve.

    Notes
    -----
    :func:`structlin.toeplitz.solve_toeplitz_vjp` of ``T = J H`` on ``J b`` (two Toeplitz
    solves and FFT correlations), with ``grad_b`` and the gradient of ``c[::-1]`` reversed.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import hankel
    >>> from structlin.hankel import solve_hankel_vjp
    >>> c, r = np.array([1.0, 2.0]), np.array([2.0, 5.0])
    >>> gc, gr, gb = solve_hankel_vjp((c, r), np.array([1.0, 1.0]), np.array([1.0, 0.0]))
    >>> bool(np.allclose(gb, np.linalg.solve(hankel(c, r).T, [1.0, 0.0])))
    True
    """
    cr, b, g, given, xp = _reversed(c_or_cr, b, "b", grad)
    if g is None:
        raise TypeError("grad must be an array of numbers (an ndarray, a list or a scalar), "
                        "got None")
    if b.ndim < 1:
        raise ValueError("b must have shape (n,) or (..., n, k), got a 0-d array")
    vector = b.ndim == 1
    gc, gr, gb = _t.solve_toeplitz_vjp(cr, _flip_rows(b, vector), g, check_finite,
                                       method=method)
    gc = xp.ascontiguousarray(gc[..., ::-1])
    gb = xp.ascontiguousarray(_flip_rows(gb, vector))
    return (gc, gr, gb) if given else (gc, gb)
