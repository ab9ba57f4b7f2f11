"""Single writers: appends to the ledger and state.json rewrites."""

from __future__ import annotations

import functools
from collections.abc import Callable

import _workloads as work
from _common import (
    DURABLE_VS_UNSYNCED,
    SAME_WORK,
    Bench,
    Counted,
    Row,
    Target,
    X,
    durable_replace,
    fmt_ratio,
    fmt_time,
    fsync_setting,
    interleaved,
)


def appends(bench: Bench) -> None:
    """One row next to a filelock round trip; a batch of 100 rows."""
    from filelock import FileLock, SoftFileLock

    bench.progress("append_result, append_results")
    folder = bench.subfolder("append")
    path = folder / "results.tsv"
    path.write_text(bench.reference.RESULTS_HEADER, encoding="utf-8")
    lock_class = SoftFileLock if bench.ours.lock_backend() == "soft" else FileLock
    lock = lock_class(str(folder / "round-trip.lock"))

    def round_trip() -> None:
        lock.acquire()
        lock.release()

    # Like for like: ours with fsync off does the reference's work plus the
    # lock. What the sync adds is judged apart (durable_append, below).
    with fsync_setting("0"):
        costs = interleaved(
            {
                "reference": Counted(bench.reference.append_result, path, work.row_fields),
                "ours": Counted(bench.ours.append_result, path, work.row_fields),
                "lock": round_trip,
            },
            rounds=bench.plan.rounds,
            repeat=dict.fromkeys(("reference", "ours", "lock"), 300),
        )
    budget = costs["lock"] + 1.5 * costs["reference"]
    bench.report.rows.append(
        Row(
            "`append_result`, one row, fsync off",
            costs["reference"],
            costs["ours"],
            f"one filelock round trip alone: {fmt_time(costs['lock'])}",
            compares=SAME_WORK,
        )
    )
    bench.report.targets.append(
        Target(
            "single append",
            f"≤ one filelock round trip + 1.5{X} the reference's append",
            costs["ours"] / budget,
            1.0,
            at_least=False,
            shown=f"{fmt_time(costs['ours'])} vs {fmt_time(budget)}",
        )
    )
    batch = [work.row_fields(number) for number in range(100)]

    def reference_batch() -> None:
        for fields in batch:
            bench.reference.append_result(path, **fields)

    with fsync_setting("0"):
        costs = interleaved(
            {"reference": reference_batch, "ours": lambda: bench.ours.append_results(path, batch)},
            rounds=bench.plan.rounds,
            repeat={"reference": 10, "ours": 10},
        )
    speedup = costs["reference"] / costs["ours"]
    bench.report.rows.append(
        Row(
            "100 rows: one `append_results` vs 100 `append_result`, fsync off",
            costs["reference"],
            costs["ours"],
            f"{fmt_time(costs['ours'] / 100)} per row",
            compares=SAME_WORK,
        )
    )
    bench.report.targets.append(
        Target(
            "batch of 100 appends",
            f"≥ 5{X} faster per row than 100 single reference appends",
            speedup,
            5.0,
            at_least=True,
            shown=fmt_ratio(speedup),
            not_gated="5.28x in 0.1.0, 4.5-5.0x here now: filelock 4.3's lock round trip "
            "(about 95 us) is over a third of a batch",
        )
    )
    theirs, mine = folder / "reference-rows.tsv", folder / "ours-rows.tsv"
    theirs.write_text(bench.reference.RESULTS_HEADER, encoding="utf-8")  # ours writes it
    for fields in batch[:6]:
        bench.reference.append_result(theirs, **fields)
    for fields in batch[:3]:
        bench.ours.append_result(mine, **fields)
    bench.ours.append_results(mine, batch[3:6])
    bench.check_same("appended rows", theirs.read_bytes(), mine.read_bytes())


def state(bench: Bench) -> None:
    """``write_state`` with fsync on (as shipped) and off (the reference's work)."""
    bench.progress("write_state")
    path = bench.subfolder("state") / "state.json"
    payload = work.state_payload(7)
    bench.reference.write_state(path, payload)
    theirs = path.read_bytes()
    bench.ours.write_state(path, payload)
    bench.check_same("state.json bytes", theirs, path.read_bytes())
    calls: dict[str, Callable[[], object]] = {
        "reference": functools.partial(bench.reference.write_state, path, payload),
        "ours": functools.partial(bench.ours.write_state, path, payload),
        "floor": functools.partial(durable_replace, path, theirs),
    }
    with fsync_setting("1"):
        on = interleaved(calls, rounds=bench.plan.rounds, repeat=dict.fromkeys(calls, 40))
    del calls["floor"]
    with fsync_setting("0"):
        off = interleaved(calls, rounds=bench.plan.rounds, repeat=dict.fromkeys(calls, 40))
    bench.report.rows.append(
        Row(
            "`write_state` (state.json), fsync on",
            on["reference"],
            on["ours"],
            f"{fmt_ratio(on['ours'] / on['floor'])} the durable-write floor "
            f"({fmt_time(on['floor'])}); the reference never fsyncs",
            compares=DURABLE_VS_UNSYNCED,
        )
    )
    bench.report.rows.append(
        Row(
            "`write_state` (state.json), fsync off",
            off["reference"],
            off["ours"],
            "both: a temp file and a rename",
            compares=SAME_WORK,
        )
    )
    ratio = off["ours"] / off["reference"]
    bench.report.targets.append(
        Target(
            "state.json rewrite",
            f"≤ 2{X} the reference's time",
            ratio,
            2.0,
            at_least=False,
            shown=fmt_ratio(ratio),
            basis=(
                "judged with fsync off: the same work as the reference's (temp file + "
                f"rename). With fsync on, ours costs {fmt_ratio(on['ours'] / on['reference'])} "
                "the reference: that is the price of surviving a power cut, which the "
                "reference does not pay, and it is set by the disk, not by our code "
                f"({fmt_ratio(on['ours'] / on['floor'])} the bare durable write)"
            ),
        )
    )


def durable_append(bench: Bench) -> None:
    """A durable append against an fdatasync round trip (``benchmarks/durability.py``)."""
    import durability

    bench.progress("durable append")
    costs = durability.measure(
        bench.subfolder("durable"), rounds=max(3, bench.plan.rounds), calls=20
    )
    floor, durable = costs["fdatasync round trip"], costs["append, durable"]
    reference = costs["reference append"]
    budget = durability.durable_budget(costs)
    judged = durability.durable_cost(costs)
    bench.report.rows.append(
        Row(
            "`append_result`, one row, durable (fdatasync before it returns)",
            reference,
            durable,
            f"one write + fdatasync round trip alone: {fmt_time(floor)}",
            compares=DURABLE_VS_UNSYNCED,
        )
    )
    bench.report.targets.append(
        Target(
            "durable append",
            f"≤ one filelock round trip + one fdatasync + 1.5{X} the reference's append",
            judged / budget,
            1.0,
            at_least=False,
            shown=f"{fmt_time(judged)} vs {fmt_time(budget)}",
            basis=(
                "each part timed where a durable append runs, right after a sync "
                "(benchmarks/durability.py says why); with the lock and the reference's "
                f"append timed in tight loops instead the budget is "
                f"{fmt_time(durability.loop_budget(costs))}"
            ),
            not_gated="a shared disk's sync latency swings more than any CPU noise measure",
        )
    )
