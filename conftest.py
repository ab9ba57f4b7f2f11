"""Root conftest: the project's own suite runs with its plugin enabled."""

from __future__ import annotations

import os

# Durability is proven by the fault-injection tests, which turn fsync back on;
# everywhere else it only slows a 2-core CI machine down.
os.environ.setdefault("FERMILINK_STATE_FSYNC", "0")

pytest_plugins = ["fermilink_state"]
