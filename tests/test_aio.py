"""What only the async store has to show: its API is the blocking store's, many tasks on one loop
write correctly, the loop is never blocked, cancellation at any await point of an append leaves
the version written once or not at all, async callables are awaited, subscriptions end at once.

The store contract itself runs over the async store in test_contract.py."""

from __future__ import annotations

import asyncio
import gc
import inspect
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import pytest

import eventstore
import eventstore.aio
import projections.aio
from eventstore import (
    NO_STREAM,
    Append,
    ConcurrencyError,
    EventStore,
    InvalidInput,
    StreamNotFound,
    Version,
    VersionNotFound,
    bridge,
)
from eventstore.aio import AsyncEventStore, AsyncIteration, AsyncSubscription
from eventstore.backends.base import (
    Backend,
    ChangeStream,
    Item,
    Key,
    Page,
    SortCondition,
    TableOptions,
    Write,
)
from tests.conftest import make_url
from tests.models import Note, Order

# --- the API is the blocking store's --------------------------------------------------------

ITERATORS = {
    "read_stream",
    "replay",
    "replay_pages",
    "feed",
    "feed_entries",
    "feed_pages",
    "heads",
    "deleted_heads",
}
PLAIN = {"set_cursor_secret", "declared_projection", "repository", "subscribe"}


def public(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_every_operation_of_the_blocking_store_has_the_same_signature() -> None:
    blocking, asynchronous = public(EventStore), public(AsyncEventStore)
    assert set(blocking) == set(asynchronous)
    for name, method in blocking.items():
        mine = asynchronous[name]
        theirs_params = list(inspect.signature(method).parameters.values())
        mine_params = list(inspect.signature(mine).parameters.values())
        assert [(p.name, p.kind, p.default) for p in mine_params] == [
            (p.name, p.kind, p.default) for p in theirs_params
        ], name
        if name in ITERATORS or name in PLAIN:
            assert not inspect.iscoroutinefunction(mine), name
        else:
            assert inspect.iscoroutinefunction(mine), name


def test_repository_has_the_blocking_repositorys_methods() -> None:
    from eventstore import Repository
    from eventstore.aio import AsyncRepository

    assert set(public(Repository)) == set(public(AsyncRepository))


def test_all_is_what_the_package_exports() -> None:
    assert set(eventstore.aio.__all__) == {
        "AsyncEventStore",
        "AsyncIteration",
        "AsyncRepository",
        "AsyncSubscription",
        "open",
    }
    assert set(projections.aio.__all__) == {"list_all", "query_all", "run"}
    for module in (eventstore.aio, projections.aio):
        for name in module.__all__:
            assert getattr(module, name) is not None


# --- backends -------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_url(str(request.param), tmp_path_factory)


@pytest.fixture(params=["sqlite", "dynamodb"])
def served_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A backend that does I/O (a file or a server): what could block the loop."""
    return make_url(str(request.param), tmp_path_factory)


async def opened(
    url: str, feed: Literal["indexed", "inline"] = "inline", **options: Any
) -> AsyncEventStore:
    store = eventstore.aio.open(url, **options)
    await store.create_table(feed=feed)
    return store


async def dropped(store: AsyncEventStore) -> None:
    delete = getattr(store.backend, "delete_table", None)
    if delete is not None:
        await bridge.call(delete)
    await store.close()


# --- many tasks on one loop -----------------------------------------------------------------


def test_200_tasks_append_to_20_streams_gapless_and_conflicts_as_expected(served_url: str) -> None:
    async def main() -> None:
        # DynamoDB's own feed: 200 tasks would mostly race for an inline feed's counter.
        store = await opened(served_url, feed="indexed")
        try:
            ids = [f"s{n:02d}" for n in range(20)]
            for rid in ids:
                await store.append(Order(customer="0"), resource_id=rid)
            acknowledged: dict[str, list[int]] = {rid: [] for rid in ids}
            conflicts: list[ConcurrencyError] = []

            async def checked(n: int) -> None:
                # Read, then append expecting what was read: some lose to another task.
                rid = ids[n % 20]
                latest = await store.read_version(Order, rid)
                try:
                    v = await store.append(
                        Order(customer=str(n)), resource_id=rid, expected_version=latest.version
                    )
                except ConcurrencyError as e:
                    assert e.expected == latest.version and e.actual > e.expected
                    conflicts.append(e)
                    return
                assert v.version == latest.version + 1
                acknowledged[rid].append(v.version)

            await asyncio.gather(*(checked(n) for n in range(200)))
            for rid in ids:
                stored = [v.version async for v in store.read_stream(Order, rid)]
                assert stored == list(range(1, len(stored) + 1))
                assert sorted(acknowledged[rid]) == stored[1:]
            assert sum(map(len, acknowledged.values())) + len(conflicts) == 200
            feed = [v.position async for v in store.feed()]
            assert feed == list(range(1, 20 + 200 - len(conflicts) + 1))
        finally:
            await dropped(store)

    asyncio.run(main())


# --- the loop is never blocked --------------------------------------------------------------


def _run_queue_wait() -> float:
    """Seconds the calling thread has spent runnable but not running (Linux schedstat)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except OSError:
        return 0.0


class StepClock:
    """Times every step of the event loop, as asyncio's debug mode does for its slow-callback
    log, and also reads how long the OS kept the loop's thread waiting for a CPU during it. A
    step that holds the loop (store code computing, a blocking call) counts in full; the time
    another process ran on the CPU instead (on this 2-core machine, DynamoDB Local's JVM) does
    not: asyncio's log counts it, and so blamed steps that were merely preempted."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.held: list[str] = []
        self._real = asyncio.events.Handle._run
        self._collecting = 0.0
        self.collected = 0.0  # seconds spent in garbage collections so far

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._collecting = time.perf_counter()
        else:
            self.collected += time.perf_counter() - self._collecting

    def __enter__(self) -> StepClock:
        clock, real = self, self._real

        def timed(handle: asyncio.events.Handle) -> None:
            began, waited, collected = time.perf_counter(), _run_queue_wait(), clock.collected
            try:
                real(handle)
            finally:
                wall = time.perf_counter() - began
                # Only while the workload is watched (debug mode on), as asyncio's log does.
                if wall > clock.limit and handle._loop.get_debug():
                    preempted = _run_queue_wait() - waited
                    collecting = clock.collected - collected
                    held = wall - preempted - collecting
                    if held > clock.limit:
                        clock.held.append(
                            f"{handle!r} held the loop {held:.3f} s of {wall:.3f} "
                            f"(preempted {preempted:.3f}, collecting garbage {collecting:.3f})"
                        )

        asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
        gc.callbacks.append(self._gc)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._gc)
        asyncio.events.Handle._run = self._real  # type: ignore[method-assign]


def test_the_loop_is_never_blocked(served_url: str) -> None:
    """Appends, reads, the feed and a subscription, with asyncio's debug mode on and
    ``slow_callback_duration=0.05``: no step of the loop holds it for 50 ms or more. A call that
    blocks the loop (SQLite on the loop's thread, a blocking socket) holds it in every run; a
    step slowed once by a collection is not the store's: a run with held steps is repeated, up
    to 3 runs, and the test fails only if every run had some."""
    runs: list[list[str]] = []
    for _ in range(3):
        runs.append(_held_steps(served_url))
        if not runs[-1]:
            return
    raise AssertionError(f"steps that held the loop in every run: {runs}")


def _held_steps(served_url: str) -> list[str]:
    """The steps that held the loop 50 ms or more during appends, reads, feed and subscribe."""
    clock = StepClock(0.05)

    run = uuid.uuid4().hex[:6]  # a run of its own on a table that may hold earlier runs'

    async def main() -> None:
        loop = asyncio.get_running_loop()
        store = await opened(served_url)
        try:
            # Before the watched workload: making a DynamoDB client reads botocore's service
            # model, and the first request of each operation builds its serialiser (once per
            # process). And a full garbage collection walks every object of the process, the
            # service model's included: measured 100-150 ms on this 2-core machine, a pause of
            # the process rather than a call that blocks the loop. gc.freeze() leaves the
            # objects made so far out of collections, as docs/async.md advises.
            await store.append(Order(customer="warm"), resource_id=f"{run}warm")
            await store.append(Order(customer="warm"), resource_id=f"{run}warm", expected_version=1)
            await store.read_version(Order, f"{run}warm", 1)
            gc.collect()
            gc.freeze()
            loop.set_debug(True)
            loop.slow_callback_duration = 0.05

            async def writer(n: int) -> None:
                rid = f"{run}w{n}"
                for k in range(10):
                    await store.append(
                        Order(customer=f"c{n}", lines=[f"line {i}" for i in range(k * 20)]),
                        resource_id=rid,
                        expected_version=k or NO_STREAM,
                    )
                    await store.read_version(Order, rid, k + 1)

            async def follower() -> int:
                seen = 0
                async with store.subscribe(after=start, poll_interval=0.01) as live:
                    async for _ in live:
                        seen += 1
                        if seen == 80:
                            live.stop()
                return seen

            start = await store.last_position()
            following = asyncio.create_task(follower())
            await asyncio.gather(*(writer(n) for n in range(8)))
            assert len([v async for v in store.feed(after=start)]) == 80
            assert await asyncio.wait_for(following, 10) == 80
        finally:
            loop.set_debug(False)
            gc.unfreeze()
            await dropped(store)

    with clock:
        asyncio.run(main())
    return clock.held


# --- cancellation at every await point of an append -----------------------------------------


class Cancelling(Backend):
    """Passes requests to an async store's backend; at request number ``at`` it cancels the
    task that sent it: ``before`` the request goes, ``during`` it (the request is in flight when
    the cancellation lands) or ``after`` its answer came back."""

    def __init__(self, inner: Backend, at: int, when: Literal["before", "during", "after"]) -> None:
        self.inner = inner
        self.serialised = inner.serialised
        self.queries_round_once = inner.queries_round_once
        self.feed_in_items = inner.feed_in_items
        self.max_item_bytes = inner.max_item_bytes
        self.max_write_bytes = inner.max_write_bytes
        self.at, self.when = at, when
        self.count = 0
        self.cancelled = False

    def _request(self, send: Callable[[], Any]) -> Any:
        self.count += 1
        if self.count != self.at:
            return send()
        task = asyncio.current_task()
        assert task is not None
        self.cancelled = True
        if self.when == "before":
            task.cancel()
            bridge.await_(asyncio.sleep(0))
        if self.when == "during":
            asyncio.get_running_loop().call_soon(task.cancel)
            return send()
        answer = send()
        task.cancel()
        bridge.await_(asyncio.sleep(0))
        return answer

    def change_stream(self) -> ChangeStream | None:
        return self.inner.change_stream()

    def write(
        self,
        writes: Sequence[Write],
        *,
        token: str | None = None,
        conflicts: Literal["retry", "raise"] = "retry",
    ) -> Mapping[int, int]:
        lasts: Mapping[int, int] = self._request(
            lambda: self.inner.write(writes, token=token, conflicts=conflicts)
        )
        return lasts

    def positioned(self, partition: int, after: int, *, limit: int) -> list[Item]:
        found: list[Item] = self._request(
            lambda: self.inner.positioned(partition, after, limit=limit)
        )
        return found

    def last_position(self, partition: int) -> int:
        found: int = self._request(lambda: self.inner.last_position(partition))
        return found

    def get(self, keys: Sequence[Key], *, consistent: bool = True) -> list[Item | None]:
        found: list[Item | None] = self._request(
            lambda: self.inner.get(keys, consistent=consistent)
        )
        return found

    def query(
        self,
        pk: str,
        *,
        sk: SortCondition | None = None,
        index: str | None = None,
        forward: bool = True,
        limit: int | None = None,
        start: Item | None = None,
        consistent: bool = True,
    ) -> Page:
        page: Page = self._request(
            lambda: self.inner.query(
                pk,
                sk=sk,
                index=index,
                forward=forward,
                limit=limit,
                start=start,
                consistent=consistent,
            )
        )
        return page

    def scan(
        self,
        *,
        segment: int = 0,
        segments: int = 1,
        start: Item | None = None,
        limit: int | None = None,
    ) -> Page:
        raise AssertionError("an append does not scan")

    def create_table(self, options: TableOptions | None = None) -> None:
        raise AssertionError("an append does not create tables")


@pytest.mark.parametrize("when", ["before", "during", "after"])
@pytest.mark.parametrize("expected", ["new", "next"])
def test_a_cancelled_append_is_written_once_or_not_at_all(
    served_url: str, when: Literal["before", "during", "after"], expected: str
) -> None:
    async def main() -> None:
        store = await opened(served_url)
        try:
            at = 0
            while True:
                at += 1
                rid = f"{expected}-{at}"
                if expected == "next":
                    await store.append(Note(text="first"), resource_id=rid)
                one = Append(
                    Note(text="the append"),
                    resource_id=rid,
                    expected_version=1 if expected == "next" else NO_STREAM,
                )
                # A fresh store (a cold process: it reads the feed's configuration too) whose
                # requests are cancelled at request number `at`.
                cancelling = Cancelling(store.backend, at, when)
                cold = AsyncEventStore(EventStore(cancelling))
                try:
                    await cold.append_many([one])
                except asyncio.CancelledError:
                    assert cancelling.cancelled
                else:
                    # `at` is past the append's last request: every await point was covered.
                    assert not cancelling.cancelled and at > 1
                    return
                # The same append again, after the cancellation: written once, whatever
                # happened to the first attempt.
                try:
                    await store.append_many([one])
                except ConcurrencyError as e:
                    assert (e.expected, e.actual) == (
                        (1, 2) if expected == "next" else (NO_STREAM, 1)
                    )
                texts = [v.state.text async for v in store.read_stream(Note, rid)]
                assert texts == (["first"] if expected == "next" else []) + ["the append"]
        finally:
            await dropped(store)

    asyncio.run(main())


# --- async callables, repositories, projectors, subscriptions ---------------------------------


def test_update_awaits_an_async_change_and_retries_it(url: str) -> None:
    async def main() -> None:
        store = await opened(url)
        try:
            v1 = await store.append(Order(customer="ada"))
            calls: list[int] = []

            async def pay(order: Order) -> Order:
                calls.append(1)
                if len(calls) == 1:  # another writer gets in while this change is thinking
                    await store.append(
                        Order(customer="bob"), resource_id=v1.resource_id, expected_version=1
                    )
                await asyncio.sleep(0)
                return order.model_copy(update={"status": "paid"})

            v = await store.update(Order, v1.resource_id, pay)
            assert (v.version, v.state.status, v.state.customer, len(calls)) == (
                3,
                "paid",
                "bob",
                2,
            )
            repo = store.repository(Order)
            assert (await repo.get(v1.resource_id)).version == 3
            assert await repo.find("missing") is None
            assert [x.version async for x in repo.history(v1.resource_id, reverse=True)] == [
                3,
                2,
                1,
            ]
            with pytest.raises(StreamNotFound):
                await store.update(Order, "missing", pay)
        finally:
            await dropped(store)

    asyncio.run(main())


def test_bad_arguments_are_refused_when_the_iterator_is_made(url: str) -> None:
    async def main() -> None:
        store = await opened(url)
        try:
            with pytest.raises(InvalidInput):
                store.read_stream(Note, "x", start=0)
            with pytest.raises(InvalidInput):
                store.feed(after=-1)
            lazy = store.read_stream(Note, "missing")  # no request until iterated
            assert isinstance(lazy, AsyncIteration)
            with pytest.raises(StreamNotFound):
                await lazy.__anext__()
        finally:
            await dropped(store)

    asyncio.run(main())


class Counter:
    name = "counter"

    def __init__(self) -> None:
        self.seen: list[int] = []

    async def handle(self, version: Version[Any]) -> None:
        await asyncio.sleep(0)
        assert version.position is not None
        self.seen.append(version.position)


class Totals:
    """Writes one total per order into the same store, exactly once per version."""

    name = "totals"

    async def project(self, version: Version[Any]) -> list[Append[Any]]:
        await asyncio.sleep(0)
        if not isinstance(version.state, Order):
            return []
        return [Append(Note(text=version.resource_id), expected_version=NO_STREAM)]


def test_projectors_with_async_handle_and_project(url: str) -> None:
    async def main() -> None:
        store = await opened(url)
        try:
            for n in range(7):
                await store.append(Order(customer=f"c{n}"))
            counter = Counter()
            report = await projections.aio.run(store, counter, page_size=3)
            assert (report.handled, report.pages, counter.seen) == (7, 3, list(range(1, 8)))
            again = await projections.aio.run(store, counter)
            assert again.handled == 0
            totals = await projections.aio.run(store, Totals(), types=[Order])
            assert (totals.handled, totals.commits) == (7, 7)
            notes = [v async for v in projections.aio.list_all(store, Note)]
            assert len(notes) == 7
            assert await store.checkpoint("totals") == 7
        finally:
            await dropped(store)

    asyncio.run(main())


@pytest.mark.parametrize("how", ["stop", "cancel"])
def test_a_waiting_subscription_ends_at_once(url: str, how: str) -> None:
    async def main() -> None:
        store = await opened(url)
        try:
            await store.append(Note(text="one"))
            live = store.subscribe(after=0, poll_interval=30)
            assert isinstance(live, AsyncSubscription)
            got: list[int] = []

            async def follow() -> None:
                async with live:
                    async for version in live:
                        assert version.position is not None
                        got.append(version.position)

            task = asyncio.create_task(follow())
            while not got:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # it now waits for the next poll, 30 s away
            began = time.monotonic()
            if how == "stop":
                live.stop()
                await asyncio.wait_for(task, 2)
            else:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await asyncio.wait_for(task, 2)
            assert time.monotonic() - began < 1
            assert got == [1] and live.position == 1
        finally:
            await dropped(store)

    asyncio.run(main())


def test_a_subscription_stopped_from_another_thread_ends_at_once(tmp_path: Any) -> None:
    import threading

    async def main() -> None:
        store = await opened(f"sqlite:///{tmp_path / 's.db'}")
        try:
            live = store.subscribe(after=0, poll_interval=30)
            timer = threading.Timer(0.2, live.stop)
            timer.start()
            began = time.monotonic()
            async with live:
                assert [v async for v in live] == []
            assert time.monotonic() - began < 2
        finally:
            await store.close()

    asyncio.run(main())


def test_blocking_store_code_outside_the_async_store_is_refused() -> None:
    from eventstore.aio.dynamodb import AsyncDynamoDBBackend

    backend = AsyncDynamoDBBackend(
        "ttt", region="us-east-1", endpoint_url="http://127.0.0.1:9", max_attempts=1
    )
    with pytest.raises(RuntimeError, match=r"outside eventstore\.aio"):
        backend.get([("a", "b")])


# --- another writer between two requests of an async read -----------------------------------


@pytest.mark.parametrize("path", ["by_number", "latest", "stream_forward", "stream_reverse"])
def test_async_reads_with_a_trimming_writer_between_their_requests(
    served_url: str, path: str
) -> None:
    """tests/test_read_during_trim.py for the async store: another writer trims the stream
    (versions, their keyframe) right after request number ``point`` of a read, for every
    point; the read answers exactly or raises VersionNotFound, never a corrupt state."""
    from tests.interleaving import Interleaving
    from tests.test_read_during_trim import POINTS, SEED, TRIM_BY, Doc, doc, exact

    async def main() -> None:
        store = await opened(served_url)
        try:
            for point in POINTS:
                rid = f"d{point}"
                for n in range(1, SEED + 1):
                    await store.append(doc(n), resource_id=rid, expected_version=n - 1 or NO_STREAM)

                def trim(rid: str = rid) -> None:
                    # Runs inside the reader's await point: the blocking code of another store
                    # on the same async backend, as the async store runs it.
                    for n in range(SEED + 1, SEED + TRIM_BY + 1):
                        store.engine.append(doc(n), resource_id=rid, expected_version=n - 1)

                reader = AsyncEventStore(
                    EventStore(Interleaving(store.backend, after=point, action=trim))
                )
                try:
                    if path == "by_number":
                        got = [await reader.read_version(Doc, rid, 3)]
                    elif path == "latest":
                        got = [await reader.read_version(Doc, rid)]
                    else:
                        got = [
                            v
                            async for v in reader.read_stream(
                                Doc, rid, reverse=path == "stream_reverse"
                            )
                        ]
                except VersionNotFound as e:
                    assert path != "latest"
                    latest = await store.read_version(Doc, rid)
                    assert e.remaining == (latest.version - Doc.max_versions + 1, latest.version)
                    continue
                for version in got:
                    exact(version)
                numbers = [v.version for v in got]
                step = -1 if path == "stream_reverse" else 1
                assert numbers == list(range(numbers[0], numbers[0] + step * len(numbers), step))
        finally:
            await dropped(store)

    asyncio.run(main())


# --- the same requests as the blocking store ------------------------------------------------


def test_each_operation_sends_the_requests_the_blocking_store_sends(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The same operations on two fresh tables, one through each store: the same number of
    DynamoDB requests, operation by operation (requests counted at the client)."""
    blocking_url = make_url("dynamodb", tmp_path_factory)
    async_url = make_url("dynamodb", tmp_path_factory)

    def script(store: Any) -> list[tuple[str, Any]]:
        """(name, call) pairs; each call returns a value or an awaitable, or an iterable."""
        order = Order(customer="ada", lines=[f"line {i}" for i in range(40)])
        return [
            ("append", lambda: store.append(order, resource_id="o")),
            ("append 2", lambda: store.append(order, resource_id="o", expected_version=1)),
            ("read latest", lambda: store.read_version(Order, "o")),
            ("read 1", lambda: store.read_version(Order, "o", 1)),
            ("read many", lambda: store.read_many(Order, ["o", "p"])),
            ("stream", lambda: store.read_stream(Order, "o")),
            ("feed", lambda: store.feed()),
            ("list", lambda: store.list_resources(Order)),
            (
                "update",
                lambda: store.update(Order, "o", lambda o: o.model_copy(update={"status": "x"})),
            ),
            ("delete", lambda: store.delete(Order, "o")),
        ]

    blocking = eventstore.open(blocking_url)
    blocking.create_table(feed="inline")
    counted: list[tuple[str, int]] = []
    try:
        for name, call in script(blocking):
            before = blocking.backend.requests()
            result = call()
            if not isinstance(result, (Version, dict)) and hasattr(result, "__iter__"):
                list(result)
            counted.append((name, blocking.backend.requests() - before))
    finally:
        blocking.backend.delete_table()  # type: ignore[attr-defined]
        blocking.close()

    async def main() -> list[tuple[str, int]]:
        store = await opened(async_url)
        mine: list[tuple[str, int]] = []
        try:
            for name, call in script(store):
                before = store.backend.requests()
                result = call()
                if isinstance(result, AsyncIteration):
                    [x async for x in result]
                else:
                    await result
                mine.append((name, store.backend.requests() - before))
        finally:
            await dropped(store)
        return mine

    assert asyncio.run(main()) == counted
    assert all(n >= 1 for _, n in counted)


def test_async_clients_share_one_session_per_thread_and_aws_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new aiobotocore session costs 100-150 ms per client; the async store makes its clients
    from one per thread and AWS environment (a changed environment gets its own)."""
    import threading

    from eventstore.aio.sessions import shared_session

    first = shared_session()
    assert shared_session() is first
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "another-identity")
    assert shared_session() is not first
    monkeypatch.undo()
    assert shared_session() is first
    elsewhere: list[Any] = []
    thread = threading.Thread(target=lambda: elsewhere.append(shared_session()))
    thread.start()
    thread.join()
    assert elsewhere and elsewhere[0] is not first
