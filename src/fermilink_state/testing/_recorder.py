"""The recording half of the crash-state engine: a child process runs a step
with a recorder in ``fermilink_state._fileops`` and sends the operations back.

See :mod:`fermilink_state.testing._crashstates` for the whole engine and its API.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import io
import multiprocessing
import os
import pickle
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Final, Literal

from fermilink_state import _fileops
from fermilink_state._locking import LOCK_SUFFIX

DEFAULT_LIBRARIES: Final = ("fermilink_state", "fermilink.optimize.state")
_NOT_LIBRARY: Final = ("fermilink_state.testing", "fermilink_state._fileops")


@dataclass(frozen=True, slots=True)
class FileOp:
    """One recorded file operation.

    ``kind`` is one of ``create``, ``write``, ``truncate``, ``fsync``,
    ``fdatasync``, ``sync_folder``, ``rename``, ``unlink``, ``mkdir``,
    ``mark``. ``path`` is relative to the project root (POSIX separators;
    ``"."`` is the root itself); ``target`` is a rename's new name. ``inode``
    names the file the op acts on across renames (``"init:<path>"`` for a file
    that existed before the step). ``call`` is the outermost library function
    on the stack when the op ran (``""`` for none), ``stack`` every library
    function from outermost to innermost, ``call_index`` counts top-level
    library calls (ops of one call share it).
    """

    index: int
    kind: str
    path: str = ""
    target: str = ""
    inode: str = ""
    offset: int = 0
    data: bytes = b""
    size: int = 0
    label: str = ""
    call: str = ""
    stack: tuple[str, ...] = ()
    call_index: int = -1

    def describe(self) -> str:
        """One line: what the op did and which library call did it."""
        if self.kind == "mark":
            return f"#{self.index} mark {self.label!r}"
        if self.kind == "write":
            what = f"write {len(self.data)} bytes at {self.offset} to {self.path}"
        elif self.kind == "truncate":
            what = f"truncate {self.path} to {self.size} bytes"
        elif self.kind == "rename":
            what = f"rename {self.path} -> {self.target}"
        else:
            what = f"{self.kind} {self.path}"
        return f"#{self.index} {what}" + (f" (in {self.call})" if self.call else "")


@dataclass(frozen=True, slots=True)
class Tree:
    """The folders and file bytes under a project root, by relative POSIX path."""

    folders: frozenset[str]
    files: Mapping[str, bytes]

    @classmethod
    def capture(cls, root: Path, *, ignore: Callable[[str], bool] | None = None) -> Tree:
        """Read every folder and regular file under ``root`` (symlinks are skipped)."""
        skip = ignore or is_lock_file
        folders: set[str] = set()
        files: dict[str, bytes] = {}
        for folder, dirs, names in os.walk(root):
            relative = os.path.relpath(folder, root)
            prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
            folders.update(prefix + name for name in dirs)
            for name in names:
                full = os.path.join(folder, name)
                if skip(prefix + name) or os.path.islink(full):
                    continue
                with contextlib.suppress(FileNotFoundError), open(full, "rb") as handle:
                    files[prefix + name] = handle.read()
        return cls(frozenset(folders), files)

    def fingerprint(self) -> bytes:
        """A digest of every folder name and file's bytes."""
        digest = hashlib.blake2b(digest_size=16)
        for folder in sorted(self.folders):
            digest.update(b"d" + folder.encode() + b"\0")
        for name in sorted(self.files):
            data = self.files[name]
            digest.update(b"f" + name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
        return digest.digest()

    def write_to(self, destination: Path) -> Path:
        """Create ``destination`` (must not exist) holding exactly this tree."""
        destination.mkdir(parents=True)
        for folder in sorted(self.folders):
            (destination / folder).mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            (destination / name).write_bytes(data)
        return destination


def is_lock_file(relative: str) -> bool:
    """Whether a relative path is an inter-process lock file (not campaign data)."""
    return relative.endswith(LOCK_SUFFIX)


class CrashStepError(RuntimeError):
    """The recorded step raised; the message holds its traceback."""


class _OpRecorder:
    """Receives the seam's calls in the child process and keeps them as ops."""

    perform_syncs = False

    def __init__(self, root: str, libraries: Sequence[str]) -> None:
        self.root = root
        self.libraries = tuple(libraries)
        self.ops: list[FileOp] = []
        self._fds: dict[int, tuple[str, str]] = {}  # fd -> (relative path at open, inode)
        self._names: dict[str, str] = {}  # relative path -> inode, as the step changed them
        self._new_inodes = 0
        self._outer: FrameType | None = None
        self._call_index = -1
        self._guard = threading.Lock()

    def _relative(self, path: str) -> str | None:
        relative = os.path.relpath(path, self.root)
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            return None
        return relative.replace(os.sep, "/")

    def _inode(self, relative: str) -> str:
        return self._names.get(relative) or self._names.setdefault(relative, f"init:{relative}")

    def _caller(self) -> tuple[str, tuple[str, ...], int]:
        frame: FrameType | None = sys._getframe(3)
        outer: FrameType | None = None
        stack: list[str] = []
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if module.startswith(self.libraries) and not module.startswith(_NOT_LIBRARY):
                outer = frame
                stack.append(frame.f_code.co_name)
            frame = frame.f_back
        if outer is None:
            return "", (), -1
        if outer is not self._outer:
            self._outer = outer  # a live reference: its identity cannot be reused meanwhile
            self._call_index += 1
        stack.reverse()
        return stack[0], tuple(stack), self._call_index

    def _add(self, kind: str, **fields: Any) -> None:
        with self._guard:  # a step's threads (a lease renewer, say) record too
            call, stack, call_index = self._caller()
            op = FileOp(
                len(self.ops), kind, call=call, stack=stack, call_index=call_index, **fields
            )
            self.ops.append(op)

    def add_mark(self, label: str) -> None:
        self._add("mark", label=label)

    def opened(self, fd: int, path: str, *, created: bool, truncated: bool) -> None:
        relative = self._relative(path)
        if relative is None:
            return
        if created:
            self._new_inodes += 1
            inode = self._names[relative] = f"new:{self._new_inodes}"
            self._add("create", path=relative, inode=inode)
        else:
            inode = self._inode(relative)
        self._fds[fd] = (relative, inode)
        if truncated:
            self._add("truncate", path=relative, inode=inode, size=0)

    def wrote(self, fd: int, offset: int, data: bytes) -> None:
        if fd in self._fds:
            relative, inode = self._fds[fd]
            self._add("write", path=relative, inode=inode, offset=offset, data=data)

    def truncated(self, fd: int, size: int) -> None:
        if fd in self._fds:
            relative, inode = self._fds[fd]
            self._add("truncate", path=relative, inode=inode, size=size)

    def synced(self, fd: int, *, data_only: bool) -> None:
        if fd in self._fds:
            relative, inode = self._fds[fd]
            self._add("fdatasync" if data_only else "fsync", path=relative, inode=inode)

    def synced_folder(self, path: str) -> None:
        relative = self._relative(path)
        if relative is not None:
            self._add("sync_folder", path=relative)

    def renamed(self, source: str, target: str) -> None:
        old, new = self._relative(source), self._relative(target)
        if old is None or new is None:
            return
        inode = self._inode(old)
        del self._names[old]
        self._names[new] = inode
        self._add("rename", path=old, target=new, inode=inode)

    def unlinked(self, path: str) -> None:
        relative = self._relative(path)
        if relative is not None:
            self._add("unlink", path=relative, inode=self._names.pop(relative, f"init:{relative}"))

    def made_folder(self, path: str) -> None:
        relative = self._relative(path)
        if relative is not None:
            self._add("mkdir", path=relative)

    def closed(self, fd: int) -> None:
        self._fds.pop(fd, None)


def mark(label: str) -> None:
    """Note in the recording that ``label`` happened (no-op when not recording).

    Call it in a step right after a library call returns (``mark("row 3")``):
    crash states after it carry the label in :attr:`CrashState.marks`, so a
    check can demand what the workload was promised.
    """
    recorder = _fileops.current_recorder()
    if isinstance(recorder, _OpRecorder):
        recorder.add_mark(str(label))


_WRITE_MODES: Final = frozenset("wax+")


class _RecordedFile(io.RawIOBase):
    """A file opened for writing by traced code: every flush is one recorded write."""

    def __init__(self, path: str, mode: str, encoding: str | None, errors: str | None) -> None:
        super().__init__()
        flags = getattr(os, "O_CLOEXEC", 0)
        flags |= os.O_RDWR if "+" in mode else os.O_WRONLY
        if "w" in mode:
            flags |= os.O_CREAT | os.O_TRUNC
        elif "a" in mode:
            flags |= os.O_CREAT | os.O_APPEND
        elif "x" in mode:
            flags |= os.O_CREAT | os.O_EXCL
        self._fd = _fileops.open_file(path, flags, 0o666)
        self._text = "b" not in mode
        self._encoding = encoding or "utf-8"
        self._errors = errors or "strict"
        self._pending: list[bytes] = []
        self.name = path
        self.mode = mode

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: Any) -> int:
        chunk = data.encode(self._encoding, self._errors) if isinstance(data, str) else bytes(data)
        self._pending.append(chunk)
        return len(data)

    def flush(self) -> None:
        if self.closed or not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        _fileops.write_all(self._fd, data)

    def close(self) -> None:
        if not self.closed:
            try:
                self.flush()
            finally:
                _fileops.close(self._fd)
        super().close()

    def __enter__(self) -> _RecordedFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def _pathlib_traced() -> Iterator[None]:
    """Route ``open()`` for writing and pathlib's mkdir / unlink / rename / replace to the seam."""
    real_open = builtins.open
    real_mkdir = Path.mkdir

    def traced_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> IO[Any]:
        if isinstance(file, int) or not _WRITE_MODES.intersection(mode):
            return real_open(file, mode, *args, **kwargs)
        encoding = kwargs.get("encoding") or (args[1] if len(args) > 1 else None)
        errors = kwargs.get("errors") or (args[2] if len(args) > 2 else None)
        return _RecordedFile(os.fspath(file), mode, encoding, errors)  # type: ignore[return-value]

    def traced_mkdir(
        self: Path, mode: int = 0o777, parents: bool = False, exist_ok: bool = False
    ) -> None:
        if not parents or (self.is_dir() and not exist_ok):
            real_mkdir(self, mode, parents, exist_ok)  # the plain errors
            recorder = _fileops.current_recorder()
            if recorder is not None:
                recorder.made_folder(os.path.abspath(self))
            return
        _fileops.make_folders(self, durable=False)

    def traced_unlink(self: Path, missing_ok: bool = False) -> None:
        try:
            _fileops.unlink(self)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def traced_rename(self: Path, target: Any) -> Path:
        _fileops.rename(self, target)
        return Path(target)

    def traced_replace(self: Path, target: Any) -> Path:
        _fileops.replace(self, target)
        return Path(target)

    patches: list[tuple[Any, str, Any]] = [
        (builtins, "open", traced_open),
        (io, "open", traced_open),
        (Path, "mkdir", traced_mkdir),
        (Path, "unlink", traced_unlink),
        (Path, "rename", traced_rename),
        (Path, "replace", traced_replace),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, value in patches:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


@dataclass(frozen=True, slots=True)
class ChildSettings:
    """What the recording child needs besides the step."""

    root: str
    fsync: bool
    trace_pathlib: bool
    libraries: tuple[str, ...]


def _run_step(step: Callable[[Path], object], settings: ChildSettings, sender: Any) -> None:
    # The child: fsync on (so the writers issue their syncs), a recorder in
    # the seam, the step, and the ops sent back whatever happened.
    if settings.fsync:
        os.environ[_fileops.FSYNC_ENV] = "1"
    root = settings.root
    recorder = _OpRecorder(root, settings.libraries)
    error: str | None = None
    result: object = None
    _fileops.install_recorder(recorder)
    try:
        with _pathlib_traced() if settings.trace_pathlib else contextlib.nullcontext():
            result = step(Path(root))
    except BaseException:  # the step's failure is reported, not fatal here
        error = traceback.format_exc()
    finally:
        _fileops.install_recorder(None)
    try:
        pickle.dumps(result)
    except Exception:
        result = repr(result)
    sender.send((recorder.ops, error, result))
    sender.close()


def run_in_child(
    step: Callable[[Path], object],
    settings: ChildSettings,
    start: Literal["spawn", "fork", "forkserver"],
    timeout: float,
) -> tuple[list[FileOp], str | None, object]:
    """Run ``step`` in a child process with a recorder; return ``(ops, error, result)``."""
    context = multiprocessing.get_context(start)
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(  # type: ignore[attr-defined]
        target=_run_step, args=(step, settings, sender)
    )
    child.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            raise TimeoutError(f"the recorded step ran longer than {timeout} s")
        ops, error, result = receiver.recv()
    except EOFError:
        child.join(timeout)
        raise CrashStepError(
            f"the recording child died (exit code {child.exitcode}) before reporting"
        ) from None
    finally:
        receiver.close()
        if child.is_alive():
            child.join(5.0)
        if child.is_alive():
            child.kill()
            child.join()
    return ops, error, result
