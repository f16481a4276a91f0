"""Everyday operations on DynamoDB Local: ``read_many`` against single reads, and ``update`` under
eight concurrent writers of one stream.

Run from the repository root::

    .venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/python bench/everyday.py

1. 250 small orders; ``read_many`` of 1, 25, 100 and 250 ids, next to 250 ``read_version`` calls:
   requests and read units (strongly consistent, by DynamoDB's rule: ``ceil(size / 4 KB)`` per
   item of a batch read or get, see ``bench/dynamodb_costs.py``).
2. A counter incremented by 8 threads x 50 ``store.update`` calls (each thread its own client):
   the final value (must be 400) and the attempts per update.
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import uuid
from collections.abc import Callable
from datetime import date
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

import eventstore
from eventstore import Resource


class BenchOrder(Resource):
    customer: str
    lines: list[str]


class BenchCounter(Resource):
    n: int = 0


def reads(endpoint: str) -> list[str]:
    table = f"bench-many-{uuid.uuid4().hex[:8]}"
    store = eventstore.open(f"dynamodb://{table}?region={REGION}&endpoint_url={endpoint}")
    store.create_table()
    ids = [f"o{n:03d}" for n in range(250)]
    for rid in ids:
        store.append(BenchOrder(customer=rid, lines=["tea"] * 20), resource_id=rid)
    recorder = Recorder()
    recorder.attach(store.backend.client)  # type: ignore[attr-defined]
    ledger = Ledger(boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint), item_kind)
    ledger.learn_table(table)
    rows = []

    def measure(label: str, action: Callable[[], Any]) -> None:
        recorder.take()
        action()
        costs = Costs(ops=1)
        ledger.settle(recorder.take(), costs)
        rows.append(f"| {label} | {costs.requests} | {sum(costs.rcu):.1f} |")

    for n in (1, 25, 100, 250):
        measure(f"read_many of {n}", lambda n=n: store.read_many(BenchOrder, ids[:n]))
    measure(
        "250 x read_version (latest)",
        lambda: [store.read_version(BenchOrder, rid) for rid in ids],
    )
    store.backend.delete_table()  # type: ignore[attr-defined]
    store.close()
    return rows


def updates(endpoint: str, writers: int, each: int) -> str:
    table = f"bench-update-{uuid.uuid4().hex[:8]}"
    url = f"dynamodb://{table}?region={REGION}&endpoint_url={endpoint}"
    setup = eventstore.open(url)
    setup.create_table()
    setup.append(BenchCounter(), resource_id="c")
    attempts = [0] * writers

    def work(w: int) -> None:
        store = eventstore.open(url)

        def bump(c: BenchCounter) -> BenchCounter:
            attempts[w] += 1
            return BenchCounter(n=c.n + 1)

        for _ in range(each):
            store.update(BenchCounter, "c", bump, max_attempts=1000)
        store.close()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = setup.read_version(BenchCounter, "c").state.n
    setup.backend.delete_table()  # type: ignore[attr-defined]
    setup.close()
    total = writers * each
    return f"| {writers} x {each} | {final} (expected {total}) | {sum(attempts) / total:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", default=os.environ.get(ENDPOINT_VAR))
    args = parser.parse_args()
    args.endpoint_url = require_local_dynamodb(args.endpoint_url)
    print(
        f"everyday operations on DynamoDB Local, {date.today()}, Python {platform.python_version()}\n"
    )
    print("| operation | requests | RCU |")
    print("|---|---:|---:|")
    for row in reads(args.endpoint_url):
        print(row)
    print("\n| update: threads x updates | final counter | attempts per update |")
    print("|---|---|---:|")
    print(updates(args.endpoint_url, 8, 50))


if __name__ == "__main__":
    main()
