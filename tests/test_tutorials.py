"""Execute the documentation's code: every ```python block of every tutorial, in order.

Each page runs in one fresh namespace, in a temporary working directory (figures saved to
``img/...`` land there, not in the repository), with matplotlib's Agg backend. The tutorials
check their own claims with ``assert``, so a page whose text has drifted from the library
fails here.

The figures shown in the rendered docs are committed under ``docs/tutorials/img/``;
regenerate them after changing a tutorial with::

    python tests/test_tutorials.py --write-figures
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
TUTORIALS = DOCS / "tutorials"
TUTORIAL_PAGES = sorted(p for p in TUTORIALS.glob("*.md") if p.name != "index.md")
# pages outside tutorials/ whose examples must run too
OTHER_PAGES = sorted(DOCS.glob("*.md"))

# a fenced block: opening ``` or ~~~ (three or more), an info string, the body, the same fence
_FENCE = re.compile(
    r"^(?P<indent>[ ]{0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n"
    r"(?P<body>.*?)"
    r"^(?P=indent)(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """The ```python blocks of a MyST page, in order, as (first line number, source)."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for m in _FENCE.finditer(text):
        language = m.group("info").strip().split(" ")[0].lower()
        if language in ("python", "py", "python3"):
            line = text.count("\n", 0, m.start("body")) + 1
            blocks.append((line, m.group("body")))
    return blocks


def run_page(page: Path) -> dict:
    """Execute the page's python blocks in one namespace in the current directory."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    namespace: dict = {"__name__": f"tutorial_{page.stem}"}
    for line, source in python_blocks(page):
        # pad with newlines so that tracebacks point at the line in the .md file
        code = compile("\n" * (line - 1) + source, str(page), "exec")
        exec(code, namespace)
    import matplotlib.pyplot as plt

    plt.close("all")
    return namespace


_REQUIRES = re.compile(r"^<!-- requires: (?P<modules>[\w., ]+) -->$", re.MULTILINE)


def required_modules(page: Path) -> list[str]:
    """The optional modules a page declares in a ``<!-- requires: torch, sklearn -->`` line
    (the page is skipped where one is missing)."""
    m = _REQUIRES.search(page.read_text(encoding="utf-8"))
    return [s.strip() for s in m.group("modules").split(",")] if m else []


def _ids(pages: list[Path]) -> list[str]:
    return [p.relative_to(DOCS).as_posix() for p in pages]


def test_there_are_tutorials():
    assert TUTORIAL_PAGES, f"no tutorial pages found in {TUTORIALS}"


@pytest.mark.parametrize("page", TUTORIAL_PAGES, ids=_ids(TUTORIAL_PAGES))
def test_tutorial_has_python_code(page):
    assert python_blocks(page), f"{page.name} has no ```python block"


@pytest.mark.parametrize("page", TUTORIAL_PAGES, ids=_ids(TUTORIAL_PAGES))
def test_tutorial_runs(page, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="the tutorials draw figures (test extra)")
    for module in required_modules(page):
        pytest.importorskip(module, reason=f"{page.name} needs {module}")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "img").mkdir()
    run_page(page)


@pytest.mark.parametrize("page", TUTORIAL_PAGES, ids=_ids(TUTORIAL_PAGES))
def test_tutorial_figures_are_committed(page):
    """Every image a tutorial shows exists under docs/tutorials/ (else the docs build warns)."""
    text = page.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
    missing = [im for im in images if not (page.parent / im).is_file()]
    assert not missing, (
        f"{page.name} shows {missing}, which are not committed; run "
        "`python tests/test_tutorials.py --write-figures`"
    )


def test_required_modules_are_read():
    page = TUTORIALS / "training.md"
    assert required_modules(page) == ["torch", "sklearn"]


@pytest.mark.parametrize("page", OTHER_PAGES, ids=_ids(OTHER_PAGES))
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_page(page)


def write_figures() -> None:
    """Run every tutorial inside docs/tutorials/ so that its figures replace the committed ones."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    cwd = Path.cwd()
    try:
        os.chdir(TUTORIALS)
        for page in TUTORIAL_PAGES:
            print(f"running {page.relative_to(DOCS)}")
            run_page(page)
    finally:
        os.chdir(cwd)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-figures"]:
        sys.exit(f"usage: python {sys.argv[0]} --write-figures")
    write_figures()
