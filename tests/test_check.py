"""check_campaign: every kind of problem found, named by file and line, nothing changed."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from campaign_builder import make_campaign, snapshot, write_stale_run_lock
from fermilink_state import (
    RESULTS_HEADER,
    memory_path,
    optimize_root,
    results_path,
    run_lock_path,
    state_path,
    worker_memory_path,
    write_state,
)
from fermilink_state._process import hostname
from fermilink_state.cli._check import Problem, check_campaign
from fermilink_state.cli._status import CampaignNotFoundError


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    return make_campaign(tmp_path / "project")


def _only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [str(problem) for problem in problems]
    return problems[0]


def _replace_line(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_healthy_campaign_has_no_problems(campaign: Path) -> None:
    assert check_campaign(campaign) == []


def test_an_empty_campaign_folder_has_no_problems(tmp_path: Path) -> None:
    optimize_root(tmp_path).mkdir()
    assert check_campaign(tmp_path) == []


def test_a_folder_without_a_campaign_raises(tmp_path: Path) -> None:
    with pytest.raises(CampaignNotFoundError, match="no campaign here"):
        check_campaign(tmp_path)


def test_the_campaign_folder_itself_is_accepted_as_root(campaign: Path) -> None:
    state_path(campaign).write_text("[]", encoding="utf-8")
    assert _only(check_campaign(optimize_root(campaign))).path == state_path(campaign)


def test_problem_reads_path_line_what_and_fix() -> None:
    problem = Problem(Path("a/results.tsv"), 7, "malformed row", "delete the line")
    assert str(problem) == "a/results.tsv:7: malformed row; delete the line"


def test_invalid_state_json_is_a_problem(campaign: Path) -> None:
    state_path(campaign).write_text('{"iteration": ', encoding="utf-8")
    problem = _only(check_campaign(campaign))
    assert (problem.path, problem.line) == (state_path(campaign), 1)
    assert "invalid JSON" in problem.what


def test_a_json_array_is_not_a_state_object(campaign: Path) -> None:
    state_path(campaign).write_text("[1, 2]\n", encoding="utf-8")
    assert "expected a JSON object" in _only(check_campaign(campaign)).what


def test_an_invalid_autogen_manifest_is_a_problem(campaign: Path) -> None:
    manifest = optimize_root(campaign) / "autogen" / "quick_mode.json"
    manifest.parent.mkdir()
    manifest.write_text("nope", encoding="utf-8")
    assert _only(check_campaign(campaign)).path == manifest


def test_a_malformed_ledger_row_names_its_line(campaign: Path) -> None:
    with results_path(campaign).open("a", encoding="utf-8") as handle:
        handle.write("6\tc\trejected\n")
    problem = _only(check_campaign(campaign))
    assert (problem.path, problem.line) == (results_path(campaign), 8)
    assert "expected 6 tab-separated fields, found 3" in problem.what


def test_a_non_integer_iteration_is_a_problem(campaign: Path) -> None:
    with results_path(campaign).open("a", encoding="utf-8") as handle:
        handle.write("six\tc\trejected\tm\t1\td\n")
    assert "not an integer" in _only(check_campaign(campaign)).what


def test_a_missing_ledger_header_is_a_problem(campaign: Path) -> None:
    path = results_path(campaign)
    path.write_text(path.read_text(encoding="utf-8").removeprefix(RESULTS_HEADER), "utf-8")
    problem = _only(check_campaign(campaign))
    assert (problem.line, problem.what) == (1, "the header line is missing")


def test_a_wrong_ledger_header_is_a_problem(campaign: Path) -> None:
    path = results_path(campaign)
    _replace_line(path, "primary_metric_value", "value")
    assert "the header is" in _only(check_campaign(campaign)).what


def test_a_second_header_line_is_a_problem(campaign: Path) -> None:
    with results_path(campaign).open("a", encoding="utf-8") as handle:
        handle.write(RESULTS_HEADER)
    problem = _only(check_campaign(campaign))
    assert (problem.line, problem.what) == (8, "a second header line")


def test_a_torn_last_row_is_a_problem(campaign: Path) -> None:
    with results_path(campaign).open("a", encoding="utf-8") as handle:
        handle.write("6\tc\trejected\truntime_s\t0.9\tcut sh")
    problem = _only(check_campaign(campaign))
    assert problem.line == 8
    assert "no line ending" in problem.what


def test_bytes_that_are_not_utf8_in_the_ledger_name_their_line(campaign: Path) -> None:
    with results_path(campaign).open("ab") as handle:
        handle.write(b"6\tc\trejected\truntime_s\t0.9\tcaf\xe9\n")
    problem = _only(check_campaign(campaign))
    assert (problem.line, problem.what) == (8, "not UTF-8 (byte 0xe9)")


def test_an_empty_ledger_is_fine(campaign: Path) -> None:
    write_state(state_path(campaign), {"iteration": 0})
    results_path(campaign).write_bytes(b"")
    assert check_campaign(campaign) == []


def test_a_missing_memory_heading_is_a_problem(campaign: Path) -> None:
    _replace_line(memory_path(campaign), "### Rejected patterns\n", "### Rejected stuff\n")
    problem = _only(check_campaign(campaign))
    assert problem.path == memory_path(campaign)
    assert "'### Rejected patterns'" in problem.what


def test_a_heading_swallowed_by_an_unclosed_fence_names_the_fence(campaign: Path) -> None:
    path = memory_path(campaign)
    _replace_line(path, "### Accepted experiments\n", "```\n### Accepted experiments\n")
    problems = check_campaign(campaign)
    assert len(problems) == 3  # Accepted experiments, Rejected patterns, Open hypotheses
    lines = path.read_text(encoding="utf-8").splitlines()
    fence_line = lines.index("```") + 1
    assert problems[0].line == fence_line + 1
    assert f"inside the code block opened at line {fence_line}" in problems[0].what


def test_a_duplicated_heading_is_a_problem(campaign: Path) -> None:
    with memory_path(campaign).open("a", encoding="utf-8") as handle:
        handle.write("### Progress log\n- again\n")
    problem = _only(check_campaign(campaign))
    assert "appears 2 times" in problem.what


def test_a_missing_last_updated_line_is_a_problem(campaign: Path) -> None:
    path = memory_path(campaign)
    text = path.read_text(encoding="utf-8")
    kept = [line for line in text.splitlines(True) if not line.startswith("- last_updated_utc:")]
    path.write_text("".join(kept), encoding="utf-8")
    assert "last_updated_utc" in _only(check_campaign(campaign)).what


def test_a_missing_worker_memory_heading_is_a_problem(campaign: Path) -> None:
    _replace_line(worker_memory_path(campaign), "### Debug notes\n", "")
    problem = _only(check_campaign(campaign))
    assert problem.path == worker_memory_path(campaign)
    assert "'### Debug notes'" in problem.what


def test_memory_that_is_not_utf8_is_a_problem(campaign: Path) -> None:
    with memory_path(campaign).open("ab") as handle:
        handle.write(b"- caf\xe9\n")
    assert "not UTF-8" in _only(check_campaign(campaign)).what


def test_a_stale_run_lock_is_a_problem(campaign: Path) -> None:
    write_stale_run_lock(campaign)
    problem = _only(check_campaign(campaign))
    assert problem.path == run_lock_path(campaign)
    assert "stale run lock" in problem.what
    assert "fermilink-state unlock" in problem.fix


def test_an_unreadable_run_lock_is_a_stale_lock(campaign: Path) -> None:
    run_lock_path(campaign).write_text("{", encoding="utf-8")
    assert "stale run lock" in _only(check_campaign(campaign)).what


def test_a_live_run_lock_is_not_a_problem(campaign: Path) -> None:
    run_lock_path(campaign).write_text(
        f'{{"pid": {os.getpid()}, "hostname": "{socket.gethostname()}"}}', encoding="utf-8"
    )
    assert check_campaign(campaign) == []


def test_a_dead_writer_s_temp_file_is_a_problem(campaign: Path) -> None:
    from campaign_builder import dead_pid

    temp = optimize_root(campaign) / f".state.json.{hostname()}.{dead_pid()}.ab12cd34.tmp"
    temp.write_text("{}", encoding="utf-8")
    problem = _only(check_campaign(campaign))
    assert problem.path == temp
    assert "temporary file of state.json" in problem.what


def test_a_live_writer_s_temp_file_is_not_a_problem(campaign: Path) -> None:
    temp = optimize_root(campaign) / f".state.json.{hostname()}.{os.getpid()}.ab12cd34.tmp"
    temp.write_text("{}", encoding="utf-8")
    assert check_campaign(campaign) == []


def test_another_host_s_temp_file_is_a_problem_for_that_host(campaign: Path) -> None:
    temp = optimize_root(campaign) / "runs" / ".memory.md.elsewhere.42.ab12cd34.tmp"
    temp.write_text("x", encoding="utf-8")
    assert "on another host" in _only(check_campaign(campaign)).what


def test_the_reference_s_temp_file_is_a_problem(campaign: Path) -> None:
    (optimize_root(campaign) / "state.json.tmp").write_text("{}", encoding="utf-8")
    assert "temporary file" in _only(check_campaign(campaign)).what


def test_a_quarantined_file_is_a_problem(campaign: Path) -> None:
    quarantined = optimize_root(campaign) / "state.json.corrupt-20260101T000000000000Z"
    quarantined.write_text("{", encoding="utf-8")
    problem = _only(check_campaign(campaign))
    assert problem.path == quarantined
    assert "restore what you need into state.json" in problem.fix


def test_goal_inputs_are_not_checked(campaign: Path) -> None:
    inputs = optimize_root(campaign) / "inputs" / "all"
    inputs.mkdir(parents=True)
    (inputs / "data.tmp").write_text("user data", encoding="utf-8")
    assert check_campaign(campaign) == []


def test_problems_are_listed_in_a_stable_order(campaign: Path) -> None:
    state_path(campaign).write_text("{", encoding="utf-8")
    (optimize_root(campaign) / "state.json.tmp").write_text("{}", encoding="utf-8")
    with results_path(campaign).open("a", encoding="utf-8") as handle:
        handle.write("bad\n")
    paths = [problem.path.name for problem in check_campaign(campaign)]
    assert paths == ["state.json", "results.tsv", "state.json.tmp"]


def test_check_changes_nothing_not_even_a_lock_file(campaign: Path) -> None:
    state_path(campaign).write_text("{", encoding="utf-8")
    write_stale_run_lock(campaign)
    with results_path(campaign).open("a", encoding="utf-8") as handle:
        handle.write("torn")
    (optimize_root(campaign) / f".memory.md.{hostname()}.1.ab.tmp").write_text("", "utf-8")
    for lock in optimize_root(campaign).glob("*.lock"):
        lock.unlink()
    before = snapshot(campaign)
    assert len(check_campaign(campaign)) >= 3
    assert snapshot(campaign) == before


def test_problems_deep_in_a_long_ledger_are_found_by_their_line(campaign: Path) -> None:
    path = results_path(campaign)
    rows = [f"{i}\tc\trejected\tm\t{1 + i % 7}\tan idea worth trying {i}\n" for i in range(50_000)]
    rows[30_000] = "30000\tc\trejected\n"
    rows[40_000] = RESULTS_HEADER
    path.write_text(RESULTS_HEADER + "".join(rows) + "50000\tc\trej", encoding="utf-8")
    assert path.stat().st_size > 2 * (1 << 20)
    found = [(problem.line, problem.what.split(":")[0]) for problem in check_campaign(campaign)]
    assert found == [
        (30_002, "malformed row"),
        (40_002, "a second header line"),
        (50_002, "the last line has no line ending and is no row"),  # debris of a crash
    ]
