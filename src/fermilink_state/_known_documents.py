"""What this process last wrote to each memory file, and what it had checked in it.

A campaign event must scan the sections it appends to for placeholder text
and check that the file is UTF-8: a scan of most of the file, every event,
and the largest cost of an event after the disk's. When the file still holds
exactly the bytes this process wrote last (compared in full, a memcmp per
piece written), those checks were done on them already, and need not be done
again. The knowledge belongs to the bytes, not to the file: another writer's
edit, by any means, makes the comparison fail and the next event checks
everything. The pieces are kept as written (slices of the bytes the event
read, and its new lines), not joined: a copy of a large file in fresh memory
would cost about what the scan does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# A process edits a handful of memory files at most: the campaign's, maybe a
# few campaigns'. The oldest is forgotten beyond this many.
_KEPT: Final = 4


@dataclass(frozen=True, slots=True)
class KnownDocument:
    """Bytes this process wrote (valid UTF-8), and the headings of sections free of placeholders."""

    pieces: tuple[bytes | memoryview, ...]
    size: int
    clean_sections: frozenset[str]

    def holds(self, data: bytes) -> bool:
        """Whether ``data`` is byte for byte the pieces, one after the other."""
        if len(data) != self.size:
            return False
        position = 0
        for piece in self.pieces:
            if not data.startswith(piece, position):
                return False
            position += len(piece)
        return True


_known: dict[str, KnownDocument] = {}
_guard = threading.Lock()


def _reset_guard_in_child() -> None:
    # A fork while another thread held the guard would leave it locked forever.
    # What is known stays true in the child: it is about bytes, not processes.
    global _guard
    _guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_guard_in_child)


def clean_sections(path: Path, data: bytes) -> frozenset[str] | None:
    """The sections of ``data`` known free of placeholder text, if it is what we last wrote.

    ``None`` when ``data`` is not byte for byte the last document this
    process wrote to ``path``: then nothing about it is known, not even that
    it is UTF-8.
    """
    known = _known.get(os.path.abspath(path))
    if known is None or not known.holds(data):
        return None
    return known.clean_sections


def remember(path: Path, pieces: Iterable[bytes | memoryview], clean: frozenset[str]) -> None:
    """Record that ``path`` now holds the UTF-8 bytes ``pieces``, with ``clean`` sections.

    The pieces are kept, not copied: they must not change afterwards.
    """
    key = os.path.abspath(path)
    kept = tuple(pieces)
    document = KnownDocument(kept, sum(map(len, kept)), clean)
    with _guard:
        _known.pop(key, None)
        _known[key] = document
        while len(_known) > _KEPT:
            del _known[next(iter(_known))]


def forget(path: Path) -> None:
    """Know nothing about ``path`` any more."""
    with _guard:
        _known.pop(os.path.abspath(path), None)
