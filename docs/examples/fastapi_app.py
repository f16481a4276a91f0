"""A FastAPI service over eventstore: orders with versions as ETags.

- ``POST /orders`` creates an order (201, ``Location`` and ``ETag``).
- ``GET /orders/{id}`` returns the latest version (``?version=N`` an older one), with its ETag.
- ``PUT /orders/{id}`` replaces the order: ``If-Match: "<version>"`` is required (428 without it)
  and becomes ``expected_version``; a stale one is 412 with the current version in the body.
  ``If-None-Match: *`` instead creates the order under that id (409 if it exists).
- ``POST /orders/{id}/cancel`` is a command: read, decide, append, retried on conflict by
  ``store.update``; cancelling a shipped order is 409.
- ``GET /orders/{id}/history`` lists the versions.

Run it: ``EVENTSTORE_URL=sqlite:///orders.db uvicorn docs.examples.fastapi_app:app``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse

import eventstore
from eventstore import (
    NO_STREAM,
    ConcurrencyError,
    EventStore,
    InvalidInput,
    InvalidKey,
    Resource,
    StreamNotFound,
    Version,
    VersionNotFound,
)


class Order(Resource):
    customer: str
    status: str = "new"
    total_cents: int = 0


def as_json(version: Version[Order]) -> dict[str, Any]:
    return {
        "id": version.resource_id,
        "version": version.version,
        "version_id": version.version_id,
        "recorded_at": version.recorded_at.isoformat(),
        "event": version.event,
        "metadata": dict(version.metadata),
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


def create_app(store: EventStore) -> FastAPI:
    app = FastAPI(title="orders")

    @app.exception_handler(InvalidKey)
    def bad_id(request: Request, error: InvalidKey) -> JSONResponse:
        # An id no stream can have (too long, control characters), on any route.
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.post("/orders", status_code=201)
    def create(order: Order, response: Response) -> dict[str, Any]:
        made = store.append(order, event="created")
        response.headers["Location"] = f"/orders/{made.resource_id}"
        response.headers["ETag"] = etag(made)
        return as_json(made)

    @app.get("/orders/{order_id}")
    def read(order_id: str, response: Response, version: int | None = None) -> dict[str, Any]:
        try:
            found = store.read_version(Order, order_id, version)
        except (StreamNotFound, VersionNotFound) as e:
            raise HTTPException(404, str(e)) from e
        except InvalidInput as e:  # a bad id or version number
            raise HTTPException(400, str(e)) from e
        response.headers["ETag"] = etag(found)
        return as_json(found)

    @app.put("/orders/{order_id}")
    def replace(
        order_id: str,
        order: Order,
        response: Response,
        if_match: Annotated[str | None, Header()] = None,
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        if if_none_match == "*":
            try:
                made = store.append(order, resource_id=order_id, expected_version=NO_STREAM)
            except ConcurrencyError as e:
                raise HTTPException(409, f"order {order_id} exists (version {e.actual})") from e
            response.status_code = 201
        elif if_match is None:
            raise HTTPException(428, "send If-Match with the ETag you read (or If-None-Match: *)")
        else:
            try:
                made = store.append(
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
    def cancel(order_id: str, response: Response) -> dict[str, Any]:
        def decide(order: Order) -> Order:
            if order.status == "shipped":
                raise HTTPException(409, "a shipped order cannot be cancelled")
            return order.model_copy(update={"status": "cancelled"})

        try:
            done = store.update(Order, order_id, decide, event="cancelled")
        except StreamNotFound as e:
            raise HTTPException(404, str(e)) from e
        response.headers["ETag"] = etag(done)
        return as_json(done)

    @app.get("/orders/{order_id}/history")
    def history(order_id: str) -> list[dict[str, Any]]:
        try:
            return [as_json(v) for v in store.read_stream(Order, order_id)]
        except StreamNotFound as e:
            raise HTTPException(404, str(e)) from e

    return app


def _store_from_environment() -> EventStore:
    store = eventstore.open(os.environ.get("EVENTSTORE_URL", "sqlite:///orders.db"))
    store.create_table()
    return store


if os.environ.get("EVENTSTORE_URL"):
    app = create_app(_store_from_environment())
