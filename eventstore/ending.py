"""Ending resources, as methods of :class:`eventstore.EventStore`: delete (a last version),
erase (nothing left), purge (versions past ``max_age``) and the sweep of a blob store's objects
that no version names."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar, cast

from eventstore import records
from eventstore.backoff import Backoff
from eventstore.blobs.collect import Sweep, collect
from eventstore.blobs.offload import Offloading
from eventstore.erasing import ErasureReport, erase, purge_stream
from eventstore.errors import ConcurrencyError, InvalidInput, WrongType
from eventstore.inputs import ANY, NO_STREAM, Expect, check_event, check_expected, metadata_json
from eventstore.keys import check_resource_id, stream_pk
from eventstore.resource import (
    Resource,
    Version,
    check_resource_class,
    defines_subject,
    registered_types,
)
from eventstore.surface import StoreSurface
from eventstore.writing import Prepared

R = TypeVar("R", bound=Resource)


class Ending(StoreSurface):
    """``delete``, ``erase`` and ``purge`` of :class:`eventstore.EventStore`."""

    def delete(
        self,
        resource_type: type[R],
        resource_id: str,
        *,
        expected_version: int | Expect = ANY,
        event: str | None = "deleted",
        metadata: Mapping[str, Any] | None = None,
    ) -> Version[R]:
        """End a resource: append a last version marked ``deleted`` (carrying the last state, so
        the feed and subscribers learn of it), and take the head out of the listing and every
        projection. Afterwards reading the latest raises :class:`StreamNotFound`; the history
        stays readable by number and in :meth:`read_stream` until trimmed or erased. An append
        with ``NO_STREAM`` (or ``ANY``) starts the resource again, its versions numbered on.

        ``expected_version`` (default ``ANY``) is checked as for an append;
        :class:`StreamNotFound` if the resource does not exist or is already deleted."""
        cls = check_resource_class(resource_type)
        rid = check_resource_id(resource_id)
        expected = check_expected(expected_version)
        if expected is NO_STREAM:
            raise InvalidInput("delete() takes an expected version or ANY, not NO_STREAM")
        checked_event, meta = check_event(event), metadata_json(metadata)
        backoff = Backoff(base=0.005, cap=0.5, budget=self.writer.contention_budget)
        while True:
            latest = self.read_version(cls, rid)
            if isinstance(expected, int) and expected != latest.version:
                raise ConcurrencyError(cls.resource_type, rid, expected, latest.version)
            data = latest.state.__pydantic_serializer__.to_json(latest.state, by_alias=True)
            tombstone = Prepared(
                cls,
                rid,
                stream_pk(cls.resource_type, rid),
                latest.version,
                data,
                latest.state,
                checked_event,
                meta,
                {},
                frozenset(),
                deleted=True,
            )
            try:
                return cast("Version[R]", self.writer.commit([tombstone])[0])
            except ConcurrencyError:
                # The tombstone carries the state it read: with ANY, a version appended in
                # between is read again rather than refused.
                if expected is not ANY or not backoff.wait():
                    raise

    def erase(
        self,
        resource_type: type[Resource],
        resource_id: str,
        *,
        progress: Callable[[ErasureReport], None] | None = None,
    ) -> ErasureReport:
        """Remove a resource for good (a person's data on request): every version, keyframe and
        the head, in as few atomic writes as the limits allow; its feed entries keep their
        positions as tombstones that name nothing. Run it again if it was interrupted.
        Afterwards nothing in the table holds its states, and a new stream may start under the
        same id. :class:`StreamNotFound` if there is nothing to erase."""
        cls = check_resource_class(resource_type)
        pk = stream_pk(cls.resource_type, check_resource_id(resource_id))
        if cls.encrypted and self.backend.encrypts and not defines_subject(cls):
            # The stream is its own subject: its key goes first, so that an erasure stopped
            # half-way already leaves every copy unreadable. A subject several streams share
            # is shredded with shred(subject).
            self.shred(pk)
        return erase(self.backend, self.clock, pk, indexer=self.indexer, progress=progress)

    def rotate_keys(self, *, progress: Callable[[Any], None] | None = None) -> Any:
        """Re-wrap every data key under the key provider's current master key (a new local master
        key, given the old one as ``previous``; or a new KMS key), without rewriting any state;
        return an :class:`eventstore.encryption.Rotation`. Readers keep working throughout.
        :class:`InvalidInput` on a store without a key provider."""
        keys = getattr(self.backend, "keys", None)
        if not self.backend.encrypts or keys is None:
            raise InvalidInput("this store has no key provider (open it with keys=)")
        from eventstore.encryption.rotation import rotate

        return rotate(keys, progress=progress)

    def shred(self, subject: str) -> None:
        """Delete the data key of ``subject`` (a stream's ``"<type>#<id>"``, or what an encrypted
        type's ``subject()`` returns): every version sealed with it, in this table and in every
        copy of it (backups, point-in-time recovery, exports, copied files, S3 objects), reads
        as :class:`Shredded` from now on; replays, the feed and rebuilds pass over them. Other
        processes that hold the key in memory keep reading for up to five minutes (their key
        cache's lifetime). Idempotent. The items stay until erased or trimmed.
        :class:`InvalidInput` on a store without a key provider (``keys=``)."""
        if not isinstance(subject, str) or not subject:
            raise WrongType("subject must be a non-empty str")
        self.backend.shred(subject)
        self.reader.cache.clear()

    def purge(self, resource_type: type[Resource] | None = None) -> int:
        """Remove the versions of ``resource_type`` (or of every type defined in this process)
        that are past their type's ``max_age`` (deleted resources' included), and their keyframes, and move each stream's
        retention bound past them; return how many versions went. On DynamoDB its TTL does this
        by itself (within days); on SQLite and in memory call this from time to time. The latest
        version of a resource is never removed."""
        classes = [check_resource_class(resource_type)] if resource_type else registered_types()
        now = self.reader.clock()
        removed = 0
        for cls in classes:
            if cls.max_age is None:
                continue
            for head in itertools.chain(self.heads(cls), self.deleted_heads(cls)):
                removed += purge_stream(self.backend, str(head[records.PK]), now)
        return removed

    def collect_blobs(
        self,
        older_than: timedelta = timedelta(hours=1),
        *,
        progress: Callable[[Sweep], None] | None = None,
    ) -> int:
        """Delete the blob store's objects that no version names and that are older than
        ``older_than`` (at least 15 minutes: longer than any commit takes from its uploads to
        its write, so an object on its way into a commit is never taken); return how many went.
        They are left by commits that failed or conflicted after uploading, and by trims whose
        own cleanup failed. Safe while writers run. ``progress`` gets a :class:`Sweep` after each
        batch. :class:`InvalidInput` on a store without a blob store."""
        backend = self.backend
        if not isinstance(backend, Offloading):
            raise InvalidInput("this store has no blob store (open it with blobs=)")
        return collect(backend, older_than, now=self.reader.clock(), progress=progress).deleted
