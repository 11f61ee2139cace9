"""The CUDA long-convolution engine (``structlin/gpu/conv.cu``) run on the CPU.

``conv.cu`` is compiled by NVRTC for compute_80/compute_90 in ``tests/test_gpu_compile.py``
(it iterates every source). Here the same source is compiled by the host C++ compiler with the
thread shim of :mod:`tests.cuda_emulator` (one std::thread per CUDA thread, ``std::barrier`` for
``__syncthreads``, shared memory filled with NaN bytes) and driven by the real launcher
:mod:`structlin.gpu.conv` through NumPy arrays, against a direct NumPy convolution. This
checks the Monarch/DIF stage indexing, the digit-reversed spectrum layout, the real-row
packing, the one-pass and three-pass (four-step) schedules, the fused epilogues and the
backward pipeline -- not performance nor anything warp-level.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from tests import cuda_emulator as emu

_PTRS = ("a", "agate", "bufin", "bufout", "spec", "tab", "out0", "out1", "u", "pre", "D",
         "post", "g")
_SCALARS = (("long long", "B"), ("int", "H"), ("long long", "L"), ("long long", "n_out"),
            ("long long", "N"), ("int", "P"), ("int", "n_rows"), ("int", "W"),
            ("long long", "cs"), ("long long", "tile_step"), ("int", "tiles"), ("int", "radbits"),
            ("int", "n_stages"), ("long long", "in_shift"), ("long long", "out_shift"),
            ("int", "load_mode"), ("int", "a_conj"), ("int", "do_fwd"), ("int", "mul"),
            ("int", "do_inv"), ("int", "store_mode"), ("double", "out_scale"),
            ("int", "precision"), ("int", "half"), ("int", "split"))


def _emulator_source() -> str:
    params = ", ".join([f"void* {p}" for p in _PTRS] + [f"{t} {n}" for t, n in _SCALARS])
    entries = []
    for t, code in emu.TYPE_CODES.items():
        tt = emu.qualified("emu_conv", t)
        ct = f"emu_conv::cplx<{tt}>"
        casts = []
        for p in _PTRS:
            elem = ct if p in ("bufin", "bufout", "spec", "tab") else tt
            casts.append(f"({elem}*){p}")
        call = ", ".join(casts + [n for _, n in _SCALARS])
        entries.append(emu.entry_point(f"conv_pass_{code}", params,
                                       f"emu_conv::conv_pass<{tt}>({call})"))
    return emu.emulator_source(emu.kernel_namespace("conv", "emu_conv"), entries=entries)


@pytest.fixture(scope="module")
def conv(tmp_path_factory):
    """The launcher module with CuPy replaced by NumPy and launches sent to the emulator."""
    lib = emu.compile_library(tmp_path_factory, "emu_conv", _emulator_source())
    # device -1 in the twiddle cache's keys; few host threads: faster emulation, and the
    # strided loops over items are exercised
    with emu.emulated_launcher("conv", emu.ctypes_launcher(lib),
                               cupy=emu.numpy_as_cupy(device_id=-1), MAX_THREADS=64,
                               _twiddle_cache={}) as mod:
        yield mod


@pytest.fixture
def multipass(conv, monkeypatch):
    """Shrink the one-pass limit so that small sizes take the three-pass (four-step) path."""
    monkeypatch.setattr(conv, "MAX_SINGLE_PASS", {8: 32, 16: 16})
    monkeypatch.setattr(conv, "COLUMN_TILE_BYTES", 256)
    return conv


# ------------------------------------------------------------------------------ references


def _data(shape, dtype, *key):
    rng = np.random.default_rng(zlib.crc32(repr((shape, str(dtype), key)).encode()))
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _reference(u, k, offset, D=None, pre=None, post=None):
    """Direct (O(L Lk)) gated convolution in complex128, written from the contract."""
    B, H, L = u.shape
    v = u.astype(np.complex128) * (1 if pre is None else pre)
    y = np.zeros((B, H, L), dtype=np.complex128)
    for h in range(H):
        for b in range(B):
            full = np.convolve(v[b, h], k[h].astype(np.complex128))  # length L + Lk - 1
            y[b, h] = full[offset:offset + L]
    if D is not None:
        y += D[None, :, None] * u
    if post is not None:
        y *= post
    return y


def _tol(dtype):
    return 2e-5 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-12


def _close(got, want, dtype):
    err = np.linalg.norm((got - want).ravel()) / max(np.linalg.norm(want.ravel()), 1e-300)
    assert err < _tol(dtype), f"relative error {err:.2e}"


def _problem(B, H, L, Lk, dtype, gates, key=0):
    u = _data((B, H, L), dtype, "u", key)
    k = (_data((H, Lk), dtype, "k", key) / np.sqrt(Lk)).astype(dtype)
    D = _data((H,), dtype, "D", key) if gates else None
    pre = _data((B, H, L), dtype, "pre", key) if gates else None
    post = _data((B, H, L), dtype, "post", key) if gates else None
    return u, k, D, pre, post


def _run_forward(conv, u, k, offset, D, pre, post):
    L, Lk = u.shape[2], k.shape[1]
    nfft = conv.fft_size(L, Lk)
    spec = conv.kernel_spectrum(k, nfft)
    out = np.empty_like(u)
    got = conv.forward(u, spec, nfft, Lk, offset, D, pre, post, out)
    assert got is out
    return out


DTYPES = ("float32", "float64", "complex64", "complex128")


# ----------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nfft", [1, 2, 8, 32, 64, 128, 512, 2048])
def test_kernel_spectrum_is_the_fft_in_digit_reversed_order(conv, nfft, dtype):
    H, Lk = 2, max(1, nfft // 2)
    k = _data((H, Lk), dtype, "spec")
    spec = conv.kernel_spectrum(k, nfft)
    want = np.fft.fft(k.astype(np.complex128), n=nfft)[:, conv.spectrum_order(nfft, dtype)]
    _close(spec, want, dtype)


# (B, H, L, Lk): odd batch (a real pair with one row), Lk > L, radices 2..16, nfft up to 1024
SHAPES = [(1, 1, 1, 1), (3, 2, 5, 3), (2, 3, 16, 16), (5, 2, 40, 7), (2, 2, 100, 100),
          (1, 1, 513, 17)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("centred", [False, True])
def test_one_pass_forward_matches_direct_convolution(conv, shape, dtype, centred):
    B, H, L, Lk = shape
    pipe = conv._rows_pipeline(dtype, B, H, L, conv.fft_size(L, Lk))
    assert pipe.n1 == 1
    # real rows: one row as nfft/2 complex values (nfft >= 2); complex rows: one per sequence
    assert pipe.half == (np.dtype(dtype).kind == "f" and L + Lk > 2)
    u, k, D, pre, post = _problem(B, H, L, Lk, dtype, gates=True)
    offset = (Lk - 1) // 2 if centred else 0
    got = _run_forward(conv, u, k, offset, D, pre, post)
    _close(got, _reference(u, k, offset, D, pre, post), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_without_gates_or_D_is_the_plain_causal_convolution(conv, dtype):
    u, k, *_ = _problem(3, 2, 30, 11, dtype, gates=False)
    got = _run_forward(conv, u, k, 0, None, None, None)
    _close(got, _reference(u, k, 0), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 2, 100, 9), (2, 1, 150, 100), (1, 2, 300, 33)])
def test_three_pass_forward_matches_direct_convolution(multipass, shape, dtype):
    conv = multipass
    B, H, L, Lk = shape
    nfft = conv.fft_size(L, Lk)
    assert conv._rows_pipeline(dtype, B, H, L, nfft).n1 > 1  # really the multi-pass path
    u, k, D, pre, post = _problem(B, H, L, Lk, dtype, gates=True)
    offset = (Lk - 1) // 2
    got = _run_forward(conv, u, k, offset, D, pre, post)
    _close(got, _reference(u, k, offset, D, pre, post), dtype)


def _check_backward(conv, shape, dtype, offset_kind, gates):
    """Each gradient against the dot-test identity of the (multi)affine map.

    ``out`` is affine in each argument w separately, so with the others fixed,
    ``vdot(grad, out(w := dw) - out(w := 0)) == vdot(grad_w, dw)`` (PyTorch's convention for
    complex: ``grad_w = A^H grad`` for the linear part ``A``).
    """
    B, H, L, Lk = shape
    u, k, D, pre, post = _problem(B, H, L, Lk, dtype, gates=gates, key=1)
    offset = (Lk - 1) // 2 if offset_kind == "same" else 0
    grad = _data((B, H, L), dtype, "grad")
    nfft = conv.fft_size(L, Lk)
    spec = conv.kernel_spectrum(k, nfft)
    snap = [None if a is None else a.copy() for a in (u, spec, D, pre, post, grad)]
    gu, gk, gD, gpre, gpost = conv.backward(u, spec, nfft, Lk, offset, D, pre, post, grad)
    for before, after in zip(snap, (u, spec, D, pre, post, grad), strict=True):
        if before is not None:
            np.testing.assert_array_equal(before, after)
    for name, value, ref in (("u", gu, u), ("k", gk, k), ("D", gD, D), ("pregate", gpre, pre),
                             ("postgate", gpost, post)):
        if ref is None:
            assert value is None, name
            continue
        assert value.shape == ref.shape and value.dtype == ref.dtype, name
        dw = _data(ref.shape, dtype, "dw", name)
        key = {"pregate": "pre", "postgate": "post"}.get(name, name)
        outs = []
        for value_w in (dw, np.zeros_like(dw)):
            args = {"u": u, "k": k, "D": D, "pre": pre, "post": post, key: value_w}
            outs.append(_reference(args["u"], args["k"], offset, args["D"], args["pre"],
                                   args["post"]))
        lhs = np.vdot(grad.astype(np.complex128), outs[0] - outs[1])
        rhs = np.vdot(value.astype(np.complex128), dw)
        scale = np.linalg.norm(grad) * np.linalg.norm(_reference(u, k, offset, D, pre, post))
        assert abs(lhs - rhs) <= _tol(dtype) * 10 * max(scale, abs(lhs), 1e-300), (
            f"grad_{name}: {lhs} != {rhs}"
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 2, 13, 5), (2, 1, 64, 65), (1, 3, 7, 20)])
@pytest.mark.parametrize("offset_kind", ["causal", "same"])
def test_one_pass_backward_satisfies_the_dot_test(conv, shape, dtype, offset_kind):
    _check_backward(conv, shape, dtype, offset_kind, gates=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_without_gates_returns_none_for_them(conv, dtype):
    _check_backward(conv, (3, 2, 20, 6), dtype, "causal", gates=False)


@pytest.mark.parametrize("dtype", DTYPES)
def test_three_pass_backward_satisfies_the_dot_test(multipass, dtype):
    assert multipass._rows_pipeline(dtype, 3, 2, 50, 128).n1 > 1
    _check_backward(multipass, (3, 2, 50, 30), dtype, "same", gates=True)


def test_backward_sums_grad_k_over_batch_chunks(conv, monkeypatch):
    # two rows per chunk: the cross-spectrum is accumulated over 3 chunks of a batch of 5
    monkeypatch.setattr(conv, "GRAD_K_BYTES", 2 * 2 * 2 * 64 * 8)
    _check_backward(conv, (5, 2, 40, 20), "float32", "same", gates=True)


def test_contract_functions_have_the_agreed_signatures(conv):
    import inspect

    want = {
        "fft_size": ["L", "Lk"],
        "kernel_spectrum": ["k", "nfft", "lazy"],
        "forward": ["u", "spec", "nfft", "Lk", "offset", "D", "pregate", "postgate", "out",
                    "precision"],
        "backward": ["u", "spec", "nfft", "Lk", "offset", "D", "pregate", "postgate", "grad",
                     "precision"],
    }
    for name, params in want.items():
        assert list(inspect.signature(getattr(conv, name)).parameters) == params, name
    for name in ("forward", "backward"):
        param = inspect.signature(getattr(conv, name)).parameters["precision"]
        assert param.default == "highest" and param.kind == param.KEYWORD_ONLY, name


def test_transform_lengths_beyond_the_three_pass_scheme_are_refused(multipass, monkeypatch):
    monkeypatch.setattr(multipass, "MAX_COLUMN_BYTES", 32 * 8)
    with pytest.raises(ValueError, match=r"nfft = 2048 is beyond the three-pass scheme.s 1024"):
        multipass._Pipeline(np.complex64, 1, 1, 10, 2048, 1)


def test_fft_size_is_the_next_power_of_two_of_the_linear_length(conv):
    assert [conv.fft_size(L, Lk) for L, Lk in [(1, 1), (2, 1), (3, 2), (5, 4), (1024, 1024)]] \
        == [1, 2, 4, 8, 2048]


# fp16 keeps 11 significant bits, bf16 8: a few stages of rounding the DFT operands
PRECISION_TOL = {"fp16": 2e-3, "bf16": 1.5e-2}


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("dtype", ["float32", "complex64"])
@pytest.mark.parametrize("shape", [(3, 2, 40, 9), (2, 1, 300, 300), (1, 1, 1000, 24)])
def test_tensor_core_forward_matches_direct_convolution_to_half_precision(
    conv, shape, dtype, precision
):
    B, H, L, Lk = shape
    u, k, D, pre, post = _problem(B, H, L, Lk, dtype, gates=True)
    nfft = conv.fft_size(L, Lk)
    assert conv.MAX_RADIX_LOG2 in conv.radix_plan(nfft, dtype)  # some stage uses the mma
    out = np.empty_like(u)
    conv.forward(u, conv.kernel_spectrum(k, nfft), nfft, Lk, (Lk - 1) // 2, D, pre, post, out,
                 precision=precision)
    want = _reference(u, k, (Lk - 1) // 2, D, pre, post)
    err = np.linalg.norm((out - want).ravel()) / np.linalg.norm(want.ravel())
    assert err < PRECISION_TOL[precision], err
    assert err > 1e-6  # the operands really were rounded to half precision


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_tensor_core_forward_in_three_passes(multipass, dtype, precision):
    conv = multipass
    u, k, D, pre, post = _problem(2, 2, 700, 300, dtype, gates=True)
    nfft = conv.fft_size(700, 300)
    assert conv._rows_pipeline(dtype, 2, 2, 700, nfft, 1).n1 > 1
    out = np.empty_like(u)
    conv.forward(u, conv.kernel_spectrum(k, nfft), nfft, 300, 0, D, pre, post, out,
                 precision=precision)
    want = _reference(u, k, 0, D, pre, post)
    err = np.linalg.norm((out - want).ravel()) / np.linalg.norm(want.ravel())
    assert err < PRECISION_TOL[precision], err


def _reference_grads(u, k, offset, D, pre, post, grad):
    """``(grad_u, grad_k, grad_D, grad_pregate, grad_postgate)`` in complex128 from the
    formulas of ``fftconv_vjp``'s Notes, with the ``L x L`` Toeplitz matrix of each channel
    (``T[t, s] = k[t + offset - s]``): ``z = T v + D u``, ``gz = grad conj(post)``,
    ``grad_v = T^H gz``; ``grad_k[j]`` sums ``gz[t] conj(v[s])`` over ``t + offset - s = j``."""
    B, H, L = u.shape
    Lk = k.shape[1]
    c = [None if a is None else a.astype(np.complex128) for a in (u, k, D, pre, post, grad)]
    u, k, D, pre, post, grad = c
    v = u * pre
    lag = np.arange(L)[:, None] + offset - np.arange(L)[None, :]
    inside = (lag >= 0) & (lag < Lk)
    gu, gpre, gpost = (np.empty((B, H, L), np.complex128) for _ in range(3))
    gk = np.zeros((H, Lk), np.complex128)
    gD = np.empty(H, np.complex128)
    for h in range(H):
        T = np.where(inside, k[h][np.clip(lag, 0, Lk - 1)], 0)
        z = v[:, h] @ T.T + D[h] * u[:, h]
        gz = grad[:, h] * post[:, h].conj()
        gpost[:, h] = grad[:, h] * z.conj()
        gv = gz @ T.conj()
        gu[:, h] = gv * pre[:, h].conj() + D[h].conj() * gz
        gpre[:, h] = gv * u[:, h].conj()
        gD[h] = (gz * u[:, h].conj()).sum()
        np.add.at(gk[h], lag[inside], np.einsum("bt,bs->ts", gz, v[:, h].conj())[inside])
    return gu, gk, gD, gpre, gpost


def _rel(got, want):
    return np.linalg.norm((got - want).ravel()) / np.linalg.norm(want.ravel())


def _tc_backward_errors(conv, shape, dtype, precision, offset_kind="same"):
    """Relative error of each gradient of ``backward(..., precision=)`` against float64."""
    B, H, L, Lk = shape
    u, k, D, pre, post = _problem(B, H, L, Lk, dtype, gates=True, key=4)
    grad = _data((B, H, L), dtype, "grad", 4)
    offset = (Lk - 1) // 2 if offset_kind == "same" else 0
    nfft = conv.fft_size(L, Lk)
    got = conv.backward(u, conv.kernel_spectrum(k, nfft), nfft, Lk, offset, D, pre, post, grad,
                        precision=precision)
    want = _reference_grads(u, k, offset, D, pre, post, grad)
    names = ("u", "k", "D", "pregate", "postgate")
    for name, g, arg in zip(names, got, (u, k, D, pre, post), strict=True):
        assert g.shape == arg.shape and g.dtype == arg.dtype, name
    return {name: _rel(g, w if np.dtype(dtype).kind == "c" else w.real)
            for name, g, w in zip(names, got, want, strict=True)}


def _check_tc_backward(conv, shape, dtype, precision, offset_kind="same"):
    errs = _tc_backward_errors(conv, shape, dtype, precision, offset_kind)
    for name, err in errs.items():
        if name == "D":  # a plain fp32 reduction: no transform, nothing rounded
            assert err < _tol(dtype), (name, err)
            continue
        assert err < PRECISION_TOL[precision], (name, err)
        assert err > 1e-6, (name, err)  # the stage operands really were rounded


def test_backward_reference_gradients_match_the_fp32_backward(conv):
    # the float64 reference of the tensor-core tests agrees with the dot-tested fp32 pipeline
    for dtype in ("float64", "complex128"):
        errs = _tc_backward_errors(conv, (3, 2, 40, 9), dtype, "highest")
        assert max(errs.values()) < 1e-12, errs


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("dtype", ["float32", "complex64"])
@pytest.mark.parametrize("shape,offset_kind", [((3, 2, 40, 9), "same"),
                                               ((2, 1, 300, 300), "causal"),
                                               ((1, 2, 100, 500), "same")])
def test_tensor_core_backward_matches_float64_gradients_to_half_precision(
    conv, shape, dtype, precision, offset_kind
):
    L, Lk = shape[2:]
    assert conv.MAX_RADIX_LOG2 in conv.radix_plan(conv.fft_size(L, Lk), dtype)
    _check_tc_backward(conv, shape, dtype, precision, offset_kind)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_tensor_core_backward_in_three_passes(multipass, dtype, precision):
    conv = multipass
    shape = (3, 2, 700, 300)
    nfft = conv.fft_size(700, 300)
    pipe = conv._rows_pipeline(dtype, 3, 2, 700, nfft, 1)
    assert pipe.n1 > 1 and not pipe.split and pipe.tc_stages > 0
    _check_tc_backward(conv, shape, dtype, precision)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_tensor_core_backward_of_complex_rows_in_two_halves(multipass, monkeypatch, precision):
    conv = multipass
    # nfft = 2 * N2 = 512 complex64 values: the one launch in two frequency halves
    monkeypatch.setattr(conv, "MAX_SINGLE_PASS", {8: 256, 16: 128})
    shape = (2, 2, 300, 200)
    nfft = conv.fft_size(300, 200)
    pipe = conv._rows_pipeline("complex64", 2, 2, 300, nfft, 1)
    assert pipe.split and pipe.tc_stages == 2
    _check_tc_backward(conv, shape, "complex64", precision)


def test_tensor_core_backward_sums_grad_k_over_batch_chunks(conv, monkeypatch):
    # each chunk's spectra carry the tensor-core stages' (1/4)^stages: undone once, after the sum
    monkeypatch.setattr(conv, "GRAD_K_BYTES", 2 * 2 * 2 * 64 * 8)
    _check_tc_backward(conv, (5, 2, 40, 20), "float32", "fp16")


def _tc_dot_test(conv, shape, dtype, precision):
    """``vdot(grad, out(w := dw) - out(w := 0)) == vdot(grad_w, dw)`` with both sides from
    the tensor-core pipelines: the backward is the adjoint of the forward to their rounding."""
    B, H, L, Lk = shape
    u, k, D, pre, post = _problem(B, H, L, Lk, dtype, gates=True, key=5)
    grad = _data((B, H, L), dtype, "grad", 5)
    offset = (Lk - 1) // 2
    nfft = conv.fft_size(L, Lk)

    def forward(u, k, D, pre, post):
        out = np.empty_like(u)
        return conv.forward(u, conv.kernel_spectrum(k, nfft), nfft, Lk, offset, D, pre, post,
                            out, precision=precision).astype(np.complex128)

    grads = conv.backward(u, conv.kernel_spectrum(k, nfft), nfft, Lk, offset, D, pre, post,
                          grad, precision=precision)
    base = {"u": u, "k": k, "D": D, "pre": pre, "post": post}
    scale = np.linalg.norm(grad) * np.linalg.norm(forward(u, k, D, pre, post))
    for name, g_w in zip(base, grads, strict=True):
        dw = _data(base[name].shape, dtype, "dw", name)
        outs = [forward(**{**base, name: w}) for w in (dw, np.zeros_like(dw))]
        lhs = np.vdot(grad.astype(np.complex128), outs[0] - outs[1])
        rhs = np.vdot(g_w.astype(np.complex128), dw)
        assert abs(lhs - rhs) <= PRECISION_TOL[precision] * max(scale, abs(lhs)), (name, lhs,
                                                                                   rhs)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_tensor_core_backward_is_the_adjoint_of_the_tensor_core_forward(conv, dtype, precision):
    _tc_dot_test(conv, (2, 2, 200, 57), dtype, precision)


@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_tensor_core_backward_is_the_adjoint_in_three_passes(multipass, dtype):
    _tc_dot_test(multipass, (2, 1, 400, 100), dtype, "bf16")


def test_half_precisions_are_refused_for_double_data_and_unknown_names(conv):
    u, k, *_ = _problem(1, 1, 8, 3, "float64", gates=False)
    spec = conv.kernel_spectrum(k, 16)
    with pytest.raises(ValueError, match="needs float32 or complex64 data, got float64"):
        conv.forward(u, spec, 16, 3, 0, None, None, None, np.empty_like(u), precision="bf16")
    with pytest.raises(ValueError, match="precision must be one of"):
        conv.forward(u, spec, 16, 3, 0, None, None, None, np.empty_like(u), precision="fp8")
    with pytest.raises(ValueError, match="needs float32 or complex64 data, got float64"):
        conv.backward(u, spec, 16, 3, 0, None, None, None, u, precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        conv.backward(u, spec, 16, 3, 0, None, None, None, u, precision="half")
    empty = np.empty((0, 1, 8))
    with pytest.raises(ValueError, match="needs float32 or complex64 data"):
        conv.backward(empty, spec, 16, 3, 0, None, None, None, empty, precision="fp16")


BAD = [
    (dict(nfft=8), ValueError, r"nfft must be a power of two >= L \+ Lk - 1 = 10, got 8"),
    (dict(nfft=24), ValueError, "nfft must be a power of two"),
    (dict(offset=3), ValueError, r"offset must be in \[0, Lk\) = \[0, 3\), got 3"),
    (dict(spec="short"), ValueError, r"spec must be \(2, 16\) complex64"),
    (dict(D="wrong"), ValueError, r"D must be C-contiguous \(2,\) float32"),
    (dict(pregate="wrong"), ValueError, r"pregate must be C-contiguous \(1, 2, 8\) float32"),
    (dict(out="wrong"), ValueError, r"out must be C-contiguous \(1, 2, 8\) float32"),
]


@pytest.mark.parametrize("change,exc,match", BAD)
def test_launcher_rejects_inconsistent_arguments(conv, change, exc, match):
    u, k, *_ = _problem(1, 2, 8, 3, "float32", gates=False)
    args = dict(u=u, spec=conv.kernel_spectrum(k, 16), nfft=16, Lk=3, offset=0, D=None,
                pregate=None, postgate=None, out=np.empty_like(u))
    for key, val in change.items():
        if val == "short":
            val = args["spec"][:, :8]
        elif val == "wrong":
            val = np.ones((5,), dtype=np.float64)
        args[key] = val
    with pytest.raises(exc, match=match):
        conv.forward(**args)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("centred", [False, True])
def test_complex_rows_at_twice_the_one_pass_size_take_one_launch(multipass, monkeypatch,
                                                                 dtype, centred):
    """nfft = 2 N2 for complex data: one launch in two frequency halves (the even half's
    inverse kept in a scratch), forward and backward, against the direct convolution."""
    conv = multipass
    launches = []
    real_launch = conv.launch
    monkeypatch.setattr(conv, "launch", lambda *a: (launches.append(a), real_launch(*a))[1])
    # nfft = 2 * MAX_SINGLE_PASS: 64 for complex64, 32 for complex128 (see `multipass`)
    B, H, L, Lk = (2, 3, 40, 25) if dtype == "complex64" else (2, 3, 20, 10)
    n2 = conv.MAX_SINGLE_PASS[np.dtype(dtype).itemsize]
    nfft = conv.fft_size(L, Lk)
    assert nfft == 2 * n2 and conv._rows_pipeline(dtype, B, H, L, nfft).split
    u, k, D, pre, post = _problem(B, H, L, Lk, dtype, gates=True)
    offset = (Lk - 1) // 2 if centred else 0
    spec = conv.kernel_spectrum(k, nfft)
    launches.clear()
    out = np.empty_like(u)
    conv.forward(u, spec, nfft, Lk, offset, D, pre, post, out)
    assert len(launches) == 1
    _close(out, _reference(u, k, offset, D, pre, post), dtype)
    _check_backward(conv, (B, H, L, Lk), dtype, "same" if centred else "causal", gates=True)
