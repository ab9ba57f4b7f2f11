"""``fermilink-state plot``: the primary metric over iterations, as plain SVG.

No plotting library: the chart is plain SVG text, readable in any browser.
Up to ``DETAILED_ROWS`` rows, every row gets exactly one mark (class
``mark`` plus its kind) with a tooltip; a longer ledger is drawn per pixel
column (each kind's lowest to highest value), so the file stays well under
a megabyte at a million rows while the legend's counts and the incumbent
line stay exact. Rows without a finite value sit in a "no value" band along
the bottom instead of vanishing.
"""

from __future__ import annotations

import math
import struct
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress
from pathlib import Path
from typing import Final, cast
from xml.sax.saxutils import escape, quoteattr

from fermilink_state._results import (
    ACCEPTED_STATUSES,
    LedgerBlock,
    ResultRow,
    all_finite,
    key_cells,
    text_block,
)
from fermilink_state._wording import counted
from fermilink_state.cli._status import metric_text
from fermilink_state.cli._tally import (
    ROW_KINDS,
    Direction,
    RowKind,
    count_codes,
    count_kinds,
    finite_kind_codes,
    kind_of,
    read_leniently,
    row_kind,
)

DETAILED_ROWS: Final = 2_000  # up to this many rows, one mark (and tooltip) each
BAND_GROUP: Final = "band"  # failed rows without a finite value, drawn along the bottom
WIDTH: Final = 880
HEIGHT: Final = 520
LEFT: Final = 92
RIGHT: Final = WIDTH - 28
TOP: Final = 92
BAND: Final = 26  # height of the "no value" band under the plot area
BOTTOM: Final = HEIGHT - 64  # bottom of the band; the x axis sits here
PLOT_BOTTOM: Final = BOTTOM - BAND - 8
COLORS: Final[dict[str, str]] = {
    "baseline": "#222222",
    "accepted": "#1a9850",
    "rejected": "#d73027",
    "failed": "#7b3294",
    "incumbent": "#1a9850",
}
STYLE: Final = """
text { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; fill: #222; }
.title { font-size: 17px; font-weight: bold; }
.subtitle, .legend { font-size: 12.5px; }
.tick { font-size: 11px; fill: #555; }
.label { font-size: 13px; }
.grid { stroke: #e6e6e6; stroke-width: 1; }
.axis { stroke: #444; stroke-width: 1; fill: none; }
.band { fill: #f6f1fa; }
.incumbent { fill: none; stroke: #1a9850; stroke-width: 2; stroke-opacity: 0.85; }
.baseline { fill: #222222; stroke: #ffffff; stroke-width: 0.75; }
.accepted { fill: #1a9850; stroke: #ffffff; stroke-width: 0.75; }
.rejected { fill: none; stroke: #d73027; stroke-width: 1.2; stroke-opacity: 0.75; }
.failed { fill: none; stroke: #7b3294; stroke-width: 1.6; }
.span { fill: none; stroke-linecap: round; }
.span.baseline { stroke: #222222; }
.span.accepted { stroke: #1a9850; }
.span.rejected { stroke: #d73027; stroke-opacity: 0.6; }
.span.failed { stroke: #7b3294; }
"""


@dataclass(frozen=True, slots=True)
class _Scale:
    """A linear map from data values to SVG coordinates."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)

    def inverse(self, coordinate: float) -> float:
        """The data value drawn at ``coordinate``."""
        return self.low + (coordinate - self.start) / (self.end - self.start) * (
            self.high - self.low
        )


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power  # pragma: no cover - the loop always returns


def _ticks(low: float, high: float, count: int = 6, *, integer: bool = False) -> list[float]:
    step = _nice_step(high - low, count)
    if integer:
        step = max(1.0, math.ceil(step))
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [index * step for index in range(first, last + 1)]


def _tick_label(value: float, step: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or step < 1e-4:
        return f"{value:.4g}"
    if step >= 1:
        return f"{value:.0f}"
    return f"{value:.{math.ceil(-math.log10(step) - 1e-9)}f}"


def _range(values: Sequence[float], pad: float) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high == low:
        spread = abs(low) * 0.1 or 1.0
        return low - spread, high + spread
    margin = (high - low) * pad
    return low - margin, high + margin


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _mark(kind: RowKind, x: float, y: float, size: float, tip: str) -> str:
    title = f"<title>{escape(tip)}</title>"
    if kind in ("accepted", "rejected"):
        return (
            f'<circle class="mark {kind}" cx="{_num(x)}" cy="{_num(y)}" r="{size}">{title}</circle>'
        )
    s = size * 1.3
    if kind == "baseline":
        shape = f"M{_num(x)} {_num(y - s)}l{s} {s}l{-s} {s}l{-s} {-s}z"
    else:
        shape = f"M{_num(x - s)} {_num(y - s)}l{2 * s} {2 * s}m0 {-2 * s}l{-2 * s} {2 * s}"
    return f'<path class="mark {kind}" d="{shape}">{title}</path>'


def _tip(row: ResultRow) -> str:
    text = f"iteration {row.iteration} · {row.status} · {metric_text(row)} · commit {row.commit}"
    return f"{text} · {row.description}" if row.description else text


class _Group:
    """The points of one kind of row (or of the band): flat float arrays, 16 bytes a point."""

    __slots__ = ("ascending", "xs", "ys")

    def __init__(self) -> None:
        self.xs: array[float] = array("d")
        self.ys: array[float] = array("d")
        self.ascending = True  # whether xs never decrease (then no sort is needed)

    def extend(self, xs: list[int] | list[float], ys: list[float], *, ascending: bool) -> None:
        """Append points; ``ascending`` says whether ``xs`` never decrease."""
        if not xs:
            return
        if self.ascending:
            self.ascending = ascending and (not self.xs or self.xs[-1] <= xs[0])
        self.xs.frombytes(_packed(xs))  # ints become floats
        self.ys.frombytes(_packed(ys))

    def in_order(self) -> tuple[Sequence[float], Sequence[float]]:
        """The points in iteration order (usually they are already: no sort then)."""
        if self.ascending:
            return self.xs, self.ys
        pairs = sorted(zip(self.xs, self.ys, strict=True))
        return [x for x, _ in pairs], [y for _, y in pairs]


# bytes.translate tables: the rows of one kind code become 1, the others 0.
_PICK: Final = [bytes(int(byte == code) for byte in range(256)) for code in range(len(ROW_KINDS))]


def _packed(values: list[int] | list[float]) -> bytes:
    """``values`` as C doubles: one struct call, several times faster than ``fromlist``."""
    return struct.pack(f"{len(values)}d", *values)


def _ascending(xs: list[int] | list[float]) -> bool:
    # Timsort finds a sorted list in one pass of C comparisons: faster than
    # comparing neighbours through map().
    return sorted(xs) == xs


def _widen(extent: list[float], values: Sequence[float], *, ascending: bool = False) -> None:
    """Widen ``[lowest, highest]`` to take in ``values`` (not empty)."""
    lowest, highest = (values[0], values[-1]) if ascending else (min(values), max(values))
    extent[0] = min(extent[0], lowest)
    extent[1] = max(extent[1], highest)


class PlotData:
    """What the chart needs from a ledger, gathered a block of rows at a time.

    Per kind of row, the iterations and values of the points, in flat float
    arrays (16 bytes a row, no object per row); the counts by the shared rule
    (:func:`~fermilink_state.cli._tally.count_kinds`); the range of the
    iterations and of the finite values; and the rows themselves while there
    are at most ``DETAILED_ROWS`` of them, for one mark and tooltip each.
    Rows without a finite value go to the ``band``.
    """

    def __init__(self) -> None:
        self.counts: Counter[RowKind] = Counter()
        self.names: Counter[str] = Counter()
        self.points: dict[str, _Group] = {group: _Group() for group in (*ROW_KINDS, BAND_GROUP)}
        self.rows: list[ResultRow] | None = []
        # [lowest, highest]: every iteration, and every finite value.
        self.x_extent = [math.inf, -math.inf]
        self.y_extent = [math.inf, -math.inf]

    @property
    def total(self) -> int:
        """How many rows were added."""
        return sum(self.counts.values())

    def add_text(self, path: Path, first: int, text: str, plain: bool) -> None:
        """Add one block of the ledger's text (see ``ledger_texts``)."""
        cells = key_cells(text) if plain and first > 1 and self.rows is None else None
        if cells is None:
            block = text_block(path, first, text, plain=plain, strict=False)
            if block is not None:
                self.add(block)
            return
        self._count_names(cells.names)
        self._add_points(cells.iterations, cells.statuses, cells.values)

    def add(self, block: LedgerBlock) -> None:
        """Add one block of rows."""
        self._count_names(block.names)
        if self.rows is not None:
            self.rows += block.rows()
            if len(self.rows) > DETAILED_ROWS:
                self.rows = None
        self._add_points(list(block.iterations), block.statuses, list(block.values))

    def _count_names(self, names: Sequence[str]) -> None:
        # A campaign names one metric: one comparison a row, no count per row.
        if names and names.count(names[0]) == len(names):
            self.names[names[0]] += len(names)
        else:
            self.names.update(names)

    def _add_points(
        self, iterations: list[int], statuses: Sequence[str], values: list[float | str]
    ) -> None:
        """Count the rows by kind, and add each to its kind's points (or the band)."""
        if not iterations:
            return
        ascending = _ascending(iterations)
        _widen(self.x_extent, iterations, ascending=ascending)
        if all_finite(values):
            # Whole columns at a time: a million rows cost no Python step each.
            floats = cast(list[float], values)
            _widen(self.y_extent, floats)
            codes = finite_kind_codes(statuses)
            kinds = count_codes(codes)
            self.counts.update(kinds)
            for code, kind in enumerate(ROW_KINDS):
                if kinds[kind] == len(codes):
                    self.points[kind].extend(iterations, floats, ascending=ascending)
                elif kinds[kind]:
                    chosen = codes.translate(_PICK[code])
                    xs = list(compress(iterations, chosen))
                    self.points[kind].extend(
                        xs,
                        list(compress(floats, chosen)),
                        # A subsequence of an ascending block ascends too.
                        ascending=ascending or _ascending(xs),
                    )
            return
        self.counts.update(count_kinds(statuses, values))
        grouped: dict[str, tuple[list[int], list[float]]] = {}
        for iteration, status, value in zip(iterations, statuses, values, strict=True):
            finite = isinstance(value, float) and math.isfinite(value)
            group = kind_of(status, value) if finite else BAND_GROUP
            xs, ys = grouped.setdefault(group, ([], []))
            xs.append(iteration)
            ys.append(value if finite else math.nan)  # type: ignore[arg-type]
        for name, (xs, ys) in grouped.items():
            if name != BAND_GROUP:
                _widen(self.y_extent, ys)
            self.points[name].extend(xs, ys, ascending=_ascending(xs))

    def metric_label(self) -> str:
        """The y axis label: the most common metric names."""
        return " / ".join(name for name, _ in self.names.most_common(3)) or "primary metric"


def plot_data(rows: Iterable[ResultRow]) -> PlotData:
    """:class:`PlotData` of a sequence of rows."""
    data = PlotData()
    rows = list(rows)
    if rows:
        data.add(LedgerBlock(*zip(*rows, strict=True)))
    return data


def render_svg(
    rows: Sequence[ResultRow] | PlotData,
    *,
    direction: Direction = "minimize",
    title: str | None = None,
) -> str:
    """The chart of ``rows`` as an SVG document (text, ends with a newline).

    x is the iteration, y the primary metric; baseline, accepted, rejected and
    failed rows have distinct marks; the incumbent (best baseline or accepted
    value so far, by ``direction``) is a step line. Rows whose value is NaN,
    infinite or text are failures drawn in a band along the bottom. Up to
    ``DETAILED_ROWS`` rows each get a mark with a tooltip; beyond, each kind
    is drawn per pixel column as the span from its lowest to its highest
    value, so the file's size does not grow with the ledger's length.
    """
    data = rows if isinstance(rows, PlotData) else plot_data(rows)
    metric = data.metric_label()
    counts = data.counts
    total = data.total
    heading = title or f"{metric} over iterations"
    better = "lower" if direction == "minimize" else "higher"
    kind_counts = " · ".join(f"{counts[kind]:,} {kind}" for kind in ROW_KINDS)
    subtitle = f"{counted(total, 'result')} · {better} is better · {kind_counts}"
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label={quoteattr(heading)}>',
        f"<title>{escape(heading)}</title>",
        f"<desc>{escape(subtitle)}</desc>",
        f"<style>{STYLE}</style>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text class="title" x="{LEFT}" y="30">{escape(heading)}</text>',
        f'<text class="subtitle" x="{LEFT}" y="50">{escape(subtitle)}</text>',
    ]
    parts += _legend(counts)
    if not total:
        parts.append(
            f'<text class="label" x="{(LEFT + RIGHT) / 2}" y="{(TOP + BOTTOM) / 2}" '
            'text-anchor="middle">no results recorded yet</text>'
        )
        parts.append("</svg>")
        return "\n".join(parts) + "\n"
    x_low, x_high = _range(data.x_extent, 0.03)
    x_scale = _Scale(x_low, x_high, LEFT, RIGHT)
    finite = data.y_extent[0] <= data.y_extent[1]
    y_low, y_high = _range(data.y_extent, 0.06) if finite else (0.0, 1.0)
    y_scale = _Scale(y_low, y_high, PLOT_BOTTOM, TOP)
    parts += _axes(x_scale, y_scale, metric, has_values=finite)
    size = 4.5 if total <= 150 else 3.0 if total <= 1500 else 2.0
    band_y = BOTTOM - BAND / 2

    def marks(*wanted: RowKind) -> list[str]:
        drawn = ['<g class="marks">']
        if data.rows is not None:
            for row in data.rows:
                kind = row_kind(row)
                if kind not in wanted:
                    continue
                value = row.numeric_value
                y = y_scale(value) if value is not None and math.isfinite(value) else band_y
                drawn.append(_mark(kind, x_scale(row.iteration), y, size, _tip(row)))
        else:
            for kind in wanted:
                drawn += _spans(data, kind, x_scale, y_scale, size)
                if kind == "failed":
                    drawn += _spans(data, BAND_GROUP, x_scale, y_scale, size, at=band_y)
        drawn.append("</g>")
        return drawn

    # Busy kinds first, then the incumbent line over them, then the marks it
    # runs through, so a dense campaign still shows its line and its steps.
    parts += marks("rejected", "failed")
    parts += _incumbent_line(data, direction, x_scale, y_scale)
    parts += marks("accepted", "baseline")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _columns(xs: Sequence[float], x_scale: _Scale) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` index ranges of the points in each pixel column (xs sorted)."""
    start = 0
    while start < len(xs):
        column = math.floor(x_scale(xs[start]))
        # The first point right of this pixel column: bisect for its iteration.
        stop = bisect_left(xs, x_scale.inverse(column + 1), lo=start + 1)
        yield start, max(stop, start + 1)
        start = max(stop, start + 1)


def _spans(
    data: PlotData,
    group: str,
    x_scale: _Scale,
    y_scale: _Scale,
    size: float,
    *,
    at: float | None = None,
) -> list[str]:
    """One path for ``group``: per pixel column, a stroke from its lowest to highest value."""
    xs, ys = data.points[group].in_order()
    if not xs:
        return []
    kind = "failed" if group == BAND_GROUP else group
    d: list[str] = []
    for start, stop in _columns(xs, x_scale):
        x = _num(x_scale(xs[start]))
        if at is not None:
            d.append(f"M{x} {_num(at)}v0")
            continue
        column = ys[start:stop]
        low, high = _num(y_scale(min(column))), _num(y_scale(max(column)))
        d.append(f"M{x} {high}V{low}" if low != high else f"M{x} {low}v0")
    where = "without a finite value" if at is not None else "per pixel column, lowest to highest"
    tip = f"{len(xs):,} {kind} rows ({where})"
    return [
        f'<path class="span {kind}" stroke-width="{size * 2}" d="{"".join(d)}">'
        f"<title>{escape(tip)}</title></path>"
    ]


def _legend(counts: Counter[RowKind]) -> list[str]:
    parts = ['<g class="legend">']
    x = float(LEFT)
    y = 72.0
    for kind in ROW_KINDS:
        parts.append(_mark(kind, x + 5, y - 4, 4.5, kind).replace('class="mark ', 'class="key '))
        label = f"{kind} ({counts[kind]})"
        parts.append(f'<text class="legend" x="{x + 16}" y="{y}">{escape(label)}</text>')
        x += 30 + 7.6 * len(label)
    parts.append(
        f'<path class="incumbent" d="M{_num(x)} {y - 4}h22"/>'
        f'<text class="legend" x="{_num(x + 28)}" y="{y}">incumbent (best so far)</text>'
    )
    parts.append("</g>")
    return parts


def _axes(x_scale: _Scale, y_scale: _Scale, metric: str, *, has_values: bool) -> list[str]:
    parts = [
        f'<rect class="band" x="{LEFT}" y="{BOTTOM - BAND}" width="{RIGHT - LEFT}" '
        f'height="{BAND}"/>',
        f'<text class="tick" x="{LEFT - 8}" y="{BOTTOM - BAND / 2 + 4}" '
        'text-anchor="end">no value</text>',
    ]
    if has_values:
        y_ticks = _ticks(y_scale.low, y_scale.high)
        step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else abs(y_scale.high - y_scale.low)
        for tick in y_ticks:
            y = _num(y_scale(tick))
            parts.append(f'<line class="grid" x1="{LEFT}" x2="{RIGHT}" y1="{y}" y2="{y}"/>')
            parts.append(
                f'<text class="tick" x="{LEFT - 8}" y="{y}" dy="4" text-anchor="end">'
                f"{escape(_tick_label(tick, step))}</text>"
            )
    x_ticks = _ticks(x_scale.low, x_scale.high, 10, integer=True)
    for tick in x_ticks:
        x = _num(x_scale(tick))
        parts.append(f'<line class="axis" x1="{x}" x2="{x}" y1="{BOTTOM}" y2="{BOTTOM + 5}"/>')
        parts.append(
            f'<text class="tick" x="{x}" y="{BOTTOM + 19}" text-anchor="middle">{tick:.0f}</text>'
        )
    parts.append(f'<path class="axis" d="M{LEFT} {TOP - 6}V{BOTTOM}H{RIGHT}"/>')
    parts.append(
        f'<text class="label" x="{(LEFT + RIGHT) / 2}" y="{HEIGHT - 18}" '
        'text-anchor="middle">iteration</text>'
    )
    middle = (TOP + PLOT_BOTTOM) / 2
    parts.append(
        f'<text class="label" x="20" y="{middle}" text-anchor="middle" '
        f'transform="rotate(-90 20 {middle})">{escape(metric)}</text>'
    )
    return parts


def _incumbent_line(
    data: PlotData, direction: Direction, x_scale: _Scale, y_scale: _Scale
) -> list[str]:
    """The running best of the baseline and accepted rows, in iteration order.

    In iteration order, so the line only moves right even when concurrent
    workers recorded their rows out of order. Steps that fall in the same
    pixel column are drawn as one (the line looks the same), so its length
    is bounded by the chart's width, not by the ledger's.
    """
    groups = [data.points[kind] for kind in ACCEPTED_STATUSES if data.points[kind].xs]
    if not groups:
        return []
    merged = groups[0]
    if len(groups) > 1:
        merged = _Group()
        for group in groups:
            merged.extend(group.xs.tolist(), group.ys.tolist(), ascending=group.ascending)
    xs, ys = merged.in_order()
    steps: list[tuple[float, float]] = []  # (pixel x, pixel y)
    for index in _improvements(ys, direction):
        point = (x_scale(xs[index]), y_scale(ys[index]))
        if steps and math.floor(steps[-1][0]) == math.floor(point[0]):
            steps[-1] = (steps[-1][0], point[1])
        else:
            steps.append(point)
    first_x, first_y = steps[0]
    d = [f"M{_num(first_x)} {_num(first_y)}"]
    for x, y in steps[1:]:
        d.append(f"H{_num(x)}V{_num(y)}")
    d.append(f"H{_num(max(x_scale(data.x_extent[1]), steps[-1][0]))}")
    return [f'<path class="incumbent" d="{"".join(d)}"/>']


_CHUNK: Final = 1024  # values a running best skips at once when none improves on it


def _improvements(ys: Sequence[float], direction: Direction) -> Iterator[int]:
    """Where the running best of ``ys`` improves (strictly), the first value included.

    A chunk whose best value does not beat the running best is skipped with
    one ``min`` (or ``max``): a campaign improves rarely, so only a few
    chunks are looked at value by value.
    """
    sign = 1.0 if direction == "minimize" else -1.0
    chunk_best = min if direction == "minimize" else max
    best = math.inf
    for start in range(0, len(ys), _CHUNK):
        chunk = ys[start : start + _CHUNK]
        if start and sign * chunk_best(chunk) >= best:
            continue
        for offset, value in enumerate(chunk):
            if sign * value < best or not (start or offset):
                best = sign * value
                yield start + offset


def plot_ledger(path: Path) -> tuple[PlotData, list[str]]:
    """:class:`PlotData` of the ledger at ``path``, and one message per line skipped.

    Reads the ledger once, a block at a time (see :func:`read_leniently`).
    """
    data = PlotData()
    return data, read_leniently(path, data.add_text)
