"""``python -m fermilink_state``: the same as the ``fermilink-state`` command."""

from __future__ import annotations

from fermilink_state.cli import main

raise SystemExit(main())
