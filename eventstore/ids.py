"""Version ids: ULIDs that sort in version order within a stream and carry the version number.

Layout of the 128 bits: 48-bit millisecond timestamp, 32-bit version number, 48 random bits. Within
one stream a later version therefore has a greater id whenever its timestamp is not earlier; the
timestamp is kept monotonic in this process, and the store's conditional write refuses an id that
is not greater than the stream's last one (another process with a clock behind), then retries with
a later timestamp. Carrying the version number lets a read by version id fetch the item by key in
one request.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone

from eventstore.errors import InvalidInput
from eventstore.keys import MAX_VERSION

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Crockford's alphabet mapped onto the digits int(..., 32) reads.
_TO_BASE32 = str.maketrans(_ALPHABET, "0123456789abcdefghijklmnopqrstuv")
# 26 Crockford characters, the first at most 7 (128 bits); lower case is accepted as ULIDs allow.
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", re.IGNORECASE)
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = range(120, -1, -10)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_lock = threading.Lock()
_last_ms = 0
_last_random = 0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_version_id(version: int, *, not_before_ms: int = 0) -> str:
    """A new version id for ``version``; its timestamp is at least ``not_before_ms``, and for the
    same version number it is greater than any id this process made before."""
    global _last_ms, _last_random
    with _lock:
        ms = max(_now_ms(), _last_ms, not_before_ms)
        if ms == _last_ms:
            # Within one millisecond the random part counts up, so ids made by this process
            # (new streams in particular, whose version is always 1) keep their creation order.
            random = _last_random + 1
            if random >= 1 << 48:
                ms, random = ms + 1, secrets.randbits(47)
        else:
            # Half the range, so a burst within one millisecond has room to count up.
            random = secrets.randbits(47)
        _last_ms, _last_random = ms, random
    value = (ms << 80) | (version << 48) | random
    return _crockford(value)


def _crockford(value: int) -> str:
    # The 26-character ULID text of a 128-bit value (ulid-py's from_int does the same, slower):
    # 13 pairs of characters, 10 bits each, looked up in a table.
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in _SHIFTS])


def new_resource_id() -> str:
    """A new resource id: a standard ULID string (48-bit millisecond time, 80 random bits).

    Made here rather than by a ULID package: ``ulid-py`` and ``python-ulid`` both install a module
    named ``ulid`` with different functions, and either may be the one a user has installed."""
    return _crockford((_now_ms() << 80) | secrets.randbits(80))


def parse_version_id(version_id: str) -> tuple[int, int]:
    """``(version, timestamp_ms)`` of a version id; :class:`InvalidInput` if it is not one."""
    if not isinstance(version_id, str) or not _ULID.fullmatch(version_id):
        raise InvalidInput(f"{version_id!r} is not a version id (a 26-character ULID)")
    value = int(version_id.upper().translate(_TO_BASE32), 32)
    version = (value >> 48) & MAX_VERSION
    if version == 0:
        raise InvalidInput(f"{version_id!r} is not a version id made by eventstore")
    return version, value >> 80


def recorded_at(version_id: str) -> datetime:
    """The time embedded in a version id (UTC, millisecond precision)."""
    return from_ms(parse_version_id(version_id)[1])


def issued_at(version_id: str) -> datetime:
    """:func:`recorded_at` for an id this process just made (no validation, faster)."""
    return from_ms(int(version_id[:10].translate(_TO_BASE32), 32))


def from_ms(ms: int) -> datetime:
    """A UTC datetime from milliseconds since the epoch."""
    return _EPOCH + timedelta(milliseconds=ms)
