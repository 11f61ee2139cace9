"""Tests of the XD-operations ``K diag(L w) M x`` (structlin.xd_operations)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

import structlin as sl
from tests import conformance as cf
from tests.strategies import random_array


def _dense(tK, tL, tM, w):
    K, L, M = (sl.kaleidoscope_to_dense(t) for t in (tK, tL, tM))
    return K @ np.diag(L @ w) @ M


class TestXdMultiplyConformance(cf.OperatorConformance):
    """Every operator check for ``x -> xd_multiply(tw_K, tw_L, tw_M, w, x)`` (n = 8, widths
    1, 2, 1)."""

    n = 8

    def make_params(self, rng, dtype):
        real = np.dtype(dtype)
        return {
            "tw_K": sl.random_kaleidoscope(self.n, 1, kind="orthogonal", dtype=real,
                                           rng=rng),
            "tw_L": sl.random_kaleidoscope(self.n, 2, kind="orthogonal", dtype=real,
                                           rng=rng),
            "tw_M": sl.random_kaleidoscope(self.n, 1, kind="orthogonal", dtype=real,
                                           rng=rng),
            "w": random_array(rng, (self.n,), dtype),
        }

    def make_x(self, rng, dtype, batch):
        return random_array(rng, (*batch, self.n), dtype)

    def fast(self, params, x):
        return sl.xd_multiply(params["tw_K"], params["tw_L"], params["tw_M"], params["w"], x)

    def dense(self, params):
        return _dense(params["tw_K"], params["tw_L"], params["tw_M"], params["w"])

    def vjp(self, params, x, g):
        gK, gL, gM, gw, gx = sl.xd_multiply_vjp(
            params["tw_K"], params["tw_L"], params["tw_M"], params["w"], x, g)
        return {"tw_K": gK, "tw_L": gL, "tw_M": gM, "w": gw, "x": gx}

    def bad_inputs(self):
        t = sl.random_kaleidoscope(4, rng=0)
        t8 = sl.random_kaleidoscope(8, rng=0)
        xd = sl.xd_multiply
        return [
            ("x length not a power of two", lambda: xd(t, t, t, np.ones(6), np.ones(6)),
             ValueError, "x must have a last-axis length n that is a power of two"),
            ("tw_L for another n", lambda: xd(t, t8, t, np.ones(4), np.ones(4)), ValueError,
             r"tw_L must have shape \(width, 2, L, n//2, 2, 2\)"),
            ("w of the wrong length", lambda: xd(t, t, t, np.ones(8), np.ones(4)), ValueError,
             r"w must have shape \(4,\)"),
            ("0-d x", lambda: xd(t, t, t, np.ones(4), np.float64(1.0)), ValueError,
             "x must have at least 1 dimension"),
            ("grad of the wrong shape",
             lambda: sl.xd_multiply_vjp(t, t, t, np.ones(4), np.ones((2, 4)), np.ones(4)),
             ValueError, r"grad must have shape \(2, 4\)"),
        ]


def _roll_conv(k, x, n):
    return np.real(np.fft.ifft(np.fft.fft(k, n) * np.fft.fft(x, axis=-1), axis=-1))


@pytest.mark.parametrize("n", [2, 8, 32])
def test_xd_from_conv_circular_equals_the_circular_convolution(n):
    rng = np.random.default_rng(n)
    k = rng.standard_normal(min(3, n))
    x = rng.standard_normal((4, n))
    y = sl.xd_multiply(*sl.xd_from_conv(k, n), x)
    direct = np.array([[sum(k[j] * xi[(i - j) % n] for j in range(len(k))) for i in range(n)]
                       for xi in x])
    np.testing.assert_allclose(y.real, direct, atol=1e-10)
    np.testing.assert_allclose(y.imag, 0.0, atol=1e-10)
    np.testing.assert_allclose(y.real, _roll_conv(k, x, n), atol=1e-10)


@pytest.mark.parametrize(("N", "m"), [(5, 3), (8, 8), (13, 4), (1, 1)])
def test_xd_from_conv_linear_equals_scipy_convolve_on_padded_input(N, m):
    rng = np.random.default_rng(N * 10 + m)
    k, x = rng.standard_normal(m), rng.standard_normal(N)
    tK, tL, tM, w = sl.xd_from_conv(k, N, mode="linear")
    nfft = w.shape[0]
    assert nfft >= N + m - 1 and nfft & (nfft - 1) == 0 and nfft < 2 * max(N + m - 1, 1)
    xpad = np.zeros(nfft)
    xpad[:N] = x
    y = sl.xd_multiply(tK, tL, tM, w, xpad)
    np.testing.assert_allclose(y.real[: N + m - 1], scipy.signal.convolve(x, k), atol=1e-10)
    np.testing.assert_allclose(y.real[N + m - 1:], 0.0, atol=1e-10)


def test_xd_from_conv_complex_kernel_and_complex64():
    rng = np.random.default_rng(1)
    k = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    x = rng.standard_normal((2, 16)) + 1j * rng.standard_normal((2, 16))
    params = sl.xd_from_conv(k, 16, dtype=np.complex64)
    assert all(p.dtype == np.complex64 for p in params)
    y = sl.xd_multiply(*params, x.astype(np.complex64))
    assert y.dtype == np.complex64
    ref = np.fft.ifft(np.fft.fft(k, 16) * np.fft.fft(x, axis=-1), axis=-1)
    np.testing.assert_allclose(y, ref, atol=1e-4)


def test_gradient_steps_from_a_convolution_reduce_the_loss():
    """Training starts from a convolution: gradient steps on all four parameters towards a
    different convolution lower the loss."""
    rng = np.random.default_rng(2)
    n = 16
    params = list(sl.xd_from_conv(np.array([1.0, -1.0]), n))
    x = rng.standard_normal((32, n))
    target = _roll_conv(np.array([0.5, 0.25, 0.25]), x, n)

    def loss(ps):
        r = sl.xd_multiply(*ps, x) - target
        return float(np.sum(np.abs(r) ** 2)), r

    first, _ = loss(params)
    for _ in range(20):
        _, r = loss(params)
        grads = sl.xd_multiply_vjp(*params, x, 2 * r)
        params = [p - 2e-4 * g for p, g in zip(params, grads[:4], strict=True)]
    assert loss(params)[0] < 0.5 * first


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: sl.xd_from_conv(np.ones(3), 6), ValueError, "power of two"),
        (lambda: sl.xd_from_conv(np.ones(9), 8), ValueError, "n must be"),
        (lambda: sl.xd_from_conv(np.ones((2, 2)), 8), ValueError, "kernel must be"),
        (lambda: sl.xd_from_conv(np.ones(0), 8), ValueError, "kernel must be"),
        (lambda: sl.xd_from_conv(np.ones(2), 8, mode="same"), ValueError, "mode"),
        (lambda: sl.xd_from_conv(np.ones(2), 8, dtype=np.float64), TypeError, "dtype"),
        (lambda: sl.xd_from_conv(np.ones(2), 8.5), TypeError, "n must be"),
    ],
)
def test_xd_from_conv_bad_inputs_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
