"""mypy --strict on a user's file: the store's results are typed by the resource class, with no
ignores (the repository, append_many, the feed, update)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

USER_CODE = """
from typing import assert_type

import eventstore
from eventstore import Append, Resource, Version


class Order(Resource):
    customer: str
    status: str = "new"


store = eventstore.open("memory://")
v1 = store.append(Order(customer="ada"))
assert_type(v1, Version[Order])
assert_type(store.read_version(Order, v1.resource_id).state, Order)
for version in store.read_stream(Order, v1.resource_id):
    assert_type(version.state.customer, str)
paid = store.update(Order, v1.resource_id, lambda o: o.model_copy(update={"status": "paid"}))
assert_type(paid, Version[Order])
assert_type(store.read_many(Order, [v1.resource_id]), dict[str, Version[Order]])
orders = store.repository(Order)
assert_type(orders.get(v1.resource_id).state, Order)
assert_type(orders.find("x"), Version[Order] | None)
assert_type([v.state for v in orders.list(where=lambda o: o.status == "paid")], list[Order])
made = store.append_many([Append(Order(customer="bob"))])
position: int | None = made[0].position
"""


def test_users_code_type_checks_strictly(tmp_path: Path) -> None:
    path = tmp_path / "user.py"
    path.write_text(textwrap.dedent(USER_CODE))
    out, err, status = api.run(
        ["--strict", "--python-version", "3.11", "--no-incremental", str(path)]
    )
    assert status == 0, out + err
