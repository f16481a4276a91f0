"""A persistence module for the ``eventsourcing`` library, on eventstore's backends.

Select it the way ``eventsourcing`` selects any persistence module::

    PERSISTENCE_MODULE=eventstore.integrations.eventsourcing
    EVENTSTORE_URL=sqlite:///app.db        # or memory://, or dynamodb://table?region=...
    CREATE_TABLE=y                          # default: create the table if it is missing

Every ``insert_events`` is one atomic write of the backend (one ``TransactWriteItems`` on
DynamoDB, one transaction on SQLite), however many events it holds: the events of each originator
are packed into chunk items, its head moves conditionally (so no version is recorded twice), and
an application recorder puts one log item listing the notifications and moves its notification
counter in the same write, so notification ids are gapless and in commit order (the change
feed's design). Tracking rides in that write too. Limits: at most 48 originators in one insert
(two actions each, within DynamoDB's 100), and a recorder refuses a version not above the
originator's highest one (``IntegrityError``): versions of one originator are recorded in order.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Literal
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    DataError,
    InfrastructureFactory,
    IntegrityError,
    ListenNotifySubscription,
    Notification,
    OperationalError,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.utils import resolve_topic, strtobool

from eventstore import records
from eventstore.backends.base import (
    MAX_WRITE_ACTIONS,
    Backend,
    ConditionFailed,
    Put,
    SortCondition,
    Write,
    WriteConflict,
)
from eventstore.errors import BackendError, EventStoreError
from eventstore.urls import backend_from_url

# How long an insert keeps competing for notification ids while other inserts keep taking them
# (each round lets one through: only a long budget makes starving negligible).
_ID_BUDGET = 60.0

__all__ = [
    "EventstoreAggregateRecorder",
    "EventstoreApplicationRecorder",
    "EventstoreProcessRecorder",
    "EventstoreTrackingRecorder",
    "Factory",
]

# Events of one originator per chunk item: well under DynamoDB's 400 KB item limit.
_CHUNK_BYTES = 300 * 1024
_LOG_PAGE = 100


def _pack(rows: list[list[Any]], blobs: list[bytes]) -> bytes:
    header = json.dumps([rows, [len(b) for b in blobs]], separators=(",", ":")).encode()
    return len(header).to_bytes(4, "big") + header + b"".join(blobs)


def _unpack(data: bytes) -> tuple[list[list[Any]], list[bytes]]:
    size = int.from_bytes(data[:4], "big")
    rows, lengths = json.loads(data[4 : 4 + size])
    blobs, at = [], 4 + size
    for length in lengths:
        blobs.append(data[at : at + length])
        at += length
    return rows, blobs


def _chunks(events: list[StoredEvent]) -> Iterator[list[StoredEvent]]:
    """Consecutive events in groups that fit one chunk item."""
    chunk: list[StoredEvent] = []
    size = 0
    for event in events:
        cost = len(event.state) + len(event.topic) + 32
        if chunk and size + cost > _CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(event)
        size += cost
    if chunk:
        yield chunk


class _Recorder:
    """What every recorder here shares: a backend and a namespace in its table."""

    def __init__(self, backend: Backend, namespace: str) -> None:
        if not namespace or "#" in namespace:
            raise DataError(f"recorder namespace must be non-empty text without '#': {namespace!r}")
        self.backend = backend
        self.namespace = namespace
        self._lock = threading.Lock()

    def _send(
        self,
        writes: list[Write],
        token: str | None = None,
        conflicts: Literal["retry", "raise"] = "retry",
    ) -> None:
        if len(writes) > MAX_WRITE_ACTIONS:
            raise DataError(
                f"one insert needs {len(writes)} writes, over DynamoDB's {MAX_WRITE_ACTIONS} for "
                "one atomic write: insert the events of at most 48 originators at a time"
            )
        try:
            self.backend.write(writes, token=token, conflicts=conflicts)
        except EventStoreError as e:
            if isinstance(e, BackendError):
                raise OperationalError(str(e)) from e
            raise DataError(str(e)) from e


class EventstoreAggregateRecorder(_Recorder, AggregateRecorder):
    """Events of aggregates (or snapshots): one chunk item per originator per insert."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._insert(stored_events, kwargs.get("tracking"))
        return None

    def _plan(self, stored_events: Sequence[StoredEvent]) -> tuple[list[Write], list[list[Any]]]:
        """Chunks and head moves; and for each event (in order), its log entry."""
        by_originator: dict[str, list[StoredEvent]] = {}
        seen: set[tuple[str, int]] = set()
        for event in stored_events:
            key = (str(event.originator_id), event.originator_version)
            if key in seen:
                raise IntegrityError(f"stored events are not unique: {key}")
            seen.add(key)
            by_originator.setdefault(key[0], []).append(event)
        writes: list[Write] = []
        entries: dict[int, list[Any]] = {}
        for oid, events in by_originator.items():
            events.sort(key=lambda e: e.originator_version)
            for chunk in _chunks(events):
                first, last = chunk[0].originator_version, chunk[-1].originator_version
                rows = [[e.originator_version, e.topic] for e in chunk]
                data = _pack(rows, [bytes(e.state) for e in chunk])
                writes.append(Put(records.es_chunk_item(self.namespace, oid, first, last, data)))
                for e in chunk:
                    entries[id(e)] = [
                        oid,
                        isinstance(e.originator_id, UUID),
                        e.originator_version,
                        e.topic,
                        records.es_chunk_sk(last),
                    ]
            writes.append(
                records.es_head_move(
                    self.namespace, oid, events[0].originator_version, events[-1].originator_version
                )
            )
        return writes, [entries[id(e)] for e in stored_events]

    def _extra(self, writes: list[Write], entries: list[list[Any]]) -> list[int] | None:
        """What an application recorder adds to the write (the log); nothing here."""
        return None

    def _insert(
        self, stored_events: Sequence[StoredEvent], tracking: Tracking | None
    ) -> list[int] | None:
        if not stored_events:
            if tracking is not None:
                try:
                    self._send([self._tracking_move(tracking)])
                except ConditionFailed:
                    raise IntegrityError(f"tracking {tracking} already recorded") from None
            return None
        began = time.monotonic()
        while True:
            writes, entries = self._plan(stored_events)
            heads = len(writes)
            ids = self._extra(writes, entries)
            if tracking is not None:
                writes.append(self._tracking_move(tracking))
            try:
                self._send(writes, conflicts="raise" if ids else "retry")
            except WriteConflict as e:
                # Other inserts were moving the notification counter (DynamoDB's
                # TransactionConflict): read it again and retry at once.
                if not all(i >= heads for i in e.indexes):
                    time.sleep(random.uniform(0, 0.05))
                self._forget()
                if time.monotonic() - began < _ID_BUDGET:
                    continue
                raise OperationalError("gave up competing for notification ids") from None
            except ConditionFailed as e:
                if all(i >= heads and not self._is_tracking(writes, i) for i in e.failures):
                    # Only the notification counter: another insert took those ids first, and
                    # the refusal says where it is now. Retry at once: a writer that slept
                    # would come back stale and starve.
                    self._learn(e)
                    if time.monotonic() - began < _ID_BUDGET:
                        continue
                    raise OperationalError("gave up competing for notification ids") from None
                raise IntegrityError(f"events or tracking already recorded ({e})") from None
            self._committed(ids)
            return ids

    def _tracking_move(self, tracking: Tracking) -> Write:
        raise IntegrityError("this recorder does not record tracking objects")

    def _is_tracking(self, writes: list[Write], index: int) -> bool:
        return False

    def _learn(self, e: ConditionFailed) -> None:
        """A refused counter: learn where it is (application recorders)."""

    def _forget(self) -> None:
        """A counter that conflicted: read it again next time (application recorders)."""

    def _committed(self, ids: list[int] | None) -> None:
        """After a write: notify local subscribers (application recorders)."""

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        pk = records.es_originator_pk(self.namespace, str(originator_id))
        low = records.es_chunk_sk(gt + 1 if gt is not None else -records.ES_VERSION_OFFSET)
        found: list[StoredEvent] = []
        for page in self.backend.pages(
            pk, sk=SortCondition("between", low, "e#~"), forward=not desc
        ):
            for item in page.items:
                first = records.number(item, records.ES_FIRST)
                if not desc and lte is not None and first > lte:
                    return found
                rows, blobs = _unpack(bytes(item[records.ES_EVENTS]))  # type: ignore[arg-type]
                pairs = list(zip(rows, blobs, strict=True))
                for (version, topic), state in reversed(pairs) if desc else pairs:
                    if (gt is not None and version <= gt) or (lte is not None and version > lte):
                        continue
                    found.append(StoredEvent(originator_id, version, topic, state))
                    if limit is not None and len(found) >= limit:
                        return found
        return found


class EventstoreApplicationRecorder(EventstoreAggregateRecorder, ApplicationRecorder):
    """Also the application sequence: gapless notification ids in commit order."""

    def __init__(self, backend: Backend, namespace: str, poll_interval: float = 0.5) -> None:
        super().__init__(backend, namespace)
        self.poll_interval = poll_interval
        self._known: int | None = None
        self._listeners: set[threading.Event] = set()

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._insert(stored_events, kwargs.get("tracking"))

    def _extra(self, writes: list[Write], entries: list[list[Any]]) -> list[int] | None:
        previous = self._counter()
        ids = list(range(previous + 1, previous + 1 + len(entries)))
        for start in range(0, len(entries), 2000):
            part = entries[start : start + 2000]
            last = ids[start + len(part) - 1]
            data = _pack([[ids[start + i], *e] for i, e in enumerate(part)], [])
            writes.append(Put(records.es_log_item(self.namespace, last, data)))
        writes.append(records.es_counter_move(self.namespace, previous, ids[-1]))
        return ids

    def _counter(self) -> int:
        with self._lock:
            known = self._known
        if known is None:
            known = self.max_notification_id() or 0
        return known

    def _learn(self, e: ConditionFailed) -> None:
        for current in e.failures.values():
            if current is not None and records.POSITION in current:
                with self._lock:
                    self._known = records.number(current, records.POSITION)

    def _forget(self) -> None:
        with self._lock:
            self._known = None

    def _committed(self, ids: list[int] | None) -> None:
        if ids:
            with self._lock:
                self._known = ids[-1]
        for listener in list(self._listeners):
            listener.set()

    def max_notification_id(self) -> int | None:
        item = self.backend.get([records.es_counter_key(self.namespace)])[0]
        position = 0 if item is None else records.number(item, records.POSITION)
        with self._lock:
            self._known = max(position, self._known or 0)
        return position or None

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        first = 1 if start is None else (start if inclusive_of_start else start + 1)
        first = max(first, 1)
        wanted: list[list[Any]] = []
        expected = first
        for entry in self._log(first):
            nid = entry[0]
            if nid < first:
                continue
            if nid != expected or (stop is not None and nid > stop):
                break  # past stop, or a commit not visible yet: never read past a gap
            expected += 1
            if topics and entry[4] not in topics:
                continue
            wanted.append(entry)
            if len(wanted) >= limit:
                break
        return self._notifications(wanted)

    def _log(self, first: int) -> Iterator[list[Any]]:
        sk = SortCondition(">=", records.entry_sk(first))
        for page in self.backend.pages(records.es_log_pk(self.namespace), sk=sk):
            for item in page.items:
                rows, _ = _unpack(bytes(item[records.ES_EVENTS]))  # type: ignore[arg-type]
                yield from rows

    def _notifications(self, wanted: list[list[Any]]) -> list[Notification]:
        keys = list(
            dict.fromkeys((records.es_originator_pk(self.namespace, e[1]), e[5]) for e in wanted)
        )
        states: dict[tuple[str, int], bytes] = {}
        for key, item in zip(keys, self.backend.get(keys) if keys else [], strict=True):
            if item is None:
                continue
            rows, blobs = _unpack(bytes(item[records.ES_EVENTS]))  # type: ignore[arg-type]
            for (version, _), state in zip(rows, blobs, strict=True):
                states[(key[0], version)] = state
        found = []
        for nid, oid, is_uuid, version, topic, _ in wanted:
            pk = records.es_originator_pk(self.namespace, oid)
            found.append(
                Notification(
                    originator_id=UUID(oid) if is_uuid else oid,
                    originator_version=version,
                    topic=topic,
                    state=states.get((pk, version), b""),
                    id=nid,
                )
            )
        return found

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return _Subscription(self, gt, topics)

    def listen(self, event: threading.Event) -> None:
        self._listeners.add(event)

    def unlisten(self, event: threading.Event) -> None:
        self._listeners.discard(event)


class _Subscription(ListenNotifySubscription[EventstoreApplicationRecorder]):
    """Notified by inserts made in this process, and polls for the others' every
    ``poll_interval`` seconds."""

    def __init__(
        self, recorder: EventstoreApplicationRecorder, gt: int | None, topics: Sequence[str]
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        recorder.listen(self._has_been_notified)
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._has_been_stopped:
            self._has_been_notified.set()
            threading.Event().wait(self._recorder.poll_interval)

    def stop(self) -> None:
        super().stop()
        self._recorder.unlisten(self._has_been_notified)


class EventstoreTrackingRecorder(_Recorder, TrackingRecorder):
    """Tracking objects: the highest notification id processed per upstream application."""

    def insert_tracking(self, tracking: Tracking) -> None:
        try:
            self._send([self._tracking_move(tracking)])
        except ConditionFailed:
            raise IntegrityError(
                f"tracking {tracking.notification_id} of {tracking.application_name!r} is not "
                "above the one recorded"
            ) from None

    def _tracking_move(self, tracking: Tracking) -> Write:
        return records.es_tracking_move(
            self.namespace, tracking.application_name, tracking.notification_id
        )

    def _is_tracking(self, writes: list[Write], index: int) -> bool:
        return index == len(writes) - 1 and writes[index].key[0].endswith("#tracking")

    def max_tracking_id(self, application_name: str) -> int | None:
        item = self.backend.get([records.es_tracking_key(self.namespace, application_name)])[0]
        return None if item is None else records.number(item, records.POSITION)


class EventstoreProcessRecorder(
    EventstoreTrackingRecorder, EventstoreApplicationRecorder, ProcessRecorder
):
    """Events, the application sequence and tracking, in one atomic write per insert."""


class Factory(InfrastructureFactory[EventstoreTrackingRecorder]):
    """Recorders on the store named by ``EVENTSTORE_URL``."""

    EVENTSTORE_URL = "EVENTSTORE_URL"
    CREATE_TABLE = "CREATE_TABLE"
    POLL_INTERVAL = "EVENTSTORE_POLL_INTERVAL"

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        url = self.env.get(self.EVENTSTORE_URL)
        if not url:
            raise OperationalError(f"{self.EVENTSTORE_URL} is not set (a store URL)")
        try:
            self.backend = backend_from_url(url)
            if strtobool(self.env.get(self.CREATE_TABLE) or "yes"):
                self.backend.create_table()
        except EventStoreError as e:
            raise OperationalError(f"cannot open {url!r}: {e}") from e
        self.poll_interval = float(self.env.get(self.POLL_INTERVAL) or 0.5)

    def _namespace(self, purpose: str | None = None) -> str:
        name = (self.env.name or "app").replace("#", "_")
        return name if purpose is None or purpose == "events" else f"{name}.{purpose}"

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return EventstoreAggregateRecorder(self.backend, self._namespace(purpose))

    def application_recorder(self) -> ApplicationRecorder:
        return EventstoreApplicationRecorder(self.backend, self._namespace(), self.poll_interval)

    def tracking_recorder(
        self, tracking_recorder_class: type[EventstoreTrackingRecorder] | None = None
    ) -> EventstoreTrackingRecorder:
        if tracking_recorder_class is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            tracking_recorder_class = resolve_topic(topic) if topic else EventstoreTrackingRecorder
        assert tracking_recorder_class is not None
        return tracking_recorder_class(self.backend, self._namespace())

    def process_recorder(self) -> ProcessRecorder:
        return EventstoreProcessRecorder(self.backend, self._namespace(), self.poll_interval)

    def close(self) -> None:
        self.backend.close()
        super().close()
