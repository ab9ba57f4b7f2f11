"""The toy controller's output pinned by golden files (``campaign_snapshot``).

The golden files are in ``__fermilink_snapshots__/test_toy_controller_golden/``.
After an intended change of the controller's output, rewrite them with
``pytest -p fermilink_state examples/ --fermilink-snapshot-update`` and review
the diff before committing it.
"""

from __future__ import annotations

import pytest
from toy_controller import Benchmark, Candidate, run_campaign

from fermilink_state.testing import CampaignSnapshot, OptimizeProject


def test_two_candidates(
    seeded_project: OptimizeProject,
    campaign_snapshot: CampaignSnapshot,
    candidates: list[Candidate],
    benchmark: Benchmark,
) -> None:
    run_campaign(seeded_project.root, candidates, benchmark)
    campaign_snapshot.assert_match(seeded_project)


@pytest.mark.parametrize("runtime", [0.25, 2.0], ids=["faster", "slower"])
def test_one_candidate(
    seeded_project: OptimizeProject, campaign_snapshot: CampaignSnapshot, runtime: float
) -> None:
    run_campaign(seeded_project.root, [Candidate("c7", "fuse loops")], lambda _c: runtime)
    campaign_snapshot.assert_match(seeded_project, files=["results.tsv", "memory.md"])
