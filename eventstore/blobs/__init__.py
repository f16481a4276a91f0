"""States of any size: the bytes of items too large for the table go to a blob store (S3) before
the commit that names them, and come back on reads.

``eventstore.open(url, blobs="s3://bucket/prefix?region=R&endpoint_url=URL")``, or
``EventStore(backend, blobs=S3Blobs(bucket, prefix, client=...))``; see docs/blobs.md.
"""

from typing import Any as _Any

from eventstore.blobs.base import BlobInfo, BlobStore
from eventstore.blobs.collect import MIN_GRACE, Sweep
from eventstore.blobs.offload import DEFAULT_OFFLOAD_BYTES
from eventstore.blobs.s3 import S3Blobs
from eventstore.errors import InvalidInput as _InvalidInput

__all__ = [
    "DEFAULT_OFFLOAD_BYTES",
    "MIN_GRACE",
    "BlobInfo",
    "BlobStore",
    "S3Blobs",
    "Sweep",
    "blobs_from_url",
]


def blobs_from_url(url: str, **options: _Any) -> BlobStore:
    """The blob store a URL names: ``s3://BUCKET[/PREFIX][?region=R&endpoint_url=URL]``
    (``options`` go to :class:`S3Blobs`: ``client=``, ``session=``)."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise _InvalidInput(f"blob store URL must be s3://bucket/prefix, got {url!r}")
    return S3Blobs.from_url(url, **options)
