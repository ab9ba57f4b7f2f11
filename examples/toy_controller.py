"""A toy optimize controller built on fermilink_state: FermiLink's loop, in small.

It takes the campaign's run lock, evaluates candidates against the incumbent,
appends each result to ``results.tsv``, records it as a campaign event in
``memory.md`` and keeps ``state.json`` current. ``record_evaluation`` is the
lock-free part several workers may call at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fermilink_state as fs

METRIC = "runtime_seconds"


@dataclass(frozen=True)
class Candidate:
    """A proposed change: its commit and what it tries."""

    commit: str
    description: str


Benchmark = Callable[[Candidate], float]


@dataclass(frozen=True)
class Outcome:
    """What the controller decided about one candidate."""

    candidate: Candidate
    value: float
    status: str


def record_evaluation(
    project_root: Path, iteration: int, candidate: Candidate, value: float, status: str
) -> None:
    """Append the result row and the memory event (both locked: safe from many workers)."""
    fs.append_result(
        fs.results_path(project_root),
        iteration=iteration,
        commit=candidate.commit,
        status=status,
        primary_metric_name=METRIC,
        primary_metric_value=value,
        description=candidate.description,
    )
    fs.record_campaign_event(
        fs.memory_path(project_root),
        commit=candidate.commit,
        primary_metric_name=METRIC,
        primary_metric_value=value,
        status=status,
        description=candidate.description,
    )


def _incumbent_value(project_root: Path) -> float:
    # Not strict: after a power cut the ledger may end in a torn row, which the
    # next append repairs; a restarting controller must not trip over it
    # (found by examples/test_toy_crashes.py).
    rows = fs.read_results(fs.results_path(project_root), strict=False)
    best = fs.best_result(rows)
    value = best.numeric_value if best is not None else None
    return math.inf if value is None else value


def run_campaign(
    project_root: Path, candidates: Iterable[Candidate], evaluate: Benchmark
) -> list[Outcome]:
    """Evaluate ``candidates`` in order, keeping those that lower the metric.

    Raises ``fermilink_state.RunLockHeld`` if another controller is running.
    """
    outcomes: list[Outcome] = []
    with fs.run_lock(project_root, {"controller": "toy"}):
        state_path = fs.state_path(project_root)
        state: dict[str, Any] = fs.load_state(state_path) or {}
        best = _incumbent_value(project_root)
        for candidate in candidates:
            iteration = int(state.get("iteration", 0)) + 1
            value = evaluate(candidate)
            status = "accepted" if value < best else "rejected"
            record_evaluation(project_root, iteration, candidate, value, status)
            counter = "accepted_count" if status == "accepted" else "rejected_count"
            state[counter] = int(state.get(counter, 0)) + 1
            state["iteration"] = iteration
            if status == "accepted":
                best = value
                state["incumbent_commit"] = candidate.commit
                state["consecutive_rejections"] = 0
            else:
                state["consecutive_rejections"] = int(state.get("consecutive_rejections", 0)) + 1
            fs.write_state(state_path, state)
            outcomes.append(Outcome(candidate, value, status))
    return outcomes
