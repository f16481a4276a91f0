"""Schema evolution on every backend: old versions stay readable when a model changes (upcasters,
step by step), what cannot be read is SchemaMismatch, reads never write, and ``eventstore check``
finds out before a deploy."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventstore
from eventstore import EventStore, Resource, SchemaMismatch
from eventstore.checking import check
from projections import Projection, rebuild

# One resource type through four schema versions. Each definition has the same module and
# qualified name, as a redeployed class would: the registry takes the newest.


def _v1() -> type[Resource]:
    class Item(Resource):
        __qualname__ = "Item"
        resource_type = "schema.Item"
        n: int
        note: str = ""

    return Item


def _v2() -> type[Resource]:
    class Item(Resource):  # a required field added: the upcaster fills it in
        __qualname__ = "Item"
        resource_type = "schema.Item"
        schema_version = 2
        upcasters = {1: lambda d: {**d, "label": f"item {d['n']}"}}
        n: int
        note: str = ""
        label: str

    return Item


def _v3() -> type[Resource]:
    class Item(Resource):  # n renamed to count
        __qualname__ = "Item"
        resource_type = "schema.Item"
        schema_version = 3
        upcasters = {
            1: lambda d: {**d, "label": f"item {d['n']}"},
            2: lambda d: {**{k: v for k, v in d.items() if k != "n"}, "count": d["n"]},
        }
        count: int
        note: str = ""
        label: str

    return Item


def _v4() -> type[Resource]:
    class Item(Resource):  # count changes type: int -> str
        __qualname__ = "Item"
        resource_type = "schema.Item"
        schema_version = 4
        upcasters = {
            1: lambda d: {**d, "label": f"item {d['n']}"},
            2: lambda d: {**{k: v for k, v in d.items() if k != "n"}, "count": d["n"]},
            3: lambda d: {**d, "count": str(d["count"])},
        }
        count: str
        note: str = ""
        label: str

    return Item


SCHEMAS = [_v1, _v2, _v3, _v4]


def upcast(data: dict[str, Any], stored: int) -> dict[str, Any]:
    """What the upcasters of the newest model make of data stored under ``stored`` (the
    reference the reads are checked against)."""
    newest = SCHEMAS[-1]()
    for k in range(stored, newest.schema_version):
        data = newest.upcasters[k](data)
    return data


def make(cls: type[Resource], n: int) -> Resource:
    schema = cls.schema_version
    if schema == 1:
        return cls(n=n, note=f"v1-{n}")
    if schema == 2:
        return cls(n=n, note=f"v2-{n}", label=f"L{n}")
    if schema == 3:
        return cls(count=n, note=f"v3-{n}", label=f"L{n}")
    return cls(count=str(n), note=f"v4-{n}", label=f"L{n}")


def _dump(store: EventStore) -> list[tuple[str, str, str]]:
    rows, start = [], None
    while True:
        page = store.backend.scan(start=start)
        rows += [(str(i["pk"]), str(i["sk"]), repr(sorted(i.items()))) for i in page.items]
        if page.last_key is None:
            return sorted(rows)
        start = page.last_key


def test_old_versions_read_as_the_new_model(store: EventStore) -> None:
    # 20 versions under schema 1 (a keyframe group and deltas), then the model changes twice.
    item = _v1()
    written = [store.append(make(item, 0), resource_id="i")]
    for n in range(1, 20):
        written.append(store.append(make(item, n), resource_id="i", expected_version=n))
    item = _v2()
    for n in range(20, 25):
        written.append(store.append(make(item, n), resource_id="i", expected_version=n))
    item = _v4()
    written.append(store.append(make(item, 25), resource_id="i", expected_version=25))
    before = _dump(store)
    got = list(store.read_stream(item, "i"))
    assert [v.schema_version for v in got] == [1] * 20 + [2] * 5 + [4]
    for v, w in zip(got, written, strict=True):
        stored = w.schema_version
        assert v.state.model_dump() == upcast(w.state.model_dump(), stored), v.version
    latest = store.read_version(item, "i")
    assert latest.state.model_dump() == {"count": "25", "note": "v4-25", "label": "L25"}
    assert store.read_version(item, "i", 4).state.model_dump() == {
        "count": "3",
        "note": "v1-3",
        "label": "item 3",
    }
    assert [v.state.count for v in store.replay(item)][:2] == ["0", "1"]
    assert _dump(store) == before  # history is never rewritten by a read


def test_what_cannot_be_read_is_schema_mismatch(store: EventStore) -> None:
    store.append(make(_v1(), 1), resource_id="i")
    store.append(make(_v2(), 2), resource_id="i", expected_version=1)

    class Item(Resource):  # schema 3 without the upcaster from 1
        __qualname__ = "Item"
        resource_type = "schema.Item"
        schema_version = 3
        upcasters = {2: lambda d: {**{k: v for k, v in d.items() if k != "n"}, "count": d["n"]}}
        count: int
        note: str = ""
        label: str

    with pytest.raises(SchemaMismatch) as info:
        store.read_version(Item, "i", 1)
    e = info.value
    assert (e.resource_type, e.resource_id, e.version, e.stored, e.current) == (
        "schema.Item",
        "i",
        1,
        1,
        3,
    )
    assert "no upcaster from schema 1" in str(e)
    assert store.read_version(Item, "i", 2).state.count == 2
    old = _v1()  # code older than the data
    with pytest.raises(SchemaMismatch, match="newer schema"):
        store.read_version(old, "i", 2)
    assert not issubclass(SchemaMismatch, eventstore.CorruptRecord)


def test_projections_and_heads_use_the_upcast_state(store_url: str) -> None:
    class ByLabel(Projection[Resource]):
        name = "by_label"
        index = "gsi1"
        resource_class = _v2()

        def key(self, item: Any) -> tuple[str, str]:
            return ("all", item.label)

    ByLabel.resource_class = _v1()
    store = eventstore.open(store_url)
    store.create_table(feed="inline")
    try:
        for n in range(3):
            store.append(make(_v1(), n), resource_id=f"i{n}")
        ByLabel.resource_class = _v2()
        indexed = EventStore(store.backend, projections=[ByLabel()])
        report = rebuild(indexed, ByLabel, segments=1, checkpoint=False)
        assert report.updated == 3
        page = indexed.query(ByLabel, "all")
        assert [v.state.label for v in page] == ["item 0", "item 1", "item 2"]
        # A new head after the change carries keys from the new state.
        indexed.update(_v2(), "i1", lambda s: s.model_copy(update={"label": "a first"}))
        assert indexed.query(ByLabel, "all").items[0].resource_id == "i1"
    finally:
        from tests.conftest import drop

        drop(store)


def test_check_reports_before_a_deploy(store: EventStore) -> None:
    for n in range(5):
        store.append(make(_v1(), n), resource_id=f"i{n}")
    store.append(make(_v2(), 9), resource_id="i0", expected_version=1)
    before = _dump(store)
    report = check(store, [_v4()])
    assert (report.streams, report.read, report.upcast, report.failures) == (5, 6, 6, [])
    broken = _v4()
    broken.upcasters = {k: v for k, v in broken.upcasters.items() if k != 1}
    report = check(store, [broken])
    assert (report.read, len(report.failures)) == (1, 5)
    assert {f.version for f in report.failures} == {1}
    assert all("no upcaster from schema 1" in f.reason for f in report.failures)
    assert _dump(store) == before
    _v4()  # leave the registry on a complete model


def test_check_command(sqlite_url: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from eventstore.cli import main

    store = eventstore.open(sqlite_url)
    store.append(make(_v1(), 1), resource_id="i")
    _v4()
    assert main(["check", sqlite_url, "tests.test_schema:CurrentItem"]) == 0
    assert "1 versions read fine (1 needed upcasting), 0 failed" in capsys.readouterr().out
    assert main(["check", sqlite_url, "tests.test_schema:NoSuch"]) == 2
    store.append(make(_v4(), 2), resource_id="j")
    assert main(["check", sqlite_url, "tests.test_schema:OldItem"]) == 1
    out = capsys.readouterr().out
    assert "FAIL schema.Item 'j' version 1" in out and "1 failed" in out
    assert out.count("'j' version 1") == 1  # the reason does not repeat what it names


def __getattr__(name: str) -> Any:
    # The check command imports classes by module:Class; these stand for the deployed model.
    if name == "CurrentItem":
        return _v4()
    if name == "OldItem":
        return _v3()
    raise AttributeError(name)


@settings(max_examples=30, deadline=None)
@given(steps=st.lists(st.sampled_from(["append", "append", "change"]), min_size=1, max_size=40))
def test_random_schema_changes_between_appends(steps: list[str]) -> None:
    store = eventstore.open("memory://")
    schema, version, written = 0, 0, []
    for step in steps:
        if step == "change" and schema < len(SCHEMAS) - 1:
            schema += 1
            continue
        cls = SCHEMAS[schema]()
        v = store.append(
            make(cls, version), resource_id="i", expected_version=version or eventstore.NO_STREAM
        )
        written.append((v.schema_version, v.state.model_dump()))
        version += 1
    newest = SCHEMAS[-1]()
    got = list(store.read_stream(newest, "i")) if written else []
    assert [(v.schema_version, v.state.model_dump()) for v in got] == [
        (stored, upcast(data, stored)) for stored, data in written
    ]
