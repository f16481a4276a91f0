"""A writer without the keyframe in its cache (a new process, a Lambda, a caller that only read by
version number) accepts exactly what a writer with a warm cache accepts, and stores the same small
delta for a large document."""

from __future__ import annotations

import random

import pytest

from eventstore import EventStore, Resource, codec, records
from eventstore.backends.base import MAX_ITEM_SIZE
from eventstore.backends.sizes import item_size
from eventstore.keys import keyframe_sk, stream_pk, version_sk
from tests.interleaving import Interleaving


class Big(Resource):
    resource_type = "cold.Big"
    data: bytes
    note: str


def _near_limit() -> Big:
    """A document whose keyframe item is a little under the 400 KB item limit."""
    noise = random.Random(7).randbytes(450_000)
    low, high = 300_000, 450_000
    while high - low > 64:
        middle = (low + high) // 2
        state = Big(data=noise[:middle], note="a")
        size = len(codec.encode(state.model_dump_json().encode()))
        low, high = (middle, high) if size < MAX_ITEM_SIZE - 900 else (low, middle)
    return Big(data=noise[:low], note="a")


def _stored(store: EventStore, rid: str, number: int) -> int:
    item = store.backend.get([(stream_pk("cold.Big", rid), version_sk(number))])[0]
    assert item is not None
    return item_size(item)


def test_cold_writer_accepts_a_small_edit_of_a_document_near_the_limit(store: EventStore) -> None:
    doc = _near_limit()
    first = store.append(doc, resource_id="doc")
    keyframe = store.backend.get([(stream_pk("cold.Big", "doc"), keyframe_sk(1))])[0]
    assert keyframe is not None and item_size(keyframe) >= MAX_ITEM_SIZE - 900 - 64
    metadata = {"why": "x" * 1_000}  # version item = state + 1 KB: too big stored whole

    warm = store.append(
        doc.model_copy(update={"note": "b"}),
        resource_id="doc",
        expected_version=first.version,
        metadata=metadata,
    )
    cold = EventStore(store.backend)  # a new process: empty keyframe cache
    edited = cold.append(
        doc.model_copy(update={"note": "c"}),
        resource_id="doc",
        expected_version=warm.version,
        metadata=metadata,
    )
    assert _stored(store, "doc", edited.version) <= _stored(store, "doc", warm.version) + 16
    assert store.read_version(Big, "doc").state.note == "c"
    assert EventStore(store.backend).read_version(Big, "doc", 2).state.note == "b"


def test_reads_fill_the_cache_for_the_next_append(dynamodb_store: EventStore) -> None:
    """After a read by number (or any decode), the append that follows is one request; a cold
    writer of a large document pays one keyframe read; a small document is stored whole."""
    store = dynamodb_store
    doc = Big(data=random.Random(3).randbytes(20_000), note="a")
    store.append(doc, resource_id="doc")
    store.append(doc.model_copy(update={"note": "b"}), resource_id="doc", expected_version=1)

    reader = EventStore(store.backend)
    reader.read_version(Big, "doc", 1)
    reader.last_position()  # a new store reads the feed's counter once, with its first commit
    before = store.backend.requests()
    reader.append(doc.model_copy(update={"note": "c"}), resource_id="doc", expected_version=2)
    assert store.backend.requests() - before == 1

    cold = EventStore(store.backend)
    cold.last_position()
    before = store.backend.requests()
    cold.append(doc.model_copy(update={"note": "d"}), resource_id="doc", expected_version=3)
    assert store.backend.requests() - before == 2  # the keyframe read, then the write
    assert _stored(store, "doc", 4) < 1_024

    class Small(Resource):
        resource_type = "cold.Small"
        text: str

    store.append(Small(text="a"), resource_id="s")
    cold = EventStore(store.backend)
    cold.last_position()
    before = store.backend.requests()
    cold.append(Small(text="b"), resource_id="s", expected_version=1)
    assert store.backend.requests() - before == 1  # under 1 KB: stored whole, no read


class Text(Resource):
    resource_type = "cold.Text"
    text: str


def test_a_cached_keyframe_is_reused_only_for_the_same_stored_bytes(store: EventStore) -> None:
    """A reader skips decoding a keyframe it has cached, but only when the item it just read holds
    the very bytes the cached copy came from: a stream erased and made again under the same id
    (same keyframe numbers, other states) is never read through the old one's keyframe."""
    reader = EventStore(store.backend)
    v = store.append(Text(text="old " + "a" * 3000), resource_id="same-id")
    for n in range(2, 6):
        v = store.append(
            Text(text=f"old {n} " + "a" * 3000), resource_id="same-id", expected_version=v.version
        )
    assert reader.read_version(Text, "same-id").state.text.startswith("old 5")
    decoded: list[int] = []
    real = records.keyframe_state

    def counting(*args: object, **kwargs: object) -> bytes:
        decoded.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    records.keyframe_state = counting  # type: ignore[assignment]
    try:
        assert reader.read_version(Text, "same-id", 3).state.text.startswith("old 3")
        assert decoded == []  # cached from the latest read: not decoded again
        store.erase(Text, "same-id")
        v = store.append(Text(text="new " + "b" * 3000), resource_id="same-id")
        store.append(Text(text="new 2 " + "b" * 3000), resource_id="same-id", expected_version=1)
        assert reader.read_version(Text, "same-id").state.text.startswith("new 2")
        assert reader.read_version(Text, "same-id", 1).state.text.startswith("new " + "b")
        assert decoded  # other bytes under the same key: decoded afresh
    finally:
        records.keyframe_state = real  # type: ignore[assignment]


def test_a_writer_never_makes_a_delta_against_an_erased_streams_keyframe(store: EventStore) -> None:
    """Writer A holds a stream's keyframe in memory; another store erases the stream and makes it
    again under the same id, with other states. A's next append, made without reading, must not
    be a delta against the old keyframe: the head names its keyframe, A's write is refused,
    A forgets the keyframe, reads the real one and stores a version that reads back exactly."""
    other = EventStore(store.backend)
    # Text that does not compress, so that a delta against a similar keyframe is always chosen.
    rng = random.Random(3)
    noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(3000))
    v = store.append(Text(text="old 1|" + noise), resource_id="reused")
    for n in range(2, 4):
        v = store.append(
            Text(text=f"old {n}|" + noise), resource_id="reused", expected_version=v.version
        )
    other.erase(Text, "reused")
    other.append(Text(text="new 1|" + noise[::-1]), resource_id="reused")
    other.append(Text(text="new 2|" + noise[::-1]), resource_id="reused", expected_version=1)
    mine = Text(text="mine |" + noise)
    made = store.append(mine, resource_id="reused", expected_version=2)
    assert made.version == 3
    fresh = EventStore(store.backend)
    assert fresh.read_version(Text, "reused", 3).state == mine
    assert [v.state.text[:6] for v in fresh.read_stream(Text, "reused")] == [
        "new 1|",
        "new 2|",
        "mine |",
    ]
    # The next append from the same writer, its keyframe now the real one, is one request.
    before = store.backend.requests()
    store.append(Text(text="mine 2|" + noise), resource_id="reused", expected_version=3)
    if before:  # DynamoDB counts requests
        assert store.backend.requests() - before == 1
    assert fresh.read_version(Text, "reused").state.text == "mine 2|" + noise


@pytest.mark.parametrize("cache_bytes", [8 * 1024 * 1024, 0], ids=["cache", "no-cache"])
def test_a_cold_writer_survives_an_erase_between_its_keyframe_read_and_its_write(
    store: EventStore, cache_bytes: int
) -> None:
    """A writer without the keyframe cached reads it, then writes a delta against it. Another
    store erases the stream and makes it again under the same id after any one of the writer's
    requests: the writer's version reads back exactly (when the erase falls between its
    keyframe read and its write, the head names another keyframe, the write is refused and the
    writer reads the new keyframe); also when it keeps no keyframe cache at all."""
    rng = random.Random(5)
    noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(3000))
    fired: list[int] = []
    for after in range(1, 6):
        rid = f"between-{after}"
        v = store.append(Text(text="old 1|" + noise), resource_id=rid)
        store.append(Text(text="old 2|" + noise), resource_id=rid, expected_version=v.version)

        def erase_and_recreate(rid: str = rid) -> None:
            store.erase(Text, rid)
            store.append(Text(text="new 1|" + noise[::-1]), resource_id=rid)
            store.append(Text(text="new 2|" + noise[::-1]), resource_id=rid, expected_version=1)

        wrapped = Interleaving(store.backend, after=after, action=erase_and_recreate)
        cold = EventStore(wrapped, keyframe_cache_bytes=cache_bytes)  # nothing cached
        mine = Text(text="mine |" + noise)
        made = cold.append(mine, resource_id=rid, expected_version=2)
        if not wrapped.fired:
            break  # the writer made fewer reads than ``after``: nothing ran in between
        fired.append(after)
        assert made.version == 3
        fresh = EventStore(store.backend)
        assert fresh.read_version(Text, rid, 3).state == mine, after
        assert fresh.read_version(Text, rid, 2).state.text.startswith("new 2|")
    assert len(fired) >= 2  # at least the feed's first read and the keyframe read
