"""campaign_problems: cross-file claims, and crash debris told apart from inconsistencies."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from campaign_builder import dead_pid, make_campaign, write_stale_run_lock
from fermilink_state import (
    StateCorruptWarning,
    append_result,
    optimize_root,
    results_path,
    state_path,
    write_state,
)
from fermilink_state._consistency import CampaignProblem, campaign_problems
from fermilink_state._process import hostname

ROW = b"6\tc0006\trejected\truntime_s\t0.9\tcandidate 6\n"


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    return make_campaign(tmp_path / "project")


def _append(campaign: Path, data: bytes) -> None:
    with results_path(campaign).open("ab") as handle:
        handle.write(data)


def _only(problems: list[CampaignProblem]) -> CampaignProblem:
    assert len(problems) == 1, [str(problem) for problem in problems]
    return problems[0]


def test_a_healthy_campaign_has_no_problems(campaign: Path) -> None:
    assert campaign_problems(campaign) == []


def test_a_state_iteration_the_ledger_lacks_is_an_inconsistency(campaign: Path) -> None:
    write_state(state_path(campaign), {"iteration": 7, "schema_version": 1})
    problem = _only(campaign_problems(campaign))
    assert problem.path == state_path(campaign)
    assert not problem.debris
    assert problem.what == "claims iteration 7, which the ledger results.tsv lacks (last row: 5)"
    assert "append the ledger row before it writes state.json" in problem.fix
    # The line of the "iteration" key in state.json.
    lines = state_path(campaign).read_text(encoding="utf-8").splitlines()
    assert lines[problem.line - 1].startswith('  "iteration":')


def test_a_state_iteration_with_an_empty_ledger_is_an_inconsistency(campaign: Path) -> None:
    results_path(campaign).write_bytes(b"")
    assert "(no rows)" in _only(campaign_problems(campaign)).what


def test_iteration_zero_claims_no_row(campaign: Path) -> None:
    # FermiLink's initial state says iteration 0 before and after its baseline.
    results_path(campaign).write_bytes(b"")
    write_state(state_path(campaign), {"iteration": 0})
    assert campaign_problems(campaign) == []


def test_an_incumbent_the_ledger_lacks_is_an_inconsistency(campaign: Path) -> None:
    write_state(state_path(campaign), {"iteration": 5, "incumbent_commit": "c9999"})
    problem = _only(campaign_problems(campaign))
    assert problem.what == (
        "names incumbent commit 'c9999', but the ledger results.tsv has no row of it"
    )
    assert not problem.debris


def test_an_incumbent_only_rejected_in_the_ledger_is_an_inconsistency(campaign: Path) -> None:
    write_state(state_path(campaign), {"iteration": 5, "incumbent_commit": "c0002"})
    assert "the ledger has it only as rejected" in _only(campaign_problems(campaign)).what


@pytest.mark.parametrize("commit", ["c0000", "c0004"])  # the baseline, an accepted row
def test_an_incumbent_in_the_ledger_is_consistent(campaign: Path, commit: str) -> None:
    write_state(state_path(campaign), {"iteration": 5, "incumbent_commit": commit})
    assert campaign_problems(campaign) == []


def test_a_corrupt_state_makes_no_claims(campaign: Path) -> None:
    state_path(campaign).write_text('{"iteration": 99', encoding="utf-8")
    assert "invalid JSON" in _only(campaign_problems(campaign)).what


@pytest.mark.parametrize(
    ("tail", "what"),
    [
        (b"6\tc0006\trej", "no row: a writer was interrupted mid-row"),  # cut short
        (b"\x8f\x01garbage", "no row: a writer was interrupted mid-row"),
        (b"\0" * len(ROW), "NUL bytes after the last row"),  # the row's bytes never landed
    ],
    ids=["partial", "garbage", "nul"],
)
def test_a_torn_last_line_is_debris(campaign: Path, tail: bytes, what: str) -> None:
    _append(campaign, tail)
    problem = _only(campaign_problems(campaign))
    assert (problem.path, problem.line, problem.debris) == (results_path(campaign), 8, True)
    assert what in problem.what
    assert "the next append" in problem.fix
    assert str(problem).startswith(f"{results_path(campaign)}:8: crash debris: ")


def test_a_whole_last_row_without_its_line_break_is_debris_and_a_row(campaign: Path) -> None:
    _append(campaign, ROW.rstrip(b"\n"))
    write_state(state_path(campaign), {"iteration": 6})
    problem = _only(campaign_problems(campaign))  # the state's claim is met
    assert problem.debris
    assert problem.what == "the last row has no line ending: a writer was interrupted"


@pytest.mark.parametrize("tail", [b"6\tc0006\trej", b"\0\0\0", ROW.rstrip(b"\n")])
def test_the_next_append_repairs_what_is_called_debris(campaign: Path, tail: bytes) -> None:
    _append(campaign, tail)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StateCorruptWarning)
        append_result(
            results_path(campaign),
            iteration=7,
            commit="c0007",
            status="rejected",
            primary_metric_name="runtime_s",
            primary_metric_value=0.95,
            description="after the crash",
        )
    problems = campaign_problems(campaign)
    assert all(problem.debris for problem in problems), [str(p) for p in problems]


def test_the_torn_end_moved_aside_is_debris(campaign: Path) -> None:
    (optimize_root(campaign) / "results.tsv.corrupt-20260101T000000Z").write_bytes(b"6\tc")
    problem = _only(campaign_problems(campaign))
    assert problem.debris
    assert "moved aside by the append that repaired it" in problem.what


def test_nul_lines_inside_the_ledger_are_an_inconsistency(campaign: Path) -> None:
    # The next append does not repair them (they end in a line break).
    _append(campaign, b"\0\0\0\n")
    problem = _only(campaign_problems(campaign))
    assert (problem.line, problem.debris) == (8, False)


def test_a_malformed_middle_row_is_an_inconsistency(campaign: Path) -> None:
    _append(campaign, b"6\tc0006\trej\n" + ROW.replace(b"6", b"7", 1))
    problem = _only(campaign_problems(campaign))
    assert (problem.line, problem.debris) == (8, False)
    assert "expected 6 tab-separated fields, found 3" in problem.what


def test_a_malformed_but_terminated_last_row_is_an_inconsistency(campaign: Path) -> None:
    # A newline means the write completed: no crash cuts a row this way.
    _append(campaign, b"6\tc0006\trej\n")
    assert not _only(campaign_problems(campaign)).debris


def test_a_stale_run_lock_is_debris(campaign: Path) -> None:
    write_stale_run_lock(campaign)
    problem = _only(campaign_problems(campaign))
    assert problem.debris
    assert "stale run lock" in problem.what


def test_a_dead_writer_s_temp_is_debris(campaign: Path) -> None:
    temp = optimize_root(campaign) / f".state.json.{hostname()}.{dead_pid()}.ab12cd34.tmp"
    temp.write_text("{}", encoding="utf-8")
    assert _only(campaign_problems(campaign)).debris


def test_a_live_writer_s_temp_is_no_problem(campaign: Path) -> None:
    temp = optimize_root(campaign) / f".state.json.{hostname()}.{os.getpid()}.ab12cd34.tmp"
    temp.write_text("{}", encoding="utf-8")
    assert campaign_problems(campaign) == []


def test_a_quarantined_file_is_not_debris(campaign: Path) -> None:
    (optimize_root(campaign) / "state.json.corrupt-20260101T000000Z").write_text("{", "utf-8")
    assert not _only(campaign_problems(campaign)).debris


def test_as_dict_says_whether_it_is_debris(campaign: Path) -> None:
    _append(campaign, b"torn")
    assert _only(campaign_problems(campaign)).as_dict()["debris"] is True


def test_claims_at_the_end_of_a_long_ledger_are_found(campaign: Path) -> None:
    rows = b"".join(b"%d\tc%d\taccepted\tm\t1\td\n" % (n, n) for n in range(6, 20_006))
    _append(campaign, rows)
    write_state(state_path(campaign), {"iteration": 20_005, "incumbent_commit": "c20005"})
    assert campaign_problems(campaign) == []


def _long_rows(first: int, last: int, status: bytes = b"rejected") -> bytes:
    return b"".join(
        b"%d\tc%d\t%s\tm\t1.5\ta wide description %d\n" % (n, n, status, n)
        for n in range(first, last)
    )


def test_claims_in_the_middle_of_a_long_ledger_are_found(campaign: Path) -> None:
    # Several read blocks of usual rows: the claimed rows sit in a middle one.
    _append(campaign, _long_rows(6, 40_000) + _long_rows(40_000, 40_001, b"accepted"))
    _append(campaign, _long_rows(40_001, 90_000))
    assert results_path(campaign).stat().st_size > 3 * (1 << 20)
    write_state(state_path(campaign), {"iteration": 40_000, "incumbent_commit": "c40000"})
    assert campaign_problems(campaign) == []


def test_an_incumbent_only_rejected_in_a_long_ledger_is_reported(campaign: Path) -> None:
    _append(campaign, _long_rows(6, 90_000))
    write_state(state_path(campaign), {"iteration": 123_456, "incumbent_commit": "c45000"})
    found = [problem.what for problem in campaign_problems(campaign)]
    assert found == [
        "claims iteration 123456, which the ledger results.tsv lacks (last row: 89999)",
        "names incumbent commit 'c45000', but the ledger has it only as rejected",
    ]


def test_block_and_line_scans_find_the_same_problems(campaign: Path) -> None:
    # Each kind of odd line in a different read block, among usual rows.
    odd = [
        b"7\tshort\n",
        b"iteration\tcommit\tstatus\tprimary_metric_name\tprimary_metric_value\tdescription\n",
        b"8\tc\taccepted\tm\t1\t\xff\n",
        b"9\tc\taccepted\tm\t1\td\r\n",
    ]
    data = b""
    for line in odd:
        data += _long_rows(10, 25_000) + line
    _append(campaign, data + b"99\tc99\tacc")
    write_state(state_path(campaign), {"iteration": 24_999, "incumbent_commit": "c9"})
    by_blocks = campaign_problems(campaign)
    from fermilink_state import _consistency

    by_lines: list[CampaignProblem] = []
    claims = _consistency._StateClaims.of(
        state_path(campaign), {"iteration": 24_999, "incumbent_commit": "c9"}
    )
    scan = _consistency._LedgerScan(results_path(campaign), claims, by_lines)
    with results_path(campaign).open("rb") as handle:
        scan.run(handle)
    assert [p.line for p in by_blocks if p.path.name == "results.tsv"] == [p.line for p in by_lines]
    assert [p.what for p in by_blocks if p.path.name == "results.tsv"] == [p.what for p in by_lines]
    assert len(by_lines) == 4  # short row, second header, bad UTF-8, torn tail (CRLF is fine)
