"""``install()``: make ``fermilink.optimize.state`` be this library, and wrap FermiLink's writers.

Works before or after FermiLink is imported. Already imported: the module is
swapped in ``sys.modules``, as the package attribute and in every module that
holds the old module or one of its functions, and FermiLink's writers are
wrapped now. Not yet imported: ``sys.modules`` gets the alias at once (an
``import`` of the state module then finds this library), and a
``sys.meta_path`` finder finishes the job when ``fermilink.optimize`` and
``fermilink.optimize.main`` are loaded.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

import fermilink_state
from fermilink_state._errors import AdoptionWarning
from fermilink_state.adopt._coverage import (
    COVERED_WRITERS,
    MAIN_MODULE,
    SUPPORTED_FERMILINK_VERSION,
)
from fermilink_state.adopt._routing import WRAPPED_MARKER

STATE_MODULE: Final = "fermilink.optimize.state"
PACKAGE: Final = "fermilink.optimize"
# Loading either of these finishes an install made before FermiLink was imported.
_WATCHED: Final = frozenset({PACKAGE, MAIN_MODULE})

_guard = threading.RLock()


@dataclass(slots=True)
class _Progress:
    finder: _AdoptingFinder | None = None
    version_checked: bool = False
    writers_covered: bool = False


_progress = _Progress()


@dataclass(frozen=True, slots=True)
class Adoption:
    """What :func:`install` has done so far in this process.

    ``fermilink_version`` is the installed FermiLink's version (``None``
    when FermiLink is not installed, or not yet checked because
    ``fermilink.optimize.main`` is not imported yet); ``wrapped`` the
    qualified names of FermiLink's writers now wrapped.
    """

    aliased: bool
    fermilink_version: str | None
    wrapped: tuple[str, ...]


def _installed_fermilink_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("fermilink")
    except metadata.PackageNotFoundError:
        return None


def _rebind_everywhere(old: ModuleType) -> None:
    """Point every module-level name that holds ``old`` or one of its functions at ours."""
    # Keyed by id() for one dict lookup per name; the identity check after the
    # lookup guards against an id reused by another object.
    swaps: dict[int, tuple[object, object]] = {id(old): (old, fermilink_state)}
    for name, value in vars(old).items():
        if callable(value) and getattr(value, "__module__", None) == old.__name__:
            ours = getattr(fermilink_state, name, None)
            if ours is not None:
                swaps[id(value)] = (value, ours)
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if module is old or module is fermilink_state or not isinstance(namespace, dict):
            continue
        for key, value in list(namespace.items()):
            swap = swaps.get(id(value))
            if swap is not None and swap[0] is value:
                namespace[key] = swap[1]


def _alias_state_module() -> None:
    previous = sys.modules.get(STATE_MODULE)
    sys.modules[STATE_MODULE] = fermilink_state
    package = sys.modules.get(PACKAGE)
    if package is not None:
        package.state = fermilink_state  # type: ignore[attr-defined]
    if previous is not None and previous is not fermilink_state:
        _rebind_everywhere(previous)


def _uncovered_names() -> str:
    return ", ".join(writer.qualified_name for writer in COVERED_WRITERS)


def _check_version() -> bool:
    """Whether the writers may be wrapped; warns once when they may not."""
    version = _installed_fermilink_version()
    _progress.version_checked = True
    if version == SUPPORTED_FERMILINK_VERSION:
        return True
    found = f"fermilink {version} is installed" if version else "fermilink's version is unknown"
    warnings.warn(
        f"{found}, but fermilink_state.adopt was built against fermilink "
        f"{SUPPORTED_FERMILINK_VERSION}: only the module alias is installed "
        "(fermilink.optimize.state is fermilink_state). FermiLink's own writes of campaign "
        f"files are NOT covered: {_uncovered_names()}. Install fermilink=="
        f"{SUPPORTED_FERMILINK_VERSION}, or a fermilink-state release built for yours.",
        AdoptionWarning,
        stacklevel=4,
    )
    return False


def _wrap_writers(main: ModuleType) -> None:
    for writer in COVERED_WRITERS:
        original = getattr(main, writer.function, None)
        if callable(original) and not getattr(original, WRAPPED_MARKER, False):
            setattr(main, writer.function, writer.wrapping.apply(original))
    _progress.writers_covered = True


def _finish() -> None:
    """Everything that can be done with what is imported now (idempotent)."""
    _alias_state_module()
    main = sys.modules.get(MAIN_MODULE)
    if main is None or (_progress.version_checked and not _progress.writers_covered):
        return
    if _progress.writers_covered or _check_version():
        _wrap_writers(main)


class _FinishingLoader(importlib.abc.Loader):
    """Runs the real loader, then finishes the install for the module just loaded."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        with _guard:
            _finish()

    def __getattr__(self, name: str) -> Any:
        # get_source, get_resource_reader, is_package ...: the real loader's.
        return getattr(self._inner, name)


class _AdoptingFinder(importlib.abc.MetaPathFinder):
    """Finds FermiLink's optimize package and controller as usual, with a finishing loader."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: importlib.machinery.ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _FinishingLoader(spec.loader)
                return spec
        return None


def install() -> Adoption:
    """Make FermiLink use this library, and make FermiLink's own campaign writes safe.

    One call, idempotent, made before or after FermiLink is imported:

    - ``fermilink.optimize.state`` becomes :mod:`fermilink_state` in
      ``sys.modules``, as the package attribute, and in every module that
      had already imported it (or one of its functions);
    - on FermiLink 0.3.10, FermiLink's own writers of campaign files
      (:data:`~fermilink_state.adopt.COVERED_WRITERS`) are wrapped by name:
      run under this library's locks and routed through its atomic writer;
    - on another FermiLink version only the alias is installed, and one
      :class:`~fermilink_state.adopt.AdoptionWarning` names what is not covered.
    """
    with _guard:
        if _progress.finder is None:
            _progress.finder = _AdoptingFinder()
            sys.meta_path.insert(0, _progress.finder)
        _finish()
        return status()


def status() -> Adoption:
    """What :func:`install` has done so far in this process (see :class:`Adoption`)."""
    main = sys.modules.get(MAIN_MODULE)
    wrapped = tuple(
        writer.qualified_name
        for writer in COVERED_WRITERS
        if main is not None and getattr(getattr(main, writer.function, None), WRAPPED_MARKER, False)
    )
    version = _installed_fermilink_version() if _progress.version_checked else None
    return Adoption(
        aliased=sys.modules.get(STATE_MODULE) is fermilink_state,
        fermilink_version=version,
        wrapped=wrapped,
    )
