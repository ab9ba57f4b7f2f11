"""Helpers shared by the test modules: the reference, twin runs, file trees, faults.

Importable as ``support`` (``pythonpath = ["tests"]``); plain functions and
classes, no fixtures (those live in ``conftest.py``).
"""

from __future__ import annotations

import errno
import importlib
import os
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import pytest

import fermilink_state
from fermilink_state import _clock

FROZEN_UTC: Final = "2026-01-02T03:04:05.678901Z"
REFERENCE_MODULE: Final = "fermilink.optimize.state"
# The memory template's headings, written out here rather than read from the
# code under test.
TEMPLATE_HEADINGS: Final = [
    "# FermiLink Optimize Memory",
    "## Short-Term Memory (Operational)",
    "### Current objective",
    "### Latest accepted commit",
    "### Progress log",
    "## Long-Term Memory (Persistent)",
    "### Benchmark contract",
    "### Accepted experiments",
    "### Rejected patterns",
    "### Open hypotheses",
]
REFERENCE_DISTRIBUTION: Final = "fermilink"
REFERENCE_VERSION: Final = "0.3.10"  # the release fermilink_state is a drop-in replacement for

# Every character str.splitlines() ends a line on (test_compat_differential
# proves the list complete), and "\r\n", which it treats as one break.
LINE_BREAKS: Final = (
    "\n",
    "\r",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x85",
    "\u2028",
    "\u2029",
)


def load_reference() -> ModuleType:
    """``fermilink.optimize.state``; a clear failure (never a skip) if missing."""
    try:
        return importlib.import_module(REFERENCE_MODULE)
    except ImportError as error:  # pragma: no cover - the environment is broken
        pytest.fail(
            f"the reference {REFERENCE_MODULE} is not importable ({error}); install it with "
            f"`pip install --no-deps {REFERENCE_DISTRIBUTION}=={REFERENCE_VERSION}` "
            "(tox does this in commands_pre)",
            pytrace=False,
        )


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative POSIX path -> bytes), ignoring our ``*.lock``."""
    files: dict[str, bytes] = {}
    if not root.exists():
        return files
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and not path.name.endswith(".lock"):
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def tree_dirs(root: Path) -> list[str]:
    """Every folder under ``root``, as sorted relative POSIX paths."""
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_dir())


def temp_litter(folder: Path) -> list[str]:
    """Names of leftover temp files (ours ``.*.tmp``, the reference's ``*.tmp``)."""
    return sorted(path.name for path in folder.rglob("*") if path.name.endswith(".tmp"))


def relativize(value: object, root: Path) -> object:
    """``value`` with every ``Path`` under ``root`` written as ``<root>/relative``."""
    if isinstance(value, Path):
        try:
            return f"<root>/{value.relative_to(root).as_posix()}"
        except ValueError:
            return value
    if isinstance(value, list | tuple):
        return type(value)(relativize(item, root) for item in value)
    if isinstance(value, dict):
        return {key: relativize(item, root) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class Outcome:
    """What one library did: its return value (or error type), files and folders."""

    value: object
    error: str | None
    files: dict[str, bytes]
    dirs: list[str]


Operation = Callable[[Any, Path], object]


def run_in(library: Any, root: Path, operation: Operation) -> Outcome:
    """Run ``operation(library, root)`` in an empty folder ``root``; record the outcome."""
    root.mkdir(parents=True, exist_ok=True)
    value: object = None
    error: str | None = None
    try:
        value = relativize(operation(library, root), root)
    except Exception as exc:  # compared by type between the two libraries
        error = type(exc).__name__
    return Outcome(value, error, tree_bytes(root), tree_dirs(root))


@dataclass
class Twin:
    """Runs the same operation with the reference and with fermilink_state.

    Each run gets two fresh folders; both clocks are frozen at ``FROZEN_UTC``
    by the ``twin`` fixture.
    """

    reference: ModuleType
    base: Path
    runs: int = 0

    def both(self, operation: Operation) -> tuple[Outcome, Outcome]:
        """``(reference outcome, our outcome)`` of ``operation``."""
        self.runs += 1
        theirs = run_in(self.reference, self.base / f"ref{self.runs}", operation)
        ours = run_in(fermilink_state, self.base / f"ours{self.runs}", operation)
        return theirs, ours

    def text_pair(self, function: str, *args: object) -> tuple[object, object]:
        """Call the pure helper ``function`` of both libraries with ``args``."""
        return _call(getattr(self.reference, function), args), _call(
            getattr(fermilink_state, function), args
        )

    def edit_file(
        self, operation: Callable[[Any, Path], object], content: bytes, name: str = "memory.md"
    ) -> tuple[bytes, bytes]:
        """Write ``content`` to a file in each folder, apply ``operation``; both results."""

        def run(library: Any, root: Path) -> object:
            path = root / name
            path.write_bytes(content)
            return operation(library, path)

        theirs, ours = self.both(run)
        assert ours.error == theirs.error, (theirs.error, ours.error)
        return theirs.files.get(name, b""), ours.files.get(name, b"")


def _call(function: Callable[..., object], args: tuple[object, ...]) -> object:
    try:
        return function(*args)
    except Exception as exc:
        return f"raised {type(exc).__name__}"


def freeze_both(monkeypatch: pytest.MonkeyPatch, reference: ModuleType, text: str) -> None:
    """Freeze the reference's ``utc_now_z`` and our clock at ``text``.

    The reference is undone by ``monkeypatch``; call ``_clock.freeze(None)``
    after the test (the ``twin`` fixture does).
    """
    monkeypatch.setattr(reference, "utc_now_z", lambda: text)
    _clock.freeze(text)


def dead_pid() -> int:
    """A pid that no process can have: above the kernel's ``pid_max``."""
    try:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text(encoding="ascii"))
    except (OSError, ValueError):
        pid_max = 4_194_304  # the largest pid_max Linux allows
    return pid_max + 1


@dataclass
class FaultInjector:
    """Make one step of an atomic write fail, and count fsyncs.

    Tracks the descriptors of files opened with a ``.tmp`` name, so only the
    temp file's write / fsync fail, not pytest's own I/O.
    """

    monkeypatch: pytest.MonkeyPatch
    temp_fds: set[int] = field(default_factory=set)
    file_fsyncs: int = 0
    dir_fsyncs: int = 0

    def __post_init__(self) -> None:
        real_open = os.open
        real_fsync = os.fsync

        def tracking_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
            fd = real_open(path, flags, mode, **kwargs)
            if os.fspath(path).endswith(".tmp"):
                self.temp_fds.add(fd)
            return fd

        def counting_fsync(fd: int) -> None:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                self.dir_fsyncs += 1
            else:
                self.file_fsyncs += 1
            real_fsync(fd)

        self.monkeypatch.setattr(os, "open", tracking_open)
        self.monkeypatch.setattr(os, "fsync", counting_fsync)

    def fail_write(self, code: int = errno.EIO, *, after_bytes: int = 0) -> None:
        """``os.write`` to a temp file raises ``OSError(code)`` once ``after_bytes`` went in."""
        real_write = os.write
        written = {"bytes": 0}

        def write(fd: int, data: Any) -> int:
            if fd not in self.temp_fds:
                return real_write(fd, data)
            room = after_bytes - written["bytes"]
            if room <= 0:
                raise OSError(code, os.strerror(code))
            count = real_write(fd, bytes(data[:room]))
            written["bytes"] += count
            return count

        real_writev = getattr(os, "writev", None)

        def writev(fd: int, buffers: Any) -> int:
            # The writer gathers the pieces of an edited file in one writev.
            if fd not in self.temp_fds and real_writev is not None:
                return int(real_writev(fd, buffers))
            return write(fd, b"".join(bytes(buffer) for buffer in buffers))

        self.monkeypatch.setattr(os, "write", write)
        if real_writev is not None:
            self.monkeypatch.setattr(os, "writev", writev)

    def fail_file_fsync(self) -> None:
        """``os.fsync`` of a regular file raises EIO (folders still sync)."""
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                raise OSError(errno.EIO, "injected fsync failure")
            real_fsync(fd)

        self.monkeypatch.setattr(os, "fsync", fsync)

    def fail_dir_fsync(self) -> None:
        """``os.fsync`` of a folder raises EIO (files still sync)."""
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                raise OSError(errno.EIO, "injected directory fsync failure")
            real_fsync(fd)

        self.monkeypatch.setattr(os, "fsync", fsync)

    def fail_replace(self) -> None:
        """``os.replace`` raises EXDEV."""

        def replace(*args: Any, **kwargs: Any) -> None:
            raise OSError(errno.EXDEV, "injected replace failure")

        self.monkeypatch.setattr(os, "replace", replace)


def crlf(text: str) -> str:
    """``text`` with every ``\\n`` turned into ``\\r\\n``."""
    return text.replace("\n", "\r\n")


def iter_splitlines_breaks() -> Iterator[str]:
    """Every code point ``str.splitlines`` ends a line on, found by trying them all."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if len(f"a{char}b".splitlines()) == 2:
            yield char


# A memory file the event writer's fast path takes: LF, no BOM, no fence.
# reset_worker_memory_file's keyword arguments for a campaign's worker memory.
WORKER_MEMORY_ARGS: Final[dict[str, Any]] = {
    "package_id": "pkg",
    "benchmark_id": "bench",
    "benchmark_rel": "bench/benchmark.yaml",
    "program_rel": ".fermilink-optimize/program.md",
    "controller_memory_rel": ".fermilink-optimize/memory.md",
    "results_rel": ".fermilink-optimize/results.tsv",
    "worker_iteration": 3,
}
PLAIN_MEMORY: Final = (
    "# FermiLink Optimize Memory\n"
    "\n"
    "- package_id: pkg\n"
    "- last_updated_utc: 2026-01-01T00:00:00Z\n"
    "\n"
    "## Short-Term Memory (Operational)\n"
    "### Latest accepted commit\n"
    "- commit: pending\n"
    "### Progress log\n"
    "\n"
    "- [t0] rejected: first (abc, t=1)\n"
    "\n"
    "## Long-Term Memory (Persistent)\n"
    "### Benchmark contract\n"
    "- Benchmark file: `bench.yaml`\n"
    "### Accepted experiments\n"
    "- [t0] kept (abc, t=1)\n"
    "### Rejected patterns\n"
    "- [t0] first (abc, t=1)\n"
    "### Open hypotheses\n"
    "- Review `skills/` first.\n"
)
