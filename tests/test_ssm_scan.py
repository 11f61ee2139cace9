"""The diagonal SSM scan (``structlin/ssm_scan.py``): equality with the causal convolution by
the kernel ``K[h, l] = 2 Re sum_n C B_bar A_bar^l`` (a NumPy reference written here), state
passing, ``ssm_step``, the VJP against finite differences, dtypes, batch isolation, layouts and
bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structlin.ssm_scan import ssm_scan, ssm_scan_vjp, ssm_step


def ref_discretize(Lam, B, dt, method):
    Lam = Lam.astype(np.complex128)
    h = np.asarray(dt, np.float64).reshape(-1, 1)
    if method == "zoh":
        Ab = np.exp(h * Lam)
        return Ab, (Ab - 1) / Lam * B
    Ab = (1 + h * Lam / 2) / (1 - h * Lam / 2)
    return Ab, h / (1 - h * Lam / 2) * B


def ref_kernel(Lam, B, C, dt, L, method="zoh"):
    """K[h, l] = 2 Re sum_n C B_bar A_bar^l (powers by exp of logs: independent of the scan)."""
    Ab, Bb = ref_discretize(Lam, B, dt, method)
    pw = np.exp(np.log(Ab)[..., None] * np.arange(L))
    return 2 * np.real(np.einsum("hn,hnl->hl", C * Bb, pw))


def ref_scan(Lam, B, C, dt, u, method="zoh", D=None):
    """The causal convolution of u (..., H, L) with the kernel, plus D u."""
    L = u.shape[-1]
    K = ref_kernel(Lam, B, C, dt, L, method)
    n = 2 * L
    y = np.fft.irfft(np.fft.rfft(u, n) * np.fft.rfft(K, n), n)[..., :L]
    if D is not None:
        y = y + D[:, None] * u
    return y


def params(rng, H, N, cdtype=np.complex128, rdtype=np.float64):
    Lam = (-rng.uniform(0.1, 1.0, (H, N)) + 1j * rng.uniform(-3, 3, (H, N))).astype(cdtype)
    B = (rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))).astype(cdtype)
    C = (rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))).astype(cdtype)
    dt = rng.uniform(0.05, 0.5, H).astype(rdtype)
    D = rng.standard_normal(H).astype(rdtype)
    return Lam, B, C, dt, D


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
@pytest.mark.parametrize("batch,H,N,L", [((), 1, 1, 1), ((2,), 3, 5, 40), ((2, 3), 4, 16, 129)])
def test_scan_equals_causal_convolution_with_the_kernel(method, batch, H, N, L):
    rng = np.random.default_rng(H * 100 + N)
    Lam, B, C, dt, D = params(rng, H, N)
    u = rng.standard_normal((*batch, H, L))
    y = ssm_scan(Lam, B, C, dt, u, method=method, D=D)
    assert y.shape == (*batch, H, L) and y.dtype == np.float64
    assert _rel(y, ref_scan(Lam, B, C, dt, u, method, D)) < 1e-12


def test_impulse_response_is_the_kernel():
    rng = np.random.default_rng(4)
    Lam, B, C, dt, _ = params(rng, 3, 8)
    u = np.zeros((3, 50))
    u[:, 0] = 1.0
    assert _rel(ssm_scan(Lam, B, C, dt, u), ref_kernel(Lam, B, C, dt, 50)) < 1e-12


def test_real_parameters_and_scalar_dt_accepted():
    rng = np.random.default_rng(5)
    Lam = -rng.uniform(0.1, 1, (2, 3))
    B, C = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    u = rng.standard_normal((2, 20))
    y = ssm_scan(Lam, B, C, 0.1, u)
    assert _rel(y, ref_scan(Lam, B, C, np.full(2, 0.1), u)) < 1e-12


def test_marginally_stable_lambda_zero_uses_the_limit():
    Lam = np.array([[0.0 + 0j, 0.0 + 1j]])
    B = np.ones((1, 2), complex)
    C = np.ones((1, 2), complex)
    u = np.ones((1, 5))
    y = ssm_scan(Lam, B, C, np.array([0.1]), u)
    Bb1 = (np.exp(0.1j) - 1) / 1j
    want = [2 * (0.1 * (t + 1) + (Bb1 * sum(np.exp(0.1j) ** k for k in range(t + 1))).real)
            for t in range(5)]
    np.testing.assert_allclose(y[0], want, rtol=1e-12)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 60), st.integers(0, 60))
def test_state_passing_splits_a_sequence_anywhere(seed, L1, L2):
    rng = np.random.default_rng(seed)
    Lam, B, C, dt, D = params(rng, 2, 3)
    u = rng.standard_normal((2, 2, L1 + L2))
    y, xT = ssm_scan(Lam, B, C, dt, u, D=D, return_state=True)
    y1, x1 = ssm_scan(Lam, B, C, dt, u[..., :L1], D=D, return_state=True)
    y2, x2 = ssm_scan(Lam, B, C, dt, u[..., L1:], D=D, state=x1, return_state=True)
    np.testing.assert_allclose(np.concatenate([y1, y2], -1), y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x2, xT, rtol=1e-12, atol=1e-12)


def test_initial_state_adds_its_free_response():
    rng = np.random.default_rng(6)
    Lam, B, C, dt, _ = params(rng, 2, 4)
    x0 = rng.standard_normal((2, 4)) + 1j * rng.standard_normal((2, 4))
    L = 30
    y = ssm_scan(Lam, B, C, dt, np.zeros((2, L)), state=x0)
    Ab, _ = ref_discretize(Lam, B, dt, "zoh")
    free = 2 * np.real(np.einsum("hn,hnl->hl", C * x0, Ab[..., None] ** np.arange(1, L + 1)))
    assert _rel(y, free) < 1e-12


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_L_steps_equal_the_scan(method):
    rng = np.random.default_rng(7)
    Lam, B, C, dt, D = params(rng, 3, 5)
    u = rng.standard_normal((2, 3, 12))
    x = np.zeros((2, 3, 5), complex)
    ys = []
    for t in range(12):
        y_t, x = ssm_step(Lam, B, C, dt, u[..., t], x, method=method, D=D)
        assert y_t.shape == (2, 3)
        ys.append(y_t)
    y, xT = ssm_scan(Lam, B, C, dt, u, method=method, D=D, return_state=True)
    # the same kernel and the same arithmetic per step: bit-identical
    np.testing.assert_array_equal(np.stack(ys, -1), y)
    np.testing.assert_array_equal(x, xT)


# ------------------------------------------------------------------------------------- VJP


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
@pytest.mark.parametrize("L", [1, 70])  # 70: five checkpoint chunks of the adjoint
def test_vjp_matches_finite_differences(method, L):
    rng = np.random.default_rng(L)
    H, N = 2, 3
    Lam, B, C, dt, D = params(rng, H, N)
    u = rng.standard_normal((2, H, L))
    x0 = rng.standard_normal((2, H, N)) + 1j * rng.standard_normal((2, H, N))
    g = rng.standard_normal((2, H, L))
    args = {"Lambda": Lam, "B": B, "C": C, "dt": dt, "u": u, "D": D, "state": x0}

    def loss(a):
        return float((g * ssm_scan(a["Lambda"], a["B"], a["C"], a["dt"], a["u"],
                                   method=method, D=a["D"], state=a["state"])).sum())

    grads = dict(zip(args, ssm_scan_vjp(Lam, B, C, dt, u, g, method=method, D=D, state=x0),
                     strict=True))
    h = 1e-6
    for name, a in args.items():
        gr = grads[name]
        assert gr.shape == a.shape and (gr.dtype.kind == "c") == (a.dtype.kind == "c"), name
        for _ in range(2):
            d = rng.standard_normal(a.shape)
            if a.dtype.kind == "c":
                d = d + 1j * rng.standard_normal(a.shape)
            plus, minus = dict(args), dict(args)
            plus[name] = a + h * d
            minus[name] = a - h * d
            fd = (loss(plus) - loss(minus)) / (2 * h)
            an = float(np.real(np.vdot(gr, d)))
            assert abs(fd - an) <= 1e-6 * max(abs(fd), abs(an), 1.0), (name, fd, an)


def test_vjp_returns_five_gradients_without_D_and_state():
    rng = np.random.default_rng(8)
    Lam, B, C, dt, _ = params(rng, 2, 3)
    u = rng.standard_normal((2, 10))
    out = ssm_scan_vjp(Lam, B, C, dt, u, np.ones((2, 10)))
    assert len(out) == 5
    assert [o.shape for o in out] == [(2, 3), (2, 3), (2, 3), (2,), (2, 10)]


def test_vjp_real_parameters_get_real_gradients_and_scalar_dt_a_scalar():
    rng = np.random.default_rng(9)
    Lam = -rng.uniform(0.1, 1, (2, 3))
    B, C = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    u = rng.standard_normal((2, 20))
    gL, gB, gC, gdt, _ = ssm_scan_vjp(Lam, B, C, 0.1, u, np.ones((2, 20)))
    assert gL.dtype == gB.dtype == gC.dtype == np.float64 and gdt.shape == ()
    f = lambda s: ssm_scan(Lam, B, C, s, u).sum()  # noqa: E731
    assert float(gdt) == pytest.approx((f(0.1 + 1e-6) - f(0.1 - 1e-6)) / 2e-6, rel=1e-6)


# ---------------------------------------------------------------------------------- dtypes


def test_single_precision_in_single_precision_out():
    rng = np.random.default_rng(10)
    Lam, B, C, dt, D = params(rng, 3, 4, np.complex64, np.float32)
    u = rng.standard_normal((2, 3, 64)).astype(np.float32)
    y, xT = ssm_scan(Lam, B, C, dt, u, D=D, return_state=True)
    assert y.dtype == np.float32 and xT.dtype == np.complex64
    assert _rel(y, ref_scan(Lam, B, C, dt, u.astype(np.float64), "zoh", D)) < 1e-5
    y_t, x = ssm_step(Lam, B, C, dt, u[..., 0], xT, D=D)
    assert y_t.dtype == np.float32 and x.dtype == np.complex64
    grads = ssm_scan_vjp(Lam, B, C, dt, u, np.ones_like(u), D=D, state=xT)
    assert [gr.dtype for gr in grads] == [np.complex64] * 3 + [np.float32] * 3 + [np.complex64]
    # single-precision gradients agree with the double-precision ones
    g64 = ssm_scan_vjp(*(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)
                         for a in (Lam, B, C, dt, u)), np.ones(u.shape), D=D.astype(np.float64))
    g32 = ssm_scan_vjp(Lam, B, C, dt, u, np.ones_like(u), D=D)
    for a, b in zip(g32, g64, strict=True):
        assert a.dtype in (np.float32, np.complex64)
        assert _rel(a, b) < 1e-4


def test_float64_u_promotes_to_double():
    rng = np.random.default_rng(11)
    Lam, B, C, dt, _ = params(rng, 2, 2, np.complex64, np.float32)
    y, xT = ssm_scan(Lam, B, C, dt, rng.standard_normal((2, 5)), return_state=True)
    assert y.dtype == np.float64 and xT.dtype == np.complex128


# ------------------------------------------------------------------- isolation and layouts


def test_nan_in_one_row_leaves_the_others_bit_identical():
    rng = np.random.default_rng(12)
    Lam, B, C, dt, D = params(rng, 3, 4)
    u = rng.standard_normal((4, 3, 50))
    x0 = rng.standard_normal((4, 3, 4)) + 0j
    y0 = ssm_scan(Lam, B, C, dt, u, D=D, state=x0)
    g0 = ssm_scan_vjp(Lam, B, C, dt, u, np.ones_like(u), D=D, state=x0)[4]
    bad = u.copy()
    bad[1, 2, 10] = np.nan
    bad[3, 0, 0] = np.inf
    x_bad = x0.copy()
    x_bad[2, 1, 0] = np.nan
    y = ssm_scan(Lam, B, C, dt, bad, D=D, state=x_bad)
    gu = ssm_scan_vjp(Lam, B, C, dt, bad, np.ones_like(u), D=D, state=x_bad)[4]
    ok = np.ones((4, 3), bool)
    ok[1, 2] = ok[3, 0] = ok[2, 1] = False
    np.testing.assert_array_equal(y[ok], y0[ok])
    np.testing.assert_array_equal(gu[ok], g0[ok])
    assert np.isnan(y[1, 2, 10:]).all() and np.isfinite(y[1, 2, :10]).all()


def test_memory_layouts_and_lists_give_the_contiguous_result():
    rng = np.random.default_rng(13)
    Lam, B, C, dt, D = params(rng, 3, 4)
    u = rng.standard_normal((2, 3, 20))
    want = ssm_scan(Lam, B, C, dt, u, D=D)
    wide = np.empty((2, 3, 40))
    wide[..., ::2] = u
    ro = u.copy()
    ro.flags.writeable = False
    for variant in (wide[..., ::2], np.asfortranarray(u), ro):
        # to rounding, as the conformance base class asks: a copy lands at another alignment,
        # and a vectorised loop's peeling (so its order of sums) can follow it (seen once, 1 ulp)
        np.testing.assert_allclose(ssm_scan(Lam, B, C, dt, variant, D=D), want, rtol=1e-13,
                                   atol=1e-15)
    np.testing.assert_allclose(
        ssm_scan(np.asfortranarray(Lam), B.T.copy().T, C, dt, u, D=D), want, rtol=1e-13,
        atol=1e-15)
    got = ssm_scan(Lam.tolist(), B.tolist(), C.tolist(), dt.tolist(), u.tolist(), D=D.tolist())
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(14)
    Lam, B, C, dt, D = params(rng, 2, 3)
    u = rng.standard_normal((2, 9))
    x0 = np.ones((2, 3), complex)
    g = np.ones((2, 9))
    args = (Lam, B, C, dt, u, D, x0, g)
    before = [a.copy() for a in args]
    ssm_scan(Lam, B, C, dt, u, D=D, state=x0, return_state=True)
    ssm_scan_vjp(Lam, B, C, dt, u, g, D=D, state=x0)
    ssm_step(Lam, B, C, dt, u[:, 0], x0, D=D)
    for a, b in zip(args, before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_empty_batch_and_empty_sequence():
    rng = np.random.default_rng(15)
    Lam, B, C, dt, _ = params(rng, 2, 3)
    assert ssm_scan(Lam, B, C, dt, np.zeros((0, 2, 5))).shape == (0, 2, 5)
    x0 = np.ones((2, 3), complex)
    y, xT = ssm_scan(Lam, B, C, dt, np.zeros((2, 0)), state=x0, return_state=True)
    assert y.shape == (2, 0)
    np.testing.assert_array_equal(xT, x0)
    out = ssm_scan_vjp(Lam, B, C, dt, np.zeros((2, 0)), np.zeros((2, 0)))
    assert all(np.all(o == 0) for o in out)


# ----------------------------------------------------------------------------- bad inputs

_L = np.array([[-0.5 + 1j, -1.0]])
_B = np.ones((1, 2), complex)
_dt = np.array([0.1])
_u = np.ones((1, 4))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: ssm_scan(_L[0], _B, _B, _dt, _u), ValueError, r"Lambda must have shape \(H, N\)"),
    (lambda: ssm_scan(_L, np.ones((1, 3)), _B, _dt, _u), ValueError,
     r"B must have shape \(1, 2\).*got \(1, 3\)"),
    (lambda: ssm_scan(_L, _B, np.ones((2, 2)), _dt, _u), ValueError,
     r"C must have shape \(1, 2\).*got \(2, 2\)"),
    (lambda: ssm_scan(_L, _B, _B, np.ones(2), _u), ValueError, r"dt must have shape \(1,\)"),
    (lambda: ssm_scan(_L, _B, _B, _dt, np.ones((2, 4))), ValueError,
     r"u must have shape \(\.\.\., 1, L\).*got \(2, 4\)"),
    (lambda: ssm_scan(_L, _B, _B, _dt, np.ones(4)), ValueError, "u must have at least 2"),
    (lambda: ssm_scan(_L, _B, _B, _dt, _u, D=np.ones(2)), ValueError, r"D must have shape \(1,\)"),
    (lambda: ssm_scan(_L, _B, _B, _dt, _u, state=np.ones((1, 3))), ValueError,
     r"state must have shape \(1, 2\)"),
    (lambda: ssm_scan(_L, _B, _B, np.array([0.0]), _u), ValueError, "dt must be positive"),
    (lambda: ssm_scan(_L, _B, _B, np.array([-1.0]), _u), ValueError, "dt must be positive"),
    (lambda: ssm_scan(_L, _B, _B, np.array([np.inf]), _u), ValueError, "dt must be finite"),
    (lambda: ssm_scan(_L * np.nan, _B, _B, _dt, _u), ValueError, "Lambda must be finite"),
    (lambda: ssm_scan(-_L, _B, _B, _dt, _u), ValueError, "Lambda must have non-positive real"),
    (lambda: ssm_scan(_L, _B, _B, _dt, _u, method="euler"), ValueError, "method must be one of"),
    (lambda: ssm_scan(_L, _B, _B, _dt, _u + 0j), TypeError, "u must be real"),
    (lambda: ssm_scan(_L, _B, _B, _dt + 0j, _u), TypeError, "dt must be real"),
    (lambda: ssm_scan(_L, _B, _B, _dt, _u, return_state=1), TypeError, "return_state"),
    (lambda: ssm_scan(_L, _B, _B, _dt, np.array([["a"] * 4])), TypeError, "u must have a numeric"),
    (lambda: ssm_scan(_L, _B, None, _dt, _u), TypeError, "C must be an array"),
    (lambda: ssm_scan_vjp(_L, _B, _B, _dt, _u, np.ones((1, 5))), ValueError,
     r"grad must have shape \(1, 4\).*got \(1, 5\)"),
    (lambda: ssm_scan_vjp(_L, _B, _B, _dt, _u, _u + 1j), TypeError, "grad must be real"),
    (lambda: ssm_step(_L, _B, _B, _dt, np.ones(2), np.zeros((1, 2))), ValueError,
     r"u_t must have shape \(\.\.\., 1\)"),
    (lambda: ssm_step(_L, _B, _B, _dt, np.ones(1), None), TypeError, "state must be an array"),
    (lambda: ssm_step(_L, _B, _B, _dt, np.ones((3, 1)), np.zeros((1, 2))), ValueError,
     r"state must have shape \(3, 1, 2\)"),
])
def test_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------------------------ exact identities


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(-3, 3), st.floats(-3, 3))
def test_scan_is_linear_in_u(seed, a, b):
    rng = np.random.default_rng(seed)
    Lam, B, C, dt, D = params(rng, 2, 3)
    u1, u2 = rng.standard_normal((2, 2, 2, 25))
    lhs = ssm_scan(Lam, B, C, dt, a * u1 + b * u2, D=D)
    rhs = a * ssm_scan(Lam, B, C, dt, u1, D=D) + b * ssm_scan(Lam, B, C, dt, u2, D=D)
    np.testing.assert_allclose(lhs, rhs, atol=1e-12 * max(1.0, np.abs(rhs).max()))


def test_scan_is_causal_and_time_invariant():
    rng = np.random.default_rng(16)
    Lam, B, C, dt, D = params(rng, 2, 3)
    u = rng.standard_normal((2, 40))
    y = ssm_scan(Lam, B, C, dt, u, D=D)
    changed = u.copy()
    changed[:, 25:] += 1.0
    np.testing.assert_array_equal(ssm_scan(Lam, B, C, dt, changed, D=D)[:, :25], y[:, :25])
    shifted = np.concatenate([np.zeros((2, 7)), u[:, :33]], axis=1)
    np.testing.assert_allclose(ssm_scan(Lam, B, C, dt, shifted, D=D)[:, 7:], y[:, :33],
                               rtol=1e-12, atol=1e-12)


def test_vjp_in_u_is_the_adjoint_dot_test():
    rng = np.random.default_rng(17)
    Lam, B, C, dt, D = params(rng, 3, 4)
    u = rng.standard_normal((2, 3, 30))
    g = rng.standard_normal((2, 3, 30))
    gu = ssm_scan_vjp(Lam, B, C, dt, u, g, D=D)[4]
    lhs = np.vdot(g, ssm_scan(Lam, B, C, dt, u, D=D))
    assert lhs == pytest.approx(np.vdot(gu, u), rel=1e-12)
