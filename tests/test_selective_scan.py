"""Tests of Mamba's selective scan (structlin/selective_scan.py): the fused kernels against a
NumPy transcription of ``selective_scan_ref`` (mamba_ssm/ops/selective_scan_interface.py) in
every layout of B and C, real and complex A, with and without D, z, delta_bias and softplus;
the VJP against finite differences for every argument; dtypes, batch isolation, memory
layouts, bad inputs, and the exact identity of a time-invariant scan with a convolution."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structlin import _ssm_reference as _reference
from structlin.selective_scan import selective_scan, selective_scan_vjp

# ------------------------------------------------------------------ the reference


def selective_scan_ref(*args, **kwargs):
    """The NumPy transcription of mamba_ssm's ``selective_scan_ref``
    (:func:`structlin._ssm_reference.selective_scan_ref`), in float64 / complex128."""
    return _reference.selective_scan_ref(*args, wide=True, **kwargs)


# ------------------------------------------------------------------ problems

# (b, d, l, n): l = 70 crosses the 64-step chunk; d = 40 is not a multiple of the 32-lane block
SIZE = (2, 40, 70, 5)
# layout, groups: "grouped" with g = 4 puts a 32-channel block across groups (10 channels
# each), g = 2 of 64 channels keeps each block in one group
LAYOUTS = [("fixed", 1), ("shared", 1), ("grouped", 4)]


def _bc(rng, layout, g, b, d, l, n, complex_A, interleaved, dtype):
    real = np.dtype(dtype).type(0).real.dtype
    if layout == "fixed":
        M = rng.standard_normal((d, n))
        if complex_A:
            M = M + 1j * rng.standard_normal((d, n))
            return M.astype(np.result_type(real, np.complex64))
        return M.astype(real)
    shape = (b, n) if layout == "shared" else (b, g, n)
    if complex_A and interleaved:
        return rng.standard_normal((*shape, 2 * l)).astype(real)
    if complex_A:
        M = rng.standard_normal((*shape, l)) + 1j * rng.standard_normal((*shape, l))
        return M.astype(np.result_type(real, np.complex64))
    return rng.standard_normal((*shape, l)).astype(real)


def _problem(seed, layout="shared", g=1, complex_A=False, dtype=np.float64, size=SIZE,
             interleaved=True, options=True):
    rng = np.random.default_rng(seed)
    b, d, l, n = size
    real = np.dtype(dtype).type(0).real.dtype
    u = rng.standard_normal((b, d, l)).astype(real)
    delta = (0.5 * rng.standard_normal((b, d, l))).astype(real)
    A = -np.exp(0.5 * rng.standard_normal((d, n)))
    if complex_A:
        A = (0.5 * A + 1j * np.pi * rng.standard_normal((d, n))).astype(
            np.result_type(real, np.complex64))
    else:
        A = A.astype(real)
    B = _bc(rng, layout, g, b, d, l, n, complex_A, interleaved, dtype)
    C = _bc(rng, layout, g, b, d, l, n, complex_A, interleaved, dtype)
    kw = {}
    if options:
        kw = dict(D=rng.standard_normal(d).astype(real),
                  z=rng.standard_normal((b, d, l)).astype(real),
                  delta_bias=(0.3 * rng.standard_normal(d)).astype(real), delta_softplus=True)
    return (u, delta, A, B, C), kw


def _rel(got, want):
    got = np.asarray(got, np.complex128)
    want = np.asarray(want, np.complex128)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


# ------------------------------------------------------------------ forward vs reference


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("complex_A", [False, True])
@pytest.mark.parametrize("layout,g", LAYOUTS)
def test_matches_selective_scan_ref(layout, g, complex_A, dtype):
    for options in (False, True):
        args, kw = _problem(3, layout, g, complex_A, dtype, options=options)
        out, last = selective_scan(*args, **kw, return_last_state=True)
        want_out, want_last = selective_scan_ref(*args, **kw, return_last_state=True)
        real = np.dtype(dtype).type(0).real.dtype
        assert out.dtype == real and out.shape == args[0].shape
        assert last.dtype == np.result_type(args[2].dtype, real)
        assert last.shape == (SIZE[0], SIZE[1], SIZE[3])
        tol = 2e-5 if real == np.float32 else 1e-12
        assert _rel(out, want_out) < tol
        assert _rel(last, want_last) < tol


@pytest.mark.parametrize("complex_A", [False, True])
def test_every_option_alone_matches_the_reference(complex_A):
    args, full = _problem(5, "grouped", 2, complex_A, size=(2, 64, 70, 3))
    for kw in ({}, {"D": full["D"]}, {"z": full["z"]}, {"delta_bias": full["delta_bias"]},
               {"delta_softplus": True}):
        assert _rel(selective_scan(*args, **kw), selective_scan_ref(*args, **kw)) < 1e-12


@pytest.mark.parametrize("complex_A", [False, True])
def test_B_and_C_in_different_layouts_match_the_reference(complex_A):
    rng = np.random.default_rng(9)
    b, d, l, n = SIZE
    args, kw = _problem(9, "shared", 1, complex_A)
    u, delta, A = args[:3]
    for lb, lc in (("shared", "fixed"), ("fixed", "grouped"), ("grouped", "shared")):
        B = _bc(rng, lb, 2, b, d, l, n, complex_A, True, np.float64)
        C = _bc(rng, lc, 4, b, d, l, n, complex_A, True, np.float64)
        got = selective_scan(u, delta, A, B, C, **kw)
        assert _rel(got, selective_scan_ref(u, delta, A, B, C, **kw)) < 1e-12, (lb, lc)


def test_complex_B_C_given_as_complex_or_as_real_pairs_agree():
    (u, delta, A, B, C), kw = _problem(7, "shared", 1, True, interleaved=True)
    Bc = np.ascontiguousarray(B).view(np.complex128)
    Cc = np.ascontiguousarray(C).view(np.complex128)
    np.testing.assert_array_equal(selective_scan(u, delta, A, B, C, **kw),
                                  selective_scan(u, delta, A, Bc, Cc, **kw))
    g = np.random.default_rng(0).standard_normal(u.shape)
    pairs = selective_scan_vjp(u, delta, A, B, C, g, **kw)
    cplx = selective_scan_vjp(u, delta, A, Bc, Cc, g, **kw)
    assert pairs[3].shape == B.shape and pairs[3].dtype == np.float64
    np.testing.assert_allclose(pairs[3].view(np.complex128), cplx[3], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pairs[4].view(np.complex128), cplx[4], rtol=1e-12, atol=1e-12)


def test_long_sequence_float32_stays_accurate():
    # 1000 steps of float32 with the softplus and the gate: the fused exp2 and softplus
    args, kw = _problem(11, "shared", size=(1, 70, 1000, 16), dtype=np.float32)
    out, last = selective_scan(*args, **kw, return_last_state=True)
    want, want_last = selective_scan_ref(*args, **kw, return_last_state=True)
    assert _rel(out, want) < 2e-5 and _rel(last, want_last) < 2e-5


def test_leading_batch_dimensions():
    (u, delta, A, B, C), kw = _problem(13, "grouped", 4)
    b, d, l = u.shape
    add = lambda a: np.stack([a, 2 * a, -a])  # noqa: E731
    U, De, Bb, Cb, Z = add(u), np.stack([delta] * 3), add(B), add(C), np.stack([kw["z"]] * 3)
    kw3 = dict(kw, z=Z)
    out, last = selective_scan(U, De, A, Bb, Cb, **kw3, return_last_state=True)
    assert out.shape == (3, b, d, l) and last.shape == (3, b, d, A.shape[1])
    for j in range(3):
        o, s = selective_scan(U[j], De[j], A, Bb[j], Cb[j], **kw, return_last_state=True)
        np.testing.assert_array_equal(out[j], o)
        np.testing.assert_array_equal(last[j], s)
    grads = selective_scan_vjp(U, De, A, Bb, Cb, np.ones_like(U), **kw3)
    assert grads[3].shape == Bb.shape and grads[0].shape == U.shape


def test_empty_sequence_and_batch():
    (u, delta, A, B, C), _ = _problem(1, "shared", size=(2, 3, 0, 4))
    out, last = selective_scan(u, delta, A, B, C, return_last_state=True)
    assert out.shape == (2, 3, 0) and last.shape == (2, 3, 4) and not last.any()
    grads = selective_scan_vjp(u, delta, A, B, C, np.zeros(u.shape))
    assert grads[2].shape == A.shape and not grads[2].any()
    (u, delta, A, B, C), _ = _problem(1, "shared", size=(0, 3, 5, 4))
    assert selective_scan(u, delta, A, B, C).shape == (0, 3, 5)


# ------------------------------------------------------------------ an exact identity


@settings(max_examples=8, deadline=None)
@given(l=st.integers(1, 90), n=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_time_invariant_scan_is_a_causal_convolution(l, n, seed):
    """With a constant step and time-invariant B, C the scan is the convolution of u with
    K[j] = sum_k C_k exp(dt A_k)^j dt B_k."""
    rng = np.random.default_rng(seed)
    d = 3
    u = rng.standard_normal((1, d, l))
    dt = rng.uniform(0.01, 0.5, d)
    delta = np.broadcast_to(dt[None, :, None], u.shape)
    A = -rng.uniform(0.1, 2.0, (d, n))
    B, C = rng.standard_normal((d, n)), rng.standard_normal((d, n))
    out = selective_scan(u, delta, A, B, C)
    j = np.arange(l)
    K = np.einsum("dn,dnj->dj", C * B * dt[:, None], np.exp(dt[:, None, None] * A[:, :, None] * j))
    want = np.stack([np.convolve(u[0, c], K[c])[:l] for c in range(d)])[None]
    np.testing.assert_allclose(out, want, rtol=1e-11, atol=1e-11 * np.abs(want).max())


# ------------------------------------------------------------------ VJP


_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def _loss(args, kw, g):
    return float(np.sum(g * selective_scan(*args, **kw)))


def _check_vjp(args, kw, seed, eps=1e-6, tol=1e-6):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(args[0].shape)
    grads = selective_scan_vjp(*args, g, **kw)
    values = dict(zip(_NAMES, (*args, kw.get("D"), kw.get("z"), kw.get("delta_bias")),
                      strict=True))
    for name, grad in zip(_NAMES, grads, strict=True):
        x = values[name]
        if x is None:
            assert grad is None, name
            continue
        assert grad.shape == x.shape and grad.dtype == x.dtype, name
        v = rng.standard_normal(x.shape)
        if np.iscomplexobj(x):
            v = v + 1j * rng.standard_normal(x.shape)

        def at(s, name=name, x=x, v=v):
            new = dict(values, **{name: x + s * v})
            a = tuple(new[k] for k in _NAMES[:5])
            k2 = dict(kw, **{k: new[k] for k in ("D", "z", "delta_bias") if k in kw})
            return _loss(a, k2, g)

        fd = (at(eps) - at(-eps)) / (2 * eps)
        an = float(np.sum(np.real(np.conj(grad) * v)))
        assert abs(fd - an) <= tol * max(1.0, abs(fd)), (name, fd, an)


@pytest.mark.parametrize("complex_A", [False, True])
@pytest.mark.parametrize("layout,g", [*LAYOUTS, ("grouped", 2)])
def test_vjp_matches_finite_differences(layout, g, complex_A):
    size = (2, 4, 70, 3)
    for options in (True, False):
        args, kw = _problem(17, layout, g, complex_A, size=size, options=options)
        _check_vjp(args, kw, 1)


def test_vjp_of_real_pairs_matches_finite_differences():
    args, kw = _problem(19, "grouped", 2, True, size=(1, 4, 66, 2), interleaved=True)
    _check_vjp(args, kw, 2)


def test_vjp_float32_in_float32_out_and_close_to_float64():
    args, kw = _problem(23, "grouped", 2, False, size=(2, 4, 70, 3))
    g = np.random.default_rng(3).standard_normal(args[0].shape)
    g64 = selective_scan_vjp(*args, g, **kw)
    a32 = tuple(a.astype(np.float32) for a in args)
    k32 = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    g32 = selective_scan_vjp(*a32, g.astype(np.float32), **k32)
    for x, y in zip(g64, g32, strict=True):
        assert y.dtype == np.float32
        assert _rel(y, x) < 1e-4


def test_vjp_of_complex64_is_single_precision():
    args, kw = _problem(29, "shared", 1, True, dtype=np.complex64, size=(1, 3, 10, 2))
    grads = selective_scan_vjp(*args, np.ones(args[0].shape, np.float32), **kw)
    assert [gr.dtype for gr in grads] == [np.float32, np.float32, np.complex64, np.float32,
                                          np.float32, np.float32, np.float32, np.float32]


# ------------------------------------------------------------------ dtypes and the seam


def test_float32_in_float32_out_and_promotion():
    args, kw = _problem(31, "shared", dtype=np.float32)
    out, last = selective_scan(*args, **kw, return_last_state=True)
    assert out.dtype == np.float32 and last.dtype == np.float32
    u, delta, A, B, C = args
    out64 = selective_scan(u, delta, A.astype(np.float64), B, C, **kw)
    assert out64.dtype == np.float64
    ci = selective_scan(np.ones((1, 2, 3), np.int64), np.ones((1, 2, 3), np.int32),
                        -np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2)))
    assert ci.dtype == np.float64
    cargs, ckw = _problem(31, "shared", complex_A=True, dtype=np.complex64)
    o, s = selective_scan(*cargs, **ckw, return_last_state=True)
    assert o.dtype == np.float32 and s.dtype == np.complex64


def test_nan_in_one_batch_row_stays_in_it():
    (u, delta, A, B, C), kw = _problem(37, "shared")
    clean = selective_scan(u, delta, A, B, C, **kw)
    g = np.ones(u.shape)
    clean_grads = selective_scan_vjp(u, delta, A, B, C, g, **kw)
    for name, idx in (("u", (0, 3, 10)), ("delta", (0, 5, 2)), ("B", (0, 1, 7)),
                      ("z", (0, 2, 60))):
        for bad in (np.nan, np.inf):
            vals = {"u": u.copy(), "delta": delta.copy(), "B": B.copy(), "z": kw["z"].copy()}
            vals[name][idx] = bad
            k2 = dict(kw, z=vals["z"])
            out = selective_scan(vals["u"], vals["delta"], A, vals["B"], C, **k2)
            np.testing.assert_array_equal(out[1], clean[1])
            assert not np.all(np.isfinite(out[0]))
            grads = selective_scan_vjp(vals["u"], vals["delta"], A, vals["B"], C, g, **k2)
            for j in (0, 1, 3, 4, 6):  # u, delta, B, C, z: per batch row
                np.testing.assert_array_equal(grads[j][1], clean_grads[j][1])


def test_memory_layouts_and_lists_give_the_contiguous_result():
    (u, delta, A, B, C), kw = _problem(41, "grouped", 4)
    want = selective_scan(u, delta, A, B, C, **kw)
    big = np.zeros((u.shape[0], u.shape[1], 2 * u.shape[2]))
    big[..., ::2] = u
    ro = delta.copy()
    ro.flags.writeable = False
    got = selective_scan(big[..., ::2], ro, np.asfortranarray(A), np.asfortranarray(B),
                         C.swapaxes(0, 1).copy().swapaxes(0, 1), **kw)
    np.testing.assert_array_equal(got, want)
    be = selective_scan(u.astype(">f8"), delta, A.astype(">f8"), B, C.astype(">f8"), **kw)
    np.testing.assert_array_equal(be, want)
    D_b = np.broadcast_to(kw["D"][:1], kw["D"].shape)
    bc = selective_scan(u, delta, A, B, C, **dict(kw, D=D_b))
    np.testing.assert_array_equal(
        bc, selective_scan(u, delta, A, B, C, **dict(kw, D=np.full_like(kw["D"], kw["D"][0]))))
    small = _problem(43, "fixed", size=(1, 2, 3, 2), options=False)[0]
    np.testing.assert_array_equal(selective_scan(*(a.tolist() for a in small)),
                                  selective_scan(*small))


def test_inputs_are_not_modified():
    args, kw = _problem(47, "shared", complex_A=True)
    copies = [a.copy() for a in args]
    kcopies = {k: v.copy() for k, v in kw.items() if isinstance(v, np.ndarray)}
    selective_scan(*args, **kw, return_last_state=True)
    selective_scan_vjp(*args, np.ones(args[0].shape), **kw)
    for a, c in zip(args, copies, strict=True):
        np.testing.assert_array_equal(a, c)
    for k, c in kcopies.items():
        np.testing.assert_array_equal(kw[k], c)


def _bad_cases():
    (u, delta, A, B, C), _ = _problem(53, "shared", size=(2, 4, 6, 3), options=False)
    d1 = np.ones(4)
    return [
        ("delta shape", lambda: selective_scan(u, delta[:, :, :5], A, B, C), ValueError,
         r"delta must have the shape of u, \(2, 4, 6\), got \(2, 4, 5\)"),
        ("A rows", lambda: selective_scan(u, delta, A[:3], B, C), ValueError,
         r"A must have shape \(d, n\) with d = 4.*got \(3, 3\)"),
        ("B length", lambda: selective_scan(u, delta, A, B[..., :5], C), ValueError,
         r"B must have shape \(2, 3, 6\).*got \(2, 3, 5\)"),
        ("C states", lambda: selective_scan(u, delta, A, B, C[:, :2]), ValueError,
         r"C must have shape \(2, 3, 6\).*got \(2, 2, 6\)"),
        ("B fixed", lambda: selective_scan(u, delta, A, np.ones((4, 2)), C), ValueError,
         r"B must have shape \(4, 3\).*got \(4, 2\)"),
        ("groups", lambda: selective_scan(u, delta, A, np.ones((2, 3, 3, 6)), C), ValueError,
         r"g = 3 must divide d = 4"),
        ("B ndim", lambda: selective_scan(u, delta, A, np.ones(3), C), ValueError,
         r"B must have 2, 3 or 4 dimensions"),
        ("D", lambda: selective_scan(u, delta, A, B, C, D=np.ones(3)), ValueError,
         r"D must have shape \(4,\).*got \(3,\)"),
        ("delta_bias", lambda: selective_scan(u, delta, A, B, C, delta_bias=np.ones(5)),
         ValueError, r"delta_bias must have shape \(4,\)"),
        ("z", lambda: selective_scan(u, delta, A, B, C, z=np.ones((2, 4, 7))), ValueError,
         r"z must have the shape of u"),
        ("u ndim", lambda: selective_scan(u[0], delta[0], A, B[0], C[0]), ValueError,
         r"u must have shape \(batch, d, l\)"),
        ("A NaN", lambda: selective_scan(u, delta, np.where(A < -1, np.nan, A), B, C),
         ValueError, "A must be finite"),
        ("D inf", lambda: selective_scan(u, delta, A, B, C, D=d1 * np.inf), ValueError,
         "D must be finite"),
        ("fixed B NaN", lambda: selective_scan(u, delta, A, np.full((4, 3), np.nan), C),
         ValueError, "B must be finite"),
        ("complex u", lambda: selective_scan(u + 0j, delta, A, B, C), TypeError,
         "u must be real"),
        ("complex B, real A", lambda: selective_scan(u, delta, A, B + 0j, C), TypeError,
         "B is complex.*but A is real"),
        ("pairs length", lambda: selective_scan(u, delta, A + 0j, B, C), ValueError,
         r"B must have shape \(2, 3, 12\).*2 l = 12"),
        ("object", lambda: selective_scan(u.astype(object), delta, A, B, C), TypeError,
         "u must have a numeric dtype"),
        ("string flag", lambda: selective_scan(u, delta, A, B, C, delta_softplus="yes"),
         TypeError, "delta_softplus must be True or False"),
        ("None", lambda: selective_scan(u, None, A, B, C), TypeError, "delta must be an array"),
        ("grad shape", lambda: selective_scan_vjp(u, delta, A, B, C, np.ones((2, 4, 5))),
         ValueError, r"grad must have the shape of u"),
        ("grad None", lambda: selective_scan_vjp(u, delta, A, B, C, None), TypeError,
         "grad must be an array"),
    ]


@pytest.mark.parametrize("case", _bad_cases(), ids=lambda c: c[0])
def test_bad_inputs_are_refused_by_name(case):
    _, call, exc, match = case
    with pytest.raises(exc, match=match):
        call()
