"""Testing the toy controller with the fermilink-state plugin's fixtures and assertions."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from toy_controller import METRIC, Benchmark, Candidate, record_evaluation, run_campaign

import fermilink_state as fs
from fermilink_state.testing import (
    FrozenClock,
    OptimizeProject,
    ProjectFactory,
    assert_only_sections_changed,
    assert_results_rows,
    assert_results_well_formed,
    assert_section_appended,
)

TITLE = "# FermiLink Optimize Memory"


def test_improvement_is_accepted(
    seeded_project: OptimizeProject,
    frozen_utc: FrozenClock,
    benchmark: Benchmark,
) -> None:
    before = seeded_project.memory_path.read_text(encoding="utf-8")
    run_campaign(seeded_project.root, [Candidate("c1", "vectorize")], benchmark)
    assert_results_rows(
        seeded_project.results_path,
        [
            {"status": "baseline"},
            {"commit": "c1", "status": "accepted", "primary_metric_value": 0.5},
        ],
    )
    entry = f"- [{frozen_utc.now}] vectorize (c1, runtime_seconds=0.5)"
    assert_section_appended(before, seeded_project.memory_path, "### Accepted experiments", entry)
    assert_only_sections_changed(
        before,
        seeded_project.memory_path,
        [TITLE, "### Latest accepted commit", "### Progress log", "### Accepted experiments"],
    )


def test_regression_is_rejected(seeded_project: OptimizeProject, frozen_utc: FrozenClock) -> None:
    before = seeded_project.memory_path.read_text(encoding="utf-8")
    outcomes = run_campaign(seeded_project.root, [Candidate("c9", "slower")], lambda _c: 2.0)
    assert [outcome.status for outcome in outcomes] == ["rejected"]
    entry = f"- [{frozen_utc.now}] slower (c9, runtime_seconds=2)"
    assert_section_appended(before, seeded_project.memory_path, "### Rejected patterns", entry)
    assert_only_sections_changed(
        before, seeded_project.memory_path, [TITLE, "### Progress log", "### Rejected patterns"]
    )


@pytest.mark.fermilink_seed(state={"iteration": 5, "accepted_count": 2})
def test_state_counts_on(
    seeded_project: OptimizeProject,
    candidates: list[Candidate],
    benchmark: Benchmark,
) -> None:
    run_campaign(seeded_project.root, candidates, benchmark)
    state = seeded_project.read_state()
    assert (state["iteration"], state["accepted_count"], state["rejected_count"]) == (7, 3, 1)
    assert state["incumbent_commit"] == "c1"


@pytest.mark.fermilink_seed(
    results=[
        {
            "iteration": 0,
            "commit": "base",
            "status": "baseline",
            "primary_metric_name": "runtime_seconds",
            "primary_metric_value": 0.25,
        }
    ]
)
def test_a_fast_baseline_is_hard_to_beat(
    seeded_project: OptimizeProject,
    candidates: list[Candidate],
    benchmark: Benchmark,
) -> None:
    outcomes = run_campaign(seeded_project.root, candidates, benchmark)
    assert [outcome.status for outcome in outcomes] == ["rejected", "rejected"]


def test_ledger_stays_well_formed(
    seeded_project: OptimizeProject,
    candidates: list[Candidate],
    benchmark: Benchmark,
) -> None:
    run_campaign(seeded_project.root, candidates * 3, benchmark)
    assert_results_well_formed(seeded_project.results_path)


def test_refuses_while_another_controller_runs(
    live_run_lock: dict[str, Any], seeded_project: OptimizeProject, candidates: list[Candidate]
) -> None:
    before = seeded_project.snapshot()
    with pytest.raises(fs.RunLockHeld) as raised:
        run_campaign(seeded_project.root, candidates, lambda _c: 0.1)
    assert raised.value.holder == live_run_lock
    assert before.diff(seeded_project.snapshot()) == []


def test_takes_over_a_dead_controller_lock(
    stale_run_lock: dict[str, Any], seeded_project: OptimizeProject, candidates: list[Candidate]
) -> None:
    run_campaign(seeded_project.root, candidates, lambda _c: 0.1)
    assert not seeded_project.run_lock_path.exists()  # released on the way out


def test_campaigns_do_not_mix(make_optimize_project: ProjectFactory) -> None:
    one, two = make_optimize_project(), make_optimize_project(package_id="other")
    run_campaign(one.root, [Candidate("c1", "x")], lambda _c: 0.5)
    assert [row.commit for row in two.read_results()] == ["0123456789ab"]


def _events_of(memory: Path, commit: str) -> int:
    # A recorded event leaves two lines naming the commit: one in the progress
    # log, one under accepted experiments or rejected patterns.
    return memory.read_text(encoding="utf-8").count(f"({commit}, {METRIC}=")


@pytest.mark.parametrize("batch", range(4))
def test_workers_share_one_campaign(
    shared_optimize_project: OptimizeProject, worker_id: str, batch: int
) -> None:
    # Every xdist worker writes to the same campaign at once; nothing is lost.
    mine = [Candidate(f"{worker_id}-{batch}-{n}", f"batch {batch}") for n in range(5)]
    for number, candidate in enumerate(mine):
        record_evaluation(shared_optimize_project.root, number, candidate, 1.5, "rejected")
    commits = [row.commit for row in shared_optimize_project.read_results()]
    memory = shared_optimize_project.memory_path
    lost = {
        candidate.commit: (commits.count(candidate.commit), _events_of(memory, candidate.commit))
        for candidate in mine
    }
    assert lost == dict.fromkeys(lost, (1, 2)), "(rows, memory lines) per commit"


def test_concurrent_controllers_lose_nothing(seeded_project: OptimizeProject) -> None:
    # Eight threads record evaluations into one campaign at once, as workers
    # of one controller would: every row and every memory event must be there
    # exactly once (without the library's locks, memory events get lost).
    threads, each = 8, 15
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            start.wait(30)
            for step in range(each):
                candidate = Candidate(f"t{number}-{step}", f"thread {number}")
                record_evaluation(seeded_project.root, step, candidate, 1.5, "rejected")
        except BaseException as error:  # reported by the assert below
            errors.append(error)

    workers = [threading.Thread(target=worker, args=(number,)) for number in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(120)
    assert errors == []
    expected = [f"t{number}-{step}" for number in range(threads) for step in range(each)]
    commits = [row.commit for row in seeded_project.read_results()]
    memory = seeded_project.memory_path
    found = {commit: (commits.count(commit), _events_of(memory, commit)) for commit in expected}
    lost = {commit: counts for commit, counts in found.items() if counts != (1, 2)}
    assert lost == {}, f"{len(lost)} of {len(expected)} evaluations lost or doubled"
