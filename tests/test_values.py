"""Values that leave the process or come from elsewhere: states stored exactly or refused, versions
that pickle and serialise, both ULID packages, and type names claimed twice."""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from eventstore import (
    ANY,
    NO_STREAM,
    ConcurrencyError,
    DuplicateResourceType,
    EventStore,
    InvalidState,
    Resource,
    Version,
)
from eventstore.ids import new_resource_id, new_version_id, parse_version_id
from tests.models import Order

ROOT = Path(__file__).resolve().parent.parent


class Everything(Resource):
    resource_type = "values.Everything"
    moment: datetime | None = None
    day: date | None = None
    amount: Decimal | None = None
    big: int = 0
    text: str = ""
    nested: dict[str, list[int | str | None]] = {}
    anything: Any = None


# Offsets with seconds (historical zones such as Africa/Abidjan before 1912 used -00:16:08).
offsets = st.integers(min_value=-86399, max_value=86399).map(
    lambda s: timezone(timedelta(seconds=s))
)
moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
states = st.builds(
    Everything,
    moment=st.none() | moments,
    day=st.none() | st.dates(),
    amount=st.none() | st.decimals(allow_nan=False, allow_infinity=False),
    big=st.integers() | st.integers(min_value=10**4000, max_value=10**4400),
    text=st.text(),
    nested=st.dictionaries(st.text(), st.lists(st.none() | st.integers() | st.text(), max_size=4)),
    anything=st.recursive(
        json_leaves | st.tuples(json_leaves),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    ),
)


@given(state=states)
def test_states_are_stored_exactly_or_refused(state: Everything) -> None:
    store = _memory()
    try:
        written = store.append(state)
    except InvalidState:
        # Refused before writing: nothing is there.
        event("refused")
        assert list(store.heads(Everything)) == []
        return
    event("stored")
    read = store.read_version(Everything, written.resource_id)
    assert read.state == state
    assert read.state.model_dump_json() == state.model_dump_json()
    if state.moment is not None:
        assert read.state.moment is not None
        assert read.state.moment.utcoffset() == state.moment.utcoffset()


minute_offsets = st.integers(min_value=-1439, max_value=1439).map(
    lambda m: timezone(timedelta(minutes=m))
)
plain = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
storable = st.builds(
    Everything,
    moment=st.none() | st.datetimes(timezones=minute_offsets),
    day=st.none() | st.dates(),
    amount=st.none() | st.decimals(allow_nan=False, allow_infinity=False),
    big=st.integers(min_value=-(10**4000), max_value=10**4000),
    text=st.text(),
    anything=plain,
)


@given(state=storable)
def test_json_faithful_states_are_stored_exactly(state: Everything) -> None:
    """What JSON carries exactly is never refused: the refusals above are only for values it
    cannot carry."""
    store = _memory()
    written = store.append(state)
    assert store.read_version(Everything, written.resource_id).state == state


def _memory() -> EventStore:
    import eventstore

    return eventstore.open("memory://")


def test_sub_minute_offsets_and_huge_ints_are_refused_not_altered() -> None:
    store = _memory()
    abidjan = timezone(timedelta(minutes=-16, seconds=-8))
    with pytest.raises(InvalidState, match="moment"):
        store.append(Everything(moment=datetime(1900, 1, 1, tzinfo=abidjan)))
    with pytest.raises(InvalidState):
        store.append(Everything(big=10**5000, text="NaN"))
    with pytest.raises(InvalidState):
        store.append(Everything(anything=(1, 2)))  # a tuple reads back as a list
    assert list(store.heads(Everything)) == []
    kept = store.append(
        Everything(moment=datetime(1900, 1, 1, tzinfo=timezone(timedelta(hours=1))))
    )
    assert store.read_version(Everything, kept.resource_id).state == kept.state


def test_version_leaves_the_process() -> None:
    store = _memory()
    v = store.append(Order(customer="ada"), metadata={"actor": "u-7", "tags": ["a"]})
    assert json.loads(json.dumps(v.metadata)) == {"actor": "u-7", "tags": ["a"]}
    for copied in (pickle.loads(pickle.dumps(v)), copy.deepcopy(v), copy.copy(v)):
        assert copied == v
        assert copied.metadata == v.metadata
    adapter = pydantic.TypeAdapter(Version[Order])
    dumped = adapter.dump_json(v)
    assert adapter.validate_json(dumped) == v
    assert json.loads(dumped)["state"]["customer"] == "ada"
    read = store.read_version(Order, v.resource_id)
    assert pickle.loads(pickle.dumps(read)) == read
    with pytest.raises(TypeError):
        v.metadata["actor"] = "someone else"  # type: ignore[index]
    with pytest.raises(TypeError):
        v.metadata.update(actor="x")  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        v.version = 7  # type: ignore[misc]


def test_sentinels_print_as_their_names() -> None:
    store = _memory()
    v = store.append(Order(customer="ada"), resource_id="o-1")
    with pytest.raises(ConcurrencyError) as info:
        store.append(Order(customer="ada"), resource_id="o-1")
    message = str(info.value)
    assert "expected version NO_STREAM" in message and "Expect." not in message
    assert f"expected_version={v.version}" in message and "ANY" in message
    assert repr(ANY) == "ANY" and str(NO_STREAM) == "NO_STREAM"


def test_a_different_class_cannot_take_a_type_name() -> None:
    class Ledger(Resource):
        resource_type = "values.Ledger"
        balance: int = 0

    with pytest.raises(DuplicateResourceType) as info:

        class Other(Resource):
            resource_type = "values.Ledger"
            name: str = ""

    assert "Ledger" in str(info.value) and "Other" in str(info.value)
    assert isinstance(info.value, TypeError)

    # The same class defined again (a notebook cell run twice) replaces the first.
    def define() -> type[Resource]:
        class Again(Resource):
            resource_type = "values.Again"
            x: int = 0

        return Again

    first, second = define(), define()
    store = _memory()
    written = store.append(first(x=1))  # type: ignore[call-arg]
    assert store.read_version(second, written.resource_id).state.x == 1  # type: ignore[attr-defined]


def test_ids_match_the_reference_ulid_implementation() -> None:
    ulid = pytest.importorskip("ulid")
    if not hasattr(ulid, "from_str"):
        pytest.skip("the installed ulid module is not ulid-py")
    for _ in range(200):
        rid = new_resource_id()
        assert ulid.from_str(rid).str == rid
        vid = new_version_id(12345)
        parsed = ulid.from_str(vid)
        assert parse_version_id(vid) == ((parsed.int >> 48) & 0xFFFFFFFF, parsed.int >> 80)


SMOKE = """
import ulid, eventstore
assert hasattr(ulid, "ULID") and not hasattr(ulid, "new"), "python-ulid should own the module"
from eventstore import Resource
class Thing(Resource):
    n: int
store = eventstore.open("memory://")
v = store.append(Thing(n=1))
w = store.append(Thing(n=2), resource_id=v.resource_id, expected_version=1)
assert store.read_version(Thing, v.resource_id, w.version_id).state.n == 2
assert str(ulid.ULID.from_str(v.resource_id)) == v.resource_id
print("ok")
"""


def test_store_works_when_python_ulid_owns_the_module() -> None:
    """``scripts/test`` installs python-ulid into its own folder; it shadows ulid-py here."""
    target = os.environ.get("EVENTSTORE_PYTHON_ULID")
    if not target:
        pytest.skip("EVENTSTORE_PYTHON_ULID not set (scripts/test installs python-ulid there)")
    done = subprocess.run(
        [sys.executable, "-c", SMOKE],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([target, str(ROOT)])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_model_with_field_aliases_is_stored_by_alias() -> None:
    """Issue 24, item 13: a model with ``Field(alias=...)`` (without ``populate_by_name``) is
    stored as its aliases and reads back exactly, on an append and through a delete."""
    from pydantic import Field

    import eventstore
    from eventstore import Resource

    class Aliased(Resource):
        resource_type = "values.Aliased"
        customer_name: str = Field(alias="customerName")
        total: int = Field(default=0, alias="totalCents")

    store = eventstore.open("memory://")
    store.create_table()
    made = store.append(Aliased(customerName="ada", totalCents=5), resource_id="a")
    assert store.read_version(Aliased, "a").state == made.state
    assert made.state.customer_name == "ada" and made.state.total == 5
    gone = store.delete(Aliased, "a")
    assert gone.state == made.state
