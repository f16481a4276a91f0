"""Key layout of the single table, and validation of the user input that goes into keys.

A stream lives in one partition, ``pk = "<type name>#<resource id>"``. Type names may not contain
``#``, so the first ``#`` always ends the type name and no (type, id) pair can produce another
pair's partition key. Inside the partition:

- ``h``: the head (current version number, version id, retention bound, index keys);
- ``v#<version, 10 digits>#v``: a version (event, metadata and its state, usually as a small delta
  against the keyframe of its group);
- ``v#<last version of the group, 10 digits>#w``: the keyframe of a group of
  :data:`KEYFRAME_INTERVAL` versions (1-16, 17-32, ...): the full state of the group's first
  version. It sorts just above every version of its group (``w`` after ``v``), so the two newest
  items of a stream are always the current keyframe and the latest version: reading the latest
  version is a query of two items.
"""

from __future__ import annotations

import re

from eventstore.errors import InvalidKey

#: Longest resource id accepted, in characters (keeps ``pk`` well under DynamoDB's 2048 bytes).
MAX_ID_LENGTH = 256
#: Highest version number a stream can reach (the number is embedded in 32 bits of the version id).
MAX_VERSION = 2**32 - 1

#: Versions per keyframe group: versions 1-16 are deltas against the state of version 1, 17-32
#: against version 17, and so on. Part of the storage format.
KEYFRAME_INTERVAL = 16

HEAD_SK = "h"
VERSION_PREFIX = "v#"
# Unicode's control characters (category Cc) and lone surrogates (Cs).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_TYPE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")


def check_type_name(name: object) -> str:
    """Return ``name`` if it is a valid resource type name: a letter, then up to 63 letters,
    digits, ``_``, ``.`` or ``-``; raise :class:`InvalidKey` otherwise."""
    if not isinstance(name, str):
        raise InvalidKey(f"resource type name must be a str, got {type(name).__name__}")
    if not _TYPE_NAME.fullmatch(name):
        raise InvalidKey(
            f"resource type name {name!r} must be a letter followed by at most 63 letters, "
            "digits, '_', '.' or '-'"
        )
    return name


def check_resource_id(resource_id: object) -> str:
    """Return ``resource_id`` if usable: a non-empty str of at most :data:`MAX_ID_LENGTH`
    characters with no control characters or lone surrogates; raise :class:`InvalidKey` otherwise.
    Any other character, ``#`` included, is allowed and round-trips."""
    if not isinstance(resource_id, str):
        raise InvalidKey(f"resource id must be a str, got {type(resource_id).__name__}")
    if not resource_id:
        raise InvalidKey("resource id must not be empty")
    if len(resource_id) > MAX_ID_LENGTH:
        raise InvalidKey(
            f"resource id is {len(resource_id)} characters, longer than {MAX_ID_LENGTH}"
        )
    bad = _FORBIDDEN.search(resource_id)
    if bad is not None:
        raise InvalidKey(
            f"resource id {resource_id!r} contains the control or surrogate character "
            f"U+{ord(bad.group()):04X}"
        )
    return resource_id


def stream_pk(type_name: str, resource_id: str) -> str:
    """Partition key of a stream (both parts already validated)."""
    return f"{type_name}#{resource_id}"


def split_pk(pk: str) -> tuple[str, str]:
    """Inverse of :func:`stream_pk`."""
    type_name, _, resource_id = pk.partition("#")
    return type_name, resource_id


def version_sk(version: int) -> str:
    return f"{VERSION_PREFIX}{version:010d}#v"


def keyframe_sk(base: int) -> str:
    """Sort key of the keyframe holding the state of version ``base`` (a group's first version)."""
    return f"{VERSION_PREFIX}{base + KEYFRAME_INTERVAL - 1:010d}#w"


def parse_sk(sk: str) -> tuple[int, bool] | None:
    """``(version, False)`` for a version's sort key, ``(base, True)`` for a keyframe's (``base``:
    the version whose state it holds), ``None`` for other items."""
    if len(sk) != 14 or not sk.startswith(VERSION_PREFIX) or sk[12] != "#":
        return None
    kind = sk[13]
    if kind not in "vw" or not sk[2:12].isdigit():
        return None
    number = int(sk[2:12])
    if kind == "v":
        return number, False
    return number - KEYFRAME_INTERVAL + 1, True


def keyframe_of(version: int, interval: int = KEYFRAME_INTERVAL) -> int:
    """The first version of a version's group, whose keyframe its delta is taken against."""
    return version - (version - 1) % interval
