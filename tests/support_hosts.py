"""Two hosts on one machine, for the shared-filesystem tests.

One folder is mounted twice with bindfs (FUSE) and caching off: like two NFS
clients with close-to-open consistency, flock on one mount does not exclude
the other, while O_EXCL create, link and rename stay atomic underneath. Each
host's processes run in a UTS namespace of their own (``unshare -u``) with a
host name of their own, so pid judgements see another host.

The processes on a host are *agents*: this file run as a script, reading one
JSON command per line on stdin and answering one JSON line on stdout.
Losses are counted here with plain string operations on the files' bytes,
not with the library under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

HOST_NAMES: Final = ("host-a", "host-b")
BINDFS_OPTIONS: Final = "entry_timeout=0,attr_timeout=0,negative_timeout=0"
ANSWER_TIMEOUT: Final = 240.0
RESULTS_HEADER_LINE: Final = (
    "iteration\tcommit\tstatus\tprimary_metric_name\tprimary_metric_value\tdescription"
)
EDIT_PREFIX: Final = "- edit "
LOSS_KINDS: Final = ("lost_rows", "duplicate_rows", "torn_rows", "lost_events", "lost_edits")


def unavailable_reason() -> str | None:
    """Why the two-host setup cannot run here, or ``None`` when it can."""
    if not sys.platform.startswith("linux"):
        return "two hosts need Linux (FUSE mounts and UTS namespaces)"
    if os.geteuid() != 0:
        return "two hosts need root: to mount FUSE and to set a host name in a UTS namespace"
    if not os.path.exists("/dev/fuse"):
        return "two hosts need FUSE: /dev/fuse is missing"
    for tool, package in (("bindfs", "bindfs"), ("fusermount", "fuse3"), ("unshare", "util-linux")):
        if shutil.which(tool) is None and not (
            tool == "fusermount" and shutil.which("fusermount3")
        ):
            return f"two hosts need {tool}: apt-get install {package}"
    probe = subprocess.run(
        ["unshare", "-u", "--", "hostname", "probe-host"],
        check=False,
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return f"two hosts need UTS namespaces: unshare -u failed ({probe.stderr!r})"
    return None


def _unmount(point: Path) -> None:
    for command in (
        ["fusermount3", "-u", str(point)],
        ["fusermount", "-u", str(point)],
        ["umount", "-l", str(point)],
    ):
        if shutil.which(command[0]) is None:
            continue
        done = subprocess.run(command, check=False, capture_output=True, timeout=60)
        if done.returncode == 0:
            return


@dataclass
class TwoHosts:
    """A folder shared by two hosts: ``mounts[i]`` is host ``i``'s view of ``source``."""

    source: Path
    mounts: tuple[Path, Path]
    agents: list[Agent] = field(default_factory=list)

    def agent(self, host: int, env: dict[str, str] | None = None) -> Agent:
        """Start an agent process on ``host`` (0 or 1); stopped at teardown."""
        agent = Agent.start(HOST_NAMES[host], self.mounts[host], env or {})
        self.agents.append(agent)
        return agent

    def stop_agents(self) -> None:
        """Kill whatever agent is still running (resuming stopped ones first)."""
        for agent in self.agents:
            agent.kill()
        self.agents.clear()


@contextlib.contextmanager
def two_hosts(base: Path) -> Iterator[TwoHosts]:
    """Mount ``base/shared`` twice (``base/host-a``, ``base/host-b``); unmount after."""
    source = base / "shared"
    source.mkdir()
    mounts: list[Path] = []
    hosts: TwoHosts | None = None
    try:
        for name in HOST_NAMES:
            point = base / name
            point.mkdir()
            subprocess.run(
                ["bindfs", "-o", BINDFS_OPTIONS, str(source), str(point)],
                check=True,
                capture_output=True,
                timeout=60,
            )
            mounts.append(point)
        hosts = TwoHosts(source, (mounts[0], mounts[1]))
        yield hosts
    finally:
        if hosts is not None:
            hosts.stop_agents()
        for point in mounts:
            _unmount(point)


class Agent:
    """One process on one host, driven by JSON commands."""

    def __init__(self, host: str, mount: Path, process: subprocess.Popen[str]) -> None:
        self.host = host
        self.mount = mount
        self.process = process

    @classmethod
    def start(cls, host: str, mount: Path, env: dict[str, str]) -> Agent:
        """Run this file as an agent in a new UTS namespace named ``host``."""
        # The choice of lock backend is under test: no override unless asked.
        environment = {**os.environ}
        environment.pop("FERMILINK_STATE_LOCK", None)
        environment.update(env)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).parent), *filter(None, [environment.get("PYTHONPATH")])]
        )
        process = subprocess.Popen(
            [
                "unshare",
                "-u",
                "--",
                "sh",
                "-c",
                'hostname "$0" && exec "$@"',
                host,
                sys.executable,
                __file__,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )
        agent = cls(host, mount, process)
        hello = agent.answer()
        if hello.get("hostname") != host:
            raise RuntimeError(f"agent for {host} started as {hello}")
        return agent

    def send(self, op: str, **arguments: Any) -> None:
        """Send a command without waiting for its answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self.process.stdin.flush()

    def answer(self, timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
        """The next answer line (raises if the agent died or took too long)."""
        assert self.process.stdout is not None
        line = _read_line(self.process.stdout, timeout)
        if not line:
            raise RuntimeError(f"agent {self.host} exited ({self.process.wait(10)})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"agent {self.host} failed:\n{answer['error']}")
        return answer

    def ask(self, op: str, **arguments: Any) -> dict[str, Any]:
        """Send a command and wait for its answer."""
        self.send(op, **arguments)
        return self.answer()

    def signal(self, number: int) -> None:
        """Send ``number`` to the agent's Python process (the exec'd shell)."""
        self.process.send_signal(number)

    def kill(self) -> None:
        """SIGKILL the agent (after SIGCONT, in case it was stopped) and reap it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
                self.process.kill()
        self.process.wait(60)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _read_line(stream: IO[str], timeout: float) -> str:
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"no answer within {timeout} s")
    return stream.readline()


# -- counting, with plain string operations ---------------------------------


def commit_name(host: str, writer: int, iteration: int) -> str:
    """What a stress writer stamps on one iteration's row, event and edit."""
    return f"{host}-w{writer}-i{iteration}"


@dataclass
class HostLosses:
    """Loss counts of a two-host stress run by kind (all must be 0), and what was lost."""

    counts: Counter[str] = field(default_factory=Counter)
    details: list[str] = field(default_factory=list)

    def lose(self, kind: str, detail: str) -> None:
        """Count one loss of ``kind`` and say which record it was."""
        self.counts[kind] += 1
        self.details.append(detail)

    def total(self) -> int:
        """Every loss, all kinds together."""
        return sum(self.counts.values())


def count_host_losses(folder: Path, commits: Sequence[str]) -> HostLosses:
    """Count what the writers of ``commits`` should have left in ``folder``.

    A row is whole when it is one line of six tab-separated cells whose
    commit cell is one of ``commits``; an event is the ``(<commit>, `` of the
    progress log; an edit is the line ``- edit <commit>``.
    """
    losses = HostLosses(Counter(dict.fromkeys(LOSS_KINDS, 0)))
    text = (folder / "results.tsv").read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines[-1] != "":
        losses.lose("torn_rows", f"results.tsv ends without a newline: {lines[-1][:80]!r}")
    lines = lines[:-1]
    if not lines or lines[0] != RESULTS_HEADER_LINE:
        losses.lose("torn_rows", "results.tsv: header missing")
    wanted = set(commits)
    seen: Counter[str] = Counter()
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != 6 or cells[1] not in wanted or not cells[0].isdigit():
            losses.lose("torn_rows", f"results.tsv:{number}: torn {line[:80]!r}")
            continue
        seen[cells[1]] += 1
    memory = (folder / "memory.md").read_bytes().decode("utf-8", errors="replace")
    memory_lines = set(memory.split("\n"))
    for commit in commits:
        if seen[commit] != 1:
            kind = "lost_rows" if seen[commit] == 0 else "duplicate_rows"
            losses.lose(kind, f"row {commit} written {seen[commit]} times")
        events = memory.count(f"({commit}, ")
        if events != 2:  # one in the progress log, one in the outcome's section
            losses.lose("lost_events", f"event {commit} found {events}/2 times")
        if f"{EDIT_PREFIX}{commit}" not in memory_lines:
            losses.lose("lost_edits", f"edit {commit} lost")
    return losses


# -- the agent ----------------------------------------------------------------


def _campaign(root: str) -> Path:
    return Path(root)


def _op_write(command: dict[str, Any]) -> dict[str, Any]:
    import fermilink_state as fs

    root = _campaign(command["root"])
    host = _hostname()
    for iteration in range(command["iterations"]):
        commit = commit_name(host, command["writer"], iteration)
        fs.append_result(
            fs.results_path(root),
            iteration=iteration,
            commit=commit,
            status="accepted" if iteration % 2 == 0 else "rejected",
            primary_metric_name="runtime",
            primary_metric_value=1.0 + iteration / 1000,
            description=f"writer {command['writer']} on {host}",
        )
        fs.record_campaign_event(
            fs.memory_path(root),
            commit=commit,
            primary_metric_name="runtime",
            primary_metric_value=1.0 + iteration / 1000,
            status="accepted" if iteration % 2 == 0 else "rejected",
            description=f"writer {command['writer']} on {host}",
        )
        with fs.edit_memory(fs.memory_path(root)) as document:
            document.append("### Open hypotheses", f"{EDIT_PREFIX}{commit}")
    return {"done": command["iterations"]}


def _op_acquire(command: dict[str, Any]) -> dict[str, Any]:
    import fermilink_state as fs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            record = fs.acquire_run_lock(_campaign(command["root"]), command.get("payload"))
        except fs.RunLockHeld as error:
            return {"won": False, "why": error.why}
    return {"won": True, "record": record, "warnings": [str(item.message) for item in caught]}


def _op_release(command: dict[str, Any]) -> dict[str, Any]:
    import fermilink_state as fs

    return {"released": fs.release_run_lock(_campaign(command["root"]))}


def _op_append(command: dict[str, Any]) -> dict[str, Any]:
    import fermilink_state as fs

    try:
        fs.append_result(
            fs.results_path(_campaign(command["root"])),
            iteration=0,
            commit=command["commit"],
            status="accepted",
            primary_metric_name="runtime",
            primary_metric_value=1.0,
            description="fenced append",
        )
    except fs.RunLockLost as error:
        return {"lost": str(error)}
    except fs.StateLockTimeout as error:
        return {"timeout": str(error)}
    return {"appended": command["commit"]}


def _op_hold_file_lock(command: dict[str, Any]) -> dict[str, Any]:
    import fermilink_state as fs

    # Entered and never left: the agent is killed holding it.
    fs.locked(fs.results_path(_campaign(command["root"]))).__enter__()
    return {"held": True}


def _op_hold_open(command: dict[str, Any]) -> dict[str, Any]:
    # A reader that keeps the current file open (a viewer that follows it):
    # while it does, FUSE and NFS replace that file on this host in two steps
    # (the old one renamed to a hidden name first), and other hosts can see it
    # missing in between. The reader reopens it at once after each replace.
    import threading

    path = command["path"]

    def follow() -> None:
        held = open(path, "rb")  # noqa: SIM115 - replaced, never left closed
        while True:
            with contextlib.suppress(OSError):
                newer = open(path, "rb")  # noqa: SIM115
                held.close()
                held = newer
            time.sleep(0.0005)

    threading.Thread(target=follow, daemon=True).start()
    return {"open": path}


def _op_write_states(command: dict[str, Any]) -> dict[str, Any]:
    import fermilink_state as fs

    path = fs.state_path(_campaign(command["root"]))
    for iteration in range(command["count"]):
        fs.write_state(path, {"iteration": iteration})
    return {"written": command["count"]}


def _op_load_states(command: dict[str, Any]) -> dict[str, Any]:
    # Reads until the last state written shows up: how often was it missing?
    import fermilink_state as fs

    path = fs.state_path(_campaign(command["root"]))
    deadline = time.monotonic() + command["timeout"]
    reads = missing = 0
    while time.monotonic() < deadline:
        state = fs.load_state(path)
        reads += 1
        if state is None:
            missing += 1
        elif state.get("iteration") == command["last"]:
            break
    return {"reads": reads, "missing": missing}


def _op_status(command: dict[str, Any]) -> dict[str, Any]:
    import fermilink_state as fs

    status = fs.run_lock_status(_campaign(command["root"]))
    return {"state": status.state, "age": status.age, "reason": status.reason}


def _op_backend(command: dict[str, Any]) -> dict[str, Any]:
    import fermilink_state as fs

    backend = fs.choose_lock_backend(_campaign(command["root"]))
    return {"name": backend.name, "reason": backend.reason, "filesystem": backend.filesystem}


def _hostname() -> str:
    import socket

    return socket.gethostname()


_OPS: Final = {
    "write": _op_write,
    "acquire": _op_acquire,
    "release": _op_release,
    "append": _op_append,
    "status": _op_status,
    "backend": _op_backend,
    "hold_file_lock": _op_hold_file_lock,
    "hold_open": _op_hold_open,
    "write_states": _op_write_states,
    "load_states": _op_load_states,
}


def agent_main() -> None:
    """Answer commands from stdin until it closes."""
    print(json.dumps({"hostname": _hostname(), "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        # "at": a shared start time (one machine, one clock): a barrier for racers.
        time.sleep(max(0.0, command.get("at", 0.0) - time.time()))
        try:
            answer = _OPS[command["op"]](command)
        except BaseException:
            answer = {"error": traceback.format_exc()}
        print(json.dumps(answer), flush=True)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    """Poll ``condition()`` every 10 ms until true; ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.01)


if __name__ == "__main__":
    agent_main()
