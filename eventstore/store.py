"""The store facade: append, read and replay versions on any backend."""

from __future__ import annotations

import contextlib
import enum
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, TypeVar, cast

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError
from typing_extensions import Unpack

from eventstore import codec
from eventstore.backends.base import (
    MAX_WRITE_ACTIONS,
    Backend,
    Condition,
    ConditionFailed,
    Delete,
    Item,
    Put,
    SortCondition,
    Update,
    Value,
    Write,
)
from eventstore.errors import (
    BackendError,
    ConcurrencyError,
    CorruptRecord,
    InvalidInput,
    InvalidState,
    ProjectionError,
    StreamNotFound,
    VersionNotFound,
    WrongType,
)
from eventstore.ids import (
    issued_at,
    new_resource_id,
    new_version_id,
    parse_version_id,
    recorded_at,
)
from eventstore.indexing import IndexPlan, IndexProjection, index_partition
from eventstore.keys import (
    HEAD_SK,
    KEYFRAME_INTERVAL,
    MAX_VERSION,
    VERSION_PREFIX,
    check_resource_id,
    keyframe_of,
    keyframe_sk,
    parse_sk,
    split_pk,
    stream_pk,
    version_sk,
)
from eventstore.querying import (
    CursorSigner,
    QueryPage,
    ReplayPage,
    ReplayPosition,
    SortKey,
    check_flag,
    check_limit,
    check_part,
    query_context,
    sort_condition,
    start_key,
)
from eventstore.resource import Resource, Version, check_resource_class, resource_class

R = TypeVar("R", bound=Resource)


class Expect(enum.Enum):
    """Sentinels for ``expected_version``."""

    NO_STREAM = "NO_STREAM"
    ANY = "ANY"

    def __repr__(self) -> str:
        return self.value


#: ``expected_version=NO_STREAM``: the stream must not exist yet (the default).
NO_STREAM: Final = Expect.NO_STREAM
#: ``expected_version=ANY``: append whatever the stream's version (reads the head first).
ANY: Final = Expect.ANY

#: Longest event name, in characters.
MAX_EVENT_LENGTH = 256
#: How often an append retries internally (expected_version=ANY races, retention bound or clock
#: corrections) before giving up with a ConcurrencyError.
_MAX_ATTEMPTS = 20
# Trimming deletes ride in the append's own atomic write; keep room for the puts and the head.
_TRIM_BUDGET = MAX_WRITE_ACTIONS - 3


@dataclass
class _Known:
    """Facts about the head learnt from a refused write, used to plan the next attempt."""

    lo: int | None = None
    not_before_ms: int = 0


class _KeyframeCache:
    """Recently written or read keyframe JSON, so an append can store a delta without a read.

    Bounded by total bytes; least recently used entries go first."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._used = 0
        self._entries: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, pk: str, base: int) -> bytes | None:
        with self._lock:
            entry = self._entries.get(pk)
            if entry is None or entry[0] != base:
                return None
            self._entries.move_to_end(pk)
            return entry[1]

    def put(self, pk: str, base: int, data: bytes) -> None:
        if len(data) > self._budget:
            return
        with self._lock:
            old = self._entries.pop(pk, None)
            if old is not None:
                self._used -= len(old[1])
            self._entries[pk] = (base, data)
            self._used += len(data)
            while self._used > self._budget:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._used -= len(dropped)


class EventStore:
    """Versioned resources on a backend. Safe to share between threads.

    Open one with :func:`eventstore.open`. ``projections`` are written onto each stream's head in
    the same atomic write as every new version. ``cursor_secret`` signs query cursors (default: a
    random secret kept in the table, shared by every process using it).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        projections: Iterable[IndexProjection] = (),
        compress_threshold: int = codec.DEFAULT_THRESHOLD,
        max_state_size: int = codec.DEFAULT_MAX_SIZE,
        keyframe_cache_bytes: int = 32 * 1024 * 1024,
        cursor_secret: bytes | None = None,
    ) -> None:
        self.backend = backend
        self.indexes = IndexPlan(projections)
        self._threshold = compress_threshold
        self._max_state = max_state_size
        self._keyframes = _KeyframeCache(keyframe_cache_bytes)
        if cursor_secret is not None:
            self.set_cursor_secret(cursor_secret)

    # -- lifecycle -------------------------------------------------------------------------

    def create_table(self) -> None:
        """Create the table and its indexes if missing (idempotent; nothing to do on SQLite)."""
        self.backend.create_table()

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- append ----------------------------------------------------------------------------

    def append(
        self,
        state: R,
        *,
        resource_id: str | None = None,
        expected_version: int | Expect = NO_STREAM,
        event: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Version[R]:
        """Append ``state`` as the next version of its stream and return that version.

        Without ``resource_id`` a new stream is created with a new ULID id. ``expected_version``
        is the version the stream must be at (an int >= 1), ``NO_STREAM`` (must not exist; the
        default) or ``ANY`` (no check; costs one read of the head first). On a mismatch raises
        :class:`ConcurrencyError` with ``expected`` and ``actual``; nothing is written.

        One atomic write carries the new version, the head with its projection keys, and the
        removal of versions beyond ``max_versions``. Bad input (an invalid state, metadata that
        is not JSON, a bad id) raises before anything is sent.
        """
        if not isinstance(state, Resource):
            raise WrongType(f"append() takes a Resource instance, got {type(state).__name__}")
        cls = type(state)
        type_name = cls.resource_type
        rid = new_resource_id() if resource_id is None else check_resource_id(resource_id)
        expected = _check_expected(expected_version)
        if event is not None and (
            not isinstance(event, str) or not 0 < len(event) <= MAX_EVENT_LENGTH
        ):
            raise InvalidInput(f"event must be a str of 1 to {MAX_EVENT_LENGTH} characters")
        meta = _metadata_json(metadata)
        data, clean = self._serialize(state)
        index_set, index_remove = self.indexes.head_attributes(type_name, clean)
        pk = stream_pk(type_name, rid)
        known = _Known()
        for _ in range(_MAX_ATTEMPTS):
            at = expected
            if at is ANY:
                head = self.backend.get([(pk, HEAD_SK)])[0]
                at = NO_STREAM if head is None else _int(head, "v")
            assert at is not ANY
            number = 1 if at is NO_STREAM else int(at) + 1
            if number > MAX_VERSION:
                raise InvalidInput(f"{type_name} {rid!r} has reached the last version number")
            writes, vid, follow_up = self._plan(
                cls, pk, number, data, event, meta, index_set, index_remove, known
            )
            try:
                self.backend.write(writes, token=vid)
            except ConditionFailed as e:
                current = e.item
                actual = 0 if current is None else _int(current, "v")
                if at is NO_STREAM or actual != at:
                    if expected is ANY:
                        continue
                    raise ConcurrencyError(type_name, rid, expected, actual) from None
                # Same version, so the refusal came from the retention bound or the id order:
                # replan with what the head says.
                assert current is not None
                known.lo = _int(current, "lo")
                known.not_before_ms = parse_version_id(str(current["id"]))[1] + 1
                continue
            if follow_up is not None:
                self._finish_trim(pk, *follow_up)
            if number == keyframe_of(number, KEYFRAME_INTERVAL):
                self._keyframes.put(pk, number, data)
            return Version(
                resource_type=type_name,
                resource_id=rid,
                version=number,
                version_id=vid,
                recorded_at=issued_at(vid),
                state=clean,
                event=event,
                metadata=MappingProxyType(json.loads(meta) if meta else {}),
            )
        raise ConcurrencyError(type_name, rid, expected, -1)

    def _serialize(self, state: R) -> tuple[bytes, R]:
        try:
            data = state.__pydantic_serializer__.to_json(state)
        except (PydanticSerializationError, ValueError, TypeError) as e:
            raise InvalidState(f"{type(state).__name__} cannot be serialised: {e}") from e
        if (b"NaN" in data or b"Infinity" in data) and _has_non_finite(data):
            raise InvalidState(f"{type(state).__name__} holds a NaN or infinite float")
        if len(data) > self._max_state:
            raise InvalidState(f"state is {len(data)} bytes of JSON, over {self._max_state}")
        # Validating what will be stored proves it can be read back (and catches invalid values
        # assigned after construction).
        try:
            clean = type(state).__pydantic_validator__.validate_json(data)
        except ValidationError as e:
            raise InvalidState(
                f"{type(state).__name__} does not validate: {e}", e.errors(include_url=False)
            ) from e
        return data, clean

    def _plan(
        self,
        cls: type[Resource],
        pk: str,
        number: int,
        data: bytes,
        event: str | None,
        meta: str | None,
        index_set: dict[str, Value],
        index_remove: frozenset[str],
        known: _Known,
    ) -> tuple[list[Write], str, tuple[int, int] | None]:
        vid = new_version_id(number, not_before_ms=known.not_before_ms)
        base = keyframe_of(number, KEYFRAME_INTERVAL)
        writes: list[Write] = []
        item: Item = {"pk": pk, "sk": version_sk(number), "id": vid}
        if event is not None:
            item["e"] = event
        if meta:
            item["m"] = meta
        if number == base:
            writes.append(
                Put(
                    {
                        "pk": pk,
                        "sk": keyframe_sk(number),
                        "s": codec.encode(data, threshold=self._threshold),
                    }
                )
            )
            item["s"] = codec.encode_delta(data, data)
            item["b"] = number
        else:
            keyframe = self._keyframes.get(pk, base)
            delta = codec.encode_delta(data, keyframe) if keyframe is not None else None
            if delta is not None and len(delta) * 4 <= len(data):
                # A delta this small always beats compressing the whole state: skip that work.
                item["s"], item["b"] = delta, base
            else:
                full = codec.encode(data, threshold=self._threshold)
                if delta is not None and len(delta) < len(full):
                    item["s"], item["b"] = delta, base
                else:
                    item["s"] = full
        writes.append(Put(item))

        head_set: dict[str, Value] = {"v": number, "id": vid, **index_set}
        remove = index_remove
        limit = cls.max_versions
        if number == 1:
            head_set.update(lo=1, gsi0pk=cls.resource_type, gsi0sk=vid)
            condition = Condition(exists=False)
            trim: tuple[list[Write], int] = ([], 1)
            follow_up = None
        else:
            equals: dict[str, Value] = {"v": number - 1}
            follow_up = None
            trim = ([], 0)
            if limit is not None:
                old_lo = known.lo if known.lo is not None else max(1, number - limit)
                new_lo = max(1, number - limit + 1)
                equals["lo"] = old_lo
                trim = _trim_writes(pk, old_lo, new_lo, _TRIM_BUDGET)
                head_set["lo"] = trim[1]
                if trim[1] < new_lo:
                    follow_up = (trim[1], new_lo)
            condition = Condition(equals=equals, less_than={"id": vid})
        writes.extend(trim[0])
        writes.append(Update((pk, HEAD_SK), set=head_set, remove=remove, condition=condition))
        return writes, vid, follow_up

    def _finish_trim(self, pk: str, lo: int, target: int) -> None:
        # Only when max_versions was lowered by more than one write can carry: the rest of the
        # old versions go in further atomic writes, each moving the head's bound along.
        while lo < target:
            deletes, reached = _trim_writes(pk, lo, target, MAX_WRITE_ACTIONS - 1)
            bound = Update(
                (pk, HEAD_SK), set={"lo": reached}, condition=Condition(equals={"lo": lo})
            )
            try:
                self.backend.write([*deletes, bound])
            except ConditionFailed:
                return  # another writer moved the bound; it carries on from there
            lo = reached

    # -- reads -----------------------------------------------------------------------------

    def read_version(
        self,
        resource_type: type[R],
        resource_id: str,
        version: int | str | None = None,
        *,
        consistent: bool = True,
    ) -> Version[R]:
        """One version of a stream: by number, by version id, or the latest when omitted.

        One request in each case. Raises :class:`StreamNotFound` if the stream does not exist and
        :class:`VersionNotFound` (naming the versions still held) if the version is not there."""
        cls = check_resource_class(resource_type)
        rid = check_resource_id(resource_id)
        pk = stream_pk(cls.resource_type, rid)
        if version is None:
            return self._read_latest(cls, pk, consistent)
        if isinstance(version, bool) or not isinstance(version, (int, str)):
            raise InvalidInput(f"version must be an int, a version id or None, got {version!r}")
        if isinstance(version, str):
            number = parse_version_id(version)[0]
        else:
            number = version
            if not 1 <= number <= MAX_VERSION:
                raise InvalidInput(f"version numbers start at 1, got {number}")
        base = keyframe_of(number, KEYFRAME_INTERVAL)
        item, keyframe = self.backend.get(
            [(pk, version_sk(number)), (pk, keyframe_sk(base))], consistent=consistent
        )
        if item is None or (isinstance(version, str) and item.get("id") != version):
            raise self._missing(cls, pk, version)
        return self._decode(cls, pk, number, item, {base: keyframe} if keyframe else {})

    def _read_latest(self, cls: type[R], pk: str, consistent: bool) -> Version[R]:
        page = self.backend.query(
            pk,
            sk=SortCondition("begins_with", VERSION_PREFIX),
            forward=False,
            limit=2,  # the current group's keyframe, then the latest version
            consistent=consistent,
        )
        keyframes: dict[int, Item] = {}
        top: tuple[int, Item] | None = None
        for item in page.items:
            parsed = parse_sk(str(item["sk"]))
            if parsed is None:
                continue
            number, is_keyframe = parsed
            if is_keyframe:
                keyframes[number] = item
            elif top is None:
                top = (number, item)
        if top is None:
            raise StreamNotFound(*split_pk(pk))
        known: dict[int, bytes] = {}
        for base, keyframe in keyframes.items():
            known[base] = self._keyframe_json(pk, base, keyframe)
            # Cached so that the append that usually follows can store a delta without a read.
            self._keyframes.put(pk, base, known[base])
        return self._decode(cls, pk, top[0], top[1], keyframes, known)

    def read_stream(
        self,
        resource_type: type[R],
        resource_id: str,
        *,
        start: int | None = None,
        stop: int | None = None,
        reverse: bool = False,
        consistent: bool = True,
    ) -> Iterator[Version[R]]:
        """The versions ``start <= version < stop`` of a stream (default: all it holds), oldest
        first or, with ``reverse``, newest first. Lazy: reads one page (up to 1 MB) at a time.
        Raises :class:`StreamNotFound` on iteration if the stream does not exist."""
        cls = check_resource_class(resource_type)
        rid = check_resource_id(resource_id)
        for name, bound in (("start", start), ("stop", stop)):
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int) or bound < 1
            ):
                raise InvalidInput(f"{name} must be a version number >= 1, got {bound!r}")
        return self._stream(
            cls, stream_pk(cls.resource_type, rid), start or 1, stop, reverse, consistent
        )

    def _stream(
        self,
        cls: type[R],
        pk: str,
        lower: int,
        stop: int | None,
        reverse: bool,
        consistent: bool,
    ) -> Iterator[Version[R]]:
        if stop is not None and stop <= lower:
            if self.backend.get([(pk, HEAD_SK)], consistent=consistent)[0] is None:
                raise StreamNotFound(*split_pk(pk))
            return
        # A group's keyframe sorts just above its last version: the range reaches up to the
        # keyframe of the last group it touches.
        low_sk = version_sk(lower)
        high_sk = keyframe_sk(keyframe_of(stop - 1)) if stop is not None else VERSION_PREFIX + "~"
        keyframes: dict[int, Item] = {}
        pending: list[tuple[int, Item]] = []
        seen = False
        start: Item | None = None
        while True:
            page = self.backend.query(
                pk,
                sk=SortCondition("between", low_sk, high_sk),
                forward=not reverse,
                start=start,
                consistent=consistent,
            )
            for item in page.items:
                parsed = parse_sk(str(item["sk"]))
                if parsed is None:
                    continue
                number, is_keyframe = parsed
                if is_keyframe:
                    # Going backwards a keyframe comes before its group's versions; going
                    # forwards after them, and the pending versions are the ones waiting for it.
                    keyframes = {number: item}
                    for waiting in pending:
                        yield self._decode(cls, pk, waiting[0], waiting[1], keyframes)
                    pending.clear()
                    continue
                if number < lower or (stop is not None and number >= stop):
                    continue
                seen = True
                blob = item.get("s")
                if not reverse and (
                    pending or (isinstance(blob, bytes) and codec.needs_base(blob))
                ):
                    pending.append((number, item))
                else:
                    yield self._decode(cls, pk, number, item, keyframes)
            if page.last_key is None:
                break
            start = page.last_key
        for waiting in pending:
            yield self._decode(cls, pk, waiting[0], waiting[1], keyframes)
        if not seen and self.backend.get([(pk, HEAD_SK)], consistent=consistent)[0] is None:
            raise StreamNotFound(*split_pk(pk))

    def replay(
        self, resource_type: type[R] | None = None, *, after: str | None = None
    ) -> Iterator[Version[Any]]:
        """Every retained version of every stream of ``resource_type`` (or of every Resource
        subclass defined in this process), lazily and in constant memory.

        Order: type by type (by type name), streams in creation order (the order of
        :meth:`heads`), each stream oldest version first. ``after`` is a checkpoint from
        :meth:`replay_pages`: the replay continues right after the version it names. A resumed
        replay sees the versions appended since to the stream it stopped in and to the streams
        after it, not those appended to streams it had already passed; versions trimmed in the
        meantime are gone."""
        pages = self.replay_pages(resource_type, after=after)
        return (version for page in pages for version in page.items)

    def replay_pages(
        self,
        resource_type: type[R] | None = None,
        *,
        after: str | None = None,
        page_size: int = 100,
    ) -> Iterator[ReplayPage]:
        """:meth:`replay` in pages of at most ``page_size`` versions, each with the checkpoint
        right after its last version (pass it as ``after=`` to resume there)."""
        if resource_type is not None:
            classes: list[type[Resource]] = [check_resource_class(resource_type)]
        else:
            classes = []
            for name in self._type_names():
                found = resource_class(name)
                if found is not None:
                    classes.append(found)
        position = None if after is None else ReplayPosition.decode(after)
        if position is not None:
            names = [cls.resource_type for cls in classes]
            if position.type_name not in names:
                raise InvalidInput(
                    f"checkpoint is in {position.type_name}, which this replay does not cover"
                )
            classes = classes[names.index(position.type_name) :]
        size = check_limit(page_size)
        return self._replay(classes, position, size)

    def _replay(
        self, classes: list[type[Resource]], position: ReplayPosition | None, size: int
    ) -> Iterator[ReplayPage]:
        batch: list[Version[Any]] = []
        for version, mark in self._replay_marked(classes, position):
            batch.append(version)
            if len(batch) >= size:
                yield ReplayPage(batch, mark.encode())
                batch = []
        if batch:
            yield ReplayPage(batch, mark.encode())

    def _replay_marked(
        self, classes: list[type[Resource]], position: ReplayPosition | None
    ) -> Iterator[tuple[Version[Any], ReplayPosition]]:
        for cls in classes:
            type_name = cls.resource_type
            start: Item | None = None
            if position is not None and position.type_name == type_name:
                # First the rest of the stream the checkpoint is in, then the streams after it.
                with contextlib.suppress(StreamNotFound):
                    for version in self._stream(
                        cls, position.pk, position.version + 1, None, False, True
                    ):
                        yield (
                            version,
                            ReplayPosition(
                                type_name, position.listed, position.pk, version.version
                            ),
                        )
                start = {
                    "pk": position.pk,
                    "sk": HEAD_SK,
                    "gsi0pk": type_name,
                    "gsi0sk": position.listed,
                }
            while True:
                page = self.backend.query(type_name, index="gsi0", start=start)
                for head in page.items:
                    pk, listed = str(head["pk"]), str(head["gsi0sk"])
                    for version in self._stream(cls, pk, 1, None, False, True):
                        yield version, ReplayPosition(type_name, listed, pk, version.version)
                if page.last_key is None:
                    break
                start = page.last_key

    def heads(self, resource_type: type[Resource], *, reverse: bool = False) -> Iterator[Item]:
        """The head items of every stream of a type, in creation order (newest first with
        ``reverse``), read lazily from the store's listing index."""
        cls = check_resource_class(resource_type)
        start: Item | None = None
        while True:
            page = self.backend.query(
                cls.resource_type, index="gsi0", forward=not reverse, start=start
            )
            yield from page.items
            if page.last_key is None:
                return
            start = page.last_key

    def _type_names(self) -> list[str]:
        from eventstore.resource import _registry

        return sorted(_registry)

    # -- decoding --------------------------------------------------------------------------

    def _keyframe_json(self, pk: str, number: int, item: Item) -> bytes:
        blob = item.get("s")
        if not isinstance(blob, bytes):
            raise CorruptRecord(*split_pk(pk), number, "keyframe without state bytes")
        try:
            return codec.decode(blob, max_size=self._max_state)
        except codec.CodecError as e:
            raise CorruptRecord(*split_pk(pk), number, f"keyframe: {e}") from e

    def _decode(
        self,
        cls: type[R],
        pk: str,
        number: int,
        item: Item,
        keyframes: Mapping[int, Item],
        known: Mapping[int, bytes] | None = None,
    ) -> Version[R]:
        """Decode a version item; ``keyframes`` are keyframe items at hand, ``known`` keyframe
        JSON already decoded. A keyframe in neither is read by key."""
        type_name, rid = split_pk(pk)
        blob = item.get("s")
        vid = item.get("id")
        if not isinstance(blob, bytes) or not isinstance(vid, str):
            raise CorruptRecord(type_name, rid, number, "missing state or version id")
        base_json: bytes | None = None
        if codec.needs_base(blob):
            base = item.get("b")
            if not isinstance(base, int):
                raise CorruptRecord(type_name, rid, number, "delta without a keyframe number")
            base_json = known.get(base) if known else None
            if base_json is None:
                keyframe = keyframes.get(base)
                if keyframe is None:
                    keyframe = self.backend.get([(pk, keyframe_sk(base))])[0]
                if keyframe is None:
                    raise CorruptRecord(type_name, rid, number, f"keyframe {base} is missing")
                base_json = self._keyframe_json(pk, base, keyframe)
        try:
            data = codec.decode(blob, base_json, max_size=self._max_state)
            state = cls.model_validate_json(data)
        except codec.CodecError as e:
            raise CorruptRecord(type_name, rid, number, str(e)) from e
        except ValidationError as e:
            raise CorruptRecord(
                type_name, rid, number, f"state does not validate as {cls.__name__}: {e}"
            ) from e
        meta = item.get("m", "{}")
        try:
            if not isinstance(meta, str):
                raise ValueError("metadata is not text")
            metadata = json.loads(meta)
            if not isinstance(metadata, dict):
                raise ValueError("metadata is not an object")
            moment = recorded_at(vid)
        except (ValueError, InvalidInput, RecursionError) as e:
            raise CorruptRecord(
                type_name, rid, number, f"bad metadata or version id: {e!s:.200}"
            ) from e
        event = item.get("e")
        return Version(
            resource_type=type_name,
            resource_id=rid,
            version=number,
            version_id=vid,
            recorded_at=moment,
            state=state,
            event=event if isinstance(event, str) else None,
            metadata=MappingProxyType(metadata),
        )

    def _missing(self, cls: type[Resource], pk: str, requested: int | str) -> Exception:
        head = self.backend.get([(pk, HEAD_SK)])[0]
        type_name, rid = split_pk(pk)
        if head is None:
            return StreamNotFound(type_name, rid)
        return VersionNotFound(type_name, rid, requested, (_int(head, "lo"), _int(head, "v")))

    # -- queries ---------------------------------------------------------------------------

    def query(
        self,
        projection: type[Any] | IndexProjection,
        partition: str,
        *,
        reverse: bool = False,
        limit: int = 50,
        cursor: str | None = None,
        consistent: bool = False,
        **sort: Unpack[SortKey],
    ) -> QueryPage[Any]:
        """One page of the resources a projection puts in ``partition``, in sort-key order
        (``reverse``: descending), as their latest versions.

        ``projection`` is a projection declared on this store (its class or an instance). At
        most one sort-key condition: ``equals``, ``begins_with``, ``between=(low, high)``
        (inclusive), ``lt``, ``lte``, ``gt``, ``gte``. ``cursor`` is the ``cursor`` of the
        previous page of the same query (any other raises :class:`InvalidCursor`).

        Two requests per page (the index query, then one batch read of the versions it names;
        pages over 50 items take one more read per 50). Each item is the version the index
        entry was written with, so it matches the condition; on DynamoDB the index itself lags
        the table by a moment, so a page may miss a very recent change or hold the version just
        before it. If that version has been trimmed since, the stream's latest version is
        returned instead, even though it may no longer match. ``consistent`` makes the version
        reads strongly consistent (the index query never is, on DynamoDB)."""
        declared = self._declared_projection(projection)
        type_name = declared.resource_class.resource_type
        value = check_part("partition", partition)
        sk = sort_condition(sort)
        backwards = check_flag("reverse", reverse)
        context = query_context(
            "query", type_name, declared.name, declared.index, value, sk, backwards
        )
        return self._query_heads(
            declared.resource_class,
            declared.index,
            index_partition(type_name, declared.name, value),
            sk,
            backwards,
            limit,
            cursor,
            consistent,
            context,
        )

    def list_resources(
        self,
        resource_type: type[R],
        *,
        newest_first: bool = True,
        limit: int = 50,
        cursor: str | None = None,
        consistent: bool = False,
    ) -> QueryPage[R]:
        """One page of the resources of a type by creation time (newest first by default), as
        their latest versions, with the same paging, cost and consistency as :meth:`query`."""
        cls = check_resource_class(resource_type)
        backwards = check_flag("newest_first", newest_first)
        context = query_context(
            "list", cls.resource_type, None, "gsi0", cls.resource_type, None, backwards
        )
        return self._query_heads(
            cls, "gsi0", cls.resource_type, None, backwards, limit, cursor, consistent, context
        )

    def set_cursor_secret(self, secret: bytes) -> None:
        """Sign query cursors with ``secret`` (16 bytes or more) instead of the random secret the
        table keeps for this. Every process that serves the same clients needs the same one."""
        self._cursors = CursorSigner(self.backend, secret)

    def _cursor_signer(self) -> CursorSigner:
        signer: CursorSigner | None = getattr(self, "_cursors", None)
        if signer is None:
            signer = self._cursors = CursorSigner(self.backend)
        return signer

    def _declared_projection(self, projection: object) -> IndexProjection:
        cls: object = getattr(projection, "resource_class", None)
        name: object = getattr(projection, "name", None)
        if not isinstance(cls, type) or not isinstance(name, str):
            raise WrongType(f"expected a projection (class or instance), got {projection!r}")
        type_name = check_resource_class(cast("type[Resource]", cls)).resource_type
        declared = self.indexes.find(type_name, name)
        if declared is None:
            raise ProjectionError(
                f"projection {name!r} of {type_name} is not declared on this store; "
                "open the store with projections=[...] including it"
            )
        return declared

    def _query_heads(
        self,
        cls: type[R],
        index: str,
        index_pk: str,
        sk: SortCondition | None,
        reverse: bool,
        limit: int,
        cursor: str | None,
        consistent: bool,
        context: bytes,
    ) -> QueryPage[R]:
        size = check_limit(limit)
        check_flag("consistent", consistent)
        signer = self._cursor_signer()
        start = None if cursor is None else signer.verify(context, cursor)
        # One item more than asked tells whether a next page exists, so that a cursor is only
        # handed out when there is something after it.
        page = self.backend.query(
            index_pk, sk=sk, index=index, forward=not reverse, limit=size + 1, start=start
        )
        heads = page.items
        after: Item | None = page.last_key
        if len(heads) > size:
            heads = heads[:size]
            after = start_key(heads[-1], index)
        versions = self._latest_versions(cls, heads, consistent)
        return QueryPage(versions, None if after is None else signer.sign(context, after))

    def _latest_versions(
        self, cls: type[R], heads: list[Item], consistent: bool
    ) -> list[Version[R]]:
        """The versions index entries name, read by key in one batch (version and keyframe)."""
        keys: list[tuple[str, str]] = []
        for head in heads:
            pk, number = str(head["pk"]), _int(head, "v")
            keys += [
                (pk, version_sk(number)),
                (pk, keyframe_sk(keyframe_of(number, KEYFRAME_INTERVAL))),
            ]
        found = self.backend.get(keys, consistent=consistent) if keys else []
        versions: list[Version[R]] = []
        for position, head in enumerate(heads):
            pk, number = str(head["pk"]), _int(head, "v")
            item, keyframe = found[2 * position], found[2 * position + 1]
            if item is None:
                # Trimmed since the index entry was read, or not yet visible to an eventually
                # consistent read: the latest version stands in for it.
                with contextlib.suppress(StreamNotFound):
                    versions.append(self._read_latest(cls, pk, True))
                continue
            base = keyframe_of(number, KEYFRAME_INTERVAL)
            versions.append(
                self._decode(cls, pk, number, item, {base: keyframe} if keyframe else {})
            )
        return versions


def _trim_writes(pk: str, lo: int, target: int, budget: int) -> tuple[list[Write], int]:
    """Deletes that move a stream's lowest retained version from ``lo`` towards ``target``, at most
    ``budget`` of them, and the bound reached. A keyframe goes with the last version that needs it."""
    writes: list[Write] = []
    while lo < target and len(writes) + 2 <= budget:
        writes.append(Delete((pk, version_sk(lo))))
        if keyframe_of(lo + 1, KEYFRAME_INTERVAL) != keyframe_of(lo, KEYFRAME_INTERVAL):
            writes.append(Delete((pk, keyframe_sk(keyframe_of(lo, KEYFRAME_INTERVAL)))))
        lo += 1
    return writes, lo


def _has_non_finite(data: bytes) -> bool:
    """Whether JSON text holds a NaN or infinity token (outside strings)."""

    def refuse(token: str) -> Any:
        raise _NonFinite(token)

    try:
        json.loads(data, parse_constant=refuse)
    except _NonFinite:
        return True
    return False


class _NonFinite(Exception):
    pass


def _check_expected(expected: object) -> int | Expect:
    if isinstance(expected, Expect):
        return expected
    if isinstance(expected, bool) or not isinstance(expected, int):
        raise InvalidInput(
            f"expected_version must be an int >= 1, NO_STREAM or ANY, got {expected!r}"
        )
    if expected < 1:
        raise InvalidInput(
            f"expected_version must be >= 1 (use NO_STREAM for a new stream), got {expected}"
        )
    return expected


def _metadata_json(metadata: Mapping[str, Any] | None) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise WrongType(f"metadata must be a mapping, got {type(metadata).__name__}")
    if not all(isinstance(k, str) for k in metadata):
        raise WrongType("metadata keys must be strings")
    try:
        text = json.dumps(
            dict(metadata), allow_nan=False, separators=(",", ":"), ensure_ascii=False
        )
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidInput(f"metadata must be JSON-serialisable: {e!s:.200}") from e
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidInput("metadata contains a lone surrogate character") from e
    if json.loads(text) != metadata:
        # json.dumps quietly turns int keys into strings and tuples into lists; refuse rather
        # than store something that reads back different.
        raise InvalidInput("metadata must be plain JSON: str keys, lists, numbers, str, bool, None")
    return text if metadata else None


def _int(item: Mapping[str, Value], name: str) -> int:
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BackendError(f"stored item {item.get('pk')!r}/{item.get('sk')!r} lacks {name!r}")
    return value
