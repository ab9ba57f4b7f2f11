"""``campaign_snapshot`` as users meet it: real pytest sub-runs, serial and under xdist.

Missing golden files, the update flag, mismatches, unused golden files
(reported, removed under the flag, judged only for what the run covered),
parametrized ids with unsafe characters, and parallel updates that leave
every other test's golden files alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SNAPSHOTS = "__fermilink_snapshots__"
UPDATE = "--fermilink-snapshot-update"
XDIST = pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])

CAMPAIGN_TESTS = """
    import os
    import pytest
    import fermilink_state as fs


    def _accept(project, description):
        fs.append_result(
            project.results_path, iteration=1, commit="c1", status="accepted",
            primary_metric_name="t", primary_metric_value=0.5, description=description,
        )
        fs.record_campaign_event(
            project.memory_path, commit="c1", primary_metric_name="t",
            primary_metric_value=0.5, status="accepted", description=description,
        )
        state = project.read_state()
        state["iteration"] = 1
        fs.write_state(project.state_path, state)


    def test_seeded(seeded_project, campaign_snapshot):
        campaign_snapshot.assert_match(seeded_project)


    @pytest.mark.parametrize("description", ["fast", "a/../../b", "SHOUT"])
    def test_accept(seeded_project, campaign_snapshot, description):
        _accept(seeded_project, description + os.environ.get("CHANGE", ""))
        campaign_snapshot.assert_match(seeded_project.root)


    class TestMemoryOnly:
        def test_memory(self, seeded_project, campaign_snapshot):
            campaign_snapshot.assert_match(seeded_project, files=["memory.md"])


    def test_fails_after_snapshot(seeded_project, campaign_snapshot):
        campaign_snapshot.assert_match(seeded_project, files=["results.tsv"])
        assert os.environ.get("FAIL_LAST") != "1"
"""
CAMPAIGN_TEST_COUNT = 6


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest('pytest_plugins = ["fermilink_state"]\n')
    pytester.makepyfile(test_campaign=CAMPAIGN_TESTS)
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def _golden_files(root: Path) -> dict[str, bytes]:
    base = root / SNAPSHOTS
    return {
        path.relative_to(base).as_posix(): path.read_bytes()
        for path in sorted(base.rglob("*"))
        if path.is_file()
    }


def _module_folder(pytester: pytest.Pytester) -> Path:
    return pytester.path / SNAPSHOTS / "test_campaign"


@XDIST
def test_missing_fails_naming_the_flag_then_update_writes_then_it_matches(
    suite: pytest.Pytester, xdist: list[str]
) -> None:
    missing = _run(suite, *xdist)
    missing.assert_outcomes(failed=CAMPAIGN_TEST_COUNT)
    missing.stdout.fnmatch_lines([f"*no golden file for *run pytest with {UPDATE} to write it*"])
    assert not (suite.path / SNAPSHOTS).exists()

    updated = _run(suite, UPDATE, *xdist)
    updated.assert_outcomes(passed=CAMPAIGN_TEST_COUNT)
    updated.stdout.fnmatch_lines(["*fermilink-state: 14 golden files updated*"])
    files = _golden_files(suite.path)
    assert sorted(files) == sorted(
        [
            *(
                f"test_campaign/test_seeded/{name}"
                for name in ("memory.md", "results.tsv", "state.json")
            ),
            *(
                f"test_campaign/test_accept[fast]/{name}"
                for name in ("memory.md", "results.tsv", "state.json")
            ),
            *(
                f"test_campaign/{folder}/{name}"
                for folder in _hashed_folders(suite, "test_accept[")
                for name in ("memory.md", "results.tsv", "state.json")
            ),
            "test_campaign/TestMemoryOnly.test_memory/memory.md",
            "test_campaign/test_fails_after_snapshot/results.tsv",
        ]
    )
    assert b"<utc>" in files["test_campaign/test_seeded/state.json"]
    # "a/../../b" stays inside the module's folder; nothing lands elsewhere.
    module_folder = _module_folder(suite)
    for path in (suite.path / SNAPSHOTS).rglob("*"):
        assert path == module_folder or module_folder in path.parents

    again = _run(suite, *xdist)
    again.assert_outcomes(passed=CAMPAIGN_TEST_COUNT)
    assert "unused" not in again.stdout.str()
    assert "updated" not in again.stdout.str()
    assert _golden_files(suite.path) == files


def _hashed_folders(pytester: pytest.Pytester, prefix: str) -> list[str]:
    # The unsafe and upper-case ids: a safe name, "~" and a hash.
    folders = sorted(
        path.name for path in _module_folder(pytester).iterdir() if path.name.startswith(prefix)
    )
    hashed = [name for name in folders if "~" in name]
    assert len(hashed) == 2, folders
    assert all(
        name.startswith(("test_accept[a_.._.._b]~", "test_accept[SHOUT]~")) for name in hashed
    )
    return hashed


@XDIST
def test_a_mismatch_shows_a_diff_per_section_row_and_key_path(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    _run(suite, UPDATE).assert_outcomes(passed=CAMPAIGN_TEST_COUNT)
    before = _golden_files(suite.path)
    monkeypatch.setenv("CHANGE", "er")
    result = _run(suite, "-k", "fast", *xdist)
    # (xdist's controller does not count deselected tests: compare the rest)
    deselected = 0 if xdist else CAMPAIGN_TEST_COUNT - 1
    result.assert_outcomes(failed=1, deselected=deselected)
    result.stdout.fnmatch_lines(
        [
            "*the campaign differs from its golden files in *test_accept[[]fast[]]"
            " (results.tsv, memory.md):",
            "*results.tsv:",
            "*line 3: description 'fast' -> 'faster'",
            "*memory.md:",
            "*section '### Progress log' changed:",
            "*+- [[]<utc>[]] accepted: faster (c1, t=0.5)",
            "*section '### Accepted experiments' changed:",
            "*-- [[]<utc>[]] fast (c1, t=0.5)",
            "*+- [[]<utc>[]] faster (c1, t=0.5)",
            "*If the change is intended, run pytest with --fermilink-snapshot-update.",
        ]
    )
    assert _golden_files(suite.path) == before

    fixed = _run(suite, "-k", "fast", UPDATE, *xdist)
    fixed.assert_outcomes(passed=1, deselected=deselected)
    after = _golden_files(suite.path)
    assert [name for name in after if after[name] != before[name]] == [
        "test_campaign/test_accept[fast]/memory.md",
        "test_campaign/test_accept[fast]/results.tsv",
    ]


def _plant_stale_files(pytester: pytest.Pytester) -> dict[str, Path]:
    module_folder = _module_folder(pytester)
    stale = {
        "orphan test": module_folder / "test_renamed" / "memory.md",
        "extra file of a passing test": module_folder / "test_seeded" / "worker_memory.md.old",
        "extra file of a failing test": module_folder / "test_fails_after_snapshot" / "memory.md",
        "orphan module": pytester.path / SNAPSHOTS / "test_deleted" / "test_x" / "state.json",
    }
    for path in stale.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("stale\n")
    return stale


@XDIST
def test_unused_files_are_reported_then_removed_by_the_update_flag(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    _run(suite, UPDATE, *xdist).assert_outcomes(passed=CAMPAIGN_TEST_COUNT)
    stale = _plant_stale_files(suite)
    monkeypatch.setenv("FAIL_LAST", "1")
    judged = [stale["orphan test"], stale["extra file of a passing test"], stale["orphan module"]]

    reported = _run(suite, *xdist)
    reported.assert_outcomes(passed=CAMPAIGN_TEST_COUNT - 1, failed=1)
    reported.stdout.fnmatch_lines(
        [f"*fermilink-state: 3 unused golden files (remove with {UPDATE})*"]
        + [f"unused {path}" for path in sorted(judged)]
    )
    assert str(stale["extra file of a failing test"]) not in reported.stdout.str()
    assert all(path.exists() for path in stale.values())

    removed = _run(suite, UPDATE, *xdist)
    removed.assert_outcomes(passed=CAMPAIGN_TEST_COUNT - 1, failed=1)
    removed.stdout.fnmatch_lines(
        ["*fermilink-state: 3 unused golden files removed*"]
        + [f"removed {path}" for path in sorted(judged)]
    )
    assert [path.exists() for path in judged] == [False, False, False]
    assert not (suite.path / SNAPSHOTS / "test_deleted").exists()
    # A test that failed did not show which of its files it needs: kept.
    assert stale["extra file of a failing test"].exists()


@pytest.mark.parametrize(
    ("selection", "also_ran"),
    [
        (["-k", "seeded"], []),
        (["test_campaign.py::test_seeded"], []),
        (
            ["--deselect", "test_campaign.py::test_accept"],
            ["test_campaign/test_fails_after_snapshot/memory.md"],
        ),
    ],
    ids=["keyword", "node-id", "deselect"],
)
def test_a_filtered_run_judges_only_the_tests_it_ran(
    suite: pytest.Pytester, selection: list[str], also_ran: list[str]
) -> None:
    _run(suite, UPDATE).assert_outcomes(passed=CAMPAIGN_TEST_COUNT)
    stale = _plant_stale_files(suite)
    before = _golden_files(suite.path)

    result = _run(suite, UPDATE, "-n", "2", *selection)
    assert result.ret == 0
    after = _golden_files(suite.path)
    removed = sorted(set(before) - set(after))
    # The test that ran shows its extra file unused; the module's file gone
    # from disk shows its folder unused. The folder of a test that was not
    # collected (or renamed) cannot be judged by a filtered run, nor the
    # files of the tests left out.
    assert removed == sorted(
        [
            "test_campaign/test_seeded/worker_memory.md.old",
            "test_deleted/test_x/state.json",
            *also_ran,
        ]
    )
    assert stale["orphan test"].exists()
    assert {name: after[name] for name in after} == {name: before[name] for name in after}


def test_parallel_updates_leave_every_other_test_alone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest('pytest_plugins = ["fermilink_state"]\n')
    pytester.makepyfile(
        test_many="""
        import os
        import pytest
        import fermilink_state as fs

        @pytest.mark.parametrize("number", range(24))
        def test_row(seeded_project, campaign_snapshot, number):
            changed = number % 2 and os.environ.get("CHANGE", "")
            for iteration in range(1, 30):
                fs.append_result(
                    seeded_project.results_path, iteration=iteration, commit=f"c{iteration}",
                    status="accepted", primary_metric_name="t",
                    primary_metric_value=number / iteration, description=f"{number}{changed}",
                )
            campaign_snapshot.assert_match(seeded_project)
        """
    )
    _run(pytester, UPDATE, "-n", "2").assert_outcomes(passed=24)
    first = _golden_files(pytester.path)
    assert len(first) == 72

    monkeypatch.setenv("CHANGE", "-changed")
    _run(pytester, UPDATE, "-n", "2").assert_outcomes(passed=24)
    second = _golden_files(pytester.path)
    assert sorted(second) == sorted(first)  # nothing lost, no temp litter
    changed = sorted({name.split("/")[1] for name in first if first[name] != second[name]})
    assert changed == sorted(f"test_row[{number}]" for number in range(1, 24, 2))
    for name, data in second.items():
        if name.endswith("results.tsv"):
            assert data.count(b"\n") == 31, name  # header, baseline, 29 rows: whole
    _run(pytester, "-n", "2").assert_outcomes(passed=24)


def test_a_crashed_worker_means_nothing_is_judged(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(suite, UPDATE).assert_outcomes(passed=CAMPAIGN_TEST_COUNT)
    stale = _plant_stale_files(suite)
    suite.makepyfile(
        test_crash="""
        import os

        def test_worker_dies():
            os._exit(1)
        """
    )
    # The dead worker's record of what it used is lost: judging without it
    # could call a used file unused, so nothing is judged or removed.
    result = _run(suite, UPDATE, "-n", "2")
    result.stdout.fnmatch_lines(["*unused golden files not judged: worker gw* ended without*"])
    assert "unused golden file" not in result.stdout.str().replace("unused golden files not", "")
    assert all(path.exists() for path in stale.values())
