"""The async forms of the store's lazy reads and of callables it calls: an async iterator that
steps a blocking iterator of the store's, an async subscription, and a callable whose coroutine
is awaited on the event loop."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar, cast

from eventstore import bridge
from eventstore.resource import Version
from eventstore.subscription import Subscription

T = TypeVar("T")

_END: Any = object()


def awaiting(fn: Callable[..., T | Awaitable[T]]) -> Callable[..., T]:
    """``fn`` for the store's own code: if it returns an awaitable (an ``async def``), that is
    awaited on the event loop and its result returned."""

    def call(*args: Any) -> T:
        result = fn(*args)
        if inspect.isawaitable(result):
            return cast("T", bridge.await_(result))
        return result

    return call


class AsyncIteration(AsyncIterator[T]):
    """One of the store's lazy reads, as an async iterator: each step runs the blocking
    iterator's next step. Bad arguments are refused when it is made, as by the blocking call;
    requests are sent only as it is iterated."""

    def __init__(self, fn: Callable[..., Iterator[T]], /, *args: Any, **kwargs: Any) -> None:
        self._begun: bridge.Begun[Iterator[T]] | None = bridge.Begun(fn, *args, **kwargs)
        self._iterator: Iterator[T] | None = None

    async def _started(self) -> Iterator[T]:
        if self._iterator is None:
            assert self._begun is not None
            self._iterator, self._begun = await self._begun, None
        return self._iterator

    def __aiter__(self) -> AsyncIteration[T]:
        return self

    async def __anext__(self) -> T:
        iterator = await self._started()
        item = await bridge.call(next, iterator, _END)
        if item is _END:
            raise StopAsyncIteration
        return cast("T", item)

    async def aclose(self) -> None:
        """Stop early: the blocking iterator's cleanup runs now rather than when collected."""
        iterator = await self._started()
        close = getattr(iterator, "close", None)
        if close is not None:
            await bridge.call(close)


class AsyncSubscription(AsyncIteration[Version[Any]]):
    """:meth:`AsyncEventStore.subscribe`: ``async with store.subscribe(...) as live: async for
    version in live``. Waits for new commits on the event loop; :meth:`stop` (from any task or
    thread) and cancelling the task that iterates both end it at once."""

    def __init__(self, fn: Callable[..., Subscription], /, *args: Any, **kwargs: Any) -> None:
        self._made: bridge.Begun[Subscription] | None = bridge.Begun(fn, *args, **kwargs)
        self._begun = None
        self._iterator = None
        self._subscription: Subscription | None = None
        self._stop = False
        self._after: int = args[0] if args else kwargs.get("after", 0)

    async def _started(self) -> Iterator[Version[Any]]:
        if self._iterator is None:
            if self._subscription is None:
                assert self._made is not None
                self._subscription, self._made = await self._made, None
                if self._stop:
                    self._subscription.stop()
            self._iterator = iter(self._subscription)
        return self._iterator

    @property
    def position(self) -> int:
        """The last position handed out or passed over (where a new subscription resumes)."""
        return self._after if self._subscription is None else self._subscription.position

    @property
    def stopped(self) -> bool:
        return self._stop if self._subscription is None else self._subscription.stopped

    def stop(self) -> None:
        self._stop = True
        if self._subscription is not None:
            self._subscription.stop()

    async def __aenter__(self) -> AsyncSubscription:
        await self._started()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
