"""The Monarch CUDA kernels compile (see test_gpu_compile.py) and run in the host emulation.

The host shim of ``tests/test_gpu_compile.py`` (one std::thread per CUDA thread, barriers for
``__syncthreads``, NaN-filled shared memory) runs ``monarch.cu`` through the real launchers of
``structlin.gpu.monarch`` on NumPy arrays: this checks the tile decoding, the ``(pre, n, post)``
view arithmetic, partial tiles and the chunked atomic weight gradient -- not speed.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_gpu_compile import (
    _EMU_TYPES,
    _SHARED_DECL,
    _SHIM,
    SOURCES,
    _compile,
    compile_emulator,
    ctypes_launcher,
)


def test_monarch_source_is_listed_and_compiles():
    assert "monarch" in SOURCES
    for arch in ("compute_80", "compute_90"):
        ptx, log = _compile.compile_ptx("monarch", arch=arch, name_expressions=SOURCES["monarch"])
        assert ".entry" in (ptx.decode() if isinstance(ptx, bytes) else ptx)
        assert "warning" not in log.lower(), log


def _emulator_source() -> str:
    src = _compile.load_source("monarch").replace("#pragma once", "")
    assert _SHARED_DECL in src
    src = src.replace(_SHARED_DECL, "#define sl_shared sl_shared_ptr")
    parts = [_SHIM, f"namespace emu_monarch {{\n{src}\n}}", 'extern "C" {']
    for t, code in _EMU_TYPES.items():
        tt = "emu_monarch::" + t if t.startswith("sl::") else t
        parts.append(f"""
void blockdiag_apply_{code}(long long nb, int nt, long long sm, void* x, void* w, void* y,
        long long batch, int pre, int post, int n_in, int n_out) {{
    emu_launch(nb, nt, sm, [=] {{ emu_monarch::blockdiag_apply<{tt}>(
        ({tt}*)x, ({tt}*)w, ({tt}*)y, batch, pre, post, n_in, n_out); }});
}}
void blockdiag_weight_grad_{code}(long long nb, int nt, long long sm, void* x, void* g,
        void* G, long long batch, int pre, int post, int n_in, int n_out, long long chunk) {{
    emu_launch(nb, nt, sm, [=] {{ emu_monarch::blockdiag_weight_grad<{tt}>(
        ({tt}*)x, ({tt}*)g, ({tt}*)G, batch, pre, post, n_in, n_out, chunk); }});
}}""")
    parts.append("}")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """``structlin.gpu.monarch`` with its launches running on the host emulator."""
    import types

    lib = compile_emulator(tmp_path_factory, "emu_monarch", _emulator_source())

    launch = ctypes_launcher(lib)

    from structlin.gpu import monarch

    fake_cupy = types.SimpleNamespace(empty=np.empty, zeros=np.zeros, ndarray=np.ndarray)
    mp = pytest.MonkeyPatch()
    mp.setattr(monarch, "cupy", fake_cupy)
    mp.setattr(monarch, "get_kernel", lambda name, exprs, expr: expr)
    mp.setattr(monarch, "launch", launch)
    mp.setattr(monarch, "GRAD_CHUNK", 40)  # several chunks, one of them partial
    yield monarch
    mp.undo()


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


def test_tensor_core_precision_is_refused_until_implemented(emulated):
    x = np.ones((2, 4), np.float32)
    with pytest.raises(NotImplementedError, match="tf32"):
        emulated.apply(x, [(np.ones((2, 2, 2), np.float32), 2, 1)], "tf32")
