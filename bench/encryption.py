"""What encryption costs: CPU per append and per read with and without it (SQLite, 2 KB and
128 KB case documents), bytes stored per version, DynamoDB requests per warm append, and KMS
calls per 1,000 appends for a warm writer and for a fleet of fresh stores (Lambda-like).

Run from the repository root (``scripts/dynamodb_local.py run`` starts DynamoDB Local)::

    .venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/python bench/encryption.py

CPU is ``time.process_time()`` of this process over interleaved blocks (plain, encrypted,
plain, ...), median of the blocks, so that the machine's drift hits both alike. KMS is moto's
server mode on loopback (the one KMS that runs locally): it counts calls, not AWS latency (a KMS
call takes a few milliseconds on AWS and costs $0.03 per 10,000).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import eventstore
from bench.dynamodb_costs import CaseFields, make_case, make_edits
from eventstore import Resource
from eventstore.backends.sizes import item_size
from eventstore.encryption import KmsKeyProvider, LocalKeyProvider
from eventstore.keys import stream_pk, version_sk
from eventstore.local import free_port

SIZES = {"2 KB": 2 * 1024, "128 KB": 128 * 1024}
MASTER = bytes(range(32))


class PlainCase(CaseFields, Resource):
    resource_type = "bench.PlainCase"


class SealedCase(CaseFields, Resource):
    resource_type = "bench.SealedCase"
    encrypted = True


def cpu_blocks(args: argparse.Namespace, folder: Path) -> dict[str, dict[str, float]]:
    """CPU µs per append and per read, plain and encrypted, for each size."""
    rng = random.Random(args.seed)
    out: dict[str, dict[str, float]] = {}
    for label, target in SIZES.items():
        docs = [make_case(rng, n, target) for n in range(args.streams)]
        edits = [make_edits(rng, d, args.versions) for d in docs]
        timings: dict[str, list[float]] = {
            k: [] for k in ("plain append", "sealed append", "plain read", "sealed read")
        }
        for block in range(args.blocks):
            sides = [("plain", PlainCase), ("sealed", SealedCase)]
            # Each side goes first in every other block: a drift of the machine within a block
            # does not always land on the same side.
            for kind, cls in sides if block % 2 == 0 else sides[::-1]:
                url = f"sqlite:///{folder / f'{label}-{kind}-{block}.db'}"
                store = eventstore.open(url, keys=LocalKeyProvider(MASTER))
                store.create_table()
                ids = [f"s{n}" for n in range(args.streams)]
                order = [(s, v) for v in range(args.versions) for s in range(args.streams)]
                random.Random(block).shuffle(order)
                order.sort(key=lambda sv: sv[1])  # versions in order per stream, streams shuffled
                started = time.process_time()
                for s, v in order:
                    state = cls.model_validate(docs[s] if v == 0 else edits[s][v - 1])
                    store.append(
                        state, resource_id=ids[s], expected_version=v or eventstore.NO_STREAM
                    )
                timings[f"{kind} append"].append((time.process_time() - started) / len(order) * 1e6)
                fresh = eventstore.open(url, keys=LocalKeyProvider(MASTER))  # cold caches
                started = time.process_time()
                reads = 0
                for s in range(args.streams):
                    for v in range(1, args.versions + 1, 3):
                        fresh.read_version(cls, ids[s], v)
                        reads += 1
                timings[f"{kind} read"].append((time.process_time() - started) / reads * 1e6)
                fresh.close()
                store.close()
        out[label] = {k: statistics.median(v) for k, v in timings.items()}
        # What encryption adds: the median of each block's ratio, the two sides of a block
        # having run back to back (on a shared machine, speed drifts from block to block by
        # more than encryption costs, so a ratio of medians taken over different blocks would
        # measure the drift).
        for op in ("append", "read"):
            ratios = [
                sealed / plain
                for plain, sealed in zip(
                    timings[f"plain {op}"], timings[f"sealed {op}"], strict=True
                )
            ]
            out[label][f"added {op}"] = 100 * (statistics.median(ratios) - 1)
    return out


def stored_bytes(folder: Path) -> dict[str, tuple[int, int]]:
    """Bytes of a version item and of a keyframe item, plain and encrypted (2 KB document)."""
    rng = random.Random(1)
    doc = make_case(rng, 1, 2048)
    edit = make_edits(rng, doc, 1)[0]
    found: dict[str, tuple[int, int]] = {}
    for kind, cls in (("plain", PlainCase), ("sealed", SealedCase)):
        store = eventstore.open(
            f"sqlite:///{folder / f'bytes-{kind}.db'}", keys=LocalKeyProvider(MASTER)
        )
        store.create_table()
        store.append(cls.model_validate(doc), resource_id="d")
        store.append(cls.model_validate(edit), resource_id="d", expected_version=1)
        backend = store.backend.inner  # type: ignore[attr-defined]
        pk = stream_pk(cls.resource_type, "d")
        version = backend.get([(pk, version_sk(2))])[0]
        keyframe = next(i for i in backend.query(pk).items if str(i["sk"]).endswith("#w"))
        found[kind] = (item_size(version), item_size(keyframe))
        store.close()
    return found


def dynamodb_requests(endpoint: str) -> tuple[float, float, float, float]:
    """DynamoDB requests per warm encrypted append (the key cached); and per first version of
    a new stream that is its own subject (its key made), requests to the events table and the
    key store together, and the write units of both, encrypted and plain."""
    table = f"bench-enc-{uuid.uuid4().hex[:8]}"
    store = eventstore.open(
        f"dynamodb://{table}?region=us-east-1&endpoint_url={endpoint}",
        keys=LocalKeyProvider(MASTER),
    )
    store.create_table(feed="none")
    keys = store.backend.keys.store.backend  # type: ignore[attr-defined]
    rng = random.Random(2)
    doc = make_case(rng, 1, 2048)
    store.append(SealedCase.model_validate(doc), resource_id="d")
    before = store.backend.requests()
    for n, edit in enumerate(make_edits(rng, doc, 50), start=1):
        store.append(SealedCase.model_validate(edit), resource_id="d", expected_version=n)
    per = (store.backend.requests() - before) / 50
    firsts = [make_case(rng, n, 2048) for n in range(50)]
    units: dict[type[Resource], float] = {}
    requests = 0
    for cls in (SealedCase, PlainCase):
        spent, sent = 0.0, store.backend.requests() + keys.requests()
        for n, first in enumerate(firsts):
            before_units = store.backend.usage().write_units + keys.usage().write_units
            store.append(cls.model_validate(first), resource_id=f"new-{n}")
            spent += store.backend.usage().write_units + keys.usage().write_units - before_units
        units[cls] = spent / len(firsts)
        if cls is SealedCase:
            requests = store.backend.requests() + keys.requests() - sent
    store.backend.delete_table()  # type: ignore[attr-defined]
    keys.delete_table()
    return per, requests / len(firsts), units[SealedCase], units[PlainCase]


def kms_calls(folder: Path, subjects: int = 100, appends: int = 1000) -> tuple[int, int]:
    """KMS calls for ``appends`` appends spread over ``subjects`` streams: by one warm store,
    and by a fresh store for every append."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        client = boto3.client(
            "kms",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        key_id = client.create_key()["KeyMetadata"]["KeyId"]
        counts = []
        for fleet in (False, True):
            url = f"sqlite:///{folder / f'kms-{fleet}.db'}"
            provider = KmsKeyProvider(key_id, client=client)
            store = eventstore.open(url, keys=provider)
            store.create_table()
            versions = [0] * subjects
            rng = random.Random(3)
            calls = 0
            for n in range(appends):
                s = rng.randrange(subjects)
                if fleet:
                    provider = KmsKeyProvider(key_id, client=client)
                    store.close()
                    store = eventstore.open(url, keys=provider)
                before = provider.calls
                store.append(
                    SealedCase.model_validate(make_case(random.Random(n), n, 512)),
                    resource_id=f"s{s}",
                    expected_version=versions[s] or eventstore.NO_STREAM,
                )
                versions[s] += 1
                calls += provider.calls - before
            counts.append(calls)
            store.close()
        return counts[0], counts[1]
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--dynamodb", default=os.environ.get("EVENTSTORE_DYNAMODB_ENDPOINT"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cpu = cpu_blocks(args, folder)
        sizes = stored_bytes(folder)
        warm, fleet = kms_calls(folder)
    dynamodb = dynamodb_requests(args.dynamodb) if args.dynamodb else None
    print(
        f"SQLite, {args.streams} streams x {args.versions} versions in random stream order, "
        f"median of {args.blocks} interleaved blocks; CPU µs of this process per operation; "
        "'added' is the median of the blocks' own ratios (each block runs both sides back to "
        "back); reads by number from a new store (cold caches, the key unwrapped once per stream)."
    )
    print()
    print(
        "| document | append plain | append encrypted | added | read plain | read encrypted | added |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, t in cpu.items():
        pa, sa, pr, sr = t["plain append"], t["sealed append"], t["plain read"], t["sealed read"]
        print(
            f"| {label} | {pa:,.0f} | {sa:,.0f} | {t['added append']:+.1f} % | {pr:,.0f} | "
            f"{sr:,.0f} | {t['added read']:+.1f} % |"
        )
    print()
    (pv, pk), (sv, sk) = sizes["plain"], sizes["sealed"]
    print("| item (2 KB document) | plain | encrypted | added |")
    print("|---|---:|---:|---:|")
    print(f"| version (a delta) | {pv} B | {sv} B | {sv - pv} B |")
    print(f"| keyframe | {pk} B | {sk} B | {sk - pk} B |")
    print()
    added = cpu["2 KB"]["added append"]
    print("| target | result |")
    print("|---|---|")
    print(
        f"| CPU added per append, 2 KB document, at most 15 % | {added:+.1f} % ({'met' if added <= 15 else 'MISSED'}) |"
    )
    if dynamodb is not None:
        requests, first, sealed_wcu, plain_wcu = dynamodb
        print(
            f"| DynamoDB requests per warm encrypted append: 1 | {requests:.2f} ({'met' if requests == 1 else 'MISSED'}) |"
        )
        print(
            f"| DynamoDB requests per first version of a new subject (its key in the same transaction) | {first:.2f} |"
        )
        print(
            f"| WCU per first version of a new subject, 2 KB document: encrypted, plain | {sealed_wcu:.1f}, {plain_wcu:.1f} |"
        )
    print(
        f"| KMS calls per 1,000 appends over 100 subjects, one warm writer | {warm} (one per subject) |"
    )
    print(
        f"| KMS calls per 1,000 appends, a fresh store for each (a Lambda fleet, cold) | {fleet} |"
    )


if __name__ == "__main__":
    sys.exit(main())
