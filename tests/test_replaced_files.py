"""A whole-file read that looks again where another host may be replacing the file."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import fermilink_state as fs
from fermilink_state import _filesystems
from fermilink_state._filesystems import Filesystem
from fermilink_state._replaced_files import LOOK_AGAIN_AFTER, read_replaced


class Waits:
    """Stands in for ``time.sleep``: records each wait; may make the file at one of them."""

    def __init__(self, path: Path, appears_at: int | None = None) -> None:
        self.path = path
        self.appears_at = appears_at
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) == self.appears_at:  # the other host's replace completes
            self.path.write_bytes(b'{"iteration": 7}\n')


def _on(monkeypatch: pytest.MonkeyPatch, filesystem: Filesystem, waits: Waits) -> None:
    monkeypatch.setattr(_filesystems, "filesystem_of", lambda folder: filesystem)
    monkeypatch.setattr(time, "sleep", waits)


NFS = Filesystem("nfs4", shared=True)
EXT4 = Filesystem("ext4", shared=False)


def test_a_file_that_is_there_is_read_with_its_identity(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"x" * 200_000)
    data, identity = read_replaced(str(path))
    assert data == b"x" * 200_000
    assert os.path.samestat(identity, path.stat())


def test_a_file_is_read_in_one_read_and_one_that_finds_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each read is a round trip to the server on NFS: a file larger than the
    # 64 KiB floor is still asked for whole, not in two reads before the end.
    path = tmp_path / "state.json"
    path.write_bytes(b"x" * 200_000)
    real_read = os.read
    returned: list[int] = []

    def read(fd: int, size: int) -> bytes:
        piece = real_read(fd, size)
        returned.append(len(piece))
        return piece

    monkeypatch.setattr(os, "read", read)
    read_replaced(str(path))
    assert returned == [200_000, 0]


def test_a_file_returned_in_short_reads_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read may return fewer bytes than asked (a signal, a network filesystem).
    path = tmp_path / "state.json"
    content = bytes(range(256)) * 10
    path.write_bytes(content)
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, size: real_read(fd, min(size, 1000)))
    assert read_replaced(str(path))[0] == content


@pytest.mark.parametrize(
    ("filesystem", "waits_expected"),
    [(EXT4, []), (NFS, list(LOOK_AGAIN_AFTER))],
    ids=["local-at-once", "shared-after-every-look"],
)
def test_a_missing_file_is_missing_after_the_looks_its_filesystem_calls_for(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    filesystem: Filesystem,
    waits_expected: list[float],
) -> None:
    waits = Waits(tmp_path / "state.json")
    _on(monkeypatch, filesystem, waits)
    with pytest.raises(FileNotFoundError):
        read_replaced(str(tmp_path / "state.json"))
    assert waits.waits == waits_expected


def test_looking_again_takes_a_moment() -> None:
    assert 0.05 <= sum(LOOK_AGAIN_AFTER) <= 0.2  # only a missing file pays it


@pytest.mark.parametrize("appears_at", range(1, len(LOOK_AGAIN_AFTER) + 1))
def test_a_file_that_reappears_on_a_shared_filesystem_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, appears_at: int
) -> None:
    waits = Waits(tmp_path / "state.json", appears_at)
    _on(monkeypatch, NFS, waits)
    assert read_replaced(str(tmp_path / "state.json"))[0] == b'{"iteration": 7}\n'
    assert waits.waits == list(LOOK_AGAIN_AFTER[:appears_at])


def test_a_file_gone_between_open_and_read_on_a_shared_filesystem_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FUSE looks an open file up by name again for fstat and read: mid-replace
    # on another host, they fail with ENOENT although open succeeded.
    path = tmp_path / "state.json"
    path.write_bytes(b'{"iteration": 7}\n')
    waits = Waits(path)
    _on(monkeypatch, NFS, waits)
    real_fstat = os.fstat
    failures = iter([FileNotFoundError(2, "No such file or directory")])

    def fstat(fd: int) -> os.stat_result:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_fstat(fd)

    monkeypatch.setattr(os, "fstat", fstat)
    assert read_replaced(str(path))[0] == b'{"iteration": 7}\n'
    assert waits.waits == [LOOK_AGAIN_AFTER[0]]


def test_a_file_in_a_missing_folder_is_missing_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits = Waits(tmp_path / "state.json")
    monkeypatch.setattr(time, "sleep", waits)
    with pytest.raises(FileNotFoundError):
        read_replaced(str(tmp_path / "missing" / "state.json"))
    assert waits.waits == []


def test_a_folder_in_place_of_the_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").mkdir()
    with pytest.raises(IsADirectoryError):
        read_replaced(str(tmp_path / "state.json"))


@pytest.mark.parametrize("reader", [fs.load_state, fs.load_json_file, fs.read_json_file])
def test_json_readers_read_a_file_that_reappears_on_a_shared_filesystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: Callable[[Path], object]
) -> None:
    waits = Waits(tmp_path / "state.json", appears_at=2)
    _on(monkeypatch, NFS, waits)
    assert reader(tmp_path / "state.json") == {"iteration": 7}
