"""run_concurrently: real processes, released together, each outcome reported with its index."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fermilink_state.testing import Outcome, run_concurrently

pytestmark = [
    pytest.mark.timeout(120),
    # An xdist worker runs execnet's threads: Python 3.12+ warns at any fork()
    # there. The fork start method is what these tests are about.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]


def _pid_and_square(index: int, base: int) -> tuple[int, int]:
    return os.getpid(), base + index * index


def _meet(index: int, folder: str, n: int) -> float:
    # Returns only if all n processes are alive at once: a sequential run
    # would wait here forever (and time out).
    Path(folder, str(index)).touch()
    deadline = time.monotonic() + 30
    while len(os.listdir(folder)) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(os.listdir(folder))} of {n} processes arrived")
        time.sleep(0.001)
    return time.monotonic()


def _raise_on_odd(index: int) -> int:
    if index % 2:
        raise ValueError(f"odd index {index}")
    return index


def _exit_early(index: int) -> None:
    os._exit(3)


def _sleep_forever(index: int) -> None:
    time.sleep(600)


def _unpicklable(index: int) -> object:
    return lambda: index


class _OddError(Exception):
    """An exception whose constructor does not take its message: it will not unpickle."""

    def __init__(self, first: int, second: int) -> None:
        super().__init__(f"{first} and {second}")


def _raise_odd_error(index: int) -> None:
    raise _OddError(index, index + 1)


@pytest.mark.parametrize("start", ["spawn", "fork"])
def test_each_process_returns_in_index_order(start: str) -> None:
    outcomes = run_concurrently(_pid_and_square, 3, 10, start=start)  # type: ignore[arg-type]
    assert [outcome.index for outcome in outcomes] == [0, 1, 2]
    assert [outcome.value[1] for outcome in outcomes] == [10, 11, 14]
    assert all(outcome.ok and outcome.exitcode == 0 for outcome in outcomes)
    pids = {outcome.value[0] for outcome in outcomes}
    assert len(pids) == 3
    assert os.getpid() not in pids


def test_processes_run_at_the_same_time(tmp_path: Path) -> None:
    outcomes = run_concurrently(_meet, 4, str(tmp_path), 4, timeout=60)
    assert all(outcome.ok for outcome in outcomes), [str(o) for o in outcomes]


def test_an_exception_is_reported_with_its_traceback() -> None:
    outcomes = run_concurrently(_raise_on_odd, 2)
    assert outcomes[0].ok
    assert outcomes[0].result() == 0
    failed = outcomes[1]
    assert not failed.ok
    assert isinstance(failed.error, ValueError)
    assert str(failed.error) == "odd index 1"
    assert failed.exitcode == 1
    assert "in _raise_on_odd" in failed.traceback
    assert 'raise ValueError(f"odd index {index}")' in failed.traceback
    with pytest.raises(AssertionError, match="process 1 raised") as raised:
        failed.result()
    assert isinstance(raised.value.__cause__, ValueError)


def test_a_process_that_exits_without_reporting_is_reported() -> None:
    (outcome,) = run_concurrently(_exit_early, 1)
    assert (outcome.ok, outcome.exitcode, outcome.timed_out) == (False, 3, False)
    assert isinstance(outcome.error, ChildProcessError)
    assert "exited with code 3" in str(outcome.error)


def test_a_process_still_running_at_the_timeout_is_killed_and_reported() -> None:
    started = time.monotonic()
    (outcome,) = run_concurrently(_sleep_forever, 1, timeout=3)
    assert time.monotonic() - started < 30
    assert outcome.timed_out
    assert isinstance(outcome.error, TimeoutError)
    assert outcome.exitcode == -9
    assert str(outcome) == "process 0 was killed at the timeout (still running)"


def test_an_unpicklable_return_value_is_an_error() -> None:
    (outcome,) = run_concurrently(_unpicklable, 1, start="fork")
    assert isinstance(outcome.error, TypeError)
    assert "cannot be pickled" in str(outcome.error)


def test_an_exception_that_will_not_unpickle_keeps_its_text() -> None:
    (outcome,) = run_concurrently(_raise_odd_error, 1, start="fork")
    assert outcome.error is not None
    assert "0 and 1" in str(outcome.error)
    assert "_OddError" in outcome.traceback


@pytest.mark.parametrize(
    ("n", "start", "message"),
    [(0, "spawn", "n must be at least 1"), (2, "forkserver", "start must be")],
)
def test_bad_arguments_are_refused(n: int, start: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_concurrently(_pid_and_square, n, 0, start=start)  # type: ignore[arg-type]


def test_outcome_reads_well() -> None:
    assert str(Outcome(2, value=5, exitcode=0)) == "process 2 returned 5"
    assert str(Outcome(1, value=5, exitcode=-11)) == "process 1 returned 5 but exited with -11"
    assert Outcome.__module__ == "fermilink_state.testing"
