"""HiPPO matrices, their NPLR form, discretization and the S4D initializations
(``structlin/ssm_hippo.py``), against NumPy transcriptions of state-spaces/s4's
``transition``, ``rank_correction``, ``nplr`` and ``dplr`` written here."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from structlin.ssm_hippo import discretize, hippo, hippo_nplr, s4d_init

MEASURES = ("legs", "legt", "lagt", "fourier")


# ------------------------------------------------------------- s4's code, transcribed to NumPy


def s4_transition(measure, N):
    """state-spaces/s4 ``transition(measure, N)`` (models/s4/s4.py), in NumPy."""
    if measure == "legt":
        Q = np.arange(N, dtype=np.float64)
        R = (2 * Q + 1) ** 0.5
        j, i = np.meshgrid(Q, Q)
        A = R[:, None] * np.where(i < j, (-1.0) ** (i - j), 1) * R[None, :]
        B = R[:, None]
        A = -A
        A *= 0.5
        B *= 0.5
    elif measure == "legs":
        q = np.arange(N, dtype=np.float64)
        col, row = np.meshgrid(q, q)
        r = 2 * q + 1
        M = -(np.where(row >= col, r, 0) - np.diag(q))
        T = np.sqrt(np.diag(2 * q + 1))
        A = T @ M @ np.linalg.inv(T)
        B = np.diag(T)[:, None]
    elif measure == "legsd":
        A, B = s4_transition("legs", N)
        A = A + 0.5 * B * B[None, :, 0]
        B = B / 2.0
    elif measure == "lagt":
        A = np.eye(N) / 2 - np.tril(np.ones((N, N)))
        B = 1.0 * np.ones((N, 1))
    elif measure == "fourier":
        freqs = np.arange(N // 2)
        d = np.stack([np.zeros(N // 2), freqs], axis=-1).reshape(-1)[1:]
        A = np.pi * (-np.diag(d, 1) + np.diag(d, -1))
        B = np.zeros(N)
        B[0::2] = 2**0.5
        B[0] = 1
        A = A - B[:, None] * B[None, :]
        B = B[:, None]
    return A, B


def s4_rank_correction(measure, N, rank=1):
    if measure == "legs":
        P = np.sqrt(0.5 + np.arange(N))[None]
    elif measure == "legt":
        P = np.sqrt(1 + 2 * np.arange(N, dtype=np.float64))
        P0 = P.copy()
        P0[0::2] = 0.0
        P1 = P.copy()
        P1[1::2] = 0.0
        P = np.stack([P0, P1], axis=0) * 2 ** (-0.5)
    elif measure == "lagt":
        P = 0.5**0.5 * np.ones((1, N))
    elif measure == "fourier":
        P = np.zeros(N)
        P[0::2] = 2**0.5
        P[0] = 1
        P = P[None]
    else:  # legsd
        P = np.zeros((1, N))
    if rank > P.shape[0]:
        P = np.concatenate([P, np.zeros((rank - P.shape[0], N))])
    return P


def s4_nplr_eigenvalues(measure, N, rank=1):
    """The ``w`` of s4's ``nplr``: the N // 2 eigenvalues of ``A + P^T P`` with negative
    imaginary part (s4 sorts by imaginary part and keeps the first half)."""
    A, _ = s4_transition(measure, N)
    P = s4_rank_correction(measure, N, rank)
    AP = A + (P[:, None, :] * P[:, :, None]).sum(0)
    w_re = np.mean(np.diag(AP))
    w_im, _ = np.linalg.eigh(AP * -1j)
    w = w_re + 1j * w_im
    return np.sort_complex(w[np.argsort(w.imag)][: N // 2])


def s4_dplr_w(scaling, N):
    """The ``w`` of s4's ``dplr(scaling, N)`` for one copy."""
    real = 0.5 * np.ones(N // 2)
    imag = np.arange(N // 2, dtype=np.float64)
    if scaling == "real":
        imag = 0 * imag
        real = 1 + np.arange(N // 2)
    elif scaling == "lin":
        imag = np.pi * imag
    elif scaling == "inv":
        imag = 1 / np.pi * N * (N / (1 + 2 * imag) - 1)
    elif scaling == "legs":
        imag = s4_nplr_eigenvalues("legsd", N).imag
    return -real + 1j * imag


# ------------------------------------------------------------------------------------ hippo


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("N", [2, 3, 8, 33, 64])
def test_hippo_matches_s4_transition(measure, N):
    if measure == "fourier" and N % 2:
        with pytest.raises(ValueError, match="N must be even"):
            hippo(measure, N)
        return
    A, B = hippo(measure, N)
    A_ref, B_ref = s4_transition(measure, N)
    assert A.shape == (N, N) and B.shape == (N,)
    np.testing.assert_allclose(A, A_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(B, B_ref[:, 0], rtol=1e-12, atol=1e-12)


def test_legs_is_the_closed_form_of_the_issue():
    N = 6
    A, B = hippo("legs", N)
    for n in range(N):
        assert B[n] == pytest.approx(np.sqrt(2 * n + 1))
        for k in range(N):
            want = (-np.sqrt(2 * n + 1) * np.sqrt(2 * k + 1) if n > k
                    else -(n + 1) if n == k else 0.0)
            assert A[n, k] == pytest.approx(want, abs=1e-14)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("N", [2, 4, 16, 31])
def test_nplr_full_is_a_unitary_similarity_exactly(measure, N):
    if measure == "fourier" and N % 2:
        return
    rank = 3 if measure == "legt" else 2
    A, B = hippo(measure, N)
    Lam, P, Bt, V = hippo_nplr(measure, N, rank, half=False)
    assert Lam.shape == (N,) and P.shape == (rank, N) and Bt.shape == (N,) and V.shape == (N, N)
    np.testing.assert_allclose(V.conj().T @ V, np.eye(N), atol=1e-12)
    scale = np.abs(A).max()
    np.testing.assert_allclose(V @ (np.diag(Lam) - P.T @ P.conj()) @ V.conj().T, A,
                               atol=1e-12 * scale * N)
    np.testing.assert_allclose(V @ Bt, B, atol=1e-12 * N)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("N", [2, 8, 32])
def test_nplr_half_with_its_conjugates_gives_the_identity(measure, N):
    rank = 2 if measure == "legt" else 1
    A, B = hippo(measure, N)
    Lam, P, Bt, V = hippo_nplr(measure, N, rank)
    assert Lam.shape == (N // 2,) and P.shape == (rank, N // 2) and V.shape == (N, N // 2)
    assert np.all(Lam.imag >= 0) and np.all(np.diff(Lam.imag) >= 0)
    L2 = np.concatenate([Lam, Lam.conj()])
    P2 = np.concatenate([P, P.conj()], axis=-1)
    B2 = np.concatenate([Bt, Bt.conj()])
    V2 = np.concatenate([V, V.conj()], axis=1)
    scale = np.abs(A).max()
    np.testing.assert_allclose(V2 @ (np.diag(L2) - P2.T @ P2.conj()) @ V2.conj().T, A,
                               atol=1e-12 * scale * N)
    np.testing.assert_allclose(V2 @ B2, B, atol=1e-12 * N)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("N", [4, 16, 64])
def test_nplr_eigenvalues_are_the_conjugates_of_s4s(measure, N):
    rank = 2 if measure == "legt" else 1
    Lam = hippo_nplr(measure, N, rank)[0]
    want = s4_nplr_eigenvalues(measure, N, rank)
    np.testing.assert_allclose(np.sort_complex(Lam.conj()), want, atol=1e-9 * N)


def test_legs_nplr_real_part_is_minus_one_half():
    Lam = hippo_nplr("legs", 64)[0]
    np.testing.assert_allclose(Lam.real, -0.5, atol=1e-12)


# ---------------------------------------------------------------------------------- s4d_init


@pytest.mark.parametrize("kind", ["lin", "inv", "real", "legs"])
@pytest.mark.parametrize("N", [2, 8, 64])
def test_s4d_init_matches_s4s_dplr(kind, N):
    w = s4d_init(N, kind)
    assert w.shape == (N // 2,) and w.dtype == np.complex128
    want = s4_dplr_w(kind, N)
    if kind == "legs":  # s4 keeps the negative-imaginary half: compare the conjugates
        want = np.sort_complex(want.conj())
    np.testing.assert_allclose(w, want, atol=1e-9 * N)


def test_s4d_init_formulas_of_the_issue():
    n = np.arange(8)
    np.testing.assert_allclose(s4d_init(16, "lin"), -0.5 + 1j * np.pi * n)
    np.testing.assert_allclose(s4d_init(16, "inv"),
                               -0.5 + 1j * (16 / np.pi) * (16 / (2 * n + 1) - 1))
    np.testing.assert_allclose(s4d_init(16, "real"), -(n + 1.0))
    np.testing.assert_allclose(s4d_init(16, "legs"), hippo_nplr("legs", 16)[0])


# -------------------------------------------------------------------------------- discretize


def ref_discretize_dense(A, B, dt, method):
    """The textbook formulas, one system at a time (B (N, M))."""
    N = A.shape[0]
    eye = np.eye(N)
    if method == "zoh":
        Ab = scipy.linalg.expm(dt * A)
        return Ab, np.linalg.solve(A, (Ab - eye) @ B)
    if method == "bilinear":
        left = np.linalg.inv(eye - dt / 2 * A)
        return left @ (eye + dt / 2 * A), left @ (dt * B)
    if method == "euler":
        return eye + dt * A, dt * B
    left = np.linalg.inv(eye - dt * A)
    return left, left @ (dt * B)


METHODS = ("zoh", "bilinear", "euler", "backward_euler")


@pytest.mark.parametrize("method", METHODS)
def test_dense_matches_the_formulas_batched_with_one_dt_per_system(method):
    rng = np.random.default_rng(1)
    H, N, M = 3, 5, 2
    A = rng.standard_normal((H, N, N)) - 2 * np.eye(N)
    B = rng.standard_normal((H, N, M))
    dt = np.array([0.1, 0.3, 0.02])
    Ab, Bb = discretize(A, B, dt, method)
    assert Ab.shape == (H, N, N) and Bb.shape == (H, N, M)
    for h in range(H):
        a, b = ref_discretize_dense(A[h], B[h], dt[h], method)
        np.testing.assert_allclose(Ab[h], a, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(Bb[h], b, rtol=1e-10, atol=1e-12)
    Ab1, Bb1 = discretize(A, B[..., 0], dt, method)  # B a column per system
    np.testing.assert_allclose(Ab1, Ab, rtol=1e-13)
    np.testing.assert_allclose(Bb1, Bb[..., 0], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("method", METHODS)
def test_diagonal_matches_the_dense_diagonal_matrix(method):
    rng = np.random.default_rng(2)
    H, N = 4, 6
    L = -rng.uniform(0.1, 2, (H, N)) + 1j * rng.standard_normal((H, N))
    B = rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))
    dt = rng.uniform(0.01, 0.5, H)
    Ab, Bb = discretize(L, B, dt, method)
    assert Ab.shape == (H, N) and Bb.shape == (H, N)
    for h in range(H):
        a, b = discretize(np.diag(L[h]), B[h], dt[h], method, diagonal=False)
        np.testing.assert_allclose(Ab[h], np.diag(a), rtol=1e-10)
        np.testing.assert_allclose(Bb[h], b, rtol=1e-10)


def test_square_array_of_diagonals_needs_diagonal_true():
    L = -np.arange(1.0, 10.0).reshape(3, 3)
    B = np.ones((3, 3))
    Ab, Bb = discretize(L, B, np.array([0.1, 0.2, 0.3]), diagonal=True)
    np.testing.assert_allclose(Ab, np.exp(np.array([0.1, 0.2, 0.3])[:, None] * L))
    assert Bb.shape == (3, 3)


def test_zoh_diagonal_is_accurate_for_tiny_steps_and_exact_at_zero():
    L = np.array([-1e-3 + 1e-3j, 0.0, -2.0])
    B = np.array([1.0, 2.0, 1.0])
    dt = 1e-9
    _, Bb = discretize(L, B, dt)
    z = dt * L
    series = dt * (1 + z / 2 + z * z / 6)
    np.testing.assert_allclose(Bb, series * B, rtol=1e-15)
    assert Bb[1] == dt * 2.0


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(1e-3, 1.0))
def test_zoh_two_half_steps_equal_one_step(seed, dt):
    # exp(2 dt A) = exp(dt A)^2 and B_bar(2 dt) = A_bar(dt) B_bar(dt) + B_bar(dt)
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((4, 4)) - 3 * np.eye(4)
    B = rng.standard_normal(4)
    a1, b1 = discretize(A, B, dt)
    a2, b2 = discretize(A, B, 2 * dt)
    np.testing.assert_allclose(a2, a1 @ a1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b2, a1 @ b1 + b1, rtol=1e-9, atol=1e-12)


def test_bilinear_is_the_inverse_cayley_transform():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((4, 4)) - 3 * np.eye(4)
    dt = 0.2
    Ab, _ = discretize(A, np.ones(4), dt, "bilinear")
    # A = (2 / dt) (Ab - I) (Ab + I)^{-1}
    np.testing.assert_allclose(2 / dt * (Ab - np.eye(4)) @ np.linalg.inv(Ab + np.eye(4)), A,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_single_precision_stays_single(dtype):
    Ab, Bb = discretize(np.array([[-1.0, -2.0]], dtype), np.ones((1, 2), dtype),
                        np.array([0.1], np.float32))
    assert Ab.dtype == dtype and Bb.dtype == dtype
    Ab, Bb = discretize(-np.eye(3, dtype=dtype), np.ones(3, dtype), np.float32(0.1))
    assert Ab.dtype == dtype and Bb.dtype == dtype


def test_lists_accepted_and_inputs_not_modified():
    A = np.array([[-1.0, 0.5], [0.0, -2.0]])
    B = np.array([1.0, 1.0])
    A0, B0 = A.copy(), B.copy()
    Ab, Bb = discretize(A.tolist(), B.tolist(), 0.1)
    Ab2, Bb2 = discretize(A, B, 0.1)
    np.testing.assert_array_equal(Ab, Ab2)
    np.testing.assert_array_equal(Bb, Bb2)
    np.testing.assert_array_equal(A, A0)
    np.testing.assert_array_equal(B, B0)


_M1, _P1 = np.array([-1.0]), np.array([1.0])


@pytest.mark.parametrize("call,exc,match", [
    (lambda: discretize(_M1, _P1, 0.0), ValueError, "dt must be positive"),
    (lambda: discretize(_M1, _P1, -1.0), ValueError, "dt must be positive"),
    (lambda: discretize(_M1, _P1, np.nan), ValueError, "dt must be finite"),
    (lambda: discretize(np.array([np.nan]), _P1, 0.1), ValueError, "A must be finite"),
    (lambda: discretize(_M1, _P1, 0.1, "rk4"), ValueError, "method"),
    (lambda: discretize(_M1, _P1, 1j), TypeError, "dt must be real"),
    (lambda: discretize(np.ones((2, 3)), np.ones((2, 4)), 0.1), ValueError,
     r"B must have shape \(\.\.\., 3\)"),
    (lambda: discretize(np.ones((2, 3)), np.ones((2, 3)), np.ones(3)), ValueError, "broadcast"),
    (lambda: discretize(-np.eye(3), np.ones((3, 3, 3, 1)), 0.1), ValueError, "B must have shape"),
    (lambda: discretize(np.array([4.0]), np.array([1.0]), 0.5, "bilinear"), ValueError, "singular"),
    (lambda: discretize(np.array(["a"]), np.array([1.0]), 0.5), TypeError, "A must have a numeric"),
    (lambda: discretize(_M1, _P1, 0.5, diagonal="yes"), TypeError, "diagonal"),
])
def test_discretize_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("call,exc,match", [
    (lambda: hippo("legx", 4), ValueError, "measure must be one of"),
    (lambda: hippo("legs", 0), ValueError, "N must be at least 1"),
    (lambda: hippo("legs", 4.0), TypeError, "N must be an integer"),
    (lambda: hippo("legs", 1 << 20), ValueError, "N must be at most"),
    (lambda: hippo_nplr("legt", 4, 1), ValueError, "rank must be at least 2"),
    (lambda: hippo_nplr("legs", 5), ValueError, "N must be even"),
    (lambda: hippo_nplr("legs", 4, half=1), TypeError, "half"),
    (lambda: s4d_init(8, "quad"), ValueError, "kind must be one of"),
    (lambda: s4d_init(7, "lin"), ValueError, "N must be even"),
    (lambda: s4d_init("8", "lin"), TypeError, "N must be an integer"),
])
def test_constructor_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
