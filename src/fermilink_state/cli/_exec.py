"""``fermilink-state exec -- <command ...>``: a command with the adapter in all its Pythons.

The command runs in place of this process (exit code and signals are its
own), with a folder on ``PYTHONPATH`` whose ``sitecustomize.py`` makes every
Python process that starts with that environment, children included, call
:func:`fermilink_state.adopt.install` just before it first imports
FermiLink (a process that never does pays nothing), and then runs any
``sitecustomize`` it shadows. ``python -I`` / ``-E`` / ``-S`` ignore it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, NoReturn

ADOPT_ENV: Final = "FERMILINK_STATE_ADOPT"
SITE_DIR: Final = Path(__file__).resolve().parent.parent / "adopt" / "_site"
EXIT_CANNOT_RUN: Final = 126
EXIT_NOT_FOUND: Final = 127


class ExecError(Exception):
    """The command could not be started: ``code`` is the shell's (126 or 127)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def adopting_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """``environment`` plus the adapter's folder first on PYTHONPATH and its switch on.

    The switch is ``FERMILINK_STATE_ADOPT=1``; both are inherited by children.
    """
    adopted = dict(environment)
    site = str(SITE_DIR)
    existing = [entry for entry in adopted.get("PYTHONPATH", "").split(os.pathsep) if entry]
    adopted["PYTHONPATH"] = os.pathsep.join([site, *(e for e in existing if e != site)])
    adopted[ADOPT_ENV] = "1"
    return adopted


def exec_adopted(command: Sequence[str]) -> NoReturn:
    """Replace this process with ``command``, run with :func:`adopting_environment`.

    Raises :class:`ExecError` when the command cannot be started.
    """
    environment = adopting_environment(os.environ)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if os.name == "nt":  # pragma: no cover - no exec() that keeps the console there
            raise SystemExit(subprocess.call(list(command), env=environment))
        os.execvpe(command[0], list(command), environment)
    except FileNotFoundError:
        raise ExecError(
            f"{command[0]}: command not found (is it on PATH?)", EXIT_NOT_FOUND
        ) from None
    except PermissionError as error:
        message = f"{command[0]}: cannot run it ({error.strerror})"
        raise ExecError(message, EXIT_CANNOT_RUN) from None
