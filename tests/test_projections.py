"""Projections on every backend: declaration, queries and cursors, rebuild, replay runners, CLI.

Each test opens its own store on a fresh table (``store_url``) with the projections it needs.
"""

from __future__ import annotations

import json
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import eventstore
import projections
from eventstore import (
    ConcurrencyError,
    EventStore,
    InvalidInput,
    InvalidKey,
    ProjectionError,
    StreamNotFound,
    Version,
    WrongType,
)
from eventstore.backends.base import Item
from eventstore.cursors import SECRET_KEY
from eventstore.keys import HEAD_SK, check_type_name, stream_pk
from projections import InvalidCursor, Projection
from projections.cli import rebuild_main
from projections.rebuild import checkpoint_key
from projections.replay import checkpoint_key as runner_checkpoint_key
from tests.conftest import drop, scanned
from tests.models import Note, Order

STATUSES = ["new", "paid", "shipped", "draft"]


class ByStatus(Projection[Order]):
    """Sparse: drafts are not indexed. Sorted by customer, then id (unique sort keys)."""

    name = "by_status"
    index = "gsi1"

    def key(self, order: Order) -> tuple[str, str] | None:
        if order.status == "draft":
            return None
        return (order.status, order.customer)


class ByCustomer(Projection[Order]):
    name = "by_customer"
    index = "gsi2"

    def key(self, order: Order) -> tuple[str, str] | None:
        return (order.customer, f"{order.total_cents:08d}")


def open_store(url: str, *declared: Any) -> EventStore:
    store = eventstore.open(url, projections=list(declared))
    store.create_table(feed="inline")
    return store


@pytest.fixture
def shop(store_url: str) -> Iterator[EventStore]:
    store = open_store(store_url, ByStatus(), ByCustomer())
    try:
        yield store
    finally:
        drop(store)


def keys_of(versions: list[Version[Any]]) -> list[tuple[str, int]]:
    return [(v.resource_id, v.version) for v in versions]


def head(store: EventStore, rid: str, type_name: str = "Order") -> Item:
    found = store.backend.get([(stream_pk(type_name, rid), HEAD_SK)])[0]
    assert found is not None
    return found


def all_pages(store: EventStore, *args: Any, limit: int = 50, **kwargs: Any) -> list[Version[Any]]:
    items: list[Version[Any]] = []
    cursor = None
    while True:
        page = store.query(*args, limit=limit, cursor=cursor, **kwargs)
        assert len(page.items) <= limit
        items.extend(page.items)
        if page.cursor is None:
            return items
        cursor = page.cursor


# -- declaration -----------------------------------------------------------------------------


def test_projection_class_takes_its_resource_from_the_parameter() -> None:
    assert ByStatus.resource_class is Order
    assert ByStatus.name == "by_status"
    assert isinstance(ByStatus(), eventstore.indexing.IndexProjection)

    class Unnamed(Projection[Order]):
        index = "gsi3"

        def key(self, order: Order) -> tuple[str, str] | None:
            return None

    assert Unnamed.name == "Unnamed"

    class Renamed(ByStatus):
        def key(self, order: Order) -> tuple[str, str] | None:
            return ("x", "y")

    assert (Renamed.resource_class, Renamed.name, Renamed.index) == (Order, "by_status", "gsi1")


@pytest.mark.parametrize(
    "attributes",
    [
        {"name": "by status", "index": "gsi1"},
        {"name": "_hidden", "index": "gsi1"},
        {"name": "ok", "index": "gsi0"},
        {"name": "ok", "index": "gsi9"},
        {"name": "ok"},
    ],
)
def test_misdeclared_projection_fails_at_class_definition(attributes: dict[str, str]) -> None:
    def key(self: Any, order: Order) -> tuple[str, str] | None:
        return None

    with pytest.raises(ProjectionError):
        types.new_class(
            "Bad", (Projection[Order],), exec_body=lambda ns: ns.update(attributes, key=key)
        )


def test_projection_without_key_or_resource_fails() -> None:
    with pytest.raises(ProjectionError):
        types.new_class(
            "NoKey", (Projection[Order],), exec_body=lambda ns: ns.update(name="n", index="gsi1")
        )
    with pytest.raises(ProjectionError):
        types.new_class(
            "Forward",
            (Projection["Order"],),  # type: ignore[type-var]
            exec_body=lambda ns: ns.update(index="gsi1"),
        )


def test_two_projections_claiming_one_slot_fail_at_open(store_url: str) -> None:
    class Other(Projection[Order]):
        name = "other"
        index = "gsi1"

        def key(self, order: Order) -> tuple[str, str] | None:
            return ("x", "y")

    with pytest.raises(ProjectionError, match="gsi1"):
        eventstore.open(store_url, projections=[ByStatus(), Other()])

    class SameName(Projection[Order]):
        name = "by_status"
        index = "gsi3"

        def key(self, order: Order) -> tuple[str, str] | None:
            return ("x", "y")

    with pytest.raises(ProjectionError, match="by_status"):
        eventstore.open(store_url, projections=[ByStatus(), SameName()])


def test_reserved_items_cannot_collide_with_streams() -> None:
    # Library items (cursor secret, checkpoints) have keys starting with "_"; no type name can.
    for key in (SECRET_KEY, checkpoint_key("Order", "by_status"), runner_checkpoint_key("x")):
        assert key[0].startswith("_")
        with pytest.raises(InvalidKey):
            check_type_name(key[0].split("#")[0])


# -- appends keep the index in step ----------------------------------------------------------


def test_query_returns_latest_versions_in_sort_order(shop: EventStore) -> None:
    bob = shop.append(Order(customer="bob", status="paid", total_cents=5))
    ada = shop.append(Order(customer="ada", status="new"))
    ada = shop.append(
        Order(customer="ada", status="paid", total_cents=7),
        resource_id=ada.resource_id,
        expected_version=1,
    )
    page = shop.query(ByStatus, "paid")
    assert keys_of(page.items) == [(ada.resource_id, 2), (bob.resource_id, 1)]
    assert page.cursor is None
    assert page.items[0].state == Order(customer="ada", status="paid", total_cents=7)
    assert shop.query(ByStatus(), "new").items == []
    assert keys_of(shop.query(ByStatus, "paid", reverse=True).items) == [
        (bob.resource_id, 1),
        (ada.resource_id, 2),
    ]
    typed = projections.query(shop, ByStatus, "paid", equals="ada")
    assert [v.state.customer for v in typed] == ["ada"]


def test_status_change_moves_the_item_between_partitions(shop: EventStore) -> None:
    first = shop.append(Order(customer="ada", status="new"))
    rid = first.resource_id
    assert keys_of(shop.query(ByStatus, "new").items) == [(rid, 1)]
    for number, status in enumerate(["paid", "shipped", "new"], start=2):
        shop.append(
            Order(customer="ada", status=status), resource_id=rid, expected_version=number - 1
        )
        for other in ("new", "paid", "shipped"):
            expected = [(rid, number)] if other == status else []
            assert keys_of(shop.query(ByStatus, other).items) == expected


def test_sparse_index_leaves_and_enters(shop: EventStore) -> None:
    v = shop.append(Order(customer="ada", status="draft"))
    rid = v.resource_id
    assert "gsi1pk" not in head(shop, rid)
    assert all(shop.query(ByStatus, s).items == [] for s in STATUSES)
    # The non-sparse projection indexes it all along.
    assert keys_of(shop.query(ByCustomer, "ada").items) == [(rid, 1)]
    shop.append(Order(customer="ada", status="paid"), resource_id=rid, expected_version=1)
    assert keys_of(shop.query(ByStatus, "paid").items) == [(rid, 2)]
    shop.append(Order(customer="ada", status="draft"), resource_id=rid, expected_version=2)
    assert shop.query(ByStatus, "paid").items == []
    assert "gsi1pk" not in head(shop, rid) and "gsi1sk" not in head(shop, rid)


def test_key_function_raising_fails_the_append_with_nothing_written(store_url: str) -> None:
    class Fragile(Projection[Order]):
        name = "fragile"
        index = "gsi3"

        def key(self, order: Order) -> tuple[str, str] | None:
            if order.customer == "boom":
                raise RuntimeError("no")
            if order.customer == "bad":
                return ("", "x")
            if order.customer == "int":
                return (1, "x")  # type: ignore[return-value]
            return ("ok", order.customer)

    store = open_store(store_url, Fragile())
    try:
        ok = store.append(Order(customer="fine"))
        for customer in ("boom", "bad", "int"):
            with pytest.raises(ProjectionError):
                store.append(Order(customer=customer), resource_id=f"r-{customer}")
            with pytest.raises(StreamNotFound):
                store.read_version(Order, f"r-{customer}")
            with pytest.raises(ProjectionError):
                store.append(
                    Order(customer=customer), resource_id=ok.resource_id, expected_version=1
                )
        assert store.read_version(Order, ok.resource_id).version == 1
        assert keys_of(store.query(Fragile, "ok").items) == [(ok.resource_id, 1)]
    finally:
        drop(store)


def test_trimmed_streams_stay_queryable(store_url: str) -> None:
    class NotesByText(Projection[Note]):
        name = "by_text"
        index = "gsi1"

        def key(self, note: Note) -> tuple[str, str] | None:
            return ("all", note.text)

    store = open_store(store_url, NotesByText())
    try:
        rid = store.append(Note(text="n1")).resource_id
        for number in range(2, 13):
            store.append(Note(text=f"n{number}"), resource_id=rid, expected_version=number - 1)
        [latest] = store.query(NotesByText, "all").items
        assert (latest.version, latest.state.text) == (12, "n12")
    finally:
        drop(store)


# -- query conditions and input checks -------------------------------------------------------


@pytest.fixture
def totals(shop: EventStore) -> dict[str, str]:
    """Orders of one customer with totals 0, 10, ..., 90; maps sort key to resource id."""
    found: dict[str, str] = {}
    for total in range(0, 100, 10):
        v = shop.append(Order(customer="ada", total_cents=total))
        found[f"{total:08d}"] = v.resource_id
    return found


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({}, range(0, 100, 10)),
        ({"equals": "00000030"}, [30]),
        ({"equals": "00000031"}, []),
        ({"begins_with": "0000004"}, [40]),
        ({"begins_with": "000000"}, range(0, 100, 10)),
        ({"between": ("00000020", "00000050")}, [20, 30, 40, 50]),
        ({"between": ("00000021", "00000049")}, [30, 40]),
        ({"lt": "00000030"}, [0, 10, 20]),
        ({"lte": "00000030"}, [0, 10, 20, 30]),
        ({"gt": "00000070"}, [80, 90]),
        ({"gte": "00000070"}, [70, 80, 90]),
    ],
)
def test_sort_key_conditions(
    shop: EventStore, totals: dict[str, str], condition: dict[str, Any], expected: range
) -> None:
    want = [totals[f"{t:08d}"] for t in expected]
    got = [v.resource_id for v in all_pages(shop, ByCustomer, "ada", limit=3, **condition)]
    assert got == want
    back = [v.resource_id for v in all_pages(shop, ByCustomer, "ada", reverse=True, **condition)]
    assert back == want[::-1]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"equals": "a", "gt": "b"}, InvalidInput),
        ({"between": ("b", "a")}, InvalidInput),
        ({"between": ("a",)}, InvalidInput),
        ({"begins_with": ""}, InvalidInput),
        ({"lt": 5}, WrongType),
        ({"limit": 0}, InvalidInput),
        ({"limit": 1001}, InvalidInput),
        ({"limit": True}, InvalidInput),
        ({"reverse": "yes"}, WrongType),
        ({"cursor": 12}, InvalidCursor),
    ],
)
def test_bad_query_arguments_raise_typed_errors(
    shop: EventStore, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        shop.query(ByCustomer, "ada", **kwargs)


def test_bad_partition_or_projection(shop: EventStore, store_url: str) -> None:
    with pytest.raises(InvalidInput):
        shop.query(ByStatus, "")
    with pytest.raises(WrongType):
        shop.query(ByStatus, 3)  # type: ignore[arg-type]
    with pytest.raises(WrongType):
        shop.query(Order, "paid")

    class Undeclared(Projection[Order]):
        name = "undeclared"
        index = "gsi4"

        def key(self, order: Order) -> tuple[str, str] | None:
            return None

    with pytest.raises(ProjectionError, match="not declared"):
        shop.query(Undeclared, "x")


# -- paging and cursors ----------------------------------------------------------------------


def test_paging_visits_every_item_once(shop: EventStore, totals: dict[str, str]) -> None:
    want = list(totals.values())
    for limit in (1, 3, 9, 10, 11):
        pages = []
        cursor = None
        while True:
            page = shop.query(ByCustomer, "ada", limit=limit, cursor=cursor)
            pages.append(page)
            if page.cursor is None:
                break
            cursor = page.cursor
        assert [v.resource_id for p in pages for v in p.items] == want
        # A cursor is only handed out when something follows it: no empty last page.
        assert all(p.items for p in pages)
    # The page size may change between pages.
    first = shop.query(ByCustomer, "ada", limit=4)
    assert first.cursor is not None
    rest = shop.query(ByCustomer, "ada", limit=100, cursor=first.cursor)
    assert [v.resource_id for v in [*first.items, *rest.items]] == want
    assert (
        list(projections.query_all(shop, ByCustomer, "ada", page_size=3))[4].resource_id
        == (want[4])
    )


def test_tampered_or_foreign_cursors_are_refused(shop: EventStore, totals: dict[str, str]) -> None:
    page = shop.query(ByCustomer, "ada", limit=2)
    cursor = page.cursor
    assert cursor is not None
    flipped = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    middle = len(cursor) // 2
    altered = cursor[:middle] + ("x" if cursor[middle] != "x" else "y") + cursor[middle + 1 :]
    for bad in (flipped, altered, cursor + "A", cursor[:-1], "", "not a cursor!", "AAAA"):
        with pytest.raises(InvalidCursor):
            shop.query(ByCustomer, "ada", limit=2, cursor=bad)
    for other in (
        {"partition": "bob"},
        {"reverse": True},
        {"gte": "00000000"},
        {"projection": ByStatus, "partition": "new"},
    ):
        args: dict[str, Any] = {"projection": ByCustomer, "partition": "ada", **other}
        with pytest.raises(InvalidCursor, match="another query"):
            shop.query(args.pop("projection"), args.pop("partition"), cursor=cursor, **args)
    with pytest.raises(InvalidCursor):
        shop.list_resources(Order, cursor=cursor)
    # InvalidCursor is an InvalidInput, hence a ValueError.
    with pytest.raises(ValueError):
        shop.query(ByCustomer, "ada", cursor=flipped)
    # The untouched cursor still works.
    assert len(shop.query(ByCustomer, "ada", limit=2, cursor=cursor).items) == 2


def test_cursors_work_across_store_objects_of_one_table(
    shop: EventStore, totals: dict[str, str]
) -> None:
    cursor = shop.query(ByCustomer, "ada", limit=5).cursor
    assert cursor is not None
    other = EventStore(shop.backend, projections=[ByCustomer()])
    assert len(other.query(ByCustomer, "ada", cursor=cursor).items) == 5
    # Your own secret replaces the table's: the old cursors stop working.
    other.set_cursor_secret(b"0123456789abcdef0123")
    with pytest.raises(InvalidCursor):
        other.query(ByCustomer, "ada", cursor=cursor)
    mine = other.query(ByCustomer, "ada", limit=5).cursor
    assert mine is not None
    assert len(other.query(ByCustomer, "ada", cursor=mine).items) == 5
    with pytest.raises(InvalidCursor):
        shop.query(ByCustomer, "ada", cursor=mine)
    with pytest.raises(InvalidInput):
        other.set_cursor_secret(b"short")


def test_cursor_from_another_table_is_refused(shop: EventStore, totals: dict[str, str]) -> None:
    cursor = shop.query(ByCustomer, "ada", limit=5).cursor
    elsewhere = open_store("memory://", ByCustomer())
    elsewhere.append(Order(customer="ada"))
    with pytest.raises(InvalidCursor):
        elsewhere.query(ByCustomer, "ada", cursor=cursor)


def test_list_resources_by_creation(shop: EventStore) -> None:
    made = [shop.append(Order(customer=f"c{i}")) for i in range(7)]
    shop.append(
        Order(customer="c0", status="paid"), resource_id=made[0].resource_id, expected_version=1
    )
    order = sorted(made, key=lambda v: (v.version_id, v.resource_id))
    oldest = [v.resource_id for v in order]
    got = []
    cursor = None
    while True:
        page = shop.list_resources(Order, newest_first=False, limit=3, cursor=cursor)
        got.extend(page.items)
        if page.cursor is None:
            break
        cursor = page.cursor
    assert [v.resource_id for v in got] == oldest
    assert got[0].version == (2 if got[0].resource_id == made[0].resource_id else 1)
    newest = shop.list_resources(Order, limit=50)
    assert [v.resource_id for v in newest.items] == oldest[::-1]
    assert newest.cursor is None
    assert [v.resource_id for v in projections.list_all(shop, Order, newest_first=False)] == oldest
    assert shop.list_resources(Note).items == []


# -- rebuild ---------------------------------------------------------------------------------


def _fill(store: EventStore, count: int) -> list[Version[Order]]:
    latest = []
    for i in range(count):
        status = STATUSES[i % 4]
        v = store.append(Order(customer=f"c{i:03d}", status=status, total_cents=i))
        if i % 3 == 0:
            v = store.append(
                Order(customer=f"c{i:03d}", status=STATUSES[(i + 1) % 4], total_cents=i),
                resource_id=v.resource_id,
                expected_version=1,
            )
        latest.append(v)
    return latest


def _expected(latest: list[Version[Order]], status: str) -> list[tuple[str, int]]:
    hits = [v for v in latest if v.state.status == status]
    return keys_of(sorted(hits, key=lambda v: (v.state.customer, v.resource_id)))


def test_projection_added_later_then_rebuilt_answers_as_if_declared_from_the_start(
    store_url: str,
) -> None:
    plain = open_store(store_url)
    try:
        latest = _fill(plain, 40)
        store = EventStore(plain.backend, projections=[ByStatus()])
        assert store.query(ByStatus, "paid").items == []
        indexed = sum(1 for v in latest if v.state.status != "draft")
        report = projections.rebuild(store, ByStatus, segments=3)
        assert (report.scanned, report.updated, report.unchanged, report.skipped_newer) == (
            40,
            indexed,
            40 - indexed,
            0,
        )
        assert report.finished and not report.resumed and report.seconds >= 0
        for status in STATUSES:
            assert keys_of(all_pages(store, ByStatus, status, limit=7)) == (
                _expected(latest, status) if status != "draft" else []
            )
        # Idempotent: a second run finds nothing to do and writes nothing.
        again = projections.rebuild(store, ByStatus())
        assert (again.scanned, again.updated, again.unchanged) == (40, 0, 40)
        # Appends from here on keep the index in step on their own.
        first = latest[0]
        store.append(
            Order(customer=first.state.customer, status="shipped"),
            resource_id=first.resource_id,
            expected_version=first.version,
        )
        assert first.resource_id in [v.resource_id for v in store.query(ByStatus, "shipped")]
    finally:
        drop(plain)


def test_rebuild_after_changing_a_key_function(shop: EventStore) -> None:
    latest = _fill(shop, 12)

    class ByStatusUpper(ByStatus):
        def key(self, order: Order) -> tuple[str, str] | None:
            return (order.status.upper(), order.customer)

    changed = EventStore(shop.backend, projections=[ByStatusUpper(), ByCustomer()])
    report = projections.rebuild(changed, ByStatusUpper)
    assert (report.updated, report.unchanged) == (12, 0)
    assert keys_of(changed.query(ByStatusUpper, "PAID").items) == _expected(latest, "paid")
    assert changed.query(ByStatusUpper, "paid").items == []
    # Rebuilding the other projection finds it already in step.
    assert projections.rebuild(changed, ByCustomer).updated == 0


def test_rebuild_never_overwrites_a_head_a_concurrent_append_made_newer(store_url: str) -> None:
    plain = open_store(store_url)
    try:
        latest = _fill(plain, 5)
        target = latest[2]

        class Racing(ByStatus):
            raced = False

            def key(self, order: Order) -> tuple[str, str] | None:
                # Called by the rebuild after it read the head and before it writes: an append
                # by a process that does not know the projection gets in between.
                if order.customer == target.state.customer and not Racing.raced:
                    Racing.raced = True
                    plain.append(
                        Order(customer=order.customer, status="paid"),
                        resource_id=target.resource_id,
                        expected_version=target.version,
                    )
                return super().key(order)

        store = EventStore(plain.backend, projections=[Racing()])
        report = projections.rebuild(store, Racing, segments=1)
        assert report.skipped_newer == 1
        assert report.updated + report.unchanged == 4
        raced = head(store, target.resource_id)
        assert raced["v"] == target.version + 1
        assert "gsi1pk" not in raced  # the rebuild's write for the old version was refused
        # A later run picks it up.
        assert projections.rebuild(store, Racing).updated == 1
        assert head(store, target.resource_id)["gsi1pk"] == "Order#by_status#paid"
    finally:
        drop(plain)


def _in_listing_order(store: EventStore, latest: list[Version[Order]]) -> list[Version[Order]]:
    """Streams in listing order: creation order, i.e. the order of each stream's first version
    id."""
    firsts = {v.resource_id: store.read_version(Order, v.resource_id, 1).version_id for v in latest}
    return sorted(latest, key=lambda v: (firsts[v.resource_id], v.resource_id))


def test_rebuild_resumes_from_its_checkpoint(store_url: str) -> None:
    plain = open_store(store_url)
    try:
        latest = _fill(plain, 80)
        # Listing order is creation order, i.e. the order of each stream's first version id.
        victim = _in_listing_order(plain, latest)[50]

        class Flaky(ByStatus):
            broken = True

            def key(self, order: Order) -> tuple[str, str] | None:
                if Flaky.broken and order.customer == victim.state.customer:
                    raise RuntimeError("disk on fire")
                return super().key(order)

        store = EventStore(plain.backend, projections=[Flaky()])
        seen: list[int] = []
        with pytest.raises(ProjectionError, match="disk on fire"):
            projections.rebuild(
                store,
                Flaky,
                segments=1,
                checkpoint_every=0,
                progress=lambda r: seen.append(r.scanned),
            )
        assert seen[0] == 0 and seen[-1] == 33  # the first chunk was done and saved
        saved = store.backend.get([checkpoint_key("Order", "by_status")])[0]
        assert saved is not None
        Flaky.broken = False
        progressed: list[tuple[int, int | None]] = []
        resumed = projections.rebuild(
            store, Flaky, segments=2, progress=lambda r: progressed.append((r.scanned, r.total))
        )
        assert resumed.resumed and resumed.earlier == 33
        # Totals cover both runs: the earlier run's 33 heads come from the checkpoint.
        assert resumed.scanned == 80
        assert resumed.updated + resumed.unchanged + resumed.skipped_newer == 80
        assert progressed[0] == (33, 80) and progressed[-1] == (80, 80)
        assert store.backend.get([checkpoint_key("Order", "by_status")])[0] is None
        for status in ("new", "paid", "shipped"):
            assert keys_of(all_pages(store, Flaky, status)) == _expected(latest, status)
        full = projections.rebuild(store, Flaky, reset=True)
        assert (full.scanned, full.updated, full.resumed) == (80, 0, False)
    finally:
        drop(plain)


def test_erase_reaches_a_stopped_rebuilds_progress(store_url: str) -> None:
    """A rebuild that stopped keeps the key of the last head it passed; erasing that stream
    leaves nothing naming it (the rebuild then starts again from the first stream)."""
    plain = open_store(store_url)
    try:
        latest = _fill(plain, 80)
        victim = _in_listing_order(plain, latest)[50]

        class Stops(ByStatus):
            def key(self, order: Order) -> tuple[str, str] | None:
                if order.customer == victim.state.customer:
                    raise RuntimeError("stopped")
                return super().key(order)

        store = EventStore(plain.backend, projections=[Stops()])
        with pytest.raises(ProjectionError):
            projections.rebuild(store, Stops, segments=1, checkpoint_every=0)
        saved = store.backend.get([checkpoint_key("Order", "by_status")])[0]
        assert saved is not None
        named = json.loads(str(saved["after"]))["position"]["pk"]
        rid = named.split("#", 1)[1]
        store.erase(Order, rid)
        assert store.backend.get([checkpoint_key("Order", "by_status")])[0] is None
        assert not [item for item in scanned(store) if rid in repr(item)]
    finally:
        drop(plain)


def test_rebuild_input_checks(shop: EventStore) -> None:
    with pytest.raises(InvalidInput):
        projections.rebuild(shop, ByStatus, segments=0)
    with pytest.raises(WrongType):
        projections.rebuild(shop, Order)

    class Undeclared(Projection[Order]):
        name = "nope"
        index = "gsi4"

        def key(self, order: Order) -> tuple[str, str] | None:
            return None

    with pytest.raises(ProjectionError):
        projections.rebuild(shop, Undeclared)
    report = projections.rebuild(shop, ByStatus)
    assert (report.scanned, report.updated) == (0, 0)


# -- replay and runners ----------------------------------------------------------------------


def _streams(store: EventStore, lengths: list[int]) -> list[str]:
    ids = []
    for i, length in enumerate(lengths):
        rid = store.append(Order(customer=f"c{i}", total_cents=1)).resource_id
        for number in range(2, length + 1):
            store.append(
                Order(customer=f"c{i}", total_cents=number),
                resource_id=rid,
                expected_version=number - 1,
            )
        ids.append(rid)
    return ids


def test_replay_pages_resume_exactly_after_their_checkpoint(shop: EventStore) -> None:
    _streams(shop, [3, 1, 20, 2])
    everything = keys_of(list(shop.replay(Order)))
    assert len(everything) == 26
    pages = list(shop.replay_pages(Order, page_size=4))
    assert keys_of([v for p in pages for v in p.items]) == everything
    done = 0
    for page in pages:
        done += len(page.items)
        assert keys_of(list(shop.replay(Order, after=page.checkpoint))) == everything[done:]
    # Within each stream, versions come oldest first.
    for rid in {r for r, _ in everything}:
        numbers = [n for r, n in everything if r == rid]
        assert numbers == sorted(numbers) and numbers[0] == 1


def test_replay_checkpoint_checks(shop: EventStore) -> None:
    _streams(shop, [2])
    shop.append(Note(text="x"))
    token = next(iter(shop.replay_pages(Order))).checkpoint
    for bad in ("", "garbage!", "AAAA", 5):
        with pytest.raises(InvalidInput):
            list(shop.replay(Order, after=bad))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="Order"):
        shop.replay(Note, after=token)
    # Across all types, an Order checkpoint skips the types before Order.
    # Across all types, an Order checkpoint also skips the types before Order (Note).
    assert list(shop.replay(after=token)) == []
    assert [v.resource_type for v in shop.replay()].count("Note") == 1


class Recorder:
    name = "recorder"

    def __init__(self, fail_at: int | None = None) -> None:
        self.seen: list[tuple[str, int]] = []
        self.fail_at = fail_at

    def handle(self, version: Version[Any]) -> None:
        if self.fail_at is not None and len(self.seen) == self.fail_at:
            raise RuntimeError("crash")
        self.seen.append((version.resource_id, version.version))


def test_runner_follows_the_feed_and_resumes_without_skipping(shop: EventStore) -> None:
    ids = _streams(shop, [5, 3, 9, 1, 4])
    everything = keys_of(list(shop.feed(types=[Order])))
    crashing = Recorder(fail_at=13)
    with pytest.raises(RuntimeError, match="crash"):
        projections.run(shop, crashing, resource_type=Order, page_size=5)
    assert crashing.seen == everything[:13]
    assert projections.load_checkpoint(shop, "recorder") == 10
    # New versions land in streams the run had already passed before it resumes: the feed
    # hands them over too (a catch-up replay would miss the ones in earlier streams).
    shop.append(Order(customer="c0", total_cents=99), resource_id=ids[0], expected_version=5)
    shop.append(Order(customer="c4", total_cents=99), resource_id=ids[4], expected_version=4)
    resumed = Recorder()
    report = projections.run(shop, resumed, resource_type=Order, page_size=5)
    assert report.started_after == 10 and report.handled == len(resumed.seen)
    # At least once: the interrupted page (positions 11-15) is handed over again, nothing skipped.
    assert crashing.seen[:10] + resumed.seen == [*everything, (ids[0], 6), (ids[4], 5)]
    assert report.checkpoint == shop.last_position() == 24
    # Nothing new: a run does nothing and keeps its checkpoint.
    idle = Recorder()
    assert projections.run(shop, idle, resource_type=Order).handled == 0 and idle.seen == []
    projections.reset_checkpoint(shop, "recorder")
    assert projections.load_checkpoint(shop, "recorder") is None
    limited = projections.run(shop, Recorder(), resource_type=Order, page_size=4, max_pages=2)
    assert (limited.handled, limited.pages, limited.checkpoint) == (8, 2, 8)


class Totals:
    """A projector that writes into the store: one running-total resource per customer."""

    name = "totals"

    def __init__(self, store: EventStore, crash_at: int | None = None) -> None:
        self.store = store
        self.crash_at = crash_at
        self.projected = 0

    def project(self, version: Version[Any]) -> list[eventstore.Append[Any]]:
        if self.crash_at is not None and self.projected == self.crash_at:
            raise RuntimeError("crash")
        self.projected += 1
        rid = f"total-{version.state.customer}"
        try:
            current = self.store.read_version(CustomerTotal, rid)
            total, expected = current.state, current.version
        except StreamNotFound:
            total, expected = CustomerTotal(versions=0), eventstore.NO_STREAM
        return [
            eventstore.Append(
                CustomerTotal(versions=total.versions + 1),
                resource_id=rid,
                expected_version=expected,
            )
        ]


class CustomerTotal(eventstore.Resource):
    resource_type = "projections.CustomerTotal"
    versions: int


def test_a_writing_projector_applies_each_version_exactly_once(shop: EventStore) -> None:
    """Its writes and its checkpoint are one atomic write: a crash between versions, runs
    repeated with appends in between, and a rival runner never count a version twice."""
    ids = _streams(shop, [4, 2, 3])
    crashing = Totals(shop, crash_at=5)
    with pytest.raises(RuntimeError):
        projections.run(shop, crashing, types=[Order], page_size=4)
    assert shop.checkpoint("totals") == crashing.projected == 5
    shop.append(Order(customer="c1", total_cents=7), resource_id=ids[1], expected_version=2)
    for _ in range(2):
        projections.run(shop, Totals(shop), types=[Order], page_size=4)
    shop.append(Order(customer="c2", total_cents=7), resource_id=ids[2], expected_version=3)
    report = projections.run(shop, Totals(shop), types=[Order], page_size=4)
    assert report.commits == 1
    totals = {
        c: shop.read_version(CustomerTotal, f"total-{c}").state.versions for c in ("c0", "c1", "c2")
    }
    assert totals == {"c0": 4, "c1": 3, "c2": 4}
    # A rival runner that read the same checkpoint cannot apply a version again.
    position = shop.checkpoint("totals")
    shop.append(Order(customer="c0", total_cents=8), resource_id=ids[0], expected_version=4)
    newest = next(iter(shop.feed(after=position, types=[Order])))
    shop.append_many(
        Totals(shop).project(newest),
        checkpoint=eventstore.Checkpoint("totals", position, newest.position or 0),
    )
    with pytest.raises(ConcurrencyError) as info:
        shop.append_many(
            Totals(shop).project(newest),
            checkpoint=eventstore.Checkpoint("totals", position, newest.position or 0),
        )
    assert info.value.conflicts[0].resource_id == "totals"
    assert shop.read_version(CustomerTotal, "total-c0").state.versions == 5


def test_runner_over_all_types_ignores_library_items(shop: EventStore) -> None:
    _streams(shop, [2, 2])
    shop.append(Note(text="n"))
    shop.query(ByCustomer, "c0", limit=1)  # makes the cursor secret item
    recorder = Recorder()
    report = projections.run(shop, recorder, name="all-types")
    assert len(recorder.seen) == 5 and report.checkpoint == 5
    with pytest.raises(InvalidInput):
        projections.run(shop, recorder, name="_bad name")


# -- command line ----------------------------------------------------------------------------


def test_cli_rebuild(
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if store_url.startswith("memory"):
        pytest.skip("the command line opens its own store; an in-memory one would be empty")
    plain = open_store(store_url)
    try:
        latest = _fill(plain, 10)
        module = tmp_path / "cli_projections_mod.py"
        module.write_text(
            textwrap.dedent(
                """
                from projections import Projection
                from tests.models import Order

                class ByStatusCli(Projection[Order]):
                    name = "by_status"
                    index = "gsi1"

                    def key(self, order):
                        return None if order.status == "draft" else (order.status, order.customer)
                """
            )
        )
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
        assert rebuild_main([store_url, "cli_projections_mod:ByStatusCli", "--segments", "2"]) == 0
        out, err = capsys.readouterr()
        assert "scanned" in out and "skipped as newer" in out
        figures = {line[2:19].strip(): line[19:].strip() for line in out.splitlines()[1:]}
        indexed = sum(1 for v in latest if v.state.status != "draft")
        assert figures.pop("time").endswith(" s")  # a duration for people: "0.31 s"
        assert figures == {
            "scanned": "10",
            "updated": str(indexed),
            "unchanged": str(10 - indexed),
            "skipped as newer": "0",
        }
        assert "[" in err and "10/10 heads" in err
        store = EventStore(plain.backend, projections=[ByStatus()])
        assert keys_of(store.query(ByStatus, "paid").items) == _expected(latest, "paid")
        assert rebuild_main([store_url, "cli_projections_mod:ByStatusCli", "--quiet"]) == 0
        out, err = capsys.readouterr()
        assert err == "" and "unchanged" in out
        # Usage errors exit 2, like argparse's own.
        assert rebuild_main([store_url, "cli_projections_mod:Missing"]) == 2
        assert rebuild_main([store_url, "no_such_module_xyz:Thing"]) == 2
        assert rebuild_main([store_url, "no-colon"]) == 2
        assert rebuild_main([store_url]) == 2
        assert rebuild_main(["bogus://x", "cli_projections_mod:ByStatusCli"]) == 2
        assert rebuild_main([store_url, "cli_projections_mod:ByStatusCli", "--segments", "0"]) == 2
    finally:
        drop(plain)


def test_eventstore_command_routes_rebuild(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from eventstore.cli import main

    store = open_store(sqlite_url)
    try:
        store.append(Order(customer="ada", status="paid"))
        (tmp_path / "routed_mod.py").write_text("from tests.test_projections import ByStatus\n")
        monkeypatch.chdir(tmp_path)
        assert main(["rebuild", sqlite_url, "routed_mod:ByStatus", "--quiet"]) == 0
        assert "updated" in capsys.readouterr().out
    finally:
        drop(store)


# -- request counts on DynamoDB --------------------------------------------------------------


def test_query_page_costs_two_requests_on_dynamodb(dynamodb_store: EventStore) -> None:
    store = EventStore(dynamodb_store.backend, projections=[ByCustomer()])
    for total in range(5):
        store.append(Order(customer="ada", total_cents=total))
    first = store.query(ByCustomer, "ada", limit=2)  # also reads (or makes) the cursor secret
    before = store.backend.requests()
    page = store.query(ByCustomer, "ada", limit=2, cursor=first.cursor)
    assert store.backend.requests() - before == 2
    assert len(page.items) == 2
    before = store.backend.requests()
    store.list_resources(Order, limit=5)
    assert store.backend.requests() - before == 2
