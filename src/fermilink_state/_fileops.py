"""Every OS call that changes a campaign's files goes through here.

One small seam for the writers (atomic writes, appends, memory edits, the run
lock, folder creation): each function is the plain OS call plus one check of a
module global. Normally no recorder is installed and that check is all it
costs. The crash-state explorer (``fermilink_state.testing._crashstates``)
installs a :class:`Recorder` in a child process, learns every create, write
(offset and bytes), truncate, sync, rename, unlink and mkdir, and rebuilds the
files a kill or a power cut could leave at any instant.

Whether to sync is the caller's decision (``fsync_enabled``), never this
module's: with ``FERMILINK_STATE_FSYNC=0`` no sync call reaches this module.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Protocol

FSYNC_ENV: Final = "FERMILINK_STATE_FSYNC"
_FOLDER_FLAGS: Final = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
# A new file, created here or not at all, and never through a planted symlink.
CREATE_NEW_FLAGS: Final = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_CREATE_FLAG: Final = os.O_CREAT
_TRUNCATE_FLAG: Final = os.O_TRUNC


def fsync_enabled() -> bool:
    """False when ``FERMILINK_STATE_FSYNC=0`` (read at each call)."""
    return os.environ.get(FSYNC_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


class Recorder(Protocol):
    """What the seam tells an installed recorder, after each call succeeded."""

    perform_syncs: bool  # False: record syncs without paying for them

    def opened(self, fd: int, path: str, *, created: bool, truncated: bool) -> None: ...
    def wrote(self, fd: int, offset: int, data: bytes) -> None: ...
    def truncated(self, fd: int, size: int) -> None: ...
    def synced(self, fd: int, *, data_only: bool) -> None: ...
    def synced_folder(self, path: str) -> None: ...
    def renamed(self, source: str, target: str) -> None: ...
    def unlinked(self, path: str) -> None: ...
    def made_folder(self, path: str) -> None: ...
    def closed(self, fd: int) -> None: ...


_recorder: Recorder | None = None


def install_recorder(recorder: Recorder | None) -> Recorder | None:
    """Install ``recorder`` (``None`` removes it); return the previous one."""
    global _recorder
    previous, _recorder = _recorder, recorder
    return previous


def current_recorder() -> Recorder | None:
    """The installed recorder, if any."""
    return _recorder


def open_file(path: str | Path, flags: int, mode: int = 0o666) -> int:
    """``os.open``; a recorder learns whether the file was created or truncated."""
    if _recorder is None:
        return os.open(path, flags, mode)
    existed = flags & _CREATE_FLAG == 0 or os.path.lexists(path)
    fd = os.open(path, flags, mode)
    _recorder.opened(
        fd,
        os.path.abspath(path),
        created=not existed,
        truncated=existed and bool(flags & _TRUNCATE_FLAG),
    )
    return fd


def close(fd: int) -> None:
    """``os.close``."""
    os.close(fd)
    if _recorder is not None:
        _recorder.closed(fd)


def write(fd: int, data: bytes | memoryview) -> int:
    """``os.write``: one call, returns how many bytes went out."""
    written = os.write(fd, data)
    if _recorder is not None:
        _recorder.wrote(fd, os.lseek(fd, 0, os.SEEK_CUR) - written, bytes(data[:written]))
    return written


def write_all(fd: int, data: bytes | memoryview) -> None:
    """:func:`write` until every byte of ``data`` is out (a short write continues)."""
    view = memoryview(data)
    while view:
        view = view[write(fd, view) :]


def writev(fd: int, buffers: Sequence[bytes | memoryview]) -> int:
    """``os.writev``: one call, returns how many bytes went out."""
    written = os.writev(fd, buffers)
    if _recorder is not None:
        data = b"".join(bytes(buffer) for buffer in buffers)[:written]
        _recorder.wrote(fd, os.lseek(fd, 0, os.SEEK_CUR) - written, data)
    return written


def truncate(fd: int, size: int) -> None:
    """``os.ftruncate``."""
    os.ftruncate(fd, size)
    if _recorder is not None:
        _recorder.truncated(fd, size)


def fsync(fd: int) -> None:
    """``os.fsync``: the file's data and metadata reach the disk."""
    if _recorder is None or _recorder.perform_syncs:
        os.fsync(fd)
    if _recorder is not None:
        _recorder.synced(fd, data_only=False)


def fdatasync(fd: int) -> None:
    """``os.fdatasync`` where it exists (``os.fsync`` elsewhere): data and size."""
    if _recorder is None or _recorder.perform_syncs:
        getattr(os, "fdatasync", os.fsync)(fd)
    if _recorder is not None:
        _recorder.synced(fd, data_only=True)


def sync_folder(directory: str | Path) -> None:
    """fsync a folder, so the names created, renamed or removed in it persist (POSIX)."""
    if os.name != "posix":
        return
    if _recorder is None or _recorder.perform_syncs:
        fd = os.open(directory, _FOLDER_FLAGS)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    if _recorder is not None:
        _recorder.synced_folder(os.path.abspath(directory))


def replace(source: str | Path, target: str | Path) -> None:
    """``os.replace``."""
    os.replace(source, target)
    if _recorder is not None:
        _recorder.renamed(os.path.abspath(source), os.path.abspath(target))


def rename(source: str | Path, target: str | Path) -> None:
    """``os.rename``."""
    os.rename(source, target)
    if _recorder is not None:
        _recorder.renamed(os.path.abspath(source), os.path.abspath(target))


def unlink(path: str | Path) -> None:
    """``os.unlink``."""
    os.unlink(path)
    if _recorder is not None:
        _recorder.unlinked(os.path.abspath(path))


def make_folders(directory: str | Path, *, durable: bool | None = None) -> list[str]:
    """``mkdir -p``: create every missing folder of ``directory``; return those created.

    With fsync on (``durable`` defaults to ``fsync_enabled()``), each created
    folder is made durable in its parent: the parent is synced once the new
    folders exist, so a power cut cannot take a folder away with every synced
    file inside it.
    """
    missing: list[str] = []
    current = os.path.abspath(directory)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    created: list[str] = []
    for folder in reversed(missing):
        try:
            os.mkdir(folder)
        except FileExistsError:
            # Another process made it and may not have synced its parent yet:
            # sync it here too before saying the folder is there.
            if not os.path.isdir(folder):
                raise
        else:
            created.append(folder)
            if _recorder is not None:
                _recorder.made_folder(folder)
    if missing and (fsync_enabled() if durable is None else durable):
        for folder in reversed(missing):
            sync_folder(os.path.dirname(folder))
    return created
