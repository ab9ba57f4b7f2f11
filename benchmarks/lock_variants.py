"""How much of an append's lock round trip is filelock's, and what a lighter use saves.

Issue 13 item 7: filelock 4.x's acquire/release costs ~25x open + flock +
close. This measures, interleaved in one run (ratios, not absolute times,
mean something on a loaded machine), the ways this package could hold a
file's lock on a local filesystem:

- ``open+flock+close``: the floor (no reentrancy, fork or identity checks);
- ``locked()``: what fermilink_state does (one cached ``FileLock`` per file);
- ``FileLock`` variants: acquire with ``timeout=0`` / ``blocking=False``, a
  singleton, ``thread_local=False`` (which stops excluding this process's
  other threads, so it does not keep filelock's guarantees);
- ``lock_descriptor``: filelock's lowest public call, flock on a kept fd,
  without the lock object's fork tracking and lock-file identity checks;
- ``strict``: ``StrictSoftFileLock``, the backend for shared filesystems.

Run: ``python benchmarks/lock_variants.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import filelock

from fermilink_state import locked


def _variants(folder: Path) -> dict[str, Callable[[], object]]:
    raw = str(folder / "raw.lock")

    def open_flock_close() -> None:
        fd = os.open(raw, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    target = folder / "results.tsv"

    def ours() -> None:
        with locked(target):
            pass

    default = filelock.FileLock(str(folder / "default.lock"))
    singleton = filelock.FileLock(str(folder / "singleton.lock"), is_singleton=True)
    shared = filelock.FileLock(str(folder / "shared.lock"), thread_local=False)
    strict = filelock.StrictSoftFileLock(str(folder / "strict.lock"))
    kept_fd = os.open(str(folder / "descriptor.lock"), os.O_RDWR | os.O_CREAT, 0o644)

    def descriptor() -> None:
        filelock.lock_descriptor(kept_fd)
        filelock.unlock_descriptor(kept_fd)

    def round_trip(lock: filelock.BaseFileLock, **options: object) -> Callable[[], None]:
        def run() -> None:
            lock.acquire(**options)  # type: ignore[arg-type]
            lock.release()

        return run

    return {
        "open+flock+close": open_flock_close,
        "fermilink_state locked()": ours,
        "FileLock acquire(timeout=60, poll=0.01)": round_trip(
            default, timeout=60, poll_interval=0.01
        ),
        "FileLock acquire(timeout=0)": round_trip(default, timeout=0),
        "FileLock acquire(blocking=False)": round_trip(default, blocking=False),
        "FileLock is_singleton=True": round_trip(singleton, timeout=60, poll_interval=0.01),
        "FileLock thread_local=False (unsafe)": round_trip(shared, timeout=60),
        "lock_descriptor on a kept fd": descriptor,
        "StrictSoftFileLock": round_trip(strict, timeout=60),
    }


def measure(rounds: int, calls: int) -> dict[str, float]:
    """The best of ``rounds`` interleaved runs of ``calls`` round trips each, in us."""
    with tempfile.TemporaryDirectory() as folder:
        variants = _variants(Path(folder))
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(rounds):
            for name, call in variants.items():
                count = max(1, calls // 20) if name == "StrictSoftFileLock" else calls
                start = time.perf_counter()
                for _ in range(count):
                    call()
                best[name] = min(best[name], (time.perf_counter() - start) / count * 1e6)
    return best


def main() -> None:
    """Print each variant's round trip and its ratio to open + flock + close."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    arguments = parser.parse_args()
    best = measure(arguments.rounds, arguments.calls)
    floor = best["open+flock+close"]
    print(f"filelock {filelock.__version__}")
    print(f"{'variant':42} {'us':>8} {'x floor':>8}")
    for name, value in best.items():
        print(f"{name:42} {value:8.1f} {value / floor:8.1f}")


if __name__ == "__main__":
    main()
