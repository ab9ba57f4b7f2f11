"""The append-only results ledger, ``results.tsv``."""

from __future__ import annotations

import contextlib
import errno
import gc
import math
import os
import re
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import compress, repeat
from operator import contains, itemgetter
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, NamedTuple, cast

from fermilink_state import _fileops
from fermilink_state._atomic import sweep_dead_temps
from fermilink_state._create import create_if_missing
from fermilink_state._errors import (
    StateCorruptError,
    StateCorruptWarning,
    explain_write_error,
)
from fermilink_state._fencing import check_fence
from fermilink_state._jsonio import quarantine_path
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
_HEADER_LINE: Final = RESULTS_HEADER.rstrip("\n")
# Lines of six fields with an integer iteration (a subset of what the parser
# accepts: a block that does not match is parsed line by line).
_USUAL_ROWS: Final = re.compile(r"(?:-?[0-9]+(?:\t[^\t\n]*){5}\n)*-?[0-9]+(?:\t[^\t\n]*){5}")
# Deleting every other byte from a block leaves its separators: five tabs
# and a line break per row of six cells.
_NOT_SEPARATORS: Final = bytes(byte for byte in range(256) if byte not in b"\t\n")
_ROW_SEPARATORS: Final = b"\t\t\t\t\t\n"
# Bytes per read of a long ledger (~3,500 rows): small enough that a block's
# cells stay in the CPU's cache while its columns are built (a 1 MiB block
# made status 1.4x slower on a busy machine), large enough that the Python
# steps per block cost little.
_READ_BLOCK: Final = 1 << 18

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
_MAPPING_CELLS: Final = itemgetter(*RESULT_FIELDS)
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


_APPEND_FLAGS: Final = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def _append(path: Path, rows_text: str, timeout: float | None = None) -> None:
    """Append ``rows_text`` under the ledger's lock, then make it durable.

    The sync runs once the lock is released (group commit): appenders that
    were waiting write their rows meanwhile, their syncs overlap ours, and the
    file system commits all of them together. Each call still returns only
    once its own rows are synced.
    """
    _require_folder(path)
    with locked(path, timeout=timeout):
        fd, created = _append_locked(path, rows_text)
    try:
        if _fileops.fsync_enabled():
            _make_durable(fd, path, created=created)
    finally:
        _fileops.close(fd)


def _make_durable(fd: int, path: Path, *, created: bool) -> None:
    try:
        # Durable before the call returns: a state.json written after these
        # rows can never claim a row that a power cut took away.
        _fileops.fdatasync(fd)
        if created:  # and the ledger this call created keeps its name
            _fileops.sync_folder(path.parent)
    except OSError as error:
        raise explain_write_error(
            error, path, kept="the rows were appended but may not survive a power cut"
        ) from error


def _append_locked(path: Path, rows_text: str) -> tuple[int, bool]:
    """Write the rows (after a repair of a torn tail); return ``(fd, ledger was empty)``."""
    check_fence(path)  # a run-lock holder that lost the campaign appends nothing
    fd = _fileops.open_file(path, _APPEND_FLAGS, 0o666)
    try:
        size = os.fstat(fd).st_size
        prefix = ""
        if size and _read_at(fd, path, 1, size - 1) != b"\n":
            # An earlier append did not finish (killed mid-row, or a power cut
            # left a partial row, NUL bytes or garbage): repair the tail first.
            size, prefix = _repair_tail(fd, path, size)
        if size == 0:
            # The ledger is being created here: a writer of its header that
            # died (ensure_results_file) may have left a temp behind.
            sweep_dead_temps(path)
        payload = (RESULTS_HEADER if size == 0 else prefix) + rows_text
        try:
            # One write: readers never see half a batch from us.
            _fileops.write_all(fd, payload.encode("utf-8"))
        except OSError as error:
            # We hold the lock, so every byte past `size` is ours: cut them off
            # rather than leave half a row (e.g. after ENOSPC) in the ledger.
            with contextlib.suppress(OSError):
                _fileops.truncate(fd, size)
            raise explain_write_error(error, path, kept="no row was added") from error
    except BaseException:
        _fileops.close(fd)
        raise
    return fd, size == 0


def _read_at(fd: int, path: Path, count: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, count, offset)
    with open(path, "rb") as handle:  # pragma: no cover - Windows has no pread
        handle.seek(offset)
        return handle.read(count)


def _repair_tail(fd: int, path: Path, size: int) -> tuple[int, str]:
    """Make the ledger end on a line break again; return ``(new size, prefix)``.

    A last line that is a well-formed row is kept (``prefix`` is the missing
    line break). Anything else after the last line break (a partial row, a
    run of NULs, garbage) is no row of anyone's: its bytes, when not all NUL,
    are saved beside the ledger and cut off, so the next row is not swallowed.
    """
    start = max(0, size - _TAIL_BLOCK)
    block = _read_at(fd, path, size - start, start)
    while start > 0 and b"\n" not in block:
        start = max(0, start - _TAIL_BLOCK * 4)
        block = _read_at(fd, path, size - start, start)
    tail = torn_tail(block)
    if tail is None:
        return size, "\n"
    keep = start + len(block) - len(tail)
    if tail.strip(b"\0"):
        _save_torn_tail(path, tail)
    _fileops.truncate(fd, keep)
    return keep, ""


def torn_tail(data: bytes) -> bytes | None:
    """What a crash left after the ledger's last line break, or ``None``.

    ``data`` is the end of a ledger that does not end in a line break. The
    bytes after the last line break are a torn tail unless they are a
    well-formed row (then ``None``: the row only lacks its line break).
    """
    tail = data[data.rfind(b"\n") + 1 :]
    if b"\0" in tail:
        return tail
    try:
        parse_result_line(tail.decode("utf-8").removesuffix("\r"))
    except (UnicodeDecodeError, ValueError):
        return tail
    return None


def _save_torn_tail(path: Path, tail: bytes) -> None:
    # A fresh name, created exclusively: no temp needed (a crash here leaves
    # part of the tail aside, and the whole tail still in the ledger).
    aside = quarantine_path(path)
    fd = _fileops.open_file(aside, _fileops.CREATE_NEW_FLAGS, 0o666)
    try:
        _fileops.write_all(fd, tail)
        if _fileops.fsync_enabled():
            _fileops.fsync(fd)
    finally:
        _fileops.close(fd)
    if _fileops.fsync_enabled():
        _fileops.sync_folder(path.parent)
    _warn_caller(
        StateCorruptWarning(
            f"{path}: the last line was torn by a crash ({len(tail)} bytes, not a row); "
            f"moved it to {aside.name} and appended after the last whole row"
        )
    )


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
    cells = (iteration, commit, status, primary_metric_name, primary_metric_value, description)
    _append(path, _rows_text((cells,)))


def append_results(
    path: Path, rows: Iterable[Mapping[str, object] | ResultRow], *, timeout: float | None = None
) -> int:
    """Append many rows under one lock hold, in one write; return how many.

    Each row is a :class:`ResultRow` or a mapping with :func:`append_result`'s
    keyword names.
    """
    rows = list(rows)
    try:
        # The usual batch: mappings with all six keys, read by one C call a row.
        cells: list[_Cells] = list(map(_MAPPING_CELLS, rows))
    except (KeyError, TypeError):
        # Raw values, converted as append_result converts them (a None
        # description is empty there, not "None").
        cells = [
            row
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
    _append(path, _rows_text(cells), timeout)
    return len(cells)


class ResultRow(NamedTuple):
    """One ledger row, as read back from ``results.tsv``.

    ``primary_metric_value`` is a float when the cell is a number (``nan`` and
    ``inf`` included), else the cell's text. An immutable named tuple: a
    million of them are read about twice as fast as frozen dataclasses.
    """

    iteration: int
    commit: str
    status: str
    primary_metric_name: str
    primary_metric_value: float | str
    description: str

    def as_dict(self) -> dict[str, object]:
        """The row as a dict keyed like :func:`append_result`'s keywords."""
        return dict(zip(RESULT_FIELDS, self, strict=True))

    @property
    def numeric_value(self) -> float | None:
        """The metric as a finite-or-infinite float, or ``None`` for text and NaN."""
        value = self.primary_metric_value
        if isinstance(value, float) and not math.isnan(value):
            return value
        return None


ResultRow.__module__ = "fermilink_state"  # its public home


def parse_metric(cell: str) -> float | str:
    """A metric cell as a float when it is a plain number, else the text."""
    if _NUMBER.fullmatch(cell.strip()):
        # str.strip() also drops the separators \x1c-\x1f, which float() refuses
        # in ASCII text: such a cell is text, as in a column (metric_column).
        with contextlib.suppress(ValueError):
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


def data_line(number: int, raw: str) -> str | None:
    """What line ``number`` of a ledger holds for the reader: a row's text, or ``None``.

    ``raw`` is the line without its ``\\n``. A trailing ``\\r`` is dropped;
    line 1 may start with a BOM and is skipped when it is the header; blank
    lines are skipped. Every reader classifies lines here, and only here.
    """
    line = raw[:-1] if raw.endswith("\r") else raw
    if number == 1:
        line = line.removeprefix("\ufeff")
        if line == _HEADER_LINE:
            return None
    return line or None


def iter_result_lines(text: str) -> Iterable[tuple[int, str]]:
    """``(line_number, line)`` for each data line of a ledger's text (1-based)."""
    for number, raw in enumerate(text.split("\n"), start=1):
        line = data_line(number, raw)
        if line is not None:
            yield number, line


def line_blocks(handle: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """A file's bytes, ``_READ_BLOCK`` at a time, each block cut after its last line break.

    Yields ``(data, whole)``; ``whole`` is False only for the last block:
    the bytes after the file's last line break (never empty). Memory stays
    bounded however long the file is (a line longer than a block is read on).
    """
    rest = b""
    while True:
        block = handle.read(_READ_BLOCK)
        data = rest + block
        if not block:
            if data:
                yield data, False
            return
        cut = data.rfind(b"\n") + 1
        data, rest = data[:cut], data[cut:]
        if data:
            yield data, True


def ledger_texts(
    path: Path, *, strict: bool, undecodable: Callable[[int, int], None] | None = None
) -> Iterator[tuple[int, str, bool]]:
    """The ledger's text, a block at a time: ``(number of its first line, text, plain)``.

    Reads ``_READ_BLOCK`` bytes at a time, cut after the last newline (a UTF-8
    sequence never spans one), so memory stays bounded whatever the length.
    ``text.split("\\n")`` is the block's lines; the text after the file's
    last newline, if any, is the last block. Line 1 (a header, a BOM) is a
    block of its own. CRLF endings are read as LF (as :func:`data_line` reads
    them); ``plain`` is False when a ``\\r`` is left, or for line 1. Bytes
    that are not UTF-8 raise :class:`StateCorruptError` naming their line,
    or (``strict=False``) are replaced after one warning (or one call of
    ``undecodable(line, byte)``).
    """
    first = 1
    reported = False
    with open(path, "rb") as handle:
        for data, whole in line_blocks(handle):
            if not whole and first > 1 and torn_tail(data) is not None:
                # What a crash left after the last line break is no row (the
                # next append's own rule, torn_tail), whatever its bytes.
                reason = "not a whole row" + _TORN_HINT
                if strict:
                    raise StateCorruptError(path, reason, line=first)
                _warn_caller(StateCorruptWarning(f"{path}:{first}: skipped a line {reason}"))
                return
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as error:
                bad_line = first + data.count(b"\n", 0, error.start)
                if strict:
                    raise StateCorruptError(path, "not UTF-8", line=bad_line) from None
                if reported:
                    pass
                elif undecodable is not None:
                    undecodable(bad_line, data[error.start])
                else:
                    _warn_caller(
                        StateCorruptWarning(
                            f"{path}:{bad_line}: not UTF-8; undecodable bytes replaced"
                        )
                    )
                reported = True
                text = data.decode("utf-8", errors="replace")
            if "\r" in text:
                # Exactly data_line's rule: the one \r before each \n goes.
                text = text.replace("\r\n", "\n")
            if whole:
                text = text[:-1]  # the block's last newline
            if first == 1:
                head, newline, text = text.partition("\n")
                yield 1, head, False
                first = 2
                if not newline:
                    if whole:
                        continue
                    return
            yield first, text, "\r" not in text
            first += text.count("\n") + 1
            if not whole:
                return


def _parse_or_report(path: Path, number: int, raw: str, *, strict: bool) -> ResultRow | None:
    """Line ``number`` as a row, ``None`` for a line that holds none (or, lenient, a bad one)."""
    line = data_line(number, raw)
    if line is None:
        return None
    try:
        return parse_result_line(line)
    except ValueError as error:
        if strict:
            raise StateCorruptError(path, f"malformed row: {error}", line=number) from None
        _warn_caller(StateCorruptWarning(f"{path}:{number}: skipped a malformed row: {error}"))
    return None


_PACKAGE_DIR: Final = os.path.dirname(os.path.abspath(__file__))


def _warn_caller(warning: Warning) -> None:
    """Issue ``warning`` at the first frame outside this package: the user's call."""
    frame = sys._getframe(0)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(warning, stacklevel=level)


_NEW_ROW: Final = tuple.__new__


class LedgerBlock(NamedTuple):
    """The rows of one block of a ledger, as columns (see :func:`ledger_blocks`).

    Columns let a caller that needs one field (the statuses, the values) get
    it without a Python step per row.
    """

    iterations: Sequence[int]
    commits: Sequence[str]
    statuses: Sequence[str]
    names: Sequence[str]
    values: Sequence[float | str]
    descriptions: Sequence[str]

    def rows(self) -> list[ResultRow]:
        """The block's rows, in ledger order."""
        with collector_paused():
            return list(map(_NEW_ROW, repeat(ResultRow), zip(*self, strict=True)))

    def last(self, count: int) -> list[ResultRow]:
        """The block's last ``count`` rows (``count`` > 0)."""
        return LedgerBlock(*[column[-count:] for column in self]).rows()  # type: ignore[arg-type]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bulk build of acyclic objects.

    Each few hundred new lists or tuples set the collector off, and now and
    then it scans every object alive: reading a long ledger cost twice as
    much. Rows hold no cycles, so nothing is missed; the collector resumes
    (if it ran before) on leaving, also when nested or on an error.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _plain_block(text: str) -> LedgerBlock | None:
    """The block's rows when every line is a usual row (else ``None``: parse line by line).

    A usual row: six fields, an integer iteration, a metric that is a plain
    number, or text no float() accepts. This is what a million-row ledger
    costs, so it runs as a few whole-column operations.
    """
    cells = _parsed_cells(text)
    if cells is None:
        return None
    return LedgerBlock(*[cells[column::6] for column in range(len(RESULT_FIELDS))])


def _parsed_cells(text: str) -> list[Any] | None:
    """:func:`six_cells` of ``text``, iterations as ints and metrics parsed, or ``None``."""
    with collector_paused():
        text_cells = six_cells(text)
        if text_cells is None:
            return None
        cells: list[Any] = text_cells  # converted in place, column by column
        try:
            cells[0::6] = map(int, text_cells[0::6])
        except ValueError:
            return None  # an iteration that is not an integer
        cells[4::6] = metric_column(text_cells[4::6])
        return cells


def six_cells(text: str) -> list[str] | None:
    """Every cell of ``text``, six per line, in one flat list; ``None`` unless each line has six.

    Two C-level passes and no object per line: the separators (all that is
    left once every other byte is deleted) must be five tabs and a line
    break per line, then one split cuts every cell.
    """
    separators = text.encode("utf-8", "surrogatepass").translate(None, _NOT_SEPARATORS)
    expected = _ROW_SEPARATORS * (separators.count(b"\n") + 1)
    if len(separators) != len(expected) - 1 or not expected.startswith(separators):
        return None
    return text.replace("\n", "\t").split("\t")


def metric_column(cells: Sequence[str]) -> list[float | str]:
    """:func:`parse_metric` of every cell, as one ``map(float)`` when they are plain."""
    joined = "".join(cells)
    if not joined.isascii() or "_" in joined:
        return list(map(parse_metric, cells))
    try:
        return list(map(float, cells))
    except ValueError:
        return list(map(_ascii_metric, cells))


def all_finite(values: Sequence[float | str]) -> bool:
    """Whether every value is a finite float (a fast test over a whole column)."""
    try:
        # A NaN or an infinity makes the sum non-finite; text raises. (A sum
        # that overflows says False too: the caller then looks row by row.)
        return math.isfinite(sum(values))  # type: ignore[arg-type]
    except TypeError:
        return False


def _nth_line(text: str, index: int) -> str:
    return text.split("\n", index + 1)[index]


def _row_of_cells(cells: list[str], line: int) -> ResultRow:
    """Line ``line`` of a block's :func:`six_cells`, parsed."""
    return parse_result_line("\t".join(cells[line * 6 : line * 6 + 6]))


def _integers(cells: list[str]) -> bool:
    """Whether ``int()`` takes every cell (as the line-by-line parser would)."""
    try:
        deque(map(int, cells), maxlen=0)
    except ValueError:
        return False
    return True


def _ascii_metric(cell: str) -> float | str:
    # For ASCII text without "_", float() accepts exactly what parse_metric does.
    try:
        return float(cell)
    except ValueError:
        return cell


def ledger_blocks(
    path: Path | str,
    *,
    strict: bool = True,
    undecodable: Callable[[int, int], None] | None = None,
) -> Iterator[LedgerBlock]:
    """Every row of a ledger, a block of rows at a time (bounded memory).

    Raises and warns as :func:`read_results` does; ``undecodable(line, byte)``
    replaces the warning about bytes that are not UTF-8.
    """
    path = Path(path)
    for first, text, plain in ledger_texts(path, strict=strict, undecodable=undecodable):
        block = text_block(path, first, text, plain=plain, strict=strict)
        if block is not None:
            yield block


def text_block(
    path: Path, first: int, text: str, *, plain: bool, strict: bool
) -> LedgerBlock | None:
    """The rows of one block of text (see :func:`ledger_texts`); ``None`` for no rows."""
    block = _plain_block(text) if plain else None
    if block is None:
        rows = [
            row
            for number, raw in enumerate(text.split("\n"), start=first)
            if (row := _parse_or_report(path, number, raw, strict=strict)) is not None
        ]
        if not rows:
            return None
        block = LedgerBlock(*zip(*rows, strict=True))
    return block


class KeyCells(NamedTuple):
    """The iterations, status, metric-name and metric cells of a block of usual rows."""

    iterations: list[int]
    statuses: Sequence[str]
    names: Sequence[str]
    values: list[float | str]


def key_cells(text: str) -> KeyCells | None:
    """The :class:`KeyCells` of ``text`` when every line is a usual row, else ``None``.

    ``text`` is a block from :func:`ledger_texts` that is plain and not line
    1. A few whole-column operations find and check every line at once, with
    no Python step per row: what ``status`` and ``plot`` cost on a long
    ledger. ``None`` says only "parse it line by line".
    """
    with collector_paused():
        cells = six_cells(text)
        if cells is None:
            return None
        try:
            iterations = list(map(int, cells[0::6]))
        except ValueError:
            return None  # an iteration that is not an integer
        return KeyCells(iterations, cells[2::6], cells[3::6], metric_column(cells[4::6]))


def usual_rows(text: str) -> bool:
    """Whether every line of ``text`` (no ``\\r``, not line 1) is a well-formed row.

    One regular-expression pass, no object per line: what ``check`` costs on
    a long ledger. ``False`` says only "look line by line".
    """
    return _USUAL_ROWS.fullmatch(text) is not None


def read_results(path: Path, *, strict: bool = True) -> list[ResultRow]:
    """Read every row of a ledger.

    A malformed line raises :class:`StateCorruptError` naming its line number;
    with ``strict=False`` it is skipped with a :class:`StateCorruptWarning`.
    A missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    rows: list[ResultRow] = []
    # Paused throughout, not only per block: each pass would scan the rows read so far.
    with collector_paused():
        for first, text, plain in ledger_texts(path, strict=strict):
            cells = _parsed_cells(text) if plain else None
            if cells is not None:
                # Each six cells in a row, with no Python step per row.
                rows += map(_NEW_ROW, repeat(ResultRow), zip(*[iter(cells)] * 6, strict=True))
            elif (block := text_block(path, first, text, plain=plain, strict=strict)) is not None:
                rows += block.rows()
    return rows


_TORN_HINT: Final = (
    " (the end of the ledger was torn by a crash; the next append moves it"
    " aside, or read with strict=False to skip it)"
)


def best_result(
    rows_or_path: Iterable[ResultRow] | Path | str,
    *,
    direction: Literal["minimize", "maximize"] = "minimize",
    statuses: Iterable[str] = ACCEPTED_STATUSES,
) -> ResultRow | None:
    """The incumbent: the best numeric row among ``statuses``, or ``None``.

    Text values and NaN never win; on a tie the earliest row wins. Given a
    path, the ledger is read a block at a time (a malformed line raises as in
    :func:`read_results`), never held whole.
    """
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize', not {direction!r}")
    # A lone string is one status, not a set of its characters.
    wanted = {statuses} if isinstance(statuses, str) else set(statuses)
    tracker = IncumbentTracker(direction, wanted)
    if isinstance(rows_or_path, str | Path):
        path = Path(rows_or_path)
        for first, text, plain in ledger_texts(path, strict=True):
            if plain and tracker.add_text(text):
                continue
            if (block := text_block(path, first, text, plain=plain, strict=True)) is not None:
                tracker.add_block(block)
    else:
        for row in rows_or_path:
            tracker.add(row)
    return tracker.best


class IncumbentTracker:
    """The best row seen so far, fed one row at a time (see :func:`best_result`)."""

    __slots__ = ("_key", "_sign", "_wanted", "best")

    def __init__(
        self,
        direction: Literal["minimize", "maximize"] = "minimize",
        statuses: Iterable[str] = ACCEPTED_STATUSES,
    ) -> None:
        self.best: ResultRow | None = None
        self._sign = 1.0 if direction == "minimize" else -1.0
        self._key = math.inf
        self._wanted = frozenset(statuses)

    def add(self, row: ResultRow) -> bool:
        """Consider ``row``; ``True`` when it became the best so far."""
        value = row.primary_metric_value
        if row.status not in self._wanted or not isinstance(value, float) or math.isnan(value):
            return False  # text and NaN never win
        key = self._sign * value
        if self.best is None or key < self._key:
            self.best, self._key = row, key
            return True
        return False

    def add_text(self, text: str) -> bool:
        """Consider every row of a block of text (see :func:`ledger_texts`, plain, not line 1).

        ``False`` (nothing considered) unless every line is a usual row: then
        parse it line by line. Only the metrics of wanted rows are parsed.
        """
        cells = six_cells(text)
        if cells is None or not _integers(cells[0::6]):
            return False
        chosen = list(map(contains, repeat(self._wanted), cells[2::6]))
        values = metric_column(list(compress(cells[4::6], chosen)))
        self._add_candidates(chosen, values, lambda line: _row_of_cells(cells, line))
        return True

    def add_cells(self, cells: KeyCells, text: str) -> None:
        """Consider every row of a block of usual rows (see :func:`key_cells`)."""
        chosen = list(map(contains, repeat(self._wanted), cells.statuses))
        values = list(compress(cells.values, chosen))
        self._add_candidates(chosen, values, lambda line: parse_result_line(_nth_line(text, line)))

    def _add_candidates(
        self,
        chosen: list[bool],
        values: list[float | str],
        row_at: Callable[[int], ResultRow],
    ) -> None:
        """Consider the ``values`` of the ``chosen`` rows of a block (``row_at(line)``: a row)."""
        if not values:
            return
        if all_finite(values):
            # Whole columns: no Python step per row (every value is a float).
            floats = cast(list[float], values)
            best = min(floats) if self._sign > 0 else max(floats)
            index = floats.index(best)  # the earliest of equals, as best_result
        else:  # text, NaN or infinity among them: row by row
            ranked = [
                (self._sign * value, number)
                for number, value in enumerate(values)
                if isinstance(value, float) and not math.isnan(value)
            ]
            if not ranked:
                return
            best_key, index = min(ranked)
            best = self._sign * best_key
        key = self._sign * best
        if self.best is None or key < self._key:
            self.best = row_at(list(compress(range(len(chosen)), chosen))[index])
            self._key = key

    def add_block(self, block: LedgerBlock) -> None:
        """Consider every row of ``block``, in order (only candidates become rows)."""
        wanted, sign = self._wanted, self._sign
        for index, (status, value) in enumerate(zip(block.statuses, block.values, strict=True)):
            if status in wanted and isinstance(value, float) and not math.isnan(value):
                key = sign * value
                if self.best is None or key < self._key:
                    self.best = _NEW_ROW(ResultRow, [column[index] for column in block])
                    self._key = key


def _decode_tail(data: bytes) -> str:
    # Bytes that are not UTF-8 raise, as in the reference, unless they are in
    # a torn last line (after the last line break): garbage a power cut left
    # there must not hide the rows before it.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        cut = data.rfind(b"\n") + 1
        if error.start < cut:
            raise
        return data[:cut].decode("utf-8") + data[cut:].decode("utf-8", errors="replace")


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
                lines = _decode_tail(data).splitlines()
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
