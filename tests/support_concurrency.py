"""Writers, racers and loss counters shared by the concurrency and crash tests.

Every worker here is a top-level function so that ``spawn`` / ``forkserver``
children can import it (``tests`` is on ``sys.path`` through pyproject's
``pythonpath``, and spawn hands the parent's ``sys.path`` to the child).

A writer identifies everything it writes by ``w<writer>-i<iteration>``, so the
counters can say exactly which record was lost, duplicated or torn, instead of
only comparing totals.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.context import SpawnContext
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any, Final, Literal

import fermilink_state as fs
from fermilink_state._memory import memory_template

# spawn: a child that starts from a clean interpreter, as a separate writer
# process of a real campaign would (fork would share the parent's lock cache).
MP: Final[SpawnContext] = multiprocessing.get_context("spawn")

SEED: Final = {
    "package_id": "pkg",
    "benchmark_id": "bench",
    "benchmark_rel": "bench/benchmark.yaml",
    "optimize_branch": "optimize/stress",
}
HYPOTHESES: Final = "### Open hypotheses"
PROGRESS: Final = "### Progress log"
ACCEPTED: Final = "### Accepted experiments"
REJECTED: Final = "### Rejected patterns"
WORKER_TIMEOUT: Final = 240.0  # seconds a barrier or a join may take before the run is broken
# Template lines that an event legitimately replaces or removes.
_MUTABLE_TEMPLATE_LINES: Final = frozenset(
    {"- Campaign initialized.", "- none yet", "- commit: pending", "- primary_metric: pending"}
)
_KEEP_PREFIX_ONLY: Final = ("- started_at_utc: ", "- last_updated_utc: ")
_EVENT_KEY: Final = re.compile(r"\((w\d+-i\d+), ")
_TEMP_NAME: Final = re.compile(r"\.(\d+)\.[0-9a-f]+\.tmp$")
# The ledger's header as the reference writes it (spelled out, not imported).
LEDGER_HEADER: Final = (
    b"iteration\tcommit\tstatus\tprimary_metric_name\tprimary_metric_value\tdescription\n"
)

Impl = Literal["ours", "reference"]


@dataclass(frozen=True)
class Campaign:
    """The files of one campaign under a project root."""

    root: Path

    @property
    def optimize_root(self) -> Path:
        """``.fermilink-optimize``."""
        return fs.optimize_root(self.root)

    @property
    def results(self) -> Path:
        """``results.tsv``."""
        return fs.results_path(self.root)

    @property
    def memory(self) -> Path:
        """``memory.md``."""
        return fs.memory_path(self.root)

    @property
    def state(self) -> Path:
        """``state.json``."""
        return fs.state_path(self.root)


def seed_campaign(root: Path) -> Campaign:
    """Create a campaign: folders, memory from the template, ledger header, state."""
    campaign = Campaign(root)
    fs.ensure_optimize_root(root)
    fs.ensure_memory_file(campaign.memory, **SEED)
    fs.ensure_results_file(campaign.results)
    fs.write_state(campaign.state, state_record(-1, 0))
    return campaign


def key(writer: int, iteration: int) -> str:
    """The identifier a writer stamps on everything of one iteration."""
    return f"w{writer}-i{iteration}"


def status_for(iteration: int) -> str:
    """Even iterations are accepted, odd ones rejected: both sections get events."""
    return "accepted" if iteration % 2 == 0 else "rejected"


def state_record(writer: int, iteration: int, pad: int = 64) -> dict[str, Any]:
    """A state payload that proves its own integrity (a mix fails the digest)."""
    body = {"writer": writer, "iteration": iteration, "blob": "x" * pad}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {**body, "digest": digest}


def state_is_whole(payload: dict[str, Any]) -> bool:
    """Whether ``payload`` is exactly one record that :func:`state_record` made."""
    body = {name: payload.get(name) for name in ("writer", "iteration", "blob")}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return set(payload) == {"writer", "iteration", "blob", "digest"} and (
        payload["digest"] == digest
    )


def hypothesis_line(writer: int, iteration: int) -> str:
    """The line an ``edit_memory`` edit appends to the open hypotheses."""
    return f"- hypothesis {key(writer, iteration)}"


def write_one(campaign: Campaign, writer: int, iteration: int, impl: Impl = "ours") -> None:
    """One iteration of a campaign writer: a row, an event, the state, a memory edit."""
    api: Any = fs
    if impl == "reference":
        from fermilink.optimize import state as reference

        api = reference
    name = key(writer, iteration)
    api.append_result(
        campaign.results,
        iteration=iteration,
        commit=name,
        status=status_for(iteration),
        primary_metric_name="runtime",
        primary_metric_value=1.0 + writer + iteration / 1000,
        description=f"writer {writer} iteration {iteration}",
    )
    api.record_campaign_event(
        campaign.memory,
        commit=name,
        primary_metric_name="runtime",
        primary_metric_value=1.0 + writer + iteration / 1000,
        status=status_for(iteration),
        description=f"writer {writer} iteration {iteration}",
    )
    api.write_state(campaign.state, state_record(writer, iteration))
    if impl == "reference":
        # What FermiLink's controller does with the reference: read, edit, write.
        text = campaign.memory.read_text(encoding="utf-8")
        text = api._append_section_line(text, HYPOTHESES, hypothesis_line(writer, iteration))
        campaign.memory.write_text(text, encoding="utf-8")
    else:
        with fs.edit_memory(campaign.memory) as document:
            document.append(HYPOTHESES, hypothesis_line(writer, iteration))


def _report_failure(errors_dir: str, name: str) -> None:
    Path(errors_dir, f"{name}.txt").write_text(traceback.format_exc(), encoding="utf-8")


def mixed_writer(
    *, root: str, writer: int, iterations: int, start: Barrier, errors_dir: str, impl: Impl
) -> None:
    """A stress writer: waits for the others, then runs ``iterations`` of :func:`write_one`.

    A failure is written to ``errors_dir/<writer>.txt`` and ends the process
    with exit code 1, so the parent counts it as a crashed writer.
    """
    campaign = Campaign(Path(root))
    try:
        start.wait(timeout=WORKER_TIMEOUT)
        for iteration in range(iterations):
            write_one(campaign, writer, iteration, impl)
            # A reader among the writers: state.json must always parse whole.
            if impl == "ours" and not state_is_whole(fs.read_json_file(campaign.state)):
                raise AssertionError(f"{campaign.state} is not one whole record")
    except BaseException:
        _report_failure(errors_dir, f"writer-{writer}")
        raise SystemExit(1) from None


def run_processes(target: Callable[..., None], arguments: Sequence[dict[str, Any]]) -> list[int]:
    """Start one spawn process per keyword-argument dict, join all, return exit codes.

    A process still running after :data:`WORKER_TIMEOUT` is killed and counts
    as crashed (exit code negative), so a deadlock fails the run.
    """
    processes = [MP.Process(target=target, kwargs=kwargs) for kwargs in arguments]
    for process in processes:
        process.start()
    codes: list[int] = []
    for process in processes:
        process.join(WORKER_TIMEOUT)
        if process.exitcode is None:
            process.kill()
            process.join()
        codes.append(-9 if process.exitcode is None else process.exitcode)
    return codes


def error_texts(errors_dir: Path) -> str:
    """Every traceback the workers left, for an assertion message."""
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(errors_dir.glob("*.txt")))


@dataclass
class LossReport:
    """What a finished run of writers left on disk, counted record by record.

    Every count must be 0 for a run that lost nothing.
    """

    expected_records: int
    lost_rows: int = 0
    duplicate_rows: int = 0
    torn_lines: int = 0
    lost_progress_events: int = 0
    lost_outcome_events: int = 0
    lost_memory_edits: int = 0
    lost_template_lines: int = 0
    crashed_writers: int = 0
    temp_files: int = 0
    state_errors: int = 0
    details: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Every loss count by name (``expected_records`` and details left out)."""
        values = asdict(self)
        return {
            name: value
            for name, value in values.items()
            if name not in {"expected_records", "details"}
        }

    @property
    def total(self) -> int:
        """The sum of every loss count."""
        return sum(self.counts().values())

    def explain(self) -> str:
        """The counts and the first few details, for an assertion message."""
        return json.dumps(self.counts(), indent=1) + "\n" + "\n".join(self.details[:20])


def _count_exactly_once(
    report: LossReport, found: Counter[str], expected: Sequence[str], what: str
) -> tuple[int, int]:
    lost = duplicated = 0
    for name in expected:
        seen = found.get(name, 0)
        if seen == 0:
            lost += 1
            report.details.append(f"{what}: {name} missing")
        elif seen > 1:
            duplicated += 1
            report.details.append(f"{what}: {name} appears {seen} times")
    return lost, duplicated


def _count_rows(report: LossReport, campaign: Campaign, expected: Sequence[str]) -> None:
    data = campaign.results.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    else:
        report.torn_lines += 1
        report.details.append("results.tsv: does not end with a newline")
    if not lines or lines[0] + b"\n" != LEDGER_HEADER:
        report.torn_lines += 1
        report.details.append("results.tsv: header missing or damaged")
    found: Counter[str] = Counter()
    for number, raw in enumerate(lines[1:], start=2):
        # Split by hand: a parser bug shared with the writer must not hide a loss.
        cells = raw.split(b"\t")
        if len(cells) != 6 or not cells[0].isdigit() or not _is_utf8(raw):
            report.torn_lines += 1
            report.details.append(f"results.tsv:{number}: torn line {raw[:80]!r}")
            continue
        found[cells[1].decode("utf-8")] += 1
    lost, duplicated = _count_exactly_once(report, found, expected, "row")
    report.lost_rows += lost
    report.duplicate_rows += duplicated


def _count_memory(
    report: LossReport, campaign: Campaign, writers: int, iterations: int, memory_edits: bool
) -> None:
    text = campaign.memory.read_bytes().decode("utf-8", errors="replace")

    def keys_in(heading: str) -> Counter[str]:
        lines = section_lines(text, heading)
        return Counter(match.group(1) for line in lines if (match := _EVENT_KEY.search(line)))

    every = [key(w, i) for w in range(writers) for i in range(iterations)]
    lost, duplicated = _count_exactly_once(report, keys_in(PROGRESS), every, "progress event")
    report.lost_progress_events += lost + duplicated
    outcomes = keys_in(ACCEPTED) + keys_in(REJECTED)
    lost, duplicated = _count_exactly_once(report, outcomes, every, "outcome event")
    report.lost_outcome_events += lost + duplicated
    misfiled = [
        name for name in keys_in(ACCEPTED) if status_for(int(name.partition("-i")[2])) != "accepted"
    ]
    report.lost_outcome_events += len(misfiled)
    report.details.extend(f"outcome event: {name} filed as accepted" for name in misfiled)
    if memory_edits:
        found = Counter(section_lines(text, HYPOTHESES))
        expected = [hypothesis_line(w, i) for w in range(writers) for i in range(iterations)]
        lost, duplicated = _count_exactly_once(report, found, expected, "memory edit")
        report.lost_memory_edits += lost + duplicated
    report.lost_template_lines += len(missing_template_lines(text))
    report.details.extend(f"template line missing: {line}" for line in missing_template_lines(text))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def section_lines(text: str, heading: str) -> list[str]:
    """The lines under every ``heading`` line, each up to the next line starting ``#``.

    Plain string operations, independent of the library's section parser (the
    campaigns counted here hold no fenced code). Every section with that
    heading counts, so a heading that an edit duplicated loses nothing.
    """
    found: list[str] = []
    inside = False
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("#"):
            inside = line == heading
        elif inside:
            found.append(line)
    return found


def missing_template_lines(text: str) -> list[str]:
    """Lines of the seeded memory template that ``text`` no longer has.

    Placeholders and the pending latest-commit lines are left out (events
    replace them); the two time stamps are checked by prefix.
    """
    template = memory_template(**SEED, started="T")
    present = set(text.splitlines())
    missing: list[str] = []
    for line in template.splitlines():
        if not line or line in _MUTABLE_TEMPLATE_LINES:
            continue
        prefix = next((p for p in _KEEP_PREFIX_ONLY if line.startswith(p)), None)
        if prefix is not None:
            if not any(candidate.startswith(prefix) for candidate in present):
                missing.append(line)
        elif line not in present:
            missing.append(line)
    return missing


def temp_files(folder: Path) -> list[Path]:
    """Every temp file (``*.tmp``) under ``folder``."""
    return sorted(folder.rglob("*.tmp"))


def count_losses(
    campaign: Campaign,
    *,
    writers: int,
    iterations: int,
    exit_codes: Sequence[int] = (),
    memory_edits: bool = True,
) -> LossReport:
    """Count what ``writers`` x ``iterations`` of :func:`write_one` should have left."""
    expected = [key(w, i) for w in range(writers) for i in range(iterations)]
    report = LossReport(expected_records=len(expected))
    report.crashed_writers = sum(1 for code in exit_codes if code != 0)
    _count_rows(report, campaign, expected)
    _count_memory(report, campaign, writers, iterations, memory_edits)
    report.temp_files = len(temp_files(campaign.optimize_root))
    try:
        payload = json.loads(campaign.state.read_bytes())
        if not isinstance(payload, dict) or not state_is_whole(payload):
            report.state_errors += 1
            report.details.append("state.json: not one whole record")
    except (OSError, ValueError) as error:
        report.state_errors += 1
        report.details.append(f"state.json: {error}")
    return report


def run_mixed_writers(
    root: Path, *, writers: int, iterations: int, impl: Impl = "ours"
) -> tuple[LossReport, str]:
    """Seed a campaign, run the writers all at once, count; also return their errors."""
    campaign = seed_campaign(root)
    errors_dir = root / "errors"
    errors_dir.mkdir()
    start = MP.Barrier(writers)
    codes = run_processes(
        mixed_writer,
        [
            {
                "root": str(root),
                "writer": writer,
                "iterations": iterations,
                "start": start,
                "errors_dir": str(errors_dir),
                "impl": impl,
            }
            for writer in range(writers)
        ],
    )
    report = count_losses(campaign, writers=writers, iterations=iterations, exit_codes=codes)
    return report, error_texts(errors_dir)


# -- crash: a writer killed at a random instant ------------------------------


def crash_writer(root: str, ready: Event, first_iteration: int) -> None:
    """Write in a loop until killed, signalling ``ready`` after one whole iteration.

    Iterations count up from ``first_iteration`` so that every incarnation's
    records are distinct. The state is padded so its write takes a while.
    """
    campaign = Campaign(Path(root))
    iteration = first_iteration
    while True:
        write_one(campaign, 0, iteration)
        fs.write_state(campaign.state, state_record(0, iteration, pad=200_000))
        if iteration == first_iteration:
            ready.set()
        iteration += 1


def temp_pid(path: Path) -> int | None:
    """The writer pid in a temp name ``.<name>.<host>.<pid>.<hex>.tmp``, if it is one."""
    match = _TEMP_NAME.search(path.name)
    return int(match.group(1)) if match and path.name.startswith(".") else None


def temps_of(folder: Path, pid: int) -> list[Path]:
    """The temp files under ``folder`` that the writer ``pid`` left."""
    return [path for path in temp_files(folder) if temp_pid(path) == pid]


# -- the run lock: N processes released together -----------------------------


def run_lock_racer(
    *,
    root: str,
    racer: int,
    rounds: int,
    barrier: Barrier,
    stale_pid: int,
    errors_dir: str,
    wins_dir: str,
    window: float = 0.0,
) -> None:
    """Race the other racers for the run lock, ``rounds`` times.

    Each round: (odd rounds) racer 0 plants a stale lock held by the dead
    ``stale_pid``; everyone waits, then tries to acquire at once; the winner
    checks the lock names it and writes ``wins_dir/round-<n>-<racer>.won``; after
    everyone tried, the winner releases. Exits 1 on any unexpected error.
    A ``window`` > 0 pauses that long between judging the lock and writing
    it (see :func:`widen_run_lock_window`).
    """
    project = Path(root)
    lock_file = fs.run_lock_path(project)
    if window:
        widen_run_lock_window(window)
    try:
        for number in range(rounds):
            if racer == 0 and number % 2 == 1:
                fs.write_run_lock(lock_file, {"pid": stale_pid, "hostname": _hostname()})
            barrier.wait(timeout=WORKER_TIMEOUT)
            won = False
            with contextlib.suppress(fs.RunLockHeld):
                fs.acquire_run_lock(project, {"racer": racer, "round": number})
                won = True
            if won:
                holder = fs.read_json_file(lock_file)
                if holder.get("racer") != racer or holder.get("pid") != os.getpid():
                    raise AssertionError(f"won round {number} but the lock says {holder}")
                Path(wins_dir, f"round-{number}-{racer}.won").touch()
            barrier.wait(timeout=WORKER_TIMEOUT)
            if won and not fs.release_run_lock(project):
                raise AssertionError(f"round {number}: the winner could not release")
            barrier.wait(timeout=WORKER_TIMEOUT)
    except BaseException:
        _report_failure(errors_dir, f"racer-{racer}")
        barrier.abort()
        raise SystemExit(1) from None


def widen_run_lock_window(seconds: float) -> None:
    """Pause ``seconds`` in this process after each judgement of the run lock.

    ``acquire_run_lock`` judges the current holder, then writes itself: two
    steps that only its file lock makes one. Widening the gap between them
    makes a missing lock show every time racers start together, not once in
    many runs.
    """
    from fermilink_state import _runlock

    judge = _runlock._inspect

    def slow_judge(path: Path) -> _runlock.RunLockStatus:
        status = judge(path)
        time.sleep(seconds)
        return status

    _runlock._inspect = slow_judge


def _hostname() -> str:
    import socket

    return socket.gethostname()


def winners_per_round(wins_dir: Path, rounds: int) -> list[int]:
    """How many racers won each round."""
    return [len(list(wins_dir.glob(f"round-{number}-*.won"))) for number in range(rounds)]


# -- holding a lock from another process --------------------------------------

_HOLDER_CODE: Final = """
import sys
from pathlib import Path
from fermilink_state import locked
with locked(Path(sys.argv[1]), timeout=float(sys.argv[2])):
    print("ready", flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def lock_held_elsewhere(path: Path, *, wait: float = 30.0) -> Iterator[subprocess.Popen[str]]:
    """Hold the lock of ``path`` in another process for the ``with`` body.

    The child uses the backend the environment selects now
    (``FERMILINK_STATE_LOCK``), waits at most ``wait`` seconds for the lock,
    and releases it when its stdin closes.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER_CODE, str(path), str(wait)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the lock holder for {path} did not start: {line!r}")
        yield child
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=WORKER_TIMEOUT)
        assert child.stdout is not None
        child.stdout.close()


# -- crash at a chosen instant -------------------------------------------------


def _stall_forever(ready: Event) -> None:
    ready.set()
    while True:
        time.sleep(1)


def stalled_writer(*, root: str, ready: Event, what: str) -> None:
    """Start one write and stop at its most fragile instant until killed.

    ``what``: ``"state"`` stops a state write after the temp file is written,
    before the rename; ``"memory"`` does the same inside an ``edit_memory``
    (so the memory lock is held when the process dies); ``"row"`` stops an
    ``append_result`` after half of the row reached the file.
    """
    campaign = Campaign(Path(root))
    real_write = os.write

    def half_write(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        _stall_forever(ready)
        return 0  # pragma: no cover - never reached

    if what == "row":
        os.write = half_write  # type: ignore[assignment]
        write_one(campaign, 99, 0)

    def stalled_replace(*args: object, **kwargs: object) -> None:
        del args, kwargs
        _stall_forever(ready)

    os.replace = stalled_replace
    if what == "state":
        fs.write_state(campaign.state, state_record(99, 0))
    elif what == "memory":
        with fs.edit_memory(campaign.memory) as document:
            document.append(HYPOTHESES, hypothesis_line(99, 0))
    raise ValueError(f"unknown stall point {what!r}")


def kill_when_ready(target: Callable[..., None], delay: float = 0.0, **kwargs: Any) -> int:
    """Run ``target(ready=..., **kwargs)`` in a spawn child and SIGKILL it.

    The kill comes ``delay`` seconds after the child set ``ready``. Returns the
    dead child's pid (reaped).
    """
    ready = MP.Event()
    process = MP.Process(target=target, kwargs={"ready": ready, **kwargs})
    process.start()
    try:
        if not ready.wait(WORKER_TIMEOUT):
            raise RuntimeError(f"{target.__name__} never became ready")
        if delay:
            time.sleep(delay)
    finally:
        process.kill()
        process.join()
    assert process.pid is not None
    return process.pid


# -- a run-lock holder in another process ---------------------------------------

_RUN_LOCK_HOLDER_CODE: Final = """
import json
import sys
from pathlib import Path
import fermilink_state as fs
record = fs.acquire_run_lock(Path(sys.argv[1]), {"holder": "child"})
print(json.dumps(record), flush=True)
if sys.argv[2] == "hold":
    sys.stdin.read()
    fs.release_run_lock(Path(sys.argv[1]))
"""


@dataclass
class RunLockChild:
    """A child process that acquired a project's run lock."""

    process: subprocess.Popen[str]
    record: dict[str, Any]

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self.process.pid


def start_run_lock_child(project_root: Path, *, hold: bool) -> RunLockChild:
    """Start a child that acquires the run lock; it holds it until stdin closes
    (``hold=True``) or exits at once without releasing (``hold=False``)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _RUN_LOCK_HOLDER_CODE,
            str(project_root),
            "hold" if hold else "exit",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        process.wait()
        raise RuntimeError(f"the run-lock child for {project_root} failed to acquire")
    return RunLockChild(process, json.loads(line))


def stop_run_lock_child(child: RunLockChild) -> None:
    """Let the child release and exit (or reap it if it already died)."""
    for stream in (child.process.stdin, child.process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    child.process.wait(timeout=WORKER_TIMEOUT)


@contextlib.contextmanager
def run_lock_held_elsewhere(project_root: Path) -> Iterator[RunLockChild]:
    """A live child process holds the run lock for the ``with`` body."""
    child = start_run_lock_child(project_root, hold=True)
    try:
        yield child
    finally:
        stop_run_lock_child(child)
