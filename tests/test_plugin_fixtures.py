"""The plugin's fixtures, used directly (the root conftest enables the plugin)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

import fermilink_state
from fermilink_state import _clock
from fermilink_state._memory import memory_template
from fermilink_state._results import RESULTS_HEADER
from fermilink_state.testing import (
    FrozenClock,
    OptimizeProject,
    ProjectFactory,
    assert_only_sections_changed,
    assert_section_appended,
)
from fermilink_state.testing._project import DEFAULT_BASELINE, DEFAULT_FROZEN_UTC


def _tree(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*"))


# -- optimize_project -------------------------------------------------------


def test_optimize_project_has_only_the_campaign_folder_and_runs(
    optimize_project: OptimizeProject,
) -> None:
    assert _tree(optimize_project.root) == [".fermilink-optimize", ".fermilink-optimize/runs"]


def test_optimize_project_paths_are_the_layout(optimize_project: OptimizeProject) -> None:
    root = optimize_project.root
    assert optimize_project.optimize_root == fermilink_state.optimize_root(root)
    assert optimize_project.worker_memory_path == fermilink_state.worker_memory_path(root)
    assert optimize_project.goal_inputs_manifest_path == (
        fermilink_state.goal_inputs_manifest_path(root)
    )


def test_optimize_project_is_in_the_test_temp_folder(
    optimize_project: OptimizeProject, tmp_path: Path
) -> None:
    assert optimize_project.root.parent == tmp_path


# -- seeded_project ---------------------------------------------------------


def test_seeded_project_is_the_test_optimize_project(
    seeded_project: OptimizeProject, optimize_project: OptimizeProject
) -> None:
    assert seeded_project is optimize_project


def test_optimize_project_first_then_seeded_is_one_project(
    optimize_project: OptimizeProject, seeded_project: OptimizeProject
) -> None:
    assert optimize_project.memory_path.is_file()


def test_seeded_project_files(seeded_project: OptimizeProject) -> None:
    assert _tree(seeded_project.optimize_root) == [
        "memory.md",
        "results.tsv",
        "runs",
        "state.json",
    ]


def test_seeded_memory_is_the_template(
    seeded_project: OptimizeProject, frozen_utc: FrozenClock
) -> None:
    expected = memory_template(
        package_id="demo_package",
        benchmark_id="demo_benchmark",
        benchmark_rel="benchmarks/demo.yaml",
        optimize_branch="fermilink-optimize/demo",
        started=DEFAULT_FROZEN_UTC,
    )
    assert seeded_project.memory_path.read_text(encoding="utf-8") == expected


def test_seeded_results_have_header_and_baseline(seeded_results: Path) -> None:
    assert seeded_results.read_text(encoding="utf-8").startswith(RESULTS_HEADER)
    assert fermilink_state.read_results(seeded_results) == [DEFAULT_BASELINE]


def test_seeded_state_is_initial(seeded_project: OptimizeProject) -> None:
    state = json.loads(seeded_project.state_path.read_text(encoding="utf-8"))
    assert (state["iteration"], state["accepted_count"]) == (0, 0)


def test_seeded_memory_and_results_are_the_seeded_project_paths(
    seeded_memory: Path, seeded_results: Path, seeded_project: OptimizeProject
) -> None:
    assert (seeded_memory, seeded_results) == (
        seeded_project.memory_path,
        seeded_project.results_path,
    )


def test_seeded_memory_alone_seeds(seeded_memory: Path) -> None:
    assert seeded_memory.read_text(encoding="utf-8").startswith("# FermiLink Optimize Memory")


@pytest.mark.fermilink_seed(package_id="pkg-x", benchmark_id="bench-x", optimize_branch="br")
def test_marker_values_reach_memory_and_state(seeded_project: OptimizeProject) -> None:
    state = seeded_project.read_state()
    assert (state["package_id"], state["benchmark_id"], state["branch"]) == (
        "pkg-x",
        "bench-x",
        "br",
    )
    assert "- package_id: pkg-x\n" in seeded_project.memory_path.read_text(encoding="utf-8")


@pytest.mark.fermilink_seed(benchmark_rel="b/x.yaml")
def test_marker_benchmark_rel(seeded_project: OptimizeProject) -> None:
    assert "- Benchmark file: `b/x.yaml`" in seeded_project.memory_path.read_text("utf-8")


@pytest.mark.fermilink_seed(results=[])
def test_marker_empty_results(seeded_results: Path) -> None:
    assert seeded_results.read_text(encoding="utf-8") == RESULTS_HEADER


@pytest.mark.fermilink_seed(
    results=[
        DEFAULT_BASELINE,
        {
            "iteration": 1,
            "commit": "c1",
            "status": "rejected",
            "primary_metric_name": "runtime_seconds",
            "primary_metric_value": 2,
        },
    ]
)
def test_marker_results_rows(seeded_results: Path) -> None:
    rows = fermilink_state.read_results(seeded_results)
    assert [(row.iteration, row.status, row.description) for row in rows] == [
        (0, "baseline", "baseline"),
        (1, "rejected", ""),
    ]


@pytest.mark.fermilink_seed(state={"iteration": 4})
def test_marker_state_merges(seeded_project: OptimizeProject) -> None:
    state = seeded_project.read_state()
    assert (state["iteration"], state["schema_version"]) == (4, 1)


@pytest.mark.fermilink_seed(memory="# Own memory\n")
def test_marker_memory_text(seeded_memory: Path) -> None:
    assert seeded_memory.read_text(encoding="utf-8") == "# Own memory\n"


@pytest.mark.fermilink_seed(package_id="from-class", benchmark_id="class-bench")
class TestMarkerOnAClass:
    def test_class_marker_applies(self, seeded_project: OptimizeProject) -> None:
        assert seeded_project.read_state()["package_id"] == "from-class"

    @pytest.mark.fermilink_seed(package_id="from-function")
    def test_closest_marker_wins_per_key(self, seeded_project: OptimizeProject) -> None:
        state = seeded_project.read_state()
        assert (state["package_id"], state["benchmark_id"]) == ("from-function", "class-bench")


def test_seeded_then_frozen_argument_order_still_frozen(
    seeded_project: OptimizeProject, frozen_utc: FrozenClock
) -> None:
    assert seeded_project.read_state()["started_at_utc"] == frozen_utc.now


# -- make_optimize_project --------------------------------------------------


def test_factory_makes_separate_seeded_projects(
    make_optimize_project: ProjectFactory, tmp_path: Path
) -> None:
    one, two = make_optimize_project(), make_optimize_project(package_id="two")
    assert one.root != two.root
    assert one.root.parent == two.root.parent == tmp_path
    assert (one.read_state()["package_id"], two.read_state()["package_id"]) == (
        "demo_package",
        "two",
    )


def test_factory_unseeded_project_is_empty(make_optimize_project: ProjectFactory) -> None:
    project = make_optimize_project(seeded=False)
    assert _tree(project.root) == [".fermilink-optimize", ".fermilink-optimize/runs"]


def test_factory_refuses_seed_values_when_unseeded(
    make_optimize_project: ProjectFactory,
) -> None:
    with pytest.raises(TypeError, match=r"seed values \['package_id'\] given with seeded=False"):
        make_optimize_project(seeded=False, package_id="x")


@pytest.mark.fermilink_seed(package_id="marked", results=[])
def test_factory_uses_the_marker_then_keywords(make_optimize_project: ProjectFactory) -> None:
    state = make_optimize_project(results=[DEFAULT_BASELINE]).read_state()
    assert (state["package_id"], state["baseline_commit"]) == ("marked", "0123456789ab")


def test_factory_projects_differ_from_optimize_project(
    make_optimize_project: ProjectFactory, optimize_project: OptimizeProject
) -> None:
    assert make_optimize_project().root != optimize_project.root


# -- frozen_utc -------------------------------------------------------------


def test_frozen_utc_freezes_the_library_clock(frozen_utc: FrozenClock) -> None:
    assert fermilink_state.utc_now_z() == DEFAULT_FROZEN_UTC == frozen_utc.now


def test_frozen_utc_set_and_tick(frozen_utc: FrozenClock) -> None:
    frozen_utc.set("2027-05-06T07:08:09Z")
    frozen_utc.tick(seconds=61)
    assert _clock.utc_now_z() == "2027-05-06T07:09:10Z"


def test_frozen_utc_stamps_campaign_events(
    seeded_project: OptimizeProject, frozen_utc: FrozenClock
) -> None:
    before = seeded_project.memory_path.read_text(encoding="utf-8")
    frozen_utc.tick()
    fermilink_state.record_campaign_event(
        seeded_project.memory_path,
        commit="c1",
        primary_metric_name="t",
        primary_metric_value=0.5,
        status="accepted",
        description="faster",
    )
    entry = "- [2026-01-02T03:04:06.678901Z] faster (c1, t=0.5)"
    assert_section_appended(before, seeded_project.memory_path, "### Accepted experiments", entry)
    assert_section_appended(
        before, seeded_project.memory_path, "### Progress log", re.compile("accepted: faster")
    )
    assert_only_sections_changed(
        before,
        seeded_project.memory_path,
        [
            "# FermiLink Optimize Memory",
            "### Latest accepted commit",
            "### Progress log",
            "### Accepted experiments",
        ],
    )


def test_frozen_utc_stamps_the_run_lock(
    optimize_project: OptimizeProject, frozen_utc: FrozenClock
) -> None:
    payload = fermilink_state.acquire_run_lock(optimize_project.root)
    assert payload["started_at_utc"] == frozen_utc.now


# -- run locks --------------------------------------------------------------


def test_stale_run_lock_fixture(
    stale_run_lock: dict[str, Any], optimize_project: OptimizeProject
) -> None:
    status = fermilink_state.run_lock_status(optimize_project.root)
    assert (status.state, status.holder) == ("inactive_stale", stale_run_lock)
    assert not fermilink_state.pid_is_running(stale_run_lock["pid"])


def test_stale_run_lock_is_taken_over(
    stale_run_lock: dict[str, Any], optimize_project: OptimizeProject
) -> None:
    assert fermilink_state.acquire_run_lock(optimize_project.root)["pid"] == os.getpid()


def test_live_run_lock_fixture(
    live_run_lock: dict[str, Any], optimize_project: OptimizeProject
) -> None:
    status = fermilink_state.run_lock_status(optimize_project.root)
    assert (status.state, status.holder) == ("active", live_run_lock)
    assert live_run_lock["pid"] != os.getpid()
    assert fermilink_state.pid_is_running(live_run_lock["pid"])


def test_live_run_lock_refuses_this_process(
    live_run_lock: dict[str, Any], seeded_project: OptimizeProject
) -> None:
    with pytest.raises(fermilink_state.RunLockHeld) as raised:
        fermilink_state.acquire_run_lock(seeded_project.root)
    assert raised.value.holder == live_run_lock


def test_run_lock_fixtures_write_the_seeded_project_lock(
    seeded_project: OptimizeProject, stale_run_lock: dict[str, Any]
) -> None:
    assert seeded_project.run_lock_path.is_file()
    assert seeded_project.memory_path.is_file()


def test_live_run_lock_frozen_stamp(live_run_lock: dict[str, Any], frozen_utc: FrozenClock) -> None:
    assert live_run_lock["started_at_utc"] == frozen_utc.now


# -- snapshot ---------------------------------------------------------------


def test_snapshot_diff_after_an_append(seeded_project: OptimizeProject) -> None:
    before = seeded_project.snapshot()
    fermilink_state.append_results(seeded_project.results_path, [DEFAULT_BASELINE])
    assert before.diff(seeded_project.snapshot()) == [
        seeded_project.relative(seeded_project.results_path)
    ]


# -- the shared campaign (one process: the session's own temp folder) ------


def test_shared_project_is_seeded(shared_optimize_project: OptimizeProject) -> None:
    assert shared_optimize_project.memory_path.is_file()
    assert shared_optimize_project.read_results()[0].status == "baseline"


def test_shared_project_is_not_a_test_project(
    shared_optimize_project: OptimizeProject, optimize_project: OptimizeProject
) -> None:
    assert shared_optimize_project.root != optimize_project.root
