"""The store's contract, run unchanged against every backend (memory, SQLite file, DynamoDB Local)
and, on DynamoDB, against both feed modes that give positions (inline, and indexed: DynamoDB's
default, with a stream on the table); and against the async store (``eventstore.aio``) on each
backend, driven through tests/async_facade.py.

Each test gets a fresh, empty table through the ``store`` fixture.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

import eventstore
from eventstore import (
    ANY,
    NO_STREAM,
    ConcurrencyError,
    EventStore,
    InvalidInput,
    InvalidKey,
    ItemTooLarge,
    Resource,
    StreamNotFound,
    Version,
    VersionNotFound,
    WrongType,
)
from eventstore.backends.base import MAX_ITEM_SIZE, Item
from eventstore.ids import parse_version_id
from eventstore.keys import HEAD_SK, keyframe_sk, stream_pk, version_sk
from tests.async_facade import open_blocking
from tests.conftest import DYNAMODB_ENDPOINT, drop, dynamodb_url, new_table_name
from tests.models import Blob, Note, Order


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        "dynamodb",
        "dynamodb-indexed",
        "async-memory",
        "async-sqlite",
        "async-dynamodb",
    ]
)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str, bool]:
    """A fresh table's URL, its feed mode and whether the async store runs the test: each
    backend, DynamoDB with each mode, and the async store on each backend."""
    name = str(request.param)
    asynchronous = name.startswith("async-")
    name = name.removeprefix("async-")
    if name == "memory":
        return "memory://", "inline", asynchronous
    if name == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'store.db'}", "inline", asynchronous
    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    feed = name.removeprefix("dynamodb-").replace("dynamodb", "inline")
    return dynamodb_url(new_table_name()), feed, asynchronous


@pytest.fixture
def store_url(target: tuple[str, str, bool]) -> str:
    return target[0]


@pytest.fixture
def store(target: tuple[str, str, bool]) -> Iterator[EventStore]:
    url, feed, asynchronous = target
    opened = open_blocking(url) if asynchronous else eventstore.open(url)
    opened.create_table(feed=feed)
    try:
        yield opened
    finally:
        drop(opened)


ULID_ALPHABET = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


class TrimLoose(Resource):
    """Written with no retention limit; TrimTight (same stored type) then lowers it to 3."""

    resource_type = "contract.trim"
    text: str


def _items(store: EventStore) -> list[Item]:
    """Every item of the table (a full scan), sorted by key, but the feed configuration that
    ``create_table`` writes."""
    items: list[Item] = []
    start = None
    while True:
        page = store.backend.scan(start=start)
        items.extend(i for i in page.items if i["pk"] != "_config")
        if page.last_key is None:
            break
        start = page.last_key
    return sorted(items, key=lambda item: (str(item["pk"]), str(item["sk"])))


def _partition(store: EventStore, pk: str) -> list[str]:
    """Sort keys of every item in one stream's partition."""
    sks: list[str] = []
    start = None
    while True:
        page = store.backend.query(pk, start=start)
        sks.extend(str(item["sk"]) for item in page.items)
        if page.last_key is None:
            return sks
        start = page.last_key


def _order(i: int, size: int = 0) -> Order:
    """A distinct Order per ``i``; ``size`` lines of filler make it big enough to compress."""
    return Order(
        customer=f"c-{i}",
        status="new" if i % 2 else "paid",
        total_cents=i,
        lines=[f"line {j} of order, sku {j * 7919 % 1000:04d}" for j in range(size)],
    )


# -- append ------------------------------------------------------------------------------------


def test_append_new_stream_gets_ulid_id(store: EventStore) -> None:
    before = datetime.now(timezone.utc)
    v = store.append(Order(customer="ada"))
    assert isinstance(v, Version)
    assert v.resource_type == "Order"
    assert len(v.resource_id) == 26 and set(v.resource_id) <= ULID_ALPHABET
    assert v.version == 1
    assert len(v.version_id) == 26 and set(v.version_id) <= ULID_ALPHABET
    assert parse_version_id(v.version_id)[0] == 1
    assert v.state == Order(customer="ada")
    assert v.event is None
    assert dict(v.metadata) == {}
    assert v.recorded_at.tzinfo is not None
    assert abs((v.recorded_at - before).total_seconds()) < 60

    other = store.append(Order(customer="bob"))
    assert other.resource_id != v.resource_id
    assert store.read_version(Order, v.resource_id).state.customer == "ada"
    assert store.read_version(Order, other.resource_id).state.customer == "bob"


def test_append_with_given_id(store: EventStore) -> None:
    v1 = store.append(Order(customer="ada"), resource_id="order-1")
    assert (v1.resource_id, v1.version) == ("order-1", 1)
    v2 = store.append(
        Order(customer="ada", status="paid"), resource_id="order-1", expected_version=1
    )
    assert v2.version == 2
    assert store.read_version(Order, "order-1").state.status == "paid"


def test_same_id_different_types_are_different_streams(store: EventStore) -> None:
    store.append(Order(customer="ada"), resource_id="x")
    store.append(Note(text="hello"), resource_id="x")
    assert store.read_version(Order, "x").state == Order(customer="ada")
    assert store.read_version(Note, "x").state == Note(text="hello")


def test_expected_version_int(store: EventStore) -> None:
    v1 = store.append(Order(customer="ada"))
    rid = v1.resource_id
    for n in range(1, 6):
        v = store.append(_order(n), resource_id=rid, expected_version=n)
        assert v.version == n + 1
    assert [v.version for v in store.read_stream(Order, rid)] == [1, 2, 3, 4, 5, 6]


def test_expected_version_no_stream_is_the_default(store: EventStore) -> None:
    store.append(Order(customer="ada"), resource_id="a", expected_version=NO_STREAM)
    with pytest.raises(ConcurrencyError) as info:
        store.append(Order(customer="eve"), resource_id="a")
    assert info.value.expected is NO_STREAM
    assert info.value.actual == 1
    with pytest.raises(ConcurrencyError):
        store.append(Order(customer="eve"), resource_id="a", expected_version=NO_STREAM)
    assert store.read_version(Order, "a").state.customer == "ada"


def test_expected_version_any(store: EventStore) -> None:
    v1 = store.append(Order(customer="ada"), resource_id="a", expected_version=ANY)
    assert v1.version == 1
    v2 = store.append(Order(customer="bob"), resource_id="a", expected_version=ANY)
    v3 = store.append(Order(customer="cy"), resource_id="a", expected_version=ANY)
    assert (v2.version, v3.version) == (2, 3)
    assert [v.state.customer for v in store.read_stream(Order, "a")] == ["ada", "bob", "cy"]


def test_concurrency_error_carries_expected_and_actual_and_writes_nothing(
    store: EventStore,
) -> None:
    v1 = store.append(Order(customer="ada"))
    rid = v1.resource_id
    store.append(_order(2), resource_id=rid, expected_version=1)
    store.append(_order(3), resource_id=rid, expected_version=2)
    before = _items(store)

    for wrong in (1, 2, 4, 17, 1000):
        with pytest.raises(ConcurrencyError) as info:
            store.append(Order(customer="lost"), resource_id=rid, expected_version=wrong)
        err = info.value
        assert (err.expected, err.actual) == (wrong, 3)
        assert (err.resource_type, err.resource_id) == ("Order", rid)
        assert isinstance(err, eventstore.EventStoreError)

    with pytest.raises(ConcurrencyError) as info:
        store.append(Order(customer="lost"), resource_id=rid, expected_version=NO_STREAM)
    assert (info.value.expected, info.value.actual) == (NO_STREAM, 3)

    assert _items(store) == before
    assert store.read_version(Order, rid).version == 3


def test_concurrency_error_on_missing_stream_reports_zero(store: EventStore) -> None:
    # 16 makes the refused append a keyframe position: its keyframe must not be written either.
    for expected in (1, 16):
        with pytest.raises(ConcurrencyError) as info:
            store.append(Order(customer="x"), resource_id="ghost", expected_version=expected)
        assert (info.value.expected, info.value.actual) == (expected, 0)
    assert _items(store) == []
    with pytest.raises(StreamNotFound):
        store.read_version(Order, "ghost")


def test_stale_writer_cannot_lose_an_update(store: EventStore) -> None:
    rid = store.append(Order(customer="ada")).resource_id
    seen_by_a = store.read_version(Order, rid)
    seen_by_b = store.read_version(Order, rid)
    store.append(Order(customer="a-wins"), resource_id=rid, expected_version=seen_by_a.version)
    with pytest.raises(ConcurrencyError) as info:
        store.append(Order(customer="b-lost"), resource_id=rid, expected_version=seen_by_b.version)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert [v.state.customer for v in store.read_stream(Order, rid)] == ["ada", "a-wins"]


# -- reads -------------------------------------------------------------------------------------


def test_read_version_by_number_by_id_and_latest(store: EventStore) -> None:
    written = [store.append(_order(1), resource_id="r")]
    for n in range(2, 6):
        written.append(store.append(_order(n), resource_id="r", expected_version=n - 1))
    for w in written:
        by_number = store.read_version(Order, "r", w.version)
        by_id = store.read_version(Order, "r", w.version_id)
        assert by_number == w
        assert by_id == w
    assert store.read_version(Order, "r") == written[-1]


def test_read_version_with_another_streams_version_id(store: EventStore) -> None:
    a = store.append(Order(customer="a"), resource_id="a")
    store.append(Order(customer="b"), resource_id="b")
    with pytest.raises(VersionNotFound) as info:
        store.read_version(Order, "b", a.version_id)
    assert info.value.requested == a.version_id
    assert info.value.remaining == (1, 1)


def test_read_stream_forward_reverse_start_stop(store: EventStore) -> None:
    store.append(_order(1), resource_id="r")
    for n in range(2, 11):
        store.append(_order(n), resource_id="r", expected_version=n - 1)

    def numbers(**kwargs: object) -> list[int]:
        return [v.version for v in store.read_stream(Order, "r", **kwargs)]  # type: ignore[arg-type]

    assert numbers() == list(range(1, 11))
    assert numbers(reverse=True) == list(range(10, 0, -1))
    assert numbers(start=3) == list(range(3, 11))
    assert numbers(stop=4) == [1, 2, 3]
    assert numbers(start=3, stop=7) == [3, 4, 5, 6]
    assert numbers(start=3, stop=7, reverse=True) == [6, 5, 4, 3]
    assert numbers(start=5, stop=6) == [5]
    assert numbers(start=5, stop=5) == []
    assert numbers(start=7, stop=3) == []
    assert numbers(start=11) == []
    assert numbers(start=9, stop=100) == [9, 10]
    states = [v.state for v in store.read_stream(Order, "r")]
    assert states == [_order(n) for n in range(1, 11)]


def test_read_stream_is_lazy(store: EventStore) -> None:
    store.append(Order(customer="a"), resource_id="r")
    stream = store.read_stream(Order, "r")
    assert isinstance(stream, Iterator)
    assert next(stream).version == 1


def test_stream_not_found(store: EventStore) -> None:
    store.append(Order(customer="a"), resource_id="exists")
    with pytest.raises(StreamNotFound) as info:
        store.read_version(Order, "missing")
    assert (info.value.resource_type, info.value.resource_id) == ("Order", "missing")
    with pytest.raises(StreamNotFound):
        store.read_version(Order, "missing", 1)
    with pytest.raises(StreamNotFound):
        store.read_version(Note, "exists")  # same id, other type
    with pytest.raises(StreamNotFound):
        list(store.read_stream(Order, "missing"))
    with pytest.raises(StreamNotFound):
        list(store.read_stream(Order, "missing", reverse=True))
    with pytest.raises(StreamNotFound):
        list(store.read_stream(Order, "missing", start=2))
    # A LookupError, so generic "not found" handlers catch it too.
    assert isinstance(info.value, LookupError)


def test_version_not_found_names_remaining_range(store: EventStore) -> None:
    store.append(_order(1), resource_id="r")
    store.append(_order(2), resource_id="r", expected_version=1)
    store.append(_order(3), resource_id="r", expected_version=2)
    for missing in (4, 99, 2**32 - 1):
        with pytest.raises(VersionNotFound) as info:
            store.read_version(Order, "r", missing)
        assert info.value.requested == missing
        assert info.value.remaining == (1, 3)
        assert "1-3" in str(info.value)


def test_trimming_with_max_versions(store: EventStore) -> None:
    written = [store.append(Note(text="n1"), resource_id="n")]
    for n in range(2, 13):
        written.append(store.append(Note(text=f"n{n}"), resource_id="n", expected_version=n - 1))
    assert [v.version for v in store.read_stream(Note, "n")] == [8, 9, 10, 11, 12]
    assert [v.state.text for v in store.read_stream(Note, "n", reverse=True)] == [
        "n12",
        "n11",
        "n10",
        "n9",
        "n8",
    ]
    for gone in (1, 3, 7):
        with pytest.raises(VersionNotFound) as info:
            store.read_version(Note, "n", gone)
        assert info.value.remaining == (8, 12)
        assert "8-12" in str(info.value)
        with pytest.raises(VersionNotFound) as info:
            store.read_version(Note, "n", written[gone - 1].version_id)
        assert info.value.remaining == (8, 12)
    for kept in range(8, 13):
        assert store.read_version(Note, "n", kept) == written[kept - 1]
        assert store.read_version(Note, "n", written[kept - 1].version_id) == written[kept - 1]
    # Asking from before the retained range gives what is retained.
    assert [v.version for v in store.read_stream(Note, "n", start=2, stop=10)] == [8, 9]


def test_trimming_removes_old_items_and_keyframes(store: EventStore) -> None:
    store.append(Note(text="t1"), resource_id="n")
    for n in range(2, 41):
        store.append(Note(text=f"t{n}"), resource_id="n", expected_version=n - 1)
    # Versions 36-40 remain; they all use keyframe 33. Keyframes 1 and 17 must be gone.
    assert _partition(store, stream_pk("Note", "n")) == sorted(
        [HEAD_SK, keyframe_sk(33), *(version_sk(n) for n in range(36, 41))]
    )
    assert [v.state.text for v in store.read_stream(Note, "n")] == [f"t{n}" for n in range(36, 41)]


def test_lowering_max_versions_trims_past_one_write(store: EventStore) -> None:
    # 150 versions kept, then the limit drops to 3: the next append must remove 147 versions and
    # their keyframes, more than one atomic write can carry.
    store.append(TrimLoose(text="1"), resource_id="t")
    for n in range(2, 151):
        store.append(TrimLoose(text=str(n)), resource_id="t", expected_version=n - 1)

    class TrimTight(Resource):
        # The same class, redeployed with a lower limit (a different class may not take the name).
        __qualname__ = "TrimLoose"
        resource_type = "contract.trim"
        max_versions = 3
        text: str

    v = store.append(TrimTight(text="151"), resource_id="t", expected_version=150)
    assert v.version == 151
    assert [x.state.text for x in store.read_stream(TrimTight, "t")] == ["149", "150", "151"]
    assert _partition(store, stream_pk("contract.trim", "t")) == sorted(
        [HEAD_SK, keyframe_sk(145), *(version_sk(n) for n in (149, 150, 151))]
    )
    with pytest.raises(VersionNotFound) as info:
        store.read_version(TrimTight, "t", 148)
    assert info.value.remaining == (149, 151)


def test_event_and_metadata_round_trip(store: EventStore) -> None:
    metadata = {
        "actor": "u-7",
        "correlation_id": "c-1",
        "n": 3,
        "ratio": 0.1,
        "flags": [True, False, None],
        "nested": {"a": {"b": ["x", 1.5]}},
        "unicode": "h\u00e9llo \U0001f600",
    }
    v1 = store.append(Order(customer="a"), resource_id="r", event="created", metadata=metadata)
    assert v1.event == "created"
    assert dict(v1.metadata) == metadata
    v2 = store.append(Order(customer="b"), resource_id="r", expected_version=1, event="x" * 256)
    read = store.read_version(Order, "r", 1)
    assert read.event == "created"
    assert dict(read.metadata) == metadata
    assert store.read_version(Order, "r", 2).event == v2.event == "x" * 256
    assert dict(store.read_version(Order, "r", 2).metadata) == {}

    with pytest.raises(TypeError):
        read.metadata["actor"] = "mallory"  # type: ignore[index]
    with pytest.raises(TypeError):
        v1.metadata["actor"] = "mallory"  # type: ignore[index]
    assert store.read_version(Order, "r", 1).metadata["actor"] == "u-7"


def test_version_is_immutable(store: EventStore) -> None:
    state = Order(customer="ada", lines=["a"])
    v = store.append(state, resource_id="r")
    for field in ("version", "version_id", "state", "event", "metadata", "resource_id"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(v, field, None)
    # The returned state is a copy: changing the caller's object (or the returned one) does not
    # change what is stored.
    state.lines.append("b")
    state.customer = "eve"
    assert v.state == Order(customer="ada", lines=["a"])
    read = store.read_version(Order, "r")
    read.state.lines.append("c")
    assert store.read_version(Order, "r").state == Order(customer="ada", lines=["a"])


def test_version_ids_strictly_increase_within_a_stream(store: EventStore) -> None:
    ids = [store.append(_order(1), resource_id="r").version_id]
    for n in range(2, 41):
        ids.append(store.append(_order(n), resource_id="r", expected_version=n - 1).version_id)
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert [parse_version_id(i)[0] for i in ids] == list(range(1, 41))
    assert [v.version_id for v in store.read_stream(Order, "r")] == ids
    assert len(set(ids)) == len(ids)


# -- replay ------------------------------------------------------------------------------------


def _check_replay(
    versions: list[Version[Resource]], expected: dict[tuple[str, str], list[int]]
) -> None:
    got: dict[tuple[str, str], list[int]] = {}
    last_key: tuple[str, str] | None = None
    for v in versions:
        key = (v.resource_type, v.resource_id)
        if key != last_key:
            # Each stream comes as one contiguous run.
            assert key not in got, f"stream {key} interleaved with another"
            got[key] = []
            last_key = key
        got[key].append(v.version)
    assert got == expected


def test_replay_covers_every_retained_version(store: EventStore) -> None:
    expected: dict[tuple[str, str], list[int]] = {}
    for i in range(4):
        rid = store.append(_order(i)).resource_id
        for n in range(2, 2 + i):
            store.append(_order(i * 100 + n), resource_id=rid, expected_version=n - 1)
        expected[("Order", rid)] = list(range(1, 2 + i))
    for i in range(3):
        rid = f"note-{i}"
        store.append(Note(text="0"), resource_id=rid)
        last = 3 + 3 * i  # 3, 6 and 9 versions; Note keeps 5
        for n in range(2, last + 1):
            store.append(Note(text=str(n)), resource_id=rid, expected_version=n - 1)
        expected[("Note", rid)] = list(range(max(1, last - 4), last + 1))

    orders = list(store.replay(Order))
    _check_replay(orders, {k: v for k, v in expected.items() if k[0] == "Order"})
    notes = list(store.replay(Note))
    _check_replay(notes, {k: v for k, v in expected.items() if k[0] == "Note"})
    for v in notes:
        assert isinstance(v.state, Note)
        assert v.state == store.read_version(Note, v.resource_id, v.version).state

    everything = list(store.replay())
    _check_replay(everything, expected)
    assert {v.version_id for v in everything} == {v.version_id for v in orders + notes}


def test_replay_of_an_empty_type(store: EventStore) -> None:
    assert list(store.replay(Order)) == []
    assert list(store.replay()) == []


def test_replay_is_lazy(store: EventStore) -> None:
    # 12 streams of 20 versions: far more than one page of anything.
    for i in range(12):
        rid = store.append(_order(i)).resource_id
        for n in range(2, 21):
            store.append(_order(i * 100 + n), resource_id=rid, expected_version=n - 1)
    replay = store.replay(Order)
    assert isinstance(replay, Iterator)
    before = store.backend.requests()
    first = next(replay)
    after_first = store.backend.requests()
    assert first.version == 1
    rest = list(replay)
    after_all = store.backend.requests()
    assert len(rest) == 12 * 20 - 1
    if store.backend.requests():
        # The first version comes without reading every stream: at least half of the requests
        # of the whole replay are still to come.
        assert after_first - before <= (after_all - before) / 2, (after_first, after_all)


# -- keyframes and deltas ----------------------------------------------------------------------


def test_many_small_edits_read_back_exactly_at_every_version(store: EventStore) -> None:
    # 45 versions cross the keyframes at 1, 17 and 33; each state is big enough to compress and
    # differs from the previous one by a small edit, so versions in between are stored as deltas.
    states = []
    state = _order(0, size=40)
    for n in range(1, 46):
        lines = list(state.lines)
        lines[n % len(lines)] = f"edited at {n}"
        if n % 5 == 0:
            lines.append(f"added at {n}")
        if n % 7 == 0:
            lines.pop(0)
        state = Order(customer="ada", status=f"s{n % 3}", total_cents=n, lines=lines)
        states.append(state)
    states[20] = states[16]  # equal to its keyframe's state: stored as "same as keyframe"
    states[21] = states[15]  # equal to the previous block's last state

    written = [store.append(states[0], resource_id="r")]
    for n in range(2, 46):
        written.append(store.append(states[n - 1], resource_id="r", expected_version=n - 1))
        assert store.read_version(Order, "r").state == states[n - 1]

    for n in range(1, 46):
        assert store.read_version(Order, "r", n) == written[n - 1]
        assert store.read_version(Order, "r", written[n - 1].version_id).state == states[n - 1]
    assert [v.state for v in store.read_stream(Order, "r")] == states
    assert [v.state for v in store.read_stream(Order, "r", reverse=True)] == states[::-1]
    for start, stop in ((2, 17), (16, 18), (17, 33), (18, 40), (33, 34), (30, 46)):
        assert [v.state for v in store.read_stream(Order, "r", start=start, stop=stop)] == (
            states[start - 1 : stop - 1]
        )
        assert [
            v.state for v in store.read_stream(Order, "r", start=start, stop=stop, reverse=True)
        ] == states[start - 1 : stop - 1][::-1]


def test_two_writers_without_shared_keyframe_cache(store: EventStore, store_url: str) -> None:
    # A second EventStore on the same table has its own keyframe cache: appends must be correct
    # whether the keyframe was cached, learnt from a read, or unknown.
    other = EventStore(store.backend) if store_url == "memory://" else eventstore.open(store_url)
    states = [_order(n, size=30) for n in range(1, 41)]
    store.append(states[0], resource_id="r")
    for n in range(2, 41):
        writer = store if n % 3 else other
        if n % 4 == 0:
            writer.read_version(Order, "r")
        writer.append(states[n - 1], resource_id="r", expected_version=n - 1)
    for reader in (store, other):
        assert [v.state for v in reader.read_stream(Order, "r")] == states
        for n in range(1, 41):
            assert reader.read_version(Order, "r", n).state == states[n - 1]
    if other is not store and store_url != "memory://":
        other.close()


# -- large states ------------------------------------------------------------------------------


def test_large_blobs_trimmed_to_the_last_five(store: EventStore) -> None:
    # The example of the issue: 20 versions of ~150 KB random bytes, max_versions=5.
    blobs = [os.urandom(150 * 1024) for _ in range(20)]
    store.append(Blob(data=blobs[0]), resource_id="b")
    for n in range(2, 21):
        store.append(Blob(data=blobs[n - 1]), resource_id="b", expected_version=n - 1)

    assert [v.version for v in store.read_stream(Blob, "b")] == [16, 17, 18, 19, 20]
    assert [v.state.data for v in store.read_stream(Blob, "b")] == blobs[15:]
    assert [v.state.data for v in store.read_stream(Blob, "b", reverse=True)] == blobs[15:][::-1]
    for n in range(16, 21):
        assert store.read_version(Blob, "b", n).state.data == blobs[n - 1]
    assert store.read_version(Blob, "b").state.data == blobs[19]
    with pytest.raises(VersionNotFound) as info:
        store.read_version(Blob, "b", 3)
    assert info.value.remaining == (16, 20)
    assert "16-20" in str(info.value)
    # Version 16 belongs to keyframe 1's block, so that keyframe stays until 16 goes.
    assert _partition(store, stream_pk("Blob", "b")) == sorted(
        [HEAD_SK, keyframe_sk(1), keyframe_sk(17), *(version_sk(n) for n in range(16, 21))]
    )


def test_item_too_large_leaves_the_stream_unchanged(store: EventStore) -> None:
    store.append(Blob(data=b"small"), resource_id="b")
    before = _items(store)
    huge = Blob(data=os.urandom(500 * 1024))
    if store.backend.max_item_bytes is None:
        # Embedded backends have no item limit: the state is kept whole in the file.
        assert store.append(huge, resource_id="b", expected_version=1).version == 2
        assert store.read_version(Blob, "b").state == huge
        assert store.read_version(Blob, "b", 1).state.data == b"small"
        return
    with pytest.raises(ItemTooLarge) as info:
        store.append(huge, resource_id="b", expected_version=1)
    assert info.value.limit == MAX_ITEM_SIZE
    assert info.value.size > MAX_ITEM_SIZE
    assert str(MAX_ITEM_SIZE) in str(info.value)
    assert isinstance(info.value, ValueError)
    assert _items(store) == before
    assert store.read_version(Blob, "b").version == 1

    # On a new stream (its first version is also a keyframe) nothing is created either.
    with pytest.raises(ItemTooLarge):
        store.append(huge, resource_id="new")
    with pytest.raises(StreamNotFound):
        store.read_version(Blob, "new")
    assert _items(store) == before
    # And the stream still takes the next version.
    assert store.append(Blob(data=b"next"), resource_id="b", expected_version=1).version == 2


# -- bad input ---------------------------------------------------------------------------------

BAD_APPENDS: list[tuple[str, dict[str, object], type[Exception]]] = [
    ("id empty", {"resource_id": ""}, InvalidKey),
    ("id control char", {"resource_id": "a\x00b"}, InvalidKey),
    ("id newline", {"resource_id": "a\nb"}, InvalidKey),
    ("id too long", {"resource_id": "x" * 257}, InvalidKey),
    ("id int", {"resource_id": 12}, InvalidKey),
    ("id bytes", {"resource_id": b"abc"}, InvalidKey),
    ("expected 0", {"resource_id": "r", "expected_version": 0}, InvalidInput),
    ("expected -1", {"resource_id": "r", "expected_version": -1}, InvalidInput),
    ("expected True", {"resource_id": "r", "expected_version": True}, InvalidInput),
    ("expected str", {"resource_id": "r", "expected_version": "3"}, InvalidInput),
    ("expected float", {"resource_id": "r", "expected_version": 1.0}, InvalidInput),
    ("expected None", {"resource_id": "r", "expected_version": None}, InvalidInput),
    (
        "event too long",
        {"resource_id": "r", "expected_version": 1, "event": "e" * 257},
        InvalidInput,
    ),
    ("event empty", {"resource_id": "r", "expected_version": 1, "event": ""}, InvalidInput),
    ("event int", {"resource_id": "r", "expected_version": 1, "event": 5}, InvalidInput),
    (
        "metadata set",
        {"resource_id": "r", "expected_version": 1, "metadata": {"a": {1}}},
        InvalidInput,
    ),
    (
        "metadata NaN",
        {"resource_id": "r", "expected_version": 1, "metadata": {"a": math.nan}},
        InvalidInput,
    ),
    (
        "metadata inf",
        {"resource_id": "r", "expected_version": 1, "metadata": {"a": [math.inf]}},
        InvalidInput,
    ),
    (
        "metadata int key",
        {"resource_id": "r", "expected_version": 1, "metadata": {1: "a"}},
        WrongType,
    ),
    (
        "metadata tuple key",
        {"resource_id": "r", "expected_version": 1, "metadata": {("a",): "a"}},
        WrongType,
    ),
    (
        "metadata list",
        {"resource_id": "r", "expected_version": 1, "metadata": [("a", 1)]},
        WrongType,
    ),
    (
        "metadata object",
        {"resource_id": "r", "expected_version": 1, "metadata": {"a": object()}},
        InvalidInput,
    ),
    (
        "metadata surrogate",
        {"resource_id": "r", "expected_version": 1, "metadata": {"a": "\ud800"}},
        InvalidInput,
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "error"), [(k, e) for _, k, e in BAD_APPENDS], ids=[n for n, _, _ in BAD_APPENDS]
)
def test_bad_append_input_raises_typed_error_and_writes_nothing(
    store: EventStore, kwargs: dict[str, object], error: type[Exception]
) -> None:
    store.append(Order(customer="a"), resource_id="r")
    before = _items(store)
    with pytest.raises(error):
        store.append(Order(customer="b"), **kwargs)  # type: ignore[arg-type]
    assert _items(store) == before


@pytest.mark.parametrize(
    "value",
    [{"customer": "a"}, "state", None, Order, Resource],
    ids=["dict", "str", "None", "class", "Resource class"],
)
def test_append_non_resource_is_wrong_type(store: EventStore, value: object) -> None:
    with pytest.raises(WrongType):
        store.append(value)  # type: ignore[type-var]
    with pytest.raises(TypeError):
        store.append(value)  # type: ignore[type-var]
    assert _items(store) == []


def test_bad_read_input(store: EventStore) -> None:
    v = store.append(Order(customer="a"), resource_id="r")
    for cls in (dict, object, Resource, "Order", None, v.state):
        with pytest.raises(WrongType):
            store.read_version(cls, "r")  # type: ignore[type-var]
        with pytest.raises(WrongType):
            store.read_stream(cls, "r")  # type: ignore[type-var]
        if cls is not None:  # replay(None) means every type
            with pytest.raises(WrongType):
                store.replay(cls)  # type: ignore[arg-type]
    for version in (0, -1, 2**32, True, 1.0, b"1"):
        with pytest.raises(InvalidInput):
            store.read_version(Order, "r", version)  # type: ignore[arg-type]
    for version_id in ("", "hello", "u" * 26, "Z" * 26, "0" * 26, v.version_id + "0"):
        with pytest.raises(InvalidInput):
            store.read_version(Order, "r", version_id)
    for rid in ("", "a\x00", "x" * 257, 5, "\ud800"):
        with pytest.raises(InvalidKey):
            store.read_version(Order, rid)  # type: ignore[arg-type]
        with pytest.raises(InvalidKey):
            store.read_stream(Order, rid)  # type: ignore[arg-type]
    for bound in (0, -1, True, "2", 1.5):
        with pytest.raises(InvalidInput):
            store.read_stream(Order, "r", start=bound)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            store.read_stream(Order, "r", stop=bound)  # type: ignore[arg-type]
    assert store.read_version(Order, "r") == v


def test_replay_lists_streams_in_creation_order(store: EventStore) -> None:
    # replay() and heads() promise creation order; streams created within one millisecond in
    # one process must keep it too.
    created = [store.append(_order(i)).resource_id for i in range(30)]
    assert [v.resource_id for v in store.replay(Order)] == created
    assert [str(h["pk"]) for h in store.heads(Order)] == [stream_pk("Order", r) for r in created]
