"""Every FFT-based routine runs on the FFT engine (``structlin.fft``) for NumPy input.

Two checks: each routed routine, called with small NumPy arrays, calls ``structlin.fft``'s
transforms (patched with counting wrappers) and gives the dense answer; and no module of the
library except the engine's own computes with another FFT (``scipy.fft``, ``numpy.fft``,
``cupy.fft``): the transforms come from :func:`structlin._backend.fft_namespace`.
"""

from __future__ import annotations

import ast
import pathlib
from collections import Counter

import numpy as np
import pytest
import scipy.linalg

import structlin as sl
import structlin.fft
from structlin import gko, ldr, ssm_dplr, toeplitz, toeplitz_pcg
from structlin._backend import fft_fast_length, fft_namespace
from structlin.circulant import solve_circulant, solve_circulant_vjp

TRANSFORMS = ("fft", "ifft", "rfft", "irfft")


@pytest.fixture
def engine_calls(monkeypatch):
    """Counts of the calls of ``structlin.fft``'s transforms while the test runs."""
    calls: Counter = Counter()
    for name in TRANSFORMS:
        f = getattr(structlin.fft, name)

        def counted(*args, _f=f, _name=name, **kwargs):
            calls[_name] += 1
            return _f(*args, **kwargs)

        monkeypatch.setattr(structlin.fft, name, counted)
    return calls


def _rng():
    return np.random.default_rng(13)


def _toeplitz_system(n, k=2, dtype=np.float64):
    rng = _rng()
    c = rng.standard_normal(n).astype(dtype)
    r = rng.standard_normal(n).astype(dtype)
    c[0] = r[0] = 2.0 * n  # diagonally dominant: every solver converges
    return c, r, rng.standard_normal((n, k)).astype(dtype)


def _circulant_multiply():
    c, x = _rng().standard_normal(8), _rng().standard_normal((3, 8))
    return sl.circulant_multiply(c, x), x @ scipy.linalg.circulant(c).T


def _circulant_multiply_vjp():
    c, x, g = _rng().standard_normal((3, 8))
    return sl.circulant_multiply_vjp(c, x, g)[1], scipy.linalg.circulant(c).T @ g


def _toeplitz_multiply():
    c, r, _ = _toeplitz_system(5)
    x = _rng().standard_normal((2, 5)) + 1j
    return sl.toeplitz_multiply(c, r, x), x @ scipy.linalg.toeplitz(c, r).T


def _toeplitz_multiply_vjp():
    c, r, _ = _toeplitz_system(5)
    g = _rng().standard_normal(5)
    return sl.toeplitz_multiply_vjp(c, r, np.ones(5), g)[2], scipy.linalg.toeplitz(c, r).T @ g


def _solve_circulant():
    c = np.array([4.0, 1.0, 0.5, 0.25, 0.0, 1.0])
    b = _rng().standard_normal(6)
    return solve_circulant(c, b), np.linalg.solve(scipy.linalg.circulant(c), b)


def _solve_circulant_vjp():
    c = np.array([4.0, 1.0, 0.5, 0.25])
    b, g = _rng().standard_normal((2, 4))
    return (solve_circulant_vjp(c, b, g)[1],
            np.linalg.solve(scipy.linalg.circulant(c).T, g))


def _matmul_toeplitz():
    c, r, x = _toeplitz_system(7)
    return toeplitz.matmul_toeplitz((c, r), x), scipy.linalg.toeplitz(c, r) @ x


def _matmul_toeplitz_vjp():
    c, r, g = _toeplitz_system(7)
    return (toeplitz.matmul_toeplitz_vjp((c, r), np.ones_like(g), g)[2],
            scipy.linalg.toeplitz(c, r).T @ g)


def _solve_toeplitz_gohberg_semencul(monkeypatch):
    # the Gohberg-Semencul inverse (FFT products) is "auto"'s choice for many right-hand
    # sides of a large order; lowered thresholds pick it for a small system
    monkeypatch.setattr(toeplitz, "AUTO_GS_MIN_ORDER", 1)
    monkeypatch.setattr(toeplitz, "AUTO_GS_MIN_RHS", 1)
    monkeypatch.setattr(toeplitz, "AUTO_GS_MIN_WORK", 1)
    c, r, b = _toeplitz_system(9, 3)
    return toeplitz.solve_toeplitz((c, r), b), np.linalg.solve(scipy.linalg.toeplitz(c, r), b)


def _solve_toeplitz_vjp():
    c, r, b = _toeplitz_system(6)
    g = np.ones_like(b)
    gb = toeplitz.solve_toeplitz_vjp((c, r), b, g)[2]
    return gb, np.linalg.solve(scipy.linalg.toeplitz(c, r).T, g)


def _pcg_solve_toeplitz():
    c, r, b = _toeplitz_system(10)
    x, converged, _ = toeplitz_pcg.pcg_solve_toeplitz(c[None], r[None], b[None], tol=1e-12)
    assert converged.all()
    return x[0], np.linalg.solve(scipy.linalg.toeplitz(c, r), b)


def _gko_solve_toeplitz():
    c, r, b = _toeplitz_system(6)
    x, _, _ = gko.gko_solve_toeplitz(c[None], r[None], b[None])
    return x[0], np.linalg.solve(scipy.linalg.toeplitz(c, r), b)


def _ldr_multiply():
    rng = _rng()
    G, H = rng.standard_normal((2, 2, 6))
    x = rng.standard_normal(6)
    return ldr.ldr_multiply(G, H, x, "toeplitz"), ldr.ldr_to_dense(G, H, "toeplitz") @ x


def _ldr_multiply_subdiagonal():
    rng = _rng()
    G, H = rng.standard_normal((2, 1, 40))
    a, b = 0.5 * rng.standard_normal((2, 39))
    x = rng.standard_normal(40)
    ops = {"subdiag_A": a, "subdiag_B": b}
    return (ldr.ldr_multiply(G, H, x, "subdiagonal", **ops),
            ldr.ldr_to_dense(G, H, "subdiagonal", **ops) @ x)


def _ldr_solve():
    c, r, _ = _toeplitz_system(6)
    M = scipy.linalg.toeplitz(c, r)
    G, H = ldr.ldr_compress(M, "toeplitz")
    b = _rng().standard_normal(6)
    return ldr.ldr_solve(G, H, b, "toeplitz"), np.linalg.solve(M, b)


def _dplr_args():
    rng = _rng()
    lam = -rng.uniform(0.1, 1.0, (2, 3)) + 1j * rng.standard_normal((2, 3))
    P, B, C = (rng.standard_normal((3, 2, 3)) + 1j * rng.standard_normal((3, 2, 3))) * 0.5
    return lam, P, B, C, rng.uniform(0.05, 0.2, 2)


def _dplr_reference(lam, P, B, C, dt, L):
    """The kernel ``K[h, l] = 2 Re C Abar^l Bbar`` from the dense bilinear discretization."""
    K = np.empty((lam.shape[0], L))
    for h in range(lam.shape[0]):
        A = np.diag(lam[h]) - np.outer(P[h], P[h].conj())
        M = np.linalg.inv(np.eye(3) - dt[h] / 2 * A)
        Abar, v = M @ (np.eye(3) + dt[h] / 2 * A), dt[h] * M @ B[h]
        for l in range(L):
            K[h, l] = 2 * (C[h] @ v).real
            v = Abar @ v
    return K


def _ssm_kernel_dplr():
    args = _dplr_args()
    return ssm_dplr.ssm_kernel_dplr(*args, 16), _dplr_reference(*args, 16)


def _ssm_kernel_dplr_vjp():
    args = _dplr_args()
    grads = ssm_dplr.ssm_kernel_dplr_vjp(*args, 16, np.ones((2, 16)))
    gdt = grads[-1]
    h = 1e-6
    lam, P, B, C, dt = args
    fd = [(_dplr_reference(lam, P, B, C, dt + h * e, 16).sum()
           - _dplr_reference(lam, P, B, C, dt - h * e, 16).sum()) / (2 * h) for e in np.eye(2)]
    return gdt, np.array(fd)


ROUTINES = {
    "circulant_multiply": _circulant_multiply,
    "circulant_multiply_vjp": _circulant_multiply_vjp,
    "toeplitz_multiply": _toeplitz_multiply,
    "toeplitz_multiply_vjp": _toeplitz_multiply_vjp,
    "solve_circulant": _solve_circulant,
    "solve_circulant_vjp": _solve_circulant_vjp,
    "matmul_toeplitz": _matmul_toeplitz,
    "matmul_toeplitz_vjp": _matmul_toeplitz_vjp,
    "solve_toeplitz_vjp": _solve_toeplitz_vjp,
    "pcg_solve_toeplitz": _pcg_solve_toeplitz,
    "gko_solve_toeplitz": _gko_solve_toeplitz,
    "ldr_multiply toeplitz": _ldr_multiply,
    "ldr_multiply subdiagonal": _ldr_multiply_subdiagonal,
    "ldr_solve toeplitz": _ldr_solve,
    "ssm_kernel_dplr": _ssm_kernel_dplr,
    "ssm_kernel_dplr_vjp": _ssm_kernel_dplr_vjp,
}


@pytest.mark.parametrize("name", sorted(ROUTINES))
def test_routine_on_numpy_input_calls_the_engine_and_equals_dense(name, engine_calls):
    got, want = ROUTINES[name]()
    assert sum(engine_calls.values()) > 0, f"{name} made no call of structlin.fft"
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_gohberg_semencul_solve_calls_the_engine(engine_calls, monkeypatch):
    got, want = _solve_toeplitz_gohberg_semencul(monkeypatch)
    assert sum(engine_calls.values()) > 0
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


def test_real_data_take_the_real_transforms(engine_calls):
    # the half spectra of real rows: rfft/irfft, never a complex fft of real data
    _circulant_multiply()
    _matmul_toeplitz()
    assert engine_calls["rfft"] > 0 and engine_calls["irfft"] > 0
    assert engine_calls["fft"] == engine_calls["ifft"] == 0


def test_fft_namespace_is_the_engine_for_numpy():
    assert fft_namespace(np) is structlin.fft


@pytest.mark.parametrize("n,real,want", [(0, False, 1), (1, True, 1), (2, True, 2), (7, False, 8),
                                         (13, False, 15), (13, True, 16), (1025, False, 1080)])
def test_fast_length_is_the_least_5_smooth_length_even_for_real(n, real, want):
    assert fft_fast_length(np, n, real) == want


def test_cupy_namespace_drops_the_workers_keyword():
    from structlin._backend import _CupyFFT

    class FakeModule:
        __name__ = "fake_fft"

        @staticmethod
        def rfft(a, n=None, axis=-1):
            return ("rfft", a, n, axis)

    ns = _CupyFFT(FakeModule())
    assert ns.rfft(1, 4, axis=0, workers=-1) == ("rfft", 1, 4, 0)


# --------------------------------------------------------------------------- source scan

ROOT = pathlib.Path(sl.__file__).parent

#: modules allowed another FFT, each with its reason
ALLOWED = {
    "fft.py": "the engine's public module: cuFFT for CuPy input",
    "_backend.py": "fft_namespace: cuFFT (cupyx.scipy.fft) for CuPy input",
    "_ssm_reference.py": "the papers' reference code, the benchmarks' baseline",
}
#: directories allowed another FFT: the CUDA launchers (cuFFT is the FFT of CuPy input) and
#: the family declarations, whose tour rows time scipy.fft as the baseline
ALLOWED_DIRS = ("gpu", "_families")

_FFT_MODULES = {"scipy.fft", "numpy.fft", "cupy.fft", "cupyx.scipy.fft", "scipy.fftpack"}
_ARRAY_NAMES = {"np", "numpy", "xp", "cp", "cupy", "scipy", "jnp"}


def _other_fft_uses(tree: ast.AST) -> list[str]:
    """Imports of an FFT module and ``<array namespace>.fft`` attributes in code (docstrings
    and comments are not code)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names
                      if any(a.name == m or a.name.startswith(m + ".") for m in _FFT_MODULES)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            mod = node.module
            if mod in _FFT_MODULES or any(mod + "." + a.name in _FFT_MODULES
                                          for a in node.names):
                found.append(f"from {mod} import ...")
        elif (isinstance(node, ast.Attribute) and node.attr in ("fft", "fftpack")
              and isinstance(node.value, ast.Name) and node.value.id in _ARRAY_NAMES):
            found.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
    return found


def test_the_scan_finds_each_kind_of_fft_use():
    src = ("import scipy.fft\nfrom numpy import fft\nfrom cupyx.scipy.fft import rfft\n"
           "y = xp.fft.rfft(x)\n'''np.fft.fft in a docstring'''\n")
    assert len(_other_fft_uses(ast.parse(src))) == 4


def test_no_library_module_computes_with_another_fft():
    offenders = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.split("/")[0] in ALLOWED_DIRS or rel in ALLOWED:
            continue
        uses = _other_fft_uses(ast.parse(path.read_text(encoding="utf-8")))
        if uses:
            offenders[rel] = uses
    assert not offenders, (
        f"{offenders}: take the transforms from structlin._backend.fft_namespace(xp) "
        "(structlin.fft for NumPy, cuFFT for CuPy)"
    )


@pytest.mark.parametrize("rel", sorted(ALLOWED))
def test_each_allowed_module_still_needs_its_exception(rel):
    path = ROOT / rel
    assert path.exists() and _other_fft_uses(ast.parse(path.read_text(encoding="utf-8"))), (
        f"{rel} no longer uses another FFT: remove it from ALLOWED"
    )


# --------------------------------------------------------------------------- the convolution


def test_fftconv_runs_on_the_engine_fused_for_real_rows_batched_for_complex(monkeypatch):
    """Real rows go through the fused kernel (one tile per row around the engine's four-step
    transforms); complex rows through the engine's batched transforms; both equal the direct
    sum."""
    from structlin._cpu import conv as cpu_conv
    from structlin._cpu import fft as engine

    fused, batched = [], []
    real_fused = cpu_conv._fused_forward
    real_rows = engine.rows

    def spy_fused(*a):
        fused.append(a[0].shape)
        return real_fused(*a)

    def spy_rows(*a, **kw):
        batched.append(a[0].shape)
        return real_rows(*a, **kw)

    monkeypatch.setattr(cpu_conv, "_fused_forward", spy_fused)
    monkeypatch.setattr(engine, "rows", spy_rows)
    rng = np.random.default_rng(5)
    for dt in (np.float32, np.complex128):
        u = rng.standard_normal((2, 3, 300)).astype(dt)
        k = rng.standard_normal((3, 200)).astype(dt)
        y = sl.fftconv(u, k)
        ref = np.stack([[np.convolve(u[b, h], k[h])[:300] for h in range(3)] for b in range(2)])
        np.testing.assert_allclose(y, ref, rtol=0, atol=1e-4 * np.abs(ref).max())
    assert fused == [(6, 300)]
    assert batched and all(shape[-1] <= 512 for shape in batched)
