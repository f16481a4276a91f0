"""Everyday operations on every backend: update with automatic retry, read many at once, lists
and queries filtered on the state, and the typed repository."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventstore
from eventstore import (
    ConcurrencyError,
    EventStore,
    InvalidInput,
    Resource,
    StreamNotFound,
    WrongType,
)
from projections import Projection, list_all, query_all
from tests.models import Order


class Counter(Resource):
    resource_type = "everyday.Counter"
    n: int = 0


def bump(c: Counter) -> Counter:
    return c.model_copy(update={"n": c.n + 1})


def test_update_reads_changes_and_appends(store: EventStore) -> None:
    first = store.append(Counter(), resource_id="c")
    v = store.update(Counter, "c", bump, event="bumped", metadata={"by": "test"})
    assert (v.version, v.state.n, v.event, v.metadata) == (2, 1, "bumped", {"by": "test"})
    # None: nothing to do, nothing appended.
    assert store.update(Counter, "c", lambda c: None).version == 2
    # A refusal propagates and writes nothing.
    with pytest.raises(ValueError, match="no"):
        store.update(Counter, "c", lambda c: (_ for _ in ()).throw(ValueError("no")))
    assert store.read_version(Counter, "c").version == 2
    with pytest.raises(StreamNotFound):
        store.update(Counter, "missing", bump)
    made = store.update(Counter, "fresh", bump, default=Counter(n=41))
    assert (made.version, made.state.n) == (1, 42)
    with pytest.raises(WrongType):
        store.update(Counter, "c", lambda c: Order(customer="x"))  # type: ignore[arg-type,return-value]
    with pytest.raises(InvalidInput):
        store.update(Counter, "c", bump, max_attempts=0)
    assert first.version == 1


def test_update_gives_up_after_max_attempts(store: EventStore) -> None:
    store.append(Counter(), resource_id="c")
    calls = []

    def always_beaten(c: Counter) -> Counter:
        # Another writer lands between every read and append.
        calls.append(c.n)
        store.append(bump(c), resource_id="c", expected_version=c.n + 1)
        return bump(bump(c))

    with pytest.raises(ConcurrencyError):
        store.update(Counter, "c", always_beaten, max_attempts=3)
    assert len(calls) == 3
    assert store.read_version(Counter, "c").state.n == 3  # the other writer's three appends


def test_update_under_eight_threads_applies_every_change_once(store: EventStore) -> None:
    store.append(Counter(), resource_id="c")
    each = 10 if store.backend.requests() else 50
    attempts: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(each):
                tries = [0]

                def counted(c: Counter, tries: list[int] = tries) -> Counter:
                    tries[0] += 1
                    return bump(c)

                store.update(Counter, "c", counted)  # the default: bounded by time
                attempts.append(tries[0])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:3]
    assert store.read_version(Counter, "c").state.n == 8 * each
    assert len(attempts) == 8 * each
    print(f"\n[update] 8 threads x {each}: {sum(attempts) / len(attempts):.2f} attempts per update")


def _process_updates(url: str, count: int, start: Any, out: Any) -> None:
    store = eventstore.open(url)
    start.wait(timeout=120)
    tries = [0]

    def counted(c: Counter) -> Counter:
        tries[0] += 1
        return bump(c)

    for _ in range(count):
        store.update(Counter, "c", counted)  # the default: bounded by time
    out.put(tries[0])
    store.close()


def test_update_under_eight_processes_on_one_sqlite_file(sqlite_url: str) -> None:
    store = eventstore.open(sqlite_url)
    store.append(Counter(), resource_id="c")
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(8), context.Queue()
    workers = [
        context.Process(target=_process_updates, args=(sqlite_url, 50, start, out))
        for _ in range(8)
    ]
    for w in workers:
        w.start()
    tries = [out.get(timeout=300) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert store.read_version(Counter, "c").state.n == 400
    print(f"\n[update] 8 processes x 50: {sum(tries) / 400:.2f} attempts per update")


def test_read_many(store: EventStore) -> None:
    ids = [f"o{n:03d}" for n in range(130)]
    for n, rid in enumerate(ids):
        store.append(Order(customer=rid, total_cents=n), resource_id=rid)
    store.append(Order(customer="o001", total_cents=999), resource_id="o001", expected_version=1)
    asked = ["o005", "missing", "o001", "o005", *ids[100:]]
    before = store.backend.requests()
    found = store.read_many(Order, asked)
    if store.backend.requests():
        # 32 heads in one batch read, then their versions and keyframes in one more.
        assert store.backend.requests() - before == 2
    assert list(found) == ["o005", "o001", *ids[100:]]
    assert found["o001"].version == 2 and found["o001"].state.total_cents == 999
    assert all(v.state.customer == rid for rid, v in found.items())
    assert store.read_many(Order, []) == {}
    with pytest.raises(WrongType):
        store.read_many(Order, "o001")
    everything = store.read_many(Order, ids)
    assert list(everything) == ids


class ByCustomerInitial(Projection[Order]):
    name = "by_initial"
    index = "gsi1"

    def key(self, order: Order) -> tuple[str, str]:
        return ("all", f"{order.total_cents:06d}")


def test_where_filters_while_paging(store_url: str) -> None:
    store = eventstore.open(store_url, projections=[ByCustomerInitial()])
    store.create_table(feed="inline")
    try:
        for n in range(40):
            store.append(Order(customer=f"c{n}", total_cents=n, status="paid" if n % 3 else "new"))
        paid = store.list_resources(Order, where=lambda o: o.status == "paid", limit=5)
        assert len(paid) == 5 and all(v.state.status == "paid" for v in paid)
        rest = store.list_resources(
            Order, where=lambda o: o.status == "paid", limit=100, cursor=paid.cursor
        )
        assert rest.cursor is None
        assert len(paid) + len(rest) == len([n for n in range(40) if n % 3])
        page = store.query(ByCustomerInitial, "all", where=lambda o: o.total_cents > 30, limit=4)
        assert [v.state.total_cents for v in page] == [31, 32, 33, 34]
        assert [
            v.state.total_cents for v in query_all(store, ByCustomerInitial, "all", limit=3)
        ] == [0, 1, 2]
        tail = list(query_all(store, ByCustomerInitial, "all", where=lambda o: o.total_cents >= 38))
        assert [v.state.total_cents for v in tail] == [38, 39]
        assert len(list(list_all(store, Order, limit=7, page_size=3))) == 7
        with pytest.raises(WrongType):
            store.list_resources(Order, where="paid")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            list(list_all(store, Order, limit=0))
    finally:
        from tests.conftest import drop

        drop(store)


@settings(max_examples=25, deadline=None)
@given(
    totals=st.lists(st.integers(0, 9), min_size=0, max_size=30),
    threshold=st.integers(0, 10),
    limit=st.integers(1, 7),
)
def test_where_limit_and_cursor_page_through_exactly_the_filtered_list(
    totals: list[int], threshold: int, limit: int
) -> None:
    store = eventstore.open("memory://")
    for n, total in enumerate(totals):
        store.append(Order(customer=f"c{n:02d}", total_cents=total))
    want = [f"c{n:02d}" for n, t in enumerate(totals) if t >= threshold][::-1]  # newest first
    got: list[str] = []
    cursor = None
    while True:
        page = store.list_resources(
            Order, where=lambda o: o.total_cents >= threshold, limit=limit, cursor=cursor
        )
        assert len(page) <= limit
        got += [v.state.customer for v in page]
        if page.cursor is None:
            break
        assert len(page) == limit  # a cursor only comes with a full page
        cursor = page.cursor
    assert got == want


def test_repository(store: EventStore) -> None:
    orders = store.repository(Order)
    v = orders.save(Order(customer="ada"), id="o-1", event="opened")
    assert orders.get("o-1").state.customer == "ada" and orders.exists("o-1")
    assert orders.find("nope") is None and not orders.exists("nope")
    with pytest.raises(StreamNotFound):
        orders.get("nope")
    paid = orders.update("o-1", lambda o: o.model_copy(update={"status": "paid"}))
    assert paid.version == 2 and orders.get("o-1", 1).state.status == "new"
    assert [x.version for x in orders.history("o-1")] == [1, 2]
    assert [x.version for x in orders.history("o-1", reverse=True)] == [2, 1]
    orders.save(Order(customer="bob"), id="o-2")
    assert set(orders.many(["o-1", "o-2", "o-3"])) == {"o-1", "o-2"}
    assert [x.resource_id for x in orders.list(where=lambda o: o.status == "paid")] == ["o-1"]
    assert v.version == 1
