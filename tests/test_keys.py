"""Key safety (no resource id can alias another stream) and version ids."""

from __future__ import annotations

import itertools
import unicodedata

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import eventstore
from eventstore import EventStore, InvalidInput, InvalidKey, Resource, StreamNotFound, ids
from eventstore.keys import (
    KEYFRAME_INTERVAL,
    MAX_ID_LENGTH,
    MAX_VERSION,
    check_resource_id,
    check_type_name,
    keyframe_of,
    keyframe_sk,
    parse_sk,
    split_pk,
    stream_pk,
    version_sk,
)
from tests.models import Note, Order

TYPE_NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}", fullmatch=True)
# Ids biased towards the characters that could confuse a key: separators and look-alikes.
ID_CHARS = st.one_of(
    st.sampled_from("#h#v#k0_.-/\\:|%"),
    st.characters(blacklist_categories=("Cc", "Cs")),
)
RESOURCE_IDS = st.text(ID_CHARS, min_size=1, max_size=MAX_ID_LENGTH)


def _valid_pair(type_name: str, resource_id: str) -> bool:
    try:
        check_type_name(type_name)
        check_resource_id(resource_id)
    except InvalidKey:
        return False
    return True


# -- partition keys ----------------------------------------------------------------------------


@given(TYPE_NAMES, RESOURCE_IDS)
def test_stream_pk_splits_back(type_name: str, resource_id: str) -> None:
    assert split_pk(stream_pk(type_name, resource_id)) == (type_name, resource_id)


@given(TYPE_NAMES, RESOURCE_IDS)
def test_no_other_valid_pair_has_the_same_partition_key(type_name: str, resource_id: str) -> None:
    # Every way of cutting the key into a type name and an id: only the original pair is valid.
    pk = stream_pk(type_name, resource_id)
    for cut in range(len(pk) + 1):
        for other_type, other_id in ((pk[:cut], pk[cut:]), (pk[:cut], pk[cut + 1 :])):
            if (other_type, other_id) == (type_name, resource_id):
                continue
            if _valid_pair(other_type, other_id):
                assert stream_pk(other_type, other_id) != pk


@given(TYPE_NAMES, RESOURCE_IDS, TYPE_NAMES, RESOURCE_IDS)
def test_different_pairs_have_different_partition_keys(
    type_a: str, id_a: str, type_b: str, id_b: str
) -> None:
    assume((type_a, id_a) != (type_b, id_b))
    assert stream_pk(type_a, id_a) != stream_pk(type_b, id_b)


@given(TYPE_NAMES, st.text(st.sampled_from("ab#"), min_size=1, max_size=6))
def test_shifting_hashes_between_type_and_id(type_name: str, tail: str) -> None:
    # The attack: "A#b" + "c" versus "A" + "b#c".
    pk = stream_pk(type_name, tail)
    for i, char in enumerate(tail):
        if char == "#":
            moved_type = f"{type_name}#{tail[:i]}"
            with pytest.raises(InvalidKey):
                check_type_name(moved_type)
    assert split_pk(pk) == (type_name, tail)


# -- type names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a#b", "", "1abc", "_a", "-a", ".a", "a b", "a/b", "caf\u00e9", "a" * 65, "a\x00", "a:b"],
)
def test_invalid_type_name_fails_at_class_definition(name: str) -> None:
    with pytest.raises(InvalidKey):

        class Bad(Resource):
            resource_type = name
            x: int = 0


@pytest.mark.parametrize("name", [5, None, b"abc"])
def test_non_str_type_name_fails_at_class_definition(name: object) -> None:
    with pytest.raises(InvalidKey):

        class Bad(Resource):
            resource_type = name  # type: ignore[assignment]
            x: int = 0


def test_valid_type_names() -> None:
    for name in ("A", "a" * 64, "keys.Valid-name_2", "z9"):
        assert check_type_name(name) == name

    class Named(Resource):
        resource_type = "keys.Named-1"
        x: int = 0

    class Defaulted(Resource):
        x: int = 0

    assert Named.resource_type == "keys.Named-1"
    assert Defaulted.resource_type == "Defaulted"


def test_class_name_with_invalid_characters_needs_an_explicit_type_name() -> None:
    # A class name that is a valid identifier but not a valid type name (non-ASCII).
    with pytest.raises(InvalidKey):
        type("Caf\u00e9", (Resource,), {"__annotations__": {"x": int}, "x": 0})


# -- resource ids through the store ------------------------------------------------------------

TRICKY_IDS = [
    "a",
    "a#b",
    "a#",
    "#a",
    "#",
    "##",
    "a#b#c",
    "Note#a",
    "h",
    "v#0000000001#v",
    "A",
    "\u00e9",  # NFC
    "e\u0301",  # NFD: a different id
    "\U0001f600",
    "\u202eevil",
    "\u2028",
    " ",
    "a ",
    "%23",
    "x" * MAX_ID_LENGTH,
    "\U0001f600" * MAX_ID_LENGTH,
    "y" * (MAX_ID_LENGTH - 1) + "#",
]


@pytest.fixture
def memory_store() -> EventStore:
    return eventstore.open("memory://")


def test_tricky_ids_round_trip_without_aliasing(memory_store: EventStore) -> None:
    assert unicodedata.normalize("NFC", "e\u0301") == "\u00e9"  # they only look the same
    for i, rid in enumerate(TRICKY_IDS):
        v = memory_store.append(Order(customer=f"c{i}"), resource_id=rid)
        assert v.resource_id == rid
        memory_store.append(Note(text=f"n{i}"), resource_id=rid)
    for i, rid in enumerate(TRICKY_IDS):
        back = memory_store.read_version(Order, rid)
        assert back.resource_id == rid
        assert back.state.customer == f"c{i}"
        assert [v.state.customer for v in memory_store.read_stream(Order, rid)] == [f"c{i}"]
        assert memory_store.read_version(Note, rid).state.text == f"n{i}"
    replayed = {v.resource_id: v.state.customer for v in memory_store.replay(Order)}
    assert replayed == {rid: f"c{i}" for i, rid in enumerate(TRICKY_IDS)}
    # Prefixes of existing ids are not streams.
    for rid in ("a#b#", "x" * (MAX_ID_LENGTH - 1), "\U0001f600" * 2, "e"):
        with pytest.raises(StreamNotFound):
            memory_store.read_version(Order, rid)


@given(st.lists(RESOURCE_IDS, min_size=2, max_size=8, unique=True))
def test_distinct_ids_are_distinct_streams(rids: list[str]) -> None:
    store = eventstore.open("memory://")
    for i, rid in enumerate(rids):
        store.append(Note(text=str(i)), resource_id=rid)
    for i, rid in enumerate(rids):
        assert [v.state.text for v in store.read_stream(Note, rid)] == [str(i)]
    assert sorted(v.resource_id for v in store.replay(Note)) == sorted(rids)


BAD_IDS = [
    "",
    "a\x00b",
    "\x00",
    "a\nb",
    "\t",
    "a\x7f",
    "\x85",
    "a\ud800",
    "\udfff",
    "x" * (MAX_ID_LENGTH + 1),
    "\U0001f600" * (MAX_ID_LENGTH + 1),
    5,
    None,
    b"abc",
]


@pytest.mark.parametrize("rid", BAD_IDS, ids=[repr(r)[:20] for r in BAD_IDS])
def test_bad_ids_are_invalid_key(memory_store: EventStore, rid: object) -> None:
    with pytest.raises(InvalidKey):
        check_resource_id(rid)
    if rid is not None:  # append(resource_id=None) creates a stream with a new id
        with pytest.raises(InvalidKey):
            memory_store.append(Order(customer="a"), resource_id=rid)  # type: ignore[arg-type]
    with pytest.raises(InvalidKey):
        memory_store.read_version(Order, rid)  # type: ignore[arg-type]
    with pytest.raises(InvalidKey):
        memory_store.read_stream(Order, rid)  # type: ignore[arg-type]
    assert list(memory_store.replay(Order)) == []


@given(st.text(min_size=1, max_size=300))
def test_check_resource_id_property(rid: str) -> None:
    bad = len(rid) > MAX_ID_LENGTH or any(unicodedata.category(c) in ("Cc", "Cs") for c in rid)
    if bad:
        with pytest.raises(InvalidKey):
            check_resource_id(rid)
    else:
        assert check_resource_id(rid) == rid


# -- sort keys ---------------------------------------------------------------------------------


@given(st.integers(0, MAX_VERSION))
def test_sort_keys_round_trip(n: int) -> None:
    assert parse_sk(version_sk(n)) == (n, False)
    base = keyframe_of(max(n, 1))
    assert parse_sk(keyframe_sk(base)) == (base, True)


@given(st.integers(1, MAX_VERSION - 1), st.integers(1, MAX_VERSION - 1))
def test_sort_keys_order_like_numbers(a: int, b: int) -> None:
    assert (version_sk(a) < version_sk(b)) == (a < b)
    # A group's keyframe sorts above every version of its group and below the next group, so a
    # newest-first query meets the current keyframe, then the latest version.
    base = keyframe_of(a)
    last = base + KEYFRAME_INTERVAL - 1
    assert version_sk(a) <= version_sk(last) < keyframe_sk(base) < version_sk(last + 1)
    assert keyframe_sk(base) < keyframe_sk(base + KEYFRAME_INTERVAL)


@pytest.mark.parametrize(
    "sk",
    [
        "h",
        "",
        "v#",
        "v#0000000001",
        "v#0000000001#x",
        "v#0000000001#k",
        "v#000000001a#v",
        "v#00000000001#v",
        "x#0000000001#v",
    ],
)
def test_parse_sk_ignores_other_items(sk: str) -> None:
    assert parse_sk(sk) is None


@given(st.integers(1, MAX_VERSION), st.integers(1, 64))
def test_keyframe_of(version: int, interval: int) -> None:
    base = keyframe_of(version, interval)
    assert base <= version < base + interval
    assert (base - 1) % interval == 0


def test_keyframe_positions() -> None:
    assert [keyframe_of(v, 16) for v in (1, 2, 16, 17, 32, 33, 48, 49)] == [
        1,
        1,
        1,
        17,
        17,
        33,
        33,
        49,
    ]


# -- version ids -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2, 16, 17, 1000, 2**31, MAX_VERSION])
def test_parse_version_id_returns_the_embedded_number(version: int) -> None:
    vid = ids.new_version_id(version)
    assert len(vid) == 26
    assert ids.parse_version_id(vid)[0] == version
    assert abs(ids.parse_version_id(vid)[1] - ids._now_ms()) < 60_000


def test_version_ids_increase_within_one_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = ids._now_ms()
    monkeypatch.setattr(ids, "_now_ms", lambda: frozen)
    made = [ids.new_version_id(n) for n in range(1, 2001)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert {ids.parse_version_id(v)[1] for v in made} == {frozen}


def test_version_ids_increase_when_the_clock_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    start = ids._now_ms()
    ticks = itertools.count()
    # The clock jumps back 10 s every few calls.
    monkeypatch.setattr(ids, "_now_ms", lambda: start - 10_000 * (next(ticks) // 3))
    made = [ids.new_version_id(n) for n in range(1, 50)]
    assert all(a < b for a, b in itertools.pairwise(made))
    assert [ids.parse_version_id(v)[0] for v in made] == list(range(1, 50))


def test_not_before_is_respected() -> None:
    later = ids._now_ms() + 5_000
    vid = ids.new_version_id(3, not_before_ms=later)
    assert ids.parse_version_id(vid)[0] == 3
    assert ids.parse_version_id(vid)[1] >= later


def test_store_version_ids_increase_when_the_clock_steps_back(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store.append(Order(customer="a"), resource_id="r")
    first_ms = ids.parse_version_id(first.version_id)[1]
    # Another process whose clock is a minute behind: its in-process guard knows nothing.
    monkeypatch.setattr(ids, "_last_ms", 0)
    monkeypatch.setattr(ids, "_now_ms", lambda: first_ms - 60_000)
    second = store.append(Order(customer="b"), resource_id="r", expected_version=1)
    monkeypatch.setattr(ids, "_last_ms", 0)
    third = store.append(Order(customer="c"), resource_id="r", expected_version=2)
    assert first.version_id < second.version_id < third.version_id
    stored = [v.version_id for v in store.read_stream(Order, "r")]
    assert stored == [first.version_id, second.version_id, third.version_id]
    assert [v.state.customer for v in store.read_stream(Order, "r")] == ["a", "b", "c"]
    assert store.read_version(Order, "r", second.version_id).version == 2


def test_new_resource_ids_are_ulids_and_unique() -> None:
    made = {ids.new_resource_id() for _ in range(1000)}
    assert len(made) == 1000
    for rid in made:
        assert len(rid) == 26
        check_resource_id(rid)


@pytest.mark.parametrize(
    "text", ["", "hello", "u" * 26, "Z" * 26, "0" * 26, "8" + "0" * 25, "0" * 27, "!" * 26]
)
def test_parse_version_id_rejects(text: str) -> None:
    with pytest.raises(InvalidInput):
        ids.parse_version_id(text)


def test_recorded_at_is_utc_from_the_id() -> None:
    vid = ids.new_version_id(1)
    moment = ids.recorded_at(vid)
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0
    assert int(moment.timestamp() * 1000) == ids.parse_version_id(vid)[1]
