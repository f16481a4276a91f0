"""The audit helper of the reliability suites detects what it claims to detect."""

from __future__ import annotations

from eventstore import EventStore
from eventstore.backends.base import Delete, Update
from eventstore.keys import HEAD_SK, stream_pk, version_sk
from tests.invariants import check_stream
from tests.models import Order


def test_a_sound_stream_has_no_problems(store: EventStore) -> None:
    v = store.append(Order(customer="a"))
    store.append(Order(customer="b"), resource_id=v.resource_id, expected_version=1)
    found = check_stream(store, Order, v.resource_id)
    assert found is not None and found.problems == [] and found.numbers == [1, 2]
    assert check_stream(store, Order, "missing") is None


def test_gaps_and_stale_heads_are_reported(store: EventStore) -> None:
    v = store.append(Order(customer="a"))
    for n in range(1, 4):
        store.append(Order(customer="a"), resource_id=v.resource_id, expected_version=n)
    pk = stream_pk("Order", v.resource_id)
    store.backend.write([Delete((pk, version_sk(2))), Update((pk, HEAD_SK), set={"v": 3})])
    found = check_stream(store, Order, v.resource_id)
    assert found is not None
    assert any("gapless" in p for p in found.problems)
    assert any("head v3" in p for p in found.problems)
