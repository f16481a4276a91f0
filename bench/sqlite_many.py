"""Embedded SQLite on an application's workload: many streams, random order, eventstore beside
``eventsourcing`` and plain ``sqlite3``, median of several rounds.

Run from the repository root (needs the ``bench`` extra, as ``bench/sqlite_appends.py``)::

    .venv/bin/python bench/sqlite_many.py                        # every case, about 10 min
    .venv/bin/python bench/sqlite_many.py --doc 2k --synchronous normal --rounds 3
    .venv/bin/python bench/sqlite_many.py --json

Each round starts from empty files (one per side, WAL mode, the same ``PRAGMA synchronous``):
``--streams`` orders are created, then updated with small edits, each update going to a stream
drawn at random, until ``--n`` versions exist; then ``--reads`` reads of a random version of a
random stream, and as many of a random stream's latest version. Documents are the orders of
``bench/sqlite_appends.py``: about 2.2 KB of JSON (``2k``), or the same order with 243 to 263
lines, about 32 KB (``32k``). The sides run the same blocks of 100 operations in turn, rotating
who goes first; each figure is the median of the rounds, and each ratio the median of the
rounds' ratios (both sides measured in the same round).

Sides: eventstore as a user opens it (zstd, keyframe deltas, the change feed on), eventsourcing
9.5.6's ``Application`` as its docs show (uncompressed, the whole order in each event; reads
through its recorder and mapper, see ``bench/sqlite_appends.py``), and plain ``sqlite3``, one JSON
row per version in its own transaction (the floor).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlite_appends import (
    BenchOrder,
    LibSide,
    OurSide,
    PlainSide,
    Side,
    edit,
    interleaved,
    machine,
    make_order,
)

DOCS = {"2k": (10, 15), "32k": (243, 263)}
SIDES = ("eventstore", "eventsourcing", "plain_sqlite3")
#: The targets of issue 26, against eventsourcing; and against the plain sqlite3 floor.
TARGETS = {"appends_per_s": 1.0, "read_version_per_s": 1.0, "read_latest_per_s": 1.0}
FLOOR = 1 / 2.5


@dataclass
class Round:
    initial: list[BenchOrder]
    updates: list[tuple[int, BenchOrder]]
    by_number: list[tuple[int, int]]
    latest: list[int]


def make_round(n: int, streams: int, reads: int, lines: tuple[int, int], seed: int) -> Round:
    rng = random.Random(seed)
    initial = [make_order(rng, i, lines) for i in range(streams)]
    current = list(initial)
    count = [1] * streams
    updates: list[tuple[int, BenchOrder]] = []
    for step in range(n - streams):
        s = rng.randrange(streams)
        current[s] = edit(current[s], rng, step)
        count[s] += 1
        updates.append((s, current[s]))
    by_number = []
    for _ in range(reads):
        s = rng.randrange(streams)
        by_number.append((s, rng.randint(1, count[s])))
    latest = [rng.randrange(streams) for _ in range(reads)]
    return Round(initial, updates, by_number, latest)


def blocks(ops: list[Any], size: int = 100) -> list[Any]:
    def block(chunk: list[Any]) -> Any:
        def run(side: Side) -> list[Any]:
            return [partial(getattr(side, name), *args) for name, *args in chunk]

        return run

    return [block(ops[i : i + size]) for i in range(0, len(ops), size)]


def run_round(work: Round, synchronous: str, folder: str) -> dict[str, dict[str, float]]:
    sides: dict[str, Side] = {
        "eventstore": OurSide(
            os.path.join(folder, "es.db"), synchronous=synchronous, compress=True, deltas=True
        ),
        "eventsourcing": LibSide(
            os.path.join(folder, "lib.db"), synchronous=synchronous, compress=False
        ),
        "plain_sqlite3": PlainSide(os.path.join(folder, "plain.db"), synchronous=synchronous),
    }
    appends: list[Any] = [("create", order) for order in work.initial]
    appends += [("update", s, order) for s, order in work.updates]
    written = interleaved(sides, blocks(appends))
    for side in sides.values():  # what comes back is what was written
        s, order = work.updates[-1]
        assert side.read_latest(s) == order
    read_n = interleaved(sides, blocks([("read_number", s, n) for s, n in work.by_number]))
    read_l = interleaved(sides, blocks([("read_latest", s) for s in work.latest]))
    out: dict[str, dict[str, float]] = {}
    for name, side in sides.items():
        out[name] = {
            "appends_per_s": written[name].per_s,
            "append_cpu_us": written[name].cpu_us,
            "read_version_per_s": read_n[name].per_s,
            "read_latest_per_s": read_l[name].per_s,
            "synchronous": side.synchronous(),
        }
        side.close()
    return out


def run_case(
    doc: str, synchronous: str, n: int, streams: int, reads: int, rounds: int, seed: int
) -> dict[str, Any]:
    results: list[dict[str, dict[str, float]]] = []
    for r in range(rounds):
        work = make_round(n, streams, reads, DOCS[doc], seed + r)
        with tempfile.TemporaryDirectory(prefix="es-many-") as folder:
            results.append(run_round(work, synchronous, folder))
        print(f"  {doc} {synchronous}: round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    doc_bytes = len(
        make_round(streams + 1, streams, 1, DOCS[doc], seed).initial[0].model_dump_json()
    )
    medians = {
        side: {key: statistics.median(r[side][key] for r in results) for key in results[0][side]}
        for side in SIDES
    }

    def ratio(key: str, other: str) -> float:
        return statistics.median(r["eventstore"][key] / r[other][key] for r in results)

    ratios = {
        key: {
            "eventsourcing": ratio(key, "eventsourcing"),
            "plain_sqlite3": ratio(key, "plain_sqlite3"),
        }
        for key in TARGETS
    }
    return {
        "doc": doc,
        "document_json_bytes": doc_bytes,
        "synchronous": synchronous.upper(),
        "medians": medians,
        "ratios": ratios,
    }


LABELS = {
    "appends_per_s": "appends/s",
    "read_version_per_s": "read a random version/s",
    "read_latest_per_s": "read a random stream's latest/s",
}


def markdown(report: dict[str, Any]) -> str:
    w, m = report["workload"], report["machine"]
    lines = [
        f"{w['streams']} streams, {w['versions']:,} versions per round with synchronous=NORMAL "
        f"and {w['versions_full']:,} with FULL (updates to random streams), {w['reads']:,} "
        f"random reads of each kind; median of {w['rounds']} rounds; "
        "SQLite files in WAL mode.",
        "",
        "| document, synchronous | measure | eventstore | eventsourcing | plain sqlite3 "
        "| eventstore / eventsourcing (target) | eventstore / plain (>= 0.40) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for case in report["cases"]:
        med, rat = case["medians"], case["ratios"]
        where = f"{case['document_json_bytes'] / 1024:.1f} KB, {case['synchronous']}"
        for key, target in TARGETS.items():
            against, floor = rat[key]["eventsourcing"], rat[key]["plain_sqlite3"]
            lines.append(
                f"| {where} | {LABELS[key]} | {med['eventstore'][key]:,.0f} "
                f"| {med['eventsourcing'][key]:,.0f} | {med['plain_sqlite3'][key]:,.0f} "
                f"| {against:.2f} (>= {target:.1f}: {'met' if against >= target else '**MISSED**'}) "
                f"| {floor:.2f} ({'met' if floor >= FLOOR else '**MISSED**'}) |"
            )
        lines.append(
            f"| {where} | CPU µs per append | {med['eventstore']['append_cpu_us']:,.0f} "
            f"| {med['eventsourcing']['append_cpu_us']:,.0f} "
            f"| {med['plain_sqlite3']['append_cpu_us']:,.0f} | | |"
        )
    lines += [
        "",
        f"Machine: {m['cpus']} CPUs ({m['processor']}), {m['platform']}, Python {m['python']}, "
        f"SQLite {m['sqlite']}, eventsourcing {m['eventsourcing']}, pydantic {m['pydantic']}, "
        f"zstandard {m['zstandard']}; load average at start {m['load_average_at_start']}; "
        f"run took {w['seconds']} s.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="versions per round (10000)")
    parser.add_argument("--streams", type=int, default=100, help="streams (default 100)")
    parser.add_argument("--reads", type=int, default=2000, help="reads of each kind per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--doc", choices=[*DOCS, "all"], default="all")
    parser.add_argument("--synchronous", choices=["normal", "full", "all"], default="all")
    parser.add_argument(
        "--full-n",
        type=int,
        default=2000,
        help="versions per round with synchronous=FULL, where every commit waits for the disk "
        "(default 2000)",
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if min(args.n, args.full_n) <= args.streams:
        parser.error("--n and --full-n must be larger than --streams")
    started = time.perf_counter()
    info = machine()
    # Warm up every code path (imports, pydantic schemas, statement caches) on a small round.
    with tempfile.TemporaryDirectory(prefix="es-many-warm-") as folder:
        run_round(make_round(300, 20, 100, DOCS["2k"], args.seed - 1), "normal", folder)
    cases = []
    for doc in DOCS if args.doc == "all" else [args.doc]:
        for sync in ("normal", "full") if args.synchronous == "all" else [args.synchronous]:
            n = args.n if sync == "normal" else args.full_n
            cases.append(run_case(doc, sync, n, args.streams, args.reads, args.rounds, args.seed))
    report = {
        "command": "python bench/sqlite_many.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": info,
        "workload": {
            "streams": args.streams,
            "versions": args.n,
            "versions_full": args.full_n,
            "reads": args.reads,
            "rounds": args.rounds,
            "seconds": round(time.perf_counter() - started, 1),
        },
        "cases": cases,
    }
    print(json.dumps(report, indent=2) if args.json else markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
