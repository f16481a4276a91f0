"""The guided demo behind ``eventstore demo``: a small shop on an embedded SQLite file."""

from __future__ import annotations

import os
from decimal import Decimal

from eventstore import ANY, ConcurrencyError, Resource, VersionNotFound, records
from eventstore.backends.sizes import item_size
from eventstore.urls import open_store


class DemoOrder(Resource):
    """An order as a shop would keep it."""

    resource_type = "DemoOrder"
    customer: str
    status: str = "new"
    lines: dict[str, int] = {}
    total: Decimal = Decimal("0")


class DemoCart(Resource):
    """A cart that only keeps its last 3 versions."""

    resource_type = "DemoCart"
    max_versions = 3
    items: list[str] = []


PRICES = {"tea": Decimal("4.20"), "mug": Decimal("9.90"), "honey": Decimal("7.35")}


def _total(lines: dict[str, int]) -> Decimal:
    return sum((PRICES[sku] * qty for sku, qty in lines.items()), Decimal("0"))


def run(path: str) -> None:
    """Run the scenario on a fresh SQLite file at ``path``, printing what happens."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    say = print
    say(f"eventstore demo: a small shop on the SQLite file {path}\n")
    with open_store(f"sqlite:///{path}") as store:
        say("1. Ada opens an order. A new stream gets a ULID id and version 1.")
        lines = {"tea": 2}
        v1 = store.append(
            DemoOrder(customer="ada", lines=lines, total=_total(lines)),
            event="opened",
            metadata={"actor": "ada", "channel": "web"},
        )
        order_id = v1.resource_id
        say(f"   order {order_id} v{v1.version} ({v1.version_id}) total {v1.state.total}")

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
            say(
                f"   clerk-2 is refused: ConcurrencyError(expected={e.expected}, actual={e.actual})"
            )
            say("   nothing was written; clerk-2 rereads, sees 'packed' and leaves it.")

        say("\n4. The full history, oldest first:")
        for version in store.read_stream(DemoOrder, order_id):
            actor = version.metadata.get("actor", "-")
            say(
                f"   v{version.version} {version.recorded_at:%H:%M:%S.%f}"[:-3]
                + f"  {version.event:<11} by {actor:<9} status={version.state.status:<7}"
                f" lines={version.state.lines}"
            )
        say(f"   and what it looked like at v2: {store.read_version(DemoOrder, order_id, 2).state}")

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
        say(f"   after {cart.version} versions the cart holds versions {kept}")
        try:
            store.read_version(DemoCart, cart.resource_id, 1)
        except VersionNotFound as e:
            say(f"   reading v1: VersionNotFound: {e}")

        say("\n6. ANY appends without a version check (it reads the head first).")
        last = store.append(
            DemoCart(items=["gift card"]), resource_id=cart.resource_id, expected_version=ANY
        )
        say(f"   cart is at v{last.version}: {last.state.items}")

        say("\n7. What it costs: one atomic write per append; stored item sizes (DynamoDB rules):")
        big_lines = {"tea": 1}
        big = store.append(
            DemoOrder(
                customer="bob",
                status="new, notes: " + " ".join(f"note-{i}" for i in range(300)),
                lines=big_lines,
                total=_total(big_lines),
            )
        )
        for qty in range(2, 6):
            big = store.append(
                big.state.model_copy(update={"lines": {"tea": qty}, "total": _total({"tea": qty})}),
                resource_id=big.resource_id,
                expected_version=big.version,
                event="qty_changed",
            )
        codecs = {0: "raw JSON", 1: "zstd", 2: "zstd delta vs keyframe", 3: "same as keyframe"}
        sizes = [
            (stored, item_size(stored), stored.get(records.STATE, b""))
            for stored in store.backend.query(f"DemoOrder#{big.resource_id}").items
        ]
        json_size = len(big.state.model_dump_json())
        say(f"   an order of {json_size} bytes of JSON is stored as:")
        for stored, size, blob in sizes:
            sk, position = str(stored[records.SK]), records.sort_position(stored)
            kind = "head" if position is None else ("keyframe, " if position[1] else "version, ")
            if isinstance(blob, bytes) and blob:
                kind += codecs[blob[0]]
            say(f"     {sk:<16} {size:>5} bytes  {kind}")

        types = {"DemoOrder": 0, "DemoCart": 0}
        for version in store.replay():
            if version.resource_type in types:
                types[version.resource_type] += 1
        say(f"\n8. Replay reads every retained version back: {types}")
    say(f"\nDone. The data is in {path}; run again to start over.")
