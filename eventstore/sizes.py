"""Item sizes computed the way DynamoDB bills and limits them.

DynamoDB counts, for every attribute, the UTF-8 length of its name plus the size of its value:
strings their UTF-8 length, binary values their length, booleans 1 byte, and numbers 1 byte plus
1 byte per two significant digits (leading and trailing zeros are not significant).
"""

from __future__ import annotations

from collections.abc import Mapping

from eventstore.backends.base import Value


def number_size(value: int) -> int:
    """Bytes DynamoDB uses for a number attribute value."""
    digits = str(abs(value)).strip("0") or "0"
    return 1 + (len(digits) + 1) // 2


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
