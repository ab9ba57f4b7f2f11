"""The library's clock: every writer that stamps a time asks this module."""

from __future__ import annotations

from datetime import UTC, datetime

_frozen: str | None = None


def utc_now_z() -> str:
    """Return the current UTC time as ISO 8601 with a ``Z`` suffix.

    Same format as the reference (``2026-01-02T03:04:05.678901Z``), or the
    frozen value set by :func:`freeze` (the ``frozen_utc`` fixture uses it).
    """
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def freeze(text: str | None) -> None:
    """Make :func:`utc_now_z` return ``text`` until called with ``None``."""
    global _frozen
    _frozen = text


def is_frozen() -> bool:
    """Whether :func:`freeze` has fixed the clock."""
    return _frozen is not None
