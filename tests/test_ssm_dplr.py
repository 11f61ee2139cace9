"""Tests of the S4 DPLR convolution kernel (structlin/ssm_dplr.py): against the dense bilinear
recurrence for several channel counts, state sizes, ranks and lengths (powers of two or not),
the closed form of the diagonal case, gradients against finite differences for every array
argument, dtypes, channel isolation, layouts, lists and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structlin.ssm_dplr import ssm_kernel_dplr, ssm_kernel_dplr_vjp


def dense_kernel(Lam, P, B, C, dt, L):
    """``2 Re(C A_bar^l B_bar)`` from the dense matrix, discretized bilinearly and powered."""
    Lam, P, B, C = (np.asarray(a, np.complex128) for a in (Lam, P, B, C))
    dt = np.asarray(dt, np.float64)
    if P.ndim == Lam.ndim:
        P = P[None]
    H, N = Lam.shape
    K = np.zeros((H, L))
    eye = np.eye(N)
    for h in range(H):
        A = np.diag(Lam[h]) - sum(np.outer(P[s, h], P[s, h].conj()) for s in range(P.shape[0]))
        Minv = np.linalg.inv(eye - dt[h] / 2 * A)
        Abar = Minv @ (eye + dt[h] / 2 * A)
        x = Minv @ (dt[h] * B[h])
        for l in range(L):
            K[h, l] = 2 * (C[h] @ x).real
            x = Abar @ x
    return K


def _data(rng, H, N, r, dtype=np.complex128):
    Lam = -rng.uniform(0.1, 1.0, (H, N)) + 3j * rng.standard_normal((H, N))
    P = 0.5 * (rng.standard_normal((r, H, N)) + 1j * rng.standard_normal((r, H, N)))
    if r == 1:
        P = P[0]
    B = rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))
    C = rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))
    dt = rng.uniform(0.01, 0.5, H)
    real = np.float32 if np.dtype(dtype) == np.complex64 else np.float64
    return [a.astype(dtype) for a in (Lam, P, B, C)] + [dt.astype(real)]


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


@pytest.mark.parametrize("dtype,tol", [(np.complex128, 1e-11), (np.complex64, 2e-5)])
@pytest.mark.parametrize("H,N,r,L", [(3, 4, 1, 16), (2, 5, 2, 15), (1, 3, 3, 7), (2, 6, 1, 1),
                                     (2, 6, 1, 2), (4, 8, 2, 33), (2, 16, 1, 100)])
def test_matches_the_dense_recurrence(H, N, r, L, dtype, tol):
    args = _data(np.random.default_rng(H * 100 + N * 10 + r + L), H, N, r, dtype)
    K = ssm_kernel_dplr(*args, L)
    assert K.shape == (H, L)
    assert K.dtype == (np.float32 if dtype == np.complex64 else np.float64)
    assert _rel(K, dense_kernel(*args, L)) < tol


def _fd(f, a, eps=1e-6):
    g = np.zeros(a.shape, dtype=a.dtype)
    for idx in np.ndindex(a.shape):
        for d in ((1, 1j) if a.dtype.kind == "c" else (1,)):
            ap, am = a.copy(), a.copy()
            ap[idx] += eps * d
            am[idx] -= eps * d
            g[idx] += d * (f(ap) - f(am)) / (2 * eps)
    return g


@pytest.mark.parametrize("H,N,r,L", [(2, 3, 1, 8), (2, 3, 2, 7), (1, 4, 1, 1), (1, 3, 1, 2)])
def test_vjp_matches_finite_differences(H, N, r, L):
    rng = np.random.default_rng(H + N + r + L)
    args = _data(rng, H, N, r)
    G = rng.standard_normal((H, L))
    grads = ssm_kernel_dplr_vjp(*args, L, G)
    names = ("Lambda", "P", "B", "C", "dt")
    for i, (name, grad) in enumerate(zip(names, grads, strict=True)):
        assert grad.shape == args[i].shape and grad.dtype == args[i].dtype, name

        def loss(a, i=i):
            call = list(args)
            call[i] = a
            return float(np.sum(G * ssm_kernel_dplr(*call, L)))

        fd = _fd(loss, args[i])
        assert _rel(grad, fd) < 1e-6, (name, _rel(grad, fd))


def test_single_precision_in_single_precision_out():
    args = _data(np.random.default_rng(1), 2, 4, 2, np.complex64)
    K = ssm_kernel_dplr(*args, 12)
    assert K.dtype == np.float32
    grads = ssm_kernel_dplr_vjp(*args, 12, np.ones((2, 12), np.float32))
    assert [g.dtype for g in grads] == [np.complex64] * 4 + [np.float32]
    want = ssm_kernel_dplr_vjp(*[a.astype(np.complex128 if a.dtype.kind == "c" else
                                          np.float64) for a in args], 12, np.ones((2, 12)))
    for g, w in zip(grads, want, strict=True):
        assert _rel(g, w) < 1e-4


def test_real_inputs_are_promoted_and_real_gradients_stay_real():
    rng = np.random.default_rng(2)
    Lam = -rng.uniform(0.2, 1.0, (2, 3)).astype(np.float32)
    P = rng.standard_normal((2, 3)).astype(np.float32)
    B = rng.standard_normal((2, 3)).astype(np.float32)
    C = rng.standard_normal((2, 3)).astype(np.float32)
    dt = np.array([0.1, 0.2], np.float32)
    K = ssm_kernel_dplr(Lam, P, B, C, dt, 9)
    assert K.dtype == np.float32
    assert _rel(K, dense_kernel(Lam, P, B, C, dt, 9)) < 1e-5
    grads = ssm_kernel_dplr_vjp(Lam, P, B, C, dt, 9, np.ones((2, 9)))
    assert all(g.dtype == np.float32 for g in grads)


@settings(max_examples=15, deadline=None)
@given(N=st.integers(1, 6), L=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_zero_low_rank_part_is_the_diagonal_bilinear_kernel(N, L, seed):
    """With ``P = 0`` the kernel is ``2 Re sum_n C_n B_bar_n A_bar_n^l`` with the scalar
    bilinear ``A_bar = (1 + dt/2 Lambda) / (1 - dt/2 Lambda)``, ``B_bar = dt B / (1 - dt/2
    Lambda)``."""
    Lam, _, B, C, dt = _data(np.random.default_rng(seed), 2, N, 1)
    K = ssm_kernel_dplr(Lam, np.zeros_like(Lam), B, C, dt, L)
    k = (dt / 2)[:, None]
    Abar = (1 + k * Lam) / (1 - k * Lam)
    Bbar = dt[:, None] * B / (1 - k * Lam)
    want = 2 * np.einsum("hn,hnl->hl", C * Bbar,
                         Abar[:, :, None] ** np.arange(L)).real
    assert _rel(K, want) < 1e-10


def test_leading_dimensions_are_channels():
    args = _data(np.random.default_rng(5), 6, 4, 2)
    flat = ssm_kernel_dplr(*args, 10)
    Lam, P, B, C, dt = args
    shaped = ssm_kernel_dplr(Lam.reshape(2, 3, 4), P.reshape(2, 2, 3, 4), B.reshape(2, 3, 4),
                             C.reshape(2, 3, 4), dt.reshape(2, 3), 10)
    np.testing.assert_allclose(shaped.reshape(6, 10), flat, rtol=1e-12, atol=1e-14)
    gs = ssm_kernel_dplr_vjp(Lam.reshape(2, 3, 4), P.reshape(2, 2, 3, 4), B.reshape(2, 3, 4),
                             C.reshape(2, 3, 4), dt.reshape(2, 3), 10, np.ones((2, 3, 10)))
    assert [g.shape for g in gs] == [(2, 3, 4), (2, 2, 3, 4), (2, 3, 4), (2, 3, 4), (2, 3)]


def test_channels_are_independent():
    args = _data(np.random.default_rng(6), 4, 5, 1)
    K = ssm_kernel_dplr(*args, 24)
    other = [a.copy() for a in args]
    for a in other[:4]:
        a[2] *= 3.0
    other[4][2] = 0.3
    K2 = ssm_kernel_dplr(*other, 24)
    keep = [0, 1, 3]
    np.testing.assert_allclose(K2[keep], K[keep], rtol=1e-12, atol=1e-14)
    assert not np.allclose(K2[2], K[2])


def test_layouts_lists_and_inputs_unchanged():
    args = _data(np.random.default_rng(7), 3, 4, 1)
    want = ssm_kernel_dplr(*args, 11)
    before = [a.copy() for a in args]
    fortran = [np.asfortranarray(a) for a in args]
    strided = [np.repeat(a, 2, axis=-1)[..., ::2] if a.ndim > 1 else np.repeat(a, 2)[::2]
               for a in args]
    readonly = [a.copy() for a in args]
    for a in readonly:
        a.flags.writeable = False
    for variant in (fortran, strided, readonly, [a.tolist() for a in args]):
        np.testing.assert_allclose(ssm_kernel_dplr(*variant, 11), want, rtol=1e-13,
                                   atol=1e-15)
    for a, b in zip(args, before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("change,match,exc", [
    (lambda a: a.__setitem__(4, -a[4]), "dt must be positive", ValueError),
    (lambda a: a.__setitem__(0, a[0] + 2.0), r"Lambda must have real parts <= 0",
     ValueError),
    (lambda a: a.__setitem__(1, a[1][:, :3]), r"P must have the shape of Lambda, \(2, 4\)",
     ValueError),
    (lambda a: a.__setitem__(2, a[2][:1]), r"B must have shape \(2, 4\)", ValueError),
    (lambda a: a.__setitem__(3, a[3].T), r"C must have shape \(2, 4\)", ValueError),
    (lambda a: a.__setitem__(4, a[4][:1]), r"dt must have shape \(2,\)", ValueError),
    (lambda a: a[2].__setitem__((0, 0), np.nan), "B must be finite", ValueError),
    (lambda a: a.__setitem__(1, np.array([["a"] * 4] * 2)), "P must have a numeric dtype",
     TypeError),
])
def test_bad_inputs_name_the_argument(change, match, exc):
    args = _data(np.random.default_rng(8), 2, 4, 1)
    change(args)
    with pytest.raises(exc, match=match):
        ssm_kernel_dplr(*args, 8)


@pytest.mark.parametrize("L,exc,match", [(0, ValueError, "L must be at least 1"),
                                         (2.0, TypeError, "L must be an integer"),
                                         ("8", TypeError, "L must be an integer"),
                                         (1 << 40, ValueError, "L must be at most")])
def test_bad_lengths(L, exc, match):
    args = _data(np.random.default_rng(9), 1, 2, 1)
    with pytest.raises(exc, match=match):
        ssm_kernel_dplr(*args, L)


def test_vjp_grad_of_the_wrong_shape():
    args = _data(np.random.default_rng(10), 2, 3, 1)
    with pytest.raises(ValueError, match=r"grad must have shape \(2, 5\)"):
        ssm_kernel_dplr_vjp(*args, 5, np.ones((2, 4)))


def test_marginally_stable_hippo_forms_match_the_dense_recurrence():
    """HiPPO-LegT in S4's NPLR form: ``Re(Lambda) = 0``, rank 2, the full ``A`` stable."""
    from structlin.ssm_hippo import hippo_nplr

    Lam, P, B, _ = hippo_nplr("legt", 8, rank=2)
    H, N = 3, Lam.size
    rng = np.random.default_rng(11)
    C = rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))
    args = [np.tile(Lam, (H, 1)), np.tile(P[:, None], (1, H, 1)), np.tile(B, (H, 1)), C,
            np.array([0.01, 0.1, 0.3])]
    assert _rel(ssm_kernel_dplr(*args, 50), dense_kernel(*args, 50)) < 1e-9


def test_node_on_a_pole_is_reported():
    """``Re(Lambda) = 0`` with ``Im(Lambda) = (2/dt) tan(pi k / L)``: the node hits the pole."""
    Lam = np.array([[2j * np.tan(np.pi / 8) / 0.1, -1.0 + 0j]])
    args = [Lam, np.array([[0.1, 0.2]]), np.ones((1, 2)), np.ones((1, 2)), np.array([0.1])]
    with pytest.raises(ValueError, match="coincides with a pole of Lambda"):
        ssm_kernel_dplr(*args, 8)
