"""Where wrapped data keys live: a table of their own (a DynamoDB table, a SQLite file, memory),
apart from the events, so that no backup of the events holds a way to read them once a key is
deleted. One item per subject; the store never updates one, only puts it (first writer wins)
and deletes it (shredding)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from eventstore.backends.base import Backend, Condition, ConditionFailed, Delete, Item, Put
from eventstore.errors import BackendError

_PK = "pk"
_SK = "sk"
_SLOT = "key"
_WRAPPED = "w"
_PROVIDER = "by"


def _key(subject: str) -> tuple[str, str]:
    return (f"subject#{subject}", _SLOT)


class KeyStore:
    """Wrapped data keys by subject, on ``backend`` (which nothing else uses)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        #: The key store's table on DynamoDB (keys are bound to it), else empty.
        table = getattr(backend, "table", None)
        self.scope = table if isinstance(table, str) else ""

    def subjects(self) -> Iterator[tuple[str, bytes, str]]:
        """Every subject with its wrapped key and the provider that wrapped it, page by page."""
        start: Item | None = None
        while True:
            page = self.backend.scan(start=start)
            for item in page.items:
                pk = str(item.get(_PK, ""))
                if pk.startswith("subject#") and item.get(_SK) == _SLOT:
                    yield (pk[len("subject#") :], *_parse(item))
            if page.last_key is None:
                return
            start = page.last_key

    def get(self, subject: str) -> tuple[bytes, str] | None:
        """The wrapped key of ``subject`` and the provider that wrapped it, or ``None``."""
        item = self.backend.get([_key(subject)], consistent=True)[0]
        return None if item is None else _parse(item)

    def claim(self, subject: str, wrapped: bytes, provider: str) -> Put:
        """The write that makes ``wrapped`` the key of ``subject`` unless it already has one,
        for a batch of another backend that joins this one (``into``): its condition fails,
        with the key the subject has (:meth:`parse`), when another writer got there first."""
        pk, sk = _key(subject)
        item: Item = {_PK: pk, _SK: sk, _WRAPPED: wrapped, _PROVIDER: provider}
        return Put(item, condition=Condition(exists=False), into=self.backend)

    def add(self, subject: str, wrapped: bytes, provider: str) -> tuple[bytes, str]:
        """Keep ``wrapped`` as the key of ``subject`` unless it already has one; return the key
        the subject has now (another writer's, if it got there first)."""
        put = self.claim(subject, wrapped, provider)
        try:
            self.backend.write([Put(put.item, put.condition)])
        except ConditionFailed as e:
            if e.item is None:
                raise
            return _parse(e.item)
        return wrapped, provider

    @staticmethod
    def parse(item: Mapping[str, object]) -> tuple[bytes, str]:
        """The wrapped key and provider name of a key item (as a failed :meth:`claim` returns
        it); :class:`BackendError` if it is damaged."""
        return _parse(item)

    def replace(self, subject: str, old: bytes, wrapped: bytes, provider: str) -> bool:
        """Put a re-wrapped key in place of ``old`` (a rotation); ``False`` if the subject's key
        is no longer ``old`` (shredded or rotated meanwhile)."""
        pk, sk = _key(subject)
        item: Item = {_PK: pk, _SK: sk, _WRAPPED: wrapped, _PROVIDER: provider}
        try:
            self.backend.write([Put(item, condition=Condition(equals={_WRAPPED: old}))])
        except ConditionFailed:
            return False
        return True

    def delete(self, subject: str) -> None:
        self.backend.write([Delete(_key(subject))])


def _parse(item: Mapping[str, object]) -> tuple[bytes, str]:
    wrapped, provider = item.get(_WRAPPED), item.get(_PROVIDER)
    if not isinstance(wrapped, bytes) or not isinstance(provider, str):
        raise BackendError(f"key store item {item.get(_PK)!r} is damaged")
    return wrapped, provider
