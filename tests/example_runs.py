"""Runs the examples of docs/examples/ as a user would, in a process of their own (the examples'
``Order`` is not the test suite's): ``python tests/example_runs.py fastapi|lambda``. Exits non-zero
with the failed assertion. Driven by tests/test_examples.py."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_fastapi() -> None:
    from fastapi.testclient import TestClient

    import eventstore

    example = load("fastapi_app")
    store = eventstore.open("memory://")
    store.create_table()
    client = TestClient(example.create_app(store))

    made = client.post("/orders", json={"customer": "ada", "total_cents": 1200})
    assert made.status_code == 201, made.text
    order_id = made.json()["id"]
    assert made.headers["location"] == f"/orders/{order_id}"
    assert made.headers["etag"] == '"1"'

    read = client.get(f"/orders/{order_id}")
    assert read.status_code == 200 and read.json()["order"]["customer"] == "ada"

    body = {"customer": "ada", "total_cents": 1500}
    assert client.put(f"/orders/{order_id}", json=body).status_code == 428
    changed = client.put(f"/orders/{order_id}", json=body, headers={"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.headers["etag"] == '"2"'
    stale = client.put(f"/orders/{order_id}", json=body, headers={"If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["detail"]["current_version"] == 2
    assert (
        client.put(f"/orders/{order_id}", json=body, headers={"If-Match": "x"}).status_code == 400
    )
    assert client.put("/orders/nobody", json=body, headers={"If-Match": '"1"'}).status_code == 404

    created = client.put("/orders/o-7", json=body, headers={"If-None-Match": "*"})
    assert created.status_code == 201 and created.json()["id"] == "o-7"
    again = client.put("/orders/o-7", json=body, headers={"If-None-Match": "*"})
    assert again.status_code == 409

    # Concurrent cancels: store.update retries on conflict, each sees the latest state.
    results: list[int] = []

    def cancel() -> None:
        results.append(client.post(f"/orders/{order_id}/cancel").status_code)

    threads = [threading.Thread(target=cancel) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 4
    assert client.get(f"/orders/{order_id}").json()["version"] == 6

    shipped = client.post("/orders", json={"customer": "bob", "status": "shipped"}).json()
    refused = client.post(f"/orders/{shipped['id']}/cancel")
    assert refused.status_code == 409 and "shipped" in refused.json()["detail"]

    history = client.get(f"/orders/{order_id}/history").json()
    assert [h["event"] for h in history] == ["created", "replaced"] + ["cancelled"] * 4
    assert (
        client.get(f"/orders/{order_id}", params={"version": 1}).json()["order"]["total_cents"]
        == 1200
    )
    assert client.get(f"/orders/{order_id}", params={"version": 99}).status_code == 404
    assert client.get("/orders/nobody/history").status_code == 404
    assert client.post("/orders", json={"total_cents": 1}).status_code == 422  # no customer
    for bad_id in ("x" * 300, "a%00b"):  # a NUL, percent-encoded as a client sends it
        assert client.get(f"/orders/{bad_id}").status_code == 400
        put = client.put(f"/orders/{bad_id}", json=body, headers={"If-Match": '"1"'})
        assert put.status_code == 400, put.text
        assert client.get(f"/orders/{bad_id}/history").status_code == 400


def _event(
    route: str, order_id: str | None = None, body: Any = None, **headers: str
) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": route,
        "pathParameters": {"id": order_id} if order_id else None,
        "headers": headers,
        "body": None if body is None else json.dumps(body),
    }


def run_lambda() -> None:
    example = load("lambda_handler")
    handler = example.handler

    made = handler(_event("POST /orders", body={"customer": "ada"}), None)
    assert made["statusCode"] == 201, made
    order_id = json.loads(made["body"])["id"]
    assert made["headers"]["etag"] == '"1"'
    first_store = example.store()

    read = handler(_event("GET /orders/{id}", order_id), None)
    assert read["statusCode"] == 200 and json.loads(read["body"])["order"]["customer"] == "ada"
    assert example.store() is first_store  # a warm environment reuses its store

    patch = _event("PATCH /orders/{id}", order_id, {"status": "paid"})
    assert handler(patch, None)["statusCode"] == 428
    done = handler(
        _event("PATCH /orders/{id}", order_id, {"status": "paid"}, **{"If-Match": '"1"'}), None
    )
    assert done["statusCode"] == 200 and json.loads(done["body"])["order"]["status"] == "paid"
    stale = handler(
        _event("PATCH /orders/{id}", order_id, {"status": "new"}, **{"If-Match": '"1"'}), None
    )
    assert stale["statusCode"] == 412 and json.loads(stale["body"]) == {"current_version": 2}
    bad = handler(
        _event("PATCH /orders/{id}", order_id, {"total_cents": "many"}, **{"If-Match": '"2"'}), None
    )
    assert bad["statusCode"] == 400
    assert handler(_event("GET /orders/{id}", "nobody"), None)["statusCode"] == 404
    assert handler(_event("DELETE /orders/{id}", order_id), None)["statusCode"] == 404
    assert handler(_event("POST /orders", body={"total_cents": 1}), None)["statusCode"] == 400
    # Every bad request gets a 4xx with a clear body, never a 500 or a Python message.
    weak = _event("PATCH /orders/{id}", order_id, {"status": "sent"}, **{"If-Match": 'W/"2"'})
    assert handler(weak, None)["statusCode"] == 200
    for body, if_match in (([1], '"3"'), ({"status": "x"}, '"three"'), ("[", '"3"')):
        raw = _event("PATCH /orders/{id}", order_id, None, **{"If-Match": if_match})
        raw["body"] = body if isinstance(body, str) else json.dumps(body)
        answer = handler(raw, None)
        assert answer["statusCode"] == 400, (body, answer)
        assert "invalid literal" not in answer["body"]
    for bad_id in ("x" * 300, "a\x00b"):
        assert handler(_event("GET /orders/{id}", bad_id), None)["statusCode"] == 400
    typed = _event("PATCH /orders/{id}", order_id, {"total_cents": "many"}, **{"If-Match": '"3"'})
    answer = handler(typed, None)
    assert answer["statusCode"] == 400 and "total_cents" in answer["body"]


def run_fastapi_async() -> None:
    import asyncio

    import httpx

    import eventstore.aio

    example = load("fastapi_async")

    async def main() -> None:
        async with eventstore.aio.open("memory://") as store:
            await store.create_table()
            transport = httpx.ASGITransport(app=example.create_app(store))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                made = await client.post("/orders", json={"customer": "ada", "total_cents": 1200})
                assert made.status_code == 201 and made.headers["etag"] == '"1"', made.text
                order_id = made.json()["id"]
                read = await client.get(f"/orders/{order_id}")
                assert read.json()["order"]["customer"] == "ada"
                body = {"customer": "ada", "total_cents": 1500}
                assert (await client.put(f"/orders/{order_id}", json=body)).status_code == 428
                changed = await client.put(
                    f"/orders/{order_id}", json=body, headers={"If-Match": '"1"'}
                )
                assert changed.status_code == 200 and changed.headers["etag"] == '"2"'
                stale = await client.put(
                    f"/orders/{order_id}", json=body, headers={"If-Match": '"1"'}
                )
                assert stale.status_code == 412
                assert stale.json()["detail"]["current_version"] == 2
                # Concurrent cancels on one event loop: update retries, each sees the latest.
                cancels = await asyncio.gather(
                    *(client.post(f"/orders/{order_id}/cancel") for _ in range(4))
                )
                assert [c.status_code for c in cancels] == [200] * 4
                history = (await client.get(f"/orders/{order_id}/history")).json()
                assert [h["event"] for h in history] == ["created", "replaced"] + ["cancelled"] * 4
                shipped = await client.post(
                    "/orders", json={"customer": "bob", "status": "shipped"}
                )
                refused = await client.post(f"/orders/{shipped.json()['id']}/cancel")
                assert refused.status_code == 409
                assert (await client.get("/orders/nobody")).status_code == 404
                assert (await client.get("/orders/nobody/history")).status_code == 404
                assert (await client.get(f"/orders/{'x' * 300}")).status_code == 400
                old = await client.get(f"/orders/{order_id}", params={"version": 1})
                assert old.json()["order"]["total_cents"] == 1200

    asyncio.run(main())


def run_lambda_async() -> None:
    example = load("lambda_async")
    handler = example.handler

    made = handler(_event("POST /orders", body={"customer": "ada"}), None)
    assert made["statusCode"] == 201, made
    first = json.loads(made["body"])["id"]
    second = json.loads(handler(_event("POST /orders", body={"customer": "bob"}), None)["body"])
    read = handler(_event("GET /orders/{id}", first), None)
    assert read["statusCode"] == 200 and json.loads(read["body"])["customer"] == "ada"
    several = _event("GET /orders")
    several["queryStringParameters"] = {"ids": f"{first},{second['id']},nobody"}
    found = json.loads(handler(several, None)["body"])
    assert [o["customer"] for o in found] == ["ada", "bob"]
    assert handler(_event("GET /orders/{id}", "nobody"), None)["statusCode"] == 404
    assert handler(_event("POST /orders", body={"status": "x"}), None)["statusCode"] == 400
    assert handler(_event("GET /orders/{id}", "x" * 300), None)["statusCode"] == 400
    assert handler(_event("DELETE /orders/{id}", first), None)["statusCode"] == 404


if __name__ == "__main__":
    {
        "fastapi": run_fastapi,
        "lambda": run_lambda,
        "fastapi_async": run_fastapi_async,
        "lambda_async": run_lambda_async,
    }[sys.argv[1]]()
    print("ok")
