"""The reference's section helpers on plain text, kept byte for byte.

FermiLink's controller calls these directly (``_append_section_line`` then
``write_text``), so they keep the reference's exact semantics: lines from
``str.splitlines``, a section ends at the next ``## `` / ``### `` line, the
result is joined with ``\\n``. Locked, line-ending-preserving, fence-aware
edits of files live in :mod:`fermilink_state._markdown` and ``edit_memory``.
"""

from __future__ import annotations

from fermilink_state._markdown import PLACEHOLDER_LINES


def find_section_bounds(lines: list[str], heading: str) -> tuple[int, int] | None:
    """``(start, end)`` line indexes of ``heading``'s section, or ``None``.

    ``start`` is the heading's line; ``end`` is the next line starting with
    ``## `` or ``### `` (or ``len(lines)``).
    """
    try:
        start = lines.index(heading)
    except ValueError:
        return None
    for index in range(start + 1, len(lines)):
        if lines[index].startswith(("## ", "### ")):
            return start, index
    return start, len(lines)


def _with_new_section(lines: list[str], heading: str, body: list[str]) -> str:
    if lines and lines[-1] != "":
        lines.append("")
    lines.append(heading)
    lines.extend(body)
    return "\n".join(lines) + "\n"


def set_section_lines(content: str, heading: str, new_lines: list[str]) -> str:
    """Replace the body of ``heading`` with ``new_lines`` (section added if missing)."""
    lines = content.splitlines()
    bounds = find_section_bounds(lines, heading)
    if bounds is None:
        return _with_new_section(lines, heading, list(new_lines))
    start, end = bounds
    return "\n".join([*lines[: start + 1], *new_lines, *lines[end:]]) + "\n"


def append_section_line(content: str, heading: str, entry: str) -> str:
    """Append ``entry`` to ``heading``'s section, dropping placeholder lines."""
    lines = content.splitlines()
    bounds = find_section_bounds(lines, heading)
    if bounds is None:
        return _with_new_section(lines, heading, [entry])
    start, end = bounds
    body = [line for line in lines[start + 1 : end] if line.strip() not in PLACEHOLDER_LINES]
    return "\n".join([*lines[: start + 1], *body, entry, *lines[end:]]) + "\n"


def replace_metadata_line(content: str, prefix: str, value: str) -> str:
    """Replace the first line starting with ``prefix`` by ``prefix + value``.

    Appended at the end (after a blank line) when no line starts with it.
    """
    lines = content.splitlines()
    target = f"{prefix}{value}"
    for index, line in enumerate(lines):
        if line.startswith(prefix):
            lines[index] = target
            return "\n".join(lines) + "\n"
    if lines and lines[-1] != "":
        lines.append("")
    lines.append(target)
    return "\n".join(lines) + "\n"


# The reference's private names, which FermiLink's controller calls directly.
_find_section_bounds = find_section_bounds
_set_section_lines = set_section_lines
_append_section_line = append_section_line
_replace_metadata_line = replace_metadata_line
