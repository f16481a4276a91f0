"""The indexed feed on DynamoDB Local, with its real DynamoDB Stream: appends that share no item,
an indexer that gives positions exactly once (two indexers at once, one killed mid-batch,
duplicate records, a Lambda batch that fails half-way), repair after lost records, erasure, and
the inline feed's writers that no longer starve."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import pytest

import eventstore
from eventstore import EventStore, IndexTimeout, InvalidInput, Version
from eventstore import records as rec
from eventstore.backends.base import (
    Backend,
    Change,
    ChangeStream,
    Item,
    Key,
    Page,
    Shard,
    TableOptions,
    Write,
)
from eventstore.integrations.aws_lambda import index_event
from tests.conftest import DYNAMODB_ENDPOINT, drop, dynamodb_url, new_table_name
from tests.models import Note, Order

pytestmark = pytest.mark.skipif(
    not DYNAMODB_ENDPOINT, reason="DynamoDB Local is not running (scripts/test starts it)"
)


@pytest.fixture
def url() -> str:
    return dynamodb_url(new_table_name())


@pytest.fixture
def indexed(url: str) -> Iterator[EventStore]:
    store = eventstore.open(url)
    store.create_table()
    try:
        yield store
    finally:
        drop(store)


def index_of(store: EventStore, partition: int = 0) -> list[tuple[int, str, int]]:
    """Every entry of a partition's index, in position order (read without catching up)."""
    found = list(store.indexer.entries_down(partition))
    return sorted(found)


def assert_exactly_once(store: EventStore, acknowledged: Sequence[Version[Any]]) -> None:
    """The index names every acknowledged version once, gapless, each stream in version order."""
    entries = index_of(store)
    assert [p for p, _, _ in entries] == list(range(1, len(entries) + 1))
    named = [(pk, n) for _, pk, n in entries]
    assert len(named) == len(set(named)), "a version has two positions"
    wanted = {(f"Order#{v.resource_id}", v.version) for v in acknowledged}
    assert set(named) == wanted
    last: dict[str, int] = {}
    for pk, n in named:
        assert n == last.get(pk, 0) + 1, f"{pk} version {n} after {last.get(pk)}"
        last[pk] = n


def test_an_indexed_append_writes_only_its_stream(indexed: EventStore, url: str) -> None:
    assert indexed.clock.config() == (rec.INDEXED, 1)
    table = indexed.backend.client.describe_table(TableName=url.split("?")[0][11:])["Table"]  # type: ignore[attr-defined]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    fresh = eventstore.open(url)  # a new store in a process that knows the table: no config read
    before = fresh.backend.usage()
    v = fresh.append(Order(customer="ada"))
    spent = fresh.backend.usage() - before
    assert spent.requests == 1 and v.position is None
    # The same write units as a table without a feed.
    plain = eventstore.open(dynamodb_url(new_table_name()))
    plain.create_table(feed="none")
    try:
        before = plain.backend.usage()
        plain.append(Order(customer="ada"))
        assert (plain.backend.usage() - before).write_units == spent.write_units
    finally:
        drop(plain)
    # Nothing of the feed was written by the append.
    assert indexed.backend.get([rec.counter_key(0)]) == [None]
    found = indexed.wait_indexed(v)
    assert found.position == 1 and found.state == v.state
    assert [x.position for x in indexed.feed()] == [1]
    fresh.close()


def test_positions_after_indexing(indexed: EventStore) -> None:
    a = indexed.append(Order(customer="a"), resource_id="a")
    b = indexed.append(Order(customer="b"), resource_id="b")
    a2 = indexed.append(Order(customer="a", status="paid"), resource_id="a", expected_version=1)
    assert [v.position for v in (a, b, a2)] == [None, None, None]
    assert indexed.last_position() == 3  # catches the index up first
    feed = list(indexed.feed())
    assert [(v.position, v.resource_id, v.version) for v in feed] == [
        (1, "a", 1),
        (2, "b", 1),
        (3, "a", 2),
    ]
    assert [v.position for v in indexed.feed(after=1, types=[Order])] == [2, 3]
    assert indexed.wait_indexed(a2).position == 3
    entries = list(indexed.feed_entries())
    assert [(e.position, e.resource_id) for e in entries] == [(1, "a"), (2, "b"), (3, "a")]
    # One chunk item named all three positions.
    chunks = indexed.backend.query(rec.entry_block(0, 1)).items
    assert len(chunks) == 1 and rec.is_chunk(chunks[0])


def test_wait_indexed_times_out_without_an_indexer(url: str) -> None:
    store = eventstore.open(url, index_on_read=False)
    store.create_table()
    try:
        v = store.append(Order(customer="a"))
        with pytest.raises(IndexTimeout):
            store.wait_indexed(v, timeout=0.3)
        store.indexer.catch_up()
        assert store.wait_indexed(v, timeout=0).position == 1
    finally:
        drop(store)


def test_subscribe_catches_the_index_up(indexed: EventStore) -> None:
    seen: list[int] = []
    with indexed.subscribe(poll_interval=0.05) as live:

        def write() -> None:
            for n in range(3):
                indexed.append(Order(customer=str(n)))
            while len(seen) < 3:
                time.sleep(0.01)
            live.stop()

        threading.Thread(target=write).start()
        for version in live:
            seen.append(version.position or 0)
    assert seen == [1, 2, 3]


def test_projector_runs_on_an_indexed_feed(indexed: EventStore) -> None:
    from projections import run

    for n in range(5):
        indexed.append(Order(customer=str(n)))

    class Count:
        name = "count"

        def __init__(self) -> None:
            self.seen: list[int] = []

        def handle(self, version: Version[Any]) -> None:
            self.seen.append(version.position or 0)

    counter = Count()
    report = run(indexed, counter)
    assert counter.seen == [1, 2, 3, 4, 5] and report.checkpoint == 5


# -- many writers -------------------------------------------------------------------------------


def _follow(store: EventStore, stop: threading.Event, seen: list[int], errors: list[str]) -> None:
    position = 0
    while not stop.is_set():
        for version in store.feed(after=position):
            if version.position != position + 1:
                errors.append(f"after {position} came {version.position}")
            position = version.position or position
            seen.append(position)
        time.sleep(0.01)


def test_16_writer_threads_each_one_request_none_fails(indexed: EventStore, url: str) -> None:
    writers, each = 16, 12
    acknowledged: list[Version[Any]] = []
    requests: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()
    seen: list[int] = []
    errors: list[str] = []
    reader_store = eventstore.open(url)
    reader = threading.Thread(target=_follow, args=(reader_store, stop, seen, errors))
    reader.start()

    def write(n: int) -> None:
        store = eventstore.open(url)
        rid = None
        for k in range(each):
            before = store.backend.usage()
            if rid is None:
                v = store.append(Order(customer=f"w{n}", total_cents=k))
                rid = v.resource_id
            else:
                v = store.append(
                    Order(customer=f"w{n}", total_cents=k), resource_id=rid, expected_version=k
                )
            with lock:
                acknowledged.append(v)
                requests.append((store.backend.usage() - before).requests)
        store.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    stop.set()
    reader.join(timeout=120)
    reader_store.close()
    assert len(acknowledged) == writers * each
    assert set(requests) == {1}
    assert not errors, errors[:5]
    assert seen == list(range(1, len(seen) + 1))
    indexed.indexer.catch_up()
    assert_exactly_once(indexed, acknowledged)


def _process_writer(url: str, n: int, count: int, start: Any, out: Any) -> None:
    os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    store = eventstore.open(url)
    start.wait(timeout=120)
    rid = f"p{n}"
    made = []
    for k in range(count):
        before = store.backend.usage()
        expected = k if k else eventstore.NO_STREAM
        store.append(Order(customer=rid), resource_id=rid, expected_version=expected)
        made.append((rid, k + 1, (store.backend.usage() - before).requests))
    out.put(made)
    store.close()


def test_8_writer_processes(indexed: EventStore, url: str) -> None:
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(8), context.Queue()
    workers = [
        context.Process(target=_process_writer, args=(url, n, 15, start, out)) for n in range(8)
    ]
    for w in workers:
        w.start()
    made = [m for _ in workers for m in out.get(timeout=300)]
    for w in workers:
        w.join(timeout=60)
    # A process reads the table's feed configuration once, with its first append.
    assert len(made) == 8 * 15
    assert {r for _, n, r in made if n > 1} == {1} and {r for _, n, r in made if n == 1} == {2}
    indexed.indexer.catch_up()
    entries = index_of(indexed)
    assert sorted((pk, n) for _, pk, n in entries) == sorted(
        (f"Order#{rid}", n) for rid, n, _ in made
    )
    assert [p for p, _, _ in entries] == list(range(1, 121))


# -- indexers racing, killed, fed duplicates ------------------------------------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "eventstore", *args]


#: The environment of a command-line indexer run against DynamoDB Local.
CLI_ENV = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}


def test_two_indexer_processes_at_once(indexed: EventStore, url: str) -> None:
    acknowledged = [indexed.append(Order(customer=str(n))) for n in range(60)]
    env = CLI_ENV
    runs = [
        subprocess.Popen(_cli("index", url), env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    # More commits while both run.
    acknowledged += [indexed.append(Order(customer=f"x{n}")) for n in range(40)]
    outputs = [r.communicate(timeout=120)[0] for r in runs]
    assert all(r.returncode == 0 for r in runs), outputs
    indexed.indexer.catch_up()
    assert_exactly_once(indexed, acknowledged)


def test_an_indexer_killed_mid_run_resumes(indexed: EventStore, url: str) -> None:
    env = CLI_ENV
    follower = subprocess.Popen(
        _cli("index", url, "--follow", "--interval", "0.01"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    acknowledged: list[Version[Any]] = []
    try:
        for n in range(80):
            acknowledged.append(indexed.append(Order(customer=str(n))))
            if n == 50:
                follower.send_signal(signal.SIGKILL)
    finally:
        follower.kill()
        follower.wait()
    again = EventStore(indexed.backend)  # a restarted indexer: resumes where the index says
    again.indexer.catch_up()
    assert_exactly_once(indexed, acknowledged)


def test_sigterm_stops_a_following_indexer(indexed: EventStore, url: str) -> None:
    env = CLI_ENV
    follower = subprocess.Popen(
        _cli("index", url, "--follow", "--interval", "0.05"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    indexed.append(Order(customer="a"))
    deadline = time.monotonic() + 30
    while indexed.clock.last(0, read=True) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    follower.send_signal(signal.SIGTERM)
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert "1 versions indexed" in out


class _Repeating(ChangeStream):
    """Delivers every batch twice: once as read, once again from before it (a redelivery)."""

    def __init__(self, inner: ChangeStream) -> None:
        self.inner = inner
        self.previous: dict[str, str | None] = {}

    def shards(self) -> list[Shard]:
        return self.inner.shards()

    def read(
        self, shard: str, after: str | None, *, limit: int = 1000
    ) -> tuple[list[Change], bool]:
        if shard in self.previous and self.previous[shard] != after:
            repeat_from = self.previous.pop(shard)
            return self.inner.read(shard, repeat_from, limit=limit)
        self.previous[shard] = after
        return self.inner.read(shard, after, limit=limit)


def test_duplicate_records_are_dropped(indexed: EventStore) -> None:
    acknowledged = [indexed.append(Order(customer=str(n))) for n in range(10)]
    stream = indexed.backend.change_stream()
    assert stream is not None
    indexed.indexer._stream = _Repeating(stream)
    indexed.indexer.catch_up()
    acknowledged += [indexed.append(Order(customer=f"x{n}")) for n in range(5)]
    indexed.indexer.catch_up()
    assert_exactly_once(indexed, acknowledged)


# -- the Lambda handler, fed real stream records -------------------------------------------


def stream_event(store: EventStore) -> dict[str, Any]:
    """Every record the table's stream holds, shaped as Lambda delivers them."""
    stream = store.backend.change_stream()
    assert stream is not None
    client = store.backend._streams_client  # type: ignore[attr-defined]
    arn = stream.arn  # type: ignore[attr-defined]
    found = []
    for shard in stream.shards():
        iterator = client.get_shard_iterator(
            StreamArn=arn, ShardId=shard.shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=1000)
            found += page["Records"]
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    for record in found:
        record["eventSourceARN"] = arn
        record["dynamodb"]["ApproximateCreationDateTime"] = record["dynamodb"][
            "ApproximateCreationDateTime"
        ].timestamp()
    return {"Records": json.loads(json.dumps(found))}


class _FailingSecond(Backend):
    """Passes everything through, but refuses the second index write it sees."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.serialised = inner.serialised
        self.queries_round_once = inner.queries_round_once
        self.index_writes = 0

    def identity(self) -> object | None:
        return self.inner.identity()

    def change_stream(self) -> ChangeStream | None:
        return self.inner.change_stream()

    def write(
        self,
        writes: Sequence[Write],
        *,
        token: str | None = None,
        conflicts: Literal["retry", "raise"] = "retry",
    ) -> Mapping[int, int]:
        if any(w.key[0].startswith("_index") for w in writes):
            self.index_writes += 1
            if self.index_writes == 2:
                raise eventstore.BackendUnavailable("injected: the second index write fails")
        return self.inner.write(writes, token=token, conflicts=conflicts)

    def get(self, keys: Sequence[Key], *, consistent: bool = True) -> list[Item | None]:
        return self.inner.get(keys, consistent=consistent)

    def query(self, pk: str, **kwargs: Any) -> Page:
        return self.inner.query(pk, **kwargs)

    def scan(self, **kwargs: Any) -> Page:
        return self.inner.scan(**kwargs)

    def create_table(self, options: TableOptions | None = None) -> None:
        self.inner.create_table(options)


def test_lambda_handler_with_real_records_and_a_batch_failing_half_way(
    indexed: EventStore,
) -> None:
    from eventstore import indexer as indexing

    acknowledged = [indexed.append(Order(customer=str(n))) for n in range(30)]
    event = stream_event(indexed)
    assert len(event["Records"]) >= 60  # versions and heads
    failing = EventStore(_FailingSecond(indexed.backend), index_on_read=False)
    # Small reads, so that the pass takes several index writes.
    limit, indexing.READ_LIMIT = indexing.READ_LIMIT, 10
    try:
        response = index_event(failing, event)
    finally:
        indexing.READ_LIMIT = limit
    failures = response["batchItemFailures"]
    assert len(failures) == 1
    first = failures[0]["itemIdentifier"]
    sequences = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
    assert first in sequences
    # Some versions were indexed before the failure, none of those after it.
    done = index_of(indexed)
    assert 0 < len(done) < 30
    # Lambda delivers the batch again from the failed record.
    again = {"Records": event["Records"][sequences.index(first) :]}
    assert index_event(EventStore(indexed.backend, index_on_read=False), again) == {
        "batchItemFailures": []
    }
    assert_exactly_once(indexed, acknowledged)
    # The same batch delivered once more changes nothing.
    assert index_event(EventStore(indexed.backend, index_on_read=False), event) == {
        "batchItemFailures": []
    }
    assert_exactly_once(indexed, acknowledged)


def test_lambda_handler_reads_its_url_from_the_environment(
    indexed: EventStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventstore.integrations import aws_lambda

    v = indexed.append(Order(customer="a"))
    monkeypatch.setenv("EVENTSTORE_URL", url)
    assert aws_lambda.handler(stream_event(indexed), None) == {"batchItemFailures": []}
    assert indexed.wait_indexed(v, timeout=0).position == 1
    with pytest.raises(InvalidInput):
        aws_lambda.index_event(indexed, {"nothing": []})


# -- repair, erase, configuration -----------------------------------------------------------


def test_repair_indexes_versions_whose_records_were_lost(indexed: EventStore, url: str) -> None:
    kept = [indexed.append(Order(customer=str(n))) for n in range(3)]
    indexed.indexer.catch_up()
    lost = [indexed.append(Order(customer=f"lost{n}")) for n in range(4)]
    lost.append(
        indexed.append(Order(customer="x"), resource_id=kept[0].resource_id, expected_version=1)
    )
    # The records of those versions expire before anything indexes them: move each shard's
    # progress past them, as if the stream no longer held them.
    stream = indexed.backend.change_stream()
    assert stream is not None
    for shard in stream.shards():
        changes, _ = stream.read(shard.shard_id, None)
        progress = rec.shard_progress(indexed.backend.get([rec.shard_key(shard.shard_id)])[0])
        indexed.backend.write(
            [rec.shard_move(shard.shard_id, progress[0], changes[-1].sequence, done=False)]
        )
    fresh = EventStore(indexed.backend)
    fresh.indexer.catch_up()
    assert len(index_of(indexed)) == 3
    done = subprocess.run(
        _cli("index", url, "--repair"),
        env=CLI_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "5 versions the index lacked are indexed now" in done.stdout
    assert_exactly_once(indexed, kept + lost)


def test_erase_clears_the_index_and_a_new_stream_does_not_repeat(indexed: EventStore) -> None:
    for n in range(3):
        if n == 0:
            indexed.append(Order(customer="p"), resource_id="p")
        else:
            indexed.append(Order(customer="p"), resource_id="p", expected_version=n)
        indexed.append(Order(customer=f"o{n}"))
    # Not indexed yet when the erasure starts: it indexes them first, then clears them.
    report = indexed.erase(Order, "p")
    assert report.feed_entries_cleared == 3
    entries = index_of(indexed)
    assert [e for e in entries if e[1] == "Order#p"] == []
    assert len(entries) == 6
    indexed.append(Order(customer="p again"), resource_id="p")
    feed = [(v.resource_id, v.version) for v in indexed.feed()]
    assert feed.count(("p", 1)) == 1 and len(feed) == 4
    listed = list(indexed.feed_entries())
    assert [e.resource_type for e in listed].count("(erased)") == 3


def test_a_table_keeps_its_feed(indexed: EventStore) -> None:
    indexed.create_table()  # idempotent
    indexed.create_table(feed="indexed", feed_partitions=1)
    with pytest.raises(InvalidInput):
        indexed.create_table(feed="inline")
    with pytest.raises(InvalidInput):
        indexed.create_table(feed_partitions=4)
    with pytest.raises(InvalidInput):
        indexed.create_table(feed="inline", feed_partitions=-1)


def test_partitions_of_an_unconfigured_table_with_data_are_refused(url: str) -> None:
    store = eventstore.open(url)
    store.backend.create_table()  # as from the CloudFormation template: no configuration
    try:
        first = store.append(Order(customer="a"))
        assert first.position == 1  # an implicit inline feed of one partition...
        assert store.backend.get([rec.FEED_CONFIG_KEY])[0] is not None  # ...recorded by it
        for bad in ({"feed_partitions": 4}, {"feed": "indexed"}):
            with pytest.raises(InvalidInput):
                EventStore(store.backend).create_table(**bad)  # type: ignore[arg-type]
        EventStore(store.backend).create_table()  # keeps what it has
        second = store.append(Order(customer="b"))
        assert second.position == 2
    finally:
        drop(store)


def test_an_unconfigured_table_without_data_takes_a_configuration(url: str) -> None:
    store = eventstore.open(url)
    store.backend.create_table()
    try:
        late = EventStore(store.backend)
        late.clock.config()  # learnt "no configuration" before create_table ran
        store.create_table(feed_partitions=4, feed="inline")
        # The late store's first commit tried to record the implicit configuration, found
        # the real one, and went on with it.
        v = late.append(Order(customer="a"), resource_id="x")
        assert late.clock.config() == (rec.INLINE, 4)
        assert v.position == 1
        assert late.clock.partition_of("Order#x") == store.clock.partition_of("Order#x")
    finally:
        drop(store)


# -- the inline feed under many writers ------------------------------------------------------


def test_inline_feed_16_writers_on_one_partition_none_fails(url: str) -> None:
    store = eventstore.open(url)
    store.create_table(feed="inline")
    acknowledged: list[Version[Any]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def write(n: int) -> None:
        mine = EventStore(store.backend)
        for k in range(10):
            try:
                v = mine.append(Order(customer=f"w{n}", total_cents=k))
            except Exception as e:  # counted, not raised: every failure is a defect
                with lock:
                    failures.append(e)
                continue
            with lock:
                acknowledged.append(v)

    try:
        threads = [threading.Thread(target=write, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert failures == []
        assert sorted(v.position or 0 for v in acknowledged) == list(range(1, 161))
    finally:
        drop(store)


def test_inline_feed_transaction_conflict_on_the_counter_is_a_race(url: str) -> None:
    """On AWS, concurrent transactions on the counter are cancelled with TransactionConflict
    (DynamoDB Local never does it): the writer reads the counter again and retries at once."""
    from botocore.exceptions import ClientError

    store = eventstore.open(url)
    store.create_table(feed="inline")
    try:
        store.append(Order(customer="a"))
        other = EventStore(store.backend)
        other.append(Order(customer="b"))  # the first store's guess of the counter is stale
        conflicts = {"left": 2}

        def conflict(**kwargs: Any) -> None:
            if conflicts["left"] and kwargs.get("model").name == "TransactWriteItems":  # type: ignore[union-attr]
                conflicts["left"] -= 1
                items = json.loads(kwargs["params"]["body"])["TransactItems"]
                reasons = [
                    {"Code": "TransactionConflict" if "_feed" in json.dumps(i) else "None"}
                    for i in items
                ]
                raise ClientError(
                    {
                        "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                        "CancellationReasons": reasons,
                    },
                    "TransactWriteItems",
                )

        events = store.backend.client.meta.events  # type: ignore[attr-defined]
        events.register("before-call.dynamodb.TransactWriteItems", conflict)
        try:
            before = store.backend.usage()
            v = store.append(Order(customer="c"))
        finally:
            events.unregister("before-call.dynamodb.TransactWriteItems", conflict)
        assert v.position == 3 and conflicts["left"] == 0
        # Two cancelled attempts and a counter read each, then the write: no sleeping backoff.
        assert (store.backend.usage() - before).requests <= 6
    finally:
        drop(store)


def test_contention_on_the_inline_counter_names_the_partition(url: str) -> None:
    from eventstore import ContentionError

    store = EventStore(eventstore.open(url).backend, contention_budget=0.2, owns_backend=True)
    store.create_table(feed="inline")
    try:
        store.append(Order(customer="a"))

        def steal(**kwargs: Any) -> None:
            # Another commit takes the next position right before each of ours.
            store.backend.client.update_item(  # type: ignore[attr-defined]
                TableName=store.backend.table,  # type: ignore[attr-defined]
                Key={"pk": {"S": "_feed#0"}, "sk": {"S": "counter"}},
                UpdateExpression="SET p = p + :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

        events = store.backend.client.meta.events  # type: ignore[attr-defined]
        events.register("before-call.dynamodb.TransactWriteItems", steal)
        try:
            with pytest.raises(ContentionError) as caught:
                store.append(Order(customer="b"))
        finally:
            events.unregister("before-call.dynamodb.TransactWriteItems", steal)
        assert caught.value.partition == 0
        assert "feed partition 0" in str(caught.value)
    finally:
        drop(store)


def test_note_type_trims_on_an_indexed_feed(indexed: EventStore) -> None:
    """Trimmed versions keep their positions and are passed over."""
    v = indexed.append(Note(text="0"))
    for n in range(1, 8):
        v = indexed.append(Note(text=str(n)), resource_id=v.resource_id, expected_version=n)
    feed = list(indexed.feed())
    assert [x.version for x in feed] == [4, 5, 6, 7, 8]
    assert [x.position for x in feed] == [4, 5, 6, 7, 8]
    assert indexed.last_position() == 8


def test_partitions_of_an_indexed_feed(url: str) -> None:
    store = eventstore.open(url)
    store.create_table(feed_partitions=4)
    try:
        made = [store.append(Order(customer=str(n)), resource_id=f"o{n}") for n in range(24)]
        made.append(store.append(Order(customer="x"), resource_id="o7", expected_version=1))
        store.indexer.catch_up()
        seen: list[tuple[str, int]] = []
        for p in range(4):
            versions = list(store.feed(partition=p))
            assert [v.position for v in versions] == list(range(1, len(versions) + 1))
            assert store.last_position(partition=p) == len(versions)
            assert {store.clock.partition_of(f"Order#{v.resource_id}") for v in versions} <= {p}
            seen += [(v.resource_id, v.version) for v in versions]
        assert sorted(seen) == sorted((v.resource_id, v.version) for v in made)
    finally:
        drop(store)


def test_a_writing_projector_is_exactly_once_on_an_indexed_feed(indexed: EventStore) -> None:
    """A projector whose writes go into the store commits its checkpoint with them; run twice
    (the second run finds nothing new), its read model counts each version once."""
    from eventstore import Append, Resource
    from projections import run

    class Tally(Resource):
        resource_type = "indexed.Tally"
        count: int = 0

    class Counts:
        name = "tally"

        def __init__(self, store: EventStore) -> None:
            self.store = store

        def project(self, version: Version[Any]) -> list[Append[Any]]:
            if version.resource_type != Order.resource_type:
                return []
            try:
                current = self.store.read_version(Tally, "all")
            except eventstore.StreamNotFound:
                return [Append(Tally(count=1), resource_id="all")]
            return [
                Append(
                    Tally(count=current.state.count + 1),
                    resource_id="all",
                    expected_version=current.version,
                )
            ]

    for n in range(6):
        indexed.append(Order(customer=str(n)))
    run(indexed, Counts(indexed))
    run(indexed, Counts(indexed))  # the tally's own versions are in the feed too: passed over
    assert indexed.read_version(Tally, "all").state.count == 6


def test_two_erasures_rewriting_one_chunk(indexed: EventStore) -> None:
    """Another erasure rewrites the chunk between this erasure's read of it and its rewrite:
    the conditional rewrite is refused, read again, and both streams end up blanked."""
    from tests.interleaving import Interleaving

    for rid in ("a", "b", "c"):
        indexed.append(Order(customer=rid), resource_id=rid)
    indexed.indexer.catch_up()
    assert len(indexed.backend.query(rec.entry_block(0, 1)).items) == 1  # one chunk names all

    class RacingWrites(Interleaving):
        def write(self, writes: Sequence[Write], **kwargs: Any) -> Mapping[int, int]:
            if not self.fired and any(rec.CHUNK in getattr(w, "item", {}) for w in writes):
                self.fired = True
                indexed.erase(Order, "b")  # the other erasure lands first
            return self.inner.write(writes, **kwargs)

    racing = EventStore(RacingWrites(indexed.backend, after=0, action=lambda: None))
    report = racing.erase(Order, "a")
    assert report.feed_entries_cleared == 1
    entries = index_of(indexed)
    assert [(p, pk) for p, pk, _ in entries] == [(1, ""), (2, ""), (3, "Order#c")]
