"""Real processes released together: for proving a controller's run-lock discipline.

:func:`run_concurrently` starts ``n`` processes, holds each at a barrier until
all have started, then lets them call ``target(index, *args)`` at once. Each
reports back over its own pipe, so an outcome is never attributed to the wrong
process, and a process that hangs is killed at the deadline and reported.

Plain code with no pytest. Importing this module does not import pytest.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import pickle
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from typing import Any, Final, Literal, final

__all__ = ["Outcome", "run_concurrently"]

StartMethod = Literal["spawn", "fork"]
_START_METHODS: Final = ("spawn", "fork")
_JOIN_GRACE: Final = 5.0  # seconds a process has to exit after it reported


@final
@dataclass(frozen=True, slots=True)
class Outcome:
    """How one process of :func:`run_concurrently` ended.

    ``index`` is the process's number (its ``target``'s first argument);
    ``value`` is what ``target`` returned; ``error`` the exception it raised
    (or a ``ChildProcessError`` / ``TimeoutError`` saying how the process
    ended without returning) with its ``traceback`` text; ``exitcode`` the
    process's exit code (negative: killed by that signal); ``timed_out``
    whether it was killed at the deadline.
    """

    index: int
    value: Any = None
    error: BaseException | None = None
    traceback: str = ""
    exitcode: int | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """Whether ``target`` returned and the process exited with 0."""
        return self.error is None and self.exitcode == 0

    def result(self) -> Any:
        """``value``; else an ``AssertionError`` with the child's traceback, caused by ``error``."""
        __tracebackhide__ = True
        if self.error is not None:
            raise AssertionError(str(self)) from self.error
        if self.exitcode != 0:
            raise AssertionError(str(self))
        return self.value

    def __str__(self) -> str:
        if self.ok:
            return f"process {self.index} returned {self.value!r}"
        if self.timed_out:
            return f"process {self.index} was killed at the timeout (still running)"
        if self.error is None:
            return f"process {self.index} returned {self.value!r} but exited with {self.exitcode}"
        text = self.traceback.rstrip() or f"{type(self.error).__name__}: {self.error}"
        return f"process {self.index} raised (exit code {self.exitcode}):\n{text}"


def _child(
    call: tuple[Callable[..., Any], int, tuple[Any, ...]],
    barrier: Barrier,
    timeout: float,
    report: multiprocessing.connection.Connection,
) -> None:
    """The body of each process: wait for the others, call, send the outcome."""
    target, index, args = call
    payload_raised = False
    try:
        barrier.wait(timeout)
        payload = _pickled(("returned", target(index, *args)))
    except BaseException as error:  # every failure, SystemExit too, is the caller's to see
        payload_raised = True
        payload = _pickled(("raised", error, traceback.format_exc()))
    report.send_bytes(payload)
    report.close()
    if payload_raised:
        raise SystemExit(1)  # as an uncaught exception would end the process


def _pickled(message: tuple[Any, ...]) -> bytes:
    try:
        data = pickle.dumps(message)
        pickle.loads(data)  # some exceptions pickle but do not unpickle: find out here
    except Exception as error:  # whatever fails to pickle: say so instead
        if message[0] == "returned":
            what = f"returned {type(message[1]).__qualname__}, which cannot be pickled ({error})"
            return pickle.dumps(("raised", TypeError(what), ""))
        raised: BaseException = message[1]
        # The text survives where the exception object cannot travel.
        stand_in = RuntimeError(f"{type(raised).__qualname__}: {raised}")
        return pickle.dumps(("raised", stand_in, message[2]))
    return data


@dataclass(slots=True)
class _Running:
    index: int
    process: BaseProcess
    report: multiprocessing.connection.Connection
    message: tuple[Any, ...] | None = None
    timed_out: bool = False


def run_concurrently(
    target: Callable[..., Any],
    n: int,
    *args: Any,
    start: StartMethod = "spawn",
    timeout: float = 60.0,
) -> list[Outcome]:
    """Run ``target(index, *args)`` in ``n`` real processes at once; one :class:`Outcome` each.

    The processes are started with ``start`` (``"spawn"``: a fresh
    interpreter, so ``target`` and ``args`` must pickle and ``target`` be
    importable, e.g. a module-level function of the test module; ``"fork"``:
    a copy of this process, POSIX only) and released together by a barrier
    once all have started. A process still running ``timeout`` seconds after
    the start is killed and reported with ``timed_out``. Outcomes come in
    index order; nothing is raised for a failing process: check ``.ok``,
    ``.error`` and ``.traceback``, or call ``.result()``.
    """
    if start not in _START_METHODS:
        raise ValueError(f"start must be 'spawn' or 'fork', not {start!r}")
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    context = (
        multiprocessing.get_context("spawn")
        if start == "spawn"
        else multiprocessing.get_context("fork")
    )
    barrier = context.Barrier(n)
    deadline = time.monotonic() + timeout
    running: list[_Running] = []
    try:
        for index in range(n):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_child,
                args=((target, index, args), barrier, timeout, send),
                name=f"run_concurrently-{index}",
                daemon=True,
            )
            process.start()
            send.close()  # the child holds the only writer: EOF when it dies
            running.append(_Running(index, process, receive))
        _collect(running, deadline)
    finally:
        for each in running:
            if each.process.is_alive():
                each.timed_out = each.message is None
                each.process.kill()
            each.process.join(_JOIN_GRACE)
            each.report.close()
    return [_outcome(each, timeout) for each in running]


def _collect(running: list[_Running], deadline: float) -> None:
    """Read each process's report as it comes, until all reported, died or the deadline."""
    waiting = {each.report: each for each in running}
    while waiting:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        for ready in multiprocessing.connection.wait(list(waiting), remaining):
            assert isinstance(ready, multiprocessing.connection.Connection)
            each = waiting.pop(ready)
            try:
                each.message = pickle.loads(ready.recv_bytes())
            except EOFError:
                each.message = None  # died without reporting
            except Exception as error:  # e.g. an exception class that takes other arguments
                each.message = ("raised", RuntimeError(f"its report did not unpickle: {error}"), "")
    for each in running:
        each.process.join(max(0.0, min(_JOIN_GRACE, deadline - time.monotonic())))


def _outcome(each: _Running, timeout: float) -> Outcome:
    exitcode = each.process.exitcode
    if each.message is not None:
        if each.message[0] == "returned":
            return Outcome(each.index, value=each.message[1], exitcode=exitcode)
        _kind, error, text = each.message
        return Outcome(each.index, error=error, traceback=text, exitcode=exitcode)
    if each.timed_out:
        return Outcome(
            each.index,
            error=TimeoutError(f"still running after {timeout:g} s: killed"),
            exitcode=exitcode,
            timed_out=True,
        )
    return Outcome(
        each.index,
        error=ChildProcessError(f"exited with code {exitcode} before it returned or raised"),
        exitcode=exitcode,
    )


# Reprs and documentation name the public home of the type.
Outcome.__module__ = "fermilink_state.testing"
