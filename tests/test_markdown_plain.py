"""The byte-level fast path of memory edits: SectionEditor's result, or NotPlain.

``PlainEditor`` edits a plain memory file (LF, no BOM, no fences, ...) as
bytes, without decoding or copying it. Whatever it accepts must come out
byte for byte as ``SectionEditor`` makes it; everything else must raise
``NotPlain`` before anything is written, so the caller falls back.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fermilink_state as fs
from fermilink_state import _clock, _markdown, _memory
from fermilink_state._atomic import atomic_write_chunks
from fermilink_state._errors import StateCorruptError
from fermilink_state._markdown import (
    REFERENCE_LEVELS,
    LineEditor,
    NotPlain,
    PlainEditor,
    SectionEditor,
    _has_fence,
)
from support import PLAIN_MEMORY as MEMORY
from support import FaultInjector

Edit = tuple[str, str, Sequence[str]]

EVENT: list[Edit] = [
    ("set", "### Latest accepted commit", ["- commit: def", "- status: accepted"]),
    ("append", "### Progress log", ["- [t1] accepted: faster µs (def, t=0.5)"]),
    ("append", "### Accepted experiments", ["- [t1] faster µs (def, t=0.5)"]),
    ("meta", "- last_updated_utc: ", ["t1"]),
]


def _apply(editor: LineEditor, edits: Sequence[Edit]) -> None:
    for kind, target, payload in edits:
        if kind == "set":
            editor.set_lines(target, payload)
        elif kind == "append":
            editor.append_line(target, payload[0])
        else:
            editor.set_metadata(target, payload[0])


def _full(data: bytes, edits: Sequence[Edit]) -> bytes:
    editor = SectionEditor(data.decode("utf-8"), REFERENCE_LEVELS)
    _apply(editor, edits)
    return editor.text.encode("utf-8")


def _plain(data: bytes, edits: Sequence[Edit]) -> bytes:
    editor = PlainEditor(data, REFERENCE_LEVELS)
    _apply(editor, edits)
    return b"".join(editor.chunks())


def _record(path: Path, status: str) -> None:
    fs.record_campaign_event(
        path,
        commit="c",
        primary_metric_name="m",
        primary_metric_value=1,
        status=status,
        description="d",
    )


# --- the fast path is taken, and agrees ------------------------------------------


def test_an_event_on_a_plain_memory_file_takes_the_fast_path_and_agrees() -> None:
    data = MEMORY.encode()
    assert _plain(data, EVENT) == _full(data, EVENT)


def _big_memory() -> str:
    # Sections of many KB: the fast path writes them as slices, not copies.
    entries = "".join(f"- [t{number}] tried {number} (abc, t=1)\n" for number in range(500))
    return MEMORY.replace("### Accepted experiments\n", f"{entries}### Accepted experiments\n")


def test_the_fast_path_leaves_the_bulk_of_the_old_bytes_uncopied() -> None:
    data = _big_memory()
    editor = PlainEditor(data.encode(), REFERENCE_LEVELS)
    _apply(editor, EVENT)
    chunks = editor.chunks()
    copied = sum(len(chunk) for chunk in chunks if not isinstance(chunk, memoryview))
    assert (b"".join(chunks) == _full(data.encode(), EVENT), copied < 8192) == (True, True)


def test_a_rejected_event_leaves_the_latest_commit_alone() -> None:
    data = MEMORY.encode()
    edits = [EVENT[1], ("append", "### Rejected patterns", ["- [t1] slower"]), EVENT[3]]
    assert _plain(data, edits) == _full(data, edits)


@pytest.mark.parametrize("event", [EVENT, EVENT[1:]], ids=["accepted", "rejected"])
def test_a_crlf_document_takes_the_fast_path_and_stays_crlf(event: list[Edit]) -> None:
    data = MEMORY.replace("\n", "\r\n").encode()
    result = _plain(data, event)
    assert result == _full(data, event)
    assert result.count(b"\n") == result.count(b"\r\n")  # every line ends CRLF


def test_a_crlf_line_after_an_lf_first_line_keeps_its_cr() -> None:
    data = MEMORY.replace("- last_updated_utc: 2026-01-01T00:00:00Z\n", "- last_updated_utc: x\r\n")
    data_bytes = data.replace("### Progress log\n", "### Progress log\r\n").encode()
    assert _plain(data_bytes, EVENT) == _full(data_bytes, EVENT)


# --- everything else is left to SectionEditor ----------------------------------------

NOT_PLAIN_DOCUMENTS = {
    "bom": "\ufeff" + MEMORY,
    "no_final_newline": MEMORY.rstrip("\n"),
    "fence": MEMORY + "```\n## code\n```\n",
    "indented_fence": MEMORY + "   ~~~~\n",
    "placeholder": MEMORY.replace("- [t0] rejected: first (abc, t=1)", "  - none yet "),
    "initialized": MEMORY.replace("- [t0] kept (abc, t=1)", "- Campaign initialized."),
    "no_metadata": MEMORY.replace("- last_updated_utc: ", "- updated: "),
    "no_progress_log": MEMORY.replace("### Progress log", "### Log"),
}


@pytest.mark.parametrize("text", NOT_PLAIN_DOCUMENTS.values(), ids=NOT_PLAIN_DOCUMENTS.keys())
def test_documents_that_are_not_plain_raise_not_plain(text: str) -> None:
    with pytest.raises(NotPlain):
        _plain(text.encode(), EVENT)


@pytest.mark.parametrize(
    "line",
    ["two\nlines", "carriage\rreturn", "tab\there", "## heading", "   ```fence", "~~~", "\u2028"],
)
def test_inserted_lines_that_could_change_the_structure_raise_not_plain(line: str) -> None:
    with pytest.raises(NotPlain):
        _plain(MEMORY.encode(), [("append", "### Progress log", [line])])


def test_a_section_edited_twice_raises_not_plain() -> None:
    edits: list[Edit] = [
        ("append", "### Progress log", ["- one"]),
        ("append", "### Progress log", ["- two"]),
    ]
    with pytest.raises(NotPlain):
        _plain(MEMORY.encode(), edits)


def test_metadata_in_an_edited_section_raises_not_plain() -> None:
    edits: list[Edit] = [
        ("append", "### Rejected patterns", ["- x"]),
        ("meta", "- [t0] first", ["changed"]),
    ]
    with pytest.raises(NotPlain):
        _plain(MEMORY.encode(), edits)


# --- any document, any edits: NotPlain or SectionEditor's bytes --------------------

# Plain lines weigh more, so that most drawn documents take the fast path.
_PLAIN_LINES = [
    "## Short",
    "### Progress log",
    "### Rejected patterns",
    "- last_updated_utc: old",
    "- [t] entry (c, m=1)",
    "",
    "text # not a heading",
    "é µ ünïcode",
    "trailing  ",
    "#### deeper",
    "`inline` code",
]
_ODD_LINES = [
    "# Title",
    "##no space",
    "- none yet",
    "  - none yet  ",
    "- Campaign initialized.",
    "x - last_updated_utc: inline",
    "```",
    "   ~~~py",
    "    ```",
    "``x``",
    "weird\x0cline\u2028here",
]
_PLAIN_PAYLOADS = ["- new entry", "- µs faster", "- [t] x (c, m=2)", ""]
_ODD_PAYLOADS = [
    "- none yet",
    "a\nb",
    "## made heading",
    "```",
    "tab\there",
    "- last_updated_utc: x",
]
_HEADINGS = ["### Progress log", "### Rejected patterns", "## Short", "### Missing"]


@st.composite
def _documents(draw: st.DrawFn) -> bytes:
    # A preamble, then sections under headings the edits aim at, in any order.
    body = st.lists(st.sampled_from(_PLAIN_LINES * 6 + _ODD_LINES), max_size=5)
    lines = draw(body)
    for heading in draw(st.permutations(_HEADINGS[:3])):
        lines += [heading, *draw(body)]
    # Mostly LF, sometimes CRLF throughout, sometimes mixed.
    usual = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    endings = draw(st.lists(st.sampled_from([usual] * 15 + ["\r\n", "\n"]), min_size=len(lines)))
    text = "".join(line + ending for line, ending in zip(lines, endings, strict=False))
    if draw(st.sampled_from([False] * 9 + [True])):
        text = text.rstrip("\n")
    if draw(st.sampled_from([False] * 19 + [True])):
        text = "\ufeff" + text
    return text.encode()


_PAYLOAD = st.sampled_from(_PLAIN_PAYLOADS * 6 + _ODD_PAYLOADS)
_TARGET = st.sampled_from(_HEADINGS[:3] * 3 + _HEADINGS[3:])
_EDITS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.sampled_from(_HEADINGS), st.lists(_PAYLOAD, max_size=3)),
        st.tuples(
            st.just("append"),
            st.sampled_from(_HEADINGS),
            st.lists(_PAYLOAD, min_size=1, max_size=1),
        ),
        st.tuples(
            st.just("meta"),
            st.sampled_from(["- last_updated_utc: "] * 4 + ["- none", "x - ", "## Sh"]),
            st.lists(st.sampled_from(["now"] * 6 + ["a\nb", "µ"]), min_size=1, max_size=1),
        ),
    ),
    max_size=4,
    unique_by=lambda edit: edit[1],  # as an event: each section edited once
)


@settings(max_examples=600, derandomize=True, database=None, deadline=None)
@given(data=_documents(), edits=_EDITS)
def test_property_plain_editor_gives_section_editors_bytes_or_not_plain(
    data: bytes, edits: list[Edit]
) -> None:
    try:
        fast = _plain(data, edits)
    except NotPlain:
        return
    assert fast == _full(data, edits)


# --- fences, UTF-8 and the chunked write ------------------------------------------


@pytest.mark.parametrize("line", ["```", "   ```py", "~~~", "  ~~~~ x", "````"])
def test_fence_lines_are_found(line: str) -> None:
    assert _has_fence(f"a\n{line}\nb\n".encode())


@pytest.mark.parametrize("line", ["    ```", "`inline`", "``x``", "a ```", "~~", "x~~~"])
def test_lines_that_open_no_fence_are_not_fences(line: str) -> None:
    assert not _has_fence(f"a\n{line}\nb\n".encode())


def test_a_fence_after_many_inline_backticks_is_found() -> None:
    inline = "- `code` here\n" * (3 * _markdown._FENCE_PROBES)
    assert not _has_fence(inline.encode())
    assert _has_fence((inline + "```\n").encode())


def test_check_utf8_accepts_a_character_split_by_the_block_boundary(tmp_path: Path) -> None:
    data = b"a" * (_memory._CHECK_BLOCK - 1) + "€".encode() + b"\n"
    _memory.check_utf8(tmp_path / "memory.md", data)


def test_check_utf8_names_the_line_of_a_bad_byte_in_a_later_block(tmp_path: Path) -> None:
    data = ("é\n" * _memory._CHECK_BLOCK).encode() + b"\xff\n"
    with pytest.raises(StateCorruptError) as caught:
        _memory.check_utf8(tmp_path / "memory.md", data)
    assert caught.value.line == _memory._CHECK_BLOCK + 1


def test_check_utf8_rejects_a_truncated_final_character(tmp_path: Path) -> None:
    with pytest.raises(StateCorruptError):
        _memory.check_utf8(tmp_path / "memory.md", "x€".encode()[:-1])


@pytest.mark.parametrize("fsync", ["0", "1"])
def test_a_failing_check_leaves_the_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: str
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", fsync)
    path = tmp_path / "file.md"
    path.write_bytes(b"old\n")

    def refuse() -> None:
        raise NotPlain

    with pytest.raises(NotPlain):
        atomic_write_chunks(path, [b"new\n"], check=refuse)
    assert sorted(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == b"old\n"


@pytest.mark.parametrize("fsync", ["0", "1"])
def test_a_passing_check_runs_once_the_data_is_in_the_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: str
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", fsync)
    path = tmp_path / "file.md"
    seen: list[bytes] = []

    def look() -> None:
        (temp,) = (entry for entry in tmp_path.iterdir() if entry.name.endswith(".tmp"))
        seen.append(temp.read_bytes())

    atomic_write_chunks(path, [b"ne", b"w\n"], check=look)
    assert (seen, path.read_bytes()) == ([b"new\n"], b"new\n")


def test_a_large_file_checked_while_it_is_synced_is_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "1")
    path = tmp_path / "file.md"
    big = bytes(range(256)) * 1024  # past the size where writeback starts early
    checked: list[bool] = []
    atomic_write_chunks(path, [big, b"end"], check=lambda: checked.append(True))
    assert (checked, path.read_bytes() == big + b"end") == ([True], True)


def test_pieces_survive_short_gathered_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_writev = os.writev

    def short_writev(fd: int, buffers: Sequence[memoryview]) -> int:
        return real_writev(fd, [bytes(b"".join(buffers)[:7])])  # at most 7 bytes a call

    monkeypatch.setattr(os, "writev", short_writev)
    path = tmp_path / "file.md"
    atomic_write_chunks(path, [b"0123456789", memoryview(b"abcdef")[1:], b"", b"XYZ"])
    assert path.read_bytes() == b"0123456789bcdefXYZ"


def test_a_failed_write_of_a_fast_path_event_leaves_the_file(
    tmp_path: Path, faults: FaultInjector
) -> None:
    path = tmp_path / "memory.md"
    data = _big_memory().encode()
    path.write_bytes(data)
    faults.fail_write(errno.ENOSPC, after_bytes=10_000)
    with pytest.raises(OSError, match="No space"):
        _record(path, "rejected")
    assert (path.read_bytes(), sorted(tmp_path.iterdir())) == (
        data,
        [path, tmp_path / "memory.md.lock"],
    )


def test_atomic_write_chunks_writes_them_one_after_the_other(tmp_path: Path) -> None:
    path = tmp_path / "file.md"
    old = memoryview(b"0123456789")
    atomic_write_chunks(path, [old[:3], b"-", old[3:]])
    assert path.read_bytes() == b"012-3456789"


# --- record_campaign_event: both paths write the same bytes ------------------------


@pytest.mark.parametrize("status", ["accepted", "baseline", "rejected"])
@pytest.mark.parametrize("document", ["plain", "crlf"])
def test_record_campaign_event_fast_and_full_paths_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: str, document: str
) -> None:
    text = MEMORY if document == "plain" else MEMORY.replace("\n", "\r\n")
    fast, full = tmp_path / "fast.md", tmp_path / "full.md"
    fast.write_bytes(text.encode())
    full.write_bytes(text.encode())
    event: dict[str, Any] = {
        "commit": "c0ffee",
        "primary_metric_name": "runtime",
        "primary_metric_value": 0.5,
        "status": status,
        "description": "unrolled  the   loop, µs",
    }
    _clock.freeze("2026-02-03T04:05:06.000007Z")
    try:
        fs.record_campaign_event(fast, **event)

        def refuse(*args: object, **kwargs: object) -> None:
            raise NotPlain

        monkeypatch.setattr(_memory, "PlainEditor", refuse)
        fs.record_campaign_event(full, **event)
    finally:
        _clock.freeze(None)
    assert fast.read_bytes() == full.read_bytes()


def test_first_event_on_the_template_drops_its_placeholders_and_leaves_no_temp(
    tmp_path: Path,
) -> None:
    path = tmp_path / "memory.md"
    fs.ensure_memory_file(
        path, package_id="p", benchmark_id="b", benchmark_rel="b.yaml", optimize_branch="o"
    )
    template = path.read_bytes()
    _record(path, "rejected")
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["memory.md", "memory.md.lock"]
    data = path.read_bytes()
    counts = (data.count(b"- Campaign initialized."), data.count(b"- none yet"))
    assert counts == (0, template.count(b"- none yet") - 1)


def test_record_campaign_event_on_bad_utf8_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "memory.md"
    data = MEMORY.encode() + b"\xc3(\n"
    path.write_bytes(data)
    with pytest.raises(StateCorruptError):
        _record(path, "rejected")
    assert path.read_bytes() == data
