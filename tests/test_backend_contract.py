"""The backend contract, one suite over every backend: memory, SQLite (a file) and DynamoDB Local.

In the style of eventsourcing's reusable recorder test cases: each test gets a fresh, empty table
and checks only what ``eventstore/backends/base.py`` promises. Request counts and DynamoDB's own
behaviours (tokens, retries, the server's size rule) are in ``test_dynamodb_backend.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import eventstore
from eventstore.backends.base import (
    INDEX_ATTRIBUTES,
    MAX_ITEM_SIZE,
    MAX_WRITE_ACTIONS,
    Backend,
    Condition,
    ConditionFailed,
    Delete,
    Item,
    NextPosition,
    Put,
    SortCondition,
    Update,
    Write,
)
from eventstore.errors import InvalidInput, ItemTooLarge
from tests.conftest import drop, dynamodb_url, new_table_name


@pytest.fixture
def backend(store_url: str) -> Iterator[Backend]:
    store = eventstore.open(store_url)
    store.backend.create_table()  # the bare table: no feed configuration item
    try:
        yield store.backend
    finally:
        drop(store)


def counted(backend: Backend, action: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``action``; return its result and the requests it sent (0 on embedded backends, which
    do not count; test_dynamodb_backend.py checks the counts)."""
    before = backend.requests()
    result = action()
    return result, backend.requests() - before


def one_request(backend: Backend, sent: int) -> bool:
    return sent == (1 if backend.requests() else 0)


def item(pk: str, sk: str, **attrs: Any) -> Item:
    return {"pk": pk, "sk": sk, **attrs}


def get1(backend: Backend, pk: str, sk: str) -> Item | None:
    return backend.get([(pk, sk)])[0]


# --- values ---


def test_values_round_trip_with_their_types(backend: Backend) -> None:
    big = 10**37 + 12345678901234567890123456789012345  # 38 significant digits
    stored = item(
        "p",
        "s",
        text="héllo \U0001f600",
        empty="",
        zero=0,
        negative=-42,
        big=big,
        smallest=-(10**38 - 1),
        blob=b"\x00\xffbytes",
        no_bytes=b"",
        yes=True,
        no=False,
    )
    backend.write([Put(stored)])
    got = get1(backend, "p", "s")
    assert got == stored
    assert got is not None
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in stored.items()}
    assert len(str(big)) == 38


# --- writes and conditions ---


def test_put_conditions(backend: Backend) -> None:
    first = item("p", "s", n=1, name="b")
    backend.write([Put(first, Condition(exists=False))])
    with pytest.raises(ConditionFailed) as failed:
        backend.write([Put(item("p", "s", n=9), Condition(exists=False))])
    assert (failed.value.index, failed.value.item) == (0, first)

    second = item("p", "s", n=2, name="b")
    backend.write([Put(second, Condition(equals={"n": 1}, less_than={"name": "c"}))])
    assert get1(backend, "p", "s") == second

    failing = [
        Condition(equals={"n": 1}),  # wrong value
        Condition(equals={"n": "2"}),  # right value, wrong type
        Condition(equals={"missing": 1}),
        Condition(less_than={"n": 2}),  # not strictly less
        Condition(less_than={"name": "a"}),
        Condition(less_than={"missing": "z"}),
        Condition(less_than={"n": "9"}),  # type mismatch
    ]
    for condition in failing:
        with pytest.raises(ConditionFailed) as failed:
            backend.write([Put(item("p", "s", n=3), condition)])
        assert failed.value.item == second, condition
    with pytest.raises(ConditionFailed) as failed:
        backend.write([Put(item("p", "absent"), Condition(exists=True))])
    assert (failed.value.index, failed.value.item) == (0, None)
    assert get1(backend, "p", "s") == second


def test_or_absent_holds_for_a_missing_item(backend: Backend) -> None:
    at_most = Condition(less_than={"v": 5}, or_absent=True)
    backend.write([Update(("p", "h"), set={"v": 3}, condition=at_most)])  # absent: holds
    backend.write([Update(("p", "h"), set={"v": 4}, condition=at_most)])  # 3 < 5: holds
    with pytest.raises(ConditionFailed) as failed:
        backend.write(
            [
                Update(
                    ("p", "h"),
                    set={"v": 9},
                    condition=Condition(less_than={"v": 4}, or_absent=True),
                )
            ]
        )
    assert failed.value.item == item("p", "h", v=4)


def test_update_sets_removes_and_creates(backend: Backend) -> None:
    backend.write([Update(("p", "new"), set={"a": 1, "b": "x"})])
    assert get1(backend, "p", "new") == item("p", "new", a=1, b="x")
    backend.write([Update(("p", "new"), set={"a": 2}, remove=frozenset({"b", "never"}))])
    assert get1(backend, "p", "new") == item("p", "new", a=2)

    with pytest.raises(ConditionFailed) as failed:
        backend.write([Update(("p", "new"), set={"a": 3}, condition=Condition(equals={"a": 1}))])
    assert (failed.value.index, failed.value.item) == (0, item("p", "new", a=2))
    backend.write([Update(("p", "new"), set={"a": 3}, condition=Condition(less_than={"a": 3}))])
    with pytest.raises(ConditionFailed):
        backend.write([Update(("p", "new"), set={"a": 4}, condition=Condition(exists=False))])
    with pytest.raises(ConditionFailed) as failed:
        backend.write([Update(("p", "none"), set={"a": 1}, condition=Condition())])
    assert failed.value.item is None
    assert get1(backend, "p", "none") is None

    # An Update with nothing to change still creates the bare item, alone or in a batch.
    backend.write([Update(("p", "bare1"))])
    backend.write(
        [Update(("p", "bare2")), Update(("p", "bare3"), condition=Condition(exists=False))]
    )
    assert backend.get([("p", "bare1"), ("p", "bare2"), ("p", "bare3")]) == [
        item("p", "bare1"),
        item("p", "bare2"),
        item("p", "bare3"),
    ]
    assert get1(backend, "p", "new") == item("p", "new", a=3)


def test_delete_conditions(backend: Backend) -> None:
    backend.write([Delete(("p", "absent"))])  # not an error
    with pytest.raises(ConditionFailed) as failed:
        backend.write([Delete(("p", "absent"), Condition())])
    assert failed.value.item is None
    backend.write([Put(item("p", "s", v=1))])
    with pytest.raises(ConditionFailed) as failed:
        backend.write([Delete(("p", "s"), Condition(equals={"v": 2}))])
    assert failed.value.item == item("p", "s", v=1)
    backend.write([Delete(("p", "s"), Condition(equals={"v": 1}))])
    assert get1(backend, "p", "s") is None


def test_batch_failure_names_the_write_and_writes_nothing(backend: Backend) -> None:
    current = item("p", "head", v=3)
    backend.write([Put(current)])
    batch = [
        Put(item("p", "v4", x=1), Condition(exists=False)),
        Delete(("p", "v1")),
        Update(("p", "head"), set={"v": 4}, condition=Condition(equals={"v": 2})),
        Put(item("p", "other"), Condition(exists=False)),
    ]
    with pytest.raises(ConditionFailed) as failed:
        backend.write(batch)
    assert (failed.value.index, failed.value.item) == (2, current)
    with pytest.raises(ConditionFailed):
        backend.write([Put(item("p", "head"), Condition(exists=False))])
    assert backend.get([("p", "v4"), ("p", "head"), ("p", "other")]) == [None, current, None]


def test_batch_applies_everything_in_one_request(backend: Backend) -> None:
    backend.write([Put(item("p", "old"))])
    batch = [
        Put(item("p", "v1", n=1), Condition(exists=False)),
        Update(("p", "head"), set={"v": 1}),
        Delete(("p", "old"), Condition()),
    ]
    _, sent = counted(backend, lambda: backend.write(batch, token=uuid.uuid4().hex))
    assert one_request(backend, sent)
    assert backend.get([("p", "v1"), ("p", "head"), ("p", "old")]) == [
        item("p", "v1", n=1),
        item("p", "head", v=1),
        None,
    ]
    full = [Put(item("p", f"i{i:03}")) for i in range(MAX_WRITE_ACTIONS)]
    _, sent = counted(backend, lambda: backend.write(full))
    assert one_request(backend, sent)


def test_invalid_batches_send_nothing(backend: Backend) -> None:
    too_many = [Put(item("p", f"i{i}")) for i in range(MAX_WRITE_ACTIONS + 1)]
    same_key = [Put(item("p", "s")), Update(("p", "s"), set={"a": 1})]
    long_token = "x" * 37  # DynamoDB allows 36
    before = backend.requests()
    for batch in (too_many, same_key):
        with pytest.raises(InvalidInput):
            backend.write(batch)
    with pytest.raises(InvalidInput):
        backend.write([Put(item("p", "s")), Put(item("p", "t"))], token=long_token)
    backend.write([])
    assert backend.requests() == before


def test_puts_into_a_joined_table_are_part_of_the_atomic_write(
    backend: Backend, store_url: str
) -> None:
    """A Put with ``into`` lands in the other table in the same all-or-nothing write where the
    backend joins it (DynamoDB: same endpoint and region); elsewhere it is refused, nothing sent."""
    on_dynamodb = store_url.startswith("dynamodb")
    other_store = eventstore.open(dynamodb_url(new_table_name()) if on_dynamodb else "memory://")
    other = other_store.backend
    other.create_table()
    try:
        batch: list[Write] = [
            Put(item("p", "v1"), Condition(exists=False)),
            Put(item("p", "v1", there=1), Condition(exists=False), into=other),
        ]
        assert backend.joins(other) == on_dynamodb
        if not on_dynamodb:
            with pytest.raises(InvalidInput):
                backend.write(batch)
            assert get1(backend, "p", "v1") is None and get1(other, "p", "v1") is None
            return
        _, sent = counted(backend, lambda: backend.write(batch))
        assert one_request(backend, sent)
        assert get1(backend, "p", "v1") == item("p", "v1")
        assert get1(other, "p", "v1") == item("p", "v1", there=1)
        again: list[Write] = [
            Put(item("p", "v2"), Condition(exists=False)),
            Put(item("p", "v1", there=2), Condition(exists=False), into=other),
        ]
        with pytest.raises(ConditionFailed) as failed:
            backend.write(again)
        assert (failed.value.index, failed.value.item) == (1, item("p", "v1", there=1))
        assert get1(backend, "p", "v2") is None
    finally:
        drop(other_store)


# --- reads ---


def test_get_in_key_order_with_missing_keys(backend: Backend) -> None:
    backend.write([Put(item("p", "a", n=1)), Put(item("p", "c", n=3))])
    keys = [("p", "c"), ("p", "zz"), ("p", "a"), ("q", "a"), ("p", "c")]
    got, sent = counted(backend, lambda: backend.get(keys))
    assert got == [item("p", "c", n=3), None, item("p", "a", n=1), None, item("p", "c", n=3)]
    assert one_request(backend, sent)
    got, sent = counted(backend, lambda: backend.get([("p", "zz")], consistent=False))
    assert got == [None] and one_request(backend, sent)
    assert backend.get([]) == []


SKS = ["a", "ab", "abc", "b", "c", "d"]
OPS: list[tuple[SortCondition, list[str]]] = [
    (SortCondition("=", "ab"), ["ab"]),
    (SortCondition("<", "b"), ["a", "ab", "abc"]),
    (SortCondition("<=", "b"), ["a", "ab", "abc", "b"]),
    (SortCondition(">", "b"), ["c", "d"]),
    (SortCondition(">=", "b"), ["b", "c", "d"]),
    (SortCondition("begins_with", "ab"), ["ab", "abc"]),
    (SortCondition("between", "ab", "c"), ["ab", "abc", "b", "c"]),
]


def test_query_table_every_sort_condition(backend: Backend) -> None:
    backend.write([Put(item("p", sk, x=sk)) for sk in SKS] + [Put(item("q", "a"))])
    for condition, expected in OPS:
        page, sent = counted(backend, lambda c=condition: backend.query("p", sk=c))
        assert one_request(backend, sent)
        assert [i["sk"] for i in page.items] == expected, condition
        assert page.last_key is None
        page = backend.query("p", sk=condition, forward=False, consistent=False)
        assert [i["sk"] for i in page.items] == expected[::-1], condition
    whole = backend.query("p").items
    assert whole == [item("p", sk, x=sk) for sk in SKS]
    assert backend.query("none").items == []


def test_query_gsi_is_sparse_and_projects_keys(backend: Backend) -> None:
    writes = [
        Put(item(f"h{n}", "head", gsi1pk="type#A", gsi1sk=sk, v=n, id=f"id{n}", state=b"big"))
        for n, sk in enumerate(SKS)
    ]
    writes += [
        Put(item("x1", "head", gsi1pk="type#A", v=1)),  # no sort key attribute: not indexed
        Put(item("x2", "head", gsi1sk="a", v=1)),  # no partition key attribute: not indexed
        Put(item("x3", "head", gsi2pk="type#A", gsi2sk="a")),  # another index
        Put(item("x4", "head", gsi1pk="type#B", gsi1sk="a")),
    ]
    backend.write(writes)
    for condition, expected in OPS:
        page, sent = counted(
            backend, lambda c=condition: backend.query("type#A", sk=c, index="gsi1")
        )
        assert one_request(backend, sent)
        assert [i["gsi1sk"] for i in page.items] == expected, condition
        back = backend.query("type#A", sk=condition, index="gsi1", forward=False)
        assert [i["gsi1sk"] for i in back.items] == expected[::-1], condition
    heads = backend.query("type#A", index="gsi1").items
    assert [h["pk"] for h in heads] == [f"h{n}" for n in range(len(SKS))]
    # The index carries the keys plus the head's version number and id; states are read by key.
    assert heads[0] == {
        "pk": "h0",
        "sk": "head",
        "gsi1pk": "type#A",
        "gsi1sk": "a",
        **{name: value for name, value in (("v", 0), ("id", "id0")) if name in INDEX_ATTRIBUTES},
    }
    assert [h["pk"] for h in backend.query("type#A", index="gsi2").items] == ["x3"]
    with pytest.raises(InvalidInput):
        backend.query("type#A", index="gsi9")


def test_updates_keep_every_index_exact(backend: Backend) -> None:
    # An update in place may leave unchanged index columns alone (SQLite does): whatever it
    # changes, moves, adds or removes must show in the index queries at once.
    def listed(index: str, pk: str) -> list[tuple[str, str]]:
        return [(i["pk"], i[f"{index}sk"]) for i in backend.query(pk, index=index).items]

    backend.write(
        [
            Put(item("a", "h", gsi1pk="T", gsi1sk="1", gsi2pk="S", gsi2sk="x", n=1)),
            Put(item("b", "h", gsi1pk="T", gsi1sk="2", n=1)),
        ]
    )
    backend.write([Update(("a", "h"), set={"n": 2})])  # no index column changes
    assert listed("gsi1", "T") == [("a", "1"), ("b", "2")]
    assert listed("gsi2", "S") == [("a", "x")]
    backend.write([Update(("a", "h"), set={"gsi1sk": "3"}, remove=frozenset({"gsi2pk"}))])
    assert listed("gsi1", "T") == [("b", "2"), ("a", "3")]
    assert listed("gsi2", "S") == []
    backend.write([Update(("b", "h"), set={"gsi2pk": "S", "gsi2sk": "y", "gsi1pk": "U"})])
    assert listed("gsi1", "T") == [("a", "3")]
    assert listed("gsi1", "U") == [("b", "2")]
    assert listed("gsi2", "S") == [("b", "y")]
    backend.write([Update(("a", "h"), set={"gsi2pk": "S", "gsi2sk": "w"})])
    assert listed("gsi2", "S") == [("a", "w"), ("b", "y")]
    assert get1(backend, "a", "h") == item(
        "a", "h", gsi1pk="T", gsi1sk="3", gsi2pk="S", gsi2sk="w", n=2
    )


def test_query_pages_with_limit_and_start(backend: Backend) -> None:
    sks = [f"s{i:02}" for i in range(7)]
    backend.write([Put(item("p", sk, gsi0pk="all", gsi0sk=sk)) for sk in sks])
    for index in (None, "gsi0"):
        for forward in (True, False):
            seen: list[str] = []
            start: Item | None = None
            pages = 0
            while True:
                page = backend.query(
                    "p" if index is None else "all",
                    index=index,
                    forward=forward,
                    limit=3,
                    start=start,
                )
                pages += 1
                assert len(page.items) <= 3
                seen += [str(i["sk"]) for i in page.items]
                if page.last_key is None:
                    break
                start = page.last_key
            assert seen == (sks if forward else sks[::-1])
            assert pages == 3
    page = backend.query("p", sk=SortCondition(">", "s02"), limit=2)
    assert [i["sk"] for i in page.items] == ["s03", "s04"]
    assert page.last_key == {"pk": "p", "sk": "s04"}


def test_scan_segments_cover_everything_once(backend: Backend) -> None:
    keys = {(f"p{i % 7}", f"s{i:03}") for i in range(60)}
    for batch in range(0, 60, 25):
        backend.write([Put(item(pk, sk)) for pk, sk in sorted(keys)[batch : batch + 25]])
    seen: list[tuple[str, str]] = []
    for segment in range(2):
        start: Item | None = None
        while True:
            page, sent = counted(
                backend,
                lambda s=segment, st=start: backend.scan(segment=s, segments=2, start=st, limit=8),
            )
            assert one_request(backend, sent)
            seen += [(str(i["pk"]), str(i["sk"])) for i in page.items]
            if page.last_key is None:
                break
            start = page.last_key
    assert len(seen) == len(keys)
    assert set(seen) == keys
    assert {(str(i["pk"]), str(i["sk"])) for i in backend.scan().items} == keys
    with pytest.raises(InvalidInput):
        backend.scan(segment=2, segments=2)


# --- item size ---


def test_item_too_large_is_refused_before_sending(backend: Backend) -> None:
    """A backend with an item limit (DynamoDB's 400 KB) refuses a larger item before sending
    anything; the embedded backends, which have none, store it whole and read it back."""
    huge = item("p", "s", b=b"x" * MAX_ITEM_SIZE)
    batches: list[list[Write]] = [
        [Put(huge)],
        [Put(item("p", "ok")), Put(huge)],
        [Update(("p", "u"), set={"b": b"x" * MAX_ITEM_SIZE})],
    ]
    if backend.max_item_bytes is None:
        for batch in batches:
            backend.write(batch)
        assert backend.get([("p", "s"), ("p", "u")]) == [huge, {**item("p", "u"), "b": huge["b"]}]
        return
    assert backend.max_item_bytes == MAX_ITEM_SIZE
    for batch in batches:
        before = backend.requests()
        with pytest.raises(ItemTooLarge) as too_large:
            backend.write(batch)
        assert backend.requests() == before
        assert too_large.value.limit == MAX_ITEM_SIZE
        assert too_large.value.size > MAX_ITEM_SIZE
    assert backend.scan().items == []


def test_update_growing_an_item_past_the_limit_is_item_too_large(backend: Backend) -> None:
    backend.write([Put(item("p", "s", b=b"x" * (MAX_ITEM_SIZE - 100)))])
    for batch in (
        [Update(("p", "s"), set={"c": b"y" * 200})],
        [Update(("p", "s"), set={"c": b"y" * 200}), Put(item("p", "t"))],
    ):
        if backend.max_item_bytes is None:
            backend.write(batch[:1])
            continue
        with pytest.raises(ItemTooLarge):
            backend.write(batch)
    if backend.max_item_bytes is None:
        assert backend.get([("p", "s")])[0] == {
            **item("p", "s", b=b"x" * (MAX_ITEM_SIZE - 100)),
            "c": b"y" * 200,
        }
    assert backend.get([("p", "t")]) == [None]


def test_puts_with_feed_positions(backend: Backend) -> None:
    """Backends that keep the feed in their items number positioned puts in the write, one past
    the partition's last; the others refuse such a put and write nothing."""
    first = Put(item("s", "v1", x=1), position=NextPosition(0, 1))
    second = Put(item("s", "v2", x=2), position=NextPosition(0, 2))
    plain = Put(item("s", "h", x=0))
    if not backend.feed_in_items:
        with pytest.raises(InvalidInput):
            backend.write([plain, first])
        assert get1(backend, "s", "h") is None
        with pytest.raises(InvalidInput):
            backend.positioned(0, 0, limit=10)
        return
    assert backend.write([plain, first, second]) == {0: 0}
    assert backend.write([Put(item("t", "v1"), position=NextPosition(0, 1))]) == {0: 2}
    found = backend.positioned(0, 0, limit=10)
    assert [(i["pk"], i["sk"], i["p"], i["fp"]) for i in found] == [
        ("s", "v1", 1, 0),
        ("s", "v2", 2, 0),
        ("t", "v1", 3, 0),
    ]
    assert backend.positioned(0, 1, limit=1)[0]["sk"] == "v2"
    assert backend.last_position(0) == 3 and backend.last_position(1) == 0
    # A write that fails its condition gives no positions.
    with pytest.raises(ConditionFailed):
        backend.write(
            [Put(item("u", "v1"), position=NextPosition(0, 1)), Put(plain.item, Condition(False))]
        )
    assert backend.last_position(0) == 3 and get1(backend, "u", "v1") is None
