"""The public plain-text section helpers keep the reference's semantics exactly.

``find_section_bounds``, ``set_section_lines``, ``append_section_line`` and
``replace_metadata_line`` (and their underscore aliases, which FermiLink's
controller calls): lines from ``str.splitlines``, a section ends at the next
``## `` / ``### `` line, results joined with ``\\n`` and ending in one.
(test_compat_differential runs them against the reference on a wide grid.)
"""

from __future__ import annotations

import pytest

import fermilink_state as fs

DOC = (
    "# Title\n"
    "\n"
    "- last_updated_utc: old\n"
    "\n"
    "## Part\n"
    "### Progress log\n"
    "- Campaign initialized.\n"
    "#### Detail\n"
    "- deep\n"
    "# Inner title\n"
    "### Accepted experiments\n"
    "  - none yet  \n"
    "- kept\n"
    "\n"
    "### Last\n"
    "- end\n"
)
LINES = DOC.splitlines()


@pytest.mark.parametrize(
    ("public", "private"),
    [
        ("find_section_bounds", "_find_section_bounds"),
        ("set_section_lines", "_set_section_lines"),
        ("append_section_line", "_append_section_line"),
        ("replace_metadata_line", "_replace_metadata_line"),
    ],
)
def test_public_name_is_the_reference_helper(public: str, private: str) -> None:
    assert getattr(fs, public) is getattr(fs, private)


# find_section_bounds


def test_bounds_run_from_the_heading_to_the_next_level_two_or_three_heading() -> None:
    assert fs.find_section_bounds(LINES, "### Progress log") == (5, 10)


def test_bounds_treat_level_one_and_four_headings_as_content() -> None:
    start, end = fs.find_section_bounds(LINES, "### Progress log") or (0, 0)
    assert LINES[start + 1 : end] == [
        "- Campaign initialized.",
        "#### Detail",
        "- deep",
        "# Inner title",
    ]


def test_bounds_of_the_last_section_end_at_the_last_line() -> None:
    assert fs.find_section_bounds(LINES, "### Last") == (14, len(LINES))


def test_bounds_of_a_level_two_heading_end_at_the_next_level_three_one() -> None:
    assert fs.find_section_bounds(LINES, "## Part") == (4, 5)


def test_bounds_of_a_missing_heading_are_none() -> None:
    assert fs.find_section_bounds(LINES, "### Missing") is None


def test_bounds_need_the_whole_line_to_match() -> None:
    assert fs.find_section_bounds(["### Progress log ", "x"], "### Progress log") is None


def test_bounds_pick_the_first_of_duplicate_headings() -> None:
    assert fs.find_section_bounds(["### A", "x", "### A", "y"], "### A") == (0, 2)


def test_bounds_match_any_line_even_one_that_is_no_heading() -> None:
    # The reference looks the heading up with list.index: any equal line counts.
    assert fs.find_section_bounds(["- item", "text", "### B"], "text") == (1, 2)


# set_section_lines


def test_set_replaces_the_whole_body_blank_lines_included() -> None:
    text = "### A\n- old\n\n### B\n- b\n"
    assert fs.set_section_lines(text, "### A", ["- new"]) == "### A\n- new\n### B\n- b\n"


def test_set_with_no_lines_empties_the_section() -> None:
    assert fs.set_section_lines("### A\n- old\n### B\n", "### A", []) == "### A\n### B\n"


def test_set_appends_a_missing_section_after_one_blank_line() -> None:
    assert fs.set_section_lines("# T\n- x\n", "### New", ["- a", "- b"]) == (
        "# T\n- x\n\n### New\n- a\n- b\n"
    )


def test_set_appends_no_second_blank_line() -> None:
    assert fs.set_section_lines("# T\n\n", "### New", ["- a"]) == "# T\n\n### New\n- a\n"


def test_set_on_empty_text_starts_with_the_heading() -> None:
    assert fs.set_section_lines("", "### New", ["- a"]) == "### New\n- a\n"


def test_set_normalises_line_endings_to_lf_as_the_reference() -> None:
    assert fs.set_section_lines("### A\r\n- old\r\n### B\r\n", "### A", ["- n"]) == (
        "### A\n- n\n### B\n"
    )


def test_set_terminates_a_last_line_without_newline() -> None:
    assert fs.set_section_lines("### A\n- a\n### B\n- b", "### A", ["- n"]) == (
        "### A\n- n\n### B\n- b\n"
    )


# append_section_line


def test_append_adds_the_entry_at_the_end_of_the_section() -> None:
    text = "### A\n- one\n### B\n- b\n"
    assert fs.append_section_line(text, "### A", "- two") == "### A\n- one\n- two\n### B\n- b\n"


def test_append_removes_placeholders_even_with_surrounding_whitespace() -> None:
    updated = fs.append_section_line(DOC, "### Accepted experiments", "- new")
    start, end = fs.find_section_bounds(updated.splitlines(), "### Accepted experiments") or (0, 0)
    assert updated.splitlines()[start + 1 : end] == ["- kept", "", "- new"]


def test_append_removes_the_campaign_initialized_placeholder() -> None:
    updated = fs.append_section_line(DOC, "### Progress log", "- first")
    assert "- Campaign initialized." not in updated
    assert "#### Detail\n- deep\n# Inner title\n- first\n### Accepted" in updated


def test_append_keeps_placeholders_of_other_sections() -> None:
    updated = fs.append_section_line(DOC, "### Last", "- more")
    assert ("- Campaign initialized." in updated, "  - none yet  " in updated) == (True, True)


def test_append_adds_a_missing_section_at_the_end() -> None:
    assert fs.append_section_line("# T", "### New", "- e") == "# T\n\n### New\n- e\n"


def test_append_goes_after_trailing_blank_lines_of_the_section() -> None:
    assert fs.append_section_line("### A\n- a\n\n### B\n", "### A", "- e") == (
        "### A\n- a\n\n- e\n### B\n"
    )


# replace_metadata_line


def test_metadata_replaces_the_first_line_with_the_prefix() -> None:
    text = "- k: 1\n- k: 2\n"
    assert fs.replace_metadata_line(text, "- k: ", "new") == "- k: new\n- k: 2\n"


def test_metadata_is_found_anywhere_in_the_text() -> None:
    updated = fs.replace_metadata_line(DOC, "- deep", "er")
    assert "#### Detail\n- deeper\n" in updated


def test_metadata_missing_is_appended_after_a_blank_line() -> None:
    assert fs.replace_metadata_line("# T\n", "- k: ", "v") == "# T\n\n- k: v\n"


def test_metadata_on_empty_text_is_the_only_line() -> None:
    assert fs.replace_metadata_line("", "- k: ", "v") == "- k: v\n"


def test_metadata_keeps_everything_else_of_the_document() -> None:
    updated = fs.replace_metadata_line(DOC, "- last_updated_utc: ", "new")
    assert updated == DOC.replace("- last_updated_utc: old", "- last_updated_utc: new")
