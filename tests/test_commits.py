"""Atomic multi-stream commits (``append_many``) on every backend: all or nothing, the same stream
several times, conflicts that name every stream, limits refused before writing; concurrent
transfers that never create or lose money."""

from __future__ import annotations

import itertools
import multiprocessing
import random
import threading
from typing import Any

import pytest

import eventstore
from eventstore import (
    ANY,
    NO_STREAM,
    Append,
    CommitTooLarge,
    ConcurrencyError,
    EventStore,
    InvalidInput,
    ItemTooLarge,
    Resource,
    WrongType,
)
from tests.models import Blob, Note, Order

ACCOUNTS = [f"acct-{n}" for n in range(5)]


class Account(Resource):
    resource_type = "commits.Account"
    balance: int


def _snapshot(store: EventStore) -> list[tuple[str, str, int]]:
    """Every item's key and size: what 'nothing was written' is checked against."""
    rows = []
    start = None
    while True:
        page = store.backend.scan(start=start)
        rows += [(str(i["pk"]), str(i["sk"]), len(repr(i))) for i in page.items]
        if page.last_key is None:
            return sorted(rows)
        start = page.last_key


def _open_accounts(store: EventStore) -> None:
    store.append_many([Append(Account(balance=100), resource_id=a) for a in ACCOUNTS])


def _transfer(store: EventStore, source: str, dest: str, amount: int, tag: str) -> None:
    """Move ``amount`` between two accounts in one commit, retrying on conflict."""
    while True:
        a = store.read_version(Account, source)
        b = store.read_version(Account, dest)
        meta = {"transfer": tag}
        try:
            store.append_many(
                [
                    Append(
                        Account(balance=a.state.balance - amount),
                        resource_id=source,
                        expected_version=a.version,
                        event="debit",
                        metadata=meta,
                    ),
                    Append(
                        Account(balance=b.state.balance + amount),
                        resource_id=dest,
                        expected_version=b.version,
                        event="credit",
                        metadata=meta,
                    ),
                ]
            )
            return
        except ConcurrencyError:
            continue


def _check_ledger(store: EventStore, transfers: int) -> None:
    """Gapless streams, every transfer in exactly two versions that cancel out, money constant."""
    seen: dict[str, list[tuple[str, int]]] = {}
    total = 0
    for account in ACCOUNTS:
        versions = list(store.read_stream(Account, account))
        assert [v.version for v in versions] == list(range(1, len(versions) + 1))
        total += versions[-1].state.balance
        for before, after in itertools.pairwise(versions):
            tag = after.metadata["transfer"]
            seen.setdefault(tag, []).append(
                (after.event or "", after.state.balance - before.state.balance)
            )
    assert total == 100 * len(ACCOUNTS)
    assert len(seen) == transfers
    for tag, legs in seen.items():
        assert sorted(e for e, _ in legs) == ["credit", "debit"], tag
        assert sum(d for _, d in legs) == 0, tag


def test_one_commit_many_streams(store: EventStore) -> None:
    before = store.backend.requests()
    made = store.append_many(
        [
            Append(Order(customer="ada"), resource_id="o-1", event="opened"),
            Append(Note(text="reserved"), resource_id="n-1", metadata={"order": "o-1"}),
            Append(Order(customer="bob")),
        ]
    )
    if store.backend.requests():
        assert store.backend.requests() - before == 1
    assert [(v.resource_type, v.version) for v in made] == [("Order", 1), ("Note", 1), ("Order", 1)]
    assert made[0].event == "opened" and made[1].metadata == {"order": "o-1"}
    assert store.read_version(Order, "o-1").state.customer == "ada"
    assert store.read_version(Order, made[2].resource_id).state.customer == "bob"


@pytest.mark.parametrize("where", [0, 1, 2])
def test_a_conflict_anywhere_writes_nothing(store: EventStore, where: int) -> None:
    _open_accounts(store)
    store.append(Account(balance=90), resource_id=ACCOUNTS[where], expected_version=1)
    before = _snapshot(store)
    commit = [Append(Account(balance=1), resource_id=a, expected_version=1) for a in ACCOUNTS[:3]]
    with pytest.raises(ConcurrencyError) as info:
        store.append_many(commit)
    assert _snapshot(store) == before
    e = info.value
    assert (e.resource_id, e.expected, e.actual) == (ACCOUNTS[where], 1, 2)
    assert len(e.conflicts) == 1


def test_every_conflicting_stream_is_named(store: EventStore) -> None:
    _open_accounts(store)
    for a in ACCOUNTS[1:4:2]:
        store.append(Account(balance=5), resource_id=a, expected_version=1)
    with pytest.raises(ConcurrencyError) as info:
        store.append_many(
            [Append(Account(balance=1), resource_id=a, expected_version=1) for a in ACCOUNTS]
            + [Append(Account(balance=1), resource_id="fresh")]
        )
    conflicts = info.value.conflicts
    assert [(c.resource_id, c.expected, c.actual) for c in conflicts] == [
        (ACCOUNTS[1], 1, 2),
        (ACCOUNTS[3], 1, 2),
    ]
    assert ACCOUNTS[1] in str(info.value) and ACCOUNTS[3] in str(info.value)
    with pytest.raises(ConcurrencyError) as info:
        store.append_many([Append(Account(balance=1), resource_id=ACCOUNTS[0])])
    assert info.value.expected is NO_STREAM and info.value.actual == 1


def test_the_same_stream_several_times(store: EventStore) -> None:
    made = store.append_many(
        [
            Append(Note(text=f"n{i}"), resource_id="n", expected_version=i or NO_STREAM)
            for i in range(40)
        ]
    )
    assert [v.version for v in made] == list(range(1, 41))
    # max_versions = 5: the versions the commit itself passed are never stored.
    assert [v.state.text for v in store.read_stream(Note, "n")] == [f"n{i}" for i in range(35, 40)]
    made = store.append_many(
        [Append(Note(text="x"), resource_id="n", expected_version=ANY) for _ in range(20)]
    )
    assert [v.version for v in made] == list(range(41, 61))
    assert [v.version for v in store.read_stream(Note, "n")] == list(range(56, 61))
    stored = [(pk, sk) for pk, sk, _ in _snapshot(store) if pk == "Note#n"]
    assert len(stored) == 1 + 5 + 1  # head, 5 versions, the one keyframe they need
    # Each later append to the stream must expect what the one before makes.
    before = _snapshot(store)
    with pytest.raises(ConcurrencyError) as info:
        store.append_many(
            [
                Append(Note(text="a"), resource_id="n", expected_version=60),
                Append(Note(text="b"), resource_id="n", expected_version=60),
            ]
        )
    assert (info.value.expected, info.value.actual) == (60, 61)
    assert _snapshot(store) == before


def test_limits_are_refused_before_writing(store: EventStore) -> None:
    _open_accounts(store)
    before = _snapshot(store)
    with pytest.raises(CommitTooLarge) as info:
        store.append_many([Append(Account(balance=i)) for i in range(51)])  # 102 actions
    assert info.value.limit_name == "actions" and info.value.limit == 100
    assert isinstance(info.value, InvalidInput)
    if store.backend.max_write_bytes is not None:
        # DynamoDB's 4 MB and 400 KB; embedded backends limit actions (the same 100) only.
        big = [Append(Blob(data=random.Random(i).randbytes(300_000))) for i in range(15)]
        with pytest.raises(CommitTooLarge) as info:
            store.append_many(big)  # 15 keyframes of 300 KB: over 4 MB
        assert info.value.limit_name == "bytes"
        with pytest.raises(ItemTooLarge):
            store.append_many(
                [
                    Append(Account(balance=1)),
                    Append(Blob(data=random.Random(1).randbytes(500_000))),
                ]
            )
    for bad in ([], [Order(customer="x")], "nope"):
        with pytest.raises(WrongType):
            store.append_many(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        Append(Order(customer="x"), expected_version=0)
    assert _snapshot(store) == before


def test_a_checkpoint_counts_in_the_action_limit(store: EventStore) -> None:
    """21 appends to streams past max_versions, with a projector's checkpoint, on an inline
    feed: versions, entries, the counter and heads take 64 actions, and each trim deletes a
    version and its group's keyframe. Trims once filled the remaining 36 actions, and the
    checkpoint made 101, refused on every retry (a writing projector stuck for good); now the
    checkpoint's action is kept free and the rest of the trimming follows in later writes."""
    from eventstore import Checkpoint

    for n in range(21):
        store.append_many(
            [
                Append(Note(text=str(i)), resource_id=f"n{n}", expected_version=i or NO_STREAM)
                for i in range(20)
            ]
        )
    made = store.append_many(
        [Append(Note(text="21st"), resource_id=f"n{n}", expected_version=20) for n in range(21)],
        checkpoint=Checkpoint("projector", 0, 420),
    )
    assert len(made) == 21 and store.checkpoint("projector") == 420
    for n in range(21):
        assert [v.version for v in store.read_stream(Note, f"n{n}")] == [17, 18, 19, 20, 21]


def test_transfers_between_threads_keep_the_money(store: EventStore) -> None:
    _open_accounts(store)
    transfers = 8 * (4 if store.backend.requests() else 15)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        rng = random.Random(n)
        try:
            for k in range(transfers // 8):
                source, dest = rng.sample(ACCOUNTS, 2)
                _transfer(store, source, dest, rng.randint(1, 30), f"t{n}-{k}")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:3]
    _check_ledger(store, transfers)


def _process_transfers(url: str, n: int, count: int, start: Any) -> None:
    store = eventstore.open(url)
    start.wait(timeout=120)
    rng = random.Random(100 + n)
    for k in range(count):
        source, dest = rng.sample(ACCOUNTS, 2)
        _transfer(store, source, dest, rng.randint(1, 30), f"p{n}-{k}")
    store.close()


def test_transfers_between_processes_on_one_sqlite_file(sqlite_url: str) -> None:
    store = eventstore.open(sqlite_url)
    _open_accounts(store)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(8)
    workers = [
        context.Process(target=_process_transfers, args=(sqlite_url, n, 15, start))
        for n in range(8)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
        assert w.exitcode == 0
    _check_ledger(store, 8 * 15)
