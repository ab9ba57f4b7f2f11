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

Importing this module does not import pytest, nor any of its tools before
first use: the plugin's start-up and a fixture's first use load only what
they need.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
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

# Where each public name lives, imported on first use (see __getattr__).
_EXPORTS: Final[dict[str, tuple[str, str]]] = {
    "CampaignProblem": ("fermilink_state._consistency", "CampaignProblem"),
    "CampaignSnapshot": ("fermilink_state.testing._snapshot", "CampaignSnapshot"),
    "CrashExplorationError": ("fermilink_state.testing._crash", "CrashExplorationError"),
    "CrashExplorer": ("fermilink_state.testing._crash", "CrashExplorer"),
    "CrashPointFailure": ("fermilink_state.testing._crash", "CrashPointFailure"),
    "CrashReport": ("fermilink_state.testing._crash", "CrashReport"),
    "CrashState": ("fermilink_state.testing._crashstates", "CrashState"),
    "FrozenClock": ("fermilink_state.testing._project", "FrozenClock"),
    "LiveRunLockHolder": ("fermilink_state.testing._project", "LiveRunLockHolder"),
    "MemoryLike": ("fermilink_state.testing._compare", "MemoryLike"),
    "Normalization": ("fermilink_state.testing._normalize", "Normalization"),
    "OptimizeProject": ("fermilink_state.testing._project", "OptimizeProject"),
    "Outcome": ("fermilink_state.testing._race", "Outcome"),
    "ProjectFactory": ("fermilink_state.testing._project", "ProjectFactory"),
    "ResultLike": ("fermilink_state.testing._project", "ResultLike"),
    "Snapshot": ("fermilink_state.testing._project", "Snapshot"),
    "assert_campaign_consistent": (
        "fermilink_state.testing._assertions",
        "assert_campaign_consistent",
    ),
    "assert_only_sections_changed": (
        "fermilink_state.testing._assertions",
        "assert_only_sections_changed",
    ),
    "assert_results_rows": ("fermilink_state.testing._assertions", "assert_results_rows"),
    "assert_results_well_formed": (
        "fermilink_state.testing._assertions",
        "assert_results_well_formed",
    ),
    "assert_section_appended": ("fermilink_state.testing._assertions", "assert_section_appended"),
    "assert_section_lines": ("fermilink_state.testing._assertions", "assert_section_lines"),
    "crash_mark": ("fermilink_state.testing._crashstates", "mark"),
    "explore_crashes": ("fermilink_state.testing._crash", "explore_crashes"),
    "run_concurrently": ("fermilink_state.testing._race", "run_concurrently"),
    "seed_project": ("fermilink_state.testing._project", "seed_project"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


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
