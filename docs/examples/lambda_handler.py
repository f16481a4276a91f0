"""An AWS Lambda handler over eventstore, for API Gateway HTTP APIs (payload format 2.0).

The store is opened once per execution environment, from environment variables, and reused by
every invocation (a warm Lambda sends one request per append):

- ``EVENTSTORE_URL``: ``dynamodb://orders?region=eu-west-1`` (the function's role needs the
  policy of docs/operations.md);
- ``EVENTSTORE_CREATE_TABLE=1``: create the table on first use (for development; in production
  the table comes from your infrastructure code).

Routes: ``POST /orders``, ``GET /orders/{id}``, ``PATCH /orders/{id}`` (with ``If-Match``: 428
without it, 412 when stale).
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import ValidationError

import eventstore
from eventstore import (
    ConcurrencyError,
    EventStore,
    InvalidInput,
    InvalidKey,
    Resource,
    StreamNotFound,
    Version,
)


class Order(Resource):
    customer: str
    status: str = "new"
    total_cents: int = 0


_store: EventStore | None = None


def store() -> EventStore:
    """The execution environment's store, opened on the first invocation."""
    global _store
    if _store is None:
        _store = eventstore.open(os.environ["EVENTSTORE_URL"])
        if os.environ.get("EVENTSTORE_CREATE_TABLE") == "1":
            _store.create_table()
    return _store


def reply(status: int, body: Any, version: Version[Order] | None = None) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    if version is not None:
        headers["etag"] = f'"{version.version}"'
    return {"statusCode": status, "headers": headers, "body": json.dumps(body)}


def as_json(version: Version[Order]) -> dict[str, Any]:
    return {
        "id": version.resource_id,
        "version": version.version,
        "order": version.state.model_dump(mode="json"),
    }


def expected_from(if_match: str) -> int | None:
    """The version an ``If-Match`` header names (``"3"`` or weak ``W/"3"``), or ``None``."""
    text = if_match.strip().removeprefix("W/").strip('"')
    return int(text) if text.isdigit() and int(text) >= 1 else None


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    route = event.get("routeKey", "")
    order_id = (event.get("pathParameters") or {}).get("id")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    try:
        if route == "POST /orders":
            made = store().append(Order.model_validate_json(event.get("body") or "{}"))
            return reply(201, as_json(made), made)
        if route == "GET /orders/{id}":
            found = store().read_version(Order, order_id or "")
            return reply(200, as_json(found), found)
        if route == "PATCH /orders/{id}":
            if "if-match" not in headers:
                return reply(428, {"message": "send If-Match with the ETag you read"})
            expected = expected_from(headers["if-match"])
            if expected is None:
                return reply(400, {"message": 'If-Match must be an ETag of this API, like "3"'})
            try:
                changes = json.loads(event.get("body") or "{}")
            except ValueError:
                return reply(400, {"message": "the body must be a JSON object"})
            if not isinstance(changes, dict):
                return reply(400, {"message": "the body must be a JSON object of fields to change"})
            current = store().read_version(Order, order_id or "")
            if current.version != expected:
                return reply(412, {"current_version": current.version})
            # Validated as a whole, so a wrong field type is a 400, never a stored surprise.
            changed = Order.model_validate({**current.state.model_dump(), **changes})
            made = store().append(
                changed,
                resource_id=current.resource_id,
                expected_version=expected,
                event="changed",
            )
            return reply(200, as_json(made), made)
        return reply(404, {"message": f"no route {route}"})
    except StreamNotFound:
        return reply(404, {"message": f"no order {order_id}"})
    except ConcurrencyError as e:  # changed between the read and the append
        return reply(412, {"current_version": e.actual})
    except ValidationError as e:
        fields = [{"field": ".".join(map(str, x["loc"])), "problem": x["msg"]} for x in e.errors()]
        return reply(400, {"message": "invalid order", "errors": fields})
    except (InvalidInput, InvalidKey) as e:  # a bad id or version
        return reply(400, {"message": str(e)})
