"""The benchmark script's own logic: verdicts, turn-taking, the README region.

No timing is asserted here (shared machines are noisy); these check that the
script judges, schedules and writes what it says it does.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """benchmarks/bench.py as a module (its helpers import as top-level names)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("fermilink_bench", BENCHMARKS / "bench.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.mark.parametrize(
    ("measured", "at_least", "strict", "within_noise"),
    [
        (1.4, False, True, True),
        (1.6, False, False, True),
        (1.7, False, False, False),
        (1200.0, True, True, True),
        (950.0, True, False, True),
        (850.0, True, False, False),
    ],
)
def test_a_miss_within_the_measured_noise_is_told_apart(
    bench: ModuleType, measured: float, at_least: bool, strict: bool, within_noise: bool
) -> None:
    limit = 1000.0 if at_least else 1.5
    target = bench.Target("t", "g", measured, limit, at_least=at_least, shown="")
    assert (target.passed(), target.passed(noise=0.1)) == (strict, within_noise)


def test_a_loss_is_never_tolerated(bench: ModuleType) -> None:
    target = bench.Target("lost rows", "0", 1.0, 0.0, at_least=False, shown="")
    assert not target.passed(noise=0.5)


def _report(bench: ModuleType, *, short: bool, noise: float, measured: float) -> object:
    report = bench.Report(bench.Plan.make(short=short))
    report.noise = noise
    report.targets.append(bench.Target("t", "g", measured, 1.5, at_least=False, shown="x"))
    return report


def test_every_miss_is_printed_as_a_miss_and_short_fails_only_beyond_the_noise(
    bench: ModuleType,
) -> None:
    within = _report(bench, short=True, noise=0.2, measured=1.6)
    beyond = _report(bench, short=True, noise=0.2, measured=1.9)
    full = _report(bench, short=False, noise=0.2, measured=1.6)
    assert bench.target_lines(within)[0][-1].startswith("MISSED (within the machine's noise")
    assert bench.target_lines(beyond)[0][-1] == "MISSED"
    assert (len(bench.failed_targets(within)), len(bench.failed_targets(beyond))) == (0, 1)
    assert len(bench.failed_targets(full)) == 1  # the full run tolerates nothing


def test_the_machine_noise_is_a_small_fraction(bench: ModuleType) -> None:
    noise = sys.modules["_common"].machine_noise(rounds=1)
    assert 0.0 <= noise < 10.0


def test_interleaved_makes_every_call_asked_for_and_takes_turns(bench: ModuleType) -> None:
    calls: list[str] = []
    costs = sys.modules["_common"].interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        rounds=3,
        repeat={"a": 4, "b": 2},
    )
    assert set(costs) == {"a", "b"}
    assert Counter(calls) == {"a": 1 + 3 * 4, "b": 1 + 3 * 2}
    assert "bb" not in "".join(calls[2:])  # b's calls are spread between a's


def test_readme_region_is_replaced_and_the_rest_kept(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\n<!-- bench:start -->\nold table\n<!-- bench:end -->\n\n## After\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(bench, "README", readme)
    monkeypatch.setattr(bench, "REPO", tmp_path)
    bench.update_readme("new table\n")
    assert readme.read_text(encoding="utf-8") == (
        "# Title\n\n<!-- bench:start -->\nnew table\n<!-- bench:end -->\n\n## After\n"
    )


def test_readme_without_markers_is_an_error_not_a_rewrite(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n", encoding="utf-8")
    monkeypatch.setattr(bench, "README", readme)
    with pytest.raises(SystemExit) as exited:
        bench.update_readme("new table\n")
    assert (exited.value.code, readme.read_text(encoding="utf-8")) == (2, "# Title\n")


def test_update_readme_refuses_a_short_run(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        bench.main(["--short", "--update-readme"])
    assert exited.value.code == 2
    assert "needs the full run" in capsys.readouterr().err


def test_synthetic_memory_file_is_what_the_reference_writes_event_by_event(
    bench: ModuleType, tmp_path: Path
) -> None:
    work = sys.modules["_workloads"]
    reference = bench.import_reference()
    assert work.memory_text(reference, 9, tmp_path) == work.replayed_memory_text(
        reference, 9, tmp_path
    )


def test_a_goal_not_gated_is_printed_as_a_miss_but_fails_only_the_full_run(
    bench: ModuleType,
) -> None:
    short = bench.Report(bench.Plan.make(short=True))
    full = bench.Report(bench.Plan.make(short=False))
    for report in (short, full):
        report.targets.append(
            bench.Target("t", "g", 9.0, 1.5, at_least=False, shown="x", not_gated="an open goal")
        )
    assert bench.target_lines(short)[0][-1] == "MISSED; not gated in CI: an open goal"
    assert (len(bench.failed_targets(short)), len(bench.failed_targets(full))) == (0, 1)


def _report_of(bench: ModuleType, measured: dict[str, float], *, short: bool = True) -> object:
    report = bench.Report(bench.Plan.make(short=short))
    for name, value in measured.items():
        report.targets.append(bench.Target(name, "g", value, 1.0, at_least=False, shown="x"))
    return report


def test_a_short_runs_miss_fails_only_if_it_misses_again_when_measured_anew(
    bench: ModuleType,
) -> None:
    first = _report_of(bench, {"stall": 2.0, "regression": 2.0, "fine": 0.5})
    asked: list[set[str]] = []

    def remeasure(names: set[str], attempt: int) -> object:
        asked.append(names)
        return _report_of(bench, {"stall": 0.9, "regression": 2.0})

    failed = bench.confirmed_misses(first, remeasure)
    assert [target.name for target in failed] == ["regression"]
    assert asked == [{"stall", "regression"}, {"regression"}]  # again only what still missed


def test_a_full_runs_miss_is_not_measured_again(bench: ModuleType) -> None:
    first = _report_of(bench, {"slow": 2.0}, short=False)

    def remeasure(names: set[str], attempt: int) -> object:
        raise AssertionError("the full run judges what it measured")

    assert [target.name for target in bench.confirmed_misses(first, remeasure)] == ["slow"]
