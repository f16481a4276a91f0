"""The examples of docs/examples/ work as written: the FastAPI service through FastAPI's
TestClient, the Lambda handler by calling it with API Gateway events (on SQLite and on DynamoDB
Local, its store from environment variables); and they type-check under mypy --strict."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DYNAMODB_ENDPOINT, dynamodb_url, new_table_name

ROOT = Path(__file__).resolve().parent.parent
RUNS = Path(__file__).with_name("example_runs.py")


def run(which: str, **env: str) -> None:
    done = subprocess.run(
        [sys.executable, str(RUNS), which],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-4000:]


def test_fastapi_service() -> None:
    pytest.importorskip("fastapi")
    run("fastapi")


def test_fastapi_service_async() -> None:
    pytest.importorskip("fastapi")
    run("fastapi_async")


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb"])
def test_async_lambda_handler(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        run(
            "lambda_async",
            EVENTSTORE_URL=f"sqlite:///{tmp_path / 'orders.db'}",
            EVENTSTORE_CREATE_TABLE="1",
        )
        return
    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    url = dynamodb_url(new_table_name())
    run("lambda_async", EVENTSTORE_URL=url, EVENTSTORE_CREATE_TABLE="1")
    import eventstore

    with eventstore.open(url) as store:
        store.backend.delete_table()  # type: ignore[attr-defined]


def test_lambda_handler_on_sqlite(tmp_path: Path) -> None:
    run(
        "lambda",
        EVENTSTORE_URL=f"sqlite:///{tmp_path / 'orders.db'}",
        EVENTSTORE_CREATE_TABLE="1",
    )


def test_lambda_handler_on_dynamodb() -> None:
    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    url = dynamodb_url(new_table_name())
    run("lambda", EVENTSTORE_URL=url, EVENTSTORE_CREATE_TABLE="1")
    import eventstore

    with eventstore.open(url) as store:
        store.backend.delete_table()  # type: ignore[attr-defined]


def test_examples_type_check_strictly() -> None:
    api = pytest.importorskip("mypy.api")
    out, err, status = api.run(
        [
            "--strict",
            "--no-incremental",
            *map(str, sorted((ROOT / "docs" / "examples").glob("*.py"))),
        ]
    )
    assert status == 0, out + err
