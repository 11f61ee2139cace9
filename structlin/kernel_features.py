"""Feature maps of shift-invariant kernels: ``Z(x) Z(y)^T ~ k(x, y)`` from a rule on the
kernel's spectral measure (explicit nodes, or the Hadamard-structured SORF and Fastfood).

A rule is nodes ``omega_j`` (rows of ``nodes``, shape ``(m, d)``) and non-negative weights
``w_j`` with ``sum_j w_j cos(omega_j . (x - y)) ~ k(x - y)`` (:func:`structlin.quadrature_rule`
builds them: Gauss–Hermite grids, sparse grids, reweighted grids, ANOVA rules, random Fourier
features, ORF, QMC). Its feature map is

    Z(x) = [sqrt(w) cos(nodes @ x), sqrt(w) sin(nodes @ x)]           (2m features)

so that ``Z(x) . Z(y) = sum_j w_j cos(omega_j . (x - y))``; with phases ``b_j`` (the shifted
cosine of Rahimi and Recht), ``Z(x) = sqrt(2 w) cos(nodes @ x + b)`` (m features).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from structlin._backend import as_kernel_array, flatten_batch, kernels, restore_batch
from structlin._validate import (
    ABSENT,
    check_finite,
    check_float,
    check_int,
    check_min_ndim,
    check_out,
    check_rng,
    check_shape,
    prepare,
)

__all__ = [
    "fastfood_features",
    "fastfood_nodes",
    "fastfood_parameters",
    "kernel_features",
    "kernel_features_vjp",
    "sorf_features",
    "sorf_nodes",
    "sorf_parameters",
]

#: most nodes a rule may have (the feature count is at most twice this)
MAX_NODES = 1 << 22
#: elements of projections formed at once by the structured (SORF, Fastfood) transforms
TILE_ELEMENTS = 1 << 20


def _real_dtype(p: Any, names: str) -> np.dtype:
    dt = np.dtype(p.dtype)
    if dt.kind == "c":
        raise TypeError(
            f"{names} must be real: kernel features are cosines and sines of real projections, "
            f"got the complex dtype {dt}"
        )
    return dt


def _prepare(X: Any, nodes: Any, weights: Any, phases: Any, g: Any = ABSENT) -> Any:
    p = prepare(X=X, nodes=nodes, weights=weights, phases=phases, g=g,
                dtype_of=("X", "nodes", "weights", "phases"), optional=("phases",))
    dt = _real_dtype(p, "X, nodes, weights and phases")
    check_min_ndim(p.X, 1, "X", "(..., d)")
    if p.nodes.ndim != 2:
        raise ValueError(f"nodes must have shape (m, d), got shape {tuple(p.nodes.shape)}")
    m, d = p.nodes.shape
    check_int(m, "the number of nodes (rows of nodes)", minimum=1, maximum=MAX_NODES)
    if p.X.shape[-1] != d:
        raise ValueError(
            f"X must have d = {d} columns (the width of nodes), got shape {tuple(p.X.shape)}"
        )
    check_shape(p.weights, (m,), "weights", "one weight per row of nodes")
    check_finite(p.nodes, "nodes")
    check_finite(p.weights, "weights")
    if bool((p.weights < 0).any()):
        raise ValueError(
            "weights must be non-negative (a rule with negative weights, such as a sparse "
            "grid's, has no real feature map: refit them with "
            "quadrature_rule('reweighted', ..., base='sparse_grid'))"
        )
    if p.phases is not None:
        check_shape(p.phases, (m,), "phases", "one phase per row of nodes")
        check_finite(p.phases, "phases")
    return p, dt


def _n_features(m: int, phases: Any) -> int:
    return m if phases is not None else 2 * m


def _kernel_inputs(p: Any, dt: np.dtype) -> tuple:
    xp = p.xp
    m = p.nodes.shape[0]
    w = as_kernel_array(xp, p.nodes, dt)
    wts = xp.asarray(p.weights, dtype=np.float64)
    if p.phases is None:
        scale = xp.sqrt(wts).astype(dt)
        phase = xp.zeros(m, dtype=dt)
        sin_from = 0
    else:
        scale = xp.sqrt(2.0 * wts).astype(dt)
        phase = as_kernel_array(xp, p.phases, dt)
        sin_from = m
    return w, xp.ascontiguousarray(scale), phase, sin_from


def kernel_features(X: Any, nodes: Any, weights: Any, *, phases: Any = None,
                    out: Any = None) -> Any:
    """Return the feature map of the rule ``(nodes, weights)`` at the rows of ``X``.

    Parameters
    ----------
    X : array_like, shape (..., d)
        Points, one per row; any leading batch dimensions. Real.
    nodes : array_like, shape (m, d)
        Frequencies ``omega_j`` of the rule (e.g. from :func:`structlin.quadrature_rule`).
    weights : array_like, shape (m,)
        Non-negative weights ``w_j``.
    phases : array_like, shape (m,), optional
        Phases ``b_j`` for the shifted-cosine map ``sqrt(2 w) cos(nodes @ x + b)`` (m features,
        unbiased for random ``b ~ U[0, 2 pi)``). Default: the cosine–sine pairs (2m features).
    out : ndarray, shape (..., 2m) or (..., m), optional
        Where to write the result (C-contiguous, of the result dtype).

    Returns
    -------
    ndarray, shape (..., 2m), or (..., m) with ``phases``
        ``[sqrt(w) cos(X @ nodes.T), sqrt(w) sin(X @ nodes.T)]`` (cosines first, in node
        order), so that ``Z @ Z.T = sum_j w_j cos(omega_j . (x - y))``. Dtype: NumPy's
        promotion of ``X``, ``nodes``, ``weights`` (and ``phases``), integers to float64:
        pass float32 nodes and weights for float32 features. Array type: ``X``'s.

    Raises
    ------
    ValueError
        Shapes that do not match, non-finite or negative weights, non-finite nodes.
    TypeError
        Complex or non-numeric arrays, NumPy mixed with CuPy.

    See Also
    --------
    quadrature_rule : the rules (quadrature, sparse grid, ANOVA, random Fourier, ORF, QMC).
    kernel_features_vjp : gradients for every array argument.
    sorf_features, fastfood_features : structured maps that never form ``nodes``.
    structlin.interop.sklearn.QuadratureFeatures : the scikit-learn transformer.

    Notes
    -----
    One fused pass (Dao, De Sa and Ré, arXiv:1709.02605, for the rules): rows are processed in
    tiles, each tile's projections ``t = X @ nodes.T + b`` are formed block by block in a
    buffer that stays in the cache (SIMD multiply-adds for ``d <= 24``, a BLAS product
    beyond) and the sines and cosines are evaluated from it into ``out`` by a vectorized
    polynomial (Cody–Waite reduction by ``pi/2``, accurate to about an ulp for
    ``|t| < 1e6`` in float64 and ``4e3`` in float32, ``math.sin``/``math.cos`` beyond): the
    ``n x m`` projection matrix never exists. Cost ``2 n m d`` flops plus ``n m`` sine–cosine
    pairs. On CuPy arrays a CUDA kernel does the same (unverified on a GPU so far: compiled
    by NVRTC and run in a host emulator only).

    References
    ----------
    .. [1] T. Dao, C. De Sa, C. Ré, "Gaussian Quadrature for Kernel Features", NeurIPS 2017,
       arXiv:1709.02605.
    .. [2] A. Rahimi, B. Recht, "Random Features for Large-Scale Kernel Machines", NIPS 2007.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kernel_features, quadrature_rule
    >>> nodes, weights = quadrature_rule("grid", 2, 200, kernel="rbf", gamma=0.5)
    >>> X = np.random.default_rng(0).standard_normal((5, 2))
    >>> Z = kernel_features(X, nodes, weights)
    >>> Z.shape
    (5, 400)
    >>> K = np.exp(-0.5 * ((X[:, None] - X[None]) ** 2).sum(-1))
    >>> bool(np.abs(Z @ Z.T - K).max() < 1e-6)
    True
    """
    p, dt = _prepare(X, nodes, weights, phases)
    return _features(p.xp, p.X, dt, *_kernel_inputs(p, dt), out=out)


def _features(xp: Any, X: Any, dt: Any, w: Any, scale: Any, phase: Any, sin_from: int,
              out: Any = None) -> Any:
    """The kernel call behind :func:`kernel_features` (also the transformer's, whose
    constant nodes come first with ``sin_from`` > 0: their sines are identically zero)."""
    m = w.shape[0]
    x2, batch = flatten_batch(as_kernel_array(xp, X, dt))
    shape = (*batch, 2 * m - sin_from)
    if out is None:
        res = xp.empty((x2.shape[0], shape[-1]), dtype=dt)
    else:
        check_out(xp, out, shape, dt)
        res = out.reshape(x2.shape[0], shape[-1])
    if x2.shape[0]:
        kernels(xp, "kernel_features").features(x2, w, scale, phase, sin_from, res)
    return out if out is not None else restore_batch(res, batch)


def kernel_features_vjp(X: Any, nodes: Any, weights: Any, g: Any, *,
                        phases: Any = None) -> tuple:
    """Return the gradients of :func:`kernel_features` for the output gradient ``g``.

    Parameters
    ----------
    X, nodes, weights, phases : array_like
        As for :func:`kernel_features`.
    g : array_like, shape (..., 2m) or (..., m)
        Gradient of a real loss with respect to ``kernel_features(X, nodes, weights,
        phases=phases)``.

    Returns
    -------
    grad_X : ndarray, shape (..., d)
    grad_nodes : ndarray, shape (m, d)
    grad_weights : ndarray, shape (m,)
        Infinite where a weight is 0 and its features have a nonzero gradient (the feature
        scale is ``sqrt(w)``).
    grad_phases : ndarray, shape (m,)
        Only when ``phases`` is given (then a 4-tuple).

    Raises
    ------
    ValueError, TypeError
        As for :func:`kernel_features`, and ``g`` of the wrong shape.

    See Also
    --------
    kernel_features : the map.

    Notes
    -----
    With ``t = X @ nodes.T + b`` and ``c = dL/dt`` (one fused kernel pass evaluating the
    same sines and cosines as the forward map, together with ``dL/dscale`` per row):
    ``grad_X = c @ nodes``, ``grad_nodes = c.T @ X`` (BLAS), ``grad_phases = sum_i c``,
    ``grad_weights = sum_i dL/dscale / (2 sqrt(w))`` (times ``sqrt(2)`` for the shifted
    cosine). Cost: that of the forward map plus two GEMMs of ``2 n m d`` flops.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import kernel_features, kernel_features_vjp
    >>> X = np.array([[0.5, -1.0]])
    >>> nodes, weights = np.array([[1.0, 2.0]]), np.array([0.25])
    >>> gX, gn, gw = kernel_features_vjp(X, nodes, weights, np.ones((1, 2)))
    >>> t = X @ nodes.T  # d/dx of 0.5 (cos t + sin t) is 0.5 (cos t - sin t) nodes
    >>> bool(np.allclose(gX, 0.5 * (np.cos(t) - np.sin(t)) * nodes))
    True
    """
    p, dt = _prepare(X, nodes, weights, phases, g=g)
    xp = p.xp
    m = p.nodes.shape[0]
    x2, batch = flatten_batch(as_kernel_array(xp, p.X, dt))
    check_shape(p.g, (*batch, _n_features(m, p.phases)), "g",
                "the shape of kernel_features' output")
    w, scale, phase, sin_from = _kernel_inputs(p, dt)
    g2 = as_kernel_array(xp, p.g, dt).reshape(x2.shape[0], _n_features(m, p.phases))
    n = x2.shape[0]
    coef = xp.empty((n, m), dtype=dt)
    wcoef = xp.empty((n, m), dtype=dt)
    if n:
        kernels(xp, "kernel_features").features_coef(x2, w, scale, phase, sin_from, g2, coef,
                                                     wcoef)
    else:
        coef[...] = 0
        wcoef[...] = 0
    gX = restore_batch(coef @ w, batch)
    gnodes = coef.T @ x2
    gscale = wcoef.sum(axis=0, dtype=np.float64)
    wts = xp.asarray(p.weights, dtype=np.float64)
    factor = math.sqrt(2.0) if p.phases is not None else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        gweights = (gscale * factor / (2.0 * xp.sqrt(wts))).astype(dt)
    grads = (gX, gnodes.astype(dt, copy=False), gweights)
    if p.phases is not None:
        grads = (*grads, coef.sum(axis=0, dtype=np.float64).astype(dt))
    return grads


# ----------------------------------------------------------------------------- structured maps


def _pow2(d: int) -> int:
    return 1 << max(0, (d - 1).bit_length())


def _structured_counts(d: int, n_nodes: Any) -> tuple[int, int, int]:
    d = check_int(d, "d", minimum=1, maximum=1 << 16)
    n_nodes = check_int(n_nodes, "n_nodes", minimum=1, maximum=MAX_NODES)
    pw = _pow2(d)
    return d, n_nodes, -(-n_nodes // pw)


def sorf_parameters(d: int, n_nodes: int, *, random_state: Any = None) -> Any:
    """Return the random signs of structured orthogonal random features (SORF).

    Parameters
    ----------
    d : int
        Input dimension; the transforms act on ``p = 2**ceil(log2 d)`` (zero-padded).
    n_nodes : int
        Number of frequencies wanted; ``ceil(n_nodes / p)`` blocks are drawn.
    random_state : None, int or numpy.random.Generator
        Seed.

    Returns
    -------
    ndarray, shape (blocks, 3, p), float64
        Rademacher (+-1) diagonals ``D1, D2, D3`` of each block ``H D1 H D2 H D3``.

    See Also
    --------
    sorf_features, sorf_nodes

    Examples
    --------
    >>> from structlin import sorf_parameters
    >>> sorf_parameters(5, 20, random_state=0).shape
    (3, 3, 8)
    """
    d, n_nodes, blocks = _structured_counts(d, n_nodes)
    rng = check_rng(random_state, "random_state")
    return rng.choice([-1.0, 1.0], size=(blocks, 3, _pow2(d)))


def _check_signs(xp: Any, signs: Any, d: int, name: str, depth: int) -> None:
    if signs.ndim != 2 + (depth > 1) or signs.shape[-1] != _pow2(d) or (
            depth > 1 and signs.shape[1] != depth):
        want = f"(blocks, {depth}, {_pow2(d)})" if depth > 1 else f"(blocks, {_pow2(d)})"
        raise ValueError(
            f"{name} must have shape {want} for inputs of d = {d} columns (p = {_pow2(d)}, "
            f"the next power of two), got shape {tuple(signs.shape)}"
        )
    check_finite(signs, name)


def _structured(xp: Any, x2: Any, dt: Any, n_nodes: int, project, out: Any) -> Any:
    """Fill ``out`` (rows of ``x2``) with ``[cos t, sin t] / sqrt(n_nodes)`` where
    ``t = project(rows)`` (``(rows, >= n_nodes)`` projections), a tile of rows at a time."""
    n = x2.shape[0]
    scale = xp.full(n_nodes, 1.0 / math.sqrt(n_nodes), dtype=dt)
    ker = kernels(xp, "kernel_features")
    rows = max(1, TILE_ELEMENTS // max(1, n_nodes))
    for i0 in range(0, n, rows):
        t = xp.ascontiguousarray(project(x2[i0:i0 + rows])[:, :n_nodes], dtype=dt)
        ker.trig(t, scale, 0, out[i0:i0 + rows])
    return out


def _structured_output(xp: Any, X: Any, dt: Any, n_nodes: int, out: Any) -> tuple:
    x2, batch = flatten_batch(as_kernel_array(xp, X, dt))
    shape = (*batch, 2 * n_nodes)
    if out is None:
        res = xp.empty((x2.shape[0], 2 * n_nodes), dtype=dt)
    else:
        check_out(xp, out, shape, dt)
        res = out.reshape(x2.shape[0], 2 * n_nodes)
    return x2, batch, res


def _prepare_structured(X: Any, gamma: Any, **params: Any) -> tuple:
    p = prepare(X=X, **params, dtype_of=("X",))
    dt = _real_dtype(p, "X")
    if dt.kind != "f":
        dt = np.dtype(np.float64)
    check_min_ndim(p.X, 1, "X", "(..., d)")
    gamma = check_float(gamma, "gamma", minimum=0.0, strict_minimum=True)
    return p, dt, gamma


def _resolve_nodes(n_nodes: Any, available: int) -> int:
    if n_nodes is None:
        return available
    n_nodes = check_int(n_nodes, "n_nodes", minimum=1, maximum=available)
    return n_nodes


def _pad(xp: Any, x: Any, pw: int) -> Any:
    if x.shape[1] == pw:
        return x
    y = xp.zeros((x.shape[0], pw), dtype=x.dtype)
    y[:, :x.shape[1]] = x
    return y


def sorf_features(X: Any, signs: Any, *, gamma: float = 1.0, n_nodes: Any = None,
                  out: Any = None) -> Any:
    """Return structured orthogonal random features (SORF) of the RBF kernel
    ``exp(-gamma ||x - y||^2)``.

    Parameters
    ----------
    X : array_like, shape (..., d)
        Points, one per row (real).
    signs : array_like, shape (blocks, 3, p)
        From :func:`sorf_parameters` (``p`` the next power of two of ``d``).
    gamma : float, default 1.0
        Kernel parameter (> 0), scikit-learn's convention.
    n_nodes : int, optional
        Frequencies used (at most ``blocks * p``; default all).
    out : ndarray, shape (..., 2 n_nodes), optional
        Where to write the result.

    Returns
    -------
    ndarray, shape (..., 2 n_nodes)
        ``[cos(W x), sin(W x)] / sqrt(n_nodes)`` with the rows of
        ``W = sqrt(2 gamma p) [H D1 H D2 H D3; ...]`` (``H`` the orthonormal Hadamard matrix,
        ``x`` zero-padded to ``p``), the first ``n_nodes`` of them. X's dtype (float32 stays
        float32) and array type.

    Raises
    ------
    ValueError
        ``signs`` of the wrong shape, ``gamma <= 0``, ``n_nodes`` out of range.
    TypeError
        Complex or non-numeric arrays, NumPy mixed with CuPy.

    See Also
    --------
    sorf_parameters, sorf_nodes : the explicit frequencies (for tests and error studies).
    fastfood_features, kernel_features

    Notes
    -----
    Yu et al. (arXiv:1610.09072): the product of three Hadamard-diagonal pairs behaves like a
    random orthogonal matrix scaled by ``sqrt(2 gamma p)`` (each row's norm is exactly
    ``sqrt(2 gamma p)``, where ORF draws it from a chi distribution), at ``O(p log p)`` per
    block and point instead of ``O(p^2)``, with no ``p x p`` matrix stored. The blocks of a
    tile of rows are transformed together by :func:`structlin.fwht`; the sines and cosines
    come from the same fused kernel as :func:`kernel_features`. Only tile-sized temporaries.

    References
    ----------
    .. [1] F. X. Yu, A. T. Suresh, K. Choromanski, D. Holtmann-Rice, S. Kumar, "Orthogonal
       Random Features", NIPS 2016, arXiv:1610.09072.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import sorf_features, sorf_nodes, sorf_parameters
    >>> X = np.random.default_rng(1).standard_normal((4, 6))
    >>> s = sorf_parameters(6, 16, random_state=0)
    >>> Z = sorf_features(X, s, gamma=0.1)
    >>> W = sorf_nodes(s, 6, gamma=0.1)
    >>> bool(np.allclose(Z, np.hstack([np.cos(X @ W.T), np.sin(X @ W.T)]) / 4))
    True
    """
    p, dt, gamma = _prepare_structured(X, gamma, signs=signs)
    xp = p.xp
    d = p.X.shape[-1]
    _check_signs(xp, p.signs, d, "signs", 3)
    blocks, pw = p.signs.shape[0], p.signs.shape[-1]
    n_nodes = _resolve_nodes(n_nodes, blocks * pw)
    sg = xp.asarray(p.signs, dtype=dt)
    x2, batch, res = _structured_output(xp, p.X, dt, n_nodes, out)
    from structlin.hadamard import fwht

    c = math.sqrt(2.0 * gamma * pw) / pw ** 1.5  # three unnormalized transforms

    def project(rows):
        y = _pad(xp, rows, pw)[:, None, :] * sg[None, :, 2, :]
        y = fwht(y) * sg[None, :, 1, :]
        y = fwht(y) * sg[None, :, 0, :]
        return (fwht(y) * dt.type(c)).reshape(rows.shape[0], blocks * pw)

    _structured(xp, x2, dt, n_nodes, project, res)
    return out if out is not None else restore_batch(res, batch)


def sorf_nodes(signs: Any, d: int, *, gamma: float = 1.0) -> Any:
    """Return the explicit frequencies ``W`` (shape ``(blocks * p, d)``) of
    :func:`sorf_features`: ``sqrt(2 gamma p) H D1 H D2 H D3`` per block, restricted to the
    first ``d`` columns (the padding multiplies zeros), built from ``scipy.linalg.hadamard``.

    Parameters
    ----------
    signs : array_like, shape (blocks, 3, p)
        From :func:`sorf_parameters`.
    d : int
        Input dimension.
    gamma : float, default 1.0
        Kernel parameter (> 0).

    Returns
    -------
    ndarray, shape (blocks * p, d), float64

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import sorf_nodes, sorf_parameters
    >>> W = sorf_nodes(sorf_parameters(4, 4, random_state=0), 4, gamma=0.5)
    >>> bool(np.allclose(W @ W.T, 4 * np.eye(4)))   # orthogonal rows of norm sqrt(2 gamma p)
    True
    """
    from scipy.linalg import hadamard

    d = check_int(d, "d", minimum=1, maximum=1 << 14)
    gamma = check_float(gamma, "gamma", minimum=0.0, strict_minimum=True)
    p = prepare(signs=signs)
    s = np.asarray(p.signs.get() if p.xp is not np else p.signs, dtype=np.float64)
    _check_signs(np, s, d, "signs", 3)
    pw = s.shape[-1]
    H = hadamard(pw) / math.sqrt(pw)
    blocks = [math.sqrt(2 * gamma * pw) * (H * b[0]) @ (H * b[1]) @ (H * b[2]) for b in s]
    return np.vstack(blocks)[:, :d]


def fastfood_parameters(d: int, n_nodes: int, *, random_state: Any = None) -> tuple:
    """Return the random factors of Fastfood: ``(b, perm, g, s)`` per block.

    Parameters
    ----------
    d : int
        Input dimension; blocks act on ``p = 2**ceil(log2 d)``.
    n_nodes : int
        Frequencies wanted; ``ceil(n_nodes / p)`` blocks.
    random_state : None, int or numpy.random.Generator
        Seed.

    Returns
    -------
    b : ndarray, shape (blocks, p)
        Rademacher signs (``B``).
    perm : ndarray, shape (blocks, p), int64
        A random permutation per block (``Pi``).
    g : ndarray, shape (blocks, p)
        Standard normal diagonal (``G``).
    s : ndarray, shape (blocks, p)
        Row scales ``chi_p / ||g||`` (``S``), so that each row's norm follows the chi law of
        a Gaussian row.

    See Also
    --------
    fastfood_features, fastfood_nodes

    Examples
    --------
    >>> from structlin import fastfood_parameters
    >>> [a.shape for a in fastfood_parameters(3, 10, random_state=0)]
    [(3, 4), (3, 4), (3, 4), (3, 4)]
    """
    d, n_nodes, blocks = _structured_counts(d, n_nodes)
    rng = check_rng(random_state, "random_state")
    pw = _pow2(d)
    b = rng.choice([-1.0, 1.0], size=(blocks, pw))
    perm = np.stack([rng.permutation(pw) for _ in range(blocks)])
    g = rng.standard_normal((blocks, pw))
    s = np.sqrt(rng.chisquare(pw, size=(blocks, pw))) / np.linalg.norm(g, axis=1,
                                                                         keepdims=True)
    return b, perm.astype(np.int64), g, s


def _check_fastfood(xp: Any, p: Any, d: int) -> None:
    for name in ("b", "g", "s"):
        _check_signs(xp, getattr(p, name), d, name, 1)
    _check_signs(xp, p.perm, d, "perm", 1)
    shapes = {tuple(getattr(p, n).shape) for n in ("b", "perm", "g", "s")}
    if len(shapes) != 1:
        raise ValueError(f"b, perm, g and s must have one shape (blocks, p), got {shapes}")
    if p.perm.dtype.kind not in "iu":
        raise TypeError(f"perm must be an integer array, got dtype {p.perm.dtype}")
    pw = p.perm.shape[1]
    srt = xp.sort(p.perm, axis=1)
    if not bool((srt == xp.arange(pw)[None, :]).all()):
        raise ValueError(f"each row of perm must be a permutation of 0 .. {pw - 1}")


def fastfood_features(X: Any, b: Any, perm: Any, g: Any, s: Any, *, gamma: float = 1.0,
                      n_nodes: Any = None, out: Any = None) -> Any:
    """Return Fastfood features of the RBF kernel ``exp(-gamma ||x - y||^2)``.

    Parameters
    ----------
    X : array_like, shape (..., d)
        Points, one per row (real).
    b, perm, g, s : array_like, shape (blocks, p)
        From :func:`fastfood_parameters`.
    gamma : float, default 1.0
        Kernel parameter (> 0).
    n_nodes : int, optional
        Frequencies used (at most ``blocks * p``; default all).
    out : ndarray, shape (..., 2 n_nodes), optional
        Where to write the result.

    Returns
    -------
    ndarray, shape (..., 2 n_nodes)
        ``[cos(V x), sin(V x)] / sqrt(n_nodes)``, ``V = sqrt(2 gamma / p) S H G Pi H B`` per
        block (``H`` the unnormalized Hadamard matrix; ``x`` zero-padded to ``p``). X's dtype
        and array type.

    Raises
    ------
    ValueError
        Factors of mismatched shapes, ``perm`` rows that are not permutations, ``gamma <= 0``.
    TypeError
        Complex or non-numeric arrays, a non-integer ``perm``, NumPy mixed with CuPy.

    See Also
    --------
    fastfood_parameters, fastfood_nodes, sorf_features

    Notes
    -----
    Le, Sarlós and Smola (2013): ``H G Pi H B`` mimics a Gaussian matrix (rows of equal norm
    ``p ||g||``, rescaled by ``s`` to Gaussian row norms) at ``O(p log p)`` per block and point,
    with two Walsh–Hadamard transforms (:func:`structlin.fwht`) per block.

    References
    ----------
    .. [1] Q. Le, T. Sarlós, A. Smola, "Fastfood — Approximating Kernel Expansions in
       Loglinear Time", ICML 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fastfood_features, fastfood_nodes, fastfood_parameters
    >>> X = np.random.default_rng(1).standard_normal((4, 3))
    >>> f = fastfood_parameters(3, 8, random_state=0)
    >>> Z = fastfood_features(X, *f, gamma=0.5)
    >>> V = fastfood_nodes(*f, 3, gamma=0.5)
    >>> bool(np.allclose(Z, np.hstack([np.cos(X @ V.T), np.sin(X @ V.T)]) / np.sqrt(8)))
    True
    """
    p, dt, gamma = _prepare_structured(X, gamma, b=b, perm=perm, g=g, s=s)
    xp = p.xp
    d = p.X.shape[-1]
    _check_fastfood(xp, p, d)
    blocks, pw = p.b.shape
    n_nodes = _resolve_nodes(n_nodes, blocks * pw)
    bb, gg = xp.asarray(p.b, dtype=dt), xp.asarray(p.g, dtype=dt)
    ss = xp.asarray(p.s, dtype=dt) * dt.type(math.sqrt(2.0 * gamma / pw))
    rows_idx = xp.arange(blocks)[:, None]
    perm_ = xp.asarray(p.perm)
    x2, batch, res = _structured_output(xp, p.X, dt, n_nodes, out)
    from structlin.hadamard import fwht

    def project(rows):
        y = fwht(_pad(xp, rows, pw)[:, None, :] * bb[None])
        y = y[:, rows_idx, perm_] * gg[None]
        return (fwht(y) * ss[None]).reshape(rows.shape[0], blocks * pw)

    _structured(xp, x2, dt, n_nodes, project, res)
    return out if out is not None else restore_batch(res, batch)


def fastfood_nodes(b: Any, perm: Any, g: Any, s: Any, d: int, *, gamma: float = 1.0) -> Any:
    """Return the explicit frequencies ``V`` (shape ``(blocks * p, d)``) of
    :func:`fastfood_features`, built from ``scipy.linalg.hadamard``.

    Parameters
    ----------
    b, perm, g, s : array_like, shape (blocks, p)
        From :func:`fastfood_parameters`.
    d : int
        Input dimension.
    gamma : float, default 1.0
        Kernel parameter (> 0).

    Returns
    -------
    ndarray, shape (blocks * p, d), float64

    Examples
    --------
    >>> from structlin import fastfood_nodes, fastfood_parameters
    >>> fastfood_nodes(*fastfood_parameters(3, 8, random_state=0), 3).shape
    (8, 3)
    """
    from scipy.linalg import hadamard

    d = check_int(d, "d", minimum=1, maximum=1 << 14)
    gamma = check_float(gamma, "gamma", minimum=0.0, strict_minimum=True)
    p = prepare(b=b, perm=perm, g=g, s=s, dtype_of=("b",))
    arrs = [np.asarray(a.get() if p.xp is not np else a) for a in (p.b, p.perm, p.g, p.s)]
    host = type(p)(np, p.dtype, *arrs)
    _check_fastfood(np, host, d)
    pw = arrs[0].shape[1]
    H = hadamard(pw).astype(np.float64)
    out = []
    for bb, pp, gg, ss in zip(*arrs, strict=True):
        P = np.eye(pw)[pp]  # (P y)[i] = y[perm[i]]
        out.append(math.sqrt(2 * gamma / pw) * (ss[:, None] * H) @ (gg[:, None] * P) @ (H * bb))
    return np.vstack(out)[:, :d]
