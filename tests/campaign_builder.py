"""Campaign folders for the CLI, check, plot and demo tests, built with the library.

Importable as ``campaign_builder`` (``pythonpath = ["tests"]``): plain
functions, no fixtures.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from fermilink_state import (
    append_results,
    ensure_memory_file,
    ensure_optimize_root,
    ensure_results_file,
    memory_path,
    reset_worker_memory_file,
    results_path,
    run_lock_path,
    state_path,
    worker_memory_path,
    write_run_lock,
    write_state,
)

METRIC: Final = "runtime_s"
# (iteration, status, value): a small campaign with every kind of row.
ROWS: Final[tuple[tuple[int, str, float | str], ...]] = (
    (0, "baseline", 1.0),
    (1, "accepted", 0.8),
    (2, "rejected", 0.9),
    (3, "crash", "nan"),
    (4, "accepted", 0.7),
    (5, "rejected", 0.75),
)


def make_campaign(
    root: Path, rows: Sequence[tuple[int, str, float | str]] = ROWS, *, metric: str = METRIC
) -> Path:
    """A healthy campaign at ``root``: memory, worker memory, ledger and state."""
    ensure_optimize_root(root)
    ensure_memory_file(
        memory_path(root),
        package_id="pkg",
        benchmark_id="bench",
        benchmark_rel="benchmark.yaml",
        optimize_branch="opt",
    )
    reset_worker_memory_file(
        worker_memory_path(root),
        package_id="pkg",
        benchmark_id="bench",
        benchmark_rel="benchmark.yaml",
        program_rel="program.md",
        controller_memory_rel="memory.md",
        results_rel="results.tsv",
        worker_iteration=1,
    )
    ensure_results_file(results_path(root))
    append_results(
        results_path(root),
        [
            {
                "iteration": iteration,
                "commit": f"c{iteration:04d}",
                "status": status,
                "primary_metric_name": metric,
                "primary_metric_value": value,
                "description": f"candidate {iteration}",
            }
            for iteration, status, value in rows
        ],
    )
    last = max((row[0] for row in rows), default=0)
    write_state(state_path(root), {"schema_version": 1, "iteration": last})
    return root


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_stale_run_lock(root: Path) -> dict[str, object]:
    """A run lock on this host held by a pid that is gone."""
    payload: dict[str, object] = {
        "pid": dead_pid(),
        "hostname": socket.gethostname(),
        "started_at_utc": "2026-01-01T00:00:00Z",
    }
    write_run_lock(run_lock_path(root), payload)
    return payload


_HOLDER: Final = (
    "import sys; from pathlib import Path; from fermilink_state import acquire_run_lock\n"
    "acquire_run_lock(Path(sys.argv[1]), {'command': 'test holder'})\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)


@contextlib.contextmanager
def live_run_lock(root: Path) -> Iterator[int]:
    """A real other process holding the run lock of ``root``; yields its pid."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc.pid
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` (lock files included): file bytes, ``None`` for folders."""
    entries: dict[str, bytes | None] = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        entries[key] = path.read_bytes() if path.is_file() else None
    return entries


def cli_command() -> list[str]:
    """The installed ``fermilink-state`` script next to this Python, else ``-m``."""
    script = shutil.which("fermilink-state", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "fermilink_state"]


def run_cli(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed command line; never raises on a non-zero exit."""
    return subprocess.run(
        [*cli_command(), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
