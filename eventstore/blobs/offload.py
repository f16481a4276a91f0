"""Offloading: the last step of the state pipeline. A version or keyframe item larger than
``offload_bytes`` has its state bytes written to the blob store **first**; the item the commit
then writes keeps a small pointer in their place. Reads put the bytes back before anything
above sees the item. The store and ``records`` never know which items were offloaded.

Each object belongs to one item write: its key names the stream, the item's slot (version or
keyframe number), the item's own id (a new ULID per attempt) and the SHA-256 of the bytes:
``<prefix><type>/<id>/<slot>/<item id>-<sha256>``. No commit ever relies on an object another
commit uploaded, so whoever deletes an object that no committed item names (a trim, an erasure,
the sweep of :mod:`eventstore.blobs.collect`) cannot take it from under a later commit. The
objects of a stream are:

- removed when a trim deletes a keyframe: every object of the group's slots and below goes (the
  versions of a group are trimmed before its keyframe);
- all removed by an erasure (:meth:`Offloading.forget_stream`), every version of them, while the
  stream's head still refuses appends;
- left behind by commits that failed after their upload, which the sweep collects once they are
  older than its grace period.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import quote

from eventstore import codec, records
from eventstore.backends.base import (
    Backend,
    Delete,
    Item,
    Put,
    TableOptions,
    Update,
    Write,
)
from eventstore.backends.layered import Layered
from eventstore.backends.sizes import batch_size, item_size
from eventstore.blobs.base import BlobStore, ObjectMissing
from eventstore.errors import CommitTooLarge, CorruptRecord, InvalidInput, ItemTooLarge
from eventstore.keys import HEAD_SK, KEYFRAME_INTERVAL, split_pk

_log = logging.getLogger("eventstore")

#: Items larger than this have their state offloaded (``offload_bytes``). Chosen in
#: docs/blobs.md from bench/blobs.py: above it, a keyframe costs more in DynamoDB write units
#: (doubled in a transaction) than one S3 PUT and a pointer, many times over.
DEFAULT_OFFLOAD_BYTES = 64 * 1024
#: Offloaded bytes a process keeps after reading them (objects never change, so a copy is
#: never stale), per store.
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024

#: First byte of a stored state that is a pointer (registered with the codec's bytes).
POINTER = codec.OFFLOADED
_FORMAT = 1
_DIGEST = 32
_HEADER = 2 + _DIGEST + 8
# Resource ids whose escaped form is longer than this are named by their digest in object keys
# (an S3 key is at most 1,024 bytes).
_LONGEST_SEGMENT = 400


def pointer(key: str, digest: bytes, size: int) -> bytes:
    """The bytes an item keeps in place of ``size`` offloaded bytes."""
    return bytes([POINTER, _FORMAT]) + digest + size.to_bytes(8, "big") + key.encode("utf-8")


def parse_pointer(blob: bytes) -> tuple[str, bytes, int] | None:
    """``(key, sha256, size)`` of a pointer; ``None`` for state bytes that are not one."""
    if len(blob) <= _HEADER or blob[0] != POINTER or blob[1] != _FORMAT:
        return None
    digest = blob[2 : 2 + _DIGEST]
    size = int.from_bytes(blob[2 + _DIGEST : _HEADER], "big")
    return blob[_HEADER:].decode("utf-8"), digest, size


def stream_prefix(pk: str) -> str:
    """The key prefix of every object of stream ``pk`` (ids escaped: ``/`` in an id cannot make
    one stream's prefix cover another's)."""
    type_name, resource_id = split_pk(pk)
    segment = quote(resource_id, safe="").replace("~", "%7E")
    if len(segment) > _LONGEST_SEGMENT:
        segment = "~" + hashlib.sha256(resource_id.encode("utf-8")).hexdigest()
    return f"{type_name}/{segment}/"


def _slot(number: int, is_keyframe: bool) -> str:
    return f"{'k' if is_keyframe else 'v'}{number:010d}"


def object_key(pk: str, sk: str, item_id: str, digest: bytes) -> str:
    position = records.sort_position({records.SK: sk})
    assert position is not None
    return f"{stream_prefix(pk)}{_slot(*position)}/{item_id}-{digest.hex()}"


def slot_of(key: str) -> tuple[int, bool] | None:
    """``(number, is_keyframe)`` of an object key made by :func:`object_key`."""
    parts = key.split("/")
    if len(parts) < 4 or len(parts[-2]) != 11 or parts[-2][0] not in "kv":
        return None
    digits = parts[-2][1:]
    return (int(digits), parts[-2][0] == "k") if digits.isdigit() else None


class _Bytes:
    """Offloaded bytes read recently, by object key, within a byte budget (least recent out)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
            return found

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.budget:
            return
        with self._lock:
            if key in self._data:
                return
            self._data[key] = data
            self.used += len(data)
            while self.used > self.budget:
                _, dropped = self._data.popitem(last=False)
                self.used -= len(dropped)


class Offloading(Layered):
    """``inner`` with the states of large items kept in ``blobs``.

    Takes the inner backend's item and commit limits on itself: an item still too large once
    its state is a pointer (large metadata) is :class:`ItemTooLarge`, a commit whose pointers and
    other items pass the limit :class:`CommitTooLarge`, both before anything is uploaded."""

    def __init__(
        self,
        inner: Backend,
        blobs: BlobStore,
        *,
        offload_bytes: int = DEFAULT_OFFLOAD_BYTES,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        if isinstance(offload_bytes, bool) or not isinstance(offload_bytes, int):
            raise InvalidInput("offload_bytes must be an int")
        largest = inner.max_item_bytes
        # A pointer item (keys, ids, pointer) stays under 2 KB; leave room for it.
        if offload_bytes < 1024 or (largest is not None and offload_bytes > largest - 2048):
            bound = "" if largest is None else f" and {largest - 2048}"
            raise InvalidInput(f"offload_bytes must be between 1024{bound}, got {offload_bytes}")
        super().__init__(inner)
        self.blobs = blobs
        self.offload_bytes = offload_bytes
        self._inner_item_bytes = largest
        self._inner_write_bytes = inner.max_write_bytes
        self._cache = _Bytes(cache_bytes)
        # States of any size pass (up to the store's max_state_bytes): the limits that still
        # hold are checked here, on the items as they will be sent.
        self.max_item_bytes = None
        self.max_write_bytes = None

    # --- writes ---

    def write(
        self,
        writes: Sequence[Write],
        *,
        token: str | None = None,
        conflicts: Literal["retry", "raise"] = "retry",
    ) -> Mapping[int, int]:
        uploads: list[tuple[str, bytes, bytes]] = []
        sent = [self._offloaded(w, uploads) for w in writes]
        self._check_limits(sent)
        for key, data, digest in uploads:
            self.blobs.put(key, data, digest)
        lasts = self.inner.write(sent, token=token, conflicts=conflicts)
        for key, data, _ in uploads:
            self._cache.put(key, data)
        self._drop_trimmed(writes)
        return lasts

    def _offloaded(self, w: Write, uploads: list[tuple[str, bytes, bytes]]) -> Write:
        if not isinstance(w, Put):
            return w
        item = w.item
        blob = item.get(records.STATE)
        if not isinstance(blob, bytes) or item_size(item) <= self.offload_bytes:
            return w
        sk = str(item[records.SK])
        position = records.sort_position(item)
        item_id = item.get(
            records.VERSION_ID if position and not position[1] else records.KEYFRAME_ID
        )
        if position is None or not isinstance(item_id, str):
            return w  # not a version or keyframe: the inner backend judges its size
        digest = hashlib.sha256(blob).digest()
        key = object_key(str(item[records.PK]), sk, item_id, digest)
        uploads.append((key, blob, digest))
        return Put(
            {**item, records.STATE: pointer(key, digest, len(blob))},
            w.condition,
            w.position,
            w.into,
        )

    def _check_limits(self, sent: Sequence[Write]) -> None:
        largest, total = self._inner_item_bytes, self._inner_write_bytes
        if largest is not None:
            for w in sent:
                if isinstance(w, Put):
                    size = item_size(w.item)
                    if size > largest:
                        raise ItemTooLarge(size, largest)
        if total is not None and largest is not None and len(sent) * largest > total:
            size = batch_size(sent)
            if size > total:
                raise CommitTooLarge("bytes", size, total)

    def _drop_trimmed(self, writes: Sequence[Write]) -> None:
        """After a trim deleted keyframes: the objects of their groups, and of every slot below,
        which no item names any more. A trim is known by its head write (it moves the stream's
        retention bound); an erasure's deletes have none, and it removes every object of the
        stream at its end (:meth:`forget_stream`)."""
        dropped: dict[str, int] = {}
        heads = {w.key[0] for w in writes if isinstance(w, Update) and w.key[1] == HEAD_SK}
        for w in writes:
            if isinstance(w, Delete) and w.key[0] in heads:
                position = records.sort_position({records.SK: w.key[1]})
                if position is not None and position[1]:
                    dropped[w.key[0]] = max(dropped.get(w.key[0], 0), position[0])
        for pk, base in dropped.items():
            try:
                found = [
                    b
                    for b in self.blobs.list(stream_prefix(pk))
                    if _below(slot_of(b.key), base + KEYFRAME_INTERVAL)
                ]
                if found:
                    self.blobs.delete(found)
            except Exception as e:  # the commit is done; the sweep takes what is left
                _log.warning("trimmed %s, but could not delete its objects: %s", pk, e)

    def forget_stream(self, pk: str) -> int:
        found = list(self.blobs.list(stream_prefix(pk)))
        return self.blobs.delete(found) if found else 0

    # --- reads ---

    def up(self, item: Item) -> Item | None:
        blob = item.get(records.STATE)
        if not isinstance(blob, bytes) or not blob or blob[0] != POINTER:
            return item
        parsed = parse_pointer(blob)
        if parsed is None:
            return item  # not a pointer this version writes: the codec reports it
        key, digest, size = parsed
        data = self._cache.get(key)
        if data is None:
            try:
                data = self.blobs.get(key)
            except ObjectMissing as e:
                if self._deleted_since(item, blob):
                    return None
                missing = f"its state's object {self.blobs.location}{key} is missing"
                raise _corrupt(item, missing) from e
            if len(data) != size or hashlib.sha256(data).digest() != digest:
                raise _corrupt(
                    item, f"its state's object {self.blobs.location}{key} does not match its hash"
                )
            self._cache.put(key, data)
        return {**item, records.STATE: data}

    def _deleted_since(self, item: Item, pointer: bytes) -> bool:
        """Whether ``item`` no longer holds ``pointer``: a trim or an erasure deleted it after it
        was read, and then its objects (they go after the commit), so the object missed is no
        damage. A strongly consistent read: the item's delete was committed before the object's."""
        key = (str(item[records.PK]), str(item[records.SK]))
        now = self.inner.get([key], consistent=True)[0]
        return now is None or now.get(records.STATE) != pointer

    def create_table(self, options: TableOptions | None = None) -> None:
        super().create_table(options)
        self.blobs.create()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.blobs.close()


def _below(slot: tuple[int, bool] | None, end: int) -> bool:
    """Whether an object's slot is a version before ``end`` or a keyframe of a group ending
    before it."""
    if slot is None:
        return False
    number, is_keyframe = slot
    return number + (KEYFRAME_INTERVAL if is_keyframe else 1) <= end


def _corrupt(item: Item, reason: str) -> CorruptRecord:
    type_name, resource_id = split_pk(str(item.get(records.PK, "")))
    position = records.sort_position(item) if records.SK in item else None
    return CorruptRecord(type_name, resource_id, None if position is None else position[0], reason)
