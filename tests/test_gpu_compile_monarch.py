"""The Monarch CUDA kernels compile (see test_gpu_compile.py) and run in the host emulation.

The host emulator of :mod:`tests.cuda_emulator` (one std::thread per CUDA thread, barriers for
``__syncthreads``, NaN-filled shared memory) runs ``monarch.cu`` through the real launchers of
``structlin.gpu.monarch`` on NumPy arrays: this checks the tile decoding, the ``(pre, n, post)``
view arithmetic, partial tiles and the chunked atomic weight gradient -- not speed.

The tensor-core kernels (``precision="tf32"|"bf16"``) run there too: the source's host branch
rounds operands as ``cvt.rna.tf32.f32`` / ``cvt.rn.bf16.f32`` do and emulates ``mma.sync`` from
the PTX ISA's fragment layouts, so the fragment index arithmetic and the complex decomposition
are checked against a NumPy reference that rounds the operands the same way. What is not
checked: the real instructions' behaviour (accumulation order and rounding inside the tensor
core), warp synchronisation, and speed.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests import cuda_emulator as emu
from tests.test_monarch import round_operands

TC_PTX = {
    "tf32": ("cvt.rna.tf32.f32", "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32"),
    "bf16": ("cvt.rn.bf16.f32", "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"),
}


@pytest.mark.parametrize("arch", ["compute_80", "compute_90"])
def test_monarch_source_is_listed_and_compiles_with_its_tensor_core_kernels(arch):
    compile_module, sources = emu.nvrtc_sources()
    assert "monarch" in sources
    exprs = sources["monarch"]
    for template in ("blockdiag_apply_tc", "blockdiag_weight_grad_tc"):
        for t in ("float", "sl::complex<float>"):
            for code in (1, 2):
                assert f"{template}<{t}, {code}>" in exprs
    ptx, log = compile_module.compile_ptx("monarch", arch=arch, name_expressions=exprs)
    ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
    assert ptx.count(".entry") == len(exprs) == 16
    assert "warning" not in log.lower(), log
    for instructions in TC_PTX.values():
        for ins in instructions:
            assert ins in ptx, ins


_APPLY = "void* x, void* w, void* y, long long batch, int pre, int post, int n_in, int n_out"
_GRAD = ("void* x, void* g, void* G, long long batch, int pre, int post, int n_in, int n_out, "
         "long long chunk")


def _emulator_source() -> str:
    entries = []
    for t, code in emu.TYPE_CODES.items():
        tt = emu.qualified("emu_monarch", t)
        entries.append(emu.entry_point(
            f"blockdiag_apply_{code}", _APPLY,
            f"emu_monarch::blockdiag_apply<{tt}>(({tt}*)x, ({tt}*)w, ({tt}*)y, batch, pre, "
            "post, n_in, n_out)"))
        entries.append(emu.entry_point(
            f"blockdiag_weight_grad_{code}", _GRAD,
            f"emu_monarch::blockdiag_weight_grad<{tt}>(({tt}*)x, ({tt}*)g, ({tt}*)G, batch, "
            "pre, post, n_in, n_out, chunk)"))
    for t, code in (("float", "f32"), ("sl::complex<float>", "c64")):
        tt = emu.qualified("emu_monarch", t)
        for p in (1, 2):
            entries.append(emu.entry_point(
                f"blockdiag_apply_tc_p{p}_{code}", _APPLY,
                f"emu_monarch::blockdiag_apply_tc<{tt}, {p}>(({tt}*)x, ({tt}*)w, ({tt}*)y, "
                "batch, pre, post, n_in, n_out)"))
            entries.append(emu.entry_point(
                f"blockdiag_weight_grad_tc_p{p}_{code}", _GRAD,
                f"emu_monarch::blockdiag_weight_grad_tc<{tt}, {p}>(({tt}*)x, ({tt}*)g, "
                f"({tt}*)G, batch, pre, post, n_in, n_out, chunk)"))
    return emu.emulator_source(emu.kernel_namespace("monarch", "emu_monarch"), entries=entries)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """``structlin.gpu.monarch`` with its launches running on the host emulator."""
    lib = emu.compile_library(tmp_path_factory, "emu_monarch", _emulator_source())

    plain = emu.ctypes_launcher(lib)

    def launch(kernel, blocks, threads, args, smem):
        # "blockdiag_apply_tc<float, 1>" is the emulator's blockdiag_apply_tc_p1_f32
        m = re.fullmatch(r"(\w+)<(.+), (\d)>", kernel)
        plain(f"{m[1]}_p{m[3]}<{m[2]}>" if m else kernel, blocks, threads, args, smem)

    # several gradient chunks, one of them partial
    with emu.emulated_launcher("monarch", launch, GRAD_CHUNK=40) as monarch:
        yield monarch


def _data(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _close(got, want, dtype):
    tol = 1e-5 if dtype in ("float32", "complex64") else 1e-12
    err = np.linalg.norm((got - want).ravel()) / max(np.linalg.norm(want.ravel()), 1e-300)
    assert err < tol, f"relative error {err:.2e}"


def _ref_factor(x, w, pre, post):
    b = x.shape[0]
    v = x.reshape(b, pre, w.shape[2], post)
    wb = w.reshape(pre, post, w.shape[1], w.shape[2])
    return np.einsum("PQoi,bPiQ->bPoQ", wb, v).reshape(b, -1)


# (batch, (k, q, p), (l, s, r)): square, rectangular, tiles that do not divide the sizes
CASES = [(3, (4, 4, 4), (4, 4, 4)), (70, (2, 35, 33), (5, 3, 14)), (33, (3, 6, 40), (9, 2, 2))]


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("batch,s1,s2", CASES)
def test_monarch_kernels_in_host_emulation_match_einsum(emulated, batch, s1, s2, dtype):
    rng = np.random.default_rng(batch)
    w1, w2 = _data(rng, s1, dtype), _data(rng, s2, dtype)
    k, q, p = s1
    l, s, r = s2
    x = _data(rng, (batch, k * p), dtype)
    chain = [(w1, k, 1), (w2, 1, l)]
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    mid = _ref_factor(x.astype(wide), w1, k, 1)
    want = _ref_factor(mid, w2, 1, l)
    _close(emulated.apply(x, chain), want, dtype)

    g = _data(rng, (batch, l * s), dtype)
    G2 = emulated.weight_grad(mid.astype(dtype), g, 1, l, s)
    g4 = g.astype(wide).reshape(batch, s, l)
    m4 = mid.reshape(batch, r, l)
    _close(G2, np.einsum("bsl,brl->lsr", g4, np.conj(m4)), dtype)
    G1 = emulated.weight_grad(x, mid.astype(dtype), k, 1, q)
    _close(G1, np.einsum("bkq,bkp->kqp", mid.reshape(batch, k, q),
                         np.conj(x.astype(wide).reshape(batch, k, p))), dtype)


# ------------------------------------------------------------------ tensor cores

#: relative error of a product against the exact one (operands rounded: 2**-11, 2**-8)
TC_TOL = {"tf32": 2e-3, "bf16": 1.5e-2}
#: against the reference that rounds the operands the same way: only fp32 accumulation differs
TC_REF_TOL = 1e-5


def _rel(got, want):
    return np.linalg.norm((got - want).ravel()) / np.linalg.norm(want.ravel())


def _wide(a):
    return a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)


@pytest.mark.parametrize("dtype", ["float32", "complex64"])
@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_tensor_core_operand_rounding_is_bit_exact(emulated, precision, dtype):
    """Identity blocks pass the rounded x through: ties of both kinds, both signs."""
    vals = np.array([1 + 2.0**-11, -(1 + 2.0**-11), 1 + 3 * 2.0**-11, 1 + 2.0**-8,
                     1 + 3 * 2.0**-8, -(1 + 3 * 2.0**-8), 3.14159265, -2.7182818, 1e-3, 1e-30,
                     0.0, 7.0, 1 - 2.0**-24, 65504.0, 1e30, -1.5], np.float32)
    x = np.stack([vals, vals[::-1]]).astype(dtype)
    if x.dtype.kind == "c":
        x.imag = np.roll(vals, 3)
    eye = np.eye(8, dtype=dtype)[None].repeat(2, 0)
    y = emulated.apply(x, [(eye, 2, 1)], precision)
    want = round_operands(x, precision)
    np.testing.assert_array_equal(y.view(np.float32), want.view(np.float32))


@pytest.mark.parametrize("dtype", ["float32", "complex64"])
@pytest.mark.parametrize("precision", ["tf32", "bf16"])
@pytest.mark.parametrize("batch,s1,s2", CASES)
def test_tensor_core_kernels_match_the_rounded_reference(emulated, batch, s1, s2, precision,
                                                         dtype):
    rng = np.random.default_rng(batch + 1)
    w1, w2 = _data(rng, s1, dtype), _data(rng, s2, dtype)
    k, q, p = s1
    l, s, r = s2
    x = _data(rng, (batch, k * p), dtype)
    g = _data(rng, (batch, l * s), dtype)

    def rounded(a):
        return _wide(round_operands(a, precision))

    # each factor on its own input, so that the reference rounds exactly the kernel's operands
    u = emulated.apply(x, [(w1, k, 1)], precision)
    _close_tc(u, _ref_factor(rounded(x), rounded(w1), k, 1), _ref_factor(_wide(x), w1, k, 1),
              precision)
    y = emulated.apply(u, [(w2, 1, l)], precision)
    _close_tc(y, _ref_factor(rounded(u), rounded(w2), 1, l), _ref_factor(_wide(u), w2, 1, l),
              precision)
    np.testing.assert_array_equal(emulated.apply(x, [(w1, k, 1), (w2, 1, l)], precision), y)

    G2 = emulated.weight_grad(u, g, 1, l, s, precision)
    g4, u4 = g.reshape(batch, s, l), u.reshape(batch, r, l)
    _close_tc(G2, np.einsum("bsl,brl->lsr", rounded(g4), np.conj(rounded(u4))),
              np.einsum("bsl,brl->lsr", _wide(g4), np.conj(_wide(u4))), precision)
    G1 = emulated.weight_grad(x, u, k, 1, q, precision)
    u3, x3 = u.reshape(batch, k, q), x.reshape(batch, k, p)
    _close_tc(G1, np.einsum("bkq,bkp->kqp", rounded(u3), np.conj(rounded(x3))),
              np.einsum("bkq,bkp->kqp", _wide(u3), np.conj(_wide(x3))), precision)


def _close_tc(got, rounded_ref, exact, precision):
    assert got.dtype in (np.float32, np.complex64)
    assert _rel(got, rounded_ref) < TC_REF_TOL, _rel(got, rounded_ref)
    err = _rel(got, exact)
    assert err < TC_TOL[precision], err
    assert err > TC_TOL[precision] / 1000, err  # the operands really were rounded


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_monarch_vjp_threads_precision_to_every_product(emulated, monkeypatch, precision):
    """structlin.monarch's VJP on the emulated kernels: close to exact, not the fp32 result."""
    import structlin.monarch as mon

    monkeypatch.setattr(mon, "kernels", lambda xp, family: emulated)
    rng = np.random.default_rng(5)
    w1, w2 = _data(rng, (3, 6, 40), "complex64"), _data(rng, (9, 2, 2), "complex64")
    x, g = _data(rng, (33, 120), "complex64"), _data(rng, (33, 18), "complex64")
    chain = mon._monarch_chain(w1, w2)
    got = mon._chain_vjp(np, chain, x, g, np.dtype(np.complex64), precision)
    full = mon._chain_vjp(np, chain, x, g, np.dtype(np.complex64))
    exact = mon._chain_vjp(np, mon._monarch_chain(_wide(w1), _wide(w2)), _wide(x), _wide(g),
                           np.dtype(np.complex128))
    for a, b, c in zip([*got[0], got[1]], [*full[0], full[1]], [*exact[0], exact[1]],
                       strict=True):
        assert _rel(a, c) < 2 * TC_TOL[precision]
        assert _rel(a, b) > TC_TOL[precision] / 1000


def test_tensor_core_precisions_need_single_precision_data(emulated):
    x = np.ones((2, 4))
    with pytest.raises(ValueError, match=r"precision='tf32' \(tensor cores\) needs float32 or "
                                         r"complex64 data, got float64"):
        emulated.apply(x, [(np.ones((2, 2, 2)), 2, 1)], "tf32")
    with pytest.raises(ValueError, match="precision must be one of"):
        emulated.weight_grad(x.astype(np.float32), x.astype(np.float32), 2, 1, 2, "fp16")
