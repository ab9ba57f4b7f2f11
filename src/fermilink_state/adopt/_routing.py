"""How FermiLink's own writers are made safe: locks around them, paths that write atomically.

FermiLink is AGPL-licensed: nothing here copies its code. Each wrapping takes
FermiLink's function as it is and changes only what it is given: it calls the
function under this library's lock of the file it writes, and/or hands it a
path whose ``write_text`` / ``write_bytes`` go through this library's atomic
writer (:class:`AtomicPath`), and/or points a copy at a staging file that is
then put in place atomically.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import os
import pathlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from fermilink_state._atomic import _temp_name, atomic_write_bytes
from fermilink_state._locking import locked

WRAPPED_MARKER: Final = "__fermilink_state_adopted__"


@dataclass(frozen=True, slots=True)
class Wrapping:
    """How one FermiLink function is wrapped: which argument it acts on, and the wrapper maker."""

    argument: str
    apply: Callable[[Callable[..., Any]], Callable[..., Any]]


_ConcretePath: type[Path]
if sys.platform == "win32":  # pragma: no cover - Windows only
    _ConcretePath = pathlib.WindowsPath
else:
    _ConcretePath = pathlib.PosixPath


class AtomicPath(_ConcretePath):  # type: ignore[valid-type,misc]
    """A path whose ``write_text`` / ``write_bytes`` replace the file atomically and durably.

    Everything else is a plain :class:`pathlib.Path`; paths derived from it
    (``/``, ``.parent``, ``with_name``) are ``AtomicPath`` too, so a FermiLink
    function handed a run folder writes every file in it atomically.
    """

    def write_bytes(self, data: Any) -> int:
        """Replace the file with ``data`` (bytes-like) atomically; return its length."""
        view = memoryview(data)
        atomic_write_bytes(Path(self), view.tobytes())
        return view.nbytes

    def write_text(
        self,
        data: str,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> int:
        """Replace the file with ``data`` encoded as ``open(mode="w")`` would; atomically."""
        if not isinstance(data, str):
            raise TypeError(f"data must be str, not {type(data).__name__}")
        text = data
        # What open(mode="w") would do with the same arguments.
        translated = os.linesep if newline is None else newline
        if translated not in ("", "\n"):
            text = text.replace("\n", translated)
        codec = encoding if encoding is not None else "locale"
        if codec == "locale":
            import locale

            codec = locale.getpreferredencoding(False)
        atomic_write_bytes(Path(self), text.encode(codec, errors or "strict"))
        return len(data)


def _adopted(
    original: Callable[..., Any], body: Callable[[inspect.BoundArguments], Any]
) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = signature.bind(*args, **kwargs)
        return body(call)

    setattr(wrapper, WRAPPED_MARKER, True)
    return wrapper


def _lock_beside(target: Path, *, make_folder: bool) -> contextlib.AbstractContextManager[None]:
    if make_folder:
        target.parent.mkdir(parents=True, exist_ok=True)
    elif not target.parent.is_dir():
        # Nothing to guard: the function finds no file and writes none (it
        # reads first and returns on OSError), and a lock file cannot be made.
        return contextlib.nullcontext()
    return locked(target)


def under_lock(
    argument: str,
    lock_target: Callable[[Path], Path] = Path,
    *,
    route: bool = False,
    make_folder: bool = False,
) -> Wrapping:
    """Call the function under the lock of ``lock_target(<argument>)``.

    ``route=True`` also hands it ``<argument>`` as an :class:`AtomicPath`.
    ``make_folder`` creates the locked file's folder first (where the
    function would create it anyway).
    """

    def wrapping(original: Callable[..., Any]) -> Callable[..., Any]:
        def body(call: inspect.BoundArguments) -> Any:
            path = Path(call.arguments[argument])
            if route:
                call.arguments[argument] = AtomicPath(path)
            with _lock_beside(lock_target(path), make_folder=make_folder):
                return original(*call.args, **call.kwargs)

        return _adopted(original, body)

    return Wrapping(argument, wrapping)


def routed(argument: str) -> Wrapping:
    """Hand the function ``<argument>`` as an :class:`AtomicPath`."""

    def wrapping(original: Callable[..., Any]) -> Callable[..., Any]:
        def body(call: inspect.BoundArguments) -> Any:
            call.arguments[argument] = AtomicPath(call.arguments[argument])
            return original(*call.args, **call.kwargs)

        return _adopted(original, body)

    return Wrapping(argument, wrapping)


@contextlib.contextmanager
def _staging_for(target: Path) -> Iterator[Path]:
    # A temp name of this library's scheme: if this process dies, the next
    # atomic write of the target sweeps it away.
    staging = _temp_name(target)
    try:
        yield staging
    finally:
        with contextlib.suppress(OSError):
            staging.unlink()


def staged_copy(argument: str) -> Wrapping:
    """Point the function's copy into ``<argument>`` at a staging file; publish it atomically.

    Under the target's lock, the function copies into a staging file beside
    the target; the staging file's bytes then replace the target through the
    atomic writer, so no reader ever sees a half-copied file.
    """

    def wrapping(original: Callable[..., Any]) -> Callable[..., Any]:
        def body(call: inspect.BoundArguments) -> Any:
            target = Path(call.arguments[argument])
            with _lock_beside(target, make_folder=True), _staging_for(target) as staging:
                call.arguments[argument] = staging
                result = original(*call.args, **call.kwargs)
                if staging.is_file():
                    atomic_write_bytes(target, staging.read_bytes())
                return result

        return _adopted(original, body)

    return Wrapping(argument, wrapping)


# Set while a wrapped function runs (see paths_routed_during): the path helpers
# wrapped by it then return AtomicPath. A context variable, so another thread,
# or a caller outside the wrapped function, gets the plain Path as before.
_routing_helpers: Final = contextvars.ContextVar("fermilink_state_adopt_routing", default=False)


def _routing_when_asked(helper: Callable[..., Path]) -> Callable[..., Path]:
    @functools.wraps(helper)
    def wrapper(*args: Any, **kwargs: Any) -> Path:
        path = helper(*args, **kwargs)
        return AtomicPath(path) if _routing_helpers.get() else path

    setattr(wrapper, WRAPPED_MARKER, True)
    return wrapper


def paths_routed_during(argument: str, module: ModuleType, helpers: tuple[str, ...]) -> Wrapping:
    """While the function runs, ``module``'s path ``helpers`` return :class:`AtomicPath`.

    For a function that makes its paths itself (from ``<argument>``, which
    is not a path) and writes them with ``Path.write_text``: it finds the
    helpers by name in ``module`` (the state module, aliased to this
    library), so wrapping them routes its writes. The helpers are replaced
    in ``module`` once, by thin wrappers that return the same path, as an
    ``AtomicPath`` only inside a call of the wrapped function (in its
    thread and context): everyone else gets what they got before.
    """

    def wrapping(original: Callable[..., Any]) -> Callable[..., Any]:
        for name in helpers:
            helper = getattr(module, name)
            if not getattr(helper, WRAPPED_MARKER, False):
                setattr(module, name, _routing_when_asked(helper))

        def body(call: inspect.BoundArguments) -> Any:
            token = _routing_helpers.set(True)
            try:
                return original(*call.args, **call.kwargs)
            finally:
                _routing_helpers.reset(token)

        return _adopted(original, body)

    return Wrapping(argument, wrapping)
