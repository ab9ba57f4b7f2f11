"""``shared_optimize_project``: one campaign for the whole session, every xdist worker.

A sub-run under ``-n 3`` counts how many times the campaign is seeded (a
wrapper around the seeding engine logs each call) and has every worker write
to it at once; then this test reads what arrived.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fermilink_state import read_memory, read_results
from fermilink_state.testing import assert_results_well_formed

WORKERS = 3
TESTS = 12  # xdist's first round sends 2 to each of the 3 workers: all of them write
ROWS_PER_TEST = 10
EVENTS_PER_TEST = 3

# Session-scoped and autouse, so it wraps the engine before the shared
# fixture runs, on workers only, and is undone at the end (an in-process
# sub-run shares our modules).
COUNTING_CONFTEST = """
    import os
    import pathlib

    import pytest

    from fermilink_state.testing import _project

    HERE = pathlib.Path(__file__).parent


    @pytest.fixture(scope="session", autouse=True)
    def count_seeding():
        original = _project.seed_project

        def counting(*args, **kwargs):
            with open(HERE / "seeded.log", "a") as handle:
                handle.write(f"{os.getpid()}\\n")
            return original(*args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_project, "seed_project", counting)
            yield
"""

WRITERS = f"""
    import pathlib

    import pytest

    import fermilink_state as fs

    HERE = pathlib.Path(__file__).parent


    @pytest.mark.parametrize("number", range({TESTS}))
    def test_write(shared_optimize_project, worker_id, number):
        project = shared_optimize_project
        for row in range({ROWS_PER_TEST}):
            fs.append_result(
                project.results_path, iteration=number, commit=f"{{number}}-{{row}}",
                status="rejected", primary_metric_name="t", primary_metric_value=row,
                description=worker_id,
            )
        for event in range({EVENTS_PER_TEST}):
            fs.record_campaign_event(
                project.memory_path, commit=f"{{number}}-{{event}}", primary_metric_name="t",
                primary_metric_value=event, status="rejected", description=worker_id,
            )
        with open(HERE / "writers.log", "a") as handle:
            handle.write(f"{{worker_id}} {{project.root}}\\n")
"""


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def campaign_run(pytester: pytest.Pytester) -> pytest.Pytester:
    """A sub-run of the writers under ``-n 3``, already finished and passed."""
    pytester.makeconftest(textwrap.dedent(COUNTING_CONFTEST))
    pytester.makepyfile(test_writers=textwrap.dedent(WRITERS))
    result = pytester.runpytest("-p", "fermilink_state", "-n", str(WORKERS))
    result.assert_outcomes(passed=TESTS)
    return pytester


def _shared_root(run: pytest.Pytester) -> Path:
    roots = {line.split(" ", 1)[1] for line in _lines(run.path / "writers.log")}
    assert len(roots) == 1, roots
    return Path(roots.pop())


def test_seeded_exactly_once_across_workers(campaign_run: pytest.Pytester) -> None:
    assert len(_lines(campaign_run.path / "seeded.log")) == 1


def test_every_worker_used_the_one_campaign(campaign_run: pytest.Pytester) -> None:
    writers = [line.split(" ", 1)[0] for line in _lines(campaign_run.path / "writers.log")]
    assert len(writers) == TESTS
    assert sorted(set(writers)) == [f"gw{n}" for n in range(WORKERS)]
    _shared_root(campaign_run)


def test_every_row_from_every_worker_arrived(campaign_run: pytest.Pytester) -> None:
    results = _shared_root(campaign_run) / ".fermilink-optimize" / "results.tsv"
    assert_results_well_formed(results)
    rows = read_results(results)
    assert rows[0].status == "baseline"
    commits = sorted(row.commit for row in rows[1:])
    expected = sorted(f"{n}-{row}" for n in range(TESTS) for row in range(ROWS_PER_TEST))
    assert commits == expected
    assert {row.description for row in rows[1:]} == {f"gw{n}" for n in range(WORKERS)}


def test_every_event_from_every_worker_arrived(campaign_run: pytest.Pytester) -> None:
    memory = read_memory(_shared_root(campaign_run) / ".fermilink-optimize" / "memory.md")
    rejected = memory.section("### Rejected patterns") or []
    summaries = sorted(line.rsplit("(", 1)[1] for line in rejected if line.strip())
    expected = sorted(
        f"{n}-{event}, t={event})" for n in range(TESTS) for event in range(EVENTS_PER_TEST)
    )
    assert summaries == expected


def test_without_xdist_the_campaign_is_in_the_run_basetemp(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker's environment leaks into the sub-runs it starts; only the
    # config tells a worker, so this plain run must not use the parent folder.
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")
    pytester.makepyfile(
        test_one="""
        import pathlib

        def test_one(shared_optimize_project):
            pathlib.Path(__file__).with_name("root.txt").write_text(
                str(shared_optimize_project.root)
            )
        """
    )
    basetemp = pytester.path / "basetemp"
    result = pytester.runpytest("-p", "fermilink_state", f"--basetemp={basetemp}")
    result.assert_outcomes(passed=1)
    root = Path((pytester.path / "root.txt").read_text(encoding="utf-8"))
    assert root.parent == basetemp


def test_under_xdist_the_campaign_is_beside_the_worker_folders(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_one="""
        import pathlib

        def test_one(shared_optimize_project):
            pathlib.Path(__file__).with_name("root.txt").write_text(
                str(shared_optimize_project.root)
            )
        """
    )
    basetemp = pytester.path / "basetemp"
    result = pytester.runpytest("-p", "fermilink_state", "-n", "2", f"--basetemp={basetemp}")
    result.assert_outcomes(passed=1)
    root = Path((pytester.path / "root.txt").read_text(encoding="utf-8"))
    assert root.parent == basetemp
    assert root.name == "fermilink-shared-project"
