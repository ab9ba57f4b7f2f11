"""The ``fermilink-state`` command line (placeholder until the CLI lands)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    raise SystemExit("fermilink-state: the command line is not built yet")
