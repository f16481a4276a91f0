"""Embedded SQLite: appends, reads and stored bytes, eventstore side by side with ``eventsourcing``.

Run from the repository root (needs the ``bench`` extra: ``.venv/bin/pip install eventsourcing==9.5.6``)::

    .venv/bin/python bench/sqlite_appends.py                 # Markdown table, about 25 s
    .venv/bin/python bench/sqlite_appends.py --n 2000 --json # figures as JSON

Workload, the same for every side, each on its own SQLite file in WAL mode in a temporary
directory: ``--streams`` orders (a ~2.2 KB JSON document each) are created, then updated with small
edits (the next status, one line's quantity, updated_at and the total) until ``--n`` versions
exist, streams taken in a shuffled round-robin. Every update states the version it expects
(eventstore: ``expected_version=previous``; eventsourcing: the aggregate's version, enforced by the
primary key of its events table), so both take their normal optimistic-concurrency path, and every
version is one committed SQLite transaction.

eventsourcing is used as its docs show: an ``Application`` saving an ``Aggregate`` whose events
carry the whole order as a JSON dict, so that one event, like one of our versions, is the whole
document at that version and can be read on its own. Reads go through its recorder
(``select_events``) and mapper, which is how it reads one event by position without replaying the
aggregate; both sides return a validated ``BenchOrder``.

Fairness: the sides run the same blocks of 100 operations in turn, rotating who goes first, so a
burst of disk or CPU contention from other processes lands on all of them alike; a warm-up run
comes first. Both use the same ``PRAGMA synchronous``: eventsourcing leaves SQLite's default, FULL
in this build (read back from its connections and printed), so FULL is the default here;
``--synchronous normal`` sets NORMAL on both (on eventsourcing's pooled connections by a pragma).
"CPU µs per append" is process CPU time: the wall time beyond it is mostly the commit's fsync.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from importlib.metadata import version as dist_version
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from pydantic import BaseModel

from eventstore import EventStore, Resource
from eventstore.backends.sizes import item_size
from eventstore.backends.sqlite import SQLiteBackend

# -- the document ------------------------------------------------------------------------------


class Address(BaseModel):
    name: str
    line1: str
    line2: str
    city: str
    postcode: str
    country: str


class Customer(BaseModel):
    id: str
    name: str
    email: str
    phone: str
    segment: str


class Line(BaseModel):
    sku: str
    name: str
    qty: int
    unit_price: Decimal
    discount: Decimal
    tax_rate: str


class BenchOrder(Resource):
    resource_type = "BenchOrder"

    number: str
    status: str
    currency: str
    customer: Customer
    shipping: Address
    billing: Address
    lines: list[Line]
    tags: list[str]
    note: str
    created_at: datetime
    updated_at: datetime
    total: Decimal


STATUSES = ["new", "confirmed", "paid", "picking", "packed", "shipped", "delivered", "closed"]
PRODUCTS = [
    "Stainless steel water bottle 750ml",
    "Organic cotton t-shirt, navy, size M",
    "Wireless ergonomic mouse",
    "Recycled paper notebook A5 dotted",
    "Bamboo cutting board large",
    "USB-C charging cable 2m braided",
    "Ceramic pour-over coffee dripper",
    "Merino wool hiking socks (2 pairs)",
]


def _total(lines: list[Line]) -> Decimal:
    return sum((ln.unit_price * ln.qty - ln.discount for ln in lines), Decimal("0.00"))


def make_order(rng: random.Random, i: int, lines: tuple[int, int] = (10, 15)) -> BenchOrder:
    t0 = datetime(2025, 3, 1, tzinfo=timezone.utc) + timedelta(minutes=i)
    lines = [
        Line(
            sku=f"SKU-{rng.randrange(10**6):06d}-{rng.choice('ABCDEFGH')}",
            name=rng.choice(PRODUCTS),
            qty=rng.randint(1, 5),
            unit_price=Decimal(rng.randrange(199, 19999)) / 100,
            discount=Decimal(rng.choice([0, 0, 50, 100, 250])) / 100,
            tax_rate=rng.choice(["0.20", "0.055", "0.10"]),
        )
        for _ in range(rng.randint(*lines))
    ]
    address = Address(
        name=f"Customer {i}",
        line1=f"{rng.randint(1, 250)} Rue de la République",
        line2=f"Bâtiment {rng.choice('ABC')}, étage {rng.randint(1, 9)}",
        city=rng.choice(["Lyon", "Bordeaux", "Nantes", "Lille"]),
        postcode=f"{rng.randint(10000, 99999)}",
        country="FR",
    )
    return BenchOrder(
        number=f"ORD-2025-{i:07d}",
        status="new",
        currency="EUR",
        customer=Customer(
            id=f"cus_{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}",
            name=f"Customer {i}",
            email=f"customer{i}@example.org",
            phone=f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
            segment=rng.choice(["retail", "pro", "vip"]),
        ),
        shipping=address,
        billing=address.model_copy(update={"line2": ""}),
        lines=lines,
        tags=rng.sample(["gift", "express", "fragile", "b2b", "promo-spring", "first-order"], 3),
        note="Leave the parcel with the concierge if nobody answers.",
        created_at=t0,
        updated_at=t0,
        total=_total(lines),
    )


def edit(order: BenchOrder, rng: random.Random, step: int) -> BenchOrder:
    """A small edit: the next status, one line's quantity, the timestamp and the total."""
    lines = list(order.lines)
    k = rng.randrange(len(lines))
    lines[k] = lines[k].model_copy(update={"qty": rng.randint(1, 9)})
    return order.model_copy(
        update={
            "status": STATUSES[step % len(STATUSES)],
            "lines": lines,
            "updated_at": order.updated_at + timedelta(seconds=rng.randint(5, 5000)),
            "total": _total(lines),
        }
    )


@dataclass
class Workload:
    """The documents to append, prepared before any timer starts."""

    initial: list[BenchOrder]
    # (stream index, new state) in append order
    updates: list[tuple[int, BenchOrder]]
    streams: int = field(init=False)

    def __post_init__(self) -> None:
        self.streams = len(self.initial)

    @property
    def versions(self) -> int:
        return len(self.initial) + len(self.updates)


def make_workload(n: int, streams: int, seed: int) -> Workload:
    rng = random.Random(seed)
    initial = [make_order(rng, i) for i in range(streams)]
    current = list(initial)
    updates: list[tuple[int, BenchOrder]] = []
    step = 0
    while streams + len(updates) < n:
        order = list(range(streams))
        rng.shuffle(order)
        for s in order:
            if streams + len(updates) >= n:
                break
            step += 1
            current[s] = edit(current[s], rng, step)
            updates.append((s, current[s]))
    return Workload(initial, updates)


# -- the two libraries behind one small interface ----------------------------------------------


def db_file_bytes(path: str) -> int:
    """Size of the database file after folding the WAL back in."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    wal = path + "-wal"
    return os.path.getsize(path) + (os.path.getsize(wal) if os.path.exists(wal) else 0)


class OurSide:
    """eventstore on a SQLite file: the store as a user opens it, plus its storage options."""

    def __init__(
        self, path: str, *, synchronous: str, compress: bool, deltas: bool, feed: bool = True
    ) -> None:
        self.path = path
        self.backend = SQLiteBackend(path, synchronous=synchronous)
        options: dict[str, Any] = {}
        if not compress:
            # No full state ever reaches the zstd threshold.
            options["compress_threshold"] = 10**9
        if not deltas:
            # Deltas are only made against a cached keyframe; with no cache every version is full.
            options["keyframe_cache_bytes"] = 0
        self.store = EventStore(self.backend, **options)
        if not feed:
            self.store.create_table(feed_partitions=0)  # appends write no feed entry or counter
        self.ids: list[str] = []
        self.versions: list[int] = []

    def synchronous(self) -> int:
        return int(self.backend._connection().execute("PRAGMA synchronous").fetchone()[0])

    def create(self, order: BenchOrder) -> None:
        v = self.store.append(order)
        self.ids.append(v.resource_id)
        self.versions.append(v.version)

    def update(self, s: int, order: BenchOrder) -> None:
        v = self.store.append(order, resource_id=self.ids[s], expected_version=self.versions[s])
        self.versions[s] = v.version

    def read_number(self, s: int, n: int) -> BenchOrder:
        return self.store.read_version(BenchOrder, self.ids[s], n).state

    def read_latest(self, s: int) -> BenchOrder:
        return self.store.read_version(BenchOrder, self.ids[s]).state

    def stored_bytes(self) -> int:
        """Sum of DynamoDB item sizes (eventstore.backends.sizes.item_size) of every item in the table."""
        total = 0
        start = None
        while True:
            page = self.backend.scan(start=start)
            total += sum(item_size(item) for item in page.items)
            if page.last_key is None:
                return total
            start = page.last_key

    def close(self) -> None:
        self.store.close()


class ESOrder(Aggregate):
    """The order as an eventsourcing aggregate: each event carries the whole document."""

    @event("Created")
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    @event("Updated")
    def update(self, state: dict[str, Any]) -> None:
        self.state = state


class Shop(Application[uuid.UUID]):
    pass


class LibSide:
    """eventsourcing's Application on its SQLite module; reads through its recorder and mapper."""

    def __init__(self, path: str, *, synchronous: str, compress: bool) -> None:
        self.path = path
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
        if compress:
            env["COMPRESSOR_TOPIC"] = "eventsourcing.compressor:ZlibCompressor"
        self.app = Shop(env=env)
        self.pool = self.app.factory.datastore.pool  # type: ignore[attr-defined]
        if SYNC_LEVELS[synchronous.upper()] != self.synchronous():
            # It has no setting for this: set it on every connection its pool holds or opens.
            pragma = f"PRAGMA synchronous={synchronous.upper()}"
            for conn in list(self.pool._pool):
                conn._sqlite_conn.execute(pragma)
            create = self.pool._create_connection

            def create_with_pragma() -> Any:
                conn = create()
                conn._sqlite_conn.execute(pragma)
                return conn

            self.pool._create_connection = create_with_pragma
        self.aggregates: list[ESOrder] = []

    def synchronous(self) -> int:
        conn = self.pool.get_connection(is_writer=False)
        try:
            return int(conn._sqlite_conn.execute("PRAGMA synchronous").fetchone()[0])
        finally:
            self.pool.put_connection(conn)

    def create(self, order: BenchOrder) -> None:
        agg = ESOrder(order.model_dump(mode="json"))
        self.app.save(agg)
        self.aggregates.append(agg)

    def update(self, s: int, order: BenchOrder) -> None:
        # The aggregate's version is the expected version: a stale one fails on the primary key.
        agg = self.aggregates[s]
        agg.update(order.model_dump(mode="json"))
        self.app.save(agg)

    def read_number(self, s: int, n: int) -> BenchOrder:
        (stored,) = self.app.recorder.select_events(self.aggregates[s].id, gt=n - 1, lte=n)
        return self._state(stored)

    def read_latest(self, s: int) -> BenchOrder:
        (stored,) = self.app.recorder.select_events(self.aggregates[s].id, desc=True, limit=1)
        return self._state(stored)

    def _state(self, stored: Any) -> BenchOrder:
        # Decoded by its mapper (transcoder, decompression), then validated like our reads are.
        domain_event: Any = self.app.mapper.to_domain_event(stored)
        return BenchOrder.model_validate(domain_event.state)

    def stored_bytes(self) -> int:
        """Bytes of its events rows: originator id, version (8), topic, state."""
        connection = sqlite3.connect(self.path)
        ((total,),) = connection.execute(
            "SELECT SUM(LENGTH(originator_id) + 8 + LENGTH(topic) + LENGTH(state)) "
            "FROM stored_events"
        ).fetchall()
        connection.close()
        return int(total)

    def close(self) -> None:
        self.app.close()


class PlainSide:
    """The floor of this design: plain ``sqlite3``, one JSON row per version (the pydantic JSON of
    the state), inserted in its own transaction under a (stream, version) primary key, which is
    the optimistic-concurrency check; reads select one row and validate it."""

    def __init__(self, path: str, *, synchronous: str) -> None:
        self.path = path
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self.connection.execute(
            "CREATE TABLE versions (stream TEXT, version INTEGER, body BLOB, "
            "PRIMARY KEY (stream, version)) WITHOUT ROWID"
        )
        self.versions: list[int] = []

    def synchronous(self) -> int:
        return int(self.connection.execute("PRAGMA synchronous").fetchone()[0])

    def _insert(self, s: int, version: int, order: BenchOrder) -> None:
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.execute(
            "INSERT INTO versions VALUES (?, ?, ?)", (f"s{s}", version, order.model_dump_json())
        )
        self.connection.execute("COMMIT")

    def create(self, order: BenchOrder) -> None:
        self.versions.append(1)
        self._insert(len(self.versions) - 1, 1, order)

    def update(self, s: int, order: BenchOrder) -> None:
        self.versions[s] += 1
        self._insert(s, self.versions[s], order)

    def read_number(self, s: int, n: int) -> BenchOrder:
        (body,) = self.connection.execute(
            "SELECT body FROM versions WHERE stream = ? AND version = ?", (f"s{s}", n)
        ).fetchone()
        return BenchOrder.model_validate_json(body)

    def read_latest(self, s: int) -> BenchOrder:
        (body,) = self.connection.execute(
            "SELECT body FROM versions WHERE stream = ? ORDER BY version DESC LIMIT 1", (f"s{s}",)
        ).fetchone()
        return BenchOrder.model_validate_json(body)

    def stored_bytes(self) -> int:
        ((total,),) = self.connection.execute(
            "SELECT SUM(LENGTH(stream) + 8 + LENGTH(body)) FROM versions"
        ).fetchall()
        return int(total)

    def close(self) -> None:
        self.connection.close()


Side = OurSide | LibSide | PlainSide


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Clock:
    """Wall-clock and CPU seconds spent by one side, summed over its blocks."""

    wall: float = 0.0
    cpu: float = 0.0
    ops: int = 0

    def run(self, ops: list[Callable[[], object]]) -> None:
        cpu = time.process_time()
        start = time.perf_counter()
        for op in ops:
            op()
        self.wall += time.perf_counter() - start
        self.cpu += time.process_time() - cpu
        self.ops += len(ops)

    @property
    def per_s(self) -> float:
        return self.ops / self.wall

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.ops * 1e6


def interleaved(
    sides: dict[str, Side],
    blocks: list[Callable[[Side], list[Callable[[], object]]]],
    profile: tuple[str, cProfile.Profile] | None = None,
) -> dict[str, Clock]:
    """Run each block on every side in turn, rotating who goes first, and time each side's
    share: a burst of disk or CPU contention then lands on all sides alike."""
    clocks = {name: Clock() for name in sides}
    names = list(sides)
    for i, block in enumerate(blocks):
        gc.collect()
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            ops = block(sides[name])
            if profile is not None and profile[0] == name:
                profile[1].enable()
                clocks[name].run(ops)
                profile[1].disable()
            else:
                clocks[name].run(ops)
    return clocks


def append_blocks(
    workload: Workload, size: int
) -> list[Callable[[Side], list[Callable[[], object]]]]:
    steps: list[tuple[int, BenchOrder]] = [(-1, order) for order in workload.initial]
    steps += workload.updates

    def block(chunk: list[tuple[int, BenchOrder]]) -> Callable[[Side], list[Callable[[], object]]]:
        def ops(side: Side) -> list[Callable[[], object]]:
            return [
                partial(side.create, o) if s < 0 else partial(side.update, s, o) for s, o in chunk
            ]

        return ops

    return [block(steps[i : i + size]) for i in range(0, len(steps), size)]


def read_blocks(
    reads: list[tuple[int, int | None]], size: int
) -> list[Callable[[Side], list[Callable[[], object]]]]:
    def block(chunk: list[tuple[int, int | None]]) -> Callable[[Side], list[Callable[[], object]]]:
        def ops(side: Side) -> list[Callable[[], object]]:
            return [
                partial(side.read_latest, s) if n is None else partial(side.read_number, s, n)
                for s, n in chunk
            ]

        return ops

    return [block(reads[i : i + size]) for i in range(0, len(reads), size)]


def make_reads(
    workload: Workload, count: int, seed: int
) -> tuple[list[tuple[int, int | None]], ...]:
    """Random versions of random streams, and random streams' latest versions."""
    rng = random.Random(seed + 1)
    per_stream = [1] * workload.streams
    for s, _ in workload.updates:
        per_stream[s] += 1
    by_number: list[tuple[int, int | None]] = []
    for _ in range(count):
        s = rng.randrange(workload.streams)
        by_number.append((s, rng.randint(1, per_stream[s])))
    latest: list[tuple[int, int | None]] = [
        (rng.randrange(workload.streams), None) for _ in range(count)
    ]
    return by_number, latest


def run(
    workload: Workload,
    reads: int,
    seed: int,
    synchronous: str,
    folder: str,
    *,
    block: int = 100,
    profile: cProfile.Profile | None = None,
) -> dict[str, dict[str, Any]]:
    def db(name: str) -> str:
        return os.path.join(folder, name + ".db")

    sides: dict[str, Side] = {
        "eventstore": OurSide(db("es"), synchronous=synchronous, compress=True, deltas=True),
        "eventsourcing": LibSide(db("lib"), synchronous=synchronous, compress=False),
        "eventstore_zstd_no_delta": OurSide(
            db("es-zstd"), synchronous=synchronous, compress=True, deltas=False
        ),
        "eventstore_raw_json": OurSide(
            db("es-raw"), synchronous=synchronous, compress=False, deltas=False
        ),
        "eventsourcing_zlib": LibSide(db("lib-zlib"), synchronous=synchronous, compress=True),
        "eventstore_no_feed": OurSide(
            db("es-no-feed"), synchronous=synchronous, compress=True, deltas=True, feed=False
        ),
        "plain_sqlite3": PlainSide(db("plain"), synchronous=synchronous),
    }
    appends = interleaved(
        sides,
        append_blocks(workload, block),
        ("eventstore", profile) if profile is not None else None,
    )
    main_sides = {name: sides[name] for name in ("eventstore", "eventsourcing", "plain_sqlite3")}
    # What comes back is what was written, on both sides.
    s_last, o_last = workload.updates[-1]
    for side in main_sides.values():
        assert side.read_latest(s_last) == o_last
        assert side.read_number(s_last, 1) == workload.initial[s_last]
    by_number, latest = make_reads(workload, reads, seed)
    read_n = interleaved(main_sides, read_blocks(by_number, block))
    read_l = interleaved(main_sides, read_blocks(latest, block))
    out: dict[str, dict[str, Any]] = {}
    for name, side in sides.items():
        figures: dict[str, Any] = {
            "appends_per_s": appends[name].per_s,
            "append_cpu_us": appends[name].cpu_us,
            "synchronous": side.synchronous(),
            "stored_bytes_per_version": side.stored_bytes() / workload.versions,
        }
        if name in main_sides:
            figures["read_version_per_s"] = read_n[name].per_s
            figures["read_latest_per_s"] = read_l[name].per_s
        side.close()
        figures["file_bytes_per_version"] = db_file_bytes(side.path) / workload.versions
        out[name] = figures
    return out


# -- driver ------------------------------------------------------------------------------------

SYNC_LEVELS = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}
SYNC_NAMES = {v: k for k, v in SYNC_LEVELS.items()}


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "eventstore": dist_version("eventstore"),
        "eventsourcing": dist_version("eventsourcing"),
        "pydantic": dist_version("pydantic"),
        "zstandard": dist_version("zstandard"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4000, help="versions per library (default 4000)")
    parser.add_argument("--streams", type=int, default=200, help="streams (default 200)")
    parser.add_argument("--reads", type=int, default=4000, help="reads of each kind (default 4000)")
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile eventstore's appends into FILE (pstats format)"
    )
    args = parser.parse_args(argv)
    if args.n <= args.streams:
        parser.error("--n must be larger than --streams (every stream gets updates)")

    started = time.perf_counter()
    info = machine()
    workload = make_workload(args.n, args.streams, args.seed)
    doc_bytes = len(workload.initial[0].model_dump_json().encode())
    profile = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory(prefix="es-bench-") as folder:
        # Warm up both code paths (imports, pydantic schemas, statement caches) on a small run.
        warm = os.path.join(folder, "warm-up")
        os.mkdir(warm)
        run(make_workload(300, 20, args.seed + 100), 300, args.seed, args.synchronous, warm)
        results = run(workload, args.reads, args.seed, args.synchronous, folder, profile=profile)
    if profile is not None:
        profile.dump_stats(args.profile)

    report = {
        "command": "python bench/sqlite_appends.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": info,
        "workload": {
            "versions": workload.versions,
            "streams": workload.streams,
            "reads_each": args.reads,
            "document_json_bytes": doc_bytes,
            "synchronous": args.synchronous.upper(),
            "journal_mode": "WAL",
            "seconds": round(time.perf_counter() - started, 1),
        },
        "results": results,
    }
    print(json.dumps(report, indent=2) if args.json else markdown(report))
    if args.profile:
        stats = pstats.Stats(args.profile, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(25)
    return 0


def markdown(report: dict[str, Any]) -> str:
    m, w, r = report["machine"], report["workload"], report["results"]
    ours, lib = r["eventstore"], r["eventsourcing"]

    def n(x: float) -> str:
        return f"{x:,.0f}"

    rows = [
        ("appends/s", n(ours["appends_per_s"]), n(lib["appends_per_s"])),
        ("CPU µs per append", n(ours["append_cpu_us"]), n(lib["append_cpu_us"])),
        (
            "read one version by number/s",
            n(ours["read_version_per_s"]),
            n(lib["read_version_per_s"]),
        ),
        ("read latest/s", n(ours["read_latest_per_s"]), n(lib["read_latest_per_s"])),
        (
            "file bytes per version",
            n(ours["file_bytes_per_version"]),
            n(lib["file_bytes_per_version"]),
        ),
        (
            "stored bytes per version",
            n(ours["stored_bytes_per_version"]),
            n(lib["stored_bytes_per_version"]),
        ),
    ]
    lines = [
        f"{w['versions']:,} versions over {w['streams']} streams, {w['document_json_bytes']:,} B "
        f"JSON document, {w['reads_each']:,} reads of each kind; SQLite file, journal_mode=WAL, "
        f"synchronous={w['synchronous']} (read back from the connections: eventstore "
        f"{SYNC_NAMES[ours['synchronous']]}, eventsourcing {SYNC_NAMES[lib['synchronous']]}).",
        "",
        f"| | eventstore {m['eventstore']} (default: zstd + keyframe deltas) "
        f"| eventsourcing {m['eventsourcing']} (default: uncompressed) |",
        "|---|---:|---:|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
        "Storage options, same workload, timed in the same interleaved blocks:",
        "",
        "| variant | appends/s | CPU µs per append | file bytes/version | stored bytes/version |",
        "|---|---:|---:|---:|---:|",
    ]
    variants = [
        ("eventstore, raw JSON (no zstd, no deltas)", r["eventstore_raw_json"]),
        ("eventstore, zstd, no deltas", r["eventstore_zstd_no_delta"]),
        ("eventstore, zstd + deltas (default)", ours),
        ("eventstore, zstd + deltas, table without a feed", r["eventstore_no_feed"]),
        ("eventsourcing, uncompressed (default)", lib),
        ("eventsourcing, zlib (COMPRESSOR_TOPIC)", r["eventsourcing_zlib"]),
        ("plain sqlite3: one JSON row per version (the floor)", r["plain_sqlite3"]),
    ]
    lines += [
        f"| {name} | {n(v['appends_per_s'])} | {n(v['append_cpu_us'])} | "
        f"{n(v['file_bytes_per_version'])} | {n(v['stored_bytes_per_version'])} |"
        for name, v in variants
    ]
    plain = r["plain_sqlite3"]

    def ratio(key: str, other: dict[str, Any]) -> float:
        return float(ours[key]) / float(other[key])

    def verdict(value: float, target: float) -> str:
        return "met" if value >= target else "**MISSED**"

    targets = [
        ("appends/s", "appends_per_s", 1.1),
        ("read one version by number/s", "read_version_per_s", 1.0),
        ("read latest/s", "read_latest_per_s", 1.0),
    ]
    lines += [
        "",
        "eventstore against eventsourcing (targets of issue 14) and against the floor:",
        "",
        "| measure | eventstore / eventsourcing | target | | eventstore / plain sqlite3 |",
        "|---|---:|---:|---|---:|",
        *(
            f"| {label} | {ratio(key, lib):.2f} | >= {target:.1f} | "
            f"{verdict(ratio(key, lib), target)} | {ratio(key, plain):.2f} |"
            for label, key, target in targets
        ),
    ]
    lines += [
        "",
        f"Machine: {m['cpus']} CPUs ({m['processor']}), {m['platform']}, Python {m['python']}, "
        f"SQLite {m['sqlite']}, pydantic {m['pydantic']}, zstandard {m['zstandard']}; "
        f"load average at start {m['load_average_at_start']}; run took {w['seconds']} s.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
