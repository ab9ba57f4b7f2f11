"""Hypothesis strategies for campaign data: hostile rows, torn ledgers, odd memories.

Install with ``pip install 'fermilink-state[hypothesis]'``. Once the package
is installed, ``st.from_type(ResultRow)`` and ``st.from_type(MemoryDocument)``
work without importing this module: Hypothesis loads
:func:`register_type_strategies` through its ``hypothesis`` entry point.

- :func:`result_rows`: ledger rows with hostile cells (tabs, line breaks,
  NaN and infinities, huge numbers, unicode, empty cells).
- :func:`ledgers`: the bytes of a ``results.tsv``, optionally ending in a
  torn row or the NUL padding a power cut leaves.
- :func:`memory_texts`: memories from the templates, with CRLF, a BOM,
  fenced code holding headings, duplicate and missing headings, trailing
  spaces.
- :func:`states`: ``state.json`` payloads; :func:`campaign_specs` all three
  files; :func:`campaigns` writes each example into a folder of its own.
"""

from __future__ import annotations

try:
    from hypothesis import strategies as st
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "fermilink_state.strategies needs Hypothesis: install it with "
        "pip install 'fermilink-state[hypothesis]'"
    ) from error

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, final

from fermilink_state._document import MemoryDocument, parse_memory
from fermilink_state._jsonio import dump_json
from fermilink_state._memory import memory_template, worker_memory_template
from fermilink_state._results import RESULTS_HEADER, ResultRow

if TYPE_CHECKING:
    from fermilink_state.testing._project import OptimizeProject

__all__ = [
    "CampaignSpec",
    "campaign_specs",
    "campaigns",
    "ledgers",
    "memory_texts",
    "register_type_strategies",
    "result_rows",
    "states",
]

TailKind = Literal["clean", "torn", "nul"]
TAIL_KINDS: Final[tuple[TailKind, ...]] = ("clean", "torn", "nul")

# Characters a cell must survive: every line break str.splitlines knows, the
# tab, NUL, a BOM, non-ASCII letters and an emoji.
_HOSTILE_CHARS: Final = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00\ufeff é漢😀 #`~"
_FIELD_CHARS: Final = st.characters(codec="utf-8") | st.sampled_from(_HOSTILE_CHARS)


def _cells(max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(_FIELD_CHARS, max_size=max_size)


def _metric_values() -> st.SearchStrategy[float | str]:
    numbers = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
        [0.0, -0.0, 1e308, -1e308, 5e-324, 1.0 / 3.0, 123456789012345.0]
    )
    words = st.sampled_from(["", "n/a", "timeout", "1e5", " 2 ", "nan", "-inf"]) | _cells()
    return numbers | words


def result_rows(
    *,
    iterations: st.SearchStrategy[int] | None = None,
    statuses: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[ResultRow]:
    """Ledger rows with hostile cells, as a controller might pass them to ``append_result``.

    Every text cell may hold tabs, line breaks, NUL, unicode or nothing; the
    metric is any float (NaN, infinities, huge and tiny) or text. Pass
    ``iterations`` / ``statuses`` to narrow those cells.
    """
    return st.builds(
        _row,
        iteration=iterations if iterations is not None else st.integers(-1, 2**63),
        commit=_cells() | st.text("0123456789abcdef", min_size=7, max_size=40),
        status=statuses
        if statuses is not None
        else st.sampled_from(["baseline", "accepted", "rejected", "crashed"]) | _cells(),
        primary_metric_name=st.sampled_from(["runtime_seconds", "score"]) | _cells(),
        primary_metric_value=_metric_values(),
        description=_cells(40),
    )


def _row(**cells: Any) -> ResultRow:
    # Keywords, not positions: ResultRow may be a dataclass or a NamedTuple.
    return ResultRow(**cells)


def _ledger_text(rows: list[ResultRow] | tuple[ResultRow, ...]) -> str:
    # Imported here: Hypothesis imports this module at start-up (entry point),
    # and the test kit is only needed once a ledger is drawn.
    from fermilink_state.testing._project import results_text

    return results_text(rows)


@st.composite
def ledgers(
    draw: st.DrawFn,
    rows: st.SearchStrategy[ResultRow] | None = None,
    *,
    max_rows: int = 8,
    tails: tuple[TailKind, ...] = TAIL_KINDS,
) -> bytes:
    """The bytes of a ``results.tsv``: the header, rows as ``append_result`` writes them,
    then a tail drawn from ``tails``.

    ``"torn"`` ends in a row cut short (no newline), as a writer killed
    mid-append leaves it; ``"nul"`` ends in NUL bytes, as a power cut can
    leave an append whose size was synced before its data. The complete rows
    are the ledger's first lines either way.
    """
    drawn = draw(st.lists(rows if rows is not None else result_rows(), max_size=max_rows))
    data = _ledger_text(drawn).encode("utf-8")
    tail = draw(st.sampled_from(tails))
    if tail == "torn":
        torn = draw(rows if rows is not None else result_rows())
        line = _ledger_text([torn])[len(RESULTS_HEADER) :].encode("utf-8")
        data += line[: draw(st.integers(1, len(line) - 1))]
    elif tail == "nul":
        data += b"\x00" * draw(st.integers(1, 4096))
    return data


_IDS: Final = st.text(st.characters(categories=["L", "N"], codec="utf-8"), min_size=1, max_size=12)
_STAMPS: Final = st.datetimes(timezones=st.just(UTC)).map(
    lambda moment: moment.isoformat().replace("+00:00", "Z")
)


@st.composite
def _template(draw: st.DrawFn, worker: bool) -> str:
    package, benchmark = draw(_IDS), draw(_IDS)
    benchmark_rel = f"benchmarks/{draw(_IDS)}.yaml"
    if worker:
        return worker_memory_template(
            package_id=package,
            benchmark_id=benchmark,
            benchmark_rel=benchmark_rel,
            program_rel=".fermilink-optimize/program.md",
            controller_memory_rel=".fermilink-optimize/memory.md",
            results_rel=".fermilink-optimize/results.tsv",
            worker_iteration=draw(st.integers(0, 10_000)),
            now=draw(_STAMPS),
        )
    return memory_template(
        package_id=package,
        benchmark_id=benchmark,
        benchmark_rel=benchmark_rel,
        optimize_branch=f"fermilink-optimize/{draw(_IDS)}",
        started=draw(_STAMPS),
    )


_FENCED: Final = st.sampled_from(
    [
        "```\n## Not a heading\n### Nor this\n```\n",
        "~~~python\n# comment, not a title\n~~~\n",
        "````\n```\n## still code\n```\n````\n",
    ]
)
_EXTRA_LINES: Final = st.sampled_from(
    ["- note", "#### deeper heading is content", "", "plain text", "-  two  spaces", "- ✓ done"]
)


def _lines_of(text: str) -> list[str]:
    return text.split("\n")


@st.composite
def memory_texts(draw: st.DrawFn, *, worker: bool | None = None) -> str:
    """A memory built from the controller or worker template, then roughened.

    Any of: extra lines, fenced code whose lines look like headings,
    trailing spaces, a duplicated section, a missing heading line, CRLF line
    endings, a BOM. ``worker`` picks the template (default: either).
    """
    use_worker = draw(st.booleans()) if worker is None else worker
    lines = _lines_of(draw(_template(use_worker)))
    headings = [index for index, line in enumerate(lines) if line.startswith("#")]
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(1, len(lines)))
        lines[at:at] = [draw(_EXTRA_LINES)]
    if draw(st.booleans()):
        at = draw(st.integers(1, len(lines)))
        lines[at:at] = _lines_of(draw(_FENCED))[:-1]
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        lines[at] += " " * draw(st.integers(1, 3))
    text = "\n".join(lines)
    if draw(st.booleans()):  # a duplicate heading: the same section twice
        heading = lines[draw(st.sampled_from(headings))].rstrip(" ")
        text += f"{heading}\n- again\n"
    if draw(st.booleans()):  # a missing heading: one heading line dropped
        lines = _lines_of(text)
        dropped = draw(st.sampled_from([i for i, line in enumerate(lines) if line.startswith("#")]))
        del lines[dropped]
        text = "\n".join(lines)
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text


_JSON_SCALARS: Final = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _cells()
)
_JSON: Final = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_cells(8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def states(draw: st.DrawFn) -> dict[str, Any]:
    """A ``state.json`` payload: the controller's keys with drawn values, plus extra keys.

    Every value survives a JSON round trip (no NaN: JSON has none).
    """
    commit = draw(st.text("0123456789abcdef", min_size=7, max_size=40))
    counts = st.integers(0, 10_000)
    state: dict[str, Any] = {
        "schema_version": 1,
        "package_id": draw(_IDS),
        "benchmark_id": draw(_IDS),
        "branch": f"fermilink-optimize/{draw(_IDS)}",
        "started_at_utc": draw(_STAMPS),
        "iteration": draw(counts),
        "accepted_count": draw(counts),
        "rejected_count": draw(counts),
        "consecutive_rejections": draw(counts),
        "baseline_commit": commit,
        "incumbent_commit": draw(st.just(commit) | st.text("0123456789abcdef", min_size=7)),
        "incumbent_metrics": draw(
            st.dictionaries(_IDS, st.floats(allow_nan=False, allow_infinity=False), max_size=3)
        ),
    }
    extra = draw(st.dictionaries(_cells(8), _JSON, max_size=3))
    return {**extra, **state}


@final
@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """A whole campaign to write: memory text, ledger bytes, state and worker memory."""

    memory: str
    results: bytes
    state: Mapping[str, Any]
    worker_memory: str | None = None
    rows: tuple[ResultRow, ...] = field(default=())

    def materialize(self, root: Path) -> OptimizeProject:
        """Write the campaign into ``root`` (created if missing) and return its project."""
        from fermilink_state._atomic import atomic_write_bytes
        from fermilink_state.testing._project import new_project

        project = new_project(Path(root))
        atomic_write_bytes(project.memory_path, self.memory.encode("utf-8"), durable=False)
        atomic_write_bytes(project.results_path, self.results, durable=False)
        atomic_write_bytes(
            project.state_path, dump_json(dict(self.state)).encode("utf-8"), durable=False
        )
        if self.worker_memory is not None:
            data = self.worker_memory.encode("utf-8")
            atomic_write_bytes(project.worker_memory_path, data, durable=False)
        return project


@st.composite
def campaign_specs(draw: st.DrawFn, *, tails: tuple[TailKind, ...] = ("clean",)) -> CampaignSpec:
    """A :class:`CampaignSpec`: memory, a ledger (clean tail by default), a state."""
    rows = tuple(draw(st.lists(result_rows(), max_size=6)))
    results = _ledger_text(rows).encode("utf-8")
    tail = draw(ledgers(st.nothing(), max_rows=0, tails=tails))[len(RESULTS_HEADER) :]
    worker = draw(st.none() | memory_texts(worker=True))
    return CampaignSpec(
        memory=draw(memory_texts(worker=False)),
        results=results + tail,
        state=draw(states()),
        worker_memory=worker,
        rows=rows,
    )


def campaigns(
    root: Path, *, specs: st.SearchStrategy[CampaignSpec] | None = None
) -> st.SearchStrategy[OptimizeProject]:
    """Campaigns written to disk: each example in a new folder under ``root``.

    ``root`` must exist (a test's ``tmp_path`` or ``tmp_path_factory`` folder);
    the folders stay until ``root`` is removed.
    """
    root = Path(root)

    def write(spec: CampaignSpec) -> OptimizeProject:
        return spec.materialize(Path(tempfile.mkdtemp(prefix="campaign-", dir=root)))

    return (specs if specs is not None else campaign_specs()).map(write)


def register_type_strategies() -> None:
    """Make ``st.from_type`` draw :func:`result_rows` for ``ResultRow`` and parsed
    :func:`memory_texts` for ``MemoryDocument``.

    Hypothesis calls this through the package's ``hypothesis`` entry point;
    calling it again is harmless.
    """
    registered: Mapping[type, Callable[[], st.SearchStrategy[Any]]] = {
        ResultRow: result_rows,
        MemoryDocument: lambda: memory_texts().map(parse_memory),
    }
    for kind, make in registered.items():
        st.register_type_strategy(kind, st.deferred(make))


CampaignSpec.__module__ = __name__
