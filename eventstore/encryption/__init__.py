"""Encrypted states and crypto-shredding: resource types with ``encrypted = True`` are stored
sealed with their subject's data key; ``store.shred(subject)`` deletes the key, and every copy
of those states anywhere (backups, exports, copied files, S3 objects) can no longer be read.

``eventstore.open(url, keys=LocalKeyProvider(master_key))``; the wrapped keys live in a key
store apart from the events (``key_store=`` a URL; by default ``<table>-keys`` on DynamoDB,
``<path>.keys`` beside a SQLite file, memory for ``memory://``). See docs/encryption.md.
"""

from eventstore.encryption.providers import KEY_BYTES, KeyProvider, LocalKeyProvider

__all__ = ["KEY_BYTES", "KeyProvider", "LocalKeyProvider", "default_key_store"]


def default_key_store(url: str) -> str:
    """The key store URL that goes with a store URL: ``sqlite:///PATH.keys`` for
    ``sqlite:///PATH``, ``memory://`` for ``memory://``, ``dynamodb://TABLE-keys?...`` (same
    options) for ``dynamodb://TABLE?...``."""
    from urllib.parse import urlsplit, urlunsplit

    from eventstore.errors import InvalidInput

    parts = urlsplit(url)
    if parts.scheme == "memory":
        return "memory://"
    if parts.scheme == "sqlite":
        path, _, query = url[len("sqlite:///") :].partition("?")
        return f"sqlite:///{path}.keys" + (f"?{query}" if query else "")
    if parts.scheme == "dynamodb":
        table = parts.netloc or parts.path.lstrip("/")
        return urlunsplit(("dynamodb", f"{table}-keys", "", parts.query, ""))
    raise InvalidInput(f"no default key store for {url!r}: give key_store=")
