"""Key providers: make a subject's data key and wrap it, and unwrap it again. The wrapped form
is what the key store keeps; the plaintext key never leaves the process."""

from __future__ import annotations

import abc
import hashlib
import json
import os
from collections.abc import Mapping

from eventstore.errors import CorruptRecord, InvalidInput, WrongType

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError as e:  # pragma: no cover - the extra is part of the dev install
    raise ImportError(
        "encrypted resource types need the cryptography package: "
        "pip install 'eventstore[encryption]'"
    ) from e

#: Bytes of a data key (AES-256).
KEY_BYTES = 32
_NONCE = 12


class KeyProvider(abc.ABC):
    """Makes data keys and unwraps them. ``name`` identifies the wrapping key (stored beside each
    wrapped key, so a rotation knows which ones to re-wrap)."""

    name: str

    @abc.abstractmethod
    def new_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        """A new data key of :data:`KEY_BYTES` bytes and its wrapped form, bound to
        ``context`` (unwrapping needs the same context)."""

    @abc.abstractmethod
    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """The data key of ``wrapped``; :class:`~eventstore.errors.CorruptRecord` when it was
        not wrapped by this provider with this context."""

    def rewrap(self, key: bytes, context: Mapping[str, str]) -> bytes:
        """``key`` wrapped by this provider (a rotation re-wraps old keys this way)."""
        raise InvalidInput(f"{type(self).__name__} cannot wrap an existing key")


def _context_bytes(context: Mapping[str, str]) -> bytes:
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


class LocalKeyProvider(KeyProvider):
    """Data keys wrapped with AES-256-GCM under ``master_key`` (32 bytes the application keeps:
    an environment variable, a file, a secrets manager), the context as associated data. For
    SQLite, development and tests; on AWS prefer :class:`KmsKeyProvider`-style keys that never
    leave a key service."""

    def __init__(self, master_key: bytes) -> None:
        if not isinstance(master_key, bytes):
            raise WrongType(f"master_key must be bytes, got {type(master_key).__name__}")
        if len(master_key) != KEY_BYTES:
            raise InvalidInput(f"master_key must be {KEY_BYTES} bytes, got {len(master_key)}")
        self._aead = AESGCM(master_key)
        self.name = "local:" + hashlib.sha256(b"eventstore key id" + master_key).hexdigest()[:16]

    def new_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        key = AESGCM.generate_key(bit_length=256)
        return key, self.rewrap(key, context)

    def rewrap(self, key: bytes, context: Mapping[str, str]) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, key, _context_bytes(context))

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], _context_bytes(context))
        except (InvalidTag, ValueError) as e:
            subject = context.get("subject", "?")
            raise CorruptRecord(
                "key", subject, None, "its data key was not wrapped by this master key"
            ) from e
