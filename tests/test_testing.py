"""fermilink_state.testing's assertions and the _compare explanations, as plain code.

Every message is checked with pytest.raises(match=...), which reads the
exception itself: the same under --assert=plain (the norewrite tox env).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fermilink_state
from fermilink_state import MemoryDocument, ResultRow, edit_memory, parse_memory
from fermilink_state._clock import freeze
from fermilink_state._memory import memory_template
from fermilink_state._results import RESULTS_HEADER
from fermilink_state.testing import (
    assert_only_sections_changed,
    assert_results_rows,
    assert_results_well_formed,
    assert_section_appended,
    assert_section_lines,
)
from fermilink_state.testing._compare import (
    SectionChange,
    diff_lines,
    explain_documents,
    explain_equal,
    explain_row_lists,
    explain_rows,
    load_document,
    reordered_headings,
    section_changes,
    strip_blank_edges,
)

TEMPLATE = memory_template(
    package_id="pkg",
    benchmark_id="bench",
    benchmark_rel="bench.yaml",
    optimize_branch="opt",
    started="2026-01-01T00:00:00Z",
)
ROW = ResultRow(0, "abc", "baseline", "t", 1.0, "baseline")
NOTES = "# Title\n- meta: 1\n\n## Notes\n- a\n- b\n\n## Other\n- x\n"


def _record(path: Path, status: str = "accepted", description: str = "faster") -> None:
    freeze("2026-01-01T00:00:01Z")
    try:
        fermilink_state.record_campaign_event(
            path,
            commit="c1",
            primary_metric_name="t",
            primary_metric_value=0.5,
            status=status,
            description=description,
        )
    finally:
        freeze(None)


@pytest.fixture
def memory(tmp_path: Path) -> Path:
    path = tmp_path / "memory.md"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


def _ledger(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "results.tsv"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


# -- the module itself ------------------------------------------------------


def test_import_testing_loads_no_pytest() -> None:
    code = "import sys, fermilink_state.testing; print('pytest' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    assert result.stdout.split() == ["False"]


def test_helpers_explain_themselves_without_pytest() -> None:
    code = (
        "from fermilink_state.testing import assert_section_lines\n"
        "try:\n"
        "    assert_section_lines('## A\\n- x\\n', '## A', ['- y'])\n"
        "except AssertionError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    assert "section '## A' of the memory text" in result.stdout
    assert "-- y" in result.stdout
    assert "+- x" in result.stdout


def test_helpers_hide_their_frames() -> None:
    for helper in (
        assert_section_lines,
        assert_section_appended,
        assert_only_sections_changed,
        assert_results_well_formed,
        assert_results_rows,
    ):
        assert "__tracebackhide__" in helper.__code__.co_varnames, helper.__name__


# -- assert_section_lines ---------------------------------------------------


@pytest.mark.parametrize("kind", ["text", "path", "document"])
def test_section_lines_pass(kind: str, memory: Path) -> None:
    sources: dict[str, str | Path | MemoryDocument] = {
        "text": TEMPLATE,
        "path": memory,
        "document": parse_memory(TEMPLATE),
    }
    source = sources[kind]
    assert_section_lines(source, "### Accepted experiments", ["- none yet"])


def test_section_lines_ignore_blank_lines_at_the_edges() -> None:
    assert_section_lines("## A\n\n- x\n\n## B\n", "## A", ["- x", ""])


def test_section_lines_keep_inner_blank_lines() -> None:
    with pytest.raises(AssertionError):
        assert_section_lines("## A\n- x\n\n- y\n", "## A", ["- x", "- y"])


def test_section_lines_fail_with_a_diff() -> None:
    with pytest.raises(AssertionError) as raised:
        assert_section_lines(TEMPLATE, "### Progress log", ["- started"])
    message = str(raised.value)
    assert "section '### Progress log' of the memory text" in message
    assert "(- expected, + found)" in message
    assert "  -- started" in message
    assert "  +- Campaign initialized." in message


def test_section_lines_name_the_file(memory: Path) -> None:
    with pytest.raises(AssertionError, match=re.escape(str(memory))):
        assert_section_lines(memory, "### Progress log", [])


def test_section_lines_missing_section_lists_sections_and_suggests() -> None:
    with pytest.raises(AssertionError) as raised:
        assert_section_lines(TEMPLATE, "## Progress log", [])
    message = str(raised.value)
    assert "has no section '## Progress log'; did you mean '### Progress log'?" in message
    assert "'## Long-Term Memory (Persistent)'" in message


def test_section_lines_want_a_list_not_a_str() -> None:
    with pytest.raises(TypeError, match="splitlines"):
        assert_section_lines(TEMPLATE, "### Progress log", "- Campaign initialized.")


def test_section_lines_of_the_preamble() -> None:
    assert_section_lines("intro\n# T\n", "", ["intro"])


# -- assert_section_appended ------------------------------------------------


def test_appended_after_a_campaign_event(memory: Path) -> None:
    before = memory.read_text(encoding="utf-8")
    _record(memory)
    assert_section_appended(before, memory, "### Progress log")
    assert_section_appended(before, memory, "### Accepted experiments")


def test_appended_entry_equal(memory: Path) -> None:
    before = memory.read_text(encoding="utf-8")
    _record(memory, description="tiling")
    entry = "- [2026-01-01T00:00:01Z] tiling (c1, t=0.5)"
    assert_section_appended(before, memory, "### Accepted experiments", entry)


def test_appended_entry_regex(memory: Path) -> None:
    before = memory.read_text(encoding="utf-8")
    _record(memory, status="rejected")
    assert_section_appended(before, memory, "### Progress log", re.compile(r"rejected: faster"))


def test_appended_by_edit_memory_without_placeholder(tmp_path: Path) -> None:
    path = tmp_path / "m.md"
    path.write_text(NOTES, encoding="utf-8")
    with edit_memory(path) as document:
        document.append("## Notes", "- c")
    assert_section_appended(NOTES, path, "## Notes", "- c")


def test_appended_to_a_new_section() -> None:
    after = NOTES + "\n## New\n- first\n"
    assert_section_appended(NOTES, after, "## New", "- first")


def test_appended_and_only_that_section_compose(tmp_path: Path) -> None:
    path = tmp_path / "m.md"
    path.write_text(NOTES, encoding="utf-8")
    with edit_memory(path) as document:
        document.append("## Other", "- y")
    assert_section_appended(NOTES, path, "## Other", "- y")
    assert_only_sections_changed(NOTES, path, ["## Other"])


def test_appended_fails_for_two_lines() -> None:
    after = NOTES.replace("- b\n", "- b\n- c\n- d\n")
    with pytest.raises(AssertionError, match=r"did not gain exactly one line .*gained 2 lines"):
        assert_section_appended(NOTES, after, "## Notes")


def test_appended_fails_for_no_line() -> None:
    with pytest.raises(AssertionError, match="gained 0 lines"):
        assert_section_appended(NOTES, NOTES, "## Notes")


def test_appended_fails_when_earlier_lines_changed() -> None:
    after = NOTES.replace("- a\n- b\n", "- A\n- b\n- c\n")
    with pytest.raises(AssertionError) as raised:
        assert_section_appended(NOTES, after, "## Notes")
    message = str(raised.value)
    assert "its earlier lines changed" in message
    assert "  -- a" in message
    assert "  +- A" in message


def test_appended_fails_when_not_at_the_end() -> None:
    after = NOTES.replace("- a\n", "- a\n- new\n")
    with pytest.raises(AssertionError, match="its earlier lines changed"):
        assert_section_appended(NOTES, after, "## Notes")


def test_appended_fails_for_a_placeholder_line() -> None:
    after = NOTES.replace("- b\n", "- b\n- none yet\n")
    with pytest.raises(AssertionError, match="is the placeholder '- none yet'"):
        assert_section_appended(NOTES, after, "## Notes")


def test_appended_fails_when_a_real_line_is_dropped() -> None:
    after = NOTES.replace("- a\n- b\n", "- b\n- c\n")
    with pytest.raises(AssertionError, match="its earlier lines changed"):
        assert_section_appended(NOTES, after, "## Notes")


def test_appended_before_the_blank_line_counts() -> None:
    # A hand edit puts the line before the section's closing blank line.
    after = NOTES.replace("- b\n", "- b\n- c\n")
    assert_section_appended(NOTES, after, "## Notes", "- c")


def test_appended_fails_for_another_entry() -> None:
    after = NOTES.replace("- b\n", "- b\n- c\n")
    with pytest.raises(AssertionError) as raised:
        assert_section_appended(NOTES, after, "## Notes", "- d")
    assert "is\n  '- c'\nexpected '- d'" in str(raised.value)


def test_appended_fails_for_a_regex_mismatch() -> None:
    after = NOTES.replace("- b\n", "- b\n- c\n")
    with pytest.raises(AssertionError, match=r"expected a line matching '\^- d'"):
        assert_section_appended(NOTES, after, "## Notes", re.compile("^- d"))


def test_appended_fails_for_a_missing_section() -> None:
    with pytest.raises(AssertionError, match="has no section '## Gone'"):
        assert_section_appended(NOTES, NOTES, "## Gone")


def test_appended_failure_shows_the_section_diff() -> None:
    after = NOTES.replace("- b\n", "- b\n- c\n- d\n")
    with pytest.raises(AssertionError) as raised:
        assert_section_appended(NOTES, after, "## Notes")
    assert "  +- c\n  +- d" in str(raised.value)


# -- assert_only_sections_changed -------------------------------------------


def test_only_named_sections_changed_passes(memory: Path) -> None:
    before = memory.read_text(encoding="utf-8")
    _record(memory, status="rejected")
    assert_only_sections_changed(
        before,
        memory,
        ["# FermiLink Optimize Memory", "### Progress log", "### Rejected patterns"],
    )


def test_nothing_changed_passes() -> None:
    assert_only_sections_changed(NOTES, NOTES, [])


def test_unnamed_change_fails_naming_it_with_a_diff(memory: Path) -> None:
    before = memory.read_text(encoding="utf-8")
    _record(memory, status="rejected")
    with pytest.raises(AssertionError) as raised:
        assert_only_sections_changed(
            before, memory, ["# FermiLink Optimize Memory", "### Progress log"]
        )
    message = str(raised.value)
    assert "1 section of " in message
    assert "changed that should not have: '### Rejected patterns' (changed)" in message
    assert "section '### Rejected patterns' changed:\n" in message
    assert "  -- none yet\n  +- [2026-01-01T00:00:01Z] faster (c1, t=0.5)" in message


def test_each_changed_section_gets_its_own_diff(memory: Path) -> None:
    before = memory.read_text(encoding="utf-8")
    _record(memory)
    with pytest.raises(AssertionError) as raised:
        assert_only_sections_changed(before, memory, [])
    message = str(raised.value)
    assert message.startswith("4 sections of ")
    for heading in (
        "# FermiLink Optimize Memory",
        "### Latest accepted commit",
        "### Progress log",
        "### Accepted experiments",
    ):
        assert f"section {heading!r} changed:" in message


def test_removed_section_counts_as_a_change() -> None:
    after = NOTES.replace("## Other\n- x\n", "")
    with pytest.raises(AssertionError, match=r"'## Other' \(removed\)"):
        assert_only_sections_changed(NOTES, after, ["## Notes"])


def test_added_section_counts_as_a_change() -> None:
    with pytest.raises(AssertionError, match=r"'## New' \(added\)"):
        assert_only_sections_changed(NOTES, NOTES + "## New\n", [])


def test_named_section_may_be_added() -> None:
    assert_only_sections_changed(NOTES, NOTES + "## New\n", ["## New"])


def test_preamble_is_named_by_empty_heading() -> None:
    assert_only_sections_changed("a\n" + NOTES, "b\n" + NOTES, [""])
    with pytest.raises(AssertionError, match="the text before the first heading"):
        assert_only_sections_changed("a\n" + NOTES, "b\n" + NOTES, [])


def test_line_ending_change_is_a_change_made_visible() -> None:
    after = NOTES.replace("- x\n", "- x\r\n")
    with pytest.raises(AssertionError) as raised:
        assert_only_sections_changed(NOTES, after, [])
    message = str(raised.value)
    assert "(only line endings or trailing whitespace differ)" in message
    assert "+- x\\r\\n" in message


def test_reordered_sections_fail() -> None:
    after = "# Title\n- meta: 1\n\n## Other\n- x\n## Notes\n- a\n- b\n\n"
    with pytest.raises(AssertionError, match="were reordered"):
        assert_only_sections_changed(NOTES, after, ["## Other", "## Notes"][:0])


def test_only_sections_changed_wants_a_list_not_a_str() -> None:
    with pytest.raises(TypeError, match="list of lines"):
        assert_only_sections_changed(NOTES, NOTES, "## Notes")


# -- assert_results_well_formed ---------------------------------------------


def test_well_formed_ledger_passes(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    fermilink_state.append_results(path, [ROW, ROW])
    assert_results_well_formed(path)


def test_header_alone_is_well_formed(tmp_path: Path) -> None:
    assert_results_well_formed(_ledger(tmp_path, RESULTS_HEADER))


def test_missing_ledger_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"no results ledger at .*ensure_results_file"):
        assert_results_well_formed(tmp_path / "results.tsv")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the file is empty: the header line is missing"),
        ("iteration\tcommit\n", "line 1: header 'iteration\\tcommit', expected"),
        (RESULTS_HEADER + "1\tc\ts\tm\t1", "line 2: no line ending (a torn write?)"),
        (RESULTS_HEADER + "1\tc\ts\tm\t1\n", "line 2: expected 6 tab-separated fields, found 5"),
        (RESULTS_HEADER + "x\tc\ts\tm\t1\td\n", "line 2: iteration 'x' is not an integer"),
        (RESULTS_HEADER + "\n", "line 2: blank line"),
        (RESULTS_HEADER + "1\tc\ts\tm\t1\td\r\n", "line 2: a '\\r'"),
    ],
)
def test_malformed_ledger_names_the_line(tmp_path: Path, text: str, problem: str) -> None:
    path = _ledger(tmp_path, text)
    with pytest.raises(AssertionError) as raised:
        assert_results_well_formed(path)
    message = str(raised.value)
    assert message.startswith(f"{path} is not a well-formed results ledger:")
    assert problem in message


def test_non_utf8_ledger(tmp_path: Path) -> None:
    path = _ledger(tmp_path, RESULTS_HEADER.encode() + b"1\t\xff\n")
    with pytest.raises(AssertionError, match="line 2: not UTF-8"):
        assert_results_well_formed(path)


def test_many_problems_are_capped(tmp_path: Path) -> None:
    path = _ledger(tmp_path, RESULTS_HEADER + "bad\n" * 15)
    with pytest.raises(AssertionError) as raised:
        assert_results_well_formed(path)
    assert "line 11: expected 6" in str(raised.value)
    assert str(raised.value).endswith("... and 5 more")


# -- assert_results_rows ----------------------------------------------------


def test_rows_equal_pass(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    fermilink_state.append_results(path, [ROW])
    assert_results_rows(path, [ROW])


def test_rows_compare_only_given_fields(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    fermilink_state.append_results(path, [ROW])
    assert_results_rows(path, [{"status": "baseline", "iteration": "0"}])


def test_rows_compare_numbers_as_written(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    fermilink_state.append_results(path, [ROW.as_dict() | {"primary_metric_value": 0.3}])
    assert_results_rows(path, [{"primary_metric_value": 0.1 + 0.2}])


def test_rows_nan_equals_nan(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    fermilink_state.append_results(path, [ROW.as_dict() | {"primary_metric_value": "nan"}])
    assert_results_rows(path, [{"primary_metric_value": math.nan}])


def test_rows_differing_field_named_with_row_and_line(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    fermilink_state.append_results(path, [ROW, ROW.as_dict() | {"status": "rejected"}])
    with pytest.raises(AssertionError) as raised:
        assert_results_rows(path, [ROW, {"status": "accepted", "commit": "abc"}])
    message = str(raised.value)
    assert message.startswith(f"{path}: 2 rows, 2 expected; they differ:")
    assert "row 2 (line 3): status 'rejected' != expected 'accepted'" in message
    assert "commit" not in message.split("row 2", 1)[1]


def test_rows_extra_row_reported(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    fermilink_state.append_results(path, [ROW, ROW])
    with pytest.raises(AssertionError, match=r"row 2 \(line 3\) not expected: ResultRow\("):
        assert_results_rows(path, [ROW])


def test_rows_missing_row_reported(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    fermilink_state.append_results(path, [ROW])
    with pytest.raises(AssertionError, match=r"1 row, 2 expected.*\n.*row 2 missing: expected"):
        assert_results_rows(path, [ROW, {"status": "accepted"}])


def test_rows_of_a_corrupt_ledger(tmp_path: Path) -> None:
    path = _ledger(tmp_path, RESULTS_HEADER + "bad\n")
    with pytest.raises(AssertionError, match=r"cannot compare the rows: .*:2: malformed row"):
        assert_results_rows(path, [])


def test_rows_expected_with_unknown_field(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    fermilink_state.append_results(path, [ROW])
    with pytest.raises(TypeError, match=r"unknown fields \['value'\]"):
        assert_results_rows(path, [{"value": 1}])


def test_rows_of_a_missing_ledger(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="no results ledger"):
        assert_results_rows(tmp_path / "results.tsv", [])


# -- _compare ---------------------------------------------------------------


def test_section_changes_in_document_order() -> None:
    after = parse_memory(NOTES.replace("- x\n", "- y\n").replace("## Notes\n- a\n- b\n\n", ""))
    changes = section_changes(parse_memory(NOTES), after)
    assert [(c.heading, c.kind) for c in changes] == [
        ("## Notes", "removed"),
        ("## Other", "changed"),
    ]
    assert changes[0] == SectionChange("## Notes", "removed", "## Notes\n- a\n- b\n\n", "")


def test_section_changes_tell_repeated_headings_apart() -> None:
    before = parse_memory("## A\n- 1\n## A\n- 2\n")
    after = parse_memory("## A\n- 1\n## A\n- 3\n")
    assert section_changes(before, after) == [
        SectionChange("## A", "changed", "## A\n- 2\n", "## A\n- 3\n")
    ]


def test_reordered_headings() -> None:
    one, two = parse_memory("## A\n## B\n"), parse_memory("## B\n## A\n")
    assert reordered_headings(one, two)
    assert not reordered_headings(one, two, ignore={"## A"})
    assert not reordered_headings(one, one)


def test_diff_lines_are_small_and_capped() -> None:
    before = "".join(f"{n}\n" for n in range(40))
    lines = diff_lines(before, before.replace("\n", "!\n"), limit=5)
    assert lines[:2] == ["@@ -1,40 +1,40 @@", "-0"]
    assert lines[-1] == "... 76 more diff lines"
    assert len(lines) == 6


def test_diff_lines_have_no_file_header() -> None:
    assert diff_lines("a\nb\nc\nd\n", "a\nb\nC\nd\n") == ["@@ -2,3 +2,3 @@", " b", "-c", "+C", " d"]


def test_strip_blank_edges() -> None:
    assert strip_blank_edges(["", " ", "a", "", "b", ""]) == ["a", "", "b"]
    assert strip_blank_edges(["", ""]) == []


def test_load_document_names_its_source(tmp_path: Path) -> None:
    path = tmp_path / "m.md"
    path.write_text(NOTES, encoding="utf-8")
    document = parse_memory(NOTES)
    assert load_document(NOTES)[1] == "the memory text"
    assert load_document(path)[1] == str(path)
    assert load_document(document) == (document, "the memory document")


def test_explain_documents_names_sections_first() -> None:
    lines = explain_documents(parse_memory(NOTES), parse_memory(NOTES.replace("- x", "- y")))
    assert lines[0] == (
        "MemoryDocument == MemoryDocument: 1 section differs (- left, + right): "
        "'## Other' (changed)"
    )
    assert lines[1:] == ["section '## Other' changed:", "  @@ -1,2 +1,2 @@", "   ## Other",
                         "  -- x", "  +- y"]  # fmt: skip


def test_explain_documents_reordered() -> None:
    lines = explain_documents(parse_memory("## A\n## B\n"), parse_memory("## B\n## A\n"))
    assert lines == ["MemoryDocument == MemoryDocument: same sections in a different order"]


def test_explain_rows_per_field() -> None:
    other = ResultRow(0, "abc", "accepted", "t", 2.0, "baseline")
    assert explain_rows(ROW, other) == [
        "ResultRow == ResultRow: 2 fields differ",
        "  status: 'baseline' != 'accepted'",
        "  primary_metric_value: 1.0 != 2.0",
    ]


def test_explain_row_lists() -> None:
    other = ResultRow(0, "abd", "baseline", "t", 1.0, "baseline")
    assert explain_row_lists([ROW, ROW], [other]) == [
        "list of 2 ResultRow == list of 1 ResultRow",
        "  lengths differ: 2 != 1",
        "  row 0: commit: 'abc' != 'abd'",
        f"  row 1 only on the left: {ROW!r}",
    ]


def test_explain_equal_only_for_our_types() -> None:
    assert explain_equal("a", "b") is None
    assert explain_equal(ROW, "b") is None
    assert explain_equal([], []) is None
    assert explain_equal([ROW], []) is not None
    assert explain_equal(ROW, ROW) == ["ResultRow == ResultRow: 0 fields differ"]
