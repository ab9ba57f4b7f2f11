"""Line-preserving markdown sections: the engine under every memory edit.

A document is split into sections at heading lines (``# ``, ``## ``, ``###
``, chosen per caller) outside fenced code. Each section keeps its exact
text, line endings included, so an edit rewrites only the section it touches
and every other byte of the file survives: CRLF, a BOM, trailing spaces,
unknown sections, text before the first heading.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

PLACEHOLDER_LINES: Final = frozenset({"- none yet", "- Campaign initialized."})
BOM: Final = "\ufeff"
ALL_LEVELS: Final = ("# ", "## ", "### ")
REFERENCE_LEVELS: Final = ("## ", "### ")  # where the reference ends a section


def newline_of(text: str) -> str:
    """The line ending a document uses: that of its first line (``\\n`` default)."""
    first = text.find("\n")
    return "\r\n" if first > 0 and text[first - 1] == "\r" else "\n"


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end + 1


def _fence_marker(text: str, start: int) -> str:
    """The fence run opening the line at ``start`` (up to 3 spaces in), or ``""``."""
    index = start
    while index < len(text) and index - start < 3 and text[index] == " ":
        index += 1
    char = text[index : index + 1]
    if char not in ("`", "~"):
        return ""
    run = index
    while run < len(text) and text[run] == char:
        run += 1
    return text[index:run] if run - index >= 3 else ""


def fence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of fenced code blocks (``` or ~~~), fences included.

    An unclosed fence runs to the end of the text. Cheap when the text holds
    no backtick or tilde (one memchr each).
    """
    spans, opener, open_at = _scan_fences(text)
    if opener:
        spans.append((open_at, len(text)))
    return spans


def unclosed_fence(text: str) -> str:
    """The marker of a fence still open at the end of ``text``, or ``""``."""
    return _scan_fences(text)[1] if ("`" in text or "~" in text) else ""


def _scan_fences(text: str) -> tuple[list[tuple[int, int]], str, int]:
    # The closed blocks, then the marker and offset of a fence left open.
    starts: set[int] = set()
    for char in ("`", "~"):
        found = text.find(char * 3)
        while found >= 0:
            line_start = text.rfind("\n", 0, found) + 1
            if found - line_start <= 3 and not text[line_start:found].strip(" "):
                starts.add(line_start)
            found = text.find(char * 3, _line_end(text, found))
    spans: list[tuple[int, int]] = []
    opener = ""
    open_at = 0
    for line_start in sorted(starts):
        marker = _fence_marker(text, line_start)
        if not marker:
            continue
        if not opener:
            opener, open_at = marker, line_start
            continue
        rest_start = text.find(marker, line_start) + len(marker)
        rest = text[rest_start : _line_end(text, line_start)]
        if marker[0] == opener[0] and len(marker) >= len(opener) and not rest.strip():
            spans.append((open_at, _line_end(text, line_start)))
            opener = ""
    return spans, opener, open_at


@dataclass(slots=True)
class Section:
    """One section: its heading line (no line ending, ``""`` for the preamble)
    and its exact text, heading line and line endings included."""

    heading: str
    text: str

    def body_lines(self) -> list[str]:
        """The lines under the heading, without line endings."""
        body = self.text[_line_end(self.text, 0) :] if self.heading else self.text.removeprefix(BOM)
        if not body:
            return []
        lines = body.split("\n")
        if lines[-1] == "":
            lines.pop()
        return [line.removesuffix("\r") for line in lines]


def _heading_key(line: str) -> str:
    return line.removesuffix("\n").removesuffix("\r")


def split_sections(text: str, levels: Sequence[str] = ALL_LEVELS) -> list[Section]:
    """Split ``text`` at heading lines of ``levels`` outside fenced code.

    The first section is the preamble (heading ``""``), present only when the
    text does not start with a heading. Joining every section's text gives
    ``text`` back exactly.
    """
    spans = fence_spans(text) if ("`" in text or "~" in text) else []
    cuts: list[int] = []
    offset = len(BOM) if text.startswith(BOM) else 0
    if text.startswith(tuple(levels), offset):
        cuts.append(0)
    found = text.find("#", offset + 1)
    span_index = 0
    while found >= 0:
        if text[found - 1] == "\n" and text.startswith(tuple(levels), found):
            while span_index < len(spans) and spans[span_index][1] <= found:
                span_index += 1
            inside = span_index < len(spans) and spans[span_index][0] <= found
            if not inside:
                cuts.append(found)
        found = text.find("#", _line_end(text, found))
    sections: list[Section] = []
    if not cuts or cuts[0] != 0:
        cuts.insert(0, 0)
        first_is_heading = False
    else:
        first_is_heading = True
    for number, start in enumerate(cuts):
        end = cuts[number + 1] if number + 1 < len(cuts) else len(text)
        chunk = text[start:end]
        if number == 0 and not first_is_heading:
            if chunk:
                sections.append(Section("", chunk))
            continue
        line = chunk[: _line_end(chunk, 0)]
        sections.append(Section(_heading_key(line).removeprefix(BOM), chunk))
    return sections


def join_sections(sections: Iterable[Section]) -> str:
    """The document text of ``sections``."""
    return "".join(section.text for section in sections)


class SectionEditor:
    """Edits on a list of sections with the reference's semantics, bytes kept.

    Every result ends with a line ending, as the reference's always do; a
    missing heading is added at the end after one blank line.
    """

    def __init__(self, text: str, levels: Sequence[str] = ALL_LEVELS) -> None:
        self.newline = newline_of(text)
        self.levels = tuple(levels)
        self.sections = split_sections(text, levels)

    @property
    def text(self) -> str:
        """The edited document."""
        return join_sections(self.sections)

    def find(self, heading: str) -> Section | None:
        """The first section with exactly this heading line."""
        for section in self.sections:
            if section.heading == heading:
                return section
        return None

    def _terminate_last(self) -> None:
        if self.sections and not self.sections[-1].text.endswith("\n"):
            self.sections[-1].text += self.newline

    def _tail(self, size: int) -> str:
        tail = ""
        for section in reversed(self.sections):
            tail = section.text[-size:] + tail
            if len(tail) >= size:
                break
        return tail[-size:]

    def _close_fence(self, text: str) -> str:
        # What follows a fence left open would be code, and the next edit would
        # not find it again: close the fence first (its code reads the same).
        opener = unclosed_fence(text)
        return text + opener + self.newline if opener else text

    def _resplit(self, section: Section, inserted: Iterable[str]) -> None:
        # An inserted line holding "\n" may spell a heading: the reference
        # re-reads its own output between edits, so split the section again.
        if any("\n" in line for line in inserted):
            index = next(i for i, other in enumerate(self.sections) if other is section)
            self.sections[index : index + 1] = split_sections(section.text, self.levels)

    def _append_at_end(self, lines: Sequence[str], heading: str | None = None) -> None:
        # The reference adds one blank line first unless the text is empty or
        # already ends with an empty line. A BOM is not text.
        nl = self.newline
        bom = len(BOM) if self.sections and self.sections[0].text.startswith(BOM) else 0
        if sum(len(section.text) for section in self.sections) > bom:
            self._terminate_last()
            self.sections[-1].text = self._close_fence(self.sections[-1].text)
        length = sum(len(section.text) for section in self.sections) - bom
        ends_blank = length == len(nl) or self._tail(2 * len(nl)) == nl * 2
        if length and not ends_blank:
            self.sections[-1].text += nl
        block = "".join(line + nl for line in lines)
        if heading is not None:
            self.sections.append(Section(heading, heading + nl + block))
        elif self.sections:
            self.sections[-1].text += block
        else:
            self.sections.append(Section("", block))
        self._resplit(self.sections[-1], [*lines, heading or ""])

    def set_lines(self, heading: str, lines: Sequence[str]) -> None:
        """Replace the body of ``heading`` with ``lines`` (added if missing)."""
        section = self.find(heading)
        if section is None:
            self._append_at_end(lines, heading)
            return
        nl = self.newline
        head = section.text[: _line_end(section.text, 0)]
        if not head.endswith("\n"):
            head += nl
        section.text = head + "".join(line + nl for line in lines)
        self._terminate_last()
        self._resplit(section, lines)

    def append_line(self, heading: str, entry: str) -> None:
        """Add ``entry`` at the end of ``heading``'s section, dropping placeholders."""
        section = self.find(heading)
        if section is None:
            self._append_at_end([entry], heading)
            return
        text = section.text
        if any(placeholder in text for placeholder in PLACEHOLDER_LINES):
            text = _drop_placeholders(text)
        if not text.endswith("\n"):
            text += self.newline
        section.text = self._close_fence(text) + entry + self.newline
        self._terminate_last()
        self._resplit(section, [entry])

    def set_metadata(self, prefix: str, value: str) -> None:
        """Replace the first line starting with ``prefix`` by ``prefix + value``."""
        target = prefix + value
        for section in self.sections:
            start = _find_line_start(section.text, prefix)
            if start < 0:
                continue
            end = section.text.find("\n", start)
            if end < 0:
                end = len(section.text)
            elif end > start and section.text[end - 1] == "\r":
                end -= 1
            section.text = section.text[:start] + target + section.text[end:]
            self._terminate_last()
            self._resplit(section, [target])
            return
        self._append_at_end([target])


def _find_line_start(text: str, prefix: str) -> int:
    """Offset of the first line starting with ``prefix`` outside fences, or -1."""
    spans = fence_spans(text) if ("`" in text or "~" in text) else []

    def outside(offset: int) -> bool:
        return not any(start <= offset < end for start, end in spans)

    first = len(BOM) if text.startswith(BOM) else 0
    if text.startswith(prefix, first) and outside(first):
        return first
    found = text.find("\n" + prefix)
    while found >= 0:
        if outside(found + 1):
            return found + 1
        found = text.find("\n" + prefix, found + 1)
    return -1


def _drop_placeholders(text: str) -> str:
    """``text`` without its placeholder lines; lines in fenced code are content."""
    spans = fence_spans(text) if ("`" in text or "~" in text) else []
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    kept: list[str] = []
    offset = 0
    for line in lines:
        inside = any(start <= offset < end for start, end in spans)
        if inside or line.strip() not in PLACEHOLDER_LINES:
            kept.append(line)
        offset += len(line)
    return "".join(kept)
