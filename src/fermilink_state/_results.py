"""The append-only results ledger, ``results.tsv``."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from fermilink_state._create import create_if_missing
from fermilink_state._errors import (
    StateCorruptError,
    StateCorruptWarning,
    explain_write_error,
)
from fermilink_state._fencing import check_fence
from fermilink_state._locking import locked

RESULTS_HEADER: Final = (
    "iteration\tcommit\tstatus\tprimary_metric_name\tprimary_metric_value\tdescription\n"
)
RESULT_FIELDS: Final = (
    "iteration",
    "commit",
    "status",
    "primary_metric_name",
    "primary_metric_value",
    "description",
)
ACCEPTED_STATUSES: Final = ("baseline", "accepted")

# Everything str.splitlines() breaks a line on, plus the tab: none may reach a cell.
_CELL_BREAKS: Final = re.compile("[\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_TAIL_BLOCK: Final = 4096  # ~50 rows: eight of them nearly always fit in one read
_NUMBER: Final = re.compile(
    r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|nan|inf|infinity)",
    re.IGNORECASE,
)


def _sanitize_cell(value: object) -> str:
    """The reference's description folding: every whitespace run becomes one space.

    ``None`` gives ``""``; unlike the reference, other falsy values such as
    ``0`` are kept (``"0"``), not dropped.
    """
    text = "" if value is None else str(value)
    return " ".join(text.split())


def _plain_cell(value: object) -> str:
    """A commit / status / metric-name cell: line breaks and tabs become spaces."""
    text = value if type(value) is str else str(value)
    # Every character _CELL_BREAKS matches is unprintable: most cells skip the regex.
    return text if text.isprintable() else _CELL_BREAKS.sub(" ", text)


def format_metric(value: float | int | str) -> str:
    """Render a metric as the reference does: numbers with ``%.12g``."""
    if isinstance(value, int | float):
        return f"{float(value):.12g}"
    return str(value)


def format_result_row(
    *,
    iteration: int,
    commit: str,
    status: str,
    primary_metric_name: str,
    primary_metric_value: float | int | str,
    description: str,
) -> str:
    """One ledger line, newline included: always six fields on one line."""
    return _rows_text(
        [(iteration, commit, status, primary_metric_name, primary_metric_value, description)]
    )


_Cells = tuple[object, object, object, object, object, object]
# The usual row (an int, three printable str cells, a float metric, a str
# description), in the reference's format: "%.12g" is what f"{x:.12g}" gives.
_USUAL_ROW: Final = "%d\t%s\t%s\t%s\t%.12g\t%s\n"


def _rows_text(rows: Iterable[_Cells]) -> str:
    """Ledger lines for rows of six raw cells, formatted as ``append_result`` does."""
    # append_results formats thousands of rows: usual rows go through one "%"
    # format for the whole batch, with no call per cell or per row.
    template: list[str] = []
    values: list[object] = []
    for iteration, commit, status, name, value, description in rows:
        folded = (
            " ".join(description.split())
            if type(description) is str
            else _sanitize_cell(description)
        )
        if (
            type(iteration) is int
            and type(value) is float
            and type(commit) is str
            and type(status) is str
            and type(name) is str
            and commit.isprintable()
            and status.isprintable()
            and name.isprintable()
        ):
            template.append(_USUAL_ROW)
            values += (iteration, commit, status, name, value, folded)
        else:
            template.append("%s")
            values.append(_unusual_row(iteration, (commit, status, name), value, folded))
    return "".join(template) % tuple(values)


def _unusual_row(iteration: object, plain: tuple[object, ...], value: object, folded: str) -> str:
    metric = f"{float(value):.12g}" if isinstance(value, int | float) else _plain_cell(value)
    cells = "\t".join(map(_plain_cell, plain))
    return f"{int(iteration)}\t{cells}\t{metric}\t{folded}\n"  # type: ignore[call-overload]


def ensure_results_file(path: Path) -> bool:
    """Create the ledger with its header if missing; ``True`` if it was created."""
    return create_if_missing(path, lambda: RESULTS_HEADER)


def _require_folder(path: Path) -> None:
    # As the reference's open("a"): no folder, no ledger; but say what to do.
    if not os.path.isdir(os.path.dirname(os.fspath(path)) or os.curdir):
        raise FileNotFoundError(
            errno.ENOENT,
            "the campaign folder does not exist; call ensure_optimize_root() first",
            str(path),
        )


def _append_locked(path: Path, rows_text: str) -> None:
    check_fence(path)  # a run-lock holder that lost the campaign appends nothing
    # One O_APPEND write per call: readers never see half a batch from us.
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            payload = RESULTS_HEADER + rows_text
        elif _last_byte(fd, path, size) != b"\n":
            # An earlier writer died mid-row: start ours on a fresh line.
            payload = "\n" + rows_text
        else:
            payload = rows_text
        view = memoryview(payload.encode("utf-8"))
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as error:
            # We hold the lock, so every byte past `size` is ours: cut them off
            # rather than leave half a row (e.g. after ENOSPC) in the ledger.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise explain_write_error(error, path, kept="no row was added") from error
    finally:
        os.close(fd)


def _last_byte(fd: int, path: Path, size: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, 1, size - 1)
    with open(path, "rb") as handle:  # pragma: no cover - Windows has no pread
        handle.seek(size - 1)
        return handle.read(1)


def append_result(
    path: Path,
    *,
    iteration: int,
    commit: str,
    status: str,
    primary_metric_name: str,
    primary_metric_value: float | int | str,
    description: str,
) -> None:
    """Append one row to the ledger, under its lock, in one write.

    Writes the header first into a missing or empty file, and starts a fresh
    line if an earlier crash left the last row torn. Tabs and line breaks in
    any cell become spaces, so the row is always one line of six fields.
    """
    row = format_result_row(
        iteration=iteration,
        commit=commit,
        status=status,
        primary_metric_name=primary_metric_name,
        primary_metric_value=primary_metric_value,
        description=description,
    )
    _require_folder(path)
    with locked(path):
        _append_locked(path, row)


def append_results(
    path: Path, rows: Iterable[Mapping[str, object] | ResultRow], *, timeout: float | None = None
) -> int:
    """Append many rows under one lock hold, in one write; return how many.

    Each row is a :class:`ResultRow` or a mapping with :func:`append_result`'s
    keyword names.
    """
    # Raw values, converted as append_result converts them (a None
    # description is empty there, not "None").
    cells: list[_Cells] = [
        (
            row.iteration,
            row.commit,
            row.status,
            row.primary_metric_name,
            row.primary_metric_value,
            row.description,
        )
        if isinstance(row, ResultRow)
        else (
            row["iteration"],
            row["commit"],
            row["status"],
            row["primary_metric_name"],
            row["primary_metric_value"],
            row.get("description", ""),
        )
        for row in rows
    ]
    if not cells:
        return 0
    text = _rows_text(cells)
    _require_folder(path)
    with locked(path, timeout=timeout):
        _append_locked(path, text)
    return len(cells)


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One ledger row, as read back from ``results.tsv``.

    ``primary_metric_value`` is a float when the cell is a number (``nan`` and
    ``inf`` included), else the cell's text.
    """

    iteration: int
    commit: str
    status: str
    primary_metric_name: str
    primary_metric_value: float | str
    description: str

    def as_dict(self) -> dict[str, object]:
        """The row as a dict keyed like :func:`append_result`'s keywords."""
        return {name: getattr(self, name) for name in RESULT_FIELDS}

    @property
    def numeric_value(self) -> float | None:
        """The metric as a finite-or-infinite float, or ``None`` for text and NaN."""
        value = self.primary_metric_value
        if isinstance(value, float) and not math.isnan(value):
            return value
        return None


def parse_metric(cell: str) -> float | str:
    """A metric cell as a float when it is a plain number, else the text."""
    if _NUMBER.fullmatch(cell.strip()):
        return float(cell)
    return cell


def parse_result_line(line: str) -> ResultRow:
    """Parse one ledger line (without its newline); ``ValueError`` says what is wrong."""
    fields = line.split("\t")
    if len(fields) != len(RESULT_FIELDS):
        raise ValueError(f"expected {len(RESULT_FIELDS)} tab-separated fields, found {len(fields)}")
    iteration_text, commit, status, name, value, description = fields
    try:
        iteration = int(iteration_text)
    except ValueError:
        raise ValueError(f"iteration {iteration_text!r} is not an integer") from None
    return ResultRow(iteration, commit, status, name, parse_metric(value), description)


def iter_result_lines(text: str) -> Iterable[tuple[int, str]]:
    """``(line_number, line)`` for each data line of a ledger's text (1-based)."""
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if number == 1:
            line = line.removeprefix("\ufeff")
            if line == RESULTS_HEADER.rstrip("\n"):
                continue
        if not line:
            continue
        yield number, line


def read_results(path: Path, *, strict: bool = True) -> list[ResultRow]:
    """Read every row of a ledger.

    A malformed line raises :class:`StateCorruptError` naming its line number;
    with ``strict=False`` it is skipped with a :class:`StateCorruptWarning`.
    A missing file raises ``FileNotFoundError``.
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad_line = data.count(b"\n", 0, error.start) + 1
        if strict:
            raise StateCorruptError(path, "not UTF-8", line=bad_line) from None
        warnings.warn(
            StateCorruptWarning(f"{path}:{bad_line}: not UTF-8; undecodable bytes replaced"),
            stacklevel=2,
        )
        text = data.decode("utf-8", errors="replace")
    rows: list[ResultRow] = []
    for number, line in iter_result_lines(text):
        try:
            rows.append(parse_result_line(line))
        except ValueError as error:
            if strict:
                raise StateCorruptError(path, f"malformed row: {error}", line=number) from None
            warnings.warn(
                StateCorruptWarning(f"{path}:{number}: skipped a malformed row: {error}"),
                stacklevel=2,
            )
    return rows


def best_result(
    rows_or_path: Sequence[ResultRow] | Path | str,
    *,
    direction: Literal["minimize", "maximize"] = "minimize",
    statuses: Iterable[str] = ACCEPTED_STATUSES,
) -> ResultRow | None:
    """The incumbent: the best numeric row among ``statuses``, or ``None``.

    Text values and NaN never win; on a tie the earliest row wins.
    """
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize', not {direction!r}")
    rows = (
        read_results(Path(rows_or_path)) if isinstance(rows_or_path, str | Path) else rows_or_path
    )
    # A lone string is one status, not a set of its characters.
    wanted = {statuses} if isinstance(statuses, str) else set(statuses)
    sign = 1.0 if direction == "minimize" else -1.0
    best: ResultRow | None = None
    best_key = math.inf
    for row in rows:
        value = row.numeric_value
        if row.status not in wanted or value is None:
            continue
        key = sign * value
        if best is None or key < best_key:
            best, best_key = row, key
    return best


def recent_results_text(path: Path, *, limit: int = 8) -> str:
    """The last ``limit`` lines of the ledger joined by newlines, as the reference.

    Reads blocks from the end of the file, so the cost does not grow with the
    ledger's length. Returns ``""`` for a missing or empty file.
    """
    if limit <= 0:
        # The reference's lines[-limit:] means "everything" (0) or "all but the
        # first" (negative): both need the whole file.
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-limit:]) if lines else ""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            block = _TAIL_BLOCK
            while True:
                start = max(0, size - block)
                handle.seek(start)
                data = handle.read(size - start)
                if start > 0:
                    # Skip a partial UTF-8 sequence at the cut.
                    skip = 0
                    while skip < len(data) and skip < 4 and 0x80 <= data[skip] <= 0xBF:
                        skip += 1
                    data = data[skip:]
                lines = data.decode("utf-8").splitlines()
                # The first line of a block that does not start the file may be
                # partial, so more than `limit` lines are needed to trust it.
                if start == 0 or len(lines) > limit:
                    break
                block *= 4
    except OSError:
        return ""
    if not lines:
        return ""
    return "\n".join(lines[-limit:])
