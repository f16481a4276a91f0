"""The DynamoDB backend: the contract of :mod:`eventstore.backends.base` on one DynamoDB table.

Every public method sends one request per call where the contract asks for one (plus retries).
Retries are ours, not botocore's, so that a write whose outcome is unknown is re-sent with the same
``ClientRequestToken`` and every attempt is counted by :meth:`DynamoDBBackend.requests`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from eventstore import bridge
from eventstore.backends.aws import new_client
from eventstore.backends.base import (
    INDEX_ATTRIBUTES,
    INDEXES,
    MAX_ITEM_SIZE,
    MAX_WRITE_BYTES,
    Backend,
    ChangeStream,
    Condition,
    ConditionFailed,
    Item,
    Key,
    Page,
    Put,
    SortCondition,
    TableOptions,
    Update,
    Usage,
    Value,
    Write,
    WriteConflict,
    check_batch,
    index_keys,
)
from eventstore.backends.dynamodb_streams import DynamoDBChangeStream
from eventstore.backends.sizes import item_size
from eventstore.backoff import Backoff
from eventstore.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    CommitTooLarge,
    CredentialsMissing,
    InvalidInput,
    ItemTooLarge,
    TableNotFound,
)

_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")

# The attribute an empty Update removes inside a transaction (see DynamoDBBackend._action).
_NOTHING = "eventstore:nothing"

# What each DynamoDB error code means for the call: retry because the request was refused before
# it was applied, retry although a write may have been applied (outcome unknown), or the typed
# error to raise. Transaction cancellation reasons use the same table. Codes not listed are a
# BackendError; a 5xx status without a listed code is an unknown outcome.
_log = logging.getLogger("eventstore")
#: Operations that report the capacity they consumed, and which of them read.
_READS = frozenset({"get_item", "batch_get_item", "query", "scan"})
_METERED = _READS | {"put_item", "update_item", "delete_item", "transact_write_items"}
_REFUSED, _UNKNOWN = "refused", "unknown"
_OUTCOMES: dict[str, str | type[BackendError]] = {
    "ProvisionedThroughputExceededException": _REFUSED,
    "ThrottlingException": _REFUSED,
    "RequestLimitExceeded": _REFUSED,
    "TransactionInProgressException": _REFUSED,
    "LimitExceededException": _REFUSED,
    "TransactionConflict": _REFUSED,
    "ThrottlingError": _REFUSED,
    "ProvisionedThroughputExceeded": _REFUSED,
    "InternalServerError": _UNKNOWN,
    "ServiceUnavailable": _UNKNOWN,
    "ResourceNotFoundException": TableNotFound,
    "IdempotentParameterMismatchException": BackendError,
}
#: The table's TTL attribute (``eventstore.records.EXPIRES``).
TTL_ATTRIBUTE = "ttl"
_TIMEOUTS = (ReadTimeoutError, ConnectTimeoutError)
# Transport errors: the request may have reached the server (the outcome is unknown).
_TRANSPORT = (BotoConnectionError, HTTPClientError, EndpointConnectionError, ConnectionClosedError)
_TOO_LARGE = "exceeded the maximum allowed size"


def _serialize(value: Value) -> dict[str, Any]:
    if isinstance(value, bool):  # before int: bool is an int
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"B": bytes(value)}
    raise InvalidInput(f"cannot store a value of type {type(value).__name__}")


def _deserialize(attr: Mapping[str, Any]) -> Value:
    if "S" in attr:
        return str(attr["S"])
    if "N" in attr:
        text = str(attr["N"])
        try:
            return int(text)
        except ValueError:
            pass
        # Written by someone else as a non-integer; integral values still read as int.
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = Decimal("NaN")
        if number.is_finite() and number == number.to_integral_value():
            return int(number)
        raise BackendError(f"number {text} is not an integer")
    if "B" in attr:
        return bytes(attr["B"])
    if "BOOL" in attr:
        return bool(attr["BOOL"])
    raise BackendError(f"unsupported attribute type {sorted(attr)}")


def _to_item(item: Mapping[str, Value]) -> dict[str, Any]:
    return {name: _serialize(value) for name, value in item.items()}


def _from_item(item: Mapping[str, Any]) -> Item:
    return {name: _deserialize(attr) for name, attr in item.items()}


def _key(key: Key) -> dict[str, Any]:
    return {"pk": {"S": key[0]}, "sk": {"S": key[1]}}


class _Expression:
    """Collects ``#n``/``:v`` placeholders for one request's expressions."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, name: str) -> str:
        for placeholder, existing in self.names.items():
            if existing == name:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = name
        return placeholder

    def value(self, value: Value) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _serialize(value)
        return placeholder

    def condition(self, condition: Condition) -> str:
        if not condition.exists:
            return f"attribute_not_exists({self.name('pk')})"
        parts = [f"attribute_exists({self.name('pk')})"]
        parts += [f"{self.name(n)} = {self.value(v)}" for n, v in condition.equals.items()]
        parts += [f"{self.name(n)} < {self.value(v)}" for n, v in condition.less_than.items()]
        expression = " AND ".join(parts)
        if condition.or_absent:
            expression = f"attribute_not_exists({self.name('pk')}) OR ({expression})"
        return expression

    def update(self, update: Update) -> str | None:
        """The UpdateExpression, or ``None`` when there is nothing to set or remove."""
        clauses = []
        if update.set:
            sets = [f"{self.name(n)} = {self.value(v)}" for n, v in update.set.items()]
            clauses.append("SET " + ", ".join(sets))
        if update.remove:
            clauses.append("REMOVE " + ", ".join(self.name(n) for n in sorted(update.remove)))
        return " ".join(clauses) or None

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.names:
            params["ExpressionAttributeNames"] = self.names
        if self.values:
            params["ExpressionAttributeValues"] = self.values
        return params


class _Retry(Exception):
    """Internal: the attempt failed in a way worth retrying."""

    def __init__(self, cause: Exception, *, unknown: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.unknown = unknown


#: What every client of the backend is made with, blocking (boto3) or async (aiobotocore).
CLIENT_SETTINGS: dict[str, Any] = {
    # total_max_attempts counts the first attempt; botocore's max_attempts does not.
    "retries": {"total_max_attempts": 1, "mode": "standard"},
    # Our requests are built by this module alone, from checked input; botocore's check of every
    # parameter costs a few per cent of a request's client CPU (bench/client_cpu.py). DynamoDB
    # still checks them.
    "parameter_validation": False,
    "connect_timeout": 3,
    "read_timeout": 10,
    "max_pool_connections": 32,
    "tcp_keepalive": True,
}


class DynamoDBBackend(Backend):
    """A :class:`~eventstore.backends.base.Backend` on one DynamoDB table."""

    queries_round_once = True

    def __init__(
        self,
        table: str,
        *,
        client: Any = None,
        session: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = 8,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        streams_client: Any = None,
    ) -> None:
        _check_table_name(table)
        if max_attempts < 1:
            raise InvalidInput("max_attempts must be at least 1")
        self.table = table
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._session = session
        self._region = region
        self._endpoint_url = endpoint_url
        self._client: Any = client
        self._streams_client: Any = streams_client
        self._stream: ChangeStream | None = None
        self._stream_lock = bridge.IOLock()  # held while the table is described
        self._requests = 0
        self._lock = threading.Lock()
        self._thread = threading.local()
        if client is not None:
            client.meta.events.register(_sent_event(client), self._count)
        elif not self.lazy_client:
            self._client = self._open_client("dynamodb", region, endpoint_url)

    #: Whether the client is made on first use rather than by the constructor (an async
    #: client can only be made on an event loop).
    lazy_client = False

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._open_client("dynamodb", self._region, self._endpoint_url)
        return self._client

    def _open_client(self, service: str, region: str | None, endpoint_url: str | None) -> Any:
        """A client for ``service`` (``dynamodb`` or ``dynamodbstreams``) whose requests are
        counted; bad settings are :class:`InvalidInput`."""
        try:
            client = self._new_client(service, region, endpoint_url)
        except ValueError as e:  # botocore's own check of endpoint_url
            raise InvalidInput(f"cannot create a DynamoDB client: {e}") from e
        except BotoCoreError as e:  # typically no region configured anywhere
            raise InvalidInput(f"cannot create a DynamoDB client: {e}") from e
        client.meta.events.register(_sent_event(client), self._count)
        return client

    def _new_client(self, service: str, region: str | None, endpoint_url: str | None) -> Any:
        return new_client(
            service,
            region=region,
            endpoint_url=endpoint_url,
            config=Config(**CLIENT_SETTINGS),
            session=self._session,
        )

    def _send(self, method: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
        """One attempt of a request: the only line that waits for DynamoDB."""
        return method(**params)  # type: ignore[no-any-return]

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> DynamoDBBackend:
        """Open ``dynamodb://TABLE?region=R&endpoint_url=URL``."""
        parts = urlsplit(url)
        if parts.scheme != "dynamodb":
            raise InvalidInput(f"not a dynamodb:// URL: {url!r}")
        table = parts.netloc or parts.path.lstrip("/")
        _check_table_name(table)
        options: dict[str, Any] = {}
        for name, values in parse_qs(parts.query, keep_blank_values=True).items():
            if len(values) != 1:
                raise InvalidInput(f"URL option {name!r} given more than once")
            if name in ("region", "endpoint_url"):
                options[name] = values[0] or None
            elif name == "max_attempts":
                try:
                    options[name] = int(values[0])
                except ValueError:
                    raise InvalidInput(f"max_attempts must be an integer: {values[0]!r}") from None
            else:
                raise InvalidInput(f"unknown dynamodb URL option {name!r}")
        return cls(table, **{**options, **kwargs})

    serialised = False

    def identity(self) -> object | None:
        meta = self.client.meta
        return ("dynamodb", meta.endpoint_url, meta.region_name, self.table)

    def _stream_arn(self) -> str | None:
        table = self._call("describe_table", {"TableName": self.table})["Table"]
        if not table.get("StreamSpecification", {}).get("StreamEnabled"):
            return None
        arn = table.get("LatestStreamArn")
        return str(arn) if arn else None

    def change_stream(self) -> ChangeStream | None:
        with self._stream_lock:
            if self._stream is None:
                arn = self._stream_arn()
                if arn is None:
                    return None
                if self._streams_client is None:
                    meta = self.client.meta
                    self._streams_client = self._open_client(
                        "dynamodbstreams", meta.region_name, meta.endpoint_url
                    )
                client = self._streams_client

                def send(
                    operation: str,
                    params: dict[str, Any],
                    on_error: Callable[[ClientError], Exception | None],
                ) -> dict[str, Any]:
                    return self._call(operation, params, on_error, client=client)

                self._stream = DynamoDBChangeStream(send, arn)
            return self._stream

    def enable_change_stream(self) -> None:
        if self._stream_arn() is not None:
            return
        self._call(
            "update_table",
            {
                "TableName": self.table,
                "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
            },
        )
        self._wait(300.0, gone=False)

    def _count(self, **_: Any) -> None:
        with self._lock:
            self._requests += 1
        self._thread.requests = getattr(self._thread, "requests", 0) + 1

    def usage(self) -> Usage:
        mine = self._thread
        return Usage(
            getattr(mine, "requests", 0),
            getattr(mine, "read_units", 0.0),
            getattr(mine, "write_units", 0.0),
        )

    def _spent(self, operation: str, response: Mapping[str, Any]) -> None:
        consumed = response.get("ConsumedCapacity")
        if not consumed:
            return
        units = sum(
            float(one.get("CapacityUnits", 0.0))
            for one in (consumed if isinstance(consumed, list) else [consumed])
        )
        kind = "read_units" if operation in _READS else "write_units"
        setattr(self._thread, kind, getattr(self._thread, kind, 0.0) + units)

    def requests(self) -> int:
        return self._requests

    def _backoff(self) -> Backoff:
        return Backoff(base=self.base_delay, cap=self.max_delay, attempts=self.max_attempts)

    def close(self) -> None:
        for client in (self._client, self._streams_client):
            if client is not None:
                client.meta.events.unregister(_sent_event(client), self._count)
                self._close_client(client)

    def _close_client(self, client: Any) -> None:
        client.close()

    # --- the one place where requests are sent, retried and their errors translated ---

    def _call(
        self,
        operation: str,
        params: Mapping[str, Any],
        on_error: Callable[[ClientError], Exception | None] | None = None,
        on_unknown_retry: Callable[[Exception], Exception | None] | None = None,
        *,
        client: Any = None,
    ) -> dict[str, Any]:
        """Send ``operation`` with retries. ``on_error`` may turn a client error into a final
        exception (or ``None`` to fall through to the table). ``on_unknown_retry`` is consulted for
        errors raised by an attempt made after an attempt whose outcome is unknown."""
        method = getattr(client or self.client, operation)
        if operation in _METERED:
            # Free to ask for: what each request cost, for tracing spans and benchmarks.
            params = {**params, "ReturnConsumedCapacity": "TOTAL"}
        last: _Retry | None = None
        unknown = False
        backoff = self._backoff()
        while True:
            try:
                try:
                    response = self._send(method, params)
                    self._spent(operation, response)
                    return response
                except ClientError as e:
                    translated = self._translate(e, on_error)
                    if isinstance(translated, WriteConflict) and unknown:
                        # An earlier attempt may have been applied: only the same request (the
                        # same token) can tell, so it is retried rather than handed back.
                        translated = _Retry(e, unknown=False)
                    raise translated from e
                except _TIMEOUTS as e:
                    raise _Retry(e, unknown=True) from e
                except _TRANSPORT as e:
                    raise _Retry(e, unknown=not isinstance(e, EndpointConnectionError)) from e
                except NoCredentialsError as e:
                    raise CredentialsMissing(
                        f"DynamoDB {operation}: {e}. Set AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY (any non-empty values for DynamoDB Local), or an "
                        "AWS profile or role"
                    ) from e
                except BotoCoreError as e:  # bad parameters: retrying won't help
                    raise BackendError(f"DynamoDB {operation}: {e}") from e
            except _Retry as retry:
                last = retry
                unknown = unknown or retry.unknown
                _log.info(
                    "DynamoDB %s: %s (%s), retrying",
                    operation,
                    type(retry.cause).__name__,
                    "outcome unknown" if retry.unknown else "not applied",
                )
            except Exception as final:
                if unknown and on_unknown_retry is not None:
                    replaced = on_unknown_retry(final)
                    if replaced is not final:
                        if replaced is None:
                            return {}
                        raise replaced from final.__cause__
                raise
            if not backoff.wait():
                break
        assert last is not None
        cause = last.cause
        what = f"DynamoDB {operation} failed {backoff.tries} {'time' if backoff.tries == 1 else 'times'}"
        if isinstance(cause, _TIMEOUTS):
            raise BackendTimeout(f"{what}; last: {cause}") from cause
        raise BackendUnavailable(f"{what}; last: {cause}") from cause

    def _translate(
        self, e: ClientError, on_error: Callable[[ClientError], Exception | None] | None
    ) -> Exception:
        """Map a client error to the exception to raise (a :class:`_Retry` to retry)."""
        if on_error is not None:
            handled = on_error(e)
            if handled is not None:
                return handled
        error = e.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", ""))
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        outcome = _OUTCOMES.get(code, _UNKNOWN if status >= 500 else BackendError)
        if outcome in (_REFUSED, _UNKNOWN):
            return _Retry(e, unknown=outcome == _UNKNOWN)
        if code == "TransactionCanceledException":
            reasons = [str(r.get("Code", "")) for r in e.response.get("CancellationReasons", [])]
            if any(_OUTCOMES.get(r) == _REFUSED for r in reasons):
                return _Retry(e, unknown=False)
            too_large = [
                r
                for r in e.response.get("CancellationReasons", [])
                if _TOO_LARGE in r.get("Message", "")
            ]
            if too_large:
                return ItemTooLarge(MAX_ITEM_SIZE + 1, MAX_ITEM_SIZE)
        if code == "ValidationException" and "payload size cannot exceed" in message:
            # The commit check counts generously; this is the server's own word, kept typed.
            found = re.search(r"Payload Size: (\d+)", message)
            size = int(found.group(1)) if found else MAX_WRITE_BYTES + 1
            return CommitTooLarge("bytes", size, MAX_WRITE_BYTES)
        if code == "ValidationException" and _TOO_LARGE in message:
            # The server does not say by how much; the size is at least one byte over the limit.
            return ItemTooLarge(MAX_ITEM_SIZE + 1, MAX_ITEM_SIZE)
        kind = outcome if isinstance(outcome, type) else BackendError
        if kind is TableNotFound:
            return TableNotFound(f"DynamoDB table {self.table!r} does not exist: {message}")
        return kind(f"DynamoDB {e.operation_name}: {code}: {message}")

    # --- writes ---

    def write(
        self,
        writes: Sequence[Write],
        *,
        token: str | None = None,
        conflicts: Literal["retry", "raise"] = "retry",
    ) -> Mapping[int, int]:
        if not writes:
            return {}
        check_batch(writes, token, self)
        for w in writes:
            if isinstance(w, Put) and w.position is not None:
                raise InvalidInput("DynamoDB keeps no feed in its items: a Put takes no position")
            _check_size(w)
        if len(writes) == 1:
            self._write_one(writes[0])
            return {}
        actions = [self._action(w, single=False) for w in writes]
        # Without a token of the caller's, a retry would be a new request to DynamoDB and could
        # apply the batch twice; one token per call makes retries safe.
        params = {"TransactItems": actions, "ClientRequestToken": token or str(uuid.uuid4())}

        def on_error(e: ClientError) -> Exception | None:
            if e.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                return None
            failures: dict[int, Item | None] = {}
            raced: set[int] = set()
            for index, reason in enumerate(e.response.get("CancellationReasons", [])):
                if reason.get("Code") == "ConditionalCheckFailed":
                    old = reason.get("Item")
                    failures[index] = _from_item(old) if old else None
                elif reason.get("Code") == "TransactionConflict":
                    raced.add(index)
            if not failures:
                return WriteConflict(frozenset(raced)) if raced and conflicts == "raise" else None
            first = min(failures)
            return ConditionFailed(first, failures[first], failures)

        self._call("transact_write_items", params, on_error)
        return {}

    def joins(self, other: Backend) -> bool:
        mine, theirs = self.identity(), other.identity()
        return (
            isinstance(other, DynamoDBBackend)
            and isinstance(mine, tuple)
            and isinstance(theirs, tuple)
            and mine[:3] == theirs[:3]
        )

    def _action(self, w: Write, *, single: bool) -> dict[str, Any]:
        expr = _Expression()
        into = w.into if isinstance(w, Put) else None
        table = into.table if isinstance(into, DynamoDBBackend) else self.table
        body: dict[str, Any] = {"TableName": table}
        if isinstance(w, Put):
            kind = "Put"
            body["Item"] = _to_item(w.item)
        elif isinstance(w, Update):
            kind = "Update"
            body["Key"] = _key(w.key)
            update = expr.update(w)
            if update is None and not single:
                # A transaction needs an expression; removing an attribute nobody writes is a no-op
                # that still creates the bare item when it is absent.
                update = f"REMOVE {expr.name(_NOTHING)}"
            if update is not None:
                # UpdateItem without an expression also creates the bare item if absent.
                body["UpdateExpression"] = update
        else:
            kind = "Delete"
            body["Key"] = _key(w.key)
        if w.condition is not None:
            body["ConditionExpression"] = expr.condition(w.condition)
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        body.update(expr.params())
        return {kind: body}

    def _write_one(self, w: Write) -> None:
        ((kind, params),) = self._action(w, single=True).items()
        operation = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}[kind]

        def on_error(e: ClientError) -> Exception | None:
            if e.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                return None
            old: Any = e.response.get("Item")  # not in the stubs' error shape
            return ConditionFailed(0, _from_item(old) if old else None)

        def on_unknown_retry(error: Exception) -> Exception | None:
            # A single write cannot carry a token. If an earlier attempt was applied but its answer
            # was lost, the retry's condition fails against our own write: that is a success.
            if (
                isinstance(error, ConditionFailed)
                and error.item is not None
                and _applied(w, error.item)
            ):
                return None
            return error

        self._call(operation, params, on_error, on_unknown_retry)

    # --- reads ---

    def get(self, keys: Sequence[Key], *, consistent: bool = True) -> list[Item | None]:
        if not keys:
            return []
        if len(keys) == 1:
            response = self._call(
                "get_item",
                {"TableName": self.table, "Key": _key(keys[0]), "ConsistentRead": consistent},
            )
            item = response.get("Item")
            return [_from_item(item) if item else None]
        found: dict[Key, Item] = {}
        unique = list(dict.fromkeys(keys))  # BatchGetItem refuses duplicate keys
        for i in range(0, len(unique), 100):
            self._batch_get(unique[i : i + 100], consistent, found)
        return [found.get(k) for k in keys]

    def _batch_get(self, keys: Sequence[Key], consistent: bool, found: dict[Key, Item]) -> None:
        request: dict[str, Any] = {
            self.table: {"Keys": [_key(k) for k in keys], "ConsistentRead": consistent}
        }
        backoff = self._backoff()
        while True:
            response = self._call("batch_get_item", {"RequestItems": request})
            for raw in response.get("Responses", {}).get(self.table, []):
                item = _from_item(raw)
                found[(str(item["pk"]), str(item["sk"]))] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return
            if not backoff.wait():
                break
        raise BackendUnavailable(
            f"DynamoDB BatchGetItem left keys unprocessed after {self.max_attempts} attempts"
        )

    def query(
        self,
        pk: str,
        *,
        sk: SortCondition | None = None,
        index: str | None = None,
        forward: bool = True,
        limit: int | None = None,
        start: Item | None = None,
        consistent: bool = True,
    ) -> Page:
        expr = _Expression()
        params: dict[str, Any] = {"TableName": self.table, "ScanIndexForward": forward}
        if index is None:
            pk_name, sk_name = "pk", "sk"
            params["ConsistentRead"] = consistent
        else:
            if index not in INDEXES:
                raise InvalidInput(f"unknown index {index!r}; indexes are {', '.join(INDEXES)}")
            pk_name, sk_name = index_keys(index)
            params["IndexName"] = index  # GSIs cannot be read consistently
        key_condition = f"{expr.name(pk_name)} = {expr.value(pk)}"
        if sk is not None:
            key_condition += " AND " + _sort_condition(expr, expr.name(sk_name), sk)
        params["KeyConditionExpression"] = key_condition
        params.update(expr.params())
        return self._page("query", params, limit, start)

    def scan(
        self,
        *,
        segment: int = 0,
        segments: int = 1,
        start: Item | None = None,
        limit: int | None = None,
    ) -> Page:
        if not 1 <= segments <= 1_000_000 or not 0 <= segment < segments:
            raise InvalidInput(f"segment {segment} of {segments} is out of range")
        params: dict[str, Any] = {
            "TableName": self.table,
            # Consistent like the embedded backends: a rebuild must see every head written before.
            "ConsistentRead": True,
        }
        if segments > 1:
            params["Segment"] = segment
            params["TotalSegments"] = segments
        return self._page("scan", params, limit, start)

    def _page(
        self, operation: str, params: dict[str, Any], limit: int | None, start: Item | None
    ) -> Page:
        if limit is not None:
            if limit < 1:
                raise InvalidInput("limit must be at least 1")
            params["Limit"] = limit
        if start is not None:
            params["ExclusiveStartKey"] = _to_item(start)
        response = self._call(operation, params)
        last = response.get("LastEvaluatedKey")
        return Page(
            [_from_item(item) for item in response.get("Items", [])],
            _from_item(last) if last else None,
        )

    # --- table management ---

    def create_table(self, options: TableOptions | None = None, *, timeout: float = 300.0) -> None:
        options = options or TableOptions()
        attributes = [("pk", "sk")] + [index_keys(name) for name in INDEXES]
        throughput: dict[str, Any] = {}
        if options.billing == "PROVISIONED":
            throughput = {
                "ProvisionedThroughput": {
                    "ReadCapacityUnits": options.read_capacity,
                    "WriteCapacityUnits": options.write_capacity,
                }
            }
        params: dict[str, Any] = {
            "TableName": self.table,
            "BillingMode": options.billing,
            **throughput,
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": "S"}
                for pair in attributes
                for name in pair
            ],
            "KeySchema": _key_schema("pk", "sk"),
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": name,
                    "KeySchema": _key_schema(*index_keys(name)),
                    "Projection": {
                        "ProjectionType": "INCLUDE",
                        "NonKeyAttributes": list(INDEX_ATTRIBUTES),
                    },
                    **throughput,
                }
                for name in INDEXES
            ],
            "DeletionProtectionEnabled": options.deletion_protection,
        }
        if options.kms_key is not None:
            params["SSESpecification"] = {
                "Enabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": options.kms_key,
            }
        if options.tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(options.tags.items())]
        if options.stream is not None:
            params["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": options.stream,
            }

        def on_error(e: ClientError) -> Exception | None:
            # Already there, or being created by someone else: wait for it below.
            if e.response.get("Error", {}).get("Code") == "ResourceInUseException":
                return _Exists()
            return None

        with contextlib.suppress(_Exists):
            self._call("create_table", params, on_error)
        self._wait(timeout, gone=False)
        # Superseded versions of types with max_age carry their expiry here; DynamoDB deletes
        # them within days of it (reads skip them from the moment they expire).
        current = self._call("describe_time_to_live", {"TableName": self.table})
        status = current.get("TimeToLiveDescription", {}).get("TimeToLiveStatus")
        if status not in ("ENABLED", "ENABLING"):
            self._call(
                "update_time_to_live",
                {
                    "TableName": self.table,
                    "TimeToLiveSpecification": {"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
                },
            )

        if options.point_in_time_recovery:
            self._call(
                "update_continuous_backups",
                {
                    "TableName": self.table,
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                },
            )

    def delete_table(self, *, timeout: float = 300.0) -> None:
        """Delete the table and wait until it is gone; a missing table is not an error."""
        try:
            self._call("delete_table", {"TableName": self.table})
        except TableNotFound:
            return
        self._wait(timeout, gone=True)

    def _wait(self, timeout: float, *, gone: bool) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                table = self._call("describe_table", {"TableName": self.table})["Table"]
            except TableNotFound:
                if gone:
                    return
                table = {}
            if not gone and table.get("TableStatus") == "ACTIVE":
                indexes = table.get("GlobalSecondaryIndexes", [])
                if all(i.get("IndexStatus") == "ACTIVE" for i in indexes):
                    return
            if time.monotonic() > deadline:
                state = "deleted" if gone else "active"
                raise BackendTimeout(f"DynamoDB table {self.table!r} not {state} after {timeout} s")
            bridge.sleep(delay)
            delay = min(delay * 2, 2.0)


class _Exists(Exception):
    """Internal: CreateTable found the table already there."""


def _sent_event(client: Any) -> str:
    """The botocore event sent before each request of ``client``'s service (counted)."""
    return f"before-send.{client.meta.service_model.service_id.hyphenize()}.*"


def _check_table_name(table: str) -> None:
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
        raise InvalidInput(
            f"invalid DynamoDB table name {table!r}: 3-255 characters of A-Z a-z 0-9 _ . -"
        )


def _check_size(w: Write) -> None:
    if isinstance(w, Put):
        size = item_size(w.item)
    elif isinstance(w, Update):
        # What is sent is a lower bound of the item's size; the server checks the rest.
        size = item_size({"pk": w.key[0], "sk": w.key[1], **w.set})
    else:
        return
    if size > MAX_ITEM_SIZE:
        raise ItemTooLarge(size, MAX_ITEM_SIZE)


def _applied(w: Write, current: Item) -> bool:
    """Whether ``current`` is what ``w`` leaves under its key (so ``w`` may have been applied)."""
    if isinstance(w, Put):
        return current == w.item
    if isinstance(w, Update):
        same = all(
            n in current and type(current[n]) is type(v) and current[n] == v
            for n, v in w.set.items()
        )
        return same and not any(n in current for n in w.remove)
    return False


def _key_schema(hash_key: str, range_key: str) -> list[dict[str, str]]:
    return [
        {"AttributeName": hash_key, "KeyType": "HASH"},
        {"AttributeName": range_key, "KeyType": "RANGE"},
    ]


def _sort_condition(expr: _Expression, name: str, sk: SortCondition) -> str:
    if sk.op == "begins_with":
        return f"begins_with({name}, {expr.value(sk.value)})"
    if sk.op == "between":
        if sk.upper is None:
            raise InvalidInput("a between sort condition needs an upper bound")
        return f"{name} BETWEEN {expr.value(sk.value)} AND {expr.value(sk.upper)}"
    if sk.op not in ("=", "<", "<=", ">", ">="):
        raise InvalidInput(f"unknown sort condition {sk.op!r}")
    return f"{name} {sk.op} {expr.value(sk.value)}"
