"""The library's clock: every writer that stamps a time asks this module."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Final

# Freezes the clock of every process that has it in its environment: the
# ``frozen_utc`` fixture sets it, so processes a test starts (spawned ones
# too, which share no memory with it) stamp the same time.
FROZEN_ENV: Final = "FERMILINK_STATE_FROZEN_UTC"

_frozen: str | None = None


def utc_now_z() -> str:
    """Return the current UTC time as ISO 8601 with a ``Z`` suffix.

    Same format as the reference (``2026-01-02T03:04:05.678901Z``), or the
    frozen value set by :func:`freeze`, else the value of the
    ``FERMILINK_STATE_FROZEN_UTC`` environment variable when it is set.
    """
    if _frozen is not None:
        return _frozen
    frozen = os.environ.get(FROZEN_ENV)
    if frozen:
        return frozen
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def freeze(text: str | None) -> None:
    """Make :func:`utc_now_z` return ``text`` in this process until called with ``None``."""
    global _frozen
    _frozen = text


def is_frozen() -> bool:
    """Whether :func:`freeze` has fixed the clock."""
    return _frozen is not None
