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


#: The IAM action each S3 operation the blob store sends is checked against.
_S3_ACTIONS = {
    "PutObject": "s3:PutObject",
    "GetObject": "s3:GetObject",
    "ListObjectVersions": "s3:ListBucketVersions",
    "HeadBucket": "s3:ListBucket",
    "CreateBucket": "s3:CreateBucket",
}


class S3Recorder:
    def __init__(self) -> None:
        self.actions: set[str] = set()

    def attach(self, store: EventStore) -> EventStore:
        client: Any = store.backend.blobs.client  # type: ignore[attr-defined]
        client.meta.events.register("provide-client-params.s3.*", self._seen)
        return store

    def _seen(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "DeleteObjects":
            for found in params["Delete"]["Objects"]:
                versioned = found.get("VersionId")
                self.actions.add("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject")
            return
        self.actions.add(_S3_ACTIONS[model.name])


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


def test_the_documented_policy_lists_exactly_the_s3_actions(tmp_path: Path) -> None:
    """A blob store's whole life: create_table, offloaded appends and reads, a trim, an erasure
    (in a versioned bucket) and the sweep, against SeaweedFS."""
    from tests.conftest import S3_ENDPOINT, blobs_url
    from tests.test_blobs import Doc, Kept, document

    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    recorder = S3Recorder()
    store = recorder.attach(
        eventstore.open(dynamodb_url(new_table_name()), blobs=blobs_url(), offload_bytes=1024)
    )
    store.create_table(feed="inline")
    created = set(recorder.actions)
    recorder.actions.clear()
    import boto3

    boto3.client("s3", endpoint_url=S3_ENDPOINT).put_bucket_versioning(
        Bucket=store.backend.blobs.bucket,  # type: ignore[attr-defined]
        VersioningConfiguration={"Status": "Enabled"},
    )
    try:
        lines = document(0.05)
        for n in range(1, 21):
            lines = [*lines[:-1], str(n)]
            store.append(
                Kept(lines=lines), resource_id="k", expected_version=n - 1 or eventstore.NO_STREAM
            )
        v = store.append(Doc(lines=document(0.1)))
        EventStore(store.backend.inner, blobs=store.backend.blobs).read_version(Doc, v.resource_id)  # type: ignore[attr-defined]
        store.erase(Doc, v.resource_id)
        store.collect_blobs()
    finally:
        drop(store)
    policy = _policy_actions()
    assert recorder.actions == policy["EventstoreBlobs"]
    assert created == policy["EventstoreBlobsCreate"]
