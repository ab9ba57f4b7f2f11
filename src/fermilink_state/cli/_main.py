"""The ``fermilink-state`` command line (also ``python -m fermilink_state``).

Argument wiring only: each subcommand calls an engine module (``_status``,
``_check``, ``_unlock``, ``_plot``, ``_demo``). Expected failures print one
line ``fermilink-state: error: ...`` on stderr and exit non-zero (2 when ROOT
is not a campaign, 1 otherwise); ``check`` exits 1 when it found problems.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from fermilink_state._errors import StateError

PROG: Final = "fermilink-state"
EXIT_PROBLEMS: Final = 1
EXIT_USAGE: Final = 2
DEFAULT_PLOT: Final = "plot.svg"
ROOT_HELP: Final = "the project root holding .fermilink-optimize/ (default: the current folder)"


class CommandError(Exception):
    """An expected failure: printed as one line, exits with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 60:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 60 seconds")
    return value


def _print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, allow_nan=False) + "\n")


def _cmd_status(args: argparse.Namespace) -> int:
    from fermilink_state.cli._status import render_summary, summarize, summary_json

    summary = summarize(args.root, direction=args.direction, tail=args.tail)
    if args.json:
        _print_json(summary_json(summary))
    else:
        sys.stdout.write(render_summary(summary))
    return 0


def _cmd_results(args: argparse.Namespace) -> int:
    from collections import deque

    from fermilink_state._layout import results_path
    from fermilink_state._results import ResultRow, best_result, ledger_blocks, read_results
    from fermilink_state.cli._status import locate_campaign, render_table, row_json

    path = results_path(locate_campaign(args.root))
    rows: list[ResultRow] = []
    if not path.exists():
        pass
    elif args.best:
        # Both stream the ledger a block at a time: no list of every row.
        best = best_result(path, direction=args.direction)
        if best is None:
            raise CommandError(
                f"{path}: no baseline or accepted row with a numeric value yet, so no best result"
            )
        rows = [best]
    elif args.tail is not None:
        recent: deque[ResultRow] = deque(maxlen=args.tail)
        for block in ledger_blocks(path):
            recent.extend(block.last(args.tail))
        rows = list(recent)
    else:
        rows = read_results(path)
    if args.json:
        payload = [row_json(row) for row in rows]
        _print_json(payload[0] if args.best else payload)
    elif rows:
        sys.stdout.write(render_table(rows))
    else:
        sys.stdout.write(f"no results recorded yet in {path}\n")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from fermilink_state._layout import optimize_root
    from fermilink_state._wording import counted
    from fermilink_state.cli._check import check_campaign
    from fermilink_state.cli._status import locate_campaign

    problems = check_campaign(args.root)
    if args.json:
        _print_json(
            {
                "project_root": str(locate_campaign(args.root).absolute()),
                "clean": not problems,
                "problems": [problem.as_dict() for problem in problems],
            }
        )
    else:
        for problem in problems:
            sys.stdout.write(f"{problem}\n")
        where = optimize_root(locate_campaign(args.root))
        debris = sum(problem.debris for problem in problems)
        if problems:
            sys.stdout.write(f"{counted(len(problems), 'problem')} in {where}")
            if debris:
                sys.stdout.write(f" ({debris} of them crash debris that the next write repairs)")
            sys.stdout.write("\n")
        else:
            sys.stdout.write(f"no problems in {where}\n")
    return EXIT_PROBLEMS if problems else 0


def _cmd_unlock(args: argparse.Namespace) -> int:
    from fermilink_state.cli._unlock import unlock_campaign

    status = unlock_campaign(args.root, force=args.force)
    if args.json:
        from fermilink_state.cli._status import lock_json

        _print_json(
            {"path": str(status.path), "removed": status.state != "inactive", **lock_json(status)}
        )
    elif status.state == "inactive":
        sys.stdout.write(f"no run lock at {status.path}; nothing to do\n")
    elif status.state == "inactive_stale":
        sys.stdout.write(f"removed the stale run lock {status.path} ({status.reason})\n")
    else:
        sys.stdout.write(f"removed the run lock {status.path} with --force ({status.reason})\n")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from fermilink_state._atomic import atomic_write_text
    from fermilink_state._layout import results_path
    from fermilink_state._wording import counted
    from fermilink_state.cli._plot import plot_ledger, render_svg
    from fermilink_state.cli._status import locate_campaign

    if args.output == "-" and args.json:
        raise CommandError("-o - writes the SVG to stdout, so --json cannot: drop one", EXIT_USAGE)
    project = locate_campaign(args.root)
    path = results_path(project)
    data, skipped = plot_ledger(path)
    if skipped:
        sys.stderr.write(
            f"{PROG}: warning: {path}: skipped {counted(len(skipped), 'malformed line')}; "
            "run `fermilink-state check` for details\n"
        )
    svg = render_svg(data, direction=args.direction, title=args.title)
    # Beside the campaign folder: in the project root, not among its state files.
    output = Path(args.output) if args.output is not None else project / DEFAULT_PLOT
    if args.output == "-":
        sys.stdout.write(svg)
        return 0
    atomic_write_text(output, svg)
    result = {"path": str(output), "results": data.total, "bytes": len(svg.encode("utf-8"))}
    if args.json:
        _print_json(result)
    else:
        sys.stdout.write(f"wrote {output} ({counted(data.total, 'result')})\n")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from fermilink_state.cli._demo import DemoOptions, run_demo

    options = DemoOptions(
        workers=args.workers,
        candidates=args.candidates,
        eval_seconds=args.eval_seconds,
        seed=args.seed,
    )
    if args.json:
        # The story goes to stderr; stdout carries only the JSON outcome.
        return run_demo(args.dir, options, sys.stderr, json_out=sys.stdout)
    return run_demo(args.dir, options, sys.stdout)


def _cmd_exec(args: argparse.Namespace) -> int:
    from fermilink_state.cli._exec import ExecError, exec_adopted

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise CommandError(
            "exec needs a command after `--`, e.g. fermilink-state exec -- fermilink optimize",
            EXIT_USAGE,
        )
    try:
        exec_adopted(command)
    except ExecError as error:
        raise CommandError(str(error), error.code) from None


def _add_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "root", metavar="ROOT", nargs="?", type=Path, default=Path("."), help=ROOT_HELP
    )


def _add_direction(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--direction",
        choices=("minimize", "maximize"),
        default="minimize",
        help="whether a smaller or a larger primary metric is better (default: minimize)",
    )


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from fermilink_state.cli._status import DEFAULT_TAIL

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect, check and repair FermiLink optimize campaigns "
        "(the .fermilink-optimize/ folder).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str, run: Callable[[argparse.Namespace], int]) -> Any:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(run=run)
        return sub

    status = command(
        "status",
        "iteration, accepted / rejected counts, incumbent, run-lock state and the last results",
        _cmd_status,
    )
    _add_root(status)
    _add_direction(status)
    status.add_argument(
        "--tail",
        type=_positive_int,
        default=DEFAULT_TAIL,
        metavar="N",
        help=f"how many recent results to show (default: {DEFAULT_TAIL})",
    )
    _add_json(status)

    results = command("results", "print the results ledger (results.tsv)", _cmd_results)
    _add_root(results)
    results.add_argument("--tail", type=_positive_int, metavar="N", help="only the last N rows")
    results.add_argument(
        "--best",
        action="store_true",
        help="only the incumbent: the best baseline or accepted row with a numeric value",
    )
    _add_direction(results)
    _add_json(results)

    check = command(
        "check",
        "validate every campaign file and list each problem with how to fix it; "
        "changes nothing (exit 0: clean, 1: problems, 2: usage)",
        _cmd_check,
    )
    _add_root(check)
    _add_json(check)

    unlock = command("unlock", "remove a stale run lock (one whose process is gone)", _cmd_unlock)
    _add_root(unlock)
    unlock.add_argument(
        "--force",
        action="store_true",
        help="remove the lock even if its holder looks alive (or is on another host)",
    )
    _add_json(unlock)

    plot = command(
        "plot",
        "draw the primary metric over iterations as an SVG file",
        _cmd_plot,
    )
    _add_root(plot)
    plot.add_argument(
        "-o",
        "--output",
        metavar="FILE.svg",
        help=f"where to write ('-': stdout; default: {DEFAULT_PLOT} in the project root, "
        "beside .fermilink-optimize/)",
    )
    _add_direction(plot)
    plot.add_argument("--title", help="the chart's title (default: '<metric> over iterations')")
    _add_json(plot)

    demo = command(
        "demo",
        "run a short simulated campaign with concurrent worker processes, "
        "then print its status and write plot.svg",
        _cmd_demo,
    )
    demo.add_argument(
        "dir",
        metavar="DIR",
        nargs="?",
        type=Path,
        help="a new or empty folder for the campaign (default: a fresh temporary folder)",
    )
    demo.add_argument("--workers", type=_positive_int, default=4, help="worker processes (4)")
    demo.add_argument(
        "--candidates", type=_positive_int, default=40, help="candidates to evaluate (40)"
    )
    demo.add_argument(
        "--eval-seconds",
        type=_seconds,
        default=0.25,
        metavar="S",
        help="mean seconds one made-up evaluation takes (0.25)",
    )
    demo.add_argument("--seed", type=int, help="random seed for repeatable candidates")
    _add_json(demo)

    run = command(
        "exec",
        "run a command (e.g. `fermilink optimize ...`) with fermilink_state.adopt.install() "
        "active in every Python process it starts; exits with the command's exit code",
        _cmd_exec,
    )
    run.add_argument(
        "command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...", help="the command to run"
    )
    return parser


def _version() -> str:
    from fermilink_state._version import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    from fermilink_state.cli._status import CampaignNotFoundError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    try:
        code: int = args.run(args)
    except CampaignNotFoundError as error:
        return _fail(str(error), EXIT_USAGE)
    except CommandError as error:
        return _fail(str(error), error.code)
    except (StateError, OSError) as error:
        return _fail(_describe(error), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def _fail(message: str, code: int) -> int:
    line = " ".join(message.split())  # always exactly one line
    sys.stderr.write(f"{PROG}: error: {line}\n")
    return code
