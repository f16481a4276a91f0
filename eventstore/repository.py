"""A typed repository for one resource type: the shape repository-pattern code expects, each
method one call of the store with the type filled in. It holds no logic and no I/O of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

from typing_extensions import Unpack

from eventstore.errors import StreamNotFound
from eventstore.inputs import NO_STREAM, Expect
from eventstore.querying import QueryPage, SortKey
from eventstore.resource import Resource, Version

R = TypeVar("R", bound=Resource)
S = TypeVar("S", bound=Resource)


class Store(Protocol):
    """The operations of :class:`eventstore.EventStore` a repository delegates to (a protocol,
    so that this module stands below the store rather than importing it)."""

    def read_version(
        self, resource_type: type[S], resource_id: str, version: int | str | None = ...
    ) -> Version[S]: ...

    def append(
        self,
        state: S,
        *,
        resource_id: str | None = ...,
        expected_version: int | Expect = ...,
        event: str | None = ...,
        metadata: Mapping[str, Any] | None = ...,
    ) -> Version[S]: ...

    def update(
        self,
        resource_type: type[S],
        resource_id: str,
        change: Callable[[S], S | None],
        *,
        event: str | None = ...,
        metadata: Mapping[str, Any] | None = ...,
        default: S | None = ...,
        max_attempts: int = ...,
    ) -> Version[S]: ...

    def read_stream(
        self, resource_type: type[S], resource_id: str, *, reverse: bool = ...
    ) -> Iterator[Version[S]]: ...

    def read_many(
        self, resource_type: type[S], resource_ids: Iterable[str]
    ) -> dict[str, Version[S]]: ...

    def list_resources(
        self,
        resource_type: type[S],
        *,
        newest_first: bool = ...,
        limit: int = ...,
        cursor: str | None = ...,
        where: Callable[[S], bool] | None = ...,
    ) -> QueryPage[S]: ...

    def query(
        self,
        projection: Any,
        partition: str,
        *,
        reverse: bool = ...,
        limit: int = ...,
        cursor: str | None = ...,
        consistent: bool = ...,
        where: Callable[[Any], bool] | None = ...,
        **sort: Unpack[SortKey],
    ) -> QueryPage[Any]: ...


class Repository(Generic[R]):
    """``store.repository(Order)``: the store's operations on ``Order`` streams, typed."""

    def __init__(self, store: Store, resource_type: type[R]) -> None:
        self.store = store
        self.resource_type = resource_type

    def get(self, resource_id: str, version: int | str | None = None) -> Version[R]:
        """The latest version (or one by number or version id); :class:`StreamNotFound` if the
        stream does not exist."""
        return self.store.read_version(self.resource_type, resource_id, version)

    def find(self, resource_id: str) -> Version[R] | None:
        """The latest version, or ``None`` if the stream does not exist."""
        try:
            return self.store.read_version(self.resource_type, resource_id)
        except StreamNotFound:
            return None

    def exists(self, resource_id: str) -> bool:
        return self.find(resource_id) is not None

    def save(
        self,
        state: R,
        *,
        id: str | None = None,
        expected_version: int | Expect = NO_STREAM,
        event: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Version[R]:
        """:meth:`EventStore.append` (a new stream when ``id`` is not given)."""
        return self.store.append(
            state,
            resource_id=id,
            expected_version=expected_version,
            event=event,
            metadata=metadata,
        )

    def update(
        self,
        resource_id: str,
        change: Callable[[R], R | None],
        *,
        event: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        default: R | None = None,
        max_attempts: int = 10,
    ) -> Version[R]:
        """:meth:`EventStore.update`: read, change, append, retried on conflict."""
        return self.store.update(
            self.resource_type,
            resource_id,
            change,
            event=event,
            metadata=metadata,
            default=default,
            max_attempts=max_attempts,
        )

    def history(self, resource_id: str, *, reverse: bool = False) -> Iterator[Version[R]]:
        """Every retained version, oldest first (newest first with ``reverse``)."""
        return self.store.read_stream(self.resource_type, resource_id, reverse=reverse)

    def many(self, resource_ids: Iterable[str]) -> dict[str, Version[R]]:
        """:meth:`EventStore.read_many`: the latest of each; missing ids are absent."""
        return self.store.read_many(self.resource_type, resource_ids)

    def list(
        self,
        *,
        where: Callable[[R], bool] | None = None,
        newest_first: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> QueryPage[R]:
        """:meth:`EventStore.list_resources`: one page, optionally filtered."""
        return self.store.list_resources(
            self.resource_type, where=where, newest_first=newest_first, limit=limit, cursor=cursor
        )

    def query(
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
        """:meth:`EventStore.query` of a projection declared for this type."""
        page: QueryPage[R] = self.store.query(
            projection,
            partition,
            where=where,
            reverse=reverse,
            limit=limit,
            cursor=cursor,
            **sort,
        )
        return page
