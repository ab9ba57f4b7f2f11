"""Workloads and invariants for the crash-state explorer tests.

Every workload is a module-level function of the project root (the explorer
runs it in a spawn child), written against a library module named by
``LIBRARY`` so that the same workload can run on this package, on a mutated
copy of it, or on the reference. After each call returns, a workload marks
what that call promised (``row:<line>``, ``text:<file>:<substring>``,
``file:<file>``, ``dir:<folder>``); the checker demands every promise marked
before the crash, and checks the cross-file invariants with plain string
operations on the bytes, never with the code under test.
"""

from __future__ import annotations

import functools
import importlib
import json
import shutil
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from fermilink_state.testing._crashstates import (
    CrashModel,
    CrashState,
    Recording,
    crash_states,
    explore,
    mark,
    record,
)
from support import REFERENCE_MODULE, TEMPLATE_HEADINGS

OURS: Final = "fermilink_state"
REFERENCE: Final = REFERENCE_MODULE
OPT: Final = ".fermilink-optimize"
LEDGER: Final = f"{OPT}/results.tsv"
HEADER: Final = "iteration\tcommit\tstatus\tprimary_metric_name\tprimary_metric_value\tdescription"
SEED: Final = {
    "package_id": "pkg",
    "benchmark_id": "bench",
    "benchmark_rel": "bench.yaml",
    "optimize_branch": "optimize/x",
}


def _lib(name: str) -> ModuleType:
    return importlib.import_module(name)


def _row(iteration: int, status: str = "rejected", value: float = 2.5) -> dict[str, Any]:
    return {
        "iteration": iteration,
        "commit": f"c{iteration:04d}",
        "status": status,
        "primary_metric_name": "runtime",
        "primary_metric_value": value,
        "description": f"candidate {iteration}",
    }


def _row_line(row: dict[str, Any]) -> str:
    # Plain formatting of the rows above (every cell printable, no tabs).
    return "\t".join(
        [
            str(row["iteration"]),
            row["commit"],
            row["status"],
            row["primary_metric_name"],
            f"{row['primary_metric_value']:.12g}",
            row["description"],
        ]
    )


def _event(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in row if key != "iteration"}


def _state(iteration: int, incumbent: str) -> dict[str, Any]:
    return {"iteration": iteration, "incumbent_commit": incumbent, "schema_version": 1}


# ---------------------------------------------------------------- workloads


def setup_campaign(root: Path, library: str = OURS) -> None:
    """Every ``ensure_*`` writer and the first whole-file writes, from an empty folder."""
    fs = _lib(library)
    fs.ensure_optimize_root(root)
    mark(f"dir:{OPT}/runs")
    fs.ensure_results_file(fs.results_path(root))
    mark(f"text:{LEDGER}:{HEADER}")
    fs.ensure_memory_file(fs.memory_path(root), **SEED)
    mark(f"text:{OPT}/memory.md:### Progress log")
    fs.ensure_program_file(fs.default_program_path(root), content="# program\n")
    mark(f"text:{OPT}/program.md:# program")
    fs.write_state(fs.state_path(root), _state(0, ""))
    mark(f"file:{OPT}/state.json")
    fs.ensure_autogen_root(root)
    fs.write_json_file(fs.quick_manifest_path(root), {"mode": "quick"})
    mark(f"text:{OPT}/autogen/quick_mode.json:quick")


def append_rows(root: Path, library: str = OURS) -> None:
    """``append_result`` one row at a time, then ``append_results`` in one batch."""
    fs = _lib(library)
    ledger = fs.results_path(root)
    for iteration in range(1, 17):
        row = _row(iteration)
        fs.append_result(ledger, **row)
        mark(f"row:{_row_line(row)}")
    batch = [_row(iteration) for iteration in range(17, 21)]
    fs.append_results(ledger, batch)
    for row in batch:
        mark(f"row:{_row_line(row)}")


def edit_memories(root: Path, library: str = OURS) -> None:
    """Campaign events, a section edit, the worker memory's reset and archive."""
    fs = _lib(library)
    memory = fs.memory_path(root)
    for iteration in range(1, 9):
        row = _row(iteration, "accepted" if iteration % 3 == 2 else "rejected")
        fs.record_campaign_event(memory, **_event(row))
        mark(f"text:{OPT}/memory.md:{row['description']} ({row['commit']}")
    with fs.edit_memory(memory) as document:
        document.append("### Open hypotheses", "- try the blocked layout")
    mark(f"text:{OPT}/memory.md:- try the blocked layout")
    worker = fs.worker_memory_path(root)
    fs.reset_worker_memory_file(
        worker,
        package_id="pkg",
        benchmark_id="bench",
        benchmark_rel="bench.yaml",
        program_rel=f"{OPT}/program.md",
        controller_memory_rel=f"{OPT}/memory.md",
        results_rel=LEDGER,
        worker_iteration=1,
    )
    mark(f"text:{OPT}/worker_memory.md:- worker_iteration: 1")
    fs.archive_worker_memory(worker, fs.runs_root(root) / "iter_0001")
    mark(f"text:{OPT}/runs/iter_0001/worker_memory.md:- worker_iteration: 1")


def run_iterations(
    root: Path, library: str = OURS, iterations: int = 14, order: str = "record_iteration"
) -> None:
    """Several iterations of a controller: ``order`` is ``"record_iteration"``, or
    ``"by_hand"`` (the three writers called in the documented order), or
    ``"state_first"`` (the bug: state.json before the row)."""
    fs = _lib(library)
    incumbent = "base"
    for iteration in range(1, iterations + 1):
        accepted = iteration % 2 == 0
        row = _row(iteration, "accepted" if accepted else "rejected", 1.0 / iteration)
        incumbent = row["commit"] if accepted else incumbent
        state = _state(iteration, incumbent)
        if order == "record_iteration":
            fs.record_iteration(root, row=row, event=_event(row), state=state)
        else:
            if order == "state_first":
                fs.write_state(fs.state_path(root), state)
            fs.append_result(fs.results_path(root), **row)
            fs.record_campaign_event(fs.memory_path(root), **_event(row))
            if order == "by_hand":
                fs.write_state(fs.state_path(root), state)
        mark(f"row:{_row_line(row)}")
        mark(f"text:{OPT}/memory.md:{row['description']} ({row['commit']}")


record_iterations = functools.partial(run_iterations, order="record_iteration")
controller_by_hand = functools.partial(run_iterations, iterations=8, order="by_hand")


def hold_run_lock(root: Path, library: str = OURS) -> None:
    """The run lock taken and released, and the compatibility writers."""
    fs = _lib(library)
    # No promises to mark: each write here is undone by the next call (a
    # released lock may even reappear after a power cut, as a stale one); the
    # whole-file check still demands an old or a new version at every instant.
    fs.acquire_run_lock(root, {"campaign": "crash"})
    fs.release_run_lock(root)
    # An expired lease, so clear_run_lock removes it (it keeps a live holder's).
    stale = {"pid": 1, "hostname": "elsewhere", "lease_seconds": 1.0, "lease_renewed_at": 0}
    fs.write_run_lock(fs.run_lock_path(root), stale)
    fs.clear_run_lock(fs.run_lock_path(root))


def append_after_torn_tail(root: Path, library: str = OURS) -> None:
    """Two appends onto a ledger whose last line a power cut left torn."""
    fs = _lib(library)
    for iteration in (20, 21):
        row = _row(iteration)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the repair says what it set aside
            fs.append_result(fs.results_path(root), **row)
        mark(f"row:{_row_line(row)}")


# ------------------------------------------------------------ initial trees


def empty_project(root: Path) -> None:
    """Nothing but the project folder."""
    root.mkdir(parents=True)


def seeded_project(root: Path) -> None:
    """A campaign after its baseline, written with plain file operations."""
    from fermilink_state._memory import memory_template

    (root / OPT / "runs").mkdir(parents=True)
    (root / LEDGER).write_text(f"{HEADER}\n0\tbase\tbaseline\truntime\t3\tbaseline\n")
    (root / OPT / "state.json").write_text(json.dumps(_state(0, "base")) + "\n")
    memory = memory_template(**SEED, started="2026-01-01T00:00:00Z")
    (root / OPT / "memory.md").write_text(memory)


def campaign_folder_only(root: Path) -> None:
    """A campaign folder with no file in it yet."""
    (root / OPT / "runs").mkdir(parents=True)


def torn_partial_project(root: Path) -> None:
    """A seeded campaign whose ledger ends in half a row."""
    seeded_project(root)
    with open(root / LEDGER, "a") as handle:
        handle.write("1\tc0001\trej")


def torn_nul_project(root: Path) -> None:
    """A seeded campaign whose ledger ends in a run of NUL bytes (size grew, data did not land)."""
    seeded_project(root)
    with open(root / LEDGER, "ab") as handle:
        handle.write(b"\0" * 37)


def torn_garbage_project(root: Path) -> None:
    """A seeded campaign whose ledger ends in garbage (a write's blocks held junk)."""
    seeded_project(root)
    with open(root / LEDGER, "ab") as handle:
        handle.write(b"\xff\xfe7\tz\x07\x9c\xa0junk")


@dataclass(frozen=True)
class Workload:
    """A named step and the project it starts from."""

    name: str
    step: Callable[..., None]
    prepare: Callable[[Path], None]


WORKLOADS: Final = (
    Workload("setup", setup_campaign, empty_project),
    Workload("appends", append_rows, seeded_project),
    Workload("appends_create_the_ledger", append_rows, campaign_folder_only),
    Workload("memory", edit_memories, seeded_project),
    Workload("record_iteration", record_iterations, seeded_project),
    Workload("controller_by_hand", controller_by_hand, seeded_project),
    Workload("run_lock", hold_run_lock, seeded_project),
    Workload("torn_partial", append_after_torn_tail, torn_partial_project),
    Workload("torn_nul", append_after_torn_tail, torn_nul_project),
    Workload("torn_garbage", append_after_torn_tail, torn_garbage_project),
)


# ---------------------------------------------------------------- checking


def _is_debris(relative: str) -> bool:
    # Temps of a writer that died and tails set aside by the repair: what the
    # next write cleans up or keeps for a human, never a campaign file.
    name = relative.rpartition("/")[2]
    return name.endswith(".tmp") or ".corrupt-" in name


def _ledger_problems(text: str, state: CrashState) -> list[str]:
    problems = []
    lines = text.split("\n")[:-1]  # what follows the last line break is a torn tail
    for number, line in enumerate(lines, start=1):
        if number == 1 and line == HEADER:
            continue
        cells = line.split("\t")
        if len(cells) != 6 or not cells[0].lstrip("-").isdigit() or "\0" in line:
            problems.append(f"ledger line {number} is not a row: {line[:60]!r}")
    return problems


def _consistency_problems(root: Path) -> list[str]:
    problems: list[str] = []
    ledger_file = root / LEDGER
    ledger = _text(ledger_file)
    rows = [line.split("\t") for line in ledger.split("\n")[:-1] if line.count("\t") == 5]
    iterations = {cells[0] for cells in rows}
    incumbents = {cells[1] for cells in rows if cells[2] in ("baseline", "accepted")}
    state_file = root / OPT / "state.json"
    if state_file.exists():
        try:
            state = json.loads(state_file.read_bytes())
        except ValueError as error:
            return [f"state.json does not parse: {error}"]
        iteration = state.get("iteration", 0)
        if iteration and str(iteration) not in iterations:
            problems.append(f"state.json claims iteration {iteration}, the ledger lacks it")
        incumbent = state.get("incumbent_commit")
        if incumbent and incumbent not in incumbents:
            problems.append(f"state.json's incumbent {incumbent} is not in the ledger")
    memory_file = root / OPT / "memory.md"
    if memory_file.exists():
        memory = _text(memory_file).split("\n")
        missing = [heading for heading in TEMPLATE_HEADINGS if heading not in memory]
        if missing:
            problems.append(f"memory.md lacks {missing}")
    return problems


def _text(path: Path) -> str:
    # Bytes decoded as they are: no newline translation, nothing raised.
    return path.read_bytes().decode("utf-8", "replace") if path.exists() else ""


def _promise_problems(root: Path, marks: tuple[str, ...]) -> list[str]:
    problems = []
    for label in marks:
        kind, _, rest = label.partition(":")
        if kind == "row" and rest not in _text(root / LEDGER).split("\n"):
            problems.append(f"lost a returned row: {rest!r}")
        elif kind == "text":
            relative, _, needle = rest.partition(":")
            if needle not in _text(root / relative):
                problems.append(f"{relative} lost what a returned call wrote: {needle!r}")
        elif kind in ("file", "dir") and not (root / rest).exists():
            problems.append(f"{rest} vanished after its call returned")
    return problems


def _next_write_problems(root: Path, names: set[str]) -> list[str]:
    # The next clean write of each file, with this package: it must repair
    # what the crash left, keep every whole row, and leave no temp behind.
    import fermilink_state as fs

    problems: list[str] = []
    ledger = root / LEDGER
    if not (root / OPT).is_dir():
        return problems
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before: list[bytes] = []
        if ledger.exists():
            before = [
                line for line in ledger.read_bytes().split(b"\n")[:-1] if line.count(b"\t") == 5
            ]
        row = _row(999)
        fs.append_result(ledger, **row)
        data = ledger.read_bytes()
        after = data.split(b"\n")
        if not data.endswith(("\n" + _row_line(row) + "\n").encode()):
            problems.append(f"the next row was swallowed: {data[-120:]!r}")
        lost = [line for line in before if line not in after]
        if lost:
            problems.append(f"the next append deleted whole rows: {lost}")
        try:
            fs.read_results(ledger)
        except fs.StateCorruptError as error:
            problems.append(f"after the next append the ledger does not read: {error}")
        if (root / OPT / "state.json").exists():
            fs.write_state(root / OPT / "state.json", _state(999, "c0999"))
        if (root / OPT / "memory.md").exists():
            fs.record_campaign_event(root / OPT / "memory.md", **_event(_row(999)))
        _rewrite_files_with_temps(root, names)
    litter = sorted(p.name for p in (root / OPT).rglob("*.tmp"))
    if litter:
        problems.append(f"temp litter after the next write of each file: {litter}")
    return problems


def _rewrite_files_with_temps(root: Path, names: set[str]) -> None:
    # Every other file with a dead writer's temp beside it is written once more.
    import fermilink_state as fs
    from fermilink_state._atomic import temp_prefix

    for temp in (root / OPT).rglob("*.tmp"):
        relative = temp.relative_to(root).as_posix()
        folder = relative.rpartition("/")[0]
        for name in names:
            target = root / name
            if name.rpartition("/")[0] == folder and temp.name.startswith(temp_prefix(target)):
                fs.atomic_write_bytes(target, target.read_bytes() if target.exists() else b"")


@dataclass
class Checker:
    """The invariants of every crash state of one recording."""

    recording: Recording
    next_write: bool = True
    versions: dict[str, set[bytes | None]] = field(init=False)

    def __post_init__(self) -> None:
        self.versions = self.recording.all_versions()

    def __call__(self, root: Path, state: CrashState) -> None:
        __tracebackhide__ = True
        problems = []
        for relative in sorted(set(self.versions) | set(self.recording.initial.files)):
            if relative == LEDGER or _is_debris(relative):
                continue
            path = root / relative
            content = path.read_bytes() if path.exists() else None
            if content not in self.versions.get(relative, {None}):
                problems.append(f"{relative} is neither an old nor a new version: {content!r:.80}")
        ledger = root / LEDGER
        if ledger.exists():
            problems += _ledger_problems(_text(ledger), state)
        problems += _consistency_problems(root)
        problems += _promise_problems(root, state.marks)
        if self.next_write and not problems:
            names = set(self.versions) | set(self.recording.initial.files)
            problems += _next_write_problems(root, {name for name in names if not _is_debris(name)})
        if problems:
            raise AssertionError("; ".join(problems))


@dataclass(frozen=True)
class Outcome:
    """One exploration's counts and its first failures (for the report)."""

    workload: str
    model: CrashModel
    states: int
    violations: int
    first: list[str]

    def summary(self) -> str:
        """One line of counts, then the first failures."""
        counts = f"{self.workload} / {self.model}: {self.states} crash states"
        return "\n".join([f"{counts}, {self.violations} violations", *self.first])


def run_workload(
    workload: Workload,
    model: CrashModel,
    tmp_path: Path,
    *,
    library: str = OURS,
    trace_pathlib: bool = False,
    step: Callable[[Path], None] | None = None,
    max_failures: int | None = None,
) -> Outcome:
    """Record ``workload`` once and check every crash state of ``model`` (or until
    ``max_failures`` checks failed)."""
    root = tmp_path / f"{workload.name}-{model}"
    workload.prepare(root)
    chosen = step or functools.partial(workload.step, library=library)
    recording = record(chosen, root, trace_pathlib=trace_pathlib)
    untracked = recording.untracked()
    if untracked:
        raise AssertionError(f"writes that bypassed the recording seam: {untracked}")
    work = tmp_path / f"states-{workload.name}-{model}"
    work.mkdir()
    exploration = explore(recording, model, Checker(recording), work, max_failures=max_failures)
    shutil.rmtree(work, ignore_errors=True)
    return Outcome(
        workload.name,
        model,
        exploration.states,
        len(exploration.failures),
        [f"{failure.description}: {failure.error}" for failure in exploration.failures[:3]],
    )


def count_states(workload: Workload, tmp_path: Path) -> dict[str, int]:
    """How many crash states each model gives ``workload`` (no checks)."""
    root = tmp_path / f"count-{workload.name}"
    workload.prepare(root)
    recording = record(functools.partial(workload.step, library=OURS), root)
    return {model: len(crash_states(recording, model)) for model in ("kill", "power")}


def in_package_copy(package_parent: str, step: Callable[[Path], None], root: Path) -> None:
    """Run ``step`` with ``fermilink_state`` imported from a (mutated) copy of the package.

    The recorder installed in the real package's seam is moved into the
    copy's, so the copy's file operations are the ones recorded.
    """
    from fermilink_state import _fileops as real_seam

    recorder = real_seam.current_recorder()
    # The test kit stays the real one: the recorder's records must pickle as its classes.
    for name in [name for name in sys.modules if name.split(".")[0] == "fermilink_state"]:
        if not name.startswith("fermilink_state.testing"):
            del sys.modules[name]
    sys.path.insert(0, package_parent)
    copied_seam = importlib.import_module("fermilink_state._fileops")
    copied_seam.install_recorder(recorder)
    step(root)
