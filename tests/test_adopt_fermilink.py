"""``fermilink_state.adopt`` on FermiLink 0.3.10's real functions (needs FermiLink's dependencies).

Each race runs FermiLink's own function in fresh processes, once as shipped
(the losses must show, or the race proves nothing) and once with
``install()`` (the losses must be 0). The ``fermilink`` tox env installs
``fermilink==0.3.10`` with its dependencies; elsewhere these tests skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Final

import pytest

import fermilink_state as fs
from support_concurrency import run_lock_held_elsewhere
from support_fermilink import (
    INPUT_FILES,
    fermilink_importable,
    make_benchmark_repository,
    race_benchmark,
    race_input_staging,
    race_memory_notes,
    race_run_lock,
    race_whole_file,
)

_MISSING = fermilink_importable()
pytestmark = [
    pytest.mark.skipif(_MISSING is not None, reason=_MISSING or ""),
    pytest.mark.timeout(600),
]

RACERS, ROUNDS = 6, 10
WRITERS, NOTES = 4, 50
SLOW_FS_PAUSE = 0.02  # seconds between reading the run lock and writing it


def _broken(winners: list[int]) -> int:
    return sum(count != 1 for count in winners)


@pytest.mark.parametrize("pause", [0.0, SLOW_FS_PAUSE], ids=["local", "slow-fs"])
def test_campaign_run_lock_race_has_one_winner_per_round(tmp_path: Path, pause: float) -> None:
    winners, errors = race_run_lock(tmp_path, racers=RACERS, rounds=ROUNDS, adopt=True, pause=pause)
    assert not errors, errors
    assert _broken(winners) == 0, f"winners per round: {winners}"


def test_campaign_run_lock_race_without_the_adapter_has_rounds_with_two_winners(
    tmp_path: Path,
) -> None:
    winners, errors = race_run_lock(
        tmp_path, racers=RACERS, rounds=ROUNDS, adopt=False, pause=SLOW_FS_PAUSE
    )
    assert _broken(winners) > 0, f"winners per round: {winners}; {errors}"


def test_launcher_memory_notes_are_all_kept(tmp_path: Path) -> None:
    kept, errors = race_memory_notes(tmp_path, writers=WRITERS, notes=NOTES, adopt=True)
    assert not errors, errors
    assert kept == WRITERS * NOTES


def test_launcher_memory_notes_are_lost_without_the_adapter(tmp_path: Path) -> None:
    kept, _ = race_memory_notes(tmp_path, writers=WRITERS, notes=NOTES, adopt=False)
    assert kept < WRITERS * NOTES


# As shipped, a race shows a torn read in nearly every attempt, but not in
# every one on a loaded machine: the negative control tries again in fresh
# folders before it calls the race void. With the adapter one attempt must be clean.
AS_SHIPPED_ATTEMPTS = 4


def _race(
    run: Callable[[Path], tuple[int, int, str]], tmp_path: Path, *, adopt: bool
) -> tuple[int, int, str]:
    """``run(folder)`` once with the adapter; as shipped, until it shows a torn read."""
    for attempt in range(1 if adopt else AS_SHIPPED_ATTEMPTS):
        folder = tmp_path / f"attempt-{attempt}"
        folder.mkdir()
        torn, reads, errors = run(folder)
        if adopt or torn or errors:
            break
    return torn, reads, errors


def _assert_torn_reads(torn: int, reads: int, errors: str, *, adopt: bool, writer: str) -> None:
    """None torn with the adapter; some as shipped, or the race proves nothing."""
    assert not errors, errors
    assert reads > 0
    if adopt:
        assert torn == 0, f"{torn} of {reads} reads saw a torn, empty or missing file"
    else:
        assert torn > 0, f"as shipped, {writer} showed no torn read in {reads}: the race is void"


# A writer that replaces a whole file: (rounds, bytes per version). YAML
# emitting is slow in pure Python, so its file is smaller.
WHOLE_FILE_WRITERS = {
    "_write_run_text": (200, 256 * 1024),
    "_write_run_json": (200, 256 * 1024),
    "_append_pre_command_repo_side_effect_notes": (200, 256 * 1024),
    "_goal_scaffold": (100, 256 * 1024),
    "_write_benchmark_contract_file": (100, 16 * 1024),
    "_ensure_text_file": (200, 256 * 1024),
    "_sync_worker_outputs_from_workspace": (200, 256 * 1024),
}


@pytest.mark.parametrize("writer", WHOLE_FILE_WRITERS)
@pytest.mark.parametrize("adopt", [True, False], ids=["adopted", "as-shipped"])
def test_whole_file_writers_never_show_a_torn_file(
    tmp_path: Path, writer: str, adopt: bool
) -> None:
    rounds, size = WHOLE_FILE_WRITERS[writer]
    torn, reads, errors = _race(
        lambda folder: race_whole_file(folder, writer, rounds=rounds, size=size, adopt=adopt),
        tmp_path,
        adopt=adopt,
    )
    _assert_torn_reads(torn, reads, errors, adopt=adopt, writer=writer)


@pytest.mark.parametrize(
    "stager", ["_stage_goal_referenced_inputs", "_prepare_goal_worker_inputs_subset"]
)
@pytest.mark.parametrize("adopt", [True, False], ids=["adopted", "as-shipped"])
def test_concurrent_input_stagings_all_complete(tmp_path: Path, stager: str, adopt: bool) -> None:
    failures, detail = race_input_staging(tmp_path, stager, racers=4, rounds=5, adopt=adopt)
    if adopt:
        assert failures == 0, detail
    else:
        assert failures > 0, f"as shipped, 4 x 5 stagings of {INPUT_FILES} files never clashed"


def test_installed_fermilink_is_the_surveyed_version() -> None:
    assert metadata.version("fermilink") == "0.3.10"


def _fermilink_repository_copy(destination: Path) -> Path:
    """FermiLink's own tests, from its wheel (``fermilink/_workspace_payload``) or its sdist."""
    import fermilink

    payload = Path(fermilink.__file__).parent / "_workspace_payload"
    if (payload / "tests").is_dir():
        shutil.copytree(payload, destination, ignore=shutil.ignore_patterns("__pycache__"))
        return destination
    downloads = destination.parent / "sdist"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:"),
            *("--no-deps", "--dest", str(downloads), "fermilink==0.3.10"),
        ],
        check=True,
        timeout=300,
    )
    (archive,) = downloads.glob("fermilink-0.3.10.tar.gz")
    shutil.unpack_archive(archive, downloads)
    shutil.copytree(downloads / "fermilink-0.3.10", destination)
    return destination


# FermiLink's optimize test modules. test_project_optimization_add_entry.py
# tests a script of a folder that the package does not ship.
FERMILINK_OPTIMIZE_TESTS = (
    "tests/test_cli_optimize.py",
    "tests/test_cli_optimize_goal.py",
    "tests/test_optimize_package_migration.py",
    "tests/test_optimize_report.py",
    "tests/test_bin_optimize_python.py",
    "tests/test_bin_optimize_cpp.py",
)

ADOPTED_CHECK = """
import sys

import fermilink_state


def test_fermilink_state_is_adopted_in_this_run():
    import fermilink.optimize.main as controller

    assert sys.modules["fermilink.optimize.state"] is fermilink_state
    assert controller.optimize_state is fermilink_state
    assert controller._write_campaign_run_lock.__fermilink_state_adopted__
"""


def test_fermilink_optimize_suite_passes_with_the_adapter(tmp_path: Path) -> None:
    repository = _fermilink_repository_copy(tmp_path / "fermilink")
    check = repository / "tests" / "test_zz_fermilink_state_adopted.py"
    check.write_text(ADOPTED_CHECK, encoding="utf-8")
    environment = {key: value for key, value in os.environ.items() if key != "PYTEST_ADDOPTS"}
    environment.pop("PYTEST_XDIST_WORKER", None)
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "fermilink_state", "exec", "--", sys.executable, "-m"),
            *("pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-n", "0"),
            *FERMILINK_OPTIMIZE_TESTS,
            str(check.relative_to(repository)),
        ],
        cwd=repository,
        env=environment,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    summary = completed.stdout[-3000:] + completed.stderr[-2000:]
    assert completed.returncode == 0, summary
    assert " failed" not in completed.stdout, summary
    assert " passed" in completed.stdout, summary


@pytest.mark.parametrize("entry", ["_run_benchmark_suite", "_collect_submitted_benchmark_payload"])
@pytest.mark.parametrize("adopt", [True, False], ids=["adopted", "as-shipped"])
def test_benchmark_run_files_are_never_torn(tmp_path: Path, entry: str, adopt: bool) -> None:
    """The suite (with the pre-commands and benchmark runs it makes), and result collection."""
    torn, reads, errors = _race(
        lambda folder: race_benchmark(
            folder / "repo", entry, rounds=15, size=512 * 1024, adopt=adopt
        ),
        tmp_path,
        adopt=adopt,
    )
    _assert_torn_reads(torn, reads, errors, adopt=adopt, writer=entry)


# FermiLink's own `optimize` command (expert mode), launched while another
# campaign holds the run lock: it is refused before any LLM is needed, and
# clears the run lock in a `finally` on its way out.
_REFUSED_LAUNCH: Final = """
import argparse, sys
if sys.argv[3] == "install":
    from fermilink_state import adopt
    adopt.install()
from fermilink.cli.commands import optimize
args = argparse.Namespace(
    package_id="race", project_path=sys.argv[1], benchmark=sys.argv[2], allow_dirty=False,
    goal=False, worker_model=None, baseline_only=False, plan_only=False,
)
try:
    optimize.cmd_optimize(args)
except Exception as error:
    print(type(error).__name__, error)
else:
    print("launched")
"""


@pytest.mark.parametrize(("adapter", "survives"), [("install", True), ("none", False)])
def test_a_refused_launch_keeps_the_running_campaigns_lock(
    tmp_path: Path, adapter: str, survives: bool
) -> None:
    benchmark = make_benchmark_repository(tmp_path / "repo", size=10)
    project = benchmark.parent
    with run_lock_held_elsewhere(project) as holder:
        completed = subprocess.run(
            [sys.executable, "-c", _REFUSED_LAUNCH, str(project), str(benchmark), adapter],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert "appears active" in completed.stdout, completed.stdout + completed.stderr
        lock = fs.load_run_lock(fs.run_lock_path(project))
        # As shipped, the refused launch removed the running campaign's lock.
        assert (lock is not None and lock["pid"] == holder.record["pid"]) is survives


# FermiLink's own `optimize goal.md --resume`: run_goal_campaign rewrites the
# goal copy in autogen/ inline, then (here) refuses the benchmark, before any LLM.
_RESUMED_GOAL: Final = """
import argparse, os, sys
if sys.argv[2] == "install":
    from fermilink_state import adopt
    adopt.install()
from fermilink.cli.commands import optimize
os.chdir(sys.argv[1])
args = argparse.Namespace(
    package_id="goal.md", project_path=None, benchmark=None, allow_dirty=False, goal=True,
    resume=True, worker_model=None, baseline_only=False, plan_only=False,
)
try:
    optimize.cmd_optimize(args)
except Exception as error:
    print(type(error).__name__, error)
"""


def _goal_repository(root: Path) -> Path:
    """A git repository with goal.md, and a goal campaign's autogen/ to resume."""
    root.mkdir()
    (root / "goal.md").write_text("# Goal\n\nMake solver.py faster.\n", encoding="utf-8")
    (root / "solver.py").write_text("print(1)\n", encoding="utf-8")
    identity = ["-c", "user.name=goal", "-c", "user.email=goal@example.com"]
    for command in (["init", "-q"], ["add", "."], [*identity, "commit", "-q", "-m", "seed"]):
        subprocess.run(["git", *command], cwd=root, check=True, capture_output=True)
    fs.ensure_autogen_root(root)
    runner = [sys.executable, ".fermilink-optimize/autogen/benchmark_runner.py"]
    benchmark = {"schema_version": 1, "benchmark_id": "goal", "cases": []}
    benchmark["runtime"] = {"mode": "direct", "command": runner}
    # JSON is YAML too. It has no repo block, so the resume is refused after the
    # goal copy is rewritten (and before anything needs an LLM).
    fs.goal_benchmark_path(root).write_text(json.dumps(benchmark), encoding="utf-8")
    fs.goal_runner_path(root).write_text("print('{}')\n", encoding="utf-8")
    fs.goal_copy_path(root).write_text("an older goal\n", encoding="utf-8")
    return root


@pytest.mark.parametrize(("adapter", "atomic"), [("install", True), ("none", False)])
def test_resumed_goal_campaign_replaces_its_goal_copy_atomically(
    tmp_path: Path, adapter: str, atomic: bool
) -> None:
    project = _goal_repository(tmp_path / "repo")
    goal_copy = fs.goal_copy_path(project)
    before = goal_copy.stat().st_ino
    completed = subprocess.run(
        [sys.executable, "-c", _RESUMED_GOAL, str(project), adapter],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "Goal resume benchmark is invalid" in completed.stdout, (
        completed.stdout + completed.stderr
    )
    assert goal_copy.read_text(encoding="utf-8") == "# Goal\n\nMake solver.py faster.\n"
    # A new inode: replaced by a rename. As shipped: truncated and rewritten in place.
    assert (goal_copy.stat().st_ino != before) is atomic
