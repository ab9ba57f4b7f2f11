"""The package surface: what ``import fermilink_state`` gives and costs."""

from __future__ import annotations

import subprocess
import sys

import fermilink_state


def test_import_loads_no_pytest() -> None:
    code = "import sys, fermilink_state; print('pytest' in sys.modules, '_pytest' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert output.split() == ["False", "False"]


def test_every_name_in_all_exists() -> None:
    missing = [name for name in fermilink_state.__all__ if not hasattr(fermilink_state, name)]
    assert missing == []


def test_version_is_the_installed_distribution() -> None:
    from importlib.metadata import version

    assert fermilink_state.__version__ == version("fermilink-state")
