"""The one counting rule of status and plot, over short and long ledgers."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from fermilink_state import RESULTS_HEADER, ResultRow, best_result, read_results
from fermilink_state.cli._plot import plot_ledger
from fermilink_state.cli._tally import ROW_KINDS, count_kinds, kind_of, tally_ledger


def _naive_kind(status: str, value: float | str) -> str:
    """The rule, written out independently of the library."""
    finite = isinstance(value, float) and not math.isnan(value) and not math.isinf(value)
    return status if finite and status in ("baseline", "accepted", "rejected") else "failed"


@pytest.mark.parametrize(
    ("status", "value"),
    [
        ("baseline", 1.0),
        ("accepted", 0.5),
        ("rejected", 2.0),
        ("rejected", math.nan),
        ("accepted", math.inf),
        ("crash", 1.0),
        ("timeout", "pending"),
        ("accepted", "n/a"),
    ],
)
def test_kind_of_follows_the_rule(status: str, value: float | str) -> None:
    assert kind_of(status, value) == _naive_kind(status, value)


def test_count_kinds_adds_up_to_the_rows() -> None:
    statuses = ["baseline", "accepted", "rejected", "crash", "rejected"]
    values: list[float | str] = [1.0, 0.5, math.nan, 2.0, "x"]
    counts = count_kinds(statuses, values)
    assert counts == Counter({"baseline": 1, "accepted": 1, "failed": 3})
    assert sum(counts.values()) == len(statuses)


def _long_ledger(path: Path, rows: int) -> None:
    lines = [RESULTS_HEADER]
    for i in range(rows):
        status = "baseline" if i == 0 else ("rejected", "accepted", "crash")[i % 3]
        if i % 501 == 0:
            value = "nan"
        elif i % 1009 == 0:
            value = "pending"
        else:
            value = f"{10.0 - (i % 977) / 100.0 + (i % 13):.12g}"
        lines.append(f"{i}\tc{i}\t{status}\tt\t{value}\tidea {i}\n")
    path.write_text("".join(lines), encoding="utf-8")


@pytest.mark.parametrize("rows", [7, 60_000])
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_status_and_plot_count_every_ledger_alike(
    tmp_path: Path, rows: int, direction: str
) -> None:
    path = tmp_path / "results.tsv"
    _long_ledger(path, rows)
    every = read_results(path)
    expected = Counter(_naive_kind(row.status, row.primary_metric_value) for row in every)
    tally, skipped = tally_ledger(path, direction=direction, tail=5)  # type: ignore[arg-type]
    data, plot_skipped = plot_ledger(path)
    assert (skipped, plot_skipped) == ([], [])
    assert {kind: tally.kinds[kind] for kind in ROW_KINDS} == {
        kind: expected[kind] for kind in ROW_KINDS
    }
    assert data.counts == tally.kinds
    assert tally.rows == data.total == len(every)
    assert tally.by_status == Counter(row.status for row in every)
    assert tally.last_iteration == max(row.iteration for row in every)
    assert list(tally.recent) == every[-5:]
    assert tally.incumbent == best_result(every, direction=direction)  # type: ignore[arg-type]


def test_a_tally_skips_and_reports_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    _long_ledger(path, 30_000)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("oops\n")
    tally, skipped = tally_ledger(path)
    assert tally.rows == 30_000
    assert len(skipped) == 1
    assert ":30002: skipped a malformed row" in skipped[0]


def test_an_incumbent_is_a_row() -> None:
    assert isinstance(best_result([ResultRow(0, "c", "baseline", "t", 1.0, "")]), ResultRow)
