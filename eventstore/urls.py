"""Opening a store from a URL."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from eventstore.backends.base import Backend
from eventstore.blobs.base import BlobStore
from eventstore.blobs.offload import DEFAULT_OFFLOAD_BYTES
from eventstore.codec import DEFAULT_MAX_SIZE
from eventstore.errors import InvalidInput
from eventstore.indexing import IndexProjection
from eventstore.store import EventStore

SCHEMES = ("memory", "sqlite", "dynamodb")


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///PATH[?options]`` URL; ``""`` for any other URL."""
    return url[len("sqlite:///") :].split("?", 1)[0] if url.startswith("sqlite:///") else ""


def backend_from_url(url: str, **options: Any) -> Backend:
    """The backend a URL names:

    - ``memory://``: SQLite in memory (lost when closed);
    - ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``, optional
      ``?synchronous=normal|full&timeout=30``;
    - ``dynamodb://TABLE?region=R&endpoint_url=URL``.

    ``options`` go to the backend's constructor (for DynamoDB: ``client=`` or ``session=``)."""
    if not isinstance(url, str):
        raise InvalidInput(f"store URL must be a str, got {type(url).__name__}")
    parts = urlsplit(url)
    params = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    if parts.scheme == "memory":
        from eventstore.backends.sqlite import SQLiteBackend

        if parts.netloc or parts.path or params:
            raise InvalidInput(f"{url!r}: memory:// takes no path or options")
        return SQLiteBackend(":memory:", **options)
    if parts.scheme == "sqlite":
        from eventstore.backends.sqlite import SQLiteBackend

        path = sqlite_path(url)
        if not path:
            raise InvalidInput(f"{url!r}: write sqlite:///relative.db or sqlite:////absolute.db")
        for name in params:
            if name not in ("synchronous", "timeout"):
                raise InvalidInput(f"{url!r}: unknown SQLite option {name!r}")
        if "synchronous" in params:
            options.setdefault("synchronous", params["synchronous"])
        if "timeout" in params:
            try:
                options.setdefault("timeout", float(params["timeout"]))
            except ValueError as e:
                raise InvalidInput(f"{url!r}: timeout must be a number of seconds") from e
        return SQLiteBackend(path, **options)
    if parts.scheme == "dynamodb":
        from eventstore.backends.dynamodb import DynamoDBBackend

        return DynamoDBBackend.from_url(url, **options)
    raise InvalidInput(f"{url!r}: unknown store URL scheme; use one of {', '.join(SCHEMES)}")


def key_store_url(url: str, keys: Any, key_store: str | None) -> str | None:
    """The URL of the key store a store on ``url`` opens: ``key_store``, else the default beside
    ``url`` (:func:`eventstore.encryption.default_key_store`); ``None`` without ``keys``, where
    a ``key_store`` alone is :class:`InvalidInput`."""
    if keys is None:
        if key_store is not None:
            raise InvalidInput("key_store needs a key provider (keys=)")
        return None
    from eventstore.encryption import default_key_store

    return key_store or default_key_store(url)


def open_store(
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
) -> EventStore:
    """Open a store. See :func:`backend_from_url` for the URLs; ``projections``,
    ``cursor_secret``, ``index_on_read``, ``blobs`` (an ``s3://bucket/prefix`` URL or a
    :class:`~eventstore.blobs.BlobStore`), ``offload_bytes``, ``max_state_bytes``, ``keys`` (a
    :class:`~eventstore.encryption.KeyProvider`) and ``key_store`` (a store URL; by default
    derived from ``url``: see :func:`eventstore.encryption.default_key_store`) go to
    :class:`EventStore`, other options to the backend."""
    chosen = key_store_url(url, keys, key_store)
    keys_backend = None if chosen is None else backend_from_url(chosen)
    backend = backend_from_url(url, **options)
    try:
        return EventStore(
            backend,
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
    except BaseException:
        backend.close()
        if keys_backend is not None:
            keys_backend.close()
        raise
