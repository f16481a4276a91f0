"""OpenTelemetry tracing: one span per store operation (``pip install eventstore[otel]``).

::

    from eventstore.integrations.otel import instrument

    store = instrument(eventstore.open("dynamodb://orders?region=eu-west-1"))

Each call of a traced method becomes a span named ``eventstore.<method>`` (``eventstore.append``,
``eventstore.read_stream``, ...) in the current trace, with these attributes when they apply:

- ``db.system``: ``dynamodb`` or ``sqlite``;
- ``eventstore.resource_type``, ``eventstore.resource_id``: the stream the call is about;
- ``eventstore.version``, ``eventstore.position``: the version written or read, and its feed
  position;
- ``eventstore.items``: how many versions a listing, query or read of many returned (for a lazy
  read such as ``read_stream``, how many were taken before it ended);
- ``eventstore.requests``, ``eventstore.read_units``, ``eventstore.write_units``: the requests the
  call sent (retries included) and the capacity DynamoDB reported for them (0 on SQLite);
- on failure the exception is recorded and the status is ERROR; a conflict adds
  ``eventstore.expected`` and ``eventstore.actual``.

A lazy read's span lasts from the call until the iteration ends. Only the OpenTelemetry API is
needed; without an SDK configured the spans cost next to nothing.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer, TracerProvider

from eventstore import __version__
from eventstore.errors import ConcurrencyError
from eventstore.querying import QueryPage
from eventstore.resource import Resource, Version
from eventstore.store import EventStore

#: Methods whose work is done when they return.
EAGER = (
    "append",
    "append_many",
    "update",
    "delete",
    "erase",
    "purge",
    "read_version",
    "read_many",
    "query",
    "list_resources",
    "last_position",
    "create_table",
)
#: Methods that return an iterator: their span ends with the iteration.
LAZY = ("read_stream", "replay", "feed", "feed_entries")

_Attributes = dict[str, str | int | float]
# Set while a traced call runs: the store's methods call each other (append calls append_many,
# update calls read_version and append), and only the outer call is the user's operation.
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("eventstore_traced", default=False)


def instrument(store: EventStore, *, tracer_provider: TracerProvider | None = None) -> EventStore:
    """Trace ``store``'s operations (see the module's documentation) with a tracer from
    ``tracer_provider`` (default: the global one); returns the same store."""
    tracer = trace.get_tracer("eventstore", __version__, tracer_provider=tracer_provider)
    system = "dynamodb" if type(store.backend).__name__.startswith("DynamoDB") else "sqlite"
    for name in EAGER:
        setattr(store, name, _eager(store, tracer, system, name, getattr(store, name)))
    for name in LAZY:
        setattr(store, name, _lazy(store, tracer, system, name, getattr(store, name)))
    return store


def _about(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Attributes:
    """The stream a call names: a state or a resource class first, then maybe an id."""
    found: _Attributes = {}
    first = args[0] if args else None
    if isinstance(first, Resource):
        found["eventstore.resource_type"] = type(first).resource_type
    elif isinstance(first, type) and issubclass(first, Resource) and first is not Resource:
        found["eventstore.resource_type"] = first.resource_type
    rid = kwargs.get("resource_id", args[1] if len(args) > 1 else None)
    if isinstance(rid, str):
        found["eventstore.resource_id"] = rid
    return found


def _outcome(result: object) -> _Attributes:
    if isinstance(result, Version):
        found: _Attributes = {
            "eventstore.resource_type": result.resource_type,
            "eventstore.resource_id": result.resource_id,
            "eventstore.version": result.version,
        }
        if result.position is not None:
            found["eventstore.position"] = result.position
        return found
    if isinstance(result, (list, dict, QueryPage)):
        return {"eventstore.items": len(result)}
    return {}


def _finish(span: Span, store: EventStore, before: Any, error: BaseException | None) -> None:
    spent = store.backend.usage() - before
    span.set_attributes(
        {
            "eventstore.requests": spent.requests,
            "eventstore.read_units": spent.read_units,
            "eventstore.write_units": spent.write_units,
        }
    )
    if error is not None:
        if isinstance(error, ConcurrencyError):
            span.set_attribute("eventstore.expected", str(error.expected))
            span.set_attribute("eventstore.actual", error.actual)
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end()


def _eager(
    store: EventStore, tracer: Tracer, system: str, name: str, method: Callable[..., Any]
) -> Callable[..., Any]:
    @functools.wraps(method)
    def traced(*args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return method(*args, **kwargs)
        attributes: _Attributes = {"db.system": system, **_about(args, kwargs)}
        with tracer.start_as_current_span(
            f"eventstore.{name}",
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
            end_on_exit=False,
        ) as span:
            before = store.backend.usage()
            token = _inside.set(True)
            try:
                result = method(*args, **kwargs)
            except BaseException as e:
                _finish(span, store, before, e)
                raise
            finally:
                _inside.reset(token)
            span.set_attributes(_outcome(result))
            _finish(span, store, before, None)
            return result

    return traced


def _lazy(
    store: EventStore, tracer: Tracer, system: str, name: str, method: Callable[..., Any]
) -> Callable[..., Any]:
    @functools.wraps(method)
    def traced(*args: Any, **kwargs: Any) -> Iterator[Any]:
        if _inside.get():
            inner: Iterator[Any] = method(*args, **kwargs)
            return inner
        attributes: _Attributes = {"db.system": system, **_about(args, kwargs)}
        span = tracer.start_span(f"eventstore.{name}", attributes=attributes)
        before = store.backend.usage()
        try:
            # Called now, so that bad arguments raise here as they do untraced.
            inner = method(*args, **kwargs)
        except BaseException as e:
            _finish(span, store, before, e)
            raise
        return _iterate(span, store, before, inner)

    return traced


def _iterate(span: Span, store: EventStore, before: Any, inner: Iterator[Any]) -> Iterator[Any]:
    taken = 0
    error: BaseException | None = None
    try:
        # Not made the current span: the caller's own work between items is not part of it.
        for item in inner:
            taken += 1
            yield item
    except GeneratorExit:
        raise  # the caller stopped early: not an error
    except BaseException as e:
        error = e
        raise
    finally:
        span.set_attribute("eventstore.items", taken)
        _finish(span, store, before, error)
