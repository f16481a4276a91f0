"""SQLite's own storage layout: the feed kept in the version rows (no counter, no entry items),
positions of trimmed and erased versions, reads of the feed with another writer in between, and
the upgrade of a file written in the layout before (tests/data/layout1.db)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import eventstore
from eventstore import ANY, NO_STREAM, EventStore, InvalidInput, OutdatedLayout, Resource
from eventstore import records as rec
from eventstore.backends.base import NextPosition, Put
from eventstore.backends.sqlite import LAYOUT, SQLiteBackend
from eventstore.cli import main as cli
from tests.interleaving import Interleaving
from tests.models import Order

DATA = Path(__file__).parent / "data"


class Ticket(Resource):
    title: str
    n: int = 0


class Kept(Resource):
    max_versions = 3
    title: str
    n: int = 0


class Short(Resource):
    """Two versions kept: the 16-version keyframe groups are trimmed as a stream grows."""

    max_versions = 2
    text: str
    n: int = 0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(path: Path) -> Any:
    opened = eventstore.open(f"sqlite:///{path}")
    opened.create_table()
    yield opened
    opened.close()


def _rows(path: Path, where: str = "1") -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(f"SELECT pk, sk, fp, p FROM items WHERE {where}").fetchall()
    finally:
        connection.close()


def test_an_append_writes_its_version_and_its_head_only(store: EventStore, path: Path) -> None:
    first = store.append(Order(customer="ada"), resource_id="o1")
    before = len(_rows(path))
    second = store.append(
        Order(customer="ada", status="paid"), resource_id="o1", expected_version=1
    )
    # Version 2 is one new row; the head changed in place; no counter or entry rows anywhere.
    assert len(_rows(path)) == before + 1
    assert _rows(path, "pk LIKE '\\_feed%' ESCAPE '\\'") == []
    assert (first.position, second.position) == (1, 2)
    held = _rows(path, "p IS NOT NULL")
    assert sorted((pk, fp, p) for pk, _, fp, p in held) == [("Order#o1", 0, 1), ("Order#o1", 0, 2)]
    # The position lives in its column only: the row's body does not repeat it.
    item = store.backend.get([rec.version_key("Order#o1", 2)])[0]
    assert item is not None and item[rec.POSITION] == 2 and item[rec.FEED_PARTITION] == 0
    with sqlite3.connect(path) as connection:
        (layout,) = connection.execute("PRAGMA user_version").fetchone()
    assert layout == LAYOUT


def test_positions_of_trimmed_versions_stay_empty(store: EventStore) -> None:
    for n in range(1, 6):  # max_versions 3: versions 1 and 2 trimmed
        store.append(Kept(title="k", n=n), resource_id="k", expected_version=(n - 1) or NO_STREAM)
    assert [v.position for v in store.feed()] == [3, 4, 5]
    entries = [(e.position, e.resource_type, e.trimmed) for e in store.feed_entries()]
    assert entries == [
        (1, "(trimmed)", True),
        (2, "(trimmed)", True),
        (3, "Kept", False),
        (4, "Kept", False),
        (5, "Kept", False),
    ]
    pages = list(store.feed_pages(page_size=2))
    assert [(p.last, p.skipped, [v.version for v in p.versions]) for p in pages] == [
        (4, 2, [3, 4]),
        (5, 0, [5]),
    ]
    assert store.last_position() == 5
    assert store.append(Order(customer="x")).position == 6


def test_a_commit_that_trims_versions_it_writes_numbers_them_all(store: EventStore) -> None:
    """append_many of five versions to a stream keeping three: the first two are never stored,
    yet they take their positions (empty ones), and other streams' versions of the commit keep
    theirs in the batch's order."""
    from eventstore import Append

    batch: list[Append[Any]] = []
    for n in range(1, 6):
        batch.append(Append(Kept(title="k", n=n), resource_id="k", expected_version=ANY))
        batch.append(Append(Order(customer=f"c{n}"), resource_id=f"o{n}"))
    made = store.append_many(batch)
    assert [v.position for v in made] == list(range(1, 11))
    fed = [(v.position, v.resource_id) for v in store.feed()]
    assert fed == [(p, v.resource_id) for p, v in enumerate(made, 1) if p not in (1, 3)]
    assert store.last_position() == 10


def test_erasing_the_stream_at_the_newest_position_keeps_that_position_taken(
    store: EventStore, path: Path
) -> None:
    store.append(Order(customer="ada"), resource_id="a")
    store.append(Order(customer="secret"), resource_id="gone")
    report = store.erase(Order, "gone")
    assert report.feed_entries_cleared == 1
    assert store.last_position() == 2
    assert store.append(Order(customer="cy"), resource_id="c").position == 3
    assert [(e.position, e.resource_type) for e in store.feed_entries()] == [
        (1, "Order"),
        (2, "(erased)"),
        (3, "Order"),
    ]
    assert all("gone" not in repr(row) for row in _rows(path))


def test_two_items_never_hold_one_position(store: EventStore) -> None:
    store.append(Order(customer="ada"), resource_id="a")
    taken = {"pk": "x", "sk": "y", rec.FEED_PARTITION: 0, rec.POSITION: 1}
    with pytest.raises(eventstore.BackendError):
        store.backend.write([Put(taken)])
    assert store.backend.get([("x", "y")]) == [None]


def test_positioned_puts_are_checked_before_anything_is_written(store: EventStore) -> None:
    one = {"pk": "x", "sk": "1"}
    two = {"pk": "x", "sk": "2"}
    for bad in (
        [Put(one, position=NextPosition(0, 0))],
        [Put(one, position=NextPosition(0, 1)), Put(two, position=NextPosition(0, 1))],
        [Put(one, position=NextPosition(-1, 1))],
        [Put(one, position=NextPosition(0, True))],
    ):
        with pytest.raises(InvalidInput):
            store.backend.write(bad)
    assert store.backend.get([("x", "1"), ("x", "2")]) == [None, None]
    lasts = store.backend.write(
        [Put(one, position=NextPosition(3, 2)), Put(two, position=NextPosition(3, 1))]
    )
    assert lasts == {3: 0} and store.backend.last_position(3) == 2
    assert [item["sk"] for item in store.backend.positioned(3, 0, limit=10)] == ["2", "1"]


# -- reads of the feed with another writer between two of their requests ---------------------


def test_a_trim_between_a_feed_page_and_its_keyframe_read(path: Path) -> None:
    """The page holds version 16 (a delta against keyframe 1); before the reader fetches that
    keyframe, another writer's append trims version 16 and with it the keyframe. The version
    is passed over as trimmed, not reported as damage."""
    writer = eventstore.open(f"sqlite:///{path}")
    writer.create_table()
    for n in range(1, 18):
        writer.append(
            Short(text="x" * 400, n=n), resource_id="s", expected_version=(n - 1) or NO_STREAM
        )

    def trim() -> None:
        writer.append(Short(text="x" * 400, n=18), resource_id="s", expected_version=17)

    # Requests: 1 and 2 the feed's configuration (a key each), 3 the last position, 4 the page,
    # 5 the keyframe read: the trim goes before it.
    reader = EventStore(Interleaving(SQLiteBackend(str(path)), after=4, action=trim))
    pages = list(reader.feed_pages(page_size=50))
    assert reader.backend.fired  # type: ignore[attr-defined]
    got = [v.version for page in pages for v in page.versions]
    assert got == [17]
    assert sum(page.skipped for page in pages) == 16  # 15 trimmed before, 1 while reading
    writer.close()
    reader.close()


def test_an_append_between_two_feed_pages(path: Path) -> None:
    """Pages of two positions; another writer appends after the first page: the read goes on
    in order without repeating or skipping, up to the position it started from, and a later
    read finds the new version after it."""
    writer = eventstore.open(f"sqlite:///{path}")
    writer.create_table()
    for n in range(5):
        writer.append(Order(customer=f"c{n}"), resource_id=f"o{n}")

    def append() -> None:
        writer.append(Order(customer="late"), resource_id="late")

    # Requests: 1 and 2 the feed's configuration, 3 the last position, 4 the first page.
    reader = EventStore(Interleaving(SQLiteBackend(str(path)), after=4, action=append))
    seen = [v.position for v in reader.feed()]
    assert reader.backend.fired  # type: ignore[attr-defined]
    assert seen == [1, 2, 3, 4, 5]
    assert [v.resource_id for v in reader.feed(after=5)] == ["late"]
    writer.close()
    reader.close()


# -- files of the layout before ---------------------------------------------------------------


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    copy = tmp_path / "layout1.db"
    shutil.copy(DATA / "layout1.db", copy)
    return copy


def test_a_file_of_the_layout_before_is_refused_untouched(old_file: Path) -> None:
    before = _sha(old_file)
    with pytest.raises(OutdatedLayout) as caught:
        eventstore.open(f"sqlite:///{old_file}")
    assert (caught.value.found, caught.value.needed) == (1, LAYOUT)
    assert "eventstore upgrade sqlite:///" in str(caught.value)
    assert _sha(old_file) == before


def test_upgrade_keeps_the_feed_the_versions_and_the_positions_to_come(
    old_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{old_file}"
    assert cli(["upgrade", url]) == 0
    said = capsys.readouterr().out
    assert "layout 1 -> current" in said and "5 of versions trimmed since" in said
    store = eventstore.open(url)
    expected = json.loads((DATA / "layout1_feed.json").read_text())
    for partition, entries in expected.items():
        now = [
            [e.position, e.resource_type, e.resource_id, e.version, e.trimmed]
            for e in store.feed_entries(partition=int(partition))
        ]
        # A trimmed version's position no longer names its stream (nothing holds it).
        was = [
            [p, "(trimmed)", "", 0, True] if trimmed and rid else [p, t, rid, n, trimmed]
            for p, t, rid, n, trimmed in entries
        ]
        assert now == was
        last = entries[-1][0]
        assert store.last_position(partition=int(partition)) == last
    # Every version still reads, and appends go on from each partition's last position.
    assert store.read_version(Ticket, "t3").state.n == 20
    assert [v.version for v in store.read_stream(Kept, "k")] == [6, 7, 8]
    kept = store.append(Kept(title="k", n=9), resource_id="k", expected_version=8)
    partition = store.clock.partition_of("Kept#k")
    assert kept.position == expected[str(partition)][-1][0] + 1
    store.close()
    assert cli(["upgrade", url]) == 0
    assert "already in the current layout" in capsys.readouterr().out


def test_an_interrupted_upgrade_leaves_the_file_as_it_was(
    old_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventstore import sqlite_upgrade

    monkeypatch.setattr(sqlite_upgrade, "PROGRESS_EVERY", 7)
    before = _sha(old_file)
    reports: list[int] = []

    def interrupt(report: sqlite_upgrade.UpgradeReport) -> None:
        reports.append(report.positions)
        if len(reports) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sqlite_upgrade.upgrade(str(old_file), progress=interrupt)
    assert reports == [7, 14, 21]
    assert _sha(old_file) == before
    with pytest.raises(OutdatedLayout):
        eventstore.open(f"sqlite:///{old_file}")
    assert sqlite_upgrade.upgrade(str(old_file)).changed


def test_upgrade_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    with pytest.raises(InvalidInput):
        from eventstore.sqlite_upgrade import upgrade

        upgrade(str(other))
    assert cli(["upgrade", "memory://"]) == 2


def test_feed_reads_do_not_decode_against_a_keyframe_of_an_erased_stream(path: Path) -> None:
    """A reader caches stream x's keyframe while reading the feed; x is erased and made again
    under the same id with other states (same keyframe numbers): the reader's next feed read
    decodes the new versions against the new keyframe."""
    writer = eventstore.open(f"sqlite:///{path}")
    writer.create_table()
    reader = eventstore.open(f"sqlite:///{path}")
    for n in range(1, 4):
        writer.append(
            Order(customer="old " * 50, total_cents=n),
            resource_id="x",
            expected_version=(n - 1) or NO_STREAM,
        )
    assert [v.state.total_cents for v in reader.feed()] == [1, 2, 3]
    writer.erase(Order, "x")
    after = writer.last_position()
    for n in range(1, 4):
        writer.append(
            Order(customer="new " * 50, status="paid", total_cents=10 * n),
            resource_id="x",
            expected_version=(n - 1) or NO_STREAM,
        )
    again = [(v.state.customer[:4], v.state.total_cents) for v in reader.feed(after=after)]
    assert again == [("new ", 10), ("new ", 20), ("new ", 30)]
    writer.close()
    reader.close()
