"""Racers for FermiLink's own campaign writers, with and without ``fermilink_state.adopt``.

Every worker is a top-level function (spawn children import it) that starts
from a clean interpreter, calls ``install()`` first when told to adopt, and
only then imports FermiLink, so each race measures one configuration:
FermiLink as shipped, or FermiLink with the adapter. Losses are counted from
the files' bytes with plain string operations, not with this library.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import fermilink_state as fs
from support_concurrency import MP, WORKER_TIMEOUT, error_texts, run_processes

PROGRESS_HEADING: Final = "### Progress log"
MEMORY_SEED: Final = (
    "# Optimize memory\n\n"
    "## Campaign\n- package_id: pkg\n\n"
    f"{PROGRESS_HEADING}\n- Campaign initialized.\n\n"
    "### Open hypotheses\n- none yet\n"
)


def fermilink_importable() -> str | None:
    """Why FermiLink's controller cannot be imported here, or ``None`` when it can."""
    try:
        importlib.import_module("fermilink.optimize.main")
    except ImportError as error:
        return (
            f"needs FermiLink 0.3.10 with its dependencies ({error}); "
            "run `tox -e fermilink`, which installs them"
        )
    return None


def _controller(adopt: bool) -> ModuleType:
    if adopt:
        from fermilink_state.adopt import install

        install()
    return importlib.import_module("fermilink.optimize.main")


def _report(errors_dir: str, name: str) -> None:
    Path(errors_dir, f"{name}.txt").write_text(traceback.format_exc(), encoding="utf-8")


# -- _write_campaign_run_lock: N processes, released together each round ------


def run_lock_racer(
    *,
    root: str,
    racer: int,
    rounds: int,
    barrier: Barrier,
    adopt: bool,
    caller: str,
    pause: float,
    wins_dir: str,
    errors_dir: str,
) -> None:
    """Each round: wait for everyone, try to take the run lock at once, record a win.

    ``caller`` is ``"fermilink"`` (FermiLink's ``_write_campaign_run_lock``) or
    ``"check-then-write"`` (the same pattern written against whatever
    ``fermilink.optimize.state`` is: the reference, or this library when
    ``adopt``). A winner is a racer whose call returned; it stays alive (so
    its lock stays live) until every racer has tried; racer 0 then removes
    the lock for the next round. ``pause`` seconds pass between reading the
    lock and going on, as on a slow (network) file system.
    """
    project = Path(root)
    try:
        if caller == "fermilink":
            controller = _controller(adopt)
            _pause_after_reading(controller.optimize_state, pause)

            def take() -> None:
                controller._write_campaign_run_lock(
                    project,
                    mode="expert",
                    package_id=f"racer-{racer}",
                    benchmark_path=project / "benchmark.yaml",
                    prompt_path=None,
                )

        else:
            if adopt:
                from fermilink_state.adopt import install

                install()
            state = importlib.import_module("fermilink.optimize.state")
            _pause_after_reading(state, pause)
            take = _check_then_write(state, project, racer)
        for number in range(rounds):
            barrier.wait(timeout=WORKER_TIMEOUT)
            won = True
            try:
                take()
            except FileNotFoundError:
                # The reference's writers share one temp name (run.lock.json.tmp):
                # a racer whose temp another renamed first did not win.
                if adopt:
                    raise
                won = False
            except Exception as error:  # the loser's refusal, whichever form it takes
                if "active" not in str(error) and "already running" not in str(error):
                    raise
                won = False
            if won:
                Path(wins_dir, f"round-{number}-{racer}.won").write_text(str(os.getpid()))
            barrier.wait(timeout=WORKER_TIMEOUT)
            if racer == 0:
                lock_file = project / ".fermilink-optimize" / "run.lock.json"
                with contextlib.suppress(FileNotFoundError):
                    Path(wins_dir, f"round-{number}.lock").write_bytes(lock_file.read_bytes())
                    lock_file.unlink()
            barrier.wait(timeout=WORKER_TIMEOUT)
    except BaseException:
        _report(errors_dir, f"racer-{racer}")
        barrier.abort()
        raise SystemExit(1) from None


def _pause_after_reading(state: ModuleType, pause: float) -> None:
    if not pause:
        return
    read = state.load_run_lock

    def slow_read(path: Path) -> Any:
        holder = read(path)
        time.sleep(pause)
        return holder

    setattr(state, "load_run_lock", slow_read)  # noqa: B010 - a module attribute


def _check_then_write(state: ModuleType, project: Path, racer: int) -> Callable[[], None]:
    def take() -> None:
        lock_path = state.run_lock_path(project)
        holder = state.load_run_lock(lock_path)
        if isinstance(holder, dict):
            pid = int(holder.get("pid") or 0)
            if pid > 0 and pid != os.getpid() and state.pid_is_running(pid):
                raise RuntimeError(f"campaign active (pid={pid})")
        state.write_run_lock(lock_path, {"pid": os.getpid(), "racer": racer})

    return take


def race_run_lock(
    root: Path,
    *,
    racers: int,
    rounds: int,
    adopt: bool,
    caller: str = "fermilink",
    pause: float = 0.0,
) -> tuple[list[int], str]:
    """Per round, how many racers believe they hold the lock; and worker errors.

    A round is whole when that count is 1 and the lock file's bytes name that
    winner's pid; a round where the file names another pid (the reference's
    racers share one temp file) counts its winner twice, as a loss.
    """
    (root / ".fermilink-optimize").mkdir(parents=True, exist_ok=True)
    wins_dir, errors_dir = root / "wins", root / "errors"
    wins_dir.mkdir()
    errors_dir.mkdir()
    barrier = MP.Barrier(racers)
    codes = run_processes(
        run_lock_racer,
        [
            {
                "root": str(root),
                "racer": racer,
                "rounds": rounds,
                "barrier": barrier,
                "adopt": adopt,
                "caller": caller,
                "pause": pause,
                "wins_dir": str(wins_dir),
                "errors_dir": str(errors_dir),
            }
            for racer in range(racers)
        ],
    )
    errors = error_texts(errors_dir) + (f"\nexit codes {codes}" if any(codes) else "")
    winners: list[int] = []
    for number in range(rounds):
        won_pids = [path.read_text() for path in wins_dir.glob(f"round-{number}-*.won")]
        lock_file = wins_dir / f"round-{number}.lock"
        held = lock_file.read_bytes() if lock_file.exists() else b""
        # Plain bytes: the lock names exactly one pid, and it must be a winner's.
        named = [pid for pid in won_pids if f'"pid": {pid},'.encode() in held]
        winners.append(len(won_pids) if len(named) == 1 else len(won_pids) + 1)
    return winners, errors


# -- _append_benchmark_launcher_memory_note: N processes x M notes -------------


def note_token(writer: int, note: int) -> str:
    """The unique reason string of one note."""
    return f"note-w{writer}-n{note}-end"


def memory_note_writer(
    *, memory: str, writer: int, notes: int, barrier: Barrier, adopt: bool, errors_dir: str
) -> None:
    """Append ``notes`` launcher notes to memory.md with FermiLink's own function."""
    try:
        controller = _controller(adopt)
        barrier.wait(timeout=WORKER_TIMEOUT)
        for note in range(notes):
            controller._append_benchmark_launcher_memory_note(
                Path(memory), event="ready", launcher=None, reason=note_token(writer, note)
            )
    except BaseException:
        _report(errors_dir, f"writer-{writer}")
        raise SystemExit(1) from None


def race_memory_notes(root: Path, *, writers: int, notes: int, adopt: bool) -> tuple[int, str]:
    """How many of ``writers * notes`` notes memory.md kept, and worker errors."""
    memory = root / ".fermilink-optimize" / "memory.md"
    memory.parent.mkdir(parents=True, exist_ok=True)
    memory.write_text(MEMORY_SEED, encoding="utf-8")
    errors_dir = root / "errors"
    errors_dir.mkdir()
    barrier = MP.Barrier(writers)
    codes = run_processes(
        memory_note_writer,
        [
            {
                "memory": str(memory),
                "writer": writer,
                "notes": notes,
                "barrier": barrier,
                "adopt": adopt,
                "errors_dir": str(errors_dir),
            }
            for writer in range(writers)
        ],
    )
    data = memory.read_bytes()
    kept = sum(
        data.count(f"({note_token(writer, note)})".encode()) == 1
        for writer in range(writers)
        for note in range(notes)
    )
    errors = error_texts(errors_dir) + (f"\nexit codes {codes}" if any(codes) else "")
    if not data.startswith(b"# Optimize memory\n") or b"### Open hypotheses\n" not in data:
        errors += f"\nmemory.md lost its template: {data[:200]!r}"
    return kept, errors


# -- whole-file writers: a writer replaces a file while a reader watches ------

Versions = tuple[bytes, bytes]
Looker = Callable[[], Iterator[bool]]


def _versions(size: int) -> Versions:
    return (b"A" * size + b"\nend-A\n", b"B" * size + b"\nend-B\n")


def _write_version(controller: ModuleType, writer: str, target: Path, text: str) -> None:
    """Make FermiLink's ``writer`` write ``text`` to ``target``, by its own arguments."""
    if writer == "_write_run_text":
        controller._write_run_text(target.parent, target.name, text)
    elif writer == "_write_run_json":
        controller._write_run_json(target.parent, target.name, {"text": text})
    elif writer == "_append_pre_command_repo_side_effect_notes":
        controller._append_pre_command_repo_side_effect_notes(
            target, cleanup_untracked=["left-behind.tmp"], new_changed_paths=[]
        )
    elif writer == "_goal_scaffold":
        project = target.parents[2]
        controller._goal_scaffold(
            project,
            package_id="pkg",
            goal_spec={"raw_text": "# Goal\n"},
            goal_path=project / "goal.md",
            language="python",
            analysis={},
            benchmark_yaml_text=text,
            runner_script_text="print('run')\n",
            review_notes="",
            hpc_profile="",
        )
    elif writer == "_write_benchmark_contract_file":
        controller._write_benchmark_contract_file(target, {"text": text})
    elif writer == "_ensure_text_file":
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        controller._ensure_text_file(target, content=text)
    elif writer == "_sync_worker_outputs_from_workspace":
        workspace = target.parent / f"workspace-{os.getpid()}"
        source = workspace / "worker_memory.md"
        source.parent.mkdir(exist_ok=True)
        source.write_text(text, encoding="utf-8")
        controller._sync_worker_outputs_from_workspace(
            project_root=workspace,
            worker_root=workspace,
            worker_memory_rel="worker_memory.md",
            worker_memory_path=target,
            editable_paths=[],
        )
    else:  # pragma: no cover - a test names an unknown writer
        raise ValueError(writer)


def whole_file_writer(
    *, target: str, writer: str, rounds: int, size: int, adopt: bool, ready: Event, errors_dir: str
) -> None:
    """Replace ``target`` ``rounds`` times through FermiLink's ``writer``, alternating versions."""
    try:
        controller = _controller(adopt)
        first, second = (version.decode() for version in _versions(size))
        ready.wait(WORKER_TIMEOUT)
        for number in range(rounds):
            _write_version(controller, writer, Path(target), first if number % 2 else second)
    except BaseException:
        _report(errors_dir, "writer")
        raise SystemExit(1) from None


def _shown_by_writer(data: bytes, versions: Versions, writer: str) -> bool:
    """Whether ``data`` is a whole file as ``writer`` writes it (plain bytes checks)."""
    if data in versions:
        return True
    if writer == "_write_benchmark_contract_file":  # YAML of {"text": ...}
        return data.startswith(b"text: ") and data.endswith(b"\n") and data.count(b"end-") == 1
    if writer == "_write_run_json":  # JSON of {"text": ...}
        return data.startswith(b'{\n  "text": "') and data.endswith(b'"\n}\n')
    if writer == "_append_pre_command_repo_side_effect_notes":  # the seed, then whole notes
        return data.startswith(versions[0].rstrip()) and data.endswith(b"- left-behind.tmp\n")
    return False


def watched_file(root: Path, writer: str) -> Path:
    """The file ``writer`` replaces in the race."""
    if writer == "_goal_scaffold":
        return fs.goal_benchmark_path(root)
    return root / ".fermilink-optimize" / "runs" / "iter_0001" / "watched.txt"


def watch_while_writing(
    writer: Callable[..., None], kwargs: dict[str, Any], errors_dir: Path, look: Looker
) -> tuple[int, int, str]:
    """Run ``writer`` in a process; while it runs, count what ``look()`` finds.

    ``look()`` reads the watched files once and yields, per file read,
    whether it was whole. Returns torn reads, all reads, and the writer's errors.
    """
    ready = MP.Event()
    process = MP.Process(
        target=writer, kwargs={**kwargs, "ready": ready, "errors_dir": str(errors_dir)}
    )
    process.start()
    torn = reads = 0
    ready.set()
    while process.is_alive():
        for whole in look():
            reads += 1
            torn += not whole
    process.join(WORKER_TIMEOUT)
    errors = error_texts(errors_dir)
    if process.exitcode:
        errors += f"\nexit code {process.exitcode}"
    return torn, reads, errors


def race_whole_file(
    root: Path, writer: str, *, rounds: int, size: int, adopt: bool
) -> tuple[int, int, str]:
    """Reads that saw a torn, empty or missing file, out of how many, while ``writer`` wrote."""
    target = watched_file(root, writer)
    target.parent.mkdir(parents=True)
    versions = _versions(size)
    target.write_bytes(versions[0])
    errors_dir = root / "errors"
    errors_dir.mkdir()

    def look() -> Iterator[bool]:
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            # Only _ensure_text_file's racer removes the file (so that it writes).
            data = versions[0] if writer == "_ensure_text_file" else b""
        yield _shown_by_writer(data, versions, writer)

    kwargs = {"target": str(target), "writer": writer, "rounds": rounds, "size": size}
    return watch_while_writing(whole_file_writer, {**kwargs, "adopt": adopt}, errors_dir, look)


# -- inputs staging: several stagings of inputs/worker/ at once ------------------


def _input_names() -> list[str]:
    return [f"case-{number:02d}.dat" for number in range(INPUT_FILES)]


def _goal_spec() -> dict[str, Any]:
    return {
        "raw_text": "# Goal\n",
        "workloads": [f"{name[:-4]}: `run {name}`" for name in _input_names()],
    }


def stage_inputs(
    *, root: str, stager: str, racer: int, rounds: int, barrier: Barrier, adopt: bool
) -> None:
    """Stage the goal's inputs ``rounds`` times with FermiLink's ``stager``.

    ``_stage_goal_referenced_inputs`` copies the goal's files into inputs/all/;
    ``_prepare_goal_worker_inputs_subset`` copies inputs/all/ into
    inputs/worker/. A staging that raised, or that returned with fewer files
    than there are, writes ``errors/racer-<n>-<round>.txt``.
    """
    project = Path(root)
    errors_dir = project / "errors"
    controller = _controller(adopt)
    barrier.wait(timeout=WORKER_TIMEOUT)
    for number in range(rounds):
        try:
            if stager == "_stage_goal_referenced_inputs":
                staged = controller._stage_goal_referenced_inputs(
                    project, goal_path=project / "goal" / "goal.md", goal_spec=_goal_spec()
                )
                files = staged["all_files"]
            else:
                staged = controller._prepare_goal_worker_inputs_subset(
                    project, split_enabled=False, train_case_ids=[]
                )
                files = staged["worker_files"]
            if len(files) != INPUT_FILES:
                raise AssertionError(f"staged {len(files)} of {INPUT_FILES}")
        except Exception:
            _report(str(errors_dir), f"racer-{racer}-{number}")


INPUT_FILES: Final = 40
INPUT_BYTES: Final = 64 * 1024


def race_input_staging(
    root: Path, stager: str, *, racers: int, rounds: int, adopt: bool
) -> tuple[int, str]:
    """Stagings that failed plus files missing or short in the final tree; and details."""
    sources = root / "goal" if stager == "_stage_goal_referenced_inputs" else None
    all_root = fs.goal_inputs_all_root(root)
    names = _input_names()
    for name in names:
        source = (sources or all_root) / name
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(name.encode() * (INPUT_BYTES // len(name)))
    manifest = {"all_files": names, "shared_files": [], "case_file_map": {}}
    fs.goal_inputs_manifest_path(root).parent.mkdir(parents=True, exist_ok=True)
    fs.goal_inputs_manifest_path(root).write_text(json.dumps(manifest), encoding="utf-8")
    (root / "errors").mkdir()
    barrier = MP.Barrier(racers)
    codes = run_processes(
        stage_inputs,
        [
            {
                "root": str(root),
                "stager": stager,
                "racer": racer,
                "rounds": rounds,
                "barrier": barrier,
                "adopt": adopt,
            }
            for racer in range(racers)
        ],
    )
    failed = len(list((root / "errors").glob("*.txt")))
    staged_root = all_root if sources else fs.goal_inputs_worker_root(root)
    expected_root = sources or all_root
    problems = [
        name
        for name in names
        if not (staged_root / name).is_file()
        or (staged_root / name).read_bytes() != (expected_root / name).read_bytes()
    ]
    detail = f"exit codes {codes}; final tree missing or short: {problems[:5]}"
    if failed:
        detail += "\n" + error_texts(root / "errors")[:3000]
    shutil.rmtree(root / "errors")
    return failed + len(problems), detail


# -- _run_benchmark_suite: a controller benchmarking while a reader watches runs/ --

BENCH_SCRIPT: Final = """
import json, sys
sys.stderr.write("E" * {size} + "\\nend-E\\n")
print(json.dumps({{"benchmark_id": "race", "correctness_ok": True, "cases": [],
    "summary_metrics": {{"weighted_median_wall_seconds": 1.0, "peak_rss_mb": 0.0}}}}))
"""


PRE_COMMAND: Final = 'import sys; sys.stderr.write("E" * {size} + "\\nend-E\\n")'


def make_benchmark_repository(root: Path, *, size: int) -> Path:
    """A git repository with a benchmark whose runs write ``size`` bytes of stderr."""
    root.mkdir(parents=True)
    (root / "bench.py").write_text(BENCH_SCRIPT.format(size=size), encoding="utf-8")
    benchmark = {
        "schema_version": 1,
        "benchmark_id": "race",
        "repo": {"editable_paths": ["solver.py"]},
        "controller": {
            "timeout_seconds": 60,
            "warmup_runs": 1,
            "measured_runs": 2,
            "objective": {
                "primary_metric": "weighted_median_wall_seconds",
                "direction": "minimize",
            },
        },
        "campaign": {"max_iterations": 1, "stop_on_consecutive_rejections": 1},
        "correctness": {"mode": "runner_only"},
        "runtime": {
            "mode": "direct",
            # A pre-command that writes the same stderr: its log is watched too.
            "pre_commands": [[sys.executable, "-c", PRE_COMMAND.format(size=size)]],
            "command": [sys.executable, "bench.py"],
        },
        "cases": [],
    }
    # JSON is YAML too, and needs no YAML library here.
    (root / "benchmark.yaml").write_text(json.dumps(benchmark), encoding="utf-8")
    identity = ["-c", "user.name=race", "-c", "user.email=race@example.com"]
    for command in (["init", "-q"], ["add", "."], [*identity, "commit", "-q", "-m", "seed"]):
        subprocess.run(["git", *command], cwd=root, check=True, capture_output=True)
    return root / "benchmark.yaml"


def benchmark_writer(
    *, root: str, entry: str, rounds: int, adopt: bool, ready: Event, errors_dir: str
) -> None:
    """Benchmark ``rounds`` times into one run folder through FermiLink's ``entry``.

    ``_run_benchmark_suite`` (pre-commands included: their marker is removed
    each round) or ``_collect_submitted_benchmark_payload`` (the result
    command of a submitted benchmark).
    """
    try:
        controller = _controller(adopt)
        project = Path(root)
        benchmark = project / "benchmark.yaml"
        payload = controller._load_benchmark(benchmark)
        ready.wait(WORKER_TIMEOUT)
        run_dir = fs.runs_root(project) / "iter_0001"
        for _ in range(rounds):
            if entry == "_run_benchmark_suite":
                (run_dir / "pre_commands.ok.json").unlink(missing_ok=True)
                result = controller._run_benchmark_suite(
                    project,
                    benchmark_path=benchmark,
                    benchmark_payload=payload,
                    run_dir=run_dir,
                    timeout_seconds=60,
                )
                ok = result.get("status") == "ok"
            else:
                run_dir.mkdir(parents=True, exist_ok=True)
                result = controller._collect_submitted_benchmark_payload(
                    project,
                    benchmark_path=benchmark,
                    benchmark_payload=payload,
                    runtime={"result_command": [sys.executable, "bench.py"]},
                    env=dict(os.environ),
                    run_dir=run_dir,
                    run_label="submitted",
                    timeout_seconds=60,
                )
                ok = result.get("ok") is True
            if not ok:
                raise AssertionError(f"the benchmark failed: {result}")
    except BaseException:
        _report(errors_dir, entry)
        raise SystemExit(1) from None


def race_benchmark(
    root: Path, entry: str, *, rounds: int, size: int, adopt: bool
) -> tuple[int, int, str]:
    """Reads of the run folder's stderr logs and metrics.json that saw a torn file, of how many."""
    make_benchmark_repository(root, size=size)
    run_dir = fs.runs_root(root) / "iter_0001"
    expected_log = b"E" * size + b"\nend-E\n"
    errors_dir = root.parent / f"{root.name}-errors"
    errors_dir.mkdir()

    def look() -> Iterator[bool]:
        for file in run_dir.glob("*") if run_dir.is_dir() else ():
            # Names starting with "." are temp files on their way in.
            if file.name.endswith(".stderr.log") or file.name == "metrics.json":
                try:
                    data = file.read_bytes()
                except FileNotFoundError:
                    continue  # replaced between the listing and the read
                if file.name == "metrics.json":
                    yield data.startswith(b"{") and data.endswith(b"}\n")
                else:
                    yield data == expected_log

    kwargs = {"root": str(root), "entry": entry, "rounds": rounds, "adopt": adopt}
    return watch_while_writing(benchmark_writer, kwargs, errors_dir, look)
