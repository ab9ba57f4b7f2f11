"""The plugin as users meet it: real pytest sub-runs through ``pytester``.

In-process and subprocess runs, plain and under xdist; how the plugin is
enabled and disabled; failure output with and without assertion rewriting;
the marker, the option and the report header.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import fermilink_state
from fermilink_state._process import pid_is_running

Runner = Callable[..., pytest.RunResult]

EVERY_FIXTURE = """
    import re

    import pytest

    import fermilink_state as fs
    from fermilink_state.testing import (
        FrozenClock,
        OptimizeProject,
        ProjectFactory,
        assert_only_sections_changed,
        assert_results_rows,
        assert_results_well_formed,
        assert_section_appended,
    )


    def test_optimize_project(optimize_project: OptimizeProject) -> None:
        assert optimize_project.runs_root.is_dir()
        assert not optimize_project.memory_path.exists()


    @pytest.mark.fermilink_seed(package_id="pkg")
    def test_seeded(seeded_project, seeded_memory, seeded_results) -> None:
        assert seeded_project.read_state()["package_id"] == "pkg"
        assert seeded_memory.is_file()
        assert_results_well_formed(seeded_results)


    def test_event(seeded_project: OptimizeProject, frozen_utc: FrozenClock) -> None:
        before = seeded_project.memory_path.read_text()
        fs.record_campaign_event(
            seeded_project.memory_path, commit="c1", primary_metric_name="t",
            primary_metric_value=0.5, status="rejected", description="slower",
        )
        fs.append_result(
            seeded_project.results_path, iteration=1, commit="c1", status="rejected",
            primary_metric_name="t", primary_metric_value=0.5, description="slower",
        )
        assert_section_appended(before, seeded_project.memory_path, "### Rejected patterns",
                                re.compile(r"slower \\(c1, t=0.5\\)$"))
        assert_only_sections_changed(
            before, seeded_project.memory_path,
            ["# FermiLink Optimize Memory", "### Progress log", "### Rejected patterns"],
        )
        assert_results_rows(seeded_project.results_path,
                            [{"status": "baseline"}, {"status": "rejected"}])


    def test_factory(make_optimize_project: ProjectFactory) -> None:
        assert make_optimize_project().root != make_optimize_project(seeded=False).root


    def test_stale(stale_run_lock, optimize_project) -> None:
        assert fs.run_lock_status(optimize_project.root).state == "inactive_stale"


    def test_live(live_run_lock, optimize_project) -> None:
        with pytest.raises(fs.RunLockHeld):
            fs.acquire_run_lock(optimize_project.root)


    def test_shared(shared_optimize_project: OptimizeProject) -> None:
        assert shared_optimize_project.read_results()[0].status == "baseline"


    def test_snapshot(seeded_project: OptimizeProject) -> None:
        before = seeded_project.snapshot()
        seeded_project.state_path.write_text("{}")
        assert before.diff(seeded_project.snapshot()) == [
            seeded_project.relative(seeded_project.state_path)
        ]
"""
EVERY_FIXTURE_TESTS = 8

FAILING_APPEND = """
    import fermilink_state as fs
    from fermilink_state.testing import assert_only_sections_changed, assert_section_appended


    def _reject(path):
        fs.record_campaign_event(
            path, commit="c1", primary_metric_name="t", primary_metric_value=0.5,
            status="rejected", description="slower",
        )


    def test_only_progress_log(seeded_project) -> None:
        before = seeded_project.memory_path.read_text()
        _reject(seeded_project.memory_path)
        assert_only_sections_changed(
            before, seeded_project.memory_path, ["# FermiLink Optimize Memory", "### Progress log"]
        )


    def test_appended_twice(seeded_project) -> None:
        before = seeded_project.memory_path.read_text()
        _reject(seeded_project.memory_path)
        _reject(seeded_project.memory_path)
        assert_section_appended(before, seeded_project.memory_path, "### Progress log")
"""


@pytest.fixture(params=["inprocess", "subprocess"])
def run(request: pytest.FixtureRequest, pytester: pytest.Pytester) -> Runner:
    """``pytester.runpytest`` in this process or in a fresh one."""
    if request.param == "inprocess":
        return pytester.runpytest_inprocess

    def subprocess_run(*args: str | os.PathLike[str]) -> pytest.RunResult:
        return pytester.runpytest_subprocess(*args, timeout=120)

    return subprocess_run


def _our_warnings(result: pytest.RunResult) -> list[str]:
    """Warning-summary lines about us. Not ``-W error``: an in-process run under an
    outer ``--assert=plain`` warns that xdist was imported unrewritten."""
    lines = result.stdout.lines
    if not any("warnings summary" in line for line in lines):
        return []
    start = next(n for n, line in enumerate(lines) if "warnings summary" in line)
    return [line for line in lines[start:] if "fermilink" in line]


def _write(pytester: pytest.Pytester, name: str, source: str) -> None:
    pytester.path.joinpath(name).write_text(textwrap.dedent(source), encoding="utf-8")


# -- enabling and disabling --------------------------------------------------


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_every_fixture_works(pytester: pytest.Pytester, run: Runner, xdist: list[str]) -> None:
    _write(pytester, "test_every_fixture.py", EVERY_FIXTURE)
    result = run("-p", "fermilink_state", "--strict-markers", *xdist)
    result.assert_outcomes(passed=EVERY_FIXTURE_TESTS)
    assert _our_warnings(result) == []


def test_not_loaded_by_installing(pytester: pytest.Pytester) -> None:
    _write(pytester, "test_one.py", "def test_one(seeded_project):\n    pass\n")
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'seeded_project' not found*"])


def test_pytest_plugins_in_conftest_enables(pytester: pytest.Pytester, run: Runner) -> None:
    _write(pytester, "conftest.py", 'pytest_plugins = ["fermilink_state"]\n')
    _write(pytester, "test_one.py", "def test_one(seeded_project):\n    pass\n")
    result = run()
    result.assert_outcomes(passed=1)
    assert _our_warnings(result) == []


def test_no_option_disables(pytester: pytest.Pytester, run: Runner) -> None:
    _write(pytester, "conftest.py", 'pytest_plugins = ["fermilink_state"]\n')
    _write(pytester, "test_one.py", "def test_one(optimize_project):\n    pass\n")
    result = run("-p", "no:fermilink_state")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'optimize_project' not found*"])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_double_registration_is_harmless(pytester: pytest.Pytester, xdist: list[str]) -> None:
    _write(pytester, "conftest.py", 'pytest_plugins = ["fermilink_state"]\n')
    _write(pytester, "test_every_fixture.py", EVERY_FIXTURE)
    result = pytester.runpytest("-p", "fermilink_state", *xdist)
    result.assert_outcomes(passed=EVERY_FIXTURE_TESTS)
    assert _our_warnings(result) == []


def test_conftest_imports_fixtures_by_name(pytester: pytest.Pytester, run: Runner) -> None:
    # No plugin: only the imported names exist, and their own needs come along.
    _write(
        pytester,
        "conftest.py",
        "from fermilink_state.plugin import frozen_utc, live_run_lock, seeded_memory\n",
    )
    _write(
        pytester,
        "test_one.py",
        """
        import fermilink_state as fs


        def test_memory(seeded_memory, frozen_utc):
            assert f"started_at_utc: {frozen_utc.now}" in seeded_memory.read_text()


        def test_live(live_run_lock, seeded_memory):
            status = fs.run_lock_status(seeded_memory.parent.parent)
            assert status.holder == live_run_lock
        """,
    )
    result = run()
    result.assert_outcomes(passed=2)
    assert _our_warnings(result) == []


@pytest.mark.parametrize("plugin", [[], ["-p", "fermilink_state"]], ids=["alone", "with-plugin"])
def test_conftest_star_import_gives_every_fixture(
    pytester: pytest.Pytester, plugin: list[str]
) -> None:
    # Fixtures only: a star import of the hooks would register the option twice.
    _write(pytester, "conftest.py", "from fermilink_state.plugin import *  # noqa: F403\n")
    _write(pytester, "test_every_fixture.py", EVERY_FIXTURE)
    result = pytester.runpytest(*plugin)
    result.assert_outcomes(passed=EVERY_FIXTURE_TESTS)


def test_conftest_imports_fixture_without_its_sibling(pytester: pytest.Pytester) -> None:
    _write(pytester, "conftest.py", "from fermilink_state.plugin import seeded_project\n")
    _write(pytester, "test_one.py", "def test_one(optimize_project):\n    pass\n")
    pytester.runpytest().assert_outcomes(errors=1)


def test_conftest_importing_package_first_gets_no_rewrite_warning(
    pytester: pytest.Pytester,
) -> None:
    # Only a fresh process shows it: here the package is already imported.
    _write(
        pytester,
        "conftest.py",
        """
        import fermilink_state
        from fermilink_state.plugin import optimize_project
        from fermilink_state.testing import assert_section_lines

        pytest_plugins = ["fermilink_state"]
        """,
    )
    _write(pytester, "test_one.py", "def test_one(seeded_project):\n    pass\n")
    result = pytester.runpytest_subprocess("-W", "error", timeout=120)
    result.assert_outcomes(passed=1)
    assert "PytestAssertRewriteWarning" not in result.stdout.str()


def test_testing_module_is_rewritten_with_the_plugin(pytester: pytest.Pytester) -> None:
    _write(
        pytester,
        "test_one.py",
        """
        import sys

        def test_loader():
            import fermilink_state.testing as testing
            assert type(testing.__loader__).__name__ == "AssertionRewritingHook"
        """,
    )
    pytester.runpytest_subprocess("-p", "fermilink_state", timeout=120).assert_outcomes(passed=1)


# -- the marker ---------------------------------------------------------------


def test_marker_is_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "fermilink_state", "--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.fermilink_seed(package_id=, benchmark_id=, benchmark_rel=*seeded_project*"]
    )


def test_marker_with_unknown_key_errors_clearly(pytester: pytest.Pytester) -> None:
    _write(
        pytester,
        "test_one.py",
        """
        import pytest

        @pytest.mark.fermilink_seed(pakage_id="x")
        def test_one(seeded_project):
            pass
        """,
    )
    result = pytester.runpytest("-p", "fermilink_state")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.fermilink_seed takes keyword arguments only*; got unknown keys pakage_id"]
    )


def test_marker_positional_argument_errors(pytester: pytest.Pytester) -> None:
    _write(
        pytester,
        "test_one.py",
        """
        import pytest

        @pytest.mark.fermilink_seed("pkg")
        def test_one(seeded_memory):
            pass
        """,
    )
    result = pytester.runpytest("-p", "fermilink_state")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*; got positional arguments ('pkg',)"])


# -- failure output -------------------------------------------------------------


@pytest.mark.parametrize("assert_mode", ["rewrite", "plain"])
def test_failure_names_sections_with_a_diff_each(
    pytester: pytest.Pytester, assert_mode: str
) -> None:
    _write(pytester, "test_fail.py", FAILING_APPEND)
    result = pytester.runpytest("-p", "fermilink_state", f"--assert={assert_mode}")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: 1 section of */memory.md changed that should not have: "
            "'### Rejected patterns' (changed) (allowed to change: *",
            "E       section '### Rejected patterns' changed:",
            "E         @@ -1,2 +1,2 @@",
            "E          ### Rejected patterns",
            "E         -- none yet",
            "E         +- ?*] slower (c1, t=0.5)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: section '### Progress log' of */memory.md did not gain "
            "exactly one line at its end (it gained 2 lines;*",
            "E         +- ?*] rejected: slower (c1, t=0.5)",
            "E         +- ?*] rejected: slower (c1, t=0.5)",
        ]
    )


def test_failure_hides_helper_frames(pytester: pytest.Pytester) -> None:
    _write(pytester, "test_fail.py", FAILING_APPEND)
    result = pytester.runpytest("-p", "fermilink_state", "--tb=long")
    assert "__tracebackhide__" not in result.stdout.str()
    assert "testing.py" not in result.stdout.str()


def test_memory_document_comparison_explained(pytester: pytest.Pytester) -> None:
    _write(
        pytester,
        "test_docs.py",
        """
        from fermilink_state import parse_memory

        def test_docs():
            left = parse_memory("## A\\n- 1\\n## B\\n- x\\n")
            right = parse_memory("## A\\n- 1\\n## B\\n- y\\n")
            assert left == right
        """,
    )
    result = pytester.runpytest("-p", "fermilink_state")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: assert MemoryDocument == MemoryDocument: 1 section differs "
            "(- left, + right): '## B' (changed)",
            "E         section '## B' changed:",
            "E           -- x",
            "E           +- y",
        ]
    )


def test_result_row_comparison_explained(pytester: pytest.Pytester) -> None:
    _write(
        pytester,
        "test_rows.py",
        """
        from fermilink_state import ResultRow

        def test_rows():
            left = ResultRow(1, "c1", "accepted", "t", 0.5, "d")
            assert left == ResultRow(1, "c1", "rejected", "t", 0.5, "d")
        """,
    )
    result = pytester.runpytest("-p", "fermilink_state")
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: assert ResultRow == ResultRow: 1 field differs",
            "E           status: 'accepted' != 'rejected'",
        ]
    )


# -- --fermilink-keep, teardown, the header -----------------------------------

RECORD_ROOTS = """
    import pathlib

    def _record(test, project):
        with open(pathlib.Path(__file__).parent / "roots.txt", "a") as handle:
            handle.write(f"{test} {project.root}\\n")

    def test_passes(seeded_project):
        _record("passes", seeded_project)

    def test_fails(seeded_project, make_optimize_project):
        _record("fails", seeded_project)
        _record("fails", make_optimize_project())
        assert False, "fails on purpose"
"""


def _recorded_roots(pytester: pytest.Pytester) -> dict[str, list[Path]]:
    """Project roots by test (``passes`` / ``fails``), in the order each test made them."""
    roots: dict[str, list[Path]] = {}
    for line in pytester.path.joinpath("roots.txt").read_text(encoding="utf-8").splitlines():
        test, root = line.split(" ", 1)
        roots.setdefault(test, []).append(Path(root))
    return roots


def test_projects_are_removed_after_each_test(pytester: pytest.Pytester) -> None:
    _write(pytester, "test_roots.py", RECORD_ROOTS)
    result = pytester.runpytest("-p", "fermilink_state")
    result.assert_outcomes(passed=1, failed=1)
    roots = [root for made in _recorded_roots(pytester).values() for root in made]
    assert len(roots) == 3
    assert [root for root in roots if root.exists()] == []
    assert "fermilink-state project" not in result.stdout.str()


COUNT_NEW_PROJECTS = """
    import importlib

    import pytest

    # The module the plugin imports from (an attribute of the package may be
    # an older copy after an in-process pytester run).
    _project = importlib.import_module("fermilink_state.testing._project")
    made = []

    @pytest.fixture(autouse=True)
    def count_new_projects(monkeypatch):
        real = _project.new_project
        monkeypatch.setattr(_project, "new_project", lambda root: made.append(root) or real(root))

    def test_seeded(seeded_project, seeded_results, seeded_memory):
        assert seeded_project.results_path.is_file()
        assert len(made) == 1

    def test_made(make_optimize_project):
        made.clear()
        assert make_optimize_project().state_path.is_file()
        assert len(made) == 1
"""


def test_a_seeded_project_makes_its_folders_once(pytester: pytest.Pytester) -> None:
    _write(pytester, "test_count.py", COUNT_NEW_PROJECTS)
    pytester.runpytest("-p", "fermilink_state").assert_outcomes(passed=2)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_keep_option_keeps_projects_and_prints_failed_ones(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    _write(pytester, "test_roots.py", RECORD_ROOTS)
    result = pytester.runpytest("-p", "fermilink_state", "--fermilink-keep", *xdist)
    result.assert_outcomes(passed=1, failed=1)
    roots = _recorded_roots(pytester)
    [passed_root], failed_roots = roots["passes"], roots["fails"]
    assert all(root.is_dir() for root in [passed_root, *failed_roots])
    result.stdout.fnmatch_lines(
        [
            "*- fermilink-state project -*",
            str(failed_roots[0]),
            str(failed_roots[1]),
            "*- fermilink-state: projects of failed tests (kept) -*",
            f"test_roots.py::test_fails: {failed_roots[0]}",
            f"test_roots.py::test_fails: {failed_roots[1]}",
        ]
    )
    assert str(passed_root) not in result.stdout.str()


def test_keep_option_is_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "fermilink_state", "--help")
    result.stdout.fnmatch_lines(["fermilink-state:", "*--fermilink-keep*keep every test's*"])


def test_live_run_lock_holder_ended_at_teardown(pytester: pytest.Pytester) -> None:
    _write(
        pytester,
        "test_live.py",
        """
        import pathlib

        def test_live(live_run_lock):
            (pathlib.Path(__file__).parent / "pid.txt").write_text(str(live_run_lock["pid"]))
        """,
    )
    pytester.runpytest("-p", "fermilink_state").assert_outcomes(passed=1)
    pid = int(pytester.path.joinpath("pid.txt").read_text(encoding="utf-8"))
    assert not pid_is_running(pid)


def test_frozen_utc_restored_for_the_next_test(pytester: pytest.Pytester) -> None:
    _write(
        pytester,
        "test_clock.py",
        """
        from fermilink_state import utc_now_z

        def test_frozen(frozen_utc):
            frozen_utc.set("2000-01-01T00:00:00Z")
            assert utc_now_z() == "2000-01-01T00:00:00Z"

        def test_after():
            assert utc_now_z() != "2000-01-01T00:00:00Z"
        """,
    )
    pytester.runpytest("-p", "fermilink_state").assert_outcomes(passed=2)


@pytest.mark.parametrize("backend", ["", "flock", "soft", "strict"])
def test_report_header_names_version_and_lock_backend(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setenv("FERMILINK_STATE_LOCK", backend)
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest("-p", "fermilink_state", "--basetemp", str(pytester.path / "bt"))
    # Without the variable: whatever the folder of the test projects is on.
    expected = fermilink_state.choose_lock_backend(pytester.path)
    reason = f"set by FERMILINK_STATE_LOCK={backend}" if backend else expected.reason
    result.stdout.fnmatch_lines(
        [
            f"fermilink-state {fermilink_state.__version__}, lock backend: "
            f"{backend or expected.name} ({reason}; for {pytester.path})"
        ]
    )
