"""Who is running: pid liveness, process start times and the host name."""

from __future__ import annotations

import functools
import os
import socket
import sys
from typing import Any, Final

# psutil's create_time() for Linux is btime + starttime / CLK_TCK; we read the
# same two numbers from /proc so the values agree without the dependency.
_PROC: Final = "/proc"


@functools.cache
def hostname() -> str:
    """``socket.gethostname()``, cached for the life of the process."""
    return socket.gethostname()


def pid_is_running(pid: int) -> bool:
    """Whether a process with this pid exists.

    Unlike the reference, a live process of another user (``EPERM``) counts as
    running, and on Windows ``os.kill(pid, 0)`` is never called (there it
    sends Ctrl+C to the console group).
    """
    if pid <= 0:
        return False
    if _on_windows():
        return _windows_pid_is_running(pid)
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _on_windows() -> bool:
    # startswith() rather than ==: type checkers would prune the branch on POSIX.
    return sys.platform.startswith("win")


def _windows_pid_is_running(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes

    kernel32: Any = ctypes.__dict__["windll"].kernel32
    process_query_limited_information = 0x1000
    still_active = 259
    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        # ERROR_ACCESS_DENIED: it exists, we may not look at it.
        return bool(kernel32.GetLastError() == 5)
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


@functools.cache
def _boot_time() -> float | None:
    try:
        with open(f"{_PROC}/stat", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _proc_stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"{_PROC}/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ")".
    return text.rpartition(")")[2].split()


def process_start_time(pid: int) -> float | None:
    """When ``pid`` started, in seconds since the epoch, or ``None`` if unknown.

    The value ``psutil.Process(pid).create_time()`` reports; read from /proc on
    Linux. ``None`` on platforms without /proc or for a process that is gone.
    """
    fields = _proc_stat_fields(pid)
    boot = _boot_time()
    if fields is None or boot is None or len(fields) < 20:
        return None
    try:
        ticks = int(fields[19])
    except ValueError:
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def process_is_zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but not been reaped (Linux; False elsewhere)."""
    fields = _proc_stat_fields(pid)
    return bool(fields) and fields is not None and fields[0] in {"Z", "X"}


def process_is_alive(pid: int, started_at: float | None = None) -> bool:
    """Whether ``pid`` runs, is no zombie, and (if given) started at ``started_at``.

    A start time more than a second away from the recorded one means the pid
    was reused by another process.
    """
    if not pid_is_running(pid) or process_is_zombie(pid):
        return False
    if started_at is None:
        return True
    actual = process_start_time(pid)
    return actual is None or abs(actual - started_at) <= 1.0
