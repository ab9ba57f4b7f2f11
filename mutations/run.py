"""The mutation gate: every guarantee-level mutant in mutations/*.toml must be killed.

For each entry (see mutations/README.md for the format) the runner copies the
tree to a temporary folder, checks that ``find`` occurs exactly ``count`` times
in ``file``, replaces every occurrence, and runs the entry's guard tests there
with the copy's ``src`` first on the import path. A mutant is killed only when
pytest exits 1 (tests failed); any other exit (usage error, nothing collected,
interrupted, a hang) is an error, never a kill. Before any mutant, the union of
every guard test must pass once on an unmutated copy.

Usage: ``python mutations/run.py [--jobs N] [ID ...]``. Exit 0 when every
selected mutant was killed; 1 when one survived or errored; 2 for an invalid
entry or a guard suite that fails unmutated.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
# What a copy leaves out: version control, caches, virtualenvs, mutmut's tree.
_NOT_COPIED: Final = shutil.ignore_patterns(
    ".git",
    ".tox",
    ".venv",
    "mutants",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "build",
    "dist",
    "*.egg-info",
)
_KEYS: Final = frozenset({"id", "guarantee", "file", "find", "replace", "count", "tests"})
_REQUIRED: Final = _KEYS - {"count"}
PYTEST_ARGS: Final = ("-p", "no:cacheprovider", "-x", "-q")
MUTANT_TIMEOUT: Final = 600.0  # seconds; a guard run past this is an error, not a kill
_KILLED_EXIT: Final = 1  # pytest's "tests failed"

Outcome = Literal["killed", "survived", "error"]


class InvalidEntry(ValueError):
    """A mutations/*.toml entry that cannot be applied as written."""


@dataclass(frozen=True)
class Mutant:
    """One entry of mutations/: a deliberate break and the tests that must catch it."""

    id: str
    guarantee: str
    file: str
    find: str
    replace: str
    count: int
    tests: tuple[str, ...]
    source: Path


@dataclass(frozen=True)
class Verdict:
    """What running one mutant's guard tests gave."""

    mutant: Mutant
    outcome: Outcome
    seconds: float
    detail: str = ""


def _require(data: dict[str, object], key: str, kind: type, where: Path) -> None:
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidEntry(f"{where}: {key!r} must be a {kind.__name__}, not {value!r}")


def load_mutant(path: Path, root: Path) -> Mutant:
    """Read and validate one entry; :class:`InvalidEntry` says what is wrong."""
    try:
        data: dict[str, object] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InvalidEntry(f"{path}: not a readable TOML file ({error})") from None
    missing = sorted(_REQUIRED - data.keys())
    unknown = sorted(data.keys() - _KEYS)
    if missing or unknown:
        raise InvalidEntry(f"{path}: missing keys {missing}, unknown keys {unknown}")
    data.setdefault("count", 1)
    for key in _KEYS:
        _require(data, key, {"count": int, "tests": list}.get(key, str), path)
    texts = {key: str(data[key]) for key in _REQUIRED - {"tests"}}
    count = int(str(data["count"]))
    tests = list(data["tests"]) if isinstance(data["tests"], list) else []
    if texts["id"] != path.stem:
        raise InvalidEntry(f"{path}: id {texts['id']!r} must be the file name without .toml")
    if count < 1:
        raise InvalidEntry(f"{path}: count must be at least 1")
    if not texts["find"] or texts["find"] == texts["replace"]:
        raise InvalidEntry(f"{path}: find must be non-empty and differ from replace")
    if not tests or not all(isinstance(test, str) and test for test in tests):
        raise InvalidEntry(f"{path}: tests must be a non-empty list of pytest node ids")
    target = (root / texts["file"]).resolve()
    if not target.is_relative_to(root.resolve()) or not target.is_file():
        raise InvalidEntry(f"{path}: file {texts['file']!r} is not a file of the repository")
    for test in tests:
        if not (root / test.partition("::")[0]).is_file():
            raise InvalidEntry(f"{path}: guard test {test!r} names no test file")
    return Mutant(
        id=texts["id"],
        guarantee=texts["guarantee"],
        file=texts["file"],
        find=texts["find"],
        replace=texts["replace"],
        count=count,
        tests=tuple(tests),
        source=path,
    )


def load_mutants(root: Path) -> list[Mutant]:
    """Every entry of ``root/mutations``, in file-name order."""
    return [load_mutant(path, root) for path in sorted((root / "mutations").glob("*.toml"))]


def mutate(text: str, mutant: Mutant) -> str:
    """``text`` with every ``find`` replaced; :class:`InvalidEntry` on a count mismatch."""
    found = text.count(mutant.find)
    if found != mutant.count:
        raise InvalidEntry(
            f"{mutant.source}: find occurs {found} times in {mutant.file}, expected "
            f"{mutant.count}; re-anchor the entry on the code that provides the guarantee"
        )
    return text.replace(mutant.find, mutant.replace)


@contextlib.contextmanager
def tree_copy(root: Path) -> Iterator[Path]:
    """A throwaway copy of the tree at ``root`` (sources, tests, examples, config)."""
    with tempfile.TemporaryDirectory(prefix="fermilink-mutant-") as folder:
        copy = Path(folder) / "tree"
        shutil.copytree(root, copy, ignore=_NOT_COPIED, symlinks=True)
        yield copy


def copy_environment(copy: Path) -> dict[str, str]:
    """The environment for a run in ``copy``: its ``src`` first on the import path.

    PYTHONPATH comes before site-packages, so an installed (or editable)
    fermilink_state cannot shadow the mutated copy; child processes that the
    tests start inherit it.
    """
    env = dict(os.environ)
    inherited = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(copy / "src"), inherited]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _packages(copy: Path) -> list[str]:
    return sorted(path.parent.name for path in (copy / "src").glob("*/__init__.py"))


def check_imports_from_copy(copy: Path) -> None:
    """Fail unless every package under ``copy/src`` is imported from the copy."""
    packages = _packages(copy)
    if not packages:
        raise InvalidEntry(f"{copy}: no package under src/ to mutate")
    code = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    print(importlib.import_module(name).__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *packages],
        cwd=copy,
        env=copy_environment(copy),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    files = result.stdout.split()
    if result.returncode != 0 or len(files) != len(packages):
        raise InvalidEntry(f"importing {packages} from the copy failed:\n{result.stderr}")
    for name, file in zip(packages, files, strict=True):
        if not Path(file).resolve().is_relative_to(copy.resolve()):
            raise InvalidEntry(f"{name} is imported from {file}, not from the mutated copy {copy}")


def run_guard_tests(copy: Path, tests: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """``python -m pytest`` of ``tests`` in ``copy`` (raises ``TimeoutExpired`` on a hang)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", *PYTEST_ARGS, *tests],
        cwd=copy,
        env=copy_environment(copy),
        capture_output=True,
        text=True,
        timeout=MUTANT_TIMEOUT,
        check=False,
    )


def _tail(result: subprocess.CompletedProcess[str], lines: int = 15) -> str:
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


def run_mutant(mutant: Mutant, root: Path) -> Verdict:
    """Apply ``mutant`` to a fresh copy of ``root`` and run its guard tests."""
    started = time.monotonic()
    with tree_copy(root) as copy:
        target = copy / mutant.file
        try:
            target.write_text(mutate(target.read_text(encoding="utf-8"), mutant), encoding="utf-8")
            check_imports_from_copy(copy)
            result = run_guard_tests(copy, mutant.tests)
        except InvalidEntry as error:
            return Verdict(mutant, "error", time.monotonic() - started, str(error))
        except subprocess.TimeoutExpired:
            detail = f"guard tests ran past {MUTANT_TIMEOUT:.0f} s"
            return Verdict(mutant, "error", time.monotonic() - started, detail)
    seconds = time.monotonic() - started
    if result.returncode == _KILLED_EXIT:
        return Verdict(mutant, "killed", seconds)
    if result.returncode == 0:
        return Verdict(mutant, "survived", seconds, _tail(result))
    return Verdict(mutant, "error", seconds, f"pytest exited {result.returncode}\n{_tail(result)}")


def check_unmutated(mutants: Sequence[Mutant], root: Path) -> str | None:
    """Run every guard test once on an unmutated copy; the failure text, or ``None``."""
    tests = sorted({test for mutant in mutants for test in mutant.tests})
    with tree_copy(root) as copy:
        check_imports_from_copy(copy)
        result = run_guard_tests(copy, tests)
    if result.returncode == 0:
        return None
    return (
        f"the guard tests fail on the unmutated tree (exit {result.returncode}):\n{_tail(result)}"
    )


def format_table(verdicts: Sequence[Verdict]) -> str:
    """The gate's table: id, guarantee, outcome and seconds per mutant."""
    width = max([len("id"), *(len(verdict.mutant.id) for verdict in verdicts)])
    lines = [f"{'id':<{width}}  {'outcome':<8}  {'seconds':>7}  guarantee"]
    for verdict in verdicts:
        guarantee = verdict.mutant.guarantee
        if len(guarantee) > 70:
            guarantee = guarantee[:67] + "..."
        lines.append(
            f"{verdict.mutant.id:<{width}}  {verdict.outcome:<8}  "
            f"{verdict.seconds:>7.1f}  {guarantee}"
        )
    return "\n".join(lines)


def run_gate(root: Path, selected: Sequence[str] = (), jobs: int = 2) -> int:
    """Run the gate on the tree at ``root``; the exit code (0 only if all were killed)."""
    started = time.monotonic()
    try:
        mutants = load_mutants(root)
    except InvalidEntry as error:
        print(f"invalid entry: {error}", file=sys.stderr)
        return 2
    unknown = sorted(set(selected) - {mutant.id for mutant in mutants})
    if unknown:
        print(f"no such mutant: {', '.join(unknown)}", file=sys.stderr)
        return 2
    if selected:
        mutants = [mutant for mutant in mutants if mutant.id in selected]
    if not mutants:
        print(f"no mutants in {root / 'mutations'}", file=sys.stderr)
        return 2
    for mutant in mutants:  # a count mismatch is an invalid entry: report before running
        try:
            mutate((root / mutant.file).read_text(encoding="utf-8"), mutant)
        except InvalidEntry as error:
            print(f"invalid entry: {error}", file=sys.stderr)
            return 2
    failure = check_unmutated(mutants, root)
    if failure is not None:
        print(failure, file=sys.stderr)
        return 2
    with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
        verdicts = list(pool.map(lambda mutant: run_mutant(mutant, root), mutants))
    print(format_table(verdicts))
    for verdict in verdicts:
        if verdict.outcome != "killed":
            print(f"\n{verdict.mutant.id}: {verdict.outcome}\n{verdict.detail}", file=sys.stderr)
    killed = sum(verdict.outcome == "killed" for verdict in verdicts)
    print(
        f"\n{killed} of {len(verdicts)} mutants killed in {time.monotonic() - started:.0f} s "
        f"({jobs} at a time, unmutated check included)"
    )
    return 0 if killed == len(verdicts) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``python mutations/run.py [--jobs N] [ID ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("ids", nargs="*", help="run only these mutants (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    return run_gate(arguments.root, arguments.ids, arguments.jobs)


if __name__ == "__main__":
    sys.exit(main())
