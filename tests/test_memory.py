"""Memory writers when the file looks missing for an instant (NFS, FUSE).

Another host's writer replacing ``memory.md`` can make it look missing:
NFS renames a replaced file that is open (a silly rename) and FUSE does the
same (``.fuse_hidden``), in two steps that another client sees apart. Only a
look under the lock may conclude that the file is gone. These tests take the
file away before the call and put it back when the call takes the lock, as
the other host's writer finishing its replace would.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fermilink_state as fs
from fermilink_state import _locking, _memory
from support import WORKER_MEMORY_ARGS
from support_concurrency import Campaign, seed_campaign

BACKENDS = ["flock", "strict", "soft"]


def _event(path: Path, commit: str = "c-replaced") -> None:
    fs.record_campaign_event(
        path,
        commit=commit,
        primary_metric_name="runtime",
        primary_metric_value=1.5,
        status="rejected",
        description="seen while replaced",
    )


def _everything_under(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*"))


def _missing_until_locked(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Move ``path`` aside now; move it back when a memory writer takes a lock."""
    aside = path.with_name(path.name + ".being-replaced")
    os.rename(path, aside)
    real_locked = _locking.locked

    @contextlib.contextmanager
    def locked(target: Path, **kwargs: Any) -> Iterator[None]:
        if os.path.exists(aside):
            os.rename(aside, path)  # the other host's replace completes
        with real_locked(target, **kwargs):
            yield

    monkeypatch.setattr(_memory, "locked", locked)


@pytest.fixture(params=BACKENDS)
def campaign(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Campaign:
    """A seeded campaign written with each lock backend."""
    monkeypatch.setenv("FERMILINK_STATE_LOCK", request.param)
    return seed_campaign(tmp_path / "project")


def test_an_event_reaches_a_memory_file_that_looked_missing(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    _missing_until_locked(monkeypatch, campaign.memory)
    _event(campaign.memory)
    text = campaign.memory.read_bytes().decode("utf-8")
    assert text.count("(c-replaced, runtime=1.5)") == 2, text


def test_an_archive_copies_a_worker_memory_that_looked_missing(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = fs.worker_memory_path(campaign.root)
    fs.reset_worker_memory_file(worker, **WORKER_MEMORY_ARGS)
    written = worker.read_bytes()
    _missing_until_locked(monkeypatch, worker)
    run_dir = fs.runs_root(campaign.root) / "iter_0003"
    assert fs.archive_worker_memory(worker, run_dir) == run_dir / fs.WORKER_MEMORY_FILENAME
    assert (run_dir / fs.WORKER_MEMORY_FILENAME).read_bytes() == written


@pytest.fixture(params=BACKENDS)
def empty_campaign_folder(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """``tmp_path/project/.fermilink-optimize``, empty, written with each lock backend."""
    monkeypatch.setenv("FERMILINK_STATE_LOCK", request.param)
    folder = tmp_path / "project" / ".fermilink-optimize"
    folder.mkdir(parents=True)
    return folder


def test_an_event_on_a_missing_memory_file_changes_nothing(
    empty_campaign_folder: Path, tmp_path: Path
) -> None:
    _event(empty_campaign_folder / "memory.md")
    assert _everything_under(tmp_path) == ["project", "project/.fermilink-optimize"]


def test_an_archive_of_a_missing_worker_memory_changes_nothing(
    empty_campaign_folder: Path, tmp_path: Path
) -> None:
    worker = empty_campaign_folder / "worker.md"
    assert fs.archive_worker_memory(worker, empty_campaign_folder / "runs" / "iter_0001") is None
    assert _everything_under(tmp_path) == ["project", "project/.fermilink-optimize"]


def test_an_archive_of_a_folder_under_the_soft_lock_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", "soft")
    source = tmp_path / "worker_memory.md"
    source.mkdir()
    assert fs.archive_worker_memory(source, tmp_path / "runs" / "iter_0001") is None
    assert not (tmp_path / "runs").exists()
