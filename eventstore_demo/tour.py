"""The guided tour: a small shop, each step printing what happened and what its numbers mean."""

from __future__ import annotations

import os
import uuid
from decimal import Decimal
from typing import Any

import projections
from eventstore import (
    ANY,
    ConcurrencyError,
    EventStore,
    Resource,
    Version,
    VersionNotFound,
    records,
)
from eventstore.backends.sizes import item_size
from eventstore.urls import open_store
from projections import Projection


class DemoOrder(Resource):
    """An order as a shop would keep it."""

    resource_type = "DemoOrder"
    customer: str
    status: str = "new"
    lines: dict[str, int] = {}
    total: Decimal = Decimal("0")
    notes: str = ""


class DemoCart(Resource):
    """A cart that only keeps its last 3 versions."""

    resource_type = "DemoCart"
    max_versions = 3
    items: list[str] = []


class OrdersByStatus(Projection[DemoOrder]):
    """Orders by status, newest customer name first within a status."""

    name = "by_status"
    index = "gsi1"

    def key(self, order: DemoOrder) -> tuple[str, str] | None:
        return (order.status, order.customer)


class OrdersByCustomer(Projection[DemoOrder]):
    """Added later in the tour: orders of one customer, by total."""

    name = "by_customer"
    index = "gsi2"

    def key(self, order: DemoOrder) -> tuple[str, str] | None:
        return (order.customer, f"{order.total:012.2f}")


class Revenue:
    """A projector: adds up paid orders as the feed hands them over."""

    name = "revenue"

    def __init__(self) -> None:
        self.paid: dict[str, Decimal] = {}

    def handle(self, version: Version[Any]) -> None:
        if version.event == "paid":
            self.paid[version.resource_id] = version.state.total


PRICES = {"tea": Decimal("4.20"), "mug": Decimal("9.90"), "honey": Decimal("7.35")}


def _total(lines: dict[str, int]) -> Decimal:
    return sum((PRICES[sku] * qty for sku, qty in lines.items()), Decimal("0"))


def run(path: str, *, dynamodb: str | None = None) -> None:
    """Run the tour on a fresh SQLite file at ``path`` (and on DynamoDB at ``dynamodb``)."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    say = print
    say(f"eventstore demo: a small shop on the SQLite file {path}\n")
    with open_store(f"sqlite:///{path}", projections=[OrdersByStatus()]) as store:
        store.create_table()
        order_id = _versions_and_conflicts(store, say)
        _trimming(store, say)
        _queries(store, say)
        _rebuild(store, say)
        _feed(store, say, order_id)
        _storage(store, say)
    if dynamodb:
        _on_dynamodb(dynamodb, say)
    else:
        say(
            "\n10. The same on DynamoDB: start DynamoDB Local with `.venv/bin/eventstore local`, then run "
            "`eventstore demo --dynamodb http://127.0.0.1:8000` to see requests and capacity "
            "units per operation."
        )
    say(f"\nDone. The data is in {path}; run again to start over.")


def _versions_and_conflicts(store: EventStore, say: Any) -> str:
    say("1. Ada opens an order. A new stream gets a ULID id and version 1.")
    lines = {"tea": 2}
    v1 = store.append(
        DemoOrder(customer="ada", lines=lines, total=_total(lines)),
        event="opened",
        metadata={"actor": "ada", "channel": "web"},
    )
    order_id = v1.resource_id
    say(f"   order {order_id} v{v1.version} ({v1.version_id}) total {v1.state.total}")
    say("   The version id is a ULID too: it sorts by time and carries the version number.")

    say("\n2. She adds a mug, then pays; each change appends a version with an event.")
    lines = {"tea": 2, "mug": 1}
    v2 = store.append(
        DemoOrder(customer="ada", lines=lines, total=_total(lines)),
        resource_id=order_id,
        expected_version=v1.version,
        event="line_added",
        metadata={"actor": "ada"},
    )
    v3 = store.append(
        v2.state.model_copy(update={"status": "paid"}),
        resource_id=order_id,
        expected_version=v2.version,
        event="paid",
        metadata={"actor": "payments", "correlation_id": "pay-1182"},
    )
    say(f"   now v{v3.version}: status {v3.state.status}, total {v3.state.total}")
    say("   expected_version says which version the change was based on: 1, then 2.")

    say("\n3. Two clerks edit the same order at once. Both read v3; the first one wins.")
    seen = store.read_version(DemoOrder, order_id)
    store.append(
        seen.state.model_copy(update={"status": "packed"}),
        resource_id=order_id,
        expected_version=seen.version,
        event="packed",
        metadata={"actor": "clerk-1"},
    )
    try:
        store.append(
            seen.state.model_copy(update={"status": "cancelled"}),
            resource_id=order_id,
            expected_version=seen.version,
            event="cancelled",
            metadata={"actor": "clerk-2"},
        )
    except ConcurrencyError as e:
        say(f"   clerk-2 is refused: ConcurrencyError(expected={e.expected}, actual={e.actual})")
        say(
            f"   clerk-2 based the change on v{e.expected}, but clerk-1 made v{e.actual}; "
            "nothing was written. clerk-2 rereads, sees 'packed' and leaves it."
        )

    say("\n4. The full history, oldest first (nothing is ever overwritten):")
    for version in store.read_stream(DemoOrder, order_id):
        actor = version.metadata.get("actor", "-")
        say(
            f"   v{version.version} {version.recorded_at:%H:%M:%S.%f}"[:-3]
            + f"  {version.event:<11} by {actor:<9} status={version.state.status:<7}"
            f" lines={version.state.lines}"
        )
    old = store.read_version(DemoOrder, order_id, 2).state
    say(f"   and what it looked like at v2: status={old.status}, total={old.total}")
    return order_id


def _trimming(store: EventStore, say: Any) -> None:
    say("\n5. A cart keeps only its last 3 versions (max_versions = 3).")
    cart = store.append(DemoCart(items=[]), event="created")
    for item in ["tea", "mug", "honey", "tea", "mug"]:
        current = store.read_version(DemoCart, cart.resource_id)
        cart = store.append(
            DemoCart(items=[*current.state.items, item]),
            resource_id=cart.resource_id,
            expected_version=current.version,
            event="item_added",
        )
    kept = [v.version for v in store.read_stream(DemoCart, cart.resource_id)]
    say(f"   after {cart.version} versions the cart holds versions {kept}:")
    say("   each append removed the oldest in the same atomic write, so there are never more.")
    try:
        store.read_version(DemoCart, cart.resource_id, 1)
    except VersionNotFound as e:
        say(f"   reading v1: VersionNotFound: {e}")
    last = store.append(
        DemoCart(items=["gift card"]), resource_id=cart.resource_id, expected_version=ANY
    )
    say(f"   ANY appends without a version check (it reads the head first): v{last.version}")


def _queries(store: EventStore, say: Any) -> None:
    say("\n6. A projection: orders by status, kept in an index in the same write as each order.")
    customers = ["bob", "cy", "dee", "eve", "fay", "gus"]
    for n, customer in enumerate(customers):
        lines = {"honey": n + 1}
        made = store.append(DemoOrder(customer=customer, lines=lines, total=_total(lines)))
        if n % 3 != 2:
            store.append(
                made.state.model_copy(update={"status": "paid"}),
                resource_id=made.resource_id,
                expected_version=1,
                event="paid",
            )
    page = store.query(OrdersByStatus, "paid", limit=2)
    shown = [v.state.customer for v in page]
    say(f"   paid orders, 2 per page: {shown}, cursor {'given' if page.cursor else 'none'}")
    pages = 1
    while page.cursor is not None:
        page = store.query(OrdersByStatus, "paid", limit=2, cursor=page.cursor)
        shown += [v.state.customer for v in page]
        pages += 1
    say(f"   all of them in {pages} pages: {shown}")
    say(
        "   sorted by the sort value (the customer); ada is not there: her order is 'packed'. "
        "Each page costs 2 requests (the index, then the versions)."
    )
    new = [v.state.customer for v in store.query(OrdersByStatus, "new")]
    say(f"   still new: {new}")


def _rebuild(store: EventStore, say: Any) -> None:
    say("\n7. A new access pattern: orders by customer. Added after the orders were written,")
    say("   so its index is empty until a rebuild computes it from the stored states.")
    both = EventStore(store.backend, projections=[OrdersByStatus(), OrdersByCustomer()])
    before = len(both.query(OrdersByCustomer, "bob").items)
    report = projections.rebuild(both, OrdersByCustomer)
    after = [str(v.state.total) for v in both.query(OrdersByCustomer, "bob")]
    say(f"   bob's orders before the rebuild: {before}; after: totals {after}")
    say(
        f"   the rebuild scanned {report.scanned} order streams (ada's and the 6 new ones) and "
        f"updated {report.updated}; a second run would update 0."
    )


def _feed(store: EventStore, say: Any, order_id: str) -> None:
    say("\n8. The feed: every version gets a position, gapless, in commit order.")
    entries = list(store.feed_entries())
    for entry in entries[:4]:
        say(
            f"   position {entry.position}: {entry.resource_type} v{entry.version} "
            f"({entry.event or '-'})"
        )
    say(f"   ... {len(entries)} positions in all; last_position() = {store.last_position()}.")
    revenue = Revenue()
    first = projections.run(store, revenue, types=[DemoOrder])
    say(
        f"   a projector read {first.handled} order versions and saw "
        f"{len(revenue.paid)} payments, {sum(revenue.paid.values())} in all; its checkpoint "
        f"is position {first.checkpoint}."
    )
    lines = {"mug": 3}
    paid = store.append(DemoOrder(customer="hal", lines=lines, total=_total(lines)))
    store.append(
        paid.state.model_copy(update={"status": "paid"}),
        resource_id=paid.resource_id,
        expected_version=1,
        event="paid",
    )
    again = projections.run(store, revenue, types=[DemoOrder])
    say(
        f"   after hal's order and payment it resumes there: {again.handled} new versions, "
        f"{len(revenue.paid)} payments, {sum(revenue.paid.values())}."
    )
    assert order_id in {e.resource_id for e in entries}


def _storage(store: EventStore, say: Any) -> None:
    say("\n9. What is stored: one atomic write per append; item sizes by DynamoDB's rules.")
    notes = " ".join(f"note-{i}" for i in range(300))
    big = store.append(DemoOrder(customer="bob", lines={"tea": 1}, notes=notes))
    for qty in range(2, 6):
        big = store.append(
            big.state.model_copy(update={"lines": {"tea": qty}, "total": _total({"tea": qty})}),
            resource_id=big.resource_id,
            expected_version=big.version,
            event="qty_changed",
        )
    codecs = {0: "raw JSON", 1: "zstd", 2: "zstd delta vs keyframe", 3: "same as keyframe"}
    json_size = len(big.state.model_dump_json())
    say(f"   an order of {json_size} bytes of JSON, changed 4 times, is stored as:")
    for stored in store.backend.query(f"DemoOrder#{big.resource_id}").items:
        sk, position = str(stored[records.SK]), records.sort_position(stored)
        blob = stored.get(records.STATE, b"")
        if position is None:
            kind = "head: version number, index keys"
        elif position[1]:
            kind = "keyframe: the group's first state, "
        else:
            kind = "version: "
        if isinstance(blob, bytes) and blob:
            kind += codecs[blob[0]]
        say(f"     {sk:<16} {item_size(stored):>5} bytes  {kind}")
    say("   Versions after a keyframe store only what changed against it (a delta).")


def _on_dynamodb(endpoint: str, say: Any) -> None:
    table = f"eventstore-demo-{uuid.uuid4().hex[:8]}"
    say(f"\n10. The same on DynamoDB at {endpoint} (table {table}).")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")  # DynamoDB Local takes any credentials
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    url = f"dynamodb://{table}?region=us-east-1&endpoint_url={endpoint}"
    with open_store(url, projections=[OrdersByStatus()]) as store:
        store.create_table()
        try:
            usage = store.backend.usage()
            notes = " ".join(f"note-{i}" for i in range(250))
            v = store.append(DemoOrder(customer="ada", notes=notes))
            spent = store.backend.usage() - usage
            say(
                f"   append of a {len(v.state.model_dump_json())}-byte order: {spent.requests} "
                f"request, {spent.write_units:g} write units (one transaction writing the "
                "version, its keyframe and the head: the feed's positions are given afterwards "
                "by an indexer reading the table's stream, so writers share no item; DynamoDB "
                "charges 2 units per KB for each item written in a transaction)"
            )
            usage = store.backend.usage()
            for n in range(2, 7):
                v = store.append(
                    v.state.model_copy(update={"total": Decimal(n)}),
                    resource_id=v.resource_id,
                    expected_version=v.version,
                )
            spent = store.backend.usage() - usage
            say(
                f"   5 small edits: {spent.requests} requests, {spent.write_units:g} write units "
                "(each writes the version and the head, both under 1 KB: the version is a "
                "delta against the keyframe; units as DynamoDB reports them, its index writes "
                "included)"
            )
            usage = store.backend.usage()
            store.read_version(DemoOrder, v.resource_id, 3)
            spent = store.backend.usage() - usage
            say(
                f"   read of version 3: {spent.requests} request, {spent.read_units:g} read "
                f"unit{'' if spent.read_units == 1 else 's'} (one query reads the version, the later ones of its group and the keyframe; "
                "their sizes add up before rounding to 4 KB units)"
            )
            usage = store.backend.usage()
            page = store.query(OrdersByStatus, "new")
            spent = store.backend.usage() - usage
            say(
                f"   query of the 'new' orders: {len(page)} found, {spent.requests} requests, "
                f"{spent.read_units:g} read units"
            )
        finally:
            from eventstore.backends.dynamodb import DynamoDBBackend

            if isinstance(store.backend, DynamoDBBackend):
                store.backend.delete_table()
