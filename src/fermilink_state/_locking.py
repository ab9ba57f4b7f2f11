"""Inter-process locks on campaign files (a sibling ``<file>.lock``).

One lock object per lock file per process, reused: filelock's own counter
then makes nested use in one thread reentrant instead of a self-deadlock.
Lock files are left in place on release: deleting them races with waiters.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

from fermilink_state._errors import StateLockTimeout

if TYPE_CHECKING:
    from filelock import BaseFileLock

LOCK_ENV: Final = "FERMILINK_STATE_LOCK"
TIMEOUT_ENV: Final = "FERMILINK_STATE_LOCK_TIMEOUT"
DEFAULT_TIMEOUT: Final = 60.0
LOCK_SUFFIX: Final = ".lock"

_locks: dict[tuple[str, str], BaseFileLock] = {}
_locks_guard = threading.Lock()


def _reset_guard_in_child() -> None:
    # A fork while another thread held the guard would leave it locked forever.
    # filelock refuses lock objects inherited across fork (RuntimeError), so a
    # forked child (multiprocessing's default on Linux) starts a cache of its own.
    global _locks_guard, _locks
    _locks_guard = threading.Lock()
    _locks = {}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_guard_in_child)


def lock_backend() -> str:
    """``"soft"`` when ``FERMILINK_STATE_LOCK=soft``, else ``"flock"`` (read each call)."""
    return "soft" if os.environ.get(LOCK_ENV, "").strip().lower() == "soft" else "flock"


def lock_timeout(timeout: float | None = None) -> float:
    """``timeout`` if given, else ``FERMILINK_STATE_LOCK_TIMEOUT``, else 60 s."""
    if timeout is not None:
        return float(timeout)
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        return float(raw)
    except ValueError:
        raise ValueError(
            f"{TIMEOUT_ENV}={raw!r} is not a number of seconds; set it to e.g. 60"
        ) from None


def lock_path_for(path: Path) -> Path:
    """The lock file guarding ``path``: ``<path>.lock`` beside it."""
    return path.with_name(path.name + LOCK_SUFFIX)


def file_lock(path: Path) -> BaseFileLock:
    """The process-wide lock object guarding ``path`` (created on first use)."""
    # filelock is imported on first use: it is most of this package's import time.
    from filelock import FileLock, SoftFileLock

    lock_file = os.path.abspath(lock_path_for(path))
    backend = lock_backend()
    key = (lock_file, backend)
    with _locks_guard:
        lock = _locks.get(key)
        if lock is None:
            lock = SoftFileLock(lock_file) if backend == "soft" else FileLock(lock_file)
            _locks[key] = lock
    return lock


@contextlib.contextmanager
def locked(path: Path, *, timeout: float | None = None) -> Iterator[None]:
    """Hold the inter-process lock of ``path`` for the ``with`` body.

    Raises :class:`StateLockTimeout` naming the lock file when the wait is
    longer than :func:`lock_timeout`. The folder of ``path`` must exist.
    """
    from filelock import Timeout

    lock = file_lock(path)
    wait = lock_timeout(timeout)
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise StateLockTimeout(lock.lock_file, wait) from None
    try:
        yield
    finally:
        lock.release()
