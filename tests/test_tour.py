"""``python -m structlin`` runs every family and prints a row per operation."""

from __future__ import annotations

from structlin.__main__ import TOUR, main


def test_tour_prints_every_operation(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "butterfly_multiply float32" in out and "fwht float32" in out
    rows = [line for line in out.splitlines() if line.rstrip().endswith(")") and "x" in line]
    assert len(rows) >= len(TOUR)
    # every error column that is a number is small
    for line in out.splitlines():
        for tok in line.split():
            if "e-" in tok and tok[0].isdigit():
                assert float(tok) < 1e-3, line
