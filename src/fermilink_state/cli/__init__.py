"""The ``fermilink-state`` command line (also ``python -m fermilink_state``).

``_main`` wires the arguments; each subcommand's engine is a module of its own
here (``_status``, ``_check``, ``_unlock``, ``_plot``, ``_demo``), built on the
library's core modules one level up.
"""

from __future__ import annotations

from fermilink_state.cli._main import CommandError, build_parser, main

__all__ = ["CommandError", "build_parser", "main"]
