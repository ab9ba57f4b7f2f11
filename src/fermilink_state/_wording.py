"""Small helpers for the words of messages."""

from __future__ import annotations


def counted(number: int, noun: str) -> str:
    """``"1 row"``, ``"2 rows"``, ``"0 rows"``: a count and its noun, agreeing."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
