"""Key providers: make a subject's data key and wrap it, and unwrap it again. The wrapped form
is what the key store keeps; the plaintext key never leaves the process."""

from __future__ import annotations

import abc
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

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
    def unwrap(self, wrapped: bytes, context: Mapping[str, str], by: str) -> bytes:
        """The data key of ``wrapped``, which the provider named ``by`` wrapped (this one, or
        one it was rotated from); :class:`~eventstore.errors.CorruptRecord` when it cannot be
        unwrapped with this context."""

    def rewrap(self, key: bytes, context: Mapping[str, str]) -> bytes:
        """``key`` wrapped by this provider (a rotation re-wraps old keys this way)."""
        raise InvalidInput(f"{type(self).__name__} cannot wrap an existing key")


def _context_bytes(context: Mapping[str, str]) -> bytes:
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


class LocalKeyProvider(KeyProvider):
    """Data keys wrapped with AES-256-GCM under ``master_key`` (32 bytes the application keeps:
    a secrets manager, an environment variable, a file), the context as associated data. For
    SQLite, development and tests; on AWS, :class:`KmsKeyProvider` keeps the master key inside
    KMS. ``previous`` master keys still unwrap the data keys they wrapped, so that reads work
    while ``eventstore keys rotate`` re-wraps them under ``master_key``."""

    def __init__(self, master_key: bytes, *, previous: Sequence[bytes] = ()) -> None:
        self._aead = _aead(master_key)
        self.name = _local_name(master_key)
        self._by_name = {self.name: self._aead}
        for old in previous:
            self._by_name[_local_name(old)] = _aead(old)

    def new_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        key = AESGCM.generate_key(bit_length=256)
        return key, self.rewrap(key, context)

    def rewrap(self, key: bytes, context: Mapping[str, str]) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, key, _context_bytes(context))

    def unwrap(self, wrapped: bytes, context: Mapping[str, str], by: str) -> bytes:
        aead = self._by_name.get(by)
        subject = context.get("subject", "?")
        if aead is None:
            raise CorruptRecord(
                "key", subject, None, f"its data key was wrapped by {by}, not a master key given"
            )
        try:
            return aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], _context_bytes(context))
        except (InvalidTag, ValueError) as e:
            raise CorruptRecord(
                "key", subject, None, "its data key does not unwrap with its master key"
            ) from e


def _aead(master_key: bytes) -> AESGCM:
    if not isinstance(master_key, bytes):
        raise WrongType(f"a master key must be bytes, got {type(master_key).__name__}")
    if len(master_key) != KEY_BYTES:
        raise InvalidInput(f"a master key must be {KEY_BYTES} bytes, got {len(master_key)}")
    return AESGCM(master_key)


def _local_name(master_key: bytes) -> str:
    return "local:" + hashlib.sha256(b"eventstore key id" + master_key).hexdigest()[:16]


class KmsKeyProvider(KeyProvider):
    """Data keys made by AWS KMS under the KMS key ``key_id`` (``GenerateDataKey``) and unwrapped
    by it (``Decrypt``), with the encryption context naming the subject (and the key store's
    table on DynamoDB), which KMS checks and CloudTrail logs. ``client`` is a boto3 KMS client
    (default: one from ``region``/``endpoint_url`` and the environment's credentials). Keys
    wrapped under an earlier KMS key still unwrap (KMS finds the key from the ciphertext) as
    long as this role may use it. ``calls`` counts the requests sent."""

    def __init__(
        self,
        key_id: str,
        *,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if not isinstance(key_id, str) or not key_id:
            raise InvalidInput("key_id must be a KMS key id, ARN or alias")
        self.key_id = key_id
        self.name = f"kms:{key_id}"
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "kms",
                region_name=region,
                endpoint_url=endpoint_url,
                config=Config(retries={"mode": "standard", "total_max_attempts": 5}),
            )
        self.client = client
        self.calls = 0

    def _call(self, name: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        from eventstore.errors import BackendError, BackendUnavailable

        self.calls += 1
        try:
            found: dict[str, Any] = getattr(self.client, name)(**params)
            return found
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code == "InvalidCiphertextException":
                raise _Refused(code) from e
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            kind = BackendUnavailable if status >= 500 else BackendError
            raise kind(f"KMS {name}: {code}: {e.response.get('Error', {}).get('Message')}") from e
        except BotoCoreError as e:
            raise BackendUnavailable(f"KMS {name} failed: {e}") from e

    def new_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        found = self._call(
            "generate_data_key",
            KeyId=self.key_id,
            KeySpec="AES_256",
            EncryptionContext=dict(context),
        )
        return bytes(found["Plaintext"]), bytes(found["CiphertextBlob"])

    def rewrap(self, key: bytes, context: Mapping[str, str]) -> bytes:
        found = self._call(
            "encrypt", KeyId=self.key_id, Plaintext=key, EncryptionContext=dict(context)
        )
        return bytes(found["CiphertextBlob"])

    def unwrap(self, wrapped: bytes, context: Mapping[str, str], by: str) -> bytes:
        try:
            found = self._call("decrypt", CiphertextBlob=wrapped, EncryptionContext=dict(context))
        except _Refused as e:
            raise CorruptRecord(
                "key",
                context.get("subject", "?"),
                None,
                "KMS refused to unwrap its data key (another key store, or another context)",
            ) from e
        return bytes(found["Plaintext"])


class _Refused(Exception):
    """KMS answered that the ciphertext does not decrypt with the context given."""
