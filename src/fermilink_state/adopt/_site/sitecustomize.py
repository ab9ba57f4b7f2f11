"""Put on PYTHONPATH by ``fermilink-state exec``: adopt fermilink-state in this Python process.

Calls ``fermilink_state.adopt.install()`` when ``FERMILINK_STATE_ADOPT=1``
(``exec`` sets it, and children inherit it with PYTHONPATH), then runs the
``sitecustomize`` this file shadows, if there is one further down sys.path.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def _adopt() -> None:
    if os.environ.get("FERMILINK_STATE_ADOPT") != "1":
        return
    try:
        from fermilink_state.adopt import install
    except ImportError:
        # An interpreter without fermilink-state (another venv the command
        # started): say so only where FermiLink is there to be left uncovered.
        if importlib.util.find_spec("fermilink") is not None:
            sys.stderr.write(
                f"fermilink-state exec: warning: {sys.executable} cannot import "
                "fermilink_state, so FermiLink's campaign writes in this process are not "
                "covered; install fermilink-state in that environment\n"
            )
        return
    install()


def _chain_to_shadowed_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_adopt()
_chain_to_shadowed_sitecustomize()
