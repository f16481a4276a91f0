"""The blob store on S3 (or any server that speaks its API with conditional writes and SHA-256
checksums: SeaweedFS in the tests). botocore retries throttling and server errors; what is left
is translated to the library's errors in :meth:`S3Blobs._translate`, from one table."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from eventstore import bridge
from eventstore.backends.aws import new_client
from eventstore.blobs.base import BlobInfo, BlobStore, ObjectMissing
from eventstore.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BucketNotFound,
    CredentialsMissing,
    InvalidInput,
)

#: Client settings: botocore's standard retries (throttling, 5xx, transport errors) with a few
#: attempts, short connect and read timeouts, and a pool as large as DynamoDB's.
CLIENT_SETTINGS: dict[str, Any] = {
    "retries": {"total_max_attempts": 5, "mode": "standard"},
    "connect_timeout": 3,
    "read_timeout": 30,
    "max_pool_connections": 32,
    "tcp_keepalive": True,
}
_TIMEOUTS = (ReadTimeoutError, ConnectTimeoutError)
_TRANSPORT = (BotoConnectionError, HTTPClientError, EndpointConnectionError, ConnectionClosedError)
# S3 error codes and what they mean for a call (codes not listed are a BackendError).
_MISSING, _EXISTS, _AGAIN = "missing", "exists", "again"
_OUTCOMES: dict[str, str | type[BackendError]] = {
    "NoSuchKey": _MISSING,
    "404": _MISSING,
    "PreconditionFailed": _EXISTS,
    "412": _EXISTS,
    # Two conditional writes of one key at once (S3 says: retry), or bytes damaged on the way.
    "ConditionalRequestConflict": _AGAIN,
    "BadDigest": _AGAIN,
    "XAmzContentChecksumMismatch": _AGAIN,
    "XAmzContentSHA256Mismatch": _AGAIN,
    "NoSuchBucket": BucketNotFound,
    "SlowDown": BackendUnavailable,
    "ServiceUnavailable": BackendUnavailable,
    "InternalError": BackendUnavailable,
}
_AGAIN_TRIES = 4
_DELETE_BATCH = 1000  # S3's limit per DeleteObjects request


class S3Blobs(BlobStore):
    """Objects in ``bucket`` under ``prefix``. ``client`` is a boto3 S3 client (default: one
    made from ``region``/``endpoint_url`` and the environment's credentials, closed by
    :meth:`close`)."""

    #: Whether the client is made on first use (the async subclass needs an event loop).
    lazy_client = False

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        session: Any = None,
    ) -> None:
        if not isinstance(bucket, str) or not 3 <= len(bucket) <= 63 or "/" in bucket:
            raise InvalidInput(f"invalid S3 bucket name {bucket!r}")
        if not isinstance(prefix, str):
            raise InvalidInput(f"S3 prefix must be a str, got {type(prefix).__name__}")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.location = f"s3://{bucket}/{self.prefix}"
        self._region, self._endpoint_url, self._session = region, endpoint_url, session
        self._owns_client = client is None
        self._client: Any = client
        self._requests = 0
        self._lock = threading.Lock()
        if client is not None:
            self._watch(client)
        elif not self.lazy_client:
            self._client = self._open_client()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Blobs:
        """``s3://BUCKET[/PREFIX][?region=R&endpoint_url=URL]``."""
        if not isinstance(url, str):
            raise InvalidInput(f"blob store URL must be a str, got {type(url).__name__}")
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise InvalidInput(f"{url!r}: write s3://bucket/prefix")
        settings: dict[str, Any] = {}
        for name, values in parse_qs(parts.query, keep_blank_values=True).items():
            if name not in ("region", "endpoint_url") or len(values) != 1:
                raise InvalidInput(f"{url!r}: unknown or repeated S3 URL option {name!r}")
            settings[name] = values[0] or None
        return cls(parts.netloc, parts.path, **{**settings, **options})

    # --- the client ---

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._open_client()
        return self._client

    def _open_client(self) -> Any:
        try:
            client = self._new_client()
        except (ValueError, BotoCoreError) as e:  # a bad endpoint_url, no region anywhere
            raise InvalidInput(f"cannot create an S3 client: {e}") from e
        self._watch(client)
        return client

    def _config(self) -> dict[str, Any]:
        # A local server (an endpoint URL) is addressed by path: its host is no bucket's DNS name.
        style = "path" if self._endpoint_url else "auto"
        return {**CLIENT_SETTINGS, "s3": {"addressing_style": style}}

    def _new_client(self) -> Any:
        return new_client(
            "s3",
            region=self._region,
            endpoint_url=self._endpoint_url,
            config=Config(**self._config()),
            session=self._session,
        )

    def _watch(self, client: Any) -> None:
        client.meta.events.register("before-send.s3.*", self._count)

    def _count(self, **_: Any) -> None:
        with self._lock:
            self._requests += 1

    def requests(self) -> int:
        return self._requests

    def _send(self, method: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
        """One call (botocore retries inside it): the only line that waits for S3."""
        return method(**params)  # type: ignore[no-any-return]

    def _read(self, body: Any) -> bytes:
        """The whole of a response body."""
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    def _call(self, name: str, **params: Any) -> dict[str, Any]:
        """Call the client's method ``name`` with the bucket, translating what fails."""
        try:
            return self._send(getattr(self.client, name), {"Bucket": self.bucket, **params})
        except ClientError as e:
            raise self._translate(e) from e
        except NoCredentialsError as e:
            raise CredentialsMissing(f"S3 {name}: {e}") from e
        except _TIMEOUTS as e:
            raise BackendTimeout(f"S3 {name} timed out: {e}") from e
        except _TRANSPORT as e:
            raise BackendUnavailable(f"S3 {name} failed: {e}") from e

    def _translate(self, e: ClientError) -> Exception:
        error = e.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        outcome = _OUTCOMES.get(code, BackendUnavailable if status >= 500 else BackendError)
        if isinstance(outcome, str):
            return _Outcome(outcome)
        if outcome is BucketNotFound:
            return BucketNotFound(
                f"S3 bucket {self.bucket!r} does not exist (store.create_table() makes it)"
            )
        return outcome(f"S3 {e.operation_name} on {self.location}: {code}: {error.get('Message')}")

    # --- the contract ---

    def put(self, key: str, data: bytes, sha256: bytes) -> bool:
        return self._upload(key, data, sha256, conditional=True)

    def touch(self, key: str, data: bytes, sha256: bytes) -> None:
        self._upload(key, data, sha256, conditional=False)

    def _upload(self, key: str, data: bytes, sha256: bytes, *, conditional: bool) -> bool:
        params: dict[str, Any] = {
            "Key": self.prefix + key,
            "Body": data,
            "ChecksumSHA256": base64.b64encode(sha256).decode("ascii"),
        }
        if conditional:
            params["IfNoneMatch"] = "*"
        for attempt in range(_AGAIN_TRIES):
            try:
                self._call("put_object", **params)
                return True
            except _Outcome as e:
                if e.outcome == _EXISTS:
                    return False
                if e.outcome != _AGAIN or attempt == _AGAIN_TRIES - 1:
                    raise BackendError(f"S3 refused the upload of {key!r}: {e.outcome}") from e
                bridge.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def get(self, key: str) -> bytes:
        try:
            response = self._call("get_object", Key=self.prefix + key)
        except _Outcome as e:
            if e.outcome == _MISSING:
                raise ObjectMissing(key) from None
            raise BackendError(f"S3 read of {key!r}: {e.outcome}") from e
        return self._read(response["Body"])

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        markers: dict[str, str] = {}
        strip = len(self.prefix)
        while True:
            page = self._call("list_object_versions", Prefix=self.prefix + prefix, **markers)
            found = [
                BlobInfo(
                    v["Key"][strip:], int(v.get("Size", 0)), v["LastModified"], v.get("VersionId")
                )
                for v in page.get("Versions", [])
            ] + [
                BlobInfo(m["Key"][strip:], 0, m["LastModified"], m.get("VersionId"), marker=True)
                for m in page.get("DeleteMarkers", [])
            ]
            yield from sorted(found, key=lambda b: b.key)
            if not page.get("IsTruncated"):
                return
            markers = {"KeyMarker": page["NextKeyMarker"]}
            if page.get("NextVersionIdMarker"):
                markers["VersionIdMarker"] = page["NextVersionIdMarker"]

    def delete(self, found: Sequence[BlobInfo]) -> int:
        deleted = 0
        for start in range(0, len(found), _DELETE_BATCH):
            batch = [
                {"Key": self.prefix + b.key, **({"VersionId": b.version} if b.version else {})}
                for b in found[start : start + _DELETE_BATCH]
            ]
            response = self._call("delete_objects", Delete={"Objects": batch, "Quiet": False})
            errors = response.get("Errors", [])
            failed = [e for e in errors if e.get("Code") != "NoSuchKey"]
            if failed:
                first = failed[0]
                raise BackendError(
                    f"S3 did not delete {len(failed)} objects of {self.location}, e.g. "
                    f"{first.get('Key')!r}: {first.get('Code')}: {first.get('Message')}"
                )
            deleted += len(response.get("Deleted", []))
        return deleted

    def create(self) -> None:
        try:
            self._call("head_bucket")
            return
        except _Outcome as e:
            if e.outcome != _MISSING:
                raise BackendError(f"S3 bucket {self.bucket!r}: {e.outcome}") from e
        except BucketNotFound:
            pass
        region = self._region or self.client.meta.region_name
        params: dict[str, Any] = {}
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._call("create_bucket", **params)
        except BackendError as e:
            cause = e.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                return  # made meanwhile by another process
            raise

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            self._close_client(self._client)
            self._client = None

    def _close_client(self, client: Any) -> None:
        client.close()


class _Outcome(Exception):
    """An S3 answer that the calling method turns into its result (absent, already there, try
    again); never leaves this module."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        super().__init__(outcome)
