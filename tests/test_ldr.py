"""Tests of the low displacement rank module (structlin/ldr.py): the conformance checks of
``ldr_multiply`` for every kind (a linear operator in ``x``; gradients of the generators and
of the array operator parameters against finite differences), the reference ``ldr_to_dense``
against the defining displacement equations, the Krylov identities of the subdiagonal
divide and conquer, ``ldr_compress`` round trips and displacement ranks, ``ldr_solve``
against dense solves, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from structlin import ldr
from structlin.ldr import (
    displacement,
    ldr_compress,
    ldr_multiply,
    ldr_multiply_vjp,
    ldr_solve,
    ldr_solve_vjp,
    ldr_to_dense,
)
from tests import conformance as cf
from tests.strategies import random_array, tolerance

_G4 = np.array([[1.0, 2.0, -1.0, 0.5], [0.0, 1.0, 1.0, 2.0]])
_H4 = np.array([[1.0, 1.0, 3.0, -1.0], [2.0, 0.0, 1.0, 1.0]])
_X4 = np.array([1.0, 0.0, 2.0, -1.0])
_A3 = np.array([0.5, 1.0, -1.0])
_S4 = np.array([0.5, 1.5, 2.5, 3.5])
_T4 = np.array([0.0, 1.0, 2.0, 3.0])

#: one small valid call of each public function (merged into tests/test_public_api_probe.py)
PROBE = {
    "displacement": lambda: ((np.eye(3), np.eye(3) * 2, np.eye(3)), {"kind": "sylvester"}),
    "ldr_to_dense": lambda: ((_G4, _H4, "subdiagonal"), {"subdiag_A": _A3, "subdiag_B": _A3}),
    "ldr_compress": lambda: ((scipy.linalg.toeplitz([1.0, 2.0, 3.0]), "toeplitz"), {}),
    "ldr_multiply": lambda: ((_G4, _H4, _X4, "subdiagonal"),
                             {"subdiag_A": _A3, "subdiag_B": _A3}),
    "ldr_multiply_vjp": lambda: ((_G4, _H4, _X4, _X4, "cauchy"), {"s": _S4, "t": _T4}),
    "ldr_solve": lambda: ((_G4, _H4, _X4, "vandermonde"), {"nodes": _S4, "f": 0.5}),
    "ldr_solve_vjp": lambda: ((_G4, _H4, _X4, _X4, "hankel"), {}),
}


def _params(kind, n, rng, dtype, corners=False):
    """Operator parameters of ``kind`` (well-separated Cauchy nodes, Vandermonde nodes whose
    ``n``-th powers stay away from ``f``, subdiagonals of modulus below 1)."""
    cplx = np.dtype(dtype).kind == "c"
    if kind == "cauchy":
        s = np.arange(n) + 0.5 + rng.uniform(-0.1, 0.1, n)
        t = np.arange(n) + rng.uniform(-0.1, 0.1, n)
        if cplx:
            s, t = s + 1j * rng.uniform(-1, 1, n), t + 1j * rng.uniform(-1, 1, n)
        return {"s": s.astype(dtype), "t": t.astype(dtype)}
    if kind == "vandermonde":
        z = rng.uniform(0.7, 1.1, n) * (np.exp(1j * rng.uniform(-0.3, 0.3, n)) if cplx else 1)
        return {"nodes": z.astype(dtype), "f": 0.25}
    if kind == "subdiagonal":
        kw = {"subdiag_A": (0.9 * random_array(rng, (n - 1,), dtype)).astype(dtype),
              "subdiag_B": (0.9 * random_array(rng, (n - 1,), dtype)).astype(dtype)}
        if corners:
            kw.update(f_A=0.5, f_B=-0.75)
        return kw
    return {}


class _LdrConformance(cf.OperatorConformance):
    kind = "toeplitz"
    n = 6
    r = 2
    corners = False
    tol_factor = 4.0
    vjp_rtol = 1e-5

    def _scalars(self):
        return {"f": 0.25} if self.kind == "vandermonde" else (
            {"f_A": 0.5, "f_B": -0.75} if self.corners else {})

    def make_params(self, rng, dtype):
        p = {"G": random_array(rng, (self.r, self.n), dtype),
             "H": random_array(rng, (self.r, self.n), dtype)}
        ops = _params(self.kind, self.n, rng, dtype)
        p.update({k: v for k, v in ops.items() if isinstance(v, np.ndarray)})
        return p

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, self.n), dtype)

    def _split(self, p):
        ops = {k: v for k, v in p.items() if k not in ("G", "H")}
        return p["G"], p["H"], {**ops, **self._scalars()}

    def fast(self, p, x):
        G, H, ops = self._split(p)
        return ldr_multiply(G, H, x, self.kind, **ops)

    def dense(self, p):
        G, H, ops = self._split(p)
        return ldr_to_dense(G, H, self.kind, **ops)

    def vjp(self, p, x, g):
        G, H, ops = self._split(p)
        grads = ldr_multiply_vjp(G, H, x, g, self.kind, **ops)
        names = ("G", "H", "x", *ldr._ARRAYS[self.kind])
        return dict(zip(names, grads, strict=True))

    def bad_inputs(self):
        n = self.n
        G, H, x = np.ones((2, n)), np.ones((2, n)), np.ones(n)
        ops = {k: v for k, v in _params(self.kind, n, np.random.default_rng(0),
                                        np.float64).items()}
        out = [
            ("H of another rank", lambda: ldr_multiply(G, np.ones((3, n)), x, self.kind, **ops),
             ValueError, r"H must have shape \(\.\.\., r, n\)"),
            ("x of the wrong length", lambda: ldr_multiply(G, H, np.ones(n + 1), self.kind,
                                                           **ops), ValueError, "x must have"),
            ("an unknown kind", lambda: ldr_multiply(G, H, x, "circulant"), ValueError, "kind"),
            ("an unknown keyword", lambda: ldr_multiply(G, H, x, self.kind, nodez=x, **ops),
             TypeError, "nodez"),
            ("G a vector", lambda: ldr_multiply(np.ones(n), H, x, self.kind, **ops),
             ValueError, "G must have at least 2"),
            ("grad of the wrong shape", lambda: ldr_multiply_vjp(G, H, x, np.ones(n + 2),
                                                                 self.kind, **ops),
             ValueError, "grad must have shape"),
        ]
        for key in ldr._ARRAYS[self.kind]:
            rest = {k: v for k, v in ops.items() if k != key}
            out.append((f"missing {key}", lambda rest=rest: ldr_multiply(G, H, x, self.kind,
                                                                         **rest),
                        ValueError, key))
            short = {**ops, key: np.ones(3 * n)}
            out.append((f"{key} of the wrong length",
                        lambda short=short: ldr_multiply(G, H, x, self.kind, **short),
                        ValueError, f"{key} must have length"))
        return out


class TestToeplitzLike(_LdrConformance):
    kind = "toeplitz"


class TestHankelLike(_LdrConformance):
    kind = "hankel"
    n = 5


class TestCauchyLike(_LdrConformance):
    kind = "cauchy"
    n = 5


class TestVandermondeLike(_LdrConformance):
    kind = "vandermonde"
    n = 5
    vjp_rtol = 1e-4


class TestSubdiagonal(_LdrConformance):
    kind = "subdiagonal"
    n = 40  # above LEAF: the divide-and-conquer levels and the padding to 64 run
    r = 3


class TestSubdiagonalCorners(_LdrConformance):
    kind = "subdiagonal"
    n = 7
    corners = True


# ---------------------------------------------------------------------------------------------
# the reference against the definitions


def _dense_operators(kind, n, ops):
    def shift(f):
        Z = np.diag(np.ones(n - 1), -1).astype(complex)
        Z[0, -1] += f
        return Z

    def sub(a, f):
        S = np.diag(np.asarray(a, complex), -1) if n > 1 else np.zeros((1, 1), complex)
        S[0, -1] += f
        return S

    if kind == "toeplitz":
        return shift(1), shift(-1), "sylvester"
    if kind == "hankel":
        return shift(1), shift(-1).T, "sylvester"
    if kind == "cauchy":
        return np.diag(ops["s"]), np.diag(ops["t"]), "sylvester"
    if kind == "vandermonde":
        return np.diag(ops["nodes"]), shift(ops.get("f", 0.0)), "sylvester"
    return (sub(ops["subdiag_A"], ops.get("f_A", 0.0)), sub(ops["subdiag_B"], ops.get("f_B", 0.0)),
            "stein")


@pytest.mark.parametrize("kind", ldr.KINDS)
@pytest.mark.parametrize("n", [1, 2, 9])
def test_dense_reference_satisfies_its_displacement_equation(kind, n):
    rng = np.random.default_rng(n)
    G, H = random_array(rng, (3, n), np.complex128), random_array(rng, (3, n), np.complex128)
    ops = _params(kind, n, rng, np.complex128, corners=True)
    M = ldr_to_dense(G, H, kind, **ops)
    A, B, typ = _dense_operators(kind, n, ops)
    np.testing.assert_allclose(displacement(M, A, B, typ), G.T @ H, atol=1e-12 * n)


def test_subdiagonal_reference_is_the_sum_of_krylov_products():
    rng = np.random.default_rng(3)
    n, r = 6, 2
    G, H = rng.standard_normal((r, n)), rng.standard_normal((r, n))
    a, b = rng.standard_normal(n - 1), rng.standard_normal(n - 1)
    A, B = np.diag(a, -1), np.diag(b, -1)

    def K(A, v):
        return np.stack([np.linalg.matrix_power(A, j) @ v for j in range(n)], axis=1)

    want = sum(K(A, G[i]) @ K(B.T, H[i]).T for i in range(r))
    np.testing.assert_allclose(ldr_to_dense(G, H, "subdiagonal", subdiag_A=a, subdiag_B=b),
                               want, atol=1e-12)


@pytest.mark.parametrize("n", [1, 31, 32, 33, 70])
@pytest.mark.parametrize("f", [0.0, 0.6])
def test_krylov_identities_of_the_divide_and_conquer(n, f):
    """``_krylov(u, g) = K(A, g) u``, ``_krylov_t(w, g) = [w^T A^d g]_d``, ``K(A^T, w) u``
    and the derivative ``d(w^T K(A, g) u)/da`` against the dense matrices (with a zero
    weight: no division anywhere)."""
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n - 1) * 0.9
    if n > 5:
        a[4] = 0.0
    w, u, g = (rng.standard_normal(n) for _ in range(3))
    A = (np.diag(a, -1) if n > 1 else np.zeros((1, 1)))
    A[0, -1] += f
    powers = [np.linalg.matrix_power(A, j) for j in range(n)]
    KAg = np.stack([P @ g for P in powers], axis=1)
    KAw = np.stack([P.T @ w for P in powers], axis=1)
    ker = ldr.kernels(np, "ldr")

    def row(v):
        return v[None, :]

    np.testing.assert_allclose(ldr._krylov(np, ker, row(a), f, row(u), row(g))[0], KAg @ u,
                               atol=1e-12)
    np.testing.assert_allclose(ldr._krylov_t(np, ker, row(a), f, row(w), row(g))[0],
                               w @ KAg, atol=1e-12)
    np.testing.assert_allclose(ldr._krylov_adj(np, ker, row(a), f, row(w), row(u))[0],
                               KAw @ u, atol=1e-12)
    ga = ldr._krylov_grad(np, ker, row(a), f, row(w), row(u), row(g))[0]
    h = 1e-6
    for l in range(0, n - 1, max(1, (n - 1) // 7)):
        d = np.zeros(n - 1)
        d[l] = h
        Ap, Am = A.copy(), A.copy()
        Ap[l + 1, l] += h
        Am[l + 1, l] -= h

        def T(M):
            return w @ sum(u[j] * np.linalg.matrix_power(M, j) @ g for j in range(n))

        assert abs((T(Ap) - T(Am)) / (2 * h) - ga[l]) < 1e-6 * max(1, abs(ga[l]))


# ---------------------------------------------------------------------------------------------
# ldr_compress


def test_toeplitz_and_hankel_matrices_have_displacement_rank_two():
    rng = np.random.default_rng(0)
    c, r = rng.standard_normal(12), rng.standard_normal(12)
    for kind, M in (("toeplitz", scipy.linalg.toeplitz(c, r)),
                    ("hankel", scipy.linalg.hankel(c, r))):
        G, H = ldr_compress(M, kind)
        assert G.shape == H.shape == (2, 12)
        np.testing.assert_allclose(ldr_to_dense(G, H, kind), M, atol=1e-12)
        x = rng.standard_normal(12)
        np.testing.assert_allclose(ldr_multiply(G, H, x, kind), M @ x, atol=1e-12)


def test_cauchy_and_vandermonde_matrices_have_displacement_rank_one():
    rng = np.random.default_rng(1)
    s, t = np.arange(8) + 0.5, np.arange(8) * 1.0 + rng.uniform(-0.1, 0.1, 8)
    C = 1 / (s[:, None] - t)
    G, H = ldr_compress(C, "cauchy", s=s, t=t)
    assert G.shape == (1, 8)
    np.testing.assert_allclose(ldr_to_dense(G, H, "cauchy", s=s, t=t), C, atol=1e-12)
    z = np.linspace(0.6, 1.2, 8)
    V = np.vander(z, increasing=True)
    G, H = ldr_compress(V, "vandermonde", nodes=z)
    assert G.shape == (1, 8)
    np.testing.assert_allclose(ldr_to_dense(G, H, "vandermonde", nodes=z), V, rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_compress_round_trip_of_subdiagonal_ldr_matrices(dtype):
    rng = np.random.default_rng(2)
    n, r = 10, 3
    G, H = random_array(rng, (2, r, n), dtype), random_array(rng, (2, r, n), dtype)
    ops = _params("subdiagonal", n, rng, dtype, corners=True)
    M = ldr_to_dense(G, H, "subdiagonal", **ops)
    G2, H2 = ldr_compress(M, "subdiagonal", **ops)
    assert G2.shape == (2, r, n) and G2.dtype == dtype
    M2 = ldr_to_dense(G2, H2, "subdiagonal", **ops)
    np.testing.assert_allclose(M2, M, atol=tolerance(dtype, n) * 100 * np.abs(M).max())


def test_compress_of_a_noisy_matrix_keeps_the_best_rank_r_displacement():
    rng = np.random.default_rng(4)
    n = 16
    T = scipy.linalg.toeplitz(rng.standard_normal(n), rng.standard_normal(n))
    M = T + 1e-3 * rng.standard_normal((n, n))
    A, B, _ = _dense_operators("toeplitz", n, {})
    D = displacement(M, A, B)
    sv = np.linalg.svd(D, compute_uv=False)
    assert ldr_compress(M, "toeplitz")[0].shape[0] == n  # noise: full numerical rank
    assert ldr_compress(M, "toeplitz", tol=1e-1)[0].shape[0] == 2
    for rank in (1, 2, 5):
        G, H = ldr_compress(M, "toeplitz", rank)
        E = displacement(ldr_to_dense(G, H, "toeplitz"), A, B) - D
        assert abs(np.linalg.norm(E, 2) - sv[rank]) < 1e-10


# ---------------------------------------------------------------------------------------------
# ldr_solve


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("kind", ["toeplitz", "hankel", "vandermonde", "cauchy"])
def test_solve_matches_the_dense_solve(kind, dtype):
    rng = np.random.default_rng(5)
    n = 12
    G, H = random_array(rng, (2, 2, n), dtype), random_array(rng, (2, 2, n), dtype)
    ops = _params(kind, n, rng, dtype)
    b = random_array(rng, (2, n), dtype)
    x = ldr_solve(G, H, b, kind, **ops)
    assert x.dtype == dtype and x.shape == (2, n)
    M = ldr_to_dense(G, H, kind, **ops)
    res = np.abs(np.einsum("bij,bj->bi", M, x) - b).max()
    want = np.stack([np.linalg.solve(M[i], b[i]) for i in range(2)])
    res_dense = np.abs(np.einsum("bij,bj->bi", M, want) - b).max()
    assert res <= 1e3 * max(res_dense, 1e-15 * np.abs(b).max()), (res, res_dense)


class TestToeplitzLikeSolve(_LdrConformance):
    """``ldr_solve`` as the linear operator ``b -> M^{-1} b`` (every conformance check)."""

    kind = "toeplitz"
    x_name = "b"
    tol_factor = 200.0
    vjp_rtol = 1e-5

    def make_params(self, rng, dtype):
        p = super().make_params(rng, dtype)
        p["G"][0] += 3 * np.eye(1, self.n, dtype=dtype)[0]  # a diagonally dominant part
        p["H"][0] += 3 * np.eye(1, self.n, dtype=dtype)[0]
        return p

    def fast(self, p, x):
        G, H, ops = self._split(p)
        return ldr_solve(G, H, x, self.kind, **ops)

    def dense(self, p):
        return np.linalg.inv(super().dense(p))

    def vjp(self, p, x, g):
        G, H, ops = self._split(p)
        return dict(zip(("G", "H", "x"), ldr_solve_vjp(G, H, x, g, self.kind, **ops),
                        strict=True))

    def bad_inputs(self):
        G = np.ones((2, self.n))
        return [("b of the wrong length", lambda: ldr_solve(G, G, np.ones(3), self.kind),
                 ValueError, "b must have length")]


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("kind", ["hankel", "vandermonde", "cauchy"])
def test_solve_vjp_matches_finite_differences(kind, dtype):
    rng = np.random.default_rng(7)
    n = 6
    p = {"G": random_array(rng, (2, n), dtype), "H": random_array(rng, (2, n), dtype)}
    ops = _params(kind, n, rng, dtype)
    p.update({k: v for k, v in ops.items() if isinstance(v, np.ndarray)})
    scal = {k: v for k, v in ops.items() if not isinstance(v, np.ndarray)}
    names = ("G", "H", "x", *ldr._ARRAYS[kind])

    def fast(q, b):
        rest = {k: v for k, v in q.items() if k not in ("G", "H")}
        return ldr_solve(q["G"], q["H"], b, kind, **rest, **scal)

    def vjp(q, b, g):
        rest = {k: v for k, v in q.items() if k not in ("G", "H")}
        return dict(zip(names, ldr_solve_vjp(q["G"], q["H"], b, g, kind, **rest, **scal),
                        strict=True))

    b = random_array(rng, (2, n), dtype)
    g = random_array(rng, (2, n), dtype)
    cf.check_vjp(cf.OperatorSpec(fast=fast, dense=None, vjp=vjp), p, b, g, rtol=1e-5, rng=rng)


def test_solve_refuses_the_subdiagonal_kind_and_lists_the_others():
    with pytest.raises(ValueError, match=r"subdiagonal.*toeplitz"):
        ldr_solve(_G4, _H4, _X4, "subdiagonal", subdiag_A=_A3, subdiag_B=_A3)


# ---------------------------------------------------------------------------------------------
# displacement and bad inputs


def test_displacement_batched_sylvester_and_stein():
    rng = np.random.default_rng(6)
    M, A, B = rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 3)), rng.standard_normal(
        (2, 4, 4))
    np.testing.assert_allclose(displacement(M, A, B), A @ M - M @ B)
    np.testing.assert_allclose(displacement(M, A, B, "stein"), M - A @ M @ B)
    with pytest.raises(ValueError, match="A must have shape"):
        displacement(M, np.ones((4, 4)), B)
    with pytest.raises(ValueError, match="kind"):
        displacement(M, A, B, "lyapunov")


def test_operators_that_do_not_determine_the_matrix_are_refused():
    G = np.ones((1, 3))
    with pytest.raises(ValueError, match=r"s\[..., 1\] == t\[..., 0\]"):
        ldr_multiply(G, G, np.ones(3), "cauchy", s=[0.0, 2.0, 5.0], t=[2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="nodes"):
        ldr_multiply(G, G, np.ones(3), "vandermonde", nodes=[1.0, 2.0, 3.0], f=8.0)
    with pytest.raises(ValueError, match="Stein"):
        ldr_multiply(G, G, np.ones(3), "subdiagonal", subdiag_A=[1.0, 1.0],
                     subdiag_B=[1.0, 1.0], f_A=1.0, f_B=1.0)
    with pytest.raises(TypeError, match="f_A"):
        ldr_multiply(G, G, np.ones(3), "subdiagonal", subdiag_A=[1.0, 1.0],
                     subdiag_B=[1.0, 1.0], f_A="1")
    with pytest.raises(ValueError, match="M must be square"):
        ldr_compress(np.ones((3, 4)), "toeplitz")
    with pytest.raises(ValueError, match="rank must be at most 3"):
        ldr_compress(np.eye(3), "toeplitz", 4)
    with pytest.raises(ValueError, match="M must be finite"):
        ldr_compress(np.full((3, 3), np.nan), "toeplitz")


# ---------------------------------------------------------------------------------------------
# property


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(ldr.KINDS), n=st.integers(1, 70), r=st.integers(1, 3),
       seed=st.integers(0, 2**16), cplx=st.booleans())
def test_fast_product_equals_the_dense_reference(kind, n, r, seed, cplx):
    dtype = np.complex128 if cplx else np.float64
    rng = np.random.default_rng(seed)
    G, H = random_array(rng, (r, n), dtype), random_array(rng, (r, n), dtype)
    x = random_array(rng, (2, n), dtype)
    ops = _params(kind, n, rng, dtype, corners=bool(seed % 2))
    M = ldr_to_dense(G, H, kind, **ops)
    want = x @ M.T
    got = ldr_multiply(G, H, x, kind, **ops)
    assert np.abs(got - want).max() <= 1e-10 * max(1.0, np.abs(want).max())
