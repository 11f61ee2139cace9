"""structlin.fft against scipy.fft: values, dtypes, norms, lengths, axes, errors, the backend.

Tolerances are ``C eps log2(n)`` relative to the largest entry of the float64 reference
(``C = 8``: the measured worst case over the lengths below is about 1.1). Lengths cover the
engine's direct path (5-smooth, even and odd), Bluestein's (7, 11, 97, 1009) and 1.
"""

from __future__ import annotations

import inspect
import math
import warnings
from unittest import mock

import numba
import numpy as np
import pytest
import scipy.fft
from hypothesis import given, settings
from hypothesis import strategies as st

import structlin as sl
import structlin.fft as slfft
from tests.strategies import batch_shapes, dtypes, random_array, seeds

NAMES = ("fft", "ifft", "rfft", "irfft", "dct", "idct", "dst", "idst", "next_fast_len",
         "prev_fast_len")
NORMS = (None, "ortho", "forward")
LENGTHS = (1, 2, 6, 7, 16, 45, 97)
R2R = ("dct", "idct", "dst", "idst")


def _close(got, ref, dtype, n, C=8.0):
    eps = np.finfo(np.dtype(dtype)).eps
    scale = max(float(np.max(np.abs(ref), initial=0.0)), 1e-30)
    err = float(np.max(np.abs(got - ref), initial=0.0))
    assert err <= C * eps * max(1.0, math.log2(max(n, 2))) * scale, (err / scale, n)


def _ref64(x):
    return x.astype(np.result_type(x.dtype, np.float64))


def test_signatures_and_names_are_scipy_fft_ones():
    assert sorted(slfft.__all__) == sorted(NAMES)
    def params(f):
        return [(q.name, q.kind, q.default) for q in inspect.signature(f).parameters.values()]

    for name in NAMES:
        assert params(getattr(slfft, name)) == params(getattr(scipy.fft, name)), name
    assert slfft.__ua_domain__ == "numpy.scipy.fft"


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("n", LENGTHS)
def test_fft_and_ifft_equal_scipy_fft(dt, n):
    x = random_array(np.random.default_rng(n), (3, n), dt)
    before = x.copy()
    cdt = np.result_type(dt, np.complex64)
    for norm in NORMS:
        for name in ("fft", "ifft"):
            y = getattr(slfft, name)(x, norm=norm)
            assert y.dtype == cdt and y.shape == x.shape
            _close(y, getattr(scipy.fft, name)(_ref64(x), norm=norm), dt, n)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("n", LENGTHS)
def test_rfft_and_irfft_equal_scipy_fft(dt, n):
    x = random_array(np.random.default_rng(n), (2, 3, n), dt)
    h = scipy.fft.rfft(_ref64(x))
    hc = h.astype(np.result_type(dt, np.complex64))
    for norm in NORMS:
        y = slfft.rfft(x, norm=norm)
        assert y.dtype == hc.dtype and y.shape == (2, 3, n // 2 + 1)
        _close(y, scipy.fft.rfft(_ref64(x), norm=norm), dt, n)
        z = slfft.irfft(hc, n=n, norm=norm)
        assert z.dtype == dt and z.shape == x.shape
        _close(z, scipy.fft.irfft(h, n=n, norm=norm), dt, n)
    # the imaginary parts of the 0 and n/2 bins are ignored, as by pocketfft
    hj = hc.copy()
    hj[..., 0] += 1j
    hj[..., -1] += 1j * (n % 2 == 0)
    _close(slfft.irfft(hj, n=n), scipy.fft.irfft(h, n=n), dt, n)


@pytest.mark.parametrize("kind", R2R)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("n", (2, 3, 8, 9, 11, 16))
def test_dct_dst_every_type_norm_and_orthogonalize_equal_scipy_fft(kind, dt, n):
    x = random_array(np.random.default_rng(n), (3, n), dt)
    before = x.copy()
    for type in (1, 2, 3, 4):
        for norm in NORMS:
            for orth in (None, True, False):
                y = getattr(slfft, kind)(x, type, norm=norm, orthogonalize=orth)
                ref = getattr(scipy.fft, kind)(_ref64(x), type, norm=norm, orthogonalize=orth)
                assert y.dtype == dt and y.shape == x.shape
                _close(y, ref, dt, n)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("kind", ("dct", "dst"))
@pytest.mark.parametrize("n", (2, 3, 8, 9))
def test_array_operation_route_of_the_cupy_path_equals_scipy_fft(kind, n):
    # the CuPy path runs these array passes on cuFFT; here they run with NumPy on the engine
    x = random_array(np.random.default_rng(n), (3, n), np.float64)
    for type in (1, 2, 3, 4):
        for norm, orth in ((None, False), ("ortho", True), ("ortho", False), (None, True)):
            N = 2 * (n + 1 if kind == "dst" else n - 1) if type == 1 else 2 * n
            fct = 1 / math.sqrt(N) if norm == "ortho" else 1.0
            y = slfft._r2r_array_ops(np, kind, x, type, fct, orth)
            ref = getattr(scipy.fft, kind)(x, type, norm=norm, orthogonalize=orth)
            _close(y, ref, np.float64, n)


@pytest.mark.parametrize("kind", R2R)
def test_dct_dst_of_complex_input_transform_real_and_imaginary_parts(kind):
    x = random_array(np.random.default_rng(3), (2, 10), np.complex64)
    for type in (1, 2, 3, 4):
        y = getattr(slfft, kind)(x, type, norm="ortho")
        assert y.dtype == np.complex64
        f = getattr(scipy.fft, kind)
        ref = f(_ref64(x.real), type, norm="ortho") + 1j * f(_ref64(x.imag), type, norm="ortho")
        _close(y, ref, np.float32, 10)


@pytest.mark.parametrize("n", (1009, 1024))
def test_long_lengths_in_both_precisions(n):
    # 1009 is prime: Bluestein through a 5-smooth length >= 2017
    for dt in (np.complex64, np.complex128):
        x = random_array(np.random.default_rng(n), (2, n), dt)
        _close(slfft.fft(x), scipy.fft.fft(_ref64(x)), dt, n)
        _close(slfft.ifft(x, norm="ortho"), scipy.fft.ifft(_ref64(x), norm="ortho"), dt, n)
    x = random_array(np.random.default_rng(1), (2, n), np.float32)
    _close(slfft.dct(x, 4), scipy.fft.dct(_ref64(x), 4), np.float32, n)


def test_n_pads_or_truncates_along_any_axis():
    x = random_array(np.random.default_rng(0), (5, 4, 3), np.float64)
    for axis in (0, 1, 2, -1, -3):
        for n in (1, 2, 7, 12):
            for name in ("fft", "rfft", "dct", "idst"):
                got = getattr(slfft, name)(x, n=n, axis=axis)
                ref = getattr(scipy.fft, name)(x, n=n, axis=axis)
                assert got.shape == ref.shape
                _close(got, ref, np.float64, n)
            h = scipy.fft.rfft(x, axis=axis)
            _close(slfft.irfft(h, n=n, axis=axis), scipy.fft.irfft(h, n=n, axis=axis),
                   np.float64, n)


@pytest.mark.parametrize("name", NAMES[:8])
def test_dtype_rules_follow_scipy(name):
    f, ref = getattr(slfft, name), getattr(scipy.fft, name)
    for dt in (np.float16, np.int8, np.int64, np.bool_, np.float32):
        x = (np.arange(8) % 3).astype(dt)
        assert f(x).dtype == ref(x).dtype, (name, dt)
        _close(f(x), ref(x.astype(np.float64)), np.float32, 8)
    assert f([1.0, 2.0, 3.0, 4.0]).dtype == ref([1.0, 2.0, 3.0, 4.0]).dtype


def test_memory_layouts_and_read_only_input():
    base = random_array(np.random.default_rng(2), (6, 16), np.complex128)
    layouts = {
        "fortran": np.asfortranarray(base),
        "strided": base[::2, ::2],
        "big-endian": base.astype(">c16"),
        "broadcast": np.broadcast_to(base[0], (4, 16)),
    }
    ro = base.copy()
    ro.setflags(write=False)
    layouts["read-only"] = ro
    for name, x in layouts.items():
        xc = np.array(x)
        _close(slfft.fft(x), scipy.fft.fft(xc), np.float64, 16)
        _close(slfft.dct(x.real), scipy.fft.dct(xc.real), np.float64, 16)
        np.testing.assert_array_equal(np.array(x), xc, err_msg=name)


def test_empty_batch_keeps_its_shape():
    for name in ("fft", "rfft", "dct", "dst"):
        assert getattr(slfft, name)(np.zeros((0, 3, 8))).shape[:2] == (0, 3)
    assert slfft.irfft(np.zeros((2, 0, 5), np.complex64)).shape == (2, 0, 8)


def test_workers_one_runs_single_threaded_and_restores_the_pool():
    x = random_array(np.random.default_rng(0), (64, 512), np.complex64)
    before = numba.get_num_threads()
    seen = []
    real_c2c = slfft._c2c_rows

    def spy(z, inverse, scale=1.0):
        seen.append(numba.get_num_threads())
        return real_c2c(z, inverse, scale)

    with mock.patch.object(slfft, "_c2c_rows", spy):
        y1 = slfft.fft(x, workers=1)
    assert seen == [1]
    assert numba.get_num_threads() == before
    _close(y1, slfft.fft(x, workers=-1), np.complex64, 512, C=2)


@settings(deadline=None, max_examples=25)
@given(batch=batch_shapes(max_dims=2), n=st.integers(1, 40), dt=dtypes(), seed=seeds())
def test_ifft_of_fft_is_identity(batch, n, dt, seed):
    x = random_array(np.random.default_rng(seed), (*batch, n), dt)
    _close(slfft.ifft(slfft.fft(x)), x, dt, n)


@settings(deadline=None, max_examples=25)
@given(n=st.integers(1, 40), dt=dtypes(), seed=seeds())
def test_parseval_holds_with_ortho_norm(n, dt, seed):
    x = random_array(np.random.default_rng(seed), (3, n), dt)
    y = slfft.fft(x, norm="ortho")
    e = np.finfo(np.dtype(dt)).eps
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1),
                               rtol=16 * e * max(1.0, math.log2(max(n, 2))))


@settings(deadline=None, max_examples=25)
@given(n=st.integers(1, 40), dt=dtypes(real_only=True), seed=seeds())
def test_irfft_of_rfft_is_identity(n, dt, seed):
    x = random_array(np.random.default_rng(seed), (2, n), dt)
    _close(slfft.irfft(slfft.rfft(x), n=n), x, dt, n)


@settings(deadline=None, max_examples=25)
@given(n=st.integers(2, 33), kind=st.sampled_from(("dct", "dst")), type=st.integers(1, 4),
       norm=st.sampled_from(NORMS), dt=dtypes(real_only=True), seed=seeds())
def test_inverse_transform_of_dct_dst_is_identity(n, kind, type, norm, dt, seed):
    x = random_array(np.random.default_rng(seed), (2, n), dt)
    y = getattr(slfft, kind)(x, type, norm=norm)
    _close(getattr(slfft, f"i{kind}")(y, type, norm=norm), x, dt, n, C=32)


def test_scipy_fft_backend_dispatches_here_and_falls_back_for_the_rest():
    x = random_array(np.random.default_rng(0), (4, 12), np.float64)
    calls = []
    real = slfft._c2c_public

    def spy(*args):
        calls.append(args[-1])
        return real(*args)

    with mock.patch.object(slfft, "_c2c_public", spy):
        with scipy.fft.set_backend(slfft):
            y = scipy.fft.fft(x, norm="ortho")
            z = scipy.fft.ifft(x)
            w = scipy.fft.fft2(x)      # not in structlin.fft: scipy's own backend
            d = scipy.fft.dct(x, 4, axis=0)
        assert calls == [False, True]
        _close(y, np.fft.fft(x, norm="ortho"), np.float64, 12)
        _close(z, np.fft.ifft(x), np.float64, 12)
        _close(w, np.fft.fft2(x), np.float64, 12)
        _close(d, slfft.dct(x, 4, axis=0), np.float64, 12, C=1)
        scipy.fft.fft(x)
        assert calls == [False, True]
    assert slfft.__ua_function__(scipy.fft.hfft, (x,), {}) is NotImplemented
    r = slfft.__ua_function__(scipy.fft.rfft, (x,), {"n": 8})
    _close(r, np.fft.rfft(x, n=8), np.float64, 8)


X8 = np.ones(8)
ERRORS = [
    (lambda: slfft.fft(X8, n=0), ValueError, r"invalid number of data points \(0\).*n must"),
    (lambda: slfft.rfft(X8, n=-3), ValueError, r"invalid number of data points \(-3\)"),
    (lambda: slfft.dct(np.ones((2, 0))), ValueError, r"invalid number of data points \(0\)"),
    (lambda: slfft.irfft(np.ones(1)), ValueError, r"invalid number of data points \(0\).*pass n"),
    (lambda: slfft.fft(X8, n=4.0), TypeError, "n must be an integer"),
    (lambda: slfft.fft(X8, norm="Ortho"), ValueError, "norm must be one of.*'Ortho'"),
    (lambda: slfft.dst(X8, norm=1), ValueError, "norm must be one of"),
    (lambda: slfft.fft(X8, axis=1), np.exceptions.AxisError, "axis"),
    (lambda: slfft.fft(np.float64(1.0)), ValueError, "axis"),
    (lambda: slfft.fft(X8, axis=0.0), TypeError, "axis must be an integer"),
    (lambda: slfft.dct(X8, type=5), ValueError, r"type must be one of \(1, 2, 3, 4\)"),
    (lambda: slfft.dct(X8, type="2"), TypeError, "type must be an integer"),
    (lambda: slfft.dct(np.ones(1), type=1), ValueError, "type 1 needs a length n of at least 2"),
    (lambda: slfft.idct(X8, orthogonalize="yes"), TypeError, "orthogonalize must be True"),
    (lambda: slfft.fft(X8, plan=object()), NotImplementedError, "plan"),
    (lambda: slfft.fft(X8, workers=0), ValueError, "workers must not be zero"),
    (lambda: slfft.fft(X8, workers=-10**6), ValueError, "workers value out of range"),
    (lambda: slfft.fft(X8, workers=1.5), TypeError, "workers must be an integer"),
    (lambda: slfft.rfft(X8 + 1j), TypeError, "x must be a real sequence"),
    (lambda: slfft.fft(np.array([1.0, None])), TypeError, "x must have a numeric dtype"),
    (lambda: slfft.dct(np.array(["a", "b"])), TypeError, "x must have a numeric dtype"),
    (lambda: slfft.fft(None), TypeError, "x must be an array of numbers"),
    (lambda: slfft.next_fast_len(0), ValueError, "target must be at least 1"),
    (lambda: slfft.prev_fast_len(2.0), TypeError, "target must be an integer"),
    (lambda: slfft.next_fast_len(8, real=1), TypeError, "real must be True or False"),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_bad_arguments_raise_naming_the_argument(i):
    call, exc, match = ERRORS[i]
    with pytest.raises(exc, match=match):
        call()


def _smooth(m):
    for p in (2, 3, 5):
        while m % p == 0:
            m //= p
    return m == 1


def test_fast_lengths_are_the_nearest_5_smooth_ones():
    smooth = [m for m in range(1, 800) if _smooth(m)]
    for target in range(1, 700):
        nxt = slfft.next_fast_len(target)
        assert nxt == min(m for m in smooth if m >= target), target
        assert slfft.prev_fast_len(target) == max(m for m in smooth if m <= target), target
        nr = slfft.next_fast_len(target, real=True)
        pr = slfft.prev_fast_len(target, real=True)
        if target > 1:
            assert nr == min(m for m in smooth if m >= target and m % 2 == 0), target
            assert pr == max(m for m in smooth if m <= target and m % 2 == 0), target
    assert slfft.next_fast_len(2**40) == 2**40
    assert slfft.next_fast_len(1021) == 1024 and slfft.next_fast_len(1025) == 1080


def test_structlin_dct_dst_and_their_vjps_run_on_the_engine_for_numpy():
    x = random_array(np.random.default_rng(4), (3, 32), np.float32)
    g = random_array(np.random.default_rng(5), (3, 32), np.float32)
    with mock.patch("structlin.dct_dst.butterfly_multiply", side_effect=AssertionError):
        for kind in ("dct", "dst"):
            for type in (2, 3, 4):
                for norm in (None, "ortho"):
                    M = getattr(scipy.fft, kind)(np.eye(32), type, norm=norm, axis=0)
                    y = getattr(sl, kind)(x, type, norm)
                    _close(y, x.astype(np.float64) @ M.T, np.float32, 32)
                    gx = getattr(sl, f"{kind}_vjp")(x, g, type, norm)
                    assert gx.dtype == np.float32
                    _close(gx, g.astype(np.float64) @ M, np.float32, 32)


# ----------------------------------------------------------------------------- CuPy (cuFFT)

@pytest.mark.gpu
@pytest.mark.parametrize("name", NAMES[:8])
def test_cupy_input_runs_cufft_with_the_same_semantics(name):
    cupy = pytest.importorskip("cupy")
    x = random_array(np.random.default_rng(0), (3, 12), np.float32)
    if name == "irfft":
        x = scipy.fft.rfft(x).astype(np.complex64)
    f = getattr(slfft, name)
    calls = [{}, {"n": 10, "norm": "ortho"}, {"axis": 0, "norm": "forward"}]
    if name in R2R:
        calls += [{"type": t, "norm": nm, "orthogonalize": o} for t in (1, 2, 3, 4)
                  for nm in (None, "ortho") for o in (None, False)]
        calls.append({"type": 4, "n": 7})
    for kw in calls:
        got = f(cupy.asarray(x), **kw)
        assert isinstance(got, cupy.ndarray), kw
        ref = f(x, **kw)
        assert got.dtype == ref.dtype and got.shape == ref.shape, kw
        _close(cupy.asnumpy(got), ref, np.float32, 12)


@pytest.mark.gpu
def test_cupy_and_numpy_mixed_are_refused_and_cupy_dct_is_on_the_engine():
    cupy = pytest.importorskip("cupy")
    x = random_array(np.random.default_rng(0), (3, 16), np.float64)
    gx = cupy.asarray(x)
    with pytest.raises(TypeError, match="same device"):
        sl.dct_vjp(gx, x)
    y = sl.dct(gx, 4, "ortho")
    assert isinstance(y, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(y), sl.dct(x, 4, "ortho"), atol=1e-12)


@pytest.mark.parametrize("n", [256, 4096, 1000, 513])
def test_a_nan_stays_in_its_row(n):
    """Rows are independent in every layout (rows as lanes, four-step tiles, Bluestein): a NaN
    in one row of the batch reaches no other row, and no warning is raised."""
    x = random_array(np.random.default_rng(n), (20, n), np.float32)
    x[3, 5] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outs = [slfft.fft(x), slfft.ifft(x), slfft.rfft(x), slfft.dct(x), slfft.dst(x, type=4),
                slfft.irfft(slfft.rfft(x), n)]
    for y in outs:
        assert sorted(set(np.nonzero(~np.isfinite(y))[0])) == [3]
