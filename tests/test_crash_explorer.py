"""Nothing lost on a kill or a power cut: every writer against every crash state.

Each workload runs once under the recorder; the explorer rebuilds every state
a kill (every prefix of the file operations) or a power cut (synced ops plus
ALICE's three passes over the unsynced ones) can leave, and checks the
campaign's invariants in each (see ``support_crash``). The counts are printed
(``pytest -rP`` shows them). The explorer is shown to see what it exists for:
the reference module and mutated copies of this package fail it.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest

import fermilink_state
from fermilink_state.testing._crashstates import MODELS, CrashModel, record
from support_crash import (
    REFERENCE,
    WORKLOADS,
    Workload,
    controller_by_hand,
    count_states,
    in_package_copy,
    record_iterations,
    run_workload,
    setup_campaign,
)

pytestmark = pytest.mark.crash  # about two minutes: run by `tox -e crash`
MINIMUM_STATES = 1_000
BY_NAME = {workload.name: workload for workload in WORKLOADS}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda workload: workload.name)
@pytest.mark.timeout(300)
def test_every_crash_state_keeps_the_campaign(
    workload: Workload, model: CrashModel, tmp_path: Path
) -> None:
    outcome = run_workload(workload, model, tmp_path)
    print(outcome.summary())
    assert outcome.states > 0
    assert outcome.violations == 0, "\n".join(outcome.first)


@pytest.mark.timeout(300)
def test_the_workloads_explore_at_least_a_thousand_crash_states(tmp_path: Path) -> None:
    counts = {workload.name: count_states(workload, tmp_path) for workload in WORKLOADS}
    for name, by_model in counts.items():
        print(f"{name}: kill {by_model['kill']}, power {by_model['power']}")
    total = sum(sum(by_model.values()) for by_model in counts.values())
    print(f"total: {total} crash states")
    assert total >= MINIMUM_STATES


def test_the_recording_names_each_operations_library_call(tmp_path: Path) -> None:
    workload = BY_NAME["record_iteration"]
    workload.prepare(tmp_path / "project")
    recording = record(functools.partial(record_iterations, iterations=1), tmp_path / "project")
    changes = [op for op in recording.ops if op.kind not in ("mark",)]
    assert {op.call for op in changes} == {"record_iteration"}
    sub_calls = [op.stack[1] for op in changes]
    # The row, durably, then the event, then the state: in that order.
    order = list(dict.fromkeys(sub_calls))
    assert order == ["append_result", "record_campaign_event", "write_state"]
    row_sync = next(i for i, op in enumerate(changes) if op.kind == "fdatasync")
    first_event_op = sub_calls.index("record_campaign_event")
    assert row_sync < first_event_op


# ------------------------------------------------ the explorer sees the bugs


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.timeout(300)
def test_the_reference_fails_the_explorer(model: CrashModel, tmp_path: Path) -> None:
    pytest.importorskip(REFERENCE, reason="the reference (fermilink==0.3.10) is not installed")
    total = 0
    for workload in (
        Workload("reference-setup", setup_campaign, BY_NAME["setup"].prepare),
        Workload("reference-controller", controller_by_hand, BY_NAME["appends"].prepare),
    ):
        outcome = run_workload(workload, model, tmp_path, library=REFERENCE, trace_pathlib=True)
        print(outcome.summary())
        total += outcome.violations
    assert total > 0


class Mutant(NamedTuple):
    """A break of one guarantee, in a copy of the package, and where it shows."""

    file: str
    find: str
    replace: str
    workload: Workload
    model: CrashModel


MUTANTS = {
    "no-sync-before-rename": Mutant(
        "_atomic.py",
        "            if sync:\n                _fileops.fsync(fd)\n",
        "            pass\n",
        BY_NAME["memory"],
        "power",
    ),
    "no-folder-sync-after-rename": Mutant(
        "_atomic.py",
        "    if sync:\n        _fileops.sync_folder(path.parent)\n",
        "",
        BY_NAME["setup"],
        "power",
    ),
    "append-not-durable": Mutant(
        "_results.py",
        "        _fileops.fdatasync(fd)\n",
        "        pass\n",
        BY_NAME["record_iteration"],
        "power",
    ),
    "new-folder-not-durable": Mutant(
        "_fileops.py",
        "            sync_folder(os.path.dirname(folder))\n",
        "            pass\n",
        BY_NAME["setup"],
        "power",
    ),
    "row-after-state": Mutant(
        "_iteration.py",
        "    append_result(results_path(project_root), **row)\n",
        "    state and write_state(state_path(project_root), dict(state))\n"
        "    append_result(results_path(project_root), **row)\n",
        BY_NAME["record_iteration"],
        "kill",
    ),
    "tail-not-repaired": Mutant(
        "_results.py",
        "            size, prefix = _repair_tail(fd, path, size)\n",
        "            prefix = '\\n'\n",
        BY_NAME["torn_partial"],
        "kill",
    ),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
@pytest.mark.timeout(300)
def test_a_mutated_copy_of_this_package_fails_the_explorer(mutant: str, tmp_path: Path) -> None:
    file_name, find, replace, workload, model = MUTANTS[mutant]
    package = Path(fermilink_state.__file__).parent
    copy = tmp_path / "mutant" / "fermilink_state"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    source = (copy / file_name).read_text()
    assert source.count(find) == 1, f"the mutation no longer applies to {file_name}"
    (copy / file_name).write_text(source.replace(find, replace))
    step = functools.partial(
        in_package_copy,
        str(copy.parent),
        functools.partial(workload.step, library="fermilink_state"),
    )
    # Ten violations are proof enough; exploring all (thousands) costs a minute.
    outcome = run_workload(workload, model, tmp_path, step=step, max_failures=10)
    print(f"mutant {mutant}: {outcome.summary()}")
    assert outcome.violations > 0
