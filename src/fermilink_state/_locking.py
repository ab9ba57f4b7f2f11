"""Inter-process locks on campaign files (a sibling lock file per backend).

One lock object per lock file per process, reused: filelock's own counter
then makes nested use in one thread reentrant instead of a self-deadlock.
Lock files are left in place on release: deleting them races with waiters.

Three backends, each with lock files of its own name, so a campaign switched
from one to another never mistakes the other's leftovers for a holder:
``flock`` (``<file>.lock``) on local filesystems; ``strict``
(``<file>.strict-lock``, filelock's ``StrictSoftFileLock``: claims published
by hard link, fail-closed) where other hosts share the folder; ``soft``
(``<file>.soft-lock``, filelock's ``SoftFileLock``) on request only.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal

from fermilink_state._errors import StateLockTimeout, explain_write_error

if TYPE_CHECKING:
    from filelock import BaseFileLock, Timeout

LockBackendName = Literal["flock", "strict", "soft"]

LOCK_ENV: Final = "FERMILINK_STATE_LOCK"
TIMEOUT_ENV: Final = "FERMILINK_STATE_LOCK_TIMEOUT"
DEFAULT_TIMEOUT: Final = 60.0
LOCK_SUFFIX: Final = ".lock"
LOCK_SUFFIXES: Final[dict[str, str]] = {
    "flock": LOCK_SUFFIX,
    "strict": ".strict-lock",
    "soft": ".soft-lock",
}
# How often a waiter retries a held lock. filelock's default (50 ms) leaves the
# lock idle for up to that long at each hand-over: 8 appenders then lose up to
# half their throughput. 10 ms costs a waiter ~100 cheap wake-ups a second.
POLL_INTERVAL: Final = 0.01
# A strict or soft lock survives its holder's death. A waiter looks at the
# holders this often, to clear this host's dead ones (a pid check is proof)
# and to name another host's in its timeout error.
_HOLDER_CHECK_INTERVAL: Final = 1.0

# The lock classes whose hold is a file, which a dead holder leaves behind.
_OUTLIVE_THEIR_HOLDER: Final = frozenset({"StrictSoftFileLock", "SoftFileLock"})

_locks: dict[tuple[str, str], BaseFileLock] = {}
# The same objects keyed by the caller's absolute path and the override: a
# lookup that skips building the lock path and probing the filesystem (an
# append is only ~10 us of work besides the lock).
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


@dataclass(frozen=True, slots=True)
class LockBackend:
    """The lock backend for a folder and why: ``name`` is ``flock``, ``strict`` or ``soft``."""

    name: LockBackendName
    reason: str
    filesystem: str | None = None


LockBackend.__module__ = "fermilink_state"  # its public home


def _override() -> str:
    return os.environ.get(LOCK_ENV, "").strip().lower()


def choose_lock_backend(folder: Path | str = ".") -> LockBackend:
    """The backend for lock files in ``folder``: the override, else by filesystem type.

    ``FERMILINK_STATE_LOCK=flock|strict|soft`` (read at each call) decides;
    without it, ``strict`` where the filesystem may be shared between hosts
    (NFS, Lustre, GPFS, CIFS/SMB, FUSE, BeeGFS, CephFS, ...), else ``flock``.
    """
    override = _override()
    if override:
        if override not in LOCK_SUFFIXES:
            raise ValueError(
                f"{LOCK_ENV}={override!r} is not a lock backend; "
                "use flock, strict or soft, or unset it to choose by filesystem"
            )
        return LockBackend(override, f"set by {LOCK_ENV}={override}")  # type: ignore[arg-type]
    from fermilink_state._filesystems import filesystem_of  # on first use: import time

    try:
        found = filesystem_of(os.fspath(folder))
    except OSError as error:
        return LockBackend("flock", f"filesystem of {folder} not readable ({error.strerror})")
    kind = found.type_name or "unknown"
    if found.shared:
        return LockBackend(
            "strict",
            f"{kind} filesystem, which other hosts may share: flock would not exclude them",
            kind,
        )
    if found.type_name is None:
        return LockBackend(
            "flock",
            f"filesystem type not detectable here; set {LOCK_ENV}=strict if other hosts share it",
        )
    return LockBackend("flock", f"{kind} filesystem, local to this host", kind)


def lock_backend(path: Path | str = ".") -> LockBackendName:
    """The name of :func:`choose_lock_backend` for the folder of ``path`` (a folder or a file)."""
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        folder = os.path.dirname(os.path.abspath(folder))
    return choose_lock_backend(folder).name


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


def lock_path_for(path: Path, backend: LockBackendName | None = None) -> Path:
    """The lock file guarding ``path`` beside it: ``<path>.lock`` for flock.

    ``<path>.strict-lock`` and ``<path>.soft-lock`` for the other backends;
    ``backend`` defaults to :func:`lock_backend` of ``path``'s folder.
    """
    name = backend or lock_backend(path)
    return path.with_name(path.name + LOCK_SUFFIXES[name])


def lock_may_be_in_use(path: Path) -> bool:
    """Whether this package's writers may be replacing ``path``, as far as a lock-free look tells.

    On NFS (a silly rename) and FUSE (a hidden rename), a file that another
    host's writer replaces can look missing for an instant: only a look under
    the lock may conclude that it is gone. That look is due when the lock file
    of ``path`` exists; with the ``soft`` backend, whose lock file exists only
    while held, it is always due (and taking that lock leaves nothing behind),
    provided the folder of ``path`` exists.
    """
    backend = lock_backend(path)
    if backend == "soft":  # the soft lock is its file: deleted on release
        return os.path.isdir(os.path.dirname(os.path.abspath(path)))
    return lock_path_for(Path(path), backend).exists()


def is_lock_file(name: str) -> bool:
    """Whether a file or folder name belongs to a lock of any backend (not to data)."""
    return name.endswith(_LOCK_NAME_ENDINGS)


_LOCK_NAME_ENDINGS: Final = (*LOCK_SUFFIXES.values(), ".strict-lock.filelock")


@functools.cache
def _lock_class(backend: str) -> type[BaseFileLock]:
    # filelock is imported on first use: it is most of this package's import
    # time. Its soft locks are imported only when chosen: the strict one probes
    # the temp folder (a file write) when its module loads.
    if backend == "strict":
        from filelock import StrictSoftFileLock

        return StrictSoftFileLock
    if backend == "soft":
        from filelock import SoftFileLock

        return SoftFileLock
    from filelock import FileLock

    return FileLock


@functools.cache
def _timeout_error() -> type[Timeout]:
    from filelock import Timeout

    return Timeout


def file_lock(path: Path) -> BaseFileLock:
    """The process-wide lock object guarding ``path`` (created on first use)."""
    override = _override()
    raw = os.fspath(path)
    lock = _by_path.get((raw, override))
    if lock is not None:
        return lock
    backend = lock_backend(raw)
    lock_file = os.path.abspath(lock_path_for(Path(raw), backend))
    if not os.path.isdir(os.path.dirname(lock_file)):
        # No folder, no filesystem to judge (and no lock file to make): a lock
        # chosen now would be kept after the folder appears, maybe on NFS.
        return _lock_class(backend)(lock_file)
    with _locks_guard:
        lock = _locks.get((lock_file, backend))
        if lock is None:
            lock = _lock_class(backend)(lock_file)
            _locks[lock_file, backend] = lock
        if os.path.isabs(raw):  # a relative path means another file after a chdir
            _by_path[raw, override] = lock
    return lock


class _Held:
    """The context manager :func:`locked` returns (a class: cheaper than a generator)."""

    __slots__ = ("_lock", "_wait")

    def __init__(self, lock: BaseFileLock, wait: float) -> None:
        self._lock = lock
        self._wait = wait

    def __enter__(self) -> None:
        lock = self._lock
        try:
            if type(lock).__name__ in _OUTLIVE_THEIR_HOLDER:
                _acquire_persistent(lock, self._wait)
            else:
                lock.acquire(timeout=self._wait, poll_interval=POLL_INTERVAL)
        except _timeout_error():
            from fermilink_state._lock_holders import describe_holders

            raise StateLockTimeout(lock.lock_file, self._wait, describe_holders(lock)) from None
        except OSError as error:  # e.g. a read-only folder: the lock file cannot be made
            raise explain_write_error(error, lock.lock_file, kept="nothing was changed") from error

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._lock.release()


def _acquire_persistent(lock: BaseFileLock, wait: float) -> None:
    # A strict or soft lock outlives a holder that died: wait in slices, and
    # between them clear the claims of this host's dead processes.
    deadline = time.monotonic() + wait
    while True:
        remaining = deadline - time.monotonic()
        slice_ = min(remaining, _HOLDER_CHECK_INTERVAL)
        try:
            lock.acquire(timeout=max(slice_, 0.0), poll_interval=POLL_INTERVAL)
            return
        except _timeout_error():
            if remaining <= _HOLDER_CHECK_INTERVAL:
                raise
            from fermilink_state._lock_holders import break_dead_local_claims

            break_dead_local_claims(lock)
        except OSError as error:
            if not _is_fuse_hidden_entry(error):
                raise
            if remaining <= 0:
                raise _timeout_error()(lock.lock_file) from error
            time.sleep(POLL_INTERVAL)


def _is_fuse_hidden_entry(error: OSError) -> bool:
    # A FUSE filesystem renames a file that is unlinked while still open to
    # .fuse_hiddenNNNN until it is closed (NFS does the same with .nfsNNNN,
    # which filelock already allows). In the claims folder that is a claim
    # being withdrawn while a peer reads it: gone in a moment. filelock
    # refuses the entry before it publishes anything, so a retry is safe.
    claim = getattr(error, "claim_name", None)
    return isinstance(claim, str) and claim.startswith(".fuse_hidden")


def locked(path: Path, *, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
    """Hold the inter-process lock of ``path`` for the ``with`` body.

    Raises :class:`StateLockTimeout` naming the lock file (and, for the
    ``strict`` backend, its holders) when the wait is longer than
    :func:`lock_timeout`. The folder of ``path`` must exist.
    """
    return _Held(file_lock(path), lock_timeout(timeout))
