"""The FastAPI service of fastapi_app.py with async handlers, on :mod:`eventstore.aio`: no
request holds a thread while it waits for DynamoDB or SQLite.

- ``POST /orders`` creates an order (201, ``Location`` and ``ETag``).
- ``GET /orders/{id}`` returns the latest version (``?version=N`` an older one), with its ETag.
- ``PUT /orders/{id}`` replaces the order: ``If-Match: "<version>"`` is required (428 without it)
  and becomes ``expected_version``; a stale one is 412 with the current version in the body.
- ``POST /orders/{id}/cancel`` is a command: read, decide, append, retried on conflict by
  ``store.update``, whose ``change`` here is an ``async def`` (it could ask another service).
- ``GET /orders/{id}/history`` streams the versions from an async iterator.

Run it: ``EVENTSTORE_URL=sqlite:///orders.db uvicorn docs.examples.fastapi_async:app``. The
store is opened in the app's lifespan, on the server's event loop, and closed with it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse

import eventstore.aio
from eventstore import (
    ConcurrencyError,
    InvalidInput,
    InvalidKey,
    Resource,
    StreamNotFound,
    Version,
    VersionNotFound,
)
from eventstore.aio import AsyncEventStore


class Order(Resource):
    customer: str
    status: str = "new"
    total_cents: int = 0


def as_json(version: Version[Order]) -> dict[str, Any]:
    return {
        "id": version.resource_id,
        "version": version.version,
        "event": version.event,
        "order": version.state.model_dump(mode="json"),
    }


def etag(version: Version[Order]) -> str:
    return f'"{version.version}"'


def expected_from(if_match: str) -> int:
    """The version an ``If-Match`` header names (``"3"`` or ``W/"3"``)."""
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or int(text) < 1:
        raise HTTPException(400, f"If-Match must be an ETag of this API, got {if_match!r}")
    return int(text)


def create_app(store: AsyncEventStore, *, lifespan: Any = None) -> FastAPI:
    app = FastAPI(title="orders (async)", lifespan=lifespan)

    @app.exception_handler(InvalidKey)
    async def bad_id(request: Request, error: InvalidKey) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.post("/orders", status_code=201)
    async def create(order: Order, response: Response) -> dict[str, Any]:
        made = await store.append(order, event="created")
        response.headers["Location"] = f"/orders/{made.resource_id}"
        response.headers["ETag"] = etag(made)
        return as_json(made)

    @app.get("/orders/{order_id}")
    async def read(order_id: str, response: Response, version: int | None = None) -> dict[str, Any]:
        try:
            found = await store.read_version(Order, order_id, version)
        except (StreamNotFound, VersionNotFound) as e:
            raise HTTPException(404, str(e)) from e
        except InvalidInput as e:  # a bad id or version number
            raise HTTPException(400, str(e)) from e
        response.headers["ETag"] = etag(found)
        return as_json(found)

    @app.put("/orders/{order_id}")
    async def replace(
        order_id: str,
        order: Order,
        response: Response,
        if_match: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        if if_match is None:
            raise HTTPException(428, "send If-Match with the ETag you read")
        try:
            made = await store.append(
                order,
                resource_id=order_id,
                expected_version=expected_from(if_match),
                event="replaced",
            )
        except ConcurrencyError as e:
            if e.actual == 0:
                raise HTTPException(404, f"no order {order_id}") from e
            raise HTTPException(
                412, {"message": "changed since you read it", "current_version": e.actual}
            ) from e
        response.headers["ETag"] = etag(made)
        return as_json(made)

    @app.post("/orders/{order_id}/cancel")
    async def cancel(order_id: str, response: Response) -> dict[str, Any]:
        async def decide(order: Order) -> Order:
            if order.status == "shipped":
                raise HTTPException(409, "a shipped order cannot be cancelled")
            return order.model_copy(update={"status": "cancelled"})

        try:
            done = await store.update(Order, order_id, decide, event="cancelled")
        except StreamNotFound as e:
            raise HTTPException(404, str(e)) from e
        response.headers["ETag"] = etag(done)
        return as_json(done)

    @app.get("/orders/{order_id}/history")
    async def history(order_id: str) -> list[dict[str, Any]]:
        try:
            return [as_json(v) async for v in store.read_stream(Order, order_id)]
        except StreamNotFound as e:
            raise HTTPException(404, str(e)) from e

    return app


def app_from_environment() -> FastAPI:
    """The app on ``EVENTSTORE_URL``, its store opened and closed by the app's lifespan."""
    store = eventstore.aio.open(os.environ.get("EVENTSTORE_URL", "sqlite:///orders.db"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with store:
            await store.create_table()
            yield

    return create_app(store, lifespan=lifespan)


if os.environ.get("EVENTSTORE_URL"):
    app = app_from_environment()
