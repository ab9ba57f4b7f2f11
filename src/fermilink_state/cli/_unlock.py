"""``fermilink-state unlock``: clear a run lock whose holder is gone."""

from __future__ import annotations

import contextlib
from pathlib import Path

from fermilink_state import _fileops
from fermilink_state._errors import RunLockHeld
from fermilink_state._layout import run_lock_path
from fermilink_state._locking import locked
from fermilink_state._runlock import RunLockStatus, run_lock_status
from fermilink_state.cli._status import locate_campaign


def unlock_campaign(root: Path, *, force: bool = False) -> RunLockStatus:
    """Remove the run lock of the campaign at ``root`` unless a live process holds it.

    Returns the lock's status as found (``"inactive"``: there was nothing to
    remove). A live holder, or one on another host, raises
    :class:`RunLockHeld` unless ``force=True``. The check and the removal
    happen under the lock file's own lock, so a campaign that is just taking
    the lock over is never removed by mistake.
    """
    project = locate_campaign(root)
    path = run_lock_path(project)
    with locked(path):
        status = run_lock_status(project)
        if status.state == "inactive":
            return status
        if status.state == "active" and not force:
            raise RunLockHeld(path, status.holder, status.reason)
        with contextlib.suppress(FileNotFoundError):
            _fileops.unlink(path)
    return status
