"""The runners and query helpers of :mod:`projections` for :class:`eventstore.aio.AsyncEventStore`.

:func:`run` is :func:`projections.run` (the same checkpoint, the same at-least-once ``handle``
and exactly-once ``project`` rules, the same requests); the projector's ``handle`` or
``project`` may be a plain method or an ``async def``. Rebuilding an index is an operator's job
with worker threads: run :func:`projections.rebuild` (or ``eventstore rebuild``) on a blocking
store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from typing_extensions import Unpack

from eventstore import bridge
from eventstore.aio.iteration import AsyncIteration, awaiting
from eventstore.aio.store import AsyncEventStore
from eventstore.querying import SortKey
from eventstore.resource import Resource, Version
from projections.projection import Projection, R
from projections.query import list_all as blocking_list_all
from projections.query import query_all as blocking_query_all
from projections.replay import RunReport
from projections.replay import run as blocking_run

__all__ = ["list_all", "query_all", "run"]


class _Awaiting:
    """The projector as the blocking runner calls it, its coroutines awaited on the loop."""

    def __init__(self, projector: Any) -> None:
        project = getattr(projector, "project", None)
        if callable(project):
            self.project = awaiting(project)
        else:
            self.handle = awaiting(projector.handle)


async def run(
    store: AsyncEventStore,
    projector: Any,
    *,
    name: str | None = None,
    types: Sequence[type[Resource]] | None = None,
    resource_type: type[Resource] | None = None,
    partition: int = 0,
    page_size: int = 50,
    max_pages: int | None = None,
) -> RunReport:
    """:func:`projections.run` on the async store; ``handle``/``project`` may be coroutines."""
    label = name if name is not None else getattr(projector, "name", type(projector).__name__)
    return await bridge.call(
        blocking_run,
        store.engine,
        _Awaiting(projector),
        name=label,
        types=types,
        resource_type=resource_type,
        partition=partition,
        page_size=page_size,
        max_pages=max_pages,
    )


def query_all(
    store: AsyncEventStore,
    projection: type[Projection[R]] | Projection[R],
    partition: str,
    *,
    reverse: bool = False,
    page_size: int = 100,
    limit: int | None = None,
    where: Callable[[R], bool] | None = None,
    **sort: Unpack[SortKey],
) -> AsyncIteration[Version[R]]:
    """:func:`projections.query_all` as an async iterator."""
    return AsyncIteration(
        blocking_query_all,
        store.engine,
        projection,
        partition,
        reverse=reverse,
        page_size=page_size,
        limit=limit,
        where=where,
        **sort,
    )


def list_all(
    store: AsyncEventStore,
    resource_type: type[R],
    *,
    newest_first: bool = True,
    page_size: int = 100,
    limit: int | None = None,
    where: Callable[[R], bool] | None = None,
) -> AsyncIteration[Version[R]]:
    """:func:`projections.list_all` as an async iterator."""
    return AsyncIteration(
        blocking_list_all,
        store.engine,
        resource_type,
        newest_first=newest_first,
        page_size=page_size,
        limit=limit,
        where=where,
    )
