"""The example's fixtures. The plugin itself comes from ``-p fermilink_state``.

(A conftest below the rootdir may not set ``pytest_plugins``; a project whose
rootdir this is could enable the plugin here with
``pytest_plugins = ["fermilink_state"]`` instead.)
"""

from __future__ import annotations

import pytest
from toy_controller import Benchmark, Candidate


@pytest.fixture
def candidates() -> list[Candidate]:
    """Two proposals: the first helps, the second does not."""
    return [Candidate("c1", "vectorize the inner loop"), Candidate("c2", "unroll by 8")]


@pytest.fixture
def benchmark() -> Benchmark:
    """A fake benchmark: runtime by candidate commit (the seeded baseline is 1.0)."""
    timings = {"c1": 0.5, "c2": 0.75}
    return lambda candidate: timings[candidate.commit]
