"""One pass over a ledger: the counts ``status`` and ``plot`` both report.

There is one rule for what kind a row is (:func:`kind_of`), and one place
that counts kinds (:func:`count_kinds`), so the two commands cannot disagree.
The ledger is read a block of rows at a time: a million rows are counted
without a million row objects, in bounded memory.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from pathlib import Path
from typing import Final, Literal

from fermilink_state._errors import StateCorruptWarning
from fermilink_state._results import (
    ACCEPTED_STATUSES,
    IncumbentTracker,
    LedgerBlock,
    ResultRow,
    all_finite,
    key_cells,
    ledger_texts,
    parse_result_line,
    text_block,
)

Direction = Literal["minimize", "maximize"]
RowKind = Literal["baseline", "accepted", "rejected", "failed"]
ROW_KINDS: Final[tuple[RowKind, ...]] = ("baseline", "accepted", "rejected", "failed")
# The statuses shown as themselves; every other status is a failure.
PLAIN_KINDS: Final = frozenset(("baseline", "accepted", "rejected"))


def kind_of(status: str, value: float | str) -> RowKind:
    """How a row is counted and drawn: its status, or ``"failed"``.

    A value that is not a finite number (NaN, infinity, text) is a failure
    whatever the status says; so is any status other than baseline, accepted
    and rejected (FermiLink writes ``crash``, ``timeout``, ...).
    """
    if isinstance(value, float) and math.isfinite(value) and status in PLAIN_KINDS:
        return status  # type: ignore[return-value]  # one of the plain kinds
    return "failed"


def row_kind(row: ResultRow) -> RowKind:
    """:func:`kind_of` a row."""
    return kind_of(row.status, row.primary_metric_value)


def count_kinds(
    statuses: Sequence[str],
    values: Sequence[float | str],
    by_status: Mapping[str, int] | None = None,
) -> Counter[RowKind]:
    """How many rows of each kind (see :func:`kind_of`) these columns hold.

    ``by_status``, when the caller has it, is ``Counter(statuses)``.
    """
    if all_finite(values):
        if by_status is None:
            by_status = Counter(statuses)
        counts: Counter[RowKind] = Counter(
            {kind: by_status[kind] for kind in ROW_KINDS if kind in PLAIN_KINDS}
        )
        counts["failed"] = len(statuses) - sum(counts.values())
        return counts
    return Counter(map(kind_of, statuses, values))


# A row's kind as a byte: its index in ROW_KINDS.
_PLAIN_CODES: Final = {kind: ROW_KINDS.index(kind) for kind in PLAIN_KINDS}
_FAILED_CODE: Final = ROW_KINDS.index("failed")


def finite_kind_codes(statuses: Sequence[str]) -> bytes:
    """Each row's kind (see :func:`kind_of`) as its index in :data:`ROW_KINDS`.

    For rows whose values are all finite numbers: the kind then follows from
    the status alone. One byte a row, so a caller picks the rows of a kind
    with ``bytes.translate`` and ``bytes.count``, with no step per row.
    """
    return bytes(map(_PLAIN_CODES.get, statuses, repeat(_FAILED_CODE)))


def count_codes(codes: bytes) -> Counter[RowKind]:
    """How many rows of each kind these :func:`finite_kind_codes` hold."""
    return Counter({kind: codes.count(code) for code, kind in enumerate(ROW_KINDS)})


class LedgerTally:
    """What one pass over a ledger counts: rows, kinds, statuses, incumbent, tail."""

    def __init__(self, *, direction: Direction = "minimize", tail: int = 8) -> None:
        self.rows = 0
        self.kinds: Counter[RowKind] = Counter()
        self.by_status: Counter[str] = Counter()
        self.last_iteration: int | None = None
        self.recent: deque[ResultRow] = deque(maxlen=max(tail, 0))
        self._incumbent = IncumbentTracker(direction, ACCEPTED_STATUSES)
        self._tail = tail
        # The highest iteration is shown only when state.json does not say.
        self.want_last_iteration = True

    @property
    def incumbent(self) -> ResultRow | None:
        """The best baseline or accepted row with a numeric value (see ``best_result``)."""
        return self._incumbent.best

    def add_text(self, path: Path, first: int, text: str, plain: bool) -> None:
        """Count one block of the ledger's text (see ``ledger_texts``)."""
        cells = key_cells(text) if plain and first > 1 else None
        if cells is None:
            block = text_block(path, first, text, plain=plain, strict=False)
            if block is not None:
                self.add(block)
            return
        self.rows += len(cells.statuses)
        by_status = Counter(cells.statuses)
        self.by_status.update(by_status)
        self.kinds.update(count_kinds(cells.statuses, cells.values, by_status))
        if self.want_last_iteration:
            self._last(max(cells.iterations))
        self._incumbent.add_cells(cells, text)
        if self._tail > 0:
            self.recent.extend(map(parse_result_line, text.rsplit("\n", self._tail)[-self._tail :]))

    def _last(self, highest: int) -> None:
        if self.last_iteration is None or highest > self.last_iteration:
            self.last_iteration = highest

    def add(self, block: LedgerBlock) -> None:
        """Count one block of rows."""
        self.rows += len(block.iterations)
        self.by_status.update(block.statuses)
        self.kinds.update(count_kinds(block.statuses, block.values))
        self._last(max(block.iterations))
        self._incumbent.add_block(block)
        if self._tail > 0:
            self.recent.extend(block.last(self._tail))


def tally_ledger(
    path: Path,
    *,
    direction: Direction = "minimize",
    tail: int = 8,
    want_last_iteration: bool = True,
) -> tuple[LedgerTally, list[str]]:
    """Count the ledger at ``path``, and one message per line skipped."""
    tally = LedgerTally(direction=direction, tail=tail)
    tally.want_last_iteration = want_last_iteration
    return tally, read_leniently(path, tally.add_text)


def read_leniently(path: Path, consume: Callable[[Path, int, str, bool], object]) -> list[str]:
    """Feed every block of the ledger's text to ``consume``; one message per line skipped.

    Malformed lines are skipped (and reported) rather than fatal, so a
    damaged campaign can still be looked at; a missing ledger is an empty one.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StateCorruptWarning)
        try:
            for first, text, plain in ledger_texts(path, strict=False):
                consume(path, first, text, plain)
        except FileNotFoundError:
            pass
    return [str(item.message) for item in caught if item.category is StateCorruptWarning]
