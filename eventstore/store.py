"""The store facade: checks arguments and hands the work to ``writing`` (appends), ``reading``
(versions, streams, replay) and ``querying`` (index queries)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

from typing_extensions import Unpack

from eventstore import codec, records
from eventstore.backends.base import Backend, ConditionFailed, Item
from eventstore.cursors import CursorSigner, ReplayPosition
from eventstore.errors import ConcurrencyError, InvalidInput, ProjectionError, WrongType
from eventstore.ids import parse_version_id
from eventstore.indexing import IndexPlan, IndexProjection, index_partition
from eventstore.inputs import ANY, NO_STREAM, Append, Checkpoint, Expect, serialize
from eventstore.keyframes import KeyframeCache
from eventstore.keys import MAX_VERSION, check_resource_id, check_type_name, stream_pk
from eventstore.positions import FeedClock
from eventstore.querying import (
    QueryPage,
    SortKey,
    check_flag,
    check_limit,
    check_part,
    query_context,
    query_page,
    sort_condition,
)
from eventstore.reading import FeedEntry, FeedPage, Reader, ReplayPage
from eventstore.resource import Resource, Version, check_resource_class, registered_types
from eventstore.subscription import Subscription
from eventstore.writing import Prepared, Writer

__all__ = ["ANY", "NO_STREAM", "Append", "Checkpoint", "EventStore", "Expect"]

R = TypeVar("R", bound=Resource)


class EventStore:
    """Versioned resources on a backend. Safe to share between threads.

    Open one with :func:`eventstore.open`. ``projections`` are written onto each stream's head in
    the same atomic write as every new version. ``cursor_secret`` signs query cursors (default: a
    random secret kept in the table, shared by every process using it). ``contention_budget`` is
    how many seconds an ``expected_version=ANY`` append keeps retrying lost races.
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
    ) -> None:
        self.backend = backend
        self.indexes = IndexPlan(projections)
        self._max_state = max_state_size
        #: Decodes stored versions; part of the seam the ``projections`` package uses.
        self.reader = Reader(backend, KeyframeCache(keyframe_cache_bytes), max_state_size)
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

    def feed(
        self,
        after: int = 0,
        *,
        limit: int | None = None,
        types: Sequence[type[Resource]] | None = None,
        partition: int = 0,
    ) -> Iterator[Version[Any]]:
        """Every retained version with a position above ``after`` in feed ``partition``, in
        position order (commit order): lazily, in constant memory, two requests per page of 50
        positions (the entries, then one batch read of the versions). Stops at the newest
        committed position; never skips a position that is not visible yet. Versions trimmed
        since, of types not in ``types``, or of types not defined in this process are passed
        over without error."""
        check = self._feed_args(after, limit, partition)
        names = self._type_names(types)
        pages = self.reader.feed_pages(check, after, types=names)
        versions = (version for page in pages for version in page.versions)
        return versions if limit is None else itertools.islice(versions, limit)

    def feed_entries(self, after: int = 0, *, partition: int = 0) -> Iterator[FeedEntry]:
        """The feed's positions after ``after`` as entries (type, id, version, event) without
        decoding states: what ``eventstore feed`` prints."""
        check = self._feed_args(after, None, partition)
        for page in self.reader.feed_pages(check, after, decode=False):
            yield from page.entries

    def feed_pages(
        self,
        after: int = 0,
        *,
        types: Sequence[type[Resource]] | None = None,
        partition: int = 0,
        page_size: int = 50,
    ) -> Iterator[FeedPage]:
        """:meth:`feed` a page at a time: each page's ``versions`` and the position ``last`` it
        reaches (past versions passed over), which is where a runner's checkpoint goes."""
        check = self._feed_args(after, None, partition)
        size = check_limit(page_size)
        return self.reader.feed_pages(check, after, types=self._type_names(types), page_size=size)

    def checkpoint(self, name: str) -> int:
        """The feed position a checkpoint was moved to (0 when none is saved)."""
        item = self.backend.get([records.checkpoint_key(check_type_name(name))])[0]
        return records.checkpoint_position(item)

    def move_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Move a checkpoint on its own, provided it is still at ``checkpoint.previous``
        (:class:`ConcurrencyError` otherwise)."""
        if not isinstance(checkpoint, Checkpoint):
            raise WrongType(f"expected a Checkpoint, got {type(checkpoint).__name__}")
        move = records.checkpoint_move(checkpoint.name, checkpoint.previous, checkpoint.position)
        try:
            self.backend.write([move])
        except ConditionFailed as e:
            actual = records.checkpoint_position(e.item)
            raise ConcurrencyError(
                "checkpoint", checkpoint.name, checkpoint.previous, actual
            ) from None

    def last_position(self, *, partition: int = 0) -> int:
        """The highest committed position of feed ``partition`` (0 for an empty feed)."""
        return self.clock.last(self.clock.check(partition), read=True)

    def subscribe(
        self,
        after: int = 0,
        *,
        types: Sequence[type[Resource]] | None = None,
        partition: int = 0,
        poll_interval: float = 0.5,
    ) -> Subscription:
        """A context manager and iterator over the versions of feed ``partition`` after
        ``after``, as they are committed (within about ``poll_interval`` seconds); it blocks while
        there are none, and ``stop()`` (from any thread) ends it."""
        check = self._feed_args(after, None, partition)
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)):
            raise WrongType("poll_interval must be a number of seconds")
        if not 0 < poll_interval <= 60:
            raise InvalidInput("poll_interval must be more than 0 and at most 60 seconds")
        return Subscription(self.reader, check, after, self._type_names(types), poll_interval)

    def _feed_args(self, after: object, limit: object, partition: object) -> int:
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InvalidInput(f"after must be a feed position (an int >= 0), got {after!r}")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise InvalidInput(f"limit must be an int >= 1 or None, got {limit!r}")
        return self.clock.check(partition)

    @staticmethod
    def _type_names(types: Sequence[type[Resource]] | None) -> frozenset[str] | None:
        if types is None:
            return None
        if isinstance(types, type) or not isinstance(types, Sequence):
            raise WrongType("types must be a sequence of Resource classes")
        return frozenset(check_resource_class(cls).resource_type for cls in types)

    def heads(self, resource_type: type[Resource], *, reverse: bool = False) -> Iterator[Item]:
        """The head items of every stream of a type, in creation order (newest first with
        ``reverse``), read lazily from the store's listing index."""
        cls = check_resource_class(resource_type)
        for page in self.backend.pages(
            cls.resource_type, index=records.LISTING, forward=not reverse
        ):
            yield from page.items

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
        declared = self.declared_projection(projection)
        type_name = declared.resource_class.resource_type
        value = check_part("partition", partition)
        sk = sort_condition(sort)
        backwards = check_flag("reverse", reverse)
        return query_page(
            self.reader,
            self._cursors,
            declared.resource_class,
            declared.index,
            index_partition(type_name, declared.name, value),
            sk=sk,
            reverse=backwards,
            limit=limit,
            cursor=cursor,
            consistent=consistent,
            context=query_context(
                "query", type_name, declared.name, declared.index, value, sk, backwards
            ),
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
        name = cls.resource_type
        return query_page(
            self.reader,
            self._cursors,
            cls,
            records.LISTING,
            name,
            sk=None,
            reverse=backwards,
            limit=limit,
            cursor=cursor,
            consistent=consistent,
            context=query_context("list", name, None, records.LISTING, name, None, backwards),
        )

    def set_cursor_secret(self, secret: bytes) -> None:
        """Sign query cursors with ``secret`` (16 bytes or more) instead of the random secret the
        table keeps for this. Every process that serves the same clients needs the same one."""
        self._cursors = CursorSigner(self.backend, secret)

    def declared_projection(self, projection: object) -> IndexProjection:
        """The projection declared on this store that ``projection`` (a class or instance)
        names; :class:`ProjectionError` if it is not declared here."""
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
