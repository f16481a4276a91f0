"""What the mixins of :class:`eventstore.EventStore` (``everyday``, ``ending``) use of it,
declared once for the type checker; ``EventStore`` itself defines all of it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from eventstore.backends.base import Backend, Item
from eventstore.indexer import Indexer
from eventstore.inputs import NO_STREAM, Expect
from eventstore.positions import FeedClock
from eventstore.reading import Reader
from eventstore.resource import Resource, Version
from eventstore.writing import Writer

R = TypeVar("R", bound=Resource)


class StoreSurface:
    """The attributes and methods of the store its mixins call."""

    backend: Backend
    reader: Reader
    clock: FeedClock
    writer: Writer
    indexer: Indexer

    if TYPE_CHECKING:  # defined by EventStore

        def read_version(
            self,
            resource_type: type[R],
            resource_id: str,
            version: int | str | None = None,
            *,
            consistent: bool = True,
        ) -> Version[R]: ...

        def append(
            self,
            state: R,
            *,
            resource_id: str | None = None,
            expected_version: int | Expect = NO_STREAM,
            event: str | None = None,
            metadata: Mapping[str, Any] | None = None,
        ) -> Version[R]: ...

        def heads(
            self, resource_type: type[Resource], *, reverse: bool = False
        ) -> Iterator[Item]: ...

        def deleted_heads(self, resource_type: type[Resource]) -> Iterator[Item]: ...
