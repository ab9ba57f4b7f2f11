"""A writer SIGKILLed at any instant leaves every file whole and no litter behind.

What a kill can prove: atomicity (old or new content, never a mix), recovery
(the next write sweeps a dead writer's temps, the next row starts on its own
line) and lock release. What it cannot: a kill keeps the page cache, so a
missing fsync never shows, and a row is one write, so a kill never tears it.
Those are proven on rebuilt crash states instead: ``test_crash_explorer``
(the power model: only synced data survives, unsynced writes dropped, cut or
padded) and ``test_syscalls`` (every writer's syncs, seen under strace).

The random kills run with fsync on only because its longer windows between
temp file and rename make a kill inside them likelier; the deterministic kills
stop a writer at its most fragile instant first, so each recovery path is
certain to be exercised (a half-written row, a temp before its rename, a held
memory lock).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import fermilink_state as fs
from fermilink_state._results import format_result_row
from support_concurrency import (
    HYPOTHESES,
    Campaign,
    crash_writer,
    hypothesis_line,
    kill_when_ready,
    missing_template_lines,
    seed_campaign,
    stalled_writer,
    state_is_whole,
    state_record,
    temp_pid,
    temps_of,
)

SEED_ENV = "FERMILINK_STATE_CRASH_SEED"


@pytest.fixture
def durable(monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync on, for this process and the writers it spawns."""
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "1")


@dataclass
class CrashLog:
    """What the kills found, for the assertion message."""

    problems: list[str] = field(default_factory=list)


def _row_after(kill: int) -> dict[str, Any]:
    return {
        "iteration": 10_000 + kill,
        "commit": f"after-kill-{kill}",
        "status": "rejected",
        "primary_metric_name": "runtime",
        "primary_metric_value": 2.0,
        "description": "written by the next writer",
    }


def _check_files(campaign: Campaign, kill: int, log: CrashLog) -> None:
    try:
        if not state_is_whole(fs.read_json_file(campaign.state)):
            log.problems.append(f"kill {kill}: state.json is a mix of two versions")
    except (OSError, fs.StateCorruptError) as error:
        log.problems.append(f"kill {kill}: state.json unreadable: {error}")
    try:
        missing = missing_template_lines(campaign.memory.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        log.problems.append(f"kill {kill}: memory.md unreadable: {error}")
    else:
        log.problems.extend(f"kill {kill}: memory.md lost {line!r}" for line in missing)


def _check_next_append(campaign: Campaign, kill: int, log: CrashLog) -> None:
    row = _row_after(kill)
    fs.append_result(campaign.results, **row)
    text = campaign.results.read_text(encoding="utf-8")
    if not text.endswith("\n" + format_result_row(**row)):
        log.problems.append(f"kill {kill}: the next row merged into another: {text[-200:]!r}")


def _check_sweep(campaign: Campaign, pid: int, kill: int, log: CrashLog) -> None:
    # Whether this kill left a temp is chance; the deterministic kill below
    # always leaves one, so the sweep is certain to be exercised there.
    fs.write_state(campaign.state, state_record(-1, kill))
    with fs.edit_memory(campaign.memory) as document:
        document.append(HYPOTHESES, f"- checked after kill {kill}")
    left = temps_of(campaign.optimize_root, pid)
    if left:
        log.problems.append(f"kill {kill}: the next writes left the dead writer's temps {left}")


def _kill_repeatedly(campaign: Campaign, kills: int) -> CrashLog:
    seed = int(os.environ.get(SEED_ENV, random.randrange(1 << 30)))
    rng = random.Random(seed)
    log = CrashLog(problems=[])
    for kill in range(kills):
        pid = kill_when_ready(
            crash_writer,
            delay=rng.uniform(0.0, 0.06),
            root=str(campaign.root),
            first_iteration=kill * 100_000,
        )
        _check_files(campaign, kill, log)
        _check_next_append(campaign, kill, log)
        _check_sweep(campaign, pid, kill, log)
    if log.problems:
        log.problems.insert(0, f"reproduce with {SEED_ENV}={seed}")
    return log


@pytest.mark.usefixtures("durable")
@pytest.mark.parametrize(
    "kills",
    [
        pytest.param(10, id="10-kills"),
        pytest.param(150, id="150-kills", marks=[pytest.mark.stress, pytest.mark.timeout(600)]),
    ],
)
@pytest.mark.timeout(120)
def test_random_kills_leave_every_file_whole(tmp_path: Path, kills: int) -> None:
    campaign = seed_campaign(tmp_path / "project")
    log = _kill_repeatedly(campaign, kills)
    assert log.problems == []


@pytest.mark.usefixtures("durable")
@pytest.mark.timeout(60)
def test_kill_before_rename_keeps_the_old_state_and_the_next_write_sweeps(tmp_path: Path) -> None:
    campaign = seed_campaign(tmp_path / "project")
    before = campaign.state.read_bytes()
    pid = kill_when_ready(stalled_writer, root=str(campaign.root), what="state")
    left = temps_of(campaign.optimize_root, pid)
    assert (campaign.state.read_bytes(), len(left)) == (before, 1)
    fs.write_state(campaign.state, state_record(1, 1))
    assert temps_of(campaign.optimize_root, pid) == []


@pytest.mark.parametrize("backend", ["flock", "soft"])
@pytest.mark.timeout(60)
def test_kill_inside_a_memory_edit_frees_the_lock_and_keeps_the_old_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", backend)
    monkeypatch.setenv("FERMILINK_STATE_LOCK_TIMEOUT", "20")
    campaign = seed_campaign(tmp_path / "project")
    before = campaign.memory.read_bytes()
    pid = kill_when_ready(stalled_writer, root=str(campaign.root), what="memory")
    assert campaign.memory.read_bytes() == before
    with fs.edit_memory(campaign.memory) as document:  # the dead holder's lock is free
        document.append(HYPOTHESES, hypothesis_line(1, 1))
    assert hypothesis_line(99, 0) not in campaign.memory.read_text(encoding="utf-8")
    assert temps_of(campaign.optimize_root, pid) == []


@pytest.mark.timeout(60)
def test_kill_mid_row_does_not_swallow_the_next_row(tmp_path: Path) -> None:
    campaign = seed_campaign(tmp_path / "project")
    kill_when_ready(stalled_writer, root=str(campaign.root), what="row")
    torn = campaign.results.read_bytes()
    assert not torn.endswith(b"\n"), "the stall should have left half a row"
    half_row = torn[torn.rindex(b"\n") + 1 :]
    row = _row_after(0)
    with pytest.warns(fs.StateCorruptWarning, match="torn by a crash"):
        fs.append_result(campaign.results, **row)
    # The half row is cut from the ledger and kept aside, the whole rows stay.
    assert campaign.results.read_bytes() == torn[: -len(half_row)] + format_result_row(
        **row
    ).encode("utf-8")
    aside = list(campaign.optimize_root.glob("results.tsv.corrupt-*"))
    assert [path.read_bytes() for path in aside] == [half_row]


def test_temp_names_carry_the_writers_pid(tmp_path: Path) -> None:
    # The sweep's premise: every temp name says which process made it.
    from fermilink_state._atomic import _temp_name

    name = _temp_name(tmp_path / "state.json")
    assert temp_pid(name) == os.getpid()
