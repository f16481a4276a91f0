"""Following the change feed as it grows: a blocking iterator that polls for new commits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from eventstore import bridge
from eventstore.reading import Reader
from eventstore.resource import Version


class Subscription:
    """Yields the versions of one feed partition after a position, in position order, as they
    are committed; blocks while there are none. Use it as a context manager; :meth:`stop` (from
    any thread) ends the iteration, waking a waiting iterator at once.

    New commits are noticed by polling every ``poll_interval`` seconds (one request when nothing
    is new). ``position`` is the last position handed out (or passed over: other types, trimmed
    versions), where a new subscription would resume."""

    def __init__(
        self,
        reader: Reader,
        partition: int,
        after: int,
        types: frozenset[str] | None,
        poll_interval: float,
        *,
        refresh: Callable[[], object] | None = None,
    ) -> None:
        self._reader = reader
        self._partition = partition
        self._types = types
        self._poll = poll_interval
        self._refresh = refresh
        self._stopped = bridge.Stop()
        self.position = after

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def __iter__(self) -> Iterator[Version[Any]]:
        while not self._stopped.is_set():
            moved = False
            if self._refresh is not None:
                # An indexed feed: index what the table's stream holds first.
                self._refresh()
            for page in self._reader.feed_pages(self._partition, self.position, types=self._types):
                for version in page.versions:
                    if self._stopped.is_set():
                        return
                    if version.position is not None:
                        self.position = version.position
                    yield version
                self.position, moved = page.last, True
            if not moved:
                self._stopped.wait(self._poll)
