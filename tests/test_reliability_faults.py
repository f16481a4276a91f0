"""Randomly faulted operations against DynamoDB Local, then an audit of the table.

A seeded driver runs thousands of operations (appends with the right expected version, with
``ANY`` and with a stale one; reads by number, by version id and latest; whole-stream reads;
projection queries with cursors; a projection rebuild) on a store whose client has a
:class:`tests.faults.FaultInjector` attached: throttling, 500s, connection resets and read timeouts
before requests reach the server, and lost answers after the server applied a request.

It keeps a ledger of every acknowledged append. Afterwards a store without faults reads every
item of every stream back and checks: no version lost, none duplicated, versions gapless, each
head at its newest version (``v`` and ``id``) with the projection keys of that version's state,
and every operation that gave up did so with a typed, documented error.

Run: ``.venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/pytest
tests/test_reliability_faults.py -q -s`` (``EVENTSTORE_LONG=1`` for the long run).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import eventstore
from eventstore import (
    ANY,
    NO_STREAM,
    BackendTimeout,
    BackendUnavailable,
    ConcurrencyError,
    EventStore,
    EventStoreError,
    Resource,
    VersionNotFound,
)
from eventstore.backends.base import Item
from eventstore.keys import stream_pk
from projections import Projection, rebuild
from tests.conftest import DYNAMODB_ENDPOINT, dynamodb_url, new_table_name
from tests.faults import FaultInjector, report, scaled
from tests.invariants import check_stream

pytestmark = [
    pytest.mark.dynamodb,
    pytest.mark.skipif(
        not DYNAMODB_ENDPOINT,
        reason="DynamoDB Local is not running (scripts/dynamodb_local.py run -- pytest ...)",
    ),
]

SEED = int(os.environ.get("EVENTSTORE_FAULT_SEED", "20240611"))
OPERATIONS = scaled(3000, 30000)
STREAMS = scaled(10, 40)
# Few attempts and short backoffs: some operations must run out of retries within the run.
BACKEND_OPTIONS: dict[str, Any] = {"max_attempts": 3, "base_delay": 0.001, "max_delay": 0.01}
GAVE_UP = (BackendUnavailable, BackendTimeout)


class FaultOrder(Resource):
    resource_type = "RelFaultOrder"
    stream: str
    op: int
    n: int
    note: str = ""


class FaultNote(Resource):
    """Trimmed to 4 versions: trimming deletes ride in the faulted appends."""

    resource_type = "RelFaultNote"
    max_versions = 4
    stream: str
    op: int
    n: int


class ByBucket(Projection[FaultOrder]):
    name = "by_bucket"
    index = "gsi1"

    def key(self, state: FaultOrder) -> tuple[str, str] | None:
        if state.n % 5 == 4:
            return None  # sparse: some states leave the index
        return (f"b{state.n % 3}", f"{state.stream}:{state.n:06d}")


class ByOp(Projection[FaultOrder]):
    """Declared only after the faulted run: the rebuild has to write it onto every head."""

    name = "by_op"
    index = "gsi2"

    def key(self, state: FaultOrder) -> tuple[str, str] | None:
        return ("all", f"{state.op:08d}")


@dataclass
class Stream:
    cls: type[FaultOrder] | type[FaultNote]
    rid: str
    known: int = 0  # what the driver believes the stream's version is (0: not created)
    acked: dict[int, tuple[int, str]] = field(default_factory=dict)  # version -> (op, id)


@dataclass
class Run:
    rng: random.Random
    injector: FaultInjector
    streams: list[Stream]
    unknown_ops: set[int] = field(default_factory=set)  # appends that gave up: maybe applied
    ops: Counter[str] = field(default_factory=Counter)
    gave_up: Counter[str] = field(default_factory=Counter)
    recovered: int = 0  # operations that met at least one fault and still succeeded
    conflicts: int = 0
    problems: list[str] = field(default_factory=list)

    def owner(self, s: Stream, number: int, op: int) -> None:
        """Check that version ``number`` of ``s`` read back as ``op`` is allowed by the ledger."""
        acked = s.acked.get(number)
        if acked is not None and acked[0] != op:
            self.problems.append(f"{s.rid} v{number}: ledger op {acked[0]}, read op {op}")
        if acked is None and op not in self.unknown_ops:
            self.problems.append(f"{s.rid} v{number}: op {op} was never appended")


def new_store(table: str, *projections: Projection[Any]) -> EventStore:
    return eventstore.open(dynamodb_url(table), projections=projections, **BACKEND_OPTIONS)


@pytest.fixture
def table() -> Iterator[str]:
    name = new_table_name()
    clean = new_store(name)
    clean.create_table(feed="inline")
    try:
        yield name
    finally:
        clean.backend.delete_table()  # type: ignore[attr-defined]
        clean.close()


def state(s: Stream, op: int, rng: random.Random) -> FaultOrder | FaultNote:
    n = rng.randrange(1000)
    if s.cls is FaultNote:
        return FaultNote(stream=s.rid, op=op, n=n)
    # Now and then a state long enough to be compressed, so keyframes, deltas and raw all occur.
    note = f"order {s.rid} line {n} " * rng.choice((0, 0, 1, 30))
    return FaultOrder(stream=s.rid, op=op, n=n, note=note)


def step(run: Run, store: EventStore, op: int) -> None:
    rng = run.rng
    s = rng.choice(run.streams)
    roll = rng.random()
    if s.known == 0 and roll < 0.6:
        roll = 0.0  # create most streams early
    if roll < 0.42:
        kind = "append"
    elif roll < 0.48:
        kind = "append_any"
    elif roll < 0.55:
        kind = "append_stale"
    elif roll < 0.68:
        kind = "read_number"
    elif roll < 0.74:
        kind = "read_id"
    elif roll < 0.82:
        kind = "read_latest"
    elif roll < 0.90:
        kind = "read_stream"
    else:
        kind = "query"
    run.ops[kind] += 1
    faults = run.injector.total()
    try:
        ACTIONS[kind](run, store, s, op)
    except GAVE_UP as e:
        run.gave_up[type(e).__name__] += 1
        run.gave_up[f"{kind}"] += 1
        if kind.startswith("append"):
            run.unknown_ops.add(op)
        return
    except ConcurrencyError as e:
        # Only an append with the right expected version gets here: an earlier append that gave
        # up was applied after all. The stream can only be ahead of the ledger, never behind.
        run.conflicts += 1
        if e.actual <= s.known:
            run.problems.append(f"{kind} {s.rid}: conflict at {e.actual}, ledger at {s.known}")
        s.known = max(s.known, e.actual)
        return
    except EventStoreError as e:
        run.problems.append(f"{kind} {s.rid}: unexpected {type(e).__name__}: {e}")
        return
    except Exception as e:
        run.problems.append(f"{kind} {s.rid}: raw {type(e).__module__}.{type(e).__name__}: {e}")
        return
    if run.injector.total() > faults:
        run.recovered += 1


def do_append(run: Run, store: EventStore, s: Stream, op: int) -> None:
    if s.known == 0:
        version = store.append(state(s, op, run.rng), resource_id=s.rid, expected_version=NO_STREAM)
    else:
        version = store.append(
            state(s, op, run.rng),
            resource_id=s.rid,
            expected_version=s.known,
            event="changed",
            metadata={"op": op},
        )
    acknowledge(run, s, version.version, op, version.version_id)


def do_append_any(run: Run, store: EventStore, s: Stream, op: int) -> None:
    version = store.append(state(s, op, run.rng), resource_id=s.rid, expected_version=ANY)
    acknowledge(run, s, version.version, op, version.version_id)


def acknowledge(run: Run, s: Stream, number: int, op: int, vid: str) -> None:
    if number in s.acked:
        run.problems.append(
            f"{s.rid} v{number} acknowledged twice (ops {s.acked[number][0]}, {op})"
        )
    if number <= s.known:
        run.problems.append(f"{s.rid}: appended v{number} but the ledger was at {s.known}")
    s.acked[number] = (op, vid)
    s.known = number


def do_append_stale(run: Run, store: EventStore, s: Stream, op: int) -> None:
    if s.known == 0:
        return
    stale = s.known - 1 if s.known > 1 else NO_STREAM
    try:
        version = store.append(state(s, op, run.rng), resource_id=s.rid, expected_version=stale)
    except ConcurrencyError as e:
        if e.actual < s.known:
            run.problems.append(f"stale append {s.rid}: stream at {e.actual} < ledger {s.known}")
        s.known = max(s.known, e.actual)
        return
    run.problems.append(f"stale append {s.rid} at {stale} was accepted as v{version.version}")


def readable(run: Run, s: Stream) -> int | None:
    """A version number the ledger says must be readable (inside the retention window)."""
    if not s.acked:
        return None
    numbers = list(s.acked)
    if s.cls is FaultNote:
        numbers = [n for n in numbers if n > s.known - FaultNote.max_versions]  # type: ignore[operator]
    return run.rng.choice(numbers) if numbers else None


def do_read_number(run: Run, store: EventStore, s: Stream, op: int) -> None:
    number = readable(run, s)
    if number is None:
        return
    try:
        got = store.read_version(s.cls, s.rid, number)
    except VersionNotFound as e:
        # Only a trimmed stream that moved on through appends that gave up may lack it.
        if s.cls is not FaultNote or e.remaining is None or e.remaining[0] <= number:
            run.problems.append(f"read {s.rid} v{number}: {e}")
        return
    run.owner(s, number, got.state.op)
    if got.version_id != s.acked[number][1]:
        run.problems.append(f"read {s.rid} v{number}: id {got.version_id} != {s.acked[number][1]}")


def do_read_id(run: Run, store: EventStore, s: Stream, op: int) -> None:
    number = readable(run, s)
    if number is None:
        return
    vid = s.acked[number][1]
    try:
        got = store.read_version(s.cls, s.rid, vid)
    except VersionNotFound as e:
        if s.cls is not FaultNote or e.remaining is None or e.remaining[0] <= number:
            run.problems.append(f"read {s.rid} {vid}: {e}")
        return
    if (got.version, got.version_id) != (number, vid):
        run.problems.append(f"read {s.rid} by id {vid}: got v{got.version} {got.version_id}")
    run.owner(s, number, got.state.op)


def do_read_latest(run: Run, store: EventStore, s: Stream, op: int) -> None:
    if s.known == 0:
        return
    got = store.read_version(s.cls, s.rid)
    if got.version < s.known:
        run.problems.append(f"latest of {s.rid} is v{got.version}, ledger at {s.known}")
    run.owner(s, got.version, got.state.op)
    s.known = max(s.known, got.version)


def do_read_stream(run: Run, store: EventStore, s: Stream, op: int) -> None:
    if s.known == 0:
        return
    versions = list(store.read_stream(s.cls, s.rid))
    numbers = [v.version for v in versions]
    if not numbers or numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        run.problems.append(f"read_stream {s.rid}: versions {numbers[:5]}... not gapless")
        return
    if numbers[-1] < s.known:
        run.problems.append(f"read_stream {s.rid}: ends at v{numbers[-1]}, ledger at {s.known}")
    if s.cls is FaultOrder and numbers[0] != 1:
        run.problems.append(f"read_stream {s.rid}: untrimmed stream starts at v{numbers[0]}")
    for v in versions:
        run.owner(s, v.version, v.state.op)
    s.known = max(s.known, numbers[-1])


def do_query(run: Run, store: EventStore, s: Stream, op: int) -> None:
    bucket = run.rng.randrange(3)
    page = store.query(ByBucket, f"b{bucket}", limit=run.rng.choice((3, 10, 50)))
    pages = [page]
    if page.cursor is not None:
        pages.append(store.query(ByBucket, f"b{bucket}", limit=10, cursor=page.cursor))
    by_rid = {x.rid: x for x in run.streams}
    for p in pages:
        for v in p.items:
            if not isinstance(v.state, FaultOrder):
                run.problems.append(f"query returned a {type(v.state).__name__}")
                continue
            run.owner(by_rid[v.resource_id], v.version, v.state.op)


ACTIONS: dict[str, Callable[[Run, EventStore, Stream, int], None]] = {
    "append": do_append,
    "append_any": do_append_any,
    "append_stale": do_append_stale,
    "read_number": do_read_number,
    "read_id": do_read_id,
    "read_latest": do_read_latest,
    "read_stream": do_read_stream,
    "query": do_query,
}


# -- the audit, with a store that has no faults ------------------------------------------------


def audit(run: Run, clean: EventStore, projections: list[Projection[Any]]) -> dict[str, int]:
    """Check every stream against the ledger; return figures."""
    problems = run.problems
    seen_ops: dict[int, str] = {}
    figures = Counter[str]()
    for s in run.streams:
        if s.known == 0 and not s.acked:
            continue
        pk = stream_pk(s.cls.resource_type, s.rid)
        found = check_stream(clean, s.cls, s.rid)
        if found is None:
            problems.append(f"{pk}: no items, {len(s.acked)} versions acknowledged")
            continue
        problems += found.problems
        if found.head is None:
            continue
        head, versions, numbers = found.head, found.versions, found.numbers
        limit = s.cls.max_versions
        # Every acknowledged version is there, under its id (or trimmed, below lo).
        for number, (_, vid) in s.acked.items():
            figures["acknowledged"] += 1
            if number < numbers[0] and limit is not None:
                figures["acknowledged_trimmed"] += 1
                continue
            item = versions.get(number)
            if item is None or item["id"] != vid:
                problems.append(f"{pk}: acknowledged v{number} {vid} lost")
                figures["lost"] += 1
        # Decode every stored version: each comes from exactly one operation of the run.
        decoded = list(clean.read_stream(s.cls, s.rid))
        if [v.version for v in decoded] != numbers:
            problems.append(f"{pk}: read_stream gives {[v.version for v in decoded]}")
        newest: Resource | None = None
        for v in decoded:
            figures["stored_versions"] += 1
            op = v.state.op
            if op in seen_ops:
                problems.append(f"{pk} v{v.version}: op {op} stored twice ({seen_ops[op]})")
                figures["duplicates"] += 1
            seen_ops[op] = f"{pk} v{v.version}"
            run.owner(s, v.version, op)
            if v.version not in s.acked:
                figures["unacknowledged_applied"] += 1
            newest = v.state
        # The head carries exactly the projection keys of its newest state.
        if newest is not None:
            wanted = EventStore(clean.backend, projections=projections).indexes.head_attributes(
                s.cls.resource_type, newest
            )
            for name, value in wanted[0].items():
                if head.get(name) != value:
                    problems.append(f"{pk}: head {name}={head.get(name)!r}, expected {value!r}")
            for name in wanted[1]:
                if name in head:
                    problems.append(f"{pk}: head has {name} but its state has no index entry")
    figures["unknown_outcome_appends"] = len(run.unknown_ops)
    return dict(figures)


def test_faulted_operations_lose_nothing(table: str) -> None:
    rng = random.Random(SEED)
    store = new_store(table, ByBucket())
    injector = FaultInjector(store.backend.client, seed=SEED, before_rate=0.2, after_rate=0.1)  # type: ignore[attr-defined]
    streams = [
        Stream(FaultNote if i % 4 == 3 else FaultOrder, f"s{i:03d}#{'x' * (i % 3)}")
        for i in range(STREAMS)
    ]
    run = Run(rng, injector, streams)
    began = time.monotonic()
    for op in range(1, OPERATIONS + 1):
        step(run, store, op)
    driven = time.monotonic() - began

    # Rebuild a projection the run did not maintain, under the same faults; a rebuild that gives
    # up is run again (it resumes from its checkpoint) until it finishes.
    projections: list[Projection[Any]] = [ByBucket(), ByOp()]
    # Harsher than the run (two attempts per request, more faults), so that whole rebuild runs
    # give up and the next one resumes from the saved checkpoint.
    rebuilder = eventstore.open(
        dynamodb_url(table),
        projections=projections,
        **{**BACKEND_OPTIONS, "max_attempts": 2},
    )
    rebuild_injector = FaultInjector(
        rebuilder.backend.client,  # type: ignore[attr-defined]
        seed=SEED + 1,
        before_rate=0.3,
        after_rate=0.15,
    )
    rebuild_runs = rebuild_gave_up = 0
    updated = 0
    for _ in range(200):
        rebuild_runs += 1
        try:
            result = rebuild(rebuilder, ByOp, segments=3, checkpoint_every=0.0)
        except GAVE_UP:
            rebuild_gave_up += 1
            continue
        except Exception as e:
            run.problems.append(f"rebuild: {type(e).__module__}.{type(e).__name__}: {e}")
            break
        updated += result.updated
        break
    else:
        run.problems.append("rebuild never finished in 200 runs")

    clean = new_store(table)
    figures = audit(run, clean, projections)
    total_faults = injector.total() + rebuild_injector.total()
    kinds = Counter(injector.by_kind())
    kinds.update(rebuild_injector.by_kind())
    report(
        "dynamodb_faults",
        {
            "operations": OPERATIONS,
            "streams": STREAMS,
            "seed": SEED,
            "requests_sent": sum(injector.sent.values()) + sum(rebuild_injector.sent.values()),
            "faults_injected": total_faults,
            "faults_by_kind": dict(sorted(kinds.items())),
            "operations_by_kind": dict(sorted(run.ops.items())),
            "operations_retried_ok": run.recovered,
            "operations_gave_up": sum(
                n for k, n in run.gave_up.items() if k in ("BackendUnavailable", "BackendTimeout")
            ),
            "gave_up_by_error": {k: n for k, n in run.gave_up.items() if k.startswith("Backend")},
            "gave_up_by_operation": {
                k: n for k, n in run.gave_up.items() if not k.startswith("Backend")
            },
            "conflicts_from_unknown_outcomes": run.conflicts,
            "rebuild_runs": rebuild_runs,
            "rebuild_gave_up": rebuild_gave_up,
            "rebuild_heads_updated": updated,
            "seconds": round(driven, 1),
            **figures,
            "problems": len(run.problems),
        },
    )
    store.close()
    rebuilder.close()
    assert run.problems == []
    assert figures.get("lost", 0) == 0 and figures.get("duplicates", 0) == 0
    # The run must actually have exercised what it claims to.
    assert total_faults > OPERATIONS // 10
    assert run.recovered > 0 and sum(run.gave_up.values()) > 0
    assert rebuild_injector.total() > 0


# -- every operation, against a server that never answers ----------------------------------------


def test_every_operation_gives_up_with_a_typed_error(table: str) -> None:
    projections: list[Projection[Any]] = [ByBucket(), ByOp()]
    store = new_store(table, *projections)
    first = store.append(FaultOrder(stream="a", op=1, n=1))
    store.query(ByBucket, "b1")  # makes the cursor secret, so a failed query writes nothing
    clean = new_store(table)
    before = dump(clean)
    injector = FaultInjector(store.backend.client, seed=1, before_rate=1.0, after_rate=0.0)  # type: ignore[attr-defined]
    rid = first.resource_id
    calls: dict[str, Callable[[], object]] = {
        "append": lambda: store.append(
            FaultOrder(stream="a", op=2, n=2), resource_id=rid, expected_version=1
        ),
        "append_any": lambda: store.append(
            FaultOrder(stream="a", op=3, n=3), resource_id=rid, expected_version=ANY
        ),
        "append_new": lambda: store.append(FaultOrder(stream="b", op=4, n=4)),
        "read_number": lambda: store.read_version(FaultOrder, rid, 1),
        "read_latest": lambda: store.read_version(FaultOrder, rid),
        "read_stream": lambda: list(store.read_stream(FaultOrder, rid)),
        "replay": lambda: list(store.replay(FaultOrder)),
        "query": lambda: store.query(ByBucket, "b1"),
        "list": lambda: store.list_resources(FaultOrder),
        "rebuild": lambda: rebuild(store, ByOp, checkpoint=False),
    }
    for name, call in calls.items():
        with pytest.raises(EventStoreError) as failed:
            call()
        assert isinstance(failed.value, GAVE_UP), (name, failed.value)
        assert isinstance(failed.value, (ConnectionError, TimeoutError)), name
    injector.detach()
    assert dump(clean) == before
    # Lost answers only: every attempt of the append is applied or recognised, exactly once.
    injector = FaultInjector(store.backend.client, seed=2, before_rate=0.0, after_rate=1.0)  # type: ignore[attr-defined]
    with pytest.raises(GAVE_UP):
        store.append(FaultOrder(stream="a", op=5, n=5), resource_id=rid, expected_version=1)
    injector.detach()
    assert injector.total() == BACKEND_OPTIONS["max_attempts"]
    assert [v.state.op for v in clean.read_stream(FaultOrder, rid)] == [1, 5]
    store.close()
    clean.close()


def dump(store: EventStore) -> list[Item]:
    items: list[Item] = []
    start: Item | None = None
    while True:
        page = store.backend.scan(start=start)
        items += page.items
        if page.last_key is None:
            return sorted(items, key=lambda i: (str(i["pk"]), str(i["sk"])))
        start = page.last_key
