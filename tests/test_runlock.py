"""The run lock: one campaign at a time, stale holders taken over, races won once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import fermilink_state as fs
from fermilink_state import _clock, _fencing, _runlock
from support import dead_pid
from support_concurrency import (
    MP,
    error_texts,
    lock_held_elsewhere,
    run_lock_held_elsewhere,
    run_lock_racer,
    run_processes,
    start_run_lock_child,
    stop_run_lock_child,
    winners_per_round,
)

pytestmark = pytest.mark.timeout(60)

FROZEN = "2026-01-02T03:04:05.678901Z"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root with no campaign folder yet."""
    return tmp_path / "project"


@pytest.fixture
def frozen_clock() -> Iterator[str]:
    """The library's clock stopped at :data:`FROZEN`."""
    _clock.freeze(FROZEN)
    yield FROZEN
    _clock.freeze(None)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process on this host that holds nothing."""
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    yield process
    assert process.stdin is not None
    process.stdin.close()
    process.wait()


# Stands for the pid of the process that runs the test, read when it runs: a
# pid read when the module is imported is another process's in a runner that
# collects in a forked child of the importer (mutmut's workers).
THIS_PID = object()


def _plant(project: Path, payload: dict[str, object] | str) -> Path:
    path = fs.run_lock_path(project)
    fs.ensure_optimize_root(project)
    if isinstance(payload, str):
        path.write_text(payload, encoding="utf-8")
    else:
        pid = os.getpid()
        fs.write_run_lock(path, {k: pid if v is THIS_PID else v for k, v in payload.items()})
    return path


def test_acquire_returns_what_it_wrote(project: Path) -> None:
    record = fs.acquire_run_lock(project, {"mode": "quick"})
    assert fs.read_json_file(fs.run_lock_path(project)) == record


@pytest.mark.usefixtures("frozen_clock")
def test_acquire_records_who_and_when(project: Path) -> None:
    record = fs.acquire_run_lock(project, {"mode": "quick"})
    assert record == {
        "mode": "quick",
        "schema_version": 1,
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "started_at_utc": FROZEN,
        "pid_started_at": fs.process_start_time(os.getpid()),
        "generation": 1,
        "lease_seconds": 60.0,
        "lease_renewed_at": record["lease_renewed_at"],
    }
    assert abs(record["lease_renewed_at"] - time.time()) < 5


def test_recorded_start_time_is_a_float(project: Path) -> None:
    assert isinstance(fs.acquire_run_lock(project)["pid_started_at"], float)


def test_acquire_twice_in_one_process_is_refused(project: Path) -> None:
    first = fs.acquire_run_lock(project)
    with pytest.raises(fs.RunLockHeld) as caught:
        fs.acquire_run_lock(project)
    assert caught.value.holder == first


def test_live_holder_elsewhere_is_refused(project: Path) -> None:
    with run_lock_held_elsewhere(project) as child, pytest.raises(fs.RunLockHeld) as caught:
        fs.acquire_run_lock(project)
    assert caught.value.holder == child.record


def test_refusal_names_the_lock_and_the_way_out(project: Path) -> None:
    with run_lock_held_elsewhere(project), pytest.raises(fs.RunLockHeld) as caught:
        fs.acquire_run_lock(project)
    assert str(fs.run_lock_path(project)) in str(caught.value)
    assert "fermilink-state unlock" in str(caught.value)


def test_refusal_leaves_the_holders_lock_alone(project: Path) -> None:
    with run_lock_held_elsewhere(project) as child:
        with pytest.raises(fs.RunLockHeld):
            fs.acquire_run_lock(project)
        assert fs.read_json_file(fs.run_lock_path(project)) == child.record


def test_holder_killed_without_release_is_taken_over(project: Path) -> None:
    child = start_run_lock_child(project, hold=True)
    child.process.kill()
    stop_run_lock_child(child)
    assert fs.run_lock_status(project).state == "inactive_stale"
    assert fs.acquire_run_lock(project)["pid"] == os.getpid()


def test_live_pid_with_another_start_time_is_a_reused_pid(
    project: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    started = fs.process_start_time(sleeper.pid)
    assert started is not None
    _plant(
        project,
        {"pid": sleeper.pid, "hostname": socket.gethostname(), "pid_started_at": started - 100},
    )
    assert fs.run_lock_status(project).state == "inactive_stale"
    assert fs.acquire_run_lock(project)["pid"] == os.getpid()


def test_live_pid_with_its_own_start_time_holds(
    project: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    started = fs.process_start_time(sleeper.pid)
    assert started is not None
    holder = {"pid": sleeper.pid, "hostname": socket.gethostname(), "pid_started_at": started}
    _plant(project, holder)
    with pytest.raises(fs.RunLockHeld) as caught:
        fs.acquire_run_lock(project)
    assert caught.value.holder == holder


def test_holder_on_another_host_is_never_judged_by_pid(project: Path) -> None:
    holder = {"pid": dead_pid(), "hostname": "elsewhere.invalid", "pid_started_at": 1.0}
    _plant(project, holder)
    with pytest.raises(fs.RunLockHeld) as caught:
        fs.acquire_run_lock(project)
    assert caught.value.holder == holder


def test_force_takes_over_from_another_host(project: Path) -> None:
    _plant(project, {"pid": 1, "hostname": "elsewhere.invalid"})
    record = fs.acquire_run_lock(project, force=True)
    assert fs.read_json_file(fs.run_lock_path(project)) == record


@pytest.mark.parametrize(
    "content",
    ["{not json", "", "[1, 2]", '{"hostname": "HOST"}', '{"pid": "12", "hostname": "HOST"}'],
    ids=["invalid-json", "empty", "not-an-object", "no-pid", "pid-not-an-integer"],
)
def test_unusable_lock_file_is_stale_and_taken_over(project: Path, content: str) -> None:
    _plant(project, content.replace("HOST", socket.gethostname()))
    assert fs.run_lock_status(project).state == "inactive_stale"
    assert fs.acquire_run_lock(project)["pid"] == os.getpid()


def test_release_by_the_holder_removes_the_lock(project: Path) -> None:
    fs.acquire_run_lock(project)
    assert fs.release_run_lock(project) is True
    assert not fs.run_lock_path(project).exists()


def test_release_by_another_process_keeps_the_lock(project: Path) -> None:
    with run_lock_held_elsewhere(project) as child:
        assert fs.release_run_lock(project) is False
        assert fs.read_json_file(fs.run_lock_path(project)) == child.record


def test_release_of_a_stale_lock_of_another_pid_keeps_it(project: Path) -> None:
    path = _plant(project, {"pid": dead_pid(), "hostname": socket.gethostname()})
    before = path.read_bytes()
    assert fs.release_run_lock(project) is False
    assert path.read_bytes() == before


def test_release_without_a_lock_is_false(project: Path) -> None:
    fs.ensure_optimize_root(project)
    assert fs.release_run_lock(project) is False


def test_release_without_a_campaign_folder_is_false(project: Path) -> None:
    assert fs.release_run_lock(project) is False
    assert not fs.optimize_root(project).exists()


def test_run_lock_holds_for_the_body(project: Path) -> None:
    with fs.run_lock(project, {"mode": "goal"}) as record:
        status = fs.run_lock_status(project)
    assert (status.state, status.holder, record["mode"]) == ("active", record, "goal")


def test_run_lock_releases_after_the_body(project: Path) -> None:
    with fs.run_lock(project):
        pass
    assert not fs.run_lock_path(project).exists()


def test_run_lock_releases_when_the_body_raises(project: Path) -> None:
    with pytest.raises(KeyError), fs.run_lock(project):
        raise KeyError("boom")
    assert not fs.run_lock_path(project).exists()


def test_run_lock_refused_leaves_the_holder_alone(project: Path) -> None:
    with run_lock_held_elsewhere(project) as child:
        with pytest.raises(fs.RunLockHeld), fs.run_lock(project):
            pass
        assert fs.read_json_file(fs.run_lock_path(project)) == child.record


def test_status_without_a_lock_is_inactive(project: Path) -> None:
    status = fs.run_lock_status(project)
    assert (status.state, status.holder) == ("inactive", None)


def test_status_of_our_own_lock_is_active(project: Path) -> None:
    record = fs.acquire_run_lock(project)
    status = fs.run_lock_status(project)
    assert (status.state, status.holder) == ("active", record)


def test_status_of_a_dead_holder_is_stale(project: Path) -> None:
    holder = {"pid": dead_pid(), "hostname": socket.gethostname()}
    _plant(project, holder)
    status = fs.run_lock_status(project)
    assert (status.state, status.holder) == ("inactive_stale", holder)


def test_status_of_another_host_is_active(project: Path) -> None:
    _plant(project, {"pid": 1, "hostname": "elsewhere.invalid"})
    assert fs.run_lock_status(project).state == "active"


def test_zombie_holder_counts_as_dead(project: Path) -> None:
    child = start_run_lock_child(project, hold=False)
    try:
        # Wait for the exit but leave the child unreaped: a zombie with our lock.
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        status = fs.run_lock_status(project)
        assert (status.state, status.holder) == ("inactive_stale", child.record)
    finally:
        stop_run_lock_child(child)


def test_load_run_lock_reads_what_acquire_wrote(project: Path) -> None:
    record = fs.acquire_run_lock(project)
    assert fs.load_run_lock(fs.run_lock_path(project)) == record


@pytest.mark.parametrize(
    "holder",
    [
        pytest.param({"pid": dead_pid(), "hostname": socket.gethostname()}, id="dead"),
        pytest.param(
            {
                "pid": 1,
                "hostname": "elsewhere.invalid",
                "lease_seconds": 1.0,
                "lease_renewed_at": 0,
            },
            id="expired-lease",
        ),
        pytest.param({"pid": THIS_PID, "hostname": socket.gethostname()}, id="own"),
        pytest.param({"pid": THIS_PID}, id="own-without-hostname"),
        pytest.param("{torn", id="unreadable"),
    ],
)
def test_clear_run_lock_removes_a_stale_or_own_lock(
    project: Path, holder: dict[str, object] | str
) -> None:
    path = _plant(project, holder)
    fs.clear_run_lock(path)
    assert not path.exists()


@pytest.mark.parametrize(
    "holder",
    [
        pytest.param({"pid": 1, "hostname": socket.gethostname()}, id="live"),
        pytest.param({"pid": 1, "hostname": "elsewhere.invalid"}, id="other-host"),
    ],
)
def test_clear_run_lock_keeps_a_lock_another_live_process_holds(
    project: Path, holder: dict[str, object]
) -> None:
    # Deviation: the reference removes whoever holds it (see README).
    path = _plant(project, holder)
    before = path.read_bytes()
    fs.clear_run_lock(path)
    assert path.read_bytes() == before


def _clear_in_another_process(path: Path) -> None:
    code = (
        "import sys, pathlib, fermilink_state as fs; fs.clear_run_lock(pathlib.Path(sys.argv[1]))"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=30)


def test_clear_run_lock_from_another_process_keeps_a_live_holders_lock(project: Path) -> None:
    # FermiLink's refused launch: a second `fermilink optimize` clears the lock
    # in a `finally` while the first campaign runs.
    path = fs.run_lock_path(project)
    with run_lock_held_elsewhere(project) as child:
        _clear_in_another_process(path)
        assert (fs.load_run_lock(path) or {}).get("pid") == child.record["pid"]
        assert fs.run_lock_status(project).state == "active"


def test_clear_run_lock_from_another_process_removes_a_dead_holders_lock(project: Path) -> None:
    child = start_run_lock_child(project, hold=False)  # acquires, exits without releasing
    stop_run_lock_child(child)
    path = fs.run_lock_path(project)
    assert path.exists()
    _clear_in_another_process(path)
    assert not path.exists()


def test_clear_run_lock_ignores_a_lock_wait_that_timed_out(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _plant(project, {"pid": dead_pid(), "hostname": socket.gethostname()})
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "0.2")
    with lock_held_elsewhere(path):
        fs.clear_run_lock(path)  # as the reference: errors are ignored
    assert path.exists()


def test_clear_run_lock_of_a_missing_lock_leaves_no_lock_file(project: Path) -> None:
    fs.ensure_optimize_root(project)
    path = fs.run_lock_path(project)
    fs.clear_run_lock(path)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(path.name)] == []


def _race(
    tmp_path: Path, racers: int, rounds: int, window: float
) -> tuple[list[int], list[int], str]:
    project = tmp_path / "project"  # not created: round 0 races to create it too
    errors_dir = tmp_path / "errors"
    errors_dir.mkdir()
    wins_dir = tmp_path / "wins"
    wins_dir.mkdir()
    barrier = MP.Barrier(racers)
    codes = run_processes(
        run_lock_racer,
        [
            {
                "root": str(project),
                "racer": racer,
                "rounds": rounds,
                "barrier": barrier,
                "stale_pid": dead_pid(),
                "errors_dir": str(errors_dir),
                "wins_dir": str(wins_dir),
                "window": window,
            }
            for racer in range(racers)
        ],
    )
    return winners_per_round(wins_dir, rounds), codes, error_texts(errors_dir)


# 4x4 (every run): each racer pauses `window` seconds between judging the lock
# and writing it, so without the file lock around both, every racer released by
# the barrier judges the lock free and more than one "wins" in every round; with
# it, they take turns. The stress sizes race with no pause, many times over, and
# count the winners of every round.
@pytest.mark.parametrize(
    ("racers", "rounds", "window"),
    [
        pytest.param(4, 4, 0.15, id="4x4"),
        pytest.param(8, 50, 0.0, id="8x50", marks=[pytest.mark.stress, pytest.mark.timeout(600)]),
        pytest.param(16, 20, 0.0, id="16x20", marks=[pytest.mark.stress, pytest.mark.timeout(600)]),
    ],
)
def test_racing_processes_have_exactly_one_winner(
    tmp_path: Path, racers: int, rounds: int, window: float
) -> None:
    winners, codes, errors = _race(tmp_path, racers, rounds, window)
    assert (winners, codes) == ([1] * rounds, [0] * racers), errors


# -- write_run_lock: the reference's writer, with its check-then-write race closed


def test_write_run_lock_refuses_a_lock_held_by_another_live_process(
    project: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    path = _plant(project, {"pid": sleeper.pid, "hostname": socket.gethostname()})
    before = path.read_bytes()
    with pytest.raises(fs.RunLockHeld, match=f"live pid {sleeper.pid}") as refused:
        fs.write_run_lock(path, {"pid": os.getpid()})
    assert refused.value.holder == {"pid": sleeper.pid, "hostname": socket.gethostname()}
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "holder",
    [
        pytest.param({"pid": 0}, id="no-pid"),
        pytest.param({"pid": dead_pid(), "hostname": socket.gethostname()}, id="dead"),
        pytest.param({"pid": THIS_PID}, id="this-process-without-hostname"),
        pytest.param({"pid": THIS_PID, "hostname": socket.gethostname()}, id="this-process"),
        pytest.param("{not json", id="unreadable"),
    ],
)
def test_write_run_lock_replaces_a_lock_no_other_live_process_holds(
    project: Path, holder: dict[str, object] | str
) -> None:
    path = _plant(project, holder)
    fs.write_run_lock(path, {"pid": os.getpid(), "mode": "new"})
    assert fs.read_json_file(path) == {"pid": os.getpid(), "mode": "new"}


def test_write_run_lock_of_an_unserialisable_payload_changes_nothing(project: Path) -> None:
    path = fs.run_lock_path(project)
    with pytest.raises(TypeError):
        fs.write_run_lock(path, {"pid": {1, 2}})
    assert not fs.optimize_root(project).exists()


@pytest.mark.parametrize(
    ("adopt", "expected"),
    [
        pytest.param(True, "no loss", id="fermilink_state"),
        pytest.param(False, "losses", id="reference"),
    ],
)
def test_check_then_write_callers_have_one_winner_per_round(
    tmp_path: Path, adopt: bool, expected: str
) -> None:
    """FermiLink's pattern (load, check the pid, write), 6 racers x 10 rounds, slow reads.

    Through fermilink_state's write_run_lock, the losers of the check are
    refused under the file lock; through the reference, several win a round.
    """
    from support_fermilink import race_run_lock

    winners, errors = race_run_lock(
        tmp_path, racers=6, rounds=10, adopt=adopt, caller="check-then-write", pause=0.02
    )
    broken = sum(count != 1 for count in winners)
    if expected == "no loss":
        assert not errors, errors
        assert broken == 0, f"winners per round: {winners}"
    else:
        assert broken > 0, f"the reference had one winner in every round: {winners}"


# -- details the mutation run found unchecked (mutations/MUTMUT.md) --------------


def test_status_says_why_and_where(project: Path) -> None:
    path = fs.run_lock_path(project)
    none = fs.run_lock_status(project)
    _plant(project, "{not json")
    corrupt = fs.run_lock_status(project)
    path.unlink()
    path.mkdir()  # a lock path that cannot be read as a file
    unreadable = fs.run_lock_status(project)
    path.rmdir()
    fs.acquire_run_lock(project)
    mine = fs.run_lock_status(project)
    fs.release_run_lock(project)
    assert [(s.state, s.holder, s.path) for s in (none, corrupt, unreadable)] == [
        ("inactive", None, path),
        ("inactive_stale", None, path),
        ("inactive_stale", None, path),
    ]
    assert none.reason == "no run lock"
    assert corrupt.reason.startswith("unreadable lock: invalid JSON")
    assert unreadable.reason.startswith("unreadable lock: [Errno 21]")
    assert (mine.state, mine.path, mine.reason) == (
        "active",
        path,
        f"held by live pid {os.getpid()} on this host",
    )


def test_refusal_gives_the_reason(project: Path) -> None:
    fs.acquire_run_lock(project)
    try:
        with pytest.raises(fs.RunLockHeld, match=f"held by live pid {os.getpid()} on this host"):
            fs.acquire_run_lock(project)
    finally:
        fs.release_run_lock(project)


@pytest.mark.parametrize("offset", [1.5, 30.0])
def test_release_refuses_our_pid_with_another_start_time(project: Path, offset: float) -> None:
    # Our pid, recorded as started at another time: a process that had our pid before.
    record = fs.acquire_run_lock(project)
    path = _plant(project, {**record, "pid_started_at": record["pid_started_at"] + offset})
    assert fs.release_run_lock(project) is False
    assert path.exists()
    fs.clear_run_lock(path)


@pytest.mark.parametrize("offset", [-1.0, 1.0])
def test_release_accepts_a_start_time_exactly_one_second_off(
    project: Path, monkeypatch: pytest.MonkeyPatch, offset: float
) -> None:
    # The tolerance is inclusive: start times read at two moments may round
    # apart by up to a second. A fixed clock makes the boundary exact.
    monkeypatch.setattr("fermilink_state._runlock.process_start_time", lambda pid: 1000.0)
    record = fs.acquire_run_lock(project)
    assert record["pid_started_at"] == 1000.0
    path = _plant(project, {**record, "pid_started_at": 1000.0 + offset})
    assert fs.release_run_lock(project) is True
    assert not path.exists()


def test_acquire_and_release_honour_their_timeout(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs.ensure_optimize_root(project)
    path = fs.run_lock_path(project)
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "3600")
    waited: list[float] = []
    with lock_held_elsewhere(path):
        for call in (fs.acquire_run_lock, fs.release_run_lock):
            with pytest.raises(fs.StateLockTimeout) as caught:
                call(project, timeout=0.2)
            waited.append(caught.value.timeout)
    assert waited == [0.2, 0.2]


def test_clear_run_lock_ignores_what_it_cannot_remove(project: Path) -> None:
    path = fs.run_lock_path(project)
    path.mkdir(parents=True)  # unlink() of a folder fails: ignored, as documented
    fs.clear_run_lock(path)
    assert path.is_dir()


def test_release_of_our_lock_without_a_start_time_removes_it(project: Path) -> None:
    # A lock the reference wrote for this process records no pid_started_at.
    path = _plant(project, {"pid": os.getpid(), "hostname": socket.gethostname()})
    assert (fs.release_run_lock(project), path.exists()) == (True, False)


def test_a_forced_acquire_does_not_wait_for_this_process_s_renewal_in_flight(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A renewal in flight may be waiting for the file lock that the acquire
    # holds: waiting for it there would deadlock. Here it waits for the test.
    monkeypatch.setenv("FERMILINK_STATE_RUN_LOCK_LEASE", "6")  # a renewal each second
    in_flight = threading.Event()
    finish = threading.Event()

    def renewal_in_flight(held: _fencing.HeldRunLock) -> None:
        in_flight.set()
        finish.wait(10)  # only so that a broken acquire ends at all

    monkeypatch.setattr(_runlock, "_renew", renewal_in_flight)
    fs.acquire_run_lock(project)
    renewer = _runlock._renewers[os.path.abspath(fs.run_lock_path(project))]
    assert in_flight.wait(30), "the renewer never renewed"
    try:
        fs.acquire_run_lock(project, force=True)
        assert renewer.is_alive(), "acquire_run_lock waited for the renewal in flight"
    finally:
        finish.set()
        renewer.join()
        fs.release_run_lock(project)
