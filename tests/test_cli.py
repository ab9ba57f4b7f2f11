"""The installed ``fermilink-state`` command, run in a subprocess as a user would."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import fermilink_state as fs
from campaign_builder import (
    cli_command,
    live_run_lock,
    make_campaign,
    run_cli,
    snapshot,
    write_stale_run_lock,
)
from fermilink_state import RESULTS_HEADER, results_path, run_lock_path, state_path, write_state

SUBCOMMANDS = ("status", "results", "check", "unlock", "plot", "demo")


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    return make_campaign(tmp_path / "project")


def _assert_one_error_line(stderr: str, *fragments: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("fermilink-state: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def _corrupt_ledger(root: Path) -> None:
    with results_path(root).open("a", encoding="utf-8") as handle:
        handle.write("6\tc\trejected\n")


def test_the_console_script_is_installed_next_to_python() -> None:
    command = cli_command()
    assert len(command) == 1
    assert Path(command[0]).name == "fermilink-state"


def test_python_dash_m_is_the_same_command(campaign: Path) -> None:
    import subprocess
    import sys

    via_module = subprocess.run(
        [sys.executable, "-m", "fermilink_state", "results", str(campaign), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert via_module.returncode == 0
    assert via_module.stdout == run_cli("results", campaign, "--json").stdout


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_every_subcommand_has_help(subcommand: str) -> None:
    result = run_cli(subcommand, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: fermilink-state {subcommand}")


def test_no_subcommand_is_a_usage_error() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "usage: fermilink-state" in result.stderr


def test_an_unknown_option_is_a_usage_error(campaign: Path) -> None:
    assert run_cli("check", campaign, "--bogus").returncode == 2


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = run_cli("--version")
    assert result.stdout.strip() == f"fermilink-state {version('fermilink-state')}"


# -- status -------------------------------------------------------------------------


def test_status_reports_iteration_counts_incumbent_and_lock(campaign: Path) -> None:
    result = run_cli("status", campaign)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "iteration  5" in lines
    assert "results    6 rows: 1 baseline, 2 accepted, 2 rejected, 1 failed" in lines
    assert any(line.startswith("incumbent  runtime_s=0.7 (accepted, iteration 4") for line in lines)
    assert "run lock   none (no campaign process is running)" in lines
    assert "last 6 results:" in lines


def test_status_defaults_to_the_current_folder(campaign: Path) -> None:
    assert run_cli("status", cwd=campaign).stdout == run_cli("status", campaign).stdout


def test_status_accepts_the_campaign_folder_itself(campaign: Path) -> None:
    result = run_cli("status", campaign / ".fermilink-optimize")
    assert result.returncode == 0
    assert "iteration  5" in result.stdout


def test_status_json_has_the_same_facts(campaign: Path) -> None:
    result = run_cli("status", campaign, "--json")
    payload = json.loads(result.stdout)
    assert (payload["iteration"], payload["accepted"], payload["rejected"]) == (5, 2, 2)
    kinds = [payload[kind] for kind in ("baseline", "accepted", "rejected", "failed")]
    assert (kinds, sum(kinds)) == ([1, 2, 2, 1], payload["rows"])
    assert payload["incumbent"]["primary_metric_value"] == 0.7
    assert payload["run_lock"]["state"] == "inactive"
    assert [row["iteration"] for row in payload["recent"]] == [0, 1, 2, 3, 4, 5]
    assert payload["recent"][3]["primary_metric_value"] == "nan"


@pytest.mark.parametrize("backend", ["", "strict"])
def test_status_names_the_file_lock_backend_and_why(campaign: Path, backend: str) -> None:
    env = {**os.environ, "FERMILINK_STATE_LOCK": backend}
    text = run_cli("status", campaign, env=env).stdout.splitlines()
    payload = json.loads(run_cli("status", campaign, "--json", env=env).stdout)["lock_backend"]
    expected = fs.choose_lock_backend(campaign / ".fermilink-optimize") if not backend else None
    if expected is None:
        assert (payload["name"], payload["reason"]) == (
            "strict",
            "set by FERMILINK_STATE_LOCK=strict",
        )
    else:
        assert (payload["name"], payload["reason"]) == (expected.name, expected.reason)
    assert f"file locks {payload['name']} ({payload['reason']})" in text


def test_status_tail_limits_the_last_results(campaign: Path) -> None:
    payload = json.loads(run_cli("status", campaign, "--json", "--tail", "2").stdout)
    assert [row["iteration"] for row in payload["recent"]] == [4, 5]


def test_status_of_a_folder_without_a_campaign_is_one_error_line(tmp_path: Path) -> None:
    result = run_cli("status", tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    _assert_one_error_line(result.stderr, str(tmp_path), "no campaign here")


def test_status_of_a_missing_folder_is_one_error_line(tmp_path: Path) -> None:
    result = run_cli("status", tmp_path / "nope")
    assert result.returncode == 2
    _assert_one_error_line(result.stderr, "no such folder")


def test_status_of_an_empty_campaign(tmp_path: Path) -> None:
    (tmp_path / ".fermilink-optimize").mkdir()
    result = run_cli("status", tmp_path)
    assert result.returncode == 0
    assert "iteration  0" in result.stdout
    assert "no results recorded yet" in result.stdout


def test_status_of_a_locked_campaign_names_the_holder(campaign: Path) -> None:
    with live_run_lock(campaign) as pid:
        result = run_cli("status", campaign)
    assert result.returncode == 0
    assert f"run lock   held by live pid {pid} on this host" in result.stdout


def test_status_of_a_stale_lock_says_how_to_clear_it(campaign: Path) -> None:
    write_stale_run_lock(campaign)
    result = run_cli("status", campaign)
    assert "run lock   STALE:" in result.stdout
    assert "fermilink-state unlock" in result.stdout


def test_status_of_a_corrupt_ledger_still_reports_and_warns(campaign: Path) -> None:
    _corrupt_ledger(campaign)
    result = run_cli("status", campaign)
    assert result.returncode == 0
    assert "1 malformed ledger line skipped" in result.stdout
    assert "Traceback" not in result.stderr


# -- results ------------------------------------------------------------------------


def test_results_prints_every_row_as_a_table(campaign: Path) -> None:
    lines = run_cli("results", campaign).stdout.splitlines()
    assert lines[0].split() == ["iteration", "commit", "status", "metric", "description"]
    assert len(lines) == 7
    assert lines[4].split()[:4] == ["3", "c0003", "crash", "runtime_s=nan"]


def test_results_tail_prints_the_last_rows(campaign: Path) -> None:
    payload = json.loads(run_cli("results", campaign, "--tail", "2", "--json").stdout)
    assert [row["iteration"] for row in payload] == [4, 5]


def test_results_best_minimizes_by_default(campaign: Path) -> None:
    payload = json.loads(run_cli("results", campaign, "--best", "--json").stdout)
    assert (payload["iteration"], payload["primary_metric_value"]) == (4, 0.7)


def test_results_best_maximizes_when_asked(campaign: Path) -> None:
    result = run_cli("results", campaign, "--best", "--direction", "maximize")
    assert result.stdout.splitlines()[1].split()[:3] == ["0", "c0000", "baseline"]


def test_results_best_without_a_candidate_is_one_error_line(tmp_path: Path) -> None:
    make_campaign(tmp_path, [(0, "baseline", "nan"), (1, "rejected", 1.0)])
    result = run_cli("results", tmp_path, "--best")
    assert result.returncode == 1
    _assert_one_error_line(result.stderr, "no best result")


def test_results_json_is_strict_json(campaign: Path) -> None:
    text = run_cli("results", campaign, "--json").stdout
    assert "NaN" not in text
    assert len(json.loads(text)) == 6


def test_results_of_a_corrupt_ledger_names_the_line(campaign: Path) -> None:
    _corrupt_ledger(campaign)
    result = run_cli("results", campaign)
    assert result.returncode == 1
    assert result.stdout == ""
    _assert_one_error_line(result.stderr, f"{results_path(campaign)}:8:", "fermilink-state check")


def test_results_of_a_campaign_without_a_ledger(tmp_path: Path) -> None:
    (tmp_path / ".fermilink-optimize").mkdir()
    result = run_cli("results", tmp_path, "--json")
    assert (result.returncode, json.loads(result.stdout)) == (0, [])


def test_results_tail_must_be_positive(campaign: Path) -> None:
    result = run_cli("results", campaign, "--tail", "0")
    assert result.returncode == 2
    assert "must be 1 or more" in result.stderr


# -- check --------------------------------------------------------------------------


def test_check_of_a_healthy_campaign_exits_0(campaign: Path) -> None:
    result = run_cli("check", campaign)
    assert (result.returncode, result.stdout.splitlines()[-1]) == (
        0,
        f"no problems in {campaign / '.fermilink-optimize'}",
    )


def test_check_prints_each_problem_as_path_line_what_and_fix(campaign: Path) -> None:
    _corrupt_ledger(campaign)
    state_path(campaign).write_text("[]", encoding="utf-8")
    result = run_cli("check", campaign)
    assert result.returncode == 1
    problems = result.stdout.splitlines()[:-1]
    assert problems == [
        f"{state_path(campaign)}:1: expected a JSON object, found list; restore it from a "
        "backup or delete it; the library moves it aside to state.json.corrupt-<time> when "
        "it next loads it",
        f"{results_path(campaign)}:8: malformed row: expected 6 tab-separated fields, found 3; "
        "repair it into 6 tab-separated fields (iteration, commit, status, primary_metric_name, "
        "primary_metric_value, description) or delete the line",
    ]
    assert result.stdout.splitlines()[-1].startswith("2 problems in ")


def test_check_paths_read_as_the_root_was_typed(campaign: Path) -> None:
    _corrupt_ledger(campaign)
    result = run_cli("check", cwd=campaign)
    assert result.stdout.startswith(".fermilink-optimize/results.tsv:8: ")


def test_check_json_lists_the_problems(campaign: Path) -> None:
    write_stale_run_lock(campaign)
    result = run_cli("check", campaign, "--json")
    payload = json.loads(result.stdout)
    assert (result.returncode, payload["clean"]) == (1, False)
    assert [(p["path"], p["line"]) for p in payload["problems"]] == [
        (str(run_lock_path(campaign)), 1)
    ]


def test_check_json_marks_crash_debris(campaign: Path) -> None:
    write_stale_run_lock(campaign)
    payload = json.loads(run_cli("check", campaign, "--json").stdout)
    assert [p["debris"] for p in payload["problems"]] == [True]


def test_check_finds_a_state_that_claims_what_the_ledger_lacks(campaign: Path) -> None:
    # Issue 10's campaign: an incumbent and an iteration the ledger has no row of.
    write_state(state_path(campaign), {"iteration": 9, "incumbent_commit": "c0009"})
    result = run_cli("check", campaign)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "claims iteration 9, which the ledger results.tsv lacks" in lines[0]
    assert "names incumbent commit 'c0009'" in lines[1]
    assert lines[-1].startswith("2 problems in ")


def test_check_counts_the_crash_debris(campaign: Path) -> None:
    write_stale_run_lock(campaign)
    with results_path(campaign).open("a", encoding="utf-8") as handle:
        handle.write("6\tc")
    result = run_cli("check", campaign)
    assert result.returncode == 1
    assert ": crash debris: stale run lock" in result.stdout
    assert result.stdout.splitlines()[-1].endswith(
        "(2 of them crash debris that the next write repairs)"
    )


def test_check_of_a_folder_without_a_campaign_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("check", tmp_path)
    assert result.returncode == 2
    _assert_one_error_line(result.stderr, "no campaign here")


def test_check_never_changes_a_file(campaign: Path) -> None:
    _corrupt_ledger(campaign)
    state_path(campaign).write_text("{", encoding="utf-8")
    write_stale_run_lock(campaign)
    before = snapshot(campaign)
    assert run_cli("check", campaign).returncode == 1
    assert snapshot(campaign) == before


# -- unlock -------------------------------------------------------------------------


def test_unlock_clears_a_stale_lock(campaign: Path) -> None:
    payload = write_stale_run_lock(campaign)
    result = run_cli("unlock", campaign)
    assert result.returncode == 0
    assert f"holder pid {payload['pid']} is no longer running" in result.stdout
    assert not run_lock_path(campaign).exists()


def test_unlock_refuses_a_live_lock(campaign: Path) -> None:
    with live_run_lock(campaign) as pid:
        result = run_cli("unlock", campaign)
        assert run_lock_path(campaign).exists()
    assert result.returncode == 1
    _assert_one_error_line(result.stderr, f"live pid {pid}", "--force")


def test_unlock_force_clears_a_live_lock(campaign: Path) -> None:
    with live_run_lock(campaign):
        result = run_cli("unlock", campaign, "--force")
        assert not run_lock_path(campaign).exists()
    assert result.returncode == 0
    assert "with --force" in result.stdout


def test_unlock_without_a_lock_does_nothing(campaign: Path) -> None:
    result = run_cli("unlock", campaign)
    assert (result.returncode, result.stdout.startswith("no run lock at ")) == (0, True)


def test_unlock_json_says_what_was_removed(campaign: Path) -> None:
    payload = write_stale_run_lock(campaign)
    removed = json.loads(run_cli("unlock", campaign, "--json").stdout)
    assert (removed["removed"], removed["state"]) == (True, "inactive_stale")
    assert removed["holder"]["pid"] == payload["pid"]
    assert removed["path"] == str(run_lock_path(campaign))
    again = json.loads(run_cli("unlock", campaign, "--json").stdout)
    assert (again["removed"], again["state"]) == (False, "inactive")


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_every_subcommand_takes_json(subcommand: str) -> None:
    assert "--json" in run_cli(subcommand, "--help").stdout


# -- plot ---------------------------------------------------------------------------


def test_plot_writes_an_svg_with_one_mark_per_row(campaign: Path, tmp_path: Path) -> None:
    output = tmp_path / "chart.svg"
    result = run_cli("plot", campaign, "-o", output)
    assert result.returncode == 0
    assert result.stdout == f"wrote {output} (6 results)\n"
    root = ET.parse(output).getroot()
    marks = [el for el in root.iter() if el.get("class", "").startswith("mark ")]
    assert len(marks) == 6


def test_plot_to_stdout(campaign: Path) -> None:
    result = run_cli("plot", campaign, "-o", "-")
    assert ET.fromstring(result.stdout.encode()).tag.endswith("svg")


def test_plot_writes_plot_svg_beside_the_campaign_folder_by_default(campaign: Path) -> None:
    result = run_cli("plot", campaign / ".fermilink-optimize")
    assert result.returncode == 0, result.stderr
    written = campaign / "plot.svg"
    assert result.stdout == f"wrote {written} (6 results)\n"
    assert written.read_text(encoding="utf-8").startswith("<?xml")


def test_plot_to_stdout_cannot_also_print_json(campaign: Path) -> None:
    result = run_cli("plot", campaign, "-o", "-", "--json")
    assert (result.returncode, result.stdout) == (2, "")
    _assert_one_error_line(result.stderr, "--json")


def test_plot_json_says_what_it_wrote(campaign: Path, tmp_path: Path) -> None:
    chart = tmp_path / "chart.svg"
    payload = json.loads(run_cli("plot", campaign, "-o", chart, "--json").stdout)
    assert payload == {"path": str(chart), "results": 6, "bytes": chart.stat().st_size}


def test_plot_of_a_corrupt_ledger_warns_and_draws_the_rest(campaign: Path, tmp_path: Path) -> None:
    _corrupt_ledger(campaign)
    result = run_cli("plot", campaign, "-o", tmp_path / "chart.svg")
    assert result.returncode == 0
    assert result.stderr.startswith("fermilink-state: warning: ")
    assert "skipped 1 malformed line;" in result.stderr


def test_plot_of_an_empty_campaign_is_a_valid_svg(tmp_path: Path) -> None:
    (tmp_path / ".fermilink-optimize").mkdir()
    assert run_cli("plot", tmp_path, "-o", tmp_path / "chart.svg").returncode == 0
    assert ET.parse(tmp_path / "chart.svg").getroot().tag.endswith("svg")


def test_plot_into_a_missing_folder_is_one_error_line(campaign: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    result = run_cli("plot", campaign, "-o", blocker / "chart.svg")
    assert result.returncode == 1
    _assert_one_error_line(result.stderr)


def test_a_header_only_ledger_is_an_empty_campaign(tmp_path: Path) -> None:
    (tmp_path / ".fermilink-optimize").mkdir()
    results_path(tmp_path).write_text(RESULTS_HEADER, encoding="utf-8")
    result = run_cli("results", tmp_path)
    assert result.stdout.startswith("no results recorded yet")


def test_status_and_plot_count_rows_by_one_rule(campaign: Path, tmp_path: Path) -> None:
    status = json.loads(run_cli("status", campaign, "--json").stdout)
    chart = ET.parse(_written_plot(campaign, tmp_path)).getroot()
    subtitle = "".join(chart.find("{http://www.w3.org/2000/svg}desc").itertext())  # type: ignore[union-attr]
    for kind in ("baseline", "accepted", "rejected", "failed"):
        assert f"{status[kind]:,} {kind}" in subtitle
    assert f"{status['rows']} results" in subtitle


def _written_plot(campaign: Path, tmp_path: Path) -> Path:
    output = tmp_path / "chart.svg"
    assert run_cli("plot", campaign, "-o", output).returncode == 0
    return output


def test_one_row_is_one_row(tmp_path: Path) -> None:
    root = make_campaign(tmp_path / "project", [(0, "baseline", 1.0)])
    assert (
        "results    1 row: 1 baseline, 0 accepted, 0 rejected, 0 failed"
        in run_cli("status", root).stdout.splitlines()
    )
    assert run_cli("plot", root, "-o", tmp_path / "p.svg").stdout.endswith("(1 result)\n")
