"""Resource types shared by the tests."""

from __future__ import annotations

from eventstore import Resource


class Order(Resource):
    customer: str
    status: str = "new"
    total_cents: int = 0
    lines: list[str] = []


class Note(Resource):
    """A resource with a retention limit."""

    max_versions = 5
    text: str


class Blob(Resource):
    """Large, incompressible payloads (trimming and size tests)."""

    max_versions = 5
    data: bytes
