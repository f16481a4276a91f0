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


def strict(*paths: Path) -> tuple[int, str]:
    out, err, status = api.run(
        ["--strict", "--python-version", "3.11", "--no-incremental", *map(str, paths)]
    )
    return status, out + err


# schema.md redefines its classes on purpose: it shows one type's code changing over time.
TYPED_PAGES = [path for path in FILES if path.name != "schema.md" and blocks(path)]


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, dict[str, Path]]:
    """One mypy run over the user's file and every page's code (each a module of its own):
    the packages they import are checked once, not once per page (about 5 s each)."""
    folder = tmp_path_factory.mktemp("typed")
    files = {"user": folder / "user.py"}
    files["user"].write_text(textwrap.dedent(USER_CODE))
    for page in TYPED_PAGES:
        # Named apart from the packages it imports (a page called projections.py would shadow them).
        path = files[page.name] = folder / f"doc_{page.stem.lower()}.py"
        path.write_text("\n".join(code for _, code in blocks(page)))
    status, output = strict(*files.values())
    return status, output, files


def _errors_in(checked: tuple[int, str, dict[str, Path]], name: str) -> list[str]:
    """mypy's errors in one file of the run; all of its output if it failed naming no file."""
    status, output, files = checked
    lines = output.splitlines()
    named = [line for line in lines if any(line.startswith(f"{p}:") for p in files.values())]
    if status != 0 and not named:
        return [output]
    return [line for line in named if line.startswith(f"{files[name]}:")]


def test_users_code_type_checks_strictly(checked: tuple[int, str, dict[str, Path]]) -> None:
    assert _errors_in(checked, "user") == []


@pytest.mark.parametrize("page", TYPED_PAGES, ids=[p.name for p in TYPED_PAGES])
def test_docs_code_type_checks_strictly(
    page: Path, checked: tuple[int, str, dict[str, Path]]
) -> None:
    assert _errors_in(checked, page.name) == []
