"""Tests of structlin.kernel_quadrature: exact kernels, spectral densities and quadrature rules."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate
from scipy.special import roots_genlaguerre, roots_hermite

from structlin.kernel_quadrature import (
    KERNELS,
    QUADRATURE_KINDS,
    kernel_matrix,
    quadrature_rule,
    spectral_density,
)

sklearn = pytest.importorskip("sklearn")
from sklearn.gaussian_process.kernels import Matern  # noqa: E402
from sklearn.metrics.pairwise import laplacian_kernel, rbf_kernel  # noqa: E402

NU = {"matern12": 0.5, "matern32": 1.5, "matern52": 2.5}
SYMMETRIC = ("grid", "sparse_grid", "subsampled", "reweighted", "anova")


def rule_sum(nodes, weights, delta):
    """Σ_j w_j cos(ω_j·δ) for the rows of ``delta``."""
    return np.cos(np.atleast_2d(delta) @ nodes.T) @ weights


def exact_at(delta, kernel, gamma=1.0, anova_order=None):
    delta = np.atleast_2d(delta)
    return kernel_matrix(
        delta, np.zeros((1, delta.shape[1])), kernel=kernel, gamma=gamma,
        anova_order=anova_order,
    )[:, 0]


def max_rule_error(nodes, weights, kernel, d, gamma=1.0, scale=1.0, seed=1):
    delta = np.random.default_rng(seed).uniform(-scale, scale, (60, d))
    return float(np.abs(rule_sum(nodes, weights, delta) - exact_at(delta, kernel, gamma)).max())


# ---------------------------------------------------------------------------------------------
# exact kernels


@pytest.mark.parametrize("gamma", [0.3, 1.0, 2.5])
def test_kernel_matrix_equals_sklearn_rbf_and_laplacian(gamma):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    np.testing.assert_allclose(
        kernel_matrix(X, Y, kernel="rbf", gamma=gamma), rbf_kernel(X, Y, gamma=gamma),
        rtol=1e-12, atol=1e-14,
    )
    np.testing.assert_allclose(
        kernel_matrix(X, kernel="laplacian", gamma=gamma), laplacian_kernel(X, gamma=gamma),
        rtol=1e-12, atol=1e-14,
    )


@pytest.mark.parametrize("kernel", ["matern12", "matern32", "matern52"])
@pytest.mark.parametrize("gamma", [0.2, 1.0, 3.0])
def test_kernel_matrix_equals_sklearn_matern(kernel, gamma):
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(6, 4)), rng.normal(size=(8, 4))
    reference = Matern(length_scale=1.0 / math.sqrt(2.0 * gamma), nu=NU[kernel])
    np.testing.assert_allclose(
        kernel_matrix(X, Y, kernel=kernel, gamma=gamma), reference(X, Y), rtol=1e-12,
        atol=1e-14,
    )


def sklearn_kernel(kernel, gamma, X, Y):
    if kernel == "rbf":
        return rbf_kernel(X, Y, gamma=gamma)
    if kernel == "laplacian":
        return laplacian_kernel(X, Y, gamma=gamma)
    return Matern(length_scale=1.0 / math.sqrt(2.0 * gamma), nu=NU[kernel])(X, Y)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_anova_kernel_equals_brute_force_subset_sum(kernel, order):
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(5, 4)), rng.normal(size=(6, 4))
    subsets = list(itertools.combinations(range(4), order))
    brute = sum(sklearn_kernel(kernel, 0.7, X[:, s], Y[:, s]) for s in subsets) / len(subsets)
    got = kernel_matrix(X, Y, kernel=kernel, gamma=0.7, anova_order=order)
    np.testing.assert_allclose(got, brute, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.diag(kernel_matrix(X, kernel=kernel, anova_order=order)), 1.0)


# ---------------------------------------------------------------------------------------------
# spectral densities


def density_1d(kernel, gamma):
    return lambda w: float(spectral_density(np.array([[w]]), kernel=kernel, gamma=gamma)[0])


@pytest.mark.parametrize("kernel", KERNELS)
def test_spectral_density_integrates_to_one_in_1d_and_2d(kernel):
    total, _ = integrate.quad(density_1d(kernel, 0.8), -np.inf, np.inf, limit=200)
    assert abs(total - 1.0) < 1e-8

    # 2-D through ω = tan θ, which maps R² onto a bounded square
    def integrand(t2, t1):
        w = np.array([[math.tan(t1), math.tan(t2)]])
        jac = 1.0 / (math.cos(t1) ** 2 * math.cos(t2) ** 2)
        return float(spectral_density(w, kernel=kernel, gamma=0.8)[0]) * jac

    h = math.pi / 2
    total2, _ = integrate.dblquad(integrand, -h, h, -h, h, epsabs=1e-7, epsrel=1e-7)
    assert abs(total2 - 1.0) < 1e-5


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("delta", [0.3, 1.0, 2.2])
def test_cosine_transform_of_spectral_density_is_kernel(kernel, delta):
    # κ(δ) = 2 ∫_0^∞ p(ω) cos(ωδ) dω (QAWF Fourier quadrature)
    value, _ = integrate.quad(density_1d(kernel, 1.3), 0.0, np.inf, weight="cos", wvar=delta)
    assert abs(2.0 * value - exact_at([[delta]], kernel, 1.3)[0]) < 1e-8


def test_spectral_density_shapes_and_batch():
    w = np.random.default_rng(3).normal(size=(2, 5, 3))
    p = spectral_density(w, kernel="laplacian", gamma=2.0)
    assert p.shape == (2, 5)
    np.testing.assert_allclose(
        p, np.prod(2.0 / (np.pi * (4.0 + w**2)), axis=-1), rtol=1e-13,
    )


# ---------------------------------------------------------------------------------------------
# deterministic rules: accuracy and exactness


def test_grid_rbf_2d_is_accurate():
    nodes, w = quadrature_rule("grid", 2, 100, kernel="rbf", gamma=1.0)
    assert max_rule_error(nodes, w, "rbf", 2) < 1e-9  # measured 5.9e-12
    nodes, w = quadrature_rule("grid", 2, 200, kernel="rbf", gamma=0.5)
    assert max_rule_error(nodes, w, "rbf", 2, gamma=0.5, scale=2.0) < 1e-6


@pytest.mark.parametrize(
    ("kernel", "bound"),
    [("rbf", 1e-14), ("laplacian", 0.2), ("matern12", 0.04), ("matern32", 4e-3),
     ("matern52", 6e-4)],
)
def test_grid_error_decreases_with_n_nodes(kernel, bound):
    errors = [
        max_rule_error(*quadrature_rule("grid", 2, n, kernel=kernel), kernel, 2)
        for n in (10, 40, 160, 640, 2560)
    ]
    if kernel == "rbf":  # at machine precision from 160 rows on
        assert errors[0] > errors[1] > errors[2]
    else:
        assert all(a > b for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < bound, errors


def test_one_d_gauss_hermite_rule_integrates_cosine_to_rounding():
    # 30-point Gauss–Hermite: the half-space rule has exactly 15 rows (no zero node)
    gamma = 0.9
    nodes, w = quadrature_rule("grid", 1, 15, kernel="rbf", gamma=gamma)
    assert nodes.shape == (15, 1)
    delta = np.linspace(-2.0, 2.0, 41)[:, None]
    np.testing.assert_allclose(rule_sum(nodes, w, delta), np.exp(-gamma * delta[:, 0] ** 2),
                               rtol=0, atol=1e-12)
    x, wx = roots_hermite(30)
    full = np.cos(np.outer(delta[:, 0], 2.0 * math.sqrt(gamma) * x)) @ (wx / math.sqrt(math.pi))
    np.testing.assert_allclose(rule_sum(nodes, w, delta), full, rtol=0, atol=1e-14)


def test_half_space_rule_equals_full_tensor_rule_rbf():
    gamma, q = 0.6, 5
    nodes, w = quadrature_rule("grid", 2, (q * q + 1) // 2, kernel="rbf", gamma=gamma)
    assert np.all(nodes[0] == 0.0)  # the zero node once, row 0
    x, wx = roots_hermite(q)
    g1, g2 = np.meshgrid(x, x, indexing="ij")
    full_nodes = math.sqrt(4.0 * gamma) * np.stack([g1.ravel(), g2.ravel()], axis=1)
    full_w = np.outer(wx, wx).ravel() / math.pi
    delta = np.random.default_rng(4).normal(size=(30, 2))
    np.testing.assert_allclose(
        rule_sum(nodes, w, delta), rule_sum(full_nodes, full_w, delta), rtol=0, atol=1e-14,
    )
    # no two rows are a ±pair: the half space holds one node of each
    both = np.concatenate([nodes, -nodes[1:]])
    assert np.unique(np.round(both, 12), axis=0).shape[0] == both.shape[0]


@pytest.mark.parametrize("kernel", ["laplacian", "matern32"])
def test_half_space_rule_equals_full_mixture_rule_1d(kernel):
    # level k: k-point Gauss–Laguerre in t = u/2 times a (2k - 1)-point Gauss–Hermite in z
    k, gamma = 3, 0.7
    alpha = -0.5 if kernel == "laplacian" else NU[kernel] - 1.0
    t, wt = roots_genlaguerre(k, alpha)
    x, wx = roots_hermite(2 * k - 1)
    z = math.sqrt(2.0) * x
    if kernel == "laplacian":
        omega = gamma * np.outer(z, 1.0 / np.sqrt(2.0 * t))
    else:
        omega = np.outer(z, np.sqrt(2.0 * gamma * NU[kernel] / t))
    weights = np.outer(wx / math.sqrt(math.pi), wt / wt.sum())
    half = (omega.size - k) // 2 + 1  # the k zero nodes merged into one
    nodes, w = quadrature_rule("grid", 1, half, kernel=kernel, gamma=gamma)
    assert nodes.shape == (half, 1) and nodes[0, 0] == 0.0
    delta = np.linspace(-3.0, 3.0, 25)[:, None]
    np.testing.assert_allclose(
        rule_sum(nodes, w, delta), rule_sum(omega.reshape(-1, 1), weights.ravel(), delta),
        rtol=0, atol=1e-14,
    )


def test_sparse_grid_rbf_is_accurate_with_fewer_nodes_than_n_nodes():
    nodes, w = quadrature_rule("sparse_grid", 2, 100, kernel="rbf")
    assert nodes.shape[0] <= 100
    assert max_rule_error(nodes, w, "rbf", 2) < 1e-6  # measured 2.0e-8 with 91 rows
    assert (w < 0).any()  # the Smolyak combination has negative weights
    nodes, w = quadrature_rule("sparse_grid", 6, 400, kernel="rbf", gamma=0.5)
    assert nodes.shape[0] <= 400 and abs(w.sum() - 1.0) < 1e-12
    assert max_rule_error(nodes, w, "rbf", 6, gamma=0.5, scale=0.5) < 1e-3


@pytest.mark.parametrize("kernel", ["laplacian", "matern32", "matern52"])
def test_sparse_grid_other_kernels_converge(kernel):
    errors = [
        max_rule_error(*quadrature_rule("sparse_grid", 2, n, kernel=kernel), kernel, 2)
        for n in (20, 200, 2000)
    ]
    assert errors[0] > errors[1] > errors[2], errors


@pytest.mark.parametrize("kernel", KERNELS)
def test_anova_rule_approximates_anova_kernel(kernel):
    d = 4
    delta = np.random.default_rng(5).uniform(-1, 1, (40, d))
    for order, n, bound in [(1, 120, 0.12), (2, 600, 0.25)]:
        nodes, w = quadrature_rule("anova", d, n, kernel=kernel, anova_order=order)
        assert nodes.shape == (n, d) and np.all(nodes[0] == 0.0)
        # every row lives on one subset of ``order`` coordinates
        assert np.all((nodes[1:] != 0).sum(axis=1) <= order)
        err = np.abs(rule_sum(nodes, w, delta) - exact_at(delta, kernel, 1.0, order)).max()
        assert err < (1e-12 if kernel == "rbf" and order == 1 else bound), err


def test_reweighted_beats_plain_grid_on_data_gram():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(50, 3)) * 0.8  # 1225 pairs: all are fitted

    def gram(nodes, w):
        P = X @ nodes.T
        return (np.cos(P) * w) @ np.cos(P).T + (np.sin(P) * w) @ np.sin(P).T

    for kernel in ("laplacian", "matern32", "matern52"):
        K = kernel_matrix(X, kernel=kernel)
        grid_nodes, grid_w = quadrature_rule("grid", 3, 40, kernel=kernel)
        nodes, w = quadrature_rule("reweighted", 3, 40, kernel=kernel, X=X, random_state=0)
        np.testing.assert_array_equal(nodes, grid_nodes)  # the same nodes, new weights
        assert nodes.shape == (40, 3) and w.min() >= 0 and abs(w.sum() - 1.0) < 0.05
        fitted = np.linalg.norm(gram(nodes, w) - K)
        plain = np.linalg.norm(gram(grid_nodes, grid_w) - K)
        assert fitted < 0.6 * plain, (kernel, fitted, plain)
    nodes, w = quadrature_rule(
        "reweighted", 3, 40, kernel="matern52", X=X, base="sparse_grid", random_state=0,
    )
    assert nodes.shape == (40, 3) and w.min() >= 0


def test_reweighted_subsamples_pairs_of_large_data():
    X = np.random.default_rng(7).normal(size=(300, 2))
    a = quadrature_rule("reweighted", 2, 30, X=X, random_state=3)
    b = quadrature_rule("reweighted", 2, 30, X=X, random_state=3)
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (30, 2) and abs(a[1].sum() - 1.0) < 0.05


# ---------------------------------------------------------------------------------------------
# structure shared by every kind


def rule_cases():
    for kind in QUADRATURE_KINDS:
        for kernel in KERNELS:
            if kind == "orf" and kernel == "laplacian":
                continue
            yield kind, kernel


@pytest.mark.parametrize(("kind", "kernel"), list(rule_cases()))
def test_rule_shapes_weights_and_row_counts(kind, kernel):
    d, n = 3, 37
    X = np.random.default_rng(8).normal(size=(40, d))
    nodes, w = quadrature_rule(
        kind, d, n, kernel=kernel, gamma=0.8, X=X, anova_order=2, random_state=0,
    )
    assert nodes.dtype == np.float64 and w.dtype == np.float64
    assert nodes.ndim == 2 and nodes.shape[1] == d and w.shape == (nodes.shape[0],)
    assert np.isfinite(nodes).all() and np.isfinite(w).all()
    if kind == "sparse_grid":
        assert nodes.shape[0] <= n
        assert abs(w.sum() - 1.0) < 1e-10
    else:
        assert nodes.shape[0] == n
        assert w.min() >= 0.0
        assert abs(w.sum() - 1.0) < (0.05 if kind == "reweighted" else 1e-12)
    if kind in SYMMETRIC:
        zero = ~(nodes != 0).any(axis=1)
        assert zero.sum() <= 1 and (not zero.any() or zero[0])
    if kind in ("rff", "orf", "qmc"):
        np.testing.assert_allclose(w, 1.0 / n)


@pytest.mark.parametrize("kind", ["grid", "subsampled", "rff", "orf", "qmc"])
@pytest.mark.parametrize("n", [1, 2, 9, 64])
def test_exactly_n_nodes_rows(kind, n):
    nodes, w = quadrature_rule(kind, 4, n, kernel="matern52", random_state=1)
    assert nodes.shape == (n, 4) and w.shape == (n,)


def test_anova_exactly_n_nodes_and_minimum():
    for n in (6, 7, 50):
        nodes, _ = quadrature_rule("anova", 4, n, anova_order=2)
        assert nodes.shape == (n, 4)


# ---------------------------------------------------------------------------------------------
# random rules


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("kind", ["rff", "orf", "qmc"])
def test_random_rules_are_unbiased_on_average(kind, kernel):
    if kind == "orf" and kernel == "laplacian":
        pytest.skip("not radial")
    delta = np.random.default_rng(9).uniform(-1, 1, (20, 3))
    mean = np.mean(
        [rule_sum(*quadrature_rule(kind, 3, 64, kernel=kernel, random_state=s), delta)
         for s in range(150)],
        axis=0,
    )
    assert np.abs(mean - exact_at(delta, kernel)).max() < 0.03


@pytest.mark.parametrize("kernel", ["rbf", "matern52"])
def test_subsampled_rule_is_nearly_unbiased(kernel):
    delta = np.random.default_rng(10).uniform(-1, 1, (20, 3))
    sums = [rule_sum(*quadrature_rule("subsampled", 3, 30, kernel=kernel, random_state=s),
                     delta) for s in range(150)]
    assert np.abs(np.mean(sums, axis=0) - exact_at(delta, kernel)).max() < 0.02


def test_subsampled_rows_are_distinct_and_from_the_dense_grid():
    nodes, _ = quadrature_rule("subsampled", 2, 50, kernel="rbf", random_state=2)
    assert np.unique(nodes, axis=0).shape[0] == 50
    # the dense grid: the smallest Gauss–Hermite tensor grid with >= 10 * 50 half-space rows,
    # 32**2 / 2 = 512; every sampled coordinate is one of its 32 nodes (ω = 2 sqrt(γ) x)
    x = 2.0 * roots_hermite(32)[0]
    assert np.all(np.min(np.abs(nodes[:, :, None] - x[None, None, :]), axis=2) < 1e-10)
    assert np.all(np.min(np.abs(nodes[:, :, None] - 2.0 * roots_hermite(30)[0]), axis=2)
                  .max(axis=1) > 1e-6)


def test_orf_rows_within_a_block_are_orthogonal():
    d = 5
    nodes, _ = quadrature_rule("orf", d, 12, kernel="rbf", random_state=4)
    for start in (0, 5):
        block = nodes[start:start + d]
        unit = block / np.linalg.norm(block, axis=1, keepdims=True)
        np.testing.assert_allclose(unit @ unit.T, np.eye(d), atol=1e-12)
    unit = nodes[10:] / np.linalg.norm(nodes[10:], axis=1, keepdims=True)
    np.testing.assert_allclose(unit @ unit.T, np.eye(2), atol=1e-12)


@pytest.mark.parametrize("kind", ["subsampled", "rff", "orf", "qmc"])
def test_random_rules_reproducible_and_seed_dependent(kind):
    a = quadrature_rule(kind, 3, 20, kernel="matern32", random_state=11)
    b = quadrature_rule(kind, 3, 20, kernel="matern32", random_state=11)
    c = quadrature_rule(kind, 3, 20, kernel="matern32", random_state=12)
    g = quadrature_rule(kind, 3, 20, kernel="matern32",
                        random_state=np.random.default_rng(11))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert g[0].shape == a[0].shape


def test_qmc_halton_and_deterministic_kinds_ignore_seed():
    nodes, _ = quadrature_rule("qmc", 2, 33, kernel="laplacian", sequence="halton",
                               random_state=0)
    assert nodes.shape == (33, 2)
    a = quadrature_rule("grid", 2, 20, random_state=1)
    b = quadrature_rule("grid", 2, 20, random_state=2)
    np.testing.assert_array_equal(a[0], b[0])


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"kind": "gauss"}, ValueError, "kind"),
        ({"kernel": "cauchy"}, ValueError, "kernel"),
        ({"kind": "qmc", "sequence": "lattice"}, ValueError, "sequence"),
        ({"kind": "reweighted", "base": "random"}, ValueError, "base"),
        ({"gamma": 0.0}, ValueError, "gamma"),
        ({"gamma": -1.0}, ValueError, "gamma"),
        ({"gamma": float("nan")}, ValueError, "gamma"),
        ({"gamma": "1"}, TypeError, "gamma"),
        ({"n_nodes": 0}, ValueError, "n_nodes"),
        ({"n_nodes": -1}, ValueError, "n_nodes"),
        ({"n_nodes": 2.5}, TypeError, "n_nodes"),
        ({"n_nodes": 4.0}, TypeError, "n_nodes"),
        ({"n_nodes": "4"}, TypeError, "n_nodes"),
        ({"n_nodes": True}, TypeError, "n_nodes"),
        ({"n_nodes": 2**23}, ValueError, "n_nodes"),
        ({"kind": "reweighted", "n_nodes": 5000}, ValueError, "n_nodes"),
        ({"d": 0}, ValueError, "d must"),
        ({"d": 30, "n_nodes": 2}, ValueError, "d=30"),
        ({"d": 2, "n_nodes": 9000}, ValueError, "n_nodes=9000"),
        ({"kind": "reweighted"}, ValueError, "X"),
        ({"X": np.array([[0.0, np.nan], [1.0, 2.0]])}, ValueError, "X must be finite"),
        ({"X": np.ones((4, 3))}, ValueError, "X must have d=2 columns"),
        ({"X": np.ones(4)}, ValueError, "X must be 2-D"),
        ({"X": np.array([["a", "b"]])}, TypeError, "X"),
        ({"kind": "orf", "kernel": "laplacian"}, ValueError, "not radial"),
        ({"kind": "anova", "anova_order": 3}, ValueError, "anova_order"),
        ({"kind": "anova", "d": 6, "anova_order": 2, "n_nodes": 10}, ValueError,
         "number of subsets"),
        ({"random_state": 1.5}, TypeError, "random_state"),
    ],
)
def test_quadrature_rule_errors(kwargs, exc, match):
    args = {"kind": "grid", "d": 2, "n_nodes": 8, **kwargs}
    with pytest.raises(exc, match=match):
        quadrature_rule(args.pop("kind"), args.pop("d"), args.pop("n_nodes"), **args)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: kernel_matrix(np.ones((2, 2)), kernel="poly"), ValueError, "kernel"),
        (lambda: kernel_matrix(np.ones((2, 2)), gamma=0), ValueError, "gamma"),
        (lambda: kernel_matrix(np.ones(3)), ValueError, "X must be 2-D"),
        (lambda: kernel_matrix(np.ones((2, 2)), np.ones((2, 3))), ValueError, "Y must"),
        (lambda: kernel_matrix([[np.inf, 0.0]]), ValueError, "X must be finite"),
        (lambda: kernel_matrix(np.ones((2, 2)), anova_order=3), ValueError, "anova_order"),
        (lambda: kernel_matrix(np.ones((2, 2)), anova_order=1.0), TypeError, "anova_order"),
        (lambda: kernel_matrix(np.ones((2, 2)) * 1j), TypeError, "real"),
        (lambda: spectral_density(1.0), ValueError, "omega"),
        (lambda: spectral_density([[1.0]], kernel="x"), ValueError, "kernel"),
        (lambda: spectral_density([[1.0]], gamma=-2), ValueError, "gamma"),
    ],
)
def test_kernel_and_density_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
