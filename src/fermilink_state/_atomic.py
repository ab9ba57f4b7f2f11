"""Atomic, durable whole-file writes.

A write goes to a unique temp file in the target's folder (created with
``O_EXCL | O_NOFOLLOW``, so never through a planted symlink), is flushed and
fsynced, ``os.replace``d over the target, and the folder is fsynced. A crash at
any instant leaves the old or the new content. Temp names carry host and pid,
so the temps of a killed writer can be recognised and swept later.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Final

from fermilink_state import _fileops
from fermilink_state._errors import explain_write_error
from fermilink_state._fencing import check_fence
from fermilink_state._fileops import FSYNC_ENV, fsync_enabled
from fermilink_state._process import hostname, pid_is_running

__all__ = ["FSYNC_ENV", "fsync_enabled"]  # re-exported: older imports found them here
_NEW_FILE_MODE: Final = 0o666  # what open() asks for; the umask applies
# From this size on, a check passed to atomic_write_chunks runs while the disk
# writes; below it, the check is quick and the pages had better stay cached.
_EARLY_WRITEBACK: Final = 64 * 1024
_MAX_PIECES_PER_CALL: Final = 64  # well under any system's IOV_MAX (1024 on Linux)
_UNSAFE_HOST_CHARS: Final = re.compile(r"[^A-Za-z0-9_.-]")
# After the host prefix, exactly "<pid>.<8 hex>.tmp": a host whose name extends
# ours with dots (``node`` and ``node.5``) must not pass for one of our pids.
_TEMP_TAIL: Final = re.compile(r"([0-9]+)\.[0-9a-f]{8}\.tmp")


@functools.cache
def _host_tag() -> str:
    return _UNSAFE_HOST_CHARS.sub("_", hostname()) or "host"


def temp_prefix(target: Path) -> str:
    """The prefix of every temp name this host uses for ``target``."""
    return f".{target.name}.{_host_tag()}."


def _temp_name(target: Path) -> Path:
    return target.with_name(f"{temp_prefix(target)}{os.getpid()}.{os.urandom(4).hex()}.tmp")


def temp_owner_pid(target: Path, name: str) -> int | None:
    """The pid in ``name`` if it is one of this host's temps for ``target``."""
    prefix = temp_prefix(target)
    if not name.startswith(prefix):
        return None
    tail = _TEMP_TAIL.fullmatch(name, len(prefix))
    return int(tail.group(1)) if tail else None


def sweep_dead_temps(target: Path) -> list[Path]:
    """Remove temps of ``target`` left by writers on this host that have died."""
    removed: list[Path] = []
    try:
        entries = os.scandir(target.parent)
    except OSError:
        return removed
    prefix = temp_prefix(target)
    with entries:
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue  # most entries: no pattern match needed
            pid = temp_owner_pid(target, entry.name)
            if pid is None or pid == os.getpid() or pid_is_running(pid):
                continue
            with contextlib.suppress(OSError):
                _fileops.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _write_pieces(fd: int, pieces: Sequence[bytes | memoryview]) -> None:
    # One writev for the pieces of an edited file: every write call pays a
    # fixed cost in the filesystem (~10 us here), gathered pieces pay it once.
    if len(pieces) < 2 or not hasattr(os, "writev"):
        for piece in pieces:
            _fileops.write_all(fd, piece)
        return
    views = [memoryview(piece) for piece in pieces if len(piece)]
    while views:
        written = _fileops.writev(fd, views[:_MAX_PIECES_PER_CALL])
        while views and written >= len(views[0]):
            written -= len(views[0])
            del views[0]
        if written:
            views[0] = views[0][written:]


def _start_writeback(fd: int) -> None:
    # Linux starts writing a file's dirty pages back, without waiting, when told
    # they are not needed soon (pages still dirty or being written stay cached).
    # Elsewhere this is a no-op and the fsync does all the writing. Only worth
    # it for files whose check takes a while (see _EARLY_WRITEBACK).
    if sys.platform.startswith("linux") and hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    Creates missing parent folders. A new file gets ``0o666`` less the umask,
    as ``open()`` would give it; a replaced file keeps its mode. On any error
    the old file is untouched and the temp file is removed. ``durable=False``
    skips the fsyncs and the dead-temp sweep (for throwaway files; the write
    stays atomic); the default follows ``FERMILINK_STATE_FSYNC``.
    """
    atomic_write_chunks(path, (data,), durable=durable)


def atomic_write_chunks(
    path: Path,
    chunks: Iterable[bytes | memoryview],
    *,
    check: Callable[[], object] | None = None,
    durable: bool | None = None,
) -> None:
    """:func:`atomic_write_bytes` of the chunks one after the other, never joined.

    An edit of a large file passes slices of the old bytes around the new
    ones: joining them would copy the whole file once more. ``check`` runs
    once the data is in the temp file, before it is synced and put in place;
    an exception from it removes the temp, leaves ``path`` as it was and
    propagates. With fsync on, the temp's writeback is started first, so a
    slow check (say, a scan of the old bytes) runs while the disk writes.
    Raises :class:`RunLockLost`, writing nothing, when this process held the
    run lock of the campaign ``path`` is in and another process took it over.
    """
    check_fence(path)
    sync = fsync_enabled() if durable is None else durable
    try:
        keep_mode: int | None = os.stat(path).st_mode & 0o7777
    except OSError:
        keep_mode = None
        _fileops.make_folders(path.parent, durable=sync)  # (a file that exists has its folder)
    if durable is not False:
        sweep_dead_temps(path)
    temp = _temp_name(path)
    try:
        fd = _fileops.open_file(temp, _fileops.CREATE_NEW_FLAGS, _NEW_FILE_MODE)
    except OSError as error:
        raise explain_write_error(error, path) from error
    try:
        try:
            if keep_mode is not None and hasattr(os, "fchmod"):
                os.fchmod(fd, keep_mode)
            pieces = list(chunks)
            _write_pieces(fd, pieces)
            size = sum(map(len, pieces))
            if check is not None:
                if sync and size >= _EARLY_WRITEBACK:
                    _start_writeback(fd)
                check()
            if sync:
                _fileops.fsync(fd)
        finally:
            _fileops.close(fd)
        _fileops.replace(temp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            _fileops.unlink(temp)
        if isinstance(error, OSError):
            raise explain_write_error(error, path) from error
        raise
    if sync:
        _fileops.sync_folder(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8, newlines untouched."""
    # str.encode, not text.encode: a non-str raises TypeError, as write_text does.
    atomic_write_bytes(path, str.encode(text, "utf-8"))
