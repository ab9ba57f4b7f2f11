"""The reference's whole public surface is importable from fermilink_state, unchanged.

Names, signatures (parameter names, kinds and defaults) and constant values
of ``fermilink.optimize.state``, plus the underscore helpers FermiLink's
controller calls directly and the four inputs path helpers.
"""

from __future__ import annotations
import __future__

import inspect
import subprocess
import sys
import types
from pathlib import Path

import pytest

import fermilink_state
from support import REFERENCE_DISTRIBUTION, REFERENCE_VERSION, load_reference

reference = load_reference()

# Called by FermiLink's controller although they are private (SPEC §1).
UNDERSCORE_HELPERS = (
    "_sanitize_cell",
    "_find_section_bounds",
    "_set_section_lines",
    "_append_section_line",
    "_replace_metadata_line",
)
INPUTS_HELPERS = (
    "inputs_root",
    "goal_inputs_all_root",
    "goal_inputs_worker_root",
    "goal_inputs_manifest_path",
)


def test_the_reference_is_fermilink_0_3_10() -> None:
    # Every differential test compares against this module: it must be the
    # release the contract names, imported from that installed distribution.
    from importlib.metadata import distribution

    installed = distribution(REFERENCE_DISTRIBUTION)
    module_file = Path(inspect.getfile(reference)).resolve()
    shipped = {Path(str(installed.locate_file(file))).resolve() for file in installed.files or []}
    assert (installed.version, module_file in shipped) == (REFERENCE_VERSION, True), (
        f"{reference.__name__} comes from {module_file}, "
        f"distribution {REFERENCE_DISTRIBUTION} {installed.version}"
    )


def _defined_in_reference(name: str) -> bool:
    value = getattr(reference, name)
    if isinstance(value, types.ModuleType) or value is __future__.annotations:
        return False
    if callable(value):
        return getattr(value, "__module__", None) == reference.__name__
    return True


PUBLIC_NAMES = sorted(
    name for name in vars(reference) if not name.startswith("_") and _defined_in_reference(name)
)
FUNCTIONS = sorted(
    {name for name in PUBLIC_NAMES if callable(getattr(reference, name))} | set(UNDERSCORE_HELPERS)
)
CONSTANTS = sorted(name for name in PUBLIC_NAMES if not callable(getattr(reference, name)))


def _parameters(function: object) -> list[tuple[str, object, object]]:
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def test_the_surface_lists_are_complete() -> None:
    # Guards the parametrization itself: an empty list would pass vacuously.
    assert len(FUNCTIONS) >= 50
    assert len(CONSTANTS) >= 29
    assert set(INPUTS_HELPERS) <= set(FUNCTIONS)
    assert "RESULTS_HEADER" in CONSTANTS


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_has_the_reference_signature(name: str) -> None:
    ours = getattr(fermilink_state, name)
    assert _parameters(ours) == _parameters(getattr(reference, name))


@pytest.mark.parametrize("name", CONSTANTS)
def test_constant_has_the_reference_value(name: str) -> None:
    ours = getattr(fermilink_state, name)
    theirs = getattr(reference, name)
    assert (type(ours), ours) == (type(theirs), theirs)


@pytest.mark.parametrize("name", PUBLIC_NAMES + list(UNDERSCORE_HELPERS))
def test_name_is_exported_in_all(name: str) -> None:
    assert name in fermilink_state.__all__


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_has_a_docstring(name: str) -> None:
    function = getattr(fermilink_state, name)
    assert (function.__doc__ or "").strip()


def test_import_loads_only_the_standard_library_and_filelock() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import fermilink_state\n"
        "loaded = {name.partition('.')[0] for name in set(sys.modules) - before}\n"
        "extra = loaded - set(sys.stdlib_module_names) - {'fermilink_state', 'filelock'}\n"
        "print(sorted(extra))\n"
        "print('pytest' in sys.modules, '_pytest' in sys.modules)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert output == ["[]", "False False"]
