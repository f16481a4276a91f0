"""Removing data: erasing a stream for good (every version, keyframe and the head leave the
table, and the stream's feed entries keep their positions but no longer name it), and purging
versions past their type's ``max_age``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from eventstore import records
from eventstore.backends.base import (
    MAX_WRITE_ACTIONS,
    Backend,
    ConditionFailed,
    Delete,
    Item,
    Put,
    SortCondition,
    Write,
)
from eventstore.errors import StreamNotFound
from eventstore.indexer import Indexer
from eventstore.keys import VERSION_PREFIX, split_pk
from eventstore.positions import FeedClock

# How long an erasure on an indexed feed waits for the stream's latest version to be indexed.
_INDEX_WAIT = 30.0

_log = logging.getLogger("eventstore")


@dataclass
class ErasureReport:
    """What an erase removed: stream items deleted, feed entries cleared, atomic writes made."""

    items_deleted: int = 0
    feed_entries_cleared: int = 0
    writes: int = 0
    #: Objects of offloaded states deleted from the blob store (every version of each).
    objects_deleted: int = 0
    #: Whether the backend's own files hold none of the erased bytes any more. ``False`` on
    #: SQLite when another process held a read transaction: the write-ahead log keeps them
    #: until ``store.backend.forget_deleted()`` succeeds (it returns ``True`` then).
    files_clean: bool = True


def erase(
    backend: Backend,
    clock: FeedClock,
    pk: str,
    *,
    indexer: Indexer | None = None,
    progress: Callable[[ErasureReport], None] | None = None,
) -> ErasureReport:
    """Remove the stream ``pk``; safe to run again after an interruption (it goes on where it
    stopped). Appends to the stream are refused while it runs; afterwards the stream never
    existed (a new one may start under the same id, from version 1). :class:`StreamNotFound` if
    the stream holds nothing. On an indexed feed, ``indexer`` first indexes what the table's
    stream still holds of it, so that no later indexing names it again."""
    report = ErasureReport()
    pending: list[Write] = []

    def flush() -> None:
        if pending:
            backend.write(pending)
            report.writes += 1
            pending.clear()
            if progress is not None:
                progress(report)

    def add(*writes: Write) -> None:
        # Writes added together go in one atomic write (a version's delete and its marker).
        if len(pending) + len(writes) > MAX_WRITE_ACTIONS:
            flush()
        pending.extend(writes)

    head = backend.get([records.head_key(pk)])[0]
    if head is None and not next(iter(backend.pages(pk))).items:
        raise StreamNotFound(*split_pk(pk))
    if head is not None:
        # First out of every index, and closed to appends (a restart after a delete included).
        backend.write([records.erasing_head(pk)])
        report.writes += 1
    partition = clock.partition_of(pk) if clock.partitions() else None
    if partition is not None and clock.mode == records.INDEXED and indexer is not None:
        _index_first(indexer, partition, pk, head)
    for page in backend.pages(pk, sk=SortCondition("begins_with", VERSION_PREFIX)):
        for item in page.items:
            delete = Delete((pk, str(item[records.SK])))
            held = records.feed_position(item) if backend.feed_in_items else None
            if held is None:
                add(delete)
            else:
                # The version holds its feed position: a marker keeps the position taken.
                add(delete, Put(records.erased_marker(*held)))
                report.feed_entries_cleared += 1
            report.items_deleted += 1
    if partition is not None and not backend.feed_in_items:
        # Every entry naming the stream, found in the feed itself: versions trimmed, or removed
        # by DynamoDB's TTL, left entries that no version item leads to.
        report.feed_entries_cleared += _clear_feed(backend, clock, partition, pk, report, add)
    flush()
    report.writes += _forget_progress(backend, pk)
    # Before the head goes: until then no append can start the stream again and upload objects
    # that this would take.
    report.objects_deleted = backend.forget_stream(pk)
    if head is not None:
        backend.write([Delete(records.head_key(pk))])
        report.writes += 1
    report.files_clean = backend.forget_deleted()
    if not report.files_clean:
        _log.warning(
            "erased %s, but another connection's read transaction keeps the write-ahead log "
            "from being truncated: call store.backend.forget_deleted() again once it ends",
            pk,
        )
    _log.info(
        "erased %s: %d items, %d feed entries cleared, %d writes",
        pk,
        report.items_deleted,
        report.feed_entries_cleared,
        report.writes,
    )
    if progress is not None:
        progress(report)
    return report


def _forget_progress(backend: Backend, pk: str) -> int:
    """Delete the progress of stopped rebuilds of the stream's type that names the stream (it
    holds the last head they passed): such a rebuild starts again from the first stream. Feed
    checkpoints hold positions only, and the index's progress holds stream sequence numbers."""
    type_name = split_pk(pk)[0]
    gone = [
        Delete((str(item[records.PK]), str(item[records.SK])))
        for page in backend.pages(records.rebuild_progress_key(type_name, "")[0])
        for item in page.items
        if records.progress_names(item, pk)
    ]
    if gone:
        backend.write(gone[:MAX_WRITE_ACTIONS])
        _log.info("erasing %s: %d rebuild progress items named it, deleted", pk, len(gone))
    return 1 if gone else 0


def _index_first(indexer: Indexer, partition: int, pk: str, head: Item | None) -> None:
    """Index the stream's versions that the table's stream holds and the index does not yet,
    up to its latest (commits to it are refused from now on), so none is indexed after the
    erasure clears the index."""
    if head is None or records.is_erasing(head):
        return
    latest = records.number(head, records.VERSION)
    deadline = time.monotonic() + _INDEX_WAIT
    if indexer.wait_for(partition, pk, latest, deadline=deadline, catch_up=True) is None:
        _log.warning(
            "erasing %s: version %d is not in the feed's index after %.0f s; if an indexer "
            "indexes it later, its entry will name the stream (erase again then)",
            pk,
            latest,
            _INDEX_WAIT,
        )


def _clear_feed(
    backend: Backend,
    clock: FeedClock,
    partition: int,
    pk: str,
    report: ErasureReport,
    add: Callable[[Write], None],
) -> int:
    """Make every feed entry of ``partition`` that names ``pk`` name nothing (keeping its
    position); return how many. Reads the whole partition's feed."""
    cleared = 0
    last = clock.last(partition, read=True)
    for block in range(0, last // records.FEED_BLOCK + 1):
        for page in backend.pages(records.entry_block(partition, block * records.FEED_BLOCK)):
            for item in page.items:
                if not records.is_chunk(item):
                    if item.get(records.STREAM) == pk:
                        position = int(str(item[records.SK]))
                        add(Put(records.erased_entry(partition, position)))
                        cleared += 1
                    continue
                while True:
                    entries = records.feed_entries(item)
                    if not any(found == pk for _, found, _ in entries):
                        break
                    blanked = [("", 0) if p == pk else (p, n) for _, p, n in entries]
                    try:
                        backend.write([records.chunk_rewrite(item, partition, blanked)])
                    except ConditionFailed as e:
                        # Another erasure rewrote the chunk first: blank ours in its version.
                        assert e.item is not None
                        item = e.item
                        continue
                    report.writes += 1
                    cleared += sum(1 for _, p, _ in entries if p == pk)
                    break
    return cleared


def purge_stream(backend: Backend, pk: str, now: float) -> int:
    """Remove a stream's versions whose expiry has passed (expiries grow with the version, so
    they are the oldest ones) and move its retention bound past them; returns how many went."""
    head = backend.get([records.head_key(pk)])[0]
    if head is None:
        return 0
    lowest = records.number(head, records.LOWEST)
    target = lowest
    for page in backend.pages(pk, sk=SortCondition("begins_with", VERSION_PREFIX)):
        for item in page.items:
            position = records.sort_position(item)
            if position is None or position[1]:
                continue
            expires = item.get(records.EXPIRES)
            if not isinstance(expires, int) or expires > now:
                break
            target = position[0] + 1
        else:
            continue
        break
    removed = 0
    while lowest < target:
        deletes, reached = records.trim_writes(pk, lowest, target, MAX_WRITE_ACTIONS - 1)
        try:
            backend.write([*deletes, records.bound_update(pk, lowest, reached)])
        except ConditionFailed:
            return removed  # an append trimmed meanwhile; the next purge goes on from there
        removed += reached - lowest
        lowest = reached
    if removed:
        _log.info("purged %s: %d versions past max_age", pk, removed)
    return removed
