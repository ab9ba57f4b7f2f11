"""Golden campaign snapshots: the engine under the ``campaign_snapshot`` fixture.

Plain code with no pytest. A :class:`CampaignSnapshot` compares a campaign's
files (state.json, results.tsv, memory.md, worker memory) with golden files
in one folder per test, after normalising the values that change from run to
run (``_normalize``), and explains a mismatch with the diff that fits each
file (``_snapshot_diff``). ``_snapshot_usage`` records which golden files a
session used, so the files no test needs any more can be reported and removed.

Golden files are written under an inter-process lock and atomically (a temp
file renamed over the old one), so parallel updates never leave a torn or
empty file, nor a set of files half from one writer and half from another.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, final

from fermilink_state._atomic import atomic_write_bytes
from fermilink_state._layout import (
    MEMORY_FILENAME,
    RESULTS_FILENAME,
    STATE_FILENAME,
    WORKER_MEMORY_FILENAME,
    optimize_root,
)
from fermilink_state._locking import locked
from fermilink_state.testing._compare import INDENT
from fermilink_state.testing._normalize import (
    DEFAULT_NORMALIZATION,
    Normalization,
    normalized_bytes,
)
from fermilink_state.testing._snapshot_diff import explain_file

SNAPSHOTS_DIRNAME: Final = "__fermilink_snapshots__"
UPDATE_OPTION: Final = "--fermilink-snapshot-update"
CAMPAIGN_FILES: Final = (STATE_FILENAME, RESULTS_FILENAME, MEMORY_FILENAME, WORKER_MEMORY_FILENAME)
MAX_DIRNAME: Final = 100  # bytes of a golden folder name; filesystems allow 255
HASH_LENGTH: Final = 12  # hex digits of sha256 that tell rewritten names apart

# A test id kept as it is: identifier-like class names, then the function's
# name with its parameters. Everything else is rewritten and hashed.
_PLAIN_CLASS: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_TEST: Final = re.compile(r"[A-Za-z0-9_-]+(?:\[[A-Za-z0-9_.,=+-]*\])?")
_UNSAFE_CHAR: Final = re.compile(r"[^A-Za-z0-9_.,=+\[\]-]")
# Names Windows reserves whatever the extension: never a folder name of ours.
_RESERVED: Final = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(10)), *(f"lpt{n}" for n in range(10))}
)


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


CampaignSnapshot.__module__ = "fermilink_state.testing"
