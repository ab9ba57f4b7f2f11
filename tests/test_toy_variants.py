"""The example's crash and concurrency tests catch broken controllers, and pass the fixed one.

Each sub-run copies examples/ (the toy controller and its two new test files)
into a pytester folder, optionally breaks the controller, and runs the tests
with the plugin, also under xdist.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

import pytest

EXAMPLES: Final = Path(__file__).resolve().parent.parent / "examples"
CRASH_TESTS: Final = "test_toy_crashes.py"
RACE_TESTS: Final = "test_toy_concurrency.py"

RECORD: Final = "            record_evaluation(project_root, iteration, candidate, value, status)\n"
WRITE_STATE: Final = "            fs.write_state(state_path, state)\n"
RUN_LOCK: Final = 'with fs.run_lock(project_root, {"controller": "toy"}):'

pytestmark = pytest.mark.timeout(240)


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the toy controller changed: {old!r} no longer occurs once"
    return text.replace(old, new)


def _state_before_row(source: str) -> str:
    # The bug a new user shipped: state.json written before the ledger row.
    source = _replace_once(source, RECORD, "")
    return _replace_once(source, WRITE_STATE, WRITE_STATE + RECORD)


def _without_run_lock(source: str) -> str:
    # The iteration counter read and written with no run lock held.
    source = _replace_once(source, "import math\n", "import contextlib\nimport math\n")
    return _replace_once(source, RUN_LOCK, "with contextlib.nullcontext():")


def _example(
    pytester: pytest.Pytester, *tests: str, controller: Callable[[str], str] | None = None
) -> None:
    source = (EXAMPLES / "toy_controller.py").read_text(encoding="utf-8")
    pytester.makepyfile(toy_controller=controller(source) if controller else source)
    for name in tests:
        pytester.makepyfile(**{Path(name).stem: (EXAMPLES / name).read_text(encoding="utf-8")})


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # Warnings ignored: a resumed controller warns about the torn tails it reads past.
    quiet = ("-W", "ignore::UserWarning")
    return pytester.runpytest_subprocess("-p", "fermilink_state", *quiet, *args)


def test_the_fixed_controller_passes_both(pytester: pytest.Pytester) -> None:
    # Under xdist; the no-run-lock variant's run below is the serial one.
    _example(pytester, CRASH_TESTS, RACE_TESTS)
    _run(pytester, "-n", "2").assert_outcomes(passed=3)


def test_state_before_row_fails_the_crash_exploration_in_both_models(
    pytester: pytest.Pytester,
) -> None:
    _example(pytester, CRASH_TESTS, controller=_state_before_row)
    result = _run(pytester, "-n", "2")
    result.assert_outcomes(failed=2)
    text = result.stdout.str()
    for model in ("kill", "power"):
        assert f"crash states ({model} model) failed the check" in text
    assert "claims iteration 1, which the ledger results.tsv lacks" in text
    assert "(in write_state)" in text  # the operation the crash came after


def test_no_run_lock_fails_the_concurrency_test(pytester: pytest.Pytester) -> None:
    _example(pytester, RACE_TESTS, controller=_without_run_lock)
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert*sorted(row.iteration for row in rows)*"])


def test_the_variants_really_differ_from_the_example() -> None:
    source = (EXAMPLES / "toy_controller.py").read_text(encoding="utf-8")
    assert _state_before_row(source) != source
    assert _without_run_lock(source) != source
