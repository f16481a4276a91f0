"""The feed at scale: many writers on DynamoDB Local, each on its own streams, on a table whose
feed is indexed (positions from the table's stream), inline (a counter item in every commit) or
absent. Then the indexed feed's lag and its write units.

Run from the repository root (``bench/run`` does, and writes the output into docs/)::

    .venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/python bench/feed_scale.py

1. **Writers**: W = 1, 4, 16, 64 threads, W = 4 and 16 processes, and W = 1 and 16 threads that
   open a fresh store for every append (as warm Lambda invocations do; a process learns the
   table's feed configuration once, so only its first append reads it). Each writer keeps 5
   streams of its own and appends to them in random order (``expected_version`` exact), 2 KB
   documents. Printed per mode: requests per append (counted at the client), appends that
   failed, p50 and p99 latency, and appends per second as a ratio to the table without a feed
   in the same run. "none, stream on" is a table without a feed whose DynamoDB stream is on:
   the control that shows what DynamoDB Local's own stream costs each write (on AWS a stream
   does not slow writes down).
2. **Index lag**: one writer appending while ``eventstore index --follow`` runs in-process
   (polling every 50 ms) and a reader polls the feed: commit to position readable, p50 and p99.
3. **Index write units** per 1,000 versions, as DynamoDB Local reports them, for an indexer that
   catches up on 1,000 versions at once and for one that follows a single writer.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import statistics
import threading
import time
import uuid
from datetime import date
from typing import Any

from dynamodb_costs import ENDPOINT_VAR, require_local_dynamodb

import eventstore
from eventstore import EventStore, Resource, TableOptions


class Doc(Resource):
    resource_type = "bench.Doc"
    n: int
    body: str


BODY = "".join(random.Random(7).choice("abcdefghij klmnop") for _ in range(2000))


def _url(endpoint: str) -> str:
    table = f"bench-scale-{uuid.uuid4().hex[:8]}"
    return f"dynamodb://{table}?region=us-east-1&endpoint_url={endpoint}"


def _writer(url: str, w: int, count: int, fresh: bool) -> list[tuple[float, int, bool]]:
    """``count`` appends over 5 streams of this writer's: (latency, requests, failed) each."""
    rng = random.Random(w)
    versions = {f"w{w}s{s}-{uuid.uuid4().hex[:6]}": 0 for s in range(5)}
    store = None if fresh else eventstore.open(url)
    results = []
    for k in range(count):
        rid = rng.choice(list(versions))
        mine = eventstore.open(url) if fresh else store
        assert mine is not None
        before = mine.backend.usage()
        began = time.perf_counter()
        failed = False
        expected = versions[rid] or eventstore.NO_STREAM
        try:
            mine.append(Doc(n=k, body=BODY), resource_id=rid, expected_version=expected)
            versions[rid] += 1
        except eventstore.EventStoreError:
            failed = True
        spent = mine.backend.usage() - before
        results.append((time.perf_counter() - began, spent.requests, failed))
        if fresh:
            mine.close()
    if store is not None:
        store.close()
    return results


def _process(url: str, w: int, count: int, start: Any, out: Any) -> None:
    start.wait(timeout=300)
    out.put(_writer(url, w, count, False))


def run(
    url: str, kind: str, writers: int, count: int
) -> tuple[list[tuple[float, int, bool]], float]:
    results: list[tuple[float, int, bool]] = []
    if kind == "processes":
        context = multiprocessing.get_context("spawn")
        start, out = context.Barrier(writers + 1), context.Queue()
        procs = [
            context.Process(target=_process, args=(url, w, count, start, out))
            for w in range(writers)
        ]
        for p in procs:
            p.start()
        start.wait(timeout=300)
        began = time.perf_counter()
        for _ in procs:
            results += out.get(timeout=900)
        elapsed = time.perf_counter() - began
        for p in procs:
            p.join(timeout=60)
        return results, elapsed
    lock = threading.Lock()
    barrier = threading.Barrier(writers + 1)

    def work(w: int) -> None:
        barrier.wait()
        mine = _writer(url, w, count, kind == "fresh store per append")
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    barrier.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return results, time.perf_counter() - began


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def writers_table(endpoint: str, total: int) -> None:
    print(
        "| writers | kind | feed | requests per append | failed | p50 ms | p99 ms | appends/s "
        "| vs no feed |\n|---:|---|---|---:|---:|---:|---:|---:|---:|"
    )
    shapes = [("threads", w) for w in (1, 4, 16, 64)]
    shapes += [("processes", w) for w in (4, 16)]
    shapes += [("fresh store per append", w) for w in (1, 16)]
    for kind, writers in shapes:
        count = max(4, total // writers)
        rates: dict[str, float] = {}
        for mode in ("none", "none, stream on", "indexed", "inline"):
            url = _url(endpoint)
            setup = eventstore.open(url, index_on_read=False)
            if mode == "none, stream on":
                # The control: what DynamoDB Local's own stream costs a write, feed or not.
                setup.create_table(feed="none", options=TableOptions(stream="KEYS_ONLY"))
            else:
                setup.create_table(feed=mode)  # type: ignore[arg-type]
            try:
                results, elapsed = run(url, kind, writers, count)
            finally:
                setup.backend.delete_table()  # type: ignore[attr-defined]
                setup.close()
            done = [r for r in results if not r[2]]
            latencies = [r[0] * 1000 for r in results]
            rates[mode] = len(done) / elapsed
            ratio = rates[mode] / rates["none"]
            print(
                f"| {writers} | {kind} | {mode} | "
                f"{sum(r[1] for r in results) / len(results):.2f} | "
                f"{len(results) - len(done)} | {percentile(latencies, 0.5):.0f} | "
                f"{percentile(latencies, 0.99):.0f} | {rates[mode]:.0f} | {ratio:.2f}x |",
                flush=True,
            )


def index_lag(endpoint: str, versions: int) -> list[str]:
    url = _url(endpoint)
    setup = eventstore.open(url, index_on_read=False)
    setup.create_table()
    indexer = EventStore(setup.backend, index_on_read=False)
    reader = EventStore(setup.backend, index_on_read=False)
    stop = threading.Event()
    committed: dict[int, float] = {}
    readable: dict[int, float] = {}

    def follow_index() -> None:
        indexer.indexer.follow(stop, poll_interval=0.05)

    def read() -> None:
        position = 0
        while not stop.is_set() or position < versions:
            for v in reader.feed(after=position):
                readable[v.version + 1000 * int(v.resource_id[1:])] = time.perf_counter()
                position = v.position or position
            time.sleep(0.005)
            if stop.is_set() and position >= versions:
                break

    threads = [threading.Thread(target=follow_index), threading.Thread(target=read)]
    for t in threads:
        t.start()
    writer = EventStore(setup.backend, index_on_read=False)
    for k in range(versions):
        stream, number = k % 10, k // 10 + 1
        expected = number - 1 or eventstore.NO_STREAM
        writer.append(Doc(n=k, body=BODY), resource_id=f"s{stream}", expected_version=expected)
        committed[number + 1000 * stream] = time.perf_counter()
        time.sleep(0.01)
    deadline = time.monotonic() + 60
    while len(readable) < versions and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    lags = [(readable[k] - committed[k]) * 1000 for k in committed if k in readable]
    setup.backend.delete_table()  # type: ignore[attr-defined]
    setup.close()
    return [
        f"Index lag, one writer (~60 appends/s) and an indexer following in-process every "
        f"50 ms, {len(lags)} versions: p50 {percentile(lags, 0.5):.0f} ms, "
        f"p99 {percentile(lags, 0.99):.0f} ms, mean {statistics.mean(lags):.0f} ms"
    ]


def index_units(endpoint: str) -> list[str]:
    lines = []
    for how in ("catch-up of 1,000 versions at once", "following one writer (a write per poll)"):
        url = _url(endpoint)
        setup = eventstore.open(url, index_on_read=False)
        setup.create_table()
        writer = EventStore(setup.backend, index_on_read=False)
        indexer = EventStore(setup.backend, index_on_read=False)
        units = 0.0
        for k in range(1000):
            stream, number = k % 50, k // 50 + 1
            expected = number - 1 or eventstore.NO_STREAM
            writer.append(Doc(n=k, body=BODY), resource_id=f"s{stream}", expected_version=expected)
            if how.startswith("following") and k % 5 == 4:
                before = setup.backend.usage()
                indexer.indexer.catch_up()
                units += (setup.backend.usage() - before).write_units
        before = setup.backend.usage()
        report = indexer.indexer.catch_up()
        units += (setup.backend.usage() - before).write_units
        total = indexer.last_position()
        assert total == 1000, total
        setup.backend.delete_table()  # type: ignore[attr-defined]
        setup.close()
        lines.append(
            f"Index write units per 1,000 versions, {how}: {units:.1f} "
            f"({units / 1000:.3f} per version; last pass {report.writes} writes)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--total", type=int, default=192, help="appends per configuration")
    parser.add_argument("--lag-versions", type=int, default=300)
    args = parser.parse_args()
    endpoint = require_local_dynamodb(os.environ.get(ENDPOINT_VAR))
    print(
        f"DynamoDB Local at {endpoint}, {date.today()}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}, Python {platform.python_version()}"
    )
    print()
    writers_table(endpoint, args.total)
    print()
    for line in index_lag(endpoint, args.lag_versions):
        print(line)
    for line in index_units(endpoint):
        print(line)


if __name__ == "__main__":
    main()
