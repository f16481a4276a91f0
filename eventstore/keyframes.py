"""Keyframe JSON recently written or read, so an append can store a delta without a read."""

from __future__ import annotations

import threading
from collections import OrderedDict


class KeyframeCache:
    """Keyframe states by stream and keyframe number, bounded by total bytes; least recently used
    entries go first. One entry per stream: only the newest group's keyframe takes new deltas."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._used = 0
        # pk -> (keyframe number, its JSON, its stored bytes if known, its id if known)
        self._entries: OrderedDict[str, tuple[int, bytes, bytes | None, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, pk: str, base: int) -> bytes | None:
        found = self.get_with_id(pk, base)
        return None if found is None else found[0]

    def get_with_id(self, pk: str, base: int) -> tuple[bytes, str | None] | None:
        """The JSON of keyframe ``base`` and its id (``None`` if not known)."""
        with self._lock:
            entry = self._entries.get(pk)
            if entry is None or entry[0] != base:
                return None
            self._entries.move_to_end(pk)
            return entry[1], entry[3]

    def clear(self) -> None:
        """Forget every keyframe (a subject's key was shredded: its states must not stay here)."""
        with self._lock:
            self._entries.clear()
            self._used = 0

    def drop(self, pk: str) -> None:
        """Forget the stream's keyframe (a commit learnt it is not the stream's any more)."""
        with self._lock:
            old = self._entries.pop(pk, None)
            if old is not None:
                self._used -= len(old[1]) + len(old[2] or b"")

    def decoded(self, pk: str, base: int, stored: bytes) -> bytes | None:
        """The JSON of keyframe ``base`` if the cached copy was decoded from exactly ``stored``
        (the keyframe item's bytes just read): a reader then skips decoding it again, and a
        stream erased and made again under the same id never gets the old one's JSON."""
        with self._lock:
            entry = self._entries.get(pk)
            if entry is None or entry[0] != base or entry[2] != stored:
                return None
            self._entries.move_to_end(pk)
            return entry[1]

    def put(
        self,
        pk: str,
        base: int,
        data: bytes,
        stored: bytes | None = None,
        keyframe_id: str | None = None,
    ) -> None:
        size = len(data) + len(stored or b"")
        if size > self._budget:
            return
        with self._lock:
            old = self._entries.get(pk)
            if old is not None and old[0] > base:
                return  # a newer group's keyframe is more useful to the next append
            if old is not None:
                del self._entries[pk]
                self._used -= len(old[1]) + len(old[2] or b"")
            self._entries[pk] = (base, data, stored, keyframe_id)
            self._used += size
            while self._used > self._budget:
                _, (_, dropped, blob, _) = self._entries.popitem(last=False)
                self._used -= len(dropped) + len(blob or b"")
