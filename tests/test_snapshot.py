"""The golden-file engine of ``campaign_snapshot``, without pytest's plugin machinery.

Folder names for test ids, normalisation of volatile values, the diffs per
file kind, missing / mismatch / update, locked and atomic updates under
concurrent writers, and the rules that judge a golden file unused.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fermilink_state as fs
from fermilink_state.testing import CampaignSnapshot, Normalization, OptimizeProject, seed_project
from fermilink_state.testing._normalize import normalized_bytes
from fermilink_state.testing._snapshot import (
    MAX_DIRNAME,
    SNAPSHOTS_DIRNAME,
    UPDATE_OPTION,
    folder_for_test,
    golden_dir,
    remove_golden_files,
    write_golden_files,
)
from fermilink_state.testing._snapshot_diff import explain_json, explain_memory, explain_results
from fermilink_state.testing._snapshot_usage import SnapshotUsage

FROZEN = "2026-01-02T03:04:05.678901Z"


# --- test ids to folder names -------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["test_append"], "test_append"),
        (["test_append[accepted-0.5]"], "test_append[accepted-0.5]"),
        (["TestCampaign", "test_append[1]"], "TestCampaign.test_append[1]"),
        (["TestOuter", "TestInner", "test_x"], "TestOuter.TestInner.test_x"),
    ],
)
def test_plain_ids_read_as_themselves(names: list[str], expected: str) -> None:
    assert folder_for_test(names) == expected


@pytest.mark.parametrize(
    "name",
    [
        "test_x[../../etc]",
        "test_x[a/b]",
        "test_x[a\\b]",
        "test_x[ spaces ]",
        "test_x[é]",
        "test_x[a\x00b]",
        "test_x[CON]",
        "test_x[" + "x" * 300 + "]",
        "con",
        "..",
    ],
)
def test_unsafe_ids_become_one_safe_bounded_folder(name: str, tmp_path: Path) -> None:
    folder = folder_for_test([name])
    assert "~" in folder
    assert "/" not in folder
    assert "\\" not in folder
    assert "\x00" not in folder
    assert not folder.startswith(".")
    assert len(folder.encode()) <= MAX_DIRNAME
    # The folder is one level below its module's folder, whatever the id.
    path = golden_dir(tmp_path / "test_mod.py", [name])
    assert path.parent == tmp_path / SNAPSHOTS_DIRNAME / "test_mod"
    path.mkdir(parents=True)


def test_dots_in_parameters_stay_inside_the_module_folder(tmp_path: Path) -> None:
    assert folder_for_test(["test_x[..]"]) == "test_x[..]"
    path = golden_dir(tmp_path / "test_mod.py", ["test_x[..]"])
    assert path.parent == tmp_path / SNAPSHOTS_DIRNAME / "test_mod"


def test_ids_differing_in_case_only_get_different_folders_on_any_filesystem() -> None:
    upper, lower = folder_for_test(["test_x[A]"]), folder_for_test(["test_x[a]"])
    assert upper.lower() != lower.lower()


def test_a_class_id_and_a_parameter_with_a_dot_do_not_collide() -> None:
    assert folder_for_test(["TestA", "test_b"]) != folder_for_test(["TestA.test_b"])
    assert folder_for_test(["test_b[x::y]"]) != folder_for_test(["test_b[x.y]"])


_ID_PART = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00") | st.sampled_from("[]./\\:~-_"),
    min_size=1,
    max_size=30,
)


@given(st.sets(st.lists(_ID_PART, min_size=1, max_size=3).map(tuple), min_size=2, max_size=20))
@settings(max_examples=150, deadline=None)
def test_different_ids_never_share_a_folder(ids: set[tuple[str, ...]]) -> None:
    folders = [folder_for_test(list(names)).lower() for names in ids]
    assert len(set(folders)) == len(folders)
    for folder in folders:
        assert "/" not in folder
        assert folder not in (".", "..")
        assert len(folder.encode()) <= MAX_DIRNAME


# --- normalisation -------------------------------------------------------------------


def test_timestamps_frozen_or_not_become_placeholders() -> None:
    rules = Normalization()
    text = f"- started_at_utc: {FROZEN}\n- at {fs.utc_now_z()} and 2026-01-02 03:04:05+00:00\n"
    assert rules.text(text) == "- started_at_utc: <utc>\n- at <utc> and <utc>\n"
    assert Normalization(timestamps=False).text(text) == text


def test_run_lock_pids_hosts_and_start_times_are_normalised(tmp_path: Path) -> None:
    project = seed_project(tmp_path / "p")
    fs.acquire_run_lock(project.root)
    try:
        data = normalized_bytes(
            "run.lock.json",
            project.run_lock_path.read_bytes(),
            Normalization(),
            project_root=project.root,
        )
    finally:
        fs.release_run_lock(project.root)
    payload = json.loads(data)
    assert payload["pid"] == "<pid>"
    assert payload["hostname"] == "<host>"
    assert payload["pid_started_at"] == "<pid-start>"
    assert payload["started_at_utc"] == "<utc>"


def test_host_names_and_pids_in_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "node-17")
    text = "- holder: node-17 pid=4242, other: node-170 (pid: 7)\n"
    expected = "- holder: <host> pid=<pid>, other: node-170 (pid: <pid>)\n"
    assert Normalization().text(text) == expected


def test_project_and_temp_paths_and_atomic_temp_names(tmp_path: Path) -> None:
    root = tmp_path / "project"
    elsewhere = Path(tempfile.gettempdir()) / "pytest-of-x" / "run-3" / "f.txt"
    temp_name = ".state.json.node.123.0a1b2c3d.tmp"
    text = f"- log: {root}/runs/iter_0001/out.txt\n- see {elsewhere}\n- {temp_name}\n"
    assert Normalization().text(text, project_root=root) == (
        "- log: <project>/runs/iter_0001/out.txt\n- see <tmp>\n- <temp-file>\n"
    )


def test_commit_hashes_only_on_request_and_custom_replacements() -> None:
    text = "- commit: 0123456789abcdef0123\n- primary_metric: 0.5\n"
    assert Normalization().text(text) == text
    assert Normalization(commits=True).text(text) == "- commit: <commit>\n- primary_metric: 0.5\n"
    custom = Normalization(replace=[(r"primary_metric: [0-9.]+", "primary_metric: <m>")])
    assert custom.text(text).endswith("primary_metric: <m>\n")


# --- diffs that fit the file -----------------------------------------------------------


def test_json_diff_names_key_paths() -> None:
    old = {"iteration": 1, "incumbent_metrics": {"runtime": 1.0}, "tags": ["a"], "gone": 0}
    new = {"iteration": 2, "incumbent_metrics": {"runtime": 0.5}, "tags": ["a", "b"], "odd key": 1}
    assert explain_json(json.dumps(old), json.dumps(new)) == [
        "$.gone: removed (was 0)",
        "$.incumbent_metrics.runtime: 1.0 -> 0.5",
        "$.iteration: 1 -> 2",
        '$["odd key"]: added 1',
        '$.tags[1]: added "b"',
    ]


def test_results_diff_is_per_row_and_field() -> None:
    header = "iteration\tcommit\tstatus\tprimary_metric_name\tprimary_metric_value\tdescription\n"
    old = header + "0\tc0\tbaseline\tt\t1\tbase\n1\tc1\taccepted\tt\t0.5\tfast\n"
    new = header + "0\tc0\tbaseline\tt\t1\tbase\n1\tc1\trejected\tt\t0.7\tfast\n2\tc2\tx\tt\t1\td\n"
    lines = explain_results(old, new)
    assert lines[0] == "line 3: status 'accepted' -> 'rejected'; primary_metric_value 0.5 -> 0.7"
    assert lines[1].startswith("line 4 added: iteration=2, commit='c2'")
    assert len(lines) == 2


def test_memory_diff_is_per_section() -> None:
    old = "# T\n## A\n- a\n## B\n- b\n"
    new = "# T\n## A\n- a\n## B\n- b\n- b2\n"
    lines = explain_memory(old, new)
    assert lines[0] == "section '## B' changed:"
    assert "  +- b2" in lines


# --- assert_match --------------------------------------------------------------------


@pytest.fixture
def campaign(tmp_path: Path) -> OptimizeProject:
    return seed_project(tmp_path / "project")


def test_the_plugin_and_the_engine_name_the_same_flag() -> None:
    from fermilink_state import plugin

    assert plugin.SNAPSHOT_UPDATE_OPTION == UPDATE_OPTION


def test_missing_golden_files_fail_naming_the_update_flag(
    campaign: OptimizeProject, tmp_path: Path
) -> None:
    snapshot = CampaignSnapshot(golden_dir(tmp_path / "test_m.py", ["test_x"]))
    with pytest.raises(AssertionError, match=f"no golden file for state.json.*{UPDATE_OPTION}"):
        snapshot.assert_match(campaign)
    assert not snapshot.directory.exists()


def test_update_writes_then_matches_with_an_unfrozen_clock(
    campaign: OptimizeProject, tmp_path: Path
) -> None:
    directory = golden_dir(tmp_path / "test_m.py", ["test_x"])
    writer = CampaignSnapshot(directory, update=True)
    writer.assert_match(campaign)
    assert sorted(path.name for path in directory.iterdir()) == [
        "memory.md",
        "results.tsv",
        "state.json",
    ]
    assert "<utc>" in (directory / "memory.md").read_text()
    # Another campaign made a moment later (other timestamps) matches.
    other = seed_project(tmp_path / "other")
    CampaignSnapshot(directory).assert_match(other.root)
    CampaignSnapshot(directory).assert_match(other.optimize_root)


def test_mismatch_shows_a_diff_per_file_and_writes_nothing(
    campaign: OptimizeProject, tmp_path: Path
) -> None:
    directory = golden_dir(tmp_path / "test_m.py", ["test_x"])
    CampaignSnapshot(directory, update=True).assert_match(campaign)
    before = {path.name: path.read_bytes() for path in directory.iterdir()}
    fs.record_campaign_event(
        campaign.memory_path,
        commit="c1",
        primary_metric_name="t",
        primary_metric_value=0.5,
        status="accepted",
        description="faster",
    )
    fs.append_result(
        campaign.results_path,
        iteration=1,
        commit="c1",
        status="accepted",
        primary_metric_name="t",
        primary_metric_value=0.5,
        description="faster",
    )
    state = campaign.read_state()
    state["iteration"] = 1
    fs.write_state(campaign.state_path, state)
    with pytest.raises(AssertionError) as failure:
        CampaignSnapshot(directory).assert_match(campaign)
    message = str(failure.value)
    assert "(state.json, results.tsv, memory.md)" in message
    assert "$.iteration: 0 -> 1" in message
    assert "line 3 added: iteration=1, commit='c1', status='accepted'" in message
    assert "section '### Accepted experiments' changed:" in message
    assert message.endswith(f"run pytest with {UPDATE_OPTION}.")
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == before


def test_a_file_the_golden_folder_has_but_the_campaign_lacks(
    campaign: OptimizeProject, tmp_path: Path
) -> None:
    directory = golden_dir(tmp_path / "test_m.py", ["test_x"])
    CampaignSnapshot(directory, update=True).assert_match(campaign)
    campaign.state_path.unlink()
    with pytest.raises(AssertionError, match=r"the campaign has no state\.json"):
        CampaignSnapshot(directory).assert_match(campaign)
    CampaignSnapshot(directory, update=True).assert_match(campaign)
    assert not (directory / "state.json").exists()


def test_files_are_selectable_and_names_separate_snapshots(
    campaign: OptimizeProject, tmp_path: Path
) -> None:
    directory = golden_dir(tmp_path / "test_m.py", ["test_x"])
    snapshot = CampaignSnapshot(directory, update=True)
    snapshot.assert_match(campaign, files=["memory.md"])
    snapshot.assert_match(campaign, files=["results.tsv"], name="later")
    assert sorted(p.relative_to(directory).as_posix() for p in snapshot.used) == [
        "later/results.tsv",
        "memory.md",
    ]
    with pytest.raises(ValueError, match="own name="):
        snapshot.assert_match(campaign, files=["memory.md"])
    with pytest.raises(ValueError, match="files must name some of"):
        snapshot.assert_match(campaign, files=["program.md"], name="x")
    with pytest.raises(TypeError, match="OptimizeProject or a project folder"):
        snapshot.assert_match(42, name="y")


# --- updates under concurrency -----------------------------------------------------------


_SET_NAMES = ("a.md", "b.tsv", "c.json")
_LINES_PER_FILE = 100_000  # ~0.7 MB: long enough a write for a reader to land inside it


def _golden_body(tag: str) -> bytes:
    return f"{tag}\n".encode() * _LINES_PER_FILE  # every tag has 6 characters


def _write_sets(directory: str, tag: str, rounds: int) -> None:
    for number in range(rounds):
        body = _golden_body(f"{tag}-{number:04d}")
        write_golden_files(Path(directory), dict.fromkeys(_SET_NAMES, body))


def test_parallel_updates_never_tear_or_mix_a_set(tmp_path: Path) -> None:
    from fermilink_state._locking import locked
    from fermilink_state.testing._snapshot import update_lock_path

    directory = tmp_path / SNAPSHOTS_DIRNAME / "test_m" / "test_x"
    write_golden_files(directory, dict.fromkeys(_SET_NAMES, _golden_body("start!")))
    size = len(_golden_body("start!"))
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_sets, args=(str(directory), tag, 40)) for tag in "PQ"]
    for writer in writers:
        writer.start()
    torn = mixed = reads = 0
    lock = update_lock_path(directory.parent.parent)
    while any(writer.is_alive() for writer in writers) or reads == 0:
        # Unlocked readers never see a torn file (atomic writes) ...
        for name in _SET_NAMES * 4:
            data = (directory / name).read_bytes()
            torn += len(data) != size or data[:7] * _LINES_PER_FILE != data
        # ... and locked readers never see a set half from each writer.
        with locked(lock):
            heads = {(directory / name).read_bytes()[:7] for name in _SET_NAMES}
        mixed += len(heads) != 1
        reads += 1
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0
    assert (torn, mixed) == (0, 0), f"{torn} torn and {mixed} mixed reads of {reads}"
    assert sorted(os.listdir(directory)) == sorted(_SET_NAMES)  # no temp litter


def test_removal_clears_empty_folders_up_to_the_snapshots_folder(tmp_path: Path) -> None:
    root = tmp_path / SNAPSHOTS_DIRNAME
    kept = root / "test_a" / "test_keep" / "memory.md"
    gone = root / "test_b" / "test_gone" / "memory.md"
    for path in (kept, gone):
        path.parent.mkdir(parents=True)
        path.write_text("x")
    assert remove_golden_files([gone]) == [gone]
    assert not (root / "test_b").exists()
    assert kept.exists()


# --- judging unused files ------------------------------------------------------------------


def _golden(root: Path, module: str, test: str, name: str = "memory.md") -> Path:
    path = root / SNAPSHOTS_DIRNAME / module / test / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    return path


def _passed(usage: SnapshotUsage, nodeid: str) -> None:
    for phase in ("setup", "call", "teardown"):
        usage.record_outcome(nodeid, phase, passed=True)


def test_unused_needs_a_passed_test_or_a_module_collected_in_full(tmp_path: Path) -> None:
    module = tmp_path / "test_m.py"
    module.write_text("")
    used = _golden(tmp_path, "test_m", "test_a")
    stale = _golden(tmp_path, "test_m", "test_a", "results.tsv")
    failed_extra = _golden(tmp_path, "test_m", "test_b", "results.tsv")
    orphan = _golden(tmp_path, "test_m", "test_removed")
    orphan_module = _golden(tmp_path, "test_deleted", "test_a")
    tests = {"test_m.py::test_a": "test_a", "test_m.py::test_b": "test_b"}

    usage = SnapshotUsage()
    usage.add_module(module, complete=True, tests=tests)
    usage.used.add(str(used))
    _passed(usage, "test_m.py::test_a")
    usage.record_outcome("test_m.py::test_b", "call", passed=False)
    assert usage.unused() == sorted([stale, orphan, orphan_module])
    assert failed_extra not in usage.unused()

    partial = SnapshotUsage()
    partial.add_module(module, complete=False, tests={"test_m.py::test_a": "test_a"})
    partial.used.add(str(used))
    _passed(partial, "test_m.py::test_a")
    # A filtered run judges only what it ran: not test_b, not the removed test.
    assert partial.unused() == sorted([stale, orphan_module])


def test_a_failing_teardown_means_not_passed(tmp_path: Path) -> None:
    module = tmp_path / "test_m.py"
    module.write_text("")
    stale = _golden(tmp_path, "test_m", "test_a")
    usage = SnapshotUsage()
    usage.add_module(module, complete=True, tests={"test_m.py::test_a": "test_a"})
    usage.record_outcome("test_m.py::test_a", "call", passed=True)
    usage.record_outcome("test_m.py::test_a", "teardown", passed=False)
    assert stale not in usage.unused()


def test_worker_records_merge(tmp_path: Path) -> None:
    module = tmp_path / "test_m.py"
    module.write_text("")
    one, two = _golden(tmp_path, "test_m", "test_a"), _golden(tmp_path, "test_m", "test_b")
    tests = {"test_m.py::test_a": "test_a", "test_m.py::test_b": "test_b"}
    workers = [SnapshotUsage(), SnapshotUsage()]
    for worker, golden in zip(workers, (one, two), strict=True):
        worker.add_module(module, complete=True, tests=tests)
        worker.used.add(str(golden))
    controller = SnapshotUsage()
    for worker in workers:
        controller.merge(json.loads(json.dumps(worker.to_json())))
    _passed(controller, "test_m.py::test_a")
    _passed(controller, "test_m.py::test_b")
    assert controller.unused() == []
    lone = SnapshotUsage()
    lone.merge(workers[0].to_json())
    _passed(lone, "test_m.py::test_a")
    _passed(lone, "test_m.py::test_b")
    assert lone.unused() == [two]
