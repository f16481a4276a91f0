"""What the store needs to know of a projection, and how index keys are written onto heads.

The ``projections`` package builds on this protocol; the store never imports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

from eventstore.backends.base import INDEXES, Value, index_keys
from eventstore.errors import ProjectionError
from eventstore.keys import check_type_name
from eventstore.resource import Resource, check_resource_class

#: Index slots projections may use; ``gsi0`` is the store's own listing of resources by type.
PROJECTION_INDEXES: tuple[str, ...] = tuple(name for name in INDEXES if name != "gsi0")
#: Longest key part a projection may return, in characters.
MAX_KEY_PART = 512


@runtime_checkable
class IndexProjection(Protocol):
    """A pure function of a resource's current state to one index entry.

    ``resource_class`` is the Resource subclass it applies to, ``name`` identifies it (same rules as
    a type name), ``index`` is the slot it uses (one of :data:`PROJECTION_INDEXES`), and ``key``
    returns ``(partition value, sort value)`` or ``None`` to leave the resource out of the index.
    """

    @property
    def resource_class(self) -> type[Resource]: ...

    @property
    def name(self) -> str: ...

    @property
    def index(self) -> str: ...

    def key(self, state: Any) -> tuple[str, str] | None: ...


R_contra = TypeVar("R_contra", bound=Resource, contravariant=True)


class KeyedBy(Protocol[R_contra]):
    """What a type checker sees of a projection: its ``key`` takes states of one resource class,
    so :meth:`EventStore.query` can type its items by that class (``Projection[Order]`` gives
    ``QueryPage[Order]``)."""

    def key(self, state: R_contra, /) -> tuple[str, str] | None: ...


def index_partition(type_name: str, projection_name: str, value: str) -> str:
    """The index partition key for a projection's partition value. Type and projection names cannot
    contain ``#``, so the value can be any string without aliasing another projection's keys."""
    return f"{type_name}#{projection_name}#{value}"


class IndexPlan:
    """The projections of a store, grouped by resource type and checked once at open."""

    def __init__(self, projections: Iterable[IndexProjection]) -> None:
        self._by_type: dict[str, list[IndexProjection]] = {}
        for projection in projections:
            if not isinstance(projection, IndexProjection):
                raise ProjectionError(f"{projection!r} is not a projection")
            cls = check_resource_class(projection.resource_class)
            try:
                check_type_name(projection.name)
            except ValueError as e:
                raise ProjectionError(f"projection name {projection.name!r}: {e}") from e
            if projection.index not in PROJECTION_INDEXES:
                raise ProjectionError(
                    f"projection {projection.name!r} uses index {projection.index!r}; "
                    f"choose one of {', '.join(PROJECTION_INDEXES)}"
                )
            claimed = self._by_type.setdefault(cls.resource_type, [])
            for other in claimed:
                if other.index == projection.index:
                    raise ProjectionError(
                        f"projections {other.name!r} and {projection.name!r} both claim index "
                        f"{projection.index!r} for {cls.resource_type}"
                    )
                if other.name == projection.name:
                    raise ProjectionError(
                        f"two projections named {projection.name!r} for {cls.resource_type}"
                    )
            claimed.append(projection)

    def for_type(self, type_name: str) -> list[IndexProjection]:
        return self._by_type.get(type_name, [])

    def find(self, type_name: str, name: str) -> IndexProjection | None:
        for projection in self.for_type(type_name):
            if projection.name == name:
                return projection
        return None

    def head_attributes(
        self, type_name: str, state: Resource
    ) -> tuple[dict[str, Value], frozenset[str]]:
        """Index attributes to set on the head, and the ones to remove, for ``state``.

        Raises :class:`ProjectionError` if a key function raises or returns a bad value."""
        to_set: dict[str, Value] = {}
        to_remove: set[str] = set()
        for projection in self.for_type(type_name):
            pk_attr, sk_attr = index_keys(projection.index)
            key = compute_key(projection, state)
            if key is None:
                to_remove.update((pk_attr, sk_attr))
            else:
                to_set[pk_attr] = index_partition(type_name, projection.name, key[0])
                to_set[sk_attr] = key[1]
        return to_set, frozenset(to_remove)


def compute_key(projection: IndexProjection, state: Resource) -> tuple[str, str] | None:
    """Call a projection's key function and check what it returns."""
    try:
        key = projection.key(state)
    except Exception as e:
        raise ProjectionError(f"projection {projection.name!r} failed: {e!r}") from e
    if key is None:
        return None
    if (
        not isinstance(key, tuple)
        or len(key) != 2
        or not all(isinstance(part, str) for part in key)
    ):
        raise ProjectionError(
            f"projection {projection.name!r} must return (str, str) or None, got {key!r}"
        )
    for part in key:
        if not part or len(part) > MAX_KEY_PART:
            raise ProjectionError(
                f"projection {projection.name!r} returned key part {part!r}: it must be 1 to "
                f"{MAX_KEY_PART} characters"
            )
        try:
            part.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ProjectionError(
                f"projection {projection.name!r} returned a key part that is not valid unicode"
            ) from e
    return key


def unchanged(
    head: Mapping[str, Value], to_set: Mapping[str, Value], to_remove: frozenset[str]
) -> bool:
    """Whether a head already carries exactly these index attributes."""
    return all(head.get(name) == value for name, value in to_set.items()) and not any(
        name in head for name in to_remove
    )
