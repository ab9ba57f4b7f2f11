"""``fermilink_state.strategies``, and the property tests it drives: the writers against
the readers, on hostile rows, torn ledgers, rough memories and arbitrary states.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fermilink_state as fs
from fermilink_state import MemoryDocument, ResultRow
from fermilink_state.strategies import (
    CampaignSpec,
    campaign_specs,
    campaigns,
    ledgers,
    memory_texts,
    result_rows,
    states,
)
from fermilink_state.testing import (
    OptimizeProject,
    assert_only_sections_changed,
    assert_results_well_formed,
    assert_section_appended,
)

# Every character str.splitlines() breaks on, and the tab: a cell turns them into spaces.
_BREAKS = re.compile("[\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*(e[+-]?\d+)?|\.\d+(e[+-]?\d+)?|nan|inf|infinity)", re.I)
FILE_EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def expected_as_read(row: ResultRow) -> tuple[object, ...]:
    """What reading a written row gives back, worked out from the format's rules alone."""
    value = row.primary_metric_value
    if isinstance(value, float):
        metric: object = float(f"{value:.12g}")
    else:
        text = _BREAKS.sub(" ", value)
        metric = float(text) if _NUMBER.fullmatch(text.strip()) else text
    return (
        row.iteration,
        _BREAKS.sub(" ", row.commit),
        _BREAKS.sub(" ", row.status),
        _BREAKS.sub(" ", row.primary_metric_name),
        repr(metric),  # repr: NaN equals NaN, -0.0 differs from 0.0
        " ".join(row.description.split()),
    )


def as_read(row: ResultRow) -> tuple[object, ...]:
    return (
        row.iteration,
        row.commit,
        row.status,
        row.primary_metric_name,
        repr(row.primary_metric_value),
        row.description,
    )


# --- the module and its registration ----------------------------------------------------


def _fresh_python(code: str) -> str:
    """Run ``code`` in a new interpreter (nothing of ours imported yet); return its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_without_hypothesis_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "try:\n"
        "    import fermilink_state.strategies\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    assert "pip install 'fermilink-state[hypothesis]'" in _fresh_python(code)


def test_from_type_works_in_a_fresh_process_through_the_entry_point() -> None:
    # No import of fermilink_state.strategies: Hypothesis loads it itself.
    code = (
        "import sys\n"
        "from hypothesis import strategies as st\n"
        "from fermilink_state import MemoryDocument, ResultRow\n"
        "assert 'fermilink_state.strategies' in sys.modules\n"
        "row = st.from_type(ResultRow).example()\n"
        "doc = st.from_type(MemoryDocument).example()\n"
        "print(type(row).__name__, type(doc).__name__)\n"
    )
    assert _fresh_python(code).split() == ["ResultRow", "MemoryDocument"]


def test_the_entry_point_is_declared() -> None:
    (entry,) = [e for e in entry_points(group="hypothesis") if e.name == "fermilink_state"]
    assert entry.value == "fermilink_state.strategies:register_type_strategies"


@given(st.from_type(ResultRow), st.from_type(MemoryDocument))
@settings(max_examples=20, deadline=None)
def test_from_type_gives_our_types(row: ResultRow, document: MemoryDocument) -> None:
    assert isinstance(row, ResultRow)
    assert isinstance(document, MemoryDocument)


# --- the ledger: writer against reader --------------------------------------------------------


@given(rows=st.lists(result_rows(), min_size=1, max_size=10))
@FILE_EXAMPLES
def test_rows_read_back_as_the_format_promises(rows: list[ResultRow], tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.unlink(missing_ok=True)
    fs.append_results(path, rows)
    read = fs.read_results(path)
    assert [as_read(row) for row in read] == [expected_as_read(row) for row in rows]
    assert_results_well_formed(path)


@given(row=result_rows())
@FILE_EXAMPLES
def test_one_append_equals_a_batch_of_one(row: ResultRow, tmp_path: Path) -> None:
    one, batch = tmp_path / "one.tsv", tmp_path / "batch.tsv"
    one.unlink(missing_ok=True)
    batch.unlink(missing_ok=True)
    fs.append_result(one, **row.as_dict())  # type: ignore[arg-type]
    fs.append_results(batch, [row])
    assert one.read_bytes() == batch.read_bytes()


@given(data=ledgers(), row=result_rows())
@FILE_EXAMPLES
def test_an_append_after_any_tail_is_read_back_whole(
    data: bytes, row: ResultRow, tmp_path: Path
) -> None:
    path = tmp_path / "results.tsv"
    path.write_bytes(data)
    complete = data[: data.rfind(b"\n") + 1]
    clean = tmp_path / "clean.tsv"
    clean.write_bytes(complete)
    before = fs.read_results(clean)  # every complete row the writer wrote is well formed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", fs.StateCorruptWarning)
        fs.append_result(path, **row.as_dict())  # type: ignore[arg-type]
    # A torn tail is moved aside, and the warning says so.
    assert all("torn by a crash" in str(warning.message) for warning in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fs.StateCorruptWarning)
        after = fs.read_results(path, strict=False)
    assert [as_read(r) for r in after[: len(before)]] == [as_read(r) for r in before]
    assert as_read(after[-1]) == expected_as_read(row)
    assert len(after) - len(before) in (1, 2)  # the torn row may parse, cut short


# --- the memory: parsed and edited byte for byte ---------------------------------------------


@given(memory_texts())
@settings(max_examples=80, deadline=None)
def test_a_memory_parses_back_to_its_bytes(text: str) -> None:
    document = fs.parse_memory(text)
    assert document.text == text


@given(text=memory_texts(), data=st.data())
@FILE_EXAMPLES
def test_an_edit_appends_one_line_and_changes_nothing_else(
    text: str, data: st.DataObject, tmp_path: Path
) -> None:
    document = fs.parse_memory(text)
    once = [h for h in document.headings if h and document.headings.count(h) == 1]
    if not once:
        return
    heading = data.draw(st.sampled_from(once))
    path = tmp_path / "memory.md"
    path.write_bytes(text.encode("utf-8"))
    with fs.edit_memory(path) as editable:
        editable.append(heading, "- added by the property test")
    after = path.read_bytes().decode("utf-8")
    # Edits end the file with a line ending, as the reference's always do.
    before = text if text.endswith("\n") else text + ("\r\n" if "\r\n" in text else "\n")
    assert_section_appended(before, after, heading, "- added by the property test")
    assert_only_sections_changed(before, after, [heading])
    assert after.startswith("\ufeff") == text.startswith("\ufeff")
    assert ("\r\n" in after) == ("\r\n" in text)


# --- state.json and whole campaigns ------------------------------------------------------------


@given(state=states())
@FILE_EXAMPLES
def test_a_state_round_trips(state: dict[str, object], tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    fs.write_state(path, state)
    assert fs.read_json_file(path) == state
    assert fs.load_state(path) == state
    assert path.read_text(encoding="utf-8") == json.dumps(state, indent=2, sort_keys=True) + "\n"


@given(campaign_specs())
@settings(max_examples=30, deadline=None)
def test_a_campaign_spec_is_readable_as_written(spec: CampaignSpec) -> None:
    assert fs.parse_memory(spec.memory).text == spec.memory
    assert spec.results.startswith(b"iteration\tcommit\t")
    assert all(isinstance(row, ResultRow) for row in spec.rows)


@pytest.fixture(scope="module")
def campaigns_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("campaigns")


def test_campaigns_are_materialised_in_folders_of_their_own(campaigns_root: Path) -> None:
    seen: list[Path] = []

    @given(campaigns(campaigns_root))
    @settings(max_examples=15, deadline=None)
    def check(project: OptimizeProject) -> None:
        seen.append(project.root)
        assert_results_well_formed(project.results_path)
        assert project.read_state()["schema_version"] == 1
        memory = project.memory_path.read_bytes().decode("utf-8")
        assert project.read_memory().text == memory

    check()
    assert len(set(seen)) == len(seen) > 0
    assert all(root.parent == campaigns_root for root in seen)
