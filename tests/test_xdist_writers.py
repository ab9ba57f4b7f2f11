"""A test suite run under pytest-xdist, every test writing one shared campaign.

The generated suite has the campaign's path baked in, so its tests write the
same files from four worker processes; afterwards every row, event and memory
edit is counted, one by one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support_concurrency import count_losses, seed_campaign

GENERATED = """
from pathlib import Path

import pytest
from support_concurrency import Campaign, write_one

CAMPAIGN = Campaign(Path({root!r}))


@pytest.mark.parametrize("writer", range({tests}))
def test_writes_the_shared_campaign(writer):
    for iteration in range({iterations}):
        write_one(CAMPAIGN, writer, iteration)
"""


@pytest.mark.parametrize(
    ("tests", "iterations"),
    [
        pytest.param(24, 5, id="24x5"),
        pytest.param(100, 10, id="100x10", marks=[pytest.mark.stress, pytest.mark.timeout(600)]),
    ],
)
@pytest.mark.timeout(180)
def test_xdist_workers_lose_nothing(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tests: int,
    iterations: int,
) -> None:
    campaign = seed_campaign(tmp_path / "shared")
    tests_dir = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(
        test_shared_writes=GENERATED.format(
            root=str(campaign.root), tests=tests, iterations=iterations
        )
    )
    result = pytester.runpytest_subprocess("-n", "4", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=tests)
    result.stdout.fnmatch_lines(["*4 workers*"])  # really four processes, not one
    report = count_losses(campaign, writers=tests, iterations=iterations)
    assert report.counts() == dict.fromkeys(report.counts(), 0), report.explain()
