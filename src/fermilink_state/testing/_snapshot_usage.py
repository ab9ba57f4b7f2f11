"""Which golden files a session used, and which of the others it may call unused.

Plain code with no pytest: the plugin fills a :class:`SnapshotUsage` in every
process that runs tests (an xdist worker sends it to the controller) and asks
it for the unused golden files at the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fermilink_state.testing._snapshot import SNAPSHOTS_DIRNAME, module_dirname


@dataclass(slots=True)
class ModuleRecord:
    """A collected test module: its golden folder and the golden folder of each of its tests.

    ``complete`` is whether every test of the module was selected (no ``-k``,
    ``-m``, node id or deselection left one out).
    """

    snapshots: str
    complete: bool
    tests: dict[str, str] = field(default_factory=dict)  # node id -> golden folder

    def to_json(self) -> dict[str, Any]:
        """A form that crosses the xdist channel (plain dicts, lists, strings)."""
        return {"snapshots": self.snapshots, "complete": self.complete, "tests": self.tests}


@dataclass(slots=True)
class SnapshotUsage:
    """What a session needs to tell unused golden files from the ones it did not look at.

    Filled by every process that collects and runs tests (an xdist worker
    sends its record to the controller, which :meth:`merge` s them);
    :meth:`unused` then judges only what was judged safely: golden folders of
    tests that no longer exist in a module that was collected in full, and
    files that a test which ran and passed did not use.
    """

    modules: dict[str, ModuleRecord] = field(default_factory=dict)  # by module path
    used: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    calls_passed: set[str] = field(default_factory=set)  # node ids whose test body passed
    not_passed: set[str] = field(default_factory=set)  # node ids with a phase that did not

    def add_module(self, module_path: Path, *, complete: bool, tests: Mapping[str, str]) -> None:
        """Record a collected module and the golden folder name of each of its tests."""
        module_path = Path(module_path)
        snapshots = module_path.parent / SNAPSHOTS_DIRNAME / module_dirname(module_path)
        self.modules[str(module_path)] = ModuleRecord(str(snapshots), complete, dict(tests))

    def to_json(self) -> dict[str, Any]:
        """The record as plain data (for ``config.workeroutput``)."""
        return {
            "modules": {path: record.to_json() for path, record in self.modules.items()},
            "used": sorted(self.used),
            "written": sorted(self.written),
        }

    def merge(self, data: Mapping[str, Any]) -> None:
        """Add a worker's :meth:`to_json`: used files add up; a module is complete only if
        every worker collected it completely."""
        self.used.update(data.get("used", ()))
        self.written.update(data.get("written", ()))
        for path, raw in data.get("modules", {}).items():
            record = ModuleRecord(str(raw["snapshots"]), bool(raw["complete"]), dict(raw["tests"]))
            known = self.modules.get(path)
            if known is None:
                self.modules[path] = record
            else:
                known.complete = known.complete and record.complete
                known.tests.update(record.tests)

    def record_outcome(self, nodeid: str, phase: str, *, passed: bool) -> None:
        """One phase's outcome (``setup``, ``call``, ``teardown``) of a test."""
        if not passed:
            self.not_passed.add(nodeid)
        elif phase == "call":
            self.calls_passed.add(nodeid)

    @property
    def passed(self) -> set[str]:
        """Node ids of the tests that ran to the end and passed every phase."""
        return self.calls_passed - self.not_passed

    def unused(self) -> list[Path]:
        """Golden files no test used, among those this session can judge; sorted."""
        unused: set[Path] = set()
        used = {Path(path) for path in self.used}
        passed = self.passed
        for module_path, record in self.modules.items():
            snapshots = Path(record.snapshots)
            if not snapshots.is_dir():
                continue
            owners = {folder: nodeid for nodeid, folder in record.tests.items()}
            for folder in snapshots.iterdir():
                nodeid = owners.get(folder.name)
                if nodeid is None:
                    if record.complete and Path(module_path).exists():
                        unused.update(_files_under(folder))
                    continue
                if nodeid in passed:
                    unused.update(path for path in _files_under(folder) if path not in used)
        unused.update(self._orphan_modules())
        return sorted(unused)

    def _orphan_modules(self) -> set[Path]:
        # The golden folder of a module file that no longer exists, beside a
        # module this session collected.
        orphans: set[Path] = set()
        roots = {Path(record.snapshots).parent for record in self.modules.values()}
        for root in roots:
            if not root.is_dir():
                continue
            for folder in root.iterdir():
                stem = folder.name
                if not (root.parent / f"{stem}.py").exists() and not (root.parent / stem).exists():
                    orphans.update(_files_under(folder))
        return orphans


def _files_under(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    return [Path(dirpath, name) for dirpath, _, names in os.walk(folder) for name in names]
