"""Hostile and bad input: every one gets a typed error from the eventstore tree and leaves the store
exactly as it was (a full dump of the table, every scan segment, compared before and after).

Runs on memory, SQLite and (with fewer hypothesis examples) DynamoDB Local through the conftest
``store`` fixture. Decisions recorded here, and in docs/reliability.md:

- Integers in states and in metadata round-trip exactly, far beyond DynamoDB's 38 digits (states
  and metadata are stored as JSON text, not as DynamoDB numbers), up to 4300 decimal digits
  (Python's int/str conversion limit); longer ones are refused (InvalidState / InvalidInput).
- Finite floats round-trip exactly (``-0.0`` included); NaN and infinities are refused.
- Reading a stream under another class that claims the same type name is CorruptRecord; under
  another type name, the stream is simply not there (StreamNotFound): keys never alias.

Run: ``.venv/bin/python scripts/dynamodb_local.py run -- .venv/bin/pytest
tests/test_hostile_input.py -q -s``; ``HYPOTHESIS_PROFILE=long`` for many more examples.
"""

from __future__ import annotations

import json
import math
import sqlite3
import string
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import (
    NO_STREAM,
    ConcurrencyError,
    CorruptRecord,
    EventStore,
    EventStoreError,
    InvalidInput,
    InvalidKey,
    InvalidState,
    ItemTooLarge,
    NoBlobStore,
    Resource,
    SchemaMismatch,
    StreamNotFound,
    VersionNotFound,
    WrongType,
    codec,
)
from eventstore.backends.base import Item, Put
from eventstore.keys import MAX_ID_LENGTH, keyframe_sk, stream_pk, version_sk
from projections import InvalidCursor, Projection
from tests.faults import report
from tests.models import Blob, Note, Order

TRIED: Counter[str] = Counter()  # bad inputs tried, by backend
ERRORS: Counter[str] = Counter()  # typed errors seen, by class


class Measure(Resource):
    resource_type = "RelMeasure"
    value: float
    count: int = 0
    tags: dict[str, Any] = {}


class Shape(Resource):
    resource_type = "RelShape"
    sides: int


class ShapeRenamed(Resource):
    """Claims another class's type name with an incompatible schema (a botched rename)."""

    resource_type = "RelShape2"
    name: str


class ByCustomer(Projection[Order]):
    name = "by_customer"
    index = "gsi1"

    def key(self, state: Order) -> tuple[str, str] | None:
        return (state.customer, state.status)


# -- helpers -----------------------------------------------------------------------------------


def dump(store: EventStore) -> list[Item]:
    """Every item of the table, over several scan segments, sorted by key."""
    items: list[Item] = []
    for segment in range(3):
        start: Item | None = None
        while True:
            page = store.backend.scan(segment=segment, segments=3, start=start)
            items += page.items
            if page.last_key is None:
                break
            start = page.last_key
    return sorted(items, key=lambda i: (str(i["pk"]), str(i["sk"])))


def examples(store: EventStore, n: int) -> int:
    """Hypothesis examples per test: fewer on DynamoDB Local (it is slow), scaled by profile."""
    base = settings().max_examples
    count = max(5, n * base // 60)
    return max(5, count // 6) if type(store.backend).__name__ == "DynamoDBBackend" else count


def given_settings(store: EventStore, n: int) -> Any:
    return settings(
        max_examples=examples(store, n),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )


class Refusals:
    """Checks that each bad call raises one of the expected typed errors and changes nothing."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.before = dump(store)

    def __call__(self, call: Callable[[], Any], *errors: type[Exception]) -> EventStoreError:
        TRIED[type(self.store.backend).__name__] += 1
        with pytest.raises(EventStoreError) as raised:
            result = call()
            if isinstance(result, Iterator):
                list(result)
        error = raised.value
        ERRORS[type(error).__name__] += 1
        assert isinstance(error, errors or (EventStoreError,)), (type(error), error)
        return error

    def unchanged(self) -> None:
        assert dump(self.store) == self.before


@pytest.fixture
def seeded(store: EventStore) -> Iterator[tuple[EventStore, dict[str, str]]]:
    """The store with a few streams in it: ids by name."""
    ids: dict[str, str] = {}
    first = store.append(Order(customer="ada", lines=["a"]), resource_id="o#1")
    store.append(Order(customer="ada", status="paid"), resource_id="o#1", expected_version=1)
    ids["order"] = first.resource_id
    note = store.append(Note(text="0"))
    for n in range(1, 8):
        store.append(Note(text=str(n)), resource_id=note.resource_id, expected_version=n)
    ids["note"] = note.resource_id
    ids["shape"] = store.append(Shape(sides=3)).resource_id
    ids["measure"] = store.append(Measure(value=1.5)).resource_id
    yield store, ids


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    yield
    if TRIED:
        report(
            "hostile_input",
            {
                "bad_inputs_tried": sum(TRIED.values()),
                "by_backend": dict(TRIED),
                "typed_errors": dict(sorted(ERRORS.items())),
            },
        )


# -- keys ----------------------------------------------------------------------------------------

BAD_IDS: list[Any] = [
    "",
    "x" * (MAX_ID_LENGTH + 1),
    "\x00",
    "a\nb",
    "tab\there",
    "\x7f",
    "\u0085",
    "\ud800",
    "ok\udfffok",
    None,
    7,
    b"bytes",
    ["list"],
    {"d": 1},
    3.5,
    True,
]


def test_bad_resource_ids_are_invalid_key(
    seeded: tuple[EventStore, dict[str, str]],
) -> None:
    store, _ = seeded
    refuse = Refusals(store)
    for bad in BAD_IDS:
        if bad is not None:  # resource_id=None asks for a new id: not an error
            refuse(lambda b=bad: store.append(Order(customer="x"), resource_id=b), InvalidKey)
        refuse(lambda b=bad: store.read_version(Order, b), InvalidKey)
        refuse(lambda b=bad: store.read_version(Order, b, 1), InvalidKey)
        refuse(lambda b=bad: store.read_stream(Order, b), InvalidKey)
    refuse.unchanged()


def test_generated_bad_ids(seeded: tuple[EventStore, dict[str, str]]) -> None:
    store, _ = seeded
    refuse = Refusals(store)
    control = st.characters(categories=["Cc", "Cs"])
    bad_ids = st.one_of(
        st.tuples(st.text(max_size=20), control, st.text(max_size=20)).map("".join),
        st.text(min_size=MAX_ID_LENGTH + 1, max_size=MAX_ID_LENGTH + 50),
        st.integers() | st.binary() | st.floats() | st.lists(st.text(), max_size=2),
    )

    @given_settings(store, 60)
    @given(bad_ids)
    def run(bad: Any) -> None:
        refuse(lambda: store.append(Order(customer="x"), resource_id=bad), InvalidKey)
        refuse(lambda: store.read_version(Order, bad), InvalidKey)

    run()
    refuse.unchanged()


def test_any_valid_id_round_trips_without_aliasing(
    seeded: tuple[EventStore, dict[str, str]],
) -> None:
    """Ids made of delimiters and key-looking text stay in their own partition."""
    store, ids = seeded
    tricky = st.sampled_from(
        ["#", "h", "v#0000000001#v", "v#", "Order#", "_secret", "#k", "~", " "]
    )
    usable = st.characters(exclude_categories=["Cc", "Cs"])
    ids_strategy = st.one_of(
        st.lists(tricky | st.text(alphabet=usable, max_size=3), min_size=1, max_size=6).map(
            "".join
        ),
        st.text(
            alphabet=usable,
            min_size=MAX_ID_LENGTH - 2,
            max_size=MAX_ID_LENGTH,
        ),
    ).filter(lambda s: 0 < len(s) <= MAX_ID_LENGTH and s not in ids.values())
    before = dump(store)

    @given_settings(store, 60)
    @given(ids_strategy)
    def run(rid: str) -> None:
        try:
            version = store.read_version(Order, rid)
            expected: int | Any = version.version
        except StreamNotFound:
            expected = NO_STREAM
        written = store.append(Order(customer=rid), resource_id=rid, expected_version=expected)
        assert written.resource_id == rid
        got = store.read_version(Order, rid)
        assert (got.state.customer, got.version_id) == (rid, written.version_id)
        assert [v.version for v in store.read_stream(Order, rid)][-1] == written.version

    run()
    # Only the new streams' partitions changed (and the feed's counter): every item written is in
    # an "Order#<id>" partition whose id is the state's customer, or the feed's, and every item
    # from before is still there, unchanged.
    after = dump(store)
    old = {(str(i["pk"]), str(i["sk"])): i for i in before}
    for item in after:
        key = (str(item["pk"]), str(item["sk"]))
        if key in old:
            assert item == old.pop(key) or key[0].startswith(("Order#", "_feed#"))
    assert old == {}


def test_bad_type_names_are_refused_at_class_definition() -> None:
    for bad in ["", "1abc", "a#b", "a b", "x" * 65, "é", "a\x00", "_lib", "-x", 5, None, b"T"]:
        TRIED["definition"] += 1
        with pytest.raises(InvalidKey):
            type("Bad", (Resource,), {"resource_type": bad, "__annotations__": {}})
        ERRORS["InvalidKey"] += 1


def test_wrong_python_types(seeded: tuple[EventStore, dict[str, str]]) -> None:
    store, ids = seeded
    refuse = Refusals(store)
    for bad_state in [{"customer": "x"}, "Order", None, Order, 5]:
        refuse(lambda s=bad_state: store.append(s), WrongType)
    for bad_class in ["Order", "RelShape", None, int, dict, Resource, Order(customer="x")]:
        refuse(lambda c=bad_class: store.read_version(c, ids["order"]), WrongType)
        refuse(lambda c=bad_class: store.read_stream(c, ids["order"]), WrongType)
    refuse.unchanged()


# -- states --------------------------------------------------------------------------------------


def test_states_pydantic_rejects(seeded: tuple[EventStore, dict[str, str]]) -> None:
    store, ids = seeded
    refuse = Refusals(store)
    constructed = [
        Order.model_construct(customer=5),
        Order.model_construct(status="x"),  # required field missing
        Order.model_construct(customer="x", total_cents="lots"),
        Order.model_construct(customer="x", lines="not a list"),
        Measure.model_construct(value="NaN"),
        Shape.model_construct(sides=object()),
    ]
    assigned = Order(customer="x")
    assigned.total_cents = 1.5  # type: ignore[assignment]
    constructed.append(assigned)
    for value in (math.nan, math.inf, -math.inf):
        m = Measure(value=1.0)
        m.value = value
        constructed.append(m)
        constructed.append(Measure.model_construct(value=value))
    for bad in constructed:
        rid, expected = (ids["order"], 2) if isinstance(bad, Order) else (None, NO_STREAM)
        with warnings.catch_warnings():
            # pydantic warns when it serialises a value of the wrong type; the store refuses it.
            warnings.simplefilter("ignore", UserWarning)
            refuse(
                lambda b=bad, r=rid, e=expected: store.append(b, resource_id=r, expected_version=e),
                InvalidState,
            )
    refuse.unchanged()


def test_non_finite_floats_inside_any_fields_are_refused(
    seeded: tuple[EventStore, dict[str, str]],
) -> None:
    """``Resource`` promises NaN and infinities are refused. In a field typed ``Any`` (here
    ``dict[str, Any]``) they must not be stored as the strings "NaN"/"Infinity" either."""
    store, _ = seeded
    refuse = Refusals(store)
    for value in (math.nan, math.inf, -math.inf):
        refuse(lambda v=value: store.append(Measure(value=0.0, tags={"v": v})), InvalidState)
        refuse(lambda v=value: store.append(Measure(value=0.0, tags={"l": [v]})), InvalidState)
    refuse.unchanged()


def test_floats_round_trip_exactly_and_non_finite_are_refused(
    seeded: tuple[EventStore, dict[str, str]],
) -> None:
    store, _ = seeded

    @given_settings(store, 60)
    @given(st.floats(allow_nan=True, allow_infinity=True))
    def run(value: float) -> None:
        if math.isfinite(value):
            written = store.append(Measure(value=value, tags={"v": value}))
            got = store.read_version(Measure, written.resource_id)
            assert got.state.value == value and got.state.tags["v"] == value
            assert math.copysign(1, got.state.value) == math.copysign(1, value)
            meta = store.append(Measure(value=0.0), metadata={"v": value})
            assert store.read_version(Measure, meta.resource_id).metadata["v"] == value
            return
        refuse = Refusals(store)
        m = Measure(value=0.0)
        m.value = value
        refuse(lambda: store.append(m), InvalidState)
        refuse(lambda: store.append(Measure(value=0.0), metadata={"v": value}), InvalidInput)
        refuse(
            lambda: store.append(Measure(value=0.0), metadata={"deep": [{"v": value}]}),
            InvalidInput,
        )
        refuse.unchanged()

    run()


def test_big_integers_round_trip_exactly(seeded: tuple[EventStore, dict[str, str]]) -> None:
    """Decision: ints in states and metadata are JSON text, so they round-trip exactly far past
    DynamoDB's 38-digit numbers; up to 4300 digits (Python's int/str limit), refused beyond."""
    store, _ = seeded
    limit = 10**4300

    @given_settings(store, 40)
    @given(
        st.one_of(
            st.integers(min_value=-(10**60), max_value=10**60),
            st.integers(min_value=10**37, max_value=10**40),
            st.integers(min_value=-(limit - 1), max_value=limit - 1),
        )
    )
    def run(n: int) -> None:
        written = store.append(Measure(value=0.0, count=n, tags={"n": n}), metadata={"n": n})
        got = store.read_version(Measure, written.resource_id)
        assert got.state.count == n and got.state.tags["n"] == n
        assert got.metadata["n"] == n and type(got.metadata["n"]) is int

    run()
    refuse = Refusals(store)
    for n in (limit, -limit, 10**5000):
        refuse(lambda n=n: store.append(Measure(value=0.0, count=n)), InvalidState)
        refuse(lambda n=n: store.append(Measure(value=0.0), metadata={"n": n}), InvalidInput)
    refuse.unchanged()


def test_item_too_large_writes_nothing(seeded: tuple[EventStore, dict[str, str]]) -> None:
    store, _ = seeded
    refuse = Refusals(store)
    import os

    if store.backend.max_item_bytes is None:
        # Embedded backends have no item limit; states are bounded by max_state_bytes.
        refuse(lambda: store.append(Blob(data=b"x" * (65 * 1024 * 1024))), InvalidState)
    else:
        refuse(lambda: store.append(Blob(data=os.urandom(500_000))), ItemTooLarge, InvalidState)
        refuse(
            lambda: store.append(Order(customer="x"), metadata={"m": "x" * 500_000}), ItemTooLarge
        )
    refuse.unchanged()


# -- metadata, events, versions ------------------------------------------------------------------


class _Opaque:
    pass


def test_metadata_that_is_not_json(seeded: tuple[EventStore, dict[str, str]]) -> None:
    store, ids = seeded
    refuse = Refusals(store)
    circular: dict[str, Any] = {}
    circular["self"] = circular
    not_json: list[Any] = [
        {"o": _Opaque()},
        {"b": b"bytes"},
        {"s": {1, 2}},
        {"c": 1 + 2j},
        {"self": circular},
        {"nan": math.nan},
        {"inf": [math.inf]},
        {"surrogate": "\ud800"},
        {"\udfff": "key surrogate"},
        {"deep": {"o": object()}},
    ]
    for bad in not_json:
        refuse(lambda m=bad: store.append(Order(customer="x"), metadata=m), InvalidInput, WrongType)
        refuse(
            lambda m=bad: store.append(
                Order(customer="x"), resource_id=ids["order"], expected_version=2, metadata=m
            ),
            InvalidInput,
            WrongType,
        )
    for bad in ([("a", 1)], "json", 5, {1: "int key"}, {None: 1}, {("t",): 1}):
        refuse(lambda m=bad: store.append(Order(customer="x"), metadata=m), WrongType)
    for event in ("", "e" * 257, 5, b"ev", ["e"]):
        refuse(lambda e=event: store.append(Order(customer="x"), event=e), InvalidInput, WrongType)
    refuse.unchanged()


def test_deeply_nested_metadata_is_invalid_input(
    seeded: tuple[EventStore, dict[str, str]],
) -> None:
    """Metadata nested deeper than JSON encoding can recurse is refused with a typed error (a
    state nested that deep already is: InvalidState)."""
    store, _ = seeded
    deep: list[Any] = []
    inner = deep
    for _ in range(100_000):
        inner.append([])
        inner = inner[0]
    refuse = Refusals(store)
    refuse(lambda: store.append(Measure(value=0.0, tags={"d": deep})), InvalidState)
    refuse(lambda: store.append(Order(customer="x"), metadata={"d": deep}), InvalidInput)
    refuse.unchanged()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(exclude_categories=["Cs"])), inner, max_size=4
        )
    ),
    max_leaves=12,
)


def test_json_metadata_round_trips(seeded: tuple[EventStore, dict[str, str]]) -> None:
    store, _ = seeded

    @given_settings(store, 60)
    @given(st.dictionaries(st.text(alphabet=st.characters(exclude_categories=["Cs"])), json_values))
    def run(meta: dict[str, Any]) -> None:
        written = store.append(Order(customer="m"), metadata=meta)
        assert dict(store.read_version(Order, written.resource_id).metadata) == meta

    run()


def test_bad_expected_versions_and_version_numbers(
    seeded: tuple[EventStore, dict[str, str]],
) -> None:
    store, ids = seeded
    rid = ids["order"]  # at version 2
    refuse = Refusals(store)
    for bad in (0, -1, -(10**30), True, False, 1.0, "1", None, "NO_STREAM", [2]):
        refuse(
            lambda b=bad: store.append(Order(customer="x"), resource_id=rid, expected_version=b),
            InvalidInput,
        )
    for far in (10**40, 2**32 - 1, 2**32):
        refuse(
            lambda f=far: store.append(Order(customer="x"), resource_id=rid, expected_version=f),
            InvalidInput,
            ConcurrencyError,
        )
    for stale in (1, 3, 99):
        error = refuse(
            lambda s=stale: store.append(Order(customer="x"), resource_id=rid, expected_version=s),
            ConcurrencyError,
        )
        assert isinstance(error, ConcurrencyError)
        assert (error.expected, error.actual) == (stale, 2)
    error = refuse(lambda: store.append(Order(customer="x"), resource_id=rid), ConcurrencyError)
    assert isinstance(error, ConcurrencyError) and error.actual == 2
    for bad in (0, -1, 2**32, 10**30, True, 1.5, None if False else b"1", [1]):
        refuse(lambda b=bad: store.read_version(Order, rid, b), InvalidInput)
    for bad in ("", "not-a-version-id", "0" * 26, "Z" * 26, "\x00" * 26):
        refuse(lambda b=bad: store.read_version(Order, rid, b), InvalidInput, VersionNotFound)
    other = store.read_version(Note, ids["note"]).version_id
    refuse(lambda: store.read_version(Order, rid, other), VersionNotFound)
    refuse(lambda: store.read_version(Order, rid, 3), VersionNotFound)
    trimmed = refuse(lambda: store.read_version(Note, ids["note"], 1), VersionNotFound)
    assert isinstance(trimmed, VersionNotFound) and trimmed.remaining == (4, 8)
    for start, stop in ((0, None), (-1, None), (None, 0), ("1", None), (True, None), (1.0, 2)):
        refuse(lambda a=start, b=stop: store.read_stream(Order, rid, start=a, stop=b), InvalidInput)
    refuse.unchanged()


def test_reading_under_the_wrong_type(seeded: tuple[EventStore, dict[str, str]]) -> None:
    store, ids = seeded
    refuse = Refusals(store)
    # Another type name: another partition, so the stream is not there (no aliasing).
    refuse(lambda: store.read_version(Note, ids["order"]), StreamNotFound)
    refuse(lambda: store.read_version(Shape, ids["order"], 1), StreamNotFound)
    refuse(lambda: store.read_stream(Measure, ids["shape"]), StreamNotFound)
    # The same type name on an incompatible class: the stored state does not validate. The
    # data is intact, the code moved: SchemaMismatch, not CorruptRecord.
    ShapeRenamed.resource_type = "RelShape"
    try:
        refuse(lambda: store.read_version(ShapeRenamed, ids["shape"]), SchemaMismatch)
        refuse(lambda: store.read_version(ShapeRenamed, ids["shape"], 1), SchemaMismatch)
        refuse(lambda: store.read_stream(ShapeRenamed, ids["shape"]), SchemaMismatch)
    finally:
        ShapeRenamed.resource_type = "RelShape2"
    refuse.unchanged()


# -- stored bytes --------------------------------------------------------------------------------


def _version_item(store: EventStore, type_name: str, rid: str, number: int) -> Item:
    item = store.backend.get([(stream_pk(type_name, rid), version_sk(number))])[0]
    assert item is not None
    return item


def _bomb(size: int) -> bytes:
    return zstandard.ZstdCompressor(level=19).compress(b"\0" * size)


def corruptions(item: Item) -> list[tuple[str, Item]]:
    """Damaged copies of a stored version item."""
    blob = item["s"]
    assert isinstance(blob, bytes)
    big = _bomb(256 * 1024 * 1024)  # 256 MB of zeros in a few kB
    changed: list[tuple[str, dict[str, Any]]] = [
        ("empty state", {"s": b""}),
        ("unknown codec", {"s": b"\x09" + blob[1:]}),
        ("raw garbage", {"s": b"\x00\xff\xfe{"}),
        ("raw not an Order", {"s": b'\x00{"sides": 3}'}),
        ("truncated zstd", {"s": b"\x01" + zstandard.compress(b'{"customer":"x"}' * 50)[:-7]}),
        ("garbage zstd", {"s": b"\x01" + bytes(range(256))}),
        ("zstd bomb", {"s": b"\x01" + big}),
        ("two zstd frames", {"s": b"\x01" + _bomb(10) + _bomb(10)}),
        ("delta without keyframe number", {"s": b"\x02" + blob[1:], "b": None}),
        ("delta on a missing keyframe", {"s": b"\x03", "b": 999_999}),
        ("delta bomb", {"s": b"\x02" + big, "b": 1}),
        ("state is text", {"s": "text"}),
        ("state is a number", {"s": 5}),
        ("no state", {"s": None}),
        ("no version id", {"id": None}),
        ("version id garbage", {"id": "garbage"}),
        ("version id a number", {"id": 12}),
        ("metadata not JSON", {"m": "{not json"}),
        ("metadata too deep", {"m": "[" * 100_000 + "]" * 100_000}),
        ("metadata bytes", {"m": b"\x00"}),
    ]
    out = []
    for what, change in changed:
        damaged = dict(item)
        for name, value in change.items():
            if value is None:
                damaged.pop(name, None)
            else:
                damaged[name] = value
        out.append((what, damaged))
    return out


def test_corrupted_stored_items_are_corrupt_record(
    seeded: tuple[EventStore, dict[str, str]],
) -> None:
    store, ids = seeded
    rid = ids["order"]
    original = _version_item(store, "Order", rid, 2)
    failures: list[str] = []
    for what, damaged in corruptions(original):
        store.backend.write([Put(damaged)])
        refuse = Refusals(store)
        for name, call in (
            ("read_version", lambda: store.read_version(Order, rid, 2)),
            ("read_latest", lambda: store.read_version(Order, rid)),
            ("read_stream", lambda: list(store.read_stream(Order, rid))),
            ("read_stream reverse", lambda: list(store.read_stream(Order, rid, reverse=True))),
            ("replay", lambda: list(store.replay(Order))),
        ):
            TRIED[type(store.backend).__name__] += 1
            try:
                call()
                failures.append(f"{what}: {name} read it without an error")
            except (CorruptRecord, SchemaMismatch) as e:
                # Intact JSON of the wrong shape is a SchemaMismatch (the code moved); damaged
                # bytes are CorruptRecord.
                expected = SchemaMismatch if what == "raw not an Order" else CorruptRecord
                if not isinstance(e, expected):
                    failures.append(f"{what}: {name} raised {type(e).__name__}")
                ERRORS[type(e).__name__] += 1
                assert (e.resource_type, e.resource_id, e.version) == ("Order", rid, 2), what
            except Exception as e:  # reported all at once below
                failures.append(f"{what}: {name} raised {type(e).__module__}.{type(e).__name__}")
        refuse.unchanged()
    store.backend.write([Put(original)])
    assert store.read_version(Order, rid, 2).state.status == "paid"
    assert failures == [], "\n".join(failures)


def test_corrupted_keyframe_is_corrupt_record(
    seeded: tuple[EventStore, dict[str, str]],
) -> None:
    store, ids = seeded
    rid = ids["order"]
    key = (stream_pk("Order", rid), keyframe_sk(1))
    keyframe = store.backend.get([key])[0]
    assert keyframe is not None
    refuse = Refusals(store)
    for blob in (b"", b"\x09", b"\x01" + _bomb(256 * 1024 * 1024), b"\x02abc"):
        store.backend.write([Put({**keyframe, "s": blob})])
        refuse = Refusals(store)
        # Version 2 is stored as a delta against keyframe 1 (or raw, if that was smaller).
        for call in (
            lambda: store.read_version(Order, rid, 1),
            lambda: list(store.read_stream(Order, rid)),
        ):
            refuse(call, CorruptRecord)
        refuse.unchanged()
    store.backend.write([Put(keyframe)])


def test_generated_corrupt_state_bytes(seeded: tuple[EventStore, dict[str, str]]) -> None:
    store, ids = seeded
    rid = ids["order"]
    original = _version_item(store, "Order", rid, 2)
    refuse = Refusals(store)

    @given_settings(store, 100)
    @given(
        st.one_of(
            st.binary(max_size=200),
            st.builds(lambda b: b"\x01" + b, st.binary(max_size=200)),
            st.builds(lambda b: b"\x02" + b, st.binary(max_size=200)),
            st.builds(lambda b: b"\x00" + b, st.binary(max_size=200)),
            # The first bytes of the pipeline's layers: a pointer, sealed bytes, a shredded
            # stand-in (which no stored item may pass for).
            st.builds(lambda b: b"\x40" + b, st.binary(max_size=200)),
            st.builds(lambda b: b"\x40\x01" + b, st.binary(min_size=41, max_size=200)),
            st.builds(lambda b: b"\x45" + b, st.binary(max_size=200)),
            st.builds(lambda b: b"\x53" + b, st.text(max_size=20).map(str.encode)),
        )
    )
    def run(blob: bytes) -> None:
        store.backend.write([Put({**original, "s": blob})])
        TRIED[type(store.backend).__name__] += 1
        try:
            version = store.read_version(Order, rid, 2)
        except CorruptRecord:
            ERRORS["CorruptRecord"] += 1
            return
        except NoBlobStore:
            # Well-formed as a pointer: this store has no blob store to follow it to.
            assert blob[:2] == b"\x40\x01" and len(blob) > 42
            ERRORS["NoBlobStore"] += 1
            return
        except SchemaMismatch:
            # JSON that decodes but is not an Order (e.g. b"\x005"): intact data, wrong model.
            json.loads(codec.decode(blob))
            ERRORS["SchemaMismatch"] += 1
            return
        assert isinstance(version.state, Order)  # the bytes happened to be a valid Order

    try:
        run()
    finally:
        store.backend.write([Put(original)])
    refuse.unchanged()


def test_corrupted_sqlite_rows_are_typed_errors(tmp_path: Any) -> None:
    """Damage below the backend contract: the SQLite row body itself is not a valid item."""
    import eventstore

    path = tmp_path / "corrupt.db"
    store = eventstore.open(f"sqlite:///{path}")
    rid = store.append(Order(customer="x")).resource_id
    store.append(Order(customer="y"), resource_id=rid, expected_version=1)
    pk = stream_pk("Order", rid)
    failures: Counter[str] = Counter()

    @settings(max_examples=examples(store, 100), deadline=None, database=None)
    @given(st.binary(max_size=60), st.sampled_from(["h", version_sk(2), keyframe_sk(1)]))
    def run(body: bytes, sk: str) -> None:
        connection = sqlite3.connect(path)
        with connection:
            connection.execute("UPDATE items SET body = ? WHERE pk = ? AND sk = ?", (body, pk, sk))
        connection.close()
        for call in (
            lambda: store.read_version(Order, rid, 2),
            lambda: store.read_version(Order, rid),
            lambda: list(store.read_stream(Order, rid)),
            lambda: store.append(Order(customer="z"), resource_id=rid, expected_version=2),
        ):
            TRIED["sqlite-rows"] += 1
            try:
                call()
            except EventStoreError as e:
                ERRORS[type(e).__name__] += 1
            except Exception as e:
                failures[f"{type(e).__module__}.{type(e).__name__}"] += 1

    run()
    store.close()
    assert dict(failures) == {}, "raw exceptions leaked from damaged SQLite rows"


# -- cursors and checkpoints ---------------------------------------------------------------------


def test_forged_and_truncated_cursors(seeded: tuple[EventStore, dict[str, str]]) -> None:
    base, _ = seeded
    store = EventStore(base.backend, projections=[ByCustomer()])
    for i in range(4):
        store.append(Order(customer="cur", status=f"s{i}"))
    page = store.query(ByCustomer, "cur", limit=2)
    cursor = page.cursor
    assert cursor is not None
    other = store.query(ByCustomer, "cur", gte="s", limit=1).cursor
    assert other is not None
    refuse = Refusals(store)
    forged = [
        cursor[:-1],
        cursor[:10],
        cursor[1:],
        cursor + "A",
        cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1],
        cursor.upper(),
        "",
        "=" * 8,
        "not a cursor!",
        "A" * 9000,
        other,
    ]
    for bad in forged:
        refuse(lambda c=bad: store.query(ByCustomer, "cur", limit=2, cursor=c), InvalidCursor)
    refuse(lambda: store.query(ByCustomer, "other", limit=2, cursor=cursor), InvalidCursor)
    refuse(lambda: store.query(ByCustomer, "cur", reverse=True, cursor=cursor), InvalidCursor)
    refuse(lambda: store.list_resources(Order, cursor=cursor), InvalidCursor)
    for bad_type in (5, b"abc", None if False else ["x"]):
        refuse(lambda c=bad_type: store.query(ByCustomer, "cur", cursor=c), InvalidCursor)

    @given_settings(store, 60)
    @given(st.text(alphabet=string.ascii_letters + string.digits + "-_", max_size=120) | st.text())
    def run(text: str) -> None:
        refuse(lambda: store.query(ByCustomer, "cur", cursor=text), InvalidCursor)

    run()
    refuse.unchanged()


def test_forged_replay_checkpoints(seeded: tuple[EventStore, dict[str, str]]) -> None:
    import base64
    import json

    store, ids = seeded
    checkpoint = next(iter(store.replay_pages(Order, page_size=1))).checkpoint
    refuse = Refusals(store)

    def b64(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    for bad in (
        checkpoint[:-3],
        checkpoint + "x",
        "",
        "!!",
        5,
        None if False else b"x",
        b64([2, "Order", "x", "Order#x", 1]),
        b64([1, "Order", "x", "Note#x", 1]),
        b64([1, "Order", "x", "Order#x", -1]),
        b64([1, "Order", "x", "Order#x", True]),
        b64({"a": 1}),
        b64([1, "Note", "x", "Note#x", 1]),  # a type this replay does not cover
    ):
        refuse(lambda c=bad: store.replay(Order, after=c), InvalidInput)
    refuse.unchanged()
    # A well-formed but invented position is just a position: the replay goes on from there,
    # without errors and without writing anything.
    for position in (
        [1, "Order", "", "Order#zzz", 10**12],
        [1, "Order", "~~~~", "Order#" + "\x00", 0],
        [1, "Order", ids["order"], "Order#" + ids["order"], 1],
    ):
        TRIED[type(store.backend).__name__] += 1
        try:
            list(store.replay(Order, after=b64(position)))
        except InvalidInput:
            ERRORS["InvalidInput"] += 1
    refuse.unchanged()


def test_wrong_argument_types_are_typed_errors(tmp_path: Any) -> None:
    """Issue 24, item 9: every wrong type is WrongType (a TypeError), never a raw TypeError or
    AttributeError; export and import take classes or type names alike."""
    import eventstore
    from eventstore import InvalidInput, WrongType
    from eventstore.checking import check
    from eventstore.transfer import export, import_file
    from tests.models import Order

    store = eventstore.open("memory://")
    store.create_table()
    store.append(Order(customer="a"), resource_id="a")
    with pytest.raises(WrongType):
        store.read_many(Order, None)  # type: ignore[arg-type]
    with pytest.raises(WrongType):
        check(store, Order)  # type: ignore[arg-type]
    out = tmp_path / "all.jsonl"
    for bad in (5, "Order", Order, [5]):
        with pytest.raises(WrongType), out.open("w") as f:
            export(store, f, types=bad)  # type: ignore[arg-type]
    with out.open("w") as f:
        assert export(store, f, types=[Order]).versions == 1
    with out.open("w") as f:
        assert export(store, f, types=["Order"]).versions == 1
    with pytest.raises(InvalidInput, match="no streams of type 'Nope'"), out.open("w") as f:
        export(store, f, types=["Nope"])
    with out.open("w") as f:
        export(store, f)
    target = eventstore.open("memory://")
    target.create_table()
    with pytest.raises(WrongType):
        import_file(target, out, Order)  # type: ignore[arg-type]
    assert import_file(target, out, ["Order"]).versions == 1


def test_import_names_the_line_of_bad_bytes_and_bad_keys(tmp_path: Any) -> None:
    """Issue 24, item 8: a file that is not UTF-8, an id with a NUL, a bad type name: each
    refusal names its line."""
    import json

    import eventstore
    from eventstore import InvalidInput
    from eventstore.transfer import export, import_file
    from tests.models import Order

    store = eventstore.open("memory://")
    store.create_table()
    store.append(Order(customer="a"), resource_id="a")
    store.append(Order(customer="b"), resource_id="b")
    good = tmp_path / "good.jsonl"
    with good.open("w") as f:
        export(store, f)
    first, second = good.read_text().splitlines()
    target = eventstore.open("memory://")
    target.create_table()
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(first.encode() + b"\n" + b'{"state":{"x":"\xff\xfe"}}\n')
    with pytest.raises(InvalidInput, match="line 2: not UTF-8"):
        import_file(target, broken, [Order])
    fields = json.loads(second)
    for name, value in (("id", "b\x00"), ("type", "9bad")):
        bad = {"state": fields["state"], **{k: v for k, v in fields.items() if k != "state"}}
        bad[name] = value
        line = json.dumps(bad, separators=(",", ":"))
        broken.write_text(first + "\n" + second + "\n" + line + "\n")
        with pytest.raises(InvalidInput, match="line 3"):
            import_file(target, broken, [Order])
