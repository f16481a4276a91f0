"""A DynamoDB table's stream (DynamoDB Streams) as the :class:`ChangeStream` of the contract.

Requests go through the table backend's one place for sending, retrying and translating errors
(``send``: its ``_call`` bound to the streams client).
Shard iterators are kept between reads, so following a shard costs one ``GetRecords`` per poll;
an iterator that expired (15 minutes) is replaced from the last sequence number read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias, cast

from botocore.exceptions import ClientError

from eventstore.backends.base import Change, ChangeStream, Shard
from eventstore.errors import BackendError

#: Sends one request: (operation, parameters, a translation of client errors) -> response.
Send: TypeAlias = Callable[
    [str, dict[str, Any], Callable[[ClientError], Exception | None]], dict[str, Any]
]

_log = logging.getLogger("eventstore")


def change_of(record: Mapping[str, Any]) -> Change:
    """A DynamoDB Streams record (as ``GetRecords`` returns it, and as Lambda delivers it) as
    the contract's :class:`Change`; ``KeyError``/``TypeError`` if it is not one."""
    keys = record["dynamodb"]["Keys"]
    return Change(
        (str(keys["pk"]["S"]), str(keys["sk"]["S"])),
        cast(Literal["INSERT", "MODIFY", "REMOVE"], record["eventName"]),
        str(record["dynamodb"]["SequenceNumber"]),
    )


class _Expired(Exception):
    """Internal: the shard iterator expired."""


class _Trimmed(Exception):
    """Internal: the records after the position asked for are older than the stream keeps."""


class DynamoDBChangeStream(ChangeStream):
    def __init__(self, send: Send, arn: str) -> None:
        self.send = send
        self.arn = arn
        self._lock = threading.Lock()
        # shard -> (sequence number the iterator continues after, the iterator)
        self._iterators: dict[str, tuple[str | None, str]] = {}

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        def on_error(e: ClientError) -> Exception | None:
            code = e.response.get("Error", {}).get("Code")
            if code == "ExpiredIteratorException":
                return _Expired()
            if code == "TrimmedDataAccessException":
                return _Trimmed()
            return None

        return self.send(operation, params, on_error)

    def shards(self) -> list[Shard]:
        found: list[Shard] = []
        params: dict[str, Any] = {"StreamArn": self.arn}
        while True:
            description = self._call("describe_stream", params)["StreamDescription"]
            for shard in description.get("Shards", []):
                found.append(Shard(str(shard["ShardId"]), shard.get("ParentShardId")))
            last = description.get("LastEvaluatedShardId")
            if not last:
                break
            params = {"StreamArn": self.arn, "ExclusiveStartShardId": last}
        # Parents first: a shard's records follow its parent's.
        known = {s.shard_id for s in found}
        ordered: list[Shard] = []
        placed: set[str] = set()
        while len(ordered) < len(found):
            for s in found:
                if s.shard_id in placed:
                    continue
                if s.parent is None or s.parent not in known or s.parent in placed:
                    ordered.append(s)
                    placed.add(s.shard_id)
        return ordered

    def _iterator(self, shard: str, after: str | None) -> str:
        with self._lock:
            kept = self._iterators.get(shard)
        if kept is not None and kept[0] == after:
            return kept[1]
        params: dict[str, Any] = {"StreamArn": self.arn, "ShardId": shard}
        if after is None:
            params["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            params.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
        try:
            return str(self._call("get_shard_iterator", params)["ShardIterator"])
        except _Trimmed:
            _log.warning(
                "the stream no longer holds the records after %s in shard %s (older than 24 "
                "hours): indexing goes on from the oldest it holds; run `eventstore index URL "
                "--repair` to index the versions the index lacks",
                after,
                shard,
            )
            params = {"StreamArn": self.arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}
            return str(self._call("get_shard_iterator", params)["ShardIterator"])

    def read(
        self, shard: str, after: str | None, *, limit: int = 1000
    ) -> tuple[list[Change], bool]:
        for _ in range(3):
            iterator = self._iterator(shard, after)
            try:
                response = self._call("get_records", {"ShardIterator": iterator, "Limit": limit})
            except (_Expired, _Trimmed):
                with self._lock:
                    self._iterators.pop(shard, None)
                continue
            changes = [change_of(record) for record in response.get("Records", [])]
            following = response.get("NextShardIterator")
            end = changes[-1].sequence if changes else after
            with self._lock:
                if following:
                    self._iterators[shard] = (end, str(following))
                else:
                    self._iterators.pop(shard, None)
            return changes, not following
        raise BackendError(f"DynamoDB Streams: the iterators of shard {shard} expired three times")
