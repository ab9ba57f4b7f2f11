"""Fixtures shared by the test modules (helpers without fixtures: ``support``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fermilink_state import _clock
from support import FROZEN_UTC, FaultInjector, Twin, freeze_both, load_reference


@pytest.fixture
def twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Twin]:
    """Runs operations with the reference and with us, both clocks frozen."""
    reference = load_reference()
    freeze_both(monkeypatch, reference, FROZEN_UTC)
    try:
        yield Twin(reference, tmp_path)
    finally:
        _clock.freeze(None)


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> FaultInjector:
    """Fault injection into the atomic writer's system calls, with fsync on."""
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "1")
    return FaultInjector(monkeypatch)


@pytest.fixture
def set_umask() -> Iterator[Callable[[int], int]]:
    """A setter for the process umask; the old umask comes back after the test."""
    previous = os.umask(0o022)
    os.umask(previous)
    try:
        yield os.umask
    finally:
        os.umask(previous)
