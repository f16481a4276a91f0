"""A stateful property test of projections: after every step, every query answer equals the answer
computed from a reference model of the latest states.

Steps: new streams, changes that move resources between partitions and in and out of a sparse
index, a second projection added mid-way (then rebuilt), idempotent rebuilds. Runs on an SQLite
file with the active hypothesis profile and on DynamoDB Local with a small one.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import eventstore
import projections
from eventstore import EventStore
from projections import Projection
from tests.conftest import DYNAMODB_ENDPOINT, drop, dynamodb_url, new_table_name
from tests.models import Order

STATUSES = ["new", "paid", "shipped", "draft"]
CUSTOMERS = ["ada", "bob", "cyd"]


class ByStatus(Projection[Order]):
    """Sparse: drafts are left out. Sort key customer then id, so it is unique."""

    name = "by_status"
    index = "gsi1"

    def key(self, order: Order) -> tuple[str, str] | None:
        if order.status == "draft":
            return None
        return (order.status, f"{order.customer}#{order.lines[0]}")


class ByCustomer(Projection[Order]):
    """Added mid-way: every order by customer, sorted by total then id."""

    name = "by_customer"
    index = "gsi2"

    def key(self, order: Order) -> tuple[str, str] | None:
        return (order.customer, f"{order.total_cents:06d}#{order.lines[0]}")


class Model:
    """Latest state of every stream, and when each stream was created."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[int, Order]] = {}
        self.created: dict[str, str] = {}  # resource id -> first version id

    def answer(self, projection: Projection[Order], partition: str) -> list[tuple[str, int]]:
        hits = []
        for rid, (number, state) in self.latest.items():
            key = projection.key(state)
            if key is not None and key[0] == partition:
                hits.append((key[1], rid, number))
        return [(rid, number) for _, rid, number in sorted(hits)]


class ProjectionMachine(RuleBasedStateMachine):
    url_factory: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.tmp: str | None = None
        url = type(self).url_factory(self)
        self.base = eventstore.open(url, projections=[ByStatus()])
        self.base.create_table(feed="inline")
        self.store: EventStore = self.base
        self.active: list[Projection[Order]] = [ByStatus()]
        self.counter = 0

    def teardown(self) -> None:
        drop(self.base)
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def sqlite_url(self) -> str:
        self.tmp = tempfile.mkdtemp(prefix="projections-stateful-")
        return f"sqlite:///{self.tmp}/store.db"

    def _state(self, rid: str, customer: str, status: str, total: int) -> Order:
        # The resource id rides in the state so that sort keys are unique (ties in a GSI have
        # no defined order on DynamoDB).
        return Order(customer=customer, status=status, total_cents=total, lines=[rid])

    @initialize()
    def start(self) -> None:
        self.create(customer="ada", status="new", total=1)

    @rule(
        customer=st.sampled_from(CUSTOMERS),
        status=st.sampled_from(STATUSES),
        total=st.integers(0, 30),
    )
    def create(self, customer: str, status: str, total: int) -> None:
        self.counter += 1
        rid = f"order-{self.counter:04d}"
        v = self.store.append(self._state(rid, customer, status, total), resource_id=rid)
        self.model.latest[rid] = (1, v.state)
        self.model.created[rid] = v.version_id

    @precondition(lambda self: bool(self.model.latest))
    @rule(
        data=st.data(),
        status=st.sampled_from(STATUSES),
        customer=st.none() | st.sampled_from(CUSTOMERS),
        total=st.none() | st.integers(0, 30),
    )
    def change(
        self, data: st.DataObject, status: str, customer: str | None, total: int | None
    ) -> None:
        rid = data.draw(st.sampled_from(sorted(self.model.latest)))
        number, old = self.model.latest[rid]
        state = self._state(
            rid,
            customer if customer is not None else old.customer,
            status,
            total if total is not None else old.total_cents,
        )
        v = self.store.append(state, resource_id=rid, expected_version=number)
        self.model.latest[rid] = (v.version, v.state)

    @precondition(lambda self: len(self.active) == 1)
    @rule(segments=st.integers(1, 3))
    def add_projection_and_rebuild(self, segments: int) -> None:
        self.store = EventStore(self.base.backend, projections=[ByStatus(), ByCustomer()])
        report = projections.rebuild(self.store, ByCustomer, segments=segments)
        count = len(self.model.latest)
        assert (report.scanned, report.updated, report.skipped_newer) == (count, count, 0)
        self.active.append(ByCustomer())

    @rule()
    def rebuild_is_idempotent(self) -> None:
        for projection in self.active:
            report = projections.rebuild(self.store, type(projection), segments=2)
            assert report.scanned == len(self.model.latest)
            assert report.updated == 0 and report.skipped_newer == 0

    @invariant()
    def queries_match_the_model(self) -> None:
        for projection in self.active:
            partitions = STATUSES if isinstance(projection, ByStatus) else CUSTOMERS
            for partition in partitions:
                got = []
                cursor = None
                while True:
                    page = self.store.query(type(projection), partition, limit=3, cursor=cursor)
                    got.extend((v.resource_id, v.version) for v in page.items)
                    if page.cursor is None:
                        break
                    cursor = page.cursor
                assert got == self.model.answer(projection, partition), (projection, partition)

    @invariant()
    def listing_matches_the_model(self) -> None:
        page = self.store.list_resources(Order, newest_first=False, limit=1000)
        expected = sorted(self.model.latest, key=lambda rid: (self.model.created[rid], rid))
        assert [(v.resource_id, v.version) for v in page.items] == [
            (rid, self.model.latest[rid][0]) for rid in expected
        ]

    @precondition(lambda self: len(self.active) == 2)
    @rule(
        customer=st.sampled_from(CUSTOMERS),
        op=st.sampled_from(["equals", "begins_with", "between", "lt", "lte", "gt", "gte"]),
        low=st.integers(0, 30),
        width=st.integers(0, 10),
        reverse=st.booleans(),
    )
    def condition_matches_the_model(
        self, customer: str, op: str, low: int, width: int, reverse: bool
    ) -> None:
        value = f"{low:06d}"
        argument: Any = (value, f"{low + width:06d}~") if op == "between" else value
        if op == "begins_with":
            argument = value[:-1]
        page = self.store.query(ByCustomer, customer, reverse=reverse, limit=1000, **{op: argument})

        def matches(sk: str) -> bool:
            if op == "equals":
                return sk == value
            if op == "begins_with":
                return sk.startswith(argument)
            if op == "between":
                return bool(argument[0] <= sk <= argument[1])
            return {"lt": sk < value, "lte": sk <= value, "gt": sk > value, "gte": sk >= value}[op]

        projection = ByCustomer()
        hits = []
        for rid, (number, state) in self.model.latest.items():
            key = projection.key(state)
            assert key is not None
            if key[0] == customer and matches(key[1]):
                hits.append((key[1], rid, number))
        expected = [(rid, number) for _, rid, number in sorted(hits, reverse=reverse)]
        assert [(v.resource_id, v.version) for v in page.items] == expected


class SQLiteMachine(ProjectionMachine):
    url_factory = ProjectionMachine.sqlite_url


SQLiteMachine.TestCase.settings = settings(settings.default, stateful_step_count=25)
test_projections_sqlite = SQLiteMachine.TestCase


class DynamoDBMachine(ProjectionMachine):
    def dynamodb(self) -> str:
        return dynamodb_url(new_table_name())

    url_factory = dynamodb


DynamoDBMachine.TestCase.settings = settings(
    settings.default, max_examples=5, stateful_step_count=12
)


@pytest.mark.dynamodb
@pytest.mark.skipif(not DYNAMODB_ENDPOINT, reason="DynamoDB Local is not running")
class TestProjectionsDynamoDB(DynamoDBMachine.TestCase):  # type: ignore[misc,valid-type]
    pass
