"""Many writers on one campaign lose nothing: rows, events, memory edits, template, state.

The counters themselves are tested first, on campaigns damaged on purpose, so
that a run reporting zero losses means zero losses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from support_concurrency import (
    Campaign,
    LossReport,
    count_losses,
    hypothesis_line,
    key,
    run_mixed_writers,
    seed_campaign,
    write_one,
)


def _zeros(report: LossReport) -> dict[str, int]:
    return dict.fromkeys(report.counts(), 0)


def _drop_line(path: Path, needle: str, occurrence: int = 0) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    matches = [number for number, line in enumerate(lines) if needle in line]
    del lines[matches[occurrence]]
    path.write_text("".join(lines), encoding="utf-8")


def _tear_last_row(campaign: Campaign) -> None:
    data = campaign.results.read_bytes()
    campaign.results.write_bytes(data[:-12])


def _duplicate_a_row(campaign: Campaign) -> None:
    row = next(
        line
        for line in campaign.results.read_text(encoding="utf-8").splitlines(keepends=True)
        if key(0, 0) in line
    )
    with campaign.results.open("a", encoding="utf-8") as handle:
        handle.write(row)


@dataclass(frozen=True)
class Damage:
    """A way to lose data on purpose, and the count that must see it."""

    name: str
    apply: Callable[[Campaign], object]
    count: str


DAMAGES = [
    Damage("drop a row", lambda c: _drop_line(c.results, f"\t{key(1, 0)}\t"), "lost_rows"),
    Damage("duplicate a row", _duplicate_a_row, "duplicate_rows"),
    Damage("tear the last row", _tear_last_row, "torn_lines"),
    Damage(
        "drop a progress event",
        lambda c: _drop_line(c.memory, f"({key(0, 1)}, ", occurrence=0),
        "lost_progress_events",
    ),
    Damage(
        "drop an outcome event",
        lambda c: _drop_line(c.memory, f"({key(0, 1)}, ", occurrence=1),
        "lost_outcome_events",
    ),
    Damage(
        "drop a memory edit",
        lambda c: _drop_line(c.memory, hypothesis_line(1, 1)),
        "lost_memory_edits",
    ),
    Damage(
        "drop a template line",
        lambda c: _drop_line(c.memory, "### Benchmark contract"),
        "lost_template_lines",
    ),
    Damage(
        "leave a temp file",
        lambda c: (c.optimize_root / ".state.json.host.4242.0a1b2c3d.tmp").touch(),
        "temp_files",
    ),
    Damage("empty the state", lambda c: c.state.write_bytes(b""), "state_errors"),
]


@pytest.fixture
def small_campaign(tmp_path: Path) -> Campaign:
    """Two writers' two iterations each, written in this process."""
    campaign = seed_campaign(tmp_path / "project")
    for writer in range(2):
        for iteration in range(2):
            write_one(campaign, writer, iteration)
    return campaign


def test_counters_find_nothing_in_a_whole_campaign(small_campaign: Campaign) -> None:
    report = count_losses(small_campaign, writers=2, iterations=2, exit_codes=[0, 0])
    assert report.counts() == _zeros(report), report.explain()


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda damage: damage.name)
def test_counters_see_each_kind_of_loss(damage: Damage, small_campaign: Campaign) -> None:
    damage.apply(small_campaign)
    report = count_losses(small_campaign, writers=2, iterations=2)
    assert report.counts()[damage.count] >= 1, report.explain()


def test_counters_see_a_crashed_writer(small_campaign: Campaign) -> None:
    report = count_losses(small_campaign, writers=2, iterations=2, exit_codes=[0, 1])
    assert report.crashed_writers == 1


SIZES = [
    pytest.param(4, 30, id="4x30"),
    pytest.param(8, 200, id="8x200", marks=[pytest.mark.stress, pytest.mark.timeout(600)]),
    pytest.param(16, 200, id="16x200", marks=[pytest.mark.stress, pytest.mark.timeout(600)]),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("writers", "iterations"), SIZES)
def test_process_writers_lose_nothing(tmp_path: Path, writers: int, iterations: int) -> None:
    report, errors = run_mixed_writers(tmp_path / "project", writers=writers, iterations=iterations)
    assert report.counts() == _zeros(report), report.explain() + errors


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("writers", "iterations"),
    [
        pytest.param(3, 15, id="3x15"),
        pytest.param(8, 200, id="8x200", marks=[pytest.mark.stress, pytest.mark.timeout(600)]),
    ],
)
def test_soft_lock_writers_lose_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writers: int, iterations: int
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", "soft")  # the spawned writers inherit it
    report, errors = run_mixed_writers(tmp_path / "project", writers=writers, iterations=iterations)
    assert report.counts() == _zeros(report), report.explain() + errors


@pytest.mark.stress
@pytest.mark.timeout(600)
def test_durable_writers_lose_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "1")
    report, errors = run_mixed_writers(tmp_path / "project", writers=8, iterations=200)
    assert report.counts() == _zeros(report), report.explain() + errors


@pytest.mark.timeout(120)
def test_thread_writers_lose_nothing(tmp_path: Path) -> None:
    campaign = seed_campaign(tmp_path / "project")
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            for iteration in range(25):
                write_one(campaign, number, iteration)
        except BaseException as error:  # re-raised by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = count_losses(campaign, writers=4, iterations=25)
    assert errors == []
    assert report.counts() == _zeros(report), report.explain()


@pytest.mark.stress
@pytest.mark.timeout(600)
def test_the_reference_loses_data_under_the_same_load(tmp_path: Path) -> None:
    # Proof that the harness makes writers collide: the unlocked reference loses.
    report, _ = run_mixed_writers(tmp_path / "project", writers=8, iterations=200, impl="reference")
    assert report.lost_rows + report.lost_progress_events + report.crashed_writers > 0
