"""A backend that wraps another and changes items on their way through: what the state pipeline's
layers (encryption, offloading) share. A subclass changes the writes it passes down
(:meth:`Layered.write`) and each item read on its way up (:meth:`Layered.up`); everything else is
the inner backend's, attributes it offers besides the contract included (a table's name)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

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


class Layered(Backend):
    """``inner``, with :meth:`up` applied to every item read."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.queries_round_once = inner.queries_round_once
        self.serialised = inner.serialised
        self.feed_in_items = inner.feed_in_items
        self.encrypts = inner.encrypts
        self.max_item_bytes = inner.max_item_bytes
        self.max_write_bytes = inner.max_write_bytes

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (unpickling, a failed __init__): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def up(self, item: Item) -> Item | None:
        """An item read from the inner backend, as the layers above must see it; ``None`` when
        the item turns out to have been deleted since it was read (a layer that finds part of
        it gone outside the table asks the table again): it is then read as absent, as a read
        made a moment later would find it."""
        return item

    def _up(self, items: Sequence[Item]) -> list[Item]:
        return [up for item in items if (up := self.up(item)) is not None]

    def write(
        self,
        writes: Sequence[Write],
        *,
        token: str | None = None,
        conflicts: Literal["retry", "raise"] = "retry",
    ) -> Mapping[int, int]:
        return self.inner.write(writes, token=token, conflicts=conflicts)

    def get(self, keys: Sequence[Key], *, consistent: bool = True) -> list[Item | None]:
        found = self.inner.get(keys, consistent=consistent)
        return [None if item is None else self.up(item) for item in found]

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
            limit=limit,
            start=start,
            consistent=consistent,
        )
        return Page(self._up(page.items), page.last_key)

    def scan(
        self,
        *,
        segment: int = 0,
        segments: int = 1,
        start: Item | None = None,
        limit: int | None = None,
    ) -> Page:
        page = self.inner.scan(segment=segment, segments=segments, start=start, limit=limit)
        return Page(self._up(page.items), page.last_key)

    def positioned(self, partition: int, after: int, *, limit: int) -> list[Item]:
        return self._up(self.inner.positioned(partition, after, limit=limit))

    def last_position(self, partition: int) -> int:
        return self.inner.last_position(partition)

    def joins(self, other: Backend) -> bool:
        return self.inner.joins(other)

    def identity(self) -> object | None:
        return self.inner.identity()

    def change_stream(self) -> ChangeStream | None:
        return self.inner.change_stream()

    def enable_change_stream(self) -> None:
        self.inner.enable_change_stream()

    def create_table(self, options: TableOptions | None = None) -> None:
        self.inner.create_table(options)

    def close(self) -> None:
        self.inner.close()

    def forget_stream(self, pk: str) -> int:
        return self.inner.forget_stream(pk)

    def shred(self, subject: str) -> None:
        self.inner.shred(subject)

    def forget_deleted(self) -> bool:
        return self.inner.forget_deleted()

    def usage(self) -> Usage:
        return self.inner.usage()

    def requests(self) -> int:
        return self.inner.requests()
