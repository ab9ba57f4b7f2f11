"""Every writer follows the POSIX persistence rules, seen in its system calls (strace).

The crash explorer proves the same on recorded operations; this test looks at
what really reaches the kernel, so a write that bypasses the recording seam
cannot hide. Skips only where strace is missing (CI installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support_strace import REFERENCE_MODULE, TRACED, parse_trace, rule_breaks, segments

STRACE = shutil.which("strace")
pytestmark = pytest.mark.skipif(
    STRACE is None, reason="strace is not installed (CI installs it: apt-get install strace)"
)
HERE = Path(__file__).parent


def _trace(tmp_path: Path, library: str, fsync: str) -> str:
    assert STRACE is not None
    project = tmp_path / "project"
    log = tmp_path / "trace.log"
    env = {**os.environ, "FERMILINK_STATE_FSYNC": fsync, "PYTHONPATH": str(HERE)}
    command = [STRACE, "-f", "-qq", "-y", "-s", "256", "-e", f"trace={TRACED}", "-o", str(log)]
    command += [sys.executable, str(HERE / "support_strace.py"), str(project), library]
    completed = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=120
    )
    if completed.returncode != 0 and "PTRACE" in completed.stderr.upper():
        pytest.skip(f"strace cannot trace here: {completed.stderr.strip()}")
    assert completed.returncode == 0, completed.stderr
    return log.read_text()


@pytest.mark.timeout(180)
def test_every_writer_syncs_what_it_writes(tmp_path: Path) -> None:
    calls = parse_trace(_trace(tmp_path, "fermilink_state", "1"))
    project = str(tmp_path / "project")
    found = list(segments(calls))
    names = [name for name, _ in found]
    assert len(names) >= 20, names
    breaks = [line for name, segment in found for line in rule_breaks(name, segment, project)]
    assert breaks == []


@pytest.mark.timeout(180)
def test_with_fsync_off_no_sync_call_reaches_the_kernel(tmp_path: Path) -> None:
    calls = parse_trace(_trace(tmp_path, "fermilink_state", "0"))
    assert len(list(segments(calls))) >= 20
    assert [call.raw for call in calls if call.name in ("fsync", "fdatasync")] == []


@pytest.mark.timeout(180)
def test_the_rules_catch_the_references_writers(tmp_path: Path) -> None:
    pytest.importorskip(
        REFERENCE_MODULE, reason="the reference (fermilink==0.3.10) is not installed"
    )
    calls = parse_trace(_trace(tmp_path, REFERENCE_MODULE, "1"))
    project = str(tmp_path / "project")
    found = list(segments(calls))
    breaks = [line for name, segment in found for line in rule_breaks(name, segment, project)]
    broken_calls = {line.split(":")[0] for line in breaks}
    print(f"reference: {len(breaks)} broken rules in {len(broken_calls)} of {len(found)} calls")
    assert len(broken_calls) >= 10, breaks
