"""The embedded backend: one SQLite file (or memory), same semantics as DynamoDB.

Items live in one table keyed by (pk, sk); each secondary index is a pair of nullable columns with a
partial SQL index, so only items that carry both keys are indexed (sparse, like a GSI). The feed
lives in the items too (``feed_in_items``): a version's partition and position are two more columns
with a unique partial index, positions given in the write transaction, so an append writes no
counter and no entry rows. A batch of writes runs in one ``BEGIN IMMEDIATE`` transaction:
conditions are checked and writes applied while holding the write lock, so concurrent threads and
processes see all of a batch or none of it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from eventstore.backends.base import (
    INDEX_ATTRIBUTES,
    INDEXES,
    POSITION_KEYS,
    Backend,
    ConditionFailed,
    Delete,
    Item,
    Key,
    NextPosition,
    Page,
    Put,
    SortCondition,
    TableOptions,
    Update,
    Value,
    Write,
    check_batch,
    index_keys,
)
from eventstore.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    InvalidInput,
    OutdatedLayout,
)

#: A page holds at most this many bytes of items, as a DynamoDB page holds at most 1 MB.
PAGE_BYTES = 1024 * 1024
#: And at most this many items when no limit is given.
PAGE_ITEMS = 1000

#: The storage layout this version writes and reads, kept in the file's ``PRAGMA user_version``.
#: Layout 1 (files without a version) kept the feed in counter and entry items.
LAYOUT = 2

_INDEX_COLUMNS = [column for name in INDEXES for column in index_keys(name)]
_FEED_PARTITION, _POSITION = POSITION_KEYS
#: Columns after the body: the index keys, then the feed partition and position.
_COLUMNS = [*_INDEX_COLUMNS, _FEED_PARTITION, _POSITION]
_ROW = 3 + len(_INDEX_COLUMNS)  # where the feed columns start in a row
# An upsert rather than INSERT OR REPLACE, which would delete the row and every index entry first.
# Updates of existing items go through _in_place instead, which assigns changed columns only.
UPSERT = (
    f"INSERT INTO items (pk, sk, body, {', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (3 + len(_COLUMNS)))}) "
    f"ON CONFLICT (pk, sk) DO UPDATE SET body = excluded.body, "
    + ", ".join(f"{column} = excluded.{column}" for column in _COLUMNS)
)
#: What every read selects: the keys, the body and the feed columns.
SELECT_ITEMS = f"SELECT pk, sk, body, {_FEED_PARTITION}, {_POSITION} FROM items"
_LAST = (
    f"SELECT {_POSITION} FROM items WHERE {_FEED_PARTITION} = ? AND {_POSITION} IS NOT NULL "
    f"ORDER BY {_POSITION} DESC LIMIT 1"
)


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn sqlite3 errors into the library's error tree, chained."""
    try:
        yield
    except sqlite3.OperationalError as e:
        text = str(e).lower()
        if "locked" in text or "busy" in text:
            raise BackendTimeout(f"SQLite stayed locked past the busy timeout: {e}") from e
        if "unable to open" in text or "disk i/o" in text or "readonly" in text:
            raise BackendUnavailable(f"SQLite file cannot be used: {e}") from e
        raise BackendError(f"SQLite failed: {e}") from e
    except sqlite3.DatabaseError as e:
        raise BackendError(f"SQLite database error (is the file a database?): {e}") from e


# -- item encoding ---------------------------------------------------------------------------
# A row's body: 4 bytes giving the length of a JSON header, the header, then the raw bytes of the
# binary attributes. The header is ``[{name: value} for text, numbers and booleans,
# [[name, length] for binary values]]``. Binary values stay bytes (no base64), so a stored item
# takes about what DynamoDB would bill, and both directions run in C (json).


#: Batches up to this many keys are read key by key.
_POINT_READS = 3

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_DECODE = json.JSONDecoder().decode
_NO_COLUMNS = (None,) * len(_COLUMNS)


_KEYS = frozenset(("pk", "sk"))
_IN_COLUMNS = _KEYS | frozenset(POSITION_KEYS)
_INDEX_NAMES = frozenset(_INDEX_COLUMNS)
_COLUMN_NAMES = frozenset(_COLUMNS)
_COLUMN_AT = {column: i for i, column in enumerate(_COLUMNS)}


def encode_item(item: Item, skip: frozenset[str] = frozenset()) -> bytes:
    plain: dict[str, Value] = {}
    binary: list[tuple[str, int]] = []
    blobs: list[bytes] = []
    for name, value in item.items():
        if name in skip:
            continue
        if isinstance(value, bytes):
            binary.append((name, len(value)))
            blobs.append(value)
        else:
            plain[name] = value
    header = _JSON.encode([plain, binary]).encode()
    return b"".join([len(header).to_bytes(4, "big"), header, *blobs])


def decode_item(data: bytes) -> Item:
    size = int.from_bytes(data[:4], "big")
    # Decoding the text first skips json.loads's guess of the encoding (it is always UTF-8).
    plain, binary = _DECODE(data[4 : 4 + size].decode())
    item: Item = dict(plain)
    position = 4 + size
    for name, length in binary:
        item[name] = data[position : position + length]
        position += length
    if position != len(data) or len(data) < 4:
        raise ValueError("row body length does not match its header")
    return item


# How long an erasure waits for other connections' read transactions to end before it reports
# that the write-ahead log still holds deleted bytes.
_FORGET_WAIT_MS = 2000


class SQLiteBackend(Backend):
    """SQLite backend. ``path`` is a file path or ``":memory:"``.

    A file is opened in WAL mode with one connection per thread; several processes may share it.
    ``synchronous`` is SQLite's setting: ``"normal"`` (default) survives process crashes,
    ``"full"`` also survives power loss. ``timeout`` is how long a writer waits for the lock."""

    def __init__(self, path: str, *, timeout: float = 30.0, synchronous: str = "normal") -> None:
        if synchronous.lower() not in ("off", "normal", "full", "extra"):
            raise InvalidInput(
                f"synchronous must be off, normal, full or extra, not {synchronous!r}"
            )
        self.path = path
        self._timeout = timeout
        self._synchronous = synchronous.upper()
        self._memory = path == ":memory:"
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.RLock()  # guards the shared connection of an in-memory store
        self._pid = os.getpid()
        self._shared: sqlite3.Connection | None = None
        # Connections in use, by id, and whether close() was called: a connection another thread
        # is using is closed by that thread when it is done (closing it under it would crash).
        self._busy: dict[int, int] = {}
        self._closed = False
        self._guard = threading.Lock()
        try:
            with translate_errors():
                self._setup(self._connection())
        except BackendUnavailable as e:
            # Name the file: "unable to open database file" alone does not say which.
            raise BackendUnavailable(f"{e} (path {path!r})") from e.__cause__

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        if not self._memory:
            connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        # Deleted rows are overwritten with zeros, so erased data does not linger in free pages
        # of a copied database file.
        connection.execute("PRAGMA secure_delete=ON")
        connection.create_function("es_hash", 1, _stable_hash, deterministic=True)
        self._all.append(connection)
        return connection

    def _connection(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:
            # A forked child must not use its parent's connections.
            self._pid = os.getpid()
            self._local = threading.local()
            self._all = []
            self._shared = None
        if self._memory:
            if self._shared is None:
                self._shared = self._connect()
            return self._shared
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    @contextlib.contextmanager
    def _use(self) -> Iterator[sqlite3.Connection]:
        with translate_errors():
            with self._guard:
                if self._closed:
                    raise BackendError(f"the SQLite store {self.path!r} was closed")
                connection = self._connection()
                self._busy[id(connection)] = self._busy.get(id(connection), 0) + 1
            try:
                if self._memory:
                    with self._lock:
                        yield connection
                else:
                    yield connection
            finally:
                with self._guard:
                    left = self._busy.pop(id(connection)) - 1
                    if left:
                        self._busy[id(connection)] = left
                    elif self._closed:
                        connection.close()

    def _setup(self, connection: sqlite3.Connection) -> None:
        # Checked and made in one write transaction: another process creating the file at the
        # same moment must not see a table without its layout number.
        (layout,) = connection.execute("PRAGMA user_version").fetchone()
        if layout == LAYOUT:
            return
        connection.execute("BEGIN IMMEDIATE")
        try:
            (layout,) = connection.execute("PRAGMA user_version").fetchone()
            exists = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'items'"
            ).fetchone()
            if exists and layout != LAYOUT:
                raise OutdatedLayout(self.path, layout or 1, LAYOUT)
            if not exists:
                create_layout(connection)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def create_table(self, options: TableOptions | None = None) -> None:
        if options is not None and not options.is_default:
            raise InvalidInput(
                "table options (billing, backups, keys, tags, streams) are DynamoDB's"
            )
        with self._use() as connection:
            self._setup(connection)

    def forget_deleted(self) -> bool:
        if self._memory:
            return True
        with self._use() as connection:
            # Old page images in the write-ahead log go too. A reader's open transaction keeps
            # them (it may still need them): wait a little for it, not the whole busy timeout.
            connection.execute(f"PRAGMA busy_timeout = {_FORGET_WAIT_MS}")
            try:
                busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                connection.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            return bool(busy == 0)

    def close(self) -> None:
        with self._guard:
            self._closed = True
            for connection in self._all:
                if id(connection) not in self._busy:
                    connection.close()
            self._all = []
            self._local = threading.local()
            self._shared = None

    # -- writes ------------------------------------------------------------------------------

    def write(
        self,
        writes: Sequence[Write],
        *,
        token: str | None = None,
        conflicts: Literal["retry", "raise"] = "retry",
    ) -> Mapping[int, int]:
        # Writes are applied one at a time under SQLite's lock: they never conflict.
        if not writes:
            return {}
        check_batch(writes, token, self)
        # Rows of puts are built (and their sizes checked) before taking the write lock.
        rows: list[tuple[Any, ...] | None] = [
            row_of(w.item) if isinstance(w, Put) else None for w in writes
        ]
        positioned = _positioned(writes)
        lasts: dict[int, int] = {}
        with self._use() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                for position, (partition, offset) in positioned.items():
                    if partition not in lasts:
                        lasts[partition] = _last(connection, partition)
                    row = rows[position]
                    assert row is not None
                    rows[position] = (*row[:_ROW], partition, lasts[partition] + offset)
                failures: dict[int, Item | None] = {}
                # Unconditional puts and deletes do not depend on what is there; the others'
                # current items come in one query.
                checked = [
                    (position, w)
                    for position, w in enumerate(writes)
                    if w.condition is not None or isinstance(w, Update)
                ]
                found = self._read(connection, [w.key for _, w in checked])
                in_place: list[tuple[str, tuple[Any, ...]]] = []
                for (position, w), current in zip(checked, found, strict=True):
                    if w.condition is not None and not w.condition.holds(current):
                        failures[position] = current
                    elif isinstance(w, Update) and not failures:
                        item = _updated(w, current)
                        if current is None:
                            rows[position] = row_of(item)
                        else:
                            in_place.append(_in_place(row_of(item), item, current))
                if failures:
                    first = min(failures)
                    raise ConditionFailed(first, failures[first], failures)
                deletes = [w.key for w in writes if isinstance(w, Delete)]
                if deletes:
                    connection.executemany("DELETE FROM items WHERE pk = ? AND sk = ?", deletes)
                # Keys are distinct, so the order of deletes and replaces does not matter.
                for sql, values in in_place:
                    connection.execute(sql, values)
                connection.executemany(UPSERT, [row for row in rows if row is not None])
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return lasts

    # -- the feed ----------------------------------------------------------------------------

    feed_in_items = True
    # States of any size stay in the file (the store bounds them by max_state_bytes).
    max_item_bytes = None
    max_write_bytes = None

    def positioned(self, partition: int, after: int, *, limit: int) -> list[Item]:
        if limit < 1:
            raise InvalidInput("limit must be >= 1")
        with self._use() as connection:
            rows = connection.execute(
                f"{SELECT_ITEMS} WHERE {_FEED_PARTITION} = ? AND {_POSITION} > ? "
                f"ORDER BY {_POSITION} LIMIT ?",
                (partition, after, limit),
            ).fetchall()
        return [item_of(row) for row in rows]

    def last_position(self, partition: int) -> int:
        with self._use() as connection:
            return _last(connection, partition)

    # -- reads -------------------------------------------------------------------------------

    @staticmethod
    def _get_one(connection: sqlite3.Connection, key: Key) -> Item | None:
        row = connection.execute(_GET_ONE, key).fetchone()
        return None if row is None else item_of(row)

    @classmethod
    def _get_many(cls, connection: sqlite3.Connection, keys: Sequence[Key]) -> list[Item | None]:
        """Several items in one statement (one consistent snapshot), in the order of ``keys``."""
        found: dict[Key, Item] = {}
        for start in range(0, len(keys), 400):  # well under SQLite's bound-variable limit
            chunk = keys[start : start + 400]
            # OR of key equalities: SQLite looks each one up in the primary key.
            where = " OR ".join("(pk = ? AND sk = ?)" for _ in chunk)
            rows = connection.execute(
                f"{SELECT_ITEMS} WHERE {where}", [part for key in chunk for part in key]
            )
            for row in rows:
                found[(row[0], row[1])] = item_of(row)
        return [found.get((str(k[0]), str(k[1]))) for k in keys]

    def get(self, keys: Sequence[Key], *, consistent: bool = True) -> list[Item | None]:
        with self._use() as connection:
            return self._read(connection, keys)

    @classmethod
    def _read(cls, connection: sqlite3.Connection, keys: Sequence[Key]) -> list[Item | None]:
        if len(keys) <= _POINT_READS:
            # A batch need not be a snapshot (the contract; a write reads under its lock
            # anyway): a few point reads by primary key cost less than one OR of keys.
            return [cls._get_one(connection, key) for key in keys]
        return cls._get_many(connection, keys)

    def query(
        self,
        pk: str,
        *,
        sk: SortCondition | None = None,
        index: str | None = None,
        forward: bool = True,
        limit: int | None = None,
        start: Item | None = None,
        consistent: bool = True,
    ) -> Page:
        if index is not None and index not in INDEXES:
            raise InvalidInput(f"unknown index {index!r}")
        sql, order = _query_sql(index, None if sk is None else sk.op, forward, start is not None)
        args: list[Any] = [pk]
        if sk is not None:
            args.extend(_sort_values(sk))
        if start is not None:
            args.extend(start[column] for column in order)
        if index is None:
            return self._page(sql, args, limit, ("pk", "sk"))
        keys = ("pk", "sk", *index_keys(index))
        page = self._page(sql, args, limit, keys)
        # Index entries carry only what a DynamoDB index projects, so code that works here works
        # there too.
        projected = (*keys, *INDEX_ATTRIBUTES)
        items = [{name: i[name] for name in projected if name in i} for i in page.items]
        return Page(items, page.last_key)

    def scan(
        self,
        *,
        segment: int = 0,
        segments: int = 1,
        start: Item | None = None,
        limit: int | None = None,
    ) -> Page:
        if not 0 <= segment < segments:
            raise InvalidInput(f"segment must be in 0..{segments - 1}")
        # Segments split the partition keys by a stable hash, so a stream stays in one segment.
        where = ["es_hash(pk) % ? = ?"]
        args: list[Any] = [segments, segment]
        if start is not None:
            where.append("(pk, sk) > (?, ?)")
            args.extend([start["pk"], start["sk"]])
        sql = f"{SELECT_ITEMS} WHERE {' AND '.join(where)} ORDER BY pk, sk"
        return self._page(sql, args, limit, ("pk", "sk"))

    def _page(
        self, sql: str, args: list[Any], limit: int | None, key_names: tuple[str, ...]
    ) -> Page:
        if limit is not None and limit < 1:
            raise InvalidInput("limit must be >= 1")
        cap = limit if limit is not None else PAGE_ITEMS
        items: list[Item] = []
        size = 0
        with self._use() as connection:
            # One row past the page says whether another page follows; SQLite stops there.
            cursor = connection.execute(f"{sql} LIMIT ?", [*args, cap + 1])
            try:
                for row in cursor:
                    if len(items) >= cap or size >= PAGE_BYTES:
                        last = items[-1]
                        return Page(items, {name: last[name] for name in key_names})
                    items.append(item_of(row))
                    # The encoded body is within a few bytes per attribute of the DynamoDB size,
                    # close enough for a page bound.
                    size += len(row[2]) + len(row[0]) + len(row[1])
            finally:
                cursor.close()
        return Page(items, None)


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def create_layout(connection: sqlite3.Connection) -> None:
    """Make the table and its indexes in the current layout (inside the caller's transaction)."""
    columns = "".join(f", {column} TEXT" for column in _INDEX_COLUMNS)
    connection.execute(
        "CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, "
        f"body BLOB NOT NULL{columns}, {_FEED_PARTITION} INTEGER, {_POSITION} INTEGER, "
        "PRIMARY KEY (pk, sk)) WITHOUT ROWID"
    )
    create_indexes(connection)
    connection.execute(f"PRAGMA user_version = {LAYOUT}")


def create_indexes(connection: sqlite3.Connection) -> None:
    for name in INDEXES:
        pk, sk = index_keys(name)
        connection.execute(
            f"CREATE INDEX IF NOT EXISTS items_{name} ON items ({pk}, {sk}, pk, sk) "
            f"WHERE {pk} IS NOT NULL AND {sk} IS NOT NULL"
        )
    # Unique: two items never hold one position, whatever a caller asks for.
    connection.execute(
        f"CREATE UNIQUE INDEX IF NOT EXISTS items_feed ON items ({_FEED_PARTITION}, {_POSITION}) "
        f"WHERE {_POSITION} IS NOT NULL"
    )


_GET_ONE = f"{SELECT_ITEMS} WHERE pk = ? AND sk = ?"


def _last(connection: sqlite3.Connection, partition: int) -> int:
    row = connection.execute(_LAST, (partition,)).fetchone()
    return 0 if row is None else int(row[0])


def _positioned(writes: Sequence[Write]) -> dict[int, tuple[int, int]]:
    """Where in the batch puts ask for a feed position: ``{index: (partition, offset)}``."""
    asked: dict[int, tuple[int, int]] = {}
    taken: set[tuple[int, int]] = set()
    for i, w in enumerate(writes):
        if not isinstance(w, Put) or w.position is None:
            continue
        spot: NextPosition = w.position
        partition, offset = spot.partition, spot.offset
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (partition, offset)):
            raise InvalidInput(f"a feed position needs int partition and offset, got {spot!r}")
        if partition < 0 or offset < 1 or (partition, offset) in taken:
            raise InvalidInput(
                f"feed offsets must be >= 1 and distinct per partition (>= 0), got {spot!r}"
            )
        taken.add((partition, offset))
        asked[i] = (partition, offset)
    return asked


def item_of(row: tuple[Any, ...]) -> Item:
    """The item of a selected row (pk, sk, body, feed partition, position)."""
    pk, sk, body, partition, position = row
    try:
        item = decode_item(body)
    except (ValueError, IndexError, TypeError) as e:
        raise BackendError(f"stored row {(pk, sk)!r} is damaged: {e}") from e
    item["pk"], item["sk"] = pk, sk
    if position is not None:
        item[_FEED_PARTITION], item[_POSITION] = partition, position
    return item


def _updated(w: Update, current: Item | None) -> Item:
    """The item an update leaves under its key."""
    item: Item = dict(current) if current is not None else {"pk": w.key[0], "sk": w.key[1]}
    item.update(w.set)
    for name in w.remove:
        item.pop(name, None)
    return item


def row_of(item: Item) -> tuple[Any, ...]:
    """The SQL row of an item. A feed partition and position (both ints) go in their columns,
    not in the body."""
    values = _column_values(item)
    in_feed = values[-1] is not None
    body = encode_item(item, skip=_IN_COLUMNS if in_feed else _KEYS)
    return (item["pk"], item["sk"], body, *values)


def _column_values(item: Item) -> tuple[Any, ...]:
    """The values of an item's columns after the body (index keys, feed partition, position)."""
    present = _COLUMN_NAMES.intersection(item)
    if not present:
        return _NO_COLUMNS
    values: list[Any] = list(_NO_COLUMNS)
    for column in _INDEX_NAMES.intersection(present):
        values[_COLUMN_AT[column]] = _index_value(item[column])
    partition, position = item.get(_FEED_PARTITION), item.get(_POSITION)
    if _is_int(partition) and _is_int(position):
        values[-2:] = partition, position
    return tuple(values)


def _is_int(value: Value | None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _in_place(row: tuple[Any, ...], item: Item, current: Item) -> tuple[str, tuple[Any, ...]]:
    """The statement that changes the row of ``current`` into ``row`` (of ``item``). Only
    columns whose value changes are set: SQLite rewrites an index entry whenever its column is
    assigned, even to the same value, and a head keeps its listing key on every append."""
    was = _column_values(current)
    changed = tuple(i for i, value in enumerate(was) if row[3 + i] != value)
    return _update_sql(changed), (row[2], *(row[3 + i] for i in changed), row[0], row[1])


@functools.lru_cache(maxsize=64)
def _update_sql(changed: tuple[int, ...]) -> str:
    columns = "".join(f", {_COLUMNS[i]} = ?" for i in changed)
    return f"UPDATE items SET body = ?{columns} WHERE pk = ? AND sk = ?"


def _index_value(value: Value | None) -> str | None:
    # Index key attributes are strings; anything else would not be indexed by DynamoDB either.
    return value if isinstance(value, str) else None


@functools.lru_cache(maxsize=256)
def _query_sql(
    index: str | None, op: str | None, forward: bool, after: bool
) -> tuple[str, tuple[str, ...]]:
    """The statement of a query of this shape (built once), and the columns it orders by."""
    order: tuple[str, ...]
    if index is None:
        pk_col, sk_col, order = "pk", "sk", ("sk",)
    else:
        pk_col, sk_col = index_keys(index)
        order = (sk_col, "pk", "sk")
    where = [f"{pk_col} = ?"]
    if index is not None:
        where.append(f"{sk_col} IS NOT NULL")
    if op == "begins_with":
        # A range instead of LIKE: exact bytewise prefix match that can use the index.
        where.append(f"{sk_col} >= ? AND substr({sk_col}, 1, ?) = ?")
    elif op == "between":
        where.append(f"{sk_col} BETWEEN ? AND ?")
    elif op is not None:
        where.append(f"{sk_col} {op} ?")
    if after:
        columns = ", ".join(order)
        where.append(f"({columns}) {'>' if forward else '<'} ({', '.join('?' * len(order))})")
    direction = "ASC" if forward else "DESC"
    sql = (
        f"{SELECT_ITEMS} WHERE {' AND '.join(where)} "
        f"ORDER BY {', '.join(f'{c} {direction}' for c in order)}"
    )
    return sql, order


def _sort_values(condition: SortCondition) -> list[Any]:
    """The values of a sort-key condition, in the order :func:`_query_sql` binds them."""
    value = condition.value
    if condition.op == "begins_with":
        return [value, len(value), value]
    if condition.op == "between":
        return [value, condition.upper or ""]
    return [value]
