"""Removing data: erasing a stream for good (every version, keyframe and the head leave the
table, and the stream's feed entries keep their positions but no longer name it), and purging
versions past their type's ``max_age``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from eventstore import records
from eventstore.backends.base import (
    MAX_WRITE_ACTIONS,
    Backend,
    ConditionFailed,
    Delete,
    Put,
    SortCondition,
    Write,
)
from eventstore.errors import StreamNotFound
from eventstore.keys import VERSION_PREFIX, split_pk
from eventstore.positions import FeedClock

_log = logging.getLogger("eventstore")


@dataclass
class ErasureReport:
    """What an erase removed: stream items deleted, feed entries cleared, atomic writes made."""

    items_deleted: int = 0
    feed_entries_cleared: int = 0
    writes: int = 0


def erase(
    backend: Backend,
    clock: FeedClock,
    pk: str,
    *,
    progress: Callable[[ErasureReport], None] | None = None,
) -> ErasureReport:
    """Remove the stream ``pk``; safe to run again after an interruption (it goes on where it
    stopped). Appends to the stream are refused while it runs; afterwards the stream never
    existed (a new one may start under the same id, from version 1). :class:`StreamNotFound` if
    the stream holds nothing."""
    report = ErasureReport()
    pending: list[Write] = []

    def flush() -> None:
        if pending:
            backend.write(pending)
            report.writes += 1
            pending.clear()
            if progress is not None:
                progress(report)

    def add(write: Write) -> None:
        pending.append(write)
        if len(pending) >= MAX_WRITE_ACTIONS:
            flush()

    head = backend.get([records.head_key(pk)])[0]
    if head is None and not next(iter(backend.pages(pk))).items:
        raise StreamNotFound(*split_pk(pk))
    if head is not None:
        # First out of every index, and closed to appends (a restart after a delete included).
        backend.write([records.erasing_head(pk)])
        report.writes += 1
    partition = clock.partition_of(pk) if clock.partitions() else None
    cleared: set[int] = set()
    for page in backend.pages(pk, sk=SortCondition("begins_with", VERSION_PREFIX)):
        for item in page.items:
            add(Delete((pk, str(item[records.SK]))))
            report.items_deleted += 1
            position = item.get(records.POSITION)
            if partition is not None and isinstance(position, int):
                add(Put(records.erased_entry(partition, position)))
                cleared.add(position)
                report.feed_entries_cleared += 1
    if partition is not None and (head is None or records.number(head, records.LOWEST) > 1):
        # Versions trimmed earlier left feed entries naming the stream, and no version item to
        # find them by: read the partition's feed for them.
        last = clock.last(partition, read=True)
        for block in range(0, last // records.FEED_BLOCK + 1):
            for page in backend.pages(records.entry_block(partition, block * records.FEED_BLOCK)):
                for item in page.items:
                    position = int(str(item[records.SK]))
                    if item.get(records.STREAM) == pk and position not in cleared:
                        add(Put(records.erased_entry(partition, position)))
                        report.feed_entries_cleared += 1
    flush()
    if head is not None:
        backend.write([Delete(records.head_key(pk))])
        report.writes += 1
    backend.forget_deleted()
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
