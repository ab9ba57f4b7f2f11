"""Start-up costs: importing the package, and a seeded test project."""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Final

import _workloads as work
from _common import LIBRARIES, Bench, Row, Target, X, fmt_ratio, interleaved


def import_time(bench: Bench) -> None:
    """``import fermilink_state`` in a fresh interpreter (and the reference's module)."""
    bench.progress("import time")
    samples: dict[str, list[float]] = {"reference": [], "ours": [], "everything": []}
    pytest_loaded = False
    for module in LIBRARIES.values():
        import_seconds(module)  # writes the bytecode caches users would have
    for number in range(bench.plan.import_runs):
        # Interleaved, the first one to go alternating: drift falls on both.
        order = ["reference", "ours"] if number % 2 == 0 else ["ours", "reference"]
        for side in order:
            seconds, with_pytest = import_seconds(LIBRARIES_BY_SIDE[side])
            samples[side].append(seconds)
            pytest_loaded = pytest_loaded or with_pytest
        samples["everything"].append(import_seconds(work.OURS_MODULE, touch_all=True)[0])
    ours = statistics.median(samples["ours"])
    bench.report.rows.append(
        Row(
            "`import fermilink_state`, fresh interpreter",
            statistics.median(samples["reference"]),
            ours,
            "reference: `import fermilink.optimize.state`",
        )
    )
    reference = statistics.median(samples["reference"])
    everything = statistics.median(samples["everything"])
    bench.report.rows.append(
        Row(
            "`import fermilink_state` and touch every public name",
            reference,
            everything,
            "every library module loaded (what `import fermilink_state` defers)",
            compares="ours loads more than the reference's one module",
        )
    )
    ratio = ours / reference
    bench.report.targets.append(
        Target(
            "import time against the reference",
            f"≤ 1.5{X} `import fermilink.optimize.state`, interleaved runs",
            ratio,
            1.5,
            at_least=False,
            shown=f"{fmt_ratio(ratio)} ({ours * 1e3:.1f} vs {reference * 1e3:.1f} ms)",
        )
    )
    bench.report.targets.append(
        Target(
            "import time",
            "< 60 ms, importing no pytest",
            float("inf") if pytest_loaded else ours * 1e3,
            60.0,
            at_least=False,
            shown=f"{ours * 1e3:.1f} ms, " + ("pytest IMPORTED" if pytest_loaded else "no pytest"),
        )
    )


def seeding(bench: Bench) -> None:
    """A seeded project, as the plugin's ``seeded_project`` sets it up."""
    bench.progress("seeded project setup")
    try:
        from fermilink_state.testing import _project
    except ImportError:
        bench.report.notes.append(
            "seeded project: fermilink_state.testing._project does not exist yet"
        )
        return
    seed: Callable[[Path], object] | None = getattr(_project, "seed_project", None)
    if seed is None:
        bench.report.notes.append(
            "seeded project: fermilink_state.testing._project has no seed_project"
        )
        return
    folder = bench.subfolder("seeded")
    numbers = itertools.count()

    def fresh_root() -> Path:
        root = folder / str(next(numbers))
        root.mkdir()
        return root

    costs = interleaved(
        {
            "reference": lambda: reference_seed(bench.reference, fresh_root()),
            "ours": lambda: seed(fresh_root()),
        },
        rounds=bench.plan.rounds,
        repeat={"reference": 20, "ours": 20},
    )
    bench.report.rows.append(
        Row(
            "`seed_project` (memory, ledger + baseline row, state), fsync off",
            costs["reference"],
            costs["ours"],
            "reference: the same files through its own functions",
            compares="ours fsync off (as in test suites), the reference unsynced: the same work",
        )
    )
    per_test(bench)


_SEEDED_TESTS: Final = """
import pytest

@pytest.mark.parametrize("number", range({count}))
def test_it({fixture}, number):
    pass
"""

# The folders and files a seeded project holds, made and removed by hand with
# the fewest system calls: what the filesystem charges for them, whatever code
# makes them. Written by name, not by the code under test.
_FLOOR_TESTS: Final = """
import os

import pytest

FILES = {{"memory.md": b"m" * 754, "results.tsv": b"r" * 128, "state.json": b"s" * 606}}


@pytest.fixture
def floor_project(tmp_path):
    root = os.path.join(tmp_path, "project")
    campaign = os.path.join(root, ".fermilink-optimize")
    runs = os.path.join(campaign, "runs")
    for folder in (root, campaign, runs):
        os.mkdir(folder)
    for name, data in FILES.items():
        fd = os.open(os.path.join(campaign, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(fd, data)
        os.close(fd)
    yield root
    for name in FILES:
        os.unlink(os.path.join(campaign, name))
    for folder in (runs, campaign, root):
        os.rmdir(folder)


@pytest.mark.parametrize("number", range({count}))
def test_it(floor_project, number):
    pass
"""
_SET_BY_THE_FILESYSTEM: Final = (
    "open in issue 13: where making a folder or file costs this filesystem more than "
    "~50 µs, the seed's 3 folders and 3 files made by hand cost more than the target"
)
_PER_TEST_MODULES: Final = {
    "tmp_path": _SEEDED_TESTS.format(count="{count}", fixture="tmp_path"),
    "seeded_project": _SEEDED_TESTS.format(count="{count}", fixture="seeded_project"),
    "floor_project": _FLOOR_TESTS,
}


def per_test(bench: Bench) -> None:
    """What ``seeded_project`` adds to a test over ``tmp_path``: pytest runs, interleaved.

    A third run makes the same folders and files by hand (``floor_project``):
    what this filesystem charges for them, which no fixture can go below.
    """
    count = bench.plan.seeded_tests
    bench.progress(f"seeded_project vs tmp_path, {count} tests a run")
    folder = bench.subfolder("per-test")
    for fixture, module in _PER_TEST_MODULES.items():
        (folder / f"test_{fixture}.py").write_text(module.format(count=count), encoding="utf-8")
    samples: dict[str, list[float]] = {fixture: [] for fixture in _PER_TEST_MODULES}
    for fixture in samples:  # a first run of each writes the caches
        _pytest_seconds(folder, f"test_{fixture}.py")
    for number in range(bench.plan.seeded_rounds):
        order = list(samples) if number % 2 == 0 else list(samples)[::-1]
        for fixture in order:
            samples[fixture].append(_pytest_seconds(folder, f"test_{fixture}.py"))
    # The fastest run of each: a journal commit or a stall of the disk only
    # ever adds, and at ~1 ms a test it moves a median by more than the target.
    baseline = min(samples["tmp_path"])
    added = (min(samples["seeded_project"]) - baseline) / count
    floor = (min(samples["floor_project"]) - baseline) / count
    bench.report.targets.append(
        Target(
            "`seeded_project` per test",
            "adds ≤ 0.3 ms per test over `tmp_path` (fsync off, as in test suites)",
            added * 1e3,
            0.3,
            at_least=False,
            shown=f"{added * 1e3:+.2f} ms a test; the same 3 folders and 3 files made and "
            f"removed by hand: {floor * 1e3:+.2f} ms ({count} tests a run, "
            f"fastest of {bench.plan.seeded_rounds} interleaved runs each, "
            "bytecode caches warm)",
            not_gated=_SET_BY_THE_FILESYSTEM,
        )
    )


def _pytest_seconds(folder: Path, module: str) -> float:
    # Bytecode caches written and used, as in a user's second and later runs:
    # pytest rewrites the asserts of every module under a ``-p`` plugin's
    # package, so without its cache each run would rewrite the modules the
    # fixtures import (~0.2 ms a test of 500, in the seeded run only).
    env = {**os.environ, "FERMILINK_STATE_FSYNC": "0"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    began = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "fermilink_state",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-o",
            "addopts=",
            module,
        ],
        cwd=folder,
        check=True,
        capture_output=True,
        env=env,
    )
    return time.perf_counter() - began


_IMPORT_PROBE: Final = (
    "import json, sys, time\n"
    "began = time.perf_counter()\n"
    "import {module} as probed\n"
    "{touch}"
    "print(json.dumps([time.perf_counter() - began, 'pytest' in sys.modules]))\n"
)
_TOUCH_ALL: Final = "[getattr(probed, name) for name in probed.__all__]\n"
LIBRARIES_BY_SIDE: Final = {"reference": work.REFERENCE_MODULE, "ours": work.OURS_MODULE}


def import_seconds(module: str, *, touch_all: bool = False) -> tuple[float, bool]:
    """Seconds to import ``module`` in a fresh interpreter, and whether pytest came along.

    ``touch_all``: also look up every name of its ``__all__`` (which loads
    every module a lazy package defers).
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # users import from bytecode caches
    probe = _IMPORT_PROBE.format(module=module, touch=_TOUCH_ALL if touch_all else "")
    output = subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    seconds, with_pytest = json.loads(output)
    return float(seconds), bool(with_pytest)


def reference_seed(reference: ModuleType, root: Path) -> None:
    """The files ``seeded_project`` creates, made with the reference's functions."""
    reference.ensure_optimize_root(root)
    reference.ensure_memory_file(
        reference.memory_path(root),
        package_id="demo_package",
        benchmark_id="demo_benchmark",
        benchmark_rel="benchmark.yaml",
        optimize_branch="fermilink-optimize/demo",
    )
    results = reference.results_path(root)
    reference.ensure_results_file(results)
    reference.append_result(
        results,
        iteration=0,
        commit="baseline",
        status="baseline",
        primary_metric_name="runtime_s",
        primary_metric_value=1.0,
        description="baseline",
    )
    reference.write_state(reference.state_path(root), {"iteration": 0, "status": "running"})
