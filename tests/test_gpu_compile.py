"""Every CUDA source compiles with NVRTC for each target architecture (no GPU needed).

The kernels also *run* without a GPU, in the host emulator of :mod:`tests.cuda_emulator`:
``tests/test_gpu_compile_<family>.py`` drive each family's launchers through it.
"""

from __future__ import annotations

import pytest

from tests.cuda_emulator import nvrtc_sources

ARCHS = ("compute_80", "compute_90")

_compile, SOURCES = nvrtc_sources(module_level=True)


def test_every_source_has_name_expressions():
    assert SOURCES, "no .cu files found in structlin/gpu"
    for name, exprs in SOURCES.items():
        assert exprs, f"{name}.cu: its launcher lists no NAME_EXPRESSIONS"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_source_compiles_to_ptx_without_warnings(name, arch):
    ptx, log = _compile.compile_ptx(name, arch=arch, name_expressions=SOURCES[name])
    assert ".entry" in (ptx.decode() if isinstance(ptx, bytes) else ptx)
    assert "warning" not in log.lower(), log


def test_compile_error_carries_the_nvrtc_log(tmp_path, monkeypatch):
    bad = tmp_path / "broken.cu"
    bad.write_text("__global__ void k(float* x) { x[0] = undefined_name; }\n")
    monkeypatch.setattr(_compile, "_DIR", tmp_path)
    with pytest.raises(_compile.CompileError, match="undefined_name"):
        _compile.compile_ptx("broken", name_expressions=("k",))


def test_type_name_rejects_other_dtypes():
    import numpy as np

    assert _compile.type_name(np.complex64) == "sl::complex<float>"
    with pytest.raises(TypeError, match="float16"):
        _compile.type_name(np.float16)
