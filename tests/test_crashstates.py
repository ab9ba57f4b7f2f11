"""The crash-state engine's models, on hand-made operation lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from fermilink_state.testing._crashstates import (
    CrashStepError,
    FileOp,
    Recording,
    Tree,
    crash_states,
    materialize,
    record,
    simulate,
)

EMPTY = Tree(frozenset(), {})


def _recording(*ops: FileOp, initial: Tree = EMPTY) -> Recording:
    numbered = tuple(
        FileOp(index, op.kind, op.path, op.target, op.inode, op.offset, op.data, op.size)
        for index, op in enumerate(ops)
    )
    return Recording(Path("/nowhere"), initial, numbered, EMPTY)


def _contents(recording: Recording, model: str, name: str) -> set[bytes | None]:
    return {
        simulate(recording, state).files.get(name)
        for state in crash_states(recording, model)  # type: ignore[arg-type]
    }


def _atomic_write(*, sync_file: bool, sync_folder: bool) -> Recording:
    ops = [
        FileOp(0, "create", "d/.f.tmp", inode="new:1"),
        FileOp(0, "write", "d/.f.tmp", inode="new:1", data=b"new"),
    ]
    if sync_file:
        ops.append(FileOp(0, "fsync", "d/.f.tmp", inode="new:1"))
    ops.append(FileOp(0, "rename", "d/.f.tmp", target="d/f", inode="new:1"))
    if sync_folder:
        ops.append(FileOp(0, "sync_folder", "d"))
    return _recording(*ops, initial=Tree(frozenset({"d"}), {"d/f": b"old"}))


def test_a_kill_keeps_everything_issued_so_every_prefix_is_old_or_new() -> None:
    recording = _atomic_write(sync_file=False, sync_folder=False)
    assert _contents(recording, "kill", "d/f") == {b"old", b"new"}


def test_a_power_cut_after_an_unsynced_temp_was_renamed_can_leave_an_empty_file() -> None:
    recording = _atomic_write(sync_file=False, sync_folder=True)
    assert b"" in _contents(recording, "power", "d/f")


def test_a_power_cut_after_a_synced_temp_and_folder_leaves_old_or_new_only() -> None:
    recording = _atomic_write(sync_file=True, sync_folder=True)
    assert _contents(recording, "power", "d/f") == {b"old", b"new"}


def test_an_unsynced_write_is_dropped_cut_zeroed_or_garbled() -> None:
    recording = _recording(
        FileOp(0, "write", "log", inode="init:log", offset=4, data=b"row\n"),
        initial=Tree(frozenset(), {"log": b"one\n"}),
    )
    kinds = {
        state.kind: simulate(recording, state).files["log"]
        for state in crash_states(recording, "power", dedupe=False)
        if state.point == 1
    }
    assert kinds["prefix"] in (b"one\n", b"one\nrow\n")
    assert kinds["torn-cut"] == b"one\nro"
    assert kinds["torn-zeros"] == b"one\n\0\0\0\0"
    garbage = kinds["torn-garbage"]
    assert len(garbage) == 8
    assert garbage[4:] != b"row\n"
    assert b"\n" not in garbage[4:]


def test_a_new_folder_whose_parent_was_not_synced_takes_its_synced_files_with_it() -> None:
    recording = _recording(
        FileOp(0, "mkdir", "new"),
        FileOp(0, "create", "new/f", inode="new:1"),
        FileOp(0, "write", "new/f", inode="new:1", data=b"x"),
        FileOp(0, "fsync", "new/f", inode="new:1"),
        FileOp(0, "sync_folder", "new"),
    )
    assert None in _contents(recording, "power", "new/f")
    synced_parent = _recording(*recording.ops, FileOp(0, "sync_folder", "."))
    states = crash_states(synced_parent, "power", dedupe=False)
    everything_synced = [state for state in states if state.point == len(synced_parent.ops)]
    assert [simulate(synced_parent, state).files for state in everything_synced] == [
        {"new/f": b"x"}
    ]


def test_each_unsynced_operation_is_dropped_while_later_ones_persist() -> None:
    recording = _recording(
        FileOp(0, "create", "a", inode="new:1"),
        FileOp(0, "create", "b", inode="new:2"),
    )
    trees = {
        frozenset(simulate(recording, state).files) for state in crash_states(recording, "power")
    }
    assert frozenset({"b"}) in trees  # "a" dropped, the later "b" kept


def test_materialize_writes_the_state_into_a_fresh_folder(tmp_path: Path) -> None:
    recording = _atomic_write(sync_file=True, sync_folder=True)
    state = crash_states(recording, "kill")[-1]
    root = materialize(recording, state, tmp_path / "copy")
    assert (root / "d" / "f").read_bytes() == b"new"


def _raises(root: Path) -> None:
    raise RuntimeError(f"no good: {root.name}")


def test_a_step_that_raises_is_reported_with_its_traceback(tmp_path: Path) -> None:
    with pytest.raises(CrashStepError, match="no good: project"):
        record(_raises, tmp_path / "project")
    recording = record(_raises, tmp_path / "project", allow_error=True)
    assert "RuntimeError" in (recording.error or "")
