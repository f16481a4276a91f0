"""The change feed side of the store's public API: reading the feed, following it, and the
checkpoints of those who follow it. :class:`eventstore.EventStore` is made of this and the rest."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from eventstore import records
from eventstore.backends.base import Backend, ConditionFailed
from eventstore.errors import ConcurrencyError, IndexTimeout, InvalidInput, WrongType
from eventstore.indexer import Indexer
from eventstore.inputs import Checkpoint
from eventstore.keys import check_type_name, stream_pk
from eventstore.positions import FeedClock
from eventstore.querying import check_limit
from eventstore.reading import FeedEntry, FeedPage, Reader
from eventstore.resource import Resource, Version, check_resource_class
from eventstore.subscription import Subscription

R = TypeVar("R", bound=Resource)


class Following:
    """Feed methods of :class:`eventstore.EventStore`."""

    backend: Backend
    reader: Reader
    clock: FeedClock
    indexer: Indexer
    index_on_read: bool

    def _catch_up(self) -> None:
        """On an indexed table, index what the stream holds before reading the feed (unless the
        store was opened with ``index_on_read=False``: an indexer runs elsewhere)."""
        if self.index_on_read and self.clock.mode == records.INDEXED:
            self.indexer.catch_up()

    def wait_indexed(self, version: Version[R], timeout: float = 10.0) -> Version[R]:
        """``version`` with its feed position, once the index holds it: for a caller that needs
        to find its own append in the feed (read-your-writes). Catches the index up itself
        unless the store was opened with ``index_on_read=False``. :class:`IndexTimeout` if it is
        not indexed within ``timeout`` seconds. On an inline feed the version already has it."""
        if not isinstance(version, Version):
            raise WrongType(f"wait_indexed() takes a Version, got {type(version).__name__}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise InvalidInput(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        if version.position is not None:
            return version
        if self.clock.mode != records.INDEXED:
            raise InvalidInput("this table has no feed: versions get no position")
        pk = stream_pk(version.resource_type, version.resource_id)
        partition = self.clock.partition_of(pk)
        found = self.indexer.wait_for(
            partition,
            pk,
            version.version,
            deadline=time.monotonic() + timeout,
            catch_up=self.index_on_read,
        )
        if found is None:
            raise IndexTimeout(
                f"{version.resource_type} {version.resource_id!r} version {version.version} "
                f"was not indexed within {timeout} s (is an indexer running? see docs/feed.md)"
            )
        return dataclasses.replace(version, position=found)

    def feed(
        self,
        after: int = 0,
        *,
        limit: int | None = None,
        types: Sequence[type[Resource]] | None = None,
        partition: int = 0,
    ) -> Iterator[Version[Any]]:
        """Every retained version with a position above ``after`` in feed ``partition``, in
        position order (commit order): lazily, in constant memory, two requests per page of 50
        positions (the entries, then one batch read of the versions). Stops at the newest
        committed position; never skips a position that is not visible yet. Versions trimmed
        since, of types not in ``types``, or of types not defined in this process are passed
        over without error."""
        check = self._feed_args(after, limit, partition)
        names = self._type_names(types)
        self._catch_up()
        pages = self.reader.feed_pages(check, after, types=names)
        versions = (version for page in pages for version in page.versions)
        return versions if limit is None else itertools.islice(versions, limit)

    def feed_entries(self, after: int = 0, *, partition: int = 0) -> Iterator[FeedEntry]:
        """The feed's positions after ``after`` as entries (type, id, version, event) without
        decoding states: what ``eventstore feed`` prints."""
        check = self._feed_args(after, None, partition)
        self._catch_up()
        for page in self.reader.feed_pages(check, after, decode=False):
            yield from page.entries

    def feed_pages(
        self,
        after: int = 0,
        *,
        types: Sequence[type[Resource]] | None = None,
        partition: int = 0,
        page_size: int = 50,
    ) -> Iterator[FeedPage]:
        """:meth:`feed` a page at a time: each page's ``versions`` and the position ``last`` it
        reaches (past versions passed over), which is where a runner's checkpoint goes."""
        check = self._feed_args(after, None, partition)
        size = check_limit(page_size)
        self._catch_up()
        return self.reader.feed_pages(check, after, types=self._type_names(types), page_size=size)

    def checkpoint(self, name: str) -> int:
        """The feed position a checkpoint was moved to (0 when none is saved)."""
        item = self.backend.get([records.checkpoint_key(check_type_name(name))])[0]
        return records.checkpoint_position(item)

    def move_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Move a checkpoint on its own, provided it is still at ``checkpoint.previous``
        (:class:`ConcurrencyError` otherwise)."""
        if not isinstance(checkpoint, Checkpoint):
            raise WrongType(f"expected a Checkpoint, got {type(checkpoint).__name__}")
        move = records.checkpoint_move(checkpoint.name, checkpoint.previous, checkpoint.position)
        try:
            self.backend.write([move])
        except ConditionFailed as e:
            actual = records.checkpoint_position(e.item)
            raise ConcurrencyError(
                "checkpoint", checkpoint.name, checkpoint.previous, actual
            ) from None

    def last_position(self, *, partition: int = 0) -> int:
        """The highest committed position of feed ``partition`` (0 for an empty feed)."""
        checked = self.clock.check(partition)
        self._catch_up()
        return self.clock.last(checked, read=True)

    def subscribe(
        self,
        after: int = 0,
        *,
        types: Sequence[type[Resource]] | None = None,
        partition: int = 0,
        poll_interval: float = 0.5,
    ) -> Subscription:
        """A context manager and iterator over the versions of feed ``partition`` after
        ``after``, as they are committed (within about ``poll_interval`` seconds); it blocks while
        there are none, and ``stop()`` (from any thread) ends it."""
        check = self._feed_args(after, None, partition)
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)):
            raise WrongType("poll_interval must be a number of seconds")
        if not 0 < poll_interval <= 60:
            raise InvalidInput("poll_interval must be more than 0 and at most 60 seconds")
        return Subscription(
            self.reader,
            check,
            after,
            self._type_names(types),
            poll_interval,
            refresh=self._catch_up,
        )

    def _feed_args(self, after: object, limit: object, partition: object) -> int:
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InvalidInput(f"after must be a feed position (an int >= 0), got {after!r}")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise InvalidInput(f"limit must be an int >= 1 or None, got {limit!r}")
        return self.clock.check(partition)

    @staticmethod
    def _type_names(types: Sequence[type[Resource]] | None) -> frozenset[str] | None:
        if types is None:
            return None
        if isinstance(types, type) or not isinstance(types, Sequence):
            raise WrongType("types must be a sequence of Resource classes")
        return frozenset(check_resource_class(cls).resource_type for cls in types)
