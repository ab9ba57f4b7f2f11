"""The line-preserving section engine under every memory edit.

Split and join give the text back exactly; edits change only the section
they touch and keep CRLF, a BOM, trailing spaces and unknown sections byte
for byte; headings inside fenced code (``` or ~~~) are not boundaries.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fermilink_state._markdown import (
    ALL_LEVELS,
    REFERENCE_LEVELS,
    SectionEditor,
    fence_spans,
    join_sections,
    newline_of,
    split_sections,
    unclosed_fence,
)

DOC = (
    "preamble line  \n"
    "\n"
    "# Title\n"
    "- last_updated_utc: old\n"
    "\n"
    "## Short-Term\n"
    "### Progress log\n"
    "- Campaign initialized.\n"
    "#### Detail\n"
    "- deep  \n"
    "### Unknown section\n"
    "weird\tcontent \x0c with\u2028breaks \n"
    "### Rejected patterns\n"
    "- none yet\n"
)


def _headings(text: str, levels: tuple[str, ...] = ALL_LEVELS) -> list[str]:
    return [section.heading for section in split_sections(text, levels)]


def _section_text(editor: SectionEditor, heading: str) -> str:
    found = editor.find(heading)
    assert found is not None, f"no section {heading!r} in {editor.text!r}"
    return found.text


# ---------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------

ROUND_TRIP_TEXTS = {
    "doc": DOC,
    "crlf": DOC.replace("\n", "\r\n"),
    "bom": "\ufeff" + DOC,
    "no_final_newline": DOC.rstrip("\n"),
    "empty": "",
    "newline": "\n",
    "heading_only": "### A",
    "fenced": "# T\n```\n## not\n```\n## yes\n~~~\n### no\n",
    "unclosed_fence": "# T\n```\n## swallowed\n",
    "mixed_endings": "# A\r\nx\n## B\ry\r\n",
    "hash_runs": "#\n##\n###\n####\n# \n## \n",
}


@pytest.mark.parametrize("text", list(ROUND_TRIP_TEXTS.values()), ids=list(ROUND_TRIP_TEXTS))
def test_split_then_join_gives_the_text_back(text: str) -> None:
    assert join_sections(split_sections(text)) == text


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    text=st.text(max_size=80)
    | st.lists(
        st.sampled_from(["# A", "## B", "### C", "#### D", "```", "~~~", "x", "", " ```"]),
        max_size=12,
    ).map("\n".join)
)
def test_property_split_then_join_gives_any_text_back(text: str) -> None:
    sections = split_sections(text)
    assert join_sections(sections) == text
    assert all(section.text.startswith(("\ufeff", *ALL_LEVELS)) for section in sections[1:])


def test_sections_start_at_level_one_to_three_headings() -> None:
    assert _headings(DOC) == [
        "",
        "# Title",
        "## Short-Term",
        "### Progress log",
        "### Unknown section",
        "### Rejected patterns",
    ]


def test_level_four_headings_are_content() -> None:
    section = split_sections(DOC)[3]
    assert section.body_lines() == ["- Campaign initialized.", "#### Detail", "- deep  "]


@pytest.mark.parametrize("line", ["#no space", " ## indented", "##\ttab", "####", "#"])
def test_lines_that_are_not_headings_are_content(line: str) -> None:
    assert _headings(f"# T\n{line}\nx\n") == ["# T"]


def test_reference_levels_leave_the_title_inside_the_preamble() -> None:
    assert _headings(DOC, REFERENCE_LEVELS)[:2] == ["", "## Short-Term"]


def test_text_before_the_first_heading_is_the_unnamed_section() -> None:
    assert split_sections(DOC)[0].text == "preamble line  \n\n"


def test_no_unnamed_section_when_the_text_starts_with_a_heading() -> None:
    assert _headings("# T\nx\n") == ["# T"]


def test_a_bom_is_kept_in_the_text_but_not_in_the_heading() -> None:
    [section] = split_sections("\ufeff# T\nx\n")
    assert (section.heading, section.text) == ("# T", "\ufeff# T\nx\n")


def test_crlf_headings_and_body_lines_come_without_carriage_returns() -> None:
    [section] = split_sections("### A\r\n- a  \r\n- b\r\n")
    assert (section.heading, section.body_lines()) == ("### A", ["- a  ", "- b"])


@pytest.mark.parametrize(
    ("text", "newline"),
    [("a\r\nb\n", "\r\n"), ("a\nb\r\n", "\n"), ("", "\n"), ("\r\n", "\r\n"), ("\n", "\n")],
)
def test_newline_is_that_of_the_first_line(text: str, newline: str) -> None:
    assert newline_of(text) == newline


# ---------------------------------------------------------------------------
# Fenced code
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fence",
    [
        "```\n## inside\n```\n",
        "~~~\n## inside\n~~~\n",
        "```python\n## inside\n```\n",
        "````\n```\n## inside\n```\n````\n",
        "~~~\n```\n## inside\n~~~\n",
        "   ```\n## inside\n   ```\n",
        "```\n## inside\n```   \n",
        "``````\n## inside\n`````````\n",
    ],
    ids=[
        "backticks",
        "tildes",
        "info_string",
        "longer_fence_holds_shorter",
        "other_char_does_not_close",
        "indented_three_spaces",
        "closing_with_trailing_spaces",
        "longer_closing_fence",
    ],
)
def test_headings_inside_fenced_code_are_content(fence: str) -> None:
    text = f"# T\n{fence}## after\n"
    assert _headings(text) == ["# T", "## after"]


def test_four_spaces_make_no_fence() -> None:
    assert _headings("# T\n    ```\n## real\n") == ["# T", "## real"]


def test_closing_fence_with_text_after_it_does_not_close() -> None:
    assert _headings("# T\n```\n``` not closed\n## inside\n```\n## after\n") == ["# T", "## after"]


def test_unclosed_fence_runs_to_the_end() -> None:
    text = "# T\n```\n## swallowed\n### too\n"
    assert (fence_spans(text), _headings(text)) == ([(4, len(text))], ["# T"])


def test_unclosed_fence_reports_its_marker() -> None:
    assert (unclosed_fence("x\n~~~~\ncode\n"), unclosed_fence("```\nx\n```\n")) == ("~~~~", "")


# ---------------------------------------------------------------------------
# Edits keep every byte they do not touch
# ---------------------------------------------------------------------------


def test_append_changes_only_its_section() -> None:
    editor = SectionEditor(DOC)
    before = {section.heading: section.text for section in editor.sections}
    editor.append_line("### Progress log", "- new")
    after = {section.heading: section.text for section in editor.sections}
    changed = sorted(heading for heading in before if before[heading] != after[heading])
    assert changed == ["### Progress log"]


def test_append_keeps_trailing_spaces_and_deeper_headings_of_its_section() -> None:
    editor = SectionEditor(DOC)
    editor.append_line("### Progress log", "- new")
    assert _section_text(editor, "### Progress log") == (
        "### Progress log\n#### Detail\n- deep  \n- new\n"
    )


def test_unknown_section_is_kept_byte_for_byte() -> None:
    editor = SectionEditor(DOC)
    editor.append_line("### Progress log", "- new")
    editor.set_lines("### Rejected patterns", ["- r"])
    editor.set_metadata("- last_updated_utc: ", "now")
    assert _section_text(editor, "### Unknown section") == (
        "### Unknown section\nweird\tcontent \x0c with\u2028breaks \n"
    )


def test_preamble_is_kept_byte_for_byte() -> None:
    editor = SectionEditor(DOC)
    editor.set_lines("### Progress log", [])
    assert editor.text.startswith("preamble line  \n\n# Title\n")


def test_crlf_document_stays_crlf_after_every_kind_of_edit() -> None:
    editor = SectionEditor(DOC.replace("\n", "\r\n"))
    editor.append_line("### Progress log", "- new")
    editor.set_lines("### Rejected patterns", ["- a", "- b"])
    editor.set_metadata("- last_updated_utc: ", "now")
    editor.append_line("### Missing", "- m")
    assert editor.text.count("\n") == editor.text.count("\r\n")
    assert "- last_updated_utc: now\r\n" in editor.text


def test_bom_is_kept_and_metadata_on_the_first_line_is_found() -> None:
    editor = SectionEditor("\ufeff- last_updated_utc: old\n### A\n")
    editor.set_metadata("- last_updated_utc: ", "new")
    assert editor.text == "\ufeff- last_updated_utc: new\n### A\n"


def test_bom_alone_is_not_text_before_an_added_section() -> None:
    editor = SectionEditor("\ufeff")
    editor.append_line("### A", "- a")
    assert editor.text == "\ufeff### A\n- a\n"


def test_missing_section_is_added_at_the_end_after_one_blank_line() -> None:
    editor = SectionEditor("# T\n- x")
    editor.append_line("### New", "- e")
    assert editor.text == "# T\n- x\n\n### New\n- e\n"


def test_missing_section_after_a_blank_line_gets_no_second_one() -> None:
    editor = SectionEditor("# T\n\n")
    editor.set_lines("### New", ["- e"])
    assert editor.text == "# T\n\n### New\n- e\n"


def test_every_edit_ends_the_text_with_a_line_ending() -> None:
    editor = SectionEditor("### A\r\n- a\r\n### B\r\n- b")
    editor.append_line("### A", "- more")
    assert editor.text.endswith("- b\r\n")


def test_placeholders_inside_fenced_code_are_kept() -> None:
    editor = SectionEditor("### A\n- none yet\n```\n- none yet\n```\n")
    editor.append_line("### A", "- e")
    assert editor.text == "### A\n```\n- none yet\n```\n- e\n"


def test_metadata_inside_fenced_code_is_not_replaced() -> None:
    editor = SectionEditor("```\n- k: fenced\n```\n- k: real\n")
    editor.set_metadata("- k: ", "new")
    assert editor.text == "```\n- k: fenced\n```\n- k: new\n"


def test_fence_left_open_is_closed_before_a_section_is_added_after_it() -> None:
    editor = SectionEditor("### A\n- a\n~~~~\ncode")
    editor.set_lines("### New", ["- n"])
    assert editor.text == "### A\n- a\n~~~~\ncode\n~~~~\n\n### New\n- n\n"


def test_fence_left_open_is_closed_before_an_entry_is_appended() -> None:
    editor = SectionEditor("### A\n```\ncode\n")
    editor.append_line("### A", "- e")
    assert editor.text == "### A\n```\ncode\n```\n- e\n"


def test_sections_added_after_an_open_fence_are_found_by_the_next_edit() -> None:
    text = "### A\n```\ncode\n"
    for number in range(3):
        editor = SectionEditor(text)
        editor.append_line("### New", f"- {number}")
        text = editor.text
    assert (_headings(text), text.count("### New")) == (["### A", "### New"], 1)


def test_inserted_lines_that_spell_a_heading_start_a_section() -> None:
    # As the reference, which re-reads its own output between edits.
    editor = SectionEditor("### A\n- a\n### B\n- b\n", REFERENCE_LEVELS)
    editor.append_line("### A", "- x\n### C\n- c")
    editor.append_line("### C", "- more")
    assert editor.text == "### A\n- a\n- x\n### C\n- c\n- more\n### B\n- b\n"
