"""counted(): a count and its noun agree."""

from __future__ import annotations

import pytest

from fermilink_state._wording import counted


@pytest.mark.parametrize(
    ("number", "expected"), [(0, "0 rows"), (1, "1 row"), (2, "2 rows"), (1_000, "1000 rows")]
)
def test_counted_agrees_in_number(number: int, expected: str) -> None:
    assert counted(number, "row") == expected
