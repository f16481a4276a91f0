"""Reading every retained version of some types under the current code: the check a team runs
against a copy of production before deploying a model change (``eventstore check``)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eventstore import records
from eventstore.errors import CorruptRecord, SchemaMismatch, StreamNotFound
from eventstore.keys import split_pk
from eventstore.resource import Resource, resource_classes
from eventstore.store import EventStore


@dataclass(frozen=True)
class Failure:
    resource_type: str
    resource_id: str
    version: int | None
    reason: str


@dataclass
class CheckReport:
    """``read`` versions decoded fine, ``upcast`` of them stored under an older schema,
    ``failures`` the ones that cannot be read under the current code."""

    streams: int = 0
    read: int = 0
    upcast: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def check(
    store: EventStore,
    classes: Sequence[type[Resource]],
    *,
    progress: Callable[[CheckReport], None] | None = None,
    every: float = 2.0,
) -> CheckReport:
    """Read every retained version of every stream of ``classes``, deleted ones included
    (readers of the feed and of their history still meet them); a version that cannot be
    read is reported and the check goes on with the next one. Reads only: nothing is written.
    ``progress`` is called every ``every`` seconds and at the end."""
    classes = resource_classes(classes)
    report = CheckReport()
    began = last = time.monotonic()
    for cls in classes:
        for head in itertools.chain(store.heads(cls), store.deleted_heads(cls)):
            pk = str(head[records.PK])
            report.streams += 1
            start = 1
            while True:
                try:
                    for version in store.reader.stream(
                        cls, pk, start, None, on_trimmed=lambda n: None
                    ):
                        start = version.version + 1
                        report.read += 1
                        if version.schema_version < cls.schema_version:
                            report.upcast += 1
                        if progress is not None and time.monotonic() - last >= every:
                            report.seconds, last = time.monotonic() - began, time.monotonic()
                            progress(report)
                    break
                except (SchemaMismatch, CorruptRecord) as e:
                    type_name, rid = split_pk(pk)
                    number = e.version
                    # The failure names the version already: its reason says the rest.
                    reason = str(e).removeprefix(f"{type_name} {rid!r} version {number}")
                    reason = reason.removeprefix(":").strip()
                    report.failures.append(Failure(type_name, rid, number, reason))
                    if number is None:
                        break
                    start = number + 1
                except StreamNotFound:
                    break
    report.seconds = time.monotonic() - began
    if progress is not None:
        progress(report)
    return report
