"""Rebuilding a projection: recompute its index keys on every head of its resource type.

How it works, and why:

- The heads are listed from the store's own creation-order index (``gsi0``), not by scanning the
  table: the listing holds only the heads of this one type (on DynamoDB a few dozen bytes each,
  read 1,000 per request), where a scan would read every version of every type.
- The listing is read by the calling thread and cut into chunks of 33 heads; ``segments`` worker
  threads take chunks as they come, so the work stays evenly spread whatever the shape of the
  data. Per chunk, one batch read (head, latest version and its keyframe: 99 keys, one
  ``BatchGetItem``) gives what is needed to compute the keys.
- A head whose index attributes already are what the projection computes is left alone: a second
  run writes nothing. Any other head gets one conditional update of just the index attributes,
  applied only if the head is still at the version that was read. If a concurrent append moved it
  on, nothing is written and the head is counted as *skipped as newer* (that append wrote the
  keys itself if its process declares the projection).
- Progress is kept in the table (item ``pk="_rebuild#<type>#<projection>", sk="c"``): the listing
  position below which every head is done. It is saved every ``checkpoint_every`` seconds and when
  the run fails or is interrupted; the next run resumes there, and a finished run removes it.

Run a rebuild after every process that appends declares the projection; heads written by a
process that does not know it are not kept up to date.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from eventstore import records
from eventstore.backends.base import ConditionFailed, Delete, Item, Key, Put, Value, index_keys
from eventstore.console import duration
from eventstore.errors import (
    BackendError,
    InvalidInput,
    ProjectionError,
    Shredded,
    VersionNotFound,
)
from eventstore.indexing import IndexProjection, compute_key, index_partition, unchanged
from eventstore.keys import KEYFRAME_INTERVAL, keyframe_of
from eventstore.querying import start_key
from eventstore.store import EventStore

#: Heads handled per batch read (three keys each; DynamoDB's BatchGetItem takes 100 keys).
CHUNK = 33
#: Heads listed per request: keeps memory flat (a 1 MB DynamoDB page would hold ~10,000 entries)
#: for one request per 1,000 heads.
LISTING_PAGE = 1000
#: Most worker threads a rebuild may use.
MAX_SEGMENTS = 64
# How often a head whose version moved between the listing and the read is read again.
_READ_ROUNDS = 3


@dataclass
class RebuildReport:
    """What a rebuild did. ``scanned`` = ``updated`` + ``unchanged`` + ``skipped_newer`` +
    ``shredded`` (heads of encrypted streams whose subject's key was shredded: passed over, their
    index entries left as they were).

    ``total`` is the number of heads the run had to visit when it started (only counted when a
    ``progress`` callback is given); ``resumed`` says whether it continued from a checkpoint.
    A resumed run's counts and ``seconds`` are totals over every run of the rebuild (the earlier
    runs' counts come from the checkpoint); ``earlier`` is how many heads those runs scanned."""

    resource_type: str
    projection: str
    scanned: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_newer: int = 0
    shredded: int = 0
    seconds: float = 0.0
    total: int | None = None
    resumed: bool = False
    finished: bool = False
    earlier: int = 0

    def _add(self, other: _Counts) -> None:
        self.scanned += other.scanned
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.skipped_newer += other.skipped_newer
        self.shredded += other.shredded

    def __str__(self) -> str:
        return (
            f"{self.resource_type}/{self.projection}: scanned {self.scanned}, updated "
            f"{self.updated}, unchanged {self.unchanged}, skipped as newer {self.skipped_newer}, "
            + (f"shredded {self.shredded}, " if self.shredded else "")
            + f"{duration(self.seconds)}"
        )


@dataclass
class _Counts:
    scanned: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_newer: int = 0
    shredded: int = 0


@dataclass
class _Checkpoint:
    key: Key
    saved: bool = False
    last_save: float = field(default_factory=time.monotonic)


def checkpoint_key(resource_type: str, projection: str) -> Key:
    """Where a rebuild of this projection keeps its progress."""
    return records.rebuild_progress_key(resource_type, projection)


def rebuild(
    store: EventStore,
    projection: type[Any] | IndexProjection,
    *,
    segments: int = 4,
    progress: Callable[[RebuildReport], None] | None = None,
    checkpoint: bool = True,
    reset: bool = False,
    checkpoint_every: float = 5.0,
) -> RebuildReport:
    """Recompute ``projection``'s index keys on every head of its resource type.

    ``projection`` (class or instance) must be declared on ``store``. ``segments`` worker threads
    process the heads. ``progress`` is called in the calling thread after each chunk with the
    report so far (and makes the rebuild count the heads first, for ``total``). With
    ``checkpoint`` the run resumes from the progress saved by an unfinished earlier run, and saves
    its own; ``reset`` discards saved progress first. Raises :class:`ProjectionError` if the key
    function fails on a stored state (the stream is named; progress up to there is saved).
    """
    declared = store.declared_projection(projection)
    if isinstance(segments, bool) or not isinstance(segments, int):
        raise InvalidInput(f"segments must be an int, got {segments!r}")
    if not 1 <= segments <= MAX_SEGMENTS:
        raise InvalidInput(f"segments must be 1 to {MAX_SEGMENTS}, got {segments}")
    cls = declared.resource_class
    report = RebuildReport(cls.resource_type, declared.name)
    began = time.monotonic()
    earlier_seconds = 0.0
    saved = _Checkpoint(checkpoint_key(cls.resource_type, declared.name))
    backend = store.backend
    start: Item | None = None
    legacy = records.legacy_rebuild_progress_key(cls.resource_type, declared.name)
    if reset:
        backend.write([Delete(saved.key), Delete(legacy)])
    elif checkpoint:
        kept, old = backend.get([saved.key, legacy])
        if kept is None and old is not None:
            # Progress saved where rebuilds kept it before: moved to today's key.
            moved = {**old, records.PK: saved.key[0], records.SK: saved.key[1]}
            backend.write([Put(moved), Delete(legacy)])
        start, earlier, earlier_seconds = _load_checkpoint(store, saved.key)
        report.resumed = saved.saved = start is not None
        report._add(earlier)
        report.earlier = earlier.scanned
        began -= earlier_seconds
    if progress is not None:
        report.total = report.earlier + sum(
            len(chunk) for chunk, _ in _listing(store, cls.resource_type, start)
        )
        progress(replace(report))
    done = start
    pending: deque[tuple[Future[_Counts], Item]] = deque()
    pool = ThreadPoolExecutor(max_workers=segments, thread_name_prefix="rebuild")
    try:
        for chunk, end in _listing(store, cls.resource_type, start):
            pending.append((pool.submit(_process, store, declared, chunk), end))
            # Results are taken in listing order, so the checkpoint only ever covers heads
            # that are done; a bounded number of chunks is in flight.
            while pending and (pending[0][0].done() or len(pending) >= 2 * segments):
                future, end = pending[0]
                report._add(future.result())
                report.seconds = time.monotonic() - began
                pending.popleft()
                done = end
                if checkpoint:
                    _maybe_save(store, saved, done, report, checkpoint_every)
                if progress is not None:
                    report.seconds = time.monotonic() - began
                    progress(replace(report))
        while pending:
            future, end = pending[0]
            report._add(future.result())
            pending.popleft()
            done = end
            if progress is not None:
                report.seconds = time.monotonic() - began
                progress(replace(report))
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        if checkpoint and done is not None and done != start:
            report.seconds = time.monotonic() - began
            with contextlib.suppress(Exception):
                _save(store, saved, done, report)
        raise
    pool.shutdown(wait=True)
    if saved.saved:
        backend.write([Delete(saved.key)])
    report.seconds = time.monotonic() - began
    report.finished = True
    return report


def _listing(
    store: EventStore, type_name: str, start: Item | None
) -> Iterator[tuple[list[Item], Item]]:
    """Chunks of heads in creation order after ``start``, each with the position at its end."""
    while True:
        page = store.backend.query(
            type_name, index=records.LISTING, start=start, limit=LISTING_PAGE
        )
        for i in range(0, len(page.items), CHUNK):
            chunk = page.items[i : i + CHUNK]
            yield chunk, start_key(chunk[-1], records.LISTING)
        if page.last_key is None:
            return
        start = page.last_key


def _process(store: EventStore, projection: IndexProjection, chunk: list[Item]) -> _Counts:
    """Bring the heads of one chunk up to date; counts what happened."""
    cls = projection.resource_class
    type_name = cls.resource_type
    pk_attr, sk_attr = index_keys(projection.index)
    counts = _Counts(scanned=len(chunk))
    # (stream, version the listing says it is at); the head read alongside tells the truth.
    todo = [(str(head[records.PK]), records.number(head, records.VERSION)) for head in chunk]
    for _ in range(_READ_ROUNDS):
        if not todo:
            break
        keys: list[Key] = []
        for pk, number in todo:
            keys += [
                records.head_key(pk),
                records.version_key(pk, number),
                records.keyframe_key(pk, number),
            ]
        found = store.backend.get(keys, consistent=True)
        again: list[tuple[str, int]] = []
        for position, (pk, number) in enumerate(todo):
            head, item, keyframe = found[3 * position : 3 * position + 3]
            if head is None:
                counts.scanned -= 1  # gone since it was listed; nothing to index
                continue
            current = records.number(head, records.VERSION)
            if current != number or item is None:
                again.append((pk, current))
                continue
            base = keyframe_of(number, KEYFRAME_INTERVAL)
            reader = store.reader
            try:
                known = {base: reader.keyframe(pk, base, keyframe)} if keyframe else {}
                state = reader.decode(cls, records.stored_version(pk, number, item), known).state
            except Shredded:
                counts.shredded += 1  # nothing of it can be read again: passed over
                continue
            except VersionNotFound:
                # Trimmed between the batch reads: the append that trimmed it moved the head on.
                again.append((pk, current + 1))
                continue
            try:
                key = compute_key(projection, state)
            except ProjectionError as e:
                raise ProjectionError(f"{e} (on {pk!r} version {number})") from e
            to_set: dict[str, Value] = {}
            to_remove: frozenset[str] = frozenset()
            if key is None:
                to_remove = frozenset((pk_attr, sk_attr))
            else:
                to_set = {
                    pk_attr: index_partition(type_name, projection.name, key[0]),
                    sk_attr: key[1],
                }
            if unchanged(head, to_set, to_remove):
                counts.unchanged += 1
                continue
            try:
                store.backend.write([records.index_update(pk, number, to_set, to_remove)])
                counts.updated += 1
            except ConditionFailed:
                counts.skipped_newer += 1
        todo = again
    # Heads that kept moving while they were read: their appends carry the keys.
    counts.skipped_newer += len(todo)
    return counts


def _load_checkpoint(store: EventStore, key: Key) -> tuple[Item | None, _Counts, float]:
    """Where an earlier run stopped, what the runs before this one did, and for how long."""
    item = store.backend.get([key])[0]
    if item is None:
        return None, _Counts(), 0.0
    raw = records.checkpoint_value(item)
    try:
        saved = json.loads(raw) if isinstance(raw, str) else None
        if isinstance(saved, dict) and "position" in saved:
            # Counts a version of the library did not keep yet read as 0.
            counts = _Counts(**{name: int(saved.get(name, 0)) for name in _COUNTED})
            position, seconds = saved["position"], float(saved["seconds"])
        else:  # saved by a version that kept only the position
            position, counts, seconds = saved, _Counts(), 0.0
    except (ValueError, TypeError, KeyError):
        position = None
    if not isinstance(position, dict) or records.PK not in position:
        raise BackendError(f"rebuild checkpoint {key[0]!r} is damaged; rerun with reset")
    return position, counts, seconds


_COUNTED = ("scanned", "updated", "unchanged", "skipped_newer", "shredded")


def _save(store: EventStore, saved: _Checkpoint, position: Item, report: RebuildReport) -> None:
    value = {
        "position": position,
        "seconds": report.seconds,
        **{name: getattr(report, name) for name in _COUNTED},
    }
    store.backend.write(
        [
            Put(
                records.checkpoint_item(
                    saved.key,
                    json.dumps(value, sort_keys=True, ensure_ascii=False),
                    count=report.scanned,
                )
            )
        ]
    )
    saved.saved = True
    saved.last_save = time.monotonic()


def _maybe_save(
    store: EventStore, saved: _Checkpoint, position: Item, report: RebuildReport, every: float
) -> None:
    if time.monotonic() - saved.last_save >= every:
        _save(store, saved, position, report)
