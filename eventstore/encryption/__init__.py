"""Encrypted states and crypto-shredding: resource types with ``encrypted = True`` are stored
sealed with their subject's data key; ``store.shred(subject)`` deletes the key, and every copy
of those states anywhere (backups, exports, copied files, S3 objects) can no longer be read.

``eventstore.open(url, keys=LocalKeyProvider(master_key))``; the wrapped keys live in a key
store apart from the events (``key_store=`` a URL; by default ``<table>-keys`` on DynamoDB,
``<path>.keys`` beside a SQLite file, memory for ``memory://``). See docs/encryption.md.
"""

import base64 as _base64
import binascii as _binascii
import os as _os
from collections.abc import Mapping as _Mapping

from eventstore.encryption.providers import (
    KEY_BYTES,
    KeyProvider,
    KmsKeyProvider,
    LocalKeyProvider,
)
from eventstore.encryption.rotation import Rotation

__all__ = [
    "KEY_BYTES",
    "KeyProvider",
    "KmsKeyProvider",
    "LocalKeyProvider",
    "Rotation",
    "default_key_store",
    "provider_from_env",
]


def _master_key(text: str, name: str) -> bytes:
    from eventstore.errors import InvalidInput

    text = text.strip()
    try:
        raw = (
            bytes.fromhex(text)
            if len(text) == 2 * KEY_BYTES
            else _base64.b64decode(text, validate=True)
        )
    except (ValueError, _binascii.Error) as e:
        raise InvalidInput(f"{name} must be {KEY_BYTES} bytes in hex or base64") from e
    if len(raw) != KEY_BYTES:
        raise InvalidInput(f"{name} must be {KEY_BYTES} bytes in hex or base64, got {len(raw)}")
    return raw


def provider_from_env(environ: _Mapping[str, str] | None = None) -> KeyProvider | None:
    """The key provider the environment names (what the command line uses):
    ``EVENTSTORE_MASTER_KEY`` (32 bytes, hex or base64; ``EVENTSTORE_PREVIOUS_MASTER_KEYS``,
    comma-separated, for a rotation) gives a :class:`LocalKeyProvider`,
    ``EVENTSTORE_KMS_KEY_ID`` a :class:`KmsKeyProvider`; ``None`` when neither is set."""
    env = _os.environ if environ is None else environ
    master = env.get("EVENTSTORE_MASTER_KEY")
    if master:
        previous = [
            _master_key(one, "EVENTSTORE_PREVIOUS_MASTER_KEYS")
            for one in env.get("EVENTSTORE_PREVIOUS_MASTER_KEYS", "").split(",")
            if one.strip()
        ]
        return LocalKeyProvider(_master_key(master, "EVENTSTORE_MASTER_KEY"), previous=previous)
    kms = env.get("EVENTSTORE_KMS_KEY_ID")
    return KmsKeyProvider(kms) if kms else None


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
