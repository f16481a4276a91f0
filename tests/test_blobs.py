"""States of any size: the blob store on a real S3 server (SeaweedFS, started by scripts/test),
the offloading layer on every backend, and what the embedded backends do without one.

Every S3 test runs against ``EVENTSTORE_S3_ENDPOINT`` and is skipped without it; each makes its
own bucket."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import eventstore
from eventstore import (
    BackendUnavailable,
    BucketNotFound,
    ConcurrencyError,
    CorruptRecord,
    EventStore,
    InvalidInput,
    InvalidState,
    ItemTooLarge,
    Resource,
    VersionNotFound,
    WrongType,
    records,
)
from eventstore.backends.base import Backend
from eventstore.blobs import MIN_GRACE, S3Blobs, blobs_from_url
from eventstore.blobs.base import ObjectMissing
from eventstore.blobs.offload import (
    Offloading,
    parse_pointer,
    slot_of,
    stream_prefix,
)
from eventstore.codec import decode, encode_delta
from eventstore.keys import stream_pk, version_sk
from eventstore.local import free_port
from tests.conftest import FEED, blobs_url, drop, make_url, new_table_name, raw_items
from tests.interleaving import Interleaving


class Doc(Resource):
    resource_type = "blob.Doc"
    lines: list[str]
    title: str = ""


class Kept(Resource):
    resource_type = "blob.Kept"
    max_versions = 3
    lines: list[str]


def document(megabytes: float, seed: int = 1) -> list[str]:
    """Lines of random letters, about ``megabytes`` of JSON (compresses to about 60 %)."""
    rng = random.Random(seed)
    count = int(megabytes * 1024 * 1024 / 103)
    return ["".join(rng.choices(string.ascii_letters, k=100)) for _ in range(count)]


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def pointers(store: EventStore) -> set[str]:
    """The object keys the table's items name."""
    found = set()
    for item in raw_items(store):
        blob = item.get(records.STATE)
        parsed = parse_pointer(blob) if isinstance(blob, bytes) else None
        if parsed is not None:
            found.add(parsed[0])
    return found


def objects(store: EventStore) -> set[str]:
    backend = store.backend
    assert isinstance(backend, Offloading)
    return {b.key for b in backend.blobs.list("") if not b.marker}


def dead_s3() -> S3Blobs:
    """A blob store on a port nobody listens on, whose client tries each request twice (the
    default client's retries wait about 19 s before giving up)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 2, "mode": "standard"}),
    )
    return S3Blobs("bucket", "p", client=client)


def later(hours: float) -> Any:
    return lambda: time.time() + hours * 3600


# --- the S3 blob store itself ----------------------------------------------------------------


@pytest.fixture
def s3() -> Iterator[S3Blobs]:
    found = blobs_from_url(blobs_url("pre/fix"))
    assert isinstance(found, S3Blobs)
    found.create()
    try:
        yield found
    finally:
        found.close()


def test_an_object_is_written_once_under_its_key(s3: S3Blobs) -> None:
    data = os.urandom(5000)
    assert s3.put("a/b", data, sha(data)) is True
    assert s3.put("a/b", b"other", sha(b"other")) is False  # If-None-Match: the first stays
    assert s3.get("a/b") == data
    assert s3.location.endswith("/pre/fix/")
    raw = s3.client.get_object(Bucket=s3.bucket, Key="pre/fix/a/b")["Body"].read()
    assert raw == data


def test_a_damaged_upload_is_refused_and_leaves_nothing(s3: S3Blobs) -> None:
    with pytest.raises(eventstore.BackendError):
        s3.put("a/c", b"the bytes", sha(b"other bytes"))
    with pytest.raises(ObjectMissing):
        s3.get("a/c")


def test_listing_and_deleting_every_version(s3: S3Blobs) -> None:
    s3.client.put_bucket_versioning(Bucket=s3.bucket, VersioningConfiguration={"Status": "Enabled"})
    for key in ("s/1", "s/2", "t/1"):
        s3.put(key, key.encode(), sha(key.encode()))
    s3.touch("s/1", b"s/1", sha(b"s/1"))  # a second version of the same object
    listed = list(s3.list("s/"))
    assert [b.key for b in listed] == ["s/1", "s/1", "s/2"]
    assert all(b.version and b.version != "null" for b in listed)
    assert s3.delete(listed) == 3
    left = s3.client.list_object_versions(Bucket=s3.bucket, Prefix="pre/fix/s/")
    assert not left.get("Versions") and not left.get("DeleteMarkers")
    assert [b.key for b in s3.list("")] == ["t/1"]
    assert s3.delete(listed) == len(listed)  # already gone: not an error


def test_a_missing_bucket_is_typed_and_create_makes_it() -> None:
    url = blobs_url("x")
    missing = blobs_from_url(url)
    with pytest.raises(BucketNotFound):
        missing.get("k")
    missing.create()
    missing.create()  # idempotent
    with pytest.raises(ObjectMissing):
        missing.get("k")
    missing.close()


def test_an_unreachable_server_is_backend_unavailable() -> None:
    dead = dead_s3()
    with pytest.raises(BackendUnavailable):
        dead.get("k")
    with pytest.raises(BackendUnavailable):
        dead.put("k", b"x", sha(b"x"))
    dead.close()


@pytest.mark.parametrize(
    "url",
    [
        "s3:///prefix",
        "http://bucket/p",
        "s3://bucket/p?color=red",
        "s3://a/p",
        7,
        "s3://b/p?region=a&region=b",
    ],
)
def test_bad_blob_store_urls_are_refused(url: Any) -> None:
    with pytest.raises(InvalidInput):
        blobs_from_url(url)


def test_stream_prefixes_never_cover_each_other() -> None:
    ids = ["a", "a/b", "a%2Fb", "~x", "ü", "x" * 256, "\u4e2d" * 200, "\u4e2d" * 201]
    prefixes = [stream_prefix(stream_pk("T", i)) for i in ids]
    assert len(set(prefixes)) == len(ids)
    for one in prefixes:
        assert one.count("/") == 2 and len(one.encode()) <= 420
        assert not any(other != one and other.startswith(one) for other in prefixes)
    assert prefixes[-1].startswith("T/~")  # too long to spell: named by its digest


# --- states of any size through the store ----------------------------------------------------


@pytest.fixture
def big_store(store_url: str) -> Iterator[EventStore]:
    opened = eventstore.open(store_url, blobs=blobs_url())
    opened.create_table(feed=FEED)
    try:
        yield opened
    finally:
        drop(opened)


def _round_trip(store: EventStore, megabytes: float) -> None:
    lines = document(megabytes)
    first = store.append(Doc(lines=lines, title="v1"))
    rid = first.resource_id
    states = [Doc(lines=lines, title="v1")]
    for n in range(2, 5):
        lines = list(lines)
        lines[n * 7] = f"edit {n}"
        v = store.append(Doc(lines=lines, title=f"v{n}"), resource_id=rid, expected_version=n - 1)
        states.append(v.state)
    assert store.read_version(Doc, rid).state == states[-1]
    for n, state in enumerate(states, start=1):
        assert store.read_version(Doc, rid, n).state == state
    assert store.read_version(Doc, rid, first.version_id).state == states[0]
    assert [v.state for v in store.read_stream(Doc, rid)] == states
    assert [v.state for v in store.replay(Doc)] == states
    assert [v.state.title for v in store.feed(after=0)] == [s.title for s in states]
    # A fresh store (cold caches, a new process would be the same) reads them too.
    again = EventStore(store.backend)
    assert again.read_version(Doc, rid).state == states[-1]
    assert again.read_version(Doc, rid, 2).state == states[1]


def _large_state(store: EventStore, megabytes: int) -> None:
    _round_trip(store, megabytes)
    # The table holds pointers only: no item carries the document's text.
    sample = document(megabytes)[100].encode()
    for item in raw_items(store):
        assert all(sample not in v for v in item.values() if isinstance(v, bytes))
    assert pointers(store) <= objects(store)


@pytest.mark.parametrize("megabytes", [1, 5])
def test_large_states_with_a_blob_store(big_store: EventStore, megabytes: int) -> None:
    _large_state(big_store, megabytes)


def test_a_20_mb_state_on_dynamodb_with_a_blob_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """20 MB goes through the pairing it is for; the embedded backends take it without a blob
    store (below), and the offloading layer is the same code over every backend (1 and 5 MB)."""
    store = eventstore.open(make_url("dynamodb", tmp_path_factory), blobs=blobs_url())
    store.create_table(feed=FEED)
    try:
        _large_state(store, 20)
    finally:
        drop(store)


@pytest.mark.parametrize(
    ("megabytes", "backends"),
    [(1, ("memory", "sqlite")), (5, ("memory", "sqlite")), (20, ("sqlite",))],
)
def test_large_states_in_the_embedded_backends_without_a_blob_store(
    tmp_path_factory: pytest.TempPathFactory, megabytes: int, backends: tuple[str, ...]
) -> None:
    for backend in backends:
        store = eventstore.open(make_url(backend, tmp_path_factory))
        store.create_table()
        _round_trip(store, megabytes)
        store.close()


def test_dynamodb_without_a_blob_store_keeps_its_item_limit(dynamodb_store: EventStore) -> None:
    with pytest.raises(ItemTooLarge):
        dynamodb_store.append(Doc(lines=document(1)))
    assert not [i for i in raw_items(dynamodb_store) if str(i[records.PK]).startswith("blob.")]


def test_states_over_max_state_bytes_are_refused_before_anything_is_written(
    store_url: str,
) -> None:
    store = eventstore.open(store_url, blobs=blobs_url(), max_state_bytes=1024 * 1024)
    store.create_table(feed=FEED)
    before = raw_items(store)
    with pytest.raises(InvalidState):
        store.append(Doc(lines=document(1.2)))
    assert raw_items(store) == before
    assert objects(store) == set()
    drop(store)


def test_small_edits_of_a_large_document_stay_small(dynamodb_url_store: EventStore) -> None:
    """Only keyframes go to S3: a 5 MB document with one-line edits costs one DynamoDB request
    per append, an S3 PUT once per 16 versions, and deltas of a few hundred bytes."""
    store = dynamodb_url_store
    assert isinstance(store.backend, Offloading)
    blobs = store.backend.blobs
    lines = document(5)
    v = store.append(Doc(lines=lines))
    puts = []
    for n in range(2, 20):
        lines = list(lines)
        lines[n] = f"edit {n}"
        dynamo, s3 = store.backend.requests(), blobs.requests()
        v = store.append(Doc(lines=lines), resource_id=v.resource_id, expected_version=n - 1)
        assert store.backend.requests() - dynamo == 1
        puts.append(blobs.requests() - s3)
    assert puts == [0] * 15 + [1] + [0] * 2  # version 17 starts a group: its keyframe
    pk = stream_pk("blob.Doc", v.resource_id)
    item = store.backend.inner.get([(pk, version_sk(10))])[0]
    assert item is not None and len(item[records.STATE]) < 2000  # type: ignore[arg-type]
    # Reading: one DynamoDB request, plus one S3 GET when the keyframe is not cached.
    cold = EventStore(
        store.backend.inner, blobs=S3Blobs(blobs.bucket, "objects", client=blobs.client)
    )
    dynamo, s3 = cold.backend.requests(), blobs.requests()
    assert cold.read_version(Doc, v.resource_id).state.lines == lines
    assert (cold.backend.requests() - dynamo, blobs.requests() - s3) == (1, 1)
    dynamo, s3 = cold.backend.requests(), blobs.requests()
    assert cold.read_version(Doc, v.resource_id, 18).version == 18
    assert (cold.backend.requests() - dynamo, blobs.requests() - s3) == (1, 0)


@pytest.fixture
def dynamodb_url_store() -> Iterator[EventStore]:
    url = make_url_or_skip("dynamodb")
    opened = eventstore.open(url, blobs=blobs_url())
    opened.create_table(feed=FEED)
    try:
        yield opened
    finally:
        drop(opened)


def make_url_or_skip(backend: str) -> str:
    from tests.conftest import DYNAMODB_ENDPOINT, dynamodb_url

    if not DYNAMODB_ENDPOINT:
        pytest.skip("DynamoDB Local is not running (scripts/test starts it)")
    return dynamodb_url(new_table_name())


def test_small_edits_make_small_deltas_of_a_5_mb_document() -> None:
    base = "".join(document(5)).encode()
    edited = base[:1000] + b"EDIT" + base[1004:]
    delta = encode_delta(edited, base)
    assert len(delta) < 2000
    assert decode(delta, base) == edited


# --- faults: nothing half-written, no dangling pointer -----------------------------------------


def test_a_commit_refused_after_its_upload_leaves_an_orphan_the_sweep_collects(
    big_store: EventStore,
) -> None:
    big_store.append(Doc(lines=document(0.5), title="first"), resource_id="same")
    with pytest.raises(ConcurrencyError):
        big_store.append(Doc(lines=document(0.5, seed=2), title="second"), resource_id="same")
    named, stored = pointers(big_store), objects(big_store)
    assert named < stored and len(stored - named) == 1  # the loser's keyframe
    # A sweep now keeps it (it could be on its way into a commit) ...
    assert big_store.collect_blobs(older_than=MIN_GRACE) == 0
    # ... and one an hour later takes it, and nothing a version names.
    sweeper = EventStore(big_store.backend, clock=later(1))
    swept = []
    assert sweeper.collect_blobs(older_than=MIN_GRACE, progress=swept.append) == 1
    assert swept and swept[-1].deleted == 1
    assert objects(big_store) == named
    assert EventStore(big_store.backend).read_version(Doc, "same").state.title == "first"


def test_the_sweep_refuses_a_short_grace_period(big_store: EventStore) -> None:
    with pytest.raises(InvalidInput):
        big_store.collect_blobs(older_than=timedelta(minutes=1))
    with pytest.raises(WrongType):
        big_store.collect_blobs(older_than=60)  # type: ignore[arg-type]
    plain = EventStore(big_store.backend.inner)  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput):
        plain.collect_blobs()


def test_the_sweep_between_an_upload_and_its_commit_keeps_the_object(
    big_store: EventStore,
) -> None:
    """Another process sweeps after a writer uploaded its keyframe and before its commit: the
    object is young, so it stays, and the commit names an object that exists."""
    offloading = big_store.backend
    assert isinstance(offloading, Offloading)
    seen: list[set[str]] = []

    def sweep() -> None:
        seen.append(objects(big_store))
        big_store.collect_blobs(older_than=MIN_GRACE)

    between = Interleaving(offloading.inner, after=10**9, action=sweep)
    original = between.write

    def write(*args: Any, **kwargs: Any) -> Any:
        sweep()  # the uploads are done; the commit is not sent yet
        return original(*args, **kwargs)

    between.write = write  # type: ignore[method-assign]
    writer = EventStore(between, blobs=offloading.blobs)
    v = writer.append(Doc(lines=document(0.5)))
    assert seen and len(seen[0]) == 1  # the upload was there when the sweep ran
    assert pointers(big_store) == objects(big_store) == seen[0]
    assert EventStore(big_store.backend).read_version(Doc, v.resource_id).state == v.state


class _Dies(Backend):
    """Kills its process instead of writing (after the offloading layer uploaded)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.serialised = inner.serialised
        self.feed_in_items = inner.feed_in_items
        self.max_item_bytes = inner.max_item_bytes
        self.max_write_bytes = inner.max_write_bytes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, *args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signal.SIGKILL)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.get(*args, **kwargs)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.query(*args, **kwargs)

    def scan(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.scan(*args, **kwargs)

    def create_table(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.create_table(*args, **kwargs)


def test_a_process_killed_between_upload_and_commit(tmp_path: Path, backend_name: str) -> None:
    if backend_name == "memory":
        pytest.skip("a killed process takes its memory table with it")
    if backend_name == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = make_url_or_skip(backend_name)
    blobs = blobs_url()
    store = eventstore.open(url, blobs=blobs)
    store.create_table(feed=FEED)
    child = subprocess.run(
        [sys.executable, "-m", "tests.test_blobs", "die-after-upload", url, blobs],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert pointers(store) == set()  # nothing committed, no pointer to anything
    assert len(objects(store)) == 1  # the upload, orphaned
    assert EventStore(store.backend, clock=later(1)).collect_blobs(older_than=MIN_GRACE) == 1
    assert objects(store) == set()
    v = store.append(Doc(lines=document(0.5)), resource_id="r")
    assert store.read_version(Doc, "r").state == v.state
    drop(store)


def test_s3_unavailable_during_a_write_writes_nothing(big_store: EventStore) -> None:
    offloading = big_store.backend
    assert isinstance(offloading, Offloading)
    before = raw_items(big_store)
    dead = dead_s3()
    broken = EventStore(offloading.inner, blobs=dead)
    with pytest.raises(BackendUnavailable):
        broken.append(Doc(lines=document(0.5)), resource_id="r")
    assert raw_items(big_store) == before
    # Small states never touch the blob store: they still go in.
    assert broken.append(Doc(lines=["small"]), resource_id="s").version == 1


def test_s3_unavailable_during_a_read_is_typed(big_store: EventStore) -> None:
    offloading = big_store.backend
    assert isinstance(offloading, Offloading)
    v = big_store.append(Doc(lines=document(0.5)))
    dead = dead_s3()
    with pytest.raises(BackendUnavailable):
        EventStore(offloading.inner, blobs=dead).read_version(Doc, v.resource_id)


def test_a_missing_or_altered_object_is_corrupt_record_naming_it(big_store: EventStore) -> None:
    offloading = big_store.backend
    assert isinstance(offloading, Offloading)
    blobs = offloading.blobs
    assert isinstance(blobs, S3Blobs)
    v = big_store.append(Doc(lines=document(0.5)))
    (key,) = pointers(big_store)

    def fresh() -> EventStore:  # a new process: nothing cached
        return EventStore(
            offloading.inner, blobs=S3Blobs(blobs.bucket, "objects", client=blobs.client)
        )

    blobs.touch(key, b"something else", sha(b"something else"))
    with pytest.raises(CorruptRecord) as altered:
        fresh().read_version(Doc, v.resource_id)
    assert key in str(altered.value) and "hash" in str(altered.value)
    blobs.delete(list(blobs.list(key)))
    with pytest.raises(CorruptRecord) as missing:
        fresh().read_version(Doc, v.resource_id)
    assert key in str(missing.value) and "missing" in str(missing.value)


class _TrimsFirst(S3Blobs):
    """The same bucket, but the first read lets another writer trim first: between a reader's
    read of the table and its read of the object."""

    def __init__(self, same: S3Blobs, trim: Any) -> None:
        super().__init__(same.bucket, same.prefix, client=same.client)
        self.trim = trim

    def get(self, key: str) -> bytes:
        trim, self.trim = self.trim, None
        if trim is not None:
            trim()
        return super().get(key)


def test_a_trim_between_a_read_and_its_object_is_version_not_found(store_url: str) -> None:
    """The reader has the item naming a keyframe's object; before it fetches the object,
    another writer's trim deletes the item and then the object. The version is gone, not
    damaged: ``VersionNotFound`` naming what remains, as a read made a moment later says."""
    store = eventstore.open(store_url, blobs=blobs_url(), offload_bytes=1024)
    store.create_table(feed=FEED)
    lines = document(0.05)
    for n in range(1, 18):
        lines = [*lines[:-1], str(n)]
        store.append(
            Kept(lines=lines), resource_id="k", expected_version=n - 1 or eventstore.NO_STREAM
        )
    offloading = store.backend
    assert isinstance(offloading, Offloading) and isinstance(offloading.blobs, S3Blobs)

    def trim() -> None:
        nonlocal lines
        for n in range(18, 21):  # keeps 18-20: group 1 (versions 1-16) and its keyframe go
            lines = [*lines[:-1], str(n)]
            store.append(Kept(lines=lines), resource_id="k", expected_version=n - 1)

    reader = EventStore(offloading.inner, blobs=_TrimsFirst(offloading.blobs, trim))
    with pytest.raises(VersionNotFound) as gone:
        reader.read_version(Kept, "k", version=16)
    assert not isinstance(gone.value, CorruptRecord)
    assert gone.value.remaining == (18, 20)
    assert {slot_of(k) for k in objects(store)} == {(17, True)}
    drop(store)


# --- trimming and erasure remove objects ----------------------------------------------------


def test_trimming_removes_the_objects_of_trimmed_groups(store_url: str) -> None:
    store = eventstore.open(store_url, blobs=blobs_url(), offload_bytes=1024)
    store.create_table(feed=FEED)
    lines = document(0.05)
    store.append(Kept(lines=lines), resource_id="k")
    for n in range(2, 41):
        lines = list(lines)
        lines[n] = str(n)
        store.append(Kept(lines=lines), resource_id="k", expected_version=n - 1)
        named, stored = pointers(store), objects(store)
        assert named <= stored  # never a pointer without its object
    assert stored == named and len(named) == 1  # keyframe 33's: groups 1 and 17 are gone
    assert {slot_of(k) for k in stored} == {(33, True)}
    assert [x.version for x in store.read_stream(Kept, "k")] == [38, 39, 40]
    drop(store)


def test_erasure_removes_every_object_and_version_of_the_stream(big_store: EventStore) -> None:
    offloading = big_store.backend
    assert isinstance(offloading, Offloading)
    blobs = offloading.blobs
    assert isinstance(blobs, S3Blobs)
    blobs.client.put_bucket_versioning(
        Bucket=blobs.bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    keep = big_store.append(Doc(lines=document(0.5, seed=3)), resource_id="keep")
    lines = document(0.5)
    big_store.append(Doc(lines=lines), resource_id="gone/1")
    for n in range(2, 20):
        lines = list(lines)
        lines[n] = str(n)
        big_store.append(Doc(lines=lines), resource_id="gone/1", expected_version=n - 1)
    # An orphan of a failed commit too.
    with pytest.raises(ConcurrencyError):
        big_store.append(Doc(lines=document(0.5, seed=9)), resource_id="gone/1")
    prefix = stream_prefix(stream_pk("blob.Doc", "gone/1"))
    assert len([b for b in blobs.list(prefix)]) == 3
    report = big_store.erase(Doc, "gone/1")
    assert report.objects_deleted == 3
    everything = blobs.client.list_object_versions(Bucket=blobs.bucket, Prefix=blobs.prefix)
    left = [v["Key"] for v in everything.get("Versions", []) + everything.get("DeleteMarkers", [])]
    assert not [k for k in left if prefix in k]
    assert len(left) == 1  # the other stream's keyframe
    assert EventStore(offloading).read_version(Doc, "keep").state == keep.state


# --- export and import ---------------------------------------------------------------------


def test_export_and_import_carry_large_states(big_store: EventStore, tmp_path: Path) -> None:
    """An export holds the states themselves (no pointers); importing it into another table
    with its own blob store offloads them again there."""
    from eventstore.transfer import export, import_file

    lines = document(1)
    v = big_store.append(Doc(lines=lines), resource_id="d")
    lines[3] = "edit"
    big_store.append(Doc(lines=lines), resource_id="d", expected_version=1)
    out = tmp_path / "export.jsonl"
    with out.open("w") as f:
        assert export(big_store, f).versions == 2
    assert lines[100] in out.read_text()
    target = eventstore.open(f"sqlite:///{tmp_path / 'target.db'}", blobs=blobs_url())
    target.create_table()
    assert import_file(target, out, [Doc]).versions == 2
    assert target.read_version(Doc, "d").state.lines == lines
    assert target.read_version(Doc, "d", 1).version_id == v.version_id
    assert pointers(target) and pointers(target) == objects(target)
    target.close()


def test_the_command_line_shows_large_states_and_sweeps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from eventstore.cli import main

    url, blobs = f"sqlite:///{tmp_path / 'cli.db'}", blobs_url()
    assert main(["create-table", url, "--blobs", blobs]) == 0
    store = eventstore.open(url, blobs=blobs)
    lines = document(0.5)
    store.append(Doc(lines=lines), resource_id="d")
    store.close()
    capsys.readouterr()
    assert main(["show", url, "blob.Doc", "d", "--blobs", blobs]) == 0
    assert lines[7] in capsys.readouterr().out
    assert main(["show", url, "blob.Doc", "d"]) == 1  # without its blob store
    assert "NoBlobStore" in capsys.readouterr().err
    assert main(["blobs", "gc", url, "--blobs", blobs]) == 0
    assert "0 objects deleted; 1 listed, 1 younger than 60 minutes kept" in capsys.readouterr().out
    assert main(["blobs", "gc", url, "--blobs", blobs, "--older-than", "5"]) == 2


# --- the async store ------------------------------------------------------------------------


def test_the_async_store_with_a_blob_store(store_url: str) -> None:
    import asyncio

    import eventstore.aio
    from eventstore import bridge

    url = blobs_url()

    async def main() -> None:
        async with eventstore.aio.open(store_url, blobs=url) as store:
            await store.create_table(feed=FEED)
            lines = document(1)
            v = await store.append(Doc(lines=lines))
            lines[5] = "edit"
            await store.append(Doc(lines=lines), resource_id=v.resource_id, expected_version=1)
            assert (await store.read_version(Doc, v.resource_id)).state.lines == lines
            assert [x.version async for x in store.read_stream(Doc, v.resource_id)] == [1, 2]
            assert await store.collect_blobs() == 0
            report = await store.erase(Doc, v.resource_id)
            assert report.items_deleted == 3
            blobs = store.backend.blobs  # type: ignore[attr-defined]
            assert await bridge.call(lambda: list(blobs.list(""))) == []
            delete = getattr(store.backend, "delete_table", None)
            if delete is not None:
                await bridge.call(delete)

    asyncio.run(main())


# --- invariants, stated over random histories -------------------------------------------------


class BlobMachine(RuleBasedStateMachine):
    """Appends (small edits and rewrites), conflicting commits, trims, erasures and sweeps on an
    embedded store whose every keyframe and rewrite goes to S3. After every step no item names a
    missing object and every stream reads back what was appended; after a sweep an hour later,
    the bucket holds exactly the objects the items name."""

    def __init__(self) -> None:
        super().__init__()
        self.store = eventstore.open("memory://", blobs=blobs_url(), offload_bytes=1024)
        self.store.create_table()
        self.model: dict[str, tuple[int, list[str]]] = {}

    streams = st.sampled_from(["a", "b/1", "c"])

    @rule(rid=streams, line=st.integers(0, 30), rewrite=st.booleans())
    def append(self, rid: str, line: int, rewrite: bool) -> None:
        version, lines = self.model.get(rid, (0, document(0.01, seed=len(rid))))
        lines = document(0.01, seed=version + 100) if rewrite else list(lines)
        lines[line] = f"edit {version}"
        v = self.store.append(
            Kept(lines=lines), resource_id=rid, expected_version=version or eventstore.NO_STREAM
        )
        self.model[rid] = (v.version, lines)

    @rule(rid=streams)
    def lose_a_race(self, rid: str) -> None:
        version, _ = self.model.get(rid, (0, []))
        with pytest.raises(ConcurrencyError):
            self.store.append(
                Kept(lines=document(0.01, seed=999)),
                resource_id=rid,
                expected_version=version + 1,
            )

    @rule(rid=streams)
    def erase(self, rid: str) -> None:
        if rid in self.model:
            self.store.erase(Kept, rid)
            del self.model[rid]
            prefix = stream_prefix(stream_pk("blob.Kept", rid))
            assert not [k for k in objects(self.store) if k.startswith(prefix)]

    @rule()
    def sweep_an_hour_later(self) -> None:
        EventStore(self.store.backend, clock=later(1)).collect_blobs(older_than=MIN_GRACE)
        assert objects(self.store) == pointers(self.store)

    @invariant()
    def nothing_dangles_and_everything_reads(self) -> None:
        assert pointers(self.store) <= objects(self.store)
        fresh = EventStore(self.store.backend.inner, blobs=self.store.backend.blobs)  # type: ignore[attr-defined]
        for rid, (version, lines) in self.model.items():
            latest = fresh.read_version(Kept, rid)
            assert (latest.version, latest.state.lines) == (version, lines)

    def teardown(self) -> None:
        self.store.close()


TestBlobMachine = BlobMachine.TestCase
TestBlobMachine.settings = settings(max_examples=12, stateful_step_count=20, deadline=None)


# --- the child process of test_a_process_killed_between_upload_and_commit ---------------------

if __name__ == "__main__" and sys.argv[1:2] == ["die-after-upload"]:
    _, _, store_url_arg, blobs_arg = sys.argv
    from eventstore.urls import backend_from_url

    dying = EventStore(_Dies(backend_from_url(store_url_arg)), blobs=blobs_arg)
    dying.append(Doc(lines=document(0.5)), resource_id="r")
    raise SystemExit("the write went through")
