"""Mamba-2's SSD scan (:func:`structlin.ssd`, :func:`structlin.ssd_vjp`) against the step-by-step
recurrence, the quadratic (attention-like) form and a NumPy transcription of mamba's
``ssd_minimal_discrete`` (``mamba_ssm/modules/ssd_minimal.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structlin._ssm_reference import ssd_minimal_discrete
from structlin.semiseparable import semiseparable_to_dense
from structlin.ssd import ssd, ssd_vjp

# ------------------------------------------------------------------ references in NumPy


def recurrence(X, A, B, C, S0=None):
    """The definition, one step at a time, in float64: ``(Y, final_states)``."""
    X, A, B, C = (np.asarray(t, np.float64) for t in (X, A, B, C))
    nb, l, h, p = X.shape
    per = h // B.shape[2]
    n = B.shape[3]
    Y = np.zeros((nb, l, h, p))
    SF = np.zeros((nb, h, p, n))
    for bi in range(nb):
        for hi in range(h):
            S = np.zeros((p, n)) if S0 is None else np.asarray(S0[bi, hi], np.float64)
            for t in range(l):
                S = np.exp(A[bi, t, hi]) * S + np.outer(X[bi, t, hi], B[bi, t, hi // per])
                Y[bi, t, hi] = S @ C[bi, t, hi // per]
            SF[bi, hi] = S
    return Y, SF


def quadratic_form(X, A, B, C):
    """``Y = M X`` per (batch, head) with the dense semiseparable matrix."""
    nb, l, h, p = X.shape
    per = h // B.shape[2]
    Y = np.zeros((nb, l, h, p))
    for bi in range(nb):
        for hi in range(h):
            M = semiseparable_to_dense(A[bi, :, hi], B[bi, :, hi // per], C[bi, :, hi // per])
            Y[bi, :, hi] = M @ X[bi, :, hi]
    return Y


def problem(nb=2, l=11, h=4, g=2, p=3, n=5, dtype=np.float64, seed=0, decay=(0.0, 1.0)):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((nb, l, h, p)).astype(dtype)
    A = (-rng.uniform(*decay, (nb, l, h))).astype(dtype)
    B = rng.standard_normal((nb, l, g, n)).astype(dtype)
    C = rng.standard_normal((nb, l, g, n)).astype(dtype)
    S0 = rng.standard_normal((nb, h, p, n)).astype(dtype)
    return X, A, B, C, S0


def rel(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / max(np.abs(b).max(), 1e-300))


# ------------------------------------------------------------------ the forward scan


@pytest.mark.parametrize("chunk", [1, 3, 7, 11, 20])
def test_matches_the_recurrence_for_any_chunk_and_length(chunk):
    X, A, B, C, S0 = problem(l=11)
    Y, SF = ssd(X, A, B, C, chunk, initial_states=S0, return_final_states=True)
    Yr, SFr = recurrence(X, A, B, C, S0)
    assert rel(Y, Yr) < 1e-13 and rel(SF, SFr) < 1e-13
    Y0 = ssd(X, A, B, C, chunk)
    assert rel(Y0, recurrence(X, A, B, C)[0]) < 1e-13


def test_equals_the_quadratic_form():
    X, A, B, C, _ = problem(l=23, g=4)
    assert rel(ssd(X, A, B, C, 5), quadratic_form(X, A, B, C)) < 1e-13


@pytest.mark.parametrize("chunk", [4, 6, 24])
def test_equals_ssd_minimal_discrete_where_it_applies(chunk):
    X, A, B, C, S0 = problem(l=24, g=4)
    Ym, SFm = ssd_minimal_discrete(X, A, B, C, chunk, initial_states=S0)
    Y, SF = ssd(X, A, B, C, chunk, initial_states=S0, return_final_states=True)
    assert rel(Y, Ym) < 1e-13 and rel(SF, SFm) < 1e-13


def test_shared_groups_match_repeated_heads():
    X, A, B, C, _ = problem(h=6, g=2)
    rep = lambda t: np.repeat(t, 3, axis=2)  # noqa: E731
    np.testing.assert_allclose(ssd(X, A, B, C, 4), ssd(X, A, rep(B), rep(C), 4), rtol=1e-13)


def test_non_power_of_two_chunks_give_no_nan():
    # mamba #449: a chunk size that is not a power of two gave NaN; strong decays too
    X, A, B, C, _ = problem(nb=1, l=301, h=2, g=1, p=4, n=8, dtype=np.float32,
                            decay=(0.0, 30.0))
    for chunk in (7, 37, 100, 301, 1000):
        Y = ssd(X, A, B, C, chunk)
        assert np.isfinite(Y).all(), chunk
        assert rel(Y, recurrence(X, A, B, C)[0]) < 1e-4, chunk


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_reset_step_of_minus_infinity_is_exact(dtype):
    # exp(-inf) = 0 resets the state; differences of cumulative sums after it must not be NaN
    X, A, B, C, S0 = problem(nb=1, l=20, h=2, g=1, dtype=dtype)
    A[0, [3, 11], 0] = -np.inf
    A[0, 7, 1] = -1e30
    Y, SF = ssd(X, A, B, C, 8, initial_states=S0, return_final_states=True)
    Yr, SFr = recurrence(X, A, B, C, S0)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert np.isfinite(Y).all() and rel(Y, Yr) < tol and rel(SF, SFr) < tol


@settings(max_examples=8, deadline=None)
@given(l=st.integers(1, 17), c1=st.integers(1, 20), c2=st.integers(1, 20),
       seed=st.integers(0, 1000))
def test_the_chunk_size_changes_only_rounding(l, c1, c2, seed):
    X, A, B, C, S0 = problem(nb=1, l=l, h=2, g=1, p=2, n=3, seed=seed)
    y1 = ssd(X, A, B, C, c1, initial_states=S0)
    y2 = ssd(X, A, B, C, c2, initial_states=S0)
    np.testing.assert_allclose(y1, y2, rtol=1e-12, atol=1e-12 * np.abs(y1).max())


def test_float32_in_float32_out_and_close_to_float64():
    X, A, B, C, S0 = problem(l=40, dtype=np.float32)
    Y, SF = ssd(X, A, B, C, 16, initial_states=S0, return_final_states=True)
    assert Y.dtype == SF.dtype == np.float32
    Yr, SFr = recurrence(X, A, B, C, S0)
    assert rel(Y, Yr) < 1e-5 and rel(SF, SFr) < 1e-5
    G = np.ones_like(Y)
    for grad in ssd_vjp(X, A, B, C, 16, G, initial_states=S0, grad_final_states=SF):
        assert grad.dtype == np.float32
    # NumPy's promotion: a float64 argument makes the result float64
    assert ssd(X, A.astype(np.float64), B, C, 16).dtype == np.float64


def test_empty_and_degenerate_shapes():
    X, A, B, C, S0 = problem(l=0)
    Y, SF = ssd(X, A, B, C, 4, initial_states=S0, return_final_states=True)
    assert Y.shape == X.shape and np.array_equal(SF, S0)
    X, A, B, C, S0 = problem(nb=0)
    assert ssd(X, A, B, C, 3).shape == X.shape
    grads = ssd_vjp(*problem(l=0)[:4], 3, np.zeros(problem(l=0)[0].shape))
    assert [g.shape for g in grads] == [t.shape for t in problem(l=0)[:4]]


# ------------------------------------------------------------------ gradients


def _loss(X, A, B, C, S0, chunk, G, GF):
    Y, SF = ssd(X, A, B, C, chunk, initial_states=S0, return_final_states=True)
    return float((Y * G).sum() + (SF * GF).sum())


@pytest.mark.parametrize("chunk", [1, 3, 13])
def test_vjp_matches_finite_differences_for_every_argument(chunk):
    X, A, B, C, S0 = problem(l=11)
    rng = np.random.default_rng(5)
    G = rng.standard_normal(X.shape)
    GF = rng.standard_normal(S0.shape)
    grads = ssd_vjp(X, A, B, C, chunk, G, initial_states=S0, grad_final_states=GF)
    assert len(grads) == 5
    args = [X, A, B, C, S0]
    for i, name in enumerate(("X", "A", "B", "C", "initial_states")):
        assert grads[i].shape == args[i].shape, name
        d = rng.standard_normal(args[i].shape)
        h = 1e-6
        plus, minus = list(args), list(args)
        plus[i] = args[i] + h * d
        minus[i] = args[i] - h * d
        fd = (_loss(*plus, chunk, G, GF) - _loss(*minus, chunk, G, GF)) / (2 * h)
        an = float((grads[i] * d).sum())
        assert abs(fd - an) <= 1e-7 * max(1.0, abs(an)), (name, fd, an)


def test_vjp_without_initial_states_returns_four_gradients():
    X, A, B, C, _ = problem(l=9)
    G = np.random.default_rng(1).standard_normal(X.shape)
    gX, gA, gB, gC = ssd_vjp(X, A, B, C, 4, G)
    # grad_X is M^T G per head (the transposed quadratic form)
    M = semiseparable_to_dense(A[1, :, 3], B[1, :, 1], C[1, :, 1])
    np.testing.assert_allclose(gX[1, :, 3], M.T @ G[1, :, 3], rtol=1e-12)
    # without a loss on the final state, the same gradients as with grad_final_states = 0
    ref = ssd_vjp(X, A, B, C, 4, G, grad_final_states=np.zeros((2, 4, 3, 5)))
    for got, want in zip((gX, gA, gB, gC), ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_vjp_float32_is_close_to_float64():
    X, A, B, C, S0 = problem(l=50)
    G = np.random.default_rng(2).standard_normal(X.shape)
    ref = ssd_vjp(X, A, B, C, 8, G, initial_states=S0)
    got = ssd_vjp(*(t.astype(np.float32) for t in (X, A, B, C)), 8, G.astype(np.float32),
                  initial_states=S0.astype(np.float32))
    for a, b in zip(got, ref, strict=True):
        assert a.dtype == np.float32
        assert rel(a, b) < 1e-4


# ------------------------------------------------------------------ batch isolation, layouts


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_bad_value_stays_in_its_batch_row_and_head(bad):
    X, A, B, C, S0 = problem(h=4, g=4)
    clean = ssd(X, A, B, C, 3, initial_states=S0)
    G = np.random.default_rng(3).standard_normal(X.shape)
    gclean = ssd_vjp(X, A, B, C, 3, G, initial_states=S0)
    for name in ("X", "A", "S0", "G"):
        Xb, Ab, S0b, Gb = X.copy(), A.copy(), S0.copy(), G.copy()
        if name == "S0":
            S0b[1, 2, 0] = bad
        else:
            {"X": Xb, "G": Gb}.get(name, Ab)[1, 4, 2] = bad
        Y = ssd(Xb, Ab, B, C, 3, initial_states=S0b)
        grads = ssd_vjp(Xb, Ab, B, C, 3, Gb, initial_states=S0b)
        keep = np.ones((2, 4), bool)
        keep[1, 2] = False  # batch row 1, head 2 only
        np.testing.assert_array_equal(Y.transpose(0, 2, 1, 3)[keep],
                                      clean.transpose(0, 2, 1, 3)[keep], err_msg=name)
        np.testing.assert_array_equal(grads[0].transpose(0, 2, 1, 3)[keep],
                                      gclean[0].transpose(0, 2, 1, 3)[keep], err_msg=name)
        np.testing.assert_array_equal(grads[1].transpose(0, 2, 1)[keep],
                                      gclean[1].transpose(0, 2, 1)[keep], err_msg=name)
        np.testing.assert_array_equal(grads[2][0], gclean[2][0], err_msg=name)


def test_memory_layouts_lists_and_inputs_untouched():
    X, A, B, C, S0 = problem(l=10)
    ref = ssd(X, A, B, C, 4, initial_states=S0)
    saved = [t.copy() for t in (X, A, B, C, S0)]
    for i in range(5):
        for variant in (lambda t: np.asfortranarray(t), lambda t: np.repeat(t, 2, 0)[::2],
                        "ro"):
            args = [X, A, B, C, S0]
            if variant == "ro":
                v = args[i].copy()
                v.setflags(write=False)
            else:
                v = variant(args[i])
            args[i] = v
            np.testing.assert_allclose(ssd(*args[:4], 4, initial_states=args[4]), ref,
                                       rtol=1e-14)
    lst = ssd(X.tolist(), A.tolist(), B.tolist(), C.tolist(), 4, initial_states=S0.tolist())
    np.testing.assert_allclose(lst, ref, rtol=1e-14)
    G = np.ones_like(ref)
    G0 = G.copy()
    ssd_vjp(X, A, B, C, 4, G, initial_states=S0, grad_final_states=S0)
    for before, after in zip(saved, (X, A, B, C, S0), strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(G, G0)


# ------------------------------------------------------------------ bad input


def _bad_cases():
    X, A, B, C, S0 = problem()
    G = np.ones_like(X)
    return [
        ("X of rank 3", lambda: ssd(X[0], A, B, C, 4), ValueError, r"X must have shape"),
        ("A of the wrong shape", lambda: ssd(X, A[:, :5], B, C, 4), ValueError,
         r"A must have shape .*\(2, 11, 4\).*\(2, 5, 4\)"),
        ("groups not dividing heads", lambda: ssd(X, A, B[:, :, :1].repeat(3, 2), C, 4),
         ValueError, r"groups .* must divide"),
        ("B of the wrong length", lambda: ssd(X, A, B[:, :3], C, 4), ValueError,
         r"B must have shape"),
        ("C unlike B", lambda: ssd(X, A, B, C[..., :2], 4), ValueError, r"C must have shape"),
        ("initial_states of the wrong shape", lambda: ssd(X, A, B, C, 4, S0[:, :1]),
         ValueError, r"initial_states must have shape"),
        ("chunk_size 0", lambda: ssd(X, A, B, C, 0), ValueError, r"chunk_size must be at least"),
        ("chunk_size 2.5", lambda: ssd(X, A, B, C, 2.5), TypeError, r"chunk_size"),
        ("chunk_size '4'", lambda: ssd(X, A, B, C, "4"), TypeError, r"chunk_size"),
        ("return_final_states 'yes'", lambda: ssd(X, A, B, C, 4, None, "yes"), TypeError,
         r"return_final_states"),
        ("complex X", lambda: ssd(X + 0j, A, B, C, 4), TypeError, r"must be real"),
        ("object A", lambda: ssd(X, A.astype(object), B, C, 4), TypeError, r"\bA\b"),
        ("string C", lambda: ssd(X, A, B, C.astype(str), 4), TypeError, r"\bC\b"),
        ("None B", lambda: ssd(X, A, None, C, 4), TypeError, r"\bB\b"),
        ("grad of the wrong shape", lambda: ssd_vjp(X, A, B, C, 4, G[:, :3]), ValueError,
         r"grad must have shape"),
        ("grad_final_states of the wrong shape",
         lambda: ssd_vjp(X, A, B, C, 4, G, grad_final_states=S0[..., :1]), ValueError,
         r"grad_final_states must have shape"),
    ]


@pytest.mark.parametrize("case", _bad_cases(), ids=lambda c: c[0])
def test_bad_inputs_are_refused_by_name(case):
    _, call, exc, match = case
    with pytest.raises(exc, match=match):
        call()


def test_numpy_and_cupy_mixed_are_refused():
    import sys
    import types

    X, A, B, C, _ = problem()

    class FakeCupyArray:
        dtype = X.dtype
        shape = X.shape
        ndim = X.ndim

    saved = sys.modules.get("cupy")
    sys.modules["cupy"] = types.SimpleNamespace(ndarray=FakeCupyArray)
    try:
        with pytest.raises(TypeError, match=r"cupy\.ndarray"):
            ssd(FakeCupyArray(), A, B, C, 4)
    finally:
        if saved is None:
            del sys.modules["cupy"]
        else:
            sys.modules["cupy"] = saved
