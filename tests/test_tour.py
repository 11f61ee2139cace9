"""``python -m structlin`` runs every family and prints a row per operation, each with a
small error against its reference."""

from __future__ import annotations

import math

from structlin.__main__ import main, tour
from structlin._registry import families


def _rows(out: str) -> list[list[str]]:
    """The table's rows split into columns: the header fixes the columns' offsets."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("operation"))
    start = lines[header].index("err vs dense")
    return [line for line in lines[header + 2:] if line.strip()], start


def test_tour_has_every_family_with_rows():
    names = [name for name, _ in tour()]
    assert names == [fam.name for fam in families() if fam.tour is not None]
    assert all(fam.tour is not None for fam in families()), "a family without tour rows"


def test_tour_prints_every_operation_with_a_small_error(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    rows, col = _rows(out)
    assert len(rows) >= len(tour())
    errors = []
    for line in rows:
        # the error column is the 12 characters ending at the end of its header
        token = line[col - 1: col + len("err vs dense")].split()
        assert len(token) == 1, line
        token = token[0]
        if token == "n/a":
            continue
        err = float(token)  # "nan" parses too, and fails below
        errors.append(err)
        assert math.isfinite(err) and err < 1e-3, line
    assert errors, "no row printed an error"


def test_tour_error_column_rejects_large_errors_and_nan():
    import numpy as np

    from structlin.__main__ import _error
    from structlin._registry import Row

    row = Row("op", "n", lambda: None, "base", lambda: None)
    assert float(_error(row, np.ones(3), np.ones(3))) == 0
    assert float(_error(row, np.ones(3) * 3.3, np.ones(3))) > 1  # prints 2.3e+00
    assert math.isnan(float(_error(row, np.array([np.nan, 1.0]), np.ones(2))))
    assert _error(Row("op", "n", None, "b", None, comparable=False), np.ones(2), np.ones(3)) \
        == "n/a"
