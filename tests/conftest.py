"""Shared fixtures: one store per test on each backend, each on its own fresh table.

DynamoDB tests talk to DynamoDB Local over HTTP; ``scripts/test`` starts it and sets
``EVENTSTORE_DYNAMODB_ENDPOINT``. Without that variable they are skipped with a reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Literal

import pytest
from hypothesis import HealthCheck, settings

import eventstore
from eventstore import EventStore
from eventstore.backends.base import Backend, Item
from eventstore.backends.layered import Layered

DYNAMODB_ENDPOINT = os.environ.get("EVENTSTORE_DYNAMODB_ENDPOINT")
#: SeaweedFS's S3 server, started by scripts/test beside DynamoDB Local (eventstore.local_s3).
S3_ENDPOINT = os.environ.get("EVENTSTORE_S3_ENDPOINT")
BACKENDS = ["memory", "sqlite", "dynamodb"]

# Profiles: "default" for a developer run, "ci" as run by scripts/test, "long" for the long runs.
# Tests against DynamoDB Local use dynamodb_settings() (it serves ~600 requests per second).
settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def dynamodb_url(table: str) -> str:
    return f"dynamodb://{table}?region=us-east-1&endpoint_url={DYNAMODB_ENDPOINT}"


def new_table_name() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


def blobs_url(prefix: str = "objects") -> str:
    """An ``s3://`` URL of a new bucket on the test S3 server (skips the test without one); the
    store's ``create_table`` makes the bucket."""
    if not S3_ENDPOINT:
        pytest.skip("the S3 server is not running (scripts/test starts it)")
    return f"s3://b-{uuid.uuid4().hex[:16]}/{prefix}?endpoint_url={S3_ENDPOINT}"


def make_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL for a fresh, empty table on ``backend``."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'store.db'}"
    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    return dynamodb_url(new_table_name())


def scan_all(backend: Backend) -> list[Item]:
    """Every item of ``backend``'s table, read by a full scan."""
    items: list[Item] = []
    start = None
    while True:
        page = backend.scan(start=start)
        items += page.items
        if page.last_key is None:
            return items
        start = page.last_key


def scanned(store: EventStore) -> list[Item]:
    """Every item of the store's table, as the store reads it."""
    return scan_all(store.backend)


def raw_items(store: EventStore) -> list[Item]:
    """Every item as the table holds it, below the state pipeline's layers (sealed states,
    pointers not followed)."""
    backend = store.backend
    while isinstance(backend, Layered):
        backend = backend.inner
    return scan_all(backend)


def drop(store: EventStore) -> None:
    """Delete a DynamoDB test table; nothing to do for embedded stores."""
    delete = getattr(store.backend, "delete_table", None)
    if delete is not None:
        delete()
    store.close()


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend_name: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_url(backend_name, tmp_path_factory)


#: The feed of the tables tests make. DynamoDB Local slows down with every stream record it has
#: ever kept, across tables, deleted ones included (measured: a put on a new stream table goes
#: from 9 to 20 ms after 280 short-lived stream tables): so most tests make inline tables
#: (no stream), and the indexed feed, DynamoDB's default, is tested in test_indexed_feed.py and
#: by the store contract suite (test_contract.py runs on both).
FEED: Literal["indexed", "inline", "none"] = "inline"


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    """A store on a fresh table, for each backend in turn."""
    opened = eventstore.open(store_url)
    opened.create_table(feed=FEED)
    try:
        yield opened
    finally:
        drop(opened)


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_url("sqlite", tmp_path_factory)


@pytest.fixture
def dynamodb_store() -> Iterator[EventStore]:
    """A store on a fresh DynamoDB Local table (skipped when DynamoDB Local is not running)."""
    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    opened = eventstore.open(dynamodb_url(new_table_name()))
    opened.create_table(feed=FEED)
    try:
        yield opened
    finally:
        drop(opened)
