"""DynamoDB: client CPU per request, and what botocore's parameter validation costs of it.

Run from the repository root, against Amazon's DynamoDB Local started for the run::

    .venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/python bench/client_cpu.py

Workload: a 2 KB document updated ``--n`` times (one ``TransactWriteItems`` each), then read by
number ``--n`` times (one ``BatchGetItem`` each), through ``eventstore`` with its own client
(parameter validation off, the default since issue 14) and with a client that validates
parameters (botocore's default), in alternating rounds. "CPU" is this process's CPU time
(``time.process_time``) divided by the requests sent: everything the client does for a request,
ours and botocore's (serialising, signing, parsing), not the wait for the server.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import uuid
from datetime import date
from importlib.metadata import version as dist_version

import boto3
from botocore.config import Config
from dynamodb_costs import ENDPOINT_VAR, REGION, require_local_dynamodb

from eventstore import EventStore, Resource
from eventstore.backends.dynamodb import DynamoDBBackend


class CpuDoc(Resource):
    title: str
    body: str
    n: int = 0


def measure(store: EventStore, n: int) -> dict[str, float]:
    v = store.append(CpuDoc(title="t", body="x " * 1000))
    out: dict[str, float] = {}
    c0, r0 = time.process_time(), store.backend.requests()
    for i in range(n):
        v = store.append(
            CpuDoc(title="t", body="x " * 1000, n=i),
            resource_id=v.resource_id,
            expected_version=v.version,
        )
    out["update"] = (time.process_time() - c0) / (store.backend.requests() - r0) * 1e6
    c0, r0 = time.process_time(), store.backend.requests()
    for i in range(n):
        store.read_version(CpuDoc, v.resource_id, 1 + i % n)
    out["read by number"] = (time.process_time() - c0) / (store.backend.requests() - r0) * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--endpoint-url", default=os.environ.get(ENDPOINT_VAR))
    parser.add_argument("--n", type=int, default=300, help="requests of each kind per round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    endpoint = require_local_dynamodb(args.endpoint_url)
    sums: dict[str, dict[str, list[float]]] = {"ours": {}, "validating": {}}
    for _ in range(args.rounds):
        for side in ("ours", "validating"):
            table = f"cpu-{uuid.uuid4().hex[:10]}"
            if side == "ours":
                backend = DynamoDBBackend(table, region=REGION, endpoint_url=endpoint)
            else:
                client = boto3.session.Session().client(
                    "dynamodb",
                    region_name=REGION,
                    endpoint_url=endpoint,
                    config=Config(
                        retries={"total_max_attempts": 1, "mode": "standard"},
                        parameter_validation=True,
                        max_pool_connections=32,
                        tcp_keepalive=True,
                    ),
                )
                backend = DynamoDBBackend(table, client=client)
            store = EventStore(backend)
            store.create_table()
            try:
                for op, us in measure(store, args.n).items():
                    sums[side].setdefault(op, []).append(us)
            finally:
                backend.delete_table()
    print(
        f"client CPU per request on DynamoDB Local, {date.today()}, {args.rounds} rounds of "
        f"{args.n}; Python {platform.python_version()}, boto3 {dist_version('boto3')}, "
        f"{os.cpu_count()} CPUs\n"
    )
    print(
        "| operation | CPU µs per request, eventstore's client | with parameter validation | saved |"
    )
    print("|---|---:|---:|---:|")
    for op in sums["ours"]:
        ours = sorted(sums["ours"][op])[len(sums["ours"][op]) // 2]
        theirs = sorted(sums["validating"][op])[len(sums["validating"][op]) // 2]
        print(f"| {op} | {ours:,.0f} | {theirs:,.0f} | {1 - ours / theirs:.0%} |")
    print("\n(medians over the rounds)")


if __name__ == "__main__":
    main()
