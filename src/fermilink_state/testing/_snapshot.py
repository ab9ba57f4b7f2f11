"""Golden campaign snapshots: the engine under the ``campaign_snapshot`` fixture.

Plain code with no pytest. A :class:`CampaignSnapshot` compares a campaign's
files (state.json, results.tsv, memory.md, worker memory) with golden files
in one folder per test, after normalising the values that change from run to
run; a :class:`SnapshotUsage` records which golden files a session used, so
the files no test needs any more can be reported and removed.

Golden files are written under an inter-process lock and atomically (a temp
file renamed over the old one), so parallel updates never leave a torn or
empty file, nor a set of files half from one writer and half from another.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, final

from fermilink_state._atomic import atomic_write_bytes
from fermilink_state._document import parse_memory
from fermilink_state._layout import (
    MEMORY_FILENAME,
    RESULTS_FILENAME,
    STATE_FILENAME,
    WORKER_MEMORY_FILENAME,
    optimize_root,
)
from fermilink_state._locking import locked
from fermilink_state._results import RESULT_FIELDS, iter_result_lines, parse_result_line
from fermilink_state.testing._compare import INDENT, describe_changes, diff_lines, section_changes

SNAPSHOTS_DIRNAME: Final = "__fermilink_snapshots__"
UPDATE_OPTION: Final = "--fermilink-snapshot-update"
CAMPAIGN_FILES: Final = (STATE_FILENAME, RESULTS_FILENAME, MEMORY_FILENAME, WORKER_MEMORY_FILENAME)
MAX_DIRNAME: Final = 100  # bytes of a golden folder name; filesystems allow 255
HASH_LENGTH: Final = 12  # hex digits of sha256 that tell rewritten names apart
DIFF_LIMIT: Final = 20  # differences listed per file before "... N more"

# A test id kept as it is: identifier-like class names, then the function's
# name with its parameters. Everything else is rewritten and hashed.
_PLAIN_CLASS: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_TEST: Final = re.compile(r"[A-Za-z0-9_-]+(?:\[[A-Za-z0-9_.,=+-]*\])?")
_UNSAFE_CHAR: Final = re.compile(r"[^A-Za-z0-9_.,=+\[\]-]")
# Names Windows reserves whatever the extension: never a folder name of ours.
_RESERVED: Final = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(10)), *(f"lpt{n}" for n in range(10))}
)

# Volatile values and what they become.
_UTC_STAMP: Final = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})"
    r"|\b\d{8}T\d{6}\d*Z\b"  # the compact form of quarantined file names
)
_PID_FIELD: Final = re.compile(r"(\bpid[\"']?\s*[:=]\s*)\d+", re.IGNORECASE)
_TEMP_FILE: Final = re.compile(r"\.[^\s/\"'`]+\.[^\s/\"'`]+\.\d+\.[0-9a-f]{8}\.tmp\b")
_COMMIT: Final = re.compile(r"\b[0-9a-f]{7,40}\b")
_PID_KEYS: Final = frozenset({"pid", "holder_pid", "owner_pid"})
_PID_TIME_KEYS: Final = frozenset({"pid_started_at"})
_HOST_KEYS: Final = frozenset({"hostname", "host"})

UTC_PLACEHOLDER: Final = "<utc>"
PID_PLACEHOLDER: Final = "<pid>"
PID_START_PLACEHOLDER: Final = "<pid-start>"
HOST_PLACEHOLDER: Final = "<host>"
PROJECT_PLACEHOLDER: Final = "<project>"
TMP_PLACEHOLDER: Final = "<tmp>"
TEMP_FILE_PLACEHOLDER: Final = "<temp-file>"
COMMIT_PLACEHOLDER: Final = "<commit>"


@final
@dataclass(frozen=True, slots=True)
class Normalization:
    """Which volatile values :meth:`CampaignSnapshot.assert_match` replaces by placeholders.

    On by default: UTC timestamps (``<utc>``, frozen clock or not), process
    ids (``<pid>``, and ``pid_started_at`` as ``<pid-start>``), this host's
    name (``<host>``), the project's folder (``<project>``), other paths in
    the temp folder (``<tmp>``) and atomic-write temp names
    (``<temp-file>``). Off by default: ``commits`` (hex strings of 7 to 40
    digits become ``<commit>``). ``replace`` adds ``(regex, replacement)``
    pairs applied last, in order.
    """

    timestamps: bool = True
    pids: bool = True
    hostnames: bool = True
    temp_paths: bool = True
    commits: bool = False
    replace: Sequence[tuple[str | re.Pattern[str], str]] = ()

    def text(self, text: str, *, project_root: Path | None = None) -> str:
        """``text`` with every volatile value this normalisation covers replaced."""
        if self.temp_paths:
            text = _replace_paths(text, project_root)
        if self.timestamps:
            text = _UTC_STAMP.sub(UTC_PLACEHOLDER, text)
        if self.pids:
            text = _PID_FIELD.sub(rf"\g<1>{PID_PLACEHOLDER}", text)
        if self.hostnames:
            host = socket.gethostname()
            # A one-letter host name would rewrite ordinary words.
            if len(host) >= 3:
                text = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-])", HOST_PLACEHOLDER, text)
        if self.commits:
            text = _COMMIT.sub(COMMIT_PLACEHOLDER, text)
        for pattern, replacement in self.replace:
            text = re.sub(pattern, replacement, text)
        return text

    def json_value(self, value: Any, key: str | None = None, *, project_root: Path | None) -> Any:
        """A parsed JSON value normalised: known keys by name, every string as text."""
        if isinstance(value, dict):
            return {k: self.json_value(v, k, project_root=project_root) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json_value(item, key, project_root=project_root) for item in value]
        if self.pids and key in _PID_KEYS and isinstance(value, int) and value is not True:
            return PID_PLACEHOLDER
        if self.pids and key in _PID_TIME_KEYS and isinstance(value, int | float):
            return PID_START_PLACEHOLDER
        if self.hostnames and key in _HOST_KEYS and isinstance(value, str):
            return HOST_PLACEHOLDER
        if isinstance(value, str):
            return self.text(value, project_root=project_root)
        return value


def _replace_paths(text: str, project_root: Path | None) -> str:
    roots = []
    if project_root is not None:
        roots.append((os.path.abspath(project_root), PROJECT_PLACEHOLDER))
        real = os.path.realpath(project_root)
        if real != roots[0][0]:
            roots.append((real, PROJECT_PLACEHOLDER))
    for raw, placeholder in roots:
        text = text.replace(raw, placeholder)
    text = _TEMP_FILE.sub(TEMP_FILE_PLACEHOLDER, text)
    for temp in {tempfile.gettempdir(), os.path.realpath(tempfile.gettempdir())}:
        text = re.sub(rf"{re.escape(temp)}/[^\s\"'`]*", TMP_PLACEHOLDER, text)
    return text


DEFAULT_NORMALIZATION: Final = Normalization()


def normalized_bytes(
    name: str, data: bytes, normalization: Normalization, *, project_root: Path | None
) -> bytes:
    """A campaign file's bytes as they are stored in a golden file.

    JSON objects are parsed, normalised by key and value and written back as
    the library writes JSON; everything else is normalised as UTF-8 text
    (undecodable bytes are kept as they are).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    if name.endswith(".json"):
        try:
            payload = json.loads(text)
        except ValueError:
            pass
        else:
            value = normalization.json_value(payload, project_root=project_root)
            return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return normalization.text(text, project_root=project_root).encode("utf-8")


# --- names of golden folders -------------------------------------------------


def _hashed(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def folder_for_test(names: Sequence[str]) -> str:
    """The golden folder of a test, from its names below the module (classes, then the test).

    A plain id (``TestCampaign::test_append[accepted-0.5]``) reads as itself,
    classes joined by ``.`` (``TestCampaign.test_append[accepted-0.5]``).
    Any other id (path separators, spaces, unicode, a reserved or over-long
    name) becomes a safe name followed by ``~`` and a hash of the whole id:
    two different ids never share a folder, and no id leaves its module's
    folder.
    """
    if not names:
        raise ValueError("a test id has at least one name")
    plain = (
        all(_PLAIN_CLASS.fullmatch(name) for name in names[:-1])
        and _PLAIN_TEST.fullmatch(names[-1]) is not None
    )
    joined = ".".join(names)
    # On case-insensitive filesystems test[A] and test[a] would share a folder.
    has_upper_param = "[" in names[-1] and names[-1] != names[-1].lower()
    if (
        plain
        and not has_upper_param
        and len(joined.encode()) <= MAX_DIRNAME
        and joined.split(".")[0].lower() not in _RESERVED
    ):
        return joined
    # "~" never occurs in a plain name, so a rewritten name never equals one.
    safe = _UNSAFE_CHAR.sub("_", joined)[: MAX_DIRNAME - HASH_LENGTH - 1].lstrip(".")
    return f"{safe or 'test'}~{_hashed('::'.join(names))}"


def module_dirname(module_path: Path) -> str:
    """The golden folder of a test module: its name without ``.py``."""
    name = Path(module_path).name
    return name.removesuffix(".py") if name.endswith(".py") and name != ".py" else name


def golden_dir(module_path: Path, names: Sequence[str]) -> Path:
    """``<module folder>/__fermilink_snapshots__/<module>/<test>/`` for one test."""
    module_path = Path(module_path)
    module_folder = module_path.parent / SNAPSHOTS_DIRNAME / module_dirname(module_path)
    return module_folder / folder_for_test(names)


# --- explaining a mismatch -----------------------------------------------------


def _limited(lines: list[str]) -> list[str]:
    if len(lines) <= DIFF_LIMIT:
        return lines
    hidden = len(lines) - DIFF_LIMIT
    return [*lines[:DIFF_LIMIT], f"... {hidden} more difference{'s' if hidden != 1 else ''}"]


_MISSING: Final = object()


def _key_path(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def _json_changes(path: str, old: Any, new: Any) -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys(), key=str):
            yield from _json_changes(
                _key_path(path, key), old.get(key, _MISSING), new.get(key, _MISSING)
            )
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            yield from _json_changes(
                _key_path(path, index),
                old[index] if index < len(old) else _MISSING,
                new[index] if index < len(new) else _MISSING,
            )
        return
    if old is _MISSING:
        yield f"{path}: added {json.dumps(new)}"
    elif new is _MISSING:
        yield f"{path}: removed (was {json.dumps(old)})"
    elif old != new or type(old) is not type(new):
        yield f"{path}: {json.dumps(old)} -> {json.dumps(new)}"


def explain_json(golden: str, actual: str) -> list[str]:
    """One line per key path that differs (``$.incumbent_metrics.runtime: 1.0 -> 0.5``)."""
    try:
        old, new = json.loads(golden), json.loads(actual)
    except ValueError:
        return explain_lines(golden, actual)
    return _limited(list(_json_changes("$", old, new)))


def _row_text(line: str) -> str:
    try:
        row = parse_result_line(line)
    except ValueError:
        return repr(line)
    return ", ".join(f"{name}={getattr(row, name)!r}" for name in RESULT_FIELDS)


def explain_results(golden: str, actual: str) -> list[str]:
    """One entry per ledger row that differs, field by field, numbered by file line."""
    old = list(iter_result_lines(golden))
    new = list(iter_result_lines(actual))
    lines: list[str] = []
    if golden.split("\n", 1)[0] != actual.split("\n", 1)[0]:
        lines.append(f"header: {golden.split(chr(10), 1)[0]!r} -> {actual.split(chr(10), 1)[0]!r}")
    for (number, one), (_, two) in zip(old, new, strict=False):
        if one == two:
            continue
        try:
            left, right = parse_result_line(one), parse_result_line(two)
        except ValueError:
            lines.append(f"line {number}: {one!r} -> {two!r}")
            continue
        fields = [
            f"{name} {getattr(left, name)!r} -> {getattr(right, name)!r}"
            for name in RESULT_FIELDS
            if repr(getattr(left, name)) != repr(getattr(right, name))
        ]
        lines.append(f"line {number}: " + ("; ".join(fields) or f"{one!r} -> {two!r}"))
    for number, line in old[len(new) :]:
        lines.append(f"line {number} removed: {_row_text(line)}")
    for number, line in new[len(old) :]:
        lines.append(f"line {number} added: {_row_text(line)}")
    if not lines:
        lines = explain_lines(golden, actual)
    return _limited(lines)


def explain_memory(golden: str, actual: str) -> list[str]:
    """Which sections differ, with a small diff each (as the section assertions show)."""
    changes = section_changes(parse_memory(golden), parse_memory(actual))
    return describe_changes(changes) if changes else explain_lines(golden, actual)


def explain_lines(golden: str, actual: str) -> list[str]:
    """A line diff of two texts, for files without a structure of their own."""
    return diff_lines(golden, actual, limit=DIFF_LIMIT)


def explain_file(name: str, golden: str, actual: str) -> list[str]:
    """The diff that fits the file: per key path, per row or per section."""
    if name.endswith(".json"):
        return explain_json(golden, actual)
    if name.endswith(".tsv"):
        return explain_results(golden, actual)
    if name.endswith(".md"):
        return explain_memory(golden, actual)
    return explain_lines(golden, actual)


# --- writing golden files --------------------------------------------------------


def update_lock_path(snapshots_root: Path) -> Path:
    """The file whose lock serialises every update of one ``__fermilink_snapshots__`` folder.

    It lives in the temp folder, keyed by the folder's real path, so no lock
    file lands in the user's repository.
    """
    key = _hashed(os.path.realpath(snapshots_root))
    # The user id keeps one user's lock file from blocking another's in a shared /tmp.
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"fermilink-snapshots-{user}-{key}"


def snapshots_root_of(path: Path) -> Path:
    """The ``__fermilink_snapshots__`` folder above a golden file or folder."""
    for parent in (Path(path), *Path(path).parents):
        if parent.name == SNAPSHOTS_DIRNAME:
            return parent
    raise ValueError(f"{path} is not inside a {SNAPSHOTS_DIRNAME} folder")


def write_golden_files(directory: Path, files: Mapping[str, bytes | None]) -> list[Path]:
    """Write one test's golden files as a set; ``None`` removes a file. Return what changed.

    Under the update lock of the snapshots folder, each file written
    atomically: a concurrent reader or writer sees the old set or the new
    one, never a torn file.
    """
    changed: list[Path] = []
    root = snapshots_root_of(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with locked(update_lock_path(root)):
        for name, data in files.items():
            path = directory / name
            try:
                current: bytes | None = path.read_bytes()
            except FileNotFoundError:
                current = None
            if current == data:
                continue
            if data is None:
                path.unlink()
            else:
                atomic_write_bytes(path, data)
            changed.append(path)
    return changed


def remove_golden_files(paths: Iterable[Path]) -> list[Path]:
    """Remove unused golden files and the folders they leave empty; return what was removed."""
    removed: list[Path] = []
    by_root: dict[Path, list[Path]] = {}
    for path in paths:
        by_root.setdefault(snapshots_root_of(path), []).append(Path(path))
    for root, files in sorted(by_root.items()):
        with locked(update_lock_path(root)):
            for path in sorted(files):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
                for parent in path.parents:
                    if parent == root.parent:
                        break
                    try:
                        parent.rmdir()  # only when empty
                    except OSError:
                        break
    return removed


# --- comparing ------------------------------------------------------------------


def _campaign_folder(project: object) -> tuple[Path, Path]:
    """``(project root, campaign folder)`` of a project object, a root or a campaign folder."""
    # Not getattr(project, "root") first: a Path has a .root too ("/").
    root = project if isinstance(project, str | os.PathLike) else getattr(project, "root", None)
    if not isinstance(root, str | os.PathLike):
        raise TypeError(
            f"assert_match() takes an OptimizeProject or a project folder, not {project!r}"
        )
    root = Path(root)
    if root.name == optimize_root(Path("x")).name:
        return root.parent, root
    return root, optimize_root(root)


_Files = Mapping[str, bytes | None]


@final
class CampaignSnapshot:
    """Golden files for one test (the type of the ``campaign_snapshot`` fixture).

    ``directory`` is the test's golden folder; with ``update`` true, a
    missing or different golden file is written instead of failing. Every
    golden file a call reads or writes is added to :attr:`used`.
    """

    def __init__(
        self,
        directory: Path,
        *,
        update: bool = False,
        normalization: Normalization = DEFAULT_NORMALIZATION,
    ) -> None:
        self.directory = Path(directory)
        self.update = update
        self.normalization = normalization
        self.used: set[Path] = set()
        self.written: list[Path] = []
        self._names: set[str | None] = set()

    def __repr__(self) -> str:
        return f"CampaignSnapshot({str(self.directory)!r}, update={self.update})"

    def assert_match(
        self,
        project: object,
        *,
        files: Collection[str] = CAMPAIGN_FILES,
        name: str | None = None,
        normalization: Normalization | None = None,
    ) -> None:
        """Compare the campaign's files with the golden files of this test.

        ``project`` is an ``OptimizeProject``, a project folder or its
        ``.fermilink-optimize`` folder. ``files`` picks among ``state.json``,
        ``results.tsv``, ``memory.md`` and ``worker_memory.md`` (default:
        all four; a file absent from the campaign must be absent from the
        golden folder too). ``name`` tells several snapshots of one test
        apart (a subfolder each). Fails with a diff per file, or, for a
        missing golden file, with the flag that writes it.
        """
        __tracebackhide__ = True
        unknown = sorted(set(files) - set(CAMPAIGN_FILES))
        if isinstance(files, str) or unknown or not files:
            raise ValueError(f"files must name some of {', '.join(CAMPAIGN_FILES)}; got {files!r}")
        if name in self._names:
            raise ValueError(
                "this test already called assert_match() "
                + (f"with name={name!r}" if name else "without a name")
                + "; give each snapshot of one test its own name="
            )
        if name is not None and folder_for_test([name]) != name:
            raise ValueError(f"name={name!r}: use letters, digits, '_' and '-' only")
        self._names.add(name)
        rules = normalization or self.normalization
        root, campaign = _campaign_folder(project)
        directory = self.directory / name if name else self.directory
        actual: dict[str, bytes | None] = {}
        for file in CAMPAIGN_FILES:
            if file not in files:
                continue
            try:
                data = (campaign / file).read_bytes()
            except FileNotFoundError:
                actual[file] = None
                continue
            actual[file] = normalized_bytes(file, data, rules, project_root=root)
        golden: dict[str, bytes | None] = {}
        for file in actual:
            path = directory / file
            self.used.add(path)
            try:
                golden[file] = path.read_bytes()
            except FileNotFoundError:
                golden[file] = None
        if golden == actual:
            return
        if self.update:
            self.written += write_golden_files(directory, actual)
            return
        raise AssertionError(self._explain(directory, golden, actual))

    def _explain(self, directory: Path, golden: _Files, actual: _Files) -> str:
        missing = [file for file in actual if golden[file] is None and actual[file] is not None]
        changed = [file for file in actual if file not in missing and golden[file] != actual[file]]
        lines: list[str] = []
        if missing:
            lines.append(
                f"no golden file for {', '.join(missing)} in {directory}: run pytest with "
                f"{UPDATE_OPTION} to write it, then review and commit it"
            )
        if changed:
            lines.append(
                f"the campaign differs from its golden files in {directory} ({', '.join(changed)}):"
            )
        for file in changed:
            old, new = golden[file], actual[file]
            if new is None:
                lines.append(f"{file}: the campaign has no {file}, the golden file expects one")
                continue
            if old is None:  # pragma: no cover - counted as missing above
                continue
            lines.append(f"{file}:")
            lines += [
                INDENT + line
                for line in explain_file(
                    file, old.decode("utf-8", "replace"), new.decode("utf-8", "replace")
                )
            ]
        if changed:
            lines.append(f"If the change is intended, run pytest with {UPDATE_OPTION}.")
        return "\n".join(lines)


# --- which golden files a session used ----------------------------------------------


@dataclass(slots=True)
class ModuleRecord:
    """A collected test module: its golden folder and the golden folder of each of its tests.

    ``complete`` is whether every test of the module was selected (no ``-k``,
    ``-m``, node id or deselection left one out).
    """

    snapshots: str
    complete: bool
    tests: dict[str, str] = field(default_factory=dict)  # node id -> golden folder

    def to_json(self) -> dict[str, Any]:
        """A form that crosses the xdist channel (plain dicts, lists, strings)."""
        return {"snapshots": self.snapshots, "complete": self.complete, "tests": self.tests}


@dataclass(slots=True)
class SnapshotUsage:
    """What a session needs to tell unused golden files from the ones it did not look at.

    Filled by every process that collects and runs tests (an xdist worker
    sends its record to the controller, which :meth:`merge` s them);
    :meth:`unused` then judges only what was judged safely: golden folders of
    tests that no longer exist in a module that was collected in full, and
    files that a test which ran and passed did not use.
    """

    modules: dict[str, ModuleRecord] = field(default_factory=dict)  # by module path
    used: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    calls_passed: set[str] = field(default_factory=set)  # node ids whose test body passed
    not_passed: set[str] = field(default_factory=set)  # node ids with a phase that did not

    def add_module(self, module_path: Path, *, complete: bool, tests: Mapping[str, str]) -> None:
        """Record a collected module and the golden folder name of each of its tests."""
        module_path = Path(module_path)
        snapshots = module_path.parent / SNAPSHOTS_DIRNAME / module_dirname(module_path)
        self.modules[str(module_path)] = ModuleRecord(str(snapshots), complete, dict(tests))

    def to_json(self) -> dict[str, Any]:
        """The record as plain data (for ``config.workeroutput``)."""
        return {
            "modules": {path: record.to_json() for path, record in self.modules.items()},
            "used": sorted(self.used),
            "written": sorted(self.written),
        }

    def merge(self, data: Mapping[str, Any]) -> None:
        """Add a worker's :meth:`to_json`: used files add up; a module is complete only if
        every worker collected it completely."""
        self.used.update(data.get("used", ()))
        self.written.update(data.get("written", ()))
        for path, raw in data.get("modules", {}).items():
            record = ModuleRecord(str(raw["snapshots"]), bool(raw["complete"]), dict(raw["tests"]))
            known = self.modules.get(path)
            if known is None:
                self.modules[path] = record
            else:
                known.complete = known.complete and record.complete
                known.tests.update(record.tests)

    def record_outcome(self, nodeid: str, phase: str, *, passed: bool) -> None:
        """One phase's outcome (``setup``, ``call``, ``teardown``) of a test."""
        if not passed:
            self.not_passed.add(nodeid)
        elif phase == "call":
            self.calls_passed.add(nodeid)

    @property
    def passed(self) -> set[str]:
        """Node ids of the tests that ran to the end and passed every phase."""
        return self.calls_passed - self.not_passed

    def unused(self) -> list[Path]:
        """Golden files no test used, among those this session can judge; sorted."""
        unused: set[Path] = set()
        used = {Path(path) for path in self.used}
        passed = self.passed
        for module_path, record in self.modules.items():
            snapshots = Path(record.snapshots)
            if not snapshots.is_dir():
                continue
            owners = {folder: nodeid for nodeid, folder in record.tests.items()}
            for folder in snapshots.iterdir():
                nodeid = owners.get(folder.name)
                if nodeid is None:
                    if record.complete and Path(module_path).exists():
                        unused.update(_files_under(folder))
                    continue
                if nodeid in passed:
                    unused.update(path for path in _files_under(folder) if path not in used)
        unused.update(self._orphan_modules())
        return sorted(unused)

    def _orphan_modules(self) -> set[Path]:
        # The golden folder of a module file that no longer exists, beside a
        # module this session collected.
        orphans: set[Path] = set()
        roots = {Path(record.snapshots).parent for record in self.modules.values()}
        for root in roots:
            if not root.is_dir():
                continue
            for folder in root.iterdir():
                stem = folder.name
                if not (root.parent / f"{stem}.py").exists() and not (root.parent / stem).exists():
                    orphans.update(_files_under(folder))
        return orphans


def _files_under(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    return [Path(dirpath, name) for dirpath, _, names in os.walk(folder) for name in names]


CampaignSnapshot.__module__ = "fermilink_state.testing"
Normalization.__module__ = "fermilink_state.testing"
