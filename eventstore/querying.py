"""Pieces of the store's queries and replay: result pages, sort-key conditions, signed cursors and
replay checkpoints.

The store's ``query``/``list_resources``/``replay_pages`` use these; nothing here knows the
``projections`` package.

Cursors are opaque to callers and signed: HMAC-SHA256 (truncated to 128 bits) over the query they
belong to (kind, type, projection, index, partition, sort condition, direction) and the position
they resume from. A cursor that was altered, or is handed to another query, is refused with
:class:`InvalidCursor`. The key is, by default, a random secret kept in the table itself (item
``pk="_secret", sk="cursor"``, made on first use with a conditional write), so every process and
every Lambda instance that uses the table accepts the cursors of the others without configuration.
Anyone who can read the table can read that secret: cursors protect positions from clients, they
are not access tokens. :meth:`EventStore.set_cursor_secret` replaces it with your own.

Items whose ``pk`` starts with ``_`` belong to the library (the cursor secret, checkpoints). Stream
partition keys start with a type name, which starts with a letter, so the two never meet.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypedDict, TypeVar

from eventstore.backends.base import (
    Backend,
    Condition,
    ConditionFailed,
    Item,
    Key,
    Put,
    SortCondition,
    index_keys,
)
from eventstore.errors import BackendError, InvalidCursor, InvalidInput, WrongType
from eventstore.keys import MAX_VERSION, check_resource_id, check_type_name
from eventstore.resource import Resource, Version

R = TypeVar("R", bound=Resource)

#: Most items one query or listing page may ask for.
MAX_LIMIT = 1000
#: Longest partition or sort-key value a query accepts (the longest a projection may write).
MAX_QUERY_PART = 512
#: Library items have a partition key starting with this; stream keys never do.
RESERVED_PREFIX = "_"
#: Where the table's own cursor secret lives.
SECRET_KEY: Key = ("_secret", "cursor")

_OPS: dict[str, Literal["=", "<", "<=", ">", ">=", "begins_with"]] = {
    "equals": "=",
    "begins_with": "begins_with",
    "lt": "<",
    "lte": "<=",
    "gt": ">",
    "gte": ">=",
}
_CURSOR_FORMAT = 1
_MAC_BYTES = 16
_MAX_CURSOR_CHARS = 8192
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
# A version id as the store writes it (a ULID in Crockford base32), the listing's sort key.
_VERSION_ID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


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


@dataclass(frozen=True)
class ReplayPage:
    """Consecutive versions of a replay and the checkpoint right after the last of them: pass
    ``checkpoint`` as ``after=`` to continue with the version that follows."""

    items: list[Version[Any]]
    checkpoint: str


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
    names = ["pk", "sk"] if index is None else ["pk", "sk", *index_keys(index)]
    try:
        return {name: item[name] for name in names}
    except KeyError as e:
        raise BackendError(f"index item {item.get('pk')!r} lacks key attribute {e}") from None


# -- cursors ---------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key_ok(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(name, str)
        and (isinstance(part, str) or (isinstance(part, int) and not isinstance(part, bool)))
        for name, part in value.items()
    )


class CursorSigner:
    """Signs and checks cursors with a secret: the one given, or the table's own (read, or made,
    on first use and then kept)."""

    def __init__(self, backend: Backend, secret: bytes | None = None) -> None:
        if secret is not None and (not isinstance(secret, bytes) or len(secret) < 16):
            raise InvalidInput("a cursor secret must be bytes, at least 16 of them")
        self._backend = backend
        self._secret = secret
        self._lock = threading.Lock()

    def _key(self) -> bytes:
        with self._lock:
            if self._secret is None:
                self._secret = table_secret(self._backend)
            return self._secret

    def _mac(self, context: bytes, payload: bytes) -> bytes:
        message = bytes([_CURSOR_FORMAT]) + context + b"\0" + payload
        return hmac.new(self._key(), message, hashlib.sha256).digest()[:_MAC_BYTES]

    def sign(self, context: bytes, position: Item) -> str:
        if not _key_ok(position):
            raise BackendError(f"cannot make a cursor of the key {position!r}")
        payload = json.dumps(
            position, sort_keys=True, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        return _b64encode(bytes([_CURSOR_FORMAT]) + self._mac(context, payload) + payload)

    def verify(self, context: bytes, cursor: object) -> Item:
        """The position a cursor resumes from; :class:`InvalidCursor` unless it was signed with
        this secret for this very query."""
        if not isinstance(cursor, str) or not 0 < len(cursor) <= _MAX_CURSOR_CHARS:
            raise InvalidCursor("not a cursor: cursors are the strings query pages return")
        try:
            raw = _b64decode(cursor)
        except ValueError:
            raise InvalidCursor("not a cursor: it is not base64url text") from None
        if len(raw) <= 1 + _MAC_BYTES or raw[0] != _CURSOR_FORMAT:
            raise InvalidCursor("not a cursor, or one from another version of the library")
        mac, payload = raw[1 : 1 + _MAC_BYTES], raw[1 + _MAC_BYTES :]
        if not hmac.compare_digest(mac, self._mac(context, payload)):
            raise InvalidCursor(
                "cursor does not match this query (altered, or made by another query or table)"
            )
        try:
            position = json.loads(payload)
        except ValueError:
            raise InvalidCursor("cursor payload is not readable") from None
        if not _key_ok(position) or "pk" not in position or "sk" not in position:
            raise InvalidCursor("cursor payload is not a key")
        return dict(position)


def table_secret(backend: Backend) -> bytes:
    """The table's cursor secret, made with a conditional write if it does not exist yet (when two
    processes race, both end up with the one that was written first)."""
    item = backend.get([SECRET_KEY])[0]
    if item is None:
        fresh = secrets.token_bytes(32)
        try:
            backend.write(
                [
                    Put(
                        {"pk": SECRET_KEY[0], "sk": SECRET_KEY[1], "k": fresh},
                        Condition(exists=False),
                    )
                ]
            )
            return fresh
        except ConditionFailed as e:
            item = e.item if e.item is not None else backend.get([SECRET_KEY])[0]
    value = item.get("k") if item is not None else None
    if not isinstance(value, bytes) or len(value) < 16:
        raise BackendError("the table's cursor secret item (_secret/cursor) is damaged")
    return value


# -- replay checkpoints ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayPosition:
    """Where a replay stopped: after ``version`` of stream ``pk`` (of ``type_name``), whose place
    in the creation-order listing is ``listed`` (its ``gsi0sk``)."""

    type_name: str
    listed: str
    pk: str
    version: int

    def encode(self) -> str:
        text = json.dumps(
            [1, self.type_name, self.listed, self.pk, self.version],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return _b64encode(text.encode("utf-8"))

    @classmethod
    def decode(cls, token: object) -> ReplayPosition:
        """Parse a checkpoint; :class:`InvalidInput` if it is not one."""
        if not isinstance(token, str) or not 0 < len(token) <= _MAX_CURSOR_CHARS:
            raise InvalidInput("a replay checkpoint is a str returned by replay_pages()")
        try:
            parts = json.loads(_b64decode(token))
        except ValueError:
            raise InvalidInput("not a replay checkpoint") from None
        if (
            not isinstance(parts, list)
            or len(parts) != 5
            or parts[0] != 1
            or not all(isinstance(p, str) for p in parts[1:4])
            or isinstance(parts[4], bool)
            or not isinstance(parts[4], int)
            or parts[4] < 0
            or parts[4] > MAX_VERSION
            or not _VERSION_ID.fullmatch(parts[2])
            or not parts[3].startswith(f"{parts[1]}#")
        ):
            raise InvalidInput("not a replay checkpoint")
        # The parts become keys of a query: they must be keys the store could have made.
        try:
            check_type_name(parts[1])
            check_resource_id(parts[3][len(parts[1]) + 1 :])
        except ValueError:
            raise InvalidInput("not a replay checkpoint") from None
        return cls(parts[1], parts[2], parts[3], parts[4])
