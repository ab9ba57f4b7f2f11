"""A campaign at a glance: where it is, how far it got, who holds it.

The engine behind ``fermilink-state status`` and ``results``. Everything here
only reads: no lock file is created, nothing is moved aside, so it is safe to
run against a live campaign.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fermilink_state._errors import StateCorruptError
from fermilink_state._jsonio import read_json_file
from fermilink_state._layout import OPTIMIZE_DIRNAME, optimize_root, results_path, state_path
from fermilink_state._locking import LockBackend, choose_lock_backend
from fermilink_state._results import ACCEPTED_STATUSES, ResultRow
from fermilink_state._runlock import RunLockStatus, run_lock_status
from fermilink_state._wording import counted
from fermilink_state.cli._tally import ROW_KINDS, Direction, RowKind, row_kind, tally_ledger

__all__ = ["ROW_KINDS", "Direction", "RowKind", "row_kind"]  # re-exported for the plot
DEFAULT_TAIL: Final = 8


class CampaignNotFoundError(FileNotFoundError):
    """``ROOT`` holds no ``.fermilink-optimize/`` folder."""


def locate_campaign(root: Path) -> Path:
    """The project root of the campaign at ``root``.

    ``root`` is the project root (the folder holding ``.fermilink-optimize/``)
    or that folder itself. Raises :class:`CampaignNotFoundError` saying what to
    do when neither holds a campaign.
    """
    root = Path(root)
    if root.name == OPTIMIZE_DIRNAME and root.is_dir():
        return root.parent
    if not root.is_dir():
        raise CampaignNotFoundError(
            f"{root}: no such folder; pass the project root that holds {OPTIMIZE_DIRNAME}/"
        )
    if not optimize_root(root).is_dir():
        raise CampaignNotFoundError(
            f"{root}: no campaign here (no {OPTIMIZE_DIRNAME}/ folder); run from the project "
            "root or pass it as ROOT (`fermilink-state demo` makes one to try)"
        )
    return root


def incumbent_steps(rows: list[ResultRow], direction: Direction) -> list[ResultRow]:
    """The rows that became the incumbent, in ledger order.

    Each is a baseline or accepted row with a finite value better than every
    such row before it (the first one counts); ties keep the earlier row, as
    :func:`best_result` does.
    """
    steps: list[ResultRow] = []
    best: float | None = None
    for row in rows:
        value = row.numeric_value
        if row.status not in ACCEPTED_STATUSES or value is None or math.isinf(value):
            continue
        if best is None or (value < best if direction == "minimize" else value > best):
            best = value
            steps.append(row)
    return steps


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    """What ``fermilink-state status`` reports about one campaign.

    ``baseline``, ``accepted``, ``rejected`` and ``failed`` count the rows of
    each kind (see :func:`~fermilink_state.cli._tally.kind_of`, the rule
    ``plot`` uses too): they add up to ``rows``. ``by_status`` counts the
    status cells as written. ``skipped`` holds one message per ledger line
    that did not parse.
    """

    project_root: Path
    iteration: int
    rows: int
    baseline: int
    accepted: int
    rejected: int
    failed: int
    by_status: dict[str, int]
    incumbent: ResultRow | None
    direction: Direction
    run_lock: RunLockStatus
    recent: list[ResultRow]
    state: dict[str, Any] | None
    state_problem: str | None = None
    skipped: list[str] = field(default_factory=list)
    lock_backend: LockBackend | None = None

    @property
    def optimize_root(self) -> Path:
        """The campaign folder, ``<project_root>/.fermilink-optimize``."""
        return optimize_root(self.project_root)


def _read_state(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return read_json_file(path), None
    except FileNotFoundError:
        return None, None
    except StateCorruptError as error:
        return None, f"{path}: {error.reason}"
    except OSError as error:
        return None, f"{path}: {error.strerror or error}"


def summarize(
    project_root: Path, *, direction: Direction = "minimize", tail: int = DEFAULT_TAIL
) -> CampaignSummary:
    """Read the campaign at ``project_root`` (see :func:`locate_campaign`).

    Reads the ledger once, a block at a time (bounded memory whatever its
    length), skipping (and reporting) malformed lines rather than failing,
    so a damaged campaign can still be looked at.
    """
    project_root = locate_campaign(project_root).absolute()
    state, state_problem = _read_state(state_path(project_root))
    recorded = state.get("iteration") if state else None
    if isinstance(recorded, bool) or not isinstance(recorded, int):
        recorded = None
    tally, skipped = tally_ledger(
        results_path(project_root),
        direction=direction,
        tail=tail,
        want_last_iteration=recorded is None,
    )
    iteration: int = recorded if recorded is not None else (tally.last_iteration or 0)
    kinds = tally.kinds
    return CampaignSummary(
        project_root=project_root,
        iteration=iteration,
        rows=tally.rows,
        baseline=kinds["baseline"],
        accepted=kinds["accepted"],
        rejected=kinds["rejected"],
        failed=kinds["failed"],
        by_status=dict(sorted(tally.by_status.items())),
        incumbent=tally.incumbent,
        direction=direction,
        run_lock=run_lock_status(project_root),
        recent=list(tally.recent),
        state=state,
        state_problem=state_problem,
        skipped=skipped,
        lock_backend=choose_lock_backend(optimize_root(project_root)),
    )


def metric_text(row: ResultRow) -> str:
    """``name=value`` with the value as the ledger shows it."""
    value = row.primary_metric_value
    shown = f"{value:.12g}" if isinstance(value, float) else value
    return f"{row.primary_metric_name}={shown}"


def row_json(row: ResultRow) -> dict[str, Any]:
    """A row as strict JSON: a non-finite or text value stays a string."""
    payload = row.as_dict()
    value = row.primary_metric_value
    if isinstance(value, float) and not math.isfinite(value):
        payload["primary_metric_value"] = f"{value:.12g}"
    return payload


def jsonable(value: Any) -> Any:
    """``value`` with every non-finite float turned into its text (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value:.12g}"
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def lock_json(status: RunLockStatus) -> dict[str, Any]:
    """The run-lock part of ``status --json``."""
    return {"state": status.state, "reason": status.reason, "holder": jsonable(status.holder)}


def backend_json(backend: LockBackend) -> dict[str, Any]:
    """The file-lock backend part of ``status --json``: its name and why."""
    return {"name": backend.name, "reason": backend.reason, "filesystem": backend.filesystem}


def summary_json(summary: CampaignSummary) -> dict[str, Any]:
    """``status --json``: every field of the summary as strict JSON."""
    return {
        "project_root": str(summary.project_root),
        "optimize_root": str(summary.optimize_root),
        "iteration": summary.iteration,
        "rows": summary.rows,
        "baseline": summary.baseline,
        "accepted": summary.accepted,
        "rejected": summary.rejected,
        "failed": summary.failed,
        "by_status": summary.by_status,
        "direction": summary.direction,
        "incumbent": None if summary.incumbent is None else row_json(summary.incumbent),
        "run_lock": lock_json(summary.run_lock),
        "recent": [row_json(row) for row in summary.recent],
        "state": jsonable(summary.state),
        "state_problem": summary.state_problem,
        "skipped": summary.skipped,
        "lock_backend": None
        if summary.lock_backend is None
        else backend_json(summary.lock_backend),
    }


def render_table(rows: list[ResultRow]) -> str:
    """Rows as an aligned text table with a header line, newline-terminated."""
    header = ("iteration", "commit", "status", "metric", "description")
    cells = [
        (str(row.iteration), row.commit, row.status, metric_text(row), row.description)
        for row in rows
    ]
    widths = [max(len(line[col]) for line in [header, *cells]) for col in range(len(header) - 1)]
    lines = []
    for line in [header, *cells]:
        padded = [text.ljust(width) for text, width in zip(line, widths, strict=False)]
        lines.append("  ".join([*padded, line[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def _lock_line(status: RunLockStatus) -> str:
    if status.state == "inactive":
        return "none (no campaign process is running)"
    started = (status.holder or {}).get("started_at_utc")
    since = f", since {started}" if started else ""
    if status.state == "active":
        return f"{status.reason}{since}"
    return f"STALE: {status.reason}{since}; clear it with `fermilink-state unlock`"


def render_summary(summary: CampaignSummary) -> str:
    """``status`` as text: one fact per line, then the last results."""
    incumbent = summary.incumbent
    if incumbent is None:
        best = f"none yet (no baseline or accepted row with a numeric value; {summary.direction})"
    else:
        best = (
            f"{metric_text(incumbent)} ({incumbent.status}, iteration {incumbent.iteration}, "
            f"commit {incumbent.commit}; {summary.direction})"
        )
    counts = f"{counted(summary.rows, 'row')}: " + ", ".join(
        f"{getattr(summary, kind)} {kind}" for kind in ROW_KINDS
    )
    lines = [
        f"campaign   {summary.optimize_root}",
        f"iteration  {summary.iteration}",
        f"results    {counts}",
        f"incumbent  {best}",
        f"run lock   {_lock_line(summary.run_lock)}",
    ]
    if summary.lock_backend is not None:
        lines.append(f"file locks {summary.lock_backend.name} ({summary.lock_backend.reason})")
    if summary.state_problem:
        lines.append(f"warning    {summary.state_problem}; see `fermilink-state check`")
    if summary.skipped:
        lines.append(
            f"warning    {counted(len(summary.skipped), 'malformed ledger line')} skipped; "
            "see `fermilink-state check`"
        )
    text = "\n".join(lines) + "\n"
    if summary.recent:
        last = (
            "the last result" if len(summary.recent) == 1 else f"last {len(summary.recent)} results"
        )
        text += f"\n{last}:\n" + render_table(summary.recent)
    else:
        text += "\nno results recorded yet\n"
    return text
