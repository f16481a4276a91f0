"""An AWS Lambda handler written with ``async def``, on :mod:`eventstore.aio`.

Lambda's Python runtime calls a plain function, so ``handler`` runs the coroutine ``handle`` on
an event loop of its own. The loop and the store (its aiobotocore client, bound to that loop)
are made on the first invocation and kept by the execution environment, so a warm invocation
sends one request per append, as the blocking handler of lambda_handler.py does. Within one
invocation, ``handle`` may await several things at once (here: reading several orders with
``asyncio.gather``).

- ``EVENTSTORE_URL``: ``dynamodb://orders?region=eu-west-1``;
- ``EVENTSTORE_CREATE_TABLE=1``: create the table on first use (for development).

Routes: ``POST /orders``, ``GET /orders/{id}``, ``GET /orders?ids=a,b,c`` (several at once).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from pydantic import ValidationError

import eventstore.aio
from eventstore import InvalidInput, InvalidKey, Resource, StreamNotFound, Version
from eventstore.aio import AsyncEventStore


class Order(Resource):
    customer: str
    status: str = "new"


_loop: asyncio.AbstractEventLoop | None = None
_store: AsyncEventStore | None = None


async def store() -> AsyncEventStore:
    """The execution environment's store, opened on the first invocation."""
    global _store
    if _store is None:
        _store = eventstore.aio.open(os.environ["EVENTSTORE_URL"])
        if os.environ.get("EVENTSTORE_CREATE_TABLE") == "1":
            await _store.create_table()
    return _store


def reply(status: int, body: Any) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


def as_json(version: Version[Order]) -> dict[str, Any]:
    return {"id": version.resource_id, "version": version.version, **version.state.model_dump()}


async def handle(event: dict[str, Any]) -> dict[str, Any]:
    route = event.get("routeKey", "")
    order_id = (event.get("pathParameters") or {}).get("id")
    orders = await store()
    try:
        if route == "POST /orders":
            made = await orders.append(Order.model_validate_json(event.get("body") or "{}"))
            return reply(201, as_json(made))
        if route == "GET /orders/{id}":
            return reply(200, as_json(await orders.read_version(Order, order_id or "")))
        if route == "GET /orders":
            ids = (event.get("queryStringParameters") or {}).get("ids", "").split(",")
            found = await asyncio.gather(
                *(orders.read_version(Order, i) for i in ids if i), return_exceptions=True
            )
            return reply(200, [as_json(v) for v in found if isinstance(v, Version)])
        return reply(404, {"message": f"no route {route}"})
    except StreamNotFound:
        return reply(404, {"message": f"no order {order_id}"})
    except ValidationError as e:
        fields = [{"field": ".".join(map(str, x["loc"])), "problem": x["msg"]} for x in e.errors()]
        return reply(400, {"message": "invalid order", "errors": fields})
    except (InvalidInput, InvalidKey) as e:
        return reply(400, {"message": str(e)})


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(handle(event))
