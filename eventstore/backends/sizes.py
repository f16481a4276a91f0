"""Item sizes computed the way DynamoDB bills and limits them.

DynamoDB counts, for every attribute, the UTF-8 length of its name plus the size of its value:
strings their UTF-8 length, binary values their length, booleans 1 byte. Numbers are stored as
base-100 digit pairs aligned on the decimal point: 1 byte of exponent, 1 byte per pair once trailing
``00`` pairs are dropped, 1 more byte when negative; zero takes 1 byte. (So 110, ``01|10``, takes
3 bytes while 1100, ``11|00``, takes 2. Measured against DynamoDB Local at the 400 KB limit, see
``tests/test_dynamodb_backend.py``.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eventstore.backends.base import Put, Update, Value, Write


def number_size(value: int) -> int:
    """Bytes DynamoDB uses for a number attribute value."""
    if value == 0:
        return 1
    digits = str(abs(value))
    if len(digits) % 2:
        digits = "0" + digits
    pairs = len(digits) // 2
    while digits[2 * pairs - 2 : 2 * pairs] == "00":
        pairs -= 1
    return 1 + pairs + (value < 0)


def value_size(value: Value) -> int:
    """Bytes DynamoDB uses for one attribute value."""
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return number_size(value)
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    return len(value)


def item_size(item: Mapping[str, Value]) -> int:
    """Bytes DynamoDB counts for an item: attribute names plus values."""
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units(size: int, *, transactional: bool) -> int:
    """Write capacity units one write of an item of ``size`` bytes costs (1 KB units, doubled in a
    transaction). Deletes are billed on the size of the deleted item."""
    units = max(1, -(-size // 1024))
    return units * 2 if transactional else units


# DynamoDB counts a transaction's whole payload against its 4 MB, not only the items: the keys of
# deletes, condition values, and some bytes per action and per request (about 150 measured on
# DynamoDB Local). Counted generously, so that a commit the check lets through is never refused.
_ACTION_OVERHEAD = 100
_REQUEST_OVERHEAD = 1024


def write_size(w: Write) -> int:
    """What one write of an atomic batch counts against the batch's byte limit, generously."""
    if isinstance(w, Put):
        size = item_size(w.item)
    elif isinstance(w, Update):
        size = item_size({"pk": w.key[0], "sk": w.key[1], **w.set})
    else:
        size = item_size({"pk": w.key[0], "sk": w.key[1]})
    if w.condition is not None:
        size += item_size({**w.condition.equals, **w.condition.less_than})
    return size + _ACTION_OVERHEAD


def batch_size(writes: Sequence[Write]) -> int:
    """What an atomic batch counts against DynamoDB's 4 MB, generously."""
    return _REQUEST_OVERHEAD + sum(write_size(w) for w in writes)
