"""The ledger: its tail against the reference; a million rows against one csv.reader pass."""

from __future__ import annotations

import contextlib
import csv
import functools
import io
from collections.abc import Callable

import _workloads as work
from _common import OPEN_GOAL, Bench, Row, Target, X, fmt_ratio, fmt_size, fmt_time, interleaved


def tail(bench: Bench) -> None:
    """``recent_results_text(limit=8)``: the reference reads the whole ledger."""
    folder = bench.subfolder("tail")
    ours_costs: list[float] = []
    speedup = 0.0
    for rows in bench.plan.tail_rows:
        bench.progress(f"recent_results_text, {rows:,} rows")
        path = folder / f"results-{rows}.tsv"
        size = work.write_ledger(bench.reference, path, rows)
        theirs = functools.partial(bench.reference.recent_results_text, path, limit=8)
        mine = functools.partial(bench.ours.recent_results_text, path, limit=8)
        bench.check_same(f"recent_results_text at {rows:,} rows", theirs(), mine())
        # Several reference reads per round of the short ledgers, one of the longest.
        costs = interleaved(
            {"reference": theirs, "ours": mine},
            rounds=bench.plan.rounds,
            repeat={"reference": max(1, 200_000 // rows), "ours": 200},
        )
        row = Row(
            f"`recent_results_text`, {rows:,} rows ({fmt_size(size)})",
            costs["reference"],
            costs["ours"],
        )
        bench.report.rows.append(row)
        ours_costs.append(costs["ours"])
        speedup = costs["reference"] / costs["ours"]
        path.unlink()
    first, last = bench.plan.tail_rows[0], bench.plan.tail_rows[-1]
    bench.report.growth.append(
        f"`recent_results_text`: {last // first:,}{X} the rows costs ours "
        f"{fmt_ratio(ours_costs[-1] / ours_costs[0])} the time (flat in the file's "
        "length); the reference's time grows with the file"
    )
    bench.report.targets.append(
        Target(
            f"tail of a {last:,}-row ledger",
            f"≥ 1,000{X} faster than the reference",
            speedup,
            1000.0,
            at_least=True,
            shown=fmt_ratio(speedup),
        )
    )


def at_scale(bench: Bench) -> None:
    """A million-row ledger: each reader and command against one csv.reader pass.

    Every function reads the same file in one interleaved run, so the ratios
    hold however loaded the machine is. The commands run in this process
    (``main([...])``, output discarded), as a user's shell would run them
    minus the interpreter's start-up.
    """
    from fermilink_state.cli._main import main as cli
    from fermilink_state.testing import seed_project

    rows = bench.plan.scale_rows
    bench.progress(f"a {rows:,}-row ledger: readers and commands")
    project = seed_project(bench.subfolder("scale") / "project")
    size = work.write_ledger(bench.reference, project.results_path, rows)
    chart = project.root / "chart.svg"
    root = str(project.root)

    def csv_pass() -> None:
        with open(project.results_path, encoding="utf-8", newline="") as handle:
            for _ in csv.reader(handle, delimiter="\t"):
                pass

    def command(*argv: str) -> Callable[[], object]:
        def run() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                code = cli(list(argv))
            if code not in (0, 1):
                raise RuntimeError(f"fermilink-state {' '.join(argv)} exited {code}")

        return run

    calls: dict[str, Callable[[], object]] = {
        "one csv.reader pass": csv_pass,
        "`read_results`": functools.partial(bench.ours.read_results, project.results_path),
        "`best_result(path)`": functools.partial(bench.ours.best_result, project.results_path),
        "`fermilink-state status`": command("status", root),
        "`fermilink-state results --best`": command("results", root, "--best"),
        "`fermilink-state check`": command("check", root),
        "`fermilink-state plot`": command("plot", root, "-o", str(chart)),
    }
    csv_pass()  # the file into the page cache, as for every call after it
    # No warm-up round: at this size a round is long enough to need none.
    costs = interleaved(
        calls, rounds=bench.plan.scale_rounds, repeat=dict.fromkeys(calls, 1), warm_up=False
    )
    floor = costs["one csv.reader pass"]
    limits = {"`read_results`": 3.0, "`fermilink-state plot`": 2.0}
    for name, seconds in costs.items():
        ratio = seconds / floor
        bench.report.scale.append((name, seconds, ratio))
        if name == "one csv.reader pass":
            continue
        limit = limits.get(name, 2.0)
        bench.report.targets.append(
            Target(
                f"{name}, {rows:,} rows",
                f"≤ {limit:g}{X} one csv.reader pass over the same file",
                ratio,
                limit,
                at_least=False,
                shown=f"{fmt_ratio(ratio)} ({fmt_time(seconds)} vs {fmt_time(floor)})",
                not_gated=OPEN_GOAL,
            )
        )
    plot_size = chart.stat().st_size
    bench.report.targets.append(
        Target(
            f"`plot` output, {rows:,} rows",
            "≤ 1 MB whatever the ledger's length",
            plot_size / 1e6,
            1.0,
            at_least=False,
            shown=fmt_size(plot_size),
        )
    )
    bench.report.notes.append(
        f"at scale: a {rows:,}-row ledger ({fmt_size(size)}); each reader and command is "
        f"timed against one csv.reader pass over the same file in the same interleaved "
        f"run ({bench.plan.scale_rounds} rounds; the commands run in-process, output "
        "discarded)"
    )
