"""Deleting and erasing resources on every backend: a delete is a last version the feed carries
and the indexes forget; an erase leaves nothing of the states in the table, or in the SQLite
file; a model-based test mixes appends, deletes, erasures and reads."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventstore
from eventstore import (
    ANY,
    NO_STREAM,
    ConcurrencyError,
    EventStore,
    InvalidInput,
    Resource,
    StreamNotFound,
    VersionNotFound,
)
from projections import Projection
from tests.conftest import drop


class Person(Resource):
    resource_type = "retention.Person"
    max_versions = 4
    name: str
    email: str


class ByEmail(Projection[Person]):
    name = "by_email"
    index = "gsi1"

    def key(self, person: Person) -> tuple[str, str]:
        return ("all", person.email)


def _raw(store: EventStore) -> list[dict[str, object]]:
    items, start = [], None
    while True:
        page = store.backend.scan(start=start)
        items += page.items
        if page.last_key is None:
            return items
        start = page.last_key


@pytest.fixture
def people(store_url: str) -> Iterator[EventStore]:
    store = eventstore.open(store_url, projections=[ByEmail()])
    store.create_table(feed="inline")
    yield store
    drop(store)


def test_delete_ends_a_resource(people: EventStore) -> None:
    store = people
    store.append(Person(name="Ada", email="ada@x"), resource_id="p1")
    store.append(Person(name="Ada L", email="ada@x"), resource_id="p1", expected_version=1)
    store.append(Person(name="Bob", email="bob@x"), resource_id="p2")
    with pytest.raises(ConcurrencyError):
        store.delete(Person, "p1", expected_version=1)
    gone = store.delete(Person, "p1", expected_version=2, metadata={"why": "request"})
    assert (gone.version, gone.deleted, gone.event) == (3, True, "deleted")
    assert gone.state.name == "Ada L"  # the last state rides with the tombstone
    with pytest.raises(StreamNotFound):
        store.read_version(Person, "p1")
    with pytest.raises(StreamNotFound):
        store.delete(Person, "p1")
    assert [(v.version, v.deleted) for v in store.read_stream(Person, "p1")] == [
        (1, False),
        (2, False),
        (3, True),
    ]
    assert [v.resource_id for v in store.list_resources(Person)] == ["p2"]
    assert [v.resource_id for v in store.query(ByEmail, "all")] == ["p2"]
    assert store.read_many(Person, ["p1", "p2"]).keys() == {"p2"}
    feed = list(store.feed())
    assert feed[-1].deleted and feed[-1].resource_id == "p1"
    # An expected version finds no stream; NO_STREAM starts it again, numbering on.
    with pytest.raises(ConcurrencyError) as info:
        store.append(Person(name="x", email="x@x"), resource_id="p1", expected_version=3)
    assert info.value.actual == 0
    again = store.append(Person(name="Ada 2", email="ada2@x"), resource_id="p1")
    assert again.version == 4 and store.read_version(Person, "p1").state.name == "Ada 2"
    assert {v.resource_id for v in store.list_resources(Person)} == {"p1", "p2"}
    assert [v.state.email for v in store.query(ByEmail, "all")] == ["ada2@x", "bob@x"]
    with pytest.raises(InvalidInput):
        store.delete(Person, "p2", expected_version=NO_STREAM)


def test_erase_leaves_nothing_of_the_states(people: EventStore) -> None:
    store = people
    for n in range(10):  # max_versions 4: six versions trimmed before the erase
        store.append(
            Person(name=f"SECRET-{n}", email="secret@x"),
            resource_id="secret-id",
            expected_version=n or NO_STREAM,
        )
    store.append(Person(name="Bob", email="bob@x"), resource_id="bob")
    before = store.last_position()
    report = store.erase(Person, "secret-id")
    # Where the feed is in the items (SQLite), the six trimmed versions' positions were empty
    # before the erasure (no item names them); the four held get markers.
    in_items = store.backend.feed_in_items
    assert report.items_deleted >= 5 and report.feed_entries_cleared == (4 if in_items else 10)
    # Nothing readable through the library...
    with pytest.raises(StreamNotFound):
        store.read_version(Person, "secret-id")
    with pytest.raises(StreamNotFound):
        list(store.read_stream(Person, "secret-id"))
    with pytest.raises(StreamNotFound):
        store.erase(Person, "secret-id")
    assert [v.resource_id for v in store.feed()] == ["bob"]
    entries = list(store.feed_entries())
    gone = ["(trimmed)"] * 6 + ["(erased)"] * 4 if in_items else ["(erased)"] * 10
    assert len(entries) == before and [e.resource_type for e in entries[:10]] == gone
    assert [v.resource_id for v in store.query(ByEmail, "all")] == ["bob"]
    # ...and nothing in the table: no item holds the states or names the stream.
    for item in _raw(store):
        text = repr(item)
        assert "SECRET" not in text and "secret-id" not in text and "secret@x" not in text, item
    # A new stream may start under the same id, from version 1.
    assert store.append(Person(name="new", email="n@x"), resource_id="secret-id").version == 1
    with pytest.raises(VersionNotFound):
        store.read_version(Person, "secret-id", 2)


def test_erased_bytes_do_not_survive_in_the_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "people.db"
    store = eventstore.open(f"sqlite:///{path}")
    store.create_table(feed="inline")
    for n in range(40):
        store.append(
            Person(name=f"SECRET-{n:02d}", email="secret@x"),
            resource_id="gone",
            expected_version=n or NO_STREAM,
        )
    store.append(Person(name="kept", email="k@x"), resource_id="kept")
    store.erase(Person, "gone")
    store.close()
    for file in tmp_path.iterdir():
        data = file.read_bytes()
        assert b"SECRET" not in data and b"secret@x" not in data, file
    assert os.path.getsize(path) > 0


def test_erase_while_another_process_reads_says_the_log_is_not_clean(tmp_path: Path) -> None:
    """Another connection's read transaction keeps SQLite from truncating its write-ahead log:
    the erase does not wait for the whole busy timeout, reports it, and a later call cleans."""
    import sqlite3

    path = tmp_path / "people.db"
    store = eventstore.open(f"sqlite:///{path}")
    store.create_table(feed="inline")
    for n in range(5):
        store.append(
            Person(name=f"SECRET-{n:02d}", email="secret@x"),
            resource_id="gone",
            expected_version=n or NO_STREAM,
        )
    store.append(Person(name="kept", email="k@x"), resource_id="kept")
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM items").fetchone()  # holds a snapshot
    began = time.monotonic()
    report = store.erase(Person, "gone")
    assert time.monotonic() - began < 10  # not the 30 s busy timeout
    assert report.files_clean is False
    reader.execute("COMMIT")
    reader.close()
    assert store.backend.forget_deleted() is True
    store.close()
    for file in tmp_path.iterdir():
        data = file.read_bytes()
        assert b"SECRET" not in data and b"secret@x" not in data, file


def test_an_interrupted_erase_can_be_run_again(people: EventStore) -> None:
    store = people
    for n in range(6):
        store.append(
            Person(name=f"S{n}", email="s@x"), resource_id="s", expected_version=n or NO_STREAM
        )
    real = store.backend.write
    calls = [0]

    def dies_on_the_second_write(writes: object, *, token: str | None = None) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("crash")
        real(writes, token=token)  # type: ignore[arg-type]

    store.backend.write = dies_on_the_second_write  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError):
            store.erase(Person, "s")
    finally:
        store.backend.write = real  # type: ignore[method-assign]
    with pytest.raises(ConcurrencyError):  # closed to appends while half erased
        store.append(Person(name="x", email="x@x"), resource_id="s", expected_version=6)
    store.erase(Person, "s")
    assert not [i for i in _raw(store) if "s@x" in repr(i) or str(i["pk"]).endswith("#s")]


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["append", "delete", "erase", "read"]), st.sampled_from("ab")),
        max_size=30,
    )
)
def test_model_of_appends_deletes_and_erasures(steps: list[tuple[str, str]]) -> None:
    store = eventstore.open("memory://")
    # Per id: the version numbers so far, and whether the resource exists.
    version: dict[str, int] = {}
    alive: dict[str, bool] = {}
    for action, rid in steps:
        if action == "append":
            v = store.append(
                Person(name=rid, email=f"{rid}@x"), resource_id=rid, expected_version=ANY
            )
            assert v.version == version.get(rid, 0) + 1
            version[rid], alive[rid] = v.version, True
        elif action == "delete":
            if alive.get(rid):
                assert store.delete(Person, rid).version == version[rid] + 1
                version[rid] += 1
                alive[rid] = False
            else:
                with pytest.raises(StreamNotFound):
                    store.delete(Person, rid)
        elif action == "erase":
            if rid in version:
                store.erase(Person, rid)
                del version[rid]
                alive[rid] = False
            else:
                with pytest.raises(StreamNotFound):
                    store.erase(Person, rid)
        elif alive.get(rid):
            assert store.read_version(Person, rid).version == version[rid]
        else:
            with pytest.raises(StreamNotFound):
                store.read_version(Person, rid)
    listed = {v.resource_id for v in store.list_resources(Person)}
    assert listed == {rid for rid, ok in alive.items() if ok}
    # The feed holds only versions of streams that were not erased since they were written.
    for v in store.feed():
        assert v.resource_id in version and v.version <= version[v.resource_id]


# -- max_age ---------------------------------------------------------------------------------


class Log(Resource):
    resource_type = "retention.Log"
    max_age = timedelta(days=30)
    text: str


def _aged(store: EventStore) -> tuple[EventStore, list[float]]:
    """A store on the same table whose clock the test moves."""
    now = [time.time()]
    return EventStore(store.backend, clock=lambda: now[0]), now


def test_max_age_hides_old_versions_but_never_the_latest(people: EventStore) -> None:
    store, now = _aged(people)
    for n in range(20):
        store.append(Log(text=str(n)), resource_id="l", expected_version=n or NO_STREAM)
    store.append(Log(text="other"), resource_id="m")
    assert len(list(store.read_stream(Log, "l"))) == 20
    now[0] += 31 * 86400
    # Older than max_age: not returned by any read...
    assert [v.version for v in store.read_stream(Log, "l")] == [20]
    with pytest.raises(VersionNotFound):
        store.read_version(Log, "l", 3)
    assert [v.version for v in store.replay(Log)] == [20, 1]
    assert sorted((v.resource_id, v.version) for v in store.feed()) == [("l", 20), ("m", 1)]
    # ...but the latest version of a resource never expires.
    assert store.read_version(Log, "l").state.text == "19"
    assert store.read_version(Log, "m").version == 1
    assert {v.resource_id for v in store.list_resources(Log)} == {"l", "m"}
    # purge removes them from storage (DynamoDB's TTL would, within days).
    assert store.purge(Log) == 19
    kept = [i for i in _raw(store) if str(i["pk"]) == "retention.Log#l" and str(i["sk"]) != "h"]
    assert len(kept) == 2  # the latest version and its keyframe
    with pytest.raises(VersionNotFound) as info:
        store.read_version(Log, "l", 3)
    assert info.value.remaining == (20, 20)
    assert store.purge() == 0


def test_purge_covers_deleted_resources(people: EventStore) -> None:
    """A deleted resource's history is held until trimmed, expired or erased: purge removes its
    expired versions as it does a live one's."""
    store, now = _aged(people)
    for n in range(20):
        store.append(Log(text=str(n)), resource_id="live", expected_version=n or NO_STREAM)
        store.append(Log(text=str(n)), resource_id="gone", expected_version=n or NO_STREAM)
    store.delete(Log, "gone")
    now[0] += 31 * 86400
    # 19 of the live one's, and 20 of the deleted one's (its tombstone is the latest).
    assert store.purge(Log) == 39
    assert [v.version for v in store.read_stream(Log, "gone")] == [21]
    assert store.purge() == 0


def _strict(kind: type) -> type[Resource]:
    """The model of one type as deployed, then changed (the same class, redefined)."""

    class Strict(Resource):
        resource_type = "retention.Strict"
        name: kind  # type: ignore[valid-type]

    return Strict


def test_check_covers_deleted_resources(people: EventStore) -> None:
    from eventstore.checking import check

    deployed = _strict(str)
    people.append(deployed(name="a"), resource_id="s")
    people.append(deployed(name="b"), resource_id="s", expected_version=1)
    people.delete(deployed, "s")
    assert check(people, [deployed]).read == 3
    # A model change without an upcaster: the deleted stream's states no longer validate, and
    # feed readers would meet them.
    report = check(people, [_strict(int)])
    assert report.streams == 1 and len(report.failures) == 3
    _strict(str)


def test_expiry_attributes_and_dynamodb_ttl(dynamodb_store: EventStore) -> None:
    """DynamoDB Local never expires items itself: the table has TTL on, and superseded versions
    carry the expiry TTL acts on; the latest carries none."""
    store, now = _aged(dynamodb_store)
    store.append(Log(text="a"), resource_id="l")
    store.append(Log(text="b"), resource_id="l", expected_version=1)
    client = store.backend.client  # type: ignore[attr-defined]
    table = store.backend.table  # type: ignore[attr-defined]
    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING") and ttl["AttributeName"] == "ttl"
    items = {str(i["sk"]): i for i in _raw(store) if str(i["pk"]) == "retention.Log#l"}
    expected = int(now[0] + 30 * 86400) + 1
    assert items["v#0000000001#v"]["ttl"] == expected
    assert "ttl" not in items["v#0000000002#v"] and "ttl" not in items["h"]


def test_erasures_and_purges_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    store = eventstore.open("memory://")
    store.append(Person(name="x", email="x@x"), resource_id="p")
    with caplog.at_level(logging.INFO, logger="eventstore"):
        store.erase(Person, "p")
    assert any("erased retention.Person#p" in r.getMessage() for r in caplog.records)
    with caplog.at_level(logging.DEBUG, logger="eventstore"):
        caplog.clear()
        store.append(Person(name="y", email="y@x"), resource_id="q")
        with pytest.raises(ConcurrencyError):
            store.append(Person(name="y", email="y@x"), resource_id="q", expected_version=5)
    assert [r.levelname for r in caplog.records] == ["DEBUG"]  # nothing at INFO on the hot path


# -- another writer between the requests of a delete or a purge -----------------------------


class Capped(Resource):
    resource_type = "retention.Capped"
    max_versions = 6
    max_age = timedelta(days=30)
    n: int


@pytest.mark.parametrize("point", [1, 2, 3])
def test_delete_with_a_write_in_between(people: EventStore, point: int) -> None:
    from tests.interleaving import Interleaving

    store = people
    for n in range(3):
        store.append(
            Person(name=f"v{n}", email="e"), resource_id="p", expected_version=n or NO_STREAM
        )

    def other() -> None:
        latest = store.read_version(Person, "p")
        store.append(
            Person(name="other", email="e"), resource_id="p", expected_version=latest.version
        )

    racing = EventStore(Interleaving(store.backend, after=point, action=other))
    gone = racing.delete(Person, "p")  # ANY: read again after losing the race
    assert gone.deleted and gone.state.name == "other" and gone.version == 5
    store.append(Person(name="w", email="e"), resource_id="q")
    racing = EventStore(
        Interleaving(
            store.backend,
            after=point,
            action=lambda: store.append(
                Person(name="w2", email="e"), resource_id="q", expected_version=1
            ),
        )
    )
    with pytest.raises(ConcurrencyError):
        racing.delete(Person, "q", expected_version=1)
    assert store.read_version(Person, "q").version == 2


@pytest.mark.parametrize("point", range(1, 7))
def test_purge_with_an_append_in_between(people: EventStore, point: int) -> None:
    from tests.interleaving import Interleaving

    store, now = _aged(people)
    for n in range(10):
        store.append(Capped(n=n), resource_id="c", expected_version=n or NO_STREAM)
    now[0] += 31 * 86400

    def other() -> None:
        at = store.read_version(Capped, "c").version
        store.append(Capped(n=at), resource_id="c", expected_version=at)

    racing = EventStore(
        Interleaving(store.backend, after=point, action=other), clock=lambda: now[0]
    )
    racing.purge(Capped)
    store.purge(Capped)
    versions = [v.version for v in EventStore(store.backend).read_stream(Capped, "c")]
    latest = store.read_version(Capped, "c").version
    assert latest in (10, 11)
    # What is left is gapless and ends at the latest; the expired versions are gone.
    assert versions == list(range(versions[0], latest + 1))
    assert [v.version for v in store.read_stream(Capped, "c")] == [latest]
