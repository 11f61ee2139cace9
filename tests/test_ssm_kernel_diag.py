"""S4D's convolution kernel (:func:`structlin.ssm_kernel_diag`) and the fused
:func:`structlin.ssm_kernel`: equality with a NumPy transcription of S4D's kernel computation
(``exp`` of ``dt Lambda l``, then the sum over modes), the recurrence, the ``Lambda = 0`` limit,
VJPs against finite differences for every argument, dtypes, batch isolation, layouts, lists,
inputs untouched, warnings and bad inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structlin.ssm_kernels import (
    ssm_kernel,
    ssm_kernel_diag,
    ssm_kernel_diag_vjp,
    ssm_kernel_vjp,
)
from tests.strategies import seeds

METHODS = ("zoh", "bilinear")


def reference(Lambda, B, C, dt, L, method="zoh"):
    """S4D's kernel in complex128 from the definition (s4's ``S4DKernel`` for ZOH: ``C (exp(dtA)
    - 1) / A B`` times ``exp(dtA l)``, twice the real part)."""
    Lam = np.asarray(Lambda, np.complex128)
    Bc, Cc = np.asarray(B, np.complex128), np.asarray(C, np.complex128)
    d = np.asarray(dt, np.float64)[..., None]
    ls = np.arange(L)
    if method == "zoh":
        dtA = Lam * d
        Bbar = np.where(Lam == 0, d, (np.exp(dtA) - 1) / np.where(Lam == 0, 1, Lam)) * Bc
        P = np.exp(dtA[..., None] * ls)
    else:
        q = 1 - d * Lam / 2
        Abar = (1 + d * Lam / 2) / q
        Bbar = d * Bc / q
        P = Abar[..., None] ** ls
    return 2 * np.einsum("...n,...nl->...l", Cc * Bbar, P).real


def _params(rng, shape, dtype=np.complex128, dt_range=(1e-3, 1e-1)):
    """S4D-Lin-like modes: Re Lambda = -1/2 (some spread), Im Lambda = pi n."""
    N = shape[-1]
    Lam = (-rng.uniform(0.2, 0.8, shape) + 1j * np.pi * np.arange(N)
           * rng.uniform(0.8, 1.2, shape)).astype(dtype)
    B = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    C = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    dt = np.exp(rng.uniform(np.log(dt_range[0]), np.log(dt_range[1]), shape[:-1]))
    return Lam, B, C, dt.astype(np.empty(0, dtype).real.dtype)


def _rel(a, b):
    return float(np.abs(np.asarray(a) - b).max() / max(np.abs(b).max(), 1e-300))


@pytest.mark.parametrize("method", METHODS)
def test_matches_the_reference_in_double_precision(method):
    rng = np.random.default_rng(0)
    Lam, B, C, dt = _params(rng, (3, 5))
    K = ssm_kernel_diag(Lam, B, C, dt, 300, method=method)
    assert K.shape == (3, 300) and K.dtype == np.float64
    assert _rel(K, reference(Lam, B, C, dt, 300, method)) < 1e-12


@pytest.mark.parametrize("method", METHODS)
def test_single_precision_in_single_precision_out_and_accurate_at_long_lengths(method):
    """complex64 in -> float32 out; at L = 8192 (many anchors) the error stays at the level of
    the rounding of dt Lambda to complex64 (the float32 S4D reference's own error)."""
    rng = np.random.default_rng(1)
    Lam, B, C, dt = _params(rng, (4, 8), np.complex64)
    L = 8192
    K = ssm_kernel_diag(Lam, B, C, dt, L, method=method)
    assert K.dtype == np.float32
    # the exact kernel of the complex64 inputs (dt Lambda formed in float64)
    ref = reference(Lam, B, C, dt, L, method)
    assert _rel(K, ref) < 2e-6
    # the float32 reference of S4D's code, for comparison: not more accurate
    if method == "zoh":
        dtA = (Lam * dt[:, None]).astype(np.complex64)
        P = np.exp(dtA[..., None] * np.arange(L, dtype=np.float32))
        Cp = C * B * (np.exp(dtA) - 1) / Lam
        K32 = 2 * np.einsum("hn,hnl->hl", Cp, P).real
        assert _rel(K, ref) <= _rel(K32, ref)


def test_is_the_impulse_response_of_the_discrete_recurrence():
    rng = np.random.default_rng(2)
    Lam, B, C, dt = _params(rng, (2, 3))
    for method in METHODS:
        K = ssm_kernel_diag(Lam, B, C, dt, 40, method=method)
        d = dt[:, None]
        if method == "zoh":
            Abar, Bbar = np.exp(d * Lam), (np.exp(d * Lam) - 1) / Lam * B
        else:
            Abar = (1 + d * Lam / 2) / (1 - d * Lam / 2)
            Bbar = d * B / (1 - d * Lam / 2)
        x = np.zeros_like(Lam)
        ys = []
        for t in range(40):
            x = Abar * x + Bbar * (1.0 if t == 0 else 0.0)
            ys.append(2 * (C * x).sum(-1).real)
        np.testing.assert_allclose(K, np.stack(ys, -1), rtol=0, atol=1e-12 * np.abs(K).max())


def test_lambda_zero_is_the_zoh_limit():
    B = np.array([[1.0 + 2j, 0.5]])
    C = np.array([[0.5 - 1j, 2.0]])
    dt = np.array([0.25])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # marginally stable: accepted silently
        K = ssm_kernel_diag(np.zeros((1, 2), complex), B, C, dt, 5)
    np.testing.assert_allclose(K, np.full((1, 5), 2 * (C * dt * B).sum().real), rtol=1e-15)
    # continuity: a tiny Lambda gives (nearly) the same kernel, without cancellation
    Kt = ssm_kernel_diag(np.full((1, 2), -1e-12 + 1e-12j), B, C, dt, 5)
    np.testing.assert_allclose(Kt, K, rtol=1e-10)
    small = np.full((1, 2), -1e-9 + 0j)
    K2 = ssm_kernel_diag(small, B, C, dt, 5)
    np.testing.assert_allclose(K2, K, rtol=1e-8)


def test_unstable_lambda_is_refused_and_marginal_is_accepted():
    rng = np.random.default_rng(3)
    Lam, B, C, dt = _params(rng, (2, 3))
    Lam[1, 2] = 0.1 + 1j
    with pytest.raises(ValueError, match=r"non-positive real parts.*largest is 0\.1"):
        ssm_kernel_diag(Lam, B, C, dt, 50)
    with pytest.raises(ValueError, match="non-positive real parts"):
        ssm_kernel_diag_vjp(Lam, B, C, dt, 50, np.ones((2, 50)))
    Lam[1, 2] = 1j  # Re = 0: a marginal mode, as in HiPPO-LegT
    assert _rel(ssm_kernel_diag(Lam, B, C, dt, 50), reference(Lam, B, C, dt, 50)) < 1e-12


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dt_range", [(1e-3, 1e-2), (0.2, 0.6)])
def test_vjp_matches_finite_differences_for_every_argument(method, dt_range):
    """Small ``dt Lambda`` (the series of d/dz (e^z - 1)/z) and large; complex arguments in
    PyTorch's convention: ``Re(conj(grad) . d)`` is the directional derivative."""
    rng = np.random.default_rng(4)
    H, N, L = 2, 3, 70
    args = list(_params(rng, (H, N), dt_range=dt_range))
    g = rng.standard_normal((H, L))
    grads = ssm_kernel_diag_vjp(*args, L, g, method=method)

    def loss(a):
        return float((g * ssm_kernel_diag(*a, L, method=method)).sum())

    for i, name in enumerate(("Lambda", "B", "C", "dt")):
        a = args[i]
        assert grads[i].shape == a.shape and grads[i].dtype == a.dtype, name
        for _ in range(2):
            d = rng.standard_normal(a.shape)
            if a.dtype.kind == "c":
                d = d + 1j * rng.standard_normal(a.shape)
            h = 1e-6 * (float(np.abs(a).max()) if name == "dt" else 1.0)
            plus, minus = list(args), list(args)
            plus[i] = a + h * d
            minus[i] = a - h * d
            fd = (loss(plus) - loss(minus)) / (2 * h)
            an = float(np.real(np.vdot(grads[i], d)))
            assert abs(fd - an) <= 1e-6 * max(1.0, abs(fd)), (name, fd, an)


def test_vjp_at_lambda_zero_is_finite_and_matches_the_limit():
    B = np.array([[1.0 + 2j]])
    C = np.array([[0.5 - 1j]])
    dt = np.array([0.25])
    g = np.ones((1, 6))
    g0 = ssm_kernel_diag_vjp(np.zeros((1, 1), complex), B, C, dt, 6, g)
    g1 = ssm_kernel_diag_vjp(np.full((1, 1), -1e-7 + 0j), B, C, dt, 6, g)
    for a, b in zip(g0, g1, strict=True):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)


def test_single_precision_gradients_and_real_inputs():
    rng = np.random.default_rng(5)
    Lam, B, C, dt = _params(rng, (2, 4), np.complex64)
    g = rng.standard_normal((2, 30)).astype(np.float32)
    out = ssm_kernel_diag_vjp(Lam, B, C, dt, 30, g)
    assert [o.dtype for o in out] == [np.complex64, np.complex64, np.complex64, np.float32]
    Br, Cr = B.real.copy(), C.real.copy()  # float32 B, C: promoted, real gradients back
    K = ssm_kernel_diag(Lam, Br, Cr, dt, 30)
    assert K.dtype == np.float32
    _, gb, gc, _ = ssm_kernel_diag_vjp(Lam, Br, Cr, dt, 30, g)
    assert gb.dtype == np.float32 and gc.dtype == np.float32
    ref = ssm_kernel_diag_vjp(*(a.astype(np.complex128) for a in (Lam, Br, Cr)),
                              dt.astype(np.float64), 30, g.astype(np.float64))
    np.testing.assert_allclose(gb, ref[1].real, rtol=1e-3, atol=1e-3 * np.abs(ref[1]).max())
    # float64 dt with complex64 Lambda promotes to double precision
    assert ssm_kernel_diag(Lam, B, C, dt.astype(np.float64), 4).dtype == np.float64


def test_rows_are_independent():
    """A NaN in one channel's B (or in one row of grad) stays in that row; the others are
    bit-identical."""
    rng = np.random.default_rng(6)
    Lam, B, C, dt = _params(rng, (4, 3))
    clean = ssm_kernel_diag(Lam, B, C, dt, 200)
    Bb = B.copy()
    Bb[1, 2] = np.nan
    K = ssm_kernel_diag(Lam, Bb, C, dt, 200)
    assert np.isnan(K[1]).all()
    np.testing.assert_array_equal(np.delete(K, 1, 0), np.delete(clean, 1, 0))
    g = rng.standard_normal((4, 200))
    gclean = ssm_kernel_diag_vjp(Lam, B, C, dt, 200, g)
    g[2, 5] = np.inf
    gbad = ssm_kernel_diag_vjp(Lam, B, C, dt, 200, g)
    for a, b in zip(gbad, gclean, strict=True):
        np.testing.assert_array_equal(np.delete(a, 2, 0), np.delete(b, 2, 0))


def test_leading_batch_dimensions():
    rng = np.random.default_rng(7)
    Lam, B, C, dt = _params(rng, (2, 3, 4))
    K = ssm_kernel_diag(Lam, B, C, dt, 20)
    assert K.shape == (2, 3, 20)
    flat = ssm_kernel_diag(*(a.reshape(6, -1) for a in (Lam, B, C)), dt.reshape(6), 20)
    np.testing.assert_array_equal(K.reshape(6, 20), flat)
    g = rng.standard_normal(K.shape)
    grads = ssm_kernel_diag_vjp(Lam, B, C, dt, 20, g)
    assert [x.shape for x in grads] == [Lam.shape, B.shape, C.shape, dt.shape]
    assert ssm_kernel_diag(Lam[:0], B[:0], C[:0], dt[:0], 5).shape == (0, 3, 5)


def test_layouts_lists_and_inputs_untouched():
    rng = np.random.default_rng(8)
    Lam, B, C, dt = _params(rng, (3, 4))
    ref = ssm_kernel_diag(Lam, B, C, dt, 30)
    before = [a.copy() for a in (Lam, B, C, dt)]
    big = np.zeros((3, 8), complex)
    big[:, ::2] = Lam
    ro = B.copy()
    ro.flags.writeable = False
    for args in ([big[:, ::2], B, C, dt], [np.asfortranarray(Lam), B, np.asfortranarray(C), dt],
                 [Lam, ro, C, dt], [Lam.tolist(), B.tolist(), C.tolist(), dt.tolist()]):
        np.testing.assert_allclose(ssm_kernel_diag(*args, 30), ref, rtol=1e-14, atol=1e-14)
    g = rng.standard_normal((3, 30))
    g0 = g.copy()
    ssm_kernel_diag_vjp(Lam, B, C, dt, 30, g)
    for a, b in zip((Lam, B, C, dt), before, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(g, g0)


@settings(max_examples=10, deadline=None)
@given(seed=seeds(), H=st.integers(1, 3), N=st.integers(1, 5), L=st.integers(1, 400),
       method=st.sampled_from(METHODS))
def test_matches_the_reference_for_any_sizes(seed, H, N, L, method):
    rng = np.random.default_rng(seed)
    Lam, B, C, dt = _params(rng, (H, N), dt_range=(1e-3, 1.0))
    K = ssm_kernel_diag(Lam, B, C, dt, L, method=method)
    ref = reference(Lam, B, C, dt, L, method)
    np.testing.assert_allclose(K, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def _bad_calls():
    Lam = -np.ones((2, 3), complex)
    B = C = np.ones((2, 3), complex)
    dt = np.ones(2)
    g = np.ones((2, 4))
    nanL = Lam.copy()
    nanL[0, 0] = np.nan
    infL = Lam.copy()
    infL[1, 2] = complex(-np.inf, 0.0)
    return [
        ("B shape", lambda: ssm_kernel_diag(Lam, np.ones((2, 4)), C, dt, 4), ValueError,
         r"B must have shape \(2, 3\).*got \(2, 4\)"),
        ("C shape", lambda: ssm_kernel_diag(Lam, B, np.ones((3,)), dt, 4), ValueError,
         r"C must have shape \(2, 3\).*got \(3,\)"),
        ("dt shape", lambda: ssm_kernel_diag(Lam, B, C, np.ones(3), 4), ValueError,
         r"dt must have shape \(2,\).*got \(3,\)"),
        ("Lambda 1-d", lambda: ssm_kernel_diag(np.ones(3), B, C, dt, 4), ValueError,
         "Lambda must have at least 2"),
        ("dt zero", lambda: ssm_kernel_diag(Lam, B, C, np.array([1.0, 0.0]), 4), ValueError,
         "dt must be positive"),
        ("dt negative", lambda: ssm_kernel_diag(Lam, B, C, -dt, 4), ValueError,
         "dt must be positive"),
        ("dt NaN", lambda: ssm_kernel_diag(Lam, B, C, np.array([1.0, np.nan]), 4), ValueError,
         "dt must be positive"),
        ("dt complex", lambda: ssm_kernel_diag(Lam, B, C, dt + 0j, 4), TypeError,
         "dt must be real"),
        ("Lambda NaN", lambda: ssm_kernel_diag(nanL, B, C, dt, 4), ValueError,
         "Lambda must be finite"),
        ("Lambda inf", lambda: ssm_kernel_diag(infL, B, C, dt, 4), ValueError,
         "Lambda must be finite"),
        ("method", lambda: ssm_kernel_diag(Lam, B, C, dt, 4, method="euler"), ValueError,
         "method must be one of"),
        ("L zero", lambda: ssm_kernel_diag(Lam, B, C, dt, 0), ValueError, "L must be at least 1"),
        ("L float", lambda: ssm_kernel_diag(Lam, B, C, dt, 4.0), TypeError, "L must be an integer"),
        ("L huge", lambda: ssm_kernel_diag(Lam, B, C, dt, 1 << 50), ValueError,
         "L must be at most"),
        ("object B", lambda: ssm_kernel_diag(Lam, B.astype(object), C, dt, 4), TypeError,
         "B must have a numeric dtype"),
        ("string dt", lambda: ssm_kernel_diag(Lam, B, C, np.array(["a", "b"]), 4), TypeError,
         "dt must have a numeric dtype"),
        ("grad shape", lambda: ssm_kernel_diag_vjp(Lam, B, C, dt, 4, np.ones((2, 5))),
         ValueError, r"grad must have shape \(2, 4\).*got \(2, 5\)"),
        ("grad complex", lambda: ssm_kernel_diag_vjp(Lam, B, C, dt, 4, g + 0j), TypeError,
         "grad must be real"),
        ("grad None", lambda: ssm_kernel_diag_vjp(Lam, B, C, dt, 4, None), TypeError, "grad"),
        ("vjp method", lambda: ssm_kernel_diag_vjp(Lam, B, C, dt, 4, g, method="ZOH"),
         ValueError, "method must be one of"),
    ]


@pytest.mark.parametrize("case", _bad_calls(), ids=lambda c: c[0])
def test_bad_inputs_are_refused_by_name(case):
    _, call, exc, match = case
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------------------ ssm_kernel (discrete)


def test_ssm_kernel_keeps_single_precision_and_matches_the_power_sum():
    rng = np.random.default_rng(9)
    A = (0.95 * np.exp(1j * rng.uniform(0, np.pi, (3, 4)))).astype(np.complex64)
    B = rng.standard_normal((3, 4)).astype(np.float32)
    C = (rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))).astype(np.complex64)
    k = ssm_kernel(A, B, C, 500)
    assert k.dtype == np.complex64
    A64 = A.astype(np.complex128)
    ref = np.einsum("hn,hnl->hl", C.astype(np.complex128) * B,
                    A64[..., None] ** np.arange(500))
    assert _rel(k, ref) < 1e-5
    k64 = ssm_kernel(A64, B.astype(np.float64), C.astype(np.complex128), 500)
    assert _rel(k64, ref) < 1e-13
    assert ssm_kernel(A.real.copy(), B, B, 8).dtype == np.float32


def test_ssm_kernel_vjp_matches_finite_differences():
    rng = np.random.default_rng(10)
    A = 0.9 * np.exp(1j * rng.uniform(0, np.pi, (2, 3)))
    B = rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))
    C = rng.standard_normal((2, 3))  # real C: a real gradient
    L = 25
    g = rng.standard_normal((2, L)) + 1j * rng.standard_normal((2, L))
    grads = ssm_kernel_vjp(A, B, C, L, g)
    assert grads[2].dtype == np.float64
    args = [A, B, C]
    for i in range(3):
        d = rng.standard_normal(args[i].shape)
        if args[i].dtype.kind == "c":
            d = d + 1j * rng.standard_normal(d.shape)
        h = 1e-6
        plus, minus = list(args), list(args)
        plus[i] = args[i] + h * d
        minus[i] = args[i] - h * d
        fd = (np.vdot(g, ssm_kernel(*plus, L)).real - np.vdot(g, ssm_kernel(*minus, L)).real) / (
            2 * h)
        an = np.real(np.vdot(grads[i], d))
        assert abs(fd - an) <= 1e-6 * max(1.0, abs(fd)), (i, fd, an)
    with pytest.raises(ValueError, match=r"grad must have shape \(2, 25\)"):
        ssm_kernel_vjp(A, B, C, L, g[:, :3])


# ------------------------------------------------------------------ ssm_conv_chunked, long chunks


@pytest.mark.parametrize("chunk", [128, 200])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_chunked_scan_with_long_chunks_equals_one_shot_and_passes_state(chunk, dtype):
    """From chunk = VANDERMONDE_CHUNK the state terms are fused Vandermonde products: the result
    equals the one-shot FFT convolution, and the state carries over between pieces."""
    from structlin import fftconv, ssm_conv_chunked
    from structlin.ssm_kernels import VANDERMONDE_CHUNK

    assert chunk >= VANDERMONDE_CHUNK
    rng = np.random.default_rng(11)
    H, N, L = 3, 4, 700
    A = (rng.uniform(0.9, 0.999, (H, N)) * np.exp(1j * rng.uniform(0, np.pi, (H, N)))).astype(dtype)
    B = rng.standard_normal((H, N)).astype(dtype)
    C = (rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))).astype(dtype)
    D = rng.standard_normal(H).astype(np.empty(0, dtype).real.dtype)
    u = rng.standard_normal((2, H, L)).astype(D.dtype)
    y, x = ssm_conv_chunked(u, A, B, C, chunk, D, return_state=True)
    assert y.dtype == dtype and x.dtype == dtype and x.shape == (2, H, N)
    ref = fftconv(u.astype(np.float64), ssm_kernel(*(a.astype(np.complex128) for a in (A, B, C)),
                                                   L), D.astype(np.float64))
    tol = 1e-11 if dtype == np.complex128 else 2e-5
    np.testing.assert_allclose(y, ref, rtol=0, atol=tol * np.abs(ref).max())
    cut = 333
    y1, x1 = ssm_conv_chunked(u[..., :cut], A, B, C, chunk, D, return_state=True)
    y2, x2 = ssm_conv_chunked(u[..., cut:], A, B, C, chunk, D, state=x1, return_state=True)
    np.testing.assert_allclose(np.concatenate([y1, y2], -1), ref, rtol=0,
                               atol=tol * np.abs(ref).max())
    np.testing.assert_allclose(x2, x, rtol=0, atol=tol * np.abs(x).max())
    # the short-chunk path (power tables) gives the same state
    np.testing.assert_allclose(ssm_conv_chunked(u, A, B, C, 50, D, return_state=True)[1], x,
                               rtol=0, atol=tol * np.abs(x).max())
