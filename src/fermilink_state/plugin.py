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
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    # The engine is imported by the fixtures on first use: a session that
    # uses none of them (or only collects) does not pay for it at start-up.
    from fermilink_state.testing._crash import CrashExplorer
    from fermilink_state.testing._project import FrozenClock, OptimizeProject, ProjectFactory

# The fixtures: what ``from fermilink_state.plugin import *`` gives a conftest
# (not the hooks, which belong to the registered plugin alone).
__all__ = [
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


def pytest_configure(config: pytest.Config) -> None:
    """Document the marker; list kept projects at the end when asked to keep them."""
    config.addinivalue_line("markers", _MARKER_HELP)
    config.addinivalue_line("markers", _DURABLE_HELP)
    if _keep(config):
        config.pluginmanager.register(_KeptProjects(), "fermilink-state-kept-projects")


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


def _seed(root: Path, seed: dict[str, Any]) -> OptimizeProject:
    from fermilink_state.testing._project import SeedError, seed_project

    try:
        return seed_project(root, **seed)
    except SeedError as error:
        pytest.fail(f"@pytest.mark.{MARKER}: {error}", pytrace=False)


def _seeded_project(request: pytest.FixtureRequest, tmp_path: Path) -> OptimizeProject:
    project = _test_project(request, tmp_path)
    if not request.node.stash.get(_SEEDED, False):
        _clock_first(request)
        _seed(project.root, _marker_seed(request.node))
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
        return _register(request, _seed(root, {**marker_seed, **seed}))

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
