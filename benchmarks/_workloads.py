"""Inputs for the benchmark: campaign files of a chosen size, and writer processes.

Every file is what the reference itself would have written after that many
rows or events, so both libraries are timed on realistic, identical input.
The writer functions run in child processes (``multiprocessing``), so they
live here, importable by name, rather than in the ``__main__`` script.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, Final

REFERENCE_MODULE: Final = "fermilink.optimize.state"
OURS_MODULE: Final = "fermilink_state"
PINNED_UTC: Final = "2026-01-02T03:04:05.678901Z"

_ROWS_PER_CHUNK: Final = 50_000

# fermilink.optimize.state: untyped, and its clock is patched by assignment.
Reference = Any
_STATUSES: Final = ("rejected", "rejected", "accepted")
_EPOCH: Final = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def row_fields(iteration: int, *, writer: int = 0) -> dict[str, Any]:
    """The keyword arguments of ``append_result`` for a realistic row (~80 bytes)."""
    return {
        "iteration": iteration,
        "commit": f"{(iteration * 2654435761 + writer) & 0xFFFFFFF:07x}",
        "status": _STATUSES[iteration % len(_STATUSES)],
        "primary_metric_name": "runtime_s",
        "primary_metric_value": 1.0 + (iteration % 997) / 1013.0,
        "description": f"w{writer} r{iteration} unroll the inner loop x4",
    }


def _ledger_row(iteration: int) -> str:
    fields = row_fields(iteration)
    return (
        f"{iteration}\t{fields['commit']}\t{fields['status']}\t{fields['primary_metric_name']}\t"
        f"{fields['primary_metric_value']:.12g}\t{fields['description']}\n"
    )


def write_ledger(reference: Reference, path: Path, rows: int) -> int:
    """Write a ledger of ``rows`` rows (as the reference formats them); return its size."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(reference.RESULTS_HEADER)
        for start in range(0, rows, _ROWS_PER_CHUNK):
            stop = min(rows, start + _ROWS_PER_CHUNK)
            handle.write("".join(_ledger_row(iteration) for iteration in range(start, stop)))
    return path.stat().st_size


def event_fields(number: int, status: str) -> dict[str, Any]:
    """The keyword arguments of ``record_campaign_event`` for event ``number``."""
    return {
        "commit": f"{(number * 40503) & 0xFFFFFFF:07x}",
        "primary_metric_name": "t",
        "primary_metric_value": 1.0 + (number % 89) / 16.0,
        "status": status,
        "description": f"tile {number}",
    }


def event_status(number: int) -> str:
    """Every third event is accepted, the others rejected."""
    return _STATUSES[number % len(_STATUSES)]


def _event_lines(number: int, stamp: str) -> tuple[str, str]:
    fields = event_fields(number, event_status(number))
    summary = (
        f"({fields['commit']}, {fields['primary_metric_name']}="
        f"{float(fields['primary_metric_value']):.12g})"
    )
    progress = f"- [{stamp}] {fields['status']}: {fields['description']} {summary}"
    return progress, f"- [{stamp}] {fields['description']} {summary}"


def _stamp(number: int) -> str:
    # One event every 37 s from 2026-01-02, microseconds always shown (fixed width).
    moment = _EPOCH + timedelta(seconds=37 * number, microseconds=number % 10**6)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.contextmanager
def reference_clock(reference: Reference, clock: Callable[[], str]) -> Iterator[None]:
    """Make the reference stamp times with ``clock`` (it reads its module global)."""
    original = reference.utc_now_z
    reference.utc_now_z = clock
    try:
        yield
    finally:
        reference.utc_now_z = original


def memory_text(reference: Reference, events: int, folder: Path) -> str:
    """``memory.md`` as the reference leaves it after ``events`` campaign events.

    Built section by section with the reference's own helpers (replaying the
    events one by one would take the reference minutes at 20,000 events);
    :func:`replayed_memory_text` checks that the two agree.
    """
    template_path = folder / ".template.md"
    with reference_clock(reference, lambda: PINNED_UTC):
        reference.ensure_memory_file(
            template_path,
            package_id="bench_pkg",
            benchmark_id="bench_case",
            benchmark_rel="benchmarks/case.yaml",
            optimize_branch="optimize/bench",
        )
    content = str(template_path.read_text(encoding="utf-8"))
    template_path.unlink()
    progress = [""]  # the template's blank line stays above the first entry
    accepted: list[str] = []
    rejected: list[str] = []
    latest: list[str] | None = None
    for number in range(events):
        stamp = _stamp(number)
        line, outcome = _event_lines(number, stamp)
        progress.append(line)
        if event_status(number) == "accepted":
            accepted.append(outcome)
            fields = event_fields(number, "accepted")
            latest = [
                f"- commit: {fields['commit']}",
                f"- primary_metric: t={float(fields['primary_metric_value']):.12g}",
                "- status: accepted",
            ]
        else:
            rejected.append(outcome)
    if latest is not None:
        content = reference._set_section_lines(content, "### Latest accepted commit", latest)
    if events:
        content = reference._set_section_lines(content, "### Progress log", progress)
        content = reference._set_section_lines(
            content, "### Accepted experiments", accepted or ["- none yet"]
        )
        content = reference._set_section_lines(
            content, "### Rejected patterns", rejected or ["- none yet"]
        )
        content = reference._replace_metadata_line(
            content, "- last_updated_utc: ", _stamp(events - 1)
        )
    return str(content)


def replayed_memory_text(reference: Reference, events: int, folder: Path) -> str:
    """``memory.md`` after really recording ``events`` events with the reference."""
    path = folder / ".replayed.md"
    path.write_text(memory_text(reference, 0, folder), encoding="utf-8")
    for number in range(events):
        with reference_clock(reference, functools.partial(_stamp, number)):
            reference.record_campaign_event(path, **event_fields(number, event_status(number)))
    text = str(path.read_text(encoding="utf-8"))
    path.unlink()
    return text


def state_payload(iteration: int) -> dict[str, Any]:
    """A controller ``state.json`` of a realistic shape (~1.5 KB as JSON)."""
    return {
        "schema_version": 1,
        "package_id": "bench_pkg",
        "benchmark_id": "bench_case",
        "optimize_branch": "optimize/bench",
        "iteration": iteration,
        "status": "running",
        "incumbent": {"commit": "c0ffee1", "primary_metric_value": 1.2345, "iteration": 17},
        "counts": {"accepted": 12, "rejected": 40, "failed": 3},
        "history": [
            {"iteration": number, "commit": f"{number:07x}", "status": "rejected", "value": 1.5}
            for number in range(12)
        ],
        "worker": {"pid": 4242, "hostname": "bench-host", "started_at_utc": PINNED_UTC},
        "updated_at_utc": PINNED_UTC,
    }


@dataclass(frozen=True)
class WriterJob:
    """What one writer process does: which library, which files, how much."""

    library: str
    writer: int
    results: str
    rows: int
    memory: str = ""
    state: str = ""
    mixed: bool = False


@dataclass(frozen=True)
class WriterReport:
    """What one writer process reports back: when it finished and what failed."""

    writer: int
    started: float
    finished: float
    row_crashes: int
    event_crashes: int
    state_crashes: int
    bad_state_reads: int


def writer_process(job: WriterJob, start: Barrier, reports: Queue[WriterReport]) -> None:
    """Append ``job.rows`` rows (and, if mixed, record events and rewrite state)."""
    os.environ["FERMILINK_STATE_FSYNC"] = "1"
    library = importlib.import_module(job.library)
    results = Path(job.results)
    memory = Path(job.memory)
    state = Path(job.state)
    row_crashes = event_crashes = state_crashes = bad_state_reads = 0
    start.wait(timeout=120)
    started = time.perf_counter()  # CLOCK_MONOTONIC: one clock for every process
    for iteration in range(job.rows):
        try:
            library.append_result(results, **row_fields(iteration, writer=job.writer))
        except Exception:  # a crash of the library under test is what we count
            row_crashes += 1
        if not job.mixed:
            continue
        try:
            library.record_campaign_event(memory, **mixed_event(job.writer, iteration))
        except Exception:
            event_crashes += 1
        try:
            library.write_state(state, {"writer": job.writer, "iteration": iteration})
            payload = library.load_state(state)
        except Exception:
            state_crashes += 1
            continue
        if payload is None:
            bad_state_reads += 1
    reports.put(
        WriterReport(
            job.writer,
            started,
            time.perf_counter(),
            row_crashes,
            event_crashes,
            state_crashes,
            bad_state_reads,
        )
    )


def mixed_event(writer: int, iteration: int) -> dict[str, Any]:
    """A campaign event whose description names its writer and iteration."""
    fields = event_fields(iteration, event_status(iteration))
    fields["description"] = f"event w{writer} i{iteration}"
    return fields


def count_lost_rows(path: Path, writers: int, rows: int) -> int:
    """Rows of ``writers`` x ``rows`` that are missing or torn in the ledger."""
    expected = {
        f"w{writer} r{iteration} unroll the inner loop x4"
        for writer in range(writers)
        for iteration in range(rows)
    }
    found: set[str] = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split("\t")
        if len(fields) == 6:
            found.add(fields[5])
    return len(expected - found)


def count_lost_events(path: Path, writers: int, events: int) -> int:
    """Events of ``writers`` x ``events`` whose progress-log line is missing."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return writers * events
    present: set[str] = set()
    for line in text.splitlines():
        # Progress-log lines read "- [<stamp>] <status>: event wW iI (<summary>)".
        _, marker, rest = line.partition(": event w")
        if marker:
            present.add("event w" + rest.split(" (", 1)[0])
    return sum(
        f"event w{writer} i{iteration}" not in present
        for writer in range(writers)
        for iteration in range(events)
    )
