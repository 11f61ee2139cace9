"""Tests of the scikit-learn transformer :class:`structlin.interop.sklearn.QuadratureFeatures`:
scikit-learn's own estimator checks for every method, the exact feature count, the kernel it
approximates, float32, pipelines, errors, and CuPy in -> CuPy out on a GPU."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import NotFittedError
from sklearn.linear_model import RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_estimator

import structlin as sl
from structlin.interop.sklearn import METHODS, QuadratureFeatures, auto_method


@pytest.mark.parametrize("method", METHODS)
def test_passes_scikit_learns_estimator_checks(method):
    est = QuadratureFeatures(method=method, n_components=40 if method == "anova" else 9)
    results = check_estimator(est, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:300]) for r in results
              if r["status"] == "failed"]
    assert not failed, failed
    assert len(results) > 30


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_components", [1, 2, 3, 10, 11, 64, 101])
def test_exactly_n_components_features(method, n_components):
    if method == "anova" and n_components not in (1, 2 * 3 - 1) and n_components < 5:
        pytest.skip("anova needs one frequency per coordinate")
    X = np.random.default_rng(0).standard_normal((20, 3))
    Z = QuadratureFeatures(method=method, n_components=n_components, random_state=0,
                           gamma=0.3).fit_transform(X)
    assert Z.shape == (20, n_components)
    assert np.isfinite(Z).all()


@pytest.mark.parametrize("method,tol", [("grid", 1e-4), ("reweighted", 1e-2), ("qmc", 0.05),
                                        ("rff", 0.15), ("orf", 0.1), ("sorf", 0.15),
                                        ("fastfood", 0.15), ("subsampled", 0.15)])
def test_approximates_the_rbf_kernel(method, tol):
    rng = np.random.default_rng(1)
    # d = 3, but 16 for SORF: with p = 4 the Hadamard products are far from Gaussian (a
    # relative error of 0.22 at 1000 features, measured)
    d = 16 if method == "sorf" else 3
    X = rng.standard_normal((60, d)) * 0.7 * np.sqrt(3 / d)
    qf = QuadratureFeatures(gamma=0.5, n_components=1001, method=method, random_state=0)
    Z = qf.fit_transform(X)
    K = sl.kernel_matrix(X, kernel="rbf", gamma=0.5)
    assert np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K) < tol


def test_odd_and_even_counts_give_the_same_kernel_for_a_grid():
    # the zero frequency's constant once (odd) or split over two columns (even)
    X = np.random.default_rng(2).standard_normal((30, 2))
    K = sl.kernel_matrix(X, gamma=0.5)
    grams = []
    for n in (201, 202):
        Z = QuadratureFeatures(gamma=0.5, n_components=n, method="grid").fit_transform(X)
        assert Z.shape[1] == n
        grams.append(Z @ Z.T)
    np.testing.assert_allclose(grams[0], grams[1], atol=1e-14)  # the same rule, 101 nodes
    assert np.abs(grams[0] - K).max() < 1e-3


def test_anova_approximates_the_anova_kernel():
    X = np.random.default_rng(3).uniform(0, 1, (40, 12))
    Z = QuadratureFeatures(method="anova", gamma=2.0, n_components=12 * 16 - 1).fit_transform(X)
    K = sl.kernel_matrix(X, gamma=2.0, anova_order=1)
    assert np.abs(Z @ Z.T - K).max() < 1e-6


@pytest.mark.parametrize("kernel,method,tol", [
    ("laplacian", "qmc", 0.1), ("matern12", "grid", 0.1), ("matern32", "grid", 0.1),
    ("matern52", "grid", 0.1),
    # the Laplacian's kink at 0 makes Gauss rules converge slowly: 0.25 at 801 features
    ("laplacian", "grid", 0.35)])
def test_other_kernels(kernel, method, tol):
    X = np.random.default_rng(4).standard_normal((40, 2)) * 0.5
    Z = QuadratureFeatures(kernel=kernel, gamma=0.5, n_components=801, method=method,
                           random_state=0).fit_transform(X)
    K = sl.kernel_matrix(X, kernel=kernel, gamma=0.5)
    assert np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K) < tol


def test_auto_rule():
    assert auto_method(2, 100, "rbf") == "grid"
    assert auto_method(4, 81, "rbf") == "grid"
    assert auto_method(4, 80, "rbf") == "qmc"
    assert auto_method(6, 1024, "rbf") == "subsampled"
    assert auto_method(6, 512, "rbf") == "qmc"
    assert auto_method(7, 4096, "rbf") == "qmc"
    assert auto_method(64, 4096, "rbf") == "orf"
    assert auto_method(64, 4096, "laplacian") == "qmc"
    assert QuadratureFeatures().fit(np.ones((3, 10))).method_ == "qmc"
    assert QuadratureFeatures().fit(np.ones((3, 20))).method_ == "orf"


@pytest.mark.parametrize("method", ["grid", "sorf", "rff"])
def test_float32_preserved_and_pipeline(method):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 2)).astype(np.float32)
    y = (np.hypot(X[:, 0], X[:, 1]) < 1.1).astype(int)
    qf = QuadratureFeatures(gamma=0.5, n_components=128, method=method, random_state=0)
    assert qf.fit_transform(X).dtype == np.float32
    assert qf.transform(X.astype(np.float64)).dtype == np.float64
    model = make_pipeline(QuadratureFeatures(gamma=0.5, n_components=128, method=method,
                                             random_state=0), RidgeClassifier(alpha=1e-3))
    assert model.fit(X, y).score(X, y) > 0.9
    names = qf.get_feature_names_out()
    assert len(names) == 128 and names[0] == "quadraturefeatures0"


def test_reproducible_with_a_seed():
    X = np.random.default_rng(6).standard_normal((10, 5))
    a = QuadratureFeatures(method="rff", n_components=33, random_state=3).fit_transform(X)
    b = QuadratureFeatures(method="rff", n_components=33, random_state=3).fit_transform(X)
    c = QuadratureFeatures(method="rff", n_components=33, random_state=4).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


BAD = [
    (dict(gamma=0.0), ValueError, "'gamma' parameter .* range \\(0.0, inf\\)"),
    (dict(gamma=-1.0), ValueError, "'gamma'"),
    (dict(gamma="1"), TypeError, "'gamma'"),
    (dict(n_components=0), ValueError, "'n_components'"),
    (dict(n_components=2.5), TypeError, "'n_components' .* an int"),
    (dict(n_components="10"), TypeError, "'n_components'"),
    (dict(kernel="poly"), ValueError, "'kernel' parameter"),
    (dict(method="nystroem"), ValueError, "'method' parameter"),
    (dict(method="sorf", kernel="laplacian"), ValueError, "RBF kernel only"),
    (dict(method="anova", n_components=9), ValueError, "too small for method='anova'"),
]


@pytest.mark.parametrize("params,exc,match", BAD)
def test_bad_parameters_raise_at_fit(params, exc, match):
    est = QuadratureFeatures(**params)  # the constructor stores, fit validates
    with pytest.raises(exc, match=match):
        est.fit(np.ones((4, 6)))


def test_bad_data():
    X = np.random.default_rng(7).standard_normal((5, 3))
    with pytest.raises(NotFittedError):
        QuadratureFeatures().transform(X)
    qf = QuadratureFeatures(n_components=8).fit(X)
    with pytest.raises(ValueError, match="X has 4 features, but QuadratureFeatures is expecting"
                       " 3 features"):
        qf.transform(np.ones((2, 4)))
    bad = X.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        qf.transform(bad)
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        QuadratureFeatures().fit(bad)
    with pytest.raises(ValueError, match="2D array"):
        qf.transform(np.ones(3))


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["grid", "rff", "sorf"])
def test_cupy_in_cupy_out(method):
    cupy = pytest.importorskip("cupy")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception:  # pragma: no cover - no device
        pytest.skip("no CUDA device")
    X = np.random.default_rng(8).standard_normal((50, 3)).astype(np.float32)
    qf = QuadratureFeatures(gamma=0.5, n_components=65, method=method, random_state=0).fit(X)
    Zg = qf.transform(cupy.asarray(X))
    assert isinstance(Zg, cupy.ndarray) and Zg.dtype == np.float32 and Zg.shape == (50, 65)
    np.testing.assert_allclose(Zg.get(), qf.transform(X), atol=2e-5)
    Zf = QuadratureFeatures(gamma=0.5, n_components=65, method=method,
                            random_state=0).fit_transform(cupy.asarray(X))
    assert isinstance(Zf, cupy.ndarray)
