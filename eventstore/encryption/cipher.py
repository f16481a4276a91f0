"""Sealing state bytes with a data key: AES-256-GCM, a random 96-bit nonce per item, and the
item's identity (stream, slot, subject) as associated data, so that ciphertext moved to another
version or stream does not open."""

from __future__ import annotations

import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eventstore import codec

_FORMAT = 1
_NONCE = 12
#: Bytes a sealed state has beyond its plaintext: marker, format, nonce and GCM tag.
OVERHEAD = 2 + _NONCE + 16


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


def seal(key: bytes, data: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return bytes([codec.ENCRYPTED, _FORMAT]) + nonce + _aead(key).encrypt(nonce, data, aad)


def is_sealed(blob: bytes) -> bool:
    return len(blob) > 1 and blob[0] == codec.ENCRYPTED


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < OVERHEAD or blob[0] != codec.ENCRYPTED or blob[1] != _FORMAT:
        raise Unsealable("not a sealed state of a known format")
    nonce = blob[2 : 2 + _NONCE]
    try:
        return _aead(key).decrypt(nonce, blob[2 + _NONCE :], aad)
    except InvalidTag as e:
        raise Unsealable("the authentication tag does not match") from e
