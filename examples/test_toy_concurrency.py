"""Four toy controllers started at the same instant on one campaign: they take turns.

Each is a real process; ``run_concurrently`` releases them together. The run
lock makes all but one wait (here: retry until the lock is free), so every
iteration number is used exactly once and the state counts every evaluation.
"""

from __future__ import annotations

import time
from pathlib import Path

from toy_controller import Candidate, run_campaign

import fermilink_state as fs
from fermilink_state.testing import OptimizeProject, assert_campaign_consistent, run_concurrently

CONTROLLERS = 4
CANDIDATES = 3


def slow_benchmark(candidate: Candidate) -> float:
    """Takes a while, as a real benchmark does, so that unlocked controllers would overlap."""
    time.sleep(0.05)
    return 2.0  # never better than the baseline: every candidate is rejected


def controller(index: int, project_root: str) -> list[str]:
    """One controller process: evaluate its candidates once it holds the run lock."""
    candidates = [Candidate(f"p{index}-{n}", f"proposal {n}") for n in range(CANDIDATES)]
    deadline = time.monotonic() + 60
    while True:
        try:
            outcomes = run_campaign(Path(project_root), candidates, slow_benchmark)
        except fs.RunLockHeld:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
        else:
            return [outcome.candidate.commit for outcome in outcomes]


def test_controllers_started_at_once_take_turns(seeded_project: OptimizeProject) -> None:
    outcomes = run_concurrently(controller, CONTROLLERS, str(seeded_project.root))
    assert all(outcome.ok for outcome in outcomes), "\n".join(map(str, outcomes))
    evaluated = CONTROLLERS * CANDIDATES
    rows = seeded_project.read_results()[1:]  # after the baseline
    assert len(rows) == evaluated
    # No iteration number given out twice: every controller counted on from the last.
    assert sorted(row.iteration for row in rows) == list(range(1, evaluated + 1))
    state = seeded_project.read_state()
    assert (state["iteration"], state["rejected_count"]) == (evaluated, evaluated)
    assert_campaign_consistent(seeded_project.root, allow_debris=False)
