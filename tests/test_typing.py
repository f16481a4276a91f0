"""mypy --strict on a user's file: the store's results are typed by the resource class, with no
ignores (the repository, append_many, the feed, update, queries by projection, replay); and on
the docs' own code, page by page."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.test_docs import FILES, blocks

api = pytest.importorskip("mypy.api")

USER_CODE = """
from typing import assert_type

import eventstore
import projections
from eventstore import Append, Resource, Version


class Order(Resource):
    customer: str
    status: str = "new"


class ByStatus(projections.Projection[Order]):
    index = "gsi1"

    def key(self, order: Order) -> tuple[str, str] | None:
        return (order.status, order.customer)


store = eventstore.open("memory://", projections=[ByStatus()])
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
page = store.query(ByStatus, "paid", where=lambda o: o.customer != "eve")
assert_type(page, eventstore.QueryPage[Order])
assert_type(store.query(ByStatus(), "new").items[0].state.status, str)
for replayed in store.replay(Order):
    assert_type(replayed, Version[Order])
"""


def strict(path: Path) -> None:
    out, err, status = api.run(
        ["--strict", "--python-version", "3.11", "--no-incremental", str(path)]
    )
    assert status == 0, out + err


def test_users_code_type_checks_strictly(tmp_path: Path) -> None:
    path = tmp_path / "user.py"
    path.write_text(textwrap.dedent(USER_CODE))
    strict(path)


# schema.md redefines its classes on purpose: it shows one type's code changing over time.
TYPED_PAGES = [path for path in FILES if path.name != "schema.md" and blocks(path)]


@pytest.mark.parametrize("page", TYPED_PAGES, ids=[p.name for p in TYPED_PAGES])
def test_docs_code_type_checks_strictly(page: Path, tmp_path: Path) -> None:
    # Named apart from the packages it imports (a page called projections.py would shadow them).
    path = tmp_path / f"doc_{page.stem.lower()}.py"
    path.write_text("\n".join(code for _, code in blocks(page)))
    strict(path)
