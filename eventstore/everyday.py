"""Everyday operations of :class:`eventstore.EventStore`: change with automatic retry, read
many at once, and the typed repository."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, cast

from eventstore import records
from eventstore.backoff import Backoff
from eventstore.errors import ConcurrencyError, InvalidInput, StreamNotFound, WrongType
from eventstore.inputs import NO_STREAM
from eventstore.keys import check_resource_id, stream_pk
from eventstore.repository import Repository, Store
from eventstore.resource import Resource, Version, check_resource_class
from eventstore.surface import StoreSurface

R = TypeVar("R", bound=Resource)


class Everyday(StoreSurface):
    """``update``, ``read_many`` and ``repository`` of :class:`eventstore.EventStore`."""

    def update(
        self,
        resource_type: type[R],
        resource_id: str,
        change: Callable[[R], R | None],
        *,
        event: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        default: R | None = None,
        max_attempts: int | None = None,
    ) -> Version[R]:
        """Read the latest version, call ``change(state)`` and append what it returns with the
        read version as ``expected_version``; on a conflict, read again and call ``change``
        again (with backoff and jitter), for up to the store's ``contention_budget`` seconds
        (10 by default), or up to ``max_attempts`` times if given, then raise the last
        :class:`ConcurrencyError`. Returns the new version.

        ``change`` must be a pure function of the state: it may run several times. It may return
        ``None`` (nothing to do: nothing is appended, the current version is returned) or raise
        to refuse (the exception propagates; nothing is written). A missing stream raises
        :class:`StreamNotFound`, unless ``default`` is given: the stream is then created from
        ``change(default)`` (create-or-update)."""
        cls = check_resource_class(resource_type)
        if not callable(change):
            raise WrongType(f"change must be a function of the state, got {change!r}")
        if max_attempts is not None and (
            isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
        ):
            raise InvalidInput(f"max_attempts must be an int >= 1 or None, got {max_attempts!r}")
        # Bounded by time by default, as ANY appends are: a count of attempts that holds for 2
        # writers of a stream runs out for 8 (one update in 80 did, at 10 attempts).
        backoff = Backoff(
            base=0.005,
            cap=0.5,
            attempts=max_attempts,
            budget=self.writer.contention_budget if max_attempts is None else None,
        )
        while True:
            try:
                current: Version[R] | None = self.read_version(cls, resource_id)
            except StreamNotFound:
                if default is None:
                    raise
                current = None
            new = change(current.state if current is not None else default)  # type: ignore[arg-type]
            if new is None:
                if current is None:
                    raise StreamNotFound(cls.resource_type, resource_id)
                return current
            if not isinstance(new, cls):
                raise WrongType(
                    f"change must return an instance of {cls.__name__}, or None; got {new!r}"
                )
            try:
                return self.append(
                    new,
                    resource_id=resource_id,
                    expected_version=NO_STREAM if current is None else current.version,
                    event=event,
                    metadata=metadata,
                )
            except ConcurrencyError:
                if not backoff.wait():
                    raise

    def read_many(
        self, resource_type: type[R], resource_ids: Iterable[str], *, consistent: bool = True
    ) -> dict[str, Version[R]]:
        """The latest version of each stream, keyed by id in the order given (duplicates once);
        ids of streams that do not exist are absent. On DynamoDB: one ``BatchGetItem`` per 100
        ids for the heads, then one per 50 for the versions and their keyframes."""
        cls = check_resource_class(resource_type)
        if isinstance(resource_ids, str) or not isinstance(resource_ids, Iterable):
            raise WrongType(
                f"resource_ids must be a collection of ids, got {type(resource_ids).__name__}"
            )
        ids = list(dict.fromkeys(check_resource_id(rid) for rid in resource_ids))
        keys = [records.head_key(stream_pk(cls.resource_type, rid)) for rid in ids]
        heads = self.backend.get(keys, consistent=consistent) if keys else []
        present = [
            (rid, head)
            for rid, head in zip(ids, heads, strict=True)
            if head is not None and not records.is_deleted(head)
        ]
        found: dict[str, Version[R]] = {}
        for start in range(0, len(present), 50):
            chunk = present[start : start + 50]
            versions = self.reader.named_by(cls, [h for _, h in chunk], consistent=consistent)
            for (rid, _), version in zip(chunk, versions, strict=True):
                if version is not None:
                    found[rid] = version
        return found

    def repository(self, resource_type: type[R]) -> Repository[R]:
        """A typed repository for one resource type: the store's operations with the type
        filled in (``get``, ``find``, ``exists``, ``save``, ``update``, ``history``, ``many``,
        ``list``, ``query``)."""
        # The whole store satisfies the protocol; this mixin alone does not.
        return Repository(cast("Store", self), check_resource_class(resource_type))
