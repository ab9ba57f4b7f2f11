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


def test_the_library_needs_only_filelock_and_pytest_is_an_extra() -> None:
    from importlib.metadata import requires

    requirements = [r.replace("'", '"') for r in requires("fermilink-state") or []]
    runtime = [r for r in requirements if "extra ==" not in r]
    assert [r.split(">")[0].strip() for r in runtime] == ["filelock"]
    assert 'pytest>=8; extra == "pytest"' in requirements
    assert 'pytest>=8; extra == "test"' in requirements


def test_the_test_kit_imports_no_pytest() -> None:
    code = (
        "import sys, fermilink_state.testing; "
        "print('pytest' in sys.modules, '_pytest' in sys.modules)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert output.split() == ["False", "False"]


def test_every_lazily_exported_name_is_listed_once_and_resolves() -> None:
    # Both packages import their names on first use: a name in __all__ that the
    # lazy table lacks would only fail when someone uses it.
    from fermilink_state import testing

    assert sorted(fermilink_state._MODULE_OF) == sorted(
        set(fermilink_state.__all__) - {"__version__"}
    )
    assert sorted(testing._EXPORTS) == sorted(testing.__all__)
    for package in (fermilink_state, testing):
        assert [name for name in package.__all__ if getattr(package, name, None) is None] == []


def test_the_plugins_snapshot_bookkeeping_does_not_load_the_test_kit() -> None:
    # The plugin registers its snapshot session at start-up: that must not cost
    # the whole test kit (crash explorer, consistency engine) before any test runs.
    code = (
        "import sys, fermilink_state.testing._snapshot_usage; "
        "print(sorted(m for m in ('fermilink_state._consistency', "
        "'fermilink_state.testing._crash', 'fermilink_state.testing._assertions') "
        "if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert output.strip() == "[]"
