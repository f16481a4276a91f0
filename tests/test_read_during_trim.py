"""Reads that overlap another writer's trimming, on every backend.

Another store's appends run between two requests of a read (tests/interleaving.py), at every
point where a read sends a request. They trim the version being read and its keyframe. Every
read path must then return the exact state that was appended, or raise ``VersionNotFound``
naming what remains, or (reads over many streams) skip what was trimmed and count it; never
``CorruptRecord``. A threaded run on one SQLite file does the same with real timing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import eventstore
import projections
from eventstore import NO_STREAM, CorruptRecord, EventStore, Resource, VersionNotFound
from eventstore.backends.base import Backend
from projections import Projection
from tests.conftest import drop
from tests.interleaving import Interleaving

# Each state is a couple of KB of text that differs by its number: versions are stored as small
# deltas against their group's keyframe, so every read needs the keyframe.
FILLER = "the quick brown fox jumps over the lazy dog " * 50
# Reads send at most this many requests in these scenarios; the interleaving point runs over all.
POINTS = range(1, 13)
SEED = 6  # versions written before the read
TRIM_BY = 20  # versions the other writer appends during it: trims group 1 and its keyframe


class Doc(Resource):
    resource_type = "trimread.Doc"
    max_versions = 4
    n: int
    text: str


class DocByParity(Projection[Doc]):
    name = "by_parity"
    index = "gsi1"

    def key(self, doc: Doc) -> tuple[str, str]:
        return ("even" if doc.n % 2 == 0 else "odd", f"{doc.n:06d}")


def doc(n: int) -> Doc:
    return Doc(n=n, text=f"{n} {FILLER}")


def exact(version: Any) -> None:
    """The state read is the one appended as that version."""
    assert version.state == doc(version.version), version.version


def seeded(store: EventStore) -> Callable[[], None]:
    """Write versions 1..SEED of stream "d"; return the other writer's trimming action."""
    for n in range(1, SEED + 1):
        store.append(doc(n), resource_id="d", expected_version=n - 1 or NO_STREAM)

    def trim() -> None:
        for n in range(SEED + 1, SEED + TRIM_BY + 1):
            store.append(doc(n), resource_id="d", expected_version=n - 1)

    return trim


def reader(
    store: EventStore, after: int, action: Callable[[], None], *, ranges: bool | None = None
) -> EventStore:
    """A second store (its own cold keyframe cache) whose requests are interleaved; ``ranges``
    picks how it reads by number (one range query, or a batch read; default: the backend's)."""
    wrapped: Backend = Interleaving(
        store.backend, after=after, action=action, queries_round_once=ranges
    )
    return EventStore(wrapped, projections=[DocByParity()])


def remaining_ok(e: VersionNotFound, store: EventStore) -> None:
    latest = store.read_version(Doc, "d")
    assert e.remaining == (latest.version - Doc.max_versions + 1, latest.version)  # type: ignore[operator]


@pytest.fixture
def doc_store(store_url: str) -> Iterator[EventStore]:
    opened = eventstore.open(store_url, projections=[DocByParity()])
    opened.create_table(feed="inline")
    try:
        yield opened
    finally:
        drop(opened)


@pytest.fixture
def trimming(doc_store: EventStore) -> tuple[EventStore, Callable[[], None]]:
    return doc_store, seeded(doc_store)


READS: dict[str, Callable[[EventStore], list[Any]]] = {
    "by_number": lambda r: [r.read_version(Doc, "d", 3)],
    "latest": lambda r: [r.read_version(Doc, "d")],
    "stream_forward": lambda r: list(r.read_stream(Doc, "d")),
    "stream_reverse": lambda r: list(r.read_stream(Doc, "d", reverse=True)),
    "stream_range": lambda r: list(r.read_stream(Doc, "d", start=3, stop=6)),
    "list": lambda r: list(r.list_resources(Doc)),
    "query": lambda r: list(r.query(DocByParity, "even")),
}


@pytest.mark.parametrize("path", sorted(READS))
@pytest.mark.parametrize("point", POINTS)
def test_single_stream_reads_never_call_trimming_corrupt(
    trimming: tuple[EventStore, Callable[[], None]], path: str, point: int
) -> None:
    store, trim = trimming
    read = reader(store, point, trim)
    try:
        got = READS[path](read)
    except VersionNotFound as e:
        # Only reads of a named version or range may find it gone; the others answer with
        # what is there.
        assert path == "by_number" or path.startswith("stream"), path
        remaining_ok(e, store)
        return
    for version in got:
        exact(version)
    numbers = [v.version for v in got]
    if path.startswith("stream"):
        step = -1 if "reverse" in path else 1
        assert numbers == list(range(numbers[0], numbers[0] + step * len(numbers), step))
    else:
        assert len(got) <= 1, numbers


@pytest.mark.parametrize("ranges", [True, False], ids=["range_query", "batch_read"])
@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("number", [3, 6])
def test_read_by_number_both_ways_during_trimming(
    trimming: tuple[EventStore, Callable[[], None]], ranges: bool, point: int, number: int
) -> None:
    # Query pages are cut to two items here, so the range read misses the keyframe and reads it
    # by key in a second request, and the trim can fall between the two.
    store, trim = trimming
    read = reader(store, point, trim, ranges=ranges)
    try:
        got = read.read_version(Doc, "d", number)
    except VersionNotFound as e:
        remaining_ok(e, store)
        return
    assert got.version == number
    exact(got)


def test_version_id_read_during_trimming(trimming: tuple[EventStore, Callable[[], None]]) -> None:
    store, trim = trimming
    vid = store.read_version(Doc, "d", 3).version_id
    for point in (1, 2):
        read = reader(store, point, trim if point == 1 else lambda: None)
        try:
            exact(read.read_version(Doc, "d", vid))
        except VersionNotFound as e:
            assert e.requested == vid
            remaining_ok(e, store)


@pytest.mark.parametrize("point", POINTS)
def test_replay_skips_and_counts_what_was_trimmed(
    trimming: tuple[EventStore, Callable[[], None]], point: int
) -> None:
    store, trim = trimming
    read = reader(store, point, trim)
    pages = list(read.replay_pages(Doc, page_size=3))
    versions = [v for page in pages for v in page.items]
    for version in versions:
        exact(version)
    numbers = [v.version for v in versions]
    assert numbers == sorted(numbers)
    skipped = sum(page.skipped for page in pages)
    if numbers:
        # Whatever was not yielded before the last one was either skipped or trimmed before it
        # was reached; nothing after the first yielded version is missing silently.
        assert numbers[-1] - numbers[0] + 1 == len(numbers) or skipped > 0


class Collect:
    name = "collect"

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def handle(self, version: Any) -> None:
        self.seen.append(version)


@pytest.mark.parametrize("point", range(1, 8))
def test_projection_runner_survives_trimming(
    trimming: tuple[EventStore, Callable[[], None]], point: int
) -> None:
    store, trim = trimming
    collector = Collect()
    report = projections.run(reader(store, point, trim), collector, resource_type=Doc, page_size=2)
    for version in collector.seen:
        exact(version)
    assert report.handled == len(collector.seen)
    numbers = [v.version for v in collector.seen]
    assert numbers == sorted(numbers)


@pytest.mark.parametrize("point", range(1, 8))
def test_rebuild_survives_trimming(
    trimming: tuple[EventStore, Callable[[], None]], point: int
) -> None:
    store, trim = trimming
    report = projections.rebuild(
        reader(store, point, trim), DocByParity, segments=1, checkpoint=False
    )
    assert report.scanned == 1
    latest = store.read_version(Doc, "d")
    page = store.query(DocByParity, "even" if latest.version % 2 == 0 else "odd")
    assert [v.version for v in page] == [latest.version]


def test_threads_on_one_sqlite_file_never_see_corrupt_records(sqlite_url: str) -> None:
    """Readers on every path while a writer appends and trims, a few thousand operations."""
    writer_store = eventstore.open(sqlite_url, projections=[DocByParity()])
    seeded(writer_store)
    stop = threading.Event()
    problems: list[BaseException] = []
    reads = [0]

    def write() -> None:
        n = SEED
        try:
            while not stop.is_set() and n < SEED + 1500:
                writer_store.append(doc(n + 1), resource_id="d", expected_version=n)
                n += 1
        finally:
            stop.set()

    def oldest(store: EventStore) -> list[Any]:
        # The version the next append trims: its read races the trimming write most often.
        latest = store.read_version(Doc, "d").version
        return [store.read_version(Doc, "d", max(1, latest - Doc.max_versions + 1))]

    def read_loop() -> None:
        # Each reader has its own store: a cold keyframe cache, like another process.
        mine = eventstore.open(sqlite_url, projections=[DocByParity()])
        paths = [*READS.values(), *[oldest] * 8]
        i = 0
        while not stop.is_set():
            try:
                for version in paths[i % len(paths)](mine):
                    exact(version)
                for page in mine.replay_pages(Doc, page_size=2):
                    for version in page.items:
                        exact(version)
            except VersionNotFound:
                pass
            except (CorruptRecord, AssertionError) as e:
                problems.append(e)
                stop.set()
            reads[0] += 1
            i += 1

    threads = [
        threading.Thread(target=write),
        *(threading.Thread(target=read_loop) for _ in range(3)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not problems, problems[:3]
    assert reads[0] > 100
