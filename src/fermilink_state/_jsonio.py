"""JSON objects on disk: atomic writes, a strict reader and a forgiving one."""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fermilink_state import _fileops
from fermilink_state._atomic import atomic_write_text
from fermilink_state._errors import StateCorruptError, StateCorruptWarning
from fermilink_state._replaced_files import read_replaced

QUARANTINE_MARKER = ".corrupt-"


def dump_json(payload: dict[str, Any]) -> str:
    """The reference's serialisation: 2-space indent, sorted keys, final newline."""
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def write_json_file(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically and durably (parents created)."""
    atomic_write_text(path, dump_json(payload))


def _parse_object(path: Path, data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StateCorruptError(path, f"not UTF-8 ({error.reason} at byte {error.start})") from None
    if not text.strip():
        raise StateCorruptError(path, "empty file, expected a JSON object")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise StateCorruptError(
            path, f"invalid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    except RecursionError:
        raise StateCorruptError(path, "JSON nested too deeply") from None
    if not isinstance(payload, dict):
        raise StateCorruptError(path, f"expected a JSON object, found {type(payload).__name__}")
    return payload


def read_json_file(path: Path) -> dict[str, Any]:
    """Strictly read a JSON object.

    Returns the dict; raises ``FileNotFoundError`` if ``path`` is missing and
    :class:`StateCorruptError` (with ``.path`` and ``.reason``) if it is not a
    UTF-8 JSON object. Never moves or changes the file. On a filesystem other
    hosts may share, a file that looks missing is looked for again for ~0.1 s:
    another host may be replacing it.
    """
    return _parse_object(path, read_replaced(os.fspath(path))[0])


def quarantine_path(path: Path) -> Path:
    """A free name ``<name>.corrupt-<UTC timestamp>[-N]`` beside ``path``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    candidate = path.with_name(f"{path.name}{QUARANTINE_MARKER}{stamp}")
    counter = 1
    while os.path.lexists(candidate):
        candidate = path.with_name(f"{path.name}{QUARANTINE_MARKER}{stamp}-{counter}")
        counter += 1
    return candidate


def load_json_file(path: Path) -> dict[str, Any] | None:
    """Read a JSON object, or ``None`` if missing, unreadable or not an object.

    Compatible with the reference, with one repair: a file that exists but does
    not parse is first moved aside to ``<name>.corrupt-<UTC timestamp>`` and a
    :class:`StateCorruptWarning` is issued, so the caller's next write cannot
    destroy what it held. On a filesystem other hosts may share, a file that
    looks missing is looked for again for ~0.1 s: another host may be
    replacing it.
    """
    path = Path(path)
    try:
        data, identity = read_replaced(os.fspath(path))
    except OSError:
        return None
    try:
        return _parse_object(path, data)
    except StateCorruptError as error:
        _move_aside(path, identity, error)
        return None


def _move_aside(path: Path, identity: os.stat_result, error: StateCorruptError) -> None:
    target = quarantine_path(path)
    with contextlib.suppress(OSError):
        # Move only the file we judged: a writer may have replaced it meanwhile.
        if not os.path.samestat(os.stat(path), identity):
            return
        _fileops.rename(path, target)
        if _fileops.fsync_enabled():
            _fileops.sync_folder(path.parent)
        warnings.warn(
            StateCorruptWarning(
                f"{path}: {error.reason}; moved it aside to {target.name} and continued "
                "as if it were missing. Inspect that file and restore what you need."
            ),
            stacklevel=3,
        )


def load_state(path: Path) -> dict[str, Any] | None:
    """Read ``state.json`` like :func:`load_json_file`."""
    return load_json_file(path)


def write_state(path: Path, payload: dict[str, Any]) -> None:
    """Write ``state.json`` atomically and durably."""
    write_json_file(path, payload)
