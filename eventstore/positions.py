"""What a store knows of its table's change feed: its mode and number of partitions (learnt once
per process and table), which partition a stream belongs to, and the last position each
partition gave out (as far as this process saw)."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterable

from eventstore import records
from eventstore.backends.base import Backend, Condition, ConditionFailed, Item, Put, Write
from eventstore.errors import InvalidInput

#: Most feed partitions a table may have.
MAX_PARTITIONS = 64

# What this process learnt of each table's feed configuration, by the backend's identity: a
# fresh store per invocation (a Lambda) reads it once per process, not once per store. A table
# keeps its configuration for life, so it never goes stale.
_KNOWN: dict[object, tuple[str, int]] = {}
_KNOWN_LOCK = threading.Lock()


def check_config(feed: object, partitions: object) -> tuple[str | None, int | None]:
    """Check ``create_table``'s ``feed`` and ``feed_partitions`` before anything is created."""
    if feed is not None and feed not in records.FEED_MODES:
        raise InvalidInput(f"feed must be one of {', '.join(records.FEED_MODES)}, got {feed!r}")
    if partitions is None:
        return feed, None
    if isinstance(partitions, bool) or not isinstance(partitions, int):
        raise InvalidInput(f"feed_partitions must be an int, got {partitions!r}")
    if not 0 <= partitions <= MAX_PARTITIONS:
        raise InvalidInput(f"feed_partitions must be 0 to {MAX_PARTITIONS}, got {partitions}")
    if partitions == 0 and feed not in (None, records.NO_FEED):
        raise InvalidInput(f"feed={feed!r} needs feed_partitions >= 1")
    if partitions and feed == records.NO_FEED:
        raise InvalidInput("feed='none' has no partitions: leave feed_partitions out (or 0)")
    return feed, partitions


class FeedClock:
    """The feed configuration (read once, lazily) and each partition's last known position.

    Known positions are guesses: an inline commit that guessed low is refused by the counter's
    condition, which returns the actual position, and :meth:`learn` corrects the guess."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._config: tuple[str, int] | None = None
        #: Whether the table has a configuration item: an inline commit to a table without one
        #: records it (so that nobody can change it under that commit's feet).
        self.recorded = True
        self._last: dict[int, int] = {}
        self._lock = threading.Lock()

    def _learn_config(self) -> tuple[str, int]:
        identity = self.backend.identity()
        if identity is not None:
            with _KNOWN_LOCK:
                known = _KNOWN.get(identity)
            if known is not None:
                return known
        config, counter = self.backend.get([records.FEED_CONFIG_KEY, records.counter_key(0)])
        if config is None:
            # Made before the feed existed, or never set up with create_table: an inline feed
            # of one partition, recorded by the first commit.
            self.recorded = False
            found = (records.INLINE, 1)
        else:
            found = records.feed_config(config)
        if counter is not None and not self.backend.feed_in_items:
            self.learn(0, records.number(counter, records.POSITION))
        if identity is not None and config is not None:
            with _KNOWN_LOCK:
                _KNOWN[identity] = found
        return found

    def config(self) -> tuple[str, int]:
        """``(mode, partitions)`` of the table's feed."""
        if self._config is None:
            found = self._learn_config()
            with self._lock:
                self._config = found
        return self._config

    @property
    def mode(self) -> str:
        """How positions are given: ``"inline"`` (by each commit), ``"indexed"`` (by the
        indexer, after the commit) or ``"none"``. Embedded backends are always inline."""
        mode = self.config()[0]
        if mode == records.INDEXED and self.backend.serialised:
            return records.INLINE
        return mode

    def partitions(self) -> int:
        """The table's number of feed partitions; 0 when it has no feed."""
        mode, partitions = self.config()
        return 0 if mode == records.NO_FEED else partitions

    def configure(self, feed: str | None, partitions: int | None) -> None:
        """Record the table's feed (``create_table``). A table keeps the mode and number it was
        created with, so streams never move between partitions: asking for others is
        :class:`InvalidInput`; leaving one out (``None``) keeps the table's. For a new table,
        ``feed=None`` is indexed where the backend has a change stream, inline elsewhere, and
        ``partitions=None`` is 1."""
        requested, partitions = check_config(feed, partitions)
        if partitions == 0:
            feed = records.NO_FEED
        elif requested is None:
            feed = records.INLINE if self.backend.serialised else records.INDEXED
        else:
            feed = requested
        if feed == records.INDEXED and self.backend.serialised:
            feed = records.INLINE  # positions in the write transaction, whatever the mode
        wanted = (feed, 1 if partitions is None else partitions)
        implicit = (records.INLINE, 1)
        if wanted != implicit:
            config, counter = self.backend.get([records.FEED_CONFIG_KEY, records.counter_key(0)])
            given = counter is not None
            if self.backend.feed_in_items:
                given = self.backend.last_position(0) > 0
            if config is None and given and requested is None and partitions is None:
                wanted = implicit  # positions given before it was configured: keep them so
            elif config is None and given:
                raise InvalidInput(
                    f"the table already has a feed ({_describe(implicit)}, given by commits made "
                    f"before it was configured); it cannot change to {_describe(wanted)}"
                )
        try:
            self.backend.write([self.config_put(wanted)])
        except ConditionFailed as e:
            had = records.feed_config(e.item) if e.item is not None else None
            if (
                had is not None
                and (requested is None or had[0] == wanted[0])
                and (partitions is None or had[1] == wanted[1])
            ):
                wanted = had  # what was left out is the table's
            if had != wanted:
                raise InvalidInput(
                    f"the table's feed was created as {_describe(had)}; it cannot change to "
                    f"{_describe(wanted)} (streams would move between partitions, or positions "
                    "would be given two ways)"
                ) from None
        self._settle(wanted)
        feed, partitions = wanted
        if feed == records.INDEXED:
            self.backend.enable_change_stream()
        elif feed == records.INLINE:
            # Where each partition's counter stands, so that the first commit is one request.
            self.refresh(range(partitions))

    def config_put(self, wanted: tuple[str, int]) -> Write:
        """The write that records ``wanted`` on a table without a configuration (refused if
        another process recorded one first)."""
        return Put(records.feed_config_item(*wanted), Condition(exists=False))

    def _settle(self, found: tuple[str, int]) -> None:
        with self._lock:
            self._config = found
            self.recorded = True
        identity = self.backend.identity()
        if identity is not None:
            with _KNOWN_LOCK:
                _KNOWN[identity] = found

    def recorded_implicit(self) -> None:
        """A commit recorded the implicit configuration (an inline feed of one partition)."""
        self._settle((records.INLINE, 1))

    def learn_config(self, item: Item | None) -> None:
        """A commit that tried to record the implicit configuration found one recorded."""
        if item is not None:
            self._settle(records.feed_config(item))

    def partition_of(self, pk: str) -> int:
        """The stream's feed partition: a stable hash of its key."""
        partitions = self.partitions()
        return zlib.crc32(pk.encode("utf-8")) % partitions if partitions > 1 else 0

    def check(self, partition: object) -> int:
        partitions = self.partitions()
        if partitions == 0:
            raise InvalidInput("this table was created without a feed (feed='none')")
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
        (position,) = self._read([partition])
        self.learn(partition, position)
        return position

    def refresh(self, partitions: Iterable[int]) -> None:
        """Read the counters of ``partitions`` again, in one request (they moved)."""
        wanted = list(partitions)
        for partition, position in zip(wanted, self._read(wanted), strict=True):
            self.learn(partition, position)

    def _read(self, partitions: list[int]) -> list[int]:
        """The last positions of ``partitions`` as the table holds them: their counters in one
        request, or, where the backend keeps the feed in the items, a query each."""
        if self.backend.feed_in_items:
            return [self.backend.last_position(partition) for partition in partitions]
        items = self.backend.get([records.counter_key(p) for p in partitions])
        return [0 if item is None else records.number(item, records.POSITION) for item in items]

    def learn(self, partition: int, position: int) -> None:
        with self._lock:
            self._last[partition] = max(position, self._last.get(partition, 0))


def _describe(config: tuple[str, int] | None) -> str:
    if config is None:
        return "nothing"
    mode, partitions = config
    return "without a feed" if mode == records.NO_FEED else f"{mode} with {partitions} partition(s)"
