"""Durability without the explorer: torn ledger tails, record_iteration, the fsync switch."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fermilink_state as fs
from fermilink_state import _fileops, _iteration
from fermilink_state._locking import file_lock
from fermilink_state.testing import OptimizeProject
from support_strace import run_writers

HEADER = "iteration\tcommit\tstatus\tprimary_metric_name\tprimary_metric_value\tdescription\n"
BASELINE = "0\tbase\tbaseline\truntime\t3\tbaseline\n"
ROW: dict[str, Any] = {
    "iteration": 7,
    "commit": "c7",
    "status": "accepted",
    "primary_metric_name": "runtime",
    "primary_metric_value": 1.5,
    "description": "seven",
}
ROW_LINE = "7\tc7\taccepted\truntime\t1.5\tseven\n"
TAILS = {
    "partial-row": b"1\tc1\trej",
    "nul-run": b"\0" * 40,
    "garbage": b"\xff\xfe\x07junk\x9c",
    "cut-then-zeros": b"1\tc1\t" + b"\0" * 12,
}


def _ledger(tmp_path: Path, tail: bytes) -> Path:
    path = tmp_path / "results.tsv"
    path.write_bytes((HEADER + BASELINE).encode() + tail)
    return path


@pytest.mark.parametrize("tail", TAILS.values(), ids=TAILS.keys())
def test_a_torn_tail_fails_the_strict_reader_naming_its_line(tmp_path: Path, tail: bytes) -> None:
    path = _ledger(tmp_path, tail)
    with pytest.raises(fs.StateCorruptError) as caught:
        fs.read_results(path)
    assert caught.value.line == 3
    assert "torn by a crash" in str(caught.value)


@pytest.mark.parametrize("tail", TAILS.values(), ids=TAILS.keys())
def test_the_lenient_reader_skips_a_torn_tail_with_a_warning(tmp_path: Path, tail: bytes) -> None:
    path = _ledger(tmp_path, tail)
    with pytest.warns(fs.StateCorruptWarning, match=r":3: "):
        rows = fs.read_results(path, strict=False)
    assert [row.commit for row in rows] == ["base"]


@pytest.mark.parametrize("tail", TAILS.values(), ids=TAILS.keys())
def test_recent_results_text_reads_past_a_torn_tail(tmp_path: Path, tail: bytes) -> None:
    path = _ledger(tmp_path, tail)
    text = fs.recent_results_text(path, limit=8)
    assert text.splitlines()[:2] == [HEADER.rstrip("\n"), BASELINE.rstrip("\n")]


NOT_ONLY_NUL = {name: tail for name, tail in TAILS.items() if tail.strip(b"\0")}


@pytest.mark.parametrize("tail", NOT_ONLY_NUL.values(), ids=NOT_ONLY_NUL.keys())
def test_the_next_append_cuts_a_torn_tail_and_keeps_its_bytes_aside(
    tmp_path: Path, tail: bytes
) -> None:
    path = _ledger(tmp_path, tail)
    with pytest.warns(fs.StateCorruptWarning, match="torn by a crash"):
        fs.append_result(path, **ROW)
    assert path.read_bytes() == (HEADER + BASELINE + ROW_LINE).encode()
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert [p.read_bytes() for p in aside] == [tail]


def test_a_nul_run_is_cut_without_a_file_aside(tmp_path: Path) -> None:
    path = _ledger(tmp_path, b"\0" * 4096)
    fs.append_result(path, **ROW)
    assert path.read_bytes() == (HEADER + BASELINE + ROW_LINE).encode()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        "results.tsv"
    ]


def test_a_ledger_of_nul_bytes_gets_its_header_back(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_bytes(b"\0" * 100)
    fs.append_result(path, **ROW)
    assert path.read_bytes() == (HEADER + ROW_LINE).encode()


def test_a_whole_last_row_without_its_line_break_is_kept(tmp_path: Path) -> None:
    path = _ledger(tmp_path, b"1\tc1\trejected\truntime\t2\tone")
    fs.append_result(path, **ROW)
    assert path.read_text() == HEADER + BASELINE + "1\tc1\trejected\truntime\t2\tone\n" + ROW_LINE
    assert [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name] == []


def test_a_torn_tail_longer_than_a_read_block_is_found(tmp_path: Path) -> None:
    path = _ledger(tmp_path, b"x" * 50_000)
    with pytest.warns(fs.StateCorruptWarning):
        fs.append_results(path, [ROW, ROW])
    assert path.read_bytes() == (HEADER + BASELINE + ROW_LINE + ROW_LINE).encode()


# ---------------------------------------------------------- record_iteration


def test_record_iteration_writes_the_row_then_the_event_then_the_state(
    seeded_project: OptimizeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    for name in ("append_result", "record_campaign_event", "write_state"):
        real = getattr(_iteration, name)

        def spy(
            *args: object, _real: Callable[..., None] = real, _name: str = name, **kw: object
        ) -> None:
            order.append(_name)
            _real(*args, **kw)

        monkeypatch.setattr(_iteration, name, spy)
    event = {key: value for key, value in ROW.items() if key != "iteration"}
    fs.record_iteration(seeded_project.root, row=ROW, event=event, state={"iteration": 7})
    assert order == ["append_result", "record_campaign_event", "write_state"]
    assert seeded_project.results_path.read_text().endswith(ROW_LINE)
    assert "seven (c7, runtime=1.5)" in seeded_project.memory_path.read_text()
    assert fs.read_json_file(seeded_project.state_path) == {"iteration": 7}


def test_record_iteration_without_event_or_state_writes_only_the_row(
    seeded_project: OptimizeProject,
) -> None:
    before = seeded_project.snapshot()
    fs.record_iteration(seeded_project.root, row=ROW)
    assert before.diff(seeded_project.snapshot()) == [Path(".fermilink-optimize/results.tsv")]


# ------------------------------------------------------------ the fsync switch


def _count_syncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name)

        def counting(fd: int, _real: Callable[[int], None] = real, _name: str = name) -> None:
            calls.append(_name)
            _real(fd)

        monkeypatch.setattr(os, name, counting)
    return calls


def test_with_fsync_off_no_writer_makes_a_sync_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "0")
    calls = _count_syncs(monkeypatch)
    run_writers(str(tmp_path / "project"))
    assert calls == []


def test_with_fsync_on_every_writer_syncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "1")
    calls = _count_syncs(monkeypatch)
    run_writers(str(tmp_path / "project"))
    assert "fdatasync" in calls
    assert len(calls) > 20


@pytest.mark.parametrize("fsync", ["1", "0"])
def test_make_folders_makes_each_new_folder_durable_in_its_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: str
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", fsync)
    synced: list[str] = []
    monkeypatch.setattr(_fileops, "sync_folder", lambda folder: synced.append(os.fspath(folder)))
    created = _fileops.make_folders(tmp_path / "a" / "b" / "c")
    expected = [str(tmp_path / "a" / "b" / "c"), str(tmp_path / "a" / "b"), str(tmp_path / "a")]
    assert created == expected[::-1]
    # With fsync off, no sync at all; with it on, every new folder's parent.
    assert sorted(synced) == (sorted([str(tmp_path), *expected[1:]]) if fsync == "1" else [])
    synced.clear()
    assert _fileops.make_folders(tmp_path / "a" / "b") == []
    assert synced == []


def test_an_append_syncs_after_releasing_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Group commit: appenders waiting for the lock write while this one syncs,
    # so their syncs overlap and the file system commits them together.
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "1")
    path = _ledger(tmp_path, b"")
    held_while_syncing: list[bool] = []
    monkeypatch.setattr(
        _fileops, "fdatasync", lambda fd: held_while_syncing.append(file_lock(path).is_locked)
    )
    fs.append_result(path, **ROW)
    fs.append_results(path, [ROW])
    assert held_while_syncing == [False, False]
