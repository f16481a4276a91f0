"""Encryption: the step of the state pipeline after compression and before offloading. A backend
wrapper: the state of every version or keyframe item that names a subject (``records.SUBJECT``,
set by the writer for encrypted types) is sealed with that subject's data key on its way down,
and opened on its way up; the store and ``records`` never see ciphertext. A state whose
subject's key was shredded comes up as a stand-in that ``records`` reads as ``Shredded``."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from eventstore import codec, records
from eventstore.backends.base import (
    Backend,
    Item,
    Put,
    TableOptions,
    Write,
)
from eventstore.backends.layered import Layered
from eventstore.encryption.cipher import (
    Unsealable,
    associated,
    forget_ciphers,
    is_sealed,
    key_id,
    seal,
    sealed_key_id,
    unseal,
)
from eventstore.encryption.keystore import KeyStore
from eventstore.encryption.providers import KeyProvider
from eventstore.errors import CorruptRecord
from eventstore.keys import split_pk

#: Unwrapped keys a process keeps, and for how long (seconds): a warm writer unwraps (calls
#: KMS) once per subject per period, not per append. Another process that shreds a subject is
#: seen here once the period is over.
DEFAULT_CACHE_KEYS = 10_000
DEFAULT_CACHE_SECONDS = 300.0


class Keys:
    """Data keys by subject: kept in memory for a while, else unwrapped from the key store,
    else made (the first writer of a subject wins; the others use its key)."""

    def __init__(
        self,
        provider: KeyProvider,
        store: KeyStore,
        *,
        cache_keys: int = DEFAULT_CACHE_KEYS,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.store = store
        self._cache: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._limit = cache_keys
        self._seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()

    def context(self, subject: str) -> Mapping[str, str]:
        """What a data key is bound to: its subject, and the key store's table when it has one
        (KMS checks both, and CloudTrail names them)."""
        scope = self.store.scope
        return {"subject": subject, **({"keys": scope} if scope else {})}

    def _cached(self, subject: str) -> bytes | None:
        with self._lock:
            found = self._cache.get(subject)
            if found is None:
                return None
            if found[1] < self._clock():
                del self._cache[subject]
                return None
            self._cache.move_to_end(subject)
            return found[0]

    def _keep(self, subject: str, key: bytes) -> bytes:
        with self._lock:
            self._cache[subject] = (key, self._clock() + self._seconds)
            self._cache.move_to_end(subject)
            while len(self._cache) > self._limit:
                self._cache.popitem(last=False)
        return key

    def for_writing(self, subject: str, *, likely_new: bool = False) -> bytes:
        """The subject's key, made if it has none. ``likely_new`` (the first version of a
        stream): try to put a new key at once rather than read first, one request fewer when
        the stream is its own subject."""
        key = self._cached(subject)
        if key is not None:
            return key
        found = None if likely_new else self.store.get(subject)
        if found is None:
            key, wrapped = self.provider.new_key(self.context(subject))
            found = self.store.add(subject, wrapped, self.provider.name)
            if found[0] == wrapped:
                return self._keep(subject, key)
        return self._keep(subject, self.provider.unwrap(found[0], self.context(subject), found[1]))

    def for_reading(self, subject: str) -> bytes | None:
        """The subject's key; ``None`` when it has none (shredded, or never written)."""
        key = self._cached(subject)
        if key is not None:
            return key
        found = self.store.get(subject)
        if found is None:
            return None
        return self._keep(subject, self.provider.unwrap(found[0], self.context(subject), found[1]))

    def shred(self, subject: str) -> None:
        """Delete the subject's key from the key store and from this process."""
        self.store.delete(subject)
        with self._lock:
            self._cache.pop(subject, None)
        forget_ciphers()


class Encrypting(Layered):
    """``inner`` with the states of encrypted types sealed by their subject's key."""

    def __init__(self, inner: Backend, keys: Keys) -> None:
        super().__init__(inner)
        self.keys = keys
        self.encrypts = True

    # --- writes ---

    def write(
        self,
        writes: Sequence[Write],
        *,
        token: str | None = None,
        conflicts: Literal["retry", "raise"] = "retry",
    ) -> Mapping[int, int]:
        return self.inner.write([self._sealed(w) for w in writes], token=token, conflicts=conflicts)

    def _sealed(self, w: Write) -> Write:
        if not isinstance(w, Put):
            return w
        subject, blob = w.item.get(records.SUBJECT), w.item.get(records.STATE)
        if not isinstance(subject, str) or not isinstance(blob, bytes):
            return w
        pk, sk = w.key
        position = records.sort_position(w.item)
        key = self.keys.for_writing(subject, likely_new=position in _FIRST)
        sealed = seal(key, blob, associated(pk, sk, subject))
        return Put({**w.item, records.STATE: sealed}, w.condition, w.position)

    # --- reads ---

    def up(self, item: Item) -> Item:
        subject, blob = item.get(records.SUBJECT), item.get(records.STATE)
        if not isinstance(subject, str) or not isinstance(blob, bytes) or not is_sealed(blob):
            return item
        key = self.keys.for_reading(subject)
        if key is None:
            return _shredded(item, subject)
        pk, sk = str(item[records.PK]), str(item[records.SK])
        try:
            data = unseal(key, blob, associated(pk, sk, subject))
        except Unsealable as e:
            if sealed_key_id(blob) != key_id(key):
                # Sealed with a key the subject no longer has (shredded, then made again).
                return _shredded(item, subject)
            position = records.sort_position(item)
            raise CorruptRecord(
                *split_pk(pk),
                None if position is None else position[0],
                f"its state does not open with its subject's key ({e}: damaged, or moved here "
                "from another item)",
            ) from e
        return {**item, records.STATE: data}

    def create_table(self, options: TableOptions | None = None) -> None:
        super().create_table(options)
        # The key store gets no options: no point-in-time recovery, no backups (a backup of
        # the keys would bring shredded subjects back); see docs/encryption.md.
        self.keys.store.backend.create_table(None)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.keys.store.backend.close()

    def shred(self, subject: str) -> None:
        self.keys.shred(subject)


def _shredded(item: Item, subject: str) -> Item:
    """``item`` with what ``records`` reads as Shredded in place of its state."""
    return {**item, records.STATE: bytes([codec.SHREDDED]) + subject.encode("utf-8")}


# The slots of a stream's first version: its version item and its group's keyframe.
_FIRST = ((1, False), (1, True))
