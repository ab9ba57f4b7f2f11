"""Inter-process locks on campaign files: who takes them, for how long, and how they fail."""

from __future__ import annotations

import concurrent.futures
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from filelock import SoftFileLock, Timeout

import fermilink_state as fs
from fermilink_state import _filesystems, _locking, _results
from fermilink_state._filesystems import Filesystem
from support import WORKER_MEMORY_ARGS
from support_concurrency import MP, Campaign, lock_held_elsewhere, seed_campaign

pytestmark = pytest.mark.timeout(60)

ROW: dict[str, Any] = {
    "iteration": 1,
    "commit": "abc123",
    "status": "accepted",
    "primary_metric_name": "runtime",
    "primary_metric_value": 1.5,
    "description": "one row",
}
# ROW as a ledger line, spelled out here rather than formatted by the code under test.
ROW_LINE = "1\tabc123\taccepted\truntime\t1.5\tone row\n"
MEMORY_SEED: dict[str, Any] = {
    "package_id": "pkg",
    "benchmark_id": "bench",
    "benchmark_rel": "bench/benchmark.yaml",
    "optimize_branch": "optimize/x",
}


@pytest.fixture
def campaign(tmp_path: Path) -> Campaign:
    """A seeded campaign: memory, ledger with header, state."""
    return seed_campaign(tmp_path / "project")


@pytest.fixture
def soft_campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Campaign:
    """A campaign created and written with ``FERMILINK_STATE_LOCK=soft``.

    Not a flock campaign switched to soft: the flock backend's lock files
    persist, empty, and a soft lock reads an empty marker as held.
    """
    monkeypatch.setenv("FERMILINK_STATE_LOCK", "soft")
    return seed_campaign(tmp_path / "project")


def _event(path: Path) -> None:
    fs.record_campaign_event(
        path,
        commit="abc123",
        primary_metric_name="runtime",
        primary_metric_value=1.5,
        status="accepted",
        description="an event",
    )


def _edit(path: Path) -> None:
    with fs.edit_memory(path) as document:
        document.append("### Open hypotheses", "- try a smaller grid")


def _no_setup(campaign: Campaign) -> None:
    del campaign


@dataclass(frozen=True)
class LockedCall:
    """An API call that must hold the lock of ``target`` while it writes."""

    name: str
    target: Callable[[Campaign], Path]
    call: Callable[[Campaign], object]
    setup: Callable[[Campaign], object] = _no_setup
    written: Callable[[Campaign], Path] | None = None  # the file it writes, if not target

    def output(self, campaign: Campaign) -> Path:
        """The file this call changes."""
        return (self.written or self.target)(campaign)


def _worker_memory(campaign: Campaign) -> Path:
    return fs.worker_memory_path(campaign.root)


LOCKED_CALLS = [
    LockedCall("append_result", lambda c: c.results, lambda c: fs.append_result(c.results, **ROW)),
    LockedCall(
        "append_results", lambda c: c.results, lambda c: fs.append_results(c.results, [ROW, ROW])
    ),
    LockedCall("record_campaign_event", lambda c: c.memory, lambda c: _event(c.memory)),
    LockedCall("edit_memory", lambda c: c.memory, lambda c: _edit(c.memory)),
    LockedCall(
        "reset_worker_memory_file",
        _worker_memory,
        lambda c: fs.reset_worker_memory_file(_worker_memory(c), **WORKER_MEMORY_ARGS),
    ),
    LockedCall(
        "archive_worker_memory",
        _worker_memory,
        lambda c: fs.archive_worker_memory(_worker_memory(c), fs.runs_root(c.root) / "iter_0001"),
        setup=lambda c: fs.reset_worker_memory_file(_worker_memory(c), **WORKER_MEMORY_ARGS),
        written=lambda c: fs.runs_root(c.root) / "iter_0001" / fs.WORKER_MEMORY_FILENAME,
    ),
    LockedCall(
        "ensure_memory_file",
        lambda c: c.optimize_root / "fresh-memory.md",
        lambda c: fs.ensure_memory_file(c.optimize_root / "fresh-memory.md", **MEMORY_SEED),
    ),
    LockedCall(
        "ensure_results_file",
        lambda c: c.optimize_root / "fresh-results.tsv",
        lambda c: fs.ensure_results_file(c.optimize_root / "fresh-results.tsv"),
    ),
    LockedCall(
        "ensure_program_file",
        lambda c: fs.default_program_path(c.root),
        lambda c: fs.ensure_program_file(fs.default_program_path(c.root), content="# program\n"),
    ),
    LockedCall(
        "acquire_run_lock",
        lambda c: fs.run_lock_path(c.root),
        lambda c: fs.acquire_run_lock(c.root),
    ),
    LockedCall(
        "release_run_lock",
        lambda c: fs.run_lock_path(c.root),
        lambda c: fs.release_run_lock(c.root),
        setup=lambda c: fs.acquire_run_lock(c.root),
    ),
]


def _bytes_or_none(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


@pytest.mark.parametrize("operation", LOCKED_CALLS, ids=lambda operation: operation.name)
def test_call_waits_for_the_file_lock(
    operation: LockedCall, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    operation.setup(campaign)
    target = operation.target(campaign)
    before = _bytes_or_none(operation.output(campaign))
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "0.3")
    with lock_held_elsewhere(target), pytest.raises(fs.StateLockTimeout) as caught:
        operation.call(campaign)
    assert caught.value.lock_file == os.path.abspath(fs.lock_path_for(target))
    assert _bytes_or_none(operation.output(campaign)) == before, "it wrote without the lock"


@pytest.mark.parametrize("operation", LOCKED_CALLS, ids=lambda operation: operation.name)
def test_call_proceeds_once_the_lock_is_free(
    operation: LockedCall, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The call starts while another process holds the lock: it must write
    # nothing while it waits, then do its work once the lock is released.
    operation.setup(campaign)
    output = operation.output(campaign)
    before = _bytes_or_none(output)
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "30")
    failures: list[BaseException] = []

    def call() -> None:
        try:
            operation.call(campaign)
        except BaseException as error:  # reported by the asserts below
            failures.append(error)

    caller = threading.Thread(target=call)
    with lock_held_elsewhere(operation.target(campaign)):
        caller.start()
        caller.join(0.5)
        still_waiting = caller.is_alive()
        unchanged_while_held = _bytes_or_none(output) == before
    caller.join(30)
    assert (still_waiting, unchanged_while_held, failures) == (True, True, []), (
        "the call did not wait for the lock"
    )
    assert _bytes_or_none(output) != before, "the call did nothing once the lock was free"


def test_lock_files_persist_after_release(campaign: Campaign) -> None:
    fs.append_result(campaign.results, **ROW)
    _edit(campaign.memory)
    assert fs.lock_path_for(campaign.results).is_file()
    assert fs.lock_path_for(campaign.memory).is_file()


def test_default_backend_is_flock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FERMILINK_STATE_LOCK", raising=False)
    assert fs.lock_backend() == "flock"
    assert not isinstance(_locking.file_lock(tmp_path / "a.txt"), SoftFileLock)


@pytest.mark.parametrize("backend", ["flock", "strict"])
def test_a_lock_that_leaves_its_file_is_worth_a_look_once_used(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", backend)
    path = tmp_path / "memory.md"
    assert not _locking.lock_may_be_in_use(path)
    with fs.locked(path):
        pass
    assert _locking.lock_may_be_in_use(path)


def test_a_soft_lock_is_always_worth_a_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", "soft")
    path = tmp_path / "memory.md"
    assert _locking.lock_may_be_in_use(path)
    with fs.locked(path):
        pass
    assert not fs.lock_path_for(path).exists()  # nothing tells, so a look is always due
    assert _locking.lock_may_be_in_use(path)


def test_no_lock_is_worth_a_look_without_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", "soft")
    assert not _locking.lock_may_be_in_use(tmp_path / "missing" / "memory.md")


def test_soft_env_selects_soft_file_lock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", "soft")
    assert fs.lock_backend() == "soft"
    assert isinstance(_locking.file_lock(tmp_path / "a.txt"), SoftFileLock)


def test_a_folder_has_the_backend_of_its_own_filesystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An NFS mount point in a local folder: its files are on NFS, its parent is not.
    mount = tmp_path / "mnt"
    mount.mkdir()
    monkeypatch.delenv("FERMILINK_STATE_LOCK", raising=False)

    def filesystem_of(folder: str) -> Filesystem:
        inside = Path(folder) == mount or mount in Path(folder).parents
        return Filesystem("nfs4", shared=True) if inside else Filesystem("ext4", shared=False)

    monkeypatch.setattr(_filesystems, "filesystem_of", filesystem_of)
    assert fs.lock_backend(mount) == "strict"


def test_a_lock_in_a_folder_not_made_yet_is_of_the_chosen_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", "soft")
    assert isinstance(_locking.file_lock(tmp_path / "later" / "a.txt"), SoftFileLock)


def test_a_path_looked_up_before_is_not_probed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lock of a path is found again without a look at the filesystem: an
    # append is only ~10 us of work besides its lock.
    monkeypatch.delenv("FERMILINK_STATE_LOCK", raising=False)
    path = tmp_path / "results.tsv"
    first = _locking.file_lock(path)
    probed: list[str] = []

    def filesystem_of(folder: str) -> Filesystem:
        probed.append(folder)
        return Filesystem("ext4", shared=False)

    monkeypatch.setattr(_filesystems, "filesystem_of", filesystem_of)
    assert _locking.file_lock(path) is first
    assert probed == []


def test_a_lock_file_that_cannot_be_made_says_nothing_was_changed(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    lock_file = tmp_path / "state.json.lock"
    lock_file.mkdir()  # in the lock file's place: it cannot be opened for writing
    with pytest.raises(IsADirectoryError) as caught, fs.locked(path):
        pass
    assert "; nothing was changed; " in str(caught.value)
    assert caught.value.filename == str(lock_file)


def test_soft_lock_excludes_another_process(
    soft_campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "0.3")
    before = soft_campaign.results.read_bytes()
    with lock_held_elsewhere(soft_campaign.results), pytest.raises(fs.StateLockTimeout):
        fs.append_result(soft_campaign.results, **ROW)
    assert soft_campaign.results.read_bytes() == before


def test_soft_lock_marker_exists_while_held_and_is_removed_on_release(
    soft_campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A soft lock *is* its marker file: it must be there while the row is
    # written, and gone afterwards (a marker left behind blocks every writer).
    marker = fs.lock_path_for(soft_campaign.results)
    seen_while_writing: list[bool] = []
    real_append_locked = _results._append_locked

    def observed_append(path: Path, rows_text: str) -> tuple[int, bool]:
        seen_while_writing.append(marker.is_file())
        return real_append_locked(path, rows_text)

    monkeypatch.setattr(_results, "_append_locked", observed_append)
    fs.append_result(soft_campaign.results, **ROW)
    assert (seen_while_writing, marker.exists()) == ([True], False)


def test_timeout_env_is_read_at_each_call(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[float] = []
    with lock_held_elsewhere(campaign.results):
        for value in ("0.1", "0.2"):
            monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", value)
            with pytest.raises(fs.StateLockTimeout) as caught:
                fs.append_result(campaign.results, **ROW)
            seen.append(caught.value.timeout)
    assert seen == [0.1, 0.2]


def test_timeout_keyword_overrides_env(campaign: Campaign, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "3600")
    with (
        lock_held_elsewhere(campaign.memory),
        pytest.raises(fs.StateLockTimeout) as caught,
        fs.edit_memory(campaign.memory, timeout=0.1),
    ):
        pass
    assert caught.value.timeout == 0.1


def test_unparsable_timeout_env_names_the_variable(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="FERMILINK_STATE_LOCK_TIMEOUT='soon'"):
        fs.append_result(campaign.results, **ROW)


def test_timeout_message_names_the_lock_and_the_remedy(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "0.1")
    with lock_held_elsewhere(campaign.results), pytest.raises(fs.StateLockTimeout) as caught:
        fs.append_result(campaign.results, **ROW)
    message = str(caught.value)
    assert str(fs.lock_path_for(campaign.results)) in message
    assert "FERMILINK_STATE_LOCK_TIMEOUT" in message


def test_timeout_is_a_state_error_and_a_timeout_error() -> None:
    error = fs.StateLockTimeout("/x/results.tsv.lock", 2.0)
    assert isinstance(error, fs.StateError)
    assert isinstance(error, TimeoutError)


def test_timeout_pickles() -> None:
    error = fs.StateLockTimeout("/x/results.tsv.lock", 2.5)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.lock_file, copy.timeout, str(copy)) == (
        fs.StateLockTimeout,
        error.lock_file,
        2.5,
        str(error),
    )


def append_with_short_timeout(results: str) -> None:
    """Run in a pool process: the lock is held by the test, so this times out."""
    fs.append_result(Path(results), **ROW)


def test_timeout_crosses_a_process_boundary(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "0.2")
    with (
        lock_held_elsewhere(campaign.results),
        concurrent.futures.ProcessPoolExecutor(1, mp_context=MP) as pool,
    ):
        future = pool.submit(append_with_short_timeout, str(campaign.results))
        with pytest.raises(fs.StateLockTimeout) as caught:
            future.result(timeout=60)
    assert caught.value.lock_file == os.path.abspath(fs.lock_path_for(campaign.results))


def test_nested_use_in_one_thread_is_reentrant(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A self-deadlock would show as a StateLockTimeout after 1 s.
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "1")
    with fs.locked(campaign.results), fs.locked(campaign.results):
        fs.append_result(campaign.results, **ROW)
    assert campaign.results.read_text(encoding="utf-8").endswith(ROW_LINE)


def test_nested_use_through_two_names_of_one_file_is_reentrant(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One lock object per lock file, however the file is named.
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "1")
    folder = campaign.results.parent
    other_name = folder / ".." / folder.name / campaign.results.name
    with fs.locked(campaign.results), fs.locked(other_name):
        fs.append_result(campaign.results, **ROW)
    assert campaign.results.read_text(encoding="utf-8").endswith(ROW_LINE)


def test_memory_edit_under_a_held_lock_is_reentrant(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "1")
    with fs.locked(campaign.memory):
        _edit(campaign.memory)
    assert "- try a smaller grid" in campaign.memory.read_text(encoding="utf-8")


def test_lock_is_released_when_the_body_raises(campaign: Campaign) -> None:
    with pytest.raises(RuntimeError, match="boom"), fs.locked(campaign.results):
        raise RuntimeError("boom")
    with lock_held_elsewhere(campaign.results, wait=5):
        pass  # the holder got the lock: ours was released


def test_threads_exclude_each_other(campaign: Campaign) -> None:
    counter = campaign.optimize_root / "counter.txt"
    counter.write_text("0", encoding="utf-8")
    inside = 0
    most_inside = 0
    guard = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        nonlocal inside, most_inside
        try:
            for _ in range(25):
                with fs.locked(counter):
                    with guard:
                        inside += 1
                        most_inside = max(most_inside, inside)
                    value = int(counter.read_text(encoding="utf-8"))
                    counter.write_text(str(value + 1), encoding="utf-8")
                    with guard:
                        inside -= 1
        except BaseException as error:  # re-raised by the test below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert (most_inside, counter.read_text(encoding="utf-8")) == (1, "200")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork of a threaded process (3.12+)
def test_forked_child_can_lock_what_the_parent_used(campaign: Campaign) -> None:
    fs.append_result(campaign.results, **ROW)  # the parent's lock object now exists
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            fs.append_result(campaign.results, **{**ROW, "commit": "from-child"})
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert "from-child" in campaign.results.read_text(encoding="utf-8")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork of a threaded process (3.12+)
def test_forked_child_does_not_share_the_parents_hold(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "0.2")
    with fs.locked(campaign.results):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                fs.append_result(campaign.results, **ROW)
            except fs.StateLockTimeout:
                os._exit(7)
            except BaseException:
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7


def test_append_result_writes_the_header_into_a_missing_file(campaign: Campaign) -> None:
    campaign.results.unlink()
    fs.append_result(campaign.results, **ROW)
    assert campaign.results.read_text(encoding="utf-8") == fs.RESULTS_HEADER + ROW_LINE


def test_append_result_writes_the_header_into_an_empty_file(campaign: Campaign) -> None:
    campaign.results.write_bytes(b"")
    fs.append_result(campaign.results, **ROW)
    assert campaign.results.read_text(encoding="utf-8") == fs.RESULTS_HEADER + ROW_LINE


def test_append_result_keeps_a_single_header(campaign: Campaign) -> None:
    fs.append_result(campaign.results, **ROW)
    fs.append_result(campaign.results, **ROW)
    assert campaign.results.read_text(encoding="utf-8").count("iteration\tcommit") == 1


def _count_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    return calls


@pytest.mark.parametrize("existing", ["header", "missing"])
def test_append_result_is_one_write_call(
    existing: str, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    if existing == "missing":
        campaign.results.unlink()
    fs.append_result(campaign.results, **ROW)  # warm up: the lock file exists afterwards
    calls = _count_writes(monkeypatch)
    fs.append_result(campaign.results, **ROW)
    assert len(calls) == 1


def test_append_results_is_one_write_under_one_lock(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    acquisitions: list[Path] = []
    real_file_lock = _locking.file_lock

    def counting_file_lock(path: Path) -> object:
        acquisitions.append(path)
        return real_file_lock(path)

    monkeypatch.setattr(_locking, "file_lock", counting_file_lock)
    calls = _count_writes(monkeypatch)
    rows = [{**ROW, "iteration": number} for number in range(50)]
    assert fs.append_results(campaign.results, rows) == 50
    assert (len(acquisitions), len(calls)) == (1, 1)


def test_append_results_adds_every_row_in_order(campaign: Campaign) -> None:
    rows = [{**ROW, "iteration": number} for number in range(5)]
    fs.append_results(campaign.results, rows)
    assert [row.iteration for row in fs.read_results(campaign.results)] == [0, 1, 2, 3, 4]


def test_append_results_of_nothing_writes_nothing(campaign: Campaign) -> None:
    campaign.results.unlink()
    assert fs.append_results(campaign.results, []) == 0
    assert not campaign.results.exists()


def test_append_after_a_torn_last_line_starts_a_fresh_line(campaign: Campaign) -> None:
    # The torn line is no row: cut off, kept beside the ledger (issue 9).
    torn = "7\tdeadbeef\tacc"
    with campaign.results.open("a", encoding="utf-8") as handle:
        handle.write(torn)
    with pytest.warns(fs.StateCorruptWarning, match="torn by a crash"):
        fs.append_result(campaign.results, **ROW)
    lines = campaign.results.read_text(encoding="utf-8").splitlines()
    assert lines[1:] == [ROW_LINE.rstrip("\n")]
    aside = campaign.results.parent.glob("results.tsv.corrupt-*")
    assert [path.read_text() for path in aside] == [torn]


def test_append_into_a_missing_folder_says_what_to_do(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "results.tsv"
    with pytest.raises(FileNotFoundError) as caught:
        fs.append_result(target, **ROW)
    assert str(target) in str(caught.value)
    assert "ensure_optimize_root" in str(caught.value)


# -- backends: switching, the strict lock, dead holders ----------------------------


@pytest.mark.parametrize(
    "order", [("flock", "soft", "strict", "flock"), ("strict", "soft", "flock")]
)
def test_switching_backends_never_waits_for_the_other_backends_files(
    order: tuple[str, ...], campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each backend leaves its own lock files behind (flock's empty *.lock, the
    # strict sentinel and claims folder): the next backend must not read them as held.
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "1")
    for number, backend in enumerate(order):
        monkeypatch.setenv("FERMILINK_STATE_LOCK", backend)
        fs.append_result(campaign.results, **{**ROW, "iteration": number})
        _edit(campaign.memory)
    assert [row.iteration for row in fs.read_results(campaign.results)] == list(range(len(order)))


def test_strict_lock_excludes_another_process(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", "strict")
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "0.5")
    before = campaign.results.read_bytes()
    with lock_held_elsewhere(campaign.results), pytest.raises(fs.StateLockTimeout) as caught:
        fs.append_result(campaign.results, **ROW)
    assert campaign.results.read_bytes() == before
    assert caught.value.lock_file.endswith("results.tsv.strict-lock")
    assert "on this host" in caught.value.holders


_STRICT_HOLDER: str = """
import sys
from pathlib import Path
import filelock._soft._strict._claims as claims
if sys.argv[2] != "-":
    claims.host_name = lambda: sys.argv[2]  # the claim says it comes from that host
from fermilink_state import locked
with locked(Path(sys.argv[1]), timeout=30):
    print("ready", flush=True)
    sys.stdin.read()
"""


def _strict_holder_killed(target: Path, host: str) -> int:
    child = subprocess.Popen(
        [sys.executable, "-c", _STRICT_HOLDER, str(target), host],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "FERMILINK_STATE_LOCK": "strict"},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.kill()
    child.wait(30)
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.close()
    child.stdout.close()
    return child.pid


def test_a_dead_holder_on_this_host_is_cleared(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", "strict")
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "20")
    _strict_holder_killed(campaign.results, "-")
    fs.append_result(campaign.results, **ROW)  # waits ~1 s, then clears the dead claim
    assert campaign.results.read_text(encoding="utf-8").endswith(ROW_LINE)


def test_a_dead_holder_on_another_host_is_reported_never_broken(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", "strict")
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "2.5")
    pid = _strict_holder_killed(campaign.results, "login-node-7")
    claims = sorted((campaign.optimize_root / "results.tsv.strict-lock.filelock/claims").iterdir())
    with pytest.raises(fs.StateLockTimeout) as caught:
        fs.append_result(campaign.results, **ROW)
    message = str(caught.value)
    assert f"held by pid {pid} on host 'login-node-7'" in message
    assert "claimed " in message
    assert " s ago" in message
    assert all(str(claim) in message for claim in claims), message
    assert sorted(claims[0].parent.iterdir()) == claims, "a foreign claim was broken"
    for claim in claims:  # what the message tells an operator to do
        claim.unlink()
    fs.append_result(campaign.results, **ROW)


class _RefusingLock:
    """A lock whose first acquisitions fail with the given errors, then succeed."""

    lock_file = "claims/run.lock"

    def __init__(self, *errors: OSError) -> None:
        self.errors = list(errors)
        self.waits: list[float] = []

    @property
    def attempts(self) -> int:
        return len(self.waits)

    def acquire(self, timeout: float, poll_interval: float = 0.05) -> None:
        self.waits.append(timeout)
        if self.errors:
            raise self.errors.pop(0)


def _claim_error(claim: object) -> OSError:
    error = OSError(5, "claim vanished")
    error.claim_name = claim  # type: ignore[attr-defined]
    return error


def test_a_claim_renamed_to_a_fuse_hidden_entry_is_retried() -> None:
    # FUSE shows a claim a peer is withdrawing as .fuse_hiddenNNNN for a moment.
    lock = _RefusingLock(_claim_error(".fuse_hidden0000a1b2"))
    _locking._acquire_persistent(lock, 0.5)  # type: ignore[arg-type]
    assert lock.attempts == 2


@pytest.mark.parametrize("claim", ["held.0a1b", "x.fuse_hidden01", None, 7])
def test_other_errors_in_the_claims_folder_are_raised(claim: object) -> None:
    error = _claim_error(claim) if claim is not None else OSError(5, "claim vanished")
    lock = _RefusingLock(error)
    with pytest.raises(OSError, match="claim vanished") as caught:
        _locking._acquire_persistent(lock, 5.0)  # type: ignore[arg-type]
    assert (caught.value, lock.attempts) == (error, 1)


def test_a_fuse_hidden_entry_when_the_wait_is_over_is_a_timeout() -> None:
    lock = _RefusingLock(_claim_error(".fuse_hidden0000a1b2"))
    with pytest.raises(Timeout) as caught:
        _locking._acquire_persistent(lock, 0.0)  # type: ignore[arg-type]
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.lock_file == "claims/run.lock"


def test_a_short_wait_never_waits_longer_than_asked() -> None:
    lock = _RefusingLock(*[Timeout("claims/run.lock")] * 3)
    with pytest.raises(Timeout):
        _locking._acquire_persistent(lock, 0.05)  # type: ignore[arg-type]
    assert lock.attempts == 1
    assert 0 <= lock.waits[0] <= 0.05
