"""Planning and sending appends: the version item (a delta against its group's keyframe where that
is smaller), the keyframe when a group starts, trimming deletes, and the conditional head write,
all in one atomic write; and the retries an append makes on its own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eventstore import codec, records
from eventstore.backends.base import MAX_WRITE_ACTIONS, Backend, ConditionFailed, Put, Value, Write
from eventstore.backoff import Backoff
from eventstore.errors import ConcurrencyError, ContentionError, InvalidInput
from eventstore.ids import issued_at, new_version_id, parse_version_id
from eventstore.inputs import ANY, NO_STREAM, Expect
from eventstore.keys import KEYFRAME_INTERVAL, MAX_VERSION, keyframe_of
from eventstore.reading import Reader
from eventstore.resource import FrozenDict, Resource, Version

# Trimming deletes ride in the append's own atomic write; keep room for the puts and the head.
_TRIM_BUDGET = MAX_WRITE_ACTIONS - 3
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


@dataclass
class _Known:
    """Facts about the head learnt from a refused write, used to plan the next attempt."""

    lowest: int | None = None
    not_before_ms: int = 0


@dataclass
class _Plan:
    writes: list[Write]
    version_id: str
    follow_up: tuple[int, int] | None = None


class Writer:
    """Sends appends to ``backend``; reads keyframes through ``reader`` when its cache is cold."""

    def __init__(
        self, backend: Backend, reader: Reader, *, threshold: int, contention_budget: float
    ) -> None:
        self.backend = backend
        self.reader = reader
        self.threshold = threshold
        self.contention_budget = contention_budget

    def append(self, p: Prepared) -> Version[Any]:
        """Write ``p`` as the next version of its stream, or raise :class:`ConcurrencyError`.

        With ``ANY`` a lost race is retried with backoff and jitter, each retry planned from the
        head the refusal returned, until ``contention_budget`` seconds have passed
        (:class:`ContentionError`)."""
        type_name = p.cls.resource_type
        known = _Known()
        backoff = Backoff(base=0.005, cap=0.5, budget=self.contention_budget)
        corrections = 0
        at: int | Expect = p.expected
        if at is ANY:
            item = self.backend.get([records.head_key(p.pk)])[0]
            at = NO_STREAM if item is None else records.number(item, records.VERSION)
        while True:
            assert not isinstance(at, Expect) or at is NO_STREAM
            number = 1 if isinstance(at, Expect) else at + 1
            if number > MAX_VERSION:
                raise InvalidInput(f"{type_name} {p.resource_id!r} has reached the last version")
            plan = self._plan(p, number, known)
            try:
                self.backend.write(plan.writes, token=plan.version_id)
            except ConditionFailed as e:
                current = e.item
                actual = 0 if current is None else records.number(current, records.VERSION)
                if at is NO_STREAM or actual != at:
                    if p.expected is not ANY:
                        raise ConcurrencyError(
                            type_name, p.resource_id, p.expected, actual
                        ) from None
                    if not backoff.wait():
                        raise ContentionError(
                            type_name,
                            p.resource_id,
                            ANY,
                            actual,
                            attempts=backoff.tries,
                            elapsed=backoff.elapsed,
                        ) from None
                    at = NO_STREAM if actual == 0 else actual
                    continue
                # Same version, so the refusal came from the retention bound or the id order:
                # replan with what the head says.
                assert current is not None
                corrections += 1
                if corrections > _MAX_CORRECTIONS:
                    raise ConcurrencyError(type_name, p.resource_id, p.expected, actual) from None
                known.lowest = records.number(current, records.LOWEST)
                known.not_before_ms = parse_version_id(str(current[records.VERSION_ID]))[1] + 1
                continue
            if plan.follow_up is not None:
                self._finish_trim(p.pk, *plan.follow_up)
            if number == keyframe_of(number, KEYFRAME_INTERVAL):
                self.reader.cache.put(p.pk, number, p.data)
            return Version(
                resource_type=type_name,
                resource_id=p.resource_id,
                version=number,
                version_id=plan.version_id,
                recorded_at=issued_at(plan.version_id),
                state=p.state,
                event=p.event,
                metadata=FrozenDict(json.loads(p.metadata) if p.metadata else {}),
            )

    def _plan(self, p: Prepared, number: int, known: _Known) -> _Plan:
        vid = new_version_id(number, not_before_ms=known.not_before_ms)
        base = keyframe_of(number, KEYFRAME_INTERVAL)
        writes: list[Write] = []
        if number == base:
            keyframe = codec.encode(p.data, threshold=self.threshold)
            writes.append(Put(records.keyframe_item(p.pk, number, keyframe)))
            blob: bytes = codec.encode_delta(p.data, p.data)
            blob_base: int | None = number
        else:
            blob, blob_base = self._encode(p.pk, base, p.data)
        writes.append(
            Put(
                records.version_item(
                    p.pk, number, vid, blob, base=blob_base, event=p.event, metadata=p.metadata
                )
            )
        )
        plan = _Plan(writes, vid)
        limit = p.cls.max_versions
        lowest: int | None = 1 if number == 1 else None
        bound: int | None = None
        if number > 1 and limit is not None:
            bound = known.lowest if known.lowest is not None else max(1, number - limit)
            target = max(1, number - limit + 1)
            deletes, reached = records.trim_writes(p.pk, bound, target, _TRIM_BUDGET)
            writes.extend(deletes)
            lowest = reached
            if reached < target:
                plan.follow_up = (reached, target)
        writes.append(
            records.head_update(
                p.pk,
                version=number,
                version_id=vid,
                listed_as=p.cls.resource_type if number == 1 else None,
                lowest=lowest,
                index_set=p.index_set,
                index_remove=p.index_remove,
                condition=records.head_condition(
                    None if number == 1 else number - 1, lowest=bound, below_id=vid
                ),
            )
        )
        return plan

    def _encode(self, pk: str, base: int, data: bytes) -> tuple[bytes, int | None]:
        """The state of a version that does not start a group: a delta against the group's
        keyframe when that is smaller, else the whole state compressed."""
        keyframe = self.reader.cache.get(pk, base)
        full: bytes | None = None
        if keyframe is None:
            full = codec.encode(data, threshold=self.threshold)
            if len(full) <= COLD_FETCH_BYTES:
                return full, None
            # A cold writer (a new process, a Lambda): reading the keyframe costs a few read
            # units, storing the whole state again costs write units, which are dearer.
            keyframe = self.reader.fetch_keyframe(pk, base, consistent=False)
            if keyframe is None:
                return full, None
        delta = codec.encode_delta(data, keyframe)
        if len(delta) * 4 <= len(data):
            # A delta this small always beats compressing the whole state: skip that work.
            return delta, base
        if full is None:
            full = codec.encode(data, threshold=self.threshold)
        return (delta, base) if len(delta) < len(full) else (full, None)

    def _finish_trim(self, pk: str, lowest: int, target: int) -> None:
        # Only when max_versions was lowered by more than one write can carry: the rest of the
        # old versions go in further atomic writes, each moving the head's bound along.
        while lowest < target:
            deletes, reached = records.trim_writes(pk, lowest, target, MAX_WRITE_ACTIONS - 1)
            try:
                self.backend.write([*deletes, records.bound_update(pk, lowest, reached)])
            except ConditionFailed:
                return  # another writer moved the bound; it carries on from there
            lowest = reached
