"""Many writers on the same streams: 8 processes on one SQLite file, 8 threads on DynamoDB Local.

Every writer makes a fixed number of increments, each a read-modify-append with the version it
read as ``expected_version`` and a retry on :class:`ConcurrencyError`; 70% go to a few shared
streams, the rest to the writer's own stream. Afterwards the totals add up exactly: each stream's
newest count equals its version number and the sum of the increments its writers acknowledged,
the per-writer tallies inside the state match what each writer acknowledged, every acknowledged
version id is stored, and every version ``n`` holds count ``n`` (no update was lost or doubled).

Run: ``.venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/pytest
tests/test_reliability_writers.py -q -s`` (``EVENTSTORE_LONG=1`` for 10x the increments).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter as Tally
from pathlib import Path
from typing import Any

import pytest

import eventstore
from eventstore import NO_STREAM, ConcurrencyError, EventStore, StreamNotFound
from tests.conftest import DYNAMODB_ENDPOINT, drop, dynamodb_url, new_table_name
from tests.crash_writer import Counter
from tests.faults import report, scaled

WRITER = Path(__file__).with_name("crash_writer.py")
WRITERS = 8
SHARED = 3
PROCESS_INCREMENTS = scaled(150, 1500)
THREAD_INCREMENTS = scaled(60, 600)


def check_totals(
    store: EventStore, acked: list[dict[str, Any]], done: dict[str, dict[str, int]]
) -> tuple[list[str], int]:
    """Audit the streams against what the writers acknowledged; returns (problems, versions)."""
    problems: list[str] = []
    per_stream: dict[str, dict[int, tuple[str, str]]] = {}
    for r in acked:
        stream = per_stream.setdefault(r["id"], {})
        if r["v"] in stream:
            problems.append(
                f"{r['id']} v{r['v']} acknowledged to {stream[r['v']][1]} and {r['op']}"
            )
        stream[r["v"]] = (r["vid"], r["op"])
    versions = 0
    for rid, mine in sorted(per_stream.items()):
        stored = list(store.read_stream(Counter, rid))
        versions += len(stored)
        numbers = [v.version for v in stored]
        if numbers != list(range(1, len(stored) + 1)):
            problems.append(f"{rid}: versions {numbers[:10]}... not 1..n")
        if sorted(mine) != numbers:
            problems.append(f"{rid}: acknowledged {len(mine)} versions, stored {len(numbers)}")
        for v in stored:
            if v.state.count != v.version:
                problems.append(f"{rid} v{v.version}: count {v.state.count}")
            if mine.get(v.version, ("", ""))[0] != v.version_id:
                problems.append(f"{rid} v{v.version}: id {v.version_id} not the acknowledged one")
        final = stored[-1].state
        from_writers = {w: d[rid] for w, d in done.items() if rid in d}
        if final.by != from_writers:
            problems.append(f"{rid}: tallies {final.by} != acknowledged {from_writers}")
        if final.count != sum(from_writers.values()):
            problems.append(f"{rid}: count {final.count} != {sum(from_writers.values())}")
    return problems, versions


def test_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "writers.db"
    eventstore.open(f"sqlite:///{db}").close()  # create the file before the race
    began = time.monotonic()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WRITER),
                "writers",
                str(db),
                f"w{i}",
                str(PROCESS_INCREMENTS),
                str(SHARED),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(WRITERS)
    ]
    acked: list[dict[str, Any]] = []
    done: dict[str, dict[str, int]] = {}
    conflicts = 0
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-3000:]
        for line in out.splitlines():
            record = json.loads(line)
            if "done" in record:
                done[record["writer"]] = record["done"]
                conflicts += record["conflicts"]
            else:
                acked.append(record)
    seconds = time.monotonic() - began
    store = eventstore.open(f"sqlite:///{db}")
    problems, versions = check_totals(store, acked, done)
    store.close()
    report(
        "sqlite_8_processes",
        {
            "writers": WRITERS,
            "increments": WRITERS * PROCESS_INCREMENTS,
            "acknowledged": len(acked),
            "versions_stored": versions,
            "conflicts_retried": conflicts,
            "seconds": round(seconds, 1),
            "problems": len(problems),
        },
    )
    assert problems == []
    assert len(acked) == versions == WRITERS * PROCESS_INCREMENTS
    assert sum(sum(d.values()) for d in done.values()) == WRITERS * PROCESS_INCREMENTS


@pytest.mark.dynamodb
@pytest.mark.skipif(not DYNAMODB_ENDPOINT, reason="DynamoDB Local is not running")
def test_threads_on_dynamodb_local() -> None:
    store = eventstore.open(dynamodb_url(new_table_name()))
    store.create_table(feed="inline")
    acked: list[dict[str, Any]] = []
    done: dict[str, dict[str, int]] = {}
    conflicts = Tally[str]()
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(WRITERS)

    def writer(name: str) -> None:
        rng = random.Random(name)
        mine: dict[str, int] = {}
        try:
            start.wait()
            for _ in range(THREAD_INCREMENTS):
                rid = f"shared-{rng.randrange(SHARED)}" if rng.random() < 0.7 else f"own-{name}"
                while True:
                    try:
                        current = store.read_version(Counter, rid)
                        state, expected = current.state, current.version
                    except StreamNotFound:
                        state, expected = Counter(), NO_STREAM  # type: ignore[assignment]
                    by = dict(state.by)
                    by[name] = by.get(name, 0) + 1
                    try:
                        version = store.append(
                            Counter(count=state.count + 1, by=by),
                            resource_id=rid,
                            expected_version=expected,
                        )
                    except ConcurrencyError:
                        with lock:
                            conflicts[name] += 1
                        continue
                    break
                mine[rid] = mine.get(rid, 0) + 1
                with lock:
                    acked.append(
                        {"id": rid, "v": version.version, "vid": version.version_id, "op": name}
                    )
            with lock:
                done[name] = mine
        except BaseException as e:  # reported below: a thread must not die silently
            with lock:
                errors.append(e)

    began = time.monotonic()
    threads = [threading.Thread(target=writer, args=(f"t{i}",)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - began
    try:
        assert errors == []
        problems, versions = check_totals(store, acked, done)
        report(
            "dynamodb_8_threads",
            {
                "writers": WRITERS,
                "increments": WRITERS * THREAD_INCREMENTS,
                "acknowledged": len(acked),
                "versions_stored": versions,
                "conflicts_retried": sum(conflicts.values()),
                "seconds": round(seconds, 1),
                "problems": len(problems),
            },
        )
        assert problems == []
        assert len(acked) == versions == WRITERS * THREAD_INCREMENTS
        assert sum(conflicts.values()) > 0  # the writers did collide
    finally:
        drop(store)
