"""fermilink-state against the reference ``fermilink.optimize.state``, side by side.

Both libraries run on the same files in interleaved rounds (drift of a shared
machine then hits both alike); the tables show median per-call costs and
their ratios. Ours runs as users run it: inter-process locks, atomic writes
and fsync ON (``FERMILINK_STATE_FSYNC`` is forced to 1 here, which tox's test
settings turn off, except in the one row that says "fsync off").

    python benchmarks/bench.py                 # full run; exit 1 if a target is missed
    python benchmarks/bench.py --short         # smaller sizes, well under 2 minutes;
                                               # fails only on a miss by more than half
    python benchmarks/bench.py --update-readme # full run, then rewrite the README table
    python benchmarks/bench.py --dir /mnt/nfs  # benchmark another filesystem
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import itertools
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import _workloads as work

REPO: Final = Path(__file__).resolve().parent.parent
README: Final = REPO / "README.md"
README_START: Final = "<!-- bench:start -->"
README_END: Final = "<!-- bench:end -->"
REFERENCE_PIN: Final = "fermilink==0.3.10"
FSYNC_ENV: Final = "FERMILINK_STATE_FSYNC"
X: Final = "\N{MULTIPLICATION SIGN}"
LIBRARIES: Final = {"reference": work.REFERENCE_MODULE, "fermilink-state": work.OURS_MODULE}


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of one run (``--short`` or full)."""

    short: bool
    rounds: int
    tail_rows: tuple[int, ...]
    memory_events: tuple[int, ...]
    judged_events: int
    writers: int
    rows_per_writer: int
    mixed_per_writer: int
    import_runs: int

    @classmethod
    def make(cls, *, short: bool) -> Plan:
        """The short plan (smaller sizes, fewer rounds) or the full one."""
        # The tail keeps its 1,000,000-row ledger in the short run: the target is
        # stated at that size, and the reference needs only a few reads of it.
        tail = (10_000, 100_000, 1_000_000)
        if short:
            return cls(True, 7, tail, (1_000, 5_000), 5_000, 8, 250, 12, 7)
        return cls(False, 15, tail, (1_000, 5_000, 20_000), 5_000, 8, 800, 30, 11)


@dataclass(frozen=True)
class Row:
    """One line of the cost table: median seconds per call of each side."""

    case: str
    reference: float | None
    ours: float
    note: str = ""

    @property
    def speedup(self) -> float | None:
        """How many times faster ours is (reference time / our time)."""
        return None if self.reference is None else self.reference / self.ours


@dataclass(frozen=True)
class Target:
    """A performance promise: ``measured`` against ``limit``.

    ``at_least`` targets pass when measured >= limit, the others when
    measured <= limit. The lenient check of ``--short`` fails only when the
    target is missed by more than half of it.
    """

    name: str
    goal: str
    measured: float
    limit: float
    at_least: bool
    shown: str
    basis: str = ""

    def passed(self, *, lenient: bool) -> bool:
        """Whether the measurement meets the target (or, lenient, misses by at most half)."""
        slack = 0.5 if lenient else 0.0
        if self.at_least:
            return self.measured >= self.limit * (1.0 - slack)
        return self.measured <= self.limit * (1.0 + slack)


@dataclass(frozen=True)
class LossRow:
    """Concurrent writers: throughput and what was lost, for one library."""

    workload: str
    library: str
    rows_per_second: float
    lost_rows: int
    crashes: int
    lost_events: int | None = None
    state_crashes: int | None = None
    bad_state_reads: int | None = None

    @property
    def total_lost(self) -> int:
        """Everything that went missing or failed."""
        state = (self.state_crashes or 0) + (self.bad_state_reads or 0)
        return self.lost_rows + self.crashes + (self.lost_events or 0) + state


@dataclass(frozen=True)
class WriterRun:
    """The outcome of one group of writer processes."""

    rows_per_second: float
    lost_rows: int
    crashes: int
    state_crashes: int
    bad_state_reads: int


@dataclass
class Report:
    """Everything measured in one run."""

    plan: Plan
    rows: list[Row] = field(default_factory=list)
    growth: list[str] = field(default_factory=list)
    losses: list[LossRow] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fail(message: str) -> None:
    """Print one error line and exit with status 2."""
    print(f"bench: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def import_reference() -> ModuleType:
    """The reference module, or exit saying how to install it."""
    try:
        import fermilink.optimize.state as reference
    except ImportError as error:
        fail(
            f"the reference implementation is not importable ({error}).\n"
            "  Install it without its heavy dependencies (its state module needs none):\n"
            f"    {sys.executable} -m pip install --no-deps {REFERENCE_PIN}"
        )
    return reference  # type: ignore[no-any-return]


# --- timing -------------------------------------------------------------------


def interleaved(
    calls: Mapping[str, Callable[[], object]], *, rounds: int, repeat: Mapping[str, int]
) -> dict[str, float]:
    """Median seconds per call of each function, the functions taking turns call by call.

    Each round makes ``repeat[name]`` calls of each function, spread evenly
    over the round, in forward order in even rounds and backward in odd ones:
    drift of a shared machine and the after-effects of one call on the next
    (dirty pages still being written back, allocator state) fall on all alike.
    """
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for name in names:
        calls[name]()  # warm-up: imports, lock objects, page cache
    turns = max(repeat[name] for name in names)
    for number in range(rounds):
        gc.collect()
        order = names if number % 2 == 0 else names[::-1]
        for turn in range(turns):
            for name in order:
                # Bresenham: repeat[name] calls spread over the round's turns.
                due = (turn + 1) * repeat[name] // turns - turn * repeat[name] // turns
                for _ in range(due):
                    began = time.perf_counter()
                    calls[name]()
                    samples[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in samples.items()}


@contextlib.contextmanager
def fsync_setting(value: str) -> Iterator[None]:
    """``FERMILINK_STATE_FSYNC=value`` for the ``with`` body."""
    previous = os.environ.get(FSYNC_ENV)
    os.environ[FSYNC_ENV] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(FSYNC_ENV, None)
        else:
            os.environ[FSYNC_ENV] = previous


def durable_rewrite_floor(path: Path) -> None:
    """The I/O floor of a durable edit: read, write a temp, fsync, replace, fsync the folder."""
    data = path.read_bytes()
    durable_replace(path, data)


def durable_replace(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp, fsync it, replace ``path``, fsync the folder."""
    temp = path.with_name(f".{path.name}.floor.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class Counted:
    """Calls ``function(path, **fields(n))`` with a new n each call (rows and events differ)."""

    def __init__(
        self, function: Callable[..., object], path: Path, fields: Callable[[int], dict[str, Any]]
    ) -> None:
        self.function, self.path, self.fields = function, path, fields
        self.numbers = itertools.count(1_000_000)

    def __call__(self) -> None:
        self.function(self.path, **self.fields(next(self.numbers)))


def event_of(number: int) -> dict[str, Any]:
    """The fields of benchmark event ``number`` (a third of them accepted)."""
    return work.event_fields(number, work.event_status(number))


# --- formatting -----------------------------------------------------------------


def fmt_time(seconds: float) -> str:
    """A duration with a unit that suits it."""
    if seconds < 1e-5:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(ratio: float) -> str:
    """A ratio such as 0.42x, 3.1x or 12,345x (with a multiplication sign)."""
    if ratio >= 100:
        return f"{ratio:,.0f}{X}"
    if ratio >= 10:
        return f"{ratio:.1f}{X}"
    return f"{ratio:.2f}{X}"


def fmt_size(size: int) -> str:
    """A file size in KB or MB."""
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"


def markdown_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def text_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """An aligned plain-text table for the terminal."""
    widths = [max(map(len, column)) for column in zip(header, *lines, strict=True)]
    rendered = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (header, *lines)
    ]
    return "\n".join([rendered[0], "  ".join("-" * width for width in widths), *rendered[1:]])


# --- the cases --------------------------------------------------------------------


class Bench:
    """Runs the cases of one plan in a scratch folder and collects the report."""

    def __init__(self, reference: ModuleType, ours: ModuleType, folder: Path, plan: Plan) -> None:
        self.reference = reference
        self.ours = ours
        self.folder = folder
        self.plan = plan
        self.report = Report(plan)

    def subfolder(self, name: str) -> Path:
        """A new folder for one case."""
        path = self.folder / name
        path.mkdir(parents=True)
        return path

    def check_same(self, what: str, theirs: object, mine: object) -> None:
        """A fast answer that differs from the reference's is a failure, not a win."""
        if theirs != mine:
            self.report.mismatches.append(f"{what}: ours differs from the reference")

    @staticmethod
    def progress(text: str) -> None:
        """A progress line on stderr (stdout is the report)."""
        print(f"  ... {text}", file=sys.stderr, flush=True)

    def tail(self) -> None:
        """``recent_results_text(limit=8)``: the reference reads the whole ledger."""
        folder = self.subfolder("tail")
        ours_costs: list[float] = []
        speedup = 0.0
        for rows in self.plan.tail_rows:
            self.progress(f"recent_results_text, {rows:,} rows")
            path = folder / f"results-{rows}.tsv"
            size = work.write_ledger(self.reference, path, rows)
            theirs = functools.partial(self.reference.recent_results_text, path, limit=8)
            mine = functools.partial(self.ours.recent_results_text, path, limit=8)
            self.check_same(f"recent_results_text at {rows:,} rows", theirs(), mine())
            # Several reference reads per round of the short ledgers, one of the longest.
            costs = interleaved(
                {"reference": theirs, "ours": mine},
                rounds=self.plan.rounds,
                repeat={"reference": max(1, 200_000 // rows), "ours": 200},
            )
            row = Row(
                f"`recent_results_text`, {rows:,} rows ({fmt_size(size)})",
                costs["reference"],
                costs["ours"],
            )
            self.report.rows.append(row)
            ours_costs.append(costs["ours"])
            speedup = costs["reference"] / costs["ours"]
            path.unlink()
        first, last = self.plan.tail_rows[0], self.plan.tail_rows[-1]
        self.report.growth.append(
            f"`recent_results_text`: {last // first:,}{X} the rows costs ours "
            f"{fmt_ratio(ours_costs[-1] / ours_costs[0])} the time (flat in the file's "
            "length); the reference's time grows with the file"
        )
        self.report.targets.append(
            Target(
                f"tail of a {last:,}-row ledger",
                f"≥ 1,000{X} faster than the reference",
                speedup,
                1000.0,
                at_least=True,
                shown=fmt_ratio(speedup),
            )
        )

    def memory_events(self) -> None:
        """``record_campaign_event`` next to the I/O floor of the same file."""
        scratch = self.subfolder("memory-check")
        self.check_same(
            "memory.md synthesis (vs replaying events through the reference)",
            work.replayed_memory_text(self.reference, 7, scratch),
            work.memory_text(self.reference, 7, scratch),
        )
        seen: list[tuple[int, float, float]] = []
        for events in self.plan.memory_events:
            self.progress(f"record_campaign_event, {events:,} entries")
            case = self.subfolder(f"memory/{events}")
            path = case / "memory.md"
            path.write_text(work.memory_text(self.reference, events, case), encoding="utf-8")
            self.compare_event(path, scratch, events)
            size = path.stat().st_size
            calls = max(2, min(20, 60_000 // events))
            ours = Counted(self.ours.record_campaign_event, path, event_of)
            # Ours against the floor apart from the reference: its unsynced
            # writes would be flushed by whichever fsync comes next.
            costs = interleaved(
                {"ours": ours, "floor": functools.partial(durable_rewrite_floor, path)},
                rounds=self.plan.rounds,
                repeat={"ours": calls, "floor": calls},
            )
            side_by_side = interleaved(
                {
                    "reference": Counted(self.reference.record_campaign_event, path, event_of),
                    "ours": ours,
                },
                rounds=self.plan.rounds,
                repeat={"reference": calls, "ours": calls},
            )
            to_floor = costs["ours"] / costs["floor"]
            self.report.rows.append(
                Row(
                    f"`record_campaign_event`, {events:,} entries ({fmt_size(size)})",
                    side_by_side["reference"],
                    side_by_side["ours"],
                    f"{fmt_ratio(to_floor)} the I/O floor: {fmt_time(costs['ours'])} vs "
                    f"{fmt_time(costs['floor'])}",
                )
            )
            seen.append((size, costs["ours"], costs["floor"]))
            if events == self.plan.judged_events:
                self.report.targets.append(
                    Target(
                        f"memory event at {events:,} entries",
                        f"≤ 1.5{X} the I/O floor (read, temp, fsync, replace, fsync folder)",
                        to_floor,
                        1.5,
                        at_least=False,
                        shown=fmt_ratio(to_floor),
                    )
                )
        (small, small_ours, small_floor), (big, big_ours, big_floor) = seen[0], seen[-1]
        self.report.growth.append(
            f"`record_campaign_event`: {fmt_ratio(big / small)} the file costs ours "
            f"{fmt_ratio(big_ours / small_ours)} the time and the I/O floor "
            f"{fmt_ratio(big_floor / small_floor)} (linear in the file's size, as the floor)"
        )
        self.report.notes.append(
            "memory events: ours and the I/O floor (read the file, write a temp, fsync, "
            "replace, fsync the folder) are timed together, apart from the reference, "
            "whose unsynced writes the next fsync would otherwise have to flush"
        )

    def compare_event(self, path: Path, scratch: Path, events: int) -> None:
        """One event by each library on copies of ``path``, clocks pinned: same bytes?"""
        from fermilink_state import _clock

        theirs, mine = scratch / f"reference-{events}.md", scratch / f"ours-{events}.md"
        for status in ("accepted", "rejected"):
            shutil.copyfile(path, theirs)
            shutil.copyfile(path, mine)
            fields = work.event_fields(events, status)
            with work.reference_clock(self.reference, lambda: work.PINNED_UTC):
                self.reference.record_campaign_event(theirs, **fields)
            _clock.freeze(work.PINNED_UTC)
            try:
                self.ours.record_campaign_event(mine, **fields)
            finally:
                _clock.freeze(None)
            self.check_same(
                f"record_campaign_event ({status}) at {events:,} entries",
                theirs.read_bytes(),
                mine.read_bytes(),
            )

    def appends(self) -> None:
        """One row next to a filelock round trip; a batch of 100 rows."""
        from filelock import FileLock, SoftFileLock

        self.progress("append_result, append_results")
        folder = self.subfolder("append")
        path = folder / "results.tsv"
        path.write_text(self.reference.RESULTS_HEADER, encoding="utf-8")
        lock_class = SoftFileLock if self.ours.lock_backend() == "soft" else FileLock
        lock = lock_class(str(folder / "round-trip.lock"))

        def round_trip() -> None:
            lock.acquire()
            lock.release()

        costs = interleaved(
            {
                "reference": Counted(self.reference.append_result, path, work.row_fields),
                "ours": Counted(self.ours.append_result, path, work.row_fields),
                "lock": round_trip,
            },
            rounds=self.plan.rounds,
            repeat=dict.fromkeys(("reference", "ours", "lock"), 300),
        )
        budget = costs["lock"] + 1.5 * costs["reference"]
        self.report.rows.append(
            Row(
                "`append_result`, one row",
                costs["reference"],
                costs["ours"],
                f"one filelock round trip alone: {fmt_time(costs['lock'])}",
            )
        )
        self.report.targets.append(
            Target(
                "single append",
                f"≤ one filelock round trip + 1.5{X} the reference's append",
                costs["ours"] / budget,
                1.0,
                at_least=False,
                shown=f"{fmt_time(costs['ours'])} vs {fmt_time(budget)}",
            )
        )
        batch = [work.row_fields(number) for number in range(100)]

        def reference_batch() -> None:
            for fields in batch:
                self.reference.append_result(path, **fields)

        costs = interleaved(
            {"reference": reference_batch, "ours": lambda: self.ours.append_results(path, batch)},
            rounds=self.plan.rounds,
            repeat={"reference": 10, "ours": 10},
        )
        speedup = costs["reference"] / costs["ours"]
        self.report.rows.append(
            Row(
                "100 rows: one `append_results` vs 100 `append_result`",
                costs["reference"],
                costs["ours"],
                f"{fmt_time(costs['ours'] / 100)} per row",
            )
        )
        self.report.targets.append(
            Target(
                "batch of 100 appends",
                f"≥ 5{X} faster per row than 100 single reference appends",
                speedup,
                5.0,
                at_least=True,
                shown=fmt_ratio(speedup),
            )
        )
        theirs, mine = folder / "reference-rows.tsv", folder / "ours-rows.tsv"
        theirs.write_text(self.reference.RESULTS_HEADER, encoding="utf-8")  # ours writes it
        for fields in batch[:6]:
            self.reference.append_result(theirs, **fields)
        for fields in batch[:3]:
            self.ours.append_result(mine, **fields)
        self.ours.append_results(mine, batch[3:6])
        self.check_same("appended rows", theirs.read_bytes(), mine.read_bytes())

    def state(self) -> None:
        """``write_state`` with fsync on (as shipped) and off (the reference's work)."""
        self.progress("write_state")
        path = self.subfolder("state") / "state.json"
        payload = work.state_payload(7)
        self.reference.write_state(path, payload)
        theirs = path.read_bytes()
        self.ours.write_state(path, payload)
        self.check_same("state.json bytes", theirs, path.read_bytes())
        calls: dict[str, Callable[[], object]] = {
            "reference": functools.partial(self.reference.write_state, path, payload),
            "ours": functools.partial(self.ours.write_state, path, payload),
            "floor": functools.partial(durable_replace, path, theirs),
        }
        with fsync_setting("1"):
            on = interleaved(calls, rounds=self.plan.rounds, repeat=dict.fromkeys(calls, 40))
        del calls["floor"]
        with fsync_setting("0"):
            off = interleaved(calls, rounds=self.plan.rounds, repeat=dict.fromkeys(calls, 40))
        self.report.rows.append(
            Row(
                "`write_state` (state.json), fsync on",
                on["reference"],
                on["ours"],
                f"{fmt_ratio(on['ours'] / on['floor'])} the durable-write floor "
                f"({fmt_time(on['floor'])}); the reference never fsyncs",
            )
        )
        self.report.rows.append(
            Row(
                "`write_state` (state.json), fsync off",
                off["reference"],
                off["ours"],
                "both: a temp file and a rename",
            )
        )
        ratio = off["ours"] / off["reference"]
        self.report.targets.append(
            Target(
                "state.json rewrite",
                f"≤ 2{X} the reference's time",
                ratio,
                2.0,
                at_least=False,
                shown=fmt_ratio(ratio),
                basis=(
                    "judged with fsync off: the same work as the reference's (temp file + "
                    f"rename). With fsync on, ours costs {fmt_ratio(on['ours'] / on['reference'])} "
                    "the reference: that is the price of surviving a power cut, which the "
                    "reference does not pay, and it is set by the disk, not by our code "
                    f"({fmt_ratio(on['ours'] / on['floor'])} the bare durable write)"
                ),
            )
        )

    def concurrency(self) -> None:
        """8 processes appending to one ledger; 8 mixed writers on one campaign."""
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        writers, rows = self.plan.writers, self.plan.rows_per_writer
        for name, module in LIBRARIES.items():
            self.progress(f"{name}: 1 and {writers} processes appending")
            folder = self.subfolder(f"appenders-{name}")
            alone = run_writers(context, module, folder / "alone.tsv", 1, rows * writers)
            crowd = run_writers(context, module, folder / "crowd.tsv", writers, rows)
            self.report.losses.append(
                LossRow(
                    "1 process appending",
                    name,
                    alone.rows_per_second,
                    alone.lost_rows,
                    alone.crashes,
                )
            )
            self.report.losses.append(
                LossRow(
                    f"{writers} processes appending to one ledger",
                    name,
                    crowd.rows_per_second,
                    crowd.lost_rows,
                    crowd.crashes,
                )
            )
        alone_row, crowd_row = self.report.losses[-2], self.report.losses[-1]
        share = crowd_row.rows_per_second / alone_row.rows_per_second
        self.report.targets.append(
            Target(
                f"{writers} concurrent appenders: throughput",
                "≥ half of one uncontended appender's rows/s",
                share,
                0.5,
                at_least=True,
                shown=f"{fmt_ratio(share)} ({crowd_row.rows_per_second:,.0f} vs "
                f"{alone_row.rows_per_second:,.0f} rows/s)",
            )
        )
        self.report.targets.append(
            Target(
                f"{writers} concurrent appenders: rows lost",
                "0",
                float(crowd_row.total_lost),
                0.0,
                at_least=False,
                shown=f"{crowd_row.lost_rows} lost, {crowd_row.crashes} crashed appends",
            )
        )
        per_writer = self.plan.mixed_per_writer
        for name, module in LIBRARIES.items():
            self.progress(f"{name}: {writers} writers, mixed workload")
            folder = self.subfolder(f"mixed-{name}")
            memory, results = folder / "memory.md", folder / "results.tsv"
            memory.write_text(work.memory_text(self.reference, 0, folder), encoding="utf-8")
            mixed = run_writers(
                context,
                module,
                results,
                writers,
                per_writer,
                memory=memory,
                state=folder / "state.json",
            )
            self.report.losses.append(
                LossRow(
                    f"{writers} writers, each: append + event + state write/read",
                    name,
                    mixed.rows_per_second,
                    mixed.lost_rows,
                    mixed.crashes,
                    work.count_lost_events(memory, writers, per_writer),
                    mixed.state_crashes,
                    mixed.bad_state_reads,
                )
            )
        mixed_row = self.report.losses[-1]
        self.report.targets.append(
            Target(
                f"{writers} mixed writers: nothing lost",
                "0 rows, events or state writes lost",
                float(mixed_row.total_lost),
                0.0,
                at_least=False,
                shown=f"{mixed_row.total_lost} lost",
            )
        )

    def import_time(self) -> None:
        """``import fermilink_state`` in a fresh interpreter (and the reference's module)."""
        self.progress("import time")
        samples: dict[str, list[float]] = {"reference": [], "ours": []}
        pytest_loaded = False
        for module in LIBRARIES.values():
            import_seconds(module)  # writes the bytecode caches users would have
        for _ in range(self.plan.import_runs):
            samples["reference"].append(import_seconds(work.REFERENCE_MODULE)[0])
            seconds, with_pytest = import_seconds(work.OURS_MODULE)
            samples["ours"].append(seconds)
            pytest_loaded = pytest_loaded or with_pytest
        ours = statistics.median(samples["ours"])
        self.report.rows.append(
            Row(
                "`import fermilink_state`, fresh interpreter",
                statistics.median(samples["reference"]),
                ours,
                "reference: `import fermilink.optimize.state`",
            )
        )
        self.report.targets.append(
            Target(
                "import time",
                "< 60 ms, importing no pytest",
                float("inf") if pytest_loaded else ours * 1e3,
                60.0,
                at_least=False,
                shown=f"{ours * 1e3:.1f} ms, "
                + ("pytest IMPORTED" if pytest_loaded else "no pytest"),
            )
        )

    def seeding(self) -> None:
        """A seeded project, as the plugin's ``seeded_project`` sets it up."""
        self.progress("seeded project setup")
        try:
            from fermilink_state.testing import _project
        except ImportError:
            self.report.notes.append(
                "seeded project: fermilink_state.testing._project does not exist yet"
            )
            return
        seed: Callable[[Path], object] | None = getattr(_project, "seed_project", None)
        if seed is None:
            self.report.notes.append(
                "seeded project: fermilink_state.testing._project has no seed_project"
            )
            return
        folder = self.subfolder("seeded")
        numbers = itertools.count()

        def fresh_root() -> Path:
            root = folder / str(next(numbers))
            root.mkdir()
            return root

        costs = interleaved(
            {
                "reference": lambda: reference_seed(self.reference, fresh_root()),
                "ours": lambda: seed(fresh_root()),
            },
            rounds=self.plan.rounds,
            repeat={"reference": 20, "ours": 20},
        )
        self.report.rows.append(
            Row(
                "`seeded_project` setup (memory, ledger + baseline row, state)",
                costs["reference"],
                costs["ours"],
                "reference: the same files through its own functions",
            )
        )


def run_writers(
    context: BaseContext,
    module: str,
    results: Path,
    writers: int,
    rows: int,
    *,
    memory: Path | None = None,
    state: Path | None = None,
) -> WriterRun:
    """Start ``writers`` processes at a barrier; time them from there to the last finish."""
    barrier = context.Barrier(writers + 1)
    reports: Any = context.Queue()
    mixed = memory is not None
    jobs = [
        work.WriterJob(
            module,
            writer,
            str(results),
            rows,
            str(memory or ""),
            str(state or ""),
            mixed,
        )
        for writer in range(writers)
    ]
    processes = [
        context.Process(target=work.writer_process, args=(job, barrier, reports))  # type: ignore[attr-defined]
        for job in jobs
    ]
    for process in processes:
        process.start()
    barrier.wait(timeout=120)  # every child has imported its library
    outcomes: list[work.WriterReport] = [reports.get(timeout=900) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    # From the first writer's start to the last one's finish, as each saw it.
    elapsed = max(outcome.finished for outcome in outcomes) - min(
        outcome.started for outcome in outcomes
    )
    return WriterRun(
        rows_per_second=writers * rows / elapsed,
        lost_rows=work.count_lost_rows(results, writers, rows),
        crashes=sum(outcome.row_crashes + outcome.event_crashes for outcome in outcomes),
        state_crashes=sum(outcome.state_crashes for outcome in outcomes),
        bad_state_reads=sum(outcome.bad_state_reads for outcome in outcomes),
    )


_IMPORT_PROBE: Final = (
    "import json, sys, time\n"
    "began = time.perf_counter()\n"
    "import {module}\n"
    "print(json.dumps([time.perf_counter() - began, 'pytest' in sys.modules]))\n"
)


def import_seconds(module: str) -> tuple[float, bool]:
    """Seconds to import ``module`` in a fresh interpreter, and whether pytest came along."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # users import from bytecode caches
    output = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE.format(module=module)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    seconds, with_pytest = json.loads(output)
    return float(seconds), bool(with_pytest)


def reference_seed(reference: ModuleType, root: Path) -> None:
    """The files ``seeded_project`` creates, made with the reference's functions."""
    reference.ensure_optimize_root(root)
    reference.ensure_memory_file(
        reference.memory_path(root),
        package_id="demo_package",
        benchmark_id="demo_benchmark",
        benchmark_rel="benchmark.yaml",
        optimize_branch="fermilink-optimize/demo",
    )
    results = reference.results_path(root)
    reference.ensure_results_file(results)
    reference.append_result(
        results,
        iteration=0,
        commit="baseline",
        status="baseline",
        primary_metric_name="runtime_s",
        primary_metric_value=1.0,
        description="baseline",
    )
    reference.write_state(reference.state_path(root), {"iteration": 0, "status": "running"})


# --- the report ---------------------------------------------------------------------


def machine(folder: Path) -> list[tuple[str, str]]:
    """CPU, cores, OS, Python, filelock and the scratch folder's filesystem."""
    import filelock

    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return [
        ("CPU", model),
        ("cores", f"{usable} usable of {cores}"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("filelock", filelock.__version__),
        ("filesystem", filesystem(folder)),
    ]


def filesystem(folder: Path) -> str:
    """The type of the filesystem holding ``folder`` and its mount point (/proc/mounts)."""
    mount, kind = "", "unknown"
    with contextlib.suppress(OSError):
        resolved = str(folder.resolve())
        for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            point = parts[1].replace("\\040", " ")
            inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
            if inside and len(point) > len(mount):
                mount, kind = point, parts[2]
    return f"{kind} (mounted at {mount or '?'})"


COST_HEADER: Final = ("case", "reference", "fermilink-state", "speed-up", "notes")
LOSS_HEADER: Final = (
    "workload",
    "library",
    "rows/s",
    "lost rows",
    "lost events",
    "crashed appends/events",
    "crashed state writes",
    "state reads without valid JSON",
)
TARGET_HEADER: Final = ("target", "goal", "measured", "result")


def cost_lines(report: Report) -> list[list[str]]:
    """Lines of the cost table."""
    return [
        [
            row.case,
            "" if row.reference is None else fmt_time(row.reference),
            fmt_time(row.ours),
            "" if row.speedup is None else fmt_ratio(row.speedup),
            row.note,
        ]
        for row in report.rows
    ]


def loss_lines(report: Report) -> list[list[str]]:
    """Lines of the concurrent-writers table."""

    def count(value: int | None) -> str:
        return "" if value is None else str(value)

    return [
        [
            loss.workload,
            loss.library,
            f"{loss.rows_per_second:,.0f}",
            str(loss.lost_rows),
            count(loss.lost_events),
            str(loss.crashes),
            count(loss.state_crashes),
            count(loss.bad_state_reads),
        ]
        for loss in report.losses
    ]


def target_lines(report: Report) -> list[list[str]]:
    """Lines of the targets table."""
    lines = []
    for target in report.targets:
        if target.passed(lenient=False):
            verdict = "met"
        elif report.plan.short and target.passed(lenient=True):
            verdict = "missed by less than half (tolerated by --short)"
        else:
            verdict = "MISSED"
        lines.append([target.name, target.goal, target.shown, verdict])
    return lines


def basis_lines(report: Report) -> list[str]:
    """What a target is judged on, where that needs saying."""
    return [f"{target.name}: {target.basis}" for target in report.targets if target.basis]


def print_report(report: Report, about: list[tuple[str, str]], elapsed: float) -> None:
    """The report, on stdout."""
    mode = "short" if report.plan.short else "full"
    print(f"\nfermilink-state vs fermilink.optimize.state ({mode} run, {elapsed:.0f} s)")
    for key, value in about:
        print(f"  {key}: {value}")
    print("  ours: locks, atomic writes and fsync on, unless a row says otherwise")
    print("\nMedian cost per call, interleaved rounds on the same files:")
    print(text_table(COST_HEADER, cost_lines(report)))
    if report.losses:
        print("\nConcurrent writer processes:")
        print(text_table(LOSS_HEADER, loss_lines(report)))
    print()
    for line in report.growth:
        print(f"Growth: {line}")
    for line in report.notes:
        print(f"Note: {line}")
    print("\nTargets:")
    print(text_table(TARGET_HEADER, target_lines(report)))
    for line in basis_lines(report):
        print(f"Judged: {line}")
    for mismatch in report.mismatches:
        print(f"MISMATCH: {mismatch}")


def readme_section(report: Report, about: list[tuple[str, str]]) -> str:
    """The markdown between the README's bench markers."""
    parts = [
        "_Generated by `tox -e bench` (`python benchmarks/bench.py --update-readme`); "
        "edits by hand are overwritten._",
        "",
        "Machine: " + "; ".join(f"{key}: {value}" for key, value in about) + ".",
        "",
        "Ours runs as shipped: inter-process locks, atomic writes, fsync on (unless a "
        "row says otherwise). Median cost per call, both libraries on the same files "
        "in interleaved rounds.",
        "",
        markdown_table(COST_HEADER, cost_lines(report)),
        "",
        *[f"- Growth of {line}." for line in report.growth],
        *[f"- {line[0].upper()}{line[1:]}." for line in report.notes],
        "",
        "Concurrent writer processes on one campaign (lost: missing or torn at the end; "
        "in the mixed workload each iteration appends a row, records an event, writes "
        "state.json and reads it back):",
        "",
        markdown_table(LOSS_HEADER, loss_lines(report)),
        "",
        "Targets:",
        "",
        markdown_table(TARGET_HEADER, target_lines(report)),
        "",
        *[f"- {line}." for line in basis_lines(report)],
    ]
    return "\n".join(parts) + "\n"


def update_readme(section: str) -> None:
    """Replace what lies between the bench markers of README.md."""
    text = README.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        fail(f"{README} lacks the {README_START} ... {README_END} markers; add them")
    head = text[: start + len(README_START)]
    README.write_text(f"{head}\n{section}{text[end:]}", encoding="utf-8")
    print(f"\nupdated {README.relative_to(REPO)}")


CASES: Final = {
    "tail": Bench.tail,
    "memory": Bench.memory_events,
    "append": Bench.appends,
    "state": Bench.state,
    "concurrency": Bench.concurrency,
    "import": Bench.import_time,
    "seeding": Bench.seeding,
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description="fermilink-state vs the reference.")
    parser.add_argument(
        "--short",
        action="store_true",
        help="smaller sizes, well under 2 minutes; fails only on a miss by more than half",
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="write the tables into README.md (full run only)",
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(CASES), help="run only this case (repeatable)"
    )
    parser.add_argument("--dir", type=Path, help="scratch folder (default: the system temp)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark: 0 when every target is met, 1 when one is missed, 2 on errors."""
    args = parse_args(argv)
    if args.update_readme and (args.short or args.only):
        fail("--update-readme needs the full run: drop --short and --only")
    reference = import_reference()
    os.environ[FSYNC_ENV] = "1"  # tox's test settings turn it off; users have it on
    import fermilink_state as ours

    plan = Plan.make(short=args.short)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fermilink-bench-", dir=args.dir) as scratch:
        about = machine(Path(scratch))
        bench = Bench(reference, ours, Path(scratch), plan)
        for name, case in CASES.items():
            if not args.only or name in args.only:
                case(bench)
    report = bench.report
    print_report(report, about, time.perf_counter() - began)
    if args.update_readme:
        update_readme(readme_section(report, about))
    missed = [target.name for target in report.targets if not target.passed(lenient=plan.short)]
    if missed or report.mismatches:
        print(
            f"\nbench: {len(missed)} target(s) missed, {len(report.mismatches)} mismatch(es)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
