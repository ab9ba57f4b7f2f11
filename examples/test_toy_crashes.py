"""The toy controller killed at every instant, and cut off by a power failure at every instant.

Each crash state is a fresh copy of the project as the crash left it; the
check resumes the controller there and asserts that the campaign is
consistent and that nothing it was told had been recorded is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from toy_controller import Candidate, run_campaign

from fermilink_state.testing import (
    CrashExplorer,
    CrashState,
    OptimizeProject,
    assert_campaign_consistent,
    crash_mark,
)

TIMINGS = {"c1": 0.5, "c2": 0.75, "c3": 0.25}


def timing(candidate: Candidate) -> float:
    """A fake benchmark (module level, so the recorded child process can use it)."""
    return TIMINGS[candidate.commit]


def two_candidates(project_root: Path) -> None:
    """The step: two evaluations, each marked once the controller returned."""
    for commit in ("c1", "c2"):
        run_campaign(project_root, [Candidate(commit, f"try {commit}")], timing)
        crash_mark(commit)


def resume(copy_root: Path, state: CrashState) -> None:
    """What a restarted controller finds, and what it does next."""
    assert_campaign_consistent(copy_root)
    ledger = copy_root / ".fermilink-optimize" / "results.tsv"
    before = ledger.read_bytes()  # bytes: a power cut may have left garbage at its end
    for commit in state.marks:  # every evaluation that returned survived
        assert f"\t{commit}\t".encode() in before, f"{commit} returned before the crash: lost"
    run_campaign(copy_root, [Candidate("c3", "after the restart")], timing)
    assert_campaign_consistent(copy_root)


# A resumed controller meets torn ledger tails; the library warns as it repairs them.
@pytest.mark.filterwarnings("ignore::fermilink_state.StateCorruptWarning")
@pytest.mark.parametrize("model", ["kill", "power"])
def test_the_controller_survives_every_crash(
    seeded_project: OptimizeProject,
    crash_explorer: CrashExplorer,
    model: Literal["kill", "power"],
) -> None:
    report = crash_explorer(two_candidates, resume, model=model)
    assert report.ok
    assert report.points > 10
    assert report.calls.count("append_result") == 2
