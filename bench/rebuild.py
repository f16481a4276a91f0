"""Rebuilding a projection: heads per second, requests and write units per head, peak memory.

Run from the repository root::

    .venv/bin/python bench/rebuild.py                       # SQLite, 10,000 and 100,000 heads
    .venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/python bench/rebuild.py
                                                            # + DynamoDB Local, 10,000 heads
    .venv/bin/python bench/rebuild.py --sizes 2000 --json   # quick run, figures as JSON

Workload: ``--sizes`` orders are appended by a store that declares no projection (one version
each, and a second version for every fourth one), then the store is opened with a projection
(``by_status`` on gsi1, orders by status, sorted by customer) and rebuilt four times:

1. *updated*: every head gets its index keys (timed);
2. *unchanged*: the same again, which must find nothing to do (timed);
3. and 4.: a changed key function (every head updated again), then unchanged again, both under
   ``tracemalloc`` for the peak memory of each kind of run (slower; not timed).

Requests are counted by a wrapper around the backend (SQLite) or by the DynamoDB backend's own
count of HTTP requests (retries included). Write units are what DynamoDB would bill for each
conditional ``UpdateItem`` the rebuild sends: ``write_units(max(size before, size after))`` of
the head item, sizes from :func:`eventstore.backends.sizes.item_size`; a run that writes nothing costs 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventstore
import projections
from eventstore import EventStore, Resource
from eventstore.backends.base import Backend, Item, Key, Page, TableOptions, Write
from eventstore.backends.sizes import item_size, write_units
from eventstore.keys import HEAD_SK
from projections import Projection

STATUSES = ("new", "paid", "shipped", "cancelled")


class BenchOrder(Resource):
    resource_type = "BenchOrder"
    customer: str
    status: str
    total_cents: int
    lines: list[str]


class ByStatus(Projection[BenchOrder]):
    name = "by_status"
    index = "gsi1"

    def key(self, order: BenchOrder) -> tuple[str, str] | None:
        return (order.status, order.customer)


class ByStatusV2(ByStatus):
    """The same projection with a changed key function: every head changes again."""

    def key(self, order: BenchOrder) -> tuple[str, str] | None:
        return (order.status, f"{order.total_cents:010d}")


class Counting(Backend):
    """Counts the calls made to a backend, by kind."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.serialised = inner.serialised
        self.feed_in_items = inner.feed_in_items
        self.max_item_bytes = inner.max_item_bytes
        self.max_write_bytes = inner.max_write_bytes
        self.calls = {"write": 0, "get": 0, "query": 0, "scan": 0}

    def write(self, writes: Sequence[Write], *, token: str | None = None) -> Mapping[int, int]:
        self.calls["write"] += 1
        return self.inner.write(writes, token=token)

    def positioned(self, partition: int, after: int, *, limit: int) -> list[Item]:
        self.calls["query"] += 1
        return self.inner.positioned(partition, after, limit=limit)

    def last_position(self, partition: int) -> int:
        self.calls["query"] += 1
        return self.inner.last_position(partition)

    def get(self, keys: Sequence[Key], *, consistent: bool = True) -> list[Item | None]:
        # DynamoDB's BatchGetItem takes 100 keys: count the requests a backend would send.
        self.calls["get"] += max(1, -(-len(keys) // 100))
        return self.inner.get(keys, consistent=consistent)

    def query(self, pk: str, **kwargs: Any) -> Page:
        self.calls["query"] += 1
        return self.inner.query(pk, **kwargs)

    def scan(self, **kwargs: Any) -> Page:
        self.calls["scan"] += 1
        return self.inner.scan(**kwargs)

    def create_table(self, options: TableOptions | None = None) -> None:
        self.inner.create_table(options)

    def close(self) -> None:
        self.inner.close()

    def requests(self) -> int:
        return self.inner.requests() or sum(self.calls.values())

    def total(self) -> int:
        return sum(self.calls.values())


@dataclass
class Row:
    backend: str
    heads: int
    segments: int
    run: str
    seconds: float | None
    heads_per_s: float | None
    updated: int
    unchanged: int
    skipped_newer: int
    requests_per_head: float
    write_units_per_updated: float | None
    write_units_per_head: float
    peak_mib: float | None


def fill(store: EventStore, count: int) -> None:
    for i in range(count):
        state = BenchOrder(
            customer=f"customer-{i % 997:04d}",
            status=STATUSES[i % 3],
            total_cents=(i * 7919) % 100_000,
            lines=[f"sku-{i % 50}", f"sku-{(i * 3) % 50}"],
        )
        v = store.append(state)
        if i % 4 == 0:
            store.append(
                state.model_copy(update={"status": STATUSES[(i + 1) % 4]}),
                resource_id=v.resource_id,
                expected_version=1,
            )


def head_sizes(backend: Backend) -> dict[str, int]:
    """Size of every BenchOrder head (a full scan, outside the measured runs)."""
    sizes: dict[str, int] = {}
    start = None
    while True:
        page = backend.scan(start=start)
        for item in page.items:
            pk = str(item["pk"])
            if item["sk"] == HEAD_SK and pk.startswith("BenchOrder#"):
                sizes[pk] = item_size(item)
        if page.last_key is None:
            return sizes
        start = page.last_key


def measure(
    backend_name: str,
    store: EventStore,
    counting: Counting,
    projection: type[ByStatus],
    heads: int,
    segments: int,
    run: str,
    memory: bool,
) -> Row:
    before = head_sizes(counting.inner)
    counted = counting.total()
    requests = counting.inner.requests()
    if memory:
        tracemalloc.start()
        tracemalloc.reset_peak()
    began = time.perf_counter()
    report = projections.rebuild(store, projection, segments=segments)
    seconds = time.perf_counter() - began
    peak = None
    if memory:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    sent = counting.inner.requests() - requests or counting.total() - counted
    after = head_sizes(counting.inner)
    units = sum(
        write_units(max(before[pk], after[pk]), transactional=False)
        for pk in after
        if after[pk] != before.get(pk)
    )
    assert report.scanned == heads, report
    return Row(
        backend=backend_name,
        heads=heads,
        segments=segments,
        run=run,
        seconds=None if memory else round(seconds, 2),
        heads_per_s=None if memory else round(heads / seconds),
        updated=report.updated,
        unchanged=report.unchanged,
        skipped_newer=report.skipped_newer,
        requests_per_head=round(sent / heads, 4),
        write_units_per_updated=round(units / report.updated, 2) if report.updated else None,
        write_units_per_head=round(units / heads, 3),
        peak_mib=None if peak is None else round(peak, 1),
    )


def bench(backend_name: str, url: str, heads: int, segments: int) -> list[Row]:
    plain = eventstore.open(url)
    plain.create_table()
    try:
        began = time.perf_counter()
        fill(plain, heads)
        print(
            f"# {backend_name}: {heads:,} heads written in {time.perf_counter() - began:.1f} s",
            file=sys.stderr,
        )
        rows = []
        for projection, run, memory in (
            (ByStatus, "all updated", False),
            (ByStatus, "all unchanged", False),
            (ByStatusV2, "all updated (tracemalloc)", True),
            (ByStatusV2, "all unchanged (tracemalloc)", True),
        ):
            counting = Counting(plain.backend)
            store = EventStore(counting, projections=[projection()])
            rows.append(
                measure(backend_name, store, counting, projection, heads, segments, run, memory)
            )
            print(f"#   {rows[-1]}", file=sys.stderr)
        return rows
    finally:
        delete = getattr(plain.backend, "delete_table", None)
        if delete is not None:
            delete()
        plain.close()


def table(rows: list[Row]) -> str:
    out = [
        "| backend | heads | run | heads/s | requests/head | write units/head updated | "
        "write units/head (run) | peak memory |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r.backend} | {r.heads:,} | {r.run} | "
            f"{'' if r.heads_per_s is None else f'{r.heads_per_s:,}'} | {r.requests_per_head:.3f} | "
            f"{'-' if r.write_units_per_updated is None else r.write_units_per_updated} | "
            f"{r.write_units_per_head:.2f} | "
            f"{'' if r.peak_mib is None else f'{r.peak_mib} MiB'} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[10_000, 100_000], help="SQLite sizes (none: skip)"
    )
    parser.add_argument("--dynamodb-size", type=int, default=10_000)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: list[Row] = []
    folder = tempfile.mkdtemp(prefix="bench-rebuild-")
    try:
        for size in args.sizes:
            url = f"sqlite:///{folder}/rebuild-{size}.db"
            rows += bench("sqlite", url, size, args.segments)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    endpoint = os.environ.get("EVENTSTORE_DYNAMODB_ENDPOINT")
    if endpoint:
        table_name = f"bench-rebuild-{uuid.uuid4().hex[:8]}"
        url = f"dynamodb://{table_name}?region=us-east-1&endpoint_url={endpoint}"
        rows += bench("DynamoDB Local", url, args.dynamodb_size, args.segments)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return
    print(
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"segments={args.segments}\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
