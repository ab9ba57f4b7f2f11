"""``fermilink-state demo``: a short simulated campaign through the real library.

The controller (this process) takes the run lock, seeds the campaign files
and records a baseline; several worker processes then claim iterations from
``state.json``, "evaluate" made-up candidates, and record results and memory
events concurrently, each decision taken under the ledger's lock. Every write
goes through fermilink_state's public functions, so the folder it leaves is
what a real campaign leaves, and ``fermilink-state check`` finds it clean.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

from fermilink_state._atomic import atomic_write_text
from fermilink_state._clock import utc_now_z
from fermilink_state._document import edit_memory
from fermilink_state._errors import RunLockHeld, StateError
from fermilink_state._jsonio import read_json_file, write_json_file, write_state
from fermilink_state._layout import (
    default_program_path,
    ensure_optimize_root,
    memory_path,
    optimize_root,
    results_path,
    runs_root,
    safe_relative,
    state_path,
    worker_memory_path,
)
from fermilink_state._locking import locked
from fermilink_state._memory import (
    archive_worker_memory,
    ensure_memory_file,
    record_campaign_event,
    reset_worker_memory_file,
)
from fermilink_state._program import ensure_program_file
from fermilink_state._results import (
    append_result,
    best_result,
    ensure_results_file,
)
from fermilink_state._runlock import acquire_run_lock, release_run_lock, run_lock
from fermilink_state._wording import counted
from fermilink_state.cli._check import check_campaign
from fermilink_state.cli._plot import plot_ledger, render_svg
from fermilink_state.cli._status import render_summary, summarize, summary_json
from fermilink_state.cli._tally import tally_ledger

METRIC: Final = "runtime_s"
BASELINE_VALUE: Final = 1.0
MIN_IMPROVEMENT: Final = 0.01  # FermiLink's default minimum relative improvement
FAILURE_RATE: Final = 0.1
PLOT_NAME: Final = "plot.svg"
IDEAS: Final = (
    "unroll the inner loop x{n}",
    "tile the matrix in {n}x{n} blocks",
    "vectorize the reduction ({n} lanes)",
    "swap the loop order",
    "prefetch {n} rows ahead",
    "fuse the two kernels",
    "cache the lookup table ({n} entries)",
    "use float32 accumulators",
    "batch the I/O in {n} KiB chunks",
    "hoist the bounds check",
)
_WORKER_CODE: Final = (
    "import sys; from fermilink_state.cli._demo import worker_main; "
    "raise SystemExit(worker_main(sys.argv[1:]))"
)


class DemoError(StateError):
    """The demo could not run; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """How big and how slow the simulated campaign is."""

    workers: int = 4
    candidates: int = 40
    eval_seconds: float = 0.25
    seed: int | None = None


def run_demo(
    directory: Path | None, options: DemoOptions, out: TextIO, *, json_out: TextIO | None = None
) -> int:
    """Run the simulated campaign in ``directory`` (a fresh temp folder if ``None``).

    Prints progress, then the campaign's status, writes ``plot.svg`` into the
    folder and checks it; returns 0 when the check is clean, else 1. With
    ``json_out``, the outcome (status, plot, problems) goes there as JSON too.
    """
    project = _prepare_folder(directory)
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(10**6)
    print(f"fermilink-state demo: a simulated campaign in {project}", file=out)
    _seed_campaign(project)
    with run_lock(project, {"command": "fermilink-state demo"}) as holder:
        print(
            f"  run lock taken by this process (pid {holder['pid']}); "
            f"{options.workers} worker processes evaluate {options.candidates} "
            "made-up candidates",
            file=out,
        )
        _record_baseline(project, random.Random(seed))
        summaries = _run_workers(project, options, seed, out)
    refused = sum(1 for summary in summaries if summary.get("refused"))
    print(
        f"  the run lock refused a second controller {counted(refused, 'time')} "
        "(each worker tried to start one)",
        file=out,
    )
    print("", file=out)
    summary = summarize(project)
    print(render_summary(summary), file=out, end="")
    plot = project / PLOT_NAME
    atomic_write_text(plot, render_svg(plot_ledger(results_path(project))[0]))
    print(f"\nplot       {plot}", file=out)
    problems = check_campaign(project)
    if json_out is not None:
        outcome = {
            "status": summary_json(summary),
            "plot": str(plot),
            "clean": not problems,
            "problems": [problem.as_dict() for problem in problems],
        }
        json_out.write(json.dumps(outcome, indent=2, allow_nan=False) + "\n")
    if problems:
        print(f"check      {counted(len(problems), 'problem')}:", file=out)
        for problem in problems:
            print(f"  {problem}", file=out)
        return 1
    print("check      clean: every campaign file is well formed", file=out)
    print(
        f"\nlook around:\n  fermilink-state status {project}\n"
        f"  fermilink-state results {project} --best\n"
        f"  fermilink-state check {project}",
        file=out,
    )
    return 0


def _prepare_folder(directory: Path | None) -> Path:
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="fermilink-state-demo-"))
    if directory.exists() and not directory.is_dir():
        raise DemoError(f"{directory}: not a folder; pass a new or empty folder for the demo")
    if optimize_root(directory).exists():
        raise DemoError(
            f"{directory}: already holds a campaign ({optimize_root(directory).name}/); "
            "pass a new folder, or leave DIR out to use a fresh temporary one"
        )
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _seed_campaign(project: Path) -> None:
    ensure_optimize_root(project)
    ensure_program_file(
        default_program_path(project),
        content="# Demo program\n\nMake `runtime_s` smaller without breaking the tests.\n",
    )
    ensure_memory_file(
        memory_path(project),
        package_id="demo",
        benchmark_id="demo-benchmark",
        benchmark_rel="benchmark.yaml",
        optimize_branch="fermilink-optimize/demo",
    )
    reset_worker_memory_file(
        worker_memory_path(project),
        package_id="demo",
        benchmark_id="demo-benchmark",
        benchmark_rel="benchmark.yaml",
        program_rel=safe_relative(default_program_path(project), project),
        controller_memory_rel=safe_relative(memory_path(project), project),
        results_rel=safe_relative(results_path(project), project),
        worker_iteration=1,
    )
    ensure_results_file(results_path(project))
    write_state(
        state_path(project),
        {
            "schema_version": 1,
            "package_id": "demo",
            "benchmark_id": "demo-benchmark",
            "branch": "fermilink-optimize/demo",
            "started_at_utc": utc_now_z(),
            "iteration": 0,
            "accepted_count": 0,
            "rejected_count": 0,
            "consecutive_rejections": 0,
            "baseline_commit": "",
            "incumbent_commit": "",
        },
    )


def _commit(rng: random.Random) -> str:
    return f"{rng.getrandbits(48):012x}"


def _record_baseline(project: Path, rng: random.Random) -> None:
    commit = _commit(rng)
    append_result(
        results_path(project),
        iteration=0,
        commit=commit,
        status="baseline",
        primary_metric_name=METRIC,
        primary_metric_value=BASELINE_VALUE,
        description="baseline",
    )
    record_campaign_event(
        memory_path(project),
        commit=commit,
        primary_metric_name=METRIC,
        primary_metric_value=BASELINE_VALUE,
        status="baseline",
        description="baseline",
    )
    with locked(state_path(project)):
        state = read_json_file(state_path(project))
        state.update(baseline_commit=commit, incumbent_commit=commit)
        write_state(state_path(project), state)


def _run_workers(
    project: Path, options: DemoOptions, seed: int, out: TextIO
) -> list[dict[str, Any]]:
    args = [str(project), str(options.candidates), repr(options.eval_seconds), str(seed)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE, *args, str(number)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(1, options.workers + 1)
    ]
    progress = _Progress(out, options.candidates)
    try:
        while any(proc.poll() is None for proc in procs):
            progress.show(project)
            time.sleep(0.1)
    finally:
        for proc in procs:
            if proc.poll() is None:  # only after an interrupt
                proc.kill()
    outputs = [proc.communicate() for proc in procs]
    progress.show(project, final=True)
    summaries = []
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        if proc.returncode != 0:
            raise DemoError(
                f"a demo worker failed (exit {proc.returncode}): "
                f"{stderr.strip().splitlines()[-1] if stderr.strip() else 'no message'}"
            )
        summaries.append(json.loads(stdout.strip().splitlines()[-1]))
    return summaries


class _Progress:
    """One progress line: redrawn in place on a terminal, a few lines otherwise."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.out = out
        self.total = total
        self.tty = out.isatty()
        self.next_quarter = 1
        self.last = ""

    def show(self, project: Path, *, final: bool = False) -> None:
        tally, _ = tally_ledger(results_path(project), tail=0)
        done = tally.rows - tally.by_status["baseline"]
        accepted = tally.by_status["accepted"]
        best = tally.incumbent
        best_text = f"{best.primary_metric_value:.4g}" if best is not None else "-"
        filled = round(20 * done / max(self.total, 1))
        line = (
            f"  [{'#' * filled}{'.' * (20 - filled)}] {done}/{self.total} evaluated, "
            f"{accepted} accepted, best {METRIC}={best_text}"
        )
        if self.tty:
            if line != self.last or final:
                # Pad over the previous line, which may have been longer.
                padded = line.ljust(len(self.last))
                self.out.write("\r" + padded + ("\n" if final else ""))
                self.out.flush()
        elif final or done * 4 >= self.next_quarter * self.total:
            # Without a terminal, print at each quarter instead of redrawing.
            if line != self.last:
                self.out.write(line + "\n")
                self.out.flush()
            self.next_quarter = done * 4 // max(self.total, 1) + 1
        self.last = line


def worker_main(argv: list[str]) -> int:
    """A demo worker process: ``PROJECT CANDIDATES EVAL_SECONDS SEED NUMBER``.

    Prints one JSON line summarising its work; exits non-zero on a failure.
    """
    project = Path(argv[0])
    candidates = int(argv[1])
    eval_seconds = float(argv[2])
    number = int(argv[4])
    rng = random.Random(f"{argv[3]}-{number}")
    refused = _try_second_controller(project)
    with edit_memory(worker_memory_path(project)) as memory:
        memory.append("### Job tracking", f"- worker {number}: pid {os.getpid()} started")
    evaluated = 0
    while (claim := _claim_iteration(project, candidates)) is not None:
        iteration, incumbent = claim
        idea = rng.choice(IDEAS).format(n=rng.choice((2, 4, 8, 16, 32, 64)))
        with edit_memory(worker_memory_path(project)) as memory:
            memory.append("### Progress log", f"- worker {number}, iteration {iteration}: {idea}")
        time.sleep(eval_seconds * rng.uniform(0.5, 1.5))
        value: float | str = (
            "nan" if rng.random() < FAILURE_RATE else round(incumbent * rng.uniform(0.88, 1.12), 6)
        )
        _record(project, iteration, _commit(rng), idea, value)
        evaluated += 1
    print(json.dumps({"worker": number, "evaluated": evaluated, "refused": refused}))
    return 0


def _try_second_controller(project: Path) -> bool:
    """Try to start a second campaign; ``True`` when the run lock refuses it."""
    try:
        acquire_run_lock(project, {"command": "demo worker posing as a second controller"})
    except RunLockHeld:
        return True
    release_run_lock(project)
    return False


def _claim_iteration(project: Path, candidates: int) -> tuple[int, float] | None:
    """The next iteration number and the incumbent's value, or ``None`` when done."""
    path = state_path(project)
    with locked(path):
        state = read_json_file(path)
        iteration = int(state["iteration"]) + 1
        if iteration > candidates:
            return None
        state["iteration"] = iteration
        write_state(path, state)
    best = best_result(results_path(project))
    incumbent = best.numeric_value if best is not None else None
    return iteration, incumbent if incumbent is not None else BASELINE_VALUE


def _record(project: Path, iteration: int, commit: str, idea: str, value: float | str) -> None:
    ledger = results_path(project)
    # Decide and record under the ledger's lock, so two workers never both
    # beat the same incumbent; the memory event is written inside it too, so
    # memory.md lists events in ledger order.
    with locked(ledger):
        incumbent = best_result(ledger)
        best = incumbent.numeric_value if incumbent is not None else None
        if isinstance(value, str):
            status = "crash"
        elif best is None or value < best * (1 - MIN_IMPROVEMENT):
            status = "accepted"
        else:
            status = "rejected"
        append_result(
            ledger,
            iteration=iteration,
            commit=commit,
            status=status,
            primary_metric_name=METRIC,
            primary_metric_value=value,
            description=idea,
        )
        record_campaign_event(
            memory_path(project),
            commit=commit,
            primary_metric_name=METRIC,
            primary_metric_value=value,
            status=status,
            description=idea,
        )
    with locked(state_path(project)):
        state = read_json_file(state_path(project))
        if status == "accepted":
            state["accepted_count"] = int(state.get("accepted_count", 0)) + 1
            state["consecutive_rejections"] = 0
            state["incumbent_commit"] = commit
        else:
            state["rejected_count"] = int(state.get("rejected_count", 0)) + 1
            state["consecutive_rejections"] = int(state.get("consecutive_rejections", 0)) + 1
        write_state(state_path(project), state)
    run_dir = runs_root(project) / f"iter_{iteration:04d}"
    write_json_file(
        run_dir / "candidate.json",
        {"iteration": iteration, "commit": commit, "idea": idea, "status": status, METRIC: value},
    )
    archive_worker_memory(worker_memory_path(project), run_dir)
