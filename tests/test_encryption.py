"""Encrypted states and crypto-shredding, on every backend: no plaintext in the table, a shredded
subject unreadable in every copy, tampering detected, one key per subject under concurrency."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import eventstore
from eventstore import (
    Append,
    ConcurrencyError,
    CorruptRecord,
    EventStore,
    InvalidInput,
    KeysMissing,
    Resource,
    Shredded,
    StreamNotFound,
    SubjectChanged,
    VersionNotFound,
    records,
)
from eventstore.backends.base import Backend, Put, Update
from eventstore.encryption import KmsKeyProvider, LocalKeyProvider, default_key_store
from eventstore.encryption.keystore import KeyStore
from eventstore.keys import stream_pk, version_sk
from eventstore.local import free_port
from eventstore.urls import backend_from_url
from tests.conftest import (
    DYNAMODB_ENDPOINT,
    FEED,
    blobs_url,
    drop,
    dynamodb_url,
    make_url,
    new_table_name,
    raw_items,
    scanned,
)
from tests.interleaving import Interleaving

SECRET = "ZEBRA-QUOKKA-" * 40  # a long, distinctive string to look for in raw bytes
MASTER = bytes(range(32))


class Patient(Resource):
    resource_type = "enc.Patient"
    encrypted = True
    name: str
    notes: str


class Visit(Resource):
    """Every visit of one person shares the person's key."""

    resource_type = "enc.Visit"
    encrypted = True
    person: str
    notes: str

    def subject(self) -> str:
        return f"person:{self.person}"


class Plain(Resource):
    resource_type = "enc.Plain"
    notes: str


def key_store_of(url: str) -> Backend:
    return backend_from_url(default_key_store(url))


@pytest.fixture
def sealed(store_url: str) -> Iterator[EventStore]:
    """A store with a key provider, on a fresh table and key store; its key store backend is
    shared by the stores a test makes on the same table."""
    keys = key_store_of(store_url)
    store = EventStore(
        backend_from_url(store_url),
        keys=LocalKeyProvider(MASTER),
        key_store=keys,
        owns_backend=True,
    )
    store.create_table(feed=FEED)
    try:
        yield store
    finally:
        drop(store)
        delete = getattr(keys, "delete_table", None)
        if delete is not None:
            delete()


def history(store: EventStore, rid: str, n: int, prefix: str = "") -> list[Patient]:
    states = [Patient(name=f"{prefix}Ada {rid}", notes=f"{SECRET}{i}") for i in range(n)]
    store.append(states[0], resource_id=rid)
    for i, state in enumerate(states[1:], start=1):
        store.append(state, resource_id=rid, expected_version=i)
    return states


def test_no_plaintext_reaches_the_table(sealed: EventStore) -> None:
    """Keyframes, deltas, whole states and feed items hold no byte of the state."""
    states = history(sealed, "p1", 20)
    assert [v.state for v in sealed.read_stream(Patient, "p1")] == states
    assert [v.state for v in sealed.feed() if v.resource_type == "enc.Patient"] == states
    sealed.append(Plain(notes=SECRET), resource_id="plain")  # the control: plaintext is seen
    needle = b"ZEBRA-QUOKKA"
    holding = [
        i for i in raw_items(sealed) if any(needle in v for v in i.values() if isinstance(v, bytes))
    ]
    assert [str(i[records.PK]) for i in holding] == ["enc.Plain#plain"] * len(holding)
    assert holding  # the plain type's state is there, compressed but readable: the test can see
    encrypted = [i for i in raw_items(sealed) if i.get(records.SUBJECT) == "enc.Patient#p1"]
    kinds = {p[1] if (p := records.sort_position(i)) else "head" for i in encrypted}
    assert kinds == {True, False, "head"}  # keyframes and versions sealed; the head names it
    path = getattr(sealed.backend.inner, "path", None)  # type: ignore[attr-defined]
    if path and path != ":memory:":
        assert needle not in Path(path).read_bytes()


def test_a_copy_of_the_table_is_unreadable_once_the_subject_is_shredded(
    sealed: EventStore, tmp_path: Path
) -> None:
    history(sealed, "p1", 5)
    history(sealed, "p2", 3, prefix="other ")
    copied = raw_items(sealed)
    # A backup: every raw item, loaded into a fresh table, opened with the same provider and
    # key store.
    backup = EventStore(
        backend_from_url(f"sqlite:///{tmp_path / 'backup.db'}"),
        keys=LocalKeyProvider(MASTER),
        key_store=sealed.backend.keys.store.backend,  # type: ignore[attr-defined]
    )
    backup.create_table()
    inner = backup.backend.inner  # type: ignore[attr-defined]
    for start in range(0, len(copied), 50):
        inner.write(
            [
                Put({k: v for k, v in i.items() if k not in ("fp", "p")})
                for i in copied[start : start + 50]
            ]
        )
    assert backup.read_version(Patient, "p1", 3).state.notes == f"{SECRET}2"
    sealed.shred("enc.Patient#p1")
    # Another process (its own key cache) opening the backup after the shredding.
    later = EventStore(
        inner,
        keys=LocalKeyProvider(MASTER),
        key_store=sealed.backend.keys.store.backend,  # type: ignore[attr-defined]
    )
    for store in (sealed, later):
        for number in (None, 1, 5):
            with pytest.raises(Shredded) as gone:
                store.read_version(Patient, "p1", number)
            assert gone.value.subject == "enc.Patient#p1"
            assert isinstance(gone.value, VersionNotFound)
        assert store.read_version(Patient, "p2").state.name == "other Ada p2"
    # Replays and the feed pass over the shredded versions and count them.
    pages = list(sealed.replay_pages(Patient))
    assert [v.resource_id for p in pages for v in p.items] == ["p2"] * 3
    assert sum(p.skipped for p in pages) == 5
    assert [v.resource_id for v in sealed.feed() if v.resource_type == "enc.Patient"] == ["p2"] * 3
    with pytest.raises(Shredded):
        list(sealed.read_stream(Patient, "p1"))


def test_a_copied_sqlite_file_is_unreadable_once_shredded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    live = eventstore.open(url, keys=LocalKeyProvider(MASTER))
    live.create_table()
    history(live, "p1", 3)
    live.close()
    copy = tmp_path / "copy.db"
    copy.write_bytes((tmp_path / "live.db").read_bytes())
    live = eventstore.open(url, keys=LocalKeyProvider(MASTER))
    live.shred("enc.Patient#p1")
    opened = eventstore.open(
        f"sqlite:///{copy}",
        keys=LocalKeyProvider(MASTER),
        key_store=f"sqlite:///{tmp_path / 'live.db.keys'}",
    )
    with pytest.raises(Shredded):
        opened.read_version(Patient, "p1", 2)
    assert b"ZEBRA" not in copy.read_bytes()
    live.close()
    opened.close()


def test_tampering_and_swapped_ciphertexts_are_corrupt_record(sealed: EventStore) -> None:
    history(sealed, "p1", 3)
    inner = sealed.backend.inner  # type: ignore[attr-defined]
    pk = stream_pk("enc.Patient", "p1")
    v2, v3 = inner.get([(pk, version_sk(2)), (pk, version_sk(3))])
    assert v2 is not None and v3 is not None
    flipped = bytearray(v2[records.STATE])  # type: ignore[arg-type]
    flipped[-1] ^= 1
    inner.write([Put({**v2, records.STATE: bytes(flipped)})])
    fresh = EventStore(sealed.backend)
    with pytest.raises(CorruptRecord) as damaged:
        fresh.read_version(Patient, "p1", 2)
    assert "does not open" in str(damaged.value)
    # Swapped: each sealed state moved to the other version's item.
    inner.write(
        [
            Put({**v2, records.STATE: v3[records.STATE]}),
            Put({**v3, records.STATE: v2[records.STATE]}),
        ]
    )
    for number in (2, 3):
        with pytest.raises(CorruptRecord):
            fresh.read_version(Patient, "p1", number)


def test_two_writers_starting_one_subject_share_one_key(store_url: str) -> None:
    """Writer A has made a key for a new subject; writer B appends meanwhile and puts its key
    first; A's key then loses the conditional put, and A seals with B's."""
    keys_backend = key_store_of(store_url)
    events = backend_from_url(store_url)
    b = EventStore(events, keys=LocalKeyProvider(MASTER), key_store=keys_backend)
    b.create_table(feed=FEED)

    def b_writes() -> None:
        b.append(Visit(person="ada", notes="B's " + SECRET), resource_id="v-b")

    between = _BeforeFirstWrite(keys_backend, after=10**9, action=b_writes)
    # Keys are bound to the key store's table on DynamoDB: the wrapper names the same one.
    between.table = getattr(keys_backend, "table", None)  # type: ignore[attr-defined]
    a = EventStore(events, keys=LocalKeyProvider(MASTER), key_store=between)
    a.append(Visit(person="ada", notes="A's " + SECRET), resource_id="v-a")
    assert between.fired
    keys = [i for i in keys_backend.scan().items]
    assert len(keys) == 1
    reader = EventStore(events, keys=LocalKeyProvider(MASTER), key_store=keys_backend)
    assert reader.read_version(Visit, "v-a").state.notes.startswith("A's")
    assert reader.read_version(Visit, "v-b").state.notes.startswith("B's")
    reader.shred("person:ada")  # one key: both gone
    for rid in ("v-a", "v-b"):
        with pytest.raises(Shredded):
            reader.read_version(Visit, rid)
    drop(b)


class _BeforeFirstWrite(Interleaving):
    """Runs ``action`` just before the first write passes through."""

    def write(self, writes: Any, **options: Any) -> Any:
        if not self.fired:
            self.fired = True
            self.action()
        return self.inner.write(writes, **options)


@pytest.fixture
def on_dynamodb(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EventStore, Backend, Backend]]:
    """A store on DynamoDB Local, its events backend and its key store's."""
    url = make_url("dynamodb", tmp_path_factory)
    events, keys = backend_from_url(url), key_store_of(url)
    store = EventStore(events, keys=LocalKeyProvider(MASTER), key_store=keys)
    store.create_table(feed=FEED)
    try:
        yield store, events, keys
    finally:
        drop(store)
        keys.delete_table()  # type: ignore[attr-defined]


def test_on_dynamodb_a_new_key_rides_in_its_first_versions_write(
    on_dynamodb: tuple[EventStore, Backend, Backend],
) -> None:
    """The key item goes in the same TransactWriteItems as the first version that needs it:
    one request for a new stream that is its own subject; a shared subject is looked up first."""
    store, events, keys = on_dynamodb

    def spent(append: Any) -> tuple[int, int]:
        e, k = events.requests(), keys.requests()
        append()
        return events.requests() - e, keys.requests() - k

    assert spent(lambda: history(store, "p1", 1)) == (1, 0)
    assert KeyStore(keys).get("enc.Patient#p1") is not None
    assert spent(lambda: store.append(Visit(person="ada", notes="1"), resource_id="v1")) == (1, 1)
    assert spent(lambda: store.append(Visit(person="ada", notes="2"), resource_id="v2")) == (1, 0)
    cold = EventStore(events, keys=LocalKeyProvider(MASTER), key_store=keys)
    cold.append(Plain(notes="a new store reads the feed's configuration once"))
    assert spent(lambda: cold.append(Visit(person="ada", notes="3"), resource_id="v3")) == (1, 1)
    assert len(keys.scan().items) == 2
    reader = EventStore(events, keys=LocalKeyProvider(MASTER), key_store=keys)
    assert [reader.read_version(Visit, f"v{n}").state.notes for n in (1, 2, 3)] == ["1", "2", "3"]


def test_on_dynamodb_a_commit_with_no_room_for_its_key_items_puts_them_first(
    on_dynamodb: tuple[EventStore, Backend, Backend],
) -> None:
    """Ten new streams take about 40 actions and their ten key items ride along; twenty-four
    take about 98, so their keys go first, one request each, and the commit still goes in one."""
    store, events, keys = on_dynamodb

    def spent(count: int, prefix: str) -> tuple[int, int]:
        e, k = events.requests(), keys.requests()
        store.append_many(
            [
                Append(Patient(name=f"{prefix}{n}", notes=SECRET), resource_id=f"{prefix}{n}")
                for n in range(count)
            ]
        )
        return events.requests() - e, keys.requests() - k

    assert spent(10, "a") == (1, 0)
    assert spent(24, "b") == (1, 24)
    assert len(keys.scan().items) == 34
    reader = EventStore(events, keys=LocalKeyProvider(MASTER), key_store=keys)
    assert {reader.read_version(Patient, f"b{n}").state.name for n in range(24)} == {
        f"b{n}" for n in range(24)
    }


def test_on_dynamodb_a_refused_first_version_puts_no_key(
    on_dynamodb: tuple[EventStore, Backend, Backend],
) -> None:
    """The key and the version are one atomic write: a first version refused by its head's
    condition leaves no key behind, and a lost key race does not hide the version conflict."""
    store, events, keys = on_dynamodb
    history(store, "p1", 1)
    fresh = EventStore(events, keys=LocalKeyProvider(MASTER), key_store=keys)
    with pytest.raises(ConcurrencyError):  # the key exists too: both conditions fail
        fresh.append(Patient(name="again", notes="x"), resource_id="p1")
    assert fresh.read_version(Patient, "p1").version == 1
    store.shred("enc.Patient#p1")
    with pytest.raises(ConcurrencyError):  # no key now: only the head's condition fails
        EventStore(events, keys=LocalKeyProvider(MASTER), key_store=keys).append(
            Patient(name="again", notes="x"), resource_id="p1"
        )
    assert KeyStore(keys).get("enc.Patient#p1") is None
    assert keys.scan().items == []


class _JoiningBeforeFirstWrite(_BeforeFirstWrite):
    """Lets key items ride in its writes, as the DynamoDB backend it wraps does."""

    def joins(self, other: Backend) -> bool:
        return self.inner.joins(other)


def test_on_dynamodb_a_writer_that_loses_a_key_race_in_its_write_uses_the_winners_key(
    on_dynamodb: tuple[EventStore, Backend, Backend],
) -> None:
    """A sealed its first version of subject ``person:ada`` with a new key; just before its
    write goes, B's write puts B's key. A's key item is refused, so A's whole write is: A takes
    B's key, seals again, and writes. One key; both versions open with it."""
    b, events, keys = on_dynamodb

    def b_writes() -> None:
        b.append(Visit(person="ada", notes="B's " + SECRET), resource_id="v-b")

    between = _JoiningBeforeFirstWrite(events, after=10**9, action=b_writes)
    a = EventStore(between, keys=LocalKeyProvider(MASTER), key_store=keys)
    before = keys.requests()
    a.append(Visit(person="ada", notes="A's " + SECRET), resource_id="v-a")
    assert between.fired
    # A's look-up and B's; A asked no more: B's key came back with the refusal.
    assert keys.requests() - before == 2
    assert len(keys.scan().items) == 1
    reader = EventStore(events, keys=LocalKeyProvider(MASTER), key_store=keys)
    assert reader.read_version(Visit, "v-a").state.notes.startswith("A's")
    assert reader.read_version(Visit, "v-b").state.notes.startswith("B's")
    reader.shred("person:ada")
    for rid in ("v-a", "v-b"):
        with pytest.raises(Shredded):
            reader.read_version(Visit, rid)


def test_threads_starting_one_subject_make_one_key(sealed: EventStore) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            store = EventStore(
                sealed.backend.inner,  # type: ignore[attr-defined]
                keys=LocalKeyProvider(MASTER),
                key_store=sealed.backend.keys.store.backend,  # type: ignore[attr-defined]
            )
            store.append(Visit(person="grace", notes=str(n)), resource_id=f"v{n}")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(sealed.backend.keys.store.backend.scan().items) == 1  # type: ignore[attr-defined]
    assert sorted(sealed.read_version(Visit, f"v{n}").state.notes for n in range(8)) == [
        str(n) for n in range(8)
    ]


def test_erasing_a_stream_shreds_its_own_key_but_not_a_shared_subject(sealed: EventStore) -> None:
    history(sealed, "p1", 2)
    sealed.append(Visit(person="ada", notes="one"), resource_id="v1")
    sealed.append(Visit(person="ada", notes="two"), resource_id="v2")
    keys = sealed.backend.keys.store  # type: ignore[attr-defined]
    assert keys.get("enc.Patient#p1") is not None
    sealed.erase(Patient, "p1")
    assert keys.get("enc.Patient#p1") is None
    sealed.erase(Visit, "v1")
    assert sealed.read_version(Visit, "v2").state.notes == "two"
    # A new stream under the erased id gets a new key.
    sealed.append(Patient(name="new", notes="n"), resource_id="p1")
    assert EventStore(sealed.backend).read_version(Patient, "p1").state.name == "new"


def test_a_streams_subject_is_fixed_by_its_first_version(sealed: EventStore) -> None:
    """A later state naming another subject is refused with the stream's and the given subject,
    whatever the expected version; nothing is written, and the stream's key still covers it."""
    sealed.append(Visit(person="ada", notes="one"), resource_id="v")
    for expected in (1, eventstore.ANY):
        with pytest.raises(SubjectChanged) as changed:
            sealed.append(
                Visit(person="bob", notes="two"), resource_id="v", expected_version=expected
            )
        assert isinstance(changed.value, InvalidInput)
        assert (changed.value.subject, changed.value.given) == ("person:ada", "person:bob")
    assert (
        sealed.append(Visit(person="ada", notes="two"), resource_id="v", expected_version=1).version
        == 2
    )
    # Two appends of one commit naming two subjects: refused before anything is sent.
    with pytest.raises(SubjectChanged):
        sealed.append_many(
            [
                Append(Visit(person="cy", notes="a"), resource_id="w"),
                Append(Visit(person="dee", notes="b"), resource_id="w", expected_version=1),
            ]
        )
    with pytest.raises(StreamNotFound):
        sealed.read_version(Visit, "w")
    sealed.shred("person:ada")
    for number in (1, 2):
        with pytest.raises(Shredded):
            sealed.read_version(Visit, "v", number)


def test_a_writer_racing_with_another_subject_is_refused(store_url: str) -> None:
    """Writer A appends with ANY to a stream that does not exist yet; just before its write
    goes, B starts the stream under another subject. A's retry at B's version is refused by
    the head's subject, not written under A's."""
    keys_backend = key_store_of(store_url)
    events = backend_from_url(store_url)
    b = EventStore(events, keys=LocalKeyProvider(MASTER), key_store=keys_backend)
    b.create_table(feed=FEED)

    def b_writes() -> None:
        b.append(Visit(person="ada", notes="B's"), resource_id="v")

    between = _BeforeFirstWrite(events, after=10**9, action=b_writes)
    a = EventStore(between, keys=LocalKeyProvider(MASTER), key_store=keys_backend)
    with pytest.raises(SubjectChanged) as changed:
        a.append(Visit(person="bob", notes="A's"), resource_id="v", expected_version=eventstore.ANY)
    assert between.fired and changed.value.subject == "person:ada"
    assert [v.state.notes for v in b.read_stream(Visit, "v")] == ["B's"]
    drop(b)
    delete = getattr(keys_backend, "delete_table", None)
    if delete is not None:
        delete()


def test_a_head_written_before_heads_held_subjects_takes_the_next_appends(
    sealed: EventStore,
) -> None:
    """Streams written by the build before heads kept their subject: the next append sets it,
    and from then on it is fixed."""
    sealed.append(Visit(person="ada", notes="one"), resource_id="v")
    inner = sealed.backend.inner  # type: ignore[attr-defined]
    head = records.head_key(stream_pk("enc.Visit", "v"))
    inner.write([Update(head, remove=frozenset({records.SUBJECT}))])
    assert records.SUBJECT not in inner.get([head])[0]
    sealed.append(Visit(person="ada", notes="two"), resource_id="v", expected_version=1)
    assert inner.get([head])[0][records.SUBJECT] == "person:ada"
    with pytest.raises(SubjectChanged):
        sealed.append(Visit(person="bob", notes="x"), resource_id="v", expected_version=2)


def test_without_keys_encrypted_types_are_refused(sealed: EventStore, store_url: str) -> None:
    history(sealed, "p1", 2)
    plain = EventStore(sealed.backend.inner)  # type: ignore[attr-defined]
    with pytest.raises(KeysMissing):
        plain.append(Patient(name="x", notes="y"), resource_id="p9")
    with pytest.raises(KeysMissing):
        plain.read_version(Patient, "p1")
    assert plain.append(Plain(notes="fine")).version == 1
    with pytest.raises(InvalidInput):
        plain.shred("enc.Patient#p1")
    wrong = EventStore(
        sealed.backend.inner,  # type: ignore[attr-defined]
        keys=LocalKeyProvider(os.urandom(32)),
        key_store=sealed.backend.keys.store.backend,  # type: ignore[attr-defined]
    )
    with pytest.raises(CorruptRecord):
        wrong.read_version(Patient, "p1")


def test_bad_key_providers_and_subjects_are_refused() -> None:
    with pytest.raises(InvalidInput):
        LocalKeyProvider(b"short")
    with pytest.raises(TypeError):
        LocalKeyProvider("x" * 32)  # type: ignore[arg-type]

    class Bad(Resource):
        resource_type = "enc.Bad"
        encrypted = True
        n: int

        def subject(self) -> str:
            return ""

    store = eventstore.open("memory://", keys=LocalKeyProvider(MASTER))
    store.create_table()
    with pytest.raises(InvalidInput):
        store.append(Bad(n=1))
    with pytest.raises(ConcurrencyError):
        store.append(Patient(name="a", notes="b"), resource_id="r", expected_version=3)


def test_an_export_keeps_encrypted_states_sealed(sealed: EventStore, tmp_path: Path) -> None:
    """No byte of an encrypted state in the file, no key either; an import into another table
    with the same key store opens them; once the subject is shredded, the file's copy of it is
    gone too (skipped and counted), while plaintext exports are there only when asked for."""
    from eventstore.transfer import export, import_file

    states = history(sealed, "p1", 3)
    history(sealed, "p2", 2)
    sealed.append(Plain(notes="plain notes"), resource_id="x")
    out = tmp_path / "e.jsonl"
    with out.open("w") as f:
        assert export(sealed, f).versions == 6
    text = out.read_text()
    assert "ZEBRA" not in text and "plain notes" in text
    assert text.count('{"sealed":') == 5
    keys = sealed.backend.keys.store.backend  # type: ignore[attr-defined]

    def target(name: str) -> EventStore:
        store = EventStore(
            backend_from_url(f"sqlite:///{tmp_path / name}"),
            keys=LocalKeyProvider(MASTER),
            key_store=keys,
        )
        store.create_table()
        return store

    first = target("a.db")
    report = import_file(first, out, [Patient, Plain])
    assert (report.versions, report.shredded) == (6, 0)
    assert [v.state for v in first.read_stream(Patient, "p1")] == states
    sealed.shred("enc.Patient#p1")
    second = target("b.db")
    report = import_file(second, out, [Patient, Plain])
    assert (report.versions, report.shredded) == (3, 3)
    with pytest.raises(StreamNotFound):  # not there at all
        second.read_version(Patient, "p1")
    # Without keys the file cannot be imported; with decrypt=True it is written in plaintext.
    plain = eventstore.open(f"sqlite:///{tmp_path / 'c.db'}")
    plain.create_table()
    with pytest.raises(KeysMissing):
        import_file(plain, out, [Patient, Plain])
    with out.open("w") as f:
        assert export(sealed, f, decrypt=True).versions == 3  # p1 is shredded: skipped
    assert "ZEBRA" in out.read_text()


def test_an_export_passes_over_a_subject_shredded_while_it_runs(
    sealed: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process shreds p1's subject after the export read p1's versions and before it
    seals the first of them for the file: they are passed over and counted, the export goes on."""
    from eventstore import transfer

    history(sealed, "p1", 2)
    history(sealed, "p2", 2)
    seal_line = transfer._sealed_line

    def shred_first(store: EventStore, found: Any, line: str) -> str:
        if found.stored.pk == stream_pk("enc.Patient", "p1") and found.stored.number == 1:
            sealed.shred("enc.Patient#p1")
        return seal_line(store, found, line)

    monkeypatch.setattr(transfer, "_sealed_line", shred_first)
    with (tmp_path / "e.jsonl").open("w") as f:
        report = transfer.export(sealed, f, types=[Patient])
    assert (report.versions, report.skipped_trimmed) == (2, 2)
    assert (tmp_path / "e.jsonl").read_text().count('{"sealed":') == 2


def test_offloaded_states_are_sealed_before_they_go_to_s3(tmp_path: Path) -> None:
    store = eventstore.open(
        f"sqlite:///{tmp_path / 's.db'}",
        keys=LocalKeyProvider(MASTER),
        blobs=blobs_url(),
        offload_bytes=1024,
    )
    store.create_table()
    lines = os.urandom(20_000).hex() + SECRET
    v = store.append(Patient(name="big", notes=lines), resource_id="big")
    blobs = store.backend.inner.blobs  # type: ignore[attr-defined]
    listed = list(blobs.list(""))
    assert listed
    for found in listed:
        assert b"ZEBRA" not in blobs.get(found.key)
    assert EventStore(store.backend).read_version(Patient, "big").state == v.state
    store.shred("enc.Patient#big")
    with pytest.raises(Shredded):
        EventStore(store.backend).read_version(Patient, "big")
    store.close()


def test_the_async_store_encrypts_and_shreds(store_url: str) -> None:
    import asyncio

    import eventstore.aio
    from eventstore import bridge

    async def main() -> None:
        async with eventstore.aio.open(store_url, keys=LocalKeyProvider(MASTER)) as store:
            await store.create_table(feed=FEED)
            v = await store.append(Patient(name="a", notes=SECRET), resource_id="p")
            assert (await store.read_version(Patient, "p")).state == v.state
            await store.shred("enc.Patient#p")
            with pytest.raises(Shredded):
                await store.read_version(Patient, "p")
            for backend in (store.backend, store.backend.keys.store.backend):  # type: ignore[attr-defined]
                delete = getattr(backend, "delete_table", None)
                if delete is not None:
                    await bridge.call(delete)

    asyncio.run(main())


def test_raw_items_of_the_table_name_the_subject_not_the_state(sealed: EventStore) -> None:
    sealed.append(Visit(person="ada", notes=SECRET), resource_id="v")
    (item,) = [i for i in scanned(sealed) if str(i[records.SK]).endswith("#v")]
    assert item[records.SUBJECT] == "person:ada"


# --- KMS, on moto's server mode: the one KMS endpoint that runs locally -----------------------


@pytest.fixture(scope="module")
def kms() -> Iterator[Any]:
    """A KMS endpoint on loopback. Amazon ships no local KMS; moto's server mode (a real HTTP
    server, checking encryption contexts) is what can run here. The tests use it for KMS only."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client(
        "kms",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    try:
        yield client
    finally:
        server.stop()


class _Watching:
    """A KMS client whose calls are recorded with their parameters."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**params: Any) -> Any:
            self.seen.append((name, params))
            return method(**params)

        return call


def test_kms_makes_and_unwraps_keys_with_the_context_checked(kms: Any, store_url: str) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    watching = _Watching(kms)
    provider = KmsKeyProvider(key_id, client=watching)
    keys_backend = key_store_of(store_url)
    store = EventStore(backend_from_url(store_url), keys=provider, key_store=keys_backend)
    store.create_table(feed=FEED)
    for n in range(20):
        store.append(Visit(person="ada", notes=f"{SECRET}{n}"), resource_id=f"v{n}")
    # A warm writer: one GenerateDataKey for the subject, then nothing per append.
    assert [name for name, _ in watching.seen] == ["generate_data_key"]
    context = watching.seen[0][1]["EncryptionContext"]
    assert context["subject"] == "person:ada"
    table = getattr(keys_backend, "table", None)
    assert context.get("keys") == table  # the key store's table, on DynamoDB
    # A fresh process: one Decrypt, with the same context.
    fresh = EventStore(
        store.backend.inner,  # type: ignore[attr-defined]
        keys=KmsKeyProvider(key_id, client=watching),
        key_store=keys_backend,
    )
    assert fresh.read_version(Visit, "v3").state.notes == f"{SECRET}3"
    assert watching.seen[-1][0] == "decrypt"
    assert watching.seen[-1][1]["EncryptionContext"] == context
    # A wrapped key moved to another subject does not unwrap: KMS checks the context.
    wrapped, by = fresh.backend.keys.store.get("person:ada")  # type: ignore[attr-defined]
    fresh.backend.keys.store.add("person:eve", wrapped, by)  # type: ignore[attr-defined]
    with pytest.raises(CorruptRecord):
        fresh.backend.keys.for_reading("person:eve")  # type: ignore[attr-defined]
    drop(store)
    delete = getattr(keys_backend, "delete_table", None)
    if delete is not None:
        delete()


def test_rotation_rewraps_keys_and_reads_work_throughout(kms: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    old, new = os.urandom(32), os.urandom(32)
    store = eventstore.open(url, keys=LocalKeyProvider(old))
    store.create_table()
    for n in range(5):
        history(store, f"p{n}", 2)
    store.shred("enc.Patient#p4")
    store.close()
    # Readers first get both master keys, then the keys are re-wrapped, while they read.
    rotating = eventstore.open(url, keys=LocalKeyProvider(new, previous=[old]))
    reader = eventstore.open(url, keys=LocalKeyProvider(new, previous=[old]))
    seen: list[Any] = []

    def read_meanwhile(report: Any) -> None:
        seen.append(report.subjects)
        assert reader.read_version(Patient, "p0").version == 2

    report = rotating.rotate_keys(progress=read_meanwhile)
    assert (report.subjects, report.rewrapped, report.current, report.gone) == (4, 4, 0, 0)
    assert seen
    assert rotating.rotate_keys().current == 4  # idempotent
    # Only the new master key is needed from now on, in a new process.
    after = eventstore.open(url, keys=LocalKeyProvider(new))
    for n in range(4):
        assert after.read_version(Patient, f"p{n}").state.name == f"Ada p{n}"
    with pytest.raises(Shredded):
        after.read_version(Patient, "p4")
    with pytest.raises(CorruptRecord):
        eventstore.open(url, keys=LocalKeyProvider(old)).read_version(Patient, "p1")
    # And on to KMS: the same rotation re-wraps the local keys under a KMS key.
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    to_kms = EventStore(
        backend_from_url(url),
        keys=_LocalThenKms(new, key_id, kms),
        key_store=backend_from_url(default_key_store(url)),
    )
    assert to_kms.rotate_keys().rewrapped == 4
    on_kms = EventStore(
        backend_from_url(url),
        keys=KmsKeyProvider(key_id, client=kms),
        key_store=backend_from_url(default_key_store(url)),
    )
    assert on_kms.read_version(Patient, "p2").state.name == "Ada p2"
    for one in (rotating, reader, after):
        one.close()


class _LocalThenKms(KmsKeyProvider):
    """A KMS provider that can still unwrap keys of a local master key (the move to KMS)."""

    def __init__(self, master: bytes, key_id: str, client: Any) -> None:
        super().__init__(key_id, client=client)
        self.local = LocalKeyProvider(master)

    def unwrap(self, wrapped: bytes, context: Any, by: str) -> bytes:
        if by == self.local.name:
            return self.local.unwrap(wrapped, context, by)
        return super().unwrap(wrapped, context, by)


def test_the_command_line_reads_and_rotates_with_keys_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from eventstore.cli import main

    url = f"sqlite:///{tmp_path / 'c.db'}"
    old, new = os.urandom(32), os.urandom(32)
    store = eventstore.open(url, keys=LocalKeyProvider(old))
    store.create_table()
    history(store, "p1", 2)
    store.close()
    monkeypatch.setenv("EVENTSTORE_MASTER_KEY", old.hex())
    assert main(["show", url, "enc.Patient", "p1"]) == 0
    assert "ZEBRA" in capsys.readouterr().out
    monkeypatch.setenv("EVENTSTORE_MASTER_KEY", new.hex())
    monkeypatch.setenv("EVENTSTORE_PREVIOUS_MASTER_KEYS", old.hex())
    assert main(["keys", "rotate", url]) == 0
    assert "1 data keys re-wrapped" in capsys.readouterr().out
    monkeypatch.delenv("EVENTSTORE_PREVIOUS_MASTER_KEYS")
    assert main(["show", url, "enc.Patient", "p1", "--version", "1"]) == 0
    monkeypatch.delenv("EVENTSTORE_MASTER_KEY")
    assert main(["show", url, "enc.Patient", "p1"]) == 1
    assert "KeysMissing" in capsys.readouterr().err
    monkeypatch.setenv("EVENTSTORE_MASTER_KEY", "not a key")
    assert main(["show", url, "enc.Patient", "p1"]) == 2


def test_a_rebuild_passes_over_shredded_streams_and_counts_them(sealed: EventStore) -> None:
    import projections
    from projections import Projection

    class ByName(Projection[Patient]):
        name = "by_name"
        index = "gsi1"

        def key(self, patient: Patient) -> tuple[str, str]:
            return ("patients", patient.name)

    history(sealed, "p1", 2)
    history(sealed, "p2", 3)
    sealed.shred("enc.Patient#p1")
    declared = EventStore(sealed.backend, projections=[ByName()])
    report = projections.rebuild(declared, ByName)
    assert (report.scanned, report.updated, report.shredded) == (2, 1, 1)
    assert "shredded 1" in str(report)


def test_the_dynamodb_key_store_is_made_without_a_stream(
    tmp_path: Path,
) -> None:
    """The events table gets the indexed feed's stream; the key store none (nothing of a
    shredded key may linger in a stream for 24 hours), and no options of the events table."""
    from tests.conftest import DYNAMODB_ENDPOINT, dynamodb_url, new_table_name

    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    url = dynamodb_url(new_table_name())
    store = eventstore.open(url, keys=LocalKeyProvider(MASTER))
    store.create_table(feed="indexed")
    keys = store.backend.keys.store.backend  # type: ignore[attr-defined]
    assert keys.table == store.backend.table + "-keys"  # type: ignore[attr-defined]
    events = keys.client.describe_table(TableName=store.backend.table)["Table"]  # type: ignore[attr-defined]
    described = keys.client.describe_table(TableName=keys.table)["Table"]
    assert events.get("StreamSpecification", {}).get("StreamEnabled")
    assert not described.get("StreamSpecification", {}).get("StreamEnabled")
    drop(store)
    keys.delete_table()


# --- invariants over random histories ------------------------------------------------------------


class ShreddingMachine(RuleBasedStateMachine):
    """Appends to streams of two people, shredding people (and writing for them again, under a
    new key), erasing streams: every version sealed with a key that still exists reads back,
    every other one is Shredded (never CorruptRecord), a stream keeps the subject of its first
    version, and the table never holds a byte of a state. In memory; the subclass below runs it
    on DynamoDB Local, where new keys ride in the first version's transaction."""

    def __init__(self) -> None:
        super().__init__()
        self.store = self.open()
        # Names of this run's own: the DynamoDB variant shares one table between runs.
        self.run = uuid.uuid4().hex[:8]
        self.streams: dict[str, tuple[str, list[str]]] = {}  # id -> (person, notes by version)
        self.shredded: set[str] = set()
        self.alive: dict[tuple[str, int], bool] = {}  # (id, version) -> its key still exists

    def open(self) -> EventStore:
        store = eventstore.open("memory://", keys=LocalKeyProvider(MASTER))
        store.create_table()
        return store

    def person(self, name: str) -> str:
        return f"{name}-{self.run}"

    @rule(rid=st.sampled_from(["a", "b", "c", "d"]), person=st.sampled_from(["ann", "bob"]))
    def append(self, rid: str, person: str) -> None:
        owner, notes = self.streams.get(rid, (person, []))
        text = f"ZEBRA-{rid}-{len(notes)}"
        self.store.append(
            Visit(person=self.person(owner), notes=text),
            resource_id=f"{rid}-{self.run}",
            expected_version=len(notes) or eventstore.NO_STREAM,
        )
        # Writing for a shredded person makes a new key: what it seals reads again, what the
        # old key sealed stays Shredded.
        self.alive[(rid, len(notes) + 1)] = True
        self.shredded.discard(owner)
        self.streams[rid] = (owner, [*notes, text])

    @rule(rid=st.sampled_from(["a", "b", "c", "d"]), person=st.sampled_from(["ann", "bob"]))
    def append_for_another(self, rid: str, person: str) -> None:
        if rid not in self.streams or self.streams[rid][0] == person:
            return
        with pytest.raises(SubjectChanged):
            self.store.append(
                Visit(person=self.person(person), notes="ZEBRA-moved"),
                resource_id=f"{rid}-{self.run}",
                expected_version=len(self.streams[rid][1]),
            )

    @rule(person=st.sampled_from(["ann", "bob"]))
    def shred(self, person: str) -> None:
        self.store.shred(f"person:{self.person(person)}")
        self.shredded.add(person)
        for rid, (owner, notes) in self.streams.items():
            if owner == person:
                for number in range(1, len(notes) + 1):
                    self.alive[(rid, number)] = False

    @rule(rid=st.sampled_from(["a", "b", "c", "d"]))
    def erase(self, rid: str) -> None:
        if rid in self.streams:
            self.store.erase(Visit, f"{rid}-{self.run}")
            number = len(self.streams.pop(rid)[1])
            for n in range(1, number + 1):
                self.alive.pop((rid, n), None)

    @invariant()
    def reads_follow_the_keys(self) -> None:
        # This store, whose keys are cached, and a new one that must find them in the key store.
        layer = self.store.backend
        cold = EventStore(
            layer.inner,  # type: ignore[attr-defined]
            keys=LocalKeyProvider(MASTER),
            key_store=layer.keys.store.backend,  # type: ignore[attr-defined]
        )
        for rid, (_, notes) in self.streams.items():
            for number, text in enumerate(notes, start=1):
                for store in (self.store, cold):
                    if not self.alive[(rid, number)]:
                        with pytest.raises(Shredded):
                            store.read_version(Visit, f"{rid}-{self.run}", number)
                    else:
                        read = store.read_version(Visit, f"{rid}-{self.run}", number)
                        assert read.state.notes == text
        needle = b"ZEBRA"
        assert not any(
            needle in v for i in raw_items(self.store) for v in i.values() if isinstance(v, bytes)
        )

    def teardown(self) -> None:
        self.store.close()


TestShreddingMachine = ShreddingMachine.TestCase
TestShreddingMachine.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)

_SHARED: list[tuple[Backend, Backend]] = []


class ShreddingOnDynamoDB(ShreddingMachine):
    def open(self) -> EventStore:
        if not DYNAMODB_ENDPOINT:
            pytest.skip("needs DynamoDB Local (EVENTSTORE_DYNAMODB_ENDPOINT)")
        if not _SHARED:  # one table for every run (each names its own streams and people)
            url = dynamodb_url(new_table_name())
            _SHARED.append((backend_from_url(url), key_store_of(url)))
            events, keys = _SHARED[0]
            EventStore(events, keys=LocalKeyProvider(MASTER), key_store=keys).create_table(
                feed=FEED
            )
        events, keys = _SHARED[0]
        return EventStore(events, keys=LocalKeyProvider(MASTER), key_store=keys)

    def teardown(self) -> None:
        """The shared table stays open for the next run."""


TestShreddingOnDynamoDB = ShreddingOnDynamoDB.TestCase
TestShreddingOnDynamoDB.settings = settings(max_examples=8, stateful_step_count=20, deadline=None)
