"""The store's queries and listings: result pages, argument checks, sort-key conditions, and
running one page of a query over an index (cursors are signed in ``cursors``).

Nothing here knows the ``projections`` package.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypedDict, TypeVar, cast

from typing_extensions import Unpack

from eventstore import records
from eventstore.backends.base import Backend, Item, SortCondition, index_keys
from eventstore.cursors import CursorSigner
from eventstore.errors import BackendError, InvalidInput, ProjectionError, WrongType
from eventstore.indexing import IndexPlan, IndexProjection, KeyedBy, index_partition
from eventstore.reading import Reader
from eventstore.resource import Resource, Version, check_resource_class

R = TypeVar("R", bound=Resource)

#: Most items one query or listing page may ask for.
MAX_LIMIT = 1000
#: Longest partition or sort-key value a query accepts (the longest a projection may write).
MAX_QUERY_PART = 512
_OPS: dict[str, Literal["=", "<", "<=", ">", ">=", "begins_with"]] = {
    "equals": "=",
    "begins_with": "begins_with",
    "lt": "<",
    "lte": "<=",
    "gt": ">",
    "gte": ">=",
}


@dataclass(frozen=True)
class QueryPage(Generic[R]):
    """One page of a query or listing: ``items`` (latest versions) and ``cursor``, to pass back
    for the next page, or ``None`` when there is no next page."""

    items: list[Version[R]]
    cursor: str | None

    def __iter__(self) -> Iterator[Version[R]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


# -- arguments -------------------------------------------------------------------------------


def check_part(what: str, value: object) -> str:
    """A partition or sort-key value given to a query: a non-empty str of at most
    :data:`MAX_QUERY_PART` characters."""
    if not isinstance(value, str):
        raise WrongType(f"{what} must be a str, got {type(value).__name__}")
    if not 0 < len(value) <= MAX_QUERY_PART:
        raise InvalidInput(f"{what} must be 1 to {MAX_QUERY_PART} characters, got {len(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidInput(f"{what} contains a lone surrogate character") from e
    return value


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an int from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit


def check_flag(what: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise WrongType(f"{what} must be True or False, got {value!r}")
    return value


class SortKey(TypedDict, total=False):
    """The sort-key conditions a query takes as keyword arguments; at most one per query."""

    equals: str
    begins_with: str
    between: tuple[str, str]
    lt: str
    lte: str
    gt: str
    gte: str


class QueryOptions(SortKey, total=False):
    """Keyword arguments of :meth:`EventStore.query` besides the projection and partition."""

    reverse: bool
    limit: int
    cursor: str | None
    consistent: bool
    where: Callable[[Any], bool] | None


def sort_condition(conditions: Mapping[str, object]) -> SortCondition | None:
    """The one sort-key condition of a query (DynamoDB allows one per query), or ``None``."""
    unknown = set(conditions) - set(SortKey.__annotations__)
    if unknown:
        raise InvalidInput(f"unknown query option(s): {', '.join(sorted(unknown))}")
    given = [(name, value) for name, value in conditions.items() if value is not None]
    if not given:
        return None
    if len(given) > 1:
        names = ", ".join(name for name, _ in given)
        raise InvalidInput(f"a query takes at most one sort-key condition, got {names}")
    name, value = given[0]
    if name == "between":
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise InvalidInput(f"between must be a (low, high) pair, got {value!r}")
        low = check_part("between low", value[0])
        high = check_part("between high", value[1])
        if low > high:
            raise InvalidInput(f"between low {low!r} sorts after high {high!r}")
        return SortCondition("between", low, high)
    return SortCondition(_OPS[name], check_part(name, value))


def query_context(
    kind: str,
    type_name: str,
    projection: str | None,
    index: str,
    partition: str,
    sk: SortCondition | None,
    reverse: bool,
) -> bytes:
    """What a cursor is bound to: everything that picks and orders the items, not the page size."""
    parts: list[str | bool | None] = [kind, type_name, projection, index, partition]
    parts += [sk.op, sk.value, sk.upper] if sk is not None else [None, None, None]
    parts.append(reverse)
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def start_key(item: Item, index: str | None) -> Item:
    """The continuation key right after ``item`` in a query of ``index`` (the table key plus the
    index key), the same shape a backend returns as ``last_key``."""
    names = (
        [records.PK, records.SK] if index is None else [records.PK, records.SK, *index_keys(index)]
    )
    try:
        return {name: item[name] for name in names}
    except KeyError as e:
        raise BackendError(f"index item {item.get(records.PK)!r} lacks key attribute {e}") from None


def query_page(
    reader: Reader,
    signer: CursorSigner,
    cls: type[R],
    index: str,
    index_pk: str,
    *,
    sk: SortCondition | None,
    reverse: bool,
    limit: int,
    cursor: str | None,
    consistent: bool,
    context: bytes,
    where: Callable[[R], bool] | None = None,
) -> QueryPage[R]:
    """One page of an index query, as the latest versions its entries name; with ``where``, only
    those whose state it accepts, reading on until ``limit`` of them are found."""
    size = check_limit(limit)
    check_flag("consistent", consistent)
    if where is not None and not callable(where):
        raise WrongType(f"where must be a function of the state, got {where!r}")
    start = None if cursor is None else signer.verify(context, cursor)
    found: list[Version[R]] = []
    while True:
        # One item more than asked tells whether a next page exists, so that a cursor is only
        # handed out when there is something after it.
        page = reader.backend.query(
            index_pk, sk=sk, index=index, forward=not reverse, limit=size + 1, start=start
        )
        heads = page.items
        if where is None:
            after: Item | None = page.last_key
            if len(heads) > size:
                heads = heads[:size]
                after = start_key(heads[-1], index)
            versions = reader.named_by(cls, heads, consistent=consistent)
            kept = [v for v in versions if v is not None]
            return QueryPage(kept, None if after is None else signer.sign(context, after))
        versions = reader.named_by(cls, heads, consistent=consistent)
        for i, (entry, version) in enumerate(zip(heads, versions, strict=True)):
            if version is None or not where(version.state):
                continue
            found.append(version)
            if len(found) == size:
                more = i + 1 < len(heads) or page.last_key is not None
                after = start_key(entry, index) if more else None
                return QueryPage(found, None if after is None else signer.sign(context, after))
        if page.last_key is None:
            return QueryPage(found, None)
        start = page.last_key


class Querying:
    """Query and listing methods of :class:`eventstore.EventStore`."""

    backend: Backend
    reader: Reader
    indexes: IndexPlan
    _cursors: CursorSigner

    def heads(self, resource_type: type[Resource], *, reverse: bool = False) -> Iterator[Item]:
        """The head items of every stream of a type, in creation order (newest first with
        ``reverse``), read lazily from the store's listing index."""
        cls = check_resource_class(resource_type)
        for page in self.backend.pages(
            cls.resource_type, index=records.LISTING, forward=not reverse
        ):
            yield from page.items

    def deleted_heads(self, resource_type: type[Resource]) -> Iterator[Item]:
        """The head items of the deleted streams of a type (their history is still held until
        trimmed, expired or erased), in deletion order."""
        cls = check_resource_class(resource_type)
        listing = records.deleted_listing(cls.resource_type)
        for page in self.backend.pages(listing, index=records.LISTING):
            yield from page.items

    def query(
        self,
        projection: type[KeyedBy[R]] | KeyedBy[R],
        partition: str,
        *,
        reverse: bool = False,
        limit: int = 50,
        cursor: str | None = None,
        consistent: bool = False,
        where: Callable[[R], bool] | None = None,
        **sort: Unpack[SortKey],
    ) -> QueryPage[R]:
        """One page of the resources a projection puts in ``partition``, in sort-key order
        (``reverse``: descending), as their latest versions.

        ``projection`` is a projection declared on this store (its class or an instance). At
        most one sort-key condition: ``equals``, ``begins_with``, ``between=(low, high)``
        (inclusive), ``lt``, ``lte``, ``gt``, ``gte``. ``cursor`` is the ``cursor`` of the
        previous page of the same query (any other raises :class:`InvalidCursor`).

        Two requests per page (the index query, then one batch read of the versions it names;
        pages over 50 items take one more read per 50). Each item is the version the index
        entry was written with, so it matches the condition; on DynamoDB the index itself lags
        the table by a moment, so a page may miss a very recent change or hold the version just
        before it. If that version has been trimmed since, the stream's latest version is
        returned instead, even though it may no longer match. ``consistent`` makes the version
        reads strongly consistent (the index query never is, on DynamoDB).

        ``where`` filters on the decoded state while paging: ``limit`` counts the states it
        accepts, and the cursor resumes right after the last of them. Every item up to there is
        read and decoded, accepted or not: the cost is the items read, not the items returned."""
        declared = self.declared_projection(projection)
        type_name = declared.resource_class.resource_type
        value = check_part("partition", partition)
        sk = sort_condition(sort)
        backwards = check_flag("reverse", reverse)
        return query_page(
            self.reader,
            self._cursors,
            # The declared projection's class is the one ``KeyedBy[R]`` names.
            cast("type[R]", declared.resource_class),
            declared.index,
            index_partition(type_name, declared.name, value),
            sk=sk,
            reverse=backwards,
            limit=limit,
            cursor=cursor,
            consistent=consistent,
            context=query_context(
                "query", type_name, declared.name, declared.index, value, sk, backwards
            ),
            where=where,
        )

    def list_resources(
        self,
        resource_type: type[R],
        *,
        newest_first: bool = True,
        limit: int = 50,
        cursor: str | None = None,
        consistent: bool = False,
        where: Callable[[R], bool] | None = None,
    ) -> QueryPage[R]:
        """One page of the resources of a type by creation time (newest first by default), as
        their latest versions, with the same paging, cost, consistency and ``where`` filter as
        :meth:`query`."""
        cls = check_resource_class(resource_type)
        backwards = check_flag("newest_first", newest_first)
        name = cls.resource_type
        return query_page(
            self.reader,
            self._cursors,
            cls,
            records.LISTING,
            name,
            sk=None,
            reverse=backwards,
            limit=limit,
            cursor=cursor,
            consistent=consistent,
            context=query_context("list", name, None, records.LISTING, name, None, backwards),
            where=where,
        )

    def set_cursor_secret(self, secret: bytes) -> None:
        """Sign query cursors with ``secret`` (16 bytes or more) instead of the random secret the
        table keeps for this. Every process that serves the same clients needs the same one."""
        self._cursors = CursorSigner(self.backend, secret)

    def declared_projection(self, projection: object) -> IndexProjection:
        """The projection declared on this store that ``projection`` (a class or instance)
        names; :class:`ProjectionError` if it is not declared here."""
        cls: object = getattr(projection, "resource_class", None)
        name: object = getattr(projection, "name", None)
        if not isinstance(cls, type) or not isinstance(name, str):
            raise WrongType(f"expected a projection (class or instance), got {projection!r}")
        type_name = check_resource_class(cast("type[Resource]", cls)).resource_type
        declared = self.indexes.find(type_name, name)
        if declared is None:
            raise ProjectionError(
                f"projection {name!r} of {type_name} is not declared on this store; "
                "open the store with projections=[...] including it"
            )
        return declared
