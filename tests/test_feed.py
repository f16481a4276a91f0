"""The change feed on every backend: positions without gaps in commit order, reading from any
checkpoint, subscriptions, partitions, tables without a feed; and many writers with readers
following along."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import eventstore
from eventstore import (
    Append,
    ConcurrencyError,
    EventStore,
    InvalidInput,
    Version,
    WrongType,
)
from eventstore import records as rec
from eventstore.backends.base import Put
from tests.conftest import drop, scanned
from tests.models import Note, Order


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    """A store whose feed is inline on every backend (positions given by each commit): the
    indexed feed's own tests are in test_indexed_feed.py."""
    opened = eventstore.open(store_url)
    opened.create_table(feed="inline")
    try:
        yield opened
    finally:
        drop(opened)


def test_positions_follow_commit_order(store: EventStore) -> None:
    assert store.last_position() == 0
    assert list(store.feed()) == []
    a = store.append(Order(customer="a"), resource_id="a")
    made = store.append_many(
        [
            Append(Order(customer="a2"), resource_id="a", expected_version=1),
            Append(Note(text="n1"), resource_id="n"),
            Append(Order(customer="b"), resource_id="b"),
        ]
    )
    assert [a.position, *(v.position for v in made)] == [1, 2, 3, 4]
    with pytest.raises(ConcurrencyError):
        store.append(Order(customer="x"), resource_id="a", expected_version=1)
    c = store.append(Order(customer="c"))
    assert c.position == 5 and store.last_position() == 5
    feed = list(store.feed())
    assert [(v.position, v.resource_id, v.version) for v in feed] == [
        (1, "a", 1),
        (2, "a", 2),
        (3, "n", 1),
        (4, "b", 1),
        (5, c.resource_id, 1),
    ]
    assert [v.state for v in feed] == [a.state, *(v.state for v in made), c.state]
    # Every read carries the position; the feed resumes from any checkpoint.
    assert store.read_version(Order, "a", 1).position == 1
    assert [v.position for v in store.read_stream(Order, "a")] == [1, 2]
    assert [v.position for v in store.feed(after=3)] == [4, 5]
    assert [v.position for v in store.feed(after=1, limit=2)] == [2, 3]
    assert [v.position for v in store.feed(types=[Note])] == [3]
    assert list(store.feed(after=5)) == []


def test_trimmed_versions_are_passed_over(store: EventStore) -> None:
    first = store.append(Note(text="0"), resource_id="n")
    for n in range(1, 12):
        store.append(Note(text=str(n)), resource_id="n", expected_version=n)
    assert store.last_position() == 12
    assert first.position == 1
    # max_versions = 5: versions 1-7 are gone, their positions stay taken.
    assert [(v.position, v.version) for v in store.feed()] == [(p, p) for p in range(8, 13)]
    entries = list(store.feed_entries())
    assert [(e.position, e.trimmed) for e in entries] == [(p, p < 8) for p in range(1, 13)]


def test_a_commit_not_yet_visible_stops_the_reader(store: EventStore) -> None:
    """Positions are gapless by construction; a reader that finds one missing (a commit still
    being applied) stops before it rather than skip it. (Where the backend keeps the feed in
    the items, commits are atomic and serialised: a missing position is a trimmed version, see
    test_positions_of_trimmed_versions_stay_empty.)"""
    if store.backend.feed_in_items:
        pytest.skip("entry items exist only where the feed is kept apart from the versions")
    for n in range(3):
        store.append(Order(customer=str(n)), resource_id=f"o{n}")
    # Position 5's entry without position 4's: as a reader might see mid-commit.
    store.backend.write([Put(rec.entry_item(0, 5, "Order#o0", 1))])
    assert [v.position for v in store.feed()] == [1, 2, 3]
    store.backend.write([Put(rec.entry_item(0, 4, "Order#o1", 1))])
    # (These hand-made entries point at versions 1 of o1 and o0.)
    assert [v.resource_id for v in store.feed(after=3)] == ["o1", "o0"]


def test_subscribe_follows_new_commits(store: EventStore) -> None:
    store.append(Order(customer="before"))
    got: list[Version[Any]] = []
    with store.subscribe(after=store.last_position(), poll_interval=0.05) as sub:

        def writer() -> None:
            for n in range(5):
                store.append(Order(customer=f"live{n}"))
                time.sleep(0.02)
            deadline = time.monotonic() + 30
            while len(got) < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            sub.stop()

        thread = threading.Thread(target=writer)
        thread.start()
        for version in sub:
            got.append(version)
        thread.join()
    assert [v.state.customer for v in got] == [f"live{n}" for n in range(5)]
    assert [v.position for v in got] == list(range(2, 7))
    assert sub.position == 6


def test_stop_wakes_a_waiting_subscriber(store: EventStore) -> None:
    sub = store.subscribe(poll_interval=30)
    threading.Timer(0.2, sub.stop).start()
    started = time.monotonic()
    assert list(sub) == []
    assert time.monotonic() - started < 10


def test_bad_feed_arguments(store: EventStore) -> None:
    for bad in (-1, "1", 1.5, True):
        with pytest.raises(InvalidInput):
            list(store.feed(after=bad))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        list(store.feed(limit=0))
    with pytest.raises(InvalidInput):
        store.last_position(partition=1)
    with pytest.raises(WrongType):
        list(store.feed(types=Order))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        store.subscribe(poll_interval=0)


def test_partitions(store_url: str) -> None:
    store = eventstore.open(store_url)
    store.create_table(feed="inline", feed_partitions=4)
    try:
        store.create_table(feed_partitions=4)  # idempotent
        with pytest.raises(InvalidInput):
            store.create_table(feed_partitions=2)
        made = [store.append(Order(customer=str(n)), resource_id=f"o{n}") for n in range(40)]
        again = EventStore(store.backend)  # another process: learns the table's partitions
        by_partition: dict[int, list[int]] = {}
        for p in range(4):
            versions = list(again.feed(partition=p))
            positions = [v.position for v in versions]
            assert positions == list(range(1, len(positions) + 1))
            assert again.last_position(partition=p) == len(positions)
            by_partition[p] = [int(v.resource_id[1:]) for v in versions]
        assert sorted(n for ns in by_partition.values() for n in ns) == list(range(40))
        assert all(len(ns) > 0 for ns in by_partition.values())
        # A stream stays in its partition.
        follow = again.append(Order(customer="x"), resource_id="o7", expected_version=1)
        home = next(p for p, ns in by_partition.items() if 7 in ns)
        assert follow.position == len(by_partition[home]) + 1
        assert made[7].position is not None
    finally:
        drop(store)


def test_a_table_without_a_feed(store_url: str) -> None:
    store = eventstore.open(store_url)
    store.create_table(feed_partitions=0)
    try:
        v = store.append(Order(customer="x"))
        assert v.position is None
        assert store.read_version(Order, v.resource_id).position is None
        with pytest.raises(InvalidInput):
            list(store.feed())
        assert not [i for i in scanned(store) if str(i["pk"]).startswith("_feed")]
    finally:
        drop(store)


# -- many writers, readers following -------------------------------------------------------


def _follow(store: EventStore, stop: threading.Event, seen: list[int], errors: list[str]) -> None:
    """Follow the feed until ``stop``; record positions; no position may go backwards or skip."""
    position = 0
    while not stop.is_set() or position < store.last_position():
        for version in store.feed(after=position):
            if version.position != position + 1:
                errors.append(f"after {position} came {version.position}")
            position = version.position or position
            seen.append(position)
        time.sleep(0.005)


def test_many_writer_threads_with_readers_following(store: EventStore) -> None:
    writers, each = 8, (10 if store.backend.requests() else 40)
    acknowledged: list[Version[Any]] = []
    lock = threading.Lock()
    stop = threading.Event()
    seen: list[list[int]] = [[], []]
    errors: list[str] = []

    def write(n: int) -> None:
        for k in range(each):
            v = store.append(Order(customer=f"w{n}", total_cents=k))
            with lock:
                acknowledged.append(v)

    readers = [
        threading.Thread(target=_follow, args=(EventStore(store.backend), stop, seen[i], errors))
        for i in range(2)
    ]
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in readers + threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    stop.set()
    for t in readers:
        t.join(timeout=300)
    assert not errors, errors[:5]
    total = writers * each
    assert sorted(v.position or 0 for v in acknowledged) == list(range(1, total + 1))
    for positions in seen:
        assert positions == list(range(1, total + 1))
    feed = list(store.feed())
    assert {(v.resource_id, v.version) for v in feed} == {
        (v.resource_id, v.version) for v in acknowledged
    }


def _process_writer(url: str, n: int, count: int, start: Any, out: Any) -> None:
    store = eventstore.open(url)
    start.wait(timeout=120)
    out.put([store.append(Order(customer=f"p{n}", total_cents=k)).position for k in range(count)])
    store.close()


def test_many_writer_processes_on_one_sqlite_file(sqlite_url: str) -> None:
    store = eventstore.open(sqlite_url)
    store.create_table(feed="inline")
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(8), context.Queue()
    workers = [
        context.Process(target=_process_writer, args=(sqlite_url, n, 40, start, out))
        for n in range(8)
    ]
    stop = threading.Event()
    seen: list[int] = []
    errors: list[str] = []
    reader = threading.Thread(target=_follow, args=(store, stop, seen, errors))
    reader.start()
    for w in workers:
        w.start()
    positions = [p for _ in workers for p in out.get(timeout=300)]
    for w in workers:
        w.join(timeout=60)
    stop.set()
    reader.join(timeout=120)
    assert not errors, errors[:5]
    assert sorted(positions) == list(range(1, 321))
    assert seen == list(range(1, 321))


def test_cli_prints_and_follows_the_feed(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import signal
    import subprocess
    import sys

    from eventstore.cli import main

    store = eventstore.open(sqlite_url)
    store.create_table(feed="inline")
    first = store.append(Order(customer="a"), resource_id="o", event="opened")
    store.append(Order(customer="a"), resource_id="o", expected_version=1)
    assert main(["feed", sqlite_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["1\tOrder\to\t1\topened", "2\tOrder\to\t2\t-"]
    assert main(["feed", sqlite_url, "--after", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["2\tOrder\to\t2\t-"]
    assert main(["feed", sqlite_url, "--after", "x"]) == 2  # a usage error
    follow = subprocess.Popen(
        [sys.executable, "-m", "eventstore", "feed", sqlite_url, "--follow", "--interval", "0.05"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        assert follow.stdout.readline().startswith("1\t")
        assert follow.stdout.readline().startswith("2\t")
        store.append(Order(customer="b"), resource_id="p", event="late")
        assert follow.stdout.readline() == "3\tOrder\tp\t1\tlate\n"
    finally:
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=30) == 130
    assert first.position == 1
