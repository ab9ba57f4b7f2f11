"""Where a campaign's files live: path helpers, ensure_* roots, safe_relative, ensure_executable."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import fermilink_state as fs

PATHS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "optimize_root": (fs.optimize_root, ".fermilink-optimize"),
    "state_path": (fs.state_path, ".fermilink-optimize/state.json"),
    "results_path": (fs.results_path, ".fermilink-optimize/results.tsv"),
    "memory_path": (fs.memory_path, ".fermilink-optimize/memory.md"),
    "worker_memory_path": (fs.worker_memory_path, ".fermilink-optimize/worker_memory.md"),
    "worker_benchmark_path": (
        fs.worker_benchmark_path,
        ".fermilink-optimize/benchmark.worker.yaml",
    ),
    "runs_root": (fs.runs_root, ".fermilink-optimize/runs"),
    "autogen_root": (fs.autogen_root, ".fermilink-optimize/autogen"),
    "run_lock_path": (fs.run_lock_path, ".fermilink-optimize/run.lock.json"),
    "default_program_path": (fs.default_program_path, ".fermilink-optimize/program.md"),
    "inputs_root": (fs.inputs_root, ".fermilink-optimize/inputs"),
    "goal_inputs_all_root": (fs.goal_inputs_all_root, ".fermilink-optimize/inputs/all"),
    "goal_inputs_worker_root": (
        fs.goal_inputs_worker_root,
        ".fermilink-optimize/inputs/worker",
    ),
    "goal_inputs_manifest_path": (
        fs.goal_inputs_manifest_path,
        ".fermilink-optimize/autogen/goal_inputs.json",
    ),
    "quick_manifest_path": (fs.quick_manifest_path, ".fermilink-optimize/autogen/quick_mode.json"),
    "quick_benchmark_path": (
        fs.quick_benchmark_path,
        ".fermilink-optimize/autogen/benchmark.yaml",
    ),
    "quick_runner_path": (fs.quick_runner_path, ".fermilink-optimize/autogen/benchmark_runner.py"),
    "quick_submit_launcher_path": (
        fs.quick_submit_launcher_path,
        ".fermilink-optimize/autogen/submit_poll_launcher.py",
    ),
    "quick_setup_path": (fs.quick_setup_path, ".fermilink-optimize/autogen/setup_env.sh"),
    "quick_run_script_path": (
        fs.quick_run_script_path,
        ".fermilink-optimize/autogen/run_optimize.sh",
    ),
    "goal_manifest_path": (fs.goal_manifest_path, ".fermilink-optimize/autogen/goal_mode.json"),
    "goal_analysis_path": (
        fs.goal_analysis_path,
        ".fermilink-optimize/autogen/goal_analysis.json",
    ),
    "goal_copy_path": (fs.goal_copy_path, ".fermilink-optimize/autogen/goal.md"),
    "goal_benchmark_path": (fs.goal_benchmark_path, ".fermilink-optimize/autogen/benchmark.yaml"),
    "goal_runner_path": (fs.goal_runner_path, ".fermilink-optimize/autogen/benchmark_runner.py"),
    "goal_submit_launcher_path": (
        fs.goal_submit_launcher_path,
        ".fermilink-optimize/autogen/submit_poll_launcher.py",
    ),
    "goal_setup_path": (fs.goal_setup_path, ".fermilink-optimize/autogen/setup_env.sh"),
    "goal_run_script_path": (
        fs.goal_run_script_path,
        ".fermilink-optimize/autogen/run_optimize.sh",
    ),
}


@pytest.mark.parametrize(("helper", "relative"), list(PATHS.values()), ids=list(PATHS))
def test_path_helper_names_its_file_under_the_project(
    helper: Callable[[Path], Path], relative: str
) -> None:
    assert helper(Path("/project")) == Path("/project") / relative


@pytest.mark.parametrize(("helper", "relative"), list(PATHS.values()), ids=list(PATHS))
def test_path_helper_keeps_a_relative_root_relative(
    helper: Callable[[Path], Path], relative: str
) -> None:
    assert helper(Path("project")) == Path("project") / relative


@pytest.mark.parametrize(("helper", "relative"), list(PATHS.values()), ids=list(PATHS))
def test_path_helper_touches_nothing_on_disk(
    tmp_path: Path, helper: Callable[[Path], Path], relative: str
) -> None:
    helper(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_ensure_optimize_root_creates_the_folder_and_runs(tmp_path: Path) -> None:
    root = fs.ensure_optimize_root(tmp_path / "project")
    assert root == tmp_path / "project" / ".fermilink-optimize"
    assert sorted(path.name for path in root.iterdir()) == ["runs"]


def test_ensure_optimize_root_is_idempotent_and_keeps_content(tmp_path: Path) -> None:
    root = fs.ensure_optimize_root(tmp_path)
    (root / "runs" / "keep.txt").write_text("x")
    assert fs.ensure_optimize_root(tmp_path) == root
    assert (root / "runs" / "keep.txt").read_text() == "x"


def test_ensure_autogen_root_creates_autogen_and_its_parents(tmp_path: Path) -> None:
    autogen = fs.ensure_autogen_root(tmp_path / "new")
    assert autogen == tmp_path / "new" / ".fermilink-optimize" / "autogen"
    assert autogen.is_dir()


def test_ensure_autogen_root_does_not_create_runs(tmp_path: Path) -> None:
    fs.ensure_autogen_root(tmp_path)
    assert not fs.runs_root(tmp_path).exists()


def test_ensure_optimize_root_over_a_file_raises(tmp_path: Path) -> None:
    (tmp_path / ".fermilink-optimize").write_text("not a folder")
    with pytest.raises(FileExistsError):
        fs.ensure_optimize_root(tmp_path)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``root/a/b.txt``, ``outside/x`` and ``link -> root``."""
    (tmp_path / "root" / "a").mkdir(parents=True)
    (tmp_path / "root" / "a" / "b.txt").write_text("b")
    (tmp_path / "outside").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "root")
    return tmp_path


def test_safe_relative_inside_is_relative_with_forward_slashes(tree: Path) -> None:
    assert fs.safe_relative(tree / "root" / "a" / "b.txt", tree / "root") == "a/b.txt"


def test_safe_relative_of_the_root_itself_is_dot(tree: Path) -> None:
    assert fs.safe_relative(tree / "root", tree / "root") == "."


def test_safe_relative_outside_is_the_absolute_resolved_path(tree: Path) -> None:
    outside = tree / "root" / ".." / "outside"
    assert fs.safe_relative(outside, tree / "root") == str((tree / "outside").resolve())


def test_safe_relative_resolves_symlinks_first(tree: Path) -> None:
    assert fs.safe_relative(tree / "link" / "a" / "b.txt", tree / "root") == "a/b.txt"


def test_safe_relative_of_a_missing_path_inside(tree: Path) -> None:
    assert fs.safe_relative(tree / "root" / "not" / "yet", tree / "root") == "not/yet"


def test_safe_relative_resolves_relative_paths_against_the_cwd(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree)
    assert fs.safe_relative(Path("root/a"), Path("root")) == "a"


@pytest.mark.parametrize(
    ("before", "after"),
    [(0o644, 0o755), (0o600, 0o711), (0o400, 0o511), (0o000, 0o111)],
    ids=["0o644", "0o600", "0o400", "0o000"],
)
def test_ensure_executable_adds_every_execute_bit(tmp_path: Path, before: int, after: int) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(before)
    fs.ensure_executable(script)
    assert oct(script.stat().st_mode & 0o7777) == oct(after)


@pytest.mark.parametrize("mode", [0o744, 0o710, 0o701, 0o100], ids=oct)
def test_ensure_executable_leaves_a_file_with_any_execute_bit(tmp_path: Path, mode: int) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(mode)
    fs.ensure_executable(script)
    assert oct(script.stat().st_mode & 0o7777) == oct(mode)


def test_ensure_executable_ignores_a_missing_file(tmp_path: Path) -> None:
    fs.ensure_executable(tmp_path / "missing.sh")
    assert list(tmp_path.iterdir()) == []


def test_ensure_executable_ignores_a_chmod_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)

    def refuse(self: Path, mode: int, *, follow_symlinks: bool = True) -> None:
        raise PermissionError(1, "Operation not permitted", str(self))

    monkeypatch.setattr(Path, "chmod", refuse)
    fs.ensure_executable(script)
    assert oct(os.stat(script).st_mode & 0o7777) == oct(0o644)
