"""The async store driven by blocking test code, so that suites written for ``EventStore`` run
unchanged over ``eventstore.aio.AsyncEventStore``.

Every call goes to an event loop running in a thread of its own: coroutines are awaited there,
async iterators are stepped there one ``__anext__`` at a time (so laziness and the moment an
error surfaces are the async store's own), and async subscriptions are iterated there.
``backend`` is a blocking backend on the same table, for tests that look at the items.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import eventstore.aio
from eventstore.aio import AsyncEventStore, AsyncIteration, AsyncRepository, AsyncSubscription
from eventstore.aio.threaded import ThreadedBackend
from eventstore.backends.base import Backend
from eventstore.backends.dynamodb import DynamoDBBackend

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` (called on the loop's thread, as greenlets require) to completion."""

        async def go() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result()

    def call(self, fn: Callable[[], T]) -> T:
        async def go() -> T:
            return fn()

        return self.run(go)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


def blocking_backend(store: AsyncEventStore) -> Backend:
    """A blocking backend on the async store's table."""
    backend = store.backend
    if isinstance(backend, ThreadedBackend):
        return backend.wrapped
    if isinstance(backend, DynamoDBBackend):
        return DynamoDBBackend(
            backend.table, region=backend._region, endpoint_url=backend._endpoint_url
        )
    return backend


class BlockingIterator(Iterator[Any]):
    def __init__(self, iterator: AsyncIteration[Any], loop: LoopThread) -> None:
        self._iterator = iterator
        self._loop = loop

    def __next__(self) -> Any:
        try:
            return self._loop.run(self._iterator.__anext__)
        except StopAsyncIteration:
            raise StopIteration from None


class BlockingSubscription(BlockingIterator):
    def __init__(self, subscription: AsyncSubscription, loop: LoopThread) -> None:
        super().__init__(subscription, loop)
        self.subscription = subscription

    def __enter__(self) -> BlockingSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __iter__(self) -> BlockingSubscription:
        return self

    def stop(self) -> None:
        self.subscription.stop()

    @property
    def position(self) -> int:
        return self.subscription.position

    @property
    def stopped(self) -> bool:
        return self.subscription.stopped


class Blocking:
    """An async store (or repository) as blocking code calls a blocking one."""

    def __init__(self, target: Any, loop: LoopThread, backend: Backend | None = None) -> None:
        self._target = target
        self._loop = loop
        self._backend = backend

    @property
    def backend(self) -> Backend:
        assert self._backend is not None
        return self._backend

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name, None)
        if attribute is None and isinstance(self._target, AsyncEventStore):
            return getattr(self._target.engine, name)  # internals a test looks at
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            async def go() -> Any:
                result = attribute(*args, **kwargs)
                return await result if asyncio.iscoroutine(result) else result

            return self._wrap(self._loop.run(go))

        return call

    def _wrap(self, result: Any) -> Any:
        if isinstance(result, AsyncSubscription):
            return BlockingSubscription(result, self._loop)
        if isinstance(result, AsyncIteration):
            return BlockingIterator(result, self._loop)
        if isinstance(result, AsyncRepository):
            return Blocking(result, self._loop)
        return result

    def __enter__(self) -> Blocking:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._loop.run(self._target.close)
        if isinstance(self._backend, DynamoDBBackend) and self._backend is not self._target.backend:
            self._backend.close()  # the blocking client made for looking at the table
        self._loop.close()


def open_blocking(url: str, **options: Any) -> Any:
    """``eventstore.aio.open(url, **options)`` wrapped in :class:`Blocking` (typed ``Any``: it
    stands in for an ``EventStore``)."""
    loop = LoopThread()
    store = loop.call(lambda: eventstore.aio.open(url, **options))
    return Blocking(store, loop, blocking_backend(store))
