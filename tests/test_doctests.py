"""Run the examples of every docstring in the package, and require them on the public API.

One test per module under ``structlin/`` (found on disk without importing, so a module that
fails to import fails its own test). A module that needs an optional dependency which is not
installed (CuPy, PyTorch, JAX, Dask ...) is skipped with the name of what is missing; the
examples themselves must run on the CPU with NumPy only.

Examples are compared with ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``, plus ``NUMBER``: a
float in the expected output matches any float equal to it to the precision written, so
``0.333`` matches ``0.3333333333333333`` (the same rule as pytest's ``NUMBER`` option).
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import itertools
import pkgutil
import re
from pathlib import Path

import pytest

import structlin

PACKAGE_DIR = Path(structlin.__file__).resolve().parent
# importing __main__ would run the tour
NOT_IMPORTED = {"structlin.__main__"}


def _module_names() -> list[str]:
    names = ["structlin"]

    def walk(path: Path, prefix: str) -> None:
        for info in pkgutil.iter_modules([str(path)]):
            name = f"{prefix}.{info.name}"
            if name in NOT_IMPORTED:
                continue
            names.append(name)
            if info.ispkg:
                walk(path / info.name, name)

    walk(PACKAGE_DIR, "structlin")
    return sorted(names)


MODULES = _module_names()

NUMBER = doctest.register_optionflag("NUMBER")
OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | NUMBER

_FLOAT = re.compile(
    r"(?<![\w.])[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w.])"
    r"|(?<![\w.])[+-]?\d+[eE][+-]?\d+(?![\w.])"
)


class NumberChecker(doctest.OutputChecker):
    """OutputChecker with NUMBER: floats in ``want`` match to the precision they are written."""

    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        if super().check_output(want, got, optionflags):
            return True
        if not optionflags & NUMBER:
            return False
        return super().check_output(self._align_numbers(want, got), got, optionflags)

    @staticmethod
    def _align_numbers(want: str, got: str) -> str:
        """Replace each float of ``want`` by its counterpart in ``got`` when they agree."""
        wants = list(_FLOAT.finditer(want))
        gots = list(_FLOAT.finditer(got))
        if len(wants) != len(gots):
            return want
        pieces, last = [], 0
        for w, g in zip(wants, gots, strict=True):
            text = w.group()
            mantissa = re.split("[eE]", text)[0]
            decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
            exponent = int(re.split("[eE]", text)[1]) if re.search("[eE]", text) else 0
            tolerance = 0.5 * 10.0 ** (exponent - decimals)
            if abs(float(text) - float(g.group())) <= tolerance * (1 + 1e-9):
                text = g.group()
            pieces.append(want[last:w.start()] + text)
            last = w.end()
        pieces.append(want[last:])
        return "".join(pieces)


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing.split(".")[0] == "structlin":
            raise
        pytest.skip(f"{name} needs {missing!r}, which is not installed (an optional extra)")


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    module = _import(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(checker=NumberChecker(), optionflags=OPTIONFLAGS)
    failures = []
    for test in finder.find(module, module_name):
        if not test.examples:
            continue
        runner.run(test, out=failures.append, clear_globs=True)
    report = "".join(failures)
    assert runner.failures == 0, f"{runner.failures} failing example(s) in {module_name}:\n{report}"


def _sections(doc: str) -> set[str]:
    """numpydoc section titles: a line followed by a line of dashes as long as it."""
    lines = doc.splitlines()
    return {
        title.strip()
        for title, underline in itertools.pairwise(lines)
        if title.strip() and re.fullmatch(r"-{3,}", underline.strip())
        and len(underline.strip()) == len(title.strip())
    }


@pytest.mark.parametrize("name", sorted(structlin.__all__))
def test_public_name_is_documented_with_examples(name):
    obj = getattr(structlin, name)
    doc = inspect.getdoc(obj)
    assert doc, f"structlin.{name} has no docstring"
    sections = _sections(doc)
    for required in ("Parameters", "Examples"):
        assert required in sections, (
            f"structlin.{name}'s docstring has no {required!r} section (has {sorted(sections)})"
        )
    examples = re.split(r"^Examples\n-{8}$", doc, flags=re.MULTILINE)[-1]
    assert ">>>" in examples, f"structlin.{name}'s Examples section has no >>> example"


def test_number_option_compares_to_written_precision():
    check = NumberChecker().check_output
    flags = OPTIONFLAGS
    assert check("0.333\n", "0.3333333333333333\n", flags)
    assert check("[1.0, 2.5e-03]\n", "[0.99999999, 0.0025000001]\n", flags)
    assert not check("0.334\n", "0.3333333333333333\n", flags)
    assert not check("0.333\n", "0.3333333333333333\n", doctest.ELLIPSIS)
