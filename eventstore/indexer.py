"""The indexed feed's indexer: gives committed versions their feed positions from the table's
change stream (DynamoDB Streams), after the commit, so that appends never share an item.

It reads each shard of the stream from where the index says it stopped, picks the records that
insert a version item, and writes, in one atomic write per batch: chunk items naming the new
positions (many per item), each partition's counter moved from the value it read, and the
shard's progress moved from the sequence number it read. So:

- positions are gapless per partition and never reordered: a chunk is only written together with
  the counter move that makes room for it, on the condition that nobody moved it first;
- each committed version is indexed exactly once: a record is indexed together with the move of
  its shard's progress past it, on the condition that nobody moved it first. Two indexers at
  once (a redeploy, a duplicate Lambda, a store catching up on its own) race on those conditions:
  the loser reads where the winner got and goes on from there; an indexer killed mid-batch wrote
  all of a batch or none of it; a record delivered twice is behind the progress the second time;
- a stream's versions are indexed in version order: a stream's version items share a partition
  key, so their records are in one shard in the order they were written, and shards are read
  parents first.

The command line (``eventstore index``), the Lambda handler (``eventstore.integrations.aws_lambda``)
and a store catching up before a feed read all run :meth:`Indexer.catch_up`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from eventstore import bridge, records
from eventstore.backends.base import (
    MAX_WRITE_ACTIONS,
    Backend,
    Change,
    ChangeStream,
    Condition,
    ConditionFailed,
    Put,
    Write,
)
from eventstore.errors import InvalidInput
from eventstore.keys import parse_sk
from eventstore.positions import FeedClock
from eventstore.reading import scanned_heads

_log = logging.getLogger("eventstore")

#: Stream records read per request (DynamoDB Streams' maximum).
READ_LIMIT = 1000
# How long a store trusts the shard list it read (new shards appear every few hours on AWS).
_SHARDS_TTL = 10.0
# Conflicting indexers retry this many times in a row before giving up for this pass.
_MAX_RACES = 50


@dataclass
class IndexReport:
    """What a pass of the indexer did: stream records read, versions given positions, atomic
    writes made, and writes lost to another indexer (then redone from where it got)."""

    records: int = 0
    indexed: int = 0
    writes: int = 0
    races: int = 0
    #: Sequence numbers of the records this pass read and left behind the index's progress
    #: (indexed, or nothing to index).
    processed: set[str] = field(default_factory=set)
    #: Shards left for a later pass: their parent shard is not fully indexed yet.
    waiting: int = 0
    #: Whether the pass read every shard to its end.
    complete: bool = False

    def add(self, other: IndexReport) -> None:
        """Count ``other``'s work in this report (a follower's running total)."""
        self.records += other.records
        self.indexed += other.indexed
        self.writes += other.writes
        self.races += other.races


@dataclass
class RepairReport:
    """What a repair found: streams and retained versions checked, versions the index lacked
    (now indexed), and positions read from the index."""

    streams: int = 0
    versions: int = 0
    missing: int = 0
    positions: int = 0


def version_of(change: Change) -> tuple[str, int] | None:
    """``(stream pk, version)`` when ``change`` inserts a version item, else ``None``."""
    if change.kind != "INSERT":
        return None
    pk, sk = change.key
    if pk.startswith("_"):
        return None  # the store's own bookkeeping, the index included
    parsed = parse_sk(sk)
    if parsed is None or parsed[1]:
        return None
    return pk, parsed[0]


class Indexer:
    """Indexes a table's change stream into its feed. Safe to share between threads (one pass at
    a time per indexer) and to run in several processes at once."""

    def __init__(self, backend: Backend, clock: FeedClock) -> None:
        self.backend = backend
        self.clock = clock
        # Held across requests: an IOLock, so async stores wait for it on their event loop.
        self._pass = bridge.IOLock()
        self._stream: ChangeStream | None = None
        self._shards: tuple[float, list[tuple[str, str | None]]] | None = None
        # Per shard: the progress the index holds (as last read or written), and how far this
        # indexer has read (records past the progress that needed nothing).
        self._progress: dict[str, tuple[str | None, bool]] = {}
        self._read_to: dict[str, str | None] = {}

    def stream(self) -> ChangeStream:
        if self._stream is None:
            if self.clock.mode != records.INDEXED:
                raise InvalidInput(f"this table's feed is {self.clock.mode!r}, not indexed")
            found = self.backend.change_stream()
            if found is None:
                raise InvalidInput(
                    "the table has no DynamoDB stream; `eventstore create-table URL` turns it on"
                )
            self._stream = found
        return self._stream

    def catch_up(
        self,
        *,
        progress: Callable[[IndexReport], None] | None = None,
        until: float | None = None,
        report: IndexReport | None = None,
    ) -> IndexReport:
        """Index every record the stream holds now, shard by shard; return what was done (in
        ``report`` if given, which then also tells how far a pass that raised got). ``until``
        (a ``time.monotonic()`` deadline) ends the pass early."""
        report = IndexReport() if report is None else report
        with self._pass:
            self._pass_over(report, progress, until)
        return report

    def _pass_over(
        self,
        report: IndexReport,
        progress: Callable[[IndexReport], None] | None,
        until: float | None,
    ) -> None:
        """One pass over every shard, the caller holding ``_pass``."""
        for shard, parent in self._shard_list():
            if until is not None and time.monotonic() > until:
                return
            self._catch_up_shard(shard, parent, report, progress, until)
        report.complete = until is None or time.monotonic() <= until

    def _shard_list(self) -> list[tuple[str, str | None]]:
        now = time.monotonic()
        if self._shards is None or now - self._shards[0] > _SHARDS_TTL:
            listed = [(s.shard_id, s.parent) for s in self.stream().shards()]
            self._shards = (now, listed)
        return self._shards[1]

    def _load(self, shards: Sequence[str]) -> None:
        found = self.backend.get([records.shard_key(s) for s in shards])
        for shard, item in zip(shards, found, strict=True):
            self._progress[shard] = records.shard_progress(item)
            self._read_to[shard] = self._progress[shard][0]

    def _catch_up_shard(
        self,
        shard: str,
        parent: str | None,
        report: IndexReport,
        progress: Callable[[IndexReport], None] | None,
        until: float | None,
    ) -> None:
        missing = [s for s in (shard, parent) if s is not None and s not in self._progress]
        if missing:
            self._load(missing)
        if self._progress[shard][1]:
            return  # closed and fully indexed
        if (
            parent is not None
            and parent in self._stream_shard_ids()
            and not self._progress[parent][1]
        ):
            report.waiting += 1
            return  # its parent's records come first
        races = 0
        while until is None or time.monotonic() <= until:
            read_to = self._read_to[shard]
            changes, closed = self.stream().read(shard, read_to, limit=READ_LIMIT)
            if read_to is not None:
                # A record at or before where this shard was read to is a repeat: dropped.
                changes = [c for c in changes if int(c.sequence) > int(read_to)]
            report.records += len(changes)
            versions = [(c, v) for c in changes if (v := version_of(c)) is not None]
            if not versions and not (closed and not changes):
                # Nothing to index (heads, trims, the index's own writes): read on without
                # writing, or the index's writes would feed themselves.
                report.processed.update(c.sequence for c in changes)
                if changes:
                    self._read_to[shard] = changes[-1].sequence
                    continue
                return
            last = changes[-1].sequence if changes else self._read_to[shard]
            try:
                self._write(shard, versions, last, done=closed)
            except ConditionFailed:
                # Another indexer moved the shard's progress or a counter first: go on from
                # where the index now says.
                report.races += 1
                races += 1
                self._load([shard])
                self.clock.refresh(range(self.clock.partitions()))
                if races > _MAX_RACES:
                    _log.warning("index: shard %s lost %d races in a row", shard, races)
                    return
                continue
            report.writes += 1
            report.indexed += len(versions)
            report.processed.update(c.sequence for c in changes)
            if progress is not None:
                progress(report)
            if closed and not changes:
                return
            if closed:
                continue  # mark it done on the next round (it has nothing after these)

    def _stream_shard_ids(self) -> set[str]:
        return {s for s, _ in self._shard_list()}

    def _write(
        self,
        shard: str,
        versions: Sequence[tuple[Change, tuple[str, int]]],
        last: str | None,
        *,
        done: bool,
    ) -> None:
        """Index ``versions`` and move the shard's progress to ``last``, in as many atomic writes
        as the limits need, each moving the progress past the records it indexed."""
        batches: list[list[tuple[Change, tuple[str, int]]]] = [[]]
        sizes: dict[int, int] = {}
        for change, (pk, number) in versions:
            partition = self.clock.partition_of(pk)
            sizes[partition] = sizes.get(partition, 0) + 1
            # A chunk per partition (one more where it crosses a block), its counter, and the
            # progress: kept under the action limit.
            actions = sum(3 + n // records.CHUNK_ENTRIES for n in sizes.values()) + 1
            if actions > MAX_WRITE_ACTIONS or len(batches[-1]) >= 10 * records.CHUNK_ENTRIES:
                batches.append([])
                sizes = {partition: 1}
            batches[-1].append((change, (pk, number)))
        for i, batch in enumerate(batches):
            final = i == len(batches) - 1
            mark = (last or "0") if final else batch[-1][0].sequence
            closing = done and final
            previous = self._progress[shard][0]
            if mark == previous and not closing:
                continue  # nothing read past the progress (only an empty last batch can be)
            self._index(
                [v for _, v in batch], records.shard_move(shard, previous, mark, done=closing)
            )
            self._progress[shard] = (mark, closing)
            self._read_to[shard] = mark

    def _index(self, versions: Sequence[tuple[str, int]], *also: Write) -> None:
        """Give ``versions`` the next positions of their partitions, in one atomic write with
        ``also``; :class:`ConditionFailed` if another indexer moved a counter (or ``also``'s
        item) first."""
        writes, moved = self._plan(versions)
        self.backend.write([*writes, *also])
        for partition, position in moved.items():
            self.clock.learn(partition, position)

    def _plan(self, versions: Sequence[tuple[str, int]]) -> tuple[list[Write], dict[int, int]]:
        """Chunks and counter moves giving ``versions`` the next positions of their partitions."""
        by_partition: dict[int, list[tuple[str, int]]] = {}
        for pk, number in versions:
            by_partition.setdefault(self.clock.partition_of(pk), []).append((pk, number))
        writes: list[Write] = []
        moved: dict[int, int] = {}
        for partition, entries in by_partition.items():
            previous = self.clock.last(partition)
            position = previous
            for run in _chunks(partition, previous + 1, entries):
                writes.append(Put(records.chunk_item(partition, position + 1, run), _ABSENT))
                position += len(run)
            writes.append(records.counter_update(partition, previous, position))
            moved[partition] = position
        return writes, moved

    def follow(
        self,
        stop: threading.Event | bridge.Stop,
        *,
        poll_interval: float = 1.0,
        progress: Callable[[IndexReport], None] | None = None,
    ) -> IndexReport:
        """Catch up again and again until ``stop`` is set, waiting ``poll_interval`` seconds
        after a pass that found nothing; the reports added up. ``progress`` sees the running
        total."""
        total = IndexReport()

        def running(report: IndexReport) -> None:
            if progress is not None:
                now = IndexReport()
                now.add(total)
                now.add(report)
                progress(now)

        while not stop.is_set():
            report = self.catch_up(progress=running)
            total.add(report)
            running(IndexReport())
            if not report.records:
                stop.wait(poll_interval)
        return total

    def wait_for(
        self, partition: int, pk: str, number: int, *, deadline: float, catch_up: bool
    ) -> int | None:
        """The position of version ``number`` of stream ``pk`` once the index holds it (catching
        the index up first with ``catch_up``), or ``None`` at ``deadline`` (``time.monotonic()``).
        Each round searches only the positions given since the round before."""
        searched = 0
        delay = 0.01
        while True:
            if catch_up:
                self.catch_up(until=deadline)
            newest = self.clock.last(partition, read=True)
            found = self.find(partition, pk, number, after=searched)
            if found is not None:
                return found
            searched = newest
            if time.monotonic() + delay > deadline:
                return None
            bridge.sleep(delay)
            delay = min(delay * 2, 0.5)

    def find(self, partition: int, pk: str, number: int, *, after: int = 0) -> int | None:
        """The position of version ``number`` of stream ``pk`` if the index holds it, searching
        from the newest position down to ``after``."""
        for position, found_pk, found_number in self.entries_down(partition, after):
            if found_pk == pk and found_number == number:
                return position
        return None

    def entries_down(self, partition: int, after: int = 0) -> Iterator[tuple[int, str, int]]:
        """The partition's index entries from the newest down to ``after`` (exclusive)."""
        last = self.clock.last(partition, read=True)
        block = last // records.FEED_BLOCK
        while block >= after // records.FEED_BLOCK and block >= 0:
            pk = records.entry_block(partition, block * records.FEED_BLOCK)
            for page in self.backend.pages(pk, forward=False):
                for item in page.items:
                    for entry in reversed(records.feed_entries(item)):
                        if entry[0] <= after:
                            return
                        if entry[0] <= last:
                            yield entry
            block -= 1

    def repair(self, *, progress: Callable[[RepairReport], None] | None = None) -> RepairReport:
        """Index the retained versions that the index lacks (their stream records were gone
        before anything indexed them: an indexer down for more than the stream's 24 hours).
        They get the next positions, each stream's in version order. Reads every head and the
        whole index; run it while no other indexer runs."""
        report = RepairReport()
        with self._pass:
            self._pass_over(IndexReport(), None, None)
            indexed: set[tuple[str, int]] = set()
            for partition in range(self.clock.partitions()):
                for _, pk, number in self.entries_down(partition):
                    indexed.add((pk, number))
                    report.positions += 1
            missing: list[tuple[str, int]] = []
            for head in scanned_heads(self.backend):
                if records.is_erasing(head):
                    continue
                report.streams += 1
                pk = str(head[records.PK])
                info = records.head(head)
                for number in range(info.lowest, info.version + 1):
                    report.versions += 1
                    if (pk, number) not in indexed:
                        missing.append((pk, number))
                if progress is not None:
                    progress(report)
            # Only versions still stored are indexed (one trimmed meanwhile is passed over).
            for start in range(0, len(missing), 100):
                part = missing[start : start + 100]
                found = self.backend.get([records.version_key(pk, n) for pk, n in part])
                present = [v for v, item in zip(part, found, strict=True) if item is not None]
                if present:
                    self._index(present)
                    report.missing += len(present)
                if progress is not None:
                    progress(report)
        return report


_ABSENT = Condition(exists=False)


def _chunks(
    partition: int, first: int, entries: Sequence[tuple[str, int]]
) -> Iterator[list[tuple[str, int]]]:
    """``entries`` cut into chunks from position ``first``: at most CHUNK_ENTRIES each, never
    across a block."""
    position, start = first, 0
    while start < len(entries):
        room = records.FEED_BLOCK - position % records.FEED_BLOCK
        size = min(room, records.CHUNK_ENTRIES, len(entries) - start)
        yield list(entries[start : start + size])
        start += size
        position += size
