"""``fermilink-state plot``: the primary metric over iterations, as plain SVG.

No plotting library: the chart is a few hundred lines of SVG text, readable
in any browser. Every ledger row gets exactly one mark (class ``mark`` plus
its kind), so a 10,000-row campaign stays one file of plain elements; rows
without a finite value sit in a "no value" band along the bottom instead of
vanishing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import escape, quoteattr

from fermilink_state._results import ResultRow
from fermilink_state.cli._status import (
    ROW_KINDS,
    Direction,
    RowKind,
    incumbent_steps,
    metric_text,
    row_kind,
)

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


def _metric_label(rows: Sequence[ResultRow]) -> str:
    names = Counter(row.primary_metric_name for row in rows)
    return " / ".join(name for name, _ in names.most_common(3)) or "primary metric"


def render_svg(
    rows: Sequence[ResultRow], *, direction: Direction = "minimize", title: str | None = None
) -> str:
    """The chart of ``rows`` as an SVG document (text, ends with a newline).

    x is the iteration, y the primary metric; baseline, accepted, rejected and
    failed rows have distinct marks; the incumbent (best baseline or accepted
    value so far, by ``direction``) is a step line. Rows whose value is NaN,
    infinite or text are failures drawn in a band along the bottom.
    """
    rows = list(rows)
    metric = _metric_label(rows)
    kinds = [row_kind(row) for row in rows]
    counts = Counter(kinds)
    finite = [
        value for row in rows if (value := row.numeric_value) is not None and math.isfinite(value)
    ]
    heading = title or f"{metric} over iterations"
    better = "lower" if direction == "minimize" else "higher"
    plural = "" if len(rows) == 1 else "s"
    kind_counts = " · ".join(f"{counts[kind]} {kind}" for kind in ROW_KINDS)
    subtitle = f"{len(rows)} result{plural} · {better} is better · {kind_counts}"
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
    if not rows:
        parts.append(
            f'<text class="label" x="{(LEFT + RIGHT) / 2}" y="{(TOP + BOTTOM) / 2}" '
            'text-anchor="middle">no results recorded yet</text>'
        )
        parts.append("</svg>")
        return "\n".join(parts) + "\n"
    iterations = [float(row.iteration) for row in rows]
    x_low, x_high = _range(iterations, 0.03)
    x_scale = _Scale(x_low, x_high, LEFT, RIGHT)
    y_low, y_high = _range(finite, 0.06) if finite else (0.0, 1.0)
    y_scale = _Scale(y_low, y_high, PLOT_BOTTOM, TOP)
    parts += _axes(x_scale, y_scale, metric, has_values=bool(finite))
    size = 4.5 if len(rows) <= 150 else 3.0 if len(rows) <= 1500 else 2.0
    band_y = BOTTOM - BAND / 2

    def marks(*wanted: RowKind) -> list[str]:
        drawn = ['<g class="marks">']
        for kind in wanted:
            for row, kind_of_row in zip(rows, kinds, strict=True):
                if kind_of_row != kind:
                    continue
                value = row.numeric_value
                y = y_scale(value) if value is not None and math.isfinite(value) else band_y
                drawn.append(_mark(kind, x_scale(row.iteration), y, size, _tip(row)))
        drawn.append("</g>")
        return drawn

    # Busy kinds first, then the incumbent line over them, then the marks it
    # runs through, so a dense campaign still shows its line and its steps.
    parts += marks("rejected", "failed")
    parts += _incumbent_line(rows, direction, x_scale, y_scale)
    parts += marks("accepted", "baseline")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


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
    rows: Sequence[ResultRow], direction: Direction, x_scale: _Scale, y_scale: _Scale
) -> list[str]:
    # In iteration order, so the line only moves right even when concurrent
    # workers recorded their rows out of order.
    steps = incumbent_steps(sorted(rows, key=lambda row: row.iteration), direction)
    if not steps:
        return []
    first = steps[0]
    d = [f"M{_num(x_scale(first.iteration))} {_num(y_scale(_value(first)))}"]
    for row in steps[1:]:
        d.append(f"H{_num(x_scale(row.iteration))}V{_num(y_scale(_value(row)))}")
    last = max(row.iteration for row in rows)
    d.append(f"H{_num(x_scale(max(last, steps[-1].iteration)))}")
    return [f'<path class="incumbent" d="{"".join(d)}"/>']


def _value(row: ResultRow) -> float:
    value = row.numeric_value
    assert value is not None  # incumbent_steps keeps finite values only
    return value
