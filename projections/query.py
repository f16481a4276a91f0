"""Typed helpers over :meth:`EventStore.query` and :meth:`EventStore.list_resources`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from typing_extensions import Unpack

from eventstore.errors import InvalidInput
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
    limit: int | None = None,
    where: Callable[[R], bool] | None = None,
    **sort: Unpack[SortKey],
) -> Iterator[Version[R]]:
    """Every item of a query (at most ``limit``; with ``where``, only the states it accepts),
    page after page, lazily."""
    remaining = _check_total(limit)
    cursor: str | None = None
    while remaining is None or remaining > 0:
        size = page_size if remaining is None else min(page_size, remaining)
        page: QueryPage[R] = store.query(
            projection, partition, reverse=reverse, limit=size, cursor=cursor, where=where, **sort
        )
        yield from page.items
        if remaining is not None:
            remaining -= len(page.items)
        if page.cursor is None:
            return
        cursor = page.cursor


def list_all(
    store: EventStore,
    resource_type: type[R],
    *,
    newest_first: bool = True,
    page_size: int = 100,
    limit: int | None = None,
    where: Callable[[R], bool] | None = None,
) -> Iterator[Version[R]]:
    """Every resource of a type (at most ``limit``; with ``where``, only the states it accepts)
    as its latest version, page after page, lazily."""
    remaining = _check_total(limit)
    cursor: str | None = None
    while remaining is None or remaining > 0:
        size = page_size if remaining is None else min(page_size, remaining)
        page = store.list_resources(
            resource_type, newest_first=newest_first, limit=size, cursor=cursor, where=where
        )
        yield from page.items
        if remaining is not None:
            remaining -= len(page.items)
        if page.cursor is None:
            return
        cursor = page.cursor


def _check_total(limit: object) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInput(f"limit must be an int >= 1 or None, got {limit!r}")
    return limit
