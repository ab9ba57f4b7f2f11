"""Which of FermiLink 0.3.10's own writes of campaign files are covered, and how.

A survey of FermiLink 0.3.10's installed package (every ``write_text``,
``open(..., "w")``, ``shutil.copy*``, ``rmtree`` and ``unlink`` outside
``fermilink/optimize/state.py`` whose target is in ``.fermilink-optimize/``
or is the run lock) found the writers below. Writes that go through the
state module itself (``optimize_state.write_state(...)`` and the like) need
no entry, unless the reference's function is what made the write unsafe
(:data:`COVERED_THROUGH_THE_MODULE`): with the module alias they are this
library's writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import fermilink_state
from fermilink_state._layout import inputs_root, run_lock_path
from fermilink_state.adopt._routing import (
    Wrapping,
    paths_routed_during,
    routed,
    staged_copy,
    under_lock,
)

SUPPORTED_FERMILINK_VERSION: Final = "0.3.10"
MAIN_MODULE: Final = "fermilink.optimize.main"
CLI_MODULE: Final = "fermilink.cli.commands.optimize"
# The path helpers run_goal_campaign writes through inline (see its entry).
GOAL_PATH_HELPERS: Final = ("goal_copy_path", "goal_benchmark_path", "goal_runner_path")


@dataclass(frozen=True, slots=True)
class CoveredWriter:
    """One of FermiLink's own writers of campaign files, and how ``install()`` covers it."""

    module: str
    function: str
    writes: str
    how: str
    wrapping: Wrapping

    @property
    def qualified_name(self) -> str:
        """``module.function``."""
        return f"{self.module}.{self.function}"


@dataclass(frozen=True, slots=True)
class UncoveredWrite:
    """A write of campaign files that ``install()`` cannot cover by wrapping a function."""

    module: str
    function: str
    writes: str
    why: str


@dataclass(frozen=True, slots=True)
class CoveredThroughTheModule:
    """A write FermiLink makes by calling the state module, made safe by this library's function.

    No wrapping is needed: with the module alias the call reaches this
    library, whose function (unlike the reference's) is safe for the caller.
    """

    module: str
    function: str
    writes: str
    how: str


_ROUTED_HOW: Final = "routed: its path argument writes through the atomic writer"

COVERED_WRITERS: Final[tuple[CoveredWriter, ...]] = (
    CoveredWriter(
        MAIN_MODULE,
        "_write_campaign_run_lock",
        "run.lock.json (reads it, checks the holder's pid, then writes it)",
        "locked: the check and the write run under the run lock's file lock; the write "
        "is write_run_lock, which refuses a lock held by another live process",
        under_lock("project_root", run_lock_path, make_folder=True),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_append_benchmark_launcher_memory_note",
        "memory.md (read, append a progress-log line, Path.write_text back in place)",
        "locked and routed: runs under memory.md's lock (the lock every memory edit "
        "takes) and its write_text replaces the file atomically",
        under_lock("memory_path", route=True),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_sync_worker_outputs_from_workspace",
        "worker_memory.md (shutil.copy2 from the worker's workspace, in place)",
        "locked and staged: under worker_memory.md's lock, the copy goes to a staging "
        "file whose bytes then replace worker_memory.md atomically",
        staged_copy("worker_memory_path"),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_stage_goal_referenced_inputs",
        "inputs/all/ and inputs/worker/ (rmtree, then copy each referenced input)",
        "locked: runs under the lock of inputs/, so two stagings never interleave",
        under_lock("project_root", inputs_root, make_folder=True),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_prepare_goal_worker_inputs_subset",
        "inputs/worker/ (rmtree, then copy the training cases)",
        "locked: runs under the lock of inputs/, so two stagings never interleave",
        under_lock("project_root", inputs_root, make_folder=True),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_write_run_text",
        "runs/<run>/<name> (prompts, diffs) with Path.write_text",
        _ROUTED_HOW,
        routed("run_dir"),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_write_run_json",
        "runs/<run>/<name>.json with Path.write_text",
        _ROUTED_HOW,
        routed("run_dir"),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_write_benchmark_contract_file",
        "worker_benchmark.yaml and preflight benchmark contracts with Path.write_text",
        _ROUTED_HOW,
        routed("path"),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_ensure_text_file",
        "autogen/ scaffold files (runner, submit launcher, setup, benchmark, run script)",
        _ROUTED_HOW,
        routed("path"),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_append_pre_command_repo_side_effect_notes",
        "runs/<run>/pre_command_*.stderr.log (read, append notes, write back)",
        _ROUTED_HOW,
        routed("stderr_path"),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_run_runtime_pre_commands_once",
        "runs/<run>/pre_command_*.log and the pre_commands.ok.json marker",
        _ROUTED_HOW,
        routed("run_dir"),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_collect_submitted_benchmark_payload",
        "runs/<run>/<label>.result.*.log and <label>.result.metrics.json",
        _ROUTED_HOW,
        routed("run_dir"),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_run_benchmark_once",
        "runs/<run>/<label>.stdout.log and <label>.stderr.log",
        _ROUTED_HOW,
        routed("run_dir"),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_run_benchmark_suite",
        "runs/<run>/metrics.json",
        _ROUTED_HOW,
        routed("run_dir"),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "_goal_scaffold",
        "autogen/ goal copy, benchmark.yaml and runner (Path.write_text)",
        "routed: its project root writes through the atomic writer, so every path "
        "derived from it does",
        routed("project_root"),
    ),
    CoveredWriter(
        MAIN_MODULE,
        "run_goal_campaign",
        "autogen/ goal copy, benchmark.yaml and runner when resuming or repairing "
        "(Path.write_text inline, on paths from the state module's goal_*_path helpers)",
        "routed: while it runs (in its own thread and context only), the aliased module's "
        "goal_copy_path, goal_benchmark_path and goal_runner_path return AtomicPath, so "
        "its inline writes are atomic",
        paths_routed_during("args", fermilink_state, GOAL_PATH_HELPERS),
    ),
)

UNCOVERED_WRITES: Final[tuple[UncoveredWrite, ...]] = ()

COVERED_THROUGH_THE_MODULE: Final[tuple[CoveredThroughTheModule, ...]] = (
    CoveredThroughTheModule(
        CLI_MODULE,
        "cmd_optimize",
        "run.lock.json (removed with clear_run_lock in a `finally`, also after a launch "
        "refused because another campaign is active)",
        "clear_run_lock keeps a run lock another live process holds (judged under the run "
        "lock's file lock, like write_run_lock), so a refused launch no longer removes the "
        "running campaign's lock",
    ),
)
