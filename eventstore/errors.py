"""The one error tree of the library.

Every error the library raises on purpose is an :class:`EventStoreError`. Errors that come from bad
input also inherit the matching builtin (``ValueError``, ``TypeError``), and errors that come from
an unreachable backend inherit ``ConnectionError`` or ``TimeoutError``, so callers can catch either
the library's class or the builtin they already handle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class EventStoreError(Exception):
    """Base class of every error raised by eventstore and projections."""


@dataclass(frozen=True)
class Conflict:
    """One stream that was not at the version an append expected."""

    resource_type: str
    resource_id: str
    expected: object
    actual: int

    def __str__(self) -> str:
        return (
            f"{self.resource_type} {self.resource_id!r}: expected version {self.expected}, "
            f"stream is at {self.actual}"
        )


class ConcurrencyError(EventStoreError):
    """A stream was not at the version the append expected. Nothing was written.

    ``expected`` is what the caller asked for (an int, or the ``NO_STREAM`` sentinel); ``actual`` is
    the stream's version when the write was refused (``0`` when the stream does not exist).
    ``conflicts`` lists every stream of an ``append_many`` that conflicted; the other attributes
    are those of the first.
    """

    def __init__(
        self,
        resource_type: str,
        resource_id: str,
        expected: object,
        actual: int,
        conflicts: Sequence[Conflict] = (),
    ) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.expected = expected
        self.actual = actual
        first = Conflict(resource_type, resource_id, expected, actual)
        self.conflicts: list[Conflict] = list(conflicts) or [first]
        message = "; ".join(map(str, self.conflicts))
        if len(self.conflicts) == 1 and str(expected) == "NO_STREAM" and actual > 0:
            message += (
                f"; to append to an existing stream pass expected_version={actual} "
                "(or ANY to skip the check)"
            )
        super().__init__(message)

    @classmethod
    def of(cls, conflicts: Sequence[Conflict]) -> ConcurrencyError:
        c = conflicts[0]
        return cls(c.resource_type, c.resource_id, c.expected, c.actual, conflicts)


class ContentionError(ConcurrencyError):
    """A commit kept losing races for its whole time budget (``attempts`` tries in ``elapsed``
    seconds): to other writers of the stream (an ``expected_version=ANY`` append), or, when
    ``partition`` is set, to other commits moving that inline feed partition's counter. Nothing
    was written."""

    def __init__(
        self,
        resource_type: str,
        resource_id: str,
        expected: object,
        actual: int,
        *,
        attempts: int,
        elapsed: float,
        partition: int | None = None,
    ) -> None:
        super().__init__(resource_type, resource_id, expected, actual)
        self.attempts = attempts
        self.elapsed = elapsed
        self.partition = partition
        if partition is not None:
            self.args = (
                f"{resource_type} {resource_id!r}: the commit lost the counter of inline feed "
                f"partition {partition} to other commits {attempts} times in {elapsed:.1f} s "
                "(nobody else wrote the stream; the inline feed caps a table's append rate: see "
                "docs/feed.md for the indexed feed)",
            )
            return
        self.args = (
            f"{resource_type} {resource_id!r}: an append with expected_version={expected} lost "
            f"to other writers {attempts} times in {elapsed:.1f} s (contention); the stream is "
            f"at {actual}",
        )


class DuplicateResourceType(EventStoreError, TypeError):
    """Two different Resource classes claim one ``resource_type`` (its name is part of the stored
    keys, so the second would read the first's streams)."""

    def __init__(self, type_name: str, taken_by: str, claimed_by: str) -> None:
        self.type_name = type_name
        self.taken_by = taken_by
        self.claimed_by = claimed_by
        super().__init__(
            f"resource_type {type_name!r} is taken by {taken_by}; {claimed_by} cannot use it "
            "(set a different resource_type on one of them)"
        )


class StreamNotFound(EventStoreError, LookupError):
    """No version of this stream exists (never created, or every version expired)."""

    def __init__(self, resource_type: str, resource_id: str) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        super().__init__(f"{resource_type} {resource_id!r} does not exist")


class VersionNotFound(EventStoreError, LookupError):
    """The requested version is not in the stream: never written, or trimmed.

    ``remaining`` is the (first, last) range of versions the stream still holds, or ``None`` when
    the stream holds none.
    """

    def __init__(
        self,
        resource_type: str,
        resource_id: str,
        requested: int | str,
        remaining: tuple[int, int] | None,
    ) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.requested = requested
        self.remaining = remaining
        held = f"versions {remaining[0]}-{remaining[1]}" if remaining else "no versions"
        super().__init__(
            f"{resource_type} {resource_id!r} has no version {requested}; it holds {held}"
        )


class Shredded(VersionNotFound):
    """The version's state was encrypted with its subject's data key, and that key was shredded
    (``store.shred(subject)``, or the stream's erasure): no copy of it anywhere can be read
    again. ``subject`` names whose key it was."""

    def __init__(self, resource_type: str, resource_id: str, version: int, subject: str) -> None:
        self.subject = subject
        EventStoreError.__init__(
            self,
            f"{resource_type} {resource_id!r} version {version} was encrypted for subject "
            f"{subject!r}, whose key has been shredded",
        )
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.requested = version
        self.remaining = None


class KeysMissing(EventStoreError):
    """An encrypted resource type (``encrypted = True``) was written or read by a store opened
    without a key provider: open it with ``keys=`` (and the same ``key_store=``)."""


class ItemTooLarge(EventStoreError, ValueError):
    """An item would exceed the backend's item size limit (DynamoDB: 400 KB). Nothing was written."""

    def __init__(self, size: int, limit: int, what: str = "item") -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"{what} would be {size} bytes, over the limit of {limit} bytes")


class InvalidKey(EventStoreError, ValueError):
    """A resource type name or resource id cannot be used as part of a key."""


class InvalidInput(EventStoreError, ValueError):
    """An argument is out of range or malformed (a bad expected version, metadata, cursor, ...)."""


class SubjectChanged(InvalidInput):
    """An append to a stream of an encrypted type whose state names another subject than the
    one the stream's first version fixed (``subject()`` must give the same subject for every
    version of a stream: its key seals them all, and shredding it must reach them all). Nothing
    was written. ``subject`` is the stream's, ``given`` the append's."""

    def __init__(self, resource_type: str, resource_id: str, subject: str, given: str) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.subject = subject
        self.given = given
        super().__init__(
            f"{resource_type} {resource_id!r} belongs to subject {subject!r} (fixed by its first "
            f"version); this append's state names {given!r}"
        )


class InvalidCursor(InvalidInput):
    """A cursor or checkpoint was altered, belongs to another query (another projection,
    partition, sort condition or direction) or another table, or is not one at all."""


class CommitTooLarge(InvalidInput):
    """An atomic write would pass a limit of DynamoDB's ``TransactWriteItems`` (applied on every
    backend): ``limit_name`` is ``"actions"`` (100 items, counting versions, keyframes, heads and
    trims) or ``"bytes"`` (4 MB). Nothing was written."""

    def __init__(self, limit_name: str, size: int, limit: int) -> None:
        self.limit_name = limit_name
        self.size = size
        self.limit = limit
        super().__init__(
            f"the commit needs {size} {limit_name} in one atomic write, over the limit of {limit}; "
            "split it into smaller commits"
        )


class InvalidState(EventStoreError, ValueError):
    """A resource state failed validation. ``errors`` is pydantic's error list."""

    def __init__(self, message: str, errors: Sequence[object] = ()) -> None:
        self.errors = list(errors)
        super().__init__(message)


class WrongType(EventStoreError, TypeError):
    """An argument has the wrong Python type (not a Resource, metadata not a dict, ...)."""


class ProjectionError(EventStoreError):
    """A projection is misdeclared, or its key function failed or returned a bad value. When this
    comes from an append, nothing was written."""


class CorruptRecord(EventStoreError):
    """A stored item cannot be decoded (bad codec byte, broken or oversized compressed data).

    Names the stream and version so the item can be found and repaired.
    """

    def __init__(
        self, resource_type: str, resource_id: str, version: int | None, reason: str
    ) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.version = version
        self.reason = reason
        where = f"version {version}" if version is not None else "an item"
        super().__init__(f"{resource_type} {resource_id!r} {where} is corrupt: {reason}")


class SchemaMismatch(EventStoreError):
    """A stored state cannot be read as the resource's current model: it was stored under a
    schema the code has no upcaster path from, or under a newer schema than the code knows, or
    it does not validate (after upcasting). The data is intact; the code moved. Names the type,
    stream, version, and the stored and current schema versions."""

    def __init__(
        self,
        resource_type: str,
        resource_id: str,
        version: int,
        stored: int,
        current: int,
        reason: str,
    ) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.version = version
        self.stored = stored
        self.current = current
        self.reason = reason
        super().__init__(
            f"{resource_type} {resource_id!r} version {version} (stored under schema {stored}, "
            f"the code is at schema {current}): {reason}"
        )


class IndexTimeout(EventStoreError, TimeoutError):
    """:meth:`EventStore.wait_indexed` did not find the version in the feed's index in time
    (no indexer running, or one that lags)."""


class BackendError(EventStoreError):
    """The backend failed in a way that is not the caller's fault (after retries, if any)."""


class BackendUnavailable(BackendError, ConnectionError):
    """The backend could not be reached or kept failing; retries ran out. Outcome may be unknown."""


class BackendTimeout(BackendError, TimeoutError):
    """The backend did not answer in time; retries ran out. Outcome may be unknown."""


class CredentialsMissing(BackendError):
    """The AWS SDK found no credentials. Set ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (or
    a profile, or a role); DynamoDB Local accepts any non-empty values."""


class TableNotFound(BackendError, LookupError):
    """The table does not exist. ``store.create_table()`` makes it."""


class NoBlobStore(EventStoreError):
    """A version's state is kept in a blob store (it was larger than ``offload_bytes``), and this
    store was opened without one: open it with the same ``blobs=`` (``--blobs`` on the command
    line) as the stores that write it."""

    def __init__(self, resource_type: str, resource_id: str, version: int) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.version = version
        super().__init__(
            f"{resource_type} {resource_id!r} version {version}: the state is in a blob store; "
            "open the store with blobs= (the command line's --blobs) to read it"
        )


class BucketNotFound(BackendError, LookupError):
    """The blob store's S3 bucket does not exist. ``store.create_table()`` makes it."""


class OutdatedLayout(BackendError):
    """The SQLite file was written by an older version of the library, in a layout this one does
    not read (``found`` and ``needed`` are layout numbers). ``eventstore upgrade URL`` converts it
    in place, in one transaction; nothing was changed by opening it."""

    def __init__(self, path: str, found: int, needed: int) -> None:
        self.path = path
        self.found = found
        self.needed = needed
        super().__init__(
            f"the SQLite file {path!r} has storage layout {found}; this version of eventstore "
            f"reads layout {needed}. Convert it with: eventstore upgrade sqlite:///{path} "
            "(one transaction; back the file up first if you may go back to the older version)"
        )
