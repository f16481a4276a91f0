"""DynamoDB: what an atomic multi-stream commit costs, in requests and write units.

Run from the repository root, against Amazon's DynamoDB Local started for the run::

    .venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/python bench/commits.py

Workload: small account documents (``{"balance": n}``) with ``max_versions = 10``; transfers that
debit one account and credit another in one ``append_many`` (the worked example of
docs/commits.md), next to the same two appends made one by one, and commits of 10 and 20 streams.
Requests are counted with a botocore hook, write units by DynamoDB's rule on the captured
requests (``bench/dynamodb_costs.py`` explains it: ``ceil(size / 1 KB)`` per item, doubled inside
``TransactWriteItems``).
"""

from __future__ import annotations

import argparse
import os
import platform
import uuid
from collections.abc import Callable
from datetime import date
from importlib.metadata import version as dist_version
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
from eventstore import Append, Resource


class BenchAccount(Resource):
    max_versions = 10
    balance: int
    owner: str


def run(endpoint: str, rounds: int) -> dict[str, Costs]:
    table = f"bench-commits-{uuid.uuid4().hex[:8]}"
    store = eventstore.open(f"dynamodb://{table}?region={REGION}&endpoint_url={endpoint}")
    store.create_table()
    clean = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    recorder = Recorder()
    recorder.attach(store.backend.client)  # type: ignore[attr-defined]
    ledger = Ledger(clean, item_kind)
    ledger.learn_table(table)
    results: dict[str, Costs] = {}

    def measure(label: str, action: Callable[[], Any]) -> None:
        recorder.take()
        action()
        costs = Costs(ops=1)
        ledger.settle(recorder.take(), costs)
        results.setdefault(label, Costs()).add(costs)

    accounts = [f"a{n}" for n in range(20)]
    versions = dict.fromkeys(accounts, 0)

    def commit(ids: list[str]) -> None:
        made = store.append_many(
            [
                Append(
                    BenchAccount(balance=versions[a] + 1, owner=a),
                    resource_id=a,
                    expected_version=versions[a] or eventstore.NO_STREAM,
                )
                for a in ids
            ]
        )
        for v in made:
            versions[v.resource_id] = v.version

    def one_by_one(ids: list[str]) -> None:
        for a in ids:
            commit([a])

    measure("open 20 accounts (one commit)", lambda: commit(accounts))
    for r in range(rounds):
        pair = [accounts[r % 20], accounts[(r + 7) % 20]]
        measure("transfer: 2 streams, one commit", lambda p=pair: commit(p))
        measure("the same 2 appends, one by one", lambda p=pair: one_by_one(p))
        measure("10 streams, one commit", lambda r=r: commit(accounts[r % 2 :: 2][:10]))
        measure("20 streams, one commit", lambda: commit(accounts))
    clean.delete_table(TableName=table)
    store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", default=os.environ.get(ENDPOINT_VAR))
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    args.endpoint_url = require_local_dynamodb(args.endpoint_url)
    results = run(args.endpoint_url, args.rounds)
    print(
        f"atomic commits on DynamoDB Local, {date.today()}, {args.rounds} rounds; "
        f"Python {platform.python_version()}, boto3 {dist_version('boto3')}\n"
    )
    print("| operation | requests | WCU (mean) | WCU (max) | write units by item (mean) |")
    print("|---|---:|---:|---:|---|")
    for label, c in results.items():
        parts = ", ".join(
            f"{k} {v / c.ops:.1f}" for k, v in sorted(c.wcu_by_kind.items(), key=lambda kv: -kv[1])
        )
        print(
            f"| {label} | {c.requests / c.ops:.0f} | {sum(c.wcu) / c.ops:.1f} | {max(c.wcu)} "
            f"| {parts} |"
        )


if __name__ == "__main__":
    main()
