"""DynamoDB-only behaviour of the store, against DynamoDB Local over HTTP: requests per operation,
trimming past one query page, concurrent writers on the server, numbers."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

from eventstore import ANY, ConcurrencyError, EventStore, Resource, VersionNotFound
from tests.models import Blob, Note, Order


class Ledger(Resource):
    amount: Decimal
    rate: float


@contextmanager
def requests(store: EventStore) -> Iterator[list[str]]:
    """Collects the operation name of every HTTP request the store sends, through a botocore
    event hook on its client (retries included: each attempt is a request)."""
    sent: list[str] = []

    def hook(event_name: str, **_: Any) -> None:
        sent.append(event_name.rsplit(".", 1)[-1])

    events = store.backend.client.meta.events  # type: ignore[attr-defined]
    events.register("before-send.dynamodb.*", hook)
    try:
        yield sent
    finally:
        events.unregister("before-send.dynamodb.*", hook)


def test_append_is_one_request(dynamodb_store: EventStore) -> None:
    with requests(dynamodb_store) as sent:
        v1 = dynamodb_store.append(Order(customer="ada"))
    assert sent == ["TransactWriteItems"]
    for expected in range(1, 40):
        with requests(dynamodb_store) as sent:
            dynamodb_store.append(
                Order(customer="ada", total_cents=expected),
                resource_id=v1.resource_id,
                expected_version=expected,
            )
        assert sent == ["TransactWriteItems"], expected


def test_append_with_trimming_is_one_request(dynamodb_store: EventStore) -> None:
    first = dynamodb_store.append(Note(text="0"))
    for n in range(1, 12):
        with requests(dynamodb_store) as sent:
            dynamodb_store.append(
                Note(text=str(n)), resource_id=first.resource_id, expected_version=n
            )
        assert sent == ["TransactWriteItems"]
    kept = [v.version for v in dynamodb_store.read_stream(Note, first.resource_id)]
    assert kept == [8, 9, 10, 11, 12]


def test_reads_are_one_request(dynamodb_store: EventStore) -> None:
    v = dynamodb_store.append(Order(customer="ada"))
    for n in range(1, 30):
        v = dynamodb_store.append(
            Order(customer="ada", total_cents=n), resource_id=v.resource_id, expected_version=n
        )
    rid = v.resource_id
    for number in (1, 2, 16, 17, 18, 30):
        with requests(dynamodb_store) as sent:
            got = dynamodb_store.read_version(Order, rid, number)
        assert got.version == number
        assert sent == ["Query"], number
        with requests(dynamodb_store) as sent:
            by_id = dynamodb_store.read_version(Order, rid, got.version_id)
        assert by_id == got
        assert sent == ["Query"]
    with requests(dynamodb_store) as sent:
        latest = dynamodb_store.read_version(Order, rid)
    assert latest.version == 30 and latest.state.total_cents == 29
    assert sent == ["Query"]
    with requests(dynamodb_store) as sent:
        assert [x.version for x in dynamodb_store.read_stream(Order, rid)] == list(range(1, 31))
    assert sent == ["Query"]


class Page(Resource):
    """About 2 KB of JSON that compresses to over 1 KB: versions are deltas on a keyframe."""

    n: int
    words: list[str]


def test_a_read_by_number_rounds_its_read_units_once(dynamodb_store: EventStore) -> None:
    # Version and keyframe come from one query, whose items' sizes add up before rounding to
    # 4 KB units: a small delta and a 1.3 KB keyframe cost 1 unit, not 1 + 1 as point reads.
    words = [f"{i:x}{i * 7919 % 1000:03d}" for i in range(300)]
    v = dynamodb_store.append(Page(n=0, words=words))
    for n in range(1, 20):
        v = dynamodb_store.append(
            Page(n=n, words=words), resource_id=v.resource_id, expected_version=n
        )
    backend = dynamodb_store.backend
    for number in (1, 8, 15, 16, 17, 20):
        before = backend.usage()
        got = dynamodb_store.read_version(Page, v.resource_id, number)
        spent = backend.usage() - before
        assert got.state.n == number - 1
        assert (spent.requests, spent.read_units) == (1, 1.0), number


def test_conflict_is_one_request_and_carries_actual(dynamodb_store: EventStore) -> None:
    v = dynamodb_store.append(Order(customer="ada"))
    dynamodb_store.append(
        Order(customer="ada", status="paid"), resource_id=v.resource_id, expected_version=1
    )
    with requests(dynamodb_store) as sent, pytest.raises(ConcurrencyError) as caught:
        dynamodb_store.append(Order(customer="bob"), resource_id=v.resource_id, expected_version=1)
    assert sent == ["TransactWriteItems"]
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    with requests(dynamodb_store) as sent, pytest.raises(ConcurrencyError) as caught:
        dynamodb_store.append(Order(customer="bob"), resource_id=v.resource_id)
    assert sent == ["TransactWriteItems"]
    assert caught.value.actual == 2


def test_any_costs_one_read_more(dynamodb_store: EventStore) -> None:
    v = dynamodb_store.append(Order(customer="ada"))
    with requests(dynamodb_store) as sent:
        dynamodb_store.append(Order(customer="x"), resource_id=v.resource_id, expected_version=ANY)
    assert sorted(sent) == ["BatchGetItem", "TransactWriteItems"] or sorted(sent) == [
        "GetItem",
        "TransactWriteItems",
    ]


def test_trimming_past_one_query_page(dynamodb_store: EventStore) -> None:
    # 20 versions of ~150 KB: 3 MB of history, three times a 1 MB query page.
    payloads = [os.urandom(150_000) for _ in range(20)]
    v = dynamodb_store.append(Blob(data=payloads[0]))
    for n, payload in enumerate(payloads[1:], 1):
        with requests(dynamodb_store) as sent:
            v = dynamodb_store.append(
                Blob(data=payload), resource_id=v.resource_id, expected_version=n
            )
        assert sent == ["TransactWriteItems"]
    kept = list(dynamodb_store.read_stream(Blob, v.resource_id))
    assert [x.version for x in kept] == [16, 17, 18, 19, 20]
    assert [x.state.data for x in kept] == payloads[15:]
    with pytest.raises(VersionNotFound) as caught:
        dynamodb_store.read_version(Blob, v.resource_id, 3)
    assert caught.value.remaining == (16, 20)
    # Nothing of the trimmed versions is left in the partition: only the head, 5 versions and
    # the keyframe(s) they need.
    raw = dynamodb_store.backend.query(f"Blob#{v.resource_id}")
    sks = sorted(str(item["sk"]) for item in raw.items)
    versions = [sk for sk in sks if sk.endswith("#v")]
    assert versions == [f"v#{n:010d}#v" for n in range(16, 21)]


def test_concurrent_writers_on_the_server(dynamodb_store: EventStore) -> None:
    first = dynamodb_store.append(Order(customer="race"))
    rid = first.resource_id
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(50):
                while True:
                    current = dynamodb_store.read_version(Order, rid)
                    state = current.state.model_copy(
                        update={"lines": [*current.state.lines, f"{name}-{i}"]}
                    )
                    try:
                        dynamodb_store.append(
                            state, resource_id=rid, expected_version=current.version
                        )
                        break
                    except ConcurrencyError:
                        continue
        except BaseException as e:  # surfaced below; a thread's exception would be lost
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    versions = list(dynamodb_store.read_stream(Order, rid))
    assert [v.version for v in versions] == list(range(1, 202))
    final = versions[-1].state.lines
    assert sorted(final) == sorted(f"t{n}-{i}" for n in range(4) for i in range(50))
    # Each version adds exactly one line to its predecessor: no lost update.
    for before, after in itertools.pairwise(versions):
        assert after.state.lines[:-1] == before.state.lines


def test_numbers_round_trip(dynamodb_store: EventStore) -> None:
    big = Decimal("12345678901234567890.123456789012345678")  # 38 significant digits
    v = dynamodb_store.append(Ledger(amount=big, rate=0.1))
    got = dynamodb_store.read_version(Ledger, v.resource_id)
    assert got.state.amount == big and str(got.state.amount) == str(big)
    assert got.state.rate == 0.1 and repr(got.state.rate) == "0.1"


@pytest.mark.parametrize("lost", ["read_timeout", "connection_reset", "server_error"])
def test_a_commit_whose_answer_was_lost_is_stored_once(
    dynamodb_store: EventStore, lost: str
) -> None:
    """The server applies the commit, the answer is lost; the retry (same ClientRequestToken)
    returns the stored versions and writes nothing twice."""
    from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

    from eventstore import Append
    from tests.faults import error_response

    store = dynamodb_store
    store.append(Order(customer="ada"), resource_id="a")
    events = store.backend.client.meta.events  # type: ignore[attr-defined]
    fired: list[int] = []

    def lose(**_: Any) -> Any:
        if fired:
            return None
        fired.append(1)
        if lost == "read_timeout":
            raise ReadTimeoutError(endpoint_url="http://injected")
        if lost == "connection_reset":
            raise ConnectionClosedError(endpoint_url="http://injected")
        return error_response(500, "InternalServerError")

    hook = "after-call.dynamodb.TransactWriteItems" if lost != "server_error" else None
    if hook:
        events.register(hook, lose)
    else:
        # A 5xx answer in place of the real one: the hook swaps the parsed response.
        def swap(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
            if not fired:
                fired.append(1)
                parsed.clear()
                parsed.update(
                    {
                        "Error": {"Code": "InternalServerError", "Message": "injected"},
                        "ResponseMetadata": {"HTTPStatusCode": 500},
                    }
                )
                http_response.status_code = 500

        events.register("after-call.dynamodb.TransactWriteItems", swap)
    with requests(store) as sent:
        made = store.append_many(
            [
                Append(Order(customer="ada", status="paid"), resource_id="a", expected_version=1),
                Append(Note(text="receipt"), resource_id="r"),
                Append(
                    Order(customer="ada", status="shipped"), resource_id="a", expected_version=2
                ),
            ]
        )
    assert fired and sent == ["TransactWriteItems", "TransactWriteItems"]
    assert [(v.resource_id, v.version) for v in made] == [("a", 2), ("r", 1), ("a", 3)]
    stored = list(store.read_stream(Order, "a"))
    assert [v.version_id for v in stored[1:]] == [made[0].version_id, made[2].version_id]
    assert [v.version for v in store.read_stream(Note, "r")] == [1]


def test_a_commit_just_under_the_4mb_check_is_accepted_by_dynamodb(
    dynamodb_store: EventStore,
) -> None:
    """Issue 24, item 5: the 4 MB check counts what DynamoDB counts (keys, conditions, request
    overhead), so the largest commit it lets through is one DynamoDB takes."""
    import random

    from eventstore import Append, CommitTooLarge
    from tests.models import Blob

    class _Stop(Exception):
        pass

    real = dynamodb_store.backend.write

    def dry(writes: Any, **_: Any) -> None:
        raise _Stop

    def appends(last: int) -> list[Append[Blob]]:
        sizes = [290_000] * 14 + [last]  # keyframes of about 293 KB each (zstd of base64)
        return [Append(Blob(data=random.Random(i).randbytes(n))) for i, n in enumerate(sizes)]

    def passes(last: int) -> bool:
        dynamodb_store.backend.write = dry  # type: ignore[method-assign]
        try:
            dynamodb_store.append_many(appends(last))
        except _Stop:
            return True
        except CommitTooLarge:
            return False
        finally:
            dynamodb_store.backend.write = real  # type: ignore[method-assign]
        raise AssertionError("the dry run wrote")

    low, high = 1, 290_000
    assert passes(low) and not passes(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if passes(middle) else (low, middle)
    made = dynamodb_store.append_many(appends(low))  # the largest commit the check passes
    assert len(made) == 15
