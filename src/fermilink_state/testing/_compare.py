"""Explaining differences: memory sections and ledger rows, a small diff each.

Plain code with no pytest: ``fermilink_state.testing`` builds its failure
messages from it and the plugin's ``pytest_assertrepr_compare`` returns its
explanations.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from fermilink_state._document import MemoryDocument, parse_memory, read_memory
from fermilink_state._markdown import split_sections
from fermilink_state._results import RESULT_FIELDS, ResultRow

MemoryLike = str | os.PathLike[str] | MemoryDocument

DIFF_CONTEXT: Final = 1
DIFF_LIMIT: Final = 12  # diff lines shown per section before "... N more"
INDENT: Final = "  "


def load_document(memory: MemoryLike) -> tuple[MemoryDocument, str]:
    """``memory`` as a document, and how to name it in a message.

    Text is parsed, a path is read (``FileNotFoundError`` if missing), a
    :class:`MemoryDocument` is used as is.
    """
    if isinstance(memory, MemoryDocument):
        return memory, "the memory document"
    if isinstance(memory, str):
        return parse_memory(memory), "the memory text"
    path = Path(memory)
    return read_memory(path), str(path)


def heading_label(heading: str) -> str:
    """A heading as messages quote it (the preamble has no heading line)."""
    return "the text before the first heading" if heading == "" else repr(heading)


def strip_blank_edges(lines: Sequence[str]) -> list[str]:
    """``lines`` without the blank lines at the start and the end."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return list(lines[start:end])


@dataclass(frozen=True, slots=True)
class SectionChange:
    """One section that differs between two documents.

    ``before`` / ``after`` are the section's exact text (heading line
    included), ``""`` on the side where it does not exist.
    """

    heading: str
    kind: Literal["added", "removed", "changed"]
    before: str
    after: str


def _keyed_sections(document: MemoryDocument) -> dict[tuple[str, int], str]:
    # A repeated heading is told apart by its occurrence number.
    keyed: dict[tuple[str, int], str] = {}
    seen: dict[str, int] = {}
    for section in split_sections(document.text):
        number = seen.get(section.heading, 0)
        seen[section.heading] = number + 1
        keyed[(section.heading, number)] = section.text
    return keyed


def section_changes(before: MemoryDocument, after: MemoryDocument) -> list[SectionChange]:
    """Every section added, removed or changed (byte for byte), in document order."""
    old = _keyed_sections(before)
    new = _keyed_sections(after)
    order = list(old) + [key for key in new if key not in old]
    changes: list[SectionChange] = []
    for key in order:
        if key not in new:
            changes.append(SectionChange(key[0], "removed", old[key], ""))
        elif key not in old:
            changes.append(SectionChange(key[0], "added", "", new[key]))
        elif old[key] != new[key]:
            changes.append(SectionChange(key[0], "changed", old[key], new[key]))
    return changes


def reordered_headings(
    before: MemoryDocument, after: MemoryDocument, *, ignore: Collection[str] = ()
) -> bool:
    """Whether the sections both documents have (bar ``ignore``) appear in another order."""
    old = list(_keyed_sections(before))
    new = list(_keyed_sections(after))
    common = {key for key in set(old) & set(new) if key[0] not in ignore}
    return [key for key in old if key in common] != [key for key in new if key in common]


def _visible(line: str) -> str:
    # Show what a plain diff hides: line endings, tabs, trailing spaces.
    return repr(line)[1:-1] if line != line.rstrip() or "\r" in line else line.rstrip("\n")


def diff_lines(before: str, after: str, *, limit: int = DIFF_LIMIT) -> list[str]:
    """A small unified diff of two texts (no file header, one line of context).

    When the texts differ only in line endings or trailing whitespace, lines
    are shown escaped so the difference is visible. At most ``limit`` lines,
    then a count of the rest.
    """
    old = before.splitlines(keepends=True)
    new = after.splitlines(keepends=True)
    invisible = [line.rstrip() for line in old] == [line.rstrip() for line in new]
    render = _visible if invisible else (lambda line: line.rstrip("\r\n"))
    lines = [
        line if line.startswith("@@") else line[0] + render(line[1:])
        for line in difflib.unified_diff(old, new, n=DIFF_CONTEXT, lineterm="")
        if not line.startswith(("---", "+++"))
    ]
    if invisible and lines:
        lines.insert(0, "(only line endings or trailing whitespace differ)")
    if len(lines) > limit:
        hidden = len(lines) - limit
        lines = [*lines[:limit], f"... {hidden} more diff line{'s' if hidden != 1 else ''}"]
    return lines


def describe_change(change: SectionChange, *, indent: str = INDENT) -> list[str]:
    """A title line naming the section and what happened, then its indented diff."""
    verb = {"added": "was added", "removed": "was removed", "changed": "changed"}[change.kind]
    title = f"section {heading_label(change.heading)} {verb}:"
    return [title, *(indent + line for line in diff_lines(change.before, change.after))]


def describe_changes(changes: Sequence[SectionChange]) -> list[str]:
    """:func:`describe_change` for each change, one after the other."""
    lines: list[str] = []
    for change in changes:
        lines.extend(describe_change(change))
    return lines


def explain_documents(left: MemoryDocument, right: MemoryDocument) -> list[str]:
    """Why two documents are not equal: which sections differ, a diff for each."""
    changes = section_changes(left, right)
    if not changes:
        if reordered_headings(left, right):
            return ["MemoryDocument == MemoryDocument: same sections in a different order"]
        return ["MemoryDocument == MemoryDocument: the texts are equal"]
    names = ", ".join(f"{heading_label(change.heading)} ({change.kind})" for change in changes)
    # "added" and "removed" read from left to right, like the diffs.
    return [
        f"MemoryDocument == MemoryDocument: {_count(len(changes), 'section')} "
        f"(- left, + right): {names}",
        *describe_changes(changes),
    ]


def _count(number: int, noun: str) -> str:
    # "1 section differs", "2 sections differ"
    return f"{number} {noun} differs" if number == 1 else f"{number} {noun}s differ"


def values_equal(left: object, right: object) -> bool:
    """``==``, except that two NaN metrics are equal."""
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    return left == right


def row_differences(left: ResultRow, right: ResultRow) -> list[str]:
    """``field: left != right`` for each field that differs."""
    return [
        f"{name}: {getattr(left, name)!r} != {getattr(right, name)!r}"
        for name in RESULT_FIELDS
        if not values_equal(getattr(left, name), getattr(right, name))
    ]


def explain_rows(left: ResultRow, right: ResultRow) -> list[str]:
    """Why two ledger rows are not equal, field by field."""
    differences = row_differences(left, right)
    return [
        f"ResultRow == ResultRow: {_count(len(differences), 'field')}",
        *(INDENT + line for line in differences),
    ]


def explain_row_lists(left: Sequence[ResultRow], right: Sequence[ResultRow]) -> list[str]:
    """Why two lists of ledger rows differ: the length, then each differing row."""
    lines = [f"list of {len(left)} ResultRow == list of {len(right)} ResultRow"]
    if len(left) != len(right):
        lines.append(f"{INDENT}lengths differ: {len(left)} != {len(right)}")
    for index, (one, two) in enumerate(zip(left, right, strict=False)):
        differences = row_differences(one, two)
        if differences:
            lines.append(f"{INDENT}row {index}: {'; '.join(differences)}")
    longer = left if len(left) > len(right) else right
    side = "left" if longer is left else "right"
    for index in range(min(len(left), len(right)), len(longer)):
        lines.append(f"{INDENT}row {index} only on the {side}: {longer[index]!r}")
    return lines


def _all_rows(value: object) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(item, ResultRow) for item in value)


def explain_equal(left: object, right: object) -> list[str] | None:
    """The explanation of a failed ``left == right`` for our types, else ``None``."""
    if isinstance(left, MemoryDocument) and isinstance(right, MemoryDocument):
        return explain_documents(left, right)
    if isinstance(left, ResultRow) and isinstance(right, ResultRow):
        return explain_rows(left, right)
    if _all_rows(left) and _all_rows(right) and (left or right):
        return explain_row_lists(left, right)  # type: ignore[arg-type]
    return None
