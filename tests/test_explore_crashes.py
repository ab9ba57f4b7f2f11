"""explore_crashes: the report, the failures' operations, kept copies, and refused steps."""

from __future__ import annotations

from pathlib import Path

import pytest

import fermilink_state as fs
from fermilink_state.testing import (
    CrashExplorationError,
    CrashState,
    assert_campaign_consistent,
    explore_crashes,
    seed_project,
)

pytestmark = pytest.mark.timeout(240)

ROW = {
    "iteration": 1,
    "commit": "c1",
    "status": "accepted",
    "primary_metric_name": "runtime_seconds",
    "primary_metric_value": 0.5,
    "description": "faster",
}


def _next_state(root: Path) -> dict[str, object]:
    return {**(fs.load_state(fs.state_path(root)) or {}), "iteration": 1, "incumbent_commit": "c1"}


def state_then_row(root: Path) -> None:
    fs.write_state(fs.state_path(root), _next_state(root))
    fs.append_result(fs.results_path(root), **ROW)  # type: ignore[arg-type]


def row_then_state(root: Path) -> None:
    fs.record_iteration(root, row=ROW, state=_next_state(root))


def writes_around_the_library(root: Path) -> None:
    (root / ".fermilink-optimize" / "notes.txt").write_text("mine", encoding="utf-8")


def consistent(copy_root: Path, state: CrashState) -> None:
    assert_campaign_consistent(copy_root)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return seed_project(tmp_path / "project").root


def test_a_correct_step_passes_and_leaves_the_project_as_it_ends(
    project: Path, tmp_path: Path
) -> None:
    report = explore_crashes(project, row_then_state, consistent, workdir=tmp_path / "work")
    assert report.ok
    assert report.points > 3
    assert report.operations >= report.points - 1
    assert report.calls == ("record_iteration",)
    assert fs.load_state(fs.state_path(project))["iteration"] == 1  # type: ignore[index]
    assert list((tmp_path / "work").iterdir()) == []  # passing copies are removed


def test_each_failure_names_its_point_operation_and_call(project: Path, tmp_path: Path) -> None:
    report = explore_crashes(
        project, state_then_row, consistent, workdir=tmp_path / "w", raise_on_failure=False
    )
    assert not report.ok
    failure = report.failures[0]
    assert failure.call == "write_state"
    assert failure.operation.startswith(f"#{failure.point - 1} rename ")
    assert failure.operation.endswith("-> .fermilink-optimize/state.json (in write_state)")
    assert isinstance(failure.error, AssertionError)
    assert "claims iteration 1" in str(failure.error)
    assert "assert_campaign_consistent" in failure.traceback
    assert failure.copy_root is None
    assert failure.state.model == "kill"


def test_failures_raise_one_assertion_listing_the_first(project: Path, tmp_path: Path) -> None:
    with pytest.raises(CrashExplorationError) as raised:
        explore_crashes(project, state_then_row, consistent, model="power", workdir=tmp_path)
    report = raised.value.report
    message = str(raised.value)
    assert isinstance(raised.value, AssertionError)
    assert message.startswith(
        f"{len(report.failures)} of {report.points} crash states (power model) failed the check;"
    )
    assert "(raised at " in message
    assert "in consistent)" in message


def test_failing_copies_are_kept_when_asked(project: Path, tmp_path: Path) -> None:
    report = explore_crashes(
        project,
        state_then_row,
        consistent,
        workdir=tmp_path / "w",
        keep_failures=True,
        raise_on_failure=False,
    )
    kept = [failure.copy_root for failure in report.failures]
    assert kept
    assert all(copy is not None and copy.is_dir() for copy in kept)
    assert f"kept: {kept[0]}" in report.summary()


def _fail_like_pytest(copy_root: Path, state: CrashState) -> None:
    pytest.fail("not an Exception")


def test_a_check_failing_like_pytest_fail_is_one_failure(project: Path, tmp_path: Path) -> None:
    report = explore_crashes(
        project, row_then_state, _fail_like_pytest, workdir=tmp_path, raise_on_failure=False
    )
    assert len(report.failures) == report.points
    assert type(report.failures[0].error).__name__ == "Failed"


def test_a_step_writing_around_the_library_is_refused(project: Path, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"notes\.txt; pass trace_pathlib=True"):
        explore_crashes(project, writes_around_the_library, consistent, workdir=tmp_path)


def test_trace_pathlib_records_what_the_step_writes_itself(project: Path, tmp_path: Path) -> None:
    report = explore_crashes(
        project, writes_around_the_library, consistent, workdir=tmp_path, trace_pathlib=True
    )
    assert report.ok
    assert report.operations >= 2


def test_an_unknown_model_is_refused(project: Path) -> None:
    with pytest.raises(ValueError, match="model must be 'kill' or 'power'"):
        explore_crashes(project, row_then_state, consistent, model="flood")  # type: ignore[arg-type]
