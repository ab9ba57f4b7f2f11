"""The run lock: one campaign at a time, held as a lease any host can judge.

The holder renews the lease from a background thread (every sixth of it), so
a holder that died, was paused or lost the shared filesystem stops renewing,
and once the lease has expired any host may take the campaign over. Each
acquisition records a generation number that the holder keeps: its writes
into the campaign are fenced by it (see :mod:`fermilink_state._fencing`).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from fermilink_state import _clock, _fencing, _fileops
from fermilink_state._atomic import atomic_write_text
from fermilink_state._errors import (
    RunLockHeld,
    RunLockLost,
    RunLockTakeoverWarning,
    StateCorruptError,
    StateError,
)
from fermilink_state._jsonio import dump_json, load_json_file, read_json_file
from fermilink_state._layout import ensure_optimize_root, run_lock_path
from fermilink_state._locking import locked
from fermilink_state._process import hostname, process_is_alive, process_start_time

RUN_LOCK_SCHEMA_VERSION: Final = 1
RunLockState = Literal["active", "inactive", "inactive_stale"]
LEASE_ENV: Final = "FERMILINK_STATE_RUN_LOCK_LEASE"
DEFAULT_LEASE: Final = 60.0
# Renewals per lease: a holder renews every 10 s of a 60 s lease, so another
# host judges it expired only when 5 renewals in a row were missed or its
# clock is more than 50 s ahead of the holder's (README: clock skew).
RENEWALS_PER_LEASE: Final = 6


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
        if _held_by_another_process(status):
            raise RunLockHeld(path, status.holder, status.reason)
        atomic_write_text(path, text)


def load_run_lock(path: Path) -> dict[str, Any] | None:
    """Read a run-lock file like :func:`load_json_file`."""
    return load_json_file(path)


def clear_run_lock(path: Path) -> None:
    """Remove a run-lock file unless another live process holds it; ignore errors.

    Under the run lock's file lock, the lock is judged like
    :func:`write_run_lock` judges it: a stale lock, an unreadable one, or
    one this process holds is removed; one held by another live process (or
    on another host, which cannot be judged from here) is kept. This repairs
    the reference's "remove whoever holds it": FermiLink's ``optimize``
    command clears the lock in a ``finally``, so a launch refused because a
    campaign is active removed that campaign's live lock. Errors, a lock
    wait that timed out included, are ignored as in the reference. To
    remove a live lock on purpose, use ``fermilink-state unlock --force``.
    """
    with contextlib.suppress(OSError):  # StateLockTimeout is a TimeoutError too
        if not os.path.lexists(path):
            return  # nothing to remove, and no lock file to leave beside it
        with locked(path):
            if not _held_by_another_process(_inspect(path)):
                _fileops.unlink(path)


@dataclass(frozen=True, slots=True)
class RunLockStatus:
    """What :func:`run_lock_status` found.

    ``state`` is ``"active"`` (a live holder or lease, or a lease-less lock
    on another host that cannot be judged), ``"inactive"`` (no lock) or
    ``"inactive_stale"`` (an expired lease, a dead holder, a reused pid or an
    unreadable file). ``holder`` is the lock's payload when it parsed.
    ``reason`` says why in words; ``age`` is the seconds since the lease was
    last renewed (``None`` for a lock without a lease).
    """

    state: RunLockState
    holder: dict[str, Any] | None
    reason: str = ""
    path: Path | None = None
    age: float | None = None

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


def lease_seconds() -> float:
    """The lease a new holder takes: ``FERMILINK_STATE_RUN_LOCK_LEASE`` or 60 s."""
    raw = os.environ.get(LEASE_ENV, "").strip()
    if not raw:
        return DEFAULT_LEASE
    try:
        lease = float(raw)
    except ValueError:
        lease = -1.0
    if not lease > 0:
        raise ValueError(
            f"{LEASE_ENV}={raw!r} is not a positive number of seconds; set it to e.g. 60"
        )
    return lease


def lease_age(holder: dict[str, Any]) -> tuple[float, float] | None:
    """``(lease, seconds since the last renewal)`` of a lock, or ``None`` without a lease."""
    lease = _as_float(holder.get("lease_seconds"))
    renewed = _as_float(holder.get("lease_renewed_at"))
    if lease is None or renewed is None:
        return None
    return lease, time.time() - renewed


def _lease_expired(holder: dict[str, Any] | None) -> bool:
    lease = None if holder is None else lease_age(holder)
    return lease is not None and lease[1] > lease[0]


def judge_holder(holder: dict[str, Any]) -> tuple[RunLockState, str]:
    """Whether the process recorded in ``holder`` still holds the lock.

    An expired lease is stale from any host; a live lease from another host
    is active. A lock written without a lease (by the reference) is judged by
    pid on its own host and cannot be judged from another.
    """
    host = holder.get("hostname")
    pid = holder.get("pid")
    lease = lease_age(holder)
    if lease is not None and lease[1] > lease[0]:
        return "inactive_stale", (
            f"the lease of pid {pid} on host {host!r} expired {lease[1] - lease[0]:.0f} s ago "
            f"(last renewed {lease[1]:.0f} s ago, lease {lease[0]:g} s)"
        )
    if host is not None and host != hostname():
        if lease is None:
            return "active", (
                f"held by pid {pid} on host {host!r} without a lease: it cannot be checked "
                "from here"
            )
        return "active", f"held by pid {pid} on host {host!r}, lease renewed {lease[1]:.0f} s ago"
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
    lease = lease_age(holder)
    return RunLockStatus(state, holder, reason, path, None if lease is None else lease[1])


def run_lock_status(project_root: Path) -> RunLockStatus:
    """Whether the campaign of ``project_root`` is running, and who holds it."""
    return _inspect(run_lock_path(project_root))


def _written_by_this_process(holder: dict[str, Any] | None) -> bool:
    # A caller's own payload may omit the hostname (FermiLink's does): the pid
    # on this host is enough to let a process rewrite its own lock.
    if not holder or holder.get("pid") != os.getpid():
        return False
    return holder.get("hostname") in (None, hostname())


def _held_by_another_process(status: RunLockStatus) -> bool:
    """Whether a caller of the compatibility writers must leave the lock alone."""
    return status.state == "active" and not _written_by_this_process(status.holder)


def _is_mine(holder: dict[str, Any] | None) -> bool:
    if not holder or holder.get("pid") != os.getpid() or holder.get("hostname") != hostname():
        return False
    recorded = _as_float(holder.get("pid_started_at"))
    actual = process_start_time(os.getpid())
    return recorded is None or actual is None or abs(recorded - actual) <= 1.0


def _next_generation(status: RunLockStatus) -> int:
    previous = (status.holder or {}).get("generation")
    if isinstance(previous, bool) or not isinstance(previous, int):
        return 1
    return previous + 1


def acquire_run_lock(
    project_root: Path,
    payload: dict[str, Any] | None = None,
    *,
    force: bool = False,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Make this process the campaign's only holder; return what was written.

    The written payload is ``payload`` plus ``schema_version``, ``pid``,
    ``hostname``, ``started_at_utc``, ``pid_started_at``, the lease
    (``lease_seconds``, ``lease_renewed_at``) and the fencing ``generation``.
    A live holder (this process included) raises :class:`RunLockHeld`; a
    stale one (dead or reused pid, expired lease, unreadable file) is taken
    over, with a :class:`RunLockTakeoverWarning` when its lease expired. A
    thread renews the lease until :func:`release_run_lock`; meanwhile this
    process's writes into the campaign raise :class:`RunLockLost` once
    another process holds the lock.
    """
    ensure_optimize_root(project_root)
    path = run_lock_path(project_root)
    lease = lease_seconds()
    with locked(path, timeout=timeout):
        status = _inspect(path)
        if status.state == "active" and not force:
            raise RunLockHeld(path, status.holder, status.reason)
        # A lock this process lost earlier is replaced now: stop fencing by it.
        # (No join: its renewer may be waiting for the lock we hold.)
        _stop_holding(path, join=False)
        record = dict(payload or {})
        record.update(
            schema_version=RUN_LOCK_SCHEMA_VERSION,
            pid=os.getpid(),
            hostname=hostname(),
            started_at_utc=_clock.utc_now_z(),
            pid_started_at=process_start_time(os.getpid()),
            generation=_next_generation(status),
            lease_seconds=lease,
            lease_renewed_at=time.time(),
        )
        renewed_at = time.monotonic()
        text = dump_json(record)
        atomic_write_text(path, text)
        if status.state == "inactive_stale" and _lease_expired(status.holder):
            warnings.warn(
                RunLockTakeoverWarning(f"{path}: took the run lock over: {status.reason}"),
                stacklevel=2,
            )
        _start_holding(path, record, text.encode("utf-8"), renewed_at)
    return record


class _Renewer(threading.Thread):
    """Renews one held lease every sixth of it until stopped or lost."""

    def __init__(self, held: _fencing.HeldRunLock) -> None:
        super().__init__(name=f"fermilink-state lease {held.lock_path}", daemon=True)
        self.held = held
        self.stopped = threading.Event()

    def run(self) -> None:
        period = self.held.lease / RENEWALS_PER_LEASE
        while not self.stopped.wait(period):
            try:
                _renew(self.held)
            except RunLockLost:
                return  # the fence reports it at this process's next write
            except (OSError, StateError):
                if not os.path.lexists(self.held.lock_path):
                    self.held.fail("the run lock file was removed")
                    return
                # else a passing failure (a lock wait timed out): retry next period


_renewers: dict[str, _Renewer] = {}


def _renew(held: _fencing.HeldRunLock) -> None:
    """Rewrite the lease of ``held`` if the run lock still names it, else mark it lost."""
    path = Path(held.lock_path)
    with locked(path):
        started = time.monotonic()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise held.fail("the run lock file was removed (unlock --force?)") from None
        if held.lost is not None or not held.names_us(data):
            raise held.fail("another process took the run lock over")
        record = json.loads(data)
        record["lease_renewed_at"] = time.time()
        text = dump_json(record)
        atomic_write_text(path, text)
        held.expected = text.encode("utf-8")
        held.renewed_at = started


def _start_holding(path: Path, record: dict[str, Any], written: bytes, renewed_at: float) -> None:
    held = _fencing.HeldRunLock(
        lock_path=os.path.abspath(path),
        pid=record["pid"],
        hostname=record["hostname"],
        generation=record["generation"],
        expected=written,
        lease=record["lease_seconds"],
        renewed_at=renewed_at,
        renew=_renew,
    )
    _fencing.hold(path.parent, held)
    renewer = _Renewer(held)
    _renewers[held.lock_path] = renewer
    renewer.start()


def _stop_holding(path: Path, *, join: bool = True) -> None:
    held = _fencing.forget(path.parent)
    if held is not None and held.lost is None:
        held.lost = "this process released it"  # a renewal in flight must not write
    renewer = _renewers.pop(os.path.abspath(path), None)
    if renewer is not None:
        renewer.stopped.set()
        if join:
            renewer.join()


def release_run_lock(project_root: Path, *, timeout: float | None = None) -> bool:
    """Remove the run lock if this process holds it; ``True`` if it did.

    Stops renewing the lease either way.
    """
    path = run_lock_path(project_root)
    if not path.parent.is_dir():
        return False
    _stop_holding(path)
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
    """Hold the run lock for the ``with`` body; yields the written payload.

    The lease is renewed in the background for as long as the body runs.
    """
    record = acquire_run_lock(project_root, payload, force=force)
    try:
        yield record
    finally:
        release_run_lock(project_root)
