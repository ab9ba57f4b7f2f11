"""Volatile values of a campaign (timestamps, pids, host names, temp paths) made stable.

Plain code with no pytest: ``campaign_snapshot`` stores and compares campaign
files through :class:`Normalization`, so golden files do not change from run
to run.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, final

# Volatile values and what they become.
_UTC_STAMP: Final = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})"
    r"|\b\d{8}T\d{6}\d*Z\b"  # the compact form of quarantined file names
)
_PID_FIELD: Final = re.compile(r"(\bpid[\"']?\s*[:=]\s*)\d+", re.IGNORECASE)
_TEMP_FILE: Final = re.compile(r"\.[^\s/\"'`]+\.[^\s/\"'`]+\.\d+\.[0-9a-f]{8}\.tmp\b")
_COMMIT: Final = re.compile(r"\b[0-9a-f]{7,40}\b")
_PID_KEYS: Final = frozenset({"pid", "holder_pid", "owner_pid"})
_PID_TIME_KEYS: Final = frozenset({"pid_started_at"})
_HOST_KEYS: Final = frozenset({"hostname", "host"})

UTC_PLACEHOLDER: Final = "<utc>"
PID_PLACEHOLDER: Final = "<pid>"
PID_START_PLACEHOLDER: Final = "<pid-start>"
HOST_PLACEHOLDER: Final = "<host>"
PROJECT_PLACEHOLDER: Final = "<project>"
TMP_PLACEHOLDER: Final = "<tmp>"
TEMP_FILE_PLACEHOLDER: Final = "<temp-file>"
COMMIT_PLACEHOLDER: Final = "<commit>"


@final
@dataclass(frozen=True, slots=True)
class Normalization:
    """Which volatile values :meth:`CampaignSnapshot.assert_match` replaces by placeholders.

    On by default: UTC timestamps (``<utc>``, frozen clock or not), process
    ids (``<pid>``, and ``pid_started_at`` as ``<pid-start>``), this host's
    name (``<host>``), the project's folder (``<project>``), other paths in
    the temp folder (``<tmp>``) and atomic-write temp names
    (``<temp-file>``). Off by default: ``commits`` (hex strings of 7 to 40
    digits become ``<commit>``). ``replace`` adds ``(regex, replacement)``
    pairs applied last, in order.
    """

    timestamps: bool = True
    pids: bool = True
    hostnames: bool = True
    temp_paths: bool = True
    commits: bool = False
    replace: Sequence[tuple[str | re.Pattern[str], str]] = ()

    def text(self, text: str, *, project_root: Path | None = None) -> str:
        """``text`` with every volatile value this normalisation covers replaced."""
        if self.temp_paths:
            text = _replace_paths(text, project_root)
        if self.timestamps:
            text = _UTC_STAMP.sub(UTC_PLACEHOLDER, text)
        if self.pids:
            text = _PID_FIELD.sub(rf"\g<1>{PID_PLACEHOLDER}", text)
        if self.hostnames:
            host = socket.gethostname()
            # A one-letter host name would rewrite ordinary words.
            if len(host) >= 3:
                text = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-])", HOST_PLACEHOLDER, text)
        if self.commits:
            text = _COMMIT.sub(COMMIT_PLACEHOLDER, text)
        for pattern, replacement in self.replace:
            text = re.sub(pattern, replacement, text)
        return text

    def json_value(self, value: Any, key: str | None = None, *, project_root: Path | None) -> Any:
        """A parsed JSON value normalised: known keys by name, every string as text."""
        if isinstance(value, dict):
            return {k: self.json_value(v, k, project_root=project_root) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json_value(item, key, project_root=project_root) for item in value]
        if self.pids and key in _PID_KEYS and isinstance(value, int) and value is not True:
            return PID_PLACEHOLDER
        if self.pids and key in _PID_TIME_KEYS and isinstance(value, int | float):
            return PID_START_PLACEHOLDER
        if self.hostnames and key in _HOST_KEYS and isinstance(value, str):
            return HOST_PLACEHOLDER
        if isinstance(value, str):
            return self.text(value, project_root=project_root)
        return value


def _replace_paths(text: str, project_root: Path | None) -> str:
    roots = []
    if project_root is not None:
        roots.append((os.path.abspath(project_root), PROJECT_PLACEHOLDER))
        real = os.path.realpath(project_root)
        if real != roots[0][0]:
            roots.append((real, PROJECT_PLACEHOLDER))
    for raw, placeholder in roots:
        text = text.replace(raw, placeholder)
    text = _TEMP_FILE.sub(TEMP_FILE_PLACEHOLDER, text)
    for temp in {tempfile.gettempdir(), os.path.realpath(tempfile.gettempdir())}:
        text = re.sub(rf"{re.escape(temp)}/[^\s\"'`]*", TMP_PLACEHOLDER, text)
    return text


DEFAULT_NORMALIZATION: Final = Normalization()


def normalized_bytes(
    name: str, data: bytes, normalization: Normalization, *, project_root: Path | None
) -> bytes:
    """A campaign file's bytes as they are stored in a golden file.

    JSON objects are parsed, normalised by key and value and written back as
    the library writes JSON; everything else is normalised as UTF-8 text
    (undecodable bytes are kept as they are).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    if name.endswith(".json"):
        try:
            payload = json.loads(text)
        except ValueError:
            pass
        else:
            value = normalization.json_value(payload, project_root=project_root)
            return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return normalization.text(text, project_root=project_root).encode("utf-8")


Normalization.__module__ = "fermilink_state.testing"
