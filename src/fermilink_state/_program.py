"""The campaign's program file."""

from __future__ import annotations

from pathlib import Path

from fermilink_state._atomic import atomic_write_text
from fermilink_state._locking import locked


def ensure_program_file(path: Path, *, content: str) -> bool:
    """Write ``content`` to ``path`` if it does not exist; ``True`` if written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):
        if path.exists():
            return False
        atomic_write_text(path, content)
    return True
