"""Which filesystem a campaign folder is on, and whether other hosts share it.

``flock`` excludes only the processes of one kernel: on NFS, Lustre, GPFS,
CIFS, FUSE and the like, two clients each get the lock at once. The kernel's
name for a folder's filesystem type is read from ``/proc/self/mountinfo``
(the mount whose device is the folder's ``st_dev``): ~50 us once per device,
where loading ctypes for ``statfs(2)`` costs ~3 ms. ``statfs``'s ``f_type``
through ctypes is the fallback when mountinfo has no answer.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Final

_MOUNTINFO: Final = "/proc/self/mountinfo"

# Kernel filesystem type names (mountinfo's fstype field, before any ".subtype").
SHARED_FILESYSTEMS: Final = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "lustre",
        "gpfs",
        "beegfs",
        "ceph",
        "glusterfs",
        "fuse",
        "fuseblk",
        "9p",
        "afs",
        "coda",
        "ncpfs",
        "ocfs2",
        "gfs2",
        "orangefs",
        "pvfs2",
        "panfs",
        "wekafs",
        "vboxsf",
        "virtiofs",
        "davfs",
    }
)
# statfs(2) f_type magic numbers of the same filesystems (linux/magic.h and vendors').
_SHARED_MAGIC: Final = {
    0x6969: "nfs",
    0xFF534D42: "cifs",
    0xFE534D42: "smb3",
    0x517B: "smbfs",
    0x0BD00BD0: "lustre",
    0x47504653: "gpfs",
    0x19830326: "beegfs",
    0x00C36400: "ceph",
    0x65735546: "fuse",
    0x01021997: "9p",
    0x5346414F: "afs",
    0x6B414653: "afs",
    0x73757245: "coda",
    0x564C: "ncpfs",
    0x7461636F: "ocfs2",
    0x01161970: "gfs2",
    0x20030528: "orangefs",
    0xAAD7AAEA: "panfs",
    0x786F4256: "vboxsf",
}

# A few local ones, so that a message can name them.
_LOCAL_MAGIC: Final = {
    0xEF53: "ext4",
    0x58465342: "xfs",
    0x9123683E: "btrfs",
    0x01021994: "tmpfs",
    0x794C7630: "overlay",
    0x2FC12FC1: "zfs",
}


@dataclass(frozen=True, slots=True)
class Filesystem:
    """A folder's filesystem: its kernel type name (``None`` if unknown) and sharing."""

    type_name: str | None
    shared: bool


_by_device: dict[int, Filesystem] = {}
_guard = threading.Lock()


def filesystem_of(folder: str) -> Filesystem:
    """The filesystem ``folder`` is on; cached per device, so one lookup per mount."""
    device = os.stat(folder).st_dev
    found = _by_device.get(device)
    if found is None:
        type_name = _mountinfo_type(device, folder) or _statfs_type(folder)
        found = Filesystem(type_name, is_shared_type(type_name))
        with _guard:
            _by_device[device] = found
    return found


def is_shared_type(type_name: str | None) -> bool:
    """Whether a filesystem of this kernel type name may be mounted by several hosts."""
    if type_name is None:
        return False
    return type_name.partition(".")[0] in SHARED_FILESYSTEMS


def _mountinfo_type(device: int, folder: str) -> str | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open(_MOUNTINFO, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(device)}:{os.minor(device)}"
    real = os.path.realpath(folder)
    by_prefix: tuple[int, str] | None = None
    for line in lines:
        # "<id> <parent> <major:minor> <root> <mount point> <options> [tags] - <fstype> ..."
        fields, _, tail = line.partition(" - ")
        parts = fields.split(" ")
        tail_parts = tail.split(" ")
        if len(parts) < 5 or not tail_parts[0]:
            continue
        if parts[2] == wanted:
            return tail_parts[0]
        # btrfs subvolumes report a device of their own: fall back to the
        # longest mount point above the folder.
        point = parts[4].replace("\\040", " ")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and (by_prefix is None or len(point) >= by_prefix[0]):
            by_prefix = (len(point), tail_parts[0])
    return by_prefix[1] if by_prefix else None


def _statfs_type(folder: str) -> str | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only when /proc is missing: ctypes costs ~3 ms to load

    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(512)  # struct statfs is 120 bytes on 64-bit Linux
    if libc.statfs(os.fsencode(folder), buffer) != 0:
        return None
    # f_type is the first member on every Linux ABI (a long, or an int on 32-bit).
    magic = ctypes.c_long.from_buffer(buffer).value & 0xFFFFFFFF
    return _SHARED_MAGIC.get(magic) or _LOCAL_MAGIC.get(magic, f"0x{magic:x}")
