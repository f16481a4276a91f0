"""eventsourcing's own recorder benchmarks, for our persistence module next to its SQLite and POPO
recorders, in one run; and what an ``insert_events`` costs on DynamoDB.

Run from the repository root::

    .venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/python bench/eventsourcing_recorders.py

1. ``test_performance`` (100 inserts of one event, one thread) and ``test_concurrent_throughput``
   (10 jobs of 50 events, 4 threads) from ``eventsourcing.tests.persistence``, unmodified, on an
   application recorder of each kind; their printed figures are collected. Ours on memory, a
   SQLite file and DynamoDB Local; eventsourcing 9.5.6's ``SQLiteApplicationRecorder`` (a file)
   and ``POPOApplicationRecorder`` (in memory).
2. On DynamoDB Local, one ``insert_events`` of 1, 10 and 100 events of one new originator
   (state 100 bytes): requests and write units by DynamoDB's rule (``bench/dynamodb_costs.py``).
3. The write ceiling with concurrent writers: 1, 4 and 16 threads inserting one event at a time
   on DynamoDB Local, every insert moving the application's one notification counter (their
   recorder contract returns notification ids from ``insert_events``, so the counter stays).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import boto3
from dynamodb_costs import (
    ENDPOINT_VAR,
    REGION,
    Costs,
    Ledger,
    Recorder,
    item_kind,
    require_local_dynamodb,
)
from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from eventsourcing.tests.persistence import ApplicationRecorderTestCase
from eventsourcing.utils import Environment

from eventstore.integrations.eventsourcing import Factory


def _their_figures(make: Callable[[], ApplicationRecorder]) -> tuple[float, float]:
    """Run eventsourcing's two benchmarks on a recorder; return (us per insert, events/s)."""

    class Case(ApplicationRecorderTestCase[ApplicationRecorder]):
        def create_recorder(self) -> ApplicationRecorder:
            return make()

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        Case("test_performance").test_performance()
        Case("test_concurrent_throughput").test_concurrent_throughput()
    text = out.getvalue()
    per_insert = float(re.findall(r"([\d.]+) μs per insert", text)[-1])
    rate = float(re.findall(r"Rate: (\d+) inserts per second", text)[-1])
    return per_insert, rate


def _ours(url: str) -> Callable[[], ApplicationRecorder]:
    def make() -> ApplicationRecorder:
        name = f"bench{uuid.uuid4().hex[:6]}"
        return Factory(Environment(name, {"EVENTSTORE_URL": url})).application_recorder()

    return make


def _theirs_sqlite(tmp: Path) -> Callable[[], ApplicationRecorder]:
    def make() -> ApplicationRecorder:
        recorder = SQLiteApplicationRecorder(SQLiteDatastore(str(tmp / f"{uuid.uuid4().hex}.db")))
        recorder.create_table()
        return recorder

    return make


def _dynamodb_factory(application: str, table: str, endpoint: str) -> Factory:
    url = f"dynamodb://{table}?region={REGION}&endpoint_url={endpoint}"
    return Factory(Environment(application, {"EVENTSTORE_URL": url}))


def insert_costs(endpoint: str) -> list[str]:
    table = f"bench-es-{uuid.uuid4().hex[:8]}"
    factory = _dynamodb_factory("costs", table, endpoint)
    recorder = factory.application_recorder()
    recorder.max_notification_id()
    calls = Recorder()
    calls.attach(factory.backend.client)  # type: ignore[attr-defined]
    ledger = Ledger(boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint), item_kind)
    ledger.learn_table(table)
    rows = []
    for count in (1, 10, 100):
        originator = uuid.uuid4()
        events = [StoredEvent(originator, v, "topic", b"x" * 100) for v in range(1, count + 1)]
        calls.take()
        recorder.insert_events(events)
        costs = Costs(ops=1)
        ledger.settle(calls.take(), costs)
        rows.append(f"| {count} | {costs.requests} | {sum(costs.wcu)} |")
    factory.backend.delete_table()  # type: ignore[attr-defined]
    factory.close()
    return rows


def write_ceiling(endpoint: str, writers: int, inserts: int) -> str:
    """W threads, each inserting one event at a time for originators of its own, on one
    application recorder's notification counter: inserts/s, requests per insert, failures."""
    table = f"bench-es-{uuid.uuid4().hex[:8]}"
    factory = _dynamodb_factory("ceiling", table, endpoint)
    recorder = factory.application_recorder()
    recorder.max_notification_id()
    lock = threading.Lock()
    failed = [0]
    barrier = threading.Barrier(writers + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(inserts):
            event = StoredEvent(uuid.uuid4(), 1, "topic", b"x" * 100)
            try:
                recorder.insert_events([event])
            except Exception:  # counted: every failure shows in the table
                with lock:
                    failed[0] += 1

    threads = [threading.Thread(target=work) for _ in range(writers)]
    for t in threads:
        t.start()
    before = factory.backend.requests()
    barrier.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    total = writers * inserts
    requests = factory.backend.requests() - before
    last = recorder.max_notification_id() or 0
    factory.backend.delete_table()  # type: ignore[attr-defined]
    factory.close()
    return (
        f"| {writers} | {total} | {(total - failed[0]) / elapsed:.0f} | "
        f"{requests / total:.2f} | {failed[0]} | {last} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", default=os.environ.get(ENDPOINT_VAR))
    args = parser.parse_args()
    args.endpoint_url = require_local_dynamodb(args.endpoint_url)
    print(
        f"eventsourcing's recorder benchmarks, {date.today()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs\n"
    )
    print("| recorder | us per insert (1 event) | events/s, 4 threads x 50-event inserts |")
    print("|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        contenders: list[tuple[str, Callable[[], Any]]] = [
            ("eventsourcing POPO (in memory)", POPOApplicationRecorder),
            ("eventsourcing SQLite (file)", _theirs_sqlite(Path(tmp))),
            ("eventstore, memory://", _ours("memory://")),
            ("eventstore, SQLite (file)", _ours(f"sqlite:///{tmp}/ours.db")),
            (
                "eventstore, DynamoDB Local",
                _ours(
                    f"dynamodb://bench-es-{uuid.uuid4().hex[:6]}?region={REGION}&endpoint_url={args.endpoint_url}"
                ),
            ),
        ]
        for label, make in contenders:
            per_insert, rate = _their_figures(make)
            print(f"| {label} | {per_insert:.1f} | {rate:,.0f} |", flush=True)
    print("\nOne insert_events of N events of one new originator, on DynamoDB Local:\n")
    print("| events | requests | WCU |")
    print("|---:|---:|---:|")
    for row in insert_costs(args.endpoint_url):
        print(row)
    print(
        "\nWrite ceiling on DynamoDB Local: W threads inserting one event at a time, every "
        "insert moving the application's one notification counter:\n"
    )
    print("| writers | inserts | inserts/s | requests per insert | failed | last notification id |")
    print("|---:|---:|---:|---:|---:|---:|")
    for writers in (1, 4, 16):
        print(write_ceiling(args.endpoint_url, writers, max(10, 160 // writers)), flush=True)


if __name__ == "__main__":
    main()
