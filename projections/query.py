"""Typed helpers over :meth:`EventStore.query` and :meth:`EventStore.list_resources`."""

from __future__ import annotations

from collections.abc import Iterator

from typing_extensions import Unpack

from eventstore.querying import QueryOptions, QueryPage, SortKey
from eventstore.resource import Version
from eventstore.store import EventStore
from projections.projection import Projection, R


def query(
    store: EventStore,
    projection: type[Projection[R]] | Projection[R],
    partition: str,
    **options: Unpack[QueryOptions],
) -> QueryPage[R]:
    """:meth:`EventStore.query`, typed by the projection's resource class."""
    return store.query(projection, partition, **options)


def query_all(
    store: EventStore,
    projection: type[Projection[R]] | Projection[R],
    partition: str,
    *,
    reverse: bool = False,
    page_size: int = 100,
    **sort: Unpack[SortKey],
) -> Iterator[Version[R]]:
    """Every item of a query, page after page, lazily."""
    cursor: str | None = None
    while True:
        page: QueryPage[R] = store.query(
            projection, partition, reverse=reverse, limit=page_size, cursor=cursor, **sort
        )
        yield from page.items
        if page.cursor is None:
            return
        cursor = page.cursor


def list_all(
    store: EventStore, resource_type: type[R], *, newest_first: bool = True
) -> Iterator[Version[R]]:
    """Every resource of a type as its latest version, page after page, lazily."""
    cursor: str | None = None
    while True:
        page = store.list_resources(
            resource_type, newest_first=newest_first, limit=100, cursor=cursor
        )
        yield from page.items
        if page.cursor is None:
            return
        cursor = page.cursor
