"""create_if_missing: of the processes and threads creating one file, one writes it.

The first existence check is outside the lock (the common case, a file that
exists, costs no lock); the second, under the lock, is what keeps a writer
that waited there from overwriting a file created meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest

import fermilink_state as fs
from fermilink_state import _create
from support_concurrency import SEED

pytestmark = pytest.mark.timeout(60)

ROW_LINE = "7\tc0ffee\taccepted\truntime\t0.5\tappended while the creator waited\n"


@dataclass(frozen=True)
class Creator:
    """An ensure_* writer, and what another writer adds to its file meanwhile."""

    name: str
    ensure: Callable[[Path], bool]
    create_and_add: Callable[[Path], None]  # runs under the lock: create, then add
    added: str  # text that must survive


def _ensure_memory(path: Path) -> bool:
    return fs.ensure_memory_file(path, **SEED)


ROW = {
    "iteration": 7,
    "commit": "c0ffee",
    "status": "accepted",
    "primary_metric_name": "runtime",
    "primary_metric_value": 0.5,
    "description": "appended while the creator waited",
}


def _create_ledger_and_append(path: Path) -> None:
    fs.append_results(path, [ROW])


def _create_memory_and_record(path: Path) -> None:
    fs.ensure_memory_file(path, **SEED)
    with fs.edit_memory(path) as document:
        document.append("### Open hypotheses", "- added while the creator waited")


CREATORS = [
    Creator("ensure_results_file", fs.ensure_results_file, _create_ledger_and_append, ROW_LINE),
    Creator(
        "ensure_memory_file",
        _ensure_memory,
        _create_memory_and_record,
        "- added while the creator waited\n",
    ),
]


@pytest.mark.parametrize("creator", CREATORS, ids=lambda creator: creator.name)
def test_creator_waiting_for_the_lock_keeps_what_was_written_meanwhile(
    creator: Creator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "campaign" / "file"
    path.parent.mkdir()
    real_locked = fs.locked  # what _create.locked is
    past_first_check = threading.Event()

    def observed_locked(target: Path) -> AbstractContextManager[None]:
        past_first_check.set()  # it found no file and now wants the lock
        return real_locked(target)

    monkeypatch.setattr(_create, "locked", observed_locked)
    outcome: list[bool] = []
    with fs.locked(path):
        creator_thread = threading.Thread(target=lambda: outcome.append(creator.ensure(path)))
        creator_thread.start()
        assert past_first_check.wait(30), "the creator never reached the lock"
        creator.create_and_add(path)  # reentrant: this thread holds the lock
    creator_thread.join(30)
    assert outcome == [False], "the file existed when the creator got the lock"
    assert creator.added in path.read_text(encoding="utf-8"), "the creator overwrote it"


@pytest.mark.parametrize("creator", CREATORS, ids=lambda creator: creator.name)
def test_existing_file_is_not_rewritten(creator: Creator, tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"kept as it is\n")
    assert creator.ensure(path) is False
    assert path.read_bytes() == b"kept as it is\n"


def test_missing_file_is_created_with_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "results.tsv"
    assert fs.ensure_results_file(path) is True
    assert path.read_bytes() == (
        b"iteration\tcommit\tstatus\tprimary_metric_name\tprimary_metric_value\tdescription\n"
    )
