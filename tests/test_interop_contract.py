"""The wrappers in structlin.interop cover the op table and pass its keywords through.

Checked from the sources (``ast``), so that it runs where PyTorch and JAX are not installed:
every operation of the table (derived from the family registry) has a PyTorch and a JAX wrapper
whose parameters include the operation's array arguments and every keyword of its ``static``
(``precision`` among them), and which passes each of those keywords on to ``_apply``. The Dask
wrappers and the SciPy operators take ``precision`` wherever the function they wrap does.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import structlin
from structlin.interop._ops import OPS
from tests.interop_cases import PRECISION_CASES, precision_ops

INTEROP = Path(__file__).resolve().parent.parent / "structlin" / "interop"
FRAMEWORKS = ("torch", "jax")
#: the structlin function behind each SciPy operator
SCIPY_OPERATORS = {
    "butterfly_operator": "butterfly_multiply",
    "butterfly_inverse_operator": "butterfly_multiply",
    "monarch_operator": "monarch_multiply",
    "pixelfly_operator": "pixelfly_multiply",
    "fftconv_operator": "fftconv",
    "kaleidoscope_operator": "kaleidoscope_multiply",
    "toeplitz_operator": "matmul_toeplitz",
    "hankel_operator": "matmul_hankel",
    "cauchy_operator": "matmul_cauchy",
    "ldr_operator": "ldr_multiply",
    "fwht_operator": "fwht",
    "dct_operator": "dct",
    "dst_operator": "dst",
    "circulant_operator": "circulant_multiply",
    "xd_operator": "xd_multiply",
}


def _source(module: str) -> Path:
    package = INTEROP / module / "__init__.py"
    return package if package.exists() else INTEROP / f"{module}.py"


def _functions(module: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(_source(module).read_text())
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _all(module: str) -> list[str]:
    tree = ast.parse(_source(module).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__"
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"structlin/interop/{module}.py has no __all__")


def _params(fn: ast.FunctionDef) -> list[str]:
    a = fn.args
    return [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]


def _apply_keywords(fn: ast.FunctionDef) -> dict[str, set[str]]:
    """Keywords of the ``_apply(...)`` call in ``fn``, each with the names its value reads."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_apply":
            return {k.arg: {n.id for n in ast.walk(k.value) if isinstance(n, ast.Name)}
                    for k in node.keywords}
    raise AssertionError(f"{fn.name} does not call _apply")


def test_every_precision_operation_has_a_sample_case():
    ops = precision_ops()
    assert ops >= {"monarch_multiply", "fftconv"}
    assert set(PRECISION_CASES) == ops, (
        "tests/interop_cases.py: add a PrecisionCase for each operation whose function takes "
        f"precision; missing {sorted(ops - set(PRECISION_CASES))}, "
        f"extra {sorted(set(PRECISION_CASES) - ops)}")
    for name in ops:
        assert "precision" in OPS[name].static, f"{name}: precision is not in the op's static"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_framework_wrappers_cover_the_op_table(framework):
    functions = _functions(framework)
    exported = _all(framework)
    for name in OPS:
        assert name in functions and name in exported, f"interop.{framework} lacks {name}"


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", sorted(OPS))
def test_framework_wrapper_takes_and_passes_every_static_keyword(framework, name):
    op = OPS[name]
    fn = _functions(framework)[name]
    params = _params(fn)
    missing = [a for a in (*op.arrays, *op.static) if a not in params]
    assert not missing, f"interop.{framework}.{name}{tuple(params)} lacks {missing}"
    passed = _apply_keywords(fn)
    for s in op.static:
        assert s in passed and s in passed[s], (
            f"interop.{framework}.{name} does not pass {s}={s} to _apply (got {passed})")


@pytest.mark.parametrize("name", sorted(precision_ops()))
def test_framework_wrappers_take_precision_with_the_functions_default(name):
    default = inspect.signature(getattr(structlin, name)).parameters["precision"].default
    for framework in FRAMEWORKS:
        fn = _functions(framework)[name]
        kwonly = [p.arg for p in fn.args.kwonlyargs]
        assert "precision" in kwonly, f"interop.{framework}.{name}: precision is not keyword-only"
        value = fn.args.kw_defaults[kwonly.index("precision")]
        assert ast.literal_eval(value) == default, (framework, name)


def test_dask_wrappers_take_precision_where_the_function_does():
    pytest.importorskip("dask.array")
    from structlin.interop import dask as sd

    for name in sd.__all__:
        fn = getattr(structlin, name, None)
        if fn is None:  # map_batch
            continue
        takes = "precision" in inspect.signature(fn).parameters
        wrapper = inspect.signature(getattr(sd, name)).parameters
        assert ("precision" in wrapper) == takes, name
        if takes:
            assert wrapper["precision"].default == inspect.signature(fn).parameters[
                "precision"].default
    assert precision_ops() <= set(sd.__all__)


def test_scipy_operators_take_precision_where_the_product_does():
    from structlin.interop import scipy as ss

    assert set(SCIPY_OPERATORS) == set(ss.__all__)
    for operator, function in SCIPY_OPERATORS.items():
        takes = "precision" in inspect.signature(getattr(structlin, function)).parameters
        params = inspect.signature(getattr(ss, operator)).parameters
        assert ("precision" in params) == takes, operator
        if takes:
            assert params["precision"].kind is inspect.Parameter.KEYWORD_ONLY, operator
