"""Long convolutions against np.convolve / scipy.signal.convolve and the Toeplitz reference."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.signal
from hypothesis import given
from hypothesis import strategies as st

import structlin as sl
from structlin._cpu import _schedule
from structlin._cpu import conv as cpu_conv
from tests import conformance as cf
from tests.strategies import batch_shapes, dtypes, random_array, seeds, tolerance

# lengths that exercise both engines: 1, primes, odd, powers of two, around the direct limit
LENGTHS = st.sampled_from([1, 2, 3, 5, 7, 16, 31, 32, 33, 37, 64, 65, 67, 97, 128, 131, 257])


def reference_fftconv(u, k, D=None, pregate=None, postgate=None, causal=True):
    """np.convolve channel by channel, in complex128."""
    u = np.asarray(u, dtype=np.complex128)
    L = u.shape[-1]
    k = np.asarray(k, dtype=np.complex128)
    Lk = k.shape[1]
    v = u if pregate is None else u * pregate
    off = 0 if causal else (Lk - 1) // 2
    y = np.empty_like(u)
    for idx in np.ndindex(u.shape[:-1]):
        full = np.convolve(v[idx], k[idx[-1]])
        y[idx] = full[off:off + L]
    if D is not None:
        y = y + np.asarray(D)[:, None] * u
    if postgate is not None:
        y = y * postgate
    return y


def spec(causal=True, D=False, pre=False, post=False):
    """fftconv as a linear map of u (params: k and optional D and gates)."""

    def fast(p, x):
        return sl.fftconv(x, p["k"], p.get("D"), pregate=p.get("pregate"),
                          postgate=p.get("postgate"), causal=causal)

    def vjp(p, x, g):
        gu, gk, gD, gpre, gpost = sl.fftconv_vjp(
            x, p["k"], p.get("D"), g, pregate=p.get("pregate"), postgate=p.get("postgate"),
            causal=causal)
        out = {"x": gu, "k": gk}
        for name, val in (("D", gD), ("pregate", gpre), ("postgate", gpost)):
            if name in p:
                out[name] = val
            else:
                assert val is None
        return out

    def adjoint(p, y):
        return sl.fftconv_vjp(np.zeros_like(y), p["k"], p.get("D"), y,
                              pregate=p.get("pregate"), postgate=p.get("postgate"),
                              causal=causal)[0]

    return cf.OperatorSpec(fast=fast, dense=None, vjp=vjp, adjoint=adjoint)


def _params(rng, batch, H, L, Lk, dt, D, pre, post):
    p = {"k": random_array(rng, (H, Lk), dt)}
    if D:
        p["D"] = random_array(rng, (H,), dt)
    if pre:
        p["pregate"] = random_array(rng, (*batch, H, L), dt)
    if post:
        p["postgate"] = random_array(rng, (*batch, H, L), dt)
    return p


@given(L=LENGTHS, Lk=LENGTHS, H=st.integers(1, 3), batch=batch_shapes(2, 2), dt=dtypes(),
       causal=st.booleans(), D=st.booleans(), pre=st.booleans(), post=st.booleans(),
       seed=seeds())
def test_fftconv_matches_np_convolve_per_channel(L, Lk, H, batch, dt, causal, D, pre, post,
                                                 seed):
    rng = np.random.default_rng(seed)
    u = random_array(rng, (*batch, H, L), dt)
    p = _params(rng, batch, H, L, Lk, dt, D, pre, post)
    before = {n: a.copy() for n, a in p.items()}
    u_before = u.copy()
    y = sl.fftconv(u, p["k"], p.get("D"), pregate=p.get("pregate"),
                   postgate=p.get("postgate"), causal=causal)
    assert y.shape == u.shape and y.dtype == dt
    ref = reference_fftconv(u, p["k"], p.get("D"), p.get("pregate"), p.get("postgate"), causal)
    err = cf._rel_err(y, ref)
    assert err <= tolerance(dt, L + Lk) * 4, err
    np.testing.assert_array_equal(u, u_before)
    for n, a in p.items():
        np.testing.assert_array_equal(a, before[n], err_msg=f"{n} was modified")


@pytest.mark.parametrize("L,Lk", [(50, 50), (64, 7), (40, 101), (129, 64), (1, 90), (90, 1)])
def test_fftconv_same_matches_scipy_signal_convolve_same(L, Lk):
    rng = np.random.default_rng(L * Lk)
    u = rng.standard_normal((2, L))
    k = rng.standard_normal((2, Lk))
    ref = np.stack([scipy.signal.convolve(u[h], k[h], mode="same") for h in range(2)])
    np.testing.assert_allclose(sl.fftconv(u, k, causal=False), ref, atol=1e-12)
    full = np.stack([scipy.signal.convolve(u[h], k[h]) for h in range(2)])
    np.testing.assert_allclose(sl.fftconv(u, k), full[:, :L], atol=1e-12)


@given(L=LENGTHS, Lk=LENGTHS, dt=dtypes(), causal=st.booleans(), seed=seeds())
def test_fftconv_equals_toeplitz_product(L, Lk, dt, causal, seed):
    rng = np.random.default_rng(seed)
    k = random_array(rng, (2, Lk), dt)
    u = random_array(rng, (3, 2, L), dt)
    T = sl.fftconv_to_dense(k, L, causal=causal)
    assert T.shape == (2, L, L) and T.dtype == dt
    ref = np.einsum("hts,bhs->bht", T.astype(np.complex128), u)
    assert cf._rel_err(sl.fftconv(u, k, causal=causal), ref) <= tolerance(dt, L + Lk) * 4


@pytest.mark.parametrize("engine", ["direct", "fft"])
@pytest.mark.parametrize("causal", [True, False])
def test_fftconv_direct_and_fft_engines_agree(engine, causal, monkeypatch):
    rng = np.random.default_rng(3)
    u = rng.standard_normal((2, 3, 45))
    k = rng.standard_normal((3, 20 if engine == "direct" else 80))
    D = rng.standard_normal(3)
    g = rng.standard_normal(u.shape)
    pre, post = rng.standard_normal((2, *u.shape))
    monkeypatch.setattr(cpu_conv, "DIRECT_TAPS", 1000 if engine == "direct" else 0)
    y = sl.fftconv(u, k, D, pregate=pre, postgate=post, causal=causal)
    grads = sl.fftconv_vjp(u, k, D, g, pregate=pre, postgate=post, causal=causal)
    monkeypatch.setattr(cpu_conv, "DIRECT_TAPS", 0 if engine == "direct" else 1000)
    np.testing.assert_allclose(y, sl.fftconv(u, k, D, pregate=pre, postgate=post,
                                             causal=causal), atol=1e-12)
    other = sl.fftconv_vjp(u, k, D, g, pregate=pre, postgate=post, causal=causal)
    for a, b in zip(grads, other, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-11)


def test_fftconv_many_row_chunks_match_reference(monkeypatch):
    """Chunks of one row, shared by several threads, give the same result."""
    monkeypatch.setattr(_schedule, "SERIAL_ELEMENTS", 0)
    monkeypatch.setattr(cpu_conv, "CHUNK_BYTES", 1)
    monkeypatch.setattr(cpu_conv, "MIN_ROWS", 1)
    rng = np.random.default_rng(5)
    u = rng.standard_normal((3, 5, 70)).astype(np.float32)
    k = rng.standard_normal((5, 70)).astype(np.float32)
    D = rng.standard_normal(5).astype(np.float32)
    y = sl.fftconv(u, k, D, pregate=u, postgate=u)
    ref = reference_fftconv(u, k, D, u, u)
    assert cf._rel_err(y, ref) <= tolerance(np.float32, 140) * 4
    g = rng.standard_normal(u.shape)
    monkeypatch.setattr(cpu_conv, "CHUNK_BYTES", 1 << 20)
    monkeypatch.setattr(cpu_conv, "MIN_ROWS", 8)
    big = sl.fftconv_vjp(u.astype(float), k.astype(float), D.astype(float), g)
    monkeypatch.setattr(cpu_conv, "CHUNK_BYTES", 1)
    monkeypatch.setattr(cpu_conv, "MIN_ROWS", 1)
    small = sl.fftconv_vjp(u.astype(float), k.astype(float), D.astype(float), g)
    for a, b in zip(big[:3], small[:3], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10)


@given(L=LENGTHS, Lk=LENGTHS, dt=dtypes(), causal=st.booleans(), seed=seeds())
def test_fftconv_dot_test_adjoint_is_correlation(L, Lk, dt, causal, seed):
    rng = np.random.default_rng(seed)
    p = _params(rng, (2,), 2, L, Lk, dt, True, True, True)
    x = random_array(rng, (2, 2, L), dt)
    y = random_array(rng, (2, 2, L), dt)
    cf.check_dot_test(spec(causal, True, True, True), p, x, y,
                      rtol=tolerance(dt, L + Lk) * 16)


VJP_CASES = [
    # (L, Lk, dtype, causal, D, pre, post)
    (20, 7, np.float64, True, True, True, True),
    (20, 7, np.complex128, False, True, True, True),
    (90, 70, np.float64, True, True, True, True),
    (90, 70, np.float64, False, True, False, True),
    (70, 100, np.complex128, True, True, True, True),
    (40, 41, np.complex128, False, False, True, False),
    (80, 67, np.float64, False, False, False, False),
]


@pytest.mark.parametrize("L,Lk,dt,causal,D,pre,post", VJP_CASES)
def test_fftconv_vjp_matches_finite_differences(L, Lk, dt, causal, D, pre, post):
    rng = np.random.default_rng(L + Lk)
    p = _params(rng, (2,), 3, L, Lk, dt, D, pre, post)
    x = random_array(rng, (2, 3, L), dt)
    g = random_array(rng, (2, 3, L), dt)
    cf.check_vjp(spec(causal, D, pre, post), p, x, g, rng=rng)


@given(L=st.sampled_from([1, 2, 5, 16, 33, 70]), Lk=st.sampled_from([1, 3, 8, 40, 67, 90]),
       complex_=st.booleans(), causal=st.booleans(), D=st.booleans(), pre=st.booleans(),
       post=st.booleans(), seed=seeds())
def test_fftconv_vjp_matches_finite_differences_for_any_lengths(L, Lk, complex_, causal, D, pre,
                                                                 post, seed):
    rng = np.random.default_rng(seed)
    dt = np.complex128 if complex_ else np.float64
    p = _params(rng, (2,), 2, L, Lk, dt, D, pre, post)
    x = random_array(rng, (2, 2, L), dt)
    g = random_array(rng, (2, 2, L), dt)
    before = {n: a.copy() for n, a in p.items()} | {"x": x.copy(), "g": g.copy()}
    cf.check_vjp(spec(causal, D, pre, post), p, x, g, rng=rng, n_directions=1)
    sl.fftconv_vjp(x, p["k"], p.get("D"), g, pregate=p.get("pregate"),
                   postgate=p.get("postgate"), causal=causal)
    for n, a in (p | {"x": x, "g": g}).items():
        np.testing.assert_array_equal(a, before[n], err_msg=f"{n} was modified by the VJP")


def test_fftconv_vjp_real_arguments_of_complex_call_get_real_gradients():
    rng = np.random.default_rng(8)
    u = rng.standard_normal((2, 40))
    k = rng.standard_normal((2, 40)) + 1j * rng.standard_normal((2, 40))
    D = np.ones(2, np.float32)
    g = rng.standard_normal((2, 40)) + 1j * rng.standard_normal((2, 40))
    gu, gk, gD, gpre, gpost = sl.fftconv_vjp(u, k, D, g, pregate=np.ones((2, 40), np.int64))
    assert gu.dtype == np.float64 and gk.dtype == np.complex128 and gD.dtype == np.float32
    assert gpre.dtype == np.float64 and gpost is None
    # the real part of the complex gradient: compare with the complex-u computation
    gu_c = sl.fftconv_vjp(u.astype(complex), k, D, g, pregate=np.ones((2, 40)))[0]
    np.testing.assert_allclose(gu, gu_c.real, atol=1e-12)


@given(dt=dtypes(), kdt=dtypes(), ddt=st.sampled_from([None, np.int32, np.float32,
                                                        np.complex64]), seed=seeds())
def test_fftconv_result_dtype_is_numpy_promotion(dt, kdt, ddt, seed):
    rng = np.random.default_rng(seed)
    u = random_array(rng, (2, 3, 40), dt)
    k = random_array(rng, (3, 40), kdt)
    D = None if ddt is None else np.ones(3, ddt)
    expected = np.result_type(u, k, *([] if D is None else [D]))
    y = sl.fftconv(u, k, D)
    assert y.dtype == expected
    ref = reference_fftconv(u, k, D)
    assert cf._rel_err(y, ref) <= tolerance(expected, 80) * 4


def test_fftconv_integer_inputs_promote_to_float64_exactly():
    y = sl.fftconv(np.arange(6).reshape(1, 6), np.array([[1, 2, 3]]))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, [np.convolve(np.arange(6), [1, 2, 3])[:6]], atol=1e-12)


def test_fftconv_zero_batch_and_kernel_of_length_one_is_a_scaling():
    assert sl.fftconv(np.zeros((0, 3, 10)), np.ones((3, 10))).shape == (0, 3, 10)
    gu, gk, *_ = sl.fftconv_vjp(np.zeros((0, 3, 10)), np.ones((3, 10)), None,
                                np.zeros((0, 3, 10)))
    assert gu.shape == (0, 3, 10) and np.all(gk == 0)
    assert sl.fftconv(np.ones((2, 0, 8)), np.ones((0, 4))).shape == (2, 0, 8)
    u = np.random.default_rng(0).standard_normal((4, 2, 50))
    np.testing.assert_allclose(sl.fftconv(u, np.array([[2.0], [3.0]])),
                               u * np.array([2.0, 3.0])[:, None])


def test_fftconv_out_receives_the_result_and_is_checked():
    rng = np.random.default_rng(4)
    u = rng.standard_normal((2, 3, 100)).astype(np.float32)
    k = rng.standard_normal((3, 100)).astype(np.float32)
    for Lk in (100, 5):
        out = np.full(u.shape, np.nan, np.float32)
        assert sl.fftconv(u, k[:, :Lk], out=out) is out
        np.testing.assert_array_equal(out, sl.fftconv(u, k[:, :Lk]))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3, 100\)"):
        sl.fftconv(u, k, out=np.empty((3, 100), np.float32))
    with pytest.raises(TypeError, match="out must have the result dtype float32, got float64"):
        sl.fftconv(u, k, out=np.empty(u.shape))
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        sl.fftconv(u, k, out=np.empty((2, 3, 200), np.float32)[..., ::2])


def test_fftconv_impulse_input_returns_the_kernel():
    L = 100
    k = np.random.default_rng(1).standard_normal((2, 60))
    u = np.zeros((2, L))
    u[:, 0] = 1
    np.testing.assert_allclose(sl.fftconv(u, k)[:, :60], k, atol=1e-13)
    np.testing.assert_allclose(sl.fftconv(u, k)[:, 60:], 0, atol=1e-13)


# ---- plans ----------------------------------------------------------------------------------


@given(L=LENGTHS, Lk=LENGTHS, dt=dtypes(), causal=st.booleans(), seed=seeds())
def test_planned_fftconv_equals_unplanned(L, Lk, dt, causal, seed):
    rng = np.random.default_rng(seed)
    k = random_array(rng, (2, Lk), dt)
    u = random_array(rng, (3, 2, L), dt)
    g = random_array(rng, (3, 2, L), dt)
    plan = sl.fftconv_plan(k, L + 3)
    assert plan.nfft >= L + 3 + Lk - 1
    tol = tolerance(dt, L + Lk) * 4
    assert cf._rel_err(sl.fftconv(u, plan, causal=causal),
                       sl.fftconv(u, k, causal=causal)) <= tol
    a = sl.fftconv_vjp(u, plan, None, g, causal=causal)
    b = sl.fftconv_vjp(u, k, None, g, causal=causal)
    assert a[1].dtype == b[1].dtype == dt
    for x, y in zip(a[:2], b[:2], strict=True):
        assert cf._rel_err(x, y) <= tol * 4


def test_plan_with_wider_dtype_serves_float32_inputs_and_rejects_wider_ones():
    k = np.ones((2, 40), np.float32)
    plan = sl.fftconv_plan(k, 64, dtype=np.complex64)
    assert plan.dtype == np.complex64 and plan.k_dtype == np.float32
    u = np.ones((2, 64), np.float32)
    assert sl.fftconv(u, plan).dtype == np.complex64
    assert sl.fftconv_vjp(u, plan, None, np.ones((2, 64)))[1].dtype == np.float32
    with pytest.raises(TypeError, match=r"plan for compute dtype complex64.*complex128"):
        sl.fftconv(u.astype(np.complex128), plan)
    with pytest.raises(ValueError, match="longer than the L = 64 its plan"):
        sl.fftconv(np.ones((2, 65), np.float32), plan)


# ---- streaming ------------------------------------------------------------------------------


@given(Lk=LENGTHS, chunk=st.sampled_from([1, 5, 16, 33]), total=st.integers(1, 150),
       dt=dtypes(), gates=st.booleans(), seed=seeds())
def test_stream_concatenation_equals_one_shot_causal(Lk, chunk, total, dt, gates, seed):
    rng = np.random.default_rng(seed)
    H = 2
    k = random_array(rng, (H, Lk), dt)
    D = random_array(rng, (H,), dt)
    u = random_array(rng, (3, H, total), dt)
    pre = random_array(rng, u.shape, dt) if gates else None
    post = random_array(rng, u.shape, dt) if gates else None
    stream = sl.fftconv_stream(k, chunk, D)
    pieces = []
    s0 = 0
    while s0 < total:
        c = min(int(rng.integers(1, chunk + 1)), total - s0)
        sl_ = slice(s0, s0 + c)
        pieces.append(stream.push(u[..., sl_], None if pre is None else pre[..., sl_],
                                  None if post is None else post[..., sl_]))
        s0 += c
    y = np.concatenate(pieces, axis=-1)
    assert y.dtype == dt
    ref = reference_fftconv(u, k, D, pre, post)
    assert cf._rel_err(y, ref) <= tolerance(dt, Lk + chunk) * 8


def test_stream_delayed_causal_output_is_the_centred_output():
    rng = np.random.default_rng(2)
    k = rng.standard_normal((1, 9))
    u = rng.standard_normal((1, 60))
    off = (9 - 1) // 2
    stream = sl.fftconv_stream(k, 20)
    causal = np.concatenate([stream.push(u[:, i:i + 20]) for i in range(0, 60, 20)]
                            + [stream.push(np.zeros((1, off)))], axis=-1)
    np.testing.assert_allclose(causal[:, off:], sl.fftconv(u, k, causal=False), atol=1e-12)


def test_stream_reset_starts_a_new_signal_and_rejects_bad_chunks():
    k = np.ones((2, 4))
    stream = sl.fftconv_stream(k, 8)
    first = stream.push(np.ones((2, 8)))
    stream.reset()
    np.testing.assert_array_equal(stream.push(np.ones((2, 8))), first)
    with pytest.raises(ValueError, match="more than the stream's chunk = 8"):
        stream.push(np.ones((2, 9)))
    with pytest.raises(ValueError, match="H = 2 channels"):
        stream.push(np.ones((3, 8)))
    with pytest.raises(ValueError, match="keep the batch shape"):
        stream.push(np.ones((5, 2, 8)))
    with pytest.raises(TypeError, match="promote to complex128"):
        stream.push(np.ones((2, 8), complex))


# ---- SSM kernels and the chunked scan -------------------------------------------------------


def _ssm(rng, H, N):
    A = rng.uniform(0.5, 0.99, (H, N)) * np.exp(1j * rng.uniform(0, np.pi, (H, N)))
    return A, rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N)), \
        rng.standard_normal((H, N))


def test_ssm_kernel_is_the_impulse_response_of_the_recurrence():
    rng = np.random.default_rng(0)
    A, B, C = _ssm(rng, 2, 3)
    L = 30
    x = np.zeros((2, 3), complex)
    imp = np.zeros(L)
    imp[0] = 1
    out = []
    for t in range(L):
        x = A * x + B * imp[t]
        out.append((C * x).sum(-1))
    np.testing.assert_allclose(sl.ssm_kernel(A, B, C, L), np.stack(out, -1), atol=1e-12)


@given(L=st.integers(1, 120), chunk=st.integers(1, 40), N=st.integers(1, 4),
       batch=batch_shapes(1, 2), D=st.booleans(), seed=seeds())
def test_ssm_chunked_scan_equals_one_shot_fftconv(L, chunk, N, batch, D, seed):
    rng = np.random.default_rng(seed)
    A, B, C = _ssm(rng, 2, N)
    u = rng.standard_normal((*batch, 2, L))
    Dv = rng.standard_normal(2) if D else None
    y = sl.ssm_conv_chunked(u, A, B, C, chunk, Dv)
    ref = sl.fftconv(u, sl.ssm_kernel(A, B, C, L), Dv)
    assert y.shape == u.shape and y.dtype == np.complex128
    np.testing.assert_allclose(y, ref, atol=1e-10 * max(1.0, np.abs(ref).max(initial=0)))


@given(L=st.integers(2, 90), cut=st.integers(1, 89), chunk=st.integers(1, 30), seed=seeds())
def test_ssm_state_passing_between_pieces_equals_one_shot(L, cut, chunk, seed):
    rng = np.random.default_rng(seed)
    cut = min(cut, L - 1)
    A, B, C = _ssm(rng, 3, 2)
    u = rng.standard_normal((2, 3, L))
    D = rng.standard_normal(3)
    y1, x1 = sl.ssm_conv_chunked(u[..., :cut], A, B, C, chunk, D, return_state=True)
    assert x1.shape == (2, 3, 2)
    y2, x2 = sl.ssm_conv_chunked(u[..., cut:], A, B, C, chunk, D, state=x1, return_state=True)
    y, x = sl.ssm_conv_chunked(u, A, B, C, chunk, D, return_state=True)
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=-1), y, atol=1e-10)
    np.testing.assert_allclose(x2, x, atol=1e-10)
    # the state is the recurrence's: x = sum_s A^(L-1-s) B u[s]
    pw = A[None, :, :, None] ** (L - 1 - np.arange(L))
    np.testing.assert_allclose(x, np.einsum("bhs,bhns->bhn", u, B[None, :, :, None] * pw),
                               atol=1e-10)


# ---- regularisers ---------------------------------------------------------------------------


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.complex64, np.complex128])
def test_squash_is_soft_thresholding_and_its_vjp_matches_finite_differences(dt):
    rng = np.random.default_rng(1)
    k = random_array(rng, (3, 50), dt)
    lam = 0.7
    y = sl.squash_kernel(k, lam)
    assert y.dtype == dt
    mag = np.abs(k)
    np.testing.assert_allclose(np.abs(y), np.maximum(mag - lam, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(y == 0, mag <= lam)
    # the phase (sign) of every surviving entry is kept
    keep = mag > lam
    np.testing.assert_allclose(y[keep] / np.abs(y[keep]), k[keep] / mag[keep], rtol=1e-5)
    g = random_array(rng, k.shape, dt)
    s = cf.OperatorSpec(fast=lambda p, x: sl.squash_kernel(x, lam), dense=None,
                        vjp=lambda p, x, gg: {"x": sl.squash_kernel_vjp(x, lam, gg)})
    cf.check_vjp(s, {}, k.astype(np.complex128 if np.dtype(dt).kind == "c" else float), g,
                 rng=rng)
    assert sl.squash_kernel_vjp(k, lam, g).dtype == dt


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("width", [1, 3, 7])
def test_smooth_is_a_centred_moving_average_and_self_adjoint(dt, width):
    rng = np.random.default_rng(width)
    k = random_array(rng, (2, 40), dt)
    y = sl.smooth_kernel(k, width)
    assert y.dtype == dt
    h = width // 2
    pad = np.pad(k.astype(np.complex128), ((0, 0), (h, h)))
    ref = np.stack([[pad[r, j:j + width].mean() for j in range(40)] for r in range(2)])
    assert cf._rel_err(y, ref) <= tolerance(dt, 40)
    s = cf.OperatorSpec(fast=lambda p, x: sl.smooth_kernel(x, width), dense=None,
                        vjp=lambda p, x, g: {"x": sl.smooth_kernel_vjp(x, width, g)},
                        adjoint=lambda p, g: sl.smooth_kernel_vjp(k, width, g))
    cf.check_vjp(s, {}, k, random_array(rng, k.shape, dt), rng=rng)
    cf.check_dot_test(s, {}, k, random_array(rng, k.shape, dt))


# ---- memory ---------------------------------------------------------------------------------


def test_fftconv_peak_numpy_memory_is_below_three_times_u():
    """The output plus a few row chunks of scratch per thread (8 MiB input, 2048-long kernels)."""
    u = np.random.default_rng(0).standard_normal((8, 64, 4096)).astype(np.float32)
    k = np.random.default_rng(1).standard_normal((64, 2048)).astype(np.float32)
    D = np.ones(64, np.float32)
    sl.fftconv(u, k, D, postgate=u)  # compile and warm the pool outside the measurement
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        y = sl.fftconv(u, k, D, postgate=u)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert y.shape == u.shape
    assert peak - base <= 3 * u.nbytes, (peak - base) / u.nbytes


def _class_path_calls(monkeypatch):
    """Route every FFT-path call through the frequency-class path and record its ``R``."""
    calls = []
    original = cpu_conv._forward_by_classes
    plan_chunks = cpu_conv._plan_chunks

    def spy(*args):
        calls.append(args[11])
        return original(*args)

    def no_chunks(nrows, nfft, itemsize, budget=None, buffers=3):
        return None if budget is not None else plan_chunks(nrows, nfft, itemsize)

    monkeypatch.setattr(cpu_conv, "_forward_by_classes", spy)
    monkeypatch.setattr(cpu_conv, "_plan_chunks", no_chunks)
    # real rows that fit a tile go through the fused path, which never needs the classes
    monkeypatch.setattr(cpu_conv, "_fused_ok", lambda dt, nfft, budget: False)
    return calls


@pytest.mark.parametrize("dt", [np.float64, np.complex128, np.float32])
@pytest.mark.parametrize("B,H,L,Lk", [(1, 1, 500, 300), (2, 3, 70, 120), (1, 2, 400, 400),
                                      (1, 1, 90, 700)])
@pytest.mark.parametrize("causal", [True, False])
def test_frequency_class_path_matches_reference(monkeypatch, dt, B, H, L, Lk, causal):
    """Folding a row into R residue classes of frequencies (one at a time) is the same
    linear convolution, with and without gates, D and a plan holding the whole spectrum."""
    calls = _class_path_calls(monkeypatch)
    monkeypatch.setattr(cpu_conv, "MIN_CLASSES", 4)
    rng = np.random.default_rng(L + Lk)
    u = random_array(rng, (B, H, L), dt)
    k = random_array(rng, (H, Lk), dt)
    D = random_array(rng, (H,), dt)
    pre, post = random_array(rng, (2, B, H, L), dt)
    ref = reference_fftconv(u, k, D, pre, post, causal)
    y = sl.fftconv(u, k, D, pregate=pre, postgate=post, causal=causal)
    assert cf._rel_err(y, ref) <= tolerance(dt, L + Lk)
    plan = sl.fftconv_plan(k, L, dtype=dt)
    y = sl.fftconv(u, plan, D, pregate=pre, postgate=post, causal=causal)
    assert cf._rel_err(y, ref) <= tolerance(dt, L + Lk)
    y = sl.fftconv(u, k, causal=causal)
    assert cf._rel_err(y, reference_fftconv(u, k, causal=causal)) <= tolerance(dt, L + Lk)
    assert len(calls) == 3 and all(R >= 4 for R in calls), calls


def test_frequency_class_path_is_deterministic_across_threads(monkeypatch):
    """Classes are added into the output in a fixed order, whichever thread finishes first."""
    _class_path_calls(monkeypatch)
    rng = np.random.default_rng(3)
    u = rng.standard_normal((2, 3, 3000)).astype(np.float32)
    k = rng.standard_normal((3, 2000)).astype(np.float32)
    first = sl.fftconv(u, k)
    for _ in range(3):
        np.testing.assert_array_equal(sl.fftconv(u, k), first)


def _traced_peak(fn):
    fn()  # compile and warm the pool outside the measurement
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        y = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return y, peak - base


@pytest.mark.parametrize("B,H,L", [(1, 1, 1 << 20), (1, 8, 1 << 17), (1, 64, 1 << 14)])
def test_fftconv_long_rows_peak_memory_is_below_three_times_u(B, H, L):
    """The issue's bound for one batch element with Lk = L, where the kernel's spectrum alone
    is twice u: the output plus at most u's size of scratch (classes or streamed kernels)."""
    rng = np.random.default_rng(0)
    u = rng.standard_normal((B, H, L)).astype(np.float32)
    k = rng.standard_normal((H, L)).astype(np.float32)
    D = np.ones(H, np.float32)
    y, peak = _traced_peak(lambda: sl.fftconv(u, k, D))
    assert peak <= 3 * u.nbytes + (1 << 20), peak / u.nbytes
    assert cf._rel_err(y[0, 0, :2000], reference_fftconv(u[:1, :1, :2000], k[:1], D[:1])[0, 0]) \
        <= tolerance(np.float32, 4000)
    plan = sl.fftconv_plan(k, L)
    _, peak = _traced_peak(lambda: sl.fftconv(u, plan, D))
    assert peak <= 3 * u.nbytes + (1 << 20), peak / u.nbytes


# ---- bad inputs -----------------------------------------------------------------------------

U = np.ones((2, 3, 8))
K = np.ones((3, 4))


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"u": np.ones(8)}, ValueError, r"u must have at least 2 dimension\(s\), shape \(\.\.\., H"),
    ({"u": np.ones((2, 3, 0))}, ValueError, "u must have a length L >= 1.*got L = 0"),
    ({"k": np.ones((2, 4))}, ValueError, r"k must have one kernel per channel of u, i.e. H = 3"),
    ({"k": np.ones(4)}, ValueError, r"k must be 2-d of shape \(H, Lk\)"),
    ({"k": np.ones((3, 0))}, ValueError, "k must have a kernel length Lk >= 1"),
    ({"k": np.full((3, 4), np.nan)}, ValueError, "k must be finite"),
    ({"D": np.ones(2)}, ValueError, r"D must have shape \(3,\) \(one skip weight"),
    ({"D": np.array([1.0, np.inf, 0.0])}, ValueError, "D must be finite"),
    ({"pregate": np.ones((2, 3, 7))}, ValueError, r"pregate must have shape \(2, 3, 8\)"),
    ({"postgate": np.ones((3, 8))}, ValueError, r"postgate must have shape \(2, 3, 8\)"),
    ({"u": np.array([["a"] * 8] * 3)}, TypeError, "u must have a numeric dtype"),
    ({"k": np.ones((3, 4), np.longdouble)}, TypeError, "extended precision"),
])
def test_fftconv_bad_inputs(kwargs, exc, match):
    args = {"u": U, "k": K, "D": None, "pregate": None, "postgate": None} | kwargs
    with pytest.raises(exc, match=match):
        sl.fftconv(args["u"], args["k"], args["D"], pregate=args["pregate"],
                   postgate=args["postgate"])
    with pytest.raises(exc, match=match):
        sl.fftconv_vjp(args["u"], args["k"], args["D"], np.ones(np.shape(args["u"])),
                       pregate=args["pregate"], postgate=args["postgate"])


@pytest.mark.parametrize("call,exc,match", [
    (lambda: sl.fftconv_vjp(U, K, None, np.ones((2, 3, 7))), ValueError,
     r"grad must have shape \(2, 3, 8\)"),
    (lambda: sl.fftconv_plan(K, 0), ValueError, "L must be at least 1, got 0"),
    (lambda: sl.fftconv_plan(np.ones(3), 8), ValueError, "k must be 2-d"),
    (lambda: sl.fftconv_stream(K, 0), ValueError, "chunk must be at least 1, got 0"),
    (lambda: sl.fftconv_stream(K, 4, np.ones(4)), ValueError, r"D must have shape \(3,\)"),
    (lambda: sl.ssm_kernel(np.ones((2, 3)), np.ones((2, 2)), np.ones((2, 3)), 4), ValueError,
     r"B must have shape \(2, 3\)"),
    (lambda: sl.ssm_conv_chunked(U, np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)), 4),
     ValueError, "A, B, C must have H = 3 rows"),
    (lambda: sl.ssm_conv_chunked(U, np.ones((3, 1)), np.ones((3, 1)), np.ones((3, 1)), 0),
     ValueError, "chunk must be at least 1, got 0"),
    (lambda: sl.ssm_conv_chunked(U, np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 2)), 4,
                                 state=np.ones((3, 2))),
     ValueError, r"state must have shape \(2, 3, 2\)"),
    (lambda: sl.squash_kernel(K, -1.0), ValueError, "lam must be at least 0"),
    (lambda: sl.squash_kernel_vjp(K, 1.0, np.ones(3)), ValueError, r"grad must have shape"),
    (lambda: sl.smooth_kernel(K, 2), ValueError, "width must be an odd integer >= 1, got 2"),
    (lambda: sl.smooth_kernel_vjp(K, 3, np.ones(3)), ValueError, r"grad must have shape"),
])
def test_conv_helpers_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---- precision= (tensor cores on the GPU) -----------------------------------------------------


@pytest.mark.parametrize("dt", [np.float32, np.complex64])
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precisions_compute_in_full_precision_on_numpy(dt, precision):
    rng = np.random.default_rng(7)
    u, pre, post, g = (random_array(rng, (2, 3, 300), dt) for _ in range(4))
    k, D = random_array(rng, (3, 200), dt), random_array(rng, (3,), dt)
    kw = {"pregate": pre, "postgate": post, "causal": False}
    np.testing.assert_array_equal(sl.fftconv(u, k, D, precision=precision, **kw),
                                  sl.fftconv(u, k, D, **kw))
    got = sl.fftconv_vjp(u, k, D, g, precision=precision, **kw)
    for a, b in zip(got, sl.fftconv_vjp(u, k, D, g, **kw), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs,match", [
    ({"precision": "fp8"}, r"precision must be one of \('highest', 'fp16', 'bf16'\) "
                           r"\(or the alias 'fp32'\), got 'fp8'"),
    ({"precision": None}, "precision must be one of"),
    ({"precision": "bf16"}, r"precision='bf16' \(tensor cores\) needs float32 or complex64 "
                            r"data, got float64 \(the result dtype of u, k, D and the gates\)"),
    ({"precision": "fp16", "u": U.astype(np.float32)}, "needs float32 or complex64 data, got "
                                                       "float64"),
])
def test_precision_is_checked_on_every_backend(kwargs, match):
    u = kwargs.pop("u", U)
    with pytest.raises(ValueError, match=match):
        sl.fftconv(u, K, **kwargs)
    with pytest.raises(ValueError, match=match):
        sl.fftconv_vjp(u, K, None, np.ones(u.shape), **kwargs)


def test_precision_is_passed_to_both_engines_in_one_vocabulary(monkeypatch):
    import structlin.conv_fft as conv_mod

    assert conv_mod._engine_precision(np, "fp16", np.dtype(np.float32)) == {"precision": "fp16"}
    other = object()  # an array namespace other than NumPy's (CuPy's)
    assert conv_mod._engine_precision(other, "bf16", np.dtype(np.complex64)) == {
        "precision": "bf16"}
    # "fp32" is the alias of "highest", which every engine takes
    assert conv_mod._engine_precision(other, "fp32", np.dtype(np.float64)) == {
        "precision": "highest"}
    # the keyword goes through fftconv / fftconv_vjp to the engine's forward / backward
    calls = []

    class Recorder:
        fft_size = staticmethod(cpu_conv.fft_size)
        kernel_spectrum = staticmethod(cpu_conv.kernel_spectrum)

        @staticmethod
        def forward(*args, precision):
            calls.append(("forward", precision))
            return cpu_conv.forward(*args)

        @staticmethod
        def backward(*args, precision):
            calls.append(("backward", precision))
            return cpu_conv.backward(*args)

    monkeypatch.setattr(conv_mod, "kernels", lambda xp, family: Recorder)
    monkeypatch.setattr(conv_mod, "_engine_precision",
                        lambda xp, precision, dtype: {"precision": precision})
    u32, k32 = U.astype(np.float32), K.astype(np.float32)
    sl.fftconv(u32, k32, precision="bf16")
    sl.fftconv_vjp(u32, k32, None, u32, precision="fp16")
    assert calls == [("forward", "bf16"), ("backward", "fp16")]


class _FakeCupyArray:
    """Stands for a cupy.ndarray in the namespace check (no GPU needed)."""


def test_fftconv_mixing_numpy_and_cupy_raises_type_error(monkeypatch):
    import sys
    import types

    fake = types.SimpleNamespace(ndarray=_FakeCupyArray)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    gpu = _FakeCupyArray()
    with pytest.raises(TypeError, match=r"k is a cupy\.ndarray but u is a numpy\.ndarray"):
        sl.fftconv(U, gpu)
    with pytest.raises(TypeError, match=r"postgate is a cupy\.ndarray but u is a numpy"):
        sl.fftconv(U, K, postgate=gpu)
    with pytest.raises(TypeError, match=r"D is a cupy\.ndarray but k is a numpy"):
        sl.fftconv_stream(K, 4, gpu)


# ---- the bad-input findings of the family-contract issue ------------------------------------


def test_list_kernels_are_accepted_everywhere():
    """Lists are array-likes: a list ``k`` used to raise AttributeError (``k.shape``)."""
    rng = np.random.default_rng(11)
    u = rng.standard_normal((2, 3, 90))
    k = rng.standard_normal((3, 70))
    D = rng.standard_normal(3)
    g = rng.standard_normal(u.shape)
    np.testing.assert_array_equal(sl.fftconv(u, k.tolist()), sl.fftconv(u, k))
    np.testing.assert_array_equal(sl.fftconv(u.tolist(), k.tolist(), D.tolist(),
                                             pregate=u.tolist(), postgate=u.tolist()),
                                  sl.fftconv(u, k, D, pregate=u, postgate=u))
    for a, b in zip(sl.fftconv_vjp(u, k.tolist(), D, g), sl.fftconv_vjp(u, k, D, g),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    for plan in (sl.fftconv_plan(k.tolist(), 90),
                 sl.FFTConvPlan(k.tolist(), 90, np.float64, np.float64, np)):
        np.testing.assert_allclose(sl.fftconv(u, plan), sl.fftconv(u, k), rtol=0, atol=1e-12)
    for stream in (sl.fftconv_stream(k.tolist(), 30, D.tolist()),
                   sl.FFTConvStream(k.tolist(), 30, D.tolist(), np.float64, np)):
        y = np.concatenate([stream.push(u[..., s:s + 30].tolist()) for s in range(0, 90, 30)],
                           axis=-1)
        np.testing.assert_allclose(y, sl.fftconv(u, k, D), rtol=0, atol=1e-12)


def test_read_only_out_is_refused_with_a_value_error():
    """It reached the Numba kernel, which raised a TypingError."""
    u, k = np.ones((2, 3, 100), np.float32), np.ones((3, 100), np.float32)
    for kk in (k, k[:, :5]):  # the FFT and the direct path
        out = np.empty(u.shape, np.float32)
        out.flags.writeable = False
        with pytest.raises(ValueError, match="out must be writeable"):
            sl.fftconv(u, kk, out=out)


def test_a_bogus_namespace_is_refused_before_any_kernel_module_is_imported():
    """``xp="bogus"`` made the plan import the CUDA engine (CUDARuntimeError without a GPU)."""
    with pytest.raises(TypeError, match="xp must be the numpy or the cupy module, got 'bogus'"):
        sl.FFTConvPlan(K, 8, np.float64, np.float64, "bogus")
    with pytest.raises(TypeError, match="xp must be the numpy or the cupy module"):
        sl.FFTConvStream(K, 8, None, np.float64, "bogus")
    with pytest.raises(TypeError, match="dtype must be one of"):
        sl.FFTConvPlan(K, 8, "bogus", np.float64, np)


def test_regulariser_vjps_refuse_the_numpy_cupy_mix_before_converting_grad(monkeypatch):
    """They called ``xp.asarray(grad)`` first: a CuPy ``grad`` with a NumPy ``k`` became an
    object array instead of the mix's TypeError."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(ndarray=_FakeCupyArray))
    for vjp, arg in ((sl.squash_kernel_vjp, 0.5), (sl.smooth_kernel_vjp, 3)):
        with pytest.raises(TypeError, match=r"grad is a cupy\.ndarray but k is a numpy"):
            vjp(K, arg, _FakeCupyArray())


def test_smooth_kernel_wider_than_the_signal_needs_no_padding_by_the_width():
    """A box of ``w >= 2 Lk - 1`` taps covers the whole kernel at every output, so each
    output is ``sum(k) / w``: computed in O(Lk) memory (the kernel was padded by the width, 24 TiB
    for ``w = 2**40 + 1``); widths above MAX_SIZE are refused."""
    k = np.arange(21.0).reshape(3, 7)
    w = 2**40 - 1
    tracemalloc.start()
    try:
        y = sl.smooth_kernel(k, w)
        g = sl.smooth_kernel_vjp(k, w, k)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 16, peak
    want = np.repeat(k.sum(axis=1, keepdims=True) / w, 7, axis=1)
    np.testing.assert_allclose(y, want, rtol=1e-15)
    np.testing.assert_allclose(g, want, rtol=1e-15)
    # at the widths where the window starts to cover everything, the same as the padded sum
    for w in (11, 13, 15, 17):
        h = w // 2
        pad = np.pad(k, ((0, 0), (h, h)))
        ref = np.stack([[pad[r, j:j + w].sum() / w for j in range(7)] for r in range(3)])
        np.testing.assert_allclose(sl.smooth_kernel(k, w), ref, rtol=1e-14)
    with pytest.raises(ValueError, match="width must be at most"):
        sl.smooth_kernel(k, 2**40 + 1)


@pytest.mark.parametrize("call,exc,match", [
    # sizes: floats (even integral ones), strings and None were int()-ed or rounded
    (lambda: sl.fftconv_plan(K, 2.5), TypeError, r"L must be an integer, got 2\.5"),
    (lambda: sl.fftconv_plan(K, "4"), TypeError, "L must be an integer, got '4'"),
    (lambda: sl.fftconv_plan(K, None), TypeError, "L must be an integer, got None"),
    (lambda: sl.fftconv_to_dense(K, 4.0), TypeError, r"L must be an integer, got 4\.0"),
    (lambda: sl.fftconv_stream(K, 2.5), TypeError, r"chunk must be an integer, got 2\.5"),
    (lambda: sl.fftconv_stream(K, "4"), TypeError, "chunk must be an integer, got '4'"),
    (lambda: sl.smooth_kernel(K, 3.0), TypeError, r"width must be an integer, got 3\.0"),
    (lambda: sl.smooth_kernel_vjp(K, "3", K), TypeError, "width must be an integer"),
    (lambda: sl.squash_kernel(K, "0.5"), TypeError, "lam must be a real number, got '0.5'"),
    (lambda: sl.squash_kernel_vjp(K, None, K), TypeError, "lam must be a real number"),
    (lambda: sl.ssm_kernel(np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 2)), 4.0), TypeError,
     r"L must be an integer, got 4\.0"),
    (lambda: sl.ssm_conv_chunked(U, np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 2)), 2.5),
     TypeError, r"chunk must be an integer, got 2\.5"),
    (lambda: sl.ssm_conv_chunked(U, np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 2)), None),
     TypeError, "chunk must be an integer, got None"),
    # a bad grad was blamed on k (smooth_kernel_vjp smoothed grad under the name "k")
    (lambda: sl.smooth_kernel_vjp(K, 3, K.astype(object)), TypeError,
     r"^grad must have a numeric dtype"),
    (lambda: sl.squash_kernel_vjp(K, 0.5, K.astype(str)), TypeError,
     r"^grad must have a numeric dtype"),
    # object / string arrays met isfinite first, whose TypeError named no argument
    (lambda: sl.fftconv(U, K.astype(object)), TypeError, r"^k must have a numeric dtype"),
    (lambda: sl.fftconv(U, K, np.ones(3, object)), TypeError, r"^D must have a numeric dtype"),
    (lambda: sl.fftconv_vjp(U, K, None, U.astype(str)), TypeError,
     r"^grad must have a numeric dtype"),
    (lambda: sl.fftconv_plan(K.astype(object), 8), TypeError, r"^k must have a numeric dtype"),
    (lambda: sl.fftconv_stream(K, 4, np.ones(3).astype(object)), TypeError,
     r"^D must have a numeric dtype"),
    (lambda: sl.ssm_kernel(np.ones((3, 2), object), np.ones((3, 2)), np.ones((3, 2)), 4),
     TypeError, r"^A must have a numeric dtype"),
    (lambda: sl.fftconv_plan(K, 8, dtype="bogus"), TypeError,
     "dtype must be a numeric dtype such as 'float32', got 'bogus'"),
    (lambda: sl.fftconv(U, K, causal="yes"), TypeError, "causal must be True or False"),
    (lambda: sl.ssm_conv_chunked(U, np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 2)), 4,
                                 return_state="no"),
     TypeError, "return_state must be True or False"),
])
def test_bad_input_findings_raise_errors_that_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_single_precision_ssm_inputs_give_single_precision_kernels_and_states():
    """The integer exponents of the powers promoted float32 to float64."""
    rng = np.random.default_rng(2)
    A = (0.9 * rng.uniform(-1, 1, (3, 4))).astype(np.float32)
    B, C = rng.standard_normal((2, 3, 4)).astype(np.float32)
    u = rng.standard_normal((2, 3, 50)).astype(np.float32)
    kern = sl.ssm_kernel(A, B, C, 50)
    assert kern.dtype == np.float32
    ref = sl.ssm_kernel(*(a.astype(np.float64) for a in (A, B, C)), 50)
    assert cf._rel_err(kern, ref) <= tolerance(np.float32, 50)
    y, x = sl.ssm_conv_chunked(u, A, B, C, 16, return_state=True)
    assert y.dtype == np.float32 and x.dtype == np.float32
    Ac = (A * np.exp(1j * 0.3)).astype(np.complex64)
    assert sl.ssm_kernel(Ac, B, C, 8).dtype == np.complex64
    assert sl.ssm_conv_chunked(u, Ac, B, C, 16, return_state=True)[1].dtype == np.complex64


def test_smooth_kernel_vjp_computes_in_the_wider_precision():
    """A float32 grad for a float64 k was smoothed in float32, then returned as float64."""
    rng = np.random.default_rng(6)
    k = rng.standard_normal((2, 300))
    g = rng.standard_normal((2, 300)).astype(np.float32)
    got = sl.smooth_kernel_vjp(k, 31, g)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, sl.smooth_kernel(g.astype(np.float64), 31))
    # and a float32 k gets a float32 gradient from a float64 grad
    assert sl.smooth_kernel_vjp(k.astype(np.float32), 31, g.astype(np.float64)).dtype == \
        np.float32


# ---- conformance: fftconv as a linear map of u, smooth_kernel as a linear map of k -----------


def _namespace_of(a):
    """The module of the array ``a`` (lists and NumPy data are NumPy's)."""
    from structlin._backend import is_cupy_array

    if is_cupy_array(a):
        import cupy

        return cupy
    return np


class TestFftconvConformance(cf.OperatorConformance):
    """fftconv for fixed kernels as a linear map of ``u`` (FFT path: ``min(L, Lk) > 64``).

    ``u``'s core ``(H, L)`` is flattened into the vector axis of the base class, ``x`` of
    shape ``(..., H L)``: the operator is block diagonal, one Toeplitz block per channel
    (:func:`fftconv_to_dense`), with ``D`` on the diagonal and the gates as diagonal factors.
    The gates are parameters of shape ``(H, L)``, broadcast over ``x``'s batch (their
    gradient is the VJP's summed over it).
    """

    H, L, Lk = 3, 100, 80
    causal = True
    with_D = False
    gates = False
    planned = False
    x_name = "u"
    # fast() reshapes x into u first: the mix is tested by
    # test_fftconv_mixing_numpy_and_cupy_raises_type_error
    fake_cupy_mix = False

    def make_params(self, rng, dtype):
        p = {"k": random_array(rng, (self.H, self.Lk), dtype)}
        if self.with_D:
            p["D"] = random_array(rng, (self.H,), dtype)
        if self.gates:
            p["pregate"] = random_array(rng, (self.H, self.L), dtype)
            p["postgate"] = random_array(rng, (self.H, self.L), dtype)
        return p

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, self.H * self.L), dtype)

    def _args(self, p, x):
        """``u`` of shape (..., H, L), the kernel (or its plan), D and the broadcast gates."""
        from structlin._backend import result_dtype

        u = _namespace_of(x).reshape(x, (*np.shape(x)[:-1], self.H, self.L))
        gates = {name: None if name not in p else
                 _namespace_of(p[name]).broadcast_to(p[name], u.shape)
                 for name in ("pregate", "postgate")}
        k = p["k"]
        if self.planned:
            dt = result_dtype(u=u, k=k, D=p.get("D"), **gates)
            k = sl.fftconv_plan(k, self.L, dtype=dt)
        return u, k, p.get("D"), gates

    def fast(self, params, x):
        u, k, D, gates = self._args(params, x)
        y = sl.fftconv(u, k, D, causal=self.causal, **gates)
        return y.reshape(np.shape(x))

    def dense(self, params):
        import scipy.linalg

        T = sl.fftconv_to_dense(params["k"], self.L, causal=self.causal)
        M = scipy.linalg.block_diag(*T)
        if "pregate" in params:
            M = M * params["pregate"].reshape(1, -1)
        if "D" in params:
            M = M + np.diag(np.repeat(params["D"], self.L))
        if "postgate" in params:
            M = params["postgate"].reshape(-1, 1) * M
        return M

    def vjp(self, params, x, g):
        u, k, D, gates = self._args(params, x)
        g = _namespace_of(g).reshape(g, u.shape)
        gu, gk, gD, gpre, gpost = sl.fftconv_vjp(u, k, D, g, causal=self.causal, **gates)
        out = {"x": gu.reshape(np.shape(x)), "k": gk}
        if "D" in params:
            out["D"] = gD
        else:
            assert gD is None
        batch_axes = tuple(range(gu.ndim - 2))
        for name, grad in (("pregate", gpre), ("postgate", gpost)):
            if name in params:
                out[name] = grad.sum(axis=batch_axes)
            else:
                assert grad is None
        return out

    def bad_inputs(self):
        ro = np.empty((2, self.H, self.L))
        ro.flags.writeable = False
        k = np.ones((self.H, self.Lk))
        return [
            ("read-only out", lambda: sl.fftconv(ro * 0, k, out=ro), ValueError,
             "out must be writeable"),
            ("out of another dtype", lambda: sl.fftconv(ro * 0, k, out=ro.astype(np.float32)),
             TypeError, "out must have the result dtype float64"),
            ("k of the wrong number of channels", lambda: sl.fftconv(ro, k[:1]), ValueError,
             "k must have one kernel per channel"),
            ("a plan for a shorter L", lambda: sl.fftconv(ro, sl.fftconv_plan(k, self.L - 1)),
             ValueError, "longer than the L"),
            ("a string precision", lambda: sl.fftconv(ro, k, precision="fp8"), ValueError,
             "precision must be one of"),
        ]


class TestFftconvCentredGatedConformance(TestFftconvConformance):
    """The centred ("same") convolution with D and both gates."""

    causal = False
    with_D = True
    gates = True


class TestFftconvDirectPathConformance(TestFftconvConformance):
    """Short kernels (the direct tap loop), centred, with D; ``Lk`` even (offset 2)."""

    H, L, Lk = 2, 40, 6
    causal = False
    with_D = True


class TestFftconvPlannedConformance(TestFftconvConformance):
    """A plan in place of ``k`` (made for the call's dtype), causal, with D and gates."""

    with_D = True
    gates = True
    planned = True


class TestSmoothKernelConformance(cf.OperatorConformance):
    """smooth_kernel as a linear map of ``k`` (a symmetric banded averaging matrix)."""

    Lk = 40
    width = 7
    x_name = "k"

    def make_params(self, rng, dtype):
        return {}

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, self.Lk), dtype)

    def fast(self, params, x):
        return sl.smooth_kernel(x, self.width)

    def dense(self, params):
        i = np.arange(self.Lk)
        return (np.abs(i[:, None] - i[None, :]) <= self.width // 2) / self.width

    def vjp(self, params, x, g):
        return {"x": sl.smooth_kernel_vjp(x, self.width, g)}

    def bad_inputs(self):
        return [
            ("even width", lambda: sl.smooth_kernel(np.ones(5), 4), ValueError,
             "width must be an odd integer"),
            ("0-d k", lambda: sl.smooth_kernel(np.float64(1.0), 3), ValueError,
             "k must have at least 1 dimension"),
            ("grad of the wrong shape", lambda: sl.smooth_kernel_vjp(np.ones(5), 3, np.ones(4)),
             ValueError, r"grad must have shape \(5,\)"),
        ]


class TestSmoothKernelWiderThanTheKernelConformance(TestSmoothKernelConformance):
    """A window wider than the kernel (``width > 2 Lk``): every output averages all of it."""

    width = 101
