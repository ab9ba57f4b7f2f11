"""Reading a whole file that another host may be replacing at that instant.

A writer replaces a JSON file by renaming a temp over it. On NFS and FUSE,
when the old file is open on the writer's host (any reader there), that
host's client first renames the old file aside (NFS's ``.nfsXXXX`` silly
rename, FUSE's ``.fuse_hiddenXXXX``) and only then moves the new one in: in
between, other hosts find no file at all. Read on such a filesystem, a
missing file is looked for again for a moment before it counts as missing;
on a local filesystem a rename is atomic and the first answer is final.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Final

# When to look again after a miss on a shared filesystem (seconds after the
# previous look): ~0.1 s in all, spent only on a file that is really missing.
# The gap is two renames by one client: microseconds on FUSE, two round trips
# to the server on NFS.
LOOK_AGAIN_AFTER: Final = (0.0, 0.001, 0.004, 0.016, 0.064)
_READ_FLAGS: Final = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _shared(folder: str) -> bool:
    from fermilink_state._filesystems import filesystem_of  # on first miss: import time

    try:
        return filesystem_of(folder).shared
    except OSError:  # no folder: nothing can be replacing the file
        return False


def read_replaced(path: str) -> tuple[bytes, os.stat_result]:
    """The bytes of ``path`` and the ``fstat`` of the file read.

    Raises ``FileNotFoundError`` (from opening or reading) only once the file
    is missing for certain: at once on a local filesystem, after
    :data:`LOOK_AGAIN_AFTER` on one that other hosts may share, each look a
    whole new read. Other errors are raised as they come.
    """
    waits: Iterator[float] | None = None
    while True:
        try:
            return read_once(path)
        except FileNotFoundError:
            if waits is None:
                if not _shared(os.path.dirname(os.path.abspath(path))):
                    raise
                waits = iter(LOOK_AGAIN_AFTER)
            wait = next(waits, None)
            if wait is None:
                raise
            time.sleep(wait)


def read_once(path: str) -> tuple[bytes, os.stat_result]:
    """The bytes of ``path`` and the ``fstat`` of the file read: one look, no waiting.

    ``os.open`` and ``os.read``: half the cost of ``open().read()`` for a small
    file, which the fence pays at every write.
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        # On FUSE, fstat and read of a file already open can fail with ENOENT
        # too: the filesystem looks the file up by its name again.
        identity = os.fstat(fd)
        pieces = []
        while piece := os.read(fd, max(identity.st_size + 1, 65536)):
            pieces.append(piece)
        return b"".join(pieces), identity
    finally:
        os.close(fd)
