"""The installed distribution's version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__: str = version("fermilink-state")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"
