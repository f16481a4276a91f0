"""Checking what callers pass to an append: the ``expected_version`` sentinels, event names,
metadata and states. Everything here raises a typed error before anything is sent."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Final, Generic, TypeVar

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from eventstore import roundtrip
from eventstore.errors import InvalidInput, InvalidState, WrongType
from eventstore.ids import new_resource_id
from eventstore.keys import check_resource_id, check_type_name
from eventstore.resource import FrozenDict, Resource

R = TypeVar("R", bound=Resource)

#: Longest event name, in characters.
MAX_EVENT_LENGTH = 256


class Expect(enum.Enum):
    """Sentinels for ``expected_version``."""

    NO_STREAM = "NO_STREAM"
    ANY = "ANY"

    def __repr__(self) -> str:
        return self.value

    __str__ = __repr__


#: ``expected_version=NO_STREAM``: the stream must not exist yet (the default).
NO_STREAM: Final = Expect.NO_STREAM
#: ``expected_version=ANY``: append whatever the stream's version.
ANY: Final = Expect.ANY


@dataclass(frozen=True, slots=True)
class Append(Generic[R]):
    """One append of an atomic commit (:meth:`EventStore.append_many`), with the same meaning
    and checks as the arguments of :meth:`EventStore.append`; bad arguments raise here.

    Without ``resource_id`` the append starts a new stream whose id (a new ULID) is chosen when
    the ``Append`` is made, so handing the same ``Append`` to a retried commit cannot create a
    second stream."""

    state: R
    _: KW_ONLY
    resource_id: str = None  # type: ignore[assignment]
    expected_version: int | Expect = NO_STREAM
    event: str | None = None
    metadata: Mapping[str, Any] | None = None
    metadata_json: str | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.state, Resource):
            raise WrongType(f"append takes a Resource instance, got {type(self.state).__name__}")
        rid = new_resource_id() if self.resource_id is None else check_resource_id(self.resource_id)
        object.__setattr__(self, "resource_id", rid)
        object.__setattr__(self, "expected_version", check_expected(self.expected_version))
        check_event(self.event)
        object.__setattr__(self, "metadata_json", metadata_json(self.metadata))
        if self.metadata is not None:
            object.__setattr__(self, "metadata", FrozenDict(self.metadata))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Move the checkpoint called ``name`` from ``previous`` to ``position`` (feed positions; 0:
    none saved yet), provided it is still at ``previous``. Given to
    :meth:`EventStore.append_many`, it moves in the same atomic write as the commit: a projector
    that writes into the store applies each version exactly once, across crashes."""

    name: str
    previous: int
    position: int

    def __post_init__(self) -> None:
        check_type_name(self.name)
        for what in ("previous", "position"):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput(f"checkpoint {what} must be an int >= 0, got {value!r}")
        if self.position < self.previous:
            raise InvalidInput("a checkpoint never moves backwards")


def check_expected(expected: object) -> int | Expect:
    if isinstance(expected, Expect):
        return expected
    if isinstance(expected, bool) or not isinstance(expected, int):
        raise InvalidInput(
            f"expected_version must be an int >= 1, NO_STREAM or ANY, got {expected!r}"
        )
    if expected < 1:
        raise InvalidInput(
            f"expected_version must be >= 1 (use NO_STREAM for a new stream), got {expected}"
        )
    return expected


def check_event(event: object) -> str | None:
    if event is not None and (not isinstance(event, str) or not 0 < len(event) <= MAX_EVENT_LENGTH):
        raise InvalidInput(f"event must be a str of 1 to {MAX_EVENT_LENGTH} characters")
    return event


def metadata_json(metadata: Mapping[str, Any] | None) -> str | None:
    """Metadata as compact JSON text (``None`` when empty)."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise WrongType(f"metadata must be a mapping, got {type(metadata).__name__}")
    if not all(isinstance(k, str) for k in metadata):
        raise WrongType("metadata keys must be strings")
    try:
        text = json.dumps(
            dict(metadata), allow_nan=False, separators=(",", ":"), ensure_ascii=False
        )
        text.encode("utf-8")
        same = json.loads(text) == metadata
    except UnicodeEncodeError as e:
        raise InvalidInput("metadata contains a lone surrogate character") from e
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidInput(f"metadata must be JSON-serialisable: {e!s:.200}") from e
    if not same:
        # json.dumps quietly turns int keys into strings and tuples into lists; refuse rather
        # than store something that reads back different.
        raise InvalidInput("metadata must be plain JSON: str keys, lists, numbers, str, bool, None")
    return text if metadata else None


def serialize(state: R, max_size: int) -> tuple[bytes, R]:
    """The JSON to store for ``state`` and the state it reads back as, which must equal
    ``state``: a value JSON would change (a sub-minute UTC offset, a field holding a subclass, a
    validator that is not idempotent) or cannot read back (an int over 4,300 digits, NaN) is
    :class:`InvalidState`, never stored altered."""
    name = type(state).__name__
    try:
        # By alias: what validation reads (a model with aliases need not populate by name).
        data = state.__pydantic_serializer__.to_json(state, by_alias=True)
    except (PydanticSerializationError, ValueError, TypeError) as e:
        raise InvalidState(f"{name} cannot be serialised: {e}") from e
    if (b"NaN" in data or b"Infinity" in data) and _has_non_finite(data):
        raise InvalidState(f"{name} holds a NaN or infinite float")
    if len(data) > max_size:
        raise InvalidState(f"state is {len(data)} bytes of JSON, over {max_size}")
    plain = roundtrip.plain(type(state))
    if plain is not None and plain.check(state):
        # Made of plain values only: the check below cannot fail, and the copy is what it
        # would return (the caller keeps its own object).
        return data, plain.copy(state)
    try:
        clean = type(state).__pydantic_validator__.validate_json(data)
    except ValidationError as e:
        raise InvalidState(
            f"{name} does not read back from its JSON: {e}", e.errors(include_url=False)
        ) from e
    if clean != state:
        fields = [f for f in type(state).model_fields if getattr(clean, f) != getattr(state, f)]
        raise InvalidState(
            f"{name} would not read back as written (fields {', '.join(fields) or '?'} change "
            "in JSON, e.g. a UTC offset with seconds or a value of a subclass); nothing stored"
        )
    return data, clean


def _has_non_finite(data: bytes) -> bool:
    """Whether JSON text holds a NaN or infinity token (outside strings)."""

    def refuse(token: str) -> Any:
        raise _NonFinite(token)

    try:
        # parse_int: digits stay text, so an int longer than Python's conversion limit is no error.
        json.loads(data, parse_constant=refuse, parse_int=str)
    except _NonFinite:
        return True
    return False


class _NonFinite(Exception):
    pass
