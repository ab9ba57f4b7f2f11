"""``fermilink-state demo``: a real concurrent campaign that check finds clean."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from campaign_builder import make_campaign, run_cli
from fermilink_state import (
    memory_path,
    parse_memory,
    read_json_file,
    read_results,
    results_path,
    run_lock_path,
    runs_root,
    state_path,
    worker_memory_path,
)
from fermilink_state.cli._check import check_campaign

CANDIDATES = 12
WORKERS = 3


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One small, fast demo run shared by this module: (folder, stdout)."""
    folder = tmp_path_factory.mktemp("demo") / "campaign"
    result = run_cli(
        "demo",
        folder,
        "--workers",
        str(WORKERS),
        "--candidates",
        str(CANDIDATES),
        "--eval-seconds",
        "0",
        "--seed",
        "5",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return folder, result.stdout


def test_the_demo_folder_passes_check(demo: tuple[Path, str]) -> None:
    folder, _ = demo
    assert check_campaign(folder) == []
    assert run_cli("check", folder).returncode == 0


def test_the_demo_records_every_candidate_once(demo: tuple[Path, str]) -> None:
    rows = read_results(results_path(demo[0]))
    assert sorted(row.iteration for row in rows) == list(range(CANDIDATES + 1))
    assert rows[0].status == "baseline"


def test_the_demo_accepts_only_improvements(demo: tuple[Path, str]) -> None:
    best = None
    for row in read_results(results_path(demo[0])):
        if row.status in ("baseline", "accepted"):
            value = row.numeric_value
            assert value is not None
            assert best is None or value < best
            best = value


def test_the_demo_records_a_memory_event_per_result(demo: tuple[Path, str]) -> None:
    memory = parse_memory(memory_path(demo[0]).read_text(encoding="utf-8"))
    log = [line for line in memory.section("### Progress log") or [] if line.startswith("- [")]
    assert len(log) == CANDIDATES + 1


def test_the_demo_workers_write_worker_memory(demo: tuple[Path, str]) -> None:
    memory = parse_memory(worker_memory_path(demo[0]).read_text(encoding="utf-8"))

    def worker_lines(heading: str) -> list[str]:
        return [line for line in memory.section(heading) or [] if line.startswith("- worker ")]

    assert len(worker_lines("### Job tracking")) == WORKERS
    assert len(worker_lines("### Progress log")) == CANDIDATES


def test_the_demo_state_counts_every_candidate(demo: tuple[Path, str]) -> None:
    state = read_json_file(state_path(demo[0]))
    assert state["iteration"] == CANDIDATES
    assert state["accepted_count"] + state["rejected_count"] == CANDIDATES


def test_the_demo_archives_each_iteration(demo: tuple[Path, str]) -> None:
    runs = sorted(path.name for path in runs_root(demo[0]).iterdir())
    assert runs == [f"iter_{n:04d}" for n in range(1, CANDIDATES + 1)]


def test_the_demo_releases_the_run_lock(demo: tuple[Path, str]) -> None:
    assert not run_lock_path(demo[0]).exists()


def test_the_demo_shows_the_run_lock_refusing_a_second_controller(demo: tuple[Path, str]) -> None:
    assert f"refused a second controller {WORKERS} times" in demo[1]


def test_the_demo_prints_progress_then_status(demo: tuple[Path, str]) -> None:
    output = demo[1]
    assert f"{CANDIDATES}/{CANDIDATES} evaluated" in output
    assert output.index("evaluated") < output.index("iteration  ")
    assert f"iteration  {CANDIDATES}" in output
    assert "check      clean" in output


def test_the_demo_writes_plot_svg_with_every_row(demo: tuple[Path, str]) -> None:
    root = ET.parse(demo[0] / "plot.svg").getroot()
    marks = [el for el in root.iter() if el.get("class", "").startswith("mark ")]
    assert len(marks) == CANDIDATES + 1


def test_the_demo_without_a_folder_uses_a_fresh_temp_folder(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = run_cli("demo", "--eval-seconds", "0", "--candidates", "6", env=env)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    folder = Path(first.rpartition(" in ")[2])
    assert folder.parent == tmp_path
    assert folder.name.startswith("fermilink-state-demo-")
    assert check_campaign(folder) == []


def test_the_demo_refuses_a_folder_that_holds_a_campaign(tmp_path: Path) -> None:
    make_campaign(tmp_path)
    result = run_cli("demo", tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("fermilink-state: error: ")
    assert len(result.stderr.splitlines()) == 1
    assert "already holds a campaign" in result.stderr


def test_the_demo_status_json_after_the_run(demo: tuple[Path, str]) -> None:
    payload = json.loads(run_cli("status", demo[0], "--json").stdout)
    assert payload["rows"] == CANDIDATES + 1
    assert payload["run_lock"]["state"] == "inactive"


def test_the_demo_json_is_its_outcome_and_the_story_goes_to_stderr(tmp_path: Path) -> None:
    folder = tmp_path / "campaign"
    result = run_cli(
        "demo", folder, "--workers", "2", "--candidates", "3", "--eval-seconds", "0", "--json"
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert (outcome["clean"], outcome["problems"], outcome["plot"]) == (
        True,
        [],
        str(folder / "plot.svg"),
    )
    assert outcome["status"]["rows"] == 4  # the baseline and three candidates
    assert "fermilink-state demo: a simulated campaign in" in result.stderr
