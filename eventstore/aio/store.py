"""The async store: :class:`eventstore.EventStore`'s operations as coroutines and async
iterators. Each one runs the blocking store's own code (see :mod:`eventstore.bridge`) on an
async backend, so both stores send the same requests and keep the same promises; the contract
of each operation is the docstring of the :class:`~eventstore.EventStore` method of the same
name."""

from __future__ import annotations

from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from datetime import timedelta
from typing import Any, Literal, TypeVar

from typing_extensions import Unpack

from eventstore import bridge
from eventstore.aio.iteration import AsyncIteration, AsyncSubscription, awaiting
from eventstore.aio.repository import AsyncRepository
from eventstore.backends.base import Backend, Item, TableOptions
from eventstore.blobs.collect import Sweep
from eventstore.erasing import ErasureReport
from eventstore.indexing import IndexProjection
from eventstore.inputs import ANY, NO_STREAM, Append, Checkpoint, Expect
from eventstore.querying import QueryPage, SortKey
from eventstore.reading import FeedEntry, FeedPage, ReplayPage
from eventstore.resource import Resource, Version, check_resource_class
from eventstore.store import EventStore

R = TypeVar("R", bound=Resource)
T = TypeVar("T")


class AsyncEventStore:
    """:class:`eventstore.EventStore` for asyncio: open it with :func:`eventstore.aio.open`,
    preferably as ``async with eventstore.aio.open(url) as store:`` (which closes its clients).

    Every operation has the blocking store's name, arguments, results and errors. Safe to use
    from many tasks of one event loop at once. An operation whose task is cancelled either
    committed or did not; a retry of the same :class:`~eventstore.Append` with an expected
    version never writes twice (it gets :class:`~eventstore.ConcurrencyError` if the first
    attempt committed), as after a lost answer."""

    def __init__(self, engine: EventStore) -> None:
        #: The blocking store whose code this store runs, on an async backend. Its methods may
        #: only be called through this store (they wait through :mod:`eventstore.bridge`).
        self.engine = engine

    @property
    def backend(self) -> Backend:
        return self.engine.backend

    async def __aenter__(self) -> AsyncEventStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the backend's clients (or its SQLite worker) if this store opened them."""
        await bridge.call(self.engine.close)

    async def create_table(
        self,
        *,
        feed: Literal["indexed", "inline", "none"] | None = None,
        feed_partitions: int | None = None,
        options: TableOptions | None = None,
    ) -> None:
        await bridge.call(
            self.engine.create_table, feed=feed, feed_partitions=feed_partitions, options=options
        )

    # -- writes ------------------------------------------------------------------------------

    async def append(
        self,
        state: R,
        *,
        resource_id: str | None = None,
        expected_version: int | Expect = NO_STREAM,
        event: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Version[R]:
        return await bridge.call(
            self.engine.append,
            state,
            resource_id=resource_id,
            expected_version=expected_version,
            event=event,
            metadata=metadata,
        )

    async def append_many(
        self, appends: Sequence[Append[Any]], *, checkpoint: Checkpoint | None = None
    ) -> list[Version[Any]]:
        return await bridge.call(self.engine.append_many, appends, checkpoint=checkpoint)

    async def update(
        self,
        resource_type: type[R],
        resource_id: str,
        change: Callable[[R], R | None] | Callable[[R], Awaitable[R | None]],
        *,
        event: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        default: R | None = None,
        max_attempts: int | None = None,
    ) -> Version[R]:
        """:meth:`EventStore.update`; ``change`` may be a plain function or an ``async def``."""
        return await bridge.call(
            self.engine.update,
            resource_type,
            resource_id,
            awaiting(change),
            event=event,
            metadata=metadata,
            default=default,
            max_attempts=max_attempts,
        )

    async def delete(
        self,
        resource_type: type[R],
        resource_id: str,
        *,
        expected_version: int | Expect = ANY,
        event: str | None = "deleted",
        metadata: Mapping[str, Any] | None = None,
    ) -> Version[R]:
        return await bridge.call(
            self.engine.delete,
            resource_type,
            resource_id,
            expected_version=expected_version,
            event=event,
            metadata=metadata,
        )

    async def erase(
        self,
        resource_type: type[Resource],
        resource_id: str,
        *,
        progress: Callable[[ErasureReport], None] | None = None,
    ) -> ErasureReport:
        return await bridge.call(self.engine.erase, resource_type, resource_id, progress=progress)

    async def purge(self, resource_type: type[Resource] | None = None) -> int:
        return await bridge.call(self.engine.purge, resource_type)

    async def shred(self, subject: str) -> None:
        await bridge.call(self.engine.shred, subject)

    async def rotate_keys(self, *, progress: Callable[[Any], None] | None = None) -> Any:
        return await bridge.call(self.engine.rotate_keys, progress=progress)

    async def collect_blobs(
        self,
        older_than: timedelta = timedelta(hours=1),
        *,
        progress: Callable[[Sweep], None] | None = None,
    ) -> int:
        return await bridge.call(self.engine.collect_blobs, older_than, progress=progress)

    # -- reads -------------------------------------------------------------------------------

    async def read_version(
        self,
        resource_type: type[R],
        resource_id: str,
        version: int | str | None = None,
        *,
        consistent: bool = True,
    ) -> Version[R]:
        return await bridge.call(
            self.engine.read_version, resource_type, resource_id, version, consistent=consistent
        )

    async def read_many(
        self, resource_type: type[R], resource_ids: Iterable[str], *, consistent: bool = True
    ) -> dict[str, Version[R]]:
        return await bridge.call(
            self.engine.read_many, resource_type, resource_ids, consistent=consistent
        )

    def read_stream(
        self,
        resource_type: type[R],
        resource_id: str,
        *,
        start: int | None = None,
        stop: int | None = None,
        reverse: bool = False,
        consistent: bool = True,
    ) -> AsyncIteration[Version[R]]:
        return AsyncIteration(
            self.engine.read_stream,
            resource_type,
            resource_id,
            start=start,
            stop=stop,
            reverse=reverse,
            consistent=consistent,
        )

    def replay(
        self, resource_type: type[R] | None = None, *, after: str | None = None
    ) -> AsyncIteration[Version[Any]]:
        return AsyncIteration(self.engine.replay, resource_type, after=after)

    def replay_pages(
        self,
        resource_type: type[R] | None = None,
        *,
        after: str | None = None,
        page_size: int = 100,
    ) -> AsyncIteration[ReplayPage]:
        return AsyncIteration(
            self.engine.replay_pages, resource_type, after=after, page_size=page_size
        )

    def heads(
        self, resource_type: type[Resource], *, reverse: bool = False
    ) -> AsyncIteration[Item]:
        return AsyncIteration(self.engine.heads, resource_type, reverse=reverse)

    def deleted_heads(self, resource_type: type[Resource]) -> AsyncIteration[Item]:
        return AsyncIteration(self.engine.deleted_heads, resource_type)

    # -- queries -----------------------------------------------------------------------------

    async def query(
        self,
        projection: Any,
        partition: str,
        *,
        reverse: bool = False,
        limit: int = 50,
        cursor: str | None = None,
        consistent: bool = False,
        where: Callable[[R], bool] | None = None,
        **sort: Unpack[SortKey],
    ) -> QueryPage[R]:
        page: QueryPage[R] = await bridge.call(
            self.engine.query,
            projection,
            partition,
            reverse=reverse,
            limit=limit,
            cursor=cursor,
            consistent=consistent,
            where=where,
            **sort,
        )
        return page

    async def list_resources(
        self,
        resource_type: type[R],
        *,
        newest_first: bool = True,
        limit: int = 50,
        cursor: str | None = None,
        consistent: bool = False,
        where: Callable[[R], bool] | None = None,
    ) -> QueryPage[R]:
        return await bridge.call(
            self.engine.list_resources,
            resource_type,
            newest_first=newest_first,
            limit=limit,
            cursor=cursor,
            consistent=consistent,
            where=where,
        )

    def set_cursor_secret(self, secret: bytes) -> None:
        self.engine.set_cursor_secret(secret)

    def declared_projection(self, projection: object) -> IndexProjection:
        return self.engine.declared_projection(projection)

    def repository(self, resource_type: type[R]) -> AsyncRepository[R]:
        """The store's operations on streams of one type, typed (see :class:`AsyncRepository`)."""
        return AsyncRepository(self.engine, check_resource_class(resource_type))

    # -- the feed ----------------------------------------------------------------------------

    def feed(
        self,
        after: int = 0,
        *,
        limit: int | None = None,
        types: Sequence[type[Resource]] | None = None,
        partition: int = 0,
    ) -> AsyncIteration[Version[Any]]:
        return AsyncIteration(
            self.engine.feed, after, limit=limit, types=types, partition=partition
        )

    def feed_entries(self, after: int = 0, *, partition: int = 0) -> AsyncIteration[FeedEntry]:
        return AsyncIteration(self.engine.feed_entries, after, partition=partition)

    def feed_pages(
        self,
        after: int = 0,
        *,
        types: Sequence[type[Resource]] | None = None,
        partition: int = 0,
        page_size: int = 50,
    ) -> AsyncIteration[FeedPage]:
        return AsyncIteration(
            self.engine.feed_pages, after, types=types, partition=partition, page_size=page_size
        )

    async def last_position(self, *, partition: int = 0) -> int:
        return await bridge.call(self.engine.last_position, partition=partition)

    async def wait_indexed(self, version: Version[R], timeout: float = 10.0) -> Version[R]:
        return await bridge.call(self.engine.wait_indexed, version, timeout)

    async def checkpoint(self, name: str) -> int:
        return await bridge.call(self.engine.checkpoint, name)

    async def move_checkpoint(self, checkpoint: Checkpoint) -> None:
        await bridge.call(self.engine.move_checkpoint, checkpoint)

    def subscribe(
        self,
        after: int = 0,
        *,
        types: Sequence[type[Resource]] | None = None,
        partition: int = 0,
        poll_interval: float = 0.5,
    ) -> AsyncSubscription:
        return AsyncSubscription(
            self.engine.subscribe,
            after,
            types=types,
            partition=partition,
            poll_interval=poll_interval,
        )
