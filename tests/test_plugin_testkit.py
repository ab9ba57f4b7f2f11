"""The test kit's campaign tools in real pytest sub-runs: pass and fail paths, also under xdist.

``crash_explorer`` / ``explore_crashes``, ``assert_campaign_consistent`` and
``run_concurrently`` as a downstream suite uses them; the fixture projects'
durability opt-in; the seed marker's error for a partial row; the section
assertion's message under ``-vv`` and ``--assert=plain``.
"""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.timeout(300)

TOOLS = """
import pytest

import fermilink_state as fs
from fermilink_state.testing import (
    CrashState,
    assert_campaign_consistent,
    crash_mark,
    run_concurrently,
)

ROW = dict(
    iteration=1, commit="c1", status="accepted",
    primary_metric_name="runtime_seconds", primary_metric_value=0.5, description="faster",
)


def _next_state(root):
    return {**fs.load_state(fs.state_path(root)), "iteration": 1, "incumbent_commit": "c1"}


def row_then_state(root):
    fs.record_iteration(root, row=ROW, state=_next_state(root))
    crash_mark("c1")


def state_then_row(root):
    fs.write_state(fs.state_path(root), _next_state(root))
    fs.append_result(fs.results_path(root), **ROW)


def consistent_and_nothing_lost(copy_root, state: CrashState):
    assert_campaign_consistent(copy_root)
    if "c1" in state.marks:
        assert fs.read_results(copy_root / ".fermilink-optimize/results.tsv")[-1].commit == "c1"


@pytest.mark.parametrize("model", ["kill", "power"])
def test_row_then_state_survives(seeded_project, crash_explorer, model):
    report = crash_explorer(row_then_state, consistent_and_nothing_lost, model=model)
    assert report.ok and report.points >= 5 and report.model == model
    assert report.calls[0] == "record_iteration"


@pytest.mark.parametrize("model", ["kill", "power"])
def test_state_then_row_is_caught(seeded_project, crash_explorer, model):
    crash_explorer(state_then_row, consistent_and_nothing_lost, model=model)


def test_a_seeded_campaign_is_consistent(seeded_project):
    assert assert_campaign_consistent(seeded_project.root, allow_debris=False) == []


@pytest.mark.fermilink_seed(state={"iteration": 3})
def test_a_state_ahead_of_the_ledger_is_not(seeded_project):
    assert_campaign_consistent(seeded_project.root)


def add_row(index, root):
    fs.append_result(fs.results_path(root), **{**ROW, "iteration": index + 1})
    return index


def test_concurrent_appenders_lose_nothing(seeded_project):
    outcomes = run_concurrently(add_row, 4, seeded_project.root)
    assert [outcome.result() for outcome in outcomes] == [0, 1, 2, 3]
    iterations = sorted(row.iteration for row in seeded_project.read_results())
    assert iterations == [0, 1, 2, 3, 4]


def boom(index):
    raise RuntimeError(f"boom {index}")


def test_a_failing_process_is_reported(seeded_project):
    outcomes = run_concurrently(boom, 2, start="fork")
    outcomes[1].result()
"""
TOOLS_PASSED = 4
TOOLS_FAILED = 4


def _write(pytester: pytest.Pytester, name: str, source: str) -> None:
    pytester.path.joinpath(name).write_text(textwrap.dedent(source), encoding="utf-8")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "fermilink_state", *args, timeout=240)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_each_tool_passes_and_fails(pytester: pytest.Pytester, xdist: list[str]) -> None:
    _write(pytester, "test_tools.py", TOOLS)
    result = _run(pytester, "--strict-markers", *xdist)
    result.assert_outcomes(passed=TOOLS_PASSED, failed=TOOLS_FAILED)
    text = result.stdout.str()
    for model in ("kill", "power"):
        assert f"crash states ({model} model) failed the check; " in text
    # The failure names the operation the crash followed and the library call.
    assert "rename .fermilink-optimize/.state.json." in text
    assert "(in write_state)" in text
    assert "claims iteration 1, which the ledger results.tsv lacks" in text
    assert "claims iteration 3, which the ledger results.tsv lacks (last row: 0)" in text
    assert "process 1 raised (exit code 1)" in text
    assert "RuntimeError: boom 1" in text


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_failing_crash_copies_are_kept_and_listed(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    _write(pytester, "test_tools.py", TOOLS)
    result = _run(pytester, "--fermilink-keep", "-k", "state_then_row and kill", *xdist)
    result.assert_outcomes(failed=1)
    kept = [line for line in result.stdout.lines if "kept: " in line]
    assert kept
    copy = pytester.path.__class__(kept[0].split("kept: ", 1)[1].strip())
    assert (copy / ".fermilink-optimize" / "state.json").is_file()
    result.stdout.fnmatch_lines(["*projects of failed tests (kept)*", "*test_state_then_row*kill*"])


DURABILITY = """
import os

import pytest

import fermilink_state as fs

ROW = dict(
    iteration=1, commit="c1", status="accepted",
    primary_metric_name="runtime_seconds", primary_metric_value=0.5, description="faster",
)


@pytest.fixture
def syncs(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fdatasync", calls.append)
    return calls


def test_not_durable_by_default(seeded_project, syncs):
    fs.append_result(seeded_project.results_path, **ROW)
    assert syncs == []


@pytest.mark.fermilink_durable
def test_durable_when_marked(seeded_project, syncs):
    fs.append_result(seeded_project.results_path, **ROW)
    assert len(syncs) == 1


def test_the_setting_ends_with_the_test():
    assert os.environ.get("FERMILINK_STATE_FSYNC") == "unchanged"
"""


@pytest.mark.parametrize(
    ("args", "passed", "failed"),
    [([], 3, 0), (["--fermilink-durable"], 2, 1)],
    ids=["default", "durable-option"],
)
def test_fixture_projects_sync_only_when_asked(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    passed: int,
    failed: int,
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_FSYNC", "unchanged")
    _write(pytester, "test_durability.py", DURABILITY)
    result = _run(pytester, "--strict-markers", "-p", "no:randomly", *args)
    result.assert_outcomes(passed=passed, failed=failed)
    if failed:
        result.stdout.fnmatch_lines(["*FAILED*test_not_durable_by_default*"])


def test_a_partial_seed_row_fails_in_one_line(pytester: pytest.Pytester) -> None:
    _write(
        pytester,
        "test_seed.py",
        """
        import pytest

        @pytest.mark.fermilink_seed(results=[{"iteration": 1, "commit": "c"}])
        def test_one(seeded_project):
            pass
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.fermilink_seed: result row {'iteration': 1, 'commit': 'c'} lacks "
            "status, primary_metric_name, primary_metric_value; a row gives*"
        ]
    )
    assert "_project.py" not in result.stdout.str()


@pytest.mark.parametrize("mode", ["-vv", "--assert=plain"])
def test_section_appended_says_where_the_line_went(pytester: pytest.Pytester, mode: str) -> None:
    _write(
        pytester,
        "test_memory.py",
        """
        from fermilink_state.testing import assert_section_appended

        BEFORE = "## Notes\\n- a\\n## Other\\n- x\\n"

        def test_wrong_section():
            after = BEFORE.replace("- x\\n", "- x\\n- new\\n")
            assert_section_appended(BEFORE, after, "## Notes", "- new")
        """,
    )
    result = _run(pytester, mode)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*section '## Notes' of the memory text did not gain exactly one line at its end "
            "(it gained 0 lines; placeholders removed by an append are allowed) "
            "(the section is unchanged).",
            "*the expected line went into another section instead: '## Other' gained '- new'",
        ]
    )


def test_the_documented_conftest_line_gives_markers_and_options(
    pytester: pytest.Pytester,
) -> None:
    # README: fixtures imported by name bring no marker and no option; this line does.
    _write(pytester, "conftest.py", 'pytest_plugins = ["fermilink_state"]\n')
    _write(
        pytester,
        "test_one.py",
        """
        import pytest

        @pytest.mark.fermilink_seed(package_id="p")
        @pytest.mark.fermilink_durable
        def test_one(seeded_project):
            assert seeded_project.read_state()["package_id"] == "p"
        """,
    )
    result = pytester.runpytest_subprocess("--strict-markers", "--fermilink-keep", timeout=240)
    result.assert_outcomes(passed=1)
