"""The section, ledger and row assertions of the test kit (re-exported by
``fermilink_state.testing``), with no pytest needed.

Importing this module does not import pytest.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final

from fermilink_state._consistency import CampaignProblem, campaign_problems
from fermilink_state._document import MemoryDocument
from fermilink_state._errors import StateCorruptError
from fermilink_state._layout import optimize_root
from fermilink_state._markdown import PLACEHOLDER_LINES
from fermilink_state._results import (
    RESULT_FIELDS,
    RESULTS_HEADER,
    ResultRow,
    format_metric,
    iter_result_lines,
    parse_metric,
    parse_result_line,
    read_results,
)
from fermilink_state._wording import counted
from fermilink_state.testing._compare import (
    INDENT,
    MemoryLike,
    describe_changes,
    diff_lines,
    heading_label,
    load_document,
    reordered_headings,
    section_changes,
    strip_blank_edges,
    values_equal,
)
from fermilink_state.testing._project import ResultLike

__all__ = [
    "assert_campaign_consistent",
    "assert_only_sections_changed",
    "assert_results_rows",
    "assert_results_well_formed",
    "assert_section_appended",
    "assert_section_lines",
]

_MAX_PROBLEMS: Final = 10


def _indented(lines: Iterable[str]) -> str:
    return "\n".join(INDENT + line for line in lines)


def _capped(problems: list[str]) -> str:
    shown = problems[:_MAX_PROBLEMS]
    if len(problems) > _MAX_PROBLEMS:
        shown.append(f"... and {len(problems) - _MAX_PROBLEMS} more")
    return _indented(shown)


def _missing_section(document: MemoryDocument, name: str, heading: str) -> AssertionError:
    headings = [h for h in document.headings if h]
    close = difflib.get_close_matches(heading, headings, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(repr(h) for h in headings) or "none"
    return AssertionError(
        f"{name} has no section {heading_label(heading)}{hint} (its sections: {listed}). "
        "Give the whole heading line, hashes included."
    )


def _require_lines(value: object, what: str) -> None:
    if isinstance(value, str):
        raise TypeError(f"{what} is a list of lines, not one str: pass text.splitlines()")


def assert_section_lines(memory: MemoryLike, heading: str, expected: Sequence[str]) -> None:
    """Assert that section ``heading`` of ``memory`` holds exactly the ``expected`` lines.

    ``memory`` is markdown text, a path to a memory file or a
    :class:`~fermilink_state.MemoryDocument`; ``heading`` is the whole
    heading line (``"### Progress log"``). Blank lines at the start and end of
    the section are ignored on both sides (the reference's appends leave one
    before the first entry); every other line must match exactly.
    """
    __tracebackhide__ = True
    _require_lines(expected, "expected")
    document, name = load_document(memory)
    lines = document.section(heading)
    if lines is None:
        raise _missing_section(document, name, heading)
    found = strip_blank_edges(lines)
    wanted = strip_blank_edges(list(expected))
    if found != wanted:
        diff = diff_lines("\n".join(wanted) + "\n", "\n".join(found) + "\n")
        raise AssertionError(
            f"section {heading_label(heading)} of {name} does not hold the expected lines "
            f"(- expected, + found):\n{_indented(diff)}"
        )


def _strip_trailing_blanks(lines: Sequence[str]) -> list[str]:
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    return list(lines[:end])


def _entry_matches(entry: str | re.Pattern[str], line: str) -> bool:
    if isinstance(entry, re.Pattern):
        return entry.search(line) is not None
    return line == entry


def _describe_entry(entry: str | re.Pattern[str]) -> str:
    return f"a line matching {entry.pattern!r}" if isinstance(entry, re.Pattern) else repr(entry)


def assert_section_appended(
    before: MemoryLike,
    after: MemoryLike,
    heading: str,
    entry: str | re.Pattern[str] | None = None,
) -> None:
    """Assert that section ``heading`` gained exactly one line, at its end, and nothing else.

    The rest of the section must be unchanged, except for the placeholder
    lines (``- none yet``, ``- Campaign initialized.``) an append removes;
    the added line itself must not be a placeholder. With ``entry``, the added
    line must equal it, or match it (``re.search``) when it is a compiled
    regex. Blank lines at the section's end are layout (the reference appends
    after them). A section missing from ``before`` counts as empty. Other
    sections are not checked: add :func:`assert_only_sections_changed` for that.
    """
    __tracebackhide__ = True
    old_document, _old_name = load_document(before)
    new_document, new_name = load_document(after)
    label = heading_label(heading)
    new_lines = new_document.section(heading)
    if new_lines is None:
        raise _missing_section(new_document, new_name, heading)
    old_lines = old_document.section(heading) or []
    # Blank lines at a section's end are layout: the reference appends after
    # them, a hand edit before them; both are one appended line.
    old_body = _strip_trailing_blanks(
        [line for line in old_lines if line.strip() not in PLACEHOLDER_LINES]
    )
    new_body = _strip_trailing_blanks(new_lines)
    diff = _indented(
        diff_lines(
            old_document.section_text(heading) or "",
            new_document.section_text(heading) or "",
        )
    )
    if not new_body or _strip_trailing_blanks(new_body[:-1]) != old_body:
        if new_body[: len(old_body)] == old_body:
            gained = sum(1 for line in new_body[len(old_body) :] if line.strip())
            what = f"it gained {gained} line{'' if gained == 1 else 's'}"
        else:
            what = "its earlier lines changed"
        shown = f":\n{diff}" if diff else " (the section is unchanged)."
        raise AssertionError(
            f"section {label} of {new_name} did not gain exactly one line at its end "
            f"({what}; placeholders removed by an append are allowed){shown}"
            + _gained_elsewhere(old_document, new_document, heading, entry)
        )
    added = new_body[-1]
    if added.strip() in PLACEHOLDER_LINES:
        raise AssertionError(
            f"the line appended to section {label} is the placeholder {added!r}, "
            f"not an entry:\n{diff}"
        )
    if entry is not None and not _entry_matches(entry, added):
        raise AssertionError(
            f"the line appended to section {label} is\n{INDENT}{added!r}\n"
            f"expected {_describe_entry(entry)}:\n{diff}"
        )


def _gained_elsewhere(
    before: MemoryDocument,
    after: MemoryDocument,
    heading: str,
    entry: str | re.Pattern[str] | None,
) -> str:
    """Where the lines went instead: the other sections that gained lines, or the entry."""
    places: list[str] = []
    for change in section_changes(before, after):
        if change.heading == heading:
            continue
        old_lines = set(change.before.splitlines())
        new_lines = change.after.splitlines()[1 if change.heading else 0 :]
        added = [line for line in new_lines if line not in old_lines]
        if entry is not None:
            added = [line for line in added if _entry_matches(entry, line)]
        if added:
            shown = "; ".join(repr(line) for line in added[:3])
            places.append(f"{heading_label(change.heading)} gained {shown}")
    if not places:
        return ""
    what = "the expected line" if entry is not None else "lines"
    return f"\n{what} went into another section instead: " + ", ".join(places)


def assert_only_sections_changed(
    before: MemoryLike, after: MemoryLike, headings: Iterable[str]
) -> None:
    """Assert that every section not named in ``headings`` is byte-for-byte unchanged.

    A section added or removed counts as a change; ``""`` names the text
    before the first heading. Named sections may change or not. The sections
    not named must also keep their order.
    """
    __tracebackhide__ = True
    _require_lines(headings, "headings")
    allowed = set(headings)
    old_document, _old_name = load_document(before)
    new_document, new_name = load_document(after)
    unexpected = [
        change
        for change in section_changes(old_document, new_document)
        if change.heading not in allowed
    ]
    allowed_text = ", ".join(heading_label(h) for h in sorted(allowed)) or "none"
    if unexpected:
        names = ", ".join(f"{heading_label(c.heading)} ({c.kind})" for c in unexpected)
        plural = "s" if len(unexpected) != 1 else ""
        raise AssertionError(
            f"{len(unexpected)} section{plural} of {new_name} changed that should not have: "
            f"{names} (allowed to change: {allowed_text}):\n"
            + "\n".join(describe_changes(unexpected))
        )
    if reordered_headings(old_document, new_document, ignore=allowed):
        before_order = [h for h in old_document.headings if h not in allowed]
        after_order = [h for h in new_document.headings if h not in allowed]
        raise AssertionError(
            f"the sections of {new_name} were reordered:\n"
            f"{INDENT}before: {before_order!r}\n{INDENT}after:  {after_order!r}"
        )


def _read_ledger(path: Path) -> bytes:
    __tracebackhide__ = True
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AssertionError(
            f"no results ledger at {path}: create it with ensure_results_file() or append_result()"
        ) from None


def _ledger_problems(data: bytes) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        number = data.count(b"\n", 0, error.start) + 1
        return [f"line {number}: not UTF-8 ({error.reason})"]
    if not text:
        return ["the file is empty: the header line is missing"]
    lines = text.split("\n")
    problems: list[str] = []
    if lines[0] != RESULTS_HEADER.rstrip("\n"):
        problems.append(f"line 1: header {lines[0]!r}, expected {RESULTS_HEADER.rstrip()!r}")
    torn = lines[-1] != ""
    if not torn:
        lines.pop()
    for number, line in enumerate(lines[1:], start=2):
        if "\r" in line:
            problems.append(f"line {number}: a '\\r' (the ledger's line ending is '\\n')")
        elif not line:
            problems.append(f"line {number}: blank line")
        else:
            try:
                parse_result_line(line)
            except ValueError as error:
                problems.append(f"line {number}: {error}")
    if torn:  # listed last, in line order with the rest
        problems.append(f"line {len(lines)}: no line ending (a torn write?)")
    return problems


def assert_results_well_formed(path: Path | str) -> None:
    """Assert that ``path`` is a ledger exactly as ``append_result`` writes one.

    UTF-8, the header on line 1, then rows of six tab-separated fields with an
    integer iteration, each ending with ``\\n``: no blank, torn or CRLF lines.
    The message lists every problem with its line number.
    """
    __tracebackhide__ = True
    path = Path(path)
    problems = _ledger_problems(_read_ledger(path))
    if problems:
        raise AssertionError(f"{path} is not a well-formed results ledger:\n{_capped(problems)}")


def _as_written(name: str, value: object) -> object:
    # Compare as the ledger stores it: numbers through %.12g, the iteration an int.
    if name == "primary_metric_value":
        if isinstance(value, int | float | str):
            return parse_metric(format_metric(value))
        return value
    if name == "iteration" and isinstance(value, int | str):
        return int(value)
    return value


def _expected_fields(expected: ResultLike) -> dict[str, object]:
    if isinstance(expected, ResultRow):
        return expected.as_dict()
    unknown = set(expected) - set(RESULT_FIELDS)
    if unknown:
        raise TypeError(
            f"expected row {dict(expected)!r} has unknown fields {sorted(unknown)}; "
            f"the fields are {', '.join(RESULT_FIELDS)}"
        )
    return dict(expected)


_ALIGN_KEYS: Final = ("iteration", "commit")


def _key_value(name: str, value: object) -> object:
    # Hashable and NaN-safe: numbers as the ledger writes them.
    written = _as_written(name, value)
    return format_metric(written) if isinstance(written, float) else written


def _alignment_fields(expected: Sequence[dict[str, object]]) -> tuple[str, ...]:
    """The fields rows are aligned by: iteration and commit when every expected row gives them."""
    common = set(RESULT_FIELDS)
    for fields in expected:
        common &= set(fields)
    keys = tuple(name for name in _ALIGN_KEYS if name in common)
    return keys or tuple(name for name in RESULT_FIELDS if name in common)


def _row_differences(row: ResultRow, want: dict[str, object]) -> list[str]:
    return [
        f"{name} {getattr(row, name)!r} != expected {_as_written(name, value)!r}"
        for name, value in want.items()
        if not values_equal(getattr(row, name), _as_written(name, value))
    ]


def assert_results_rows(path: Path | str, expected: Sequence[ResultLike]) -> None:
    """Assert that the ledger at ``path`` holds exactly the ``expected`` rows, in order.

    Each expected row is a :class:`~fermilink_state.ResultRow` (every field
    compared) or a mapping naming only the fields to compare. Values are
    compared as the ledger stores them: numbers through ``%.12g`` (so
    ``0.1 + 0.2`` equals ``0.3``), two NaNs are equal. Rows are aligned first
    (by iteration and commit when every expected row gives them, else by the
    fields they all give), so a missing or extra row is reported as such, not
    as a mismatch of every row after it.
    """
    __tracebackhide__ = True
    path = Path(path)
    data = _read_ledger(path)
    try:
        rows = read_results(path)
    except StateCorruptError as error:
        raise AssertionError(f"cannot compare the rows: {error}") from None
    text = data.decode("utf-8")
    line_numbers = [number for number, _line in iter_result_lines(text)]
    wanted = [_expected_fields(want) for want in expected]
    keys = _alignment_fields(wanted)
    matcher = difflib.SequenceMatcher(
        None,
        [tuple(_key_value(name, getattr(row, name)) for name in keys) for row in rows],
        [tuple(_key_value(name, want[name]) for name in keys) for want in wanted],
        autojunk=False,
    )
    problems: list[str] = []

    def found(index: int) -> str:
        return f"row {index + 1} (line {line_numbers[index]})"

    for tag, start, end, expected_start, expected_end in matcher.get_opcodes():
        pairs = min(end - start, expected_end - expected_start) if tag != "equal" else end - start
        if tag in ("equal", "replace"):
            for offset in range(pairs):
                row, want = rows[start + offset], wanted[expected_start + offset]
                differences = _row_differences(row, want)
                if differences:
                    problems.append(f"{found(start + offset)}: {'; '.join(differences)}")
        for index in range(start + pairs, end):
            problems.append(f"{found(index)} not expected: {rows[index]!r}")
        for index in range(expected_start + pairs, expected_end):
            after = f"after {found(start + pairs - 1)}" if start + pairs else "first"
            problems.append(f"expected row {index + 1} missing ({after}): {wanted[index]!r}")
    if problems:
        raise AssertionError(
            f"{path}: {counted(len(rows), 'row')}, {len(wanted)} expected; "
            f"they differ:\n{_capped(problems)}"
        )


def _problem_lines(root: Path, problems: Sequence[CampaignProblem]) -> list[str]:
    # Paths relative to the project: the test named the project already.
    return [
        str(replace(problem, path=problem.path.relative_to(root)))
        if problem.path.is_relative_to(root)
        else str(problem)
        for problem in problems
    ]


def assert_campaign_consistent(
    project_root: Path | str, *, allow_debris: bool = True
) -> list[CampaignProblem]:
    """Assert that the campaign of ``project_root`` is consistent, across its files.

    The same engine as ``fermilink-state check``: the ledger is well formed;
    state.json's iteration and incumbent are in the ledger (the incumbent as a
    baseline or accepted row); memory.md and the worker memory have their
    template headings; the run lock's holder is alive or there is no run
    lock; there is no temp of a writer that is gone and no quarantined file.

    Crash debris, which the next write or campaign start repairs by itself (a
    dead writer's temp, a torn or NUL-padded last ledger row, a stale run
    lock), is not an inconsistency: every crash state a correct controller
    can leave passes. It is returned, and listed in the message of a failure;
    ``allow_debris=False`` fails on it too (for a campaign that finished
    cleanly). A malformed row in the middle of the ledger always fails.
    """
    __tracebackhide__ = True
    root = Path(project_root)
    if not optimize_root(root).is_dir():
        raise AssertionError(
            f"no campaign at {root}: {optimize_root(root).name}/ is missing "
            "(pass the project root that holds it)"
        )
    problems = campaign_problems(root)
    debris = [problem for problem in problems if problem.debris]
    failures = problems if not allow_debris else [p for p in problems if not p.debris]
    if failures:
        nouns = ("inconsistency", "inconsistencies") if allow_debris else ("problem", "problems")
        count = f"{len(failures)} {nouns[len(failures) != 1]}"
        message = f"the campaign at {root} is not consistent ({count}):\n"
        message += _capped(_problem_lines(root, failures))
        if allow_debris and debris:
            message += "\ncrash debris, which the next write repairs (not a failure):\n" + _capped(
                _problem_lines(root, debris)
            )
        raise AssertionError(message)
    return debris
