"""One iteration of a campaign, written in the order that survives any crash."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fermilink_state._jsonio import write_state
from fermilink_state._layout import memory_path, results_path, state_path
from fermilink_state._memory import record_campaign_event
from fermilink_state._results import append_result


def record_iteration(
    project_root: Path,
    *,
    row: Mapping[str, Any],
    event: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
) -> None:
    """Record one evaluated candidate: the ledger row, then the event, then the state.

    ``row`` holds :func:`append_result`'s keywords, ``event``
    :func:`record_campaign_event`'s, ``state`` the new ``state.json``. Each
    write is durable (with fsync on) before the next starts, so after a kill
    or a power cut at any instant ``state.json`` never names an iteration or
    an incumbent that ``results.tsv`` lacks: the ledger is the source of
    truth, the memory event a summary of it, the state a pointer into it. A
    controller that calls the three writers itself keeps the same order.
    """
    project_root = Path(project_root)
    append_result(results_path(project_root), **row)
    if event is not None:
        record_campaign_event(memory_path(project_root), **event)
    if state is not None:
        write_state(state_path(project_root), dict(state))
