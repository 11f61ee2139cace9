"""scikit-learn transformers of structlin's kernel feature maps (``sklearn`` extra).

:class:`QuadratureFeatures` approximates a shift-invariant kernel by an explicit feature map,
like ``sklearn.kernel_approximation.RBFSampler``, with deterministic quadrature rules on the
kernel's spectral measure (Dao, De Sa and Ré, arXiv:1709.02605) or structured random features
(ORF, SORF, Fastfood, QMC). It works on NumPy arrays (and on CuPy arrays: CuPy in, CuPy out),
keeps float32 as float32 and fits in a :class:`sklearn.pipeline.Pipeline`.

Importing this module imports scikit-learn; ``import structlin`` does not.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from structlin._backend import is_cupy_array
from structlin.kernel_features import (
    _features,
    fastfood_features,
    fastfood_parameters,
    sorf_features,
    sorf_parameters,
)
from structlin.kernel_quadrature import KERNELS, quadrature_rule

__all__ = ["METHODS", "InvalidParameterError", "QuadratureFeatures", "auto_method"]

#: the feature constructions of :class:`QuadratureFeatures`
METHODS = ("auto", "grid", "subsampled", "reweighted", "anova", "rff", "orf", "sorf",
           "fastfood", "qmc")
#: methods built from the Hadamard transform, defined for the RBF kernel
_STRUCTURED = ("sorf", "fastfood")
#: the symmetric (half-space) rules, which may contain the zero frequency
_SYMMETRIC = ("grid", "subsampled", "reweighted", "anova")
#: most output features
MAX_COMPONENTS = 1 << 22


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter of the wrong type or value (raised by ``fit``, as
    scikit-learn's own ``InvalidParameterError``, which is also both a ValueError and a
    TypeError)."""


def auto_method(d: int, n_components: int, kernel: str) -> str:
    """The construction ``method="auto"`` takes for ``d`` input features.

    The rule follows the Gram-error study of ``benchmarks/bench_kernel_features.py``
    (``benchmarks/results/kernel_features_gram_error.txt``: RBF, ``gamma = 1/(2d)``, D = 128 ..
    4096 features, medians over 5 seeds):

    - ``"grid"`` for ``d <= 4`` when a Gauss grid of at least three nodes per dimension fits
      (``3**d <= n_components``): 10x to 1e13x lower error than ``RBFSampler`` there;
    - ``"subsampled"`` for ``d`` = 5 and 6 with at least 1024 features (the truncated grid
      loses accuracy there; the subsampled grid was the best data-independent rule at d = 6,
      D = 1024 and 4096, ahead of QMC);
    - ``"qmc"`` otherwise up to ``d = 16`` (a scrambled Sobol' sequence through the spectral
      measure's inverse CDF: the best data-independent rule at d = 8 and 10);
    - ``"orf"`` beyond 16 dimensions for the radial kernels (orthogonal random features,
      lower variance than i.i.d. draws; QMC's advantage fades with d), ``"qmc"`` for the
      Laplacian, which is not radial.

    Parameters
    ----------
    d : int
        Number of input features.
    n_components : int
        Number of output features.
    kernel : str
        The kernel name.

    Returns
    -------
    str
        A method name of :data:`METHODS`.

    Examples
    --------
    >>> from structlin.interop.sklearn import auto_method
    >>> auto_method(3, 1024, "rbf"), auto_method(6, 1024, "rbf"), auto_method(64, 1024, "rbf")
    ('grid', 'subsampled', 'orf')
    """
    if d <= 4 and 3 ** d <= n_components:
        return "grid"
    if d <= 6 and n_components >= 1024:
        return "subsampled"
    if d <= 16 or kernel == "laplacian":
        return "qmc"
    return "orf"


def _param_error(name: str, want: str, got: Any) -> InvalidParameterError:
    return InvalidParameterError(
        f"The '{name}' parameter of QuadratureFeatures must be {want}. Got {got!r} instead."
    )


class QuadratureFeatures(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Approximate a shift-invariant kernel by quadrature or structured random features.

    ``transform(X) @ transform(Y).T`` approximates the kernel matrix ``k(X, Y)``; a linear
    model on the features approximates the kernel machine at a cost linear in the number of
    samples.

    Parameters
    ----------
    kernel : {"rbf", "laplacian", "matern12", "matern32", "matern52"}, default "rbf"
        The kernel (conventions of :func:`structlin.kernel_matrix`: ``exp(-gamma ||x-y||^2)``
        for "rbf", scikit-learn's L1 ``laplacian_kernel``, Matérn with length scale
        ``1 / sqrt(2 gamma)``).
    gamma : float, default 1.0
        Kernel parameter (> 0).
    n_components : int, default 100
        Number of output features, exactly (>= 1; 1 gives a single constant or shifted-cosine
        feature, as ``RBFSampler(n_components=1)`` does, and is allowed because scikit-learn's
        ``check_estimator`` sets it).
    method : str, default "auto"
        ``"grid"`` (Gauss tensor grid, truncated to the budget by weight), ``"subsampled"``
        (the grid sampled by weight), ``"reweighted"`` (grid nodes, weights fitted to the
        kernel on the training data by non-negative least squares), ``"anova"`` (approximates
        the ANOVA kernel of order ``anova_order``: the mean of the kernel over every subset of
        ``anova_order`` coordinates; for many input features), ``"rff"`` (random Fourier
        features, cosine–sine pairs), ``"orf"`` (orthogonal random features), ``"sorf"``
        (structured orthogonal features, Hadamard products, RBF only), ``"fastfood"`` (RBF
        only), ``"qmc"`` (scrambled Sobol' points), or ``"auto"`` (:func:`auto_method`: the
        grid up to 4 dimensions, the subsampled grid at 5-6 with 1024 features or more, QMC
        up to 16 dimensions, ORF beyond; chosen from the Gram-error benchmark).
    anova_order : int, default 1
        Subset size of the ANOVA kernel (method ``"anova"`` only).
    random_state : int, numpy.random.Generator or None, default None
        Seed of the random constructions (and of the sample ``"reweighted"`` fits on).

    Attributes
    ----------
    method_ : str
        The construction used (``method`` resolved).
    nodes_ : ndarray of shape (n_nodes, n_features_in_)
        Frequencies (absent for ``"sorf"`` and ``"fastfood"``, which keep ``params_``).
    weights_ : ndarray of shape (n_nodes,)
        Their weights.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when ``X`` had string column names.

    See Also
    --------
    sklearn.kernel_approximation.RBFSampler : random Fourier features (shifted cosines).
    sklearn.kernel_approximation.Nystroem : data-dependent low-rank features.
    structlin.kernel_features, structlin.quadrature_rule : the functions underneath.

    Notes
    -----
    The features are ``sqrt(w_j) cos(omega_j . x)`` and ``sqrt(w_j) sin(omega_j . x)`` for the
    rule's frequencies (computed by one fused kernel, :func:`structlin.kernel_features`). A
    symmetric rule's zero frequency contributes its constant cosine only (split over two equal
    columns when that makes the count come out exactly); a random rule with an odd count turns
    one frequency into a shifted cosine ``sqrt(2 w) cos(omega . x + b)``; SORF and Fastfood drop
    the last sine for an odd count.

    References
    ----------
    .. [1] T. Dao, C. De Sa, C. Ré, "Gaussian Quadrature for Kernel Features", NeurIPS 2017,
       arXiv:1709.02605.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import RidgeClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from structlin.interop.sklearn import QuadratureFeatures
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 2))
    >>> y = (np.hypot(X[:, 0], X[:, 1]) < 1).astype(int)  # not linearly separable
    >>> qf = QuadratureFeatures(gamma=0.5, n_components=101)
    >>> qf.fit_transform(X).shape, qf.method_
    ((200, 101), 'grid')
    >>> model = make_pipeline(QuadratureFeatures(gamma=0.5, n_components=64), RidgeClassifier())
    >>> bool(model.fit(X, y).score(X, y) > 0.9)
    True
    """

    def __init__(self, kernel: str = "rbf", gamma: float = 1.0, n_components: int = 100,
                 method: str = "auto", anova_order: int = 1, random_state: Any = None):
        self.kernel = kernel
        self.gamma = gamma
        self.n_components = n_components
        self.method = method
        self.anova_order = anova_order
        self.random_state = random_state

    # ------------------------------------------------------------------ validation

    def _check_params(self) -> None:
        if not isinstance(self.kernel, str) or self.kernel not in KERNELS:
            raise _param_error("kernel", f"a str among {set(KERNELS)}", self.kernel)
        if not isinstance(self.method, str) or self.method not in METHODS:
            raise _param_error("method", f"a str among {set(METHODS)}", self.method)
        g = self.gamma
        if (isinstance(g, bool) or not isinstance(g, numbers.Real) or not np.isfinite(g)
                or g <= 0):
            raise _param_error("gamma", "a float in the range (0.0, inf)", g)
        c = self.n_components
        if isinstance(c, bool) or not isinstance(c, numbers.Integral) or not (
                1 <= c <= MAX_COMPONENTS):
            raise _param_error("n_components", f"an int in the range [1, {MAX_COMPONENTS}]", c)
        a = self.anova_order
        if isinstance(a, bool) or not isinstance(a, numbers.Integral) or a < 1:
            raise _param_error("anova_order", "an int in the range [1, inf)", a)
        if self.method in _STRUCTURED and self.kernel != "rbf":
            raise InvalidParameterError(
                f"method={self.method!r} is defined for the RBF kernel only, got "
                f"kernel={self.kernel!r}; use method='orf' or 'qmc'"
            )

    def _validate(self, X: Any, reset: bool) -> tuple[Any, Any]:
        """``(xp, X)``: NumPy input through scikit-learn's ``validate_data`` (float64 or
        float32 kept, finite, 2-D, dense), CuPy input checked the same way on the device."""
        if is_cupy_array(X):
            import cupy

            if X.ndim != 2:
                raise ValueError(f"Expected a 2D array, got a {X.ndim}D CuPy array instead.")
            if X.dtype.kind not in "biuf":
                raise ValueError(f"Complex or non-numeric data is not supported, got {X.dtype}")
            if X.dtype not in (np.float32, np.float64):
                X = X.astype(np.float64)
            if X.shape[0] < 1:
                raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required.")
            if not bool(cupy.isfinite(X).all()):
                raise ValueError("Input X contains NaN or infinity.")
            if reset:
                self.n_features_in_ = int(X.shape[1])
            elif X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[1]} features, but QuadratureFeatures is expecting "
                    f"{self.n_features_in_} features as input."
                )
            return cupy, cupy.ascontiguousarray(X)
        X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32], order="C")
        return np, X

    # ------------------------------------------------------------------ fit / transform

    def fit(self, X: Any, y: Any = None) -> QuadratureFeatures:
        """Build the feature map for inputs like ``X`` (only ``X``'s width is used, and for
        ``method="reweighted"`` a sample of its rows).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NumPy or CuPy.
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        xp, X = self._validate(X, reset=True)
        d = X.shape[1]
        n = int(self.n_components)
        method = auto_method(d, n, self.kernel) if self.method == "auto" else self.method
        rng = np.random.default_rng(self.random_state) if not isinstance(
            self.random_state, np.random.Generator) else self.random_state
        self.method_ = method
        if method in _STRUCTURED:
            n_nodes = (n + 1) // 2
            make = sorf_parameters if method == "sorf" else fastfood_parameters
            params = make(d, n_nodes, random_state=rng)
            self.params_ = params if isinstance(params, tuple) else (params,)
            self._n_nodes = n_nodes
            self._device_cache = {}
            return self
        n_nodes = (n + 1) // 2
        sample = None
        if method == "reweighted":
            rows = rng.choice(X.shape[0], size=min(X.shape[0], 2000), replace=False)
            sample = X[xp.asarray(rows)]
            sample = sample.get() if xp is not np else sample
        if method == "reweighted" and X.shape[0] < 2:
            raise ValueError(
                "method='reweighted' fits its weights to pairs of samples: it needs at least 2, "
                f"got n_samples = {X.shape[0]}"
            )
        subsets = math.comb(d, int(self.anova_order)) if method == "anova" else 1
        if method == "anova" and n_nodes == 1:
            # every subset's one-node Gauss rule is the zero frequency: the merged rule
            nodes, weights = np.zeros((1, d)), np.ones(1)
        elif method == "anova" and n_nodes < subsets:
            raise ValueError(
                f"n_components={n} is too small for method='anova' with {d} features and "
                f"anova_order={self.anova_order}: it needs at least 2 * C({d}, "
                f"{self.anova_order}) - 1 = {2 * subsets - 1} (one frequency per subset)"
            )
        else:
            nodes, weights = quadrature_rule(
                method, d, n_nodes, kernel=self.kernel, gamma=float(self.gamma), X=sample,
                anova_order=int(self.anova_order), random_state=rng,
            )
        self.nodes_, self.weights_ = nodes, weights
        self._layout = self._kernel_layout(nodes, weights, n, rng)
        self._device_cache = {}
        return self

    @staticmethod
    def _kernel_layout(nodes: np.ndarray, weights: np.ndarray, n: int,
                       rng: np.random.Generator) -> tuple:
        """``(w, scale, phase, sin_from)`` in the kernel's order, for exactly ``n`` features:
        the nodes whose sine is not produced first (see the class Notes)."""
        N = nodes.shape[0]
        zero = N > 0 and not nodes[0].any()
        scale = np.sqrt(weights)
        phase = np.zeros(N)
        if zero and 2 * N - 1 == n:          # the constant feature once
            return nodes, scale, phase, 1
        if zero and 2 * N == n:              # the constant split over two equal columns
            nodes = np.vstack([nodes[:1], nodes])
            scale = np.concatenate([[np.sqrt(weights[0] / 2)] * 2, scale[1:]])
            return nodes, scale, np.zeros(N + 1), 2
        if 2 * N == n:
            return nodes, scale, phase, 0
        # 2N = n + 1 without a zero frequency: the last one becomes a shifted cosine
        order = np.r_[N - 1, np.arange(N - 1)]
        scale = scale[order]
        scale[0] *= np.sqrt(2.0)
        phase[0] = rng.uniform(0.0, 2.0 * np.pi)
        return nodes[order], scale, phase, 1

    def _on_device(self, xp: Any, dtype: Any) -> tuple:
        key = (xp.__name__, np.dtype(dtype).str)
        cache = self._device_cache
        if key not in cache:
            if self.method_ in _STRUCTURED:
                cache[key] = tuple(xp.asarray(p) for p in self.params_)
            else:
                w, scale, phase, sin_from = self._layout
                cache[key] = (xp.ascontiguousarray(xp.asarray(w, dtype=dtype)),
                              xp.ascontiguousarray(xp.asarray(scale, dtype=dtype)),
                              xp.ascontiguousarray(xp.asarray(phase, dtype=dtype)), sin_from)
        return cache[key]

    def transform(self, X: Any) -> Any:
        """Return the features of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)
            NumPy or CuPy.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            X's dtype when float32 or float64 (float64 otherwise), X's array type.
        """
        check_is_fitted(self, "method_")
        xp, X = self._validate(X, reset=False)
        dt = X.dtype
        n = int(self.n_components)
        if self.method_ in _STRUCTURED:
            params = self._on_device(xp, dt)
            fn = sorf_features if self.method_ == "sorf" else fastfood_features
            Z = fn(X, *params, gamma=float(self.gamma), n_nodes=self._n_nodes)
            return Z[:, :n] if Z.shape[1] != n else Z
        w, scale, phase, sin_from = self._on_device(xp, dt)
        return _features(xp, X, dt, w, scale, phase, sin_from)

    @property
    def _n_features_out(self) -> int:
        return int(self.n_components)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
