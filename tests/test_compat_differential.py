"""Differential tests: fermilink_state against the real ``fermilink.optimize.state``.

Every test runs the same operation with both libraries (each in its own
folder, both clocks frozen) and compares return values and the bytes of every
file written (our ``*.lock`` files aside). Where we differ on purpose, the
test name starts with ``test_deviation_``, names the SPEC rule that allows
it, and asserts our behaviour exactly; the allowed deviations are SPEC §1
(TSV cells are one line; falsy values written; pid_is_running EPERM and
Windows; locked, atomic writes, with §2's ledger repairs; write_run_lock and
clear_run_lock leave a live holder's run lock alone, README "Deviations") and SPEC §3 (memory
edits keep CRLF, BOM, fenced code and other bytes; corrupt JSON quarantined;
non-UTF-8 raising StateCorruptError).
"""

from __future__ import annotations

import errno
import json
import math
import os
import sys
import warnings
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fermilink_state
from fermilink_state import StateCorruptError, StateCorruptWarning, _memory, _process, _results
from support import (
    FROZEN_UTC,
    LINE_BREAKS,
    Twin,
    crlf,
    dead_pid,
    iter_splitlines_breaks,
    load_reference,
    temp_litter,
)

reference = load_reference()

# ---------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------

MARK = "\ue000"  # a private-use character: plain content to both libraries

# Cell texts without tabs or line breaks: identical in every cell of both.
PLAIN_TEXTS: dict[str, str] = {
    "empty": "",
    "word": "abc123",
    "leading_spaces": "  lead",
    "trailing_spaces": "trail  ",
    "inner_spaces": "a  b   c",
    "spaces_only": "   ",
    "unicode": "ünïcödé ✓ 中文 🚀",
    "nbsp": "a\xa0b",
    "zero_width": "a\u200bb",
    "nul_and_del": "a\x00b\x7f",
    "hash_heading": "### Progress log",
    "placeholder": "- none yet",
    "number_text": "-0.0",
    "nan_text": "nan",
    "none_text": "None",
    "braces": "{x} [y] (z) = ,",
    "very_long": "x" * 20_000,
}
# Cell texts with a tab or a line break (every kind str.splitlines knows).
BREAK_TEXTS: dict[str, str] = {
    "tab": "a\tb",
    "only_tab": "\t",
    **{f"break_{ord(br[0]):#x}_{len(br)}": f"a{br}b" for br in LINE_BREAKS},
    "trailing_newline": "end\n",
    "leading_crlf": "\r\nstart",
}
METRICS: dict[str, object] = {
    "int_zero": 0,
    "int": 42,
    "negative_int": -7,
    "float_zero": 0.0,
    "negative_zero": -0.0,
    "float": 1.5,
    "third": 1 / 3,
    "tiny": 5e-324,
    "small": 1e-300,
    "large": 1e300,
    "max_float": sys.float_info.max,
    "nan": math.nan,
    "inf": math.inf,
    "negative_inf": -math.inf,
    "big_int": 10**15,
    "huge_int": 2**63 + 1,
    "negative_huge_int": -(10**30),
    "true": True,
    "false": False,
    "text": "text",
    "empty_text": "",
    "numeric_text": "1.5000",
    "decimal": Decimal("1.10"),
}
DESCRIPTIONS: dict[str, object] = {
    "none": None,
    **PLAIN_TEXTS,
    **BREAK_TEXTS,
    "many_whitespace_kinds": " \t a \n\r b \x0c\x0b c \u2028\u2029\x85 d \xa0 ",
    "int": 17,
    "float": 2.5,
    "true": True,
    "list": [1, "a"],
}
FALSY_VALUES: dict[str, object] = {
    "zero": 0,
    "float_zero": 0.0,
    "negative_zero": -0.0,
    "false": False,
    "decimal_zero": Decimal(0),
}
STATUSES = ("baseline", "accepted", "rejected", "crash", "timeout", "", "Accepted", "accepted ")


def _template(**overrides: str) -> str:
    values = {
        "package_id": "pkg",
        "benchmark_id": "bench",
        "benchmark_rel": "bench/benchmark.yaml",
        "optimize_branch": "optimize/run",
        "started": "2026-01-01T00:00:00Z",
    }
    values.update(overrides)
    return _memory.memory_template(**values)


TEMPLATE = _template()
WORKER_TEMPLATE = _memory.worker_memory_template(
    package_id="pkg",
    benchmark_id="bench",
    benchmark_rel="b.yaml",
    program_rel="program.md",
    controller_memory_rel="memory.md",
    results_rel="results.tsv",
    worker_iteration=3,
    now="2026-01-01T00:00:00Z",
)
PROGRESS = "### Progress log\n- Campaign initialized.\n"
ACCEPTED = "### Accepted experiments\n- none yet\n"
REJECTED = "### Rejected patterns\n- none yet\n"
LATEST = "### Latest accepted commit\n- commit: pending\n- primary_metric: pending\n"
LAST_UPDATED = "- last_updated_utc: 2026-01-01T00:00:00Z\n"


def _after_events(text: str) -> str:
    for number in range(3):
        text = reference._append_section_line(text, "### Progress log", f"- event {number}")
    return str(reference._append_section_line(text, "### Rejected patterns", "- rejected 1"))


# Memory files as plain LF text without fences.
MEMORY_SHAPES: dict[str, str] = {
    "template": TEMPLATE,
    "template_no_final_newline": TEMPLATE.rstrip("\n"),
    "template_extra_final_newlines": TEMPLATE + "\n\n\n",
    "template_after_events": _after_events(TEMPLATE),
    "worker_template": WORKER_TEMPLATE,
    "empty": "",
    "newline_only": "\n",
    "blank_lines_only": "\n\n\n",
    "spaces_only": "   ",
    "title_only": "# FermiLink Optimize Memory",
    "missing_progress_log": TEMPLATE.replace(PROGRESS, ""),
    "missing_accepted": TEMPLATE.replace(ACCEPTED, ""),
    "missing_rejected": TEMPLATE.replace(REJECTED, ""),
    "missing_latest": TEMPLATE.replace(LATEST, ""),
    "missing_metadata": TEMPLATE.replace(LAST_UPDATED, ""),
    "missing_everything": "# FermiLink Optimize Memory\n\nfree text\n",
    "duplicate_headings": TEMPLATE + "\n" + PROGRESS + REJECTED + ACCEPTED + LATEST,
    "duplicate_metadata": TEMPLATE.replace(LAST_UPDATED, LAST_UPDATED * 2),
    "metadata_only_in_a_section": TEMPLATE.replace(LAST_UPDATED, "").replace(
        PROGRESS, PROGRESS + "- last_updated_utc: in the log\n"
    ),
    "heading_at_end_without_body": TEMPLATE + "### Progress log",
    "progress_log_last_no_newline": "# T\n\n### Progress log\n- Campaign initialized.",
    "rejected_last_no_newline": "# T\n" + REJECTED.rstrip("\n"),
    "extra_blank_lines": TEMPLATE.replace("\n###", "\n\n\n###").replace("\n##", "\n\n\n##"),
    "blank_lines_inside_sections": TEMPLATE.replace("- none yet\n", "\n- none yet\n\n"),
    "placeholders_with_spaces": TEMPLATE.replace("- none yet", "   - none yet   ").replace(
        "- Campaign initialized.", "\t- Campaign initialized. "
    ),
    "placeholder_lookalikes": TEMPLATE.replace("- none yet", "- none yet!").replace(
        "- Campaign initialized.", "- campaign initialized."
    ),
    "trailing_spaces": TEMPLATE.replace("\n", "  \n"),
    "deep_headings": TEMPLATE.replace(PROGRESS, PROGRESS + "#### Detail\n- deep\n"),
    "h1_mid_file": TEMPLATE.replace(ACCEPTED, "# Another title\n- x\n" + ACCEPTED),
    "similar_headings": TEMPLATE.replace(
        PROGRESS, "### Progress logs\n###Progress log\n### progress log\n" + PROGRESS
    ),
    "heading_with_trailing_space": TEMPLATE.replace("### Progress log\n", "### Progress log \n"),
    "indented_heading": TEMPLATE.replace("### Progress log\n", " ### Progress log\n"),
    "text_before_first_heading": "intro line\n\n" + TEMPLATE,
    "sections_without_title": PROGRESS + ACCEPTED + REJECTED,
    "unicode": TEMPLATE.replace("- none yet", "- ünïcödé ✓ 中文 🚀"),
    "long_lines": TEMPLATE.replace("- none yet", "- " + "y" * 20_000),
    "tabs": TEMPLATE.replace("- none yet", "-\tnone\tyet\t"),
}
FENCED_SHAPES: dict[str, str] = {
    "backtick_fence_with_headings": TEMPLATE.replace(
        PROGRESS, "```\n### Progress log\n- none yet\n- last_updated_utc: fake\n```\n" + PROGRESS
    ),
    "tilde_fence_in_progress_log": TEMPLATE.replace(
        PROGRESS, PROGRESS + "~~~text\n## Not a section\n### Rejected patterns\n~~~\n"
    ),
    "long_fence_with_inner_short_fence": TEMPLATE.replace(
        ACCEPTED, "````\n```\n### Accepted experiments\n```\n````\n" + ACCEPTED
    ),
    "indented_fence": TEMPLATE.replace(PROGRESS, "   ```\n### Progress log\n   ```\n" + PROGRESS),
}


def _variants(shapes: dict[str, str]) -> dict[str, str]:
    """Each shape as LF, CRLF, CR only, with a BOM, and with other line breaks mixed in."""
    variants: dict[str, str] = {}
    for name, text in shapes.items():
        variants[f"{name}-lf"] = text
        variants[f"{name}-crlf"] = crlf(text)
        variants[f"{name}-cr"] = text.replace("\n", "\r")
        variants[f"{name}-bom"] = "\ufeff" + text
        mixed = "".join(
            line + LINE_BREAKS[index % len(LINE_BREAKS)]
            for index, line in enumerate(text.split("\n"))
        )
        variants[f"{name}-mixed_breaks"] = mixed
    return variants


ALL_TEXT_SHAPES = _variants({**MEMORY_SHAPES, **FENCED_SHAPES})

HEADINGS = (
    "### Progress log",
    "### Accepted experiments",
    "### Rejected patterns",
    "### Latest accepted commit",
    "## Long-Term Memory (Persistent)",
    "# FermiLink Optimize Memory",
    "### Missing section",
    "### Progress log ",
    "#### Detail",
    "",
)
ENTRIES = ("- entry", "", "  - none yet  ", "two\nlines", "### Injected", "- ü ✓ 🚀", "a\r\nb")
NEW_LINES: tuple[list[str], ...] = (
    [],
    ["- a"],
    ["- a", "", "- b"],
    ["- none yet"],
    ["x\r\ny", "### Injected"],
)
METADATA = (
    ("- last_updated_utc: ", "2026-02-02T00:00:00Z"),
    ("- started_at_utc: ", ""),
    ("- missing_key: ", "value"),
    ("", "everything"),
    ("#", "hash"),
    ("- commit: ", "multi\nline"),
)


def _mismatches(
    calls: list[tuple[str, Callable[[Any], object]]],
) -> list[tuple[str, object, object]]:
    """Run each ``(label, call)`` on both libraries; the differing ones."""
    found: list[tuple[str, object, object]] = []
    for label, call in calls:
        theirs = _outcome(call, reference)
        ours = _outcome(call, fermilink_state)
        if ours != theirs:
            found.append((label, theirs, ours))
    return found


def _outcome(call: Callable[[Any], object], library: Any) -> object:
    try:
        return call(library)
    except Exception as exc:
        return f"raised {type(exc).__name__}"


# ---------------------------------------------------------------------------
# The grid itself
# ---------------------------------------------------------------------------


def test_line_breaks_are_every_splitlines_break() -> None:
    assert set(LINE_BREAKS) - {"\r\n"} == set(iter_splitlines_breaks())


# ---------------------------------------------------------------------------
# _sanitize_cell
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [v for k, v in DESCRIPTIONS.items()],
    ids=list(DESCRIPTIONS),
)
def test_sanitize_cell_matches_reference(value: object) -> None:
    assert fermilink_state._sanitize_cell(value) == reference._sanitize_cell(value)


@pytest.mark.parametrize("value", list(FALSY_VALUES.values()), ids=list(FALSY_VALUES))
def test_deviation_sanitize_cell_writes_falsy_values(value: object) -> None:
    """SPEC §1: a falsy-but-real value such as 0 is written, not dropped."""
    assert reference._sanitize_cell(value) == ""
    assert fermilink_state._sanitize_cell(value) == str(value)


# ---------------------------------------------------------------------------
# The plain-text section helpers: byte-identical on every input, CRLF included
# ---------------------------------------------------------------------------


def _helper(name: str, *args: object) -> Callable[[Any], object]:
    """A call of the helper ``name``; list arguments are copied for each library."""
    return lambda lib: getattr(lib, name)(*(list(a) if isinstance(a, list) else a for a in args))


@pytest.mark.parametrize("content", list(ALL_TEXT_SHAPES.values()), ids=list(ALL_TEXT_SHAPES))
def test_find_section_bounds_matches_reference(content: str) -> None:
    calls = [
        (f"{split} {heading!r}", _helper("_find_section_bounds", lines, heading))
        for split, lines in (
            ("splitlines", content.splitlines()),
            ("split", content.split("\n")),
        )
        for heading in HEADINGS
    ]
    assert _mismatches(calls) == []


@pytest.mark.parametrize("content", list(ALL_TEXT_SHAPES.values()), ids=list(ALL_TEXT_SHAPES))
def test_set_section_lines_matches_reference(content: str) -> None:
    calls = [
        (f"{heading!r} {new_lines!r}", _helper("_set_section_lines", content, heading, new_lines))
        for heading in HEADINGS
        for new_lines in NEW_LINES
    ]
    assert _mismatches(calls) == []


@pytest.mark.parametrize("content", list(ALL_TEXT_SHAPES.values()), ids=list(ALL_TEXT_SHAPES))
def test_append_section_line_matches_reference(content: str) -> None:
    calls = [
        (f"{heading!r} {entry!r}", _helper("_append_section_line", content, heading, entry))
        for heading in HEADINGS
        for entry in ENTRIES
    ]
    assert _mismatches(calls) == []


@pytest.mark.parametrize("content", list(ALL_TEXT_SHAPES.values()), ids=list(ALL_TEXT_SHAPES))
def test_replace_metadata_line_matches_reference(content: str) -> None:
    calls = [
        (f"{prefix!r} {value!r}", _helper("_replace_metadata_line", content, prefix, value))
        for prefix, value in METADATA
    ]
    assert _mismatches(calls) == []


def test_section_helpers_do_not_mutate_their_arguments() -> None:
    lines = TEMPLATE.splitlines()
    new_lines = ["- a", "- b"]
    fermilink_state._find_section_bounds(lines, "### Progress log")
    fermilink_state._set_section_lines(TEMPLATE, "### Missing", new_lines)
    assert (lines, new_lines) == (TEMPLATE.splitlines(), ["- a", "- b"])


# ---------------------------------------------------------------------------
# record_campaign_event
# ---------------------------------------------------------------------------


def _event(**overrides: object) -> Callable[[Any, Path], object]:
    arguments: dict[str, object] = {
        "commit": "abc1234",
        "primary_metric_name": "runtime_s",
        "primary_metric_value": 1.25,
        "status": "accepted",
        "description": "vectorized the inner loop",
    }
    arguments.update(overrides)
    return lambda lib, path: lib.record_campaign_event(path, **arguments)


@pytest.mark.parametrize("content", list(MEMORY_SHAPES.values()), ids=list(MEMORY_SHAPES))
def test_record_campaign_event_matches_reference(twin: Twin, content: str) -> None:
    differing = []
    for status in STATUSES:
        theirs, ours = twin.edit_file(_event(status=status), content.encode())
        if ours != theirs:
            differing.append((status, theirs, ours))
    assert differing == []


EVENT_ARGUMENTS: dict[str, dict[str, object]] = {
    **{f"commit-{name}": {"commit": text} for name, text in PLAIN_TEXTS.items()},
    **{f"metric_name-{name}": {"primary_metric_name": text} for name, text in PLAIN_TEXTS.items()},
    **{f"status-{name}": {"status": text} for name, text in PLAIN_TEXTS.items()},
    **{f"value-{name}": {"primary_metric_value": value} for name, value in METRICS.items()},
    **{
        f"description-{name}": {"description": value}
        for name, value in DESCRIPTIONS.items()
        if value not in FALSY_VALUES.values() or value == "" or value is None
    },
    # Multi-line arguments (plain LF) that spell headings, placeholders and
    # metadata: the reference re-reads its own output between edits.
    "commit-newline": {"commit": "a\nb"},
    "commit-injects_heading": {"commit": "a\n### Accepted experiments"},
    "metric_name-injects_progress_log": {"primary_metric_name": "a\n### Progress log\n"},
    "status-injects_latest": {"status": "q\n### Latest accepted commit\n- none yet"},
    "value-injects_metadata": {"primary_metric_value": "x\n- last_updated_utc: q"},
    "commit-injects_placeholder": {"commit": "a\n- none yet"},
    "commit-blank_lines": {"commit": "\n\n"},
}


@pytest.mark.parametrize("arguments", list(EVENT_ARGUMENTS.values()), ids=list(EVENT_ARGUMENTS))
def test_record_campaign_event_arguments_match_reference(
    twin: Twin, arguments: dict[str, object]
) -> None:
    for status in ("accepted", "rejected"):
        theirs, ours = twin.edit_file(_event(**{"status": status, **arguments}), TEMPLATE.encode())
        assert ours == theirs


def test_record_campaign_event_huge_int_fails_like_reference(twin: Twin) -> None:
    theirs, ours = twin.both(
        lambda lib, root: (
            (root / "memory.md").write_text(TEMPLATE),
            _event(primary_metric_value=10**400)(lib, root / "memory.md"),
        )
    )
    assert (ours, ours.error) == (theirs, "OverflowError")


def test_record_campaign_event_on_missing_file_does_nothing(twin: Twin) -> None:
    theirs, ours = twin.both(lambda lib, root: _event()(lib, root / "memory.md"))
    assert ours == theirs
    assert ours.files == {}


def test_record_campaign_event_on_a_folder_does_nothing_like_reference(twin: Twin) -> None:
    theirs, ours = twin.both(_event())
    assert (ours, ours.error) == (theirs, None)


def test_record_campaign_event_many_in_a_row_matches_reference(twin: Twin) -> None:
    def campaign(lib: Any, root: Path) -> object:
        path = root / "memory.md"
        lib.ensure_memory_file(
            path, package_id="p", benchmark_id="b", benchmark_rel="b.yaml", optimize_branch="o"
        )
        for number in range(30):
            status = STATUSES[number % len(STATUSES)]
            _event(status=status, commit=f"c{number}", primary_metric_value=number / 7)(lib, path)
        return None

    theirs, ours = twin.both(campaign)
    assert ours == theirs


LINE_SHAPES = {name: text for name, text in MEMORY_SHAPES.items() if "\n" in text}


@pytest.mark.parametrize("content", list(LINE_SHAPES.values()), ids=list(LINE_SHAPES))
def test_deviation_record_campaign_event_keeps_crlf(twin: Twin, content: str) -> None:
    """SPEC §3: a CRLF memory stays CRLF (the reference rewrites it as LF)."""
    for status in ("accepted", "rejected"):
        theirs, _ = twin.edit_file(_event(status=status), content.encode())
        _, ours = twin.edit_file(_event(status=status), crlf(content).encode())
        assert ours == crlf(theirs.decode()).encode()


@pytest.mark.parametrize("content", list(MEMORY_SHAPES.values()), ids=list(MEMORY_SHAPES))
def test_deviation_record_campaign_event_keeps_bom(twin: Twin, content: str) -> None:
    """SPEC §3: a BOM is kept and is not part of the first line."""
    for status in ("accepted", "rejected"):
        theirs, _ = twin.edit_file(_event(status=status), content.encode())
        _, ours = twin.edit_file(_event(status=status), ("\ufeff" + content).encode())
        assert ours == "\ufeff".encode() + theirs


@pytest.mark.parametrize("content", list(FENCED_SHAPES.values()), ids=list(FENCED_SHAPES))
def test_deviation_record_campaign_event_skips_fenced_code(twin: Twin, content: str) -> None:
    """SPEC §3: headings, placeholders and metadata inside fenced code are content.

    Our result is the reference's on the same file with each fenced block
    replaced by an inert line, with the block put back.
    """
    fences = _fenced_blocks(content)
    masked = content
    for number, block in enumerate(fences):
        masked = masked.replace(block, f"{MARK}{number}\n", 1)
    for status in ("accepted", "rejected"):
        theirs, _ = twin.edit_file(_event(status=status), masked.encode())
        _, ours = twin.edit_file(_event(status=status), content.encode())
        expected = theirs.decode()
        for number, block in enumerate(fences):
            expected = expected.replace(f"{MARK}{number}\n", block)
        assert ours.decode() == expected


def _fenced_blocks(text: str) -> list[str]:
    from fermilink_state._markdown import fence_spans

    return [text[start:end] for start, end in fence_spans(text)]


@pytest.mark.parametrize(
    "char", [br for br in LINE_BREAKS if br not in ("\n", "\r\n")], ids=lambda c: f"{ord(c):#x}"
)
def test_deviation_record_campaign_event_keeps_other_line_breaks(twin: Twin, char: str) -> None:
    """SPEC §3: only ``\\n`` ends a line of memory; other break characters are kept.

    The reference reads with universal newlines and re-joins ``splitlines()``,
    so a lone CR, a form feed or U+2028 in the file or in an argument turns
    into a newline. Ours is the reference's result on the same input with
    that character masked, then restored.
    """
    content = TEMPLATE.replace("- none yet", f"- none{char}yet").replace(
        PROGRESS, PROGRESS + f"- earlier{char}### Rejected patterns\n"
    )
    masked = content.replace(char, MARK)
    event = _event(commit=f"c{char}1", status="rejected")
    masked_event = _event(commit=f"c{MARK}1", status="rejected")
    theirs, _ = twin.edit_file(masked_event, masked.encode())
    _, ours = twin.edit_file(event, content.encode())
    assert ours.decode() == theirs.decode().replace(MARK, char)


def test_deviation_record_campaign_event_rejects_non_utf8(twin: Twin) -> None:
    """SPEC §3: non-UTF-8 memory raises StateCorruptError and is left as it was."""
    content = TEMPLATE.encode().replace(b"- none yet", b"- caf\xe9", 1)
    path = twin.base / "latin1.md"
    path.write_bytes(content)
    with pytest.raises(UnicodeDecodeError):
        reference.record_campaign_event(
            path,
            commit="c",
            primary_metric_name="m",
            primary_metric_value=1,
            status="accepted",
            description="d",
        )
    with pytest.raises(StateCorruptError) as raised:
        _event()(fermilink_state, path)
    assert raised.value.path == path
    assert raised.value.line == content.count(b"\n", 0, content.index(b"\xe9")) + 1
    assert path.read_bytes() == content


@pytest.mark.parametrize("value", list(FALSY_VALUES.values()), ids=list(FALSY_VALUES))
def test_deviation_record_campaign_event_writes_falsy_description(
    twin: Twin, value: object
) -> None:
    """SPEC §1: a falsy description such as 0 is written, not dropped."""
    theirs, _ = twin.edit_file(_event(description=str(value)), TEMPLATE.encode())
    _, ours = twin.edit_file(_event(description=value), TEMPLATE.encode())
    assert ours == theirs


# ---------------------------------------------------------------------------
# append_result
# ---------------------------------------------------------------------------


def _row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "iteration": 3,
        "commit": "abc1234",
        "status": "accepted",
        "primary_metric_name": "runtime_s",
        "primary_metric_value": 1.25,
        "description": "vectorized the inner loop",
    }
    row.update(overrides)
    return row


def _ledger(*rows: dict[str, object]) -> Callable[[Any, Path], object]:
    def run(lib: Any, root: Path) -> object:
        path = root / "results.tsv"
        created = lib.ensure_results_file(path)
        returned = [lib.append_result(path, **row) for row in rows]
        return created, returned

    return run


ROW_CASES: dict[str, dict[str, object]] = {
    **{f"commit-{name}": {"commit": text} for name, text in PLAIN_TEXTS.items()},
    **{f"status-{name}": {"status": text} for name, text in PLAIN_TEXTS.items()},
    **{f"metric_name-{name}": {"primary_metric_name": text} for name, text in PLAIN_TEXTS.items()},
    **{f"value-{name}": {"primary_metric_value": value} for name, value in METRICS.items()},
    "value-huge_int_overflows": {"primary_metric_value": 10**400},
    "value-plain_text_cell": {"primary_metric_value": "n/a"},
    **{
        f"description-{name}": {"description": value}
        for name, value in DESCRIPTIONS.items()
        if value not in FALSY_VALUES.values() or value == "" or value is None
    },
    "iteration-zero": {"iteration": 0},
    "iteration-negative": {"iteration": -5},
    "iteration-huge": {"iteration": 10**30},
    "iteration-true": {"iteration": True},
    "iteration-text": {"iteration": "7"},
    "iteration-float": {"iteration": 3.9},
    "iteration-bad_text": {"iteration": "seven"},
    "iteration-none": {"iteration": None},
    "commit-none": {"commit": None},
}


@pytest.mark.parametrize("row", list(ROW_CASES.values()), ids=list(ROW_CASES))
def test_append_result_matches_reference(twin: Twin, row: dict[str, object]) -> None:
    theirs, ours = twin.both(_ledger(_row(), _row(**row), _row(iteration=4)))
    assert ours == theirs


@pytest.mark.parametrize(
    ("field", "text"),
    [
        (field, text)
        for field in ("commit", "status", "primary_metric_name", "primary_metric_value")
        for text in BREAK_TEXTS.values()
    ],
    ids=[
        f"{field}-{name}"
        for field in ("commit", "status", "primary_metric_name", "primary_metric_value")
        for name in BREAK_TEXTS
    ],
)
def test_deviation_tsv_cell_tabs_and_line_breaks_become_spaces(
    twin: Twin, field: str, text: str
) -> None:
    """SPEC §1: tabs and line breaks in a TSV cell become spaces: one line, six fields.

    Ours is the reference's output for the same text with each tab and
    line-break character replaced by a space (``\\r\\n`` by two).
    """
    repaired = text
    for char in ("\t", *LINE_BREAKS):
        repaired = repaired.replace(char, " " * len(char))
    theirs, _ = twin.both(_ledger(_row(**{field: repaired})))
    _, ours = twin.both(_ledger(_row(**{field: text})))
    assert ours == theirs
    rows = ours.files["results.tsv"].decode().split("\n")
    assert [len(row.split("\t")) for row in rows] == [6, 6, 1]


@pytest.mark.parametrize("value", list(FALSY_VALUES.values()), ids=list(FALSY_VALUES))
def test_deviation_append_result_writes_falsy_description(twin: Twin, value: object) -> None:
    """SPEC §1: a falsy description such as 0 is written, not dropped."""
    theirs, _ = twin.both(_ledger(_row(description=str(value))))
    _, ours = twin.both(_ledger(_row(description=value)))
    assert ours == theirs


def test_deviation_append_result_writes_header_into_missing_file(twin: Twin) -> None:
    """SPEC §2: the header is written when the ledger is missing (the reference omits it)."""

    def append(lib: Any, root: Path) -> object:
        return lib.append_result(root / "results.tsv", **_row())

    theirs, ours = twin.both(append)
    assert theirs.files["results.tsv"].count(b"\n") == 1
    assert ours.files["results.tsv"] == (
        reference.RESULTS_HEADER.encode() + theirs.files["results.tsv"]
    )


def test_deviation_append_result_writes_header_into_empty_file(twin: Twin) -> None:
    """SPEC §2: an empty ledger gets the header before the first row."""

    def append(lib: Any, root: Path) -> object:
        (root / "results.tsv").write_bytes(b"")
        return lib.append_result(root / "results.tsv", **_row())

    theirs, ours = twin.both(append)
    assert ours.files["results.tsv"] == (
        reference.RESULTS_HEADER.encode() + theirs.files["results.tsv"]
    )


def test_deviation_append_result_after_torn_line_starts_a_new_line(twin: Twin) -> None:
    """SPEC §2: after a crash left a torn last line, the next row starts on its own line.

    The reference glues the row onto the torn one. Ours cuts the torn line off
    and keeps its bytes beside the ledger (``results.tsv.corrupt-<time>``).
    """
    torn_line = "1\tabc\tacc"
    torn = reference.RESULTS_HEADER + torn_line

    def append(lib: Any, root: Path) -> object:
        (root / "results.tsv").write_text(torn)
        return lib.append_result(root / "results.tsv", **_row())

    with pytest.warns(fermilink_state.StateCorruptWarning, match="torn by a crash"):
        theirs, ours = twin.both(append)
    assert theirs.files["results.tsv"].startswith((torn + "3\t").encode())
    row = theirs.files["results.tsv"][len(torn) :]
    assert ours.files["results.tsv"] == reference.RESULTS_HEADER.encode() + row
    aside = [data for name, data in ours.files.items() if ".corrupt-" in name]
    assert aside == [torn_line.encode()]


def test_append_result_into_missing_folder_fails_like_reference(twin: Twin) -> None:
    theirs, ours = twin.both(lambda lib, root: lib.append_result(root / "no" / "r.tsv", **_row()))
    assert (ours, ours.error) == (theirs, "FileNotFoundError")


def test_append_result_onto_a_folder_fails_like_reference(twin: Twin) -> None:
    def append(lib: Any, root: Path) -> object:
        (root / "results.tsv").mkdir()
        return lib.append_result(root / "results.tsv", **_row())

    theirs, ours = twin.both(append)
    assert (ours, ours.error) == (theirs, "IsADirectoryError")


# ---------------------------------------------------------------------------
# recent_results_text
# ---------------------------------------------------------------------------

HEADER = "iteration\tcommit\tstatus\tprimary_metric_name\tprimary_metric_value\tdescription\n"


def _rows(count: int, start: int = 1) -> str:
    return "".join(
        f"{number}\tc{number}\taccepted\tm\t{number / 3:.12g}\trow {number}\n"
        for number in range(start, start + count)
    )


LEDGERS: dict[str, str | None] = {
    "missing": None,
    "empty": "",
    "header_only": HEADER,
    "one_row": HEADER + _rows(1),
    "eight_rows": HEADER + _rows(8),
    "twenty_rows": HEADER + _rows(20),
    "no_final_newline": HEADER + _rows(5).rstrip("\n"),
    "trailing_blank_lines": HEADER + _rows(5) + "\n\n\n",
    "newlines_only": "\n\n\n\n",
    "crlf": crlf(HEADER + _rows(10)),
    "lone_cr": (HEADER + _rows(10)).replace("\n", "\r"),
    "other_breaks": "".join(
        f"row {number}{LINE_BREAKS[number % len(LINE_BREAKS)]}" for number in range(40)
    ),
    "bom": "\ufeff" + HEADER + _rows(3),
    "unicode": HEADER + _rows(10).replace("row", "ünï ✓ 🚀"),
    "blank_line_between": HEADER + _rows(3) + "\n" + _rows(3, start=4),
}
# Past the 64 KiB tail block, cut at every offset inside multi-byte
# characters and CRLF pairs.
LARGE_LEDGERS: dict[str, str] = {
    f"large_shift_{shift}": "x" * shift + "é€😀ab\r\n" * 20_000 for shift in range(12)
}
LARGE_LEDGERS["large_single_line"] = "é" * 200_000
LARGE_LEDGERS["large_mixed_breaks"] = "".join(
    f"r{number}€{LINE_BREAKS[number % len(LINE_BREAKS)]}" for number in range(30_000)
)
LIMITS = (0, -1, -3, 1, 2, 7, 8, 9, 21, 100, 10**9)


def _recent(limit: int, content: str | None) -> Callable[[Any, Path], object]:
    def run(lib: Any, root: Path) -> object:
        path = root / "results.tsv"
        if content is not None:
            path.write_bytes(content.encode())
        return lib.recent_results_text(path, limit=limit)

    return run


@pytest.mark.parametrize("content", list(LEDGERS.values()), ids=list(LEDGERS))
def test_recent_results_text_matches_reference(twin: Twin, content: str | None) -> None:
    for limit in LIMITS:
        theirs, ours = twin.both(_recent(limit, content))
        assert (limit, ours) == (limit, theirs)


@pytest.mark.parametrize("content", list(LARGE_LEDGERS.values()), ids=list(LARGE_LEDGERS))
def test_recent_results_text_on_large_ledgers_matches_reference(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "results.tsv"
    path.write_bytes(content.encode())
    for limit in (1, 8, 3_000, 4_000, 10**9):
        ours = fermilink_state.recent_results_text(path, limit=limit)
        assert (limit, ours) == (limit, reference.recent_results_text(path, limit=limit))


def test_recent_results_text_default_limit_matches_reference(twin: Twin) -> None:
    def run(lib: Any, root: Path) -> object:
        path = root / "results.tsv"
        path.write_text(HEADER + _rows(30))
        return lib.recent_results_text(path)

    theirs, ours = twin.both(run)
    assert ours == theirs


def test_recent_results_text_on_a_folder_matches_reference(twin: Twin) -> None:
    theirs, ours = twin.both(lambda lib, root: lib.recent_results_text(root, limit=3))
    assert (ours, ours.value) == (theirs, "")


def test_recent_results_text_with_bad_utf8_in_the_tail_fails_like_reference(twin: Twin) -> None:
    theirs, ours = twin.both(
        lambda lib, root: (
            (root / "r.tsv").write_bytes(HEADER.encode() + b"1\tc\ta\tm\t1\tcaf\xe9\n"),
            lib.recent_results_text(root / "r.tsv", limit=2),
        )
    )
    assert (ours, ours.error) == (theirs, "UnicodeDecodeError")


def test_deviation_recent_results_text_reads_only_the_tail(tmp_path: Path) -> None:
    """SPEC §5: the cost does not grow with the ledger, so bytes before the tail are not read.

    Invalid UTF-8 far before the last ``limit`` lines makes the reference
    raise; ours returns those lines.
    """
    path = tmp_path / "results.tsv"
    path.write_bytes(b"caf\xe9\n" + (HEADER + _rows(10_000)).encode())
    with pytest.raises(UnicodeDecodeError):
        reference.recent_results_text(path, limit=2)
    assert fermilink_state.recent_results_text(path, limit=2) == _rows(2, start=9_999).rstrip("\n")


# ---------------------------------------------------------------------------
# JSON: write_json_file, write_state, write_run_lock, load_*
# ---------------------------------------------------------------------------

PAYLOADS: dict[str, object] = {
    "empty": {},
    "flat": {"b": 1, "a": "x", "c": None},
    "nested": {"z": {"y": [1, 2, {"x": True}]}, "a": []},
    "unicode": {"ünï": "✓ 中文 🚀", "emoji🚀": ["é"]},
    "control_chars": {"text": "tab\tnew\nline\r\x00\u2028"},
    "nan_inf": {"nan": math.nan, "inf": math.inf, "ninf": -math.inf},
    "negative_zero": {"z": -0.0},
    "huge_int": {"big": 10**40, "neg": -(2**70)},
    "floats": {"third": 1 / 3, "tiny": 5e-324, "max": sys.float_info.max},
    "bools_none": {"t": True, "f": False, "n": None},
    "empty_strings": {"": "", "k": ""},
    "long_string": {"long": "x" * 100_000},
    "int_keys": {1: "one", 2: "two"},
    "tuple_value": {"t": (1, 2)},
    "mixed_keys_fail": {1: "a", "b": 2},
    "not_serializable_fail": {"set": {1, 2}},
    "deep": {"a": {"b": {"c": {"d": {"e": [[[[1]]]]}}}}},
}
JSON_WRITERS = ("write_json_file", "write_state", "write_run_lock")


@pytest.mark.parametrize("writer", JSON_WRITERS)
@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_json_writers_match_reference(twin: Twin, writer: str, payload: object) -> None:
    def run(lib: Any, root: Path) -> object:
        getattr(lib, writer)(root / "state" / "state.json", payload)
        return None

    theirs, ours = twin.both(run)
    if theirs.error is not None:
        # The reference creates the folder before serialising; no file either way.
        assert (ours.error, ours.files) == (theirs.error, theirs.files)
    else:
        assert ours == theirs


def test_json_writer_replaces_an_existing_file_like_reference(twin: Twin) -> None:
    def run(lib: Any, root: Path) -> object:
        lib.write_state(root / "state.json", {"old": 1, "longer": "x" * 1000})
        lib.write_state(root / "state.json", {"new": 2})
        return lib.load_state(root / "state.json")

    theirs, ours = twin.both(run)
    assert ours == theirs


def test_deviation_json_write_over_a_folder_leaves_no_temp(twin: Twin) -> None:
    """SPEC §2: a failed write leaves no temp litter (the reference leaves ``state.json.tmp``)."""

    def run(lib: Any, root: Path) -> object:
        (root / "state.json").mkdir()
        return lib.write_state(root / "state.json", {"a": 1})

    theirs, ours = twin.both(run)
    assert (theirs.error, ours.error) == ("IsADirectoryError", "IsADirectoryError")
    assert (theirs.files, ours.files) == ({"state.json.tmp": b'{\n  "a": 1\n}\n'}, {})


VALID_JSON_FILES: dict[str, bytes] = {
    "reference_format": b'{\n  "a": 1\n}\n',
    "compact": b'{"a":1,"b":[1,2]}',
    "whitespace": b'  \n\t{ "a" : 1 }  \n\n',
    "crlf": b'{\r\n  "a": 1\r\n}\r\n',
    "unicode": '{"ü": "✓ 中文 🚀"}'.encode(),
    "escaped": b'{"a": "\\u00fc\\n"}',
    "nan": b'{"a": NaN, "b": Infinity, "c": -Infinity}',
    "duplicate_keys": b'{"a": 1, "a": 2}',
    "huge_int": b'{"a": 123456789012345678901234567890}',
    "empty_object": b"{}",
    "nested": b'{"a": {"b": {"c": [null, true, false]}}}',
}
JSON_READERS = ("load_json_file", "load_state", "load_run_lock")


@pytest.mark.parametrize("reader", JSON_READERS)
@pytest.mark.parametrize("data", list(VALID_JSON_FILES.values()), ids=list(VALID_JSON_FILES))
def test_json_readers_match_reference_on_valid_files(twin: Twin, reader: str, data: bytes) -> None:
    def run(lib: Any, root: Path) -> object:
        (root / "state.json").write_bytes(data)
        return json.dumps(getattr(lib, reader)(root / "state.json"), sort_keys=True)

    theirs, ours = twin.both(run)
    assert ours == theirs


@pytest.mark.parametrize("reader", JSON_READERS)
def test_json_readers_return_none_for_a_missing_file_like_reference(
    twin: Twin, reader: str
) -> None:
    theirs, ours = twin.both(lambda lib, root: getattr(lib, reader)(root / "state.json"))
    assert (ours, ours.value) == (theirs, None)


@pytest.mark.parametrize("reader", JSON_READERS)
def test_json_readers_return_none_for_a_folder_like_reference(twin: Twin, reader: str) -> None:
    theirs, ours = twin.both(lambda lib, root: getattr(lib, reader)(root))
    assert (ours, ours.value) == (theirs, None)


CORRUPT_JSON_FILES: dict[str, bytes] = {
    "truncated": b'{\n  "a": 1',
    "empty": b"",
    "list": b"[1, 2]",
    "string": b'"text"',
    "null": b"null",
    "bom": b'\xef\xbb\xbf{"a": 1}',
    "trailing_garbage": b'{"a": 1} x',
}


@pytest.mark.parametrize("data", list(CORRUPT_JSON_FILES.values()), ids=list(CORRUPT_JSON_FILES))
def test_deviation_load_json_file_quarantines_unparsable_files(tmp_path: Path, data: bytes) -> None:
    """SPEC §3: both return None; ours first moves the file to ``<name>.corrupt-<UTC>``."""
    path = tmp_path / "state.json"
    path.write_bytes(data)
    assert reference.load_json_file(path) is None
    assert path.read_bytes() == data
    with pytest.warns(StateCorruptWarning, match="state.json"):
        assert fermilink_state.load_json_file(path) is None
    assert not path.exists()
    [moved] = tmp_path.glob("state.json.corrupt-*")
    assert moved.read_bytes() == data


def test_deviation_load_json_file_quarantines_non_utf8(tmp_path: Path) -> None:
    """SPEC §3: the reference raises UnicodeDecodeError; ours returns None and moves the file."""
    path = tmp_path / "state.json"
    path.write_bytes(b'{"a": "caf\xe9"}')
    with pytest.raises(UnicodeDecodeError):
        reference.load_json_file(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert fermilink_state.load_json_file(path) is None
    assert [type(warning.message) for warning in caught] == [StateCorruptWarning]
    assert [moved.read_bytes() for moved in tmp_path.glob("state.json.corrupt-*")] == [
        b'{"a": "caf\xe9"}'
    ]


@pytest.mark.parametrize("present", [True, False], ids=["present", "missing"])
def test_clear_run_lock_matches_reference(twin: Twin, present: bool) -> None:
    def run(lib: Any, root: Path) -> object:
        if present:
            (root / "run.lock.json").write_text("{}")
        return lib.clear_run_lock(root / "run.lock.json")

    theirs, ours = twin.both(run)
    assert ours == theirs


def test_deviation_clear_run_lock_keeps_a_live_holders_lock(twin: Twin) -> None:
    # README "Deviations": the reference removes whoever holds it, so FermiLink's
    # refused launch removed the running campaign's lock; ours keeps a live one.
    payload = {"pid": 1, "hostname": _process.hostname()}  # init: alive, not us

    def run(lib: Any, root: Path) -> object:
        (root / "run.lock.json").write_text(json.dumps(payload))
        return lib.clear_run_lock(root / "run.lock.json")

    theirs, ours = twin.both(run)
    assert (theirs.error, ours.error) == (None, None)
    assert "run.lock.json" not in theirs.files
    assert json.loads(ours.files["run.lock.json"]) == payload


def test_clear_run_lock_on_a_folder_is_ignored_like_reference(twin: Twin) -> None:
    theirs, ours = twin.both(lambda lib, root: lib.clear_run_lock(root))
    assert (ours, ours.error) == (theirs, None)


# ---------------------------------------------------------------------------
# Templates: ensure_memory_file, reset_worker_memory_file
# ---------------------------------------------------------------------------

TEMPLATE_VALUES: dict[str, object] = {
    **PLAIN_TEXTS,
    **BREAK_TEXTS,
    "int": 7,
    "none": None,
    "path": Path("bench") / "b.yaml",
}


def _ensure_memory(**overrides: object) -> Callable[[Any, Path], object]:
    arguments: dict[str, object] = {
        "package_id": "pkg",
        "benchmark_id": "bench",
        "benchmark_rel": "bench/benchmark.yaml",
        "optimize_branch": "optimize/run",
    }
    arguments.update(overrides)
    return lambda lib, root: lib.ensure_memory_file(root / "opt" / "memory.md", **arguments)


@pytest.mark.parametrize(
    "argument", ["package_id", "benchmark_id", "benchmark_rel", "optimize_branch"]
)
def test_ensure_memory_file_matches_reference(twin: Twin, argument: str) -> None:
    for value in TEMPLATE_VALUES.values():
        theirs, ours = twin.both(_ensure_memory(**{argument: value}))
        assert ours == theirs


def test_ensure_memory_file_keeps_an_existing_file_like_reference(twin: Twin) -> None:
    def run(lib: Any, root: Path) -> object:
        (root / "opt").mkdir()
        (root / "opt" / "memory.md").write_text("mine\r\n")
        return _ensure_memory()(lib, root)

    theirs, ours = twin.both(run)
    assert (ours, ours.value) == (theirs, False)


def test_ensure_memory_file_twice_matches_reference(twin: Twin) -> None:
    def run(lib: Any, root: Path) -> object:
        return [_ensure_memory()(lib, root), _ensure_memory(package_id="other")(lib, root)]

    theirs, ours = twin.both(run)
    assert (ours, ours.value) == (theirs, [True, False])


def test_deviation_ensure_memory_file_unencodable_text_leaves_no_file(twin: Twin) -> None:
    """SPEC §2 (atomic writes): a lone surrogate fails before the file exists.

    The reference leaves an empty ``memory.md`` behind, which the next
    ``ensure_memory_file`` then keeps.
    """
    theirs, ours = twin.both(_ensure_memory(package_id="\ud800"))
    assert (theirs.error, ours.error) == ("UnicodeEncodeError", "UnicodeEncodeError")
    assert theirs.files == {"opt/memory.md": b""}
    assert ours.files == {}


def _reset_worker(**overrides: object) -> Callable[[Any, Path], object]:
    arguments: dict[str, object] = {
        "package_id": "pkg",
        "benchmark_id": "bench",
        "benchmark_rel": "b.yaml",
        "program_rel": "program.md",
        "controller_memory_rel": ".fermilink-optimize/memory.md",
        "results_rel": ".fermilink-optimize/results.tsv",
        "worker_iteration": 4,
    }
    arguments.update(overrides)
    return lambda lib, root: lib.reset_worker_memory_file(
        root / "opt" / "worker_memory.md", **arguments
    )


@pytest.mark.parametrize(
    "argument",
    [
        "package_id",
        "benchmark_id",
        "benchmark_rel",
        "program_rel",
        "controller_memory_rel",
        "results_rel",
        "worker_iteration",
    ],
)
def test_reset_worker_memory_file_matches_reference(twin: Twin, argument: str) -> None:
    for value in (*TEMPLATE_VALUES.values(), 0, -1, 10**30, True):
        theirs, ours = twin.both(_reset_worker(**{argument: value}))
        assert ours == theirs


def test_reset_worker_memory_file_replaces_existing_like_reference(twin: Twin) -> None:
    def run(lib: Any, root: Path) -> object:
        _reset_worker(worker_iteration=1)(lib, root)
        (root / "opt" / "worker_memory.md").write_text("scribbles\n" * 100)
        return _reset_worker(worker_iteration=2)(lib, root)

    theirs, ours = twin.both(run)
    assert ours == theirs


# ---------------------------------------------------------------------------
# archive_worker_memory, ensure_program_file, ensure_results_file
# ---------------------------------------------------------------------------

ARCHIVE_SOURCES: dict[str, bytes | None] = {
    "missing": None,
    "template": WORKER_TEMPLATE.encode(),
    "empty": b"",
    "unicode": "ü ✓ 中文 🚀\n".encode(),
    "no_final_newline": b"text",
    "large": b"line\n" * 50_000,
    "other_breaks": "a\x0cb\u2028c\x85d\n".encode(),
}


@pytest.mark.parametrize("source", list(ARCHIVE_SOURCES.values()), ids=list(ARCHIVE_SOURCES))
@pytest.mark.parametrize("run_dir", ["runs/iter_0001", "runs/deep/new/iter_0002", "."])
def test_archive_worker_memory_matches_reference(
    twin: Twin, source: bytes | None, run_dir: str
) -> None:
    def run(lib: Any, root: Path) -> object:
        path = root / "worker_memory.md"
        if source is not None:
            path.write_bytes(source)
        return lib.archive_worker_memory(path, root / run_dir)

    theirs, ours = twin.both(run)
    assert ours == theirs


def test_archive_worker_memory_replaces_an_older_archive_like_reference(twin: Twin) -> None:
    def run(lib: Any, root: Path) -> object:
        (root / "runs").mkdir()
        (root / "runs" / "worker_memory.md").write_text("old archive " * 100)
        (root / "worker_memory.md").write_text("new\n")
        return lib.archive_worker_memory(root / "worker_memory.md", root / "runs")

    theirs, ours = twin.both(run)
    assert ours == theirs


def test_archive_worker_memory_of_a_folder_matches_reference(twin: Twin) -> None:
    theirs, ours = twin.both(lambda lib, root: lib.archive_worker_memory(root, root / "runs"))
    assert (ours, ours.value) == (theirs, None)


@pytest.mark.parametrize("line_end", ["\r\n", "\r"], ids=["crlf", "cr"])
def test_deviation_archive_worker_memory_copies_bytes_exactly(twin: Twin, line_end: str) -> None:
    """SPEC §3: the archive is a byte-exact copy (the reference turns CRLF / CR into LF)."""
    source = WORKER_TEMPLATE.replace("\n", line_end).encode()

    def run(lib: Any, root: Path) -> object:
        (root / "worker_memory.md").write_bytes(source)
        return lib.archive_worker_memory(root / "worker_memory.md", root / "runs")

    theirs, ours = twin.both(run)
    assert theirs.files["runs/worker_memory.md"] == WORKER_TEMPLATE.encode()
    assert ours.files["runs/worker_memory.md"] == source
    assert ours.value == theirs.value


def test_deviation_archive_worker_memory_rejects_non_utf8(tmp_path: Path) -> None:
    """SPEC §3: StateCorruptError naming the source (the reference: UnicodeDecodeError)."""
    source = tmp_path / "worker_memory.md"
    source.write_bytes(b"caf\xe9\n")
    with pytest.raises(UnicodeDecodeError):
        reference.archive_worker_memory(source, tmp_path / "ref")
    with pytest.raises(StateCorruptError) as raised:
        fermilink_state.archive_worker_memory(source, tmp_path / "ours")
    assert raised.value.path == source
    assert not (tmp_path / "ours" / "worker_memory.md").exists()


def test_archive_worker_memory_into_a_file_fails_like_reference(twin: Twin) -> None:
    def run(lib: Any, root: Path) -> object:
        (root / "worker_memory.md").write_text("w\n")
        (root / "runs").write_text("not a folder")
        return lib.archive_worker_memory(root / "worker_memory.md", root / "runs")

    theirs, ours = twin.both(run)
    assert (ours, ours.error) == (theirs, "FileExistsError")


PROGRAM_CONTENTS: dict[str, str] = {
    "text": "# Program\n\nDo things.\n",
    "empty": "",
    "crlf": "# Program\r\n\r\nDo things.\r\n",
    "lone_cr": "a\rb\r",
    "unicode": "ü ✓ 中文 🚀\n",
    "no_final_newline": "text",
    "large": "line\n" * 50_000,
}


@pytest.mark.parametrize("content", list(PROGRAM_CONTENTS.values()), ids=list(PROGRAM_CONTENTS))
def test_ensure_program_file_matches_reference(twin: Twin, content: str) -> None:
    def run(lib: Any, root: Path) -> object:
        path = root / "deep" / "program.md"
        return [
            lib.ensure_program_file(path, content=content),
            lib.ensure_program_file(path, content="other"),
        ]

    theirs, ours = twin.both(run)
    assert (ours, ours.value) == (theirs, [True, False])


@pytest.mark.parametrize("content", [None, 5, b"bytes"], ids=["none", "int", "bytes"])
def test_ensure_program_file_rejects_non_text_like_reference(twin: Twin, content: object) -> None:
    theirs, ours = twin.both(
        lambda lib, root: lib.ensure_program_file(root / "program.md", content=content)
    )
    assert (ours, ours.error, ours.files) == (theirs, "TypeError", {})


@pytest.mark.parametrize("existing", [None, b"", b"mine\n"], ids=["missing", "empty", "text"])
def test_ensure_results_file_matches_reference(twin: Twin, existing: bytes | None) -> None:
    def run(lib: Any, root: Path) -> object:
        path = root / "opt" / "results.tsv"
        if existing is not None:
            path.parent.mkdir()
            path.write_bytes(existing)
        return [lib.ensure_results_file(path), lib.ensure_results_file(path)]

    theirs, ours = twin.both(run)
    assert ours == theirs


# ---------------------------------------------------------------------------
# Layout and processes
# ---------------------------------------------------------------------------

PATH_HELPERS = sorted(
    name
    for name in vars(reference)
    if not name.startswith("_")
    and (name.endswith(("_path", "_root")))
    and callable(getattr(reference, name))
    and not name.startswith("ensure_")
)


@pytest.mark.parametrize("name", PATH_HELPERS)
@pytest.mark.parametrize(
    "root", [Path("project"), Path("/abs/project"), Path(""), Path("a b/ü")], ids=str
)
def test_path_helpers_match_reference(name: str, root: Path) -> None:
    assert getattr(fermilink_state, name)(root) == getattr(reference, name)(root)


@pytest.mark.parametrize("name", ["ensure_optimize_root", "ensure_autogen_root"])
def test_ensure_roots_match_reference(twin: Twin, name: str) -> None:
    theirs, ours = twin.both(
        lambda lib, root: [getattr(lib, name)(root / "p"), getattr(lib, name)(root / "p")]
    )
    assert ours == theirs


SAFE_RELATIVE_CASES: dict[str, tuple[str, str]] = {
    "inside": ("root/a/b.txt", "root"),
    "same": ("root", "root"),
    "outside": ("other/x", "root"),
    "dotdot": ("root/a/../b", "root"),
    "missing": ("root/not/there", "root"),
    "via_symlink": ("link/a", "root"),
}


@pytest.mark.parametrize(
    ("path", "root"), list(SAFE_RELATIVE_CASES.values()), ids=list(SAFE_RELATIVE_CASES)
)
def test_safe_relative_matches_reference(tmp_path: Path, path: str, root: str) -> None:
    (tmp_path / "root" / "a").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "root")
    arguments = (tmp_path / path, tmp_path / root)
    assert fermilink_state.safe_relative(*arguments) == reference.safe_relative(*arguments)


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o700, 0o100, 0o444])
def test_ensure_executable_matches_reference(twin: Twin, mode: int) -> None:
    def run(lib: Any, root: Path) -> object:
        path = root / "run.sh"
        path.write_text("#!/bin/sh\n")
        path.chmod(mode)
        lib.ensure_executable(path)
        lib.ensure_executable(root / "missing.sh")
        return oct(path.stat().st_mode & 0o7777)

    theirs, ours = twin.both(run)
    assert ours == theirs


@pytest.mark.parametrize(
    "pid",
    [0, -1, -(2**31), os.getpid(), os.getppid(), dead_pid()],
    ids=["zero", "minus_one", "very_negative", "self", "parent", "dead"],
)
def test_pid_is_running_matches_reference(pid: int) -> None:
    assert fermilink_state.pid_is_running(pid) == reference.pid_is_running(pid)


def test_deviation_pid_is_running_counts_eperm_as_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SPEC §1: a live process of another user (EPERM) is running; the reference says no."""

    def kill(pid: int, signal: int) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "kill", kill)
    assert reference.pid_is_running(12345) is False
    assert fermilink_state.pid_is_running(12345) is True


def test_deviation_pid_is_running_never_signals_on_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SPEC §1: on Windows os.kill(pid, 0) sends Ctrl+C, so it is never called there."""
    kills: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, signal: kills.append(pid))
    monkeypatch.setattr(_process, "_windows_pid_is_running", lambda pid: pid == 4242)
    monkeypatch.setattr(sys, "platform", "win32")
    answers = [fermilink_state.pid_is_running(4242), fermilink_state.pid_is_running(4343)]
    monkeypatch.undo()
    assert (answers, kills) == ([True, False], [])


def test_utc_now_z_has_the_reference_format() -> None:
    import re

    shape = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")
    assert shape.fullmatch(reference.utc_now_z())
    assert shape.fullmatch(fermilink_state.utc_now_z())


def test_frozen_clocks_stamp_the_same_time(twin: Twin) -> None:
    assert fermilink_state.utc_now_z() == reference.utc_now_z() == FROZEN_UTC


# ---------------------------------------------------------------------------
# A whole campaign
# ---------------------------------------------------------------------------


def _campaign(lib: Any, project: Path) -> object:
    """FermiLink's controller, condensed: every writer the reference has."""
    returned: list[object] = []
    root = lib.ensure_optimize_root(project)
    returned.append(root)
    returned.append(lib.ensure_autogen_root(project))
    returned.append(
        lib.ensure_memory_file(
            lib.memory_path(project),
            package_id="pkg",
            benchmark_id="bench",
            benchmark_rel="bench/benchmark.yaml",
            optimize_branch="optimize/pkg",
        )
    )
    returned.append(lib.ensure_results_file(lib.results_path(project)))
    returned.append(
        lib.ensure_program_file(lib.default_program_path(project), content="# Program\n")
    )
    lib.write_run_lock(
        lib.run_lock_path(project), {"pid": os.getpid(), "hostname": _process.hostname()}
    )
    returned.append(lib.load_run_lock(lib.run_lock_path(project)))
    state: dict[str, object] = {"iteration": 0, "incumbent": None}
    lib.write_state(lib.state_path(project), state)
    for iteration in range(1, 25):
        lib.reset_worker_memory_file(
            lib.worker_memory_path(project),
            package_id="pkg",
            benchmark_id="bench",
            benchmark_rel="bench/benchmark.yaml",
            program_rel=lib.safe_relative(lib.default_program_path(project), project),
            controller_memory_rel=lib.safe_relative(lib.memory_path(project), project),
            results_rel=lib.safe_relative(lib.results_path(project), project),
            worker_iteration=iteration,
        )
        worker = lib.worker_memory_path(project)
        worker.write_text(
            lib._append_section_line(
                worker.read_text(encoding="utf-8"), "### Progress log", f"- step {iteration}"
            ),
            encoding="utf-8",
        )
        status = STATUSES[iteration % 5] if iteration > 1 else "baseline"
        value: object = iteration * 0.37 if iteration % 4 else "failed"
        lib.append_result(
            lib.results_path(project),
            iteration=iteration,
            commit=f"{iteration:07x}",
            status=status,
            primary_metric_name="runtime_s",
            primary_metric_value=value,
            description=f"  try   number {iteration}\twith tab ",
        )
        lib.record_campaign_event(
            lib.memory_path(project),
            commit=f"{iteration:07x}",
            primary_metric_name="runtime_s",
            primary_metric_value=value,
            status=status,
            description=f"try number {iteration}",
        )
        returned.append(
            lib.archive_worker_memory(worker, lib.runs_root(project) / f"iter_{iteration:04d}")
        )
        state = {**state, "iteration": iteration, "last_status": status}
        lib.write_state(lib.state_path(project), state)
        returned.append(lib.recent_results_text(lib.results_path(project), limit=3))
    returned.append(lib.load_state(lib.state_path(project)))
    returned.append(lib.recent_results_text(lib.results_path(project)))
    lib.clear_run_lock(lib.run_lock_path(project))
    returned.append(lib.load_run_lock(lib.run_lock_path(project)))
    return returned


def test_whole_campaign_matches_reference(twin: Twin) -> None:
    theirs, ours = twin.both(_campaign)
    assert theirs.error is None
    assert ours == theirs
    assert temp_litter(twin.base) == []


def test_files_of_either_library_are_edited_alike_by_the_other(twin: Twin) -> None:
    """A campaign begun by one library and continued by the other ends in the same bytes."""

    def mixed(first: Any, second: Any) -> Callable[[Any, Path], object]:
        def run(_: Any, project: Path) -> object:
            _campaign(first, project)
            return _campaign(second, project)

        return run

    theirs, _ = twin.both(mixed(reference, reference))
    _, ours_after_theirs = twin.both(mixed(reference, fermilink_state))
    _, theirs_after_ours = twin.both(mixed(fermilink_state, reference))
    assert ours_after_theirs == theirs
    assert theirs_after_ours == theirs


def test_our_readers_read_the_reference_files(tmp_path: Path) -> None:
    _campaign(reference, tmp_path)
    rows = fermilink_state.read_results(fermilink_state.results_path(tmp_path))
    document = fermilink_state.read_memory(fermilink_state.memory_path(tmp_path))
    assert [row.iteration for row in rows] == list(range(1, 25))
    assert rows[1].description == "try number 2 with tab"
    assert document.section("### Latest accepted commit") == [
        "- commit: 0000015",
        "- primary_metric: runtime_s=7.77",
        "- status: accepted",
    ]
    assert fermilink_state.read_json_file(fermilink_state.state_path(tmp_path))["iteration"] == 24


# ---------------------------------------------------------------------------
# Property-based: random documents and arguments (deterministic, no database)
# ---------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=250,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_NOT_PLAIN = "".join(LINE_BREAKS) + "`~\ufeff"
# A line of plain LF text without fences: no line break, no fence character, no BOM.
plain_lines = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters=_NOT_PLAIN),
    max_size=12,
)
memory_lines = st.one_of(
    st.sampled_from(
        [
            "# FermiLink Optimize Memory",
            "## Long-Term Memory (Persistent)",
            "### Progress log",
            "### Accepted experiments",
            "### Rejected patterns",
            "### Latest accepted commit",
            "#### Detail",
            "- none yet",
            " - none yet ",
            "- Campaign initialized.",
            "- last_updated_utc: old",
            "",
        ]
    ),
    plain_lines,
)
plain_documents = st.builds(
    lambda lines, end: "\n".join(lines) + end,
    st.lists(memory_lines, max_size=14),
    st.sampled_from(["", "\n", "\n\n"]),
)
any_documents = st.text(max_size=60) | plain_documents
multi_line_arguments = st.builds(
    "\n".join, st.lists(st.one_of(memory_lines, plain_lines), min_size=1, max_size=3)
)


@PROPERTY_SETTINGS
@given(
    content=any_documents,
    heading=memory_lines,
    entry=st.text(max_size=12),
    new_lines=st.lists(st.text(max_size=8), max_size=3),
)
def test_property_section_helpers_match_reference(
    content: str, heading: str, entry: str, new_lines: list[str]
) -> None:
    calls = [
        ("bounds", _helper("_find_section_bounds", content.splitlines(), heading)),
        ("set", _helper("_set_section_lines", content, heading, new_lines)),
        ("append", _helper("_append_section_line", content, heading, entry)),
        ("metadata", _helper("_replace_metadata_line", content, heading, entry)),
        ("sanitize", _helper("_sanitize_cell", entry or None)),
    ]
    assert _mismatches(calls) == []


@PROPERTY_SETTINGS
@given(
    content=plain_documents,
    arguments=st.fixed_dictionaries(
        {
            "status": st.sampled_from(STATUSES) | plain_lines,
            "commit": plain_lines | multi_line_arguments,
            "primary_metric_name": plain_lines | multi_line_arguments,
            "primary_metric_value": st.sampled_from(list(METRICS.values()))
            | plain_lines
            | multi_line_arguments,
            "description": st.none() | st.text(max_size=12).filter(bool),
        }
    ),
)
def test_property_record_campaign_event_matches_reference_on_plain_lf_text(
    twin: Twin, content: str, arguments: dict[str, object]
) -> None:
    theirs, ours = twin.edit_file(_event(**arguments), content.encode())
    assert ours == theirs


@PROPERTY_SETTINGS
@given(
    content=st.lists(
        st.sampled_from(["a", "é", "€", "😀", "\t", " ", *LINE_BREAKS]), max_size=40
    ).map("".join),
    limit=st.integers(min_value=-4, max_value=20),
    block=st.integers(min_value=1, max_value=16),
)
def test_property_recent_results_text_matches_reference_across_tail_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, limit: int, block: int
) -> None:
    # A tiny tail block puts block cuts inside multi-byte characters and CRLF pairs.
    monkeypatch.setattr(_results, "_TAIL_BLOCK", block)
    path = tmp_path / "results.tsv"
    path.write_bytes(content.encode())
    ours = fermilink_state.recent_results_text(path, limit=limit)
    assert ours == reference.recent_results_text(path, limit=limit)


def _with_insertions(base: str, insertions: list[tuple[int, str]]) -> str:
    lines = base.split("\n")
    for position, line in insertions:
        lines.insert(position % len(lines), line)
    return "\n".join(lines)


# A memory whose placeholders are gone (as after a few events), with random
# lines inserted: the shape most campaign events edit.
CAMPAIGN_MEMORY = _after_events(
    str(reference._append_section_line(TEMPLATE, "### Accepted experiments", "- a1"))
)
campaign_documents = st.lists(
    st.tuples(st.integers(min_value=0, max_value=200), memory_lines), max_size=4
).map(lambda insertions: _with_insertions(CAMPAIGN_MEMORY, insertions))


@PROPERTY_SETTINGS
@given(
    content=campaign_documents,
    arguments=st.fixed_dictionaries(
        {
            "status": st.sampled_from(STATUSES) | plain_lines,
            "commit": plain_lines,
            "primary_metric_name": plain_lines,
            "primary_metric_value": st.sampled_from(list(METRICS.values())) | plain_lines,
            "description": st.none() | st.text(max_size=12).filter(bool),
        }
    ),
)
def test_property_record_campaign_event_matches_reference_on_campaign_memories(
    twin: Twin, content: str, arguments: dict[str, object]
) -> None:
    theirs, ours = twin.edit_file(_event(**arguments), content.encode())
    assert ours == theirs


@settings(PROPERTY_SETTINGS, max_examples=100)
@given(
    row=st.fixed_dictionaries(
        {
            "commit": st.text(max_size=10),
            "status": st.text(max_size=10),
            "primary_metric_name": st.text(max_size=10),
            "primary_metric_value": st.floats()
            | st.integers(min_value=-(10**20), max_value=10**20)
            | st.text(max_size=8),
            "description": st.none() | st.text(max_size=20).filter(bool),
        }
    )
)
def test_property_append_result_is_the_reference_row_with_cells_on_one_line(
    twin: Twin, row: dict[str, object]
) -> None:
    """SPEC §1: identical to the reference once each tab / break character is a space."""

    def repaired(value: object) -> object:
        if not isinstance(value, str):
            return value
        return "".join(" " if char == "\t" or char in LINE_BREAKS else char for char in value)

    theirs, _ = twin.both(_ledger(_row(**{key: repaired(value) for key, value in row.items()})))
    _, ours = twin.both(_ledger(_row(**row)))
    assert ours == theirs
