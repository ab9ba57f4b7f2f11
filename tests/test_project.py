"""The engine under the plugin's fixtures, tested as plain code (no fixtures of ours)."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import fermilink_state
from fermilink_state import _clock, _layout
from fermilink_state._memory import memory_template
from fermilink_state._results import RESULTS_HEADER, ResultRow
from fermilink_state.testing import run_concurrently
from fermilink_state.testing._project import (
    DEFAULT_BASELINE,
    DEFAULT_FROZEN_UTC,
    FrozenClock,
    LiveRunLockHolder,
    OptimizeProject,
    ResultLike,
    Snapshot,
    new_project,
    open_shared_project,
    remove_project,
    results_text,
    seed_project,
    write_stale_run_lock,
)

STAMP = "2026-03-04T05:06:07.000001Z"


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    with FrozenClock(STAMP) as frozen:
        yield frozen


def _layout_helpers() -> dict[str, str]:
    """Every path helper the package exports -> the OptimizeProject attribute for it."""
    names = [
        name
        for name in fermilink_state.__all__
        if name.endswith(("_path", "_root")) and not name.startswith("ensure_")
    ]
    return {name: "program_path" if name == "default_program_path" else name for name in names}


# -- OptimizeProject --------------------------------------------------------


@pytest.mark.parametrize(("helper", "attribute"), sorted(_layout_helpers().items()))
def test_project_has_every_layout_path(helper: str, attribute: str, tmp_path: Path) -> None:
    project = OptimizeProject(tmp_path)
    assert getattr(project, attribute) == getattr(fermilink_state, helper)(tmp_path)


def test_layout_helpers_found() -> None:
    # The parametrisation above must not silently shrink.
    assert len(_layout_helpers()) >= 28


def test_layout_attribute_documented_by_its_helper() -> None:
    assert OptimizeProject.state_path.__doc__ == _layout.state_path.__doc__


def test_reading_paths_creates_nothing(tmp_path: Path) -> None:
    project = OptimizeProject(tmp_path / "p")
    _ = project.runs_root, project.memory_path
    assert not project.root.exists()


def test_new_project_creates_only_the_campaign_folder_and_runs(tmp_path: Path) -> None:
    project = new_project(tmp_path / "p")
    found = sorted(path.relative_to(project.root).as_posix() for path in project.root.rglob("*"))
    assert found == [".fermilink-optimize", ".fermilink-optimize/runs"]


def test_relative(tmp_path: Path) -> None:
    project = OptimizeProject(tmp_path)
    assert project.relative(project.memory_path) == Path(".fermilink-optimize/memory.md")


# -- seeding ----------------------------------------------------------------


def test_seeded_memory_is_the_reference_template(tmp_path: Path, clock: FrozenClock) -> None:
    project = seed_project(tmp_path, package_id="pkg", benchmark_rel="b.yaml")
    expected = memory_template(
        package_id="pkg",
        benchmark_id="demo_benchmark",
        benchmark_rel="b.yaml",
        optimize_branch="fermilink-optimize/demo",
        started=STAMP,
    )
    assert project.memory_path.read_text(encoding="utf-8") == expected


def test_seeded_results_hold_header_and_baseline(tmp_path: Path) -> None:
    project = seed_project(tmp_path)
    assert project.read_results() == [DEFAULT_BASELINE]
    assert project.results_path.read_text(encoding="utf-8").startswith(RESULTS_HEADER)


def test_seeded_results_bytes_are_append_results_bytes(tmp_path: Path) -> None:
    accepted = {"iteration": 1, "commit": "c1", "status": "accepted",
                "primary_metric_name": "t", "primary_metric_value": 0.1 + 0.2}  # fmt: skip
    rows: list[ResultLike] = [DEFAULT_BASELINE, accepted]
    seeded = seed_project(tmp_path / "a", results=rows)
    appended = new_project(tmp_path / "b")
    fermilink_state.append_results(appended.results_path, rows)
    assert seeded.results_path.read_bytes() == appended.results_path.read_bytes()


def test_empty_results_give_the_header_alone(tmp_path: Path) -> None:
    project = seed_project(tmp_path, results=[])
    assert project.results_path.read_text(encoding="utf-8") == RESULTS_HEADER


def test_result_mapping_needs_the_fields(tmp_path: Path) -> None:
    with pytest.raises(TypeError) as raised:
        seed_project(tmp_path, results=[{"iteration": 1}])
    assert str(raised.value) == (
        "result row {'iteration': 1} lacks commit, status, primary_metric_name, "
        "primary_metric_value; a row gives iteration, commit, status, primary_metric_name, "
        "primary_metric_value (and optionally description)"
    )


def test_result_mapping_needs_an_integer_iteration(tmp_path: Path) -> None:
    row = {**DEFAULT_BASELINE.as_dict(), "iteration": "first"}
    with pytest.raises(TypeError, match="iteration 'first' is not an integer"):
        seed_project(tmp_path, results=[row])


def test_result_mapping_rejects_unknown_fields(tmp_path: Path) -> None:
    row = {**DEFAULT_BASELINE.as_dict(), "metric": 1}
    with pytest.raises(TypeError, match=r"has unknown fields metric;"):
        seed_project(tmp_path, results=[row])


def test_results_text_of_no_rows_is_the_header() -> None:
    assert results_text([]) == RESULTS_HEADER


def test_seeded_state_is_an_initial_state(tmp_path: Path, clock: FrozenClock) -> None:
    state = seed_project(tmp_path).read_state()
    assert state["started_at_utc"] == STAMP
    assert state["iteration"] == 0
    assert state["baseline_commit"] == state["incumbent_commit"] == DEFAULT_BASELINE.commit
    assert state["memory_path"] == ".fermilink-optimize/memory.md"


def test_state_without_a_baseline_row_has_no_baseline_commit(tmp_path: Path) -> None:
    assert seed_project(tmp_path, results=[]).read_state()["baseline_commit"] == ""


def test_state_overrides_merge_over_the_initial_state(tmp_path: Path) -> None:
    state = seed_project(tmp_path, state={"iteration": 7, "extra": [1]}).read_state()
    assert (state["iteration"], state["extra"], state["schema_version"]) == (7, [1], 1)


def test_state_is_written_as_the_reference_writes_json(tmp_path: Path) -> None:
    project = seed_project(tmp_path)
    text = project.state_path.read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_memory_text_replaces_the_template(tmp_path: Path) -> None:
    project = seed_project(tmp_path, memory="# Mine\r\n")
    assert project.memory_path.read_bytes() == b"# Mine\r\n"


def test_seeding_leaves_no_temp_files(tmp_path: Path) -> None:
    project = seed_project(tmp_path)
    assert sorted(path.name for path in project.optimize_root.iterdir()) == [
        "memory.md",
        "results.tsv",
        "runs",
        "state.json",
    ]


def test_seeding_again_overwrites(tmp_path: Path) -> None:
    seed_project(tmp_path, package_id="one")
    project = seed_project(tmp_path, package_id="two")
    assert project.read_state()["package_id"] == "two"


def test_seed_method_seeds_that_project(tmp_path: Path) -> None:
    project = new_project(tmp_path).seed(benchmark_id="bench")
    assert project.read_state()["benchmark_id"] == "bench"


def test_unknown_seed_value_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="pakage_id"):
        seed_project(tmp_path, pakage_id="x")  # type: ignore[call-arg]


def test_seeded_memory_reads_as_a_document(tmp_path: Path) -> None:
    document = seed_project(tmp_path).read_memory()
    assert document.section("### Progress log") == ["- Campaign initialized.", ""]


def test_remove_project(tmp_path: Path) -> None:
    project = seed_project(tmp_path / "p")
    remove_project(project)
    remove_project(project)  # a second removal is fine
    assert not project.root.exists()


@pytest.mark.parametrize(
    "change",
    ["none", "unseeded", "file added", "file removed", "folder added", "file is a folder"],
)
def test_remove_project_removes_whatever_the_test_left(tmp_path: Path, change: str) -> None:
    project = new_project(tmp_path / "p") if change == "unseeded" else seed_project(tmp_path / "p")
    if change == "file added":
        fermilink_state.append_results(project.results_path, [DEFAULT_BASELINE])  # a lock file
    elif change == "file removed":
        project.memory_path.unlink()
    elif change == "folder added":
        (project.runs_root / "run-1").mkdir()
        (project.runs_root / "run-1" / "log.txt").write_text("x", encoding="utf-8")
    elif change == "file is a folder":
        project.state_path.unlink()
        project.state_path.mkdir()
    remove_project(project)
    assert not project.root.exists()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("linked", ["campaign folder", "project folder"])
def test_remove_project_never_deletes_through_a_link(tmp_path: Path, linked: str) -> None:
    # A test may swap a folder for a link to files it must not lose.
    elsewhere = seed_project(tmp_path / "elsewhere")
    before = elsewhere.snapshot()
    project = seed_project(tmp_path / "p")
    if linked == "campaign folder":
        shutil.rmtree(project.optimize_root)
        project.optimize_root.symlink_to(elsewhere.optimize_root, target_is_directory=True)
    else:
        shutil.rmtree(project.root)
        project.root.symlink_to(elsewhere.root, target_is_directory=True)
    remove_project(project)
    assert elsewhere.snapshot() == before


# -- snapshots --------------------------------------------------------------


def test_snapshot_records_every_file(tmp_path: Path) -> None:
    project = seed_project(tmp_path)
    snapshot = project.snapshot()
    assert snapshot[".fermilink-optimize/memory.md"] == project.memory_path.read_bytes()
    assert len(snapshot.files) == 3


def test_snapshot_leaves_lock_files_out_by_default(tmp_path: Path) -> None:
    project = seed_project(tmp_path)
    fermilink_state.append_results(project.results_path, [DEFAULT_BASELINE])
    lock = Path(".fermilink-optimize/results.tsv.lock")
    assert lock not in project.snapshot()
    assert lock in project.snapshot(include_locks=True)


def test_diff_of_equal_snapshots_is_empty(tmp_path: Path) -> None:
    project = seed_project(tmp_path)
    assert project.snapshot().diff(project.snapshot()) == []


def test_diff_lists_added_removed_and_changed_sorted(tmp_path: Path) -> None:
    project = seed_project(tmp_path)
    before = project.snapshot()
    project.state_path.unlink()
    project.memory_path.write_text("changed", encoding="utf-8")
    (project.runs_root / "iter_0001").mkdir()
    (project.runs_root / "iter_0001" / "note.txt").write_text("new", encoding="utf-8")
    assert before.diff(project.snapshot()) == [
        Path(".fermilink-optimize/memory.md"),
        Path(".fermilink-optimize/runs/iter_0001/note.txt"),
        Path(".fermilink-optimize/state.json"),
    ]


def test_snapshot_is_not_changed_by_later_writes(tmp_path: Path) -> None:
    project = seed_project(tmp_path)
    snapshot = project.snapshot()
    project.memory_path.write_text("later", encoding="utf-8")
    assert snapshot.text(".fermilink-optimize/memory.md").startswith("# FermiLink")


def test_snapshot_records_a_symlink_by_its_target(tmp_path: Path) -> None:
    project = seed_project(tmp_path)
    (project.optimize_root / "link").symlink_to("memory.md")
    assert project.snapshot()[".fermilink-optimize/link"] == b"memory.md"


def test_snapshot_capture_of_any_folder(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"x")
    assert Snapshot.capture(tmp_path).files == {Path("a.txt"): b"x"}


# -- the shared project -----------------------------------------------------


def test_shared_project_is_seeded_by_the_first_call_only(tmp_path: Path) -> None:
    first, created_first = open_shared_project(tmp_path / "shared")
    fermilink_state.append_results(first.results_path, [DEFAULT_BASELINE])
    second, created_second = open_shared_project(tmp_path / "shared")
    assert (created_first, created_second) == (True, False)
    assert len(second.read_results()) == 2


def test_shared_project_half_seeded_is_seeded_again(tmp_path: Path) -> None:
    # A process that died before writing the marker leaves a partial folder.
    (tmp_path / "shared" / ".fermilink-optimize").mkdir(parents=True)
    (tmp_path / "shared" / ".fermilink-optimize" / "memory.md").write_text("torn")
    project, created = open_shared_project(tmp_path / "shared")
    assert created
    assert project.read_memory().headings[0] == "# FermiLink Optimize Memory"


def test_shared_project_takes_seed_values(tmp_path: Path) -> None:
    project, _created = open_shared_project(tmp_path / "shared", package_id="shared-pkg")
    assert project.read_state()["package_id"] == "shared-pkg"


# -- FrozenClock ------------------------------------------------------------


def test_frozen_clock_freezes_the_library_clock() -> None:
    with FrozenClock() as clock:
        assert _clock.utc_now_z() == clock.now == DEFAULT_FROZEN_UTC


def test_frozen_clock_restores_the_previous_value() -> None:
    with FrozenClock("outer"), FrozenClock("inner"):
        pass
    with FrozenClock("outer"):
        with FrozenClock("inner"):
            assert _clock.utc_now_z() == "inner"
        assert _clock.utc_now_z() == "outer"


def test_frozen_clock_released_gives_real_time() -> None:
    with FrozenClock():
        pass
    assert _clock.utc_now_z() != DEFAULT_FROZEN_UTC


def _child_clock(index: int) -> str:
    return _clock.utc_now_z()


@pytest.mark.parametrize("start", ["spawn", "fork"])
def test_frozen_clock_reaches_child_processes(start: str) -> None:
    with FrozenClock("2031-05-06T07:08:09Z") as clock:
        (before,) = run_concurrently(_child_clock, 1, start=start)  # type: ignore[arg-type]
        clock.set("2031-05-06T07:08:10Z")
        (after,) = run_concurrently(_child_clock, 1, start=start)  # type: ignore[arg-type]
    assert (before.result(), after.result()) == ("2031-05-06T07:08:09Z", "2031-05-06T07:08:10Z")
    (released,) = run_concurrently(_child_clock, 1, start=start)  # type: ignore[arg-type]
    assert released.result() != "2031-05-06T07:08:10Z"


def test_frozen_clock_gives_back_the_environment_it_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_clock.FROZEN_ENV, "2020-01-01T00:00:00Z")
    assert _clock.utc_now_z() == "2020-01-01T00:00:00Z"  # the variable alone freezes
    with FrozenClock("inner"):
        assert os.environ[_clock.FROZEN_ENV] == "inner"
    assert os.environ[_clock.FROZEN_ENV] == "2020-01-01T00:00:00Z"
    monkeypatch.delenv(_clock.FROZEN_ENV)
    with FrozenClock("inner"):
        pass
    assert _clock.FROZEN_ENV not in os.environ


def test_set_changes_the_stamp() -> None:
    with FrozenClock() as clock:
        clock.set("2030-01-01T00:00:00Z")
        assert _clock.utc_now_z() == "2030-01-01T00:00:00Z"


def test_set_accepts_a_datetime_in_the_library_format() -> None:
    clock = FrozenClock()
    assert clock.set(datetime(2030, 1, 1, 0, 0, 0, 5, tzinfo=UTC)) == "2030-01-01T00:00:00.000005Z"


def test_set_before_start_takes_effect_at_start() -> None:
    clock = FrozenClock()
    clock.set("later")
    with clock:
        assert _clock.utc_now_z() == "later"


def test_tick_moves_forward() -> None:
    with FrozenClock("2026-01-02T03:04:05.678901Z") as clock:
        assert clock.tick() == "2026-01-02T03:04:06.678901Z"
        assert clock.tick(seconds=0.5) == "2026-01-02T03:04:07.178901Z"
        assert _clock.utc_now_z() == "2026-01-02T03:04:07.178901Z"


def test_tick_of_a_clock_set_to_free_text_says_what_to_do() -> None:
    with pytest.raises(ValueError, match="set\\(\\) an ISO 8601 time"):
        FrozenClock("T0").tick()


def test_frozen_clock_str_is_its_value() -> None:
    assert str(FrozenClock("x")) == "x"
    assert repr(FrozenClock("x")) == "FrozenClock('x')"


# -- run-lock holders -------------------------------------------------------


def test_stale_run_lock_is_judged_stale(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    payload = write_stale_run_lock(project.root)
    status = fermilink_state.run_lock_status(project.root)
    assert (status.state, status.holder) == ("inactive_stale", payload)


def test_stale_run_lock_records_a_real_process(tmp_path: Path) -> None:
    payload = write_stale_run_lock(new_project(tmp_path).root)
    assert payload["pid"] != os.getpid()
    assert isinstance(payload["pid_started_at"], float)
    assert not fermilink_state.pid_is_running(payload["pid"])


def test_stale_run_lock_is_taken_over(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    write_stale_run_lock(project.root)
    assert fermilink_state.acquire_run_lock(project.root)["pid"] == os.getpid()


def test_live_run_lock_is_held_by_a_live_other_process(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    with LiveRunLockHolder(project.root) as holder:
        status = fermilink_state.run_lock_status(project.root)
        assert status.state == "active"
        assert status.holder == holder.payload
        assert holder.pid != os.getpid()


def test_live_run_lock_refuses_acquire(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    with (
        LiveRunLockHolder(project.root) as holder,
        pytest.raises(
            fermilink_state.RunLockHeld, match=re.escape(str(project.run_lock_path))
        ) as raised,
    ):
        fermilink_state.acquire_run_lock(project.root)
    assert raised.value.holder == holder.payload


def test_live_run_lock_holder_ends_its_process(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    with LiveRunLockHolder(project.root) as holder:
        pass
    holder.stop()  # idempotent
    assert not fermilink_state.pid_is_running(holder.pid)
    assert fermilink_state.run_lock_status(project.root).state == "inactive_stale"


def test_lock_payload_has_what_acquire_run_lock_writes(tmp_path: Path) -> None:
    project = new_project(tmp_path / "a")
    mine = fermilink_state.acquire_run_lock(project.root)
    stale = write_stale_run_lock(new_project(tmp_path / "b").root)
    assert set(stale) == set(mine)


def test_result_row_default_baseline_is_a_baseline() -> None:
    assert isinstance(DEFAULT_BASELINE, ResultRow)
    assert DEFAULT_BASELINE.status == "baseline"


@pytest.mark.parametrize(
    "public", [FrozenClock, LiveRunLockHolder, OptimizeProject, Snapshot], ids=lambda t: t.__name__
)
def test_types_name_their_public_module(public: type) -> None:
    import fermilink_state.testing

    assert public.__module__ == "fermilink_state.testing"
    assert getattr(fermilink_state.testing, public.__name__) is public


def test_project_pickles_by_its_public_name(tmp_path: Path) -> None:
    project = OptimizeProject(tmp_path)
    assert pickle.loads(pickle.dumps(project)) == project


def test_seeded_projects_share_bytes_but_never_inodes(tmp_path: Path) -> None:
    first, second = seed_project(tmp_path / "a"), seed_project(tmp_path / "b")
    for name in ("memory_path", "results_path", "state_path"):
        one, other = getattr(first, name), getattr(second, name)
        assert one.read_bytes() == other.read_bytes()
        assert os.stat(one).st_ino != os.stat(other).st_ino
        assert os.stat(one).st_nlink == 1
    first.results_path.write_text("changed\n", encoding="utf-8")
    assert second.results_path.read_text(encoding="utf-8").startswith("iteration\t")
    assert (
        seed_project(tmp_path / "c").results_path.read_bytes() == second.results_path.read_bytes()
    )


def test_a_seed_follows_the_frozen_clock(tmp_path: Path) -> None:
    stamps = []
    for number, when in enumerate(("2026-01-01T00:00:00.000000Z", "2026-02-02T00:00:00.000000Z")):
        _clock.freeze(when)
        try:
            project = seed_project(tmp_path / str(number))
        finally:
            _clock.freeze(None)
        stamps.append(json.loads(project.state_path.read_text(encoding="utf-8")))
    assert [stamp["started_at_utc"] for stamp in stamps] == [
        "2026-01-01T00:00:00.000000Z",
        "2026-02-02T00:00:00.000000Z",
    ]


def test_seeding_a_project_that_has_files_replaces_them(tmp_path: Path) -> None:
    project = seed_project(tmp_path)
    project.memory_path.write_text("mine\n", encoding="utf-8")
    seed_project(tmp_path)
    assert project.memory_path.read_text(encoding="utf-8").startswith("# ")
