"""The run lock's lease and fencing, in one process and one host.

The same guarantees across two hosts (a killed holder, a stopped holder, a
race for an expired lease) are in ``test_two_hosts``.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import fermilink_state as fs
from fermilink_state import _fencing, _runlock
from support import dead_pid
from support_concurrency import Campaign, seed_campaign, state_record

pytestmark = pytest.mark.timeout(60)

ROW: dict[str, Any] = {
    "iteration": 7,
    "commit": "late",
    "status": "accepted",
    "primary_metric_name": "runtime",
    "primary_metric_value": 2.0,
    "description": "written after the lock was lost",
}


@pytest.fixture
def campaign(tmp_path: Path) -> Iterator[Campaign]:
    """A seeded campaign; whatever run lock the test took is released after it."""
    seeded = seed_campaign(tmp_path / "project")
    try:
        yield seeded
    finally:
        fs.release_run_lock(seeded.root)


def _take_over(campaign: Campaign, **changes: object) -> None:
    # Another controller's acquisition, as it lands on disk.
    lock_file = fs.run_lock_path(campaign.root)
    record = json.loads(lock_file.read_bytes())
    record.update({"pid": 4242, "hostname": "other-node", "generation": 2, **changes})
    lock_file.write_text(json.dumps(record), encoding="utf-8")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.endswith("lock") and "run.lock" not in path.name
    }


def _edit(campaign: Campaign) -> None:
    with fs.edit_memory(campaign.memory) as document:
        document.append("### Open hypotheses", "- too late")


WRITES: dict[str, Callable[[Campaign], object]] = {
    "append_result": lambda c: fs.append_result(c.results, **ROW),
    "append_results": lambda c: fs.append_results(c.results, [ROW]),
    "record_campaign_event": lambda c: fs.record_campaign_event(
        c.memory,
        commit="late",
        primary_metric_name="runtime",
        primary_metric_value=2.0,
        status="accepted",
        description="too late",
    ),
    "edit_memory": _edit,
    "write_state": lambda c: fs.write_state(c.state, state_record(9, 9)),
    "archive_write": lambda c: fs.atomic_write_text(fs.runs_root(c.root) / "iter_9" / "x", "x"),
}


@pytest.mark.parametrize("write", list(WRITES.values()), ids=list(WRITES))
def test_a_holder_that_lost_the_lock_writes_nothing(
    write: Callable[[Campaign], object], campaign: Campaign
) -> None:
    fs.acquire_run_lock(campaign.root)
    _take_over(campaign)
    before = _snapshot(campaign.optimize_root)
    with pytest.raises(fs.RunLockLost) as caught:
        write(campaign)
    assert _snapshot(campaign.optimize_root) == before
    assert isinstance(caught.value, fs.StateError)
    assert caught.value.generation == 1
    assert "nothing was written" in str(caught.value)


def test_a_holder_writes_while_the_lock_names_it(campaign: Campaign) -> None:
    with fs.run_lock(campaign.root):
        for write in WRITES.values():
            write(campaign)
    assert fs.read_results(campaign.results)[-1].commit == "late"


def test_a_removed_lock_fences_too(campaign: Campaign) -> None:
    fs.acquire_run_lock(campaign.root)
    fs.clear_run_lock(fs.run_lock_path(campaign.root))  # unlock --force
    with pytest.raises(fs.RunLockLost, match="removed"):
        fs.append_result(campaign.results, **ROW)


def test_the_same_pid_with_another_generation_is_not_the_holder(campaign: Campaign) -> None:
    fs.acquire_run_lock(campaign.root)
    mine = json.loads(fs.run_lock_path(campaign.root).read_bytes())
    _take_over(campaign, pid=os.getpid(), hostname=mine["hostname"])
    with pytest.raises(fs.RunLockLost):
        fs.append_result(campaign.results, **ROW)


def test_writes_outside_the_campaign_are_not_fenced(campaign: Campaign, tmp_path: Path) -> None:
    fs.acquire_run_lock(campaign.root)
    _take_over(campaign)
    elsewhere = seed_campaign(tmp_path / "other")
    fs.append_result(elsewhere.results, **ROW)


def test_a_lost_lock_stays_lost(campaign: Campaign) -> None:
    record = fs.acquire_run_lock(campaign.root)
    lock_file = fs.run_lock_path(campaign.root)
    original = lock_file.read_bytes()
    _take_over(campaign)
    with pytest.raises(fs.RunLockLost):
        fs.append_result(campaign.results, **ROW)
    lock_file.write_bytes(original)  # the old record back does not undo the loss
    with pytest.raises(fs.RunLockLost):
        fs.append_result(campaign.results, **ROW)
    assert record["generation"] == 1


def test_release_after_a_loss_leaves_the_new_holders_lock(campaign: Campaign) -> None:
    fs.acquire_run_lock(campaign.root)
    _take_over(campaign)
    assert not fs.release_run_lock(campaign.root)
    assert json.loads(fs.run_lock_path(campaign.root).read_bytes())["hostname"] == "other-node"


def test_a_released_lock_fences_nothing_and_counts_again_from_one(campaign: Campaign) -> None:
    # Release removes the file, and with it the count: the fence also
    # compares pid and host, so a new holder is never taken for an old one.
    with fs.run_lock(campaign.root) as first:
        pass
    assert _fencing.held_in(campaign.optimize_root) is None
    fs.write_state(campaign.state, state_record(1, 1))
    with fs.run_lock(campaign.root) as second:
        fs.append_result(campaign.results, **ROW)
    assert (first["generation"], second["generation"]) == (1, 1)


def test_generation_counts_up_over_a_stale_lock(campaign: Campaign) -> None:
    lock_file = fs.run_lock_path(campaign.root)
    fs.write_run_lock(
        lock_file,
        {
            "pid": 4242,
            "hostname": "gone",
            "generation": 41,
            "lease_seconds": 1.0,
            "lease_renewed_at": time.time() - 100,
        },
    )
    with pytest.warns(fs.RunLockTakeoverWarning, match="expired"):
        record = fs.acquire_run_lock(campaign.root)
    assert record["generation"] == 42


@pytest.mark.stacklevel
def test_the_takeover_warning_points_at_the_caller(campaign: Campaign) -> None:
    fs.write_run_lock(
        fs.run_lock_path(campaign.root),
        {"pid": 4242, "hostname": "gone", "lease_seconds": 1.0, "lease_renewed_at": 0.0},
    )
    with pytest.warns(fs.RunLockTakeoverWarning) as caught:
        fs.acquire_run_lock(campaign.root)
    assert [warning.filename for warning in caught] == [__file__]


# -- the lease ----------------------------------------------------------------


@pytest.fixture
def short_lease(monkeypatch: pytest.MonkeyPatch) -> float:
    """A 0.6 s lease (renewed every 0.1 s)."""
    monkeypatch.setenv("FERMILINK_STATE_RUN_LOCK_LEASE", "0.6")
    return 0.6


def test_the_lease_is_renewed_while_the_lock_is_held(
    campaign: Campaign, short_lease: float
) -> None:
    lock_file = fs.run_lock_path(campaign.root)
    with fs.run_lock(campaign.root) as record:
        time.sleep(short_lease * 3)
        status = fs.run_lock_status(campaign.root)
        renewed = json.loads(lock_file.read_bytes())["lease_renewed_at"]
    assert record["lease_seconds"] == short_lease
    assert status.state == "active", status.reason
    assert status.age is not None
    assert status.age < short_lease
    assert renewed > record["lease_renewed_at"] + short_lease


def test_renewal_stops_with_the_context(campaign: Campaign, short_lease: float) -> None:
    with fs.run_lock(campaign.root):
        pass
    time.sleep(short_lease / 2)
    assert not fs.run_lock_path(campaign.root).exists()
    # Only this campaign's renewer: other tests of this worker may still hold theirs.
    mine = f"fermilink-state lease {fs.run_lock_path(campaign.root)}"
    assert mine not in _thread_names()


def _thread_names() -> list[str]:
    return [thread.name for thread in threading.enumerate()]


def test_an_expired_lease_is_stale_even_from_this_host(campaign: Campaign) -> None:
    lock_file = fs.run_lock_path(campaign.root)
    fs.write_run_lock(
        lock_file,
        {
            "pid": os.getpid(),
            "hostname": "elsewhere",
            "lease_seconds": 60.0,
            "lease_renewed_at": time.time() - 75,
        },
    )
    status = fs.run_lock_status(campaign.root)
    assert status.state == "inactive_stale"
    assert status.age is not None
    assert 74 < status.age < 80
    assert "expired 15 s ago" in status.reason


def test_a_live_lease_from_another_host_is_active(campaign: Campaign) -> None:
    fs.write_run_lock(
        fs.run_lock_path(campaign.root),
        {
            "pid": 1,
            "hostname": "elsewhere",
            "lease_seconds": 60.0,
            "lease_renewed_at": time.time() - 5,
        },
    )
    status = fs.run_lock_status(campaign.root)
    assert status.state == "active"
    assert "renewed 5 s ago" in status.reason
    with pytest.raises(fs.RunLockHeld):
        fs.acquire_run_lock(campaign.root)


def test_a_lock_without_a_lease_from_another_host_stays_unjudged(campaign: Campaign) -> None:
    # What the reference's write_run_lock leaves: no lease, so no age to judge.
    payload = {"pid": 1, "hostname": "elsewhere", "started_at_utc": "2026-01-01T00:00:00Z"}
    lock_file = fs.run_lock_path(campaign.root)
    fs.write_run_lock(lock_file, payload)
    status = fs.run_lock_status(campaign.root)
    assert (status.state, status.age) == ("active", None)
    assert "without a lease" in status.reason
    assert fs.load_run_lock(lock_file) == payload
    assert (
        lock_file.read_text(encoding="utf-8")
        == json.dumps(payload, indent=2, sort_keys=True) + "\n"
    )


def test_a_paused_holder_renews_before_it_writes(campaign: Campaign) -> None:
    # As if the process had been stopped for 31 s of its 60 s lease: its
    # renewal thread (every 10 s) had no chance, so the write renews first.
    fs.acquire_run_lock(campaign.root)
    held = _fencing.held_in(campaign.optimize_root)
    assert held is not None
    held.renewed_at -= 31
    lock_file = fs.run_lock_path(campaign.root)
    before = json.loads(lock_file.read_bytes())["lease_renewed_at"]
    fs.append_result(campaign.results, **ROW)
    assert json.loads(lock_file.read_bytes())["lease_renewed_at"] > before
    assert time.monotonic() - held.renewed_at < 5


def test_a_bad_lease_setting_names_the_variable(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_RUN_LOCK_LEASE", "-3")
    with pytest.raises(ValueError, match="FERMILINK_STATE_RUN_LOCK_LEASE='-3'"):
        fs.acquire_run_lock(campaign.root)
    assert not fs.run_lock_path(campaign.root).exists()


def _lost_after_renewals(campaign: Campaign, short_lease: float) -> str | None:
    held = _fencing.held_in(campaign.optimize_root)
    assert held is not None
    deadline = time.monotonic() + 10 * short_lease
    while held.lost is None and time.monotonic() < deadline:
        time.sleep(short_lease / 10)
    return held.lost


def test_the_renewer_marks_a_removed_lock_lost(campaign: Campaign, short_lease: float) -> None:
    fs.acquire_run_lock(campaign.root)
    fs.run_lock_path(campaign.root).unlink()
    assert _lost_after_renewals(campaign, short_lease) == (
        "the run lock file was removed (unlock --force?)"
    )


def test_the_renewer_marks_a_lock_taken_over_lost_and_leaves_it(
    campaign: Campaign, short_lease: float
) -> None:
    fs.acquire_run_lock(campaign.root)
    _take_over(campaign)
    taken = fs.run_lock_path(campaign.root).read_bytes()
    assert _lost_after_renewals(campaign, short_lease) == "another process took the run lock over"
    assert fs.run_lock_path(campaign.root).read_bytes() == taken


def test_a_lease_at_its_last_instant_has_not_expired(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dead holder of this host whose lease ends exactly now: taken over as
    # stale, but not as an expired lease, so no takeover warning.
    clock = SimpleNamespace(time=lambda: 1060.0, monotonic=time.monotonic)
    monkeypatch.setattr(_runlock, "time", clock)
    holder = {"pid": dead_pid(), "hostname": socket.gethostname()}
    fs.write_run_lock(
        fs.run_lock_path(campaign.root),
        {**holder, "lease_seconds": 60.0, "lease_renewed_at": 1000.0},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", fs.RunLockTakeoverWarning)
        fs.acquire_run_lock(campaign.root)


@pytest.mark.parametrize("setting", ["0", "soon"])
def test_a_lease_setting_that_is_no_positive_number_is_refused(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_RUN_LOCK_LEASE", setting)
    with pytest.raises(ValueError, match=f"FERMILINK_STATE_RUN_LOCK_LEASE='{setting}'"):
        fs.acquire_run_lock(campaign.root)


def test_a_renewal_that_fails_with_the_lock_file_gone_marks_the_lock_lost(
    campaign: Campaign, short_lease: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not the FileNotFoundError a renewal reports itself: any error (here an
    # I/O error) after which the lock file is gone.
    def remove_then_fail(held: _fencing.HeldRunLock) -> None:
        os.unlink(held.lock_path)
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(_runlock, "_renew", remove_then_fail)
    fs.acquire_run_lock(campaign.root)
    assert _lost_after_renewals(campaign, short_lease) == "the run lock file was removed"


def test_run_lock_lost_pickles() -> None:
    import pickle

    error = fs.RunLockLost("/x/run.lock.json", 3, "another process took the run lock over")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.generation, str(copy)) == (fs.RunLockLost, 3, str(error))


def test_a_lock_that_looks_missing_for_an_instant_is_read_again_under_its_lock(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a FUSE or NFS client shows while another process replaces the file.
    fs.acquire_run_lock(campaign.root)
    real_read = _fencing._read
    reads: list[bytes | None] = []

    def missing_once(held: _fencing.HeldRunLock) -> bytes | None:
        reads.append(None if not reads else real_read(held))
        return reads[-1]

    monkeypatch.setattr(_fencing, "_read", missing_once)
    fs.append_result(campaign.results, **ROW)
    assert len(reads) == 2
    assert fs.read_results(campaign.results)[-1].commit == "late"


def test_a_holder_knows_its_lock_rewritten_in_another_layout(campaign: Campaign) -> None:
    # Another tool may rewrite the record (compact JSON, an extra key): the
    # holder is still the one whose pid, host and generation it names.
    fs.acquire_run_lock(campaign.root)
    lock_file = fs.run_lock_path(campaign.root)
    record = json.loads(lock_file.read_bytes())
    lock_file.write_text(json.dumps({**record, "note": "rewritten"}), encoding="utf-8")
    fs.append_result(campaign.results, **ROW)
    assert fs.read_results(campaign.results)[-1].commit == "late"


def test_release_stops_the_renewer_before_it_returns(campaign: Campaign) -> None:
    # The default 60 s lease: the renewer would sleep 10 s unless stopped and joined.
    mine = f"fermilink-state lease {fs.run_lock_path(campaign.root)}"
    fs.acquire_run_lock(campaign.root)
    assert mine in _thread_names()
    assert fs.release_run_lock(campaign.root)
    assert mine not in _thread_names()


def test_the_renewer_is_a_daemon_thread_named_after_the_lock(campaign: Campaign) -> None:
    # A daemon: a controller that exits without releasing is not kept alive by it.
    mine = f"fermilink-state lease {fs.run_lock_path(campaign.root)}"
    with fs.run_lock(campaign.root):
        renewers = [thread for thread in threading.enumerate() if thread.name == mine]
        assert [thread.daemon for thread in renewers] == [True]


def test_a_write_after_the_lock_file_was_removed_says_why(campaign: Campaign) -> None:
    fs.acquire_run_lock(campaign.root)
    fs.run_lock_path(campaign.root).unlink()
    with pytest.raises(fs.RunLockLost) as caught:
        fs.append_result(campaign.results, **ROW)
    assert caught.value.why == "the run lock file was removed (unlock --force?) or is unreadable"


def test_a_write_after_a_takeover_says_why(campaign: Campaign) -> None:
    fs.acquire_run_lock(campaign.root)
    _take_over(campaign)
    with pytest.raises(fs.RunLockLost) as caught:
        fs.append_result(campaign.results, **ROW)
    assert caught.value.why == "another process took the run lock over"


def test_a_write_less_than_half_a_lease_after_the_renewal_does_not_renew(
    campaign: Campaign,
) -> None:
    fs.acquire_run_lock(campaign.root)
    held = _fencing.held_in(campaign.optimize_root)
    assert held is not None
    held.renewed_at -= 0.4 * held.lease
    before = fs.run_lock_path(campaign.root).read_bytes()
    fs.append_result(campaign.results, **ROW)
    assert fs.run_lock_path(campaign.root).read_bytes() == before


def test_a_lock_record_longer_than_one_read_still_names_its_holder(campaign: Campaign) -> None:
    fs.acquire_run_lock(campaign.root, {"samples": list(range(20_000))})
    fs.append_result(campaign.results, **ROW)
    assert fs.read_results(campaign.results)[-1].commit == "late"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork of a threaded process (3.12+)
def test_a_forked_child_can_hold_a_run_lock_of_its_own(campaign: Campaign, tmp_path: Path) -> None:
    fs.acquire_run_lock(campaign.root)  # the parent's renewer thread runs during the fork
    other = seed_campaign(tmp_path / "other")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        try:
            fs.acquire_run_lock(other.root)
            fs.append_result(other.results, **ROW)
            os._exit(0 if fs.release_run_lock(other.root) else 2)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_sibling_folder_whose_name_extends_the_campaigns_is_not_fenced(
    campaign: Campaign,
) -> None:
    fs.acquire_run_lock(campaign.root)
    _take_over(campaign)
    sibling = campaign.optimize_root.with_name(campaign.optimize_root.name + "-copy")
    fs.atomic_write_text(sibling / "notes.txt", "kept")
    assert (sibling / "notes.txt").read_text(encoding="utf-8") == "kept"


def test_a_lock_file_that_is_no_json_names_no_holder(campaign: Campaign) -> None:
    fs.acquire_run_lock(campaign.root)
    fs.run_lock_path(campaign.root).write_text("{torn", encoding="utf-8")
    with pytest.raises(fs.RunLockLost):
        fs.append_result(campaign.results, **ROW)
