"""The README's examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
UPDATE_FLAG = "--fermilink-snapshot-update"
_BLOCK = re.compile(r"```(python|sh)\n(.*?)```", re.DOTALL)


def _blocks(language: str) -> list[str]:
    return [
        body
        for lang, body in _BLOCK.findall(README.read_text(encoding="utf-8"))
        if lang == language
    ]


def _library_examples() -> list[str]:
    return [block for block in _blocks("python") if "def test_" not in block]


def _plugin_examples() -> list[str]:
    return [block for block in _blocks("python") if "def test_" in block]


def test_library_examples_run_in_order(tmp_path: Path) -> None:
    # Later examples continue the campaign the first one started.
    for number, block in enumerate(_library_examples()):
        result = subprocess.run(
            [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"README python example {number + 1}:\n{result.stderr}"


@pytest.mark.parametrize("number", range(len(_plugin_examples())))
def test_plugin_example_passes(number: int, pytester: pytest.Pytester) -> None:
    example = _plugin_examples()[number]
    pytester.makepyfile(test_readme_example=example)
    tests = example.count("\ndef test_")
    if "campaign_snapshot" in example:
        # Golden files are written by the flag first, as a user would.
        update = pytester.runpytest_subprocess("-p", "fermilink_state", UPDATE_FLAG)
        update.assert_outcomes(passed=tests)
    result = pytester.runpytest_subprocess("-p", "fermilink_state")
    result.assert_outcomes(passed=tests)


def test_quick_start_is_two_commands_ending_with_the_ci_command() -> None:
    quick_start = _blocks("sh")[0].strip().splitlines()
    ci_script = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert len(quick_start) == 2
    assert "fermilink-state demo" in quick_start[0]
    assert quick_start[1] in ci_script


def test_readme_has_examples_of_each_kind() -> None:
    assert _library_examples(), "README lost its library examples"
    assert _plugin_examples(), "README lost its plugin example"
