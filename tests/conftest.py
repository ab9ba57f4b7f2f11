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


@pytest.fixture(autouse=True)
def _no_lease_renewer_outlives_its_test() -> Iterator[None]:
    """Stop the lease renewers of run locks a test acquired and never released.

    A renewer is a thread: left running into later tests of the worker, it
    would make their ``fork()`` unsafe (Python 3.12 warns) and renew a lock
    nobody holds any more.
    """
    yield
    from fermilink_state import _runlock

    for path in list(_runlock._renewers):
        _runlock._stop_holding(Path(path), join=False)
