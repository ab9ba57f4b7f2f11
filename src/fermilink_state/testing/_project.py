"""Throwaway campaign projects for tests: layout, seeding, snapshots, clock, run-lock holders.

Plain code with no pytest: the plugin's fixtures are thin wrappers over it,
``fermilink_state.testing`` re-exports its types, and the benchmark calls
:func:`seed_project` directly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, final, overload

from fermilink_state import _clock, _layout
from fermilink_state._atomic import atomic_write_bytes
from fermilink_state._document import MemoryDocument, read_memory
from fermilink_state._jsonio import dump_json, read_json_file
from fermilink_state._layout import (
    MEMORY_FILENAME,
    OPTIMIZE_DIRNAME,
    PROGRAM_FILENAME,
    RESULTS_FILENAME,
)
from fermilink_state._locking import is_lock_file, locked
from fermilink_state._memory import memory_template
from fermilink_state._process import hostname, process_start_time
from fermilink_state._results import (
    RESULT_FIELDS,
    RESULTS_HEADER,
    ResultRow,
    format_result_row,
    read_results,
)
from fermilink_state._runlock import DEFAULT_LEASE, RUN_LOCK_SCHEMA_VERSION, write_run_lock

DEFAULT_PACKAGE_ID: Final = "demo_package"
DEFAULT_BENCHMARK_ID: Final = "demo_benchmark"
DEFAULT_BENCHMARK_REL: Final = "benchmarks/demo.yaml"
DEFAULT_OPTIMIZE_BRANCH: Final = "fermilink-optimize/demo"
DEFAULT_BASELINE: Final = ResultRow(
    iteration=0,
    commit="0123456789ab",
    status="baseline",
    primary_metric_name="runtime_seconds",
    primary_metric_value=1.0,
    description="baseline",
)
DEFAULT_FROZEN_UTC: Final = "2026-01-02T03:04:05.678901Z"

ResultLike = ResultRow | Mapping[str, object]


class _LayoutPath:
    """A read-only attribute of :class:`OptimizeProject`: one path helper of the layout."""

    def __init__(self, helper: Callable[[Path], Path]) -> None:
        self._helper = helper
        self.__doc__ = helper.__doc__

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> _LayoutPath: ...

    @overload
    def __get__(self, instance: OptimizeProject, owner: type[Any]) -> Path: ...

    def __get__(self, instance: OptimizeProject | None, owner: type[Any]) -> Path | _LayoutPath:
        if instance is None:
            return self
        return self._helper(instance.root)


@final
@dataclass(frozen=True, slots=True)
class OptimizeProject:
    """A campaign's project folder and every path of its layout.

    ``root`` is the project; every other attribute is the path the layout
    helper of the same name gives (``program_path`` is
    ``default_program_path``). Paths are computed on access, nothing is
    created by reading them.
    """

    root: Path

    optimize_root = _LayoutPath(_layout.optimize_root)
    state_path = _LayoutPath(_layout.state_path)
    results_path = _LayoutPath(_layout.results_path)
    memory_path = _LayoutPath(_layout.memory_path)
    worker_memory_path = _LayoutPath(_layout.worker_memory_path)
    worker_benchmark_path = _LayoutPath(_layout.worker_benchmark_path)
    run_lock_path = _LayoutPath(_layout.run_lock_path)
    runs_root = _LayoutPath(_layout.runs_root)
    autogen_root = _LayoutPath(_layout.autogen_root)
    program_path = _LayoutPath(_layout.default_program_path)
    inputs_root = _LayoutPath(_layout.inputs_root)
    goal_inputs_all_root = _LayoutPath(_layout.goal_inputs_all_root)
    goal_inputs_worker_root = _LayoutPath(_layout.goal_inputs_worker_root)
    goal_inputs_manifest_path = _LayoutPath(_layout.goal_inputs_manifest_path)
    quick_manifest_path = _LayoutPath(_layout.quick_manifest_path)
    quick_benchmark_path = _LayoutPath(_layout.quick_benchmark_path)
    quick_runner_path = _LayoutPath(_layout.quick_runner_path)
    quick_submit_launcher_path = _LayoutPath(_layout.quick_submit_launcher_path)
    quick_setup_path = _LayoutPath(_layout.quick_setup_path)
    quick_run_script_path = _LayoutPath(_layout.quick_run_script_path)
    goal_manifest_path = _LayoutPath(_layout.goal_manifest_path)
    goal_analysis_path = _LayoutPath(_layout.goal_analysis_path)
    goal_copy_path = _LayoutPath(_layout.goal_copy_path)
    goal_benchmark_path = _LayoutPath(_layout.goal_benchmark_path)
    goal_runner_path = _LayoutPath(_layout.goal_runner_path)
    goal_submit_launcher_path = _LayoutPath(_layout.goal_submit_launcher_path)
    goal_setup_path = _LayoutPath(_layout.goal_setup_path)
    goal_run_script_path = _LayoutPath(_layout.goal_run_script_path)

    def relative(self, path: Path | str) -> Path:
        """``path`` relative to :attr:`root`, as :meth:`Snapshot.diff` reports it."""
        return Path(path).relative_to(self.root)

    def seed(self, **seed: Any) -> OptimizeProject:
        """Seed this project (see :func:`seed_project`); return it."""
        return seed_project(self.root, **seed)

    def snapshot(self, *, include_locks: bool = False) -> Snapshot:
        """Record the bytes of every file under :attr:`root`.

        The files of the inter-process locks (``<file>.lock``, and for the
        strict and soft backends ``<file>.strict-lock`` with its ``.filelock``
        folder, ``<file>.soft-lock``) are left out unless ``include_locks``:
        they appear on first use and stay.
        """
        return Snapshot.capture(self.root, include_locks=include_locks)

    def read_memory(self) -> MemoryDocument:
        """``memory.md`` parsed as a :class:`~fermilink_state.MemoryDocument`."""
        return read_memory(self.memory_path)

    def read_results(self) -> list[ResultRow]:
        """Every row of ``results.tsv`` (strict: a malformed line raises)."""
        return read_results(self.results_path)

    def read_state(self) -> dict[str, Any]:
        """``state.json`` (strict: a missing or corrupt file raises)."""
        return read_json_file(self.state_path)


@final
@dataclass(frozen=True, slots=True)
class Snapshot:
    """The bytes of every file under ``root`` at one moment, keyed by relative path."""

    root: Path
    files: Mapping[Path, bytes]

    @classmethod
    def capture(cls, root: Path, *, include_locks: bool = False) -> Snapshot:
        """Read every file under ``root`` (symlinks are not followed)."""
        root = Path(root)
        files: dict[Path, bytes] = {}
        for folder, folders, names in os.walk(root):
            if not include_locks:
                folders[:] = [name for name in folders if not is_lock_file(name)]
            for name in names:
                if is_lock_file(name) and not include_locks:
                    continue
                path = Path(folder, name)
                if path.is_symlink():
                    files[path.relative_to(root)] = os.readlink(path).encode()
                    continue
                with contextlib.suppress(FileNotFoundError):
                    files[path.relative_to(root)] = path.read_bytes()
        return cls(root, files)

    def diff(self, other: Snapshot) -> list[Path]:
        """Sorted relative paths added, removed or changed between ``self`` and ``other``."""
        paths = self.files.keys() | other.files.keys()
        return sorted(path for path in paths if self.files.get(path) != other.files.get(path))

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str | Path) and Path(path) in self.files

    def __getitem__(self, path: Path | str) -> bytes:
        return self.files[Path(path)]

    def text(self, path: Path | str) -> str:
        """One recorded file decoded as UTF-8."""
        return self[path].decode("utf-8")


def _write_throwaway(path: Path, data: bytes) -> None:
    # Atomic but not durable: a test project is thrown away, so the fsyncs and
    # the dead-temp sweep would only cost time.
    atomic_write_bytes(path, data, durable=False)


class SeedError(TypeError):
    """A seed value that cannot make a campaign (the message says which and why)."""


def _as_row(row: ResultLike) -> ResultRow:
    if isinstance(row, ResultRow):
        return row
    unknown = [name for name in row if name not in RESULT_FIELDS]
    missing = [name for name in RESULT_FIELDS[:-1] if name not in row]  # description optional
    problems = []
    if missing:
        problems.append(f"lacks {', '.join(missing)}")
    if unknown:
        problems.append(f"has unknown fields {', '.join(map(str, unknown))}")
    if problems:
        raise SeedError(
            f"result row {dict(row)!r} {' and '.join(problems)}; a row gives "
            f"{', '.join(RESULT_FIELDS[:-1])} (and optionally description)"
        )
    value = row["primary_metric_value"]
    try:
        iteration = int(row["iteration"])  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise SeedError(
            f"result row {dict(row)!r}: iteration {row['iteration']!r} is not an integer"
        ) from None
    return ResultRow(
        iteration=iteration,
        commit=str(row["commit"]),
        status=str(row["status"]),
        primary_metric_name=str(row["primary_metric_name"]),
        primary_metric_value=value if isinstance(value, int | float) else str(value),
        description=str(row.get("description", "")),
    )


def results_text(rows: Iterable[ResultLike]) -> str:
    """A whole ledger: the header and one line per row, exactly as ``append_result`` writes."""
    lines = [RESULTS_HEADER]
    for item in rows:
        row = _as_row(item)
        lines.append(
            format_result_row(
                iteration=row.iteration,
                commit=row.commit,
                status=row.status,
                primary_metric_name=row.primary_metric_name,
                primary_metric_value=row.primary_metric_value,
                description=row.description,
            )
        )
    return "".join(lines)


def initial_state(
    *,
    package_id: str,
    benchmark_id: str,
    benchmark_rel: str,
    optimize_branch: str,
    baseline_commit: str,
    started: str,
) -> dict[str, Any]:
    """A ``state.json`` as FermiLink's controller leaves it after the baseline run."""
    return {
        "schema_version": 1,
        "package_id": package_id,
        "benchmark_id": benchmark_id,
        "benchmark_path": benchmark_rel,
        "program_path": f"{OPTIMIZE_DIRNAME}/{PROGRAM_FILENAME}",
        "memory_path": f"{OPTIMIZE_DIRNAME}/{MEMORY_FILENAME}",
        "results_path": f"{OPTIMIZE_DIRNAME}/{RESULTS_FILENAME}",
        "branch": optimize_branch,
        "started_at_utc": started,
        "iteration": 0,
        "accepted_count": 0,
        "rejected_count": 0,
        "consecutive_rejections": 0,
        "baseline_commit": baseline_commit,
        "baseline_metrics": {},
        "incumbent_commit": baseline_commit,
        "incumbent_metrics": {},
    }


def new_project(root: Path) -> OptimizeProject:
    """An empty project at ``root``: only the campaign folder and its ``runs/`` exist."""
    project = OptimizeProject(Path(root))
    top = os.fspath(project.root)
    optimize = os.path.join(top, _layout.OPTIMIZE_DIRNAME)
    try:
        # Usually a fresh folder (a test's): three mkdirs and nothing else;
        # mkdir(parents=True) would first fail on each missing level.
        os.mkdir(top)
        os.mkdir(optimize)
        os.mkdir(os.path.join(optimize, _layout.RUNS_DIRNAME))
    except OSError:
        project.runs_root.mkdir(parents=True, exist_ok=True)
    return project


def seed_project(
    root: Path,
    *,
    package_id: str = DEFAULT_PACKAGE_ID,
    benchmark_id: str = DEFAULT_BENCHMARK_ID,
    benchmark_rel: str = DEFAULT_BENCHMARK_REL,
    optimize_branch: str = DEFAULT_OPTIMIZE_BRANCH,
    results: Iterable[ResultLike] | None = None,
    state: Mapping[str, Any] | None = None,
    memory: str | None = None,
) -> OptimizeProject:
    """Create (or overwrite) a campaign at ``root`` as FermiLink leaves it after its baseline.

    Writes ``memory.md`` from the reference template (or ``memory`` as given),
    ``results.tsv`` with the header and ``results`` (default: one baseline
    row; ``[]`` for the header alone; :class:`ResultRow` or mappings with
    ``append_result``'s keyword names), and ``state.json`` with an initial
    state whose keys ``state`` overrides. Every time stamp is one
    ``utc_now_z()`` reading, so a frozen clock makes the files reproducible.
    The files of a seed are built once per process and written per call
    (never hard-linked): unless the clock is frozen, their time stamp is
    that of the first call with the same seed. Files are not fsynced:
    seeded projects are for tests and benchmarks.
    """
    seed = {
        "package_id": package_id,
        "benchmark_id": benchmark_id,
        "benchmark_rel": benchmark_rel,
        "optimize_branch": optimize_branch,
        "results": results,
        "state": state,
        "memory": memory,
    }
    return write_seed(new_project(root), seed)


def write_seed(project: OptimizeProject, seed: Mapping[str, Any]) -> OptimizeProject:
    """Write a seed's files into ``project``, whose folders exist (see :func:`seed_project`).

    ``seed`` holds keys of :data:`SEED_KEYS`; those left out take their defaults.
    """
    optimize = os.path.join(project.root, _layout.OPTIMIZE_DIRNAME)
    files = _seed_files({**_SEED_DEFAULTS, **seed})
    for name, data in zip(_SEED_FILENAMES, files, strict=True):
        _write_seed_file(os.path.join(optimize, name), data)
    return project


# The bytes of each seed asked for in this process, by what was asked (the
# clock's frozen value included): a test suite seeds the same campaign over
# and over, so it is built once and written per test.
_SEEDS: Final[dict[str, tuple[bytes, bytes, bytes]]] = {}
_SEEDS_KEPT: Final = 256
# seed_project's keyword defaults, read off its signature: stated once.
_SEED_DEFAULTS: Final[dict[str, Any]] = dict(seed_project.__kwdefaults__ or {})
# What a seed may say: the keyword arguments of seed_project and of the marker.
SEED_KEYS: Final = tuple(_SEED_DEFAULTS)
# The files of _seed_files, in its order.
_SEED_FILENAMES: Final = (
    _layout.MEMORY_FILENAME,
    _layout.RESULTS_FILENAME,
    _layout.STATE_FILENAME,
)
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_NEW_FILE: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC


def _seed_files(seed: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    """memory.md, results.tsv and state.json of a seed."""
    results = seed["results"]
    if results is not None and not isinstance(results, list | tuple):
        return _build_seed(**seed)  # an iterator: read it once, keep nothing
    key = repr((_clock.utc_now_z() if _clock.is_frozen() else None, sorted(seed.items())))
    files = _SEEDS.get(key)
    if files is None:
        if len(_SEEDS) >= _SEEDS_KEPT:
            _SEEDS.clear()
        files = _SEEDS[key] = _build_seed(**seed)
    return files


def _build_seed(
    *,
    package_id: str,
    benchmark_id: str,
    benchmark_rel: str,
    optimize_branch: str,
    results: Iterable[ResultLike] | None,
    state: Mapping[str, Any] | None,
    memory: str | None,
) -> tuple[bytes, bytes, bytes]:
    rows = [DEFAULT_BASELINE] if results is None else [_as_row(row) for row in results]
    baseline = next((row.commit for row in rows if row.status == "baseline"), "")
    now = _clock.utc_now_z()
    if memory is None:
        memory = memory_template(
            package_id=package_id,
            benchmark_id=benchmark_id,
            benchmark_rel=benchmark_rel,
            optimize_branch=optimize_branch,
            started=now,
        )
    payload = initial_state(
        package_id=package_id,
        benchmark_id=benchmark_id,
        benchmark_rel=benchmark_rel,
        optimize_branch=optimize_branch,
        baseline_commit=baseline,
        started=now,
    )
    payload.update(state or {})
    return (
        memory.encode("utf-8"),
        results_text(rows).encode("utf-8"),
        dump_json(payload).encode("utf-8"),
    )


def _write_seed_file(path: str, data: bytes) -> None:
    # A fresh project's file is created in place (nobody can see it half
    # written yet); one that exists is replaced atomically, as any write.
    try:
        fd = os.open(path, _NEW_FILE, 0o666)
    except FileExistsError:
        _write_throwaway(Path(path), data)
        return
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def remove_project(project: OptimizeProject) -> None:
    """Delete a throwaway project's folder; missing files are fine."""
    if _FD_RELATIVE:  # not on Windows
        try:
            _remove_seeded(os.fspath(project.root))
        except OSError:
            pass  # more than a seed left (or something replaced): rmtree removes it
        else:
            return
    shutil.rmtree(project.root, ignore_errors=True)


# What a seeded project holds: these files in its campaign folder, and runs/.
_SEEDED_FILES: Final = (*_SEED_FILENAMES, _layout.RUNS_DIRNAME)
_FD_RELATIVE: Final = {os.open, os.unlink, os.rmdir} <= os.supports_dir_fd
_FOLDER_FLAGS: Final = (
    os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | _CLOEXEC
)


def _remove_seeded(root: str) -> None:
    """Remove a project that holds at most what a seed writes; else raise ``OSError``.

    A few syscalls where ``shutil.rmtree`` looks at every entry. Relative to
    file descriptors opened without following symbolic links: a test that
    swapped a folder for a link cannot make this delete outside the project.
    """
    top = os.open(root, _FOLDER_FLAGS)
    try:
        optimize = os.open(_layout.OPTIMIZE_DIRNAME, _FOLDER_FLAGS, dir_fd=top)
        try:
            for name in _SEEDED_FILES[:-1]:
                with contextlib.suppress(FileNotFoundError):  # an unseeded project has none
                    os.unlink(name, dir_fd=optimize)
            os.rmdir(_SEEDED_FILES[-1], dir_fd=optimize)
        finally:
            os.close(optimize)
        os.rmdir(_layout.OPTIMIZE_DIRNAME, dir_fd=top)
    finally:
        os.close(top)
    os.rmdir(root)


def open_shared_project(root: Path, **seed: Any) -> tuple[OptimizeProject, bool]:
    """The campaign at ``root``, seeded exactly once however many processes ask.

    Seeding happens under the inter-process lock ``<root>.lock`` and is
    confirmed by a ``<root>.seeded`` marker written last, so a process that
    died half-way is redone by the next one. Returns the project and whether
    this call seeded it.
    """
    root = Path(root)
    marker = root.with_name(root.name + ".seeded")
    root.parent.mkdir(parents=True, exist_ok=True)
    with locked(root):
        if marker.exists():
            return OptimizeProject(root), False
        shutil.rmtree(root, ignore_errors=True)
        project = seed_project(root, **seed)
        _write_throwaway(marker, b"")
    return project, True


class ProjectFactory(Protocol):
    """The type of the ``make_optimize_project`` fixture."""

    def __call__(self, *, seeded: bool = True, **seed: Any) -> OptimizeProject:
        """A new project in its own folder, seeded unless ``seeded=False``."""
        ...


def _iso(moment: datetime) -> str:
    # The format of utc_now_z(): isoformat, "+00:00" spelled "Z".
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class FrozenClock:
    """The library's clock held still at a settable value (the ``frozen_utc`` fixture).

    Every writer that stamps a time (memory events, state, run lock) reads
    the value, in this process and in every process started while the clock
    is frozen, forked or spawned (through the ``FERMILINK_STATE_FROZEN_UTC``
    environment variable). Use as a context manager or call :meth:`start` / :meth:`stop`;
    stopping restores whatever the clock was before.
    """

    def __init__(self, value: str | datetime = DEFAULT_FROZEN_UTC) -> None:
        self._value = _iso(value) if isinstance(value, datetime) else value
        self._previous: str | None = None
        self._previous_env: str | None = None
        self._active = False

    @property
    def now(self) -> str:
        """The frozen time, as ``utc_now_z()`` returns it."""
        return self._value

    def __str__(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"FrozenClock({self._value!r})"

    def set(self, value: str | datetime) -> str:
        """Freeze the clock at ``value`` (text stamped as is, or a datetime); return the text."""
        self._value = _iso(value) if isinstance(value, datetime) else value
        if self._active:
            self._apply()
        return self._value

    def tick(self, seconds: float = 1) -> str:
        """Move the clock forward by ``seconds`` (negative goes back); return the new text."""
        try:
            moment = datetime.fromisoformat(self._value)
        except ValueError:
            raise ValueError(
                f"cannot tick a clock set to {self._value!r}: set() an ISO 8601 time "
                "such as 2026-01-02T03:04:05Z first"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return self.set(moment + timedelta(seconds=seconds))

    def start(self) -> FrozenClock:
        """Freeze the library's clock at :attr:`now`, here and in processes started meanwhile."""
        if not self._active:
            self._previous = _clock._frozen
            self._previous_env = os.environ.get(_clock.FROZEN_ENV)
            self._active = True
        self._apply()
        return self

    def _apply(self) -> None:
        _clock.freeze(self._value)
        # Through the environment for child processes: spawned ones share no memory.
        os.environ[_clock.FROZEN_ENV] = self._value

    def stop(self) -> None:
        """Give the library back the clock it had before :meth:`start`."""
        if self._active:
            _clock.freeze(self._previous)
            if self._previous_env is None:
                os.environ.pop(_clock.FROZEN_ENV, None)
            else:
                os.environ[_clock.FROZEN_ENV] = self._previous_env
            self._active = False

    def __enter__(self) -> FrozenClock:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _lock_payload(pid: int, lease: float = DEFAULT_LEASE) -> dict[str, Any]:
    # What acquire_run_lock writes, for a pid other than ours.
    return {
        "schema_version": RUN_LOCK_SCHEMA_VERSION,
        "pid": pid,
        "hostname": hostname(),
        "started_at_utc": _clock.utc_now_z(),
        "pid_started_at": process_start_time(pid),
        "generation": 1,
        "lease_seconds": lease,
        "lease_renewed_at": time.time(),
    }


# The live holder renews nothing: a lease of a day keeps it "active" for any test.
_LIVE_HOLDER_LEASE: Final = 86400.0


def _spawn_idle_process() -> subprocess.Popen[bytes]:
    # A real process that lives until its stdin closes: no sleep to outlast.
    return subprocess.Popen(
        [sys.executable, "-S", "-c", "import sys; sys.stdin.buffer.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _end_process(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def write_stale_run_lock(project_root: Path) -> dict[str, Any]:
    """Write a run lock held by a process that has exited (and was reaped); return it."""
    process = _spawn_idle_process()
    try:
        payload = _lock_payload(process.pid)
    finally:
        process.kill()
        _end_process(process)
    write_run_lock(_layout.run_lock_path(Path(project_root)), payload)
    return payload


class LiveRunLockHolder:
    """Another live process recorded as the holder of a project's run lock.

    The process is a real child that idles until :meth:`stop` (or the end of
    the ``with`` block) ends it; the lock file is left behind, now stale.
    """

    def __init__(self, project_root: Path) -> None:
        self.project_root = Path(project_root)
        self._process = _spawn_idle_process()
        try:
            self.payload: dict[str, Any] = _lock_payload(self._process.pid, _LIVE_HOLDER_LEASE)
            write_run_lock(_layout.run_lock_path(self.project_root), self.payload)
        except BaseException:
            _end_process(self._process)
            raise

    @property
    def pid(self) -> int:
        """The holder's process id."""
        return self._process.pid

    def stop(self) -> None:
        """End the holder process (idempotent)."""
        _end_process(self._process)

    def __enter__(self) -> LiveRunLockHolder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# Reprs, pickles and documentation name the public home of these types,
# whichever module imported them first.
for _public in (FrozenClock, LiveRunLockHolder, OptimizeProject, ProjectFactory, Snapshot):
    _public.__module__ = "fermilink_state.testing"
del _public
