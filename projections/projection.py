"""Declaring a projection: a pure function of a resource's current state to one index entry."""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar, get_args, get_origin

from eventstore.errors import ProjectionError
from eventstore.indexing import PROJECTION_INDEXES
from eventstore.keys import check_type_name
from eventstore.resource import Resource

R = TypeVar("R", bound=Resource)


class Projection(Generic[R]):
    """Base class of projections. Subclass it with the resource type as the parameter::

        class OrdersByStatus(Projection[Order]):
            name = "by_status"      # stable; part of the stored index keys (default: class name)
            index = "gsi1"          # the index slot it uses: gsi1 to gsi4
            def key(self, order: Order) -> tuple[str, str] | None:
                return (order.status, order.customer)

    ``key`` returns ``(partition, sort)``, two non-empty strings of at most 512 characters, or
    ``None`` to leave the resource out of the index (a sparse index). It must be a pure function
    of the state: the store calls it on every append, and a rebuild calls it again on the stored
    states. An exception in it fails the append with nothing written.

    The class is checked when it is defined (:class:`~eventstore.ProjectionError` for a bad name
    or index). Instances carry no state of their own; the store takes the instances it is opened
    with, and queries and rebuilds accept the class or an instance.
    """

    #: The resource class, taken from ``Projection[...]``; may also be set directly.
    resource_class: ClassVar[type[Resource]]
    #: The projection's stable name: a letter, then letters, digits, ``_``, ``.`` or ``-``.
    name: ClassVar[str]
    #: The index slot: one of ``gsi1``..``gsi4``.
    index: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found = _resource_parameter(cls)
        if found is not None:
            cls.resource_class = found
        if getattr(cls, "resource_class", None) is None:
            return  # a generic intermediate base class, still parameterised by a type variable
        if not (isinstance(cls.resource_class, type) and issubclass(cls.resource_class, Resource)):
            raise ProjectionError(f"{cls.__name__}.resource_class must be a Resource subclass")
        if not any("name" in base.__dict__ for base in cls.__mro__[:-2]):
            cls.name = cls.__name__
        try:
            check_type_name(cls.name)
        except ValueError as e:
            raise ProjectionError(f"{cls.__name__}: projection name {cls.name!r}: {e}") from e
        index = getattr(cls, "index", None)
        if index not in PROJECTION_INDEXES:
            raise ProjectionError(
                f"{cls.__name__}.index is {index!r}; choose one of {', '.join(PROJECTION_INDEXES)}"
            )
        if cls.key is Projection.key:
            raise ProjectionError(f"{cls.__name__} must define key(self, state)")

    def key(self, state: R) -> tuple[str, str] | None:
        """The index entry of ``state``: ``(partition, sort)``, or ``None`` for no entry."""
        raise NotImplementedError

    def __repr__(self) -> str:
        resource = getattr(type(self), "resource_class", None)
        of = resource.__name__ if resource is not None else "?"
        return (
            f"<projection {getattr(self, 'name', '?')!r} of {of} on {getattr(self, 'index', '?')}>"
        )


def _resource_parameter(cls: type) -> type[Resource] | None:
    """The Resource class given as the parameter of a ``Projection[...]`` base, if any."""
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = get_origin(base)
        if not (isinstance(origin, type) and issubclass(origin, Projection)):
            continue
        args = get_args(base)
        if not args or isinstance(args[0], TypeVar):
            continue
        if isinstance(args[0], type) and issubclass(args[0], Resource):
            return args[0]
        raise ProjectionError(
            f"{cls.__name__}: Projection[...] takes a Resource subclass, got {args[0]!r} "
            "(forward references are not resolved; use the class itself)"
        )
    return None


def as_projection(projection: object) -> Projection[Any]:
    """An instance of a projection given as a class or an instance."""
    if isinstance(projection, type) and issubclass(projection, Projection):
        if getattr(projection, "resource_class", None) is None:
            raise ProjectionError(f"{projection.__name__} has no resource type (Projection[...])")
        instance: Projection[Any] = projection()
        return instance
    if isinstance(projection, Projection):
        return projection
    raise ProjectionError(f"expected a Projection subclass or instance, got {projection!r}")
