"""OpenTelemetry spans, read back with the SDK's in-memory exporter: one span per operation with
its type, stream, version, requests and capacity; errors recorded; lazy reads end their span with
the iteration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from eventstore import ConcurrencyError, EventStore, StreamNotFound
from eventstore.integrations.otel import instrument
from tests.models import Order


@pytest.fixture
def traced(store: EventStore) -> Iterator[tuple[EventStore, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield instrument(store, tracer_provider=provider), exporter
    provider.shutdown()


def spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    found = list(exporter.get_finished_spans())
    exporter.clear()
    return found


def test_one_span_per_operation(traced: tuple[EventStore, InMemorySpanExporter]) -> None:
    store, exporter = traced
    dynamodb = type(store.backend).__name__.startswith("DynamoDB")
    v1 = store.append(Order(customer="ada"), event="opened")
    (span,) = spans(exporter)
    assert span.name == "eventstore.append"
    attributes = dict(span.attributes or {})
    assert attributes["db.system"] == ("dynamodb" if dynamodb else "sqlite")
    assert attributes["eventstore.resource_type"] == "Order"
    assert attributes["eventstore.resource_id"] == v1.resource_id
    assert attributes["eventstore.version"] == 1
    assert attributes.get("eventstore.position") == v1.position
    if dynamodb:
        # A lone writer's append: one request, and DynamoDB's own count of write units.
        assert attributes["eventstore.requests"] == 1
        assert float(attributes["eventstore.write_units"]) > 0
        assert attributes["eventstore.read_units"] == 0
    else:
        assert attributes["eventstore.requests"] == 0

    store.read_version(Order, v1.resource_id)
    (span,) = spans(exporter)
    assert (span.name, span.attributes["eventstore.version"]) == ("eventstore.read_version", 1)  # type: ignore[index]
    if dynamodb:
        assert span.attributes["eventstore.requests"] == 1  # type: ignore[index]
        assert float(span.attributes["eventstore.read_units"]) > 0  # type: ignore[index,arg-type]

    store.update(Order, v1.resource_id, lambda o: o.model_copy(update={"status": "paid"}))
    # update reads and appends through the store's own methods: one span, counting it all.
    (span,) = spans(exporter)
    assert (span.name, span.attributes["eventstore.version"]) == ("eventstore.update", 2)  # type: ignore[index]
    if dynamodb:
        assert span.attributes["eventstore.requests"] == 2  # type: ignore[index]


def test_errors_are_recorded(traced: tuple[EventStore, InMemorySpanExporter]) -> None:
    store, exporter = traced
    v1 = store.append(Order(customer="ada"))
    spans(exporter)
    with pytest.raises(ConcurrencyError):
        store.append(Order(customer="bob"), resource_id=v1.resource_id, expected_version=5)
    (span,) = spans(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["eventstore.expected"] == "5"  # type: ignore[index]
    assert span.attributes["eventstore.actual"] == 1  # type: ignore[index]
    assert [e.name for e in span.events] == ["exception"]
    with pytest.raises(StreamNotFound):
        store.read_version(Order, "nobody")
    (span,) = spans(exporter)
    assert span.status.status_code is StatusCode.ERROR


def test_lazy_reads_end_their_span_with_the_iteration(
    traced: tuple[EventStore, InMemorySpanExporter],
) -> None:
    store, exporter = traced
    v = store.append(Order(customer="ada"), resource_id="o-1")
    for n in range(2, 6):
        v = store.append(
            Order(customer="ada", total_cents=n), resource_id="o-1", expected_version=v.version
        )
    spans(exporter)
    stream = store.read_stream(Order, "o-1")
    assert spans(exporter) == []  # nothing read yet
    taken = [next(stream).version, next(stream).version]
    assert taken == [1, 2] and spans(exporter) == []
    stream.close()  # the caller stops early: the span ends, without an error
    (span,) = spans(exporter)
    assert span.name == "eventstore.read_stream"
    assert span.attributes["eventstore.items"] == 2  # type: ignore[index]
    assert span.status.status_code is StatusCode.UNSET
    assert len(list(store.read_stream(Order, "o-1"))) == 5
    (span,) = spans(exporter)
    assert span.attributes["eventstore.items"] == 5  # type: ignore[index]
    # Bad arguments still raise at the call, as they do untraced.
    with pytest.raises(ValueError):
        store.read_stream(Order, "o-1", start=0)
    (span,) = spans(exporter)
    assert span.status.status_code is StatusCode.ERROR
