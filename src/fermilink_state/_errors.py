"""Errors and warnings raised by fermilink_state, all in one place."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any, Final


class StateError(Exception):
    """Base class of every error fermilink_state raises on purpose."""


class StateCorruptError(StateError, ValueError):
    """A campaign file exists but cannot be parsed.

    Also a ``ValueError`` so code written against the reference, which let
    ``UnicodeDecodeError`` / ``json.JSONDecodeError`` escape, still catches it.
    """

    def __init__(self, path: str | Path, reason: str, *, line: int | None = None) -> None:
        self.path = Path(path)
        self.reason = reason
        self.line = line
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(
            f"{where}: {reason}; the file was left as it is: repair or move it aside "
            "(`fermilink-state check` lists every problem), then retry"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_corrupt, (str(self.path), self.reason, self.line))


def _rebuild_corrupt(path: str, reason: str, line: int | None) -> StateCorruptError:
    return StateCorruptError(path, reason, line=line)


class StateLockTimeout(StateError, TimeoutError):
    """Waiting for a campaign file's inter-process lock took longer than allowed.

    ``holders`` describes who held the lock, when that could be read (the
    ``strict`` backend records pid, host and age of each holder).
    """

    def __init__(self, lock_file: str | Path, timeout: float, holders: str = "") -> None:
        self.lock_file = str(lock_file)
        self.timeout = timeout
        self.holders = holders
        remedy = (
            holders
            if holders
            else "another process holds it; wait for that process, or raise "
            "FERMILINK_STATE_LOCK_TIMEOUT (seconds). An flock lock is released by the "
            "operating system when its holder dies; a strict or soft lock file is not: "
            "delete it only if no writer is running"
        )
        super().__init__(f"gave up waiting {timeout:g} s for the lock {self.lock_file}: {remedy}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.lock_file, self.timeout, self.holders))


class RunLockHeld(StateError):
    """Another live process holds the campaign's run lock."""

    def __init__(self, path: str | Path, holder: dict[str, Any] | None, why: str) -> None:
        self.path = Path(path)
        self.holder = holder
        self.why = why
        super().__init__(
            f"{self.path}: the campaign is already running ({why}); wait for it to "
            "finish, or if you are sure it is gone run `fermilink-state unlock --force`"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self.path), self.holder, self.why))


class RunLockLost(StateError):
    """This process held the campaign's run lock, and another holder took it over.

    Raised by a write into the campaign folder (which then writes nothing),
    after the holder's lease expired (it was paused or cut off) and another
    process took the lock, or after ``unlock --force`` removed it.
    """

    def __init__(self, path: str | Path, generation: int, why: str) -> None:
        self.path = Path(path)
        self.generation = generation
        self.why = why
        super().__init__(
            f"{self.path}: this process no longer holds the run lock (it held generation "
            f"{generation}; {why}); nothing was written. Stop this controller: another one "
            "runs the campaign now"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self.path), self.generation, self.why))


class RunLockTakeoverWarning(UserWarning):
    """A run lock whose lease had expired was taken over (its holder stopped renewing)."""


class StateCorruptWarning(UserWarning):
    """A corrupt campaign file was moved aside or skipped instead of being used."""


class AdoptionWarning(UserWarning):
    """``fermilink_state.adopt.install()`` could not cover all of FermiLink's own writes."""


_WRITE_HINTS: Final = {
    code: hint
    for code, hint in (
        (errno.ENOSPC, "free some disk space, then retry"),
        (getattr(errno, "EDQUOT", None), "free some of your disk quota, then retry"),
        (errno.EACCES, "make its folder writable for this user, then retry"),
        (errno.EPERM, "make its folder writable for this user, then retry"),
        (errno.EROFS, "the file system is read-only: remount it or move the campaign, then retry"),
        (errno.EIO, "the disk reported an I/O error: check the device before retrying"),
        (errno.EEXIST, "a stray file holds the temp name: remove it, then retry"),
    )
    if code is not None
}


def explain_write_error(
    error: OSError, path: str | Path, *, kept: str = "the file keeps its previous content"
) -> OSError:
    """The same kind of ``OSError`` (same errno), naming ``path`` and what to do next.

    Callers ``raise explain_write_error(error, path) from error`` so code that
    catches ``PermissionError`` / ``OSError`` by type or errno still works.
    """
    if error.errno is None:
        return error
    hint = _WRITE_HINTS.get(error.errno, "fix the cause, then retry")
    message = f"{error.strerror or error}; {kept}; {hint}"
    try:
        return type(error)(error.errno, message, str(path))
    except TypeError:  # an OSError subclass with a constructor of its own
        return OSError(error.errno, message, str(path))
