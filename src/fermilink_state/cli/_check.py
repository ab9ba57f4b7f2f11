"""``fermilink-state check``: find every problem in a campaign folder.

The engine is :mod:`fermilink_state._consistency`, shared with the test
kit's ``assert_campaign_consistent``. It only reads: no file is created (not
even a lock file), changed, moved or removed, so it is safe on a live
campaign and in CI. Each problem names the file and line, says what is wrong
and what to do about it, and is marked when it is crash debris that the next
write repairs.
"""

from __future__ import annotations

from pathlib import Path

from fermilink_state._consistency import CampaignProblem, campaign_problems
from fermilink_state.cli._status import locate_campaign

# The CLI's name for a finding.
Problem = CampaignProblem


def check_campaign(root: Path) -> list[Problem]:
    """Every problem of the campaign at ``root`` (see :func:`locate_campaign`).

    Paths in the problems are ``root`` joined with the file's place in the
    campaign, so they read as the user typed ``root``.
    """
    return campaign_problems(locate_campaign(root))
