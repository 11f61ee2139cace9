"""Sphinx configuration for the structlin documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (needs the ``docs`` extra).

The API reference is generated from ``structlin.__all__``: ``api.rst`` holds the marker
comment ``.. public-api-autosummary``, which :func:`_fill_api_page` replaces with an
``autosummary`` table of every public name, and :func:`_write_api_stubs` writes one page per
name under ``generated/`` (stale pages are removed). A function added to ``__all__`` therefore
appears in the reference without editing any file here.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
# the checkout's package, whether or not it is installed
sys.path.insert(0, str(DOCS.parent))

import structlin

project = "structlin"
author = "structlin developers"
copyright = "structlin developers"
release = structlin.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters section states the types
numpydoc_show_class_members = False

myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

if importlib.util.find_spec("pydata_sphinx_theme") is not None:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {"navigation_with_keys": False}
else:
    html_theme = "alabaster"
html_title = f"structlin {release}"

# --- API reference generated from structlin.__all__ ---------------------------------------

API_DOC = "api"
API_MARKER = ".. public-api-autosummary"
STUB_DIR = "generated"


def _public_names() -> list[str]:
    return sorted(structlin.__all__)


def _namespaces() -> list[str]:
    """Modules of families that are not flattened into ``structlin`` (``structlin.fft``, a
    namespace like ``scipy.fft``): each gets its own table after the top-level one."""
    from structlin._registry import families

    return [m for fam in families() if not fam.flatten for m in fam.modules]


def _table(module: str, names: list[str]) -> str:
    items = "\n".join(f"   {name}" for name in names)
    return (
        f".. currentmodule:: {module}\n\n"
        ".. autosummary::\n"
        f"   :toctree: {STUB_DIR}\n"
        "   :nosignatures:\n\n"
        f"{items}\n"
    )


def _autosummary_block() -> str:
    block = _table("structlin", _public_names())
    for module in _namespaces():
        mod = importlib.import_module(module)
        title = f"``{module}``"
        summary = (mod.__doc__ or "").strip().splitlines()[0]
        block += (f"\n{title}\n{'-' * len(title)}\n\n{summary} Reached as ``{module}`` "
                  "(not re-exported at the top level).\n\n" + _table(module, sorted(mod.__all__)))
    return block


def _stub(name: str, module: str = "structlin") -> str:
    obj = getattr(importlib.import_module(module), name)
    directive = (
        "autoclass" if inspect.isclass(obj)
        else "autofunction" if callable(obj)
        else "autodata"
    )
    title = f"{module}.{name}"
    return (
        f"{title}\n{'=' * len(title)}\n\n"
        f".. currentmodule:: {module}\n\n.. {directive}:: {name}\n"
    )


def _write_api_stubs(app) -> None:
    """One page per public name; rewrite only what changed so incremental builds stay fast."""
    out = Path(app.srcdir) / STUB_DIR
    out.mkdir(exist_ok=True)
    wanted = {f"structlin.{name}.rst": _stub(name) for name in _public_names()}
    for module in _namespaces():
        for name in importlib.import_module(module).__all__:
            wanted[f"{module}.{name}.rst"] = _stub(name, module)
    for path in out.glob("structlin.*.rst"):
        if path.name not in wanted:
            path.unlink()
    for filename, text in wanted.items():
        path = out / filename
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def _fill_api_page(app, docname: str, source: list[str]) -> None:
    if docname == API_DOC:
        if API_MARKER not in source[0]:
            raise RuntimeError(f"{API_DOC}.rst lost its marker line {API_MARKER!r}")
        source[0] = source[0].replace(API_MARKER, _autosummary_block())


def _always_reread_api_page(app, env, added, changed, removed) -> list[str]:
    # the table depends on structlin.__all__, not on api.rst's text
    return [API_DOC]


def setup(app):
    # before autosummary's own builder-inited handler (priority 500) looks for stub pages
    app.connect("builder-inited", _write_api_stubs, priority=400)
    app.connect("source-read", _fill_api_page)
    app.connect("env-get-outdated", _always_reread_api_page)
    return {"parallel_read_safe": True}
