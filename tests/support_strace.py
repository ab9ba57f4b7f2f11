"""Writers run under strace, and the POSIX persistence rules checked on the syscalls.

``run_writers`` runs in a child process under ``strace -f -y``: before and
after each library call it stats a marker path (``/__fermilink_call__/...``),
so the trace splits into one segment per call. ``rule_breaks`` then checks
each segment with nothing but the syscalls:

- every rename into the campaign renames a file that was fsynced first;
- every rename, unlink and mkdir is followed by an fsync of its folder
  (the parent, for a mkdir) before the call returns;
- every write to ``results.tsv`` is followed by an fsync / fdatasync of it;
- no other file is written in place (only temps, which are then renamed).

Temps removed by a sweep or an error, and the run lock removed by its
release, are exempt (the issue allows the released lock to skip the sync).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

MARKER: Final = "/__fermilink_call__/"
OURS: Final = "fermilink_state"
REFERENCE_MODULE: Final = "fermilink.optimize.state"
TRACED: Final = (
    "openat,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,"
    "fsync,fdatasync,write,pwrite64,writev,newfstatat,stat"
)
_CALL: Final = re.compile(r"^(?:\[pid\s+)?(?:\d+\]?\s+)?(\w+)\((.*)\)\s+=\s+(-?\d+)")
_FD_PATH: Final = re.compile(r"^(?:-?\d+|AT_FDCWD)<(.*)>$")
_STRING: Final = re.compile(r'"((?:[^"\\]|\\.)*)"')
SETUP: Final = "(setup)"
SEED: Final = {"package_id": "p", "benchmark_id": "b", "benchmark_rel": "b.yaml"}
ROW: Final = {
    "iteration": 1,
    "commit": "c1",
    "status": "accepted",
    "primary_metric_name": "runtime",
    "primary_metric_value": 1.5,
    "description": "one",
}


def _marker(text: str) -> None:
    with contextlib.suppress(OSError):  # a path that never exists: only strace sees it
        os.stat(MARKER + text)


def _calls(fs: Any, root: Path) -> Iterator[tuple[str, Callable[[], object]]]:
    """Every writer of the library (those the reference has, when ``fs`` is the reference)."""
    event = {key: value for key, value in ROW.items() if key != "iteration"}
    worker_seed = {
        **SEED,
        "program_rel": "program.md",
        "controller_memory_rel": "memory.md",
        "results_rel": "results.tsv",
        "worker_iteration": 1,
    }
    yield "ensure_optimize_root", lambda: fs.ensure_optimize_root(root)
    yield "ensure_autogen_root", lambda: fs.ensure_autogen_root(root)
    yield (
        "append_result (creates the ledger)",
        lambda: fs.append_result(fs.results_path(root), **ROW),
    )
    yield (
        "ensure_results_file",
        lambda: fs.ensure_results_file(fs.optimize_root(root) / "results2.tsv"),
    )
    yield (
        "ensure_memory_file",
        lambda: fs.ensure_memory_file(fs.memory_path(root), **SEED, optimize_branch="o"),
    )
    yield (
        "ensure_program_file",
        lambda: fs.ensure_program_file(fs.default_program_path(root), content="program\n"),
    )
    yield "write_state", lambda: fs.write_state(fs.state_path(root), {"iteration": 1})
    yield "write_json_file", lambda: fs.write_json_file(fs.quick_manifest_path(root), {"q": 1})
    yield "append_result", lambda: fs.append_result(fs.results_path(root), **ROW)
    yield "record_campaign_event", lambda: fs.record_campaign_event(fs.memory_path(root), **event)
    yield (
        "reset_worker_memory_file",
        lambda: fs.reset_worker_memory_file(fs.worker_memory_path(root), **worker_seed),
    )
    yield (
        "archive_worker_memory",
        lambda: fs.archive_worker_memory(
            fs.worker_memory_path(root), fs.runs_root(root) / "iter_0001"
        ),
    )
    # The caller's own lock, as FermiLink's controller writes it: clear_run_lock
    # removes it (it keeps one another live process holds).
    yield "write_run_lock", lambda: fs.write_run_lock(fs.run_lock_path(root), {"pid": os.getpid()})
    yield "clear_run_lock", lambda: fs.clear_run_lock(fs.run_lock_path(root))
    if hasattr(fs, "record_iteration"):  # this package's own writers
        yield "append_results", lambda: fs.append_results(fs.results_path(root), [ROW, ROW])
        yield (
            "record_iteration",
            lambda: fs.record_iteration(root, row=ROW, event=event, state={"iteration": 1}),
        )
        yield "edit_memory", lambda: _edit_memory(fs, root)
        yield "acquire_run_lock", lambda: fs.acquire_run_lock(root)
        yield "release_run_lock", lambda: fs.release_run_lock(root)
        yield SETUP, lambda: fs.state_path(root).write_text("{not json")
        yield "load_state (quarantines)", lambda: _quarantine(fs, root)


def _edit_memory(fs: Any, root: Path) -> None:
    with fs.edit_memory(fs.memory_path(root)) as document:
        document.append("### Open hypotheses", "- more")


def _quarantine(fs: Any, root: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fs.load_state(fs.state_path(root))


def run_writers(root: str, library: str = OURS) -> None:
    """Call every writer on a fresh project at ``root``, each between two markers."""
    fs = importlib.import_module(library)
    project = Path(root)
    project.mkdir(parents=True, exist_ok=True)
    for name, call in _calls(fs, project):
        if name == SETUP:  # the test's own preparation, outside every segment
            call()
            continue
        _marker(f"begin/{name}")
        call()
        _marker(f"end/{name}")


@dataclass(frozen=True)
class Syscall:
    """One traced call: its name, the paths it names (``fd<path>`` or strings), its result."""

    name: str
    paths: tuple[str, ...]
    fd_path: str
    raw: str


def parse_trace(text: str) -> list[Syscall]:
    """The successful syscalls of an ``strace -y`` log, in order."""
    calls = []
    for line in text.splitlines():
        match = _CALL.match(line)
        if not match or (match.group(3).startswith("-") and MARKER not in line):
            continue  # failed calls change nothing (the markers fail on purpose)
        name, args, _result = match.groups()
        first = args.split(",", 1)[0].strip()
        fd_match = _FD_PATH.match(first)
        fd_path = fd_match.group(1) if fd_match else ""
        strings = tuple(_STRING.findall(args))
        result_path = re.search(r"=\s+\d+<(.*)>\s*$", line)
        if name == "openat" and result_path:
            strings = (result_path.group(1),)
        calls.append(Syscall(name, strings, fd_path, line))
    return calls


def segments(calls: list[Syscall]) -> Iterator[tuple[str, list[Syscall]]]:
    """``(call name, syscalls)`` between each begin and end marker."""
    current: list[Syscall] | None = None
    for call in calls:
        marker = next((path for path in call.paths if path.startswith(MARKER)), None)
        if marker is not None:
            kind, _, name = marker[len(MARKER) :].partition("/")
            if kind == "begin":
                current = []
            elif current is not None:
                yield name, current
                current = None
        elif current is not None:
            current.append(call)


def _synced_later(calls: list[Syscall], start: int, path: str) -> bool:
    return any(
        call.name in ("fsync", "fdatasync") and call.fd_path == path for call in calls[start + 1 :]
    )


def rule_breaks(name: str, calls: list[Syscall], project: str) -> list[str]:
    """The persistence rules one library call broke, each in one line."""
    breaks = []
    for index, call in enumerate(calls):
        if call.name.startswith("rename") and len(call.paths) >= 2:
            source, target = call.paths[0], call.paths[-1]
            if not target.startswith(project):
                continue
            synced = any(
                earlier.name in ("fsync", "fdatasync") and earlier.fd_path == source
                for earlier in calls[:index]
            )
            if not synced and ".corrupt-" not in target:
                breaks.append(f"{name}: renamed {source} without syncing it first")
            if not _synced_later(calls, index, os.path.dirname(target)):
                breaks.append(f"{name}: renamed into {target} without syncing its folder")
        elif call.name.startswith("unlink") and call.paths:
            path = call.paths[-1]
            exempt = path.endswith(".tmp") or name in ("release_run_lock", "clear_run_lock")
            folder = os.path.dirname(path)
            if path.startswith(project) and not exempt and not _synced_later(calls, index, folder):
                breaks.append(f"{name}: removed {path} without syncing its folder")
        elif call.name.startswith("mkdir") and call.paths:
            path = call.paths[-1]
            if path.startswith(project) and not _synced_later(calls, index, os.path.dirname(path)):
                breaks.append(f"{name}: made {path} without syncing its parent")
        elif call.name in ("write", "pwrite64", "writev") and call.fd_path.startswith(project):
            breaks += _write_breaks(name, calls, index, call.fd_path)
    return sorted(set(breaks))


def _write_breaks(name: str, calls: list[Syscall], index: int, path: str) -> list[str]:
    # Appends go to the ledger (synced before the call returns), whole files
    # to a temp (renamed once synced: the rename rule), set-aside tails to a
    # fresh name; a write anywhere else rewrites a file in place.
    base = os.path.basename(path)
    if base.endswith((".tsv", ".tsv.lock")) or ".corrupt-" in base:
        if base.endswith(".tsv") and not _synced_later(calls, index, path):
            return [f"{name}: wrote to {path} without syncing it"]
        return []
    if base.endswith(".tmp"):
        return []
    return [f"{name}: rewrote {path} in place (a crash leaves it torn)"]


def main() -> None:
    """``python support_strace.py ROOT [LIBRARY]``: the child that strace follows."""
    run_writers(sys.argv[1], *sys.argv[2:3])


if __name__ == "__main__":
    main()
