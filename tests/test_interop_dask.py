"""structlin.interop.dask: blockwise products over the batch axes equal the NumPy results; a
split vector axis is refused (or merged on request)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")

import structlin as sl  # noqa: E402
from structlin.interop import dask as sd  # noqa: E402
from tests.interop_cases import PRECISION_CASES, numpy_error  # noqa: E402


def _x(shape, chunks, seed=0, dtype=np.float64):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return a, da.from_array(a, chunks=chunks)


def test_butterfly_multiply_and_solve_equal_numpy():
    tw = sl.random_butterfly(16, rng=1)
    a, x = _x((4, 50, 16), (2, 17, 16))
    y = sd.butterfly_multiply(tw, x, transpose=True)
    assert y.chunks == x.chunks
    np.testing.assert_array_equal(y.compute(), sl.butterfly_multiply(tw, a, transpose=True))
    for inc in (True, False):
        np.testing.assert_allclose(
            sd.butterfly_solve(tw, x, increasing_stride=inc, conjugate=True).compute(),
            sl.butterfly_solve(tw, a, increasing_stride=inc, conjugate=True), atol=1e-10)


def test_monarch_and_pixelfly_change_the_last_axis_length():
    rng = np.random.default_rng(2)
    w1, w2 = rng.standard_normal((2, 3, 3)), rng.standard_normal((3, 4, 2))
    a, x = _x((40, 6), (15, 6))
    y = sd.monarch_multiply(w1, w2, x)
    assert y.shape == (40, 12) and y.chunks == ((15, 15, 10), (12,))
    np.testing.assert_allclose(y.compute(), sl.monarch_multiply(w1, w2, a))
    mask = sl.flat_block_butterfly_mask(8, 16, 2)
    blocks = rng.standard_normal((int(mask.sum()), 2, 2))
    U, V = rng.standard_normal((8, 1)), rng.standard_normal((16, 1))
    a, x = _x((30, 16), (7, 16))
    np.testing.assert_allclose(sd.pixelfly_multiply(blocks, mask, U, V, x).compute(),
                               sl.pixelfly_multiply(blocks, mask, U, V, a))


def test_fftconv_with_gates_over_chunked_batches():
    rng = np.random.default_rng(3)
    a, u = _x((6, 3, 20), (4, 3, 20))
    k, D = rng.standard_normal((3, 7)), rng.standard_normal(3)
    pre = rng.standard_normal((6, 3, 20))
    post = da.from_array(rng.standard_normal((6, 3, 20)), chunks=(3, 3, 10))
    y = sd.fftconv(u, k, D, pregate=pre, postgate=post, causal=False)
    np.testing.assert_allclose(
        y.compute(), sl.fftconv(a, k, D, pregate=pre, postgate=post.compute(), causal=False))
    np.testing.assert_allclose(sd.fftconv(u, k).compute(), sl.fftconv(a, k))


def test_transforms_and_dtype():
    a, x = _x((10, 8), (3, 8), dtype=np.float32)
    for fn in ("dct", "dst"):
        y = getattr(sd, fn)(x, 3, "ortho")
        assert y.dtype == np.float32
        # float32 rounding depends on how many rows a kernel call sees
        np.testing.assert_allclose(y.compute(), getattr(sl, fn)(a, 3, "ortho"), rtol=1e-5,
                                   atol=1e-6)
    np.testing.assert_allclose(sd.fwht(x, normalize=True).compute(),
                               sl.fwht(a, normalize=True), rtol=1e-5, atol=1e-6)


def test_split_last_axis_raises_or_is_rechunked():
    tw = sl.random_butterfly(8, rng=0)
    a, x = _x((12, 8), (5, 4))
    with pytest.raises(ValueError, match=r"rechunk=True"):
        sd.butterfly_multiply(tw, x)
    y = sd.butterfly_multiply(tw, x, rechunk=True)
    assert y.chunks == ((5, 5, 2), (8,))
    np.testing.assert_array_equal(y.compute(), sl.butterfly_multiply(tw, a))
    _, u = _x((2, 4, 6), (1, 2, 6))
    with pytest.raises(ValueError, match="axis -2 in 2 chunks"):
        sd.fftconv(u, np.ones((4, 3)))


def test_map_batch_with_any_function_and_argument_errors():
    a, x = _x((9, 4), (4, 4))
    y = sd.map_batch(functools.partial(sl.fwht, normalize=True), x)
    np.testing.assert_array_equal(y.compute(), sl.fwht(a, normalize=True))
    with pytest.raises(TypeError, match=r"dask\.array\.Array"):
        sd.map_batch(sl.fwht, a)
    with pytest.raises(TypeError, match="compute it first"):
        sd.butterfly_multiply(da.from_array(sl.random_butterfly(4, rng=0)), x)


# ---- precision -----------------------------------------------------------------------------


def _dask_call(name, arrays, **kw):
    """The Dask wrapper of ``name`` on ``arrays``, its vectors chunked by rows."""
    case = PRECISION_CASES[name]
    lazy = tuple(da.from_array(a, chunks=(1, *a.shape[1:])) if vec else a
                 for a, vec in zip(arrays, case.vectors, strict=True))
    return case.call(getattr(sd, name), lazy, **kw)


@pytest.mark.parametrize("name", sorted(PRECISION_CASES))
def test_precision_is_passed_to_every_chunk_and_computes_full_precision(name, monkeypatch):
    case = PRECISION_CASES[name]
    arrays = case.make(np.random.default_rng(30), np.float32)
    # the same chunks at the default precision (float32 rounding depends on the rows per call)
    expected = _dask_call(name, arrays).compute(scheduler="synchronous")
    np.testing.assert_allclose(expected, case.call(getattr(sl, name), arrays), rtol=1e-5,
                               atol=1e-6)
    seen = []
    real = getattr(sl, name)

    def spy(*args, **kwargs):
        seen.append(kwargs.get("precision"))
        return real(*args, **kwargs)

    monkeypatch.setattr(sl, name, spy)
    y = _dask_call(name, arrays, precision=case.tensor_core)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.compute(scheduler="synchronous"), expected)
    assert seen and set(seen) == {case.tensor_core}, seen


@pytest.mark.parametrize("name", sorted(PRECISION_CASES))
def test_precision_errors_are_the_numpy_functions_when_the_graph_is_built(name):
    case = PRECISION_CASES[name]
    arrays = case.make(np.random.default_rng(31), np.float32)
    with pytest.raises(ValueError, match=numpy_error(name, arrays, case.refused)):
        _dask_call(name, arrays, precision=case.refused)
    with pytest.raises(ValueError, match=numpy_error(name, arrays, "bogus")):
        _dask_call(name, arrays, precision="bogus")
    doubles = tuple(a.astype(np.float64) for a in arrays)
    with pytest.raises(ValueError, match=numpy_error(name, doubles, case.tensor_core)):
        _dask_call(name, doubles, precision=case.tensor_core)


# ---- the other families' products ----------------------------------------------------------


def test_kaleidoscope_xd_circulant_and_toeplitz_equal_numpy():
    rng = np.random.default_rng(4)
    a, x = _x((3, 10, 8), (2, 4, 8))
    tw = sl.random_kaleidoscope(8, 2, rng=0)
    tws = [sl.random_kaleidoscope(8, w, rng=w) for w in (1, 2, 1)]
    w = rng.standard_normal(8)
    c, r = rng.standard_normal(8), rng.standard_normal(8)
    for lazy, eager in (
        (sd.kaleidoscope_multiply(tw, x), sl.kaleidoscope_multiply(tw, a)),
        (sd.xd_multiply(*tws, w, x), sl.xd_multiply(*tws, w, a)),
        (sd.circulant_multiply(c, x), sl.circulant_multiply(c, a)),
        (sd.toeplitz_multiply(c, r, x), sl.toeplitz_multiply(c, r, a)),
    ):
        assert lazy.chunks == x.chunks
        np.testing.assert_allclose(lazy.compute(), eager, rtol=1e-12, atol=1e-12)


def test_scipy_layout_products_split_batch_and_columns_not_the_vector_axis():
    rng = np.random.default_rng(5)
    c, r = rng.standard_normal(7), rng.standard_normal(5)  # T is 7 x 5
    a, x = _x((4, 5, 6), (3, 5, 4))
    y = sd.matmul_toeplitz((c, r), x)
    assert y.shape == (4, 7, 6) and y.chunks == ((3, 1), (7,), (4, 2))
    np.testing.assert_allclose(y.compute(), sl.matmul_toeplitz((c, r), a), atol=1e-12)
    np.testing.assert_allclose(sd.matmul_hankel((c, r), x).compute(),
                               sl.matmul_hankel((c, r), a), atol=1e-12)
    cs = np.array([4.0, 1.0, 0.5, 0.25, 0.1])
    np.testing.assert_allclose(sd.solve_toeplitz(cs, x).compute(), sl.solve_toeplitz(cs, a),
                               atol=1e-12)
    v, vx = _x((5,), (5,))  # one vector: one chunk
    y = sd.matmul_toeplitz((c, r), vx)
    assert y.shape == (7,)
    np.testing.assert_allclose(y.compute(), sl.matmul_toeplitz((c, r), v), atol=1e-12)
    c = c[:5]
    _, split = _x((5, 6), (2, 6))
    with pytest.raises(ValueError, match=r"axis -2 in 3 chunks.*rechunk=True"):
        sd.matmul_toeplitz(c, split)
    np.testing.assert_allclose(sd.matmul_toeplitz(c, split, rechunk=True).compute(),
                               sl.matmul_toeplitz(c, split.compute()), atol=1e-12)
    with pytest.raises(ValueError, match="shared by every vector"):
        sd.matmul_toeplitz(np.ones((2, 5)), x)  # a batch of matrices


def test_ldr_cauchy_and_vandermonde_products_change_or_keep_the_length():
    rng = np.random.default_rng(6)
    a, x = _x((20, 8), (6, 8))
    G, H = rng.standard_normal((2, 8)), rng.standard_normal((2, 8))
    sub = {"subdiag_A": np.full(7, 0.5), "subdiag_B": np.ones(7)}
    for kind, params in (("toeplitz", {}), ("subdiagonal", sub)):
        np.testing.assert_allclose(sd.ldr_multiply(G, H, x, kind, **params).compute(),
                                   sl.ldr_multiply(G, H, a, kind, **params), atol=1e-10)
    xn, yn = np.arange(5.0) + 0.5, np.arange(8.0)
    y = sd.matmul_cauchy(xn, yn, x)
    assert y.chunks == ((6, 6, 6, 2), (5,))
    np.testing.assert_allclose(y.compute(), sl.matmul_cauchy(xn, yn, a))
    nodes = np.linspace(-1, 1, 8)
    y = sd.matmul_vandermonde(nodes, x, 3)
    assert y.shape == (20, 3)
    np.testing.assert_allclose(y.compute(), sl.matmul_vandermonde(nodes, a, 3))
    with pytest.raises(ValueError, match="batch shape"):
        sd.ldr_multiply(np.stack([G] * 20), np.stack([H] * 20), x, "toeplitz")
    with pytest.raises(TypeError, match="compute it first"):
        sd.matmul_cauchy(da.from_array(xn), yn, x)


def test_kernel_features_change_the_last_axis_length():
    nodes, weights = sl.quadrature_rule("rff", 3, 16, random_state=0)
    a, X = _x((2, 25, 3), (1, 10, 3), dtype=np.float32)
    Z = sd.kernel_features(X, nodes.astype(np.float32), weights.astype(np.float32))
    assert Z.shape == (2, 25, 32) and Z.chunks[1:] == ((10, 10, 5), (32,))
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z.compute(), sl.kernel_features(
        a, nodes.astype(np.float32), weights.astype(np.float32)), rtol=1e-5, atol=1e-6)
    phases = np.random.default_rng(7).uniform(0, 2 * np.pi, 16)
    assert sd.kernel_features(X, nodes, weights, phases=phases).shape == (2, 25, 16)
    signs = sl.sorf_parameters(3, 8, random_state=0)
    np.testing.assert_allclose(sd.sorf_features(X, signs, gamma=0.5).compute(),
                               sl.sorf_features(a, signs, gamma=0.5), rtol=1e-5, atol=1e-6)
    ff = sl.fastfood_parameters(3, 8, random_state=0)
    np.testing.assert_allclose(sd.fastfood_features(X, *ff, n_nodes=6).compute(),
                               sl.fastfood_features(a, *ff, n_nodes=6), rtol=1e-5, atol=1e-6)


def test_selective_scan_chunks_over_the_batch_with_time_varying_and_fixed_B_C():
    rng = np.random.default_rng(8)
    b, d, n, L = 5, 4, 3, 12
    u, dt, z = (rng.standard_normal((b, d, L)) for _ in range(3))
    A = -rng.random((d, n))
    Bv = rng.standard_normal((b, 2, n, L))  # grouped, time-varying
    Cf = rng.standard_normal((d, n))  # time-invariant
    D, bias = rng.standard_normal(d), rng.standard_normal(d)
    lazy_u = da.from_array(u, chunks=(2, d, L))
    lazy_B = da.from_array(Bv, chunks=(3, 2, n, L))  # other batch chunks: rechunked like u
    y, last = sd.selective_scan(lazy_u, dt, A, lazy_B, Cf, D, z, bias, delta_softplus=True,
                                return_last_state=True)
    assert y.chunks == lazy_u.chunks and last.chunks == ((2, 2, 1), (d,), (n,))
    ey, elast = sl.selective_scan(u, dt, A, Bv, Cf, D, z, bias, delta_softplus=True,
                                  return_last_state=True)
    got_y, got_last = dask.compute(y, last)
    np.testing.assert_allclose(got_y, ey, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_last, elast, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"u has its vector axes split.*rechunk=True"):
        sd.selective_scan(da.from_array(u, chunks=(2, d, 5)), dt, A, Bv, Cf)
    with pytest.raises(ValueError, match="B must have the batch shape"):
        sd.selective_scan(lazy_u, dt, A, Bv[:3], Cf)
    with pytest.raises(TypeError, match=r"u must be a dask\.array\.Array"):
        sd.selective_scan(u, dt, A, Bv, Cf)


def test_ssd_and_ssm_scan_chunk_over_the_batch():
    rng = np.random.default_rng(9)
    b, L, h, p, g, n = 4, 10, 2, 3, 1, 4
    X = rng.standard_normal((b, L, h, p))
    A = -rng.random((b, L, h))
    B, C = rng.standard_normal((b, L, g, n)), rng.standard_normal((b, L, g, n))
    S0 = rng.standard_normal((b, h, p, n))
    Y, S = sd.ssd(da.from_array(X, chunks=(1, L, h, p)), A, B, C, 4, initial_states=S0,
                  return_final_states=True)
    assert Y.chunks[0] == (1, 1, 1, 1) and S.shape == (b, h, p, n)
    eY, eS = sl.ssd(X, A, B, C, 4, initial_states=S0, return_final_states=True)
    np.testing.assert_allclose(Y.compute(), eY, atol=1e-12)
    np.testing.assert_allclose(S.compute(), eS, atol=1e-12)
    H, N = 3, 2
    Lam = -rng.random((H, N)) + 1j * rng.standard_normal((H, N))
    Bs, Cs = rng.standard_normal((H, N)), rng.standard_normal((H, N))
    u = rng.standard_normal((6, H, 8))
    lazy = da.from_array(u, chunks=(4, H, 8))
    np.testing.assert_allclose(sd.ssm_scan(Lam, Bs, Cs, 0.1, lazy).compute(),
                               sl.ssm_scan(Lam, Bs, Cs, 0.1, u), atol=1e-12)
    state = rng.standard_normal((6, H, N)) + 0j
    y, last = sd.ssm_scan(Lam, Bs, Cs, 0.1, lazy, state=state, return_state=True)
    ey, elast = sl.ssm_scan(Lam, Bs, Cs, 0.1, u, state=state, return_state=True)
    np.testing.assert_allclose(y.compute(), ey, atol=1e-12)
    np.testing.assert_allclose(last.compute(), elast, atol=1e-12)


# ---- meta: the chunks' array type ----------------------------------------------------------


def test_meta_is_numpy_for_numpy_chunks_with_the_result_dtype_and_ndim():
    rng = np.random.default_rng(10)
    _, x = _x((6, 8), (3, 8), dtype=np.float32)
    nodes, weights = (rng.standard_normal((5, 8)).astype(np.float32),
                      np.ones(5, np.float32))
    for y in (sd.butterfly_multiply(sl.random_butterfly(8, rng=0).astype(np.float32), x),
              sd.kernel_features(x, nodes, weights),
              sd.matmul_toeplitz(np.ones(8, np.float32), x.T)):
        assert type(y._meta) is np.ndarray
        assert y._meta.shape == (0,) * y.ndim and y._meta.dtype == y.dtype == np.float32


def test_meta_follows_the_array_type_the_chunks_return():
    # the mechanism that gives CuPy chunks a CuPy meta, shown with another array type:
    # NumPy masked arrays, made from x's meta and returned by the function
    a = np.ma.masked_array(np.arange(12.0).reshape(6, 2), mask=np.zeros((6, 2), bool))
    x = da.from_array(a, chunks=(2, 2), asarray=False)
    assert isinstance(x._meta, np.ma.MaskedArray)
    y = sd.map_batch(lambda b: np.ma.concatenate([b, 2 * b], axis=-1), x)
    assert isinstance(y._meta, np.ma.MaskedArray) and y.shape == (6, 4)
    out = y.compute()
    assert isinstance(out, np.ma.MaskedArray)
    np.testing.assert_array_equal(out[:, 2:], 2 * a)


@pytest.mark.gpu
def test_cupy_backed_chunks_give_cupy_meta_and_cupy_results():
    cp = pytest.importorskip("cupy")
    rng = np.random.default_rng(11)
    a = rng.standard_normal((64, 16)).astype(np.float32)
    x = da.from_array(cp.asarray(a), chunks=(16, 16), asarray=False)
    tw = sl.random_butterfly(16, rng=0).astype(np.float32)
    nodes = rng.standard_normal((4, 16)).astype(np.float32)
    for lazy, eager in (
        (sd.butterfly_multiply(cp.asarray(tw), x), sl.butterfly_multiply(tw, a)),
        (sd.kernel_features(x, cp.asarray(nodes), cp.ones(4, np.float32)),
         sl.kernel_features(a, nodes, np.ones(4, np.float32))),
        (sd.matmul_toeplitz(cp.asarray(a[0]), x.T), sl.matmul_toeplitz(a[0], a.T)),
    ):
        assert isinstance(lazy._meta, cp.ndarray) and lazy._meta.dtype == np.float32
        out = lazy.compute()
        assert isinstance(out, cp.ndarray)
        np.testing.assert_allclose(cp.asnumpy(out), eager, rtol=1e-4, atol=1e-4)


def test_benchmark_case_runs_and_agrees_with_one_numpy_call():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import bench_dask

    (case,) = bench_dask.cases(True)
    assert case.work > 0 and case.unit == "byte"
    assert case.check(case.fn(), case.baseline()) <= case.tol
