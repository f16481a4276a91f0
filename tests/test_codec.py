"""The stored state format: codec bytes, bounded decompression, corrupt items, and the pydantic
JSON round trip of every kind of value a state may hold."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from uuid import UUID

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import eventstore
from eventstore import (
    CorruptRecord,
    EventStore,
    InvalidState,
    Resource,
    SchemaMismatch,
    StreamNotFound,
    codec,
)
from eventstore.backends.base import Delete, Put
from eventstore.keys import keyframe_sk, stream_pk, version_sk
from tests.models import Note, Order

# -- the codec on its own ----------------------------------------------------------------------

SMALL = b'{"a":1}'
BIG = b'{"lines":[' + b",".join(b'"line %d of many"' % i for i in range(200)) + b"]}"


def test_small_states_are_stored_raw() -> None:
    blob = codec.encode(SMALL)
    assert blob[0] == codec.RAW
    assert blob[1:] == SMALL
    assert not codec.needs_base(blob)
    assert codec.decode(blob) == SMALL


def test_big_compressible_states_are_zstd() -> None:
    blob = codec.encode(BIG)
    assert blob[0] == codec.ZSTD
    assert len(blob) < len(BIG)
    assert not codec.needs_base(blob)
    assert codec.decode(blob) == BIG


def test_incompressible_states_stay_raw() -> None:
    data = os.urandom(4096)
    blob = codec.encode(data)
    assert blob[0] == codec.RAW
    assert codec.decode(blob) == data


def test_threshold() -> None:
    assert codec.encode(BIG, threshold=len(BIG) + 1)[0] == codec.RAW
    assert codec.encode(BIG, threshold=len(BIG))[0] == codec.ZSTD


def test_delta_round_trip() -> None:
    edited = BIG.replace(b"line 100 of", b"line 100 OF")
    blob = codec.encode_delta(edited, BIG)
    assert blob[0] == codec.ZSTD_DELTA
    assert codec.needs_base(blob)
    assert len(blob) < len(codec.encode(edited)) / 4
    assert codec.decode(blob, BIG) == edited


def test_delta_same_as_base() -> None:
    blob = codec.encode_delta(BIG, BIG)
    assert blob == bytes([codec.SAME_AS_BASE])
    assert codec.needs_base(blob)
    assert codec.decode(blob, BIG) == BIG


# States are JSON, never empty: (an empty delta is refused on decoding as "decodes to nothing").
@given(st.binary(min_size=1, max_size=3000), st.binary(max_size=3000), st.integers(0, 4000))
def test_codec_round_trip_property(data: bytes, base: bytes, threshold: int) -> None:
    assert codec.decode(codec.encode(data, threshold=threshold)) == data
    assert codec.decode(codec.encode_delta(data, base), base) == data


def test_delta_without_base_is_an_error() -> None:
    for blob in (codec.encode_delta(b"x" * 300, b"y" * 300), bytes([codec.SAME_AS_BASE])):
        with pytest.raises(codec.CodecError):
            codec.decode(blob)


def test_delta_against_the_wrong_base_does_not_pass_silently() -> None:
    blob = codec.encode_delta(b'{"a":"' + b"x" * 500 + b'"}', b'{"a":"' + b"x" * 400 + b'"}')
    try:
        decoded = codec.decode(blob, b"z" * 400)
    except codec.CodecError:
        return
    assert decoded != b'{"a":"' + b"x" * 500 + b'"}'


@pytest.mark.parametrize("byte", [4, 5, 127, 255])
def test_unknown_codec_byte(byte: int) -> None:
    with pytest.raises(codec.CodecError, match="unknown codec"):
        codec.decode(bytes([byte]) + SMALL)


def test_empty_blob() -> None:
    with pytest.raises(codec.CodecError):
        codec.decode(b"")


def test_truncated_zstd() -> None:
    blob = codec.encode(BIG)
    for cut in range(2, len(blob)):
        with pytest.raises(codec.CodecError):
            codec.decode(blob[:cut])


@pytest.mark.parametrize("byte", [codec.ZSTD, codec.ZSTD_DELTA])
def test_compressed_codec_byte_without_payload(byte: int) -> None:
    # Truncated right after the codec byte: no frame at all is as broken as half a frame.
    with pytest.raises(codec.CodecError):
        codec.decode(bytes([byte]), BIG)


def test_truncated_delta() -> None:
    edited = BIG.replace(b"line 100", b"line 1000")
    blob = codec.encode_delta(edited, BIG)
    with pytest.raises(codec.CodecError):
        codec.decode(blob[: len(blob) - 3], BIG)


def test_garbage_zstd() -> None:
    with pytest.raises(codec.CodecError):
        codec.decode(bytes([codec.ZSTD]) + os.urandom(200))
    with pytest.raises(codec.CodecError):
        codec.decode(bytes([codec.ZSTD_DELTA]) + os.urandom(200), BIG)


def test_trailing_garbage_after_frame() -> None:
    with pytest.raises(codec.CodecError):
        codec.decode(codec.encode(BIG) + b"\x00\x01\x02garbage")


def test_zstd_bomb_is_bounded() -> None:
    # 8 MB of zeros compress to a few hundred bytes; a 1 MB bound must stop the expansion.
    bomb = bytes([codec.ZSTD]) + zstandard.ZstdCompressor().compress(bytes(8 * 1024 * 1024))
    assert len(bomb) < 2000
    with pytest.raises(codec.CodecError, match="expands"):
        codec.decode(bomb, max_size=1024 * 1024)
    assert len(codec.decode(bomb, max_size=8 * 1024 * 1024)) == 8 * 1024 * 1024


def test_zstd_bomb_without_content_size_is_bounded() -> None:
    # A streamed frame does not declare its size up front, so only the reader's bound stops it.
    out = zstandard.ZstdCompressor(write_content_size=False)
    chunker = out.chunker(chunk_size=65536)
    frame = b"".join(
        [*(b for _ in range(64) for b in chunker.compress(bytes(65536))), *chunker.finish()]
    )
    with pytest.raises(codec.CodecError):
        codec.decode(bytes([codec.ZSTD]) + frame, max_size=1024 * 1024)


def test_raw_over_the_bound() -> None:
    with pytest.raises(codec.CodecError):
        codec.decode(bytes([codec.RAW]) + b"x" * 101, max_size=100)
    assert codec.decode(bytes([codec.RAW]) + b"x" * 100, max_size=100) == b"x" * 100


# -- corrupt items through the store -----------------------------------------------------------


@pytest.fixture
def corrupt_store(store: EventStore) -> EventStore:
    """A store with Order 'r' at versions 1-3 (version 3 a delta against keyframe 1)."""
    store.append(Order(customer="c", lines=["x" * 40] * 10), resource_id="r")
    store.append(Order(customer="c", lines=["x" * 40] * 11), resource_id="r", expected_version=1)
    store.append(Order(customer="c", lines=["x" * 40] * 12), resource_id="r", expected_version=2)
    return store


def _overwrite_state(store: EventStore, version: int, blob: bytes) -> None:
    pk = stream_pk("Order", "r")
    item = store.backend.get([(pk, version_sk(version))])[0]
    assert item is not None
    item["s"] = blob
    store.backend.write([Put(item)])


def _reads(store: EventStore, version: int) -> Iterator[object]:
    """Every way of reading ``version`` of Order 'r' (as thunks' results, lazily)."""
    yield lambda: store.read_version(Order, "r", version)
    yield lambda: list(store.read_stream(Order, "r"))
    yield lambda: list(store.read_stream(Order, "r", reverse=True))
    yield lambda: list(store.replay(Order))
    if version == 3:
        yield lambda: store.read_version(Order, "r")


def _assert_corrupt(store: EventStore, version: int) -> None:
    for read in _reads(store, version):
        with pytest.raises(CorruptRecord) as info:
            read()  # type: ignore[operator]
        err = info.value
        assert (err.resource_type, err.resource_id, err.version) == ("Order", "r", version)
        assert "Order" in str(err) and "'r'" in str(err) and f"version {version}" in str(err)


BAD_BLOBS = {
    "unknown codec byte": bytes([9]) + b'{"customer":"c"}',
    "empty": b"",
    "codec byte only": bytes([codec.ZSTD]),
    "truncated zstd": codec.encode(BIG)[:20],
    "garbage zstd": bytes([codec.ZSTD]) + b"\x28\xb5\x2f\xfd garbage garbage",
    "not json": bytes([codec.RAW]) + b"{not json",
    "bomb": bytes([codec.ZSTD])
    + zstandard.ZstdCompressor().compress(bytes(codec.DEFAULT_MAX_SIZE + 1024)),
}


@pytest.mark.parametrize("blob", list(BAD_BLOBS.values()), ids=list(BAD_BLOBS))
@pytest.mark.parametrize("version", [2, 3])
def test_corrupt_version_item_is_corrupt_record(
    corrupt_store: EventStore, blob: bytes, version: int
) -> None:
    _overwrite_state(corrupt_store, version, blob)
    _assert_corrupt(corrupt_store, version)
    # The other versions still read.
    assert corrupt_store.read_version(Order, "r", 1).state.lines == ["x" * 40] * 10


@pytest.mark.parametrize("version", [2, 3])
def test_a_state_that_does_not_validate_is_a_schema_mismatch(
    corrupt_store: EventStore, version: int
) -> None:
    """Intact JSON that the model refuses: the code moved, the bytes are fine."""
    _overwrite_state(corrupt_store, version, bytes([codec.RAW]) + b'{"customer": 5, "lines": "x"}')
    with pytest.raises(SchemaMismatch) as info:
        corrupt_store.read_version(Order, "r", version)
    assert (info.value.version, info.value.stored, info.value.current) == (version, 1, 1)
    assert not isinstance(info.value, CorruptRecord)


def test_corrupt_keyframe_is_corrupt_record(corrupt_store: EventStore) -> None:
    pk = stream_pk("Order", "r")
    item = corrupt_store.backend.get([(pk, keyframe_sk(1))])[0]
    assert item is not None
    item["s"] = bytes([7, 7, 7])
    corrupt_store.backend.write([Put(item)])
    with pytest.raises(CorruptRecord) as info:
        corrupt_store.read_version(Order, "r", 1)
    assert (info.value.resource_type, info.value.resource_id) == ("Order", "r")
    with pytest.raises(CorruptRecord):
        list(corrupt_store.read_stream(Order, "r"))


def test_missing_keyframe_is_corrupt_record(corrupt_store: EventStore) -> None:
    pk = stream_pk("Order", "r")
    version = corrupt_store.backend.get([(pk, version_sk(3))])[0]
    assert version is not None and codec.needs_base(bytes(version["s"]))  # type: ignore[arg-type]
    corrupt_store.backend.write([Delete((pk, keyframe_sk(1)))])
    # A reader without the keyframe in its cache (the writer's store still holds a good copy).
    cold = EventStore(corrupt_store.backend)
    with pytest.raises(CorruptRecord) as info:
        cold.read_version(Order, "r", 3)
    assert info.value.version == 3
    assert "keyframe" in str(info.value)


def test_bad_metadata_is_corrupt_record(corrupt_store: EventStore) -> None:
    pk = stream_pk("Order", "r")
    item = corrupt_store.backend.get([(pk, version_sk(2))])[0]
    assert item is not None
    item["m"] = "{not json"
    corrupt_store.backend.write([Put(item)])
    with pytest.raises(CorruptRecord) as info:
        corrupt_store.read_version(Order, "r", 2)
    assert info.value.version == 2


def test_missing_state_attribute_is_corrupt_record(corrupt_store: EventStore) -> None:
    pk = stream_pk("Order", "r")
    item = corrupt_store.backend.get([(pk, version_sk(2))])[0]
    assert item is not None
    del item["s"]
    corrupt_store.backend.write([Put(item)])
    with pytest.raises(CorruptRecord) as info:
        corrupt_store.read_version(Order, "r", 2)
    assert info.value.version == 2


def test_reading_with_a_smaller_bound_refuses_big_states(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/bound.db"
    writer = eventstore.open(url)
    writer.append(Order(customer="c", lines=["y" * 1000] * 200), resource_id="r")
    bounded = EventStore(writer.backend, max_state_bytes=10_000)
    with pytest.raises(CorruptRecord):
        bounded.read_version(Order, "r", 1)
    with pytest.raises(InvalidState):
        bounded.append(Order(customer="c", lines=["y" * 1000] * 200), resource_id="s")
    with pytest.raises(StreamNotFound):
        writer.read_version(Order, "s")
    writer.close()


# -- pydantic JSON round trip through the store ------------------------------------------------


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    city: str
    tags: list[str] = []


class Customer(BaseModel):
    name: str
    addresses: list[Address]
    primary: Address | None = None


class Rich(Resource):
    resource_type = "codec.Rich"

    amount: Decimal
    at: datetime
    day: date
    raw: bytes
    tags: set[str]
    numbers: frozenset[int] = frozenset()
    customer: Customer
    text: str
    maybe: str | None
    ratio: float
    big: int
    color: Color
    uid: UUID
    mapping: dict[str, list[int]]
    pair: tuple[int, str]


def _rich(**changes: object) -> Rich:
    values: dict[str, object] = {
        "amount": Decimal("1234567890123456789012345678.9012345678"),  # 38 digits
        "at": datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-9.5))),
        "day": date(1999, 12, 31),
        "raw": bytes(range(256)) + b"\xff\xfe\x80",
        "tags": {"a", "b", "\u00e9"},
        "numbers": frozenset({1, -2, 2**40}),
        "customer": Customer(
            name="Zo\u00eb",
            addresses=[Address(street="1 Rue", city="Paris", tags=["home"])],
            primary=Address(street="2 Way", city="Oslo"),
        ),
        "text": 'h\u00e9llo \U0001f600 \u202eright-to-left\u202c \u0000 "quoted" \\ e\u0301',
        "maybe": None,
        "ratio": 0.1,
        "big": -(2**63),
        "color": Color.BLUE,
        "uid": UUID("12345678-1234-5678-1234-567812345678"),
        "mapping": {"": [], "k": [1, 2, 3]},
        "pair": (7, "seven"),
    }
    values.update(changes)
    return Rich(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "sqlite"])
def embedded(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[EventStore]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/rich.db"
    opened = eventstore.open(url)
    yield opened
    opened.close()


def test_rich_state_round_trip(embedded: EventStore) -> None:
    state = _rich()
    v = embedded.append(state, resource_id="r")
    back = embedded.read_version(Rich, "r").state
    assert back == state
    assert v.state == state
    assert back.amount == Decimal("1234567890123456789012345678.9012345678")
    assert str(back.amount) == "1234567890123456789012345678.9012345678"
    assert back.at == state.at and back.at.utcoffset() == timedelta(hours=-9.5)
    assert back.at.microsecond == 999999
    assert back.raw == state.raw
    assert back.tags == {"a", "b", "\u00e9"} and isinstance(back.tags, set)
    assert back.ratio == 0.1
    assert back.text == state.text
    assert back.maybe is None
    assert back.customer.primary == Address(street="2 Way", city="Oslo")


def test_rich_states_through_deltas(embedded: EventStore) -> None:
    # Enough versions to cross a keyframe, each a small edit: deltas must round-trip the same.
    states = [_rich(text="x" * 300 + str(n), ratio=n / 10, big=2**62 + n) for n in range(20)]
    embedded.append(states[0], resource_id="r")
    for n in range(1, 20):
        embedded.append(states[n], resource_id="r", expected_version=n)
    assert [v.state for v in embedded.read_stream(Rich, "r")] == states


def test_decimal_with_38_significant_digits() -> None:
    store = eventstore.open("memory://")
    for text in (
        "99999999999999999999999999999999999999",
        "-0.00000000000000000000000000000000000001",
        "1.0000000000000000000000000000000000001",
        "1E+125",
        "0.10",
    ):
        v = store.append(_rich(amount=Decimal(text)))
        back = store.read_version(Rich, v.resource_id).state.amount
        assert back == Decimal(text)
        assert back.as_tuple() == Decimal(text).as_tuple()


class Floats(Resource):
    resource_type = "codec.Floats"
    value: float
    values: list[float] = []


@pytest.mark.parametrize(
    "value", [0.1, 0.2 + 0.1, 1 / 3, -0.0, 5e-324, 1.7976931348623157e308, 2.0**53 + 1, 1e-7]
)
def test_floats_round_trip_exactly(value: float) -> None:
    store = eventstore.open("memory://")
    v = store.append(Floats(value=value))
    back = store.read_version(Floats, v.resource_id).state.value
    assert back == value
    assert math.copysign(1.0, back) == math.copysign(1.0, value)
    assert repr(back) == repr(value)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=20))
def test_float_lists_round_trip_property(values: list[float]) -> None:
    store = eventstore.open("memory://")
    v = store.append(Floats(value=values[0] if values else 0.0, values=values))
    back = store.read_version(Floats, v.resource_id).state
    assert [repr(x) for x in back.values] == [repr(x) for x in values]


@given(st.text(), st.binary())
def test_text_and_bytes_round_trip_property(text: str, raw: bytes) -> None:
    store = eventstore.open("memory://")
    try:
        state = _rich(text=text, raw=raw)
    except ValidationError:
        return
    try:
        v = store.append(state)
    except InvalidState:
        # Only text that cannot be encoded as UTF-8 (lone surrogates) may be refused.
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in text)
        return
    back = store.read_version(Rich, v.resource_id).state
    assert (back.text, back.raw) == (text, raw)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_refused_at_construction(bad: float) -> None:
    # The model refuses them itself (pydantic's ValidationError), before the store sees them.
    with pytest.raises(ValidationError):
        Floats(value=bad)
    with pytest.raises(ValidationError):
        Floats(value=1.0, values=[1.0, bad])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_slipped_in_later_are_invalid_state(bad: float) -> None:
    # Assignment is not validated, and model_construct skips validation: the store's own check
    # refuses the state with InvalidState and writes nothing.
    store = eventstore.open("memory://")
    assigned = Floats(value=1.0)
    assigned.value = bad
    constructed = Floats.model_construct(value=1.0, values=[bad])
    for state in (assigned, constructed):
        with pytest.raises(InvalidState) as info:
            store.append(state, resource_id="f")
        assert isinstance(info.value, ValueError)
    with pytest.raises(StreamNotFound):
        store.read_version(Floats, "f")


def test_invalid_state_carries_pydantic_errors() -> None:
    store = eventstore.open("memory://")
    state = Note.model_construct(text=5)  # type: ignore[arg-type]
    with pytest.warns(UserWarning), pytest.raises(InvalidState) as info:
        store.append(state, resource_id="n")
    assert info.value.errors
    with pytest.raises(StreamNotFound):
        store.read_version(Note, "n")


def test_lone_surrogate_in_state_is_invalid_state() -> None:
    store = eventstore.open("memory://")
    with pytest.raises(InvalidState):
        store.append(Note(text="a\ud800b"), resource_id="n")
    with pytest.raises(StreamNotFound):
        store.read_version(Note, "n")
