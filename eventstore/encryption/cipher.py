"""Sealing state bytes with a data key: AES-256-GCM, a random 96-bit nonce per item, and the
item's identity (stream, slot, subject) as associated data, so that ciphertext moved to another
version or stream does not open. Sealed bytes name their key by a check value (8 bytes of a hash
of it), so that a state sealed with a key since shredded is told from damage even after the
subject got a new key."""

from __future__ import annotations

import functools
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eventstore import codec

_FORMAT = 1
_NONCE = 12
_KEY_ID = 8
_HEADER = 2 + _KEY_ID + _NONCE
#: Bytes a sealed state has beyond its plaintext: marker, format, key check, nonce, GCM tag.
OVERHEAD = _HEADER + 16


class Unsealable(ValueError):
    """The bytes were damaged, or sealed for another item or with another key."""


def associated(pk: str, sk: str, subject: str) -> bytes:
    return b"\x00".join(part.encode("utf-8") for part in (pk, sk, subject))


@functools.lru_cache(maxsize=4096)
def _aead(key: bytes) -> AESGCM:
    # Building the cipher expands the key (a third of sealing a small state): once per key.
    return AESGCM(key)


def forget_ciphers() -> None:
    """Drop every expanded key (a subject was shredded: its key must not stay in memory)."""
    _aead.cache_clear()
    key_id.cache_clear()


@functools.lru_cache(maxsize=4096)
def key_id(key: bytes) -> bytes:
    """The check value sealed bytes carry to name their key."""
    return hashlib.sha256(b"eventstore data key" + key).digest()[:_KEY_ID]


def sealed_key_id(blob: bytes) -> bytes:
    """The check value of the key ``blob`` was sealed with."""
    return blob[2 : 2 + _KEY_ID]


def seal(key: bytes, data: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    sealed = _aead(key).encrypt(nonce, data, aad)
    return bytes([codec.ENCRYPTED, _FORMAT]) + key_id(key) + nonce + sealed


def is_sealed(blob: bytes) -> bool:
    return len(blob) > 1 and blob[0] == codec.ENCRYPTED


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < OVERHEAD or blob[0] != codec.ENCRYPTED or blob[1] != _FORMAT:
        raise Unsealable("not a sealed state of a known format")
    nonce = blob[2 + _KEY_ID : _HEADER]
    try:
        return _aead(key).decrypt(nonce, blob[_HEADER:], aad)
    except InvalidTag as e:
        raise Unsealable("the authentication tag does not match") from e
