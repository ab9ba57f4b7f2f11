"""render_svg: valid SVG, one mark per row, failures kept, the incumbent line."""

from __future__ import annotations

import math
import random
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from fermilink_state import ResultRow, append_results, read_results
from fermilink_state._results import LedgerBlock
from fermilink_state.cli._plot import (
    DETAILED_ROWS,
    LEFT,
    PLOT_BOTTOM,
    RIGHT,
    PlotData,
    _improvements,
    plot_ledger,
    render_svg,
)
from fermilink_state.cli._tally import ROW_KINDS, row_kind

SVG = "{http://www.w3.org/2000/svg}"


def _campaign(count: int, seed: int = 1) -> list[ResultRow]:
    """A plausible campaign: a baseline, then accepted / rejected / failed rows."""
    rng = random.Random(seed)
    rows = [ResultRow(0, "base", "baseline", "runtime_s", 1.0, "baseline")]
    best = 1.0
    for iteration in range(1, count):
        roll = rng.random()
        if roll < 0.06:
            rows.append(ResultRow(iteration, "c", "crash", "runtime_s", math.nan, "boom"))
        elif roll < 0.08:
            rows.append(ResultRow(iteration, "c", "timeout", "runtime_s", "pending", "slow"))
        else:
            value = best * rng.uniform(0.97, 1.08)
            accepted = value < best * 0.995
            best = value if accepted else best
            status = "accepted" if accepted else "rejected"
            rows.append(ResultRow(iteration, "c", status, "runtime_s", value, "idea"))
    return rows


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == f"{SVG}svg"
    return root


def _marks(root: ET.Element) -> list[ET.Element]:
    return [el for el in root.iter() if el.get("class", "").split()[:1] == ["mark"]]


def _kind(mark: ET.Element) -> str:
    return mark.get("class", "").split()[1]


def _mark_y(mark: ET.Element) -> float:
    if mark.get("cy") is not None:
        return float(mark.get("cy", "nan"))
    found = re.match(r"M\s*(-?[\d.]+)\s+(-?[\d.]+)", mark.get("d", ""))
    assert found is not None
    return float(found.group(2))


@pytest.mark.parametrize("count", [1, 60, DETAILED_ROWS])
def test_the_svg_parses_and_has_one_mark_per_row(count: int) -> None:
    rows = _campaign(count)
    marks = _marks(_parse(render_svg(rows)))
    assert len(marks) == count


def test_each_kind_of_row_has_its_own_mark() -> None:
    rows = _campaign(60)
    kinds = Counter(_kind(mark) for mark in _marks(_parse(render_svg(rows))))
    expected = Counter(
        "failed"
        if not isinstance(row.primary_metric_value, float)
        or math.isnan(row.primary_metric_value)
        or row.status not in ("baseline", "accepted", "rejected")
        else row.status
        for row in rows
    )
    assert kinds == expected
    assert set(kinds) == {"baseline", "accepted", "rejected", "failed"}


def test_nan_and_text_values_are_drawn_along_the_bottom() -> None:
    rows = [
        ResultRow(0, "c", "baseline", "m", 2.0, ""),
        ResultRow(1, "c", "crash", "m", math.nan, ""),
        ResultRow(2, "c", "rejected", "m", "n/a", ""),
        ResultRow(3, "c", "accepted", "m", 1.0, ""),
    ]
    marks = _marks(_parse(render_svg(rows)))
    failed = [mark for mark in marks if _kind(mark) == "failed"]
    assert len(failed) == 2
    assert all(_mark_y(mark) > PLOT_BOTTOM for mark in failed)
    assert all(_mark_y(mark) <= PLOT_BOTTOM for mark in marks if _kind(mark) != "failed")


def test_infinite_values_are_failures_not_axis_breakers() -> None:
    rows = [
        ResultRow(0, "c", "baseline", "m", 2.0, ""),
        ResultRow(1, "c", "rejected", "m", math.inf, ""),
    ]
    marks = _marks(_parse(render_svg(rows)))
    assert [_kind(mark) for mark in marks] == ["failed", "baseline"]


def test_smaller_values_sit_lower_on_the_chart() -> None:
    rows = [
        ResultRow(0, "c", "baseline", "m", 2.0, ""),
        ResultRow(1, "c", "accepted", "m", 1.0, ""),
    ]
    by_kind = {_kind(mark): _mark_y(mark) for mark in _marks(_parse(render_svg(rows)))}
    # SVG y grows downwards, so the smaller value has the larger y.
    assert by_kind["accepted"] > by_kind["baseline"]


def test_the_axes_are_labelled_with_the_metric_name() -> None:
    root = _parse(render_svg(_campaign(10)))
    texts = [el.text for el in root.iter(f"{SVG}text")]
    assert "runtime_s" in texts
    assert "iteration" in texts


def test_the_incumbent_is_a_step_line_through_each_improvement() -> None:
    rows = [
        ResultRow(0, "c", "baseline", "m", 3.0, ""),
        ResultRow(1, "c", "rejected", "m", 2.5, ""),
        ResultRow(2, "c", "accepted", "m", 2.0, ""),
        ResultRow(3, "c", "accepted", "m", 1.0, ""),
    ]
    root = _parse(render_svg(rows))
    lines = [el for el in root.iter(f"{SVG}path") if el.get("class") == "incumbent"]
    step = [line for line in lines if line.get("d", "").count("V") > 0]
    assert len(step) == 1
    # One vertical step per improvement after the baseline.
    assert step[0].get("d", "").count("V") == 2


def test_the_incumbent_line_follows_the_direction() -> None:
    rows = [
        ResultRow(0, "c", "baseline", "m", 1.0, ""),
        ResultRow(1, "c", "accepted", "m", 2.0, ""),
    ]

    def steps(direction: str) -> int:
        root = _parse(render_svg(rows, direction=direction))  # type: ignore[arg-type]
        paths = [
            el.get("d", "") for el in root.iter(f"{SVG}path") if el.get("class") == "incumbent"
        ]
        return sum(d.count("V") for d in paths)

    assert (steps("minimize"), steps("maximize")) == (0, 1)


def test_markup_in_descriptions_and_names_is_escaped() -> None:
    rows = [ResultRow(0, "c", "baseline", "a<b>&c", 1.0, "</svg><script>x</script>")]
    root = _parse(render_svg(rows, title="<title>"))
    assert root.find(f"{SVG}script") is None
    assert len(_marks(root)) == 1


def test_no_rows_is_a_valid_chart_that_says_so() -> None:
    root = _parse(render_svg([]))
    assert _marks(root) == []
    assert "no results recorded yet" in [el.text for el in root.iter(f"{SVG}text")]


def test_rows_without_any_number_still_get_marks() -> None:
    rows = [
        ResultRow(0, "c", "baseline", "m", math.nan, ""),
        ResultRow(1, "c", "crash", "m", "x", ""),
    ]
    marks = _marks(_parse(render_svg(rows)))
    assert [_kind(mark) for mark in marks] == ["failed", "failed"]


def test_every_mark_has_a_tooltip_naming_its_row() -> None:
    rows = _campaign(5)
    tips = [mark.find(f"{SVG}title") for mark in _marks(_parse(render_svg(rows)))]
    assert all(tip is not None and (tip.text or "").startswith("iteration ") for tip in tips)


# -- a long ledger: drawn per pixel column ------------------------------------------


def _spans(root: ET.Element) -> dict[str, ET.Element]:
    return {
        el.get("class", "").split()[1]: el
        for el in root.iter(f"{SVG}path")
        if el.get("class", "").startswith("span ")
    }


def _incumbent_points(root: ET.Element) -> list[float]:
    """The y coordinates the incumbent line visits."""
    (line,) = [
        el
        for el in root.iter(f"{SVG}path")
        if el.get("class") == "incumbent" and "H" in el.get("d", "")
    ]
    d = line.get("d", "")
    first = re.match(r"M(-?[\d.]+) (-?[\d.]+)", d)
    assert first is not None
    return [float(first.group(2)), *map(float, re.findall(r"V(-?[\d.]+)", d))]


def test_a_long_ledger_is_drawn_per_pixel_column_with_exact_counts() -> None:
    rows = _campaign(DETAILED_ROWS * 10)
    svg = render_svg(rows)
    root = _parse(svg)
    assert _marks(root) == []
    spans = _spans(root)
    assert set(spans) == {"baseline", "accepted", "rejected", "failed"}
    counts = Counter(row_kind(row) for row in rows)
    subtitle = "".join(root.find(f"{SVG}desc").itertext())  # type: ignore[union-attr]
    for kind in ROW_KINDS:
        assert f"{counts[kind]:,} {kind}" in subtitle
    # At most two points a column per kind (plus the band): bounded by the width.
    for span in spans.values():
        assert span.get("d", "").count("M") <= 2 * (RIGHT - LEFT)


def test_the_spans_reach_each_columns_extremes() -> None:
    rows = [ResultRow(0, "c", "baseline", "m", 5.0, "")]
    rows += [
        ResultRow(i, "c", "rejected", "m", 10.0 + (i % 7) + (100.0 if i == 4321 else 0.0), "")
        for i in range(1, DETAILED_ROWS * 3)
    ]
    root = _parse(render_svg(rows))
    d = _spans(root)["rejected"].get("d", "")
    tops = [float(y) for y in re.findall(r"M[\d.]+ ([\d.]+)V", d)]
    # The one outlier (110, among values 10 to 16) is kept: its column reaches
    # far above every other one, though it is one row of 6,000.
    first, second = sorted(tops)[:2]
    assert second - first > (PLOT_BOTTOM - 92) / 2


def test_the_incumbent_line_is_the_same_drawn_in_detail_or_per_column() -> None:
    rows = _campaign(DETAILED_ROWS)
    detailed = _incumbent_points(_parse(render_svg(rows)))
    rows += [
        ResultRow(i, "c", "rejected", "runtime_s", 1.0, "")
        for i in range(DETAILED_ROWS, DETAILED_ROWS + 2)
    ]
    decimated = _incumbent_points(_parse(render_svg(rows)))
    # Same start and end; steps within one pixel column merge into one, so the
    # line has at most one step per column.
    assert (decimated[0], decimated[-1]) == pytest.approx((detailed[0], detailed[-1]), abs=2.0)
    assert len(decimated) <= RIGHT - LEFT + 1


def test_a_million_rows_make_a_chart_under_a_megabyte() -> None:
    best = 1.0
    rows = []
    for i in range(200_000):
        value = 1.0 + (i * 7919 % 1000) / 997.0
        status = "accepted" if value < best else "rejected"
        best = min(best, value)
        rows.append(ResultRow(i, "c", status, "m", value, "d"))
    assert len(render_svg(rows).encode("utf-8")) < 200_000


# -- the ledger read a block at a time ------------------------------------------------


def _naive_improvements(values: list[float], direction: str) -> list[int]:
    found: list[int] = []
    best = math.nan
    for index, value in enumerate(values):
        if not found or (value < best if direction == "minimize" else value > best):
            found.append(index)
            best = value
    return found


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
@pytest.mark.parametrize("count", [1, 1023, 1024, 1025, 5000])
@pytest.mark.parametrize("trend", ["random", "improving", "worsening", "flat"])
def test_the_incumbent_steps_are_every_improvement(direction: str, count: int, trend: str) -> None:
    rng = random.Random(count)
    shapes = {
        "random": lambda i: rng.uniform(0, 10),
        "improving": lambda i: float(-i if direction == "minimize" else i),
        "worsening": lambda i: float(i if direction == "minimize" else -i),
        "flat": lambda i: 2.0,
    }
    values = [shapes[trend](i) for i in range(count)]
    found = list(_improvements(values, direction))  # type: ignore[arg-type]
    assert found == _naive_improvements(values, direction)


def test_blocks_each_in_order_but_not_after_one_another_are_sorted() -> None:
    rows = _campaign(DETAILED_ROWS * 3)
    later, earlier = rows[DETAILED_ROWS:], rows[:DETAILED_ROWS]
    data = PlotData()
    for part in (later, earlier):
        data.add(LedgerBlock(*zip(*part, strict=True)))
    for direction in ("minimize", "maximize"):
        assert render_svg(data, direction=direction) == render_svg(
            later + earlier, direction=direction
        )


@pytest.mark.parametrize("order", ["in order", "shuffled", "halves swapped"])
def test_a_ledger_read_a_block_at_a_time_is_drawn_as_its_rows(tmp_path: Path, order: str) -> None:
    # Three read blocks and more: kinds, ranges and the order of the points
    # are gathered block by block, and must come out as from the rows at once
    # (also when each block is in order but one block starts before the last ended).
    rows = _campaign(70_000, seed=7)
    if order == "shuffled":
        rng = random.Random(3)
        rows = [row._replace(iteration=row.iteration + rng.randint(-40, 40)) for row in rows]
    elif order == "halves swapped":
        rows = rows[35_000:] + rows[:35_000]
    path = tmp_path / "results.tsv"
    append_results(path, rows)
    assert path.stat().st_size > 3 * (1 << 20)
    data, skipped = plot_ledger(path)
    assert skipped == []
    for direction in ("minimize", "maximize"):
        from_rows = render_svg(read_results(path), direction=direction)
        assert render_svg(data, direction=direction) == from_rows
