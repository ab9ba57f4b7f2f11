"""The crash-state explorer's engine: record a workload, rebuild every crash state.

A power cut or a kernel crash keeps only what was synced, in whatever order
the file system chose (the persistence model of ALICE, Pillai et al., OSDI
2014, and of SQLite's crash tests). This engine proves a workload against
that model, and against a plain process kill, by brute force:

1. :func:`record` (the recording half is in ``_recorder``) runs
   ``step(project_root)`` once in a child process (spawn by
   default, so it works under pytest-xdist; ``step`` must be picklable: a
   module-level function or a ``functools.partial`` of one) with a recorder
   installed in ``fermilink_state._fileops``, the seam every writer of this
   library goes through. Each :class:`FileOp` (create, write with its offset
   and bytes, truncate, fsync / fdatasync, folder sync, rename, unlink, mkdir)
   is tagged with the library call it came from (``call``: the outermost
   ``fermilink_state`` function on the stack, ``stack``: all of them,
   ``call_index``: which top-level call). The step may call :func:`mark` to
   note that something returned (``mark("row 3")``): marks are ops too, so a
   check knows what the workload had been told before the crash. Syncs are
   recorded, not performed (the child's disk state is thrown away).
   ``trace_pathlib=True`` also records writes made through ``open()`` /
   ``pathlib`` (for code that does not use this library, e.g. the reference
   module or a user's controller). The :class:`Recording` holds the project's
   tree before (:class:`Tree`), the ops and the tree after;
   :meth:`Recording.untracked` lists files the ops do not explain.
2. :func:`crash_states` builds the states of one model:

   - ``"kill"``: the process died after each prefix of the ops (the page cache
     survives, so everything issued is there);
   - ``"power"``: at each crash point, the synced ops (a write or truncate is
     synced by a later fsync / fdatasync of its file; a create, mkdir, rename
     or unlink by a later sync of its folder; anything inside a folder whose
     own creation did not persist is gone) plus the unsynced ones, in ALICE's
     three passes: every prefix of the unsynced ops; each single unsynced op
     dropped while all later ones persist; and the last write of each prefix
     cut short, padded with zeros, or filled with garbage (bytes without line
     breaks).

   States that leave the same files after the same marks are explored once
   (``dedupe=True``). Each :class:`CrashState` says where it is
   (``point``: how many ops were issued), what it is (``kind``), which ops
   persisted, and :meth:`CrashState.describe` names the op it followed and
   its library call.
3. :func:`simulate` gives a state's :class:`Tree`; :func:`materialize` writes
   it into a fresh folder; :func:`explore` does both for every state and
   calls ``check(copy_root, state)``, collecting each exception as a
   :class:`CrashFailure`.

Only the step's own process is recorded (not processes it starts), and only
what goes through the seam (or ``open()`` / ``pathlib`` with
``trace_pathlib``). Lock files (``*.lock``) are not campaign data and are
ignored.

The API (stable: extend, do not rename)::

    record(step, project_root, *, fsync=True, trace_pathlib=False,
           libraries=DEFAULT_LIBRARIES, start="spawn", timeout=120.0,
           allow_error=False) -> Recording
    mark(label)                                   # in the step
    crash_states(recording, model, *, dedupe=True) -> list[CrashState]
    simulate(recording, state) -> Tree
    materialize(recording, state, destination) -> Path
    explore(recording, model, check, workdir, *, keep_failures=False,
            dedupe=True, max_failures=None) -> Exploration
    Recording: .root .initial .ops .final .error .result, .untracked(),
               .marks_before(point), .versions(path), .all_versions(), .calls()
    CrashState: .index .model .point .kind .persisted .marks .dropped .torn,
                .describe(recording)
    Exploration: .model .states .failures (CrashFailure: .state .description
                 .error .copy_root)
    FileOp, Tree, CrashStepError, MODELS, CHANGES, SYNCS, is_lock_file
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from fermilink_state.testing._recorder import (
    DEFAULT_LIBRARIES,
    ChildSettings,
    CrashStepError,
    FileOp,
    Tree,
    is_lock_file,
    mark,
    run_in_child,
)

__all__ = [
    "CHANGES",
    "DEFAULT_LIBRARIES",
    "MODELS",
    "SYNCS",
    "CrashFailure",
    "CrashModel",
    "CrashState",
    "CrashStepError",
    "Exploration",
    "FileOp",
    "Recording",
    "Tree",
    "crash_states",
    "explore",
    "is_lock_file",
    "mark",
    "materialize",
    "record",
    "simulate",
]

CrashModel = Literal["kill", "power"]
MODELS: Final[tuple[CrashModel, ...]] = ("kill", "power")
# Kinds of FileOp that change what is on disk (the rest are syncs and marks).
CHANGES: Final = frozenset({"create", "write", "truncate", "rename", "unlink", "mkdir"})
SYNCS: Final = frozenset({"fsync", "fdatasync", "sync_folder"})
_TORN_KINDS: Final = ("torn-cut", "torn-zeros", "torn-garbage")


@dataclass(frozen=True)
class Recording:
    """What :func:`record` saw: the tree before, the ops, the tree after.

    ``error`` is the step's traceback text if it raised (``None`` if it
    returned), ``result`` its return value (its ``repr`` when it does not
    pickle).
    """

    root: Path
    initial: Tree
    ops: tuple[FileOp, ...]
    final: Tree
    error: str | None = None
    result: object = None

    def untracked(self) -> list[str]:
        """Paths whose final state the ops do not explain (writes that bypassed the seam)."""
        replayed = simulate(self, _kill_state(self, len(self.ops), 0))
        names = set(replayed.files) | set(self.final.files)
        wrong = {name for name in names if replayed.files.get(name) != self.final.files.get(name)}
        wrong |= replayed.folders ^ self.final.folders
        return sorted(wrong)

    def marks_before(self, point: int) -> tuple[str, ...]:
        """The labels of the marks among the first ``point`` ops."""
        return tuple(op.label for op in self.ops[:point] if op.kind == "mark")

    def versions(self, relative: str) -> set[bytes | None]:
        """Every whole version of one file: before the step and after each library call.

        ``None`` stands for "absent". A file written whole (atomically) must
        hold one of these in any crash state; a torn mix is none of them.
        """
        return self.all_versions().get(relative, {None})

    def all_versions(self) -> dict[str, set[bytes | None]]:
        """:meth:`versions` of every file the step or the initial tree has."""
        boundaries = [0, len(self.ops)]
        boundaries += [
            point
            for point in range(1, len(self.ops))
            if self.ops[point].call_index != self.ops[point - 1].call_index
            or self.ops[point].kind == "mark"
        ]
        trees = [simulate(self, _kill_state(self, point, 0)) for point in sorted(set(boundaries))]
        names = {name for tree in trees for name in tree.files}
        return {name: {tree.files.get(name) for tree in trees} for name in names}

    def calls(self) -> list[str]:
        """The top-level library calls in order, one entry per call."""
        seen: dict[int, str] = {}
        for op in self.ops:
            if op.call and op.call_index not in seen:
                seen[op.call_index] = op.call
        return [seen[index] for index in sorted(seen)]


@dataclass(frozen=True, slots=True)
class CrashState:
    """One state the files can be in after a crash.

    ``point``: the crash came after the first ``point`` ops were issued.
    ``kind``: ``"kill"``; or for a power cut ``"prefix"`` (the synced ops and
    a prefix of the unsynced ones), ``"drop"`` (every unsynced op but
    ``dropped``), ``"torn-cut"`` / ``"torn-zeros"`` / ``"torn-garbage"`` (the
    write ``torn`` landed cut short, as zeros or as garbage). ``persisted``:
    the indices of the ops whose effect is on disk (``torn`` included).
    ``marks``: the labels of the marks issued before the crash.
    """

    index: int
    model: CrashModel
    point: int
    kind: str
    persisted: tuple[int, ...]
    marks: tuple[str, ...] = ()
    dropped: int | None = None
    torn: int | None = None

    def describe(self, recording: Recording) -> str:
        """Where the crash hit and what it kept, for a failure message."""
        after = recording.ops[self.point - 1].describe() if self.point else "before any op"
        text = f"state {self.index} ({self.model}, {self.kind}): crash after {after}"
        if self.dropped is not None:
            text += f"; lost {recording.ops[self.dropped].describe()}"
        if self.torn is not None:
            text += f"; {self.kind[5:]} {recording.ops[self.torn].describe()}"
        return text


@dataclass(frozen=True, slots=True)
class CrashFailure:
    """A check that raised on a crash state."""

    state: CrashState
    description: str
    error: BaseException
    copy_root: Path | None = None


@dataclass(slots=True)
class Exploration:
    """What :func:`explore` found: how many states it checked, which failed."""

    model: CrashModel
    states: int = 0
    failures: list[CrashFailure] = field(default_factory=list)


def record(
    step: Callable[[Path], object],
    project_root: Path,
    *,
    fsync: bool = True,
    trace_pathlib: bool = False,
    libraries: Sequence[str] = DEFAULT_LIBRARIES,
    start: Literal["spawn", "fork", "forkserver"] = "spawn",
    timeout: float = 120.0,
    allow_error: bool = False,
) -> Recording:
    """Run ``step(project_root)`` once in a child process and record its file ops.

    The project is changed as the step leaves it. ``fsync=True`` turns
    ``FERMILINK_STATE_FSYNC`` on in the child (the syncs are recorded, not
    performed). ``libraries`` are the module-name prefixes whose functions tag
    the ops. Raises :class:`CrashStepError` if the step raised (unless
    ``allow_error``; the traceback is then in :attr:`Recording.error`) and
    ``TimeoutError`` if it ran longer than ``timeout`` seconds.
    """
    root = Path(os.path.abspath(project_root))
    initial = Tree.capture(root)
    ops, error, result = run_in_child(
        step, ChildSettings(str(root), fsync, trace_pathlib, tuple(libraries)), start, timeout
    )
    recording = Recording(root, initial, tuple(ops), Tree.capture(root), error, result)
    if error is not None and not allow_error:
        raise CrashStepError(f"the recorded step raised:\n{error}")
    return recording


# ------------------------------------------------------------- crash states


def _durable_at(ops: Sequence[FileOp]) -> list[float]:
    """For each op, the index of the first later sync that makes it durable (inf: none)."""
    never = float("inf")
    result: list[float] = []
    for index, op in enumerate(ops):
        if op.kind in ("write", "truncate"):
            needs = [("file", op.inode)]
        elif op.kind in ("create", "mkdir", "unlink"):
            needs = [("folder", _parent(op.path))]
        elif op.kind == "rename":
            needs = [("folder", _parent(op.path)), ("folder", _parent(op.target))]
        else:
            result.append(never)
            continue
        when = 0.0
        for need in set(needs):
            found = next(
                (later for later in range(index + 1, len(ops)) if _syncs(ops[later], need)),
                never,
            )
            when = max(when, found)
        result.append(when)
    return result


def _syncs(op: FileOp, need: tuple[str, str]) -> bool:
    what, name = need
    if what == "file":
        return op.kind in ("fsync", "fdatasync") and op.inode == name
    return op.kind == "sync_folder" and op.path == name


def _parent(relative: str) -> str:
    parent = relative.rpartition("/")[0]
    return parent or "."


def _kill_state(recording: Recording, point: int, index: int) -> CrashState:
    persisted = tuple(i for i in range(point) if recording.ops[i].kind in CHANGES)
    return CrashState(index, "kill", point, "kill", persisted, recording.marks_before(point))


def _power_states(
    recording: Recording, point: int, durable_at: Sequence[float]
) -> Iterator[CrashState]:
    ops = recording.ops
    changes = [i for i in range(point) if ops[i].kind in CHANGES]
    synced = [i for i in changes if durable_at[i] < point]
    unsynced = [i for i in changes if durable_at[i] >= point]
    marks = recording.marks_before(point)

    def state(kind: str, persisted: list[int], **extra: int) -> CrashState:
        return CrashState(-1, "power", point, kind, tuple(sorted(persisted)), marks, **extra)

    for count in range(len(unsynced) + 1):
        yield state("prefix", synced + unsynced[:count])
        if count and ops[unsynced[count - 1]].kind == "write":
            for kind in _TORN_KINDS:
                yield state(kind, synced + unsynced[:count], torn=unsynced[count - 1])
    if len(unsynced) > 1:
        for dropped in unsynced[:-1]:  # dropping the last one is a prefix
            kept = [i for i in unsynced if i != dropped]
            yield state("drop", synced + kept, dropped=dropped)


def crash_states(
    recording: Recording, model: CrashModel, *, dedupe: bool = True
) -> list[CrashState]:
    """Every crash state of ``model`` for the recorded ops, numbered from 0.

    With ``dedupe``, states that leave the same tree after the same marks are
    kept once (the first, at the earliest crash point).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, not {model!r}")
    points = range(len(recording.ops) + 1)
    if model == "kill":
        candidates: Iterator[CrashState] = (_kill_state(recording, p, -1) for p in points)
    else:
        durable_at = _durable_at(recording.ops)
        candidates = (s for p in points for s in _power_states(recording, p, durable_at))
    states: list[CrashState] = []
    seen: set[tuple[bytes, tuple[str, ...]]] = set()
    for candidate in candidates:
        if dedupe:
            key = (simulate(recording, candidate).fingerprint(), candidate.marks)
            if key in seen:
                continue
            seen.add(key)
        states.append(
            CrashState(
                len(states),
                candidate.model,
                candidate.point,
                candidate.kind,
                candidate.persisted,
                candidate.marks,
                candidate.dropped,
                candidate.torn,
            )
        )
    return states


def _torn_bytes(kind: str, data: bytes, index: int) -> bytes:
    if kind == "torn-cut":
        return data[: len(data) // 2]
    if kind == "torn-zeros":
        return bytes(len(data))
    # Deterministic garbage without line breaks (see the module docstring).
    stream = b""
    counter = 0
    while len(stream) < len(data):
        stream += hashlib.sha256(f"{index}:{counter}".encode()).digest()
        counter += 1
    return stream[: len(data)].replace(b"\n", b"\xff")


def simulate(recording: Recording, state: CrashState) -> Tree:
    """The files and folders a crash state leaves (without touching the disk)."""
    initial = recording.initial
    names = {name: f"init:{name}" for name in initial.files}
    contents: dict[str, bytearray] = {}
    folders = set(initial.folders)

    def content(inode: str) -> bytearray:
        if inode not in contents:
            start = initial.files.get(inode[5:], b"") if inode.startswith("init:") else b""
            contents[inode] = bytearray(start)
        return contents[inode]

    for index in state.persisted:
        op = recording.ops[index]
        if op.kind == "create":
            names[op.path] = op.inode
            content(op.inode)
        elif op.kind == "write":
            data = op.data
            if index == state.torn:
                data = _torn_bytes(state.kind, data, index)
            buffer = content(op.inode)
            if len(buffer) < op.offset:
                buffer.extend(bytes(op.offset - len(buffer)))
            buffer[op.offset : op.offset + len(data)] = data
        elif op.kind == "truncate":
            buffer = content(op.inode)
            if len(buffer) > op.size:
                del buffer[op.size :]
            else:
                buffer.extend(bytes(op.size - len(buffer)))
        elif op.kind == "rename":
            if names.get(op.path) == op.inode:
                del names[op.path]
            names[op.target] = op.inode
        elif op.kind == "unlink":
            if names.get(op.path) == op.inode:
                del names[op.path]
        elif op.kind == "mkdir":
            folders.add(op.path)

    def visible(relative: str) -> bool:
        parent = _parent(relative)
        while parent != ".":
            if parent not in folders:
                return False
            parent = _parent(parent)
        return True

    return Tree(
        frozenset(folder for folder in folders if visible(folder)),
        {name: bytes(content(inode)) for name, inode in names.items() if visible(name)},
    )


def materialize(recording: Recording, state: CrashState, destination: Path) -> Path:
    """Write the files of ``state`` into ``destination`` (a new folder); return it."""
    return simulate(recording, state).write_to(destination)


def explore(
    recording: Recording,
    model: CrashModel,
    check: Callable[[Path, CrashState], object],
    workdir: Path,
    *,
    keep_failures: bool = False,
    dedupe: bool = True,
    max_failures: int | None = None,
) -> Exploration:
    """Materialize every crash state of ``model`` under ``workdir`` and check it.

    ``check(copy_root, state)`` gets a fresh copy of the project as the crash
    left it; an exception from it (``AssertionError`` or any other) is a
    :class:`CrashFailure`. Copies are removed after their check, except the
    failing ones when ``keep_failures``. With ``max_failures``, exploration
    stops once that many checks failed (``states`` counts those checked).
    """
    exploration = Exploration(model)
    for state in crash_states(recording, model, dedupe=dedupe):
        copy_root = materialize(recording, state, workdir / f"{model}-{state.index}")
        exploration.states += 1
        try:
            check(copy_root, state)
        except Exception as error:
            kept = copy_root if keep_failures else None
            exploration.failures.append(CrashFailure(state, state.describe(recording), error, kept))
            if kept is None:
                shutil.rmtree(copy_root, ignore_errors=True)
            if max_failures is not None and len(exploration.failures) >= max_failures:
                break
        else:
            shutil.rmtree(copy_root, ignore_errors=True)
    return exploration
