"""Fault injection for the DynamoDB backend, through botocore event hooks on its own client.

DynamoDB Local never throttles, never fails with a 5xx and never loses an answer; the retry and
idempotency paths of :mod:`eventstore.backends.dynamodb` are exercised by injecting those faults
into the real requests it sends:

- *before* faults stop a request before it reaches the server (a ``before-send`` hook answers with
  a throttling or 5xx response, or raises a connection reset or read timeout): nothing is applied;
- *after* faults let the request reach the server and be applied, then lose the answer (an
  ``after-call`` hook raises a read timeout, a connection reset or a 500 instead of returning the
  real, successful response): the caller cannot tell whether it was applied.

The random choices come from one seeded :class:`random.Random`, so a run with the same seed and the
same sequence of requests injects the same faults. Every injected fault is counted by
(when, kind, operation) in :attr:`FaultInjector.injected`.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

#: ``EVENTSTORE_LONG=1`` runs the reliability suites at their long size instead of the CI size.
LONG = os.environ.get("EVENTSTORE_LONG", "") not in ("", "0")


def scaled(ci: int, long: int) -> int:
    """A run size: ``ci`` normally, ``long`` under ``EVENTSTORE_LONG=1``."""
    return long if LONG else ci


def report(scenario: str, figures: dict[str, Any]) -> None:
    """Print one summary line of a reliability scenario (seen with ``pytest -s``) and, when
    ``EVENTSTORE_RELIABILITY_OUT`` names a file, append it there as a JSON line (what
    ``scripts/reliability_report.py`` collects)."""
    record = {"scenario": scenario, "long": LONG, **figures}
    line = json.dumps(record, sort_keys=False, default=str)
    print(f"\nRELIABILITY {line}", file=sys.stdout, flush=True)
    out = os.environ.get("EVENTSTORE_RELIABILITY_OUT")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(line + "\n")


#: Operations whose answer may be lost after the server applied them.
WRITES = frozenset({"TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem"})
#: Kinds of fault injected before the request reaches the server.
BEFORE_KINDS = ("throttle", "server_error", "connection_reset", "read_timeout", "tx_conflict")
#: Kinds of fault injected after the server applied the request (the answer is lost).
AFTER_KINDS = ("read_timeout", "connection_reset", "server_error")

_THROTTLE_CODES = (
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
)


def error_response(status: int, code: str, **extra: Any) -> AWSResponse:
    """A DynamoDB JSON error response, as botocore would receive it over HTTP."""
    body = json.dumps(
        {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected", **extra}
    ).encode()

    class _Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body

    headers = {"x-amzn-requestid": "injected", "content-type": "application/x-amz-json-1.0"}
    return AWSResponse("http://injected", status, headers, _Raw())


@dataclass
class FaultInjector:
    """Injects random faults into the requests of one botocore DynamoDB client.

    ``before_rate`` is the chance that a request is stopped before it is sent, ``after_rate`` the
    chance that a successful write's answer is lost after the server applied it (reads too when
    ``after_on_reads``). ``enabled`` can be switched off and on; :meth:`detach` removes the hooks.
    """

    client: Any
    seed: int = 0
    before_rate: float = 0.2
    after_rate: float = 0.1
    after_on_reads: bool = True
    enabled: bool = True

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        self.injected: Counter[tuple[str, str, str]] = Counter()
        self.sent: Counter[str] = Counter()
        self._lock = threading.Lock()
        events = self.client.meta.events
        events.register("before-send.dynamodb", self._before, unique_id=f"faults-b-{id(self)}")
        events.register("after-call.dynamodb", self._after, unique_id=f"faults-a-{id(self)}")

    def detach(self) -> None:
        events = self.client.meta.events
        events.unregister("before-send.dynamodb", unique_id=f"faults-b-{id(self)}")
        events.unregister("after-call.dynamodb", unique_id=f"faults-a-{id(self)}")

    # -- figures ---------------------------------------------------------------------------

    def total(self) -> int:
        """Faults injected so far."""
        with self._lock:
            return sum(self.injected.values())

    def by_kind(self) -> dict[str, int]:
        """Faults injected so far, keyed ``"before:throttle"``, ``"after:read_timeout"``..."""
        out: Counter[str] = Counter()
        with self._lock:
            for (when, kind, _), n in self.injected.items():
                out[f"{when}:{kind}"] += n
        return dict(sorted(out.items()))

    def by_operation(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        with self._lock:
            for (_, _, operation), n in self.injected.items():
                out[operation] += n
        return dict(sorted(out.items()))

    # -- hooks -----------------------------------------------------------------------------

    def _draw(self, rate: float, kinds: tuple[str, ...]) -> str | None:
        with self._lock:
            if not self.enabled or self.random.random() >= rate:
                return None
            return self.random.choice(kinds)

    def _count(self, when: str, kind: str, operation: str) -> None:
        with self._lock:
            self.injected[(when, kind, operation)] += 1

    def _before(self, request: Any = None, event_name: str = "", **_: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.sent[operation] += 1
        kinds = BEFORE_KINDS if operation == "TransactWriteItems" else BEFORE_KINDS[:-1]
        kind = self._draw(self.before_rate, kinds)
        if kind is None:
            return None
        self._count("before", kind, operation)
        url = getattr(request, "url", "http://injected")
        if kind == "throttle":
            with self._lock:
                code = self.random.choice(_THROTTLE_CODES)
            return error_response(400, code)
        if kind == "server_error":
            return error_response(500, "InternalServerError")
        if kind == "tx_conflict":
            reasons = [{"Code": "TransactionConflict", "Message": "injected conflict"}]
            return error_response(400, "TransactionCanceledException", CancellationReasons=reasons)
        if kind == "connection_reset":
            raise ConnectionClosedError(endpoint_url=url)
        raise ReadTimeoutError(endpoint_url=url)

    def _after(
        self, http_response: Any = None, model: Any = None, event_name: str = "", **_: Any
    ) -> None:
        # Only real successes lose their answer: an injected error response (or a genuine refusal)
        # passes through untouched, so every fault is exactly one failed attempt.
        status = getattr(http_response, "status_code", 0)
        if status >= 300:
            return
        operation = getattr(model, "name", "") or event_name.rsplit(".", 1)[-1]
        if operation not in WRITES and not self.after_on_reads:
            return
        kind = self._draw(self.after_rate, AFTER_KINDS)
        if kind is None:
            return
        self._count("after", kind, operation)
        if kind == "read_timeout":
            raise ReadTimeoutError(endpoint_url="http://injected")
        if kind == "connection_reset":
            raise ConnectionClosedError(endpoint_url="http://injected")
        raise ClientError(
            {
                "Error": {"Code": "InternalServerError", "Message": "injected after apply"},
                "ResponseMetadata": {"HTTPStatusCode": 500},
            },
            operation,
        )
