"""What a store knows of its table's change feed: how many partitions it has, which partition a
stream belongs to, and the last position each partition gave out (as far as this process saw)."""

from __future__ import annotations

import threading
import zlib

from eventstore import records
from eventstore.backends.base import Backend, Condition, ConditionFailed, Put
from eventstore.errors import InvalidInput

#: Most feed partitions a table may have.
MAX_PARTITIONS = 64


class FeedClock:
    """The feed configuration (read once, lazily) and each partition's last known position.

    Known positions are guesses: a commit that guessed low is refused by the counter's condition,
    which returns the actual position, and :meth:`learn` corrects the guess."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._partitions: int | None = None
        self._last: dict[int, int] = {}
        self._lock = threading.Lock()

    def partitions(self) -> int:
        """The table's number of feed partitions; 0 when it was created without a feed. A table
        with no configuration item (made before the feed existed, or never set up) has one."""
        if self._partitions is None:
            config, counter = self.backend.get([records.FEED_CONFIG_KEY, records.counter_key(0)])
            found = None if config is None else config.get(records.PARTITIONS)
            partitions = found if isinstance(found, int) and not isinstance(found, bool) else 1
            with self._lock:
                self._partitions = partitions
                if counter is not None:
                    self._last.setdefault(0, records.number(counter, records.POSITION))
        return self._partitions

    def configure(self, partitions: int) -> None:
        """Record the table's feed partitions (``create_table``); a table keeps the number it was
        created with, so streams never move between partitions."""
        if isinstance(partitions, bool) or not isinstance(partitions, int):
            raise InvalidInput(f"feed_partitions must be an int, got {partitions!r}")
        if not 0 <= partitions <= MAX_PARTITIONS:
            raise InvalidInput(f"feed_partitions must be 0 to {MAX_PARTITIONS}, got {partitions}")
        try:
            self.backend.write([Put(records.feed_config_item(partitions), Condition(exists=False))])
        except ConditionFailed as e:
            had = None if e.item is None else e.item.get(records.PARTITIONS)
            if had != partitions:
                raise InvalidInput(
                    f"the table was created with feed_partitions={had!r}; it cannot change to "
                    f"{partitions}"
                ) from None
        with self._lock:
            self._partitions = partitions
        # Where each partition's counter stands, so that the first commit is one request.
        counters = self.backend.get([records.counter_key(p) for p in range(partitions)])
        for p, item in enumerate(counters):
            self.learn(p, 0 if item is None else records.number(item, records.POSITION))

    def partition_of(self, pk: str) -> int:
        """The stream's feed partition: a stable hash of its key."""
        partitions = self.partitions()
        return zlib.crc32(pk.encode("utf-8")) % partitions if partitions > 1 else 0

    def check(self, partition: object) -> int:
        partitions = self.partitions()
        if partitions == 0:
            raise InvalidInput("this table was created without a feed (feed_partitions=0)")
        if (
            isinstance(partition, bool)
            or not isinstance(partition, int)
            or not 0 <= partition < partitions
        ):
            raise InvalidInput(f"partition must be an int from 0 to {partitions - 1}")
        return partition

    def last(self, partition: int, *, read: bool = False) -> int:
        """The last position of ``partition``: as last seen, or read from the table (``read``,
        or when never seen)."""
        with self._lock:
            known = self._last.get(partition)
        if known is not None and not read:
            return known
        item = self.backend.get([records.counter_key(partition)])[0]
        position = 0 if item is None else records.number(item, records.POSITION)
        self.learn(partition, position)
        return position

    def learn(self, partition: int, position: int) -> None:
        with self._lock:
            self._last[partition] = max(position, self._last.get(partition, 0))
