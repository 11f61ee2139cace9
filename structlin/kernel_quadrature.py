"""Quadrature rules for the spectral measures of shift-invariant kernels.

A shift-invariant kernel ``k(x, y) = κ(x - y)`` with ``κ(0) = 1`` is, by Bochner's theorem,
``κ(δ) = ∫ p(ω) cos(ω·δ) dω`` for its spectral density ``p``. A *rule* is a set of nodes
``ω_j`` (rows of an ``(m, d)`` array) and weights ``w_j`` with ``Σ_j w_j cos(ω_j·δ) ≈ κ(δ)``;
the feature map ``z(x) = [sqrt(w) cos(Ω x), sqrt(w) sin(Ω x)]`` then has
``z(x)·z(y) = Σ_j w_j cos(ω_j·(x - y))`` (Dao, De Sa and Ré, arXiv:1709.02605).

Kernel conventions (``δ = x - y``, ``r = ||δ||_2``, ``γ = gamma > 0``):

- ``"rbf"``: ``exp(-γ r²)`` (scikit-learn's ``rbf_kernel``); ``p = N(0, 2γ I)``.
- ``"laplacian"``: ``exp(-γ ||δ||_1)`` (scikit-learn's ``laplacian_kernel``, L1 norm); ``p`` is
  the product over coordinates of Cauchy densities of scale ``γ``. A Cauchy variable is a
  Gaussian scale mixture, ``ω_k = γ z / sqrt(u)`` with ``z ~ N(0, 1)``, ``u ~ χ²_1``.
- ``"matern12"``, ``"matern32"``, ``"matern52"``: Matérn ``ν = 1/2, 3/2, 5/2`` with length scale
  ``ℓ = 1/sqrt(2γ)`` (``γ`` means the same as for the RBF, the ``ν → ∞`` limit):
  ``exp(-r/ℓ)``, ``(1 + √3 r/ℓ) exp(-√3 r/ℓ)``, ``(1 + √5 r/ℓ + 5r²/(3ℓ²)) exp(-√5 r/ℓ)``
  (scikit-learn's ``gaussian_process.kernels.Matern(length_scale=ℓ, nu=ν)``). ``p`` is the
  multivariate Student t with ``2ν`` degrees of freedom and scale ``1/ℓ``:
  ``ω = z sqrt(2ν/u) / ℓ``, ``z ~ N(0, I_d)``, ``u ~ χ²_{2ν}``.

Symmetric (deterministic) rules are returned on the half space: one node of each ``±ω`` pair
with the two weights summed, which halves the features for the same ``Σ w cos(ω·δ)``.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from typing import Any, NamedTuple

import numpy as np

from structlin._validate import (
    check_choice,
    check_finite,
    check_float,
    check_int,
    check_min_ndim,
    check_rng,
    prepare,
)

#: the public functions (the vocabularies KERNELS and QUADRATURE_KINDS are module attributes)
__all__ = ["kernel_matrix", "quadrature_rule", "spectral_density"]

#: the kernels (see the module docstring for their formulas and spectral densities)
KERNELS = ("rbf", "laplacian", "matern12", "matern32", "matern52")
#: the rule kinds of :func:`quadrature_rule`
QUADRATURE_KINDS = (
    "grid", "sparse_grid", "subsampled", "reweighted", "anova", "rff", "orf", "qmc",
)

_NU = {"matern12": 0.5, "matern32": 1.5, "matern52": 2.5}
#: the most rows a rule returns, and the most half-space candidate rows a grid may have
_MAX_NODES = 1 << 22
#: ``n_nodes * d`` bound: the nodes array stays below 512 MiB of float64
_MAX_ELEMENTS = 1 << 26
_MAX_DIM = 1 << 16
#: the largest 1-D Gauss order (beyond it SciPy's Laguerre weights lose accuracy and the
#: Gauss–Hermite tail weights underflow)
_MAX_ORDER = 128
_MAX_SUBSETS = 1 << 16
#: NNLS costs O(pairs · n_nodes²): the reweighted rule is bounded more tightly
_MAX_REWEIGHTED = 2048
_MAX_PAIRS = 2000
#: Smolyak: the most tensor terms and unmerged nodes one level may have
_MAX_SMOLYAK_TERMS = 1 << 15
_SOBOL_MAX_DIM = 21201
#: the subsampled rule draws from a dense grid with about this many times n_nodes rows
_SUBSAMPLE_FACTOR = 10


# ---------------------------------------------------------------------------------------------
# exact kernels and densities


def _profile(xp: Any, kernel: str, gamma: float, dist: Any) -> Any:
    """κ as a function of ``dist``: the squared Euclidean distance (rbf, Matérn) or the L1
    distance (laplacian)."""
    if kernel == "rbf":
        return xp.exp(-gamma * dist)
    if kernel == "laplacian":
        return xp.exp(-gamma * dist)
    s = xp.sqrt(xp.maximum(dist, 0) * (2.0 * gamma))  # r / ℓ
    if kernel == "matern12":
        return xp.exp(-s)
    if kernel == "matern32":
        a = math.sqrt(3.0) * s
        return (1.0 + a) * xp.exp(-a)
    a = math.sqrt(5.0) * s
    return (1.0 + a + a * a / 3.0) * xp.exp(-a)


def _coordinate_distance(xp: Any, kernel: str, X: Any, Y: Any, cols: Any) -> Any:
    """Sum over ``cols`` of the per-coordinate distance (squared, or absolute for laplacian)."""
    out = xp.zeros((X.shape[0], Y.shape[0]), dtype=X.dtype)
    for c in cols:
        diff = X[:, c][:, None] - Y[:, c][None, :]
        out += xp.abs(diff) if kernel == "laplacian" else diff * diff
    return out


def _check_kernel_gamma(kernel: Any, gamma: Any) -> float:
    check_choice(kernel, "kernel", KERNELS)
    return check_float(gamma, "gamma", minimum=0.0, strict_minimum=True)


def kernel_matrix(
    X: Any, Y: Any = None, *, kernel: str = "rbf", gamma: float = 1.0,
    anova_order: int | None = None,
) -> Any:
    """Return the exact kernel matrix ``K[a, b] = κ(X[a] - Y[b])``.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Real data, finite.
    Y : array_like, shape (n_y, d), optional
        Second set of points (default ``X``).
    kernel : {"rbf", "laplacian", "matern12", "matern32", "matern52"}, default "rbf"
        The kernel, with the conventions of the module docstring.
    gamma : float, default 1.0
        The inverse squared length scale ``γ > 0`` (Matérn: ``ℓ = 1/sqrt(2γ)``; laplacian:
        the L1 rate).
    anova_order : int, optional
        None: the kernel itself. ``p`` (``1 <= p <= d``): the ANOVA kernel
        ``(1/C(d, p)) Σ_{|S|=p} κ(δ_S)``, ``κ`` of the same kernel on the coordinates in ``S``
        (so that it is 1 at ``δ = 0``).

    Returns
    -------
    ndarray, shape (n, n_y)
        The kernel matrix, in the floating dtype of the promoted inputs (integers to float64)
        and the array type of the inputs (NumPy or CuPy).

    Raises
    ------
    ValueError
        Unknown ``kernel``, ``gamma <= 0`` or not finite, inputs not 2-D, widths that differ,
        non-finite data, ``anova_order`` outside ``[1, d]`` or with more than ``2**16`` subsets
        for a Matérn kernel.
    TypeError
        Non-numeric or complex data, a non-integer ``anova_order`` or a non-real ``gamma``.

    See Also
    --------
    spectral_density : the density ``p`` whose cosine transform is ``κ``.
    quadrature_rule : nodes and weights with ``Σ w cos(ω·δ) ≈ κ(δ)``.

    Notes
    -----
    The distances are accumulated coordinate by coordinate from exact differences (no
    ``|x|² + |y|² - 2 x·y`` cancellation), ``O(n n_y d)`` flops and ``O(n n_y)`` memory. The
    ANOVA kernel of the product kernels (rbf, laplacian) is the elementary symmetric polynomial
    ``e_p`` of the per-coordinate factors, computed by the recursion
    ``e_j ← e_j + f_i e_{j-1}`` in ``O(n n_y d p)``; for Matérn each of the ``C(d, p)`` subsets
    is evaluated, ``O(n n_y p C(d, p))``. See Dao, De Sa and Ré, "Gaussian Quadrature for Kernel
    Features", arXiv:1709.02605, for the ANOVA kernels.

    References
    ----------
    .. [1] T. Dao, C. De Sa, C. Ré, "Gaussian Quadrature for Kernel Features", NeurIPS 2017,
       arXiv:1709.02605.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.kernel_quadrature import kernel_matrix
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    >>> K = kernel_matrix(X, kernel="rbf", gamma=0.5)
    >>> K.shape, round(float(K[0, 1]), 6), round(float(np.exp(-0.5)), 6)
    ((3, 3), 0.606531, 0.606531)
    >>> KA = kernel_matrix(X, kernel="laplacian", anova_order=1)
    >>> round(float(KA[0, 2]), 6) == round((1 + float(np.exp(-2.0))) / 2, 6)
    True
    """
    gamma = _check_kernel_gamma(kernel, gamma)
    p = prepare(X=X, Y=Y, optional=("Y",))
    xp = p.xp
    Xa = _real_matrix(p.X, "X", p.dtype)
    Ya = Xa if p.Y is None else _real_matrix(p.Y, "Y", p.dtype)
    d = Xa.shape[1]
    if Ya.shape[1] != d:
        raise ValueError(
            f"Y must have the same number of columns as X ({d}), got shape {tuple(Ya.shape)}"
        )
    if anova_order is None:
        dist = _coordinate_distance(xp, kernel, Xa, Ya, range(d))
        return _profile(xp, kernel, gamma, dist)
    order = check_int(anova_order, "anova_order", minimum=1, maximum=d)
    n_subsets = math.comb(d, order)
    if kernel in ("rbf", "laplacian"):
        # the product kernels: ANOVA = e_p(f_1, ..., f_d) / C(d, p)
        e = [xp.ones((Xa.shape[0], Ya.shape[0]), dtype=Xa.dtype)]
        e += [xp.zeros_like(e[0]) for _ in range(order)]
        for c in range(d):
            f = _profile(xp, kernel, gamma, _coordinate_distance(xp, kernel, Xa, Ya, (c,)))
            for j in range(min(order, c + 1), 0, -1):
                e[j] += f * e[j - 1]
        return e[order] / n_subsets
    if n_subsets > _MAX_SUBSETS:
        raise ValueError(
            f"anova_order={order} in d={d} dimensions has {n_subsets} subsets, more than "
            f"{_MAX_SUBSETS} (evaluated one by one for a Matérn kernel)"
        )
    out = xp.zeros((Xa.shape[0], Ya.shape[0]), dtype=Xa.dtype)
    for subset in itertools.combinations(range(d), order):
        out += _profile(xp, kernel, gamma, _coordinate_distance(xp, kernel, Xa, Ya, subset))
    return out / n_subsets


def _real_matrix(a: Any, name: str, dtype: Any) -> Any:
    if np.dtype(a.dtype).kind == "c":
        raise TypeError(f"{name} must be real, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, shape (n, d); got shape {tuple(a.shape)}")
    check_finite(a, name)
    return a.astype(dtype, copy=False)


def spectral_density(omega: Any, *, kernel: str = "rbf", gamma: float = 1.0) -> Any:
    """Return the spectral density ``p(ω)`` of the kernel at the rows of ``omega``.

    Parameters
    ----------
    omega : array_like, shape (..., d)
        Frequencies; the last axis is the dimension ``d``.
    kernel : {"rbf", "laplacian", "matern12", "matern32", "matern52"}, default "rbf"
        The kernel, with the conventions of the module docstring.
    gamma : float, default 1.0
        ``γ > 0`` as for :func:`kernel_matrix`.

    Returns
    -------
    ndarray, shape (...)
        ``p(ω)``, a probability density on ``R^d`` with ``∫ p(ω) cos(ω·δ) dω = κ(δ)``, in the
        floating dtype of ``omega`` (integers to float64).

    Raises
    ------
    ValueError
        Unknown ``kernel``, ``gamma <= 0`` or not finite, a 0-d ``omega``.
    TypeError
        Non-numeric or complex ``omega``.

    See Also
    --------
    kernel_matrix : the kernel ``κ`` itself.
    quadrature_rule : rules for the measure ``p(ω) dω``.

    Notes
    -----
    ``O(size of omega)`` flops. The densities (arXiv:1709.02605 uses the same Bochner
    representation):

    - rbf: ``N(0, 2γ I)``, ``(4πγ)^{-d/2} exp(-|ω|²/(4γ))``;
    - laplacian: ``Π_k γ / (π (γ² + ω_k²))``;
    - Matérn ``ν``: the Student t with ``2ν`` degrees of freedom and scale ``σ = 1/ℓ =
      sqrt(2γ)``, ``Γ(ν + d/2) / (Γ(ν) (2νπ)^{d/2} σ^d) (1 + |ω|²/(2ν σ²))^{-(ν + d/2)}``.

    References
    ----------
    .. [1] T. Dao, C. De Sa, C. Ré, "Gaussian Quadrature for Kernel Features", NeurIPS 2017,
       arXiv:1709.02605.
    .. [2] C. E. Rasmussen, C. K. I. Williams, "Gaussian Processes for Machine Learning",
       MIT Press, 2006, section 4.2.1 (the Matérn spectral density).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.kernel_quadrature import spectral_density
    >>> w = np.linspace(-40.0, 40.0, 40001)[:, None]
    >>> p = spectral_density(w, kernel="matern52", gamma=1.0)
    >>> p.shape, round(float(p.sum() * (w[1, 0] - w[0, 0])), 4)
    ((40001,), 1.0)
    """
    from scipy.special import gammaln

    gamma = _check_kernel_gamma(kernel, gamma)
    p = prepare(omega=omega)
    xp = p.xp
    if np.dtype(p.omega.dtype).kind == "c":
        raise TypeError(f"omega must be real, got dtype {p.omega.dtype}")
    check_min_ndim(p.omega, 1, "omega", "(..., d)")
    w = p.omega.astype(p.dtype, copy=False)
    d = w.shape[-1]
    if kernel == "rbf":
        sq = (w * w).sum(axis=-1)
        return xp.exp(-sq / (4.0 * gamma) - 0.5 * d * math.log(4.0 * math.pi * gamma))
    if kernel == "laplacian":
        return (gamma / (math.pi * (gamma * gamma + w * w))).prod(axis=-1)
    nu = _NU[kernel]
    sigma2 = 2.0 * gamma
    log_c = (
        gammaln(nu + d / 2) - gammaln(nu) - 0.5 * d * math.log(2.0 * nu * math.pi * sigma2)
    )
    sq = (w * w).sum(axis=-1)
    return xp.exp(log_c - (nu + d / 2) * xp.log1p(sq / (2.0 * nu * sigma2)))


# ---------------------------------------------------------------------------------------------
# one-dimensional Gauss rules


def _symmetrize(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Make a rule for a symmetric measure exactly symmetric (so that ±ω pair up bitwise)."""
    x = (x - x[::-1]) / 2 + 0.0
    w = (w + w[::-1]) / 2
    if x.size % 2:
        x[x.size // 2] = 0.0
    return x, w / w.sum()


@functools.cache
def _hermite(q: int) -> tuple[np.ndarray, np.ndarray]:
    """q-point Gauss rule for N(0, 1) (Gauss–Hermite with nodes scaled by sqrt(2))."""
    from scipy.special import roots_hermite

    x, w = roots_hermite(q)
    x, w = _symmetrize(np.sqrt(2.0) * x, w)
    x.flags.writeable = w.flags.writeable = False
    return x, w


@functools.cache
def _gamma_rule(q: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """q-point Gauss rule for Gamma(alpha + 1, 1) (generalized Gauss–Laguerre)."""
    from scipy.special import roots_genlaguerre

    t, w = roots_genlaguerre(q, alpha)
    w = w / w.sum()
    t.flags.writeable = w.flags.writeable = False
    return t, w


def _cauchy_size(k: int) -> int:
    return 2 * k * (k - 1) + 1


@functools.cache
def _cauchy_rule(k: int) -> tuple[np.ndarray, np.ndarray]:
    """A symmetric 1-D rule for the standard Cauchy law from its scale mixture
    ``ω = z / sqrt(u)``, ``u ~ χ²_1``: a k-point Gauss–Laguerre rule (α = -1/2) on ``t = u/2``
    times a (2k - 1)-point Gauss–Hermite rule on ``z``; the k copies of the zero node merged.
    """
    q = 2 * k - 1
    z, wz = _hermite(q)
    t, wt = _gamma_rule(k, -0.5)
    half = q // 2
    pos = (z[q - half:][:, None] / np.sqrt(2.0 * t)[None, :]).ravel()
    wpos = (wz[q - half:][:, None] * wt[None, :]).ravel()
    order = np.argsort(pos, kind="stable")
    pos, wpos = pos[order], wpos[order]
    x = np.concatenate([-pos[::-1], [0.0], pos])
    w = np.concatenate([wpos[::-1], [wz[half]], wpos])
    w = w / w.sum()
    x.flags.writeable = w.flags.writeable = False
    return x, w


# ---------------------------------------------------------------------------------------------
# dense tensor grids on the half space


class _Block(NamedTuple):
    """One tensor grid ``scale * ⊗^d nodes`` with weights ``weight * ⊗^d weights``."""

    nodes: np.ndarray
    weights: np.ndarray
    scale: float
    weight: float


def _one_d_size(kernel: str, k: int) -> int:
    """Nodes per coordinate of the level-k grid (Matérn: of each of its k blocks)."""
    if kernel == "laplacian":
        return _cauchy_size(k)
    return 2 * k - 1 if kernel in _NU else k


def _grid_counts(kernel: str, d: int, k: int) -> tuple[int, int]:
    """(half-space rows, 1 if a zero node is among them) of the level-k grid; rows are
    capped at ``_MAX_NODES + 1`` to keep the integers small."""
    q = _one_d_size(kernel, k)
    n_blocks = k if kernel in _NU else 1
    if q > 1 and d * math.log2(q) > 40:
        return _MAX_NODES + 1, q % 2
    total = q**d
    zero = total % 2
    return min(n_blocks * (total // 2) + zero, _MAX_NODES + 1), zero


def _grid_level(
    kernel: str, d: int, need: int, name: str, *, with_zero: bool = False,
    nonzero: bool = False, prefer: int | None = None,
) -> int:
    """The smallest level k whose grid has at least ``need`` half-space rows (``nonzero``:
    rows other than the zero node; ``with_zero``: only levels that have a zero node).
    ``prefer``: the smallest level with at least ``prefer`` rows if one is within the limits,
    else the largest within the limits that has ``need``."""
    top = _MAX_ORDER if kernel == "rbf" else (_MAX_ORDER + 1) // 2  # Hermite order 2k - 1
    best = None
    for k in range(1, top + 1):
        rows, zero = _grid_counts(kernel, d, k)
        if rows > _MAX_NODES:
            break
        if with_zero and not zero:
            continue
        have = rows - zero if nonzero else rows
        if have >= (need if prefer is None else prefer):
            return k
        if have >= need:
            best = k
    if best is not None:
        return best
    raise ValueError(
        f"{name}={need} needs a tensor grid in d={d} dimensions with more than {_MAX_NODES} "
        f"half-space candidate rows (or a 1-D order above {_MAX_ORDER}); use fewer nodes, "
        f"kind='sparse_grid', 'qmc' or 'rff'"
    )


def _grid_blocks(kernel: str, gamma: float, k: int) -> list[_Block]:
    if kernel == "rbf":
        z, wz = _hermite(k)
        return [_Block(z, wz, math.sqrt(2.0 * gamma), 1.0)]
    if kernel == "laplacian":
        x, wx = _cauchy_rule(k)
        return [_Block(x, wx, gamma, 1.0)]
    nu = _NU[kernel]
    z, wz = _hermite(2 * k - 1)
    t, wt = _gamma_rule(k, nu - 1.0)
    # ω = z sqrt(2ν/u)/ℓ with u = 2t ~ χ²_{2ν}, ℓ = 1/sqrt(2γ)
    return [
        _Block(z, wz, math.sqrt(2.0 * gamma * nu / tj), float(wj))
        for tj, wj in zip(t, wt, strict=True)
    ]


class _Candidates(NamedTuple):
    """Half-space rows of a grid: id 0 is the merged zero node when ``has_zero``."""

    weights: np.ndarray
    has_zero: bool
    blocks: list
    offsets: np.ndarray
    d: int


def _grid_candidates(kernel: str, gamma: float, d: int, k: int) -> _Candidates:
    blocks = _grid_blocks(kernel, gamma, k)
    zero_w = 0.0
    parts = []
    for b in blocks:
        full = np.ones(1)
        for _ in range(d):
            full = np.multiply.outer(full, b.weights).ravel()
        n = full.size
        # the mirror of flat index f is n - 1 - f: the first half holds one node of each pair
        parts.append(2.0 * b.weight * full[: n // 2])
        if n % 2:
            zero_w += b.weight * full[n // 2]
    has_zero = blocks[0].nodes.size % 2 == 1
    head = [np.array([zero_w])] if has_zero else []
    sizes = [p.size for p in parts]
    offsets = np.cumsum([int(has_zero), *sizes])
    return _Candidates(np.concatenate(head + parts), has_zero, blocks, offsets, d)


def _candidate_nodes(c: _Candidates, ids: np.ndarray) -> np.ndarray:
    out = np.zeros((ids.size, c.d))
    for bi, b in enumerate(c.blocks):
        sel = (ids >= c.offsets[bi]) & (ids < c.offsets[bi + 1])
        if not sel.any():
            continue
        q = b.nodes.size
        digits = np.unravel_index(ids[sel] - c.offsets[bi], (q,) * c.d)
        out[sel] = b.scale * np.stack([b.nodes[g] for g in digits], axis=1)
    return out + 0.0


def _rank(weights: np.ndarray) -> np.ndarray:
    """Indices by decreasing weight, ties (to ~12 digits) broken by index."""
    m, e = np.frexp(np.abs(weights))
    key = np.ldexp(np.round(m * 2.0**40), e)
    return np.lexsort((np.arange(weights.size), -key))


def _zero_first(ids: np.ndarray, has_zero: bool) -> np.ndarray:
    if has_zero and (ids == 0).any():
        ids = np.concatenate([[0], ids[ids != 0]])
    return ids


def _grid_rule(
    kernel: str, gamma: float, d: int, n: int, name: str = "n_nodes"
) -> tuple[np.ndarray, np.ndarray]:
    k = _grid_level(kernel, d, n, name)
    c = _grid_candidates(kernel, gamma, d, k)
    ids = _zero_first(_rank(c.weights)[:n], c.has_zero)
    w = c.weights[ids]
    return _candidate_nodes(c, ids), w / w.sum()


# ---------------------------------------------------------------------------------------------
# Smolyak sparse grids


def _smolyak_dims(kernel: str, d: int) -> int:
    return d + 1 if kernel in _NU else d


def _smolyak_1d(kernel: str, level: int, last: bool) -> tuple[np.ndarray, np.ndarray]:
    """Level-l 1-D rule (order 2l - 1) of a Smolyak coordinate: N(0, 1), standard Cauchy, or
    (Matérn's extra coordinate) Gamma(ν, 1)."""
    q = 2 * level - 1
    if kernel == "laplacian":
        return _cauchy_rule(q)
    if last and kernel in _NU:
        return _gamma_rule(q, _NU[kernel] - 1.0)
    return _hermite(q)


def _compositions(total: int, parts: int):
    """Tuples of ``parts`` positive integers summing to ``total``."""
    for cuts in itertools.combinations(range(1, total), parts - 1):
        yield tuple(b - a for a, b in zip((0, *cuts), (*cuts, total), strict=True))


def _smolyak_size(kernel: str, D: int, L: int) -> tuple[int, int]:
    """(tensor terms, unmerged nodes) of the level-L Smolyak grid in D coordinates."""
    terms = nodes = 0
    for s in range(0, min(L, D) + 1):
        for e in range(max(s, L - D + 1), L + 1):
            for comp in _compositions(e, s) if s else [()] if e == 0 else []:
                terms += math.comb(D, s)
                size = 1
                for c in comp:
                    size *= _one_d_size(kernel, 2 * c + 1)
                nodes += math.comb(D, s) * size
    return terms, nodes


def _smolyak(kernel: str, gamma: float, d: int, L: int) -> tuple[np.ndarray, np.ndarray]:
    """The level-L Smolyak rule folded to the half space, zero node first."""
    D = _smolyak_dims(kernel, d)
    nu = _NU.get(kernel)
    default = np.zeros(D)
    if nu is not None:
        default[-1] = _gamma_rule(1, nu - 1.0)[0][0]
    coords, weights = [], []
    for s in range(0, min(L, D) + 1):
        for e in range(max(s, L - D + 1), L + 1):
            coef = (-1) ** (L - e) * math.comb(D - 1, L - e)
            if coef == 0:
                continue
            for comp in _compositions(e, s) if s else [()] if e == 0 else []:
                for support in itertools.combinations(range(D), s):
                    rules = [
                        _smolyak_1d(kernel, c + 1, j == D - 1)
                        for c, j in zip(comp, support, strict=True)
                    ]
                    pts = np.tile(default, (int(np.prod([r[0].size for r in rules])), 1))
                    w = np.full(pts.shape[0], float(coef))
                    if rules:
                        grids = np.meshgrid(*[r[0] for r in rules], indexing="ij")
                        wgrids = np.meshgrid(*[r[1] for r in rules], indexing="ij")
                        for j, g, wg in zip(support, grids, wgrids, strict=True):
                            pts[:, j] = g.ravel()
                            w *= wg.ravel()
                    coords.append(pts)
                    weights.append(w)
    pts = np.concatenate(coords)
    w = np.concatenate(weights)
    if kernel == "rbf":
        omega = math.sqrt(2.0 * gamma) * pts
    elif kernel == "laplacian":
        omega = gamma * pts
    else:
        omega = pts[:, :d] * np.sqrt(2.0 * gamma * nu / pts[:, d])[:, None]
    return _fold(omega + 0.0, w)


def _merge(nodes: np.ndarray, w: np.ndarray, absw: np.ndarray):
    uniq, inv = np.unique(nodes, axis=0, return_inverse=True)
    inv = inv.ravel()
    return (uniq, np.bincount(inv, weights=w, minlength=uniq.shape[0]),
            np.bincount(inv, weights=absw, minlength=uniq.shape[0]))


def _fold(nodes: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge duplicate nodes, map each node to the half space (first nonzero coordinate
    positive), merge again; drop nodes whose weights cancelled; zero node first, then by
    decreasing |weight|."""
    nodes, w, absw = _merge(nodes, w, np.abs(w))
    nz = nodes != 0
    first = np.where(nz.any(axis=1), nz.argmax(axis=1), 0)
    sign = np.where(nodes[np.arange(nodes.shape[0]), first] < 0, -1.0, 1.0)
    nodes, w, absw = _merge(nodes * sign[:, None] + 0.0, w, absw)
    keep = np.abs(w) > 1e-13 * absw
    nodes, w = nodes[keep], w[keep]
    is_zero = ~(nodes != 0).any(axis=1)
    ids = _zero_first(_rank(w), bool(is_zero.any()))
    if is_zero.any():
        zi = int(np.flatnonzero(is_zero)[0])
        ids = np.concatenate([[zi], ids[ids != zi]])
    return nodes[ids], w[ids]


def _sparse_levels(kernel: str, gamma: float, d: int):
    """Yield the Smolyak rules of levels 0, 1, ... while they stay within the size limits."""
    D = _smolyak_dims(kernel, d)
    # the largest 1-D Hermite order of level L is 2L + 1 (laplacian: 4L + 1)
    top = (_MAX_ORDER - 1) // (4 if kernel == "laplacian" else 2)
    for L in range(0, top + 1):
        terms, raw = _smolyak_size(kernel, D, L)
        if terms > _MAX_SMOLYAK_TERMS or raw > _MAX_NODES:
            return
        yield _smolyak(kernel, gamma, d, L)


def _sparse_rule(kernel: str, gamma: float, d: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    best = None
    for nodes, w in _sparse_levels(kernel, gamma, d):
        if nodes.shape[0] > n:
            break
        best = (nodes, w)
    return best  # level 0 (the zero node alone) always fits


def _sparse_candidates(kernel: str, gamma: float, d: int, n: int) -> np.ndarray:
    """n nodes of the smallest Smolyak level with at least n half-space rows (largest
    |weight| first, zero node kept)."""
    for nodes, _ in _sparse_levels(kernel, gamma, d):
        if nodes.shape[0] >= n:
            return nodes[:n]
    raise ValueError(
        f"n_nodes={n}: no sparse grid in d={d} dimensions within the size limits has that many "
        f"nodes; use base='grid' or fewer nodes"
    )


# ---------------------------------------------------------------------------------------------
# rules built on the grids


def _subsampled_rule(
    kernel: str, gamma: float, d: int, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    k = _grid_level(kernel, d, n, "n_nodes", prefer=_SUBSAMPLE_FACTOR * n)
    c = _grid_candidates(kernel, gamma, d, k)
    p = c.weights / c.weights.sum()
    order = _rank(p)
    ps = p[order]
    # inclusion probabilities π = min(1, c p) with Σ π = n: the largest weights are taken with
    # certainty until the scaled remainder stays below 1
    tail = np.cumsum(ps[::-1])[::-1]
    if n >= ps.size:
        pi = np.ones(ps.size)
    else:
        # the first k < n with (n - k) p_k <= Σ_{i>=k} p_i exists (k = n - 1 qualifies)
        ks = np.arange(n)
        certain = int(np.argmax((n - ks) * ps[:n] <= tail[:n] * (1 + 1e-12)))
        pi = np.ones(ps.size)
        pi[certain:] = np.minimum(1.0, (n - certain) * ps[certain:] / tail[certain])
    # randomized systematic sampling: exactly n distinct units with inclusion probabilities π
    perm = rng.permutation(ps.size)
    cum = np.cumsum(pi[perm])
    cum *= n / cum[-1]
    picks = np.searchsorted(cum, rng.random() + np.arange(n), side="right")
    picks = np.unique(np.minimum(picks, ps.size - 1))
    if picks.size < n:  # rounding at a boundary: fill with the most probable units left
        rest = np.setdiff1d(np.argsort(-pi[perm], kind="stable"), picks, assume_unique=False)
        picks = np.concatenate([picks, rest[: n - picks.size]])
    units = perm[picks]
    ids = order[units]
    w = p[ids] / pi[units]  # Horvitz–Thompson, then normalized below (Hájek)
    pos = _rank(p[ids])  # heaviest first, the zero node (id 0) moved to row 0
    if c.has_zero:
        pos = np.concatenate([pos[ids[pos] == 0], pos[ids[pos] != 0]])
    ids, w = ids[pos], w[pos]
    return _candidate_nodes(c, ids), w / w.sum()


def _pair_differences(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = X.shape[0]
    total = n * (n - 1) // 2
    if total <= _MAX_PAIRS:
        a, b = np.triu_indices(n, 1)
    else:
        a = rng.integers(0, n, size=2 * _MAX_PAIRS)
        b = rng.integers(0, n, size=2 * _MAX_PAIRS)
        keep = np.flatnonzero(a != b)[:_MAX_PAIRS]
        a, b = a[keep], b[keep]
    return np.concatenate([np.zeros((1, X.shape[1])), X[a] - X[b]])


def _reweighted_rule(
    kernel: str, gamma: float, d: int, n: int, base: str, X: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    from scipy.optimize import nnls

    if base == "grid":
        nodes = _grid_rule(kernel, gamma, d, n)[0]
    else:
        nodes = _sparse_candidates(kernel, gamma, d, n)
    delta = _pair_differences(X, rng)
    dist = np.abs(delta).sum(axis=1) if kernel == "laplacian" else (delta * delta).sum(axis=1)
    target = _profile(np, kernel, gamma, dist)
    A = np.cos(delta @ nodes.T)
    # the δ = 0 row (Σ w = 1, the Gram diagonal) counts as much as all pairs together
    scale = math.sqrt(max(delta.shape[0] - 1, 1))
    A[0] *= scale
    target[0] *= scale
    w, _ = nnls(A, target, maxiter=50 * n)
    return nodes, w


def _anova_rule(
    kernel: str, gamma: float, d: int, n: int, order: int
) -> tuple[np.ndarray, np.ndarray]:
    n_subsets = math.comb(d, order)
    if n_subsets > _MAX_SUBSETS:
        raise ValueError(
            f"anova_order={order} in d={d} dimensions has {n_subsets} subsets, more than "
            f"{_MAX_SUBSETS}"
        )
    if n < n_subsets:
        raise ValueError(
            f"n_nodes must be at least the number of subsets C(d, anova_order) = "
            f"C({d}, {order}) = {n_subsets}, got {n}"
        )
    budget = n - 1
    share = [budget // n_subsets + (i < budget % n_subsets) for i in range(n_subsets)]
    rules = {}
    for m in set(share):
        if m == 0:
            rules[m] = (1.0, np.zeros((0, order)), np.zeros(0))
            continue
        k = _grid_level(kernel, order, m, "n_nodes", with_zero=True, nonzero=True)
        c = _grid_candidates(kernel, gamma, order, k)
        ids = 1 + _rank(c.weights[1:])[:m]
        wz, w = float(c.weights[0]), c.weights[ids]
        total = wz + w.sum()
        rules[m] = (wz / total, _candidate_nodes(c, ids), w / total)
    nodes = np.zeros((n, d))
    weights = np.zeros(n)
    row = 1
    for m, subset in zip(share, itertools.combinations(range(d), order), strict=True):
        wz, sub_nodes, sub_w = rules[m]
        weights[0] += wz / n_subsets
        nodes[row:row + m][:, list(subset)] = sub_nodes
        weights[row:row + m] = sub_w / n_subsets
        row += m
    return nodes, weights


# ---------------------------------------------------------------------------------------------
# random rules


def _radial_scale(kernel: str, gamma: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """The factor ``s`` with ``ω = s z``, ``z ~ N(0, I)``: constant for rbf, ``sqrt(2ν/u)/ℓ``
    for Matérn."""
    if kernel == "rbf":
        return np.full(size, math.sqrt(2.0 * gamma))
    nu = _NU[kernel]
    return np.sqrt(2.0 * nu / rng.chisquare(2.0 * nu, size=size) * 2.0 * gamma)


def _rff_rule(kernel: str, gamma: float, d: int, n: int, rng: np.random.Generator):
    if kernel == "laplacian":
        nodes = gamma * rng.standard_cauchy((n, d))
    else:
        nodes = rng.standard_normal((n, d)) * _radial_scale(kernel, gamma, n, rng)[:, None]
    return nodes, np.full(n, 1.0 / n)


def _orf_rule(kernel: str, gamma: float, d: int, n: int, rng: np.random.Generator):
    if kernel == "laplacian":
        raise ValueError(
            "kind='orf' needs a radial kernel (a density depending on |ω| only); "
            "kernel='laplacian' (a product of 1-D Cauchy densities) is not radial: use "
            "kind='rff' or 'qmc'"
        )
    blocks = []
    for _ in range(-(-n // d)):
        q, r = np.linalg.qr(rng.standard_normal((d, d)))
        signs = np.where(np.diag(r) < 0, -1.0, 1.0)
        blocks.append((q * signs[None, :]).T)  # rows orthonormal, Haar distributed
    directions = np.concatenate(blocks)[:n]
    # |ω| = |z| s with |z| ~ chi_d independent of the direction
    norms = np.sqrt(rng.chisquare(d, size=n)) * _radial_scale(kernel, gamma, n, rng)
    return directions * norms[:, None], np.full(n, 1.0 / n)


def _qmc_rule(
    kernel: str, gamma: float, d: int, n: int, sequence: str, rng: np.random.Generator
):
    from scipy.special import ndtri
    from scipy.stats import chi2, qmc

    dims = d + 1 if kernel in _NU else d
    if sequence == "sobol":
        if dims > _SOBOL_MAX_DIM:
            raise ValueError(
                f"d={d} is too large for sequence='sobol' (at most {_SOBOL_MAX_DIM} "
                f"coordinates); use sequence='halton'"
            )
        engine = qmc.Sobol(dims, scramble=True, seed=rng)
    else:
        engine = qmc.Halton(dims, scramble=True, seed=rng)
    with warnings.catch_warnings():
        # Sobol's balance warning for n not a power of two: the points remain a valid
        # (randomized) low-discrepancy set, just not a complete (t, m, s)-net
        warnings.simplefilter("ignore", UserWarning)
        u = engine.random(n)
    tiny = 2.0**-53
    u = np.clip(u, tiny, 1.0 - tiny)
    if kernel == "laplacian":
        return gamma * np.tan(np.pi * (u - 0.5)), np.full(n, 1.0 / n)
    z = ndtri(u[:, :d])
    if kernel == "rbf":
        return math.sqrt(2.0 * gamma) * z, np.full(n, 1.0 / n)
    nu = _NU[kernel]
    chi = chi2.ppf(u[:, d], 2.0 * nu)
    return z * np.sqrt(2.0 * nu / chi * 2.0 * gamma)[:, None], np.full(n, 1.0 / n)


# ---------------------------------------------------------------------------------------------
# the public rule constructor


def quadrature_rule(
    kind: str, d: int, n_nodes: int, *, kernel: str = "rbf", gamma: float = 1.0,
    X: Any = None, anova_order: int = 1, base: str = "grid", sequence: str = "sobol",
    random_state: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return nodes and weights of a quadrature rule for the kernel's spectral measure.

    The rule satisfies ``Σ_j w_j cos(ω_j·δ) ≈ κ(δ)``; the features
    ``[sqrt(w) cos(Ω x), sqrt(w) sin(Ω x)]`` have ``2 m`` columns for ``m`` rows.

    Parameters
    ----------
    kind : {"grid", "sparse_grid", "subsampled", "reweighted", "anova", "rff", "orf", "qmc"}
        The construction (see Notes).
    d : int
        The data dimension, ``1 <= d <= 2**16``.
    n_nodes : int
        The number of rows ``m`` (exactly, except ``"sparse_grid"`` where it is an upper
        bound), ``1 <= n_nodes <= 2**22`` (``"reweighted"``: ``<= 2048``, where its NNLS fit
        takes about 20 s), and ``n_nodes * d <= 2**26``.
    kernel : {"rbf", "laplacian", "matern12", "matern32", "matern52"}, default "rbf"
        The kernel, with the conventions of the module docstring.
    gamma : float, default 1.0
        ``γ > 0`` as for :func:`kernel_matrix`.
    X : array_like, shape (n, d), optional
        Data (finite, at least 2 rows), required by ``"reweighted"``; checked when given.
    anova_order : int, default 1
        ``"anova"`` only: the order ``p`` of the ANOVA kernel, ``1 <= p <= d``.
    base : {"grid", "sparse_grid"}, default "grid"
        ``"reweighted"`` only: where the candidate nodes come from.
    sequence : {"sobol", "halton"}, default "sobol"
        ``"qmc"`` only: the low-discrepancy sequence.
    random_state : None, int or numpy.random.Generator
        Seeds the random kinds (``"subsampled"``, ``"rff"``, ``"orf"``, ``"qmc"``'s scramble) and
        the pair subsample of ``"reweighted"``; the deterministic kinds ignore it.

    Returns
    -------
    nodes : ndarray of float64, shape (m, d)
        The frequencies ``ω_j``.
    weights : ndarray of float64, shape (m,)
        The weights ``w_j``, summing to 1 (approximately for ``"sparse_grid"`` and
        ``"reweighted"``); non-negative except for ``"sparse_grid"``.

    Raises
    ------
    ValueError
        An unknown ``kind``, ``kernel``, ``base`` or ``sequence``; ``gamma <= 0`` or not
        finite; a size out of range (naming it), including a grid that would have more than
        ``2**22`` half-space candidate rows; ``"reweighted"`` without ``X``; ``X`` not 2-D, not
        ``d`` wide or not finite; ``"orf"`` with the (non-radial) laplacian kernel;
        ``"anova"`` with ``n_nodes < C(d, anova_order)``.
    TypeError
        A size that is not an integer (bool and float refused), a non-real ``gamma``, an
        invalid ``random_state``, non-numeric ``X``.

    See Also
    --------
    kernel_matrix : the exact kernel the rule approximates.
    spectral_density : the density ``p`` of the measure.

    Notes
    -----
    The spectral measures are those of the module docstring (arXiv:1709.02605, section 2):
    ``N(0, 2γ I)`` (rbf), a product of Cauchy(γ) (laplacian), a Student t with ``2ν``
    degrees of freedom and scale ``sqrt(2γ)`` (Matérn). The non-Gaussian ones are written as
    Gaussian scale mixtures ``ω = s(u) z``, and their Gauss rules are Gauss–Hermite rules in
    ``z`` times generalized Gauss–Laguerre rules (``α = ν - 1``, resp. ``-1/2``) in
    ``t = u/2 ~ Gamma(α + 1)``.

    Symmetric kinds (rows on the half space: of each ``±ω`` pair one row carrying both weights,
    the zero node once and as row 0):

    - ``"grid"``: the dense tensor Gauss rule of level ``k = 1, 2, ...``: rbf: the ``k``-point
      Gauss–Hermite rule in every coordinate (``k**d`` nodes); Matérn: a ``k``-point
      Gauss–Laguerre rule in ``u`` times the ``(2k - 1)**d`` Gauss–Hermite grid in ``z``
      (``k (2k - 1)**d`` nodes, the ``k`` zero nodes merged); laplacian: per coordinate the 1-D
      Cauchy rule of a ``k``-point Laguerre times a ``(2k - 1)``-point Hermite rule
      (``2k(k - 1) + 1`` nodes, zeros merged), tensor product over coordinates. The split
      (Hermite order about twice the mixture order) is the cheapest one measured: with fewer
      Hermite points the rule for the small-``u`` (wide Gaussian) nodes is inaccurate, with
      more the error stays that of the Laguerre rule. The smallest level whose half-space count
      is ``>= n_nodes`` is built and its ``n_nodes`` rows of largest weight are kept (ties,
      to 12 digits, by position), weights renormalized to 1: the *exact* tensor grid when
      ``n_nodes`` equals its half count, a weight-truncated grid otherwise. Cost ``O(H log H)``
      for the ``H <= 2**22`` candidate rows plus ``O(n_nodes d)``; 1-D Gauss orders up to 128,
      so e.g. at most 64 rows for the rbf in ``d = 1`` and 8192 in ``d = 2``. Gauss rules
      converge fast for the smooth rbf (``d = 2``, ``|δ_k| <= 1``: error ``6e-12`` with 100
      rows) but slowly for the kinks of laplacian and Matérn 1/2 at ``δ = 0`` (``0.16`` and
      ``0.03`` with 2560 rows).
    - ``"sparse_grid"``: the Smolyak combination of the 1-D rules of orders 1, 3, 5, ...
      (Gauss–Hermite for rbf; the 1-D Cauchy rules above for laplacian; for Matérn the Smolyak
      grid in the ``d + 1`` coordinates ``(z, t)``, the last with Gauss–Laguerre rules),
      duplicate nodes merged; the largest level with at most ``n_nodes`` half-space rows is
      returned, so ``n_nodes`` is an *upper bound*. Weights may be *negative*: then ``Z Zᵀ`` is
      not a valid feature Gram; use ``kind="reweighted", base="sparse_grid"`` for
      non-negative weights.
    - ``"subsampled"``: the dense grid of the smallest level with at least ``10 n_nodes``
      half-space rows (or the largest within the ``2**22`` limit that has ``n_nodes``);
      ``n_nodes`` distinct rows sampled by randomized systematic sampling with inclusion
      probabilities ``π_j = min(1, c w_j)``, ``Σ π_j = n_nodes`` (the heaviest rows taken with
      certainty), weights ``w_j / π_j`` (Horvitz–Thompson, unbiased for the dense grid's sum;
      the rows of uncertain inclusion all get the same weight, as in the paper), then
      normalized to sum 1 (Hájek, nearly unbiased).
    - ``"reweighted"``: the ``n_nodes`` rows of ``base`` (``"grid"`` as above; ``"sparse_grid"``:
      the rows of largest ``|w|`` of the smallest Smolyak level with at least ``n_nodes``
      rows) with weights fitted by ``scipy.optimize.nnls`` so that ``Σ w cos(ω·δ) ≈ κ(δ)`` on
      the differences ``δ = x_a - x_b`` of all pairs of ``X`` (a random subsample of 2000 when
      there are more) plus ``δ = 0``, whose row is scaled to weigh as much as all pairs.
      Cost ``O(P n_nodes²)`` per NNLS iteration for ``P`` pairs; some weights may be 0.
    - ``"anova"``: for the ANOVA kernel of :func:`kernel_matrix` with ``p = anova_order``:
      row 0 is the zero node; the other ``n_nodes - 1`` rows are shared equally between the
      ``C(d, p)`` subsets ``S`` (the remainder to the first subsets, in lexicographic order);
      each subset gets the rows of largest weight of the smallest ``p``-dimensional grid
      that has a zero node (rbf: odd levels) embedded in ``d`` dimensions (zero outside ``S``), its
      weights normalized to 1 with its zero node and divided by ``C(d, p)``; the zero nodes of
      all subsets are merged into row 0, which keeps the count at exactly ``n_nodes``.

    Random kinds (no halving, weights ``1/n_nodes``, exactly ``n_nodes`` rows):

    - ``"rff"``: i.i.d. draws from ``p`` (Rahimi and Recht).
    - ``"orf"``: orthogonal random features (Yu et al., arXiv:1610.09072): blocks of ``d``
      orthonormal directions (QR of a Gaussian matrix, signs fixed by ``diag(R) > 0``; the last
      block truncated), norms from the radial law of ``p`` (rbf: ``sqrt(2γ) chi_d``; Matérn:
      ``chi_d sqrt(2ν/u) sqrt(2γ)``); radial kernels only. ``O(n_nodes d²)``.
    - ``"qmc"``: scrambled Sobol or Halton points (``scipy.stats.qmc``) through inverse CDFs:
      the normal ppf per coordinate (Matérn: one more coordinate through the ``χ²_{2ν}`` ppf),
      the Cauchy ppf per coordinate for laplacian.

    References
    ----------
    .. [1] T. Dao, C. De Sa, C. Ré, "Gaussian Quadrature for Kernel Features", NeurIPS 2017,
       arXiv:1709.02605.
    .. [2] F. X. Yu, A. T. Suresh, K. Choromanski, D. Holtmann-Rice, S. Kumar, "Orthogonal
       Random Features", NeurIPS 2016, arXiv:1610.09072.
    .. [3] A. Rahimi, B. Recht, "Random Features for Large-Scale Kernel Machines", NeurIPS 2007.
    .. [4] S. A. Smolyak, "Quadrature and interpolation formulas for tensor products of certain
       classes of functions", Soviet Math. Dokl. 4, 1963.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.kernel_quadrature import quadrature_rule
    >>> nodes, w = quadrature_rule("grid", 2, 200, kernel="rbf", gamma=0.5)
    >>> nodes.shape, w.shape, round(float(w.sum()), 12)
    ((200, 2), (200,), 1.0)
    >>> delta = np.array([0.3, -0.4])
    >>> approx = float(w @ np.cos(nodes @ delta))
    >>> abs(approx - float(np.exp(-0.5 * 0.25))) < 1e-6
    True
    >>> nodes, w = quadrature_rule("orf", 3, 8, kernel="matern32", random_state=0)
    >>> nodes.shape, round(float(w.sum()), 12)
    ((8, 3), 1.0)
    >>> nodes, w = quadrature_rule("sparse_grid", 4, 50)
    >>> nodes.shape[0] <= 50, round(float(w.sum()), 10)
    (True, 1.0)
    """
    check_choice(kind, "kind", QUADRATURE_KINDS)
    gamma = _check_kernel_gamma(kernel, gamma)
    check_choice(base, "base", ("grid", "sparse_grid"))
    check_choice(sequence, "sequence", ("sobol", "halton"))
    d = check_int(d, "d", minimum=1, maximum=_MAX_DIM)
    n = check_int(
        n_nodes, "n_nodes", minimum=1,
        maximum=_MAX_REWEIGHTED if kind == "reweighted" else _MAX_NODES,
    )
    if n * d > _MAX_ELEMENTS:
        raise ValueError(
            f"n_nodes * d must be at most {_MAX_ELEMENTS} (the nodes array), got "
            f"n_nodes={n}, d={d}"
        )
    if kind == "anova":
        order = check_int(anova_order, "anova_order", minimum=1, maximum=d)
    rng = check_rng(random_state, "random_state")
    Xa = None
    if X is not None:
        Xa = _real_matrix(prepare(X=X).X, "X", np.float64)
        if Xa.shape[1] != d:
            raise ValueError(f"X must have d={d} columns, got shape {tuple(Xa.shape)}")
        if Xa.shape[0] < 2:
            raise ValueError(f"X must have at least 2 rows (pairs of points), got {Xa.shape[0]}")
        if not isinstance(Xa, np.ndarray):
            Xa = Xa.get()
        Xa = np.asarray(Xa, dtype=np.float64)
    if kind == "grid":
        nodes, w = _grid_rule(kernel, gamma, d, n)
    elif kind == "sparse_grid":
        nodes, w = _sparse_rule(kernel, gamma, d, n)
    elif kind == "subsampled":
        nodes, w = _subsampled_rule(kernel, gamma, d, n, rng)
    elif kind == "reweighted":
        if Xa is None:
            raise ValueError("kind='reweighted' needs the data X (shape (n, d)) to fit weights on")
        nodes, w = _reweighted_rule(kernel, gamma, d, n, base, Xa, rng)
    elif kind == "anova":
        nodes, w = _anova_rule(kernel, gamma, d, n, order)
    elif kind == "rff":
        nodes, w = _rff_rule(kernel, gamma, d, n, rng)
    elif kind == "orf":
        nodes, w = _orf_rule(kernel, gamma, d, n, rng)
    else:
        nodes, w = _qmc_rule(kernel, gamma, d, n, sequence, rng)
    return np.ascontiguousarray(nodes, dtype=np.float64), np.ascontiguousarray(w, np.float64)
