"""The stored-layout invariants of a stream, checked from its raw items (shared by the audits of
the reliability suites)."""

from __future__ import annotations

from dataclasses import dataclass, field

from eventstore import EventStore, Resource
from eventstore.backends.base import Item
from eventstore.keys import HEAD_SK, parse_sk, stream_pk


def partition(store: EventStore, pk: str) -> list[Item]:
    """Every item of a partition, all pages."""
    items: list[Item] = []
    start: Item | None = None
    while True:
        page = store.backend.query(pk, start=start)
        items += page.items
        if page.last_key is None:
            return items
        start = page.last_key


@dataclass
class StreamItems:
    """A stream's stored items: its head, its versions by number, and what is wrong with them."""

    pk: str
    head: Item | None = None
    versions: dict[int, Item] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def numbers(self) -> list[int]:
        return sorted(self.versions)


def check_stream(store: EventStore, cls: type[Resource], rid: str) -> StreamItems | None:
    """Read a stream's raw items and check: one head; versions gapless; the head's ``v``/``id``
    are the newest version's and its ``lo`` the oldest's; no more than ``max_versions`` kept, and
    an untrimmed stream starts at 1. ``None`` when the partition is empty."""
    pk = stream_pk(cls.resource_type, rid)
    items = partition(store, pk)
    if not items:
        return None
    found = StreamItems(pk)
    heads = [item for item in items if item["sk"] == HEAD_SK]
    for item in items:
        parsed = parse_sk(str(item["sk"]))
        if parsed is not None and not parsed[1]:
            found.versions[parsed[0]] = item
    problems = found.problems
    if len(heads) != 1 or not found.versions:
        problems.append(f"{pk}: {len(heads)} heads, {len(found.versions)} versions")
        return found
    head = found.head = heads[0]
    numbers = found.numbers
    newest = found.versions[numbers[-1]]
    if numbers != list(range(numbers[0], numbers[-1] + 1)):
        problems.append(f"{pk}: versions not gapless: {numbers}")
    if head["v"] != numbers[-1] or head["id"] != newest["id"]:
        problems.append(
            f"{pk}: head v{head['v']} {head['id']} vs newest v{numbers[-1]} {newest['id']}"
        )
    if head["lo"] != numbers[0]:
        problems.append(f"{pk}: head lo {head['lo']} but oldest stored version {numbers[0]}")
    limit = cls.max_versions
    if limit is not None and len(numbers) > limit:
        problems.append(f"{pk}: {len(numbers)} versions kept, max_versions {limit}")
    if limit is None and numbers[0] != 1:
        problems.append(f"{pk}: untrimmed stream starts at v{numbers[0]}")
    return found
