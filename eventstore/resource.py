"""The user-facing models: :class:`Resource` (what users subclass) and :class:`Version` (what the
store returns)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from eventstore.errors import DuplicateResourceType, InvalidInput, WrongType
from eventstore.keys import check_type_name

_registry: dict[str, type[Resource]] = {}


class Resource(BaseModel):
    """Base class of resource types: a pydantic v2 model whose instances are stored as versions.

    Class attributes (not fields):

    - ``resource_type``: the stable type name stored in keys; defaults to the class name. Rename
      the class freely once this is set explicitly.
    - ``max_versions``: keep at most this many versions per stream (``None``: keep all); older ones
      are removed by the append that passes the limit, in the same atomic write.
    - ``max_age``: versions older than this (by ``recorded_at``) are not returned by reads and are
      removed from storage (DynamoDB's TTL; ``store.purge()`` elsewhere). The latest version of
      a resource never expires.
    - ``schema_version``: the version of the model's data shape, stored with every version
      (default 1). Raise it when the model changes in a way old data does not fit.
    - ``upcasters``: for each older schema ``k``, a function turning data (a dict) of schema ``k``
      into data of schema ``k + 1``. Reads apply them step by step, then validate; history is
      never rewritten.
    - ``encrypted``: store the states sealed with the data key of their subject (AES-256-GCM),
      so that ``store.shred(subject)`` makes every copy unreadable; needs a store opened with
      ``keys=``. The subject is the stream (``"<type>#<id>"``) unless the class defines a method
      ``subject(self) -> str`` (all streams about one person under one key); it must give the
      same subject for every version of a stream. See docs/encryption.md.

    States must survive a JSON round trip: bytes are stored as base64, NaN and infinite floats are
    refused.
    """

    model_config = ConfigDict(
        ser_json_bytes="base64",
        val_json_bytes="base64",
        # Written as bare NaN/Infinity tokens so the store can find and refuse them anywhere,
        # also inside Any-typed fields where a "NaN" string would pass validation.
        ser_json_inf_nan="constants",
        allow_inf_nan=False,
    )

    resource_type: ClassVar[str]
    max_versions: ClassVar[int | None] = None
    max_age: ClassVar[timedelta | None] = None
    schema_version: ClassVar[int] = 1
    upcasters: ClassVar[Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {}
    encrypted: ClassVar[bool] = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "resource_type" not in cls.__dict__:
            cls.resource_type = cls.__name__
        check_type_name(cls.resource_type)
        limit = cls.max_versions
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise InvalidInput(f"{cls.__name__}.max_versions must be a positive int or None")
        age = cls.max_age
        if age is not None and (not isinstance(age, timedelta) or age <= timedelta(0)):
            raise InvalidInput(f"{cls.__name__}.max_age must be a positive timedelta or None")
        schema = cls.schema_version
        if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
            raise InvalidInput(f"{cls.__name__}.schema_version must be an int >= 1")
        if not isinstance(cls.upcasters, Mapping) or not all(
            isinstance(k, int) and 1 <= k < schema and callable(f) for k, f in cls.upcasters.items()
        ):
            raise InvalidInput(
                f"{cls.__name__}.upcasters must map schema versions below {schema} to functions"
            )
        if not isinstance(cls.encrypted, bool):
            raise InvalidInput(f"{cls.__name__}.encrypted must be True or False")
        taken = _registry.get(cls.resource_type)
        if taken is not None and _identity(taken) != _identity(cls):
            raise DuplicateResourceType(cls.resource_type, _identity(taken), _identity(cls))
        # Redefining the same class (a notebook cell run again, a reloaded module) replaces it.
        _registry[cls.resource_type] = cls


#: Longest subject name accepted (it is stored in each encrypted item and in the key store).
MAX_SUBJECT_LENGTH = 512


def defines_subject(cls: type[Resource]) -> bool:
    """Whether an encrypted type names its subjects itself (a ``subject()`` method) rather than
    each stream being its own."""
    return callable(getattr(cls, "subject", None))


def subject_of(state: Resource, pk: str) -> str:
    """The subject whose key seals ``state``: its ``subject()`` if its class defines one, else
    the stream's partition key. :class:`InvalidInput` for a subject that is not a non-empty str
    of at most :data:`MAX_SUBJECT_LENGTH` characters."""
    if not defines_subject(type(state)):
        return pk
    found = state.subject()  # type: ignore[attr-defined]
    if not isinstance(found, str) or not 0 < len(found) <= MAX_SUBJECT_LENGTH:
        raise InvalidInput(
            f"{type(state).__name__}.subject() must return a non-empty str of at most "
            f"{MAX_SUBJECT_LENGTH} characters, got {found!r:.80}"
        )
    return found


def _identity(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def resource_class(type_name: str) -> type[Resource] | None:
    """The most recently defined Resource subclass with this type name, if any."""
    return _registry.get(type_name)


R = TypeVar("R", bound=Resource)


def registered_types() -> list[type[Resource]]:
    """Every Resource subclass defined in this process, by type name."""
    return [_registry[name] for name in sorted(_registry)]


def check_resource_class(cls: type[R]) -> type[R]:
    """Return ``cls`` if it is a Resource subclass; :class:`WrongType` otherwise."""
    if not (isinstance(cls, type) and issubclass(cls, Resource) and cls is not Resource):
        raise WrongType(f"expected a Resource subclass, got {cls!r}")
    return cls


@dataclass(frozen=True, slots=True)
class Version(Generic[R]):
    """One immutable version of a stream, as stored.

    ``version`` counts from 1 without gaps; ``version_id`` is a ULID, unique in the table and
    increasing within the stream; ``recorded_at`` is the UTC time in the version id (milliseconds);
    ``metadata`` is a read-only dict; ``position`` is the version's place in the change feed. A version pickles, deep-copies, and validates and dumps
    with ``pydantic.TypeAdapter(Version[T])``; ``json.dumps(v.metadata)`` works.
    """

    resource_type: str
    resource_id: str
    version: int
    version_id: str
    recorded_at: datetime
    state: R
    event: str | None
    metadata: Mapping[str, Any]
    #: The schema its state was stored under (its state is shown upcast to the current one).
    schema_version: int = 1
    #: Where this version stands in its feed partition (1, 2, 3, ... in commit order, without
    #: gaps); ``None`` for versions written to a table without a feed.
    position: int | None = None
    #: The version that deleted the resource (:meth:`EventStore.delete`): its state is the last
    #: one the resource had.
    deleted: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.metadata, FrozenDict):
            object.__setattr__(self, "metadata", FrozenDict(self.metadata))


class FrozenDict(dict[str, Any]):
    """A dict that refuses changes, so it serialises, pickles and copies like any dict."""

    def _read_only(self, *args: object, **kwargs: object) -> Any:
        raise TypeError("version metadata is read-only")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return FrozenDict(copy.deepcopy(dict(self), memo))


def resource_classes(classes: object) -> list[type[Resource]]:
    """Resource classes given as classes or as type names (of classes defined in this process);
    :class:`WrongType` for anything else, :class:`InvalidInput` for an unknown name."""
    if isinstance(classes, (str, type)) or not isinstance(classes, Iterable):
        raise WrongType("give a list of Resource classes (or type names), not one")
    found: list[type[Resource]] = []
    for one in classes:
        if isinstance(one, str):
            cls = resource_class(one)
            if cls is None:
                raise InvalidInput(f"no Resource class of type {one!r} is defined in this process")
            found.append(cls)
        else:
            found.append(check_resource_class(one))
    return found
