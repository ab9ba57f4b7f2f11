"""The forgiving JSON loader moves aside only the corrupt file it judged.

Between reading a corrupt file and moving it aside, another writer may have
replaced it with a good one (an atomic write is a rename). Moving that good
file away would lose it, so the loader first checks that the name still
points at the file it read.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import pytest

import fermilink_state as fs
from fermilink_state import _jsonio

GOOD = {"iteration": 3, "written": "by another writer meanwhile"}


def _replace_with_a_good_file(state: Path) -> None:
    fs.write_state(state, GOOD)


MEANWHILE = {
    "replaced-by-a-good-file": (_replace_with_a_good_file, ["state.json"]),
    "removed": (Path.unlink, []),
}


@pytest.mark.parametrize("meanwhile", MEANWHILE.values(), ids=list(MEANWHILE))
def test_a_file_changed_after_the_read_is_not_moved_aside(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    meanwhile: tuple[Callable[[Path], object], list[str]],
) -> None:
    change, names_left = meanwhile
    state = tmp_path / "state.json"
    state.write_bytes(b'{"iteration": 2, "trunc')
    real_parse = _jsonio._parse_object

    def parse_after_the_change(path: Path, data: bytes) -> dict[str, Any]:
        # The loader has read the corrupt bytes; another process now changes the file.
        change(state)
        return real_parse(path, data)

    monkeypatch.setattr(_jsonio, "_parse_object", parse_after_the_change)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fs.StateCorruptWarning)  # nothing is moved: no warning
        assert fs.load_state(state) is None  # what it read was corrupt
    assert sorted(path.name for path in tmp_path.iterdir()) == names_left
    if names_left:
        assert fs.read_json_file(state) == GOOD


def test_the_corrupt_file_itself_is_moved_aside_with_its_bytes(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(b'{"iteration": 2, "trunc')
    with pytest.warns(fs.StateCorruptWarning, match="moved it aside"):
        assert fs.load_state(state) is None
    (moved,) = tmp_path.iterdir()
    assert moved.name.startswith("state.json.corrupt-")
    assert moved.read_bytes() == b'{"iteration": 2, "trunc'


def test_quarantines_in_one_instant_never_overwrite_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two corrupt versions judged within one clock tick get two names.
    class OneInstant(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> OneInstant:
            if tz is None:  # a local clock nine hours ahead: the stamp must be UTC
                return cls(2026, 1, 2, 12, 4, 5, 678901)
            return cls(2026, 1, 2, 3, 4, 5, 678901, tzinfo=tz)

    monkeypatch.setattr(_jsonio, "datetime", OneInstant)
    state = tmp_path / "state.json"
    for content in (b"first{", b"second{", b"third{"):
        state.write_bytes(content)
        with pytest.warns(fs.StateCorruptWarning):
            assert fs.load_state(state) is None
    kept = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert kept == {
        "state.json.corrupt-20260102T030405678901Z": b"first{",
        "state.json.corrupt-20260102T030405678901Z-1": b"second{",
        "state.json.corrupt-20260102T030405678901Z-2": b"third{",
    }


REASONS = {
    b"": "empty file, expected a JSON object",
    b"[" * 200_000: "JSON nested too deeply",
    b"[1, 2]\n": "expected a JSON object, found list",
    b'"text"\n': "expected a JSON object, found str",
}


@pytest.mark.parametrize("data", REASONS, ids=["empty", "too-deep", "list", "str"])
def test_strict_reader_says_what_is_wrong(tmp_path: Path, data: bytes) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(data)
    with pytest.raises(fs.StateCorruptError) as caught:
        fs.read_json_file(state)
    assert (caught.value.path, caught.value.reason) == (state, REASONS[data])


def _quarantine_warning(tmp_path: Path) -> tuple[warnings.WarningMessage, Path, Path]:
    state = tmp_path / "state.json"
    state.write_bytes(b"")
    with pytest.warns(fs.StateCorruptWarning) as caught:
        fs.load_json_file(state)
    (moved,) = tmp_path.iterdir()
    return caught[0], state, moved


def test_quarantine_warning_says_where_it_went(tmp_path: Path) -> None:
    warning, state, moved = _quarantine_warning(tmp_path)
    assert str(warning.message) == (
        f"{state}: empty file, expected a JSON object; moved it aside to {moved.name} and "
        "continued as if it were missing. Inspect that file and restore what you need."
    )


@pytest.mark.stacklevel
def test_quarantine_warning_points_at_the_callers_line(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(b"")
    call_line = sys._getframe().f_lineno + 2
    with pytest.warns(fs.StateCorruptWarning) as caught:
        fs.load_json_file(state)
    assert [(warning.filename, warning.lineno) for warning in caught] == [(__file__, call_line)]


def test_json_is_written_as_the_reference_writes_it(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    fs.write_state(state, {"b": 1, "a": [1, "x"]})
    assert state.read_bytes() == b'{\n  "a": [\n    1,\n    "x"\n  ],\n  "b": 1\n}\n'
