"""Put on PYTHONPATH by ``fermilink-state exec``: adopt fermilink-state in this Python process.

When ``FERMILINK_STATE_ADOPT=1`` (``exec`` sets it; children inherit it with
PYTHONPATH), the first ``import fermilink`` calls
``fermilink_state.adopt.install()`` first, so a process that never imports
FermiLink (git, pip, a build step) does not even import fermilink_state.
Then it runs the ``sitecustomize`` this file shadows, if there is one
further down sys.path.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType


class _AdoptBeforeFermiLink:
    """A one-shot ``sys.meta_path`` finder: on ``import fermilink``, install the adapter."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> None:
        if fullname != "fermilink":
            return
        sys.meta_path.remove(self)
        try:
            from fermilink_state.adopt import install
        except ImportError:
            sys.stderr.write(
                f"fermilink-state exec: warning: {sys.executable} cannot import "
                "fermilink_state, so FermiLink's campaign writes in this process are not "
                "covered; install fermilink-state in that environment\n"
            )
            return
        install()
        # None: the usual finders go on to find FermiLink itself.


def _chain_to_shadowed_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


if os.environ.get("FERMILINK_STATE_ADOPT") == "1":
    sys.meta_path.insert(0, _AdoptBeforeFermiLink())
_chain_to_shadowed_sitecustomize()
