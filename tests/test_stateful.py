"""A model-based test: random sequences of appends and reads against a plain-Python model of
several streams, on every backend.

The model keeps, per stream, every state ever appended and its version id; a type with
``max_versions=3`` checks trimming, an unlimited one checks long streams across keyframes.
"""

from __future__ import annotations

import shutil
import tempfile
import unittest
import uuid
from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

import eventstore
from eventstore import (
    ANY,
    NO_STREAM,
    Append,
    ConcurrencyError,
    EventStore,
    Resource,
    StreamNotFound,
    VersionNotFound,
)
from tests import conftest


class Capped(Resource):
    resource_type = "stateful.Capped"
    max_versions = 3
    n: int
    text: str


class Log(Resource):
    resource_type = "stateful.Log"
    n: int
    text: str
    items: list[str] = []


TYPES: dict[str, type[Resource]] = {"capped": Capped, "log": Log}
POOL = ["a", "b", "a#b", "\u00e9"]  # ids shared by both types, so NO_STREAM can collide

# Texts are sometimes long and repetitive, so states go through zstd and deltas, not only raw.
TEXTS = st.one_of(
    st.text(st.sampled_from("abc#\u00e9"), max_size=8),
    st.builds(
        lambda s, k: s * k,
        st.text(st.sampled_from("xyz"), min_size=1, max_size=5),
        st.integers(60, 200),
    ),
)


@dataclass
class Stream:
    cls: type[Resource]
    states: list[Resource] = field(default_factory=list)
    version_ids: list[str] = field(default_factory=list)

    @property
    def version(self) -> int:
        return len(self.states)

    @property
    def lo(self) -> int:
        limit = self.cls.max_versions
        return 1 if limit is None else max(1, self.version - limit + 1)

    def retained(self, start: int = 1, stop: int | None = None) -> list[int]:
        end = self.version + 1 if stop is None else min(stop, self.version + 1)
        return list(range(max(start, self.lo), end))


class StoreMachine(RuleBasedStateMachine):
    backend = "memory"

    streams = Bundle("streams")

    def __init__(self) -> None:
        super().__init__()
        self.tmp: str | None = None
        self.counter = 0
        if self.backend == "memory":
            url = "memory://"
        elif self.backend == "sqlite":
            self.tmp = tempfile.mkdtemp(prefix="stateful-")
            url = f"sqlite:///{self.tmp}/store.db"
        else:
            url = conftest.dynamodb_url(f"st-{uuid.uuid4().hex[:16]}")
        self.store = eventstore.open(url)
        self.store.create_table(feed="inline")
        # A second store on the same backend with its own keyframe cache: a "different process".
        self.other = EventStore(self.store.backend)
        self.model: dict[tuple[str, str], Stream] = {}
        self.dirty: set[tuple[str, str]] = set()
        # The commit log: (stream, version) by feed position, as the feed must give it back.
        self.log: list[tuple[tuple[str, str] | None, int]] = []  # None: erased since

    def teardown(self) -> None:
        conftest.drop(self.store)
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------

    def _state(self, cls: type[Resource], text: str) -> Resource:
        self.counter += 1
        if cls is Log:
            return Log(n=self.counter, text=text, items=[text[:3]] * (self.counter % 4))
        return Capped(n=self.counter, text=text)

    def _record(self, key: tuple[str, str], state: Resource, version: object) -> None:
        stream = self.model.setdefault(key, Stream(TYPES[key[0]]))
        v = version  # a Version
        assert v.version == stream.version + 1  # type: ignore[attr-defined]
        assert v.state == state  # type: ignore[attr-defined]
        assert v.resource_id == key[1]  # type: ignore[attr-defined]
        stream.states.append(state)
        self.dirty.add(key)
        stream.version_ids.append(v.version_id)  # type: ignore[attr-defined]
        self.log.append((key, stream.version))
        assert v.position == len(self.log)  # type: ignore[attr-defined]

    def _writer(self, use_other: bool) -> EventStore:
        return self.other if use_other else self.store

    # -- rules -----------------------------------------------------------------------------

    @initialize(target=streams, kind=st.sampled_from(sorted(TYPES)), text=TEXTS)
    def create_first(self, kind: str, text: str) -> tuple[str, str]:
        return self.create_new(kind, text)

    @rule(target=streams, kind=st.sampled_from(sorted(TYPES)), text=TEXTS)
    def create_new(self, kind: str, text: str) -> tuple[str, str]:
        state = self._state(TYPES[kind], text)
        v = self.store.append(state)
        key = (kind, v.resource_id)
        self._record(key, state, v)
        return key

    @rule(
        target=streams,
        kind=st.sampled_from(sorted(TYPES)),
        rid=st.sampled_from(POOL),
        text=TEXTS,
        use_other=st.booleans(),
    )
    def append_no_stream(self, kind: str, rid: str, text: str, use_other: bool) -> object:
        key = (kind, rid)
        state = self._state(TYPES[kind], text)
        existing = self.model.get(key)
        if existing is None:
            v = self._writer(use_other).append(state, resource_id=rid, expected_version=NO_STREAM)
            self._record(key, state, v)
            return key
        try:
            self._writer(use_other).append(state, resource_id=rid, expected_version=NO_STREAM)
        except ConcurrencyError as e:
            assert e.expected is NO_STREAM
            assert e.actual == existing.version
        else:
            raise AssertionError("NO_STREAM append to an existing stream succeeded")
        return multiple()

    @rule(key=streams, text=TEXTS, use_other=st.booleans(), event=st.none() | st.just("edited"))
    def append_right(
        self, key: tuple[str, str], text: str, use_other: bool, event: str | None
    ) -> None:
        stream = self.model[key]
        state = self._state(stream.cls, text)
        v = self._writer(use_other).append(
            state,
            resource_id=key[1],
            expected_version=stream.version,
            event=event,
            metadata={"n": self.counter},
        )
        assert v.event == event and dict(v.metadata) == {"n": self.counter}
        self._record(key, state, v)

    @rule(key=streams, count=st.integers(1, 17), text=TEXTS)
    def append_many(self, key: tuple[str, str], count: int, text: str) -> None:
        # Long runs of small edits push streams across keyframes (every 16 versions).
        stream = self.model[key]
        for i in range(count):
            state = self._state(stream.cls, text + str(i % 3))
            v = self.store.append(state, resource_id=key[1], expected_version=stream.version)
            self._record(key, state, v)

    @rule(
        keys=st.lists(streams, min_size=1, max_size=4),
        text=TEXTS,
        use_other=st.booleans(),
        conflict=st.none() | st.integers(0, 3),
    )
    def commit(
        self, keys: list[tuple[str, str]], text: str, use_other: bool, conflict: int | None
    ) -> None:
        """One atomic commit over several streams (a stream may come twice); with ``conflict``,
        one of its appends expects a wrong version and nothing may be written."""
        versions = {key: self.model[key].version for key in keys}
        appends, states = [], []
        for i, key in enumerate(keys):
            stream = self.model[key]
            state = self._state(stream.cls, text + str(i))
            expected = versions[key]
            if conflict is not None and i == conflict % len(keys):
                expected += 7
            appends.append(Append(state, resource_id=key[1], expected_version=expected))
            versions[key] += 1
            states.append((key, state))
        writer = self._writer(use_other)
        if conflict is None:
            made = writer.append_many(appends)
            for (key, state), v in zip(states, made, strict=True):
                self._record(key, state, v)
            return
        with pytest.raises(ConcurrencyError):
            writer.append_many(appends)
        self.dirty.update(keys)  # the invariant reads them in full: nothing may have changed

    @rule(key=streams, text=TEXTS, data=st.data())
    def append_wrong(self, key: tuple[str, str], text: str, data: st.DataObject) -> None:
        stream = self.model[key]
        drawn = data.draw(st.integers(1, stream.version + 19), label="expected")
        expected = drawn + 1 if drawn >= stream.version else drawn
        state = self._state(stream.cls, text)
        try:
            self.store.append(state, resource_id=key[1], expected_version=expected)
        except ConcurrencyError as e:
            assert (e.expected, e.actual) == (expected, stream.version)
        else:
            raise AssertionError(f"append expecting {expected} at {stream.version} succeeded")

    @rule(
        target=streams,
        kind=st.sampled_from(sorted(TYPES)),
        rid=st.sampled_from(POOL),
        text=TEXTS,
        use_other=st.booleans(),
    )
    def append_any(self, kind: str, rid: str, text: str, use_other: bool) -> tuple[str, str]:
        key = (kind, rid)
        state = self._state(TYPES[kind], text)
        v = self._writer(use_other).append(state, resource_id=rid, expected_version=ANY)
        self._record(key, state, v)
        return key

    @rule(key=streams, text=TEXTS)
    def stale_writer_loses(self, key: tuple[str, str], text: str) -> None:
        # Two writers read the same version; the first append wins, the second must be refused.
        stream = self.model[key]
        seen = self.other.read_version(stream.cls, key[1])
        assert seen.version == stream.version
        first = self._state(stream.cls, text)
        v = self.store.append(first, resource_id=key[1], expected_version=seen.version)
        self._record(key, first, v)
        with pytest.raises(ConcurrencyError) as info:
            self.other.append(
                self._state(stream.cls, text), resource_id=key[1], expected_version=seen.version
            )
        assert (info.value.expected, info.value.actual) == (seen.version, stream.version)

    @rule(key=streams, data=st.data())
    def read_by_number(self, key: tuple[str, str], data: st.DataObject) -> None:
        stream = self.model[key]
        n = data.draw(st.integers(1, stream.version + 2), label="n")
        if stream.lo <= n <= stream.version:
            v = self.store.read_version(stream.cls, key[1], n)
            assert v.version == n
            assert v.state == stream.states[n - 1]
            assert v.version_id == stream.version_ids[n - 1]
        else:
            with pytest.raises(VersionNotFound) as info:
                self.store.read_version(stream.cls, key[1], n)
            assert info.value.remaining == (stream.lo, stream.version)

    @rule(key=streams, data=st.data())
    def read_by_id(self, key: tuple[str, str], data: st.DataObject) -> None:
        stream = self.model[key]
        n = data.draw(st.integers(1, stream.version), label="n")
        vid = stream.version_ids[n - 1]
        if n >= stream.lo:
            v = self.other.read_version(stream.cls, key[1], vid)
            assert (v.version, v.version_id) == (n, vid)
            assert v.state == stream.states[n - 1]
        else:
            with pytest.raises(VersionNotFound) as info:
                self.other.read_version(stream.cls, key[1], vid)
            assert info.value.remaining == (stream.lo, stream.version)

    @rule(key=streams)
    def read_latest(self, key: tuple[str, str]) -> None:
        stream = self.model[key]
        v = self.store.read_version(stream.cls, key[1])
        assert v.version == stream.version
        assert v.state == stream.states[-1]

    @rule(
        key=streams,
        start=st.none() | st.integers(1, 40),
        stop=st.none() | st.integers(1, 40),
        reverse=st.booleans(),
    )
    def read_stream(
        self, key: tuple[str, str], start: int | None, stop: int | None, reverse: bool
    ) -> None:
        stream = self.model[key]
        got = list(
            self.store.read_stream(stream.cls, key[1], start=start, stop=stop, reverse=reverse)
        )
        want = stream.retained(start or 1, stop)
        if reverse:
            want.reverse()
        assert [v.version for v in got] == want
        assert [v.state for v in got] == [stream.states[n - 1] for n in want]

    @rule(data=st.data(), limit=st.none() | st.integers(1, 30))
    def read_feed(self, data: st.DataObject, limit: int | None) -> None:
        """From any checkpoint: the model's commit log, minus what trimming removed since."""
        after = data.draw(st.integers(0, len(self.log) + 2), label="after")
        want = [
            (position, key, number)
            for position, (key, number) in enumerate(self.log, start=1)
            if position > after and key is not None and number >= self.model[key].lo
        ][:limit]
        got = list(self.other.feed(after=after, limit=limit))
        assert [(v.position, (_kind(v), v.resource_id), v.version) for v in got] == want
        assert [v.state for v in got] == [self.model[k].states[n - 1] for _, k, n in want]
        assert self.store.last_position() == len(self.log)

    @rule(key=streams, text=TEXTS, use_other=st.booleans())
    def erase_and_start_again(self, key: tuple[str, str], text: str, use_other: bool) -> None:
        """Erased: the stream's versions leave the feed, their positions stay taken; the same id
        starts again at version 1 (another writer's cached keyframes are not this stream's)."""
        stream = self.model.pop(key)
        before = self.store.last_position()
        self._writer(use_other).erase(stream.cls, key[1])
        assert self.store.last_position() == before
        self.log = [(None, 0) if k == key else (k, n) for k, n in self.log]
        state = self._state(stream.cls, text)
        v = self._writer(not use_other).append(
            state, resource_id=key[1], expected_version=NO_STREAM
        )
        self._record(key, state, v)

    @precondition(lambda self: len(self.model) > 0)
    @rule(kind=st.sampled_from(sorted(TYPES)))
    def read_missing(self, kind: str) -> None:
        with pytest.raises(StreamNotFound):
            self.store.read_version(TYPES[kind], "never-created")

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def streams_match_the_model(self) -> None:
        # Streams written since the last check are read in full; the others only have their
        # latest version checked (a write to one stream must not touch another).
        for key, stream in self.model.items():
            if key not in self.dirty:
                latest = self.store.read_version(stream.cls, key[1])
                assert (latest.version, latest.state) == (stream.version, stream.states[-1])
                continue
            versions = list(self.store.read_stream(stream.cls, key[1]))
            numbers = [v.version for v in versions]
            # Gapless, trimmed exactly to max_versions, ending at the last append.
            assert numbers == list(range(stream.lo, stream.version + 1))
            # No lost update: every appended state is there, in order, with its version id.
            assert [v.state for v in versions] == stream.states[stream.lo - 1 :]
            assert [v.version_id for v in versions] == stream.version_ids[stream.lo - 1 :]
            ids = [v.version_id for v in versions]
            assert ids == sorted(ids)
        self.dirty.clear()


def _kind(version: object) -> str:
    return next(k for k, cls in TYPES.items() if cls.resource_type == version.resource_type)  # type: ignore[attr-defined]


class MemoryMachine(StoreMachine):
    backend = "memory"


class SQLiteMachine(StoreMachine):
    backend = "sqlite"


class DynamoDBMachine(StoreMachine):
    backend = "dynamodb"


TestMemory = MemoryMachine.TestCase
TestSQLite = SQLiteMachine.TestCase
TestDynamoDB = unittest.skipUnless(
    conftest.DYNAMODB_ENDPOINT, "DynamoDB Local is not running (scripts/test starts it)"
)(DynamoDBMachine.TestCase)
TestDynamoDB.settings = settings(max_examples=8, stateful_step_count=15, deadline=None)
