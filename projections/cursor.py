"""Query cursors: opaque, signed, bound to their query.

The implementation lives in :mod:`eventstore.querying`, because the store makes and checks the
cursors (the store never imports this package). What a caller may rely on:

- a cursor is a URL-safe string (base64url, no padding), safe to hand to a browser or put in a
  URL; it is not encrypted: it carries the key of the last item returned;
- it is signed with HMAC-SHA256 over the query (resource type, projection, index, partition, sort
  condition, direction) and that key; an altered cursor, or a cursor given to any other query,
  raises :class:`InvalidCursor` (an :class:`~eventstore.InvalidInput`, so a ``ValueError``);
- the page size may change from one page to the next;
- by default the key is a random secret kept in the table (item ``_secret``/``cursor``, made on
  first use), so every process using the table accepts every other's cursors, and deleting that
  item invalidates every outstanding cursor; ``store.set_cursor_secret(b"...")`` uses your own
  secret instead (then every process must use the same one).
"""

from __future__ import annotations

from eventstore.cursors import SECRET_KEY, CursorSigner
from eventstore.errors import InvalidCursor

__all__ = ["SECRET_KEY", "CursorSigner", "InvalidCursor"]
