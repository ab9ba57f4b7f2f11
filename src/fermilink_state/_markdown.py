"""Line-preserving markdown sections: the engine under every memory edit.

A document is split into sections at heading lines (``# ``, ``## ``, ``###
``, chosen per caller) outside fenced code. Each section keeps its exact
text, line endings included, so an edit rewrites only the section it touches
and every other byte of the file survives: CRLF, a BOM, trailing spaces,
unknown sections, text before the first heading.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import AnyStr, Final, Protocol

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
        starts.update(_fence_line_starts(text, char, "\n", " "))
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


# Past this many lines holding a backtick (or tilde), a multi-character search
# for the run of three (a fixed cost per megabyte) beats probing each such line
# (a memchr-fast search, but Python work per probe).
_FENCE_PROBES: Final = 32


def _fence_line_starts(text: AnyStr, mark: AnyStr, newline: AnyStr, space: AnyStr) -> Iterator[int]:
    """Offsets of the lines that open with up to 3 spaces and a run of 3+ ``mark``."""
    run = mark * 3
    probes = 0
    found = text.find(mark)
    while found >= 0:
        probes += 1
        if text.startswith(run, found):
            line_start = text.rfind(newline, 0, found) + 1
            if found - line_start <= 3 and not text[line_start:found].strip(space):
                yield line_start
        line_end = text.find(newline, found)
        if line_end < 0:
            return
        # Only the first mark of a line can open a fence: go on from the next line.
        found = text.find(mark if probes < _FENCE_PROBES else run, line_end + 1)


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


class LineEditor(Protocol):
    """What :class:`SectionEditor` and :class:`PlainEditor` both offer."""

    def set_lines(self, heading: str, lines: Sequence[str]) -> None:
        """Replace the body of ``heading``."""

    def append_line(self, heading: str, entry: str) -> None:
        """Add a line at the end of ``heading``'s section."""

    def set_metadata(self, prefix: str, value: str) -> None:
        """Replace the first line starting with ``prefix``."""


class NotPlain(Exception):
    """The document or the edit needs :class:`SectionEditor`, not the fast path."""


# One pass for both placeholders: ~15% faster than two bytes.find calls.
_PLACEHOLDER_SEARCH: Final = re.compile(
    b"|".join(re.escape(line.encode()) for line in sorted(PLACEHOLDER_LINES))
).search
_SMALL_PIECE: Final = 4096  # pieces of the edited file short enough to join rather than write apart


class PlainEditor:
    """:class:`SectionEditor`'s edits on the UTF-8 bytes of a plain document.

    The fast path of campaign events on a memory file of many megabytes: it
    neither decodes nor copies the document; :meth:`chunks` gives the edited
    file as slices of the old bytes around the few new ones. It handles only
    what is plain, and raises :class:`NotPlain` (before the file is replaced)
    for everything else, which :class:`SectionEditor` then does: a document
    with a BOM, a fenced code block or no final line ending;
    a missing heading or metadata line; a section edited twice; placeholder
    lines to drop; inserted text that holds a line break or starts a heading
    or a fence. On what it accepts, its result is byte for byte
    :class:`SectionEditor`'s.

    The one slow check, for placeholder lines in the sections appended to (a
    scan of most of the file), waits for :meth:`verify`, which
    ``chunks(verify=False)`` leaves to the caller: the event writer runs it
    while the disk writes the result.
    """

    def __init__(self, data: bytes, levels: Sequence[str] = ALL_LEVELS) -> None:
        if not data.endswith(b"\n") or data.startswith(BOM.encode()) or _has_fence(data):
            raise NotPlain
        self.data = data
        first = data.find(b"\n")
        # As SectionEditor: new lines end as the first line does (CRLF on Windows).
        self.newline = "\r\n" if data[first - 1 : first] == b"\r" else "\n"
        self._cuts = _plain_cuts(data, tuple(level.encode() for level in levels))
        self._splices: list[tuple[int, int, bytes]] = []
        self._edited: list[tuple[int, int]] = []
        self._inserted: list[str] = []
        self._appended_to: list[tuple[int, int, str]] = []

    def _section(self, heading: str) -> tuple[int, int]:
        # (start, end) of the first section with exactly this heading line.
        wanted = heading.encode()
        data, cuts = self.data, self._cuts
        for number, start in enumerate(cuts):
            line_end = data.find(b"\n", start)
            if data[start:line_end].removesuffix(b"\r") == wanted:
                end = cuts[number + 1] if number + 1 < len(cuts) else len(data)
                if (start, end) in self._edited:
                    raise NotPlain  # a section edited twice: leave it to SectionEditor
                self._edited.append((start, end))
                return start, end
        raise NotPlain  # SectionEditor adds the missing section at the end

    def _encode(self, lines: Sequence[str]) -> bytes:
        for line in lines:
            opening = line.lstrip(" ")
            if not line.isprintable() or opening.startswith(("#", "```", "~~~")):
                raise NotPlain  # may break a line, or start a heading or a fence
        self._inserted.extend(lines)
        return "".join(line + self.newline for line in lines).encode()

    def set_lines(self, heading: str, lines: Sequence[str]) -> None:
        """Replace the body of ``heading`` with ``lines``."""
        start, end = self._section(heading)
        body = self.data.find(b"\n", start) + 1
        self._splices.append((body, end, self._encode(lines)))

    def append_line(self, heading: str, entry: str) -> None:
        """Add ``entry`` at the end of ``heading``'s section (no placeholder to drop)."""
        start, end = self._section(heading)
        self._appended_to.append((start, end, heading))  # placeholders: see verify()
        self._splices.append((end, end, self._encode([entry])))

    def verify(self, known_clean: frozenset[str] = frozenset()) -> None:
        """Raise :class:`NotPlain` if a section appended to holds a placeholder line.

        SectionEditor would drop that line. Rather than look for exactly such
        lines, any occurrence of a placeholder's text sends the edit there.
        Sections whose heading is in ``known_clean`` are known free of it.
        """
        for start, end, heading in self._appended_to:
            if heading not in known_clean and _PLACEHOLDER_SEARCH(self.data, start, end):
                raise NotPlain

    @property
    def appended_to(self) -> frozenset[str]:
        """The headings of the sections :meth:`append_line` added to."""
        return frozenset(heading for _start, _end, heading in self._appended_to)

    def inserted_placeholder_text(self) -> bool:
        """Whether a line this editor inserts holds a placeholder's text."""
        return any(
            placeholder in line for line in self._inserted for placeholder in PLACEHOLDER_LINES
        )

    def set_metadata(self, prefix: str, value: str) -> None:
        """Replace the first line starting with ``prefix`` by ``prefix + value``."""
        wanted = prefix.encode()
        data = self.data
        start = 0 if data.startswith(wanted) else data.find(b"\n" + wanted) + 1
        if start == 0 and not data.startswith(wanted):
            raise NotPlain  # no such line: SectionEditor appends one at the end
        edited = any(first <= start < last for first, last in self._edited)
        if edited or any(line.startswith(prefix) for line in self._inserted):
            raise NotPlain  # an edit may have removed the first match or made an earlier one
        target = self._encode([prefix + value])[: -len(self.newline)]
        end = data.find(b"\n", start)
        if end > start and data[end - 1] == 0x0D:  # keep a CR of a CRLF line
            end -= 1
        self._splices.append((start, end, target))

    def chunks(self, *, verify: bool = True) -> list[bytes | memoryview]:
        """The edited document, as slices of the old bytes and the new bytes between.

        With ``verify=False`` the caller must call :meth:`verify` before using them.
        """
        if verify:
            self.verify()
        view = memoryview(self.data)
        pieces: list[bytes | memoryview] = []
        position = 0
        for start, end, new in sorted(self._splices, key=lambda splice: splice[:2]):
            if start < position:
                raise NotPlain  # overlapping edits (not made by the rules above)
            pieces += [view[position:start], new]
            position = end
        pieces.append(view[position:])
        out: list[bytes | memoryview] = []
        for piece in pieces:
            if out and len(piece) < _SMALL_PIECE and len(out[-1]) < _SMALL_PIECE:
                out[-1] = bytes(out[-1]) + piece  # one write call less, a small copy
            elif len(piece):
                out.append(piece)
        return out


def _plain_cuts(data: bytes, levels: tuple[bytes, ...]) -> list[int]:
    # split_sections' cuts, for a document without fences: heading lines.
    cuts = [0] if data.startswith(levels) else []
    found = data.find(b"#", 1)
    while found >= 0:
        if data[found - 1] == 0x0A and data.startswith(levels, found):
            cuts.append(found)
        line_end = data.find(b"\n", found)
        found = data.find(b"#", line_end + 1) if line_end >= 0 else -1
    return cuts


def _has_fence(data: bytes) -> bool:
    """Whether a line opens with up to 3 spaces and then ``` or ~~~ (what fences start)."""
    return any(
        next(_fence_line_starts(data, mark, b"\n", b" "), None) is not None for mark in (b"`", b"~")
    )
