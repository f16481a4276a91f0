"""Planning and sending commits: for each stream, its new version items (deltas against their
group's keyframe where that is smaller), the keyframes of groups they start, trimming deletes and
the conditional head write; all of a commit in one atomic write; and the retries a commit makes
on its own."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventstore import codec, records
from eventstore.backends.base import (
    MAX_WRITE_ACTIONS,
    Backend,
    ConditionFailed,
    Item,
    NextPosition,
    Put,
    Value,
    Write,
    WriteConflict,
)
from eventstore.backends.sizes import batch_size
from eventstore.backoff import Backoff
from eventstore.errors import (
    CommitTooLarge,
    ConcurrencyError,
    Conflict,
    ContentionError,
    InvalidInput,
    KeysMissing,
    SubjectChanged,
)
from eventstore.ids import issued_at, new_version_id, parse_version_id
from eventstore.inputs import ANY, NO_STREAM, Checkpoint, Expect
from eventstore.keys import KEYFRAME_INTERVAL, MAX_VERSION, keyframe_of
from eventstore.positions import FeedClock
from eventstore.reading import Reader
from eventstore.resource import FrozenDict, Resource, Version, subject_of

_log = logging.getLogger("eventstore")
# A commit that only lost inline feed counter races (somebody else committed each time: the
# table makes progress) keeps trying this many times longer than the stream contention budget:
# with W writers on one counter, each round lets one through, so losing n rounds in a row
# happens with probability ((W-1)/W)**n, which only a long budget makes negligible.
_FEED_BUDGET = 6
# In _Write.counters_at: the write recording the table's feed configuration.
_CONFIG = -1
# Refusals that are not conflicts (a writer's clock behind the stream's last id, a retention bound
# learnt late) are corrected from the refused head; more than this many in a row is a conflict.
_MAX_CORRECTIONS = 20
#: A writer without the group's keyframe in its cache reads it (one read, a few read units) when
#: the whole state, compressed, would be larger than this; smaller states are stored whole.
COLD_FETCH_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Prepared:
    """One append with every argument checked and the state serialised."""

    cls: type[Resource]
    resource_id: str
    pk: str
    expected: int | Expect
    data: bytes
    state: Resource
    event: str | None
    metadata: str | None
    index_set: dict[str, Value]
    index_remove: frozenset[str]
    #: The version that deletes the resource (a tombstone carrying its last state).
    deleted: bool = False
    #: An imported version: it keeps the number, id, schema and expiry it had where it came from.
    restored: Restored | None = None


@dataclass(frozen=True)
class Restored:
    """What an import keeps of a version (``eventstore.transfer``). A stream's first restored
    version may be above 1 (the ones before it were trimmed where it came from): the stream
    starts there. Restored streams are written as they were: no trimming, no new expiries."""

    number: int
    version_id: str
    schema: int
    expires: int | None
    #: The id the stream was listed by where it came from (its creation order).
    listed: str | None


@dataclass
class _Stream:
    """The appends of one commit to one stream, and what is known of the stream's head."""

    appends: list[Prepared]
    at: int | Expect  # the version before the commit (NO_STREAM: none)
    lowest: int | None = None  # learnt from a refused head
    not_before_ms: int = 0  # likewise: the stream's last id, plus one millisecond
    # Encrypted types: the subject every append names (the head must hold it), from _subject.
    subject: str | None = None
    # A head that holds no subject (written before heads held one): the next attempt sets it
    # without a condition on it.
    subject_unset: bool = False
    restart: bool = False  # the stream was deleted: this commit starts it again

    @property
    def first(self) -> Prepared:
        return self.appends[0]

    @property
    def previous(self) -> int:
        if isinstance(self.at, Expect):
            restored = self.first.restored
            return 0 if restored is None else restored.number - 1
        return self.at


@dataclass
class _Plan:
    """One stream's part of the atomic write."""

    stream: _Stream
    puts: list[Write]
    version_ids: list[str]
    target: int  # the lowest version the stream keeps after the commit
    frames: dict[int, bytes]  # keyframe JSON of groups the commit starts
    items: dict[int, Item] = field(default_factory=dict)  # stored version items, by append
    item_puts: dict[int, int] = field(default_factory=dict)  # where in puts, by append
    positions: list[int | None] = field(default_factory=list)
    # Backends that give positions in the write: each append's (partition, offset).
    offsets: list[tuple[int, int]] = field(default_factory=list)
    trims: list[Write] = field(default_factory=list)
    lowest: int | None = None
    follow_up: tuple[int, int] | None = None
    # The id of the keyframe, from before the commit, that its deltas are made against: the head
    # must still name it. And the id of the newest keyframe the commit writes, for the head.
    relies_on: str | None = None
    new_keyframe: str | None = None


@dataclass
class _Write:
    """A commit's atomic write, and which of its conditional writes belong to what."""

    writes: list[Write]
    heads_at: dict[int, _Stream]
    counters_at: dict[int, int]  # index -> feed partition
    partitions: dict[int, tuple[int, int]]  # feed partition -> (previous, last) position


class Writer:
    """Sends commits to ``backend``; reads keyframes through ``reader`` when its cache is cold."""

    def __init__(
        self,
        backend: Backend,
        reader: Reader,
        clock: FeedClock,
        *,
        threshold: int,
        contention_budget: float,
    ) -> None:
        self.backend = backend
        self.reader = reader
        self.clock = clock
        self.threshold = threshold
        self.contention_budget = contention_budget

    def commit(
        self, batch: Sequence[Prepared], checkpoint: Checkpoint | None = None
    ) -> list[Version[Any]]:
        """Write every append of ``batch`` in one atomic write, or none of them.

        Appends to one stream get consecutive versions, each ``expected`` checked in order. A
        stream whose first append expects ``ANY`` retries a lost race with backoff and jitter,
        planned from the head the refusal returned, until ``contention_budget`` seconds have
        passed (:class:`ContentionError`); any other mismatch is :class:`ConcurrencyError`
        listing every stream that conflicted."""
        if not self.backend.encrypts and any(p.cls.encrypted for p in batch):
            first = next(p for p in batch if p.cls.encrypted)
            raise KeysMissing(
                f"{first.cls.__name__} is encrypted: open the store with keys= to write it"
            )
        streams: dict[str, _Stream] = {}
        for p in batch:
            stream = streams.setdefault(p.pk, _Stream([], p.expected))
            stream.appends.append(p)
        for stream in streams.values():
            stream.subject = _subject(stream)
        undecided = [s for s in streams.values() if s.at is ANY]
        if undecided:
            heads = self.backend.get([records.head_key(s.first.pk) for s in undecided])
            for s, item in zip(undecided, heads, strict=True):
                s.at = NO_STREAM if item is None else records.number(item, records.VERSION)
        backoff = Backoff(base=0.005, cap=0.5, budget=self.contention_budget)
        corrections = 0
        order = _order(batch, streams)
        while True:
            for s in streams.values():
                _check_sequence(s)
            plans = {id(s): self._plan(s) for s in streams.values()}
            # A checkpoint moved with the commit takes an action of its own.
            atomic = self._assemble(list(plans.values()), order, 0 if checkpoint is None else 1)
            moved_at = len(atomic.writes)
            if checkpoint is not None:
                atomic.writes.append(
                    records.checkpoint_move(
                        checkpoint.name, checkpoint.previous, checkpoint.position
                    )
                )
            try:
                token = next(iter(plans.values())).version_ids[0]
                if batch[0].restored is not None:
                    # Imported ids were written before, maybe in this account within DynamoDB's
                    # ten minutes of token memory: a token of each attempt's own (the backend
                    # repeats it when it retries the same request).
                    token = uuid.uuid4().hex
                if atomic.counters_at and not self.backend.serialised:
                    # A counter's conflict must come back here, to read the counter again.
                    self.backend.write(atomic.writes, token=token, conflicts="raise")
                else:
                    lasts = self.backend.write(atomic.writes, token=token)
                    for plan in plans.values():
                        if plan.offsets:
                            plan.positions = [lasts[p] + offset for p, offset in plan.offsets]
                break
            except WriteConflict as e:
                # Other transactions were moving a feed counter (or a head) at that moment: read
                # the counters again (they moved) and retry, after a short wait if a stream's
                # own items were concerned.
                feed_only = e.indexes <= set(atomic.counters_at)
                self.clock.refresh(p for p in atomic.counters_at.values() if p != _CONFIG)
                if feed_only and backoff.elapsed < self.contention_budget * _FEED_BUDGET:
                    backoff.tries += 1
                    continue
                if not backoff.wait():
                    raise self._contention(streams, atomic, backoff) from None
                continue
            except ConditionFailed as e:
                conflicts: list[Conflict] = []
                raced: list[_Stream] = []
                feed_raced = False
                for index, current in e.failures.items():
                    if index == moved_at and checkpoint is not None:
                        # Another runner of the same name moved the checkpoint first.
                        actual = records.checkpoint_position(current)
                        conflicts.append(
                            Conflict("checkpoint", checkpoint.name, checkpoint.previous, actual)
                        )
                        continue
                    if index in atomic.counters_at:
                        # Another commit took the positions guessed here (or recorded the
                        # table's configuration): learn from the refusal and try again.
                        partition = atomic.counters_at[index]
                        if partition == _CONFIG:
                            self.clock.learn_config(current)
                        else:
                            found = (
                                0 if current is None else records.number(current, records.POSITION)
                            )
                            self.clock.learn(partition, found)
                        feed_raced = True
                        continue
                    s = atomic.heads_at.get(index)  # type: ignore[assignment]
                    if s is None:
                        # An expiry update whose version vanished (erased meanwhile).
                        raise ConcurrencyError.of(
                            [Conflict("version", str(atomic.writes[index].key), None, -1)]
                        ) from None
                    actual = 0 if current is None else records.number(current, records.VERSION)
                    if records.is_erasing(current):
                        # Being erased: no append until the erasure is done.
                        first = s.first
                        conflicts.append(
                            Conflict(first.cls.resource_type, first.resource_id, first.expected, 0)
                        )
                        continue
                    if records.is_deleted(current) and not s.restart:
                        # A deleted stream: NO_STREAM and ANY start it again, numbering on;
                        # an expected version finds no stream. An import goes on after a
                        # deleted version it wrote itself.
                        first = s.first
                        if first.restored is not None:
                            again = first.expected is not NO_STREAM and actual == s.previous
                        else:
                            again = first.expected is NO_STREAM or first.expected is ANY
                        if again:
                            s.at, s.lowest, s.restart = actual, None, True
                            continue
                        conflicts.append(
                            Conflict(first.cls.resource_type, first.resource_id, first.expected, 0)
                        )
                        continue
                    if s.at is NO_STREAM or actual != s.at:
                        if s.first.expected is ANY:
                            s.at, s.lowest = (NO_STREAM if actual == 0 else actual), None
                            raced.append(s)
                        else:
                            first = s.first
                            conflicts.append(
                                Conflict(
                                    first.cls.resource_type,
                                    first.resource_id,
                                    first.expected,
                                    actual,
                                )
                            )
                        continue
                    # Same version, so the refusal came from the retention bound, the id order or
                    # the keyframe: replan with what the head says.
                    assert current is not None
                    subject = s.subject
                    if subject is not None and not s.subject_unset:
                        fixed = current.get(records.SUBJECT)
                        if fixed is None:
                            s.subject_unset = True
                        elif fixed != subject:
                            first = s.first
                            raise SubjectChanged(
                                first.cls.resource_type, first.resource_id, str(fixed), subject
                            ) from None
                    relied = plans[id(s)].relies_on
                    if relied is not None and records.keyframe_id(current) != relied:
                        # The keyframe held in memory is not this stream's any more (erased and
                        # made again under the same id): forget it; the replan reads the real one.
                        self.reader.cache.drop(s.first.pk)
                    corrections += 1
                    if corrections > _MAX_CORRECTIONS:
                        conflicts.append(
                            Conflict(s.first.cls.resource_type, s.first.resource_id, s.at, actual)
                        )
                    s.lowest = records.number(current, records.LOWEST)
                    if not records.is_deleted(current):
                        last_id = str(current[records.VERSION_ID])
                        s.not_before_ms = parse_version_id(last_id)[1] + 1
                if conflicts:
                    _log.debug("commit refused: %s", "; ".join(map(str, conflicts)))
                    raise ConcurrencyError.of(conflicts) from None
                _log.debug("commit lost a race (attempt %d), trying again", backoff.tries)
                if raced:
                    # Another writer of the stream won: wait a little (it may write again).
                    if not backoff.wait():
                        raise self._contention(streams, atomic, backoff, raced[0]) from None
                elif feed_raced:
                    # Only the feed counter moved, and the refusal told where it is now: the
                    # next attempt is right unless yet another commit lands first, so it goes
                    # at once (a sleeping writer would come back stale and starve).
                    backoff.tries += 1
                    if backoff.elapsed >= self.contention_budget * _FEED_BUDGET:
                        raise self._contention(streams, atomic, backoff) from None
        for partition, (_, last) in atomic.partitions.items():
            self.clock.learn(partition, last)
        if _CONFIG in atomic.counters_at.values():
            self.clock.recorded_implicit()
        return self._settle(batch, list(plans.values()))

    def _contention(
        self,
        streams: dict[str, _Stream],
        atomic: _Write,
        backoff: Backoff,
        lost_to: _Stream | None = None,
    ) -> ContentionError:
        """What a commit that kept losing raises: naming the stream whose other writers won, or
        the feed partition whose counter other commits kept moving."""
        s = lost_to or next(iter(streams.values()))
        partition = None
        if lost_to is None:
            partition = next((p for p in atomic.counters_at.values() if p != _CONFIG), None)
        return ContentionError(
            s.first.cls.resource_type,
            s.first.resource_id,
            s.first.expected,
            s.previous,
            attempts=backoff.tries,
            elapsed=backoff.elapsed,
            partition=partition,
        )

    def _settle(self, batch: Sequence[Prepared], plans: list[_Plan]) -> list[Version[Any]]:
        """After the write: finish long trims, remember keyframes, make the versions."""
        made: dict[int, Version[Any]] = {}
        for plan in plans:
            s = plan.stream
            if plan.follow_up is not None:
                self._finish_trim(s.first.pk, *plan.follow_up)
            for i, p in enumerate(s.appends):
                number, vid = s.previous + 1 + i, plan.version_ids[i]
                made[id(p)] = Version(
                    resource_type=p.cls.resource_type,
                    resource_id=p.resource_id,
                    version=number,
                    version_id=vid,
                    recorded_at=issued_at(vid),
                    state=p.state,
                    event=p.event,
                    metadata=FrozenDict(json.loads(p.metadata) if p.metadata else {}),
                    position=plan.positions[i] if plan.positions else None,
                    schema_version=p.cls.schema_version
                    if p.restored is None
                    else p.restored.schema,
                    deleted=p.deleted,
                )
            newest = max(plan.frames, default=None)
            if newest is not None:
                self.reader.cache.put(
                    s.first.pk, newest, plan.frames[newest], keyframe_id=plan.new_keyframe
                )
        return [made[id(p)] for p in batch]

    def _plan(self, s: _Stream) -> _Plan:
        pk, cls = s.first.pk, s.first.cls
        first = s.previous + 1
        last = first + len(s.appends) - 1
        if last > MAX_VERSION:
            raise InvalidInput(
                f"{cls.resource_type} {s.first.resource_id!r} has reached the last version"
            )
        limit = None if s.first.restored else cls.max_versions
        target = 1 if limit is None else max(1, last - limit + 1)
        if s.first.restored and s.at is NO_STREAM:
            target = first  # a restored stream starts where its history starts
        plan = _Plan(s, [], [], target, {})
        # With max_age, a version gets its expiry when it stops being the latest (the latest
        # never expires), and so does a keyframe the latest no longer needs.
        expires = None
        if cls.max_age is not None and not s.first.restored:
            expires = int(self.reader.clock() + cls.max_age.total_seconds()) + 1
            if s.at is not NO_STREAM and s.previous >= max(target, 1):
                plan.puts.append(
                    records.expiry_update(records.version_key(pk, s.previous), expires)
                )
                if keyframe_of(s.previous) != keyframe_of(last):
                    plan.puts.append(
                        records.expiry_update(records.keyframe_key(pk, s.previous), expires)
                    )
        newest_group = keyframe_of(last, KEYFRAME_INTERVAL)
        for i, p in enumerate(s.appends):
            number = first + i
            if p.restored is not None:
                if p.restored.number != number:
                    raise InvalidInput(
                        f"{cls.resource_type} {p.resource_id!r}: restored version "
                        f"{p.restored.number} does not follow version {number - 1}"
                    )
                vid, expires = p.restored.version_id, p.restored.expires
            else:
                vid = new_version_id(number, not_before_ms=s.not_before_ms)
            plan.version_ids.append(vid)
            base = keyframe_of(number, KEYFRAME_INTERVAL)
            if number == base:
                plan.frames[base] = p.data
                if base + KEYFRAME_INTERVAL > target:  # some version of the group is kept
                    keyframe = records.keyframe_item(
                        pk, base, codec.encode(p.data, threshold=self.threshold), vid, s.subject
                    )
                    plan.new_keyframe = vid
                    if expires is not None and base != newest_group:
                        keyframe[records.EXPIRES] = expires
                    plan.puts.append(Put(keyframe))
            if number < target:
                continue  # trimmed by the commit that writes it: never stored
            blob_base: int | None = number
            if number == base:
                blob = codec.encode_delta(p.data, p.data)
            elif base in plan.frames:
                blob, blob_base, _ = self._encode(pk, base, p.data, plan.frames[base])
            else:
                blob, blob_base, relies_on = self._encode(pk, base, p.data, None)
                plan.relies_on = plan.relies_on or relies_on
            item = records.version_item(
                pk,
                number,
                vid,
                blob,
                base=blob_base,
                event=p.event,
                metadata=p.metadata,
                schema=cls.schema_version if p.restored is None else p.restored.schema,
                deleted=p.deleted,
                expires=expires if number != last or p.restored else None,
                subject=s.subject,
            )
            plan.items[i] = item
            plan.item_puts[i] = len(plan.puts)
            plan.puts.append(Put(item))
        return plan

    def _assemble(
        self, plans: list[_Plan], order: list[tuple[_Stream, int]], extra: int = 0
    ) -> _Write:
        """The atomic write: puts, feed entries and counters (or positions the backend gives),
        trims as far as the action limit allows (leaving room for ``extra`` writes the caller
        adds), then heads."""
        writes: list[Write] = []
        counters_at: dict[int, int] = {}
        partitions: dict[int, tuple[int, int]] = {}
        by_stream = {id(plan.stream): plan for plan in plans}
        inline = self.clock.mode == records.INLINE and self.clock.partitions()
        if inline and self.backend.feed_in_items:
            # The backend numbers the stored versions in its write transaction; versions the
            # commit trims before storing them take their offsets too (their positions stay
            # empty, as a trimmed version's do).
            offsets: dict[int, int] = {}
            for s, i in order:
                plan = by_stream[id(s)]
                partition = self.clock.partition_of(s.first.pk)
                offset = offsets[partition] = offsets.get(partition, 0) + 1
                plan.offsets.append((partition, offset))
                stored = plan.items.get(i)
                if stored is not None:
                    at = plan.item_puts[i]
                    plan.puts[at] = Put(stored, position=NextPosition(partition, offset))
        for plan in plans:
            writes += plan.puts
        if inline and not self.backend.feed_in_items:
            # Positions in the order of the commit's appends, consecutive in each partition.
            for s, i in order:
                plan = by_stream[id(s)]
                pk = s.first.pk
                partition = self.clock.partition_of(pk)
                previous, last = partitions.get(partition) or (self.clock.last(partition),) * 2
                last += 1
                partitions[partition] = (previous, last)
                plan.positions.append(last)
                stored = plan.items.get(i)
                if stored is not None:
                    stored[records.POSITION] = last
                writes.append(Put(records.entry_item(partition, last, pk, s.previous + 1 + i)))
            for partition, (previous, last) in partitions.items():
                counters_at[len(writes)] = partition
                writes.append(records.counter_update(partition, previous, last))
        if inline and not self.clock.recorded:
            # The table's implicit configuration, recorded by its first commit, so that nobody
            # can give it other partitions once positions exist.
            counters_at[len(writes)] = _CONFIG
            writes.append(self.clock.config_put((records.INLINE, 1)))
        heads = len(plans) + extra
        if len(writes) + heads > MAX_WRITE_ACTIONS:
            raise CommitTooLarge("actions", len(writes) + heads, MAX_WRITE_ACTIONS)
        budget = MAX_WRITE_ACTIONS - len(writes) - heads
        for plan in plans:
            s = plan.stream
            if s.at is NO_STREAM:
                plan.lowest = plan.target
                continue
            bound = _bound(s)
            if bound is None:
                continue
            plan.trims, plan.lowest = records.trim_writes(
                s.first.pk, bound, plan.target, budget, existing=s.previous
            )
            budget -= len(plan.trims)
            writes += plan.trims
            if plan.lowest < plan.target:
                plan.follow_up = (plan.lowest, plan.target)
        heads_at: dict[int, _Stream] = {}
        for plan in plans:
            s, newest = plan.stream, plan.stream.appends[-1]
            heads_at[len(writes)] = s
            writes.append(self._head(s, plan, newest))
        # On DynamoDB each item is at most 400 KB (the backend refuses more), so only a commit of
        # more than ten writes can pass 4 MB: smaller ones skip measuring.
        limit, largest = self.backend.max_write_bytes, self.backend.max_item_bytes
        if limit is not None and (largest is None or len(writes) * largest > limit):
            size = batch_size(writes)
            if size > limit:
                raise CommitTooLarge("bytes", size, limit)
        return _Write(writes, heads_at, counters_at, partitions)

    def _head(self, s: _Stream, plan: _Plan, newest: Prepared) -> Write:
        """The head write of one stream of the commit."""
        version = s.previous + len(s.appends)
        condition = records.head_condition(
            None if s.at is NO_STREAM else s.previous,
            lowest=_bound(s),
            below_id=plan.version_ids[0],
            deleted=s.restart,
            keyframe_id=plan.relies_on,
            subject=None if s.subject_unset else s.subject,
        )
        if newest.deleted:
            # The head leaves the type's listing and every projection, and refuses ordinary
            # appends; it is listed apart, by deletion, for what still covers its history.
            head = records.head_update(
                newest.pk,
                version=version,
                version_id=records.DELETED_ID,
                listed_as=None,
                lowest=plan.lowest,
                index_set={
                    records.DELETED: 1,
                    records.LISTING_PK: records.deleted_listing(newest.cls.resource_type),
                    records.LISTING_SK: plan.version_ids[-1],
                },
                index_remove=records.INDEX_ATTRIBUTES_OF_HEAD
                - {records.LISTING_PK, records.LISTING_SK},
                condition=condition,
                keyframe_id=plan.new_keyframe,
                subject=s.subject,
            )
            return head
        starts = s.at is NO_STREAM or s.restart
        listed = s.first.restored.listed if s.first.restored else None
        return records.head_update(
            newest.pk,
            version=version,
            version_id=plan.version_ids[-1],
            listed_as=newest.cls.resource_type if starts else None,
            listed_at=listed,
            keyframe_id=plan.new_keyframe,
            lowest=plan.lowest,
            index_set=newest.index_set,
            index_remove=newest.index_remove | ({records.DELETED} if s.restart else frozenset()),
            condition=condition,
            subject=s.subject,
        )

    def _encode(
        self, pk: str, base: int, data: bytes, keyframe: bytes | None
    ) -> tuple[bytes, int | None, str | None]:
        """The state of a version that does not start a group: a delta against the group's
        keyframe when that is smaller, else the whole state compressed. ``keyframe`` is given
        when the commit writes it; otherwise it comes from the cache or a read, and the third
        value is its id (when known), which the head must still name for the delta to hold."""
        relies_on: str | None = None
        full: bytes | None = None
        if keyframe is None:
            cached = self.reader.cache.get_with_id(pk, base)
            if cached is not None:
                keyframe, relies_on = cached
            else:
                full = codec.encode(data, threshold=self.threshold)
                if len(full) <= COLD_FETCH_BYTES:
                    return full, None, None
                # A cold writer (a new process, a Lambda): reading the keyframe costs a few read
                # units, storing the whole state again costs write units, which are dearer.
                fetched = self.reader.fetch_keyframe(pk, base, consistent=False)
                if fetched is None:
                    return full, None, None
                # Its id from the item read, not the cache, which may not have kept it.
                keyframe, relies_on = fetched
        delta = codec.encode_delta(data, keyframe)
        if len(delta) * 4 <= len(data):
            # A delta this small always beats compressing the whole state: skip that work.
            return delta, base, relies_on
        if full is None:
            full = codec.encode(data, threshold=self.threshold)
        if len(delta) < len(full):
            return delta, base, relies_on
        return full, None, None

    def _finish_trim(self, pk: str, lowest: int, target: int) -> None:
        # Only when a commit could not carry every delete (max_versions lowered a lot, or a
        # large commit): the rest go in further atomic writes, each moving the head's bound.
        _log.info("trimming %s: versions %d to %d in follow-up writes", pk, lowest, target - 1)
        while lowest < target:
            deletes, reached = records.trim_writes(pk, lowest, target, MAX_WRITE_ACTIONS - 1)
            try:
                self.backend.write([*deletes, records.bound_update(pk, lowest, reached)])
            except ConditionFailed:
                return  # another writer moved the bound; it carries on from there
            lowest = reached


def _order(batch: Sequence[Prepared], streams: dict[str, _Stream]) -> list[tuple[_Stream, int]]:
    """Each append of the batch, in order, as (its stream, its place among the stream's)."""
    seen: dict[str, int] = {}
    order = []
    for p in batch:
        i = seen.get(p.pk, 0)
        seen[p.pk] = i + 1
        order.append((streams[p.pk], i))
    return order


def _subject(s: _Stream) -> str | None:
    """The subject of an encrypted stream's appends (``None`` for other types):
    :class:`SubjectChanged` if two appends of the commit name different ones."""
    first = s.first
    if not first.cls.encrypted:
        return None
    named = [subject_of(p.state, first.pk) for p in s.appends]
    for other in named[1:]:
        if other != named[0]:
            raise SubjectChanged(first.cls.resource_type, first.resource_id, named[0], other)
    return named[0]


def _check_sequence(s: _Stream) -> None:
    """Appends after the first to one stream: each ``expected`` must be the version the one
    before it makes (or ``ANY``); checked before anything is sent."""
    for i, p in enumerate(s.appends[1:], start=1):
        at = s.previous + i
        if p.expected is ANY or p.expected == at:
            continue
        raise ConcurrencyError(p.cls.resource_type, p.resource_id, p.expected, at)


def _bound(s: _Stream) -> int | None:
    """The retention bound the stream's head holds before the commit (``None``: no limit)."""
    limit = s.first.cls.max_versions
    if s.at is NO_STREAM or limit is None or s.first.restored:
        return None
    return s.lowest if s.lowest is not None else max(1, s.previous + 1 - limit)
