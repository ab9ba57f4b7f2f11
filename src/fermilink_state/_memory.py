"""The campaign's markdown memories: templates and campaign events."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Final

from fermilink_state import _clock, _fileops, _known_documents
from fermilink_state._atomic import atomic_write_chunks, atomic_write_text
from fermilink_state._create import create_if_missing
from fermilink_state._errors import StateCorruptError
from fermilink_state._layout import WORKER_MEMORY_FILENAME
from fermilink_state._locking import lock_may_be_in_use, locked
from fermilink_state._markdown import (
    REFERENCE_LEVELS,
    LineEditor,
    NotPlain,
    PlainEditor,
    SectionEditor,
)
from fermilink_state._results import ACCEPTED_STATUSES, _sanitize_cell, format_metric

LAST_UPDATED_PREFIX = "- last_updated_utc: "
_CHECK_BLOCK: Final = 64 * 1024


def memory_template(
    *, package_id: str, benchmark_id: str, benchmark_rel: str, optimize_branch: str, started: str
) -> str:
    """The initial ``memory.md``, byte for byte the reference's."""
    return (
        "# FermiLink Optimize Memory\n"
        "\n"
        f"- package_id: {package_id}\n"
        f"- benchmark_id: {benchmark_id}\n"
        f"- benchmark_path: {benchmark_rel}\n"
        f"- optimize_branch: {optimize_branch}\n"
        f"- started_at_utc: {started}\n"
        f"- last_updated_utc: {started}\n"
        "\n"
        "## Short-Term Memory (Operational)\n"
        "### Current objective\n"
        "- Improve benchmark performance while preserving correctness.\n"
        "### Latest accepted commit\n"
        "- commit: pending\n"
        "- primary_metric: pending\n"
        "### Progress log\n"
        "- Campaign initialized.\n"
        "\n"
        "## Long-Term Memory (Persistent)\n"
        "### Benchmark contract\n"
        f"- Benchmark file: `{benchmark_rel}`\n"
        "### Accepted experiments\n"
        "- none yet\n"
        "### Rejected patterns\n"
        "- none yet\n"
        "### Open hypotheses\n"
        "- Review `skills/` and recent results before proposing the next change.\n"
    )


def worker_memory_template(
    *,
    package_id: str,
    benchmark_id: str,
    benchmark_rel: str,
    program_rel: str,
    controller_memory_rel: str,
    results_rel: str,
    worker_iteration: int,
    now: str,
) -> str:
    """The initial ``worker_memory.md``, byte for byte the reference's."""
    return (
        "# FermiLink Optimize Worker Memory\n"
        "\n"
        f"- package_id: {package_id}\n"
        f"- benchmark_id: {benchmark_id}\n"
        f"- benchmark_path: {benchmark_rel}\n"
        f"- program_path: {program_rel}\n"
        f"- controller_memory_path: {controller_memory_rel}\n"
        f"- results_path: {results_rel}\n"
        f"- worker_iteration: {worker_iteration}\n"
        f"- reset_at_utc: {now}\n"
        "\n"
        "This file is reset at the start of each outer optimize iteration and "
        "archived under `.fermilink-optimize/runs/iter_XXXX/worker_memory.md`.\n"
        "\n"
        "## Short-Term Memory (Operational)\n"
        "### Current objective\n"
        "- Prepare exactly one candidate that is ready for authoritative benchmark evaluation.\n"
        "### Plan\n"
        "- Read benchmark/program/controller memory/results/skills.\n"
        "- Inspect the current implementation and pick one optimization hypothesis.\n"
        "- Apply focused edits only within benchmark-approved paths.\n"
        "- Run quick local checks or launch/poll long-running worker jobs if needed.\n"
        "- Update this memory with progress and finish only when the candidate is "
        "benchmark-ready.\n"
        "### Progress log\n"
        "- Worker iteration initialized.\n"
        "\n"
        "## Tactical Notes\n"
        "### Job tracking\n"
        "- none yet\n"
        "### Candidate summary\n"
        "- pending\n"
        "### Debug notes\n"
        "- none yet\n"
    )


def decode_memory(path: Path, data: bytes) -> str:
    """Decode a memory file, or raise :class:`StateCorruptError` naming the line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise StateCorruptError(
            path,
            f"not UTF-8 (byte {error.object[error.start]:#04x}); nothing was changed",
            line=line,
        ) from None


def check_utf8(path: Path, data: bytes) -> None:
    """Raise :class:`StateCorruptError` (as :func:`decode_memory`) unless ``data`` is UTF-8.

    Without building the decoded text: a pure-ASCII file is one fast scan, and
    any other is decoded a block at a time (a whole-file string would cost more
    than the edit it guards, in fresh pages of memory).
    """
    if data.isascii():
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), _CHECK_BLOCK):
            decoder.decode(view[start : start + _CHECK_BLOCK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        decode_memory(path, data)  # raises, naming the line
        raise


def ensure_memory_file(
    path: Path,
    *,
    package_id: str,
    benchmark_id: str,
    benchmark_rel: str,
    optimize_branch: str,
) -> bool:
    """Create ``memory.md`` from the template if missing; ``True`` if created."""
    return create_if_missing(
        path,
        lambda: memory_template(
            package_id=package_id,
            benchmark_id=benchmark_id,
            benchmark_rel=benchmark_rel,
            optimize_branch=optimize_branch,
            started=_clock.utc_now_z(),
        ),
    )


def reset_worker_memory_file(
    path: Path,
    *,
    package_id: str,
    benchmark_id: str,
    benchmark_rel: str,
    program_rel: str,
    controller_memory_rel: str,
    results_rel: str,
    worker_iteration: int,
) -> None:
    """(Re)write ``worker_memory.md`` from the template, atomically, under its lock."""
    _fileops.make_folders(path.parent)
    text = worker_memory_template(
        package_id=package_id,
        benchmark_id=benchmark_id,
        benchmark_rel=benchmark_rel,
        program_rel=program_rel,
        controller_memory_rel=controller_memory_rel,
        results_rel=results_rel,
        worker_iteration=worker_iteration,
        now=_clock.utc_now_z(),
    )
    with locked(path):
        atomic_write_text(path, text)


def archive_worker_memory(source_path: Path, run_dir: Path) -> Path | None:
    """Copy the worker memory into ``run_dir`` atomically; ``None`` if it is missing."""
    if not source_path.is_file() and not lock_may_be_in_use(source_path):
        return None
    with locked(source_path):
        try:
            data = source_path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None  # not a file for certain: looked at under the lock
        text = decode_memory(source_path, data)
    _fileops.make_folders(run_dir)
    target_path = run_dir / WORKER_MEMORY_FILENAME
    atomic_write_text(target_path, text)
    return target_path


def record_campaign_event(
    path: Path,
    *,
    commit: str,
    primary_metric_name: str,
    primary_metric_value: float | int | str,
    status: str,
    description: str,
) -> None:
    """Record one evaluated candidate in ``memory.md``, as the reference does.

    Appends to the progress log and to accepted experiments or rejected
    patterns, updates the latest accepted commit for ``baseline`` / ``accepted``
    and stamps ``last_updated_utc``; all under the file's lock, written
    atomically. Does nothing if the file is missing (as the reference).
    Raises :class:`StateCorruptError` and changes nothing if the file is not
    UTF-8.
    """
    if not path.is_file() and not lock_may_be_in_use(path):
        # No memory file (as the reference): nothing recorded, nothing created.
        return
    with locked(path):
        try:
            data = path.read_bytes()
        except OSError:
            return
        now = _clock.utc_now_z()
        metric_text = format_metric(primary_metric_value)
        summary = f"({commit}, {primary_metric_name}={metric_text})"
        accepted = status in ACCEPTED_STATUSES
        description_text = _sanitize_cell(description)

        def record(editor: LineEditor) -> None:
            if accepted:
                editor.set_lines(
                    "### Latest accepted commit",
                    [
                        f"- commit: {commit}",
                        f"- primary_metric: {primary_metric_name}={metric_text}",
                        f"- status: {status}",
                    ],
                )
            editor.append_line(
                "### Progress log", f"- [{now}] {status}: {description_text} {summary}"
            )
            editor.append_line(
                "### Accepted experiments" if accepted else "### Rejected patterns",
                f"- [{now}] {description_text} {summary}",
            )
            editor.set_metadata(LAST_UPDATED_PREFIX, now)

        try:
            # The usual memory file: edited as bytes, written as slices of them,
            # and checked (UTF-8, placeholders) while the disk writes the result,
            # unless the checks were done on these very bytes when we wrote them.
            plain = PlainEditor(data, REFERENCE_LEVELS)
            record(plain)
            known_clean = _known_documents.clean_sections(path, data)
            chunks = plain.chunks(verify=False)
            if known_clean is not None and plain.appended_to <= known_clean:
                atomic_write_chunks(path, chunks)
            else:

                def verify() -> None:
                    if known_clean is None:
                        check_utf8(path, data)
                    plain.verify(known_clean or frozenset())

                atomic_write_chunks(path, chunks, check=verify)
        except NotPlain:
            _known_documents.forget(path)
            full = SectionEditor(decode_memory(path, data), REFERENCE_LEVELS)
            record(full)
            atomic_write_text(path, full.text)
            return
        if plain.inserted_placeholder_text():
            _known_documents.forget(path)
        else:
            _known_documents.remember(
                path, chunks, (known_clean or frozenset()) | plain.appended_to
            )
