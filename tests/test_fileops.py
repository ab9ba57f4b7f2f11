"""The file-operation seam: what an installed recorder learns from each call."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fermilink_state import _fileops


class _Log:
    """A recorder that keeps every call as a tuple, and does not pay for syncs."""

    perform_syncs = False

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def opened(self, fd: int, path: str, *, created: bool, truncated: bool) -> None:
        self.calls.append(("opened", path, created, truncated))

    def wrote(self, fd: int, offset: int, data: bytes) -> None:
        self.calls.append(("wrote", fd, offset, data))

    def truncated(self, fd: int, size: int) -> None:
        self.calls.append(("truncated", fd, size))

    def synced(self, fd: int, *, data_only: bool) -> None:
        self.calls.append(("synced", fd, data_only))

    def synced_folder(self, path: str) -> None:
        self.calls.append(("synced_folder", path))

    def renamed(self, source: str, target: str) -> None:
        self.calls.append(("renamed", source, target))

    def unlinked(self, path: str) -> None:
        self.calls.append(("unlinked", path))

    def made_folder(self, path: str) -> None:
        self.calls.append(("made_folder", path))

    def closed(self, fd: int) -> None:
        self.calls.append(("closed", fd))


@pytest.fixture
def log() -> Iterator[_Log]:
    """A :class:`_Log` installed as the recorder for the test."""
    recorder = _Log()
    previous = _fileops.install_recorder(recorder)
    try:
        yield recorder
    finally:
        _fileops.install_recorder(previous)


@pytest.fixture
def fd(tmp_path: Path) -> Iterator[int]:
    """A file opened for writing, 3 bytes in, not known to the recorder."""
    descriptor = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    os.write(descriptor, b"abc")
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def test_install_recorder_returns_the_previous_one() -> None:
    first, second = _Log(), _Log()
    original = _fileops.install_recorder(first)
    try:
        assert _fileops.install_recorder(second) is first
        assert _fileops.current_recorder() is second
    finally:
        _fileops.install_recorder(original)


def test_writev_reports_the_bytes_at_their_offset(log: _Log, fd: int) -> None:
    assert _fileops.writev(fd, [b"de", memoryview(b"fg")]) == 4
    assert log.calls == [("wrote", fd, 3, b"defg")]


def test_truncate_reports_the_new_size(log: _Log, fd: int) -> None:
    _fileops.truncate(fd, 1)
    assert log.calls == [("truncated", fd, 1)]


def test_fsync_reports_a_full_sync(log: _Log, fd: int) -> None:
    _fileops.fsync(fd)
    assert log.calls == [("synced", fd, False)]


def test_fdatasync_reports_a_data_sync(log: _Log, fd: int) -> None:
    _fileops.fdatasync(fd)
    assert log.calls == [("synced", fd, True)]


def test_sync_folder_reports_the_absolute_folder(
    log: _Log, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    os.mkdir("sub")
    _fileops.sync_folder("sub")
    assert log.calls == [("synced_folder", str(tmp_path / "sub"))]


@pytest.mark.parametrize("move", [_fileops.rename, _fileops.replace])
def test_a_move_reports_both_absolute_paths(
    log: _Log, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, move: object
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a").write_bytes(b"x")
    move("a", "b")  # type: ignore[operator]
    assert log.calls == [("renamed", str(tmp_path / "a"), str(tmp_path / "b"))]
