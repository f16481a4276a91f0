"""An AWS Lambda handler that indexes an indexed feed, for an event source mapping on the table's
DynamoDB stream (``docs/feed.md`` gives the mapping's settings and a template).

Set ``EVENTSTORE_URL`` (``dynamodb://TABLE?region=...``) and use
``eventstore.integrations.aws_lambda.handler`` as the function's handler. The records a batch
delivers wake the indexer, which reads the stream itself from where the index says it stopped
(the same pass as ``eventstore index``, so it can run beside any other indexer without indexing
a version twice). A batch whose records could not all be indexed reports the first of them as
a partial batch failure (``FunctionResponseTypes: [ReportBatchItemFailures]``), and Lambda
delivers the rest again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from eventstore.backends.base import Change
from eventstore.backends.dynamodb_streams import change_of
from eventstore.errors import InvalidInput
from eventstore.indexer import IndexReport, version_of
from eventstore.store import EventStore
from eventstore.urls import open_store

_log = logging.getLogger("eventstore")
_opened: dict[str, EventStore] = {}
_lock = threading.Lock()


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, list[dict[str, str]]]:
    """The Lambda entry point: index what the stream holds, report what is left."""
    url = os.environ.get("EVENTSTORE_URL")
    if not url:
        raise InvalidInput("set EVENTSTORE_URL to the store's dynamodb:// URL")
    with _lock:
        store = _opened.get(url)
        if store is None:
            # One store per warm container: the table's feed configuration is read once.
            store = _opened[url] = open_store(url, index_on_read=False)
    return index_event(store, event)


def index_event(store: EventStore, event: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Index the store's feed after a stream batch ``event``; the response lists the first
    record of the batch that is not indexed yet (``batchItemFailures``), if any."""
    changes = _changes(event)
    report = IndexReport()
    failed: Exception | None = None
    try:
        store.indexer.catch_up(report=report)
    except Exception as e:  # reported as a partial failure; Lambda delivers the rest again
        failed = e
        _log.warning("indexing failed: %r", e)
    if failed is None and report.complete and not report.waiting:
        return {"batchItemFailures": []}
    for change in changes:
        if not _done(store, change, report):
            return {"batchItemFailures": [{"itemIdentifier": change.sequence}]}
    return {"batchItemFailures": []}


def _done(store: EventStore, change: Change, report: IndexReport) -> bool:
    found = version_of(change)
    if found is None or change.sequence in report.processed:
        return True
    pk, number = found
    partition = store.clock.partition_of(pk)
    return store.indexer.find(partition, pk, number) is not None


def _changes(event: Mapping[str, Any]) -> list[Change]:
    try:
        return [change_of(record) for record in event["Records"]]
    except (KeyError, TypeError) as e:
        raise InvalidInput(f"not a DynamoDB stream event: missing {e}") from e


__all__ = ["handler", "index_event"]
