"""Inter-process locks on campaign files (a sibling ``<file>.lock``).

One lock object per lock file per process, reused: filelock's own counter
then makes nested use in one thread reentrant instead of a self-deadlock.
Lock files are left in place on release: deleting them races with waiters.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final

from fermilink_state._errors import StateLockTimeout, explain_write_error

if TYPE_CHECKING:
    from filelock import BaseFileLock, Timeout

LOCK_ENV: Final = "FERMILINK_STATE_LOCK"
TIMEOUT_ENV: Final = "FERMILINK_STATE_LOCK_TIMEOUT"
DEFAULT_TIMEOUT: Final = 60.0
LOCK_SUFFIX: Final = ".lock"
# How often a waiter retries a held lock. filelock's default (50 ms) leaves the
# lock idle for up to that long at each hand-over: 8 appenders then lose up to
# half their throughput. 10 ms costs a waiter ~100 cheap wake-ups a second.
POLL_INTERVAL: Final = 0.01

_locks: dict[tuple[str, str], BaseFileLock] = {}
# The same objects keyed by the caller's absolute path: a lookup that skips
# building the lock path (an append is only ~10 us of work besides the lock).
_by_path: dict[tuple[str, str], BaseFileLock] = {}
_locks_guard = threading.Lock()


def _reset_guard_in_child() -> None:
    # A fork while another thread held the guard would leave it locked forever.
    # filelock refuses lock objects inherited across fork (RuntimeError), so a
    # forked child (multiprocessing's default on Linux) starts a cache of its own.
    global _locks_guard, _locks, _by_path
    _locks_guard = threading.Lock()
    _locks = {}
    _by_path = {}


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


@functools.cache
def _filelock_api() -> tuple[type[BaseFileLock], type[BaseFileLock], type[Timeout]]:
    # filelock is imported on first use: it is most of this package's import time.
    from filelock import FileLock, SoftFileLock, Timeout

    return FileLock, SoftFileLock, Timeout


def file_lock(path: Path) -> BaseFileLock:
    """The process-wide lock object guarding ``path`` (created on first use)."""
    backend = lock_backend()
    raw = os.fspath(path)
    lock = _by_path.get((raw, backend))
    if lock is not None:
        return lock
    lock_file = os.path.abspath(lock_path_for(Path(raw)))
    key = (lock_file, backend)
    with _locks_guard:
        lock = _locks.get(key)
        if lock is None:
            flock_class, soft_class, _ = _filelock_api()
            lock = soft_class(lock_file) if backend == "soft" else flock_class(lock_file)
            _locks[key] = lock
        if os.path.isabs(raw):  # a relative path means another file after a chdir
            _by_path[raw, backend] = lock
    return lock


class _Held:
    """The context manager :func:`locked` returns (a class: cheaper than a generator)."""

    __slots__ = ("_lock", "_wait")

    def __init__(self, lock: BaseFileLock, wait: float) -> None:
        self._lock = lock
        self._wait = wait

    def __enter__(self) -> None:
        try:
            self._lock.acquire(timeout=self._wait, poll_interval=POLL_INTERVAL)
        except _filelock_api()[2]:
            raise StateLockTimeout(self._lock.lock_file, self._wait) from None
        except OSError as error:  # e.g. a read-only folder: the lock file cannot be made
            lock_file = self._lock.lock_file
            raise explain_write_error(error, lock_file, kept="nothing was changed") from error

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._lock.release()


def locked(path: Path, *, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
    """Hold the inter-process lock of ``path`` for the ``with`` body.

    Raises :class:`StateLockTimeout` naming the lock file when the wait is
    longer than :func:`lock_timeout`. The folder of ``path`` must exist.
    """
    return _Held(file_lock(path), lock_timeout(timeout))
