"""Tests of GKO (structlin/gko.py, structlin/_cpu/gko.py): Cauchy-like and Cauchy solves
against dense solves in the four dtypes and under broadcasting, batch isolation, slogdet, the
Toeplitz solver on matrices where Levinson breaks down and on indefinite nonsymmetric ones
(backward error against dense LU), the Toeplitz-like -> Cauchy-like transforms that part E
reuses, singular systems, the VJPs against finite differences, bad inputs and a hypothesis
property."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import given, settings
from hypothesis import strategies as st

from structlin import gko as K
from structlin.gko import solve_cauchy, solve_cauchy_like, solve_cauchy_like_vjp, solve_cauchy_vjp
from tests.strategies import tolerance

DTYPES = (np.float32, np.float64, np.complex64, np.complex128)

_S3 = [0.5, 1.5, 2.5]
_T3 = [0.0, 1.0, 2.0]
_G3 = [[1.0, 2.0, -1.0]]
_H3 = [[1.0, 1.0, 3.0]]
_B3 = [1.0, 0.0, 2.0]


def _a(x):
    return np.array(x, dtype=np.float64)


#: one small valid call of each public function (merged into tests/test_public_api_probe.py)
PROBE = {
    "solve_cauchy_like": lambda: ((_a(_S3), _a(_T3), _a(_G3), _a(_H3), _a(_B3)), {}),
    "solve_cauchy": lambda: ((_a(_S3), _a(_T3), _a(_B3)), {}),
    "solve_cauchy_like_vjp": lambda: ((_a(_S3), _a(_T3), _a(_G3), _a(_H3), _a(_B3),
                                       _a([1.0, -1.0, 0.5])), {}),
    "solve_cauchy_vjp": lambda: ((_a(_S3), _a(_T3), _a(_B3), _a([1.0, -1.0, 0.5])), {}),
}


def _rnd(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _cl_data(rng, n, r, dtype, batch=()):
    """Nodes well apart (s interleaved with t, in random order so that pivoting matters)."""
    s = rng.permutation(n) + 0.5 + rng.uniform(-0.1, 0.1, (*batch, n))
    t = np.arange(n) + rng.uniform(-0.1, 0.1, (*batch, n))
    if np.dtype(dtype).kind == "c":
        s = s + 1j * rng.uniform(-1, 1, s.shape)
        t = t + 1j * rng.uniform(-1, 1, t.shape)
    return (s.astype(dtype), t.astype(dtype), _rnd(rng, (*batch, r, n), dtype),
            _rnd(rng, (*batch, r, n), dtype), _rnd(rng, (*batch, n), dtype))


def _dense(s, t, G, H):
    s, t, G, H = (np.asarray(a, np.complex128) for a in (s, t, G, H))
    return np.einsum("...qi,...qj->...ij", G, H) / (s[..., :, None] - t[..., None, :])


def _berr(T, x, b):
    return (np.linalg.norm(b - T @ x, np.inf)
            / (np.linalg.norm(T, np.inf) * np.linalg.norm(x, np.inf) + np.linalg.norm(b, np.inf)))


# ------------------------------------------------------------------------------ Cauchy-like


@pytest.mark.parametrize("dtype", DTYPES)
def test_solve_cauchy_like_matches_dense_solve(dtype):
    rng = np.random.default_rng(0)
    s, t, G, H, b = _cl_data(rng, 12, 3, dtype, batch=(2,))
    copies = [a.copy() for a in (s, t, G, H, b)]
    x = solve_cauchy_like(s, t, G, H, b)
    assert x.dtype == dtype and x.shape == (2, 12)
    want = np.linalg.solve(_dense(s, t, G, H), b.astype(np.complex128)[..., None])[..., 0]
    C = _dense(s, t, G, H)
    tol = 50 * tolerance(dtype, 12) * np.linalg.cond(C).max()
    assert np.abs(x - want).max() / np.abs(want).max() < min(tol, 1e-2)
    for a, c in zip((s, t, G, H, b), copies, strict=True):
        assert np.array_equal(a, c)


def test_broadcasting_and_integer_promotion():
    rng = np.random.default_rng(1)
    s, t, G, H, _ = _cl_data(rng, 6, 2, np.float64)
    b = rng.standard_normal((3, 1, 6))
    x = solve_cauchy_like(s, t, G[None], H, b)
    assert x.shape == (3, 1, 6) and x.dtype == np.float64
    for i in range(3):
        np.testing.assert_allclose(x[i, 0], np.linalg.solve(_dense(s, t, G, H).real, b[i, 0]),
                                   rtol=1e-10, atol=1e-12)
    xi = solve_cauchy([1, 2, 3], [0, 4, 5], [1, 0, 0])
    assert xi.dtype == np.float64


@pytest.mark.parametrize("dtype", (np.float64, np.complex64))
def test_solve_cauchy_matches_dense(dtype):
    rng = np.random.default_rng(2)
    s, t, _, _, b = _cl_data(rng, 8, 1, dtype)
    x = solve_cauchy(s, t, b)
    C = 1 / (s[:, None].astype(np.complex128) - t[None, :])
    want = np.linalg.solve(C, b.astype(np.complex128))
    assert x.dtype == dtype
    tol = 1e-3 if dtype == np.complex64 else 1e-10
    assert np.abs(x - want).max() / np.abs(want).max() < tol


def test_batch_isolation_nan_system_leaves_others_bit_identical():
    rng = np.random.default_rng(3)
    s, t, G, H, b = _cl_data(rng, 40, 2, np.float64, batch=(4,))
    clean = solve_cauchy_like(s, t, G, H, b)
    G2 = G.copy()
    G2[1, 0, 5] = np.nan
    got = solve_cauchy_like(s, t, G2, H, b)
    assert np.isnan(got[1]).any()
    assert np.array_equal(got[[0, 2, 3]], clean[[0, 2, 3]])
    alone = solve_cauchy_like(s[2], t[2], G[2], H[2], b[2])
    assert np.array_equal(alone, clean[2])


def test_kernel_slogdet_and_pivots_match_dense():
    rng = np.random.default_rng(4)
    for dtype in (np.float64, np.complex128):
        s, t, G, H, b = _cl_data(rng, 10, 2, dtype, batch=(3,))
        _, sign, la, piv, info = K._gko(np, s, t, G, H, b[:, None, :])
        sd, ld = np.linalg.slogdet(_dense(s, t, G, H))
        assert (info == 0).all() and sign.dtype == dtype
        np.testing.assert_allclose(la, ld, rtol=1e-10)
        np.testing.assert_allclose(sign, sd, atol=1e-10)
        np.testing.assert_allclose(np.log(piv).sum(axis=1), ld, rtol=1e-10)


def test_singular_cauchy_like_raises_and_repeated_cauchy_nodes():
    rng = np.random.default_rng(5)
    s, t, G, H, b = _cl_data(rng, 5, 1, np.float64)
    H[0, 2] = 0.0  # a zero column
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        solve_cauchy_like(s, t, G, H, b)
    with pytest.raises(np.linalg.LinAlgError, match="singular"):  # two equal rows
        solve_cauchy([1.0, 1.0, 2.0], [0.0, 3.0, 4.0], [1.0, 2.0, 3.0])


def test_ill_conditioned_cauchy_warns():
    n = 40
    x = np.arange(n) + 1.0
    with pytest.warns(sla.LinAlgWarning):
        solve_cauchy(x, -x + 1.0, np.ones(n))  # a Hilbert matrix of order 40


def test_bad_inputs():
    s, t, G, H, b = (np.asarray(a) for a in (_S3, _T3, _G3, _H3, _B3))
    with pytest.raises(ValueError, match=r"x_nodes\[..., 1\] == y_nodes\[..., 1\]"):
        solve_cauchy([0.5, 1.0, 2.5], t, b)
    with pytest.raises(ValueError, match="s and t must not share"):
        solve_cauchy_like([0.0, 1.5, 2.5], t, G, H, b)
    with pytest.raises(ValueError, match="t must have length"):
        solve_cauchy_like(s, t[:2], G, H, b)
    with pytest.raises(ValueError, match="b must have length"):
        solve_cauchy_like(s, t, G, H, b[:2])
    with pytest.raises(ValueError, match="same number of rows"):
        solve_cauchy_like(s, t, G, np.ones((2, 3)), b)
    with pytest.raises(ValueError, match="G must have n = 3"):
        solve_cauchy_like(s, t, np.ones((1, 2)), H, b)
    with pytest.raises(ValueError, match="G must have at least 2"):
        solve_cauchy_like(s, t, np.ones(3), H, b)
    with pytest.raises(ValueError, match="broadcast"):
        solve_cauchy_like(np.ones((2, 3)) * s, t, G, H, np.ones((3, 3)))
    with pytest.raises(TypeError, match="b"):
        solve_cauchy(s, t, "abc")
    with pytest.raises(TypeError, match="x_nodes"):
        solve_cauchy(None, t, b)
    with pytest.raises(ValueError, match="grad must have the shape"):
        solve_cauchy_vjp(s, t, b, np.ones(4))


def test_rank_zero_generators_are_singular():
    with pytest.raises(np.linalg.LinAlgError):
        solve_cauchy_like(_S3, _T3, np.ones((0, 3)), np.ones((0, 3)), _B3)


def test_empty_system():
    x = solve_cauchy(np.zeros(0), np.zeros(0), np.zeros(0))
    assert x.shape == (0,)
    assert solve_cauchy_like(np.ones((0, 2)), np.zeros(2), np.ones((1, 2)), np.ones((1, 2)),
                             np.ones(2)).shape == (0, 2)


# ------------------------------------------------------------------------------------- VJPs


def _fd_check(f, args, grads, g, dtype, h=1e-6):
    """Directional finite differences of Re <g, f(args)> against the VJP for each argument."""
    rng = np.random.default_rng(9)
    for i, gi in enumerate(grads):
        d = _rnd(rng, np.shape(args[i]), dtype)
        plus = list(args)
        minus = list(args)
        plus[i] = args[i] + h * d
        minus[i] = args[i] - h * d
        fd = np.real(np.vdot(g, f(*plus) - f(*minus))) / (2 * h)
        an = np.real(np.vdot(gi, d))
        assert abs(fd - an) <= 1e-5 * max(1.0, abs(fd)), (i, fd, an)


@pytest.mark.parametrize("dtype", (np.float64, np.complex128))
def test_solve_cauchy_like_vjp_matches_finite_differences(dtype):
    rng = np.random.default_rng(6)
    args = _cl_data(rng, 6, 2, dtype)
    g = _rnd(rng, (6,), dtype)
    grads = solve_cauchy_like_vjp(*args, g)
    assert [a.shape for a in grads] == [a.shape for a in args]
    assert all(a.dtype == dtype for a in grads)
    _fd_check(solve_cauchy_like, args, grads, g, dtype)


@pytest.mark.parametrize("dtype", (np.float64, np.complex128))
def test_solve_cauchy_vjp_matches_finite_differences(dtype):
    rng = np.random.default_rng(7)
    s, t, _, _, b = _cl_data(rng, 5, 1, dtype)
    g = _rnd(rng, (5,), dtype)
    grads = solve_cauchy_vjp(s, t, b, g)
    _fd_check(solve_cauchy, (s, t, b), grads, g, dtype)


def test_vjp_float32_and_broadcast_sums():
    rng = np.random.default_rng(8)
    s, t, G, H, _ = _cl_data(rng, 4, 1, np.float32)
    b = rng.standard_normal((3, 4)).astype(np.float32)
    g = np.ones((3, 4), np.float32)
    gs, gt, gG, gH, gb = solve_cauchy_like_vjp(s, t, G, H, b, g)
    assert all(a.dtype == np.float32 for a in (gs, gt, gG, gH, gb))
    assert gs.shape == (4,) and gG.shape == (1, 4) and gb.shape == (3, 4)
    per = [solve_cauchy_like_vjp(s, t, G, H, b[i], g[i]) for i in range(3)]
    np.testing.assert_allclose(gs, sum(p[0] for p in per), rtol=1e-4)


# --------------------------------------------------------------------------------- Toeplitz


def test_toeplitz_generators_and_transforms_reproduce_the_matrix():
    """Part E's contract: Z_1 M - M Z_{-1} = G^T H and M = F C F^* D^{-1}."""
    rng = np.random.default_rng(10)
    n = 7
    c, r = rng.standard_normal((1, n)), rng.standard_normal((1, n))
    T = sla.toeplitz(c[0], r[0])
    G, H = K._toeplitz_generators(c, r)
    Z1 = np.roll(np.eye(n), 1, axis=0)
    Zm = Z1.copy()
    Zm[0, -1] = -1
    np.testing.assert_allclose(Z1 @ T - T @ Zm, G[0].T @ H[0], atol=1e-13)
    Gr, Hr = _rnd(rng, (2, 3, n), np.complex128)
    s, t, Gc, Hc = K._toeplitz_like_to_cauchy_like(Gr[None], Hr[None])
    C = _dense(s[0], t[0], Gc[0], Hc[0])
    F = np.fft.fft(np.eye(n), norm="ortho")
    D = np.diag(np.exp(1j * np.pi * np.arange(n) / n))
    M = F @ C @ F.conj().T @ np.linalg.inv(D)
    np.testing.assert_allclose(Z1 @ M - M @ Zm, Gr.T @ Hr, atol=1e-12)
    b = _rnd(rng, (n,), np.complex128)
    y = np.linalg.solve(C, K._to_cauchy_rhs(b))
    np.testing.assert_allclose(M @ K._from_cauchy_solution(y), b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(M),
                               np.linalg.det(C) * K._cauchy_det_factor(n), rtol=1e-10)
    B2 = _rnd(rng, (1, n, 2), np.complex128)
    x, sign, la = K._gko_solve_toeplitz_like(Gr[None], Hr[None], B2)
    np.testing.assert_allclose(M @ x[0], B2[0], atol=1e-11)
    np.testing.assert_allclose(sign[0] * np.exp(la[0]), np.linalg.det(M), rtol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gko_solve_toeplitz_matches_dense(dtype):
    rng = np.random.default_rng(11)
    B, n, k = 2, 33, 3
    c, r, b = _rnd(rng, (B, n), dtype), _rnd(rng, (B, n), dtype), _rnd(rng, (B, n, k), dtype)
    x, sign, la = K.gko_solve_toeplitz(c, r, b)
    assert x.dtype == dtype and sign.dtype == dtype and x.shape == (B, n, k)
    assert la.dtype == np.finfo(dtype).dtype
    single = np.dtype(dtype) in (np.float32, np.complex64)
    for i in range(B):
        T = sla.toeplitz(c[i].astype(np.complex128), r[i])
        want = np.linalg.solve(T, b[i])
        err = np.abs(x[i] - want).max() / np.abs(want).max()
        assert err < (1e-3 if single else 1e-10) * np.linalg.cond(T) / 10 + (1e-4 if single
                                                                              else 1e-12)
        sd, ld = np.linalg.slogdet(T)
        np.testing.assert_allclose(la[i], ld, rtol=1e-4 if single else 1e-10)
        np.testing.assert_allclose(sign[i], sd, atol=1e-4 if single else 1e-10)


def test_toeplitz_with_zero_leading_minors():
    """c = [0, 1, ...], r = [0, 2, ...]: T[0, 0] = 0 (Levinson breaks down), T nonsingular."""
    rng = np.random.default_rng(12)
    n = 64
    c = np.concatenate([[0.0, 1.0], rng.standard_normal(n - 2)])
    r = np.concatenate([[0.0, 2.0], rng.standard_normal(n - 2)])
    T = sla.toeplitz(c, r)
    b = rng.standard_normal((n, 1))
    with pytest.raises(np.linalg.LinAlgError):
        sla.solve_toeplitz((c, r), b)
    x, _, _ = K.gko_solve_toeplitz(c[None], r[None], b[None])
    xl = sla.lu_solve(sla.lu_factor(T), b)
    assert _berr(T, x[0], b) <= 10 * max(_berr(T, xl, b), np.finfo(float).eps)


def test_indefinite_nonsymmetric_toeplitz_backward_error_n256():
    rng = np.random.default_rng(13)
    n = 256
    c, r = rng.standard_normal(n), rng.standard_normal(n)
    T = sla.toeplitz(c, r)
    b = rng.standard_normal((n, 2))
    x, sign, la = K.gko_solve_toeplitz(c[None], r[None], b[None])
    xl = sla.lu_solve(sla.lu_factor(T), b)
    assert _berr(T, x[0], b) <= 10 * _berr(T, xl, b)
    sd, ld = np.linalg.slogdet(T)
    assert sign[0] == sd
    np.testing.assert_allclose(la[0], ld, rtol=1e-12)


def test_refinement_step_runs_and_keeps_the_better_solution(monkeypatch):
    rng = np.random.default_rng(14)
    n = 50
    c, r = rng.standard_normal((2, n)), rng.standard_normal((2, n))
    b = rng.standard_normal((2, n, 1))
    monkeypatch.setattr(K, "REFINE_ABOVE", 0.0)  # refine every system
    x, _, _ = K.gko_solve_toeplitz(c, r, b)
    for i in range(2):
        T = sla.toeplitz(c[i], r[i])
        assert _berr(T, x[i], b[i]) < 1e-15


def test_exactly_singular_toeplitz_raises():
    n = 16
    for c, r in ((np.ones(n), np.ones(n)), (np.arange(n, dtype=float), -np.arange(n) * 1.0)):
        with pytest.raises(np.linalg.LinAlgError, match="singular"):
            K.gko_solve_toeplitz(c[None], r[None], np.ones((1, n, 1)))
    c = np.stack([np.arange(1.0, n + 1), np.ones(n)])
    with pytest.raises(np.linalg.LinAlgError, match="system 1"):
        K.gko_solve_toeplitz(c, c.copy(), np.ones((2, n, 1)))
    _, sign, la = K.gko_solve_toeplitz(c, c.copy(), np.ones((2, n, 0)))  # slogdet only
    sd, ld = np.linalg.slogdet(sla.toeplitz(c[0]))
    assert sign[0] == sd and np.isclose(la[0], ld) and sign[1] == 0 and la[1] == -np.inf


def test_toeplitz_nan_system_stays_in_its_row():
    rng = np.random.default_rng(15)
    c, r, b = rng.standard_normal((3, 20)), rng.standard_normal((3, 20)), rng.standard_normal(
        (3, 20, 1))
    clean = K.gko_solve_toeplitz(c, r, b)[0]
    c2 = c.copy()
    c2[1, 4] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = K.gko_solve_toeplitz(c2, r, b)[0]
    assert np.isnan(got[1]).all()
    assert np.array_equal(got[[0, 2]], clean[[0, 2]])


def _solve1(c, r, dtype=np.float64, k=1):
    c = np.asarray(c, dtype)[None]
    r = np.asarray(r, dtype)[None]
    return K.gko_solve_toeplitz(c, r, np.ones((1, c.shape[1], k), dtype))


def test_strictly_triangular_toeplitz_raises():
    """Exact zeros become rounding-level pivots after the FFTs: the scale-aware test (pivot
    against ||T||_F) must still see a singular matrix, for every size and dtype."""
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        _solve1([0.0, 2.0, 1.0], [0.0, 0.0, 0.0])
    rng = np.random.default_rng(21)
    for n in (2, 5, 16, 33, 64, 130):
        v = np.concatenate([[0.0], rng.standard_normal(n - 1)])
        for dtype in (np.float64, np.complex128, np.float32):
            for c, r in ((v, np.zeros(n)), (np.zeros(n), v)):
                with pytest.raises(np.linalg.LinAlgError, match="singular"):
                    _solve1(c, r, dtype)
    _, sign, la = _solve1([0.0, 2.0, 1.0], [0.0, 0.0, 0.0], k=0)  # slogdet: det 0
    assert sign[0] == 0 and la[0] == -np.inf


def test_rank_deficient_toeplitz_raises():
    for n in (3, 8, 40, 100):
        k = np.arange(n)
        alt = (-1.0) ** k  # (-1)^(i-j): rank 1
        cs = np.cos(0.7 * k)  # cos(w (i - j)): rank 2
        mix = np.cos(0.3 * k) + 0.5 * np.cos(1.9 * k)  # rank 4
        for c in (alt, cs, 3e5 * cs, 1e-7 * alt) + ((mix,) if n > 4 else ()):
            assert np.linalg.matrix_rank(sla.toeplitz(c)) < n
            with pytest.raises(np.linalg.LinAlgError, match="singular"):
                _solve1(c, c)


def test_zero_matrix_raises():
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        _solve1(np.zeros(4), np.zeros(4))


def test_singular_hankel_through_solve_hankel_auto_raises():
    from structlin.hankel import solve_hankel

    # c = [1, 2, 0]: H = [[1, 2, 0], [2, 0, 0], [0, 0, 0]] (r = 0), zero last row
    with pytest.raises(np.linalg.LinAlgError):
        solve_hankel([1.0, 2.0, 0.0], np.ones(3), method="auto")
    with pytest.raises(np.linalg.LinAlgError):
        solve_hankel([1.0, 2.0, 0.0], np.ones(3), method="gko")


def test_ill_conditioned_toeplitz_warns_and_solves():
    """cos(w (i - j)) + d I: rank 2 plus a small diagonal, cond ~ ||T|| / d. Inside the warning
    band (pivot / ||T||_F between SINGULAR_TOL and SINGULAR_TOL * WARN_TOL times n eps): a
    warning, and a solution with a small backward error."""
    for n, d in ((16, 2e-12), (64, 1e-10)):
        c = np.cos(0.7 * np.arange(n))
        c[0] += d
        T = sla.toeplitz(c)
        b = np.random.default_rng(22).standard_normal((n, 1))
        with pytest.warns(sla.LinAlgWarning, match="pivot ratio"):
            x, _, _ = K.gko_solve_toeplitz(c[None], c[None], b[None])
        assert np.isfinite(x).all()
        assert _berr(T, x[0], b) < 1e-13
    # moderately ill-conditioned (KMS, cond ~ 3e6): solved, no warning
    c = 0.99999 ** np.arange(16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, _, _ = K.gko_solve_toeplitz(c[None], c[None], np.ones((1, 16, 1)))
    assert _berr(sla.toeplitz(c), x[0], np.ones((16, 1))) < 1e-14
    # a Gaussian Toeplitz matrix of rcond ~ 1e-18 is singular to working precision
    k = np.arange(64)
    g = np.exp(-(k**2) / 20.0)
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        K.gko_solve_toeplitz(g[None], g[None], np.ones((1, 64, 1)))


def test_toeplitz_fro_matches_dense_and_is_scale_safe():
    rng = np.random.default_rng(23)
    c, r = rng.standard_normal((2, 7)) + 1j * rng.standard_normal((2, 7))
    got = K._toeplitz_fro(np, c[None], r[None])
    np.testing.assert_allclose(got, [np.linalg.norm(sla.toeplitz(c, r))], rtol=1e-13)
    big = K._toeplitz_fro(np, np.full((1, 3), 1e300), np.full((1, 3), 1e300))
    np.testing.assert_allclose(big, [3e300], rtol=1e-13)


def test_toeplitz_sizes_one_and_zero():
    x, sign, la = K.gko_solve_toeplitz(np.array([[-2.0]]), np.array([[5.0]]),
                                       np.array([[[4.0, 2.0]]]))
    np.testing.assert_allclose(x, [[[-2.0, -1.0]]])
    assert sign[0] == -1 and np.isclose(la[0], np.log(2))
    x, sign, la = K.gko_solve_toeplitz(np.zeros((2, 0)), np.zeros((2, 0)), np.zeros((2, 0, 1)))
    assert x.shape == (2, 0, 1) and (sign == 1).all() and (la == 0).all()


# ------------------------------------------------------------------------------- hypothesis


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 24), r=st.integers(1, 3), seed=st.integers(0, 2**16),
       cplx=st.booleans())
def test_property_residual_and_transpose(n, r, seed, cplx):
    """C x = b to a small residual, and the adjoint solve of the VJP solves C^H y = g."""
    rng = np.random.default_rng(seed)
    dtype = np.complex128 if cplx else np.float64
    s, t, G, H, b = _cl_data(rng, n, r, dtype)
    C = _dense(s, t, G, H)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sla.LinAlgWarning)
        try:
            x = solve_cauchy_like(s, t, G, H, b)
        except np.linalg.LinAlgError:
            return
        gb = solve_cauchy_like_vjp(s, t, G, H, b, b)[4]
    scale = np.abs(C).max() * np.abs(x).max() + np.abs(b).max()
    assert np.abs(C @ x - b).max() <= 1e-10 * scale * n
    scale = np.abs(C).max() * np.abs(gb).max() + np.abs(b).max()
    assert np.abs(C.conj().T @ gb - b).max() <= 1e-10 * scale * n
