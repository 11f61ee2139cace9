"""Semiseparable and quasiseparable (Hydra) matrices: dense references against their
definitions, the fast products against the dense ones (conformance), the VJPs."""

from __future__ import annotations

import numpy as np
import pytest

from structlin.semiseparable import (
    quasiseparable_multiply,
    quasiseparable_multiply_vjp,
    quasiseparable_to_dense,
    semiseparable_multiply,
    semiseparable_multiply_vjp,
    semiseparable_to_dense,
)
from structlin.ssd import ssd
from tests import conformance as cf


def _column(x):
    """``x[..., None]`` for arrays and nested lists (the conformance checks pass lists)."""
    if isinstance(x, list):
        return [_column(v) for v in x] if x and isinstance(x[0], list) else [[v] for v in x]
    return x[..., None]


def semiseparable_by_definition(A, B, C):
    l = len(A)
    M = np.zeros((l, l))
    for i in range(l):
        for j in range(i + 1):
            M[i, j] = (C[i] @ B[j]) * np.exp(np.sum(A[j + 1:i + 1]))
    return M


def quasiseparable_by_definition(Af, Bf, Cf, Ab, Bb, Cb, D):
    l = len(Af)
    M = np.zeros((l, l))
    for i in range(l):
        for j in range(l):
            if i > j:
                M[i, j] = (Cf[i - 1] @ Bf[j]) * np.exp(np.sum(Af[j + 1:i]))
            elif i == j:
                M[i, j] = D[i]
            else:
                M[i, j] = (Cb[i + 1] @ Bb[j]) * np.exp(np.sum(Ab[i + 1:j]))
    return M


def hydra_mixer(Af, Bf, Cf, Ab, Bb, Cb, D, x):
    """Hydra's construction (goombalab/hydra, ``Hydra.forward``) with dense semiseparable
    matrices: ``roll(SS(x), 1)`` with row 0 zeroed, the same on the flipped sequence flipped
    back, plus the diagonal."""
    def shifted(y):
        y = np.roll(y, 1, axis=0)
        y[0] = 0.0
        return y
    yf = shifted(semiseparable_to_dense(Af, Bf, Cf) @ x)
    yb = shifted(semiseparable_to_dense(Ab[::-1], Bb[::-1], Cb[::-1]) @ x[::-1])[::-1]
    return yf + yb + D[:, None] * x


def _qs_params(rng, l=9, n=3, dtype=np.float64):
    return {
        "A_fwd": (-rng.uniform(0, 1, l)).astype(dtype),
        "B_fwd": rng.standard_normal((l, n)).astype(dtype),
        "C_fwd": rng.standard_normal((l, n)).astype(dtype),
        "A_bwd": (-rng.uniform(0, 1, l)).astype(dtype),
        "B_bwd": rng.standard_normal((l, 2)).astype(dtype),
        "C_bwd": rng.standard_normal((l, 2)).astype(dtype),
        "D": rng.standard_normal(l).astype(dtype),
    }


# ------------------------------------------------------------------ dense references


def test_semiseparable_to_dense_is_the_definition():
    rng = np.random.default_rng(0)
    A, B, C = -rng.uniform(0, 2, 12), rng.standard_normal((12, 3)), rng.standard_normal((12, 3))
    np.testing.assert_allclose(semiseparable_to_dense(A, B, C),
                               semiseparable_by_definition(A, B, C), rtol=1e-13, atol=1e-15)


def test_semiseparable_to_dense_batches_and_broadcasts():
    rng = np.random.default_rng(1)
    A = -rng.uniform(0, 1, (2, 3, 7))
    B = rng.standard_normal((7, 2))
    C = rng.standard_normal((3, 7, 2))
    M = semiseparable_to_dense(A, B, C)
    assert M.shape == (2, 3, 7, 7)
    np.testing.assert_allclose(M[1, 2], semiseparable_by_definition(A[1, 2], B, C[2]),
                               rtol=1e-13, atol=1e-15)
    assert semiseparable_to_dense(A.astype(np.float32), B.astype(np.float32),
                                  C.astype(np.float32)).dtype == np.float32


def test_a_zero_decay_rank_one_matrix_is_the_cumulative_sum():
    l = 10
    M = semiseparable_to_dense(np.zeros(l), np.ones((l, 1)), np.ones((l, 1)))
    np.testing.assert_array_equal(M, np.tril(np.ones((l, l))))
    x = np.arange(l, dtype=float)[:, None]
    np.testing.assert_allclose(semiseparable_multiply(np.zeros(l), np.ones((l, 1)),
                                                      np.ones((l, 1)), x, chunk_size=3),
                               np.cumsum(x, axis=0), rtol=1e-14)


def test_quasiseparable_to_dense_is_the_definition_and_hydra_s_mixer():
    rng = np.random.default_rng(2)
    p = _qs_params(rng)
    M = quasiseparable_to_dense(**p)
    np.testing.assert_allclose(M, quasiseparable_by_definition(*p.values()), rtol=1e-13,
                               atol=1e-15)
    x = rng.standard_normal((9, 4))
    np.testing.assert_allclose(M @ x, hydra_mixer(*p.values(), x), rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ fast products


@pytest.mark.parametrize("chunk", [1, 3, 7, 40, 64])
def test_semiseparable_multiply_matches_dense_for_any_chunk(chunk):
    rng = np.random.default_rng(3)
    A = -rng.uniform(0, 1, (2, 40))
    B, C = rng.standard_normal((2, 2, 40, 5))
    x = rng.standard_normal((2, 40, 3))
    y = semiseparable_multiply(A, B, C, x, chunk_size=chunk)
    np.testing.assert_allclose(y, semiseparable_to_dense(A, B, C) @ x, rtol=1e-12,
                               atol=1e-13)


def test_semiseparable_multiply_is_ssd_with_one_head():
    rng = np.random.default_rng(4)
    A = -rng.uniform(0, 1, (3, 17))
    B, C = rng.standard_normal((2, 3, 17, 4))
    x = rng.standard_normal((3, 17, 2))
    want = ssd(x[:, :, None], A[:, :, None], B[:, :, None], C[:, :, None], 5)[:, :, 0]
    np.testing.assert_allclose(semiseparable_multiply(A, B, C, x, chunk_size=5), want,
                               rtol=1e-14)


@pytest.mark.parametrize("chunk", [1, 4, 50])
def test_quasiseparable_multiply_matches_dense(chunk):
    rng = np.random.default_rng(5)
    p = _qs_params(rng, l=13)
    p["D"] = rng.standard_normal((2, 13))  # a diagonal per batch row (Hydra's is data-dependent)
    x = rng.standard_normal((2, 13, 3))
    y = quasiseparable_multiply(**p, x=x, chunk_size=chunk)
    np.testing.assert_allclose(y, quasiseparable_to_dense(**p) @ x, rtol=1e-12, atol=1e-13)


# ------------------------------------------------------------------ gradients


def _fd_check(f, args, grads, g, rng, h=1e-6):
    for i, (a, ga) in enumerate(zip(args, grads, strict=True)):
        assert ga.shape == np.shape(a), i
        d = rng.standard_normal(np.shape(a))
        plus, minus = list(args), list(args)
        plus[i] = a + h * d
        minus[i] = a - h * d
        fd = float(((f(*plus) - f(*minus)) * g).sum() / (2 * h))
        an = float((ga * d).sum())
        assert abs(fd - an) <= 1e-7 * max(1.0, abs(an)), (i, fd, an)


@pytest.mark.parametrize("chunk", [2, 5, 30])
def test_semiseparable_vjp_matches_finite_differences_with_broadcasting(chunk):
    rng = np.random.default_rng(6)
    A = -rng.uniform(0, 1, (3, 11))
    B = rng.standard_normal((11, 4))          # shared by the batch
    C = rng.standard_normal((1, 11, 4))       # broadcast along a size-1 axis
    x = rng.standard_normal((2, 3, 11, 2))
    g = rng.standard_normal((2, 3, 11, 2))
    grads = semiseparable_multiply_vjp(A, B, C, x, g, chunk_size=chunk)
    _fd_check(lambda *a: semiseparable_multiply(*a, chunk_size=chunk), [A, B, C, x], grads, g,
              rng)


def test_quasiseparable_vjp_matches_finite_differences():
    rng = np.random.default_rng(7)
    p = _qs_params(rng, l=10)
    x = rng.standard_normal((2, 10, 3))
    g = rng.standard_normal((2, 10, 3))
    grads = quasiseparable_multiply_vjp(**p, x=x, grad=g, chunk_size=3)
    assert len(grads) == 8
    _fd_check(lambda *a: quasiseparable_multiply(*a, chunk_size=3), [*p.values(), x], grads,
              g, rng)


def test_quasiseparable_float32_in_float32_out():
    rng = np.random.default_rng(8)
    p = _qs_params(rng, dtype=np.float32)
    x = rng.standard_normal((9, 2)).astype(np.float32)
    y = quasiseparable_multiply(**p, x=x)
    assert y.dtype == np.float32
    assert quasiseparable_to_dense(**p).dtype == np.float32
    for grad in quasiseparable_multiply_vjp(**p, x=x, grad=np.ones_like(y)):
        assert grad.dtype == np.float32
    want = quasiseparable_to_dense(**{k: v.astype(np.float64) for k, v in p.items()}) @ x
    assert np.abs(y - want).max() <= 1e-5 * np.abs(want).max()


# ------------------------------------------------------------------ conformance


class TestSemiseparableConformance(cf.OperatorConformance):
    """``x -> M x`` for one column (``p = 1``); the parameters are shared by the batch."""

    dtypes = (np.float32, np.float64)  # real only
    mixed_dtypes = False
    fake_cupy_mix = False  # fast adds the column axis itself; the mix is tested below
    l, n = 12, 3

    def make_params(self, rng, dtype):
        return {"A": (-rng.uniform(0, 1, self.l)).astype(dtype),
                "B": rng.standard_normal((self.l, self.n)).astype(dtype),
                "C": rng.standard_normal((self.l, self.n)).astype(dtype)}

    def make_x(self, rng, dtype, batch):
        return rng.standard_normal((*batch, self.l)).astype(dtype)

    def fast(self, p, x):
        return semiseparable_multiply(p["A"], p["B"], p["C"], _column(x), chunk_size=5)[..., 0]

    def dense(self, p):
        return semiseparable_to_dense(p["A"], p["B"], p["C"])

    def vjp(self, p, x, g):
        gA, gB, gC, gx = semiseparable_multiply_vjp(p["A"], p["B"], p["C"], _column(x),
                                                    g[..., None], chunk_size=5)
        return {"A": gA, "B": gB, "C": gC, "x": gx[..., 0]}

    def bad_inputs(self):
        A, B = np.zeros(5), np.ones((5, 2))
        return [
            ("x of the wrong length", lambda: semiseparable_multiply(A, B, B, np.ones((4, 1))),
             ValueError, r"x must have shape \(\.\.\., l, p\) with l = 5"),
            ("x without columns", lambda: semiseparable_multiply(A, B, B, np.ones(5)),
             ValueError, r"x must have"),
            ("B of the wrong length", lambda: semiseparable_multiply(A, B[:4], B, np.ones((5, 1))),
             ValueError, r"B must have shape"),
            ("C unlike B", lambda: semiseparable_multiply(A, B, B[:, :1], np.ones((5, 1))),
             ValueError, r"C must have shape"),
            ("batch shapes that do not broadcast",
             lambda: semiseparable_multiply(np.zeros((2, 5)), B, B, np.ones((3, 5, 1))),
             ValueError, r"must broadcast"),
            ("chunk_size 0", lambda: semiseparable_multiply(A, B, B, np.ones((5, 1)),
                                                            chunk_size=0),
             ValueError, r"chunk_size"),
            ("chunk_size 1.5", lambda: semiseparable_multiply(A, B, B, np.ones((5, 1)),
                                                              chunk_size=1.5),
             TypeError, r"chunk_size"),
            ("complex x", lambda: semiseparable_multiply(A, B, B, np.ones((5, 1)) * 1j),
             TypeError, r"must be real"),
            ("grad of the wrong shape",
             lambda: semiseparable_multiply_vjp(A, B, B, np.ones((5, 1)), np.ones((5, 2))),
             ValueError, r"grad must have"),
            ("dense of a complex A", lambda: semiseparable_to_dense(A + 0j, B, B), TypeError,
             r"must be real"),
        ]


class TestQuasiseparableConformance(cf.OperatorConformance):
    dtypes = (np.float32, np.float64)
    mixed_dtypes = False
    fake_cupy_mix = False

    def make_params(self, rng, dtype):
        return _qs_params(rng, l=10, dtype=dtype)

    def make_x(self, rng, dtype, batch):
        return rng.standard_normal((*batch, 10)).astype(dtype)

    def fast(self, p, x):
        return quasiseparable_multiply(**p, x=_column(x), chunk_size=4)[..., 0]

    def dense(self, p):
        return quasiseparable_to_dense(**p)

    def vjp(self, p, x, g):
        grads = quasiseparable_multiply_vjp(**p, x=_column(x), grad=g[..., None], chunk_size=4)
        out = dict(zip(p, grads[:7], strict=True))
        out["x"] = grads[7][..., 0]
        return out

    def bad_inputs(self):
        rng = np.random.default_rng(0)
        p = _qs_params(rng, l=6)
        x = np.ones((6, 1))
        return [
            ("A_bwd of another length",
             lambda: quasiseparable_multiply(**{**p, "A_bwd": np.zeros(5)}, x=x), ValueError,
             r"A_bwd"),
            ("B_fwd of another length",
             lambda: quasiseparable_multiply(**{**p, "B_fwd": np.zeros((5, 3))}, x=x),
             ValueError, r"B_fwd must have shape"),
            ("C_bwd unlike B_bwd",
             lambda: quasiseparable_multiply(**{**p, "C_bwd": np.zeros((6, 3))}, x=x),
             ValueError, r"C_bwd must have shape"),
            ("D of another length",
             lambda: quasiseparable_multiply(**{**p, "D": np.zeros(5)}, x=x), ValueError,
             r"D must have shape"),
            ("x of another length",
             lambda: quasiseparable_multiply(**p, x=np.ones((5, 1))), ValueError,
             r"x must have shape"),
        ]


def test_numpy_and_cupy_mixed_are_refused():
    import sys
    import types

    A, B = np.zeros(5), np.ones((5, 2))

    class FakeCupyArray:
        dtype = np.dtype(np.float64)
        shape = (5, 1)
        ndim = 2

    saved = sys.modules.get("cupy")
    sys.modules["cupy"] = types.SimpleNamespace(ndarray=FakeCupyArray)
    try:
        with pytest.raises(TypeError, match=r"cupy\.ndarray"):
            semiseparable_multiply(A, B, B, FakeCupyArray())
        with pytest.raises(TypeError, match=r"cupy\.ndarray"):
            quasiseparable_multiply(A, B, B, A, B, B, A, FakeCupyArray())
    finally:
        if saved is None:
            del sys.modules["cupy"]
        else:
            sys.modules["cupy"] = saved
