"""Converting a SQLite file of an older storage layout to the current one, in place.

Layout 1 (eventstore before the feed moved into the version rows) kept each feed partition's last
position in a counter item and one entry item per position. Layout 2 keeps a version's partition
and position in columns of its own row. The conversion runs in one ``BEGIN IMMEDIATE``
transaction: other connections wait for it, and a crash or Ctrl-C leaves the file as it was.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from eventstore import records
from eventstore.backends.base import Item
from eventstore.backends.sqlite import (
    LAYOUT,
    SELECT_ITEMS,
    UPSERT,
    create_indexes,
    item_of,
    row_of,
    translate_errors,
)
from eventstore.errors import InvalidInput
from eventstore.keys import version_sk

#: The progress callback runs after every this many positions carried over (and at the end).
PROGRESS_EVERY = 10_000


@dataclass
class UpgradeReport:
    """What an upgrade did. ``positions`` counts feed positions carried over: onto their
    versions (``moved``), as erased markers (``erased``), or left empty because their version
    was trimmed (``trimmed``, as a trimmed version's position is in layout 2)."""

    found: int = 0  # the layout the file had
    changed: bool = False  # False: it was in the current layout already
    moved: int = 0
    erased: int = 0
    trimmed: int = 0
    seconds: float = 0.0

    @property
    def positions(self) -> int:
        return self.moved + self.erased + self.trimmed


def upgrade(
    path: str, *, progress: Callable[[UpgradeReport], None] | None = None, timeout: float = 30.0
) -> UpgradeReport:
    """Convert the SQLite file at ``path`` to the current layout; a file already in it is left
    alone (``found`` says which it had). :class:`InvalidInput` if the file holds no store."""
    began = time.monotonic()
    report = UpgradeReport()
    with translate_errors():
        connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                _convert(connection, path, report, progress, began)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        finally:
            connection.close()
    report.seconds = time.monotonic() - began
    if progress is not None:
        progress(report)
    return report


def _convert(
    connection: sqlite3.Connection,
    path: str,
    report: UpgradeReport,
    progress: Callable[[UpgradeReport], None] | None,
    began: float,
) -> None:
    (layout,) = connection.execute("PRAGMA user_version").fetchone()
    columns = {row[1] for row in connection.execute("PRAGMA table_info(items)")}
    if not columns:
        raise InvalidInput(f"{path!r} holds no eventstore table")
    report.found = layout or 1
    if layout == LAYOUT:
        return
    if layout not in (0, 1) or "body" not in columns:
        raise InvalidInput(f"{path!r} has layout {layout}, which this version does not know")
    fp, p = records.FEED_PARTITION, records.POSITION
    connection.execute(f"ALTER TABLE items ADD COLUMN {fp} INTEGER")
    connection.execute(f"ALTER TABLE items ADD COLUMN {p} INTEGER")
    create_indexes(connection)
    # Counter and entry items: every partition key from "_feed#" up to "_feed$" ('$' follows '#').
    feed = connection.execute(f"{SELECT_ITEMS} WHERE pk >= '_feed#' AND pk < '_feed$'").fetchall()
    counters: dict[int, int] = {}
    highest: dict[int, int] = {}
    for row in feed:
        item = item_of(row)
        pk, sk = str(item[records.PK]), str(item[records.SK])
        partition = int(pk.split("#")[1])
        if sk == "counter":
            counters[partition] = records.number(item, p)
            continue
        for position, stream, number in records.feed_entries(item):
            highest[partition] = max(highest.get(partition, 0), position)
            _carry(connection, report, partition, position, stream, number)
            if progress is not None and report.positions % PROGRESS_EVERY == 0:
                report.seconds = time.monotonic() - began
                progress(report)
    for partition, counter in counters.items():
        if counter > highest.get(partition, 0):
            # Positions a counter gave out without entries (never made by the library): keep
            # the highest taken, so that no later commit repeats it.
            _put(connection, records.erased_marker(partition, counter))
            report.erased += 1
    connection.execute("DELETE FROM items WHERE pk >= '_feed#' AND pk < '_feed$'")
    connection.execute(f"PRAGMA user_version = {LAYOUT}")
    report.changed = True


def _carry(
    connection: sqlite3.Connection,
    report: UpgradeReport,
    partition: int,
    position: int,
    stream: str,
    number: int,
) -> None:
    """Give ``position`` to its version's row, or an erased marker, or nothing (trimmed)."""
    if not stream:
        _put(connection, records.erased_marker(partition, position))
        report.erased += 1
        return
    found = connection.execute(
        f"{SELECT_ITEMS} WHERE pk = ? AND sk = ?", (stream, version_sk(number))
    ).fetchone()
    if found is None:
        report.trimmed += 1
        return
    item = item_of(found)
    item[records.FEED_PARTITION], item[records.POSITION] = partition, position
    _put(connection, item)
    report.moved += 1


def _put(connection: sqlite3.Connection, item: Item) -> None:
    connection.execute(UPSERT, row_of(item))
