"""The change feed: what it costs writers, and how fast it reads.

Run from the repository root::

    .venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/python bench/feed.py

1. **Concurrent appends on DynamoDB Local**: 1, 4, 8 and 16 threads, each appending to its own
   streams, on a table with 1 feed partition (every append moves the same counter item) and on one
   with 8. Prints appends per second and the retry rate: requests beyond one per append, each a
   commit refused because another writer had just taken the counter's next positions.
2. **Reading the feed on SQLite**: 100,000 versions (``--versions``) of 1,000 streams
   (all versions kept), written in commits of 24 appends to different streams, then the whole
   feed read back: versions per second, and the peak of memory allocated while reading
   (``tracemalloc``; it includes the keyframe cache, bounded by ``keyframe_cache_bytes``).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
import tracemalloc
import uuid
from datetime import date
from pathlib import Path

from dynamodb_costs import ENDPOINT_VAR, require_local_dynamodb

import eventstore
from eventstore import Append, Resource


class Tick(Resource):
    resource_type = "bench.Tick"
    max_versions = 10
    n: int
    note: str


class Entry(Resource):
    resource_type = "bench.Entry"
    n: int
    note: str


def concurrent_appends(endpoint: str, writers: int, partitions: int, seconds: float) -> str:
    table = f"bench-feed-{uuid.uuid4().hex[:8]}"
    url = f"dynamodb://{table}?region=us-east-1&endpoint_url={endpoint}"
    setup = eventstore.open(url)
    setup.create_table(feed="inline", feed_partitions=partitions)
    counts = [0] * writers
    requests = [0] * writers
    stop = threading.Event()
    start = threading.Barrier(writers + 1)

    def write(w: int) -> None:
        store = eventstore.open(url)  # one client per writer, as separate processes would have
        store.last_position()
        start.wait()
        before = store.backend.requests()
        streams = [f"w{w}-s{k}" for k in range(4)]
        versions = dict.fromkeys(streams, 0)
        while not stop.is_set():
            s = streams[counts[w] % 4]
            store.append(
                Tick(n=counts[w], note="x" * 200),
                resource_id=s,
                expected_version=versions[s] or eventstore.NO_STREAM,
            )
            versions[s] += 1
            counts[w] += 1
        requests[w] = store.backend.requests() - before
        store.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    appends = sum(counts)
    total = sum(requests)
    positions = sum(setup.last_position(partition=p) for p in range(partitions))
    assert positions == appends, (positions, appends)
    setup.backend.delete_table()  # type: ignore[attr-defined]
    setup.close()
    return (
        f"| {writers} | {partitions} | {appends} | {appends / elapsed:.0f} | "
        f"{(total - appends) / appends:.1%} |"
    )


def feed_reads(versions: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        store = eventstore.open(f"sqlite:///{Path(tmp) / 'feed.db'}")
        store.create_table()
        written = 0
        at = [0] * 1000
        while written < versions:
            batch = min(24, versions - written)  # up to 4 actions per append: <= 97
            streams = [(written + i) % 1000 for i in range(batch)]
            store.append_many(
                [
                    Append(
                        Entry(n=written + i, note="x" * 200),
                        resource_id=f"s{s}",
                        expected_version=at[s] or eventstore.NO_STREAM,
                    )
                    for i, s in enumerate(streams)
                ]
            )
            for s in streams:
                at[s] += 1
            written += batch
        tracemalloc.start()
        began = time.perf_counter()
        read = 0
        for version in store.feed():
            read += 1
            assert version.position == read
        elapsed = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        store.close()
    assert read == versions
    return f"| {versions:,} | {read / elapsed:,.0f} | {peak / 1024 / 1024:.1f} MiB |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", default=os.environ.get(ENDPOINT_VAR))
    parser.add_argument("--seconds", type=float, default=5.0, help="per concurrency level")
    parser.add_argument("--versions", type=int, default=100_000)
    args = parser.parse_args()
    args.endpoint_url = require_local_dynamodb(args.endpoint_url)
    print(
        f"change feed, {date.today()}, Python {platform.python_version()}, {os.cpu_count()} CPUs\n"
    )
    print(f"Concurrent appends on DynamoDB Local ({args.seconds:g} s each):\n")
    concurrent_appends(args.endpoint_url, 2, 1, 2.0)  # warm-up: the JVM behind DynamoDB Local
    print("| writers | feed partitions | appends | appends/s | retries per append |")
    print("|---:|---:|---:|---:|---:|")
    for partitions in (1, 8):
        for writers in (1, 4, 8, 16):
            print(
                concurrent_appends(args.endpoint_url, writers, partitions, args.seconds), flush=True
            )
    print("\nReading the whole feed on SQLite:\n")
    print("| versions | versions/s | peak memory while reading |")
    print("|---:|---:|---:|")
    print(feed_reads(args.versions), flush=True)


if __name__ == "__main__":
    main()
