"""A campaign as a Hypothesis state machine: append, event, state, crash, resume.

Hypothesis runs random sequences of the rules below against a real campaign
folder and checks after every step that the files say what a model of the
campaign says: every complete row in order, every event in the progress log,
the last state written. ``crash`` leaves what a controller killed mid-write
leaves (a torn row, a run lock held by a dead process); ``resume`` is the
next controller taking the campaign over.
"""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import fermilink_state as fs
from fermilink_state.strategies import result_rows, states
from fermilink_state.testing import seed_project

TORN = "TORN"
PROGRESS_LOG = "### Progress log"
EVENT_STATUSES = st.sampled_from(["accepted", "rejected"])
ROWS = result_rows(iterations=st.integers(1, 10_000)).filter(lambda row: row.commit != TORN)


@functools.cache
def _dead_pid() -> int:
    # A process that has exited and was reaped: its pid runs nothing. One is
    # enough for the whole run (a new process would hardly get it so soon).
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _key(row: fs.ResultRow) -> tuple[str, ...]:
    # repr: a NaN metric equals itself, -0.0 differs from 0.0.
    return tuple(repr(value) for value in row.as_dict().values())


def _read_rows(path: Path) -> list[fs.ResultRow]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fs.StateCorruptWarning)  # a torn row is skipped
        return [row for row in fs.read_results(path, strict=False) if row.commit != TORN]


class CampaignMachine(RuleBasedStateMachine):
    """One campaign folder, driven by random controller steps, checked against a model."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="campaign-machine-"))
        self.project = seed_project(self.folder / "project", results=[])
        self.rows: list[tuple[str, ...]] = []
        self.events = 0
        self.state: dict[str, Any] = self.project.read_state()
        self.crashed = False

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    @rule(row=ROWS)
    def append(self, row: fs.ResultRow) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", fs.StateCorruptWarning)
            fs.append_result(self.project.results_path, **row.as_dict())  # type: ignore[arg-type]
        # After a crash the torn last row is moved aside, and the warning says so.
        assert all("torn by a crash" in str(warning.message) for warning in caught)
        # Once read back, a row must stay as it is, in its place, whatever follows.
        last = _read_rows(self.project.results_path)[-1]
        assert last.iteration == row.iteration
        assert last.description == " ".join(row.description.split())
        self.rows.append(_key(last))

    @rule(status=EVENT_STATUSES, description=st.text(max_size=30))
    def event(self, status: str, description: str) -> None:
        fs.record_campaign_event(
            self.project.memory_path,
            commit="c1",
            primary_metric_name="runtime_seconds",
            primary_metric_value=0.5,
            status=status,
            description=description,
        )
        self.events += 1

    @rule(state=states())
    def write_state(self, state: dict[str, Any]) -> None:
        fs.write_state(self.project.state_path, state)
        self.state = state

    @rule(iteration=st.integers(1, 10_000), cut=st.floats(0.05, 0.95))
    def crash(self, iteration: int, cut: float) -> None:
        # A controller killed mid-append and mid-campaign: a torn last row and
        # a run lock whose holder is dead.
        cells = [str(iteration), TORN, "accepted", "runtime_seconds", "0.5", "cut short"]
        data = "\t".join(cells).encode("utf-8")
        with open(self.project.results_path, "ab+") as ledger:
            ledger.seek(-1, 2)
            # The writer was the library: its row started on a line of its own.
            fresh_line = b"" if ledger.read(1) == b"\n" else b"\n"
            ledger.write(fresh_line + data[: max(1, int(len(data) * cut))])
        fs.write_run_lock(
            self.project.run_lock_path,
            {
                "schema_version": 1,
                "pid": _dead_pid(),
                "hostname": socket.gethostname(),
                "started_at_utc": fs.utc_now_z(),
            },
        )
        self.crashed = True

    @precondition(lambda self: self.crashed)
    @rule()
    def resume(self) -> None:
        # The next controller finds the lock stale and takes the campaign over.
        assert fs.run_lock_status(self.project.root).state == "inactive_stale"
        payload = fs.acquire_run_lock(self.project.root, {"resumed": True})
        assert fs.run_lock_status(self.project.root).state == "active"
        assert payload["resumed"] is True
        assert fs.release_run_lock(self.project.root)
        self.crashed = False

    @invariant()
    def every_complete_row_is_read_back_in_order(self) -> None:
        assert [_key(row) for row in _read_rows(self.project.results_path)] == self.rows

    @invariant()
    def every_event_is_in_the_progress_log(self) -> None:
        lines = fs.read_memory(self.project.memory_path).section(PROGRESS_LOG) or []
        assert sum(line.startswith("- [") for line in lines) == self.events

    @invariant()
    def the_last_state_is_on_disk(self) -> None:
        assert fs.load_state(self.project.state_path) == self.state


CampaignMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
test_campaign_machine = CampaignMachine.TestCase
