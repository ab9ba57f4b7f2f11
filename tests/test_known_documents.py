"""Checks skipped on a memory file's bytes only when this process wrote exactly those bytes.

A campaign event scans the sections it appends to for placeholder text and
checks the file is UTF-8. ``_known_documents`` lets the next event skip that
work when the file still holds the bytes the last event wrote; any change by
anyone else must bring the checks back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import fermilink_state as fs
from fermilink_state import _known_documents, _markdown, _memory
from fermilink_state._errors import StateCorruptError
from support import PLAIN_MEMORY as MEMORY


@pytest.fixture
def memory(tmp_path: Path) -> Path:
    path = tmp_path / "memory.md"
    path.write_text(MEMORY, encoding="utf-8")
    return path


def _record(path: Path, description: str = "tried it", status: str = "rejected") -> None:
    fs.record_campaign_event(
        path,
        commit="c0ffee",
        primary_metric_name="t",
        primary_metric_value=2,
        status=status,
        description=description,
    )


def _progress_log(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    section = text.split("### Progress log\n", 1)[1].split("\n#", 1)[0]
    return section.splitlines()


class _Scans:
    """Counts the placeholder scans and UTF-8 checks that events make."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.placeholder_scans = 0
        self.utf8_checks = 0
        search, check = _markdown._PLACEHOLDER_SEARCH, _memory.check_utf8

        def counted_search(data: bytes, start: int, end: int) -> object:
            self.placeholder_scans += 1
            return search(data, start, end)

        def counted_check(path: Path, data: bytes) -> None:
            self.utf8_checks += 1
            check(path, data)

        monkeypatch.setattr(_markdown, "_PLACEHOLDER_SEARCH", counted_search)
        monkeypatch.setattr(_memory, "check_utf8", counted_check)


def test_the_first_event_checks_the_file(memory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scans = _Scans(monkeypatch)
    _record(memory)
    assert (scans.placeholder_scans, scans.utf8_checks) == (2, 1)


def test_an_event_on_the_bytes_the_last_one_wrote_checks_nothing_again(
    memory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(memory)
    scans = _Scans(monkeypatch)
    _record(memory)
    assert (scans.placeholder_scans, scans.utf8_checks) == (0, 0)


def test_a_section_not_yet_checked_is_scanned_alone(
    memory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(memory, status="rejected")  # checked: progress log, rejected patterns
    scans = _Scans(monkeypatch)
    _record(memory, status="accepted")  # adds to accepted experiments
    assert (scans.placeholder_scans, scans.utf8_checks) == (1, 0)


def test_what_an_event_wrote_is_known_with_the_sections_it_checked(memory: Path) -> None:
    _record(memory)
    known = _known_documents.clean_sections(memory, memory.read_bytes())
    assert known == frozenset({"### Progress log", "### Rejected patterns"})


def test_other_bytes_at_the_same_path_are_not_known(memory: Path) -> None:
    _record(memory)
    data = memory.read_bytes()
    assert _known_documents.clean_sections(memory, data.replace(b"tried", b"tryed")) is None


def test_a_placeholder_another_writer_added_is_dropped_by_the_next_event(memory: Path) -> None:
    _record(memory)
    data = memory.read_bytes()
    # Another writer puts a placeholder line back into the progress log.
    memory.write_bytes(data.replace(b"### Progress log\n", b"### Progress log\n- none yet\n"))
    _record(memory, description="second")
    log = _progress_log(memory)
    assert ("- none yet" in log, sum("second" in line for line in log)) == (False, 1)


def test_bad_utf8_another_writer_left_after_our_event_is_refused(memory: Path) -> None:
    _record(memory)
    broken = memory.read_bytes().replace(b"Review", b"Rev\xc3(ew")
    memory.write_bytes(broken)
    with pytest.raises(StateCorruptError):
        _record(memory, description="second")
    assert memory.read_bytes() == broken


def test_an_event_whose_line_holds_placeholder_text_leaves_nothing_known(memory: Path) -> None:
    _record(memory, description="- none yet")
    assert _known_documents.clean_sections(memory, memory.read_bytes()) is None


def test_a_file_edited_by_the_full_editor_is_forgotten(memory: Path) -> None:
    _record(memory)
    # A fence sends the next event to the full editor: nothing is known after it.
    memory.write_bytes(memory.read_bytes() + b"```\ncode\n```\n")
    _record(memory, description="second")
    assert _known_documents.clean_sections(memory, memory.read_bytes()) is None


def test_only_the_last_few_files_are_kept(tmp_path: Path) -> None:
    paths = [tmp_path / f"memory-{number}.md" for number in range(6)]
    for path in paths:
        _known_documents.remember(path, [b"x\n"], frozenset({"### Progress log"}))
    known = [_known_documents.clean_sections(path, b"x\n") is not None for path in paths]
    assert known == [False, False, True, True, True, True]


def test_forget_drops_what_was_known(tmp_path: Path) -> None:
    path = tmp_path / "memory.md"
    _known_documents.remember(path, [b"x", b"\n"], frozenset())
    _known_documents.forget(path)
    assert _known_documents.clean_sections(path, b"x\n") is None


def test_a_document_is_known_by_its_pieces_in_order(tmp_path: Path) -> None:
    path = tmp_path / "memory.md"
    data = b"# title\n- a\n- b\n"
    _known_documents.remember(
        path, [memoryview(data)[:8], b"- a\n", memoryview(data)[12:]], frozenset()
    )
    swapped = b"# title\n- b\n- a\n"
    known = [_known_documents.clean_sections(path, text) is not None for text in (data, swapped)]
    assert known == [True, False]
