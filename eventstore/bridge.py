"""How one implementation of the store serves both the blocking API and ``eventstore.aio``.

The store's logic (planning appends, trimming, keyframes, decoding, retries, feed positions,
cursors) is written once, as plain functions that call a :class:`~eventstore.backends.base.Backend`.
The async store runs that same code in a greenlet (:func:`call`): when an async backend needs
to wait for a request it hands the awaitable to :func:`await_`, which switches back to the
coroutine that started the greenlet; that coroutine awaits it on the event loop and switches
back in with the answer (or the exception, task cancellation included). SQLAlchemy's asyncio
extension runs its ORM the same way. So there is no second copy of the logic to drift, and the
async store sends exactly the requests the blocking one sends.

What the logic itself waits on goes through this module, which does it the way the caller's
context needs: :func:`sleep` (backoff), :class:`IOLock` (a lock held across requests) and
:class:`Stop` (a wait another thread or task may cut short). Outside a greenlet they are the
plain blocking calls. ``greenlet`` comes with the ``eventstore[aio]`` extra; without it every
caller is blocking and only the blocking paths run.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

try:
    import greenlet
except ImportError:  # the blocking API does not need it
    greenlet = None

T = TypeVar("T")

#: How often a task waiting for an :class:`IOLock` held by another task looks again.
_LOCK_POLL = 0.002

if greenlet is not None:

    class _Bridge(greenlet.greenlet):  # type: ignore[misc]
        """A greenlet running blocking-style store code for a coroutine (its parent), and
        when it was last switched into (``time.perf_counter()``)."""

        __slots__ = ("resumed",)
else:  # pragma: no cover - exercised only where greenlet is missing

    class _Bridge:  # type: ignore[no-redef]
        __slots__ = ("resumed",)


def in_bridge() -> bool:
    """Whether the caller is store code run by :func:`call` for a coroutine."""
    return greenlet is not None and isinstance(greenlet.getcurrent(), _Bridge)


def refuse_outside() -> None:
    """Raise :class:`RuntimeError` unless the caller runs in :func:`call` (an async backend
    used by the blocking store, or outside any store)."""
    if not in_bridge():
        raise RuntimeError("an async backend was used outside eventstore.aio")


def await_(awaitable: Awaitable[T]) -> T:
    """Wait for ``awaitable`` on the event loop of the coroutine that runs this code through
    :func:`call`, and return its result (or raise its exception). Only async backends call it."""
    if not in_bridge():
        # Closing the coroutine keeps Python from warning that it was never awaited.
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
        refuse_outside()
    return greenlet.getcurrent().parent.switch(awaitable)  # type: ignore[no-any-return]


def require_greenlet() -> None:
    if greenlet is None:
        raise ImportError("eventstore.aio needs greenlet: pip install 'eventstore[aio]'") from None


class Begun(Generic[T]):
    """``fn(*args, **kwargs)`` started in a greenlet and run up to its first wait; await it for
    the result. Whatever ``fn`` raises before it first waits (a check of its arguments) is
    raised by the constructor, so a call that returns an async iterator can refuse bad
    arguments at once, as the blocking call does.

    The greenlet runs in a copy of the caller's context (so context variables, e.g. a tracing
    span, are seen inside). An exception raised into an awaited request, task cancellation
    included, is raised into ``fn`` at the point where it waits."""

    def __init__(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> None:
        require_greenlet()
        self._worker = _Bridge(fn, greenlet.getcurrent())
        self._worker.gr_context = contextvars.copy_context()
        self._worker.resumed = time.perf_counter()
        self._request: Any = self._worker.switch(*args, **kwargs)

    def __await__(self) -> Generator[Any, None, T]:
        worker, request = self._worker, self._request
        while not worker.dead:
            try:
                answer = yield from request.__await__()
            except BaseException:
                worker.resumed = time.perf_counter()
                request = worker.throw(*sys.exc_info())
            else:
                worker.resumed = time.perf_counter()
                request = worker.switch(answer)
        return request  # type: ignore[no-any-return]


async def call(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a greenlet (see :class:`Begun`) and return its result."""
    return await Begun(fn, *args, **kwargs)


#: How long store code run by :func:`call` may compute before :func:`pause` lets others run.
_SLICE = 0.01


def pause() -> None:
    """A point where long computation (decoding a page of versions) lets the event loop run
    other tasks, once it has held the loop for ``_SLICE`` seconds; nothing outside :func:`call`.
    Never call it while holding a ``threading`` lock."""
    if greenlet is None:
        return
    current = greenlet.getcurrent()
    if isinstance(current, _Bridge) and time.perf_counter() - current.resumed > _SLICE:
        await_(asyncio.sleep(0))


def sleep(seconds: float) -> None:
    """Wait ``seconds``: on the event loop inside :func:`call`, else by blocking the thread."""
    if in_bridge():
        await_(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


class IOLock:
    """A lock that may be held while requests are sent. Threads block on it as on a
    ``threading.Lock``; a task run by :func:`call` instead waits on the event loop (a blocking
    acquire there would stop the loop, and with it the task that holds the lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        if in_bridge():
            while not self._lock.acquire(blocking=False):
                await_(asyncio.sleep(_LOCK_POLL))
        else:
            self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class Stop:
    """A flag that ends waits: :meth:`set` (from any thread or task) wakes every :meth:`wait` at
    once. Waiting inside :func:`call` waits on the event loop."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._guard = threading.Lock()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()
        with self._guard:
            waiters = list(self._waiters)
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, event in waiters:
            if running is loop:
                event.set()
            else:
                # A closed loop has nobody waiting any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(event.set)

    def wait(self, timeout: float) -> bool:
        """Wait until set or ``timeout`` seconds pass; return whether it is set."""
        if not in_bridge():
            return self._event.wait(timeout)
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._guard:
            self._waiters.add(waiter)
        try:
            if self._event.is_set():
                return True
            await_(_wait_for(event, timeout))
        finally:
            with self._guard:
                self._waiters.discard(waiter)
        return self._event.is_set()


async def _wait_for(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
