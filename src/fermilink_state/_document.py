"""Reading and editing ``memory.md`` as a document of sections."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator, Sequence
from pathlib import Path

from fermilink_state._atomic import atomic_write_text
from fermilink_state._locking import locked
from fermilink_state._markdown import ALL_LEVELS, SectionEditor
from fermilink_state._memory import decode_memory


class MemoryDocument:
    """A markdown memory split into sections, every byte kept.

    A heading is a line starting ``# ``, ``## `` or ``### `` outside fenced
    code; a section runs to the next heading; ``#### `` lines are content;
    text before the first heading is the section named ``""``. Edits
    (:meth:`append`, :meth:`set`, :meth:`set_metadata`) change only the
    section they touch.
    """

    __slots__ = ("_editor", "_original")

    def __init__(self, text: str) -> None:
        self._original = text
        self._editor = SectionEditor(text, ALL_LEVELS)

    @property
    def text(self) -> str:
        """The document's text, edits included."""
        return self._editor.text

    @property
    def headings(self) -> list[str]:
        """Every section's heading line in order (``""`` for a preamble)."""
        return [section.heading for section in self._editor.sections]

    @property
    def changed(self) -> bool:
        """Whether an edit changed the text."""
        return self.text != self._original

    def section(self, heading: str) -> list[str] | None:
        """The lines under ``heading`` (first match), without line endings; or ``None``."""
        found = self._editor.find(heading)
        return None if found is None else found.body_lines()

    def sections(self) -> list[tuple[str, list[str]]]:
        """``(heading, lines)`` for every section in order."""
        return [(section.heading, section.body_lines()) for section in self._editor.sections]

    def section_text(self, heading: str) -> str | None:
        """The exact text of ``heading``'s section, heading line included."""
        found = self._editor.find(heading)
        return None if found is None else found.text

    def append(self, heading: str, line: str) -> None:
        """Add ``line`` at the end of ``heading``'s section (created if missing).

        Placeholder lines (``- none yet``, ``- Campaign initialized.``) of that
        section are removed, as the reference does.
        """
        self._editor.append_line(heading, line)

    def set(self, heading: str, lines: Sequence[str]) -> None:
        """Replace the lines under ``heading`` (created if missing)."""
        self._editor.set_lines(heading, list(lines))

    def set_metadata(self, prefix: str, value: str) -> None:
        """Set the first line starting with ``prefix`` to ``prefix + value``."""
        self._editor.set_metadata(prefix, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MemoryDocument):
            return NotImplemented
        return self.text == other.text

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"MemoryDocument(headings={self.headings!r})"


MemoryDocument.__module__ = "fermilink_state"


def parse_memory(text: str) -> MemoryDocument:
    """Parse markdown memory text into a :class:`MemoryDocument`."""
    return MemoryDocument(text)


def read_memory(path: Path) -> MemoryDocument:
    """Read and parse a memory file; :class:`StateCorruptError` if not UTF-8."""
    return MemoryDocument(decode_memory(path, Path(path).read_bytes()))


def _missing_memory(path: Path) -> FileNotFoundError:
    return FileNotFoundError(
        errno.ENOENT, "no such memory file; create it with ensure_memory_file()", str(path)
    )


@contextlib.contextmanager
def edit_memory(path: Path, *, timeout: float | None = None) -> Iterator[MemoryDocument]:
    """Edit a memory file under its lock; written atomically on a clean exit.

    Nothing is written when the body raises or changes nothing. Raises
    ``FileNotFoundError`` for a missing file (create it with
    ``ensure_memory_file``) and :class:`StateCorruptError` for one that is not
    UTF-8, leaving it untouched.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise _missing_memory(path)
    with locked(path, timeout=timeout):
        try:
            document = read_memory(path)
        except FileNotFoundError:
            raise _missing_memory(path) from None
        yield document
        if document.changed:
            atomic_write_text(path, document.text)
