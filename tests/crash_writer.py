"""A child process for the reliability tests: appends to a SQLite store and reports each append.

Two modes, both print one JSON line per acknowledged append to stdout and flush it, only AFTER
``append`` returned, so a parent that reads the lines knows exactly what the store acknowledged:

- ``crash DB RUN SEED``: appends forever to a few streams (an untrimmed ``CrashOrder`` stream set
  and a trimmed ``CrashNote`` set), until the parent kills it with SIGKILL. Line:
  ``{"t": type, "id": resource id, "v": version, "vid": version id, "op": "RUN:N"}``.
- ``writers DB WRITER COUNT SHARED``: ``COUNT`` increments, each on one of ``SHARED`` shared
  streams or on the writer's own stream, read-modify-append with ``expected_version`` and a retry
  on :class:`ConcurrencyError`. Lines as above, then one ``{"done": ..., "conflicts": n}``.

Run as ``python tests/crash_writer.py ...`` (the project root is put on ``sys.path``).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventstore
from eventstore import ConcurrencyError, Resource, StreamNotFound

CRASH_STREAMS = 4  # per type


class CrashOrder(Resource):
    resource_type = "RelCrashOrder"
    op: str
    n: int
    text: str = ""


class CrashNote(Resource):
    resource_type = "RelCrashNote"
    max_versions = 3
    op: str
    n: int


class Counter(Resource):
    resource_type = "RelCounter"
    count: int = 0
    by: dict[str, int] = {}


#: Children of the same epoch (``run // EPOCH_RUNS``) append to the same streams; a new epoch
#: starts new streams, so that the audit after each kill stays the same size in long runs.
EPOCH_RUNS = 25


def crash_stream_ids(run: int) -> list[tuple[type[Resource], str]]:
    epoch = run // EPOCH_RUNS
    return [(CrashOrder, f"order-{epoch}-{i}") for i in range(CRASH_STREAMS)] + [
        (CrashNote, f"note-{epoch}-{i}") for i in range(CRASH_STREAMS)
    ]


def emit(record: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def latest(store: eventstore.EventStore, cls: type[Resource], rid: str) -> int:
    try:
        return store.read_version(cls, rid).version
    except StreamNotFound:
        return 0


def crash(db: str, run: str, seed: int) -> None:
    rng = random.Random(seed)
    store = eventstore.open(f"sqlite:///{db}")
    streams = crash_stream_ids(int(run))
    # Where each stream is, as stored: the previous child may have died at any point.
    at = {rid: latest(store, cls, rid) for cls, rid in streams}
    emit({"ready": run})
    n = 0
    while True:
        n += 1
        cls, rid = rng.choice(streams)
        op = f"{run}:{n}"
        state: Resource
        if cls is CrashNote:
            state = CrashNote(op=op, n=n)
        else:
            # Sometimes long enough to be compressed: keyframes, deltas and raw states all occur.
            state = CrashOrder(op=op, n=n, text=f"line {n} of run {run}; " * rng.choice((0, 1, 50)))
        expected = at[rid] if at[rid] else eventstore.NO_STREAM
        version = store.append(state, resource_id=rid, expected_version=expected)
        at[rid] = version.version
        emit(
            {
                "t": cls.resource_type,
                "id": rid,
                "v": version.version,
                "vid": version.version_id,
                "op": op,
            }
        )


def writers(db: str, writer: str, count: int, shared: int) -> None:
    rng = random.Random(writer)
    store = eventstore.open(f"sqlite:///{db}?timeout=60")
    conflicts = 0
    done: dict[str, int] = {}
    for _ in range(count):
        rid = f"shared-{rng.randrange(shared)}" if rng.random() < 0.7 else f"own-{writer}"
        while True:
            try:
                current = store.read_version(Counter, rid)
                state = current.state
                expected: int | eventstore.store.Expect = current.version
            except StreamNotFound:
                state = Counter()
                expected = eventstore.NO_STREAM
            by = dict(state.by)
            by[writer] = by.get(writer, 0) + 1
            try:
                version = store.append(
                    Counter(count=state.count + 1, by=by),
                    resource_id=rid,
                    expected_version=expected,
                )
            except ConcurrencyError:
                conflicts += 1
                continue
            break
        done[rid] = done.get(rid, 0) + 1
        emit(
            {
                "t": Counter.resource_type,
                "id": rid,
                "v": version.version,
                "vid": version.version_id,
                "op": writer,
            }
        )
    emit({"done": done, "conflicts": conflicts, "writer": writer})


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "crash":
        crash(args[0], args[1], int(args[2]))
    elif mode == "writers":
        writers(args[0], args[1], int(args[2]), int(args[3]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
