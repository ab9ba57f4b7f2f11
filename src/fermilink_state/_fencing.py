"""Fencing: once another process holds a campaign's run lock, our writes stop.

A run-lock holder that was paused (SIGSTOP, a swapped-out VM, a long GC) or
cut off from the shared filesystem past its lease may find that another host
took the campaign over. This module keeps the run locks this process holds
and, before each write into one of their campaign folders, checks that the
run lock file still names this holder (pid, host and generation), else raises
:class:`RunLockLost` so that nothing is written.

The check is one small read of the lock file, compared with the bytes this
process last wrote to it (no JSON parse while nothing changed), and nothing
at all while this process holds no run lock. It is not atomic with the write
it guards: a pause between the check and the write can still let that one
write through after a takeover (see README, "Shared filesystems and clusters").
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fermilink_state._errors import RunLockLost
from fermilink_state._replaced_files import read_once


@dataclass(slots=True)
class HeldRunLock:
    """A run lock this process holds: what it last wrote and when it last confirmed it."""

    lock_path: str
    pid: int
    hostname: str
    generation: int
    expected: bytes
    lease: float
    # time.monotonic() just before the last write of the lease by this process.
    renewed_at: float
    # Re-reads and renews the lock under its file lock (set by the run lock).
    renew: Callable[[HeldRunLock], None] = field(repr=False)
    lost: str | None = None

    def names_us(self, data: bytes) -> bool:
        """Whether lock-file bytes record this holder (its pid, host and generation)."""
        if data == self.expected:
            return True
        try:
            record = json.loads(data)
        except ValueError:
            return False
        return (
            isinstance(record, dict)
            and record.get("pid") == self.pid
            and record.get("hostname") == self.hostname
            and record.get("generation") == self.generation
        )

    def fail(self, why: str) -> RunLockLost:
        """Mark the lock lost (for good) and return the error to raise."""
        if self.lost is None:
            self.lost = why
        return RunLockLost(self.lock_path, self.generation, self.lost)


# Keyed by the campaign folder's absolute path with a trailing separator.
_held: dict[str, HeldRunLock] = {}
_guard = threading.Lock()


def _forget_all_in_child() -> None:
    # A forked child is not the holder: it has no renewal thread, and its pid
    # is not the one in the lock.
    global _guard
    _guard = threading.Lock()
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_all_in_child)


def _key(folder: Path | str) -> str:
    return os.path.join(os.path.abspath(folder), "")


def hold(folder: Path | str, held: HeldRunLock) -> None:
    """Fence writes into ``folder`` (a campaign folder) by ``held`` from now on."""
    with _guard:
        _held[_key(folder)] = held


def forget(folder: Path | str) -> HeldRunLock | None:
    """Stop fencing ``folder``; the record it had, if any."""
    with _guard:
        return _held.pop(_key(folder), None)


def held_in(folder: Path | str) -> HeldRunLock | None:
    """The run lock this process holds for ``folder``, if any."""
    return _held.get(_key(folder))


def check_fence(path: Path | str) -> None:
    """Raise :class:`RunLockLost` if ``path`` is in a campaign whose run lock we lost.

    Free when this process holds no run lock. Writes to the run lock file
    itself are not fenced here: the run lock checks those under its file lock.
    """
    if not _held:
        return
    target = os.path.abspath(path)
    for folder, held in list(_held.items()):
        if target.startswith(folder) and target != held.lock_path:
            verify(held)


def verify(held: HeldRunLock) -> None:
    """Check that the run lock still names ``held``; renew it if it is half expired."""
    if held.lost is not None:
        raise held.fail(held.lost)
    started = time.monotonic()
    data = _read(held)
    if data is None or not held.names_us(data):
        # On NFS and FUSE a file being replaced can look missing for an instant
        # (the old one is renamed aside first): only a read under the run
        # lock's file lock, which every writer of the run lock holds, decides.
        from fermilink_state._locking import locked

        with locked(Path(held.lock_path)):
            data = _read(held)
        if data is None:
            raise held.fail("the run lock file was removed (unlock --force?) or is unreadable")
        if not held.names_us(data):
            raise held.fail("another process took the run lock over")
    held.expected = data
    if started - held.renewed_at > held.lease / 2:
        # The renewal thread fell behind (this process was paused?): other
        # hosts may judge the lease expired any moment. Renew before writing,
        # under the lock file a takeover also holds, so one of us wins.
        held.renew(held)


def _read(held: HeldRunLock) -> bytes | None:
    # One read, no waiting: a miss (or ESTALE mid-replace on NFS) is judged
    # again under the run lock's file lock, which every writer of it holds.
    try:
        return read_once(held.lock_path)[0]
    except OSError:
        return None
