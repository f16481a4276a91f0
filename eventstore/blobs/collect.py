"""The sweep: objects of the blob store that no item names, left by commits that failed or
conflicted after their upload (and by trims whose own cleanup failed), deleted once they are
older than a grace period that no commit can outlast.

Why it cannot take an object a commit relies on: a commit sends its write within a bounded time
of its uploads (the DynamoDB backend's retries give up after about two minutes), so an object
older than the grace period whose item does not name it has no commit on its way that could name
it later; and no commit relies on an object another commit uploaded (see
:mod:`eventstore.blobs.offload`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import unquote

from eventstore import records
from eventstore.backends.base import Item
from eventstore.blobs.base import BlobInfo
from eventstore.blobs.offload import Offloading, parse_pointer, slot_of
from eventstore.errors import InvalidInput, WrongType
from eventstore.keys import keyframe_sk, stream_pk, version_sk

#: The shortest grace period the sweep accepts: many times the longest a commit takes from its
#: uploads to its write.
MIN_GRACE = timedelta(minutes=15)
_CHECK_BATCH = 100


@dataclass
class Sweep:
    """How far a sweep got: objects listed, deleted, and kept because they are younger than the
    grace period, or because their stream's id is too long to appear in the key (erasing the
    stream removes those)."""

    listed: int = 0
    deleted: int = 0
    young: int = 0
    unnamed: int = 0


def collect(
    backend: Offloading,
    older_than: timedelta,
    *,
    now: float,
    progress: Callable[[Sweep], None] | None = None,
) -> Sweep:
    """Delete every object under the store's prefix, older than ``older_than`` (at least
    :data:`MIN_GRACE`) at time ``now`` (seconds since the epoch), that no item names."""
    if not isinstance(older_than, timedelta):
        raise WrongType(f"older_than must be a timedelta, got {type(older_than).__name__}")
    if older_than < MIN_GRACE:
        raise InvalidInput(
            f"older_than must be at least {MIN_GRACE} (longer than any commit takes from its "
            f"uploads to its write), got {older_than}"
        )
    cutoff = now - older_than.total_seconds()
    sweep = Sweep()
    candidates: list[tuple[BlobInfo, tuple[str, str]]] = []

    def check() -> None:
        named = backend.inner.get([key for _, key in candidates], consistent=True)
        gone = [
            blob
            for (blob, _), item in zip(candidates, named, strict=True)
            if not _names(item, blob.key)
        ]
        if gone:
            sweep.deleted += backend.blobs.delete(gone)
        candidates.clear()
        if progress is not None:
            progress(sweep)

    for blob in backend.blobs.list(""):
        sweep.listed += 1
        if blob.modified.timestamp() > cutoff:
            sweep.young += 1
            continue
        key = _item_key(blob.key)
        if key is None:
            sweep.unnamed += 1
            continue
        candidates.append((blob, key))
        if len(candidates) >= _CHECK_BATCH:
            check()
    check()
    return sweep


def _item_key(key: str) -> tuple[str, str] | None:
    """The key of the item an object was uploaded for; ``None`` when the key does not say (an
    id named by its digest, or an object that is not the store's)."""
    parts = key.split("/")
    slot = slot_of(key)
    if slot is None or len(parts) != 4 or parts[1].startswith("~"):
        return None
    number, is_keyframe = slot
    pk = stream_pk(parts[0], unquote(parts[1]))
    return pk, keyframe_sk(number) if is_keyframe else version_sk(number)


def _names(item: Item | None, key: str) -> bool:
    if item is None:
        return False
    blob = item.get(records.STATE)
    parsed = parse_pointer(blob) if isinstance(blob, bytes) else None
    return parsed is not None and parsed[0] == key
