"""The contract of a blob store: immutable objects under string keys, where the store keeps the
bytes of states too large for an item (S3 on DynamoDB). The offloading layer
(:mod:`eventstore.blobs.offload`) is its only user; implementations stay short."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime


class ObjectMissing(LookupError):
    """No object under the key (the offloading layer reports it as ``CorruptRecord``)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"no object {key!r}")


@dataclass(frozen=True)
class BlobInfo:
    """One version of an object as a listing shows it."""

    key: str
    size: int
    #: When this version was written, by the blob store's clock (timezone-aware).
    modified: datetime
    #: The version's id where the bucket keeps versions (``"null"`` where it does not).
    version: str | None = None
    #: A delete marker of a versioned bucket (no bytes) rather than data.
    marker: bool = False


class BlobStore(abc.ABC):
    """Objects written once under keys that name them, read back whole, listed by prefix.

    Implementations must be safe to share between threads. Failures that are not the caller's
    fault raise :class:`~eventstore.errors.BackendError` subclasses (unreachable:
    ``BackendUnavailable``; no bucket: ``BucketNotFound``), after the implementation's retries."""

    #: Where the objects live, for messages (``s3://bucket/prefix``).
    location: str
    #: Prepended to every key the store is given (``""`` or ending with ``/``).
    prefix: str

    @abc.abstractmethod
    def put(self, key: str, data: bytes, sha256: bytes) -> bool:
        """Write ``data`` under ``key`` unless an object is already there (S3's
        ``If-None-Match: *``); ``sha256`` is the digest of ``data``, checked by the server so
        that a damaged upload is refused. Returns ``False`` when an object already existed (it
        is left as it was). When this returns, the object is durable and readable."""

    @abc.abstractmethod
    def touch(self, key: str, data: bytes, sha256: bytes) -> None:
        """Write ``data`` under ``key`` whether or not an object is there, so that its
        modification time is now (a writer whose upload has aged does this before relying on
        it, so that a sweep with a grace period cannot take it)."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes of the object under ``key``; :class:`ObjectMissing` if there is none."""

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[BlobInfo]:
        """Every version of every object whose key starts with ``prefix`` (delete markers of a
        versioned bucket included), in key order, fetched page by page as iterated."""

    @abc.abstractmethod
    def delete(self, found: Sequence[BlobInfo]) -> int:
        """Delete exactly the versions listed (as :meth:`list` gave them), so that nothing of
        them stays in a versioned bucket either; versions already gone are ignored. Returns how
        many were deleted."""

    @abc.abstractmethod
    def create(self) -> None:
        """Create the bucket if it does not exist (idempotent)."""

    @abc.abstractmethod
    def requests(self) -> int:
        """Requests sent so far (benchmarks and tests count them)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the client, if this store made it."""
