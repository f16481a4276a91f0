"""``store.repository(Order)`` for the async store: the typed operations of
:class:`eventstore.Repository`, as coroutines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from typing_extensions import Unpack

from eventstore import bridge
from eventstore.aio.iteration import AsyncIteration, awaiting
from eventstore.inputs import NO_STREAM, Expect
from eventstore.querying import QueryPage, SortKey
from eventstore.repository import Repository
from eventstore.resource import Resource, Version
from eventstore.store import EventStore

R = TypeVar("R", bound=Resource)


class AsyncRepository(Generic[R]):
    """:class:`eventstore.Repository` for :class:`AsyncEventStore` (``store.repository(T)``):
    the same methods, each a coroutine (``history`` an async iterator), with the same contract,
    run on the async store's engine."""

    def __init__(self, engine: EventStore, resource_type: type[R]) -> None:
        self.resource_type = resource_type
        self._sync: Repository[R] = engine.repository(resource_type)

    async def get(self, resource_id: str, version: int | str | None = None) -> Version[R]:
        return await bridge.call(self._sync.get, resource_id, version)

    async def find(self, resource_id: str) -> Version[R] | None:
        return await bridge.call(self._sync.find, resource_id)

    async def exists(self, resource_id: str) -> bool:
        return await bridge.call(self._sync.exists, resource_id)

    async def save(
        self,
        state: R,
        *,
        id: str | None = None,
        expected_version: int | Expect = NO_STREAM,
        event: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Version[R]:
        return await bridge.call(
            self._sync.save,
            state,
            id=id,
            expected_version=expected_version,
            event=event,
            metadata=metadata,
        )

    async def update(
        self,
        resource_id: str,
        change: Callable[[R], R | None] | Callable[[R], Awaitable[R | None]],
        *,
        event: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        default: R | None = None,
        max_attempts: int = 10,
    ) -> Version[R]:
        """:meth:`AsyncEventStore.update`; ``change`` may be a plain function or ``async def``."""
        return await bridge.call(
            self._sync.update,
            resource_id,
            awaiting(change),
            event=event,
            metadata=metadata,
            default=default,
            max_attempts=max_attempts,
        )

    def history(self, resource_id: str, *, reverse: bool = False) -> AsyncIteration[Version[R]]:
        return AsyncIteration(self._sync.history, resource_id, reverse=reverse)

    async def many(self, resource_ids: Iterable[str]) -> dict[str, Version[R]]:
        return await bridge.call(self._sync.many, resource_ids)

    async def list(
        self,
        *,
        where: Callable[[R], bool] | None = None,
        newest_first: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> QueryPage[R]:
        return await bridge.call(
            self._sync.list, where=where, newest_first=newest_first, limit=limit, cursor=cursor
        )

    async def query(
        self,
        projection: Any,
        partition: str,
        *,
        where: Callable[[R], bool] | None = None,
        reverse: bool = False,
        limit: int = 50,
        cursor: str | None = None,
        **sort: Unpack[SortKey],
    ) -> QueryPage[R]:
        page: QueryPage[R] = await bridge.call(
            self._sync.query,
            projection,
            partition,
            where=where,
            reverse=reverse,
            limit=limit,
            cursor=cursor,
            **sort,
        )
        return page
