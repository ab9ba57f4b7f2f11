"""Who is running: pid liveness, start times, zombies and the Windows path."""

from __future__ import annotations

import errno
import importlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fermilink_state import _process, pid_is_running, process_start_time
from support import dead_pid

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def zombie() -> Iterator[int]:
    """The pid of a child that has exited but is not reaped yet."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    yield child.pid
    child.wait()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live child process, stopped at teardown."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    yield child
    assert child.stdin is not None
    child.stdin.close()
    child.wait()


def _refuse_kill(pid: int, signal: int) -> None:
    raise AssertionError(f"os.kill({pid}, {signal}) was called")


def test_this_process_is_running() -> None:
    assert pid_is_running(os.getpid()) is True


def test_a_pid_beyond_pid_max_is_not_running() -> None:
    assert pid_is_running(dead_pid()) is False


def test_a_reaped_child_is_not_running() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert pid_is_running(child.pid) is False


@pytest.mark.parametrize("pid", [0, -1, -2])
def test_non_positive_pids_are_never_running(pid: int) -> None:
    # os.kill(0 or negative, 0) would probe a whole process group.
    assert pid_is_running(pid) is False


def test_a_process_of_another_user_is_running(monkeypatch: pytest.MonkeyPatch) -> None:
    def kill_eperm(pid: int, signal: int) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "kill", kill_eperm)
    assert pid_is_running(4242) is True


def test_a_missing_process_is_not_running(monkeypatch: pytest.MonkeyPatch) -> None:
    def kill_esrch(pid: int, signal: int) -> None:
        raise ProcessLookupError(errno.ESRCH, "No such process")

    monkeypatch.setattr(os, "kill", kill_esrch)
    assert pid_is_running(4242) is False


@pytest.mark.parametrize("alive", [True, False])
def test_windows_never_calls_os_kill(monkeypatch: pytest.MonkeyPatch, alive: bool) -> None:
    asked: list[int] = []

    def fake_win32_check(pid: int) -> bool:
        asked.append(pid)
        return alive

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(_process, "_windows_pid_is_running", fake_win32_check)
    monkeypatch.setattr(os, "kill", _refuse_kill)
    assert (pid_is_running(4242), asked) == (alive, [4242])


def _proc_start_time(pid: int) -> float:
    """An independent reading of /proc: btime + starttime / CLK_TCK."""
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text(encoding="ascii").splitlines()
        if line.startswith("btime ")
    )
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    start_ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
    return boot + start_ticks / os.sysconf("SC_CLK_TCK")


def _oracles() -> list[Callable[[int], float]]:
    oracles: list[Callable[[int], float]] = [_proc_start_time]
    if importlib.util.find_spec("psutil") is not None:  # optional: never a dependency
        psutil = importlib.import_module("psutil")
        oracles.append(lambda pid: float(psutil.Process(pid).create_time()))
    return oracles


@pytest.mark.parametrize("who", ["self", "child"])
def test_start_time_agrees_with_proc_and_psutil(who: str, sleeper: subprocess.Popen[bytes]) -> None:
    pid = os.getpid() if who == "self" else sleeper.pid
    ours = process_start_time(pid)
    assert ours is not None
    assert [abs(ours - oracle(pid)) < 0.02 for oracle in _oracles()] == [True] * len(_oracles())


def test_start_time_of_a_new_child_is_when_it_started() -> None:
    # btime has one-second resolution, so the window is widened by a second.
    before = time.time()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    after = time.time()
    try:
        started = process_start_time(child.pid)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
    assert started is not None
    assert before - 1.5 <= started <= after + 1.5


def test_start_time_of_a_dead_process_is_none() -> None:
    assert process_start_time(dead_pid()) is None


def test_a_zombie_is_a_zombie(zombie: int) -> None:
    assert _process.process_is_zombie(zombie) is True


def test_a_live_process_is_no_zombie(sleeper: subprocess.Popen[bytes]) -> None:
    assert _process.process_is_zombie(sleeper.pid) is False


def test_a_zombie_is_not_alive(zombie: int) -> None:
    # kill(pid, 0) succeeds on a zombie: only the process state tells it is dead.
    assert (pid_is_running(zombie), _process.process_is_alive(zombie)) == (True, False)


def test_alive_with_the_recorded_start_time(sleeper: subprocess.Popen[bytes]) -> None:
    started = process_start_time(sleeper.pid)
    assert _process.process_is_alive(sleeper.pid, started) is True


def test_not_alive_with_another_start_time(sleeper: subprocess.Popen[bytes]) -> None:
    started = process_start_time(sleeper.pid)
    assert started is not None
    assert _process.process_is_alive(sleeper.pid, started - 5.0) is False


def test_hostname_is_socket_gethostname() -> None:
    import socket

    assert _process.hostname() == socket.gethostname()
