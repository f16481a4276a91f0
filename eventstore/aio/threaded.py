"""A blocking backend made usable by the async store: every call runs on one worker thread of
its own, so the event loop never waits for SQLite's disk or its writer lock."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from eventstore import bridge
from eventstore.backends.base import (
    Backend,
    ChangeStream,
    Item,
    Key,
    Page,
    SortCondition,
    TableOptions,
    Usage,
    Write,
)

T = TypeVar("T")


class ThreadedBackend(Backend):
    """Runs ``backend`` (a blocking backend, SQLite) on a worker thread of its own.

    Inside the async store each call waits on the event loop for the worker; a caller outside it
    (a test or a tool looking at the table) calls the backend directly on its own thread, which
    SQLite's connection per thread allows. One worker per store: SQLite applies one write at a
    time anyway, and its own lock still serialises other processes."""

    def __init__(self, backend: Backend) -> None:
        self.wrapped = backend
        self.serialised = backend.serialised
        self.queries_round_once = backend.queries_round_once
        self.feed_in_items = backend.feed_in_items
        self.max_item_bytes = backend.max_item_bytes
        self.max_write_bytes = backend.max_write_bytes
        self._worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="eventstore-sqlite"
        )

    def _run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        if not bridge.in_bridge():
            return fn(*args, **kwargs)
        future = self._worker.submit(fn, *args, **kwargs)
        return bridge.await_(asyncio.wrap_future(future))

    def identity(self) -> object | None:
        return self.wrapped.identity()

    def change_stream(self) -> ChangeStream | None:
        return self._run(self.wrapped.change_stream)

    def enable_change_stream(self) -> None:
        self._run(self.wrapped.enable_change_stream)

    def write(
        self,
        writes: Sequence[Write],
        *,
        token: str | None = None,
        conflicts: Literal["retry", "raise"] = "retry",
    ) -> Mapping[int, int]:
        return self._run(self.wrapped.write, writes, token=token, conflicts=conflicts)

    def positioned(self, partition: int, after: int, *, limit: int) -> list[Item]:
        return self._run(self.wrapped.positioned, partition, after, limit=limit)

    def last_position(self, partition: int) -> int:
        return self._run(self.wrapped.last_position, partition)

    def get(self, keys: Sequence[Key], *, consistent: bool = True) -> list[Item | None]:
        return self._run(self.wrapped.get, keys, consistent=consistent)

    def query(
        self,
        pk: str,
        *,
        sk: SortCondition | None = None,
        index: str | None = None,
        forward: bool = True,
        limit: int | None = None,
        start: Item | None = None,
        consistent: bool = True,
    ) -> Page:
        return self._run(
            self.wrapped.query,
            pk,
            sk=sk,
            index=index,
            forward=forward,
            limit=limit,
            start=start,
            consistent=consistent,
        )

    def scan(
        self,
        *,
        segment: int = 0,
        segments: int = 1,
        start: Item | None = None,
        limit: int | None = None,
    ) -> Page:
        return self._run(
            self.wrapped.scan, segment=segment, segments=segments, start=start, limit=limit
        )

    def create_table(self, options: TableOptions | None = None) -> None:
        self._run(self.wrapped.create_table, options)

    def forget_deleted(self) -> bool:
        return self._run(self.wrapped.forget_deleted)

    def close(self) -> None:
        try:
            self._run(self.wrapped.close)
        finally:
            self._worker.shutdown(wait=False)

    def usage(self) -> Usage:
        return self.wrapped.usage()

    def requests(self) -> int:
        return self.wrapped.requests()
