"""Assertions and types for testing code that keeps its state with fermilink_state.

Plain functions that raise ``AssertionError`` with a message saying which
sections or rows differ, with a small diff for each: they need neither the
pytest plugin nor assertion rewriting (``--assert=plain`` reads the same).
The fixtures' types live here too, so tests can annotate their arguments::

    from fermilink_state.testing import OptimizeProject, assert_section_appended

    def test_event(seeded_project: OptimizeProject) -> None: ...

For proving a controller against what breaks a days-long campaign:
:func:`explore_crashes` (every kill and power-cut state of a step, each
resumed and checked), :func:`assert_campaign_consistent` (the files against
each other, crash debris told apart) and :func:`run_concurrently` (real
processes released together).

Importing this module does not import pytest.
"""

from __future__ import annotations

from fermilink_state._consistency import CampaignProblem
from fermilink_state.testing._assertions import (
    assert_campaign_consistent,
    assert_only_sections_changed,
    assert_results_rows,
    assert_results_well_formed,
    assert_section_appended,
    assert_section_lines,
)
from fermilink_state.testing._compare import MemoryLike
from fermilink_state.testing._crash import (
    CrashExplorationError,
    CrashExplorer,
    CrashPointFailure,
    CrashReport,
    explore_crashes,
)
from fermilink_state.testing._crashstates import CrashState
from fermilink_state.testing._crashstates import mark as crash_mark
from fermilink_state.testing._normalize import Normalization
from fermilink_state.testing._project import (
    FrozenClock,
    LiveRunLockHolder,
    OptimizeProject,
    ProjectFactory,
    ResultLike,
    Snapshot,
    seed_project,
)
from fermilink_state.testing._race import Outcome, run_concurrently
from fermilink_state.testing._snapshot import CampaignSnapshot

__all__ = [
    "CampaignProblem",
    "CampaignSnapshot",
    "CrashExplorationError",
    "CrashExplorer",
    "CrashPointFailure",
    "CrashReport",
    "CrashState",
    "FrozenClock",
    "LiveRunLockHolder",
    "MemoryLike",
    "Normalization",
    "OptimizeProject",
    "Outcome",
    "ProjectFactory",
    "ResultLike",
    "Snapshot",
    "assert_campaign_consistent",
    "assert_only_sections_changed",
    "assert_results_rows",
    "assert_results_well_formed",
    "assert_section_appended",
    "assert_section_lines",
    "crash_mark",
    "explore_crashes",
    "run_concurrently",
    "seed_project",
]
