"""The atomic writer under fault injection, and every whole-file writer on top of it.

A failure at any step before the rename leaves the old file byte for byte and
no temp file; permissions are those of ``open()`` for a new file and the old
mode for a replaced one; planted symlinks are never followed; a dead writer's
temps are swept, nobody else's.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import fermilink_state
from fermilink_state import _atomic, _fileops
from fermilink_state._atomic import atomic_write_bytes, atomic_write_text, fsync_enabled
from support import FaultInjector, dead_pid, temp_litter

OLD = b'{\n  "old": true\n}\n'
NEW = b'{\n  "new": "content that is longer than the old one"\n}\n'


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """``state.json`` holding ``OLD``."""
    path = tmp_path / "state.json"
    path.write_bytes(OLD)
    return path


def _temp_name(target: Path, pid: int, random: str = "deadbeef") -> Path:
    return target.with_name(f"{_atomic.temp_prefix(target)}{pid}.{random}.tmp")


# ---------------------------------------------------------------------------
# The plain path
# ---------------------------------------------------------------------------


def test_write_replaces_the_content_and_leaves_no_temp(target: Path) -> None:
    atomic_write_bytes(target, NEW)
    assert (target.read_bytes(), temp_litter(target.parent)) == (NEW, [])


def test_write_creates_missing_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.json"
    atomic_write_text(path, "ü\r\n")
    assert path.read_bytes() == "ü\r\n".encode()


def test_text_is_written_as_utf8_with_newlines_untouched(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "m.md", "a\r\nb\rc\n✓")
    assert (tmp_path / "m.md").read_bytes() == "a\r\nb\rc\n✓".encode()


def test_temp_file_is_a_hidden_sibling_named_after_host_and_pid(
    target: Path, faults: FaultInjector
) -> None:
    opened: list[str] = []
    real_open = os.open

    def spy(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        opened.append(os.fspath(path))
        return real_open(path, flags, mode)

    faults.monkeypatch.setattr(os, "open", spy)
    atomic_write_bytes(target, NEW)
    [temp] = [Path(name) for name in opened if name.endswith(".tmp")]
    assert temp.parent == target.parent
    # The host as socket.gethostname() names it, characters unsafe in a file name as "_".
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())
    expected = rf"\.state\.json\.{re.escape(host)}\.{os.getpid()}\.[0-9a-f]{{8}}\.tmp"
    assert re.fullmatch(expected, temp.name), temp.name


# ---------------------------------------------------------------------------
# Fault injection: each step fails, the old file survives
# ---------------------------------------------------------------------------

STEP_FAILURES: dict[str, Callable[[FaultInjector], None]] = {
    "write_eio": lambda faults: faults.fail_write(errno.EIO),
    "write_enospc": lambda faults: faults.fail_write(errno.ENOSPC),
    "write_enospc_after_some_bytes": lambda faults: faults.fail_write(errno.ENOSPC, after_bytes=7),
    "write_eio_after_some_bytes": lambda faults: faults.fail_write(errno.EIO, after_bytes=20),
    "fsync_of_the_file": lambda faults: faults.fail_file_fsync(),
    "replace": lambda faults: faults.fail_replace(),
}


@pytest.mark.parametrize("step", list(STEP_FAILURES.values()), ids=list(STEP_FAILURES))
def test_failed_step_keeps_the_old_file_and_leaves_no_temp(
    target: Path, faults: FaultInjector, step: Callable[[FaultInjector], None]
) -> None:
    step(faults)
    with pytest.raises(OSError, match=r"state\.json"):
        atomic_write_bytes(target, NEW)
    assert (target.read_bytes(), temp_litter(target.parent)) == (OLD, [])


@pytest.mark.parametrize("step", list(STEP_FAILURES.values()), ids=list(STEP_FAILURES))
def test_failed_step_on_a_new_file_leaves_nothing(
    tmp_path: Path, faults: FaultInjector, step: Callable[[FaultInjector], None]
) -> None:
    step(faults)
    with pytest.raises(OSError, match=r"state\.json"):
        atomic_write_bytes(tmp_path / "state.json", NEW)
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC], ids=errno.errorcode.get)
def test_write_error_keeps_its_errno(target: Path, faults: FaultInjector, code: int) -> None:
    faults.fail_write(code)
    with pytest.raises(OSError, match=r"state\.json") as raised:
        atomic_write_bytes(target, NEW)
    assert raised.value.errno == code


def test_interrupt_mid_write_keeps_the_old_file_and_leaves_no_temp(
    target: Path, faults: FaultInjector
) -> None:
    def interrupted(fd: int, data: object) -> int:
        raise KeyboardInterrupt

    faults.monkeypatch.setattr(os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, NEW)
    assert (target.read_bytes(), temp_litter(target.parent)) == (OLD, [])


def test_failed_folder_fsync_raises_after_the_complete_new_file_is_in_place(
    target: Path, faults: FaultInjector
) -> None:
    # The rename has happened when the folder is synced: the file is whole and
    # new, but its durability is unknown, so the caller must hear about it.
    faults.fail_dir_fsync()
    with pytest.raises(OSError, match="directory fsync"):
        atomic_write_bytes(target, NEW)
    assert (target.read_bytes(), temp_litter(target.parent)) == (NEW, [])


def test_temp_name_taken_fails_naming_the_file_and_keeps_the_old_one(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _temp_name(target, os.getpid(), "deadbeef").mkdir()
    monkeypatch.setattr(os, "urandom", lambda size: b"\xde\xad\xbe\xef"[:size])
    with pytest.raises(FileExistsError, match=r"state\.json"):
        atomic_write_bytes(target, NEW)
    assert target.read_bytes() == OLD


def test_file_at_the_temp_name_is_neither_written_nor_renamed(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file already at the temp name is someone else's (a writer mid-write):
    # reusing it would mix our bytes into theirs and rename their file away.
    taken = _temp_name(target, os.getpid(), "deadbeef")
    taken.write_bytes(b"another writer's bytes")
    monkeypatch.setattr(os, "urandom", lambda size: b"\xde\xad\xbe\xef"[:size])
    with pytest.raises(FileExistsError, match=r"state\.json"):
        atomic_write_bytes(target, NEW)
    assert (target.read_bytes(), taken.read_bytes()) == (OLD, b"another writer's bytes")


# ---------------------------------------------------------------------------
# fsync switch
# ---------------------------------------------------------------------------


def test_fsync_on_syncs_the_file_and_its_folder_once_each(
    target: Path, faults: FaultInjector
) -> None:
    atomic_write_bytes(target, NEW)
    assert (faults.file_fsyncs, faults.dir_fsyncs) == (1, 1)


def test_fsync_off_skips_every_fsync_but_stays_atomic(
    target: Path, faults: FaultInjector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "0")
    atomic_write_bytes(target, NEW)
    assert (faults.file_fsyncs, faults.dir_fsyncs) == (0, 0)
    assert (target.read_bytes(), temp_litter(target.parent)) == (NEW, [])


def test_fsync_off_still_keeps_the_old_file_on_failure(
    target: Path, faults: FaultInjector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "0")
    faults.fail_write(errno.ENOSPC, after_bytes=3)
    with pytest.raises(OSError, match=r"state\.json"):
        atomic_write_bytes(target, NEW)
    assert (target.read_bytes(), temp_litter(target.parent)) == (OLD, [])


def test_not_durable_skips_every_fsync_whatever_the_switch_says(
    target: Path, faults: FaultInjector
) -> None:
    atomic_write_bytes(target, NEW, durable=False)
    assert (faults.file_fsyncs, faults.dir_fsyncs) == (0, 0)
    assert (target.read_bytes(), temp_litter(target.parent)) == (NEW, [])


def test_durable_syncs_even_when_the_switch_is_off(
    target: Path, faults: FaultInjector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "0")
    atomic_write_bytes(target, NEW, durable=True)
    assert (faults.file_fsyncs, faults.dir_fsyncs) == (1, 1)


def test_not_durable_still_keeps_the_old_file_on_failure(
    target: Path, faults: FaultInjector
) -> None:
    faults.fail_write(errno.EIO, after_bytes=3)
    with pytest.raises(OSError, match=r"state\.json"):
        atomic_write_bytes(target, NEW, durable=False)
    assert (target.read_bytes(), temp_litter(target.parent)) == (OLD, [])


@pytest.mark.parametrize(
    ("value", "enabled"),
    [("0", False), ("false", False), ("OFF", False), ("no", False), ("1", True), ("", True)],
)
def test_fsync_switch_is_read_at_each_call(
    monkeypatch: pytest.MonkeyPatch, value: str, enabled: bool
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", value)
    assert fsync_enabled() is enabled


def test_fsync_is_on_when_the_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FERMILINK_STATE_FSYNC", raising=False)
    assert fsync_enabled() is True


# ---------------------------------------------------------------------------
# Permissions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002, 0o027], ids=oct)
def test_new_file_gets_what_open_would_give_it(
    tmp_path: Path, set_umask: Callable[[int], int], umask: int
) -> None:
    set_umask(umask)
    atomic_write_bytes(tmp_path / "ours.json", NEW)
    (tmp_path / "plain.json").write_bytes(NEW)
    ours = (tmp_path / "ours.json").stat().st_mode & 0o7777
    plain = (tmp_path / "plain.json").stat().st_mode & 0o7777
    assert oct(ours) == oct(0o666 & ~umask) == oct(plain)


@pytest.mark.parametrize("mode", [0o600, 0o755, 0o640, 0o444], ids=oct)
def test_replaced_file_keeps_its_mode(
    target: Path, set_umask: Callable[[int], int], mode: int
) -> None:
    set_umask(0o022)
    target.chmod(mode)
    atomic_write_bytes(target, NEW)
    assert (oct(target.stat().st_mode & 0o7777), target.read_bytes()) == (oct(mode), NEW)


# ---------------------------------------------------------------------------
# Symlinks are never followed
# ---------------------------------------------------------------------------


def test_symlink_at_the_would_be_temp_name_is_not_followed(
    target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    planted = _temp_name(target, os.getpid(), "abababab")
    planted.symlink_to(victim)
    monkeypatch.setattr(os, "urandom", lambda size: b"\xab" * size)
    with pytest.raises(FileExistsError):
        atomic_write_bytes(target, NEW)
    assert (victim.read_bytes(), target.read_bytes(), planted.is_symlink()) == (
        b"precious",
        OLD,
        True,
    )


def test_symlink_to_a_missing_file_at_the_temp_name_is_not_followed(
    target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dangling link is what O_CREAT alone would follow to create the victim.
    victim = tmp_path / "created-through-link.txt"
    _temp_name(target, os.getpid(), "abababab").symlink_to(victim)
    monkeypatch.setattr(os, "urandom", lambda size: b"\xab" * size)
    with pytest.raises(FileExistsError):
        atomic_write_bytes(target, NEW)
    assert not victim.exists()


def test_dead_writers_symlink_at_the_temp_prefix_is_removed_not_followed(
    target: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    planted = _temp_name(target, dead_pid())
    planted.symlink_to(victim)
    atomic_write_bytes(target, NEW)
    assert (victim.read_bytes(), os.path.lexists(planted), target.read_bytes()) == (
        b"precious",
        False,
        NEW,
    )


def test_live_writers_symlink_at_the_temp_prefix_is_left_alone(
    target: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    planted = _temp_name(target, os.getppid())
    planted.symlink_to(victim)
    atomic_write_bytes(target, NEW)
    assert (victim.read_bytes(), planted.is_symlink(), target.read_bytes()) == (
        b"precious",
        True,
        NEW,
    )


def test_symlink_at_the_target_is_replaced_not_written_through(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    link = tmp_path / "state.json"
    link.symlink_to(victim)
    atomic_write_bytes(link, NEW)
    assert (victim.read_bytes(), link.is_symlink(), link.read_bytes()) == (
        b"precious",
        False,
        NEW,
    )


# ---------------------------------------------------------------------------
# Sweeping the temps of dead writers
# ---------------------------------------------------------------------------


def test_temps_of_a_dead_writer_on_this_host_are_swept(target: Path) -> None:
    leftovers = [_temp_name(target, dead_pid(), random) for random in ("00000000", "ffffffff")]
    for leftover in leftovers:
        leftover.write_bytes(b"half a wri")
    atomic_write_bytes(target, NEW)
    assert [path.exists() for path in leftovers] == [False, False]


def test_not_durable_write_leaves_the_sweep_to_the_next_durable_one(target: Path) -> None:
    leftover = _temp_name(target, dead_pid())
    leftover.write_bytes(b"half a wri")
    atomic_write_bytes(target, NEW, durable=False)
    assert leftover.exists()
    atomic_write_bytes(target, NEW)
    assert not leftover.exists()


@pytest.mark.parametrize(
    "name",
    [
        "live_parent",
        "this_process",
        "other_host",
        "host_named_like_ours_plus_a_dot",
        "other_target",
        "not_a_temp_name",
    ],
)
def test_other_temps_are_not_swept(target: Path, name: str) -> None:
    prefix = _atomic.temp_prefix(target)
    leftover = {
        "live_parent": _temp_name(target, os.getppid()),
        "this_process": _temp_name(target, os.getpid()),
        "other_host": target.with_name(f".state.json.elsewhere.{dead_pid()}.deadbeef.tmp"),
        # Host "<ours>.<n>" where n is no pid here: must not read as our pid n.
        "host_named_like_ours_plus_a_dot": target.with_name(
            f"{prefix}{dead_pid()}.{os.getpid()}.deadbeef.tmp"
        ),
        "other_target": _temp_name(target.with_name("results.tsv"), dead_pid()),
        "not_a_temp_name": target.with_name(f"{prefix}{dead_pid()}.deadbeef.tmp.keep"),
    }[name]
    leftover.write_bytes(b"someone's data")
    atomic_write_bytes(target, NEW)
    assert leftover.read_bytes() == b"someone's data"


def test_sweep_happens_on_the_next_write_of_the_same_file_only(target: Path) -> None:
    leftover = _temp_name(target, dead_pid())
    leftover.write_bytes(b"x")
    atomic_write_bytes(target.with_name("other.json"), NEW)
    assert leftover.exists()


# ---------------------------------------------------------------------------
# Threads of one process
# ---------------------------------------------------------------------------


def test_concurrent_threads_leave_one_whole_payload_and_no_temp(target: Path) -> None:
    payloads = [bytes([65 + number]) * (1000 + number) for number in range(8)]
    errors: list[BaseException] = []

    def writer(payload: bytes) -> None:
        try:
            for _ in range(25):
                atomic_write_bytes(target, payload)
        except BaseException as error:  # re-raised in the main thread below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(payload,)) for payload in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert target.read_bytes() in payloads
    assert temp_litter(target.parent) == []


# ---------------------------------------------------------------------------
# Every whole-file writer of the package: a failure mid-write leaves the old content
# ---------------------------------------------------------------------------

TEMPLATE_ARGUMENTS = {
    "package_id": "p",
    "benchmark_id": "b",
    "benchmark_rel": "b.yaml",
}


def _memory(root: Path) -> Path:
    path = root / "memory.md"
    fermilink_state.ensure_memory_file(path, optimize_branch="o", **TEMPLATE_ARGUMENTS)
    return path


def _worker(root: Path) -> Path:
    path = root / "worker_memory.md"
    fermilink_state.reset_worker_memory_file(
        path,
        program_rel="program.md",
        controller_memory_rel="memory.md",
        results_rel="results.tsv",
        worker_iteration=1,
        **TEMPLATE_ARGUMENTS,
    )
    return path


def _record_event(path: Path) -> None:
    fermilink_state.record_campaign_event(
        path,
        commit="c",
        primary_metric_name="m",
        primary_metric_value=1.5,
        status="accepted",
        description="d",
    )


def _edit_memory(path: Path) -> None:
    with fermilink_state.edit_memory(path) as document:
        document.append("### Progress log", "- edited")


def _archive(root: Path) -> Path:
    _worker(root)
    (root / "runs").mkdir(exist_ok=True)
    archive = root / "runs" / "worker_memory.md"
    archive.write_text("previous archive\n")
    return archive


def _run_lock_file(root: Path) -> Path:
    path = fermilink_state.run_lock_path(root)
    # A stale holder on this host, so acquire_run_lock takes over and writes.
    fermilink_state.write_run_lock(path, {"pid": dead_pid(), "hostname": socket.gethostname()})
    return path


# name -> (set up and return the file, the write that must fail)
WRITERS: dict[str, tuple[Callable[[Path], Path], Callable[[Path, Path], object]]] = {
    "write_json_file": (
        lambda root: _seeded(root / "x.json", OLD),
        lambda root, path: fermilink_state.write_json_file(path, {"new": 1}),
    ),
    "write_state": (
        lambda root: _seeded(root / "state.json", OLD),
        lambda root, path: fermilink_state.write_state(path, {"new": 1}),
    ),
    "write_run_lock": (
        lambda root: _seeded(root / "run.lock.json", OLD),
        lambda root, path: fermilink_state.write_run_lock(path, {"pid": 1}),
    ),
    "acquire_run_lock": (
        _run_lock_file,
        lambda root, path: fermilink_state.acquire_run_lock(root),
    ),
    "ensure_memory_file": (
        lambda root: root / "memory.md",
        lambda root, path: fermilink_state.ensure_memory_file(
            path, optimize_branch="o", **TEMPLATE_ARGUMENTS
        ),
    ),
    "reset_worker_memory_file": (
        _worker,
        lambda root, path: fermilink_state.reset_worker_memory_file(
            path,
            program_rel="p.md",
            controller_memory_rel="m.md",
            results_rel="r.tsv",
            worker_iteration=2,
            **TEMPLATE_ARGUMENTS,
        ),
    ),
    "archive_worker_memory": (
        _archive,
        lambda root, path: fermilink_state.archive_worker_memory(
            root / "worker_memory.md", root / "runs"
        ),
    ),
    "ensure_program_file": (
        lambda root: root / "program.md",
        lambda root, path: fermilink_state.ensure_program_file(path, content="# Program\n"),
    ),
    "ensure_results_file": (
        lambda root: root / "results.tsv",
        lambda root, path: fermilink_state.ensure_results_file(path),
    ),
    "record_campaign_event": (_memory, lambda root, path: _record_event(path)),
    "edit_memory": (_memory, lambda root, path: _edit_memory(path)),
}


def _seeded(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _snapshot(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC], ids=errno.errorcode.get)
@pytest.mark.parametrize(("setup", "write"), list(WRITERS.values()), ids=list(WRITERS))
def test_writer_failing_mid_write_leaves_the_old_content(
    tmp_path: Path,
    faults: FaultInjector,
    setup: Callable[[Path], Path],
    write: Callable[[Path, Path], object],
    code: int,
) -> None:
    path = setup(tmp_path)
    before = _snapshot(path)
    faults.fail_write(code, after_bytes=5)
    with pytest.raises(OSError, match=re.escape(path.name)) as raised:
        write(tmp_path, path)
    assert raised.value.errno == code
    assert (_snapshot(path), temp_litter(tmp_path)) == (before, [])


@pytest.mark.parametrize(("setup", "write"), list(WRITERS.values()), ids=list(WRITERS))
def test_writer_succeeds_after_an_earlier_failure(
    tmp_path: Path,
    faults: FaultInjector,
    setup: Callable[[Path], Path],
    write: Callable[[Path, Path], object],
) -> None:
    path = setup(tmp_path)
    before = _snapshot(path)
    faults.fail_replace()
    with pytest.raises(OSError, match=re.escape(path.name)):
        write(tmp_path, path)
    faults.monkeypatch.undo()
    write(tmp_path, path)
    assert _snapshot(path) not in (before, None)
    assert temp_litter(tmp_path) == []


# -- details the mutation run found unchecked (mutations/MUTMUT.md) --------------


def test_sync_folder_syncs_the_folder_once_and_no_file(
    tmp_path: Path, faults: FaultInjector
) -> None:
    _fileops.sync_folder(tmp_path)
    assert (faults.file_fsyncs, faults.dir_fsyncs) == (0, 1)


def test_large_checked_write_with_fsync_on_starts_writeback_and_lands_whole(
    target: Path, faults: FaultInjector
) -> None:
    # From 64 KiB on, the disk starts writing while the check runs.
    advised: list[tuple[int, int, int]] = []
    real_fadvise = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((offset, length, advice))
        real_fadvise(fd, offset, length, advice)

    faults.monkeypatch.setattr(os, "posix_fadvise", spy)
    _atomic.atomic_write_chunks(target, [b"small"], check=lambda: None)
    assert advised == [], "a small file's pages had better stay cached"
    data = os.urandom(64 * 1024)  # exactly the threshold
    checked: list[bool] = []
    _atomic.atomic_write_chunks(
        target, [data[:1000], data[1000:]], check=lambda: checked.append(True)
    )
    assert (target.read_bytes() == data, checked, faults.file_fsyncs) == (True, [True], 2)
    assert advised == [(0, 0, os.POSIX_FADV_DONTNEED)]


def test_chunks_are_written_whole_and_in_order(target: Path) -> None:
    # More pieces than one writev call takes, empty ones among them, and
    # memoryviews as an edit passes slices of the old file.
    pieces: list[bytes | memoryview] = [
        memoryview(bytes([65 + number % 26]) * (number * 37 % 300)) for number in range(150)
    ]
    pieces[3] = b""
    _atomic.atomic_write_chunks(target, pieces)
    assert target.read_bytes() == b"".join(bytes(piece) for piece in pieces)


def test_short_writes_are_resumed_where_they_stopped(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A writev may write less than asked (a signal, a pipe, a full quota).
    real_write = os.write

    def short_writev(fd: int, buffers: list[memoryview]) -> int:
        return real_write(fd, bytes(buffers[0])[:7])

    monkeypatch.setattr(os, "writev", short_writev)
    pieces = [b"a" * 50, b"b" * 20, b"c" * 3, b"d" * 9]
    _atomic.atomic_write_chunks(target, pieces)
    assert target.read_bytes() == b"".join(pieces)


def test_sweep_returns_what_it_removed(target: Path) -> None:
    leftover = _temp_name(target, dead_pid())
    leftover.write_bytes(b"x")
    assert _atomic.sweep_dead_temps(target) == [leftover]


def test_sweep_skips_a_temp_it_cannot_remove(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another sweeper removed the temp between the scan and the unlink: not
    # an error, and not reported as removed by this sweep.
    leftover = _temp_name(target, dead_pid())
    leftover.write_bytes(b"x")

    def already_gone(path: str | os.PathLike[str]) -> None:
        raise FileNotFoundError(errno.ENOENT, "swept by another writer", os.fspath(path))

    monkeypatch.setattr(_fileops, "unlink", already_gone)
    assert _atomic.sweep_dead_temps(target) == []


def test_failed_write_reports_its_own_error_when_the_temp_is_already_gone(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rename fails and the temp's cleanup fails too (swept meanwhile): the
    # caller gets the rename's error, explained, and the target is untouched.
    def no_rename(source: object, destination: object) -> None:
        raise PermissionError(errno.EACCES, "rename refused", os.fspath(target))

    def already_gone(path: str | os.PathLike[str]) -> None:
        raise FileNotFoundError(errno.ENOENT, "swept by another writer", os.fspath(path))

    before = target.read_bytes()
    monkeypatch.setattr(_fileops, "replace", no_rename)
    monkeypatch.setattr(_fileops, "unlink", already_gone)
    with pytest.raises(PermissionError) as caught:
        atomic_write_bytes(target, NEW)
    assert not isinstance(caught.value, FileNotFoundError)
    assert caught.value.errno == errno.EACCES
    assert target.read_bytes() == before


def test_sweep_goes_through_every_entry_of_the_folder(target: Path) -> None:
    # Dead temps among other files and a live writer's temp: all dead ones go.
    dead = dead_pid()
    leftovers = [_temp_name(target, dead, f"{n:08x}") for n in range(20)]
    others = [target.with_name(f"other-{n}.txt") for n in range(20)]
    live = _temp_name(target, os.getppid())
    for path in [*leftovers, *others, live]:
        path.write_bytes(b"x")
    atomic_write_bytes(target, NEW)
    assert [path for path in leftovers if path.exists()] == []
    assert all(path.exists() for path in [*others, live])


def test_a_refused_writeback_hint_does_not_fail_the_write(
    target: Path, faults: FaultInjector
) -> None:
    # The hint is advice: a filesystem that rejects it still gets the write.
    def refuse(fd: int, offset: int, length: int, advice: int) -> None:
        raise OSError(errno.EINVAL, "fadvise not supported")

    faults.monkeypatch.setattr(os, "posix_fadvise", refuse)
    data = os.urandom(64 * 1024)
    _atomic.atomic_write_chunks(target, [data], check=lambda: None)
    assert target.read_bytes() == data
