"""CUDA long-convolution launcher (:mod:`structlin.gpu.conv`) against a ``cupy.fft`` reference.

Calls the low-level contract functions directly (the public ``structlin.conv`` is tested in
``tests/test_conv.py``). Sizes cover the one-pass path (``nfft <= 2**15`` for real float32
rows in the half-length mode, ``2**14`` float64), the one launch in two frequency halves of
complex rows (``nfft = 2**15`` complex64, ``2**14`` complex128), the three-pass path
(``nfft = 2**16 .. 2**18``), odd batches (a packed real pair with one row),
``Lk`` longer than ``L`` and the centred offset. The backward is checked with the dot test of
each (affine) argument against the reference forward.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")

pytestmark = pytest.mark.gpu

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
# (B, H, L, Lk)
SHAPES = [(1, 1, 1, 1), (3, 2, 5, 3), (5, 4, 100, 37), (2, 3, 1000, 1000), (4, 8, 4096, 4096),
          (3, 2, 8000, 300)]
# nfft = 2**15: one launch in two halves for complex64; 2**14: for complex128
SPLIT = [(2, 3, 20000, 12000), (1, 2, 9000, 7000)]
MULTI_PASS = [(3, 2, 20000, 20000), (2, 1, 40000, 1000), (1, 2, 70000, 65000)]


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _random(shape, dtype, *key):
    rng = _rng(shape, np.dtype(dtype).str, *key)
    a = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        a = (a + 1j * rng.standard_normal(shape)) / np.sqrt(2)
    return cupy.asarray(a.astype(dtype))


def _tol(dtype):
    return 2e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10


def _reference(u, k, offset, D=None, pre=None, post=None):
    """The gated convolution with ``cupy.fft`` in complex128 (the plain pipeline)."""
    L, Lk = u.shape[-1], k.shape[-1]
    n = L + Lk - 1
    v = u.astype(np.complex128) * (1 if pre is None else pre)
    full = cupy.fft.ifft(cupy.fft.fft(v, n=n) * cupy.fft.fft(k.astype(np.complex128), n=n), n=n)
    y = full[..., offset:offset + L]
    if D is not None:
        y = y + D[None, :, None] * u
    if post is not None:
        y = y * post
    return y


def _rel_err(got, want):
    return float(cupy.linalg.norm((got - want).ravel()) /
                 max(float(cupy.linalg.norm(want.ravel())), 1e-300))


def _problem(shape, dtype, gates, key=0):
    B, H, L, Lk = shape
    u = _random((B, H, L), dtype, "u", key)
    k = (_random((H, Lk), dtype, "k", key) / np.sqrt(Lk)).astype(dtype)
    if not gates:
        return u, k, None, None, None
    return (u, k, _random((H,), dtype, "D", key), _random((B, H, L), dtype, "pre", key),
            _random((B, H, L), dtype, "post", key))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES + SPLIT + MULTI_PASS)
@pytest.mark.parametrize("centred", [False, True])
def test_forward_matches_the_cupy_fft_pipeline(shape, dtype, centred):
    from structlin.gpu import conv

    u, k, D, pre, post = _problem(shape, dtype, gates=True)
    L, Lk = shape[2], shape[3]
    offset = (Lk - 1) // 2 if centred else 0
    nfft = conv.fft_size(L, Lk)
    spec = conv.kernel_spectrum(k, nfft)
    out = cupy.empty_like(u)
    conv.forward(u, spec, nfft, Lk, offset, D, pre, post, out)
    assert _rel_err(out, _reference(u, k, offset, D, pre, post)) < _tol(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_without_gates_is_the_plain_convolution(dtype):
    from structlin.gpu import conv

    u, k, *_ = _problem((4, 3, 3000, 3000), dtype, gates=False)
    nfft = conv.fft_size(3000, 3000)
    out = conv.forward(u, conv.kernel_spectrum(k, nfft), nfft, 3000, 0, None, None, None,
                       cupy.empty_like(u))
    assert _rel_err(out, _reference(u, k, 0)) < _tol(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 2, 13, 5), (2, 3, 1000, 1000), (3, 2, 20000, 3000)])
@pytest.mark.parametrize("gates", [True, False])
def test_backward_satisfies_the_dot_test_of_each_argument(shape, dtype, gates):
    from structlin.gpu import conv

    u, k, D, pre, post = _problem(shape, dtype, gates=gates, key=1)
    B, H, L, Lk = shape
    offset = (Lk - 1) // 2
    grad = _random((B, H, L), dtype, "grad")
    nfft = conv.fft_size(L, Lk)
    spec = conv.kernel_spectrum(k, nfft)
    before = [a.copy() for a in (u, spec, grad)]
    grads = conv.backward(u, spec, nfft, Lk, offset, D, pre, post, grad)
    for a, b in zip(before, (u, spec, grad), strict=True):
        assert bool((a == b).all())
    base = {"u": u, "k": k, "D": D, "pre": pre, "post": post}
    for name, g_w in zip(("u", "k", "D", "pre", "post"), grads, strict=True):
        if base[name] is None:
            assert g_w is None
            continue
        assert g_w.shape == base[name].shape and g_w.dtype == base[name].dtype
        dw = _random(base[name].shape, dtype, "dw", name)
        outs = [_reference(**{**base, name: w}, offset=offset) for w in (dw, cupy.zeros_like(dw))]
        lhs = complex(cupy.vdot(grad.astype(np.complex128), outs[0] - outs[1]))
        rhs = complex(cupy.vdot(g_w.astype(np.complex128), dw))
        scale = float(cupy.linalg.norm(grad)) * float(cupy.linalg.norm(outs[0]))
        assert abs(lhs - rhs) <= 10 * _tol(dtype) * max(scale, abs(lhs)), name


def test_kernel_spectrum_is_the_fft_in_the_documented_order():
    from structlin.gpu import conv

    for nfft in (16, 1 << 14, 1 << 16):
        k = _random((3, nfft // 2), np.float64, "spec")
        want = cupy.fft.fft(k, n=nfft)[:, cupy.asarray(conv.spectrum_order(nfft, np.float64))]
        assert _rel_err(conv.kernel_spectrum(k, nfft), want) < 1e-12


@pytest.mark.parametrize("precision,tol", [("fp16", 2e-3), ("bf16", 1.5e-2)])
@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
@pytest.mark.parametrize("shape", [(4, 8, 1024, 1024), (2, 4, 8000, 8000), (2, 2, 30000, 1000)])
def test_tensor_core_forward_matches_the_cupy_fft_pipeline(shape, dtype, precision, tol):
    from structlin.gpu import conv

    u, k, D, pre, post = _problem(shape, dtype, gates=True, key=2)
    L, Lk = shape[2], shape[3]
    nfft = conv.fft_size(L, Lk)
    out = cupy.empty_like(u)
    conv.forward(u, conv.kernel_spectrum(k, nfft), nfft, Lk, 0, D, pre, post, out,
                 precision=precision)
    err = _rel_err(out, _reference(u, k, 0, D, pre, post))
    assert 1e-6 < err < tol


def _reference_grads(u, k, offset, D, pre, post, grad):
    """``(grad_u, grad_k, grad_D, grad_pregate, grad_postgate)`` with ``cupy.fft`` in
    complex128, from the formulas of ``fftconv_vjp``'s Notes: ``gz = grad conj(post)``,
    ``grad_v[s] = sum_j conj(k[j]) gz[s + j - offset]`` and ``grad_k[j] = sum_{b,t} gz[t]
    conj(v[t + offset - j])``, both circular correlations at ``n = L + Lk - 1`` (no wrap-around
    reaches the kept window) read from index ``-offset``."""
    L, Lk = u.shape[-1], k.shape[-1]
    n = L + Lk - 1
    c = lambda a: a.astype(np.complex128)  # noqa: E731
    v = c(u) * pre
    gz = c(grad) * post.conj()
    z = _reference(u, k, offset, D, pre)
    G = cupy.fft.fft(gz, n=n)
    gv = cupy.roll(cupy.fft.ifft(G * cupy.fft.fft(c(k), n=n).conj(), n=n), offset, axis=-1)
    gv = gv[..., :L]
    cross = (G * cupy.fft.fft(v, n=n).conj()).sum(axis=0)
    gk = cupy.roll(cupy.fft.ifft(cross, n=n), offset, axis=-1)[..., :Lk]
    return (gv * pre.conj() + D.conj()[None, :, None] * gz, gk,
            (gz * u.conj()).sum(axis=(0, 2)), gv * u.conj(), grad * z.conj())


@pytest.mark.parametrize("precision,tol", [("fp16", 2e-3), ("bf16", 1.5e-2)])
@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
@pytest.mark.parametrize("shape", [(4, 8, 1024, 1024), (3, 2, 8000, 300), (2, 3, 20000, 12000),
                                   (2, 2, 40000, 1000)])
def test_tensor_core_backward_matches_the_cupy_fft_gradients(shape, dtype, precision, tol):
    from structlin.gpu import conv

    u, k, D, pre, post = _problem(shape, dtype, gates=True, key=4)
    B, H, L, Lk = shape
    grad = _random((B, H, L), dtype, "grad", 4)
    offset = (Lk - 1) // 2
    nfft = conv.fft_size(L, Lk)
    got = conv.backward(u, conv.kernel_spectrum(k, nfft), nfft, Lk, offset, D, pre, post, grad,
                        precision=precision)
    want = _reference_grads(u, k, offset, D, pre, post, grad)
    for name, g, w in zip(("u", "k", "D", "pregate", "postgate"), got, want, strict=True):
        err = _rel_err(g, w if np.dtype(dtype).kind == "c" else w.real)
        if name == "D":  # a reduction in fp32: nothing rounded to half precision
            assert err < _tol(dtype), (name, err)
        else:
            assert 1e-6 < err < tol, (name, err)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_forward_matches_direct_convolution(dtype):
    from structlin.gpu import conv

    u, k, D, pre, post = _problem((2, 3, 50, 20), dtype, gates=True, key=3)
    got = cupy.asnumpy(conv.reference_forward(u, k, 9, D, pre, post))
    un, kn, Dn, pn, qn = (cupy.asnumpy(a) for a in (u, k, D, pre, post))
    want = np.empty(un.shape, dtype=np.complex128)
    for b in range(2):
        for h in range(3):
            want[b, h] = np.convolve(pn[b, h] * un[b, h], kn[h])[9:59]
    want = qn * (want + Dn[None, :, None] * un)
    assert got.dtype == np.dtype(dtype)
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < _tol(dtype)


@pytest.mark.parametrize("dtype,shape", [(np.complex64, (2, 3, 20000, 12000)),
                                         (np.complex128, (1, 2, 9000, 7000))])
def test_complex_rows_at_twice_the_one_pass_size_take_one_launch(dtype, shape, monkeypatch):
    from structlin.gpu import conv

    launches = []
    real_launch = conv.launch
    monkeypatch.setattr(conv, "launch", lambda *a: (launches.append(a), real_launch(*a))[1])
    u, k, D, pre, post = _problem(shape, dtype, gates=True)
    L, Lk = shape[2], shape[3]
    nfft = conv.fft_size(L, Lk)
    assert nfft == 2 * conv.MAX_SINGLE_PASS[np.dtype(dtype).itemsize]
    spec = conv.kernel_spectrum(k, nfft)
    out = cupy.empty_like(u)
    launches.clear()
    conv.forward(u, spec, nfft, Lk, 0, D, pre, post, out)
    assert len(launches) == 1
    assert _rel_err(out, _reference(u, k, 0, D, pre, post)) < _tol(dtype)


# ---- the public API's conformance checks on CuPy arrays ---------------------------------------

from tests import test_conv as _cpu_tests  # noqa: E402  (after importorskip: needs no GPU)


@pytest.mark.gpu
class TestGpuFftconvConformance(_cpu_tests.TestFftconvConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuFftconvCentredGatedConformance(_cpu_tests.TestFftconvCentredGatedConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuFftconvDirectPathConformance(_cpu_tests.TestFftconvDirectPathConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuFftconvPlannedConformance(_cpu_tests.TestFftconvPlannedConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuSmoothKernelConformance(_cpu_tests.TestSmoothKernelConformance):
    xp = cupy


@pytest.mark.gpu
class TestGpuSmoothKernelWiderThanTheKernelConformance(
        _cpu_tests.TestSmoothKernelWiderThanTheKernelConformance):
    xp = cupy
