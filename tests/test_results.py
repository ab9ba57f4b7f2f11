"""The ledger readers: read_results, best_result, recent_results_text."""

from __future__ import annotations

import builtins
import errno
import io
import math
import os
import random
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fermilink.optimize import state as reference
from hypothesis import given, settings
from hypothesis import strategies as st

from fermilink_state import (
    RESULTS_HEADER,
    ResultRow,
    StateCorruptError,
    StateCorruptWarning,
    StateLockTimeout,
    _atomic,
    _fileops,
    _results,
    append_result,
    append_results,
    best_result,
    read_results,
    recent_results_text,
)
from support import dead_pid
from support_concurrency import lock_held_elsewhere

BIG_ROWS = 1_000_000


def _row(iteration: int, status: str, value: float | str, name: str = "t") -> ResultRow:
    return ResultRow(iteration, f"c{iteration}", status, name, value, f"d{iteration}")


def _ledger(tmp_path: Path, *lines: str, header: bool = True) -> Path:
    path = tmp_path / "results.tsv"
    path.write_text((RESULTS_HEADER if header else "") + "".join(lines), encoding="utf-8")
    return path


# -- read_results ---------------------------------------------------------------


def test_read_results_parses_rows_written_by_append_result(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    append_result(
        path,
        iteration=3,
        commit="abc",
        status="accepted",
        primary_metric_name="runtime",
        primary_metric_value=0.5,
        description="faster  loop",
    )
    assert read_results(path) == [ResultRow(3, "abc", "accepted", "runtime", 0.5, "faster loop")]


def test_read_results_reads_the_reference_s_rows(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    reference.ensure_results_file(path)
    reference.append_result(
        path,
        iteration=1,
        commit="c1",
        status="rejected",
        primary_metric_name="m",
        primary_metric_value=2,
        description="x",
    )
    assert read_results(path) == [ResultRow(1, "c1", "rejected", "m", 2.0, "x")]


def test_read_results_keeps_text_values_as_text(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\tcrash\tm\tpending\td\n")
    assert read_results(path)[0].primary_metric_value == "pending"


def test_read_results_parses_nan_as_a_float(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\tcrash\tm\tnan\td\n")
    value = read_results(path)[0].primary_metric_value
    assert isinstance(value, float)
    assert math.isnan(value)


def test_read_results_names_the_line_of_a_row_with_too_few_fields(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\tok\tm\t1\td\n", "2\tc\tok\n", "3\tc\tok\tm\t1\td\n")
    with pytest.raises(StateCorruptError) as caught:
        read_results(path)
    assert (caught.value.line, caught.value.path) == (3, path)
    assert f"{path}:3:" in str(caught.value)


def test_read_results_names_the_line_of_a_non_integer_iteration(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "x\tc\tok\tm\t1\td\n")
    with pytest.raises(StateCorruptError, match="not an integer") as caught:
        read_results(path)
    assert caught.value.line == 2


def test_read_results_lenient_skips_a_malformed_row_with_a_warning(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\tok\tm\t1\td\n", "torn\n", "3\tc\tok\tm\t1\td\n")
    with pytest.warns(StateCorruptWarning, match=r":3: skipped a malformed row"):
        rows = read_results(path, strict=False)
    assert [row.iteration for row in rows] == [1, 3]


def test_read_results_names_the_line_of_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_bytes(RESULTS_HEADER.encode() + b"1\tc\tok\tm\t1\td\n2\tc\tok\tm\t1\t\xff\n")
    with pytest.raises(StateCorruptError) as caught:
        read_results(path)
    assert caught.value.line == 3


def test_read_results_accepts_crlf_and_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    text = "\ufeff" + RESULTS_HEADER.replace("\n", "\r\n") + "1\tc\tok\tm\t1\td\r\n"
    path.write_bytes(text.encode())
    assert read_results(path) == [ResultRow(1, "c", "ok", "m", 1.0, "d")]


def test_read_results_of_an_empty_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_bytes(b"")
    assert read_results(path) == []


def test_read_results_of_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_results(tmp_path / "results.tsv")


def test_read_results_rejects_a_torn_last_row_in_strict_mode(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\tok\tm\t1\td\n", "2\tc\tacc")
    with pytest.raises(StateCorruptError) as caught:
        read_results(path)
    assert caught.value.line == 3


def test_read_results_of_many_rows_keeps_their_order(tmp_path: Path) -> None:
    lines = [f"{i}\tc{i}\trejected\tm\t{i / 7:.12g}\td\n" for i in range(50_000)]
    path = _ledger(tmp_path, *lines)
    rows = read_results(path)
    assert len(rows) == 50_000
    assert [row.iteration for row in rows[:3]] == [0, 1, 2]
    assert rows[-1] == ResultRow(
        49_999, "c49999", "rejected", "m", float(f"{49_999 / 7:.12g}"), "d"
    )


def test_result_row_is_frozen() -> None:
    row = _row(1, "accepted", 1.0)
    with pytest.raises(AttributeError):
        row.status = "rejected"  # type: ignore[misc]


# -- best_result ----------------------------------------------------------------


def test_best_result_minimizes_by_default() -> None:
    rows = [_row(0, "baseline", 3.0), _row(1, "accepted", 1.0), _row(2, "accepted", 2.0)]
    assert best_result(rows) == rows[1]


def test_best_result_maximizes_when_asked() -> None:
    rows = [_row(0, "baseline", 3.0), _row(1, "accepted", 1.0), _row(2, "accepted", 5.0)]
    assert best_result(rows, direction="maximize") == rows[2]


def test_best_result_ignores_rejected_rows() -> None:
    rows = [_row(0, "baseline", 3.0), _row(1, "rejected", 0.1)]
    assert best_result(rows) == rows[0]


def test_best_result_never_picks_nan() -> None:
    rows = [_row(0, "baseline", math.nan), _row(1, "accepted", 9.0)]
    assert best_result(rows) == rows[1]
    assert best_result(rows, direction="maximize") == rows[1]


def test_best_result_never_picks_text() -> None:
    rows = [_row(0, "baseline", "pending"), _row(1, "accepted", 9.0), _row(2, "accepted", "a")]
    assert best_result(rows) == rows[1]


def test_best_result_is_none_without_a_numeric_candidate() -> None:
    assert best_result([_row(0, "baseline", math.nan), _row(1, "rejected", 1.0)]) is None


def test_best_result_keeps_the_earliest_row_on_a_tie() -> None:
    rows = [_row(0, "baseline", 1.0), _row(1, "accepted", 1.0)]
    assert best_result(rows) == rows[0]


def test_best_result_takes_custom_statuses() -> None:
    rows = [_row(0, "baseline", 3.0), _row(1, "rejected", 1.0)]
    assert best_result(rows, statuses=("baseline", "rejected")) == rows[1]


def test_best_result_takes_a_single_status_string() -> None:
    rows = [_row(0, "baseline", 3.0), _row(1, "accepted", 4.0)]
    assert best_result(rows, statuses="accepted") == rows[1]


def test_best_result_reads_a_path(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "0\tc\tbaseline\tm\t2\td\n", "1\tc\taccepted\tm\t1\td\n")
    best = best_result(path)
    assert best is not None
    assert best.iteration == 1
    assert best_result(str(path)) == best


def test_best_result_rejects_an_unknown_direction() -> None:
    with pytest.raises(ValueError, match="direction"):
        best_result([], direction="sideways")  # type: ignore[arg-type]


# -- recent_results_text --------------------------------------------------------


@pytest.fixture(scope="module")
def big_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1,000,000-row ledger (about 60 MB), built once per module."""
    path = tmp_path_factory.mktemp("big") / "results.tsv"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(RESULTS_HEADER)
        chunk = 50_000
        for start in range(0, BIG_ROWS, chunk):
            handle.write(
                "".join(
                    f"{i}\t{i:012x}\trejected\truntime_s\t{1 + i / 3:.12g}\tcandidate {i}\n"
                    for i in range(start, start + chunk)
                )
            )
    return path


@pytest.mark.parametrize("limit", [1, 8, 100])
def test_recent_results_text_on_a_million_rows_matches_the_reference(
    big_ledger: Path, limit: int
) -> None:
    assert recent_results_text(big_ledger, limit=limit) == reference.recent_results_text(
        big_ledger, limit=limit
    )


class _CountingFile:
    """A file object that adds every byte read through it to ``counter``."""

    def __init__(self, handle: Any, counter: list[int]) -> None:
        self._handle = handle
        self._counter = counter

    def read(self, *args: Any) -> Any:
        data = self._handle.read(*args)
        self._counter[0] += len(data)
        return data

    def readinto(self, buffer: Any) -> Any:
        count = self._handle.readinto(buffer)
        self._counter[0] += count or 0
        return count

    def readline(self, *args: Any) -> Any:
        data = self._handle.readline(*args)
        self._counter[0] += len(data)
        return data

    def readlines(self, *args: Any) -> Any:
        lines = self._handle.readlines(*args)
        self._counter[0] += sum(len(line) for line in lines)
        return lines

    def __iter__(self) -> Iterator[Any]:
        for line in self._handle:
            self._counter[0] += len(line)
            yield line

    def __enter__(self) -> _CountingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


@pytest.fixture
def bytes_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every byte read through open(), io.open(), os.read() and os.pread()."""
    counter = [0]
    real_open = builtins.open
    real_read = os.read
    real_pread = getattr(os, "pread", None)

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        return _CountingFile(real_open(*args, **kwargs), counter)

    def counting_read(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        counter[0] += len(data)
        return data

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(io, "open", counting_open)
    monkeypatch.setattr(os, "read", counting_read)
    if real_pread is not None:

        def counting_pread(fd: int, size: int, offset: int) -> bytes:
            data: bytes = real_pread(fd, size, offset)
            counter[0] += len(data)
            return data

        monkeypatch.setattr(os, "pread", counting_pread)
    return counter


def test_recent_results_text_reads_a_bounded_number_of_bytes(
    big_ledger: Path, bytes_read: list[int]
) -> None:
    text = recent_results_text(big_ledger, limit=8)
    assert text.endswith(f"candidate {BIG_ROWS - 1}")
    # The hooks must have seen the read, or this test would prove nothing.
    assert 0 < bytes_read[0] <= 1024 * 1024
    assert big_ledger.stat().st_size > 50 * bytes_read[0]


def test_recent_results_text_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert recent_results_text(tmp_path / "results.tsv") == ""


def test_recent_results_text_of_a_header_only_ledger_is_the_header(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    assert recent_results_text(path) == RESULTS_HEADER.rstrip("\n")


@pytest.mark.parametrize("limit", [0, -2])
def test_recent_results_text_keeps_the_reference_meaning_of_odd_limits(
    tmp_path: Path, limit: int
) -> None:
    path = _ledger(tmp_path, "1\tc\tok\tm\t1\td\n", "2\tc\tok\tm\t1\td\n")
    assert recent_results_text(path, limit=limit) == reference.recent_results_text(
        path, limit=limit
    )


def test_recent_results_text_matches_the_reference_across_block_cuts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny blocks put a cut inside CRLFs, multi-byte characters and long lines.
    monkeypatch.setattr(_results, "_TAIL_BLOCK", 16)
    pieces = ["a", "b", "\t", "\n", "\r", "\r\n", "\x0b", "\x85", "\u2028", "é", "€", "𝄞", "¿", " "]
    rng = random.Random(7)
    path = tmp_path / "results.tsv"
    mismatches = []
    for _ in range(600):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 90)))
        path.write_bytes(text.encode("utf-8"))
        for limit in (1, 3, 8):
            ours = recent_results_text(path, limit=limit)
            theirs = reference.recent_results_text(path, limit=limit)
            if ours != theirs:
                mismatches.append((text, limit, ours, theirs))
    assert mismatches == []


def test_recent_results_text_takes_limit_by_keyword_only_as_the_reference() -> None:
    with pytest.raises(TypeError):
        recent_results_text(Path("results.tsv"), 8)  # type: ignore[call-arg]


# -- long ledgers: read a block at a time ----------------------------------------------


def _long_ledger(path: Path, rows: int, *, newline: str = "\n") -> list[str]:
    """A ledger of ``rows`` usual rows spanning several read blocks; its data lines."""
    lines = [
        f"{i}\tc{i:x}\t{('rejected', 'accepted', 'crash')[i % 3]}\tm\t"
        f"{('nan' if i % 97 == 0 else 1.0 + (i % 89) / 7.0)}\twide description {i}"
        for i in range(rows)
    ]
    text = (
        newline.join(
            [
                "iteration\tcommit\tstatus\tprimary_metric_name\tprimary_metric_value\tdescription",
                *lines,
            ]
        )
        + newline
    )
    path.write_bytes(text.encode("utf-8"))
    return lines


def _expected(line: str) -> tuple[object, ...]:
    """A row read with plain string operations, not the library's parser."""
    cells = line.split("\t")
    value: object = cells[4] if cells[4] == "nan" else float(cells[4])
    return (int(cells[0]), cells[1], cells[2], cells[3], value, cells[5])


def _comparable(row: ResultRow) -> tuple[object, ...]:
    value = row.primary_metric_value
    shown = "nan" if isinstance(value, float) and math.isnan(value) else value
    return (*row[:4], shown, row[5])


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_ledger_of_several_blocks_reads_every_row(tmp_path: Path, newline: str) -> None:
    path = tmp_path / "results.tsv"
    lines = _long_ledger(path, 60_000, newline=newline)
    assert path.stat().st_size > 3 * (1 << 20)
    rows = read_results(path)
    assert [_comparable(row) for row in rows] == [_expected(line) for line in lines]
    assert all(type(row) is ResultRow for row in rows)


def test_a_malformed_line_deep_in_a_long_ledger_is_named_by_its_number(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    lines = _long_ledger(path, 40_000)
    lines[31_000] = "31000\tonly\tthree"
    path.write_text(
        "iteration\tcommit\tstatus\tprimary_metric_name\tprimary_metric_value\tdescription\n"
        + "\n".join(lines)
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(StateCorruptError, match=r":31002: malformed row"):
        read_results(path)
    with pytest.warns(StateCorruptWarning, match=r":31002: skipped a malformed row"):
        rows = read_results(path, strict=False)
    assert len(rows) == 39_999
    with pytest.raises(StateCorruptError, match=r":31002: malformed row"):
        best_result(path)


def test_bytes_that_are_not_utf8_deep_in_a_long_ledger_are_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    _long_ledger(path, 40_000)
    data = bytearray(path.read_bytes())
    at = data.index(b"wide description 35000")
    data[at] = 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StateCorruptError, match=r":35002: not UTF-8"):
        read_results(path)
    with pytest.warns(StateCorruptWarning, match=r":35002: not UTF-8"):
        assert len(read_results(path, strict=False)) == 40_000


def test_best_result_of_a_long_ledger_path_equals_that_of_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    _long_ledger(path, 50_000)
    rows = read_results(path)
    for direction in ("minimize", "maximize"):
        for statuses in (("accepted",), ("rejected", "crash"), ()):
            assert best_result(path, direction=direction, statuses=statuses) == best_result(
                rows, direction=direction, statuses=statuses
            )


def test_a_result_row_stays_an_immutable_record() -> None:
    row = ResultRow(1, "c", "accepted", "m", 0.5, "d")
    with pytest.raises(AttributeError):
        row.status = "rejected"  # type: ignore[misc]
    assert row == ResultRow(1, "c", "accepted", "m", 0.5, "d")
    assert row.as_dict()["primary_metric_value"] == 0.5
    assert row.numeric_value == 0.5
    assert ResultRow.__module__ == "fermilink_state"


@pytest.mark.stacklevel
def test_a_lenient_read_warns_at_the_callers_line(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\n", "2\tc\taccepted\tm\t1.0\td\n", "\xff\n")
    path.write_bytes(path.read_bytes().replace(b"\xc3\xbf", b"\xff"))
    with pytest.warns(StateCorruptWarning) as caught:
        read_results(path, strict=False)
    assert len(caught) == 3
    assert {warning.filename for warning in caught} == {__file__}


# -- details the mutation run found unchecked (mutations/MUTMUT.md) --------------


def test_too_few_fields_are_counted_in_the_message(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "2\tc\tok\n")
    with pytest.raises(StateCorruptError, match="expected 6 tab-separated fields, found 3"):
        read_results(path)


def test_a_ledger_without_header_and_with_blank_lines_keeps_every_row(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\tok\tm\t1\td\n", "\n", "2\tc\tok\tm\t2\td\n", header=False)
    assert [row.iteration for row in read_results(path)] == [1, 2]


def test_bytes_that_are_not_utf8_are_named_exactly(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_bytes(b"\n\xff\n")
    with pytest.raises(StateCorruptError) as caught:
        read_results(path)
    assert (caught.value.reason, caught.value.line) == ("not UTF-8", 2)


def _lenient_read(path: Path) -> tuple[list[ResultRow], warnings.WarningMessage]:
    with pytest.warns(StateCorruptWarning) as caught:
        rows = read_results(path, strict=False)
    return rows, caught[0]


def _undecodable_ledger(tmp_path: Path) -> Path:
    path = tmp_path / "results.tsv"
    path.write_bytes(RESULTS_HEADER.encode() + b"1\tc\tok\tm\t1\td\xff\n")
    return path


def test_lenient_read_replaces_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = _undecodable_ledger(tmp_path)
    rows, warning = _lenient_read(path)
    assert rows == [ResultRow(1, "c", "ok", "m", 1.0, "d\ufffd")]
    assert str(warning.message) == f"{path}:2: not UTF-8; undecodable bytes replaced"


def test_lenient_read_warning_names_the_row(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "torn\n")
    assert str(_lenient_read(path)[1].message) == (
        f"{path}:2: skipped a malformed row: expected 6 tab-separated fields, found 1"
    )


@pytest.mark.stacklevel
@pytest.mark.parametrize("ledger", ["undecodable", "torn"])
def test_lenient_read_warnings_point_at_the_caller(tmp_path: Path, ledger: str) -> None:
    path = _undecodable_ledger(tmp_path) if ledger == "undecodable" else _ledger(tmp_path, "x\n")
    assert _lenient_read(path)[1].filename == __file__


def test_format_metric_writes_numbers_as_the_reference_and_text_as_given() -> None:
    assert [_results.format_metric(value) for value in (2, 0.1, 1e16, "n/a")] == [
        "2",
        "0.1",
        "1e+16",
        "n/a",
    ]


def test_as_dict_is_keyed_like_append_result() -> None:
    assert _row(3, "accepted", 0.5).as_dict() == {
        "iteration": 3,
        "commit": "c3",
        "status": "accepted",
        "primary_metric_name": "t",
        "primary_metric_value": 0.5,
        "description": "d3",
    }


def _naive_tail(path: Path, limit: int) -> str:
    # The reference's definition, on the whole file.
    lines = path.read_bytes().decode("utf-8").splitlines()
    return "\n".join(lines[-limit:]) if lines else ""


@pytest.mark.timeout(20)  # a wrong loop condition would read forever
@pytest.mark.parametrize("limit", [0, -3, 1, 2, 3, 8, 50])
def test_recent_results_text_is_the_tail_at_every_size(tmp_path: Path, limit: int) -> None:
    path = tmp_path / "results.tsv"
    rng = random.Random(limit)
    rows: list[str] = []
    mismatches = []
    while sum(len(row.encode()) for row in rows) < 3 * 4096:
        path.write_bytes("".join(rows).encode())
        if recent_results_text(path, limit=limit) != _naive_tail(path, limit):
            mismatches.append(len(rows))
        width = rng.choice([1, 40, 300, 1500])
        rows.append(f"{len(rows)}\tc\tok\tm\t1\t{'é' * width}€¿\n")
    assert mismatches == []


def test_recent_results_text_of_a_missing_or_empty_file_is_empty_for_any_limit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "results.tsv"
    missing = [recent_results_text(path, limit=limit) for limit in (0, -1, 8)]
    path.write_bytes(b"")
    empty = [recent_results_text(path, limit=limit) for limit in (0, -1, 8)]
    assert (missing, empty) == (["", "", ""], ["", "", ""])


def _opened_flags(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    flags: dict[str, int] = {}
    real_open = os.open

    def spy(path: Any, how: int, mode: int = 0o777, **kwargs: Any) -> int:
        flags[os.path.basename(os.fspath(path))] = how
        return real_open(path, how, mode, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    return flags


def test_append_creates_a_missing_ledger_as_open_would_and_closes_it_on_exec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, set_umask: Any
) -> None:
    set_umask(0o022)
    path = tmp_path / "results.tsv"
    flags = _opened_flags(monkeypatch)
    append_result(path, **APPENDED)
    assert (path.stat().st_mode & 0o777, flags["results.tsv"] & os.O_CLOEXEC) == (
        0o644,
        os.O_CLOEXEC,
    )


APPENDED: dict[str, Any] = {
    "iteration": 1,
    "commit": "c",
    "status": "ok",
    "primary_metric_name": "m",
    "primary_metric_value": 1.5,
    "description": "d",
}


def test_failed_append_reports_the_write_error_even_if_the_cleanup_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _ledger(tmp_path)

    def no_space(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def cannot_truncate(fd: int, length: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "write", no_space)
    monkeypatch.setattr(os, "ftruncate", cannot_truncate)
    with pytest.raises(OSError, match=r"\bno row was added\b") as caught:
        append_result(path, **APPENDED)
    assert caught.value.errno == errno.ENOSPC


def test_append_results_takes_result_rows_and_mappings_without_description(
    tmp_path: Path,
) -> None:
    path = _ledger(tmp_path)
    mapping = {key: value for key, value in APPENDED.items() if key != "description"}
    append_results(path, [ResultRow(1, "c", "ok", "m", 1.5, "r"), mapping, APPENDED])
    assert path.read_text(encoding="utf-8") == RESULTS_HEADER + (
        "1\tc\tok\tm\t1.5\tr\n1\tc\tok\tm\t1.5\t\n1\tc\tok\tm\t1.5\td\n"
    )


def test_append_results_needs_every_key_but_the_description(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    before = path.read_bytes()
    mapping = {key: value for key, value in APPENDED.items() if key != "commit"}
    with pytest.raises(KeyError, match="commit"):
        append_results(path, [APPENDED, mapping])
    assert path.read_bytes() == before


def test_append_results_honours_its_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _ledger(tmp_path)
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "3600")
    with lock_held_elsewhere(path), pytest.raises(StateLockTimeout) as caught:
        append_results(path, [APPENDED], timeout=0.2)
    assert caught.value.timeout == 0.2


def test_append_into_a_missing_folder_is_enoent_with_the_remedy(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "results.tsv"
    with pytest.raises(FileNotFoundError) as caught:
        append_result(target, **APPENDED)
    assert (caught.value.errno, caught.value.strerror, caught.value.filename) == (
        errno.ENOENT,
        "the campaign folder does not exist; call ensure_optimize_root() first",
        str(target),
    )


# -- the block readers against the line-by-line rules ------------------------------

# Lines a ledger may hold: usual rows, rows the whole-block readers must hand
# back to the line-by-line parser (odd iterations and metrics), and malformed
# lines, among them lines of five and seven fields that hold as many tabs
# together as two good rows.
_LINES = (
    "3\tc3\taccepted\tm\t1.5\td",
    "4\tc4\trejected\tm\t2.25\tdescription four",
    "5\tc5\tbaseline\tm\t0.5\t",
    "6\tc6\tcrash\tm\tnan\td",
    "7\tc7\taccepted\tm\tinf\td",
    "8\tc8\taccepted\tm\tpending\td",
    "9\tc9\taccepted\tm\t1_0\td",
    "10\tc10\taccepted\tm\t\u0663\td",
    "11\tc11\taccepted\tm\t  2.5 \td",
    "12\tc12\taccepted\tm\t0x1p3\td",
    "13\tc13\trejected\tm\t1e400\td",
    "+14\tc\taccepted\tm\t1\td",
    " 15\tc\taccepted\tm\t1\td",
    "\u0661\u0666\tc\taccepted\tm\t1\td",
    "1_7\tc\taccepted\tm\t1\td",
    "-18\tc\taccepted\tm\t1\td",
    "1234567890123456789012345\tc\taccepted\tm\t1\td",
    "\tc\taccepted\tm\t1\td",
    "x\tc\taccepted\tm\t1\td",
    "19\tc\taccepted\tm\t1\td\u2028tail",
    "20\tc\taccepted",
    "21\ta\tb\tc\td",
    "22\ta\tb\tc\td\te\tf",
    "",
)


def _line_by_line(text: str) -> tuple[list[ResultRow], list[int]]:
    """The rows of a ledger's text by the documented rules, one line at a time; bad lines."""
    rows: list[ResultRow] = []
    bad: list[int] = []
    for number, raw in enumerate(text.split("\n")[:-1], start=1):
        line = _results.data_line(number, raw)
        if line is None:
            continue
        try:
            rows.append(_results.parse_result_line(line))
        except ValueError:
            bad.append(number)
    return rows, bad


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.lists(st.sampled_from(_LINES), max_size=30))
def test_the_block_readers_follow_the_line_by_line_rules(lines: list[str]) -> None:
    from fermilink_state.cli._plot import plot_ledger
    from fermilink_state.cli._tally import kind_of, tally_ledger

    text = RESULTS_HEADER + "".join(line + "\n" for line in lines)
    rows, bad = _line_by_line(text)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "results.tsv"
        path.write_text(text, encoding="utf-8")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert repr(read_results(path, strict=False)) == repr(rows)
        assert [str(warning.message).split(":")[1] for warning in caught] == list(map(str, bad))
        if bad:
            with pytest.raises(StateCorruptError, match=f":{bad[0]}: malformed row"):
                read_results(path)
        else:
            assert repr(read_results(path)) == repr(rows)
        tally, skipped = tally_ledger(path)
        data, _ = plot_ledger(path)
    kinds = Counter(kind_of(row.status, row.primary_metric_value) for row in rows)
    assert (tally.rows, len(skipped)) == (len(rows), len(bad))
    assert tally.kinds == data.counts == kinds
    assert tally.by_status == Counter(row.status for row in rows)
    assert tally.last_iteration == max((row.iteration for row in rows), default=None)


def test_lines_of_five_and_seven_fields_are_not_read_as_two_rows(tmp_path: Path) -> None:
    # As many tabs together as two rows: only a check of each line tells them apart.
    path = _ledger(
        tmp_path, "1\tc\taccepted\tm\t1.0\td\n", "2\ta\tb\tc\t3\n", "4\ta\tb\tc\t5\te\tf\n"
    )
    assert _results.six_cells("2\ta\tb\tc\t3\n4\ta\tb\tc\t5\te\tf") is None
    with pytest.raises(StateCorruptError, match=r":3: malformed row: expected 6"):
        read_results(path)
    with pytest.warns(StateCorruptWarning) as caught:
        rows = read_results(path, strict=False)
    assert rows == [ResultRow(1, "c", "accepted", "m", 1.0, "d")]
    assert [str(warning.message).split(":")[1] for warning in caught] == ["3", "4"]


def test_a_row_with_an_extra_field_among_usual_rows_is_malformed(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1.0\td\n", "2\tc\taccepted\tm\t2.0\td\textra\n")
    with pytest.raises(StateCorruptError, match=r":3: malformed row: expected 6 .*found 7"):
        read_results(path)


def test_an_empty_metric_beside_a_description_of_two_words_stays_in_its_column(
    tmp_path: Path,
) -> None:
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t\ttwo words\n")
    assert read_results(path) == [ResultRow(1, "c", "accepted", "m", "", "two words")]


def test_numeric_commits_are_not_taken_for_iterations(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\t70\taccepted\tm\t1.0\td\n", "2\t80\taccepted\tm\t2.0\td\n")
    assert [(row.iteration, row.commit) for row in read_results(path)] == [(1, "70"), (2, "80")]


def test_recent_results_text_fails_on_a_whole_row_that_is_not_utf8_as_the_reference(
    tmp_path: Path,
) -> None:
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1.0\td\n", "2\tc\taccepted\tm\t2.0\td\n")
    path.write_bytes(path.read_bytes().replace(b"1.0\td", b"1.0\t\xff"))
    with pytest.raises(UnicodeDecodeError):
        reference.recent_results_text(path, limit=8)
    with pytest.raises(UnicodeDecodeError):
        recent_results_text(path, limit=8)


def test_recent_results_text_keeps_a_last_row_ending_in_a_wide_character_before_a_torn_tail(
    tmp_path: Path,
) -> None:
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1.0\tcafé\n")
    path.write_bytes(path.read_bytes() + b"2\tc\tacc\xff")
    assert recent_results_text(path, limit=2) == "1\tc\taccepted\tm\t1.0\tcafé\n2\tc\tacc\ufffd"


def test_recent_results_text_replaces_a_torn_tail_that_starts_with_a_bad_byte(
    tmp_path: Path,
) -> None:
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1.0\td\n")
    path.write_bytes(path.read_bytes() + b"\xff2\tc")
    assert recent_results_text(path, limit=2) == "1\tc\taccepted\tm\t1.0\td\n\ufffd2\tc"


@pytest.mark.stacklevel
def test_moving_a_torn_tail_aside_warns_at_the_callers_line(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1.0\td\n")
    path.write_bytes(path.read_bytes() + b"2\tc\tacc")
    with pytest.warns(StateCorruptWarning, match="torn by a crash") as caught:
        append_results(path, [_ROW_CELLS])
    assert [warning.filename for warning in caught] == [__file__]


def test_best_result_keeps_the_whole_of_a_best_last_row_without_its_line_break(
    tmp_path: Path,
) -> None:
    path = _ledger(tmp_path, "1\tc1\taccepted\tm\t2.0\tfirst\n", "2\tc2\taccepted\tm\t1.0\tlast")
    assert best_result(path) == ResultRow(2, "c2", "accepted", "m", 1.0, "last")


def test_best_result_of_a_ledger_file_is_the_largest_when_maximizing(tmp_path: Path) -> None:
    path = _ledger(
        tmp_path,
        "1\tc1\taccepted\tm\t2.0\td1\n",
        "2\tc2\taccepted\tm\t3.0\td2\n",
        "3\tc3\tkept\tm\t1.0\td3\n",
    )
    assert best_result(path, direction="maximize") == ResultRow(2, "c2", "accepted", "m", 3.0, "d2")


def test_incumbent_tracker_add_says_whether_the_row_became_the_best() -> None:
    tracker = _results.IncumbentTracker()
    said = [
        tracker.add(ResultRow(1, "c1", "accepted", "m", 2.0, "d1")),
        tracker.add(ResultRow(2, "c2", "accepted", "m", 3.0, "d2")),
        tracker.add(ResultRow(3, "c3", "accepted", "m", "n/a", "d3")),
        tracker.add(ResultRow(4, "c4", "accepted", "m", 1.0, "d4")),
    ]
    assert said == [True, False, False, True]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("size", [17, 40])
def test_a_nul_ledger_longer_than_a_read_block_gets_its_header_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    # No line break anywhere: the repair reads back, block by block, to byte 0.
    monkeypatch.setattr(_results, "_TAIL_BLOCK", 16)
    path = tmp_path / "results.tsv"
    path.write_bytes(b"\0" * size)
    append_result(
        path,
        iteration=1,
        commit="c",
        status="accepted",
        primary_metric_name="m",
        primary_metric_value=1.0,
        description="d",
    )
    assert path.read_bytes() == (RESULTS_HEADER + "1\tc\taccepted\tm\t1\td\n").encode()


def test_a_last_line_that_parses_as_a_row_but_holds_nul_bytes_is_torn(tmp_path: Path) -> None:
    # Zeros a power cut left at the end of a row: not the row that was written.
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1.0\td\n")
    path.write_bytes(path.read_bytes() + b"2\tc\taccepted\tm\t2.0\td\0\0")
    with pytest.raises(StateCorruptError, match=r":3: not a whole row"):
        read_results(path)


def test_a_row_ending_in_two_carriage_returns_reads_without_them(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1.0\td\r\r\n", "2\tc\taccepted\tm\t2.0\te\n")
    assert [row.description for row in read_results(path)] == ["d", "e"]


@pytest.mark.parametrize(("direction", "best"), [("minimize", 2), ("maximize", 3)])
def test_best_result_compares_rows_across_blocks_read_in_different_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direction: str, best: int
) -> None:
    # Tiny read blocks: the first block holds a text metric (ranked row by
    # row), the second only numbers (ranked as a column).
    monkeypatch.setattr(_results, "_READ_BLOCK", 64)
    lines = ["1\tc1\taccepted\tm\tn/a\td1\n", "2\tc2\taccepted\tm\t1.0\td2\n"]
    path = _ledger(tmp_path, *lines, "3\tc3\taccepted\tm\t3.0\td3\n")
    result = best_result(path, direction=direction)  # type: ignore[arg-type]
    assert result is not None
    assert result.iteration == best


def test_a_failed_sync_of_appended_rows_says_they_may_not_survive_a_power_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_sync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    path = _ledger(tmp_path)
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "1")
    monkeypatch.setattr(_fileops, "fdatasync", failing_sync)
    with pytest.raises(OSError, match="Input/output error") as caught:
        append_results(path, [ResultRow(1, "c", "accepted", "m", 1.0, "d")])
    assert (caught.value.errno, caught.value.filename) == (errno.EIO, str(path))
    assert str(caught.value.strerror).startswith(
        "Input/output error; the rows were appended but may not survive a power cut; "
    )


def test_recent_results_text_fails_on_a_stray_byte_at_the_start_as_the_reference(
    tmp_path: Path,
) -> None:
    path = tmp_path / "results.tsv"
    path.write_bytes(b"\x80" + RESULTS_HEADER.encode())
    with pytest.raises(UnicodeDecodeError):
        reference.recent_results_text(path, limit=8)
    with pytest.raises(UnicodeDecodeError):
        recent_results_text(path, limit=8)


def test_an_append_that_creates_the_ledger_syncs_its_folder_and_a_later_one_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "1")
    monkeypatch.setattr(_fileops, "sync_folder", lambda folder: synced.append(str(folder)))
    path = tmp_path / "results.tsv"
    append_results(path, [ResultRow(1, "c", "accepted", "m", 1.0, "d")])
    assert synced == [str(tmp_path)]
    append_results(path, [ResultRow(2, "c", "accepted", "m", 2.0, "d")])
    assert synced == [str(tmp_path)]


def test_only_the_append_that_creates_the_ledger_sweeps_dead_temps(tmp_path: Path) -> None:
    # A writer of the header (ensure_results_file) that died left its temp.
    path = tmp_path / "results.tsv"
    leftover = path.with_name(f"{_atomic.temp_prefix(path)}{dead_pid()}.0a1b2c3d.tmp")
    leftover.write_text("half a header", encoding="utf-8")
    append_results(path, [ResultRow(1, "c", "accepted", "m", 1.0, "d")])
    assert not leftover.exists()
    leftover.write_text("half a header", encoding="utf-8")
    append_results(path, [ResultRow(2, "c", "accepted", "m", 2.0, "d")])
    assert leftover.exists()


def test_iter_result_lines_numbers_data_lines_from_one_and_skips_the_header() -> None:
    text = RESULTS_HEADER + "1\tc\taccepted\tm\t1.0\td\n\n2\tc\tkept\tm\t2.0\te"
    assert list(_results.iter_result_lines(text)) == [
        (2, "1\tc\taccepted\tm\t1.0\td"),
        (4, "2\tc\tkept\tm\t2.0\te"),
    ]


def test_incumbent_tracker_takes_the_best_row_out_of_a_block_of_key_cells() -> None:
    text = "1\tc1\taccepted\tm\t1.0\td1\n2\tc2\taccepted\tm\t3.0\td2\n3\tc3\taccepted\tm\t2.0\td3"
    cells = _results.key_cells(text)
    assert cells is not None
    tracker = _results.IncumbentTracker()
    tracker.add_cells(cells, text)
    assert tracker.best == ResultRow(1, "c1", "accepted", "m", 1.0, "d1")


def test_best_result_ranks_a_block_that_holds_a_carriage_return_row_by_row(
    tmp_path: Path,
) -> None:
    # The bare CR in row 1 sends its block down the row-by-row path.
    rows = [
        "1\tc1\taccepted\tm\t2.0\ta\rb\n",
        "2\tc2\trejected\tm\t0.5\td2\n",
        "3\tc3\taccepted\tm\tnan\td3\n",
        "4\tc4\taccepted\tm\t1.0\td4\n",
        "5\tc5\taccepted\tm\t1.0\td5\n",
        "6\tc6\taccepted\tm\t3.0\td6\n",
    ]
    path = _ledger(tmp_path, *rows)
    assert best_result(path) == ResultRow(4, "c4", "accepted", "m", 1.0, "d4")


def test_key_cells_are_none_unless_every_line_is_a_usual_row() -> None:
    assert _results.key_cells("1\tc\taccepted\tm\t1.0\td\nnot a row\nnor this") is None


def test_a_batch_row_with_a_numeric_text_iteration_is_written_as_an_integer(
    tmp_path: Path,
) -> None:
    path = _ledger(tmp_path)
    append_results(path, [{**_ROW_CELLS, "iteration": "7"}])
    assert path.read_text(encoding="utf-8") == RESULTS_HEADER + "7\tc\taccepted\tm\t1\td\n"


def test_a_batch_row_with_cells_that_are_not_text_is_written_as_text(tmp_path: Path) -> None:
    path = _ledger(tmp_path)
    rows = [{**_ROW_CELLS, key: 5} for key in ("commit", "status", "primary_metric_name")]
    append_results(path, rows)
    expected = "1\t5\taccepted\tm\t1\td\n1\tc\t5\tm\t1\td\n1\tc\taccepted\t5\t1\td\n"
    assert path.read_text(encoding="utf-8") == RESULTS_HEADER + expected


def test_a_torn_tail_of_letters_is_moved_aside(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1.0\td\n")
    path.write_bytes(path.read_bytes() + b"XX")
    with pytest.warns(StateCorruptWarning, match="torn by a crash"):
        append_results(path, [_ROW_CELLS])
    assert [p.read_bytes() for p in tmp_path.iterdir() if ".corrupt-" in p.name] == [b"XX"]


_ROW_CELLS: dict[str, object] = {
    "iteration": 1,
    "commit": "c",
    "status": "accepted",
    "primary_metric_name": "m",
    "primary_metric_value": 1.0,
    "description": "d",
}


def test_a_torn_tail_is_moved_aside_durably_with_the_mode_open_would_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "1")
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1.0\td\n")
    path.write_bytes(path.read_bytes() + b"2\tc\tacc")
    umask = os.umask(0o022)
    try:
        with pytest.warns(StateCorruptWarning, match="torn by a crash"):
            append_results(path, [_ROW_CELLS])
    finally:
        os.umask(umask)
    (aside,) = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert (aside.read_bytes(), aside.stat().st_mode & 0o777) == (b"2\tc\tacc", 0o644)


def test_best_result_of_a_ledger_with_a_torn_last_line_raises(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1.0\td\n", "2\tc\tacc")
    with pytest.raises(StateCorruptError, match=r":3: not a whole row"):
        best_result(path)


def test_a_metric_with_an_underscore_stays_text_in_a_block_of_numbers(tmp_path: Path) -> None:
    # float() reads "1_000" as 1000.0; the ledger's rule does not.
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1_000\td\n", "2\tc\taccepted\tm\t2.5\td\n")
    assert [row.primary_metric_value for row in read_results(path)] == ["1_000", 2.5]


def test_a_torn_first_row_after_the_header_is_reported_as_torn(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "2\tc\tacc")
    with pytest.raises(StateCorruptError) as caught:
        read_results(path)
    assert (caught.value.line, caught.value.reason) == (
        2,
        "not a whole row (the end of the ledger was torn by a crash; the next append moves"
        " it aside, or read with strict=False to skip it)",
    )


def test_a_ledger_that_is_only_part_of_its_header_is_a_malformed_first_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "results.tsv"
    path.write_text("iteration\tcom", encoding="utf-8")
    with pytest.raises(StateCorruptError, match=r":1: malformed row"):
        read_results(path)


def test_recent_results_text_is_the_last_eight_lines_by_default(tmp_path: Path) -> None:
    lines = [f"{i}\tc\taccepted\tm\t1.0\td{i}" for i in range(1, 11)]
    path = _ledger(tmp_path, *(line + "\n" for line in lines))
    assert recent_results_text(path) == "\n".join(lines[-8:])


@pytest.mark.parametrize(
    ("direction", "values", "best"),
    [("minimize", ("2.0", "3.0", "2.0", "1.0"), 4), ("maximize", ("2.0", "3.0", "3.0", "1.0"), 2)],
)
def test_incumbent_tracker_compares_blocks_of_key_cells_and_keeps_the_earliest_of_equals(
    direction: str, values: tuple[str, ...], best: int
) -> None:
    rows = [f"{i}\tc{i}\taccepted\tm\t{value}\td{i}" for i, value in enumerate(values, start=1)]
    tracker = _results.IncumbentTracker(direction)  # type: ignore[arg-type]
    for text in ("\n".join(rows[:2]), "\n".join(rows[2:])):
        cells = _results.key_cells(text)
        assert cells is not None
        tracker.add_cells(cells, text)
    assert tracker.best is not None
    assert tracker.best.iteration == best


def test_ledger_block_last_is_its_last_rows_in_order() -> None:
    rows = [ResultRow(i, f"c{i}", "accepted", "m", float(i), f"d{i}") for i in (1, 2, 3)]
    block = _results.LedgerBlock(*(list(column) for column in zip(*rows, strict=True)))
    assert block.last(2) == rows[1:]


# -- the block reader (ledger_blocks, ledger_texts, line_blocks) -----------------


def test_ledger_blocks_is_strict_unless_told(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1.0\td\n", "not a row\n")
    with pytest.raises(StateCorruptError) as caught:
        list(_results.ledger_blocks(path))
    assert caught.value.line == 3


def test_a_lenient_read_reports_undecodable_bytes_once_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each row is a read block of its own, and two of them hold a stray byte.
    monkeypatch.setattr(_results, "_READ_BLOCK", 24)
    path = tmp_path / "results.tsv"
    path.write_bytes(
        RESULTS_HEADER.encode() + b"1\tc\tok\tm\t1\td\xff\n" + b"2\tc\tok\tm\t2\te\xff\n"
    )
    reported: list[tuple[int, int]] = []
    blocks = list(
        _results.ledger_blocks(path, strict=False, undecodable=lambda *at: reported.append(at))
    )
    assert sum(len(block.iterations) for block in blocks) == 2
    assert reported == [(2, 0xFF)]


def test_line_1_is_a_block_of_its_own(tmp_path: Path) -> None:
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1.0\td\n", "2\tc\taccepted\tm\t2.0\te\n")
    header = RESULTS_HEADER.removesuffix("\n")
    assert list(_results.ledger_texts(path, strict=True)) == [
        (1, header, False),
        (2, "1\tc\taccepted\tm\t1.0\td\n2\tc\taccepted\tm\t2.0\te", True),
    ]


def test_rows_after_a_first_read_block_that_ends_with_the_header_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_results, "_READ_BLOCK", len(RESULTS_HEADER.encode()))
    path = _ledger(tmp_path, "1\tc\taccepted\tm\t1.0\td\n", "2\tc\taccepted\tm\t2.0\te\n")
    assert [row.iteration for row in read_results(path)] == [1, 2]


def test_line_blocks_reads_a_block_at_a_time() -> None:
    # Lines shorter than a block: every read asks for one block, and what is
    # yielded is at most a block plus the piece of a line carried over.
    line = b"x" * 99 + b"\n"
    data = line * (3 * _results._READ_BLOCK // len(line) + 1)
    asked: list[int | None] = []

    class RecordingReader(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            asked.append(size)
            return super().read(size)

    blocks = list(_results.line_blocks(RecordingReader(data)))
    assert b"".join(block for block, _ in blocks) == data
    assert set(asked) == {_results._READ_BLOCK}
    assert max(len(block) for block, _ in blocks) < _results._READ_BLOCK + len(line)


def test_an_ascii_metric_cell_float_refuses_stays_text_in_a_column() -> None:
    # "\x1c" is whitespace to str.strip() but not to float(): no number.
    assert _results.metric_column(["1.5", "2\x1c"]) == [1.5, "2\x1c"]


def test_a_metric_cell_float_refuses_reads_as_text_row_by_row_as_in_a_column(
    tmp_path: Path,
) -> None:
    # With no header, line 1 is read row by row, line 2 as a column.
    cells = "\tc\taccepted\tm\t2\x1c\td\n"
    path = _ledger(tmp_path, "1" + cells, "2" + cells, header=False)
    assert [row.primary_metric_value for row in read_results(path)] == ["2\x1c", "2\x1c"]
