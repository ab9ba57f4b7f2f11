"""Concurrent writer processes on one campaign: throughput and what was lost."""

from __future__ import annotations

import multiprocessing
import statistics
import sys
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

import _workloads as work
from _common import LIBRARIES, Bench, LossRow, Target, WriterRun, fmt_ratio


def concurrency(bench: Bench) -> None:
    """8 processes appending to one ledger; 8 mixed writers on one campaign.

    The libraries take turns, round by round (reference first in even
    rounds, ours first in odd ones), on the same files, reset before each
    run: a drift of the machine falls on both. Throughput is the median of
    the rounds; losses are summed over them.
    """
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    writers, rows = bench.plan.writers, bench.plan.rows_per_writer
    per_writer = bench.plan.mixed_per_writer
    folder = bench.subfolder("writers")
    alone: dict[str, list[WriterRun]] = {name: [] for name in LIBRARIES}
    crowd: dict[str, list[WriterRun]] = {name: [] for name in LIBRARIES}
    mixed: dict[str, list[tuple[WriterRun, int]]] = {name: [] for name in LIBRARIES}
    memory, results = folder / "memory.md", folder / "results.tsv"
    for number in range(bench.plan.writer_rounds):
        names = list(LIBRARIES) if number % 2 == 0 else list(LIBRARIES)[::-1]
        for name in names:
            module = LIBRARIES[name]
            bench.progress(f"round {number + 1}, {name}: 1 and {writers} appenders, mixed")
            alone[name].append(run_writers(context, module, _fresh(results), 1, rows * writers))
            crowd[name].append(run_writers(context, module, _fresh(results), writers, rows))
            _fresh(memory).write_text(
                work.memory_text(bench.reference, 0, folder), encoding="utf-8"
            )
            run = run_writers(
                context,
                module,
                _fresh(results),
                writers,
                per_writer,
                memory=memory,
                state=_fresh(folder / "state.json"),
            )
            mixed[name].append((run, work.count_lost_events(memory, writers, per_writer)))
    for name in LIBRARIES:
        bench.report.losses.append(_loss_row("1 process appending", name, alone[name]))
    for name in LIBRARIES:
        workload = f"{writers} processes appending to one ledger"
        bench.report.losses.append(_loss_row(workload, name, crowd[name]))
    crowd_rows = {loss.library: loss for loss in bench.report.losses[-len(LIBRARIES) :]}
    alone_rows = {
        loss.library: loss for loss in bench.report.losses[-2 * len(LIBRARIES) : -len(LIBRARIES)]
    }
    ours, theirs = crowd_rows["fermilink-state"], crowd_rows["reference"]
    share = ours.rows_per_second / alone_rows["fermilink-state"].rows_per_second
    bench.report.targets.append(
        Target(
            f"{writers} concurrent appenders: throughput",
            "≥ half of one uncontended appender's rows/s (ours)",
            share,
            0.5,
            at_least=True,
            shown=f"{fmt_ratio(share)}: ours {ours.rows_per_second:,.0f} rows/s "
            f"({ours.total_lost} lost) vs alone "
            f"{alone_rows['fermilink-state'].rows_per_second:,.0f}; the reference "
            f"{theirs.rows_per_second:,.0f} rows/s ({theirs.total_lost} lost)",
        )
    )
    bench.report.targets.append(
        Target(
            f"{writers} concurrent appenders: rows lost",
            "0",
            float(ours.total_lost),
            0.0,
            at_least=False,
            shown=f"{ours.lost_rows} lost, {ours.crashes} crashed appends "
            f"(the reference: {theirs.lost_rows} lost)",
        )
    )
    for name in LIBRARIES:
        runs = [run for run, _ in mixed[name]]
        bench.report.losses.append(
            LossRow(
                f"{writers} writers, each: append + event + state write/read",
                name,
                statistics.median(run.rows_per_second for run in runs),
                sum(run.lost_rows for run in runs),
                sum(run.crashes for run in runs),
                sum(events for _, events in mixed[name]),
                sum(run.state_crashes for run in runs),
                sum(run.bad_state_reads for run in runs),
            )
        )
    mixed_row = bench.report.losses[-1]
    bench.report.targets.append(
        Target(
            f"{writers} mixed writers: nothing lost",
            "0 rows, events or state writes lost",
            float(mixed_row.total_lost),
            0.0,
            at_least=False,
            shown=f"{mixed_row.total_lost} lost (the reference: "
            f"{bench.report.losses[-2].total_lost})",
        )
    )
    bench.report.notes.append(
        f"concurrent writers: the two libraries take turns on the same files, "
        f"{bench.plan.writer_rounds} rounds each; rows/s is the median round, losses "
        "the sum over the rounds"
    )


def _fresh(path: Path) -> Path:
    """``path``, with whatever an earlier run left there removed."""
    path.unlink(missing_ok=True)
    return path


def _loss_row(workload: str, name: str, runs: list[WriterRun]) -> LossRow:
    return LossRow(
        workload,
        name,
        statistics.median(run.rows_per_second for run in runs),
        sum(run.lost_rows for run in runs),
        sum(run.crashes for run in runs),
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
