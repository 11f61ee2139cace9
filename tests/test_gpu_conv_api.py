"""The public long-convolution API on CuPy arrays agrees with the NumPy/CPU path.

These tests only need the CUDA engine ``structlin.gpu.conv`` (written against the kernel
contract in :mod:`structlin._cpu.conv`); they check that :mod:`structlin.conv` reaches it only
through that contract: validation, promotion, batch reshaping, plans, streams, the SSM scan
and the regularisers, on the device, with results and gradients equal to the CPU ones.
"""

from __future__ import annotations

import numpy as np
import pytest

import structlin as sl
from tests.strategies import random_array, tolerance

pytestmark = pytest.mark.gpu


def _cp():
    import cupy

    return cupy


def _close(a_gpu, b_cpu, dt, n):
    a = _cp().asnumpy(a_gpu)
    assert a.shape == b_cpu.shape and a.dtype == b_cpu.dtype
    scale = max(float(np.abs(b_cpu).max(initial=0)), 1e-30)
    assert float(np.abs(a - b_cpu).max(initial=0)) <= tolerance(dt, n) * 8 * scale


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("L,Lk,causal", [(1000, 1000, True), (37, 5, False), (3, 200, True),
                                         (4096, 4096, False), (1, 1, True)])
def test_gpu_fftconv_and_vjp_match_cpu(dt, L, Lk, causal):
    cp = _cp()
    rng = np.random.default_rng(L + Lk)
    u = random_array(rng, (2, 3, L), dt)
    k = random_array(rng, (3, Lk), dt)
    D = random_array(rng, (3,), dt)
    pre, post, g = (random_array(rng, u.shape, dt) for _ in range(3))
    args_cpu = (u, k, D)
    args_gpu = tuple(cp.asarray(a) for a in args_cpu)
    kw_cpu = {"pregate": pre, "postgate": post, "causal": causal}
    kw_gpu = {"pregate": cp.asarray(pre), "postgate": cp.asarray(post), "causal": causal}
    _close(sl.fftconv(*args_gpu, **kw_gpu), sl.fftconv(*args_cpu, **kw_cpu), dt, L + Lk)
    got = sl.fftconv_vjp(*args_gpu, cp.asarray(g), **kw_gpu)
    want = sl.fftconv_vjp(*args_cpu, g, **kw_cpu)
    for a, b in zip(got, want, strict=True):
        _close(a, b, dt, (L + Lk) * 4)


@pytest.mark.parametrize("dt", [np.float32, np.complex64])
@pytest.mark.parametrize("precision,tol", [("fp16", 2e-3), ("bf16", 1.5e-2)])
@pytest.mark.parametrize("L,Lk,causal", [(1000, 1000, True), (8000, 300, False),
                                         (40000, 1000, True)])
def test_gpu_tensor_core_fftconv_and_vjp_match_cpu_to_half_precision(dt, precision, tol, L, Lk,
                                                                    causal):
    cp = _cp()
    rng = np.random.default_rng(L + Lk)
    u = random_array(rng, (2, 3, L), dt)
    k = (random_array(rng, (3, Lk), dt) / np.sqrt(Lk)).astype(dt)
    D = random_array(rng, (3,), dt)
    pre, post, g = (random_array(rng, u.shape, dt) for _ in range(3))
    kw = {"pregate": pre, "postgate": post, "causal": causal}
    kw_gpu = {name: cp.asarray(a) for name, a in kw.items() if name != "causal"}
    kw_gpu["causal"] = causal
    args_gpu = tuple(cp.asarray(a) for a in (u, k, D))

    def rel(a_gpu, b_cpu):
        a = cp.asnumpy(a_gpu)
        assert a.shape == b_cpu.shape and a.dtype == b_cpu.dtype
        return float(np.linalg.norm(a - b_cpu) / np.linalg.norm(b_cpu))

    err = rel(sl.fftconv(*args_gpu, precision=precision, **kw_gpu), sl.fftconv(u, k, D, **kw))
    assert 1e-6 < err < tol
    got = sl.fftconv_vjp(*args_gpu, cp.asarray(g), precision=precision, **kw_gpu)
    want = sl.fftconv_vjp(u, k, D, g, **kw)
    for name, a, b in zip(("u", "k", "D", "pregate", "postgate"), got, want, strict=True):
        err = rel(a, b)
        assert err < (1e-4 if name == "D" else tol), (name, err)
        assert name == "D" or err > 1e-6, (name, err)  # rounded to half precision


def test_gpu_plan_stream_ssm_and_regularisers_match_cpu():
    cp = _cp()
    rng = np.random.default_rng(0)
    k = rng.standard_normal((4, 300)).astype(np.float32)
    u = rng.standard_normal((2, 4, 1000)).astype(np.float32)
    plan = sl.fftconv_plan(cp.asarray(k), 1000)
    _close(sl.fftconv(cp.asarray(u), plan), sl.fftconv(u, k), np.float32, 1300)
    stream = sl.fftconv_stream(cp.asarray(k), 128)
    y = cp.concatenate([stream.push(cp.asarray(u[..., s:s + 128])) for s in range(0, 1000, 128)],
                       axis=-1)
    _close(y, sl.fftconv(u, k), np.float32, 1300)
    A = 0.95 * np.exp(1j * rng.uniform(0, np.pi, (4, 3)))
    B, C = rng.standard_normal((2, 4, 3))
    ud = u.astype(np.float64)
    _close(sl.ssm_conv_chunked(*(cp.asarray(a) for a in (ud, A, B, C)), 100),
           sl.ssm_conv_chunked(ud, A, B, C, 100), np.complex128, 1000)
    _close(sl.squash_kernel(cp.asarray(k), 0.5), sl.squash_kernel(k, 0.5), np.float32, 1)
    _close(sl.smooth_kernel(cp.asarray(k), 5), sl.smooth_kernel(k, 5), np.float32, 5)


def test_gpu_mixing_with_numpy_names_the_arguments():
    cp = _cp()
    with pytest.raises(TypeError, match="k is a cupy"):
        sl.fftconv(np.ones((3, 8)), cp.ones((3, 4)))
