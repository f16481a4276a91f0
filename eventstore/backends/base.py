"""The backend contract: a small, DynamoDB-shaped key-value store.

The store and the projections are written once against :class:`Backend`. A backend keeps items
(flat dicts of attribute name to ``str``/``int``/``bytes``/``bool``) under a primary key
(``pk``, ``sk``), applies batches of conditional writes atomically, and answers key-condition
queries on the table and on the sparse secondary indexes listed in :data:`INDEXES`.

The docstrings here are the contract; backends only implement it.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from eventstore.errors import InvalidInput

Value: TypeAlias = "str | int | bytes | bool"
StreamView: TypeAlias = Literal["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"]
Item: TypeAlias = "dict[str, Value]"
Key: TypeAlias = "tuple[str, str]"

#: Secondary indexes every table has, each with string key attributes ``<name>pk``/``<name>sk``.
#: An item appears in an index only when it has both attributes (sparse). ``gsi0`` is reserved by
#: the store for listing the resources of a type; ``gsi1``-``gsi4`` are free for projections.
INDEXES: tuple[str, ...] = ("gsi0", "gsi1", "gsi2", "gsi3", "gsi4")

#: Non-key attributes every index carries besides its keys and the table keys: the head's version
#: number and version id, so a query can fetch the states by key.
INDEX_ATTRIBUTES: tuple[str, ...] = ("v", "id")

#: The attributes of the position index that backends with ``feed_in_items`` keep: an item with
#: both, as ints, is in the feed of partition ``fp`` at position ``p`` (sparse, like an index).
POSITION_KEYS: tuple[str, str] = ("fp", "p")

#: DynamoDB's item size limit (400 KB): :attr:`Backend.max_item_bytes` on DynamoDB.
MAX_ITEM_SIZE = 400 * 1024

#: DynamoDB's limit on actions in one atomic write.
MAX_WRITE_ACTIONS = 100

#: DynamoDB's limit on the total size of the items one atomic write puts or updates:
#: :attr:`Backend.max_write_bytes` on DynamoDB.
MAX_WRITE_BYTES = 4 * 1024 * 1024


def check_batch(writes: Sequence[Write], token: str | None, backend: Backend) -> None:
    """Refuse a batch the contract of :meth:`Backend.write` does not allow, before sending it."""
    if len(writes) > MAX_WRITE_ACTIONS:
        raise InvalidInput(f"{len(writes)} writes in one batch; at most {MAX_WRITE_ACTIONS}")
    if token is not None and not 1 <= len(token) <= 36:
        raise InvalidInput("a write token must be 1 to 36 characters")
    keys: set[tuple[int, Key]] = set()
    for w in writes:
        into = w.into if isinstance(w, Put) else None
        if into is not None and not backend.joins(into):
            raise InvalidInput(
                f"{type(backend).__name__} cannot put an item into {type(into).__name__}'s "
                "table in its atomic write"
            )
        key = (id(into), w.key)
        if key in keys:
            raise InvalidInput(f"more than one write for key {w.key!r} in one batch")
        keys.add(key)


def index_keys(index: str) -> tuple[str, str]:
    """Attribute names of an index's partition and sort key."""
    return f"{index}pk", f"{index}sk"


@dataclass(frozen=True)
class Condition:
    """A condition on the current item under a write's key, checked atomically with the batch.

    ``exists=False``: no item may exist under the key. ``exists=True``: an item must exist, each
    attribute in ``equals`` must equal the given value, and each attribute in ``less_than`` must be
    present and sort strictly before the given value (strings by code point, numbers by value).
    ``or_absent=True``: the condition also holds when no item exists under the key.
    """

    exists: bool = True
    equals: Mapping[str, Value] = field(default_factory=dict)
    less_than: Mapping[str, Value] = field(default_factory=dict)
    or_absent: bool = False

    def holds(self, item: Mapping[str, Value] | None) -> bool:
        """Evaluate the condition against a current item (``None``: no item). Used by local backends."""
        if not self.exists:
            return item is None
        if item is None:
            return self.or_absent
        for name, value in self.equals.items():
            if name not in item or type(item[name]) is not type(value) or item[name] != value:
                return False
        for name, value in self.less_than.items():
            current = item.get(name)
            if current is None or type(current) is not type(value):
                return False
            if not current < value:  # type: ignore[operator]
                return False
        return True


@dataclass(frozen=True)
class NextPosition:
    """Where a :class:`Put` goes in the feed of a backend with ``feed_in_items``: position
    ``L + offset`` of feed ``partition``, ``L`` being the partition's last position before the
    write (read in the write's own transaction, so it is never stale)."""

    partition: int
    offset: int


@dataclass(frozen=True)
class Put:
    """Write ``item`` whole, replacing any item under its key. With ``position`` (backends with
    ``feed_in_items`` only), the backend gives the item that feed position (attributes
    :data:`POSITION_KEYS`) as it writes it."""

    item: Item
    condition: Condition | None = None
    position: NextPosition | None = None
    #: Put the item into this other backend's table instead, in the same atomic write (only a
    #: backend that :meth:`~Backend.joins` it: DynamoDB transactions span the tables of an
    #: account and region). A failed condition is reported at the write's place as any other.
    into: Backend | None = None

    @property
    def key(self) -> Key:
        return (str(self.item["pk"]), str(self.item["sk"]))


@dataclass(frozen=True)
class Update:
    """Set and remove attributes of the item under ``key``, creating it if absent."""

    key: Key
    set: Mapping[str, Value] = field(default_factory=dict)
    remove: frozenset[str] = frozenset()
    condition: Condition | None = None


@dataclass(frozen=True)
class Delete:
    """Delete the item under ``key``; deleting an absent item is not an error."""

    key: Key
    condition: Condition | None = None


Write: TypeAlias = "Put | Update | Delete"


@dataclass(frozen=True)
class SortCondition:
    """A key condition on the sort key: ``=``, ``<``, ``<=``, ``>``, ``>=``, ``begins_with`` or
    ``between`` (inclusive, uses ``value`` and ``upper``)."""

    op: Literal["=", "<", "<=", ">", ">=", "begins_with", "between"]
    value: str
    upper: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of results. ``last_key`` is ``None`` on the last page; otherwise pass it back as
    ``start`` to continue right after the last item returned."""

    items: list[Item]
    last_key: Item | None


class ConditionFailed(Exception):
    """Raised by :meth:`Backend.write` when a condition did not hold; nothing was written.

    ``failures`` maps the position in the batch of every write whose condition failed to the
    current item under its key (``None`` if absent), read atomically with the check; ``index`` and
    ``item`` are the first of them.
    """

    def __init__(
        self, index: int, item: Item | None, failures: Mapping[int, Item | None] | None = None
    ) -> None:
        self.index = index
        self.item = item
        self.failures: Mapping[int, Item | None] = failures or {index: item}
        super().__init__(f"condition of write {index} failed")


@dataclass(frozen=True)
class Change:
    """One record of a table's change stream: which item changed and how, and its place in its
    shard (sequence numbers increase within a shard; compare them as integers)."""

    key: Key
    kind: Literal["INSERT", "MODIFY", "REMOVE"]
    sequence: str


@dataclass(frozen=True)
class Shard:
    """A shard of a change stream. A shard's records come after every record of its parent."""

    shard_id: str
    parent: str | None


class ChangeStream(abc.ABC):
    """The table's stream of item changes (DynamoDB Streams): every committed write, each item's
    changes in the order they were made, kept for a limited time (24 hours on DynamoDB)."""

    @abc.abstractmethod
    def shards(self) -> list[Shard]:
        """Every shard the stream still holds, parents before their children."""

    @abc.abstractmethod
    def read(
        self, shard: str, after: str | None, *, limit: int = 1000
    ) -> tuple[list[Change], bool]:
        """Up to ``limit`` records of ``shard`` after sequence number ``after`` (``None``: from
        the oldest record kept), oldest first, and whether the shard is closed and has nothing
        after them. An empty list on an open shard means nothing more yet. Records older than
        the stream keeps are skipped (logged as a warning: the index needs a repair)."""


class WriteConflict(Exception):
    """Raised by :meth:`Backend.write` with ``conflicts="raise"`` when the atomic write was
    cancelled because other requests were changing some of its items at that moment (DynamoDB's
    ``TransactionConflict``); nothing was written. ``indexes`` are the writes concerned."""

    def __init__(self, indexes: frozenset[int]) -> None:
        self.indexes = indexes
        super().__init__(f"writes {sorted(indexes)} conflicted with other requests")


class Backend(abc.ABC):
    """A DynamoDB-shaped table. Implementations must be safe to share between threads."""

    #: ``True`` where a query is billed by the total size of the items it reads, rounded up once,
    #: while each item of :meth:`get` is rounded up on its own (DynamoDB's 4 KB read units).
    #: Readers then fetch a version and its keyframe with one range query, although it also reads
    #: the versions sorted between them, instead of two point reads.
    queries_round_once: bool = False

    #: Whether the backend applies writes one at a time (embedded backends): a counter read in a
    #: write transaction is never stale, so the feed is always given positions inline.
    serialised: bool = True

    #: Whether the backend keeps the feed in the items themselves (SQLite): a position index on
    #: :data:`POSITION_KEYS`, positions given by :class:`Put`'s ``position`` in the write's own
    #: transaction, and :meth:`positioned` / :meth:`last_position` to read it. The store then
    #: writes no counter and no entry items.
    feed_in_items: bool = False

    #: Whether the states of encrypted types are sealed on their way to this backend (a backend
    #: wrapped by :class:`eventstore.encryption.layer.Encrypting`). A store refuses to write an
    #: encrypted type to any other.
    encrypts: bool = False

    #: The largest item the backend stores (``None``: no limit of its own; the store still bounds
    #: states by ``max_state_bytes``). DynamoDB's is :data:`MAX_ITEM_SIZE`; embedded backends keep
    #: states of any size in their file, in the same transaction as the rest of the commit.
    max_item_bytes: int | None = MAX_ITEM_SIZE

    #: The largest total size of the items one atomic write puts or updates (``None``: no limit).
    max_write_bytes: int | None = MAX_WRITE_BYTES

    def joins(self, other: Backend) -> bool:
        """Whether one atomic write of this backend can also put items into ``other``'s table
        (a :class:`Put` with ``into=other``): DynamoDB tables of one endpoint and region. The
        embedded backends join nothing: a caller writes to ``other`` first instead."""
        return False

    def identity(self) -> object | None:
        """A hashable name of the table, equal across backends opened on the same table in one
        process (what a process may cache about the table is keyed by it), or ``None``."""
        return None

    def change_stream(self) -> ChangeStream | None:
        """The table's change stream, or ``None`` when it has none (embedded backends)."""
        return None

    def enable_change_stream(self) -> None:
        """Turn the table's change stream on (keys only) if it is off; :class:`InvalidInput` on
        a backend that has none."""
        raise InvalidInput(f"{type(self).__name__} has no change stream")

    @abc.abstractmethod
    def write(
        self,
        writes: Sequence[Write],
        *,
        token: str | None = None,
        conflicts: Literal["retry", "raise"] = "retry",
    ) -> Mapping[int, int]:
        """Apply ``writes`` atomically: all or nothing, in one request.

        Every condition is checked against the state before the batch. At most
        :data:`MAX_WRITE_ACTIONS` writes, at most one per key (else :class:`InvalidInput`, nothing
        sent); an empty batch is a no-op. If a condition fails, raises :class:`ConditionFailed`
        and writes nothing. ``token`` (1 to 36 characters on every backend, else
        :class:`InvalidInput`) makes the call idempotent where the backend supports it: repeating
        a call with the same token and writes after it succeeded is a no-op success (DynamoDB
        ``ClientRequestToken``, remembered for 10 minutes across the account, so it must be
        unique, e.g. the new version id; embedded backends never lose an answer and ignore it).
        Raises :class:`~eventstore.errors.ItemTooLarge` if an item would exceed
        :attr:`max_item_bytes`, before anything is written. A write cancelled because other
        requests were changing its items (only DynamoDB does that) is retried with backoff, or,
        with ``conflicts="raise"``, raised at once as :class:`WriteConflict` so that a caller
        whose conditions guessed a value (a feed counter) can read it again first.

        Puts with a ``position`` (only where :attr:`feed_in_items`, else :class:`InvalidInput`)
        get position ``L + offset`` of their partition, ``L`` its last position before the write;
        the offsets of one partition in a batch must be distinct and >= 1, and the largest of
        them becomes the partition's last position. Returns ``L`` of each partition the batch
        gave positions in (an empty mapping when none).
        """

    @abc.abstractmethod
    def get(self, keys: Sequence[Key], *, consistent: bool = True) -> list[Item | None]:
        """Read several items by key in one request; the result is in the order of ``keys``,
        ``None`` where no item exists. ``consistent`` asks for a strongly consistent read.

        Each item is read atomically, but the batch is not a snapshot: a write batch applied
        meanwhile may be seen in some items and not in others (DynamoDB's ``BatchGetItem``).
        Callers that read related items together must allow for that."""

    @abc.abstractmethod
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
        """One page of the items whose partition key is ``pk`` and whose sort key matches ``sk``,
        in sort key order (``forward=False``: descending), at most ``limit`` items, starting after
        ``start`` (a ``last_key`` from an earlier page). Table queries return whole items. A page
        may hold fewer items than ``limit`` (pages stop near 1 MB) and a page with a ``last_key``
        may be followed by an empty one. ``last_key`` holds exactly the table keys (``pk``,
        ``sk``) plus, for an index query, that index's two key attributes.

        With ``index``, the keys are that index's ``<index>pk``/``<index>sk`` attributes; items
        come back with at least their table keys, the index keys and the attributes listed in
        :data:`INDEX_ATTRIBUTES` (a backend may return more); the order of items with equal index
        sort keys is unspecified; index reads may be eventually consistent (``consistent`` is
        ignored there)."""

    def positioned(self, partition: int, after: int, *, limit: int) -> list[Item]:
        """Backends with :attr:`feed_in_items`: up to ``limit`` whole items of feed
        ``partition`` with positions above ``after``, in position order, from one consistent
        snapshot of committed writes (a position missing below the last one returned belongs
        to an item deleted since: it is never filled later)."""
        raise InvalidInput(f"{type(self).__name__} keeps no feed in its items")

    def last_position(self, partition: int) -> int:
        """Backends with :attr:`feed_in_items`: the highest position feed ``partition`` gave
        out (0: none). The store never deletes the item holding a partition's highest
        position without a marker that keeps it (trims and purges remove superseded versions,
        below their stream's latest; an erasure puts markers), so this never goes back."""
        raise InvalidInput(f"{type(self).__name__} keeps no feed in its items")

    def pages(
        self,
        pk: str,
        *,
        sk: SortCondition | None = None,
        index: str | None = None,
        forward: bool = True,
        start: Item | None = None,
        consistent: bool = True,
    ) -> Iterator[Page]:
        """Every page of :meth:`query`, lazily: the next page is read when the previous one has
        been consumed, so a reader that stops early sends no more requests."""
        while True:
            page = self.query(
                pk, sk=sk, index=index, forward=forward, start=start, consistent=consistent
            )
            yield page
            if page.last_key is None:
                return
            start = page.last_key

    @abc.abstractmethod
    def scan(
        self,
        *,
        segment: int = 0,
        segments: int = 1,
        start: Item | None = None,
        limit: int | None = None,
    ) -> Page:
        """One page of a full table scan. The table is split into ``segments`` disjoint parts and
        this returns items of part ``segment``; together the segments cover every item once."""

    @abc.abstractmethod
    def create_table(self, options: TableOptions | None = None) -> None:
        """Create the table and its indexes if they do not exist; idempotent; waits until usable.
        ``options`` apply when the table is created (an existing table is left as it is); a
        backend without such settings refuses any but the defaults (:class:`InvalidInput`)."""

    def close(self) -> None:
        """Release connections. The backend must not be used afterwards."""
        return None

    def forget_deleted(self) -> bool:
        """Make sure the bytes of deleted items do not survive in the backend's own files (an
        erasure calls it); return whether that is done. Nothing to do on DynamoDB or in memory;
        SQLite zeroes deleted content (``secure_delete``) and truncates its write-ahead log here,
        which it cannot do while another connection (another process) holds a read
        transaction: it then returns ``False`` after a short wait, and a later call finishes."""
        return True

    def forget_stream(self, pk: str) -> int:
        """Remove what the backend keeps of stream ``pk`` outside its items (the objects of
        offloaded states, every version of them); an erasure calls it once the stream's items
        are gone, while its head still refuses appends. Returns how many things went (0 for a
        backend that keeps nothing outside its items)."""
        return 0

    def shred(self, subject: str) -> None:
        """Backends that :attr:`encrypts`: delete the data key of ``subject``, so that no state
        sealed with it can be opened again, here or in any copy. Others refuse
        (:class:`InvalidInput`)."""
        raise InvalidInput("this store has no key provider (open it with keys=)")

    def usage(self) -> Usage:
        """Requests sent and capacity units consumed so far by the calling thread (zeros for an
        embedded backend). Tracing takes the difference around each operation."""
        return Usage()

    def requests(self) -> int:
        """Number of requests sent to the server so far (0 for embedded backends that do not count).
        Used by tests and benchmarks."""
        return 0


@dataclass(frozen=True)
class TableOptions:
    """What a production DynamoDB table is made with, besides its keys and indexes.

    The defaults make an on-demand table with AWS-owned encryption, no point-in-time recovery,
    no stream and no tags. Embedded backends accept only the defaults.
    """

    #: ``"PAY_PER_REQUEST"`` (on demand) or ``"PROVISIONED"`` (then give both capacities).
    billing: Literal["PAY_PER_REQUEST", "PROVISIONED"] = "PAY_PER_REQUEST"
    #: Provisioned read and write capacity units, for the table and for each index.
    read_capacity: int | None = None
    write_capacity: int | None = None
    #: Continuous backups you can restore to any second of the last 35 days.
    point_in_time_recovery: bool = False
    #: Encrypt with this customer-managed KMS key (id, ARN or alias) instead of AWS's own.
    kms_key: str | None = None
    #: Tags on the table (cost allocation, ownership).
    tags: Mapping[str, str] = field(default_factory=dict)
    #: Turn on DynamoDB Streams with this view type (``None``: no stream).
    stream: StreamView | None = None
    #: Refuse DeleteTable until this is turned off.
    deletion_protection: bool = False

    def __post_init__(self) -> None:
        if self.billing not in ("PAY_PER_REQUEST", "PROVISIONED"):
            raise InvalidInput(
                f"billing must be PAY_PER_REQUEST or PROVISIONED, got {self.billing!r}"
            )
        capacities = (self.read_capacity, self.write_capacity)
        if self.billing == "PROVISIONED":
            for name, units in zip(("read_capacity", "write_capacity"), capacities, strict=True):
                if isinstance(units, bool) or not isinstance(units, int) or units < 1:
                    raise InvalidInput(f"PROVISIONED billing needs {name} >= 1, got {units!r}")
        elif capacities != (None, None):
            raise InvalidInput("read_capacity and write_capacity go with PROVISIONED billing")
        if self.kms_key is not None and (not isinstance(self.kms_key, str) or not self.kms_key):
            raise InvalidInput(f"kms_key must be a key id, ARN or alias, got {self.kms_key!r}")
        if not isinstance(self.tags, Mapping) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in self.tags.items()
        ):
            raise InvalidInput(f"tags must map non-empty names to strings, got {self.tags!r}")
        views = ("NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY")
        if self.stream is not None and self.stream not in views:
            raise InvalidInput(f"stream must be None or one of {', '.join(views)}")
        for name in ("point_in_time_recovery", "deletion_protection"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInput(f"{name} must be True or False")

    @property
    def is_default(self) -> bool:
        return self == TableOptions()


@dataclass(frozen=True)
class Usage:
    """What a thread has spent on a backend: requests sent (retries included) and the read and
    write capacity units DynamoDB reported for them."""

    requests: int = 0
    read_units: float = 0.0
    write_units: float = 0.0

    def __sub__(self, earlier: Usage) -> Usage:
        return Usage(
            self.requests - earlier.requests,
            self.read_units - earlier.read_units,
            self.write_units - earlier.write_units,
        )
