"""Create a file once: the ``ensure_*`` writers' shared rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fermilink_state import _fileops
from fermilink_state._atomic import atomic_write_text
from fermilink_state._locking import locked


def create_if_missing(path: Path, render: Callable[[], str]) -> bool:
    """Write ``render()`` to ``path`` atomically unless it exists; ``True`` if written.

    The second existence check runs under the file's lock, so of several
    processes creating the same file exactly one writes it, and an appender
    that got there first is never overwritten.
    """
    if path.exists():
        return False
    _fileops.make_folders(path.parent)
    with locked(path):
        if path.exists():
            return False
        atomic_write_text(path, render())
    return True
