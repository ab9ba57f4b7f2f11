"""The diff that fits a campaign file: per key path (JSON), per row (ledger), per section.

Plain code with no pytest: ``CampaignSnapshot`` explains a mismatch with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Final

from fermilink_state._document import parse_memory
from fermilink_state._results import RESULT_FIELDS, iter_result_lines, parse_result_line
from fermilink_state.testing._compare import describe_changes, diff_lines, section_changes

DIFF_LIMIT: Final = 20  # differences listed per file before "... N more"


def _limited(lines: list[str]) -> list[str]:
    if len(lines) <= DIFF_LIMIT:
        return lines
    hidden = len(lines) - DIFF_LIMIT
    return [*lines[:DIFF_LIMIT], f"... {hidden} more difference{'s' if hidden != 1 else ''}"]


_MISSING: Final = object()


def _key_path(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def _json_changes(path: str, old: Any, new: Any) -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys(), key=str):
            yield from _json_changes(
                _key_path(path, key), old.get(key, _MISSING), new.get(key, _MISSING)
            )
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            yield from _json_changes(
                _key_path(path, index),
                old[index] if index < len(old) else _MISSING,
                new[index] if index < len(new) else _MISSING,
            )
        return
    if old is _MISSING:
        yield f"{path}: added {json.dumps(new)}"
    elif new is _MISSING:
        yield f"{path}: removed (was {json.dumps(old)})"
    elif old != new or type(old) is not type(new):
        yield f"{path}: {json.dumps(old)} -> {json.dumps(new)}"


def explain_json(golden: str, actual: str) -> list[str]:
    """One line per key path that differs (``$.incumbent_metrics.runtime: 1.0 -> 0.5``)."""
    try:
        old, new = json.loads(golden), json.loads(actual)
    except ValueError:
        return explain_lines(golden, actual)
    return _limited(list(_json_changes("$", old, new)))


def _row_text(line: str) -> str:
    try:
        row = parse_result_line(line)
    except ValueError:
        return repr(line)
    return ", ".join(f"{name}={getattr(row, name)!r}" for name in RESULT_FIELDS)


def explain_results(golden: str, actual: str) -> list[str]:
    """One entry per ledger row that differs, field by field, numbered by file line."""
    old = list(iter_result_lines(golden))
    new = list(iter_result_lines(actual))
    lines: list[str] = []
    if golden.split("\n", 1)[0] != actual.split("\n", 1)[0]:
        lines.append(f"header: {golden.split(chr(10), 1)[0]!r} -> {actual.split(chr(10), 1)[0]!r}")
    for (number, one), (_, two) in zip(old, new, strict=False):
        if one == two:
            continue
        try:
            left, right = parse_result_line(one), parse_result_line(two)
        except ValueError:
            lines.append(f"line {number}: {one!r} -> {two!r}")
            continue
        fields = [
            f"{name} {getattr(left, name)!r} -> {getattr(right, name)!r}"
            for name in RESULT_FIELDS
            if repr(getattr(left, name)) != repr(getattr(right, name))
        ]
        lines.append(f"line {number}: " + ("; ".join(fields) or f"{one!r} -> {two!r}"))
    for number, line in old[len(new) :]:
        lines.append(f"line {number} removed: {_row_text(line)}")
    for number, line in new[len(old) :]:
        lines.append(f"line {number} added: {_row_text(line)}")
    if not lines:
        lines = explain_lines(golden, actual)
    return _limited(lines)


def explain_memory(golden: str, actual: str) -> list[str]:
    """Which sections differ, with a small diff each (as the section assertions show)."""
    changes = section_changes(parse_memory(golden), parse_memory(actual))
    return describe_changes(changes) if changes else explain_lines(golden, actual)


def explain_lines(golden: str, actual: str) -> list[str]:
    """A line diff of two texts, for files without a structure of their own."""
    return diff_lines(golden, actual, limit=DIFF_LIMIT)


def explain_file(name: str, golden: str, actual: str) -> list[str]:
    """The diff that fits the file: per key path, per row or per section."""
    if name.endswith(".json"):
        return explain_json(golden, actual)
    if name.endswith(".tsv"):
        return explain_results(golden, actual)
    if name.endswith(".md"):
        return explain_memory(golden, actual)
    return explain_lines(golden, actual)
