"""The family contract: the registry, the kernel contract of both backends, and that the rest
of the library is derived from them (no CuPy or GPU needed)."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest

import structlin
from structlin import _backend, _registry
from structlin._registry import families

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "structlin"
KERNEL_MODULES = [(fam, k) for fam in families() for k in fam.kernels]


def _gpu_signatures(module: str) -> dict[str, tuple[str, ...]]:
    """Top-level functions of ``structlin/gpu/<module>.py`` and their parameter names, read
    from the source (importing it would need CuPy)."""
    tree = ast.parse((PKG / "gpu" / f"{module}.py").read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            a = node.args
            out[node.name] = tuple(p.arg for p in a.posonlyargs + a.args + a.kwonlyargs)
    return out


def _cpu_signature(fn) -> tuple[str, ...]:
    return tuple(inspect.signature(fn).parameters)


def test_registry_lists_every_family_once_with_its_files():
    names = [fam.name for fam in families()]
    assert names == list(_registry.FAMILY_NAMES) and len(set(names)) == len(names)
    for fam in families():
        assert fam.modules, fam.name
        assert (ROOT / fam.tutorial).is_file(), (fam.name, fam.tutorial)
        assert fam.bench and (ROOT / "benchmarks" / f"{fam.bench}.py").is_file(), fam.name
        assert "highest" in fam.precisions
        assert set(fam.precisions) <= set(structlin._validate.PRECISIONS), fam.name
        for module in fam.modules:
            assert importlib.import_module(module).__all__, module


@pytest.mark.parametrize(("fam", "kernel"), KERNEL_MODULES,
                         ids=[k.module for _, k in KERNEL_MODULES])
def test_cpu_and_gpu_kernel_modules_implement_the_contract(fam, kernel):
    cpu = importlib.import_module(f"structlin._cpu.{kernel.module}")
    gpu = _gpu_signatures(kernel.module)
    assert set(kernel.cpu_only) <= set(kernel.functions)
    for name, params in kernel.functions.items():
        assert callable(getattr(cpu, name, None)), f"_cpu.{kernel.module} lacks {name}"
        assert _cpu_signature(getattr(cpu, name)) == params, (
            f"_cpu.{kernel.module}.{name}{_cpu_signature(getattr(cpu, name))} != contract "
            f"{params}")
        if name in kernel.cpu_only:
            assert name not in gpu, (
                f"gpu.{kernel.module}.{name} exists: remove it from cpu_only in the registry")
            continue
        assert name in gpu, f"gpu.{kernel.module} lacks {name}"
        assert gpu[name] == params, f"gpu.{kernel.module}.{name}{gpu[name]} != contract {params}"


@pytest.mark.parametrize(("fam", "kernel"), KERNEL_MODULES,
                         ids=[k.module for _, k in KERNEL_MODULES])
def test_precision_is_taken_by_both_sides_or_neither(fam, kernel):
    takes = [n for n, p in kernel.functions.items() if "precision" in p]
    if len(fam.precisions) > 1:
        assert takes, f"{fam.name} has tensor-core precisions but no kernel takes precision"
    for name in takes:
        cpu = importlib.import_module(f"structlin._cpu.{kernel.module}")
        default = inspect.signature(getattr(cpu, name)).parameters["precision"].default
        assert default == "highest", (kernel.module, name, default)


def test_kernels_expose_only_the_contract():
    ks = _backend.kernels(np, "hadamard")
    assert ks.fwht is importlib.import_module("structlin._cpu.hadamard").fwht
    with pytest.raises(AttributeError, match="not in the kernel contract"):
        ks.fwht_pass  # noqa: B018
    cpu_only = [(k.module, n) for _, k in KERNEL_MODULES for n in k.cpu_only]
    if cpu_only:
        module, name = cpu_only[0]
        fake_cupy = object()
        gpu_set = _backend.KernelSet(object(), _registry.kernel_contract(module), on_gpu=True)
        with pytest.raises(TypeError, match="no GPU kernel"):
            getattr(gpu_set, name)
        del fake_cupy


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize("module", sorted({m for f in families() for m in f.modules}))
def test_family_modules_reach_kernels_only_through_the_contract(module):
    path = PKG / (module.split(".", 1)[1].replace(".", "/") + ".py")
    bad = {m for m in _imports(path)
           if m.startswith(("structlin._cpu", "structlin.gpu")) or m in ("structlin._cpu",)}
    assert not bad, f"{module} imports kernel modules directly: {sorted(bad)}"


def test_public_names_are_derived_from_the_registry():
    expected = set()
    for fam in families():
        for module in fam.modules:
            if fam.flatten:
                expected.update(importlib.import_module(module).__all__)
            else:  # a namespace like scipy.fft: reached as structlin.<module>, not flattened
                name = module.rsplit(".", 1)[1]
                assert getattr(structlin, name) is importlib.import_module(module)
    assert set(structlin.__all__) == expected
    for name in expected:
        assert getattr(structlin, name) is not None


def test_interop_table_tour_and_benchmarks_derive_from_the_registry():
    from structlin.__main__ import tour
    from structlin.interop._ops import OPS

    assert OPS == _registry.operations()
    assert [n for n, _ in tour()] == [f.name for f in families() if f.tour]
    for op in OPS.values():
        assert len(op.arrays) == len(op.differentiable), op.name
        fn = getattr(structlin, op.name)
        params = inspect.signature(fn).parameters
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        for s in op.static:
            # ldr_multiply takes its operator parameters (f, f_A, f_B) as **operator_params
            assert s in params or var_kw, (op.name, s)
        if "precision" in params:
            assert "precision" in op.static, f"{op.name}: precision is not passed through"
    for test in ("test_benchmarks.py",):
        text = (ROOT / "tests" / test).read_text()
        assert "families()" in text, f"{test} should take the families from the registry"
