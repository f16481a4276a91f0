"""eventstore for asyncio: ``async with eventstore.aio.open(url) as store:``.

The same store as :func:`eventstore.open` (the same URLs, options, operations, results and
errors), with operations as coroutines and lazy reads as async iterators, for FastAPI,
aiohttp, async Lambda handlers and workers. DynamoDB goes through aiobotocore, SQLite through a
worker thread per store, memory directly. Needs the ``eventstore[aio]`` extra."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from eventstore import bridge
from eventstore.aio.iteration import AsyncIteration, AsyncSubscription
from eventstore.aio.repository import AsyncRepository
from eventstore.aio.store import AsyncEventStore
from eventstore.aio.threaded import ThreadedBackend
from eventstore.backends.base import Backend
from eventstore.blobs.base import BlobStore
from eventstore.blobs.offload import DEFAULT_OFFLOAD_BYTES
from eventstore.codec import DEFAULT_MAX_SIZE
from eventstore.errors import InvalidInput
from eventstore.indexing import IndexProjection
from eventstore.store import EventStore
from eventstore.urls import backend_from_url, key_store_url

__all__ = ["AsyncEventStore", "AsyncIteration", "AsyncRepository", "AsyncSubscription", "open"]


def async_backend(url: str, **options: Any) -> Backend:
    """The backend a URL names (see :func:`eventstore.urls.backend_from_url`), for the async
    store: aiobotocore for ``dynamodb://`` (``session=`` an aiobotocore session), the SQLite
    backend on a worker thread for ``sqlite://``, the in-memory one as it is."""
    if not isinstance(url, str):
        raise InvalidInput(f"store URL must be a str, got {type(url).__name__}")
    scheme = urlsplit(url).scheme
    if scheme == "dynamodb":
        from eventstore.aio.dynamodb import AsyncDynamoDBBackend

        return AsyncDynamoDBBackend.from_url(url, **options)
    backend = backend_from_url(url, **options)
    # An in-memory table answers at once: a worker thread would only add a hop.
    return backend if scheme == "memory" else ThreadedBackend(backend)


def open(
    url: str,
    *,
    projections: Iterable[IndexProjection] = (),
    cursor_secret: bytes | None = None,
    index_on_read: bool = True,
    blobs: BlobStore | str | None = None,
    offload_bytes: int = DEFAULT_OFFLOAD_BYTES,
    max_state_bytes: int = DEFAULT_MAX_SIZE,
    keys: Any = None,
    key_store: str | None = None,
    **options: Any,
) -> AsyncEventStore:
    """Open an async store: :func:`eventstore.open`'s URLs and options. Use it as
    ``async with eventstore.aio.open(url) as store:``, or call ``await store.close()``.
    DynamoDB and S3 clients are made on the first request, on the event loop that sends it
    (an ``s3://`` ``blobs`` URL gets an aiobotocore client)."""
    bridge.require_greenlet()
    if isinstance(blobs, str):
        from eventstore.aio.s3 import AsyncS3Blobs

        blobs = AsyncS3Blobs.from_url(blobs)
    chosen = key_store_url(url, keys, key_store)
    keys_backend = None if chosen is None else async_backend(chosen)
    engine = EventStore(
        async_backend(url, **options),
        projections=projections,
        cursor_secret=cursor_secret,
        owns_backend=True,
        index_on_read=index_on_read,
        blobs=blobs,
        offload_bytes=offload_bytes,
        max_state_bytes=max_state_bytes,
        keys=keys,
        key_store=keys_backend,
    )
    return AsyncEventStore(engine)
