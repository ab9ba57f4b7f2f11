"""Where everything of a campaign lives: file names and path helpers.

Names, values and signatures are those of ``fermilink.optimize.state``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fermilink_state import _fileops

OPTIMIZE_DIRNAME: Final = ".fermilink-optimize"
STATE_FILENAME: Final = "state.json"
RESULTS_FILENAME: Final = "results.tsv"
MEMORY_FILENAME: Final = "memory.md"
WORKER_MEMORY_FILENAME: Final = "worker_memory.md"
WORKER_BENCHMARK_FILENAME: Final = "benchmark.worker.yaml"
PROGRAM_FILENAME: Final = "program.md"
RUNS_DIRNAME: Final = "runs"
AUTOGEN_DIRNAME: Final = "autogen"
RUN_LOCK_FILENAME: Final = "run.lock.json"
QUICK_MANIFEST_FILENAME: Final = "quick_mode.json"
QUICK_BENCHMARK_FILENAME: Final = "benchmark.yaml"
QUICK_RUNNER_FILENAME: Final = "benchmark_runner.py"
QUICK_SUBMIT_FILENAME: Final = "submit_poll_launcher.py"
QUICK_SETUP_FILENAME: Final = "setup_env.sh"
QUICK_RUN_SCRIPT_FILENAME: Final = "run_optimize.sh"
GOAL_MANIFEST_FILENAME: Final = "goal_mode.json"
GOAL_ANALYSIS_FILENAME: Final = "goal_analysis.json"
GOAL_COPY_FILENAME: Final = "goal.md"
GOAL_BENCHMARK_FILENAME: Final = "benchmark.yaml"
GOAL_RUNNER_FILENAME: Final = "benchmark_runner.py"
GOAL_SUBMIT_FILENAME: Final = "submit_poll_launcher.py"
GOAL_SETUP_FILENAME: Final = "setup_env.sh"
GOAL_RUN_SCRIPT_FILENAME: Final = "run_optimize.sh"
INPUTS_DIRNAME: Final = "inputs"
GOAL_INPUTS_ALL_DIRNAME: Final = "all"
GOAL_INPUTS_WORKER_DIRNAME: Final = "worker"
GOAL_INPUTS_MANIFEST_FILENAME: Final = "goal_inputs.json"


def optimize_root(project_root: Path) -> Path:
    """The campaign folder ``<project_root>/.fermilink-optimize``."""
    return project_root / OPTIMIZE_DIRNAME


def state_path(project_root: Path) -> Path:
    """The controller state, ``state.json``."""
    return optimize_root(project_root) / STATE_FILENAME


def results_path(project_root: Path) -> Path:
    """The append-only results ledger, ``results.tsv``."""
    return optimize_root(project_root) / RESULTS_FILENAME


def memory_path(project_root: Path) -> Path:
    """The controller's markdown memory, ``memory.md``."""
    return optimize_root(project_root) / MEMORY_FILENAME


def worker_memory_path(project_root: Path) -> Path:
    """The per-iteration worker memory, ``worker_memory.md``."""
    return optimize_root(project_root) / WORKER_MEMORY_FILENAME


def worker_benchmark_path(project_root: Path) -> Path:
    """The worker's copy of the benchmark, ``benchmark.worker.yaml``."""
    return optimize_root(project_root) / WORKER_BENCHMARK_FILENAME


def runs_root(project_root: Path) -> Path:
    """The folder of per-iteration run directories, ``runs/``."""
    return optimize_root(project_root) / RUNS_DIRNAME


def autogen_root(project_root: Path) -> Path:
    """The folder of generated quick / goal mode files, ``autogen/``."""
    return optimize_root(project_root) / AUTOGEN_DIRNAME


def run_lock_path(project_root: Path) -> Path:
    """The run lock, ``run.lock.json``."""
    return optimize_root(project_root) / RUN_LOCK_FILENAME


def inputs_root(project_root: Path) -> Path:
    """The goal-mode inputs folder, ``inputs/``."""
    return optimize_root(project_root) / INPUTS_DIRNAME


def goal_inputs_all_root(project_root: Path) -> Path:
    """Goal-mode inputs every role sees, ``inputs/all``."""
    return inputs_root(project_root) / GOAL_INPUTS_ALL_DIRNAME


def goal_inputs_worker_root(project_root: Path) -> Path:
    """Goal-mode inputs only the worker sees, ``inputs/worker``."""
    return inputs_root(project_root) / GOAL_INPUTS_WORKER_DIRNAME


def goal_inputs_manifest_path(project_root: Path) -> Path:
    """The goal-mode inputs manifest, ``autogen/goal_inputs.json``."""
    return autogen_root(project_root) / GOAL_INPUTS_MANIFEST_FILENAME


def quick_manifest_path(project_root: Path) -> Path:
    """Quick mode's manifest, ``autogen/quick_mode.json``."""
    return autogen_root(project_root) / QUICK_MANIFEST_FILENAME


def quick_benchmark_path(project_root: Path) -> Path:
    """Quick mode's benchmark, ``autogen/benchmark.yaml``."""
    return autogen_root(project_root) / QUICK_BENCHMARK_FILENAME


def quick_runner_path(project_root: Path) -> Path:
    """Quick mode's runner, ``autogen/benchmark_runner.py``."""
    return autogen_root(project_root) / QUICK_RUNNER_FILENAME


def quick_submit_launcher_path(project_root: Path) -> Path:
    """Quick mode's submit/poll launcher, ``autogen/submit_poll_launcher.py``."""
    return autogen_root(project_root) / QUICK_SUBMIT_FILENAME


def quick_setup_path(project_root: Path) -> Path:
    """Quick mode's environment setup, ``autogen/setup_env.sh``."""
    return autogen_root(project_root) / QUICK_SETUP_FILENAME


def quick_run_script_path(project_root: Path) -> Path:
    """Quick mode's run script, ``autogen/run_optimize.sh``."""
    return autogen_root(project_root) / QUICK_RUN_SCRIPT_FILENAME


def goal_manifest_path(project_root: Path) -> Path:
    """Goal mode's manifest, ``autogen/goal_mode.json``."""
    return autogen_root(project_root) / GOAL_MANIFEST_FILENAME


def goal_analysis_path(project_root: Path) -> Path:
    """Goal mode's analysis, ``autogen/goal_analysis.json``."""
    return autogen_root(project_root) / GOAL_ANALYSIS_FILENAME


def goal_copy_path(project_root: Path) -> Path:
    """Goal mode's copy of the goal, ``autogen/goal.md``."""
    return autogen_root(project_root) / GOAL_COPY_FILENAME


def goal_benchmark_path(project_root: Path) -> Path:
    """Goal mode's benchmark, ``autogen/benchmark.yaml``."""
    return autogen_root(project_root) / GOAL_BENCHMARK_FILENAME


def goal_runner_path(project_root: Path) -> Path:
    """Goal mode's runner, ``autogen/benchmark_runner.py``."""
    return autogen_root(project_root) / GOAL_RUNNER_FILENAME


def goal_submit_launcher_path(project_root: Path) -> Path:
    """Goal mode's submit/poll launcher, ``autogen/submit_poll_launcher.py``."""
    return autogen_root(project_root) / GOAL_SUBMIT_FILENAME


def goal_setup_path(project_root: Path) -> Path:
    """Goal mode's environment setup, ``autogen/setup_env.sh``."""
    return autogen_root(project_root) / GOAL_SETUP_FILENAME


def goal_run_script_path(project_root: Path) -> Path:
    """Goal mode's run script, ``autogen/run_optimize.sh``."""
    return autogen_root(project_root) / GOAL_RUN_SCRIPT_FILENAME


def default_program_path(project_root: Path) -> Path:
    """The default program file, ``program.md``."""
    return optimize_root(project_root) / PROGRAM_FILENAME


def ensure_optimize_root(project_root: Path) -> Path:
    """Create the campaign folder and its ``runs/``; return the campaign folder.

    With fsync on, each folder created is durable in its parent on return.
    """
    root = optimize_root(project_root)
    _fileops.make_folders(runs_root(project_root))
    return root


def ensure_autogen_root(project_root: Path) -> Path:
    """Create ``autogen/`` (and its parents, each durable in its own parent); return it."""
    root = autogen_root(project_root)
    _fileops.make_folders(root)
    return root


def safe_relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with forward slashes, or absolute if outside."""
    try:
        return str(path.resolve().relative_to(root.resolve())).replace("\\", "/")
    except ValueError:
        return str(path.resolve())


def ensure_executable(path: Path) -> None:
    """Add the execute bits to ``path`` if it has none; ignore errors."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & 0o111:
        return
    try:
        path.chmod(mode | 0o111)
    except OSError:
        return
