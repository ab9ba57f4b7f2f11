"""``fermilink_state.adopt``: the alias, the import hook, the wrappings and the survey.

These run wherever the library's tests run: FermiLink's controller is played
by a small stand-in package (our own code, built per test) with FermiLink's
module names and argument names; the survey reads the installed FermiLink's
source (``pip install --no-deps fermilink==0.3.10`` is enough). Races on
FermiLink's real functions are in ``test_adopt_fermilink.py``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import pytest

import fermilink_state as fs
from fermilink_state._locking import file_lock
from fermilink_state.adopt import (
    COVERED_THROUGH_THE_MODULE,
    COVERED_WRITERS,
    SUPPORTED_FERMILINK_VERSION,
    UNCOVERED_WRITES,
    AtomicPath,
)
from fermilink_state.adopt._routing import paths_routed_during, routed, staged_copy, under_lock
from support_concurrency import run_lock_held_elsewhere, start_run_lock_child, stop_run_lock_child

# -- a stand-in FermiLink, written for these tests ----------------------------

_STAND_IN_STATE: Final = '''
"""Stand-in for fermilink.optimize.state."""
def write_run_lock(path, payload):
    raise AssertionError("the stand-in state module was used")
def load_run_lock(path):
    return None
def run_lock_path(root):
    raise AssertionError("the stand-in state module was used")
def clear_run_lock(path):  # the reference's contract: remove whoever holds it
    try:
        path.unlink()
    except OSError:
        pass
'''

# Stand-in for fermilink.cli.commands.optimize: a launch refused because a
# campaign is active, which clears the run lock in a `finally` on its way out.
_STAND_IN_CLI: Final = """
from pathlib import Path
from fermilink.optimize import state as optimize_state
def cmd_optimize(project_root):
    lock_path = Path(project_root) / ".fermilink-optimize" / "run.lock.json"
    try:
        raise RuntimeError("Optimize campaign appears active in this repository")
    finally:
        optimize_state.clear_run_lock(lock_path)
"""

# Stand-in run_goal_campaign: writes through the state module's goal path
# helpers inline, and reports the types they returned (also in a thread).
_STAND_IN_GOAL_CAMPAIGN: Final = """
def run_goal_campaign(args=None, *rest, **options):
    import threading
    root = args
    seen = [type(optimize_state.goal_copy_path(root)).__name__,
            type(optimize_state.goal_benchmark_path(root)).__name__,
            type(optimize_state.goal_runner_path(root)).__name__]
    thread = threading.Thread(
        target=lambda: seen.append(type(optimize_state.goal_copy_path(root)).__name__))
    thread.start()
    thread.join()
    optimize_state.ensure_autogen_root(root)
    optimize_state.goal_copy_path(root).write_text("goal", encoding="utf-8")
    return seen
"""


def _stand_in_main() -> str:
    lines = [
        '"""Stand-in for fermilink.optimize.main: one function per covered writer."""',
        "from . import state as optimize_state",
        "from .state import write_run_lock as imported_writer",
    ]
    for writer in COVERED_WRITERS:
        argument = writer.wrapping.argument
        lines.append(f"def {writer.function}({argument}=None, *rest, **options):")
        lines.append(f"    return type({argument}).__name__")
    return "\n".join(lines) + _STAND_IN_GOAL_CAMPAIGN


def make_fermilink(root: Path, version: str | None = SUPPORTED_FERMILINK_VERSION) -> Path:
    """A stand-in ``fermilink`` package (and its dist-info, unless ``version`` is None)."""
    package = root / "fermilink" / "optimize"
    package.mkdir(parents=True)
    (root / "fermilink" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "state.py").write_text(_STAND_IN_STATE)
    (package / "main.py").write_text(_stand_in_main())
    commands = root / "fermilink" / "cli" / "commands"
    commands.mkdir(parents=True)
    for folder in (commands.parent, commands):
        (folder / "__init__.py").write_text("")
    (commands / "optimize.py").write_text(_STAND_IN_CLI)
    if version is not None:
        info = root / f"fermilink-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: fermilink\nVersion: {version}\n"
        )
    (root / "consumer.py").write_text(
        "from fermilink.optimize import state\nfrom fermilink.optimize.state import load_run_lock\n"
    )
    return root


# Prints what a process sees after `steps` (a list of "install" / "import").
_PROBE: Final = """
import json, sys, warnings
warnings.simplefilter("always")
caught = []
warnings.showwarning = lambda message, *rest: caught.append(str(message))
import fermilink_state
from fermilink_state import adopt
for step in sys.argv[1].split(","):
    if step == "install":
        adopt.install()
    else:
        import consumer, fermilink.optimize, fermilink.optimize.main
import consumer, fermilink.optimize, fermilink.optimize.main as main
names = [writer.function for writer in adopt.COVERED_WRITERS]
print(json.dumps({
    "sys_modules": sys.modules["fermilink.optimize.state"] is fermilink_state,
    "package_attribute": fermilink.optimize.state is fermilink_state,
    "main_module_name": main.optimize_state is fermilink_state,
    "main_function_name": main.imported_writer is fermilink_state.write_run_lock,
    "consumer": consumer.state is fermilink_state
        and consumer.load_run_lock is fermilink_state.load_run_lock,
    "wrapped": [n for n in names if getattr(getattr(main, n), "__fermilink_state_adopted__", 0)],
    "double_wrapped": [
        n for n in names
        if getattr(getattr(getattr(main, n), "__wrapped__", None), "__fermilink_state_adopted__", 0)
    ],
    "memory_note_got": main._append_benchmark_launcher_memory_note(sys.argv[2] + "/memory.md"),
    "warnings": caught,
}))
"""


_NO_METADATA: Final = (
    "import importlib.metadata as m\n"
    "def _missing(name):\n"
    "    raise m.PackageNotFoundError(name)\n"
    "m.version = _missing\n"
)


def run_with_stand_in(fermilink: Path, code: str, *args: str) -> Any:
    """Run ``code`` in a fresh interpreter that finds the stand-in FermiLink first.

    ``code`` prints one JSON document; returns it.
    """
    environment = dict(os.environ, PYTHONPATH=str(fermilink))
    completed = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def probe(fermilink: Path, steps: str, *, hide_metadata: bool = False) -> dict[str, Any]:
    """Run :data:`_PROBE` after ``steps`` in a fresh interpreter; what it saw."""
    code = (_NO_METADATA if hide_metadata else "") + _PROBE
    result: dict[str, Any] = run_with_stand_in(fermilink, code, steps, str(fermilink))
    return result


ALL_NAMES: Final = [writer.function for writer in COVERED_WRITERS]


@pytest.mark.parametrize(
    "steps",
    [
        "import,install",
        "install,import",
        "install,import,install",
        "install,install,import",
        "import,install,install",
    ],
)
def test_install_aliases_the_module_everywhere_and_wraps_each_writer_once(
    tmp_path: Path, steps: str
) -> None:
    seen = probe(make_fermilink(tmp_path), steps)
    aliases = ("sys_modules", "package_attribute", "main_module_name", "main_function_name")
    assert {name: seen[name] for name in aliases} == dict.fromkeys(aliases, True)
    assert seen["consumer"] is True
    assert seen["wrapped"] == ALL_NAMES
    assert seen["double_wrapped"] == []
    assert seen["memory_note_got"] == "AtomicPath"
    assert seen["warnings"] == []


def test_another_fermilink_version_gets_only_the_alias_and_one_warning(tmp_path: Path) -> None:
    seen = probe(make_fermilink(tmp_path, version="0.4.0"), "install,import,install")
    assert seen["sys_modules"] is seen["main_module_name"] is seen["consumer"] is True
    assert seen["wrapped"] == []
    assert seen["memory_note_got"] == "str"
    (warning,) = seen["warnings"]
    assert "fermilink 0.4.0 is installed" in warning
    assert "NOT covered" in warning
    for name in ALL_NAMES:
        assert f"fermilink.optimize.main.{name}" in warning


def test_a_fermilink_of_unknown_version_gets_only_the_alias_and_one_warning(
    tmp_path: Path,
) -> None:
    # No dist-info of its own: the probe hides the installed one too.
    seen = probe(make_fermilink(tmp_path, version=None), "install,import", hide_metadata=True)
    assert seen["main_module_name"] is True
    assert seen["wrapped"] == []
    (warning,) = seen["warnings"]
    assert warning.startswith("fermilink's version is unknown")


def test_import_fermilink_state_imports_neither_the_adapter_nor_fermilink() -> None:
    code = (
        "import sys, fermilink_state\n"
        "print([m for m in sys.modules if m == 'fermilink' or m.startswith("
        "('fermilink.', 'fermilink_state.adopt', 'fermilink_state.cli'))])"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert completed.stdout.strip() == "[]"


# Installs the adapter (twice), then runs the stand-in run_goal_campaign.
_GOAL_CAMPAIGN_PROBE: Final = """
import json, sys
from pathlib import Path
import fermilink_state
from fermilink_state import _layout, adopt
root = Path(sys.argv[1])
untouched = fermilink_state.goal_copy_path is _layout.goal_copy_path
adopt.install()
adopt.install()
import fermilink.optimize.main as main
goal = fermilink_state.goal_copy_path(root)
goal.parent.mkdir(parents=True)
goal.write_text("old")
inode = goal.stat().st_ino
inside = main.run_goal_campaign(root)
helpers = [fermilink_state.goal_copy_path, fermilink_state.goal_benchmark_path,
           fermilink_state.goal_runner_path]
print(json.dumps({
    "untouched_before_install": untouched,
    "inside": inside,
    "outside": [type(helper(root)).__name__ for helper in helpers],
    "same_paths": [str(helper(root)) for helper in helpers] == [
        str(_layout.goal_copy_path(root)), str(_layout.goal_benchmark_path(root)),
        str(_layout.goal_runner_path(root))],
    "wrapped_once": [hasattr(helper.__wrapped__, "__wrapped__") for helper in helpers],
    "replaced": goal.stat().st_ino != inode,
    "text": goal.read_text(),
}))
"""


def test_run_goal_campaign_writes_through_atomic_paths_only_while_it_runs(
    tmp_path: Path,
) -> None:
    seen = run_with_stand_in(make_fermilink(tmp_path), _GOAL_CAMPAIGN_PROBE, str(tmp_path / "p"))
    assert seen["untouched_before_install"] is True
    # Its own three calls route; a thread it starts gets the plain path.
    assert seen["inside"] == ["AtomicPath"] * 3 + ["PosixPath"]
    assert seen["outside"] == ["PosixPath"] * 3
    assert seen["same_paths"] is True
    assert seen["wrapped_once"] == [False] * 3
    # Replaced by a rename (a new inode), not truncated in place.
    assert (seen["replaced"], seen["text"]) == (True, "goal")


_REFUSED_LAUNCH: Final = """
import json, sys
from fermilink_state import adopt
if sys.argv[2] == "install":
    adopt.install()
from fermilink.cli.commands import optimize
try:
    optimize.cmd_optimize(sys.argv[1])
except RuntimeError:
    pass
print("null")
"""


@pytest.mark.parametrize(("adapter", "survives"), [("install", True), ("none", False)])
def test_a_refused_launch_keeps_the_running_campaigns_lock(
    tmp_path: Path, adapter: str, survives: bool
) -> None:
    fermilink, project = make_fermilink(tmp_path / "site"), tmp_path / "project"
    lock = fs.run_lock_path(project)
    with run_lock_held_elsewhere(project):
        run_with_stand_in(fermilink, _REFUSED_LAUNCH, str(project), adapter)
        assert lock.exists() is survives  # without the adapter: the live lock is gone


def test_a_refused_launch_still_removes_a_dead_campaigns_lock(tmp_path: Path) -> None:
    fermilink, project = make_fermilink(tmp_path / "site"), tmp_path / "project"
    stop_run_lock_child(start_run_lock_child(project, hold=False))  # died holding it
    run_with_stand_in(fermilink, _REFUSED_LAUNCH, str(project), "install")
    assert not fs.run_lock_path(project).exists()


# -- the wrappings, on plain functions -----------------------------------------


def _names(folder: Path) -> list[str]:
    """The files in ``folder``, our lock files aside (they persist by design)."""
    return sorted(path.name for path in folder.iterdir() if not path.name.endswith(".lock"))


def test_atomic_path_replaces_the_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = AtomicPath(tmp_path) / "runs" / "note.txt"
    assert type(target) is AtomicPath
    assert type(target.parent) is AtomicPath
    target.parent.mkdir()
    target.write_text("old\n", encoding="utf-8")
    before = os.stat(target).st_ino
    assert target.write_text("new\nline\n", encoding="utf-8") == len("new\nline\n")
    assert os.stat(target).st_ino != before  # a new file was put in place, not truncated
    assert target.read_bytes() == b"new\nline\n"
    assert target.write_bytes(bytearray(b"\x00\xff")) == 2
    assert target.read_bytes() == b"\x00\xff"
    target.write_text("a\nb", encoding="utf-16-le", newline="\r\n")
    assert target.read_bytes() == "a\r\nb".encode("utf-16-le")
    assert _names(target.parent) == ["note.txt"]
    with pytest.raises(TypeError, match="must be str"):
        target.write_text(b"bytes")  # type: ignore[arg-type]


def test_under_lock_holds_the_files_lock_during_the_call(tmp_path: Path) -> None:
    memory = tmp_path / "memory.md"
    memory.write_text("x")
    held: list[bool] = []

    def note(memory_path: Path, *, event: str) -> str:
        held.append(file_lock(memory).is_locked)
        memory_path.write_text(event)
        return type(memory_path).__name__

    wrapped = under_lock("memory_path", route=True).apply(note)
    assert wrapped(memory, event="one") == "AtomicPath"
    assert wrapped(memory_path=memory, event="two") == "AtomicPath"
    assert held == [True, True]
    assert not file_lock(memory).is_locked
    assert memory.read_text() == "two"


def test_under_lock_of_a_missing_folder_calls_through_without_a_lock(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "memory.md"
    wrapped = under_lock("memory_path").apply(lambda memory_path: "called")
    assert wrapped(missing) == "called"
    assert not (tmp_path / "gone").exists()


def test_under_lock_with_make_folder_locks_beside_the_target(tmp_path: Path) -> None:
    project = tmp_path / "project"
    seen: list[bool] = []

    def write_lock(project_root: Path) -> None:
        seen.append(file_lock(fs.run_lock_path(project)).is_locked)

    under_lock("project_root", fs.run_lock_path, make_folder=True).apply(write_lock)(project)
    assert seen == [True]
    assert fs.optimize_root(project).is_dir()


def sync_worker_memory(source: Path, *, worker_memory_path: Path) -> None:
    """Copies like FermiLink's worker-memory sync; fails after the copy when told to."""
    worker_memory_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, worker_memory_path)
    if source.read_text() == "fail":
        raise RuntimeError("after the copy")


def test_staged_copy_puts_the_copy_in_place_atomically(tmp_path: Path) -> None:
    source, target = tmp_path / "src.md", tmp_path / "campaign" / "worker_memory.md"
    target.parent.mkdir()
    target.write_text("old")
    source.write_text("new")
    before = os.stat(target).st_ino
    staged_copy("worker_memory_path").apply(sync_worker_memory)(source, worker_memory_path=target)
    assert target.read_text() == "new"
    assert os.stat(target).st_ino != before
    assert _names(target.parent) == ["worker_memory.md"]


def test_staged_copy_publishes_nothing_when_the_function_fails(tmp_path: Path) -> None:
    source, target = tmp_path / "src.md", tmp_path / "campaign" / "worker_memory.md"
    target.parent.mkdir()
    target.write_text("old")
    source.write_text("fail")
    wrapped = staged_copy("worker_memory_path").apply(sync_worker_memory)
    with pytest.raises(RuntimeError, match="after the copy"):
        wrapped(source, worker_memory_path=target)
    assert target.read_text() == "old"
    assert _names(target.parent) == ["worker_memory.md"]


def test_routed_hands_an_atomic_path_and_keeps_the_signature(tmp_path: Path) -> None:
    def write_run_text(run_dir: Path, filename: str, text: str) -> str:
        (run_dir / filename).write_text(text)
        return type(run_dir / filename).__name__

    wrapped = routed("run_dir").apply(write_run_text)
    assert wrapped(tmp_path, "a.txt", "x") == "AtomicPath"
    assert wrapped(run_dir=tmp_path, filename="b.txt", text="y") == "AtomicPath"
    assert wrapped.__name__ == "write_run_text"
    with pytest.raises(TypeError):
        wrapped(tmp_path)  # missing arguments fail as they would unwrapped


def test_paths_routed_during_routes_the_helpers_only_inside_the_call(tmp_path: Path) -> None:
    layout: Any = ModuleType("layout")
    layout.goal_path = lambda root: Path(root) / "goal.md"
    original = layout.goal_path

    def campaign(args: Path) -> list[str]:
        seen = [type(layout.goal_path(args)).__name__]
        thread = threading.Thread(target=lambda: seen.append(type(layout.goal_path(args)).__name__))
        thread.start()
        thread.join()
        layout.goal_path(args).write_text("new")
        return seen

    wrapping = paths_routed_during("args", layout, ("goal_path",))
    wrapped = wrapping.apply(campaign)
    helper = layout.goal_path
    wrapping.apply(campaign)  # a second wrapping keeps the helper wrapped once
    assert layout.goal_path is helper
    assert helper.__wrapped__ is original
    goal = tmp_path / "goal.md"
    goal.write_text("old")
    inode = goal.stat().st_ino
    assert wrapped(tmp_path) == ["AtomicPath", "PosixPath"]
    assert (goal.read_text(), goal.stat().st_ino != inode) == ("new", True)
    assert type(helper(tmp_path)) is type(Path())  # outside the call: as before
    with pytest.raises(ZeroDivisionError):  # the context is reset when it raises too
        paths_routed_during("args", layout, ("goal_path",)).apply(lambda args: 1 / 0)(tmp_path)
    assert type(helper(tmp_path)) is type(Path())


# -- the survey: FermiLink 0.3.10's own writes of campaign files ---------------

# Call names that write, remove or move files (str.replace is left out: the
# survey found only string replaces under that name).
_WRITING_CALLS: Final = frozenset(
    {"write_text", "write_bytes", "copy", "copy2", "copyfile", "copytree", "rmtree"}
    | {"unlink", "rename", "move", "remove", "touch", "dump"}
)
# Functions that write, but nothing in .fermilink-optimize/ (outside this adapter's scope).
OUTSIDE_THE_CAMPAIGN_FOLDER: Final = {
    "optimize/main.py:_ensure_channel_skills": "copies skills/ into the project",
    "optimize/main.py:_sync_controller_inputs_to_worker_repo": "the worker's worktree",
    "optimize/git.py:cleanup_stale_temporary_optimize_agents": "the repo's AGENTS.md",
    "optimize/git.py:_remove_worker_root_path": "the worker's worktree",
    "optimize/git.py:restore_worker_git_metadata": "the worker's .git",
    "optimize/git.py:with_worker_git_disabled": "the worker's .git",
    "optimize/git.py:ensure_local_excludes": ".git/info/exclude",
    "optimize/git.py:cleanup_paths": "untracked files a pre-command left in the repo",
    "optimize/git.py:temporary_optimize_agents": "the repo's AGENTS.md",
}


def _fermilink_root() -> Path:
    spec = importlib.util.find_spec("fermilink")
    origin = spec.origin if spec is not None else None
    assert origin is not None, "pip install --no-deps fermilink==0.3.10"
    return Path(origin).parent


def _writing_functions() -> dict[str, set[str]]:
    root = _fermilink_root()
    sources = [path for path in (root / "optimize").glob("*.py") if path.name != "state.py"]
    sources.append(root / "cli" / "commands" / "optimize.py")
    found: dict[str, set[str]] = {}
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            calls = {
                call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id
                for call in ast.walk(node)
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute | ast.Name)
            }
            if calls & _WRITING_CALLS or _opens_for_writing(node):
                found[f"{source.relative_to(root).as_posix()}:{node.name}"] = calls & _WRITING_CALLS
    return found


def _opens_for_writing(function: ast.AST) -> bool:
    for call in ast.walk(function):
        if not isinstance(call, ast.Call):
            continue
        name = getattr(call.func, "attr", getattr(call.func, "id", None))
        modes = list(call.args[1:2]) + [k.value for k in call.keywords if k.arg == "mode"]
        if name == "open" and any(
            isinstance(mode, ast.Constant) and set(str(mode.value)) & set("wax+") for mode in modes
        ):
            return True
    return False


# (module, function) of the writes install() does not wrap: uncovered, or
# covered by this library's own function through the module alias.
NOT_WRAPPED: Final = [(write.module, write.function) for write in UNCOVERED_WRITES] + [
    (write.module, write.function) for write in COVERED_THROUGH_THE_MODULE
]


def test_every_writing_function_of_fermilink_is_covered_or_explained() -> None:
    known = {_source_of(writer.module, writer.function) for writer in COVERED_WRITERS}
    known |= {_source_of(module, function) for module, function in NOT_WRAPPED}
    known |= set(OUTSIDE_THE_CAMPAIGN_FOLDER)
    unexplained = sorted(set(_writing_functions()) - known)
    assert unexplained == [], "new writers in FermiLink: add each to adopt/_coverage.py"


def _source_of(module: str, function: str) -> str:
    return f"{module.removeprefix('fermilink.').replace('.', '/')}.py:{function}"


def test_every_covered_writer_exists_with_the_argument_it_is_wrapped_by() -> None:
    tree = ast.parse((_fermilink_root() / "optimize" / "main.py").read_text(encoding="utf-8"))
    parameters = {
        node.name: [arg.arg for arg in node.args.args + node.args.kwonlyargs]
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }
    for writer in COVERED_WRITERS:
        assert writer.wrapping.argument in parameters[writer.function], writer.function
    for module, function in NOT_WRAPPED:
        module_file = _source_of(module, function).split(":")[0]
        source = (_fermilink_root() / module_file).read_text(encoding="utf-8")
        assert f"def {function}(" in source


def test_what_is_covered_through_the_module_is_called_through_it() -> None:
    # cmd_optimize's write is safe only because it goes through the state module.
    source = (_fermilink_root() / "cli" / "commands" / "optimize.py").read_text(encoding="utf-8")
    assert "from fermilink.optimize import state as optimize_state" in source
    assert "optimize_state.clear_run_lock(" in source


def test_readme_lists_every_covered_and_uncovered_writer() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Adopting in FermiLink", 1)[1].split("\n## ", 1)[0]
    for name in [writer.function for writer in COVERED_WRITERS] + [f for _, f in NOT_WRAPPED]:
        assert f"`{name}`" in section, name
