"""The table's item schema, in one place: attribute names, the items of a stream (head, versions,
keyframes) and of the store's own bookkeeping (checkpoints, the cursor secret), and the functions
that turn them into items and back.

A stream ``<type>#<id>`` holds:

- a **head** (sort key ``h``): current version ``v``, its id ``id``, lowest retained version ``lo``,
  the creation-order listing keys ``gsi0pk``/``gsi0sk`` and the projection keys ``gsi1..4``;
- **version** items ``v#<n>#v``: version id, state bytes ``s`` (codec-encoded, usually a delta),
  the keyframe number ``b`` a delta needs, event ``e`` and metadata JSON ``m``;
- one **keyframe** per group of 16 versions, ``v#<last of group>#w``, holding the full state of the
  group's first version. It sorts just above its group, and it is deleted by the write that trims
  the group's last version, so a version that is held always has its keyframe.

Nothing else in ``eventstore`` or ``projections`` spells an attribute name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import ValidationError

from eventstore import codec
from eventstore.backends.base import (
    INDEXES,
    POSITION_KEYS,
    Condition,
    Delete,
    Item,
    Key,
    Put,
    Update,
    Value,
    Write,
    index_keys,
)
from eventstore.errors import (
    BackendError,
    CorruptRecord,
    InvalidInput,
    KeysMissing,
    NoBlobStore,
    SchemaMismatch,
    Shredded,
)
from eventstore.ids import recorded_at
from eventstore.keys import (
    HEAD_SK,
    KEYFRAME_INTERVAL,
    keyframe_of,
    keyframe_sk,
    parse_sk,
    split_pk,
    version_sk,
)
from eventstore.resource import FrozenDict, Resource, Version

R = TypeVar("R", bound=Resource)

PK = "pk"
SK = "sk"
VERSION = "v"
VERSION_ID = "id"
LOWEST = "lo"
STATE = "s"
BASE = "b"
EVENT = "e"
METADATA = "m"
#: A version's feed partition and position where the backend keeps the feed in the items
#: (SQLite); POSITION is also a counter's last position.
FEED_PARTITION, POSITION = POSITION_KEYS
SCHEMA = "sv"
#: On the versions and keyframes of encrypted types: the subject whose data key seals the state;
#: on their heads: the stream's subject, fixed by its first version (appends are conditioned on it).
SUBJECT = "ks"
DELETED = "del"
#: Epoch seconds after which DynamoDB's TTL may delete a superseded version (the table's TTL
#: attribute). Only superseded versions carry it: the latest never expires.
EXPIRES = "ttl"
#: A deleted stream's head holds this as its last version id: it sorts above every ULID, so an
#: ordinary append's condition (last id below the new one) refuses it.
DELETED_ID = "~deleted"
#: On a keyframe item, the id of the version that starts its group; on a head, the id of the
#: keyframe its newest group's deltas are made against. A writer's delta against a keyframe it
#: holds in memory requires the head to name that keyframe, so a stream erased and made again
#: under the same id (same keyframe numbers, other states) never gets a delta against the old
#: one.
KEYFRAME_ID = "kf"
STREAM = "r"
PARTITIONS = "n"
CHECKPOINT = "after"
COUNT = "scanned"
SECRET = "k"
DONE = "done"
#: The index that lists the streams of a type in creation order.
LISTING = "gsi0"
LISTING_PK, LISTING_SK = index_keys(LISTING)


def deleted_listing(type_name: str) -> str:
    """The listing partition of a type's deleted streams (by deletion), apart from the live
    ones: ``check`` and ``purge`` still cover their history. A type name starts with a letter,
    so this never names a type's own listing."""
    return f"~deleted#{type_name}"


def head_key(pk: str) -> Key:
    return (pk, HEAD_SK)


def version_key(pk: str, number: int) -> Key:
    return (pk, version_sk(number))


def keyframe_key(pk: str, number: int) -> Key:
    """Key of the keyframe that version ``number``'s group uses."""
    return (pk, keyframe_sk(keyframe_of(number, KEYFRAME_INTERVAL)))


# -- heads -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Head:
    """What a stream's head says: its current version and the range of versions it holds."""

    pk: str
    version: int
    lowest: int

    @property
    def remaining(self) -> tuple[int, int]:
        return (self.lowest, self.version)


def head(item: Mapping[str, Value]) -> Head:
    """Parse a head item (also an index entry, which carries ``v`` but maybe not ``lo``)."""
    return Head(str(item[PK]), number(item, VERSION), _int_or(item, LOWEST, 1))


def head_update(
    pk: str,
    *,
    version: int,
    version_id: str,
    listed_as: str | None,
    lowest: int | None,
    index_set: Mapping[str, Value],
    index_remove: frozenset[str],
    condition: Condition,
    listed_at: str | None = None,
    keyframe_id: str | None = None,
    subject: str | None = None,
) -> Update:
    """The head write of an append. ``listed_as`` (the type name) puts a new stream in the
    creation-order listing, at ``listed_at`` (default: ``version_id``); ``lowest`` moves the
    retention bound; ``subject`` (encrypted types) is the stream's, fixed by its first version."""
    to_set: dict[str, Value] = {VERSION: version, VERSION_ID: version_id, **index_set}
    if subject is not None:
        to_set[SUBJECT] = subject
    if listed_as is not None:
        to_set.update({LISTING_PK: listed_as, LISTING_SK: listed_at or version_id})
    if lowest is not None:
        to_set[LOWEST] = lowest
    if keyframe_id is not None:
        to_set[KEYFRAME_ID] = keyframe_id
    return Update(head_key(pk), set=to_set, remove=index_remove, condition=condition)


def head_condition(
    previous: int | None,
    *,
    lowest: int | None = None,
    below_id: str | None = None,
    deleted: bool = False,
    keyframe_id: str | None = None,
    subject: str | None = None,
) -> Condition:
    """The condition an append puts on the head: absent (``previous`` None), or at ``previous``
    (and at retention bound ``lowest``), with a last version id sorting before ``below_id``; with
    ``deleted``, at ``previous`` and deleted (a stream started again after a delete); with
    ``subject``, of that subject."""
    if previous is None:
        return Condition(exists=False)
    equals: dict[str, Value] = {VERSION: previous}
    if subject is not None:
        equals[SUBJECT] = subject
    if lowest is not None:
        equals[LOWEST] = lowest
    if keyframe_id is not None:
        equals[KEYFRAME_ID] = keyframe_id
    if deleted:
        return Condition(equals={**equals, DELETED: 1})
    return Condition(equals=equals, less_than={} if below_id is None else {VERSION_ID: below_id})


def expiry_update(key: Key, expires: int) -> Update:
    """Give a superseded version (or a keyframe no longer needed by the latest) its expiry."""
    return Update(key, set={EXPIRES: expires}, condition=Condition())


def erasing_head(pk: str) -> Update:
    """Mark a head as being erased: out of every index, refusing appends and restarts."""
    return Update(
        head_key(pk),
        set={DELETED: 2, VERSION_ID: DELETED_ID},
        remove=INDEX_ATTRIBUTES_OF_HEAD,
    )


def is_erasing(item: Mapping[str, Value] | None) -> bool:
    """Whether a head marks a stream being erased."""
    return item is not None and item.get(DELETED) == 2


def is_deleted(item: Mapping[str, Value] | None) -> bool:
    """Whether a head or version item marks a deleted stream."""
    return item is not None and item.get(DELETED) == 1


#: Every attribute by which a head appears in an index (the listing and the projections).
INDEX_ATTRIBUTES_OF_HEAD = frozenset(name for index in INDEXES for name in index_keys(index))


def index_update(
    pk: str, version: int, to_set: Mapping[str, Value], remove: frozenset[str]
) -> Update:
    """Set a head's index attributes, provided the head is still at ``version``."""
    return Update(
        head_key(pk), set=to_set, remove=remove, condition=Condition(equals={VERSION: version})
    )


def listing_start(pk: str, type_name: str, listed: str) -> Item:
    """The listing query position right after the head of ``pk`` (listed at ``listed``)."""
    return {PK: pk, SK: HEAD_SK, LISTING_PK: type_name, LISTING_SK: listed}


def listing_position(item: Mapping[str, Value]) -> str:
    """Where a head stands in its type's creation-order listing."""
    return str(item[LISTING_SK])


# -- versions and keyframes ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A version item as stored: its state is still encoded (maybe as a delta)."""

    pk: str
    number: int
    version_id: str
    blob: bytes
    base: int | None
    event: str | None
    metadata: str | None
    position: int | None = None
    schema: int = 1
    deleted: bool = False
    #: When DynamoDB may delete it (seconds since the epoch): only superseded versions of types
    #: with ``max_age`` carry one.
    expires: int | None = None
    #: The subject whose data key seals its state (encrypted types only).
    subject: str | None = None

    @property
    def superseded(self) -> bool:
        """Not the latest version (only known for types with ``max_age``)."""
        return self.expires is not None

    @property
    def needs_keyframe(self) -> bool:
        return codec.needs_base(self.blob)


def version_item(
    pk: str,
    number: int,
    version_id: str,
    blob: bytes,
    *,
    base: int | None,
    event: str | None,
    metadata: str | None,
    position: int | None = None,
    schema: int = 1,
    deleted: bool = False,
    expires: int | None = None,
    subject: str | None = None,
) -> Item:
    item: Item = {PK: pk, SK: version_sk(number), VERSION_ID: version_id, STATE: blob}
    if subject is not None:
        item[SUBJECT] = subject
    if expires is not None:
        item[EXPIRES] = expires
    if deleted:
        item[DELETED] = 1
    if position is not None:
        item[POSITION] = position
    if schema != 1:  # absent means schema 1: versions stored before schemas existed read so
        item[SCHEMA] = schema
    if base is not None:
        item[BASE] = base
    if event is not None:
        item[EVENT] = event
    if metadata:
        item[METADATA] = metadata
    return item


def keyframe_item(
    pk: str, base: int, blob: bytes, keyframe_id: str, subject: str | None = None
) -> Item:
    item: Item = {PK: pk, SK: keyframe_sk(base), STATE: blob, KEYFRAME_ID: keyframe_id}
    if subject is not None:
        item[SUBJECT] = subject
    return item


def keyframe_id(item: Mapping[str, Value] | None) -> str | None:
    """The id a keyframe item or a head carries (``None`` for items written before ids)."""
    found = None if item is None else item.get(KEYFRAME_ID)
    return found if isinstance(found, str) else None


def stored_version(pk: str, number: int, item: Mapping[str, Value]) -> StoredVersion:
    """Parse a version item; :class:`CorruptRecord` if it lacks what every version has."""
    blob, vid, base = item.get(STATE), item.get(VERSION_ID), item.get(BASE)
    if not isinstance(blob, bytes) or not isinstance(vid, str):
        raise CorruptRecord(*split_pk(pk), number, "missing state or version id")
    if codec.needs_base(blob) and (isinstance(base, bool) or not isinstance(base, int)):
        raise CorruptRecord(*split_pk(pk), number, "delta without a keyframe number")
    event, meta, position = item.get(EVENT), item.get(METADATA), item.get(POSITION)
    if meta is not None and not isinstance(meta, str):
        raise CorruptRecord(*split_pk(pk), number, "metadata is not text")
    schema = item.get(SCHEMA, 1)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise CorruptRecord(*split_pk(pk), number, f"bad schema version {schema!r}")
    return StoredVersion(
        pk,
        number,
        vid,
        blob,
        base if isinstance(base, int) else None,
        event if isinstance(event, str) else None,
        meta,
        position if isinstance(position, int) and not isinstance(position, bool) else None,
        schema,
        is_deleted(item),
        _int_or(item, EXPIRES, 0) or None,
        subject if isinstance(subject := item.get(SUBJECT), str) else None,
    )


def sort_position(item: Mapping[str, Value]) -> tuple[int, bool] | None:
    """``(version, False)`` for a version item, ``(base, True)`` for a keyframe, else ``None``."""
    return parse_sk(str(item[SK]))


def stream_name(parts: tuple[str, str]) -> str:
    """``Type 'id'``, for messages."""
    return f"{parts[0]} {parts[1]!r}"


def _undecodable(
    e: codec.CodecError, pk: str, number: int, subject: str | None, prefix: str = "keyframe: "
) -> Exception:
    """What a state that does not decode means: a pointer read without the blob store, sealed
    bytes read without keys, a shredded subject (only for an item of that subject: the stand-in
    is made by the encryption layer, never stored), or damage."""
    if isinstance(e, codec.Offloaded):
        return NoBlobStore(*split_pk(pk), number)
    if isinstance(e, codec.ShreddedState) and e.subject == subject:
        return Shredded(*split_pk(pk), number, e.subject)
    if isinstance(e, codec.Sealed) and subject is not None:
        return KeysMissing(
            f"{stream_name(split_pk(pk))} version {number} is encrypted: open the store with "
            "keys= (and the same key_store=) to read it"
        )
    if isinstance(e, (codec.ShreddedState, codec.Sealed)):
        return CorruptRecord(
            *split_pk(pk), number, f"{prefix}sealed bytes on an item of no subject"
        )
    return CorruptRecord(*split_pk(pk), number, f"{prefix}{e}")


def keyframe_state(pk: str, base: int, item: Mapping[str, Value], max_size: int) -> bytes:
    """The JSON state a keyframe item holds."""
    blob = item.get(STATE)
    if not isinstance(blob, bytes):
        raise CorruptRecord(*split_pk(pk), base, "keyframe without state bytes")
    try:
        return codec.decode(blob, max_size=max_size)
    except codec.CodecError as e:
        subject = item.get(SUBJECT)
        raise _undecodable(e, pk, base, subject if isinstance(subject, str) else None) from e


def state_json(stored: StoredVersion, keyframe: bytes | None, max_size: int) -> bytes:
    """The state of a stored version as the JSON it was written with, given its keyframe's
    JSON (``None`` if it needs none)."""
    try:
        return codec.decode(stored.blob, keyframe, max_size=max_size)
    except codec.CodecError as e:
        raise _undecodable(e, stored.pk, stored.number, stored.subject, prefix="") from e


def to_version(
    cls: type[R], stored: StoredVersion, keyframe: bytes | None, max_size: int
) -> Version[R]:
    """Decode a stored version given its keyframe's JSON (``None`` if it needs none)."""
    type_name, rid = split_pk(stored.pk)
    number = stored.number
    state = state_of(cls, state_json(stored, keyframe, max_size), stored)
    try:
        metadata = json.loads(stored.metadata) if stored.metadata else {}
        if not isinstance(metadata, dict):
            raise ValueError("metadata is not an object")
        moment = recorded_at(stored.version_id)
    except (ValueError, InvalidInput, RecursionError) as e:
        raise CorruptRecord(
            type_name, rid, number, f"bad metadata or version id: {e!s:.200}"
        ) from e
    return Version(
        resource_type=type_name,
        resource_id=rid,
        version=number,
        version_id=stored.version_id,
        recorded_at=moment,
        state=state,
        event=stored.event,
        metadata=FrozenDict(metadata),
        position=stored.position,
        schema_version=stored.schema,
        deleted=stored.deleted,
    )


def state_of(cls: type[R], data: bytes, stored: StoredVersion) -> R:
    """The state of the current model from JSON stored under ``stored.schema``: upcast step by
    step through the class's upcasters, then validated. The stored bytes are never changed."""
    type_name, rid = split_pk(stored.pk)
    current = cls.schema_version

    def mismatch(reason: str) -> SchemaMismatch:
        return SchemaMismatch(type_name, rid, stored.number, stored.schema, current, reason)

    if stored.schema > current:
        raise mismatch("stored under a newer schema than this code knows (deploy the new model)")
    try:
        if stored.schema == current:
            return cls.model_validate_json(data)
        try:
            document = json.loads(data)
        except ValueError as e:
            raise CorruptRecord(type_name, rid, stored.number, f"state is not JSON: {e}") from e
        for schema in range(stored.schema, current):
            upcast = cls.upcasters.get(schema)
            if upcast is None:
                raise mismatch(f"no upcaster from schema {schema} to {schema + 1}")
            try:
                document = upcast(document)
            except Exception as e:
                raise mismatch(f"the upcaster from schema {schema} failed: {e!r}") from e
        return cls.model_validate(document)
    except ValidationError as e:
        if any(error["type"] == "json_invalid" for error in e.errors()):
            raise CorruptRecord(type_name, rid, stored.number, f"state is not JSON: {e}") from e
        raise mismatch(
            f"the state does not validate as {cls.__name__} (a model change without a new "
            f"schema_version and upcaster?): {e}"
        ) from e


def trim_writes(
    pk: str, lowest: int, target: int, budget: int, *, existing: int | None = None
) -> tuple[list[Write], int]:
    """Deletes that move a stream's lowest retained version from ``lowest`` towards ``target``, at
    most ``budget`` of them, and the bound reached. A keyframe goes with the last version that
    needs it, so a held version always has its keyframe. With ``existing``, only items of
    versions up to it are deleted (later ones are being written by the same commit, or not)."""
    writes: list[Write] = []
    last = target - 1 if existing is None else min(target - 1, existing)
    while lowest < target and len(writes) + 2 <= budget:
        if lowest <= last:
            writes.append(Delete(version_key(pk, lowest)))
        base = keyframe_of(lowest, KEYFRAME_INTERVAL)
        if keyframe_of(lowest + 1, KEYFRAME_INTERVAL) != base and base <= last:
            writes.append(Delete(keyframe_key(pk, lowest)))
        lowest += 1
    return writes, lowest


def bound_update(pk: str, lowest: int, reached: int) -> Update:
    """Move a head's retention bound, provided nobody moved it first."""
    return Update(head_key(pk), set={LOWEST: reached}, condition=Condition(equals={LOWEST: lowest}))


# -- the feed --------------------------------------------------------------------------------
#
# A table's feed is in one of three modes (FEED_MODES), recorded in its configuration item with
# its number of partitions. Both modes that give positions keep, per partition, a counter item
# (the last position given out) and the entries, in blocks of FEED_BLOCK positions per partition
# key so that no single key collects the whole log:
#
# - inline: a commit moves the counter conditionally and puts one entry item per version in its
#   own atomic write, so positions are gapless and in commit order;
# - indexed: appends write nothing of the feed; the indexer (eventstore.indexer) reads the
#   table's DynamoDB Stream and writes chunk items, each naming many consecutive positions, with
#   the counter move and its place in the stream's shard in one atomic write. A chunk never
#   spans two blocks and is keyed by its last position, so the chunk holding position p is the
#   first one at or after p in its block.

#: Where the table's feed configuration lives (mode and number of partitions).
FEED_CONFIG_KEY: Key = ("_config", "feed")
#: Feed positions per entry partition key.
FEED_BLOCK = 10_000
FEED_MODE = "mode"
INDEXED, INLINE, NO_FEED = "indexed", "inline", "none"
FEED_MODES = (INDEXED, INLINE, NO_FEED)
#: On a chunk item: its first position, and its entries (codec-encoded JSON).
CHUNK_FIRST = "f"
CHUNK = "c"


def feed_config_item(mode: str, partitions: int) -> Item:
    return {PK: FEED_CONFIG_KEY[0], SK: FEED_CONFIG_KEY[1], PARTITIONS: partitions, FEED_MODE: mode}


def feed_config(item: Mapping[str, Value]) -> tuple[str, int]:
    """``(mode, partitions)`` of a configuration item. Items written before modes existed hold
    only the partitions: 0 was a table without a feed, any other number an inline feed."""
    partitions = number(item, PARTITIONS)
    mode = item.get(FEED_MODE)
    if mode is None:
        mode = NO_FEED if partitions == 0 else INLINE
    if mode not in FEED_MODES:
        raise BackendError(f"the feed configuration holds an unknown mode {mode!r}")
    return str(mode), partitions


def counter_key(partition: int) -> Key:
    return (f"_feed#{partition}", "counter")


def counter_update(partition: int, previous: int, last: int) -> Update:
    """Move a partition's counter from ``previous`` to ``last``, provided nobody moved it."""
    return counter_move(counter_key(partition), previous, last)


def counter_move(key: Key, previous: int, last: int) -> Update:
    """Move the counter item under ``key`` from ``previous`` (0: no item yet) to ``last``,
    provided nobody moved it first."""
    condition = Condition(exists=False) if previous == 0 else Condition(equals={POSITION: previous})
    return Update(key, set={POSITION: last}, condition=condition)


def entry_block(partition: int, position: int) -> str:
    """The partition key holding the entry of ``position``."""
    return f"_feed#{partition}#{position // FEED_BLOCK}"


def entry_sk(position: int) -> str:
    return f"{position:012d}"


def entry_item(partition: int, position: int, pk: str, number: int) -> Item:
    return {
        PK: entry_block(partition, position),
        SK: entry_sk(position),
        STREAM: pk,
        VERSION: number,
    }


def entry(item: Mapping[str, Value]) -> tuple[int, str, int]:
    """``(position, stream pk, version)`` of an inline feed entry; an erased stream's entry keeps
    its position with an empty stream key and version 0."""
    if STREAM not in item:
        return int(str(item[SK])), "", 0
    return int(str(item[SK])), str(item[STREAM]), number(item, VERSION)


def erased_marker(partition: int, position: int) -> Item:
    """Where the backend keeps the feed in the items: what keeps the position of an erased
    stream's version, written in the erasure's write that deletes the version (nothing of the
    stream, so the feed shows the position as erased)."""
    return {
        PK: f"_erased#{partition}",
        SK: entry_sk(position),
        FEED_PARTITION: partition,
        POSITION: position,
        DELETED: 1,
    }


def feed_position(item: Mapping[str, Value]) -> tuple[int, int] | None:
    """``(partition, position)`` of an item the backend's feed holds, else ``None``."""
    partition, position = item.get(FEED_PARTITION), item.get(POSITION)
    if not isinstance(partition, int) or not isinstance(position, int):
        return None
    if isinstance(partition, bool) or isinstance(position, bool):
        return None
    return partition, position


def positioned_entry(item: Mapping[str, Value]) -> tuple[int, str, int]:
    """``(position, stream pk, version)`` of an item the backend's feed holds: a version item,
    or an erased version's marker (empty stream key, version 0)."""
    position, pk = number(item, POSITION), str(item[PK])
    found = parse_sk(str(item[SK])) if not pk.startswith("_") else None
    if found is None or found[1]:
        return position, "", 0
    return position, pk, found[0]


def erased_entry(partition: int, position: int) -> Item:
    """The feed entry of a version of an erased stream: the position, nothing else."""
    return {PK: entry_block(partition, position), SK: entry_sk(position), DELETED: 1}


#: Most positions one chunk item names (about 40 KB of entries before compression).
CHUNK_ENTRIES = 1000


def chunk_item(partition: int, first: int, entries: Sequence[tuple[str, int]]) -> Item:
    """The chunk naming positions ``first``, ``first + 1``, ... of ``partition``: one
    ``(stream pk, version)`` per position (``("", 0)`` for an erased stream's). It must not
    cross a block."""
    last = first + len(entries) - 1
    if not entries or entry_block(partition, first) != entry_block(partition, last):
        raise ValueError("a chunk holds 1 or more positions of one block")
    data = json.dumps([[pk, n] for pk, n in entries], separators=(",", ":")).encode()
    return {
        PK: entry_block(partition, first),
        SK: entry_sk(last),
        CHUNK_FIRST: first,
        CHUNK: codec.encode(data, threshold=256),
    }


def is_chunk(item: Mapping[str, Value]) -> bool:
    return CHUNK in item


def feed_entries(item: Mapping[str, Value]) -> list[tuple[int, str, int]]:
    """Every ``(position, stream pk, version)`` an index item names: one for an inline entry,
    many for a chunk (an erased stream's with an empty key and version 0)."""
    if not is_chunk(item):
        return [entry(item)]
    first, blob = number(item, CHUNK_FIRST), item[CHUNK]
    try:
        if not isinstance(blob, bytes):
            raise ValueError("not bytes")
        listed = json.loads(codec.decode(blob, max_size=CHUNK_ENTRIES * 4096))
        found = [(first + i, str(pk), int(n)) for i, (pk, n) in enumerate(listed)]
    except (ValueError, TypeError, codec.CodecError) as e:
        raise BackendError(f"feed chunk {item.get(PK)!r}/{item.get(SK)!r} is damaged: {e}") from e
    if not found or found[-1][0] != int(str(item[SK])):
        raise BackendError(f"feed chunk {item.get(PK)!r}/{item.get(SK)!r} is damaged")
    return found


def chunk_rewrite(
    item: Mapping[str, Value], partition: int, entries: Sequence[tuple[str, int]]
) -> Put:
    """Replace a chunk's entries (an erasure blanks a stream's), provided nobody changed the
    chunk since it was read (two erasures may rewrite one chunk)."""
    new = chunk_item(partition, number(item, CHUNK_FIRST), entries)
    return Put(new, Condition(equals={CHUNK: item[CHUNK]}))


#: Where the indexer keeps, per shard of the table's stream, the last record it indexed.
def shard_key(shard: str) -> Key:
    return ("_index#shards", shard)


def shard_move(shard: str, previous: str | None, sequence: str, *, done: bool) -> Update:
    """Record ``sequence`` as the last record of ``shard`` that the index holds (``done``: the
    shard is closed and fully read), provided it is still at ``previous``."""
    condition = (
        Condition(exists=False) if previous is None else Condition(equals={CHECKPOINT: previous})
    )
    to_set: dict[str, Value] = {CHECKPOINT: sequence}
    if done:
        to_set[DONE] = True
    return Update(shard_key(shard), set=to_set, condition=condition)


def shard_progress(item: Mapping[str, Value] | None) -> tuple[str | None, bool]:
    """``(last sequence number indexed, shard done)`` of a shard's progress item."""
    if item is None:
        return None, False
    value = item.get(CHECKPOINT)
    if not isinstance(value, str):
        raise BackendError(f"index progress item {item.get(SK)!r} is damaged")
    return value, item.get(DONE) is True


# -- eventsourcing's stored events (eventstore.integrations.eventsourcing) -----------------
#
# Each recorder works in a namespace (its application's name and purpose). An insert puts, per
# originator, one chunk item holding its events (keyed by the chunk's last version) and moves the
# originator's head (the highest version recorded, conditionally); an application recorder also
# puts one log item listing the notifications the insert takes (keyed by the last of them) and
# moves the namespace's notification counter, all in one atomic write.

#: Versions are stored offset so that negative ones sort too.
ES_VERSION_OFFSET = 2**40
ES_EVENTS = "d"
ES_FIRST = "f"


def es_originator_pk(namespace: str, originator_id: str) -> str:
    return f"_es#{namespace}#o#{originator_id}"


def es_chunk_sk(version: int) -> str:
    return f"e#{version + ES_VERSION_OFFSET:014d}"


def es_chunk_item(namespace: str, originator_id: str, first: int, last: int, data: bytes) -> Item:
    return {
        PK: es_originator_pk(namespace, originator_id),
        SK: es_chunk_sk(last),
        ES_FIRST: first,
        ES_EVENTS: data,
    }


def es_head_move(namespace: str, originator_id: str, first: int, last: int) -> Update:
    """Record ``last`` as the originator's highest version, provided every version it has is
    below ``first`` (so no event is recorded twice)."""
    key = (es_originator_pk(namespace, originator_id), HEAD_SK)
    return Update(
        key,
        set={VERSION: last},
        condition=Condition(less_than={VERSION: first}, or_absent=True),
    )


def es_log_pk(namespace: str) -> str:
    return f"_es#{namespace}#log"


def es_log_item(namespace: str, last: int, data: bytes) -> Item:
    return {PK: es_log_pk(namespace), SK: entry_sk(last), ES_EVENTS: data}


def es_counter_key(namespace: str) -> Key:
    return (f"_es#{namespace}#counter", "c")


def es_counter_move(namespace: str, previous: int, last: int) -> Update:
    return counter_move(es_counter_key(namespace), previous, last)


def es_tracking_key(namespace: str, application: str) -> Key:
    return (f"_es#{namespace}#tracking", application)


def es_tracking_move(namespace: str, application: str, position: int) -> Update:
    """Record ``position`` as tracked, provided every tracked position is below it."""
    return Update(
        es_tracking_key(namespace, application),
        set={POSITION: position},
        condition=Condition(less_than={POSITION: position}, or_absent=True),
    )


# -- bookkeeping items -----------------------------------------------------------------------


def checkpoint_key(name: str) -> Key:
    """Where the checkpoint called ``name`` (a feed runner's) is kept. The leading ``_`` keeps it
    apart from every stream (stream keys start with a type name, which starts with a letter)."""
    return (f"_checkpoint#{name}", "c")


def checkpoint_move(name: str, previous: int, position: int) -> Update:
    """Move a feed checkpoint, provided it is still at ``previous`` (0: none saved)."""
    condition = (
        Condition(exists=False) if previous == 0 else Condition(equals={CHECKPOINT: str(previous)})
    )
    return Update(checkpoint_key(name), set={CHECKPOINT: str(position)}, condition=condition)


def checkpoint_position(item: Mapping[str, Value] | None) -> int:
    """A feed checkpoint's position (0 when none is saved)."""
    value = checkpoint_value(item)
    if value is None:
        return 0
    if not value.isdigit():
        raise BackendError(f"checkpoint {item and item.get(PK)!r} holds {value!r}, not a position")
    return int(value)


def checkpoint_item(key: Key, value: str, *, count: int | None = None) -> Item:
    """A runner's or a rebuild's progress: where to resume and, optionally, how many it did."""
    item: Item = {PK: key[0], SK: key[1], CHECKPOINT: value}
    if count is not None:
        item[COUNT] = count
    return item


def checkpoint_value(item: Mapping[str, Value] | None) -> str | None:
    if item is None:
        return None
    value = item.get(CHECKPOINT)
    if not isinstance(value, str):
        raise BackendError(f"checkpoint item {item.get(PK)!r}/{item.get(SK)!r} is damaged")
    return value


def rebuild_progress_key(type_name: str, projection: str) -> Key:
    """Where a rebuild of a type's projection keeps its progress: every rebuild of a type under
    one partition key, so that an erasure finds the ones that name a stream of it."""
    return (f"_rebuild#{type_name}", projection)


def legacy_rebuild_progress_key(type_name: str, projection: str) -> Key:
    """Where rebuilds kept their progress before :func:`rebuild_progress_key`."""
    return (f"_rebuild#{type_name}#{projection}", "c")


def progress_names(item: Mapping[str, Value], pk: str) -> bool:
    """Whether a rebuild's progress item names the stream ``pk`` (its position is that stream's
    head)."""
    value = item.get(CHECKPOINT)
    return isinstance(value, str) and json.dumps(pk, ensure_ascii=False) in value


def secret_item(key: Key, secret: bytes) -> Item:
    return {PK: key[0], SK: key[1], SECRET: secret}


def secret_value(item: Mapping[str, Value] | None) -> bytes | None:
    value = None if item is None else item.get(SECRET)
    return value if isinstance(value, bytes) else None


def number(item: Mapping[str, Value], name: str) -> int:
    """An integer attribute every item of its kind has; :class:`BackendError` if missing."""
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BackendError(f"stored item {item.get(PK)!r}/{item.get(SK)!r} lacks {name!r}")
    return value


def _int_or(item: Mapping[str, Value], name: str, default: int) -> int:
    return number(item, name) if name in item else default
