"""The store facade: checks arguments and hands the work to ``writing`` (appends), ``reading``
(versions, streams, replay) and ``querying`` (index queries)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

from eventstore import codec, records
from eventstore.backends.base import Backend
from eventstore.backoff import Backoff
from eventstore.cursors import CursorSigner, ReplayPosition
from eventstore.erasing import ErasureReport, erase, purge_stream
from eventstore.errors import ConcurrencyError, InvalidInput, StreamNotFound, WrongType
from eventstore.following import Following
from eventstore.ids import parse_version_id
from eventstore.indexing import IndexPlan, IndexProjection
from eventstore.inputs import (
    ANY,
    NO_STREAM,
    Append,
    Checkpoint,
    Expect,
    check_event,
    check_expected,
    metadata_json,
    serialize,
)
from eventstore.keyframes import KeyframeCache
from eventstore.keys import MAX_VERSION, check_resource_id, split_pk, stream_pk
from eventstore.positions import FeedClock
from eventstore.querying import Querying, check_limit
from eventstore.reading import Reader, ReplayPage
from eventstore.repository import Repository
from eventstore.resource import Resource, Version, check_resource_class, registered_types
from eventstore.writing import Prepared, Writer

__all__ = ["ANY", "NO_STREAM", "Append", "Checkpoint", "EventStore", "Expect"]

R = TypeVar("R", bound=Resource)


class EventStore(Following, Querying):
    """Versioned resources on a backend. Safe to share between threads.

    Open one with :func:`eventstore.open`. ``projections`` are written onto each stream's head in
    the same atomic write as every new version. ``cursor_secret`` signs query cursors (default: a
    random secret kept in the table, shared by every process using it). ``contention_budget`` is
    how many seconds an ``expected_version=ANY`` append keeps retrying lost races.
    ``owns_backend``: whether :meth:`close` closes the backend (``open`` sets it; a store made
    on another store's backend, ``EventStore(store.backend, ...)``, leaves it to that store).
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
        contention_budget: float = 10.0,
        owns_backend: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self.owns_backend = owns_backend
        self.indexes = IndexPlan(projections)
        self._max_state = max_state_size
        #: Decodes stored versions; part of the seam the ``projections`` package uses.
        self.reader = Reader(
            backend, KeyframeCache(keyframe_cache_bytes), max_state_size, clock=clock
        )
        self.clock = FeedClock(backend)
        self._writer = Writer(
            backend,
            self.reader,
            self.clock,
            threshold=compress_threshold,
            contention_budget=contention_budget,
        )
        self._cursors = CursorSigner(backend, cursor_secret)

    def create_table(self, *, feed_partitions: int = 1) -> None:
        """Create the table and its indexes if missing, and record its change feed's number of
        partitions (idempotent; a table keeps the number it was made with). ``feed_partitions=0``
        makes a table without a feed: appends keep the cost they had before the feed."""
        self.backend.create_table()
        self.clock.configure(feed_partitions)

    def close(self) -> None:
        """Close the backend if this store opened it (:func:`eventstore.open` does); a store
        made on a backend it was given leaves it open for its other users."""
        if self.owns_backend:
            self.backend.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        default) or ``ANY`` (no check: reads the head first, and retries lost races with backoff
        for up to ``contention_budget`` seconds, then :class:`ContentionError`). On a mismatch
        raises :class:`ConcurrencyError` with ``expected`` and ``actual``; nothing is written.

        One atomic write carries the new version, the head with its projection keys, and the
        removal of versions beyond ``max_versions``. Bad input (an invalid state, a value JSON
        would not give back exactly, metadata that is not JSON, a bad id) raises before anything
        is sent.
        """
        one = Append(
            state,
            resource_id=resource_id,  # type: ignore[arg-type]
            expected_version=expected_version,
            event=event,
            metadata=metadata,
        )
        return cast("Version[R]", self.append_many([one])[0])

    def append_many(
        self, appends: Sequence[Append[Any]], *, checkpoint: Checkpoint | None = None
    ) -> list[Version[Any]]:
        """Apply every :class:`Append` in one atomic write (one request on DynamoDB, one
        transaction on SQLite), or none of them; return the new versions in the same order.

        A stream may appear several times: its appends get consecutive versions, each
        ``expected_version`` checked in order (the second append to a stream at version 3 expects
        4). Projection keys, trimming and keyframes ride in the same write. A conflict on any
        stream raises :class:`ConcurrencyError` listing every stream that conflicted
        (``conflicts``), nothing written. The limits of one atomic write (DynamoDB's 100 actions
        and 4 MB, counting versions, keyframes, heads and trims; 400 KB per item) are checked
        before anything is sent (:class:`CommitTooLarge`, :class:`ItemTooLarge`). A
        ``checkpoint`` moves in the same write (a projector's exactly-once progress); if it is
        no longer at its ``previous`` position, nothing is written (:class:`ConcurrencyError`)."""
        if not isinstance(appends, Sequence) or not appends:
            raise WrongType("append_many() takes a non-empty sequence of Append")
        prepared: list[Prepared] = []
        for one in appends:
            if not isinstance(one, Append):
                raise WrongType(f"append_many() takes Append items, got {type(one).__name__}")
            cls = type(one.state)
            data, clean = serialize(one.state, self._max_state)
            index_set, index_remove = self.indexes.head_attributes(cls.resource_type, clean)
            prepared.append(
                Prepared(
                    cls,
                    one.resource_id,
                    stream_pk(cls.resource_type, one.resource_id),
                    one.expected_version,
                    data,
                    clean,
                    one.event,
                    one.metadata_json,
                    index_set,
                    index_remove,
                )
            )
        if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
            raise WrongType(f"checkpoint must be a Checkpoint, got {type(checkpoint).__name__}")
        return self._writer.commit(prepared, checkpoint)

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
        :class:`VersionNotFound` (naming the versions still held) if the version is not there,
        also when another writer trims it while it is being read."""
        cls = check_resource_class(resource_type)
        pk = stream_pk(cls.resource_type, check_resource_id(resource_id))
        if version is None:
            return self.reader.latest(cls, pk, consistent=consistent)
        if isinstance(version, bool) or not isinstance(version, (int, str)):
            raise InvalidInput(f"version must be an int, a version id or None, got {version!r}")
        if isinstance(version, str):
            number, version_id = parse_version_id(version)[0], version
        else:
            number, version_id = version, None
            if not 1 <= number <= MAX_VERSION:
                raise InvalidInput(f"version numbers start at 1, got {number}")
        return self.reader.by_number(cls, pk, number, version_id, consistent=consistent)

    def delete(
        self,
        resource_type: type[R],
        resource_id: str,
        *,
        expected_version: int | Expect = ANY,
        event: str | None = "deleted",
        metadata: Mapping[str, Any] | None = None,
    ) -> Version[R]:
        """End a resource: append a last version marked ``deleted`` (carrying the last state, so
        the feed and subscribers learn of it), and take the head out of the listing and every
        projection. Afterwards reading the latest raises :class:`StreamNotFound`; the history
        stays readable by number and in :meth:`read_stream` until trimmed or erased. An append
        with ``NO_STREAM`` (or ``ANY``) starts the resource again, its versions numbered on.

        ``expected_version`` (default ``ANY``) is checked as for an append;
        :class:`StreamNotFound` if the resource does not exist or is already deleted."""
        cls = check_resource_class(resource_type)
        rid = check_resource_id(resource_id)
        expected = check_expected(expected_version)
        if expected is NO_STREAM:
            raise InvalidInput("delete() takes an expected version or ANY, not NO_STREAM")
        latest = self.read_version(cls, rid)
        if isinstance(expected, int) and expected != latest.version:
            raise ConcurrencyError(cls.resource_type, rid, expected, latest.version)
        data = latest.state.__pydantic_serializer__.to_json(latest.state)
        tombstone = Prepared(
            cls,
            rid,
            stream_pk(cls.resource_type, rid),
            latest.version,
            data,
            latest.state,
            check_event(event),
            metadata_json(metadata),
            {},
            frozenset(),
            deleted=True,
        )
        return cast("Version[R]", self._writer.commit([tombstone])[0])

    def erase(
        self,
        resource_type: type[Resource],
        resource_id: str,
        *,
        progress: Callable[[ErasureReport], None] | None = None,
    ) -> ErasureReport:
        """Remove a resource for good (a person's data on request): every version, keyframe and
        the head, in as few atomic writes as the limits allow; its feed entries keep their
        positions as tombstones that name nothing. Run it again if it was interrupted.
        Afterwards nothing in the table holds its states, and a new stream may start under the
        same id. :class:`StreamNotFound` if there is nothing to erase."""
        cls = check_resource_class(resource_type)
        pk = stream_pk(cls.resource_type, check_resource_id(resource_id))
        head, first = self.backend.get([records.head_key(pk), records.version_key(pk, 1)])
        if (
            head is None
            and first is None
            and not any(page.items for page in itertools.islice(self.backend.pages(pk), 1))
        ):
            raise StreamNotFound(*split_pk(pk))
        return erase(self.backend, self.clock, pk, progress=progress)

    def purge(self, resource_type: type[Resource] | None = None) -> int:
        """Remove the versions of ``resource_type`` (or of every type defined in this process)
        that are past their type's ``max_age``, and their keyframes, and move each stream's
        retention bound past them; return how many versions went. On DynamoDB its TTL does this
        by itself (within days); on SQLite and in memory call this from time to time. The latest
        version of a resource is never removed."""
        classes = [check_resource_class(resource_type)] if resource_type else registered_types()
        now = self.reader.clock()
        removed = 0
        for cls in classes:
            if cls.max_age is None:
                continue
            for head in self.heads(cls):
                removed += purge_stream(self.backend, str(head[records.PK]), now)
        return removed

    def update(
        self,
        resource_type: type[R],
        resource_id: str,
        change: Callable[[R], R | None],
        *,
        event: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        default: R | None = None,
        max_attempts: int = 10,
    ) -> Version[R]:
        """Read the latest version, call ``change(state)`` and append what it returns with the
        read version as ``expected_version``; on a conflict, read again and call ``change``
        again (with backoff and jitter), up to ``max_attempts`` times, then raise the last
        :class:`ConcurrencyError`. Returns the new version.

        ``change`` must be a pure function of the state: it may run several times. It may return
        ``None`` (nothing to do: nothing is appended, the current version is returned) or raise
        to refuse (the exception propagates; nothing is written). A missing stream raises
        :class:`StreamNotFound`, unless ``default`` is given: the stream is then created from
        ``change(default)`` (create-or-update)."""
        cls = check_resource_class(resource_type)
        if not callable(change):
            raise WrongType(f"change must be a function of the state, got {change!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise InvalidInput(f"max_attempts must be an int >= 1, got {max_attempts!r}")
        backoff = Backoff(base=0.005, cap=0.5, attempts=max_attempts)
        while True:
            try:
                current: Version[R] | None = self.read_version(cls, resource_id)
            except StreamNotFound:
                if default is None:
                    raise
                current = None
            new = change(current.state if current is not None else default)  # type: ignore[arg-type]
            if new is None:
                if current is None:
                    raise StreamNotFound(cls.resource_type, resource_id)
                return current
            if not isinstance(new, cls):
                raise WrongType(f"change must return a {cls.__name__} or None, got {new!r}")
            try:
                return self.append(
                    new,
                    resource_id=resource_id,
                    expected_version=NO_STREAM if current is None else current.version,
                    event=event,
                    metadata=metadata,
                )
            except ConcurrencyError:
                if not backoff.wait():
                    raise

    def read_many(
        self, resource_type: type[R], resource_ids: Iterable[str], *, consistent: bool = True
    ) -> dict[str, Version[R]]:
        """The latest version of each stream, keyed by id in the order given (duplicates once);
        ids of streams that do not exist are absent. On DynamoDB: one ``BatchGetItem`` per 100
        ids for the heads, then one per 50 for the versions and their keyframes."""
        cls = check_resource_class(resource_type)
        if isinstance(resource_ids, str):
            raise WrongType("resource_ids must be a collection of ids, not one str")
        ids = list(dict.fromkeys(check_resource_id(rid) for rid in resource_ids))
        keys = [records.head_key(stream_pk(cls.resource_type, rid)) for rid in ids]
        heads = self.backend.get(keys, consistent=consistent) if keys else []
        present = [
            (rid, head)
            for rid, head in zip(ids, heads, strict=True)
            if head is not None and not records.is_deleted(head)
        ]
        found: dict[str, Version[R]] = {}
        for start in range(0, len(present), 50):
            chunk = present[start : start + 50]
            versions = self.reader.named_by(cls, [h for _, h in chunk], consistent=consistent)
            for (rid, _), version in zip(chunk, versions, strict=True):
                if version is not None:
                    found[rid] = version
        return found

    def repository(self, resource_type: type[R]) -> Repository[R]:
        """A typed repository for one resource type: the store's operations with the type
        filled in (``get``, ``find``, ``exists``, ``save``, ``update``, ``history``, ``many``,
        ``list``, ``query``)."""
        return Repository(self, check_resource_class(resource_type))

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
        Raises :class:`StreamNotFound` on iteration if the stream does not exist, and
        :class:`VersionNotFound` if versions still to be yielded are trimmed meanwhile."""
        cls = check_resource_class(resource_type)
        rid = check_resource_id(resource_id)
        for name, bound in (("start", start), ("stop", stop)):
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int) or bound < 1
            ):
                raise InvalidInput(f"{name} must be a version number >= 1, got {bound!r}")
        return self.reader.stream(
            cls,
            stream_pk(cls.resource_type, rid),
            start or 1,
            stop,
            reverse=reverse,
            consistent=consistent,
        )

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
        meantime are skipped."""
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
        right after its last version (pass it as ``after=`` to resume there) and the number of
        versions it skipped because they were trimmed while being read."""
        if resource_type is not None:
            classes: list[type[Resource]] = [check_resource_class(resource_type)]
        else:
            classes = registered_types()
        position = None if after is None else ReplayPosition.decode(after)
        if position is not None:
            names = [cls.resource_type for cls in classes]
            if position.type_name not in names:
                raise InvalidInput(
                    f"checkpoint is in {position.type_name}, which this replay does not cover"
                )
            classes = classes[names.index(position.type_name) :]
        return self.reader.replay_pages(classes, position, check_limit(page_size))
