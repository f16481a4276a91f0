"""Signed query cursors and replay checkpoints.

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
from dataclasses import dataclass

from eventstore import bridge, records
from eventstore.backends.base import Backend, Condition, ConditionFailed, Item, Key, Put
from eventstore.errors import BackendError, InvalidCursor, InvalidInput
from eventstore.keys import MAX_VERSION, check_resource_id, check_type_name

RESERVED_PREFIX = "_"
#: Where the table's own cursor secret lives.
SECRET_KEY: Key = ("_secret", "cursor")
_CURSOR_FORMAT = 1
_MAC_BYTES = 16
_MAX_CURSOR_CHARS = 8192
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
# A version id as the store writes it (a ULID in Crockford base32), the listing's sort key.
_VERSION_ID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


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
        self._lock = bridge.IOLock()  # held while the table's secret is read

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
        if not _key_ok(position) or records.PK not in position or records.SK not in position:
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
                        records.secret_item(SECRET_KEY, fresh),
                        Condition(exists=False),
                    )
                ]
            )
            return fresh
        except ConditionFailed as e:
            item = e.item if e.item is not None else backend.get([SECRET_KEY])[0]
    value = records.secret_value(item)
    if value is None or len(value) < 16:
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
