"""``fermilink-state check``: find every problem in a campaign folder.

Reads only: no file is created (not even a lock file), changed, moved or
removed, so it is safe on a live campaign and in CI. Each problem names the
file and line, says what is wrong and what to do about it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fermilink_state._atomic import temp_prefix
from fermilink_state._errors import StateCorruptError
from fermilink_state._jsonio import QUARANTINE_MARKER, read_json_file
from fermilink_state._layout import (
    AUTOGEN_DIRNAME,
    INPUTS_DIRNAME,
    MEMORY_FILENAME,
    RESULTS_FILENAME,
    RUN_LOCK_FILENAME,
    STATE_FILENAME,
    WORKER_MEMORY_FILENAME,
    optimize_root,
)
from fermilink_state._markdown import ALL_LEVELS, fence_spans, split_sections
from fermilink_state._memory import LAST_UPDATED_PREFIX, memory_template, worker_memory_template
from fermilink_state._process import pid_is_running
from fermilink_state._results import RESULTS_HEADER, ledger_texts, parse_result_line, usual_rows
from fermilink_state._runlock import run_lock_status
from fermilink_state.cli._status import locate_campaign


def _template_headings(template: str) -> tuple[str, ...]:
    return tuple(section.heading for section in split_sections(template, ALL_LEVELS))


# The headings the templates write, read off the templates themselves.
MEMORY_HEADINGS: Final = _template_headings(
    memory_template(
        package_id="", benchmark_id="", benchmark_rel="", optimize_branch="", started=""
    )
)
WORKER_MEMORY_HEADINGS: Final = _template_headings(
    worker_memory_template(
        package_id="",
        benchmark_id="",
        benchmark_rel="",
        program_rel="",
        controller_memory_rel="",
        results_rel="",
        worker_iteration=0,
        now="",
    )
)
# `.<name>.<host>.<pid>.<hex>.tmp`, as _atomic names its temps.
_TEMP_NAME: Final = re.compile(r"\.(?P<stem>.+)\.(?P<pid>\d+)\.(?P<hex>[0-9a-f]+)\.tmp")
_HEADER: Final = RESULTS_HEADER.rstrip("\n")
_ROW_FIX: Final = (
    "repair it into 6 tab-separated fields (iteration, commit, status, "
    "primary_metric_name, primary_metric_value, description) or delete the line"
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a campaign: where, what, and how to fix it."""

    path: Path
    line: int
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}; {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        """The problem as JSON-ready fields."""
        return {"path": str(self.path), "line": self.line, "problem": self.what, "fix": self.fix}


def check_campaign(root: Path) -> list[Problem]:
    """Every problem of the campaign at ``root`` (see :func:`locate_campaign`).

    Paths in the problems are ``root`` joined with the file's place in the
    campaign, so they read as the user typed ``root``.
    """
    project_root = locate_campaign(root)
    base = optimize_root(project_root)
    problems: list[Problem] = []
    problems += _check_json(base / STATE_FILENAME)
    problems += _check_run_lock(project_root)
    autogen = base / AUTOGEN_DIRNAME
    if autogen.is_dir():
        for path in sorted(autogen.glob("*.json")):
            problems += _check_json(path)
    problems += _check_results(base / RESULTS_FILENAME)
    problems += _check_memory(base / MEMORY_FILENAME, MEMORY_HEADINGS, metadata=True)
    problems += _check_memory(base / WORKER_MEMORY_FILENAME, WORKER_MEMORY_HEADINGS)
    problems += _check_litter(base)
    return problems


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None


def _check_json(path: Path) -> list[Problem]:
    if path.name == RUN_LOCK_FILENAME:
        return []  # judged with its holder by _check_run_lock
    try:
        read_json_file(path)
    except (FileNotFoundError, IsADirectoryError):
        return []
    except StateCorruptError as error:
        return [
            Problem(
                path,
                1,
                error.reason,
                "restore it from a backup or delete it; the library moves it aside "
                f"to {path.name}{QUARANTINE_MARKER}<time> when it next loads it",
            )
        ]
    return []


def _check_run_lock(project_root: Path) -> list[Problem]:
    status = run_lock_status(project_root)
    if status.state != "inactive_stale" or status.path is None:
        return []
    return [
        Problem(
            status.path,
            1,
            f"stale run lock ({status.reason})",
            f"clear it with `fermilink-state unlock {project_root}` "
            "(the next campaign start also takes it over)",
        )
    ]


def _check_results(path: Path) -> list[Problem]:
    # A block at a time: a million-row ledger is checked in bounded memory,
    # and a block of usual rows in one regular-expression pass.
    problems: list[Problem] = []

    def undecodable(line: int, byte: int) -> None:
        problems.append(
            Problem(
                path,
                line,
                f"not UTF-8 (byte {byte:#04x})",
                "re-encode the file as UTF-8 or delete the damaged bytes",
            )
        )

    last_line = 0
    try:
        for first, text, plain in ledger_texts(path, strict=False, undecodable=undecodable):
            last_line = first + text.count("\n")
            if first == 1:
                line = text.removeprefix("\ufeff")
                if line != _HEADER:
                    problems.append(_first_line_problem(path, line))
            elif not (plain and usual_rows(text)):
                problems += _line_problems(path, first, text)
    except (FileNotFoundError, IsADirectoryError):
        return []  # missing: the next append writes the header
    if last_line and not _ends_with_newline(path):
        problems.append(
            Problem(
                path,
                last_line,
                "the last row has no line ending: a writer was interrupted mid-row",
                "check the row is complete, then end it with a newline or delete it",
            )
        )
    return problems


def _line_problems(path: Path, first: int, text: str) -> list[Problem]:
    problems: list[Problem] = []
    for number, raw in enumerate(text.split("\n"), start=first):
        line = raw.removesuffix("\r")
        if not line:
            continue
        if line == _HEADER:
            problems.append(Problem(path, number, "a second header line", "delete this line"))
            continue
        try:
            parse_result_line(line)
        except ValueError as error:
            problems.append(Problem(path, number, f"malformed row: {error}", _ROW_FIX))
    return problems


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return True
        handle.seek(size - 1)
        return handle.read(1) == b"\n"


def _first_line_problem(path: Path, line: str) -> Problem:
    try:
        parse_result_line(line)
    except ValueError:
        return Problem(
            path,
            1,
            f"the header is {line!r}, expected {_HEADER!r}",
            "replace line 1 with the expected header",
        )
    return Problem(path, 1, "the header line is missing", f"insert {_HEADER!r} as line 1")


def _line_numbers(text: str) -> Iterator[tuple[str, int]]:
    """``(heading, line number)`` of every section heading of ``text``."""
    line = 1
    for section in split_sections(text, ALL_LEVELS):
        if section.heading:
            yield section.heading, line
        line += section.text.count("\n")


def _check_memory(
    path: Path, headings: tuple[str, ...], *, metadata: bool = False
) -> list[Problem]:
    data = _read(path)
    if data is None:
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return [
            Problem(
                path,
                line,
                f"not UTF-8 (byte {data[error.start]:#04x}); memory edits refuse to change it",
                "re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
            )
        ]
    found: dict[str, list[int]] = {}
    for heading, line in _line_numbers(text):
        found.setdefault(heading, []).append(line)
    problems: list[Problem] = []
    for heading in headings:
        lines = found.get(heading)
        if lines is None:
            problems.append(_missing_heading(path, text, heading))
        elif len(lines) > 1:
            where = ", ".join(str(line) for line in lines[1:])
            problems.append(
                Problem(
                    path,
                    lines[1],
                    f"heading {heading!r} appears {len(lines)} times (lines {lines[0]}, "
                    f"{where}); edits change only the first",
                    "merge the copies into the first one",
                )
            )
    if metadata and not any(line.startswith(LAST_UPDATED_PREFIX) for line in text.splitlines()):
        problems.append(
            Problem(
                path,
                1,
                f"no {LAST_UPDATED_PREFIX.strip()!r} metadata line",
                f"add '{LAST_UPDATED_PREFIX}<UTC time>' under the title",
            )
        )
    return problems


def _missing_heading(path: Path, text: str, heading: str) -> Problem:
    fix = f"add the line {heading!r} back where the template has it"
    offset = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if line.removesuffix("\r") == heading:
            fence = next((start for start, end in fence_spans(text) if start <= offset < end), None)
            if fence is not None:
                opened = text.count("\n", 0, fence) + 1
                return Problem(
                    path,
                    number,
                    f"heading {heading!r} is inside the code block opened at line {opened} "
                    "(an unclosed ``` or ~~~ fence?)",
                    "close that code block",
                )
        offset += len(line) + 1
    return Problem(path, 1, f"missing the template heading {heading!r}", fix)


def _walk(base: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(base):
        here = Path(folder)
        # User-supplied goal inputs are not the campaign's files.
        if here == base and INPUTS_DIRNAME in dirs:
            dirs.remove(INPUTS_DIRNAME)
        dirs.sort()
        for name in sorted(files):
            yield here / name


def _check_litter(base: Path) -> list[Problem]:
    problems: list[Problem] = []
    for path in _walk(base):
        name = path.name
        if QUARANTINE_MARKER in name:
            original = name.partition(QUARANTINE_MARKER)[0]
            problems.append(
                Problem(
                    path,
                    1,
                    f"a corrupt copy of {original} that was moved aside",
                    f"look inside, restore what you need into {original}, then delete it",
                )
            )
        elif name.endswith(".tmp"):
            problem = _temp_problem(path)
            if problem is not None:
                problems.append(problem)
    return problems


def _temp_problem(path: Path) -> Problem | None:
    match = _TEMP_NAME.fullmatch(path.name)
    if match is None:
        # The reference wrote `<name>.tmp` and renamed it: one left over means
        # its writer died between the two.
        return Problem(
            path,
            1,
            "a temporary file left by an interrupted writer",
            "delete it (it was never part of the campaign)",
        )
    pid = int(match["pid"])
    for_this_host = _this_host_target(match["stem"])
    if for_this_host is not None:
        if pid_is_running(pid):
            return None  # a write in progress
        return Problem(
            path,
            1,
            f"a temporary file of {for_this_host} left by writer pid {pid}, which is gone",
            "delete it (the next write of that file also removes it)",
        )
    return Problem(
        path,
        1,
        f"a temporary file left by writer pid {pid} on another host",
        "delete it once no campaign process runs on that host",
    )


def _this_host_target(stem: str) -> str | None:
    """The file a temp belongs to when this host wrote it, else ``None``.

    ``stem`` is the temp name between the leading dot and ``.<pid>``, i.e.
    ``<target>.<host>``; the host part is matched as _atomic spells it.
    """
    host = temp_prefix(Path("x")).removeprefix(".x.")  # `<host>.`
    if not (stem + ".").endswith("." + host):
        return None
    return stem[: -len(host)]
