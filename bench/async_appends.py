"""The async store against the blocking one on DynamoDB Local: W concurrent tasks on one event
loop (``eventstore.aio``) against W threads sharing one blocking store, W = 1, 16, 64.

Run from the repository root (``bench/run`` does, and writes the output into docs/)::

    .venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/python bench/async_appends.py

Workload: each writer keeps 8 streams of its own and appends 2 KB documents to them in random
order with the exact ``expected_version`` (one request each), on a table without a feed: DynamoDB
Local slows down with every stream record it keeps, which would favour whichever store ran first
(an append to an indexed feed's table is the same single request); 1,600 appends per run. Each run is a process of its own (so memory is its own),
measured after a warm-up of 2 appends per writer (clients, connections, threads made). Printed:
appends per second, p50/p99 latency, requests per append (counted at the client), client CPU
per request (the process's CPU time; DynamoDB Local runs in another process), and the growth of
the process's peak resident memory during the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import date

from dynamodb_costs import ENDPOINT_VAR, require_local_dynamodb

import eventstore
import eventstore.aio
from eventstore import NO_STREAM, Resource

TOTAL = 1600
STREAMS = 8
WARM = 2


class Doc(Resource):
    resource_type = "bench.Doc"
    n: int
    body: str


BODY = "".join(random.Random(7).choice("abcdefghij klmnop") for _ in range(2000))


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


class Writer:
    """One writer's streams and the version each is at."""

    def __init__(self, w: int) -> None:
        self.rng = random.Random(w)
        tag = uuid.uuid4().hex[:6]
        self.versions = {f"w{w}s{s}-{tag}": 0 for s in range(STREAMS)}

    def next(self) -> tuple[str, int]:
        rid = self.rng.choice(list(self.versions))
        return rid, self.versions[rid]


def _report(
    latencies: list[float], seconds: float, cpu: float, requests: int, rss: int
) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "appends": len(latencies),
        "per_second": len(latencies) / seconds,
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[int(len(ordered) * 0.99) - 1] * 1000,
        "requests": requests / len(latencies),
        "cpu_us": cpu / requests * 1e6,
        "rss_mb": rss / 1024,
    }


def run_threads(url: str, width: int) -> dict[str, float]:
    store = eventstore.open(url)
    writers = [Writer(w) for w in range(width)]
    latencies: list[float] = []
    lock = threading.Lock()

    def work(writer: Writer, count: int, keep: bool) -> None:
        for k in range(count):
            rid, at = writer.next()
            began = time.perf_counter()
            store.append(Doc(n=k, body=BODY), resource_id=rid, expected_version=at or NO_STREAM)
            spent = time.perf_counter() - began
            writer.versions[rid] = at + 1
            if keep:
                with lock:
                    latencies.append(spent)

    def wave(count: int, keep: bool) -> None:
        threads = [threading.Thread(target=work, args=(w, count, keep)) for w in writers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    wave(WARM, False)
    rss, requests, cpu = _rss_kb(), store.backend.requests(), time.process_time()
    began = time.perf_counter()
    wave(TOTAL // width, True)
    seconds = time.perf_counter() - began
    cpu, requests = time.process_time() - cpu, store.backend.requests() - requests
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss
    store.close()
    return _report(latencies, seconds, cpu, requests, grown)


async def run_tasks(url: str, width: int) -> dict[str, float]:
    writers = [Writer(w) for w in range(width)]
    latencies: list[float] = []
    async with eventstore.aio.open(url) as store:

        async def work(writer: Writer, count: int, keep: bool) -> None:
            for k in range(count):
                rid, at = writer.next()
                began = time.perf_counter()
                await store.append(
                    Doc(n=k, body=BODY), resource_id=rid, expected_version=at or NO_STREAM
                )
                spent = time.perf_counter() - began
                writer.versions[rid] = at + 1
                if keep:
                    latencies.append(spent)

        await asyncio.gather(*(work(w, WARM, False) for w in writers))
        rss, requests, cpu = _rss_kb(), store.backend.requests(), time.process_time()
        began = time.perf_counter()
        await asyncio.gather(*(work(w, TOTAL // width, True) for w in writers))
        seconds = time.perf_counter() - began
        cpu, requests = time.process_time() - cpu, store.backend.requests() - requests
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss
    return _report(latencies, seconds, cpu, requests, grown)


def one(kind: str, width: int, endpoint: str) -> dict[str, float]:
    """A run in a process of its own, on a fresh table."""
    table = f"bench-aio-{uuid.uuid4().hex[:8]}"
    url = f"dynamodb://{table}?region=us-east-1&endpoint_url={endpoint}"
    with eventstore.open(url) as store:
        store.create_table(feed="none")
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--one", kind, str(width), url],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
    finally:
        with eventstore.open(url) as store:
            store.backend.delete_table()  # type: ignore[attr-defined]
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--one", nargs=3, metavar=("KIND", "WIDTH", "URL"), help=argparse.SUPPRESS)
    parser.add_argument("--widths", default="1,16,64")
    args = parser.parse_args()
    if args.one:
        kind, width, url = args.one[0], int(args.one[1]), args.one[2]
        if os.environ.get("BENCH_LOG"):
            import logging

            logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        if kind == "threads":
            result = run_threads(url, width)
        else:
            result = asyncio.run(run_tasks(url, width))
        print(json.dumps(result))
        return
    endpoint = require_local_dynamodb(os.environ.get(ENDPOINT_VAR))
    widths = [int(w) for w in args.widths.split(",")]
    print(
        f"DynamoDB Local; {date.today()}, {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; {TOTAL} appends of 2 KB per run, {STREAMS} streams per writer.\n"
    )
    print(
        "| writers | store | appends/s | p50 ms | p99 ms | requests/append "
        "| client CPU µs/request | peak RSS growth MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    results: dict[tuple[str, int], dict[str, float]] = {}
    for width in widths:
        for kind, label in (("threads", "blocking, threads"), ("tasks", "async, tasks")):
            r = results[kind, width] = one(kind, width, endpoint)
            print(
                f"| {width} | {label} | {r['per_second']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} "
                f"| {r['requests']:.2f} | {r['cpu_us']:.0f} | {r['rss_mb']:.1f} |",
                flush=True,
            )
    top = max(widths)
    threads, tasks = results["threads", top], results["tasks", top]
    speed = tasks["per_second"] / threads["per_second"]
    cpu = tasks["cpu_us"] / threads["cpu_us"]
    print()
    print("| target (at the widest run) | result |")
    print("|---|---|")
    print(
        f"| async appends/s ≥ blocking with as many threads | {speed:.2f}x "
        f"({'met' if speed >= 1 else 'MISSED'}) |"
    )
    memory_ok = tasks["rss_mb"] < threads["rss_mb"] / 2
    print(
        f"| async memory < half the threads' | {tasks['rss_mb']:.1f} MB vs "
        f"{threads['rss_mb']:.1f} MB ({'met' if memory_ok else 'MISSED'}) |"
    )
    print(
        f"| client CPU per request within 1.2x | {cpu:.2f}x ({'met' if cpu <= 1.2 else 'MISSED'}) |"
    )


if __name__ == "__main__":
    main()
