"""One backoff policy for every retrying call: capped exponential delays with full jitter, bounded
by a number of attempts and/or a time budget."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from eventstore import bridge


class Backoff:
    """Counts attempts and sleeps between them.

    ``wait()`` sleeps a random time in ``[0, min(cap, base * 2**n))`` and returns ``True``, or
    returns ``False`` without sleeping once ``attempts`` tries were made or the next sleep would end
    past ``budget`` seconds from the start. Full jitter spreads writers that collided apart.
    """

    def __init__(
        self,
        *,
        base: float = 0.01,
        cap: float = 1.0,
        attempts: int | None = None,
        budget: float | None = None,
        sleep: Callable[[float], None] = bridge.sleep,
    ) -> None:
        self.base = base
        self.cap = cap
        self.attempts = attempts
        self.budget = budget
        self.tries = 1
        self.started = time.monotonic()
        self._sleep = sleep

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def wait(self) -> bool:
        if self.attempts is not None and self.tries >= self.attempts:
            return False
        delay = random.uniform(0, min(self.cap, self.base * 2 ** min(self.tries - 1, 30)))
        if self.budget is not None and self.elapsed + delay > self.budget:
            return False
        self._sleep(delay)
        self.tries += 1
        return True
