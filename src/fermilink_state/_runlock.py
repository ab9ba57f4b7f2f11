"""The run lock: one campaign at a time, with stale holders taken over."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from fermilink_state import _clock, _fileops
from fermilink_state._atomic import atomic_write_text
from fermilink_state._errors import RunLockHeld, StateCorruptError
from fermilink_state._jsonio import dump_json, load_json_file, read_json_file, write_json_file
from fermilink_state._layout import ensure_optimize_root, run_lock_path
from fermilink_state._locking import locked
from fermilink_state._process import hostname, process_is_alive, process_start_time

RUN_LOCK_SCHEMA_VERSION: Final = 1
RunLockState = Literal["active", "inactive", "inactive_stale"]


def write_run_lock(path: Path, payload: dict[str, Any]) -> None:
    """Write a run-lock file as given (atomically), unless another live process holds it.

    Under the run lock's file lock, a lock held by another live process (or
    one on another host, which cannot be judged from here) is not
    overwritten: :class:`RunLockHeld` is raised. This closes the
    check-then-write race of callers that test the lock and then write it
    (FermiLink's controller does): of several racing writers, one wins. A
    stale lock, an unreadable one, or one this process holds is replaced.
    """
    text = dump_json(payload)  # a payload that does not serialise changes nothing
    _fileops.make_folders(path.parent)  # the lock file needs its folder, durably
    with locked(path):
        status = _inspect(path)
        if status.state == "active" and not _written_by_this_process(status.holder):
            raise RunLockHeld(path, status.holder, status.reason)
        atomic_write_text(path, text)


def load_run_lock(path: Path) -> dict[str, Any] | None:
    """Read a run-lock file like :func:`load_json_file`."""
    return load_json_file(path)


def clear_run_lock(path: Path) -> None:
    """Remove a run-lock file whoever holds it; ignore errors."""
    with contextlib.suppress(OSError):
        _fileops.unlink(path)


@dataclass(frozen=True, slots=True)
class RunLockStatus:
    """What :func:`run_lock_status` found.

    ``state`` is ``"active"`` (a live holder, or one on another host that
    cannot be judged), ``"inactive"`` (no lock) or ``"inactive_stale"`` (a
    dead holder, a reused pid or an unreadable file). ``holder`` is the lock's
    payload when it parsed. ``reason`` says why in words.
    """

    state: RunLockState
    holder: dict[str, Any] | None
    reason: str = ""
    path: Path | None = None

    @property
    def active(self) -> bool:
        """Whether a campaign is (or may be) running."""
        return self.state == "active"


RunLockStatus.__module__ = "fermilink_state"  # its public home


def _as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def judge_holder(holder: dict[str, Any]) -> tuple[RunLockState, str]:
    """Whether the process recorded in ``holder`` still holds the lock."""
    host = holder.get("hostname")
    pid = holder.get("pid")
    if host is not None and host != hostname():
        return "active", f"held by pid {pid} on host {host!r}, which cannot be checked from here"
    if isinstance(pid, bool) or not isinstance(pid, int):
        return "inactive_stale", f"the lock records no usable pid ({pid!r})"
    started = _as_float(holder.get("pid_started_at"))
    if process_is_alive(pid, started):
        return "active", f"held by live pid {pid} on this host"
    if process_is_alive(pid):
        return "inactive_stale", f"pid {pid} was reused by another process"
    return "inactive_stale", f"holder pid {pid} is no longer running"


def _inspect(path: Path) -> RunLockStatus:
    try:
        holder = read_json_file(path)
    except FileNotFoundError:
        return RunLockStatus("inactive", None, "no run lock", path)
    except StateCorruptError as error:
        return RunLockStatus("inactive_stale", None, f"unreadable lock: {error.reason}", path)
    except OSError as error:
        return RunLockStatus("inactive_stale", None, f"unreadable lock: {error}", path)
    state, reason = judge_holder(holder)
    return RunLockStatus(state, holder, reason, path)


def run_lock_status(project_root: Path) -> RunLockStatus:
    """Whether the campaign of ``project_root`` is running, and who holds it."""
    return _inspect(run_lock_path(project_root))


def _written_by_this_process(holder: dict[str, Any] | None) -> bool:
    # A caller's own payload may omit the hostname (FermiLink's does): the pid
    # on this host is enough to let a process rewrite its own lock.
    if not holder or holder.get("pid") != os.getpid():
        return False
    return holder.get("hostname") in (None, hostname())


def _is_mine(holder: dict[str, Any] | None) -> bool:
    if not holder or holder.get("pid") != os.getpid() or holder.get("hostname") != hostname():
        return False
    recorded = _as_float(holder.get("pid_started_at"))
    actual = process_start_time(os.getpid())
    return recorded is None or actual is None or abs(recorded - actual) <= 1.0


def acquire_run_lock(
    project_root: Path,
    payload: dict[str, Any] | None = None,
    *,
    force: bool = False,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Make this process the campaign's only holder; return what was written.

    The written payload is ``payload`` plus ``schema_version``, ``pid``,
    ``hostname``, ``started_at_utc`` and ``pid_started_at``. A live holder
    (this process included) raises :class:`RunLockHeld`; a stale one (dead pid,
    reused pid, unreadable file) is taken over. A holder on another host is
    never judged by pid: :class:`RunLockHeld` unless ``force=True``.
    """
    ensure_optimize_root(project_root)
    path = run_lock_path(project_root)
    with locked(path, timeout=timeout):
        status = _inspect(path)
        if status.state == "active" and not force:
            raise RunLockHeld(path, status.holder, status.reason)
        record = dict(payload or {})
        record.update(
            schema_version=RUN_LOCK_SCHEMA_VERSION,
            pid=os.getpid(),
            hostname=hostname(),
            started_at_utc=_clock.utc_now_z(),
            pid_started_at=process_start_time(os.getpid()),
        )
        write_json_file(path, record)
    return record


def release_run_lock(project_root: Path, *, timeout: float | None = None) -> bool:
    """Remove the run lock if this process holds it; ``True`` if it did."""
    path = run_lock_path(project_root)
    if not path.parent.is_dir():
        return False
    with locked(path, timeout=timeout):
        try:
            holder = read_json_file(path)
        except (OSError, StateCorruptError):
            return False
        if not _is_mine(holder):
            return False
        # No folder sync: a released lock that reappears after a power cut
        # names a dead holder, and staleness detection takes it over.
        _fileops.unlink(path)
    return True


@contextlib.contextmanager
def run_lock(
    project_root: Path, payload: dict[str, Any] | None = None, *, force: bool = False
) -> Iterator[dict[str, Any]]:
    """Hold the run lock for the ``with`` body; yields the written payload."""
    record = acquire_run_lock(project_root, payload, force=force)
    try:
        yield record
    finally:
        release_run_lock(project_root)
