"""Adopting fermilink-state in FermiLink: one line makes FermiLink's own campaign writes safe.

``fermilink_state.adopt.install()`` (or ``fermilink-state exec -- <command>``,
which installs it in every Python process the command starts) makes
``fermilink.optimize.state`` be :mod:`fermilink_state`, and wraps, by name,
the functions of FermiLink 0.3.10 that write campaign files themselves
(:data:`COVERED_WRITERS`; writes made safe by this library's own functions
through the alias: :data:`COVERED_THROUGH_THE_MODULE`; what cannot be
covered: :data:`UNCOVERED_WRITES`, empty on 0.3.10).
``import fermilink_state`` never imports this module or FermiLink.
"""

from __future__ import annotations

from fermilink_state._errors import AdoptionWarning
from fermilink_state.adopt._coverage import (
    COVERED_THROUGH_THE_MODULE,
    COVERED_WRITERS,
    SUPPORTED_FERMILINK_VERSION,
    UNCOVERED_WRITES,
    CoveredThroughTheModule,
    CoveredWriter,
    UncoveredWrite,
)
from fermilink_state.adopt._install import Adoption, install, status
from fermilink_state.adopt._routing import AtomicPath

for _public in (Adoption, AtomicPath, CoveredThroughTheModule, CoveredWriter, UncoveredWrite):
    _public.__module__ = __name__
del _public

__all__ = [
    "COVERED_THROUGH_THE_MODULE",
    "COVERED_WRITERS",
    "SUPPORTED_FERMILINK_VERSION",
    "UNCOVERED_WRITES",
    "Adoption",
    "AdoptionWarning",
    "AtomicPath",
    "CoveredThroughTheModule",
    "CoveredWriter",
    "UncoveredWrite",
    "install",
    "status",
]
