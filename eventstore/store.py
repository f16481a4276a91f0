"""The store facade: checks arguments and hands the work to ``writing`` (appends), ``reading``
(versions, streams, replay) and ``querying`` (index queries)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast, overload

from eventstore import codec
from eventstore.backends.base import Backend, TableOptions
from eventstore.blobs.base import BlobStore
from eventstore.blobs.offload import DEFAULT_OFFLOAD_BYTES, Offloading
from eventstore.cursors import CursorSigner, ReplayPosition
from eventstore.ending import Ending
from eventstore.errors import InvalidInput, WrongType
from eventstore.everyday import Everyday
from eventstore.following import Following
from eventstore.ids import parse_version_id
from eventstore.indexer import Indexer
from eventstore.indexing import IndexPlan, IndexProjection
from eventstore.inputs import (
    ANY,
    NO_STREAM,
    Append,
    Checkpoint,
    Expect,
    serialize,
)
from eventstore.keyframes import KeyframeCache
from eventstore.keys import MAX_VERSION, check_resource_id, stream_pk
from eventstore.positions import FeedClock, check_config
from eventstore.querying import Querying, check_limit
from eventstore.reading import Reader, ReplayPage
from eventstore.resource import Resource, Version, check_resource_class, registered_types
from eventstore.writing import Prepared, Writer

__all__ = ["ANY", "NO_STREAM", "Append", "Checkpoint", "EventStore", "Expect"]

R = TypeVar("R", bound=Resource)


class EventStore(Following, Querying, Everyday, Ending):
    """Versioned resources on a backend. Safe to share between threads.

    Open one with :func:`eventstore.open`. ``projections`` are written onto each stream's head in
    the same atomic write as every new version. ``blobs`` (a :class:`~eventstore.blobs.BlobStore`
    or an ``s3://bucket/prefix`` URL) takes the state bytes of items larger than
    ``offload_bytes`` (DynamoDB's 400 KB item limit then no longer applies); states are at most
    ``max_state_bytes`` of JSON (64 MB by default), refused above before anything is written.
    ``keys`` (a :class:`~eventstore.encryption.KeyProvider`) seals the states of encrypted types
    with their subject's data key, kept wrapped in ``key_store`` (a backend of its own, apart
    from this one; :func:`eventstore.open` takes a URL, or derives it from the store's). ``cursor_secret`` signs query cursors (default: a
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
        max_state_bytes: int = codec.DEFAULT_MAX_SIZE,
        keyframe_cache_bytes: int = 32 * 1024 * 1024,
        cursor_secret: bytes | None = None,
        contention_budget: float = 10.0,
        owns_backend: bool = False,
        clock: Callable[[], float] = time.time,
        index_on_read: bool = True,
        blobs: BlobStore | str | None = None,
        offload_bytes: int = DEFAULT_OFFLOAD_BYTES,
        keys: Any = None,
        key_store: Backend | None = None,
    ) -> None:
        if isinstance(max_state_bytes, bool) or not isinstance(max_state_bytes, int):
            raise WrongType("max_state_bytes must be an int")
        if not 1024 <= max_state_bytes <= codec.DEFAULT_MAX_SIZE * 16:
            raise InvalidInput(f"max_state_bytes must be 1 KB to 1 GB, got {max_state_bytes}")
        if blobs is not None:
            backend = offloading(backend, blobs, offload_bytes)
        elif offload_bytes != DEFAULT_OFFLOAD_BYTES:
            raise InvalidInput("offload_bytes needs a blob store (blobs=)")
        if keys is not None:
            backend = encrypting(backend, keys, key_store)
        elif key_store is not None:
            raise InvalidInput("key_store needs a key provider (keys=)")
        self.backend = backend
        self.owns_backend = owns_backend
        self.indexes = IndexPlan(projections)
        self._max_state = max_state_bytes
        #: Decodes stored versions; part of the seam the ``projections`` package uses.
        self.reader = Reader(
            backend, KeyframeCache(keyframe_cache_bytes), max_state_bytes, clock=clock
        )
        self.clock = FeedClock(backend)
        #: Gives an indexed feed its positions from the table's stream (``eventstore index``).
        self.indexer = Indexer(backend, self.clock)
        if not isinstance(index_on_read, bool):
            raise WrongType("index_on_read must be True or False")
        self.index_on_read = index_on_read
        #: Sends commits; what ``eventstore.transfer`` imports through.
        self.writer = Writer(
            backend,
            self.reader,
            self.clock,
            threshold=compress_threshold,
            contention_budget=contention_budget,
        )
        self._cursors = CursorSigner(backend, cursor_secret)

    def create_table(
        self,
        *,
        feed: Literal["indexed", "inline", "none"] | None = None,
        feed_partitions: int | None = None,
        options: TableOptions | None = None,
    ) -> None:
        """Create the table and its indexes if missing, and record how its change feed gives
        positions (idempotent; a table keeps the mode and partitions it was made with).

        ``feed``: ``"indexed"`` (the DynamoDB default: appends write only their own stream's
        items; an indexer reading the table's DynamoDB stream, turned on here, gives positions
        after the commit), ``"inline"`` (each commit takes its positions from a counter item
        in its own atomic write: strict commit order, for low write rates) or ``"none"``. SQLite
        and memory give positions inside their write transaction whatever the mode.
        ``feed_partitions`` splits the feed by a hash of the stream (0: no feed; default 1).
        Left out, both keep what an existing table was created with.

        ``options`` (DynamoDB only) set billing and capacity, point-in-time recovery, a KMS key,
        tags, a DynamoDB stream and deletion protection when the table is created; an existing
        table keeps its settings. Embedded backends refuse options (:class:`InvalidInput`).
        Every argument is checked before anything is created."""
        if options is not None and not isinstance(options, TableOptions):
            raise WrongType(f"options must be TableOptions, got {type(options).__name__}")
        check_config(feed, feed_partitions)
        if feed in (None, "indexed") and feed_partitions != 0 and not self.backend.serialised:
            chosen = options or TableOptions()
            if chosen.stream is None:
                # Keys are all the indexer reads: the stream carries no state (nothing to
                # erase from it, smaller Lambda batches). An existing table keeps its settings;
                # an indexed feed turns its stream on below if it has none.
                options = dataclasses.replace(chosen, stream="KEYS_ONLY")
        self.backend.create_table(options)
        self.clock.configure(feed, feed_partitions)

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
        before anything is sent (:class:`CommitTooLarge`, :class:`ItemTooLarge`); with a blob
        store, offloaded states count as their pointers and no state is too large for an item. A
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
        return self.writer.commit(prepared, checkpoint)

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

    @overload
    def replay(
        self, resource_type: type[R], *, after: str | None = None
    ) -> Iterator[Version[R]]: ...

    @overload
    def replay(
        self, resource_type: None = None, *, after: str | None = None
    ) -> Iterator[Version[Any]]: ...

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


def offloading(backend: Backend, blobs: BlobStore | str, offload_bytes: int) -> Offloading:
    """``backend`` with its large states kept in ``blobs`` (a blob store or its URL)."""
    from eventstore.blobs import blobs_from_url

    if isinstance(backend, Offloading):
        raise InvalidInput("this backend already keeps large states in a blob store")
    store = blobs_from_url(blobs) if isinstance(blobs, str) else blobs
    if not isinstance(store, BlobStore):
        raise WrongType(f"blobs must be a BlobStore or an s3:// URL, got {type(blobs).__name__}")
    return Offloading(backend, store, offload_bytes=offload_bytes)


def encrypting(backend: Backend, keys: Any, key_store: Backend | None) -> Backend:
    """``backend`` with the states of encrypted types sealed by ``keys`` (a key provider), their
    data keys kept in ``key_store``."""
    from eventstore.encryption.keystore import KeyStore
    from eventstore.encryption.layer import Encrypting, Keys
    from eventstore.encryption.providers import KeyProvider

    if not isinstance(keys, KeyProvider):
        raise WrongType(f"keys must be a KeyProvider, got {type(keys).__name__}")
    if backend.encrypts:
        raise InvalidInput("this backend already encrypts")
    if key_store is None:
        raise InvalidInput("give key_store= (a backend of its own, apart from the events)")
    if not isinstance(key_store, Backend):
        raise WrongType(f"key_store must be a Backend, got {type(key_store).__name__}")
    return Encrypting(backend, Keys(keys, KeyStore(key_store)))
