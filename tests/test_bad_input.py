"""Bad input, case by case: each has one defined outcome, and nothing is lost.

Tables: corrupt JSON (x3 loaders, and the strict reader), hostile ledger cells
and damaged ledgers, unusual memory files, and faults of the file system
(planted symlinks, ENOSPC / EIO mid-write, a read-only campaign, a lock that
is never released). Every error is checked for naming the file and saying
what to do next.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import fermilink_state as fs
from fermilink_state._memory import memory_template
from fermilink_state._results import parse_result_line
from fermilink_state.testing import FrozenClock
from support import LINE_BREAKS, WORKER_MEMORY_ARGS, FaultInjector, crlf, dead_pid
from support_concurrency import (
    HYPOTHESES,
    PROGRESS,
    SEED,
    Campaign,
    lock_held_elsewhere,
    seed_campaign,
    temp_files,
)

pytestmark = pytest.mark.timeout(60)

ROW: dict[str, Any] = {
    "iteration": 4,
    "commit": "abc123",
    "status": "rejected",
    "primary_metric_name": "runtime",
    "primary_metric_value": 1.25,
    "description": "a row",
}
EVENT: dict[str, Any] = {
    "commit": "abc123",
    "primary_metric_name": "runtime",
    "primary_metric_value": 1.25,
    "status": "accepted",
    "description": "an event",
}
TEMPLATE = memory_template(**SEED, started="2026-01-02T03:04:05Z")
CORRUPT_ADVICE = "repair or move it aside"


@pytest.fixture
def campaign(tmp_path: Path) -> Campaign:
    """A seeded campaign."""
    return seed_campaign(tmp_path / "project")


def _edit(path: Path, line: str = "- try a smaller grid") -> None:
    with fs.edit_memory(path) as document:
        document.append(HYPOTHESES, line)


# -- 1. corrupt JSON ---------------------------------------------------------

CORRUPT_JSON = {
    "empty": b"",
    "whitespace": b"  \n\t\n",
    "truncated": b'{"iteration": 3, "phase": "evalu',
    "not-json": b"iteration = 3\n",
    "array": b"[1, 2, 3]\n",
    "string": b'"state"\n',
    "number": b"42\n",
    "null": b"null\n",
    "invalid-utf8": b'{"phase": "\xff\xfe"}\n',
    "bom": b'\xef\xbb\xbf{"iteration": 3}\n',
    "nul-bytes": b"\x00" * 64,
    "two-objects": b'{"a": 1}\n{"b": 2}\n',
    "merge-conflict": b'<<<<<<< HEAD\n{"a": 1}\n=======\n{"a": 2}\n>>>>>>> other\n',
    "nested-too-deep": b"[" * 200_000,
}
LOADERS: dict[str, Callable[[Path], dict[str, Any] | None]] = {
    "load_json_file": fs.load_json_file,
    "load_state": fs.load_state,
    "load_run_lock": fs.load_run_lock,
}


def _quarantined(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("case", CORRUPT_JSON)
def test_loader_moves_corrupt_json_aside(tmp_path: Path, loader: str, case: str) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(CORRUPT_JSON[case])
    with pytest.warns(fs.StateCorruptWarning) as caught:
        assert LOADERS[loader](path) is None
    aside = _quarantined(path)
    assert (path.exists(), [p.read_bytes() for p in aside]) == (False, [CORRUPT_JSON[case]])
    message = str(caught[0].message)
    assert str(path) in message
    assert aside[0].name in message
    assert "restore" in message


@pytest.mark.parametrize("case", CORRUPT_JSON)
def test_strict_reader_raises_and_moves_nothing(tmp_path: Path, case: str) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(CORRUPT_JSON[case])
    with pytest.raises(fs.StateCorruptError) as caught:
        fs.read_json_file(path)
    assert (caught.value.path, bool(caught.value.reason)) == (path, True)
    assert str(path) in str(caught.value)
    assert CORRUPT_ADVICE in str(caught.value)
    assert (path.read_bytes(), _quarantined(path)) == (CORRUPT_JSON[case], [])


@pytest.mark.parametrize("loader", LOADERS)
def test_loader_returns_none_for_a_missing_file_without_warning(
    tmp_path: Path, loader: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert LOADERS[loader](tmp_path / "missing.json") is None


def test_strict_reader_of_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fs.read_json_file(tmp_path / "missing.json")


def test_write_after_quarantine_keeps_the_corrupt_copy(campaign: Campaign) -> None:
    campaign.state.write_bytes(b'{"iteration": 7, "pha')
    with pytest.warns(fs.StateCorruptWarning):
        assert fs.load_state(campaign.state) is None
    fs.write_state(campaign.state, {"iteration": 0})
    assert [p.read_bytes() for p in _quarantined(campaign.state)] == [b'{"iteration": 7, "pha']


def test_two_quarantines_never_overwrite_each_other(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for content in (b"first{", b"second{"):
        path.write_bytes(content)
        with pytest.warns(fs.StateCorruptWarning):
            fs.load_state(path)
    assert sorted(p.read_bytes() for p in _quarantined(path)) == [b"first{", b"second{"]


def test_run_lock_status_of_corrupt_lock_moves_nothing(tmp_path: Path) -> None:
    path = fs.run_lock_path(tmp_path)
    fs.ensure_optimize_root(tmp_path)
    path.write_bytes(b"{garbage")
    assert fs.run_lock_status(tmp_path).state == "inactive_stale"
    assert (path.read_bytes(), _quarantined(path)) == (b"{garbage", [])


# -- 2. the results ledger ---------------------------------------------------

CELLS = ["commit", "status", "primary_metric_name", "primary_metric_value", "description"]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("brk", ["\t", *LINE_BREAKS], ids=lambda brk: f"U+{ord(brk[0]):04X}")
def test_breaks_in_any_cell_keep_one_line_of_six_fields(
    campaign: Campaign, cell: str, brk: str
) -> None:
    fs.append_result(campaign.results, **{**ROW, cell: f"left{brk}right"})
    lines = campaign.results.read_text(encoding="utf-8").split("\n")
    assert len(lines) == 3  # header, one row, final newline
    assert lines[-1] == ""
    row = parse_result_line(lines[1])
    assert str(getattr(row, cell)).split() == ["left", "right"]


def test_a_one_megabyte_description_stays_one_row(campaign: Campaign) -> None:
    description = "word " * 200_000 + "end"
    fs.append_result(campaign.results, **{**ROW, "description": description})
    rows = fs.read_results(campaign.results)
    assert [row.description for row in rows] == [description]


def test_torn_last_row_is_named_by_line_number(campaign: Campaign) -> None:
    fs.append_result(campaign.results, **ROW)
    with campaign.results.open("a", encoding="utf-8") as handle:
        handle.write("5\tdeadbeef\tacc")
    with pytest.raises(fs.StateCorruptError) as caught:
        fs.read_results(campaign.results)
    assert caught.value.line == 3
    assert f"{campaign.results}:3" in str(caught.value)
    assert CORRUPT_ADVICE in str(caught.value)


def test_torn_row_is_skipped_with_a_warning_when_not_strict(campaign: Campaign) -> None:
    fs.append_result(campaign.results, **ROW)
    with campaign.results.open("a", encoding="utf-8") as handle:
        handle.write("5\tdeadbeef\tacc\n")
    fs.append_result(campaign.results, **{**ROW, "iteration": 6})
    with pytest.warns(fs.StateCorruptWarning, match=":3: "):
        rows = fs.read_results(campaign.results, strict=False)
    assert [row.iteration for row in rows] == [4, 6]


def test_invalid_utf8_in_the_ledger_is_named_by_line_number(campaign: Campaign) -> None:
    fs.append_result(campaign.results, **ROW)
    with campaign.results.open("ab") as handle:
        handle.write(b"5\tdead\xffbeef\taccepted\truntime\t1\tx\n")
    with pytest.raises(fs.StateCorruptError) as caught:
        fs.read_results(campaign.results)
    assert caught.value.line == 3


def test_crlf_ledger_reads_without_carriage_returns(campaign: Campaign) -> None:
    campaign.results.write_bytes(crlf(fs.RESULTS_HEADER + "1\tc\taccepted\tm\t2\tdone\n").encode())
    assert [row.description for row in fs.read_results(campaign.results)] == ["done"]


def test_bom_ledger_reads_its_header_as_a_header(campaign: Campaign) -> None:
    campaign.results.write_bytes(("\ufeff" + fs.RESULTS_HEADER + "1\tc\tok\tm\t2\td\n").encode())
    assert [row.iteration for row in fs.read_results(campaign.results)] == [1]


# -- 3. memory files ---------------------------------------------------------


@dataclass(frozen=True)
class MemoryEdit:
    """A memory-changing call."""

    name: str
    call: Callable[[Path], object]
    heading: str  # a section the call appends to


MEMORY_EDITS = [
    MemoryEdit(
        "record_campaign_event", lambda path: fs.record_campaign_event(path, **EVENT), PROGRESS
    ),
    MemoryEdit("edit_memory", _edit, HYPOTHESES),
]


@pytest.mark.parametrize("edit", MEMORY_EDITS, ids=lambda edit: edit.name)
def test_crlf_memory_stays_crlf(
    campaign: Campaign, edit: MemoryEdit, tmp_path: Path, frozen_utc: FrozenClock
) -> None:
    # The same edits of the same text with LF endings, then every LF made CRLF:
    # what the CRLF file must hold, line for line and byte for byte. Two edits:
    # the first drops the template's placeholders, so the second takes the
    # fast path of a campaign event.
    lf_memory = tmp_path / "lf-memory.md"
    lf_memory.write_bytes(TEMPLATE.encode())
    campaign.memory.write_bytes(crlf(TEMPLATE).encode())
    for path in (lf_memory, campaign.memory, lf_memory, campaign.memory):
        edit.call(path)
    expected = lf_memory.read_bytes().replace(b"\n", b"\r\n")
    assert lf_memory.read_bytes() != TEMPLATE.encode(), "the edit changed nothing"
    assert campaign.memory.read_bytes() == expected


@pytest.mark.parametrize("edit", MEMORY_EDITS, ids=lambda edit: edit.name)
def test_bom_stays_once_at_the_start(campaign: Campaign, edit: MemoryEdit) -> None:
    campaign.memory.write_bytes(b"\xef\xbb\xbf" + TEMPLATE.encode())
    edit.call(campaign.memory)
    data = campaign.memory.read_bytes()
    assert (data.startswith(b"\xef\xbb\xbf#"), data.count(b"\xef\xbb\xbf")) == (True, 1)


@pytest.mark.parametrize("edit", MEMORY_EDITS, ids=lambda edit: edit.name)
def test_untouched_bytes_survive_an_edit(campaign: Campaign, edit: MemoryEdit) -> None:
    preamble = "Notes before any heading.  \n\n"
    unknown = "## Team notes   \n- keep   these trailing spaces   \n\n"
    campaign.memory.write_text(preamble + TEMPLATE + unknown, encoding="utf-8")
    edit.call(campaign.memory)
    text = campaign.memory.read_text(encoding="utf-8")
    assert text.startswith(preamble)
    assert unknown in text


@pytest.mark.parametrize("edit", MEMORY_EDITS, ids=lambda edit: edit.name)
def test_invalid_utf8_memory_is_refused_and_left_as_it_was(
    campaign: Campaign, edit: MemoryEdit
) -> None:
    data = TEMPLATE.encode().replace(b"- Improve", b"- \xff\xfeImprove")
    campaign.memory.write_bytes(data)
    with pytest.raises(fs.StateCorruptError) as caught:
        edit.call(campaign.memory)
    assert campaign.memory.read_bytes() == data
    assert f"{campaign.memory}:12" in str(caught.value)
    assert CORRUPT_ADVICE in str(caught.value)


# What each edit adds to a file that has none of its headings: each section at
# the end after one blank line, as the reference does (frozen clock).
_STAMP = "2026-01-02T03:04:05.678901Z"
ADDED_SECTIONS = {
    "record_campaign_event": (
        "\n### Latest accepted commit\n- commit: abc123\n- primary_metric: runtime=1.25\n"
        "- status: accepted\n"
        f"\n### Progress log\n- [{_STAMP}] accepted: an event (abc123, runtime=1.25)\n"
        f"\n### Accepted experiments\n- [{_STAMP}] an event (abc123, runtime=1.25)\n"
        f"\n- last_updated_utc: {_STAMP}\n"
    ),
    "edit_memory": "\n### Open hypotheses\n- try a smaller grid\n",
}


@pytest.mark.parametrize("edit", MEMORY_EDITS, ids=lambda edit: edit.name)
def test_missing_headings_are_added_and_the_rest_kept(
    campaign: Campaign, edit: MemoryEdit, frozen_utc: FrozenClock
) -> None:
    assert frozen_utc.now == _STAMP
    original = "# Notes kept by hand\n\nsome notes\n"
    campaign.memory.write_text(original, encoding="utf-8")
    edit.call(campaign.memory)
    assert campaign.memory.read_text(encoding="utf-8") == original + ADDED_SECTIONS[edit.name]


@pytest.mark.parametrize("edit", MEMORY_EDITS, ids=lambda edit: edit.name)
def test_empty_memory_gets_the_edited_section(campaign: Campaign, edit: MemoryEdit) -> None:
    campaign.memory.write_bytes(b"")
    edit.call(campaign.memory)
    assert edit.heading in fs.read_memory(campaign.memory).headings


@pytest.mark.parametrize("fence", ["```", "~~~"])
def test_headings_inside_fences_are_not_sections(campaign: Campaign, fence: str) -> None:
    block = f"{fence}\n{PROGRESS}\n- not a real entry\n{fence}\n"
    campaign.memory.write_text(TEMPLATE + block, encoding="utf-8")
    fs.record_campaign_event(campaign.memory, **EVENT)
    text = campaign.memory.read_text(encoding="utf-8")
    progress = fs.read_memory(campaign.memory).section(PROGRESS) or []
    assert block in text
    assert any("(abc123, runtime=1.25)" in line for line in progress)


def test_memory_edit_of_a_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    path = tmp_path / "memory.md"
    with pytest.raises(FileNotFoundError) as caught:
        _edit(path)
    assert str(path) in str(caught.value)
    assert "ensure_memory_file" in str(caught.value)


def test_body_error_writes_nothing(campaign: Campaign) -> None:
    before = campaign.memory.read_bytes()

    def edit_then_fail() -> None:
        with fs.edit_memory(campaign.memory) as document:
            document.append(HYPOTHESES, "- half an idea")
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        edit_then_fail()
    assert campaign.memory.read_bytes() == before


# -- 4. the file system fails ------------------------------------------------


@dataclass(frozen=True)
class Write:
    """A write of one campaign file, as a caller would do it."""

    name: str
    target: Callable[[Campaign], Path]
    call: Callable[[Campaign], object]
    atomic: bool = True  # replaced through a temp file (else appended in place)


def _worker_memory(campaign: Campaign) -> Path:
    return fs.worker_memory_path(campaign.root)


def _event(campaign: Campaign) -> None:
    fs.record_campaign_event(campaign.memory, **EVENT)


WRITES = [
    Write("write_state", lambda c: c.state, lambda c: fs.write_state(c.state, {"new": True})),
    Write(
        "write_run_lock",
        lambda c: fs.run_lock_path(c.root),
        lambda c: fs.write_run_lock(fs.run_lock_path(c.root), {"pid": 1}),
    ),
    Write("record_campaign_event", lambda c: c.memory, _event),
    Write("edit_memory", lambda c: c.memory, lambda c: _edit(c.memory)),
    Write(
        "reset_worker_memory_file",
        _worker_memory,
        lambda c: fs.reset_worker_memory_file(_worker_memory(c), **WORKER_MEMORY_ARGS),
    ),
    Write(
        "append_result",
        lambda c: c.results,
        lambda c: fs.append_result(c.results, **ROW),
        atomic=False,
    ),
]
ATOMIC_WRITES = [write for write in WRITES if write.atomic]


@pytest.fixture
def full_campaign(campaign: Campaign) -> Campaign:
    """A campaign where every file of :data:`WRITES` exists, for "old content" checks."""
    fs.reset_worker_memory_file(_worker_memory(campaign), **WORKER_MEMORY_ARGS)
    # A dead holder on this host: stale, so write_run_lock may replace it.
    holder = {"pid": dead_pid(), "hostname": socket.gethostname()}
    fs.write_run_lock(fs.run_lock_path(campaign.root), holder)
    fs.append_result(campaign.results, **ROW)
    return campaign


def _snapshot(campaign: Campaign) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in campaign.optimize_root.iterdir()
        if path.is_file() and not path.name.endswith(".lock")
    }


def _fail_appends(monkeypatch: pytest.MonkeyPatch, code: int, after_bytes: int) -> None:
    """``os.write`` into a ledger (``*.tsv``) stops with ``code`` after ``after_bytes``."""
    real_open, real_write = os.open, os.write
    ledger_fds: set[int] = set()
    written = {"bytes": 0}

    def tracking_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        fd = real_open(path, flags, mode, **kwargs)
        if os.fspath(path).endswith(".tsv"):
            ledger_fds.add(fd)
        return fd

    def failing_write(fd: int, data: Any) -> int:
        if fd not in ledger_fds:
            return real_write(fd, data)
        room = after_bytes - written["bytes"]
        if room <= 0:
            raise OSError(code, os.strerror(code))
        count = real_write(fd, bytes(data[:room]))
        written["bytes"] += count
        return count

    monkeypatch.setattr(os, "open", tracking_open)
    monkeypatch.setattr(os, "write", failing_write)


HINTS = {errno.ENOSPC: "free some disk space", errno.EIO: "I/O error", errno.EXDEV: "retry"}


def _assert_write_failed_cleanly(
    caught: pytest.ExceptionInfo[OSError],
    code: int,
    campaign: Campaign,
    target: Path,
    before: dict[str, bytes],
) -> None:
    __tracebackhide__ = True
    message = str(caught.value)
    assert (caught.value.errno, str(target) in message, HINTS[code] in message) == (
        code,
        True,
        True,
    ), message
    assert _snapshot(campaign) == before
    assert temp_files(campaign.optimize_root) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO], ids=errno.errorcode.get)
@pytest.mark.parametrize("write", WRITES, ids=lambda write: write.name)
def test_write_error_mid_write_keeps_the_old_content(
    full_campaign: Campaign,
    faults: FaultInjector,
    monkeypatch: pytest.MonkeyPatch,
    write: Write,
    code: int,
) -> None:
    before = _snapshot(full_campaign)
    if write.atomic:
        faults.fail_write(code, after_bytes=10)
    else:
        _fail_appends(monkeypatch, code, after_bytes=10)
    with pytest.raises(OSError, match=r"\[Errno \d+\]") as caught:
        write.call(full_campaign)
    _assert_write_failed_cleanly(caught, code, full_campaign, write.target(full_campaign), before)


@pytest.mark.parametrize("write", ATOMIC_WRITES, ids=lambda write: write.name)
def test_fsync_error_keeps_the_old_content(
    full_campaign: Campaign, faults: FaultInjector, write: Write
) -> None:
    before = _snapshot(full_campaign)
    faults.fail_file_fsync()
    with pytest.raises(OSError, match=r"\[Errno \d+\]") as caught:
        write.call(full_campaign)
    _assert_write_failed_cleanly(
        caught, errno.EIO, full_campaign, write.target(full_campaign), before
    )


@pytest.mark.parametrize("write", ATOMIC_WRITES, ids=lambda write: write.name)
def test_rename_error_keeps_the_old_content(
    full_campaign: Campaign, faults: FaultInjector, write: Write
) -> None:
    before = _snapshot(full_campaign)
    faults.fail_replace()
    with pytest.raises(OSError, match=r"\[Errno \d+\]") as caught:
        write.call(full_campaign)
    _assert_write_failed_cleanly(
        caught, errno.EXDEV, full_campaign, write.target(full_campaign), before
    )


def test_symlink_at_a_dead_writers_temp_name_is_swept_not_followed(
    campaign: Campaign, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    planted = campaign.optimize_root / f".state.json.{_host_tag()}.{dead_pid()}.0badc0de.tmp"
    planted.symlink_to(victim)
    fs.write_state(campaign.state, {"iteration": 1})
    assert (victim.read_bytes(), os.path.lexists(planted)) == (b"precious", False)
    assert fs.read_json_file(campaign.state) == {"iteration": 1}


def test_symlink_at_the_exact_temp_name_is_never_written_through(
    campaign: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    before = campaign.state.read_bytes()
    monkeypatch.setattr(os, "urandom", lambda size: b"\x0b\xad\xc0\xde"[:size])
    planted = campaign.optimize_root / f".state.json.{_host_tag()}.{os.getpid()}.0badc0de.tmp"
    planted.symlink_to(victim)
    with pytest.raises(FileExistsError) as caught:
        fs.write_state(campaign.state, {"iteration": 1})
    assert (victim.read_bytes(), planted.is_symlink()) == (b"precious", True)
    assert campaign.state.read_bytes() == before
    assert str(campaign.state) in str(caught.value)
    assert "remove it" in str(caught.value)


def _host_tag() -> str:
    from fermilink_state._atomic import _host_tag as host_tag

    return host_tag()


# A read-only campaign, written by a process that really may not write it.


@pytest.fixture
def read_only_campaign() -> Iterator[Campaign]:
    """A campaign whose folder and files nobody may write (root's included, below)."""
    base = Path(tempfile.mkdtemp(prefix="fermilink-ro-"))
    base.chmod(0o755)  # the unprivileged child must reach the files
    campaign = seed_campaign(base / "project")
    fs.append_result(campaign.results, **ROW)  # creates the lock file too
    for path in campaign.optimize_root.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    campaign.optimize_root.chmod(0o555)
    try:
        yield campaign
    finally:
        for path in [campaign.optimize_root, *campaign.optimize_root.rglob("*")]:
            path.chmod(stat.S_IRWXU)
        shutil.rmtree(base)


def _raise_without_privileges(action: Callable[[], object]) -> dict[str, Any]:
    """Run ``action`` in a forked child without write rights; what did it raise?

    Root writes anywhere, so a root test run drops to ``nobody`` in the child
    (after the parent has imported everything the action needs).
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        outcome: dict[str, Any] = {"raised": None}
        try:
            os.close(reader)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            action()
        except BaseException as error:
            outcome = {
                "raised": type(error).__name__,
                "errno": getattr(error, "errno", None),
                "message": str(error),
            }
        os.write(writer, json.dumps(outcome).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as stream:
        data = stream.read()
    os.waitpid(pid, 0)
    return dict(json.loads(data))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork of a threaded process (3.12+)
@pytest.mark.parametrize("write", WRITES, ids=lambda write: write.name)
def test_read_only_campaign_gives_a_clear_error_and_keeps_the_data(
    read_only_campaign: Campaign, write: Write, tmp_path: Path
) -> None:
    campaign = read_only_campaign
    before = _snapshot(campaign)
    write.call(seed_campaign(tmp_path / "warm-up"))  # every lazy import, before the fork
    outcome = _raise_without_privileges(lambda: write.call(campaign))
    assert (outcome["raised"], outcome["errno"]) == ("PermissionError", errno.EACCES), outcome
    # The target itself, or its lock file (whose name starts with the target's).
    assert str(write.target(campaign)) in outcome["message"]
    assert "writable" in outcome["message"]
    assert _snapshot(campaign) == before


def test_lock_held_past_the_timeout_names_the_lock_and_changes_nothing(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "0.2")
    before = _snapshot(campaign)
    with lock_held_elsewhere(campaign.memory), pytest.raises(fs.StateLockTimeout) as caught:
        fs.record_campaign_event(campaign.memory, **EVENT)
    message = str(caught.value)
    assert f"{campaign.memory}.lock" in message
    assert "FERMILINK_STATE_LOCK_TIMEOUT" in message
    assert _snapshot(campaign) == before
