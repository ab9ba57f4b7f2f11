"""Errors and warnings raised by fermilink_state, all in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
    """Waiting for a campaign file's inter-process lock took longer than allowed."""

    def __init__(self, lock_file: str | Path, timeout: float) -> None:
        self.lock_file = str(lock_file)
        self.timeout = timeout
        super().__init__(
            f"gave up waiting {timeout:g} s for the lock {self.lock_file}: another process "
            "holds it; wait for that process, or raise FERMILINK_STATE_LOCK_TIMEOUT "
            "(seconds). Lock files are never stale: a dead holder's lock is released "
            "by the operating system (with FERMILINK_STATE_LOCK=soft, delete the file "
            "if no writer is running)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.lock_file, self.timeout))


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


class StateCorruptWarning(UserWarning):
    """A corrupt campaign file was moved aside or skipped instead of being used."""
