"""Campaigns across hosts, for real: two FUSE mounts of one folder, two host names.

See ``support_hosts`` for the setup. No ``FERMILINK_STATE_LOCK`` is set for
the writers: the library must choose a lock that excludes the other host by
itself.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

import fermilink_state as fs
from support_concurrency import seed_campaign
from support_hosts import (
    HOST_NAMES,
    Agent,
    HostLosses,
    TwoHosts,
    commit_name,
    count_host_losses,
    two_hosts,
    unavailable_reason,
    wait_for,
)

pytestmark = pytest.mark.timeout(600)

# Long enough that a loaded machine's delays between a renewal and the other
# host's next look stay well inside it (a 2 s lease flaked under load 14).
LEASE: Final = 5.0
LEASE_ENV: Final = {"FERMILINK_STATE_RUN_LOCK_LEASE": str(LEASE)}
PROJECT: Final = "project"


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[TwoHosts]:
    """Two hosts sharing ``tmp_path/shared``; agents killed and mounts unmounted after."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with two_hosts(tmp_path) as shared:
        yield shared


def _root(hosts: TwoHosts, host: int) -> str:
    return str(hosts.mounts[host] / PROJECT)


def _lock_file(hosts: TwoHosts) -> Path:
    return fs.run_lock_path(hosts.source / PROJECT)


def _renewed_at(lock_file: Path) -> float:
    renewed: float = json.loads(lock_file.read_bytes())["lease_renewed_at"]
    return renewed


def _after_a_renewal(lock_file: Path) -> None:
    first = _renewed_at(lock_file)
    wait_for(lambda: _renewed_at(lock_file) != first, 10 * LEASE, "a lease renewal")
    time.sleep(LEASE / 20)


def _stop_between_renewals(holder: Agent, lock_file: Path) -> None:
    """SIGSTOP ``holder`` while it holds no file lock on the run lock.

    A holder killed or stopped while it renews would keep the run lock's
    strict file lock (never broken by age): strike just after a renewal, and
    strike again if its claim is still there.
    """
    claims = Path(f"{lock_file}.strict-lock.filelock") / "claims"
    for _ in range(20):
        _after_a_renewal(lock_file)
        holder.signal(signal.SIGSTOP)
        if not any(name.endswith(".claim") for name in os.listdir(claims)):
            return
        holder.signal(signal.SIGCONT)
    raise AssertionError("the holder was renewing at every try")


def _commits_in_ledger(folder: Path) -> list[str]:
    lines = (folder / "results.tsv").read_bytes().decode("utf-8").split("\n")
    return [line.split("\t")[1] for line in lines[1:] if line]


def run_writers(
    hosts: TwoHosts,
    writers: int,
    iterations: int,
    env: dict[str, str] | None = None,
    memory_held_open: bool = False,
) -> HostLosses:
    """``writers`` processes per host, each writing ``iterations`` row+event+edit.

    With ``memory_held_open``, a reader on each host keeps ``memory.md`` open
    meanwhile, so that each host replaces it in two steps that the other sees.
    """
    seed_campaign(hosts.source / PROJECT)
    if memory_held_open:
        for host in (0, 1):
            memory = fs.memory_path(Path(_root(hosts, host)))
            assert hosts.agent(host).ask("hold_open", path=str(memory)) == {"open": str(memory)}
    agents = [(host, hosts.agent(host, env)) for host in (0, 1) for _ in range(writers)]
    start = time.time() + 0.5
    for number, (host, agent) in enumerate(agents):
        agent.send(
            "write",
            root=_root(hosts, host),
            writer=number % writers,
            iterations=iterations,
            at=start,
        )
    for _, agent in agents:
        assert agent.answer() == {"done": iterations}
    commits = [
        commit_name(HOST_NAMES[host], writer, iteration)
        for host in (0, 1)
        for writer in range(writers)
        for iteration in range(iterations)
    ]
    return count_host_losses(fs.optimize_root(hosts.source / PROJECT), commits)


def test_each_host_chooses_the_strict_lock_by_itself(hosts: TwoHosts) -> None:
    fs.ensure_optimize_root(hosts.source / PROJECT)
    answer = hosts.agent(0).ask("backend", root=_root(hosts, 0))
    assert answer["name"] == "strict", answer
    assert "fuse" in answer["reason"]


@pytest.mark.parametrize("backend", ["", "soft"], ids=["chosen", "soft"])
def test_two_hosts_lose_nothing(hosts: TwoHosts, backend: str) -> None:
    env = {"FERMILINK_STATE_LOCK": backend} if backend else None
    losses = run_writers(hosts, writers=2, iterations=8, env=env)
    assert losses.total() == 0, (dict(losses.counts), losses.details[:20])


@pytest.mark.stress
@pytest.mark.parametrize("backend", ["", "soft"], ids=["chosen", "soft"])
def test_two_hosts_four_writers_each_lose_nothing_stress(hosts: TwoHosts, backend: str) -> None:
    # Readers following memory.md on both hosts make every replace of it a
    # two-step one (FUSE's hidden rename) that the other host can see.
    env = {"FERMILINK_STATE_LOCK": backend} if backend else None
    losses = run_writers(hosts, writers=4, iterations=200, env=env, memory_held_open=True)
    name = backend or "chosen"
    print(f"two-host stress ({name}), 2 x 4 writers x 200 iterations:", dict(losses.counts))
    assert losses.total() == 0, (dict(losses.counts), losses.details[:20])


def test_a_state_replaced_on_one_host_is_never_missing_on_the_other(hosts: TwoHosts) -> None:
    # A reader on the writing host keeps state.json open: each replace is then
    # two renames there (FUSE's hidden rename, NFS's silly rename), and the
    # other host can look in between.
    seed_campaign(hosts.source / PROJECT)
    state = fs.state_path(Path(_root(hosts, 1)))
    assert hosts.agent(1).ask("hold_open", path=str(state)) == {"open": str(state)}
    writer, reader = hosts.agent(1), hosts.agent(0)
    count = 400
    start = time.time() + 0.5
    writer.send("write_states", root=_root(hosts, 1), count=count, at=start)
    reader.send("load_states", root=_root(hosts, 0), last=count - 1, timeout=120, at=start)
    assert writer.answer() == {"written": count}
    seen = reader.answer()
    assert seen["missing"] == 0, seen
    assert seen["reads"] >= 50, seen  # the reader looked while the writer replaced


def test_a_dead_hosts_file_lock_is_reported_and_never_broken(hosts: TwoHosts) -> None:
    seed_campaign(hosts.source / PROJECT)
    holder = hosts.agent(0)
    waiter = hosts.agent(1, {"FERMILINK_STATE_LOCK_TIMEOUT": "2.5"})
    assert holder.ask("hold_file_lock", root=_root(hosts, 0)) == {"held": True}
    pid = holder.process.pid
    holder.signal(signal.SIGKILL)  # the host "crashes" holding the ledger's lock
    holder.process.wait(30)

    answer = waiter.ask("append", root=_root(hosts, 1), commit="b-1")
    message = answer.get("timeout", "")
    assert f"held by pid {pid} on host 'host-a'" in message, answer
    assert "claimed " in message
    assert "by deleting" in message
    claims = Path(fs.optimize_root(hosts.source / PROJECT), "results.tsv.strict-lock.filelock")
    left = sorted(path.name for path in (claims / "claims").iterdir())
    assert left, "a foreign claim was broken"
    assert all(name in message for name in left)
    assert _commits_in_ledger(fs.optimize_root(hosts.source / PROJECT)) == []

    for name in left:  # what the message says to do once the host is known dead
        (claims / "claims" / name).unlink()
    assert waiter.ask("append", root=_root(hosts, 1), commit="b-1") == {"appended": "b-1"}


def test_killed_holders_lease_is_taken_over_from_the_other_host(hosts: TwoHosts) -> None:
    fs.ensure_optimize_root(hosts.source / PROJECT)
    holder = hosts.agent(0, LEASE_ENV)
    taker = hosts.agent(1, LEASE_ENV)
    assert holder.ask("acquire", root=_root(hosts, 0), payload={"who": "a"})["won"]
    _stop_between_renewals(holder, _lock_file(hosts))
    holder.signal(signal.SIGKILL)
    holder.process.wait(30)

    assert taker.ask("status", root=_root(hosts, 1))["state"] == "active"
    refused = taker.ask("acquire", root=_root(hosts, 1))
    assert not refused["won"]
    assert "host-a" in refused["why"]

    time.sleep(LEASE + 0.5)
    status = taker.ask("status", root=_root(hosts, 1))
    assert status["state"] == "inactive_stale", status
    assert status["age"] > LEASE
    assert "expired" in status["reason"]
    taken = taker.ask("acquire", root=_root(hosts, 1), payload={"who": "b"})
    assert taken["won"], taken
    assert taken["record"]["generation"] == 2
    assert taken["record"]["hostname"] == "host-b"
    assert any("took the run lock over" in text for text in taken["warnings"]), taken


def test_stopped_holder_is_fenced_when_it_resumes(hosts: TwoHosts) -> None:
    fs.ensure_optimize_root(hosts.source / PROJECT)
    holder = hosts.agent(0, LEASE_ENV)
    taker = hosts.agent(1, LEASE_ENV)
    assert holder.ask("acquire", root=_root(hosts, 0))["won"]
    assert holder.ask("append", root=_root(hosts, 0), commit="a-1") == {"appended": "a-1"}
    _stop_between_renewals(holder, _lock_file(hosts))
    try:
        holder.send("append", root=_root(hosts, 0), commit="a-2")  # runs on resume
        time.sleep(LEASE + 1.0)
        taken = taker.ask("acquire", root=_root(hosts, 1))
        assert taken["won"], taken
        assert taken["record"]["generation"] == 2
        assert taker.ask("append", root=_root(hosts, 1), commit="b-1") == {"appended": "b-1"}
    finally:
        holder.signal(signal.SIGCONT)
    fenced = holder.answer()
    assert "no longer holds the run lock" in fenced.get("lost", ""), fenced
    again = holder.ask("append", root=_root(hosts, 0), commit="a-3")
    assert "lost" in again, again
    assert _commits_in_ledger(fs.optimize_root(hosts.source / PROJECT)) == ["a-1", "b-1"]
    assert json.loads(_lock_file(hosts).read_bytes())["hostname"] == "host-b"


def _plant_expired_lease(lock_file: Path, generation: int) -> None:
    fs.write_run_lock(
        lock_file,
        {
            "pid": 4242,
            "hostname": "host-gone",
            "generation": generation,
            "lease_seconds": 1.0,
            "lease_renewed_at": time.time() - 60,
        },
    )


def race_for_expired_leases(hosts: TwoHosts, rounds: int) -> list[int]:
    """Winners per round of two hosts acquiring an expired lease at one instant."""
    fs.ensure_optimize_root(hosts.source / PROJECT)
    racers = [hosts.agent(0, LEASE_ENV), hosts.agent(1, LEASE_ENV)]
    winners: list[int] = []
    for number in range(rounds):
        _plant_expired_lease(_lock_file(hosts), number)
        start = time.time() + 0.05
        for host, racer in enumerate(racers):
            racer.send("acquire", root=_root(hosts, host), payload={"round": number}, at=start)
        answers: list[dict[str, Any]] = [racer.answer() for racer in racers]
        won = [host for host, answer in enumerate(answers) if answer["won"]]
        winners.append(len(won))
        if len(won) == 1:
            holder = json.loads(_lock_file(hosts).read_bytes())
            assert holder["hostname"] == HOST_NAMES[won[0]]
            assert holder["generation"] == number + 1
        for host in won:
            assert racers[host].ask("release", root=_root(hosts, host)) == {"released": True}
    return winners


def test_two_hosts_racing_for_an_expired_lease_one_wins_every_round(hosts: TwoHosts) -> None:
    winners = race_for_expired_leases(hosts, rounds=15)
    assert winners == [1] * 15


@pytest.mark.stress
def test_two_hosts_racing_for_an_expired_lease_stress(hosts: TwoHosts) -> None:
    winners = race_for_expired_leases(hosts, rounds=200)
    print("two-host lease races: rounds with exactly one winner:", winners.count(1), "of 200")
    assert winners == [1] * 200
