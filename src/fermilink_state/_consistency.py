"""The consistency of a whole campaign: every file on its own, then the files against each other.

One engine for ``fermilink-state check`` and for the test kit's
``assert_campaign_consistent``. It only reads: no file is created (not even a
lock file), changed, moved or removed, so it is safe on a live campaign.

Each finding is a :class:`CampaignProblem`. Some are *crash debris*: what an
interrupted writer leaves and the next write (or the next campaign start)
repairs by itself, such as a temp of a writer that is gone, a torn or
NUL-padded last ledger row, or a run lock whose holder died. A campaign with
only debris is consistent: a correct controller killed at any instant, or cut
off by a power failure, leaves nothing worse. Everything else is an
inconsistency, e.g. a malformed row in the middle of the ledger, or a
state.json that claims an iteration or an incumbent the ledger lacks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

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
from fermilink_state._results import (
    ACCEPTED_STATUSES,
    RESULTS_HEADER,
    line_blocks,
    parse_result_line,
    torn_tail,
    usual_rows,
)
from fermilink_state._runlock import run_lock_status

__all__ = ["CampaignProblem", "campaign_problems"]


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
_HEADER: Final = RESULTS_HEADER.rstrip("\n").encode()
_BOM: Final = "\ufeff".encode()
_ROW_FIX: Final = (
    "repair it into 6 tab-separated fields (iteration, commit, status, "
    "primary_metric_name, primary_metric_value, description) or delete the line"
)
_ORDER_FIX: Final = (
    "a controller must append the ledger row before it writes state.json "
    "(record_iteration() keeps that order)"
)
_DEBRIS_LABEL: Final = "crash debris: "
_NO_HEADER: Final = "the header line is missing"
_DELETE: Final = "delete this line"


@dataclass(frozen=True, slots=True)
class CampaignProblem:
    """One thing found in a campaign: where, what, how to fix it, and whether it is debris.

    ``debris`` is true for what an interrupted writer leaves and the next
    write or campaign start repairs by itself (a dead writer's temp, a torn
    or NUL-padded last ledger row, a stale run lock): expected after a crash,
    not an inconsistency.
    """

    path: Path
    line: int
    what: str
    fix: str
    debris: bool = field(default=False, kw_only=True)

    def __str__(self) -> str:
        label = _DEBRIS_LABEL if self.debris else ""
        return f"{self.path}:{self.line}: {label}{self.what}; {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        """The problem as JSON-ready fields."""
        return {
            "path": str(self.path),
            "line": self.line,
            "problem": self.what,
            "fix": self.fix,
            "debris": self.debris,
        }


def campaign_problems(project_root: Path) -> list[CampaignProblem]:
    """Every problem of the campaign of ``project_root``, debris included, in a stable order.

    State and run lock first, then the ledger and what state.json claims of
    it, the memory files, and last the litter (temps, quarantined copies).
    """
    project_root = Path(project_root)
    base = optimize_root(project_root)
    problems: list[CampaignProblem] = []
    state_file = base / STATE_FILENAME
    state = _check_json(state_file, problems)
    problems += _check_run_lock(project_root)
    autogen = base / AUTOGEN_DIRNAME
    if autogen.is_dir():
        for path in sorted(autogen.glob("*.json")):
            _check_json(path, problems)
    claims = _StateClaims.of(state_file, state)
    ledger = _check_results(base / RESULTS_FILENAME, claims, problems)
    problems += claims.unmet(ledger)
    problems += _check_memory(base / MEMORY_FILENAME, MEMORY_HEADINGS, metadata=True)
    problems += _check_memory(base / WORKER_MEMORY_FILENAME, WORKER_MEMORY_HEADINGS)
    problems += _check_litter(base)
    return problems


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None


def _check_json(path: Path, problems: list[CampaignProblem]) -> dict[str, Any] | None:
    """The JSON object at ``path``, or ``None`` (missing, or a problem added)."""
    if path.name == RUN_LOCK_FILENAME:
        return None  # judged with its holder by _check_run_lock
    try:
        return read_json_file(path)
    except (FileNotFoundError, IsADirectoryError):
        return None
    except StateCorruptError as error:
        problems.append(
            CampaignProblem(
                path,
                1,
                error.reason,
                "restore it from a backup or delete it; the library moves it aside "
                f"to {path.name}{QUARANTINE_MARKER}<time> when it next loads it",
            )
        )
    return None


def _check_run_lock(project_root: Path) -> list[CampaignProblem]:
    status = run_lock_status(project_root)
    if status.state != "inactive_stale" or status.path is None:
        return []
    # A controller that dies holding the run lock leaves it: debris, since
    # the next campaign start takes a stale lock over.
    return [
        CampaignProblem(
            status.path,
            1,
            f"stale run lock ({status.reason})",
            f"clear it with `fermilink-state unlock {project_root}` "
            "(the next campaign start also takes it over)",
            debris=True,
        )
    ]


@dataclass(slots=True)
class _LedgerFacts:
    """What the ledger holds of the state's claims, gathered in one pass."""

    last_iteration: int | None = None
    has_claimed_iteration: bool = False
    incumbent_statuses: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _StateClaims:
    """What state.json says the ledger holds: its iteration and its incumbent."""

    path: Path
    text: str = ""
    iteration: int | None = None
    incumbent: str | None = None

    @classmethod
    def of(cls, path: Path, state: dict[str, Any] | None) -> _StateClaims:
        if state is None:
            return cls(path)
        iteration = state.get("iteration")
        incumbent = state.get("incumbent_commit")
        return cls(
            path,
            # Read again only for line numbers; the state is small.
            (_read(path) or b"").decode("utf-8", errors="replace"),
            # Iteration 0 is the initial state's, before and after the baseline.
            iteration if type(iteration) is int and iteration > 0 else None,
            incumbent if isinstance(incumbent, str) and incumbent else None,
        )

    def note(self, facts: _LedgerFacts, iteration: int, commit: str, status: str) -> None:
        facts.last_iteration = iteration
        if iteration == self.iteration:
            facts.has_claimed_iteration = True
        if commit == self.incumbent:
            facts.incumbent_statuses.add(status)

    def note_block(self, facts: _LedgerFacts, text: str) -> None:
        """:meth:`note` for every row of ``text``, a block of usual rows (no object per row)."""
        last = text[text.rfind("\n") + 1 :]
        facts.last_iteration = int(last[: last.index("\t")])
        if self.iteration is not None and not facts.has_claimed_iteration:
            # Usual rows spell the iteration -?[0-9]+; the claimed one is > 0.
            claimed = re.compile(rf"^0*{self.iteration}\t", re.MULTILINE)
            facts.has_claimed_iteration = claimed.search(text) is not None
        if self.incumbent is not None:
            rows = re.compile(
                rf"^-?[0-9]+\t{re.escape(self.incumbent)}\t([^\t\n]*)\t", re.MULTILINE
            )
            facts.incumbent_statuses.update(rows.findall(text))

    def _line(self, key: str) -> int:
        # dump_json writes each top-level key on its own line, indented by two.
        index = self.text.find(f'\n  "{key}":')
        return self.text.count("\n", 0, index + 1) + 1 if index >= 0 else 1

    def unmet(self, facts: _LedgerFacts) -> list[CampaignProblem]:
        """A problem for each claim the ledger does not back."""
        problems: list[CampaignProblem] = []
        ledger = RESULTS_FILENAME
        if self.iteration is not None and not facts.has_claimed_iteration:
            last = (
                "no rows" if facts.last_iteration is None else f"last row: {facts.last_iteration}"
            )
            problems.append(
                CampaignProblem(
                    self.path,
                    self._line("iteration"),
                    f"claims iteration {self.iteration}, which the ledger {ledger} lacks ({last})",
                    f"{_ORDER_FIX}; append the missing row or set the iteration back",
                )
            )
        accepted = facts.incumbent_statuses & set(ACCEPTED_STATUSES)
        if self.incumbent is not None and not accepted:
            found = (
                f"the ledger has it only as {', '.join(sorted(facts.incumbent_statuses))}"
                if facts.incumbent_statuses
                else f"the ledger {ledger} has no row of it"
            )
            problems.append(
                CampaignProblem(
                    self.path,
                    self._line("incumbent_commit"),
                    f"names incumbent commit {self.incumbent!r}, but {found}",
                    f"{_ORDER_FIX}; append its baseline or accepted row, or name the "
                    "incumbent the ledger holds",
                )
            )
        return problems


def _check_results(
    path: Path, claims: _StateClaims, problems: list[CampaignProblem]
) -> _LedgerFacts:
    """Add the ledger's problems; return what it holds of the state's claims."""
    scan = _LedgerScan(path, claims, problems)
    try:
        with open(path, "rb") as handle:
            scan.run_blocks(handle)
    except (FileNotFoundError, IsADirectoryError):
        pass  # missing: the next append writes the header
    return scan.facts


@dataclass(slots=True)
class _LedgerScan:
    """One pass over the ledger, line by line: memory stays bounded however long it is."""

    path: Path
    claims: _StateClaims
    problems: list[CampaignProblem]
    facts: _LedgerFacts = field(default_factory=_LedgerFacts)

    def run_blocks(self, handle: BinaryIO) -> None:
        """Scan the ledger a block of whole lines at a time (see :func:`line_blocks`).

        A block of usual rows (see :func:`usual_rows`) is checked by one
        regular-expression pass and searched for the state's claims without a
        row object per line: a million-row ledger costs about one csv pass.
        Anything else (line 1, CRLF, bad UTF-8, a malformed or torn line) is
        scanned line by line by :meth:`run`.
        """
        number = 1
        for data, _whole in line_blocks(handle):
            number = self._block(number, data)

    def _block(self, first: int, data: bytes) -> int:
        """Scan the lines of ``data``, the first being line ``first``; the next line's number."""
        if first > 1 and data.endswith(b"\n") and b"\r" not in data:
            try:
                text = data[:-1].decode("utf-8")
            except UnicodeDecodeError:
                text = ""
            if text and usual_rows(text):
                self.claims.note_block(self.facts, text)
                return first + text.count("\n") + 1
        lines = data.split(b"\n")
        whole = [line + b"\n" for line in lines[:-1]]
        self.run([*whole, lines[-1]] if lines[-1] else whole, start=first)
        return first + len(whole)

    def run(self, lines: Iterable[bytes], *, start: int = 1) -> None:
        path, problems = self.path, self.problems
        for number, raw in enumerate(lines, start=start):
            terminated = raw.endswith(b"\n")
            body = (raw[:-1] if terminated else raw).removesuffix(b"\r")
            if not terminated:
                self._last_line(number, raw)
                break
            if number == 1:
                body = body.removeprefix(_BOM)
                if body == _HEADER:
                    continue
                problem = _header_problem(path, body)
                problems.append(problem)
                if problem.what != _NO_HEADER:
                    continue  # a wrong header, not a row
            if not body:
                continue
            if body == _HEADER:
                problems.append(CampaignProblem(path, number, "a second header line", _DELETE))
                continue
            self._row(number, body)

    def _last_line(self, number: int, raw: bytes) -> None:
        # The append that comes next decides what this line is (torn_tail):
        # a whole row that only lacks its line break is kept, anything else
        # is cut off (and saved aside unless it is all NUL).
        if torn_tail(raw) is None:
            self.problems.append(
                CampaignProblem(
                    self.path,
                    number,
                    "the last row has no line ending: a writer was interrupted",
                    "the next append ends it; to repair it now, add a newline",
                    debris=True,
                )
            )
            self._row(number, raw.removesuffix(b"\r"))
        else:
            self.problems.append(_torn_tail(self.path, number, raw))

    def _row(self, number: int, body: bytes) -> None:
        try:
            line = body.decode("utf-8")
        except UnicodeDecodeError as error:
            self.problems.append(
                CampaignProblem(
                    self.path,
                    number,
                    f"not UTF-8 (byte {body[error.start]:#04x})",
                    "re-encode the file as UTF-8 or delete the damaged bytes",
                )
            )
            line = body.decode("utf-8", errors="replace")
        try:
            row = parse_result_line(line)
        except ValueError as error:
            self.problems.append(
                CampaignProblem(self.path, number, f"malformed row: {error}", _ROW_FIX)
            )
            return
        self.claims.note(self.facts, row.iteration, row.commit, row.status)


def _torn_tail(path: Path, number: int, tail: bytes) -> CampaignProblem:
    if tail.strip(b"\0"):
        what = "the last line has no line ending and is no row: a writer was interrupted mid-row"
        fix = (
            f"the next append moves it aside to {path.name}{QUARANTINE_MARKER}<time>; "
            "to repair it now, complete the row or delete the partial line"
        )
    else:
        what = "NUL bytes after the last row (a power cut while the ledger grew)"
        fix = "the next append cuts them off; to repair it now, delete them"
    return CampaignProblem(path, number, what, fix, debris=True)


def _header_problem(path: Path, line: bytes) -> CampaignProblem:
    text = line.decode("utf-8", errors="replace")
    try:
        parse_result_line(text)
    except ValueError:
        return CampaignProblem(
            path,
            1,
            f"the header is {text!r}, expected {_HEADER.decode()!r}",
            "replace line 1 with the expected header",
        )
    return CampaignProblem(path, 1, _NO_HEADER, f"insert {_HEADER.decode()!r} as line 1")


def _line_numbers(text: str) -> Iterator[tuple[str, int]]:
    """``(heading, line number)`` of every section heading of ``text``."""
    line = 1
    for section in split_sections(text, ALL_LEVELS):
        if section.heading:
            yield section.heading, line
        line += section.text.count("\n")


def _check_memory(
    path: Path, headings: tuple[str, ...], *, metadata: bool = False
) -> list[CampaignProblem]:
    data = _read(path)
    if data is None:
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return [
            CampaignProblem(
                path,
                line,
                f"not UTF-8 (byte {data[error.start]:#04x}); memory edits refuse to change it",
                "re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
            )
        ]
    found: dict[str, list[int]] = {}
    for heading, line in _line_numbers(text):
        found.setdefault(heading, []).append(line)
    problems: list[CampaignProblem] = []
    for heading in headings:
        lines = found.get(heading)
        if lines is None:
            problems.append(_missing_heading(path, text, heading))
        elif len(lines) > 1:
            where = ", ".join(str(line) for line in lines[1:])
            problems.append(
                CampaignProblem(
                    path,
                    lines[1],
                    f"heading {heading!r} appears {len(lines)} times (lines {lines[0]}, "
                    f"{where}); edits change only the first",
                    "merge the copies into the first one",
                )
            )
    if metadata and not any(line.startswith(LAST_UPDATED_PREFIX) for line in text.splitlines()):
        problems.append(
            CampaignProblem(
                path,
                1,
                f"no {LAST_UPDATED_PREFIX.strip()!r} metadata line",
                f"add '{LAST_UPDATED_PREFIX}<UTC time>' under the title",
            )
        )
    return problems


def _missing_heading(path: Path, text: str, heading: str) -> CampaignProblem:
    fix = f"add the line {heading!r} back where the template has it"
    offset = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if line.removesuffix("\r") == heading:
            fence = next((start for start, end in fence_spans(text) if start <= offset < end), None)
            if fence is not None:
                opened = text.count("\n", 0, fence) + 1
                return CampaignProblem(
                    path,
                    number,
                    f"heading {heading!r} is inside the code block opened at line {opened} "
                    "(an unclosed ``` or ~~~ fence?)",
                    "close that code block",
                )
        offset += len(line) + 1
    return CampaignProblem(path, 1, f"missing the template heading {heading!r}", fix)


def _walk(base: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(base):
        here = Path(folder)
        # User-supplied goal inputs are not the campaign's files.
        if here == base and INPUTS_DIRNAME in dirs:
            dirs.remove(INPUTS_DIRNAME)
        dirs.sort()
        for name in sorted(files):
            yield here / name


def _check_litter(base: Path) -> list[CampaignProblem]:
    problems: list[CampaignProblem] = []
    for path in _walk(base):
        name = path.name
        if QUARANTINE_MARKER in name:
            original = name.partition(QUARANTINE_MARKER)[0]
            if original == RESULTS_FILENAME and path.parent == base:
                # Saved by the append that repaired the ledger's torn end.
                problems.append(
                    CampaignProblem(
                        path,
                        1,
                        f"the torn end of {original}, moved aside by the append that repaired it",
                        "look inside if you wish (it was no whole row), then delete it",
                        debris=True,
                    )
                )
                continue
            problems.append(
                CampaignProblem(
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


def _temp_problem(path: Path) -> CampaignProblem | None:
    match = _TEMP_NAME.fullmatch(path.name)
    if match is None:
        # The reference wrote `<name>.tmp` and renamed it: one left over means
        # its writer died between the two (its next write overwrites it).
        return CampaignProblem(
            path,
            1,
            "a temporary file left by an interrupted writer",
            "delete it (it was never part of the campaign)",
            debris=True,
        )
    pid = int(match["pid"])
    for_this_host = _this_host_target(match["stem"])
    if for_this_host is not None:
        if pid_is_running(pid):
            return None  # a write in progress
        return CampaignProblem(
            path,
            1,
            f"a temporary file of {for_this_host} left by writer pid {pid}, which is gone",
            "delete it (the next write of that file also removes it)",
            debris=True,
        )
    return CampaignProblem(
        path,
        1,
        f"a temporary file left by writer pid {pid} on another host",
        "delete it once no campaign process runs on that host (its next write there removes it)",
        debris=True,
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


# Reprs and documentation name the public home of the type.
CampaignProblem.__module__ = "fermilink_state.testing"
