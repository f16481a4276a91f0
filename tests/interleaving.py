"""A backend wrapper that runs another writer's operation between two requests of a reader.

It reads each key of a batch read separately, as DynamoDB's ``BatchGetItem`` may (a batch is not a
snapshot), and cuts query pages to ``page_items`` items, so that page boundaries fall anywhere.
Every key read and every page counts as one request; ``action`` runs once, right after request
number ``after``. Writes pass straight through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from eventstore.backends.base import (
    Backend,
    ChangeStream,
    Item,
    Key,
    Page,
    SortCondition,
    TableOptions,
    Write,
)


class Interleaving(Backend):
    def __init__(
        self,
        inner: Backend,
        *,
        after: int,
        action: Callable[[], object],
        page_items: int = 2,
        queries_round_once: bool | None = None,
    ) -> None:
        self.inner = inner
        # The wrapped backend's nature: whether its writes are serialised, and its stream. Not
        # its identity: a store on the wrapper reads the feed configuration itself, a request
        # the interleaving points count.
        self.serialised = inner.serialised
        self.feed_in_items = inner.feed_in_items
        self.max_item_bytes = inner.max_item_bytes
        self.max_write_bytes = inner.max_write_bytes
        # Which way reads by number go: one range query (DynamoDB's) or a batch read.
        self.queries_round_once = (
            inner.queries_round_once if queries_round_once is None else queries_round_once
        )
        self.after = after
        self.action = action
        self.page_items = page_items
        self.count = 0
        self.fired = False

    def _tick(self) -> None:
        self.count += 1
        if self.count == self.after:
            self.fired = True
            self.action()

    def change_stream(self) -> ChangeStream | None:
        return self.inner.change_stream()

    def write(
        self,
        writes: Sequence[Write],
        *,
        token: str | None = None,
        conflicts: Literal["retry", "raise"] = "retry",
    ) -> Mapping[int, int]:
        return self.inner.write(writes, token=token, conflicts=conflicts)

    def positioned(self, partition: int, after: int, *, limit: int) -> list[Item]:
        found = self.inner.positioned(partition, after, limit=min(limit, self.page_items))
        self._tick()
        return found

    def last_position(self, partition: int) -> int:
        found = self.inner.last_position(partition)
        self._tick()
        return found

    def get(self, keys: Sequence[Key], *, consistent: bool = True) -> list[Item | None]:
        found: list[Item | None] = []
        for key in keys:
            found += self.inner.get([key], consistent=consistent)
            self._tick()
        return found

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
        page = self.inner.query(
            pk,
            sk=sk,
            index=index,
            forward=forward,
            limit=min(limit or self.page_items, self.page_items),
            start=start,
            consistent=consistent,
        )
        self._tick()
        return page

    def scan(
        self,
        *,
        segment: int = 0,
        segments: int = 1,
        start: Item | None = None,
        limit: int | None = None,
    ) -> Page:
        return self.inner.scan(segment=segment, segments=segments, start=start, limit=limit)

    def create_table(self, options: TableOptions | None = None) -> None:
        self.inner.create_table(options)
