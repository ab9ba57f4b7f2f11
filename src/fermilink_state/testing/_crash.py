"""Crash exploration for a downstream controller: kill it, cut its power, resume, assert.

:func:`explore_crashes` runs a user's ``step`` once while the crash-state
engine (:mod:`fermilink_state.testing._crashstates`) records every file
operation the library performs, then materializes each state a kill or a power
cut could have left into a fresh copy of the project and calls the user's
``check`` on it. The engine does the recording and the crash models; this
module turns its findings into a report and one readable ``AssertionError``.
The ``crash_explorer`` fixture binds it to the test's project.

Plain code with no pytest. Importing this module does not import pytest.
"""

from __future__ import annotations

import contextlib
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, final

from fermilink_state.testing._crashstates import (
    MODELS,
    CrashFailure,
    CrashModel,
    CrashState,
    Recording,
    explore,
    record,
)

__all__ = [
    "CrashExplorationError",
    "CrashExplorer",
    "CrashPointFailure",
    "CrashReport",
    "explore_crashes",
]

SHOWN_FAILURES: Final = 5
_LIBRARY_DIR: Final = str(Path(__file__).resolve().parent.parent)
Step = Callable[[Path], object]
Check = Callable[[Path, CrashState], object]


@final
@dataclass(frozen=True, slots=True)
class CrashPointFailure:
    """A crash state on which the user's ``check`` raised.

    ``point`` is how many file operations had been issued when the crash hit;
    ``operation`` describes the last of them (``"#12 rename ... (in
    write_state)"``) and ``call`` names the library function that issued it
    (``""`` before any operation). ``state`` is the engine's
    :class:`CrashState` (model, kind, marks), ``description`` says what the
    crash kept and lost, ``error`` and ``traceback`` are what ``check``
    raised, ``copy_root`` is the copy kept for inspection (``None`` unless
    failures are kept).
    """

    point: int
    operation: str
    call: str
    state: CrashState
    description: str
    error: BaseException
    traceback: str
    copy_root: Path | None = None

    def __str__(self) -> str:
        error = self.error
        lines = "".join(traceback.format_exception_only(type(error), error)).strip().splitlines()
        frames = traceback.extract_tb(error.__traceback__)
        # The user's line that raised, rather than the inside of an assertion helper.
        theirs = [frame for frame in frames if _LIBRARY_DIR not in frame.filename]
        if frames:
            where = (theirs or frames)[-1]
            lines.append(f"(raised at {where.filename}:{where.lineno} in {where.name})")
        text = f"{self.description}\n" + "\n".join(f"    {line}" for line in lines)
        if self.copy_root is not None:
            text += f"\n    kept: {self.copy_root}"
        return text


@final
@dataclass(frozen=True, slots=True)
class CrashReport:
    """What :func:`explore_crashes` found.

    ``points``: how many crash states were explored (each materialized and
    checked once); ``failures``: the states whose check raised, in order;
    ``operations``: how many file operations the step performed; ``calls``:
    the library calls it made, in order (one entry per call).
    """

    model: CrashModel
    points: int
    failures: tuple[CrashPointFailure, ...]
    operations: int
    calls: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether every crash state passed the check."""
        return not self.failures

    def summary(self, shown: int = SHOWN_FAILURES) -> str:
        """The report in words: counts, then the first ``shown`` failures."""
        head = (
            f"{len(self.failures)} of {self.points} crash states ({self.model} model) failed "
            f"the check; the step made {_count(self.operations, 'file operation')} in "
            f"{_count(len(self.calls), 'library call')}"
        )
        if not self.failures:
            return head
        first = "\n".join(str(failure) for failure in self.failures[:shown])
        more = len(self.failures) - shown
        tail = f"\n... and {more} more" if more > 0 else ""
        return f"{head}; the first:\n{first}{tail}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


class CrashExplorationError(AssertionError):
    """Crash states failed the check; ``.report`` is the whole :class:`CrashReport`."""

    def __init__(self, report: CrashReport) -> None:
        self.report = report
        super().__init__(report.summary())

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.report,))


class _CheckRaised(Exception):
    """Carries what a check raised that is no ``Exception`` (``pytest.fail``'s ``Failed``)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


def _guarded(check: Check) -> Check:
    def run(copy_root: Path, state: CrashState) -> object:
        try:
            return check(copy_root, state)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception:
            raise
        except BaseException as error:  # pytest.fail() and friends: one failure, not the end
            raise _CheckRaised(error) from error

    return run


def _failure(recording: Recording, failure: CrashFailure) -> CrashPointFailure:
    point = failure.state.point
    op = recording.ops[point - 1] if point else None
    error = failure.error.error if isinstance(failure.error, _CheckRaised) else failure.error
    return CrashPointFailure(
        point=point,
        operation=op.describe() if op is not None else "before any operation",
        call=op.call if op is not None else "",
        state=failure.state,
        description=failure.description,
        error=error,
        traceback="".join(traceback.format_exception(type(error), error, error.__traceback__)),
        copy_root=failure.copy_root,
    )


def explore_crashes(
    project_root: Path | str,
    step: Step,
    check: Check,
    *,
    model: CrashModel = "kill",
    workdir: Path | str | None = None,
    keep_failures: bool = False,
    raise_on_failure: bool = True,
    trace_pathlib: bool = False,
    timeout: float = 120.0,
) -> CrashReport:
    """Crash ``step`` at every instant and ``check`` what each crash leaves.

    ``step(project_root)`` runs once, in a child process (spawned, so it must
    pickle: a module-level function or a ``functools.partial`` of one), with
    fsync on, while every file operation of ``fermilink_state`` is recorded,
    each tagged with the library call that made it. The project is left as
    the step leaves it. Then, for each crash state of ``model`` (``"kill"``:
    the process died after each operation; ``"power"``: only what was synced
    survives, plus any subset of the rest in ALICE's passes, the last write
    possibly torn), a fresh copy of the project as the crash left it is made
    under ``workdir`` and ``check(copy_root, state)`` is called: resume the
    controller there and assert (``assert_campaign_consistent`` is the usual
    start). ``state.point`` is how many operations ran; ``state.marks`` the
    labels the step passed to :func:`crash_mark` before the crash.

    Returns the :class:`CrashReport`. If any check raised, raises one
    :class:`CrashExplorationError` (an ``AssertionError``) listing the first
    failures with their operations, unless ``raise_on_failure=False``.
    Failing copies are kept with ``keep_failures`` (the fixture's
    ``--fermilink-keep``). ``trace_pathlib=True`` also records what the step
    writes with ``open()`` / ``pathlib`` itself; without it, a step that
    changes project files that way is refused (its crash states would be
    wrong).
    """
    __tracebackhide__ = True
    if model not in MODELS:
        raise ValueError(f"model must be 'kill' or 'power', not {model!r}")
    root = Path(project_root)
    recording = record(step, root, trace_pathlib=trace_pathlib, timeout=timeout)
    untracked = recording.untracked()
    if untracked:
        raise AssertionError(
            f"the step changed files of {root} that the recording did not see: "
            f"{', '.join(untracked)}; pass trace_pathlib=True to record what it writes "
            "with open() or pathlib, or write them with fermilink_state"
        )
    base = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="crashes-"))
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{model}-", dir=base))
    exploration = explore(recording, model, _guarded(check), folder, keep_failures=keep_failures)
    if not keep_failures or not exploration.failures:
        _remove_empty(folder)
        if workdir is None:
            _remove_empty(base)
    report = CrashReport(
        model=model,
        points=exploration.states,
        failures=tuple(_failure(recording, failure) for failure in exploration.failures),
        operations=len(recording.ops),
        calls=tuple(recording.calls()),
    )
    if report.failures and raise_on_failure:
        raise CrashExplorationError(report)
    return report


class CrashExplorer:
    """The ``crash_explorer`` fixture: :func:`explore_crashes` bound to a test's project.

    ``crash_explorer(step, check, model="kill")`` explores the crashes of
    ``step`` run on :attr:`project_root`, with the crash copies under the
    test's temp folder and failing copies kept under ``--fermilink-keep``.
    Other keywords go to :func:`explore_crashes`.
    """

    def __init__(self, project_root: Path, workdir: Path, *, keep_failures: bool) -> None:
        self.project_root = Path(project_root)
        self.workdir = Path(workdir)
        self.keep_failures = keep_failures
        self.reports: list[CrashReport] = []

    def __call__(
        self,
        step: Step,
        check: Check,
        *,
        model: CrashModel = "kill",
        raise_on_failure: bool = True,
        trace_pathlib: bool = False,
        timeout: float = 120.0,
    ) -> CrashReport:
        """Explore the crashes of ``step`` on the test's project; see :func:`explore_crashes`."""
        __tracebackhide__ = True
        try:
            report = explore_crashes(
                self.project_root,
                step,
                check,
                model=model,
                workdir=self.workdir,
                keep_failures=self.keep_failures,
                raise_on_failure=raise_on_failure,
                trace_pathlib=trace_pathlib,
                timeout=timeout,
            )
        except CrashExplorationError as error:
            self.reports.append(error.report)
            raise
        self.reports.append(report)
        return report

    def kept_copies(self) -> list[Path]:
        """The copies kept of every failing crash state so far."""
        return [
            failure.copy_root
            for report in self.reports
            for failure in report.failures
            if failure.copy_root is not None
        ]


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: kept copies live there
        folder.rmdir()


# Reprs, pickles and documentation name the public home of these types.
for _public in (CrashExplorationError, CrashExplorer, CrashPointFailure, CrashReport):
    _public.__module__ = "fermilink_state.testing"
del _public
