"""parse_memory, MemoryDocument and edit_memory: SPEC section rules, bytes kept."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fermilink_state import (
    MemoryDocument,
    StateCorruptError,
    StateLockTimeout,
    edit_memory,
    ensure_memory_file,
    parse_memory,
)
from support import TEMPLATE_HEADINGS

DOC = textwrap.dedent(
    """\
    intro line
    # Title
    - key: value

    ## Part
    ### Log
    - one
    #### Detail
    - two
    ```
    ## Not a heading
    ```
    ~~~
    ### Nor this
    ~~~
    ### Next
    - three
    """
)


@pytest.fixture
def memory(tmp_path: Path) -> Path:
    path = tmp_path / "memory.md"
    ensure_memory_file(
        path, package_id="p", benchmark_id="b", benchmark_rel="bench.yaml", optimize_branch="br"
    )
    return path


# -- parse_memory ---------------------------------------------------------------


def test_headings_of_the_template_are_every_heading_line_in_order(memory: Path) -> None:
    assert parse_memory(memory.read_text(encoding="utf-8")).headings == TEMPLATE_HEADINGS


def test_text_before_the_first_heading_is_the_section_named_empty() -> None:
    doc = parse_memory(DOC)
    assert doc.headings[0] == ""
    assert doc.section("") == ["intro line"]


def test_no_preamble_section_when_the_text_starts_with_a_heading() -> None:
    assert parse_memory("# T\nx\n").headings == ["# T"]


def test_metadata_lines_belong_to_the_title_section() -> None:
    assert parse_memory(DOC).section("# Title") == ["- key: value", ""]


def test_a_section_runs_to_the_next_heading_of_any_level() -> None:
    assert parse_memory(DOC).section("## Part") == []


def test_deeper_headings_are_content() -> None:
    lines = parse_memory(DOC).section("### Log")
    assert lines is not None
    assert "#### Detail" in lines
    assert "#### Detail" not in parse_memory(DOC).headings


def test_headings_inside_fenced_code_are_content() -> None:
    doc = parse_memory(DOC)
    assert doc.headings == ["", "# Title", "## Part", "### Log", "### Next"]
    lines = doc.section("### Log")
    assert lines is not None
    assert "## Not a heading" in lines
    assert "### Nor this" in lines


def test_section_of_a_missing_heading_is_none() -> None:
    assert parse_memory(DOC).section("### Missing") is None


def test_section_lines_have_no_line_endings_with_crlf() -> None:
    doc = parse_memory("# T\r\n- a\r\n- b\r\n")
    assert doc.section("# T") == ["- a", "- b"]


def test_a_bom_is_not_part_of_the_first_heading_or_preamble() -> None:
    assert parse_memory("\ufeff# T\nx\n").headings == ["# T"]
    assert parse_memory("\ufeffintro\n# T\n").section("") == ["intro"]


@pytest.mark.parametrize(
    "text",
    [
        DOC,
        "",
        "no heading at all",
        "\ufeff# T\r\n- a  \r\n\r\n## U\r\n",
        "# T\n```\n## open fence never closed\n",
        "# T\nno final newline",
    ],
)
def test_text_round_trips_byte_for_byte(text: str) -> None:
    assert parse_memory(text).text == text


def test_parse_memory_returns_a_memory_document() -> None:
    assert isinstance(parse_memory(DOC), MemoryDocument)


def test_documents_compare_by_text() -> None:
    assert parse_memory(DOC) == parse_memory(DOC)
    assert parse_memory(DOC) != parse_memory(DOC + "x\n")


# -- editing a document -----------------------------------------------------------


def test_append_adds_the_line_at_the_end_of_its_section() -> None:
    doc = parse_memory(DOC)
    doc.append("### Log", "- four")
    lines = doc.section("### Log")
    assert lines is not None
    assert lines[-1] == "- four"
    assert doc.text.replace("~~~\n- four\n", "~~~\n") == DOC


def test_append_drops_the_placeholder_lines(memory: Path) -> None:
    doc = parse_memory(memory.read_text(encoding="utf-8"))
    doc.append("### Rejected patterns", "- slow idea")
    doc.append("### Progress log", "- step")
    assert doc.section("### Rejected patterns") == ["- slow idea"]
    assert doc.section("### Progress log") == ["", "- step"]


def test_append_to_a_missing_heading_adds_the_section_at_the_end() -> None:
    doc = parse_memory("# T\nx\n")
    doc.append("### New", "- y")
    assert doc.text == "# T\nx\n\n### New\n- y\n"


def test_append_keeps_crlf_line_endings() -> None:
    doc = parse_memory("# T\r\n- a\r\n## U\r\n")
    doc.append("# T", "- b")
    assert doc.text == "# T\r\n- a\r\n- b\r\n## U\r\n"


def test_set_replaces_only_that_section_s_lines() -> None:
    doc = parse_memory(DOC)
    doc.set("### Next", ["- replaced"])
    assert doc.section("### Next") == ["- replaced"]
    assert doc.text.startswith(DOC[: DOC.index("### Next")])


def test_set_metadata_replaces_the_line_in_the_title_section() -> None:
    doc = parse_memory(DOC)
    doc.set_metadata("- key: ", "new")
    assert doc.section("# Title") == ["- key: new", ""]
    assert doc.text == DOC.replace("- key: value", "- key: new")


def test_set_metadata_ignores_lines_inside_code_fences() -> None:
    text = "# T\n```\n- key: fenced\n```\n- key: real\n"
    doc = parse_memory(text)
    doc.set_metadata("- key: ", "new")
    assert doc.text == text.replace("- key: real", "- key: new")


def test_edits_keep_unknown_sections_and_trailing_spaces() -> None:
    text = "# T  \n- a: 1\n## Mine\nkeep   \n### Log\n"
    doc = parse_memory(text)
    doc.append("### Log", "- x")
    assert doc.text == text + "- x\n"


# -- edit_memory ------------------------------------------------------------------


def test_edit_memory_writes_on_a_clean_exit(memory: Path) -> None:
    with edit_memory(memory) as doc:
        doc.append("### Open hypotheses", "- try tiling")
    assert memory.read_text(encoding="utf-8").endswith("- try tiling\n")


def test_edit_memory_changes_only_the_edited_section(memory: Path) -> None:
    before = memory.read_text(encoding="utf-8")
    with edit_memory(memory) as doc:
        doc.set("### Current objective", ["- go faster"])
    after = memory.read_text(encoding="utf-8")
    old_line = "- Improve benchmark performance while preserving correctness."
    assert after == before.replace(old_line, "- go faster")


def _append_then_fail(path: Path) -> None:
    with edit_memory(path) as doc:
        doc.append("### Progress log", "- never written")
        raise RuntimeError("changed my mind")


def test_edit_memory_writes_nothing_when_the_body_raises(memory: Path) -> None:
    before = memory.read_bytes()
    stamp = memory.stat().st_mtime_ns
    with pytest.raises(RuntimeError, match="changed my mind"):
        _append_then_fail(memory)
    assert memory.read_bytes() == before
    assert memory.stat().st_mtime_ns == stamp


def test_edit_memory_does_not_rewrite_an_unchanged_file(memory: Path) -> None:
    inode = memory.stat().st_ino
    with edit_memory(memory) as doc:
        assert doc.section("### Progress log") == ["- Campaign initialized.", ""]
    assert memory.stat().st_ino == inode


def test_edit_memory_replaces_the_file_atomically_without_litter(memory: Path) -> None:
    inode = memory.stat().st_ino
    with edit_memory(memory) as doc:
        doc.append("### Progress log", "- step")
    assert memory.stat().st_ino != inode  # a new file was renamed over the old one
    assert [path.name for path in memory.parent.iterdir() if path.name.endswith(".tmp")] == []


def test_edit_memory_keeps_crlf_and_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "memory.md"
    path.write_bytes("\ufeff# T\r\n- a\r\n".encode())
    with edit_memory(path) as doc:
        doc.append("# T", "- b")
    assert path.read_bytes() == "\ufeff# T\r\n- a\r\n- b\r\n".encode()


def test_edit_memory_refuses_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "memory.md"
    path.write_bytes(b"# T\n- caf\xe9\n")
    with pytest.raises(StateCorruptError) as caught, edit_memory(path) as doc:
        doc.append("# T", "- x")
    assert caught.value.line == 2
    assert path.read_bytes() == b"# T\n- caf\xe9\n"


def test_edit_memory_of_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), edit_memory(tmp_path / "memory.md"):
        pass


def test_edit_memory_holds_the_file_lock_for_the_body(memory: Path) -> None:
    probe = (
        "import sys; from pathlib import Path; from fermilink_state import locked\n"
        "with locked(Path(sys.argv[1]), timeout=0.2): pass\n"
    )
    with edit_memory(memory):
        waiter = subprocess.run(
            [sys.executable, "-c", probe, str(memory)],
            check=False,
            capture_output=True,
            text=True,
        )
    assert waiter.returncode != 0
    assert StateLockTimeout.__name__ in waiter.stderr


def test_edit_memory_from_many_processes_loses_no_line(memory: Path) -> None:
    worker = (
        "import sys; from pathlib import Path; from fermilink_state import edit_memory\n"
        "for i in range(20):\n"
        "    with edit_memory(Path(sys.argv[1])) as doc:\n"
        "        doc.append('### Progress log', f'- {sys.argv[2]}-{i}')\n"
    )
    env = {**os.environ, "FERMILINK_STATE_FSYNC": "0"}
    procs = [
        subprocess.Popen([sys.executable, "-c", worker, str(memory), str(n)], env=env)
        for n in range(4)
    ]
    assert [proc.wait(timeout=120) for proc in procs] == [0, 0, 0, 0]
    lines = parse_memory(memory.read_text(encoding="utf-8")).section("### Progress log")
    assert lines is not None
    assert sorted(line for line in lines if line) == sorted(
        f"- {n}-{i}" for n in range(4) for i in range(20)
    )
