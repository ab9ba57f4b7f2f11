"""The pytest plugin: fixtures and hooks only (enable with ``-p fermilink_state``)."""

from __future__ import annotations
