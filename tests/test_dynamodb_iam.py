"""The IAM policy in docs/operations.md lists exactly the DynamoDB actions the library calls: a
workload using every feature runs against DynamoDB Local while botocore reports each operation."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import eventstore
import projections
from eventstore import Append, BackendError, Checkpoint, EventStore, Resource, TableOptions
from eventstore.transfer import export, import_file
from tests.conftest import DYNAMODB_ENDPOINT, drop, dynamodb_url, new_table_name
from tests.models import Order
from tests.test_projections import ByStatus

DOC = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


class Aged(Resource):
    resource_type = "IamAged"
    max_age = timedelta(seconds=1)
    n: int


def _policy_actions() -> dict[str, set[str]]:
    text = DOC.read_text()
    policy = json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))  # type: ignore[union-attr]
    return {
        statement["Sid"]: {action.removeprefix("dynamodb:") for action in statement["Action"]}
        for statement in policy["Statement"]
    }


class Recorder:
    def __init__(self) -> None:
        self.actions: set[str] = set()

    def attach(self, store: EventStore) -> EventStore:
        client: Any = store.backend.client  # type: ignore[attr-defined]
        client.meta.events.register("provide-client-params.dynamodb.*", self._seen)
        return store

    def attach_stream(self, store: EventStore) -> None:
        """Also record what reading the table's stream calls (the indexed feed)."""
        self.attach(store)
        self.actions.add("DescribeTable")  # change_stream() below finds the stream by it
        assert store.backend.change_stream() is not None
        streams: Any = store.backend._streams_client  # type: ignore[attr-defined]
        streams.meta.events.register("provide-client-params", self._seen)

    def _seen(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.actions.add(model.name)
        if model.name == "CreateTable" and params.get("Tags"):
            self.actions.add("TagResource")  # what IAM checks for tags given at creation
        if model.name == "TransactWriteItems":
            # IAM also checks each action inside a transaction.
            for action in params["TransactItems"]:
                (kind,) = action
                self.actions.add(
                    {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}.get(
                        kind, kind
                    )
                )


def test_the_documented_policy_is_exactly_what_the_library_calls(tmp_path: Path) -> None:
    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    recorder = Recorder()
    admin = recorder.attach(eventstore.open(dynamodb_url(new_table_name())))
    with pytest.raises(BackendError, match="UpdateContinuousBackups"):  # not in DynamoDB Local
        admin.create_table(
            options=TableOptions(point_in_time_recovery=True, tags={"team": "t"}, kms_key="k")
        )
    drop(admin)
    created = recorder.actions
    recorder = Recorder()
    url = dynamodb_url(new_table_name())
    setup = eventstore.open(url)
    setup.create_table()
    setup.close()
    store = EventStore(eventstore.open(url).backend, projections=[ByStatus()])
    stream_reader = Recorder()
    stream_reader.attach_stream(store)
    recorder.attach(store)
    try:
        a = store.append(Order(customer="ada"))
        store.append_many([Append(Order(customer="bob")), Append(Order(customer="cy"))])
        store.update(Order, a.resource_id, lambda o: o.model_copy(update={"status": "paid"}))
        store.read_version(Order, a.resource_id, 1)
        list(store.read_stream(Order, a.resource_id))
        store.read_many(Order, [a.resource_id, "nobody"])
        store.query(ByStatus, "paid")
        store.list_resources(Order)
        list(store.feed())
        store.last_position()
        store.append_many([Append(Order(customer="dee"))], checkpoint=Checkpoint("iam", 0, 1))
        projections.rebuild(store, ByStatus)
        store.delete(Order, a.resource_id)
        store.erase(Order, a.resource_id)
        for n in range(3):
            store.append(Aged(n=n), resource_id="aged", expected_version=n or eventstore.NO_STREAM)
        store.purge(Aged)
        out = tmp_path / "all.jsonl"
        with out.open("w") as f:
            export(store, f)
        copy = recorder.attach(eventstore.open(dynamodb_url(new_table_name())))
        copy.create_table()
        import_file(copy, out, [Order, Aged])
        drop(copy)
    finally:
        drop(store)
    policy = _policy_actions()
    indexing = {"DescribeTable", "DescribeStream", "GetShardIterator", "GetRecords"}
    assert stream_reader.actions - recorder.actions == indexing - {"DescribeTable"}
    assert indexing <= stream_reader.actions and indexing == policy["EventstoreIndexedFeed"]
    assert (
        recorder.actions
        - indexing
        - {"CreateTable", "DescribeTable", "DescribeTimeToLive", "UpdateTimeToLive", "DeleteTable"}
        == policy["EventstoreReadWrite"]
    )
    admin_calls = (
        (created | recorder.actions) - policy["EventstoreReadWrite"] - {"DeleteTable"}
    ) - (indexing - {"DescribeTable"})
    assert admin_calls == policy["EventstoreCreateTable"]
