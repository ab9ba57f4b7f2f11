"""fermilink_state: crash-safe, concurrency-safe state for FermiLink optimize campaigns.

A drop-in replacement for ``fermilink.optimize.state``: the same names, the
same bytes on disk, with locked appends and edits and atomic, durable writes.
``pytest -p fermilink_state`` enables the pytest plugin (fixtures and section
assertions); importing this package loads only the standard library and
filelock.

PYTEST_DONT_REWRITE: this module has no asserts, and a conftest that imports
it before ``pytest_plugins = ["fermilink_state"]`` must not get pytest's
"already imported so cannot be rewritten" warning.
"""

from __future__ import annotations

from fermilink_state._atomic import atomic_write_bytes, atomic_write_text
from fermilink_state._clock import utc_now_z
from fermilink_state._document import MemoryDocument, edit_memory, parse_memory, read_memory
from fermilink_state._errors import (
    RunLockHeld,
    RunLockLost,
    RunLockTakeoverWarning,
    StateCorruptError,
    StateCorruptWarning,
    StateError,
    StateLockTimeout,
)
from fermilink_state._jsonio import (
    load_json_file,
    load_state,
    read_json_file,
    write_json_file,
    write_state,
)
from fermilink_state._layout import (
    AUTOGEN_DIRNAME,
    GOAL_ANALYSIS_FILENAME,
    GOAL_BENCHMARK_FILENAME,
    GOAL_COPY_FILENAME,
    GOAL_INPUTS_ALL_DIRNAME,
    GOAL_INPUTS_MANIFEST_FILENAME,
    GOAL_INPUTS_WORKER_DIRNAME,
    GOAL_MANIFEST_FILENAME,
    GOAL_RUN_SCRIPT_FILENAME,
    GOAL_RUNNER_FILENAME,
    GOAL_SETUP_FILENAME,
    GOAL_SUBMIT_FILENAME,
    INPUTS_DIRNAME,
    MEMORY_FILENAME,
    OPTIMIZE_DIRNAME,
    PROGRAM_FILENAME,
    QUICK_BENCHMARK_FILENAME,
    QUICK_MANIFEST_FILENAME,
    QUICK_RUN_SCRIPT_FILENAME,
    QUICK_RUNNER_FILENAME,
    QUICK_SETUP_FILENAME,
    QUICK_SUBMIT_FILENAME,
    RESULTS_FILENAME,
    RUN_LOCK_FILENAME,
    RUNS_DIRNAME,
    STATE_FILENAME,
    WORKER_BENCHMARK_FILENAME,
    WORKER_MEMORY_FILENAME,
    autogen_root,
    default_program_path,
    ensure_autogen_root,
    ensure_executable,
    ensure_optimize_root,
    goal_analysis_path,
    goal_benchmark_path,
    goal_copy_path,
    goal_inputs_all_root,
    goal_inputs_manifest_path,
    goal_inputs_worker_root,
    goal_manifest_path,
    goal_run_script_path,
    goal_runner_path,
    goal_setup_path,
    goal_submit_launcher_path,
    inputs_root,
    memory_path,
    optimize_root,
    quick_benchmark_path,
    quick_manifest_path,
    quick_run_script_path,
    quick_runner_path,
    quick_setup_path,
    quick_submit_launcher_path,
    results_path,
    run_lock_path,
    runs_root,
    safe_relative,
    state_path,
    worker_benchmark_path,
    worker_memory_path,
)
from fermilink_state._locking import (
    LockBackend,
    choose_lock_backend,
    lock_backend,
    lock_path_for,
    locked,
)
from fermilink_state._memory import (
    archive_worker_memory,
    ensure_memory_file,
    record_campaign_event,
    reset_worker_memory_file,
)
from fermilink_state._process import pid_is_running, process_start_time
from fermilink_state._program import ensure_program_file
from fermilink_state._results import (
    RESULTS_HEADER,
    ResultRow,
    _sanitize_cell,
    append_result,
    append_results,
    best_result,
    ensure_results_file,
    read_results,
    recent_results_text,
)
from fermilink_state._runlock import (
    RunLockStatus,
    acquire_run_lock,
    clear_run_lock,
    load_run_lock,
    release_run_lock,
    run_lock,
    run_lock_status,
    write_run_lock,
)
from fermilink_state._sections import (
    _append_section_line,
    _find_section_bounds,
    _replace_metadata_line,
    _set_section_lines,
    append_section_line,
    find_section_bounds,
    replace_metadata_line,
    set_section_lines,
)

# `pytest -p fermilink_state` registers this module; pytest then loads the
# fixtures and hooks from here. A plain import never touches pytest.
pytest_plugins = ["fermilink_state.plugin"]


def __getattr__(name: str) -> str:
    # importlib.metadata costs ~10 ms: look the version up only when asked.
    if name == "__version__":
        from fermilink_state._version import __version__

        return __version__
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


for _public in (LockBackend, ResultRow, RunLockStatus):
    _public.__module__ = __name__
del _public

__all__ = [
    "AUTOGEN_DIRNAME",
    "GOAL_ANALYSIS_FILENAME",
    "GOAL_BENCHMARK_FILENAME",
    "GOAL_COPY_FILENAME",
    "GOAL_INPUTS_ALL_DIRNAME",
    "GOAL_INPUTS_MANIFEST_FILENAME",
    "GOAL_INPUTS_WORKER_DIRNAME",
    "GOAL_MANIFEST_FILENAME",
    "GOAL_RUNNER_FILENAME",
    "GOAL_RUN_SCRIPT_FILENAME",
    "GOAL_SETUP_FILENAME",
    "GOAL_SUBMIT_FILENAME",
    "INPUTS_DIRNAME",
    "MEMORY_FILENAME",
    "OPTIMIZE_DIRNAME",
    "PROGRAM_FILENAME",
    "QUICK_BENCHMARK_FILENAME",
    "QUICK_MANIFEST_FILENAME",
    "QUICK_RUNNER_FILENAME",
    "QUICK_RUN_SCRIPT_FILENAME",
    "QUICK_SETUP_FILENAME",
    "QUICK_SUBMIT_FILENAME",
    "RESULTS_FILENAME",
    "RESULTS_HEADER",
    "RUNS_DIRNAME",
    "RUN_LOCK_FILENAME",
    "STATE_FILENAME",
    "WORKER_BENCHMARK_FILENAME",
    "WORKER_MEMORY_FILENAME",
    "LockBackend",
    "MemoryDocument",
    "ResultRow",
    "RunLockHeld",
    "RunLockLost",
    "RunLockStatus",
    "RunLockTakeoverWarning",
    "StateCorruptError",
    "StateCorruptWarning",
    "StateError",
    "StateLockTimeout",
    "__version__",
    "_append_section_line",
    "_find_section_bounds",
    "_replace_metadata_line",
    "_sanitize_cell",
    "_set_section_lines",
    "acquire_run_lock",
    "append_result",
    "append_results",
    "append_section_line",
    "archive_worker_memory",
    "atomic_write_bytes",
    "atomic_write_text",
    "autogen_root",
    "best_result",
    "choose_lock_backend",
    "clear_run_lock",
    "default_program_path",
    "edit_memory",
    "ensure_autogen_root",
    "ensure_executable",
    "ensure_memory_file",
    "ensure_optimize_root",
    "ensure_program_file",
    "ensure_results_file",
    "find_section_bounds",
    "goal_analysis_path",
    "goal_benchmark_path",
    "goal_copy_path",
    "goal_inputs_all_root",
    "goal_inputs_manifest_path",
    "goal_inputs_worker_root",
    "goal_manifest_path",
    "goal_run_script_path",
    "goal_runner_path",
    "goal_setup_path",
    "goal_submit_launcher_path",
    "inputs_root",
    "load_json_file",
    "load_run_lock",
    "load_state",
    "lock_backend",
    "lock_path_for",
    "locked",
    "memory_path",
    "optimize_root",
    "parse_memory",
    "pid_is_running",
    "process_start_time",
    "quick_benchmark_path",
    "quick_manifest_path",
    "quick_run_script_path",
    "quick_runner_path",
    "quick_setup_path",
    "quick_submit_launcher_path",
    "read_json_file",
    "read_memory",
    "read_results",
    "recent_results_text",
    "record_campaign_event",
    "release_run_lock",
    "replace_metadata_line",
    "reset_worker_memory_file",
    "results_path",
    "run_lock",
    "run_lock_path",
    "run_lock_status",
    "runs_root",
    "safe_relative",
    "set_section_lines",
    "state_path",
    "utc_now_z",
    "worker_benchmark_path",
    "worker_memory_path",
    "write_json_file",
    "write_run_lock",
    "write_state",
]
