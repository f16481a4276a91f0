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
    MAX_WRITE_ACTIONS,
    Backend,
    ConditionFailed,
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
from eventstore.errors import CommitTooLarge, CorruptRecord
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

    def cached(self, subject: str) -> bytes | None:
        """The subject's key if this process holds it (and has not held it too long)."""
        with self._lock:
            found = self._cache.get(subject)
            if found is None:
                return None
            if found[1] < self._clock():
                del self._cache[subject]
                return None
            self._cache.move_to_end(subject)
            return found[0]

    def keep(self, subject: str, key: bytes) -> bytes:
        """Hold ``key`` as the subject's (it is in the key store, or now goes there)."""
        with self._lock:
            self._cache[subject] = (key, self._clock() + self._seconds)
            self._cache.move_to_end(subject)
            while len(self._cache) > self._limit:
                self._cache.popitem(last=False)
        return key

    def new(self, subject: str) -> tuple[bytes, bytes]:
        """A new data key for ``subject`` and its wrapped form (not kept anywhere yet)."""
        return self.provider.new_key(self.context(subject))

    def adopt(self, subject: str, wrapped: bytes, by: str) -> bytes:
        """The key ``wrapped`` (the key store's, wrapped by provider ``by``), unwrapped and kept."""
        return self.keep(subject, self.provider.unwrap(wrapped, self.context(subject), by))

    def stored(self, subject: str) -> bytes | None:
        """The subject's key from the key store (kept); ``None`` when it has none."""
        found = self.store.get(subject)
        return None if found is None else self.adopt(subject, *found)

    def settle(self, subject: str, key: bytes, wrapped: bytes) -> bytes:
        """Put a key made by :meth:`new` in the key store unless the subject has one by now;
        the subject's key either way."""
        found = self.store.add(subject, wrapped, self.provider.name)
        if found[0] == wrapped:
            return self.keep(subject, key)
        return self.adopt(subject, *found)

    def for_reading(self, subject: str) -> bytes | None:
        """The subject's key; ``None`` when it has none (shredded, or never written)."""
        key = self.cached(subject)
        return key if key is not None else self.stored(subject)

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
        self._joins: bool | None = None  # whether key items can ride in the inner's writes

    # --- writes ---

    def write(
        self,
        writes: Sequence[Write],
        *,
        token: str | None = None,
        conflicts: Literal["retry", "raise"] = "retry",
    ) -> Mapping[int, int]:
        if self._joins is None:
            self._joins = self.inner.joins(self.keys.store.backend)
        if not self._joins:
            return self.inner.write(self._sealed(writes, None), token=token, conflicts=conflicts)
        # New keys ride in the batch: one request, and never a version without its key.
        made: dict[str, tuple[bytes, bytes]] = {}
        sealed = self._sealed(writes, made)
        if not made:
            return self.inner.write(sealed, token=token, conflicts=conflicts)
        provider, subjects = self.keys.provider.name, list(made)
        claims = [self.keys.store.claim(s, made[s][1], provider) for s in subjects]
        if len(sealed) + len(claims) > MAX_WRITE_ACTIONS:
            return self._keys_first(writes, made, token, conflicts)
        try:
            done = self.inner.write([*sealed, *claims], token=token, conflicts=conflicts)
        except CommitTooLarge:
            # The key items were what passed the limit (the layers below know it): put the keys
            # first, as on a backend the key store cannot join.
            return self._keys_first(writes, made, token, conflicts)
        except ConditionFailed as e:
            # Another writer made some subject's key first: use it from now on.
            lost = {i: item for i, item in e.failures.items() if i >= len(sealed)}
            for index, item in lost.items():
                if item is None:
                    raise
                self.keys.adopt(subjects[index - len(sealed)], *KeyStore.parse(item))
            mine = {i: item for i, item in e.failures.items() if i < len(sealed)}
            if mine:
                first = min(mine)
                raise ConditionFailed(first, mine[first], mine) from e
            # Only keys lost: the batch again, sealed with the winners' keys (kept now), as a
            # new request (a token names one request's content).
            return self.inner.write(self._sealed(writes, None), conflicts=conflicts)
        for subject, (key, _) in made.items():
            self.keys.keep(subject, key)
        return done

    def _keys_first(
        self,
        writes: Sequence[Write],
        made: dict[str, tuple[bytes, bytes]],
        token: str | None,
        conflicts: Literal["retry", "raise"],
    ) -> Mapping[int, int]:
        for subject, (key, wrapped) in made.items():
            self.keys.settle(subject, key, wrapped)
        return self.inner.write(self._sealed(writes, None), token=token, conflicts=conflicts)

    def _sealed(
        self, writes: Sequence[Write], made: dict[str, tuple[bytes, bytes]] | None
    ) -> list[Write]:
        """``writes`` with states sealed. ``made`` (where new keys can ride in the batch):
        a subject without a key gets a new one, added there, instead of one put first."""
        return [self._seal(w, made) for w in writes]

    def _seal(self, w: Write, made: dict[str, tuple[bytes, bytes]] | None) -> Write:
        if not isinstance(w, Put):
            return w
        subject, blob = w.item.get(records.SUBJECT), w.item.get(records.STATE)
        if not isinstance(subject, str) or not isinstance(blob, bytes):
            return w  # not a state to seal: a head, a feed entry, a key item
        pk, sk = w.key
        key = self._key_for(subject, records.sort_position(w.item) in _FIRST, pk, made)
        data = seal(key, blob, associated(pk, sk, subject))
        return Put({**w.item, records.STATE: data}, w.condition, w.position, w.into)

    def _key_for(
        self, subject: str, first: bool, pk: str, made: dict[str, tuple[bytes, bytes]] | None
    ) -> bytes:
        """The key to seal the state of ``pk`` (slot ``first`` of its stream or not) with:
        held, else the key store's, else new. A new key goes into ``made`` when key items ride
        in the batch, else into the key store at once.

        A first version tries a new key without asking the key store first where a refused
        key costs little: a put of its own (one request, as the look-up would be), or, in the
        batch, only for a stream that is its own subject (it rarely has a key; a shared subject
        usually has, and a refused claim would cancel the whole batch)."""
        if made is not None and subject in made:
            return made[subject][0]
        key = self.keys.cached(subject)
        if key is not None:
            return key
        if not first or (made is not None and subject != pk):
            key = self.keys.stored(subject)
            if key is not None:
                return key
        key, wrapped = self.keys.new(subject)
        if made is None:
            return self.keys.settle(subject, key, wrapped)
        made[subject] = (key, wrapped)
        return key

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
