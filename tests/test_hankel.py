"""Tests of structlin/hankel.py: conformance of the Hankel product (rectangular) and solve (as
the linear map ``b -> H^{-1} b``), equality with the dense :func:`scipy.linalg.hankel` on
batched inputs, the default zero last row, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from numpy.linalg import LinAlgError

import structlin.hankel as H
from tests import conformance as cf
from tests.strategies import random_array

PROBE = {
    "matmul_hankel": lambda: (((np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0])),
                               np.array([1.0, 2.0])), {}),
    "solve_hankel": lambda: (((np.array([1.0, 2.0, 5.0]), np.array([5.0, 4.0, 1.0])),
                              np.array([1.0, 2.0, 3.0])), {}),
    "matmul_hankel_vjp": lambda: (((np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0])),
                                   np.array([1.0, 2.0]), np.array([1.0, 0.0, 1.0])), {}),
    "solve_hankel_vjp": lambda: (((np.array([1.0, 2.0, 5.0]), np.array([5.0, 4.0, 1.0])),
                                  np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 1.0])), {}),
}

N = 5


def _anti_dominant(rng, dtype, shape=()):
    """``c``, ``r`` of a Hankel matrix whose Toeplitz form ``J H`` is diagonally dominant:
    large entries on the anti-diagonal (``c[-1]``, ``r[0]``)."""
    c = random_array(rng, (*shape, N), dtype, scale=0.5)
    r = random_array(rng, (*shape, N), dtype, scale=0.5)
    c[..., -1] += N + 1.0
    r[..., 0] = c[..., -1]
    return c, r


class TestMatmulHankelConformance(cf.OperatorConformance):
    """``matmul_hankel((c, r), x)`` with a rectangular 5 x 3 ``H``, on ``x[..., None]``."""

    fake_cupy_mix = False

    def make_params(self, rng, dtype):
        return {"c": random_array(rng, 5, dtype), "r": random_array(rng, 3, dtype)}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, 3), dtype)

    def fast(self, p, x):
        x = np.asarray(x) if isinstance(x, list) else x
        return H.matmul_hankel((p["c"], p["r"]), x[..., None])[..., 0]

    def dense(self, p):
        return sla.hankel(p["c"], p["r"])

    def vjp(self, p, x, g):
        gc, gr, gx = H.matmul_hankel_vjp((p["c"], p["r"]), x[..., None], g[..., None])
        return {"c": gc, "r": gr, "x": gx[..., 0]}

    def bad_inputs(self):
        return [
            ("x of the wrong length", lambda: H.matmul_hankel(([1.0, 2.0], [2.0, 3.0, 4.0]),
                                                              np.ones(2)),
             ValueError, "x must have 3 entries"),
            ("scalar c", lambda: H.matmul_hankel(1.0, [1.0]), ValueError, "c_or_cr must have"),
            ("grad missing", lambda: H.matmul_hankel_vjp([1.0], [1.0], None), TypeError,
             "grad"),
        ]


class TestSolveHankelConformance(cf.OperatorConformance):
    """``solve_hankel((c, r), b)`` as ``b -> H^{-1} b``, differentiated in ``c``, ``r``, ``b``."""

    fake_cupy_mix = False
    x_name = "b"

    def make_params(self, rng, dtype):
        c, r = _anti_dominant(rng, dtype)
        return {"c": c, "r": r}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, N), dtype)

    def fast(self, p, x):
        x = np.asarray(x) if isinstance(x, list) else x
        return H.solve_hankel((p["c"], p["r"]), x[..., None], False)[..., 0]

    def dense(self, p):
        return np.linalg.inv(sla.hankel(p["c"], p["r"]))

    def vjp(self, p, x, g):
        gc, gr, gb = H.solve_hankel_vjp((p["c"], p["r"]), x[..., None], g[..., None], False)
        return {"c": gc, "r": gr, "x": gb[..., 0]}

    def bad_inputs(self):
        return [
            ("not square", lambda: H.solve_hankel(([1.0, 2.0], [2.0]), [1.0, 1.0]), ValueError,
             "r must have the length of c"),
            ("b of the wrong length", lambda: H.solve_hankel([1.0, 2.0], [1.0]), ValueError,
             "b must have 2 entries"),
            ("an unknown method", lambda: H.solve_hankel([1.0, 2.0], [1.0, 1.0], method="x"),
             ValueError, "method must be one of"),
        ]


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_batched_calls_equal_the_dense_hankel_matrices(dtype):
    rng = np.random.default_rng(1)
    c, r = _anti_dominant(rng, dtype, (3,))
    b = random_array(rng, (2, 3, N, 2), dtype)
    x = H.solve_hankel((c, r), b)
    y = H.matmul_hankel((c, r), b)
    assert x.shape == y.shape == (2, 3, N, 2)
    for i in range(3):
        Hd = sla.hankel(c[i], r[i])
        np.testing.assert_allclose(x[:, i], np.linalg.solve(Hd, b[:, i]), rtol=1e-11,
                                   atol=1e-12)
        np.testing.assert_allclose(y[:, i], Hd @ b[:, i], rtol=1e-12, atol=1e-12)


def test_c_alone_means_a_zero_last_row():
    rng = np.random.default_rng(2)
    c = random_array(rng, N, np.float64)
    c[-1] = 3.0
    b = random_array(rng, N, np.float64)
    Hd = sla.hankel(c)
    np.testing.assert_allclose(H.matmul_hankel(c, b), Hd @ b, atol=1e-12)
    np.testing.assert_allclose(H.solve_hankel(c, b), np.linalg.solve(Hd, b), rtol=1e-10)
    g = random_array(rng, N, np.float64)
    _, gb = H.solve_hankel_vjp(c, b, g)
    np.testing.assert_allclose(gb, np.linalg.solve(Hd.T, g), rtol=1e-10)
    gc2, gx = H.matmul_hankel_vjp(c, b, g)
    np.testing.assert_allclose(gx, Hd.T @ g, atol=1e-12)
    # grad_c[d] sums g_i b_j over the anti-diagonal i + j = d (the part above the last row)
    want = [sum(g[i] * b[d - i] for i in range(N) if 0 <= d - i < N) for d in range(N)]
    np.testing.assert_allclose(gc2, want, atol=1e-12)


def test_singular_hankel_matrix_raises():
    with pytest.raises(LinAlgError):
        H.solve_hankel(np.array([1.0, 2.0, 0.0]), np.array([1.0, 2.0, 3.0]), method="levinson")
    with pytest.raises(LinAlgError):
        H.solve_hankel((np.ones(3), np.ones(3)), np.arange(3.0))
