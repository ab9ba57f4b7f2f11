"""Batch row formatting: one "%" format for usual rows, the plain rules for the rest.

``append_results`` formats its rows in one pass, with a shortcut for the usual
row (int, printable str cells, float metric). Every row, usual or not, must
come out as the cell rules say: tabs and line breaks in the plain cells become
spaces, numbers use ``%.12g``, the description's whitespace runs fold to one
space, and ``%`` in a value is text.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from fermilink_state._results import _rows_text

# Every character str.splitlines() breaks a line on, found by asking it (not
# copied from the writer's own list), plus the tab. All of them lie in the BMP.
LINE_BREAKING = frozenset(
    char for char in map(chr, range(0x10000)) if len(f"a{char}b".splitlines()) > 1
) | {"\t"}

_TEXT = st.text(
    alphabet=st.sampled_from("ab é%s\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029 d"), max_size=8
)
_VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.booleans(),
    _TEXT,
)
_ROW = st.tuples(
    st.one_of(st.integers(-5, 10**12), st.booleans()),
    st.one_of(_TEXT, st.integers()),
    _TEXT,
    _TEXT,
    _VALUE,
    st.one_of(_TEXT, st.none(), st.integers()),
)


def _cell(value: object) -> str:
    # A commit / status / metric-name cell: each line-breaking character, one space.
    return "".join(" " if char in LINE_BREAKING else char for char in str(value))


def _one_row(row: tuple[object, ...]) -> str:
    # The cell rules, spelled out with plain string operations.
    iteration, commit, status, name, value, description = row
    metric = f"{float(value):.12g}" if isinstance(value, int | float) else _cell(value)
    folded = "" if description is None else " ".join(str(description).split())
    number = int(iteration)  # type: ignore[call-overload]
    return (
        "\t".join([str(number), _cell(commit), _cell(status), _cell(name), metric, folded]) + "\n"
    )


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(rows=st.lists(_ROW, max_size=6))
def test_property_a_batch_is_its_rows_formatted_one_by_one(
    rows: list[tuple[object, object, object, object, object, object]],
) -> None:
    assert _rows_text(rows) == "".join(_one_row(row) for row in rows)


def test_percent_signs_in_values_are_text() -> None:
    row = (1, "c%s", "%d", "%%", 1.5, "50% off")
    assert _rows_text([row]) == "1\tc%s\t%d\t%%\t1.5\t50% off\n"


def test_special_floats_read_as_the_reference_writes_them() -> None:
    rows = [(1, "c", "s", "m", value, "") for value in (math.nan, -math.inf, -0.0, 1e16)]
    metrics = [line.split("\t")[4] for line in _rows_text(rows).splitlines()]
    assert metrics == ["nan", "-inf", "-0", "1e+16"]
