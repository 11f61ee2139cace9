"""The Sphinx documentation builds with warnings treated as errors (``docs`` extra).

The HTML goes to a temporary directory. The API stub pages are written by ``docs/conf.py``
under ``docs/generated/`` (generated, not committed).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
REQUIRED = ("sphinx", "numpydoc", "myst_parser", "matplotlib")
MISSING = [name for name in REQUIRED if importlib.util.find_spec(name) is None]


@pytest.mark.skipif(
    bool(MISSING),
    reason=f"building the docs needs the docs extra (pip install -e '.[docs]'); "
    f"missing: {', '.join(MISSING)}",
)
def test_sphinx_build_has_no_warnings(tmp_path):
    cmd = [
        sys.executable, "-m", "sphinx",
        "-W", "--keep-going",       # every warning is an error, and all of them are reported
        "-E",                       # fresh environment: no state from an earlier build
        "-b", "html",
        "-d", str(tmp_path / "doctrees"),
        str(DOCS), str(tmp_path / "html"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"sphinx-build failed ({proc.returncode}):\n{proc.stderr[-6000:]}\n{proc.stdout[-3000:]}"
    )
    html = tmp_path / "html"
    assert (html / "index.html").is_file()
    assert (html / "tutorials" / "butterfly.html").is_file()

    import structlin

    api = (html / "api.html").read_text(encoding="utf-8")
    for name in structlin.__all__:
        assert (html / "generated" / f"structlin.{name}.html").is_file(), name
        assert f"structlin.{name}.html" in api, f"{name} is missing from the API table"
