"""The mutation gate's own logic, on a tiny tree of its own (and the real entries).

The tiny tree's package is named ``fermilink_state`` on purpose: the real one is
installed in the environment running these tests, so a mutant of the copy is
killed only if the copy, not the installed package, is what its tests import.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mutations import run

pytestmark = pytest.mark.timeout(300)

MODULE = "def add(a, b):\n    return a + b\n"
GUARD = "from fermilink_state import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def _entry(
    *,
    name: str = "add-subtracts",
    find: str = "return a + b",
    replace: str = "return a - b",
    extra: str = "",
    tests: str = '["tests/test_add.py"]',
) -> str:
    return (
        textwrap.dedent(
            f"""\
        id = "{name}"
        guarantee = "add adds"
        file = "src/fermilink_state/__init__.py"
        find = "{find}"
        replace = "{replace}"
        tests = {tests}
        """
        )
        + extra
    )


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with one package, one guard test and no mutant yet."""
    # The installed fermilink_state registers a Hypothesis entry point
    # (fermilink_state.strategies), which this tiny package lacks: Hypothesis,
    # loaded by pytest in the copy, would fail to import it.
    monkeypatch.setenv("HYPOTHESIS_NO_PLUGINS", "1")
    root = tmp_path / "repo"
    (root / "src" / "fermilink_state").mkdir(parents=True)
    (root / "src" / "fermilink_state" / "__init__.py").write_text(MODULE, encoding="utf-8")
    (root / "tests").mkdir()
    (root / "tests" / "test_add.py").write_text(GUARD, encoding="utf-8")
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n", encoding="utf-8")
    (root / "mutations").mkdir()
    return root


def _add(tree: Path, text: str, name: str = "add-subtracts") -> Path:
    path = tree / "mutations" / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_killed_mutant_passes_the_gate(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _add(tree, _entry())
    assert run.run_gate(tree, jobs=1) == 0
    out = capsys.readouterr().out
    assert "add-subtracts" in out
    assert "killed" in out
    assert "1 of 1 mutants killed" in out


def test_a_surviving_mutant_fails_the_gate(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _add(tree, _entry())
    _add(tree, _entry(name="add-commutes", replace="return b + a"), "add-commutes")
    assert run.run_gate(tree, jobs=2) == 1
    captured = capsys.readouterr()
    assert "survived" in captured.out
    assert "add-commutes: survived" in captured.err


def test_a_count_mismatch_is_an_invalid_entry(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _add(tree, _entry(extra="count = 2\n"))
    assert run.run_gate(tree) == 2
    assert "occurs 1 times" in capsys.readouterr().err


def test_a_find_that_moved_away_is_an_invalid_entry(tree: Path) -> None:
    entry = run.load_mutant(_add(tree, _entry(find="return a+b")), tree)
    with pytest.raises(run.InvalidEntry, match="occurs 0 times"):
        run.mutate(MODULE, entry)


def test_guard_tests_failing_unmutated_stop_the_gate(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "tests" / "test_add.py").write_text(GUARD.replace("== 5", "== 6"), encoding="utf-8")
    _add(tree, _entry())
    assert run.run_gate(tree) == 2
    assert "fail on the unmutated tree" in capsys.readouterr().err


def test_an_error_is_not_a_kill(tree: Path) -> None:
    # A mutant that breaks the import makes pytest exit 2 (collection error).
    entry = run.load_mutant(_add(tree, _entry(replace="return (")), tree)
    verdict = run.run_mutant(entry, tree)
    assert verdict.outcome == "error"


def test_the_copy_is_imported_not_the_installed_package(tree: Path) -> None:
    with run.tree_copy(tree) as copy:
        run.check_imports_from_copy(copy)  # raises if the installed one is imported


INVALID = {
    "missing-key": _entry().replace('guarantee = "add adds"\n', ""),
    "unknown-key": _entry(extra='severity = "high"\n'),
    "id-not-file-name": _entry(name="something-else"),
    "no-tests": _entry(tests="[]"),
    "missing-test-file": _entry(tests='["tests/test_nothing.py::test_x"]'),
    "file-outside-the-tree": _entry().replace("src/fermilink_state/__init__.py", "../x.py"),
    "find-equals-replace": _entry(replace="return a + b"),
    "count-zero": _entry(extra="count = 0\n"),
    "count-not-a-number": _entry(extra='count = "1"\n'),
    "not-toml": "id = \n",
}


@pytest.mark.parametrize("text", INVALID.values(), ids=list(INVALID))
def test_invalid_entries_are_refused(tree: Path, text: str) -> None:
    with pytest.raises(run.InvalidEntry):
        run.load_mutant(_add(tree, text), tree)


def test_every_entry_of_this_repository_applies() -> None:
    # The cheap half of the gate, in every test run: each entry is valid and
    # its find text occurs exactly `count` times in the current code.
    mutants = run.load_mutants(run.REPO_ROOT)
    assert len(mutants) >= 25
    for mutant in mutants:
        run.mutate((run.REPO_ROOT / mutant.file).read_text(encoding="utf-8"), mutant)
