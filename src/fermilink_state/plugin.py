"""The pytest plugin: fixtures, hooks, options and markers (enable with ``-p fermilink_state``).

The engine is plain code in ``fermilink_state.testing._project`` and
``fermilink_state.testing._compare``; the assertions and the fixtures' types are in
``fermilink_state.testing``. Each fixture here needs only pytest's own
fixtures, so a conftest can import any of them by name without the plugin
(``from fermilink_state.plugin import seeded_project``); the markers and
options come with the plugin only (``pytest_plugins = ["fermilink_state"]``
in the root conftest, or ``-p fermilink_state``), so a suite run with
``--strict-markers`` enables it as well.

PYTEST_DONT_REWRITE: nothing here asserts, and a conftest that imports this
module before enabling the plugin must not get a "cannot be rewritten" warning.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    # The engine is imported by the fixtures on first use: a session that
    # uses none of them (or only collects) does not pay for it at start-up.
    from fermilink_state.testing._crash import CrashExplorer
    from fermilink_state.testing._project import FrozenClock, OptimizeProject, ProjectFactory
    from fermilink_state.testing._snapshot import CampaignSnapshot

# The fixtures: what ``from fermilink_state.plugin import *`` gives a conftest
# (not the hooks, which belong to the registered plugin alone).
__all__ = [
    "campaign_snapshot",
    "crash_explorer",
    "frozen_utc",
    "live_run_lock",
    "make_optimize_project",
    "optimize_project",
    "seeded_memory",
    "seeded_project",
    "seeded_results",
    "shared_optimize_project",
    "stale_run_lock",
]

MARKER: Final = "fermilink_seed"
DURABLE_MARKER: Final = "fermilink_durable"
KEEP_OPTION: Final = "--fermilink-keep"
DURABLE_OPTION: Final = "--fermilink-durable"
FSYNC_ENV: Final = "FERMILINK_STATE_FSYNC"  # as fermilink_state._fileops reads it
REPORT_SECTION: Final = "fermilink-state project"
SHARED_DIRNAME: Final = "fermilink-shared-project"
PROJECT_DIRNAME: Final = "project"

_MARKER_HELP: Final = (
    f"{MARKER}(package_id=, benchmark_id=, benchmark_rel=, optimize_branch=, "
    "results=[...], state={...}, memory='...'): seed values for the fermilink-state "
    "fixtures seeded_project, seeded_memory, seeded_results and make_optimize_project "
    "(results: rows replacing the baseline row; state: keys over the initial state; "
    "memory: the whole memory.md text). Markers on a class or module apply too; the "
    "closest wins per key."
)

_DURABLE_HELP: Final = (
    f"{DURABLE_MARKER}: the test's fermilink-state project fixtures write durably "
    f"(real fsyncs, as in production); without it they set {FSYNC_ENV}=0 for the test"
)

# Per test item: the projects made for it, and the one optimize_project returns.
_PROJECTS: Final[pytest.StashKey[list[OptimizeProject]]] = pytest.StashKey()
_PROJECT: Final[pytest.StashKey[OptimizeProject]] = pytest.StashKey()
_SEEDED: Final[pytest.StashKey[bool]] = pytest.StashKey()
_DURABILITY_SET: Final[pytest.StashKey[bool]] = pytest.StashKey()
_EXPLORERS: Final[pytest.StashKey[list[CrashExplorer]]] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--fermilink-keep``."""
    group = parser.getgroup("fermilink-state")
    group.addoption(
        KEEP_OPTION,
        action="store_true",
        default=False,
        dest="fermilink_keep",
        help="keep every test's fermilink project folder (removed after each test "
        "otherwise) and print the folders of failed tests",
    )
    group.addoption(
        DURABLE_OPTION,
        action="store_true",
        default=False,
        dest="fermilink_durable",
        help=f"let tests using the project fixtures sync for real (default: {FSYNC_ENV}=0 "
        f"during each such test; the {DURABLE_MARKER} marker does it for one test)",
    )
    _add_snapshot_options(group)


def pytest_configure(config: pytest.Config) -> None:
    """Document the marker; list kept projects at the end when asked to keep them."""
    config.addinivalue_line("markers", _MARKER_HELP)
    config.addinivalue_line("markers", _DURABLE_HELP)
    if _keep(config):
        config.pluginmanager.register(_KeptProjects(), "fermilink-state-kept-projects")
    _register_snapshot_session(config)


def pytest_report_header(config: pytest.Config) -> str:
    """``fermilink-state <version>, lock backend: <name> (<why>, for <folder>)``.

    The folder is where the fixtures make their projects (``--basetemp`` or
    the system's temp folder), since the backend depends on its filesystem.
    """
    import tempfile

    from fermilink_state import __version__
    from fermilink_state._locking import choose_lock_backend

    basetemp = config.getoption("basetemp", None)
    folder = Path(basetemp).absolute().parent if basetemp else Path(tempfile.gettempdir())
    backend = choose_lock_backend(folder)
    return (
        f"fermilink-state {__version__}, lock backend: {backend.name} "
        f"({backend.reason}; for {folder})"
    )


def pytest_assertrepr_compare(
    config: pytest.Config, op: str, left: object, right: object
) -> list[str] | None:
    """Explain ``MemoryDocument == MemoryDocument`` per section and ``ResultRow`` per field."""
    if op != "==":
        return None
    from fermilink_state.testing._compare import explain_equal

    return explain_equal(left, right)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under ``--fermilink-keep``, add the kept project folders to a failed test's report."""
    report = yield
    kept = [str(p.root) for p in item.stash.get(_PROJECTS, [])]
    kept += [str(copy) for e in item.stash.get(_EXPLORERS, []) for copy in e.kept_copies()]
    if report.failed and kept and _keep(item.config):
        report.sections.append((REPORT_SECTION, "\n".join(kept)))
    return report


class _KeptProjects:
    """Collects the kept folders of failed tests (from workers too) for the summary."""

    def __init__(self) -> None:
        self.failed: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.failed:
            return
        for title, content in report.sections:
            if title == REPORT_SECTION:
                self.failed.setdefault(report.nodeid, content)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.failed:
            return
        terminalreporter.write_sep("-", "fermilink-state: projects of failed tests (kept)")
        for nodeid, content in self.failed.items():
            for line in content.splitlines():
                terminalreporter.write_line(f"{nodeid}: {line}")


def _keep(config: pytest.Config) -> bool:
    # default=False: the fixtures also run imported by name, without the option.
    return bool(config.getoption("fermilink_keep", default=False))


def _set_durability(request: pytest.FixtureRequest) -> None:
    # Test projects are thrown away: syncing them only slows a test loop
    # down. Once per test, undone at its end; the marker or option opts in.
    if request.node.stash.get(_DURABILITY_SET, False):
        return
    request.node.stash[_DURABILITY_SET] = True
    durable = request.node.get_closest_marker(DURABLE_MARKER) is not None or bool(
        request.config.getoption("fermilink_durable", default=False)
    )
    patch = pytest.MonkeyPatch()
    patch.setenv(FSYNC_ENV, "1" if durable else "0")
    request.node.addfinalizer(patch.undo)


def _register(request: pytest.FixtureRequest, project: OptimizeProject) -> OptimizeProject:
    from fermilink_state.testing._project import remove_project

    request.node.stash.setdefault(_PROJECTS, []).append(project)
    if not _keep(request.config):
        request.addfinalizer(lambda: remove_project(project))
    return project


def _clock_first(request: pytest.FixtureRequest) -> None:
    # A test that also asks for frozen_utc gets its files stamped with it,
    # whatever the order of its arguments.
    if "frozen_utc" in request.fixturenames:
        request.getfixturevalue("frozen_utc")


def _marker_seed(node: pytest.Item | pytest.Collector) -> dict[str, Any]:
    from fermilink_state.testing._project import SEED_KEYS

    seed: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers(MARKER))):
        unknown = sorted(set(mark.kwargs) - set(SEED_KEYS))
        problems = [f"positional arguments {mark.args!r}"] if mark.args else []
        if unknown:
            problems.append(f"unknown keys {', '.join(unknown)}")
        if problems:
            pytest.fail(
                f"@pytest.mark.{MARKER} takes keyword arguments only, among "
                f"{', '.join(SEED_KEYS)}; got {' and '.join(problems)}",
                pytrace=False,
            )
        seed.update(mark.kwargs)
    return seed


def _test_project(request: pytest.FixtureRequest, tmp_path: Path) -> OptimizeProject:
    from fermilink_state.testing._project import new_project

    project: OptimizeProject | None = request.node.stash.get(_PROJECT, None)
    _set_durability(request)
    if project is None:
        project = _register(request, new_project(tmp_path / PROJECT_DIRNAME))
        request.node.stash[_PROJECT] = project
    return project


def _seed(project: OptimizeProject, seed: dict[str, Any]) -> OptimizeProject:
    """Write ``seed``'s files into ``project``, whose folders exist."""
    from fermilink_state.testing._project import SeedError, write_seed

    try:
        return write_seed(project, seed)
    except SeedError as error:
        pytest.fail(f"@pytest.mark.{MARKER}: {error}", pytrace=False)


def _seeded_project(request: pytest.FixtureRequest, tmp_path: Path) -> OptimizeProject:
    project = _test_project(request, tmp_path)
    if not request.node.stash.get(_SEEDED, False):
        _clock_first(request)
        _seed(project, _marker_seed(request.node))
        request.node.stash[_SEEDED] = True
    return project


@pytest.fixture
def optimize_project(request: pytest.FixtureRequest, tmp_path: Path) -> OptimizeProject:
    """A fresh campaign project: ``.root``, ``.optimize_root`` and every layout path.

    Only the campaign folder and its ``runs/`` exist. Removed after the test
    unless ``--fermilink-keep``. Not durable: ``FERMILINK_STATE_FSYNC=0``
    during the test, unless it is marked ``fermilink_durable`` or the run has
    ``--fermilink-durable``.
    """
    return _test_project(request, tmp_path)


@pytest.fixture
def seeded_project(request: pytest.FixtureRequest, tmp_path: Path) -> OptimizeProject:
    """The test's ``optimize_project`` seeded as FermiLink leaves it after its baseline.

    ``memory.md`` from the template, ``results.tsv`` with the header and a
    baseline row, ``state.json`` with an initial state; values from
    ``@pytest.mark.fermilink_seed(...)``.
    """
    return _seeded_project(request, tmp_path)


@pytest.fixture
def seeded_memory(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The path of ``memory.md`` in ``seeded_project``."""
    return _seeded_project(request, tmp_path).memory_path


@pytest.fixture
def seeded_results(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The path of ``results.tsv`` in ``seeded_project``."""
    return _seeded_project(request, tmp_path).results_path


@pytest.fixture
def make_optimize_project(request: pytest.FixtureRequest, tmp_path: Path) -> ProjectFactory:
    """A factory of projects, each in its own folder: ``make_optimize_project(**seed)``.

    Seeded like ``seeded_project`` (the test's ``fermilink_seed`` marker, then
    the keyword arguments); ``seeded=False`` gives an empty project.
    """
    from fermilink_state.testing._project import new_project

    numbers = itertools.count(1)
    marker_seed = _marker_seed(request.node)
    _set_durability(request)

    def make(*, seeded: bool = True, **seed: Any) -> OptimizeProject:
        root = tmp_path / f"{PROJECT_DIRNAME}-{next(numbers)}"
        if not seeded:
            if seed:
                raise TypeError(f"seed values {sorted(seed)} given with seeded=False")
            return _register(request, new_project(root))
        return _register(request, _seed(new_project(root), {**marker_seed, **seed}))

    return make


@pytest.fixture
def frozen_utc() -> Iterator[FrozenClock]:
    """The library's clock frozen at 2026-01-02T03:04:05.678901Z; ``.set()``, ``.tick()``.

    Every writer that stamps a time reads it; restored at teardown.
    """
    from fermilink_state.testing._project import FrozenClock

    with FrozenClock() as clock:
        yield clock


@pytest.fixture
def stale_run_lock(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Write ``optimize_project``'s run lock as held by a dead process; return its payload."""
    from fermilink_state.testing._project import write_stale_run_lock

    _clock_first(request)
    return write_stale_run_lock(_test_project(request, tmp_path).root)


@pytest.fixture
def live_run_lock(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Write ``optimize_project``'s run lock as held by another live process; return its payload.

    The holder is a real child process, ended at teardown.
    """
    from fermilink_state.testing._project import LiveRunLockHolder

    _clock_first(request)
    with LiveRunLockHolder(_test_project(request, tmp_path).root) as holder:
        yield holder.payload


@pytest.fixture(scope="session")
def shared_optimize_project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> OptimizeProject:
    """One seeded campaign shared by the whole session, every xdist worker included.

    Created exactly once, in the folder all workers share
    (``getbasetemp().parent`` on a worker), under an inter-process lock:
    pytest-xdist's documented recipe. Never removed by the plugin.
    """
    from fermilink_state.testing._project import open_shared_project

    base = tmp_path_factory.getbasetemp()
    # A worker is told by its config, not by PYTEST_XDIST_WORKER: pytester
    # sub-runs inherit the environment of the worker that starts them.
    if hasattr(request.config, "workerinput"):
        base = base.parent
    project, _seeded = open_shared_project(base / SHARED_DIRNAME)
    return project


@pytest.fixture
def crash_explorer(request: pytest.FixtureRequest, tmp_path: Path) -> CrashExplorer:
    """``explore_crashes`` bound to the test's project: ``crash_explorer(step, check, model=...)``.

    The step runs on the test's ``optimize_project`` (seeded when the test
    also asks for ``seeded_project``); the crash copies go under the test's
    ``tmp_path``; under ``--fermilink-keep`` the copies of failing crash
    states are kept and listed with the failed test.
    """
    from fermilink_state.testing._crash import CrashExplorer

    explorer = CrashExplorer(
        _test_project(request, tmp_path).root,
        tmp_path / "crash-states",
        keep_failures=_keep(request.config),
    )
    request.node.stash.setdefault(_EXPLORERS, []).append(explorer)
    return explorer


# --- campaign_snapshot: golden files, updates and unused files -------------------
# The engine is fermilink_state.testing._snapshot; here are the option, the
# fixture and the hooks that tell it which golden files the session used.

SNAPSHOT_UPDATE_OPTION: Final = "--fermilink-snapshot-update"
_SNAPSHOT_WORKER_OUTPUT: Final = "fermilink_state_snapshots"
_SNAPSHOT_SESSION: Final = "fermilink-state-snapshots"


def _add_snapshot_options(group: pytest.OptionGroup) -> None:
    group.addoption(
        SNAPSHOT_UPDATE_OPTION,
        action="store_true",
        default=False,
        dest="fermilink_snapshot_update",
        help="write missing or changed golden files of campaign_snapshot, and remove "
        "the golden files no test used (only of tests that ran and passed, and of "
        "tests that no longer exist in modules collected in full)",
    )


def _snapshot_update(config: pytest.Config) -> bool:
    return bool(config.getoption("fermilink_snapshot_update", default=False))


def _snapshot_names(item: pytest.Item) -> tuple[Path, list[str], str]:
    # The test's file, its names below the file (classes, then the test), and
    # the file's node id.
    chain = item.listchain()
    files = [node for node in chain if isinstance(node, pytest.File)]
    if not files:
        return Path(item.path), [item.name], item.nodeid
    file_node = files[-1]
    names = [node.name for node in chain[chain.index(file_node) + 1 :]]
    return Path(file_node.path), names, file_node.nodeid


def _register_snapshot_session(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(_SNAPSHOT_SESSION):
        config.pluginmanager.register(_SnapshotSession(config), _SNAPSHOT_SESSION)


class _SnapshotSession:
    """Tells unused golden files from the ones this run did not look at, also under xdist.

    Every process that collects records, per test file, the golden folder of
    each selected test and whether the file was selected in full; tests add
    the golden files they used. An xdist worker sends its record to the
    controller in ``workeroutput``; the controller (or a serial session)
    merges the records with the outcomes it saw and judges at the end.
    """

    def __init__(self, config: pytest.Config) -> None:
        from fermilink_state.testing._snapshot_usage import SnapshotUsage

        self.config = config
        self.usage = SnapshotUsage()
        self.children: dict[str, list[tuple[str, bool]]] = {}
        self.workers_lost: list[str] = []
        self.unused: list[Path] = []
        self.removed: list[Path] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.passed:
            self.children[report.nodeid] = [
                (node.nodeid, isinstance(node, pytest.Item)) for node in report.result
            ]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from fermilink_state.testing._snapshot import folder_for_test

        selected = {item.nodeid for item in session.items}
        by_file: dict[Path, dict[str, str]] = {}
        file_ids: dict[Path, str] = {}
        for item in session.items:
            path, names, file_id = _snapshot_names(item)
            by_file.setdefault(path, {})[item.nodeid] = folder_for_test(names)
            file_ids[path] = file_id
        for path, tests in by_file.items():
            complete = self._all_selected(file_ids[path], selected)
            self.usage.add_module(path, complete=complete, tests=tests)

    def _all_selected(self, nodeid: str, selected: set[str]) -> bool:
        # Every item under the file was selected and every collector under it
        # was collected: nothing was left out by -k, -m, a node id or --lf.
        pending = [nodeid]
        while pending:
            children = self.children.get(pending.pop())
            if children is None:
                return False
            for child, is_item in children:
                if is_item:
                    if child not in selected:
                        return False
                else:
                    pending.append(child)
        return True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.usage.record_outcome(report.nodeid, report.when, passed=report.passed)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", {}).get(_SNAPSHOT_WORKER_OUTPUT)
        if error is not None or output is None:
            self.workers_lost.append(str(getattr(node, "gateway", node).id))
            return
        self.usage.merge(output)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from fermilink_state.testing._snapshot import remove_golden_files

        if hasattr(self.config, "workerinput"):
            self.config.workeroutput[_SNAPSHOT_WORKER_OUTPUT] = self.usage.to_json()  # type: ignore[attr-defined]
            return
        judged = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        if not judged or self.workers_lost or self.config.option.collectonly:
            return
        self.unused = self.usage.unused()
        if self.unused and _snapshot_update(self.config):
            self.removed = remove_golden_files(self.unused)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if hasattr(self.config, "workerinput"):
            return
        written = sorted(self.usage.written)
        if written:
            terminalreporter.write_sep("-", f"fermilink-state: {_files(written)} updated")
            for golden in written:
                terminalreporter.write_line(f"updated {golden}")
        if self.workers_lost and self.usage.used:
            terminalreporter.write_line(
                "fermilink-state: unused golden files not judged: worker "
                f"{', '.join(self.workers_lost)} ended without its report"
            )
        if not self.unused:
            return
        if self.removed:
            title = f"{_files(self.removed, 'unused ')} removed"
        else:
            title = f"{_files(self.unused, 'unused ')} (remove with {SNAPSHOT_UPDATE_OPTION})"
        terminalreporter.write_sep("-", f"fermilink-state: {title}")
        verb = "removed" if self.removed else "unused"
        for golden_file in self.removed or self.unused:
            terminalreporter.write_line(f"{verb} {golden_file}")


def _files(paths: Collection[object], adjective: str = "") -> str:
    return f"{len(paths)} {adjective}golden file{'' if len(paths) == 1 else 's'}"


@pytest.fixture
def campaign_snapshot(request: pytest.FixtureRequest) -> Iterator[CampaignSnapshot]:
    """Golden files for this test's campaign: ``campaign_snapshot.assert_match(project)``.

    Compares state.json, results.tsv, memory.md and worker memory (or the
    ``files=`` chosen) with ``__fermilink_snapshots__/<module>/<test>/`` beside
    the test module, volatile values normalised. A missing or different
    golden file fails the test; ``--fermilink-snapshot-update`` writes it.
    """
    from fermilink_state.testing._snapshot import CampaignSnapshot, golden_dir

    path, names, _ = _snapshot_names(request.node)
    snapshot = CampaignSnapshot(golden_dir(path, names), update=_snapshot_update(request.config))
    yield snapshot
    session = request.config.pluginmanager.get_plugin(_SNAPSHOT_SESSION)
    if isinstance(session, _SnapshotSession):
        session.usage.used.update(map(str, snapshot.used))
        session.usage.written.update(map(str, snapshot.written))
