"""The campaign's program file."""

from __future__ import annotations

from pathlib import Path

from fermilink_state._create import create_if_missing


def ensure_program_file(path: Path, *, content: str) -> bool:
    """Write ``content`` to ``path`` if it does not exist; ``True`` if written."""
    return create_if_missing(path, lambda: content)
