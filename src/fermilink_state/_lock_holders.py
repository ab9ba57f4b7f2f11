"""Who holds a strict lock: read from its claim files, for messages and cleanup.

filelock's ``StrictSoftFileLock`` never breaks a claim by age. A claim of a
process of this host that is no longer running is certainly dead and is
cleared here; a claim from another host is only ever described (pid, host,
age, the files to delete), since its pid means nothing on this host.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from filelock import BaseFileLock


@dataclass(frozen=True, slots=True)
class LockHolder:
    """A process that holds (or is claiming) a strict lock, as its claim files record it."""

    pid: int
    hostname: str
    claims: tuple[Path, ...]
    age: float | None

    @property
    def local(self) -> bool:
        """Whether the claim was written by a process of this host (and pid namespace)."""
        return self.hostname == _filelock_host_name()


def _filelock_host_name() -> str | None:
    # filelock's own spelling of this host (with a pid-namespace suffix in a
    # container): only a claim that matches it exactly can be judged by pid.
    try:
        from filelock._identity import host_name
    except ImportError:  # pragma: no cover - another filelock layout: judge nothing
        return None
    return host_name()


def lock_holders(lock: BaseFileLock) -> list[LockHolder]:
    """The owners of the claims that block a strict lock (empty for other backends)."""
    claims = getattr(lock, "claims", None)
    if claims is None:
        return []
    directory = Path(lock.lock_file + ".filelock") / "claims"
    by_token: dict[str, list[Any]] = {}
    for claim in claims:  # an owner publishes an intent claim, then a held one
        by_token.setdefault(claim.token, []).append(claim)
    holders: list[LockHolder] = []
    now = time.time()
    for owned in by_token.values():
        paths = tuple(directory / claim.name for claim in owned)
        try:
            age: float | None = max(0.0, now - min(path.lstat().st_mtime for path in paths))
        except OSError:
            age = None
        holders.append(LockHolder(owned[0].pid, owned[0].hostname, paths, age))
    return holders


def break_dead_local_claims(lock: BaseFileLock) -> list[LockHolder]:
    """Remove the claims of this host's processes that are no longer running.

    A claim from another host is never touched: its pid means nothing here.
    """
    from fermilink_state._process import process_is_alive

    broken: list[LockHolder] = []
    try:
        holders = lock_holders(lock)
    except Exception:  # a claim being published or withdrawn: look again next time
        return broken
    for holder in holders:
        if not holder.local or process_is_alive(holder.pid):
            continue
        for claim in holder.claims:
            with contextlib.suppress(FileNotFoundError, ValueError):
                lock.force_break(claim.name)  # type: ignore[attr-defined]
        broken.append(holder)
    return broken


def describe_holders(lock: BaseFileLock) -> str:
    """Who holds ``lock``, for a timeout message: pid, host, age, how to break it."""
    try:
        holders = lock_holders(lock)
    except Exception as error:  # the message must not fail: say what we could not read
        return f"its holders could not be read ({error})"
    parts = []
    for holder in holders:
        age = "" if holder.age is None else f", claimed {holder.age:.0f} s ago"
        where = "this host" if holder.local else f"host {holder.hostname!r}"
        files = " ".join(map(str, holder.claims))
        parts.append(
            f"held by pid {holder.pid} on {where}{age}; only if that process is gone "
            f"(a crashed or rebooted host) break the lock by deleting {files}"
        )
    return "; ".join(parts)
